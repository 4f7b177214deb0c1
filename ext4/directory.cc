#include "ext4/directory.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <string>
#include <utility>

#include "ext4/errno_status.h"
#include "ext4/format/checksum.h"
#include "ext4/format/dirent.h"
#include "ext4/format/dx_hash.h"
#include "ext4/format/htree.h"

namespace ext4 {
namespace {

using Block = std::shared_ptr<const std::vector<uint8_t>>;
using format::Bytes;

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

absl::Status CheckName(std::string_view name) {
  if (name.size() > format::kDirNameMax) {
    return ErrnoError(ENAMETOOLONG, "name too long");
  }
  return absl::OkStatus();
}

absl::Status NotFound(std::string_view name) {
  return ErrnoError(ENOENT, "no entry \"" + std::string(name) + "\"");
}

bool IsDot(std::string_view name) { return name == "."; }
bool IsDotDot(std::string_view name) { return name == ".."; }

uint32_t EntryType(const DirectoryContext& ctx, uint8_t file_type) {
  return ctx.filetype ? format::DirFileTypeToMode(file_type) : 0;
}

// Reads one block, checking its number and size.
absl::StatusOr<Block> ReadRaw(const DirectoryContext& ctx,
                              DirectoryBlockSource& source, uint32_t logical) {
  if (logical >= source.BlockCount()) {
    return Corrupt(BlockName(logical) + " is past the directory's end");
  }
  E4_ASSIGN_OR_RETURN(Block block, source.ReadBlock(logical));
  if (block == nullptr || block->size() != ctx.block_size) {
    return ErrnoError(EIO, BlockName(logical) + ": short read");
  }
  return block;
}

// Reads a leaf (entry) block and verifies its checksum tail.
absl::StatusOr<Block> ReadLeaf(const DirectoryContext& ctx,
                               DirectoryBlockSource& source, uint32_t logical) {
  E4_ASSIGN_OR_RETURN(Block block, ReadRaw(ctx, source, logical));
  if (ctx.metadata_csum) {
    E4_RETURN_IF_ERROR(
        format::VerifyDirBlockChecksum(*block, ctx.inode_checksum_seed));
  }
  return block;
}

// Whether the entries of a leaf end before a checksum tail.
bool LeafHasTail(const DirectoryContext& ctx, Bytes block) {
  return ctx.metadata_csum && format::HasDirCsumTail(block);
}

// Searches one leaf block for `name`.
absl::StatusOr<std::optional<uint32_t>> SearchLeaf(const DirectoryContext& ctx,
                                                   Bytes block,
                                                   std::string_view name) {
  std::optional<uint32_t> found;
  E4_RETURN_IF_ERROR(format::ForEachDirEntry(
      block, LeafHasTail(ctx, block), [&](const format::RawDirEntry& entry) {
        if (entry.inode != 0 && entry.name == name) {
          found = entry.inode;
          return false;
        }
        return true;
      }));
  return found;
}

// ---------------------------------------------------------------------------
// Hash-tree index traversal.

// A path from the dx_root down to one leaf, as the kernel's dx_frame array:
// one frame per index block, each with the entry being followed.
class DxCursor {
 public:
  // Reads and validates the root (block 0).
  static absl::StatusOr<DxCursor> Open(const DirectoryContext& ctx,
                                       DirectoryBlockSource& source) {
    DxCursor cursor(ctx, source);
    E4_ASSIGN_OR_RETURN(Block block, ReadRaw(ctx, source, 0));
    if (ctx.metadata_csum) {
      E4_RETURN_IF_ERROR(
          format::VerifyDxChecksum(*block, ctx.inode_checksum_seed));
    }
    E4_ASSIGN_OR_RETURN(
        cursor.root_,
        format::ParseDxRoot(*block, ctx.metadata_csum, ctx.large_dir));
    cursor.hash_version_ = cursor.root_.hash_version;
    if (cursor.hash_version_ <= format::kDxHashTea && ctx.hash_unsigned) {
      cursor.hash_version_ += 3;
    }
    cursor.frames_.push_back(
        Frame{std::move(block), cursor.root_.entries, 0, 0});
    return cursor;
  }

  const format::DxRoot& root() const { return root_; }

  absl::StatusOr<format::DxHash> Hash(std::string_view name) const {
    return format::ComputeDxHash(name, hash_version_, ctx_.hash_seed);
  }

