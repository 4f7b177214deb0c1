// statfs against the kernel: for images made by mke2fs in many layouts, the
// overhead and the five statfs counts computed from the image must equal what
// the kernel's ext4 reports for the same image mounted read-only through a
// loop device (skipped where loop mounts are unavailable). mke2fs's own
// s_overhead_clusters is a second oracle that needs no mount.
#include "ext4/overhead.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "ext4/format/group_descriptor.h"
#include "ext4/format/inode.h"
#include "ext4/format/superblock.h"
#include "ext4/io/block_cache.h"
#include "ext4/io/block_device.h"
#include "gtest/gtest.h"

namespace ext4 {
namespace {

constexpr char kMke2fs[] = "/usr/sbin/mke2fs";
constexpr char kDebugfs[] = "/usr/sbin/debugfs";

bool HaveE2fsprogs() {
  return access(kMke2fs, X_OK) == 0 && access(kDebugfs, X_OK) == 0;
}

std::string MakeTempDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string tmpl =
      std::string(base ? base : "/tmp") + "/overhead_test.XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  char* made = mkdtemp(buf.data());
  return made ? std::string(made) : std::string();
}

// Runs a shell command; returns its exit status and fills `output` with its
// stdout and stderr.
int RunCommand(const std::string& command, std::string* output) {
  std::string full = command + " 2>&1";
  FILE* pipe = popen(full.c_str(), "r");
  if (pipe == nullptr) return -1;
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) text.append(buf, n);
  int status = pclose(pipe);
  if (output != nullptr) *output = std::move(text);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// An image opened read-only, with the helpers the engine uses to read it.
class Image {
 public:
  static absl::StatusOr<std::unique_ptr<Image>> Open(const std::string& path) {
    auto image = std::unique_ptr<Image>(new Image);
    E4_ASSIGN_OR_RETURN(image->device_,
                        io::OpenFileDevice(path, /*read_only=*/true));
    std::vector<uint8_t> raw(format::kSuperblockSize);
    E4_RETURN_IF_ERROR(image->device_->ReadAt(format::kSuperblockOffset, raw));
    E4_ASSIGN_OR_RETURN(image->sb_, format::ParseSuperblock(raw));
    image->cache_ = std::make_unique<io::BlockCache>(
        *image->device_, image->sb_.block_size(), image->sb_.blocks_count,
        1024);
    return image;
  }

  const format::Superblock& sb() const { return sb_; }

  absl::StatusOr<format::GroupDescriptor> Group(uint32_t group) {
    if (group >= sb_.group_count()) {
      return Corrupt(absl::StrCat("group ", group, " does not exist"));
    }
    const uint64_t block = format::GroupDescriptorBlock(sb_, group);
    const uint32_t offset = format::GroupDescriptorOffsetInBlock(sb_, group);
    E4_ASSIGN_OR_RETURN(io::BlockRef bytes, cache_->Read(block));
    format::Bytes all(*bytes);
    if (offset + sb_.descriptor_size() > all.size()) {
      return Corrupt("descriptor out of block");
    }
    return format::ParseGroupDescriptor(
        all.subspan(offset, sb_.descriptor_size()), group, sb_);
  }

  absl::StatusOr<format::Inode> Inode(uint32_t ino) {
    const uint32_t group = (ino - 1) / sb_.inodes_per_group;
    const uint32_t index = (ino - 1) % sb_.inodes_per_group;
    E4_ASSIGN_OR_RETURN(format::GroupDescriptor gd, Group(group));
    const uint64_t byte = uint64_t{index} * sb_.inode_size();
    E4_ASSIGN_OR_RETURN(io::BlockRef bytes,
                        cache_->Read(gd.inode_table + byte / sb_.block_size()));
    return format::ParseInode(format::Bytes(*bytes).subspan(
                                  byte % sb_.block_size(), sb_.inode_size()),
                              ino, sb_);
  }

  // The internal journal's size in blocks (i_size / block size), 0 without
  // one.
  absl::StatusOr<uint64_t> JournalBlocks() {
    if (!sb_.has_compat(format::kCompatHasJournal) || sb_.journal_inum == 0) {
      return 0;
    }
    E4_ASSIGN_OR_RETURN(format::Inode inode, Inode(sb_.journal_inum));
    return inode.size >> sb_.block_size_bits();
  }

