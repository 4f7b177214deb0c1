// The bitmap allocator on images made by mke2fs in every layout it writes:
// counters exact after every operation, lazily initialised groups built the
// way the kernel builds them, and e2fsck / dumpe2fs / debugfs as the oracles.
#include "ext4/allocator.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "ext4/format/group_descriptor.h"
#include "ext4/format/superblock.h"
#include "ext4/io/block_cache.h"
#include "ext4/io/block_device.h"
#include "ext4/testing/image_tools.h"
#include "ext4/transaction.h"
#include "gtest/gtest.h"

namespace ext4 {
namespace {

using ::ext4::testing::CommandResult;
using ::ext4::testing::HaveE2fsprogs;
using ::ext4::testing::kDebugfs;
using ::ext4::testing::kDumpe2fs;
using ::ext4::testing::kE2fsck;
using ::ext4::testing::kMke2fs;
using ::ext4::testing::MakeTempDir;
using ::ext4::testing::RunCommand;

struct Config {
  const char* name;
  const char* options;
  const char* size;
};

const Config kConfigs[] = {
    {"ext4", "-t ext4 -b 4096 -g 2048", "128M"},
    {"ext4_no64bit", "-t ext4 -b 4096 -g 2048 -O ^64bit", "128M"},
    {"ext4_nocsum", "-t ext4 -b 4096 -g 2048 -O ^metadata_csum,^64bit", "128M"},
    {"ext4_gdt_csum",
     "-t ext4 -b 4096 -g 2048 -O ^metadata_csum,^64bit,uninit_bg", "128M"},
    {"ext4_noflex", "-t ext4 -b 4096 -g 2048 -O ^flex_bg", "128M"},
    {"ext4_1k", "-t ext4 -b 1024", "64M"},
    {"ext2", "-t ext2 -b 4096 -g 2048", "128M"},
    {"meta_bg", "-t ext4 -b 1024 -g 1024 -O meta_bg,^resize_inode", "64M"},
    {"lazy", "-t ext4 -b 4096 -g 1024 -G 4 -E lazy_itable_init=1", "128M"},
    {"sparse_super2", "-t ext4 -b 4096 -g 2048 -O sparse_super2", "128M"},
};

// An image made by mke2fs and opened the way the engine opens it.
class Image {
 public:
  bool Make(const std::string& options, const std::string& size) {
    dir_ = MakeTempDir("alloc_test.");
    if (dir_.empty()) return false;
    path_ = dir_ + "/fs.img";
    const CommandResult made = RunCommand(
        absl::StrCat(kMke2fs, " -q -F ", options, " ", path_, " ", size));
    if (made.exit_code != 0) {
      ADD_FAILURE() << "mke2fs " << options << ": " << made.output;
    }
    return made.exit_code == 0;
  }

  void Open() {
    auto device = io::OpenFileDevice(path_, /*read_only=*/false);
    ASSERT_TRUE(device.ok()) << device.status();
    device_ = std::move(*device);
    std::vector<uint8_t> raw(format::kSuperblockSize);
    ASSERT_TRUE(device_->ReadAt(format::kSuperblockOffset, raw).ok());
    auto sb = format::ParseSuperblock(raw);
    ASSERT_TRUE(sb.ok()) << sb.status();
    sb_ = *sb;
    cache_ = std::make_unique<io::BlockCache>(*device_, sb_.block_size(),
                                              sb_.blocks_count, 1024);
    auto allocator = BitmapAllocator::Create(sb_, *cache_);
    ASSERT_TRUE(allocator.ok()) << allocator.status();
    alloc_ = std::move(*allocator);
  }

  void Close() {
    alloc_.reset();
    cache_.reset();
    device_.reset();
  }

  // e2fsck -fn: exit status and output.
  int Fsck(std::string* out) const {
    CommandResult result = RunCommand(absl::StrCat(kE2fsck, " -fn ", path_));
    if (out != nullptr) *out = std::move(result.output);
    return result.exit_code;
  }
  std::string Debugfs(const std::string& request) const {
    return RunCommand(absl::StrCat(kDebugfs, " -R '", request, "' ", path_))
        .output;
  }
  std::string Dumpe2fs(const std::string& flags = "") const {
    return RunCommand(absl::StrCat(kDumpe2fs, " ", flags, " ", path_)).output;
  }

  const std::string& path() const { return path_; }
  format::Superblock& sb() { return sb_; }
  io::BlockCache& cache() { return *cache_; }
  BitmapAllocator& alloc() { return *alloc_; }

  ~Image() {
    Close();
    if (!dir_.empty()) RunCommand("rm -rf " + dir_);
  }

