// Pass 5: the block and inode bitmaps on disk against what the other passes
// found in use, the bitmaps' checksums, and each group's counts: free blocks
// and free inodes against its bitmaps (as e2fsck counts them, so that one
// wrong bit is one problem), directories against the directories found. A group
// whose block bitmap is uninitialized (BLOCK_UNINIT) stands for the bitmap the
// kernel would build for it: its superblock copy and descriptor blocks, and the
// bitmaps and inode tables of the uninitialized groups that lie inside it.
#include <algorithm>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "ext4/check/checker_internal.h"
#include "ext4/errno_status.h"
#include "ext4/format/checksum.h"

namespace ext4::check {
namespace {

// Ranges listed in one bitmap-differences message.
constexpr int kMaxRangesListed = 24;

bool BitOf(format::Bytes bytes, uint64_t i) {
  return i / 8 < bytes.size() && ((bytes[i / 8] >> (i % 8)) & 1) != 0;
}

// Collects differences between a bitmap on disk and what was found, as runs
// of numbers that are "+" (in use, marked free) or "-" (marked in use, not
// found in use), e2fsck-style: "+12 -(40--57)".
class Differences {
 public:
  void Note(uint64_t number, bool found_in_use) {
    const char sign = found_in_use ? '+' : '-';
    if (count_ > 0 && sign == sign_ && number == end_ + 1) {
      end_ = number;
    } else {
      Flush();
      sign_ = sign;
      start_ = end_ = number;
    }
    if (count_ == 0) first_ = number;
    ++count_;
  }
  // The message text, or "" when nothing differs.
  std::string Finish() {
    Flush();
    if (ranges_ > kMaxRangesListed) {
      absl::StrAppend(&text_, " ... (", ranges_ - kMaxRangesListed,
                      " more runs)");
    }
    return text_;
  }
  uint64_t first() const { return first_; }
  uint64_t count() const { return count_; }

 private:
  void Flush() {
    if (count_ == 0 || start_ == UINT64_MAX) return;
    if (++ranges_ <= kMaxRangesListed) {
      if (start_ == end_) {
        absl::StrAppend(&text_, " ", std::string(1, sign_), start_);
      } else {
        absl::StrAppend(&text_, " ", std::string(1, sign_), "(", start_, "--",
                        end_, ")");
      }
    }
    start_ = UINT64_MAX;
  }

