#include "ext4/format/group_descriptor.h"

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "ext4/format/checksum.h"
#include "ext4/format/superblock.h"
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

// The mke2fs layouts every format test checks (shared in image_tools.h).
using Variant = ::ext4::testing::ImageVariant;
constexpr const auto& kVariants = ::ext4::testing::kImageVariants;

// One group as `dumpe2fs` lists it.
struct GroupFacts {
  std::optional<uint16_t> checksum;
  uint16_t flags = 0;
  std::optional<uint64_t> descriptor_block;  // "Group descriptor(s) at"
  uint64_t block_bitmap = 0;
  std::optional<uint32_t> block_bitmap_csum;
  uint64_t inode_bitmap = 0;
  std::optional<uint32_t> inode_bitmap_csum;
  uint64_t inode_table = 0;
  uint64_t free_blocks = 0;
  uint64_t free_inodes = 0;
  uint64_t directories = 0;
  std::optional<uint64_t> unused_inodes;
};

uint64_t After(const std::string& line, const std::string& key) {
  size_t at = line.find(key);
  return std::strtoull(line.c_str() + at + key.size(), nullptr, 0);
}

std::vector<GroupFacts> DumpGroups(const std::string& image) {
  std::vector<GroupFacts> groups;
  std::string out =
      RunCommand(absl::StrCat(kDumpe2fs, " ", image), StderrMode::kDiscard)
          .output;
  size_t pos = 0;
  while (pos < out.size()) {
    size_t end = out.find('\n', pos);
    if (end == std::string::npos) end = out.size();
    std::string line = out.substr(pos, end - pos);
    pos = end + 1;
    if (line.rfind("Group ", 0) == 0 && line.find("(Blocks") != line.npos) {
      GroupFacts facts;
      size_t paren = line.find(')');
      std::string rest = line.substr(paren);
      if (rest.find("csum 0x") != rest.npos) {
        facts.checksum = static_cast<uint16_t>(After(rest, "csum "));
      }
      if (rest.find("INODE_UNINIT") != rest.npos) facts.flags |= 1;
      if (rest.find("BLOCK_UNINIT") != rest.npos) facts.flags |= 2;
      if (rest.find("ITABLE_ZEROED") != rest.npos) facts.flags |= 4;
      groups.push_back(facts);
      continue;
    }
    if (groups.empty()) continue;
    GroupFacts& facts = groups.back();
    if (line.find("Group descriptors at ") != line.npos) {
      facts.descriptor_block = After(line, "Group descriptors at ");
    } else if (line.find("Group descriptor at ") != line.npos) {
      facts.descriptor_block = After(line, "Group descriptor at ");
    } else if (line.find("Block bitmap at ") != line.npos) {
      facts.block_bitmap = After(line, "Block bitmap at ");
      if (line.find(", csum ") != line.npos) {
        facts.block_bitmap_csum = static_cast<uint32_t>(After(line, ", csum "));
      }
    } else if (line.find("Inode bitmap at ") != line.npos) {
      facts.inode_bitmap = After(line, "Inode bitmap at ");
      if (line.find(", csum ") != line.npos) {
        facts.inode_bitmap_csum = static_cast<uint32_t>(After(line, ", csum "));
      }
    } else if (line.find("Inode table at ") != line.npos) {
      facts.inode_table = After(line, "Inode table at ");
    } else if (line.find(" free inodes, ") != line.npos) {
      facts.free_blocks = std::strtoull(line.c_str(), nullptr, 10);
      size_t comma = line.find(", ");
      facts.free_inodes = std::strtoull(line.c_str() + comma + 2, nullptr, 10);
      comma = line.find(", ", comma + 2);
      facts.directories = std::strtoull(line.c_str() + comma + 2, nullptr, 10);
      comma = line.find(", ", comma + 2);
      if (comma != line.npos) {
        facts.unused_inodes =
            std::strtoull(line.c_str() + comma + 2, nullptr, 10);
      }
    }
  }
  return groups;
}

class DescriptorImageTest : public ::testing::TestWithParam<Variant> {
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
    auto parsed =
        ParseSuperblock(ReadFileAt(image_, kSuperblockOffset, kSuperblockSize));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    sb_ = *parsed;
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_, cleanup_error);
  }

  std::vector<uint8_t> RawDescriptor(uint32_t group) {
    uint64_t offset = GroupDescriptorBlock(sb_, group) * sb_.block_size() +
                      GroupDescriptorOffsetInBlock(sb_, group);
    return ReadFileAt(image_, offset, sb_.descriptor_size());
  }

  std::string dir_;
  std::string image_;
  Superblock sb_;
};