 private:
  std::string dir_;
  std::string path_;
  std::unique_ptr<io::BlockDevice> device_;
  format::Superblock sb_;
  std::unique_ptr<io::BlockCache> cache_;
  std::unique_ptr<BitmapAllocator> alloc_;
};

// Sums of the group descriptors as the transaction sees them.
struct Totals {
  uint64_t free_blocks = 0;
  uint64_t free_inodes = 0;
  uint64_t dirs = 0;
};
Totals SumGroups(BitmapAllocator& alloc, Transaction& tx, uint32_t groups) {
  Totals t;
  for (uint32_t g = 0; g < groups; ++g) {
    auto gd = alloc.GetGroup(tx, g);
    EXPECT_TRUE(gd.ok()) << gd.status();
    if (!gd.ok()) continue;
    t.free_blocks += gd->free_blocks_count;
    t.free_inodes += gd->free_inodes_count;
    t.dirs += gd->used_dirs_count;
  }
  return t;
}

struct Inode {
  uint32_t ino;
  bool directory;
};

// What one round of allocation handed out.
struct Allocation {
  std::vector<BlockRun> runs;
  std::vector<Inode> inodes;
  uint64_t blocks() const {
    uint64_t n = 0;
    for (const BlockRun& r : runs) n += r.count;
    return n;
  }
};

// Allocates runs at goals spread over every group (uninitialised ones
// included) and inodes under several parents; checks each result and the
// counters after each call.
void AllocateSpread(Image& image, Transaction& tx, std::mt19937& rng,
                    Allocation& out) {
  BitmapAllocator& alloc = image.alloc();
  const format::Superblock& sb = image.sb();
  const uint32_t groups = sb.group_count();
  uint64_t free_blocks = alloc.free_blocks();
  uint64_t free_inodes = alloc.free_inodes();
  std::set<uint64_t> taken;
  for (const BlockRun& r : out.runs) {
    for (uint64_t b = r.first; b < r.first + r.count; ++b) taken.insert(b);
  }
  const uint64_t sizes[] = {1, 3, 17, 64, 200, 900};
  for (uint32_t g = 0; g < groups; ++g) {
    for (int k = 0; k < 2; ++k) {
      uint64_t goal =
          sb.group_first_block(g) +
          rng() % std::min<uint64_t>(sb.blocks_per_group,
                                     sb.blocks_count - sb.group_first_block(g));
      uint64_t count = sizes[rng() % std::size(sizes)];
      auto run = alloc.AllocateBlocks(tx, goal, count, /*use_reserve=*/false);
      ASSERT_TRUE(run.ok()) << run.status();
      ASSERT_GE(run->count, 1u);
      ASSERT_LE(run->count, count);
      ASSERT_GE(run->first, sb.first_data_block);
      ASSERT_LE(run->first + run->count, sb.blocks_count);
      // Inside one group.
      ASSERT_EQ((run->first - sb.first_data_block) / sb.blocks_per_group,
                (run->first + run->count - 1 - sb.first_data_block) /
                    sb.blocks_per_group);
      for (uint64_t b = run->first; b < run->first + run->count; ++b) {
        ASSERT_TRUE(taken.insert(b).second) << "block " << b << " twice";
        ASSERT_TRUE(alloc.IsBlockInUse(tx, b));
      }
      free_blocks -= run->count;
      ASSERT_EQ(alloc.free_blocks(), free_blocks);
      out.runs.push_back(*run);
    }
  }
  std::set<uint32_t> inos;
  for (const Inode& i : out.inodes) inos.insert(i.ino);
  std::vector<uint32_t> dirs = {2};
  for (int i = 0; i < 120; ++i) {
    bool directory = i % 3 != 2;
    uint32_t parent = dirs[rng() % dirs.size()];
    auto ino = alloc.AllocateInode(tx, parent, directory);
    ASSERT_TRUE(ino.ok()) << ino.status();
    ASSERT_GE(*ino, sb.first_inode());
    ASSERT_LE(*ino, sb.inodes_count);
    ASSERT_TRUE(inos.insert(*ino).second) << "inode " << *ino << " twice";
    if (directory) dirs.push_back(*ino);
    out.inodes.push_back({*ino, directory});
    --free_inodes;
    ASSERT_EQ(alloc.free_inodes(), free_inodes);
  }
  Totals t = SumGroups(alloc, tx, groups);
  EXPECT_EQ(t.free_blocks, alloc.free_blocks());
  EXPECT_EQ(t.free_inodes, alloc.free_inodes());
}

// Frees everything in `a` in a shuffled order, some runs in two pieces.
void FreeAll(Image& image, Transaction& tx, std::mt19937& rng, Allocation& a) {
  BitmapAllocator& alloc = image.alloc();
  uint64_t free_blocks = alloc.free_blocks();
  uint64_t free_inodes = alloc.free_inodes();
  std::shuffle(a.runs.begin(), a.runs.end(), rng);
  for (const BlockRun& r : a.runs) {
    if (r.count > 1 && rng() % 2 == 0) {
      uint64_t half = r.count / 2;
      ASSERT_TRUE(alloc.FreeBlocks(tx, r.first + half, r.count - half).ok());
      ASSERT_TRUE(alloc.FreeBlocks(tx, r.first, half).ok());
    } else {
      absl::Status s = alloc.FreeBlocks(tx, r.first, r.count);
      ASSERT_TRUE(s.ok()) << s;
    }
    free_blocks += r.count;
    ASSERT_EQ(alloc.free_blocks(), free_blocks);
  }
  std::shuffle(a.inodes.begin(), a.inodes.end(), rng);
  for (const Inode& i : a.inodes) {
    absl::Status s = alloc.FreeInode(tx, i.ino, i.directory);
    ASSERT_TRUE(s.ok()) << s;
    ++free_inodes;
    ASSERT_EQ(alloc.free_inodes(), free_inodes);
  }
  a = Allocation();
}

void CommitWithSuperblock(Image& image, Transaction& tx) {
  ASSERT_TRUE(image.alloc().WriteSuperblock(tx).ok());
  absl::Status s = tx.Commit();
  ASSERT_TRUE(s.ok()) << s;
}

void ExpectFsckClean(Image& image) {
  std::string out;
  int rc = image.Fsck(&out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("Pass 5"), std::string::npos) << out;
}

class AllocatorImageTest : public ::testing::TestWithParam<Config> {
 protected:
  void SetUp() override {
    if (!HaveE2fsprogs()) GTEST_SKIP() << "e2fsprogs not installed";
  }
};

// Allocate and free in several rounds and transactions; counters exact all
// along; after everything is freed the image is e2fsck-clean.
TEST_P(AllocatorImageTest, AllocateFreeRoundTripIsClean) {
  Image image;
  ASSERT_TRUE(image.Make(GetParam().options, GetParam().size));
  ASSERT_NO_FATAL_FAILURE(image.Open());
  BitmapAllocator& alloc = image.alloc();
  const uint64_t blocks0 = image.sb().free_blocks_count;
  const uint64_t inodes0 = image.sb().free_inodes_count;
  std::mt19937 rng(12345);

  {
    // The bitmaps as the allocator sees them (built ones for BLOCK_UNINIT
    // groups) agree with the free counts mke2fs wrote.
    Transaction tx(image.cache());
    const format::Superblock& sb = image.sb();
    for (uint32_t g = 0; g < sb.group_count(); ++g) {
      auto gd = alloc.GetGroup(tx, g);
      ASSERT_TRUE(gd.ok()) << gd.status();
      const uint64_t first = sb.group_first_block(g);
      const uint64_t end =
          std::min<uint64_t>(first + sb.blocks_per_group, sb.blocks_count);
      uint64_t free = 0;
      for (uint64_t b = first; b < end; ++b) free += !alloc.IsBlockInUse(tx, b);
      EXPECT_EQ(free, gd->free_blocks_count)
          << "group " << g << " flags " << gd->flags;
    }
  }

  Allocation kept;
  {
    Transaction tx(image.cache());
    ASSERT_NO_FATAL_FAILURE(AllocateSpread(image, tx, rng, kept));
    CommitWithSuperblock(image, tx);
  }
  {
    // A second round on top, then half of everything freed in the same
    // transaction.
    Transaction tx(image.cache());
    Allocation more;
    ASSERT_NO_FATAL_FAILURE(AllocateSpread(image, tx, rng, more));
    ASSERT_NO_FATAL_FAILURE(FreeAll(image, tx, rng, more));
    EXPECT_EQ(alloc.free_blocks(), blocks0 - kept.blocks());
    EXPECT_EQ(alloc.free_inodes(), inodes0 - kept.inodes.size());
    CommitWithSuperblock(image, tx);
  }
  {
    Transaction tx(image.cache());
    ASSERT_NO_FATAL_FAILURE(FreeAll(image, tx, rng, kept));
    EXPECT_EQ(alloc.free_blocks(), blocks0);
    EXPECT_EQ(alloc.free_inodes(), inodes0);
    Totals t = SumGroups(alloc, tx, image.sb().group_count());
    EXPECT_EQ(t.free_blocks, blocks0);
    EXPECT_EQ(t.free_inodes, inodes0);
    CommitWithSuperblock(image, tx);
  }
  image.Close();
  ExpectFsckClean(image);

  // A fresh allocator on the committed image agrees.
  ASSERT_NO_FATAL_FAILURE(image.Open());
  Transaction tx(image.cache());
  ASSERT_TRUE(image.alloc().Load(tx).ok());
  EXPECT_EQ(image.alloc().free_blocks(), blocks0);
  EXPECT_EQ(image.alloc().free_inodes(), inodes0);
}

struct DumpedGroup {
  uint64_t free_blocks = 0;
  uint64_t free_inodes = 0;
  uint64_t dirs = 0;
  int64_t unused = -1;
  std::string flags;
};

std::map<uint32_t, DumpedGroup> ParseDumpe2fs(const std::string& text) {
  std::map<uint32_t, DumpedGroup> groups;
  std::istringstream in(text);
  std::string line;
  int64_t current = -1;
  while (std::getline(in, line)) {
    unsigned g;
    if (std::sscanf(line.c_str(), "Group %u:", &g) == 1) {
      current = g;
      DumpedGroup& d = groups[g];
      size_t open = line.find('[');
      if (open != std::string::npos) {
        d.flags = line.substr(open + 1, line.find(']') - open - 1);
      }
      continue;
    }
    if (current < 0) continue;
    unsigned long long fb, fi, dirs, unused;
    int got = std::sscanf(line.c_str(),
                          " %llu free blocks, %llu free inodes, %llu "
                          "directories, %llu unused inodes",
                          &fb, &fi, &dirs, &unused);
    if (got >= 3) {
      DumpedGroup& d = groups[static_cast<uint32_t>(current)];
      d.free_blocks = fb;
      d.free_inodes = fi;
      d.dirs = dirs;
      if (got == 4) d.unused = static_cast<int64_t>(unused);
    }
  }
  return groups;
}

std::string FlagNames(uint16_t flags) {
  std::vector<std::string> names;
  if (flags & format::kBgInodeUninit) names.push_back("INODE_UNINIT");
  if (flags & format::kBgBlockUninit) names.push_back("BLOCK_UNINIT");
  if (flags & format::kBgInodeZeroed) names.push_back("ITABLE_ZEROED");
  std::string out;
  for (const std::string& n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

// The state with allocations in place, as e2fsprogs reads it.
TEST_P(AllocatorImageTest, IntermediateStateMatchesE2fsprogs) {
  Image image;
  ASSERT_TRUE(image.Make(GetParam().options, GetParam().size));
  ASSERT_NO_FATAL_FAILURE(image.Open());
  BitmapAllocator& alloc = image.alloc();
  const uint32_t groups = image.sb().group_count();
  const bool csum = image.sb().has_group_desc_csum();
  std::mt19937 rng(777);

  std::vector<format::GroupDescriptor> before;
  Allocation a;
  std::vector<format::GroupDescriptor> after;
  {
    Transaction tx(image.cache());
    for (uint32_t g = 0; g < groups; ++g) {
      auto gd = alloc.GetGroup(tx, g);
      ASSERT_TRUE(gd.ok()) << gd.status();
      before.push_back(*gd);
    }
    ASSERT_NO_FATAL_FAILURE(AllocateSpread(image, tx, rng, a));
    for (uint32_t g = 0; g < groups; ++g) {
      auto gd = alloc.GetGroup(tx, g);
      ASSERT_TRUE(gd.ok()) << gd.status();
      after.push_back(*gd);
    }
    CommitWithSuperblock(image, tx);
  }
  const uint64_t free_blocks = alloc.free_blocks();
  const uint64_t free_inodes = alloc.free_inodes();
  image.Close();

  // Groups where something was allocated are initialised.
  std::set<uint32_t> block_groups, inode_groups;
  for (const BlockRun& r : a.runs) {
    block_groups.insert(static_cast<uint32_t>(
        (r.first - image.sb().first_data_block) / image.sb().blocks_per_group));
  }
  for (const Inode& i : a.inodes) {
    inode_groups.insert((i.ino - 1) / image.sb().inodes_per_group);
  }
  bool saw_block_uninit = false, saw_inode_uninit = false;
  for (uint32_t g = 0; g < groups; ++g) {
    if (!csum) break;
    if (before[g].flags & format::kBgBlockUninit) {
      if (block_groups.count(g) || inode_groups.count(g)) {
        saw_block_uninit = true;
        EXPECT_FALSE(after[g].flags & format::kBgBlockUninit) << "group " << g;
      }
    }
    if ((before[g].flags & format::kBgInodeUninit) && inode_groups.count(g)) {
      saw_inode_uninit = true;
      EXPECT_FALSE(after[g].flags & format::kBgInodeUninit) << "group " << g;
    }
    EXPECT_EQ(after[g].flags & format::kBgInodeZeroed,
              before[g].flags & format::kBgInodeZeroed);
  }
  if (std::string(GetParam().name) == "lazy") {
    EXPECT_TRUE(saw_block_uninit);
    EXPECT_TRUE(saw_inode_uninit);
  }

  // dumpe2fs: per-group counts and flags, and the superblock's totals.
  std::string dump = image.Dumpe2fs();
  auto dumped = ParseDumpe2fs(dump);
  ASSERT_EQ(dumped.size(), groups) << dump;
  for (uint32_t g = 0; g < groups; ++g) {
    const DumpedGroup& d = dumped[g];
    EXPECT_EQ(d.free_blocks, after[g].free_blocks_count) << "group " << g;
    EXPECT_EQ(d.free_inodes, after[g].free_inodes_count) << "group " << g;
    EXPECT_EQ(d.dirs, after[g].used_dirs_count) << "group " << g;
    if (csum) {
      EXPECT_EQ(d.unused, after[g].itable_unused) << "group " << g;
      EXPECT_EQ(d.flags, FlagNames(after[g].flags)) << "group " << g;
    }
  }
  std::string header = image.Dumpe2fs("-h");
  EXPECT_NE(header.find(
                absl::StrCat("Free blocks:              ", free_blocks, "\n")),
            std::string::npos)
      << header;
  EXPECT_NE(header.find(
                absl::StrCat("Free inodes:              ", free_inodes, "\n")),
            std::string::npos)
      << header;
  // dumpe2fs reads the bitmaps: a bad bitmap checksum would show.
  EXPECT_EQ(dump.find("checksum"), std::string::npos) << dump;

  // debugfs: every block and inode handed out is marked in use.
  std::string requests;
  for (const BlockRun& r : a.runs) {
    std::string out =
        image.Debugfs(absl::StrCat("testb ", r.first, " ", r.count));
    size_t marked = 0;
    for (size_t p = out.find("marked in use"); p != std::string::npos;
         p = out.find("marked in use", p + 1)) {
      ++marked;
    }
    EXPECT_EQ(marked, r.count) << out;
    EXPECT_EQ(out.find("not in use"), std::string::npos) << out;
  }
  for (const Inode& i : a.inodes) {
    std::string out = image.Debugfs(absl::StrCat("testi <", i.ino, ">"));
    EXPECT_NE(out.find("is marked in use"), std::string::npos)
        << i.ino << ": " << out;
  }
  // e2fsck complains about the unreferenced blocks and inodes, but not about
  // checksums or the descriptors.
  std::string fsck;
  image.Fsck(&fsck);
  EXPECT_EQ(fsck.find("checksum"), std::string::npos) << fsck;
  EXPECT_EQ(fsck.find("descriptor"), std::string::npos) << fsck;
  EXPECT_EQ(fsck.find("Padding"), std::string::npos) << fsck;
}

INSTANTIATE_TEST_SUITE_P(Layouts, AllocatorImageTest,
                         ::testing::ValuesIn(kConfigs),
                         [](const ::testing::TestParamInfo<Config>& info) {
                           return std::string(info.param.name);
                         });

// Fill the filesystem: first up to the root reserve, then all of it; every
// free block handed out exactly once and nothing else; then free it all.
class AllocatorFillTest : public ::testing::TestWithParam<Config> {
 protected:
  void SetUp() override {
    if (!HaveE2fsprogs()) GTEST_SKIP() << "e2fsprogs not installed";
  }
};

TEST_P(AllocatorFillTest, FillsToEnospcAndFreesBack) {
  Image image;
  ASSERT_TRUE(image.Make(GetParam().options, GetParam().size));
  ASSERT_NO_FATAL_FAILURE(image.Open());
  BitmapAllocator& alloc = image.alloc();
  const format::Superblock& sb = image.sb();
  const uint64_t blocks0 = sb.free_blocks_count;
  const uint64_t inodes0 = sb.free_inodes_count;
  ASSERT_GT(sb.r_blocks_count, 0u);
  std::mt19937 rng(4242);

  Transaction tx(image.cache());
  std::vector<bool> initially_free(sb.blocks_count, false);
  uint64_t counted_free = 0;
  for (uint64_t b = 0; b < sb.blocks_count; ++b) {
    if (!alloc.IsBlockInUse(tx, b)) {
      initially_free[b] = true;
      ++counted_free;
    }
  }
  ASSERT_EQ(counted_free, blocks0);

  std::vector<bool> got(sb.blocks_count, false);
  std::vector<BlockRun> runs;
  auto fill = [&](bool use_reserve) {
    for (int guard = 0; guard < 1000000; ++guard) {
      uint64_t goal = rng() % sb.blocks_count;
      uint64_t count = 1 + rng() % 400;
      auto run = alloc.AllocateBlocks(tx, goal, count, use_reserve);
      if (!run.ok()) {
        ASSERT_EQ(ErrnoOf(run.status()), ENOSPC) << run.status();
        return;
      }
      for (uint64_t b = run->first; b < run->first + run->count; ++b) {
        ASSERT_TRUE(initially_free[b]) << "block " << b << " was in use";
        ASSERT_FALSE(got[b]) << "block " << b << " twice";
        got[b] = true;
      }
      runs.push_back(*run);
    }
    FAIL() << "no ENOSPC";
  };
  ASSERT_NO_FATAL_FAILURE(fill(false));
  EXPECT_EQ(alloc.free_blocks(), sb.r_blocks_count);
  ASSERT_NO_FATAL_FAILURE(fill(true));
  EXPECT_EQ(alloc.free_blocks(), 0u);
  EXPECT_EQ(std::count(got.begin(), got.end(), true),
            static_cast<int64_t>(blocks0));
  EXPECT_EQ(ErrnoOf(alloc.AllocateBlocks(tx, 0, 1, true).status()), ENOSPC);

  std::vector<Inode> inodes;
  for (uint64_t i = 0; i < inodes0; ++i) {
    bool directory = i % 4 == 0;
    uint32_t parent = inodes.empty() ? 2 : inodes[rng() % inodes.size()].ino;
    auto ino = alloc.AllocateInode(tx, parent, directory);
    ASSERT_TRUE(ino.ok()) << i << ": " << ino.status();
    inodes.push_back({*ino, directory});
  }
  EXPECT_EQ(alloc.free_inodes(), 0u);
  EXPECT_EQ(ErrnoOf(alloc.AllocateInode(tx, 2, false).status()), ENOSPC);
  EXPECT_EQ(ErrnoOf(alloc.AllocateInode(tx, 2, true).status()), ENOSPC);
  CommitWithSuperblock(image, tx);

  {
    // Full as e2fsprogs sees it.
    std::string header = image.Dumpe2fs("-h");
    EXPECT_NE(header.find("Free blocks:              0\n"), std::string::npos)
        << header;
  }

  std::shuffle(runs.begin(), runs.end(), rng);
  for (const BlockRun& r : runs) {
    absl::Status s = alloc.FreeBlocks(tx, r.first, r.count);
    ASSERT_TRUE(s.ok()) << s;
  }
  for (const Inode& i : inodes) {
    absl::Status s = alloc.FreeInode(tx, i.ino, i.directory);
    ASSERT_TRUE(s.ok()) << s;
  }
  EXPECT_EQ(alloc.free_blocks(), blocks0);
  EXPECT_EQ(alloc.free_inodes(), inodes0);
  CommitWithSuperblock(image, tx);
  image.Close();
  ExpectFsckClean(image);
}

const Config kFillConfigs[] = {
    {"ext4", "-t ext4 -b 4096 -g 1024", "16M"},
    {"ext4_1k_lazy", "-t ext4 -b 1024 -g 1024 -G 2 -E lazy_itable_init=1",
     "8M"},
    {"ext2", "-t ext2 -b 1024 -g 2048", "8M"},
    {"meta_bg", "-t ext4 -b 1024 -g 512 -O meta_bg,^resize_inode", "8M"},
    {"ext4_nocsum_noflex",
     "-t ext4 -b 4096 -g 1024 -O ^metadata_csum,^64bit,^flex_bg", "16M"},
};

INSTANTIATE_TEST_SUITE_P(Layouts, AllocatorFillTest,
                         ::testing::ValuesIn(kFillConfigs),
                         [](const ::testing::TestParamInfo<Config>& info) {
                           return std::string(info.param.name);
                         });

class AllocatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveE2fsprogs()) GTEST_SKIP() << "e2fsprogs not installed";
  }
};

TEST_F(AllocatorTest, RefusesBadFreesWithoutChange) {
  Image image;
  ASSERT_TRUE(image.Make("-t ext4 -b 4096 -g 2048", "128M"));
  ASSERT_NO_FATAL_FAILURE(image.Open());
  BitmapAllocator& alloc = image.alloc();
  const format::Superblock& sb = image.sb();
  Transaction tx(image.cache());
  auto gd0 = alloc.GetGroup(tx, 0);
  ASSERT_TRUE(gd0.ok());

  // Group 12 is free past its first blocks.
  const uint64_t at = sb.group_first_block(12) + 1000;
  auto run = alloc.AllocateBlocks(tx, at, 10, false);
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->first, at);
  ASSERT_EQ(run->count, 10u);
  auto ino = alloc.AllocateInode(tx, 2, false);
  ASSERT_TRUE(ino.ok());
  const uint64_t free_blocks = alloc.free_blocks();
  const uint64_t free_inodes = alloc.free_inodes();