  // Descends from the root to the leaf whose hash range holds `hash`.
  absl::Status Probe(uint32_t hash) {
    frames_.resize(1);
    frames_[0].at = frames_[0].entries.Find(hash);
    for (uint32_t level = 1; level <= root_.indirect_levels; ++level) {
      E4_RETURN_IF_ERROR(Descend());
      Frame& frame = frames_.back();
      frame.at = frame.entries.Find(hash);
    }
    return CheckLeaf();
  }

  // The logical block of the current leaf.
  uint32_t leaf() const {
    const Frame& frame = frames_.back();
    return frame.entries.block(frame.at);
  }

  // The lowest hash the current leaf may hold, as the index says (with the
  // continuation bit).
  uint32_t LeafStartHash() const {
    for (size_t i = frames_.size(); i-- > 0;) {
      if (frames_[i].at > 0) return frames_[i].entries.hash(frames_[i].at);
    }
    return 0;
  }

  // Moves to the next leaf in index order (ext4_htree_next_block). Returns
  // false at the end of the index. `*start_hash` receives the index hash the
  // next leaf starts at. With `continuation_of`, stays put and returns false
  // unless that leaf continues a collision chain of this hash.
  absl::StatusOr<bool> Next(uint32_t* start_hash,
                            std::optional<uint32_t> continuation_of) {
    size_t level = frames_.size();
    while (level > 0) {
      const Frame& frame = frames_[level - 1];
      if (frame.at + 1 < frame.entries.count()) break;
      --level;
    }
    if (level == 0) return false;
    Frame& frame = frames_[level - 1];
    const uint32_t next_hash = frame.entries.hash(frame.at + 1);
    *start_hash = next_hash;
    if (continuation_of.has_value() && (next_hash & ~1u) != *continuation_of) {
      return false;
    }
    ++frame.at;
    frames_.resize(level);
    while (frames_.size() <= root_.indirect_levels) {
      E4_RETURN_IF_ERROR(Descend());
    }
    E4_RETURN_IF_ERROR(CheckLeaf());
    return true;
  }

 private:
  struct Frame {
    Block block;
    format::DxEntries entries;
    size_t at;
    uint32_t logical;
  };

  DxCursor(const DirectoryContext& ctx, DirectoryBlockSource& source)
      : ctx_(ctx), source_(&source) {}

  // A block an index entry points to must not be one of the index blocks
  // on the path to it (that would be a cycle) and must exist.
  absl::Status CheckTarget(uint32_t logical) const {
    for (const Frame& frame : frames_) {
      if (frame.logical == logical) {
        return Corrupt("htree index cycle at " + BlockName(logical));
      }
    }
    if (logical >= source_->BlockCount()) {
      return Corrupt("htree index points past the directory's end (" +
                     BlockName(logical) + ")");
    }
    return absl::OkStatus();
  }

  // Reads the interior block the last frame's entry points to and pushes it
  // with `at` = 0.
  absl::Status Descend() {
    const Frame& parent = frames_.back();
    const uint32_t logical = parent.entries.block(parent.at);
    E4_RETURN_IF_ERROR(CheckTarget(logical));
    E4_ASSIGN_OR_RETURN(Block block, ReadRaw(ctx_, *source_, logical));
    if (ctx_.metadata_csum) {
      E4_RETURN_IF_ERROR(
          format::VerifyDxChecksum(*block, ctx_.inode_checksum_seed));
    }
    E4_ASSIGN_OR_RETURN(format::DxEntries entries,
                        format::ParseDxNode(*block, ctx_.metadata_csum));
    frames_.push_back(Frame{std::move(block), entries, 0, logical});
    return absl::OkStatus();
  }

  absl::Status CheckLeaf() const { return CheckTarget(leaf()); }

