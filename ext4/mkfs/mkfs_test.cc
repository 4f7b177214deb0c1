// e4 mkfs's engine: the geometry it plans, the images it writes (checked by
// e2fsck -fn, dumpe2fs and debugfs, which no one here wrote, and mounted by
// the engine read-only and read-write), and -d trees read back through the
// engine.
#include "ext4/mkfs/mkfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "ext4/filesystem.h"
#include "ext4/format/superblock.h"
#include "ext4/io/block_device.h"
#include "ext4/mkfs/layout.h"
#include "ext4/mkfs/options.h"
#include "ext4/mkfs/populate.h"
#include "ext4/testing/image_tools.h"
#include "gtest/gtest.h"

namespace ext4::mkfs {
namespace {

using ::ext4::testing::HaveE2fsprogs;
using ::ext4::testing::kDebugfs;
using ::ext4::testing::kDumpe2fs;
using ::ext4::testing::kE2fsck;
using ::ext4::testing::MakeTempDir;
using ::ext4::testing::RunCommand;

constexpr uint64_t kMiB = 1 << 20;

MkfsOptions Options(uint64_t size, uint32_t block_size = 4096,
                    const std::string& features = "") {
  MkfsOptions o;
  o.size_bytes = size;
  o.block_size = block_size;
  EXPECT_TRUE(ApplyFeatureList(features, o.features).ok()) << features;
  return o;
}

// ---- Options and geometry (no I/O) -----------------------------------------

TEST(FeatureListTest, AddsRemovesAndRefuses) {
  FeatureSet f = DefaultFeatures();
  ASSERT_TRUE(ApplyFeatureList("^metadata_csum,^64bit", f).ok());
  EXPECT_FALSE(f.ro_compat & format::kRoCompatMetadataCsum);
  EXPECT_FALSE(f.incompat & format::kIncompat64Bit);
  ASSERT_TRUE(ApplyFeatureList("inline_data extents ^has_journal", f).ok());
  EXPECT_TRUE(f.incompat & format::kIncompatInlineData);
  EXPECT_FALSE(f.compat & format::kCompatHasJournal);
  ASSERT_TRUE(ApplyFeatureList("none,filetype", f).ok());
  EXPECT_EQ(f, (FeatureSet{0, format::kIncompatFiletype, 0}));

  const FeatureSet before = f;
  EXPECT_EQ(ErrnoOf(ApplyFeatureList("dir_index,no_such_feature", f)), EINVAL);
  EXPECT_EQ(ErrnoOf(ApplyFeatureList("resize_inode", f)), EOPNOTSUPP);
  EXPECT_EQ(ErrnoOf(ApplyFeatureList("bigalloc", f)), EOPNOTSUPP);
  EXPECT_EQ(f, before);  // unchanged on error
  EXPECT_TRUE(ApplyFeatureList("^resize_inode", f).ok());
}

TEST(FeatureListTest, TypesAndNames) {
  auto ext2 = FeaturesForType("ext2");
  ASSERT_TRUE(ext2.ok());
  EXPECT_EQ(FeatureSetNames(*ext2),
            "ext_attr dir_index filetype sparse_super large_file");
  auto ext3 = FeaturesForType("ext3");
  ASSERT_TRUE(ext3.ok());
  EXPECT_TRUE(ext3->compat & format::kCompatHasJournal);
  EXPECT_EQ(*FeaturesForType("ext4"), DefaultFeatures());
  EXPECT_EQ(ErrnoOf(FeaturesForType("xfs").status()), EINVAL);
}

TEST(UuidTest, ParsesAndFormats) {
  auto uuid = ParseUuid("01234567-89ab-cdef-0123-456789ABCDEF");
  ASSERT_TRUE(uuid.ok()) << uuid.status();
  EXPECT_EQ(FormatUuid(*uuid), "01234567-89ab-cdef-0123-456789abcdef");
  EXPECT_FALSE(ParseUuid("01234567-89ab-cdef-0123-456789abcde").ok());
  EXPECT_FALSE(ParseUuid("0123456789ab-cdef-0123-456789abcdef-").ok());
  EXPECT_FALSE(ParseUuid("0123456g-89ab-cdef-0123-456789abcdef").ok());
  auto random = RandomUuid();
  EXPECT_EQ(random[6] >> 4, 4);
  EXPECT_EQ(random[8] >> 6, 2);
}

TEST(LayoutTest, MatchesMke2fsOnOneGibibyte) {
  // mke2fs -t ext4 -O ^resize_inode on 1 GiB gives exactly these numbers.
  auto g = PlanFilesystem(Options(1024 * kMiB), 1024 * kMiB);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->blocks_count, 262144u);
  EXPECT_EQ(g->group_count, 8u);
  EXPECT_EQ(g->inodes_per_group, 8192u);
  EXPECT_EQ(g->inode_table_blocks, 512u);
  EXPECT_EQ(g->reserved_blocks, 13107u);
  EXPECT_EQ(g->free_blocks, 249825u);
  EXPECT_EQ(g->overhead_blocks, 12314u);
  EXPECT_EQ(g->journal_blocks, 8192u);
  ASSERT_EQ(g->journal_runs.size(), 1u);
  EXPECT_EQ(g->journal_runs[0].first, 131072u);  // group 4, the middle
  EXPECT_EQ(g->groups[0].block_bitmap, 2u);
  EXPECT_EQ(g->groups[7].block_bitmap, 9u);
  EXPECT_EQ(g->groups[0].inode_bitmap, 10u);
  EXPECT_EQ(g->groups[0].inode_table, 18u);
  EXPECT_EQ(g->groups[7].inode_table, 3602u);
  EXPECT_EQ(g->root_block, 4114u);
  EXPECT_EQ(g->lost_found_block, 4115u);
  EXPECT_EQ(g->lost_found_blocks, 4u);
}

TEST(LayoutTest, JournalSizesAsMke2fs) {
  EXPECT_EQ(DefaultJournalBlocks(2047), 0u);
  EXPECT_EQ(DefaultJournalBlocks(2048), 1024u);
  EXPECT_EQ(DefaultJournalBlocks(32768), 4096u);
  EXPECT_EQ(DefaultJournalBlocks(262144), 8192u);
  EXPECT_EQ(DefaultJournalBlocks(786432), 16384u);
  EXPECT_EQ(DefaultJournalBlocks(5242880), 32768u);
  EXPECT_EQ(DefaultJournalBlocks(18350080), 131072u);
  EXPECT_EQ(DefaultJournalBlocks(uint64_t{1} << 40), 262144u);
  EXPECT_EQ(LostFoundBlocks(1024), 12u);
  EXPECT_EQ(LostFoundBlocks(4096), 4u);
  EXPECT_EQ(LostFoundBlocks(65536), 2u);
}

TEST(LayoutTest, SmallFilesystemHasNoJournal) {
  auto g = PlanFilesystem(Options(4 * kMiB), 4 * kMiB);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->journal_blocks, 0u);
  EXPECT_FALSE(g->features.compat & format::kCompatHasJournal);
  EXPECT_FALSE(g->notes.empty());
}

