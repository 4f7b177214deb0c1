#include "ext4/io/overlay_device.h"

#include <algorithm>
#include <cstring>

#include "ext4/errno_status.h"

namespace ext4::io {
namespace {

class Overlay final : public BlockDevice {
 public:
  Overlay(std::unique_ptr<BlockDevice> base, uint32_t block_size,
          std::map<uint64_t, std::vector<uint8_t>> blocks)
      : base_(std::move(base)),
        block_size_(block_size),
        blocks_(std::move(blocks)) {}

  absl::Status ReadAt(uint64_t offset, std::span<uint8_t> out) override {
    E4_RETURN_IF_ERROR(base_->ReadAt(offset, out));
    if (out.empty() || blocks_.empty()) return absl::OkStatus();
    const uint64_t end = offset + out.size();
    // Every replaced block that overlaps [offset, end) patches its part.
    for (auto it = blocks_.lower_bound(offset / block_size_);
         it != blocks_.end() && it->first * block_size_ < end; ++it) {
      const uint64_t start = it->first * block_size_;
      const uint64_t from = std::max(start, offset);
      const uint64_t to = std::min<uint64_t>(start + it->second.size(), end);
      if (from >= to) continue;
      std::memcpy(out.data() + (from - offset),
                  it->second.data() + (from - start), to - from);
    }
    return absl::OkStatus();
  }
  absl::Status WriteAt(uint64_t, std::span<const uint8_t>) override {
    return ErrnoError(EROFS, "read-only device");
  }
  absl::Status Flush() override { return absl::OkStatus(); }
  uint64_t Size() const override { return base_->Size(); }
  bool read_only() const override { return true; }

 private:
  std::unique_ptr<BlockDevice> base_;
  const uint32_t block_size_;
  const std::map<uint64_t, std::vector<uint8_t>> blocks_;
};

}  // namespace

std::unique_ptr<BlockDevice> OverlayDevice(
    std::unique_ptr<BlockDevice> base, uint32_t block_size,
    std::map<uint64_t, std::vector<uint8_t>> blocks) {
  return std::make_unique<Overlay>(std::move(base), block_size,
                                   std::move(blocks));
}

}  // namespace ext4::io
