#include "ext4/journal/recovery.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "ext4/format/big_endian.h"
#include "ext4/format/journal.h"
#include "ext4/format/superblock.h"
#include "ext4/testing/image_tools.h"
#include "gtest/gtest.h"

namespace ext4::journal {
namespace {

using format::JournalSuperblock;
using format::JournalTag;

// A journal in memory: unwritten blocks read as zeros.
class MemoryLog : public JournalLog {
 public:
  MemoryLog(uint64_t block_count, uint32_t block_size)
      : block_count_(block_count), block_size_(block_size) {}

  uint64_t block_count() const override { return block_count_; }
  uint32_t block_size() const override { return block_size_; }
  absl::Status Read(uint64_t index, std::span<uint8_t> out) override {
    ++reads;
    if (index >= block_count_ || out.size() != block_size_) {
      return ErrnoError(EIO, "read outside the journal");
    }
    auto it = blocks.find(index);
    if (it == blocks.end()) {
      std::fill(out.begin(), out.end(), 0);
    } else {
      std::copy(it->second.begin(), it->second.end(), out.begin());
    }
    return absl::OkStatus();
  }

  std::map<uint64_t, std::vector<uint8_t>> blocks;
  uint64_t reads = 0;

 private:
  uint64_t block_count_;
  uint32_t block_size_;
};

struct Logged {
  uint64_t block;
  std::vector<uint8_t> data;
};

// Writes transactions the way jbd2 lays them out: revoke blocks, then
// descriptor blocks each followed by the blocks they describe (escaped,
// checksummed), then the commit block.
class LogBuilder {
 public:
  explicit LogBuilder(const JournalSuperblock& jsb)
      : jsb_(jsb),
        log_(jsb.max_len, jsb.block_size),
        position_(jsb.start != 0 ? jsb.start : jsb.first) {}

  uint64_t position() const { return position_; }
  MemoryLog& log() { return log_; }

  void Put(std::vector<uint8_t> block) {
    log_.blocks[position_] = std::move(block);
    ++position_;
    if (position_ >= jsb_.log_end()) position_ = jsb_.first;
  }

  struct Indices {
    std::vector<uint64_t> revokes, descriptors, data;
    uint64_t commit = 0;
  };

  // Appends transaction `sequence`. `commit_time` 0 means one second
  // after the previous commit.
  Indices Transaction(uint32_t sequence, const std::vector<Logged>& blocks,
                      const std::vector<uint64_t>& revokes = {},
                      bool commit = true, uint64_t commit_time = 0) {
    Indices indices;
    const uint32_t bs = jsb_.block_size;
    const size_t per_revoke = format::RevokeCapacity(jsb_, bs);
    for (size_t i = 0; i < revokes.size(); i += per_revoke) {
      const size_t n = std::min(per_revoke, revokes.size() - i);
      indices.revokes.push_back(position_);
      Put(format::EncodeRevoke(jsb_, sequence,
                               std::span<const uint64_t>(revokes).subspan(i, n),
                               bs));
    }
    uint32_t crc = ~0u;
    const size_t per_descriptor = format::DescriptorTagCapacity(jsb_, bs);
    for (size_t i = 0; i < blocks.size(); i += per_descriptor) {
      const size_t n = std::min(per_descriptor, blocks.size() - i);
      std::vector<JournalTag> tags;
      std::vector<std::vector<uint8_t>> logged;
      for (size_t j = i; j < i + n; ++j) {
        std::vector<uint8_t> data = blocks[j].data;
        JournalTag tag;
        tag.block = blocks[j].block;
        if (format::NeedsEscape(data)) {
          format::PutBe32(data, 0, 0);
          tag.flags |= format::kJournalTagEscape;
        }
        tag.checksum = format::DataBlockChecksum(jsb_, sequence, data);
        tags.push_back(tag);
        logged.push_back(std::move(data));
      }
      std::vector<uint8_t> descriptor =
          format::EncodeDescriptor(jsb_, sequence, tags, bs);
      crc = format::TransactionCrc32Update(crc, descriptor);
      indices.descriptors.push_back(position_);
      Put(std::move(descriptor));
      for (std::vector<uint8_t>& data : logged) {
        crc = format::TransactionCrc32Update(crc, data);
        indices.data.push_back(position_);
        Put(std::move(data));
      }
    }
    if (commit) {
      commit_time_ = commit_time != 0 ? commit_time : commit_time_ + 1;
      indices.commit = position_;
      Put(format::EncodeCommit(jsb_, sequence, commit_time_, 0, bs, crc));
    }
    return indices;
  }

  // Writes the journal superblock and returns the log.
  MemoryLog& Finish() {
    std::vector<uint8_t> raw(jsb_.block_size, 0);
    format::SerializeJournalSuperblock(jsb_, raw);
    log_.blocks[0] = raw;
    return log_;
  }

