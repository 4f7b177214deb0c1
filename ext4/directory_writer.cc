#include "ext4/directory_writer.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "ext4/errno_status.h"
#include "ext4/format/dirent.h"
#include "ext4/format/dx_hash.h"
#include "ext4/format/htree.h"

namespace ext4 {
namespace {

using format::Bytes;
using format::MutableBytes;

constexpr uint32_t kInlineHeader = 4;  // the parent inode number
constexpr uint32_t kInlineIBlockSize = 60;

std::string BlockName(uint32_t logical) {
  return "directory block " + std::to_string(logical);
}

absl::Status CheckContext(const DirectoryContext& ctx) {
  if (ctx.block_size < 1024 || ctx.block_size > 65536 ||
      (ctx.block_size & (ctx.block_size - 1)) != 0) {
    return ErrnoError(EINVAL, "bad directory block size");
  }
  return absl::OkStatus();
}

// A name that may be created: 1..255 bytes, not "." or "..", no '/' or NUL.
absl::Status CheckNewName(std::string_view name) {
  if (name.size() > format::kDirNameMax) {
    return ErrnoError(ENAMETOOLONG, "name too long");
  }
  if (name.empty() || name == "." || name == ".." ||
      name.find('/') != std::string_view::npos ||
      name.find('\0') != std::string_view::npos) {
    return ErrnoError(EINVAL, "invalid name \"" + std::string(name) + "\"");
  }
  return absl::OkStatus();
}

// A name that an existing entry may have (for removal and replacement).
absl::Status CheckExistingName(std::string_view name) {
  if (name.size() > format::kDirNameMax) {
    return ErrnoError(ENAMETOOLONG, "name too long");
  }
  if (name == "." || name == "..") {
    return ErrnoError(EINVAL, "\"" + std::string(name) + "\" is not a name");
  }
  if (name.empty() || name.find('/') != std::string_view::npos ||
      name.find('\0') != std::string_view::npos) {
    return ErrnoError(ENOENT, "no entry \"" + std::string(name) + "\"");
  }
  return absl::OkStatus();
}

absl::Status NotFound(std::string_view name) {
  return ErrnoError(ENOENT, "no entry \"" + std::string(name) + "\"");
}

uint8_t FileTypeOf(const DirectoryContext& ctx, uint32_t mode) {
  return ctx.filetype ? format::ModeToDirFileType(mode) : 0;
}

uint8_t DirFileType(const DirectoryContext& ctx) {
  return ctx.filetype ? format::kFtDirectory : 0;
}

// Where the records of a leaf end: before the checksum tail, if any.
uint32_t EntryEnd(const DirectoryContext& ctx) {
  return ctx.block_size - (ctx.metadata_csum ? format::kDirCsumTailSize : 0);
}

uint32_t RecLenAt(Bytes block, uint32_t offset) {
  return format::DecodeRecLen(format::Le16(block, offset + 4),
                              static_cast<uint32_t>(block.size()));
}

// A used record, copied out of its block.
struct Item {
  std::string name;
  uint32_t inode = 0;
  uint8_t file_type = 0;
  uint32_t major = 0;
  uint32_t minor = 0;
};

// The position of a record.
struct Location {
  uint32_t logical = 0;
  uint32_t offset = 0;
};

// ---------------------------------------------------------------------------
// Record-level editing inside one validated block (or inline region).

// The room a used record takes: its name's record length, never less than
// the smallest record readers accept (a used record with an empty name,
// which only corruption makes, would otherwise shrink to 8 bytes).
uint32_t UsedRecLen(size_t name_len) {
  return std::max(format::DirRecLen(static_cast<uint32_t>(name_len)),
                  format::DirRecLen(1));
}

// The first record with room for a name of `name_len` bytes: an unused
// record at least that long, or a used one whose slack is. `block` is a
// validated region whose records end at `end`.
std::optional<uint32_t> FindSlot(Bytes block, uint32_t end, size_t name_len) {
  const uint32_t needed = format::DirRecLen(static_cast<uint32_t>(name_len));
  uint32_t offset = 0;
  while (offset < end) {
    const uint32_t rec_len = RecLenAt(block, offset);
    if (rec_len == 0) return std::nullopt;  // not validated; never loop
    const uint32_t inode = format::Le32(block, offset);
    const uint32_t used =
        inode != 0 ? UsedRecLen(format::Le8(block, offset + 6)) : 0;
    if (rec_len >= used && rec_len - used >= needed) return offset;
    offset += rec_len;
  }
  return std::nullopt;
}

// Writes the new record into the slot FindSlot() returned.
void InsertAt(MutableBytes block, uint32_t offset, std::string_view name,
              uint32_t ino, uint8_t file_type) {
  const uint32_t size = static_cast<uint32_t>(block.size());
  uint32_t rec_len = RecLenAt(block, offset);
  if (format::Le32(block, offset) != 0) {
    const uint32_t used = UsedRecLen(format::Le8(block, offset + 6));
    format::Put16(block, offset + 4, format::EncodeRecLen(used, size));
    offset += used;
    rec_len -= used;
  }
  std::memset(block.data() + offset, 0, rec_len);
  format::WriteDirEntry(block, offset, ino, rec_len, name, file_type);
}

// Removes the record at `offset` of a validated region ending at `end`: it
// joins the record before it, or becomes unused when it is the first.
void RemoveAt(MutableBytes block, uint32_t end, uint32_t target) {
  const uint32_t size = static_cast<uint32_t>(block.size());
  std::optional<uint32_t> previous;
  uint32_t offset = 0;
  while (offset < end && offset != target) {
    const uint32_t rec_len = RecLenAt(block, offset);
    if (rec_len == 0) return;
    previous = offset;
    offset += rec_len;
  }
  if (offset != target) return;
  const uint32_t rec_len = RecLenAt(block, target);
  if (previous.has_value()) {
    const uint32_t merged = RecLenAt(block, *previous) + rec_len;
    format::Put16(block, *previous + 4, format::EncodeRecLen(merged, size));
    std::memset(block.data() + target, 0, rec_len);
  } else {
    // Keep rec_len; clear the rest of the record.
    format::Put32(block, target, 0);
    std::memset(block.data() + target + 6, 0, rec_len - 6);
  }
}

// Lays `items` out as a fresh leaf: compact records, the last one covering
// the rest of the entry area, an unused record when there are none; then the
// checksum tail under metadata_csum. The caller checked that they fit.
void WriteLeaf(const DirectoryContext& ctx, MutableBytes block,
               const Item* items, size_t count) {
  std::fill(block.begin(), block.end(), 0);
  const uint32_t end = EntryEnd(ctx);
  if (count == 0) {
    format::WriteDirEntry(block, 0, 0, end, "", 0);
  }
  uint32_t offset = 0;
  for (size_t i = 0; i < count; ++i) {
    const Item& item = items[i];
    uint32_t rec_len = UsedRecLen(item.name.size());
    if (i + 1 == count) rec_len = end - offset;
    format::WriteDirEntry(block, offset, item.inode, rec_len, item.name,
                          item.file_type);
    offset += rec_len;
  }
  if (ctx.metadata_csum) {
    format::InitDirCsumTail(block);
    format::SetDirBlockChecksum(block, ctx.inode_checksum_seed);
  }
}

uint32_t SizeOf(const Item* items, size_t count) {
  uint32_t total = 0;
  for (size_t i = 0; i < count; ++i) {
    total += UsedRecLen(items[i].name.size());
  }
  return total;
}

// The used records of a validated region.
absl::StatusOr<std::vector<Item>> CollectItems(Bytes region, bool tail) {
  std::vector<Item> items;
  E4_RETURN_IF_ERROR(format::ForEachDirEntry(
      region, tail, [&](const format::RawDirEntry& entry) {
        if (entry.inode != 0) {
          items.push_back(
              Item{std::string(entry.name), entry.inode, entry.file_type});
        }
        return true;
      }));
  return items;
}

// Where a leaf holding `items` (sorted by hash) splits: the upper part moves
// to the new block. As the kernel's do_split: move entries from the top
// while no more than half the block would be moved, falling back to half the
// count; then make sure both halves fit.
absl::StatusOr<size_t> ChooseSplit(const std::vector<Item>& items,
                                   uint32_t end) {
  const size_t count = items.size();
  if (count < 2) return ErrnoError(ENOSPC, "entry does not fit a block");
  std::vector<uint32_t> sizes(count);
  uint32_t total = 0;
  for (size_t i = 0; i < count; ++i) {
    sizes[i] = UsedRecLen(items[i].name.size());
    total += sizes[i];
  }
  uint32_t moved = 0;
  size_t move = 0;
  ptrdiff_t i = static_cast<ptrdiff_t>(count) - 1;
  for (; i >= 0; --i) {
    if (moved + sizes[i] / 2 > end / 2) break;
    moved += sizes[i];
    ++move;
  }
  size_t split = i > 0 ? count - move : count / 2;
  split = std::clamp<size_t>(split, 1, count - 1);
  auto fits = [&](size_t s) {
    uint32_t left = 0;
    for (size_t k = 0; k < s; ++k) left += sizes[k];
    return left <= end && total - left <= end;
  };
  if (fits(split)) return split;
  // Rare: take the most balanced split that fits.
  std::optional<size_t> best;
  uint32_t best_gap = 0;
  uint32_t left = 0;
  for (size_t s = 1; s < count; ++s) {
    left += sizes[s - 1];
    if (left > end) break;
    if (total - left > end) continue;
    const uint32_t gap =
        left > total - left ? left - (total - left) : (total - left) - left;
    if (!best.has_value() || gap < best_gap) {
      best = s;
      best_gap = gap;
    }
  }
  if (!best.has_value()) return ErrnoError(ENOSPC, "leaf split cannot fit");
  return *best;
}

// ---------------------------------------------------------------------------
// Block access through the transaction.

class Dir {
 public:
  Dir(Transaction& tx, const DirectoryContext& ctx, DirectoryWriteTarget& dir)
      : tx_(tx), ctx_(ctx), dir_(dir) {}

