#include "ext4/format/journal.h"

#include <cerrno>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "ext4/format/big_endian.h"
#include "ext4/format/checksum.h"
#include "ext4/testing/image_tools.h"
#include "gtest/gtest.h"

namespace ext4::format {
namespace {

using ::ext4::testing::HaveTools;
using ::ext4::testing::kDebugfs;
using ::ext4::testing::kDumpe2fs;
using ::ext4::testing::kMke2fs;
using ::ext4::testing::MakeTempDir;
using ::ext4::testing::ReadFileBytes;
using ::ext4::testing::RunCommand;
using ::ext4::testing::StderrMode;

// A valid v2 superblock with the given features.
JournalSuperblock MakeJsb(uint32_t incompat, uint32_t compat = 0,
                          uint32_t block_size = 1024) {
  JournalSuperblock jsb;
  jsb.blocktype = kJournalSuperblockV2;
  jsb.block_size = block_size;
  jsb.max_len = 2048;
  jsb.first = 1;
  jsb.sequence = 77;
  jsb.start = 0;
  jsb.feature_compat = compat;
  jsb.feature_incompat = incompat;
  jsb.nr_users = 1;
  for (size_t i = 0; i < jsb.uuid.size(); ++i) {
    jsb.uuid[i] = static_cast<uint8_t>(0xA0 + i);
  }
  if ((incompat & (kJournalIncompatCsumV2 | kJournalIncompatCsumV3)) != 0) {
    jsb.checksum_type = kJournalChecksumCrc32c;
  }
  return jsb;
}

std::vector<uint8_t> Serialized(const JournalSuperblock& jsb) {
  std::vector<uint8_t> raw(jsb.block_size, 0);
  SerializeJournalSuperblock(jsb, raw);
  return raw;
}

int ErrnoOfParse(const std::vector<uint8_t>& raw) {
  return ErrnoOf(ParseJournalSuperblock(raw).status());
}

void ExpectSameFields(const JournalSuperblock& a, const JournalSuperblock& b) {
  EXPECT_EQ(a.blocktype, b.blocktype);
  EXPECT_EQ(a.header_sequence, b.header_sequence);
  EXPECT_EQ(a.block_size, b.block_size);
  EXPECT_EQ(a.max_len, b.max_len);
  EXPECT_EQ(a.first, b.first);
  EXPECT_EQ(a.sequence, b.sequence);
  EXPECT_EQ(a.start, b.start);
  EXPECT_EQ(a.error, b.error);
  EXPECT_EQ(a.feature_compat, b.feature_compat);
  EXPECT_EQ(a.feature_incompat, b.feature_incompat);
  EXPECT_EQ(a.feature_ro_compat, b.feature_ro_compat);
  EXPECT_EQ(a.uuid, b.uuid);
  EXPECT_EQ(a.nr_users, b.nr_users);
  EXPECT_EQ(a.dyn_super, b.dyn_super);
  EXPECT_EQ(a.max_transaction, b.max_transaction);
  EXPECT_EQ(a.max_trans_data, b.max_trans_data);
  EXPECT_EQ(a.checksum_type, b.checksum_type);
  EXPECT_EQ(a.num_fc_blks, b.num_fc_blks);
  EXPECT_EQ(a.head, b.head);
}

// ---- Endianness and the crc32_be of COMPAT_CHECKSUM ----

TEST(BigEndianTest, LoadsAndStores) {
  std::vector<uint8_t> buf(8, 0);
  PutBe32(buf, 0, 0xC03B3998);
  EXPECT_EQ(buf[0], 0xC0);
  EXPECT_EQ(buf[3], 0x98);
  EXPECT_EQ(Be32(buf, 0), 0xC03B3998u);
  PutBe16(buf, 4, 0x1234);
  EXPECT_EQ(buf[4], 0x12);
  EXPECT_EQ(Be16(buf, 4), 0x1234);
  PutBe64(buf, 0, 0x0102030405060708ull);
  EXPECT_EQ(buf[0], 0x01);
  EXPECT_EQ(buf[7], 0x08);
  EXPECT_EQ(Be64(buf, 0), 0x0102030405060708ull);
}

TEST(Crc32BeTest, MatchesTheBzip2CheckValue) {
  // CRC-32/BZIP2 of "123456789" is 0xFC891918 after its final inversion;
  // the kernel's crc32_be() stops before that.
  const std::string text = "123456789";
  const Bytes bytes(reinterpret_cast<const uint8_t*>(text.data()), text.size());
  EXPECT_EQ(Crc32Be(~0u, bytes), ~0xFC891918u);
  // Incremental updates give the same result.
  EXPECT_EQ(Crc32Be(Crc32Be(~0u, bytes.subspan(0, 4)), bytes.subspan(4)),
            ~0xFC891918u);
}

// ---- Superblock ----

TEST(JournalSuperblockTest, RoundTripsEveryFormat) {
  const uint32_t variants[] = {
      0,
      kJournalIncompatRevoke,
      kJournalIncompatRevoke | kJournalIncompat64Bit,
      kJournalIncompatRevoke | kJournalIncompatCsumV2,
      kJournalIncompatRevoke | kJournalIncompat64Bit | kJournalIncompatCsumV3,
      kJournalIncompatRevoke | kJournalIncompatCsumV3 |
          kJournalIncompatFastCommit | kJournalIncompatAsyncCommit,
  };
  for (uint32_t incompat : variants) {
    SCOPED_TRACE(incompat);
    JournalSuperblock jsb = MakeJsb(incompat, 0, 4096);
    jsb.header_sequence = 3;
    jsb.start = 5;
    jsb.error = static_cast<uint32_t>(-EIO);
    jsb.max_transaction = 9;
    jsb.max_trans_data = 10;
    jsb.dyn_super = 11;
    jsb.head = 12;
    jsb.max_len = 4096;
    std::vector<uint8_t> raw = Serialized(jsb);
    EXPECT_EQ(Be32(raw, 0), kJournalMagic);
    auto parsed = ParseJournalSuperblock(raw);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    ExpectSameFields(*parsed, jsb);
    std::vector<uint8_t> again(raw.size(), 0);
    SerializeJournalSuperblock(*parsed, again);
    EXPECT_EQ(again, raw);
    if (jsb.csum_v2_or_v3()) {
      EXPECT_EQ(parsed->checksum, JournalSuperblockChecksum(raw));
      EXPECT_EQ(Be32(raw, kJournalSuperblockChecksumOffset),
                JournalSuperblockChecksum(raw));
    }
  }
}

TEST(JournalSuperblockTest, V1HasNoFeatures) {
  JournalSuperblock jsb = MakeJsb(0);
  jsb.blocktype = kJournalSuperblockV1;
  // A v1 superblock's feature words mean nothing, even unknown bits.
  jsb.feature_incompat = 0xFFFFFF00 | kJournalIncompat64Bit;
  jsb.feature_compat = kJournalCompatChecksum;
  auto parsed = ParseJournalSuperblock(Serialized(jsb));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_FALSE(parsed->is_v2());
  EXPECT_FALSE(parsed->has_64bit());
  EXPECT_FALSE(parsed->compat_checksum());
  EXPECT_EQ(JournalTagBytes(*parsed), 8u);
}

TEST(JournalSuperblockTest, SerializeKeepsUnknownBytes) {
  JournalSuperblock jsb = MakeJsb(kJournalIncompatCsumV3);
  std::vector<uint8_t> raw(1024, 0);
  raw[0x100] = 0x5A;  // s_users
  raw[0x60] = 0x33;   // padding
  SerializeJournalSuperblock(jsb, raw);
  EXPECT_EQ(raw[0x100], 0x5A);
  EXPECT_EQ(raw[0x60], 0x33);
  // And they are covered by the checksum.
  auto parsed = ParseJournalSuperblock(raw);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  raw[0x100] = 0x5B;
  EXPECT_EQ(ErrnoOfParse(raw), EUCLEAN);
}

TEST(JournalSuperblockTest, SerializeIntoShortBufferWritesNothing) {
  std::vector<uint8_t> raw(1000, 0xEE);
  SerializeJournalSuperblock(MakeJsb(0), raw);
  EXPECT_EQ(raw, std::vector<uint8_t>(1000, 0xEE));
}

TEST(JournalSuperblockTest, FastCommitGeometry) {
  JournalSuperblock jsb = MakeJsb(kJournalIncompatFastCommit);
  EXPECT_EQ(jsb.num_fc_blocks(), kJournalDefaultFastCommitBlocks);
  EXPECT_EQ(jsb.log_end(), 2048u - 256u);
  jsb.num_fc_blks = 100;
  EXPECT_EQ(jsb.num_fc_blocks(), 100u);
  EXPECT_EQ(jsb.log_end(), 1948u);
  jsb.feature_incompat = 0;
  EXPECT_EQ(jsb.num_fc_blocks(), 0u);
  EXPECT_EQ(jsb.log_end(), 2048u);

  // The regular log must keep kJournalMinBlocks next to the fast commits.
  JournalSuperblock small = MakeJsb(kJournalIncompatFastCommit);
  small.max_len = 1024 + 255;
  EXPECT_EQ(ErrnoOfParse(Serialized(small)), EUCLEAN);
  small.max_len = 1024 + 256;
  EXPECT_TRUE(ParseJournalSuperblock(Serialized(small)).ok());
}

TEST(JournalSuperblockTest, ChecksumSeedIsCrc32cOfUuid) {
  JournalSuperblock jsb = MakeJsb(kJournalIncompatCsumV3);
  EXPECT_EQ(jsb.ChecksumSeed(),
            Crc32c(~0u, Bytes(jsb.uuid.data(), jsb.uuid.size())));
}

TEST(JournalSuperblockTest, RejectsCorruptSuperblocks) {
  const JournalSuperblock good = MakeJsb(kJournalIncompatCsumV3);
  ASSERT_TRUE(ParseJournalSuperblock(Serialized(good)).ok());

  std::vector<uint8_t> raw = Serialized(good);
  EXPECT_EQ(
      ErrnoOf(ParseJournalSuperblock(Bytes(raw).subspan(0, 1023)).status()),
      EUCLEAN);
  raw[0] ^= 1;
  EXPECT_EQ(ErrnoOfParse(raw), EUCLEAN);

  auto with = [&](auto change) {
    JournalSuperblock jsb = good;
    change(jsb);
    return ErrnoOfParse(Serialized(jsb));
  };
  EXPECT_EQ(with([](JournalSuperblock& j) { j.blocktype = 1; }), EUCLEAN);
  EXPECT_EQ(with([](JournalSuperblock& j) { j.blocktype = 5; }), EUCLEAN);
  EXPECT_EQ(with([](JournalSuperblock& j) { j.block_size = 1536; }), EUCLEAN);
  EXPECT_EQ(with([](JournalSuperblock& j) { j.block_size = 512; }), EUCLEAN);
  EXPECT_EQ(with([](JournalSuperblock& j) { j.block_size = 1 << 17; }),
            EUCLEAN);
  EXPECT_EQ(with([](JournalSuperblock& j) { j.max_len = 1023; }), EUCLEAN);
  EXPECT_EQ(with([](JournalSuperblock& j) { j.first = 0; }), EUCLEAN);
  EXPECT_EQ(with([](JournalSuperblock& j) { j.first = 2048; }), EUCLEAN);
  EXPECT_EQ(with([](JournalSuperblock& j) {
              j.first = 10;
              j.start = 9;
            }),
            EUCLEAN);
  EXPECT_EQ(with([](JournalSuperblock& j) { j.start = 2048; }), EUCLEAN);
  EXPECT_EQ(with([](JournalSuperblock& j) { j.feature_incompat |= 0x40; }),
            EOPNOTSUPP);
  EXPECT_EQ(with([](JournalSuperblock& j) { j.feature_ro_compat = 1; }),
            EOPNOTSUPP);
  EXPECT_EQ(with([](JournalSuperblock& j) {
              j.feature_incompat |= kJournalIncompatCsumV2;
            }),
            EUCLEAN);
  EXPECT_EQ(with([](JournalSuperblock& j) {
              j.feature_compat |= kJournalCompatChecksum;
            }),
            EUCLEAN);
  EXPECT_EQ(with([](JournalSuperblock& j) {
              j.checksum_type = kJournalChecksumCrc32;
            }),
            EUCLEAN);
  // Unknown compat features are fine.
  EXPECT_EQ(with([](JournalSuperblock& j) { j.feature_compat |= 0x80; }), 0);

  // A checksum that does not match.
  raw = Serialized(good);
  raw[kJournalSuperblockChecksumOffset] ^= 1;
  EXPECT_EQ(ErrnoOfParse(raw), EUCLEAN);
  raw = Serialized(good);
  raw[0x1C] ^= 1;  // s_start changed after the checksum was computed
  EXPECT_EQ(ErrnoOfParse(raw), EUCLEAN);

  // Without v2/v3 the stored checksum is not checked.
  JournalSuperblock plain = MakeJsb(kJournalIncompatRevoke);
  plain.checksum = 0x12345678;
  auto parsed = ParseJournalSuperblock(Serialized(plain));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->checksum, 0x12345678u);
}

// ---- Tags and descriptor blocks ----

TEST(JournalTagTest, TagBytesFollowTheKernel) {
  EXPECT_EQ(JournalTagBytes(MakeJsb(0)), 8u);
  EXPECT_EQ(JournalTagBytes(MakeJsb(kJournalIncompat64Bit)), 12u);
  EXPECT_EQ(JournalTagBytes(MakeJsb(kJournalIncompatCsumV2)), 10u);
  EXPECT_EQ(
      JournalTagBytes(MakeJsb(kJournalIncompatCsumV2 | kJournalIncompat64Bit)),
      14u);
  EXPECT_EQ(JournalTagBytes(MakeJsb(kJournalIncompatCsumV3)), 16u);
  EXPECT_EQ(
      JournalTagBytes(MakeJsb(kJournalIncompatCsumV3 | kJournalIncompat64Bit)),
      16u);
}

TEST(JournalTagTest, Capacities) {
  // (block - header - uuid - tail) / tag bytes.
  EXPECT_EQ(DescriptorTagCapacity(MakeJsb(0), 1024), (1024u - 28) / 8);
  EXPECT_EQ(DescriptorTagCapacity(MakeJsb(kJournalIncompatCsumV3), 4096),
            (4096u - 32) / 16);
  EXPECT_EQ(DescriptorTagCapacity(MakeJsb(kJournalIncompatCsumV2), 1024),
            (1024u - 32) / 10);
  EXPECT_EQ(DescriptorTagCapacity(MakeJsb(0), 20), 0u);
  EXPECT_EQ(RevokeCapacity(MakeJsb(0), 1024), (1024u - 16) / 4);
  EXPECT_EQ(RevokeCapacity(MakeJsb(kJournalIncompat64Bit), 1024),
            (1024u - 16) / 8);
  EXPECT_EQ(RevokeCapacity(
                MakeJsb(kJournalIncompatCsumV3 | kJournalIncompat64Bit), 4096),
            (4096u - 20) / 8);
  EXPECT_EQ(RevokeCapacity(MakeJsb(0), 10), 0u);
}

struct DescriptorCase {
  uint32_t incompat;
  uint32_t block_size;
};

class DescriptorTest : public ::testing::TestWithParam<DescriptorCase> {};

TEST_P(DescriptorTest, FullDescriptorRoundTrips) {
  const JournalSuperblock jsb = MakeJsb(GetParam().incompat, 0, 4096);
  const uint32_t bs = GetParam().block_size;
  const size_t capacity = DescriptorTagCapacity(jsb, bs);
  ASSERT_GT(capacity, 2u);
  std::vector<JournalTag> tags;
  for (size_t i = 0; i < capacity; ++i) {
    JournalTag tag;
    tag.block =
        jsb.has_64bit() ? (uint64_t{i + 1} << 32) | (i * 7 + 3) : i * 7 + 3;
    // Caller flags other than ESCAPE and DELETED are replaced.
    tag.flags = (i % 3 == 0 ? kJournalTagEscape : 0) |
                (i % 5 == 0 ? kJournalTagDeleted : 0) |
                (i == 0 ? kJournalTagSameUuid | kJournalTagLastTag : 0);
    if (jsb.csum_v3()) tag.checksum = 0xA0000000u + static_cast<uint32_t>(i);
    if (jsb.csum_v2()) tag.checksum = 0xB000u + static_cast<uint32_t>(i);
    tags.push_back(tag);
  }
  // One more than fits is dropped.
  std::vector<JournalTag> too_many = tags;
  too_many.push_back(JournalTag{1, 0, 0});
  const std::vector<uint8_t> block = EncodeDescriptor(jsb, 42, too_many, bs);
  ASSERT_EQ(block.size(), bs);
  ASSERT_EQ(EncodeDescriptor(jsb, 42, tags, bs), block);

  auto header = ParseJournalHeader(block);
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->blocktype, kJournalDescriptorBlock);
  EXPECT_EQ(header->sequence, 42u);
  // The UUID follows the first tag.
  const size_t uuid_at = kJournalHeaderSize + JournalTagBytes(jsb);
  EXPECT_TRUE(
      std::equal(jsb.uuid.begin(), jsb.uuid.end(), block.begin() + uuid_at));

