// The crash-recording device: reads follow writes, flushes are barriers, and
// each kind of crash image keeps exactly the writes the model allows.
#include "ext4/io/crash_device.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <set>
#include <span>
#include <thread>
#include <vector>

#include "ext4/errno_status.h"
#include "gtest/gtest.h"

namespace ext4::io {
namespace {

using CrashPoint = CrashRecordingDevice::CrashPoint;
using Survivors = CrashRecordingDevice::Survivors;

constexpr size_t kImageSize = 64 * 1024;

// A recognizable initial image: byte i is (i * 7) & 0xff.
std::vector<uint8_t> InitialImage() {
  std::vector<uint8_t> image(kImageSize);
  for (size_t i = 0; i < image.size(); ++i) image[i] = (i * 7) & 0xff;
  return image;
}

std::vector<uint8_t> Filled(size_t length, uint8_t value) {
  return std::vector<uint8_t>(length, value);
}

void ApplyTo(std::vector<uint8_t>& image, uint64_t offset,
             const std::vector<uint8_t>& bytes) {
  std::copy(bytes.begin(), bytes.end(), image.begin() + offset);
}

std::vector<uint8_t> Crash(const CrashRecordingDevice& device,
                           const CrashPoint& point) {
  absl::StatusOr<std::vector<uint8_t>> image = device.ImageAfterCrash(point);
  EXPECT_TRUE(image.ok()) << image.status();
  return image.ok() ? *std::move(image) : std::vector<uint8_t>();
}

TEST(CrashDeviceTest, ReadsSeeWrites) {
  CrashRecordingDevice device(InitialImage());
  EXPECT_EQ(device.Size(), kImageSize);
  EXPECT_FALSE(device.read_only());
  ASSERT_TRUE(device.WriteAt(100, Filled(50, 0xab)).ok());
  std::vector<uint8_t> out(60);
  ASSERT_TRUE(device.ReadAt(95, out).ok());
  std::vector<uint8_t> expected = InitialImage();
  ApplyTo(expected, 100, Filled(50, 0xab));
  EXPECT_EQ(
      out, std::vector<uint8_t>(expected.begin() + 95, expected.begin() + 155));
  EXPECT_EQ(device.CurrentImage(), expected);
  EXPECT_EQ(device.write_count(), 1u);
  EXPECT_EQ(device.flush_count(), 0u);
}

TEST(CrashDeviceTest, OutOfRangeIsEioAndNotRecorded) {
  CrashRecordingDevice device(InitialImage());
  std::vector<uint8_t> out(16);
  EXPECT_EQ(ErrnoOf(device.ReadAt(kImageSize - 8, out)), EIO);
  EXPECT_EQ(ErrnoOf(device.ReadAt(~uint64_t{0} - 4, out)), EIO);
  EXPECT_EQ(ErrnoOf(device.WriteAt(kImageSize - 8, Filled(16, 1))), EIO);
  EXPECT_EQ(ErrnoOf(device.WriteAt(~uint64_t{0} - 4, Filled(16, 1))), EIO);
  EXPECT_TRUE(device.ReadAt(kImageSize, std::span<uint8_t>()).ok());
  EXPECT_EQ(device.write_count(), 0u);
  EXPECT_EQ(device.CurrentImage(), InitialImage());
}

TEST(CrashDeviceTest, CrashBeforeAnyFlushGivesInitialImage) {
  CrashRecordingDevice device(InitialImage());
  ASSERT_TRUE(device.WriteAt(0, Filled(4096, 1)).ok());
  ASSERT_TRUE(device.WriteAt(8192, Filled(4096, 2)).ok());
  EXPECT_EQ(Crash(device, {.flush = 0, .survivors = Survivors::kNone}),
            InitialImage());
  // With every write of the open window kept, the crash image is what reads
  // see.
  EXPECT_EQ(Crash(device, {.flush = 0, .survivors = Survivors::kAll}),
            device.CurrentImage());
}

// Three windows, with a snapshot of the current image taken at each flush.
TEST(CrashDeviceTest, FlushesAreBarriers) {
  CrashRecordingDevice device(InitialImage());
  std::vector<std::vector<uint8_t>> at_flush = {device.CurrentImage()};
  ASSERT_TRUE(device.WriteAt(0, Filled(1024, 1)).ok());
  ASSERT_TRUE(device.WriteAt(4096, Filled(1024, 2)).ok());
  ASSERT_TRUE(device.Flush().ok());
  at_flush.push_back(device.CurrentImage());
  ASSERT_TRUE(device.WriteAt(512, Filled(1024, 3)).ok());
  ASSERT_TRUE(device.Flush().ok());
  at_flush.push_back(device.CurrentImage());
  ASSERT_TRUE(device.Flush().ok());  // an empty window
  at_flush.push_back(device.CurrentImage());
  ASSERT_TRUE(device.WriteAt(20000, Filled(3000, 4)).ok());
  ASSERT_TRUE(device.WriteAt(30000, Filled(10, 5)).ok());

  ASSERT_EQ(device.flush_count(), 3u);
  ASSERT_EQ(device.write_count(), 5u);
  EXPECT_EQ(device.writes_before_flush(0), 0u);
  EXPECT_EQ(device.writes_before_flush(1), 2u);
  EXPECT_EQ(device.writes_before_flush(2), 3u);
  EXPECT_EQ(device.writes_before_flush(3), 3u);
  EXPECT_EQ(device.writes_before_flush(4), 5u);
  EXPECT_EQ(device.window_size(0), 2u);
  EXPECT_EQ(device.window_size(1), 1u);
  EXPECT_EQ(device.window_size(2), 0u);
  EXPECT_EQ(device.window_size(3), 2u);
  EXPECT_EQ(device.window_size(4), 0u);

  for (size_t k = 0; k <= device.flush_count(); ++k) {
    SCOPED_TRACE(k);
    // Nothing of window k: the image as flush k left it.
    EXPECT_EQ(Crash(device, {.flush = k, .survivors = Survivors::kNone}),
              at_flush[k]);
    // All of window k: the image as flush k+1 found it, and no later write.
    const std::vector<uint8_t>& next =
        k + 1 < at_flush.size() ? at_flush[k + 1] : device.CurrentImage();
    EXPECT_EQ(Crash(device, {.flush = k, .survivors = Survivors::kAll}), next);
  }
  EXPECT_EQ(ErrnoOf(device.ImageAfterCrash({.flush = 4}).status()), EINVAL);
}

// Window 1 holds 40 writes, each to its own 512-byte slot with its own value;
// windows 0 and 2 write elsewhere.
class WindowTest : public testing::Test {
 protected:
  static constexpr size_t kWrites = 40;
  static constexpr uint64_t kSlot = 512;

