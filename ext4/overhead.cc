#include "ext4/overhead.h"

#include <algorithm>
#include <vector>

#include "ext4/errno_status.h"

namespace ext4 {
namespace {

using format::Superblock;

// Groups in [0, end) that hold a superblock copy. Only the candidates are
// tried (group 0 and 1, the powers of 3, 5 and 7, or the two sparse_super2
// backup groups), so this is O(log end).
uint64_t GroupsWithSuperblock(const Superblock& sb, uint64_t end) {
  if (end == 0) return 0;
  const bool sparse2 = sb.has_compat(format::kCompatSparseSuper2);
  if (!sparse2 && !sb.has_ro_compat(format::kRoCompatSparseSuper)) return end;
  std::vector<uint64_t> candidates = {0};
  if (sparse2) {
    candidates.push_back(sb.backup_bgs[0]);
    candidates.push_back(sb.backup_bgs[1]);
  } else {
    candidates.push_back(1);
    for (uint64_t base : {3u, 5u, 7u}) {
      for (uint64_t power = base; power < end; power *= base) {
        candidates.push_back(power);
      }
    }
  }
  std::sort(candidates.begin(), candidates.end());
  candidates.erase(std::unique(candidates.begin(), candidates.end()),
                   candidates.end());
  uint64_t count = 0;
  for (uint64_t group : candidates) {
    if (group < end &&
        format::GroupHasSuperblock(sb, static_cast<uint32_t>(group))) {
      ++count;
    }
  }
  return count;
}

// Groups in [start, end) (start a multiple of per_block) that keep a meta_bg
// descriptor block: the first, second and last group of each meta group.
uint64_t MetaBgDescriptorGroups(uint64_t per_block, uint64_t start,
                                uint64_t end) {
  std::vector<uint64_t> residues = {0};
  if (per_block >= 2) residues.push_back(1);
  if (per_block >= 3) residues.push_back(per_block - 1);
  uint64_t count = 0;
  for (uint64_t r : residues) {
    if (start + r < end) count += (end - 1 - start - r) / per_block + 1;
  }
  return count;
}

// Descriptor blocks (primary or backup) that group `group` holds.
uint64_t DescriptorBlocksIn(const Superblock& sb, uint32_t group) {
  const uint32_t per_block = sb.descriptors_per_block();
  const bool meta_bg = sb.has_incompat(format::kIncompatMetaBg);
  if (!meta_bg || group / per_block < sb.first_meta_bg) {
    if (!format::GroupHasSuperblock(sb, group)) return 0;
    return meta_bg ? sb.first_meta_bg : sb.descriptor_blocks();
  }
  const uint32_t r = group % per_block;
  return (r == 0 || r == 1 || r == per_block - 1) ? 1 : 0;
}

// The kernel's s_itb_per_group: inodes per group / inodes per block,
// rounded down.
uint64_t InodeTableBlocks(const Superblock& sb) {
  const uint32_t per_block = sb.inodes_per_block();
  return per_block == 0 ? 0 : sb.inodes_per_group / per_block;
}

// Without bigalloc every group counts its superblock copy, descriptor and
// reserved GDT blocks, two bitmaps and an inode table, wherever flex_bg put
// them: geometry alone.
uint64_t GroupOverheadBlocks(const Superblock& sb) {
  const uint64_t groups = sb.group_count();
  const uint64_t with_super = GroupsWithSuperblock(sb, groups);
  uint64_t descriptors;
  if (sb.has_incompat(format::kIncompatMetaBg)) {
    const uint64_t per_block = sb.descriptors_per_block();
    const uint64_t meta_start =
        std::min<uint64_t>(uint64_t{sb.first_meta_bg} * per_block, groups);
    descriptors = GroupsWithSuperblock(sb, meta_start) * sb.first_meta_bg +
                  MetaBgDescriptorGroups(per_block, meta_start, groups);
  } else {
    descriptors = with_super * sb.descriptor_blocks();
  }
  return with_super * (1 + uint64_t{sb.reserved_gdt_blocks}) + descriptors +
         groups * (InodeTableBlocks(sb) + 2);
}

// A run of clusters [first, last] inside one group, relative to its start.
struct ClusterRun {
  uint32_t group;
  uint32_t first;
  uint32_t last;
  bool operator<(const ClusterRun& o) const {
    return group != o.group ? group < o.group : first < o.first;
  }
};

// With bigalloc the groups count distinct clusters, as the kernel does with
// a bitmap per group; here every structure becomes a run of clusters in the
// group it lies in, and the runs of a group are merged after sorting.
absl::StatusOr<uint64_t> GroupOverheadClusters(
    const Superblock& sb,
    const std::function<absl::StatusOr<format::GroupDescriptor>(uint32_t)>&
        group_of) {
  const uint32_t groups = sb.group_count();
  const uint64_t ratio = sb.cluster_ratio();
  const uint64_t per_group = sb.blocks_per_group;
  const uint64_t itb = InodeTableBlocks(sb);
  const uint64_t first_data = sb.first_data_block;
  std::vector<ClusterRun> runs;

  // Adds [block, block + count) when it lies inside the filesystem and, as
  // the kernel requires, inside one group (ending before the group's last
  // block when `short_of_end`).
  auto add = [&](uint64_t block, uint64_t count, bool short_of_end) {
    if (count == 0 || block < first_data || block >= sb.blocks_count ||
        sb.blocks_count - block < count) {
      return;
    }
    const uint64_t offset = (block - first_data) % per_group;
    const uint64_t limit = short_of_end ? per_group - 1 : per_group;
    if (offset + count > limit) return;
    runs.push_back({static_cast<uint32_t>((block - first_data) / per_group),
                    static_cast<uint32_t>(offset / ratio),
                    static_cast<uint32_t>((offset + count - 1) / ratio)});
  };

  for (uint32_t g = 0; g < groups; ++g) {
    auto gd = group_of(g);
    if (!gd.ok()) return gd.status();
    add(gd->block_bitmap, 1, false);
    add(gd->inode_bitmap, 1, false);
    add(gd->inode_table, itb, true);
    // The superblock copy in block 0 of the group, the descriptor blocks
    // right after it: clusters 0 up to the last of them.
    const uint64_t super = format::GroupHasSuperblock(sb, g) ? 1 : 0;
    const uint64_t descriptors =
        std::min(DescriptorBlocksIn(sb, g), per_group - super);
    if (super + descriptors > 0) {
      runs.push_back(
          {g, 0, static_cast<uint32_t>((super + descriptors - 1) / ratio)});
    }
  }

  std::sort(runs.begin(), runs.end());
  uint64_t clusters = 0;
  for (size_t i = 0; i < runs.size();) {
    const uint32_t group = runs[i].group;
    uint32_t first = runs[i].first;
    uint32_t last = runs[i].last;
    for (++i; i < runs.size() && runs[i].group == group; ++i) {
      if (runs[i].first > last) {
        clusters += uint64_t{last} - first + 1;
        first = runs[i].first;
      }
      last = std::max(last, runs[i].last);
    }
    clusters += uint64_t{last} - first + 1;
  }
  return clusters;
}

}  // namespace

absl::StatusOr<uint64_t> OverheadBlocks(
    const format::Superblock& sb,
    const std::function<absl::StatusOr<format::GroupDescriptor>(uint32_t)>&
        group,
    uint64_t journal_blocks) {
  if (!sb.bigalloc()) {
    return uint64_t{sb.first_data_block} + GroupOverheadBlocks(sb) +
           journal_blocks;
  }
  const uint64_t ratio = sb.cluster_ratio();
  // mke2fs records the bigalloc overhead; the kernel takes it unless it is
  // larger than the filesystem (compared with the block count, as it does).
  if (sb.overhead_clusters != 0 && sb.overhead_clusters <= sb.blocks_count) {
    return uint64_t{sb.overhead_clusters} * ratio;
  }
  E4_ASSIGN_OR_RETURN(uint64_t clusters, GroupOverheadClusters(sb, group));
  clusters += sb.first_data_block / ratio;
  clusters += journal_blocks / ratio + (journal_blocks % ratio != 0 ? 1 : 0);
  return clusters * ratio;
}

uint64_t ReservedPoolBlocks(const format::Superblock& sb) {
  if (!sb.has_incompat(format::kIncompatExtents)) return 0;
  const uint64_t ratio = sb.cluster_ratio();
  const uint64_t clusters = sb.blocks_count / ratio;
  return std::min<uint64_t>(clusters / 50, 4096) * ratio;
}

StatfsCounts KernelStatfs(const format::Superblock& sb,
                          uint64_t overhead_blocks, uint64_t free_blocks,
                          uint64_t free_inodes) {
  StatfsCounts out;
  out.blocks =
      sb.blocks_count > overhead_blocks ? sb.blocks_count - overhead_blocks : 0;
  out.bfree = free_blocks;
  const uint64_t reserved = sb.r_blocks_count + ReservedPoolBlocks(sb);
  out.bavail = free_blocks > reserved ? free_blocks - reserved : 0;
  out.files = sb.inodes_count;
  out.ffree = free_inodes;
  return out;
}

}  // namespace ext4
