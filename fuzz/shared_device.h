// A memory device over bytes the fuzz target owns, so that they outlive the
// filesystem mounted on it (the image is remounted, or checked afterwards).
#ifndef E4FS_FUZZ_SHARED_DEVICE_H_
#define E4FS_FUZZ_SHARED_DEVICE_H_

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "ext4/errno_status.h"
#include "ext4/io/block_device.h"

namespace ext4::fuzz {

class SharedDevice final : public ext4::io::BlockDevice {
 public:
  explicit SharedDevice(std::vector<uint8_t>& bytes) : bytes_(bytes) {}
  absl::Status ReadAt(uint64_t offset, std::span<uint8_t> out) override {
    if (offset > bytes_.size() || out.size() > bytes_.size() - offset) {
      return ext4::ErrnoError(EIO, "read past the end");
    }
    if (!out.empty()) std::memcpy(out.data(), &bytes_[offset], out.size());
    return absl::OkStatus();
  }
  absl::Status WriteAt(uint64_t offset,
                       std::span<const uint8_t> data) override {
    if (offset > bytes_.size() || data.size() > bytes_.size() - offset) {
      return ext4::ErrnoError(EIO, "write past the end");
    }
    if (!data.empty()) std::memcpy(&bytes_[offset], data.data(), data.size());
    return absl::OkStatus();
  }
  absl::Status Flush() override { return absl::OkStatus(); }
  uint64_t Size() const override { return bytes_.size(); }
  bool read_only() const override { return false; }

 private:
  std::vector<uint8_t>& bytes_;
};

}  // namespace ext4::fuzz

#endif  // E4FS_FUZZ_SHARED_DEVICE_H_
