#include "ext4/format/superblock.h"

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "ext4/format/checksum.h"
#include "ext4/testing/image_tools.h"
#include "gtest/gtest.h"

namespace ext4::format {
namespace {

// Where clean-up errors go (a temp tree that will not go is harmless).
std::error_code cleanup_error;

// ---- Images made by mke2fs, and the facts dumpe2fs reports about them. ----

using ::ext4::testing::HaveTools;
using ::ext4::testing::kDumpe2fs;
using ::ext4::testing::kMke2fs;
using ::ext4::testing::kTune2fs;
using ::ext4::testing::MakeImageWithSmallTree;
using ::ext4::testing::MakeTempDir;
using ::ext4::testing::ReadFileAt;
using ::ext4::testing::RunCommand;
using ::ext4::testing::StderrMode;

std::string Trim(const std::string& text) {
  size_t begin = text.find_first_not_of(" \t");
  size_t end = text.find_last_not_of(" \t\r");
  return begin == std::string::npos ? "" : text.substr(begin, end - begin + 1);
}

// `dumpe2fs -h` as key -> value.
std::map<std::string, std::string> DumpHeader(const std::string& image) {
  std::map<std::string, std::string> facts;
  std::string out =
      RunCommand(absl::StrCat(kDumpe2fs, " -h ", image), StderrMode::kDiscard)
          .output;
  size_t pos = 0;
  while (pos < out.size()) {
    size_t end = out.find('\n', pos);
    if (end == std::string::npos) end = out.size();
    std::string line = out.substr(pos, end - pos);
    pos = end + 1;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    facts[Trim(line.substr(0, colon))] = Trim(line.substr(colon + 1));
  }
  return facts;
}

uint64_t Number(const std::string& text) {
  return std::strtoull(text.c_str(), nullptr, 0);
}

std::string Uuid(const uint8_t* u) {
  char text[37];
  std::snprintf(text, sizeof(text),
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x"
                "%02x%02x",
                u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
                u[10], u[11], u[12], u[13], u[14], u[15]);
  return text;
}

// The mke2fs layouts every format test checks (shared in image_tools.h).
using Variant = ::ext4::testing::ImageVariant;
constexpr const auto& kVariants = ::ext4::testing::kImageVariants;

class ImageTest : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override {
    if (!HaveTools({kMke2fs, kDumpe2fs}))
      GTEST_SKIP() << "mke2fs/dumpe2fs not installed";
    dir_ = MakeTempDir("sb");
    ASSERT_FALSE(dir_.empty());
    image_ = MakeImageWithSmallTree(dir_, GetParam().args, GetParam().size);
    ASSERT_FALSE(image_.empty()) << "mke2fs " << GetParam().args;
    if (GetParam().post != nullptr) {
      if (access(kTune2fs, X_OK) != 0) GTEST_SKIP() << "tune2fs missing";
      std::string command = absl::StrCat(kTune2fs, " ", GetParam().post, " ",
                                         image_, " >/dev/null 2>&1");
      ASSERT_EQ(std::system(command.c_str()), 0) << command;
    }
    raw_ = ReadFileAt(image_, kSuperblockOffset, kSuperblockSize);
    ASSERT_EQ(raw_.size(), kSuperblockSize);
  }
  void TearDown() override {
    if (!dir_.empty()) {
      std::filesystem::remove_all(dir_, cleanup_error);
    }
  }

