#include "ext4/format/dirent.h"

#include <sys/stat.h>

#include <string>

#include "ext4/errno_status.h"
#include "ext4/format/checksum.h"

namespace ext4::format {
namespace {

absl::Status BadEntry(uint32_t offset, std::string_view why) {
  return Corrupt("directory entry at offset " + std::to_string(offset) + ": " +
                 std::string(why));
}

}  // namespace

uint32_t DecodeRecLen(uint16_t raw, uint32_t block_size) {
  if (block_size < 65536) return raw;
  if (raw == kMaxRecLen || raw == 0) return block_size;
  return (raw & 65532u) | ((raw & 3u) << 16);
}

uint16_t EncodeRecLen(uint32_t len, uint32_t block_size) {
  if (len < 65536) return static_cast<uint16_t>(len);
  if (len == block_size) {
    return block_size == 65536 ? static_cast<uint16_t>(kMaxRecLen) : 0;
  }
  return static_cast<uint16_t>((len & 65532u) | ((len >> 16) & 3u));
}

absl::Status ForEachDirEntry(
    Bytes block, bool has_csum_tail,
    const std::function<bool(const RawDirEntry&)>& visit) {
  if (block.size() > (1u << 18)) return Corrupt("directory block too large");
  const uint32_t block_size = static_cast<uint32_t>(block.size());
  uint32_t end = block_size;
  if (has_csum_tail) {
    if (!HasDirCsumTail(block)) {
      return Corrupt("directory block has no checksum tail");
    }
    end -= kDirCsumTailSize;
  }
  uint32_t offset = 0;
  while (offset < end) {
    if (end - offset < kDirEntryHeaderSize + 4) {
      return BadEntry(offset, "record runs past the end of the block");
    }
    RawDirEntry entry;
    entry.offset = offset;
    entry.inode = Le32(block, offset);
    entry.rec_len = DecodeRecLen(Le16(block, offset + 4), block_size);
    entry.name_len = Le8(block, offset + 6);
    entry.file_type = Le8(block, offset + 7);
    if (entry.rec_len < DirRecLen(1)) {
      return BadEntry(offset, "rec_len smaller than the minimum");
    }
    if (entry.rec_len % 4 != 0) {
      return BadEntry(offset, "rec_len not a multiple of 4");
    }
    if (entry.rec_len < DirRecLen(entry.name_len)) {
      return BadEntry(offset, "rec_len too small for name_len");
    }
    if (entry.rec_len > end - offset) {
      return BadEntry(offset, "rec_len runs past the end of the block");
    }
    entry.name = std::string_view(reinterpret_cast<const char*>(block.data()) +
                                      offset + kDirEntryHeaderSize,
                                  entry.name_len);
    if (!visit(entry)) return absl::OkStatus();
    offset += entry.rec_len;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<RawDirEntry>> ParseDirBlock(Bytes block,
                                                       bool has_csum_tail) {
  std::vector<RawDirEntry> entries;
  E4_RETURN_IF_ERROR(
      ForEachDirEntry(block, has_csum_tail, [&](const RawDirEntry& entry) {
        if (entry.inode != 0) entries.push_back(entry);
        return true;
      }));
  return entries;
}

bool HasDirCsumTail(Bytes block) {
  if (block.size() < kDirCsumTailSize) return false;
  const size_t tail = block.size() - kDirCsumTailSize;
  return Le32(block, tail) == 0 &&
         DecodeRecLen(Le16(block, tail + 4),
                      static_cast<uint32_t>(block.size())) ==
             kDirCsumTailSize &&
         Le8(block, tail + 6) == 0 &&
         Le8(block, tail + 7) == kDirCsumTailFileType;
}

uint32_t DirBlockChecksum(Bytes block, uint32_t inode_seed) {
  const size_t size =
      block.size() >= kDirCsumTailSize ? block.size() - kDirCsumTailSize : 0;
  return Crc32c(inode_seed, block.first(size));
}

absl::Status VerifyDirBlockChecksum(Bytes block, uint32_t inode_seed) {
  if (!HasDirCsumTail(block)) {
    return ChecksumMismatch("directory block (no checksum tail)");
  }
  if (Le32(block, block.size() - 4) != DirBlockChecksum(block, inode_seed)) {
    return ChecksumMismatch("directory block");
  }
  return absl::OkStatus();
}

void InitDirCsumTail(MutableBytes block) {
  if (block.size() < kDirCsumTailSize) return;
  const size_t tail = block.size() - kDirCsumTailSize;
  Put32(block, tail, 0);
  Put16(block, tail + 4,
        EncodeRecLen(kDirCsumTailSize, static_cast<uint32_t>(block.size())));
  block[tail + 6] = 0;
  block[tail + 7] = kDirCsumTailFileType;
  Put32(block, tail + 8, 0);
}

void SetDirBlockChecksum(MutableBytes block, uint32_t inode_seed) {
  if (!HasDirCsumTail(block)) return;
  Put32(block, block.size() - 4, DirBlockChecksum(block, inode_seed));
}

void WriteDirEntry(MutableBytes block, uint32_t offset, uint32_t inode,
                   uint32_t rec_len, std::string_view name, uint8_t file_type) {
  Put32(block, offset, inode);
  Put16(block, offset + 4,
        EncodeRecLen(rec_len, static_cast<uint32_t>(block.size())));
  block[offset + 6] = static_cast<uint8_t>(name.size());
  block[offset + 7] = file_type;
  for (size_t i = 0; i < name.size(); ++i) {
    block[offset + kDirEntryHeaderSize + i] = static_cast<uint8_t>(name[i]);
  }
}

uint32_t DirFileTypeToMode(uint8_t file_type) {
  switch (file_type) {
    case kFtRegular:
      return S_IFREG;
    case kFtDirectory:
      return S_IFDIR;
    case kFtCharDevice:
      return S_IFCHR;
    case kFtBlockDevice:
      return S_IFBLK;
    case kFtFifo:
      return S_IFIFO;
    case kFtSocket:
      return S_IFSOCK;
    case kFtSymlink:
      return S_IFLNK;
    default:
      return 0;
  }
}

uint8_t ModeToDirFileType(uint32_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return kFtRegular;
    case S_IFDIR:
      return kFtDirectory;
    case S_IFCHR:
      return kFtCharDevice;
    case S_IFBLK:
      return kFtBlockDevice;
    case S_IFIFO:
      return kFtFifo;
    case S_IFSOCK:
      return kFtSocket;
    case S_IFLNK:
      return kFtSymlink;
    default:
      return kFtUnknown;
  }
}

}  // namespace ext4::format