TEST_P(DescriptorImageTest, EveryGroupMatchesDumpe2fs) {
  std::vector<GroupFacts> groups = DumpGroups(image_);
  ASSERT_EQ(groups.size(), sb_.group_count());
  const uint32_t per_block = sb_.descriptors_per_block();
  for (uint32_t g = 0; g < sb_.group_count(); ++g) {
    SCOPED_TRACE(absl::StrCat("group ", g));
    // Where the descriptor lives: dumpe2fs names the primary table in
    // group 0, and with meta_bg the block in each meta group's first group.
    if (sb_.has_incompat(kIncompatMetaBg) &&
        g / per_block >= sb_.first_meta_bg) {
      const GroupFacts& first = groups[g / per_block * per_block];
      ASSERT_TRUE(first.descriptor_block.has_value());
      EXPECT_EQ(GroupDescriptorBlock(sb_, g), *first.descriptor_block);
    } else {
      ASSERT_TRUE(groups[0].descriptor_block.has_value());
      EXPECT_EQ(GroupDescriptorBlock(sb_, g),
                *groups[0].descriptor_block + g / per_block);
    }
    EXPECT_EQ(GroupDescriptorOffsetInBlock(sb_, g),
              g % per_block * sb_.descriptor_size());

    std::vector<uint8_t> raw = RawDescriptor(g);
    ASSERT_EQ(raw.size(), sb_.descriptor_size());
    auto gd = ParseGroupDescriptor(raw, g, sb_);
    ASSERT_TRUE(gd.ok()) << gd.status();
    const GroupFacts& facts = groups[g];
    EXPECT_EQ(gd->block_bitmap, facts.block_bitmap);
    EXPECT_EQ(gd->inode_bitmap, facts.inode_bitmap);
    EXPECT_EQ(gd->inode_table, facts.inode_table);
    EXPECT_EQ(gd->free_blocks_count, facts.free_blocks);
    EXPECT_EQ(gd->free_inodes_count, facts.free_inodes);
    EXPECT_EQ(gd->used_dirs_count, facts.directories);
    if (sb_.has_group_desc_csum()) {
      ASSERT_TRUE(facts.checksum.has_value());
      EXPECT_EQ(gd->checksum, *facts.checksum);
      EXPECT_EQ(GroupDescriptorChecksum(raw, g, sb_), *facts.checksum);
      EXPECT_EQ(gd->flags, facts.flags);
      ASSERT_TRUE(facts.unused_inodes.has_value());
      EXPECT_EQ(gd->itable_unused, *facts.unused_inodes);
    } else {
      EXPECT_EQ(GroupDescriptorChecksum(raw, g, sb_), 0);
    }
    if (sb_.metadata_csum()) {
      ASSERT_TRUE(facts.block_bitmap_csum.has_value());
      EXPECT_EQ(gd->block_bitmap_csum, *facts.block_bitmap_csum);
      EXPECT_EQ(gd->inode_bitmap_csum, *facts.inode_bitmap_csum);
    }

    // Serializing into zeros reproduces the bytes, checksum included.
    std::vector<uint8_t> out(raw.size(), 0);
    SerializeGroupDescriptor(*gd, g, sb_, out);
    EXPECT_EQ(out, raw);
  }
}

TEST_P(DescriptorImageTest, DamageIsCaughtOrHarmless) {
  std::vector<uint8_t> original = RawDescriptor(0);
  std::mt19937 random(99);
  for (int round = 0; round < 3000; ++round) {
    std::vector<uint8_t> raw = original;
    raw[random() % raw.size()] ^= static_cast<uint8_t>(1 + random() % 255);
    bool resign = round % 2 == 0;
    if (resign) {
      Put16(raw, 0x1E, GroupDescriptorChecksum(raw, 0, sb_));
    }
    auto gd = ParseGroupDescriptor(raw, 0, sb_);
    if (!gd.ok()) {
      EXPECT_EQ(ErrnoOf(gd.status()), EUCLEAN);
      continue;
    }
    if (sb_.has_group_desc_csum() && !resign) {
      // Only the checksum-neutral flips of unchecked bytes can pass; there
      // are none: every byte but bg_checksum is covered.
      ADD_FAILURE() << "damage at round " << round << " went unnoticed";
    }
    EXPECT_LE(gd->inode_table + sb_.inode_table_blocks(), sb_.blocks_count);
  }
}