TEST(LayoutTest, ShortLastGroupIsDroppedOrKept) {
  // 1 GiB + 1 MiB: 256 blocks past the last full group, fewer than the
  // group's metadata plus 50.
  auto dropped = PlanFilesystem(Options(1025 * kMiB), 1025 * kMiB);
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  EXPECT_EQ(dropped->blocks_count, 262144u);
  EXPECT_EQ(dropped->group_count, 8u);
  // 1 GiB + 10 MiB: a short ninth group of 2560 blocks.
  auto kept = PlanFilesystem(Options(1034 * kMiB), 1034 * kMiB);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(kept->blocks_count, 264704u);
  EXPECT_EQ(kept->group_count, 9u);
  EXPECT_EQ(kept->group_end_block(8) - kept->group_first_block(8), 2560u);
}

TEST(LayoutTest, RefusesImpossibleOptions) {
  auto errno_of = [](const MkfsOptions& o, uint64_t device) {
    return ErrnoOf(PlanFilesystem(o, device).status());
  };
  MkfsOptions o = Options(64 * kMiB);
  o.block_size = 3000;
  EXPECT_EQ(errno_of(o, 64 * kMiB), EINVAL);
  o = Options(64 * kMiB);
  o.inode_size = 100;
  EXPECT_EQ(errno_of(o, 64 * kMiB), EINVAL);
  o = Options(64 * kMiB);
  o.inode_size = 8192;  // larger than the block
  EXPECT_EQ(errno_of(o, 64 * kMiB), EINVAL);
  o = Options(64 * kMiB);
  o.label = "seventeen bytes!!";
  EXPECT_EQ(errno_of(o, 64 * kMiB), EINVAL);
  EXPECT_EQ(errno_of(Options(64 * kMiB, 4096, "^extents"), 64 * kMiB), EINVAL);
  EXPECT_EQ(errno_of(Options(64 * kMiB, 4096, "^metadata_csum"), 64 * kMiB), 0);
  EXPECT_EQ(
      errno_of(Options(64 * kMiB, 4096, "^metadata_csum,metadata_csum_seed"),
               64 * kMiB),
      EINVAL);
  // Bigger than the device, or too small for anything.
  EXPECT_EQ(errno_of(Options(64 * kMiB), 32 * kMiB), ENOSPC);
  EXPECT_EQ(errno_of(Options(64 * 1024), 64 * 1024), ENOSPC);
  // 2^35 blocks need 64bit.
  const uint64_t huge = uint64_t{1} << 45;
  EXPECT_EQ(errno_of(Options(huge, 1024, "^64bit"), huge), EFBIG);
  // Journal sizes: too small, too large for the filesystem.
  o = Options(64 * kMiB);
  o.journal_blocks = 100;
  EXPECT_EQ(errno_of(o, 64 * kMiB), EINVAL);
  o.journal_blocks = 10000;  // of 16384 blocks
  EXPECT_EQ(errno_of(o, 64 * kMiB), EINVAL);
  o.journal_blocks = 7000;
  EXPECT_EQ(errno_of(o, 64 * kMiB), 0);
  // Inodes that cannot fit a group.
  o = Options(64 * kMiB, 1024);
  o.inode_count = 64 * kMiB / 1024 * 8;
  o.inode_size = 1024;
  EXPECT_EQ(errno_of(o, 64 * kMiB), EINVAL);
}

