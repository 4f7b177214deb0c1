// The two checksum families ext4 uses: crc32c for metadata_csum, crc16 for
// the older gdt_csum group descriptor checksum.
#ifndef E4FS_EXT4_FORMAT_CHECKSUM_H_
#define E4FS_EXT4_FORMAT_CHECKSUM_H_

#include <cstdint>

#include "ext4/format/endian.h"

namespace ext4::format {

// Raw CRC-32C register update, as ext4 stores it (no final inversion). The
// filesystem seed is Crc32c(~0u, uuid) or s_checksum_seed.
uint32_t Crc32c(uint32_t seed, Bytes data);

// CRC-16 (polynomial 0x8005, reflected: 0xA001), as the kernel's crc16().
uint16_t Crc16(uint16_t seed, Bytes data);

}  // namespace ext4::format

#endif  // E4FS_EXT4_FORMAT_CHECKSUM_H_
