#include "ext4/format/htree.h"

#include <cerrno>
#include <vector>

#include "ext4/errno_status.h"
#include "ext4/format/dirent.h"
#include "ext4/format/dx_hash.h"
#include "gtest/gtest.h"

namespace ext4::format {
namespace {

constexpr uint32_t kSeed = 0x5eed5eed;

std::vector<uint8_t> Root(uint32_t block_size, bool csum,
                          const std::vector<uint32_t>& hashes,
                          uint8_t levels = 0) {
  std::vector<uint8_t> block(block_size, 0);
  InitDxRoot(block, 12, 2, kFtDirectory, kDxHashHalfMd4, levels, csum);
  for (size_t i = 0; i < hashes.size(); ++i) {
    PutDxEntry(block, kDxRootCountOffset, i, hashes[i],
               static_cast<uint32_t>(i + 1));
  }
  PutDxCount(block, kDxRootCountOffset, static_cast<uint16_t>(hashes.size()));
  return block;
}

std::vector<uint8_t> Node(uint32_t block_size, bool csum,
                          const std::vector<uint32_t>& hashes) {
  std::vector<uint8_t> block(block_size, 0);
  InitDxNode(block, csum);
  for (size_t i = 0; i < hashes.size(); ++i) {
    PutDxEntry(block, kDxNodeCountOffset, i, hashes[i],
               static_cast<uint32_t>(100 + i));
  }
  PutDxCount(block, kDxNodeCountOffset, static_cast<uint16_t>(hashes.size()));
  return block;
}

TEST(HtreeTest, Limits) {
  // Values mke2fs/e2fsck write (debugfs "htree" prints them).
  EXPECT_EQ(DxRootLimit(1024, true), 123u);
  EXPECT_EQ(DxRootLimit(1024, false), 124u);
  EXPECT_EQ(DxRootLimit(4096, true), 507u);
  EXPECT_EQ(DxRootLimit(4096, false), 508u);
  EXPECT_EQ(DxNodeLimit(1024, true), 126u);
  EXPECT_EQ(DxNodeLimit(4096, false), 511u);
  EXPECT_EQ(DxNodeLimit(65536, false), 8191u);
  EXPECT_EQ(DxMaxLevels(false), 2u);
  EXPECT_EQ(DxMaxLevels(true), 3u);
}

TEST(HtreeTest, ParsesRoot) {
  auto block = Root(4096, true, {0, 0x100, 0x200, 0x200, 0x301});
  auto root = ParseDxRoot(block, true, false);
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(root->dot_inode, 12u);
  EXPECT_EQ(root->dotdot_inode, 2u);
  EXPECT_EQ(root->dot_file_type, kFtDirectory);
  EXPECT_EQ(root->hash_version, kDxHashHalfMd4);
  EXPECT_EQ(root->indirect_levels, 0);
  EXPECT_EQ(root->entries.count(), 5);
  EXPECT_EQ(root->entries.limit(), 507);
  EXPECT_EQ(root->entries.hash(0), 0u);
  EXPECT_EQ(root->entries.hash(4), 0x301u);
  EXPECT_EQ(root->entries.block(4), 5u);
  EXPECT_EQ(root->entries.Find(0), 0u);
  EXPECT_EQ(root->entries.Find(0xff), 0u);
  EXPECT_EQ(root->entries.Find(0x100), 1u);
  EXPECT_EQ(root->entries.Find(0x1fe), 1u);
  EXPECT_EQ(root->entries.Find(0x200), 3u);
  EXPECT_EQ(root->entries.Find(0x300), 3u);  // 0x301 continues 0x300
  EXPECT_EQ(root->entries.Find(0x302), 4u);
  EXPECT_EQ(root->entries.Find(0xffffffff), 4u);
  // The linear view of a root: "." and ".." only.
  auto linear = ParseDirBlock(block, false);
  ASSERT_TRUE(linear.ok());
  EXPECT_EQ(linear->size(), 2u);
}

TEST(HtreeTest, BlockNumbersAreMasked) {
  auto block = Root(1024, false, {0, 10});
  Put32(block, kDxRootCountOffset + 12, 0xf0000007);
  auto root = ParseDxRoot(block, false, false);
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->entries.block(1), 7u);
}

TEST(HtreeTest, RejectsBadRoots) {
  auto expect_corrupt = [](std::vector<uint8_t> block, bool large_dir = false) {
    EXPECT_EQ(ErrnoOf(ParseDxRoot(block, false, large_dir).status()), EUCLEAN);
  };
  const auto good = Root(1024, false, {0, 10, 20});
  ASSERT_TRUE(ParseDxRoot(good, false, false).ok());
  {
    auto b = good;
    b[kDxRootInfoOffset + 5] = 16;  // info_length
    expect_corrupt(b);
  }
  {
    auto b = good;
    b[kDxRootInfoOffset] = 1;  // reserved_zero
    expect_corrupt(b);
  }
  {
    auto b = good;
    b[kDxRootInfoOffset + 4] = 3;  // unsigned variants are never stored
    expect_corrupt(b);
  }
  {
    auto b = good;
    b[kDxRootInfoOffset + 7] = 1;  // unknown flag
    expect_corrupt(b);
  }
  {
    auto b = good;
    b[kDxRootInfoOffset + 6] = 2;  // levels: only with large_dir
    expect_corrupt(b);
    EXPECT_TRUE(ParseDxRoot(b, false, true).ok());
    b[kDxRootInfoOffset + 6] = 3;
    expect_corrupt(b, true);
  }
  {
    auto b = good;
    Put16(b, kDxRootCountOffset, 100);  // limit
    expect_corrupt(b);
  }
  // A root written for metadata_csum has a smaller limit.
  EXPECT_EQ(ErrnoOf(ParseDxRoot(Root(1024, true, {0}), false, false).status()),
            EUCLEAN);
  {
    auto b = good;
    PutDxCount(b, kDxRootCountOffset, 0);
    expect_corrupt(b);
    PutDxCount(b, kDxRootCountOffset, 125);
    expect_corrupt(b);
  }
  expect_corrupt(Root(1024, false, {0, 20, 10}));
  {
    auto b = good;
    Put16(b, 4, 16);  // "." rec_len
    expect_corrupt(b);
  }
  {
    auto b = good;
    Put16(b, 16, 1000);  // ".." rec_len
    expect_corrupt(b);
  }
  {
    auto b = good;
    b[21] = 'x';
    expect_corrupt(b);
  }
  EXPECT_EQ(
      ErrnoOf(ParseDxRoot(std::vector<uint8_t>(16, 0), false, false).status()),
      EUCLEAN);
}

TEST(HtreeTest, ParsesNodes) {
  auto block = Node(1024, false, {0, 5, 9});
  auto node = ParseDxNode(block, false);
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(node->count(), 3);
  EXPECT_EQ(node->limit(), 127);
  EXPECT_EQ(node->block(2), 102u);
  EXPECT_EQ(ErrnoOf(ParseDxNode(block, true).status()), EUCLEAN);
  auto bad = block;
  Put16(bad, 4, 1020);
  EXPECT_EQ(ErrnoOf(ParseDxNode(bad, false).status()), EUCLEAN);
  bad = block;
  Put32(bad, 0, 5);
  EXPECT_EQ(ErrnoOf(ParseDxNode(bad, false).status()), EUCLEAN);

  // 64 KiB nodes store the whole-block rec_len as 65535.
  auto big = Node(65536, true, {0, 1});
  EXPECT_EQ(Le16(big, 4), 65535);
  EXPECT_TRUE(ParseDxNode(big, true).ok());
}

TEST(HtreeTest, CountOffset) {
  EXPECT_EQ(*DxCountOffset(Root(4096, true, {0})), kDxRootCountOffset);
  EXPECT_EQ(*DxCountOffset(Node(4096, true, {0})), kDxNodeCountOffset);
  std::vector<uint8_t> leaf(4096, 0);
  WriteDirEntry(leaf, 0, 11, 16, "file", kFtRegular);
  WriteDirEntry(leaf, 16, 12, 4096 - 16, "other", kFtRegular);
  EXPECT_EQ(ErrnoOf(DxCountOffset(leaf).status()), EUCLEAN);
}

TEST(HtreeTest, Checksums) {
  for (bool root : {true, false}) {
    auto block =
        root ? Root(4096, true, {0, 10, 20}) : Node(4096, true, {0, 7});
    ASSERT_TRUE(SetDxChecksum(block, kSeed).ok());
    EXPECT_TRUE(VerifyDxChecksum(block, kSeed).ok());
    EXPECT_EQ(ErrnoOf(VerifyDxChecksum(block, kSeed ^ 1)), EUCLEAN);
    const uint32_t count_offset =
        root ? kDxRootCountOffset : kDxNodeCountOffset;
    const uint32_t count = Le16(block, count_offset + 2);
    // Unused entry slots are not covered ...
    auto unused = block;
    unused[count_offset + count * kDxEntrySize + 3] ^= 0xff;
    EXPECT_TRUE(VerifyDxChecksum(unused, kSeed).ok());
    // ... used ones and the tail's reserved word are.
    auto used = block;
    used[count_offset + (count - 1) * kDxEntrySize] ^= 1;
    EXPECT_EQ(ErrnoOf(VerifyDxChecksum(used, kSeed)), EUCLEAN);
    auto tail = block;
    const uint32_t tail_offset =
        count_offset + Le16(block, count_offset) * kDxEntrySize;
    EXPECT_EQ(tail_offset + kDxTailSize, 4096u);
    tail[tail_offset] ^= 1;
    EXPECT_EQ(ErrnoOf(VerifyDxChecksum(tail, kSeed)), EUCLEAN);
    EXPECT_EQ(Le32(block, tail_offset + 4),
              DxChecksum(block, count_offset, count, tail_offset, kSeed));
  }
  // No room for the tail.
  auto full = Root(1024, false, {0});
  EXPECT_EQ(ErrnoOf(VerifyDxChecksum(full, kSeed)), EUCLEAN);
  EXPECT_EQ(ErrnoOf(SetDxChecksum(full, kSeed)), EUCLEAN);
  // count > limit.
  auto over = Root(1024, true, {0});
  PutDxCount(over, kDxRootCountOffset, 200);
  EXPECT_EQ(ErrnoOf(VerifyDxChecksum(over, kSeed)), EUCLEAN);
}

}  // namespace
}  // namespace ext4::format
