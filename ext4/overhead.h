// What statfs reports, computed the way the kernel's ext4 computes it, so
// that `df` on an e4fs mount prints the numbers it prints on a kernel mount.
//
// The kernel's f_blocks is not s_blocks_count: it leaves out the blocks the
// filesystem itself occupies for good ("overhead"). At mount it takes
//   - without bigalloc: always its own count (s_overhead_clusters is ignored);
//   - with bigalloc: s_overhead_clusters when it is nonzero and not larger
//     than s_blocks_count, else its own count;
// where its own count is
//   s_first_data_block
//   + per group: the superblock copy, the group descriptor blocks kept there
//     (the whole table, or s_first_meta_bg blocks, in groups with a
//     superblock copy; one block in the first, second and last group of a
//     meta group), the reserved GDT blocks (groups with a superblock copy),
//     the inode table (s_inodes_per_group / inodes per block) and the two
//     bitmaps. Without bigalloc this is geometry alone: flex_bg moves the
//     bitmaps and tables between groups but not their total, so the
//     descriptors are not read. With bigalloc each group counts the distinct
//     clusters its superblock copy, descriptor blocks (no reserved GDT
//     blocks) and every group's bitmaps and inode table that lie in it use;
//     an inode table counts only when it lies wholly inside one group and
//     ends before that group's last block, as in the kernel.
//   + the internal journal (i_size of the journal inode / block size), in
//     clusters rounded up.
// Nothing else is overhead: the orphan file, quota files, the resize inode's
// own blocks, lost+found and the root directory are ordinary used blocks.
#ifndef E4FS_EXT4_OVERHEAD_H_
#define E4FS_EXT4_OVERHEAD_H_

#include <cstdint>
#include <functional>

#include "absl/status/statusor.h"
#include "ext4/format/group_descriptor.h"
#include "ext4/format/superblock.h"

namespace ext4 {

// Blocks the kernel counts as filesystem overhead (metadata that is never
// free): the difference between blocks_count and statfs's f_blocks.
// `group` reads a group's descriptor (called only with bigalloc when
// s_overhead_clusters is not usable, once per group); `journal_blocks` is
// the internal journal's size in blocks (0 without one, or with an external
// journal device). Errors from `group` are returned as they are. O(groups)
// time; without bigalloc O(log groups), with bigalloc O(groups) memory.
// Descriptor values are not trusted: a bitmap or table outside
// [first_data_block, blocks_count) is counted in no group.
absl::StatusOr<uint64_t> OverheadBlocks(
    const format::Superblock& sb,
    const std::function<absl::StatusOr<format::GroupDescriptor>(uint32_t)>&
        group,
    uint64_t journal_blocks);

// The kernel's reserved pool (s_resv_clusters at mount), in blocks: with
// extents, 2% of the clusters or 4096 clusters, whichever is smaller; 0
// without extents (ext2/ext3). statfs keeps it out of f_bavail, on top of
// s_r_blocks_count.
uint64_t ReservedPoolBlocks(const format::Superblock& sb);

// The five counts of struct statfs, in blocks of sb.block_size() and
// inodes.
struct StatfsCounts {
  uint64_t blocks = 0;  // f_blocks: blocks_count - overhead
  uint64_t bfree = 0;   // f_bfree: free blocks
  uint64_t bavail = 0;  // f_bavail: bfree - (r_blocks + pool), 0 if below
  uint64_t files = 0;   // f_files: s_inodes_count
  uint64_t ffree = 0;   // f_ffree: free inodes
};

// statfs from the overhead (OverheadBlocks), the free block count (the sum
// of the groups' free counts, in blocks: clusters * cluster_ratio() with
// bigalloc) and the free inode count. f_blocks is clamped at 0 where the
// kernel would wrap around (an overhead larger than the filesystem).
StatfsCounts KernelStatfs(const format::Superblock& sb,
                          uint64_t overhead_blocks, uint64_t free_blocks,
                          uint64_t free_inodes);

}  // namespace ext4

#endif  // E4FS_EXT4_OVERHEAD_H_
