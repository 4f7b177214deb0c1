#include "ext4/mmp.h"

#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "ext4/filesystem.h"
#include "ext4/format/mmp.h"
#include "ext4/format/superblock.h"
#include "ext4/io/block_device.h"
#include "ext4/testing/image_tools.h"
#include "gtest/gtest.h"

namespace ext4 {
namespace {

using testing::HaveE2fsprogs;
using testing::RunCommand;

class MmpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveE2fsprogs()) GTEST_SKIP() << "e2fsprogs are missing";
    dir_ = testing::MakeTempDir("mmp");
    ASSERT_FALSE(dir_.empty());
    image_ = dir_ + "/fs.img";
    // Update interval 1 s: check interval 5 s, claim wait 11 s.
    testing::CommandResult made = RunCommand(absl::StrCat(
        testing::kMke2fs, " -q -F -t ext4 -O mmp -E mmp_update_interval=1 ",
        image_, " 8M"));
    ASSERT_EQ(made.exit_code, 0) << made.output;
    OpenDevice();
  }

  void OpenDevice() {
    absl::StatusOr<std::unique_ptr<io::BlockDevice>> device =
        io::OpenFileDevice(image_, /*read_only=*/false);
    ASSERT_TRUE(device.ok()) << device.status();
    device_ = std::move(*device);
    std::vector<uint8_t> raw(format::kSuperblockSize);
    ASSERT_TRUE(device_->ReadAt(format::kSuperblockOffset, raw).ok());
    absl::StatusOr<format::Superblock> sb = format::ParseSuperblock(raw);
    ASSERT_TRUE(sb.ok()) << sb.status();
    sb_ = *sb;
    ASSERT_NE(sb_.mmp_block, 0u);
  }

  // What another node would write into the MMP block.
  void WriteSeq(uint32_t seq, const std::string& node = "elsewhere") {
    format::MmpBlock mmp;
    mmp.seq = seq;
    mmp.node_name = node;
    mmp.device_name = "sdz";
    mmp.check_interval = 5;
    std::vector<uint8_t> bytes(format::kMmpSize);
    format::SerializeMmpBlock(mmp, sb_, bytes);
    ASSERT_TRUE(device_->WriteAt(sb_.mmp_block * sb_.block_size(), bytes).ok());
  }

  // The "sequence:" line of debugfs's dump_mmp.
  std::string DebugfsSeq() {
    device_.reset();  // debugfs needs the image unlocked
    testing::CommandResult out =
        RunCommand(absl::StrCat(testing::kDebugfs, " -R dump_mmp ", image_),
                   testing::StderrMode::kDiscard);
    OpenDevice();
    const size_t at = out.output.find("sequence: ");
    if (at == std::string::npos) return "none: " + out.output;
    return out.output.substr(at + 10, out.output.find('\n', at) - at - 10);
  }

  std::string dir_;
  std::string image_;
  std::unique_ptr<io::BlockDevice> device_;
  format::Superblock sb_;
};

TEST_F(MmpTest, CleanBlockIsClaimedAfterOneWaitAndReleasedClean) {
  std::vector<absl::Duration> waits;
  absl::StatusOr<std::unique_ptr<MultiMountProtection>> mmp =
      MultiMountProtection::Claim(
          *device_, sb_, [&waits](absl::Duration d) { waits.push_back(d); });
  ASSERT_TRUE(mmp.ok()) << mmp.status();
  // A clean block needs no wait for a live node, only the one after the
  // claim: 2 x 5 s + 1 s.
  ASSERT_EQ(waits.size(), 1u);
  EXPECT_EQ(waits[0], absl::Seconds(11));
  const uint32_t seq = (*mmp)->seq();
  EXPECT_NE(seq, format::kMmpSeqClean);
  EXPECT_LE(seq, format::kMmpSeqMax);
  EXPECT_EQ(DebugfsSeq(), absl::StrCat(absl::Hex(seq, absl::kZeroPad8)));
  ASSERT_TRUE((*mmp)->Release(*device_).ok());
  EXPECT_EQ(DebugfsSeq(), "ff4d4d50");
  device_.reset();
  testing::CommandResult fsck =
      RunCommand(absl::StrCat(testing::kE2fsck, " -fn ", image_));
  EXPECT_EQ(fsck.exit_code, 0) << fsck.output;
}

TEST_F(MmpTest, ANodeThatKeepsUpdatingIsNotMountedOver) {
  WriteSeq(1234);
  int waits = 0;
  absl::StatusOr<std::unique_ptr<MultiMountProtection>> mmp =
      MultiMountProtection::Claim(*device_, sb_, [&](absl::Duration) {
        ++waits;
        WriteSeq(1235);  // the other node's updater ran meanwhile
      });
  ASSERT_FALSE(mmp.ok());
  EXPECT_EQ(ErrnoOf(mmp.status()), EBUSY);
  EXPECT_NE(std::string(mmp.status().message()).find("elsewhere"),
            std::string::npos)
      << mmp.status();
  EXPECT_EQ(waits, 1);
  EXPECT_EQ(DebugfsSeq(),
            absl::StrCat(absl::Hex(1235, absl::kZeroPad8)));  // left alone
}

TEST_F(MmpTest, AStaleLiveNumberIsTakenOverAfterWaiting) {
  WriteSeq(777);  // a node that crashed
  int waits = 0;
  absl::StatusOr<std::unique_ptr<MultiMountProtection>> mmp =
      MultiMountProtection::Claim(*device_, sb_,
                                  [&](absl::Duration) { ++waits; });
  ASSERT_TRUE(mmp.ok()) << mmp.status();
  EXPECT_EQ(waits, 2);
  EXPECT_NE((*mmp)->seq(), 777u);
}

