// Extent tree nodes: the 60-byte root in an inode's i_block and the tree
// blocks below it. A node is a 12-byte header followed by eh_max slots of
// 12 bytes, holding either index entries (depth > 0) or leaf extents
// (depth 0). Tree blocks carry a crc32c tail right after the eh_max slots.
#ifndef E4FS_EXT4_FORMAT_EXTENT_H_
#define E4FS_EXT4_FORMAT_EXTENT_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ext4/format/endian.h"

namespace ext4::format {

inline constexpr uint16_t kExtentMagic = 0xF30A;
inline constexpr int kMaxExtentDepth = 5;
// ee_len values up to this are initialized extents; larger ones are
// unwritten extents of length ee_len - kInitializedExtentMaxLength.
inline constexpr uint32_t kInitializedExtentMaxLength = 32768;
inline constexpr uint32_t kUnwrittenExtentMaxLength = 32767;
inline constexpr size_t kExtentHeaderSize = 12;
inline constexpr size_t kExtentEntrySize = 12;
inline constexpr size_t kExtentTailSize = 4;
// The root node lives in i_block (15 * 4 bytes).
inline constexpr size_t kExtentRootSize = 60;
// Physical block numbers are 48 bits wide.
inline constexpr uint64_t kMaxExtentPhysicalBlock = (uint64_t{1} << 48) - 1;

struct ExtentHeader {
  uint16_t entries = 0;
  uint16_t max = 0;
  uint16_t depth = 0;
  uint32_t generation = 0;
};

// An index entry: the subtree at `child` maps logical blocks >= `logical`.
struct ExtentIndex {
  uint32_t logical = 0;
  uint64_t child = 0;
};

// A leaf extent: `length` blocks from `logical` map to `physical`.
struct ExtentLeaf {
  uint32_t logical = 0;
  uint32_t length = 0;
  bool unwritten = false;
  uint64_t physical = 0;
};

struct ExtentNode {
  ExtentHeader header;
  std::vector<ExtentIndex> indexes;  // depth > 0
  std::vector<ExtentLeaf> leaves;    // depth == 0
};

// How many entries fit in a node buffer of `size` bytes (4 for i_block,
// (block_size - 12) / 12 for a tree block). 0 if not even the header fits.
size_t ExtentNodeCapacity(size_t size);

// Parses and validates one node. `raw` is the inode's 60-byte i_block (the
// root) or a whole tree block; `expected_depth` is the depth the parent
// promises, or -1 for the root (any depth up to kMaxExtentDepth). Checks the
// magic, eh_max against the buffer, eh_entries <= eh_max, the depth, strictly
// ascending logical starts, nonzero non-wrapping leaf lengths, no overlapping
// leaves and nonzero physical blocks. EUCLEAN on any violation. The checksum
// of a tree block is checked separately (VerifyExtentBlockChecksum).
absl::StatusOr<ExtentNode> ParseExtentNode(Bytes raw, int expected_depth);

// Tree block checksum: crc32c(inode_seed, the block up to the tail), stored
// in the 4-byte tail that follows the eh_max slots. The inode seed is
// InodeChecksumSeed(fs_seed, ino, generation). EUCLEAN when the header cannot
// place a tail inside the block; a mismatch goes through ChecksumMismatch.
absl::Status VerifyExtentBlockChecksum(Bytes block, uint32_t inode_seed);

// Computes and stores the tail checksum of a tree block. The header must
// already be in place; does nothing if eh_max leaves no room for a tail.
void SetExtentBlockChecksum(MutableBytes block, uint32_t inode_seed);

// Writes `node` into `raw` (i_block or a whole tree block): header, entries
// (leaves when header.depth == 0, indexes otherwise) and zeroes for the
// unused slots. eh_entries is the vector's size; eh_max is header.max, or
// the buffer's capacity when header.max is 0 or larger than it. Entries that
// do not fit are not written (callers keep nodes within capacity); lengths
// are encoded with the unwritten flag. The tail of a tree block is left for
// SetExtentBlockChecksum.
void SerializeExtentNode(const ExtentNode& node, MutableBytes raw);

}  // namespace ext4::format

#endif  // E4FS_EXT4_FORMAT_EXTENT_H_