  const DirectoryContext& ctx() const { return ctx_; }
  DirectoryWriteTarget& target() { return dir_; }
  uint32_t count() const { return dir_.BlockCount(); }

  absl::StatusOr<Bytes> Read(uint32_t logical) {
    E4_ASSIGN_OR_RETURN(const uint64_t physical, Physical(logical));
    E4_ASSIGN_OR_RETURN(Bytes block, tx_.Read(physical));
    if (block.size() != ctx_.block_size) {
      return ErrnoError(EIO, BlockName(logical) + ": wrong block size");
    }
    return block;
  }

  absl::StatusOr<MutableBytes> Modify(uint32_t logical) {
    E4_ASSIGN_OR_RETURN(const uint64_t physical, Physical(logical));
    E4_ASSIGN_OR_RETURN(MutableBytes block, tx_.Modify(physical));
    if (block.size() != ctx_.block_size) {
      return ErrnoError(EIO, BlockName(logical) + ": wrong block size");
    }
    return block;
  }

  // Appends a block; returns its logical number and zeroed contents.
  absl::StatusOr<std::pair<uint32_t, MutableBytes>> Append() {
    const uint32_t logical = dir_.BlockCount();
    if (logical >= format::kDxBlockMask) {
      return ErrnoError(ENOSPC, "directory has too many blocks");
    }
    E4_ASSIGN_OR_RETURN(const uint64_t physical, dir_.AppendBlock(tx_));
    if (dir_.BlockCount() != logical + 1) {
      return ErrnoError(EIO, "directory did not grow by one block");
    }
    E4_ASSIGN_OR_RETURN(MutableBytes block, tx_.ModifyNew(physical));
    if (block.size() != ctx_.block_size) {
      return ErrnoError(EIO, "new directory block: wrong block size");
    }
    return std::make_pair(logical, block);
  }

  // Reads a leaf and validates it: checksum, then the record chain.
  absl::StatusOr<Bytes> ReadLeaf(uint32_t logical) {
    E4_ASSIGN_OR_RETURN(Bytes block, Read(logical));
    E4_RETURN_IF_ERROR(ValidateLeaf(block));
    return block;
  }

