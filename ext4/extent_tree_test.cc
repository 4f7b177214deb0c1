// Extent tree changes, checked two ways: logic tests on an in-memory device
// (length limits, the logical limit, ENOSPC leaving the tree unchanged,
// checksums), and tests on images made by mke2fs where the tree is built in
// a real inode and then judged by debugfs (the extents it lists), by the
// read-only extent walker, and by e2fsck -fn, which must find nothing.
//
// The image tests take their blocks from a "pool" file that mke2fs -d wrote:
// its inode gets an empty tree, and a test allocator hands out the pool's
// former blocks (still marked in use in the bitmaps). At each check the
// blocks the allocator still holds are given back with debugfs freeb, so
// e2fsck sees exact bitmaps, and taken again with setb afterwards.
#include "ext4/extent_tree.h"

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "ext4/file_map.h"
#include "ext4/format/checksum.h"
#include "ext4/format/endian.h"
#include "ext4/format/extent.h"
#include "ext4/format/group_descriptor.h"
#include "ext4/format/inode.h"
#include "ext4/format/superblock.h"
#include "ext4/io/block_cache.h"
#include "ext4/io/block_device.h"
#include "ext4/testing/image_tools.h"
#include "ext4/transaction.h"
#include "gtest/gtest.h"

namespace ext4 {
namespace {

using ::ext4::testing::CommandResult;
using ::ext4::testing::HaveTools;
using ::ext4::testing::kDebugfs;
using ::ext4::testing::kE2fsck;
using ::ext4::testing::kMke2fs;
using ::ext4::testing::MakeTempDir;
using ::ext4::testing::RunCommand;
using ::ext4::testing::StderrMode;

constexpr uint64_t kMaxLogical = ExtentTree::kMaxLogical;

// ---------------------------------------------------------------------------
// Logic tests on a memory device.

// Single blocks (tree blocks, mostly) come from a low region that the small
// device holds; runs come from far above it and are never read or written.
// Can be told to fail after a number of allocations.
class RegionAllocator : public BlockAllocator {
 public:
  absl::StatusOr<BlockRun> AllocateBlocks(Transaction&, uint64_t,
                                          uint64_t count, bool) override {
    if (fail_after_ == 0) return ErrnoError(ENOSPC, "test allocator is out");
    if (fail_after_ > 0) --fail_after_;
    BlockRun run;
    if (count == 1) {
      run = BlockRun{next_low_++, 1};
    } else {
      run = BlockRun{next_high_, count};
      next_high_ += count;
    }
    in_use_ += run.count;
    return run;
  }
  absl::Status FreeBlocks(Transaction&, uint64_t first,
                          uint64_t count) override {
    if (first == 0 || count > in_use_) return Corrupt("bad free");
    in_use_ -= count;
    return absl::OkStatus();
  }
  void FailAfter(int n) { fail_after_ = n; }
  // Counts blocks put in place by the test as allocated.
  void Adopt(uint64_t count) { in_use_ += count; }
  uint64_t in_use() const { return in_use_; }

 private:
  uint64_t next_low_ = 16;
  uint64_t next_high_ = 1 << 20;
  uint64_t in_use_ = 0;
  int fail_after_ = -1;
};

class MemoryTreeTest : public ::testing::TestWithParam<bool> {
 protected:
  static constexpr uint32_t kBlockSize = 1024;
  void SetUp() override {
    device_ = io::MemoryDevice(std::vector<uint8_t>(kBlockSize * 4096));
    cache_ = std::make_unique<io::BlockCache>(*device_, kBlockSize,
                                              uint64_t{1} << 40, 256);
    inode_.mode = format::kModeRegular | 0644;
    ExtentTree::InitEmpty(inode_);
    tree_ = std::make_unique<ExtentTree>(inode_, kBlockSize, GetParam(),
                                         0x12345678, alloc_);
  }

  // All extents, through NextExtent.
  std::vector<MappedExtent> Extents(Transaction& tx) {
    std::vector<MappedExtent> out;
    uint64_t at = 0;
    while (true) {
      auto next = tree_->NextExtent(tx, at);
      EXPECT_TRUE(next.ok()) << next.status();
      if (!next.ok() || !next->has_value()) break;
      out.push_back(**next);
      at = (*next)->logical + (*next)->length;
    }
    return out;
  }