INSTANTIATE_TEST_SUITE_P(Mke2fs, DescriptorImageTest,
                         ::testing::ValuesIn(kVariants),
                         [](const ::testing::TestParamInfo<Variant>& info) {
                           return std::string(info.param.name);
                         });

// ---- Targeted damage, re-signed so the range checks are what fires. ----

class DescriptorCorruptionTest : public ::testing::Test {
 protected:
  void Make(const char* args, const char* size) {
    if (!HaveTools({kMke2fs, kDumpe2fs}))
      GTEST_SKIP() << "mke2fs/dumpe2fs not installed";
    dir_ = MakeTempDir("sb");
    ASSERT_FALSE(dir_.empty());
    image_ = MakeImageWithSmallTree(dir_, args, size);
    ASSERT_FALSE(image_.empty());
    auto parsed =
        ParseSuperblock(ReadFileAt(image_, kSuperblockOffset, kSuperblockSize));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    sb_ = *parsed;
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_, cleanup_error);
  }
  std::vector<uint8_t> Raw(uint32_t group) {
    uint64_t offset = GroupDescriptorBlock(sb_, group) * sb_.block_size() +
                      GroupDescriptorOffsetInBlock(sb_, group);
    return ReadFileAt(image_, offset, sb_.descriptor_size());
  }
  GroupDescriptor Parsed(uint32_t group) {
    auto gd = ParseGroupDescriptor(Raw(group), group, sb_);
    EXPECT_TRUE(gd.ok()) << gd.status();
    return gd.ok() ? *gd : GroupDescriptor{};
  }
  // Serializes (re-signing) and parses again.
  absl::Status Reparse(const GroupDescriptor& gd, uint32_t group) {
    std::vector<uint8_t> raw = Raw(group);
    SerializeGroupDescriptor(gd, group, sb_, raw);
    return ParseGroupDescriptor(raw, group, sb_).status();
  }

  std::string dir_;
  std::string image_;
  Superblock sb_;
};

TEST_F(DescriptorCorruptionTest, ChecksumMismatchMetadataCsum) {
  Make("-t ext4", "4M");
  std::vector<uint8_t> raw = Raw(0);
  raw[0x0C] ^= 1;  // free blocks count
  auto gd = ParseGroupDescriptor(raw, 0, sb_);
  EXPECT_EQ(ErrnoOf(gd.status()), EUCLEAN);
  EXPECT_NE(gd.status().message().find("group descriptor 0"),
            std::string::npos);
  // The high half is covered as well.
  raw = Raw(0);
  raw[0x2C] ^= 1;
  EXPECT_EQ(ErrnoOf(ParseGroupDescriptor(raw, 0, sb_).status()), EUCLEAN);
  // The group number is part of the checksum.
  raw = Raw(0);
  EXPECT_NE(GroupDescriptorChecksum(raw, 0, sb_),
            GroupDescriptorChecksum(raw, 1, sb_));
}

TEST_F(DescriptorCorruptionTest, ChecksumMismatchGdtCsum) {
  Make("-t ext4 -O ^metadata_csum,uninit_bg", "4M");
  std::vector<uint8_t> raw = Raw(0);
  raw[0x08] ^= 1;
  EXPECT_EQ(ErrnoOf(ParseGroupDescriptor(raw, 0, sb_).status()), EUCLEAN);
  raw = Raw(0);
  raw[0x3C] ^= 1;  // bg_reserved: covered by crc16 with 64-byte descriptors
  EXPECT_EQ(ErrnoOf(ParseGroupDescriptor(raw, 0, sb_).status()), EUCLEAN);
}

TEST_F(DescriptorCorruptionTest, NoChecksumWithoutTheFeatures) {
  Make("-t ext2", "4M");
  std::vector<uint8_t> raw = Raw(0);
  raw[0x14] ^= 1;  // exclude bitmap: unchecked, unused
  EXPECT_TRUE(ParseGroupDescriptor(raw, 0, sb_).ok());
  EXPECT_EQ(GroupDescriptorChecksum(raw, 0, sb_), 0);
}

