// Linear directory blocks: ext4_dir_entry_2 records chained by rec_len, and
// the 12-byte checksum tail that metadata_csum appends to every leaf block.
//
// On-disk record (little-endian):
//   +0 inode (le32)  +4 rec_len (le16)  +6 name_len (u8)  +7 file_type (u8)
//   +8 name[name_len], padded so that the record is a multiple of 4 bytes.
// Entries with inode 0 are unused space; the first entry of a block may be
// unused too. The chain of rec_len values covers the block exactly (up to the
// checksum tail when there is one).
#ifndef E4FS_EXT4_FORMAT_DIRENT_H_
#define E4FS_EXT4_FORMAT_DIRENT_H_

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ext4/format/endian.h"

namespace ext4::format {

inline constexpr uint32_t kDirEntryHeaderSize = 8;
inline constexpr uint32_t kDirNameMax = 255;
inline constexpr uint32_t kDirCsumTailSize = 12;
inline constexpr uint8_t kDirCsumTailFileType = 0xDE;
// The largest rec_len the 16-bit field holds directly; 64 KiB blocks store a
// whole-block record as this value (or 0).
inline constexpr uint32_t kMaxRecLen = 65535;

// File type codes stored in ext4_dir_entry_2.file_type (filetype feature).
enum DirFileType : uint8_t {
  kFtUnknown = 0,
  kFtRegular = 1,
  kFtDirectory = 2,
  kFtCharDevice = 3,
  kFtBlockDevice = 4,
  kFtFifo = 5,
  kFtSocket = 6,
  kFtSymlink = 7,
};

// The smallest record holding a name of `name_len` bytes: 8 + name_len,
// rounded up to 4 (ext4_dir_rec_len).
constexpr uint32_t DirRecLen(uint32_t name_len) {
  return (kDirEntryHeaderSize + name_len + 3) & ~3u;
}

// rec_len as stored -> length in bytes. Blocks of 64 KiB and more keep the
// top bits of the length in the two low bits, and store a whole-block record
// as 65535 or 0 (ext4_rec_len_from_disk).
uint32_t DecodeRecLen(uint16_t raw, uint32_t block_size);
// The inverse. `len` must be a multiple of 4 and at most block_size.
uint16_t EncodeRecLen(uint32_t len, uint32_t block_size);

struct RawDirEntry {
  uint32_t inode = 0;
  uint32_t rec_len = 0;  // decoded
  uint8_t name_len = 0;
  uint8_t file_type = 0;
  std::string_view name;  // points into the parsed block
  uint32_t offset = 0;    // of the record within the block
};

// Walks every record of `block` in order, unused ones (inode 0) included,
// validating each before it is visited: rec_len >= 12, a multiple of 4, at
// least DirRecLen(name_len), and not past the end of the entry area (the
// block, or the block minus the tail when `has_csum_tail`). The chain must end
// exactly at the end of the entry area. `visit` returns false to stop early.
// A malformed record is EUCLEAN. With `has_csum_tail`, a block without a
// valid tail is EUCLEAN too.
absl::Status ForEachDirEntry(
    Bytes block, bool has_csum_tail,
    const std::function<bool(const RawDirEntry&)>& visit);

// The used entries (inode != 0) of a block, validated as above; their offsets
// are those of the records in the block.
absl::StatusOr<std::vector<RawDirEntry>> ParseDirBlock(Bytes block,
                                                       bool has_csum_tail);

// True when the last 12 bytes of `block` are a checksum tail: inode 0,
// rec_len 12, name_len 0, file_type 0xDE.
bool HasDirCsumTail(Bytes block);
// The leaf checksum: crc32c(inode_seed, block bytes before the tail).
uint32_t DirBlockChecksum(Bytes block, uint32_t inode_seed);
// EUCLEAN (through ChecksumMismatch) when the tail is missing or its stored
// checksum differs from DirBlockChecksum().
absl::Status VerifyDirBlockChecksum(Bytes block, uint32_t inode_seed);
// Writes the tail's header fields at the end of `block` (checksum zero). The
// caller makes the entries end at block.size() - 12.
void InitDirCsumTail(MutableBytes block);
// Stores DirBlockChecksum() in the tail. Does nothing when the block has no
// tail, as the kernel does.
void SetDirBlockChecksum(MutableBytes block, uint32_t inode_seed);

// Writes one record header and name at `offset` (which must fit). The name
// is not padded; the caller has zeroed the block.
void WriteDirEntry(MutableBytes block, uint32_t offset, uint32_t inode,
                   uint32_t rec_len, std::string_view name, uint8_t file_type);

// File type code -> S_IFMT bits (S_IFREG, S_IFDIR, ...); 0 for unknown codes.
uint32_t DirFileTypeToMode(uint8_t file_type);
// S_IFMT bits of `mode` -> file type code; kFtUnknown for anything else.
uint8_t ModeToDirFileType(uint32_t mode);

}  // namespace ext4::format

#endif  // E4FS_EXT4_FORMAT_DIRENT_H_