  void SetUp() override {
    ASSERT_TRUE(device_.WriteAt(0, Filled(kSlot, 0xe0)).ok());
    ASSERT_TRUE(device_.Flush().ok());
    for (size_t i = 0; i < kWrites; ++i) {
      ASSERT_TRUE(device_.WriteAt(Slot(i), Filled(kSlot, Value(i))).ok());
    }
    ASSERT_TRUE(device_.Flush().ok());
    ASSERT_TRUE(device_.WriteAt(Slot(kWrites), Filled(kSlot, 0xe2)).ok());
  }

  static uint64_t Slot(size_t i) { return (i + 1) * kSlot; }
  static uint8_t Value(size_t i) { return static_cast<uint8_t>(0x10 + i); }

  // Which of window 1's writes an image holds; every slot must hold either
  // the write or the initial bytes.
  std::set<size_t> Kept(const std::vector<uint8_t>& image) {
    std::set<size_t> kept;
    const std::vector<uint8_t> initial = InitialImage();
    for (size_t i = 0; i < kWrites; ++i) {
      std::vector<uint8_t> slot(image.begin() + Slot(i),
                                image.begin() + Slot(i) + kSlot);
      if (slot == Filled(kSlot, Value(i))) {
        kept.insert(i);
      } else {
        EXPECT_EQ(slot, std::vector<uint8_t>(initial.begin() + Slot(i),
                                             initial.begin() + Slot(i) + kSlot))
            << "slot " << i;
      }
    }
    // Window 0 is durable, window 2 never survives.
    EXPECT_EQ(image[0], 0xe0);
    EXPECT_EQ(image[Slot(kWrites)], initial[Slot(kWrites)]);
    return kept;
  }

