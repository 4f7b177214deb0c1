// Directory changes on images made by mke2fs, checked by the engine's own
// lookups and listings, then by e2fsck -fn and debugfs.
//
// New directory blocks come from a large file, "pool", that mke2fs -d wrote:
// a directory grows into the front of the pool's largest extent, and at the
// end the pool gives those blocks up (its extent starts later: a hole at its
// front), so the block bitmaps never change. New entries point at a few
// regular files whose link counts are adjusted to match.
#include "ext4/directory_writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ext4/directory.h"
#include "ext4/errno_status.h"
#include "ext4/file_map.h"
#include "ext4/format/checksum.h"
#include "ext4/format/dirent.h"
#include "ext4/format/dx_hash.h"
#include "ext4/format/extent.h"
#include "ext4/format/group_descriptor.h"
#include "ext4/format/htree.h"
#include "ext4/format/inode.h"
#include "ext4/format/superblock.h"
#include "ext4/io/block_cache.h"
#include "ext4/io/block_device.h"
#include "ext4/testing/image_tools.h"
#include "ext4/transaction.h"
#include "gtest/gtest.h"

namespace ext4 {
namespace {

using format::Bytes;
using format::MutableBytes;

#define ASSERT_OK(expr)                                 \
  do {                                                  \
    const absl::Status assert_status_ = (expr);         \
    ASSERT_TRUE(assert_status_.ok()) << assert_status_; \
  } while (false)

#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL_(E4_CONCAT_(assert_or_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  ASSERT_TRUE(tmp.ok()) << tmp.status();           \
  lhs = std::move(tmp).value()

constexpr uint32_t kRegMode = S_IFREG | 0644;
constexpr uint32_t kDirMode = S_IFDIR | 0755;
constexpr int kFiles = 8;

using ::ext4::testing::HaveTools;
using ::ext4::testing::kDebugfs;
using ::ext4::testing::kE2fsck;
using ::ext4::testing::kMke2fs;
using ::ext4::testing::MakeTempDir;
using ::ext4::testing::RunCommand;

// ---------------------------------------------------------------------------
// A filesystem image opened read-write, with inode access.

class Fs {
 public:
  static absl::StatusOr<std::unique_ptr<Fs>> Open(const std::string& path) {
    auto fs = std::make_unique<Fs>();
    E4_ASSIGN_OR_RETURN(fs->device_, io::OpenFileDevice(path, false));
    std::vector<uint8_t> raw(format::kSuperblockSize);
    E4_RETURN_IF_ERROR(fs->device_->ReadAt(format::kSuperblockOffset, raw));
    E4_ASSIGN_OR_RETURN(fs->sb_, format::ParseSuperblock(raw));
    fs->cache_ = std::make_unique<io::BlockCache>(
        *fs->device_, fs->sb_.block_size(), fs->sb_.blocks_count, 4096);
    return fs;
  }

  const format::Superblock& sb() const { return sb_; }
  io::BlockCache& cache() { return *cache_; }
  uint32_t block_size() const { return sb_.block_size(); }

  // The inode's bytes inside its inode table block, writable in `tx`.
  absl::StatusOr<MutableBytes> RawInode(Transaction& tx, uint32_t ino) {
    if (ino == 0 || ino > sb_.inodes_count) return Corrupt("bad inode");
    const uint32_t group = (ino - 1) / sb_.inodes_per_group;
    const uint32_t index = (ino - 1) % sb_.inodes_per_group;
    E4_ASSIGN_OR_RETURN(Bytes gd_block,
                        tx.Read(format::GroupDescriptorBlock(sb_, group)));
    E4_ASSIGN_OR_RETURN(
        const format::GroupDescriptor gd,
        format::ParseGroupDescriptor(
            gd_block.subspan(format::GroupDescriptorOffsetInBlock(sb_, group),
                             sb_.descriptor_size()),
            group, sb_));
    const uint64_t byte = uint64_t{index} * sb_.inode_size();
    E4_ASSIGN_OR_RETURN(MutableBytes block,
                        tx.Modify(gd.inode_table + byte / block_size()));
    return block.subspan(byte % block_size(), sb_.inode_size());
  }

  absl::StatusOr<format::Inode> ReadInode(Transaction& tx, uint32_t ino) {
    E4_ASSIGN_OR_RETURN(MutableBytes raw, RawInode(tx, ino));
    return format::ParseInode(raw, ino, sb_);
  }

  absl::Status WriteInode(Transaction& tx, uint32_t ino,
                          const format::Inode& inode) {
    E4_ASSIGN_OR_RETURN(MutableBytes raw, RawInode(tx, ino));
    format::SerializeInode(inode, ino, sb_, raw);
    return absl::OkStatus();
  }

  absl::Status AddLinks(Transaction& tx, uint32_t ino, int delta) {
    E4_ASSIGN_OR_RETURN(format::Inode inode, ReadInode(tx, ino));
    inode.links_count = static_cast<uint16_t>(inode.links_count + delta);
    return WriteInode(tx, ino, inode);
  }

  DirectoryContext Context(uint32_t ino, const format::Inode& inode) const {
    DirectoryContext ctx;
    ctx.ino = ino;
    ctx.block_size = sb_.block_size();
    ctx.metadata_csum = sb_.metadata_csum();
    ctx.inode_checksum_seed =
        format::InodeChecksumSeed(sb_.checksum_seed(), ino, inode.generation);
    ctx.htree = (inode.flags & format::kInodeFlagIndex) &&
                sb_.has_compat(format::kCompatDirIndex);
    ctx.large_dir = sb_.has_incompat(format::kIncompatLargeDir);
    for (int i = 0; i < 4; ++i) ctx.hash_seed[i] = sb_.hash_seed[i];
    ctx.default_hash_version = sb_.def_hash_version;
    ctx.hash_unsigned = sb_.hash_unsigned();
    ctx.filetype = sb_.has_incompat(format::kIncompatFiletype);
    return ctx;
  }

  // Lookups and listings as the engine's read side sees the committed image
  // (inline directories are taken to have an empty system.data).
  absl::StatusOr<uint32_t> Lookup(uint32_t dir, std::string_view name) {
    Transaction tx(*cache_);
    E4_ASSIGN_OR_RETURN(const format::Inode inode, ReadInode(tx, dir));
    const DirectoryContext ctx = Context(dir, inode);
    if (inode.flags & format::kInodeFlagInlineData) {
      return LookupInInlineDirectory(ctx, inode.block, Bytes(), name);
    }
    Source source(*this, inode, ctx.inode_checksum_seed);
    return LookupInDirectory(ctx, source, name);
  }

  absl::StatusOr<std::map<std::string, uint32_t>> List(uint32_t dir) {
    Transaction tx(*cache_);
    E4_ASSIGN_OR_RETURN(const format::Inode inode, ReadInode(tx, dir));
    const DirectoryContext ctx = Context(dir, inode);
    std::map<std::string, uint32_t> names;
    absl::Status duplicate;
    auto emit = [&](const DirEntry& entry) {
      if (!names.emplace(entry.name, entry.ino).second) {
        duplicate = absl::InternalError("listed twice: " + entry.name);
      }
      return true;
    };
    if (inode.flags & format::kInodeFlagInlineData) {
      E4_RETURN_IF_ERROR(
          ListInlineDirectory(ctx, inode.block, Bytes(), 0, emit));
    } else {
      Source source(*this, inode, ctx.inode_checksum_seed);
      E4_RETURN_IF_ERROR(ListDirectory(ctx, source, 0, emit));
    }
    E4_RETURN_IF_ERROR(duplicate);
    return names;
  }

 private:
  class Source : public DirectoryBlockSource {
   public:
    Source(Fs& fs, const format::Inode& inode, uint32_t seed)
        : fs_(fs),
          map_(MakeFileMap(inode, fs.cache(), fs.sb().metadata_csum(), seed)),
          count_(static_cast<uint32_t>(inode.size / fs.block_size())) {}
    absl::StatusOr<std::shared_ptr<const std::vector<uint8_t>>> ReadBlock(
        uint32_t logical) override {
      E4_ASSIGN_OR_RETURN(const BlockMapping mapping, map_->Map(logical));
      if (mapping.physical == 0) return Corrupt("hole");
      return fs_.cache().Read(mapping.physical);
    }
    uint32_t BlockCount() const override { return count_; }

