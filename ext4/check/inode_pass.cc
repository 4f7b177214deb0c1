// Pass 1: every inode in use. An inode is in use when its link count is not
// zero (the reserved inodes below s_first_ino always are), as e2fsck decides;
// the inode bitmap is compared with that only in pass 5. Each inode's blocks
// are walked once (extent tree or indirect map), every block claimed in the
// bitmap of blocks found in use, and what the walk found is checked against
// i_blocks and i_size.
#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "ext4/check/checker_internal.h"
#include "ext4/errno_status.h"
#include "ext4/format/checksum.h"
#include "ext4/format/dirent.h"
#include "ext4/format/endian.h"
#include "ext4/format/extent.h"
#include "ext4/format/xattr.h"

namespace ext4::check {
namespace {

// Raw inode field offsets read before (or instead of) parsing.
constexpr size_t kModeOffset = 0x00;
constexpr size_t kDtimeOffset = 0x14;
constexpr size_t kLinksCountOffset = 0x1A;
constexpr size_t kChecksumLoOffset = 0x7C;
constexpr size_t kExtraIsizeOffset = 0x80;
constexpr size_t kChecksumHiOffset = 0x82;
constexpr size_t kBaseInodeSize = 128;

constexpr int kDirectBlocks = 12;
// Past this many bad pointers the rest of an inode's map is not walked
// (e2fsck offers to clear such an inode).
constexpr uint32_t kMaxWalkProblems = 12;
// One past the last logical block an extent can map.
constexpr uint64_t kExtentLogicalLimit = uint64_t{1} << 32;
// The name of the inline data xattr: "system." + "data".
constexpr uint8_t kSystemIndex = 7;

bool AllZero(format::Bytes raw) {
  return std::all_of(raw.begin(), raw.end(), [](uint8_t b) { return b == 0; });
}

std::string Hex(uint32_t value) {
  return absl::StrCat("0x", absl::Hex(value, absl::kZeroPad8));
}

bool IsDeviceLike(const format::Inode& inode) {
  return inode.is_chr() || inode.is_blk() || inode.is_fifo() || inode.is_sock();
}

bool HasChecksumHigh(format::Bytes raw) {
  return raw.size() > kBaseInodeSize &&
         format::Le16(raw, kExtraIsizeOffset) >= 4;
}

}  // namespace

bool InodeChecksumMatches(format::Bytes raw, uint32_t ino,
                          const format::Superblock& sb, uint32_t* stored,
                          uint32_t* expected) {
  *stored = 0;
  *expected = 0;
  if (!sb.metadata_csum() || AllZero(raw)) return true;
  const uint32_t want = format::InodeChecksum(raw, ino, sb);
  *stored = format::Le16(raw, kChecksumLoOffset);
  *expected = want & 0xFFFF;
  if (HasChecksumHigh(raw)) {
    *stored |= uint32_t{format::Le16(raw, kChecksumHiOffset)} << 16;
    *expected = want;
  }
  return *stored == *expected;
}

void FixInodeChecksum(format::MutableBytes raw, uint32_t ino,
                      const format::Superblock& sb) {
  if (!sb.metadata_csum()) return;
  const uint32_t want = format::InodeChecksum(raw, ino, sb);
  format::Put16(raw, kChecksumLoOffset, static_cast<uint16_t>(want));
  if (HasChecksumHigh(raw)) {
    format::Put16(raw, kChecksumHiOffset, static_cast<uint16_t>(want >> 16));
  }
}

struct Checker::BlockWalk {
  uint32_t ino = 0;
  bool is_dir = false;
  // False for the resize inode, whose blocks (but its double indirect one)
  // are the reserved descriptor blocks pass 0 already marked.
  bool claim = true;
  // Every block counts for i_blocks, even several in one cluster (the
  // resize inode, as e2fsck counts it).
  bool count_every_block = false;
  uint64_t clusters = 0;  // counted for i_blocks
  uint64_t last_cluster = UINT64_MAX;
  int64_t last_block = -1;       // highest logical block mapped
  int64_t last_init_block = -1;  // highest one not unwritten
  uint64_t first_physical = 0;   // where logical block 0 lives
  uint64_t data_blocks = 0;
  uint32_t problems = 0;
  uint32_t seed = 0;  // the inode's checksum seed
  std::vector<BlockRun>* runs = nullptr;
};

absl::Status Checker::CheckInodes() {
  const uint32_t ipg = sb_.inodes_per_group;
  const uint32_t isz = sb_.inode_size();
  const uint32_t bs = sb_.block_size();
  for (uint32_t g = 0; g < groups_.size(); ++g) {
    if (!group_ok_[g]) continue;
    const format::GroupDescriptor& d = groups_[g];
    uint32_t limit = ipg;
    if (sb_.has_group_desc_csum()) {
      if (d.flags & format::kBgInodeUninit) {
        limit = 0;
      } else {
        limit = ipg - std::min(d.itable_unused, ipg);
      }
    }
    // Reserved inodes are always looked at.
    if (g == 0) limit = std::max(limit, std::min(ipg, sb_.first_inode() - 1));
    io::BlockRef block;
    uint64_t block_number = UINT64_MAX;
    for (uint32_t i = 0; i < limit; ++i) {
      const uint64_t byte = uint64_t{i} * isz;
      const uint64_t want = d.inode_table + byte / bs;
      if (want != block_number) {
        E4_ASSIGN_OR_RETURN(block, cache_->Read(want));
        block_number = want;
      }
      format::Bytes raw(block->data() + byte % bs, isz);
      E4_RETURN_IF_ERROR(CheckInode(g * ipg + i + 1, raw));
    }
  }
  for (const auto& [number, use] : xattr_blocks_) {
    if (use.refcount != use.users) {
      Add("xattr_refcount",
          absl::StrCat("xattr block ", number, " has reference count ",
                       use.refcount, ", but ", use.users,
                       use.users == 1 ? " inode uses it" : " inodes use it"),
          number);
    }
  }
  return absl::OkStatus();
}

absl::Status Checker::CheckInode(uint32_t ino, format::Bytes raw) {
  const bool reserved = ino < sb_.first_inode() && ino != format::kRootDirIno;
  const uint16_t links = format::Le16(raw, kLinksCountOffset);
  const uint16_t mode = format::Le16(raw, kModeOffset);
  if (!reserved && links == 0) {
    if (mode != 0 && format::Le32(raw, kDtimeOffset) == 0 &&
        ino >= sb_.first_inode()) {
      Add("zero_dtime",
          absl::StrCat("deleted inode ", ino, " (no links, mode 0",
                       absl::Hex(mode), ") has a zero dtime"),
          ino);
    }
    return absl::OkStatus();
  }
  ++report_.inodes_checked;
  InodeState(ino) = kInUse;
  stored_links_.Set(ino - 1, links);
  if (AllZero(raw)) {
    if (!reserved) InodeState(ino) |= kBadMode;
    return absl::OkStatus();
  }

  std::vector<uint8_t> copy(raw.begin(), raw.end());
  uint32_t stored = 0;
  uint32_t expected = 0;
  if (!InodeChecksumMatches(raw, ino, sb_, &stored, &expected)) {
    Add("inode_checksum",
        absl::StrCat("inode ", ino, " checksum is ", Hex(stored),
                     ", should be ", Hex(expected)),
        ino);
    FixInodeChecksum(copy, ino, sb_);
  }
  auto parsed = format::ParseInode(copy, ino, sb_);
  if (!parsed.ok()) {
    Add("inode",
        absl::StrCat("inode ", ino, ": ",
                     std::string(parsed.status().message())),
        ino);
    InodeState(ino) |= kBadMode;
    return absl::OkStatus();
  }
  const format::Inode& inode = *parsed;
  const uint8_t type = format::ModeToDirFileType(inode.mode);
  uint8_t state = kInUse | type;
  if (inode.is_dir()) state |= kIsDirectory;
  if (!reserved && type == format::kFtUnknown) {
    Add("inode_mode",
        absl::StrCat("inode ", ino, " has an invalid mode 0",
                     absl::Hex(inode.mode)),
        ino);
    state |= kBadMode;
  }
  InodeState(ino) = state;

  const bool extents_fs = sb_.has_incompat(format::kIncompatExtents);
  const bool is_journal =
      ino == sb_.journal_inum && sb_.has_compat(format::kCompatHasJournal);
  const bool is_quota =
      sb_.has_ro_compat(format::kRoCompatQuota) &&
      (ino == sb_.usr_quota_inum || ino == sb_.grp_quota_inum ||
       ino == sb_.prj_quota_inum);
  if (reserved) {
    bool bad = false;
    if (is_journal || is_quota) {
      bad = !inode.is_reg();
    } else if (ino == format::kResizeIno) {
      bad = inode.mode != 0 && !inode.is_reg();
    } else if (ino == format::kBootLoaderIno) {
      bad = inode.is_dir();
    } else {
      bad = inode.mode != 0;
    }
    if (bad) {
      Add("reserved_inode",
          absl::StrCat("reserved inode ", ino, " has a bad mode 0",
                       absl::Hex(inode.mode)),
          ino);
    }
  } else if (inode.dtime != 0) {
    Add("inode",
        absl::StrCat("inode ", ino, " is in use but has dtime set (",
                     inode.dtime, ")"),
        ino);
  }
  if (ino == format::kRootDirIno && !inode.is_dir()) {
    Add("root", "the root inode (2) is not a directory", ino);
  }
  if (inode.uses_extents() && !extents_fs) {
    Add("extent_tree",
        absl::StrCat("inode ", ino,
                     " uses extents but the filesystem lacks the extent "
                     "feature"),
        ino);
  }
  if (inode.has_inline_data() &&
      !sb_.has_incompat(format::kIncompatInlineData)) {
    Add("inline_data",
        absl::StrCat("inode ", ino,
                     " has inline data but the filesystem lacks the "
                     "inline_data feature"),
        ino);
  }
  if ((inode.flags & format::kInodeFlagIndex) && inode.is_dir() &&
      !sb_.has_compat(format::kCompatDirIndex)) {
    Add("htree",
        absl::StrCat("directory ", ino,
                     " is hash-indexed but the filesystem lacks dir_index"),
        ino);
  }

  BlockWalk walk;
  walk.ino = ino;
  walk.is_dir = inode.is_dir();
  walk.claim = ino != format::kResizeIno;
  walk.count_every_block = ino == format::kResizeIno;
  walk.seed = InodeSeed(ino, inode.generation);
  if (inode.is_dir() && !(state & kBadMode)) {
    DirectoryInfo& info = directories_[ino];
    walk.runs = &info.runs;
  }

  // Extended attributes in the inode.
  uint64_t inline_xattr_size = 0;
  bool has_system_data = false;
  format::Bytes area = format::InodeXattrArea(copy, inode);
  if (!area.empty()) {
    auto entries = format::ParseInodeXattrs(area);
    if (!entries.ok()) {
      Add("xattr",
          absl::StrCat("inode ", ino, ": in-inode extended attributes: ",
                       std::string(entries.status().message())),
          ino);
    } else {
      for (const format::XattrEntry& e : *entries) {
        if (e.value_inum != 0) {
          if (!sb_.has_incompat(format::kIncompatEaInode)) {
            Add("xattr",
                absl::StrCat("inode ", ino, ": attribute value in inode ",
                             e.value_inum, " without the ea_inode feature"),
                ino);
          } else {
            xattr_value_inodes_.insert(e.value_inum);
          }
        }
        if (e.name_index == kSystemIndex && e.name == "data") {
          has_system_data = true;
          inline_xattr_size = e.value_size;
        }
      }
    }
  }

  // The blocks.
  bool fast_symlink = false;
  bool maps_blocks = true;
  if (reserved) {
    // Walked as plain files whatever their mode (e2fsck does the same).
  } else if (IsDeviceLike(inode)) {
    maps_blocks = false;
    if (inode.flags & (format::kInodeFlagIndex | format::kInodeFlagExtents |
                       format::kInodeFlagInlineData)) {
      Add("device_inode",
          absl::StrCat("special inode ", ino,
                       " has the index, extents or inline data flag set"),
          ino);
    }
    if (inode.flags &
        (format::kInodeFlagImmutable | format::kInodeFlagAppend)) {
      Add("device_inode",
          absl::StrCat("special inode ", ino,
                       " has the immutable or append-only flag set"),
          ino);
    }
    if (inode.size != 0) {
      Add("device_inode",
          absl::StrCat("special inode ", ino, " has a nonzero size (",
                       inode.size, ")"),
          ino);
    }
  } else if (inode.has_inline_data()) {
    maps_blocks = false;
    if (!has_system_data && !reserved) {
      Add("inline_data",
          absl::StrCat("inode ", ino,
                       " has inline data but no system.data attribute"),
          ino);
    }
  } else if (inode.is_symlink()) {
    if (inode.file_acl == 0) {
      fast_symlink = inode.blocks == 0;
    } else {
      fast_symlink = !(inode.size >= format::kInodeBlockSize ||
                       (inode.size > 4 && format::Le32(inode.block, 4) == 0));
    }
    maps_blocks = !fast_symlink;
  }
  if (maps_blocks) E4_RETURN_IF_ERROR(WalkBlocks(inode, walk));
  if (is_journal) journal_first_block_ = walk.first_physical;

  if (inode.file_acl != 0) {
    E4_RETURN_IF_ERROR(CheckXattrBlock(ino, inode.file_acl, walk));
  }

  // i_blocks, in 512-byte units.
  const uint64_t expected_blocks =
      walk.clusters * sb_.cluster_ratio() * (sb_.block_size() / 512);
  if (inode.blocks != expected_blocks) {
    Add("i_blocks",
        absl::StrCat("inode ", ino, " i_blocks is ", inode.blocks,
                     ", should be ", expected_blocks),
        ino);
  }

  // Symlinks: the target's length is the size.
  const uint32_t bs = sb_.block_size();
  if (inode.is_symlink() && !inode.has_inline_data() && !reserved) {
    if (fast_symlink) {
      const size_t len =
          strnlen(reinterpret_cast<const char*>(inode.block.data()),
                  inode.block.size());
      if (inode.uses_extents() || inode.size == 0 ||
          inode.size >= format::kInodeBlockSize || len != inode.size) {
        Add("symlink",
            absl::StrCat("fast symlink ", ino, " is invalid (size ", inode.size,
                         ", target length ", len, ")"),
            ino);
      }
    } else if (walk.problems == 0) {
      bool bad = inode.size == 0 || inode.size >= bs || walk.data_blocks != 1 ||
                 walk.first_physical == 0;
      if (!bad && !(inode.flags & format::kInodeFlagEncrypt)) {
        E4_ASSIGN_OR_RETURN(io::BlockRef target,
                            cache_->Read(walk.first_physical));
        const size_t len =
            strnlen(reinterpret_cast<const char*>(target->data()), bs);
        bad = len != inode.size;
      }
      if (bad) {
        Add("symlink",
            absl::StrCat("symlink ", ino, " is invalid (size ", inode.size,
                         ", ", walk.data_blocks, " data blocks)"),
            ino);
      }
    }
  }

  // i_size against the blocks found.
  if (!reserved || is_journal || is_quota) {
    if (inode.is_dir()) {
      if (inode.has_inline_data()) {
        const uint64_t want = format::kInodeBlockSize + inline_xattr_size;
        if (inode.size != want) {
          Add("i_size",
              absl::StrCat("inline directory ", ino, " has size ", inode.size,
                           ", should be ", want),
              ino);
        }
      } else if (inode.size % bs != 0) {
        Add("i_size",
            absl::StrCat("directory ", ino, " has size ", inode.size,
                         ", not a multiple of the block size"),
            ino);
      } else {
        const int64_t nblocks = static_cast<int64_t>(inode.size / bs);
        const int64_t mapped = walk.last_block + 1;
        if (nblocks > mapped ||
            mapped - nblocks > int64_t{sb_.prealloc_dir_blocks}) {
          Add("i_size",
              absl::StrCat("directory ", ino, " has size ", inode.size,
                           " but its blocks end at ", mapped * bs),
              ino);
        }
      }
    } else if (maps_blocks) {
      if (walk.last_init_block >= 0 &&
          inode.size < static_cast<uint64_t>(walk.last_init_block) * bs &&
          !(inode.flags & format::kInodeFlagVerity)) {
        Add("i_size",
            absl::StrCat("inode ", ino, " has size ", inode.size,
                         " but maps block ", walk.last_init_block),
            ino);
      } else if (inode.uses_extents() && extents_fs &&
                 inode.size >
                     (uint64_t{1} << (32 + sb_.block_size_bits())) - 1) {
        Add("i_size",
            absl::StrCat("inode ", ino, " has size ", inode.size,
                         ", larger than an extent-mapped file can be"),
            ino);
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Checker::WalkBlocks(const format::Inode& inode, BlockWalk& walk) {
  if (inode.uses_extents()) {
    return WalkExtentNode(format::Bytes(inode.block), -1, 0,
                          kExtentLogicalLimit, walk);
  }
  format::Bytes root(inode.block);
  for (int i = 0; i < kDirectBlocks; ++i) {
    const uint32_t pointer = format::Le32(root, 4 * i);
    if (pointer != 0) MapDataBlocks(i, pointer, 1, false, walk);
  }
  const uint64_t per_block = sb_.block_size() / 4;
  uint64_t first = kDirectBlocks;
  uint64_t span = per_block;
  for (int levels = 1; levels <= 3; ++levels) {
    const uint32_t pointer =
        format::Le32(root, 4 * (kDirectBlocks + levels - 1));
    if (pointer != 0) {
      E4_RETURN_IF_ERROR(WalkIndirect(pointer, levels, first, walk));
    }
    first += span;
    span *= per_block;
  }
  return absl::OkStatus();
}

bool Checker::ClaimForInode(uint64_t block, uint64_t count, BlockWalk& walk) {
  // Blocks found in use already: the first of them and how many, reported
  // once for the range.
  uint64_t first_duplicate = 0;
  uint64_t duplicates = 0;
  bool metadata = false;
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t b = block + i;
    const uint64_t c = ClusterOf(b);
    if (c == walk.last_cluster && !walk.count_every_block) {
      continue;  // the same cluster (bigalloc)
    }
    walk.last_cluster = c;
    ++walk.clusters;
    if (!walk.claim) continue;
    if (used_clusters_.Test(c)) {
      if (duplicates++ == 0) first_duplicate = b;
      metadata = metadata || metadata_clusters_.Test(c);
    } else {
      used_clusters_.Set(c);
    }
  }
  if (duplicates == 0) return true;
  ++walk.problems;
  Add("duplicate_block",
      absl::StrCat(duplicates == 1 ? "block " : "blocks from ", first_duplicate,
                   duplicates == 1 ? "" : absl::StrCat(" (", duplicates, ")"),
                   " of inode ", walk.ino, duplicates == 1 ? " is" : " are",
                   " also used by ",
                   metadata ? "filesystem metadata" : "another inode"),
      first_duplicate);
  return false;
}

void Checker::MapDataBlocks(uint64_t logical, uint64_t physical, uint64_t count,
                            bool unwritten, BlockWalk& walk) {
  if (!BlockInFilesystem(physical) || count > sb_.blocks_count - physical) {
    ++walk.problems;
    Add("block_range",
        absl::StrCat("inode ", walk.ino, ": block ", physical,
                     count > 1 ? absl::StrCat(" (and ", count - 1, " more)")
                               : std::string(),
                     " at logical block ", logical,
                     " is outside the filesystem"),
        walk.ino);
    return;
  }
  ClaimForInode(physical, count, walk);
  walk.data_blocks += count;
  const int64_t last = static_cast<int64_t>(logical + count - 1);
  walk.last_block = std::max(walk.last_block, last);
  if (!unwritten) walk.last_init_block = std::max(walk.last_init_block, last);
  if (logical == 0) walk.first_physical = physical;
  if (walk.runs != nullptr) {
    if (!walk.runs->empty()) {
      BlockRun& back = walk.runs->back();
      if (uint64_t{back.logical} + back.length == logical &&
          back.physical + back.length == physical &&
          uint64_t{back.length} + count <= UINT32_MAX) {
        back.length += static_cast<uint32_t>(count);
        return;
      }
    }
    walk.runs->push_back(BlockRun{static_cast<uint32_t>(logical),
                                  static_cast<uint32_t>(count), physical});
  }
}

absl::Status Checker::WalkExtentNode(format::Bytes raw, int expected_depth,
                                     uint64_t start, uint64_t end,
                                     BlockWalk& walk) {
  auto node = format::ParseExtentNode(raw, expected_depth);
  if (!node.ok()) {
    ++walk.problems;
    Add("extent_tree",
        absl::StrCat("inode ", walk.ino, ": ",
                     expected_depth < 0 ? "extent root: " : "extent block: ",
                     std::string(node.status().message())),
        walk.ino);
    return absl::OkStatus();
  }
  const bool is_root = expected_depth < 0;
  if (!is_root) {
    const uint64_t first_logical =
        node->header.depth > 0
            ? (node->indexes.empty() ? start : node->indexes[0].logical)
            : (node->leaves.empty() ? start : node->leaves[0].logical);
    if (first_logical != start) {
      Add("extent_tree",
          absl::StrCat("inode ", walk.ino, ": an extent index says logical ",
                       start, " but its node starts at ", first_logical),
          walk.ino);
    }
  }
  if (node->header.depth > 0) {
    const auto& indexes = node->indexes;
    for (size_t i = 0; i < indexes.size(); ++i) {
      if (walk.problems > kMaxWalkProblems) return absl::OkStatus();
      const uint64_t lo = indexes[i].logical;
      const uint64_t hi = i + 1 < indexes.size() ? indexes[i + 1].logical : end;
      if (lo < start || lo >= end) {
        ++walk.problems;
        Add("extent_tree",
            absl::StrCat("inode ", walk.ino, ": extent index at logical ", lo,
                         " lies outside its parent's range [", start, ", ", end,
                         ")"),
            walk.ino);
        continue;
      }
      const uint64_t child = indexes[i].child;
      if (!BlockInFilesystem(child)) {
        ++walk.problems;
        Add("block_range",
            absl::StrCat("inode ", walk.ino, ": extent tree block ", child,
                         " is outside the filesystem"),
            walk.ino);
        continue;
      }
      if (!ClaimForInode(child, 1, walk)) continue;  // do not walk it twice
      E4_ASSIGN_OR_RETURN(io::BlockRef block, cache_->Read(child));
      if (sb_.metadata_csum()) {
        absl::Status status =
            format::VerifyExtentBlockChecksum(*block, walk.seed);
        if (!status.ok()) {
          Add("extent_checksum",
              absl::StrCat("inode ", walk.ino, ": extent tree block ", child,
                           ": ", std::string(status.message())),
              walk.ino);
        }
      }
      E4_RETURN_IF_ERROR(WalkExtentNode(*block, node->header.depth - 1, lo,
                                        std::min(hi, end), walk));
    }
    return absl::OkStatus();
  }
  for (const format::ExtentLeaf& leaf : node->leaves) {
    if (walk.problems > kMaxWalkProblems) return absl::OkStatus();
    const uint64_t lo = leaf.logical;
    const uint64_t hi = lo + leaf.length;
    if (lo < start || hi > end) {
      ++walk.problems;
      Add("extent_tree",
          absl::StrCat("inode ", walk.ino, ": extent [", lo, ", ", hi,
                       ") lies outside the range [", start, ", ", end,
                       ") its index gives"),
          walk.ino);
      continue;
    }
    if (walk.is_dir && leaf.unwritten) {
      Add("extent_tree",
          absl::StrCat("directory ", walk.ino,
                       " has an unwritten extent at logical ", lo),
          walk.ino);
    }
    MapDataBlocks(lo, leaf.physical, leaf.length, leaf.unwritten, walk);
  }
  return absl::OkStatus();
}

absl::Status Checker::WalkIndirect(uint32_t pointer, int levels, uint64_t first,
                                   BlockWalk& walk) {
  if (walk.problems > kMaxWalkProblems) return absl::OkStatus();
  if (!BlockInFilesystem(pointer)) {
    ++walk.problems;
    Add("block_range",
        absl::StrCat("inode ", walk.ino, ": indirect block ", pointer,
                     " (level ", levels, ", from logical block ", first,
                     ") is outside the filesystem"),
        walk.ino);
    return absl::OkStatus();
  }
  // The resize inode's double indirect block is its own; the blocks below
  // it are reserved descriptor blocks, counted but marked by pass 0.
  const bool own =
      walk.claim || (walk.ino == format::kResizeIno && levels == 2 &&
                     first == kDirectBlocks + sb_.block_size() / 4);
  if (own && !walk.claim) {
    walk.claim = true;
    ClaimForInode(pointer, 1, walk);
    walk.claim = false;
  } else if (!ClaimForInode(pointer, 1, walk)) {
    return absl::OkStatus();  // a block in use already is not walked again
  }
  E4_ASSIGN_OR_RETURN(io::BlockRef block, cache_->Read(pointer));
  const uint64_t per_block = sb_.block_size() / 4;
  uint64_t span = 1;
  for (int i = 1; i < levels; ++i) span *= per_block;
  for (uint64_t slot = 0; slot < per_block; ++slot) {
    if (walk.problems > kMaxWalkProblems) break;
    const uint32_t next = format::Le32(*block, 4 * slot);
    if (next == 0) continue;
    const uint64_t logical = first + slot * span;
    if (levels == 1) {
      MapDataBlocks(logical, next, 1, false, walk);
    } else {
      E4_RETURN_IF_ERROR(WalkIndirect(next, levels - 1, logical, walk));
    }
  }
  return absl::OkStatus();
}

absl::Status Checker::CheckXattrBlock(uint32_t ino, uint64_t block,
                                      BlockWalk& walk) {
  if (!sb_.has_compat(format::kCompatExtAttr)) {
    Add("xattr_block",
        absl::StrCat("inode ", ino, " has an xattr block (", block,
                     ") but the filesystem lacks the ext_attr feature"),
        ino);
  }
  if (!BlockInFilesystem(block)) {
    Add("xattr_block",
        absl::StrCat("inode ", ino, ": xattr block ", block,
                     " is outside the filesystem"),
        ino);
    return absl::OkStatus();
  }
  auto it = xattr_blocks_.find(block);
  if (it != xattr_blocks_.end()) {
    ++it->second.users;
    ++walk.clusters;
    return absl::OkStatus();
  }
  XattrBlockUse use;
  use.users = 1;
  use.first_user = ino;
  E4_ASSIGN_OR_RETURN(io::BlockRef bytes, cache_->Read(block));
  std::vector<uint8_t> copy(bytes->begin(), bytes->end());
  constexpr size_t kRefcountOffset = 4;
  constexpr size_t kChecksumOffset = 16;
  if (sb_.metadata_csum()) {
    const uint32_t want = format::XattrBlockChecksum(copy, block, fs_seed_);
    const uint32_t stored = format::Le32(copy, kChecksumOffset);
    if (want != stored) {
      Add("xattr_checksum",
          absl::StrCat("xattr block ", block, " (of inode ", ino,
                       ") checksum is ", Hex(stored), ", should be ",
                       Hex(want)),
          block);
      format::Put32(copy, kChecksumOffset, want);
    }
  }
  auto parsed =
      format::ParseXattrBlock(copy, block, sb_.metadata_csum(), fs_seed_);
  if (!parsed.ok()) {
    Add("xattr_block",
        absl::StrCat("xattr block ", block, " (of inode ", ino,
                     "): ", std::string(parsed.status().message())),
        block);
    use.refcount = format::Le32(copy, kRefcountOffset);
  } else {
    use.refcount = parsed->refcount;
    for (const format::XattrEntry& e : parsed->entries) {
      if (e.value_inum != 0) xattr_value_inodes_.insert(e.value_inum);
    }
  }
  const uint64_t saved = walk.last_cluster;
  walk.last_cluster = UINT64_MAX;  // an xattr block is a cluster of its own
  ClaimForInode(block, 1, walk);
  walk.last_cluster = saved;
  xattr_blocks_[block] = use;
  return absl::OkStatus();
}

}  // namespace ext4::check