TEST(LayoutTest, FragmentedJournalAroundBackups) {
  // 1 KiB blocks: a 200 MiB journal crosses many groups and must skip the
  // backup superblocks in groups 25, 27 and 49: several runs, an extent
  // leaf (more than four extents), and indirect blocks without extents.
  MkfsOptions o = Options(600 * kMiB, 1024);
  o.journal_blocks = 200 * 1024;
  auto g = PlanFilesystem(o, 600 * kMiB);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_GT(g->journal_runs.size(), 1u);
  EXPECT_EQ(g->journal_mapping_blocks, 1u);
  uint64_t total = 0;
  for (const BlockRun& run : g->journal_runs) total += run.count;
  EXPECT_EQ(total, 200u * 1024 + 1);

  o.features = *FeaturesForType("ext3");
  auto ext3 = PlanFilesystem(o, 600 * kMiB);
  ASSERT_TRUE(ext3.ok()) << ext3.status();
  // 1 single, 1 double with 256 below it, 1 triple with 3 double and 543
  // single indirect blocks below it: 12 + 256 + 65536 + 138996 = 204800.
  EXPECT_EQ(ext3->journal_mapping_blocks, 1u + 1 + 256 + 1 + 3 + 543);
}

// ---- Images checked by e2fsprogs and the engine ----------------------------

class ImageDir : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveE2fsprogs()) GTEST_SKIP() << "e2fsprogs are not installed";
    dir_ = MakeTempDir("mkfs_test.");
    ASSERT_FALSE(dir_.empty());
    image_ = dir_ + "/fs.img";
  }
  void TearDown() override {
    if (!dir_.empty()) RunCommand("rm -rf " + dir_);
  }

  // A new sparse file of `size` bytes (all zeros), or one full of 0xA5
  // bytes when `dirty`.
  void NewImage(uint64_t size, bool dirty = false) {
    unlink(image_.c_str());
    if (dirty) {
      ASSERT_EQ(
          RunCommand(absl::StrCat("head -c ", size,
                                  " /dev/zero | tr '\\0' '\\245' > ", image_))
              .exit_code,
          0);
    } else {
      int fd = open(image_.c_str(), O_CREAT | O_WRONLY, 0644);
      ASSERT_GE(fd, 0);
      ASSERT_EQ(ftruncate(fd, static_cast<off_t>(size)), 0);
      close(fd);
    }
  }

  absl::Status Make(const MkfsOptions& options) {
    auto device = io::OpenFileDevice(image_, /*read_only=*/false);
    if (!device.ok()) return device.status();
    return MakeFilesystem(**device, options);
  }

  void ExpectFsckClean() {
    auto fsck = RunCommand(absl::StrCat(kE2fsck, " -fn ", image_));
    EXPECT_EQ(fsck.exit_code, 0) << fsck.output;
  }

  // dumpe2fs -h as field -> value.
  std::map<std::string, std::string> Header() {
    auto out = RunCommand(absl::StrCat(kDumpe2fs, " -h ", image_),
                          testing::StderrMode::kDiscard);
    std::map<std::string, std::string> fields;
    for (absl::string_view line : absl::StrSplit(out.output, '\n')) {
      size_t colon = line.find(':');
      if (colon == absl::string_view::npos) continue;
      fields[std::string(line.substr(0, colon))] =
          std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    }
    return fields;
  }

  absl::StatusOr<std::unique_ptr<Filesystem>> Mount(bool read_only) {
    auto device = io::OpenFileDevice(image_, read_only);
    if (!device.ok()) return device.status();
    MountOptions options;
    options.read_only = read_only;
    return Filesystem::Open(std::move(*device), options);
  }

  std::string dir_, image_;
};