 private:
  JournalSuperblock jsb_;
  MemoryLog log_;
  uint64_t position_;
  uint64_t commit_time_ = 1000;
};

constexpr uint32_t kBlockSize = 1024;
constexpr uint64_t kFsBlocks = 1 << 20;

JournalSuperblock MakeJsb(uint32_t incompat, uint32_t compat = 0) {
  JournalSuperblock jsb;
  jsb.blocktype = format::kJournalSuperblockV2;
  jsb.block_size = kBlockSize;
  jsb.max_len = 1024;
  jsb.first = 1;
  jsb.sequence = 100;
  jsb.start = 1;
  jsb.feature_compat = compat;
  jsb.feature_incompat = incompat;
  jsb.nr_users = 1;
  for (size_t i = 0; i < jsb.uuid.size(); ++i) {
    jsb.uuid[i] = static_cast<uint8_t>(0x30 + 3 * i);
  }
  if ((incompat & (format::kJournalIncompatCsumV2 |
                   format::kJournalIncompatCsumV3)) != 0) {
    jsb.checksum_type = format::kJournalChecksumCrc32c;
  }
  return jsb;
}

std::vector<uint8_t> Content(uint8_t fill, uint32_t bs = kBlockSize) {
  std::vector<uint8_t> data(bs, fill);
  data[0] = 0x11;
  data[1] = fill;
  return data;
}

constexpr uint32_t kCsumV3 =
    format::kJournalIncompatRevoke | format::kJournalIncompatCsumV3;
constexpr uint32_t kCsumV3Wide = kCsumV3 | format::kJournalIncompat64Bit;

// ---- Synthetic logs ----

class FormatTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(FormatTest, SeveralTransactionsLaterCopiesWin) {
  LogBuilder builder(MakeJsb(GetParam()));
  builder.Transaction(100, {{10, Content(1)}, {11, Content(2)}});
  builder.Transaction(101, {{11, Content(3)}, {12, Content(4)}});
  // More blocks than one descriptor holds.
  std::vector<Logged> many;
  for (uint64_t b = 1000; b < 1300; ++b) {
    many.push_back({b, Content(static_cast<uint8_t>(b))});
  }
  builder.Transaction(102, many);
  auto plan = ScanJournal(builder.Finish(), kFsBlocks);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->needed);
  EXPECT_EQ(plan->first_sequence, 100u);
  EXPECT_EQ(plan->transactions, 3u);
  EXPECT_EQ(plan->next_sequence, 103u);
  EXPECT_EQ(plan->restart_sequence, 104u);
  EXPECT_EQ(plan->head_block, builder.position());
  EXPECT_EQ(plan->replayed, 304u);
  EXPECT_EQ(plan->revoked, 0u);
  EXPECT_EQ(plan->checksum_errors, 0u);
  ASSERT_EQ(plan->blocks.size(), 303u);
  EXPECT_EQ(plan->blocks[10], Content(1));
  EXPECT_EQ(plan->blocks[11], Content(3));
  EXPECT_EQ(plan->blocks[12], Content(4));
  for (uint64_t b = 1000; b < 1300; ++b) {
    ASSERT_EQ(plan->blocks[b], Content(static_cast<uint8_t>(b)));
  }
}

TEST_P(FormatTest, TransactionWithoutCommitIsNotReplayed) {
  LogBuilder builder(MakeJsb(GetParam()));
  builder.Transaction(100, {{10, Content(1)}});
  const uint64_t head = builder.position();
  builder.Transaction(101, {{10, Content(2)}, {20, Content(3)}}, {},
                      /*commit=*/false);
  auto plan = ScanJournal(builder.Finish(), kFsBlocks);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->transactions, 1u);
  EXPECT_EQ(plan->next_sequence, 101u);
  EXPECT_EQ(plan->head_block, head);
  EXPECT_EQ(plan->blocks.size(), 1u);
  EXPECT_EQ(plan->blocks[10], Content(1));
}

TEST_P(FormatTest, EscapedBlocksGetTheirMagicBack) {
  std::vector<uint8_t> magic = Content(9);
  format::PutBe32(magic, 0, format::kJournalMagic);
  LogBuilder builder(MakeJsb(GetParam()));
  const auto indices = builder.Transaction(100, {{33, magic}});
  // In the log the magic is gone.
  EXPECT_EQ(format::Be32(builder.log().blocks[indices.data[0]], 0), 0u);
  auto plan = ScanJournal(builder.Finish(), kFsBlocks);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->blocks[33], magic);
}

TEST_P(FormatTest, RevokesCoverEarlierAndSameTransactionsOnly) {
  LogBuilder builder(MakeJsb(GetParam()));
  builder.Transaction(100, {{1, Content(1)}, {2, Content(2)}, {3, Content(3)}});
  // Revokes 1 and 3, and 4, which it logs itself.
  builder.Transaction(101, {{4, Content(4)}, {5, Content(5)}}, {1, 3, 4});
  // Logs 3 again after the revoke: replayed.
  builder.Transaction(102, {{3, Content(6)}});
  // A revoke of 2 in a transaction without commit counts for nothing.
  builder.Transaction(103, {}, {2}, /*commit=*/false);
  auto plan = ScanJournal(builder.Finish(), kFsBlocks);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->transactions, 3u);
  EXPECT_EQ(plan->revoked, 3u);  // 1 and 3 of 100, 4 of 101
  EXPECT_EQ(plan->replayed, 3u);
  EXPECT_EQ(plan->blocks.count(1), 0u);
  EXPECT_EQ(plan->blocks[2], Content(2));
  EXPECT_EQ(plan->blocks[3], Content(6));
  EXPECT_EQ(plan->blocks.count(4), 0u);
  EXPECT_EQ(plan->blocks[5], Content(5));
}

