#include "ext4/mkfs/mkfs.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ext4/errno_status.h"
#include "ext4/format/checksum.h"
#include "ext4/format/dirent.h"
#include "ext4/format/extent.h"
#include "ext4/format/group_descriptor.h"
#include "ext4/format/inode.h"
#include "ext4/format/journal.h"
#include "ext4/format/superblock.h"

namespace ext4::mkfs {
namespace {

constexpr uint32_t kFirstInode = 11;  // s_first_ino; lost+found takes it
constexpr uint32_t kLostFoundIno = 11;
constexpr uint16_t kExtraIsize = format::kInodeExtraIsizeCurrent;
// Large writes of zeros go out in pieces of this size.
constexpr size_t kZeroChunk = 1 << 20;

using Buffer = std::vector<uint8_t>;

void SetBits(format::MutableBytes bits, uint64_t from, uint64_t to) {
  while (from < to && (from & 7) != 0) {
    bits[from >> 3] |= static_cast<uint8_t>(1u << (from & 7));
    ++from;
  }
  while (from + 8 <= to) {
    bits[from >> 3] = 0xFF;
    from += 8;
  }
  for (; from < to; ++from) {
    bits[from >> 3] |= static_cast<uint8_t>(1u << (from & 7));
  }
}

bool AllZero(const std::array<uint8_t, 16>& bytes) {
  return std::all_of(bytes.begin(), bytes.end(),
                     [](uint8_t b) { return b == 0; });
}

// Writes the image, block by block, from a plan.
class Writer {
 public:
  Writer(io::BlockDevice& device, const Geometry& g, const MkfsOptions& options)
      : device_(device), g_(g), options_(options), bs_(g.block_size) {}

  absl::Status Run();

 private:
  bool metadata_csum() const { return sb_.metadata_csum(); }
  bool extents() const { return sb_.has_incompat(format::kIncompatExtents); }

  absl::Status WriteBlocks(uint64_t block, format::Bytes bytes) {
    return device_.WriteAt(block * bs_, bytes);
  }
  absl::Status Zero(BlockRun run);

  void BuildSuperblock();
  format::Inode NewInode(uint16_t mode, uint32_t uid, uint32_t gid) const;
  // Maps `count` blocks from `first` in `inode` (at most 4 extents, or the
  // 12 direct blocks).
  void MapDirect(format::Inode& inode, uint64_t first, uint32_t count) const;
  uint32_t InodeSeed(uint32_t ino) const {
    return format::InodeChecksumSeed(sb_.checksum_seed(), ino, 0);
  }
  // A directory block holding `entries` (ino, name, type), the last record
  // stretched to the end; none: one empty record.
  struct Entry {
    uint32_t ino;
    std::string_view name;
    uint8_t type;
  };
  Buffer DirectoryBlock(uint32_t ino, std::span<const Entry> entries) const;
  absl::Status WriteDirectories();
  // The journal inode's map and blocks; fills journal_inode_.
  absl::Status WriteJournal();
  absl::Status WriteInodeTable();
  absl::Status WriteGroups();
  absl::Status WriteSuperblocks();