struct Variant {
  const char* name;
  uint64_t size;
  uint32_t block_size;
  const char* type;
  const char* features;
  uint32_t inode_size;
  uint32_t journal_mib;
};

const Variant kVariants[] = {
    {"default_1g_sparse", 1024 * kMiB, 4096, "ext4", "", 256, 0},
    {"no_csum_no_64bit", 256 * kMiB, 4096, "ext4", "^metadata_csum,^64bit", 256,
     0},
    {"block_1k", 64 * kMiB, 1024, "ext4", "", 256, 0},
    {"block_2k", 300 * kMiB, 2048, "ext4", "", 256, 0},
    {"no_journal", 128 * kMiB, 4096, "ext4", "^has_journal", 256, 0},
    {"block_64k", 256 * kMiB, 65536, "ext4", "", 256, 0},
    {"small_4m", 4 * kMiB, 4096, "ext4", "", 256, 0},
    {"small_4m_1k", 4 * kMiB, 1024, "ext4", "", 256, 0},
    {"odd_last_group", 1034 * kMiB, 4096, "ext4", "", 256, 0},
    {"gdt_csum", 512 * kMiB, 4096, "ext4", "^metadata_csum,uninit_bg", 256, 0},
    {"no_flex_bg", 300 * kMiB, 4096, "ext4", "^flex_bg", 256, 0},
    {"no_sparse_super", 300 * kMiB, 4096, "ext4", "^sparse_super", 256, 0},
    {"inode_128", 64 * kMiB, 4096, "ext4", "", 128, 0},
    {"csum_seed_inline_large_dir", 64 * kMiB, 4096, "ext4",
     "metadata_csum_seed,inline_data,large_dir", 256, 0},
    {"fragmented_journal_leaf", 600 * kMiB, 1024, "ext4", "", 256, 200},
    {"ext2", 64 * kMiB, 4096, "ext2", "", 256, 0},
    {"ext3", 64 * kMiB, 4096, "ext3", "", 256, 0},
    {"ext3_triple_indirect_journal", 600 * kMiB, 1024, "ext3", "", 256, 200},
};

class MkfsImageTest : public ImageDir,
                      public ::testing::WithParamInterface<Variant> {};

