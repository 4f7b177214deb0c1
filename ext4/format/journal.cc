#include "ext4/format/journal.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <string>
#include <string_view>

#include "ext4/errno_status.h"
#include "ext4/format/big_endian.h"
#include "ext4/format/checksum.h"

namespace ext4::format {
namespace {

// Superblock field offsets.
constexpr size_t kSbBlockSize = 0x0C;
constexpr size_t kSbMaxLen = 0x10;
constexpr size_t kSbFirst = 0x14;
constexpr size_t kSbSequence = 0x18;
constexpr size_t kSbStart = 0x1C;
constexpr size_t kSbErrno = 0x20;
constexpr size_t kSbFeatureCompat = 0x24;
constexpr size_t kSbFeatureIncompat = 0x28;
constexpr size_t kSbFeatureRoCompat = 0x2C;
constexpr size_t kSbUuid = 0x30;
constexpr size_t kSbNrUsers = 0x40;
constexpr size_t kSbDynSuper = 0x44;
constexpr size_t kSbMaxTransaction = 0x48;
constexpr size_t kSbMaxTransData = 0x4C;
constexpr size_t kSbChecksumType = 0x50;
constexpr size_t kSbNumFcBlks = 0x54;
constexpr size_t kSbHead = 0x58;

// Commit block field offsets.
constexpr size_t kCommitChecksumType = 12;
constexpr size_t kCommitChecksumSize = 13;
constexpr size_t kCommitChecksum = 16;  // h_chksum[0]
constexpr size_t kCommitSeconds = 48;
constexpr size_t kCommitNanoseconds = 56;
// sizeof(struct commit_header) on 64-bit builds, tail padding included: the
// part of the block the kernel's "partial" commit checksum keeps.
constexpr size_t kCommitStructSize = 64;

// Revoke block: r_count follows the header.
constexpr size_t kRevokeCount = 12;

constexpr std::array<uint8_t, 1024> kZeros{};

// crc32c over `count` zero bytes.
uint32_t Crc32cZeros(uint32_t crc, size_t count) {
  while (count > 0) {
    const size_t n = std::min(count, kZeros.size());
    crc = Crc32c(crc, Bytes(kZeros.data(), n));
    count -= n;
  }
  return crc;
}

// crc32c over `block` with the four bytes at `hole` taken as zeros.
uint32_t Crc32cWithHole(uint32_t crc, Bytes block, size_t hole) {
  crc = Crc32c(crc, block.subspan(0, hole));
  crc = Crc32cZeros(crc, 4);
  return Crc32c(crc, block.subspan(hole + 4));
}

// A journal checksum mismatch: EBADMSG (the kernel's EFSBADCRC) in normal
// builds; counted and ignored in fuzz builds, like ChecksumMismatch().
absl::Status BadChecksum(std::string_view what) {
  absl::Status counted = ChecksumMismatch(what);
  if (counted.ok()) return counted;
  return ErrnoError(EBADMSG, std::string(what) + ": checksum mismatch");
}

bool IsPowerOfTwo(uint32_t value) {
  return value != 0 && (value & (value - 1)) == 0;
}

constexpr std::array<uint32_t, 256> MakeCrc32BeTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t byte = 0; byte < 256; ++byte) {
    uint32_t crc = byte << 24;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x80000000u) ? (crc << 1) ^ 0x04C11DB7u : crc << 1;
    }
    table[byte] = crc;
  }
  return table;
}

constexpr std::array<uint32_t, 256> kCrc32BeTable = MakeCrc32BeTable();

absl::Status CheckHeader(Bytes block, uint32_t blocktype,
                         std::string_view what) {
  const std::optional<JournalHeader> header = ParseJournalHeader(block);
  if (!header.has_value()) {
    return Corrupt(std::string(what) + ": no journal magic");
  }
  if (header->blocktype != blocktype) {
    return Corrupt(std::string(what) + ": wrong block type " +
                   std::to_string(header->blocktype));
  }
  return absl::OkStatus();
}

}  // namespace

