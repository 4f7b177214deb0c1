#include "ext4/format/extent.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "ext4/format/checksum.h"
#include "ext4/testing/image_tools.h"
#include "gtest/gtest.h"

namespace ext4::format {
namespace {

// ---------------------------------------------------------------------------
// Hand-built nodes.

struct RawLeaf {
  uint32_t logical;
  uint16_t len;  // raw ee_len, unwritten flag included
  uint64_t physical;
};

std::vector<uint8_t> Header(size_t size, uint16_t entries, uint16_t max,
                            uint16_t depth, uint16_t magic = kExtentMagic) {
  std::vector<uint8_t> raw(size, 0);
  Put16(raw, 0, magic);
  Put16(raw, 2, entries);
  Put16(raw, 4, max);
  Put16(raw, 6, depth);
  Put32(raw, 8, 0x01020304);
  return raw;
}

std::vector<uint8_t> LeafNode(size_t size, uint16_t max,
                              const std::vector<RawLeaf>& leaves) {
  std::vector<uint8_t> raw =
      Header(size, static_cast<uint16_t>(leaves.size()), max, 0);
  for (size_t i = 0; i < leaves.size(); ++i) {
    const size_t off = 12 + 12 * i;
    Put32(raw, off, leaves[i].logical);
    Put16(raw, off + 4, leaves[i].len);
    Put16(raw, off + 6, static_cast<uint16_t>(leaves[i].physical >> 32));
    Put32(raw, off + 8, static_cast<uint32_t>(leaves[i].physical));
  }
  return raw;
}

std::vector<uint8_t> IndexNode(size_t size, uint16_t max, uint16_t depth,
                               const std::vector<ExtentIndex>& indexes) {
  std::vector<uint8_t> raw =
      Header(size, static_cast<uint16_t>(indexes.size()), max, depth);
  for (size_t i = 0; i < indexes.size(); ++i) {
    const size_t off = 12 + 12 * i;
    Put32(raw, off, indexes[i].logical);
    Put32(raw, off + 4, static_cast<uint32_t>(indexes[i].child));
    Put16(raw, off + 8, static_cast<uint16_t>(indexes[i].child >> 32));
  }
  return raw;
}

void ExpectCorrupt(const absl::StatusOr<ExtentNode>& result,
                   const std::string& needle) {
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(ErrnoOf(result.status()), EUCLEAN) << result.status();
  EXPECT_NE(std::string(result.status().message()).find(needle),
            std::string::npos)
      << result.status();
}

TEST(ExtentTest, ParsesARootLeaf) {
  auto raw = LeafNode(
      60, 4,
      {{0, 10, 1000}, {10, 5, 0x123400000000ull + 7}, {100, 32768, 5000}});
  auto node = ParseExtentNode(raw, -1);
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(node->header.entries, 3);
  EXPECT_EQ(node->header.max, 4);
  EXPECT_EQ(node->header.depth, 0);
  EXPECT_EQ(node->header.generation, 0x01020304u);
  ASSERT_EQ(node->leaves.size(), 3u);
  EXPECT_TRUE(node->indexes.empty());
  EXPECT_EQ(node->leaves[0].logical, 0u);
  EXPECT_EQ(node->leaves[0].length, 10u);
  EXPECT_EQ(node->leaves[0].physical, 1000u);
  EXPECT_FALSE(node->leaves[0].unwritten);
  EXPECT_EQ(node->leaves[1].physical, 0x123400000007ull);
  // 32768 exactly is the longest initialized extent.
  EXPECT_EQ(node->leaves[2].length, 32768u);
  EXPECT_FALSE(node->leaves[2].unwritten);
}

TEST(ExtentTest, DecodesUnwrittenExtents) {
  auto raw = LeafNode(60, 4, {{0, 32769, 1000}, {1, 32768 + 32767, 2000}});
  auto node = ParseExtentNode(raw, 0);
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_TRUE(node->leaves[0].unwritten);
  EXPECT_EQ(node->leaves[0].length, 1u);
  EXPECT_TRUE(node->leaves[1].unwritten);
  EXPECT_EQ(node->leaves[1].length, 32767u);
}

TEST(ExtentTest, ParsesAnIndexNode) {
  auto raw = IndexNode(4096, 340, 2, {{0, 77}, {500, 0xABCD00000001ull}});
  auto node = ParseExtentNode(raw, 2);
  ASSERT_TRUE(node.ok()) << node.status();
  ASSERT_EQ(node->indexes.size(), 2u);
  EXPECT_TRUE(node->leaves.empty());
  EXPECT_EQ(node->indexes[0].child, 77u);
  EXPECT_EQ(node->indexes[1].logical, 500u);
  EXPECT_EQ(node->indexes[1].child, 0xABCD00000001ull);
}

TEST(ExtentTest, EmptyRootLeafIsValid) {
  auto node = ParseExtentNode(LeafNode(60, 4, {}), -1);
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_TRUE(node->leaves.empty());
}

TEST(ExtentTest, RejectsBadMagic) {
  auto raw = LeafNode(60, 4, {{0, 1, 10}});
  Put16(raw, 0, 0xF30B);
  ExpectCorrupt(ParseExtentNode(raw, -1), "bad magic");
}

TEST(ExtentTest, RejectsShortBuffer) {
  std::vector<uint8_t> raw(11, 0);
  ExpectCorrupt(ParseExtentNode(raw, -1), "cannot hold");
  ExpectCorrupt(ParseExtentNode(Bytes(), -1), "cannot hold");
}

TEST(ExtentTest, RejectsEhMaxLargerThanTheBuffer) {
  // i_block holds 4 entries; a header claiming 5 must not be trusted even
  // when eh_entries itself is small.
  ExpectCorrupt(ParseExtentNode(LeafNode(60, 5, {{0, 1, 10}}), -1),
                "eh_max 5 exceeds");
  ExpectCorrupt(ParseExtentNode(LeafNode(1024, 85, {{0, 1, 10}}), 0),
                "eh_max 85 exceeds");
  EXPECT_TRUE(ParseExtentNode(LeafNode(1024, 84, {{0, 1, 10}}), 0).ok());
  ExpectCorrupt(ParseExtentNode(LeafNode(60, 0, {}), -1), "eh_max is 0");
}

TEST(ExtentTest, RejectsEntriesAboveMax) {
  auto raw = LeafNode(60, 2, {{0, 1, 10}, {1, 1, 11}, {2, 1, 12}});
  ExpectCorrupt(ParseExtentNode(raw, -1), "eh_entries 3 exceeds eh_max 2");
}

TEST(ExtentTest, RejectsDepthBeyondTheLimitAndUnexpectedDepth) {
  ExpectCorrupt(ParseExtentNode(IndexNode(60, 4, 6, {{0, 5}}), -1),
                "depth 6 exceeds");
  EXPECT_TRUE(ParseExtentNode(IndexNode(60, 4, 5, {{0, 5}}), -1).ok());
  ExpectCorrupt(ParseExtentNode(IndexNode(4096, 340, 1, {{0, 5}}), 0),
                "parent expects 0");
  ExpectCorrupt(ParseExtentNode(IndexNode(4096, 340, 1, {}), 1),
                "has no entries");
}

TEST(ExtentTest, RejectsUnsortedEntries) {
  ExpectCorrupt(ParseExtentNode(LeafNode(60, 4, {{10, 1, 10}, {5, 1, 20}}), 0),
                "not above");
  ExpectCorrupt(ParseExtentNode(LeafNode(60, 4, {{10, 1, 10}, {10, 1, 20}}), 0),
                "not above");
  ExpectCorrupt(ParseExtentNode(IndexNode(60, 4, 1, {{10, 3}, {10, 4}}), 1),
                "not above");
}

TEST(ExtentTest, RejectsZeroLength) {
  ExpectCorrupt(ParseExtentNode(LeafNode(60, 4, {{0, 0, 10}}), 0), "length 0");
  // 0x8000 + 0 is not an unwritten extent of length 0: 0x8000 is 32768
  // initialized blocks, so the zero length case is ee_len == 0 only.
  EXPECT_TRUE(ParseExtentNode(LeafNode(60, 4, {{0, 0x8000, 10}}), 0).ok());
}

TEST(ExtentTest, RejectsOverlappingLeaves) {
  ExpectCorrupt(
      ParseExtentNode(LeafNode(60, 4, {{0, 10, 100}, {9, 1, 200}}), 0),
      "overlaps");
  EXPECT_TRUE(
      ParseExtentNode(LeafNode(60, 4, {{0, 10, 100}, {10, 1, 200}}), 0).ok());
}

TEST(ExtentTest, RejectsPhysicalBlockZeroAndWrapAround) {
  ExpectCorrupt(ParseExtentNode(LeafNode(60, 4, {{0, 1, 0}}), 0),
                "starts at block 0");
  ExpectCorrupt(ParseExtentNode(IndexNode(60, 4, 1, {{0, 0}}), 1),
                "points to block 0");
  ExpectCorrupt(ParseExtentNode(LeafNode(60, 4, {{0xFFFFFFF0u, 16, 10}}), 0),
                "past the last logical block");
  ExpectCorrupt(
      ParseExtentNode(LeafNode(60, 4, {{0, 2, 0xFFFFFFFFFFFFull}}), 0),
      "past 2^48");
}

TEST(ExtentTest, ChecksumRoundTrip) {
  auto block = LeafNode(4096, 340, {{0, 4, 100}, {8, 2, 200}});
  SetExtentBlockChecksum(block, 0xDEADBEEF);
  // The tail sits right after eh_max slots: 12 + 340 * 12 = 4092.
  EXPECT_EQ(Le32(block, 4092), Crc32c(0xDEADBEEF, Bytes(block).first(4092)));
  EXPECT_TRUE(VerifyExtentBlockChecksum(block, 0xDEADBEEF).ok());
  absl::Status wrong_seed = VerifyExtentBlockChecksum(block, 0xDEADBEEE);
  (void)wrong_seed;
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
  EXPECT_EQ(ErrnoOf(wrong_seed), EUCLEAN);
  block[20] ^= 1;
  EXPECT_EQ(ErrnoOf(VerifyExtentBlockChecksum(block, 0xDEADBEEF)), EUCLEAN);
#endif
  // A smaller eh_max moves the tail.
  auto small = LeafNode(1024, 10, {{0, 1, 5}});
  SetExtentBlockChecksum(small, 7);
  EXPECT_EQ(Le32(small, 12 + 120), Crc32c(7, Bytes(small).first(132)));
  EXPECT_TRUE(VerifyExtentBlockChecksum(small, 7).ok());
  // eh_max claiming more than the block leaves no place for a tail.
  auto bad = LeafNode(1024, 200, {});
  EXPECT_EQ(ErrnoOf(VerifyExtentBlockChecksum(bad, 7)), EUCLEAN);
}

TEST(ExtentTest, SerializeRoundTrip) {
  ExtentNode node;
  node.header.depth = 0;
  node.header.generation = 9;
  node.leaves = {{0, 3, false, 100},
                 {3, 32767, true, 0x10000000000ull},
                 {40000, 32768, false, 7}};
  std::vector<uint8_t> root(60, 0xFF);
  SerializeExtentNode(node, root);
  auto parsed = ParseExtentNode(root, -1);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->header.max, 4);  // capacity, since header.max was 0
  EXPECT_EQ(parsed->header.entries, 3);
  EXPECT_EQ(parsed->header.generation, 9u);
  ASSERT_EQ(parsed->leaves.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(parsed->leaves[i].logical, node.leaves[i].logical);
    EXPECT_EQ(parsed->leaves[i].length, node.leaves[i].length);
    EXPECT_EQ(parsed->leaves[i].unwritten, node.leaves[i].unwritten);
    EXPECT_EQ(parsed->leaves[i].physical, node.leaves[i].physical);
  }
  // The unused fourth slot is zeroed.
  for (size_t i = 48; i < 60; ++i) EXPECT_EQ(root[i], 0) << i;