   private:
    Fs& fs_;
    std::unique_ptr<FileMap> map_;
    uint32_t count_;
  };

  std::unique_ptr<io::BlockDevice> device_;
  format::Superblock sb_;
  std::unique_ptr<io::BlockCache> cache_;
};

// The pool file's largest extent, handed out from its front.
class Pool {
 public:
  static absl::StatusOr<std::unique_ptr<Pool>> Open(Fs& fs, Transaction& tx,
                                                    uint32_t ino) {
    auto pool = std::make_unique<Pool>(fs, ino);
    E4_ASSIGN_OR_RETURN(const format::Inode inode, fs.ReadInode(tx, ino));
    E4_ASSIGN_OR_RETURN(const format::ExtentNode node,
                        format::ParseExtentNode(inode.block, -1));
    if (node.header.depth != 0 || node.leaves.empty()) {
      return absl::FailedPreconditionError("pool extent tree is not flat");
    }
    for (size_t i = 0; i < node.leaves.size(); ++i) {
      if (node.leaves[i].length > node.leaves[pool->extent_].length) {
        pool->extent_ = i;
      }
    }
    pool->start_ = node.leaves[pool->extent_].physical;
    pool->length_ = node.leaves[pool->extent_].length;
    return pool;
  }

  Pool(Fs& fs, uint32_t ino) : fs_(fs), ino_(ino) {}

  absl::StatusOr<uint64_t> Take() {
    if (used_ + 1 >= length_) return ErrnoError(ENOSPC, "pool exhausted");
    return start_ + used_++;
  }

  // Gives the blocks taken since the last Sync up in the pool's inode.
  absl::Status Sync(Transaction& tx) {
    const uint32_t taken = used_ - synced_;
    if (taken == 0) return absl::OkStatus();
    E4_ASSIGN_OR_RETURN(format::Inode inode, fs_.ReadInode(tx, ino_));
    E4_ASSIGN_OR_RETURN(format::ExtentNode node,
                        format::ParseExtentNode(inode.block, -1));
    format::ExtentLeaf& leaf = node.leaves[extent_];
    leaf.logical += taken;
    leaf.physical += taken;
    leaf.length -= taken;
    format::SerializeExtentNode(node, inode.block);
    inode.blocks -= uint64_t{taken} * (fs_.block_size() / 512);
    synced_ = used_;
    return fs_.WriteInode(tx, ino_, inode);
  }

  uint32_t capacity() const { return length_ - 1; }

 private:
  Fs& fs_;
  uint32_t ino_;
  size_t extent_ = 0;
  uint64_t start_ = 0;
  uint32_t length_ = 0;
  uint32_t used_ = 0;
  uint32_t synced_ = 0;
};

// An extent-mapped directory (depth-0 extent root) growing into the pool.
class DirTarget : public DirectoryWriteTarget {
 public:
  static absl::StatusOr<std::unique_ptr<DirTarget>> Open(Fs& fs,
                                                         Transaction& tx,
                                                         uint32_t ino,
                                                         Pool* pool) {
    auto dir = std::make_unique<DirTarget>(fs, ino, pool);
    E4_ASSIGN_OR_RETURN(const format::Inode inode, fs.ReadInode(tx, ino));
    if (!inode.is_dir() || !inode.uses_extents()) {
      return absl::FailedPreconditionError("not an extent-mapped directory");
    }
    E4_ASSIGN_OR_RETURN(const format::ExtentNode node,
                        format::ParseExtentNode(inode.block, -1));
    if (node.header.depth != 0) {
      return absl::FailedPreconditionError("directory extent tree not flat");
    }
    for (const format::ExtentLeaf& leaf : node.leaves) {
      if (leaf.logical != dir->physical_.size()) {
        return absl::FailedPreconditionError("directory has holes");
      }
      for (uint32_t i = 0; i < leaf.length; ++i) {
        dir->physical_.push_back(leaf.physical + i);
      }
    }
    if (dir->physical_.size() != inode.size / fs.block_size()) {
      return absl::FailedPreconditionError("directory size mismatch");
    }
    dir->indexed_ = (inode.flags & format::kInodeFlagIndex) != 0;
    dir->ctx_ = fs.Context(ino, inode);
    return dir;
  }

  DirTarget(Fs& fs, uint32_t ino, Pool* pool)
      : fs_(fs), ino_(ino), pool_(pool) {}

  uint32_t BlockCount() const override {
    return static_cast<uint32_t>(physical_.size());
  }
  absl::StatusOr<uint64_t> PhysicalBlock(Transaction&,
                                         uint32_t logical) override {
    if (logical >= physical_.size()) return Corrupt("past the end");
    return physical_[logical];
  }
  absl::StatusOr<uint64_t> AppendBlock(Transaction&) override {
    if (pool_ == nullptr) return ErrnoError(ENOSPC, "no pool");
    E4_ASSIGN_OR_RETURN(const uint64_t block, pool_->Take());
    physical_.push_back(block);
    ++appended_;
    return block;
  }
  void SetIndexed(bool indexed) override { indexed_ = indexed; }
  bool CanIndex() const override {
    return fs_.sb().has_compat(format::kCompatDirIndex);
  }

  // Writes the inode: extents, size, block count and the index flag.
  absl::Status Sync(Transaction& tx) {
    E4_ASSIGN_OR_RETURN(format::Inode inode, fs_.ReadInode(tx, ino_));
    E4_ASSIGN_OR_RETURN(format::ExtentNode node,
                        format::ParseExtentNode(inode.block, -1));
    node.leaves.clear();
    for (uint32_t logical = 0; logical < physical_.size(); ++logical) {
      if (!node.leaves.empty()) {
        format::ExtentLeaf& last = node.leaves.back();
        if (last.physical + last.length == physical_[logical] &&
            last.length < format::kInitializedExtentMaxLength) {
          ++last.length;
          continue;
        }
      }
      node.leaves.push_back(
          format::ExtentLeaf{logical, 1, false, physical_[logical]});
    }
    if (node.leaves.size() > 4) {
      return absl::FailedPreconditionError("too many directory extents");
    }
    format::SerializeExtentNode(node, inode.block);
    inode.size = uint64_t{physical_.size()} * fs_.block_size();
    inode.blocks += uint64_t{appended_} * (fs_.block_size() / 512);
    appended_ = 0;
    if (indexed_) {
      inode.flags |= format::kInodeFlagIndex;
    } else {
      inode.flags &= ~format::kInodeFlagIndex;
    }
    return fs_.WriteInode(tx, ino_, inode);
  }

  DirectoryContext& ctx() { return ctx_; }
  bool indexed() const { return indexed_; }
  uint32_t ino() const { return ino_; }

