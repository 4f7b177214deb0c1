// Indirect block map changes on ext2/ext3 images made by mke2fs. The map is
// built in a real inode (an empty file debugfs made) with the bitmap
// allocator, the inode and the free counts are written back and committed,
// and then the oracles judge it: e2fsck -fn must find nothing, `debugfs
// stat` must list exactly the blocks the test expects (data and indirect),
// and the read-only indirect map must agree with Map.
#include "ext4/indirect_tree.h"

#include <stdio.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ext4/allocator.h"
#include "ext4/errno_status.h"
#include "ext4/file_map.h"
#include "ext4/format/endian.h"
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

static_assert(IndirectTree::MaxLogical(1024) == 12 + 256 + 65536 + 16777216);
static_assert(IndirectTree::MaxLogical(4096) ==
              12 + 1024 + 1048576 + 1073741824ull);
static_assert(IndirectTree::MaxLogical(65536) == uint64_t{1} << 32);

// 1 KiB blocks: where the single, double and triple indirect parts start.
constexpr uint64_t kSingle1k = 12;
constexpr uint64_t kDouble1k = 12 + 256;
constexpr uint64_t kTriple1k = 12 + 256 + 65536;

// NextExtent's answer, printable and comparable.
std::string Str(const std::optional<MappedExtent>& e) {
  if (!e) return "none";
  return absl::StrCat(e->logical, "+", e->length,
                      e->unwritten ? " unwritten" : "");
}
std::string Str(const absl::StatusOr<std::optional<MappedExtent>>& e) {
  if (!e.ok()) return std::string(e.status().ToString());
  return Str(*e);
}

// What `debugfs stat` lists for an inode.
struct Listing {
  std::map<uint64_t, uint64_t> data;                   // logical -> physical
  std::vector<std::pair<std::string, uint64_t>> meta;  // (IND/DIND/TIND, block)
  std::vector<std::string> order;  // every entry as printed, in order
};

class IndirectTreeTest : public ::testing::Test {
 protected:
  void TearDown() override {
    Close();
    if (!dir_.empty() && !HasFailure()) {
      RunCommand("rm -rf " + dir_, testing::StderrMode::kInherit);
    }
  }

  // Makes the image and two empty files, /f and /g, in it; opens it.
  bool MakeImage(const std::string& args, const std::string& size) {
    if (!HaveTools({kMke2fs, kDebugfs, kE2fsck})) return false;
    dir_ = MakeTempDir("indirect_tree.");
    EXPECT_FALSE(dir_.empty());
    image_ = dir_ + "/fs.img";
    const CommandResult made = RunCommand(
        absl::StrCat(kMke2fs, " -q -F ", args, " ", image_, " ", size));
    EXPECT_EQ(made.exit_code, 0) << made.output;
    for (const char* name : {"f", "g"}) {
      const CommandResult w = RunCommand(absl::StrCat(
          kDebugfs, " -w -R 'write /dev/null ", name, "' ", image_));
      EXPECT_EQ(w.exit_code, 0) << w.output;
    }
    ino_ = InodeOf("/f");
    ino_g_ = InodeOf("/g");
    EXPECT_NE(ino_, 0u);
    EXPECT_NE(ino_g_, 0u);
    Open();
    return !HasFailure();
  }

  uint32_t InodeOf(const std::string& path) {
    const CommandResult r =
        RunCommand(absl::StrCat(kDebugfs, " -R 'stat ", path, "' ", image_),
                   testing::StderrMode::kDiscard);
    const size_t at = r.output.find("Inode: ");
    if (at == std::string::npos) return 0;
    return static_cast<uint32_t>(std::stoul(r.output.substr(at + 7)));
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
    auto allocator = BitmapAllocator::Create(sb_, *cache_);
    ASSERT_TRUE(allocator.ok()) << allocator.status();
    alloc_ = std::move(*allocator);
    tx_ = std::make_unique<Transaction>(*cache_);
    ASSERT_TRUE(alloc_->Load(*tx_).ok());
    // The metadata of each group, for the pointer check: without flex_bg
    // (ext2, ext3), a group starts with its superblock copy and descriptor
    // tables, then the bitmaps and the inode table.
    metadata_.clear();
    for (uint32_t g = 0; g < sb_.group_count(); ++g) {
      auto gd = alloc_->GetGroup(*tx_, g);
      ASSERT_TRUE(gd.ok()) << gd.status();
      const uint64_t start = sb_.group_first_block(g);
      ASSERT_GE(gd->block_bitmap, start);
      ASSERT_GT(gd->inode_table, gd->block_bitmap);
      metadata_.push_back({start, gd->inode_table + sb_.inode_table_blocks()});
    }
    metadata_.front().first = 0;
    inode_ = LoadInode(ino_);
    inode_g_ = LoadInode(ino_g_);
    tree_ = MakeTree(inode_);
    tree_g_ = MakeTree(inode_g_);
  }

