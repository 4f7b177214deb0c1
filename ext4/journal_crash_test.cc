// Crash consistency of journaled writes: a mixed workload runs on a
// crash-recording device; for every flush point (or a random sample of 500
// when there are more) the image a crash there would leave is replayed by
// e4fs and, on a copy, by e2fsck -fy. Both must give e2fsck-clean images
// that hold every byte fsync'ed before the crash under its name.
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "ext4/errno_status.h"
#include "ext4/filesystem.h"
#include "ext4/io/crash_device.h"
#include "ext4/testing/image_tools.h"
#include "gtest/gtest.h"

namespace ext4 {
namespace {

// Lends a device to a Filesystem that wants to own one.
class BorrowedDevice final : public io::BlockDevice {
 public:
  explicit BorrowedDevice(io::BlockDevice& device) : device_(device) {}
  absl::Status ReadAt(uint64_t offset, std::span<uint8_t> out) override {
    return device_.ReadAt(offset, out);
  }
  absl::Status WriteAt(uint64_t offset,
                       std::span<const uint8_t> data) override {
    return device_.WriteAt(offset, data);
  }
  absl::Status Flush() override { return device_.Flush(); }
  uint64_t Size() const override { return device_.Size(); }
  bool read_only() const override { return device_.read_only(); }

 private:
  io::BlockDevice& device_;
};

void WriteImage(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

std::string Contents(int file, int version, size_t size) {
  std::string data(size, '\0');
  for (size_t i = 0; i < size; ++i) {
    data[i] = static_cast<char>('a' + (file * 7 + version * 13 + i / 97) % 26);
  }
  return data;
}

// What an fsync made durable: the file's path and its bytes at that moment.
struct Durable {
  size_t flushes = 0;  // flush count when the fsync returned
  std::string path;
  std::string data;
};

class JournalCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::HaveE2fsprogs()) GTEST_SKIP() << "e2fsprogs are missing";
    dir_ = testing::MakeTempDir("crash");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    if (!dir_.empty()) testing::RunCommand("rm -rf " + dir_);
  }

  // Runs the workload on `device`, recording what each fsync made durable.
  void Workload(io::BlockDevice& device, std::vector<Durable>& durable,
                io::CrashRecordingDevice& recorder) {
    MountOptions options;
    options.read_only = false;
    options.commit_interval_seconds = 0;  // commits only where asked
    auto fs =
        Filesystem::Open(std::make_unique<BorrowedDevice>(device), options);
    ASSERT_TRUE(fs.ok()) << fs.status();
    Filesystem& f = **fs;
    Credentials root;
    auto dir = f.MakeDirectory(kRootInode, "d", 0755, root);
    ASSERT_TRUE(dir.ok()) << dir.status();
    std::mt19937 random(7);
    for (int i = 0; i < 24; ++i) {
      const std::string name = absl::StrCat("f", i);
      const InodeNumber parent = i % 2 ? dir->ino : kRootInode;
      auto file = f.Create(parent, name, 0644, root);
      ASSERT_TRUE(file.ok()) << file.status();
      const size_t size = 1000 + random() % 60000;
      std::string data = Contents(i, 0, size);
      ASSERT_TRUE(
          f.Write(file->ino, 0,
                  {reinterpret_cast<const uint8_t*>(data.data()), data.size()},
                  root)
              .ok());
      // Churn that is never fsync'ed on its own: scratch files made,
      // grown, renamed and removed, directories made.
      auto scratch = f.Create(kRootInode, absl::StrCat("s", i), 0600, root);
      ASSERT_TRUE(scratch.ok());
      std::string junk = Contents(i, 5, 5000 + random() % 20000);
      ASSERT_TRUE(
          f.Write(scratch->ino, 0,
                  {reinterpret_cast<const uint8_t*>(junk.data()), junk.size()},
                  root)
              .ok());
      ASSERT_TRUE(
          f.MakeDirectory(dir->ino, absl::StrCat("sub", i), 0700, root).ok());
      if (i % 3 == 0) {
        ASSERT_TRUE(f.Rename(kRootInode, absl::StrCat("s", i), dir->ino,
                             absl::StrCat("moved", i), 0)
                        .ok());
      } else if ((i - 1) % 3 != 0) {
        // The previous scratch file is still in the root: remove it.
        ASSERT_TRUE(f.Unlink(kRootInode, absl::StrCat("s", i - 1)).ok());
      }
      if (i % 2 == 0) {
        ASSERT_TRUE(f.Sync(file->ino, false).ok());
        durable.push_back({recorder.flush_count(),
                           absl::StrCat(i % 2 ? "d/" : "", name), data});
      }
    }
    ASSERT_TRUE(f.SyncAll().ok());
  }

