#include "ext4/allocator.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "ext4/format/checksum.h"

namespace ext4 {
namespace {

// The root directory's inode number.
constexpr uint32_t kRootInode = 2;
// Descriptor sizes from which the high halves of the bitmap checksums are
// stored (the end of bg_block_bitmap_csum_hi and bg_inode_bitmap_csum_hi).
constexpr uint32_t kBlockBitmapCsumHiEnd = 0x3A;
constexpr uint32_t kInodeBitmapCsumHiEnd = 0x3C;
// Flex groups at least this large keep their first group for directories;
// regular files start in the second (the kernel's block goal rule).
constexpr uint32_t kFlexSizeDirAllocScheme = 4;
// A file gets a reservation once its data reaches 1 MiB, of up to 16 MiB:
// more than the write-backs the kernel keeps in flight for one file, so
// that out-of-order pieces still find their place.
constexpr uint64_t kReserveFromBytes = uint64_t{1} << 20;
constexpr uint64_t kReservationBytes = uint64_t{16} << 20;
// Reservations kept at once, and for one file; the oldest goes first.
constexpr size_t kMaxReservations = 64;
constexpr size_t kMaxReservationsPerFile = 16;
// A window is at most this many runs of free blocks.
constexpr int kMaxPiecesPerWindow = 4;

bool TestBit(format::Bytes bits, uint32_t i) {
  return ((bits[i >> 3] >> (i & 7)) & 1) != 0;
}
void SetBit(format::MutableBytes bits, uint32_t i) {
  bits[i >> 3] = static_cast<uint8_t>(bits[i >> 3] | (1u << (i & 7)));
}
void ClearBit(format::MutableBytes bits, uint32_t i) {
  bits[i >> 3] = static_cast<uint8_t>(bits[i >> 3] & ~(1u << (i & 7)));
}
void SetBits(format::MutableBytes bits, uint32_t from, uint32_t to) {
  for (uint32_t i = from; i < to; ++i) SetBit(bits, i);
}

// The first bit in [from, to) equal to `value`, or `to`.
uint32_t FindBit(format::Bytes bits, uint32_t from, uint32_t to, bool value) {
  const uint8_t skip = value ? 0x00 : 0xFF;
  while (from < to) {
    if ((from & 7) == 0 && to - from >= 8 && bits[from >> 3] == skip) {
      from += 8;
      continue;
    }
    if (TestBit(bits, from) == value) return from;
    ++from;
  }
  return to;
}

// Clear bits in [0, n).
uint32_t CountZeros(format::Bytes bits, uint32_t n) {
  uint32_t ones = 0;
  uint32_t i = 0;
  for (; i + 8 <= n; i += 8) ones += std::popcount(bits[i >> 3]);
  for (; i < n; ++i) ones += TestBit(bits, i) ? 1 : 0;
  return n - ones;
}

absl::Status NoSpace(const char* what) {
  return ErrnoError(ENOSPC, absl::StrCat("no free ", what));
}

}  // namespace

BitmapAllocator::BitmapAllocator(format::Superblock& sb, io::BlockCache& blocks)
    : sb_(sb),
      blocks_(blocks),
      group_count_(sb.group_count()),
      flex_log_(sb.has_incompat(format::kIncompatFlexBg) &&
                        sb.log_groups_per_flex < 31
                    ? sb.log_groups_per_flex
                    : 0) {}

absl::StatusOr<std::unique_ptr<BitmapAllocator>> BitmapAllocator::Create(
    format::Superblock& sb, io::BlockCache& blocks) {
  auto allocator = std::make_unique<BitmapAllocator>(sb, blocks);
  E4_RETURN_IF_ERROR(allocator->Supported());
  return allocator;
}

absl::Status BitmapAllocator::Supported() const {
  if (blocks_.block_size() != sb_.block_size()) {
    return ErrnoError(EINVAL, "block cache and superblock block sizes differ");
  }
  if (sb_.bigalloc()) {
    return ErrnoError(EOPNOTSUPP,
                      "bigalloc filesystems are read-only: cluster allocation "
                      "is not supported");
  }
  if (group_count_ == 0 || sb_.inodes_per_group == 0) {
    return Corrupt("filesystem has no block groups");
  }
  return absl::OkStatus();
}

// ---- Geometry ----

uint32_t BitmapAllocator::BlocksInGroup(uint32_t group) const {
  const uint64_t first = sb_.group_first_block(group);
  if (first >= sb_.blocks_count) return 0;
  return static_cast<uint32_t>(
      std::min<uint64_t>(sb_.blocks_per_group, sb_.blocks_count - first));
}

uint32_t BitmapAllocator::BaseMetaBlocks(uint32_t group) const {
  const bool has_super = format::GroupHasSuperblock(sb_, group);
  uint32_t count = has_super ? 1 : 0;
  const uint32_t per_block = sb_.descriptors_per_block();
  const bool meta_bg = sb_.has_incompat(format::kIncompatMetaBg);
  if (!meta_bg || per_block == 0 || group / per_block < sb_.first_meta_bg) {
    // The classic layout: superblock copies carry the descriptor table (its
    // first s_first_meta_bg blocks with meta_bg) and the reserved GDT blocks.
    if (has_super) {
      count += meta_bg ? sb_.first_meta_bg : sb_.descriptor_blocks();
      count += sb_.reserved_gdt_blocks;
    }
  } else {
    // meta_bg: a meta group's descriptor block sits in its first, second and
    // last groups.
    const uint32_t index = group % per_block;
    if (index == 0 || index == 1 || index == per_block - 1) ++count;
  }
  return std::min(count, BlocksInGroup(group));
}

bool BitmapAllocator::BlockUninit(const format::GroupDescriptor& gd) const {
  return uninit_flags_valid() && (gd.flags & format::kBgBlockUninit) != 0;
}

bool BitmapAllocator::InodeUninit(const format::GroupDescriptor& gd) const {
  return uninit_flags_valid() && (gd.flags & format::kBgInodeUninit) != 0;
}

bool BitmapAllocator::OverlapsSystemZone(uint64_t start, uint64_t count) const {
  // The first extent ending after `start`.
  auto it = std::upper_bound(
      system_zone_.begin(), system_zone_.end(), start,
      [](uint64_t block, const Extent& e) { return block < e.end; });
  return it != system_zone_.end() &&
         (it->start <= start || it->start - start < count);
}

uint32_t BitmapAllocator::BlockBitmapChecksum(format::Bytes bitmap) const {
  const size_t bytes =
      std::min<size_t>(sb_.group_clusters() / 8, bitmap.size());
  uint32_t crc = format::Crc32c(sb_.checksum_seed(), bitmap.first(bytes));
  if (sb_.descriptor_size() < kBlockBitmapCsumHiEnd) crc &= 0xFFFF;
  return crc;
}

uint32_t BitmapAllocator::InodeBitmapChecksum(format::Bytes bitmap) const {
  const size_t bytes =
      std::min<size_t>(sb_.inodes_per_group / 8, bitmap.size());
  uint32_t crc = format::Crc32c(sb_.checksum_seed(), bitmap.first(bytes));
  if (sb_.descriptor_size() < kInodeBitmapCsumHiEnd) crc &= 0xFFFF;
  return crc;
}

// ---- Descriptors and the in-memory state ----

absl::Status BitmapAllocator::Load(Transaction& tx) {
  absl::MutexLock lock(&mu_);
  E4_RETURN_IF_ERROR(Supported());
  return LoadLocked(tx);
}

absl::Status BitmapAllocator::LoadIfNeeded(Transaction& tx) {
  absl::MutexLock lock(&mu_);
  return EnsureLoaded(tx);
}

bool BitmapAllocator::loaded() const {
  absl::MutexLock lock(&mu_);
  return loaded_;
}

absl::Status BitmapAllocator::EnsureLoaded(Transaction& tx) {
  if (loaded_) return absl::OkStatus();
  E4_RETURN_IF_ERROR(Supported());
  return LoadLocked(tx);
}

absl::Status BitmapAllocator::LoadLocked(Transaction& tx) {
  loaded_ = false;
  groups_.clear();
  flex_.clear();
  system_zone_.clear();
  used_dirs_ = 0;

  const uint32_t desc_size = sb_.descriptor_size();
  const uint32_t table_blocks = sb_.inode_table_blocks();
  uint64_t free_blocks = 0;
  uint64_t free_inodes = 0;
  uint64_t cached_block = UINT64_MAX;
  format::Bytes block_bytes;
  std::vector<Extent> zone;
  for (uint32_t g = 0; g < group_count_; ++g) {
    const uint64_t block = format::GroupDescriptorBlock(sb_, g);
    if (block != cached_block) {
      E4_ASSIGN_OR_RETURN(block_bytes, tx.Read(block));
      cached_block = block;
    }
    const uint32_t offset = format::GroupDescriptorOffsetInBlock(sb_, g);
    if (uint64_t{offset} + desc_size > block_bytes.size()) {
      return Corrupt(absl::StrCat("group descriptor ", g, " out of block"));
    }
    E4_ASSIGN_OR_RETURN(format::GroupDescriptor gd,
                        format::ParseGroupDescriptor(
                            block_bytes.subspan(offset, desc_size), g, sb_));
    GroupState state;
    state.free_blocks = gd.free_blocks_count;
    state.free_inodes = gd.free_inodes_count;
    state.used_dirs = gd.used_dirs_count;
    if (state.free_blocks > BlocksInGroup(g)) {
      return Corrupt(absl::StrCat("group descriptor ", g, ": free count ",
                                  state.free_blocks, " exceeds the group's ",
                                  BlocksInGroup(g), " blocks"));
    }
    groups_.push_back(state);
    const uint32_t flex = FlexOf(g);
    if (flex >= flex_.size()) flex_.resize(flex + 1);
    flex_[flex].free_blocks += state.free_blocks;
    flex_[flex].free_inodes += state.free_inodes;
    flex_[flex].used_dirs += state.used_dirs;
    used_dirs_ += state.used_dirs;
    free_blocks += state.free_blocks;
    free_inodes += state.free_inodes;

    const uint64_t first = sb_.group_first_block(g);
    const uint32_t base = BaseMetaBlocks(g);
    if (base > 0) zone.push_back({first, first + base});
    zone.push_back({gd.block_bitmap, gd.block_bitmap + 1});
    zone.push_back({gd.inode_bitmap, gd.inode_bitmap + 1});
    zone.push_back({gd.inode_table, gd.inode_table + table_blocks});
  }
  std::sort(zone.begin(), zone.end(),
            [](const Extent& a, const Extent& b) { return a.start < b.start; });
  for (const Extent& e : zone) {
    if (!system_zone_.empty() && e.start <= system_zone_.back().end) {
      system_zone_.back().end = std::max(system_zone_.back().end, e.end);
    } else {
      system_zone_.push_back(e);
    }
  }
  // The superblock's counts are a summary the kernel recomputes at mount;
  // the descriptors are authoritative.
  sb_.free_blocks_count = free_blocks;
  sb_.free_inodes_count = static_cast<uint32_t>(free_inodes);
  loaded_ = true;
  return absl::OkStatus();
}

absl::StatusOr<format::GroupDescriptor> BitmapAllocator::GetGroup(
    Transaction& tx, uint32_t group) {
  absl::MutexLock lock(&mu_);
  return GetGroupLocked(tx, group);
}

absl::StatusOr<format::GroupDescriptor> BitmapAllocator::GetGroupLocked(
    Transaction& tx, uint32_t group) {
  if (group >= group_count_) {
    return Corrupt(absl::StrCat("group ", group, " does not exist (",
                                group_count_, " groups)"));
  }
  const uint64_t block = format::GroupDescriptorBlock(sb_, group);
  const uint32_t offset = format::GroupDescriptorOffsetInBlock(sb_, group);
  E4_ASSIGN_OR_RETURN(format::Bytes bytes, tx.Read(block));
  if (uint64_t{offset} + sb_.descriptor_size() > bytes.size()) {
    return Corrupt(absl::StrCat("group descriptor ", group, " out of block"));
  }
  return format::ParseGroupDescriptor(
      bytes.subspan(offset, sb_.descriptor_size()), group, sb_);
}

absl::Status BitmapAllocator::PutGroup(Transaction& tx, uint32_t group,
                                       const format::GroupDescriptor& gd) {
  absl::MutexLock lock(&mu_);
  E4_RETURN_IF_ERROR(EnsureLoaded(tx));
  E4_ASSIGN_OR_RETURN(format::GroupDescriptor current,
                      GetGroupLocked(tx, group));
  if (gd.block_bitmap != current.block_bitmap ||
      gd.inode_bitmap != current.inode_bitmap ||
      gd.inode_table != current.inode_table) {
    return ErrnoError(EINVAL, absl::StrCat("group ", group,
                                           ": moving a group's bitmaps or "
                                           "inode table is not supported"));
  }
  return PutGroupLocked(tx, group, gd);
}

absl::Status BitmapAllocator::PutGroupLocked(
    Transaction& tx, uint32_t group, const format::GroupDescriptor& gd) {
  E4_RETURN_IF_ERROR(EnsureLoaded(tx));
  if (group >= group_count_) {
    return ErrnoError(EINVAL, absl::StrCat("group ", group, " does not exist"));
  }
  const uint32_t ipg = sb_.inodes_per_group;
  if (gd.free_blocks_count > BlocksInGroup(group) ||
      gd.free_inodes_count > ipg || gd.used_dirs_count > ipg ||
      gd.itable_unused > ipg) {
    return ErrnoError(
        EINVAL,
        absl::StrCat("group ", group,
                     ": impossible counts (free "
                     "blocks ",
                     gd.free_blocks_count, ", free inodes ",
                     gd.free_inodes_count, ", directories ", gd.used_dirs_count,
                     ", unused ", gd.itable_unused, ")"));
  }
  const uint64_t block = format::GroupDescriptorBlock(sb_, group);
  const uint32_t offset = format::GroupDescriptorOffsetInBlock(sb_, group);
  E4_ASSIGN_OR_RETURN(format::MutableBytes bytes, tx.Modify(block));
  if (uint64_t{offset} + sb_.descriptor_size() > bytes.size()) {
    return Corrupt(absl::StrCat("group descriptor ", group, " out of block"));
  }
  format::SerializeGroupDescriptor(
      gd, group, sb_, bytes.subspan(offset, sb_.descriptor_size()));

  // Counters follow the descriptor (unsigned wrap-around cancels out: the
  // totals are sums of the groups' counts, so they never go negative).
  GroupState& state = groups_[group];
  FlexState& flex = flex_[FlexOf(group)];
  sb_.free_blocks_count =
      sb_.free_blocks_count - state.free_blocks + gd.free_blocks_count;
  sb_.free_inodes_count =
      sb_.free_inodes_count - state.free_inodes + gd.free_inodes_count;
  flex.free_blocks =
      flex.free_blocks - state.free_blocks + gd.free_blocks_count;
  flex.free_inodes =
      flex.free_inodes - state.free_inodes + gd.free_inodes_count;
  flex.used_dirs = flex.used_dirs - state.used_dirs + gd.used_dirs_count;
  used_dirs_ = used_dirs_ - state.used_dirs + gd.used_dirs_count;
  state.free_blocks = gd.free_blocks_count;
  state.free_inodes = gd.free_inodes_count;
  state.used_dirs = gd.used_dirs_count;
  return absl::OkStatus();
}

absl::Status BitmapAllocator::WriteSuperblock(Transaction& tx) {
  absl::MutexLock lock(&mu_);
  const uint64_t block = sb_.superblock_block();
  const uint64_t offset = format::kSuperblockOffset - block * sb_.block_size();
  // Most operations change no count the superblock keeps (link, rename,
  // setattr, writes in place): the block is only copied, written and
  // journaled when its bytes change.
  std::array<uint8_t, format::kSuperblockSize> serialized;
  format::SerializeSuperblock(sb_, serialized);
  E4_ASSIGN_OR_RETURN(format::Bytes current, tx.Read(block));
  if (offset + format::kSuperblockSize > current.size()) {
    return Corrupt("superblock does not fit its block");
  }
  if (std::memcmp(current.data() + offset, serialized.data(),
                  serialized.size()) == 0) {
    return absl::OkStatus();
  }
  E4_ASSIGN_OR_RETURN(format::MutableBytes bytes, tx.Modify(block));
  std::memcpy(bytes.data() + offset, serialized.data(), serialized.size());
  return absl::OkStatus();
}

uint64_t BitmapAllocator::free_blocks() const {
  absl::MutexLock lock(&mu_);
  return sb_.free_blocks_count;
}

uint64_t BitmapAllocator::free_inodes() const {
  absl::MutexLock lock(&mu_);
  return sb_.free_inodes_count;
}

uint64_t BitmapAllocator::GoalForInode(uint32_t ino, bool regular_file) const {
  absl::MutexLock lock(&mu_);
  if (ino == 0 || ino > sb_.inodes_count || group_count_ == 0 ||
      sb_.inodes_per_group == 0) {
    return sb_.first_data_block;
  }
  uint32_t group = (ino - 1) / sb_.inodes_per_group;
  if (group >= group_count_) group = group_count_ - 1;
  if (flex_size() >= kFlexSizeDirAllocScheme) {
    group &= ~(flex_size() - 1);
    if (regular_file && group + 1 < group_count_) ++group;
  }
  const uint64_t first = sb_.group_first_block(group);
  const uint64_t end = first + BlocksInGroup(group);
  uint64_t goal = first + BaseMetaBlocks(group);
  // Past the bitmaps and inode tables at the start of the group (all of a
  // flex group's live in its first group).
  auto it = std::upper_bound(
      system_zone_.begin(), system_zone_.end(), goal,
      [](uint64_t block, const Extent& e) { return block < e.end; });
  if (it != system_zone_.end() && it->start <= goal) goal = it->end;
  return goal < end ? goal : first;
}

// ---- Bitmaps ----

void BitmapAllocator::BuildUninitBlockBitmap(uint32_t group,
                                             format::MutableBytes out) const {
  std::fill(out.begin(), out.end(), 0);
  const uint32_t nbits = BlocksInGroup(group);
  const uint64_t first = sb_.group_first_block(group);
  const uint64_t end = first + nbits;
  SetBits(out, 0, BaseMetaBlocks(group));
  // Metadata of any group that lives here (flex_bg packs a flex group's
  // bitmaps and inode tables into its first group).
  auto it = std::upper_bound(
      system_zone_.begin(), system_zone_.end(), first,
      [](uint64_t block, const Extent& e) { return block < e.end; });
  for (; it != system_zone_.end() && it->start < end; ++it) {
    const uint64_t from = std::max(it->start, first);
    const uint64_t to = std::min(it->end, end);
    SetBits(out, static_cast<uint32_t>(from - first),
            static_cast<uint32_t>(to - first));
  }
  // Padding: bits past the group's end, up to the end of the block.
  SetBits(out, nbits, static_cast<uint32_t>(out.size() * 8));
}

absl::StatusOr<format::Bytes> BitmapAllocator::ReadBlockBitmap(
    Transaction& tx, uint32_t group, const format::GroupDescriptor& gd) {
  if (BlockUninit(gd)) {
    scratch_.resize(sb_.block_size());
    BuildUninitBlockBitmap(group, scratch_);
    return format::Bytes(scratch_);
  }
  GroupState& state = groups_[group];
  if (state.block_bitmap_bad) {
    return Corrupt(absl::StrCat("group ", group, ": block bitmap is corrupt"));
  }
  E4_ASSIGN_OR_RETURN(format::Bytes bits, tx.Read(gd.block_bitmap));
  if (state.block_bitmap_checked) return bits;

  absl::Status status;
  if (sb_.metadata_csum() &&
      BlockBitmapChecksum(bits) != gd.block_bitmap_csum) {
    status =
        format::ChecksumMismatch(absl::StrCat("block bitmap of group ", group));
  }
  const uint32_t nbits = BlocksInGroup(group);
  const uint64_t first = sb_.group_first_block(group);
  if (status.ok()) {
    // Every metadata block of the group must be marked in use.
    auto it = std::upper_bound(
        system_zone_.begin(), system_zone_.end(), first,
        [](uint64_t block, const Extent& e) { return block < e.end; });
    for (; it != system_zone_.end() && it->start < first + nbits; ++it) {
      const auto from =
          static_cast<uint32_t>(std::max(it->start, first) - first);
      const auto to =
          static_cast<uint32_t>(std::min(it->end, first + nbits) - first);
      const uint32_t clear = FindBit(bits, from, to, false);
      if (clear < to) {
        status = Corrupt(absl::StrCat("group ", group, ": metadata block ",
                                      first + clear,
                                      " is free in the block bitmap"));
        break;
      }
    }
  }
  if (status.ok()) {
    const uint32_t free = CountZeros(bits, nbits);
    if (free != gd.free_blocks_count) {
      status = Corrupt(absl::StrCat("group ", group, ": block bitmap has ",
                                    free, " free blocks, the descriptor says ",
                                    gd.free_blocks_count));
    }
  }
  if (!status.ok()) {
    state.block_bitmap_bad = true;
    return status;
  }
  state.block_bitmap_checked = true;
  return bits;
}

absl::StatusOr<format::Bytes> BitmapAllocator::ReadInodeBitmap(
    Transaction& tx, uint32_t group, const format::GroupDescriptor& gd) {
  const uint32_t ipg = sb_.inodes_per_group;
  if (InodeUninit(gd)) {
    scratch_.assign(sb_.block_size(), 0);
    SetBits(scratch_, ipg, static_cast<uint32_t>(scratch_.size() * 8));
    return format::Bytes(scratch_);
  }
  GroupState& state = groups_[group];
  if (state.inode_bitmap_bad) {
    return Corrupt(absl::StrCat("group ", group, ": inode bitmap is corrupt"));
  }
  E4_ASSIGN_OR_RETURN(format::Bytes bits, tx.Read(gd.inode_bitmap));
  if (state.inode_bitmap_checked) return bits;

  absl::Status status;
  if (sb_.metadata_csum() &&
      InodeBitmapChecksum(bits) != gd.inode_bitmap_csum) {
    status =
        format::ChecksumMismatch(absl::StrCat("inode bitmap of group ", group));
  }
  if (status.ok()) {
    const uint32_t free = CountZeros(bits, ipg);
    if (free != gd.free_inodes_count) {
      status = Corrupt(absl::StrCat("group ", group, ": inode bitmap has ",
                                    free, " free inodes, the descriptor says ",
                                    gd.free_inodes_count));
    }
  }
  if (!status.ok()) {
    state.inode_bitmap_bad = true;
    return status;
  }
  state.inode_bitmap_checked = true;
  return bits;
}

absl::StatusOr<format::MutableBytes> BitmapAllocator::InitBlockBitmap(
    Transaction& tx, uint32_t group, format::GroupDescriptor& gd) {
  E4_ASSIGN_OR_RETURN(format::MutableBytes bits, tx.ModifyNew(gd.block_bitmap));
  BuildUninitBlockBitmap(group, bits);
  gd.flags &= static_cast<uint16_t>(~format::kBgBlockUninit);
  gd.free_blocks_count = CountZeros(bits, BlocksInGroup(group));
  if (sb_.metadata_csum()) gd.block_bitmap_csum = BlockBitmapChecksum(bits);
  GroupState& state = groups_[group];
  state.block_bitmap_checked = true;
  state.block_bitmap_bad = false;
  return bits;
}

bool BitmapAllocator::IsBlockInUse(Transaction& tx, uint64_t block) {
  absl::MutexLock lock(&mu_);
  if (!EnsureLoaded(tx).ok()) return true;
  if (block < sb_.first_data_block || block >= sb_.blocks_count) return true;
  const uint64_t rel = block - sb_.first_data_block;
  const auto group = static_cast<uint32_t>(rel / sb_.blocks_per_group);
  const auto bit = static_cast<uint32_t>(rel % sb_.blocks_per_group);
  auto gd = GetGroupLocked(tx, group);
  if (!gd.ok()) return true;
  auto bits = ReadBlockBitmap(tx, group, *gd);
  if (!bits.ok()) return true;
  return TestBit(*bits, bit);
}

// ---- Blocks ----

bool BitmapAllocator::FindRun(format::Bytes bitmap, uint32_t nbits,
                              uint32_t from, uint32_t to, uint32_t count,
                              uint32_t group, Candidate& best) const {
  uint32_t pos = from;
  while (pos < to) {
    const uint32_t start = FindBit(bitmap, pos, to, false);
    if (start >= to) break;
    const uint32_t limit = static_cast<uint32_t>(
        std::min<uint64_t>(nbits, uint64_t{start} + count));
    const uint32_t end = FindBit(bitmap, start, limit, true);
    const uint32_t length = end - start;
    if (length > best.length) best = {group, start, length};
    if (length >= count) return true;
    pos = end + 1;
  }
  return false;
}

absl::Status BitmapAllocator::MarkBlocksUsed(Transaction& tx,
                                             const Candidate& run) {
  const uint64_t first = sb_.group_first_block(run.group) + run.start;
  if (run.length == 0 ||
      uint64_t{run.start} + run.length > BlocksInGroup(run.group) ||
      OverlapsSystemZone(first, run.length)) {
    groups_[run.group].block_bitmap_bad = true;
    return Corrupt(absl::StrCat("group ", run.group,
                                ": block bitmap marks metadata free (blocks ",
                                first, "-", first + run.length - 1, ")"));
  }
  E4_ASSIGN_OR_RETURN(format::GroupDescriptor gd,
                      GetGroupLocked(tx, run.group));
  format::MutableBytes bits;
  if (BlockUninit(gd)) {
    E4_ASSIGN_OR_RETURN(bits, InitBlockBitmap(tx, run.group, gd));
  } else {
    E4_ASSIGN_OR_RETURN(bits, tx.Modify(gd.block_bitmap));
  }
  tx.WriteFirst(gd.block_bitmap);
  const uint32_t end = run.start + run.length;
  if (FindBit(bits, run.start, end, true) < end ||
      gd.free_blocks_count < run.length) {
    groups_[run.group].block_bitmap_bad = true;
    return Corrupt(absl::StrCat("group ", run.group,
                                ": block bitmap changed under allocation"));
  }
  SetBits(bits, run.start, end);
  gd.free_blocks_count -= run.length;
  if (sb_.metadata_csum()) gd.block_bitmap_csum = BlockBitmapChecksum(bits);
  return PutGroupLocked(tx, run.group, gd);
}

absl::StatusOr<bool> BitmapAllocator::SearchGroups(
    Transaction& tx, uint32_t goal_group, uint32_t goal_offset, uint32_t want,
    bool any_run, uint32_t owner, Candidate& best) {
  // The goal group's tail first, every other group, then the goal group's
  // head.
  const uint32_t n = group_count_;
  for (uint32_t i = 0; i <= n; ++i) {
    const uint32_t group =
        i == n ? goal_group
               : static_cast<uint32_t>((uint64_t{goal_group} + i) % n);
    const uint32_t nbits = BlocksInGroup(group);
    const uint32_t from = i == 0 ? goal_offset : 0;
    const uint32_t to = i == n ? std::min(goal_offset, nbits) : nbits;
    if (from >= to) continue;
    const GroupState& state = groups_[group];
    if (state.free_blocks == 0 || state.block_bitmap_bad) continue;
    if (!any_run && state.free_blocks < want) continue;
    E4_ASSIGN_OR_RETURN(format::GroupDescriptor gd, GetGroupLocked(tx, group));
    auto bits = ReadBlockBitmap(tx, group, gd);
    if (!bits.ok()) {
      if (ErrnoOf(bits.status()) == EUCLEAN) continue;  // marked bad: skip
      return bits.status();
    }
    const format::Bytes usable = UsableBits(group, *bits, owner);
    if (FindRun(usable, nbits, from, to, want, group, best)) return true;
    if (any_run && best.length > 0) return false;
  }
  return false;
}

absl::StatusOr<BlockRun> BitmapAllocator::AllocateBlocks(Transaction& tx,
                                                         uint64_t goal,
                                                         uint64_t count,
                                                         bool use_reserve) {
  absl::MutexLock lock(&mu_);
  return AllocateLocked(tx, goal, count, use_reserve, /*owner=*/0);
}

absl::StatusOr<BlockRun> BitmapAllocator::AllocateFileBlocks(
    Transaction& tx, uint32_t owner, uint64_t logical, uint64_t goal,
    uint64_t count, bool use_reserve) {
  absl::MutexLock lock(&mu_);
  // Inside the file's reservation, each logical block has its place: the
  // piece goes there whatever order the pieces come in. Past it, the place
  // the reservation's mapping extends to (a piece that overtook the ones
  // still to fill the reservation must leave them their room).
  const Reservation* covering = nullptr;
  const Reservation* behind = nullptr;
  for (const Reservation& r : reservations_) {
    if (owner == 0 || r.owner != owner || logical < r.logical) continue;
    if (logical - r.logical < r.end - r.start) {
      covering = &r;
      break;
    }
    if (behind == nullptr || r.logical > behind->logical) behind = &r;
  }
  if (covering != nullptr) {
    goal = covering->start + (logical - covering->logical);
    count = std::min(count, covering->end - goal);
  } else if (behind != nullptr) {
    goal = behind->start + (logical - behind->logical);
  }
  E4_ASSIGN_OR_RETURN(BlockRun run,
                      AllocateLocked(tx, goal, count, use_reserve, owner));
  Unreserve(run.first, run.count);
  const uint64_t bs = sb_.block_size();
  if (owner != 0 && (logical + run.count) * bs >= kReserveFromBytes) {
    E4_RETURN_IF_ERROR(
        Reserve(tx, owner, logical + run.count, run.first + run.count));
  }
  return run;
}

absl::StatusOr<BlockRun> BitmapAllocator::AllocateLocked(Transaction& tx,
                                                         uint64_t goal,
                                                         uint64_t count,
                                                         bool use_reserve,
                                                         uint32_t owner) {
  E4_RETURN_IF_ERROR(Supported());
  if (count == 0) return ErrnoError(EINVAL, "allocating zero blocks");
  E4_RETURN_IF_ERROR(EnsureLoaded(tx));

  const uint64_t reserve = use_reserve ? 0 : sb_.r_blocks_count;
  if (sb_.free_blocks_count <= reserve) return NoSpace("blocks");
  const auto want = static_cast<uint32_t>(std::min<uint64_t>(
      {count, sb_.free_blocks_count - reserve, sb_.blocks_per_group}));

  if (goal < sb_.first_data_block || goal >= sb_.blocks_count) {
    goal = sb_.first_data_block;
  }
  const uint64_t rel = goal - sb_.first_data_block;
  const auto goal_group = static_cast<uint32_t>(rel / sb_.blocks_per_group);
  const auto goal_offset = static_cast<uint32_t>(rel % sb_.blocks_per_group);

  Candidate best;
  // A free run at the goal that ends with its group is taken even when
  // short: the blocks after it, at the start of the next group, are often
  // free too, and the caller asks for the rest there (a file crossing a
  // group boundary stays contiguous, as with flex groups it is on disk).
  E4_ASSIGN_OR_RETURN(uint64_t at_goal, FreeRunAt(tx, goal, owner));
  if (at_goal > 0 && at_goal < want &&
      goal_offset + at_goal == BlocksInGroup(goal_group)) {
    best = {goal_group, goal_offset, static_cast<uint32_t>(at_goal)};
    E4_RETURN_IF_ERROR(MarkBlocksUsed(tx, best));
    return BlockRun{goal, at_goal};
  }
  // First choice: the first run of `want` blocks from the goal on, among the
  // groups with that many free blocks. Failing that, the longest run seen;
  // when no group has `want` free blocks, the longest run of the first group
  // from the goal that has any.
  auto search = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    E4_ASSIGN_OR_RETURN(bool found,
                        SearchGroups(tx, goal_group, goal_offset, want,
                                     /*any_run=*/false, owner, best));
    if (!found && best.length == 0) {
      E4_RETURN_IF_ERROR(SearchGroups(tx, goal_group, goal_offset, want,
                                      /*any_run=*/true, owner, best)
                             .status());
    }
    return absl::OkStatus();
  };
  E4_RETURN_IF_ERROR(search());
  const bool others_held_back =
      std::any_of(freed_.begin(), freed_.end(),
                  [&](const FreedRun& run) { return run.tx != tx.id(); });
  if (best.length == 0 && others_held_back && commit_) {
    // Only blocks freed by earlier, uncommitted operations are left: commit
    // them, then they may be reused.
    E4_RETURN_IF_ERROR(commit_());
    std::erase_if(freed_,
                  [&](const FreedRun& run) { return run.tx != tx.id(); });
    E4_RETURN_IF_ERROR(search());
  }
  if (best.length == 0 && !reservations_.empty()) {
    // Space is short: reservations are only wishes.
    reservations_.clear();
    E4_RETURN_IF_ERROR(search());
  }
  if (best.length == 0) return NoSpace("blocks");
  E4_RETURN_IF_ERROR(MarkBlocksUsed(tx, best));
  return BlockRun{sb_.group_first_block(best.group) + best.start, best.length};
}