  std::unique_ptr<IndirectTree> MakeTree(format::Inode& inode) {
    auto tree =
        std::make_unique<IndirectTree>(inode, sb_.block_size(), *alloc_);
    tree->set_block_count(sb_.blocks_count);
    tree->set_metadata_check([this](uint64_t first, uint64_t count) {
      for (const auto& [start, end] : metadata_) {
        if (first < end && first + count > start) return true;
      }
      return false;
    });
    return tree;
  }

  void Close() {
    tree_.reset();
    tree_g_.reset();
    tx_.reset();
    alloc_.reset();
    cache_.reset();
    device_.reset();
  }

  // The inode table block holding `ino` and the offset in it.
  std::pair<uint64_t, size_t> Slot(uint32_t ino) {
    const uint32_t group = (ino - 1) / sb_.inodes_per_group;
    const uint32_t index = (ino - 1) % sb_.inodes_per_group;
    auto gd = alloc_->GetGroup(*tx_, group);
    EXPECT_TRUE(gd.ok()) << gd.status();
    if (!gd.ok()) return {0, 0};
    const uint64_t byte = uint64_t{index} * sb_.inode_size();
    return {gd->inode_table + byte / sb_.block_size(),
            static_cast<size_t>(byte % sb_.block_size())};
  }

  format::Inode LoadInode(uint32_t ino) {
    auto [block, offset] = Slot(ino);
    auto bytes = tx_->Read(block);
    EXPECT_TRUE(bytes.ok());
    if (!bytes.ok()) return {};
    auto inode =
        format::ParseInode(bytes->subspan(offset, sb_.inode_size()), ino, sb_);
    EXPECT_TRUE(inode.ok()) << inode.status();
    return inode.ok() ? *inode : format::Inode{};
  }

  void StoreInode(uint32_t ino, format::Inode& inode) {
    // i_size covers the last mapped block (e2fsck wants no block past it).
    uint64_t last = 0;
    bool any = false;
    IndirectTree reader(inode, sb_.block_size(), *alloc_);
    for (uint64_t at = 0;;) {
      auto next = reader.NextExtent(*tx_, at);
      ASSERT_TRUE(next.ok()) << next.status();
      if (!next->has_value()) break;
      any = true;
      last = (*next)->logical + (*next)->length - 1;
      at = last + 1;
    }
    inode.size = any ? (last + 1) * sb_.block_size() : 0;
    auto [block, offset] = Slot(ino);
    auto bytes = tx_->Modify(block);
    ASSERT_TRUE(bytes.ok());
    format::SerializeInode(inode, ino, sb_,
                           bytes->subspan(offset, sb_.inode_size()));
  }

  // Writes both inodes and the free counts, commits.
  void Save() {
    StoreInode(ino_, inode_);
    StoreInode(ino_g_, inode_g_);
    ASSERT_TRUE(alloc_->WriteSuperblock(*tx_).ok());
    absl::Status committed = tx_->Commit();
    ASSERT_TRUE(committed.ok()) << committed;
  }

  // Saves, closes, runs e2fsck -fn (which must be clean), reopens.
  void SaveAndCheck() {
    Save();
    if (HasFatalFailure()) return;
    Close();
    const CommandResult fsck =
        RunCommand(absl::StrCat(kE2fsck, " -fn ", image_));
    EXPECT_EQ(fsck.exit_code, 0) << fsck.output;
    Open();
  }

  Listing Stat(uint32_t ino) {
    Listing listing;
    const CommandResult r =
        RunCommand(absl::StrCat(kDebugfs, " -R 'stat <", ino, ">' ", image_),
                   testing::StderrMode::kDiscard);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    const size_t from = r.output.find("BLOCKS:");
    EXPECT_NE(from, std::string::npos) << r.output;
    if (from == std::string::npos) return listing;
    const size_t to = r.output.find("TOTAL:", from);
    std::string body = r.output.substr(
        from + 7, to == std::string::npos ? std::string::npos : to - from - 7);
    std::replace(body.begin(), body.end(), '\n', ' ');
    std::istringstream items(body);
    std::string item;
    while (std::getline(items, item, ',')) {
      item.erase(0, item.find_first_not_of(' '));
      item.erase(item.find_last_not_of(' ') + 1);
      if (item.empty()) continue;
      listing.order.push_back(item);
      char kind[8];
      unsigned long long a, b, p, q;
      if (sscanf(item.c_str(), "(%llu-%llu):%llu-%llu", &a, &b, &p, &q) == 4) {
        EXPECT_EQ(b - a, q - p) << item;
        for (uint64_t i = 0; i <= b - a; ++i) listing.data[a + i] = p + i;
      } else if (sscanf(item.c_str(), "(%llu):%llu", &a, &p) == 2) {
        listing.data[a] = p;
      } else if (sscanf(item.c_str(), "(%7[A-Z]):%llu", kind, &p) == 2) {
        listing.meta.emplace_back(kind, p);
      } else {
        ADD_FAILURE() << "unparsed stat entry: " << item;
      }
    }
    return listing;
  }

