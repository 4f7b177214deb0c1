// The ext2/ext3/ext4 superblock: the 1024 bytes at byte offset 1024 of the
// device that describe the whole filesystem's geometry and features.
//
// ParseSuperblock() checks everything the rest of the engine relies on before
// it divides, shifts or indexes with a superblock value, so the derived
// helpers below are safe on a parsed superblock. SerializeSuperblock() writes
// every field back at its spec offset, for the write path.
#ifndef E4FS_EXT4_FORMAT_SUPERBLOCK_H_
#define E4FS_EXT4_FORMAT_SUPERBLOCK_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "ext4/format/endian.h"

namespace ext4::format {

inline constexpr uint64_t kSuperblockOffset = 1024;
inline constexpr size_t kSuperblockSize = 1024;
inline constexpr uint16_t kSuperblockMagic = 0xEF53;
// s_checksum covers the bytes before it.
inline constexpr size_t kSuperblockChecksumOffset = 0x3FC;

inline constexpr uint32_t kMinBlockSize = 1024;
inline constexpr uint32_t kMaxBlockSize = 65536;
// log2 of the largest cluster size (1 GiB), counted like s_log_cluster_size
// from 1 KiB.
inline constexpr uint32_t kMaxLogClusterSize = 20;

// Revision levels (s_rev_level).
inline constexpr uint32_t kGoodOldRevision = 0;
inline constexpr uint32_t kDynamicRevision = 1;
// Revision 0 fixes these; revision 1 stores them in the superblock.
inline constexpr uint16_t kGoodOldInodeSize = 128;
inline constexpr uint32_t kGoodOldFirstInode = 11;

// Group descriptor sizes.
inline constexpr uint16_t kMinDescriptorSize = 32;
inline constexpr uint16_t kMinDescriptorSize64Bit = 64;
inline constexpr uint16_t kMaxDescriptorSize = 1024;

// s_feature_compat: features an implementation may ignore entirely.
inline constexpr uint32_t kCompatDirPrealloc = 0x0001;
inline constexpr uint32_t kCompatImagicInodes = 0x0002;
inline constexpr uint32_t kCompatHasJournal = 0x0004;
inline constexpr uint32_t kCompatExtAttr = 0x0008;
inline constexpr uint32_t kCompatResizeInode = 0x0010;
inline constexpr uint32_t kCompatDirIndex = 0x0020;
inline constexpr uint32_t kCompatLazyBg = 0x0040;
inline constexpr uint32_t kCompatExcludeInode = 0x0080;
inline constexpr uint32_t kCompatExcludeBitmap = 0x0100;
inline constexpr uint32_t kCompatSparseSuper2 = 0x0200;
inline constexpr uint32_t kCompatFastCommit = 0x0400;
inline constexpr uint32_t kCompatStableInodes = 0x0800;
inline constexpr uint32_t kCompatOrphanFile = 0x1000;

// s_feature_ro_compat: features an implementation that does not know them
// may read but must not write.
inline constexpr uint32_t kRoCompatSparseSuper = 0x0001;
inline constexpr uint32_t kRoCompatLargeFile = 0x0002;
inline constexpr uint32_t kRoCompatBtreeDir = 0x0004;
inline constexpr uint32_t kRoCompatHugeFile = 0x0008;
inline constexpr uint32_t kRoCompatGdtCsum = 0x0010;
inline constexpr uint32_t kRoCompatDirNlink = 0x0020;
inline constexpr uint32_t kRoCompatExtraIsize = 0x0040;
inline constexpr uint32_t kRoCompatHasSnapshot = 0x0080;
inline constexpr uint32_t kRoCompatQuota = 0x0100;
inline constexpr uint32_t kRoCompatBigalloc = 0x0200;
inline constexpr uint32_t kRoCompatMetadataCsum = 0x0400;
inline constexpr uint32_t kRoCompatReplica = 0x0800;
inline constexpr uint32_t kRoCompatReadOnly = 0x1000;
inline constexpr uint32_t kRoCompatProject = 0x2000;
inline constexpr uint32_t kRoCompatSharedBlocks = 0x4000;
inline constexpr uint32_t kRoCompatVerity = 0x8000;
inline constexpr uint32_t kRoCompatOrphanPresent = 0x10000;

// s_feature_incompat: features an implementation must understand to touch
// the filesystem at all.
inline constexpr uint32_t kIncompatCompression = 0x0001;
inline constexpr uint32_t kIncompatFiletype = 0x0002;
inline constexpr uint32_t kIncompatRecover = 0x0004;
inline constexpr uint32_t kIncompatJournalDev = 0x0008;
inline constexpr uint32_t kIncompatMetaBg = 0x0010;
inline constexpr uint32_t kIncompatExtents = 0x0040;
inline constexpr uint32_t kIncompat64Bit = 0x0080;
inline constexpr uint32_t kIncompatMmp = 0x0100;
inline constexpr uint32_t kIncompatFlexBg = 0x0200;
inline constexpr uint32_t kIncompatEaInode = 0x0400;
inline constexpr uint32_t kIncompatDirData = 0x1000;
inline constexpr uint32_t kIncompatCsumSeed = 0x2000;
inline constexpr uint32_t kIncompatLargeDir = 0x4000;
inline constexpr uint32_t kIncompatInlineData = 0x8000;
inline constexpr uint32_t kIncompatEncrypt = 0x10000;
inline constexpr uint32_t kIncompatCasefold = 0x20000;

// s_state.
inline constexpr uint16_t kStateValid = 0x0001;   // cleanly unmounted
inline constexpr uint16_t kStateError = 0x0002;   // errors detected
inline constexpr uint16_t kStateOrphan = 0x0004;  // orphans being recovered
inline constexpr uint16_t kStateFcReplay = 0x0020;

// s_errors: what to do when an error is detected.
inline constexpr uint16_t kErrorsContinue = 1;
inline constexpr uint16_t kErrorsReadOnly = 2;
inline constexpr uint16_t kErrorsPanic = 3;

// s_creator_os.
inline constexpr uint32_t kOsLinux = 0;
inline constexpr uint32_t kOsHurd = 1;
inline constexpr uint32_t kOsMasix = 2;
inline constexpr uint32_t kOsFreeBsd = 3;
inline constexpr uint32_t kOsLites = 4;

// s_flags.
inline constexpr uint32_t kFlagsSignedHash = 0x0001;
inline constexpr uint32_t kFlagsUnsignedHash = 0x0002;
inline constexpr uint32_t kFlagsTestFilesystem = 0x0004;

// s_def_hash_version and dx_root hash versions. The unsigned variants are
// what a directory uses when the superblock says kFlagsUnsignedHash.
inline constexpr uint8_t kHashLegacy = 0;
inline constexpr uint8_t kHashHalfMd4 = 1;
inline constexpr uint8_t kHashTea = 2;
inline constexpr uint8_t kHashLegacyUnsigned = 3;
inline constexpr uint8_t kHashHalfMd4Unsigned = 4;
inline constexpr uint8_t kHashTeaUnsigned = 5;
inline constexpr uint8_t kHashSiphash = 6;

// s_default_mount_opts.
inline constexpr uint32_t kDefaultMountDebug = 0x0001;
inline constexpr uint32_t kDefaultMountBsdGroups = 0x0002;
inline constexpr uint32_t kDefaultMountXattrUser = 0x0004;
inline constexpr uint32_t kDefaultMountAcl = 0x0008;
inline constexpr uint32_t kDefaultMountUid16 = 0x0010;
inline constexpr uint32_t kDefaultMountJournalModeMask = 0x0060;
inline constexpr uint32_t kDefaultMountJournalData = 0x0020;
inline constexpr uint32_t kDefaultMountJournalOrdered = 0x0040;
inline constexpr uint32_t kDefaultMountJournalWriteback = 0x0060;
inline constexpr uint32_t kDefaultMountNoBarrier = 0x0100;
inline constexpr uint32_t kDefaultMountBlockValidity = 0x0200;
inline constexpr uint32_t kDefaultMountDiscard = 0x0400;
inline constexpr uint32_t kDefaultMountNoDelalloc = 0x0800;

// s_checksum_type.
inline constexpr uint8_t kChecksumTypeCrc32c = 1;
// s_jnl_backup_type: s_jnl_blocks holds a copy of the journal inode's
// i_block, i_size_high and i_size.
inline constexpr uint8_t kJournalBackupInodeBlocks = 1;
inline constexpr size_t kJournalBackupWords = 17;
// s_encoding.
inline constexpr uint16_t kEncodingUtf8 = 1;

struct Superblock {
  // Counts. The _hi halves (at 0x150..0x15B) are folded into the 64-bit
  // block counts; a filesystem without the 64bit feature must not need them.
  uint32_t inodes_count = 0;
  uint64_t blocks_count = 0;
  uint64_t r_blocks_count = 0;
  uint64_t free_blocks_count = 0;
  uint32_t free_inodes_count = 0;
  uint32_t first_data_block = 0;
  uint32_t log_block_size = 0;    // block size = 1024 << this
  uint32_t log_cluster_size = 0;  // cluster size = 1024 << this (bigalloc)
  uint32_t blocks_per_group = 0;
  uint32_t clusters_per_group = 0;
  uint32_t inodes_per_group = 0;

