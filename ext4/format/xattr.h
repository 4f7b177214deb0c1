// Extended attributes: the entry table kept in an inode's extra space and in
// a separate xattr block, the name index/prefix scheme, the entry and block
// hashes, and the conversion of POSIX ACLs between ext4's compact on-disk
// form and the VFS posix_acl_xattr form.
#ifndef E4FS_EXT4_FORMAT_XATTR_H_
#define E4FS_EXT4_FORMAT_XATTR_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ext4/format/endian.h"

namespace ext4::format {

inline constexpr uint32_t kXattrMagic = 0xEA020000;

// e_name_index values. A few stand for a whole name (the on-disk suffix is
// then empty); the others are prefixes of the name.
inline constexpr uint8_t kXattrIndexUser = 1;             // "user."
inline constexpr uint8_t kXattrIndexPosixAclAccess = 2;   // whole name
inline constexpr uint8_t kXattrIndexPosixAclDefault = 3;  // whole name
inline constexpr uint8_t kXattrIndexTrusted = 4;          // "trusted."
inline constexpr uint8_t kXattrIndexSecurity = 6;         // "security."
inline constexpr uint8_t kXattrIndexSystem = 7;           // "system."
inline constexpr uint8_t kXattrIndexRichAcl = 8;          // whole name
inline constexpr uint8_t kXattrIndexHurd = 10;            // "gnu."

inline constexpr size_t kXattrMaxNameLen = 255;  // e_name_len is one byte
inline constexpr uint32_t kXattrMaxValueSize = uint32_t{1} << 24;
inline constexpr size_t kXattrEntryHeaderSize = 16;
inline constexpr size_t kXattrBlockHeaderSize = 32;
inline constexpr size_t kXattrInodeHeaderSize = 4;  // the magic alone
// The lowest inode number an xattr value inode may have (s_first_ino is at
// least this).
inline constexpr uint32_t kXattrFirstValueInode = 11;

// On-disk size of an entry with a name of `name_len` bytes, and of a value
// of `size` bytes: both are padded to 4 bytes.
inline size_t XattrEntrySize(size_t name_len) {
  return (kXattrEntryHeaderSize + name_len + 3) & ~size_t{3};
}
inline size_t XattrValueSize(size_t size) { return (size + 3) & ~size_t{3}; }

// The full name of an entry ("user." + suffix; "system.posix_acl_access"
// for index 2, with the suffix, normally empty, appended). Empty for an
// index this engine has no prefix for: such entries are kept but not listed.
std::string FullXattrName(uint8_t index, std::string_view suffix);

// Splits a full name into index and on-disk suffix, the way the kernel picks
// its handler: the whole-name indexes match only the exact name; the prefix
// indexes need a nonempty suffix; the longest match wins ("system.richacl"
// is index 8, "system.foo" index 7 with suffix "foo"). False when no index
// fits (for example "user." alone or "os2.x"). The suffix length is the
// caller's to check against kXattrMaxNameLen.
bool SplitXattrName(std::string_view full, uint8_t* index, std::string* suffix);

struct XattrEntry {
  uint8_t name_index = 0;
  std::string name;         // the on-disk suffix
  uint32_t value_inum = 0;  // inode holding the value (ea_inode), 0 inline
  uint32_t value_size = 0;  // in bytes, inline or in the value inode
  std::string value;        // inline value; empty when value_inum != 0
  uint32_t hash = 0;        // e_hash as stored