TEST_P(MkfsImageTest, CleanDescribedAndMountable) {
  const Variant& v = GetParam();
  MkfsOptions o;
  o.size_bytes = v.size;
  o.block_size = v.block_size;
  o.inode_size = v.inode_size;
  o.features = *FeaturesForType(v.type);
  ASSERT_TRUE(ApplyFeatureList(v.features, o.features).ok());
  o.journal_blocks =
      static_cast<uint32_t>(uint64_t{v.journal_mib} * kMiB / v.block_size);
  o.assume_zeroed = true;
  o.label = "e4mkfs";
  auto plan = PlanFilesystem(o, v.size);
  ASSERT_TRUE(plan.ok()) << plan.status();
  NewImage(v.size);
  ASSERT_TRUE(Make(o).ok());
  ExpectFsckClean();

  // dumpe2fs reads back what was planned.
  auto h = Header();
  EXPECT_EQ(h["Filesystem volume name"], "e4mkfs");
  std::set<std::string> want, got;
  for (auto name : absl::StrSplit(FeatureSetNames(plan->features), ' ',
                                  absl::SkipEmpty())) {
    want.emplace(name);
  }
  for (auto name :
       absl::StrSplit(h["Filesystem features"], ' ', absl::SkipEmpty())) {
    got.emplace(name);
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(h["Block size"], absl::StrCat(v.block_size));
  EXPECT_EQ(h["Block count"], absl::StrCat(plan->blocks_count));
  EXPECT_EQ(h["Inode count"], absl::StrCat(plan->inodes_count()));
  EXPECT_EQ(h["Free blocks"], absl::StrCat(plan->free_blocks));
  EXPECT_EQ(h["Free inodes"], absl::StrCat(plan->inodes_count() - 11));
  EXPECT_EQ(h["Inode size"], absl::StrCat(v.inode_size));
  EXPECT_EQ(h["Filesystem state"], "clean");
  if (plan->journal_blocks != 0) {
    EXPECT_EQ(h["Total journal blocks"], absl::StrCat(plan->journal_blocks));
    EXPECT_EQ(h["Journal sequence"], "0x00000001");
  } else {
    EXPECT_EQ(h.count("Total journal blocks"), 0u);
  }

  auto ls = RunCommand(absl::StrCat(kDebugfs, " -R 'ls -l /' ", image_));
  EXPECT_NE(ls.output.find("40755 (2)"), std::string::npos) << ls.output;
  EXPECT_NE(ls.output.find("40700 (2)"), std::string::npos) << ls.output;
  EXPECT_NE(ls.output.find("lost+found"), std::string::npos) << ls.output;

  // The engine mounts it read-only...
  {
    auto fs = Mount(/*read_only=*/true);
    ASSERT_TRUE(fs.ok()) << fs.status();
    auto root = (*fs)->GetAttr(kRootInode);
    ASSERT_TRUE(root.ok()) << root.status();
    EXPECT_EQ(root->mode, S_IFDIR | 0755u);
    EXPECT_EQ(root->nlink, 3u);
    auto lost = (*fs)->Lookup(kRootInode, "lost+found");
    ASSERT_TRUE(lost.ok()) << lost.status();
    EXPECT_EQ(*lost, 11u);
    auto stats = (*fs)->StatFs();
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->free_blocks, plan->free_blocks);
    EXPECT_EQ(stats->free_inodes, plan->inodes_count() - 11);
  }
  // ... and read-write: a file and a directory, then clean.
  {
    auto fs = Mount(/*read_only=*/false);
    ASSERT_TRUE(fs.ok()) << fs.status();
    Credentials root;
    auto dir = (*fs)->MakeDirectory(kRootInode, "dir", 0755, root);
    ASSERT_TRUE(dir.ok()) << dir.status();
    auto file = (*fs)->Create(dir->ino, "file", 0644, root);
    ASSERT_TRUE(file.ok()) << file.status();
    std::vector<uint8_t> data(100000, 'x');
    auto written = (*fs)->Write(file->ino, 0, data, root);
    ASSERT_TRUE(written.ok()) << written.status();
    ASSERT_TRUE((*fs)->SyncAll().ok());
  }
  ExpectFsckClean();
}

INSTANTIATE_TEST_SUITE_P(Variants, MkfsImageTest,
                         ::testing::ValuesIn(kVariants),
                         [](const ::testing::TestParamInfo<Variant>& info) {
                           return std::string(info.param.name);
                         });

TEST_F(ImageDir, OverwritesOldContents) {
  // A device that does not read zeros: every table and the journal must
  // be written over.
  NewImage(32 * kMiB, /*dirty=*/true);
  MkfsOptions o = Options(0);
  o.block_size = 1024;
  ASSERT_TRUE(Make(o).ok());
  ExpectFsckClean();
  // And over an older filesystem of other geometry.
  o = Options(0, 4096, "^metadata_csum,^64bit");
  ASSERT_TRUE(Make(o).ok());
  ExpectFsckClean();
  EXPECT_EQ(Header()["Block size"], "4096");
}

TEST_F(ImageDir, ReproducibleWithFixedTimeAndIds) {
  MkfsOptions o = Options(64 * kMiB);
  o.time = 1700000000;
  o.uuid = *ParseUuid("01234567-89ab-cdef-0123-456789abcdef");
  o.hash_seed = *ParseUuid("fedcba98-7654-3210-fedc-ba9876543210");
  NewImage(64 * kMiB);
  ASSERT_TRUE(Make(o).ok());
  const std::string first = testing::ReadFileBytes(image_);
  NewImage(64 * kMiB);
  ASSERT_TRUE(Make(o).ok());
  EXPECT_TRUE(first == testing::ReadFileBytes(image_));
  auto h = Header();
  EXPECT_EQ(h["Filesystem UUID"], "01234567-89ab-cdef-0123-456789abcdef");
  EXPECT_EQ(h["Directory Hash Seed"], "fedcba98-7654-3210-fedc-ba9876543210");
}

TEST(MkfsMemoryTest, EngineMountsWithoutE2fsprogs) {
  auto device = io::MemoryDevice(std::vector<uint8_t>(8 * kMiB, 0xEE));
  ASSERT_TRUE(MakeFilesystem(*device, Options(0, 1024)).ok());
  MountOptions options;
  auto fs = Filesystem::Open(BorrowDevice(*device), options);
  ASSERT_TRUE(fs.ok()) << fs.status();
  std::vector<std::string> names;
  ASSERT_TRUE((*fs)
                  ->ReadDir(kRootInode, 0,
                            [&](const DirEntry& e) {
                              names.push_back(e.name);
                              return true;
                            })
                  .ok());
  EXPECT_EQ(names, (std::vector<std::string>{".", "..", "lost+found"}));
}

