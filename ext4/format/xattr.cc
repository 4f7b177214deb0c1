#include "ext4/format/xattr.h"

#include <array>
#include <cerrno>
#include <string>

#include "absl/strings/str_format.h"
#include "ext4/errno_status.h"
#include "ext4/format/checksum.h"

namespace ext4::format {
namespace {

struct NamePrefix {
  uint8_t index;
  std::string_view prefix;
  bool whole_name;  // the prefix is the entire name; the suffix is empty
};

constexpr std::array<NamePrefix, 8> kPrefixes = {{
    {kXattrIndexUser, "user.", false},
    {kXattrIndexPosixAclAccess, "system.posix_acl_access", true},
    {kXattrIndexPosixAclDefault, "system.posix_acl_default", true},
    {kXattrIndexTrusted, "trusted.", false},
    {kXattrIndexSecurity, "security.", false},
    {kXattrIndexSystem, "system.", false},
    {kXattrIndexRichAcl, "system.richacl", true},
    {kXattrIndexHurd, "gnu.", false},
}};

const NamePrefix* FindIndex(uint8_t index) {
  for (const NamePrefix& p : kPrefixes) {
    if (p.index == index) return &p;
  }
  return nullptr;
}

// Entry field offsets.
constexpr size_t kNameLenOffset = 0;
constexpr size_t kNameIndexOffset = 1;
constexpr size_t kValueOffsOffset = 2;
constexpr size_t kValueInumOffset = 4;
constexpr size_t kValueSizeOffset = 8;
constexpr size_t kHashOffset = 12;

// Block header field offsets.
constexpr size_t kBlockMagicOffset = 0;
constexpr size_t kBlockRefcountOffset = 4;
constexpr size_t kBlockBlocksOffset = 8;
constexpr size_t kBlockHashOffset = 12;
constexpr size_t kBlockChecksumOffset = 16;

constexpr int kNameHashShift = 5;
constexpr int kValueHashShift = 16;
constexpr int kBlockHashShift = 16;

uint32_t Rotl(uint32_t value, int shift) {
  return (value << shift) ^ (value >> (32 - shift));
}

bool WholeNameIndex(uint8_t index) {
  const NamePrefix* p = FindIndex(index);
  return p != nullptr && p->whole_name;
}

// Parses an entry table inside `region`: entries start at `first`, value
// offsets count from `value_base`, and everything must end by
// region.size(). `aligned_values` demands 4-byte aligned value offsets.
absl::StatusOr<std::vector<XattrEntry>> ParseEntries(Bytes region, size_t first,
                                                     size_t value_base,
                                                     bool aligned_values,
                                                     std::string_view what) {
  const size_t end = region.size();
  auto corrupt = [&](const std::string& message) {
    return Corrupt(std::string(what) + ": " + message);
  };

  struct Placed {
    XattrEntry entry;
    uint16_t value_offs;
  };
  std::vector<Placed> placed;
  size_t pos = first;
  while (true) {
    if (pos > end || end - pos < 4) {
      return corrupt(absl::StrFormat(
          "entry table has no terminator before the end (offset %u)", pos));
    }
    if (Le32(region, pos) == 0) break;
    if (end - pos < kXattrEntryHeaderSize) {
      return corrupt(
          absl::StrFormat("entry at offset %u runs past the end", pos));
    }
    Placed p;
    const uint8_t name_len = Le8(region, pos + kNameLenOffset);
    p.entry.name_index = Le8(region, pos + kNameIndexOffset);
    p.value_offs = Le16(region, pos + kValueOffsOffset);
    p.entry.value_inum = Le32(region, pos + kValueInumOffset);
    p.entry.value_size = Le32(region, pos + kValueSizeOffset);
    p.entry.hash = Le32(region, pos + kHashOffset);
    if (end - pos - kXattrEntryHeaderSize < name_len) {
      return corrupt(absl::StrFormat(
          "name of the entry at offset %u (%u bytes) runs past the end", pos,
          name_len));
    }
    const size_t next = pos + XattrEntrySize(name_len);
    // The next entry (or the terminator) must fit its first four bytes.
    if (next > end || end - next < 4) {
      return corrupt(absl::StrFormat(
          "entry at offset %u leaves no room for the terminator", pos));
    }
    p.entry.name.assign(reinterpret_cast<const char*>(region.data() + pos +
                                                      kXattrEntryHeaderSize),
                        name_len);
    if (name_len == 0 && !WholeNameIndex(p.entry.name_index)) {
      return corrupt(
          absl::StrFormat("entry at offset %u has an empty name (index %u)",
                          pos, p.entry.name_index));
    }
    if (p.entry.name.find('\0') != std::string::npos) {
      return corrupt(
          absl::StrFormat("entry at offset %u has a NUL in its name", pos));
    }
    placed.push_back(std::move(p));
    pos = next;
  }
  const size_t table_end = pos + 4;  // past the terminator

  std::vector<XattrEntry> entries;
  entries.reserve(placed.size());
  for (Placed& p : placed) {
    XattrEntry& e = p.entry;
    const std::string label =
        absl::StrFormat("entry \"%s\" (index %u)", e.name, e.name_index);
    if (e.value_size > kXattrMaxValueSize) {
      return corrupt(
          absl::StrFormat("%s: value size %u too large", label, e.value_size));
    }
    if (e.value_inum != 0) {
      if (e.value_inum < kXattrFirstValueInode) {
        return corrupt(absl::StrFormat("%s: reserved value inode %u", label,
                                       e.value_inum));
      }
    } else if (e.value_size != 0) {
      if (aligned_values && p.value_offs % 4 != 0) {
        return corrupt(absl::StrFormat("%s: value offset %u not 4-byte aligned",
                                       label, p.value_offs));
      }
      const size_t value_pos = value_base + p.value_offs;
      if (value_pos > end) {
        return corrupt(absl::StrFormat("%s: value offset %u out of bounds",
                                       label, p.value_offs));
      }
      if (value_pos < table_end) {
        return corrupt(
            absl::StrFormat("%s: value at offset %u overlaps the entry table",
                            label, p.value_offs));
      }
      if (XattrValueSize(e.value_size) > end - value_pos) {
        return corrupt(
            absl::StrFormat("%s: value (offset %u, %u bytes) runs past the end",
                            label, p.value_offs, e.value_size));
      }
      e.value.assign(reinterpret_cast<const char*>(region.data() + value_pos),
                     e.value_size);
    }
    entries.push_back(std::move(e));
  }
  return entries;
}

uint32_t HashName(uint32_t hash, std::string_view name, bool signed_chars) {
  for (char c : name) {
    const uint32_t byte =
        signed_chars ? static_cast<uint32_t>(
                           static_cast<int32_t>(static_cast<signed char>(c)))
                     : static_cast<uint32_t>(static_cast<unsigned char>(c));
    hash = Rotl(hash, kNameHashShift) ^ byte;
  }
  return hash;
}

uint32_t HashValue(uint32_t hash, Bytes value) {
  for (size_t off = 0; off < value.size(); off += 4) {
    uint32_t word = 0;
    for (size_t i = 0; i < 4 && off + i < value.size(); ++i) {
      word |= static_cast<uint32_t>(value[off + i]) << (8 * i);
    }
    hash = Rotl(hash, kValueHashShift) ^ word;
  }
  return hash;
}

}  // namespace

std::string FullXattrName(uint8_t index, std::string_view suffix) {
  const NamePrefix* p = FindIndex(index);
  if (p == nullptr) return std::string();
  std::string full(p->prefix);
  full.append(suffix);
  return full;
}

bool SplitXattrName(std::string_view full, uint8_t* index,
                    std::string* suffix) {
  const NamePrefix* best = nullptr;
  for (const NamePrefix& p : kPrefixes) {
    if (full.substr(0, p.prefix.size()) != p.prefix) continue;
    const bool rest_empty = full.size() == p.prefix.size();
    // Whole names need an exact match; prefixes need something after them.
    if (p.whole_name != rest_empty) continue;
    if (best == nullptr || p.prefix.size() > best->prefix.size()) best = &p;
  }
  if (best == nullptr) return false;
  *index = best->index;
  suffix->assign(full.substr(best->prefix.size()));
  return true;
}

absl::StatusOr<std::vector<XattrEntry>> ParseInodeXattrs(Bytes area) {
  if (area.size() < kXattrInodeHeaderSize || Le32(area, 0) != kXattrMagic) {
    return std::vector<XattrEntry>();
  }
  return ParseEntries(area.subspan(kXattrInodeHeaderSize), 0, 0,
                      /*aligned_values=*/false, "in-inode xattrs");
}

absl::StatusOr<XattrBlock> ParseXattrBlock(Bytes block, uint64_t block_number,
                                           bool metadata_csum,
                                           uint32_t fs_checksum_seed) {
  const std::string what = absl::StrFormat("xattr block %u", block_number);
  if (block.size() < kXattrBlockHeaderSize + 4) {
    return Corrupt(
        absl::StrFormat("%s: %u bytes is too small", what, block.size()));
  }
  const uint32_t magic = Le32(block, kBlockMagicOffset);
  if (magic != kXattrMagic) {
    return Corrupt(absl::StrFormat("%s: bad magic 0x%08x", what, magic));
  }
  XattrBlock out;
  out.refcount = Le32(block, kBlockRefcountOffset);
  out.blocks = Le32(block, kBlockBlocksOffset);
  out.hash = Le32(block, kBlockHashOffset);
  out.checksum = Le32(block, kBlockChecksumOffset);
  if (out.blocks != 1) {
    return Corrupt(
        absl::StrFormat("%s: h_blocks is %u, not 1", what, out.blocks));
  }
  if (metadata_csum && out.checksum != XattrBlockChecksum(block, block_number,
                                                          fs_checksum_seed)) {
    E4_RETURN_IF_ERROR(ChecksumMismatch(what));
  }
  E4_ASSIGN_OR_RETURN(out.entries, ParseEntries(block, kXattrBlockHeaderSize, 0,
                                                /*aligned_values=*/true, what));
  return out;
}

uint32_t XattrBlockChecksum(Bytes block, uint64_t block_number,
                            uint32_t fs_checksum_seed) {
  if (block.size() < kXattrBlockHeaderSize) return 0;
  uint8_t le_block[8];
  Put64(le_block, 0, block_number);
  const uint8_t zero[4] = {0, 0, 0, 0};
  uint32_t crc = Crc32c(fs_checksum_seed, le_block);
  crc = Crc32c(crc, block.first(kBlockChecksumOffset));
  crc = Crc32c(crc, zero);
  return Crc32c(crc, block.subspan(kBlockChecksumOffset + 4));
}

void SetXattrBlockChecksum(MutableBytes block, uint64_t block_number,
                           uint32_t fs_checksum_seed) {
  if (block.size() < kXattrBlockHeaderSize) return;
  Put32(block, kBlockChecksumOffset,
        XattrBlockChecksum(block, block_number, fs_checksum_seed));
}

uint32_t XattrEntryHash(std::string_view name, Bytes value) {
  return HashValue(HashName(0, name, /*signed_chars=*/false), value);
}

uint32_t XattrEntryHashSigned(std::string_view name, Bytes value) {
  return HashValue(HashName(0, name, /*signed_chars=*/true), value);
}

uint32_t XattrEntryHashForValueInode(std::string_view name,
                                     uint32_t value_hash) {
  uint8_t le[4];
  Put32(le, 0, value_hash);
  return HashValue(HashName(0, name, /*signed_chars=*/false), le);
}

uint32_t XattrValueInodeHash(uint32_t fs_checksum_seed, Bytes value) {
  return Crc32c(fs_checksum_seed, value);
}

uint32_t XattrBlockHash(const std::vector<XattrEntry>& entries) {
  uint32_t hash = 0;
  for (const XattrEntry& e : entries) {
    if (e.hash == 0) return 0;
    hash = Rotl(hash, kBlockHashShift) ^ e.hash;
  }
  return hash;
}

// ---------------------------------------------------------------------------
// POSIX ACLs.

namespace {

constexpr size_t kAclHeaderSize = 4;
constexpr size_t kAclDiskShortSize = 4;
constexpr size_t kAclDiskLongSize = 8;
constexpr size_t kAclXattrEntrySize = 8;
constexpr uint16_t kAclPermMask = 07;

bool IsShortTag(uint16_t tag) {
  return tag == kAclUserObj || tag == kAclGroupObj || tag == kAclMask ||
         tag == kAclOther;
}

// The number of entries a disk ACL body of `size` bytes holds, assuming the
// four short entries come first in count (as the kernel lays them out); -1
// if no layout fits.
long DiskAclCount(size_t size) {
  const size_t shorts = 4 * kAclDiskShortSize;
  if (size < shorts) {
    if (size % kAclDiskShortSize != 0) return -1;
    return static_cast<long>(size / kAclDiskShortSize);
  }
  if ((size - shorts) % kAclDiskLongSize != 0) return -1;
  return static_cast<long>((size - shorts) / kAclDiskLongSize + 4);
}

void AppendLe16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v & 0xFF));
  out->push_back(static_cast<char>(v >> 8));
}
void AppendLe32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

}  // namespace

