// The two checksum families ext4 uses: crc32c for metadata_csum, crc16 for
// the older gdt_csum group descriptor checksum.
#ifndef E4FS_EXT4_FORMAT_CHECKSUM_H_
#define E4FS_EXT4_FORMAT_CHECKSUM_H_

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "ext4/format/endian.h"

namespace ext4::format {

// Raw CRC-32C register update, as ext4 stores it (no final inversion). The
// filesystem seed is Crc32c(~0u, uuid) or s_checksum_seed.
uint32_t Crc32c(uint32_t seed, Bytes data);

// CRC-16 (polynomial 0x8005, reflected: 0xA001), as the kernel's crc16().
uint16_t Crc16(uint16_t seed, Bytes data);

// The per-inode seed that inode, extent block, directory block and htree
// checksums start from: crc32c over the inode number, then the generation.
uint32_t InodeChecksumSeed(uint32_t fs_seed, uint32_t ino, uint32_t generation);

// What a parser does when a stored checksum does not match: a corrupt
// structure (EUCLEAN) in normal builds. Fuzz builds count the mismatch and
// carry on, so the fuzzer reaches the structure behind the checksum.
absl::Status ChecksumMismatch(std::string_view what);
uint64_t ChecksumMismatchesIgnored();

}  // namespace ext4::format

#endif  // E4FS_EXT4_FORMAT_CHECKSUM_H_