  absl::Status ValidateLeaf(Bytes block) const {
    if (ctx_.metadata_csum) {
      E4_RETURN_IF_ERROR(
          format::VerifyDirBlockChecksum(block, ctx_.inode_checksum_seed));
    }
    return format::ForEachDirEntry(
        block, ctx_.metadata_csum,
        [](const format::RawDirEntry&) { return true; });
  }

  void SealLeaf(MutableBytes block) const {
    if (ctx_.metadata_csum) {
      format::SetDirBlockChecksum(block, ctx_.inode_checksum_seed);
    }
  }

  absl::Status SealIndex(MutableBytes block) const {
    if (!ctx_.metadata_csum) return absl::OkStatus();
    return format::SetDxChecksum(block, ctx_.inode_checksum_seed);
  }

 private:
  absl::StatusOr<uint64_t> Physical(uint32_t logical) {
    if (logical >= dir_.BlockCount()) {
      return Corrupt(BlockName(logical) + " is past the directory's end");
    }
    return dir_.PhysicalBlock(tx_, logical);
  }

  Transaction& tx_;
  const DirectoryContext& ctx_;
  DirectoryWriteTarget& dir_;
};

// ---------------------------------------------------------------------------
// Hash-tree index.

int EffectiveHashVersion(const DirectoryContext& ctx, int stored) {
  if (stored <= format::kDxHashTea && ctx.hash_unsigned) return stored + 3;
  return stored;
}

// One index block on the path from the root to a leaf.
struct DxLevel {
  uint32_t logical = 0;
  uint32_t count_offset = 0;
  uint32_t count = 0;
  uint32_t limit = 0;
  uint32_t at = 0;  // the entry followed
};

uint32_t DxHashAt(Bytes block, const DxLevel& level, uint32_t i) {
  return i == 0 ? 0
                : format::Le32(block,
                               level.count_offset + i * format::kDxEntrySize);
}

uint32_t DxBlockAt(Bytes block, const DxLevel& level, uint32_t i) {
  return format::Le32(block,
                      level.count_offset + i * format::kDxEntrySize + 4) &
         format::kDxBlockMask;
}

class DxPath {
 public:
  explicit DxPath(Dir& dir) : dir_(dir) {}

  // Reads the root; every call of Probe starts from it.
  absl::Status Open() {
    const DirectoryContext& ctx = dir_.ctx();
    E4_ASSIGN_OR_RETURN(Bytes block, dir_.Read(0));
    if (ctx.metadata_csum) {
      E4_RETURN_IF_ERROR(
          format::VerifyDxChecksum(block, ctx.inode_checksum_seed));
    }
    E4_ASSIGN_OR_RETURN(
        const format::DxRoot root,
        format::ParseDxRoot(block, ctx.metadata_csum, ctx.large_dir));
    hash_version_ = EffectiveHashVersion(ctx, root.hash_version);
    indirect_levels_ = root.indirect_levels;
    root_ = DxLevel{0, format::kDxRootCountOffset, root.entries.count(),
                    root.entries.limit(), 0};
    return absl::OkStatus();
  }

  absl::StatusOr<format::DxHash> Hash(std::string_view name) const {
    return format::ComputeDxHash(name, hash_version_, dir_.ctx().hash_seed);
  }

  // Descends to the leaf whose range holds `hash`.
  absl::Status Probe(uint32_t hash) {
    E4_RETURN_IF_ERROR(Open());
    levels_.assign(1, root_);
    E4_ASSIGN_OR_RETURN(Bytes root, dir_.Read(0));
    levels_[0].at = Find(root, levels_[0], hash);
    for (uint32_t depth = 1; depth <= indirect_levels_; ++depth) {
      E4_RETURN_IF_ERROR(Descend());
      E4_ASSIGN_OR_RETURN(Bytes block, dir_.Read(levels_.back().logical));
      levels_.back().at = Find(block, levels_.back(), hash);
    }
    return SetLeaf();
  }

  // Moves to the next leaf if it continues the collision chain of `hash`
  // (its index hash, without the continuation bit, equals `hash`).
  absl::StatusOr<bool> NextInChain(uint32_t hash) {
    size_t level = levels_.size();
    while (level > 0 && levels_[level - 1].at + 1 >= levels_[level - 1].count) {
      --level;
    }
    if (level == 0) return false;
    DxLevel& frame = levels_[level - 1];
    E4_ASSIGN_OR_RETURN(Bytes block, dir_.Read(frame.logical));
    if ((DxHashAt(block, frame, frame.at + 1) & ~1u) != hash) return false;
    ++frame.at;
    levels_.resize(level);
    while (levels_.size() <= indirect_levels_) {
      E4_RETURN_IF_ERROR(Descend());
    }
    E4_RETURN_IF_ERROR(SetLeaf());
    return true;
  }

  uint32_t leaf() const { return leaf_; }
  uint32_t indirect_levels() const { return indirect_levels_; }
  std::vector<DxLevel>& levels() { return levels_; }