  auto expect_corrupt = [&](const absl::Status& s,
                            int line = __builtin_LINE()) {
    EXPECT_EQ(ErrnoOf(s), EUCLEAN) << s << " (line " << line << ")";
    EXPECT_EQ(alloc.free_blocks(), free_blocks);
    EXPECT_EQ(alloc.free_inodes(), free_inodes);
  };
  // Already free, partly free (the allocated part stays allocated).
  expect_corrupt(alloc.FreeBlocks(tx, at + 10, 1));
  expect_corrupt(alloc.FreeBlocks(tx, at, 12));
  expect_corrupt(alloc.FreeBlocks(tx, at - 1, 2));
  for (uint64_t b = at; b < at + 10; ++b)
    EXPECT_TRUE(alloc.IsBlockInUse(tx, b));
  // Metadata: superblock, descriptors, reserved GDT, bitmaps, inode tables,
  // a backup superblock.
  expect_corrupt(alloc.FreeBlocks(tx, 0, 1));
  expect_corrupt(alloc.FreeBlocks(tx, 1, 1));
  expect_corrupt(alloc.FreeBlocks(tx, 2, 1));
  expect_corrupt(alloc.FreeBlocks(tx, gd0->block_bitmap, 1));
  expect_corrupt(alloc.FreeBlocks(tx, gd0->inode_bitmap, 1));
  expect_corrupt(alloc.FreeBlocks(tx, gd0->inode_table + 3, 1));
  expect_corrupt(alloc.FreeBlocks(tx, sb.blocks_per_group, 1));
  // Outside the filesystem.
  expect_corrupt(alloc.FreeBlocks(tx, sb.blocks_count, 1));
  expect_corrupt(alloc.FreeBlocks(tx, sb.blocks_count - 1, 2));
  expect_corrupt(alloc.FreeBlocks(tx, UINT64_MAX, 2));
  // Inodes: reserved, nonexistent, already free, twice.
  expect_corrupt(alloc.FreeInode(tx, 2, true));
  expect_corrupt(alloc.FreeInode(tx, 0, false));
  expect_corrupt(alloc.FreeInode(tx, sb.inodes_count + 1, false));
  expect_corrupt(alloc.FreeInode(tx, *ino + 1, false));
  expect_corrupt(alloc.FreeInode(tx, sb.inodes_count, false));  // uninit group
  EXPECT_EQ(ErrnoOf(alloc.AllocateBlocks(tx, 0, 0, false).status()), EINVAL);