std::optional<JournalHeader> ParseJournalHeader(Bytes block) {
  if (block.size() < kJournalHeaderSize) return std::nullopt;
  if (Be32(block, 0) != kJournalMagic) return std::nullopt;
  JournalHeader header;
  header.blocktype = Be32(block, 4);
  header.sequence = Be32(block, 8);
  return header;
}

void PutJournalHeader(MutableBytes block, uint32_t blocktype,
                      uint32_t sequence) {
  if (block.size() < kJournalHeaderSize) return;
  PutBe32(block, 0, kJournalMagic);
  PutBe32(block, 4, blocktype);
  PutBe32(block, 8, sequence);
}

// ---- Superblock -------------------------------------------------------------

uint32_t JournalSuperblock::ChecksumSeed() const {
  return Crc32c(~0u, Bytes(uuid.data(), uuid.size()));
}

uint32_t JournalSuperblock::num_fc_blocks() const {
  if (!fast_commit()) return 0;
  return num_fc_blks != 0 ? num_fc_blks : kJournalDefaultFastCommitBlocks;
}

uint32_t JournalSuperblockChecksum(Bytes raw) {
  return Crc32cWithHole(~0u, raw.subspan(0, kJournalSuperblockSize),
                        kJournalSuperblockChecksumOffset);
}

absl::StatusOr<JournalSuperblock> ParseJournalSuperblock(Bytes raw) {
  if (raw.size() < kJournalSuperblockSize) {
    return Corrupt("journal superblock: short buffer");
  }
  if (Be32(raw, 0) != kJournalMagic) {
    return Corrupt("journal superblock: bad magic");
  }
  JournalSuperblock jsb;
  jsb.blocktype = Be32(raw, 4);
  jsb.header_sequence = Be32(raw, 8);
  jsb.block_size = Be32(raw, kSbBlockSize);
  jsb.max_len = Be32(raw, kSbMaxLen);
  jsb.first = Be32(raw, kSbFirst);
  jsb.sequence = Be32(raw, kSbSequence);
  jsb.start = Be32(raw, kSbStart);
  jsb.error = Be32(raw, kSbErrno);
  jsb.feature_compat = Be32(raw, kSbFeatureCompat);
  jsb.feature_incompat = Be32(raw, kSbFeatureIncompat);
  jsb.feature_ro_compat = Be32(raw, kSbFeatureRoCompat);
  std::copy_n(raw.begin() + kSbUuid, kJournalUuidSize, jsb.uuid.begin());
  jsb.nr_users = Be32(raw, kSbNrUsers);
  jsb.dyn_super = Be32(raw, kSbDynSuper);
  jsb.max_transaction = Be32(raw, kSbMaxTransaction);
  jsb.max_trans_data = Be32(raw, kSbMaxTransData);
  jsb.checksum_type = raw[kSbChecksumType];
  jsb.num_fc_blks = Be32(raw, kSbNumFcBlks);
  jsb.head = Be32(raw, kSbHead);
  jsb.checksum = Be32(raw, kJournalSuperblockChecksumOffset);

  if (jsb.blocktype != kJournalSuperblockV1 &&
      jsb.blocktype != kJournalSuperblockV2) {
    return Corrupt("journal superblock: unknown format " +
                   std::to_string(jsb.blocktype));
  }
  if (!IsPowerOfTwo(jsb.block_size) || jsb.block_size < 1024 ||
      jsb.block_size > 65536) {
    return Corrupt("journal superblock: bad block size " +
                   std::to_string(jsb.block_size));
  }
  if (uint64_t{jsb.max_len} <
      uint64_t{kJournalMinBlocks} + jsb.num_fc_blocks()) {
    return Corrupt("journal superblock: journal too short (" +
                   std::to_string(jsb.max_len) + " blocks)");
  }
  if (jsb.first == 0 || jsb.first >= jsb.log_end()) {
    return Corrupt("journal superblock: bad first log block " +
                   std::to_string(jsb.first));
  }
  if (jsb.start != 0 && (jsb.start < jsb.first || jsb.start >= jsb.log_end())) {
    return Corrupt("journal superblock: log start " +
                   std::to_string(jsb.start) + " outside the log");
  }
  if (jsb.is_v2() && ((jsb.feature_incompat & ~kJournalKnownIncompat) != 0 ||
                      (jsb.feature_ro_compat & ~kJournalKnownRoCompat) != 0)) {
    return ErrnoError(EOPNOTSUPP, "journal superblock: unknown features");
  }
  if (jsb.csum_v2() && jsb.csum_v3()) {
    return Corrupt("journal superblock: both checksum v2 and v3");
  }
  if (jsb.csum_v2_or_v3()) {
    if (jsb.compat_checksum()) {
      return Corrupt("journal superblock: both checksum v1 and v2/v3");
    }
    if (jsb.checksum_type != kJournalChecksumCrc32c) {
      return Corrupt("journal superblock: unknown checksum type " +
                     std::to_string(jsb.checksum_type));
    }
    if (jsb.checksum != JournalSuperblockChecksum(raw)) {
      absl::Status status = ChecksumMismatch("journal superblock");
      if (!status.ok()) return status;
    }
  }
  return jsb;
}

