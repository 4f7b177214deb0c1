// A directory of 1,000,000 entries: a lookup reads at most one directory
// block per index level plus the leaf, whatever the directory's size.
#include <cstdio>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "ext4/filesystem.h"
#include "ext4/io/block_device.h"
#include "ext4/testing/image_tools.h"
#include "gtest/gtest.h"

namespace ext4 {
namespace {

using testing::RunCommand;

constexpr int kEntries = 1000000;
constexpr uint32_t kBlockSize = 4096;

// Passes everything through and records which blocks were read.
class CountingDevice : public io::BlockDevice {
 public:
  explicit CountingDevice(std::unique_ptr<io::BlockDevice> inner)
      : inner_(std::move(inner)) {}
  absl::Status ReadAt(uint64_t offset, std::span<uint8_t> out) override {
    {
      absl::MutexLock lock(&mu_);
      for (uint64_t b = offset / kBlockSize;
           b < (offset + out.size() + kBlockSize - 1) / kBlockSize; ++b) {
        read_.push_back(b);
      }
    }
    return inner_->ReadAt(offset, out);
  }
  absl::Status WriteAt(uint64_t offset,
                       std::span<const uint8_t> data) override {
    return inner_->WriteAt(offset, data);
  }
  absl::Status Flush() override { return inner_->Flush(); }
  uint64_t Size() const override { return inner_->Size(); }
  bool read_only() const override { return inner_->read_only(); }

  std::vector<uint64_t> TakeReads() {
    absl::MutexLock lock(&mu_);
    return std::exchange(read_, {});
  }

 private:
  std::unique_ptr<io::BlockDevice> inner_;
  absl::Mutex mu_;
  std::vector<uint64_t> read_;
};

std::string Name(int i) { return absl::StrFormat("entry-%07d", i); }

// Opens the image read-only with cold caches, brings `dir`'s inode in core,
// then looks each name up (expecting it found or not); returns how many of
// the blocks read were the directory's, or -1 when something failed.
int DirectoryBlocksRead(
    const std::string& image, InodeNumber dir,
    const std::set<uint64_t>& dir_blocks,
    const std::vector<std::pair<std::string, bool>>& lookups) {
  auto device = io::OpenFileDevice(image, /*read_only=*/true);
  if (!device.ok()) return -1;
  auto counting = std::make_unique<CountingDevice>(std::move(*device));
  CountingDevice* counter = counting.get();
  MountOptions options;
  options.read_only = true;
  auto fs = Filesystem::Open(std::move(counting), options);
  if (!fs.ok() || !(*fs)->GetAttr(dir).ok()) return -1;
  counter->TakeReads();
  for (const auto& [name, present] : lookups) {
    if ((*fs)->Lookup(dir, name).ok() != present) return -1;
  }
  int reads = 0;
  for (uint64_t b : counter->TakeReads()) {
    if (dir_blocks.count(b)) ++reads;
  }
  return reads;
}

TEST(HtreeScaleTest, LookupInAMillionEntryDirectoryReadsDepthPlusOneBlocks) {
  if (!testing::HaveE2fsprogs()) GTEST_SKIP() << "e2fsprogs are missing";
  const std::string dir = testing::MakeTempDir("htree_scale");
  ASSERT_FALSE(dir.empty());
  const std::string image = dir + "/fs.img";
  testing::CommandResult made = RunCommand(absl::StrCat(
      testing::kMke2fs, " -q -F -t ext4 -b 4096 -N 1050000 ", image, " 1G"));
  ASSERT_EQ(made.exit_code, 0) << made.output;

  InodeNumber big = 0;
  {
    auto device = io::OpenFileDevice(image, /*read_only=*/false);
    ASSERT_TRUE(device.ok()) << device.status();
    MountOptions options;
    options.read_only = false;
    options.commit_interval_seconds = 0;
    auto fs = Filesystem::Open(std::move(*device), options);
    ASSERT_TRUE(fs.ok()) << fs.status();
    auto made_dir = (*fs)->MakeDirectory(kRootInode, "big", 0755, {});
    ASSERT_TRUE(made_dir.ok()) << made_dir.status();
    big = made_dir->ino;
    for (int i = 0; i < kEntries; ++i) {
      auto file = (*fs)->Create(big, Name(i), 0100644, {});
      ASSERT_TRUE(file.ok()) << i << ": " << file.status();
    }
    ASSERT_TRUE((*fs)->SyncAll().ok());
  }

  // The directory's own blocks and its index depth, from debugfs.
  testing::CommandResult blocks =
      RunCommand(absl::StrCat(testing::kDebugfs, " -R 'blocks /big' ", image),
                 testing::StderrMode::kDiscard);
  std::set<uint64_t> dir_blocks;
  for (absl::string_view word : absl::StrSplit(
           blocks.output, absl::ByAnyChar(" \n"), absl::SkipWhitespace())) {
    dir_blocks.insert(std::stoull(std::string(word)));
  }
  ASSERT_GT(dir_blocks.size(), 5000u);  // 1,000,000 names do not fit fewer
  testing::CommandResult root =
      RunCommand(absl::StrCat(testing::kDebugfs, " -R 'htree_dump /big' ",
                              image, " | grep -m1 'Indirect levels'"),
                 testing::StderrMode::kDiscard);
  int levels = -1;
  ASSERT_EQ(std::sscanf(root.output.c_str(), " Indirect levels: %d", &levels),
            1)
      << root.output;
  ASSERT_GE(levels, 1) << "a million entries need an interior index level";
  const size_t bound = static_cast<size_t>(levels) + 2;  // index + leaf

  for (int i : {0, 123457, 500000, 999999}) {
    // A name and a missing one: the second may reuse what the first read.
    const int reads = DirectoryBlocksRead(
        image, big, dir_blocks, {{Name(i), true}, {Name(i) + "x", false}});
    ASSERT_GE(reads, 0) << Name(i);
    EXPECT_LE(static_cast<size_t>(reads), 2 * bound) << Name(i);
    EXPECT_GE(static_cast<size_t>(reads), bound) << "the lookups read no index";
  }
  const int alone =
      DirectoryBlocksRead(image, big, dir_blocks, {{Name(777777), true}});
  ASSERT_GE(alone, 0);
  EXPECT_LE(static_cast<size_t>(alone), bound);
  testing::CommandResult fsck =
      RunCommand(absl::StrCat(testing::kE2fsck, " -fn ", image));
  EXPECT_EQ(fsck.exit_code, 0) << fsck.output.substr(0, 4000);
}

}  // namespace
}  // namespace ext4