  ASSERT_TRUE(alloc.FreeBlocks(tx, run->first, run->count).ok());
  ASSERT_TRUE(alloc.FreeInode(tx, *ino, false).ok());
  EXPECT_EQ(ErrnoOf(alloc.FreeInode(tx, *ino, false)), EUCLEAN);
  EXPECT_EQ(ErrnoOf(alloc.FreeBlocks(tx, run->first, 1)), EUCLEAN);
  EXPECT_EQ(alloc.free_blocks(), free_blocks + run->count);
  EXPECT_EQ(alloc.free_inodes(), free_inodes + 1);
  CommitWithSuperblock(image, tx);
  image.Close();
  ExpectFsckClean(image);
}

TEST_F(AllocatorTest, GoalDirectedAndContiguous) {
  Image image;
  ASSERT_TRUE(image.Make("-t ext4 -b 4096 -g 2048 -O ^flex_bg", "128M"));
  ASSERT_NO_FATAL_FAILURE(image.Open());
  BitmapAllocator& alloc = image.alloc();
  const format::Superblock& sb = image.sb();
  Transaction tx(image.cache());
  // GoalForInode sees the inode tables once the allocator has loaded.
  ASSERT_TRUE(alloc.Load(tx).ok());

  // Group 5: its own bitmaps and inode table at its start.
  const uint64_t group5 = sb.group_first_block(5);
  const uint64_t goal = alloc.GoalForInode(5 * sb.inodes_per_group + 1);
  EXPECT_GT(goal, group5);
  EXPECT_LT(goal, group5 + sb.blocks_per_group);
  EXPECT_FALSE(alloc.IsBlockInUse(tx, goal));
  EXPECT_TRUE(alloc.IsBlockInUse(tx, goal - 1));

  auto a = alloc.AllocateBlocks(tx, goal, 16, false);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->first, goal);
  EXPECT_EQ(a->count, 16u);
  auto b = alloc.AllocateBlocks(tx, a->first + a->count, 16, false);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->first, a->first + 16);
  // A goal inside a used area: the next free run after it.
  auto c = alloc.AllocateBlocks(tx, a->first + 3, 8, false);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->first, b->first + 16);
  // A goal on metadata: past it.
  auto d = alloc.AllocateBlocks(tx, group5, 1, false);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->first, c->first + 8);
  // A request larger than a group: at most a group's worth, in one group.
  auto e = alloc.AllocateBlocks(tx, sb.group_first_block(9), 100000, false);
  ASSERT_TRUE(e.ok());
  EXPECT_LE(e->count, sb.blocks_per_group);
  EXPECT_GE(e->count, sb.blocks_per_group / 2);
  // Past the end: anywhere.
  auto f = alloc.AllocateBlocks(tx, sb.blocks_count + 5, 1, false);
  ASSERT_TRUE(f.ok());

  for (const auto& r : {*a, *b, *c, *d, *e, *f}) {
    ASSERT_TRUE(alloc.FreeBlocks(tx, r.first, r.count).ok());
  }
  CommitWithSuperblock(image, tx);
  image.Close();
  ExpectFsckClean(image);
}

