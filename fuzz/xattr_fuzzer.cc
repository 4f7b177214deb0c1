// Extended attributes: the input (after a flags byte, a block number and a
// checksum seed) as an in-inode xattr area, as an xattr block with and
// without metadata_csum, as POSIX ACLs in both forms, and as attribute
// names. Entry tables that parse are laid out again from their entries and
// must parse the same; ACLs that convert must convert back; names that split
// must join back.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ext4/format/checksum.h"
#include "ext4/format/endian.h"
#include "ext4/format/xattr.h"
#include "fuzz/fuzz_support.h"

namespace {

using ext4::format::Bytes;
using ext4::format::XattrEntry;
using ext4::fuzz::FuzzInput;
namespace format = ext4::format;

Bytes AsBytes(std::string_view s) {
  return Bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

bool SameEntry(const XattrEntry& a, const XattrEntry& b) {
  return a.name_index == b.name_index && a.name == b.name &&
         a.value_inum == b.value_inum && a.value_size == b.value_size &&
         a.value == b.value && a.hash == b.hash;
}

bool SameEntries(const std::vector<XattrEntry>& a,
                 const std::vector<XattrEntry>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!SameEntry(a[i], b[i])) return false;
  }
  return true;
}

// Lays out `entries` in `region`: the table from `first`, the values packed
// down from the end (4-byte aligned), their offsets counted from
// `value_base`. False when they do not fit; the caller then skips the check.
bool LayOut(const std::vector<XattrEntry>& entries, size_t first,
            size_t value_base, std::vector<uint8_t>& region) {
  size_t pos = first;
  size_t values_start = region.size() & ~size_t{3};
  for (const XattrEntry& e : entries) {
    const size_t entry_size = format::XattrEntrySize(e.name.size());
    uint16_t value_offs = 0;
    if (e.value_inum == 0 && e.value_size != 0) {
      const size_t padded = format::XattrValueSize(e.value_size);
      if (padded > values_start) return false;
      values_start -= padded;
      if (values_start < value_base || values_start - value_base > 0xFFFF) {
        return false;
      }
      value_offs = static_cast<uint16_t>(values_start - value_base);
      std::copy(e.value.begin(), e.value.end(), region.begin() + values_start);
    }
    if (pos + entry_size + 4 > values_start) return false;
    region[pos] = static_cast<uint8_t>(e.name.size());
    region[pos + 1] = e.name_index;
    format::Put16(region, pos + 2, value_offs);
    format::Put32(region, pos + 4, e.value_inum);
    format::Put32(region, pos + 8, e.value_size);
    format::Put32(region, pos + 12, e.hash);
    std::copy(e.name.begin(), e.name.end(),
              region.begin() + pos + format::kXattrEntryHeaderSize);
    pos += entry_size;
  }
  return pos + 4 <= values_start;
}

void CheckEntries(const std::vector<XattrEntry>& entries, size_t region_size) {
  for (const XattrEntry& e : entries) {
    FUZZ_CHECK(e.value_size <= format::kXattrMaxValueSize);
    FUZZ_CHECK(e.name.size() <= format::kXattrMaxNameLen);
    FUZZ_CHECK(e.name.find('\0') == std::string::npos);
    if (e.value_inum == 0) {
      FUZZ_CHECK(e.value.size() == e.value_size);
      FUZZ_CHECK(e.value.size() <= region_size);
      const uint32_t hash = format::XattrEntryHash(e.name, AsBytes(e.value));
      const uint32_t signed_hash =
          format::XattrEntryHashSigned(e.name, AsBytes(e.value));
      // Signedness only matters for bytes >= 0x80.
      if (std::all_of(e.name.begin(), e.name.end(),
                      [](char c) { return (c & 0x80) == 0; })) {
        FUZZ_CHECK(hash == signed_hash);
      }
    } else {
      FUZZ_CHECK(e.value_inum >= format::kXattrFirstValueInode);
      FUZZ_CHECK(e.value.empty());
      (void)format::XattrEntryHashForValueInode(e.name, e.hash);
    }
    // A name the engine can list splits back into the same name.
    const std::string full = format::FullXattrName(e.name_index, e.name);
    if (!full.empty()) {
      uint8_t index = 0;
      std::string suffix;
      FUZZ_CHECK(format::SplitXattrName(full, &index, &suffix));
      FUZZ_CHECK(format::FullXattrName(index, suffix) == full);
    }
  }
  (void)format::XattrBlockHash(entries);
}

void CheckInodeArea(Bytes area) {
  auto entries = format::ParseInodeXattrs(area);
  if (!entries.ok()) return;
  if (area.size() < 4 || format::Le32(area, 0) != format::kXattrMagic) {
    FUZZ_CHECK(entries->empty());
    return;
  }
  CheckEntries(*entries, area.size());
  std::vector<uint8_t> rebuilt(area.size(), 0);
  format::Put32(rebuilt, 0, format::kXattrMagic);
  std::vector<uint8_t> body(area.size() - format::kXattrInodeHeaderSize, 0);
  if (!LayOut(*entries, 0, 0, body)) return;
  std::copy(body.begin(), body.end(),
            rebuilt.begin() + format::kXattrInodeHeaderSize);
  auto again = format::ParseInodeXattrs(rebuilt);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(SameEntries(*entries, *again));
}