  std::string dir_;
  std::string image_;
  std::vector<uint8_t> raw_;
};

TEST_P(ImageTest, MatchesDumpe2fs) {
  auto parsed = ParseSuperblock(raw_);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const Superblock& sb = *parsed;
  auto facts = DumpHeader(image_);
  ASSERT_FALSE(facts.empty());

  EXPECT_EQ(sb.magic, kSuperblockMagic);
  EXPECT_EQ(sb.inodes_count, Number(facts["Inode count"]));
  EXPECT_EQ(sb.blocks_count, Number(facts["Block count"]));
  EXPECT_EQ(sb.r_blocks_count, Number(facts["Reserved block count"]));
  EXPECT_EQ(sb.free_blocks_count, Number(facts["Free blocks"]));
  EXPECT_EQ(sb.free_inodes_count, Number(facts["Free inodes"]));
  EXPECT_EQ(sb.first_data_block, Number(facts["First block"]));
  EXPECT_EQ(sb.block_size(), Number(facts["Block size"]));
  EXPECT_EQ(sb.blocks_per_group, Number(facts["Blocks per group"]));
  EXPECT_EQ(sb.inodes_per_group, Number(facts["Inodes per group"]));
  EXPECT_EQ(sb.inode_table_blocks(), Number(facts["Inode blocks per group"]));
  EXPECT_EQ(sb.inode_size(), Number(facts["Inode size"]));
  EXPECT_EQ(sb.first_inode(), Number(facts["First inode"]));
  EXPECT_EQ(sb.rev_level, Number(facts["Filesystem revision #"]));
  EXPECT_EQ(sb.max_mnt_count,
            std::strtol(facts["Maximum mount count"].c_str(), nullptr, 10));
  EXPECT_EQ(sb.mnt_count, Number(facts["Mount count"]));
  EXPECT_EQ(FeatureNames(sb), facts["Filesystem features"]);
  EXPECT_EQ(Uuid(sb.uuid), facts["Filesystem UUID"]);
  EXPECT_EQ(sb.volume_name.empty() ? "<none>" : sb.volume_name,
            facts["Filesystem volume name"]);
  EXPECT_EQ(sb.creator_os, kOsLinux);
  EXPECT_EQ(facts["Filesystem OS type"], "Linux");
  EXPECT_TRUE(sb.state & kStateValid);
  EXPECT_EQ(facts["Filesystem state"], "clean");

  if (sb.bigalloc()) {
    EXPECT_EQ(sb.cluster_size(), Number(facts["Cluster size"]));
    EXPECT_EQ(sb.clusters_per_group, Number(facts["Clusters per group"]));
    EXPECT_EQ(sb.cluster_ratio(), sb.cluster_size() / sb.block_size());
    EXPECT_GT(sb.cluster_ratio(), 1u);
  } else {
    EXPECT_EQ(sb.cluster_size(), Number(facts["Fragment size"]));
    EXPECT_EQ(sb.group_clusters(), sb.blocks_per_group);
  }
  if (sb.is_64bit()) {
    EXPECT_EQ(sb.descriptor_size(), Number(facts["Group descriptor size"]));
  } else {
    EXPECT_EQ(sb.descriptor_size(), 32u);
  }
  if (sb.has_compat(kCompatResizeInode)) {
    EXPECT_EQ(sb.reserved_gdt_blocks, Number(facts["Reserved GDT blocks"]));
  }
  if (facts.count("Overhead clusters")) {
    EXPECT_EQ(sb.overhead_clusters, Number(facts["Overhead clusters"]));
  }
  if (sb.has_incompat(kIncompatFlexBg)) {
    EXPECT_EQ(uint64_t{1} << sb.log_groups_per_flex,
              Number(facts["Flex block group size"]));
  }
  if (sb.has_compat(kCompatHasJournal)) {
    EXPECT_EQ(sb.journal_inum, Number(facts["Journal inode"]));
    EXPECT_EQ(sb.jnl_backup_type, kJournalBackupInodeBlocks);
  }
  if (sb.has_ro_compat(kRoCompatExtraIsize)) {
    EXPECT_EQ(sb.min_extra_isize, Number(facts["Required extra isize"]));
    EXPECT_EQ(sb.want_extra_isize, Number(facts["Desired extra isize"]));
  }
  if (sb.has_compat(kCompatDirIndex)) {
    EXPECT_EQ(sb.def_hash_version, kHashHalfMd4);
    EXPECT_EQ(facts["Default directory hash"], "half_md4");
    uint8_t seed[16];
    for (int i = 0; i < 4; ++i) Put32(seed, 4 * i, sb.hash_seed[i]);
    EXPECT_EQ(Uuid(seed), facts["Directory Hash Seed"]);
    // On x86 mke2fs records signed hashing.
    EXPECT_EQ(facts["Filesystem flags"], sb.hash_unsigned()
                                             ? "unsigned_directory_hash"
                                             : "signed_directory_hash");
  }
  if (sb.has_compat(kCompatSparseSuper2)) {
    EXPECT_NE(sb.backup_bgs[0], 0u);
  }
  if (sb.metadata_csum()) {
    EXPECT_EQ(sb.checksum_type, kChecksumTypeCrc32c);
    EXPECT_EQ(facts["Checksum type"], "crc32c");
    EXPECT_EQ(sb.checksum, Number(facts["Checksum"]));
    EXPECT_EQ(sb.checksum, SuperblockChecksum(raw_));
    if (sb.has_incompat(kIncompatCsumSeed)) {
      EXPECT_EQ(sb.checksum_seed(), sb.raw_checksum_seed);
      EXPECT_EQ(sb.checksum_seed(), Number(facts["Checksum seed"]));
    } else {
      EXPECT_EQ(sb.checksum_seed(), Crc32c(~0u, Bytes(sb.uuid, 16)));
    }
  }
  if (GetParam().post != nullptr) {
    // tune2fs changed the UUID; the seed, stored, kept the checksums valid.
    EXPECT_EQ(Uuid(sb.uuid), "01234567-89ab-cdef-0123-456789abcdef");
    EXPECT_NE(sb.checksum_seed(), Crc32c(~0u, Bytes(sb.uuid, 16)));
  }
  if (sb.has_compat(kCompatOrphanFile)) {
    EXPECT_NE(sb.orphan_file_inum, 0u);
  }
  if (std::string(GetParam().name) == "label") {
    EXPECT_EQ(sb.volume_name, "e4fs-volume-lbl");
  }
  EXPECT_EQ(uint64_t{sb.group_count()} * sb.inodes_per_group, sb.inodes_count);
  EXPECT_GT(sb.mkfs_time, 0);
  EXPECT_EQ(sb.wtime, sb.mkfs_time);
}

TEST_P(ImageTest, SerializeRoundTripsByteForByte) {
  auto parsed = ParseSuperblock(raw_);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  // Into zeros: every non-zero byte mke2fs wrote is a modelled field.
  std::vector<uint8_t> out(kSuperblockSize, 0);
  SerializeSuperblock(*parsed, out);
  EXPECT_EQ(out, raw_);
  // In place.
  std::vector<uint8_t> copy = raw_;
  SerializeSuperblock(*parsed, copy);
  EXPECT_EQ(copy, raw_);
}

TEST_P(ImageTest, ChangedFieldsSurviveSerializeAndParse) {
  auto parsed = ParseSuperblock(raw_);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  Superblock sb = *parsed;
  sb.free_blocks_count -= 1;
  sb.free_inodes_count -= 1;
  sb.volume_name = "a-label-too-long-for-16";
  sb.last_mounted = "/mnt/e4fs";
  sb.mnt_count = 7;
  sb.wtime = (int64_t{1} << 33) + 5;  // past 2038: needs the _hi byte
  sb.error_count = 3;
  sb.first_error_func = "ext4_lookup";
  sb.first_error_time = (int64_t{3} << 32) + 1;
  sb.kbytes_written = 123456789;
  std::vector<uint8_t> out = raw_;
  SerializeSuperblock(sb, out);
  auto again = ParseSuperblock(out);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->free_blocks_count, sb.free_blocks_count);
  EXPECT_EQ(again->free_inodes_count, sb.free_inodes_count);
  EXPECT_EQ(again->volume_name, "a-label-too-long");
  EXPECT_EQ(again->last_mounted, "/mnt/e4fs");
  EXPECT_EQ(again->mnt_count, 7);
  EXPECT_EQ(again->wtime, sb.wtime);
  EXPECT_EQ(again->error_count, 3u);
  EXPECT_EQ(again->first_error_func, "ext4_lookup");
  EXPECT_EQ(again->first_error_time, sb.first_error_time);
  EXPECT_EQ(again->kbytes_written, 123456789u);
  if (sb.metadata_csum()) {
    EXPECT_EQ(Le32(out, kSuperblockChecksumOffset), SuperblockChecksum(out));
  }
}