  std::unique_ptr<io::BlockDevice> device_;
  std::unique_ptr<io::BlockCache> cache_;
  format::Inode inode_;
  RegionAllocator alloc_;
  std::unique_ptr<ExtentTree> tree_;
};

TEST_P(MemoryTreeTest, InitEmptyMapsNothing) {
  EXPECT_TRUE(inode_.flags & format::kInodeFlagExtents);
  auto root = format::ParseExtentNode(
      format::Bytes(inode_.block.data(), inode_.block.size()), -1);
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(root->header.max, 4);
  EXPECT_EQ(root->header.depth, 0);
  EXPECT_EQ(root->header.entries, 0);
  Transaction tx(*cache_);
  auto m = tree_->Map(tx, 12345);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->physical, 0u);
  EXPECT_EQ(m->length, kMaxLogical - 12345);
  auto next = tree_->NextExtent(tx, 0);
  ASSERT_TRUE(next.ok());
  EXPECT_FALSE(next->has_value());
}

TEST_P(MemoryTreeTest, ExtentLengthLimits) {
  Transaction tx(*cache_);
  auto m = tree_->MapForWrite(tx, 0, 70000, 0, /*unwritten=*/false);
  ASSERT_TRUE(m.ok()) << m.status();
  auto extents = Extents(tx);
  ASSERT_EQ(extents.size(), 3u);
  EXPECT_EQ(extents[0].length, 32768u);
  EXPECT_EQ(extents[1].length, 32768u);
  EXPECT_EQ(extents[2].length, 70000u - 65536u);
  EXPECT_EQ(inode_.blocks, 70000u * 2);

  auto u = tree_->MapForWrite(tx, 100000, 40000, 0, /*unwritten=*/true);
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_TRUE(u->unwritten);
  extents = Extents(tx);
  ASSERT_EQ(extents.size(), 5u);
  EXPECT_EQ(extents[3].length, 32767u);
  EXPECT_EQ(extents[4].length, 40000u - 32767u);
  EXPECT_TRUE(extents[3].unwritten && extents[4].unwritten);

  // A full 32768-block written extent cannot be one unwritten extent.
  ASSERT_TRUE(tree_->MarkUnwritten(tx, 0, 32768).ok());
  extents = Extents(tx);
  ASSERT_GE(extents.size(), 2u);
  EXPECT_EQ(extents[0].length, 32767u);
  EXPECT_TRUE(extents[0].unwritten);
  EXPECT_EQ(extents[1].logical, 32767u);
  EXPECT_TRUE(extents[1].unwritten);

  ASSERT_TRUE(tree_->Remove(tx, 0, UINT64_MAX).ok());
  EXPECT_EQ(inode_.blocks, 0u);
  EXPECT_EQ(alloc_.in_use(), 0u);
  EXPECT_EQ(tree_->depth(), 0);
}

TEST_P(MemoryTreeTest, LogicalLimit) {
  Transaction tx(*cache_);
  auto bad = tree_->MapForWrite(tx, kMaxLogical - 1, 2, 0, false);
  EXPECT_EQ(ErrnoOf(bad.status()), EFBIG);
  bad = tree_->MapForWrite(tx, kMaxLogical, 1, 0, false);
  EXPECT_EQ(ErrnoOf(bad.status()), EFBIG);
  bad = tree_->MapForWrite(tx, 5, UINT64_MAX, 0, false);
  EXPECT_EQ(ErrnoOf(bad.status()), EFBIG);
  auto last = tree_->MapForWrite(tx, kMaxLogical - 1, 1, 0, false);
  ASSERT_TRUE(last.ok()) << last.status();
  auto m = tree_->Map(tx, kMaxLogical - 1);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->physical, last->physical);
  EXPECT_EQ(m->length, 1u);
  ASSERT_TRUE(tree_->Remove(tx, kMaxLogical - 1, UINT64_MAX).ok());
  EXPECT_EQ(inode_.blocks, 0u);
}

TEST_P(MemoryTreeTest, NoSpaceForSplitChangesNothing) {
  Transaction tx(*cache_);
  // Four separate extents fill the root.
  for (uint64_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(tree_->MapForWrite(tx, i * 10, 5, 0, false).ok());
  }
  ASSERT_EQ(tree_->depth(), 0);
  auto root = inode_.block;
  uint64_t blocks = inode_.blocks;
  uint64_t in_use = alloc_.in_use();
  // The data blocks are allocated, the tree block the root needs is not.
  alloc_.FailAfter(1);
  EXPECT_EQ(ErrnoOf(tree_->MapForWrite(tx, 100, 2, 0, false).status()), ENOSPC);
  EXPECT_EQ(inode_.block, root);
  EXPECT_EQ(inode_.blocks, blocks);
  EXPECT_EQ(alloc_.in_use(), in_use);
  // Punching a hole in the middle of an extent needs a slot too.
  alloc_.FailAfter(0);
  EXPECT_EQ(ErrnoOf(tree_->Remove(tx, 31, 32)), ENOSPC);
  EXPECT_EQ(inode_.block, root);
  EXPECT_EQ(inode_.blocks, blocks);
  EXPECT_EQ(alloc_.in_use(), in_use);
  // Trimming an end does not.
  ASSERT_TRUE(tree_->Remove(tx, 30, 31).ok());
  EXPECT_EQ(inode_.blocks, blocks - 2);
  EXPECT_EQ(tree_->depth(), 0);
  alloc_.FailAfter(-1);
  ASSERT_TRUE(tree_->Remove(tx, 32, 33).ok());
  EXPECT_EQ(tree_->depth(), 1);
  ASSERT_TRUE(tree_->Remove(tx, 0, kMaxLogical).ok());
  EXPECT_EQ(tree_->depth(), 0);
  EXPECT_EQ(inode_.blocks, 0u);
  EXPECT_EQ(alloc_.in_use(), 0u);
}