TEST(MkfsMemoryTest, ReadOnlyDeviceIsRefused) {
  auto device = io::MemoryDevice(std::vector<uint8_t>(8 * kMiB, 0), true);
  EXPECT_EQ(ErrnoOf(MakeFilesystem(*device, Options(0))), EROFS);
}

// ---- -d: a host tree copied in and read back -------------------------------

class PopulateTest : public ImageDir {
 protected:
  void SetUp() override {
    ImageDir::SetUp();
    if (IsSkipped()) return;
    src_ = dir_ + "/src";
    BuildTree();
  }

  void Write(const std::string& rel, const std::string& data,
             uint64_t offset = 0) {
    int fd = open((src_ + "/" + rel).c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0) << rel;
    ASSERT_EQ(pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset)),
              static_cast<ssize_t>(data.size()));
    close(fd);
  }

  void BuildTree() {
    ASSERT_EQ(mkdir(src_.c_str(), 0755), 0);
    for (const char* d : {"a", "a/b", "a/b/c", "empty", "links", "modes"}) {
      ASSERT_EQ(mkdir((src_ + "/" + d).c_str(), 0755), 0);
    }
    Write("a/hello", "hello, world\n");
    Write("empty_file", "");
    std::string pattern;
    for (int i = 0; i < 300000; ++i) pattern += static_cast<char>(i * 7 + 1);
    Write("a/b/pattern", pattern);
    // Holes: data at 0, at 5 MiB, a trailing hole to 9 MiB; a block of
    // written zeros that must come back as a hole.
    Write("sparse", "start");
    Write("sparse", std::string(8192, '\0'), 4096);
    Write("sparse", "middle", 5 * kMiB);
    ASSERT_EQ(truncate((src_ + "/sparse").c_str(), 9 * kMiB), 0);
    // Hard links, across directories.
    Write("links/one", "linked\n");
    ASSERT_EQ(
        link((src_ + "/links/one").c_str(), (src_ + "/links/two").c_str()), 0);
    ASSERT_EQ(link((src_ + "/links/one").c_str(), (src_ + "/a/three").c_str()),
              0);
    // Symlinks: fast, slow (past 60 bytes), dangling.
    ASSERT_EQ(symlink("a/hello", (src_ + "/fast_link").c_str()), 0);
    ASSERT_EQ(
        symlink(std::string(200, 'x').c_str(), (src_ + "/slow_link").c_str()),
        0);
    ASSERT_EQ(symlink("/nowhere/at/all", (src_ + "/dangling").c_str()), 0);
    ASSERT_EQ(mkfifo((src_ + "/fifo").c_str(), 0640), 0);
    // Device nodes need root outside a sandbox that forbids them (Bazel's
    // does): made where possible.
    if (geteuid() == 0 &&
        mknod((src_ + "/null").c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0) {
      ASSERT_EQ(
          mknod((src_ + "/loop").c_str(), S_IFBLK | 0660, makedev(7, 300)), 0);
    }
    if (geteuid() == 0) {
      ASSERT_EQ(chown((src_ + "/a/hello").c_str(), 1234, 5678), 0);
      ASSERT_EQ(lchown((src_ + "/fast_link").c_str(), 100000, 200000), 0);
    }
    // Modes, set after writing (and after chown).
    Write("modes/suid", "#!/bin/sh\n");
    ASSERT_EQ(chmod((src_ + "/modes/suid").c_str(), 04755), 0);
    Write("modes/none", "");  // empty: copied even when not readable
    ASSERT_EQ(chmod((src_ + "/modes/none").c_str(), 0), 0);
    ASSERT_EQ(chmod((src_ + "/modes").c_str(), 01777), 0);
    // Extended attributes, where the host filesystem keeps them.
    const std::string xf = src_ + "/a/hello";
    xattrs_ = setxattr(xf.c_str(), "user.small", "hi", 2, 0) == 0;
    if (xattrs_) {
      std::string large(3000, 'L');
      ASSERT_EQ(
          setxattr(xf.c_str(), "user.large", large.data(), large.size(), 0), 0);
      ASSERT_EQ(setxattr(xf.c_str(), "user.empty", "", 0, 0), 0);
      ASSERT_EQ(setxattr((src_ + "/a").c_str(), "user.dir", "d", 1, 0), 0);
    }
    // Times with nanoseconds, last (directories after their contents).
    const struct timespec times[2] = {{1000000000, 123456789},
                                      {1234567890, 987654321}};
    for (const char* p : {"a/hello", "sparse", "a/b/pattern", "a/b/c", "a/b",
                          "fast_link", "a", "."}) {
      ASSERT_EQ(utimensat(AT_FDCWD, (src_ + "/" + p).c_str(), times,
                          AT_SYMLINK_NOFOLLOW),
                0)
          << p;
    }
  }

  // Compares host directory `path` with directory `ino` of `fs`, recursively.
  void Compare(Filesystem& fs, const std::string& path, InodeNumber ino,
               bool top) {
    SCOPED_TRACE(path);
    std::set<std::string> host, copy;
    {
      std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(path.c_str()), closedir);
      ASSERT_NE(d, nullptr);
      while (struct dirent* e = readdir(d.get())) {
        std::string name = e->d_name;
        if (name != "." && name != "..") host.insert(name);
      }
    }
    ASSERT_TRUE(fs.ReadDir(ino, 0, [&](const DirEntry& e) {
                    if (e.name != "." && e.name != ".." &&
                        !(top && e.name == "lost+found")) {
                      copy.insert(e.name);
                    }
                    return true;
                  }).ok());
    EXPECT_EQ(host, copy);
    for (const std::string& name : host) {
      const std::string p = path + "/" + name;
      SCOPED_TRACE(p);
      struct stat st;
      ASSERT_EQ(lstat(p.c_str(), &st), 0);
      auto child = fs.Lookup(ino, name);
      ASSERT_TRUE(child.ok()) << child.status();
      auto attr = fs.GetAttr(*child);
      ASSERT_TRUE(attr.ok()) << attr.status();
      EXPECT_EQ(attr->mode, st.st_mode);
      EXPECT_EQ(attr->uid, st.st_uid);
      EXPECT_EQ(attr->gid, st.st_gid);
      EXPECT_EQ(attr->mtime.sec, st.st_mtim.tv_sec);
      EXPECT_EQ(attr->mtime.nsec, static_cast<uint32_t>(st.st_mtim.tv_nsec));
      EXPECT_EQ(attr->ctime.sec, st.st_ctim.tv_sec);
      if (!S_ISDIR(st.st_mode)) {
        EXPECT_EQ(attr->nlink, st.st_nlink);
        EXPECT_EQ(attr->size, static_cast<uint64_t>(st.st_size));
        // One copy per host inode, and back.
        auto [it, fresh] = inodes_.emplace(st.st_ino, *child);
        EXPECT_EQ(it->second, *child);
        if (fresh) {
          EXPECT_TRUE(copies_.insert(*child).second);
        }
      }
      if (S_ISREG(st.st_mode)) {
        std::string want = testing::ReadFileBytes(p);
        std::string got(want.size(), '\0');
        auto n =
            fs.Read(*child, 0,
                    std::span<uint8_t>(reinterpret_cast<uint8_t*>(got.data()),
                                       got.size()));
        ASSERT_TRUE(n.ok()) << n.status();
        EXPECT_EQ(*n, want.size());
        EXPECT_TRUE(got == want);
        // No block is allocated for what reads as zeros (beyond the extent
        // or indirect blocks that map the rest: up to three).
        uint64_t nonzero_blocks = 0;
        for (size_t off = 0; off < want.size(); off += 4096) {
          std::string_view blk(want.data() + off,
                               std::min<size_t>(4096, want.size() - off));
          if (blk.find_first_not_of('\0') != std::string_view::npos) {
            ++nonzero_blocks;
          }
        }
        EXPECT_LE(attr->blocks, (nonzero_blocks + 3) * 8);
      } else if (S_ISLNK(st.st_mode)) {
        std::string target(4096, '\0');
        target.resize(static_cast<size_t>(
            readlink(p.c_str(), target.data(), target.size())));
        auto got = fs.ReadLink(*child);
        ASSERT_TRUE(got.ok());
        EXPECT_EQ(*got, target);
      } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
        EXPECT_EQ(attr->rdev_major, major(st.st_rdev));
        EXPECT_EQ(attr->rdev_minor, minor(st.st_rdev));
      }
      if (xattrs_ && !S_ISLNK(st.st_mode)) {
        char names[4096];
        ssize_t len = llistxattr(p.c_str(), names, sizeof(names));
        ASSERT_GE(len, 0);
        std::set<std::string> want_names;
        for (ssize_t i = 0; i < len; i += strlen(names + i) + 1) {
          if (std::string_view(names + i).starts_with("user.")) {
            want_names.insert(names + i);
          }
        }
        auto listed = fs.ListXattrs(*child);
        ASSERT_TRUE(listed.ok());
        std::set<std::string> got_names;
        for (const std::string& n : *listed) {
          if (n.starts_with("user.")) got_names.insert(n);
        }
        EXPECT_EQ(got_names, want_names);
        for (const std::string& n : want_names) {
          std::string value(65536, '\0');
          ssize_t vlen =
              lgetxattr(p.c_str(), n.c_str(), value.data(), value.size());
          ASSERT_GE(vlen, 0);
          value.resize(static_cast<size_t>(vlen));
          auto got = fs.GetXattr(*child, n);
          ASSERT_TRUE(got.ok()) << n;
          EXPECT_EQ(*got, value) << n;
        }
      }
      if (S_ISDIR(st.st_mode)) Compare(fs, p, *child, false);
    }
  }

  std::string src_;
  bool xattrs_ = false;
  std::map<ino_t, InodeNumber> inodes_;
  std::set<InodeNumber> copies_;
};