TEST_P(ImageTest, FeaturesAreSupportedReadWrite) {
  auto parsed = ParseSuperblock(raw_);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  auto read_only = CheckFeatures(*parsed);
  ASSERT_TRUE(read_only.ok()) << read_only.status();
  EXPECT_FALSE(*read_only);
}

INSTANTIATE_TEST_SUITE_P(Mke2fs, ImageTest, ::testing::ValuesIn(kVariants),
                         [](const ::testing::TestParamInfo<Variant>& info) {
                           return std::string(info.param.name);
                         });

// ---- Corruption: one image, one change at a time. ----

class SuperblockCorruptionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveTools({kMke2fs, kDumpe2fs}))
      GTEST_SKIP() << "mke2fs/dumpe2fs not installed";
    dir_ = MakeTempDir("sb");
    ASSERT_FALSE(dir_.empty());
    std::string image = MakeImageWithSmallTree(dir_, "-t ext4", "4M");
    ASSERT_FALSE(image.empty());
    raw_ = ReadFileAt(image, kSuperblockOffset, kSuperblockSize);
    ASSERT_EQ(raw_.size(), kSuperblockSize);
    ASSERT_TRUE(ParseSuperblock(raw_).ok());
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_, cleanup_error);
  }

  // Re-signs the superblock so that the change, not the checksum, is what
  // the parser sees.
  void Resign() {
    Put32(raw_, kSuperblockChecksumOffset, SuperblockChecksum(raw_));
  }

  // Sets a 32-bit field and re-signs; returns the parse errno.
  int Set32(size_t offset, uint32_t value) {
    Put32(raw_, offset, value);
    Resign();
    return ErrnoOf(ParseSuperblock(raw_).status());
  }
  int Set16(size_t offset, uint16_t value) {
    Put16(raw_, offset, value);
    Resign();
    return ErrnoOf(ParseSuperblock(raw_).status());
  }

  std::string dir_;
  std::vector<uint8_t> raw_;
};