  // Maps through the tree and records what it mapped.
  void MapRange(uint64_t logical, uint64_t count) {
    auto m = tree_->MapForWrite(*tx_, logical, count, Goal(),
                                /*unwritten=*/false);
    ASSERT_TRUE(m.ok()) << m.status();
    ASSERT_NE(m->physical, 0u);
    Record(logical, logical + count);
  }

  // Reads [first, end) back into the model through Map.
  void Record(uint64_t first, uint64_t end) {
    for (uint64_t l = first; l < end;) {
      auto m = tree_->Map(*tx_, l);
      ASSERT_TRUE(m.ok()) << m.status();
      ASSERT_NE(m->physical, 0u) << l;
      ASSERT_GE(m->length, 1u);
      for (uint64_t i = 0; i < m->length && l + i < end; ++i) {
        model_[l + i] = m->physical + i;
      }
      l += m->length;
    }
  }

  void RemoveRange(uint64_t first, uint64_t end) {
    const uint64_t free_before = alloc_->free_blocks();
    const uint64_t blocks_before = inode_.blocks;
    absl::Status s = tree_->Remove(*tx_, first, end);
    ASSERT_TRUE(s.ok()) << s;
    model_.erase(model_.lower_bound(first), model_.lower_bound(end));
    // Every block taken off i_blocks went back to the free pool.
    EXPECT_EQ(alloc_->free_blocks() - free_before,
              (blocks_before - inode_.blocks) / (sb_.block_size() / 512));
  }

  uint64_t Goal() { return alloc_->GoalForInode(ino_, true); }
  uint64_t SectorsPerBlock() const { return sb_.block_size() / 512; }

  // Commits, checks the image with e2fsck, and the map against the model:
  // debugfs's listing, the read-only map, Map (holes included) and the
  // i_blocks count (data + the indirect blocks debugfs lists).
  void Check() {
    SaveAndCheck();
    if (HasFatalFailure()) return;
    const Listing listing = Stat(ino_);
    EXPECT_EQ(listing.data, model_);
    EXPECT_EQ(inode_.blocks,
              (model_.size() + listing.meta.size()) * SectorsPerBlock());
    auto reader = MakeIndirectMap(inode_, *cache_);
    const uint64_t limit = model_.empty() ? 64 : model_.rbegin()->first + 64;
    for (uint64_t l = 0; l < limit;) {
      auto mine = tree_->Map(*tx_, l);
      ASSERT_TRUE(mine.ok()) << mine.status();
      ASSERT_GE(mine->length, 1u);
      auto it = model_.find(l);
      if (it == model_.end()) {
        ASSERT_EQ(mine->physical, 0u) << l;
        // A hole never runs over a mapped block.
        auto next = model_.lower_bound(l);
        if (next != model_.end()) {
          ASSERT_LE(l + mine->length, next->first) << l;
        }
        l += mine->length;
        continue;
      }
      auto theirs = reader->Map(l);
      ASSERT_TRUE(theirs.ok()) << theirs.status();
      ASSERT_EQ(mine->physical, it->second) << l;
      ASSERT_EQ(theirs->physical, it->second) << l;
      for (uint64_t i = 1; i < mine->length; ++i) {
        ASSERT_EQ(model_[l + i], it->second + i) << l + i;
      }
      l += mine->length;
    }
  }

  std::string dir_;
  std::string image_;
  uint32_t ino_ = 0;
  uint32_t ino_g_ = 0;
  std::unique_ptr<io::BlockDevice> device_;
  format::Superblock sb_;
  std::unique_ptr<io::BlockCache> cache_;
  std::unique_ptr<BitmapAllocator> alloc_;
  std::unique_ptr<Transaction> tx_;
  std::vector<std::pair<uint64_t, uint64_t>> metadata_;
  format::Inode inode_;
  format::Inode inode_g_;
  std::unique_ptr<IndirectTree> tree_;
  std::unique_ptr<IndirectTree> tree_g_;
  std::map<uint64_t, uint64_t> model_;
};