  auto parsed = ParseDescriptor(jsb, block);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), capacity);
  for (size_t i = 0; i < capacity; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ((*parsed)[i].block, tags[i].block);
    uint32_t flags = tags[i].flags & (kJournalTagEscape | kJournalTagDeleted);
    if (i > 0) flags |= kJournalTagSameUuid;
    if (i + 1 == capacity) flags |= kJournalTagLastTag;
    EXPECT_EQ((*parsed)[i].flags, flags);
    EXPECT_EQ((*parsed)[i].checksum, tags[i].checksum);
  }

  if (jsb.csum_v2_or_v3()) {
    EXPECT_TRUE(JournalBlockTailValid(jsb, block));
    std::vector<uint8_t> bad = block;
    bad[20] ^= 0x40;
    EXPECT_EQ(ErrnoOf(ParseDescriptor(jsb, bad).status()), EBADMSG);
    // The walk itself does not care.
    EXPECT_EQ(ParseDescriptorTags(jsb, bad).size(), capacity);
  }
}

TEST_P(DescriptorTest, OneTagDescriptor) {
  const JournalSuperblock jsb = MakeJsb(GetParam().incompat, 0, 4096);
  const uint32_t bs = GetParam().block_size;
  const JournalTag tag{99, kJournalTagEscape, 0};
  auto parsed = ParseDescriptor(
      jsb, EncodeDescriptor(jsb, 1, std::span<const JournalTag>(&tag, 1), bs));
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->size(), 1u);
  EXPECT_EQ((*parsed)[0].block, 99u);
  EXPECT_EQ((*parsed)[0].flags, kJournalTagEscape | kJournalTagLastTag);
}

