// Journaled commits in jbd2's on-disk format, so that the kernel and e2fsck
// replay what e4fs logs (and e4fs replays what they log).
//
// One commit is one jbd2 transaction: the journal superblock points at the
// log's start, descriptor blocks and the blocks' new contents follow, a
// flush, the commit block, a flush (from here on the transaction survives a
// crash); then the blocks are written in place (the checkpoint), a flush,
// and the superblock marks the log empty again. Checkpointing right after
// each commit keeps the log holding at most one transaction, so nothing is
// ever replayed over a block that was freed and reused after its commit
// (what revoke records are for in a log that keeps older transactions).
// File data is written to its place before the commit's first flush, which
// is the ordering of ext4's data=ordered mode.
#ifndef E4FS_EXT4_JOURNAL_JOURNAL_WRITER_H_
#define E4FS_EXT4_JOURNAL_JOURNAL_WRITER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ext4/format/journal.h"
#include "ext4/io/block_cache.h"
#include "ext4/io/block_device.h"
#include "ext4/journal/log_map.h"

namespace ext4::journal {

struct JournalWriterOptions {
  uint32_t fs_block_size = 4096;
  bool fs_64bit = false;       // log 64-bit block numbers
  bool metadata_csum = false;  // checksum the log (csum v3), as ext4 does
};

class JournalWriter {
 public:
  // Takes over a journal that has nothing left to replay. EUCLEAN for a
  // corrupt journal superblock, EOPNOTSUPP for one this writer cannot use
  // (another block size), EAGAIN when it still needs recovery.
  static absl::StatusOr<std::unique_ptr<JournalWriter>> Open(
      io::BlockDevice& device, LogMap map, const JournalWriterOptions& options);

  // Logs `blocks` (filesystem block -> new contents) as one transaction and
  // writes them in place. A set too large for the log is written in place
  // with flushes around it instead (and reported once on stderr).
  absl::Status Commit(const std::map<uint64_t, io::BlockRef>& blocks);

  // The most blocks one transaction may hold; callers commit well before.
  uint64_t capacity() const { return capacity_; }
  uint32_t sequence() const { return jsb_.sequence; }
  uint64_t commits() const { return commits_; }

 private:
  JournalWriter(io::BlockDevice& device, LogMap map,
                const JournalWriterOptions& options);

  absl::Status WriteJournalSuperblock(uint32_t start);
  // Writes consecutive log blocks starting at journal index `index`.
  absl::Status WriteLog(uint64_t index, std::span<const uint8_t> data);
  absl::Status WriteInPlace(const std::map<uint64_t, io::BlockRef>& blocks);

  io::BlockDevice& device_;
  const LogMap map_;
  const JournalWriterOptions options_;
  format::JournalSuperblock jsb_;
  std::vector<uint8_t> jsb_block_;  // the superblock's block as on disk
  uint64_t capacity_ = 0;
  uint64_t commits_ = 0;
  bool warned_oversize_ = false;
};

}  // namespace ext4::journal

#endif  // E4FS_EXT4_JOURNAL_JOURNAL_WRITER_H_
