// Maps file blocks through the ext2/ext3 indirect scheme: 12 direct pointers,
// then single, double and triple indirect blocks of 32-bit block numbers.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "ext4/file_map.h"
#include "ext4/format/endian.h"

namespace ext4 {
namespace {

constexpr int kDirectBlocks = 12;
// One past the last logical block any file map addresses (as extents).
constexpr uint64_t kLogicalLimit = uint64_t{1} << 32;

class IndirectMap final : public FileMap {
 public:
  IndirectMap(const format::Inode& inode, io::BlockCache& blocks)
      : root_(inode.block),
        blocks_(blocks),
        per_block_(blocks.block_size() / 4) {}

  absl::StatusOr<BlockMapping> Map(uint64_t logical) override {
    format::Bytes root(root_.data(), root_.size());
    if (logical < kDirectBlocks) {
      return FromArray(root, static_cast<uint32_t>(logical), kDirectBlocks);
    }
    uint64_t rest = logical - kDirectBlocks;
    uint64_t span = per_block_;  // blocks covered by the tree at this level
    for (int levels = 1; levels <= 3; ++levels) {
      if (rest < span) {
        return Walk(format::Le32(root, 4 * (kDirectBlocks + levels - 1)),
                    levels, rest, span);
      }
      rest -= span;
      span *= per_block_;
    }
    // Beyond what the scheme can address: a hole up to where no file map
    // reaches (one block at a time, a walk to a hostile i_size would take
    // billions of steps).
    return BlockMapping{
        0, logical < kLogicalLimit ? kLogicalLimit - logical : 1, false};
  }

 private:
  // Descends `levels` indirect blocks from `pointer` to the block at `index`
  // within a subtree covering `span` blocks.
  absl::StatusOr<BlockMapping> Walk(uint32_t pointer, int levels,
                                    uint64_t index, uint64_t span) {
    while (true) {
      if (pointer == 0) return BlockMapping{0, span - index, false};
      E4_ASSIGN_OR_RETURN(io::BlockRef block, blocks_.Read(pointer));
      format::Bytes entries(*block);
      span /= per_block_;  // blocks covered by each pointer in this block
      uint64_t slot = index / span;
      if (levels == 1) {
        return FromArray(entries, static_cast<uint32_t>(slot), per_block_);
      }
      pointer = format::Le32(entries, 4 * slot);
      index %= span;
      --levels;
    }
  }

  // Maps slot `slot` of an array of `count` block pointers, counting how many
  // following slots continue the run (or the hole).
  absl::StatusOr<BlockMapping> FromArray(format::Bytes array, uint32_t slot,
                                         uint32_t count) {
    uint32_t first = format::Le32(array, 4 * slot);
    uint64_t length = 1;
    while (slot + length < count) {
      uint32_t next = format::Le32(array, 4 * (slot + length));
      if (first == 0 ? next != 0 : next != first + length) break;
      ++length;
    }
    if (first != 0 && (first >= blocks_.block_count() ||
                       length > blocks_.block_count() - first)) {
      return Corrupt(
          absl::StrCat("block pointer ", first, " is outside the filesystem"));
    }
    return BlockMapping{first, length, false};
  }

  const std::array<uint8_t, 60> root_;
  io::BlockCache& blocks_;
  const uint32_t per_block_;
};

}  // namespace

std::unique_ptr<FileMap> MakeIndirectMap(const format::Inode& inode,
                                         io::BlockCache& blocks) {
  return std::make_unique<IndirectMap>(inode, blocks);
}

}  // namespace ext4