  ExtentNode index;
  index.header.depth = 3;
  index.header.max = 50;
  index.indexes = {{0, 11}, {1000, 0xFFFF00000000ull}};
  std::vector<uint8_t> block(4096, 0);
  SerializeExtentNode(index, block);
  SetExtentBlockChecksum(block, 42);
  EXPECT_TRUE(VerifyExtentBlockChecksum(block, 42).ok());
  auto parsed_index = ParseExtentNode(block, 3);
  ASSERT_TRUE(parsed_index.ok()) << parsed_index.status();
  EXPECT_EQ(parsed_index->header.max, 50);
  ASSERT_EQ(parsed_index->indexes.size(), 2u);
  EXPECT_EQ(parsed_index->indexes[1].logical, 1000u);
  EXPECT_EQ(parsed_index->indexes[1].child, 0xFFFF00000000ull);

  // More entries than slots: only what fits is written, never past the end.
  ExtentNode big;
  for (uint32_t i = 0; i < 10; ++i)
    big.leaves.push_back({i, 1, false, 100 + i});
  std::vector<uint8_t> small(60, 0);
  SerializeExtentNode(big, small);
  auto parsed_big = ParseExtentNode(small, -1);
  ASSERT_TRUE(parsed_big.ok()) << parsed_big.status();
  EXPECT_EQ(parsed_big->leaves.size(), 4u);
}

// ---------------------------------------------------------------------------
// A real image made by mke2fs, checked against debugfs.

using ::ext4::testing::CommandResult;
using ::ext4::testing::HaveTools;
using ::ext4::testing::kDebugfs;
using ::ext4::testing::kMke2fs;
using ::ext4::testing::MakeTempDir;
using ::ext4::testing::ReadFileAt;
using ::ext4::testing::RunCommand;
using ::ext4::testing::StderrMode;

struct DebugfsExtent {
  int level = 0;
  int max_level = 0;
  uint64_t logical = 0;
  uint64_t physical = 0;
  uint64_t length = 0;
  bool uninit = false;
};

// Parses `debugfs -R "ex FILE"`: "lvl/max i/n lstart - lend pstart[ - pend]
// len [Uninit]", with index lines having one physical number.
std::vector<DebugfsExtent> ParseDebugfsExtents(const std::string& text) {
  std::vector<DebugfsExtent> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find("Level") != std::string::npos) continue;
    bool uninit = line.find("Uninit") != std::string::npos;
    for (char& c : line) {
      if (c == '/' || c == '-') c = ' ';
    }
    std::istringstream fields(line);
    std::vector<uint64_t> nums;
    std::string tok;
    while (fields >> tok) {
      if (tok.find_first_not_of("0123456789") != std::string::npos) continue;
      nums.push_back(std::stoull(tok));
    }
    DebugfsExtent e;
    if (nums.size() == 8) {  // index: lvl max i n lstart lend pblk len
      e.physical = nums[6];
      e.length = nums[7];
    } else if (nums.size() == 9) {  // leaf: ... pstart pend len
      e.physical = nums[6];
      e.length = nums[8];
    } else {
      continue;
    }
    e.level = static_cast<int>(nums[0]);
    e.max_level = static_cast<int>(nums[1]);
    e.logical = nums[4];
    e.uninit = uninit;
    out.push_back(e);
  }
  return out;
}