 private:
  static uint32_t Find(Bytes block, const DxLevel& level, uint32_t hash) {
    uint32_t lo = 1;
    uint32_t hi = level.count;
    while (lo < hi) {
      const uint32_t mid = lo + (hi - lo) / 2;
      if (DxHashAt(block, level, mid) > hash) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    return lo - 1;
  }

  // A block an index entry names must exist and not be on the path (a
  // cycle).
  absl::Status CheckTarget(uint32_t logical) const {
    if (logical >= dir_.count()) {
      return Corrupt("htree index points past the directory's end (" +
                     BlockName(logical) + ")");
    }
    for (const DxLevel& level : levels_) {
      if (level.logical == logical) {
        return Corrupt("htree index cycle at " + BlockName(logical));
      }
    }
    return absl::OkStatus();
  }

  // Pushes the interior block the last level's entry points to, at entry 0.
  absl::Status Descend() {
    const DirectoryContext& ctx = dir_.ctx();
    const DxLevel& parent = levels_.back();
    E4_ASSIGN_OR_RETURN(Bytes parent_block, dir_.Read(parent.logical));
    const uint32_t logical = DxBlockAt(parent_block, parent, parent.at);
    E4_RETURN_IF_ERROR(CheckTarget(logical));
    E4_ASSIGN_OR_RETURN(Bytes block, dir_.Read(logical));
    if (ctx.metadata_csum) {
      E4_RETURN_IF_ERROR(
          format::VerifyDxChecksum(block, ctx.inode_checksum_seed));
    }
    E4_ASSIGN_OR_RETURN(const format::DxEntries entries,
                        format::ParseDxNode(block, ctx.metadata_csum));
    levels_.push_back(DxLevel{logical, format::kDxNodeCountOffset,
                              entries.count(), entries.limit(), 0});
    return absl::OkStatus();
  }

  absl::Status SetLeaf() {
    const DxLevel& bottom = levels_.back();
    E4_ASSIGN_OR_RETURN(Bytes block, dir_.Read(bottom.logical));
    const uint32_t logical = DxBlockAt(block, bottom, bottom.at);
    E4_RETURN_IF_ERROR(CheckTarget(logical));
    leaf_ = logical;
    return absl::OkStatus();
  }

  Dir& dir_;
  int hash_version_ = 0;
  uint32_t indirect_levels_ = 0;
  DxLevel root_;
  std::vector<DxLevel> levels_;
  uint32_t leaf_ = 0;
};

// Inserts index entry (hash, block) at position `pos` (>= 1) of `level`,
// which has room.
absl::Status InsertIndexEntry(Dir& dir, DxLevel& level, uint32_t pos,
                              uint32_t hash, uint32_t block_number) {
  if (pos == 0 || pos > level.count || level.count >= level.limit) {
    return Corrupt("htree index insert out of range");
  }
  E4_ASSIGN_OR_RETURN(MutableBytes block, dir.Modify(level.logical));
  uint8_t* base = block.data() + level.count_offset;
  std::memmove(base + (pos + 1) * format::kDxEntrySize,
               base + pos * format::kDxEntrySize,
               (level.count - pos) * format::kDxEntrySize);
  format::PutDxEntry(block, level.count_offset, pos, hash, block_number);
  ++level.count;
  format::PutDxCount(block, level.count_offset,
                     static_cast<uint16_t>(level.count));
  return dir.SealIndex(block);
}

// Splits the full leaf at the bottom of `path`, adding the new record to the
// half its hash belongs to.
absl::Status SplitLeaf(Dir& dir, DxPath& path, Item item) {
  const DirectoryContext& ctx = dir.ctx();
  const uint32_t leaf = path.leaf();
  E4_ASSIGN_OR_RETURN(Bytes old, dir.ReadLeaf(leaf));
  E4_ASSIGN_OR_RETURN(std::vector<Item> items,
                      CollectItems(old, ctx.metadata_csum));
  for (Item& existing : items) {
    E4_ASSIGN_OR_RETURN(const format::DxHash hash, path.Hash(existing.name));
    existing.major = hash.major;
    existing.minor = hash.minor;
  }
  items.push_back(std::move(item));
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& a, const Item& b) {
                     if (a.major != b.major) return a.major < b.major;
                     return a.minor < b.minor;
                   });
  if (SizeOf(items.data(), items.size()) <= EntryEnd(ctx)) {
    // The free space was scattered over many records: packing the leaf
    // makes room without a split.
    E4_ASSIGN_OR_RETURN(MutableBytes block, dir.Modify(leaf));
    WriteLeaf(ctx, block, items.data(), items.size());
    return absl::OkStatus();
  }
  E4_ASSIGN_OR_RETURN(const size_t split, ChooseSplit(items, EntryEnd(ctx)));
  const uint32_t hash2 = items[split].major;
  const bool continued = items[split - 1].major == hash2;