  // Times in seconds since the epoch; the 8-bit _hi bytes at 0x274..0x279
  // are folded in.
  int64_t mtime = 0;  // last mount
  int64_t wtime = 0;  // last write
  uint16_t mnt_count = 0;
  int16_t max_mnt_count = 0;  // -1: no mount-count check
  uint16_t magic = 0;
  uint16_t state = 0;
  uint16_t errors = 0;
  uint16_t minor_rev_level = 0;
  int64_t lastcheck = 0;
  uint32_t checkinterval = 0;
  uint32_t creator_os = 0;
  uint32_t rev_level = 0;
  uint16_t def_resuid = 0;
  uint16_t def_resgid = 0;

  // Dynamic revision fields.
  uint32_t first_ino = 0;       // use first_inode()
  uint16_t raw_inode_size = 0;  // as stored; use inode_size()
  uint16_t block_group_nr = 0;  // the group holding this copy
  uint32_t feature_compat = 0;
  uint32_t feature_incompat = 0;
  uint32_t feature_ro_compat = 0;
  uint8_t uuid[16] = {};
  std::string volume_name;   // up to 16 bytes, NUL padding stripped
  std::string last_mounted;  // up to 64 bytes
  uint32_t algorithm_usage_bitmap = 0;

  // Preallocation hints.
  uint8_t prealloc_blocks = 0;
  uint8_t prealloc_dir_blocks = 0;
  uint16_t reserved_gdt_blocks = 0;

