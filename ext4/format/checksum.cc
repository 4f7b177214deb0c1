#include "ext4/format/checksum.h"

#include <isa-l/crc.h>

#include <array>

namespace ext4::format {
namespace {

constexpr std::array<uint16_t, 256> MakeCrc16Table() {
  std::array<uint16_t, 256> table{};
  for (uint32_t byte = 0; byte < 256; ++byte) {
    uint16_t crc = static_cast<uint16_t>(byte);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 1) ? static_cast<uint16_t>((crc >> 1) ^ 0xA001)
                      : static_cast<uint16_t>(crc >> 1);
    }
    table[byte] = crc;
  }
  return table;
}

constexpr std::array<uint16_t, 256> kCrc16Table = MakeCrc16Table();

}  // namespace

uint32_t Crc32c(uint32_t seed, Bytes data) {
  // ISA-L's crc32_iscsi() is the raw CRC-32C register update ext4 stores.
  return crc32_iscsi(const_cast<unsigned char*>(data.data()),
                     static_cast<int>(data.size()), seed);
}

uint16_t Crc16(uint16_t seed, Bytes data) {
  uint16_t crc = seed;
  for (uint8_t byte : data) {
    crc = static_cast<uint16_t>((crc >> 8) ^ kCrc16Table[(crc ^ byte) & 0xFF]);
  }
  return crc;
}

}  // namespace ext4::format