// A file past 1 MiB keeps the blocks after its data: other allocations go
// around them, and pieces of the file written out of order (concurrent
// write-backs) still land in file order.
TEST_F(AllocatorTest, FileReservationKeepsPiecesInOrder) {
  Image image;
  ASSERT_TRUE(image.Make("-t ext4 -b 4096 -g 8192", "256M"));
  ASSERT_NO_FATAL_FAILURE(image.Open());
  BitmapAllocator& alloc = image.alloc();
  const format::Superblock& sb = image.sb();
  Transaction tx(image.cache());
  constexpr uint32_t kFile = 12, kOther = 13;
  const uint64_t mib = (1 << 20) / sb.block_size();  // 256 blocks
  const uint64_t goal = sb.group_first_block(3) + 100;

  // Small files reserve nothing.
  auto small = alloc.AllocateFileBlocks(tx, kOther, 0, goal, 4, false);
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_EQ(alloc.reserved_blocks(), 0u);
  // The first MiB of the file: what follows is kept for it.
  auto first =
      alloc.AllocateFileBlocks(tx, kFile, 0, small->first + 4, mib, false);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->count, mib);
  EXPECT_GT(alloc.reserved_blocks(), 4 * mib);
  const uint64_t next = first->first + mib;
  // Another allocation aimed right there (an extent tree block) goes around.
  auto tree_block = alloc.AllocateBlocks(tx, first->first, 1, false);
  ASSERT_TRUE(tree_block.ok());
  EXPECT_GE(tree_block->first, next + alloc.reserved_blocks());
  // The third MiB arrives before the second: both land in file order (the
  // reservation places them by logical block, whatever goal comes with).
  auto third = alloc.AllocateFileBlocks(tx, kFile, 2 * mib, 0, mib, false);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->first, next + mib);
  auto second = alloc.AllocateFileBlocks(tx, kFile, mib, next, mib, false);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->first, next);
  EXPECT_EQ(second->count, mib);
  // The last close gives the rest back.
  alloc.DropReservations(kFile);
  EXPECT_EQ(alloc.reserved_blocks(), 0u);
  auto after = alloc.AllocateBlocks(tx, next, 1, false);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->first, next + 2 * mib);  // right after the third MiB

  for (const auto& r : {*small, *first, *tree_block, *third, *second, *after}) {
    ASSERT_TRUE(alloc.FreeBlocks(tx, r.first, r.count).ok());
  }
  CommitWithSuperblock(image, tx);
  image.Close();
  ExpectFsckClean(image);
}