  E4_ASSIGN_OR_RETURN(auto added, dir.Append());
  WriteLeaf(ctx, added.second, items.data() + split, items.size() - split);
  E4_ASSIGN_OR_RETURN(MutableBytes block, dir.Modify(leaf));
  WriteLeaf(ctx, block, items.data(), split);
  DxLevel& bottom = path.levels().back();
  return InsertIndexEntry(dir, bottom, bottom.at + 1, hash2 + continued,
                          added.first);
}

// Splits the full index block at `path.levels()[depth]` (depth >= 1) in two;
// its parent has room for the new half.
absl::Status SplitIndex(Dir& dir, DxPath& path, size_t depth) {
  DxLevel& node = path.levels()[depth];
  DxLevel& parent = path.levels()[depth - 1];
  const uint32_t count1 = node.count / 2;
  const uint32_t count2 = node.count - count1;
  E4_ASSIGN_OR_RETURN(auto added, dir.Append());
  MutableBytes fresh = added.second;
  E4_ASSIGN_OR_RETURN(MutableBytes block, dir.Modify(node.logical));
  const uint32_t hash2 = DxHashAt(block, node, count1);
  format::InitDxNode(fresh, dir.ctx().metadata_csum);
  for (uint32_t i = 0; i < count2; ++i) {
    format::PutDxEntry(fresh, format::kDxNodeCountOffset, i,
                       DxHashAt(block, node, count1 + i),
                       DxBlockAt(block, node, count1 + i));
  }
  format::PutDxCount(fresh, format::kDxNodeCountOffset,
                     static_cast<uint16_t>(count2));
  E4_RETURN_IF_ERROR(dir.SealIndex(fresh));
  std::memset(block.data() + node.count_offset + count1 * format::kDxEntrySize,
              0, count2 * format::kDxEntrySize);
  format::PutDxCount(block, node.count_offset, static_cast<uint16_t>(count1));
  node.count = count1;
  E4_RETURN_IF_ERROR(dir.SealIndex(block));
  return InsertIndexEntry(dir, parent, parent.at + 1, hash2, added.first);
}

// Moves the root's entries into a new index block below it: the tree grows
// one level.
absl::Status AddIndexLevel(Dir& dir, DxPath& path) {
  const DxLevel root = path.levels()[0];
  E4_ASSIGN_OR_RETURN(auto added, dir.Append());
  MutableBytes fresh = added.second;
  E4_ASSIGN_OR_RETURN(MutableBytes block, dir.Modify(0));
  format::InitDxNode(fresh, dir.ctx().metadata_csum);
  for (uint32_t i = 0; i < root.count; ++i) {
    format::PutDxEntry(fresh, format::kDxNodeCountOffset, i,
                       DxHashAt(block, root, i), DxBlockAt(block, root, i));
  }
  format::PutDxCount(fresh, format::kDxNodeCountOffset,
                     static_cast<uint16_t>(root.count));
  E4_RETURN_IF_ERROR(dir.SealIndex(fresh));
  std::memset(block.data() + root.count_offset + format::kDxEntrySize, 0,
              (root.count - 1) * format::kDxEntrySize);
  format::PutDxEntry(block, root.count_offset, 0, 0, added.first);
  format::PutDxCount(block, root.count_offset, 1);
  block[format::kDxRootInfoOffset + 6] =
      static_cast<uint8_t>(path.indirect_levels() + 1);
  return dir.SealIndex(block);
}

// Finds `name` in an htree directory.
absl::StatusOr<std::optional<Location>> DxFind(Dir& dir,
                                               std::string_view name) {
  DxPath path(dir);
  E4_RETURN_IF_ERROR(path.Open());
  E4_ASSIGN_OR_RETURN(const format::DxHash hash, path.Hash(name));
  E4_RETURN_IF_ERROR(path.Probe(hash.major));
  const uint32_t max_leaves = dir.count();
  for (uint32_t leaves = 1;; ++leaves) {
    if (leaves > max_leaves) return Corrupt("htree collision chain too long");
    E4_ASSIGN_OR_RETURN(Bytes block, dir.ReadLeaf(path.leaf()));
    std::optional<Location> found;
    E4_RETURN_IF_ERROR(format::ForEachDirEntry(
        block, dir.ctx().metadata_csum, [&](const format::RawDirEntry& entry) {
          if (entry.inode != 0 && entry.name == name) {
            found = Location{path.leaf(), entry.offset};
            return false;
          }
          return true;
        }));
    if (found.has_value()) return found;
    E4_ASSIGN_OR_RETURN(const bool more, path.NextInChain(hash.major));
    if (!more) return std::optional<Location>();
  }
}

absl::StatusOr<std::optional<Location>> LinearFind(Dir& dir,
                                                   std::string_view name) {
  const uint32_t count = dir.count();
  for (uint32_t logical = 0; logical < count; ++logical) {
    E4_ASSIGN_OR_RETURN(Bytes block, dir.ReadLeaf(logical));
    std::optional<Location> found;
    E4_RETURN_IF_ERROR(format::ForEachDirEntry(
        block, dir.ctx().metadata_csum, [&](const format::RawDirEntry& entry) {
          if (entry.inode != 0 && entry.name == name) {
            found = Location{logical, entry.offset};
            return false;
          }
          return true;
        }));
    if (found.has_value()) return found;
  }
  return std::optional<Location>();
}

absl::StatusOr<Location> FindExisting(Dir& dir, std::string_view name) {
  if (dir.count() == 0) return Corrupt("directory has no blocks");
  std::optional<Location> found;
  if (dir.ctx().htree) {
    E4_ASSIGN_OR_RETURN(found, DxFind(dir, name));
  } else {
    E4_ASSIGN_OR_RETURN(found, LinearFind(dir, name));
  }
  if (!found.has_value()) return NotFound(name);
  return *found;
}

absl::Status DxAdd(Dir& dir, std::string_view name, uint32_t ino,
                   uint8_t file_type) {
  E4_ASSIGN_OR_RETURN(const std::optional<Location> existing,
                      DxFind(dir, name));
  if (existing.has_value()) {
    return ErrnoError(EEXIST, "\"" + std::string(name) + "\" exists");
  }
  const DirectoryContext& ctx = dir.ctx();
  DxPath path(dir);
  E4_RETURN_IF_ERROR(path.Open());
  E4_ASSIGN_OR_RETURN(const format::DxHash hash, path.Hash(name));
  // Each round makes one split of an index block or adds a level; at most
  // one per level is needed before the leaf can split.
  for (int round = 0; round < 8; ++round) {
    E4_RETURN_IF_ERROR(path.Probe(hash.major));
    E4_ASSIGN_OR_RETURN(Bytes leaf, dir.ReadLeaf(path.leaf()));
    const std::optional<uint32_t> slot =
        FindSlot(leaf, EntryEnd(ctx), name.size());
    if (slot.has_value()) {
      E4_ASSIGN_OR_RETURN(MutableBytes block, dir.Modify(path.leaf()));
      InsertAt(block, *slot, name, ino, file_type);
      dir.SealLeaf(block);
      return absl::OkStatus();
    }
    std::vector<DxLevel>& levels = path.levels();
    if (levels.back().count < levels.back().limit) {
      return SplitLeaf(
          dir, path,
          Item{std::string(name), ino, file_type, hash.major, hash.minor});
    }
    // The deepest index block above the bottom one with room.
    ptrdiff_t depth = static_cast<ptrdiff_t>(levels.size()) - 2;
    while (depth >= 0 && levels[depth].count >= levels[depth].limit) --depth;
    if (depth >= 0) {
      E4_RETURN_IF_ERROR(SplitIndex(dir, path, depth + 1));
      continue;
    }
    if (path.indirect_levels() + 1 >= format::DxMaxLevels(ctx.large_dir)) {
      return ErrnoError(ENOSPC, "directory index is full");
    }
    E4_RETURN_IF_ERROR(AddIndexLevel(dir, path));
  }
  return Corrupt("htree insert did not settle");
}

// Turns the full one-block linear directory into an htree holding the new
// record (the kernel's make_indexed_dir followed by do_split).
absl::Status MakeIndexed(Dir& dir, DirectoryContext& ctx, Item item) {
  E4_ASSIGN_OR_RETURN(Bytes first, dir.ReadLeaf(0));
  std::vector<Item> items;
  uint32_t dot = 0;
  uint32_t dotdot = 0;
  int index = 0;
  absl::Status bad;
  E4_RETURN_IF_ERROR(format::ForEachDirEntry(
      first, ctx.metadata_csum, [&](const format::RawDirEntry& entry) {
        if (index == 0 || index == 1) {
          const bool ok = index == 0 ? entry.offset == 0 && entry.name == "."
                                     : entry.offset == 12 && entry.name == "..";
          if (!ok) {
            bad = Corrupt(
                "directory block 0 does not start with \".\" and "
                "\"..\"");
            return false;
          }
          (index == 0 ? dot : dotdot) = entry.inode;
        } else if (entry.inode != 0) {
          items.push_back(
              Item{std::string(entry.name), entry.inode, entry.file_type});
        }
        ++index;
        return true;
      }));
  E4_RETURN_IF_ERROR(bad);
  if (index < 2) return Corrupt("directory block 0 lacks \"..\"");

  const uint8_t stored_version = static_cast<uint8_t>(ctx.default_hash_version);
  const int version = EffectiveHashVersion(ctx, stored_version);
  for (Item& existing : items) {
    E4_ASSIGN_OR_RETURN(
        const format::DxHash hash,
        format::ComputeDxHash(existing.name, version, ctx.hash_seed));
    existing.major = hash.major;
    existing.minor = hash.minor;
  }
  items.push_back(std::move(item));
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& a, const Item& b) {
                     if (a.major != b.major) return a.major < b.major;
                     return a.minor < b.minor;
                   });
  size_t split = items.size();
  if (items.size() >= 2) {
    E4_ASSIGN_OR_RETURN(split, ChooseSplit(items, EntryEnd(ctx)));
  } else if (SizeOf(items.data(), items.size()) > EntryEnd(ctx)) {
    return ErrnoError(ENOSPC, "entry does not fit a block");
  }

  E4_ASSIGN_OR_RETURN(auto leaf1, dir.Append());
  WriteLeaf(ctx, leaf1.second, items.data(), split);
  std::optional<std::pair<uint32_t, MutableBytes>> leaf2;
  if (split < items.size()) {
    E4_ASSIGN_OR_RETURN(leaf2, dir.Append());
    WriteLeaf(ctx, leaf2->second, items.data() + split, items.size() - split);
  }
  E4_ASSIGN_OR_RETURN(MutableBytes root, dir.Modify(0));
  std::fill(root.begin(), root.end(), 0);
  format::InitDxRoot(root, dot, dotdot, DirFileType(ctx), stored_version, 0,
                     ctx.metadata_csum);
  format::PutDxEntry(root, format::kDxRootCountOffset, 0, 0, leaf1.first);
  uint16_t count = 1;
  if (leaf2.has_value()) {
    const bool continued = items[split - 1].major == items[split].major;
    format::PutDxEntry(root, format::kDxRootCountOffset, 1,
                       items[split].major + continued, leaf2->first);
    count = 2;
  }
  format::PutDxCount(root, format::kDxRootCountOffset, count);
  E4_RETURN_IF_ERROR(dir.SealIndex(root));
  dir.target().SetIndexed(true);
  ctx.htree = true;
  return absl::OkStatus();
}

