#include "ext4/format/superblock.h"

#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <string>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "ext4/format/checksum.h"

namespace ext4::format {
namespace {

// Field offsets in struct ext4_super_block.
constexpr size_t kInodesCount = 0x00;
constexpr size_t kBlocksCountLo = 0x04;
constexpr size_t kRBlocksCountLo = 0x08;
constexpr size_t kFreeBlocksCountLo = 0x0C;
constexpr size_t kFreeInodesCount = 0x10;
constexpr size_t kFirstDataBlock = 0x14;
constexpr size_t kLogBlockSize = 0x18;
constexpr size_t kLogClusterSize = 0x1C;
constexpr size_t kBlocksPerGroup = 0x20;
constexpr size_t kClustersPerGroup = 0x24;
constexpr size_t kInodesPerGroup = 0x28;
constexpr size_t kMtime = 0x2C;
constexpr size_t kWtime = 0x30;
constexpr size_t kMntCount = 0x34;
constexpr size_t kMaxMntCount = 0x36;
constexpr size_t kMagic = 0x38;
constexpr size_t kState = 0x3A;
constexpr size_t kErrors = 0x3C;
constexpr size_t kMinorRevLevel = 0x3E;
constexpr size_t kLastcheck = 0x40;
constexpr size_t kCheckinterval = 0x44;
constexpr size_t kCreatorOs = 0x48;
constexpr size_t kRevLevel = 0x4C;
constexpr size_t kDefResuid = 0x50;
constexpr size_t kDefResgid = 0x52;
constexpr size_t kFirstIno = 0x54;
constexpr size_t kInodeSize = 0x58;
constexpr size_t kBlockGroupNr = 0x5A;
constexpr size_t kFeatureCompat = 0x5C;
constexpr size_t kFeatureIncompat = 0x60;
constexpr size_t kFeatureRoCompat = 0x64;
constexpr size_t kUuid = 0x68;
constexpr size_t kVolumeName = 0x78;
constexpr size_t kVolumeNameSize = 16;
constexpr size_t kLastMounted = 0x88;
constexpr size_t kLastMountedSize = 64;
constexpr size_t kAlgorithmUsageBitmap = 0xC8;
constexpr size_t kPreallocBlocks = 0xCC;
constexpr size_t kPreallocDirBlocks = 0xCD;
constexpr size_t kReservedGdtBlocks = 0xCE;
constexpr size_t kJournalUuid = 0xD0;
constexpr size_t kJournalInum = 0xE0;
constexpr size_t kJournalDev = 0xE4;
constexpr size_t kLastOrphan = 0xE8;
constexpr size_t kHashSeed = 0xEC;
constexpr size_t kDefHashVersion = 0xFC;
constexpr size_t kJnlBackupType = 0xFD;
constexpr size_t kDescSize = 0xFE;
constexpr size_t kDefaultMountOpts = 0x100;
constexpr size_t kFirstMetaBg = 0x104;
constexpr size_t kMkfsTime = 0x108;
constexpr size_t kJnlBlocks = 0x10C;
constexpr size_t kBlocksCountHi = 0x150;
constexpr size_t kRBlocksCountHi = 0x154;
constexpr size_t kFreeBlocksCountHi = 0x158;
constexpr size_t kMinExtraIsize = 0x15C;
constexpr size_t kWantExtraIsize = 0x15E;
constexpr size_t kFlags = 0x160;
constexpr size_t kRaidStride = 0x164;
constexpr size_t kMmpUpdateInterval = 0x166;
constexpr size_t kMmpBlock = 0x168;
constexpr size_t kRaidStripeWidth = 0x170;
constexpr size_t kLogGroupsPerFlex = 0x174;
constexpr size_t kChecksumType = 0x175;
constexpr size_t kEncryptionLevel = 0x176;
constexpr size_t kReservedPad = 0x177;
constexpr size_t kKbytesWritten = 0x178;
constexpr size_t kSnapshotInum = 0x180;
constexpr size_t kSnapshotId = 0x184;
constexpr size_t kSnapshotRBlocksCount = 0x188;
constexpr size_t kSnapshotList = 0x190;
constexpr size_t kErrorCount = 0x194;
constexpr size_t kFirstErrorTime = 0x198;
constexpr size_t kFirstErrorIno = 0x19C;
constexpr size_t kFirstErrorBlock = 0x1A0;
constexpr size_t kFirstErrorFunc = 0x1A8;
constexpr size_t kErrorFuncSize = 32;
constexpr size_t kFirstErrorLine = 0x1C8;
constexpr size_t kLastErrorTime = 0x1CC;
constexpr size_t kLastErrorIno = 0x1D0;
constexpr size_t kLastErrorLine = 0x1D4;
constexpr size_t kLastErrorBlock = 0x1D8;
constexpr size_t kLastErrorFunc = 0x1E0;
constexpr size_t kMountOpts = 0x200;
constexpr size_t kMountOptsSize = 64;
constexpr size_t kUsrQuotaInum = 0x240;
constexpr size_t kGrpQuotaInum = 0x244;
constexpr size_t kOverheadClusters = 0x248;
constexpr size_t kBackupBgs = 0x24C;
constexpr size_t kEncryptAlgos = 0x254;
constexpr size_t kEncryptPwSalt = 0x258;
constexpr size_t kLpfIno = 0x268;
constexpr size_t kPrjQuotaInum = 0x26C;
constexpr size_t kChecksumSeed = 0x270;
constexpr size_t kWtimeHi = 0x274;
constexpr size_t kMtimeHi = 0x275;
constexpr size_t kMkfsTimeHi = 0x276;
constexpr size_t kLastcheckHi = 0x277;
constexpr size_t kFirstErrorTimeHi = 0x278;
constexpr size_t kLastErrorTimeHi = 0x279;
constexpr size_t kFirstErrorErrcode = 0x27A;
constexpr size_t kLastErrorErrcode = 0x27B;
constexpr size_t kEncoding = 0x27C;
constexpr size_t kEncodingFlags = 0x27E;
constexpr size_t kOrphanFileInum = 0x280;
static_assert(kJnlBlocks + 4 * kJournalBackupWords == kBlocksCountHi);
static_assert(kOrphanFileInum + 4 < kSuperblockChecksumOffset);
static_assert(kSuperblockChecksumOffset + 4 == kSuperblockSize);

// The INCOMPAT features e4fs handles.
constexpr uint32_t kSupportedIncompat =
    kIncompatFiletype | kIncompatRecover | kIncompatMetaBg | kIncompatExtents |
    kIncompat64Bit | kIncompatMmp | kIncompatFlexBg | kIncompatEaInode |
    kIncompatLargeDir | kIncompatInlineData | kIncompatCsumSeed |
    kIncompatEncrypt;

// The RO_COMPAT features that still allow a read-write mount (the kernel's
// supported set, which leaves out btree_dir and snapshots).
constexpr uint32_t kReadWriteRoCompat =
    kRoCompatSparseSuper | kRoCompatLargeFile | kRoCompatHugeFile |
    kRoCompatGdtCsum | kRoCompatDirNlink | kRoCompatExtraIsize |
    kRoCompatQuota | kRoCompatBigalloc | kRoCompatMetadataCsum |
    kRoCompatReplica | kRoCompatProject | kRoCompatVerity |
    kRoCompatOrphanPresent;

struct FeatureName {
  uint32_t bit;
  const char* name;
};

// mke2fs / dumpe2fs names.
constexpr FeatureName kCompatNames[] = {
    {kCompatDirPrealloc, "dir_prealloc"},
    {kCompatImagicInodes, "imagic_inodes"},
    {kCompatHasJournal, "has_journal"},
    {kCompatExtAttr, "ext_attr"},
    {kCompatResizeInode, "resize_inode"},
    {kCompatDirIndex, "dir_index"},
    {kCompatLazyBg, "lazy_bg"},
    {kCompatExcludeBitmap, "snapshot_bitmap"},
    {kCompatSparseSuper2, "sparse_super2"},
    {kCompatFastCommit, "fast_commit"},
    {kCompatStableInodes, "stable_inodes"},
    {kCompatOrphanFile, "orphan_file"},
};
constexpr FeatureName kIncompatNames[] = {
    {kIncompatCompression, "compression"},
    {kIncompatFiletype, "filetype"},
    {kIncompatRecover, "needs_recovery"},
    {kIncompatJournalDev, "journal_dev"},
    {kIncompatMetaBg, "meta_bg"},
    {kIncompatExtents, "extent"},
    {kIncompat64Bit, "64bit"},
    {kIncompatMmp, "mmp"},
    {kIncompatFlexBg, "flex_bg"},
    {kIncompatEaInode, "ea_inode"},
    {kIncompatDirData, "dirdata"},
    {kIncompatCsumSeed, "metadata_csum_seed"},
    {kIncompatLargeDir, "large_dir"},
    {kIncompatInlineData, "inline_data"},
    {kIncompatEncrypt, "encrypt"},
    {kIncompatCasefold, "casefold"},
};
constexpr FeatureName kRoCompatNames[] = {
    {kRoCompatSparseSuper, "sparse_super"},
    {kRoCompatLargeFile, "large_file"},
    {kRoCompatHugeFile, "huge_file"},
    {kRoCompatGdtCsum, "uninit_bg"},
    {kRoCompatDirNlink, "dir_nlink"},
    {kRoCompatExtraIsize, "extra_isize"},
    {kRoCompatQuota, "quota"},
    {kRoCompatBigalloc, "bigalloc"},
    {kRoCompatMetadataCsum, "metadata_csum"},
    {kRoCompatReplica, "replica"},
    {kRoCompatReadOnly, "read-only"},
    {kRoCompatProject, "project"},
    {kRoCompatSharedBlocks, "shared_blocks"},
    {kRoCompatVerity, "verity"},
    {kRoCompatOrphanPresent, "orphan_present"},
};

template <size_t N>
std::string NameOf(const FeatureName (&names)[N], char kind, uint32_t bit) {
  for (const FeatureName& f : names) {
    if (f.bit == bit) return f.name;
  }
  int index = 0;
  while ((bit >> index) > 1) ++index;
  return absl::StrCat("FEATURE_", std::string(1, kind), index);
}

template <size_t N>
void AppendNames(const FeatureName (&names)[N], char kind, uint32_t mask,
                 std::string& out) {
  for (int i = 0; i < 32; ++i) {
    uint32_t bit = uint32_t{1} << i;
    if (!(mask & bit)) continue;
    if (!out.empty()) out += ' ';
    out += NameOf(names, kind, bit);
  }
}

// A fixed-size, NUL-padded character field, cut at its first NUL.
std::string ReadString(Bytes raw, size_t offset, size_t size) {
  const char* begin = reinterpret_cast<const char*>(raw.data() + offset);
  size_t length = 0;
  while (length < size && begin[length] != '\0') ++length;
  return std::string(begin, length);
}

void WriteString(MutableBytes raw, size_t offset, size_t size,
                 const std::string& value) {
  size_t length = value.size() < size ? value.size() : size;
  std::memcpy(raw.data() + offset, value.data(), length);
  std::memset(raw.data() + offset + length, 0, size - length);
}

// A 32-bit seconds field with its 8-bit high byte.
int64_t ReadTime(Bytes raw, size_t lo, size_t hi) {
  return static_cast<int64_t>(Le32(raw, lo) |
                              (static_cast<uint64_t>(Le8(raw, hi)) << 32));
}

void WriteTime(MutableBytes raw, size_t lo, size_t hi, int64_t value) {
  uint64_t bits = static_cast<uint64_t>(value);
  Put32(raw, lo, static_cast<uint32_t>(bits));
  raw[hi] = static_cast<uint8_t>(bits >> 32);
}

absl::Status Bad(const std::string& what) {
  return Corrupt(absl::StrCat("superblock: ", what));
}

bool IsPowerOfTwo(uint64_t value) {
  return value != 0 && (value & (value - 1)) == 0;
}

// The geometry checks, in the order the kernel makes them at mount.
absl::Status ValidateGeometry(const Superblock& sb) {
  if (sb.rev_level > kDynamicRevision) {
    return Bad(absl::StrCat("unsupported revision level ", sb.rev_level));
  }
  if (sb.log_block_size > 6) {
    return Bad(absl::StrCat("invalid log block size ", sb.log_block_size,
                            " (block size must be 1 KiB to 64 KiB)"));
  }
  const uint32_t block_size = sb.block_size();
  const uint32_t bits_per_block = block_size * 8;

  if (sb.rev_level != kGoodOldRevision) {
    uint32_t inode_size = sb.raw_inode_size;
    if (inode_size < kGoodOldInodeSize || !IsPowerOfTwo(inode_size) ||
        inode_size > block_size) {
      return Bad(absl::StrCat("unsupported inode size ", inode_size,
                              " (block size ", block_size, ")"));
    }
    if (sb.first_ino < kGoodOldFirstInode) {
      return Bad(absl::StrCat("invalid first inode ", sb.first_ino));
    }
  }
  const uint32_t inode_size = sb.inode_size();
  if (inode_size > kGoodOldInodeSize && sb.has_ro_compat(kRoCompatExtraIsize)) {
    uint32_t max = inode_size - kGoodOldInodeSize;
    if (sb.want_extra_isize > max) {
      return Bad(absl::StrCat("bad s_want_extra_isize ", sb.want_extra_isize,
                              " (inode size ", inode_size, ")"));
    }
    if (sb.min_extra_isize > max) {
      return Bad(absl::StrCat("bad s_min_extra_isize ", sb.min_extra_isize,
                              " (inode size ", inode_size, ")"));
    }
  }

  if (sb.bigalloc()) {
    if (sb.log_cluster_size < sb.log_block_size) {
      return Bad(absl::StrCat("cluster size (log ", sb.log_cluster_size,
                              ") smaller than block size (log ",
                              sb.log_block_size, ")"));
    }
    if (sb.log_cluster_size > kMaxLogClusterSize) {
      return Bad(
          absl::StrCat("invalid log cluster size ", sb.log_cluster_size));
    }
    if (sb.clusters_per_group == 0 || sb.clusters_per_group > bits_per_block) {
      return Bad(
          absl::StrCat("invalid clusters per group ", sb.clusters_per_group));
    }
    uint64_t expected = uint64_t{sb.clusters_per_group}
                        << (sb.log_cluster_size - sb.log_block_size);
    if (sb.blocks_per_group != expected) {
      return Bad(absl::StrCat("blocks per group (", sb.blocks_per_group,
                              ") and clusters per group (",
                              sb.clusters_per_group, ") inconsistent"));
    }
  } else {
    if (sb.log_cluster_size != sb.log_block_size) {
      return Bad(absl::StrCat("cluster size (log ", sb.log_cluster_size,
                              ") differs from block size (log ",
                              sb.log_block_size, ") without bigalloc"));
    }
    if (sb.blocks_per_group == 0 || sb.blocks_per_group > bits_per_block) {
      return Bad(
          absl::StrCat("invalid blocks per group ", sb.blocks_per_group));
    }
  }

  if (sb.inodes_per_group < sb.inodes_per_block() ||
      sb.inodes_per_group > bits_per_block) {
    return Bad(absl::StrCat("invalid inodes per group ", sb.inodes_per_group));
  }

  if (sb.is_64bit()) {
    if (sb.desc_size < kMinDescriptorSize64Bit ||
        sb.desc_size > kMaxDescriptorSize || !IsPowerOfTwo(sb.desc_size)) {
      return Bad(
          absl::StrCat("unsupported group descriptor size ", sb.desc_size));
    }
  }
  if (sb.reserved_gdt_blocks > block_size / 4) {
    return Bad(absl::StrCat("number of reserved GDT blocks too large: ",
                            sb.reserved_gdt_blocks));
  }

  if (!sb.is_64bit() && sb.blocks_count > UINT32_MAX) {
    return Bad(absl::StrCat("block count ", sb.blocks_count,
                            " needs the 64bit feature"));
  }
  uint32_t expected_first = (block_size == 1024 && !sb.bigalloc()) ? 1 : 0;
  if (sb.first_data_block != expected_first) {
    return Bad(absl::StrCat("first data block ", sb.first_data_block,
                            " (must be ", expected_first, " with ", block_size,
                            "-byte blocks",
                            sb.bigalloc() ? " and bigalloc" : "", ")"));
  }
  if (sb.blocks_count <= sb.first_data_block) {
    return Bad(absl::StrCat("block count ", sb.blocks_count,
                            " leaves no room after first data block ",
                            sb.first_data_block));
  }
  // The free counts are only hints (the kernel and e2fsck recompute them
  // from the groups), so a wrong one is no reason to refuse the image; the
  // reserve is a setting, and the kernel refuses one larger than the
  // filesystem.
  if (sb.r_blocks_count > sb.blocks_count) {
    return Bad(absl::StrCat("reserved block count ", sb.r_blocks_count,
                            " exceeds the block count ", sb.blocks_count));
  }

  uint64_t groups =
      (sb.blocks_count - sb.first_data_block + sb.blocks_per_group - 1) /
      sb.blocks_per_group;
  if (groups > (uint64_t{1} << 32) - sb.descriptors_per_block()) {
    return Bad(absl::StrCat("group count too large: ", groups, " (block count ",
                            sb.blocks_count, ", blocks per group ",
                            sb.blocks_per_group, ")"));
  }
  if (groups * sb.inodes_per_group != sb.inodes_count) {
    return Bad(absl::StrCat("inode count ", sb.inodes_count, " is not ", groups,
                            " groups of ", sb.inodes_per_group));
  }
  if (sb.rev_level != kGoodOldRevision && sb.first_ino > sb.inodes_count) {
    return Bad(absl::StrCat("first inode ", sb.first_ino,
                            " beyond the inode count ", sb.inodes_count));
  }
  if (sb.has_incompat(kIncompatMetaBg) &&
      sb.first_meta_bg > sb.descriptor_blocks()) {
    return Bad(absl::StrCat(
        "first meta block group too large: ", sb.first_meta_bg,
        " (group descriptor blocks ", sb.descriptor_blocks(), ")"));
  }
  return absl::OkStatus();
}

}  // namespace

uint32_t Superblock::group_count() const {
  if (blocks_per_group == 0 || blocks_count <= first_data_block) return 0;
  uint64_t groups = (blocks_count - first_data_block + blocks_per_group - 1) /
                    blocks_per_group;
  return groups > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(groups);
}

uint32_t Superblock::descriptor_blocks() const {
  uint32_t per_block = descriptors_per_block();
  if (per_block == 0) return 0;
  uint64_t groups = group_count();
  return static_cast<uint32_t>((groups + per_block - 1) / per_block);
}

uint32_t Superblock::inode_table_blocks() const {
  uint64_t bytes = uint64_t{inodes_per_group} * inode_size();
  uint32_t size = block_size();
  return static_cast<uint32_t>((bytes + size - 1) / size);
}

uint32_t Superblock::checksum_seed() const {
  if (has_incompat(kIncompatCsumSeed)) return raw_checksum_seed;
  return Crc32c(~0u, Bytes(uuid, sizeof(uuid)));
}

uint32_t SuperblockChecksum(Bytes raw) {
  return Crc32c(~0u, raw.first(kSuperblockChecksumOffset));
}

absl::StatusOr<Superblock> ParseSuperblock(Bytes raw) {
  if (raw.size() < kSuperblockSize) {
    return ErrnoError(EINVAL,
                      absl::StrCat("not an ext2/ext3/ext4 filesystem (only ",
                                   raw.size(), " superblock bytes)"));
  }
  Superblock sb;
  sb.inodes_count = Le32(raw, kInodesCount);
  sb.blocks_count =
      Le32(raw, kBlocksCountLo) | (uint64_t{Le32(raw, kBlocksCountHi)} << 32);
  sb.r_blocks_count =
      Le32(raw, kRBlocksCountLo) | (uint64_t{Le32(raw, kRBlocksCountHi)} << 32);
  sb.free_blocks_count = Le32(raw, kFreeBlocksCountLo) |
                         (uint64_t{Le32(raw, kFreeBlocksCountHi)} << 32);
  sb.free_inodes_count = Le32(raw, kFreeInodesCount);
  sb.first_data_block = Le32(raw, kFirstDataBlock);
  sb.log_block_size = Le32(raw, kLogBlockSize);
  sb.log_cluster_size = Le32(raw, kLogClusterSize);
  sb.blocks_per_group = Le32(raw, kBlocksPerGroup);
  sb.clusters_per_group = Le32(raw, kClustersPerGroup);
  sb.inodes_per_group = Le32(raw, kInodesPerGroup);
  sb.mtime = ReadTime(raw, kMtime, kMtimeHi);
  sb.wtime = ReadTime(raw, kWtime, kWtimeHi);
  sb.mnt_count = Le16(raw, kMntCount);
  sb.max_mnt_count = static_cast<int16_t>(Le16(raw, kMaxMntCount));
  sb.magic = Le16(raw, kMagic);
  sb.state = Le16(raw, kState);
  sb.errors = Le16(raw, kErrors);
  sb.minor_rev_level = Le16(raw, kMinorRevLevel);
  sb.lastcheck = ReadTime(raw, kLastcheck, kLastcheckHi);
  sb.checkinterval = Le32(raw, kCheckinterval);
  sb.creator_os = Le32(raw, kCreatorOs);
  sb.rev_level = Le32(raw, kRevLevel);
  sb.def_resuid = Le16(raw, kDefResuid);
  sb.def_resgid = Le16(raw, kDefResgid);
  sb.first_ino = Le32(raw, kFirstIno);
  sb.raw_inode_size = Le16(raw, kInodeSize);
  sb.block_group_nr = Le16(raw, kBlockGroupNr);
  sb.feature_compat = Le32(raw, kFeatureCompat);
  sb.feature_incompat = Le32(raw, kFeatureIncompat);
  sb.feature_ro_compat = Le32(raw, kFeatureRoCompat);
  std::memcpy(sb.uuid, raw.data() + kUuid, sizeof(sb.uuid));
  sb.volume_name = ReadString(raw, kVolumeName, kVolumeNameSize);
  sb.last_mounted = ReadString(raw, kLastMounted, kLastMountedSize);
  sb.algorithm_usage_bitmap = Le32(raw, kAlgorithmUsageBitmap);
  sb.prealloc_blocks = Le8(raw, kPreallocBlocks);
  sb.prealloc_dir_blocks = Le8(raw, kPreallocDirBlocks);
  sb.reserved_gdt_blocks = Le16(raw, kReservedGdtBlocks);
  std::memcpy(sb.journal_uuid, raw.data() + kJournalUuid,
              sizeof(sb.journal_uuid));
  sb.journal_inum = Le32(raw, kJournalInum);
  sb.journal_dev = Le32(raw, kJournalDev);
  sb.last_orphan = Le32(raw, kLastOrphan);
  for (int i = 0; i < 4; ++i) sb.hash_seed[i] = Le32(raw, kHashSeed + 4 * i);
  sb.def_hash_version = Le8(raw, kDefHashVersion);
  sb.jnl_backup_type = Le8(raw, kJnlBackupType);
  sb.desc_size = Le16(raw, kDescSize);
  sb.default_mount_opts = Le32(raw, kDefaultMountOpts);
  sb.first_meta_bg = Le32(raw, kFirstMetaBg);
  sb.mkfs_time = ReadTime(raw, kMkfsTime, kMkfsTimeHi);
  for (size_t i = 0; i < kJournalBackupWords; ++i) {
    sb.jnl_blocks[i] = Le32(raw, kJnlBlocks + 4 * i);
  }
  sb.min_extra_isize = Le16(raw, kMinExtraIsize);
  sb.want_extra_isize = Le16(raw, kWantExtraIsize);
  sb.flags = Le32(raw, kFlags);
  sb.raid_stride = Le16(raw, kRaidStride);
  sb.mmp_update_interval = Le16(raw, kMmpUpdateInterval);
  sb.mmp_block = Le64(raw, kMmpBlock);
  sb.raid_stripe_width = Le32(raw, kRaidStripeWidth);
  sb.log_groups_per_flex = Le8(raw, kLogGroupsPerFlex);
  sb.checksum_type = Le8(raw, kChecksumType);
  sb.encryption_level = Le8(raw, kEncryptionLevel);
  sb.reserved_pad = Le8(raw, kReservedPad);
  sb.kbytes_written = Le64(raw, kKbytesWritten);
  sb.snapshot_inum = Le32(raw, kSnapshotInum);
  sb.snapshot_id = Le32(raw, kSnapshotId);
  sb.snapshot_r_blocks_count = Le64(raw, kSnapshotRBlocksCount);
  sb.snapshot_list = Le32(raw, kSnapshotList);
  sb.error_count = Le32(raw, kErrorCount);
  sb.first_error_time = ReadTime(raw, kFirstErrorTime, kFirstErrorTimeHi);
  sb.first_error_ino = Le32(raw, kFirstErrorIno);
  sb.first_error_block = Le64(raw, kFirstErrorBlock);
  sb.first_error_func = ReadString(raw, kFirstErrorFunc, kErrorFuncSize);
  sb.first_error_line = Le32(raw, kFirstErrorLine);
  sb.last_error_time = ReadTime(raw, kLastErrorTime, kLastErrorTimeHi);
  sb.last_error_ino = Le32(raw, kLastErrorIno);
  sb.last_error_line = Le32(raw, kLastErrorLine);
  sb.last_error_block = Le64(raw, kLastErrorBlock);
  sb.last_error_func = ReadString(raw, kLastErrorFunc, kErrorFuncSize);
  sb.mount_opts = ReadString(raw, kMountOpts, kMountOptsSize);
  sb.usr_quota_inum = Le32(raw, kUsrQuotaInum);
  sb.grp_quota_inum = Le32(raw, kGrpQuotaInum);
  sb.overhead_clusters = Le32(raw, kOverheadClusters);
  sb.backup_bgs[0] = Le32(raw, kBackupBgs);
  sb.backup_bgs[1] = Le32(raw, kBackupBgs + 4);
  std::memcpy(sb.encrypt_algos, raw.data() + kEncryptAlgos,
              sizeof(sb.encrypt_algos));
  std::memcpy(sb.encrypt_pw_salt, raw.data() + kEncryptPwSalt,
              sizeof(sb.encrypt_pw_salt));
  sb.lpf_ino = Le32(raw, kLpfIno);
  sb.prj_quota_inum = Le32(raw, kPrjQuotaInum);
  sb.raw_checksum_seed = Le32(raw, kChecksumSeed);
  sb.first_error_errcode = Le8(raw, kFirstErrorErrcode);
  sb.last_error_errcode = Le8(raw, kLastErrorErrcode);
  sb.encoding = Le16(raw, kEncoding);
  sb.encoding_flags = Le16(raw, kEncodingFlags);
  sb.orphan_file_inum = Le32(raw, kOrphanFileInum);
  sb.checksum = Le32(raw, kSuperblockChecksumOffset);

  if (sb.magic != kSuperblockMagic) {
    return ErrnoError(EINVAL, "not an ext2/ext3/ext4 filesystem (bad magic)");
  }
  if (sb.metadata_csum()) {
    if (sb.checksum_type != kChecksumTypeCrc32c) {
      return Bad(absl::StrCat("unknown checksum type ", sb.checksum_type,
                              " (only crc32c, 1, exists)"));
    }
    if (SuperblockChecksum(raw) != sb.checksum) {
      E4_RETURN_IF_ERROR(ChecksumMismatch("superblock"));
    }
  }
  E4_RETURN_IF_ERROR(ValidateGeometry(sb));
  return sb;
}

void SerializeSuperblock(const Superblock& sb, MutableBytes raw) {
  if (raw.size() < kSuperblockSize) return;
  Put32(raw, kInodesCount, sb.inodes_count);
  Put32(raw, kBlocksCountLo, static_cast<uint32_t>(sb.blocks_count));
  Put32(raw, kBlocksCountHi, static_cast<uint32_t>(sb.blocks_count >> 32));
  Put32(raw, kRBlocksCountLo, static_cast<uint32_t>(sb.r_blocks_count));
  Put32(raw, kRBlocksCountHi, static_cast<uint32_t>(sb.r_blocks_count >> 32));
  Put32(raw, kFreeBlocksCountLo, static_cast<uint32_t>(sb.free_blocks_count));
  Put32(raw, kFreeBlocksCountHi,
        static_cast<uint32_t>(sb.free_blocks_count >> 32));
  Put32(raw, kFreeInodesCount, sb.free_inodes_count);
  Put32(raw, kFirstDataBlock, sb.first_data_block);
  Put32(raw, kLogBlockSize, sb.log_block_size);
  Put32(raw, kLogClusterSize, sb.log_cluster_size);
  Put32(raw, kBlocksPerGroup, sb.blocks_per_group);
  Put32(raw, kClustersPerGroup, sb.clusters_per_group);
  Put32(raw, kInodesPerGroup, sb.inodes_per_group);
  WriteTime(raw, kMtime, kMtimeHi, sb.mtime);
  WriteTime(raw, kWtime, kWtimeHi, sb.wtime);
  Put16(raw, kMntCount, sb.mnt_count);
  Put16(raw, kMaxMntCount, static_cast<uint16_t>(sb.max_mnt_count));
  Put16(raw, kMagic, sb.magic);
  Put16(raw, kState, sb.state);
  Put16(raw, kErrors, sb.errors);
  Put16(raw, kMinorRevLevel, sb.minor_rev_level);
  WriteTime(raw, kLastcheck, kLastcheckHi, sb.lastcheck);
  Put32(raw, kCheckinterval, sb.checkinterval);
  Put32(raw, kCreatorOs, sb.creator_os);
  Put32(raw, kRevLevel, sb.rev_level);
  Put16(raw, kDefResuid, sb.def_resuid);
  Put16(raw, kDefResgid, sb.def_resgid);
  Put32(raw, kFirstIno, sb.first_ino);
  Put16(raw, kInodeSize, sb.raw_inode_size);
  Put16(raw, kBlockGroupNr, sb.block_group_nr);
  Put32(raw, kFeatureCompat, sb.feature_compat);
  Put32(raw, kFeatureIncompat, sb.feature_incompat);
  Put32(raw, kFeatureRoCompat, sb.feature_ro_compat);
  std::memcpy(raw.data() + kUuid, sb.uuid, sizeof(sb.uuid));
  WriteString(raw, kVolumeName, kVolumeNameSize, sb.volume_name);
  WriteString(raw, kLastMounted, kLastMountedSize, sb.last_mounted);
  Put32(raw, kAlgorithmUsageBitmap, sb.algorithm_usage_bitmap);
  raw[kPreallocBlocks] = sb.prealloc_blocks;
  raw[kPreallocDirBlocks] = sb.prealloc_dir_blocks;
  Put16(raw, kReservedGdtBlocks, sb.reserved_gdt_blocks);
  std::memcpy(raw.data() + kJournalUuid, sb.journal_uuid,
              sizeof(sb.journal_uuid));
  Put32(raw, kJournalInum, sb.journal_inum);
  Put32(raw, kJournalDev, sb.journal_dev);
  Put32(raw, kLastOrphan, sb.last_orphan);
  for (int i = 0; i < 4; ++i) Put32(raw, kHashSeed + 4 * i, sb.hash_seed[i]);
  raw[kDefHashVersion] = sb.def_hash_version;
  raw[kJnlBackupType] = sb.jnl_backup_type;
  Put16(raw, kDescSize, sb.desc_size);
  Put32(raw, kDefaultMountOpts, sb.default_mount_opts);
  Put32(raw, kFirstMetaBg, sb.first_meta_bg);
  WriteTime(raw, kMkfsTime, kMkfsTimeHi, sb.mkfs_time);
  for (size_t i = 0; i < kJournalBackupWords; ++i) {
    Put32(raw, kJnlBlocks + 4 * i, sb.jnl_blocks[i]);
  }
  Put16(raw, kMinExtraIsize, sb.min_extra_isize);
  Put16(raw, kWantExtraIsize, sb.want_extra_isize);
  Put32(raw, kFlags, sb.flags);
  Put16(raw, kRaidStride, sb.raid_stride);
  Put16(raw, kMmpUpdateInterval, sb.mmp_update_interval);
  Put64(raw, kMmpBlock, sb.mmp_block);
  Put32(raw, kRaidStripeWidth, sb.raid_stripe_width);
  raw[kLogGroupsPerFlex] = sb.log_groups_per_flex;
  raw[kChecksumType] = sb.checksum_type;
  raw[kEncryptionLevel] = sb.encryption_level;
  raw[kReservedPad] = sb.reserved_pad;
  Put64(raw, kKbytesWritten, sb.kbytes_written);
  Put32(raw, kSnapshotInum, sb.snapshot_inum);
  Put32(raw, kSnapshotId, sb.snapshot_id);
  Put64(raw, kSnapshotRBlocksCount, sb.snapshot_r_blocks_count);
  Put32(raw, kSnapshotList, sb.snapshot_list);
  Put32(raw, kErrorCount, sb.error_count);
  WriteTime(raw, kFirstErrorTime, kFirstErrorTimeHi, sb.first_error_time);
  Put32(raw, kFirstErrorIno, sb.first_error_ino);
  Put64(raw, kFirstErrorBlock, sb.first_error_block);
  WriteString(raw, kFirstErrorFunc, kErrorFuncSize, sb.first_error_func);
  Put32(raw, kFirstErrorLine, sb.first_error_line);
  WriteTime(raw, kLastErrorTime, kLastErrorTimeHi, sb.last_error_time);
  Put32(raw, kLastErrorIno, sb.last_error_ino);
  Put32(raw, kLastErrorLine, sb.last_error_line);
  Put64(raw, kLastErrorBlock, sb.last_error_block);
  WriteString(raw, kLastErrorFunc, kErrorFuncSize, sb.last_error_func);
  WriteString(raw, kMountOpts, kMountOptsSize, sb.mount_opts);
  Put32(raw, kUsrQuotaInum, sb.usr_quota_inum);
  Put32(raw, kGrpQuotaInum, sb.grp_quota_inum);
  Put32(raw, kOverheadClusters, sb.overhead_clusters);
  Put32(raw, kBackupBgs, sb.backup_bgs[0]);
  Put32(raw, kBackupBgs + 4, sb.backup_bgs[1]);
  std::memcpy(raw.data() + kEncryptAlgos, sb.encrypt_algos,
              sizeof(sb.encrypt_algos));
  std::memcpy(raw.data() + kEncryptPwSalt, sb.encrypt_pw_salt,
              sizeof(sb.encrypt_pw_salt));
  Put32(raw, kLpfIno, sb.lpf_ino);
  Put32(raw, kPrjQuotaInum, sb.prj_quota_inum);
  Put32(raw, kChecksumSeed, sb.raw_checksum_seed);
  raw[kFirstErrorErrcode] = sb.first_error_errcode;
  raw[kLastErrorErrcode] = sb.last_error_errcode;
  Put16(raw, kEncoding, sb.encoding);
  Put16(raw, kEncodingFlags, sb.encoding_flags);
  Put32(raw, kOrphanFileInum, sb.orphan_file_inum);
  Put32(raw, kSuperblockChecksumOffset,
        sb.metadata_csum() ? SuperblockChecksum(raw) : sb.checksum);
}

bool GroupHasSuperblock(const Superblock& sb, uint32_t group) {
  if (group == 0) return true;
  if (sb.has_compat(kCompatSparseSuper2)) {
    return group == sb.backup_bgs[0] || group == sb.backup_bgs[1];
  }
  if (group == 1 || !sb.has_ro_compat(kRoCompatSparseSuper)) return true;
  if ((group & 1) == 0) return false;
  for (uint32_t base : {3u, 5u, 7u}) {
    uint64_t power = base;
    while (power < group) power *= base;
    if (power == group) return true;
  }
  return false;
}

absl::StatusOr<bool> CheckFeatures(const Superblock& sb) {
  uint32_t unsupported = sb.feature_incompat & ~kSupportedIncompat;
  if (unsupported != 0) {
    if (unsupported & kIncompatJournalDev) {
      return ErrnoError(EOPNOTSUPP,
                        "unsupported filesystem feature: journal_dev (this is "
                        "an external journal device, not a filesystem)");
    }
    for (const FeatureName& f : kIncompatNames) {
      if (unsupported & f.bit) {
        return ErrnoError(
            EOPNOTSUPP,
            absl::StrCat("unsupported filesystem feature: ", f.name));
      }
    }
    return ErrnoError(EOPNOTSUPP, absl::StrCat("unknown incompat feature 0x",
                                               absl::Hex(unsupported)));
  }
  if (sb.feature_ro_compat & ~kReadWriteRoCompat) return true;
  if (sb.bigalloc() && !sb.has_incompat(kIncompatExtents)) return true;
  return false;
}

std::string FeatureNames(const Superblock& sb) {
  std::string out;
  AppendNames(kCompatNames, 'C', sb.feature_compat, out);
  AppendNames(kIncompatNames, 'I', sb.feature_incompat, out);
  AppendNames(kRoCompatNames, 'R', sb.feature_ro_compat, out);
  return out;
}

}  // namespace ext4::format