void BitmapAllocator::Unreserve(uint64_t first, uint64_t count) {
  const uint64_t end = first + count;
  std::vector<Reservation> kept;
  for (const Reservation& r : reservations_) {
    if (r.end <= first || r.start >= end) {
      kept.push_back(r);
      continue;
    }
    // The parts before and after the allocated blocks stay reserved: an
    // out-of-order piece took the middle.
    if (r.start < first) kept.push_back({r.start, first, r.owner, r.logical});
    if (r.end > end) {
      kept.push_back({end, r.end, r.owner, r.logical + (end - r.start)});
    }
  }
  reservations_ = std::move(kept);
}

absl::Status BitmapAllocator::Reserve(Transaction& tx, uint32_t owner,
                                      uint64_t logical, uint64_t after) {
  size_t mine = 0;
  for (const Reservation& r : reservations_) {
    if (r.owner != owner) continue;
    // What comes next has its place already, or is to come after blocks
    // still reserved (pieces delivered out of order).
    if (r.logical + (r.end - r.start) > logical) return absl::OkStatus();
    ++mine;
  }
  if (mine >= kMaxReservationsPerFile) {
    // Pieces that never came (a file written with gaps): the oldest goes.
    reservations_.erase(std::find_if(
        reservations_.begin(), reservations_.end(),
        [owner](const Reservation& r) { return r.owner == owner; }));
  }
  // The blocks are searched as anyone else sees them: the file's own older
  // reservations are not to be mapped twice.
  constexpr uint32_t kNobody = 0;
  // The next 16 MiB of the file, in pieces where used blocks (a group's
  // superblock copy, other files) interrupt the free space: every logical
  // block of the window gets a place, so that no piece has to guess.
  const uint64_t most = kReservationBytes / sb_.block_size();
  uint64_t pos = after;
  uint64_t mapped = 0;
  for (int pieces = 0; pieces < kMaxPiecesPerWindow && mapped < most;
       ++pieces) {
    // The first free block from pos on, no further than the next group.
    uint64_t start = pos;
    for (int groups = 0; groups < 2; ++groups) {
      if (start < sb_.first_data_block || start >= sb_.blocks_count) {
        return absl::OkStatus();
      }
      const uint64_t rel = start - sb_.first_data_block;
      const auto group = static_cast<uint32_t>(rel / sb_.blocks_per_group);
      const auto from = static_cast<uint32_t>(rel % sb_.blocks_per_group);
      E4_ASSIGN_OR_RETURN(uint32_t free_at,
                          FirstFreeInGroup(tx, group, from, kNobody));
      start = sb_.group_first_block(group) + free_at;
      if (free_at < BlocksInGroup(group)) break;
    }
    // The free blocks from there, across group boundaries while they run
    // on (flex groups put one group's data right after the previous one's).
    uint64_t end = start;
    while (mapped + (end - start) < most && end >= sb_.first_data_block &&
           end < sb_.blocks_count) {
      E4_ASSIGN_OR_RETURN(uint64_t run, FreeRunAt(tx, end, kNobody));
      if (run == 0) break;
      end += std::min(run, most - mapped - (end - start));
    }
    if (end == start) return absl::OkStatus();
    if (reservations_.size() >= kMaxReservations) {
      reservations_.erase(reservations_.begin());
    }
    reservations_.push_back({start, end, owner, logical + mapped});
    mapped += end - start;
    pos = end;
  }
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> BitmapAllocator::FirstFreeInGroup(Transaction& tx,
                                                           uint32_t group,
                                                           uint32_t from,
                                                           uint32_t owner) {
  const uint32_t nbits = BlocksInGroup(group);
  E4_ASSIGN_OR_RETURN(std::optional<format::Bytes> bits,
                      FreeBitsOf(tx, group, owner));
  if (!bits) return nbits;
  return FindBit(*bits, from, nbits, false);
}

absl::StatusOr<uint64_t> BitmapAllocator::FreeRunAt(Transaction& tx,
                                                    uint64_t block,
                                                    uint32_t owner) {
  const uint64_t rel = block - sb_.first_data_block;
  const auto group = static_cast<uint32_t>(rel / sb_.blocks_per_group);
  const auto from = static_cast<uint32_t>(rel % sb_.blocks_per_group);
  E4_ASSIGN_OR_RETURN(std::optional<format::Bytes> bits,
                      FreeBitsOf(tx, group, owner));
  if (!bits) return 0;
  return FindBit(*bits, from, BlocksInGroup(group), true) - from;
}

absl::StatusOr<std::optional<format::Bytes>> BitmapAllocator::FreeBitsOf(
    Transaction& tx, uint32_t group, uint32_t owner) {
  if (groups_[group].block_bitmap_bad || groups_[group].free_blocks == 0) {
    return std::nullopt;
  }
  E4_ASSIGN_OR_RETURN(format::GroupDescriptor gd, GetGroupLocked(tx, group));
  auto bits = ReadBlockBitmap(tx, group, gd);
  if (!bits.ok()) {
    if (ErrnoOf(bits.status()) == EUCLEAN) return std::nullopt;  // bad: skip
    return bits.status();
  }
  return UsableBits(group, *bits, owner);
}

void BitmapAllocator::DropReservations(uint32_t owner) {
  absl::MutexLock lock(&mu_);
  std::erase_if(reservations_,
                [owner](const Reservation& r) { return r.owner == owner; });
}

uint64_t BitmapAllocator::reserved_blocks() const {
  absl::MutexLock lock(&mu_);
  uint64_t total = 0;
  for (const Reservation& r : reservations_) total += r.end - r.start;
  return total;
}

absl::Status BitmapAllocator::FreeBlocks(Transaction& tx, uint64_t first,
                                         uint64_t count) {
  absl::MutexLock lock(&mu_);
  E4_RETURN_IF_ERROR(Supported());
  if (count == 0) return absl::OkStatus();
  E4_RETURN_IF_ERROR(EnsureLoaded(tx));
  if (first < sb_.first_data_block || first >= sb_.blocks_count ||
      count > sb_.blocks_count - first) {
    return Corrupt(absl::StrCat("freeing blocks ", first, " (", count,
                                ") outside the filesystem"));
  }
  if (OverlapsSystemZone(first, count)) {
    return Corrupt(absl::StrCat("freeing blocks ", first, "-",
                                first + count - 1,
                                " which overlap filesystem metadata"));
  }
  // Check every piece before changing any.
  struct Piece {
    uint32_t group;
    uint32_t start;
    uint32_t length;
  };
  std::vector<Piece> pieces;
  for (uint64_t block = first, left = count; left > 0;) {
    const uint64_t rel = block - sb_.first_data_block;
    const auto group = static_cast<uint32_t>(rel / sb_.blocks_per_group);
    const auto start = static_cast<uint32_t>(rel % sb_.blocks_per_group);
    const auto length = static_cast<uint32_t>(
        std::min<uint64_t>(left, BlocksInGroup(group) - start));
    pieces.push_back({group, start, length});
    block += length;
    left -= length;
  }
  for (const Piece& piece : pieces) {
    E4_ASSIGN_OR_RETURN(format::GroupDescriptor gd,
                        GetGroupLocked(tx, piece.group));
    const uint64_t base = sb_.group_first_block(piece.group);
    if (BlockUninit(gd)) {
      return Corrupt(absl::StrCat("freeing block ", base + piece.start,
                                  " of uninitialised group ", piece.group,
                                  ": already free"));
    }
    E4_ASSIGN_OR_RETURN(format::Bytes bits,
                        ReadBlockBitmap(tx, piece.group, gd));
    const uint32_t end = piece.start + piece.length;
    const uint32_t clear = FindBit(bits, piece.start, end, false);
    if (clear < end) {
      return Corrupt(
          absl::StrCat("freeing block ", base + clear, ": already free"));
    }
  }
  for (const Piece& piece : pieces) {
    E4_ASSIGN_OR_RETURN(format::GroupDescriptor gd,
                        GetGroupLocked(tx, piece.group));
    E4_ASSIGN_OR_RETURN(format::MutableBytes bits, tx.Modify(gd.block_bitmap));
    tx.WriteLast(gd.block_bitmap);
    for (uint32_t i = piece.start; i < piece.start + piece.length; ++i) {
      ClearBit(bits, i);
    }
    gd.free_blocks_count += piece.length;
    if (sb_.metadata_csum()) gd.block_bitmap_csum = BlockBitmapChecksum(bits);
    E4_RETURN_IF_ERROR(PutGroupLocked(tx, piece.group, gd));
  }
  if (defer_reuse_) freed_.push_back({first, first + count, tx.id()});
  return absl::OkStatus();
}

bool BitmapAllocator::OverlapsMetadata(uint64_t first, uint64_t count) {
  absl::MutexLock lock(&mu_);
  if (first < sb_.first_data_block || first >= sb_.blocks_count ||
      count > sb_.blocks_count - first) {
    return true;
  }
  return OverlapsSystemZone(first, count);
}

void BitmapAllocator::DeferReuse(std::function<absl::Status()> commit) {
  absl::MutexLock lock(&mu_);
  defer_reuse_ = true;
  commit_ = std::move(commit);
}

void BitmapAllocator::ReleaseFreed() {
  absl::MutexLock lock(&mu_);
  freed_.clear();
}

format::Bytes BitmapAllocator::UsableBits(uint32_t group, format::Bytes bits,
                                          uint32_t owner) {
  if (freed_.empty() && reservations_.empty()) return bits;
  const uint64_t first = sb_.group_first_block(group);
  const uint64_t end = first + BlocksInGroup(group);
  bool copied = false;
  auto hold = [&](uint64_t start, uint64_t stop) {
    const uint64_t from = std::max(start, first);
    const uint64_t to = std::min(stop, end);
    if (from >= to) return;
    if (!copied) {
      busy_scratch_.assign(bits.begin(), bits.end());
      copied = true;
    }
    SetBits(busy_scratch_, static_cast<uint32_t>(from - first),
            static_cast<uint32_t>(to - first));
  };
  for (const FreedRun& run : freed_) hold(run.start, run.end);
  for (const Reservation& r : reservations_) {
    if (r.owner != owner) hold(r.start, r.end);
  }
  return copied ? format::Bytes(busy_scratch_) : bits;
}

// ---- Inodes ----

int64_t BitmapAllocator::OrlovFallback(uint32_t parent_group) {
  const uint32_t n = group_count_;
  const uint64_t average = sb_.free_inodes_count / n;
  // The average first; then, as the counts may be skewed on a small
  // filesystem, any group with a free inode.
  for (uint64_t minimum : {average, uint64_t{0}}) {
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t group =
          static_cast<uint32_t>((uint64_t{parent_group} + i) % n);
      const GroupState& state = groups_[group];
      if (state.free_inodes > 0 && state.free_inodes >= minimum &&
          !state.inode_bitmap_bad) {
        return group;
      }
    }
    if (average == 0) break;
  }
  return -1;
}