TEST_P(MemoryTreeTest, ReadsChecksummedBlocksBack) {
  const bool csum = GetParam();
  {
    Transaction tx(*cache_);
    for (uint64_t i = 0; i < 10; ++i) {
      ASSERT_TRUE(tree_->MapForWrite(tx, i * 2, 1, 0, false).ok());
    }
    ASSERT_EQ(tree_->depth(), 1);
    ASSERT_TRUE(tx.Commit().ok());
  }
  // The leaf block, as written.
  auto root = format::ParseExtentNode(
      format::Bytes(inode_.block.data(), inode_.block.size()), -1);
  ASSERT_TRUE(root.ok());
  const uint64_t leaf = root->indexes[0].child;
  auto bytes = cache_->Read(leaf);
  ASSERT_TRUE(bytes.ok());
  auto node = format::ParseExtentNode(**bytes, 0);
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(node->header.max, format::ExtentNodeCapacity(kBlockSize));
  EXPECT_EQ(node->header.generation, 0u);
  EXPECT_EQ(node->leaves.size(), 10u);
  if (csum) {
    EXPECT_TRUE(format::VerifyExtentBlockChecksum(**bytes, 0x12345678).ok());
  }
  // A flipped bit in an extent is caught by the checksum (with
  // metadata_csum) and read as a different block otherwise.
  auto corrupt = std::make_shared<std::vector<uint8_t>>(**bytes);
  (*corrupt)[12 + 8] ^= 1;
  ASSERT_TRUE(cache_->Write(leaf, corrupt).ok());
  Transaction tx(*cache_);
  auto m = tree_->Map(tx, 0);
  if (csum) {
    EXPECT_EQ(ErrnoOf(m.status()), EUCLEAN);
  } else {
    EXPECT_TRUE(m.ok());
  }
}

TEST_P(MemoryTreeTest, RejectsHostileTrees) {
  Transaction tx(*cache_);
  for (uint64_t i = 0; i < 10; ++i) {
    ASSERT_TRUE(tree_->MapForWrite(tx, i * 2, 1, 0, false).ok());
  }
  // The root's index claims the leaf starts later than it does.
  format::Put32(format::MutableBytes(inode_.block.data(), 60), 12, 5);
  EXPECT_EQ(ErrnoOf(tree_->Map(tx, 6).status()), EUCLEAN);
  EXPECT_EQ(ErrnoOf(tree_->MapForWrite(tx, 7, 1, 0, false).status()), EUCLEAN);
  // Bad magic in the root.
  inode_.block[0] = 0;
  EXPECT_EQ(ErrnoOf(tree_->Remove(tx, 0, kMaxLogical)), EUCLEAN);
}

// A chain of one-entry nodes (eh_max 1, which the format allows) from a
// root at `depth` down to a leaf holding logical block 0. Every node on the
// path is full, so the next extent splits all of them.
void BuildChain(format::Inode& inode, io::BlockCache& cache, int depth,
                bool csum, uint32_t seed) {
  for (int d = 0; d <= depth; ++d) {
    format::ExtentNode node;
    node.header.max = 1;
    node.header.depth = static_cast<uint16_t>(d);
    if (d == 0) {
      node.leaves.push_back(format::ExtentLeaf{0, 1, false, 5000});
    } else {
      node.indexes.push_back(format::ExtentIndex{0, uint64_t(100 + d - 1)});
    }
    if (d == depth) {
      inode.block.fill(0);
      format::SerializeExtentNode(
          node, format::MutableBytes(inode.block.data(), inode.block.size()));
    } else {
      auto bytes = std::make_shared<std::vector<uint8_t>>(1024);
      format::SerializeExtentNode(node, *bytes);
      if (csum) format::SetExtentBlockChecksum(*bytes, seed);
      ASSERT_TRUE(cache.Write(100 + d, bytes).ok());
    }
  }
  inode.blocks = 2 * (depth + 1);
}

TEST_P(MemoryTreeTest, DepthLimit) {
  BuildChain(inode_, *cache_, format::kMaxExtentDepth, GetParam(), 0x12345678);
  Transaction tx(*cache_);
  auto m = tree_->Map(tx, 0);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->physical, 5000u);
  const auto root = inode_.block;
  const uint64_t blocks = inode_.blocks;
  auto r = tree_->MapForWrite(tx, 10, 1, 0, false);
  EXPECT_EQ(ErrnoOf(r.status()), EFBIG);
  EXPECT_EQ(inode_.block, root);
  EXPECT_EQ(inode_.blocks, blocks);
  EXPECT_EQ(alloc_.in_use(), 0u);
}

TEST_P(MemoryTreeTest, SplitsNodesOfAnyCapacity) {
  BuildChain(inode_, *cache_, format::kMaxExtentDepth - 1, GetParam(),
             0x12345678);
  alloc_.Adopt(format::kMaxExtentDepth);  // the chain's blocks and its data
  Transaction tx(*cache_);
  // Every node of the chain splits, and the root grows to the limit.
  auto r = tree_->MapForWrite(tx, 10, 1, 0, false);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(tree_->depth(), format::kMaxExtentDepth);
  // The chain's 5 nodes, 4 split off, 1 for the grown root, 1 data block.
  EXPECT_EQ(inode_.blocks, 2u * format::kMaxExtentDepth + 2 * 6);
  auto extents = Extents(tx);
  ASSERT_EQ(extents.size(), 2u);
  EXPECT_EQ(extents[0].logical, 0u);
  EXPECT_EQ(extents[1].logical, 10u);
  auto m = tree_->Map(tx, 0);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->physical, 5000u);
  m = tree_->Map(tx, 10);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->physical, r->physical);
  // Removing the new extent frees the nodes it brought and shrinks back.
  auto removed = tree_->Remove(tx, 10, kMaxLogical);
  ASSERT_TRUE(removed.ok()) << removed;
  extents = Extents(tx);
  ASSERT_EQ(extents.size(), 1u);
  EXPECT_EQ(tree_->depth(), 0);
  EXPECT_EQ(alloc_.in_use(), 1u);  // block 5000
  EXPECT_EQ(inode_.blocks, 2u);
}

