// On-disk inodes: the 128-byte base every revision has, the extra fields a
// larger inode carries after it (i_extra_isize bytes: nanosecond times,
// creation time, checksum high half, project id), and the in-inode extended
// attribute area that fills the rest of the inode.
#ifndef E4FS_EXT4_FORMAT_INODE_H_
#define E4FS_EXT4_FORMAT_INODE_H_

#include <array>
#include <cstdint>

#include "absl/status/statusor.h"
#include "ext4/format/endian.h"
#include "ext4/format/superblock.h"

namespace ext4::format {

// Reserved inode numbers.
inline constexpr uint32_t kBadBlocksIno = 1;
inline constexpr uint32_t kRootDirIno = 2;
inline constexpr uint32_t kUserQuotaIno = 3;
inline constexpr uint32_t kGroupQuotaIno = 4;
inline constexpr uint32_t kBootLoaderIno = 5;
inline constexpr uint32_t kUndeleteDirIno = 6;
inline constexpr uint32_t kResizeIno = 7;
inline constexpr uint32_t kJournalIno = 8;
inline constexpr uint32_t kExcludeIno = 9;
inline constexpr uint32_t kReplicaIno = 10;

// i_flags.
inline constexpr uint32_t kInodeFlagSecureRm = 0x00000001;
inline constexpr uint32_t kInodeFlagUnrm = 0x00000002;
inline constexpr uint32_t kInodeFlagCompr = 0x00000004;
inline constexpr uint32_t kInodeFlagSync = 0x00000008;
inline constexpr uint32_t kInodeFlagImmutable = 0x00000010;
inline constexpr uint32_t kInodeFlagAppend = 0x00000020;
inline constexpr uint32_t kInodeFlagNodump = 0x00000040;
inline constexpr uint32_t kInodeFlagNoatime = 0x00000080;
inline constexpr uint32_t kInodeFlagDirty = 0x00000100;
inline constexpr uint32_t kInodeFlagComprBlk = 0x00000200;
inline constexpr uint32_t kInodeFlagNoCompr = 0x00000400;
inline constexpr uint32_t kInodeFlagEncrypt = 0x00000800;
inline constexpr uint32_t kInodeFlagIndex = 0x00001000;  // htree directory
inline constexpr uint32_t kInodeFlagImagic = 0x00002000;
inline constexpr uint32_t kInodeFlagJournalData = 0x00004000;
inline constexpr uint32_t kInodeFlagNotail = 0x00008000;
inline constexpr uint32_t kInodeFlagDirSync = 0x00010000;
inline constexpr uint32_t kInodeFlagTopdir = 0x00020000;
// i_blocks counts filesystem blocks, not 512-byte sectors (huge_file).
inline constexpr uint32_t kInodeFlagHugeFile = 0x00040000;
inline constexpr uint32_t kInodeFlagExtents = 0x00080000;
inline constexpr uint32_t kInodeFlagVerity = 0x00100000;
inline constexpr uint32_t kInodeFlagEaInode = 0x00200000;
inline constexpr uint32_t kInodeFlagDax = 0x02000000;
inline constexpr uint32_t kInodeFlagInlineData = 0x10000000;
inline constexpr uint32_t kInodeFlagProjInherit = 0x20000000;
inline constexpr uint32_t kInodeFlagCasefold = 0x40000000;
inline constexpr uint32_t kInodeFlagReserved = 0x80000000;

// i_mode file types (the S_IFMT bits, fixed by the format whatever the host).
inline constexpr uint16_t kModeTypeMask = 0xF000;
inline constexpr uint16_t kModeFifo = 0x1000;
inline constexpr uint16_t kModeCharDevice = 0x2000;
inline constexpr uint16_t kModeDirectory = 0x4000;
inline constexpr uint16_t kModeBlockDevice = 0x6000;
inline constexpr uint16_t kModeRegular = 0x8000;
inline constexpr uint16_t kModeSymlink = 0xA000;
inline constexpr uint16_t kModeSocket = 0xC000;

// Bytes of i_block: 15 block pointers, an extent root, inline data or a fast
// symlink target.
inline constexpr size_t kInodeBlockSize = 60;
// The extra fields a kernel writes today (up to and including i_projid).
inline constexpr uint16_t kInodeExtraIsizeCurrent = 32;

struct InodeTime {
  int64_t sec = 0;
  uint32_t nsec = 0;
};

struct Inode {
  uint16_t mode = 0;
  uint32_t uid = 0;   // i_uid | i_uid_high << 16
  uint32_t gid = 0;   // i_gid | i_gid_high << 16
  uint64_t size = 0;  // i_size_lo | i_size_high << 32
  // Seconds and, where the extra fields hold them, nanoseconds and the two
  // epoch bits that carry the seconds past 2038.
  InodeTime atime;
  InodeTime ctime;
  InodeTime mtime;
  InodeTime crtime;    // only when has_crtime()
  uint32_t dtime = 0;  // deletion time, or the next orphan's number
  uint16_t links_count = 0;
  // In 512-byte units, whatever the on-disk encoding (huge_file and the
  // HUGE_FILE flag store filesystem blocks; SerializeInode converts back).
  uint64_t blocks = 0;
  uint32_t flags = 0;
  uint64_t version = 0;  // osd1 l_i_version | i_version_hi << 32
  std::array<uint8_t, kInodeBlockSize> block{};
  uint32_t generation = 0;
  uint64_t file_acl = 0;  // xattr block; the high half only with 64bit
  uint32_t obso_faddr = 0;
  uint16_t extra_isize = 0;  // 0 for 128-byte inodes
  uint32_t checksum = 0;     // lo | hi << 16 (hi only when the extra fits it)
  uint32_t projid = 0;

