// A BlockDevice for crash-consistency tests: it models a disk with a volatile
// write cache, records every write in issue order, and rebuilds the bytes a
// machine could find on the disk after a power cut at a chosen moment.
//
// The model. Reads see every completed write (as through a page cache). A
// successful Flush() is a barrier: every write that completed before it is
// durable. The writes are split into windows by the flushes:
//
//   window 0: writes before flush 1 returned
//   window k: writes after flush k returned and before flush k+1 returned
//   window flush_count(): writes after the last flush (still open)
//
// A crash "at flush point k" (0 <= k <= flush_count()) happens somewhere
// inside window k: every write of windows 0..k-1 is on the disk, any subset of
// window k's writes may be (the cache destages in any order), and no write of
// a later window is, since the crash came before flush k+1 returned and those
// writes were never issued. The surviving writes of window k are applied in
// issue order, so of two overlapping writes the later one wins when both
// survive; that is what a write cache that replaces cached sectors does.
// Optionally the last surviving write is torn: only a prefix of the 512-byte
// sectors it covers reaches the disk (sectors are written atomically, and the
// sector grid is absolute, from offset 0 of the device).
//
// A write or flush that fails (an injected failure or a bad range) changes
// nothing and is not recorded: a failed Flush() is no barrier.
//
// Thread-safe: every method takes one internal lock.
#ifndef E4FS_EXT4_IO_CRASH_DEVICE_H_
#define E4FS_EXT4_IO_CRASH_DEVICE_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "ext4/io/block_device.h"

namespace ext4::io {

class CrashRecordingDevice final : public BlockDevice {
 public:
  // The unit a disk writes atomically.
  static constexpr uint64_t kSectorSize = 512;

  // The device starts out holding `initial_image`, all of it durable. Its
  // size never changes.
  explicit CrashRecordingDevice(std::vector<uint8_t> initial_image);

  // BlockDevice. A range past the end is EIO, as for MemoryDevice().
  absl::Status ReadAt(uint64_t offset, std::span<uint8_t> out) override;
  absl::Status WriteAt(uint64_t offset, std::span<const uint8_t> data) override;
  absl::Status Flush() override;
  uint64_t Size() const override { return size_; }
  bool read_only() const override { return false; }

  // Successful Flush() calls so far.
  size_t flush_count() const;
  // Recorded (successful) WriteAt calls so far.
  size_t write_count() const;
  // The index of the first write of window k: the number of writes that
  // completed before flush k returned (0 for k == 0). For k > flush_count()
  // this is write_count().
  size_t writes_before_flush(size_t k) const;
  // The number of writes in window k (0 for k > flush_count()).
  size_t window_size(size_t k) const;
  // Where recorded write `index` went, and how long it was.
  uint64_t write_offset(size_t index) const;
  uint64_t write_length(size_t index) const;

  // Which writes of the crash window reach the disk.
  enum class Survivors {
    kNone,          // none: exactly the image as of flush point k
    kAll,           // all of them
    kRandomSubset,  // each one independently, with probability 1/2 (by seed)
    kPrefix,        // the first `prefix` of them, in issue order
  };

  struct CrashPoint {
    size_t flush = 0;  // 0 .. flush_count()
    Survivors survivors = Survivors::kNone;
    size_t prefix = 0;  // kPrefix only: 0 .. window_size(flush)
    // Tear the last surviving write of the window (no-op if none survives):
    // only its first m sectors reach the disk, m in [0, sectors it covers),
    // picked by `seed`. A one-sector write thus vanishes.
    bool tear_last = false;
    // Drives kRandomSubset and tear_last; the same point with the same seed
    // always gives the same image (std::mt19937_64, specified exactly by the
    // standard).
    uint64_t seed = 0;
  };

  // What a crash at a point keeps, for assertions and failure messages.
  struct CrashPlan {
    size_t durable_writes = 0;  // writes 0 .. durable_writes-1 survive whole
    std::vector<size_t> window_survivors;  // global indices, ascending
    // When tearing: the index of the torn write (the last of
    // window_survivors) and how many of its leading bytes reach the disk.
    bool torn = false;
    size_t torn_index = 0;
    uint64_t torn_bytes = 0;

    std::string DebugString() const;
  };

  // EINVAL if point.flush > flush_count() or a kPrefix prefix exceeds the
  // window.
  absl::StatusOr<CrashPlan> Plan(const CrashPoint& point) const;
  // The bytes the disk holds after crashing at `point`. One pass over the
  // initial image and the recorded writes up to the end of the window.
  absl::StatusOr<std::vector<uint8_t>> ImageAfterCrash(
      const CrashPoint& point) const;
  // Everything written so far (what reads see).
  std::vector<uint8_t> CurrentImage() const;

  // Injected failures for error-path tests: counting calls from now
  // (0-based), the n-th call and every later one fails with EIO without
  // effect. ClearFailures() disarms all three.
  void FailWritesAfter(size_t n);
  void FailFlushesAfter(size_t n);
  void FailReadsAfter(size_t n);
  void ClearFailures();

 private:
  struct Write {
    uint64_t offset;
    std::vector<uint8_t> bytes;
  };

  // A countdown to an injected failure; kNever when disarmed.
  static constexpr size_t kNever = std::numeric_limits<size_t>::max();
  // True when this call must fail; counts the call.
  static bool Tick(size_t& countdown);

  bool InRange(uint64_t offset, uint64_t length) const {
    return offset <= size_ && length <= size_ - offset;
  }
  size_t BoundaryLocked(size_t k) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<CrashPlan> PlanLocked(const CrashPoint& point) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const uint64_t size_;
  const std::vector<uint8_t> initial_;

  mutable absl::Mutex mu_;
  std::vector<uint8_t> current_ ABSL_GUARDED_BY(mu_);
  std::vector<Write> writes_ ABSL_GUARDED_BY(mu_);
  // flush_ends_[i]: the number of writes completed when flush i+1 returned.
  std::vector<size_t> flush_ends_ ABSL_GUARDED_BY(mu_);
  size_t fail_write_in_ ABSL_GUARDED_BY(mu_) = kNever;
  size_t fail_flush_in_ ABSL_GUARDED_BY(mu_) = kNever;
  size_t fail_read_in_ ABSL_GUARDED_BY(mu_) = kNever;
};

}  // namespace ext4::io

#endif  // E4FS_EXT4_IO_CRASH_DEVICE_H_
