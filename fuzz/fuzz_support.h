// Helpers shared by the parser fuzz targets: a check that aborts when an
// invariant breaks (a round trip that does not come back, a documented
// guarantee that does not hold), a reader that takes bytes off the front of
// the input, and valid superblocks to parse other structures against.
#ifndef E4FS_FUZZ_FUZZ_SUPPORT_H_
#define E4FS_FUZZ_FUZZ_SUPPORT_H_

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "ext4/format/endian.h"
#include "ext4/format/superblock.h"

// Aborts with the failed condition. Only for real invariants: a parser that
// rejects an input is never a failure.
#define FUZZ_CHECK(cond)                                                   \
  do {                                                                     \
    if (!(cond)) {                                                         \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, \
                   __LINE__, #cond);                                       \
      std::abort();                                                        \
    }                                                                      \
  } while (false)

namespace ext4::fuzz {

// Takes values off the front of the input; reads past the end give zeros
// and empty spans, so a target never has to check the size first.
class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size)
      : data_(size == 0 ? nullptr : data), size_(size) {}

  size_t remaining() const { return size_ - pos_; }

  uint8_t U8() {
    if (pos_ >= size_) return 0;
    return data_[pos_++];
  }
  uint16_t U16() {
    uint16_t low = U8();
    return static_cast<uint16_t>(low | (uint16_t{U8()} << 8));
  }
  uint32_t U32() {
    uint32_t low = U16();
    return low | (uint32_t{U16()} << 16);
  }

  // Up to `n` bytes (fewer at the end of the input).
  format::Bytes Take(size_t n) {
    n = std::min(n, remaining());
    format::Bytes out(data_ + pos_, n);
    pos_ += n;
    return out;
  }
  format::Bytes Rest() { return Take(remaining()); }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// The features and geometry of a synthetic filesystem. The defaults make a
// plain 4 KiB-block ext4 without checksums.
struct SuperblockSpec {
  uint32_t log_block_size = 2;  // 1 KiB << this
  uint16_t inode_size = 256;
  uint32_t groups = 1;
  uint32_t inodes_per_group = 256;
  bool short_last_group = false;
  bool metadata_csum = false;
  bool csum_seed = false;  // metadata_csum_seed
  bool gdt_csum = false;
  bool is_64bit = false;
  uint16_t desc_size = 64;  // with is_64bit
  bool flex_bg = false;
  bool meta_bg = false;
  uint32_t first_meta_bg = 0;
  bool sparse_super = true;
  bool sparse_super2 = false;
  bool huge_file = false;
  bool large_dir = false;
  uint32_t creator_os = format::kOsLinux;
  uint8_t uuid_byte = 0x5A;  // the UUID is this byte plus its index
};

// A superblock as ParseSuperblock() returns it for the spec's bytes. Aborts
// if the spec does not describe a valid filesystem (a bug in the target).
inline format::Superblock MakeSuperblock(const SuperblockSpec& spec) {
  using namespace format;
  Superblock sb;
  sb.magic = kSuperblockMagic;
  sb.rev_level = kDynamicRevision;
  sb.log_block_size = spec.log_block_size;
  sb.log_cluster_size = spec.log_block_size;
  const uint32_t block_size = kMinBlockSize << spec.log_block_size;
  sb.first_data_block = block_size == 1024 ? 1 : 0;
  sb.blocks_per_group = block_size * 8;
  sb.clusters_per_group = sb.blocks_per_group;
  sb.blocks_count = sb.first_data_block +
                    uint64_t{spec.groups} * sb.blocks_per_group -
                    (spec.short_last_group ? sb.blocks_per_group / 2 : 0);
  sb.inodes_per_group = spec.inodes_per_group;
  sb.inodes_count = spec.groups * spec.inodes_per_group;
  sb.first_ino = kGoodOldFirstInode;
  sb.raw_inode_size = spec.inode_size;
  sb.creator_os = spec.creator_os;
  sb.errors = kErrorsContinue;
  sb.state = kStateValid;
  sb.feature_compat = kCompatExtAttr | kCompatDirIndex;
  sb.feature_incompat = kIncompatFiletype | kIncompatExtents;
  sb.feature_ro_compat = kRoCompatLargeFile | kRoCompatDirNlink;
  if (spec.sparse_super2) {
    sb.feature_compat |= kCompatSparseSuper2;
    sb.backup_bgs[0] = spec.groups > 1 ? 1 : 0;
    sb.backup_bgs[1] = spec.groups > 2 ? spec.groups - 1 : 0;
  } else if (spec.sparse_super) {
    sb.feature_ro_compat |= kRoCompatSparseSuper;
  }
  if (spec.metadata_csum) {
    sb.feature_ro_compat |= kRoCompatMetadataCsum;
    sb.checksum_type = kChecksumTypeCrc32c;
  }
  if (spec.csum_seed) {
    sb.feature_incompat |= kIncompatCsumSeed;
    sb.raw_checksum_seed = 0x1234ABCD;
  }
  if (spec.gdt_csum) sb.feature_ro_compat |= kRoCompatGdtCsum;
  if (spec.is_64bit) {
    sb.feature_incompat |= kIncompat64Bit;
    sb.desc_size = spec.desc_size;
  }
  if (spec.flex_bg) {
    sb.feature_incompat |= kIncompatFlexBg;
    sb.log_groups_per_flex = 4;
  }
  if (spec.meta_bg) {
    sb.feature_incompat |= kIncompatMetaBg;
    sb.first_meta_bg = spec.first_meta_bg;
  }
  if (spec.huge_file) sb.feature_ro_compat |= kRoCompatHugeFile;
  if (spec.large_dir) sb.feature_incompat |= kIncompatLargeDir;
  for (int i = 0; i < 16; ++i) {
    sb.uuid[i] = static_cast<uint8_t>(spec.uuid_byte + i);
  }
  sb.hash_seed[0] = 0x01234567;
  sb.hash_seed[1] = 0x89ABCDEF;
  sb.hash_seed[2] = 0xFEDCBA98;
  sb.hash_seed[3] = 0x76543210;
  sb.def_hash_version = kHashHalfMd4;
  sb.flags = kFlagsSignedHash;

  std::array<uint8_t, kSuperblockSize> raw{};
  SerializeSuperblock(sb, raw);
  auto parsed = ParseSuperblock(raw);
  if (!parsed.ok()) {
    std::fprintf(stderr, "fuzz target built a bad superblock: %s\n",
                 std::string(parsed.status().message()).c_str());
    std::abort();
  }
  return *parsed;
}

}  // namespace ext4::fuzz

#endif  // E4FS_FUZZ_FUZZ_SUPPORT_H_