int64_t BitmapAllocator::FindGroupOrlov(uint32_t parent_group, bool top_level) {
  const uint32_t n = group_count_;
  const uint64_t flex = flex_size();
  const auto flexes = static_cast<uint32_t>(flex_.size());
  const int64_t ipg = sb_.inodes_per_group;
  const int64_t cpg = sb_.group_clusters();
  const int64_t avg_free_inodes = sb_.free_inodes_count / flexes;
  const int64_t avg_free_blocks =
      static_cast<int64_t>(sb_.free_blocks_count / flexes);

  // The first group of a flex group that has a free inode: inodes are
  // packed at the start of a flex group's inode tables.
  auto first_in_flex = [&](uint32_t f)
                           ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> int64_t {
    const uint64_t start = uint64_t{f} << flex_log_;
    for (uint64_t g = start; g < start + flex && g < n; ++g) {
      const GroupState& state = groups_[g];
      if (state.free_inodes > 0 && !state.inode_bitmap_bad) {
        return static_cast<int64_t>(g);
      }
    }
    return -1;
  };

  if (top_level) {
    // Spread top-level directories: from a varying start, the flex group
    // with the fewest directories among those with at least average free
    // inodes and blocks.
    topdir_rotor_ = topdir_rotor_ * 1103515245u + 12345u;
    const uint32_t start = (topdir_rotor_ >> 8) % flexes;
    int64_t best = -1;
    uint64_t best_dirs = static_cast<uint64_t>(ipg);
    for (uint32_t i = 0; i < flexes; ++i) {
      const uint32_t f = static_cast<uint32_t>((uint64_t{start} + i) % flexes);
      const FlexState& state = flex_[f];
      if (state.free_inodes == 0 || state.used_dirs >= best_dirs ||
          static_cast<int64_t>(state.free_inodes) < avg_free_inodes ||
          static_cast<int64_t>(state.free_blocks) < avg_free_blocks) {
        continue;
      }
      best = f;
      best_dirs = state.used_dirs;
    }
    if (best >= 0) {
      const int64_t group = first_in_flex(static_cast<uint32_t>(best));
      if (group >= 0) return group;
    }
    return OrlovFallback(parent_group);
  }

  // A deeper directory stays near its parent unless that (flex) group is
  // crowded with directories or short of inodes or blocks.
  const int64_t max_dirs = static_cast<int64_t>(used_dirs_ / flexes) +
                           ipg * static_cast<int64_t>(flex) / 16;
  const int64_t min_inodes = std::max<int64_t>(
      1, avg_free_inodes - ipg * static_cast<int64_t>(flex) / 4);
  const int64_t min_blocks =
      avg_free_blocks - cpg * static_cast<int64_t>(flex) / 4;
  const uint32_t parent_flex = FlexOf(parent_group);
  for (uint32_t i = 0; i < flexes; ++i) {
    const uint32_t f =
        static_cast<uint32_t>((uint64_t{parent_flex} + i) % flexes);
    const FlexState& state = flex_[f];
    if (static_cast<int64_t>(state.used_dirs) >= max_dirs ||
        static_cast<int64_t>(state.free_inodes) < min_inodes ||
        static_cast<int64_t>(state.free_blocks) < min_blocks) {
      continue;
    }
    const int64_t group = first_in_flex(f);
    if (group >= 0) return group;
    break;
  }
  return OrlovFallback(parent_group);
}

