#include "ext4/mkfs/layout.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <iterator>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "ext4/format/extent.h"
#include "ext4/format/superblock.h"

namespace ext4::mkfs {
namespace {

// mke2fs's limits.
constexpr uint32_t kMaxBlocksPerGroup = 65528;  // (1 << 16) - 8
constexpr uint32_t kMinInodesPerGroup = 16;     // room for inodes 1..11
constexpr uint32_t kDirectBlocks = 12;
constexpr uint32_t kMinJournalBlocks = 1024;
constexpr uint32_t kMaxJournalBlocks = 10240000;
// A last group shorter than its own metadata plus this many blocks is
// dropped.
constexpr uint32_t kLastGroupSlack = 50;
constexpr uint32_t kLogGroupsPerFlex = 4;  // 16 groups
constexpr uint64_t kMaxBlocks64 = (uint64_t{1} << 48) - 1;

bool PowerOfTwoIn(uint64_t value, uint64_t low, uint64_t high) {
  return value >= low && value <= high && std::has_single_bit(value);
}

uint64_t DivCeil(uint64_t a, uint64_t b) { return a / b + (a % b != 0); }

// The used blocks while planning: disjoint runs, merged when they touch.
class RunSet {
 public:
  // The first block at or after `goal` that starts `length` free blocks
  // ending at or before `limit`; 0 when there is none (block 0 is never
  // free: it holds the superblock, or the boot block of 1 KiB filesystems).
  uint64_t FindFree(uint64_t goal, uint64_t length, uint64_t limit) const {
    uint64_t candidate = goal;
    auto it = runs_.upper_bound(candidate);
    if (it != runs_.begin()) {
      auto prev = std::prev(it);
      if (prev->second > candidate) candidate = prev->second;
    }
    while (true) {
      if (candidate + length > limit) return 0;
      it = runs_.lower_bound(candidate);
      if (it == runs_.end() || it->first >= candidate + length) {
        return candidate;
      }
      candidate = it->second;
    }
  }

  // Up to `count` free blocks from `goal` on, in order, wrapping around from
  // `limit` to `low`; fewer when the filesystem has no more.
  std::vector<BlockRun> TakeFree(uint64_t goal, uint64_t count, uint64_t low,
                                 uint64_t limit) const {
    std::vector<BlockRun> out;
    uint64_t left = count;
    auto scan = [&](uint64_t from, uint64_t to) {
      while (left > 0) {
        const uint64_t start = FindFree(from, 1, to);
        if (start == 0) return;
        auto next = runs_.lower_bound(start);
        const uint64_t free_end =
            next == runs_.end() ? to : std::min(next->first, to);
        const uint64_t length = std::min(free_end - start, left);
        out.push_back({start, length});
        left -= length;
        from = start + length;
      }
    };
    scan(goal, limit);
    scan(low, goal);
    return out;
  }

  // Marks [first, first + length) used; false if any of it already is.
  bool Add(uint64_t first, uint64_t length) {
    if (length == 0) return true;
    uint64_t end = first + length;
    auto next = runs_.lower_bound(first);
    if (next != runs_.end() && next->first < end) return false;
    if (next != runs_.begin()) {
      auto prev = std::prev(next);
      if (prev->second > first) return false;
      if (prev->second == first) {
        first = prev->first;
        runs_.erase(prev);
      }
    }
    if (next != runs_.end() && next->first == end) {
      end = next->second;
      runs_.erase(next);
    }
    runs_.emplace(first, end);
    return true;
  }

  std::vector<BlockRun> Runs() const {
    std::vector<BlockRun> out;
    out.reserve(runs_.size());
    for (const auto& [first, end] : runs_) out.push_back({first, end - first});
    return out;
  }