INSTANTIATE_TEST_SUITE_P(
    Formats, DescriptorTest,
    ::testing::Values(
        DescriptorCase{0, 1024}, DescriptorCase{kJournalIncompat64Bit, 1024},
        DescriptorCase{kJournalIncompatCsumV2, 1024},
        DescriptorCase{kJournalIncompatCsumV2 | kJournalIncompat64Bit, 2048},
        DescriptorCase{kJournalIncompatCsumV3, 1024},
        DescriptorCase{kJournalIncompatCsumV3 | kJournalIncompat64Bit, 4096},
        DescriptorCase{kJournalIncompatCsumV3 | kJournalIncompat64Bit, 65536}));

TEST(DescriptorTest, WithoutSixtyFourBitTheHighHalfIsIgnored) {
  const JournalSuperblock jsb = MakeJsb(kJournalIncompatCsumV3);
  std::vector<uint8_t> block(1024, 0);
  PutJournalHeader(block, kJournalDescriptorBlock, 1);
  PutBe32(block, 12, 5);                   // t_blocknr
  PutBe32(block, 16, kJournalTagLastTag);  // t_flags
  PutBe32(block, 20, 7);                   // t_blocknr_high
  auto tags = ParseDescriptorTags(jsb, block);
  ASSERT_EQ(tags.size(), 1u);
  EXPECT_EQ(tags[0].block, 5u);
  const JournalSuperblock wide =
      MakeJsb(kJournalIncompatCsumV3 | kJournalIncompat64Bit);
  tags = ParseDescriptorTags(wide, block);
  ASSERT_EQ(tags.size(), 1u);
  EXPECT_EQ(tags[0].block, (uint64_t{7} << 32) | 5);
}