TEST_F(MmpTest, ARaceForTheBlockIsLostCleanly) {
  int waits = 0;
  absl::StatusOr<std::unique_ptr<MultiMountProtection>> mmp =
      MultiMountProtection::Claim(*device_, sb_, [&](absl::Duration) {
        ++waits;
        WriteSeq(4242, "racer");  // claimed after us, within our wait
      });
  ASSERT_FALSE(mmp.ok());
  EXPECT_EQ(ErrnoOf(mmp.status()), EBUSY);
  EXPECT_NE(std::string(mmp.status().message()).find("racer"),
            std::string::npos);
}

TEST_F(MmpTest, RunningFsckIsRefusedWithoutWaiting) {
  WriteSeq(format::kMmpSeqFsck, "checker");
  int waits = 0;
  absl::StatusOr<std::unique_ptr<MultiMountProtection>> mmp =
      MultiMountProtection::Claim(*device_, sb_,
                                  [&](absl::Duration) { ++waits; });
  ASSERT_FALSE(mmp.ok());
  EXPECT_EQ(ErrnoOf(mmp.status()), EBUSY);
  EXPECT_EQ(waits, 0);
}

TEST_F(MmpTest, CorruptBlockOrBlockNumberIsRefused) {
  auto no_wait = [](absl::Duration) {};
  format::Superblock outside = sb_;
  outside.mmp_block = sb_.blocks_count;
  EXPECT_EQ(
      ErrnoOf(MultiMountProtection::Claim(*device_, outside, no_wait).status()),
      EUCLEAN);
  std::vector<uint8_t> garbage(format::kMmpSize, 0x5a);
  ASSERT_TRUE(device_->WriteAt(sb_.mmp_block * sb_.block_size(), garbage).ok());
  EXPECT_EQ(
      ErrnoOf(MultiMountProtection::Claim(*device_, sb_, no_wait).status()),
      EUCLEAN);
  // A huge advertised check interval does not make the claim wait for
  // hours: it is bounded by the kernel's maximum (300 s).
  format::MmpBlock slow;
  slow.seq = 99;
  slow.check_interval = 65535;
  std::vector<uint8_t> bytes(format::kMmpSize);
  format::SerializeMmpBlock(slow, sb_, bytes);
  ASSERT_TRUE(device_->WriteAt(sb_.mmp_block * sb_.block_size(), bytes).ok());
  absl::Duration longest;
  absl::StatusOr<std::unique_ptr<MultiMountProtection>> mmp =
      MultiMountProtection::Claim(*device_, sb_, [&](absl::Duration d) {
        longest = std::max(longest, d);
      });
  ASSERT_TRUE(mmp.ok()) << mmp.status();
  EXPECT_EQ(longest, absl::Seconds(360));
}

TEST_F(MmpTest, TheUpdaterKeepsChangingTheNumber) {
  absl::StatusOr<std::unique_ptr<MultiMountProtection>> mmp =
      MultiMountProtection::Claim(*device_, sb_, [](absl::Duration) {});
  ASSERT_TRUE(mmp.ok()) << mmp.status();
  const uint32_t first = (*mmp)->seq();
  int conflicts = 0;
  (*mmp)->StartUpdates(device_.get(),
                       [&](const absl::Status&) { ++conflicts; });
  absl::SleepFor(absl::Milliseconds(2500));  // two updates at 1 s
  const uint32_t later = (*mmp)->seq();
  EXPECT_GE(later - first, 2u);
  std::vector<uint8_t> bytes(format::kMmpSize);
  ASSERT_TRUE(device_->ReadAt(sb_.mmp_block * sb_.block_size(), bytes).ok());
  absl::StatusOr<format::MmpBlock> on_disk = format::ParseMmpBlock(bytes, sb_);
  ASSERT_TRUE(on_disk.ok()) << on_disk.status();
  EXPECT_EQ(on_disk->seq, later);
  ASSERT_TRUE((*mmp)->Release(*device_).ok());
  EXPECT_EQ(conflicts, 0);
  EXPECT_EQ(DebugfsSeq(), "ff4d4d50");
}

TEST_F(MmpTest, FormatRoundTripsAndChecksumIsVerified) {
  format::MmpBlock mmp;
  mmp.seq = 0x12345678;
  mmp.time = 1700000000;
  mmp.node_name = std::string(70, 'n');  // cut at 64
  mmp.device_name = "loop0";
  mmp.check_interval = 7;
  std::vector<uint8_t> bytes(sb_.block_size(), 0xee);
  format::SerializeMmpBlock(mmp, sb_, bytes);
  absl::StatusOr<format::MmpBlock> back = format::ParseMmpBlock(bytes, sb_);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->seq, mmp.seq);
  EXPECT_EQ(back->time, mmp.time);
  EXPECT_EQ(back->node_name, std::string(64, 'n'));
  EXPECT_EQ(back->device_name, "loop0");
  EXPECT_EQ(back->check_interval, 7);
  ASSERT_TRUE(sb_.metadata_csum());
  bytes[0x20] ^= 1;
  EXPECT_EQ(ErrnoOf(format::ParseMmpBlock(bytes, sb_).status()), EUCLEAN);
}

}  // namespace
}  // namespace ext4
