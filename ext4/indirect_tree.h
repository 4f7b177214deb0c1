// Changing an ext2/ext3 indirect block map: i_block[0..11] point at data
// blocks directly, i_block[12], [13] and [14] at the single, double and
// triple indirect blocks, each a full block of 32-bit little-endian block
// numbers (0: a hole). The interface mirrors ExtentTree's so that the write
// paths can use either (see file_blocks.h).
//
// Layout of new blocks follows ext2/ext3: data goes right after the previous
// data block of the file, and an indirect block goes right before the first
// data block it maps, so a file written in order reads as one stream
// (data 0-11, IND, data 12.., DIND, IND, data ..).
//
// Invariants kept on every change (e2fsck checks them): i_blocks counts
// every data and indirect block, and no indirect block is left all zero
// (emptied ones are freed and their pointer cleared).
#ifndef E4FS_EXT4_INDIRECT_TREE_H_
#define E4FS_EXT4_INDIRECT_TREE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ext4/block_allocator.h"
#include "ext4/extent_tree.h"
#include "ext4/file_map.h"
#include "ext4/format/inode.h"
#include "ext4/transaction.h"

namespace ext4 {

class IndirectTree {
 public:
  // Says whether [first, first + count) touches filesystem metadata
  // (superblocks, descriptors, bitmaps, inode tables).
  using MetadataCheck = std::function<bool(uint64_t first, uint64_t count)>;

  // Works on `inode` in memory: its i_block pointers and i_blocks (512-byte
  // units, data and indirect blocks; format::Inode holds that unit whatever
  // the on-disk encoding). The caller writes the inode afterwards.
  IndirectTree(format::Inode& inode, uint32_t block_size,
               BlockAllocator& allocator);

  // One past the last logical block the scheme addresses:
  // 12 + n + n^2 + n^3 with n = block_size / 4 pointers per block, capped at
  // 2^32 (logical block numbers are 32-bit).
  static constexpr uint64_t MaxLogical(uint32_t block_size) {
    const uint64_t n = block_size / 4;
    const uint64_t total = 12 + n + n * n + n * n * n;
    return total < (uint64_t{1} << 32) ? total : (uint64_t{1} << 32);
  }

  // Whether the allocator may dip into the root reserve (default: no).
  void set_use_reserve(bool use_reserve) { use_reserve_ = use_reserve; }

  // Optional checks on the pointers read from disk (the kernel's
  // ext4_inode_block_valid). Blocks at or past `block_count` (the
  // filesystem's size) and blocks the metadata check claims are corrupt:
  // EUCLEAN from every call that meets them. Without them, only indirect
  // block pointers are checked against the size (by tx.Read), and
  // FreeBlocks refuses the rest when they are freed.
  void set_block_count(uint64_t block_count) { block_count_ = block_count; }
  void set_metadata_check(MetadataCheck check) {
    is_metadata_ = std::move(check);
  }

  // The mapping of `logical`, read through the transaction (so it sees this
  // transaction's own changes). A mapped block's run goes on while the
  // pointers of its array (the direct pointers, or its indirect block) stay
  // physically contiguous. A hole runs over the zero pointers that follow it
  // in the array where it was found (whole subtrees for a missing indirect
  // block), so it may end before the next mapped block but never after.
  absl::StatusOr<BlockMapping> Map(Transaction& tx, uint64_t logical);

  // Makes [logical, logical + count) mapped. Unmapped blocks get data
  // blocks from the allocator, in runs as long as the array being filled
  // allows, right after the file's previous data block (the block before
  // `logical`, or the nearest mapped one before it in the same indirect
  // block, or the indirect block itself); with nothing before them, near
  // `goal` (0: anywhere). The indirect blocks needed are allocated on the
  // way, each right before the data it maps, and zero-filled. Blocks already
  // mapped are left as they are. Returns the mapping of `logical`
  // afterwards. Adds every new block to i_blocks.
  // EOPNOTSUPP for `unwritten` (indirect maps have no such state), EFBIG
  // past MaxLogical, ENOSPC from the allocator: the blocks mapped before it
  // ran out stay mapped and counted; indirect blocks allocated for data that
  // could not be allocated are given back.
  absl::StatusOr<BlockMapping> MapForWrite(Transaction& tx, uint64_t logical,
                                           uint64_t count, uint64_t goal,
                                           bool unwritten);

  // Unmaps [first, end) (end >= MaxLogical: to the end of the file),
  // freeing the data blocks and the indirect blocks left all zero (their
  // pointers cleared). Subtracts the freed blocks from i_blocks. Any range
  // may be removed, the middle of the file included. Each data run is freed
  // before its pointers are cleared, so after an error (a corrupt pointer)
  // the map and i_blocks still agree with what was freed.
  absl::Status Remove(Transaction& tx, uint64_t first, uint64_t end);