// A free run at the goal that ends with its group is handed out even when
// short: the file goes on at the start of the next group, contiguous on
// disk (flex groups keep their metadata elsewhere).
TEST_F(AllocatorTest, RunEndingAtTheGroupsEndIsTakenShort) {
  Image image;
  ASSERT_TRUE(image.Make("-t ext4 -b 4096 -g 8192", "256M"));
  ASSERT_NO_FATAL_FAILURE(image.Open());
  BitmapAllocator& alloc = image.alloc();
  const format::Superblock& sb = image.sb();
  Transaction tx(image.cache());
  // A group that starts with free blocks (no superblock copy, no metadata).
  uint64_t next_group = 0;
  for (uint32_t g = 2; g < sb.group_count() && next_group == 0; ++g) {
    const uint64_t first = sb.group_first_block(g);
    if (!alloc.IsBlockInUse(tx, first) && !alloc.IsBlockInUse(tx, first - 1)) {
      next_group = first;
    }
  }
  ASSERT_NE(next_group, 0u);
  auto tail = alloc.AllocateBlocks(tx, next_group - 10, 50, false);
  ASSERT_TRUE(tail.ok()) << tail.status();
  EXPECT_EQ(tail->first, next_group - 10);
  EXPECT_EQ(tail->count, 10u);
  auto rest = alloc.AllocateBlocks(tx, next_group, 40, false);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(rest->first, next_group);
  EXPECT_EQ(rest->count, 40u);
  // A goal inside the group, with a long enough run after it: the full run.
  auto full = alloc.AllocateBlocks(tx, next_group - 100, 50, false);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->first, next_group - 100);
  EXPECT_EQ(full->count, 50u);
  for (const auto& r : {*tail, *rest, *full}) {
    ASSERT_TRUE(alloc.FreeBlocks(tx, r.first, r.count).ok());
  }
  CommitWithSuperblock(image, tx);
  image.Close();
  ExpectFsckClean(image);
}

