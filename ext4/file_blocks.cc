#include "ext4/file_blocks.h"

#include "ext4/errno_status.h"
#include "ext4/indirect_tree.h"

namespace ext4 {
namespace {

class ExtentBlocks final : public FileBlocks {
 public:
  ExtentBlocks(format::Inode& inode, uint32_t block_size, bool metadata_csum,
               uint32_t inode_seed, BlockAllocator& allocator)
      : tree_(inode, block_size, metadata_csum, inode_seed, allocator) {}

  void set_use_reserve(bool use_reserve) override {
    tree_.set_use_reserve(use_reserve);
  }
  void set_owner(uint32_t ino) override { tree_.set_owner(ino); }
  absl::StatusOr<BlockMapping> Map(Transaction& tx, uint64_t logical) override {
    return tree_.Map(tx, logical);
  }
  absl::StatusOr<BlockMapping> MapForWrite(Transaction& tx, uint64_t logical,
                                           uint64_t count, uint64_t goal,
                                           bool unwritten) override {
    return tree_.MapForWrite(tx, logical, count, goal, unwritten);
  }
  absl::Status MarkWritten(Transaction& tx, uint64_t logical,
                           uint64_t count) override {
    return tree_.MarkWritten(tx, logical, count);
  }
  absl::Status MarkUnwritten(Transaction& tx, uint64_t logical,
                             uint64_t count) override {
    return tree_.MarkUnwritten(tx, logical, count);
  }
  absl::Status Remove(Transaction& tx, uint64_t first, uint64_t end) override {
    return tree_.Remove(tx, first, end);
  }
  absl::StatusOr<std::optional<MappedExtent>> NextExtent(
      Transaction& tx, uint64_t logical) override {
    return tree_.NextExtent(tx, logical);
  }
  uint64_t max_logical() const override { return ExtentTree::kMaxLogical; }

 private:
  ExtentTree tree_;
};

class IndirectBlocks final : public FileBlocks {
 public:
  IndirectBlocks(format::Inode& inode, uint32_t block_size,
                 BlockAllocator& allocator)
      : tree_(inode, block_size, allocator), block_size_(block_size) {
    // Pointers read from disk are checked as the kernel's
    // ext4_inode_block_valid does: never into metadata, never past the end
    // (a corrupt indirect block would otherwise be taken for a list of
    // other files' blocks, and freed).
    tree_.set_metadata_check([&allocator](uint64_t first, uint64_t count) {
      return allocator.OverlapsMetadata(first, count);
    });
  }

  void set_use_reserve(bool use_reserve) override {
    tree_.set_use_reserve(use_reserve);
  }
  void set_owner(uint32_t) override {}
  absl::StatusOr<BlockMapping> Map(Transaction& tx, uint64_t logical) override {
    return tree_.Map(tx, logical);
  }
  absl::StatusOr<BlockMapping> MapForWrite(Transaction& tx, uint64_t logical,
                                           uint64_t count, uint64_t goal,
                                           bool unwritten) override {
    if (unwritten) return NoUnwritten();
    return tree_.MapForWrite(tx, logical, count, goal, false);
  }
  absl::Status MarkWritten(Transaction&, uint64_t, uint64_t) override {
    return absl::OkStatus();  // nothing is ever unwritten
  }
  absl::Status MarkUnwritten(Transaction&, uint64_t, uint64_t) override {
    return NoUnwritten();
  }
  absl::Status Remove(Transaction& tx, uint64_t first, uint64_t end) override {
    return tree_.Remove(tx, first, end);
  }
  absl::StatusOr<std::optional<MappedExtent>> NextExtent(
      Transaction& tx, uint64_t logical) override {
    return tree_.NextExtent(tx, logical);
  }
  uint64_t max_logical() const override {
    return IndirectTree::MaxLogical(block_size_);
  }

 private:
  static absl::Status NoUnwritten() {
    return ErrnoError(EOPNOTSUPP,
                      "indirect-mapped files cannot hold unwritten blocks");
  }

  IndirectTree tree_;
  const uint32_t block_size_;
};

}  // namespace

std::unique_ptr<FileBlocks> FileBlocks::For(format::Inode& inode,
                                            uint32_t block_size,
                                            bool metadata_csum,
                                            uint32_t inode_seed,
                                            BlockAllocator& allocator) {
  if (inode.flags & format::kInodeFlagExtents) {
    return std::make_unique<ExtentBlocks>(inode, block_size, metadata_csum,
                                          inode_seed, allocator);
  }
  return std::make_unique<IndirectBlocks>(inode, block_size, allocator);
}

}  // namespace ext4
