#include "ext4/format/inode.h"

#include <unistd.h>

#include <algorithm>
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
#include "ext4/format/group_descriptor.h"
#include "ext4/format/superblock.h"
#include "ext4/testing/image_tools.h"
#include "gtest/gtest.h"

namespace ext4::format {
namespace {

// Where clean-up errors go (a temp tree that will not go is harmless).
std::error_code cleanup_error;

// ---- Images made by mke2fs, and the facts dumpe2fs reports about them. ----

using ::ext4::testing::HaveTools;
using ::ext4::testing::kDebugfs;
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

// `debugfs -R "stat <ino>"` for a list of inodes, split per inode.
std::map<uint32_t, std::string> StatInodes(const std::string& dir,
                                           const std::string& image,
                                           const std::vector<uint32_t>& inos) {
  std::string script = dir + "/stat.cmd";
  FILE* file = std::fopen(script.c_str(), "w");
  if (file == nullptr) return {};
  for (uint32_t ino : inos) std::fprintf(file, "stat <%u>\n", ino);
  std::fclose(file);
  std::string out =
      RunCommand(absl::StrCat(kDebugfs, " -f ", script, " ", image),
                 StderrMode::kDiscard)
          .output;
  std::map<uint32_t, std::string> result;
  const std::string marker = "debugfs: stat <";
  size_t pos = out.find(marker);
  while (pos != std::string::npos) {
    uint32_t ino = static_cast<uint32_t>(
        std::strtoul(out.c_str() + pos + marker.size(), nullptr, 10));
    size_t next = out.find(marker, pos + 1);
    result[ino] =
        out.substr(pos, next == std::string::npos ? next : next - pos);
    pos = next;
  }
  return result;
}

// The token after "key:" where key starts a word; "" when absent.
std::string Field(const std::string& text, const std::string& key) {
  std::string needle = key + ":";
  size_t at = 0;
  while ((at = text.find(needle, at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == ' ' || text[at - 1] == '\n') break;
    at += needle.size();
  }
  if (at == std::string::npos) return "";
  size_t begin = text.find_first_not_of(' ', at + needle.size());
  size_t end = text.find_first_of(" \n", begin);
  return text.substr(begin, end == std::string::npos ? end : end - begin);
}

uint64_t Num(const std::string& text, int base = 0) {
  return std::strtoull(text.c_str(), nullptr, base);
}

class InodeImageTest : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override {
    if (!HaveTools({kMke2fs, kDebugfs}))
      GTEST_SKIP() << "mke2fs/debugfs not installed";
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

  std::vector<uint8_t> RawInode(uint32_t ino) {
    uint32_t group = (ino - 1) / sb_.inodes_per_group;
    uint32_t index = (ino - 1) % sb_.inodes_per_group;
    uint64_t at = GroupDescriptorBlock(sb_, group) * sb_.block_size() +
                  GroupDescriptorOffsetInBlock(sb_, group);
    auto gd = ParseGroupDescriptor(
        ReadFileAt(image_, at, sb_.descriptor_size()), group, sb_);
    EXPECT_TRUE(gd.ok()) << gd.status();
    if (!gd.ok()) return {};
    return ReadFileAt(
        image_,
        gd->inode_table * sb_.block_size() + uint64_t{index} * sb_.inode_size(),
        sb_.inode_size());
  }

  std::string dir_;
  std::string image_;
  Superblock sb_;
};

void ExpectTime(const std::string& text, const char* key, const InodeTime& time,
                bool has_extra) {
  std::string value = Field(text, key);
  ASSERT_FALSE(value.empty()) << key;
  EXPECT_EQ(Num(value.substr(0, 10), 16),
            static_cast<uint32_t>(static_cast<uint64_t>(time.sec)))
      << key;
  if (has_extra) {
    ASSERT_EQ(value.size(), 19u) << key << " " << value;
    uint32_t extra = static_cast<uint32_t>(Num(value.substr(11), 16));
    EXPECT_EQ(extra >> 2, time.nsec) << key;
    int64_t low = static_cast<int32_t>(Num(value.substr(0, 10), 16));
    EXPECT_EQ(time.sec, low + (int64_t{extra & 3} << 32)) << key;
  } else {
    EXPECT_EQ(time.nsec, 0u);
  }
}

TEST_P(InodeImageTest, MatchesDebugfs) {
  std::vector<uint32_t> inos;
  for (uint32_t ino = 1; ino <= sb_.first_inode() + 12; ++ino) {
    inos.push_back(ino);
  }
  inos.push_back(sb_.inodes_count);  // never used
  auto stats = StatInodes(dir_, image_, inos);
  ASSERT_EQ(stats.size(), inos.size());
  bool saw_inline = false;
  for (uint32_t ino : inos) {
    SCOPED_TRACE(absl::StrCat("inode ", ino));
    std::vector<uint8_t> raw = RawInode(ino);
    ASSERT_EQ(raw.size(), sb_.inode_size());
    auto parsed = ParseInode(raw, ino, sb_);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    const Inode& inode = *parsed;
    const std::string& text = stats[ino];

    EXPECT_EQ(inode.mode & 07777, Num(Field(text, "Mode"), 8));
    EXPECT_EQ(inode.flags, Num(Field(text, "Flags")));
    EXPECT_EQ(inode.generation, Num(Field(text, "Generation")));
    EXPECT_EQ(inode.uid, Num(Field(text, "User")));
    EXPECT_EQ(inode.gid, Num(Field(text, "Group")));
    EXPECT_EQ(inode.size, Num(Field(text, "Size")));
    EXPECT_EQ(inode.file_acl, Num(Field(text, "ACL")));
    EXPECT_EQ(inode.links_count, Num(Field(text, "Links")));
    EXPECT_EQ(inode.blocks, Num(Field(text, "Blockcount")));
    std::string type = Field(text, "Type");
    if (type == "directory") {
      EXPECT_TRUE(inode.is_dir());
    } else if (type == "regular") {
      EXPECT_TRUE(inode.is_reg());
    } else if (type == "symlink") {
      EXPECT_TRUE(inode.is_symlink());
    } else if (type == "bad") {
      EXPECT_EQ(inode.mode, 0);
    }
    EXPECT_EQ(inode.uses_extents(), (inode.flags & 0x80000) != 0);
    saw_inline |= inode.has_inline_data();

    const bool big = sb_.inode_size() > kGoodOldInodeSize;
    std::string version = Field(text, "Version");
    if (big) {
      EXPECT_EQ(inode.extra_isize,
                Num(Field(text, "Size of extra inode fields")));
    } else {
      EXPECT_EQ(inode.extra_isize, 0);
    }
    if (version.size() == 19) {  // "0xHIGH:LOW" when i_version_hi exists
      EXPECT_EQ(inode.version >> 32, Num(version.substr(0, 10), 16));
      EXPECT_EQ(inode.version & 0xFFFFFFFF, Num(version.substr(11), 16));
    } else {
      EXPECT_EQ(inode.version, Num(version, 16));
    }
    const bool extra_times = inode.extra_isize >= 0x90 - 0x80;
    ExpectTime(text, "ctime", inode.ctime, extra_times);
    ExpectTime(text, "atime", inode.atime, extra_times);
    ExpectTime(text, "mtime", inode.mtime, extra_times);
    if (inode.has_crtime()) {
      ExpectTime(text, "crtime", inode.crtime, true);
      EXPECT_EQ(inode.projid, Num(Field(text, "Project")));
    }
    if (inode.dtime != 0) {
      EXPECT_EQ(inode.dtime, Num(Field(text, "dtime").substr(0, 10), 16));
    }
    bool all_zero =
        std::all_of(raw.begin(), raw.end(), [](uint8_t b) { return b == 0; });
    if (sb_.metadata_csum()) {
      EXPECT_EQ(inode.checksum, Num(Field(text, "Inode checksum")));
      uint32_t expected = InodeChecksum(raw, ino, sb_);
      if (inode.extra_isize < 4) expected &= 0xFFFF;
      if (!all_zero) {
        EXPECT_EQ(inode.checksum, expected);
      }
    }

    // In place: identical bytes (a never-written all-zero inode gains a
    // checksum once written).
    std::vector<uint8_t> copy = raw;
    SerializeInode(inode, ino, sb_, copy);
    if (!all_zero || !sb_.metadata_csum()) {
      EXPECT_EQ(copy, raw);
    }
    EXPECT_TRUE(ParseInode(copy, ino, sb_).ok());
    // Over zeroed base and extra fields (the xattr area kept, the checksum
    // covers it): every byte there is modelled.
    if (!all_zero) {
      const size_t modelled = kGoodOldInodeSize + inode.extra_isize;
      std::vector<uint8_t> fresh = raw;
      std::fill(fresh.begin(), fresh.begin() + modelled, 0);
      SerializeInode(inode, ino, sb_, fresh);
      EXPECT_EQ(fresh, raw);
    }
    Bytes area = InodeXattrArea(raw, inode);
    EXPECT_EQ(area.size(),
              big ? raw.size() - kGoodOldInodeSize - inode.extra_isize : 0u);
    if (inode.has_inline_data()) {
      ASSERT_GE(area.size(), 4u);
      EXPECT_EQ(Le32(area, 0), 0xEA020000u);  // the in-inode xattr magic
    }
  }
  if (sb_.has_incompat(kIncompatInlineData)) {
    EXPECT_TRUE(saw_inline);
  }

  // The root directory.
  auto root = ParseInode(RawInode(kRootDirIno), kRootDirIno, sb_);
  ASSERT_TRUE(root.ok());
  EXPECT_TRUE(root->is_dir());
  EXPECT_GE(root->links_count, 4);  // ., .., lost+found/.., sub/..
  EXPECT_EQ(root->uses_extents(),
            sb_.has_incompat(kIncompatExtents) && !root->has_inline_data());
  if (std::string(GetParam().name) == "label") {
    EXPECT_EQ(root->uid, 1000u);
    EXPECT_EQ(root->gid, 1000u);
  }
}

TEST_P(InodeImageTest, DamageIsCaughtOrHarmless) {
  std::vector<uint8_t> original = RawInode(kRootDirIno);
  ASSERT_EQ(original.size(), sb_.inode_size());
  std::mt19937 random(7);
  for (int round = 0; round < 3000; ++round) {
    std::vector<uint8_t> raw = original;
    int flips = 1 + static_cast<int>(random() % 3);
    for (int i = 0; i < flips; ++i) {
      raw[random() % raw.size()] ^= static_cast<uint8_t>(1 + random() % 255);
    }
    auto parsed = ParseInode(raw, kRootDirIno, sb_);
    if (!parsed.ok()) {
      EXPECT_EQ(ErrnoOf(parsed.status()), EUCLEAN);
      continue;
    }
    EXPECT_FALSE(sb_.metadata_csum() && raw != original)
        << "damage went unnoticed at round " << round;
    (void)InodeXattrArea(raw, *parsed);
    std::vector<uint8_t> copy = raw;
    SerializeInode(*parsed, kRootDirIno, sb_, copy);
    EXPECT_TRUE(ParseInode(copy, kRootDirIno, sb_).ok());
  }
}

INSTANTIATE_TEST_SUITE_P(Mke2fs, InodeImageTest, ::testing::ValuesIn(kVariants),
                         [](const ::testing::TestParamInfo<Variant>& info) {
                           return std::string(info.param.name);
                         });

// ---- Damage to one real inode. ----

class InodeCorruptionTest : public InodeImageTest {
 protected:
  // Recomputes the stored checksum the way the kernel would.
  void Resign(std::vector<uint8_t>& raw, uint32_t ino) {
    uint32_t sum = InodeChecksum(raw, ino, sb_);
    Put16(raw, 0x7C, static_cast<uint16_t>(sum));
    if (raw.size() > 128 && Le16(raw, 0x80) >= 4) {
      Put16(raw, 0x82, static_cast<uint16_t>(sum >> 16));
    }
  }
};

TEST_P(InodeCorruptionTest, ChecksumCoversTheWholeInode) {
  std::vector<uint8_t> original = RawInode(kRootDirIno);
  for (size_t offset : {size_t{0x00}, size_t{0x28}, size_t{0x7C}, size_t{0x7F},
                        size_t{0x82}, size_t{0x90}, original.size() - 1}) {
    if (offset >= original.size()) continue;
    std::vector<uint8_t> raw = original;
    raw[offset] ^= 0x40;
    auto parsed = ParseInode(raw, kRootDirIno, sb_);
    EXPECT_EQ(ErrnoOf(parsed.status()), EUCLEAN) << "offset " << offset;
    EXPECT_EQ(parsed.status().message(), "inode 2: checksum mismatch");
  }
  // The inode number is part of the seed.
  EXPECT_EQ(ErrnoOf(ParseInode(original, 3, sb_).status()), EUCLEAN);
}

TEST_P(InodeCorruptionTest, ExtraIsize) {
  std::vector<uint8_t> raw = RawInode(kRootDirIno);
  for (uint16_t bad :
       {uint16_t{1000}, uint16_t{2}, uint16_t{130}, uint16_t{0xFFFF}}) {
    std::vector<uint8_t> copy = raw;
    Put16(copy, 0x80, bad);
    Resign(copy, kRootDirIno);
    auto parsed = ParseInode(copy, kRootDirIno, sb_);
    EXPECT_EQ(ErrnoOf(parsed.status()), EUCLEAN) << bad;
    EXPECT_NE(parsed.status().message().find("extra_isize"), std::string::npos);
  }
  // extra_isize 0 is legal: no extra fields, a 16-bit checksum.
  std::vector<uint8_t> copy = raw;
  Put16(copy, 0x80, 0);
  Resign(copy, kRootDirIno);
  auto parsed = ParseInode(copy, kRootDirIno, sb_);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_FALSE(parsed->has_extra_fields());
  EXPECT_FALSE(parsed->has_crtime());
  EXPECT_LE(parsed->checksum, 0xFFFFu);
  EXPECT_EQ(InodeXattrArea(copy, *parsed).size(), copy.size() - 128);
}

TEST_P(InodeCorruptionTest, NegativeSize) {
  std::vector<uint8_t> raw = RawInode(sb_.first_inode() + 1);  // a file
  auto parsed = ParseInode(raw, sb_.first_inode() + 1, sb_);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_TRUE(parsed->is_reg());
  Put32(raw, 0x6C, 0x80000000);
  Resign(raw, sb_.first_inode() + 1);
  EXPECT_EQ(ErrnoOf(ParseInode(raw, sb_.first_inode() + 1, sb_).status()),
            EUCLEAN);
}

TEST_P(InodeCorruptionTest, WrongBufferSize) {
  std::vector<uint8_t> raw = RawInode(kRootDirIno);
  EXPECT_EQ(ErrnoOf(ParseInode(Bytes(raw.data(), 127), 2, sb_).status()),
            EUCLEAN);
  raw.push_back(0);
  EXPECT_EQ(ErrnoOf(ParseInode(raw, 2, sb_).status()), EUCLEAN);
  EXPECT_EQ(ErrnoOf(ParseInode({}, 2, sb_).status()), EUCLEAN);
}

TEST_P(InodeCorruptionTest, AllZeroInodeParsesAsUnused) {
  std::vector<uint8_t> zero(sb_.inode_size(), 0);
  auto parsed = ParseInode(zero, 40, sb_);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->mode, 0);
  EXPECT_EQ(parsed->links_count, 0);
  // One stray byte makes it an inode whose checksum must hold.
  zero[0x1A] = 1;
  EXPECT_EQ(ErrnoOf(ParseInode(zero, 40, sb_).status()), EUCLEAN);
}

TEST_P(InodeCorruptionTest, NonLinuxCreatorHasNoChecksum) {
  std::vector<uint8_t> raw = RawInode(kRootDirIno);
  raw[0x7C] ^= 1;
  Superblock hurd = sb_;
  hurd.creator_os = kOsHurd;
  EXPECT_TRUE(ParseInode(raw, kRootDirIno, hurd).ok());
}

TEST_P(InodeCorruptionTest, SerializeUpdatesTheChecksumAndKeepsTheRest) {
  std::vector<uint8_t> raw = RawInode(kRootDirIno);
  raw[0x7E] = 0x5A;   // l_i_reserved, not modelled
  raw.back() = 0xA5;  // in the xattr area
  Resign(raw, kRootDirIno);
  auto parsed = ParseInode(raw, kRootDirIno, sb_);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  Inode inode = *parsed;
  inode.links_count = 9;
  inode.mode = kModeDirectory | 0700;
  inode.mtime = {int64_t{1} << 32, 123456789};  // 2106: needs an epoch bit
  inode.crtime = {-5, 17};
  inode.atime = {(int64_t{3} << 32) + 0x7FFFFFFF, 999999999};  // year 2446
  inode.uid = 0x12345;
  inode.projid = 77;
  inode.version = 0x0000000900000003;
  SerializeInode(inode, kRootDirIno, sb_, raw);
  EXPECT_EQ(raw[0x7E], 0x5A);
  EXPECT_EQ(raw.back(), 0xA5);
  auto again = ParseInode(raw, kRootDirIno, sb_);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->links_count, 9);
  EXPECT_EQ(again->mode, kModeDirectory | 0700);
  EXPECT_EQ(again->uid, 0x12345u);
  EXPECT_EQ(again->mtime.sec, int64_t{1} << 32);
  EXPECT_EQ(again->mtime.nsec, 123456789u);
  EXPECT_EQ(again->crtime.sec, -5);
  EXPECT_EQ(again->crtime.nsec, 17u);
  EXPECT_EQ(again->atime.sec, (int64_t{3} << 32) + 0x7FFFFFFF);
  EXPECT_EQ(again->atime.nsec, 999999999u);
  EXPECT_EQ(again->projid, 77u);
  EXPECT_EQ(again->version, 0x0000000900000003u);
}

const Variant kCorruptionVariants[] = {
    {"ext4", "-t ext4", "4M", nullptr},
    {"ext4_4k_csum_seed", "-t ext4 -b 4096 -O metadata_csum_seed", "16M",
     nullptr},
};

INSTANTIATE_TEST_SUITE_P(Mke2fs, InodeCorruptionTest,
                         ::testing::ValuesIn(kCorruptionVariants),
                         [](const ::testing::TestParamInfo<Variant>& info) {
                           return std::string(info.param.name);
                         });

TEST(InodeChecksumTest, SmallInodesKeepTheLowHalf) {
  if (!HaveTools({kMke2fs, kDebugfs}))
    GTEST_SKIP() << "mke2fs/debugfs not installed";
  std::string dir = MakeTempDir("sb");
  std::string image = MakeImageWithSmallTree(dir, "-t ext4 -I 128", "4M");
  ASSERT_FALSE(image.empty());
  auto sb =
      ParseSuperblock(ReadFileAt(image, kSuperblockOffset, kSuperblockSize));
  ASSERT_TRUE(sb.ok());
  auto gd = ParseGroupDescriptor(
      ReadFileAt(image, GroupDescriptorBlock(*sb, 0) * sb->block_size(),
                 sb->descriptor_size()),
      0, *sb);
  ASSERT_TRUE(gd.ok());
  std::vector<uint8_t> raw =
      ReadFileAt(image, gd->inode_table * sb->block_size() + 128, 128);
  auto root = ParseInode(raw, 2, *sb);
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(root->checksum, InodeChecksum(raw, 2, *sb) & 0xFFFF);
  EXPECT_TRUE(InodeXattrArea(raw, *root).empty());
  raw[0x40] ^= 1;
  EXPECT_EQ(ErrnoOf(ParseInode(raw, 2, *sb).status()), EUCLEAN);
  std::filesystem::remove_all(dir, cleanup_error);
}

// ---- Field encodings, on a synthetic superblock. ----

Superblock Synthetic(uint32_t incompat, uint32_t ro_compat) {
  Superblock sb;
  sb.rev_level = kDynamicRevision;
  sb.raw_inode_size = 256;
  sb.log_block_size = 2;  // 4 KiB
  sb.feature_incompat = incompat;
  sb.feature_ro_compat = ro_compat;
  for (int i = 0; i < 16; ++i) sb.uuid[i] = static_cast<uint8_t>(i + 1);
  return sb;
}

std::vector<uint8_t> BlankInode(uint16_t mode) {
  std::vector<uint8_t> raw(256, 0);
  Put16(raw, 0x00, mode);
  Put16(raw, 0x80, 32);
  return raw;
}

TEST(InodeFieldsTest, TimeDecoding) {
  Superblock sb = Synthetic(0, 0);
  std::vector<uint8_t> raw = BlankInode(kModeRegular | 0644);
  Put32(raw, 0x08, 0x80000000);     // atime: -2^31 ...
  Put32(raw, 0x8C, 1 | (5u << 2));  // ... plus one epoch: 2^31, 5 ns
  Put32(raw, 0x0C, 0xFFFFFFFF);     // ctime: -1 (1969)
  Put32(raw, 0x84, 0);
  Put32(raw, 0x10, 10);  // mtime: 10 + 3 * 2^32
  Put32(raw, 0x88, 3 | (999999999u << 2));
  Put32(raw, 0x90, 20);  // crtime
  Put32(raw, 0x94, 2 << 2);
  auto inode = ParseInode(raw, 12, sb);
  ASSERT_TRUE(inode.ok()) << inode.status();
  EXPECT_EQ(inode->atime.sec, int64_t{1} << 31);
  EXPECT_EQ(inode->atime.nsec, 5u);
  EXPECT_EQ(inode->ctime.sec, -1);
  EXPECT_EQ(inode->mtime.sec, 10 + (int64_t{3} << 32));
  EXPECT_EQ(inode->mtime.nsec, 999999999u);
  EXPECT_EQ(inode->crtime.sec, 20);
  EXPECT_EQ(inode->crtime.nsec, 2u);
  std::vector<uint8_t> copy = raw;
  SerializeInode(*inode, 12, sb, copy);
  EXPECT_EQ(copy, raw);

  // Without extra fields the seconds are plain signed 32-bit values.
  Put16(raw, 0x80, 0);
  inode = ParseInode(raw, 12, sb);
  ASSERT_TRUE(inode.ok());
  EXPECT_EQ(inode->atime.sec, -(int64_t{1} << 31));
  EXPECT_EQ(inode->atime.nsec, 0u);
  EXPECT_EQ(inode->crtime.sec, 0);
  // Extra fields that stop before crtime.
  Put16(raw, 0x80, 16);
  inode = ParseInode(raw, 12, sb);
  ASSERT_TRUE(inode.ok());
  EXPECT_EQ(inode->atime.sec, int64_t{1} << 31);
  EXPECT_FALSE(inode->has_crtime());
  EXPECT_EQ(inode->crtime.sec, 0);
}

TEST(InodeFieldsTest, BlockCounts) {
  std::vector<uint8_t> raw = BlankInode(kModeRegular | 0644);
  Put32(raw, 0x1C, 10);
  Put16(raw, 0x74, 1);  // i_blocks_high
  auto plain = ParseInode(raw, 12, Synthetic(0, 0));
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->blocks, 10u);  // the high half needs huge_file
  Superblock huge = Synthetic(0, kRoCompatHugeFile);
  auto wide = ParseInode(raw, 12, huge);
  ASSERT_TRUE(wide.ok());
  EXPECT_EQ(wide->blocks, (uint64_t{1} << 32) + 10);
  // The HUGE_FILE flag counts filesystem blocks (4 KiB = 8 sectors).
  Put32(raw, 0x20, kInodeFlagHugeFile);
  auto blocks = ParseInode(raw, 12, huge);
  ASSERT_TRUE(blocks.ok());
  EXPECT_EQ(blocks->blocks, ((uint64_t{1} << 32) + 10) * 8);
  std::vector<uint8_t> copy = raw;
  SerializeInode(*blocks, 12, huge, copy);
  EXPECT_EQ(copy, raw);
}