TEST(DescriptorTest, HostileDescriptorsStayInsideTheBlock) {
  const JournalSuperblock jsb = MakeJsb(0);
  // No LAST_TAG and no SAME_UUID anywhere: every tag is followed by a UUID,
  // and the walk stops at the end of the block.
  std::vector<uint8_t> block(1024, 0);
  PutJournalHeader(block, kJournalDescriptorBlock, 1);
  EXPECT_EQ(ParseDescriptorTags(jsb, block).size(), (1024u - 12 - 8) / 24 + 1);
  // SAME_UUID everywhere: as many 8-byte tags as fit.
  for (size_t at = 12; at + 8 <= 1024; at += 8) {
    PutBe16(block, at + 6, kJournalTagSameUuid);
  }
  EXPECT_EQ(ParseDescriptorTags(jsb, block).size(), (1024u - 12) / 8);
  // Short and empty blocks.
  EXPECT_TRUE(ParseDescriptorTags(jsb, Bytes(block).subspan(0, 3)).empty());
  EXPECT_TRUE(ParseDescriptorTags(MakeJsb(kJournalIncompatCsumV3),
                                  Bytes(block).subspan(0, 2))
                  .empty());
  // Wrong block type or no magic.
  PutBe32(block, 4, kJournalCommitBlock);
  EXPECT_EQ(ErrnoOf(ParseDescriptor(jsb, block).status()), EUCLEAN);
  block[0] = 0;
  EXPECT_EQ(ErrnoOf(ParseDescriptor(jsb, block).status()), EUCLEAN);
}