absl::Status LinearAdd(Dir& dir, DirectoryContext& ctx, std::string_view name,
                       uint32_t ino, uint8_t file_type) {
  const uint32_t count = dir.count();
  const uint32_t end = EntryEnd(ctx);
  std::optional<Location> slot;
  for (uint32_t logical = 0; logical < count; ++logical) {
    E4_ASSIGN_OR_RETURN(Bytes block, dir.ReadLeaf(logical));
    bool exists = false;
    E4_RETURN_IF_ERROR(format::ForEachDirEntry(
        block, ctx.metadata_csum, [&](const format::RawDirEntry& entry) {
          if (entry.inode != 0 && entry.name == name) {
            exists = true;
            return false;
          }
          return true;
        }));
    if (exists) {
      return ErrnoError(EEXIST, "\"" + std::string(name) + "\" exists");
    }
    if (!slot.has_value()) {
      const std::optional<uint32_t> offset = FindSlot(block, end, name.size());
      if (offset.has_value()) slot = Location{logical, *offset};
    }
  }
  if (slot.has_value()) {
    E4_ASSIGN_OR_RETURN(MutableBytes block, dir.Modify(slot->logical));
    InsertAt(block, slot->offset, name, ino, file_type);
    dir.SealLeaf(block);
    return absl::OkStatus();
  }
  if (count == 1 && dir.target().CanIndex() && ctx.default_hash_version >= 0 &&
      ctx.default_hash_version <= format::kDxHashTea) {
    E4_ASSIGN_OR_RETURN(
        const format::DxHash hash,
        format::ComputeDxHash(
            name, EffectiveHashVersion(ctx, ctx.default_hash_version),
            ctx.hash_seed));
    return MakeIndexed(
        dir, ctx,
        Item{std::string(name), ino, file_type, hash.major, hash.minor});
  }
  E4_ASSIGN_OR_RETURN(auto added, dir.Append());
  const Item item{std::string(name), ino, file_type};
  WriteLeaf(ctx, added.second, &item, 1);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Inline regions.

struct InlineRegions {
  MutableBytes first;   // i_block[4..60)
  MutableBytes second;  // system.data
};

absl::Status CheckInline(size_t i_block_size, size_t system_data_size) {
  if (i_block_size < kInlineIBlockSize) {
    return Corrupt("inline directory: i_block too small");
  }
  if (system_data_size > 65536) {
    return Corrupt("inline directory: system.data too large");
  }
  return absl::OkStatus();
}

// Finds a used record named `name` in a region; validates the region.
absl::StatusOr<std::optional<uint32_t>> FindInRegion(Bytes region,
                                                     std::string_view name) {
  std::optional<uint32_t> found;
  E4_RETURN_IF_ERROR(format::ForEachDirEntry(
      region, false, [&](const format::RawDirEntry& entry) {
        if (entry.inode != 0 && entry.name == name) {
          found = entry.offset;
          return false;
        }
        return true;
      }));
  return found;
}

// Where `name` is: (region index 0 = i_block, 1 = system.data, offset).
absl::StatusOr<std::pair<int, uint32_t>> FindInline(MutableBytes i_block,
                                                    MutableBytes system_data,
                                                    std::string_view name) {
  E4_RETURN_IF_ERROR(CheckInline(i_block.size(), system_data.size()));
  const MutableBytes regions[2] = {
      i_block.subspan(kInlineHeader, kInlineIBlockSize - kInlineHeader),
      system_data};
  for (int r = 0; r < 2; ++r) {
    E4_ASSIGN_OR_RETURN(const std::optional<uint32_t> offset,
                        FindInRegion(regions[r], name));
    if (offset.has_value()) return std::make_pair(r, *offset);
  }
  return NotFound(name);
}

}  // namespace

