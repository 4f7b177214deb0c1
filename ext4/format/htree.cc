#include "ext4/format/htree.h"

#include <string>

#include "ext4/errno_status.h"
#include "ext4/format/checksum.h"
#include "ext4/format/dirent.h"
#include "ext4/format/dx_hash.h"

namespace ext4::format {
namespace {

absl::Status BadIndex(std::string_view what) {
  return Corrupt("htree index block: " + std::string(what));
}

uint32_t BlockSizeOf(Bytes block) {
  return static_cast<uint32_t>(block.size());
}

// Reads and validates count/limit and the hash order of the entries at
// `count_offset`, against the expected limit.
absl::StatusOr<DxEntries> ParseEntries(Bytes block, uint32_t count_offset,
                                       uint32_t expected_limit) {
  if (block.size() < count_offset + kDxEntrySize) {
    return BadIndex("block too small");
  }
  const uint16_t limit = Le16(block, count_offset);
  const uint16_t count = Le16(block, count_offset + 2);
  if (limit != expected_limit) {
    return BadIndex("limit " + std::to_string(limit) +
                    " != " + std::to_string(expected_limit));
  }
  if (count == 0 || count > limit) {
    return BadIndex("count " + std::to_string(count) + " outside 1.." +
                    std::to_string(limit));
  }
  // The expected limit was computed from the block size, so the entries fit.
  DxEntries entries(block, count_offset, count, limit);
  for (size_t i = 2; i < count; ++i) {
    if (entries.hash(i) < entries.hash(i - 1)) {
      return BadIndex("hashes out of order");
    }
  }
  return entries;
}

}  // namespace

uint32_t DxRootLimit(uint32_t block_size, bool metadata_csum) {
  uint32_t space =
      block_size > kDxRootCountOffset ? block_size - kDxRootCountOffset : 0;
  if (metadata_csum) space = space > kDxTailSize ? space - kDxTailSize : 0;
  return space / kDxEntrySize;
}

uint32_t DxNodeLimit(uint32_t block_size, bool metadata_csum) {
  uint32_t space =
      block_size > kDxNodeCountOffset ? block_size - kDxNodeCountOffset : 0;
  if (metadata_csum) space = space > kDxTailSize ? space - kDxTailSize : 0;
  return space / kDxEntrySize;
}

uint32_t DxMaxLevels(bool large_dir) { return large_dir ? 3 : 2; }

size_t DxEntries::Find(uint32_t hash) const {
  // Entries 1..count-1 are sorted; find the last one with hash(i) <= hash.
  size_t lo = 1;
  size_t hi = count_;  // exclusive
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if (this->hash(mid) > hash) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo - 1;
}

absl::StatusOr<DxRoot> ParseDxRoot(Bytes block, bool metadata_csum,
                                   bool large_dir) {
  const uint32_t block_size = BlockSizeOf(block);
  if (block_size < 1024 || block_size > (1u << 16)) {
    return BadIndex("unsupported block size");
  }
  DxRoot root;
  // "." at 0, ".." at 12.
  root.dot_inode = Le32(block, 0);
  root.dot_file_type = Le8(block, 7);
  if (DecodeRecLen(Le16(block, 4), block_size) != 12 || Le8(block, 6) != 1 ||
      block[8] != '.') {
    return BadIndex("root has no \".\" entry");
  }
  root.dotdot_inode = Le32(block, 12);
  root.dotdot_file_type = Le8(block, 19);
  if (DecodeRecLen(Le16(block, 16), block_size) != block_size - 12 ||
      Le8(block, 18) != 2 || block[20] != '.' || block[21] != '.') {
    return BadIndex("root has no \"..\" entry");
  }
  if (Le32(block, kDxRootInfoOffset) != 0) {
    return BadIndex("root reserved field not zero");
  }
  root.hash_version = Le8(block, kDxRootInfoOffset + 4);
  const uint8_t info_length = Le8(block, kDxRootInfoOffset + 5);
  root.indirect_levels = Le8(block, kDxRootInfoOffset + 6);
  root.unused_flags = Le8(block, kDxRootInfoOffset + 7);
  if (info_length != kDxRootInfoLength) {
    return BadIndex("root info_length " + std::to_string(info_length));
  }
  if (root.hash_version != kDxHashLegacy &&
      root.hash_version != kDxHashHalfMd4 && root.hash_version != kDxHashTea &&
      root.hash_version != kDxHashSiphash) {
    return BadIndex("unknown hash version " +
                    std::to_string(root.hash_version));
  }
  if (root.unused_flags & 1) return BadIndex("unknown root flags");
  if (root.indirect_levels >= DxMaxLevels(large_dir)) {
    return BadIndex("too many levels (" + std::to_string(root.indirect_levels) +
                    ")");
  }
  E4_ASSIGN_OR_RETURN(root.entries,
                      ParseEntries(block, kDxRootCountOffset,
                                   DxRootLimit(block_size, metadata_csum)));
  return root;
}

absl::StatusOr<DxEntries> ParseDxNode(Bytes block, bool metadata_csum) {
  const uint32_t block_size = BlockSizeOf(block);
  if (block_size < 1024 || block_size > (1u << 16)) {
    return BadIndex("unsupported block size");
  }
  if (Le32(block, 0) != 0 ||
      DecodeRecLen(Le16(block, 4), block_size) != block_size) {
    return BadIndex("interior block has no empty leading entry");
  }
  return ParseEntries(block, kDxNodeCountOffset,
                      DxNodeLimit(block_size, metadata_csum));
}

absl::StatusOr<uint32_t> DxCountOffset(Bytes block) {
  const uint32_t block_size = BlockSizeOf(block);
  if (block_size < 1024 || block_size > (1u << 16)) {
    return BadIndex("unsupported block size");
  }
  const uint32_t first = DecodeRecLen(Le16(block, 4), block_size);
  if (first == block_size) return kDxNodeCountOffset;
  if (first == 12 &&
      DecodeRecLen(Le16(block, 16), block_size) == block_size - 12 &&
      Le32(block, kDxRootInfoOffset) == 0 &&
      Le8(block, kDxRootInfoOffset + 5) == kDxRootInfoLength) {
    return kDxRootCountOffset;
  }
  return BadIndex("neither a root nor an interior block");
}

uint32_t DxChecksum(Bytes block, uint32_t count_offset, uint32_t count,
                    uint32_t tail_offset, uint32_t inode_seed) {
  uint32_t crc =
      Crc32c(inode_seed, block.first(count_offset + count * kDxEntrySize));
  crc = Crc32c(crc, block.subspan(tail_offset, 4));
  const uint8_t zero[4] = {0, 0, 0, 0};
  return Crc32c(crc, zero);
}

namespace {

// Locates the dx_tail of an index block: {count_offset, count, tail_offset}.
struct TailLocation {
  uint32_t count_offset;
  uint32_t count;
  uint32_t tail_offset;
};

absl::StatusOr<TailLocation> LocateTail(Bytes block) {
  E4_ASSIGN_OR_RETURN(const uint32_t count_offset, DxCountOffset(block));
  const uint32_t limit = Le16(block, count_offset);
  const uint32_t count = Le16(block, count_offset + 2);
  if (count > limit) return BadIndex("count beyond limit");
  const uint64_t tail = count_offset + uint64_t{limit} * kDxEntrySize;
  if (tail + kDxTailSize > block.size()) {
    return BadIndex("no space for the checksum tail");
  }
  return TailLocation{count_offset, count, static_cast<uint32_t>(tail)};
}

}  // namespace

absl::Status VerifyDxChecksum(Bytes block, uint32_t inode_seed) {
  E4_ASSIGN_OR_RETURN(const TailLocation loc, LocateTail(block));
  const uint32_t stored = Le32(block, loc.tail_offset + 4);
  if (stored != DxChecksum(block, loc.count_offset, loc.count, loc.tail_offset,
                           inode_seed)) {
    return ChecksumMismatch("htree index block");
  }
  return absl::OkStatus();
}

absl::Status SetDxChecksum(MutableBytes block, uint32_t inode_seed) {
  E4_ASSIGN_OR_RETURN(const TailLocation loc, LocateTail(block));
  Put32(block, loc.tail_offset + 4,
        DxChecksum(block, loc.count_offset, loc.count, loc.tail_offset,
                   inode_seed));
  return absl::OkStatus();
}

void InitDxRoot(MutableBytes block, uint32_t dot_inode, uint32_t dotdot_inode,
                uint8_t dir_file_type, uint8_t hash_version,
                uint8_t indirect_levels, bool metadata_csum) {
  const uint32_t block_size = static_cast<uint32_t>(block.size());
  WriteDirEntry(block, 0, dot_inode, 12, ".", dir_file_type);
  WriteDirEntry(block, 12, dotdot_inode, block_size - 12, "..", dir_file_type);
  Put32(block, kDxRootInfoOffset, 0);
  block[kDxRootInfoOffset + 4] = hash_version;
  block[kDxRootInfoOffset + 5] = kDxRootInfoLength;
  block[kDxRootInfoOffset + 6] = indirect_levels;
  block[kDxRootInfoOffset + 7] = 0;
  Put16(block, kDxRootCountOffset,
        static_cast<uint16_t>(DxRootLimit(block_size, metadata_csum)));
  Put16(block, kDxRootCountOffset + 2, 0);
}

void InitDxNode(MutableBytes block, bool metadata_csum) {
  const uint32_t block_size = static_cast<uint32_t>(block.size());
  Put32(block, 0, 0);
  Put16(block, 4, EncodeRecLen(block_size, block_size));
  block[6] = 0;
  block[7] = 0;
  Put16(block, kDxNodeCountOffset,
        static_cast<uint16_t>(DxNodeLimit(block_size, metadata_csum)));
  Put16(block, kDxNodeCountOffset + 2, 0);
}

void PutDxCount(MutableBytes block, uint32_t count_offset, uint16_t count) {
  Put16(block, count_offset + 2, count);
}

void PutDxEntry(MutableBytes block, uint32_t count_offset, size_t i,
                uint32_t hash, uint32_t block_number) {
  const size_t at = count_offset + i * kDxEntrySize;
  if (i != 0) Put32(block, at, hash);
  Put32(block, at + 4, block_number);
}

}  // namespace ext4::format
