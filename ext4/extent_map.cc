// Maps file blocks through an extent tree, walking from the root in the
// inode down to a leaf on each call (the index blocks come from the block
// cache). Depth is checked at every level, so a hostile tree cannot loop.
#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "ext4/file_map.h"
#include "ext4/format/extent.h"

namespace ext4 {
namespace {

// One past the last logical block an extent tree can address.
constexpr uint64_t kLogicalLimit = uint64_t{1} << 32;

class ExtentMap final : public FileMap {
 public:
  ExtentMap(const format::Inode& inode, io::BlockCache& blocks,
            bool metadata_csum, uint32_t seed)
      : root_(inode.block),
        blocks_(blocks),
        metadata_csum_(metadata_csum),
        seed_(seed) {}

  absl::StatusOr<BlockMapping> Map(uint64_t logical) override {
    if (logical >= kLogicalLimit) return BlockMapping{0, 1, false};
    E4_ASSIGN_OR_RETURN(format::ExtentNode node,
                        format::ParseExtentNode(root_, -1));
    // The first logical block the current subtree does not cover.
    uint64_t subtree_end = kLogicalLimit;
    while (node.header.depth > 0) {
      const auto& indexes = node.indexes;
      auto it = std::upper_bound(
          indexes.begin(), indexes.end(), logical,
          [](uint64_t value, const format::ExtentIndex& index) {
            return value < index.logical;
          });
      if (it == indexes.begin()) {
        // Before the first index: a hole up to where the tree starts.
        uint64_t end = indexes.empty() ? subtree_end
                                       : std::min<uint64_t>(subtree_end,
                                                            indexes[0].logical);
        return Hole(logical, end);
      }
      if (it != indexes.end()) {
        subtree_end = std::min<uint64_t>(subtree_end, it->logical);
      }
      const format::ExtentIndex& index = *(it - 1);
      E4_ASSIGN_OR_RETURN(io::BlockRef block, blocks_.Read(index.child));
      if (metadata_csum_) {
        E4_RETURN_IF_ERROR(format::VerifyExtentBlockChecksum(*block, seed_));
      }
      int child_depth = node.header.depth - 1;
      auto child = format::ParseExtentNode(*block, child_depth);
      if (!child.ok()) {
        return Corrupt(absl::StrCat("extent block ", index.child, ": ",
                                    child.status().message()));
      }
      node = std::move(*child);
    }
    const auto& leaves = node.leaves;
    auto it =
        std::upper_bound(leaves.begin(), leaves.end(), logical,
                         [](uint64_t value, const format::ExtentLeaf& leaf) {
                           return value < leaf.logical;
                         });
    if (it != leaves.begin()) {
      const format::ExtentLeaf& leaf = *(it - 1);
      uint64_t end = uint64_t{leaf.logical} + leaf.length;
      if (logical < end) {
        uint64_t physical = leaf.physical + (logical - leaf.logical);
        uint64_t length = end - logical;
        if (physical >= blocks_.block_count() ||
            length > blocks_.block_count() - physical) {
          return Corrupt(absl::StrCat("extent at logical block ", leaf.logical,
                                      " points outside the filesystem"));
        }
        return BlockMapping{physical, length, leaf.unwritten};
      }
    }
    uint64_t end = it == leaves.end()
                       ? subtree_end
                       : std::min<uint64_t>(subtree_end, it->logical);
    return Hole(logical, end);
  }

 private:
  static BlockMapping Hole(uint64_t logical, uint64_t end) {
    return BlockMapping{0, end > logical ? end - logical : 1, false};
  }

  const std::array<uint8_t, 60> root_;
  io::BlockCache& blocks_;
  const bool metadata_csum_;
  const uint32_t seed_;
};

}  // namespace

std::unique_ptr<FileMap> MakeExtentMap(const format::Inode& inode,
                                       io::BlockCache& blocks,
                                       bool metadata_csum,
                                       uint32_t inode_checksum_seed) {
  return std::make_unique<ExtentMap>(inode, blocks, metadata_csum,
                                     inode_checksum_seed);
}

std::unique_ptr<FileMap> MakeFileMap(const format::Inode& inode,
                                     io::BlockCache& blocks, bool metadata_csum,
                                     uint32_t inode_checksum_seed) {
  if (inode.flags & format::kInodeFlagExtents) {
    return MakeExtentMap(inode, blocks, metadata_csum, inode_checksum_seed);
  }
  return MakeIndirectMap(inode, blocks);
}

}  // namespace ext4