  DirectoryContext ctx_;
  DirectoryBlockSource* source_;
  format::DxRoot root_;
  int hash_version_ = 0;
  std::vector<Frame> frames_;
};

absl::StatusOr<uint32_t> HtreeLookup(const DirectoryContext& ctx,
                                     DirectoryBlockSource& source,
                                     std::string_view name) {
  E4_ASSIGN_OR_RETURN(DxCursor cursor, DxCursor::Open(ctx, source));
  if (IsDot(name) || IsDotDot(name)) {
    const uint32_t ino =
        IsDot(name) ? cursor.root().dot_inode : cursor.root().dotdot_inode;
    if (ino == 0) return NotFound(name);
    return ino;
  }
  E4_ASSIGN_OR_RETURN(const format::DxHash hash, cursor.Hash(name));
  E4_RETURN_IF_ERROR(cursor.Probe(hash.major));
  const uint32_t max_leaves = source.BlockCount();
  for (uint32_t leaves = 1;; ++leaves) {
    if (leaves > max_leaves) return Corrupt("htree collision chain too long");
    E4_ASSIGN_OR_RETURN(Block leaf, ReadLeaf(ctx, source, cursor.leaf()));
    E4_ASSIGN_OR_RETURN(std::optional<uint32_t> found,
                        SearchLeaf(ctx, *leaf, name));
    if (found.has_value()) return *found;
    uint32_t next_hash = 0;
    E4_ASSIGN_OR_RETURN(const bool more, cursor.Next(&next_hash, hash.major));
    if (!more) return NotFound(name);
  }
}

// Position of an htree listing: entries are ordered by (major, minor,
// position in the directory); a cookie names a bucket (major, minor >> 12)
// and how many of its entries were already returned.
constexpr uint32_t kBucketShift = 12;
constexpr uint32_t kBucketDone = (1u << kBucketShift) - 1;  // whole bucket

struct Bucket {
  uint32_t major = 0;
  uint32_t minor_high = 0;
  auto operator<=>(const Bucket&) const = default;
};

Bucket BucketOf(uint32_t major, uint32_t minor) {
  return Bucket{major, minor >> kBucketShift};
}

uint64_t HtreeCookie(const Bucket& bucket, uint32_t returned) {
  return (uint64_t{bucket.major >> 1} << 32) |
         (uint64_t{bucket.minor_high} << kBucketShift) |
         std::min(returned, kBucketDone);
}

struct HtreeItem {
  uint32_t major;
  uint32_t minor;
  int64_t ordinal;  // "." -2, ".." -1, then records in directory order
  std::string_view name;
  uint32_t inode;
  uint8_t file_type;
};

absl::Status HtreeList(const DirectoryContext& ctx,
                       DirectoryBlockSource& source, uint64_t cookie,
                       const std::function<bool(const DirEntry&)>& emit) {
  if (cookie >> 63) return absl::OkStatus();
  const Bucket start{static_cast<uint32_t>(cookie >> 32) << 1,
                     static_cast<uint32_t>(cookie >> kBucketShift) &
                         ((1u << (32 - kBucketShift)) - 1)};
  const uint32_t start_returned = static_cast<uint32_t>(cookie) & kBucketDone;

  E4_ASSIGN_OR_RETURN(DxCursor cursor, DxCursor::Open(ctx, source));
  E4_RETURN_IF_ERROR(cursor.Probe(start.major));

  const uint32_t max_leaves = source.BlockCount();
  uint32_t leaves = 0;
  bool first_batch = true;
  // The bucket being counted and how many of its entries came before.
  std::optional<Bucket> bucket;
  uint32_t in_bucket = 0;
  // The current batch's first leaf is the cursor's leaf.
  uint32_t lower = cursor.LeafStartHash() & ~1u;

  while (true) {
    // A batch: a leaf and the leaves that continue its last hash, whose
    // entries may interleave in hash order.
    std::vector<Block> blocks;
    std::vector<HtreeItem> items;
    if (first_batch && start == Bucket{0, 0}) {
      const format::DxRoot& root = cursor.root();
      if (root.dot_inode != 0) {
        items.push_back({0, 0, -2, ".", root.dot_inode, root.dot_file_type});
      }
      if (root.dotdot_inode != 0) {
        items.push_back(
            {0, 0, -1, "..", root.dotdot_inode, root.dotdot_file_type});
      }
    }
    int64_t ordinal = 0;
    std::optional<uint32_t> upper;  // exclusive bound: the next batch's start
    while (true) {
      if (++leaves > max_leaves) {
        return Corrupt("htree index visits more leaves than the directory has");
      }
      E4_ASSIGN_OR_RETURN(Block leaf, ReadLeaf(ctx, source, cursor.leaf()));
      absl::Status hash_status;
      E4_RETURN_IF_ERROR(format::ForEachDirEntry(
          *leaf, LeafHasTail(ctx, *leaf),
          [&](const format::RawDirEntry& entry) {
            if (entry.inode == 0) return true;
            absl::StatusOr<format::DxHash> hash = cursor.Hash(entry.name);
            if (!hash.ok()) {
              hash_status = hash.status();
              return false;
            }
            items.push_back({hash->major, hash->minor, ordinal++, entry.name,
                             entry.inode, entry.file_type});
            return true;
          }));
      E4_RETURN_IF_ERROR(hash_status);
      blocks.push_back(std::move(leaf));
      uint32_t next_hash = 0;
      E4_ASSIGN_OR_RETURN(const bool more,
                          cursor.Next(&next_hash, std::nullopt));
      if (!more) break;
      if ((next_hash & 1) == 0) {
        upper = next_hash;
        break;
      }
    }

    std::sort(items.begin(), items.end(),
              [](const HtreeItem& a, const HtreeItem& b) {
                if (a.major != b.major) return a.major < b.major;
                if (a.minor != b.minor) return a.minor < b.minor;
                return a.ordinal < b.ordinal;
              });
    for (const HtreeItem& item : items) {
      if (item.ordinal >= 0 &&
          (item.major < lower || (upper.has_value() && item.major >= *upper))) {
        return Corrupt("htree leaf entry \"" + std::string(item.name) +
                       "\" lies outside its index range");
      }
      const Bucket b = BucketOf(item.major, item.minor);
      if (bucket.has_value() && b == *bucket) {
        ++in_bucket;
      } else {
        bucket = b;
        in_bucket = 0;
      }
      if (b < start) continue;
      if (b == start &&
          (start_returned >= kBucketDone || in_bucket < start_returned)) {
        continue;
      }
      DirEntry out;
      out.name = std::string(item.name);
      out.ino = item.inode;
      out.type = EntryType(ctx, item.file_type);
      out.next_cookie = HtreeCookie(b, in_bucket + 1);
      if (!emit(out)) return absl::OkStatus();
    }
    if (!upper.has_value()) return absl::OkStatus();
    first_batch = false;
    lower = *upper;
  }
}

// ---------------------------------------------------------------------------
// Linear directories.

absl::StatusOr<uint32_t> LinearLookup(const DirectoryContext& ctx,
                                      DirectoryBlockSource& source,
                                      std::string_view name) {
  // "." and ".." live in the first block.
  const uint32_t count = IsDot(name) || IsDotDot(name)
                             ? std::min(source.BlockCount(), 1u)
                             : source.BlockCount();
  for (uint32_t logical = 0; logical < count; ++logical) {
    E4_ASSIGN_OR_RETURN(Block block, ReadLeaf(ctx, source, logical));
    E4_ASSIGN_OR_RETURN(std::optional<uint32_t> found,
                        SearchLeaf(ctx, *block, name));
    if (found.has_value()) return *found;
  }
  return NotFound(name);
}

absl::Status LinearList(const DirectoryContext& ctx,
                        DirectoryBlockSource& source, uint64_t cookie,
                        const std::function<bool(const DirEntry&)>& emit) {
  const uint64_t block_size = ctx.block_size;
  const uint32_t count = source.BlockCount();
  bool stop = false;
  for (uint64_t logical = cookie / block_size; logical < count && !stop;
       ++logical) {
    const uint64_t base = logical * block_size;
    const uint64_t skip_below = cookie > base ? cookie - base : 0;
    E4_ASSIGN_OR_RETURN(Block block,
                        ReadLeaf(ctx, source, static_cast<uint32_t>(logical)));
    E4_RETURN_IF_ERROR(format::ForEachDirEntry(
        *block, LeafHasTail(ctx, *block),
        [&](const format::RawDirEntry& entry) {
          if (entry.inode == 0 || entry.offset < skip_below) return true;
          DirEntry out;
          out.name = std::string(entry.name);
          out.ino = entry.inode;
          out.type = EntryType(ctx, entry.file_type);
          out.next_cookie = base + entry.offset + entry.rec_len;
          if (!emit(out)) {
            stop = true;
            return false;
          }
          return true;
        }));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Inline directories.

constexpr uint32_t kInlineHeader = 4;       // the parent inode number
constexpr uint32_t kInlineIBlockSize = 60;  // i_block
// Positions the kernel gives "." and ".." and the shift of the records
// (the 4-byte parent field stands for the 24 bytes of "." and "..").
constexpr uint64_t kInlineDotDotPos = 12;
constexpr uint64_t kInlineRecordsPos = 24;
constexpr uint64_t kInlineShift = kInlineRecordsPos - kInlineHeader;

struct InlineRegions {
  uint32_t parent;
  Bytes first;   // i_block[4..60)
  Bytes second;  // system.data
};

absl::StatusOr<InlineRegions> SplitInline(Bytes i_block, Bytes system_data) {
  if (i_block.size() < kInlineIBlockSize) {
    return Corrupt("inline directory: i_block too small");
  }
  if (system_data.size() > 65536) {
    return Corrupt("inline directory: system.data too large");
  }
  return InlineRegions{
      format::Le32(i_block, 0),
      i_block.subspan(kInlineHeader, kInlineIBlockSize - kInlineHeader),
      system_data};
}

}  // namespace

absl::StatusOr<uint32_t> LookupInDirectory(const DirectoryContext& ctx,
                                           DirectoryBlockSource& blocks,
                                           std::string_view name) {
  E4_RETURN_IF_ERROR(CheckContext(ctx));
  E4_RETURN_IF_ERROR(CheckName(name));
  if (name.empty()) return NotFound(name);
  if (ctx.htree) return HtreeLookup(ctx, blocks, name);
  return LinearLookup(ctx, blocks, name);
}

absl::Status ListDirectory(const DirectoryContext& ctx,
                           DirectoryBlockSource& blocks, uint64_t cookie,
                           const std::function<bool(const DirEntry&)>& emit) {
  E4_RETURN_IF_ERROR(CheckContext(ctx));
  if (ctx.htree) return HtreeList(ctx, blocks, cookie, emit);
  return LinearList(ctx, blocks, cookie, emit);
}

absl::StatusOr<uint32_t> LookupInInlineDirectory(const DirectoryContext& ctx,
                                                 Bytes i_block,
                                                 Bytes system_data,
                                                 std::string_view name) {
  E4_RETURN_IF_ERROR(CheckName(name));
  E4_ASSIGN_OR_RETURN(const InlineRegions regions,
                      SplitInline(i_block, system_data));
  if (IsDot(name)) return ctx.ino;
  if (IsDotDot(name)) return regions.parent;
  if (name.empty()) return NotFound(name);
  for (Bytes region : {regions.first, regions.second}) {
    E4_ASSIGN_OR_RETURN(std::optional<uint32_t> found,
                        SearchLeaf(DirectoryContext{}, region, name));
    if (found.has_value()) return *found;
  }
  return NotFound(name);
}

absl::Status ListInlineDirectory(
    const DirectoryContext& ctx, Bytes i_block, Bytes system_data,
    uint64_t cookie, const std::function<bool(const DirEntry&)>& emit) {
  E4_ASSIGN_OR_RETURN(const InlineRegions regions,
                      SplitInline(i_block, system_data));
  if (cookie == 0) {
    if (!emit(DirEntry{".", ctx.ino, S_IFDIR, kInlineDotDotPos})) {
      return absl::OkStatus();
    }
  }
  if (cookie <= kInlineDotDotPos) {
    if (!emit(DirEntry{"..", regions.parent, S_IFDIR, kInlineRecordsPos})) {
      return absl::OkStatus();
    }
  }
  // Records are numbered by their offset in i_block ++ system.data.
  uint64_t region_base = kInlineHeader;
  for (Bytes region : {regions.first, regions.second}) {
    bool stop = false;
    E4_RETURN_IF_ERROR(format::ForEachDirEntry(
        region, false, [&](const format::RawDirEntry& entry) {
          const uint64_t pos = region_base + entry.offset + kInlineShift;
          if (entry.inode == 0 || pos < cookie) return true;
          DirEntry out;
          out.name = std::string(entry.name);
          out.ino = entry.inode;
          out.type = EntryType(ctx, entry.file_type);
          out.next_cookie = pos + entry.rec_len;
          if (!emit(out)) {
            stop = true;
            return false;
          }
          return true;
        }));
    if (stop) break;
    region_base += region.size();
  }
  return absl::OkStatus();
}

}  // namespace ext4