void SerializeJournalSuperblock(const JournalSuperblock& jsb,
                                MutableBytes out) {
  if (out.size() < kJournalSuperblockSize) return;
  PutJournalHeader(out, jsb.blocktype, jsb.header_sequence);
  PutBe32(out, kSbBlockSize, jsb.block_size);
  PutBe32(out, kSbMaxLen, jsb.max_len);
  PutBe32(out, kSbFirst, jsb.first);
  PutBe32(out, kSbSequence, jsb.sequence);
  PutBe32(out, kSbStart, jsb.start);
  PutBe32(out, kSbErrno, jsb.error);
  PutBe32(out, kSbFeatureCompat, jsb.feature_compat);
  PutBe32(out, kSbFeatureIncompat, jsb.feature_incompat);
  PutBe32(out, kSbFeatureRoCompat, jsb.feature_ro_compat);
  std::copy(jsb.uuid.begin(), jsb.uuid.end(), out.begin() + kSbUuid);
  PutBe32(out, kSbNrUsers, jsb.nr_users);
  PutBe32(out, kSbDynSuper, jsb.dyn_super);
  PutBe32(out, kSbMaxTransaction, jsb.max_transaction);
  PutBe32(out, kSbMaxTransData, jsb.max_trans_data);
  out[kSbChecksumType] = jsb.checksum_type;
  PutBe32(out, kSbNumFcBlks, jsb.num_fc_blks);
  PutBe32(out, kSbHead, jsb.head);
  const uint32_t checksum =
      jsb.csum_v2_or_v3() ? JournalSuperblockChecksum(out) : jsb.checksum;
  PutBe32(out, kJournalSuperblockChecksumOffset, checksum);
}

// ---- Descriptor blocks ------------------------------------------------------

size_t JournalTagBytes(const JournalSuperblock& jsb) {
  if (jsb.csum_v3()) return 16;
  // The classic tag: t_blocknr, t_checksum, t_flags, t_blocknr_high. The
  // kernel adds two bytes for csum v2 on top of the t_checksum the struct
  // already has, and drops t_blocknr_high without 64bit.
  size_t bytes = 12;
  if (jsb.csum_v2()) bytes += 2;
  if (!jsb.has_64bit()) bytes -= 4;
  return bytes;
}

size_t JournalBlockTailBytes(const JournalSuperblock& jsb) {
  return jsb.csum_v2_or_v3() ? kJournalBlockTailSize : 0;
}

