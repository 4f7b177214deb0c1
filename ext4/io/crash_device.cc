// The crash-recording device: the write log, the flush boundaries, and the
// rebuilding of crash images from them (model in crash_device.h).
#include "ext4/io/crash_device.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ext4/errno_status.h"

namespace ext4::io {

CrashRecordingDevice::CrashRecordingDevice(std::vector<uint8_t> initial_image)
    : size_(initial_image.size()),
      initial_(std::move(initial_image)),
      current_(initial_) {}

bool CrashRecordingDevice::Tick(size_t& countdown) {
  if (countdown == kNever) return false;
  if (countdown == 0) return true;
  --countdown;
  return false;
}

absl::Status CrashRecordingDevice::ReadAt(uint64_t offset,
                                          std::span<uint8_t> out) {
  absl::MutexLock lock(&mu_);
  if (Tick(fail_read_in_)) {
    return ErrnoError(EIO, absl::StrCat("injected read failure at ", offset));
  }
  if (!InRange(offset, out.size())) {
    return ErrnoError(EIO, absl::StrCat("read at ", offset, " past the end"));
  }
  if (!out.empty()) {
    std::memcpy(out.data(), current_.data() + offset, out.size());
  }
  return absl::OkStatus();
}

absl::Status CrashRecordingDevice::WriteAt(uint64_t offset,
                                           std::span<const uint8_t> data) {
  absl::MutexLock lock(&mu_);
  if (Tick(fail_write_in_)) {
    return ErrnoError(EIO, absl::StrCat("injected write failure at ", offset));
  }
  if (!InRange(offset, data.size())) {
    return ErrnoError(EIO, absl::StrCat("write at ", offset, " past the end"));
  }
  if (!data.empty()) {
    std::memcpy(current_.data() + offset, data.data(), data.size());
  }
  writes_.push_back(
      Write{offset, std::vector<uint8_t>(data.begin(), data.end())});
  return absl::OkStatus();
}

absl::Status CrashRecordingDevice::Flush() {
  absl::MutexLock lock(&mu_);
  if (Tick(fail_flush_in_)) {
    return ErrnoError(EIO, "injected flush failure");
  }
  flush_ends_.push_back(writes_.size());
  return absl::OkStatus();
}

size_t CrashRecordingDevice::flush_count() const {
  absl::MutexLock lock(&mu_);
  return flush_ends_.size();
}

size_t CrashRecordingDevice::write_count() const {
  absl::MutexLock lock(&mu_);
  return writes_.size();
}

size_t CrashRecordingDevice::BoundaryLocked(size_t k) const {
  if (k == 0) return 0;
  if (k > flush_ends_.size()) return writes_.size();
  return flush_ends_[k - 1];
}

size_t CrashRecordingDevice::writes_before_flush(size_t k) const {
  absl::MutexLock lock(&mu_);
  return BoundaryLocked(k);
}

size_t CrashRecordingDevice::window_size(size_t k) const {
  absl::MutexLock lock(&mu_);
  if (k > flush_ends_.size()) return 0;
  return BoundaryLocked(k + 1) - BoundaryLocked(k);
}

std::string CrashRecordingDevice::CrashPlan::DebugString() const {
  std::string out = absl::StrCat("durable writes [0, ", durable_writes,
                                 "); window survivors {",
                                 absl::StrJoin(window_survivors, ","), "}");
  if (torn) {
    absl::StrAppend(&out, "; write ", torn_index, " torn after ", torn_bytes,
                    " bytes");
  }
  return out;
}

absl::StatusOr<CrashRecordingDevice::CrashPlan> CrashRecordingDevice::Plan(
    const CrashPoint& point) const {
  absl::MutexLock lock(&mu_);
  return PlanLocked(point);
}

absl::StatusOr<CrashRecordingDevice::CrashPlan>
CrashRecordingDevice::PlanLocked(const CrashPoint& point) const {
  if (point.flush > flush_ends_.size()) {
    return ErrnoError(
        EINVAL, absl::StrCat("crash at flush point ", point.flush, " but only ",
                             flush_ends_.size(), " flushes happened"));
  }
  const size_t begin = BoundaryLocked(point.flush);
  const size_t end = BoundaryLocked(point.flush + 1);
  CrashPlan plan;
  plan.durable_writes = begin;
  // One generator per point: the subset draws come first, then the tear.
  std::mt19937_64 rng(point.seed);
  switch (point.survivors) {
    case Survivors::kNone:
      break;
    case Survivors::kAll:
      for (size_t i = begin; i < end; ++i) plan.window_survivors.push_back(i);
      break;
    case Survivors::kRandomSubset:
      for (size_t i = begin; i < end; ++i) {
        if (rng() >> 63) plan.window_survivors.push_back(i);
      }
      break;
    case Survivors::kPrefix:
      if (point.prefix > end - begin) {
        return ErrnoError(
            EINVAL,
            absl::StrCat("prefix of ", point.prefix, " writes but window ",
                         point.flush, " holds ", end - begin));
      }
      for (size_t i = begin; i < begin + point.prefix; ++i) {
        plan.window_survivors.push_back(i);
      }
      break;
  }
  if (point.tear_last && !plan.window_survivors.empty()) {
    const size_t index = plan.window_survivors.back();
    const Write& write = writes_[index];
    plan.torn = true;
    plan.torn_index = index;
    plan.torn_bytes = 0;
    if (!write.bytes.empty()) {
      const uint64_t first_sector = write.offset / kSectorSize;
      const uint64_t last_sector =
          (write.offset + write.bytes.size() - 1) / kSectorSize;
      const uint64_t sectors = last_sector - first_sector + 1;
      // Keep m sectors, m in [0, sectors): a torn write never lands whole.
      const uint64_t kept = rng() % sectors;
      if (kept > 0) {
        plan.torn_bytes = (first_sector + kept) * kSectorSize - write.offset;
      }
    }
  }
  return plan;
}

absl::StatusOr<std::vector<uint8_t>> CrashRecordingDevice::ImageAfterCrash(
    const CrashPoint& point) const {
  absl::MutexLock lock(&mu_);
  E4_ASSIGN_OR_RETURN(CrashPlan plan, PlanLocked(point));
  std::vector<uint8_t> image = initial_;
  auto apply = [&image](const Write& write, size_t length) {
    if (length > 0) {
      std::memcpy(image.data() + write.offset, write.bytes.data(), length);
    }
  };
  for (size_t i = 0; i < plan.durable_writes; ++i) {
    apply(writes_[i], writes_[i].bytes.size());
  }
  for (size_t i : plan.window_survivors) {
    const size_t length = plan.torn && i == plan.torn_index
                              ? static_cast<size_t>(plan.torn_bytes)
                              : writes_[i].bytes.size();
    apply(writes_[i], length);
  }
  return image;
}

std::vector<uint8_t> CrashRecordingDevice::CurrentImage() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

void CrashRecordingDevice::FailWritesAfter(size_t n) {
  absl::MutexLock lock(&mu_);
  fail_write_in_ = n;
}

void CrashRecordingDevice::FailFlushesAfter(size_t n) {
  absl::MutexLock lock(&mu_);
  fail_flush_in_ = n;
}

void CrashRecordingDevice::FailReadsAfter(size_t n) {
  absl::MutexLock lock(&mu_);
  fail_read_in_ = n;
}

void CrashRecordingDevice::ClearFailures() {
  absl::MutexLock lock(&mu_);
  fail_write_in_ = kNever;
  fail_flush_in_ = kNever;
  fail_read_in_ = kNever;
}

uint64_t CrashRecordingDevice::write_offset(size_t index) const {
  absl::MutexLock lock(&mu_);
  return index < writes_.size() ? writes_[index].offset : 0;
}

uint64_t CrashRecordingDevice::write_length(size_t index) const {
  absl::MutexLock lock(&mu_);
  return index < writes_.size() ? writes_[index].bytes.size() : 0;
}

}  // namespace ext4::io