  // Journal.
  uint8_t journal_uuid[16] = {};
  uint32_t journal_inum = 0;
  uint32_t journal_dev = 0;
  uint32_t last_orphan = 0;  // head of the orphan inode list
  uint32_t hash_seed[4] = {};
  uint8_t def_hash_version = 0;
  uint8_t jnl_backup_type = 0;
  uint16_t desc_size = 0;  // as stored; use descriptor_size()
  uint32_t default_mount_opts = 0;
  uint32_t first_meta_bg = 0;
  int64_t mkfs_time = 0;
  uint32_t jnl_blocks[kJournalBackupWords] = {};

  // 64bit and later fields.
  uint16_t min_extra_isize = 0;
  uint16_t want_extra_isize = 0;
  uint32_t flags = 0;
  uint16_t raid_stride = 0;
  uint16_t mmp_update_interval = 0;
  uint64_t mmp_block = 0;
  uint32_t raid_stripe_width = 0;
  uint8_t log_groups_per_flex = 0;
  uint8_t checksum_type = 0;
  uint8_t encryption_level = 0;
  uint8_t reserved_pad = 0;
  uint64_t kbytes_written = 0;
  uint32_t snapshot_inum = 0;
  uint32_t snapshot_id = 0;
  uint64_t snapshot_r_blocks_count = 0;
  uint32_t snapshot_list = 0;

  // Error tracking.
  uint32_t error_count = 0;
  int64_t first_error_time = 0;
  uint32_t first_error_ino = 0;
  uint64_t first_error_block = 0;
  std::string first_error_func;  // up to 32 bytes
  uint32_t first_error_line = 0;
  int64_t last_error_time = 0;
  uint32_t last_error_ino = 0;
  uint32_t last_error_line = 0;
  uint64_t last_error_block = 0;
  std::string last_error_func;  // up to 32 bytes
  std::string mount_opts;       // up to 64 bytes
  uint8_t first_error_errcode = 0;
  uint8_t last_error_errcode = 0;

  uint32_t usr_quota_inum = 0;
  uint32_t grp_quota_inum = 0;
  uint32_t overhead_clusters = 0;  // 0: not recorded
  uint32_t backup_bgs[2] = {};     // sparse_super2 backup groups
  uint8_t encrypt_algos[4] = {};
  uint8_t encrypt_pw_salt[16] = {};
  uint32_t lpf_ino = 0;  // lost+found
  uint32_t prj_quota_inum = 0;
  uint32_t raw_checksum_seed = 0;  // as stored; use checksum_seed()
  uint16_t encoding = 0;
  uint16_t encoding_flags = 0;
  uint32_t orphan_file_inum = 0;
  uint32_t checksum = 0;