  // e4fs mounts the crashed image (replaying it): the fsync'ed files read
  // back, and after a clean unmount e2fsck finds nothing.
  void CheckReplayedByE4fs(const std::string& image,
                           const std::vector<Durable>& expected,
                           const std::string& what) {
    {
      auto device = io::OpenFileDevice(image, /*read_only=*/false);
      ASSERT_TRUE(device.ok());
      MountOptions options;
      options.read_only = false;
      auto fs = Filesystem::Open(std::move(*device), options);
      ASSERT_TRUE(fs.ok()) << what << ": " << fs.status();
      ExpectFiles(**fs, expected, what + " (e4fs replay)");
      ASSERT_TRUE((*fs)->SyncAll().ok());
    }
    ExpectClean(image, what + " (e4fs replay)");
  }

  void CheckReplayedByE2fsck(const std::string& image,
                             const std::vector<Durable>& expected,
                             const std::string& what) {
    auto fixed =
        testing::RunCommand(absl::StrCat(testing::kE2fsck, " -fy ", image));
    ASSERT_LE(fixed.exit_code, 1) << what << "\n" << fixed.output;
    ExpectClean(image, what + " (e2fsck replay)");
    auto device = io::OpenFileDevice(image, /*read_only=*/true);
    ASSERT_TRUE(device.ok());
    auto fs = Filesystem::Open(std::move(*device), MountOptions{});
    ASSERT_TRUE(fs.ok()) << fs.status();
    ExpectFiles(**fs, expected, what + " (e2fsck replay)");
  }

  void ExpectFiles(Filesystem& fs, const std::vector<Durable>& expected,
                   const std::string& what) {
    for (const Durable& file : expected) {
      auto ino = fs.ResolvePath(file.path);
      ASSERT_TRUE(ino.ok()) << what << ": " << file.path << " lost";
      std::vector<uint8_t> back(file.data.size() + 1);
      auto got = fs.Read(*ino, 0, back);
      ASSERT_TRUE(got.ok());
      ASSERT_EQ(*got, file.data.size()) << what << ": " << file.path;
      ASSERT_EQ(std::string(back.begin(), back.begin() + *got), file.data)
          << what << ": " << file.path;
    }
  }

  void ExpectClean(const std::string& image, const std::string& what) {
    auto check =
        testing::RunCommand(absl::StrCat(testing::kE2fsck, " -fn ", image));
    ASSERT_EQ(check.exit_code, 0) << what << "\n" << check.output;
  }

  std::string dir_;
};

