// The geometry of a new filesystem: group sizes, inode counts, and where
// every block mkfs writes goes. Pure arithmetic, no I/O: mkfs.cc writes what
// this plans.
//
// Placement follows mke2fs:
//  - a superblock copy and the descriptor table at the start of group 0 and
//    of every backup group (all groups without sparse_super; 0, 1 and the
//    powers of 3, 5 and 7 with it);
//  - with flex_bg, the bitmaps and inode tables of each flex group packed
//    into its first group: the block bitmaps of its groups, then their inode
//    bitmaps, then their inode tables (spilling into the following groups
//    when they do not fit, around the backup copies there);
//    without flex_bg, each group's own at its start;
//  - the root directory and lost+found right after the first flex group's
//    tables;
//  - the journal, contiguous, from the middle of the filesystem (rounded
//    down to a flex group), with its extent leaf or indirect blocks in front
//    of the data they map.
#ifndef E4FS_EXT4_MKFS_LAYOUT_H_
#define E4FS_EXT4_MKFS_LAYOUT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ext4/mkfs/options.h"

namespace ext4::mkfs {

// A run of blocks [first, first + count).
struct BlockRun {
  uint64_t first = 0;
  uint64_t count = 0;
  uint64_t end() const { return first + count; }
};

struct GroupPlacement {
  uint64_t block_bitmap = 0;
  uint64_t inode_bitmap = 0;
  uint64_t inode_table = 0;
};

struct Geometry {
  uint32_t block_size = 0;
  uint32_t log_block_size = 0;  // block size = 1024 << this
  uint64_t blocks_count = 0;
  uint32_t first_data_block = 0;
  uint32_t blocks_per_group = 0;
  uint32_t group_count = 0;
  uint32_t inodes_per_group = 0;
  uint32_t inode_size = 0;
  uint32_t inode_table_blocks = 0;  // per group
  uint32_t descriptor_size = 0;     // 32, or 64 with 64bit
  uint32_t descriptor_blocks = 0;
  uint32_t log_groups_per_flex = 0;  // 0 without flex_bg
  uint64_t reserved_blocks = 0;      // s_r_blocks_count
  // The features after mkfs's adjustments (no journal on a filesystem too
  // small for one, no extra_isize with 128-byte inodes, metadata_csum
  // replacing gdt_csum).
  FeatureSet features;

  std::vector<GroupPlacement> groups;

  uint64_t root_block = 0;
  uint64_t lost_found_block = 0;  // the first of lost_found_blocks
  uint32_t lost_found_blocks = 0;

  // Journal (inode 8): `journal_blocks` data blocks and
  // `journal_mapping_blocks` mapping blocks (the extent leaf, when the
  // extents do not fit in the inode, or the indirect blocks), laid out in
  // the order of `journal_runs`: the leaf first, or each indirect block
  // before the data it maps. One run unless backup superblocks lie in the
  // way. Empty without has_journal.
  uint32_t journal_blocks = 0;
  uint32_t journal_mapping_blocks = 0;
  std::vector<BlockRun> journal_runs;

  // Every used block, sorted and merged: the exact content of the block
  // bitmaps.
  std::vector<BlockRun> used;
  uint64_t free_blocks = 0;
  uint64_t overhead_blocks =
      0;  // s_overhead_clusters: all but root, lost+found

  // What mkfs adjusted, in words, for the tool to print.
  std::vector<std::string> notes;

  uint64_t inodes_count() const {
    return uint64_t{inodes_per_group} * group_count;
  }
  uint64_t group_first_block(uint32_t group) const {
    return first_data_block + uint64_t{group} * blocks_per_group;
  }
  // One past the group's last block (the last group may be short).
  uint64_t group_end_block(uint32_t group) const;
  // Whether the group holds a superblock copy and descriptor table.
  bool has_superblock(uint32_t group) const;
  // Blocks at the start of the group taken by those copies.
  uint32_t superblock_blocks(uint32_t group) const {
    return has_superblock(group) ? 1 + descriptor_blocks : 0;
  }
};

// mke2fs's default journal size for a filesystem of `blocks` blocks: 0 (none)
// below 2048 blocks, then 1024 blocks up to 32768, 4096 up to 256 Ki, 8192
// up to 512 Ki, 16384 up to 4 Mi, 32768 up to 8 Mi, 65536 up to 16 Mi,
// 131072 up to 32 Mi, 262144 beyond.
uint32_t DefaultJournalBlocks(uint64_t blocks);

// Blocks of lost+found as mke2fs makes it: 16 KiB, at least two blocks, at
// most the 12 direct blocks.
uint32_t LostFoundBlocks(uint32_t block_size);

// Plans the filesystem `options` describe on a device of `device_size`
// bytes. EINVAL for invalid options (sizes, feature combinations), EFBIG
// for a size the features cannot address, ENOSPC for a device too small.
absl::StatusOr<Geometry> PlanFilesystem(const MkfsOptions& options,
                                        uint64_t device_size);

}  // namespace ext4::mkfs

#endif  // E4FS_EXT4_MKFS_LAYOUT_H_