 private:
  Fs& fs_;
  uint32_t ino_;
  Pool* pool_;
  std::vector<uint64_t> physical_;
  uint32_t appended_ = 0;
  bool indexed_ = false;
  DirectoryContext ctx_;
};

// debugfs "ls -p": name -> inode.
std::map<std::string, uint32_t> DebugfsList(const std::string& img,
                                            const std::string& path) {
  std::map<std::string, uint32_t> names;
  std::istringstream in(
      RunCommand("/usr/sbin/debugfs -R 'ls -p " + path + "' '" + img + "'")
          .output);
  std::string line;
  while (std::getline(in, line)) {
    // /ino/mode/uid/gid/name/size/
    if (line.empty() || line[0] != '/') continue;
    std::vector<std::string> fields;
    std::string field;
    std::istringstream parts(line);
    while (std::getline(parts, field, '/')) fields.push_back(field);
    if (fields.size() < 6) continue;
    const uint32_t ino = static_cast<uint32_t>(std::stoul(fields[1]));
    if (ino != 0) names[fields[5]] = ino;  // debugfs shows unused records
  }
  return names;
}

// The indirect_levels byte and the count of the root of an htree directory,
// as debugfs prints them.
std::string DebugfsHtree(const std::string& img, const std::string& path) {
  return RunCommand("/usr/sbin/debugfs -R 'htree " + path + "' '" + img + "'")
      .output;
}

std::string Name(const std::string& prefix, int i, size_t length = 0) {
  std::string name = prefix + std::to_string(i);
  if (name.size() < length) name.append(length - name.size(), 'x');
  return name;
}

// ---------------------------------------------------------------------------
// The fixture: an image with
//   /d          an empty directory (the one the tests grow)
//   /e/sub      a directory holding a directory (for renames)
//   /f0../f7    regular files new entries point to
//   /pool       the source of new directory blocks

class DirectoryWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveTools({kMke2fs, kDebugfs, kE2fsck}))
      GTEST_SKIP() << "e2fsprogs (mke2fs, debugfs) not found";
    dir_ = MakeTempDir("e4fs_dirw_");
    ASSERT_FALSE(dir_.empty());
    img_ = dir_ + "/img";
  }
  void TearDown() override {
    fs_.reset();
    if (!dir_.empty()) RunCommand("rm -rf '" + dir_ + "'");
  }

  // Makes and opens the image; finds the inodes of the tree above.
  void MakeImage(const std::string& options, const std::string& size,
                 int pool_mib) {
    const std::string src = dir_ + "/src";
    ASSERT_EQ(
        RunCommand("mkdir -p '" + src + "/d' '" + src + "/e/sub'").exit_code,
        0);
    for (int i = 0; i < kFiles; ++i) {
      std::ofstream(src + "/f" + std::to_string(i)) << "file " << i << "\n";
    }
    {
      std::ofstream pool(src + "/pool", std::ios::binary);
      const std::string mib(1 << 20, 'p');
      for (int i = 0; i < pool_mib; ++i) pool << mib;
    }
    const auto made = RunCommand("/usr/sbin/mke2fs -q -F -t ext4 " + options +
                                 " -d '" + src + "' '" + img_ + "' " + size);
    ASSERT_EQ(made.exit_code, 0) << made.output;
    OpenImage();
    for (int i = 0; i < kFiles; ++i) {
      ASSERT_OK_AND_ASSIGN(
          files_[i], fs_->Lookup(format::kRootDirIno, "f" + std::to_string(i)));
    }
    ASSERT_OK_AND_ASSIGN(d_, fs_->Lookup(format::kRootDirIno, "d"));
    ASSERT_OK_AND_ASSIGN(e_, fs_->Lookup(format::kRootDirIno, "e"));
    ASSERT_OK_AND_ASSIGN(sub_, fs_->Lookup(e_, "sub"));
    ASSERT_OK_AND_ASSIGN(pool_ino_, fs_->Lookup(format::kRootDirIno, "pool"));
  }

  void OpenImage() {
    ASSERT_OK_AND_ASSIGN(fs_, Fs::Open(img_));
    tx_ = std::make_unique<Transaction>(fs_->cache());
  }

  // Opens targets for the pool and for /d.
  void OpenTargets() {
    ASSERT_OK_AND_ASSIGN(pool_, Pool::Open(*fs_, *tx_, pool_ino_));
    ASSERT_OK_AND_ASSIGN(target_, DirTarget::Open(*fs_, *tx_, d_, pool_.get()));
  }

  // Adds `name` -> files_[file] to /d.
  absl::Status Add(DirTarget& dir, const std::string& name, int file) {
    E4_RETURN_IF_ERROR(
        AddEntry(*tx_, dir.ctx(), dir, name, files_[file], kRegMode));
    ++links_[files_[file]];
    expected_[dir.ino()][name] = files_[file];
    return absl::OkStatus();
  }

  absl::Status Remove(DirTarget& dir, const std::string& name) {
    E4_RETURN_IF_ERROR(RemoveEntry(*tx_, dir.ctx(), dir, name));
    --links_[expected_[dir.ino()][name]];
    expected_[dir.ino()].erase(name);
    return absl::OkStatus();
  }

  absl::Status Replace(DirTarget& dir, const std::string& name, int file) {
    E4_RETURN_IF_ERROR(
        ReplaceEntry(*tx_, dir.ctx(), dir, name, files_[file], kRegMode));
    --links_[expected_[dir.ino()][name]];
    ++links_[files_[file]];
    expected_[dir.ino()][name] = files_[file];
    return absl::OkStatus();
  }

  // Writes inodes (targets, pool, link counts) and commits.
  void Sync(std::initializer_list<DirTarget*> dirs) {
    for (DirTarget* dir : dirs) ASSERT_OK(dir->Sync(*tx_));
    if (pool_ != nullptr) ASSERT_OK(pool_->Sync(*tx_));
    for (auto& [ino, delta] : links_) {
      if (delta != 0) ASSERT_OK(fs_->AddLinks(*tx_, ino, delta));
    }
    links_.clear();
    ASSERT_OK(tx_->Commit());
  }

  // Lists and looks up every name of `dir` through the read side.
  void CheckDirectory(uint32_t dir, uint32_t parent) {
    std::map<std::string, uint32_t> want = expected_[dir];
    want["."] = dir;
    want[".."] = parent;
    ASSERT_OK_AND_ASSIGN(const auto listed, fs_->List(dir));
    EXPECT_EQ(listed.size(), want.size());
    EXPECT_TRUE(listed == want) << "listing differs";
    for (const auto& [name, ino] : want) {
      ASSERT_OK_AND_ASSIGN(const uint32_t found, fs_->Lookup(dir, name));
      ASSERT_EQ(found, ino) << name;
    }
  }

  // Closes the image and runs e2fsck -fn.
  void Fsck() {
    tx_.reset();
    target_.reset();
    pool_.reset();
    fs_.reset();
    const auto result = RunCommand("/usr/sbin/e2fsck -fn '" + img_ + "'");
    EXPECT_EQ(result.exit_code, 0) << result.output;
  }

  // debugfs's listing of `path` matches what the tests expect of `dir`.
  void CheckDebugfs(const std::string& path, uint32_t dir, uint32_t parent) {
    std::map<std::string, uint32_t> want = expected_[dir];
    want["."] = dir;
    want[".."] = parent;
    const auto listed = DebugfsList(img_, path);
    EXPECT_EQ(listed.size(), want.size());
    EXPECT_TRUE(listed == want) << "debugfs listing differs";
  }

  // The root of an htree directory through the transaction.
  absl::StatusOr<format::DxRoot> ReadRoot(DirTarget& dir,
                                          std::vector<uint8_t>* copy) {
    E4_ASSIGN_OR_RETURN(const uint64_t block, dir.PhysicalBlock(*tx_, 0));
    E4_ASSIGN_OR_RETURN(Bytes bytes, tx_->Read(block));
    copy->assign(bytes.begin(), bytes.end());
    return format::ParseDxRoot(*copy, dir.ctx().metadata_csum,
                               dir.ctx().large_dir);
  }

  std::string dir_;
  std::string img_;
  std::unique_ptr<Fs> fs_;
  std::unique_ptr<Transaction> tx_;
  std::unique_ptr<Pool> pool_;
  std::unique_ptr<DirTarget> target_;
  uint32_t files_[kFiles] = {};
  uint32_t d_ = 0, e_ = 0, sub_ = 0, pool_ino_ = 0;
  std::map<uint32_t, int> links_;
  std::map<uint32_t, std::map<std::string, uint32_t>> expected_;
};

// ---------------------------------------------------------------------------
// Layouts every scenario runs on.

struct Layout {
  const char* label;
  const char* options;
  int index_levels_for_5000;  // indirect_levels after 5000 short names
};

void PrintTo(const Layout& layout, std::ostream* os) { *os << layout.label; }

class LayoutTest : public DirectoryWriterTest,
                   public ::testing::WithParamInterface<Layout> {
 protected:
  void Make() {
    MakeImage(GetParam().options, "64M", 24);
    if (HasFatalFailure()) return;
    OpenTargets();
  }
};

