// Extent tree changes. Every operation finds the leaf for a logical block
// (the path from the root down, read through the transaction), edits that
// leaf's entries in memory, and hands the path to Update(), which writes the
// leaf and repairs everything above it: a node with too many entries splits
// (the root grows a level instead), an empty node is freed and its index
// entry removed, and a changed first entry moves the index keys above it.
#include "ext4/extent_tree.h"

#include <algorithm>
#include <limits>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "ext4/format/endian.h"

namespace ext4 {
namespace {

using format::ExtentIndex;
using format::ExtentLeaf;
using format::ExtentNode;

constexpr size_t kNoHint = std::numeric_limits<size_t>::max();
constexpr size_t kDepthOffset = 6;  // eh_depth in the header

size_t EntryCount(const ExtentNode& node) {
  return node.header.depth == 0 ? node.leaves.size() : node.indexes.size();
}

// The first logical block a non-empty node covers.
uint32_t FirstLogical(const ExtentNode& node) {
  return node.header.depth == 0 ? node.leaves.front().logical
                                : node.indexes.front().logical;
}

uint64_t LeafEnd(const ExtentLeaf& leaf) {
  return uint64_t{leaf.logical} + leaf.length;
}

uint32_t MaxLength(bool unwritten) {
  return unwritten ? format::kUnwrittenExtentMaxLength
                   : format::kInitializedExtentMaxLength;
}

// `a` and `b` (in that order) can become one extent.
bool CanMerge(const ExtentLeaf& a, const ExtentLeaf& b) {
  return a.unwritten == b.unwritten && LeafEnd(a) == b.logical &&
         a.physical + a.length == b.physical &&
         uint64_t{a.length} + b.length <= MaxLength(a.unwritten);
}

ExtentLeaf MakeLeaf(uint64_t logical, uint64_t length, bool unwritten,
                    uint64_t physical) {
  ExtentLeaf leaf;
  leaf.logical = static_cast<uint32_t>(logical);
  leaf.length = static_cast<uint32_t>(length);
  leaf.unwritten = unwritten;
  leaf.physical = physical;
  return leaf;
}

}  // namespace

ExtentTree::ExtentTree(format::Inode& inode, uint32_t block_size,
                       bool metadata_csum, uint32_t inode_seed,
                       BlockAllocator& allocator)
    : inode_(inode),
      block_size_(block_size),
      metadata_csum_(metadata_csum),
      seed_(inode_seed),
      allocator_(allocator) {}

void ExtentTree::InitEmpty(format::Inode& inode) {
  inode.block.fill(0);
  ExtentNode root;
  root.header.max = static_cast<uint16_t>(
      format::ExtentNodeCapacity(format::kExtentRootSize));
  format::SerializeExtentNode(
      root, format::MutableBytes(inode.block.data(), inode.block.size()));
  inode.flags |= format::kInodeFlagExtents;
}

int ExtentTree::depth() const {
  return format::Le16(format::Bytes(inode_.block.data(), inode_.block.size()),
                      kDepthOffset);
}

void ExtentTree::AddBlocks(uint64_t count) {
  inode_.blocks += count * (block_size_ / 512);
}

void ExtentTree::SubtractBlocks(uint64_t count) {
  const uint64_t sectors = count * (block_size_ / 512);
  inode_.blocks = inode_.blocks > sectors ? inode_.blocks - sectors : 0;
}

absl::StatusOr<ExtentNode> ExtentTree::ReadNode(Transaction& tx, uint64_t block,
                                                int depth) {
  E4_ASSIGN_OR_RETURN(format::Bytes raw, tx.Read(block));
  if (metadata_csum_) {
    absl::Status status = format::VerifyExtentBlockChecksum(raw, seed_);
    if (!status.ok()) {
      return Corrupt(absl::StrCat("extent block ", block, ": ",
                                  std::string(status.message())));
    }
  }
  auto node = format::ParseExtentNode(raw, depth);
  if (!node.ok()) {
    return Corrupt(absl::StrCat("extent block ", block, ": ",
                                std::string(node.status().message())));
  }
  return std::move(node).value();
}

absl::StatusOr<ExtentTree::Path> ExtentTree::LoadPath(Transaction& tx,
                                                      uint64_t logical) {
  Path path;
  {
    auto root = format::ParseExtentNode(
        format::Bytes(inode_.block.data(), inode_.block.size()), -1);
    if (!root.ok()) {
      return Corrupt(
          absl::StrCat("extent root: ", std::string(root.status().message())));
    }
    path.push_back(Level{0, std::move(root).value(), 0});
  }
  // The logical range the current node may cover, from the keys above it.
  uint64_t start = 0;
  uint64_t end = kMaxLogical;
  while (true) {
    Level& level = path.back();
    const ExtentNode& node = level.node;
    const size_t count = EntryCount(node);
    if (count > 0) {
      const uint64_t last = node.header.depth == 0
                                ? LeafEnd(node.leaves.back())
                                : uint64_t{node.indexes.back().logical} + 1;
      if (FirstLogical(node) < start || last > end) {
        return Corrupt(absl::StrCat("extent node at block ", level.block,
                                    " maps logical blocks ", FirstLogical(node),
                                    "..", last, " outside its index range ",
                                    start, "..", end));
      }
    }
    if (node.header.depth == 0) break;
    const auto& indexes = node.indexes;
    auto it = std::upper_bound(indexes.begin(), indexes.end(), logical,
                               [](uint64_t value, const ExtentIndex& index) {
                                 return value < index.logical;
                               });
    const size_t i = it == indexes.begin() ? 0 : (it - indexes.begin()) - 1;
    level.index = i;
    start = indexes[i].logical;
    if (i + 1 < indexes.size()) end = indexes[i + 1].logical;
    const uint64_t child = indexes[i].child;
    const int child_depth = node.header.depth - 1;
    E4_ASSIGN_OR_RETURN(ExtentNode next, ReadNode(tx, child, child_depth));
    path.push_back(Level{child, std::move(next), 0});
  }
  return path;
}

uint64_t ExtentTree::NextLeafStart(const Path& path) {
  for (size_t l = path.size() - 1; l-- > 0;) {
    const Level& level = path[l];
    if (level.index + 1 < level.node.indexes.size()) {
      return level.node.indexes[level.index + 1].logical;
    }
  }
  return kMaxLogical;
}

absl::StatusOr<ExtentTree::Lookup> ExtentTree::Find(Transaction& tx,
                                                    uint64_t logical) {
  Lookup lookup;
  E4_ASSIGN_OR_RETURN(lookup.path, LoadPath(tx, logical));
  const auto& leaves = lookup.path.back().node.leaves;
  auto it = std::upper_bound(leaves.begin(), leaves.end(), logical,
                             [](uint64_t value, const ExtentLeaf& leaf) {
                               return value < leaf.logical;
                             });
  lookup.pos = it - leaves.begin();
  if (lookup.pos > 0 && logical < LeafEnd(leaves[lookup.pos - 1])) {
    lookup.mapped = true;
    return lookup;
  }
  uint64_t hole_end = NextLeafStart(lookup.path);
  if (lookup.pos < leaves.size()) {
    hole_end = std::min<uint64_t>(hole_end, leaves[lookup.pos].logical);
  }
  // The keys and the leaf both lie above `logical`; anything else is a tree
  // LoadPath should have refused.
  if (hole_end <= logical) {
    return Corrupt(absl::StrCat("extent tree: hole at logical block ", logical,
                                " has no end"));
  }
  lookup.hole_end = hole_end;
  return lookup;
}

absl::StatusOr<BlockMapping> ExtentTree::Map(Transaction& tx,
                                             uint64_t logical) {
  if (logical >= kMaxLogical) return BlockMapping{0, 1, false};
  E4_ASSIGN_OR_RETURN(Lookup lookup, Find(tx, logical));
  if (!lookup.mapped) {
    return BlockMapping{0, lookup.hole_end - logical, false};
  }
  const ExtentLeaf& leaf = lookup.path.back().node.leaves[lookup.pos - 1];
  return BlockMapping{leaf.physical + (logical - leaf.logical),
                      LeafEnd(leaf) - logical, leaf.unwritten};
}

absl::StatusOr<std::optional<MappedExtent>> ExtentTree::NextExtent(
    Transaction& tx, uint64_t logical) {
  uint64_t cur = logical;
  // Each round moves to a leaf that starts strictly later.
  while (cur < kMaxLogical) {
    E4_ASSIGN_OR_RETURN(Lookup lookup, Find(tx, cur));
    const auto& leaves = lookup.path.back().node.leaves;
    if (lookup.mapped) {
      const ExtentLeaf& leaf = leaves[lookup.pos - 1];
      return MappedExtent{cur, LeafEnd(leaf) - cur, leaf.unwritten};
    }
    if (lookup.pos < leaves.size()) {
      const ExtentLeaf& leaf = leaves[lookup.pos];
      return MappedExtent{leaf.logical, leaf.length, leaf.unwritten};
    }
    cur = lookup.hole_end;
  }
  return std::nullopt;
}

absl::StatusOr<BlockMapping> ExtentTree::MapForWrite(Transaction& tx,
                                                     uint64_t logical,
                                                     uint64_t count,
                                                     uint64_t goal,
                                                     bool unwritten) {
  if (logical >= kMaxLogical || count > kMaxLogical - logical) {
    return ErrnoError(EFBIG,
                      absl::StrCat("logical blocks ", logical, "+", count,
                                   " lie past the extent tree's limit"));
  }
  const uint64_t end = logical + count;
  uint64_t cur = logical;
  while (cur < end) {
    E4_ASSIGN_OR_RETURN(Lookup lookup, Find(tx, cur));
    const auto& leaves = lookup.path.back().node.leaves;
    if (lookup.mapped) {
      cur = std::min(end, LeafEnd(leaves[lookup.pos - 1]));
      continue;
    }
    const uint64_t want = std::min<uint64_t>(
        {end - cur, lookup.hole_end - cur, MaxLength(unwritten)});
    uint64_t near = goal;
    if (lookup.pos > 0) {
      const ExtentLeaf& prev = leaves[lookup.pos - 1];
      near = prev.physical + (cur - prev.logical);
    }
    E4_ASSIGN_OR_RETURN(
        BlockRun run,
        owner_ != 0 ? allocator_.AllocateFileBlocks(tx, owner_, cur, near, want,
                                                    use_reserve_)
                    : allocator_.AllocateBlocks(tx, near, want, use_reserve_));
    if (run.count == 0 || run.count > want || run.first == 0 ||
        run.first > format::kMaxExtentPhysicalBlock - run.count) {
      if (run.count != 0) (void)allocator_.FreeBlocks(tx, run.first, run.count);
      return ErrnoError(
          EIO, absl::StrCat("allocator returned blocks ", run.first, "+",
                            run.count, " for ", want, " wanted"));
    }
    absl::Status status =
        Insert(tx, lookup, MakeLeaf(cur, run.count, unwritten, run.first));
    if (!status.ok()) {
      (void)allocator_.FreeBlocks(tx, run.first, run.count);
      return status;
    }
    AddBlocks(run.count);
    cur += run.count;
  }
  return Map(tx, logical);
}

absl::Status ExtentTree::Insert(Transaction& tx, Lookup& lookup,
                                const ExtentLeaf& extent) {
  auto& leaves = lookup.path.back().node.leaves;
  const size_t pos = lookup.pos;
  size_t hint = kNoHint;
  if (pos > 0 && CanMerge(leaves[pos - 1], extent)) {
    leaves[pos - 1].length += extent.length;
    if (pos < leaves.size() && CanMerge(leaves[pos - 1], leaves[pos])) {
      leaves[pos - 1].length += leaves[pos].length;
      leaves.erase(leaves.begin() + pos);
    }
  } else if (pos < leaves.size() && CanMerge(extent, leaves[pos])) {
    leaves[pos].logical = extent.logical;
    leaves[pos].physical = extent.physical;
    leaves[pos].length += extent.length;
  } else {
    leaves.insert(leaves.begin() + pos, extent);
    hint = pos;
  }
  return Update(tx, lookup.path, lookup.path.size() - 1, hint);
}

absl::Status ExtentTree::MarkWritten(Transaction& tx, uint64_t logical,
                                     uint64_t count) {
  return Convert(tx, logical, count, /*to_unwritten=*/false);
}

absl::Status ExtentTree::MarkUnwritten(Transaction& tx, uint64_t logical,
                                       uint64_t count) {
  return Convert(tx, logical, count, /*to_unwritten=*/true);
}

absl::Status ExtentTree::Convert(Transaction& tx, uint64_t logical,
                                 uint64_t count, bool to_unwritten) {
  if (logical >= kMaxLogical || count == 0) return absl::OkStatus();
  const uint64_t end =
      std::min(kMaxLogical, logical + std::min(count, kMaxLogical));
  uint64_t cur = logical;
  while (cur < end) {
    E4_ASSIGN_OR_RETURN(Lookup lookup, Find(tx, cur));
    if (!lookup.mapped) {
      cur = lookup.hole_end;
      continue;
    }
    auto& leaves = lookup.path.back().node.leaves;
    const size_t i = lookup.pos - 1;
    const ExtentLeaf x = leaves[i];
    const uint64_t x_end = LeafEnd(x);
    if (x.unwritten == to_unwritten) {
      cur = x_end;
      continue;
    }
    const uint64_t piece_end = std::min(x_end, end);
    // x becomes: the part before `cur` as it was, the converted middle (in
    // pieces no longer than the new state allows), the part after as it was.
    std::vector<ExtentLeaf> pieces;
    if (x.logical < cur) {
      pieces.push_back(
          MakeLeaf(x.logical, cur - x.logical, x.unwritten, x.physical));
    }
    const size_t first_mid = i + pieces.size();
    for (uint64_t s = cur; s < piece_end;) {
      const uint64_t len =
          std::min<uint64_t>(piece_end - s, MaxLength(to_unwritten));
      pieces.push_back(
          MakeLeaf(s, len, to_unwritten, x.physical + (s - x.logical)));
      s += len;
    }
    const size_t last_mid = i + pieces.size() - 1;
    if (piece_end < x_end) {
      pieces.push_back(MakeLeaf(piece_end, x_end - piece_end, x.unwritten,
                                x.physical + (piece_end - x.logical)));
    }
    leaves.erase(leaves.begin() + i);
    leaves.insert(leaves.begin() + i, pieces.begin(), pieces.end());
    // The converted pieces may now join the extents around x.
    if (last_mid + 1 < leaves.size() &&
        CanMerge(leaves[last_mid], leaves[last_mid + 1])) {
      leaves[last_mid].length += leaves[last_mid + 1].length;
      leaves.erase(leaves.begin() + last_mid + 1);
    }
    if (first_mid > 0 && CanMerge(leaves[first_mid - 1], leaves[first_mid])) {
      leaves[first_mid - 1].length += leaves[first_mid].length;
      leaves.erase(leaves.begin() + first_mid);
    }
    E4_RETURN_IF_ERROR(
        Update(tx, lookup.path, lookup.path.size() - 1, kNoHint));
    cur = piece_end;
  }
  return Shrink(tx);
}

absl::Status ExtentTree::Remove(Transaction& tx, uint64_t first, uint64_t end) {
  end = std::min(end, kMaxLogical);
  if (first >= end) return absl::OkStatus();
  uint64_t cur = first;
  // One leaf per round; each round moves to a leaf that starts later.
  while (cur < end) {
    E4_ASSIGN_OR_RETURN(Path path, LoadPath(tx, cur));
    const uint64_t next_leaf = NextLeafStart(path);
    auto& leaves = path.back().node.leaves;
    std::vector<ExtentLeaf> kept;
    std::vector<BlockRun> freed;
    size_t hint = kNoHint;
    for (const ExtentLeaf& x : leaves) {
      const uint64_t xs = x.logical;
      const uint64_t xe = LeafEnd(x);
      if (xe <= first || xs >= end) {
        kept.push_back(x);
        continue;
      }
      if (xs < first) {
        kept.push_back(MakeLeaf(xs, first - xs, x.unwritten, x.physical));
      }
      const uint64_t from = std::max(xs, first);
      const uint64_t to = std::min(xe, end);
      freed.push_back(BlockRun{x.physical + (from - xs), to - from});
      if (xe > end) {
        kept.push_back(
            MakeLeaf(end, xe - end, x.unwritten, x.physical + (end - xs)));
        if (xs < first) hint = kept.size() - 1;
      }
    }
    if (!freed.empty()) {
      leaves = std::move(kept);
      // The tree is consistent before any data block is released.
      E4_RETURN_IF_ERROR(Update(tx, path, path.size() - 1, hint));
      for (const BlockRun& run : freed) {
        E4_RETURN_IF_ERROR(allocator_.FreeBlocks(tx, run.first, run.count));
        SubtractBlocks(run.count);
      }
    }
    cur = next_leaf;
  }
  return Shrink(tx);
}

uint64_t ExtentTree::TreeBlockGoal(const Path& path) const {
  for (size_t l = path.size(); l-- > 0;) {
    if (path[l].block != 0) return path[l].block;
  }
  const auto& leaves = path.back().node.leaves;
  return leaves.empty() ? 0 : leaves.front().physical;
}

absl::Status ExtentTree::Update(Transaction& tx, Path& path, size_t level,
                                size_t hint) {
  // How many nodes split on the way up (one new block each; the root grows
  // instead, also one block).
  size_t need = 0;
  size_t l = level;
  size_t entries = EntryCount(path[l].node);
  while (entries > path[l].node.header.max) {
    ++need;
    if (l == 0) {
      if (path[0].node.header.depth >= format::kMaxExtentDepth) {
        return ErrnoError(EFBIG, absl::StrCat("extent tree is at its depth "
                                              "limit of ",
                                              format::kMaxExtentDepth));
      }
      break;
    }
    --l;
    entries = EntryCount(path[l].node) + 1;
  }
  std::vector<uint64_t> reserved;
  uint64_t goal = TreeBlockGoal(path);
  absl::Status status;
  for (size_t i = 0; i < need; ++i) {
    auto run = allocator_.AllocateBlocks(tx, goal, 1, use_reserve_);
    if (run.ok() && (run->count != 1 || run->first == 0)) {
      if (run->count != 0) {
        (void)allocator_.FreeBlocks(tx, run->first, run->count);
      }
      run = ErrnoError(EIO, "allocator returned a bad run for a tree block");
    }
    if (!run.ok()) {
      status = run.status();
      break;
    }
    reserved.push_back(run->first);
    goal = run->first + 1;
  }
  if (status.ok()) {
    // Apply takes blocks from the back: hand them out in allocation order.
    std::reverse(reserved.begin(), reserved.end());
    status = Apply(tx, path, level, hint, reserved);
  }
  for (uint64_t block : reserved) {
    (void)allocator_.FreeBlocks(tx, block, 1);
  }
  return status;
}

absl::Status ExtentTree::Apply(Transaction& tx, Path& path, size_t level,
                               size_t hint, std::vector<uint64_t>& reserved) {
  Level& current = path[level];
  ExtentNode& node = current.node;
  const size_t entries = EntryCount(node);

  if (entries == 0) {
    if (level == 0) {
      node.header.depth = 0;
      node.indexes.clear();
      node.leaves.clear();
      return WriteNode(tx, 0, node, /*fresh=*/false);
    }
    E4_RETURN_IF_ERROR(FreeTreeBlock(tx, current.block));
    Level& parent = path[level - 1];
    parent.node.indexes.erase(parent.node.indexes.begin() + parent.index);
    return Apply(tx, path, level - 1, kNoHint, reserved);
  }

  if (entries > node.header.max) {
    if (reserved.empty()) {
      return ErrnoError(EIO, "extent tree: no block reserved for a split");
    }
    const uint64_t block = reserved.back();
    reserved.pop_back();
    ExtentNode moved;
    moved.header.depth = node.header.depth;
    moved.header.max = static_cast<uint16_t>(
        std::min<size_t>(format::ExtentNodeCapacity(block_size_), 0xFFFF));

    if (level == 0) {
      // The root in the inode is full: its entries move to a new block and
      // the root becomes one index entry above it.
      moved.leaves = std::move(node.leaves);
      moved.indexes = std::move(node.indexes);
      E4_RETURN_IF_ERROR(WriteNode(tx, block, moved, /*fresh=*/true));
      AddBlocks(1);
      node.leaves.clear();
      node.indexes.clear();
      node.header.depth = moved.header.depth + 1;
      node.indexes.push_back(ExtentIndex{FirstLogical(moved), block});
      return WriteNode(tx, 0, node, /*fresh=*/false);
    }

    // An append splits off just the new last entry, so that files written
    // in order keep full nodes; anything else splits in half.
    size_t keep = hint + 1 == entries ? entries - 1 : (entries + 1) / 2;
    keep = std::min<size_t>(keep, node.header.max);
    if (node.header.depth == 0) {
      moved.leaves.assign(node.leaves.begin() + keep, node.leaves.end());
      node.leaves.resize(keep);
    } else {
      moved.indexes.assign(node.indexes.begin() + keep, node.indexes.end());
      node.indexes.resize(keep);
    }
    E4_RETURN_IF_ERROR(WriteNode(tx, block, moved, /*fresh=*/true));
    AddBlocks(1);
    E4_RETURN_IF_ERROR(WriteNode(tx, current.block, node, /*fresh=*/false));
    Level& parent = path[level - 1];
    auto& indexes = parent.node.indexes;
    indexes[parent.index].logical = FirstLogical(node);
    indexes.insert(indexes.begin() + parent.index + 1,
                   ExtentIndex{FirstLogical(moved), block});
    return Apply(tx, path, level - 1, parent.index + 1, reserved);
  }

  E4_RETURN_IF_ERROR(WriteNode(tx, current.block, node, /*fresh=*/false));
  if (level > 0) {
    Level& parent = path[level - 1];
    const uint32_t first = FirstLogical(node);
    if (parent.node.indexes[parent.index].logical != first) {
      parent.node.indexes[parent.index].logical = first;
      return Apply(tx, path, level - 1, kNoHint, reserved);
    }
  }
  return absl::OkStatus();
}

absl::Status ExtentTree::WriteNode(Transaction& tx, uint64_t block,
                                   const ExtentNode& node, bool fresh) {
  if (block == 0) {
    format::SerializeExtentNode(
        node, format::MutableBytes(inode_.block.data(), inode_.block.size()));
    return absl::OkStatus();
  }
  format::MutableBytes raw;
  if (fresh) {
    E4_ASSIGN_OR_RETURN(raw, tx.ModifyNew(block));
  } else {
    E4_ASSIGN_OR_RETURN(raw, tx.Modify(block));
  }
  format::SerializeExtentNode(node, raw);
  if (metadata_csum_) format::SetExtentBlockChecksum(raw, seed_);
  return absl::OkStatus();
}

absl::Status ExtentTree::FreeTreeBlock(Transaction& tx, uint64_t block) {
  E4_RETURN_IF_ERROR(allocator_.FreeBlocks(tx, block, 1));
  tx.Forget(block);
  SubtractBlocks(1);
  return absl::OkStatus();
}

absl::Status ExtentTree::Shrink(Transaction& tx) {
  // Each round removes a level, so this ends within the depth limit.
  for (int round = 0; round <= format::kMaxExtentDepth; ++round) {
    auto root = format::ParseExtentNode(
        format::Bytes(inode_.block.data(), inode_.block.size()), -1);
    if (!root.ok()) {
      return Corrupt(
          absl::StrCat("extent root: ", std::string(root.status().message())));
    }
    if (root->header.depth == 0 || root->indexes.size() != 1) break;
    const uint64_t child_block = root->indexes[0].child;
    E4_ASSIGN_OR_RETURN(ExtentNode child,
                        ReadNode(tx, child_block, root->header.depth - 1));
    if (EntryCount(child) > root->header.max) break;
    child.header.max = root->header.max;
    E4_RETURN_IF_ERROR(WriteNode(tx, 0, child, /*fresh=*/false));
    E4_RETURN_IF_ERROR(FreeTreeBlock(tx, child_block));
  }
  return absl::OkStatus();
}

}  // namespace ext4