bool JournalBlockTailValid(const JournalSuperblock& jsb, Bytes block) {
  if (!jsb.csum_v2_or_v3()) return true;
  if (block.size() < kJournalBlockTailSize) return false;
  const size_t tail = block.size() - kJournalBlockTailSize;
  return Be32(block, tail) == Crc32cWithHole(jsb.ChecksumSeed(), block, tail);
}

void SetJournalBlockTail(const JournalSuperblock& jsb, MutableBytes block) {
  if (!jsb.csum_v2_or_v3() || block.size() < kJournalBlockTailSize) return;
  const size_t tail = block.size() - kJournalBlockTailSize;
  PutBe32(block, tail, Crc32cWithHole(jsb.ChecksumSeed(), block, tail));
}

std::vector<JournalTag> ParseDescriptorTags(const JournalSuperblock& jsb,
                                            Bytes block) {
  std::vector<JournalTag> tags;
  const size_t tag_bytes = JournalTagBytes(jsb);
  const size_t tail = JournalBlockTailBytes(jsb);
  if (block.size() < tail) return tags;
  const size_t end = block.size() - tail;
  size_t offset = kJournalHeaderSize;
  while (offset + tag_bytes <= end) {
    JournalTag tag;
    tag.block = Be32(block, offset);
    if (jsb.csum_v3()) {
      tag.flags = Be32(block, offset + 4);
      tag.checksum = Be32(block, offset + 12);
    } else {
      tag.flags = Be16(block, offset + 6);
      if (jsb.csum_v2()) tag.checksum = Be16(block, offset + 4);
    }
    if (jsb.has_64bit()) {
      tag.block |= uint64_t{Be32(block, offset + 8)} << 32;
    }
    tags.push_back(tag);
    offset += tag_bytes;
    if ((tag.flags & kJournalTagSameUuid) == 0) offset += kJournalUuidSize;
    if ((tag.flags & kJournalTagLastTag) != 0) break;
  }
  return tags;
}

absl::StatusOr<std::vector<JournalTag>> ParseDescriptor(
    const JournalSuperblock& jsb, Bytes block) {
  absl::Status header =
      CheckHeader(block, kJournalDescriptorBlock, "journal descriptor block");
  if (!header.ok()) return header;
  if (!JournalBlockTailValid(jsb, block)) {
    absl::Status status = BadChecksum("journal descriptor block");
    if (!status.ok()) return status;
  }
  return ParseDescriptorTags(jsb, block);
}

size_t DescriptorTagCapacity(const JournalSuperblock& jsb,
                             uint32_t block_size) {
  const size_t fixed =
      kJournalHeaderSize + kJournalUuidSize + JournalBlockTailBytes(jsb);
  if (block_size < fixed) return 0;
  return (block_size - fixed) / JournalTagBytes(jsb);
}

std::vector<uint8_t> EncodeDescriptor(const JournalSuperblock& jsb,
                                      uint32_t sequence,
                                      std::span<const JournalTag> tags,
                                      uint32_t block_size) {
  std::vector<uint8_t> out(block_size, 0);
  if (block_size < kJournalHeaderSize) return out;
  PutJournalHeader(out, kJournalDescriptorBlock, sequence);
  const size_t count =
      std::min(tags.size(), DescriptorTagCapacity(jsb, block_size));
  const size_t tag_bytes = JournalTagBytes(jsb);
  size_t offset = kJournalHeaderSize;
  for (size_t i = 0; i < count; ++i) {
    const JournalTag& tag = tags[i];
    uint32_t flags = tag.flags & ~(kJournalTagSameUuid | kJournalTagLastTag);
    if (i > 0) flags |= kJournalTagSameUuid;
    if (i + 1 == count) flags |= kJournalTagLastTag;
    PutBe32(out, offset, static_cast<uint32_t>(tag.block));
    if (jsb.csum_v3()) {
      PutBe32(out, offset + 4, flags);
      PutBe32(out, offset + 12, tag.checksum);
    } else {
      PutBe16(out, offset + 4,
              jsb.csum_v2() ? static_cast<uint16_t>(tag.checksum) : 0);
      PutBe16(out, offset + 6, static_cast<uint16_t>(flags));
    }
    if (jsb.has_64bit()) {
      PutBe32(out, offset + 8, static_cast<uint32_t>(tag.block >> 32));
    }
    offset += tag_bytes;
    if (i == 0) {
      std::copy(jsb.uuid.begin(), jsb.uuid.end(), out.begin() + offset);
      offset += kJournalUuidSize;
    }
  }
  SetJournalBlockTail(jsb, out);
  return out;
}