 private:
  std::map<uint64_t, uint64_t> runs_;  // first -> end
};

// Indirect blocks a block map needs for `data` blocks (12 direct pointers,
// then single, double and triple indirect trees of `per` pointers a block).
// 0 with `fits` false past the triple indirect tree.
uint64_t IndirectBlocksFor(uint64_t data, uint32_t per, bool& fits) {
  fits = true;
  if (data <= kDirectBlocks) return 0;
  uint64_t left = data - kDirectBlocks;
  uint64_t blocks = 1;  // the single indirect block
  left -= std::min<uint64_t>(left, per);
  if (left == 0) return blocks;
  const uint64_t per2 = uint64_t{per} * per;
  uint64_t in_double = std::min(left, per2);
  blocks += 1 + DivCeil(in_double, per);
  left -= in_double;
  if (left == 0) return blocks;
  if (left > per2 * per) {
    fits = false;
    return 0;
  }
  blocks += 1 + DivCeil(left, per2) + DivCeil(left, per);
  return blocks;
}

absl::Status Invalid(std::string message) {
  return ErrnoError(EINVAL, message);
}

}  // namespace

uint64_t Geometry::group_end_block(uint32_t group) const {
  return std::min(group_first_block(group) + blocks_per_group, blocks_count);
}

bool Geometry::has_superblock(uint32_t group) const {
  format::Superblock sb;
  sb.feature_compat = features.compat;
  sb.feature_ro_compat = features.ro_compat;
  return format::GroupHasSuperblock(sb, group);
}

uint32_t DefaultJournalBlocks(uint64_t blocks) {
  if (blocks < 2048) return 0;
  if (blocks < 32768) return 1024;
  if (blocks < 256 * 1024) return 4096;
  if (blocks < 512 * 1024) return 8192;
  if (blocks < 4096 * 1024) return 16384;
  if (blocks < 8192 * 1024) return 32768;
  if (blocks < 16384 * 1024) return 65536;
  if (blocks < 32768 * 1024) return 131072;
  return 262144;
}

uint32_t LostFoundBlocks(uint32_t block_size) {
  return std::clamp<uint32_t>(16384 / block_size, 2, kDirectBlocks);
}

absl::StatusOr<Geometry> PlanFilesystem(const MkfsOptions& options,
                                        uint64_t device_size) {
  Geometry g;
  const uint32_t bs = options.block_size;
  if (!PowerOfTwoIn(bs, format::kMinBlockSize, format::kMaxBlockSize)) {
    return Invalid(absl::StrCat("invalid block size ", bs,
                                " (a power of two from 1024 to 65536)"));
  }
  if (!PowerOfTwoIn(options.inode_size, format::kGoodOldInodeSize, bs)) {
    return Invalid(
        absl::StrCat("invalid inode size ", options.inode_size,
                     " (a power of two from 128 to the block size)"));
  }
  if (options.inode_count == 0 &&
      (options.inode_ratio < 1024 || options.inode_ratio > (64u << 20))) {
    return Invalid(absl::StrCat("invalid inode ratio ", options.inode_ratio,
                                " (1024 to 67108864 bytes per inode)"));
  }
  if (!(options.reserved_percent >= 0 && options.reserved_percent <= 50)) {
    return Invalid("the reserved block percentage must lie in [0, 50]");
  }
  if (options.label.size() > 16) {
    return Invalid(absl::StrCat("the label '", options.label,
                                "' is longer than 16 bytes"));
  }
  g.block_size = bs;
  g.log_block_size = static_cast<uint32_t>(std::countr_zero(bs) - 10);
  g.inode_size = options.inode_size;

  // Features, with mke2fs's adjustments and refusals.
  FeatureSet& f = g.features;
  f = options.features;
  E4_RETURN_IF_ERROR(CheckSupported(f));
  if (f.ro_compat & format::kRoCompatMetadataCsum) {
    f.ro_compat &= ~format::kRoCompatGdtCsum;
  }
  if ((f.incompat & format::kIncompat64Bit) &&
      !(f.incompat & format::kIncompatExtents)) {
    return Invalid("the 64bit feature needs the extent feature");
  }
  if ((f.incompat & format::kIncompatCsumSeed) &&
      !(f.ro_compat & format::kRoCompatMetadataCsum)) {
    return Invalid("metadata_csum_seed needs metadata_csum");
  }
  if (options.inode_size == format::kGoodOldInodeSize) {
    if (f.incompat & format::kIncompatInlineData) {
      return Invalid("inline_data needs inodes larger than 128 bytes");
    }
    if (f.ro_compat & format::kRoCompatExtraIsize) {
      f.ro_compat &= ~format::kRoCompatExtraIsize;
      g.notes.push_back("no extra_isize: 128-byte inodes have no extra space");
    }
  }
  const bool is_64bit = (f.incompat & format::kIncompat64Bit) != 0;
  const bool extents = (f.incompat & format::kIncompatExtents) != 0;

  uint64_t size = options.size_bytes ? options.size_bytes : device_size;
  if (size > device_size) {
    return ErrnoError(
        ENOSPC, absl::StrCat("the device holds ", device_size,
                             " bytes, fewer than the ", size, " asked for"));
  }
  uint64_t blocks = size / bs;
  if (!is_64bit && blocks > UINT32_MAX) {
    return ErrnoError(EFBIG, absl::StrCat(blocks,
                                          " blocks need the 64bit feature "
                                          "(at most 2^32 - 1 without it)"));
  }
  if (blocks > kMaxBlocks64) {
    return ErrnoError(EFBIG, absl::StrCat(blocks, " blocks is too many"));
  }
  g.first_data_block = bs == 1024 ? 1 : 0;
  g.blocks_per_group = std::min(bs * 8, kMaxBlocksPerGroup);
  g.descriptor_size =
      is_64bit ? format::kMinDescriptorSize64Bit : format::kMinDescriptorSize;
  const uint32_t bpg = g.blocks_per_group;
  const uint32_t inodes_per_block = bs / options.inode_size;
  const uint32_t max_ipg = std::min(bs * 8, 65536 - inodes_per_block);

  // Groups and inodes; again with fewer blocks when the last group is too
  // short to be worth its metadata.
  while (true) {
    if (blocks < g.first_data_block + 64) {
      return ErrnoError(ENOSPC, absl::StrCat("the filesystem is too small (",
                                             blocks, " blocks)"));
    }
    g.blocks_count = blocks;
    const uint64_t groups = DivCeil(blocks - g.first_data_block, bpg);
    if (groups > UINT32_MAX) {
      return ErrnoError(EFBIG, "too many block groups");
    }
    g.group_count = static_cast<uint32_t>(groups);
    g.descriptor_blocks =
        static_cast<uint32_t>(DivCeil(groups * g.descriptor_size, bs));

    uint64_t want = options.inode_count;
    if (want == 0) {
      want = static_cast<uint64_t>(static_cast<unsigned __int128>(blocks) * bs /
                                   options.inode_ratio);
    }
    want = std::min<uint64_t>(want, UINT32_MAX);
    uint64_t ipg = DivCeil(want, groups);
    ipg = std::clamp<uint64_t>(ipg, kMinInodesPerGroup, max_ipg);
    ipg = DivCeil(ipg, inodes_per_block) * inodes_per_block;
    while (ipg > max_ipg) ipg -= inodes_per_block;
    while (ipg * groups > UINT32_MAX && ipg > inodes_per_block) {
      ipg -= inodes_per_block;
    }
    ipg &= ~uint64_t{7};
    if (ipg < kMinInodesPerGroup || ipg * groups > UINT32_MAX) {
      return Invalid("cannot fit the inodes into the groups");
    }
    g.inodes_per_group = static_cast<uint32_t>(ipg);
    g.inode_table_blocks =
        static_cast<uint32_t>(DivCeil(ipg * options.inode_size, bs));

    const uint64_t group_overhead =
        1 + uint64_t{g.descriptor_blocks} + 2 + g.inode_table_blocks;
    if (1 + uint64_t{g.descriptor_blocks} + 2 > bpg) {
      return ErrnoError(EFBIG,
                        "the group descriptor table does not fit in a group "
                        "(this would need meta_bg)");
    }
    if (group_overhead > bpg) {
      return Invalid(absl::StrCat("too many inodes: ", ipg,
                                  " inodes a group do not fit in a group"));
    }
    const uint64_t rem = (blocks - g.first_data_block) % bpg;
    if (rem == 0) break;
    const uint32_t last = g.group_count - 1;
    uint64_t last_overhead = 2 + uint64_t{g.inode_table_blocks};
    if (g.has_superblock(last)) last_overhead += 1 + g.descriptor_blocks;
    if (g.group_count == 1) {
      if (rem < last_overhead + kLastGroupSlack) {
        return ErrnoError(ENOSPC, absl::StrCat("the filesystem is too small (",
                                               blocks, " blocks)"));
      }
      break;
    }
    if (rem >= last_overhead + kLastGroupSlack) break;
    g.notes.push_back(absl::StrCat("the last ", rem,
                                   " blocks are left unused: too few for a "
                                   "group of their own"));
    blocks -= rem;
  }
  if (options.inode_count > g.inodes_count()) {
    g.notes.push_back(
        absl::StrCat("only ", g.inodes_count(), " inodes fit the groups"));
  }
  g.log_groups_per_flex =
      (f.incompat & format::kIncompatFlexBg) ? kLogGroupsPerFlex : 0;
  g.reserved_blocks =
      static_cast<uint64_t>(static_cast<long double>(g.blocks_count) *
                            options.reserved_percent / 100);

  // Superblock copies and descriptor tables.
  RunSet used;
  for (uint32_t group = 0; group < g.group_count; ++group) {
    if (!used.Add(g.group_first_block(group), g.superblock_blocks(group))) {
      return absl::InternalError("overlapping superblock copies");
    }
  }
  // Bitmaps and inode tables.
  g.groups.resize(g.group_count);
  const uint32_t flex = 1u << g.log_groups_per_flex;
  uint64_t metadata_end = 0;  // one past flex group 0's tables
  for (uint32_t first = 0; first < g.group_count; first += flex) {
    const uint32_t end = static_cast<uint32_t>(
        std::min<uint64_t>(uint64_t{first} + flex, g.group_count));
    // Without flex_bg, a group's own blocks must hold its metadata.
    const uint64_t limit =
        g.log_groups_per_flex ? g.blocks_count : g.group_end_block(first);
    const uint64_t goal = g.group_first_block(first);
    auto place = [&](uint64_t length, uint64_t& where) -> absl::Status {
      where = used.FindFree(goal, length, limit);
      if (where == 0 || !used.Add(where, length)) {
        return ErrnoError(
            ENOSPC, absl::StrCat("no room for the metadata of group ", first,
                                 " (the filesystem is too small "
                                 "or has too many inodes)"));
      }
      metadata_end = std::max(metadata_end, first == 0 ? where + length : 0);
      return absl::OkStatus();
    };
    for (uint32_t group = first; group < end; ++group) {
      E4_RETURN_IF_ERROR(place(1, g.groups[group].block_bitmap));
    }
    for (uint32_t group = first; group < end; ++group) {
      E4_RETURN_IF_ERROR(place(1, g.groups[group].inode_bitmap));
    }
    for (uint32_t group = first; group < end; ++group) {
      E4_RETURN_IF_ERROR(
          place(g.inode_table_blocks, g.groups[group].inode_table));
    }
  }

  // The root directory and lost+found, after the first tables.
  g.lost_found_blocks = LostFoundBlocks(bs);
  g.root_block = used.FindFree(metadata_end, 1, g.blocks_count);
  if (g.root_block != 0) used.Add(g.root_block, 1);
  g.lost_found_block =
      used.FindFree(metadata_end, g.lost_found_blocks, g.blocks_count);
  if (g.root_block == 0 || g.lost_found_block == 0 ||
      !used.Add(g.lost_found_block, g.lost_found_blocks)) {
    return ErrnoError(ENOSPC, "the filesystem is too small");
  }

  // The journal.
  if (f.compat & format::kCompatHasJournal) {
    uint64_t free_now = 0;
    {
      uint64_t in_use = 0;
      for (const BlockRun& run : used.Runs()) in_use += run.count;
      free_now = g.blocks_count - g.first_data_block - in_use;
    }
    uint64_t journal = options.journal_blocks;
    if (journal == 0) {
      journal = DefaultJournalBlocks(g.blocks_count);
      if (journal == 0) {
        f.compat &= ~format::kCompatHasJournal;
        g.notes.push_back("the filesystem is too small for a journal");
      }
    } else if (journal < kMinJournalBlocks || journal > kMaxJournalBlocks) {
      return Invalid(absl::StrCat("invalid journal size of ", journal,
                                  " blocks (1024 to 10240000 blocks)"));
    } else if (journal > free_now / 2) {
      return Invalid(absl::StrCat("a journal of ", journal,
                                  " blocks is too big for the filesystem (at "
                                  "most half its free blocks)"));
    }
    if (journal != 0) {
      const uint64_t middle =
          (g.blocks_count - g.first_data_block) / 2 / g.blocks_per_group;
      uint32_t group = static_cast<uint32_t>(middle);
      if (g.log_groups_per_flex && g.group_count > flex) group &= ~(flex - 1);
      const uint64_t goal = g.group_first_block(group);
      // The mapping blocks depend on how the data falls into runs (extents)
      // or on its size alone (indirect blocks).
      uint64_t mapping = 0;
      std::vector<BlockRun> runs;
      for (int attempt = 0; attempt < 3; ++attempt) {
        runs = used.TakeFree(goal, journal + mapping, g.first_data_block,
                             g.blocks_count);
        uint64_t taken = 0;
        for (const BlockRun& run : runs) taken += run.count;
        if (taken < journal + mapping) {
          return ErrnoError(ENOSPC, absl::StrCat("no room for a journal of ",
                                                 journal, " blocks"));
        }
        uint64_t needed = 0;
        if (extents) {
          uint64_t skip = mapping;  // the leaf comes first
          uint64_t count = 0;
          for (const BlockRun& run : runs) {
            const uint64_t in_run = std::min(skip, run.count);
            skip -= in_run;
            count += DivCeil(run.count - in_run,
                             format::kInitializedExtentMaxLength);
          }
          if (count > format::ExtentNodeCapacity(format::kExtentRootSize)) {
            if (count > format::ExtentNodeCapacity(bs)) {
              return ErrnoError(EFBIG, "the journal needs too many extents");
            }
            needed = 1;
          }
        } else {
          bool fits = true;
          needed = IndirectBlocksFor(journal, bs / 4, fits);
          if (!fits) return ErrnoError(EFBIG, "the journal is too large");
        }
        if (needed == mapping) break;
        mapping = needed;
        runs.clear();
      }
      if (runs.empty()) {
        return absl::InternalError("journal layout did not settle");
      }
      for (const BlockRun& run : runs) {
        if (!used.Add(run.first, run.count)) {
          return absl::InternalError("journal overlaps other metadata");
        }
      }
      g.journal_blocks = static_cast<uint32_t>(journal);
      g.journal_mapping_blocks = static_cast<uint32_t>(mapping);
      g.journal_runs = std::move(runs);
    }
  }

  g.used = used.Runs();
  uint64_t in_use = 0;
  for (const BlockRun& run : g.used) in_use += run.count;
  g.free_blocks = g.blocks_count - g.first_data_block - in_use;
  // As mke2fs counts it: the blocks before group 0 too, the journal's
  // mapping blocks not.
  g.overhead_blocks = g.first_data_block + in_use - 1 - g.lost_found_blocks -
                      g.journal_mapping_blocks;
  if (g.reserved_blocks > g.free_blocks) g.reserved_blocks = g.free_blocks;
  return g;
}

}  // namespace ext4::mkfs