  std::string full_name() const { return FullXattrName(name_index, name); }
};

// Parses the xattrs stored in an inode: `area` is the inode's bytes after
// 128 + i_extra_isize up to the inode size. It starts with the 4-byte magic
// (no magic, or too small to hold one: no xattrs); entries follow, ended by
// four zero bytes; value offsets count from the first entry (area + 4).
// EUCLEAN on any entry or value outside the area, a missing terminator, a
// value overlapping the entry table, an empty or NUL-containing name (the
// whole-name indexes excepted), a value size over kXattrMaxValueSize or a
// reserved value inode. Whether the ea_inode feature is on, and whether a
// value inode exists, are the caller's to check.
absl::StatusOr<std::vector<XattrEntry>> ParseInodeXattrs(Bytes area);

struct XattrBlock {
  uint32_t refcount = 0;
  uint32_t blocks = 0;
  uint32_t hash = 0;
  uint32_t checksum = 0;
  std::vector<XattrEntry> entries;
};

// Parses a whole xattr block (header, entry table from offset 32, values
// addressed from the block start). Checks the magic, h_blocks == 1, the
// checksum when `metadata_csum` (via ChecksumMismatch), the entries as
// ParseInodeXattrs does, and 4-byte aligned values. EUCLEAN on corruption.
absl::StatusOr<XattrBlock> ParseXattrBlock(Bytes block, uint64_t block_number,
                                           bool metadata_csum,
                                           uint32_t fs_checksum_seed);

// crc32c(fs_seed, le64 block_number), then the block with h_checksum read as
// zero. The block must hold the 32-byte header (returns 0 otherwise).
uint32_t XattrBlockChecksum(Bytes block, uint64_t block_number,
                            uint32_t fs_checksum_seed);
void SetXattrBlockChecksum(MutableBytes block, uint64_t block_number,
                           uint32_t fs_checksum_seed);

// The entry hash (e_hash) of an inline value: name bytes (unsigned), then
// the value as little-endian 32-bit words, zero padded.
uint32_t XattrEntryHash(std::string_view name, Bytes value);
// The same with the name bytes taken as signed chars, as older kernels and
// e2fsprogs computed it on signed-char machines; readers accept either.
uint32_t XattrEntryHashSigned(std::string_view name, Bytes value);
// The entry hash of a value kept in an inode: the name, then the value
// inode's hash (XattrValueInodeHash) as the only value word.
uint32_t XattrEntryHashForValueInode(std::string_view name,
                                     uint32_t value_hash);
// The hash of a value kept in a value inode: crc32c(fs_seed, value).
uint32_t XattrValueInodeHash(uint32_t fs_checksum_seed, Bytes value);
// h_hash of a block from its entries' hashes in on-disk order: 0 as soon as
// one entry's hash is 0 (such a block is never shared).
uint32_t XattrBlockHash(const std::vector<XattrEntry>& entries);

// POSIX ACLs. The VFS value (system.posix_acl_*): le32 version 2, then
// 8-byte entries {le16 tag, le16 perm, le32 id}. ext4 on disk: le32 version
// 1, then 4-byte {tag, perm} entries for USER_OBJ, GROUP_OBJ, MASK, OTHER and
// 8-byte {tag, perm, id} entries for USER and GROUP.
inline constexpr uint32_t kAclXattrVersion = 2;
inline constexpr uint32_t kAclDiskVersion = 1;
inline constexpr uint16_t kAclUserObj = 0x01;
inline constexpr uint16_t kAclUser = 0x02;
inline constexpr uint16_t kAclGroupObj = 0x04;
inline constexpr uint16_t kAclGroup = 0x08;
inline constexpr uint16_t kAclMask = 0x10;
inline constexpr uint16_t kAclOther = 0x20;
inline constexpr uint32_t kAclUndefinedId = 0xFFFFFFFF;

// Disk form -> VFS form. An ACL with no entries gives an empty string (the
// kernel reports no ACL then). EUCLEAN for a bad version, a size that is not
// a possible entry layout, or an unknown tag.
absl::StatusOr<std::string> AclDiskToXattr(Bytes disk);

// VFS form -> disk form, validated as the kernel validates a set: EOPNOTSUPP
// for a version other than 2; EINVAL for a bad size, an unknown tag, an
// undefined user/group id, permission bits beyond rwx, or entries out of
// the required order (USER_OBJ, USER..., GROUP_OBJ, GROUP..., MASK (needed
// when named entries exist), OTHER). No entries gives an empty string: the
// caller removes the ACL then, as the kernel does.
absl::StatusOr<std::string> AclXattrToDisk(Bytes xattr);

}  // namespace ext4::format

#endif  // E4FS_EXT4_FORMAT_XATTR_H_