// Reservations are wishes: when space runs short they are given up.
TEST_F(AllocatorTest, ReservationsYieldWhenSpaceIsShort) {
  Image image;
  ASSERT_TRUE(image.Make("-t ext4 -b 4096 -g 1024", "16M"));
  ASSERT_NO_FATAL_FAILURE(image.Open());
  BitmapAllocator& alloc = image.alloc();
  const format::Superblock& sb = image.sb();
  Transaction tx(image.cache());
  const uint64_t mib = (1 << 20) / sb.block_size();
  auto file = alloc.AllocateFileBlocks(tx, 12, 0, 0, mib, false);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_GT(alloc.reserved_blocks(), 0u);
  std::vector<BlockRun> taken = {*file};
  while (true) {
    auto run = alloc.AllocateBlocks(tx, 0, 64, true);
    if (!run.ok()) {
      EXPECT_EQ(ErrnoOf(run.status()), ENOSPC) << run.status();
      break;
    }
    taken.push_back(*run);
  }
  EXPECT_EQ(alloc.free_blocks(), 0u);
  EXPECT_EQ(alloc.reserved_blocks(), 0u);
  for (const BlockRun& r : taken) {
    ASSERT_TRUE(alloc.FreeBlocks(tx, r.first, r.count).ok());
  }
  CommitWithSuperblock(image, tx);
  image.Close();
  ExpectFsckClean(image);
}

TEST_F(AllocatorTest, FlexGoalsSkipTheFlexGroupsMetadata) {
  Image image;
  ASSERT_TRUE(image.Make("-t ext4 -b 4096 -g 1024 -G 4", "128M"));
  ASSERT_NO_FATAL_FAILURE(image.Open());
  BitmapAllocator& alloc = image.alloc();
  const format::Superblock& sb = image.sb();
  Transaction tx(image.cache());
  ASSERT_TRUE(alloc.Load(tx).ok());
  // An inode of group 6 (flex group 1: groups 4-7).
  const uint32_t ino = 6 * sb.inodes_per_group + 5;
  const uint64_t dir_goal = alloc.GoalForInode(ino);
  EXPECT_GE(dir_goal, sb.group_first_block(4));
  EXPECT_LT(dir_goal, sb.group_first_block(5));
  EXPECT_FALSE(alloc.IsBlockInUse(tx, dir_goal));
  const uint64_t file_goal = alloc.GoalForInode(ino, /*regular_file=*/true);
  EXPECT_GE(file_goal, sb.group_first_block(5));
  EXPECT_LT(file_goal, sb.group_first_block(6));
}