absl::StatusOr<std::string> AclDiskToXattr(Bytes disk) {
  if (disk.size() < kAclHeaderSize) {
    return Corrupt(
        absl::StrFormat("ACL: %u bytes cannot hold the header", disk.size()));
  }
  const uint32_t version = Le32(disk, 0);
  if (version != kAclDiskVersion) {
    return Corrupt(absl::StrFormat("ACL: on-disk version %u, want %u", version,
                                   kAclDiskVersion));
  }
  const long count = DiskAclCount(disk.size() - kAclHeaderSize);
  if (count < 0) {
    return Corrupt(absl::StrFormat("ACL: %u bytes is not a valid entry layout",
                                   disk.size()));
  }
  if (count == 0) return std::string();
  std::string out;
  out.reserve(kAclHeaderSize + count * kAclXattrEntrySize);
  AppendLe32(&out, kAclXattrVersion);
  size_t pos = kAclHeaderSize;
  for (long i = 0; i < count; ++i) {
    if (disk.size() - pos < kAclDiskShortSize) {
      return Corrupt(absl::StrFormat("ACL: entry %d runs past the end", i));
    }
    const uint16_t tag = Le16(disk, pos);
    const uint16_t perm = Le16(disk, pos + 2);
    uint32_t id = kAclUndefinedId;
    if (IsShortTag(tag)) {
      pos += kAclDiskShortSize;
    } else if (tag == kAclUser || tag == kAclGroup) {
      if (disk.size() - pos < kAclDiskLongSize) {
        return Corrupt(absl::StrFormat("ACL: entry %d runs past the end", i));
      }
      id = Le32(disk, pos + 4);
      pos += kAclDiskLongSize;
    } else {
      return Corrupt(
          absl::StrFormat("ACL: entry %d has unknown tag 0x%x", i, tag));
    }
    AppendLe16(&out, tag);
    AppendLe16(&out, perm);
    AppendLe32(&out, id);
  }
  if (pos != disk.size()) {
    return Corrupt(
        absl::StrFormat("ACL: entries end at byte %u of %u", pos, disk.size()));
  }
  return out;
}