TEST(DataChecksumTest, V2KeepsTheLowHalfV3TheWhole) {
  std::vector<uint8_t> data(1024);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i);
  const JournalSuperblock v3 = MakeJsb(kJournalIncompatCsumV3);
  std::vector<uint8_t> seq = {0, 0, 0, 9};
  const uint32_t expected = Crc32c(Crc32c(v3.ChecksumSeed(), seq), data);
  EXPECT_EQ(DataBlockChecksum(v3, 9, data), expected);
  EXPECT_TRUE(
      DataBlockChecksumMatches(v3, JournalTag{1, 0, expected}, 9, data));
  EXPECT_FALSE(
      DataBlockChecksumMatches(v3, JournalTag{1, 0, expected ^ 1}, 9, data));
  EXPECT_FALSE(
      DataBlockChecksumMatches(v3, JournalTag{1, 0, expected}, 10, data));

  const JournalSuperblock v2 = MakeJsb(kJournalIncompatCsumV2);
  const uint32_t full = DataBlockChecksum(v2, 9, data);
  EXPECT_TRUE(
      DataBlockChecksumMatches(v2, JournalTag{1, 0, full & 0xFFFF}, 9, data));
  EXPECT_FALSE(DataBlockChecksumMatches(
      v2, JournalTag{1, 0, (full & 0xFFFF) ^ 0x100}, 9, data));

  const JournalSuperblock none = MakeJsb(0);
  EXPECT_EQ(DataBlockChecksum(none, 9, data), 0u);
  EXPECT_TRUE(DataBlockChecksumMatches(none, JournalTag{1, 0, 123}, 9, data));
}