TEST_F(SuperblockCorruptionTest, BadMagicIsNotAFilesystem) {
  raw_[0x38] ^= 0xFF;
  auto parsed = ParseSuperblock(raw_);
  EXPECT_EQ(ErrnoOf(parsed.status()), EINVAL);
  EXPECT_EQ(parsed.status().message(),
            "not an ext2/ext3/ext4 filesystem (bad magic)");
}

TEST_F(SuperblockCorruptionTest, ShortBufferIsNotAFilesystem) {
  for (size_t length : {size_t{0}, size_t{100}, kSuperblockSize - 1}) {
    EXPECT_EQ(ErrnoOf(ParseSuperblock(Bytes(raw_.data(), length)).status()),
              EINVAL);
  }
}

TEST_F(SuperblockCorruptionTest, ChecksumMismatchIsCorrupt) {
  raw_[0x3FC] ^= 1;
  auto parsed = ParseSuperblock(raw_);
  EXPECT_EQ(ErrnoOf(parsed.status()), EUCLEAN);
  EXPECT_NE(parsed.status().message().find("superblock"), std::string::npos);
  // A change to any covered byte without re-signing is caught too.
  raw_[0x3FC] ^= 1;
  raw_[0x10] ^= 1;
  EXPECT_EQ(ErrnoOf(ParseSuperblock(raw_).status()), EUCLEAN);
}

TEST_F(SuperblockCorruptionTest, UnknownChecksumType) {
  raw_[0x175] = 2;
  Resign();
  EXPECT_EQ(ErrnoOf(ParseSuperblock(raw_).status()), EUCLEAN);
}

