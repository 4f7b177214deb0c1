// An in-memory BlockDevice for unit tests and fuzzing: no files, no syscalls.
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "ext4/errno_status.h"
#include "ext4/io/block_device.h"

namespace ext4::io {
namespace {

class MemoryBlockDevice final : public BlockDevice {
 public:
  MemoryBlockDevice(std::vector<uint8_t> bytes, bool read_only)
      : bytes_(std::move(bytes)), read_only_(read_only) {}

  absl::Status ReadAt(uint64_t offset, std::span<uint8_t> out) override {
    absl::MutexLock lock(&mu_);
    if (offset > bytes_.size() || out.size() > bytes_.size() - offset) {
      return ErrnoError(EIO, absl::StrCat("read at ", offset, " past the end"));
    }
    if (!out.empty())
      std::memcpy(out.data(), bytes_.data() + offset, out.size());
    return absl::OkStatus();
  }

  absl::Status WriteAt(uint64_t offset,
                       std::span<const uint8_t> data) override {
    absl::MutexLock lock(&mu_);
    if (read_only_) return ErrnoError(EROFS, "device is read-only");
    if (offset > bytes_.size() || data.size() > bytes_.size() - offset) {
      return ErrnoError(EIO,
                        absl::StrCat("write at ", offset, " past the end"));
    }
    if (!data.empty())
      std::memcpy(bytes_.data() + offset, data.data(), data.size());
    return absl::OkStatus();
  }

  absl::Status Flush() override { return absl::OkStatus(); }
  uint64_t Size() const override { return bytes_.size(); }
  bool read_only() const override { return read_only_; }

 private:
  absl::Mutex mu_;
  std::vector<uint8_t> bytes_;
  const bool read_only_;
};

}  // namespace

std::unique_ptr<BlockDevice> MemoryDevice(std::vector<uint8_t> bytes,
                                          bool read_only) {
  return std::make_unique<MemoryBlockDevice>(std::move(bytes), read_only);
}

}  // namespace ext4::io