TEST_P(LayoutTest, LinearEntriesAndErrors) {
  Make();
  if (HasFatalFailure() || IsSkipped()) return;
  DirTarget& d = *target_;
  ASSERT_OK_AND_ASSIGN(const bool empty_before, IsEmpty(*tx_, d.ctx(), d));
  EXPECT_TRUE(empty_before);
  for (int i = 0; i < 10; ++i) ASSERT_OK(Add(d, Name("file_", i), i % kFiles));
  EXPECT_EQ(d.BlockCount(), 1u);
  EXPECT_FALSE(d.ctx().htree);

  auto add = [&](std::string_view name) {
    return ErrnoOf(AddEntry(*tx_, d.ctx(), d, name, files_[0], kRegMode));
  };
  EXPECT_EQ(add("file_3"), EEXIST);
  EXPECT_EQ(add(""), EINVAL);
  EXPECT_EQ(add("."), EINVAL);
  EXPECT_EQ(add(".."), EINVAL);
  EXPECT_EQ(add("a/b"), EINVAL);
  EXPECT_EQ(add(std::string("a\0b", 3)), EINVAL);
  EXPECT_EQ(add(std::string(256, 'n')), ENAMETOOLONG);
  EXPECT_EQ(ErrnoOf(AddEntry(*tx_, d.ctx(), d, "zero", 0, kRegMode)), EINVAL);
  EXPECT_EQ(ErrnoOf(RemoveEntry(*tx_, d.ctx(), d, "missing")), ENOENT);
  EXPECT_EQ(ErrnoOf(RemoveEntry(*tx_, d.ctx(), d, "..")), EINVAL);
  EXPECT_EQ(
      ErrnoOf(ReplaceEntry(*tx_, d.ctx(), d, "missing", files_[0], kRegMode)),
      ENOENT);

  ASSERT_OK(Remove(d, "file_0"));  // the first after ".." merges into it
  ASSERT_OK(Remove(d, "file_4"));
  ASSERT_OK(Remove(d, "file_9"));  // the last
  ASSERT_OK(Replace(d, "file_5", 7));
  ASSERT_OK(Add(d, "again_0", 1));
  ASSERT_OK(Add(d, std::string(255, 'L'), 2));
  ASSERT_OK_AND_ASSIGN(const bool empty_after, IsEmpty(*tx_, d.ctx(), d));
  EXPECT_FALSE(empty_after);
  EXPECT_EQ(d.BlockCount(), 1u);
  Sync({&d});
  CheckDirectory(d_, format::kRootDirIno);
  Fsck();
  CheckDebugfs("/d", d_, format::kRootDirIno);
}

TEST_P(LayoutTest, FullBlockBecomesHtree) {
  Make();
  if (HasFatalFailure() || IsSkipped()) return;
  DirTarget& d = *target_;
  int added = 0;
  while (!d.ctx().htree && added < 5000) {
    ASSERT_OK(Add(d, Name("entry_", added), added % kFiles));
    ++added;
  }
  ASSERT_TRUE(d.ctx().htree);
  EXPECT_TRUE(d.indexed());
  EXPECT_EQ(d.BlockCount(), 3u);
  std::vector<uint8_t> root_bytes;
  ASSERT_OK_AND_ASSIGN(const format::DxRoot root, ReadRoot(d, &root_bytes));
  EXPECT_EQ(root.indirect_levels, 0);
  EXPECT_EQ(root.entries.count(), 2);
  EXPECT_EQ(root.hash_version, fs_->sb().def_hash_version);
  EXPECT_EQ(root.dot_inode, d_);
  EXPECT_EQ(root.dotdot_inode, format::kRootDirIno);
  for (int i = 0; i < 20; ++i, ++added) {
    ASSERT_OK(Add(d, Name("entry_", added), added % kFiles));
  }
  EXPECT_EQ(ErrnoOf(AddEntry(*tx_, d.ctx(), d, "entry_1", files_[0], kRegMode)),
            EEXIST);
  Sync({&d});
  CheckDirectory(d_, format::kRootDirIno);
  Fsck();
  CheckDebugfs("/d", d_, format::kRootDirIno);
  EXPECT_NE(DebugfsHtree(img_, "/d").find("Indirect levels: 0"),
            std::string::npos);
}

TEST_P(LayoutTest, ThousandsOfEntries) {
  Make();
  if (HasFatalFailure() || IsSkipped()) return;
  DirTarget& d = *target_;
  constexpr int kCount = 5000;
  for (int i = 0; i < kCount; ++i) {
    ASSERT_OK(Add(d, Name("name_", i, 24), i % kFiles));
    if (i % 1000 == 999) Sync({&d});
  }
  std::vector<uint8_t> root_bytes;
  ASSERT_OK_AND_ASSIGN(const format::DxRoot root, ReadRoot(d, &root_bytes));
  EXPECT_EQ(root.indirect_levels, GetParam().index_levels_for_5000);
  Sync({&d});
  CheckDirectory(d_, format::kRootDirIno);

  // Remove half, then put them back pointing elsewhere.
  for (int i = 0; i < kCount; i += 2)
    ASSERT_OK(Remove(d, Name("name_", i, 24)));
  const uint32_t blocks = d.BlockCount();
  Sync({&d});
  CheckDirectory(d_, format::kRootDirIno);
  EXPECT_EQ(ErrnoOf(fs_->Lookup(d_, Name("name_", 42, 24)).status()), ENOENT);
  for (int i = 0; i < kCount; i += 2) {
    ASSERT_OK(Add(d, Name("name_", i, 24), (i + 3) % kFiles));
  }
  EXPECT_LE(d.BlockCount(), blocks + blocks / 4);
  for (int i = 1; i < kCount; i += 10) {
    ASSERT_OK(Replace(d, Name("name_", i, 24), (i + 5) % kFiles));
  }
  ASSERT_OK_AND_ASSIGN(const bool empty, IsEmpty(*tx_, d.ctx(), d));
  EXPECT_FALSE(empty);
  Sync({&d});
  CheckDirectory(d_, format::kRootDirIno);
  Fsck();
  CheckDebugfs("/d", d_, format::kRootDirIno);
  EXPECT_NE(DebugfsHtree(img_, "/d")
                .find("Indirect levels: " +
                      std::to_string(GetParam().index_levels_for_5000)),
            std::string::npos);
}

TEST_P(LayoutTest, EmptiedHtreeIsEmpty) {
  Make();
  if (HasFatalFailure() || IsSkipped()) return;
  DirTarget& d = *target_;
  for (int i = 0; i < 600; ++i) ASSERT_OK(Add(d, Name("gone_", i), i % kFiles));
  EXPECT_TRUE(d.ctx().htree);
  ASSERT_OK_AND_ASSIGN(const bool full, IsEmpty(*tx_, d.ctx(), d));
  EXPECT_FALSE(full);
  for (int i = 599; i >= 0; --i) ASSERT_OK(Remove(d, Name("gone_", i)));
  ASSERT_OK_AND_ASSIGN(const bool empty, IsEmpty(*tx_, d.ctx(), d));
  EXPECT_TRUE(empty);
  // Re-adding reuses the leaves.
  const uint32_t blocks = d.BlockCount();
  for (int i = 0; i < 100; ++i) ASSERT_OK(Add(d, Name("back_", i), i % kFiles));
  EXPECT_EQ(d.BlockCount(), blocks);
  Sync({&d});
  CheckDirectory(d_, format::kRootDirIno);
  Fsck();
  CheckDebugfs("/d", d_, format::kRootDirIno);
}

// Moves /e/sub to /d/moved after growing sub into an htree: the entry moves,
// sub's ".." changes, and the parents' link counts follow.
TEST_P(LayoutTest, RenameAcrossDirectories) {
  Make();
  if (HasFatalFailure() || IsSkipped()) return;
  DirTarget& d = *target_;
  ASSERT_OK_AND_ASSIGN(auto e, DirTarget::Open(*fs_, *tx_, e_, nullptr));
  ASSERT_OK_AND_ASSIGN(auto sub,
                       DirTarget::Open(*fs_, *tx_, sub_, pool_.get()));
  for (int i = 0; i < 400; ++i) {
    ASSERT_OK(Add(*sub, Name("inner_", i), i % kFiles));
  }
  EXPECT_TRUE(sub->ctx().htree);
  for (int i = 0; i < 5; ++i) ASSERT_OK(Add(d, Name("file_", i), i));

  ASSERT_OK(AddEntry(*tx_, d.ctx(), d, "moved", sub_, kDirMode));
  ASSERT_OK(RemoveEntry(*tx_, e->ctx(), *e, "sub"));
  ASSERT_OK(SetParent(*tx_, sub->ctx(), *sub, d_));
  ++links_[d_];
  --links_[e_];
  expected_[d_]["moved"] = sub_;
  ASSERT_OK_AND_ASSIGN(const bool e_empty, IsEmpty(*tx_, e->ctx(), *e));
  EXPECT_TRUE(e_empty);
  Sync({&d, e.get(), sub.get()});
  CheckDirectory(d_, format::kRootDirIno);
  CheckDirectory(e_, format::kRootDirIno);
  CheckDirectory(sub_, d_);
  e.reset();
  sub.reset();
  Fsck();
  CheckDebugfs("/d", d_, format::kRootDirIno);
  CheckDebugfs("/d/moved", sub_, d_);
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, LayoutTest,
    ::testing::Values(Layout{"csum_1k", "-b 1024", 1},
                      Layout{"nocsum_1k", "-b 1024 -O ^metadata_csum", 1},
                      Layout{"csum_4k", "-b 4096", 0},
                      Layout{"nofiletype_1k",
                             "-b 1024 -O ^metadata_csum,^filetype", 1}),
    [](const ::testing::TestParamInfo<Layout>& info) {
      return std::string(info.param.label);
    });

