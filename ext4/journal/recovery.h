// jbd2 recovery: finds the committed transactions in a journal and works out
// what replaying them writes, without writing anything. The semantics are
// the kernel's (fs/jbd2/recovery.c, which e2fsck shares):
//
//  1. Scan: from s_start, expecting s_sequence, read one block after
//     another around the circular log. A block without the magic or with
//     another sequence, or of an unknown type, ends the log. A descriptor
//     is followed by one logged block per tag; a revoke block lists blocks;
//     a commit block completes its transaction and the next sequence is
//     expected. A transaction without its commit is not replayed. A commit
//     whose checksum fails (csum v2/v3, or COMPAT_CHECKSUM's crc32 over the
//     transaction) ends the log before that transaction. A descriptor or
//     revoke block whose tail checksum fails makes the transaction's commit
//     decide: a commit older than the previous one marks stale blocks of an
//     earlier pass (the log ends there), any other is corruption (EBADMSG,
//     recovery fails).
//  2. Revoke: a revoke record of transaction R for block B suppresses every
//     copy of B logged by a transaction T with T <= R (sequence order, with
//     wraparound); copies logged after R are replayed.
//  3. Replay: complete transactions in order, later copies replacing
//     earlier ones. A logged block whose v2/v3 tag checksum fails is
//     skipped and counted (the kernel skips it too and reports EBADMSG once
//     replay is done); a block number outside the filesystem is skipped and
//     counted, never written. Escaped blocks get their magic back.
//
// Work is bounded by the log's length: the scan never consumes more blocks
// than the circular log holds, whatever a hostile journal claims.
#ifndef E4FS_EXT4_JOURNAL_RECOVERY_H_
#define E4FS_EXT4_JOURNAL_RECOVERY_H_

#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ext4/format/journal.h"

namespace ext4::journal {

// The journal's blocks by index in the journal (0 = the journal superblock).
class JournalLog {
 public:
  virtual ~JournalLog() = default;
  // Blocks the journal has (at least s_maxlen).
  virtual uint64_t block_count() const = 0;
  virtual uint32_t block_size() const = 0;
  // Reads journal block `index` into `out` (block_size() bytes).
  virtual absl::Status Read(uint64_t index, std::span<uint8_t> out) = 0;
};

struct ReplayPlan {
  // s_start != 0: the journal holds a log to recover. When false, nothing
  // else but the sequences (and `superblock`) is filled in.
  bool needed = false;
  // s_sequence, and the first sequence not replayed: the one after the last
  // complete transaction (the kernel's end_transaction).
  uint32_t first_sequence = 0, next_sequence = 0;
  // The sequence the kernel and e2fsck give the next transaction, which
  // goes into s_sequence when the caller marks the journal empty: one past
  // next_sequence after a recovery (so that a stale commit block carrying
  // next_sequence can never be taken for a new one), s_sequence + 1 for a
  // clean journal.
  uint32_t restart_sequence = 0;
  // Complete transactions to replay.
  uint32_t transactions = 0;
  // The journal block after the last complete transaction (s_start when
  // there is none): where the log's head was.
  uint64_t head_block = 0;
  // Filesystem block -> final contents: revokes applied, escapes undone.
  std::map<uint64_t, std::vector<uint8_t>> blocks;
  // Logged block copies replayed (a block logged twice counts twice).
  uint64_t replayed = 0;
  // Logged block copies skipped because a revoke record covers them.
  uint64_t revoked = 0;
  // Logged blocks skipped because their v2/v3 tag checksum fails. The
  // kernel replays everything else and then fails the mount with EBADMSG;
  // e2fsck marks the filesystem as having errors.
  uint64_t checksum_errors = 0;
  // Logged blocks skipped because their block number is not below the
  // filesystem's block count (corrupt tags).
  uint64_t out_of_range = 0;
  // The fast-commit area after the log holds a fast commit for
  // next_sequence: replaying only the full transactions would lose it, so
  // the caller refuses the mount (the kernel replays it, e2fsck too).
  bool fast_commit_data = false;
  // The journal superblock as parsed.
  format::JournalSuperblock superblock;
};

// Reads the journal superblock from block 0 and works out the replay.
// Errors: the journal superblock's (EUCLEAN, EOPNOTSUPP, see
// ParseJournalSuperblock), EUCLEAN when its block size is not the log's or
// s_maxlen exceeds block_count(), EBADMSG for a corrupt transaction the
// kernel refuses to recover (above), EUCLEAN for a revoke block whose
// r_count runs past the block, and any error of log.Read().
//
// After writing `blocks` (and flushing), the caller marks the journal
// empty (s_start = 0, s_sequence = restart_sequence) and clears the
// filesystem's needs_recovery flag, as e2fsck does.
absl::StatusOr<ReplayPlan> ScanJournal(JournalLog& log,
                                       uint64_t fs_block_count);

}  // namespace ext4::journal

#endif  // E4FS_EXT4_JOURNAL_RECOVERY_H_