absl::StatusOr<std::string> AclXattrToDisk(Bytes xattr) {
  if (xattr.size() < kAclHeaderSize) {
    return ErrnoError(EINVAL, "ACL: value too short for the header");
  }
  const uint32_t version = Le32(xattr, 0);
  if (version != kAclXattrVersion) {
    return ErrnoError(EOPNOTSUPP,
                      absl::StrFormat("ACL: xattr version %u, want %u", version,
                                      kAclXattrVersion));
  }
  const size_t body = xattr.size() - kAclHeaderSize;
  if (body % kAclXattrEntrySize != 0) {
    return ErrnoError(EINVAL, "ACL: value size is not a whole entry count");
  }
  const size_t count = body / kAclXattrEntrySize;
  if (count == 0) return std::string();

  // The kernel's order rules: USER_OBJ, USER*, GROUP_OBJ, GROUP*, then MASK
  // (required when named entries exist) and OTHER.
  enum class State { kUserObj, kUser, kGroup, kOther, kDone };
  State state = State::kUserObj;
  bool needs_mask = false;
  std::string out;
  out.reserve(kAclHeaderSize + count * kAclDiskLongSize);
  AppendLe32(&out, kAclDiskVersion);
  for (size_t i = 0; i < count; ++i) {
    const size_t off = kAclHeaderSize + i * kAclXattrEntrySize;
    const uint16_t tag = Le16(xattr, off);
    const uint16_t perm = Le16(xattr, off + 2);
    const uint32_t id = Le32(xattr, off + 4);
    auto invalid = [&](std::string_view why) {
      return ErrnoError(
          EINVAL, absl::StrFormat("ACL: entry %u (tag 0x%x): %s", i, tag, why));
    };
    if (perm & ~kAclPermMask) return invalid("permission bits beyond rwx");
    switch (tag) {
      case kAclUserObj:
        if (state != State::kUserObj) return invalid("out of order");
        state = State::kUser;
        break;
      case kAclUser:
        if (state != State::kUser) return invalid("out of order");
        if (id == kAclUndefinedId) return invalid("undefined user id");
        needs_mask = true;
        break;
      case kAclGroupObj:
        if (state != State::kUser) return invalid("out of order");
        state = State::kGroup;
        break;
      case kAclGroup:
        if (state != State::kGroup) return invalid("out of order");
        if (id == kAclUndefinedId) return invalid("undefined group id");
        needs_mask = true;
        break;
      case kAclMask:
        if (state != State::kGroup) return invalid("out of order");
        state = State::kOther;
        break;
      case kAclOther:
        if (state == State::kOther || (state == State::kGroup && !needs_mask)) {
          state = State::kDone;
          break;
        }
        return invalid(state == State::kGroup ? "named entries need a mask"
                                              : "out of order");
      default:
        return invalid("unknown tag");
    }
    AppendLe16(&out, tag);
    AppendLe16(&out, perm);
    if (tag == kAclUser || tag == kAclGroup) AppendLe32(&out, id);
  }
  if (state != State::kDone) {
    return ErrnoError(EINVAL,
                      "ACL: incomplete (needs USER_OBJ, GROUP_OBJ "
                      "and OTHER)");
  }
  return out;
}

}  // namespace ext4::format