  CrashRecordingDevice device_{InitialImage()};
};

TEST_F(WindowTest, RandomSubsetIsDeterministicAndStaysInItsWindow) {
  std::set<std::set<size_t>> distinct;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    SCOPED_TRACE(seed);
    CrashPoint point{
        .flush = 1, .survivors = Survivors::kRandomSubset, .seed = seed};
    const std::vector<uint8_t> image = Crash(device_, point);
    EXPECT_EQ(Crash(device_, point), image);  // same seed, same image
    std::set<size_t> kept = Kept(image);
    absl::StatusOr<CrashRecordingDevice::CrashPlan> plan = device_.Plan(point);
    ASSERT_TRUE(plan.ok());
    EXPECT_EQ(plan->durable_writes, 1u);
    std::set<size_t> planned;
    for (size_t index : plan->window_survivors) {
      ASSERT_GE(index, 1u);
      ASSERT_LT(index, 1 + kWrites);
      planned.insert(index - 1);
    }
    EXPECT_EQ(kept, planned) << plan->DebugString();
    // 40 fair coins: all heads or all tails would mean a broken draw.
    EXPECT_GT(kept.size(), 0u);
    EXPECT_LT(kept.size(), kWrites);
    distinct.insert(kept);
  }
  EXPECT_EQ(distinct.size(), 20u);
}

TEST_F(WindowTest, PrefixKeepsTheFirstWrites) {
  for (size_t n = 0; n <= kWrites; ++n) {
    std::set<size_t> expected;
    for (size_t i = 0; i < n; ++i) expected.insert(i);
    EXPECT_EQ(
        Kept(Crash(device_,
                   {.flush = 1, .survivors = Survivors::kPrefix, .prefix = n})),
        expected);
  }
  EXPECT_EQ(ErrnoOf(device_
                        .ImageAfterCrash({.flush = 1,
                                          .survivors = Survivors::kPrefix,
                                          .prefix = kWrites + 1})
                        .status()),
            EINVAL);
}

TEST(CrashDeviceTest, TearingKeepsASectorPrefixOfTheLastWrite) {
  // An unaligned write of 20 sectors' worth that covers 21 sectors.
  constexpr uint64_t kOffset = 3 * 512 + 100;
  constexpr size_t kLength = 20 * 512;
  CrashRecordingDevice device(InitialImage());
  ASSERT_TRUE(device.Flush().ok());
  ASSERT_TRUE(device.WriteAt(60000, Filled(100, 0x77)).ok());
  ASSERT_TRUE(device.WriteAt(kOffset, Filled(kLength, 0x99)).ok());
  const std::vector<uint8_t> initial = InitialImage();
  std::set<uint64_t> lengths;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    SCOPED_TRACE(seed);
    CrashPoint point{.flush = 1,
                     .survivors = Survivors::kAll,
                     .tear_last = true,
                     .seed = seed};
    absl::StatusOr<CrashRecordingDevice::CrashPlan> plan = device.Plan(point);
    ASSERT_TRUE(plan.ok());
    ASSERT_TRUE(plan->torn);
    EXPECT_EQ(plan->torn_index, 1u);
    const std::vector<uint8_t> image = Crash(device, point);
    EXPECT_EQ(image, Crash(device, point));
    // The earlier write of the window is whole.
    EXPECT_EQ(image[60000], 0x77);
    EXPECT_EQ(image[60099], 0x77);
    // The torn write: a prefix ending on a sector boundary, never all of it.
    uint64_t kept = 0;
    while (kept < kLength && image[kOffset + kept] == 0x99) ++kept;
    EXPECT_EQ(kept, plan->torn_bytes);
    EXPECT_LT(kept, kLength);
    if (kept > 0) {
      EXPECT_EQ((kOffset + kept) % 512, 0u);
    }
    for (uint64_t i = kept; i < kLength; ++i) {
      ASSERT_EQ(image[kOffset + i], initial[kOffset + i]) << i;
    }
    lengths.insert(kept);
  }
  // Every sector count 0..20 shows up: 0 and 100+412 bytes up to 20 sectors.
  EXPECT_EQ(lengths.size(), 21u);
  EXPECT_EQ(*lengths.rbegin(), 412u + 19 * 512);

  // A one-sector write torn vanishes; tearing with no survivor does nothing.
  CrashRecordingDevice small(InitialImage());
  ASSERT_TRUE(small.WriteAt(1024, Filled(512, 0x55)).ok());
  EXPECT_EQ(Crash(small, {.flush = 0,
                          .survivors = Survivors::kAll,
                          .tear_last = true,
                          .seed = 3}),
            InitialImage());
  EXPECT_EQ(
      Crash(small,
            {.flush = 0, .survivors = Survivors::kNone, .tear_last = true}),
      InitialImage());
}