absl::Status InitDirectoryBlock(const DirectoryContext& ctx, MutableBytes block,
                                uint32_t self, uint32_t parent) {
  E4_RETURN_IF_ERROR(CheckContext(ctx));
  if (block.size() != ctx.block_size) {
    return ErrnoError(EINVAL, "directory block of the wrong size");
  }
  std::fill(block.begin(), block.end(), 0);
  const uint32_t end = EntryEnd(ctx);
  format::WriteDirEntry(block, 0, self, 12, ".", DirFileType(ctx));
  format::WriteDirEntry(block, 12, parent, end - 12, "..", DirFileType(ctx));
  if (ctx.metadata_csum) {
    format::InitDirCsumTail(block);
    format::SetDirBlockChecksum(block, ctx.inode_checksum_seed);
  }
  return absl::OkStatus();
}

absl::Status AddEntry(Transaction& tx, DirectoryContext& ctx,
                      DirectoryWriteTarget& dir, std::string_view name,
                      uint32_t ino, uint32_t mode) {
  E4_RETURN_IF_ERROR(CheckContext(ctx));
  E4_RETURN_IF_ERROR(CheckNewName(name));
  if (ino == 0) return ErrnoError(EINVAL, "entry for inode 0");
  if (dir.BlockCount() == 0) return Corrupt("directory has no blocks");
  Dir d(tx, ctx, dir);
  const uint8_t file_type = FileTypeOf(ctx, mode);
  if (ctx.htree) return DxAdd(d, name, ino, file_type);
  return LinearAdd(d, ctx, name, ino, file_type);
}

absl::Status RemoveEntry(Transaction& tx, const DirectoryContext& ctx,
                         DirectoryWriteTarget& dir, std::string_view name) {
  E4_RETURN_IF_ERROR(CheckContext(ctx));
  E4_RETURN_IF_ERROR(CheckExistingName(name));
  Dir d(tx, ctx, dir);
  E4_ASSIGN_OR_RETURN(const Location at, FindExisting(d, name));
  E4_ASSIGN_OR_RETURN(MutableBytes block, d.Modify(at.logical));
  RemoveAt(block, EntryEnd(ctx), at.offset);
  d.SealLeaf(block);
  return absl::OkStatus();
}

absl::Status ReplaceEntry(Transaction& tx, const DirectoryContext& ctx,
                          DirectoryWriteTarget& dir, std::string_view name,
                          uint32_t ino, uint32_t mode) {
  E4_RETURN_IF_ERROR(CheckContext(ctx));
  E4_RETURN_IF_ERROR(CheckExistingName(name));
  if (ino == 0) return ErrnoError(EINVAL, "entry for inode 0");
  Dir d(tx, ctx, dir);
  E4_ASSIGN_OR_RETURN(const Location at, FindExisting(d, name));
  E4_ASSIGN_OR_RETURN(MutableBytes block, d.Modify(at.logical));
  format::Put32(block, at.offset, ino);
  block[at.offset + 7] = FileTypeOf(ctx, mode);
  d.SealLeaf(block);
  return absl::OkStatus();
}

absl::Status SetParent(Transaction& tx, const DirectoryContext& ctx,
                       DirectoryWriteTarget& dir, uint32_t parent) {
  E4_RETURN_IF_ERROR(CheckContext(ctx));
  if (parent == 0) return ErrnoError(EINVAL, "parent inode 0");
  if (dir.BlockCount() == 0) return Corrupt("directory has no blocks");
  Dir d(tx, ctx, dir);
  if (ctx.htree) {
    E4_ASSIGN_OR_RETURN(Bytes block, d.Read(0));
    if (ctx.metadata_csum) {
      E4_RETURN_IF_ERROR(
          format::VerifyDxChecksum(block, ctx.inode_checksum_seed));
    }
    E4_RETURN_IF_ERROR(
        format::ParseDxRoot(block, ctx.metadata_csum, ctx.large_dir).status());
    E4_ASSIGN_OR_RETURN(MutableBytes root, d.Modify(0));
    format::Put32(root, 12, parent);
    return d.SealIndex(root);
  }
  E4_ASSIGN_OR_RETURN(Bytes block, d.ReadLeaf(0));
  // ".." is the second record, after ".".
  std::optional<uint32_t> dotdot;
  int index = 0;
  E4_RETURN_IF_ERROR(format::ForEachDirEntry(
      block, ctx.metadata_csum, [&](const format::RawDirEntry& entry) {
        if (index == 0 && entry.name != ".") return false;
        if (index == 1) {
          if (entry.name == "..") dotdot = entry.offset;
          return false;
        }
        ++index;
        return true;
      }));
  if (!dotdot.has_value()) {
    return Corrupt("directory block 0 does not start with \".\" and \"..\"");
  }
  E4_ASSIGN_OR_RETURN(MutableBytes first, d.Modify(0));
  format::Put32(first, *dotdot, parent);
  d.SealLeaf(first);
  return absl::OkStatus();
}

