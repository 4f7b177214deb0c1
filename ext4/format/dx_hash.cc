#include "ext4/format/dx_hash.h"

#include <cerrno>

#include "ext4/errno_status.h"

namespace ext4::format {
namespace {

constexpr std::array<uint32_t, 4> kDefaultSeed = {0x67452301, 0xefcdab89,
                                                  0x98badcfe, 0x10325476};

inline uint32_t Rotl(uint32_t x, int s) { return (x << s) | (x >> (32 - s)); }

// A name byte as the creating platform's `char` saw it.
inline int32_t CharValue(char c, bool is_unsigned) {
  return is_unsigned ? static_cast<int32_t>(static_cast<uint8_t>(c))
                     : static_cast<int32_t>(static_cast<int8_t>(c));
}

// The legacy hash: a small multiplicative mixer over the name bytes.
uint32_t LegacyHash(std::string_view name, bool is_unsigned) {
  uint32_t h0 = 0x12a3fe2d;
  uint32_t h1 = 0x37abe8f9;
  for (char c : name) {
    uint32_t h =
        h1 + (h0 ^ static_cast<uint32_t>(CharValue(c, is_unsigned) * 7152373));
    if (h & 0x80000000u) h -= 0x7fffffff;
    h1 = h0;
    h0 = h;
  }
  return h0 << 1;
}

// Packs up to `words`*4 bytes of `name` into big-endian-ish words, padded with
// a pattern derived from the full remaining length (str2hashbuf).
void PackName(std::string_view name, bool is_unsigned, uint32_t* out,
              int words) {
  const uint32_t len = static_cast<uint32_t>(name.size());
  uint32_t pad = len | (len << 8);
  pad |= pad << 16;
  uint32_t value = pad;
  size_t take = name.size();
  if (take > static_cast<size_t>(words) * 4)
    take = static_cast<size_t>(words) * 4;
  int filled = 0;
  for (size_t i = 0; i < take; ++i) {
    value =
        static_cast<uint32_t>(CharValue(name[i], is_unsigned)) + (value << 8);
    if (i % 4 == 3) {
      out[filled++] = value;
      value = pad;
    }
  }
  if (filled < words) out[filled++] = value;
  while (filled < words) out[filled++] = pad;
}

inline uint32_t F(uint32_t x, uint32_t y, uint32_t z) {
  return z ^ (x & (y ^ z));
}
inline uint32_t G(uint32_t x, uint32_t y, uint32_t z) {
  return (x & y) + ((x ^ y) & z);
}
inline uint32_t H(uint32_t x, uint32_t y, uint32_t z) { return x ^ y ^ z; }

// Three rounds of MD4 over 8 input words, added into `buf`.
void HalfMd4Transform(std::array<uint32_t, 4>& buf, const uint32_t in[8]) {
  constexpr uint32_t kRound2 = 0x5A827999;
  constexpr uint32_t kRound3 = 0x6ED9EBA1;
  uint32_t a = buf[0], b = buf[1], c = buf[2], d = buf[3];
  auto step = [](auto f, uint32_t& w, uint32_t x, uint32_t y, uint32_t z,
                 uint32_t input,
                 int shift) { w = Rotl(w + f(x, y, z) + input, shift); };
  // Round 1.
  step(F, a, b, c, d, in[0], 3);
  step(F, d, a, b, c, in[1], 7);
  step(F, c, d, a, b, in[2], 11);
  step(F, b, c, d, a, in[3], 19);
  step(F, a, b, c, d, in[4], 3);
  step(F, d, a, b, c, in[5], 7);
  step(F, c, d, a, b, in[6], 11);
  step(F, b, c, d, a, in[7], 19);
  // Round 2.
  step(G, a, b, c, d, in[1] + kRound2, 3);
  step(G, d, a, b, c, in[3] + kRound2, 5);
  step(G, c, d, a, b, in[5] + kRound2, 9);
  step(G, b, c, d, a, in[7] + kRound2, 13);
  step(G, a, b, c, d, in[0] + kRound2, 3);
  step(G, d, a, b, c, in[2] + kRound2, 5);
  step(G, c, d, a, b, in[4] + kRound2, 9);
  step(G, b, c, d, a, in[6] + kRound2, 13);
  // Round 3.
  step(H, a, b, c, d, in[3] + kRound3, 3);
  step(H, d, a, b, c, in[7] + kRound3, 9);
  step(H, c, d, a, b, in[2] + kRound3, 11);
  step(H, b, c, d, a, in[6] + kRound3, 15);
  step(H, a, b, c, d, in[1] + kRound3, 3);
  step(H, d, a, b, c, in[5] + kRound3, 9);
  step(H, c, d, a, b, in[0] + kRound3, 11);
  step(H, b, c, d, a, in[4] + kRound3, 15);
  buf[0] += a;
  buf[1] += b;
  buf[2] += c;
  buf[3] += d;
}

// 16 rounds of TEA with the 4 input words as the key, added into buf[0..1].
void TeaTransform(std::array<uint32_t, 4>& buf, const uint32_t in[4]) {
  constexpr uint32_t kDelta = 0x9E3779B9;
  uint32_t sum = 0;
  uint32_t b0 = buf[0], b1 = buf[1];
  const uint32_t a = in[0], b = in[1], c = in[2], d = in[3];
  for (int round = 0; round < 16; ++round) {
    sum += kDelta;
    b0 += ((b1 << 4) + a) ^ (b1 + sum) ^ ((b1 >> 5) + b);
    b1 += ((b0 << 4) + c) ^ (b0 + sum) ^ ((b0 >> 5) + d);
  }
  buf[0] += b0;
  buf[1] += b1;
}

}  // namespace

absl::StatusOr<DxHash> ComputeDxHash(std::string_view name, int hash_version,
                                     const std::array<uint32_t, 4>& seed) {
  std::array<uint32_t, 4> buf = kDefaultSeed;
  if (seed[0] != 0 || seed[1] != 0 || seed[2] != 0 || seed[3] != 0) buf = seed;

  uint32_t major = 0;
  uint32_t minor = 0;
  switch (hash_version) {
    case kDxHashLegacy:
    case kDxHashLegacyUnsigned:
      major = LegacyHash(name, hash_version == kDxHashLegacyUnsigned);
      break;
    case kDxHashHalfMd4:
    case kDxHashHalfMd4Unsigned: {
      const bool is_unsigned = hash_version == kDxHashHalfMd4Unsigned;
      uint32_t in[8];
      for (std::string_view rest = name; !rest.empty();
           rest.remove_prefix(rest.size() < 32 ? rest.size() : 32)) {
        PackName(rest, is_unsigned, in, 8);
        HalfMd4Transform(buf, in);
      }
      major = buf[1];
      minor = buf[2];
      break;
    }
    case kDxHashTea:
    case kDxHashTeaUnsigned: {
      const bool is_unsigned = hash_version == kDxHashTeaUnsigned;
      uint32_t in[4];
      for (std::string_view rest = name; !rest.empty();
           rest.remove_prefix(rest.size() < 16 ? rest.size() : 16)) {
        PackName(rest, is_unsigned, in, 4);
        TeaTransform(buf, in);
      }
      major = buf[0];
      minor = buf[1];
      break;
    }
    case kDxHashSiphash:
      return ErrnoError(EOPNOTSUPP, "siphash directory hash is not supported");
    default:
      return ErrnoError(EINVAL, "unknown directory hash version " +
                                    std::to_string(hash_version));
  }
  major &= ~1u;
  if (major == 0xfffffffeu) major = kDxHashMaxMajor;
  return DxHash{major, minor};
}

}  // namespace ext4::format