  io::BlockDevice& device_;
  const Geometry& g_;
  const MkfsOptions& options_;
  const uint32_t bs_;
  int64_t now_ = 0;
  std::array<uint8_t, 16> uuid_{};
  format::Superblock sb_;
  format::Inode journal_inode_;
  Buffer gdt_;  // the descriptor table, as every copy holds it
};

absl::Status Writer::Zero(BlockRun run) {
  static const Buffer zeros(kZeroChunk, 0);
  uint64_t offset = run.first * bs_;
  uint64_t left = run.count * bs_;
  while (left > 0) {
    const size_t piece =
        static_cast<size_t>(std::min<uint64_t>(left, kZeroChunk));
    E4_RETURN_IF_ERROR(
        device_.WriteAt(offset, format::Bytes(zeros).first(piece)));
    offset += piece;
    left -= piece;
  }
  return absl::OkStatus();
}

void Writer::BuildSuperblock() {
  format::Superblock& sb = sb_;
  sb.inodes_count = static_cast<uint32_t>(g_.inodes_count());
  sb.blocks_count = g_.blocks_count;
  sb.r_blocks_count = g_.reserved_blocks;
  sb.free_blocks_count = g_.free_blocks;
  sb.free_inodes_count = sb.inodes_count - kFirstInode;
  sb.first_data_block = g_.first_data_block;
  sb.log_block_size = g_.log_block_size;
  sb.log_cluster_size = g_.log_block_size;
  sb.blocks_per_group = g_.blocks_per_group;
  sb.clusters_per_group = g_.blocks_per_group;
  sb.inodes_per_group = g_.inodes_per_group;
  sb.wtime = now_;
  sb.max_mnt_count = -1;
  sb.magic = format::kSuperblockMagic;
  sb.state = format::kStateValid;
  sb.errors = format::kErrorsContinue;
  sb.lastcheck = now_;
  sb.creator_os = format::kOsLinux;
  sb.rev_level = format::kDynamicRevision;
  sb.first_ino = kFirstInode;
  sb.raw_inode_size = static_cast<uint16_t>(g_.inode_size);
  sb.feature_compat = g_.features.compat;
  sb.feature_incompat = g_.features.incompat;
  sb.feature_ro_compat = g_.features.ro_compat;
  std::memcpy(sb.uuid, uuid_.data(), 16);
  sb.volume_name = options_.label;
  std::array<uint8_t, 16> seed = options_.hash_seed;
  if (AllZero(seed)) seed = RandomUuid();
  for (int i = 0; i < 4; ++i) {
    sb.hash_seed[i] = format::Le32(seed, 4 * i);
  }
  sb.def_hash_version = format::kHashHalfMd4;
  sb.flags = format::kFlagsSignedHash;
  if (sb.is_64bit()) sb.desc_size = static_cast<uint16_t>(g_.descriptor_size);
  sb.default_mount_opts =
      format::kDefaultMountXattrUser | format::kDefaultMountAcl;
  sb.mkfs_time = now_;
  if (g_.inode_size >= format::kGoodOldInodeSize + kExtraIsize) {
    sb.min_extra_isize = kExtraIsize;
    sb.want_extra_isize = kExtraIsize;
  }
  sb.log_groups_per_flex = static_cast<uint8_t>(g_.log_groups_per_flex);
  if (sb.metadata_csum()) sb.checksum_type = format::kChecksumTypeCrc32c;
  sb.overhead_clusters =
      static_cast<uint32_t>(std::min<uint64_t>(g_.overhead_blocks, UINT32_MAX));
  if (sb.has_incompat(format::kIncompatCsumSeed)) {
    sb.raw_checksum_seed = format::Crc32c(~0u, uuid_);
  }
  if (g_.journal_blocks != 0) {
    sb.journal_inum = format::kJournalIno;
    // Set in WriteJournal with the inode's map.
    sb.jnl_backup_type = format::kJournalBackupInodeBlocks;
  }
}

format::Inode Writer::NewInode(uint16_t mode, uint32_t uid,
                               uint32_t gid) const {
  format::Inode inode;
  inode.mode = mode;
  inode.uid = uid;
  inode.gid = gid;
  inode.atime = inode.ctime = inode.mtime = inode.crtime = {now_, 0};
  if (g_.inode_size > format::kGoodOldInodeSize) {
    inode.extra_isize = static_cast<uint16_t>(std::min<uint32_t>(
        kExtraIsize, g_.inode_size - format::kGoodOldInodeSize));
  }
  if (extents()) inode.flags |= format::kInodeFlagExtents;
  return inode;
}

void Writer::MapDirect(format::Inode& inode, uint64_t first,
                       uint32_t count) const {
  inode.blocks += uint64_t{count} * (bs_ / 512);
  if (extents()) {
    format::ExtentNode root;
    uint32_t logical = 0;
    while (logical < count) {
      uint32_t length =
          std::min(count - logical, format::kInitializedExtentMaxLength);
      root.leaves.push_back({logical, length, false, first + logical});
      logical += length;
    }
    format::SerializeExtentNode(root, inode.block);
    return;
  }
  for (uint32_t i = 0; i < count; ++i) {
    format::Put32(inode.block, 4 * i, static_cast<uint32_t>(first + i));
  }
}

Buffer Writer::DirectoryBlock(uint32_t ino,
                              std::span<const Entry> entries) const {
  Buffer block(bs_, 0);
  const bool tail = metadata_csum();
  const uint32_t end = tail ? bs_ - format::kDirCsumTailSize : bs_;
  const bool filetype = sb_.has_incompat(format::kIncompatFiletype);
  uint32_t offset = 0;
  if (entries.empty()) {
    format::WriteDirEntry(block, 0, 0, end, "", 0);
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    const uint32_t len =
        i + 1 == entries.size()
            ? end - offset
            : format::DirRecLen(static_cast<uint32_t>(e.name.size()));
    format::WriteDirEntry(block, offset, e.ino, len, e.name,
                          filetype ? e.type : 0);
    offset += len;
  }
  if (tail) {
    format::InitDirCsumTail(block);
    format::SetDirBlockChecksum(block, InodeSeed(ino));
  }
  return block;
}

absl::Status Writer::WriteDirectories() {
  const Entry root[] = {{format::kRootDirIno, ".", format::kFtDirectory},
                        {format::kRootDirIno, "..", format::kFtDirectory},
                        {kLostFoundIno, "lost+found", format::kFtDirectory}};
  E4_RETURN_IF_ERROR(
      WriteBlocks(g_.root_block, DirectoryBlock(format::kRootDirIno, root)));
  const Entry lost_found[] = {
      {kLostFoundIno, ".", format::kFtDirectory},
      {format::kRootDirIno, "..", format::kFtDirectory}};
  E4_RETURN_IF_ERROR(WriteBlocks(g_.lost_found_block,
                                 DirectoryBlock(kLostFoundIno, lost_found)));
  const Buffer empty = DirectoryBlock(kLostFoundIno, {});
  for (uint32_t i = 1; i < g_.lost_found_blocks; ++i) {
    E4_RETURN_IF_ERROR(WriteBlocks(g_.lost_found_block + i, empty));
  }
  return absl::OkStatus();
}

absl::Status Writer::WriteJournal() {
  const std::vector<BlockRun>& runs = g_.journal_runs;
  const uint32_t count = g_.journal_blocks;
  if (!options_.assume_zeroed) {
    for (const BlockRun& run : runs) E4_RETURN_IF_ERROR(Zero(run));
  }
  format::Inode& inode = journal_inode_;
  inode = NewInode(format::kModeRegular | 0600, 0, 0);
  inode.links_count = 1;
  inode.size = uint64_t{count} * bs_;
  inode.blocks = (uint64_t{count} + g_.journal_mapping_blocks) * (bs_ / 512);
  // The journal's blocks in layout order: `take` hands out up to `want`
  // physically contiguous ones.
  size_t run_index = 0;
  uint64_t in_run = 0;
  auto take = [&](uint64_t want) -> BlockRun {
    if (run_index >= runs.size()) return {};
    const BlockRun& run = runs[run_index];
    const BlockRun out{run.first + in_run, std::min(want, run.count - in_run)};
    in_run += out.count;
    if (in_run == run.count) {
      ++run_index;
      in_run = 0;
    }
    return out;
  };
  auto short_layout = [] {
    return absl::InternalError("the journal's blocks do not match its map");
  };
  uint64_t first_data = 0;
  if (extents()) {
    const uint64_t leaf_block =
        g_.journal_mapping_blocks != 0 ? take(1).first : 0;
    format::ExtentNode leaves;
    for (uint32_t logical = 0; logical < count;) {
      const BlockRun piece =
          take(std::min(count - logical, format::kInitializedExtentMaxLength));
      if (piece.count == 0) return short_layout();
      leaves.leaves.push_back(
          {logical, static_cast<uint32_t>(piece.count), false, piece.first});
      logical += static_cast<uint32_t>(piece.count);
    }
    first_data = leaves.leaves.front().physical;
    if (leaf_block == 0) {
      if (leaves.leaves.size() >
          format::ExtentNodeCapacity(format::kExtentRootSize)) {
        return short_layout();
      }
      format::SerializeExtentNode(leaves, inode.block);
    } else {
      Buffer block(bs_, 0);
      format::SerializeExtentNode(leaves, block);
      if (metadata_csum()) {
        format::SetExtentBlockChecksum(block, InodeSeed(format::kJournalIno));
      }
      E4_RETURN_IF_ERROR(WriteBlocks(leaf_block, block));
      format::ExtentNode root;
      root.header.depth = 1;
      root.indexes.push_back({0, leaf_block});
      format::SerializeExtentNode(root, inode.block);
    }
  } else {
    // Each indirect block goes right before the first data block it maps,
    // as mke2fs lays them out.
    const uint32_t per = bs_ / 4;
    const uint64_t per2 = uint64_t{per} * per;
    std::map<uint64_t, Buffer> mapping;
    uint64_t ind = 0, dind = 0, tind = 0;
    bool ok = true;
    auto next = [&] {
      const BlockRun one = take(1);
      ok = ok && one.count == 1;
      return one.first;
    };
    auto new_block = [&](uint64_t& block) {
      block = next();
      mapping[block].assign(bs_, 0);
    };
    auto point = [&](uint64_t parent, uint64_t slot, uint64_t child) {
      format::Put32(mapping[parent], 4 * slot, static_cast<uint32_t>(child));
    };
    for (uint64_t logical = 0; logical < count && ok; ++logical) {
      if (logical < 12) {
        const uint64_t block = next();
        format::Put32(inode.block, 4 * logical, static_cast<uint32_t>(block));
        if (logical == 0) first_data = block;
        continue;
      }
      uint64_t l = logical - 12;
      if (l < per) {
        if (l == 0) {
          new_block(ind);
          format::Put32(inode.block, 4 * 12, static_cast<uint32_t>(ind));
        }
      } else if ((l -= per) < per2) {
        if (l == 0) {
          new_block(dind);
          format::Put32(inode.block, 4 * 13, static_cast<uint32_t>(dind));
        }
        if (l % per == 0) {
          new_block(ind);
          point(dind, l / per, ind);
        }
      } else {
        l -= per2;
        if (l == 0) {
          new_block(tind);
          format::Put32(inode.block, 4 * 14, static_cast<uint32_t>(tind));
        }
        if (l % per2 == 0) {
          new_block(dind);
          point(tind, l / per2, dind);
        }
        if (l % per == 0) {
          new_block(ind);
          point(dind, (l / per) % per, ind);
        }
      }
      point(ind, l % per, next());
    }
    if (!ok || mapping.size() != g_.journal_mapping_blocks) {
      return short_layout();
    }
    for (const auto& [block, bytes] : mapping) {
      E4_RETURN_IF_ERROR(WriteBlocks(block, bytes));
    }
  }
  if (run_index != runs.size()) return short_layout();
  // The journal superblock in the journal's first block.
  format::JournalSuperblock jsb;
  jsb.blocktype = format::kJournalSuperblockV2;
  jsb.block_size = bs_;
  jsb.max_len = count;
  jsb.first = 1;
  jsb.sequence = 1;
  jsb.start = 0;
  std::copy(uuid_.begin(), uuid_.end(), jsb.uuid.begin());
  jsb.nr_users = 1;
  Buffer block(bs_, 0);
  format::SerializeJournalSuperblock(jsb, block);
  E4_RETURN_IF_ERROR(WriteBlocks(first_data, block));

  // The superblock keeps a copy of the map.
  for (size_t i = 0; i < 15; ++i) {
    sb_.jnl_blocks[i] = format::Le32(inode.block, 4 * i);
  }
  sb_.jnl_blocks[15] = static_cast<uint32_t>(inode.size >> 32);
  sb_.jnl_blocks[16] = static_cast<uint32_t>(inode.size);
  return absl::OkStatus();
}

absl::Status Writer::WriteInodeTable() {
  if (!options_.assume_zeroed) {
    for (const GroupPlacement& p : g_.groups) {
      E4_RETURN_IF_ERROR(Zero({p.inode_table, g_.inode_table_blocks}));
    }
  }
  // Inodes 1..11 at the start of group 0's table.
  const uint32_t isz = g_.inode_size;
  Buffer table(((kFirstInode * isz + bs_ - 1) / bs_) * bs_, 0);
  auto put = [&](uint32_t ino, const format::Inode& inode) {
    format::SerializeInode(
        inode, ino, sb_,
        format::MutableBytes(table).subspan((ino - 1) * isz, isz));
  };
  // The bad blocks inode (empty, with times) and the other reserved ones:
  // zero but for their checksum.
  for (uint32_t ino = 1; ino < kFirstInode; ++ino) {
    format::Inode reserved;
    if (ino == format::kBadBlocksIno) {
      reserved.atime = reserved.ctime = reserved.mtime = {now_, 0};
    }
    put(ino, reserved);
  }
  format::Inode root = NewInode(format::kModeDirectory | 0755,
                                options_.root_uid, options_.root_gid);
  root.links_count = 3;
  root.size = bs_;
  MapDirect(root, g_.root_block, 1);
  put(format::kRootDirIno, root);

  format::Inode lost_found = NewInode(format::kModeDirectory | 0700, 0, 0);
  lost_found.links_count = 2;
  lost_found.size = uint64_t{g_.lost_found_blocks} * bs_;
  MapDirect(lost_found, g_.lost_found_block, g_.lost_found_blocks);
  put(kLostFoundIno, lost_found);

  if (g_.journal_blocks != 0) put(format::kJournalIno, journal_inode_);
  return WriteBlocks(g_.groups[0].inode_table, table);
}

absl::Status Writer::WriteGroups() {
  const bool csum = sb_.has_group_desc_csum();
  const uint32_t ipg = g_.inodes_per_group;
  const uint32_t bpg = g_.blocks_per_group;
  gdt_.assign(uint64_t{g_.descriptor_blocks} * bs_, 0);
  Buffer block_bitmap(bs_), inode_bitmap(bs_);
  size_t run = 0;
  for (uint32_t group = 0; group < g_.group_count; ++group) {
    const GroupPlacement& p = g_.groups[group];
    const uint64_t start = g_.group_first_block(group);
    const uint64_t end = g_.group_end_block(group);
    std::fill(block_bitmap.begin(), block_bitmap.end(), 0);
    while (run < g_.used.size() && g_.used[run].end() <= start) ++run;
    uint64_t used = 0;
    for (size_t i = run; i < g_.used.size() && g_.used[i].first < end; ++i) {
      const uint64_t from = std::max(g_.used[i].first, start);
      const uint64_t to = std::min(g_.used[i].end(), end);
      SetBits(block_bitmap, from - start, to - start);
      used += to - from;
    }
    SetBits(block_bitmap, end - start, uint64_t{bs_} * 8);

    std::fill(inode_bitmap.begin(), inode_bitmap.end(), 0);
    const uint32_t inodes_used = group == 0 ? kFirstInode : 0;
    SetBits(inode_bitmap, 0, inodes_used);
    SetBits(inode_bitmap, ipg, uint64_t{bs_} * 8);

    format::GroupDescriptor gd;
    gd.block_bitmap = p.block_bitmap;
    gd.inode_bitmap = p.inode_bitmap;
    gd.inode_table = p.inode_table;
    gd.free_blocks_count = static_cast<uint32_t>((end - start) - used);
    gd.free_inodes_count = ipg - inodes_used;
    gd.used_dirs_count = group == 0 ? 2 : 0;
    if (csum) {
      gd.itable_unused = ipg - inodes_used;
      gd.flags = format::kBgInodeZeroed;
      if (inodes_used == 0) gd.flags |= format::kBgInodeUninit;
      // The kernel rebuilds an uninitialized block bitmap from the group's
      // superblock copy and its own bitmaps and table: only when that is
      // all the group holds may it be left so.
      auto inside = [&](uint64_t first, uint64_t count) -> uint64_t {
        const uint64_t from = std::max(first, start);
        const uint64_t to = std::min(first + count, end);
        return to > from ? to - from : 0;
      };
      const uint64_t own = g_.superblock_blocks(group) +
                           inside(p.block_bitmap, 1) +
                           inside(p.inode_bitmap, 1) +
                           inside(p.inode_table, g_.inode_table_blocks);
      if (group + 1 < g_.group_count && used == own) {
        gd.flags |= format::kBgBlockUninit;
      }
    }
    if (metadata_csum()) {
      const uint32_t seed = sb_.checksum_seed();
      gd.block_bitmap_csum =
          format::Crc32c(seed, format::Bytes(block_bitmap).first(bpg / 8));
      gd.inode_bitmap_csum =
          format::Crc32c(seed, format::Bytes(inode_bitmap).first(ipg / 8));
    }
    format::SerializeGroupDescriptor(
        gd, group, sb_,
        format::MutableBytes(gdt_).subspan(uint64_t{group} * g_.descriptor_size,
                                           g_.descriptor_size));
    // Bitmaps of uninitialized groups are never read (everyone builds
    // them from the descriptor), so, as mke2fs, they are not written: a
    // large image gets a block or two per group instead of two. Their
    // checksums above are those of what would be built.
    if (!(gd.flags & format::kBgBlockUninit)) {
      E4_RETURN_IF_ERROR(WriteBlocks(p.block_bitmap, block_bitmap));
    }
    if (!(gd.flags & format::kBgInodeUninit)) {
      E4_RETURN_IF_ERROR(WriteBlocks(p.inode_bitmap, inode_bitmap));
    }
  }
  return absl::OkStatus();
}

absl::Status Writer::WriteSuperblocks() {
  // Backups first, the primary copy last.
  Buffer block(bs_, 0);
  for (uint32_t group = g_.group_count; group-- > 0;) {
    if (!g_.has_superblock(group)) continue;
    const uint64_t first = g_.group_first_block(group);
    E4_RETURN_IF_ERROR(WriteBlocks(first + 1, gdt_));
    if (group == 0) break;
    sb_.block_group_nr = static_cast<uint16_t>(group);
    std::fill(block.begin(), block.end(), 0);
    format::SerializeSuperblock(sb_, block);
    E4_RETURN_IF_ERROR(WriteBlocks(first, block));
  }
  E4_RETURN_IF_ERROR(device_.Flush());
  sb_.block_group_nr = 0;
  Buffer primary(format::kSuperblockSize, 0);
  format::SerializeSuperblock(sb_, primary);
  E4_RETURN_IF_ERROR(device_.WriteAt(format::kSuperblockOffset, primary));
  return device_.Flush();
}

absl::Status Writer::Run() {
  if (device_.read_only()) {
    return ErrnoError(EROFS, "the device is read-only");
  }
  now_ = options_.time.value_or(DefaultCreationTime());
  uuid_ = AllZero(options_.uuid) ? RandomUuid() : options_.uuid;
  BuildSuperblock();
  if (!options_.assume_zeroed) {
    // No old superblock may survive a run that fails half way.
    const Buffer zeros(format::kSuperblockSize, 0);
    E4_RETURN_IF_ERROR(device_.WriteAt(format::kSuperblockOffset, zeros));
    E4_RETURN_IF_ERROR(device_.Flush());
  }
  if (g_.journal_blocks != 0) E4_RETURN_IF_ERROR(WriteJournal());
  E4_RETURN_IF_ERROR(WriteInodeTable());
  E4_RETURN_IF_ERROR(WriteDirectories());
  E4_RETURN_IF_ERROR(WriteGroups());
  return WriteSuperblocks();
}

}  // namespace

absl::Status MakeFilesystem(io::BlockDevice& device,
                            const MkfsOptions& options) {
  E4_ASSIGN_OR_RETURN(Geometry geometry,
                      PlanFilesystem(options, device.Size()));
  Writer writer(device, geometry, options);
  return writer.Run();
}

}  // namespace ext4::mkfs