#define MAKE_IMAGE_OR_SKIP(args, size)                               \
  do {                                                               \
    if (!HaveTools({kMke2fs, kDebugfs, kE2fsck})) {                  \
      GTEST_SKIP() << "e2fsprogs (mke2fs, debugfs, e2fsck) missing"; \
    }                                                                \
    ASSERT_TRUE(MakeImage(args, size));                              \
  } while (false)

// One write from block 0 into the triple indirect part: every level is
// built, laid out as ext2 lays it out, and counted.
TEST_F(IndirectTreeTest, SequentialWriteThroughEveryLevel) {
  MAKE_IMAGE_OR_SKIP("-t ext2 -b 1024", "128M");
  const uint64_t free_before = alloc_->free_blocks();
  const uint64_t total = kTriple1k + 600;
  MapRange(0, total);
  ASSERT_FALSE(HasFatalFailure());
  // IND; DIND and its 256 INDs; TIND, one DIND, three INDs.
  const uint64_t indirect = 1 + (1 + 256) + (1 + 1 + 3);
  EXPECT_EQ(inode_.blocks, (total + indirect) * SectorsPerBlock());
  EXPECT_EQ(free_before - alloc_->free_blocks(), total + indirect);
  Check();
  ASSERT_FALSE(HasFatalFailure());

  const Listing listing = Stat(ino_);
  ASSERT_EQ(listing.meta.size(), indirect);
  EXPECT_EQ(listing.meta[0].first, "IND");
  EXPECT_EQ(listing.meta[1].first, "DIND");
  EXPECT_EQ(listing.meta[2].first, "IND");
  // Each indirect block sits right before the data it maps (all of this is
  // in the first group, with room to spare).
  EXPECT_EQ(listing.order[0],
            absl::StrCat("(0-11):", model_[0], "-", model_[0] + 11));
  EXPECT_EQ(listing.meta[0].second, model_[11] + 1);
  EXPECT_EQ(model_[kSingle1k], model_[11] + 2);
  EXPECT_EQ(listing.meta[1].second, model_[kDouble1k - 1] + 1);
  EXPECT_EQ(listing.meta[2].second, model_[kDouble1k - 1] + 2);
  EXPECT_EQ(model_[kDouble1k], model_[kDouble1k - 1] + 3);
  // The triple part: TIND, DIND, IND, then data, wherever it landed.
  const auto tind =
      std::find_if(listing.meta.begin(), listing.meta.end(),
                   [](const auto& m) { return m.first == "TIND"; });
  ASSERT_NE(tind, listing.meta.end());
  EXPECT_EQ(tind[1].first, "DIND");
  EXPECT_EQ(tind[2].first, "IND");
  EXPECT_EQ(tind[1].second, tind->second + 1);
  EXPECT_EQ(tind[2].second, tind->second + 2);
  EXPECT_EQ(model_[kTriple1k], tind->second + 3);
  EXPECT_EQ(Str(tree_->NextExtent(*tx_, 0)),
            Str(std::optional<MappedExtent>(MappedExtent{0, total, false})));
}

// Many one-block writes, as a program appending gives them: the same
// layout, each block after the previous one, the indirect blocks between.
TEST_F(IndirectTreeTest, AppendsOneBlockAtATime) {
  MAKE_IMAGE_OR_SKIP("-t ext2 -b 1024", "64M");
  const uint64_t total = kDouble1k + 300;
  for (uint64_t l = 0; l < total; ++l) {
    MapRange(l, 1);
    ASSERT_FALSE(HasFatalFailure());
  }
  Check();
  ASSERT_FALSE(HasFatalFailure());
  const Listing listing = Stat(ino_);
  EXPECT_EQ(
      listing.order,
      (std::vector<std::string>{
          absl::StrCat("(0-11):", model_[0], "-", model_[0] + 11),
          absl::StrCat("(IND):", model_[0] + 12),
          absl::StrCat("(12-267):", model_[0] + 13, "-", model_[0] + 268),
          absl::StrCat("(DIND):", model_[0] + 269),
          absl::StrCat("(IND):", model_[0] + 270),
          absl::StrCat("(268-523):", model_[0] + 271, "-", model_[0] + 526),
          absl::StrCat("(IND):", model_[0] + 527),
          absl::StrCat("(524-567):", model_[0] + 528, "-", model_[0] + 571),
      }));
}