TEST_F(PopulateTest, TreeReadsBackThroughTheEngine) {
  // ext4, ext4 without checksums and journal, ext3 (indirect maps).
  for (const char* features : {"", "^metadata_csum,^64bit,^has_journal",
                               "none,has_journal,ext_attr,"
                               "dir_index,filetype,sparse_super,large_file"}) {
    SCOPED_TRACE(features);
    inodes_.clear();
    copies_.clear();
    MkfsOptions o = Options(64 * kMiB, 4096, features);
    o.assume_zeroed = true;
    NewImage(64 * kMiB);
    {
      auto device = io::OpenFileDevice(image_, /*read_only=*/false);
      ASSERT_TRUE(device.ok());
      absl::Status made = MakeFilesystemFromDirectory(**device, o, src_);
      ASSERT_TRUE(made.ok()) << made;
    }
    ExpectFsckClean();
    auto fs = Mount(/*read_only=*/true);
    ASSERT_TRUE(fs.ok()) << fs.status();
    Compare(**fs, src_, kRootInode, true);
    // The root takes the source directory's attributes.
    struct stat st;
    ASSERT_EQ(lstat(src_.c_str(), &st), 0);
    auto root = (*fs)->GetAttr(kRootInode);
    ASSERT_TRUE(root.ok());
    EXPECT_EQ(root->mode, st.st_mode);
    EXPECT_EQ(root->mtime.sec, st.st_mtim.tv_sec);
    auto ls = RunCommand(absl::StrCat(kDebugfs, " -R 'ls -l /' ", image_));
    EXPECT_NE(ls.output.find("lost+found"), std::string::npos) << ls.output;
    EXPECT_NE(ls.output.find("sparse"), std::string::npos) << ls.output;
  }
}