TEST_F(SuperblockCorruptionTest, BlockSizeOutOfRange) {
  EXPECT_EQ(Set32(0x18, 30), EUCLEAN);
  EXPECT_EQ(Set32(0x18, 7), EUCLEAN);
  EXPECT_EQ(Set32(0x18, 0xFFFFFFFF), EUCLEAN);
}

TEST_F(SuperblockCorruptionTest, ClusterSizeMustMatchWithoutBigalloc) {
  EXPECT_EQ(Set32(0x1C, 2), EUCLEAN);
}

TEST_F(SuperblockCorruptionTest, BlocksPerGroup) {
  EXPECT_EQ(Set32(0x20, 0), EUCLEAN);
  EXPECT_EQ(Set32(0x20, 8 * 1024 + 1), EUCLEAN);
}

TEST_F(SuperblockCorruptionTest, InodesPerGroup) {
  EXPECT_EQ(Set32(0x28, 0), EUCLEAN);
  EXPECT_EQ(Set32(0x28, 3), EUCLEAN);  // fewer than one block of inodes
  EXPECT_EQ(Set32(0x28, 8 * 1024 + 1), EUCLEAN);
}

TEST_F(SuperblockCorruptionTest, InodeCountMustMatchTheGroups) {
  uint32_t count = Le32(raw_, 0x00);
  EXPECT_EQ(Set32(0x00, count + 1), EUCLEAN);
  EXPECT_EQ(Set32(0x00, count - 1), EUCLEAN);
}

// Free counts are hints the kernel and e2fsck recompute: too large ones are
// accepted (e2fsck -fn passes such an image), a reserve past the end is not.
TEST_F(SuperblockCorruptionTest, FreeCountsBeyondTotalsAreOnlyHints) {
  uint32_t inodes = Le32(raw_, 0x00);
  uint32_t blocks = Le32(raw_, 0x04);
  EXPECT_EQ(Set32(0x10, inodes + 1), 0);
  EXPECT_EQ(Set32(0x0C, blocks + 1), 0);
  EXPECT_EQ(Set32(0x08, blocks + 1), EUCLEAN);
}

TEST_F(SuperblockCorruptionTest, InodeSize) {
  EXPECT_EQ(Set16(0x58, 100), EUCLEAN);
  EXPECT_EQ(Set16(0x58, 384), EUCLEAN);   // not a power of two
  EXPECT_EQ(Set16(0x58, 2048), EUCLEAN);  // larger than the 1 KiB block
  EXPECT_EQ(Set16(0x58, 0), EUCLEAN);
}

TEST_F(SuperblockCorruptionTest, ExtraIsizeFields) {
  EXPECT_EQ(Set16(0x15E, 200), EUCLEAN);  // want > 256 - 128
  Set16(0x15E, 32);
  EXPECT_EQ(Set16(0x15C, 1000), EUCLEAN);  // min
}

TEST_F(SuperblockCorruptionTest, DescriptorSize) {
  EXPECT_EQ(Set16(0xFE, 3), EUCLEAN);
  EXPECT_EQ(Set16(0xFE, 32), EUCLEAN);
  EXPECT_EQ(Set16(0xFE, 96), EUCLEAN);
  EXPECT_EQ(Set16(0xFE, 2048), EUCLEAN);
  EXPECT_EQ(Set16(0xFE, 128), 0);  // odd but legal
}

TEST_F(SuperblockCorruptionTest, FirstDataBlock) {
  EXPECT_EQ(Set32(0x14, 0), EUCLEAN);  // 1 KiB blocks start at block 1
  EXPECT_EQ(Set32(0x14, 2), EUCLEAN);
}

TEST_F(SuperblockCorruptionTest, BlockCount) {
  EXPECT_EQ(Set32(0x04, 1), EUCLEAN);  // == first_data_block
  EXPECT_EQ(Set32(0x04, 0), EUCLEAN);
}

TEST_F(SuperblockCorruptionTest, GroupCountOverflow) {
  // 2^40 blocks in groups of 8 blocks: far more than 2^32 groups.
  Put32(raw_, 0x150, 0x100);
  EXPECT_EQ(Set32(0x20, 8), EUCLEAN);
}