// Where debugfs says an inode lives: "located at block N, offset 0xHHH".
bool LocateInode(const std::string& image, const std::string& file,
                 uint64_t* offset, uint32_t* ino, uint64_t block_size) {
  const CommandResult imap =
      RunCommand(absl::StrCat(kDebugfs, " -R \"imap ", file, "\" ", image),
                 StderrMode::kDiscard);
  if (imap.exit_code != 0) return false;
  const std::string& out = imap.output;
  unsigned long long block = 0;
  unsigned int off = 0;
  unsigned int number = 0;
  size_t pos = out.find("Inode ");
  size_t at = out.find("located at block");
  if (pos == std::string::npos || at == std::string::npos) return false;
  if (std::sscanf(out.c_str() + pos, "Inode %u", &number) != 1) return false;
  if (std::sscanf(out.c_str() + at, "located at block %llu, offset 0x%x",
                  &block, &off) != 2) {
    return false;
  }
  *offset = block * block_size + off;
  *ino = number;
  return true;
}

TEST(ExtentRealImageTest, MatchesDebugfs) {
  if (!HaveTools({kMke2fs, kDebugfs})) {
    GTEST_SKIP() << "mke2fs/debugfs not installed";
  }
  const std::string dir = MakeTempDir("e4fs_extent_");
  ASSERT_FALSE(dir.empty());
  const std::string src = dir + "/src";
  ASSERT_EQ(mkdir(src.c_str(), 0755), 0);
  {
    // Eight one-block chunks 64 KiB apart: eight extents, more than the
    // four i_block holds, so mke2fs builds a depth-1 tree.
    int fd = open((src + "/sparse").c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0);
    std::vector<char> chunk(4096, 'x');
    for (int i = 0; i < 8; ++i) {
      ASSERT_EQ(pwrite(fd, chunk.data(), chunk.size(), i * 65536),
                static_cast<ssize_t>(chunk.size()));
    }
    close(fd);
    std::ofstream(src + "/small") << "abc";
  }
  const std::string image = dir + "/img";
  ASSERT_EQ(
      RunCommand(
          absl::StrCat(kMke2fs, " -q -F -t ext4 -b 4096 -O metadata_csum -d ",
                       src, " ", image, " 16M >/dev/null 2>&1"),
          StderrMode::kInherit)
          .exit_code,
      0);
  constexpr uint64_t kBlockSize = 4096;
  std::vector<uint8_t> super = ReadFileAt(image, 1024, 1024);
  ASSERT_EQ(super.size(), 1024u);
  ASSERT_EQ(Le16(super, 0x38), 0xEF53);
  // No metadata_csum_seed: the seed is crc32c over the UUID.
  ASSERT_EQ(Le32(super, 0x64) & 0x2000, 0u);
  const uint32_t fs_seed = Crc32c(~0u, Bytes(super).subspan(0x68, 16));

  for (const std::string file : {"/small", "/sparse"}) {
    SCOPED_TRACE(file);
    uint64_t inode_offset = 0;
    uint32_t ino = 0;
    ASSERT_TRUE(LocateInode(image, file, &inode_offset, &ino, kBlockSize));
    std::vector<uint8_t> inode = ReadFileAt(image, inode_offset, 256);
    ASSERT_EQ(inode.size(), 256u);
    const uint32_t generation = Le32(inode, 0x64);
    const uint32_t inode_seed = InodeChecksumSeed(fs_seed, ino, generation);

    const CommandResult ex =
        RunCommand(absl::StrCat(kDebugfs, " -R \"ex ", file, "\" ", image),
                   StderrMode::kDiscard);
    ASSERT_EQ(ex.exit_code, 0);
    const std::string& ex_out = ex.output;
    std::vector<DebugfsExtent> want = ParseDebugfsExtents(ex_out);
    ASSERT_FALSE(want.empty()) << ex_out;

    auto root = ParseExtentNode(Bytes(inode).subspan(0x28, 60), -1);
    ASSERT_TRUE(root.ok()) << root.status();
    ASSERT_EQ(root->header.depth, want[0].max_level);

    // Walk the tree depth first, in the order debugfs prints it.
    std::vector<DebugfsExtent> got;
    for (const ExtentLeaf& leaf : root->leaves) {
      got.push_back({0, root->header.depth, leaf.logical, leaf.physical,
                     leaf.length, leaf.unwritten});
    }
    for (const ExtentIndex& index : root->indexes) {
      got.push_back(
          {0, root->header.depth, index.logical, index.child, 0, false});
      std::vector<uint8_t> block =
          ReadFileAt(image, index.child * kBlockSize, kBlockSize);
      ASSERT_EQ(block.size(), kBlockSize);
      ASSERT_TRUE(VerifyExtentBlockChecksum(block, inode_seed).ok());
      auto child = ParseExtentNode(block, root->header.depth - 1);
      ASSERT_TRUE(child.ok()) << child.status();
      ASSERT_EQ(child->header.depth, 0) << "test image deeper than expected";
      EXPECT_EQ(child->header.max, 340);
      for (const ExtentLeaf& leaf : child->leaves) {
        got.push_back({1, root->header.depth, leaf.logical, leaf.physical,
                       leaf.length, leaf.unwritten});
      }
    }
    ASSERT_EQ(got.size(), want.size()) << ex_out;
    for (size_t i = 0; i < got.size(); ++i) {
      SCOPED_TRACE(i);
      EXPECT_EQ(got[i].level, want[i].level);
      EXPECT_EQ(got[i].logical, want[i].logical);
      EXPECT_EQ(got[i].physical, want[i].physical);
      if (got[i].length != 0) {
        EXPECT_EQ(got[i].length, want[i].length);
      }
      EXPECT_EQ(got[i].uninit, want[i].uninit);
    }
    if (file == "/sparse") {
      EXPECT_EQ(root->header.depth, 1);
      EXPECT_EQ(got.size(), 9u);
    }
  }
  RunCommand("rm -rf " + dir, StderrMode::kInherit);
}

}  // namespace
}  // namespace ext4::format
