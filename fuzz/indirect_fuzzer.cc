// ext2/ext3 indirect block maps: an inode's i_block and a few blocks of
// pointers, served by a sparse in-memory device (blocks the input does not
// give read as zeros), mapped read-only through IndirectMap (file_map.h) and
// IndirectTree, and changed through IndirectTree with a small allocator.
//
// Every answer is compared with a reference walk written here from the
// on-disk rules: a mapped block must be the one the pointers name and inside
// the filesystem, a hole must be a hole, a run must hold what it claims, and
// a pointer outside the filesystem must give an error. Walks go by runs with a
// bounded number of calls, so a map that answers one block at a time over a
// huge range shows as a timeout. Changes keep i_blocks equal to what the
// allocator handed out minus what it got back, map what MapForWrite was asked
// for and unmap what Remove was asked to remove.
//
// Input: flags (block size 1/2/4 KiB in bits 0-1), the filesystem's block
// count, the walk bound (blocks), i_block (60 bytes), a count of blocks then
// {le32 block number, one block of bytes} for each, then the operations
// (9 bytes each: kind, le32 logical, le32 count).
#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ext4/block_allocator.h"
#include "ext4/errno_status.h"
#include "ext4/extent_tree.h"
#include "ext4/file_map.h"
#include "ext4/format/endian.h"
#include "ext4/format/inode.h"
#include "ext4/indirect_tree.h"
#include "ext4/io/block_cache.h"
#include "ext4/io/block_device.h"
#include "ext4/transaction.h"
#include "fuzz/fuzz_support.h"

namespace {

using ext4::BlockMapping;
using ext4::IndirectTree;
using ext4::Transaction;
using ext4::format::Bytes;
using ext4::fuzz::FuzzInput;
namespace format = ext4::format;

constexpr size_t kDirect = 12;
constexpr size_t kMaxStoredBlocks = 16;
constexpr size_t kMaxOps = 16;
constexpr int kMaxWalkCalls = 512;
constexpr uint64_t kRunSamples = 48;  // blocks of a run checked one by one
constexpr uint64_t kPoolSize = 512;   // blocks the allocator hands out

// A device of `block_count` blocks of which only the stored ones hold
// bytes; the others read as zeros. Writes store whole blocks.
class SparseDevice final : public ext4::io::BlockDevice {
 public:
  SparseDevice(uint32_t block_size, uint64_t block_count)
      : block_size_(block_size), block_count_(block_count) {}

  void Put(uint64_t block, Bytes bytes) {
    std::vector<uint8_t>& stored = blocks_[block];
    stored.assign(block_size_, 0);
    std::copy_n(bytes.begin(), std::min<size_t>(bytes.size(), block_size_),
                stored.begin());
  }
  bool Stored(uint64_t block) const { return blocks_.count(block) != 0; }
  const std::map<uint64_t, std::vector<uint8_t>>& blocks() const {
    return blocks_;
  }

  // Pointer `slot` of `block` as the disk holds it.
  uint32_t Word(uint64_t block, size_t slot) const {
    auto it = blocks_.find(block);
    if (it == blocks_.end()) return 0;
    return format::Le32(it->second, 4 * slot);
  }

  absl::Status ReadAt(uint64_t offset, std::span<uint8_t> out) override {
    if (offset > Size() || out.size() > Size() - offset) {
      return ext4::ErrnoError(EIO, "read past the end");
    }
    size_t done = 0;
    while (done < out.size()) {
      const uint64_t at = offset + done;
      const uint64_t block = at / block_size_;
      const size_t within = static_cast<size_t>(at % block_size_);
      const size_t n =
          std::min<size_t>(out.size() - done, block_size_ - within);
      auto it = blocks_.find(block);
      if (it == blocks_.end()) {
        std::memset(out.data() + done, 0, n);
      } else {
        std::memcpy(out.data() + done, it->second.data() + within, n);
      }
      done += n;
    }
    return absl::OkStatus();
  }

