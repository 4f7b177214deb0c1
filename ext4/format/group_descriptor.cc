#include "ext4/format/group_descriptor.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "ext4/format/checksum.h"

namespace ext4::format {
namespace {

// Field offsets in struct ext4_group_desc.
constexpr size_t kBlockBitmapLo = 0x00;
constexpr size_t kInodeBitmapLo = 0x04;
constexpr size_t kInodeTableLo = 0x08;
constexpr size_t kFreeBlocksCountLo = 0x0C;
constexpr size_t kFreeInodesCountLo = 0x0E;
constexpr size_t kUsedDirsCountLo = 0x10;
constexpr size_t kFlags = 0x12;
constexpr size_t kExcludeBitmapLo = 0x14;
constexpr size_t kBlockBitmapCsumLo = 0x18;
constexpr size_t kInodeBitmapCsumLo = 0x1A;
constexpr size_t kItableUnusedLo = 0x1C;
constexpr size_t kChecksum = 0x1E;
constexpr size_t kBlockBitmapHi = 0x20;
constexpr size_t kInodeBitmapHi = 0x24;
constexpr size_t kInodeTableHi = 0x28;
constexpr size_t kFreeBlocksCountHi = 0x2C;
constexpr size_t kFreeInodesCountHi = 0x2E;
constexpr size_t kUsedDirsCountHi = 0x30;
constexpr size_t kItableUnusedHi = 0x32;
constexpr size_t kExcludeBitmapHi = 0x34;
constexpr size_t kBlockBitmapCsumHi = 0x38;
constexpr size_t kInodeBitmapCsumHi = 0x3A;
static_assert(kChecksum + 2 == kMinDescriptorSize);
static_assert(kInodeBitmapCsumHi + 2 <= kMinDescriptorSize64Bit);

absl::Status Bad(uint32_t group, const std::string& what) {
  return Corrupt(absl::StrCat("group descriptor ", group, ": ", what));
}

// Checks that [start, start + count) lies in [first, last] and off the
// primary superblock and descriptor table.
absl::Status CheckRange(uint32_t group, const char* what, uint64_t start,
                        uint64_t count, uint64_t first, uint64_t last,
                        const Superblock& sb) {
  if (start < first || start > last || count - 1 > last - start) {
    return Bad(group,
               absl::StrCat(what, " at block ", start,
                            count > 1 ? absl::StrCat(" (", count, " blocks)")
                                      : std::string(),
                            " lies outside blocks ", first, "-", last));
  }
  const uint64_t sb_block = sb.superblock_block();
  // The descriptor blocks right after the primary superblock: the whole
  // table without meta_bg; with it the s_first_meta_bg classic blocks, or
  // the first meta group's block when every block is in meta_bg layout.
  uint64_t table_blocks = sb.descriptor_blocks();
  if (sb.has_incompat(kIncompatMetaBg)) {
    table_blocks = sb.first_meta_bg > 0 ? sb.first_meta_bg : 1;
  }
  const uint64_t table_end = sb_block + table_blocks;  // inclusive
  if (start <= table_end && start + count - 1 >= sb_block) {
    return Bad(group, absl::StrCat(what, " at block ", start,
                                   " overlaps the superblock or the group "
                                   "descriptors (blocks ",
                                   sb_block, "-", table_end, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

uint64_t GroupDescriptorBlock(const Superblock& sb, uint32_t group) {
  const uint32_t per_block = sb.descriptors_per_block();
  if (per_block == 0) return 0;
  const uint32_t index = group / per_block;
  if (!sb.has_incompat(kIncompatMetaBg) || index < sb.first_meta_bg) {
    return sb.superblock_block() + index + 1;
  }
  // meta_bg: each run of per_block groups keeps its descriptor block in its
  // first group, right after that group's superblock copy.
  const uint32_t first_group = index * per_block;
  uint64_t skip = GroupHasSuperblock(sb, first_group) ? 1 : 0;
  // With 1 KiB blocks and first_data_block 0 (bigalloc), group 0 starts at
  // block 0 but the superblock sits in block 1.
  if (sb.block_size() == 1024 && index == 0 && sb.first_data_block == 0) {
    ++skip;
  }
  return sb.group_first_block(first_group) + skip;
}

uint32_t GroupDescriptorOffsetInBlock(const Superblock& sb, uint32_t group) {
  const uint32_t per_block = sb.descriptors_per_block();
  if (per_block == 0) return 0;
  return (group % per_block) * sb.descriptor_size();
}

uint16_t GroupDescriptorChecksum(Bytes raw, uint32_t group,
                                 const Superblock& sb) {
  size_t size = sb.descriptor_size();
  if (size > raw.size()) size = raw.size();
  if (size < kChecksum + 2) return 0;
  uint8_t le_group[4];
  Put32(le_group, 0, group);
  if (sb.metadata_csum()) {
    static constexpr uint8_t kZero[2] = {0, 0};
    uint32_t crc = Crc32c(sb.checksum_seed(), le_group);
    crc = Crc32c(crc, raw.first(kChecksum));
    crc = Crc32c(crc, kZero);
    crc = Crc32c(crc, raw.subspan(kChecksum + 2, size - (kChecksum + 2)));
    return static_cast<uint16_t>(crc & 0xFFFF);
  }
  if (!sb.has_ro_compat(kRoCompatGdtCsum)) return 0;
  uint16_t crc = Crc16(0xFFFF, Bytes(sb.uuid, sizeof(sb.uuid)));
  crc = Crc16(crc, le_group);
  crc = Crc16(crc, raw.first(kChecksum));
  if (sb.is_64bit()) {
    crc = Crc16(crc, raw.subspan(kChecksum + 2, size - (kChecksum + 2)));
  }
  return crc;
}

absl::StatusOr<GroupDescriptor> ParseGroupDescriptor(Bytes raw, uint32_t group,
                                                     const Superblock& sb) {
  const size_t size = sb.descriptor_size();
  if (size < kMinDescriptorSize || raw.size() < size) {
    return Bad(group, absl::StrCat("needs ", size, " bytes, got ", raw.size()));
  }
  const bool wide = size >= kMinDescriptorSize64Bit;
  GroupDescriptor gd;
  gd.block_bitmap = Le32(raw, kBlockBitmapLo);
  gd.inode_bitmap = Le32(raw, kInodeBitmapLo);
  gd.inode_table = Le32(raw, kInodeTableLo);
  gd.free_blocks_count = Le16(raw, kFreeBlocksCountLo);
  gd.free_inodes_count = Le16(raw, kFreeInodesCountLo);
  gd.used_dirs_count = Le16(raw, kUsedDirsCountLo);
  gd.flags = Le16(raw, kFlags);
  gd.exclude_bitmap = Le32(raw, kExcludeBitmapLo);
  gd.block_bitmap_csum = Le16(raw, kBlockBitmapCsumLo);
  gd.inode_bitmap_csum = Le16(raw, kInodeBitmapCsumLo);
  gd.itable_unused = Le16(raw, kItableUnusedLo);
  gd.checksum = Le16(raw, kChecksum);
  if (wide) {
    gd.block_bitmap |= uint64_t{Le32(raw, kBlockBitmapHi)} << 32;
    gd.inode_bitmap |= uint64_t{Le32(raw, kInodeBitmapHi)} << 32;
    gd.inode_table |= uint64_t{Le32(raw, kInodeTableHi)} << 32;
    gd.free_blocks_count |= uint32_t{Le16(raw, kFreeBlocksCountHi)} << 16;
    gd.free_inodes_count |= uint32_t{Le16(raw, kFreeInodesCountHi)} << 16;
    gd.used_dirs_count |= uint32_t{Le16(raw, kUsedDirsCountHi)} << 16;
    gd.itable_unused |= uint32_t{Le16(raw, kItableUnusedHi)} << 16;
    gd.exclude_bitmap |= uint64_t{Le32(raw, kExcludeBitmapHi)} << 32;
    gd.block_bitmap_csum |= uint32_t{Le16(raw, kBlockBitmapCsumHi)} << 16;
    gd.inode_bitmap_csum |= uint32_t{Le16(raw, kInodeBitmapCsumHi)} << 16;
  }

  if (sb.has_group_desc_csum() &&
      GroupDescriptorChecksum(raw, group, sb) != gd.checksum) {
    E4_RETURN_IF_ERROR(
        ChecksumMismatch(absl::StrCat("group descriptor ", group)));
  }

  if (group >= sb.group_count()) {
    return Bad(group,
               absl::StrCat("no such group (", sb.group_count(), " groups)"));
  }
  // Without flex_bg a group's metadata lives inside the group; with it,
  // anywhere in the filesystem.
  uint64_t first = sb.first_data_block;
  uint64_t last = sb.blocks_count - 1;
  if (!sb.has_incompat(kIncompatFlexBg)) {
    first = sb.group_first_block(group);
    if (group + 1 < sb.group_count()) last = first + sb.blocks_per_group - 1;
  }
  E4_RETURN_IF_ERROR(
      CheckRange(group, "block bitmap", gd.block_bitmap, 1, first, last, sb));
  E4_RETURN_IF_ERROR(
      CheckRange(group, "inode bitmap", gd.inode_bitmap, 1, first, last, sb));
  E4_RETURN_IF_ERROR(CheckRange(group, "inode table", gd.inode_table,
                                sb.inode_table_blocks(), first, last, sb));

  if (gd.free_inodes_count > sb.inodes_per_group ||
      gd.used_dirs_count > sb.inodes_per_group ||
      gd.itable_unused > sb.inodes_per_group) {
    return Bad(group,
               absl::StrCat("inode counts (free ", gd.free_inodes_count,
                            ", directories ", gd.used_dirs_count, ", unused ",
                            gd.itable_unused, ") exceed the ",
                            sb.inodes_per_group, " inodes of a group"));
  }
  if (gd.free_blocks_count > sb.group_clusters()) {
    return Bad(group, absl::StrCat("free count ", gd.free_blocks_count,
                                   " exceeds the ", sb.group_clusters(),
                                   sb.bigalloc() ? " clusters" : " blocks",
                                   " of a group"));
  }
  return gd;
}

void SerializeGroupDescriptor(const GroupDescriptor& gd, uint32_t group,
                              const Superblock& sb, MutableBytes raw) {
  const size_t size = sb.descriptor_size();
  if (size < kMinDescriptorSize || raw.size() < size) return;
  Put32(raw, kBlockBitmapLo, static_cast<uint32_t>(gd.block_bitmap));
  Put32(raw, kInodeBitmapLo, static_cast<uint32_t>(gd.inode_bitmap));
  Put32(raw, kInodeTableLo, static_cast<uint32_t>(gd.inode_table));
  Put16(raw, kFreeBlocksCountLo, static_cast<uint16_t>(gd.free_blocks_count));
  Put16(raw, kFreeInodesCountLo, static_cast<uint16_t>(gd.free_inodes_count));
  Put16(raw, kUsedDirsCountLo, static_cast<uint16_t>(gd.used_dirs_count));
  Put16(raw, kFlags, gd.flags);
  Put32(raw, kExcludeBitmapLo, static_cast<uint32_t>(gd.exclude_bitmap));
  Put16(raw, kBlockBitmapCsumLo, static_cast<uint16_t>(gd.block_bitmap_csum));
  Put16(raw, kInodeBitmapCsumLo, static_cast<uint16_t>(gd.inode_bitmap_csum));
  Put16(raw, kItableUnusedLo, static_cast<uint16_t>(gd.itable_unused));
  if (size >= kMinDescriptorSize64Bit) {
    Put32(raw, kBlockBitmapHi, static_cast<uint32_t>(gd.block_bitmap >> 32));
    Put32(raw, kInodeBitmapHi, static_cast<uint32_t>(gd.inode_bitmap >> 32));
    Put32(raw, kInodeTableHi, static_cast<uint32_t>(gd.inode_table >> 32));
    Put16(raw, kFreeBlocksCountHi,
          static_cast<uint16_t>(gd.free_blocks_count >> 16));
    Put16(raw, kFreeInodesCountHi,
          static_cast<uint16_t>(gd.free_inodes_count >> 16));
    Put16(raw, kUsedDirsCountHi,
          static_cast<uint16_t>(gd.used_dirs_count >> 16));
    Put16(raw, kItableUnusedHi, static_cast<uint16_t>(gd.itable_unused >> 16));
    Put32(raw, kExcludeBitmapHi,
          static_cast<uint32_t>(gd.exclude_bitmap >> 32));
    Put16(raw, kBlockBitmapCsumHi,
          static_cast<uint16_t>(gd.block_bitmap_csum >> 16));
    Put16(raw, kInodeBitmapCsumHi,
          static_cast<uint16_t>(gd.inode_bitmap_csum >> 16));
  }
  Put16(raw, kChecksum,
        sb.has_group_desc_csum() ? GroupDescriptorChecksum(raw, group, sb)
                                 : gd.checksum);
}

}  // namespace ext4::format
