// Changing extended attributes: the entry table in an inode's extra space and
// the external xattr block (shared between inodes by reference count, copied
// on write), laid out as the kernel lays them out: values packed from the end
// of their area, 4-byte aligned; block entries sorted by (name index, name
// length, name) and hashed; the block header hash and checksum kept current.
//
// Placement follows the kernel: a value goes into the inode body when it
// fits there, otherwise into the block; an entry that moves between the two
// is removed from where it was. Values stored in EA inodes (ea_inode) are
// kept as they are, but this code neither creates them nor changes, removes
// or re-references one: such operations answer EOPNOTSUPP.
//
// Every function reads the inode's current xattrs from `raw_inode` and
// `inode.file_acl`, validates them (EUCLEAN on corruption) and checks that
// the whole change fits before touching anything, so an error leaves
// `inode` and `raw_inode` unchanged; the caller aborts the transaction then
// (an allocator may have recorded changes in it). On success the caller
// serializes `inode` into `raw_inode` with format::SerializeInode (which
// keeps the xattr area and recomputes the inode checksum), writes the slot
// back, and updates ctime as it sees fit.
#ifndef E4FS_EXT4_XATTR_WRITER_H_
#define E4FS_EXT4_XATTR_WRITER_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "ext4/block_allocator.h"
#include "ext4/format/inode.h"
#include "ext4/transaction.h"

namespace ext4 {

struct XattrWriteContext {
  uint32_t block_size = 0;
  bool metadata_csum = false;
  uint32_t fs_checksum_seed = 0;
  uint32_t inode_size = 0;
  bool ea_inode_feature = false;
};

// Sets `name` (a full name such as "user.foo") to `value` on an inode.
// `raw_inode` holds the inode's on-disk bytes (ctx.inode_size of them); its
// in-inode xattr area (after 128 + i_extra_isize) is edited in place.
// `inode.file_acl` and `inode.blocks` change when an xattr block is
// allocated, copied or released. `goal` is where to look for a new block
// (near the inode's group). `flags`: 1 fails with EEXIST when the name
// exists, 2 with ENODATA when it does not (XATTR_CREATE, XATTR_REPLACE;
// ext4::kXattrCreate/kXattrReplace).
//
// Names, as the VFS and ext4 check them: empty or longer than 255 bytes:
// ERANGE; a known prefix with nothing after it ("user."): EINVAL; a prefix
// ext4 has no handler for (including "system." other than the POSIX ACLs):
// EOPNOTSUPP. A value longer than 65536 bytes: E2BIG. A value that fits
// neither in the inode body nor in the block: ENOSPC (as the kernel answers
// without ea_inode, whatever the size).
//
// system.posix_acl_access / system.posix_acl_default take the VFS value
// (version 2) and store ext4's disk form; flags are ignored for them, as the
// kernel ignores them; an empty value or an ACL without entries removes the
// ACL (no error when there is none); a default ACL on a non-directory is
// EACCES (a removal there is a no-op); symlinks answer EOPNOTSUPP. Keeping
// the file mode in step with an access ACL (posix_acl_update_mode) is the
// caller's job.
absl::Status SetXattr(Transaction& tx, const XattrWriteContext& ctx,
                      format::Inode& inode, std::vector<uint8_t>& raw_inode,
                      BlockAllocator& allocator, uint64_t goal,
                      std::string_view name, std::string_view value, int flags);

// Removes `name`; ENODATA when absent (except the POSIX ACL names, whose
// removal succeeds when there is none, as on ext4). Removing the last entry
// of the xattr block releases the block (freed at refcount 1, otherwise one
// reference dropped) and clears i_file_acl. Removing an entry from a shared
// block copies the rest into a new block allocated near the old one.
absl::Status RemoveXattr(Transaction& tx, const XattrWriteContext& ctx,
                         format::Inode& inode, std::vector<uint8_t>& raw_inode,
                         BlockAllocator& allocator, std::string_view name);

// For a deleted inode: drops its reference to the xattr block (freeing the
// block at refcount 1), clears i_file_acl and takes the block out of
// i_blocks. Nothing to do without a block. EOPNOTSUPP when the block would
// be freed while it references EA inodes.
absl::Status ReleaseXattrBlock(Transaction& tx, const XattrWriteContext& ctx,
                               format::Inode& inode, BlockAllocator& allocator);

// The engine's own entries, by on-disk name index and suffix, without the
// VFS name policy or ACL conversion (for example system.data, index 7
// "data", for inline data). `inode_body_only` keeps the entry in the inode
// body (ENOSPC when it does not fit there), as inline data requires.
// Suffix longer than 255 bytes: ERANGE; flags as for SetXattr.
absl::Status SetXattrIndexed(Transaction& tx, const XattrWriteContext& ctx,
                             format::Inode& inode,
                             std::vector<uint8_t>& raw_inode,
                             BlockAllocator& allocator, uint64_t goal,
                             uint8_t name_index, std::string_view suffix,
                             std::string_view value, int flags,
                             bool inode_body_only = false);
// ENODATA when absent.
absl::Status RemoveXattrIndexed(Transaction& tx, const XattrWriteContext& ctx,
                                format::Inode& inode,
                                std::vector<uint8_t>& raw_inode,
                                BlockAllocator& allocator, uint8_t name_index,
                                std::string_view suffix);

// Whether some handler takes `name` (user., trusted., security., the ACL
// names...): EOPNOTSUPP for an unknown prefix, EINVAL for a bare prefix.
absl::Status CheckXattrName(std::string_view name);

}  // namespace ext4

#endif  // E4FS_EXT4_XATTR_WRITER_H_