// ---------------------------------------------------------------------------

// Without dir_index a directory stays linear: new blocks are appended, and
// space freed by removals is reused.
TEST_F(DirectoryWriterTest, NoDirIndexStaysLinear) {
  MakeImage("-b 1024 -O ^dir_index", "32M", 8);
  if (HasFatalFailure() || IsSkipped()) return;
  OpenTargets();
  DirTarget& d = *target_;
  for (int i = 0; i < 400; ++i)
    ASSERT_OK(Add(d, Name("linear_", i), i % kFiles));
  EXPECT_FALSE(d.ctx().htree);
  EXPECT_FALSE(d.indexed());
  const uint32_t blocks = d.BlockCount();
  EXPECT_GT(blocks, 5u);
  for (int i = 0; i < 400; i += 4) ASSERT_OK(Remove(d, Name("linear_", i)));
  for (int i = 0; i < 100; ++i) {
    // As short as the shortest removed name: every freed record fits one.
    ASSERT_OK(Add(d, Name("r", 100 + i, 8), i % kFiles));
  }
  EXPECT_EQ(d.BlockCount(), blocks);
  Sync({&d});
  CheckDirectory(d_, format::kRootDirIno);
  Fsck();
  CheckDebugfs("/d", d_, format::kRootDirIno);
}

// Names whose hashes collide: leaf splits put equal hashes on both sides
// and mark the index entry with the continuation bit; every name stays
// reachable.
TEST_F(DirectoryWriterTest, HashCollisionsStraddleLeaves) {
  MakeImage("-b 1024", "64M", 24);
  if (HasFatalFailure() || IsSkipped()) return;
  OpenTargets();
  DirTarget& d = *target_;
  const DirectoryContext& ctx = d.ctx();
  int version = fs_->sb().def_hash_version;
  if (version <= format::kDxHashTea && ctx.hash_unsigned) version += 3;

  // Pairs of long names with equal major hashes (a birthday search).
  constexpr int kPairs = 60;
  std::vector<std::pair<std::string, std::string>> pairs;
  std::unordered_map<uint32_t, int> seen;
  for (int i = 0; pairs.size() < kPairs && i < 3000000; ++i) {
    const std::string name = Name("c", i, 230);
    ASSERT_OK_AND_ASSIGN(const format::DxHash hash,
                         format::ComputeDxHash(name, version, ctx.hash_seed));
    auto [it, inserted] = seen.emplace(hash.major, i);
    if (!inserted && it->second >= 0) {
      pairs.emplace_back(Name("c", it->second, 230), name);
      it->second = -1;
    }
  }
  ASSERT_EQ(pairs.size(), static_cast<size_t>(kPairs));

  // Fill the directory so that every pair lands in leaves that split.
  std::vector<std::string> names;
  for (const auto& pair : pairs) {
    names.push_back(pair.first);
    names.push_back(pair.second);
  }
  for (int i = 0; i < 600; ++i) names.push_back(Name("filler_", i, 230));
  std::mt19937 random(7);
  std::shuffle(names.begin(), names.end(), random);
  for (size_t i = 0; i < names.size(); ++i) {
    ASSERT_OK(Add(d, names[i], static_cast<int>(i % kFiles)));
  }

  // Some index entry carries the continuation bit.
  int continued = 0;
  std::vector<uint8_t> root_bytes;
  ASSERT_OK_AND_ASSIGN(const format::DxRoot root, ReadRoot(d, &root_bytes));
  std::vector<std::pair<uint32_t, format::DxEntries>> pending = {
      {root.indirect_levels, root.entries}};
  std::vector<std::vector<uint8_t>> node_copies;
  node_copies.reserve(1024);
  while (!pending.empty()) {
    auto [levels_below, entries] = pending.back();
    pending.pop_back();
    for (size_t i = 1; i < entries.count(); ++i) {
      if (entries.hash(i) & 1) ++continued;
    }
    if (levels_below == 0) continue;
    for (size_t i = 0; i < entries.count(); ++i) {
      ASSERT_OK_AND_ASSIGN(const uint64_t block,
                           d.PhysicalBlock(*tx_, entries.block(i)));
      ASSERT_OK_AND_ASSIGN(Bytes bytes, tx_->Read(block));
      node_copies.emplace_back(bytes.begin(), bytes.end());
      ASSERT_OK_AND_ASSIGN(
          const format::DxEntries child,
          format::ParseDxNode(node_copies.back(), ctx.metadata_csum));
      pending.emplace_back(levels_below - 1, child);
    }
  }
  EXPECT_GT(continued, 0);

  // Removing one name of each pair keeps the other reachable.
  for (int i = 0; i < kPairs; i += 2) ASSERT_OK(Remove(d, pairs[i].first));
  for (int i = 1; i < kPairs; i += 2) ASSERT_OK(Remove(d, pairs[i].second));
  Sync({&d});
  CheckDirectory(d_, format::kRootDirIno);
  Fsck();
  CheckDebugfs("/d", d_, format::kRootDirIno);
}

// Fills a directory of 1 KiB blocks with 255-byte names until its index
// needs a third level: with large_dir it grows one; without, the insert that
// needs it fails with ENOSPC and the directory stays intact.
class IndexDepthTest : public DirectoryWriterTest,
                       public ::testing::WithParamInterface<bool> {};

