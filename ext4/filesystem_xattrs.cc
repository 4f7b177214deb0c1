// Extended attributes: entries in the inode body, then in the (possibly
// shared) external block, with large values in EA inodes.
#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "ext4/filesystem_impl.h"
#include "ext4/xattr_writer.h"

namespace ext4 {
namespace {

constexpr uint8_t kSystemIndex = 7;
constexpr uint8_t kAclAccessIndex = 2;
constexpr uint8_t kAclDefaultIndex = 3;
// XATTR_SIZE_MAX: the VFS never asks for more.
constexpr uint32_t kMaxValueSize = 65536;

bool IsSystemData(const format::XattrEntry& entry) {
  return entry.name_index == kSystemIndex && entry.name == "data";
}

}  // namespace

absl::StatusOr<std::vector<format::XattrEntry>> FilesystemImpl::CollectXattrs(
    const InCoreInode& node) {
  std::vector<format::XattrEntry> entries;
  format::Bytes area = format::InodeXattrArea(node.raw, node.inode);
  if (!area.empty()) {
    E4_ASSIGN_OR_RETURN(entries, format::ParseInodeXattrs(area));
  }
  if (node.inode.file_acl != 0) {
    E4_ASSIGN_OR_RETURN(io::BlockRef block, blocks_.Read(node.inode.file_acl));
    auto parsed = format::ParseXattrBlock(
        *block, node.inode.file_acl, sb_.metadata_csum(), sb_.checksum_seed());
    if (!parsed.ok()) {
      return Corrupt(absl::StrCat("xattr block ", node.inode.file_acl, ": ",
                                  parsed.status().message()));
    }
    for (auto& entry : parsed->entries) entries.push_back(std::move(entry));
  }
  return entries;
}

absl::StatusOr<std::string> FilesystemImpl::XattrValue(
    const format::XattrEntry& entry) {
  if (entry.value_inum == 0) return entry.value;
  if (entry.value_size > kMaxValueSize) {
    return Corrupt(absl::StrCat("xattr value of ", entry.value_size, " bytes"));
  }
  E4_ASSIGN_OR_RETURN(InodeHandle holder, GetInode(entry.value_inum));
  if (!(holder->inode.flags & format::kInodeFlagEaInode) ||
      !S_ISREG(holder->inode.mode) || holder->inode.size < entry.value_size) {
    return Corrupt(absl::StrCat("inode ", entry.value_inum,
                                " is not a valid xattr value inode"));
  }
  std::string value(entry.value_size, '\0');
  E4_RETURN_IF_ERROR(
      ReadData(*holder, 0,
               std::span<uint8_t>(reinterpret_cast<uint8_t*>(value.data()),
                                  value.size()))
          .status());
  return value;
}

absl::StatusOr<std::string> FilesystemImpl::SystemDataXattr(
    const InCoreInode& node) {
  format::Bytes area = format::InodeXattrArea(node.raw, node.inode);
  if (area.empty()) return std::string();
  E4_ASSIGN_OR_RETURN(auto entries, format::ParseInodeXattrs(area));
  for (const auto& entry : entries) {
    if (IsSystemData(entry)) return entry.value;
  }
  return std::string();
}

absl::StatusOr<std::vector<std::string>> FilesystemImpl::ListXattrs(
    InodeNumber ino) {
  absl::ReaderMutexLock lock(&mu_);
  E4_ASSIGN_OR_RETURN(InodeHandle handle, GetInode(ino));
  auto entries = CollectXattrs(*handle);
  if (!entries.ok()) return Report(entries.status(), ino);
  std::vector<std::string> names;
  for (const auto& entry : *entries) {
    // system.data holds inline file data; the kernel does not list it.
    if (IsSystemData(entry)) continue;
    names.push_back(entry.full_name());
  }
  return names;
}

absl::StatusOr<std::string> FilesystemImpl::GetXattr(InodeNumber ino,
                                                     std::string_view name) {
  // A name no handler takes is EOPNOTSUPP, as for set and remove.
  E4_RETURN_IF_ERROR(CheckXattrName(name));
  absl::ReaderMutexLock lock(&mu_);
  E4_ASSIGN_OR_RETURN(InodeHandle handle, GetInode(ino));
  auto entries = CollectXattrs(*handle);
  if (!entries.ok()) return Report(entries.status(), ino);
  for (const auto& entry : *entries) {
    if (IsSystemData(entry) || entry.full_name() != name) continue;
    auto value = XattrValue(entry);
    if (!value.ok()) return Report(value.status(), ino);
    if (entry.name_index == kAclAccessIndex ||
        entry.name_index == kAclDefaultIndex) {
      auto acl = format::AclDiskToXattr(format::Bytes(
          reinterpret_cast<const uint8_t*>(value->data()), value->size()));
      if (!acl.ok()) return Report(acl.status(), ino);
      return acl;
    }
    return value;
  }
  return ErrnoError(ENODATA, "no such attribute");
}

}  // namespace ext4