TEST_F(IndirectTreeTest, SparseWritesHolesAndNextExtent) {
  MAKE_IMAGE_OR_SKIP("-t ext2 -b 1024", "64M");
  const uint64_t max = IndirectTree::MaxLogical(1024);
  MapRange(5, 1);
  MapRange(100, 11);
  MapRange(260, 20);  // across the single -> double boundary
  MapRange(70000, 1);
  MapRange(max - 1, 1);  // the very last block: TIND, DIND, IND at the end
  ASSERT_FALSE(HasFatalFailure());
  // 34 data blocks; IND; DIND + IND; TIND + (DIND + IND) twice.
  EXPECT_EQ(inode_.blocks, (34 + 1 + 2 + 5) * 2u);

  struct Hole {
    uint64_t logical, length;
  };
  for (const Hole& h : {
           Hole{0, 5}, Hole{6, 6},            // to the end of the direct
           Hole{12, 88},                      // to block 100 in the IND
           Hole{111, 149},                    // to 260
           Hole{280, kDouble1k + 256 - 280},  // the rest of that IND
           Hole{600, kTriple1k - 600},        // empty DIND slots 1..255
           // Empty slots 0..15 of the first DIND under the TIND; 70000 is
           // in the IND at slot 16, which starts at 69900.
           Hole{kTriple1k, 16 * 256}, Hole{69900, 100},
           Hole{70001, 69900 + 256 - 70001},  // to the end of that IND
           Hole{69900 + 256, kTriple1k + 65536 - 69900 - 256},  // slots 17..
       }) {
    auto m = tree_->Map(*tx_, h.logical);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->physical, 0u) << h.logical;
    EXPECT_EQ(m->length, h.length) << h.logical;
  }
  // Past the last block, nothing can be mapped.
  auto past = tree_->Map(*tx_, max);
  ASSERT_TRUE(past.ok());
  EXPECT_EQ(past->physical, 0u);

  struct Next {
    uint64_t from;
    std::optional<MappedExtent> want;
  };
  for (const Next& n : {
           Next{0, MappedExtent{5, 1, false}},
           Next{5, MappedExtent{5, 1, false}},
           Next{6, MappedExtent{100, 11, false}},
           Next{105, MappedExtent{105, 6, false}},
           Next{111, MappedExtent{260, 20, false}},
           Next{270, MappedExtent{270, 10, false}},
           Next{280, MappedExtent{70000, 1, false}},
           Next{70001, MappedExtent{max - 1, 1, false}},
           Next{max - 1, MappedExtent{max - 1, 1, false}},
           Next{max, std::nullopt},
       }) {
    EXPECT_EQ(Str(tree_->NextExtent(*tx_, n.from)), Str(n.want)) << n.from;
  }
  Check();
  ASSERT_FALSE(HasFatalFailure());

  // Filling a hole between mapped blocks keeps the rest as it was.
  MapRange(0, 20);
  Check();
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(Str(tree_->NextExtent(*tx_, 0)),
            Str(std::optional<MappedExtent>(MappedExtent{0, 20, false})));

  RemoveRange(0, kEndOfFile);
  EXPECT_EQ(inode_.blocks, 0u);
  Check();
}

TEST_F(IndirectTreeTest, RemoveMiddleEndAndEverything) {
  MAKE_IMAGE_OR_SKIP("-t ext2 -b 1024", "128M");
  const uint64_t free_empty = alloc_->free_blocks();
  const uint64_t total = kTriple1k + 700;
  MapRange(0, total);
  ASSERT_FALSE(HasFatalFailure());
  Check();
  ASSERT_FALSE(HasFatalFailure());

  // The direct part and the start of the single indirect block.
  RemoveRange(5, 20);
  // Inside the double indirect part: INDs cut at both ends, whole ones in
  // between freed.
  RemoveRange(kDouble1k + 256 * 10 + 7, kDouble1k + 256 * 200);
  // The single indirect block's last pointer: it still maps 20..267.
  RemoveRange(kDouble1k - 1, kDouble1k);
  Check();
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(Stat(ino_).meta.size(), 1 + (1 + 256 - 189) + (1 + 1 + 3u));

  // The end of the file, inside the triple part: one IND cut, two freed.
  RemoveRange(kTriple1k + 100, kEndOfFile);
  Check();
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_NE(format::Le32(format::Bytes(inode_.block.data(), 60), 4 * 14), 0u);
  // All of the triple part: TIND, its DIND and IND go.
  RemoveRange(kTriple1k, kEndOfFile);
  EXPECT_EQ(format::Le32(format::Bytes(inode_.block.data(), 60), 4 * 14), 0u);
  // The whole single indirect part: the IND goes.
  RemoveRange(kSingle1k, kDouble1k);
  EXPECT_EQ(format::Le32(format::Bytes(inode_.block.data(), 60), 4 * 12), 0u);
  Check();
  ASSERT_FALSE(HasFatalFailure());

  RemoveRange(0, kEndOfFile);
  EXPECT_EQ(inode_.blocks, 0u);
  for (uint8_t byte : inode_.block) EXPECT_EQ(byte, 0);
  EXPECT_EQ(alloc_->free_blocks(), free_empty);
  auto next = tree_->NextExtent(*tx_, 0);
  ASSERT_TRUE(next.ok());
  EXPECT_FALSE(next->has_value());
  Check();
}

