#include "ext4/format/dx_hash.h"

#include <cerrno>
#include <string>

#include "ext4/errno_status.h"
#include "gtest/gtest.h"

namespace ext4::format {
namespace {

// Expected values printed by e2fsprogs 1.47.0:
//   debugfs -R "dx_hash -h <version> [-s <seed>] <name>"
struct Expected {
  const char* label;
  std::string name;
  bool seeded;
  DxHash by_version[6];
};

std::string Long255() {
  std::string s;
  for (int i = 0; i < 255; ++i) s.push_back(static_cast<char>('a' + i % 26));
  return s;
}

std::string High255() {
  std::string s;
  for (int i = 0; i < 255; ++i) {
    s.push_back(static_cast<char>(0x80 + (i * 7) % 128));
  }
  return s;
}

// s_hash_seed of "64d23350-eb9c-43ca-aab8-d479323c8daa": the UUID's bytes
// read as four little-endian words.
constexpr std::array<uint32_t, 4> kSeed = {0x5033d264, 0xca439ceb, 0x79d4b8aa,
                                           0xaa8d3c32};
constexpr std::array<uint32_t, 4> kZeroSeed = {0, 0, 0, 0};

const std::vector<Expected>& Cases() {
  static const auto* cases = new std::vector<Expected>{
      {"hello",
       "hello",
       false,
       {{0x32252546, 0x0},
        {0x1746da32, 0x420013b5},
        {0x6f5bb1a8, 0x231917c2},
        {0x32252546, 0x0},
        {0x1746da32, 0x420013b5},
        {0x6f5bb1a8, 0x231917c2}}},
      {"hello",
       "hello",
       true,
       {{0x32252546, 0x0},
        {0x9f6b50ca, 0xcf8de6b9},
        {0x831541b2, 0xd7d83805},
        {0x32252546, 0x0},
        {0x9f6b50ca, 0xcf8de6b9},
        {0x831541b2, 0xd7d83805}}},
      {"a",
       "a",
       false,
       {{0xe74b53e2, 0x0},
        {0xd5fa7d7a, 0xacb48187},
        {0x6d0ea4c0, 0xc18922df},
        {0xe74b53e2, 0x0},
        {0xd5fa7d7a, 0xacb48187},
        {0x6d0ea4c0, 0xc18922df}}},
      {"a",
       "a",
       true,
       {{0xe74b53e2, 0x0},
        {0x818d80ce, 0x573db140},
        {0x1a764586, 0xfd3bf239},
        {0xe74b53e2, 0x0},
        {0x818d80ce, 0x573db140},
        {0x1a764586, 0xfd3bf239}}},
      {"lost+found",
       "lost+found",
       false,
       {{0x5e2aba24, 0x0},
        {0x591de422, 0x6ffc56e0},
        {0x2dbf9e80, 0xbfebee4f},
        {0x5e2aba24, 0x0},
        {0x591de422, 0x6ffc56e0},
        {0x2dbf9e80, 0xbfebee4f}}},
      {"lost+found",
       "lost+found",
       true,
       {{0x5e2aba24, 0x0},
        {0x422bfad0, 0x21a44196},
        {0x85a43f90, 0xdeafa837},
        {0x5e2aba24, 0x0},
        {0x422bfad0, 0x21a44196},
        {0x85a43f90, 0xdeafa837}}},
      {"17 chars",
       "abcdefghijklmnopq",
       false,
       {{0xbe0c8a3c, 0x0},
        {0xd3213974, 0x18a2e961},
        {0x972a82e6, 0xf52ed8c0},
        {0xbe0c8a3c, 0x0},
        {0xd3213974, 0x18a2e961},
        {0x972a82e6, 0xf52ed8c0}}},
      {"17 chars",
       "abcdefghijklmnopq",
       true,
       {{0xbe0c8a3c, 0x0},
        {0x68900d3a, 0x74f8a67e},
        {0x26c61baa, 0xaf7e96ab},
        {0xbe0c8a3c, 0x0},
        {0x68900d3a, 0x74f8a67e},
        {0x26c61baa, 0xaf7e96ab}}},
      {"33 chars",
       "abcdefghijklmnopqrstuvwxyz0123456",
       false,
       {{0xcfbc04f6, 0x0},
        {0x16ed9a9c, 0x2fb8454f},
        {0x521eac64, 0xffc99004},
        {0xcfbc04f6, 0x0},
        {0x16ed9a9c, 0x2fb8454f},
        {0x521eac64, 0xffc99004}}},
      {"33 chars",
       "abcdefghijklmnopqrstuvwxyz0123456",
       true,
       {{0xcfbc04f6, 0x0},
        {0x85fa1006, 0x7e07a434},
        {0xf72cd3e6, 0x1e5b0fcc},
        {0xcfbc04f6, 0x0},
        {0x85fa1006, 0x7e07a434},
        {0xf72cd3e6, 0x1e5b0fcc}}},
      {"cafe utf-8",
       "caf\xc3\xa9",
       false,
       {{0x96ca5a2c, 0x0},
        {0xfb9c5e5c, 0x0573e8b8},
        {0x105842ea, 0xfb9165ca},
        {0x6dde4230, 0x0},
        {0x9d72aed6, 0xf6138c6a},
        {0x6621f032, 0xf86699c6}}},
      {"cafe utf-8",
       "caf\xc3\xa9",
       true,
       {{0x96ca5a2c, 0x0},
        {0x21a195be, 0x9ff471dc},
        {0x7d8eaafc, 0xa0233ee1},
        {0x6dde4230, 0x0},
        {0x971e403a, 0x23d0411d},
        {0xebf1557e, 0x7f49cd0d}}},
      {"high bytes",
       "\xff\xfe\x80\x81\x41",
       false,
       {{0x69a7cf8e, 0x0},
        {0xbd562da2, 0x162c447e},
        {0x6152c3fe, 0x0ebcae66},
        {0x3333ebc8, 0x0},
        {0x2417a320, 0xc9d7999e},
        {0x9199577a, 0x7acdf1bf}}},
      {"high bytes",
       "\xff\xfe\x80\x81\x41",
       true,
       {{0x69a7cf8e, 0x0},
        {0xa32b79f0, 0xe95a607a},
        {0x1a294f04, 0x4762eb34},
        {0x3333ebc8, 0x0},
        {0x1ffa38ce, 0xe09b3f4c},
        {0xc479ee6e, 0xdfa3bf37}}},
      {"255 chars",
       Long255(),
       false,
       {{0x6729895e, 0x0},
        {0xdecbfdee, 0xe3c08226},
        {0xbb476820, 0xe990b17f},
        {0x6729895e, 0x0},
        {0xdecbfdee, 0xe3c08226},
        {0xbb476820, 0xe990b17f}}},
      {"255 chars",
       Long255(),
       true,
       {{0x6729895e, 0x0},
        {0xc530a3a2, 0x80ff174f},
        {0x00a9cc30, 0x2a49fc5c},
        {0x6729895e, 0x0},
        {0xc530a3a2, 0x80ff174f},
        {0x00a9cc30, 0x2a49fc5c}}},
      {"255 high bytes",
       High255(),
       false,
       {{0xe6143e58, 0x0},
        {0xcb1b01a6, 0x337eadf2},
        {0x52c2916a, 0xdb1aee52},
        {0xc715d5e8, 0x0},
        {0xeecfd160, 0xd23cb212},
        {0xb2d4d804, 0x9a5a25df}}},
      {"255 high bytes",
       High255(),
       true,
       {{0xe6143e58, 0x0},
        {0xb21b4dd6, 0xe21aedb9},
        {0xaed0c72e, 0xbc20b2ac},
        {0xc715d5e8, 0x0},
        {0xe8621be8, 0x28303dbb},
        {0xb0417d16, 0x90332308}}},
  };
  return *cases;
}

TEST(DxHashTest, MatchesDebugfs) {
  for (const Expected& c : Cases()) {
    for (int version = 0; version < 6; ++version) {
      SCOPED_TRACE(std::string(c.label) + (c.seeded ? " seeded" : "") +
                   " version " + std::to_string(version));
      auto hash = ComputeDxHash(c.name, version, c.seeded ? kSeed : kZeroSeed);
      ASSERT_TRUE(hash.ok()) << hash.status();
      EXPECT_EQ(hash->major, c.by_version[version].major);
      EXPECT_EQ(hash->minor, c.by_version[version].minor);
    }
  }
}

TEST(DxHashTest, SignedAndUnsignedDifferOnlyForHighBytes) {
  for (int version = 0; version < 3; ++version) {
    auto s = ComputeDxHash("plain", version, kZeroSeed);
    auto u = ComputeDxHash("plain", version + 3, kZeroSeed);
    ASSERT_TRUE(s.ok() && u.ok());
    EXPECT_EQ(s->major, u->major);
    EXPECT_EQ(s->minor, u->minor);
    s = ComputeDxHash("\xe9t\xe9", version, kZeroSeed);
    u = ComputeDxHash("\xe9t\xe9", version + 3, kZeroSeed);
    ASSERT_TRUE(s.ok() && u.ok());
    EXPECT_NE(s->major, u->major);
  }
}

TEST(DxHashTest, DefaultSeedEqualsZeroSeed) {
  const std::array<uint32_t, 4> md4 = {0x67452301, 0xefcdab89, 0x98badcfe,
                                       0x10325476};
  for (int version = 0; version < 6; ++version) {
    auto a = ComputeDxHash("some name", version, md4);
    auto b = ComputeDxHash("some name", version, kZeroSeed);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->major, b->major);
    EXPECT_EQ(a->minor, b->minor);
  }
}

TEST(DxHashTest, MajorLowBitClearAndNeverEof) {
  for (int i = 0; i < 20000; ++i) {
    const std::string name = "n" + std::to_string(i);
    for (int version = 0; version < 6; ++version) {
      auto h = ComputeDxHash(name, version, kSeed);
      ASSERT_TRUE(h.ok());
      EXPECT_EQ(h->major & 1, 0u);
      EXPECT_NE(h->major, 0xfffffffeu);
    }
  }
}

TEST(DxHashTest, EmptyNameIsTheSeed) {
  auto h = ComputeDxHash("", kDxHashHalfMd4, kZeroSeed);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->major, 0xefcdab88u);
  EXPECT_EQ(h->minor, 0x98badcfeu);
}

TEST(DxHashTest, RejectsUnknownVersions) {
  EXPECT_EQ(ErrnoOf(ComputeDxHash("x", 7, kZeroSeed).status()), EINVAL);
  EXPECT_EQ(ErrnoOf(ComputeDxHash("x", -1, kZeroSeed).status()), EINVAL);
  EXPECT_EQ(ErrnoOf(ComputeDxHash("x", kDxHashSiphash, kZeroSeed).status()),
            EOPNOTSUPP);
}

}  // namespace
}  // namespace ext4::format