absl::StatusOr<bool> IsEmpty(Transaction& tx, const DirectoryContext& ctx,
                             DirectoryWriteTarget& dir) {
  E4_RETURN_IF_ERROR(CheckContext(ctx));
  const uint32_t count = dir.BlockCount();
  if (count == 0) return Corrupt("directory has no blocks");
  Dir d(tx, ctx, dir);
  for (uint32_t logical = 0; logical < count; ++logical) {
    if (logical == 0 && ctx.htree) {
      // The root holds "." and ".." only.
      E4_ASSIGN_OR_RETURN(Bytes root, d.Read(0));
      E4_RETURN_IF_ERROR(
          format::ParseDxRoot(root, ctx.metadata_csum, ctx.large_dir).status());
      continue;
    }
    E4_ASSIGN_OR_RETURN(Bytes block, d.Read(logical));
    // An index block (or an empty leaf without a tail) is one unused record
    // over the whole block.
    if (logical > 0 && format::Le32(block, 0) == 0 &&
        RecLenAt(block, 0) == ctx.block_size) {
      continue;
    }
    E4_RETURN_IF_ERROR(d.ValidateLeaf(block));
    bool used = false;
    int index = 0;
    absl::Status bad;
    E4_RETURN_IF_ERROR(format::ForEachDirEntry(
        block, ctx.metadata_csum, [&](const format::RawDirEntry& entry) {
          if (logical == 0 && index < 2) {
            if (entry.name != (index == 0 ? "." : "..")) {
              bad = Corrupt(
                  "directory block 0 does not start with \".\" and \"..\"");
              return false;
            }
          } else if (entry.inode != 0) {
            used = true;
            return false;
          }
          ++index;
          return true;
        }));
    E4_RETURN_IF_ERROR(bad);
    if (used) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Inline directories.

absl::StatusOr<bool> AddInlineEntry(const DirectoryContext& ctx,
                                    MutableBytes i_block, Bytes system_data,
                                    std::string_view name, uint32_t ino,
                                    uint32_t mode) {
  E4_RETURN_IF_ERROR(CheckNewName(name));
  if (ino == 0) return ErrnoError(EINVAL, "entry for inode 0");
  E4_RETURN_IF_ERROR(CheckInline(i_block.size(), system_data.size()));
  const MutableBytes region =
      i_block.subspan(kInlineHeader, kInlineIBlockSize - kInlineHeader);
  for (Bytes part : {Bytes(region), system_data}) {
    E4_ASSIGN_OR_RETURN(const std::optional<uint32_t> found,
                        FindInRegion(part, name));
    if (found.has_value()) {
      return ErrnoError(EEXIST, "\"" + std::string(name) + "\" exists");
    }
  }
  const std::optional<uint32_t> slot =
      FindSlot(region, static_cast<uint32_t>(region.size()), name.size());
  if (!slot.has_value()) return false;
  InsertAt(region, *slot, name, ino, FileTypeOf(ctx, mode));
  return true;
}

absl::Status ConvertInlineToBlock(Transaction& /*tx*/,
                                  const DirectoryContext& ctx, Bytes i_block,
                                  Bytes system_data, MutableBytes new_block,
                                  uint32_t self) {
  E4_RETURN_IF_ERROR(CheckContext(ctx));
  E4_RETURN_IF_ERROR(CheckInline(i_block.size(), system_data.size()));
  if (new_block.size() != ctx.block_size) {
    return ErrnoError(EINVAL, "directory block of the wrong size");
  }
  std::vector<Item> items;
  items.push_back(Item{".", self, DirFileType(ctx)});
  items.push_back(Item{"..", format::Le32(i_block, 0), DirFileType(ctx)});
  for (Bytes part :
       {i_block.subspan(kInlineHeader, kInlineIBlockSize - kInlineHeader),
        system_data}) {
    E4_ASSIGN_OR_RETURN(std::vector<Item> found, CollectItems(part, false));
    for (Item& item : found) items.push_back(std::move(item));
  }
  if (SizeOf(items.data(), items.size()) > EntryEnd(ctx)) {
    return ErrnoError(ENOSPC, "inline entries do not fit a block");
  }
  WriteLeaf(ctx, new_block, items.data(), items.size());
  return absl::OkStatus();
}

absl::StatusOr<bool> RemoveInlineEntry(const DirectoryContext& /*ctx*/,
                                       MutableBytes i_block,
                                       MutableBytes system_data,
                                       std::string_view name) {
  E4_RETURN_IF_ERROR(CheckExistingName(name));
  E4_ASSIGN_OR_RETURN(const auto at, FindInline(i_block, system_data, name));
  MutableBytes region =
      at.first == 0
          ? i_block.subspan(kInlineHeader, kInlineIBlockSize - kInlineHeader)
          : system_data;
  RemoveAt(region, static_cast<uint32_t>(region.size()), at.second);
  return at.first == 1;
}

absl::StatusOr<bool> ReplaceInlineEntry(const DirectoryContext& ctx,
                                        MutableBytes i_block,
                                        MutableBytes system_data,
                                        std::string_view name, uint32_t ino,
                                        uint32_t mode) {
  E4_RETURN_IF_ERROR(CheckExistingName(name));
  if (ino == 0) return ErrnoError(EINVAL, "entry for inode 0");
  E4_ASSIGN_OR_RETURN(const auto at, FindInline(i_block, system_data, name));
  MutableBytes region =
      at.first == 0
          ? i_block.subspan(kInlineHeader, kInlineIBlockSize - kInlineHeader)
          : system_data;
  format::Put32(region, at.second, ino);
  region[at.second + 7] = FileTypeOf(ctx, mode);
  return at.first == 1;
}

absl::StatusOr<bool> IsInlineEmpty(Bytes i_block, Bytes system_data) {
  E4_RETURN_IF_ERROR(CheckInline(i_block.size(), system_data.size()));
  for (Bytes part :
       {i_block.subspan(kInlineHeader, kInlineIBlockSize - kInlineHeader),
        system_data}) {
    E4_ASSIGN_OR_RETURN(std::vector<Item> items, CollectItems(part, false));
    if (!items.empty()) return false;
  }
  return true;
}

absl::Status SetInlineParent(MutableBytes i_block, uint32_t parent) {
  if (i_block.size() < kInlineIBlockSize) {
    return Corrupt("inline directory: i_block too small");
  }
  if (parent == 0) return ErrnoError(EINVAL, "parent inode 0");
  format::Put32(i_block, 0, parent);
  return absl::OkStatus();
}

}  // namespace ext4
