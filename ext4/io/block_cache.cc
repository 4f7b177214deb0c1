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
    return Corrupt(absl::StrCat("block ", block,
                                " is outside the filesystem (", block_count_,
                                " blocks)"));
  }
  auto handle = cache_.GetOrLoad(
      block, [&]() -> absl::StatusOr<std::unique_ptr<Entry>> {
        auto bytes = std::make_shared<std::vector<uint8_t>>(block_size_);
        E4_RETURN_IF_ERROR(device_.ReadAt(block * block_size_, *bytes));
        device_reads_.fetch_add(1, std::memory_order_relaxed);
        auto entry = std::make_unique<Entry>();
        entry->bytes = std::move(bytes);
        return entry;
      });
  if (!handle.ok()) return handle.status();
  return (**handle).bytes;
}

}  // namespace ext4::io
