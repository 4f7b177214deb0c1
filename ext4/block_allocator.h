// What file maps, directories and xattr blocks need from block allocation.
// The bitmap allocator implements it; tests can use a simple fake.
#ifndef E4FS_EXT4_BLOCK_ALLOCATOR_H_
#define E4FS_EXT4_BLOCK_ALLOCATOR_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ext4/transaction.h"

namespace ext4 {

struct BlockRun {
  uint64_t first = 0;
  uint64_t count = 0;
};

class BlockAllocator {
 public:
  virtual ~BlockAllocator() = default;

  // Allocates between 1 and `count` contiguous free blocks, as close after
  // `goal` as possible (goal 0: anywhere). ENOSPC when nothing is free to
  // this caller (the root reserve is usable only when `use_reserve`).
  virtual absl::StatusOr<BlockRun> AllocateBlocks(Transaction& tx,
                                                  uint64_t goal, uint64_t count,
                                                  bool use_reserve) = 0;
  // Data blocks for logical blocks [logical, logical + count) of file
  // `owner` (an inode number): as AllocateBlocks. An allocator may keep the
  // blocks that follow reserved for the same file (in memory only), so that
  // a file written in pieces, or out of order by concurrent write-backs,
  // stays contiguous.
  virtual absl::StatusOr<BlockRun> AllocateFileBlocks(
      Transaction& tx, uint32_t owner, uint64_t logical, uint64_t goal,
      uint64_t count, bool use_reserve) {
    (void)owner;
    (void)logical;
    return AllocateBlocks(tx, goal, count, use_reserve);
  }
  // Returns blocks to the free pool. EUCLEAN if any is already free or is
  // filesystem metadata.
  virtual absl::Status FreeBlocks(Transaction& tx, uint64_t first,
                                  uint64_t count) = 0;

  // Whether [first, first + count) touches filesystem metadata (superblock
  // copies, descriptors, bitmaps, inode tables) or lies outside the
  // filesystem: a block pointer read from disk that does is corrupt.
  // Allocators that do not know answer false.
  virtual bool OverlapsMetadata(uint64_t first, uint64_t count) {
    (void)first;
    (void)count;
    return false;
  }
};

}  // namespace ext4

#endif  // E4FS_EXT4_BLOCK_ALLOCATOR_H_
