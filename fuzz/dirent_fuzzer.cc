// Directory blocks: the input (after a flags byte, a checksum seed and a
// rec_len probe) as one linear leaf block, with and without the checksum
// tail, and as an htree root and interior block. Every record walked must be
// one the documented checks allow; a block that parses is rebuilt from its
// records and must parse the same; checksums just written must verify; index
// blocks that parse are rebuilt with the index writers and must parse back.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "ext4/format/checksum.h"
#include "ext4/format/dirent.h"
#include "ext4/format/endian.h"
#include "ext4/format/htree.h"
#include "fuzz/fuzz_support.h"

namespace {

using ext4::format::Bytes;
using ext4::format::RawDirEntry;
using ext4::fuzz::FuzzInput;
namespace format = ext4::format;

// A record with its name copied out of the block.
struct Record {
  uint32_t inode;
  uint32_t rec_len;
  uint8_t name_len;
  uint8_t file_type;
  std::string name;
  uint32_t offset;
  bool operator==(const Record&) const = default;
};

Record Copy(const RawDirEntry& entry) {
  return Record{entry.inode,     entry.rec_len,           entry.name_len,
                entry.file_type, std::string(entry.name), entry.offset};
}

bool IsBlockSize(size_t size) {
  return size >= 1024 && size <= 65536 && (size & (size - 1)) == 0;
}

// Walks the block, checking every record visited against the documented
// rules. Returns the walk's status; `records` gets what was visited.
absl::Status Walk(Bytes block, bool tail, std::vector<Record>* records) {
  const uint32_t end =
      static_cast<uint32_t>(tail && block.size() >= format::kDirCsumTailSize
                                ? block.size() - format::kDirCsumTailSize
                                : block.size());
  uint32_t expected_offset = 0;
  absl::Status status =
      format::ForEachDirEntry(block, tail, [&](const RawDirEntry& entry) {
        FUZZ_CHECK(entry.offset == expected_offset);
        FUZZ_CHECK(entry.rec_len >= format::DirRecLen(1));
        FUZZ_CHECK(entry.rec_len % 4 == 0);
        FUZZ_CHECK(entry.rec_len >= format::DirRecLen(entry.name_len));
        FUZZ_CHECK(entry.rec_len <= end - entry.offset);
        FUZZ_CHECK(entry.name.size() == entry.name_len);
        FUZZ_CHECK(reinterpret_cast<const uint8_t*>(entry.name.data()) ==
                   block.data() + entry.offset + format::kDirEntryHeaderSize);
        expected_offset += entry.rec_len;
        records->push_back(Copy(entry));
        return true;
      });
  if (status.ok()) {
    FUZZ_CHECK(expected_offset == end);
    if (tail) FUZZ_CHECK(format::HasDirCsumTail(block));
  }
  return status;
}

void CheckLeaf(Bytes block, bool tail, uint32_t seed) {
  std::vector<Record> records;
  const absl::Status walked = Walk(block, tail, &records);

  auto used = format::ParseDirBlock(block, tail);
  FUZZ_CHECK(used.ok() == walked.ok());
  if (used.ok()) {
    std::vector<Record> expected;
    for (const Record& r : records) {
      if (r.inode != 0) expected.push_back(r);
    }
    FUZZ_CHECK(used->size() == expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      FUZZ_CHECK(Copy((*used)[i]) == expected[i]);
    }
  }

  // Stopping early is not an error, whatever follows.
  if (records.size() > 1) {
    const size_t stop_at = records.size() / 2;
    size_t seen = 0;
    const absl::Status stopped = format::ForEachDirEntry(
        block, tail, [&](const RawDirEntry&) { return ++seen < stop_at; });
    FUZZ_CHECK(stopped.ok());
    FUZZ_CHECK(seen == stop_at);
  }

  if (!walked.ok() || !IsBlockSize(block.size())) return;
  // The records alone rebuild the block.
  std::vector<uint8_t> rebuilt(block.size(), 0);
  for (const Record& r : records) {
    format::WriteDirEntry(rebuilt, r.offset, r.inode, r.rec_len, r.name,
                          r.file_type);
  }
  if (tail) {
    format::InitDirCsumTail(rebuilt);
    format::SetDirBlockChecksum(rebuilt, seed);
  }
  std::vector<Record> again;
  FUZZ_CHECK(Walk(rebuilt, tail, &again).ok());
  FUZZ_CHECK(again == records);
  if (tail) {
    const uint64_t mismatches = format::ChecksumMismatchesIgnored();
    FUZZ_CHECK(format::VerifyDirBlockChecksum(rebuilt, seed).ok());
    FUZZ_CHECK(format::ChecksumMismatchesIgnored() == mismatches);
  }
}

void CheckChecksum(Bytes block, uint32_t seed) {
  (void)format::HasDirCsumTail(block);
  (void)format::DirBlockChecksum(block, seed);
  (void)format::VerifyDirBlockChecksum(block, seed);
  if (!IsBlockSize(block.size())) return;
  std::vector<uint8_t> copy(block.begin(), block.end());
  format::InitDirCsumTail(copy);
  FUZZ_CHECK(format::HasDirCsumTail(copy));
  format::SetDirBlockChecksum(copy, seed);
  const uint64_t mismatches = format::ChecksumMismatchesIgnored();
  FUZZ_CHECK(format::VerifyDirBlockChecksum(copy, seed).ok());
  FUZZ_CHECK(format::ChecksumMismatchesIgnored() == mismatches);
}

void CheckRecLen(uint32_t block_size, uint16_t probe) {
  const uint32_t len = std::max<uint32_t>(12, (probe * 4u) % (block_size + 4));
  if (len > block_size) return;
  FUZZ_CHECK(format::DecodeRecLen(format::EncodeRecLen(len, block_size),
                                  block_size) == len);
}

// The documented meaning of DxEntries::Find: the last entry whose hash is
// <= `hash`, entry 0 when there is none.
void CheckFind(const format::DxEntries& entries, uint32_t hash) {
  const size_t at = entries.Find(hash);
  FUZZ_CHECK(at < entries.count());
  if (at > 0) FUZZ_CHECK(entries.hash(at) <= hash);
  if (at + 1 < entries.count()) FUZZ_CHECK(entries.hash(at + 1) > hash);
}

void CheckEntries(const format::DxEntries& entries, uint32_t limit,
                  uint32_t probe) {
  FUZZ_CHECK(entries.limit() == limit);
  FUZZ_CHECK(entries.count() >= 1 && entries.count() <= entries.limit());
  for (size_t i = 2; i < entries.count(); ++i) {
    FUZZ_CHECK(entries.hash(i) >= entries.hash(i - 1));
  }
  CheckFind(entries, probe);
  CheckFind(entries, 0);
  CheckFind(entries, 0xFFFFFFFF);
  for (size_t i = 0; i < entries.count(); i += 1 + entries.count() / 8) {
    CheckFind(entries, entries.hash(i));
    CheckFind(entries, entries.hash(i) - 1);
    CheckFind(entries, entries.hash(i) + 1);
  }
}

void CopyEntries(const format::DxEntries& from, std::vector<uint8_t>& to) {
  format::PutDxCount(to, from.count_offset(), from.count());
  for (size_t i = 0; i < from.count(); ++i) {
    format::PutDxEntry(to, from.count_offset(), i, from.hash(i), from.block(i));
  }
}

bool SameEntries(const format::DxEntries& a, const format::DxEntries& b) {
  if (a.count() != b.count() || a.limit() != b.limit() ||
      a.count_offset() != b.count_offset()) {
    return false;
  }
  for (size_t i = 0; i < a.count(); ++i) {
    if (a.hash(i) != b.hash(i) || a.block(i) != b.block(i)) return false;
  }
  return true;
}

// A block whose index parsed takes a checksum that then verifies.
void CheckDxChecksum(Bytes block, uint32_t seed) {
  std::vector<uint8_t> copy(block.begin(), block.end());
  FUZZ_CHECK(format::SetDxChecksum(copy, seed).ok());
  const uint64_t mismatches = format::ChecksumMismatchesIgnored();
  FUZZ_CHECK(format::VerifyDxChecksum(copy, seed).ok());
  FUZZ_CHECK(format::ChecksumMismatchesIgnored() == mismatches);
}

void CheckIndex(Bytes block, bool metadata_csum, bool large_dir, uint32_t seed,
                uint32_t probe) {
  (void)format::VerifyDxChecksum(block, seed);
  auto offset = format::DxCountOffset(block);
  const uint32_t block_size = static_cast<uint32_t>(block.size());

  auto root = format::ParseDxRoot(block, metadata_csum, large_dir);
  if (root.ok()) {
    FUZZ_CHECK(offset.ok() && *offset == format::kDxRootCountOffset);
    FUZZ_CHECK(root->entries.count_offset() == format::kDxRootCountOffset);
    FUZZ_CHECK(root->indirect_levels < format::DxMaxLevels(large_dir));
    CheckEntries(root->entries, format::DxRootLimit(block_size, metadata_csum),
                 probe);
    if (metadata_csum) CheckDxChecksum(block, seed);
    std::vector<uint8_t> rebuilt(block.size(), 0);
    format::InitDxRoot(rebuilt, root->dot_inode, root->dotdot_inode,
                       root->dot_file_type, root->hash_version,
                       root->indirect_levels, metadata_csum);
    CopyEntries(root->entries, rebuilt);
    auto again = format::ParseDxRoot(rebuilt, metadata_csum, large_dir);
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(again->dot_inode == root->dot_inode);
    FUZZ_CHECK(again->dotdot_inode == root->dotdot_inode);
    FUZZ_CHECK(again->dot_file_type == root->dot_file_type);
    FUZZ_CHECK(again->hash_version == root->hash_version);
    FUZZ_CHECK(again->indirect_levels == root->indirect_levels);
    FUZZ_CHECK(SameEntries(again->entries, root->entries));
  }

  auto node = format::ParseDxNode(block, metadata_csum);
  if (node.ok()) {
    FUZZ_CHECK(offset.ok() && *offset == format::kDxNodeCountOffset);
    FUZZ_CHECK(node->count_offset() == format::kDxNodeCountOffset);
    CheckEntries(*node, format::DxNodeLimit(block_size, metadata_csum), probe);
    if (metadata_csum) CheckDxChecksum(block, seed);
    std::vector<uint8_t> rebuilt(block.size(), 0);
    format::InitDxNode(rebuilt, metadata_csum);
    CopyEntries(*node, rebuilt);
    auto again = format::ParseDxNode(rebuilt, metadata_csum);
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(SameEntries(*again, *node));
  }
  FUZZ_CHECK(!(root.ok() && node.ok()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const uint8_t flags = in.U8();
  const uint32_t seed = in.U32();
  const uint16_t probe = in.U16();
  Bytes rest = in.Rest();

  // Sizes a filesystem has, padded with zeros, or the input as it is.
  static constexpr uint32_t kSizes[] = {1024, 2048, 4096, 65536};
  std::vector<uint8_t> block;
  if (flags & 0x20) {
    block.assign(rest.begin(), rest.end());
  } else {
    block.assign(kSizes[flags & 3], 0);
    std::copy_n(rest.begin(), std::min(rest.size(), block.size()),
                block.begin());
  }
  const bool metadata_csum = (flags & 0x08) != 0;
  const bool large_dir = (flags & 0x10) != 0;

  CheckLeaf(block, /*tail=*/false, seed);
  CheckLeaf(block, /*tail=*/true, seed);
  CheckChecksum(block, seed);
  if (IsBlockSize(block.size())) {
    CheckRecLen(static_cast<uint32_t>(block.size()), probe);
  }
  CheckIndex(block, metadata_csum, large_dir, seed, seed ^ probe);

  for (uint8_t type = 0; type < 16; ++type) {
    const uint32_t mode = format::DirFileTypeToMode(type);
    FUZZ_CHECK((mode == 0) == (type == 0 || type > 7));
    if (mode != 0) FUZZ_CHECK(format::ModeToDirFileType(mode) == type);
  }
  return 0;
}
