// On-disk inodes, parsed against a valid superblock: one of a set of
// synthetic filesystems picked by the first byte (128 to 1024-byte inodes,
// metadata_csum, 64bit, huge_file, large_dir, a Hurd creator), or, with its
// top bit set, 1024 superblock bytes from the input that must parse. Then
// ParseInode, the in-inode xattr area and its parser, the extent root in
// i_block, and a serialize / parse round trip.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "ext4/format/checksum.h"
#include "ext4/format/endian.h"
#include "ext4/format/extent.h"
#include "ext4/format/inode.h"
#include "ext4/format/superblock.h"
#include "ext4/format/xattr.h"
#include "fuzz/fuzz_support.h"

namespace {

using ext4::format::Bytes;
using ext4::format::Inode;
using ext4::format::Superblock;
using ext4::fuzz::FuzzInput;
namespace format = ext4::format;

// Byte offsets of the two checksum halves.
constexpr size_t kChecksumLo = 0x7C;
constexpr size_t kChecksumHi = 0x82;

Superblock SyntheticSuperblock(uint8_t selector) {
  ext4::fuzz::SuperblockSpec spec;
  spec.inode_size = static_cast<uint16_t>(128u << (selector & 3));
  spec.metadata_csum = (selector & 0x04) != 0;
  spec.is_64bit = (selector & 0x08) != 0;
  spec.huge_file = (selector & 0x10) != 0;
  spec.large_dir = (selector & 0x20) != 0;
  if (selector & 0x40) spec.creator_os = format::kOsHurd;
  // Vary the block size with the features so that huge_file sees several.
  spec.log_block_size = (selector >> 2) % 3;
  return ext4::fuzz::MakeSuperblock(spec);
}

bool SameTime(const format::InodeTime& a, const format::InodeTime& b) {
  return a.sec == b.sec && a.nsec == b.nsec;
}

void CheckSameInode(const Inode& a, const Inode& b) {
  FUZZ_CHECK(a.mode == b.mode);
  FUZZ_CHECK(a.uid == b.uid);
  FUZZ_CHECK(a.gid == b.gid);
  FUZZ_CHECK(a.size == b.size);
  FUZZ_CHECK(SameTime(a.atime, b.atime));
  FUZZ_CHECK(SameTime(a.ctime, b.ctime));
  FUZZ_CHECK(SameTime(a.mtime, b.mtime));
  FUZZ_CHECK(SameTime(a.crtime, b.crtime));
  FUZZ_CHECK(a.dtime == b.dtime);
  FUZZ_CHECK(a.links_count == b.links_count);
  FUZZ_CHECK(a.blocks == b.blocks);
  FUZZ_CHECK(a.flags == b.flags);
  FUZZ_CHECK(a.version == b.version);
  FUZZ_CHECK(a.block == b.block);
  FUZZ_CHECK(a.generation == b.generation);
  FUZZ_CHECK(a.file_acl == b.file_acl);
  FUZZ_CHECK(a.obso_faddr == b.obso_faddr);
  FUZZ_CHECK(a.extra_isize == b.extra_isize);
  FUZZ_CHECK(a.projid == b.projid);
}

// Whether the checksum fields are rewritten (metadata_csum on a Linux
// filesystem), and which bytes they occupy.
bool IsChecksumByte(const Superblock& sb, const Inode& inode, size_t i) {
  if (!sb.metadata_csum() || sb.creator_os != format::kOsLinux) return false;
  if (i == kChecksumLo || i == kChecksumLo + 1) return true;
  const bool has_hi =
      format::kGoodOldInodeSize + size_t{inode.extra_isize} >= kChecksumHi + 2;
  return has_hi && (i == kChecksumHi || i == kChecksumHi + 1);
}

void CheckXattrs(Bytes raw, const Inode& inode) {
  Bytes area = format::InodeXattrArea(raw, inode);
  if (!area.empty()) {
    // The area is the tail of the inode, after the extra fields.
    FUZZ_CHECK(area.data() + area.size() == raw.data() + raw.size());
    FUZZ_CHECK(area.size() + format::kGoodOldInodeSize + inode.extra_isize ==
               raw.size());
  }
  auto xattrs = format::ParseInodeXattrs(area);
  if (!xattrs.ok()) return;
  for (const format::XattrEntry& entry : *xattrs) {
    if (entry.value_inum == 0)
      FUZZ_CHECK(entry.value.size() == entry.value_size);
    FUZZ_CHECK(entry.value.size() <= area.size());
    (void)entry.full_name();
  }
}

void CheckRoundTrip(Bytes raw, uint32_t ino, const Superblock& sb,
                    const Inode& inode) {
  std::vector<uint8_t> out(raw.begin(), raw.end());
  format::SerializeInode(inode, ino, sb, out);
  // Nothing changes but the checksum, which is recomputed.
  for (size_t i = 0; i < raw.size(); ++i) {
    if (!IsChecksumByte(sb, inode, i)) FUZZ_CHECK(out[i] == raw[i]);
  }
  const uint64_t mismatches = format::ChecksumMismatchesIgnored();
  auto again = format::ParseInode(out, ino, sb);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(format::ChecksumMismatchesIgnored() == mismatches);
  CheckSameInode(inode, *again);
  if (sb.metadata_csum() && sb.creator_os == format::kOsLinux) {
    uint32_t expected = format::InodeChecksum(out, ino, sb);
    if (format::kGoodOldInodeSize + size_t{inode.extra_isize} <
        kChecksumHi + 2) {
      expected &= 0xFFFF;
    }
    FUZZ_CHECK(again->checksum == expected);
  } else {
    FUZZ_CHECK(again->checksum == inode.checksum);
  }

  // Writing the parsed fields again is a fixed point.
  std::vector<uint8_t> twice = out;
  format::SerializeInode(*again, ino, sb, twice);
  FUZZ_CHECK(twice == out);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const uint8_t selector = in.U8();
  Superblock sb;
  if (selector & 0x80) {
    auto parsed = format::ParseSuperblock(in.Take(format::kSuperblockSize));
    if (!parsed.ok()) return 0;
    sb = *parsed;
  } else {
    sb = SyntheticSuperblock(selector);
  }
  const uint32_t ino = in.U32();
  const size_t inode_size = sb.inode_size();
  Bytes rest = in.Rest();
  // A wrong-sized buffer must be refused, not read past.
  if (rest.size() != inode_size) (void)format::ParseInode(rest, ino, sb);
  std::vector<uint8_t> raw(rest.begin(),
                           rest.begin() + std::min(rest.size(), inode_size));
  raw.resize(inode_size, 0);

  auto inode = format::ParseInode(raw, ino, sb);
  if (!inode.ok()) return 0;
  FUZZ_CHECK(format::kGoodOldInodeSize + size_t{inode->extra_isize} <=
             inode_size);
  FUZZ_CHECK(inode->size <= static_cast<uint64_t>(INT64_MAX));
  CheckXattrs(raw, *inode);
  if (inode->uses_extents()) {
    (void)format::ParseExtentNode(inode->block, -1);
  }
  CheckRoundTrip(raw, ino, sb, *inode);
  return 0;
}
