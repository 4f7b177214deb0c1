// Little-endian loads and stores at byte offsets. ext4 stores every field
// little-endian; the engine reads fields at their spec offsets through these
// instead of casting packed structs over untrusted buffers.
#ifndef E4FS_EXT4_FORMAT_ENDIAN_H_
#define E4FS_EXT4_FORMAT_ENDIAN_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace ext4::format {

using Bytes = std::span<const uint8_t>;
using MutableBytes = std::span<uint8_t>;

// Callers guarantee offset + width <= data.size(); parsers check the size of
// the whole structure once before reading its fields.
inline uint8_t Le8(Bytes data, size_t offset) { return data[offset]; }
inline uint16_t Le16(Bytes data, size_t offset) {
  return static_cast<uint16_t>(data[offset] | (data[offset + 1] << 8));
}
inline uint32_t Le32(Bytes data, size_t offset) {
  return static_cast<uint32_t>(data[offset]) |
         (static_cast<uint32_t>(data[offset + 1]) << 8) |
         (static_cast<uint32_t>(data[offset + 2]) << 16) |
         (static_cast<uint32_t>(data[offset + 3]) << 24);
}
inline uint64_t Le64(Bytes data, size_t offset) {
  return static_cast<uint64_t>(Le32(data, offset)) |
         (static_cast<uint64_t>(Le32(data, offset + 4)) << 32);
}

inline void Put16(MutableBytes data, size_t offset, uint16_t value) {
  data[offset] = static_cast<uint8_t>(value);
  data[offset + 1] = static_cast<uint8_t>(value >> 8);
}
inline void Put32(MutableBytes data, size_t offset, uint32_t value) {
  for (int i = 0; i < 4; ++i)
    data[offset + i] = static_cast<uint8_t>(value >> (8 * i));
}
inline void Put64(MutableBytes data, size_t offset, uint64_t value) {
  Put32(data, offset, static_cast<uint32_t>(value));
  Put32(data, offset + 4, static_cast<uint32_t>(value >> 32));
}

}  // namespace ext4::format

#endif  // E4FS_EXT4_FORMAT_ENDIAN_H_