TEST_F(SuperblockCorruptionTest, HighBlockCountWithout64Bit) {
  Put32(raw_, 0x60, Le32(raw_, 0x60) & ~kIncompat64Bit);
  Put16(raw_, 0xFE, 0);
  EXPECT_EQ(Set32(0x150, 1), EUCLEAN);
}

TEST_F(SuperblockCorruptionTest, ReservedGdtBlocks) {
  EXPECT_EQ(Set16(0xCE, 1024 / 4 + 1), EUCLEAN);
}

TEST_F(SuperblockCorruptionTest, RevisionAndFirstInode) {
  EXPECT_EQ(Set32(0x4C, 2), EUCLEAN);
  Set32(0x4C, 1);
  EXPECT_EQ(Set32(0x54, 5), EUCLEAN);
  EXPECT_EQ(Set32(0x54, 5000), EUCLEAN);
}

TEST_F(SuperblockCorruptionTest, FirstMetaBgBeyondTheTable) {
  Put32(raw_, 0x60, Le32(raw_, 0x60) | kIncompatMetaBg);
  EXPECT_EQ(Set32(0x104, 2), EUCLEAN);
  EXPECT_EQ(Set32(0x104, 1), 0);
}

TEST_F(SuperblockCorruptionTest, BigallocGeometry) {
  Put32(raw_, 0x64, Le32(raw_, 0x64) | kRoCompatBigalloc);
  // 1 KiB blocks with bigalloc start at block 0.
  Put32(raw_, 0x14, 0);
  Put32(raw_, 0x1C, 4);    // 16 KiB clusters
  Put32(raw_, 0x24, 512);  // clusters per group
  Put32(raw_, 0x20, 512 * 16);
  Put32(raw_, 0x04, 4096);
  EXPECT_EQ(Set32(0x00, Le32(raw_, 0x28)), 0);
  EXPECT_EQ(Set32(0x20, 512 * 16 + 1), EUCLEAN);  // inconsistent
  Set32(0x20, 512 * 16);
  EXPECT_EQ(Set32(0x1C, 0xFFFF), EUCLEAN);  // absurd cluster size
  Set32(0x1C, 4);
  EXPECT_EQ(Set32(0x24, 0), EUCLEAN);
  EXPECT_EQ(Set32(0x24, 8 * 1024 + 1), EUCLEAN);
}

TEST_F(SuperblockCorruptionTest, RandomDamageNeverCrashes) {
  std::mt19937 random(1234);
  const std::vector<uint8_t> original = raw_;
  int accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    raw_ = original;
    int flips = 1 + static_cast<int>(random() % 4);
    for (int i = 0; i < flips; ++i) {
      raw_[random() % kSuperblockChecksumOffset] =
          static_cast<uint8_t>(random());
    }
    if (round % 2 == 0) Resign();
    auto parsed = ParseSuperblock(raw_);
    if (!parsed.ok()) {
      int err = ErrnoOf(parsed.status());
      EXPECT_TRUE(err == EUCLEAN || err == EINVAL) << parsed.status();
      continue;
    }
    ++accepted;
    // Whatever parses serializes and parses again the same way.
    const Superblock& sb = *parsed;
    (void)CheckFeatures(sb);
    (void)FeatureNames(sb);
    EXPECT_GT(sb.group_count(), 0u);
    std::vector<uint8_t> out = raw_;
    SerializeSuperblock(sb, out);
    auto again = ParseSuperblock(out);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(again->blocks_count, sb.blocks_count);
  }
  EXPECT_GT(accepted, 0);
}

// ---- Feature policy, on synthetic superblocks. ----

Superblock WithFeatures(uint32_t compat, uint32_t incompat,
                        uint32_t ro_compat) {
  Superblock sb;
  sb.feature_compat = compat;
  sb.feature_incompat = incompat;
  sb.feature_ro_compat = ro_compat;
  return sb;
}