  absl::StatusOr<uint64_t> Overhead(const format::Superblock& sb) {
    E4_ASSIGN_OR_RETURN(uint64_t journal, JournalBlocks());
    return OverheadBlocks(
        sb, [this](uint32_t g) { return Group(g); }, journal);
  }

  // Free blocks and inodes summed over the group descriptors.
  absl::Status FreeCounts(uint64_t* blocks, uint64_t* inodes) {
    *blocks = 0;
    *inodes = 0;
    for (uint32_t g = 0; g < sb_.group_count(); ++g) {
      E4_ASSIGN_OR_RETURN(format::GroupDescriptor gd, Group(g));
      *blocks += uint64_t{gd.free_blocks_count} * sb_.cluster_ratio();
      *inodes += gd.free_inodes_count;
    }
    return absl::OkStatus();
  }

 private:
  Image() = default;
  std::unique_ptr<io::BlockDevice> device_;
  format::Superblock sb_;
  std::unique_ptr<io::BlockCache> cache_;
};

// Mounts an image read-only through a loop device with the kernel's ext4
// driver (ext2 and ext3 images included) and unmounts it when destroyed.
class KernelMount {
 public:
  KernelMount(const std::string& image, const std::string& dir) : dir_(dir) {
    mounted_ = RunCommand(absl::StrCat("mount -t ext4 -o loop,ro '", image,
                                       "' '", dir, "'"),
                          &output_) == 0;
  }
  ~KernelMount() {
    if (mounted_) RunCommand(absl::StrCat("umount '", dir_, "'"), nullptr);
  }
  bool mounted() const { return mounted_; }
  const std::string& output() const { return output_; }

  // statfs of the mount as `stat -f` prints it.
  bool Statfs(StatfsCounts* out, std::string* text) const {
    if (RunCommand(absl::StrCat("stat -f -c '%b %f %a %c %d' '", dir_, "'"),
                   text) != 0) {
      return false;
    }
    std::istringstream in(*text);
    return static_cast<bool>(in >> out->blocks >> out->bfree >> out->bavail >>
                             out->files >> out->ffree);
  }

 private:
  std::string dir_;
  bool mounted_ = false;
  std::string output_;
};

// Whether loop mounts work here (root, loop devices, no sandbox in the
// way), probed once with a small image. Empty when they do, else why not.
const std::string& LoopMountProblem() {
  static const std::string* problem = [] {
    if (geteuid() != 0) return new std::string("not running as root");
    std::string dir = MakeTempDir();
    if (dir.empty()) return new std::string("no temporary directory");
    std::string image = dir + "/probe.img";
    std::string mnt = dir + "/mnt";
    std::string out;
    if (RunCommand(absl::StrCat(kMke2fs, " -q -F -t ext4 '", image, "' 8M"),
                   &out) != 0 ||
        RunCommand(absl::StrCat("mkdir -p '", mnt, "'"), &out) != 0) {
      return new std::string("cannot make the probe image: " + out);
    }
    KernelMount mount(image, mnt);
    if (!mount.mounted()) {
      return new std::string("loop mount failed: " + mount.output());
    }
    return new std::string();
  }();
  return *problem;
}

struct Layout {
  const char* name;
  const char* options;
  const char* size;
  // Clears s_overhead_clusters after mke2fs, so that a bigalloc mount
  // computes the overhead instead of taking the recorded value.
  bool clear_recorded_overhead = false;
};

void PrintTo(const Layout& layout, std::ostream* os) {
  *os << layout.name << " (" << layout.options << " " << layout.size << ")";
}

const Layout kLayouts[] = {
    {"ext4", "-t ext4", "512M"},
    {"no_csum_no_64bit", "-t ext4 -O ^metadata_csum,^64bit", "512M"},
    {"block1k", "-t ext4 -b 1024", "64M"},
    {"inode128", "-t ext4 -I 128", "512M"},
    {"ext2", "-t ext2", "512M"},
    {"ext3", "-t ext3", "512M"},
    {"no_flex_bg", "-t ext4 -O ^flex_bg", "512M"},
    {"meta_bg", "-t ext4 -O meta_bg,^resize_inode", "256M"},
    {"meta_bg_4k", "-t ext4 -b 4096 -O meta_bg,^resize_inode,^64bit", "1G"},
    {"sparse_super2", "-t ext4 -O sparse_super2", "512M"},
    {"sparse_super2_one_backup", "-t ext4 -O sparse_super2 -E num_backup_sb=1",
     "512M"},
    {"not_sparse", "-t ext4 -O ^sparse_super,^resize_inode", "512M"},
    {"no_journal", "-t ext4 -O ^has_journal", "512M"},
    {"orphan_file", "-t ext4 -O orphan_file", "512M"},
    {"bigalloc", "-t ext4 -O bigalloc", "512M"},
    {"bigalloc_computed", "-t ext4 -O bigalloc", "512M", true},
    {"bigalloc_1k_computed", "-t ext4 -b 1024 -C 16384 -O bigalloc", "64M",
     true},
    {"bigalloc_no_flex_computed", "-t ext4 -O bigalloc,^flex_bg -C 16384",
     "512M", true},
};

class OverheadTest : public testing::TestWithParam<Layout> {
 protected:
  void SetUp() override {
    if (!HaveE2fsprogs()) GTEST_SKIP() << "e2fsprogs not installed";
    dir_ = MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    image_ = dir_ + "/fs.img";
    const Layout& layout = GetParam();
    std::string out;
    ASSERT_EQ(RunCommand(absl::StrCat(kMke2fs, " -q -F ", layout.options, " '",
                                      image_, "' ", layout.size),
                         &out),
              0)
        << out;
    {
      auto image = Image::Open(image_);
      ASSERT_TRUE(image.ok()) << image.status();
      recorded_ = uint64_t{(*image)->sb().overhead_clusters} *
                  (*image)->sb().cluster_ratio();
    }
    if (layout.clear_recorded_overhead) {
      ASSERT_EQ(RunCommand(
                    absl::StrCat(kDebugfs, " -w -R 'ssv overhead_clusters 0' '",
                                 image_, "'"),
                    &out),
                0)
          << out;
    }
  }