int64_t BitmapAllocator::FindGroupOther(uint32_t parent_group,
                                        uint32_t parent) {
  const uint32_t n = group_count_;
  auto usable = [&](uint32_t g, bool need_blocks)
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                      const GroupState& state = groups_[g];
                      return state.free_inodes > 0 && !state.inode_bitmap_bad &&
                             (!need_blocks || state.free_blocks > 0);
                    };
  if (flex_size() > 1) {
    // The parent's flex group, then another one chosen like a directory's.
    const uint64_t start =
        uint64_t{parent_group} & ~(uint64_t{flex_size()} - 1);
    for (uint64_t g = start; g < start + flex_size() && g < n; ++g) {
      if (usable(static_cast<uint32_t>(g), false))
        return static_cast<int64_t>(g);
    }
    return FindGroupOrlov(parent_group, false);
  }
  // The parent's group when it has room for the file's data too.
  if (usable(parent_group, true)) return parent_group;
  // Otherwise a quadratic probe from a start that depends on the parent, so
  // files of one directory land together and files of its neighbours do not.
  uint64_t group = (uint64_t{parent_group} + parent) % n;
  for (uint64_t step = 1; step < n; step <<= 1) {
    group += step;
    if (group >= n) group -= n;
    if (usable(static_cast<uint32_t>(group), true)) {
      return static_cast<int64_t>(group);
    }
  }
  // Then any group with a free inode.
  group = parent_group;
  for (uint32_t i = 0; i < n; ++i) {
    if (++group >= n) group = 0;
    if (usable(static_cast<uint32_t>(group), false)) {
      return static_cast<int64_t>(group);
    }
  }
  return -1;
}

