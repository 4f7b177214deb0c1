// The multi-mount protection block (feature mmp): a block the mounting node
// keeps rewriting with a new sequence number, so that another node about to
// mount the same shared device sees it change and backs off.
//
// Layout (little-endian), as the kernel's struct mmp_struct:
//   0x00 magic (0x004D4D50)   0x04 sequence   0x08 time (seconds)
//   0x10 node name [64]       0x50 device name [32]
//   0x70 check interval (u16) 0x72 padding ... 0x3FC checksum (crc32c of
//   the bytes before it from the filesystem's checksum seed, metadata_csum)
#ifndef E4FS_EXT4_FORMAT_MMP_H_
#define E4FS_EXT4_FORMAT_MMP_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "ext4/format/endian.h"
#include "ext4/format/superblock.h"

namespace ext4::format {

inline constexpr uint32_t kMmpMagic = 0x004D4D50;
// Sequence values with a meaning; any other value below kMmpSeqMax means
// "in use, being updated".
inline constexpr uint32_t kMmpSeqClean = 0xFF4D4D50;  // cleanly unmounted
inline constexpr uint32_t kMmpSeqFsck = 0xE24D4D50;   // e2fsck is running
inline constexpr uint32_t kMmpSeqMax = 0xE24D4D4F;    // largest live value
inline constexpr size_t kMmpChecksumOffset = 0x3FC;
inline constexpr size_t kMmpSize = 1024;  // the structure, at the block start

struct MmpBlock {
  uint32_t magic = kMmpMagic;
  uint32_t seq = kMmpSeqClean;
  uint64_t time = 0;
  std::string node_name;    // at most 64 bytes
  std::string device_name;  // at most 32 bytes
  uint16_t check_interval = 0;
};

// Parses the block at the start of `block` (at least kMmpSize bytes): fails
// (EUCLEAN) on a wrong magic or, with metadata_csum, a wrong checksum.
absl::StatusOr<MmpBlock> ParseMmpBlock(Bytes block, const Superblock& sb);

// Writes `mmp` over the first kMmpSize bytes of `block` (padding zeroed) and,
// with metadata_csum, its checksum.
void SerializeMmpBlock(const MmpBlock& mmp, const Superblock& sb,
                       MutableBytes block);

}  // namespace ext4::format

#endif  // E4FS_EXT4_FORMAT_MMP_H_
