#include "ext4/format/inode.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "ext4/format/checksum.h"

namespace ext4::format {
namespace {

// Field offsets in struct ext4_inode (Linux osd1/osd2 layout).
constexpr size_t kMode = 0x00;
constexpr size_t kUid = 0x02;
constexpr size_t kSizeLo = 0x04;
constexpr size_t kAtime = 0x08;
constexpr size_t kCtime = 0x0C;
constexpr size_t kMtime = 0x10;
constexpr size_t kDtime = 0x14;
constexpr size_t kGid = 0x18;
constexpr size_t kLinksCount = 0x1A;
constexpr size_t kBlocksLo = 0x1C;
constexpr size_t kFlags = 0x20;
constexpr size_t kVersionLo = 0x24;
constexpr size_t kBlock = 0x28;
constexpr size_t kGeneration = 0x64;
constexpr size_t kFileAclLo = 0x68;
constexpr size_t kSizeHigh = 0x6C;
constexpr size_t kObsoFaddr = 0x70;
constexpr size_t kBlocksHigh = 0x74;
constexpr size_t kFileAclHigh = 0x76;
constexpr size_t kUidHigh = 0x78;
constexpr size_t kGidHigh = 0x7A;
constexpr size_t kChecksumLo = 0x7C;
// The extra fields, present when 128 + i_extra_isize reaches past them.
constexpr size_t kExtraIsize = 0x80;
constexpr size_t kChecksumHi = 0x82;
constexpr size_t kCtimeExtra = 0x84;
constexpr size_t kMtimeExtra = 0x88;
constexpr size_t kAtimeExtra = 0x8C;
constexpr size_t kCrtime = 0x90;
constexpr size_t kCrtimeExtra = 0x94;
constexpr size_t kVersionHi = 0x98;
constexpr size_t kProjid = 0x9C;

static_assert(kBlock + kInodeBlockSize == kGeneration);
static_assert(kProjid + 4 == kGoodOldInodeSize + kInodeExtraIsizeCurrent);

constexpr uint32_t kEpochMask = 0x3;

// Whether a field of `width` bytes at `offset` lies inside the base inode
// plus its extra_isize bytes (the kernel's EXT4_FITS_IN_INODE).
bool Fits(uint32_t extra_isize, size_t offset, size_t width) {
  return offset + width <= kGoodOldInodeSize + extra_isize;
}

// A seconds field and, when the extra fields reach it, its extra word: the
// seconds are signed 32-bit, the extra word adds two epoch bits above them
// and holds the nanoseconds in its upper 30 bits.
InodeTime ReadTime(Bytes raw, uint32_t extra_isize, size_t seconds_offset,
                   size_t extra_offset) {
  InodeTime time;
  time.sec = static_cast<int32_t>(Le32(raw, seconds_offset));
  if (Fits(extra_isize, extra_offset, 4)) {
    uint32_t extra = Le32(raw, extra_offset);
    time.sec += static_cast<int64_t>(extra & kEpochMask) << 32;
    time.nsec = extra >> 2;
  }
  return time;
}

uint32_t EncodeSeconds(const InodeTime& time) {
  return static_cast<uint32_t>(static_cast<uint64_t>(time.sec));
}

uint32_t EncodeExtra(const InodeTime& time) {
  int64_t low = static_cast<int32_t>(static_cast<uint32_t>(time.sec));
  uint32_t epoch =
      static_cast<uint32_t>(static_cast<uint64_t>(time.sec - low) >> 32) &
      kEpochMask;
  return epoch | (time.nsec << 2);
}

// Where i_size_high is the size's high word: regular files, and directories
// too with large_dir (for others it was once i_dir_acl).
bool SizeHighUsed(uint16_t mode, const Superblock& sb) {
  return sb.has_incompat(kIncompatLargeDir) ||
         (mode & kModeTypeMask) == kModeRegular;
}

// Checksums only exist on Linux-created filesystems (Hurd reuses the
// checksum bytes), and only with metadata_csum.
bool HasChecksum(const Superblock& sb) {
  return sb.metadata_csum() && sb.creator_os == kOsLinux;
}

uint16_t StoredExtraIsize(Bytes raw) {
  return raw.size() > kGoodOldInodeSize ? Le16(raw, kExtraIsize) : 0;
}

}  // namespace

uint32_t InodeChecksum(Bytes raw, uint32_t ino, const Superblock& sb) {
  static constexpr uint8_t kZero[2] = {0, 0};
  if (raw.size() < kGoodOldInodeSize) return 0;
  uint32_t crc =
      InodeChecksumSeed(sb.checksum_seed(), ino, Le32(raw, kGeneration));
  crc = Crc32c(crc, raw.first(kChecksumLo));
  crc = Crc32c(crc, kZero);
  crc = Crc32c(
      crc, raw.subspan(kChecksumLo + 2, kGoodOldInodeSize - (kChecksumLo + 2)));
  if (raw.size() > kGoodOldInodeSize) {
    size_t offset = std::min(kChecksumHi, raw.size());
    crc =
        Crc32c(crc, raw.subspan(kGoodOldInodeSize, offset - kGoodOldInodeSize));
    if (raw.size() >= kChecksumHi + 2 &&
        Fits(StoredExtraIsize(raw), kChecksumHi, 2)) {
      crc = Crc32c(crc, kZero);
      offset += 2;
    }
    crc = Crc32c(crc, raw.subspan(offset));
  }
  return crc;
}

absl::StatusOr<Inode> ParseInode(Bytes raw, uint32_t ino,
                                 const Superblock& sb) {
  const uint32_t inode_size = sb.inode_size();
  if (inode_size < kGoodOldInodeSize || raw.size() != inode_size) {
    return Corrupt(absl::StrCat("inode ", ino, ": ", raw.size(),
                                " bytes given for a ", inode_size,
                                "-byte inode"));
  }
  Inode inode;
  inode.extra_isize = StoredExtraIsize(raw);
  if (uint32_t{kGoodOldInodeSize} + inode.extra_isize > inode_size ||
      (inode.extra_isize & 3) != 0) {
    return Corrupt(absl::StrCat("inode ", ino, ": bad extra_isize ",
                                inode.extra_isize, " (inode size ", inode_size,
                                ")"));
  }
  const uint32_t extra = inode.extra_isize;

  inode.checksum = Le16(raw, kChecksumLo);
  const bool checksum_hi = Fits(extra, kChecksumHi, 2);
  if (checksum_hi) inode.checksum |= uint32_t{Le16(raw, kChecksumHi)} << 16;
  if (HasChecksum(sb)) {
    uint32_t expected = InodeChecksum(raw, ino, sb);
    if (!checksum_hi) expected &= 0xFFFF;
    if (expected != inode.checksum &&
        std::any_of(raw.begin(), raw.end(), [](uint8_t b) { return b; })) {
      E4_RETURN_IF_ERROR(ChecksumMismatch(absl::StrCat("inode ", ino)));
    }
  }

  inode.mode = Le16(raw, kMode);
  inode.uid = Le16(raw, kUid) | (uint32_t{Le16(raw, kUidHigh)} << 16);
  inode.gid = Le16(raw, kGid) | (uint32_t{Le16(raw, kGidHigh)} << 16);
  inode.size = Le32(raw, kSizeLo);
  if (SizeHighUsed(inode.mode, sb)) {
    inode.size |= uint64_t{Le32(raw, kSizeHigh)} << 32;
  }
  if (inode.size > static_cast<uint64_t>(INT64_MAX)) {
    return Corrupt(absl::StrCat("inode ", ino, ": bad i_size ", inode.size));
  }
  inode.atime = ReadTime(raw, extra, kAtime, kAtimeExtra);
  inode.ctime = ReadTime(raw, extra, kCtime, kCtimeExtra);
  inode.mtime = ReadTime(raw, extra, kMtime, kMtimeExtra);
  if (Fits(extra, kCrtime, 4)) {
    inode.crtime = ReadTime(raw, extra, kCrtime, kCrtimeExtra);
  }
  inode.dtime = Le32(raw, kDtime);
  inode.links_count = Le16(raw, kLinksCount);
  inode.flags = Le32(raw, kFlags);
  inode.blocks = Le32(raw, kBlocksLo);
  if (sb.has_ro_compat(kRoCompatHugeFile)) {
    inode.blocks |= uint64_t{Le16(raw, kBlocksHigh)} << 32;
    if (inode.flags & kInodeFlagHugeFile) {
      inode.blocks <<= sb.block_size_bits() - 9;
    }
  }
  inode.version = Le32(raw, kVersionLo);
  if (Fits(extra, kVersionHi, 4)) {
    inode.version |= uint64_t{Le32(raw, kVersionHi)} << 32;
  }
  std::memcpy(inode.block.data(), raw.data() + kBlock, kInodeBlockSize);
  inode.generation = Le32(raw, kGeneration);
  inode.file_acl = Le32(raw, kFileAclLo);
  if (sb.is_64bit()) {
    inode.file_acl |= uint64_t{Le16(raw, kFileAclHigh)} << 32;
  }
  inode.obso_faddr = Le32(raw, kObsoFaddr);
  if (Fits(extra, kProjid, 4)) inode.projid = Le32(raw, kProjid);
  return inode;
}

Bytes InodeXattrArea(Bytes raw, const Inode& inode) {
  if (raw.size() <= kGoodOldInodeSize) return {};
  size_t start = kGoodOldInodeSize + size_t{inode.extra_isize};
  if ((inode.extra_isize & 3) != 0 || start >= raw.size()) return {};
  return raw.subspan(start);
}

void SerializeInode(const Inode& inode, uint32_t ino, const Superblock& sb,
                    MutableBytes raw) {
  const uint32_t inode_size = sb.inode_size();
  if (inode_size < kGoodOldInodeSize || raw.size() != inode_size) return;
  const uint32_t extra =
      raw.size() > kGoodOldInodeSize &&
              kGoodOldInodeSize + size_t{inode.extra_isize} <= raw.size()
          ? inode.extra_isize
          : 0;

  Put16(raw, kMode, inode.mode);
  Put16(raw, kUid, static_cast<uint16_t>(inode.uid));
  Put16(raw, kUidHigh, static_cast<uint16_t>(inode.uid >> 16));
  Put16(raw, kGid, static_cast<uint16_t>(inode.gid));
  Put16(raw, kGidHigh, static_cast<uint16_t>(inode.gid >> 16));
  Put32(raw, kSizeLo, static_cast<uint32_t>(inode.size));
  if (SizeHighUsed(inode.mode, sb)) {
    Put32(raw, kSizeHigh, static_cast<uint32_t>(inode.size >> 32));
  }
  Put32(raw, kAtime, EncodeSeconds(inode.atime));
  Put32(raw, kCtime, EncodeSeconds(inode.ctime));
  Put32(raw, kMtime, EncodeSeconds(inode.mtime));
  Put32(raw, kDtime, inode.dtime);
  Put16(raw, kLinksCount, inode.links_count);
  Put32(raw, kFlags, inode.flags);
  uint64_t blocks = inode.blocks;
  if (sb.has_ro_compat(kRoCompatHugeFile)) {
    if (inode.flags & kInodeFlagHugeFile) {
      blocks >>= sb.block_size_bits() - 9;
    }
    Put16(raw, kBlocksHigh, static_cast<uint16_t>(blocks >> 32));
  }
  Put32(raw, kBlocksLo, static_cast<uint32_t>(blocks));
  Put32(raw, kVersionLo, static_cast<uint32_t>(inode.version));
  std::memcpy(raw.data() + kBlock, inode.block.data(), kInodeBlockSize);
  Put32(raw, kGeneration, inode.generation);
  Put32(raw, kFileAclLo, static_cast<uint32_t>(inode.file_acl));
  if (sb.is_64bit()) {
    Put16(raw, kFileAclHigh, static_cast<uint16_t>(inode.file_acl >> 32));
  }
  Put32(raw, kObsoFaddr, inode.obso_faddr);

  if (raw.size() > kGoodOldInodeSize) {
    Put16(raw, kExtraIsize, static_cast<uint16_t>(extra));
    if (Fits(extra, kCtimeExtra, 4)) {
      Put32(raw, kCtimeExtra, EncodeExtra(inode.ctime));
    }
    if (Fits(extra, kMtimeExtra, 4)) {
      Put32(raw, kMtimeExtra, EncodeExtra(inode.mtime));
    }
    if (Fits(extra, kAtimeExtra, 4)) {
      Put32(raw, kAtimeExtra, EncodeExtra(inode.atime));
    }
    if (Fits(extra, kCrtime, 4)) {
      Put32(raw, kCrtime, EncodeSeconds(inode.crtime));
    }
    if (Fits(extra, kCrtimeExtra, 4)) {
      Put32(raw, kCrtimeExtra, EncodeExtra(inode.crtime));
    }
    if (Fits(extra, kVersionHi, 4)) {
      Put32(raw, kVersionHi, static_cast<uint32_t>(inode.version >> 32));
    }
    if (Fits(extra, kProjid, 4)) Put32(raw, kProjid, inode.projid);
  }

  const bool checksum_hi =
      raw.size() > kGoodOldInodeSize && Fits(extra, kChecksumHi, 2);
  uint32_t checksum = inode.checksum;
  if (HasChecksum(sb)) checksum = InodeChecksum(raw, ino, sb);
  Put16(raw, kChecksumLo, static_cast<uint16_t>(checksum));
  if (checksum_hi)
    Put16(raw, kChecksumHi, static_cast<uint16_t>(checksum >> 16));
}

}  // namespace ext4::format
