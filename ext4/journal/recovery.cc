#include "ext4/journal/recovery.h"

#include <cerrno>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "ext4/errno_status.h"
#include "ext4/format/big_endian.h"
#include "ext4/format/endian.h"

namespace ext4::journal {
namespace {

using format::JournalSuperblock;
using format::JournalTag;

// Commit block fields the scan reads itself.
constexpr size_t kCommitChecksumType = 12;
constexpr size_t kCommitChecksumSize = 13;
constexpr size_t kCommitChecksum = 16;
constexpr size_t kCommitSeconds = 48;

// The ext4 fast-commit head: a tag-length-value record {le16 tag, le16
// length} holding {le32 features, le32 tid}, first in the fast-commit area.
constexpr uint16_t kFastCommitTagHead = 0x0009;
constexpr size_t kFastCommitHeadSize = 12;

// Transaction ids compare modulo 2^32, as the kernel's tid_gt().
bool TidAfter(uint32_t x, uint32_t y) {
  return static_cast<int32_t>(x - y) > 0;
}

struct LoggedBlock {
  JournalTag tag;
  uint64_t index = 0;  // where the copy is in the journal
};

struct Transaction {
  uint32_t sequence = 0;
  std::vector<LoggedBlock> blocks;
  std::vector<uint64_t> revoked;
};

// The circular log [first, end): positions advance and wrap back to first.
class Ring {
 public:
  Ring(uint64_t first, uint64_t end) : first_(first), length_(end - first) {}
  uint64_t length() const { return length_; }
  uint64_t Next(uint64_t index) const {
    return first_ + (index - first_ + 1) % length_;
  }

