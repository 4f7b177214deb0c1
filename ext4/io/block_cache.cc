#include "ext4/io/block_cache.h"

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"

namespace ext4::io {

BlockCache::BlockCache(BlockDevice& device, uint32_t block_size,
                       uint64_t block_count, size_t limit)
    : device_(device),
      block_size_(block_size),
      block_count_(block_count),
      cache_(limit) {}

absl::StatusOr<BlockRef> BlockCache::Read(uint64_t block) {
  if (block >= block_count_) {
    return Corrupt(absl::StrCat("block ", block, " is outside the filesystem (",
                                block_count_, " blocks)"));
  }
  auto handle =
      cache_.GetOrLoad(block, [&]() -> absl::StatusOr<std::unique_ptr<Entry>> {
        auto bytes = std::make_shared<std::vector<uint8_t>>(block_size_);
        E4_RETURN_IF_ERROR(device_.ReadAt(block * block_size_, *bytes));
        device_reads_.fetch_add(1, std::memory_order_relaxed);
        auto entry = std::make_unique<Entry>();
        absl::MutexLock lock(&entry->mu);
        entry->bytes = std::move(bytes);
        return entry;
      });
  if (!handle.ok()) return handle.status();
  Entry& entry = **handle;
  absl::MutexLock lock(&entry.mu);
  return entry.bytes;
}

absl::Status BlockCache::Write(uint64_t block, BlockRef bytes) {
  if (block >= block_count_ || bytes->size() != block_size_) {
    return Corrupt(
        absl::StrCat("write of block ", block, " outside the filesystem"));
  }
  E4_RETURN_IF_ERROR(device_.WriteAt(block * block_size_, *bytes));
  auto handle =
      cache_.GetOrLoad(block, [&]() -> absl::StatusOr<std::unique_ptr<Entry>> {
        auto entry = std::make_unique<Entry>();
        absl::MutexLock lock(&entry->mu);
        entry->bytes = bytes;
        return entry;
      });
  if (!handle.ok()) return handle.status();
  Entry& entry = **handle;
  absl::MutexLock lock(&entry.mu);
  entry.bytes = std::move(bytes);
  return absl::OkStatus();
}

}  // namespace ext4::io