INSTANTIATE_TEST_SUITE_P(Csum, MemoryTreeTest, ::testing::Bool(),
                         [](const auto& info) {
                           return info.param ? "csum" : "nocsum";
                         });

// ---------------------------------------------------------------------------
// Image tests.

// Hands out blocks from a fixed set (the pool file's former blocks): the
// first free one at or after the goal, extended while the next is free.
class PoolAllocator : public BlockAllocator {
 public:
  explicit PoolAllocator(std::set<uint64_t> blocks)
      : owned_(blocks), free_(std::move(blocks)) {}

  absl::StatusOr<BlockRun> AllocateBlocks(Transaction&, uint64_t goal,
                                          uint64_t count, bool) override {
    if (count == 0) return ErrnoError(EINVAL, "zero blocks");
    if (free_.empty()) return ErrnoError(ENOSPC, "pool is empty");
    auto it = free_.lower_bound(goal);
    if (it == free_.end()) it = free_.begin();
    BlockRun run{*it, 0};
    while (run.count < count && free_.count(run.first + run.count)) {
      free_.erase(run.first + run.count);
      ++run.count;
    }
    return run;
  }

  absl::Status FreeBlocks(Transaction&, uint64_t first,
                          uint64_t count) override {
    for (uint64_t b = first; b < first + count; ++b) {
      if (!owned_.count(b)) return Corrupt(absl::StrCat(b, " not in pool"));
      if (!free_.insert(b).second) {
        return Corrupt(absl::StrCat(b, " freed twice"));
      }
    }
    return absl::OkStatus();
  }

  const std::set<uint64_t>& owned() const { return owned_; }
  const std::set<uint64_t>& free_blocks() const { return free_; }

  // The free blocks as "first count" runs.
  std::vector<std::pair<uint64_t, uint64_t>> FreeRuns() const {
    std::vector<std::pair<uint64_t, uint64_t>> runs;
    for (uint64_t b : free_) {
      if (!runs.empty() && runs.back().first + runs.back().second == b) {
        ++runs.back().second;
      } else {
        runs.push_back({b, 1});
      }
    }
    return runs;
  }

 private:
  const std::set<uint64_t> owned_;
  std::set<uint64_t> free_;
};

struct Layout {
  const char* name;
  uint32_t block_size;
  bool csum;
};

// One extent as debugfs lists it.
struct Listed {
  int entry;  // 1 for the first extent of a leaf
  uint64_t logical;
  uint64_t physical;
  uint64_t length;
  bool unwritten;
};

struct Block {
  uint64_t physical;
  bool unwritten;
  bool operator==(const Block& o) const {
    return physical == o.physical && unwritten == o.unwritten;
  }
};

// No two neighbours in one leaf could have been one extent.
void ExpectMerged(const std::vector<Listed>& listed) {
  for (size_t i = 1; i < listed.size(); ++i) {
    const Listed& a = listed[i - 1];
    const Listed& b = listed[i];
    if (b.entry == 1) continue;  // leaves are not merged with each other
    EXPECT_FALSE(a.logical + a.length == b.logical &&
                 a.physical + a.length == b.physical &&
                 a.unwritten == b.unwritten &&
                 a.length + b.length <= (a.unwritten ? 32767u : 32768u))
        << "extents at " << a.logical << " and " << b.logical;
  }
}

class ImageTreeTest : public ::testing::TestWithParam<Layout> {
 protected:
  static constexpr uint64_t kPoolBytes = 24 << 20;

  void SetUp() override {
    if (!HaveTools({kMke2fs, kDebugfs, kE2fsck})) {
      GTEST_SKIP() << "e2fsprogs (mke2fs, debugfs, e2fsck) are not installed";
    }
    dir_ = MakeTempDir("extent_tree.");
    ASSERT_FALSE(dir_.empty());
    const std::string src = dir_ + "/src";
    ASSERT_EQ(mkdir(src.c_str(), 0755), 0);
    {
      // Nonzero bytes: mke2fs -d leaves zero blocks as holes.
      std::ofstream out(src + "/pool", std::ios::binary);
      std::string chunk(1 << 20, 'p');
      for (uint64_t i = 0; i < kPoolBytes / chunk.size(); ++i) out << chunk;
    }
    image_ = dir_ + "/fs.img";
    const Layout& layout = GetParam();
    ASSERT_EQ(
        RunCommand(absl::StrCat(
                       kMke2fs, " -q -F -t ext4 -b ", layout.block_size,
                       layout.csum ? " -O metadata_csum" : " -O ^metadata_csum",
                       " -d ", src, " ", image_, " 64M >/dev/null 2>&1"),
                   StderrMode::kInherit)
            .exit_code,
        0);
    const CommandResult stat =
        RunCommand(absl::StrCat(kDebugfs, " -R 'stat /pool' ", image_));
    ASSERT_EQ(stat.exit_code, 0);
    const std::string& out = stat.output;
    auto at = out.find("Inode: ");
    ASSERT_NE(at, std::string::npos) << out;
    ino_ = std::stoul(out.substr(at + 7));

    Open();
    ASSERT_EQ(sb_.metadata_csum(), layout.csum);
    sb_free_ = sb_.free_blocks_count;
    for (uint32_t g = 0; g < sb_.group_count(); ++g) {
      auto block = cache_->Read(format::GroupDescriptorBlock(sb_, g));
      ASSERT_TRUE(block.ok());
      auto gd = format::ParseGroupDescriptor(
          format::Bytes(**block).subspan(
              format::GroupDescriptorOffsetInBlock(sb_, g),
              sb_.descriptor_size()),
          g, sb_);
      ASSERT_TRUE(gd.ok()) << gd.status();
      group_free_.push_back(gd->free_blocks_count);
    }
    // The pool's blocks, data and tree, become the allocator's.
    std::set<uint64_t> blocks;
    Collect(format::Bytes(inode_.block.data(), inode_.block.size()), -1,
            &blocks);
    ASSERT_EQ(blocks.size() * (sb_.block_size() / 512), inode_.blocks);
    alloc_ = std::make_unique<PoolAllocator>(std::move(blocks));
    MakeTree();
    ExtentTree::InitEmpty(inode_);
    inode_.blocks = 0;
    inode_.size = 0;
  }

