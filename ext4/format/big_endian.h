// Big-endian loads and stores at byte offsets. ext4 itself is little-endian
// (endian.h); the jbd2 journal stores every multi-byte field big-endian.
#ifndef E4FS_EXT4_FORMAT_BIG_ENDIAN_H_
#define E4FS_EXT4_FORMAT_BIG_ENDIAN_H_

#include <cstddef>
#include <cstdint>

#include "ext4/format/endian.h"

namespace ext4::format {

// As with the little-endian helpers, callers guarantee
// offset + width <= data.size().
inline uint16_t Be16(Bytes data, size_t offset) {
  return static_cast<uint16_t>((data[offset] << 8) | data[offset + 1]);
}
inline uint32_t Be32(Bytes data, size_t offset) {
  return (static_cast<uint32_t>(data[offset]) << 24) |
         (static_cast<uint32_t>(data[offset + 1]) << 16) |
         (static_cast<uint32_t>(data[offset + 2]) << 8) |
         static_cast<uint32_t>(data[offset + 3]);
}
inline uint64_t Be64(Bytes data, size_t offset) {
  return (static_cast<uint64_t>(Be32(data, offset)) << 32) |
         Be32(data, offset + 4);
}

inline void PutBe16(MutableBytes data, size_t offset, uint16_t value) {
  data[offset] = static_cast<uint8_t>(value >> 8);
  data[offset + 1] = static_cast<uint8_t>(value);
}
inline void PutBe32(MutableBytes data, size_t offset, uint32_t value) {
  for (int i = 0; i < 4; ++i) {
    data[offset + i] = static_cast<uint8_t>(value >> (24 - 8 * i));
  }
}
inline void PutBe64(MutableBytes data, size_t offset, uint64_t value) {
  PutBe32(data, offset, static_cast<uint32_t>(value >> 32));
  PutBe32(data, offset + 4, static_cast<uint32_t>(value));
}

}  // namespace ext4::format

#endif  // E4FS_EXT4_FORMAT_BIG_ENDIAN_H_