TEST_F(IndirectTreeTest, Ext3With4kBlocks) {
  MAKE_IMAGE_OR_SKIP("-t ext3 -b 4096", "64M");
  const uint64_t free_empty = alloc_->free_blocks();
  const uint64_t dbl = 12 + 1024;
  MapRange(0, dbl + 1500);
  ASSERT_FALSE(HasFatalFailure());
  // IND, DIND + 2 INDs.
  EXPECT_EQ(inode_.blocks, (dbl + 1500 + 4) * 8u);
  Check();
  ASSERT_FALSE(HasFatalFailure());
  RemoveRange(dbl + 1000, kEndOfFile);
  RemoveRange(3, 1000);
  Check();
  ASSERT_FALSE(HasFatalFailure());
  RemoveRange(0, kEndOfFile);
  EXPECT_EQ(alloc_->free_blocks(), free_empty);
  Check();
}

TEST_F(IndirectTreeTest, LimitsAndUnwritten) {
  MAKE_IMAGE_OR_SKIP("-t ext2 -b 1024", "16M");
  const uint64_t max = IndirectTree::MaxLogical(1024);
  auto bad = tree_->MapForWrite(*tx_, max - 1, 2, 0, false);
  EXPECT_EQ(ErrnoOf(bad.status()), EFBIG);
  bad = tree_->MapForWrite(*tx_, max, 1, 0, false);
  EXPECT_EQ(ErrnoOf(bad.status()), EFBIG);
  bad = tree_->MapForWrite(*tx_, 7, UINT64_MAX, 0, false);
  EXPECT_EQ(ErrnoOf(bad.status()), EFBIG);
  bad = tree_->MapForWrite(*tx_, 0, 1, 0, /*unwritten=*/true);
  EXPECT_EQ(ErrnoOf(bad.status()), EOPNOTSUPP);
  EXPECT_EQ(inode_.blocks, 0u);
  // Removing past the end, or nothing, is fine.
  EXPECT_TRUE(tree_->Remove(*tx_, max, kEndOfFile).ok());
  EXPECT_TRUE(tree_->Remove(*tx_, 5, 5).ok());
  Check();
}

// Running out of space: what was mapped stays mapped and counted, and an
// indirect block whose data could not be allocated is given back.
TEST_F(IndirectTreeTest, OutOfSpaceLeavesAConsistentFile) {
  MAKE_IMAGE_OR_SKIP("-t ext2 -b 1024 -m 0", "2M");
  auto full = tree_->MapForWrite(*tx_, 0, 100000, Goal(), false);
  EXPECT_EQ(ErrnoOf(full.status()), ENOSPC) << full.status();
  // Nothing is left but, perhaps, the one block an indirect block took
  // and gave back when no data block was left for it.
  EXPECT_LE(alloc_->free_blocks(), 1u);
  const uint64_t left = alloc_->free_blocks();
  auto next = tree_->NextExtent(*tx_, 0);
  ASSERT_TRUE(next.ok() && next->has_value());
  EXPECT_EQ((*next)->logical, 0u);
  Record(0, (*next)->length);
  ASSERT_FALSE(HasFatalFailure());
  Check();
  ASSERT_FALSE(HasFatalFailure());

  // One block free: /g's block 12 needs an IND and a data block.
  if (left == 0) RemoveRange(0, 1);
  ASSERT_EQ(alloc_->free_blocks(), 1u);
  auto g = tree_g_->MapForWrite(*tx_, 12, 1, Goal(), false);
  EXPECT_EQ(ErrnoOf(g.status()), ENOSPC) << g.status();
  EXPECT_EQ(inode_g_.blocks, 0u);
  for (uint8_t byte : inode_g_.block) EXPECT_EQ(byte, 0);
  EXPECT_EQ(alloc_->free_blocks(), 1u);
  // The direct block fits.
  auto direct = tree_g_->MapForWrite(*tx_, 0, 1, Goal(), false);
  ASSERT_TRUE(direct.ok()) << direct.status();
  EXPECT_EQ(inode_g_.blocks, 2u);
  Check();
}