  void TearDown() override {
    tree_.reset();
    tx_.reset();
    cache_.reset();
    device_.reset();
    if (!dir_.empty() && !HasFailure()) {
      RunCommand("rm -rf " + dir_, StderrMode::kInherit);
    }
  }

  void Open() {
    auto device = io::OpenFileDevice(image_, /*read_only=*/false);
    ASSERT_TRUE(device.ok()) << device.status();
    device_ = std::move(*device);
    std::vector<uint8_t> raw(1024);
    ASSERT_TRUE(device_->ReadAt(1024, raw).ok());
    auto sb = format::ParseSuperblock(raw);
    ASSERT_TRUE(sb.ok()) << sb.status();
    sb_ = *sb;
    cache_ = std::make_unique<io::BlockCache>(*device_, sb_.block_size(),
                                              sb_.blocks_count, 1024);
    const uint32_t group = (ino_ - 1) / sb_.inodes_per_group;
    const uint32_t index = (ino_ - 1) % sb_.inodes_per_group;
    auto gd_block = cache_->Read(format::GroupDescriptorBlock(sb_, group));
    ASSERT_TRUE(gd_block.ok());
    auto gd = format::ParseGroupDescriptor(
        format::Bytes(**gd_block)
            .subspan(format::GroupDescriptorOffsetInBlock(sb_, group),
                     sb_.descriptor_size()),
        group, sb_);
    ASSERT_TRUE(gd.ok()) << gd.status();
    const uint64_t byte = uint64_t{index} * sb_.inode_size();
    inode_block_ = gd->inode_table + byte / sb_.block_size();
    inode_offset_ = byte % sb_.block_size();
    auto table = cache_->Read(inode_block_);
    ASSERT_TRUE(table.ok());
    auto inode = format::ParseInode(
        format::Bytes(**table).subspan(inode_offset_, sb_.inode_size()), ino_,
        sb_);
    ASSERT_TRUE(inode.ok()) << inode.status();
    inode_ = *inode;
    seed_ =
        format::InodeChecksumSeed(sb_.checksum_seed(), ino_, inode_.generation);
    tx_ = std::make_unique<Transaction>(*cache_);
    if (alloc_) MakeTree();
  }

  // The transaction the test works in; a new one after each reopen.
  Transaction& tx() { return *tx_; }

  void MakeTree() {
    tree_ = std::make_unique<ExtentTree>(inode_, sb_.block_size(),
                                         sb_.metadata_csum(), seed_, *alloc_);
  }

  void Close() {
    tree_.reset();
    tx_.reset();
    cache_.reset();
    device_.reset();
  }

  // Every block of a tree (data and tree blocks), read from the image.
  void Collect(format::Bytes raw, int depth, std::set<uint64_t>* blocks) {
    auto node = format::ParseExtentNode(raw, depth);
    ASSERT_TRUE(node.ok()) << node.status();
    for (const auto& leaf : node->leaves) {
      for (uint64_t i = 0; i < leaf.length; ++i) {
        blocks->insert(leaf.physical + i);
      }
    }
    for (const auto& index : node->indexes) {
      blocks->insert(index.child);
      auto child = cache_->Read(index.child);
      ASSERT_TRUE(child.ok());
      Collect(**child, node->header.depth - 1, blocks);
    }
  }

  // --- building, with the model kept in step ---

  void MapRange(uint64_t logical, uint64_t count, bool unwritten) {
    auto m = tree_->MapForWrite(tx(), logical, count, 0, unwritten);
    ASSERT_TRUE(m.ok()) << m.status();
    ASSERT_NE(m->physical, 0u);
    for (uint64_t l = logical; l < logical + count; ++l) {
      auto b = tree_->Map(tx(), l);
      ASSERT_TRUE(b.ok()) << b.status();
      ASSERT_NE(b->physical, 0u);
      if (!model_.count(l)) model_[l] = Block{b->physical, b->unwritten};
      ASSERT_EQ(model_[l], (Block{b->physical, b->unwritten})) << l;
    }
  }

  void RemoveRange(uint64_t first, uint64_t end) {
    ASSERT_TRUE(tree_->Remove(tx(), first, end).ok());
    model_.erase(model_.lower_bound(first), model_.lower_bound(end));
  }

  void Convert(uint64_t logical, uint64_t count, bool unwritten) {
    absl::Status s = unwritten ? tree_->MarkUnwritten(tx(), logical, count)
                               : tree_->MarkWritten(tx(), logical, count);
    ASSERT_TRUE(s.ok()) << s;
    for (auto it = model_.lower_bound(logical);
         it != model_.end() && it->first < logical + count; ++it) {
      it->second.unwritten = unwritten;
    }
  }