absl::StatusOr<uint32_t> BitmapAllocator::AllocateInodeInGroup(Transaction& tx,
                                                               uint32_t group,
                                                               bool directory) {
  E4_ASSIGN_OR_RETURN(format::GroupDescriptor gd, GetGroupLocked(tx, group));
  if (gd.free_inodes_count == 0) return 0u;
  const uint32_t ipg = sb_.inodes_per_group;
  const uint64_t base = uint64_t{group} * ipg;  // inode base + bit + 1
  uint32_t bit;
  {
    auto bits = ReadInodeBitmap(tx, group, gd);
    if (!bits.ok()) {
      if (ErrnoOf(bits.status()) == EUCLEAN) return 0u;  // skip the group
      return bits.status();
    }
    // Never the reserved inodes below s_first_ino.
    uint32_t start = 0;
    if (base + 1 < sb_.first_inode()) {
      start = static_cast<uint32_t>(
          std::min<uint64_t>(ipg, sb_.first_inode() - 1 - base));
    }
    bit = FindBit(*bits, start, ipg, false);
  }
  if (bit >= ipg) {
    groups_[group].inode_bitmap_bad = true;
    return 0u;
  }

  // A group with inodes in use has a real block bitmap (as the kernel does).
  if (BlockUninit(gd)) {
    E4_RETURN_IF_ERROR(InitBlockBitmap(tx, group, gd).status());
  }
  const bool was_uninit = InodeUninit(gd);
  format::MutableBytes bits;
  if (was_uninit) {
    E4_ASSIGN_OR_RETURN(bits, tx.ModifyNew(gd.inode_bitmap));
    tx.WriteFirst(gd.inode_bitmap);
    SetBits(bits, ipg, static_cast<uint32_t>(bits.size() * 8));
    gd.flags &= static_cast<uint16_t>(~format::kBgInodeUninit);
  } else {
    E4_ASSIGN_OR_RETURN(bits, tx.Modify(gd.inode_bitmap));
    tx.WriteFirst(gd.inode_bitmap);
    if (TestBit(bits, bit)) {
      groups_[group].inode_bitmap_bad = true;
      return Corrupt(absl::StrCat("group ", group,
                                  ": inode bitmap changed under allocation"));
    }
  }
  SetBit(bits, bit);
  gd.free_inodes_count -= 1;
  if (directory) gd.used_dirs_count += 1;
  if (uninit_flags_valid()) {
    // The initialised part of the inode table must reach the new inode.
    const uint32_t used =
        was_uninit ? 0 : ipg - std::min(gd.itable_unused, ipg);
    if (bit + 1 > used) gd.itable_unused = ipg - (bit + 1);
  }
  if (sb_.metadata_csum()) gd.inode_bitmap_csum = InodeBitmapChecksum(bits);
  E4_RETURN_IF_ERROR(PutGroupLocked(tx, group, gd));
  groups_[group].inode_bitmap_checked = true;
  return static_cast<uint32_t>(base + bit + 1);
}

