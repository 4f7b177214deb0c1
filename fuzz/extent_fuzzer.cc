// Extent tree nodes: the input (after a selector byte and a checksum seed)
// as the 60-byte root in i_block, as a 1 KiB or 4 KiB tree block, or as is.
// ParseExtentNode with the root's "any depth" and with a depth from the
// selector; the tree block checksum; and, when a node parses, a serialize /
// parse round trip and a checksum written then verified.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "ext4/format/checksum.h"
#include "ext4/format/endian.h"
#include "ext4/format/extent.h"
#include "fuzz/fuzz_support.h"

namespace {

using ext4::format::Bytes;
using ext4::format::ExtentNode;
using ext4::fuzz::FuzzInput;
namespace format = ext4::format;

bool SameNode(const ExtentNode& a, const ExtentNode& b) {
  if (a.header.entries != b.header.entries || a.header.max != b.header.max ||
      a.header.depth != b.header.depth ||
      a.header.generation != b.header.generation ||
      a.leaves.size() != b.leaves.size() ||
      a.indexes.size() != b.indexes.size()) {
    return false;
  }
  for (size_t i = 0; i < a.leaves.size(); ++i) {
    const format::ExtentLeaf& x = a.leaves[i];
    const format::ExtentLeaf& y = b.leaves[i];
    if (x.logical != y.logical || x.length != y.length ||
        x.unwritten != y.unwritten || x.physical != y.physical) {
      return false;
    }
  }
  for (size_t i = 0; i < a.indexes.size(); ++i) {
    if (a.indexes[i].logical != b.indexes[i].logical ||
        a.indexes[i].child != b.indexes[i].child) {
      return false;
    }
  }
  return true;
}

// What a node that parsed must look like.
void CheckNode(const ExtentNode& node, size_t buffer_size, int expected_depth) {
  const format::ExtentHeader& h = node.header;
  FUZZ_CHECK(h.max >= 1 && h.max <= format::ExtentNodeCapacity(buffer_size));
  FUZZ_CHECK(h.entries <= h.max);
  FUZZ_CHECK(h.depth <= format::kMaxExtentDepth);
  if (expected_depth >= 0) FUZZ_CHECK(h.depth == expected_depth);
  if (h.depth == 0) {
    FUZZ_CHECK(node.leaves.size() == h.entries && node.indexes.empty());
    uint64_t end = 0;  // first logical block after the previous extent
    for (const format::ExtentLeaf& leaf : node.leaves) {
      FUZZ_CHECK(leaf.length >= 1);
      FUZZ_CHECK(leaf.length <= (leaf.unwritten
                                     ? format::kUnwrittenExtentMaxLength
                                     : format::kInitializedExtentMaxLength));
      FUZZ_CHECK(leaf.logical >= end);
      end = uint64_t{leaf.logical} + leaf.length;
      FUZZ_CHECK(end <= 0xFFFFFFFFull);
      FUZZ_CHECK(leaf.physical != 0);
      FUZZ_CHECK(leaf.physical + leaf.length - 1 <=
                 format::kMaxExtentPhysicalBlock);
    }
  } else {
    FUZZ_CHECK(node.indexes.size() == h.entries && node.leaves.empty());
    FUZZ_CHECK(h.entries >= 1);
    for (size_t i = 0; i < node.indexes.size(); ++i) {
      FUZZ_CHECK(node.indexes[i].child != 0);
      if (i > 0) {
        FUZZ_CHECK(node.indexes[i].logical > node.indexes[i - 1].logical);
      }
    }
  }
}

void CheckRoundTrip(Bytes raw, const ExtentNode& node, int expected_depth,
                    uint32_t seed) {
  std::vector<uint8_t> out(raw.size(), 0);
  format::SerializeExtentNode(node, out);
  const size_t used_end = format::kExtentHeaderSize +
                          node.header.entries * format::kExtentEntrySize;
  const size_t slots_end =
      format::kExtentHeaderSize + node.header.max * format::kExtentEntrySize;
  // The header and the used entries come back byte for byte, but for the
  // unused half-word of index entries, which is written as zero.
  for (size_t i = 0; i < used_end; ++i) {
    const size_t in_entry =
        i < format::kExtentHeaderSize
            ? 0
            : (i - format::kExtentHeaderSize) % format::kExtentEntrySize;
    const bool unused = node.header.depth > 0 &&
                        i >= format::kExtentHeaderSize && in_entry >= 10;
    FUZZ_CHECK(out[i] == (unused ? 0 : raw[i]));
  }
  for (size_t i = used_end; i < out.size(); ++i) FUZZ_CHECK(out[i] == 0);
  FUZZ_CHECK(slots_end <= out.size());

  auto again = format::ParseExtentNode(out, expected_depth);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(SameNode(node, *again));

  // A checksum just written verifies, wherever eh_max leaves room for it.
  format::SetExtentBlockChecksum(out, seed);
  const uint64_t mismatches = format::ChecksumMismatchesIgnored();
  const absl::Status verified = format::VerifyExtentBlockChecksum(out, seed);
  if (slots_end + format::kExtentTailSize <= out.size()) {
    FUZZ_CHECK(verified.ok());
    FUZZ_CHECK(format::ChecksumMismatchesIgnored() == mismatches);
    auto with_tail = format::ParseExtentNode(out, expected_depth);
    FUZZ_CHECK(with_tail.ok() && SameNode(node, *with_tail));
  } else {
    FUZZ_CHECK(!verified.ok());
  }
}

void Run(Bytes raw, int expected_depth, uint32_t seed) {
  (void)format::VerifyExtentBlockChecksum(raw, seed);
  auto node = format::ParseExtentNode(raw, expected_depth);
  if (!node.ok()) return;
  CheckNode(*node, raw.size(), expected_depth);
  CheckRoundTrip(raw, *node, expected_depth, seed);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const uint8_t selector = in.U8();
  const uint32_t seed = in.U32();
  Bytes rest = in.Rest();

  std::vector<uint8_t> buffer;
  switch ((selector >> 3) & 3) {
    case 0:
      buffer.resize(format::kExtentRootSize);
      break;
    case 1:
      buffer.resize(1024);
      break;
    case 2:
      buffer.resize(4096);
      break;
    case 3:
      buffer.resize(rest.size());
      break;
  }
  std::copy_n(rest.begin(), std::min(rest.size(), buffer.size()),
              buffer.begin());

  const int depth = static_cast<int>(selector % 8) - 1;  // -1 .. 6
  Run(buffer, -1, seed);
  if (depth != -1) Run(buffer, depth, seed);
  return 0;
}