  // --- checking ---

  // `debugfs ex`: the leaf extents; the tree blocks and depth on the side.
  std::vector<Listed> List(std::set<uint64_t>* tree_blocks, int* depth) {
    const CommandResult ex =
        RunCommand(absl::StrCat(kDebugfs, " -R 'ex <", ino_, ">' ", image_));
    EXPECT_EQ(ex.exit_code, 0) << ex.output;
    const std::string& out = ex.output;
    std::vector<Listed> extents;
    std::istringstream lines(out);
    std::string line;
    *depth = 0;
    while (std::getline(lines, line)) {
      int level, max_level, entry, entries, used = 0;
      unsigned long long ls, le;
      if (sscanf(line.c_str(), " %d/ %d %d/ %d %llu - %llu %n", &level,
                 &max_level, &entry, &entries, &ls, &le, &used) != 6) {
        continue;
      }
      *depth = max_level;
      const char* rest = line.c_str() + used;
      if (level < max_level) {
        unsigned long long pblk;
        EXPECT_EQ(sscanf(rest, "%llu", &pblk), 1) << line;
        tree_blocks->insert(pblk);
        continue;
      }
      unsigned long long ps, pe, len;
      EXPECT_EQ(sscanf(rest, "%llu - %llu %llu", &ps, &pe, &len), 3) << line;
      extents.push_back(
          Listed{entry, ls, ps, len, line.find("Uninit") != std::string::npos});
      EXPECT_EQ(le - ls + 1, len) << line;
      EXPECT_EQ(pe - ps + 1, len) << line;
    }
    return extents;
  }

  // Writes the inode (with i_size covering the mapped blocks) and commits.
  void CommitAll() {
    inode_.size =
        model_.empty() ? 0 : (model_.rbegin()->first + 1) * sb_.block_size();
    auto table = tx().Modify(inode_block_);
    ASSERT_TRUE(table.ok());
    format::SerializeInode(inode_, ino_, sb_,
                           table->subspan(inode_offset_, sb_.inode_size()));
    auto status = tx().Commit();
    ASSERT_TRUE(status.ok()) << status;
  }

  // Commits, then checks the tree against the model through Map, through the
  // read-only walker, through debugfs, and the block accounting; then runs
  // e2fsck on the image with exact bitmaps.
  void Check(bool final = false) {
    CommitAll();
    if (HasFatalFailure()) return;
    const uint64_t limit = model_.empty() ? 16 : model_.rbegin()->first + 16;
    auto walker = MakeExtentMap(inode_, *cache_, sb_.metadata_csum(), seed_);
    Transaction reader(*cache_);
    for (uint64_t l = 0; l < limit; ++l) {
      auto mine = tree_->Map(reader, l);
      auto theirs = walker->Map(l);
      ASSERT_TRUE(mine.ok()) << mine.status();
      ASSERT_TRUE(theirs.ok()) << theirs.status();
      auto it = model_.find(l);
      const Block want = it == model_.end() ? Block{0, false} : it->second;
      ASSERT_EQ(mine->physical, want.physical) << "logical " << l;
      ASSERT_EQ(mine->unwritten, want.unwritten) << "logical " << l;
      ASSERT_EQ(theirs->physical, want.physical) << "logical " << l;
      ASSERT_EQ(theirs->unwritten, want.unwritten) << "logical " << l;
      if (want.physical != 0) {
        ASSERT_EQ(mine->length, theirs->length) << l;
      }
    }

    std::set<uint64_t> tree_blocks;
    int depth = 0;
    const std::vector<Listed> listed = List(&tree_blocks, &depth);
    EXPECT_EQ(depth, tree_->depth());
    std::map<uint64_t, Block> seen;
    for (size_t i = 0; i < listed.size(); ++i) {
      const Listed& e = listed[i];
      EXPECT_LE(e.length, e.unwritten ? 32767u : 32768u);
      for (uint64_t j = 0; j < e.length; ++j) {
        seen[e.logical + j] = Block{e.physical + j, e.unwritten};
      }
    }
    EXPECT_TRUE(seen == model_) << "debugfs lists " << seen.size()
                                << " blocks, the model has " << model_.size();

    // Every pool block is free, mapped, or a tree block: exactly one.
    std::set<uint64_t> data;
    for (const auto& [l, b] : model_) data.insert(b.physical);
    EXPECT_EQ(data.size(), model_.size()) << "a block is mapped twice";
    std::set<uint64_t> all = alloc_->free_blocks();
    for (uint64_t b : data) EXPECT_TRUE(all.insert(b).second) << b;
    for (uint64_t b : tree_blocks) EXPECT_TRUE(all.insert(b).second) << b;
    EXPECT_TRUE(all == alloc_->owned()) << "blocks leaked or invented";
    EXPECT_EQ(inode_.blocks,
              (data.size() + tree_blocks.size()) * (sb_.block_size() / 512));

    Fsck(final);
  }

