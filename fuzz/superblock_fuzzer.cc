// The superblock parser: 1024 bytes in, and when they parse, the feature
// policy, the feature names and the geometry helpers on the result, then a
// serialize / parse round trip that must give back the same fields and the
// same bytes.
#include <array>
#include <cstdint>
#include <cstring>
#include <string>

#include "ext4/format/endian.h"
#include "ext4/format/group_descriptor.h"
#include "ext4/format/superblock.h"
#include "fuzz/fuzz_support.h"

namespace {

using ext4::format::Bytes;
using ext4::format::Superblock;
namespace format = ext4::format;

using Raw = std::array<uint8_t, format::kSuperblockSize>;

// The NUL-padded character fields: the parser keeps what comes before the
// first NUL, and the serializer pads with zeros after it.
struct StringField {
  size_t offset;
  size_t size;
};
constexpr StringField kStringFields[] = {
    {0x78, 16},   // s_volume_name
    {0x88, 64},   // s_last_mounted
    {0x1A8, 32},  // s_first_error_func
    {0x1E0, 32},  // s_last_error_func
    {0x200, 64},  // s_mount_opts
};

// Serializing a parsed superblock over its own bytes changes nothing but
// what follows the first NUL of a string field (zeroed) and the checksum
// (recomputed with metadata_csum).
void CheckRewrite(Bytes raw, const Superblock& sb, const Raw& out) {
  std::array<bool, format::kSuperblockSize> in_string{};
  for (const StringField& field : kStringFields) {
    bool after_nul = false;
    for (size_t i = field.offset; i < field.offset + field.size; ++i) {
      in_string[i] = true;
      if (raw[i] == 0) after_nul = true;
      FUZZ_CHECK(out[i] == (after_nul ? 0 : raw[i]));
    }
  }
  for (size_t i = 0; i < format::kSuperblockChecksumOffset; ++i) {
    if (!in_string[i]) FUZZ_CHECK(out[i] == raw[i]);
  }
  const uint32_t stored = format::Le32(out, format::kSuperblockChecksumOffset);
  if (sb.metadata_csum()) {
    FUZZ_CHECK(stored == format::SuperblockChecksum(out));
  } else {
    FUZZ_CHECK(stored == format::Le32(raw, format::kSuperblockChecksumOffset));
  }
}

int PopCount(uint32_t value) { return __builtin_popcount(value); }

void CheckFeatureNames(const Superblock& sb) {
  const std::string names = format::FeatureNames(sb);
  const int bits = PopCount(sb.feature_compat) + PopCount(sb.feature_incompat) +
                   PopCount(sb.feature_ro_compat);
  if (bits == 0) {
    FUZZ_CHECK(names.empty());
    return;
  }
  int words = 1;
  for (char c : names) words += c == ' ';
  FUZZ_CHECK(words == bits);
  FUZZ_CHECK(names.front() != ' ' && names.back() != ' ');
}

// What ParseSuperblock() promises the rest of the engine.
void CheckGeometry(const Superblock& sb) {
  const uint32_t block_size = sb.block_size();
  FUZZ_CHECK(block_size >= format::kMinBlockSize &&
             block_size <= format::kMaxBlockSize);
  FUZZ_CHECK(sb.cluster_size() >= block_size && sb.cluster_ratio() >= 1);
  FUZZ_CHECK(sb.inode_size() >= format::kGoodOldInodeSize &&
             sb.inode_size() <= block_size);
  FUZZ_CHECK(sb.inodes_per_block() >= 1);
  FUZZ_CHECK(sb.descriptor_size() >= format::kMinDescriptorSize);
  FUZZ_CHECK(sb.descriptors_per_block() >= 1);
  FUZZ_CHECK(sb.blocks_per_group >= 1 && sb.group_clusters() >= 1);
  const uint32_t groups = sb.group_count();
  FUZZ_CHECK(groups >= 1);
  FUZZ_CHECK(uint64_t{groups} * sb.inodes_per_group == sb.inodes_count);
  FUZZ_CHECK(sb.inodes_per_group >= sb.inodes_per_block());
  FUZZ_CHECK(sb.inode_table_blocks() >= 1);
  FUZZ_CHECK(sb.descriptor_blocks() >= 1);
  FUZZ_CHECK(sb.first_inode() <= sb.inodes_count ||
             sb.rev_level == format::kGoodOldRevision);
  (void)sb.checksum_seed();
  FUZZ_CHECK(format::GroupHasSuperblock(sb, 0));

  const uint32_t probes[] = {0,
                             1,
                             2,
                             3,
                             5,
                             7,
                             9,
                             25,
                             groups / 2,
                             groups - 1,
                             sb.backup_bgs[0],
                             sb.backup_bgs[1]};
  for (uint32_t group : probes) {
    if (group >= groups) continue;
    (void)format::GroupHasSuperblock(sb, group);
    (void)format::GroupDescriptorBlock(sb, group);
    const uint32_t offset = format::GroupDescriptorOffsetInBlock(sb, group);
    FUZZ_CHECK(uint64_t{offset} + sb.descriptor_size() <= block_size);
    (void)sb.group_first_block(group);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Raw raw{};
  if (size > 0) std::memcpy(raw.data(), data, std::min(size, raw.size()));
  // Short inputs must be refused, not read past.
  if (size < raw.size()) (void)format::ParseSuperblock(Bytes(data, size));

  auto sb = format::ParseSuperblock(raw);
  if (!sb.ok()) return 0;
  (void)format::CheckFeatures(*sb);
  CheckFeatureNames(*sb);
  CheckGeometry(*sb);

  // Over its own bytes.
  Raw out = raw;
  format::SerializeSuperblock(*sb, out);
  CheckRewrite(raw, *sb, out);
  auto again = format::ParseSuperblock(out);
  FUZZ_CHECK(again.ok());

  // Over zeros: the fields alone must carry everything the parser reads.
  Raw fresh{};
  format::SerializeSuperblock(*sb, fresh);
  auto from_fresh = format::ParseSuperblock(fresh);
  FUZZ_CHECK(from_fresh.ok());
  Raw fresh_again{};
  format::SerializeSuperblock(*from_fresh, fresh_again);
  FUZZ_CHECK(fresh == fresh_again);
  Raw again_fresh{};
  format::SerializeSuperblock(*again, again_fresh);
  FUZZ_CHECK(fresh == again_fresh);
  FUZZ_CHECK(format::FeatureNames(*again) == format::FeatureNames(*sb));
  return 0;
}