// Hostile pointers give EUCLEAN from every call, never a crash.
TEST_F(IndirectTreeTest, CorruptPointers) {
  MAKE_IMAGE_OR_SKIP("-t ext2 -b 1024", "64M");
  MapRange(0, 300);
  ASSERT_FALSE(HasFatalFailure());
  SaveAndCheck();
  ASSERT_FALSE(HasFatalFailure());
  const uint64_t inode_table = metadata_.front().second - 1;
  Close();

  auto expect_corrupt = [&](const std::string& what) {
    EXPECT_EQ(ErrnoOf(tree_->Map(*tx_, 12).status()), EUCLEAN) << what;
    EXPECT_EQ(ErrnoOf(tree_->MapForWrite(*tx_, 12, 1, 0, false).status()),
              EUCLEAN)
        << what;
    EXPECT_EQ(ErrnoOf(tree_->MapForWrite(*tx_, 20, 500, 0, false).status()),
              EUCLEAN)
        << what;
    EXPECT_EQ(ErrnoOf(tree_->NextExtent(*tx_, 12).status()), EUCLEAN) << what;
    EXPECT_EQ(ErrnoOf(tree_->Remove(*tx_, 0, kEndOfFile)), EUCLEAN) << what;
    auto direct = tree_->Map(*tx_, 3);
    EXPECT_TRUE(direct.ok()) << what << ": " << direct.status();
  };
  for (const uint64_t bad : {uint64_t{99999999}, inode_table}) {
    const CommandResult sif = RunCommand(absl::StrCat(
        kDebugfs, " -w -R 'sif <", ino_, "> block[IND] ", bad, "' ", image_));
    ASSERT_EQ(sif.exit_code, 0) << sif.output;
    Open();
    ASSERT_FALSE(HasFatalFailure());
    ASSERT_EQ(format::Le32(format::Bytes(inode_.block.data(), 60), 48), bad);
    expect_corrupt(absl::StrCat("block[IND] = ", bad));
    Close();
  }

  // A data pointer outside the filesystem, and one into the inode table.
  for (const uint64_t bad : {uint64_t{99999999}, inode_table}) {
    const CommandResult sif = RunCommand(absl::StrCat(
        kDebugfs, " -w -R 'sif <", ino_, "> block[2] ", bad, "' ", image_));
    ASSERT_EQ(sif.exit_code, 0) << sif.output;
    Open();
    ASSERT_FALSE(HasFatalFailure());
    EXPECT_EQ(ErrnoOf(tree_->Map(*tx_, 2).status()), EUCLEAN);
    EXPECT_EQ(ErrnoOf(tree_->MapForWrite(*tx_, 0, 5, 0, false).status()),
              EUCLEAN);
    EXPECT_EQ(ErrnoOf(tree_->Remove(*tx_, 0, 5)), EUCLEAN);
    Close();
  }
}

// Indirect blocks that point back at themselves: freed once, then refused
// (EUCLEAN from the allocator); lookups stay bounded.
TEST_F(IndirectTreeTest, SelfReferenceIsRefused) {
  MAKE_IMAGE_OR_SKIP("-t ext2 -b 1024", "64M");
  MapRange(0, 300);
  ASSERT_FALSE(HasFatalFailure());
  SaveAndCheck();
  ASSERT_FALSE(HasFatalFailure());
  const format::Bytes root(inode_.block.data(), inode_.block.size());
  const uint32_t ind = format::Le32(root, 4 * 12);
  const uint32_t dind = format::Le32(root, 4 * 13);

  // Logical 12 -> the IND itself.
  {
    auto bytes = tx_->Modify(ind);
    ASSERT_TRUE(bytes.ok());
    format::Put32(*bytes, 0, ind);
  }
  auto m = tree_->Map(*tx_, 12);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->physical, ind);
  EXPECT_EQ(ErrnoOf(tree_->Remove(*tx_, 0, kEndOfFile)), EUCLEAN);
  tx_->Abort();
  Close();
  Open();
  ASSERT_FALSE(HasFatalFailure());

  // DIND slot 1 -> the DIND: read as an IND there.
  {
    auto bytes = tx_->Modify(dind);
    ASSERT_TRUE(bytes.ok());
    format::Put32(*bytes, 4, dind);
  }
  auto next = tree_->NextExtent(*tx_, kDouble1k + 256);
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ((*next)->logical, kDouble1k + 256);
  EXPECT_EQ(ErrnoOf(tree_->Remove(*tx_, kDouble1k, kEndOfFile)), EUCLEAN);
  tx_->Abort();
}