TEST_P(IndexDepthTest, ThirdLevel) {
  const bool large_dir = GetParam();
  MakeImage(std::string("-b 1024 -O sparse_super2,^resize_inode") +
                (large_dir ? ",large_dir" : "") + " -E num_backup_sb=0",
            "128M", 64);
  if (HasFatalFailure() || IsSkipped()) return;
  OpenTargets();
  DirTarget& d = *target_;
  std::vector<uint8_t> root_bytes;
  int added = 0;
  int enospc = 0;
  for (; added < 80000; ++added) {
    const std::string name = Name("level_", added, 255);
    absl::Status status =
        AddEntry(*tx_, d.ctx(), d, name, files_[added % kFiles], kRegMode);
    if (!status.ok()) {
      // A full index is found before anything changes: the transaction
      // holds only the earlier inserts.
      ASSERT_EQ(ErrnoOf(status), ENOSPC) << status;
      enospc = added;
      break;
    }
    ++links_[files_[added % kFiles]];
    expected_[d_][name] = files_[added % kFiles];
    if (added % 1000 == 999) {
      Sync({&d});
      ASSERT_OK_AND_ASSIGN(const format::DxRoot root, ReadRoot(d, &root_bytes));
      if (root.indirect_levels == 2) break;
    }
  }
  ASSERT_OK_AND_ASSIGN(const format::DxRoot root, ReadRoot(d, &root_bytes));
  if (large_dir) {
    EXPECT_EQ(root.indirect_levels, 2);
    EXPECT_EQ(enospc, 0);
  } else {
    EXPECT_EQ(root.indirect_levels, 1);
    EXPECT_GT(enospc, 0);
  }
  Sync({&d});
  CheckDirectory(d_, format::kRootDirIno);
  Fsck();
  EXPECT_NE(DebugfsHtree(img_, "/d")
                .find("Indirect levels: " + std::to_string(large_dir ? 2 : 1)),
            std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(LargeDir, IndexDepthTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "large_dir" : "no_large_dir";
                         });

// ---------------------------------------------------------------------------
// Inline directories.

class InlineTest : public DirectoryWriterTest {
 protected:
  void MakeInline() {
    const std::string src = dir_ + "/src";
    ASSERT_EQ(
        RunCommand("mkdir -p '" + src + "/i/s' '" + src + "/j'").exit_code, 0);
    for (int i = 0; i < kFiles; ++i) {
      std::ofstream(src + "/f" + std::to_string(i)) << "file " << i << "\n";
    }
    {
      std::ofstream pool(src + "/pool", std::ios::binary);
      pool << std::string(4 << 20, 'p');
    }
    const auto made = RunCommand(
        "/usr/sbin/mke2fs -q -F -t ext4 -b 1024 -O inline_data -d '" + src +
        "' '" + img_ + "' 32M");
    ASSERT_EQ(made.exit_code, 0) << made.output;
    OpenImage();
    for (int i = 0; i < kFiles; ++i) {
      ASSERT_OK_AND_ASSIGN(
          files_[i], fs_->Lookup(format::kRootDirIno, "f" + std::to_string(i)));
    }
    ASSERT_OK_AND_ASSIGN(i_, fs_->Lookup(format::kRootDirIno, "i"));
    ASSERT_OK_AND_ASSIGN(j_, fs_->Lookup(format::kRootDirIno, "j"));
    ASSERT_OK_AND_ASSIGN(s_, fs_->Lookup(i_, "s"));
    ASSERT_OK_AND_ASSIGN(pool_ino_, fs_->Lookup(format::kRootDirIno, "pool"));
    expected_[i_]["s"] = s_;
  }

  absl::StatusOr<format::Inode> InlineInode(uint32_t ino) {
    E4_ASSIGN_OR_RETURN(format::Inode inode, fs_->ReadInode(*tx_, ino));
    if (!(inode.flags & format::kInodeFlagInlineData) || inode.size != 60) {
      return absl::FailedPreconditionError("not an inline directory");
    }
    return inode;
  }

  uint32_t i_ = 0, j_ = 0, s_ = 0;
};

TEST_F(InlineTest, AddRemoveReplaceMove) {
  MakeInline();
  if (HasFatalFailure() || IsSkipped()) return;
  ASSERT_OK_AND_ASSIGN(format::Inode i, InlineInode(i_));
  ASSERT_OK_AND_ASSIGN(format::Inode j, InlineInode(j_));
  ASSERT_OK_AND_ASSIGN(format::Inode s, InlineInode(s_));
  const DirectoryContext ctx = fs_->Context(j_, j);
  ASSERT_OK_AND_ASSIGN(const bool i_empty, IsInlineEmpty(i.block, Bytes()));
  ASSERT_OK_AND_ASSIGN(const bool j_empty, IsInlineEmpty(j.block, Bytes()));
  EXPECT_FALSE(i_empty);
  EXPECT_TRUE(j_empty);

  // 56 bytes hold four 12-byte records.
  int added = 0;
  while (true) {
    const std::string name = "n" + std::to_string(added);
    ASSERT_OK_AND_ASSIGN(
        const bool fit,
        AddInlineEntry(ctx, j.block, Bytes(), name, files_[added], kRegMode));
    if (!fit) break;
    ++links_[files_[added]];
    expected_[j_][name] = files_[added];
    ++added;
    ASSERT_LT(added, kFiles);
  }
  EXPECT_EQ(added, 4);
  EXPECT_EQ(
      ErrnoOf(AddInlineEntry(ctx, j.block, Bytes(), "n0", files_[0], kRegMode)
                  .status()),
      EEXIST);

  ASSERT_OK_AND_ASSIGN(const bool in_xattr,
                       RemoveInlineEntry(ctx, j.block, MutableBytes(), "n1"));
  EXPECT_FALSE(in_xattr);
  --links_[files_[1]];
  expected_[j_].erase("n1");
  ASSERT_OK_AND_ASSIGN(const bool replaced_in_xattr,
                       ReplaceInlineEntry(ctx, j.block, MutableBytes(), "n2",
                                          files_[6], kRegMode));
  EXPECT_FALSE(replaced_in_xattr);
  --links_[files_[2]];
  ++links_[files_[6]];
  expected_[j_]["n2"] = files_[6];
  EXPECT_EQ(
      ErrnoOf(RemoveInlineEntry(ctx, j.block, MutableBytes(), "n1").status()),
      ENOENT);

  // Move i/s to j/t.
  ASSERT_OK_AND_ASSIGN(const bool moved, AddInlineEntry(ctx, j.block, Bytes(),
                                                        "t", s_, kDirMode));
  ASSERT_TRUE(moved);
  ASSERT_OK(RemoveInlineEntry(ctx, i.block, MutableBytes(), "s").status());
  ASSERT_OK(SetInlineParent(s.block, j_));
  expected_[j_]["t"] = s_;
  expected_[i_].erase("s");
  ASSERT_OK_AND_ASSIGN(const bool i_now_empty, IsInlineEmpty(i.block, Bytes()));
  EXPECT_TRUE(i_now_empty);
  i.links_count--;
  j.links_count++;
  ASSERT_OK(fs_->WriteInode(*tx_, i_, i));
  ASSERT_OK(fs_->WriteInode(*tx_, j_, j));
  ASSERT_OK(fs_->WriteInode(*tx_, s_, s));
  Sync({});
  CheckDirectory(i_, format::kRootDirIno);
  CheckDirectory(j_, format::kRootDirIno);
  CheckDirectory(s_, j_);
  Fsck();
  CheckDebugfs("/j", j_, format::kRootDirIno);
  CheckDebugfs("/j/t", s_, j_);
}

// A full inline directory becomes a block directory, then keeps growing.
TEST_F(InlineTest, ConvertToBlockDirectory) {
  MakeInline();
  if (HasFatalFailure() || IsSkipped()) return;
  ASSERT_OK_AND_ASSIGN(pool_, Pool::Open(*fs_, *tx_, pool_ino_));
  ASSERT_OK_AND_ASSIGN(format::Inode j, InlineInode(j_));
  DirectoryContext ctx = fs_->Context(j_, j);
  int added = 0;
  for (;; ++added) {
    const std::string name = "entry" + std::to_string(added);
    ASSERT_OK_AND_ASSIGN(const bool fit,
                         AddInlineEntry(ctx, j.block, Bytes(), name,
                                        files_[added % kFiles], kRegMode));
    if (!fit) break;
    ++links_[files_[added % kFiles]];
    expected_[j_][name] = files_[added % kFiles];
  }
  EXPECT_EQ(added, 3);

  ASSERT_OK_AND_ASSIGN(const uint64_t block, pool_->Take());
  ASSERT_OK_AND_ASSIGN(MutableBytes fresh, tx_->ModifyNew(block));
  ASSERT_OK(ConvertInlineToBlock(*tx_, ctx, j.block, Bytes(), fresh, j_));
  // The inode: an extent root mapping that block; no system.data.
  j.flags =
      (j.flags & ~format::kInodeFlagInlineData) | format::kInodeFlagExtents;
  format::ExtentNode node;
  node.header.max = 4;
  node.leaves.push_back(format::ExtentLeaf{0, 1, false, block});
  j.block.fill(0);
  format::SerializeExtentNode(node, j.block);
  j.size = fs_->block_size();
  j.blocks = fs_->block_size() / 512;
  {
    ASSERT_OK_AND_ASSIGN(MutableBytes raw, fs_->RawInode(*tx_, j_));
    const size_t xattrs = 128 + j.extra_isize;
    std::fill(raw.begin() + xattrs, raw.end(), 0);
  }
  ASSERT_OK(fs_->WriteInode(*tx_, j_, j));
  ASSERT_OK(pool_->Sync(*tx_));
  ASSERT_OK(tx_->Commit());

  // Continue as a block directory, far enough to become an htree.
  ASSERT_OK_AND_ASSIGN(auto target,
                       DirTarget::Open(*fs_, *tx_, j_, pool_.get()));
  for (int i = 0; i < 200; ++i) {
    ASSERT_OK(Add(*target, "more" + std::to_string(i), i % kFiles));
  }
  EXPECT_TRUE(target->ctx().htree);
  Sync({target.get()});
  CheckDirectory(j_, format::kRootDirIno);
  target.reset();
  Fsck();
  CheckDebugfs("/j", j_, format::kRootDirIno);
}

// InitDirectoryBlock lays out "." and "..", and the block reads back.
TEST(InitDirectoryBlockTest, DotAndDotDot) {
  for (bool csum : {false, true}) {
    DirectoryContext ctx;
    ctx.ino = 12;
    ctx.block_size = 1024;
    ctx.metadata_csum = csum;
    ctx.inode_checksum_seed = 0x1234;
    ctx.filetype = true;
    std::vector<uint8_t> block(1024, 0xAA);
    ASSERT_OK(InitDirectoryBlock(ctx, block, 12, 2));
    ASSERT_OK_AND_ASSIGN(const auto entries,
                         format::ParseDirBlock(block, csum));
    ASSERT_EQ(entries.size(), 2u);
    EXPECT_EQ(entries[0].name, ".");
    EXPECT_EQ(entries[0].inode, 12u);
    EXPECT_EQ(entries[0].rec_len, 12u);
    EXPECT_EQ(entries[1].name, "..");
    EXPECT_EQ(entries[1].inode, 2u);
    EXPECT_EQ(entries[1].rec_len, csum ? 1000u : 1012u);
    if (csum) ASSERT_OK(format::VerifyDirBlockChecksum(block, 0x1234));
  }
}

// ---------------------------------------------------------------------------
// In memory: a model-checked random workload and hostile blocks.

// A directory whose blocks are handed out in order from a memory device.
class MemTarget : public DirectoryWriteTarget {
 public:
  MemTarget(uint64_t first, uint64_t end, bool can_index)
      : next_(first), end_(end), can_index_(can_index) {}
  uint32_t BlockCount() const override {
    return static_cast<uint32_t>(blocks_.size());
  }
  absl::StatusOr<uint64_t> PhysicalBlock(Transaction&,
                                         uint32_t logical) override {
    if (logical >= blocks_.size()) return Corrupt("past the end");
    return blocks_[logical];
  }
  absl::StatusOr<uint64_t> AppendBlock(Transaction&) override {
    if (next_ >= end_) return ErrnoError(ENOSPC, "device full");
    blocks_.push_back(next_);
    return next_++;
  }
  void SetIndexed(bool indexed) override { indexed_ = indexed; }
  bool CanIndex() const override { return can_index_; }
  bool indexed() const { return indexed_; }
  const std::vector<uint64_t>& blocks() const { return blocks_; }

 private:
  std::vector<uint64_t> blocks_;
  uint64_t next_;
  uint64_t end_;
  bool can_index_;
  bool indexed_ = false;
};

class MemSource : public DirectoryBlockSource {
 public:
  MemSource(io::BlockCache& cache, const MemTarget& target)
      : cache_(cache), target_(target) {}
  absl::StatusOr<std::shared_ptr<const std::vector<uint8_t>>> ReadBlock(
      uint32_t logical) override {
    if (logical >= target_.blocks().size()) return Corrupt("past the end");
    return cache_.Read(target_.blocks()[logical]);
  }
  uint32_t BlockCount() const override { return target_.BlockCount(); }

 private:
  io::BlockCache& cache_;
  const MemTarget& target_;
};

constexpr uint32_t kMemBlockSize = 1024;
constexpr uint64_t kMemBlocks = 8192;

class MemDir {
 public:
  MemDir(bool csum, bool can_index, uint64_t blocks = kMemBlocks)
      : device_(
            io::MemoryDevice(std::vector<uint8_t>(kMemBlockSize * blocks, 0))),
        cache_(*device_, kMemBlockSize, blocks, 256),
        tx_(cache_),
        target_(16, blocks, can_index) {
    ctx_.ino = 12;
    ctx_.block_size = kMemBlockSize;
    ctx_.metadata_csum = csum;
    ctx_.inode_checksum_seed = 0x5eed1234;
    ctx_.hash_seed = {0x01020304, 0x05060708, 0x090a0b0c, 0x0d0e0f10};
    ctx_.default_hash_version = format::kDxHashHalfMd4;
    ctx_.filetype = true;
  }

  absl::Status Init() {
    E4_ASSIGN_OR_RETURN(const uint64_t block, target_.AppendBlock(tx_));
    E4_ASSIGN_OR_RETURN(MutableBytes bytes, tx_.ModifyNew(block));
    return InitDirectoryBlock(ctx_, bytes, 12, 2);
  }

  Transaction& tx() { return tx_; }
  DirectoryContext& ctx() { return ctx_; }
  MemTarget& target() { return target_; }
  io::BlockCache& cache() { return cache_; }

  absl::StatusOr<std::map<std::string, uint32_t>> List() {
    E4_RETURN_IF_ERROR(tx_.Commit());
    MemSource source(cache_, target_);
    std::map<std::string, uint32_t> names;
    E4_RETURN_IF_ERROR(
        ListDirectory(ctx_, source, 0, [&](const DirEntry& entry) {
          names[entry.name] = entry.ino;
          return true;
        }));
    return names;
  }

  absl::StatusOr<uint32_t> Lookup(std::string_view name) {
    E4_RETURN_IF_ERROR(tx_.Commit());
    MemSource source(cache_, target_);
    return LookupInDirectory(ctx_, source, name);
  }

  // The block at `logical`, writable (committed state).
  absl::StatusOr<MutableBytes> Raw(uint32_t logical) {
    E4_ASSIGN_OR_RETURN(const uint64_t block,
                        target_.PhysicalBlock(tx_, logical));
    return tx_.Modify(block);
  }

 private:
  std::unique_ptr<io::BlockDevice> device_;
  io::BlockCache cache_;
  Transaction tx_;
  MemTarget target_;
  DirectoryContext ctx_;
};

class RandomWorkloadTest : public ::testing::TestWithParam<bool> {};

// Random adds, removes and replacements against a map, checked through the
// read side's listing and lookups.
TEST_P(RandomWorkloadTest, MatchesModel) {
  MemDir dir(GetParam(), true);
  ASSERT_OK(dir.Init());
  std::mt19937 random(GetParam() ? 11 : 12);
  std::vector<std::string> universe;
  for (int i = 0; i < 4000; ++i) {
    const size_t length = 1 + random() % 80;
    std::string name;
    for (size_t k = 0; k < length; ++k) {
      name.push_back(static_cast<char>('!' + random() % 90));
      if (name.back() == '/') name.back() = '_';
    }
    if (name == "." || name == "..") name += "x";
    universe.push_back(name);
  }
  std::map<std::string, uint32_t> model;
  auto check = [&]() {
    ASSERT_OK_AND_ASSIGN(auto listed, dir.List());
    auto want = model;
    want["."] = 12;
    want[".."] = 2;
    ASSERT_EQ(listed.size(), want.size());
    ASSERT_TRUE(listed == want);
    for (const auto& [name, ino] : want) {
      ASSERT_OK_AND_ASSIGN(const uint32_t found, dir.Lookup(name));
      ASSERT_EQ(found, ino) << name;
    }
    ASSERT_OK_AND_ASSIGN(const bool empty,
                         IsEmpty(dir.tx(), dir.ctx(), dir.target()));
    ASSERT_EQ(empty, model.empty());
  };
  for (int op = 0; op < 30000; ++op) {
    const std::string& name = universe[random() % universe.size()];
    const uint32_t ino = 20 + random() % 1000;
    const bool present = model.count(name) != 0;
    const int choice = random() % 10;
    // Grow for the first half, shrink for the second.
    const bool add_phase = op < 15000 ? choice < 7 : choice < 3;
    if (add_phase) {
      const absl::Status status =
          AddEntry(dir.tx(), dir.ctx(), dir.target(), name, ino, kRegMode);
      if (present) {
        ASSERT_EQ(ErrnoOf(status), EEXIST) << name;
      } else {
        ASSERT_OK(status);
        model[name] = ino;
      }
    } else if (choice == 9) {
      const absl::Status status =
          ReplaceEntry(dir.tx(), dir.ctx(), dir.target(), name, ino, kRegMode);
      if (present) {
        ASSERT_OK(status);
        model[name] = ino;
      } else {
        ASSERT_EQ(ErrnoOf(status), ENOENT) << name;
      }
    } else {
      const absl::Status status =
          RemoveEntry(dir.tx(), dir.ctx(), dir.target(), name);
      if (present) {
        ASSERT_OK(status);
        model.erase(name);
      } else {
        ASSERT_EQ(ErrnoOf(status), ENOENT) << name;
      }
    }
    if (op % 5000 == 4999) {
      check();
      if (HasFatalFailure()) return;
    }
  }
  EXPECT_TRUE(dir.ctx().htree);
  EXPECT_TRUE(dir.target().indexed());
  // Empty it completely.
  for (const auto& [name, ino] : std::map<std::string, uint32_t>(model)) {
    ASSERT_OK(RemoveEntry(dir.tx(), dir.ctx(), dir.target(), name));
    model.erase(name);
  }
  check();
}

INSTANTIATE_TEST_SUITE_P(Checksums, RandomWorkloadTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "csum" : "nocsum";
                         });