  // The first mapped block at or after `logical` (SEEK_DATA / SEEK_HOLE),
  // and how many logically consecutive blocks from it are mapped (across
  // indirect blocks). Missing indirect blocks skip their whole subtree.
  // nullopt when nothing is mapped there or after. Never unwritten.
  absl::StatusOr<std::optional<MappedExtent>> NextExtent(Transaction& tx,
                                                         uint64_t logical);

 private:
  // Where a logical block lies: `depth` indirect levels (0: a direct
  // pointer) below root slot `root`, and the slot in each indirect block on
  // the way (slot[1] in the top one, slot[depth] in the one that maps data).
  struct Position {
    int depth = 0;
    size_t root = 0;
    size_t slot[4] = {0, 0, 0, 0};
  };

  // The array of data pointers holding a logical block, or the hole found on
  // the way down.
  struct Leaf {
    bool found = false;
    uint64_t block = 0;  // the indirect block; 0 for the direct pointers
    size_t slot = 0;
    uint64_t hole = 0;  // when !found: blocks unmapped from the asked one
  };

  Position Locate(uint64_t logical) const;
  // Blocks covered by one pointer `levels` above the data (levels 0: 1).
  uint64_t Span(int levels) const;
  // First logical block of the subtree of root slot 12 + d - 1 (d 1..3).
  uint64_t SubtreeBase(int d) const;

  uint32_t RootPointer(size_t slot) const;
  void SetRootPointer(size_t slot, uint32_t value);
  // The pointers of the array `block` (0: the inode's direct pointers).
  absl::StatusOr<format::Bytes> ReadArray(Transaction& tx, uint64_t block);
  absl::Status SetPointer(Transaction& tx, uint64_t block, size_t slot,
                          uint32_t value);

  // Checks of pointers read from disk.
  absl::Status CheckIndirect(uint64_t block) const;
  absl::Status CheckData(uint64_t first, uint64_t count) const;

  absl::StatusOr<Leaf> FindLeaf(Transaction& tx, uint64_t logical);
  // Hole length from root slot `slot` (zero) on, `offset` blocks into it.
  uint64_t RootHole(size_t slot, uint64_t offset) const;

  // Allocates one zeroed indirect block and links it at (`parent`, `slot`).
  absl::StatusOr<uint64_t> NewIndirect(Transaction& tx, uint64_t parent,
                                       size_t slot, uint64_t goal);
  // Allocates up to `count` contiguous blocks that 32-bit pointers can hold.
  absl::StatusOr<BlockRun> Allocate(Transaction& tx, uint64_t goal,
                                    uint64_t count);
  // Frees a data run and clears its pointers [slot, slot + count) in array
  // `block` (0: direct).
  absl::Status FreeDataRun(Transaction& tx, uint64_t block, size_t slot,
                           uint32_t first, size_t count);
  // Frees an indirect block that holds nothing any more and clears its
  // pointer at (`parent`, `slot`).
  absl::Status FreeIndirect(Transaction& tx, uint64_t parent, size_t slot,
                            uint64_t block);

  // Unmaps offsets [lo, hi) of the subtree under indirect block `block`,
  // `levels` levels deep. Returns whether the block is all zero afterwards.
  absl::StatusOr<bool> RemoveIn(Transaction& tx, uint64_t block, int levels,
                                uint64_t lo, uint64_t hi);
  // The first mapped offset at or after `from` in the subtree under `block`.
  // `empty` collects the subtrees (block and level) found empty in full.
  absl::StatusOr<std::optional<uint64_t>> FirstIn(Transaction& tx,
                                                  uint64_t block, int levels,
                                                  uint64_t from,
                                                  std::set<uint64_t>& empty);
  absl::StatusOr<std::optional<uint64_t>> FirstMapped(Transaction& tx,
                                                      uint64_t logical);
  // How many blocks from offset `from` of the subtree under `block` are
  // mapped one after the other (up to the subtree's end). `full` collects
  // the subtrees (block and level) found mapped in full, which are not
  // walked again.
  absl::StatusOr<uint64_t> MappedRunIn(Transaction& tx, uint64_t block,
                                       int levels, uint64_t from,
                                       std::set<uint64_t>& full);

  void AddBlocks(uint64_t count);
  void SubtractBlocks(uint64_t count);

  format::Inode& inode_;
  const uint32_t block_size_;
  const uint64_t per_block_;  // pointers in one indirect block
  const uint64_t max_logical_;
  BlockAllocator& allocator_;
  bool use_reserve_ = false;
  uint64_t block_count_ = uint64_t{1} << 32;
  MetadataCheck is_metadata_;
};

}  // namespace ext4

#endif  // E4FS_EXT4_INDIRECT_TREE_H_
