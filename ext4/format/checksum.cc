#include "ext4/format/checksum.h"

#include <isa-l/crc.h>

#include <array>
#include <atomic>
#include <string>

#include "ext4/errno_status.h"

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

uint32_t InodeChecksumSeed(uint32_t fs_seed, uint32_t ino,
                           uint32_t generation) {
  uint8_t le[4];
  Put32(le, 0, ino);
  uint32_t seed = Crc32c(fs_seed, le);
  Put32(le, 0, generation);
  return Crc32c(seed, le);
}

namespace {
std::atomic<uint64_t> ignored_mismatches{0};
}  // namespace

absl::Status ChecksumMismatch(std::string_view what) {
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
  (void)what;
  ignored_mismatches.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
#else
  return Corrupt(std::string(what) + ": checksum mismatch");
#endif
}

uint64_t ChecksumMismatchesIgnored() {
  return ignored_mismatches.load(std::memory_order_relaxed);
}

}  // namespace ext4::format