  uint16_t file_type() const { return mode & kModeTypeMask; }
  bool is_dir() const { return file_type() == kModeDirectory; }
  bool is_reg() const { return file_type() == kModeRegular; }
  bool is_symlink() const { return file_type() == kModeSymlink; }
  bool is_chr() const { return file_type() == kModeCharDevice; }
  bool is_blk() const { return file_type() == kModeBlockDevice; }
  bool is_fifo() const { return file_type() == kModeFifo; }
  bool is_sock() const { return file_type() == kModeSocket; }
  bool has_inline_data() const { return (flags & kInodeFlagInlineData) != 0; }
  bool uses_extents() const { return (flags & kInodeFlagExtents) != 0; }
  // The inode has fields past the 128-byte base.
  bool has_extra_fields() const { return extra_isize != 0; }
  bool has_crtime() const { return extra_isize >= 0x94 - 0x80; }
};

// Parses one inode (raw holds exactly the superblock's inode_size() bytes).
// EUCLEAN when i_extra_isize does not fit the inode or is not a multiple of
// 4, when the size is negative, or on a checksum mismatch (metadata_csum; as
// e2fsprogs does, an all-zero inode, never written, is accepted unchecked).
absl::StatusOr<Inode> ParseInode(Bytes raw, uint32_t ino, const Superblock& sb);

// The crc32c the inode's checksum fields must hold, computed with both
// fields read as zero. A 128-byte inode, or one whose extra fields do not
// reach i_checksum_hi, stores only the low 16 bits.
uint32_t InodeChecksum(Bytes raw, uint32_t ino, const Superblock& sb);

// The in-inode extended attribute area: everything after the 128-byte base
// and its i_extra_isize extra bytes. Empty when there is none or the extra
// size is out of range.
Bytes InodeXattrArea(Bytes raw, const Inode& inode);

// Writes the modelled fields into raw (the inode's current bytes, exactly
// inode_size() of them; other buffers are left alone), keeping every byte no
// field covers (the xattr area, i_obso_faddr's neighbours, reserved bytes,
// the high size word of a directory without large_dir), then recomputes the
// checksum under metadata_csum.
void SerializeInode(const Inode& inode, uint32_t ino, const Superblock& sb,
                    MutableBytes raw);

}  // namespace ext4::format

#endif  // E4FS_EXT4_FORMAT_INODE_H_