TEST_F(PopulateTest, TopLevelLostFoundIsFilledNotReplaced) {
  ASSERT_EQ(mkdir((src_ + "/lost+found").c_str(), 0700), 0);
  Write("lost+found/orphan", "kept\n");
  NewImage(16 * kMiB);
  {
    auto device = io::OpenFileDevice(image_, false);
    ASSERT_TRUE(device.ok());
    ASSERT_TRUE(
        MakeFilesystemFromDirectory(**device, Options(16 * kMiB), src_).ok());
  }
  ExpectFsckClean();
  auto fs = Mount(true);
  ASSERT_TRUE(fs.ok());
  auto lost = (*fs)->Lookup(kRootInode, "lost+found");
  ASSERT_TRUE(lost.ok());
  EXPECT_EQ(*lost, 11u);
  EXPECT_TRUE((*fs)->Lookup(*lost, "orphan").ok());
}

TEST_F(PopulateTest, Errors) {
  NewImage(16 * kMiB);
  auto device = io::OpenFileDevice(image_, false);
  ASSERT_TRUE(device.ok());
  EXPECT_EQ(ErrnoOf(MakeFilesystemFromDirectory(**device, Options(16 * kMiB),
                                                dir_ + "/missing")),
            ENOENT);
  EXPECT_EQ(ErrnoOf(MakeFilesystemFromDirectory(**device, Options(16 * kMiB),
                                                src_ + "/a/hello")),
            ENOTDIR);
  // Too much data for the filesystem: ENOSPC from the engine.
  Write("big", std::string(20 * kMiB, 'b'));
  EXPECT_EQ(
      ErrnoOf(MakeFilesystemFromDirectory(**device, Options(16 * kMiB), src_)),
      ENOSPC);
}

}  // namespace
}  // namespace ext4::mkfs
