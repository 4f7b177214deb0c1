// The metadata block cache: every superblock-adjacent structure, inode table
// block, directory block, extent and xattr block is read through it, so later
// writes change the one in-core copy that readers see. File data bypasses it.
#ifndef E4FS_EXT4_IO_BLOCK_CACHE_H_
#define E4FS_EXT4_IO_BLOCK_CACHE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "cache/ref_cache.h"
#include "ext4/io/block_device.h"

namespace ext4::io {

using BlockRef = std::shared_ptr<const std::vector<uint8_t>>;

class BlockCache {
 public:
  // `block_count` bounds the valid block numbers: a pointer past the end of
  // the filesystem is corruption (EUCLEAN), not a read outside the image.
  BlockCache(BlockDevice& device, uint32_t block_size, uint64_t block_count,
             size_t limit);

  absl::StatusOr<BlockRef> Read(uint64_t block);

  // Makes `bytes` the block's contents: in core at once (readers see it on
  // their next Read) and on the device. Used by transaction commit.
  absl::Status Write(uint64_t block, BlockRef bytes);
  // Forgets a block whose contents no longer matter (freed metadata).
  void Drop(uint64_t block) { cache_.Erase(block); }

  uint32_t block_size() const { return block_size_; }
  uint64_t block_count() const { return block_count_; }
  // Blocks read from the device (cache misses) since the cache was made.
  uint64_t device_reads() const { return device_reads_.load(); }
  void Clear() { cache_.Clear(); }

 private:
  struct Entry {
    absl::Mutex mu;
    BlockRef bytes ABSL_GUARDED_BY(mu);
  };

  BlockDevice& device_;
  const uint32_t block_size_;
  const uint64_t block_count_;
  cache::RefCache<uint64_t, Entry> cache_;
  std::atomic<uint64_t> device_reads_{0};
};

}  // namespace ext4::io

#endif  // E4FS_EXT4_IO_BLOCK_CACHE_H_