constexpr uint32_t kExt4Incompat =
    kIncompatFiletype | kIncompatExtents | kIncompat64Bit | kIncompatFlexBg;
constexpr uint32_t kExt4RoCompat = kRoCompatSparseSuper | kRoCompatLargeFile |
                                   kRoCompatHugeFile | kRoCompatDirNlink |
                                   kRoCompatExtraIsize | kRoCompatMetadataCsum;

TEST(CheckFeaturesTest, SupportedIncompatFeaturesAreReadWrite) {
  uint32_t all = kIncompatFiletype | kIncompatRecover | kIncompatMetaBg |
                 kIncompatExtents | kIncompat64Bit | kIncompatMmp |
                 kIncompatFlexBg | kIncompatEaInode | kIncompatLargeDir |
                 kIncompatInlineData | kIncompatCsumSeed | kIncompatEncrypt;
  auto read_only = CheckFeatures(WithFeatures(0xFFFFFFFF, all, kExt4RoCompat));
  ASSERT_TRUE(read_only.ok()) << read_only.status();
  EXPECT_FALSE(*read_only);
}

TEST(CheckFeaturesTest, UnsupportedIncompatFeaturesAreNamed) {
  struct Case {
    uint32_t bit;
    const char* message;
  };
  const Case cases[] = {
      {kIncompatCasefold, "unsupported filesystem feature: casefold"},
      {kIncompatCompression, "unsupported filesystem feature: compression"},
      {kIncompatDirData, "unsupported filesystem feature: dirdata"},
      {0x80000000, "unknown incompat feature 0x80000000"},
      {0x800, "unknown incompat feature 0x800"},
  };
  for (const Case& c : cases) {
    auto result = CheckFeatures(WithFeatures(0, kExt4Incompat | c.bit, 0));
    EXPECT_EQ(ErrnoOf(result.status()), EOPNOTSUPP) << c.message;
    EXPECT_EQ(result.status().message(), c.message);
  }
  auto journal_dev = CheckFeatures(WithFeatures(0, kIncompatJournalDev, 0));
  EXPECT_EQ(ErrnoOf(journal_dev.status()), EOPNOTSUPP);
  EXPECT_NE(journal_dev.status().message().find("external journal"),
            std::string::npos);
}

TEST(CheckFeaturesTest, RoCompatPolicy) {
  const uint32_t known =
      kRoCompatSparseSuper | kRoCompatLargeFile | kRoCompatHugeFile |
      kRoCompatGdtCsum | kRoCompatDirNlink | kRoCompatExtraIsize |
      kRoCompatQuota | kRoCompatBigalloc | kRoCompatMetadataCsum |
      kRoCompatReplica | kRoCompatProject | kRoCompatVerity |
      kRoCompatOrphanPresent;
  EXPECT_FALSE(*CheckFeatures(WithFeatures(0, kExt4Incompat, known)));
  for (uint32_t bit :
       {kRoCompatReadOnly, kRoCompatSharedBlocks, kRoCompatBtreeDir,
        kRoCompatHasSnapshot, 0x20000u, 0x80000000u}) {
    auto read_only = CheckFeatures(WithFeatures(0, kExt4Incompat, bit));
    ASSERT_TRUE(read_only.ok());
    EXPECT_TRUE(*read_only) << std::hex << bit;
  }
  // bigalloc needs extents to be written.
  EXPECT_TRUE(
      *CheckFeatures(WithFeatures(0, kIncompatFiletype, kRoCompatBigalloc)));
  // Unknown compat bits are fine.
  EXPECT_FALSE(*CheckFeatures(WithFeatures(0x80000000, kExt4Incompat, 0)));
}

