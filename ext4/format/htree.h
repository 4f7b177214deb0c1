// Hash-tree directory index blocks (dir_index).
//
// Block 0 of an indexed directory is the dx_root: a "." entry (rec_len 12),
// a ".." entry whose rec_len covers the rest of the block, then at offset 24
// the dx_root_info {le32 reserved_zero; u8 hash_version; u8 info_length (8);
// u8 indirect_levels; u8 unused_flags}, then at offset 32 the index entries.
// Interior blocks (dx_node) start with a fake dirent {inode 0, rec_len = block
// size}, then at offset 8 the index entries.
//
// Index entries are 8 bytes {le32 hash; le32 block}; entry 0's hash field
// holds {le16 limit; le16 count} instead (its hash is implicitly 0). With
// metadata_csum, a dx_tail {le32 reserved; le32 checksum} follows the `limit`
// entries.
#ifndef E4FS_EXT4_FORMAT_HTREE_H_
#define E4FS_EXT4_FORMAT_HTREE_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ext4/format/endian.h"

namespace ext4::format {

inline constexpr uint32_t kDxRootInfoOffset = 24;
inline constexpr uint32_t kDxRootInfoLength = 8;
inline constexpr uint32_t kDxRootCountOffset = 32;
inline constexpr uint32_t kDxNodeCountOffset = 8;
inline constexpr uint32_t kDxEntrySize = 8;
inline constexpr uint32_t kDxTailSize = 8;
// The top bits of an index entry's block field are reserved.
inline constexpr uint32_t kDxBlockMask = 0x0fffffff;

// Entries that fit in a root / interior block (the dx_tail takes 8 bytes
// with metadata_csum). A valid block's `limit` is exactly this.
uint32_t DxRootLimit(uint32_t block_size, bool metadata_csum);
uint32_t DxNodeLimit(uint32_t block_size, bool metadata_csum);
// Index levels allowed: indirect_levels must be below this (2, or 3 with
// large_dir).
uint32_t DxMaxLevels(bool large_dir);

// A validated view of the index entries of one root or interior block. It
// points into the block, which must outlive it.
class DxEntries {
 public:
  DxEntries() = default;
  DxEntries(Bytes block, uint32_t count_offset, uint16_t count, uint16_t limit)
      : block_(block),
        count_offset_(count_offset),
        count_(count),
        limit_(limit) {}

  uint16_t count() const { return count_; }
  uint16_t limit() const { return limit_; }
  uint32_t count_offset() const { return count_offset_; }
  // Entry 0 covers everything below hash(1); its hash reads as 0.
  uint32_t hash(size_t i) const {
    return i == 0 ? 0 : Le32(block_, count_offset_ + i * kDxEntrySize);
  }
  uint32_t block(size_t i) const {
    return Le32(block_, count_offset_ + i * kDxEntrySize + 4) & kDxBlockMask;
  }
  // The entry whose subtree holds `hash`: the last entry with hash(i) <=
  // hash (entry 0 when there is none), by binary search.
  size_t Find(uint32_t hash) const;

 private:
  Bytes block_;
  uint32_t count_offset_ = 0;
  uint16_t count_ = 0;
  uint16_t limit_ = 0;
};

struct DxRoot {
  uint32_t dot_inode = 0;
  uint8_t dot_file_type = 0;
  uint32_t dotdot_inode = 0;
  uint8_t dotdot_file_type = 0;
  uint8_t hash_version =
      0;  // as stored: 0 legacy, 1 half_md4, 2 tea, 6 siphash
  uint8_t indirect_levels = 0;
  uint8_t unused_flags = 0;
  DxEntries entries;
};

// Parses and validates a dx_root: the "." and ".." entries, reserved_zero 0,
// info_length 8, a known hash version, no unknown flags, indirect_levels
// below DxMaxLevels(), limit == DxRootLimit(), 1 <= count <= limit, and
// hashes non-decreasing after entry 0. EUCLEAN otherwise. Block numbers are
// not checked here (the caller knows the directory's size).
absl::StatusOr<DxRoot> ParseDxRoot(Bytes block, bool metadata_csum,
                                   bool large_dir);
// The same for an interior block (fake dirent, limit == DxNodeLimit()).
absl::StatusOr<DxEntries> ParseDxNode(Bytes block, bool metadata_csum);

// Where the count/limit field sits: 32 in a root, 8 in an interior block,
// telling them apart by the first record's rec_len as the kernel does.
// EUCLEAN for a block that is neither.
absl::StatusOr<uint32_t> DxCountOffset(Bytes block);

// crc32c(inode_seed) over the block up to the last used entry, then the
// dx_tail with its checksum field read as zero. `tail_offset` is where the
// dx_tail sits (count_offset + limit * 8).
uint32_t DxChecksum(Bytes block, uint32_t count_offset, uint32_t count,
                    uint32_t tail_offset, uint32_t inode_seed);
// Verifies the dx_tail checksum of a root or interior block. EUCLEAN when the
// block has no room for the tail or count > limit; checksum mismatches go
// through ChecksumMismatch().
absl::Status VerifyDxChecksum(Bytes block, uint32_t inode_seed);
// Computes and stores the dx_tail checksum. EUCLEAN if the block is not an
// index block with room for the tail.
absl::Status SetDxChecksum(MutableBytes block, uint32_t inode_seed);

// Writers, for building index blocks. Both zero-fill nothing: the caller
// passes a zeroed block. They set limit and count 0.
void InitDxRoot(MutableBytes block, uint32_t dot_inode, uint32_t dotdot_inode,
                uint8_t dir_file_type, uint8_t hash_version,
                uint8_t indirect_levels, bool metadata_csum);
void InitDxNode(MutableBytes block, bool metadata_csum);
void PutDxCount(MutableBytes block, uint32_t count_offset, uint16_t count);
// Entry i (i >= 1 gets `hash`; entry 0 only takes the block).
void PutDxEntry(MutableBytes block, uint32_t count_offset, size_t i,
                uint32_t hash, uint32_t block_number);

}  // namespace ext4::format

#endif  // E4FS_EXT4_FORMAT_HTREE_H_
