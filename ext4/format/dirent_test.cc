#include "ext4/format/dirent.h"

#include <sys/stat.h>

#include <cerrno>
#include <string>
#include <vector>

#include "ext4/errno_status.h"
#include "gtest/gtest.h"

namespace ext4::format {
namespace {

constexpr uint32_t kSeed = 0x1234abcd;

// A 1 KiB block: ".", "..", a deleted record, "hello", then "world" whose
// record runs to the end (or to the tail).
std::vector<uint8_t> SampleBlock(bool tail) {
  std::vector<uint8_t> block(1024, 0);
  const uint32_t end = tail ? 1024 - kDirCsumTailSize : 1024;
  WriteDirEntry(block, 0, 12, 12, ".", kFtDirectory);
  WriteDirEntry(block, 12, 2, 12, "..", kFtDirectory);
  WriteDirEntry(block, 24, 0, 20, "gone", kFtRegular);
  WriteDirEntry(block, 44, 13, 16, "hello", kFtRegular);
  WriteDirEntry(block, 60, 14, end - 60, "world", kFtSymlink);
  if (tail) InitDirCsumTail(block);
  return block;
}

TEST(DirentTest, RecLenOfName) {
  EXPECT_EQ(DirRecLen(0), 8u);
  EXPECT_EQ(DirRecLen(1), 12u);
  EXPECT_EQ(DirRecLen(4), 12u);
  EXPECT_EQ(DirRecLen(5), 16u);
  EXPECT_EQ(DirRecLen(255), 264u);
}

TEST(DirentTest, RecLenEncoding) {
  EXPECT_EQ(DecodeRecLen(4096, 4096), 4096u);
  EXPECT_EQ(DecodeRecLen(0, 4096), 0u);
  EXPECT_EQ(DecodeRecLen(65535, 65536), 65536u);
  EXPECT_EQ(DecodeRecLen(0, 65536), 65536u);
  EXPECT_EQ(EncodeRecLen(65536, 65536), 65535u);
  EXPECT_EQ(EncodeRecLen(12, 65536), 12u);
  EXPECT_EQ(EncodeRecLen(65532, 65536), 65532u);
  for (uint32_t len : {12u, 4096u, 65524u, 65532u, 65536u}) {
    EXPECT_EQ(DecodeRecLen(EncodeRecLen(len, 65536), 65536), len) << len;
  }
  // Larger blocks keep bits 16 and 17 in the low bits.
  EXPECT_EQ(DecodeRecLen(EncodeRecLen(0x20004, 1 << 18), 1 << 18), 0x20004u);
}

TEST(DirentTest, ParsesEntriesWithOffsets) {
  const std::vector<uint8_t> block = SampleBlock(false);
  auto entries = ParseDirBlock(block, false);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 4u);
  EXPECT_EQ((*entries)[0].name, ".");
  EXPECT_EQ((*entries)[0].inode, 12u);
  EXPECT_EQ((*entries)[1].name, "..");
  EXPECT_EQ((*entries)[2].name, "hello");
  EXPECT_EQ((*entries)[2].offset, 44u);
  EXPECT_EQ((*entries)[2].rec_len, 16u);
  EXPECT_EQ((*entries)[2].file_type, kFtRegular);
  EXPECT_EQ((*entries)[3].name, "world");
  EXPECT_EQ((*entries)[3].offset, 60u);
  EXPECT_EQ((*entries)[3].rec_len, 1024u - 60);