absl::StatusOr<uint32_t> BitmapAllocator::AllocateInode(Transaction& tx,
                                                        uint32_t parent,
                                                        bool directory) {
  absl::MutexLock lock(&mu_);
  E4_RETURN_IF_ERROR(Supported());
  E4_RETURN_IF_ERROR(EnsureLoaded(tx));
  if (sb_.free_inodes_count == 0) return NoSpace("inodes");
  const uint32_t n = group_count_;
  uint32_t parent_group = 0;
  if (parent >= 1 && parent <= sb_.inodes_count) {
    parent_group = std::min((parent - 1) / sb_.inodes_per_group, n - 1);
  }
  int64_t chosen = directory
                       ? FindGroupOrlov(parent_group, parent == kRootInode)
                       : FindGroupOther(parent_group, parent);
  const uint32_t start =
      chosen >= 0 ? static_cast<uint32_t>(chosen) : parent_group;
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t group = static_cast<uint32_t>((uint64_t{start} + i) % n);
    const GroupState& state = groups_[group];
    if (state.free_inodes == 0 || state.inode_bitmap_bad) continue;
    E4_ASSIGN_OR_RETURN(uint32_t ino,
                        AllocateInodeInGroup(tx, group, directory));
    if (ino != 0) return ino;
  }
  return NoSpace("inodes");
}