TEST(HostileBlocksTest, BadRecordLength) {
  MemDir dir(false, true);
  ASSERT_OK(dir.Init());
  ASSERT_OK(AddEntry(dir.tx(), dir.ctx(), dir.target(), "a", 20, kRegMode));
  ASSERT_OK(dir.tx().Commit());
  ASSERT_OK_AND_ASSIGN(MutableBytes block, dir.Raw(0));
  format::Put16(block, 12 + 4, 6);  // ".." rec_len below the minimum
  EXPECT_EQ(
      ErrnoOf(AddEntry(dir.tx(), dir.ctx(), dir.target(), "b", 21, kRegMode)),
      EUCLEAN);
  EXPECT_EQ(ErrnoOf(RemoveEntry(dir.tx(), dir.ctx(), dir.target(), "a")),
            EUCLEAN);
  EXPECT_EQ(ErrnoOf(SetParent(dir.tx(), dir.ctx(), dir.target(), 5)), EUCLEAN);
  EXPECT_EQ(ErrnoOf(IsEmpty(dir.tx(), dir.ctx(), dir.target()).status()),
            EUCLEAN);
}

TEST(HostileBlocksTest, BadChecksum) {
  MemDir dir(true, true);
  ASSERT_OK(dir.Init());
  ASSERT_OK(AddEntry(dir.tx(), dir.ctx(), dir.target(), "a", 20, kRegMode));
  ASSERT_OK(dir.tx().Commit());
  ASSERT_OK_AND_ASSIGN(MutableBytes block, dir.Raw(0));
  block[30] ^= 1;
  EXPECT_EQ(
      ErrnoOf(AddEntry(dir.tx(), dir.ctx(), dir.target(), "b", 21, kRegMode)),
      EUCLEAN);
  EXPECT_EQ(ErrnoOf(ReplaceEntry(dir.tx(), dir.ctx(), dir.target(), "a", 21,
                                 kRegMode)),
            EUCLEAN);
}