TEST_F(DescriptorCorruptionTest, LocationsOutsideTheFilesystem) {
  Make("-t ext4", "4M");
  const GroupDescriptor good = Parsed(0);
  ASSERT_TRUE(Reparse(good, 0).ok());
  struct Case {
    const char* what;
    uint64_t GroupDescriptor::*field;
    uint64_t value;
  };
  const uint64_t end = sb_.blocks_count;
  const Case cases[] = {
      {"inode table past the end", &GroupDescriptor::inode_table, end},
      {"inode table running off the end", &GroupDescriptor::inode_table,
       end - 1},
      {"inode table 2^32 blocks up", &GroupDescriptor::inode_table,
       good.inode_table + (uint64_t{1} << 32)},
      {"inode table at ~0", &GroupDescriptor::inode_table, ~uint64_t{0}},
      {"block bitmap before the first data block",
       &GroupDescriptor::block_bitmap, 0},
      {"block bitmap on the superblock", &GroupDescriptor::block_bitmap, 1},
      {"inode bitmap on the descriptor table", &GroupDescriptor::inode_bitmap,
       2},
      {"inode bitmap past the end", &GroupDescriptor::inode_bitmap, end},
      {"inode table over the superblock", &GroupDescriptor::inode_table, 0},
  };
  for (const Case& c : cases) {
    GroupDescriptor gd = good;
    gd.*(c.field) = c.value;
    absl::Status status = Reparse(gd, 0);
    EXPECT_EQ(ErrnoOf(status), EUCLEAN) << c.what;
    EXPECT_NE(status.message().find("group descriptor 0"), std::string::npos)
        << status;
  }
  // flex_bg: anywhere inside the filesystem is fine.
  GroupDescriptor moved = good;
  moved.block_bitmap = end - 1;
  EXPECT_TRUE(Reparse(moved, 0).ok());
}

TEST_F(DescriptorCorruptionTest, WithoutFlexBgMetadataStaysInItsGroup) {
  Make("-t ext4 -O ^flex_bg", "32M");
  ASSERT_GE(sb_.group_count(), 3u);
  GroupDescriptor gd = Parsed(1);
  ASSERT_TRUE(Reparse(gd, 1).ok());
  GroupDescriptor moved = gd;
  moved.block_bitmap = sb_.group_first_block(2) + 5;
  EXPECT_EQ(ErrnoOf(Reparse(moved, 1)), EUCLEAN);
  moved = gd;
  moved.inode_table = sb_.group_first_block(2) - 2;  // runs into group 2
  EXPECT_EQ(ErrnoOf(Reparse(moved, 1)), EUCLEAN);
  moved = gd;
  moved.inode_bitmap = sb_.group_first_block(1) - 1;
  EXPECT_EQ(ErrnoOf(Reparse(moved, 1)), EUCLEAN);
}

TEST_F(DescriptorCorruptionTest, CountsBeyondTheGroup) {
  Make("-t ext4", "4M");
  const GroupDescriptor good = Parsed(0);
  GroupDescriptor gd = good;
  gd.free_inodes_count = sb_.inodes_per_group + 1;
  EXPECT_EQ(ErrnoOf(Reparse(gd, 0)), EUCLEAN);
  gd = good;
  gd.used_dirs_count = 0x10000;
  EXPECT_EQ(ErrnoOf(Reparse(gd, 0)), EUCLEAN);
  gd = good;
  gd.itable_unused = sb_.inodes_per_group + 1;
  EXPECT_EQ(ErrnoOf(Reparse(gd, 0)), EUCLEAN);
  gd = good;
  gd.free_blocks_count = sb_.blocks_per_group + 1;
  EXPECT_EQ(ErrnoOf(Reparse(gd, 0)), EUCLEAN);
}

TEST_F(DescriptorCorruptionTest, ShortBufferAndMissingGroup) {
  Make("-t ext4", "4M");
  std::vector<uint8_t> raw = Raw(0);
  EXPECT_EQ(
      ErrnoOf(ParseGroupDescriptor(Bytes(raw.data(), 63), 0, sb_).status()),
      EUCLEAN);
  EXPECT_EQ(ErrnoOf(ParseGroupDescriptor({}, 0, sb_).status()), EUCLEAN);
  // A descriptor signed for a group that does not exist.
  SerializeGroupDescriptor(Parsed(0), 5, sb_, raw);
  EXPECT_EQ(ErrnoOf(ParseGroupDescriptor(raw, 5, sb_).status()), EUCLEAN);
}