TEST(FeatureNamesTest, UsesMke2fsNamesInDumpe2fsOrder) {
  Superblock sb = WithFeatures(
      kCompatHasJournal | kCompatExtAttr | kCompatDirIndex | kCompatOrphanFile,
      kIncompatFiletype | kIncompatExtents | kIncompatRecover |
          kIncompatCsumSeed | kIncompatCasefold,
      kRoCompatSparseSuper | kRoCompatGdtCsum | kRoCompatReadOnly |
          kRoCompatOrphanPresent);
  EXPECT_EQ(FeatureNames(sb),
            "has_journal ext_attr dir_index orphan_file filetype "
            "needs_recovery extent metadata_csum_seed casefold sparse_super "
            "uninit_bg read-only orphan_present");
  EXPECT_EQ(FeatureNames(WithFeatures(kCompatExcludeInode, 0x800, 0x80)),
            "FEATURE_C7 FEATURE_I11 FEATURE_R7");
  EXPECT_EQ(FeatureNames(WithFeatures(0, 0, 0)), "");
}

TEST(GroupHasSuperblockTest, SparseSuper) {
  Superblock sb = WithFeatures(0, 0, kRoCompatSparseSuper);
  for (uint32_t group : {0u, 1u, 3u, 5u, 7u, 9u, 25u, 27u, 49u, 125u, 243u,
                         343u, 2187u, 3125u}) {
    EXPECT_TRUE(GroupHasSuperblock(sb, group)) << group;
  }
  for (uint32_t group :
       {2u, 4u, 6u, 8u, 10u, 11u, 15u, 21u, 35u, 45u, 63u, 0xFFFFFFFFu}) {
    EXPECT_FALSE(GroupHasSuperblock(sb, group)) << group;
  }
  // 3^20 fits in 32 bits.
  EXPECT_TRUE(GroupHasSuperblock(sb, 3486784401u));
}

TEST(GroupHasSuperblockTest, WithoutSparseSuperEveryGroup) {
  Superblock sb;
  for (uint32_t group : {0u, 2u, 4u, 100u}) {
    EXPECT_TRUE(GroupHasSuperblock(sb, group));
  }
}

TEST(GroupHasSuperblockTest, SparseSuper2) {
  Superblock sb = WithFeatures(kCompatSparseSuper2, 0, kRoCompatSparseSuper);
  sb.backup_bgs[0] = 1;
  sb.backup_bgs[1] = 6;
  EXPECT_TRUE(GroupHasSuperblock(sb, 0));
  EXPECT_TRUE(GroupHasSuperblock(sb, 1));
  EXPECT_TRUE(GroupHasSuperblock(sb, 6));
  EXPECT_FALSE(GroupHasSuperblock(sb, 3));
  EXPECT_FALSE(GroupHasSuperblock(sb, 5));
}

TEST(SuperblockHelpersTest, RevisionZeroDefaults) {
  Superblock sb;
  sb.rev_level = kGoodOldRevision;
  sb.raw_inode_size = 512;
  sb.first_ino = 99;
  EXPECT_EQ(sb.inode_size(), 128u);
  EXPECT_EQ(sb.first_inode(), 11u);
  sb.rev_level = kDynamicRevision;
  EXPECT_EQ(sb.inode_size(), 512u);
  EXPECT_EQ(sb.first_inode(), 99u);
}

TEST(SuperblockHelpersTest, ChecksumSeed) {
  Superblock sb;
  for (int i = 0; i < 16; ++i) sb.uuid[i] = static_cast<uint8_t>(i * 17);
  sb.raw_checksum_seed = 0x12345678;
  EXPECT_EQ(sb.checksum_seed(), Crc32c(~0u, Bytes(sb.uuid, 16)));
  sb.feature_incompat = kIncompatCsumSeed;
  EXPECT_EQ(sb.checksum_seed(), 0x12345678u);
}

TEST(SuperblockHelpersTest, GeometryOfGarbageDoesNotTrap) {
  Superblock sb;
  sb.log_block_size = 0xFFFFFFFF;
  sb.log_cluster_size = 0xFFFFFFFF;
  (void)sb.block_size();
  (void)sb.cluster_size();
  EXPECT_EQ(sb.group_count(), 0u);
  sb.blocks_per_group = 1;
  sb.blocks_count = ~uint64_t{0};
  EXPECT_EQ(sb.group_count(), UINT32_MAX);
}

}  // namespace
}  // namespace ext4::format