TEST(EscapeTest, OnlyTheMagicAtTheStart) {
  std::vector<uint8_t> data(16, 0);
  EXPECT_FALSE(NeedsEscape(data));
  PutBe32(data, 0, kJournalMagic);
  EXPECT_TRUE(NeedsEscape(data));
  EXPECT_FALSE(NeedsEscape(Bytes(data).subspan(0, 3)));
  PutBe32(data, 0, 0x98393BC0);  // little-endian magic is not escaped
  EXPECT_FALSE(NeedsEscape(data));
}

// ---- Commit blocks ----

TEST(CommitTest, RoundTripsWithChecksums) {
  for (uint32_t incompat :
       {0u, kJournalIncompatCsumV2, kJournalIncompatCsumV3}) {
    SCOPED_TRACE(incompat);
    const JournalSuperblock jsb = MakeJsb(incompat);
    const std::vector<uint8_t> block =
        EncodeCommit(jsb, 1234, 0x123456789ull, 999999999, 1024);
    ASSERT_EQ(block.size(), 1024u);
    auto commit = ParseCommit(jsb, block);
    ASSERT_TRUE(commit.ok()) << commit.status();
    EXPECT_EQ(commit->sequence, 1234u);
    EXPECT_EQ(commit->seconds, 0x123456789ull);
    EXPECT_EQ(commit->nanoseconds, 999999999u);
    EXPECT_EQ(commit->checksum_type, 0);
    if (!jsb.csum_v2_or_v3()) {
      EXPECT_EQ(commit->checksum, 0u);
      continue;
    }
    // Any change in the header is caught.
    std::vector<uint8_t> bad = block;
    bad[50] ^= 1;
    EXPECT_FALSE(CommitChecksumValid(jsb, bad));
    EXPECT_EQ(ErrnoOf(ParseCommit(jsb, bad).status()), EBADMSG);
    // Garbage after the header is accepted, as the kernel's partial check
    // does; garbage inside it is not.
    bad = block;
    bad[100] = 0x77;
    bad[1023] = 0x11;
    EXPECT_TRUE(CommitChecksumValid(jsb, bad));
    bad = block;
    bad[30] = 0x77;  // h_chksum[3]
    EXPECT_FALSE(CommitChecksumValid(jsb, bad));
  }
}

