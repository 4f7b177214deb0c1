// A set of metadata block changes that belong together. Every call that
// changes the disk takes a Transaction&: changes are made on private copies
// of the blocks and reach the cache and the device together at Commit().
// Without a journal, Commit writes the blocks in place; the journal makes
// Commit a jbd2 transaction without changing any caller.
#ifndef E4FS_EXT4_TRANSACTION_H_
#define E4FS_EXT4_TRANSACTION_H_

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ext4/format/endian.h"
#include "ext4/io/block_cache.h"

namespace ext4 {

class Transaction {
 public:
  explicit Transaction(io::BlockCache& blocks)
      : blocks_(blocks), id_(NextId()) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // A writable copy of a metadata block, read through the cache the first
  // time; later calls return the same copy.
  absl::StatusOr<format::MutableBytes> Modify(uint64_t block);
  // A block being initialised from scratch (newly allocated metadata):
  // zero-filled, never read.
  absl::StatusOr<format::MutableBytes> ModifyNew(uint64_t block);
  // The block as this transaction sees it (its own changes included).
  absl::StatusOr<format::Bytes> Read(uint64_t block);
  // Marks a changed block as one that must reach the disk before the rest
  // of the transaction when writes are ordered (bitmaps recording an
  // allocation: after a crash, nothing may point at a block or inode that
  // is still free).
  void WriteFirst(uint64_t block) { first_.push_back(block); }
  // And the reverse for blocks recording a release (bitmaps of freed blocks
  // and inodes): written after everything that stopped pointing at them.
  // A block marked both ways goes first.
  void WriteLast(uint64_t block) { last_.push_back(block); }
  // Drops a block freed in this transaction: its changes are not written
  // and the cache forgets it.
  void Forget(uint64_t block);

  // Writes every changed block, in block order. The transaction is empty
  // afterwards and may be reused.
  absl::Status Commit();
  // Discards every change.
  void Abort() {
    first_.clear();
    last_.clear();
    changed_.clear();
    forgotten_.clear();
    read_.clear();
  }

  size_t changed_blocks() const { return changed_.size(); }
  // Unique per transaction object, for bookkeeping that must tell "this
  // transaction" from earlier ones (the allocator's freed-block list).
  uint64_t id() const { return id_; }
  uint32_t block_size() const { return blocks_.block_size(); }

 private:
  static uint64_t NextId();

  io::BlockCache& blocks_;
  const uint64_t id_;
  std::map<uint64_t, std::shared_ptr<std::vector<uint8_t>>> changed_;
  std::vector<uint64_t> forgotten_;
  std::vector<uint64_t> first_;
  std::vector<uint64_t> last_;
  // Blocks Read() handed out spans into, kept alive until commit or abort.
  std::map<uint64_t, io::BlockRef> read_;
};

}  // namespace ext4

#endif  // E4FS_EXT4_TRANSACTION_H_