TEST_F(AllocatorTest, DirectoriesSpreadFilesStayWithTheirParent) {
  Image image;
  ASSERT_TRUE(image.Make("-t ext4 -b 4096 -g 2048 -O ^flex_bg", "128M"));
  ASSERT_NO_FATAL_FAILURE(image.Open());
  BitmapAllocator& alloc = image.alloc();
  const uint32_t ipg = image.sb().inodes_per_group;
  Transaction tx(image.cache());

  std::set<uint32_t> top_groups;
  std::vector<uint32_t> tops;
  for (int i = 0; i < 8; ++i) {
    auto dir = alloc.AllocateInode(tx, 2, true);
    ASSERT_TRUE(dir.ok());
    tops.push_back(*dir);
    top_groups.insert((*dir - 1) / ipg);
  }
  EXPECT_GE(top_groups.size(), 6u);
  for (uint32_t dir : tops) {
    for (int i = 0; i < 5; ++i) {
      auto file = alloc.AllocateInode(tx, dir, false);
      ASSERT_TRUE(file.ok());
      EXPECT_EQ((*file - 1) / ipg, (dir - 1) / ipg);
    }
  }
  // A subdirectory of an uncrowded directory stays in its group.
  auto sub = alloc.AllocateInode(tx, tops[0], true);
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ((*sub - 1) / ipg, (tops[0] - 1) / ipg);
}

TEST_F(AllocatorTest, FlexGroupsTakeTopDirectoriesAndParentsFiles) {
  Image image;
  ASSERT_TRUE(image.Make("-t ext4 -b 4096 -g 1024 -G 4", "128M"));
  ASSERT_NO_FATAL_FAILURE(image.Open());
  BitmapAllocator& alloc = image.alloc();
  const uint32_t ipg = image.sb().inodes_per_group;
  Transaction tx(image.cache());
  std::set<uint32_t> flexes;
  std::vector<uint32_t> tops;
  for (int i = 0; i < 6; ++i) {
    auto dir = alloc.AllocateInode(tx, 2, true);
    ASSERT_TRUE(dir.ok());
    tops.push_back(*dir);
    uint32_t group = (*dir - 1) / ipg;
    EXPECT_EQ(group % 4, 0u) << "packed at the start of the flex group";
    flexes.insert(group / 4);
  }
  EXPECT_GE(flexes.size(), 4u);
  for (uint32_t dir : tops) {
    auto file = alloc.AllocateInode(tx, dir, false);
    ASSERT_TRUE(file.ok());
    EXPECT_EQ((*file - 1) / ipg / 4, (dir - 1) / ipg / 4);
  }
}

TEST_F(AllocatorTest, CorruptBitmapGroupIsSkippedAndRefused) {
  Image image;
  ASSERT_TRUE(image.Make("-t ext4 -b 4096 -g 2048 -O ^flex_bg", "128M"));
  // Allocate something in group 3 and commit, so its bitmap is real.
  ASSERT_NO_FATAL_FAILURE(image.Open());
  uint64_t block_bitmap = 0;
  BlockRun run;
  {
    Transaction tx(image.cache());
    auto r = image.alloc().AllocateBlocks(
        tx, image.sb().group_first_block(3) + 1000, 4, false);
    ASSERT_TRUE(r.ok());
    run = *r;
    auto gd = image.alloc().GetGroup(tx, 3);
    ASSERT_TRUE(gd.ok());
    block_bitmap = gd->block_bitmap;
    CommitWithSuperblock(image, tx);
  }
  image.Close();
  // Flip a bit of the bitmap on disk: the checksum no longer matches.
  {
    auto device = io::OpenFileDevice(image.path(), false);
    ASSERT_TRUE(device.ok());
    uint8_t byte;
    const uint64_t offset = block_bitmap * 4096 + 1500 / 8;
    ASSERT_TRUE((*device)->ReadAt(offset, {&byte, 1}).ok());
    byte ^= 0x10;
    ASSERT_TRUE((*device)->WriteAt(offset, {&byte, 1}).ok());
  }
  ASSERT_NO_FATAL_FAILURE(image.Open());
  Transaction tx(image.cache());
  EXPECT_EQ(ErrnoOf(image.alloc().FreeBlocks(tx, run.first, run.count)),
            EUCLEAN);
  auto r = image.alloc().AllocateBlocks(
      tx, image.sb().group_first_block(3) + 1000, 4, false);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(
      (r->first - image.sb().first_data_block) / image.sb().blocks_per_group,
      3u);
}

TEST_F(AllocatorTest, BigallocIsReadOnly) {
  Image image;
  if (!image.Make("-t ext4 -O bigalloc -C 16384 -b 4096", "64M")) return;
  auto device = io::OpenFileDevice(image.path(), false);
  ASSERT_TRUE(device.ok());
  std::vector<uint8_t> raw(format::kSuperblockSize);
  ASSERT_TRUE((*device)->ReadAt(format::kSuperblockOffset, raw).ok());
  auto sb = format::ParseSuperblock(raw);
  ASSERT_TRUE(sb.ok());
  io::BlockCache cache(**device, sb->block_size(), sb->blocks_count, 64);
  auto alloc = BitmapAllocator::Create(*sb, cache);
  EXPECT_EQ(ErrnoOf(alloc.status()), EOPNOTSUPP);
  BitmapAllocator direct(*sb, cache);
  Transaction tx(cache);
  EXPECT_EQ(ErrnoOf(direct.AllocateBlocks(tx, 0, 1, true).status()),
            EOPNOTSUPP);
  EXPECT_EQ(ErrnoOf(direct.AllocateInode(tx, 2, false).status()), EOPNOTSUPP);
}

}  // namespace
}  // namespace ext4
