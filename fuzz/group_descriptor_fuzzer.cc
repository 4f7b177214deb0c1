// Group descriptors, parsed against a superblock: one of a set of valid
// synthetic filesystems picked by the first byte (block size, descriptor
// size, checksum kind, flex_bg, meta_bg, sparse_super2, group count), or,
// with its top bit set, 1024 superblock bytes from the input that must
// parse. Then the descriptor location helpers, ParseGroupDescriptor, and a
// serialize / parse round trip.
#include <cstdint>
#include <cstring>
#include <vector>

#include "ext4/format/checksum.h"
#include "ext4/format/endian.h"
#include "ext4/format/group_descriptor.h"
#include "ext4/format/superblock.h"
#include "fuzz/fuzz_support.h"

namespace {

using ext4::format::Bytes;
using ext4::format::GroupDescriptor;
using ext4::format::Superblock;
using ext4::fuzz::FuzzInput;
namespace format = ext4::format;

// Byte offset of bg_checksum.
constexpr size_t kChecksumOffset = 0x1E;

Superblock SyntheticSuperblock(uint8_t selector, FuzzInput& in) {
  ext4::fuzz::SuperblockSpec spec;
  spec.log_block_size = (selector & 1) ? 2 : 0;
  switch ((selector >> 1) & 3) {
    case 0:
      break;
    case 1:
      spec.gdt_csum = true;
      break;
    case 2:
      spec.metadata_csum = true;
      break;
    case 3:
      spec.metadata_csum = true;
      spec.csum_seed = true;
      break;
  }
  const uint8_t shape = in.U8();
  spec.is_64bit = (selector & 0x08) != 0;
  // 64 to 1024 bytes, but never more than a block holds.
  spec.desc_size = static_cast<uint16_t>(64u << (shape % 5));
  if (spec.desc_size > (1024u << spec.log_block_size)) spec.desc_size = 64;
  spec.flex_bg = (selector & 0x10) != 0;
  spec.sparse_super2 = (selector & 0x40) != 0;
  spec.groups = 1 + in.U8() % 80;
  spec.short_last_group = (shape & 0x80) != 0;
  spec.uuid_byte = in.U8();
  if (selector & 0x20) {
    spec.meta_bg = true;
    const uint32_t per_block =
        (1024u << spec.log_block_size) / (spec.is_64bit ? spec.desc_size : 32u);
    const uint32_t blocks = (spec.groups + per_block - 1) / per_block;
    spec.first_meta_bg = ((shape >> 3) & 3) % (blocks + 1);
  }
  return ext4::fuzz::MakeSuperblock(spec);
}

void CheckRoundTrip(Bytes raw, uint32_t group, const Superblock& sb,
                    const GroupDescriptor& gd) {
  const size_t size = sb.descriptor_size();
  std::vector<uint8_t> out(raw.begin(), raw.begin() + size);
  format::SerializeGroupDescriptor(gd, group, sb, out);
  // Every byte comes back but the checksum, which is recomputed.
  for (size_t i = 0; i < size; ++i) {
    if (sb.has_group_desc_csum() &&
        (i == kChecksumOffset || i == kChecksumOffset + 1)) {
      continue;
    }
    FUZZ_CHECK(out[i] == raw[i]);
  }
  const uint16_t stored = format::Le16(out, kChecksumOffset);
  FUZZ_CHECK(stored == (sb.has_group_desc_csum()
                            ? format::GroupDescriptorChecksum(out, group, sb)
                            : gd.checksum));

  const uint64_t mismatches = format::ChecksumMismatchesIgnored();
  auto again = format::ParseGroupDescriptor(out, group, sb);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(format::ChecksumMismatchesIgnored() == mismatches);
  FUZZ_CHECK(again->block_bitmap == gd.block_bitmap);
  FUZZ_CHECK(again->inode_bitmap == gd.inode_bitmap);
  FUZZ_CHECK(again->inode_table == gd.inode_table);
  FUZZ_CHECK(again->free_blocks_count == gd.free_blocks_count);
  FUZZ_CHECK(again->free_inodes_count == gd.free_inodes_count);
  FUZZ_CHECK(again->used_dirs_count == gd.used_dirs_count);
  FUZZ_CHECK(again->flags == gd.flags);
  FUZZ_CHECK(again->exclude_bitmap == gd.exclude_bitmap);
  FUZZ_CHECK(again->block_bitmap_csum == gd.block_bitmap_csum);
  FUZZ_CHECK(again->inode_bitmap_csum == gd.inode_bitmap_csum);
  FUZZ_CHECK(again->itable_unused == gd.itable_unused);
  FUZZ_CHECK(again->checksum == stored);

  // Into zeros: the fields alone rebuild the same descriptor.
  std::vector<uint8_t> fresh(size, 0);
  format::SerializeGroupDescriptor(*again, group, sb, fresh);
  auto from_fresh = format::ParseGroupDescriptor(fresh, group, sb);
  FUZZ_CHECK(from_fresh.ok());
  FUZZ_CHECK(from_fresh->inode_table == gd.inode_table);
  FUZZ_CHECK(from_fresh->free_blocks_count == gd.free_blocks_count);
  FUZZ_CHECK(from_fresh->itable_unused == gd.itable_unused);
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
    sb = SyntheticSuperblock(selector, in);
  }
  const uint32_t groups = sb.group_count();
  // Mostly groups that exist, sometimes one past the end or far beyond.
  const uint32_t pick = in.U32();
  const uint32_t group = (pick >> 31) ? pick : pick % (groups + 1);

  const uint64_t block = format::GroupDescriptorBlock(sb, group);
  const uint32_t offset = format::GroupDescriptorOffsetInBlock(sb, group);
  if (group < groups) {
    FUZZ_CHECK(uint64_t{offset} + sb.descriptor_size() <= sb.block_size());
    FUZZ_CHECK(block > sb.superblock_block());
  }
  (void)format::GroupHasSuperblock(sb, group);

  Bytes raw = in.Rest();
  // Short buffers must be refused, not read past.
  (void)format::GroupDescriptorChecksum(raw, group, sb);
  auto gd = format::ParseGroupDescriptor(raw, group, sb);
  if (!gd.ok()) return 0;
  FUZZ_CHECK(group < groups);
  FUZZ_CHECK(raw.size() >= sb.descriptor_size());
  CheckRoundTrip(raw, group, sb, *gd);
  return 0;
}
