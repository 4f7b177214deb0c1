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
        auto entry = std::make_unique<Entry>();
        {
          // An evicted dirty block comes back from the dirty set: the
          // device still holds its old contents.
          absl::MutexLock dirty_lock(&dirty_mu_);
          auto it = dirty_.find(block);
          if (it != dirty_.end()) {
            absl::MutexLock lock(&entry->mu);
            entry->bytes = it->second;
            return entry;
          }
        }
        auto bytes = std::make_shared<std::vector<uint8_t>>(block_size_);
        E4_RETURN_IF_ERROR(device_.ReadAt(block * block_size_, *bytes));
        device_reads_.fetch_add(1, std::memory_order_relaxed);
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
  if (write_back_) {
    absl::MutexLock lock(&dirty_mu_);
    dirty_[block] = bytes;
  } else {
    E4_RETURN_IF_ERROR(device_.WriteAt(block * block_size_, *bytes));
  }
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

void BlockCache::Drop(uint64_t block) {
  {
    absl::MutexLock lock(&dirty_mu_);
    dirty_.erase(block);
  }
  cache_.Erase(block);
}

std::map<uint64_t, BlockRef> BlockCache::DirtyBlocks() const {
  absl::MutexLock lock(&dirty_mu_);
  return dirty_;
}

size_t BlockCache::dirty_count() const {
  absl::MutexLock lock(&dirty_mu_);
  return dirty_.size();
}

void BlockCache::MarkClean(const std::map<uint64_t, BlockRef>& written) {
  absl::MutexLock lock(&dirty_mu_);
  for (const auto& [block, bytes] : written) {
    auto it = dirty_.find(block);
    if (it != dirty_.end() && it->second == bytes) dirty_.erase(it);
  }
}

}  // namespace ext4::io