TEST_P(FormatTest, LogWrapsAroundTheEnd) {
  JournalSuperblock jsb = MakeJsb(GetParam());
  jsb.first = 5;
  jsb.start = jsb.log_end() - 3;
  LogBuilder builder(jsb);
  builder.Transaction(100, {{10, Content(1)}, {11, Content(2)}});
  builder.Transaction(101, {{12, Content(3)}, {13, Content(4)}});
  // Eight blocks: three before the end, five from `first` on.
  EXPECT_EQ(builder.position(), 5u + 5);
  EXPECT_EQ(builder.log().blocks.count(1), 0u);
  auto plan = ScanJournal(builder.Finish(), kFsBlocks);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->transactions, 2u);
  EXPECT_EQ(plan->blocks.size(), 4u);
  EXPECT_EQ(plan->blocks[13], Content(4));
  EXPECT_EQ(plan->head_block, 10u);
}

TEST_P(FormatTest, SequenceGapEndsTheLog) {
  LogBuilder builder(MakeJsb(GetParam()));
  builder.Transaction(100, {{10, Content(1)}});
  builder.Transaction(102, {{10, Content(2)}});  // 101 expected
  auto plan = ScanJournal(builder.Finish(), kFsBlocks);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->transactions, 1u);
  EXPECT_EQ(plan->blocks[10], Content(1));
}

TEST_P(FormatTest, BlocksOutsideTheFilesystemAreSkipped) {
  LogBuilder builder(MakeJsb(GetParam()));
  builder.Transaction(100, {{10, Content(1)}, {5000, Content(2)}});
  auto plan = ScanJournal(builder.Finish(), /*fs_block_count=*/5000);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->out_of_range, 1u);
  EXPECT_EQ(plan->blocks.size(), 1u);
  EXPECT_EQ(plan->blocks.count(5000), 0u);
}

TEST_P(FormatTest, EmptyTransactionsCount) {
  LogBuilder builder(MakeJsb(GetParam()));
  builder.Transaction(100, {});
  builder.Transaction(101, {{7, Content(7)}});
  auto plan = ScanJournal(builder.Finish(), kFsBlocks);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->transactions, 2u);
  EXPECT_EQ(plan->blocks[7], Content(7));
}

INSTANTIATE_TEST_SUITE_P(Formats, FormatTest,
                         ::testing::Values(0u, format::kJournalIncompatRevoke,
                                           format::kJournalIncompatRevoke |
                                               format::kJournalIncompat64Bit,
                                           format::kJournalIncompatRevoke |
                                               format::kJournalIncompatCsumV2,
                                           format::kJournalIncompatRevoke |
                                               format::kJournalIncompatCsumV2 |
                                               format::kJournalIncompat64Bit,
                                           kCsumV3, kCsumV3Wide));

TEST(RecoveryTest, CleanJournalNeedsNothing) {
  JournalSuperblock jsb = MakeJsb(kCsumV3);
  jsb.start = 0;
  LogBuilder builder(jsb);
  builder.Transaction(100, {{10, Content(1)}});  // stale: not looked at
  auto plan = ScanJournal(builder.Finish(), kFsBlocks);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_FALSE(plan->needed);
  EXPECT_EQ(plan->transactions, 0u);
  EXPECT_EQ(plan->next_sequence, 100u);
  EXPECT_EQ(plan->restart_sequence, 101u);
  EXPECT_TRUE(plan->blocks.empty());
}

TEST(RecoveryTest, SixtyFourBitBlockNumbers) {
  LogBuilder builder(MakeJsb(kCsumV3Wide));
  const uint64_t high = (uint64_t{3} << 32) + 17;
  builder.Transaction(100, {{high, Content(1)}});
  builder.Transaction(101, {}, {high});
  builder.Transaction(102, {{high + 1, Content(2)}});
  auto plan = ScanJournal(builder.Finish(), uint64_t{1} << 40);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->revoked, 1u);
  EXPECT_EQ(plan->blocks.count(high), 0u);
  EXPECT_EQ(plan->blocks[high + 1], Content(2));
}

