// A file's block map for writing, whichever kind the inode has: the extent
// tree (ext4) or the ext2/ext3 indirect blocks. The write paths (data,
// truncate, fallocate, directories, freeing) go through this one interface.
#ifndef E4FS_EXT4_FILE_BLOCKS_H_
#define E4FS_EXT4_FILE_BLOCKS_H_

#include <cstdint>
#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ext4/block_allocator.h"
#include "ext4/extent_tree.h"
#include "ext4/file_map.h"
#include "ext4/format/inode.h"
#include "ext4/transaction.h"

namespace ext4 {

class FileBlocks {
 public:
  virtual ~FileBlocks() = default;

  // The map of `inode` (extents when its EXTENTS flag is set, indirect
  // blocks otherwise). Works on the inode in memory; the caller writes it.
  static std::unique_ptr<FileBlocks> For(format::Inode& inode,
                                         uint32_t block_size,
                                         bool metadata_csum,
                                         uint32_t inode_seed,
                                         BlockAllocator& allocator);

  // As ExtentTree's methods of the same names. Indirect maps have no
  // unwritten state: asking for one is EOPNOTSUPP, as the kernel answers
  // fallocate on such files.
  virtual void set_use_reserve(bool use_reserve) = 0;
  // The inode whose map this is, for allocation that keeps its data
  // contiguous (extent maps; indirect maps allocate as before).
  virtual void set_owner(uint32_t ino) = 0;
  virtual absl::StatusOr<BlockMapping> Map(Transaction& tx,
                                           uint64_t logical) = 0;
  virtual absl::StatusOr<BlockMapping> MapForWrite(Transaction& tx,
                                                   uint64_t logical,
                                                   uint64_t count,
                                                   uint64_t goal,
                                                   bool unwritten) = 0;
  virtual absl::Status MarkWritten(Transaction& tx, uint64_t logical,
                                   uint64_t count) = 0;
  virtual absl::Status MarkUnwritten(Transaction& tx, uint64_t logical,
                                     uint64_t count) = 0;
  virtual absl::Status Remove(Transaction& tx, uint64_t first,
                              uint64_t end) = 0;
  virtual absl::StatusOr<std::optional<MappedExtent>> NextExtent(
      Transaction& tx, uint64_t logical) = 0;
  // One past the last logical block the map can hold.
  virtual uint64_t max_logical() const = 0;
};

}  // namespace ext4

#endif  // E4FS_EXT4_FILE_BLOCKS_H_