 private:
  uint64_t first_;
  uint64_t length_;
};

// The COMPAT_CHECKSUM ("v1") check of a commit block against the crc32_be
// of the transaction's descriptor and data blocks. A commit that carries
// no checksum at all (type, size and value 0) passes, as in the kernel.
bool CompatCommitChecksumValid(format::Bytes commit, uint32_t crc32_sum) {
  const uint8_t type = commit[kCommitChecksumType];
  const uint8_t size = commit[kCommitChecksumSize];
  const uint32_t found = format::Be32(commit, kCommitChecksum);
  if (type == format::kJournalChecksumCrc32 &&
      size == format::kJournalCrc32ChecksumSize && found == crc32_sum) {
    return true;
  }
  return type == 0 && size == 0 && found == 0;
}

struct ScanResult {
  std::vector<Transaction> complete;
  uint64_t head_block = 0;
};

// Pass 1: the complete transactions from s_start on.
absl::StatusOr<ScanResult> ScanLog(JournalLog& log,
                                   const JournalSuperblock& jsb) {
  const uint32_t block_size = log.block_size();
  const Ring ring(jsb.first, jsb.log_end());
  std::vector<uint8_t> block(block_size);
  std::vector<uint8_t> data(block_size);

  ScanResult result;
  Transaction current;
  current.sequence = jsb.sequence;
  uint64_t position = jsb.start;
  result.head_block = position;
  uint64_t consumed = 0;
  uint64_t last_commit_time = 0;
  // Set when a descriptor or revoke block of the current transaction fails
  // its tail checksum: its commit block then decides (see recovery.h).
  bool check_commit_time = false;
  uint32_t crc32_sum = ~0u;

  bool done = false;
  while (!done && consumed < ring.length()) {
    E4_RETURN_IF_ERROR(log.Read(position, block));
    position = ring.Next(position);
    ++consumed;
    const std::optional<format::JournalHeader> header =
        format::ParseJournalHeader(block);
    if (!header.has_value() || header->sequence != current.sequence) break;

    switch (header->blocktype) {
      case format::kJournalDescriptorBlock: {
        if (!format::JournalBlockTailValid(jsb, block)) {
          check_commit_time = true;
        }
        const std::vector<JournalTag> tags =
            format::ParseDescriptorTags(jsb, block);
        if (jsb.compat_checksum()) {
          crc32_sum = format::TransactionCrc32Update(crc32_sum, block);
        }
        for (const JournalTag& tag : tags) {
          if (consumed >= ring.length()) {
            // More blocks than the whole log: this transaction cannot be
            // complete.
            done = true;
            break;
          }
          if (jsb.compat_checksum()) {
            E4_RETURN_IF_ERROR(log.Read(position, data));
            crc32_sum = format::TransactionCrc32Update(crc32_sum, data);
          }
          current.blocks.push_back(LoggedBlock{tag, position});
          position = ring.Next(position);
          ++consumed;
        }
        break;
      }

      case format::kJournalCommitBlock: {
        const uint64_t commit_time = format::Be64(block, kCommitSeconds);
        if (check_commit_time) {
          if (commit_time >= last_commit_time) {
            return ErrnoError(EBADMSG,
                              "journal: invalid checksum in transaction " +
                                  std::to_string(current.sequence));
          }
          // Older than the transaction before it: stale blocks from an
          // earlier pass over the log.
          done = true;
          break;
        }
        const bool valid = jsb.compat_checksum()
                               ? CompatCommitChecksumValid(block, crc32_sum)
                               : format::CommitChecksumValid(jsb, block);
        if (!valid) {
          // Either stale (older than its predecessor) or an interrupted or
          // corrupt commit: the log ends before this transaction in both
          // cases. (With async_commit the kernel scans on, but only to
          // report the failed commit; it replays no further either.)
          done = true;
          break;
        }
        crc32_sum = ~0u;
        last_commit_time = commit_time;
        const uint32_t next = current.sequence + 1;
        result.complete.push_back(std::move(current));
        current = Transaction();
        current.sequence = next;
        result.head_block = position;
        break;
      }

      case format::kJournalRevokeBlock: {
        if (!format::JournalBlockTailValid(jsb, block)) {
          check_commit_time = true;
        }
        // The kernel fails the whole recovery on a bad r_count, even in a
        // transaction that turns out incomplete.
        E4_ASSIGN_OR_RETURN(std::vector<uint64_t> records,
                            format::ParseRevokeRecords(jsb, block));
        current.revoked.insert(current.revoked.end(), records.begin(),
                               records.end());
        break;
      }

      default:
        done = true;
        break;
    }
  }
  return result;
}

// Whether the fast-commit area starts with a fast commit for `sequence`.
absl::StatusOr<bool> HasFastCommit(JournalLog& log,
                                   const JournalSuperblock& jsb,
                                   uint32_t sequence) {
  const uint64_t first_fc_block = uint64_t{jsb.log_end()} + 1;
  if (first_fc_block >= jsb.max_len) return false;
  std::vector<uint8_t> block(log.block_size());
  E4_RETURN_IF_ERROR(log.Read(first_fc_block, block));
  if (block.size() < kFastCommitHeadSize) return false;
  return format::Le16(block, 0) == kFastCommitTagHead &&
         format::Le16(block, 2) >= 8 && format::Le32(block, 8) == sequence;
}

}  // namespace

absl::StatusOr<ReplayPlan> ScanJournal(JournalLog& log,
                                       uint64_t fs_block_count) {
  const uint32_t block_size = log.block_size();
  if (block_size < format::kJournalSuperblockSize || log.block_count() == 0) {
    return Corrupt("journal: no room for a journal superblock");
  }
  std::vector<uint8_t> block(block_size);
  E4_RETURN_IF_ERROR(log.Read(0, block));
  E4_ASSIGN_OR_RETURN(JournalSuperblock jsb,
                      format::ParseJournalSuperblock(block));
  if (jsb.block_size != block_size) {
    return Corrupt("journal superblock: block size " +
                   std::to_string(jsb.block_size) + " is not the journal's " +
                   std::to_string(block_size));
  }
  if (jsb.max_len > log.block_count()) {
    return Corrupt("journal superblock: s_maxlen " +
                   std::to_string(jsb.max_len) + " exceeds the journal's " +
                   std::to_string(log.block_count()) + " blocks");
  }

  ReplayPlan plan;
  plan.superblock = jsb;
  plan.first_sequence = jsb.sequence;
  plan.next_sequence = jsb.sequence;
  if (jsb.start == 0) {
    plan.restart_sequence = jsb.sequence + 1;
    return plan;
  }
  plan.needed = true;

  E4_ASSIGN_OR_RETURN(ScanResult scan, ScanLog(log, jsb));
  plan.transactions = static_cast<uint32_t>(scan.complete.size());
  plan.next_sequence = jsb.sequence + plan.transactions;
  plan.restart_sequence = plan.next_sequence + 1;
  plan.head_block = scan.head_block;

  // Pass 2: for each revoked block, the latest transaction revoking it.
  std::unordered_map<uint64_t, uint32_t> revoked_in;
  for (const Transaction& transaction : scan.complete) {
    for (uint64_t revoked : transaction.revoked) {
      auto [it, inserted] =
          revoked_in.try_emplace(revoked, transaction.sequence);
      if (!inserted && TidAfter(transaction.sequence, it->second)) {
        it->second = transaction.sequence;
      }
    }
  }

  // Pass 3: replay in log order.
  for (const Transaction& transaction : scan.complete) {
    for (const LoggedBlock& logged : transaction.blocks) {
      auto revoke = revoked_in.find(logged.tag.block);
      if (revoke != revoked_in.end() &&
          !TidAfter(transaction.sequence, revoke->second)) {
        ++plan.revoked;
        continue;
      }
      E4_RETURN_IF_ERROR(log.Read(logged.index, block));
      if (!format::DataBlockChecksumMatches(jsb, logged.tag,
                                            transaction.sequence, block)) {
        ++plan.checksum_errors;
        continue;
      }
      if (logged.tag.block >= fs_block_count) {
        ++plan.out_of_range;
        continue;
      }
      if ((logged.tag.flags & format::kJournalTagEscape) != 0) {
        format::PutBe32(block, 0, format::kJournalMagic);
      }
      plan.blocks[logged.tag.block] = block;
      ++plan.replayed;
    }
  }

  if (jsb.fast_commit()) {
    E4_ASSIGN_OR_RETURN(plan.fast_commit_data,
                        HasFastCommit(log, jsb, plan.next_sequence));
  }
  return plan;
}

}  // namespace ext4::journal