// ---------------------------------------------------------------------------
// Logic tests on a memory device: 64 KiB blocks, whose triple indirect part
// reaches past 2^32 logical blocks, and blocks beyond 32-bit pointers.

// Single blocks come from a low region the device holds (indirect blocks);
// runs from `next_high`, never read or written.
class RegionAllocator : public BlockAllocator {
 public:
  explicit RegionAllocator(uint64_t next_high) : next_high_(next_high) {}
  absl::StatusOr<BlockRun> AllocateBlocks(Transaction&, uint64_t,
                                          uint64_t count, bool) override {
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
  uint64_t in_use() const { return in_use_; }

 private:
  uint64_t next_low_ = 16;
  uint64_t next_high_;
  uint64_t in_use_ = 0;
};

TEST(IndirectTreeMemoryTest, BigBlocksStopAt2To32) {
  constexpr uint32_t kBlockSize = 65536;
  constexpr uint64_t kMax = IndirectTree::MaxLogical(kBlockSize);
  auto device = io::MemoryDevice(std::vector<uint8_t>(kBlockSize * 32));
  io::BlockCache cache(*device, kBlockSize, uint64_t{1} << 32, 64);
  RegionAllocator alloc(1 << 20);
  format::Inode inode;
  inode.mode = format::kModeRegular | 0644;
  IndirectTree tree(inode, kBlockSize, alloc);
  Transaction tx(cache);

  auto empty = tree.Map(tx, 0);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->physical, 0u);
  EXPECT_EQ(empty->length, kMax);

  EXPECT_EQ(ErrnoOf(tree.MapForWrite(tx, kMax, 1, 0, false).status()), EFBIG);
  EXPECT_EQ(ErrnoOf(tree.MapForWrite(tx, kMax - 1, 2, 0, false).status()),
            EFBIG);
  auto last = tree.MapForWrite(tx, kMax - 1, 1, 0, false);
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_NE(last->physical, 0u);
  EXPECT_EQ(last->length, 1u);
  // TIND, DIND, IND and the data block.
  EXPECT_EQ(inode.blocks, 4u * (kBlockSize / 512));
  auto m = tree.Map(tx, kMax - 1);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->physical, last->physical);
  auto hole = tree.Map(tx, kMax - 2);
  ASSERT_TRUE(hole.ok());
  EXPECT_EQ(hole->physical, 0u);
  EXPECT_EQ(hole->length, 1u);
  EXPECT_EQ(Str(tree.NextExtent(tx, 0)),
            Str(std::optional<MappedExtent>(MappedExtent{kMax - 1, 1, false})));
  EXPECT_EQ(Str(tree.NextExtent(tx, kMax)), "none");

  ASSERT_TRUE(tree.Remove(tx, 0, kEndOfFile).ok());
  EXPECT_EQ(inode.blocks, 0u);
  EXPECT_EQ(alloc.in_use(), 0u);
  for (uint8_t byte : inode.block) EXPECT_EQ(byte, 0);
}

// Blocks at or past 2^32 cannot be held by a 32-bit pointer: the part of a
// run below stays, the rest goes back, and a run wholly above is ENOSPC.
TEST(IndirectTreeMemoryTest, BlocksPast32BitsAreRefused) {
  constexpr uint32_t kBlockSize = 4096;
  auto device = io::MemoryDevice(std::vector<uint8_t>(kBlockSize * 64));
  io::BlockCache cache(*device, kBlockSize, uint64_t{1} << 40, 64);
  RegionAllocator alloc((uint64_t{1} << 32) - 2);
  format::Inode inode;
  IndirectTree tree(inode, kBlockSize, alloc);
  Transaction tx(cache);
  auto m = tree.MapForWrite(tx, 0, 5, 0, false);
  EXPECT_EQ(ErrnoOf(m.status()), ENOSPC) << m.status();
  EXPECT_EQ(alloc.in_use(), 2u);
  EXPECT_EQ(inode.blocks, 2u * 8);
  auto first = tree.Map(tx, 0);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->physical, (uint64_t{1} << 32) - 2);
  EXPECT_EQ(first->length, 2u);
  auto rest = tree.Map(tx, 2);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->physical, 0u);
  ASSERT_TRUE(tree.Remove(tx, 0, kEndOfFile).ok());
  EXPECT_EQ(alloc.in_use(), 0u);
}

}  // namespace
}  // namespace ext4