  // Gives the allocator's blocks back to the filesystem (bitmap bits and
  // free counts), runs e2fsck, and takes them again unless `final`.
  void Fsck(bool final) {
    Close();
    const auto runs = alloc_->FreeRuns();
    std::map<uint32_t, uint64_t> freed;  // group -> blocks
    uint64_t total = 0;
    for (uint64_t b : alloc_->free_blocks()) {
      ++freed[(b - sb_.first_data_block) / sb_.blocks_per_group];
      ++total;
    }
    auto debugfs = [&](bool release) {
      const std::string cmds = dir_ + "/cmds";
      {
        std::ofstream out(cmds);
        for (auto [first, count] : runs) {
          out << (release ? "freeb " : "setb ") << first << " " << count
              << "\n";
        }
        for (auto [group, count] : freed) {
          out << "set_bg " << group << " free_blocks_count "
              << group_free_[group] + (release ? count : 0) << "\n";
        }
        out << "ssv free_blocks_count " << sb_free_ + (release ? total : 0)
            << "\n";
      }
      const CommandResult written =
          RunCommand(absl::StrCat(kDebugfs, " -w -f ", cmds, " ", image_));
      ASSERT_EQ(written.exit_code, 0) << written.output;
    };
    debugfs(/*release=*/true);
    if (HasFatalFailure()) return;
    const CommandResult fsck =
        RunCommand(absl::StrCat(kE2fsck, " -fn ", image_));
    const int rc = fsck.exit_code;
    const std::string& out = fsck.output;
    EXPECT_EQ(rc, 0) << out;
    if (!allow_optimize_) {
      EXPECT_EQ(out.find("could be"), std::string::npos) << out;
    }
    if (final) return;
    debugfs(/*release=*/false);
    if (HasFatalFailure()) return;
    const auto root = inode_.block;
    const uint64_t blocks = inode_.blocks;
    Open();
    EXPECT_EQ(inode_.block, root);
    EXPECT_EQ(inode_.blocks, blocks);
  }

  std::string dir_;
  std::string image_;
  uint32_t ino_ = 0;
  std::unique_ptr<io::BlockDevice> device_;
  format::Superblock sb_;
  std::unique_ptr<io::BlockCache> cache_;
  std::unique_ptr<Transaction> tx_;
  uint64_t inode_block_ = 0;
  uint32_t inode_offset_ = 0;
  format::Inode inode_;
  uint32_t seed_ = 0;
  std::unique_ptr<PoolAllocator> alloc_;
  std::unique_ptr<ExtentTree> tree_;
  std::map<uint64_t, Block> model_;
  // The free counts mke2fs left, with every pool block in use.
  std::vector<uint32_t> group_free_;
  uint64_t sb_free_ = 0;
  // e2fsck may suggest a narrower tree (it does for kernel-made trees too
  // after blocks were removed); the tests that never remove do not allow it.
  bool allow_optimize_ = false;
};

TEST_P(ImageTreeTest, SequentialAppendsMerge) {
  {
    for (uint64_t l = 0; l < 600; ++l) {
      MapRange(l, 1, false);
      if (HasFatalFailure()) return;
      if (l % 100 == 99) CommitAll();
    }
    // A larger write after a gap, then the gap filled.
    MapRange(700, 300, false);
    MapRange(600, 100, false);
    Check();
  }
  if (HasFatalFailure()) return;
  std::set<uint64_t> tree_blocks;
  int depth;
  auto listed = List(&tree_blocks, &depth);
  // Extents break only where the pool does.
  ExpectMerged(listed);
  EXPECT_LE(listed.size(), 3u);
  EXPECT_EQ(depth, 0);
  Check(/*final=*/true);
}

TEST_P(ImageTreeTest, ManyFragmentsGrowTheTree) {
  for (uint64_t i = 0; i < 2000; ++i) {
    MapRange(3 * i, 1, false);
    if (HasFatalFailure()) return;
  }
  EXPECT_GE(tree_->depth(), 2);
  Check();
  if (HasFatalFailure()) return;
  // SEEK_DATA / SEEK_HOLE.
  Transaction reader(*cache_);
  for (uint64_t l = 0; l < 6100; l += 7) {
    auto next = tree_->NextExtent(reader, l);
    ASSERT_TRUE(next.ok()) << next.status();
    auto it = model_.lower_bound(l);
    if (it == model_.end()) {
      EXPECT_FALSE(next->has_value()) << l;
    } else {
      ASSERT_TRUE(next->has_value()) << l;
      EXPECT_EQ((*next)->logical, it->first);
      EXPECT_EQ((*next)->length, 1u);
    }
  }
  Check(/*final=*/true);
}