  // Features.
  bool has_compat(uint32_t bit) const { return (feature_compat & bit) != 0; }
  bool has_incompat(uint32_t bit) const {
    return (feature_incompat & bit) != 0;
  }
  bool has_ro_compat(uint32_t bit) const {
    return (feature_ro_compat & bit) != 0;
  }
  bool metadata_csum() const { return has_ro_compat(kRoCompatMetadataCsum); }
  bool is_64bit() const { return has_incompat(kIncompat64Bit); }
  bool bigalloc() const { return has_ro_compat(kRoCompatBigalloc); }
  // Group descriptors carry a checksum (metadata_csum or gdt_csum).
  bool has_group_desc_csum() const {
    return metadata_csum() || has_ro_compat(kRoCompatGdtCsum);
  }
  // Directory hashes treat name bytes as unsigned chars.
  bool hash_unsigned() const { return (flags & kFlagsUnsignedHash) != 0; }

  // Geometry. Meaningful on a superblock ParseSuperblock() accepted.
  uint32_t block_size() const { return kMinBlockSize << (log_block_size & 31); }
  uint32_t block_size_bits() const { return 10 + log_block_size; }
  uint32_t cluster_size() const {
    return bigalloc() ? kMinBlockSize << (log_cluster_size & 31) : block_size();
  }
  // Blocks per cluster (1 without bigalloc).
  uint32_t cluster_ratio() const { return cluster_size() / block_size(); }
  // Clusters per group: the width of a block bitmap.
  uint32_t group_clusters() const {
    return bigalloc() ? clusters_per_group : blocks_per_group;
  }
  uint32_t group_count() const;
  // 32 bytes, or s_desc_size with the 64bit feature.
  uint32_t descriptor_size() const {
    return is_64bit() ? desc_size : kMinDescriptorSize;
  }
  uint32_t descriptors_per_block() const {
    return block_size() / descriptor_size();
  }
  // Blocks holding the group descriptor table (without meta_bg).
  uint32_t descriptor_blocks() const;
  uint32_t inode_size() const {
    return rev_level == kGoodOldRevision ? kGoodOldInodeSize : raw_inode_size;
  }
  uint32_t first_inode() const {
    return rev_level == kGoodOldRevision ? kGoodOldFirstInode : first_ino;
  }
  uint32_t inodes_per_block() const { return block_size() / inode_size(); }
  // Blocks of one group's inode table (rounded up).
  uint32_t inode_table_blocks() const;
  // The block (not the byte) that holds the primary superblock: 1 with
  // 1 KiB blocks, else 0.
  uint64_t superblock_block() const { return block_size() == 1024 ? 1 : 0; }
  // The first block of a group.
  uint64_t group_first_block(uint32_t group) const {
    return first_data_block + uint64_t{group} * blocks_per_group;
  }
  // The seed every metadata_csum checksum starts from: s_checksum_seed with
  // metadata_csum_seed, else crc32c(~0, uuid).
  uint32_t checksum_seed() const;
};

// Parses and validates the 1024 superblock bytes. EINVAL when this is not an
// ext2/3/4 superblock at all (short buffer, bad magic); EUCLEAN for
// impossible geometry or a checksum mismatch (metadata_csum).
absl::StatusOr<Superblock> ParseSuperblock(Bytes raw);

// crc32c(~0, raw[0, 0x3FC)): the value s_checksum must hold.
uint32_t SuperblockChecksum(Bytes raw);

// Writes every field at its offset into raw (>= 1024 bytes; shorter buffers
// are left alone). Bytes no field covers (s_reserved) keep their value, so
// pass the superblock's current bytes, or zeros for a new one. s_checksum is
// recomputed with metadata_csum, else `checksum` is written as is.
void SerializeSuperblock(const Superblock& sb, MutableBytes raw);

// Whether a group holds a superblock copy (and, without meta_bg, a copy of
// the group descriptor table): group 0 always; with sparse_super2 the two
// s_backup_bgs; with sparse_super group 1 and powers of 3, 5 and 7; every
// group otherwise.
bool GroupHasSuperblock(const Superblock& sb, uint32_t group);

// The feature policy. EOPNOTSUPP naming the feature when an INCOMPAT bit is
// set that e4fs cannot handle. Otherwise true when the filesystem may only be
// mounted read-only (an RO_COMPAT bit outside the known set, the read-only or
// shared_blocks bits, bigalloc without extents), false when read-write is fine.
absl::StatusOr<bool> CheckFeatures(const Superblock& sb);

// The features that are set, by their mke2fs names, space separated, in
// dumpe2fs order (compat, incompat, ro_compat; lowest bit first). Unnamed
// bits read FEATURE_C<bit>, FEATURE_I<bit> or FEATURE_R<bit>.
std::string FeatureNames(const Superblock& sb);

}  // namespace ext4::format

#endif  // E4FS_EXT4_FORMAT_SUPERBLOCK_H_