TEST_F(DescriptorCorruptionTest, SerializeKeepsUnmodelledBytes) {
  Make("-t ext4", "4M");
  std::vector<uint8_t> raw = Raw(0);
  raw[0x3C] = 0xAB;  // bg_reserved
  GroupDescriptor gd = Parsed(0);
  gd.free_inodes_count -= 1;
  gd.flags |= kBgInodeZeroed;
  SerializeGroupDescriptor(gd, 0, sb_, raw);
  EXPECT_EQ(raw[0x3C], 0xAB);
  auto again = ParseGroupDescriptor(raw, 0, sb_);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->free_inodes_count, gd.free_inodes_count);
  EXPECT_EQ(again->checksum, GroupDescriptorChecksum(raw, 0, sb_));
}

// ---- Descriptor locations on synthetic geometries. ----

Superblock Geometry(uint32_t block_size, bool is_64bit, bool meta_bg,
                    uint32_t first_meta_bg, uint32_t groups) {
  Superblock sb;
  sb.rev_level = kDynamicRevision;
  sb.log_block_size = block_size == 1024 ? 0 : block_size == 4096 ? 2 : 1;
  sb.log_cluster_size = sb.log_block_size;
  sb.blocks_per_group = block_size * 8;
  sb.first_data_block = block_size == 1024 ? 1 : 0;
  sb.blocks_count =
      sb.first_data_block + uint64_t{groups} * sb.blocks_per_group;
  sb.feature_ro_compat = kRoCompatSparseSuper;
  if (is_64bit) {
    sb.feature_incompat |= kIncompat64Bit;
    sb.desc_size = 64;
  }
  if (meta_bg) sb.feature_incompat |= kIncompatMetaBg;
  sb.first_meta_bg = first_meta_bg;
  return sb;
}

TEST(GroupDescriptorBlockTest, ClassicLayout) {
  Superblock sb = Geometry(1024, true, false, 0, 64);  // 16 per block
  EXPECT_EQ(GroupDescriptorBlock(sb, 0), 2u);
  EXPECT_EQ(GroupDescriptorBlock(sb, 15), 2u);
  EXPECT_EQ(GroupDescriptorBlock(sb, 16), 3u);
  EXPECT_EQ(GroupDescriptorOffsetInBlock(sb, 17), 64u);
  sb = Geometry(4096, false, false, 0, 300);  // 128 per block
  EXPECT_EQ(GroupDescriptorBlock(sb, 0), 1u);
  EXPECT_EQ(GroupDescriptorBlock(sb, 129), 2u);
  EXPECT_EQ(GroupDescriptorOffsetInBlock(sb, 129), 32u);
}

TEST(GroupDescriptorBlockTest, MetaBgAfterFirstMetaBg) {
  Superblock sb = Geometry(1024, true, true, 2, 64);
  // The first two descriptor blocks keep the classic place.
  EXPECT_EQ(GroupDescriptorBlock(sb, 0), 2u);
  EXPECT_EQ(GroupDescriptorBlock(sb, 31), 3u);
  // Meta group 2 (groups 32-47) starts at group 32, which has no
  // superblock copy under sparse_super.
  EXPECT_EQ(GroupDescriptorBlock(sb, 32), sb.group_first_block(32));
  EXPECT_EQ(GroupDescriptorBlock(sb, 47), sb.group_first_block(32));
  EXPECT_EQ(GroupDescriptorBlock(sb, 48), sb.group_first_block(48));
  // Without sparse_super every group has a superblock copy to skip.
  sb.feature_ro_compat = 0;
  EXPECT_EQ(GroupDescriptorBlock(sb, 40), sb.group_first_block(32) + 1);
}

TEST(GroupDescriptorBlockTest, MetaBgGroupZero) {
  Superblock sb = Geometry(4096, true, true, 0, 200);  // 64 per block
  EXPECT_EQ(GroupDescriptorBlock(sb, 0), 1u);          // after the superblock
  EXPECT_EQ(GroupDescriptorBlock(sb, 63), 1u);
  EXPECT_EQ(GroupDescriptorBlock(sb, 64), sb.group_first_block(64));
  // 1 KiB blocks with bigalloc start at block 0; the superblock is in 1.
  sb = Geometry(1024, true, true, 0, 64);
  sb.first_data_block = 0;
  EXPECT_EQ(GroupDescriptorBlock(sb, 0), 2u);
}

}  // namespace
}  // namespace ext4::format
