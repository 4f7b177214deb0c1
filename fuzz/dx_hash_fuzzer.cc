// The htree name hashes: every hash version over the input as a name, with
// a seed from the input (and the all-zero seed that selects the default).
// Checks what the hashes promise: an even major hash that is never the
// htree end marker, no minor hash for the legacy hash, no seed dependence for
// it either, and the same value from the signed and unsigned variants when
// no byte has its top bit set.
#include <algorithm>
#include <array>
#include <cstdint>
#include <string_view>

#include "ext4/format/dx_hash.h"
#include "fuzz/fuzz_support.h"

namespace {

using ext4::format::DxHash;
using ext4::fuzz::FuzzInput;
namespace format = ext4::format;

constexpr std::array<uint32_t, 4> kZeroSeed = {0, 0, 0, 0};
// What an all-zero seed stands for.
constexpr std::array<uint32_t, 4> kDefaultSeed = {0x67452301, 0xefcdab89,
                                                  0x98badcfe, 0x10325476};

bool Same(const DxHash& a, const DxHash& b) {
  return a.major == b.major && a.minor == b.minor;
}

void CheckName(std::string_view name, const std::array<uint32_t, 4>& seed) {
  const bool ascii = std::all_of(name.begin(), name.end(),
                                 [](char c) { return (c & 0x80) == 0; });
  for (int version = -1; version <= 8; ++version) {
    auto hash = format::ComputeDxHash(name, version, seed);
    if (version < format::kDxHashLegacy ||
        version > format::kDxHashTeaUnsigned) {
      FUZZ_CHECK(!hash.ok());
      continue;
    }
    FUZZ_CHECK(hash.ok());
    FUZZ_CHECK((hash->major & 1) == 0);
    FUZZ_CHECK(hash->major <= format::kDxHashMaxMajor);
    auto again = format::ComputeDxHash(name, version, seed);
    FUZZ_CHECK(again.ok() && Same(*hash, *again));

    const bool legacy = version == format::kDxHashLegacy ||
                        version == format::kDxHashLegacyUnsigned;
    if (legacy) {
      FUZZ_CHECK(hash->minor == 0);
      auto unseeded = format::ComputeDxHash(name, version, kZeroSeed);
      FUZZ_CHECK(unseeded.ok() && Same(*hash, *unseeded));
    }
    // Versions 0..2 are signed, 3..5 the same hashes unsigned.
    if (ascii && version <= format::kDxHashTea) {
      auto other = format::ComputeDxHash(name, version + 3, seed);
      FUZZ_CHECK(other.ok() && Same(*hash, *other));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  std::array<uint32_t, 4> seed;
  for (uint32_t& word : seed) word = in.U32();
  const auto rest = in.Rest();
  const std::string_view name(reinterpret_cast<const char*>(rest.data()),
                              rest.size());

  CheckName(name, seed);
  // The zero seed means the default one.
  for (int version = format::kDxHashLegacy;
       version <= format::kDxHashTeaUnsigned; ++version) {
    auto zero = format::ComputeDxHash(name, version, kZeroSeed);
    auto fixed = format::ComputeDxHash(name, version, kDefaultSeed);
    FUZZ_CHECK(zero.ok() && fixed.ok() && Same(*zero, *fixed));
  }
  // Names as a directory holds them: at most 255 bytes.
  if (name.size() > 255) CheckName(name.substr(0, 255), seed);
  return 0;
}