void CheckBlock(Bytes block, uint64_t block_number, bool metadata_csum,
                uint32_t fs_seed) {
  (void)format::XattrBlockChecksum(block, block_number, fs_seed);
  auto parsed =
      format::ParseXattrBlock(block, block_number, metadata_csum, fs_seed);
  if (!parsed.ok()) return;
  FUZZ_CHECK(parsed->blocks == 1);
  CheckEntries(parsed->entries, block.size());

  std::vector<uint8_t> rebuilt(block.size(), 0);
  if (!LayOut(parsed->entries, format::kXattrBlockHeaderSize, 0, rebuilt)) {
    return;
  }
  format::Put32(rebuilt, 0, format::kXattrMagic);
  format::Put32(rebuilt, 4, parsed->refcount);
  format::Put32(rebuilt, 8, parsed->blocks);
  format::Put32(rebuilt, 12, parsed->hash);
  format::SetXattrBlockChecksum(rebuilt, block_number, fs_seed);
  const uint64_t mismatches = format::ChecksumMismatchesIgnored();
  auto again = format::ParseXattrBlock(rebuilt, block_number,
                                       /*metadata_csum=*/true, fs_seed);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(format::ChecksumMismatchesIgnored() == mismatches);
  FUZZ_CHECK(again->refcount == parsed->refcount);
  FUZZ_CHECK(again->hash == parsed->hash);
  FUZZ_CHECK(SameEntries(parsed->entries, again->entries));
}

void CheckAcl(Bytes raw) {
  // Disk form -> VFS form -> disk form gives the same bytes back.
  auto xattr = format::AclDiskToXattr(raw);
  if (xattr.ok()) {
    if (xattr->empty()) {
      FUZZ_CHECK(raw.size() == 4);
    } else {
      FUZZ_CHECK(xattr->size() >= 4 && (xattr->size() - 4) % 8 == 0);
      auto disk = format::AclXattrToDisk(AsBytes(*xattr));
      if (disk.ok()) {
        FUZZ_CHECK(std::equal(
            disk->begin(), disk->end(), raw.begin(), raw.end(),
            [](char a, uint8_t b) { return static_cast<uint8_t>(a) == b; }));
      }
    }
  }

  // A VFS ACL the kernel would accept converts to disk and back, with the
  // ids of the entries that have none reading as undefined.
  auto disk = format::AclXattrToDisk(raw);
  if (!disk.ok()) return;
  if (disk->empty()) {
    FUZZ_CHECK(raw.size() == 4);
    return;
  }
  auto back = format::AclDiskToXattr(AsBytes(*disk));
  FUZZ_CHECK(back.ok());
  std::vector<uint8_t> expected(raw.begin(), raw.end());
  for (size_t off = 4; off + 8 <= expected.size(); off += 8) {
    const uint16_t tag = format::Le16(expected, off);
    if (tag != format::kAclUser && tag != format::kAclGroup) {
      format::Put32(expected, off + 4, format::kAclUndefinedId);
    }
  }
  FUZZ_CHECK(AsBytes(*back).size() == expected.size());
  FUZZ_CHECK(
      std::equal(expected.begin(), expected.end(), AsBytes(*back).begin()));
}

void CheckName(std::string_view full) {
  uint8_t index = 0;
  std::string suffix;
  if (!format::SplitXattrName(full, &index, &suffix)) return;
  FUZZ_CHECK(format::FullXattrName(index, suffix) == full);
}

void CheckNames(Bytes raw, uint8_t index) {
  const std::string_view text(reinterpret_cast<const char*>(raw.data()),
                              raw.size());
  // Each NUL-separated piece as a full name, and with a prefix put in front.
  size_t start = 0;
  for (int pieces = 0; pieces < 16 && start <= text.size(); ++pieces) {
    size_t end = text.find('\0', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view piece = text.substr(start, end - start);
    CheckName(piece);
    const std::string joined = format::FullXattrName(index, piece);
    if (!joined.empty()) CheckName(joined);
    start = end + 1;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const uint8_t flags = in.U8();
  const uint64_t block_number = in.U32();
  const uint32_t fs_seed = in.U32();
  Bytes rest = in.Rest();

  CheckInodeArea(rest);

  // An xattr block of a real size, zero padded, or the input as it is.
  std::vector<uint8_t> block;
  if (flags & 0x01) {
    block.assign(rest.begin(), rest.end());
  } else {
    block.assign((flags & 0x02) ? 4096 : 1024, 0);
    std::copy_n(rest.begin(), std::min(rest.size(), block.size()),
                block.begin());
  }
  CheckBlock(block, block_number, /*metadata_csum=*/false, fs_seed);
  CheckBlock(block, block_number, /*metadata_csum=*/true, fs_seed);
  (void)format::XattrValueInodeHash(fs_seed, rest);

  CheckAcl(rest);
  CheckNames(rest, static_cast<uint8_t>(flags >> 2));
  return 0;
}