  absl::Status WriteAt(uint64_t offset,
                       std::span<const uint8_t> data) override {
    if (offset > Size() || data.size() > Size() - offset) {
      return ext4::ErrnoError(EIO, "write past the end");
    }
    size_t done = 0;
    while (done < data.size()) {
      const uint64_t at = offset + done;
      const uint64_t block = at / block_size_;
      const size_t within = static_cast<size_t>(at % block_size_);
      const size_t n =
          std::min<size_t>(data.size() - done, block_size_ - within);
      std::vector<uint8_t>& stored = blocks_[block];
      stored.resize(block_size_, 0);
      std::memcpy(stored.data() + within, data.data() + done, n);
      done += n;
    }
    return absl::OkStatus();
  }

  absl::Status Flush() override { return absl::OkStatus(); }
  uint64_t Size() const override { return block_count_ * block_size_; }
  bool read_only() const override { return false; }

 private:
  const uint32_t block_size_;
  const uint64_t block_count_;
  std::map<uint64_t, std::vector<uint8_t>> blocks_;
};

// Hands out blocks of a pool no pointer of the input names; blocks outside
// the pool count as in use until freed, and freeing a free block is
// EUCLEAN, as the bitmap allocator answers.
class PoolAllocator final : public ext4::BlockAllocator {
 public:
  PoolAllocator(uint64_t first, uint64_t count) : first_(first), used_(count) {}

  void Reserve(uint64_t block) {
    if (InPool(block)) used_[block - first_] = true;
  }

  absl::StatusOr<ext4::BlockRun> AllocateBlocks(Transaction& /*tx*/,
                                                uint64_t goal, uint64_t count,
                                                bool /*use_reserve*/) override {
    FUZZ_CHECK(count >= 1);
    const size_t size = used_.size();
    const size_t start = InPool(goal) ? static_cast<size_t>(goal - first_) : 0;
    for (size_t k = 0; k < size; ++k) {
      const size_t i = (start + k) % size;
      if (used_[i]) continue;
      uint64_t n = 0;
      while (i + n < size && n < count && !used_[i + n]) {
        used_[i + n] = true;
        ++n;
      }
      allocated_ += n;
      return ext4::BlockRun{first_ + i, n};
    }
    return ext4::ErrnoError(ENOSPC, "pool exhausted");
  }

  absl::Status FreeBlocks(Transaction& /*tx*/, uint64_t first,
                          uint64_t count) override {
    for (uint64_t b = first; b < first + count; ++b) {
      const bool free = InPool(b) ? !used_[b - first_] : freed_.count(b) != 0;
      if (free) return ext4::Corrupt("freeing a free block");
    }
    for (uint64_t b = first; b < first + count; ++b) {
      if (InPool(b)) {
        used_[b - first_] = false;
      } else {
        freed_.insert(b);
      }
    }
    freed_count_ += count;
    return absl::OkStatus();
  }

  bool InPool(uint64_t block) const {
    return block >= first_ && block - first_ < used_.size();
  }
  // Blocks handed out minus blocks given back.
  int64_t net() const {
    return static_cast<int64_t>(allocated_) -
           static_cast<int64_t>(freed_count_);
  }

 private:
  const uint64_t first_;
  std::vector<bool> used_;
  std::set<uint64_t> freed_;
  uint64_t allocated_ = 0;
  uint64_t freed_count_ = 0;
};

// The reference walk: what the pointers on disk say about one block.
struct Ref {
  enum Kind { kHole, kMapped, kCorrupt } kind = kHole;
  uint64_t physical = 0;
};

class Reference {
 public:
  Reference(const SparseDevice& device, uint32_t block_size,
            uint64_t block_count)
      : device_(device),
        per_block_(block_size / 4),
        block_count_(block_count),
        max_logical_(IndirectTree::MaxLogical(block_size)) {}

  uint64_t max_logical() const { return max_logical_; }

  Ref At(const std::array<uint8_t, 60>& root, uint64_t logical) const {
    const Bytes i_block(root.data(), root.size());
    if (logical >= max_logical_) return Ref{};
    if (logical < kDirect) {
      return Data(format::Le32(i_block, 4 * static_cast<size_t>(logical)));
    }
    uint64_t rest = logical - kDirect;
    uint64_t span = per_block_;
    for (int levels = 1; levels <= 3; ++levels) {
      if (rest < span) {
        uint64_t pointer = format::Le32(i_block, 4 * (kDirect + levels - 1));
        for (int level = levels; level >= 1; --level) {
          if (pointer == 0) return Ref{};
          if (pointer >= block_count_) return Ref{Ref::kCorrupt, 0};
          span /= per_block_;
          pointer = device_.Word(pointer, static_cast<size_t>(rest / span));
          rest %= span;
        }
        return Data(pointer);
      }
      rest -= span;
      span *= per_block_;
    }
    return Ref{};
  }

