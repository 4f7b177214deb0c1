// The metadata block cache: every superblock-adjacent structure, inode table
// block, directory block, extent and xattr block is read through it, so later
// writes change the one in-core copy that readers see. File data bypasses it.
#ifndef E4FS_EXT4_IO_BLOCK_CACHE_H_
#define E4FS_EXT4_IO_BLOCK_CACHE_H_

#include <atomic>
#include <cstdint>
#include <map>
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
  // their next Read) and on the device -- at once in write-through mode, or
  // when the journal writes it back in write-back mode. Used by transaction
  // commit.
  absl::Status Write(uint64_t block, BlockRef bytes);
  // Forgets a block whose contents no longer matter (freed metadata): it is
  // neither kept nor written back.
  void Drop(uint64_t block);

  // Ordered write-through (a filesystem without a journal): a transaction
  // writes its allocation blocks first, then a flush barrier, then the
  // blocks that point at what was allocated (see Transaction::Commit).
  void set_ordered_writes(bool on) { ordered_writes_ = on; }
  bool ordered_writes() const { return ordered_writes_ && !write_back_; }
  absl::Status Flush() { return device_.Flush(); }

  // Write-back mode (a journaled filesystem): Write only records the block
  // as dirty; nothing reaches the device until the journal has logged it.
  // Dirty blocks are never evicted: a miss is served from the dirty set.
  void set_write_back(bool on) { write_back_ = on; }
  bool write_back() const { return write_back_; }
  // The dirty blocks, in block order (shared contents, cheap to copy).
  std::map<uint64_t, BlockRef> DirtyBlocks() const;
  size_t dirty_count() const;
  // After the journal wrote `written` in place: those blocks are clean
  // unless they changed again since.
  void MarkClean(const std::map<uint64_t, BlockRef>& written);

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
  std::atomic<bool> write_back_{false};
  std::atomic<bool> ordered_writes_{false};
  mutable absl::Mutex dirty_mu_;
  std::map<uint64_t, BlockRef> dirty_ ABSL_GUARDED_BY(dirty_mu_);
};

}  // namespace ext4::io

#endif  // E4FS_EXT4_IO_BLOCK_CACHE_H_