  std::string text_;
  char sign_ = '+';
  uint64_t start_ = UINT64_MAX;
  uint64_t end_ = 0;
  uint64_t first_ = 0;
  uint64_t count_ = 0;
  int ranges_ = 0;
};

}  // namespace

absl::Status Checker::CheckBitmaps() {
  const bool csum_groups = sb_.has_group_desc_csum();
  const bool csum = sb_.metadata_csum();
  const bool wide = sb_.descriptor_size() >= format::kMinDescriptorSize64Bit;
  const uint32_t cpg = sb_.group_clusters();
  const uint32_t ipg = sb_.inodes_per_group;
  const uint32_t ratio = sb_.cluster_ratio();
  const uint32_t count = sb_.group_count();

  // The clusters the uninitialized groups' own bitmaps and tables take.
  absl::flat_hash_set<uint64_t> uninit_marks;
  for (uint32_t g = 0; g < count; ++g) {
    if (!group_ok_[g] || !csum_groups ||
        !(groups_[g].flags & format::kBgBlockUninit)) {
      continue;
    }
    const format::GroupDescriptor& d = groups_[g];
    for (uint64_t b : {d.block_bitmap, d.inode_bitmap}) {
      if (BlockInFilesystem(b)) uninit_marks.insert(ClusterOf(b));
    }
    for (uint64_t i = 0; i < sb_.inode_table_blocks(); ++i) {
      if (BlockInFilesystem(d.inode_table + i)) {
        uninit_marks.insert(ClusterOf(d.inode_table + i));
      }
    }
  }

  for (uint32_t g = 0; g < count; ++g) {
    if (!group_ok_[g]) continue;
    const format::GroupDescriptor& d = groups_[g];
    const uint64_t base = uint64_t{g} * cpg;
    if (base >= cluster_count_) break;
    const uint64_t n = std::min<uint64_t>(cpg, cluster_count_ - base);
    const bool uninit = csum_groups && (d.flags & format::kBgBlockUninit);

    io::BlockRef disk;
    Bitset implied;
    if (uninit) {
      implied = Bitset(n);
      for (const auto& [first, length] : GroupSuperRanges(g)) {
        for (uint64_t i = 0; i < length; ++i) {
          if (!BlockInFilesystem(first + i)) continue;
          const uint64_t c = ClusterOf(first + i);
          if (c >= base && c < base + n) implied.Set(c - base);
        }
      }
      for (uint64_t c : uninit_marks) {
        if (c >= base && c < base + n) implied.Set(c - base);
      }
    } else {
      E4_ASSIGN_OR_RETURN(disk, cache_->Read(d.block_bitmap));
      if (csum) {
        const uint32_t want =
            format::Crc32c(fs_seed_, format::Bytes(*disk).first(cpg / 8));
        const uint32_t mask = wide ? 0xFFFFFFFFu : 0xFFFFu;
        if ((want & mask) != (d.block_bitmap_csum & mask)) {
          Add("block_bitmap_checksum",
              absl::StrCat("the block bitmap of group ", g, " (block ",
                           d.block_bitmap, ") does not match its checksum"),
              g);
        }
      }
    }
    Differences diff;
    uint64_t used = 0;  // as the bitmap says
    for (uint64_t i = 0; i < n; ++i) {
      const bool found = used_clusters_.Test(base + i);
      const bool marked = uninit ? implied.Test(i) : BitOf(*disk, i);
      if (marked) ++used;
      if (found != marked) {
        diff.Note(sb_.first_data_block + (base + i) * ratio, found);
      }
    }
    if (diff.count() > 0) {
      const uint64_t first = diff.first();
      Add("block_bitmap",
          absl::StrCat("block bitmap differences in group ", g, ":",
                       diff.Finish()),
          first);
    }
    if (n - used != d.free_blocks_count) {
      Add("group_free_blocks",
          absl::StrCat("free ", ratio > 1 ? "clusters" : "blocks",
                       " count wrong for group ", g, " (", d.free_blocks_count,
                       ", counted ", n - used, ")"),
          g);
    }
  }

  for (uint32_t g = 0; g < count; ++g) {
    if (!group_ok_[g]) continue;
    const format::GroupDescriptor& d = groups_[g];
    const bool uninit = csum_groups && (d.flags & format::kBgInodeUninit);
    io::BlockRef disk;
    if (!uninit) {
      E4_ASSIGN_OR_RETURN(disk, cache_->Read(d.inode_bitmap));
      if (csum) {
        const uint32_t want =
            format::Crc32c(fs_seed_, format::Bytes(*disk).first(ipg / 8));
        const uint32_t mask = wide ? 0xFFFFFFFFu : 0xFFFFu;
        if ((want & mask) != (d.inode_bitmap_csum & mask)) {
          Add("inode_bitmap_checksum",
              absl::StrCat("the inode bitmap of group ", g, " (block ",
                           d.inode_bitmap, ") does not match its checksum"),
              g);
        }
      }
    }
    Differences diff;
    uint32_t used = 0;  // as the bitmap says
    uint32_t dirs = 0;  // as found
    for (uint32_t i = 0; i < ipg; ++i) {
      const uint32_t ino = g * ipg + i + 1;
      const uint8_t state = InodeState(ino);
      const bool found = (state & kInUse) != 0;
      const bool marked = !uninit && BitOf(*disk, i);
      if (marked) ++used;
      if (found && (state & kIsDirectory)) ++dirs;
      if (found != marked) diff.Note(ino, found);
    }
    if (diff.count() > 0) {
      const uint64_t first = diff.first();
      Add("inode_bitmap",
          absl::StrCat("inode bitmap differences in group ", g, ":",
                       diff.Finish()),
          first);
    }
    if (ipg - used != d.free_inodes_count) {
      Add("group_free_inodes",
          absl::StrCat("free inodes count wrong for group ", g, " (",
                       d.free_inodes_count, ", counted ", ipg - used, ")"),
          g);
    }
    if (dirs != d.used_dirs_count) {
      Add("group_used_dirs",
          absl::StrCat("directories count wrong for group ", g, " (",
                       d.used_dirs_count, ", counted ", dirs, ")"),
          g);
    }
  }
  // Blocks before the first data block (the boot block with 1 KiB blocks)
  // count as used, as in e2fsck's summary.
  report_.blocks_checked =
      used_clusters_.Count() * ratio + sb_.first_data_block;
  return absl::OkStatus();
}

}  // namespace ext4::check
