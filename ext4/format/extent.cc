#include "ext4/format/extent.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_format.h"
#include "ext4/errno_status.h"
#include "ext4/format/checksum.h"

namespace ext4::format {
namespace {

// Field offsets inside the header and the 12-byte entries.
constexpr size_t kMagicOffset = 0;
constexpr size_t kEntriesOffset = 2;
constexpr size_t kMaxOffset = 4;
constexpr size_t kDepthOffset = 6;
constexpr size_t kGenerationOffset = 8;

constexpr size_t kLogicalOffset = 0;  // ee_block / ei_block
constexpr size_t kLeafLenOffset = 4;
constexpr size_t kLeafStartHiOffset = 6;
constexpr size_t kLeafStartLoOffset = 8;
constexpr size_t kIndexLeafLoOffset = 4;
constexpr size_t kIndexLeafHiOffset = 8;
constexpr size_t kIndexUnusedOffset = 10;

// The largest logical block a file can map: extents end at or before it.
constexpr uint64_t kLogicalLimit = 0xFFFFFFFFull;

size_t EntryOffset(size_t i) {
  return kExtentHeaderSize + i * kExtentEntrySize;
}

}  // namespace

size_t ExtentNodeCapacity(size_t size) {
  if (size < kExtentHeaderSize) return 0;
  return (size - kExtentHeaderSize) / kExtentEntrySize;
}

absl::StatusOr<ExtentNode> ParseExtentNode(Bytes raw, int expected_depth) {
  if (raw.size() < kExtentHeaderSize) {
    return Corrupt(absl::StrFormat(
        "extent node: %u bytes cannot hold the 12-byte header", raw.size()));
  }
  ExtentNode node;
  const uint16_t magic = Le16(raw, kMagicOffset);
  node.header.entries = Le16(raw, kEntriesOffset);
  node.header.max = Le16(raw, kMaxOffset);
  node.header.depth = Le16(raw, kDepthOffset);
  node.header.generation = Le32(raw, kGenerationOffset);
  const ExtentHeader& h = node.header;

  if (magic != kExtentMagic) {
    return Corrupt(absl::StrFormat(
        "extent node: bad magic 0x%04x (want 0x%04x)", magic, kExtentMagic));
  }
  if (h.max == 0) return Corrupt("extent node: eh_max is 0");
  const size_t capacity = ExtentNodeCapacity(raw.size());
  if (h.max > capacity) {
    return Corrupt(absl::StrFormat(
        "extent node: eh_max %u exceeds the %u entries that fit in %u bytes",
        h.max, capacity, raw.size()));
  }
  if (h.entries > h.max) {
    return Corrupt(absl::StrFormat(
        "extent node: eh_entries %u exceeds eh_max %u", h.entries, h.max));
  }
  if (h.depth > kMaxExtentDepth) {
    return Corrupt(absl::StrFormat("extent node: depth %u exceeds the limit %d",
                                   h.depth, kMaxExtentDepth));
  }
  if (expected_depth >= 0 && h.depth != expected_depth) {
    return Corrupt(absl::StrFormat("extent node: depth %u, parent expects %d",
                                   h.depth, expected_depth));
  }

  if (h.depth > 0) {
    // An index node with no children maps nothing; the kernel collapses
    // such a tree instead of leaving one on disk.
    if (h.entries == 0) {
      return Corrupt(absl::StrFormat(
          "extent node: index node at depth %u has no entries", h.depth));
    }
    node.indexes.reserve(h.entries);
    for (size_t i = 0; i < h.entries; ++i) {
      const size_t off = EntryOffset(i);
      ExtentIndex index;
      index.logical = Le32(raw, off + kLogicalOffset);
      index.child =
          static_cast<uint64_t>(Le32(raw, off + kIndexLeafLoOffset)) |
          (static_cast<uint64_t>(Le16(raw, off + kIndexLeafHiOffset)) << 32);
      if (index.child == 0) {
        return Corrupt(absl::StrFormat(
            "extent node: index %u (logical %u) points to block 0", i,
            index.logical));
      }
      if (i > 0 && index.logical <= node.indexes.back().logical) {
        return Corrupt(absl::StrFormat(
            "extent node: index %u logical %u not above the previous %u", i,
            index.logical, node.indexes.back().logical));
      }
      node.indexes.push_back(index);
    }
    return node;
  }

  node.leaves.reserve(h.entries);
  for (size_t i = 0; i < h.entries; ++i) {
    const size_t off = EntryOffset(i);
    ExtentLeaf leaf;
    leaf.logical = Le32(raw, off + kLogicalOffset);
    const uint16_t raw_len = Le16(raw, off + kLeafLenOffset);
    if (raw_len > kInitializedExtentMaxLength) {
      leaf.unwritten = true;
      leaf.length = raw_len - kInitializedExtentMaxLength;
    } else {
      leaf.length = raw_len;
    }
    leaf.physical =
        static_cast<uint64_t>(Le32(raw, off + kLeafStartLoOffset)) |
        (static_cast<uint64_t>(Le16(raw, off + kLeafStartHiOffset)) << 32);
    if (leaf.length == 0) {
      return Corrupt(absl::StrFormat(
          "extent node: extent %u (logical %u) has length 0", i, leaf.logical));
    }
    if (uint64_t{leaf.logical} + leaf.length > kLogicalLimit) {
      return Corrupt(absl::StrFormat(
          "extent node: extent %u (logical %u, length %u) runs past the last "
          "logical block",
          i, leaf.logical, leaf.length));
    }
    if (leaf.physical == 0) {
      return Corrupt(absl::StrFormat(
          "extent node: extent %u (logical %u) starts at block 0", i,
          leaf.logical));
    }
    if (leaf.physical + leaf.length - 1 > kMaxExtentPhysicalBlock) {
      return Corrupt(absl::StrFormat(
          "extent node: extent %u (physical %u, length %u) runs past 2^48", i,
          leaf.physical, leaf.length));
    }
    if (i > 0) {
      const ExtentLeaf& prev = node.leaves.back();
      if (leaf.logical <= prev.logical) {
        return Corrupt(absl::StrFormat(
            "extent node: extent %u logical %u not above the previous %u", i,
            leaf.logical, prev.logical));
      }
      if (uint64_t{prev.logical} + prev.length > leaf.logical) {
        return Corrupt(absl::StrFormat(
            "extent node: extent %u (logical %u) overlaps the previous one "
            "(logical %u, length %u)",
            i, leaf.logical, prev.logical, prev.length));
      }
    }
    node.leaves.push_back(leaf);
  }
  return node;
}

absl::Status VerifyExtentBlockChecksum(Bytes block, uint32_t inode_seed) {
  if (block.size() < kExtentHeaderSize) {
    return Corrupt("extent block: too small for a header");
  }
  const size_t tail = EntryOffset(Le16(block, kMaxOffset));
  if (tail + kExtentTailSize > block.size()) {
    return Corrupt(absl::StrFormat(
        "extent block: eh_max %u leaves no room for the checksum tail in %u "
        "bytes",
        Le16(block, kMaxOffset), block.size()));
  }
  const uint32_t stored = Le32(block, tail);
  const uint32_t computed = Crc32c(inode_seed, block.first(tail));
  if (stored != computed) return ChecksumMismatch("extent block");
  return absl::OkStatus();
}

void SetExtentBlockChecksum(MutableBytes block, uint32_t inode_seed) {
  if (block.size() < kExtentHeaderSize) return;
  const size_t tail = EntryOffset(Le16(block, kMaxOffset));
  if (tail + kExtentTailSize > block.size()) return;
  Put32(block, tail, Crc32c(inode_seed, Bytes(block).first(tail)));
}

void SerializeExtentNode(const ExtentNode& node, MutableBytes raw) {
  const size_t capacity =
      std::min<size_t>(ExtentNodeCapacity(raw.size()), 0xFFFF);
  if (capacity == 0) return;
  const size_t max = (node.header.max == 0 || node.header.max > capacity)
                         ? capacity
                         : node.header.max;
  const bool leaf = node.header.depth == 0;
  const size_t wanted = leaf ? node.leaves.size() : node.indexes.size();
  const size_t entries = std::min(wanted, max);

  Put16(raw, kMagicOffset, kExtentMagic);
  Put16(raw, kEntriesOffset, static_cast<uint16_t>(entries));
  Put16(raw, kMaxOffset, static_cast<uint16_t>(max));
  Put16(raw, kDepthOffset, node.header.depth);
  Put32(raw, kGenerationOffset, node.header.generation);

  for (size_t i = 0; i < entries; ++i) {
    const size_t off = EntryOffset(i);
    if (leaf) {
      const ExtentLeaf& e = node.leaves[i];
      const uint32_t len =
          e.unwritten ? e.length + kInitializedExtentMaxLength : e.length;
      Put32(raw, off + kLogicalOffset, e.logical);
      Put16(raw, off + kLeafLenOffset, static_cast<uint16_t>(len));
      Put16(raw, off + kLeafStartHiOffset,
            static_cast<uint16_t>(e.physical >> 32));
      Put32(raw, off + kLeafStartLoOffset, static_cast<uint32_t>(e.physical));
    } else {
      const ExtentIndex& e = node.indexes[i];
      Put32(raw, off + kLogicalOffset, e.logical);
      Put32(raw, off + kIndexLeafLoOffset, static_cast<uint32_t>(e.child));
      Put16(raw, off + kIndexLeafHiOffset,
            static_cast<uint16_t>(e.child >> 32));
      Put16(raw, off + kIndexUnusedOffset, 0);
    }
  }
  const size_t used_end = EntryOffset(entries);
  const size_t slots_end = EntryOffset(max);
  std::fill(raw.begin() + used_end, raw.begin() + slots_end, 0);
}

}  // namespace ext4::format