// Without a journal there is nothing to replay: allocations reach the disk
// before what points at them, releases after, so a crash at any flush point
// leaves at worst leaked blocks and inodes (e2fsck's "-" differences), never
// a block or inode in use but marked free ("+"), and fsync'ed files whole.
TEST_F(JournalCrashTest, WithoutAJournalACrashOnlyLeaks) {
  const std::string base = dir_ + "/base.img";
  auto made = testing::RunCommand(
      absl::StrCat(testing::kMke2fs, " -q -F -t ext4 -b 1024 -O ^has_journal ",
                   base, " 16M"));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  io::CrashRecordingDevice recorder(testing::ReadFileAt(base, 0, 16 << 20));
  std::vector<Durable> durable;
  Workload(recorder, durable, recorder);
  if (HasFatalFailure()) return;
  const size_t points = recorder.flush_count();
  ASSERT_GT(points, 10u);
  for (size_t k = 0; k <= points; ++k) {
    io::CrashRecordingDevice::CrashPoint point;
    point.flush = k;
    point.survivors = io::CrashRecordingDevice::Survivors::kRandomSubset;
    point.seed = k;
    auto crashed = recorder.ImageAfterCrash(point);
    ASSERT_TRUE(crashed.ok());
    const std::string what = absl::StrCat("crash at flush ", k, " of ", points);
    const std::string image = dir_ + "/nojournal.img";
    WriteImage(image, *crashed);
    auto check =
        testing::RunCommand(absl::StrCat(testing::kE2fsck, " -fn ", image));
    for (absl::string_view line : absl::StrSplit(check.output, '\n')) {
      if (line.find("differences:") == absl::string_view::npos) continue;
      EXPECT_EQ(line.find('+'), absl::string_view::npos)
          << what << ": in use but marked free\n"
          << check.output;
    }
    EXPECT_EQ(check.output.find("Multiply-claimed"), std::string::npos)
        << what << "\n"
        << check.output;
    std::vector<Durable> expected;
    for (const Durable& file : durable) {
      if (file.flushes <= k) expected.push_back(file);
    }
    CheckReplayedByE2fsck(image, expected, what);
    if (HasFatalFailure()) return;
  }
}

TEST_F(JournalCrashTest, EveryFlushPointReplaysToACleanImage) {
  const std::string base = dir_ + "/base.img";
  auto made = testing::RunCommand(absl::StrCat(
      testing::kMke2fs, " -q -F -t ext4 -b 1024 -J size=1 ", base, " 16M"));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  io::CrashRecordingDevice recorder(testing::ReadFileAt(base, 0, 16 << 20));
  ASSERT_EQ(recorder.Size(), 16u << 20);
  std::vector<Durable> durable;
  Workload(recorder, durable, recorder);
  if (HasFatalFailure()) return;
  const size_t points = recorder.flush_count();
  ASSERT_GT(points, 10u);
  std::vector<size_t> chosen;
  for (size_t k = 0; k <= points; ++k) chosen.push_back(k);
  std::mt19937 random(11);
  if (chosen.size() > 500) {
    std::shuffle(chosen.begin(), chosen.end(), random);
    chosen.resize(500);
  }
  // Each point twice: a random subset of the unflushed writes, whole, and
  // another one with its last write torn.
  for (size_t variant = 0; variant < 2 * chosen.size(); ++variant) {
    const size_t k = chosen[variant / 2];
    io::CrashRecordingDevice::CrashPoint point;
    point.flush = k;
    point.survivors = io::CrashRecordingDevice::Survivors::kRandomSubset;
    point.tear_last = variant % 2 == 1;
    point.seed = variant;
    if (point.tear_last) {
      // The superblock is written in place, outside the journal, when the
      // mount sets the recovery flag -- by the kernel too, which counts on
      // the disk writing its 1024 bytes whole. Tearing it is a failure no
      // journal covers (e2fsck falls back to a backup copy); leave it out.
      auto plan = recorder.Plan(point);
      ASSERT_TRUE(plan.ok());
      if (plan->torn) {
        const uint64_t at = recorder.write_offset(plan->torn_index);
        const uint64_t end = at + recorder.write_length(plan->torn_index);
        if (at < 2048 && end > 1024) continue;
      }
    }
    auto crashed = recorder.ImageAfterCrash(point);
    ASSERT_TRUE(crashed.ok()) << crashed.status();
    std::vector<Durable> expected;
    for (const Durable& file : durable) {
      if (file.flushes <= k) expected.push_back(file);
    }
    const std::string what =
        absl::StrCat("crash at flush ", k, " of ", points,
                     point.tear_last ? " (torn)" : "", " seed ", point.seed);
    const std::string ours = dir_ + "/ours.img";
    const std::string theirs = dir_ + "/theirs.img";
    WriteImage(ours, *crashed);
    WriteImage(theirs, *crashed);
    CheckReplayedByE4fs(ours, expected, what);
    if (HasFatalFailure()) return;
    CheckReplayedByE2fsck(theirs, expected, what);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace ext4
