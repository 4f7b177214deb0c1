// The jbd2 journal: the input is a journal of 1024-byte blocks (block 0 the
// journal superblock; blocks past the input read as zeros). Every block goes
// through the descriptor, commit and revoke parsers, whose results must
// survive an encode / parse round trip, and the whole journal through
// ScanJournal, whose plan must keep its promises. Nothing may crash, read
// out of bounds or run away, whatever the superblock claims.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "ext4/format/endian.h"
#include "ext4/format/journal.h"
#include "ext4/journal/recovery.h"
#include "fuzz/fuzz_support.h"

namespace {

namespace format = ext4::format;
using format::Bytes;
using format::JournalSuperblock;
using format::JournalTag;

constexpr uint32_t kBlockSize = 1024;
// Blocks beyond it are out of range for the filesystem, so that replay
// skips some tags.
constexpr uint64_t kFsBlocks = 1 << 16;

class InputLog : public ext4::journal::JournalLog {
 public:
  explicit InputLog(Bytes input) : input_(input) {}

  // As long as any s_maxlen: unwritten blocks are zeros.
  uint64_t block_count() const override { return uint64_t{1} << 32; }
  uint32_t block_size() const override { return kBlockSize; }
  absl::Status Read(uint64_t index, std::span<uint8_t> out) override {
    FUZZ_CHECK(index < block_count());
    FUZZ_CHECK(out.size() == kBlockSize);
    ++reads_;
    std::fill(out.begin(), out.end(), 0);
    const uint64_t offset = index * kBlockSize;
    if (offset < input_.size()) {
      const size_t n = std::min<uint64_t>(kBlockSize, input_.size() - offset);
      std::memcpy(out.data(), input_.data() + offset, n);
    }
    return absl::OkStatus();
  }
  uint64_t reads() const { return reads_; }

 private:
  Bytes input_;
  uint64_t reads_ = 0;
};

// Superblocks to read blocks against when the input's own does not parse.
JournalSuperblock Variant(uint8_t selector) {
  static constexpr uint32_t kIncompat[] = {
      0,
      format::kJournalIncompat64Bit,
      format::kJournalIncompatCsumV2,
      format::kJournalIncompatCsumV2 | format::kJournalIncompat64Bit,
      format::kJournalIncompatCsumV3,
      format::kJournalIncompatCsumV3 | format::kJournalIncompat64Bit,
  };
  JournalSuperblock jsb;
  jsb.block_size = kBlockSize;
  jsb.max_len = 1024;
  jsb.first = 1;
  jsb.feature_incompat = kIncompat[selector % std::size(kIncompat)];
  if (jsb.csum_v2_or_v3()) jsb.checksum_type = format::kJournalChecksumCrc32c;
  for (size_t i = 0; i < jsb.uuid.size(); ++i) {
    jsb.uuid[i] = static_cast<uint8_t>(selector + i);
  }
  return jsb;
}

void CheckDescriptor(const JournalSuperblock& jsb, Bytes block) {
  const std::vector<JournalTag> tags = format::ParseDescriptorTags(jsb, block);
  FUZZ_CHECK(tags.size() <= (block.size() - format::kJournalHeaderSize) /
                                format::JournalTagBytes(jsb));
  (void)format::ParseDescriptor(jsb, block);
  if (tags.empty() ||
      tags.size() > format::DescriptorTagCapacity(jsb, kBlockSize)) {
    return;
  }
  // What the encoder writes for these tags reads back as them, with
  // SAME_UUID on all but the first and LAST_TAG on the last.
  const std::vector<uint8_t> encoded =
      format::EncodeDescriptor(jsb, 7, tags, kBlockSize);
  FUZZ_CHECK(encoded.size() == kBlockSize);
  auto parsed = format::ParseDescriptor(jsb, encoded);
  FUZZ_CHECK(parsed.ok());
  FUZZ_CHECK(parsed->size() == tags.size());
  const uint32_t mask = jsb.csum_v3() ? 0xFFFFFFFFu : 0xFFFFu;
  for (size_t i = 0; i < tags.size(); ++i) {
    const JournalTag& in = tags[i];
    const JournalTag& out = (*parsed)[i];
    const uint64_t block_mask = jsb.has_64bit() ? ~uint64_t{0} : 0xFFFFFFFFu;
    FUZZ_CHECK(out.block == (in.block & block_mask));
    uint32_t flags =
        in.flags & mask &
        ~(format::kJournalTagSameUuid | format::kJournalTagLastTag);
    if (i > 0) flags |= format::kJournalTagSameUuid;
    if (i + 1 == tags.size()) flags |= format::kJournalTagLastTag;
    FUZZ_CHECK(out.flags == flags);
    FUZZ_CHECK(out.checksum == in.checksum);
  }
}

void CheckRevoke(const JournalSuperblock& jsb, Bytes block) {
  (void)format::ParseRevoke(jsb, block);
  auto records = format::ParseRevokeRecords(jsb, block);
  if (!records.ok()) return;
  FUZZ_CHECK(records->size() <= format::RevokeCapacity(jsb, kBlockSize));
  const std::vector<uint8_t> encoded =
      format::EncodeRevoke(jsb, 3, *records, kBlockSize);
  auto again = format::ParseRevoke(jsb, encoded);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == *records);
}