uint32_t DataBlockChecksum(const JournalSuperblock& jsb, uint32_t sequence,
                           Bytes data) {
  if (!jsb.csum_v2_or_v3()) return 0;
  std::array<uint8_t, 4> be_sequence{};
  PutBe32(be_sequence, 0, sequence);
  const uint32_t crc = Crc32c(jsb.ChecksumSeed(), be_sequence);
  return Crc32c(crc, data);
}

bool DataBlockChecksumMatches(const JournalSuperblock& jsb,
                              const JournalTag& tag, uint32_t sequence,
                              Bytes data) {
  if (!jsb.csum_v2_or_v3()) return true;
  const uint32_t expected = DataBlockChecksum(jsb, sequence, data);
  if (jsb.csum_v3()) return tag.checksum == expected;
  return (tag.checksum & 0xFFFF) == (expected & 0xFFFF);
}

bool NeedsEscape(Bytes data) {
  return data.size() >= 4 && Be32(data, 0) == kJournalMagic;
}

// ---- Commit blocks ----------------------------------------------------------

std::vector<uint8_t> EncodeCommit(const JournalSuperblock& jsb,
                                  uint32_t sequence, uint64_t seconds,
                                  uint32_t nanoseconds, uint32_t block_size,
                                  uint32_t transaction_crc32) {
  std::vector<uint8_t> out(block_size, 0);
  if (block_size < kJournalCommitHeaderSize) return out;
  PutJournalHeader(out, kJournalCommitBlock, sequence);
  PutBe64(out, kCommitSeconds, seconds);
  PutBe32(out, kCommitNanoseconds, nanoseconds);
  if (jsb.compat_checksum()) {
    out[kCommitChecksumType] = kJournalChecksumCrc32;
    out[kCommitChecksumSize] = kJournalCrc32ChecksumSize;
    PutBe32(out, kCommitChecksum, transaction_crc32);
  }
  if (jsb.csum_v2_or_v3()) {
    PutBe32(out, kCommitChecksum,
            Crc32cWithHole(jsb.ChecksumSeed(), out, kCommitChecksum));
  }
  return out;
}

bool CommitChecksumValid(const JournalSuperblock& jsb, Bytes block) {
  if (!jsb.csum_v2_or_v3()) return true;
  if (block.size() < kJournalCommitHeaderSize) return false;
  const uint32_t seed = jsb.ChecksumSeed();
  const uint32_t stored = Be32(block, kCommitChecksum);
  if (stored == Crc32cWithHole(seed, block, kCommitChecksum)) return true;
  // The header alone, the rest of the block taken as zeros.
  const size_t kept = std::min(block.size(), kCommitStructSize);
  uint32_t crc = Crc32cWithHole(seed, block.subspan(0, kept), kCommitChecksum);
  crc = Crc32cZeros(crc, block.size() - kept);
  return stored == crc;
}

