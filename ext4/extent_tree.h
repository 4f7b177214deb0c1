// Changing a file's extent tree: mapping new blocks (with merging into the
// neighbouring extents), converting unwritten extents, punching holes and
// truncating. Nodes split when full and the tree grows a level when the
// four-entry root in the inode overflows; emptied blocks are freed and the
// tree shrinks back when the root's only child fits in the inode again.
//
// Invariants kept on every change (e2fsck checks them): each index entry's
// logical block equals the first logical block of its subtree, no non-root
// node is left empty, and every changed tree block gets its checksum tail
// (metadata_csum).
#ifndef E4FS_EXT4_EXTENT_TREE_H_
#define E4FS_EXT4_EXTENT_TREE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ext4/block_allocator.h"
#include "ext4/file_map.h"
#include "ext4/format/extent.h"
#include "ext4/format/inode.h"
#include "ext4/transaction.h"

namespace ext4 {

// One past the last logical block a file can have (32-bit block numbers):
// Remove(tx, first, kEndOfFile) cuts everything from `first` on.
inline constexpr uint64_t kEndOfFile = uint64_t{1} << 32;

// One extent (or the part of one at and after the asked block).
struct MappedExtent {
  uint64_t logical = 0;
  uint64_t length = 0;
  bool unwritten = false;
};

class ExtentTree {
 public:
  // One past the last logical block an extent can map (extents end at or
  // before 2^32 - 1). Remove(first, kMaxLogical) truncates to `first`.
  static constexpr uint64_t kMaxLogical = 0xFFFFFFFFull;

  // Works on `inode` in memory: its i_block root, i_blocks (512-byte units,
  // tree blocks and data blocks) and flags. The caller writes the inode
  // afterwards. `inode_seed` is InodeChecksumSeed(fs seed, ino, generation),
  // used for the tree block tails under metadata_csum.
  ExtentTree(format::Inode& inode, uint32_t block_size, bool metadata_csum,
             uint32_t inode_seed, BlockAllocator& allocator);

  // An empty tree in the inode (magic, eh_max 4, depth 0) and the EXTENTS
  // flag.
  static void InitEmpty(format::Inode& inode);

  // Whether the allocator may dip into the root reserve (default: no).
  void set_use_reserve(bool use_reserve) { use_reserve_ = use_reserve; }
  // The inode the tree belongs to: its data blocks are allocated with
  // AllocateFileBlocks (0, the default: plain AllocateBlocks).
  void set_owner(uint32_t ino) { owner_ = ino; }

  // The mapping of `logical`, read through the transaction (so it sees this
  // transaction's own changes). Holes have physical 0 and run up to the next
  // mapped block.
  absl::StatusOr<BlockMapping> Map(Transaction& tx, uint64_t logical);

  // Makes [logical, logical + count) mapped: every unmapped part gets blocks
  // from the allocator, near the physical end of the extent before it (files
  // stay contiguous) or, with no extent before it, near `goal` (0: anywhere).
  // New extents are unwritten when `unwritten`; they merge into neighbouring
  // extents of the same state. Blocks already mapped are left as they are.
  // Returns the mapping of `logical` afterwards. Adds the data blocks (and any
  // new tree blocks) to i_blocks. EFBIG past kMaxLogical, ENOSPC from the
  // allocator (blocks mapped before it ran out stay mapped).
  absl::StatusOr<BlockMapping> MapForWrite(Transaction& tx, uint64_t logical,
                                           uint64_t count, uint64_t goal,
                                           bool unwritten);

  // Marks the unwritten extents in [logical, logical + count) written,
  // splitting extents that reach outside the range and merging the written
  // pieces into written neighbours. Holes are skipped.
  absl::Status MarkWritten(Transaction& tx, uint64_t logical, uint64_t count);

  // The reverse, for FALLOC_FL_ZERO_RANGE: the written extents in the range
  // become unwritten (they read as zeros from now on).
  absl::Status MarkUnwritten(Transaction& tx, uint64_t logical, uint64_t count);

  // Unmaps [first, end) (end >= kMaxLogical: to the end of the file), freeing
  // the data blocks and emptied tree blocks, splitting an extent that
  // straddles the range, and shrinking the tree when it fits in fewer levels.
  // Subtracts the freed blocks from i_blocks. May need one new tree block
  // (a punched extent splits in two): ENOSPC then, with nothing changed.
  absl::Status Remove(Transaction& tx, uint64_t first, uint64_t end);

  // The first mapped block at or after `logical` (SEEK_DATA / SEEK_HOLE):
  // where the run starts (`logical` itself when it is mapped), how many
  // blocks of the same extent follow, and its state. nullopt when nothing is
  // mapped there or after.
  absl::StatusOr<std::optional<MappedExtent>> NextExtent(Transaction& tx,
                                                         uint64_t logical);

  // Depth of the tree as the root in the inode says (0: extents in i_block).
  int depth() const;

 private:
  // One node on the way down from the root to a leaf.
  struct Level {
    uint64_t block = 0;  // 0 for the root in i_block
    format::ExtentNode node;
    size_t index = 0;  // the index entry followed to the next level
  };
  using Path = std::vector<Level>;

  // Where a logical block lies in the tree.
  struct Lookup {
    Path path;
    // Leaves before `pos` start at or before the block.
    size_t pos = 0;
    // leaves[pos - 1] holds the block.
    bool mapped = false;
    // For a hole: the first mapped block after it (or kMaxLogical).
    uint64_t hole_end = 0;
  };

  absl::StatusOr<format::ExtentNode> ReadNode(Transaction& tx, uint64_t block,
                                              int depth);
  absl::StatusOr<Path> LoadPath(Transaction& tx, uint64_t logical);
  absl::StatusOr<Lookup> Find(Transaction& tx, uint64_t logical);
  // Where the leaf after the path's leaf starts, kMaxLogical if it is last.
  static uint64_t NextLeafStart(const Path& path);

  // Puts `extent` into the hole the lookup found.
  absl::Status Insert(Transaction& tx, Lookup& lookup,
                      const format::ExtentLeaf& extent);
  absl::Status Convert(Transaction& tx, uint64_t logical, uint64_t count,
                       bool to_unwritten);

  // Writes path[level].node, changed in memory (entries added, removed or
  // changed, possibly more than eh_max or none), and repairs the tree above
  // it: splits, growth, freeing emptied nodes and index keys. `hint` is the
  // position of the entry that was added, so that appends split off just the
  // last entry and keep the nodes full. The new blocks it needs are
  // allocated before anything changes.
  absl::Status Update(Transaction& tx, Path& path, size_t level, size_t hint);
  absl::Status Apply(Transaction& tx, Path& path, size_t level, size_t hint,
                     std::vector<uint64_t>& reserved);
  absl::Status WriteNode(Transaction& tx, uint64_t block,
                         const format::ExtentNode& node, bool fresh);
  absl::Status FreeTreeBlock(Transaction& tx, uint64_t block);
  // Pulls the root's only child into the inode while it fits.
  absl::Status Shrink(Transaction& tx);

  uint64_t TreeBlockGoal(const Path& path) const;
  void AddBlocks(uint64_t count);
  void SubtractBlocks(uint64_t count);

  format::Inode& inode_;
  const uint32_t block_size_;
  const bool metadata_csum_;
  const uint32_t seed_;
  BlockAllocator& allocator_;
  bool use_reserve_ = false;
  uint32_t owner_ = 0;
};

}  // namespace ext4

#endif  // E4FS_EXT4_EXTENT_TREE_H_