absl::Status BitmapAllocator::FreeInode(Transaction& tx, uint32_t ino,
                                        bool directory) {
  absl::MutexLock lock(&mu_);
  E4_RETURN_IF_ERROR(Supported());
  E4_RETURN_IF_ERROR(EnsureLoaded(tx));
  if (ino < sb_.first_inode() || ino > sb_.inodes_count) {
    return Corrupt(absl::StrCat("freeing reserved or nonexistent inode ", ino));
  }
  const uint32_t group = (ino - 1) / sb_.inodes_per_group;
  const uint32_t bit = (ino - 1) % sb_.inodes_per_group;
  E4_ASSIGN_OR_RETURN(format::GroupDescriptor gd, GetGroupLocked(tx, group));
  if (InodeUninit(gd)) {
    return Corrupt(absl::StrCat("freeing inode ", ino,
                                " of uninitialised group ", group,
                                ": already free"));
  }
  {
    E4_ASSIGN_OR_RETURN(format::Bytes bits, ReadInodeBitmap(tx, group, gd));
    if (!TestBit(bits, bit)) {
      return Corrupt(absl::StrCat("freeing inode ", ino, ": already free"));
    }
  }
  if (directory && gd.used_dirs_count == 0) {
    return Corrupt(absl::StrCat("freeing directory inode ", ino, ": group ",
                                group, " counts no directories"));
  }
  E4_ASSIGN_OR_RETURN(format::MutableBytes bits, tx.Modify(gd.inode_bitmap));
  tx.WriteLast(gd.inode_bitmap);
  ClearBit(bits, bit);
  gd.free_inodes_count += 1;
  if (directory) gd.used_dirs_count -= 1;
  if (sb_.metadata_csum()) gd.inode_bitmap_csum = InodeBitmapChecksum(bits);
  return PutGroupLocked(tx, group, gd);
}

}  // namespace ext4
