// POSIX ACL inheritance on create, as the kernel's posix_acl_create does: a
// directory's default ACL becomes the new inode's access ACL (narrowed by the
// mode asked for, which it narrows in turn), and a new directory's default
// ACL too; without a default ACL the umask applies.
#include <sys/stat.h>

#include <string>
#include <string_view>
#include <vector>

#include "ext4/errno_status.h"
#include "ext4/filesystem_impl.h"
#include "ext4/format/endian.h"
#include "ext4/format/xattr.h"
#include "ext4/xattr_writer.h"

namespace ext4 {
namespace {

constexpr size_t kAclHeader = 4;
constexpr size_t kAclEntry = 8;

// Narrows `acl` (VFS form, already validated) by `mode` and `mode` by it
// (posix_acl_create_masq). True when the result says more than the mode
// bits can, so it must be stored.
bool MaskAcl(std::string& acl, uint32_t& mode) {
  uint32_t bits = mode & 0777;
  bool not_equivalent = false;
  size_t group_obj = 0, mask = 0;
  auto perm_at = [&](size_t offset) -> uint16_t {
    return format::Le16(
        format::Bytes(reinterpret_cast<const uint8_t*>(acl.data()), acl.size()),
        offset + 2);
  };
  auto set_perm = [&](size_t offset, uint32_t perm) {
    format::Put16(format::MutableBytes(reinterpret_cast<uint8_t*>(acl.data()),
                                       acl.size()),
                  offset + 2, static_cast<uint16_t>(perm));
  };
  for (size_t at = kAclHeader; at + kAclEntry <= acl.size(); at += kAclEntry) {
    const uint16_t tag = format::Le16(
        format::Bytes(reinterpret_cast<const uint8_t*>(acl.data()), acl.size()),
        at);
    const uint32_t perm = perm_at(at);
    switch (tag) {
      case format::kAclUserObj: {
        const uint32_t p = perm & ((bits >> 6) & 7);
        set_perm(at, p);
        bits = (bits & ~0700u) | (bits & (p << 6));
        break;
      }
      case format::kAclUser:
      case format::kAclGroup:
        not_equivalent = true;
        break;
      case format::kAclGroupObj:
        group_obj = at;
        break;
      case format::kAclOther: {
        const uint32_t p = perm & (bits & 7);
        set_perm(at, p);
        bits = (bits & ~07u) | (bits & p);
        break;
      }
      case format::kAclMask:
        mask = at;
        not_equivalent = true;
        break;
      default:
        break;
    }
  }
  const size_t group_entry = mask != 0 ? mask : group_obj;
  if (group_entry != 0) {
    const uint32_t p = perm_at(group_entry) & ((bits >> 3) & 7);
    set_perm(group_entry, p);
    bits = (bits & ~070u) | (bits & (p << 3));
  }
  mode = (mode & ~0777u) | bits;
  return not_equivalent;
}

}  // namespace

absl::StatusOr<std::string> FilesystemImpl::DefaultAcl(const InCoreInode& dir) {
  E4_ASSIGN_OR_RETURN(std::vector<format::XattrEntry> entries,
                      CollectXattrs(dir));
  for (const format::XattrEntry& entry : entries) {
    if (entry.name_index != format::kXattrIndexPosixAclDefault) continue;
    E4_ASSIGN_OR_RETURN(std::string disk, XattrValue(entry));
    return format::AclDiskToXattr(format::Bytes(
        reinterpret_cast<const uint8_t*>(disk.data()), disk.size()));
  }
  return std::string();
}

absl::Status FilesystemImpl::InheritAcls(Transaction& tx,
                                         const std::string& default_acl,
                                         InCoreInode& node) {
  if (default_acl.empty()) return absl::OkStatus();
  XattrWriteContext ctx{sb_.block_size(), sb_.metadata_csum(),
                        sb_.checksum_seed(), sb_.inode_size(),
                        sb_.has_incompat(format::kIncompatEaInode)};
  uint32_t mode = node.inode.mode;
  std::string access = default_acl;
  const bool store_access = MaskAcl(access, mode);
  node.inode.mode = static_cast<uint16_t>(mode);
  sb_.feature_compat |= format::kCompatExtAttr;
  if (store_access) {
    E4_RETURN_IF_ERROR(ext4::SetXattr(tx, ctx, node.inode, node.raw,
                                      *allocator_, GoalFor(node),
                                      "system.posix_acl_access", access, 0));
  }
  if (S_ISDIR(node.inode.mode)) {
    E4_RETURN_IF_ERROR(ext4::SetXattr(
        tx, ctx, node.inode, node.raw, *allocator_, GoalFor(node),
        "system.posix_acl_default", default_acl, 0));
  }
  return absl::OkStatus();
}

namespace {

// The permission bits an access ACL (VFS form) gives: owner, mask or owning
// group, other; `equivalent` when it names no user or group, so the mode
// alone says all of it. False for a malformed ACL (left to the writer's
// checks).
bool AclModeBits(std::string_view acl, uint32_t& bits, bool& equivalent) {
  if (acl.size() < kAclHeader || (acl.size() - kAclHeader) % kAclEntry != 0) {
    return false;
  }
  const format::Bytes bytes(reinterpret_cast<const uint8_t*>(acl.data()),
                            acl.size());
  int user_obj = -1, group_obj = -1, other = -1, mask = -1;
  equivalent = true;
  for (size_t at = kAclHeader; at + kAclEntry <= acl.size(); at += kAclEntry) {
    const int perm = format::Le16(bytes, at + 2) & 7;
    switch (format::Le16(bytes, at)) {
      case format::kAclUserObj:
        user_obj = perm;
        break;
      case format::kAclGroupObj:
        group_obj = perm;
        break;
      case format::kAclOther:
        other = perm;
        break;
      case format::kAclMask:
        mask = perm;
        break;
      case format::kAclUser:
      case format::kAclGroup:
        equivalent = false;
        break;
      default:
        return false;
    }
  }
  if (user_obj < 0 || group_obj < 0 || other < 0) return false;
  bits = static_cast<uint32_t>(user_obj << 6 |
                               (mask >= 0 ? mask : group_obj) << 3 | other);
  return true;
}

}  // namespace

absl::Status FilesystemImpl::SetAccessAcl(Transaction& tx, InCoreInode& node,
                                          std::string_view acl, int flags) {
  XattrWriteContext ctx{sb_.block_size(), sb_.metadata_csum(),
                        sb_.checksum_seed(), sb_.inode_size(),
                        sb_.has_incompat(format::kIncompatEaInode)};
  constexpr std::string_view kName = "system.posix_acl_access";
  uint32_t bits = 0;
  bool equivalent = false;
  if (S_ISLNK(node.inode.mode) || !AclModeBits(acl, bits, equivalent)) {
    // The writer answers: EOPNOTSUPP for a symlink, EINVAL for a malformed
    // ACL, a removal for an empty one.
    return ext4::SetXattr(tx, ctx, node.inode, node.raw, *allocator_,
                          GoalFor(node), kName, acl, flags);
  }
  if (equivalent) {
    // Flags mean nothing for ACLs; removing none is no error.
    E4_RETURN_IF_ERROR(
        ext4::RemoveXattr(tx, ctx, node.inode, node.raw, *allocator_, kName));
  } else {
    E4_RETURN_IF_ERROR(ext4::SetXattr(tx, ctx, node.inode, node.raw,
                                      *allocator_, GoalFor(node), kName, acl,
                                      flags));
  }
  node.inode.mode = static_cast<uint16_t>((node.inode.mode & ~0777u) | bits);
  return absl::OkStatus();
}

absl::Status FilesystemImpl::ChmodAccessAcl(Transaction& tx,
                                            InCoreInode& node) {
  E4_ASSIGN_OR_RETURN(std::vector<format::XattrEntry> entries,
                      CollectXattrs(node));
  std::string acl;
  for (const format::XattrEntry& entry : entries) {
    if (entry.name_index != format::kXattrIndexPosixAclAccess) continue;
    E4_ASSIGN_OR_RETURN(std::string disk, XattrValue(entry));
    E4_ASSIGN_OR_RETURN(
        acl, format::AclDiskToXattr(format::Bytes(
                 reinterpret_cast<const uint8_t*>(disk.data()), disk.size())));
  }
  if (acl.empty()) return absl::OkStatus();
  const uint32_t mode = node.inode.mode;
  const format::MutableBytes bytes(reinterpret_cast<uint8_t*>(acl.data()),
                                   acl.size());
  size_t group_obj = 0, mask = 0;
  for (size_t at = kAclHeader; at + kAclEntry <= acl.size(); at += kAclEntry) {
    switch (format::Le16(bytes, at)) {
      case format::kAclUserObj:
        format::Put16(bytes, at + 2, static_cast<uint16_t>((mode >> 6) & 7));
        break;
      case format::kAclOther:
        format::Put16(bytes, at + 2, static_cast<uint16_t>(mode & 7));
        break;
      case format::kAclGroupObj:
        group_obj = at;
        break;
      case format::kAclMask:
        mask = at;
        break;
      default:
        break;
    }
  }
  const size_t group_entry = mask != 0 ? mask : group_obj;
  if (group_entry != 0) {
    format::Put16(bytes, group_entry + 2,
                  static_cast<uint16_t>((mode >> 3) & 7));
  }
  XattrWriteContext ctx{sb_.block_size(), sb_.metadata_csum(),
                        sb_.checksum_seed(), sb_.inode_size(),
                        sb_.has_incompat(format::kIncompatEaInode)};
  return ext4::SetXattr(tx, ctx, node.inode, node.raw, *allocator_,
                        GoalFor(node), "system.posix_acl_access", acl, 0);
}

}  // namespace ext4