TEST(InodeFieldsTest, HighHalves) {
  std::vector<uint8_t> raw = BlankInode(kModeDirectory | 0755);
  Put32(raw, 0x04, 4096);
  Put32(raw, 0x6C, 1);  // size_high: ignored for directories ...
  Put32(raw, 0x68, 500);
  Put16(raw, 0x76, 2);  // file_acl_high: needs 64bit
  Put16(raw, 0x02, 1);
  Put16(raw, 0x78, 1);  // uid_high
  Put16(raw, 0x18, 2);
  Put16(raw, 0x7A, 3);  // gid_high
  Put32(raw, 0x24, 7);
  Put32(raw, 0x98, 8);     // version_hi
  Put32(raw, 0x9C, 1234);  // projid
  auto inode = ParseInode(raw, 12, Synthetic(0, 0));
  ASSERT_TRUE(inode.ok());
  EXPECT_EQ(inode->size, 4096u);
  EXPECT_EQ(inode->file_acl, 500u);
  EXPECT_EQ(inode->uid, 0x10001u);
  EXPECT_EQ(inode->gid, 0x30002u);
  EXPECT_EQ(inode->version, (uint64_t{8} << 32) | 7);
  EXPECT_EQ(inode->projid, 1234u);
  // ... unless large_dir; file_acl_high counts with 64bit.
  Superblock wide = Synthetic(kIncompatLargeDir | kIncompat64Bit, 0);
  wide.desc_size = 64;
  inode = ParseInode(raw, 12, wide);
  ASSERT_TRUE(inode.ok());
  EXPECT_EQ(inode->size, (uint64_t{1} << 32) + 4096);
  EXPECT_EQ(inode->file_acl, (uint64_t{2} << 32) + 500);
  std::vector<uint8_t> copy = raw;
  SerializeInode(*inode, 12, wide, copy);
  EXPECT_EQ(copy, raw);
  // Regular files always use size_high.
  Put16(raw, 0x00, kModeRegular | 0644);
  inode = ParseInode(raw, 12, Synthetic(0, 0));
  ASSERT_TRUE(inode.ok());
  EXPECT_EQ(inode->size, (uint64_t{1} << 32) + 4096);
}