absl::StatusOr<JournalCommit> ParseCommit(const JournalSuperblock& jsb,
                                          Bytes block) {
  if (block.size() < kJournalCommitHeaderSize) {
    return Corrupt("journal commit block: short buffer");
  }
  absl::Status header =
      CheckHeader(block, kJournalCommitBlock, "journal commit block");
  if (!header.ok()) return header;
  if (!CommitChecksumValid(jsb, block)) {
    absl::Status status = BadChecksum("journal commit block");
    if (!status.ok()) return status;
  }
  JournalCommit commit;
  commit.sequence = Be32(block, 8);
  commit.checksum_type = block[kCommitChecksumType];
  commit.checksum_size = block[kCommitChecksumSize];
  commit.checksum = Be32(block, kCommitChecksum);
  commit.seconds = Be64(block, kCommitSeconds);
  commit.nanoseconds = Be32(block, kCommitNanoseconds);
  return commit;
}

uint32_t Crc32Be(uint32_t crc, Bytes data) {
  for (uint8_t byte : data) {
    crc = (crc << 8) ^ kCrc32BeTable[((crc >> 24) ^ byte) & 0xFF];
  }
  return crc;
}

// ---- Revoke blocks ----------------------------------------------------------

namespace {
size_t RevokeRecordBytes(const JournalSuperblock& jsb) {
  return jsb.has_64bit() ? 8 : 4;
}
}  // namespace

absl::StatusOr<std::vector<uint64_t>> ParseRevokeRecords(
    const JournalSuperblock& jsb, Bytes block) {
  const size_t tail = JournalBlockTailBytes(jsb);
  if (block.size() < kJournalRevokeHeaderSize + tail) {
    return Corrupt("journal revoke block: short buffer");
  }
  const uint32_t count = Be32(block, kRevokeCount);
  if (count > block.size() - tail) {
    return Corrupt("journal revoke block: r_count " + std::to_string(count) +
                   " past the block");
  }
  const size_t record = RevokeRecordBytes(jsb);
  std::vector<uint64_t> blocks;
  for (size_t offset = kJournalRevokeHeaderSize; offset + record <= count;
       offset += record) {
    blocks.push_back(record == 8 ? Be64(block, offset) : Be32(block, offset));
  }
  return blocks;
}

absl::StatusOr<std::vector<uint64_t>> ParseRevoke(const JournalSuperblock& jsb,
                                                  Bytes block) {
  absl::Status header =
      CheckHeader(block, kJournalRevokeBlock, "journal revoke block");
  if (!header.ok()) return header;
  if (!JournalBlockTailValid(jsb, block)) {
    absl::Status status = BadChecksum("journal revoke block");
    if (!status.ok()) return status;
  }
  return ParseRevokeRecords(jsb, block);
}

size_t RevokeCapacity(const JournalSuperblock& jsb, uint32_t block_size) {
  const size_t fixed = kJournalRevokeHeaderSize + JournalBlockTailBytes(jsb);
  if (block_size < fixed) return 0;
  return (block_size - fixed) / RevokeRecordBytes(jsb);
}

std::vector<uint8_t> EncodeRevoke(const JournalSuperblock& jsb,
                                  uint32_t sequence,
                                  std::span<const uint64_t> blocks,
                                  uint32_t block_size) {
  std::vector<uint8_t> out(block_size, 0);
  if (block_size < kJournalRevokeHeaderSize) return out;
  PutJournalHeader(out, kJournalRevokeBlock, sequence);
  const size_t count = std::min(blocks.size(), RevokeCapacity(jsb, block_size));
  const size_t record = RevokeRecordBytes(jsb);
  size_t offset = kJournalRevokeHeaderSize;
  for (size_t i = 0; i < count; ++i) {
    if (record == 8) {
      PutBe64(out, offset, blocks[i]);
    } else {
      PutBe32(out, offset, static_cast<uint32_t>(blocks[i]));
    }
    offset += record;
  }
  PutBe32(out, kRevokeCount, static_cast<uint32_t>(offset));
  SetJournalBlockTail(jsb, out);
  return out;
}

}  // namespace ext4::format