TEST(RecoveryTest, SequenceNumbersWrap) {
  JournalSuperblock jsb = MakeJsb(kCsumV3);
  jsb.sequence = 0xFFFFFFFF;
  LogBuilder builder(jsb);
  builder.Transaction(0xFFFFFFFF, {{1, Content(1)}, {2, Content(2)}});
  builder.Transaction(0, {}, {1});  // 0 comes after 0xFFFFFFFF
  builder.Transaction(1, {{3, Content(3)}});
  auto plan = ScanJournal(builder.Finish(), kFsBlocks);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->transactions, 3u);
  EXPECT_EQ(plan->next_sequence, 2u);
  EXPECT_EQ(plan->restart_sequence, 3u);
  EXPECT_EQ(plan->blocks.count(1), 0u);
  EXPECT_EQ(plan->blocks.size(), 2u);
}

TEST(RecoveryTest, BadDataChecksumSkipsOnlyThatBlock) {
  for (uint32_t incompat : {kCsumV3, format::kJournalIncompatCsumV2 |
                                         format::kJournalIncompat64Bit}) {
    SCOPED_TRACE(incompat);
    LogBuilder builder(MakeJsb(incompat));
    const auto indices =
        builder.Transaction(100, {{10, Content(1)}, {11, Content(2)}});
    builder.Transaction(101, {{12, Content(3)}});
    builder.log().blocks[indices.data[0]][500] ^= 0xFF;
    auto plan = ScanJournal(builder.Finish(), kFsBlocks);
    ASSERT_TRUE(plan.ok()) << plan.status();
    EXPECT_EQ(plan->transactions, 2u);
    EXPECT_EQ(plan->checksum_errors, 1u);
    EXPECT_EQ(plan->blocks.count(10), 0u);
    EXPECT_EQ(plan->blocks[11], Content(2));
    EXPECT_EQ(plan->blocks[12], Content(3));
  }
}

TEST(RecoveryTest, RevokedBlockIsNotChecksummed) {
  LogBuilder builder(MakeJsb(kCsumV3));
  const auto indices = builder.Transaction(100, {{10, Content(1)}});
  builder.Transaction(101, {}, {10});
  builder.log().blocks[indices.data[0]][500] ^= 0xFF;
  auto plan = ScanJournal(builder.Finish(), kFsBlocks);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->revoked, 1u);
  EXPECT_EQ(plan->checksum_errors, 0u);
}

TEST(RecoveryTest, BadCommitChecksumEndsTheLogBeforeIt) {
  for (uint32_t incompat :
       {kCsumV3, kCsumV3 | format::kJournalIncompatAsyncCommit,
        format::kJournalIncompatCsumV2}) {
    SCOPED_TRACE(incompat);
    LogBuilder builder(MakeJsb(incompat));
    builder.Transaction(100, {{10, Content(1)}});
    const auto second = builder.Transaction(101, {{10, Content(2)}});
    builder.Transaction(102, {{10, Content(3)}});
    builder.log().blocks[second.commit][50] ^= 1;  // h_commit_sec
    auto plan = ScanJournal(builder.Finish(), kFsBlocks);
    ASSERT_TRUE(plan.ok()) << plan.status();
    EXPECT_EQ(plan->transactions, 1u);
    EXPECT_EQ(plan->next_sequence, 101u);
    EXPECT_EQ(plan->blocks[10], Content(1));
  }
}

TEST(RecoveryTest, CommitWithGarbageAfterItsHeaderIsAccepted) {
  LogBuilder builder(MakeJsb(kCsumV3));
  const auto indices = builder.Transaction(100, {{10, Content(1)}});
  builder.log().blocks[indices.commit][700] = 0x5A;
  auto plan = ScanJournal(builder.Finish(), kFsBlocks);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->transactions, 1u);
}

TEST(RecoveryTest, CompatChecksumCoversTheTransaction) {
  for (uint32_t incompat : {0u, format::kJournalIncompatAsyncCommit}) {
    SCOPED_TRACE(incompat);
    const JournalSuperblock jsb =
        MakeJsb(format::kJournalIncompatRevoke | incompat,
                format::kJournalCompatChecksum);
    LogBuilder builder(jsb);
    builder.Transaction(100, {{10, Content(1)}});
    const auto second =
        builder.Transaction(101, {{10, Content(2)}, {11, Content(3)}});
    builder.Transaction(102, {{12, Content(4)}});
    {
      auto plan = ScanJournal(builder.Finish(), kFsBlocks);
      ASSERT_TRUE(plan.ok()) << plan.status();
      EXPECT_EQ(plan->transactions, 3u);
    }
    // A changed data block no longer matches the commit's crc32.
    builder.log().blocks[second.data[1]][9] ^= 1;
    auto plan = ScanJournal(builder.Finish(), kFsBlocks);
    ASSERT_TRUE(plan.ok()) << plan.status();
    EXPECT_EQ(plan->transactions, 1u);
    EXPECT_EQ(plan->blocks[10], Content(1));
  }
}

TEST(RecoveryTest, CompatCommitWithoutChecksumPasses) {
  const JournalSuperblock jsb =
      MakeJsb(format::kJournalIncompatRevoke, format::kJournalCompatChecksum);
  LogBuilder builder(jsb);
  const auto indices = builder.Transaction(100, {{10, Content(1)}});
  std::vector<uint8_t>& commit = builder.log().blocks[indices.commit];
  commit[12] = 0;  // h_chksum_type
  commit[13] = 0;  // h_chksum_size
  format::PutBe32(commit, 16, 0);
  auto plan = ScanJournal(builder.Finish(), kFsBlocks);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->transactions, 1u);
}

