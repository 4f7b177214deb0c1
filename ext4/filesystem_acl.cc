// POSIX ACL inheritance on create, as the kernel's posix_acl_create does: a
// directory's default ACL becomes the new inode's access ACL (narrowed by the
// mode asked for, which it narrows in turn), and a new directory's default
// ACL too; without a default ACL the umask applies.
#include <sys/stat.h>

#include <string>

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

}  // namespace ext4