TEST(CommitTest, CompatChecksumFields) {
  const JournalSuperblock jsb = MakeJsb(0, kJournalCompatChecksum);
  const std::vector<uint8_t> block =
      EncodeCommit(jsb, 5, 100, 0, 1024, 0xDEADBEEF);
  auto commit = ParseCommit(jsb, block);
  ASSERT_TRUE(commit.ok());
  EXPECT_EQ(commit->checksum_type, kJournalChecksumCrc32);
  EXPECT_EQ(commit->checksum_size, kJournalCrc32ChecksumSize);
  EXPECT_EQ(commit->checksum, 0xDEADBEEFu);
}

TEST(CommitTest, RejectsOtherBlocks) {
  const JournalSuperblock jsb = MakeJsb(kJournalIncompatCsumV3);
  std::vector<uint8_t> block = EncodeCommit(jsb, 5, 100, 0, 1024);
  EXPECT_EQ(ErrnoOf(ParseCommit(jsb, Bytes(block).subspan(0, 59)).status()),
            EUCLEAN);
  PutBe32(block, 4, kJournalRevokeBlock);
  EXPECT_EQ(ErrnoOf(ParseCommit(jsb, block).status()), EUCLEAN);
}

// ---- Revoke blocks ----

TEST(RevokeTest, RoundTrips) {
  for (uint32_t incompat : {0u, kJournalIncompat64Bit, kJournalIncompatCsumV2,
                            kJournalIncompatCsumV3 | kJournalIncompat64Bit}) {
    SCOPED_TRACE(incompat);
    const JournalSuperblock jsb = MakeJsb(incompat);
    const size_t capacity = RevokeCapacity(jsb, 1024);
    std::vector<uint64_t> blocks;
    for (size_t i = 0; i < capacity + 3; ++i) {
      blocks.push_back(jsb.has_64bit() ? (uint64_t{i} << 33) + i : i * 3);
    }
    const std::vector<uint8_t> block = EncodeRevoke(jsb, 8, blocks, 1024);
    EXPECT_EQ(Be32(block, 12), 16 + capacity * (jsb.has_64bit() ? 8u : 4u));
    auto parsed = ParseRevoke(jsb, block);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    blocks.resize(capacity);
    EXPECT_EQ(*parsed, blocks);
    if (jsb.csum_v2_or_v3()) {
      std::vector<uint8_t> bad = block;
      bad[40] ^= 1;
      EXPECT_EQ(ErrnoOf(ParseRevoke(jsb, bad).status()), EBADMSG);
    }
  }
}

TEST(RevokeTest, BoundsRCount) {
  const JournalSuperblock jsb = MakeJsb(kJournalIncompatCsumV3);
  const uint64_t three[] = {7, 8, 9};
  std::vector<uint8_t> block = EncodeRevoke(jsb, 1, three, 1024);
  // Into the tail: the kernel's recovery fails on this.
  PutBe32(block, 12, 1021);
  EXPECT_EQ(ErrnoOf(ParseRevokeRecords(jsb, block).status()), EUCLEAN);
  // Up to the tail is fine (the zero records are read).
  PutBe32(block, 12, 1020);
  auto records = ParseRevokeRecords(jsb, block);
  ASSERT_TRUE(records.ok());
  EXPECT_EQ(records->size(), (1020u - 16) / 4);
  // A partial last record is ignored; r_count below the header lists none.
  PutBe32(block, 12, 16 + 4 + 3);
  records = ParseRevokeRecords(jsb, block);
  ASSERT_TRUE(records.ok());
  EXPECT_EQ(*records, std::vector<uint64_t>{7});
  PutBe32(block, 12, 3);
  records = ParseRevokeRecords(jsb, block);
  ASSERT_TRUE(records.ok());
  EXPECT_TRUE(records->empty());
  // Too short for a header and tail.
  EXPECT_EQ(
      ErrnoOf(ParseRevokeRecords(jsb, Bytes(block).subspan(0, 19)).status()),
      EUCLEAN);
  PutBe32(block, 4, kJournalCommitBlock);
  EXPECT_EQ(ErrnoOf(ParseRevoke(jsb, block).status()), EUCLEAN);
}