TEST(RecoveryTest, BadDescriptorChecksumWithNewerCommitFailsRecovery) {
  LogBuilder builder(MakeJsb(kCsumV3));
  builder.Transaction(100, {{10, Content(1)}});
  const auto second = builder.Transaction(101, {{10, Content(2)}});
  builder.log().blocks[second.descriptors[0]][100] ^= 1;
  auto plan = ScanJournal(builder.Finish(), kFsBlocks);
  EXPECT_EQ(ErrnoOf(plan.status()), EBADMSG) << plan.status();
}

TEST(RecoveryTest, BadRevokeChecksumWithNewerCommitFailsRecovery) {
  LogBuilder builder(MakeJsb(kCsumV3));
  builder.Transaction(100, {{10, Content(1)}});
  const auto second = builder.Transaction(101, {}, {10});
  builder.log().blocks[second.revokes[0]][20] ^= 1;
  auto plan = ScanJournal(builder.Finish(), kFsBlocks);
  EXPECT_EQ(ErrnoOf(plan.status()), EBADMSG) << plan.status();
}

TEST(RecoveryTest, BadDescriptorChecksumWithOlderCommitIsStale) {
  LogBuilder builder(MakeJsb(kCsumV3));
  builder.Transaction(100, {{10, Content(1)}}, {}, true, /*commit_time=*/500);
  // Left over from an earlier pass over the log: an older commit time.
  const auto stale =
      builder.Transaction(101, {{10, Content(2)}}, {}, true, 400);
  builder.log().blocks[stale.descriptors[0]][100] ^= 1;
  auto plan = ScanJournal(builder.Finish(), kFsBlocks);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->transactions, 1u);
  EXPECT_EQ(plan->blocks[10], Content(1));
}

TEST(RecoveryTest, RevokeCountPastTheBlockFailsRecovery) {
  LogBuilder builder(MakeJsb(kCsumV3));
  const auto indices = builder.Transaction(100, {}, {10}, /*commit=*/false);
  std::vector<uint8_t>& revoke = builder.log().blocks[indices.revokes[0]];
  format::PutBe32(revoke, 12, kBlockSize);
  format::SetJournalBlockTail(MakeJsb(kCsumV3), revoke);
  auto plan = ScanJournal(builder.Finish(), kFsBlocks);
  EXPECT_EQ(ErrnoOf(plan.status()), EUCLEAN) << plan.status();
}

TEST(RecoveryTest, UnknownBlockTypeEndsTheLog) {
  LogBuilder builder(MakeJsb(0));
  builder.Transaction(100, {{10, Content(1)}});
  std::vector<uint8_t> odd(kBlockSize, 0);
  format::PutJournalHeader(odd, format::kJournalSuperblockV2, 101);
  builder.Put(odd);
  builder.Transaction(101, {{10, Content(2)}});
  auto plan = ScanJournal(builder.Finish(), kFsBlocks);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->transactions, 1u);
}

TEST(RecoveryTest, HostileLogsTerminate) {
  // Every block of the log a descriptor of the same transaction, none
  // with LAST_TAG, and never a commit: the scan stops after one lap.
  JournalSuperblock jsb = MakeJsb(0);
  LogBuilder builder(jsb);
  std::vector<uint8_t> descriptor(kBlockSize, 0);
  format::PutJournalHeader(descriptor, format::kJournalDescriptorBlock, 100);
  for (size_t at = 12; at + 8 <= kBlockSize; at += 8) {
    format::PutBe16(descriptor, at + 6, format::kJournalTagSameUuid);
  }
  for (uint64_t i = jsb.first; i < jsb.log_end(); ++i) {
    builder.log().blocks[i] = descriptor;
  }
  MemoryLog& log = builder.Finish();
  auto plan = ScanJournal(log, kFsBlocks);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->transactions, 0u);
  EXPECT_LE(log.reads, 2u * jsb.max_len);

  // The same with every block a valid commit: one lap of transactions at
  // most, as the sequence at s_start no longer matches after it.
  JournalSuperblock commits_jsb = MakeJsb(0);
  LogBuilder commits(commits_jsb);
  for (uint64_t i = commits_jsb.first; i < commits_jsb.log_end(); ++i) {
    commits.Transaction(static_cast<uint32_t>(100 + i - commits_jsb.first), {});
  }
  auto lap = ScanJournal(commits.Finish(), kFsBlocks);
  ASSERT_TRUE(lap.ok()) << lap.status();
  EXPECT_EQ(lap->transactions, commits_jsb.log_end() - commits_jsb.first);
}