TEST(CrashDeviceTest, OverlappingWritesApplyInOrder) {
  CrashRecordingDevice device(InitialImage());
  ASSERT_TRUE(device.WriteAt(1000, Filled(2000, 1)).ok());
  ASSERT_TRUE(device.Flush().ok());
  ASSERT_TRUE(device.WriteAt(1500, Filled(1000, 2)).ok());  // inside the first
  ASSERT_TRUE(device.WriteAt(2000, Filled(1000, 3)).ok());  // over both

  std::vector<uint8_t> first = InitialImage();
  ApplyTo(first, 1000, Filled(2000, 1));
  std::vector<uint8_t> second = first;
  ApplyTo(second, 1500, Filled(1000, 2));
  std::vector<uint8_t> both = second;
  ApplyTo(both, 2000, Filled(1000, 3));
  std::vector<uint8_t> only_third = first;
  ApplyTo(only_third, 2000, Filled(1000, 3));

  EXPECT_EQ(device.CurrentImage(), both);
  EXPECT_EQ(Crash(device, {.flush = 1, .survivors = Survivors::kAll}), both);
  EXPECT_EQ(
      Crash(device, {.flush = 1, .survivors = Survivors::kPrefix, .prefix = 1}),
      second);
  // Every random subset is one of the four orders-respecting outcomes.
  std::set<std::vector<uint8_t>> seen;
  for (uint64_t seed = 0; seed < 64; ++seed) {
    std::vector<uint8_t> image = Crash(
        device,
        {.flush = 1, .survivors = Survivors::kRandomSubset, .seed = seed});
    EXPECT_TRUE(image == first || image == second || image == both ||
                image == only_third);
    seen.insert(std::move(image));
  }
  EXPECT_EQ(seen.size(), 4u);
}

TEST(CrashDeviceTest, InjectedFailuresAreEio) {
  CrashRecordingDevice device(InitialImage());
  device.FailWritesAfter(2);
  EXPECT_TRUE(device.WriteAt(0, Filled(10, 1)).ok());
  EXPECT_TRUE(device.WriteAt(10, Filled(10, 2)).ok());
  absl::Status failed = device.WriteAt(20, Filled(10, 3));
  EXPECT_EQ(ErrnoOf(failed), EIO) << failed;
  EXPECT_EQ(ErrnoOf(device.WriteAt(30, Filled(10, 4))), EIO);
  EXPECT_EQ(device.write_count(), 2u);  // failed writes are not recorded
  std::vector<uint8_t> out(10);
  ASSERT_TRUE(device.ReadAt(20, out).ok());
  const std::vector<uint8_t> initial = InitialImage();
  EXPECT_EQ(out,
            std::vector<uint8_t>(initial.begin() + 20, initial.begin() + 30));

  device.FailFlushesAfter(1);
  EXPECT_TRUE(device.Flush().ok());
  EXPECT_EQ(ErrnoOf(device.Flush()), EIO);
  EXPECT_EQ(ErrnoOf(device.Flush()), EIO);
  EXPECT_EQ(device.flush_count(), 1u);  // a failed flush is no barrier

  device.FailReadsAfter(0);
  EXPECT_EQ(ErrnoOf(device.ReadAt(0, out)), EIO);

  device.ClearFailures();
  EXPECT_TRUE(device.WriteAt(40, Filled(10, 5)).ok());
  EXPECT_TRUE(device.Flush().ok());
  EXPECT_TRUE(device.ReadAt(0, out).ok());
  EXPECT_EQ(device.flush_count(), 2u);
  EXPECT_EQ(device.writes_before_flush(2), 3u);
}

TEST(CrashDeviceTest, ConcurrentWritersAreAllRecorded) {
  CrashRecordingDevice device(InitialImage());
  constexpr int kThreads = 8;
  constexpr int kPerThread = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&device, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const uint64_t offset = (t * kPerThread + i) * 16;
        EXPECT_TRUE(device.WriteAt(offset, Filled(16, t + 1)).ok());
        if (i % 50 == 0) {
          EXPECT_TRUE(device.Flush().ok());
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(device.write_count(), size_t{kThreads * kPerThread});
  EXPECT_EQ(device.flush_count(), size_t{kThreads * kPerThread / 50});
  const size_t last = device.flush_count();
  EXPECT_EQ(Crash(device, {.flush = last, .survivors = Survivors::kAll}),
            device.CurrentImage());
}

}  // namespace
}  // namespace ext4::io