// ---- The journal mke2fs makes ----

std::map<std::string, std::string> DumpHeader(const std::string& image) {
  std::map<std::string, std::string> facts;
  const std::string out =
      RunCommand(absl::StrCat(kDumpe2fs, " -h ", image), StderrMode::kDiscard)
          .output;
  size_t pos = 0;
  while (pos < out.size()) {
    size_t end = out.find('\n', pos);
    if (end == std::string::npos) end = out.size();
    const std::string line = out.substr(pos, end - pos);
    pos = end + 1;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const size_t value = line.find_first_not_of(' ', colon + 1);
    facts[line.substr(0, colon)] =
        value == std::string::npos ? "" : line.substr(value);
  }
  return facts;
}

TEST(JournalSuperblockTest, ParsesWhatMke2fsWrites) {
  if (!HaveTools({kMke2fs, kDebugfs, kDumpe2fs})) {
    GTEST_SKIP() << "e2fsprogs not installed";
  }
  const std::string dir = MakeTempDir("e4fs_journal_");
  ASSERT_FALSE(dir.empty());
  struct Variant {
    const char* args;
    const char* size;
  };
  // mke2fs leaves the journal features to the kernel's first mount (which
  // turns on 64bit and csum v3 where the filesystem has them); the kernel
  // journals in recovery_test.cc cover those.
  const Variant variants[] = {
      {"-t ext4 -O metadata_csum,64bit", "8M"},
      {"-t ext4 -O ^metadata_csum,^64bit", "8M"},
      {"-t ext4 -b 4096", "32M"},
      {"-t ext3", "8M"},
  };
  for (const Variant& variant : variants) {
    SCOPED_TRACE(variant.args);
    const std::string image = dir + "/fs.img";
    const std::string journal = dir + "/journal.bin";
    ASSERT_EQ(RunCommand(absl::StrCat(kMke2fs, " -q -F ", variant.args, " ",
                                      image, " ", variant.size))
                  .exit_code,
              0);
    ASSERT_EQ(RunCommand(absl::StrCat(kDebugfs, " -R \"dump <8> ", journal,
                                      "\" ", image))
                  .exit_code,
              0);
    const std::string bytes = ReadFileBytes(journal);
    ASSERT_GE(bytes.size(), 1024u);
    const std::vector<uint8_t> raw(bytes.begin(), bytes.begin() + 1024);
    auto jsb = ParseJournalSuperblock(raw);
    ASSERT_TRUE(jsb.ok()) << jsb.status();
    auto facts = DumpHeader(image);
    const std::string& features = facts["Journal features"];
    EXPECT_EQ(jsb->csum_v3(),
              features.find("journal_checksum_v3") != std::string::npos);
    EXPECT_EQ(jsb->has_64bit(),
              features.find("journal_64bit") != std::string::npos);
    EXPECT_TRUE(jsb->is_v2());
    EXPECT_EQ(jsb->max_len, std::stoul(facts["Total journal blocks"]));
    EXPECT_EQ(uint64_t{jsb->max_len} * jsb->block_size, bytes.size());
    EXPECT_EQ(jsb->first, 1u);
    EXPECT_EQ(jsb->sequence,
              std::stoul(facts["Journal sequence"], nullptr, 16));
    EXPECT_EQ(jsb->start, std::stoul(facts["Journal start"]));
    // Serializing over the original block changes nothing.
    std::vector<uint8_t> again = raw;
    SerializeJournalSuperblock(*jsb, again);
    EXPECT_EQ(again, raw);
  }
  RunCommand("rm -rf " + dir, StderrMode::kDiscard);
}

}  // namespace
}  // namespace ext4::format