TEST_P(ImageTreeTest, ShuffledFragments) {
  allow_optimize_ = true;  // nodes split in half are half empty
  std::vector<uint64_t> order(1500);
  for (uint64_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937 rng(42);
  std::shuffle(order.begin(), order.end(), rng);
  for (size_t n = 0; n < order.size(); ++n) {
    MapRange(2 * order[n], 1, n % 3 == 0);
    if (HasFatalFailure()) return;
    if (n % 500 == 499) {
      Check();
      if (HasFatalFailure()) return;
    }
  }
  EXPECT_GE(tree_->depth(), 1);
  // Filling the gaps merges neighbours where the blocks line up.
  for (size_t n = 0; n < order.size(); n += 2) {
    MapRange(2 * order[n] + 1, 1, false);
    if (HasFatalFailure()) return;
  }
  Check(/*final=*/true);
}

TEST_P(ImageTreeTest, PunchHoles) {
  allow_optimize_ = true;  // removing extents leaves room in the leaves
  MapRange(0, 2000, false);
  RemoveRange(100, 200);    // middle of an extent: split
  RemoveRange(500, 501);    // one block
  RemoveRange(0, 10);       // head
  RemoveRange(1990, 2000);  // tail
  RemoveRange(5000, 6000);  // nothing there
  Check();
  if (HasFatalFailure()) return;
  RemoveRange(0, kMaxLogical);
  EXPECT_EQ(inode_.blocks, 0u);

  // Across leaves of a deep tree.
  for (uint64_t i = 0; i < 2000; ++i) {
    MapRange(3 * i, 2, false);
    if (HasFatalFailure()) return;
  }
  EXPECT_GE(tree_->depth(), 1);
  Check();
  if (HasFatalFailure()) return;
  RemoveRange(3 * 300 + 1, 3 * 1500);   // starts inside an extent
  RemoveRange(3 * 1700, 3 * 1701 + 1);  // leaves half of one
  for (uint64_t i = 0; i < 100; ++i) {
    RemoveRange(3 * i, 3 * i + 1);  // the first block of each
  }
  Check();
  if (HasFatalFailure()) return;
  // Punching one block out of each remaining extent splits every one.
  for (uint64_t i = 1500; i < 1700; ++i) {
    MapRange(3 * i + 2, 1, false);
  }
  for (uint64_t i = 1500; i < 1700; ++i) {
    RemoveRange(3 * i + 1, 3 * i + 2);
  }
  Check(/*final=*/true);
}

TEST_P(ImageTreeTest, TruncateShrinksTheTree) {
  for (uint64_t i = 0; i < 2000; ++i) {
    MapRange(2 * i, 1, i % 2 == 0);
    if (HasFatalFailure()) return;
  }
  ASSERT_GE(tree_->depth(), 2);
  Check();
  if (HasFatalFailure()) return;
  int depth = tree_->depth();
  RemoveRange(2 * 300, kMaxLogical);
  EXPECT_LE(tree_->depth(), depth);
  if (sb_.block_size() == 4096) {
    EXPECT_EQ(tree_->depth(), 1);
  }
  Check();
  if (HasFatalFailure()) return;
  RemoveRange(2 * 3, UINT64_MAX);
  EXPECT_EQ(tree_->depth(), 0);
  Check();
  if (HasFatalFailure()) return;
  RemoveRange(0, kMaxLogical);
  EXPECT_EQ(tree_->depth(), 0);
  EXPECT_EQ(inode_.blocks, 0u);
  EXPECT_EQ(alloc_->free_blocks(), alloc_->owned());
  auto root = format::ParseExtentNode(
      format::Bytes(inode_.block.data(), inode_.block.size()), -1);
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->header.entries, 0);
  EXPECT_EQ(root->header.max, 4);
  Check(/*final=*/true);
}

TEST_P(ImageTreeTest, UnwrittenSplitAndMerge) {
  MapRange(0, 100, /*unwritten=*/true);
  std::set<uint64_t> tb;
  int depth;
  auto extents = [&] {
    CommitAll();
    return List(&tb, &depth);
  };
  auto l = extents();
  ASSERT_EQ(l.size(), 1u);
  EXPECT_TRUE(l[0].unwritten);

  Convert(40, 20, false);  // three-way split
  l = extents();
  ASSERT_EQ(l.size(), 3u);
  EXPECT_TRUE(l[0].unwritten && !l[1].unwritten && l[2].unwritten);
  EXPECT_EQ(l[1].logical, 40u);
  EXPECT_EQ(l[1].length, 20u);

  Convert(60, 40, false);  // merges into the written middle
  l = extents();
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[1].logical, 40u);
  EXPECT_EQ(l[1].length, 60u);

  Convert(0, 40, false);
  l = extents();
  ASSERT_EQ(l.size(), 1u);
  EXPECT_FALSE(l[0].unwritten);

  Convert(10, 5, true);  // ZERO_RANGE
  l = extents();
  ASSERT_EQ(l.size(), 3u);
  EXPECT_TRUE(l[1].unwritten);
  Convert(0, 200, false);  // holes and written blocks in the range
  l = extents();
  ASSERT_EQ(l.size(), 1u);
  ExpectMerged(l);
  Check(/*final=*/true);
}

TEST_P(ImageTreeTest, MarkWrittenSplitsFullLeaves) {
  allow_optimize_ = true;
  for (uint64_t i = 0; i < 1000; ++i) {
    MapRange(4 * i, 3, /*unwritten=*/true);
    if (HasFatalFailure()) return;
  }
  const int before = tree_->depth();
  for (uint64_t i = 0; i < 1000; ++i) {
    Convert(4 * i + 1, 1, false);
    if (HasFatalFailure()) return;
  }
  EXPECT_GE(tree_->depth(), before);
  EXPECT_GE(tree_->depth(), 2);
  Check();
  if (HasFatalFailure()) return;
  Convert(0, 4000, false);
  Check();
  if (HasFatalFailure()) return;
  std::set<uint64_t> tb;
  int depth;
  ExpectMerged(List(&tb, &depth));
  Check(/*final=*/true);
}

INSTANTIATE_TEST_SUITE_P(Layouts, ImageTreeTest,
                         ::testing::Values(Layout{"csum4k", 4096, true},
                                           Layout{"nocsum4k", 4096, false},
                                           Layout{"csum1k", 1024, true},
                                           Layout{"nocsum1k", 1024, false}),
                         [](const auto& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace ext4
