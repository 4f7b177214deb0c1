#include "ext4/format/checksum.h"

#include <string_view>

#include "gtest/gtest.h"

namespace ext4::format {
namespace {

Bytes AsBytes(std::string_view text) {
  return Bytes(reinterpret_cast<const uint8_t*>(text.data()), text.size());
}

TEST(ChecksumTest, Crc32cMatchesTheStandardCheckValue) {
  // The CRC-32C check value of "123456789" is 0xE3069283 with the usual
  // inversions; ext4 stores the raw register, so invert around the call.
  EXPECT_EQ(~Crc32c(~0u, AsBytes("123456789")), 0xE3069283u);
}

TEST(ChecksumTest, Crc32cChainsAcrossBuffers) {
  uint32_t whole = Crc32c(~0u, AsBytes("hello world"));
  uint32_t split = Crc32c(Crc32c(~0u, AsBytes("hello ")), AsBytes("world"));
  EXPECT_EQ(whole, split);
}

TEST(ChecksumTest, Crc16MatchesTheArcCheckValue) {
  // CRC-16/ARC ("123456789") = 0xBB3D with a zero seed.
  EXPECT_EQ(Crc16(0, AsBytes("123456789")), 0xBB3D);
}

}  // namespace
}  // namespace ext4::format