  std::vector<uint32_t> all;
  ASSERT_TRUE(ForEachDirEntry(block, false, [&](const RawDirEntry& e) {
                all.push_back(e.offset);
                return true;
              }).ok());
  EXPECT_EQ(all, (std::vector<uint32_t>{0, 12, 24, 44, 60}));
}

TEST(DirentTest, VisitorStopsEarly) {
  const std::vector<uint8_t> block = SampleBlock(false);
  int seen = 0;
  ASSERT_TRUE(ForEachDirEntry(block, false, [&](const RawDirEntry&) {
                return ++seen < 2;
              }).ok());
  EXPECT_EQ(seen, 2);
}

TEST(DirentTest, ParsesUpToTheTail) {
  const std::vector<uint8_t> block = SampleBlock(true);
  EXPECT_TRUE(HasDirCsumTail(block));
  auto entries = ParseDirBlock(block, true);
  ASSERT_TRUE(entries.ok()) << entries.status();
  EXPECT_EQ(entries->back().rec_len, 1024u - 12 - 60);
  // Without the tail flag the tail is an unused record: still valid.
  EXPECT_TRUE(ParseDirBlock(block, false).ok());
  // A block without a tail cannot be parsed as one with a tail.
  EXPECT_EQ(ErrnoOf(ParseDirBlock(SampleBlock(false), true).status()), EUCLEAN);
}

void ExpectCorrupt(const std::vector<uint8_t>& block) {
  EXPECT_EQ(ErrnoOf(ParseDirBlock(block, false).status()), EUCLEAN);
}

TEST(DirentTest, RejectsBadRecords) {
  {  // rec_len 0 (would loop forever if accepted)
    auto block = SampleBlock(false);
    Put16(block, 44 + 4, 0);
    ExpectCorrupt(block);
  }
  {  // rec_len below 12
    auto block = SampleBlock(false);
    Put16(block, 44 + 4, 8);
    ExpectCorrupt(block);
  }
  {  // rec_len not a multiple of 4
    auto block = SampleBlock(false);
    Put16(block, 44 + 4, 18);
    ExpectCorrupt(block);
  }
  {  // name longer than the record
    auto block = SampleBlock(false);
    block[44 + 6] = 9;
    ExpectCorrupt(block);
  }
  {  // record past the end of the block
    auto block = SampleBlock(false);
    Put16(block, 60 + 4, 1024 - 56);
    ExpectCorrupt(block);
  }
  {  // record past the tail
    auto block = SampleBlock(true);
    Put16(block, 60 + 4, 1024 - 60);
    EXPECT_EQ(ErrnoOf(ParseDirBlock(block, true).status()), EUCLEAN);
  }
  {  // chain ends 8 bytes short of the end
    auto block = SampleBlock(false);
    Put16(block, 60 + 4, 1024 - 60 - 8);
    ExpectCorrupt(block);
  }
  {  // every rec_len ever possible in the first record: never a crash
    for (uint32_t raw = 0; raw < 65536; raw += 3) {
      auto block = SampleBlock(false);
      Put16(block, 4, static_cast<uint16_t>(raw));
      (void)ParseDirBlock(block, false);
    }
  }
}

TEST(DirentTest, ChecksumTail) {
  auto block = SampleBlock(true);
  SetDirBlockChecksum(block, kSeed);
  EXPECT_NE(Le32(block, 1020), 0u);
  EXPECT_EQ(Le32(block, 1020), DirBlockChecksum(block, kSeed));
  EXPECT_TRUE(VerifyDirBlockChecksum(block, kSeed).ok());
  EXPECT_EQ(ErrnoOf(VerifyDirBlockChecksum(block, kSeed + 1)), EUCLEAN);
  block[50] ^= 1;
  EXPECT_EQ(ErrnoOf(VerifyDirBlockChecksum(block, kSeed)), EUCLEAN);

  // No tail: verification fails, setting does nothing.
  auto plain = SampleBlock(false);
  const auto before = plain;
  SetDirBlockChecksum(plain, kSeed);
  EXPECT_EQ(plain, before);
  EXPECT_FALSE(HasDirCsumTail(plain));
  EXPECT_EQ(ErrnoOf(VerifyDirBlockChecksum(plain, kSeed)), EUCLEAN);
}

TEST(DirentTest, TailRecognition) {
  auto block = SampleBlock(true);
  EXPECT_TRUE(HasDirCsumTail(block));
  block[1024 - 12 + 7] = 0;  // file type
  EXPECT_FALSE(HasDirCsumTail(block));
  block = SampleBlock(true);
  block[1024 - 12] = 1;  // inode
  EXPECT_FALSE(HasDirCsumTail(block));
  block = SampleBlock(true);
  Put16(block, 1024 - 12 + 4, 16);  // rec_len
  EXPECT_FALSE(HasDirCsumTail(block));
  EXPECT_FALSE(HasDirCsumTail(std::vector<uint8_t>(8, 0)));
}

TEST(DirentTest, FileTypes) {
  EXPECT_EQ(DirFileTypeToMode(kFtUnknown), 0u);
  EXPECT_EQ(DirFileTypeToMode(kFtRegular), static_cast<uint32_t>(S_IFREG));
  EXPECT_EQ(DirFileTypeToMode(kFtDirectory), static_cast<uint32_t>(S_IFDIR));
  EXPECT_EQ(DirFileTypeToMode(kFtCharDevice), static_cast<uint32_t>(S_IFCHR));
  EXPECT_EQ(DirFileTypeToMode(kFtBlockDevice), static_cast<uint32_t>(S_IFBLK));
  EXPECT_EQ(DirFileTypeToMode(kFtFifo), static_cast<uint32_t>(S_IFIFO));
  EXPECT_EQ(DirFileTypeToMode(kFtSocket), static_cast<uint32_t>(S_IFSOCK));
  EXPECT_EQ(DirFileTypeToMode(kFtSymlink), static_cast<uint32_t>(S_IFLNK));
  EXPECT_EQ(DirFileTypeToMode(8), 0u);
  EXPECT_EQ(DirFileTypeToMode(kDirCsumTailFileType), 0u);
  for (uint8_t ft = 1; ft <= 7; ++ft) {
    EXPECT_EQ(ModeToDirFileType(DirFileTypeToMode(ft) | 0644), ft);
  }
  EXPECT_EQ(ModeToDirFileType(0), kFtUnknown);
}

}  // namespace
}  // namespace ext4::format