TEST(RecoveryTest, FastCommitAreaIsReported) {
  JournalSuperblock jsb = MakeJsb(kCsumV3 | format::kJournalIncompatFastCommit);
  jsb.max_len = 1024 + 256;
  for (uint32_t tid : {101u, 99u}) {
    SCOPED_TRACE(tid);
    LogBuilder builder(jsb);
    builder.Transaction(100, {{10, Content(1)}});
    std::vector<uint8_t> fc(kBlockSize, 0);
    format::Put16(fc, 0, 0x0009);  // EXT4_FC_TAG_HEAD
    format::Put16(fc, 2, 8);
    format::Put32(fc, 8, tid);
    builder.log().blocks[jsb.log_end() + 1] = fc;
    auto plan = ScanJournal(builder.Finish(), kFsBlocks);
    ASSERT_TRUE(plan.ok()) << plan.status();
    EXPECT_EQ(plan->transactions, 1u);
    EXPECT_EQ(plan->fast_commit_data, tid == 101u);
  }
}

TEST(RecoveryTest, GeometryMismatchesAreRefused) {
  LogBuilder builder(MakeJsb(kCsumV3));
  builder.Transaction(100, {{10, Content(1)}});
  MemoryLog& log = builder.Finish();
  // A log with another block size.
  MemoryLog other(1024, 2048);
  std::vector<uint8_t> sb(2048, 0);
  std::copy(log.blocks[0].begin(), log.blocks[0].end(), sb.begin());
  other.blocks[0] = sb;
  EXPECT_EQ(ErrnoOf(ScanJournal(other, kFsBlocks).status()), EUCLEAN);
  // A log shorter than s_maxlen.
  MemoryLog short_log(1000, kBlockSize);
  short_log.blocks = log.blocks;
  EXPECT_EQ(ErrnoOf(ScanJournal(short_log, kFsBlocks).status()), EUCLEAN);
  // No journal superblock.
  MemoryLog empty(1024, kBlockSize);
  EXPECT_EQ(ErrnoOf(ScanJournal(empty, kFsBlocks).status()), EUCLEAN);
}

TEST(RecoveryTest, ReadErrorsPropagate) {
  class FailingLog : public MemoryLog {
   public:
    using MemoryLog::MemoryLog;
    absl::Status Read(uint64_t index, std::span<uint8_t> out) override {
      if (index == fail_at) return ErrnoError(EIO, "injected");
      return MemoryLog::Read(index, out);
    }
    uint64_t fail_at = 0;
  };
  LogBuilder builder(MakeJsb(kCsumV3));
  const auto indices = builder.Transaction(100, {{10, Content(1)}});
  FailingLog log(1024, kBlockSize);
  log.blocks = builder.Finish().blocks;
  for (uint64_t at : {uint64_t{0}, indices.descriptors[0], indices.data[0]}) {
    log.fail_at = at;
    EXPECT_EQ(ErrnoOf(ScanJournal(log, kFsBlocks).status()), EIO);
  }
}

// ---- The kernel's own journal ----
//
// Loop-mounts an mke2fs image, writes, then shuts the filesystem down with
// EXT4_IOC_SHUTDOWN / LOGFLUSH: the log is committed but never
// checkpointed. Our replay of that image must come out block for block as
// e2fsck's (`-E journal_only`), and e2fsck -fn must then say the same of
// both.

using ::ext4::testing::HaveTools;
using ::ext4::testing::kDebugfs;
using ::ext4::testing::kDumpe2fs;
using ::ext4::testing::kE2fsck;
using ::ext4::testing::kMke2fs;
using ::ext4::testing::MakeTempDir;
using ::ext4::testing::ReadFileBytes;
using ::ext4::testing::RunCommand;
using ::ext4::testing::StderrMode;

class BytesLog : public JournalLog {
 public:
  BytesLog(std::string bytes, uint32_t block_size)
      : bytes_(std::move(bytes)), block_size_(block_size) {}
  uint64_t block_count() const override { return bytes_.size() / block_size_; }
  uint32_t block_size() const override { return block_size_; }
  absl::Status Read(uint64_t index, std::span<uint8_t> out) override {
    if (index >= block_count()) return ErrnoError(EIO, "past the journal");
    std::copy_n(bytes_.begin() + index * block_size_, block_size_, out.begin());
    return absl::OkStatus();
  }

 private:
  std::string bytes_;
  uint32_t block_size_;
};

bool WriteAt(const std::string& path, uint64_t offset,
             const std::vector<uint8_t>& bytes) {
  const int fd = open(path.c_str(), O_WRONLY);
  if (fd < 0) return false;
  const ssize_t n = pwrite(fd, bytes.data(), bytes.size(), offset);
  close(fd);
  return n == static_cast<ssize_t>(bytes.size());
}

std::vector<uint8_t> ReadAt(const std::string& path, uint64_t offset,
                            size_t size) {
  return ::ext4::testing::ReadFileAt(path, offset, size);
}

struct KernelCase {
  const char* name;
  const char* mkfs_args;
  const char* mount_options;
};

class KernelJournalTest : public ::testing::TestWithParam<KernelCase> {};