TEST(InodeFieldsTest, FileTypes) {
  Inode inode;
  const struct {
    uint16_t mode;
    bool (Inode::*is)() const;
  } cases[] = {
      {kModeDirectory, &Inode::is_dir},   {kModeRegular, &Inode::is_reg},
      {kModeSymlink, &Inode::is_symlink}, {kModeCharDevice, &Inode::is_chr},
      {kModeBlockDevice, &Inode::is_blk}, {kModeFifo, &Inode::is_fifo},
      {kModeSocket, &Inode::is_sock},
  };
  for (const auto& c : cases) {
    inode.mode = c.mode | 0755;
    for (const auto& other : cases) {
      EXPECT_EQ((inode.*other.is)(), other.mode == c.mode);
    }
  }
  inode.flags = kInodeFlagInlineData;
  EXPECT_TRUE(inode.has_inline_data());
  EXPECT_FALSE(inode.uses_extents());
  inode.flags = kInodeFlagExtents;
  EXPECT_TRUE(inode.uses_extents());
}

TEST(InodeFieldsTest, XattrArea) {
  std::vector<uint8_t> raw = BlankInode(kModeRegular);
  Inode inode;
  inode.extra_isize = 32;
  Bytes area = InodeXattrArea(raw, inode);
  EXPECT_EQ(area.data(), raw.data() + 160);
  EXPECT_EQ(area.size(), 96u);
  inode.extra_isize = 128;  // fills the inode
  EXPECT_TRUE(InodeXattrArea(raw, inode).empty());
  inode.extra_isize = 1000;
  EXPECT_TRUE(InodeXattrArea(raw, inode).empty());
  inode.extra_isize = 6;
  EXPECT_TRUE(InodeXattrArea(raw, inode).empty());
  inode.extra_isize = 0;
  EXPECT_TRUE(InodeXattrArea(Bytes(raw.data(), 128), inode).empty());
}

TEST(InodeFieldsTest, ChecksumUsesTheFilesystemSeed) {
  Superblock sb = Synthetic(0, kRoCompatMetadataCsum);
  std::vector<uint8_t> raw = BlankInode(kModeRegular | 0600);
  Put32(raw, 0x64, 0xDEADBEEF);  // generation feeds the seed
  Inode inode;
  inode.mode = kModeRegular | 0600;
  inode.generation = 0xDEADBEEF;
  inode.extra_isize = 32;
  SerializeInode(inode, 12, sb, raw);
  auto parsed = ParseInode(raw, 12, sb);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->checksum, InodeChecksum(raw, 12, sb));
  // A seed stored in the superblock (metadata_csum_seed) replaces the UUID.
  Superblock seeded = sb;
  seeded.feature_incompat |= kIncompatCsumSeed;
  seeded.raw_checksum_seed = sb.checksum_seed();
  EXPECT_TRUE(ParseInode(raw, 12, seeded).ok());
  seeded.raw_checksum_seed ^= 1;
  EXPECT_EQ(ErrnoOf(ParseInode(raw, 12, seeded).status()), EUCLEAN);
}

}  // namespace
}  // namespace ext4::format
