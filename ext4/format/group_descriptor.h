// Block group descriptors: where each group's bitmaps and inode table live,
// its free counts, and its flags. 32 bytes each, or s_desc_size (64 or more)
// with the 64bit feature, which adds the high halves of every field.
#ifndef E4FS_EXT4_FORMAT_GROUP_DESCRIPTOR_H_
#define E4FS_EXT4_FORMAT_GROUP_DESCRIPTOR_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "ext4/format/endian.h"
#include "ext4/format/superblock.h"

namespace ext4::format {

// bg_flags.
inline constexpr uint16_t kBgInodeUninit = 0x0001;  // inode table/bitmap unused
inline constexpr uint16_t kBgBlockUninit = 0x0002;  // block bitmap not set up
inline constexpr uint16_t kBgInodeZeroed = 0x0004;  // inode table zeroed

struct GroupDescriptor {
  uint64_t block_bitmap = 0;
  uint64_t inode_bitmap = 0;
  uint64_t inode_table = 0;
  uint32_t free_blocks_count = 0;  // in clusters with bigalloc
  uint32_t free_inodes_count = 0;
  uint32_t used_dirs_count = 0;
  uint16_t flags = 0;
  uint64_t exclude_bitmap = 0;     // snapshots; unused by ext4
  uint32_t block_bitmap_csum = 0;  // crc32c, low 16 bits in 32-byte groups
  uint32_t inode_bitmap_csum = 0;
  uint32_t itable_unused = 0;  // unused inodes at the end of the table
  uint16_t checksum = 0;
};

// The block holding a group's descriptor: the table right after the
// primary superblock's block, or, with meta_bg for the descriptor blocks at
// and after s_first_meta_bg, the first block of the meta group (after its
// superblock copy, if it has one). Needs a validated superblock.
uint64_t GroupDescriptorBlock(const Superblock& sb, uint32_t group);
// The byte offset of the descriptor inside that block.
uint32_t GroupDescriptorOffsetInBlock(const Superblock& sb, uint32_t group);

// Parses one descriptor (raw holds descriptor_size() bytes). Verifies the
// checksum (metadata_csum or gdt_csum) and that the bitmaps and every block
// of the inode table lie inside the filesystem (inside the group itself
// without flex_bg) and off the superblock and the primary descriptor table;
// EUCLEAN naming the group otherwise.
absl::StatusOr<GroupDescriptor> ParseGroupDescriptor(Bytes raw, uint32_t group,
                                                     const Superblock& sb);

// The checksum bg_checksum must hold: crc32c's low 16 bits under
// metadata_csum, crc16 under gdt_csum, 0 without either.
uint16_t GroupDescriptorChecksum(Bytes raw, uint32_t group,
                                 const Superblock& sb);

// Writes the descriptor into raw (>= descriptor_size() bytes; shorter
// buffers are left alone): the high halves only with 64-byte descriptors,
// bytes no field covers are kept. bg_checksum is recomputed when the
// filesystem has descriptor checksums, else `checksum` is written as is.
void SerializeGroupDescriptor(const GroupDescriptor& gd, uint32_t group,
                              const Superblock& sb, MutableBytes raw);

}  // namespace ext4::format

#endif  // E4FS_EXT4_FORMAT_GROUP_DESCRIPTOR_H_