 private:
  Ref Data(uint64_t pointer) const {
    if (pointer == 0) return Ref{};
    if (pointer >= block_count_) return Ref{Ref::kCorrupt, 0};
    return Ref{Ref::kMapped, pointer};
  }

  const SparseDevice& device_;
  const uint64_t per_block_;
  const uint64_t block_count_;
  const uint64_t max_logical_;
};

// The blocks of a run checked against the reference: its first few, and
// its last one.
template <typename F>
void ForRunSamples(uint64_t length, F&& f) {
  for (uint64_t i = 0; i < std::min(length, kRunSamples); ++i) f(i);
  if (length > kRunSamples) f(length - 1);
}

// Checks one answer of a map against the reference.
void CheckMapping(const Reference& ref, const std::array<uint8_t, 60>& root,
                  uint64_t block_count, uint64_t logical,
                  const absl::StatusOr<BlockMapping>& got) {
  const Ref want = ref.At(root, logical);
  if (!got.ok()) {
    const int err = ext4::ErrnoOf(got.status());
    FUZZ_CHECK(err == EUCLEAN || err == EIO);
    // A hole is never an error; a mapped block may be (its run reaching a
    // bad pointer).
    FUZZ_CHECK(want.kind != Ref::kHole);
    return;
  }
  FUZZ_CHECK(want.kind != Ref::kCorrupt);
  FUZZ_CHECK(got->length >= 1);
  FUZZ_CHECK(!got->unwritten);
  if (got->physical == 0) {
    FUZZ_CHECK(want.kind == Ref::kHole);
    ForRunSamples(got->length, [&](uint64_t i) {
      if (logical + i < logical) return;  // wrapped: beyond any map
      FUZZ_CHECK(ref.At(root, logical + i).kind == Ref::kHole);
    });
    return;
  }
  FUZZ_CHECK(want.kind == Ref::kMapped && want.physical == got->physical);
  FUZZ_CHECK(got->physical < block_count &&
             got->length <= block_count - got->physical);
  FUZZ_CHECK(logical + got->length <= ref.max_logical());
  ForRunSamples(got->length, [&](uint64_t i) {
    const Ref r = ref.At(root, logical + i);
    FUZZ_CHECK(r.kind == Ref::kMapped && r.physical == got->physical + i);
  });
}

struct Setup {
  uint32_t block_size = 1024;
  uint64_t block_count = 0;
  uint64_t bound = 0;
  std::array<uint8_t, 60> root{};
};

// Maps every block below the bound, run by run, through both maps.
void Walk(const Setup& s, const Reference& ref, ext4::io::BlockCache& cache,
          IndirectTree& tree, const format::Inode& inode) {
  std::unique_ptr<ext4::FileMap> map = ext4::MakeIndirectMap(inode, cache);
  const uint64_t end = std::min(s.bound, ref.max_logical() + 1);
  uint64_t logical = 0;
  for (int calls = 0; logical < end && calls < kMaxWalkCalls; ++calls) {
    auto got = map->Map(logical);
    CheckMapping(ref, inode.block, s.block_count, logical, got);
    if (!got.ok()) {
      ++logical;
      continue;
    }
    if (got->length > UINT64_MAX - logical) break;
    logical += got->length;
  }
  logical = 0;
  Transaction tx(cache);
  for (int calls = 0; logical < end && calls < kMaxWalkCalls; ++calls) {
    auto got = tree.Map(tx, logical);
    CheckMapping(ref, inode.block, s.block_count, logical, got);
    if (!got.ok()) {
      ++logical;
      continue;
    }
    if (got->length > UINT64_MAX - logical) break;
    logical += got->length;
  }
  FUZZ_CHECK(tx.changed_blocks() == 0);
}

// NextExtent (SEEK_DATA / SEEK_HOLE) from `logical`.
void CheckNextExtent(const Reference& ref, const format::Inode& inode,
                     Transaction& tx, IndirectTree& tree, uint64_t logical) {
  auto next = tree.NextExtent(tx, logical);
  if (!next.ok()) {
    const int err = ext4::ErrnoOf(next.status());
    FUZZ_CHECK(err == EUCLEAN || err == EIO);
    return;
  }
  const uint64_t limit = ref.max_logical();
  if (!next->has_value()) {
    for (uint64_t i = logical; i < std::min(limit, logical + kRunSamples);
         ++i) {
      FUZZ_CHECK(ref.At(inode.block, i).kind != Ref::kMapped);
    }
    return;
  }
  const ext4::MappedExtent& extent = **next;
  FUZZ_CHECK(extent.logical >= logical);
  FUZZ_CHECK(extent.length >= 1 && !extent.unwritten);
  FUZZ_CHECK(extent.logical + extent.length <= limit);
  // Nothing mapped before it (a block past the filesystem still counts as
  // data: its pointer is set).
  for (uint64_t i = logical;
       i < std::min(extent.logical, logical + kRunSamples); ++i) {
    FUZZ_CHECK(ref.At(inode.block, i).kind == Ref::kHole);
  }
  ForRunSamples(extent.length, [&](uint64_t i) {
    FUZZ_CHECK(ref.At(inode.block, extent.logical + i).kind != Ref::kHole);
  });
}

// A logical block worth asking about: near the edges of the direct,
// single, double and triple ranges, anywhere below the bound, or anything.
uint64_t PickLogical(uint32_t raw, uint32_t block_size, uint64_t bound) {
  const uint64_t n = block_size / 4;
  const uint64_t edges[] = {0,
                            kDirect - 1,
                            kDirect,
                            kDirect + n - 1,
                            kDirect + n,
                            kDirect + n + n * n - 1,
                            kDirect + n + n * n,
                            IndirectTree::MaxLogical(block_size) - 1,
                            IndirectTree::MaxLogical(block_size),
                            ext4::kEndOfFile};
  const uint32_t value = raw & 0x3FFFFFFF;
  switch (raw >> 30) {
    case 0:
      return edges[value % std::size(edges)] + (value >> 8) % 3;
    case 1:
      return bound == 0 ? value : value % bound;
    case 2:
      return value % (kDirect + 2 * n);
    default:
      return raw;
  }
}

void RunOps(FuzzInput& in, const Setup& s, SparseDevice& device,
            ext4::io::BlockCache& cache, PoolAllocator& allocator,
            format::Inode& inode) {
  const Reference ref(device, s.block_size, s.block_count);
  IndirectTree tree(inode, s.block_size, allocator);
  tree.set_block_count(s.block_count);
  const uint64_t blocks_before = inode.blocks;
  const uint64_t sectors = s.block_size / 512;
  Transaction tx(cache);
  for (size_t op = 0; op < kMaxOps && in.remaining() > 0; ++op) {
    const uint8_t kind = in.U8();
    const uint64_t logical = PickLogical(in.U32(), s.block_size, s.bound);
    const uint32_t count_raw = in.U32();
    switch (kind % 4) {
      case 0: {
        const uint64_t count = 1 + count_raw % 64;
        auto mapped = tree.MapForWrite(tx, logical, count, count_raw >> 8,
                                       /*unwritten=*/(kind & 0x80) != 0);
        if (kind & 0x80) {
          FUZZ_CHECK(!mapped.ok() &&
                     ext4::ErrnoOf(mapped.status()) == EOPNOTSUPP);
        }
        if (logical >= ref.max_logical() ||
            count > ref.max_logical() - logical) {
          FUZZ_CHECK(!mapped.ok());
        }
        if (mapped.ok()) {
          FUZZ_CHECK(mapped->physical != 0);
          for (uint64_t i = 0; i < std::min(count, kRunSamples); ++i) {
            auto after = tree.Map(tx, logical + i);
            if (after.ok()) FUZZ_CHECK(after->physical != 0);
          }
        }
        break;
      }
      case 1: {
        const uint64_t end = (count_raw & 0x80000000u)
                                 ? ext4::kEndOfFile
                                 : logical + (count_raw & 0xFFFF);
        auto removed = tree.Remove(tx, logical, end);
        if (removed.ok()) {
          for (uint64_t i = logical; i < std::min(end, logical + kRunSamples);
               ++i) {
            auto after = tree.Map(tx, i);
            if (after.ok()) FUZZ_CHECK(after->physical == 0);
          }
        }
        break;
      }
      case 2: {
        // Read-only questions see the transaction's changes once they are
        // written out; ask the tree, which reads through it.
        auto next = tree.NextExtent(tx, logical);
        if (next.ok() && next->has_value()) {
          FUZZ_CHECK((*next)->logical >= logical);
          FUZZ_CHECK((*next)->length >= 1);
        }
        break;
      }
      case 3: {
        auto got = tree.Map(tx, logical);
        if (got.ok()) FUZZ_CHECK(got->length >= 1);
        break;
      }
    }
    // i_blocks follows every block handed out and given back, errors
    // included.
    FUZZ_CHECK(static_cast<int64_t>(inode.blocks - blocks_before) ==
               allocator.net() * static_cast<int64_t>(sectors));
  }
  FUZZ_CHECK(tx.Commit().ok());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  Setup s;
  const uint8_t flags = in.U8();
  s.block_size = 1024u << std::min(flags & 3, 2);
  s.block_count = std::max<uint32_t>(in.U32(), 16);
  s.bound = in.U32();
  Bytes root = in.Take(60);
  std::copy(root.begin(), root.end(), s.root.begin());

  SparseDevice device(s.block_size, s.block_count);
  const size_t stored = in.U8() % (kMaxStoredBlocks + 1);
  for (size_t i = 0; i < stored && in.remaining() > 0; ++i) {
    const uint64_t block = in.U32();
    Bytes bytes = in.Take(s.block_size);
    if (block < s.block_count) device.Put(block, bytes);
  }

  // The allocator's pool: past the stored blocks when it fits, with every
  // block a pointer of the input names taken out of it.
  uint64_t pool_first = 1;
  if (!device.blocks().empty())
    pool_first = device.blocks().rbegin()->first + 1;
  if (pool_first + kPoolSize > s.block_count) {
    pool_first = s.block_count > kPoolSize ? s.block_count - kPoolSize : 1;
  }
  PoolAllocator allocator(pool_first,
                          std::min<uint64_t>(kPoolSize, s.block_count - 1));
  allocator.Reserve(0);
  for (size_t i = 0; i < 15; ++i) {
    allocator.Reserve(format::Le32(Bytes(s.root.data(), s.root.size()), 4 * i));
  }
  for (const auto& [block, bytes] : device.blocks()) {
    allocator.Reserve(block);
    for (size_t i = 0; i + 4 <= bytes.size(); i += 4) {
      allocator.Reserve(format::Le32(bytes, i));
    }
  }

  ext4::io::BlockCache cache(device, s.block_size, s.block_count, 64);
  format::Inode inode;
  inode.mode = format::kModeRegular | 0644;
  inode.block = s.root;
  inode.blocks = uint64_t{1} << 40;  // never clamped at zero by a removal
  inode.size = s.bound * s.block_size;

  const Reference ref(device, s.block_size, s.block_count);
  {
    IndirectTree tree(inode, s.block_size, allocator);
    tree.set_block_count(s.block_count);
    Walk(s, ref, cache, tree, inode);
    Transaction tx(cache);
    for (uint64_t logical :
         {uint64_t{0}, uint64_t{kDirect}, s.bound / 2,
          PickLogical(static_cast<uint32_t>(s.bound), s.block_size, s.bound)}) {
      CheckNextExtent(ref, inode, tx, tree, logical);
    }
  }

  if (in.remaining() == 0) return 0;
  RunOps(in, s, device, cache, allocator, inode);
  // The changed map, read back from the device.
  IndirectTree tree(inode, s.block_size, allocator);
  tree.set_block_count(s.block_count);
  Walk(s, ref, cache, tree, inode);
  return 0;
}