TEST(HostileBlocksTest, IndexCycle) {
  for (bool csum : {false, true}) {
    MemDir dir(csum, true);
    ASSERT_OK(dir.Init());
    for (int i = 0; dir.target().BlockCount() < 4; ++i) {
      ASSERT_OK(AddEntry(dir.tx(), dir.ctx(), dir.target(),
                         "entry" + std::to_string(i), 20, kRegMode));
    }
    ASSERT_TRUE(dir.ctx().htree);
    ASSERT_OK(dir.tx().Commit());
    ASSERT_OK_AND_ASSIGN(MutableBytes root, dir.Raw(0));
    // Every index entry points back at the root.
    const uint32_t count = format::Le16(root, format::kDxRootCountOffset + 2);
    for (uint32_t i = 0; i < count; ++i) {
      format::PutDxEntry(root, format::kDxRootCountOffset, i,
                         format::Le32(root, format::kDxRootCountOffset + 8 * i),
                         0);
    }
    if (csum) ASSERT_OK(format::SetDxChecksum(root, 0x5eed1234));
    EXPECT_EQ(ErrnoOf(AddEntry(dir.tx(), dir.ctx(), dir.target(), "new", 21,
                               kRegMode)),
              EUCLEAN);
    EXPECT_EQ(ErrnoOf(RemoveEntry(dir.tx(), dir.ctx(), dir.target(), "entry1")),
              EUCLEAN);
  }
}

TEST(HostileBlocksTest, NoRoomToGrow) {
  MemDir dir(true, false, 64);  // room for 48 directory blocks
  ASSERT_OK(dir.Init());
  absl::Status status;
  int added = 0;
  for (; added < 1000; ++added) {
    status = AddEntry(dir.tx(), dir.ctx(), dir.target(),
                      Name("full_", added, 200), 20, kRegMode);
    if (!status.ok()) break;
  }
  EXPECT_EQ(ErrnoOf(status), ENOSPC);
  EXPECT_EQ(added, 48 * 4);  // four 208-byte records per 1 KiB block
  EXPECT_EQ(dir.target().BlockCount(), 48u);
  EXPECT_FALSE(dir.ctx().htree);
}

// Inline records in system.data are found, changed in place, and carried
// over by the conversion to a block.
TEST(InlineRegionsTest, SystemDataAndConversion) {
  DirectoryContext ctx;
  ctx.ino = 30;
  ctx.block_size = 1024;
  ctx.metadata_csum = true;
  ctx.inode_checksum_seed = 77;
  ctx.filetype = true;
  std::vector<uint8_t> i_block(60, 0);
  format::Put32(i_block, 0, 2);
  format::WriteDirEntry(i_block, 4, 0, 56, "", 0);
  std::vector<uint8_t> system_data(40, 0);
  format::WriteDirEntry(system_data, 0, 41, 16, "xattr1", format::kFtRegular);
  format::WriteDirEntry(system_data, 16, 42, 24, "xattr2", format::kFtRegular);

  ASSERT_OK_AND_ASSIGN(
      const bool added,
      AddInlineEntry(ctx, i_block, system_data, "inline1", 43, kRegMode));
  EXPECT_TRUE(added);
  EXPECT_EQ(
      ErrnoOf(AddInlineEntry(ctx, i_block, system_data, "xattr2", 44, kRegMode)
                  .status()),
      EEXIST);
  ASSERT_OK_AND_ASSIGN(
      const bool replaced,
      ReplaceInlineEntry(ctx, i_block, system_data, "xattr2", 45, kDirMode));
  EXPECT_TRUE(replaced);
  ASSERT_OK_AND_ASSIGN(const bool removed,
                       RemoveInlineEntry(ctx, i_block, system_data, "xattr1"));
  EXPECT_TRUE(removed);
  ASSERT_OK_AND_ASSIGN(const bool removed_inline,
                       RemoveInlineEntry(ctx, i_block, system_data, "inline1"));
  EXPECT_FALSE(removed_inline);
  ASSERT_OK(AddInlineEntry(ctx, i_block, system_data, "inline2", 46, kRegMode)
                .status());
  ASSERT_OK_AND_ASSIGN(const bool empty, IsInlineEmpty(i_block, system_data));
  EXPECT_FALSE(empty);
  EXPECT_EQ(*LookupInInlineDirectory(ctx, i_block, system_data, "xattr2"), 45u);
  EXPECT_EQ(ErrnoOf(LookupInInlineDirectory(ctx, i_block, system_data, "xattr1")
                        .status()),
            ENOENT);

  MemDir scratch(true, true);
  std::vector<uint8_t> block(1024, 0xEE);
  ASSERT_OK(
      ConvertInlineToBlock(scratch.tx(), ctx, i_block, system_data, block, 30));
  ASSERT_OK(format::VerifyDirBlockChecksum(block, 77));
  ASSERT_OK_AND_ASSIGN(const auto entries, format::ParseDirBlock(block, true));
  std::map<std::string, uint32_t> names;
  for (const auto& entry : entries)
    names[std::string(entry.name)] = entry.inode;
  const std::map<std::string, uint32_t> want = {
      {".", 30}, {"..", 2}, {"inline2", 46}, {"xattr2", 45}};
  EXPECT_TRUE(names == want);
  ASSERT_OK(SetInlineParent(i_block, 9));
  EXPECT_EQ(*LookupInInlineDirectory(ctx, i_block, system_data, ".."), 9u);
  ASSERT_OK(RemoveInlineEntry(ctx, i_block, system_data, "inline2").status());
  ASSERT_OK(RemoveInlineEntry(ctx, i_block, system_data, "xattr2").status());
  ASSERT_OK_AND_ASSIGN(const bool now_empty,
                       IsInlineEmpty(i_block, system_data));
  EXPECT_TRUE(now_empty);
}

}  // namespace
}  // namespace ext4
