#include "ext4/xattr_writer.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "ext4/format/endian.h"
#include "ext4/format/superblock.h"
#include "ext4/format/xattr.h"

namespace ext4 {
namespace {

using format::Bytes;
using format::MutableBytes;
using format::XattrEntry;

constexpr int kFlagCreate = 1;   // XATTR_CREATE
constexpr int kFlagReplace = 2;  // XATTR_REPLACE
// XATTR_SIZE_MAX: the VFS refuses longer values with E2BIG.
constexpr size_t kValueSizeMax = 65536;
constexpr uint32_t kSectorSize = 512;

// Entry field offsets.
constexpr size_t kEntryNameLen = 0;
constexpr size_t kEntryNameIndex = 1;
constexpr size_t kEntryValueOffs = 2;
constexpr size_t kEntryValueInum = 4;
constexpr size_t kEntryValueSize = 8;
constexpr size_t kEntryHash = 12;
// Block header field offsets.
constexpr size_t kBlockMagic = 0;
constexpr size_t kBlockRefcount = 4;
constexpr size_t kBlockBlocks = 8;
constexpr size_t kBlockHash = 12;
// The four zero bytes that end an entry table.
constexpr size_t kTerminatorSize = 4;

// The prefixes ext4 has handlers for. The ACL names are whole names.
struct Handler {
  std::string_view prefix;
  uint8_t index;
  bool whole_name;
};
constexpr Handler kHandlers[] = {
    {"user.", format::kXattrIndexUser, false},
    {"trusted.", format::kXattrIndexTrusted, false},
    {"security.", format::kXattrIndexSecurity, false},
    {"gnu.", format::kXattrIndexHurd, false},
    {"system.posix_acl_access", format::kXattrIndexPosixAclAccess, true},
    {"system.posix_acl_default", format::kXattrIndexPosixAclDefault, true},
};

bool IsAclIndex(uint8_t index) {
  return index == format::kXattrIndexPosixAclAccess ||
         index == format::kXattrIndexPosixAclDefault;
}

// Finds the handler of a full name, as the VFS does: a prefix handler needs
// a nonempty suffix (EINVAL otherwise), a whole-name handler an exact match.
absl::Status ResolveName(std::string_view name, uint8_t* index,
                         std::string_view* suffix) {
  for (const Handler& h : kHandlers) {
    if (!name.starts_with(h.prefix)) continue;
    const bool rest_empty = name.size() == h.prefix.size();
    if (h.whole_name) {
      if (!rest_empty) continue;
    } else if (rest_empty) {
      return ErrnoError(EINVAL,
                        absl::StrCat("xattr name \"", std::string(name),
                                     "\" has nothing after its prefix"));
    }
    *index = h.index;
    *suffix = name.substr(h.prefix.size());
    return absl::OkStatus();
  }
  return ErrnoError(EOPNOTSUPP, absl::StrCat("xattr name \"", std::string(name),
                                             "\" has no supported prefix"));
}

// An inode's xattrs as read at the start of an operation.
struct XattrState {
  MutableBytes area;  // the in-inode area (magic included); empty: none
  std::vector<XattrEntry> ibody;
  uint64_t block = 0;  // 0: no xattr block
  uint32_t refcount = 0;
  std::vector<XattrEntry> block_entries;
};

struct Found {
  bool in_inode;
  size_t index;
};

absl::Status CheckContext(const XattrWriteContext& ctx, const Transaction& tx) {
  if (ctx.block_size < 1024 || (ctx.block_size & (ctx.block_size - 1)) != 0 ||
      ctx.block_size > 65536 || tx.block_size() != ctx.block_size) {
    return ErrnoError(
        EINVAL, absl::StrCat("xattr writer: bad block size ", ctx.block_size));
  }
  return absl::OkStatus();
}

absl::Status LoadBlock(Transaction& tx, const XattrWriteContext& ctx,
                       uint64_t block, XattrState* s) {
  E4_ASSIGN_OR_RETURN(Bytes bytes, tx.Read(block));
  if (bytes.size() != ctx.block_size) {
    return ErrnoError(EIO, absl::StrCat("xattr block ", block, ": read ",
                                        bytes.size(), " bytes"));
  }
  E4_ASSIGN_OR_RETURN(format::XattrBlock parsed,
                      format::ParseXattrBlock(bytes, block, ctx.metadata_csum,
                                              ctx.fs_checksum_seed));
  if (parsed.refcount == 0) {
    return Corrupt(absl::StrCat("xattr block ", block, ": reference count 0"));
  }
  s->block = block;
  s->refcount = parsed.refcount;
  s->block_entries = std::move(parsed.entries);
  return absl::OkStatus();
}

absl::StatusOr<XattrState> LoadState(Transaction& tx,
                                     const XattrWriteContext& ctx,
                                     const format::Inode& inode,
                                     std::vector<uint8_t>& raw) {
  E4_RETURN_IF_ERROR(CheckContext(ctx, tx));
  if (ctx.inode_size < format::kGoodOldInodeSize ||
      raw.size() != ctx.inode_size) {
    return ErrnoError(EINVAL, absl::StrCat("xattr writer: ", raw.size(),
                                           "-byte buffer for a ",
                                           ctx.inode_size, "-byte inode"));
  }
  XattrState s;
  // The kernel's EXT4_INODE_HAS_XATTR_SPACE: extra fields present, and room
  // for the magic and a terminator after them.
  const size_t start = size_t{format::kGoodOldInodeSize} + inode.extra_isize;
  if (inode.extra_isize != 0 && (inode.extra_isize & 3) == 0 &&
      start + format::kXattrInodeHeaderSize + kTerminatorSize <= raw.size()) {
    s.area = MutableBytes(raw).subspan(start);
    E4_ASSIGN_OR_RETURN(s.ibody, format::ParseInodeXattrs(s.area));
  }
  if (inode.file_acl != 0) {
    E4_RETURN_IF_ERROR(LoadBlock(tx, ctx, inode.file_acl, &s));
  }
  return s;
}

std::optional<Found> Find(const XattrState& s, uint8_t index,
                          std::string_view suffix) {
  for (size_t i = 0; i < s.ibody.size(); ++i) {
    if (s.ibody[i].name_index == index && s.ibody[i].name == suffix) {
      return Found{true, i};
    }
  }
  for (size_t i = 0; i < s.block_entries.size(); ++i) {
    if (s.block_entries[i].name_index == index &&
        s.block_entries[i].name == suffix) {
      return Found{false, i};
    }
  }
  return std::nullopt;
}

bool HasValueInodes(const std::vector<XattrEntry>& entries) {
  return std::any_of(entries.begin(), entries.end(),
                     [](const XattrEntry& e) { return e.value_inum != 0; });
}

// Bytes an entry table takes: entries, terminator and inline values.
size_t TableBytes(const std::vector<XattrEntry>& entries) {
  size_t total = kTerminatorSize;
  for (const XattrEntry& e : entries) {
    total += format::XattrEntrySize(e.name.size());
    if (e.value_inum == 0) total += format::XattrValueSize(e.value_size);
  }
  return total;
}

size_t InodeCapacity(const XattrState& s) {
  return s.area.empty() ? 0 : s.area.size() - format::kXattrInodeHeaderSize;
}

size_t BlockCapacity(const XattrWriteContext& ctx) {
  return ctx.block_size - format::kXattrBlockHeaderSize;
}

// The kernel's order of block entries: name index, name length, name bytes.
bool BlockOrder(const XattrEntry& a, const XattrEntry& b) {
  if (a.name_index != b.name_index) return a.name_index < b.name_index;
  if (a.name.size() != b.name.size()) return a.name.size() < b.name.size();
  return std::memcmp(a.name.data(), b.name.data(), a.name.size()) < 0;
}

// Writes an entry table into `region` from offset `first`, values packed
// down from the region's end with offsets counted from `value_base`.
// Everything from `first` on is rewritten; the caller checked that the
// table fits (TableBytes).
void WriteTable(MutableBytes region, size_t first, size_t value_base,
                const std::vector<XattrEntry>& entries) {
  std::fill(region.begin() + first, region.end(), uint8_t{0});
  size_t pos = first;
  size_t value_end = region.size();
  for (const XattrEntry& e : entries) {
    uint16_t offs = 0;
    if (e.value_inum == 0 && e.value_size != 0) {
      value_end -= format::XattrValueSize(e.value_size);
      std::memcpy(region.data() + value_end, e.value.data(), e.value.size());
      offs = static_cast<uint16_t>(value_end - value_base);
    }
    region[pos + kEntryNameLen] = static_cast<uint8_t>(e.name.size());
    region[pos + kEntryNameIndex] = e.name_index;
    format::Put16(region, pos + kEntryValueOffs, offs);
    format::Put32(region, pos + kEntryValueInum, e.value_inum);
    format::Put32(region, pos + kEntryValueSize, e.value_size);
    format::Put32(region, pos + kEntryHash, e.hash);
    std::memcpy(region.data() + pos + format::kXattrEntryHeaderSize,
                e.name.data(), e.name.size());
    pos += format::XattrEntrySize(e.name.size());
  }
}

// Rewrites the in-inode area: the magic, then the entries (value offsets
// count from the first entry). No entries: the area is cleared, magic too,
// as the kernel leaves it.
void WriteInodeArea(MutableBytes area, const std::vector<XattrEntry>& entries) {
  if (entries.empty()) {
    std::fill(area.begin(), area.end(), uint8_t{0});
    return;
  }
  format::Put32(area, 0, format::kXattrMagic);
  WriteTable(area.subspan(format::kXattrInodeHeaderSize), 0, 0, entries);
}

void WriteBlock(MutableBytes bytes, uint64_t block, uint32_t refcount,
                const std::vector<XattrEntry>& entries,
                const XattrWriteContext& ctx) {
  std::fill(bytes.begin(), bytes.end(), uint8_t{0});
  format::Put32(bytes, kBlockMagic, format::kXattrMagic);
  format::Put32(bytes, kBlockRefcount, refcount);
  format::Put32(bytes, kBlockBlocks, 1);
  format::Put32(bytes, kBlockHash, format::XattrBlockHash(entries));
  WriteTable(bytes, format::kXattrBlockHeaderSize, 0, entries);
  if (ctx.metadata_csum) {
    format::SetXattrBlockChecksum(bytes, block, ctx.fs_checksum_seed);
  }
}

uint64_t SectorsPerBlock(const XattrWriteContext& ctx) {
  return ctx.block_size / kSectorSize;
}

// Drops one reference to the loaded block: frees it when this inode was
// its only user, otherwise lowers the count.
absl::Status DropBlockReference(Transaction& tx, const XattrWriteContext& ctx,
                                BlockAllocator& allocator,
                                const XattrState& s) {
  if (s.refcount == 1) {
    if (HasValueInodes(s.block_entries)) {
      return ErrnoError(EOPNOTSUPP,
                        absl::StrCat("xattr block ", s.block,
                                     " references EA inodes; releasing "
                                     "them is not supported"));
    }
    E4_RETURN_IF_ERROR(allocator.FreeBlocks(tx, s.block, 1));
    tx.Forget(s.block);
    return absl::OkStatus();
  }
  E4_ASSIGN_OR_RETURN(MutableBytes bytes, tx.Modify(s.block));
  format::Put32(bytes, kBlockRefcount, s.refcount - 1);
  if (ctx.metadata_csum) {
    format::SetXattrBlockChecksum(bytes, s.block, ctx.fs_checksum_seed);
  }
  return absl::OkStatus();
}

void SubtractBlock(const XattrWriteContext& ctx, format::Inode& inode) {
  const uint64_t sectors = SectorsPerBlock(ctx);
  inode.blocks = inode.blocks >= sectors ? inode.blocks - sectors : 0;
}

// Makes `entries` the contents of the inode's xattr block: in place when
// the inode is the block's only user, in a new block otherwise (copy on
// write, or the first block); no entries releases the block.
absl::Status StoreBlock(Transaction& tx, const XattrWriteContext& ctx,
                        format::Inode& inode, BlockAllocator& allocator,
                        uint64_t goal, const XattrState& s,
                        std::vector<XattrEntry> entries) {
  if (entries.empty()) {
    if (s.block == 0) return absl::OkStatus();
    E4_RETURN_IF_ERROR(DropBlockReference(tx, ctx, allocator, s));
    inode.file_acl = 0;
    SubtractBlock(ctx, inode);
    return absl::OkStatus();
  }
  std::stable_sort(entries.begin(), entries.end(), BlockOrder);
  if (s.block != 0 && s.refcount == 1) {
    E4_ASSIGN_OR_RETURN(MutableBytes bytes, tx.Modify(s.block));
    WriteBlock(bytes, s.block, 1, entries, ctx);
    return absl::OkStatus();
  }
  if (s.block != 0 && HasValueInodes(entries)) {
    return ErrnoError(EOPNOTSUPP,
                      absl::StrCat("shared xattr block ", s.block,
                                   " references EA inodes; copying it is "
                                   "not supported"));
  }
  E4_ASSIGN_OR_RETURN(BlockRun run,
                      allocator.AllocateBlocks(tx, goal, 1,
                                               /*use_reserve=*/false));
  if (run.count == 0 || run.first == 0) {
    return ErrnoError(EIO, "xattr writer: the allocator returned no block");
  }
  E4_ASSIGN_OR_RETURN(MutableBytes bytes, tx.ModifyNew(run.first));
  WriteBlock(bytes, run.first, 1, entries, ctx);
  if (s.block != 0) {
    E4_RETURN_IF_ERROR(DropBlockReference(tx, ctx, allocator, s));
  } else {
    inode.blocks += SectorsPerBlock(ctx);
  }
  inode.file_acl = run.first;
  return absl::OkStatus();
}

std::vector<XattrEntry> Without(const std::vector<XattrEntry>& entries,
                                size_t index) {
  std::vector<XattrEntry> rest = entries;
  rest.erase(rest.begin() + static_cast<std::ptrdiff_t>(index));
  return rest;
}

absl::Status CheckSuffix(std::string_view suffix) {
  if (suffix.size() > format::kXattrMaxNameLen) {
    return ErrnoError(ERANGE, absl::StrCat("xattr name of ", suffix.size(),
                                           " bytes is too long"));
  }
  return absl::OkStatus();
}

absl::Status SetEntry(Transaction& tx, const XattrWriteContext& ctx,
                      format::Inode& inode, std::vector<uint8_t>& raw_inode,
                      BlockAllocator& allocator, uint64_t goal, uint8_t index,
                      std::string_view suffix, std::string_view value,
                      int flags, bool inode_body_only) {
  E4_RETURN_IF_ERROR(CheckSuffix(suffix));
  if (value.size() > kValueSizeMax) {
    return ErrnoError(E2BIG, absl::StrCat("xattr value of ", value.size(),
                                          " bytes is too large"));
  }
  E4_ASSIGN_OR_RETURN(XattrState s, LoadState(tx, ctx, inode, raw_inode));
  const std::optional<Found> found = Find(s, index, suffix);
  if (!found && (flags & kFlagReplace)) {
    return ErrnoError(ENODATA, "no such attribute");
  }
  if (found && (flags & kFlagCreate)) {
    return ErrnoError(EEXIST, "attribute exists");
  }
  const bool old_in_inode = found && found->in_inode;
  const bool old_in_block = found && !found->in_inode;
  if (found) {
    const XattrEntry& old =
        old_in_inode ? s.ibody[found->index] : s.block_entries[found->index];
    if (old.value_inum != 0) {
      return ErrnoError(EOPNOTSUPP,
                        "changing a value kept in an EA inode is not "
                        "supported");
    }
    // The same value again: nothing to write, as in the kernel.
    if (old.value == value) return absl::OkStatus();
  }

  XattrEntry entry;
  entry.name_index = index;
  entry.name = std::string(suffix);
  entry.value = std::string(value);
  entry.value_size = static_cast<uint32_t>(value.size());
  entry.hash = 0;  // in the inode body the kernel leaves e_hash 0

  // The inode body first; then the entry leaves the block if it was there.
  if (!s.area.empty()) {
    std::vector<XattrEntry> body = s.ibody;
    if (old_in_inode) {
      body[found->index] = entry;
    } else {
      body.push_back(entry);
    }
    if (TableBytes(body) <= InodeCapacity(s)) {
      if (old_in_block) {
        E4_RETURN_IF_ERROR(StoreBlock(tx, ctx, inode, allocator, goal, s,
                                      Without(s.block_entries, found->index)));
      }
      WriteInodeArea(s.area, body);
      return absl::OkStatus();
    }
  }
  if (inode_body_only) {
    return ErrnoError(ENOSPC, "xattr does not fit in the inode body");
  }

  // The block; then the entry leaves the inode body if it was there.
  entry.hash = format::XattrEntryHash(
      entry.name, Bytes(reinterpret_cast<const uint8_t*>(entry.value.data()),
                        entry.value.size()));
  std::vector<XattrEntry> in_block = s.block_entries;
  if (old_in_block) {
    in_block[found->index] = std::move(entry);
  } else {
    in_block.push_back(std::move(entry));
  }
  if (TableBytes(in_block) > BlockCapacity(ctx)) {
    return ErrnoError(ENOSPC, "no space for the xattr");
  }
  E4_RETURN_IF_ERROR(
      StoreBlock(tx, ctx, inode, allocator, goal, s, std::move(in_block)));
  if (old_in_inode) WriteInodeArea(s.area, Without(s.ibody, found->index));
  return absl::OkStatus();
}

absl::Status RemoveEntry(Transaction& tx, const XattrWriteContext& ctx,
                         format::Inode& inode, std::vector<uint8_t>& raw_inode,
                         BlockAllocator& allocator, uint8_t index,
                         std::string_view suffix) {
  E4_RETURN_IF_ERROR(CheckSuffix(suffix));
  E4_ASSIGN_OR_RETURN(XattrState s, LoadState(tx, ctx, inode, raw_inode));
  const std::optional<Found> found = Find(s, index, suffix);
  if (!found) return ErrnoError(ENODATA, "no such attribute");
  const std::vector<XattrEntry>& list =
      found->in_inode ? s.ibody : s.block_entries;
  if (list[found->index].value_inum != 0) {
    return ErrnoError(EOPNOTSUPP,
                      "removing a value kept in an EA inode is not supported");
  }
  if (found->in_inode) {
    WriteInodeArea(s.area, Without(s.ibody, found->index));
    return absl::OkStatus();
  }
  // A copy of a shared block goes near the block it replaces.
  return StoreBlock(tx, ctx, inode, allocator, /*goal=*/s.block, s,
                    Without(s.block_entries, found->index));
}

absl::Status CheckFullName(std::string_view name) {
  // The VFS copies at most 255 bytes of name; empty or longer: ERANGE.
  if (name.empty() || name.size() > format::kXattrMaxNameLen) {
    return ErrnoError(ERANGE,
                      absl::StrCat("xattr name of ", name.size(), " bytes"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SetXattr(Transaction& tx, const XattrWriteContext& ctx,
                      format::Inode& inode, std::vector<uint8_t>& raw_inode,
                      BlockAllocator& allocator, uint64_t goal,
                      std::string_view name, std::string_view value,
                      int flags) {
  E4_RETURN_IF_ERROR(CheckFullName(name));
  if (value.size() > kValueSizeMax) {
    return ErrnoError(E2BIG, absl::StrCat("xattr value of ", value.size(),
                                          " bytes is too large"));
  }
  uint8_t index = 0;
  std::string_view suffix;
  E4_RETURN_IF_ERROR(ResolveName(name, &index, &suffix));
  if (!IsAclIndex(index)) {
    return SetEntry(tx, ctx, inode, raw_inode, allocator, goal, index, suffix,
                    value, flags, /*inode_body_only=*/false);
  }

  // POSIX ACLs: VFS form in, ext4's disk form stored; flags are ignored.
  if (inode.is_symlink()) {
    return ErrnoError(EOPNOTSUPP, "symlinks have no ACLs");
  }
  std::string disk;
  if (!value.empty()) {
    E4_ASSIGN_OR_RETURN(
        disk,
        format::AclXattrToDisk(Bytes(
            reinterpret_cast<const uint8_t*>(value.data()), value.size())));
  }
  if (index == format::kXattrIndexPosixAclDefault && !inode.is_dir()) {
    if (disk.empty()) return absl::OkStatus();
    return ErrnoError(EACCES, "a default ACL needs a directory");
  }
  if (disk.empty()) {
    absl::Status removed = RemoveEntry(tx, ctx, inode, raw_inode, allocator,
                                       index, std::string_view());
    if (ErrnoOf(removed) == ENODATA) return absl::OkStatus();
    return removed;
  }
  return SetEntry(tx, ctx, inode, raw_inode, allocator, goal, index,
                  std::string_view(), disk, /*flags=*/0,
                  /*inode_body_only=*/false);
}

absl::Status RemoveXattr(Transaction& tx, const XattrWriteContext& ctx,
                         format::Inode& inode, std::vector<uint8_t>& raw_inode,
                         BlockAllocator& allocator, std::string_view name) {
  E4_RETURN_IF_ERROR(CheckFullName(name));
  uint8_t index = 0;
  std::string_view suffix;
  E4_RETURN_IF_ERROR(ResolveName(name, &index, &suffix));
  if (!IsAclIndex(index)) {
    return RemoveEntry(tx, ctx, inode, raw_inode, allocator, index, suffix);
  }
  if (inode.is_symlink()) {
    return ErrnoError(EOPNOTSUPP, "symlinks have no ACLs");
  }
  // Removing an ACL that is not there succeeds on ext4.
  absl::Status removed =
      RemoveEntry(tx, ctx, inode, raw_inode, allocator, index, suffix);
  if (ErrnoOf(removed) == ENODATA) return absl::OkStatus();
  return removed;
}

absl::Status ReleaseXattrBlock(Transaction& tx, const XattrWriteContext& ctx,
                               format::Inode& inode,
                               BlockAllocator& allocator) {
  if (inode.file_acl == 0) return absl::OkStatus();
  E4_RETURN_IF_ERROR(CheckContext(ctx, tx));
  XattrState s;
  E4_RETURN_IF_ERROR(LoadBlock(tx, ctx, inode.file_acl, &s));
  E4_RETURN_IF_ERROR(DropBlockReference(tx, ctx, allocator, s));
  inode.file_acl = 0;
  SubtractBlock(ctx, inode);
  return absl::OkStatus();
}

absl::Status SetXattrIndexed(Transaction& tx, const XattrWriteContext& ctx,
                             format::Inode& inode,
                             std::vector<uint8_t>& raw_inode,
                             BlockAllocator& allocator, uint64_t goal,
                             uint8_t name_index, std::string_view suffix,
                             std::string_view value, int flags,
                             bool inode_body_only) {
  return SetEntry(tx, ctx, inode, raw_inode, allocator, goal, name_index,
                  suffix, value, flags, inode_body_only);
}

absl::Status RemoveXattrIndexed(Transaction& tx, const XattrWriteContext& ctx,
                                format::Inode& inode,
                                std::vector<uint8_t>& raw_inode,
                                BlockAllocator& allocator, uint8_t name_index,
                                std::string_view suffix) {
  return RemoveEntry(tx, ctx, inode, raw_inode, allocator, name_index, suffix);
}

absl::Status CheckXattrName(std::string_view name) {
  uint8_t index = 0;
  std::string_view suffix;
  return ResolveName(name, &index, &suffix);
}

}  // namespace ext4