  void TearDown() override {
    if (!dir_.empty()) RunCommand(absl::StrCat("rm -rf '", dir_, "'"), nullptr);
  }

  std::string dir_;
  std::string image_;
  uint64_t recorded_ = 0;  // mke2fs's s_overhead_clusters, in blocks
};

// mke2fs records the overhead it laid out; the computation (with the
// recorded value hidden from it) must reach the same number. The kernel's
// count without bigalloc has matched mke2fs's since it learned of the
// reserved GDT blocks.
TEST_P(OverheadTest, MatchesMke2fsRecord) {
  auto image = Image::Open(image_);
  ASSERT_TRUE(image.ok()) << image.status();
  format::Superblock sb = (*image)->sb();
  if (recorded_ == 0) GTEST_SKIP() << "mke2fs recorded no overhead";
  // With bigalloc the kernel's own count leaves out the reserved GDT blocks,
  // which mke2fs's count includes: where they reach past the clusters the
  // bitmaps and tables use, the two differ (the kernel mount, which takes
  // the recorded value unless it is cleared, is the oracle there).
  if (sb.bigalloc()) GTEST_SKIP() << "bigalloc: mke2fs counts differently";
  sb.overhead_clusters = 0;
  auto computed = (*image)->Overhead(sb);
  ASSERT_TRUE(computed.ok()) << computed.status();
  EXPECT_EQ(*computed, recorded_);
}

TEST_P(OverheadTest, MatchesKernelStatfs) {
  const std::string& problem = LoopMountProblem();
  if (!problem.empty()) {
    GTEST_SKIP() << "needs loop mounts (run as root outside a sandbox): "
                 << problem;
  }
  StatfsCounts mine;
  {
    auto image = Image::Open(image_);
    ASSERT_TRUE(image.ok()) << image.status();
    auto overhead = (*image)->Overhead((*image)->sb());
    ASSERT_TRUE(overhead.ok()) << overhead.status();
    uint64_t free_blocks, free_inodes;
    absl::Status status = (*image)->FreeCounts(&free_blocks, &free_inodes);
    ASSERT_TRUE(status.ok()) << status;
    mine = KernelStatfs((*image)->sb(), *overhead, free_blocks, free_inodes);
  }  // closes the image before the kernel opens it

  const std::string mnt = dir_ + "/mnt";
  ASSERT_EQ(RunCommand(absl::StrCat("mkdir -p '", mnt, "'"), nullptr), 0);
  KernelMount mount(image_, mnt);
  ASSERT_TRUE(mount.mounted()) << mount.output();
  StatfsCounts kernel;
  std::string text;
  ASSERT_TRUE(mount.Statfs(&kernel, &text)) << text;
  EXPECT_EQ(mine.blocks, kernel.blocks) << "f_blocks; kernel: " << text;
  EXPECT_EQ(mine.bfree, kernel.bfree) << "f_bfree; kernel: " << text;
  EXPECT_EQ(mine.bavail, kernel.bavail) << "f_bavail; kernel: " << text;
  EXPECT_EQ(mine.files, kernel.files) << "f_files; kernel: " << text;
  EXPECT_EQ(mine.ffree, kernel.ffree) << "f_ffree; kernel: " << text;
}

INSTANTIATE_TEST_SUITE_P(Layouts, OverheadTest, testing::ValuesIn(kLayouts),
                         [](const testing::TestParamInfo<Layout>& info) {
                           return std::string(info.param.name);
                         });

// A hand-made geometry: 4 KiB blocks, 32768 blocks per group, 10 groups,
// 512 inode table blocks per group, 32-byte descriptors.
format::Superblock SmallGeometry() {
  format::Superblock sb;
  sb.magic = format::kSuperblockMagic;
  sb.rev_level = format::kDynamicRevision;
  sb.log_block_size = 2;
  sb.blocks_per_group = 32768;
  sb.clusters_per_group = 32768;
  sb.blocks_count = 10 * 32768;
  sb.inodes_per_group = 8192;
  sb.inodes_count = 10 * 8192;
  sb.raw_inode_size = 256;
  sb.first_ino = 11;
  sb.feature_ro_compat = format::kRoCompatSparseSuper;
  sb.reserved_gdt_blocks = 7;
  return sb;
}

absl::StatusOr<format::GroupDescriptor> NoDescriptors(uint32_t) {
  ADD_FAILURE() << "descriptors read without bigalloc";
  return Corrupt("unexpected");
}

TEST(OverheadGeometry, WithoutBigallocOnlyGeometryCounts) {
  format::Superblock sb = SmallGeometry();
  // Groups 0, 1, 3, 5, 7, 9 hold a superblock copy, 1 descriptor block and
  // 7 reserved GDT blocks; every group 512 table blocks and 2 bitmaps.
  const uint64_t expected = 6 * (1 + 1 + 7) + 10 * (512 + 2) + 100;
  sb.overhead_clusters = 12345;  // ignored without bigalloc
  auto overhead = OverheadBlocks(sb, NoDescriptors, 100);
  ASSERT_TRUE(overhead.ok()) << overhead.status();
  EXPECT_EQ(*overhead, expected);
}

TEST(OverheadGeometry, MetaBgCountsFirstSecondAndLastGroup) {
  format::Superblock sb = SmallGeometry();
  sb.feature_incompat = format::kIncompatMetaBg;
  sb.reserved_gdt_blocks = 0;
  sb.log_block_size = 0;  // 1 KiB blocks: 32 descriptors per block
  sb.first_data_block = 1;
  sb.blocks_per_group = sb.clusters_per_group = 8192;
  sb.inodes_per_group = 2048;
  sb.inodes_count = 70 * 2048;
  sb.blocks_count = 1 + 70 * 8192;
  // Superblock copies: 0, 1, 3, 5, 7, 9, 25, 27, 49 -> 9. Meta groups
  // [0,32), [32,64), [64,70): descriptor blocks in 0, 1, 31, 32, 33, 63,
  // 64, 65 -> 8. Tables 2048 * 256 / 1024 = 512 blocks.
  const uint64_t expected = 1 + 9 + 8 + 70 * (512 + 2);
  auto overhead = OverheadBlocks(sb, NoDescriptors, 0);
  ASSERT_TRUE(overhead.ok()) << overhead.status();
  EXPECT_EQ(*overhead, expected);
}

TEST(OverheadGeometry, SparseSuper2CountsTheBackupGroups) {
  format::Superblock sb = SmallGeometry();
  sb.feature_compat = format::kCompatSparseSuper2;
  sb.backup_bgs[0] = 1;
  sb.backup_bgs[1] = 1;  // the same group twice counts once
  auto overhead = OverheadBlocks(sb, NoDescriptors, 0);
  ASSERT_TRUE(overhead.ok()) << overhead.status();
  EXPECT_EQ(*overhead, 2 * (1 + 1 + 7) + 10 * (512 + 2));
}

format::Superblock BigallocGeometry() {
  format::Superblock sb = SmallGeometry();
  sb.feature_ro_compat |= format::kRoCompatBigalloc;
  sb.feature_incompat = format::kIncompatExtents;
  sb.log_cluster_size = 6;  // 64 KiB clusters: 16 blocks
  sb.clusters_per_group = 32768;
  sb.blocks_per_group = 32768 * 16;
  sb.blocks_count = 2 * uint64_t{sb.blocks_per_group};
  sb.inodes_count = 2 * 8192;
  return sb;
}

TEST(OverheadGeometry, BigallocUsesTheRecordedValueUnlessAbsurd) {
  format::Superblock sb = BigallocGeometry();
  sb.overhead_clusters = 100;
  auto overhead = OverheadBlocks(sb, NoDescriptors, 4096);
  ASSERT_TRUE(overhead.ok()) << overhead.status();
  EXPECT_EQ(*overhead, 1600u);
}

TEST(OverheadGeometry, BigallocCountsDistinctClustersAndDistrustsPointers) {
  format::Superblock sb = BigallocGeometry();
  // Group 0: bitmaps of both groups in blocks 20..23 (cluster 1), tables at
  // 32 and 544 (clusters 2..33 and 34..65). Group 1's descriptor points its
  // block bitmap past the end of the filesystem and its inode bitmap far
  // away: neither is counted anywhere.
  auto descriptors =
      [&](uint32_t g) -> absl::StatusOr<format::GroupDescriptor> {
    format::GroupDescriptor gd;
    if (g == 0) {
      gd.block_bitmap = 20;
      gd.inode_bitmap = 22;
      gd.inode_table = 32;
    } else {
      gd.block_bitmap = sb.blocks_count + 5;
      gd.inode_bitmap = ~uint64_t{0};
      gd.inode_table = 544;
    }
    return gd;
  };
  // Group 0: superblock + 1 descriptor block in cluster 0, cluster 1, 64
  // table clusters -> 66. Group 1: superblock + descriptor (cluster 0) -> 1.
  // The journal: 17 blocks -> 2 clusters.
  auto overhead = OverheadBlocks(sb, descriptors, 17);
  ASSERT_TRUE(overhead.ok()) << overhead.status();
  EXPECT_EQ(*overhead, (66 + 1 + 2) * 16u);
}

TEST(OverheadGeometry, BigallocPassesDescriptorErrorsOn) {
  format::Superblock sb = BigallocGeometry();
  auto overhead = OverheadBlocks(
      sb,
      [](uint32_t) -> absl::StatusOr<format::GroupDescriptor> {
        return Corrupt("bad descriptor");
      },
      0);
  EXPECT_EQ(ErrnoOf(overhead.status()), EUCLEAN);
}

TEST(KernelStatfs, ReservesThePoolAndClamps) {
  format::Superblock sb = SmallGeometry();  // 327680 blocks, no extents
  sb.r_blocks_count = 1000;
  StatfsCounts s = KernelStatfs(sb, 5000, 300000, 70000);
  EXPECT_EQ(s.blocks, 327680u - 5000);
  EXPECT_EQ(s.bfree, 300000u);
  EXPECT_EQ(s.bavail, 300000u - 1000);  // ext2/ext3: no pool
  EXPECT_EQ(s.files, 81920u);
  EXPECT_EQ(s.ffree, 70000u);

  sb.feature_incompat = format::kIncompatExtents;
  EXPECT_EQ(ReservedPoolBlocks(sb), 4096u);  // min(327680 / 50, 4096)
  s = KernelStatfs(sb, 5000, 300000, 70000);
  EXPECT_EQ(s.bavail, 300000u - 1000 - 4096);
  s = KernelStatfs(sb, 400000, 3000, 0);
  EXPECT_EQ(s.blocks, 0u);
  EXPECT_EQ(s.bavail, 0u);
}

}  // namespace
}  // namespace ext4
