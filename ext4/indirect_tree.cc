// Indirect block map changes. Every operation locates a logical block by its
// root slot and its slot in each indirect block on the way down, reading the
// indirect blocks through the transaction. Writes fill one array of data
// pointers (the direct pointers or one indirect block) per round, allocating
// the missing indirect blocks on the way; removal walks the subtrees that
// meet the range and frees what they no longer need.
//
// Nothing keeps a view of a block across a call that may allocate or free:
// the allocator or Forget() may replace the transaction's copy of it.
#include "ext4/indirect_tree.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "ext4/format/endian.h"

namespace ext4 {
namespace {

constexpr size_t kDirect = 12;     // i_block[0..11]
constexpr size_t kRootSlots = 15;  // plus the single, double, triple
// Block numbers an indirect map can hold.
constexpr uint64_t kPointerLimit = uint64_t{1} << 32;

}  // namespace

IndirectTree::IndirectTree(format::Inode& inode, uint32_t block_size,
                           BlockAllocator& allocator)
    : inode_(inode),
      block_size_(block_size),
      per_block_(std::max<uint64_t>(1, block_size / 4)),
      max_logical_(MaxLogical(block_size)),
      allocator_(allocator) {}

// ---------------------------------------------------------------------------
// Geometry and pointers.

uint64_t IndirectTree::Span(int levels) const {
  uint64_t span = 1;
  for (int i = 0; i < levels; ++i) span *= per_block_;
  return span;
}

uint64_t IndirectTree::SubtreeBase(int d) const {
  uint64_t base = kDirect;
  for (int i = 1; i < d; ++i) base += Span(i);
  return base;
}

IndirectTree::Position IndirectTree::Locate(uint64_t logical) const {
  Position pos;
  if (logical < kDirect) {
    pos.root = static_cast<size_t>(logical);
    return pos;
  }
  uint64_t rest = logical - kDirect;
  for (int d = 1; d <= 3; ++d) {
    const uint64_t span = Span(d);
    if (rest < span || d == 3) {
      pos.depth = d;
      pos.root = kDirect + d - 1;
      for (int level = 1; level <= d; ++level) {
        const uint64_t child = Span(d - level);
        pos.slot[level] = static_cast<size_t>(rest / child);
        rest %= child;
      }
      return pos;
    }
    rest -= span;
  }
  return pos;  // not reached
}

uint32_t IndirectTree::RootPointer(size_t slot) const {
  return format::Le32(format::Bytes(inode_.block.data(), inode_.block.size()),
                      4 * slot);
}

void IndirectTree::SetRootPointer(size_t slot, uint32_t value) {
  format::Put32(format::MutableBytes(inode_.block.data(), inode_.block.size()),
                4 * slot, value);
}

absl::Status IndirectTree::CheckIndirect(uint64_t block) const {
  if (block >= block_count_) {
    return Corrupt(absl::StrCat("indirect block pointer ", block,
                                " is outside the filesystem"));
  }
  if (is_metadata_ && is_metadata_(block, 1)) {
    return Corrupt(absl::StrCat("indirect block pointer ", block,
                                " points into filesystem metadata"));
  }
  return absl::OkStatus();
}

absl::Status IndirectTree::CheckData(uint64_t first, uint64_t count) const {
  if (first >= block_count_ || count > block_count_ - first) {
    return Corrupt(absl::StrCat("data block pointer ", first,
                                " is outside the filesystem"));
  }
  if (is_metadata_ && is_metadata_(first, count)) {
    return Corrupt(absl::StrCat("data block pointer ", first,
                                " points into filesystem metadata"));
  }
  return absl::OkStatus();
}

absl::StatusOr<format::Bytes> IndirectTree::ReadArray(Transaction& tx,
                                                      uint64_t block) {
  if (block == 0) {
    return format::Bytes(inode_.block.data(), inode_.block.size());
  }
  E4_RETURN_IF_ERROR(CheckIndirect(block));
  E4_ASSIGN_OR_RETURN(format::Bytes bytes, tx.Read(block));
  if (bytes.size() < 4 * per_block_) {
    return ErrnoError(EIO, absl::StrCat("short indirect block ", block));
  }
  return bytes;
}

absl::Status IndirectTree::SetPointer(Transaction& tx, uint64_t block,
                                      size_t slot, uint32_t value) {
  if (block == 0) {
    SetRootPointer(slot, value);
    return absl::OkStatus();
  }
  E4_ASSIGN_OR_RETURN(format::MutableBytes bytes, tx.Modify(block));
  format::Put32(bytes, 4 * slot, value);
  return absl::OkStatus();
}

void IndirectTree::AddBlocks(uint64_t count) {
  inode_.blocks += count * (block_size_ / 512);
}

void IndirectTree::SubtractBlocks(uint64_t count) {
  const uint64_t sectors = count * (block_size_ / 512);
  inode_.blocks = inode_.blocks > sectors ? inode_.blocks - sectors : 0;
}

// ---------------------------------------------------------------------------
// Lookup.

uint64_t IndirectTree::RootHole(size_t slot, uint64_t offset) const {
  auto span_of = [&](size_t s) {
    return s < kDirect ? uint64_t{1} : Span(static_cast<int>(s - kDirect + 1));
  };
  uint64_t hole = span_of(slot) - offset;
  for (size_t s = slot + 1; s < kRootSlots && RootPointer(s) == 0; ++s) {
    hole += span_of(s);
  }
  return hole;
}

absl::StatusOr<IndirectTree::Leaf> IndirectTree::FindLeaf(Transaction& tx,
                                                          uint64_t logical) {
  const Position pos = Locate(logical);
  Leaf leaf;
  if (pos.depth == 0) {
    leaf.found = true;
    leaf.slot = pos.root;
    return leaf;
  }
  // Offset of `logical` inside the subtree of the pointer at slot[level].
  auto offset_below = [&](int level) {
    uint64_t offset = 0;
    for (int l = level + 1; l <= pos.depth; ++l) {
      offset += pos.slot[l] * Span(pos.depth - l);
    }
    return offset;
  };
  uint64_t block = RootPointer(pos.root);
  if (block == 0) {
    leaf.hole = RootHole(pos.root, logical - SubtreeBase(pos.depth));
    return leaf;
  }
  for (int level = 1; level < pos.depth; ++level) {
    E4_ASSIGN_OR_RETURN(format::Bytes array, ReadArray(tx, block));
    const size_t slot = pos.slot[level];
    const uint32_t next = format::Le32(array, 4 * slot);
    if (next == 0) {
      const uint64_t child = Span(pos.depth - level);
      leaf.hole = child - offset_below(level);
      for (size_t s = slot + 1;
           s < per_block_ && format::Le32(array, 4 * s) == 0; ++s) {
        leaf.hole += child;
      }
      return leaf;
    }
    block = next;
  }
  leaf.found = true;
  leaf.block = block;
  leaf.slot = pos.slot[pos.depth];
  return leaf;
}

absl::StatusOr<BlockMapping> IndirectTree::Map(Transaction& tx,
                                               uint64_t logical) {
  if (logical >= max_logical_) {
    return BlockMapping{
        0, logical < kEndOfFile ? kEndOfFile - logical : uint64_t{1}, false};
  }
  const uint64_t left = max_logical_ - logical;
  E4_ASSIGN_OR_RETURN(Leaf leaf, FindLeaf(tx, logical));
  if (!leaf.found) return BlockMapping{0, std::min(leaf.hole, left), false};
  E4_ASSIGN_OR_RETURN(format::Bytes array, ReadArray(tx, leaf.block));
  const size_t size = leaf.block == 0 ? kDirect : per_block_;
  const uint32_t first = format::Le32(array, 4 * leaf.slot);
  if (first == 0) {
    uint64_t hole;
    if (leaf.block == 0) {
      hole = RootHole(leaf.slot, 0);
    } else {
      hole = 1;
      while (leaf.slot + hole < size &&
             format::Le32(array, 4 * (leaf.slot + hole)) == 0) {
        ++hole;
      }
    }
    return BlockMapping{0, std::min(hole, left), false};
  }
  uint64_t length = 1;
  while (leaf.slot + length < size && length < left &&
         format::Le32(array, 4 * (leaf.slot + length)) == first + length) {
    ++length;
  }
  E4_RETURN_IF_ERROR(CheckData(first, length));
  return BlockMapping{first, length, false};
}

// ---------------------------------------------------------------------------
// Mapping new blocks.

absl::StatusOr<BlockRun> IndirectTree::Allocate(Transaction& tx, uint64_t goal,
                                                uint64_t count) {
  if (goal >= block_count_ || goal >= kPointerLimit) goal = 0;
  E4_ASSIGN_OR_RETURN(BlockRun run,
                      allocator_.AllocateBlocks(tx, goal, count, use_reserve_));
  if (run.count == 0 || run.count > count || run.first == 0) {
    if (run.count != 0) (void)allocator_.FreeBlocks(tx, run.first, run.count);
    return ErrnoError(EIO,
                      absl::StrCat("allocator returned blocks ", run.first, "+",
                                   run.count, " for ", count, " wanted"));
  }
  if (run.first >= kPointerLimit) {
    (void)allocator_.FreeBlocks(tx, run.first, run.count);
    return ErrnoError(ENOSPC, "no free block an indirect map can point at");
  }
  if (run.count > kPointerLimit - run.first) {
    const uint64_t keep = kPointerLimit - run.first;
    (void)allocator_.FreeBlocks(tx, run.first + keep, run.count - keep);
    run.count = keep;
  }
  return run;
}

absl::StatusOr<uint64_t> IndirectTree::NewIndirect(Transaction& tx,
                                                   uint64_t parent, size_t slot,
                                                   uint64_t goal) {
  E4_ASSIGN_OR_RETURN(BlockRun run, Allocate(tx, goal, 1));
  const uint64_t block = run.first;
  absl::Status status = tx.ModifyNew(block).status();
  if (status.ok()) {
    status = SetPointer(tx, parent, slot, static_cast<uint32_t>(block));
  }
  if (!status.ok()) {
    tx.Forget(block);
    (void)allocator_.FreeBlocks(tx, block, 1);
    return status;
  }
  AddBlocks(1);
  return block;
}

absl::StatusOr<BlockMapping> IndirectTree::MapForWrite(Transaction& tx,
                                                       uint64_t logical,
                                                       uint64_t count,
                                                       uint64_t goal,
                                                       bool unwritten) {
  if (unwritten) {
    return ErrnoError(EOPNOTSUPP,
                      "indirect-mapped files cannot hold unwritten blocks");
  }
  if (logical >= max_logical_ || count > max_logical_ - logical) {
    return ErrnoError(EFBIG,
                      absl::StrCat("logical blocks ", logical, "+", count,
                                   " lie past the indirect map's limit"));
  }
  const uint64_t end = logical + count;
  // Where the next data block should go: right after the previous one.
  uint64_t near = 0;
  if (logical > 0 && count > 0) {
    E4_ASSIGN_OR_RETURN(BlockMapping before, Map(tx, logical - 1));
    if (before.physical != 0) near = before.physical + 1;
  }
  struct Made {
    uint64_t parent;
    size_t slot;
    uint64_t block;
  };
  uint64_t cur = logical;
  // One array of data pointers per round.
  while (cur < end) {
    const Position pos = Locate(cur);
    std::vector<Made> made;
    bool mapped = false;
    // Gives back the indirect blocks of this round when no data went under
    // them, so that no empty indirect block stays linked.
    auto fail = [&](absl::Status status) {
      if (!mapped) {
        for (auto it = made.rbegin(); it != made.rend(); ++it) {
          (void)SetPointer(tx, it->parent, it->slot, 0);
          tx.Forget(it->block);
          (void)allocator_.FreeBlocks(tx, it->block, 1);
          SubtractBlocks(1);
        }
      }
      return status;
    };

    uint64_t leaf = 0;
    size_t slot = pos.root;
    size_t size = kDirect;
    if (pos.depth > 0) {
      uint64_t parent = 0;
      size_t parent_slot = pos.root;
      uint64_t block = RootPointer(pos.root);
      for (int level = 1; level <= pos.depth; ++level) {
        if (block == 0) {
          const uint64_t want =
              near != 0 ? near : (parent != 0 ? parent + 1 : goal);
          absl::StatusOr<uint64_t> fresh =
              NewIndirect(tx, parent, parent_slot, want);
          if (!fresh.ok()) return fail(fresh.status());
          made.push_back(Made{parent, parent_slot, *fresh});
          block = *fresh;
          near = block + 1;
        }
        if (level == pos.depth) break;
        absl::StatusOr<format::Bytes> array = ReadArray(tx, block);
        if (!array.ok()) return fail(array.status());
        parent = block;
        parent_slot = pos.slot[level];
        block = format::Le32(*array, 4 * parent_slot);
      }
      leaf = block;
      slot = pos.slot[pos.depth];
      size = per_block_;
    }
    const size_t stop =
        static_cast<size_t>(std::min<uint64_t>(size, slot + (end - cur)));

    absl::StatusOr<format::Bytes> array = ReadArray(tx, leaf);
    if (!array.ok()) return fail(array.status());
    if (near == 0) {
      // The nearest mapped block before, in the same array; else the
      // indirect block itself; else the caller's goal.
      for (size_t s = slot; s-- > 0;) {
        const uint32_t p = format::Le32(*array, 4 * s);
        if (p != 0) {
          near = p + (slot - s);
          break;
        }
      }
      if (near == 0) near = leaf != 0 ? leaf + 1 : goal;
    }
    for (size_t i = slot; i < stop;) {
      array = ReadArray(tx, leaf);
      if (!array.ok()) return fail(array.status());
      const uint32_t p = format::Le32(*array, 4 * i);
      if (p != 0) {
        absl::Status status = CheckData(p, 1);
        if (!status.ok()) return fail(status);
        near = uint64_t{p} + 1;
        ++i;
        continue;
      }
      size_t zeros = 1;
      while (i + zeros < stop && format::Le32(*array, 4 * (i + zeros)) == 0) {
        ++zeros;
      }
      absl::StatusOr<BlockRun> run = Allocate(tx, near, zeros);
      if (!run.ok()) return fail(run.status());
      absl::Status status = absl::OkStatus();
      if (leaf == 0) {
        for (uint64_t k = 0; k < run->count; ++k) {
          SetRootPointer(i + k, static_cast<uint32_t>(run->first + k));
        }
      } else {
        absl::StatusOr<format::MutableBytes> bytes = tx.Modify(leaf);
        if (bytes.ok()) {
          for (uint64_t k = 0; k < run->count; ++k) {
            format::Put32(*bytes, 4 * (i + k),
                          static_cast<uint32_t>(run->first + k));
          }
        }
        status = bytes.status();
      }
      if (!status.ok()) {
        (void)allocator_.FreeBlocks(tx, run->first, run->count);
        return fail(status);
      }
      AddBlocks(run->count);
      mapped = true;
      near = run->first + run->count;
      i += run->count;
    }
    cur += stop - slot;
  }
  return Map(tx, logical);
}

// ---------------------------------------------------------------------------
// Removal.

absl::Status IndirectTree::FreeDataRun(Transaction& tx, uint64_t block,
                                       size_t slot, uint32_t first,
                                       size_t count) {
  E4_RETURN_IF_ERROR(CheckData(first, count));
  E4_RETURN_IF_ERROR(allocator_.FreeBlocks(tx, first, count));
  SubtractBlocks(count);
  if (block == 0) {
    for (size_t k = 0; k < count; ++k) SetRootPointer(slot + k, 0);
    return absl::OkStatus();
  }
  E4_ASSIGN_OR_RETURN(format::MutableBytes bytes, tx.Modify(block));
  std::fill(bytes.begin() + 4 * slot, bytes.begin() + 4 * (slot + count), 0);
  return absl::OkStatus();
}

absl::Status IndirectTree::FreeIndirect(Transaction& tx, uint64_t parent,
                                        size_t slot, uint64_t block) {
  E4_RETURN_IF_ERROR(allocator_.FreeBlocks(tx, block, 1));
  SubtractBlocks(1);
  tx.Forget(block);
  return SetPointer(tx, parent, slot, 0);
}

absl::StatusOr<bool> IndirectTree::RemoveIn(Transaction& tx, uint64_t block,
                                            int levels, uint64_t lo,
                                            uint64_t hi) {
  std::vector<uint32_t> entries(per_block_);
  {
    E4_ASSIGN_OR_RETURN(format::Bytes array, ReadArray(tx, block));
    for (size_t s = 0; s < per_block_; ++s) {
      entries[s] = format::Le32(array, 4 * s);
    }
  }
  const uint64_t child = Span(levels - 1);
  const size_t first_slot = static_cast<size_t>(lo / child);
  const size_t last_slot = static_cast<size_t>((hi - 1) / child + 1);
  if (levels == 1) {
    for (size_t i = first_slot; i < last_slot;) {
      const uint32_t p = entries[i];
      if (p == 0) {
        ++i;
        continue;
      }
      size_t length = 1;
      while (i + length < last_slot &&
             entries[i + length] == uint64_t{p} + length) {
        ++length;
      }
      E4_RETURN_IF_ERROR(FreeDataRun(tx, block, i, p, length));
      std::fill(entries.begin() + i, entries.begin() + i + length, 0);
      i += length;
    }
  } else {
    for (size_t s = first_slot; s < last_slot; ++s) {
      const uint32_t p = entries[s];
      if (p == 0) continue;
      const uint64_t start = s * child;
      const uint64_t sub_lo = std::max(lo, start) - start;
      const uint64_t sub_hi = std::min(hi, start + child) - start;
      E4_ASSIGN_OR_RETURN(bool empty,
                          RemoveIn(tx, p, levels - 1, sub_lo, sub_hi));
      if (empty) {
        E4_RETURN_IF_ERROR(FreeIndirect(tx, block, s, p));
        entries[s] = 0;
      }
    }
  }
  return std::all_of(entries.begin(), entries.end(),
                     [](uint32_t p) { return p == 0; });
}

absl::Status IndirectTree::Remove(Transaction& tx, uint64_t first,
                                  uint64_t end) {
  end = std::min(end, max_logical_);
  if (first >= end) return absl::OkStatus();
  if (first < kDirect) {
    const size_t to = static_cast<size_t>(std::min<uint64_t>(end, kDirect));
    for (size_t i = static_cast<size_t>(first); i < to;) {
      const uint32_t p = RootPointer(i);
      if (p == 0) {
        ++i;
        continue;
      }
      size_t length = 1;
      while (i + length < to &&
             RootPointer(i + length) == uint64_t{p} + length) {
        ++length;
      }
      E4_RETURN_IF_ERROR(FreeDataRun(tx, 0, i, p, length));
      i += length;
    }
  }
  for (int d = 1; d <= 3; ++d) {
    const uint64_t base = SubtreeBase(d);
    if (base >= end) break;
    const uint64_t lo = std::max(first, base);
    const uint64_t hi = std::min(end, base + Span(d));
    const size_t slot = kDirect + d - 1;
    const uint32_t p = RootPointer(slot);
    if (lo >= hi || p == 0) continue;
    E4_ASSIGN_OR_RETURN(bool empty, RemoveIn(tx, p, d, lo - base, hi - base));
    if (empty) E4_RETURN_IF_ERROR(FreeIndirect(tx, 0, slot, p));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// SEEK_DATA / SEEK_HOLE.

absl::StatusOr<std::optional<uint64_t>> IndirectTree::FirstIn(
    Transaction& tx, uint64_t block, int levels, uint64_t from,
    std::set<uint64_t>& empty) {
  // Keyed by level too: a block can be a different subtree at another level.
  const uint64_t key = block * 4 + static_cast<uint64_t>(levels);
  if (from == 0 && empty.count(key)) return std::nullopt;
  E4_ASSIGN_OR_RETURN(format::Bytes array, ReadArray(tx, block));
  const uint64_t child = Span(levels - 1);
  const size_t first_slot = static_cast<size_t>(from / child);
  for (size_t s = first_slot; s < per_block_; ++s) {
    const uint32_t p = format::Le32(array, 4 * s);
    if (p == 0) continue;
    if (levels == 1) return uint64_t{s};
    const uint64_t sub_from = s == first_slot ? from % child : 0;
    E4_ASSIGN_OR_RETURN(std::optional<uint64_t> found,
                        FirstIn(tx, p, levels - 1, sub_from, empty));
    if (found) return s * child + *found;
  }
  // A subtree searched in full and found empty is not searched again (a
  // hostile map may point at it from many slots).
  if (from == 0) empty.insert(key);
  return std::nullopt;
}

absl::StatusOr<std::optional<uint64_t>> IndirectTree::FirstMapped(
    Transaction& tx, uint64_t logical) {
  for (uint64_t s = logical; s < kDirect; ++s) {
    if (RootPointer(static_cast<size_t>(s)) != 0) return s;
  }
  std::set<uint64_t> empty;
  for (int d = 1; d <= 3; ++d) {
    const uint64_t base = SubtreeBase(d);
    if (base >= max_logical_) break;
    if (logical >= base + Span(d)) continue;
    const uint32_t p = RootPointer(kDirect + d - 1);
    if (p == 0) continue;
    const uint64_t from = logical > base ? logical - base : 0;
    E4_ASSIGN_OR_RETURN(std::optional<uint64_t> found,
                        FirstIn(tx, p, d, from, empty));
    if (found) {
      if (base + *found >= max_logical_) return std::nullopt;
      return base + *found;
    }
  }
  return std::nullopt;
}

absl::StatusOr<uint64_t> IndirectTree::MappedRunIn(Transaction& tx,
                                                   uint64_t block, int levels,
                                                   uint64_t from,
                                                   std::set<uint64_t>& full) {
  const uint64_t span = Span(levels);
  // Keyed by level too, as in FirstIn.
  const uint64_t key = block * 4 + static_cast<uint64_t>(levels);
  if (from == 0 && full.count(key)) return span;
  E4_ASSIGN_OR_RETURN(format::Bytes array, ReadArray(tx, block));
  const uint64_t child = Span(levels - 1);
  const size_t first_slot = static_cast<size_t>(from / child);
  uint64_t run = 0;
  for (size_t s = first_slot; s < per_block_; ++s) {
    const uint32_t p = format::Le32(array, 4 * s);
    if (p == 0) return run;
    if (levels == 1) {
      ++run;
      continue;
    }
    const uint64_t sub_from = s == first_slot ? from % child : 0;
    E4_ASSIGN_OR_RETURN(uint64_t below,
                        MappedRunIn(tx, p, levels - 1, sub_from, full));
    run += below;
    if (below < child - sub_from) return run;
  }
  // A subtree mapped in full is not walked again (a hostile map may point
  // at it from every slot, which would make the run take one step per
  // array over billions of blocks).
  if (from == 0) full.insert(key);
  return run;
}

absl::StatusOr<std::optional<MappedExtent>> IndirectTree::NextExtent(
    Transaction& tx, uint64_t logical) {
  if (logical >= max_logical_) return std::nullopt;
  E4_ASSIGN_OR_RETURN(std::optional<uint64_t> start, FirstMapped(tx, logical));
  if (!start) return std::nullopt;
  // The run goes on through the direct pointers and the subtrees that follow
  // while they are mapped.
  uint64_t cur = *start;
  std::set<uint64_t> full;
  while (cur < max_logical_) {
    if (cur < kDirect) {
      if (RootPointer(static_cast<size_t>(cur)) == 0) break;
      ++cur;
      continue;
    }
    int d = 1;
    while (d < 3 && cur >= SubtreeBase(d) + Span(d)) ++d;
    const uint64_t base = SubtreeBase(d);
    const uint32_t p = RootPointer(kDirect + d - 1);
    if (p == 0) break;
    const uint64_t from = cur - base;
    E4_ASSIGN_OR_RETURN(uint64_t run, MappedRunIn(tx, p, d, from, full));
    cur += run;
    if (run < Span(d) - from) break;
  }
  cur = std::min(cur, max_logical_);
  return MappedExtent{*start, cur - *start, false};
}

}  // namespace ext4