void CheckCommit(const JournalSuperblock& jsb, Bytes block) {
  auto commit = format::ParseCommit(jsb, block);
  if (!commit.ok()) return;
  const std::vector<uint8_t> encoded =
      format::EncodeCommit(jsb, commit->sequence, commit->seconds,
                           commit->nanoseconds, kBlockSize, commit->checksum);
  auto again = format::ParseCommit(jsb, encoded);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->sequence == commit->sequence);
  FUZZ_CHECK(again->seconds == commit->seconds);
  FUZZ_CHECK(again->nanoseconds == commit->nanoseconds);
}

void CheckSuperblock(Bytes raw, const JournalSuperblock& jsb) {
  FUZZ_CHECK(jsb.block_size >= 1024 && jsb.block_size <= 65536);
  FUZZ_CHECK(jsb.first >= 1 && jsb.first < jsb.log_end());
  FUZZ_CHECK(jsb.log_end() <= jsb.max_len);
  FUZZ_CHECK(jsb.start == 0 ||
             (jsb.start >= jsb.first && jsb.start < jsb.log_end()));
  (void)jsb.ChecksumSeed();
  // Over its own bytes: parses back to the same fields.
  std::vector<uint8_t> out(raw.begin(), raw.begin() + 1024);
  format::SerializeJournalSuperblock(jsb, out);
  auto again = format::ParseJournalSuperblock(out);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->max_len == jsb.max_len && again->first == jsb.first &&
             again->start == jsb.start && again->sequence == jsb.sequence &&
             again->feature_incompat == jsb.feature_incompat &&
             again->uuid == jsb.uuid && again->head == jsb.head);
  // Over zeros: the fields alone carry everything.
  std::vector<uint8_t> fresh(1024, 0);
  format::SerializeJournalSuperblock(*again, fresh);
  std::vector<uint8_t> fresh_again(1024, 0);
  auto from_fresh = format::ParseJournalSuperblock(fresh);
  FUZZ_CHECK(from_fresh.ok());
  format::SerializeJournalSuperblock(*from_fresh, fresh_again);
  FUZZ_CHECK(fresh == fresh_again);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Bytes input(data, size);
  // Cap the work per input: the blocks themselves.
  if (size > 256 * kBlockSize) return 0;

  std::vector<uint8_t> block0(kBlockSize, 0);
  if (size > 0) std::memcpy(block0.data(), data, std::min<size_t>(size, 1024));
  // Short inputs are refused, not read past.
  if (size < 1024) (void)format::ParseJournalSuperblock(input);
  auto parsed = format::ParseJournalSuperblock(block0);
  if (parsed.ok()) CheckSuperblock(block0, *parsed);
  const JournalSuperblock jsb =
      parsed.ok() ? *parsed : Variant(size > 0 ? data[size - 1] : 0);

  for (size_t offset = 0; offset < size; offset += kBlockSize) {
    std::vector<uint8_t> block(kBlockSize, 0);
    std::memcpy(block.data(), data + offset,
                std::min<size_t>(kBlockSize, size - offset));
    (void)format::ParseJournalHeader(block);
    (void)format::JournalBlockTailValid(jsb, block);
    (void)format::CommitChecksumValid(jsb, block);
    (void)format::NeedsEscape(block);
    (void)format::DataBlockChecksum(jsb, 1, block);
    CheckDescriptor(jsb, block);
    CheckRevoke(jsb, block);
    CheckCommit(jsb, block);
    // Short views are refused, not read past.
    for (size_t cut : {0, 3, 11, 12, 15, 16, 19, 59, 60, 63}) {
      const Bytes part = Bytes(block).subspan(0, cut);
      (void)format::ParseDescriptor(jsb, part);
      (void)format::ParseDescriptorTags(jsb, part);
      (void)format::ParseRevoke(jsb, part);
      (void)format::ParseCommit(jsb, part);
      (void)format::CommitChecksumValid(jsb, part);
      (void)format::JournalBlockTailValid(jsb, part);
    }
  }

  InputLog log(input);
  auto plan = ext4::journal::ScanJournal(log, kFsBlocks);
  if (!plan.ok()) return 0;
  FUZZ_CHECK(parsed.ok());
  const JournalSuperblock& used = plan->superblock;
  // Recovery reads each log block at most a few times (scan, COMPAT
  // checksums, replay), plus the superblock and the fast-commit head.
  const uint64_t ring = used.log_end() - used.first;
  FUZZ_CHECK(log.reads() <= 3 * ring + 2);
  if (!plan->needed) {
    FUZZ_CHECK(plan->blocks.empty() && plan->transactions == 0);
    FUZZ_CHECK(plan->restart_sequence == used.sequence + 1);
    return 0;
  }
  FUZZ_CHECK(plan->transactions <= ring);
  FUZZ_CHECK(plan->next_sequence == used.sequence + plan->transactions);
  FUZZ_CHECK(plan->restart_sequence == plan->next_sequence + 1);
  FUZZ_CHECK(plan->blocks.size() <= plan->replayed);
  FUZZ_CHECK(plan->head_block >= used.first &&
             plan->head_block < used.log_end());
  for (const auto& [block, bytes] : plan->blocks) {
    FUZZ_CHECK(block < kFsBlocks);
    FUZZ_CHECK(bytes.size() == kBlockSize);
  }
  return 0;
}