// Work that leaves all kinds of blocks in the log: new directories and
// files, deletions (revoke records), renames, hard links, and a data block
// that starts with the jbd2 magic (escaped under data=journal).
constexpr char kWorkload[] = R"(set -e
cd "$1"
mkdir -p d/sub
for i in $(seq 1 40); do echo "file $i" > d/f$i; done
printf '\300\073\071\230 starts with the jbd2 magic' > magic
head -c 300000 /dev/urandom > big
sync
rm -rf d/sub d/f1 d/f2 d/f3
mkdir d2
for i in $(seq 1 40); do echo "again $i" > d2/g$i; done
mv d/f10 d2/moved
ln d2/g1 hard
rm big
head -c 50000 /dev/urandom > big2
sync
echo tail > last
)";

TEST_P(KernelJournalTest, ReplayMatchesE2fsck) {
  const KernelCase& param = GetParam();
  if (geteuid() != 0) GTEST_SKIP() << "needs root for loop mounts";
  if (!HaveTools({kMke2fs, kE2fsck, kDebugfs, kDumpe2fs})) {
    GTEST_SKIP() << "e2fsprogs not installed";
  }
  const std::string dir = MakeTempDir("e4fs_jbd2_kernel_");
  ASSERT_FALSE(dir.empty());
  const std::string image = dir + "/fs.img";
  const std::string mnt = dir + "/mnt";
  // Unmounts (if a step failed while mounted) and removes the scratch
  // directory however the test ends.
  struct Cleanup {
    std::string dir, mnt;
    ~Cleanup() {
      RunCommand("mountpoint -q " + mnt + " && umount " + mnt,
                 StderrMode::kDiscard);
      RunCommand("rm -rf " + dir, StderrMode::kDiscard);
    }
  } cleanup{dir, mnt};
  ASSERT_EQ(RunCommand(absl::StrCat(kMke2fs, " -q -F ", param.mkfs_args, " ",
                                    image, " 64M"))
                .exit_code,
            0);
  ASSERT_EQ(RunCommand("mkdir -p " + mnt).exit_code, 0);
  auto mounted = RunCommand(
      absl::StrCat("mount -o loop", param.mount_options, " ", image, " ", mnt));
  if (mounted.exit_code != 0) {
    GTEST_SKIP() << "loop mount failed: " << mounted.output;
  }
  const std::string script = dir + "/work.sh";
  {
    FILE* f = std::fopen(script.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(kWorkload, f);
    std::fclose(f);
  }
  auto work = RunCommand(absl::StrCat("sh ", script, " ", mnt));
  // EXT4_IOC_SHUTDOWN = _IOR('X', 125, __u32), EXT4_GOING_FLAGS_LOGFLUSH.
  auto shutdown = RunCommand(
      absl::StrCat("python3 -c \"import fcntl, os, struct; "
                   "fd = os.open('",
                   mnt,
                   "', os.O_RDONLY); "
                   "fcntl.ioctl(fd, 0x8004587D, struct.pack('I', 1))\""));
  auto unmounted = RunCommand("umount " + mnt);
  ASSERT_EQ(work.exit_code, 0) << work.output;
  ASSERT_EQ(shutdown.exit_code, 0) << shutdown.output;
  ASSERT_EQ(unmounted.exit_code, 0) << unmounted.output;

  // The journal and what debugfs sees in it.
  std::vector<uint8_t> raw_sb =
      ReadAt(image, format::kSuperblockOffset, format::kSuperblockSize);
  auto sb = format::ParseSuperblock(raw_sb);
  ASSERT_TRUE(sb.ok()) << sb.status();
  ASSERT_TRUE(sb->has_incompat(format::kIncompatRecover))
      << "the shutdown left nothing to recover";
  const uint32_t bs = sb->block_size();
  const std::string journal_file = dir + "/journal.bin";
  ASSERT_EQ(RunCommand(absl::StrCat(kDebugfs, " -R \"dump <8> ", journal_file,
                                    "\" ", image))
                .exit_code,
            0);
  auto bmap = RunCommand(absl::StrCat(kDebugfs, " -R \"bmap <8> 0\" ", image),
                         StderrMode::kDiscard);
  ASSERT_EQ(bmap.exit_code, 0);
  const uint64_t journal_sb_block = std::stoull(bmap.output);
  const std::string logdump =
      RunCommand(absl::StrCat(kDebugfs, " -R logdump ", image),
                 StderrMode::kDiscard)
          .output;
  uint32_t logdump_commits = 0;
  for (size_t at = logdump.find("(commit block)"); at != std::string::npos;
       at = logdump.find("(commit block)", at + 1)) {
    ++logdump_commits;
  }

  BytesLog log(ReadFileBytes(journal_file), bs);
  auto plan = ScanJournal(log, sb->blocks_count);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->needed);
  EXPECT_GT(plan->transactions, 0u);
  EXPECT_EQ(plan->transactions, logdump_commits) << logdump;
  EXPECT_EQ(plan->checksum_errors, 0u);
  EXPECT_EQ(plan->out_of_range, 0u);
  EXPECT_FALSE(plan->fast_commit_data);
  std::printf(
      "[ info ] %s: %u transactions, %zu blocks, %llu replayed, "
      "%llu revoked, journal features 0x%x\n",
      param.name, plan->transactions, plan->blocks.size(),
      static_cast<unsigned long long>(plan->replayed),
      static_cast<unsigned long long>(plan->revoked),
      plan->superblock.feature_incompat);

  // Ours: write the plan, mark the journal empty, clear needs_recovery.
  const std::string ours = dir + "/ours.img";
  const std::string theirs = dir + "/theirs.img";
  ASSERT_EQ(RunCommand(absl::StrCat("cp ", image, " ", ours, " && cp ", image,
                                    " ", theirs))
                .exit_code,
            0);
  for (const auto& [block, bytes] : plan->blocks) {
    ASSERT_TRUE(WriteAt(ours, block * bs, bytes));
  }
  {
    std::vector<uint8_t> jsb_block = ReadAt(ours, journal_sb_block * bs, bs);
    auto jsb = format::ParseJournalSuperblock(jsb_block);
    ASSERT_TRUE(jsb.ok()) << jsb.status();
    jsb->start = 0;
    jsb->sequence = plan->restart_sequence;
    format::SerializeJournalSuperblock(*jsb, jsb_block);
    ASSERT_TRUE(WriteAt(ours, journal_sb_block * bs, jsb_block));
    std::vector<uint8_t> fs_sb =
        ReadAt(ours, format::kSuperblockOffset, format::kSuperblockSize);
    auto replayed = format::ParseSuperblock(fs_sb);
    ASSERT_TRUE(replayed.ok()) << replayed.status();
    replayed->feature_incompat &= ~format::kIncompatRecover;
    format::SerializeSuperblock(*replayed, fs_sb);
    ASSERT_TRUE(WriteAt(ours, format::kSuperblockOffset, fs_sb));
  }

  // Theirs: e2fsck replays the journal and does nothing else.
  auto replay =
      RunCommand(absl::StrCat(kE2fsck, " -y -E journal_only ", theirs));
  ASSERT_LE(replay.exit_code, 1) << replay.output;

  // Block for block the same, but for the superblock, whose bookkeeping
  // e2fsck updates as it goes (free counts, write time, kbytes written).
  const std::string a = ReadFileBytes(ours);
  const std::string b = ReadFileBytes(theirs);
  ASSERT_EQ(a.size(), b.size());
  std::vector<uint64_t> differing;
  for (uint64_t block = 0; block * bs < a.size(); ++block) {
    if (a.compare(block * bs, bs, b, block * bs, bs) != 0) {
      differing.push_back(block);
    }
  }
  const uint64_t sb_block = format::kSuperblockOffset / bs;
  std::string listed;
  for (uint64_t block : differing) absl::StrAppend(&listed, block, " ");
  EXPECT_TRUE(differing.empty() ||
              (differing.size() == 1 && differing[0] == sb_block))
      << "blocks that differ: " << listed;

  // e2fsck says the same of both.
  auto check_ours = RunCommand(absl::StrCat(kE2fsck, " -fn ", ours));
  auto check_theirs = RunCommand(absl::StrCat(kE2fsck, " -fn ", theirs));
  auto strip = [](std::string text, const std::string& name) {
    for (size_t at = text.find(name); at != std::string::npos;
         at = text.find(name)) {
      text.replace(at, name.size(), "IMAGE");
    }
    return text;
  };
  EXPECT_EQ(check_ours.exit_code, check_theirs.exit_code);
  EXPECT_EQ(strip(check_ours.output, ours), strip(check_theirs.output, theirs));
  EXPECT_EQ(check_ours.exit_code, 0) << check_ours.output;

  // And debugfs reads the same tree and contents.
  for (const char* request :
       {"ls -l /", "ls -l /d", "ls -l /d2", "cat /magic", "cat /d2/moved",
        "cat /hard", "cat /last", "stat /big2"}) {
    SCOPED_TRACE(request);
    auto x = RunCommand(absl::StrCat(kDebugfs, " -R \"", request, "\" ", ours),
                        StderrMode::kDiscard);
    auto y =
        RunCommand(absl::StrCat(kDebugfs, " -R \"", request, "\" ", theirs),
                   StderrMode::kDiscard);
    EXPECT_EQ(x.output, y.output);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Kernel, KernelJournalTest,
    ::testing::Values(
        KernelCase{"csum_v3_64bit", "-t ext4 -O metadata_csum,64bit", ""},
        KernelCase{"data_journal", "-t ext4 -O metadata_csum,64bit",
                   ",data=journal"},
        KernelCase{"no_csum_32bit", "-t ext4 -O ^metadata_csum,^64bit", ""},
        KernelCase{"ext3_4k", "-t ext3 -b 4096", ",data=journal"}),
    [](const ::testing::TestParamInfo<KernelCase>& info) {
      return std::string(info.param.name);
    });

}  // namespace
}  // namespace ext4::journal
