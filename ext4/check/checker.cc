// The check's driver and its pass 0: the superblock, the group descriptors,
// the blocks the filesystem's own metadata occupies, and the journal.
#include "ext4/check/checker.h"

#include <algorithm>
#include <bit>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ext4/check/checker_internal.h"
#include "ext4/errno_status.h"
#include "ext4/format/checksum.h"
#include "ext4/format/dirent.h"
#include "ext4/format/endian.h"
#include "ext4/format/journal.h"

namespace ext4::check {
namespace {

// Byte offsets the checker reads or patches directly.
constexpr size_t kSuperblockRoCompatOffset = 0x64;
constexpr size_t kFreeBlocksCountLoOffset = 0x0C;
constexpr size_t kFreeInodesCountOffset = 0x10;
constexpr size_t kFreeBlocksCountHiOffset = 0x158;
constexpr size_t kDescriptorChecksumOffset = 0x1E;
// The free block, free inode, directory and unused inode counts (low halves,
// then the high halves of 64-byte descriptors).
constexpr size_t kDescriptorCountOffsets[] = {0x0C, 0x0E, 0x10, 0x1C,
                                              0x2C, 0x2E, 0x30, 0x32};
// Inode table blocks the cache keeps.
constexpr size_t kCacheBlocks = 4096;

std::string Hex(uint32_t value) {
  return absl::StrCat("0x", absl::Hex(value, absl::kZeroPad4));
}

}  // namespace

absl::StatusOr<Report> CheckFilesystem(io::BlockDevice& device) {
  Checker checker(device);
  return checker.Run();
}

void Checker::Add(std::string_view kind, std::string message, uint64_t number) {
  uint64_t& count = kind_counts_[std::string(kind)];
  ++count;
  if (count <= kMaxProblemsPerKind) {
    report_.problems.push_back(
        Problem{std::string(kind), std::move(message), number});
  }
}

absl::StatusOr<Report> Checker::Run() {
  bool go_on = false;
  E4_ASSIGN_OR_RETURN(go_on, LoadSuperblock());
  if (go_on) {
    E4_RETURN_IF_ERROR(LoadGroups());
    MarkGroupMetadata();
    E4_RETURN_IF_ERROR(CheckInodes());
    E4_RETURN_IF_ERROR(CheckJournal());
    E4_RETURN_IF_ERROR(CheckDirectories());
    CheckConnectivity();
    CheckLinkCounts();
    E4_RETURN_IF_ERROR(CheckBitmaps());
  }
  std::vector<std::pair<std::string, uint64_t>> capped;
  for (const auto& [kind, count] : kind_counts_) {
    if (count > kMaxProblemsPerKind) capped.emplace_back(kind, count);
  }
  std::sort(capped.begin(), capped.end());
  for (const auto& [kind, count] : capped) {
    report_.problems.push_back(
        Problem{kind,
                absl::StrCat(count - kMaxProblemsPerKind, " more problems of ",
                             "this kind are not listed"),
                0});
  }
  return std::move(report_);
}

absl::StatusOr<bool> Checker::LoadSuperblock() {
  std::vector<uint8_t> raw(format::kSuperblockSize);
  if (device_.Size() < format::kSuperblockOffset + format::kSuperblockSize) {
    return ErrnoError(EINVAL, "too small to hold an ext2/ext3/ext4 superblock");
  }
  E4_RETURN_IF_ERROR(device_.ReadAt(format::kSuperblockOffset, raw));
  auto parsed = format::ParseSuperblock(raw);
  if (!parsed.ok() && ErrnoOf(parsed.status()) != EINVAL) {
    // A checksum mismatch alone still leaves a usable superblock; so do
    // free counts larger than the totals, which the parser refuses but the
    // kernel and e2fsck recompute from the groups (the check never uses
    // them).
    const bool csum = (format::Le32(raw, kSuperblockRoCompatOffset) &
                       format::kRoCompatMetadataCsum) != 0;
    const uint32_t want = format::SuperblockChecksum(raw);
    const uint32_t stored =
        format::Le32(raw, format::kSuperblockChecksumOffset);
    const bool bad_checksum = csum && want != stored;
    std::vector<uint8_t> fixed = raw;
    format::Put32(fixed, format::kSuperblockChecksumOffset, want);
    auto retry = format::ParseSuperblock(fixed);
    if (!retry.ok() && ErrnoOf(retry.status()) != EINVAL) {
      format::Put32(fixed, kFreeBlocksCountLoOffset, 0);
      format::Put32(fixed, kFreeBlocksCountHiOffset, 0);
      format::Put32(fixed, kFreeInodesCountOffset, 0);
      format::Put32(fixed, format::kSuperblockChecksumOffset,
                    format::SuperblockChecksum(fixed));
      retry = format::ParseSuperblock(fixed);
    }
    if (retry.ok()) {
      if (bad_checksum) {
        Add("superblock_checksum",
            absl::StrCat("superblock checksum is ", Hex(stored), ", should be ",
                         Hex(want)),
            0);
      }
      parsed = std::move(retry);
    }
  }
  if (!parsed.ok()) {
    if (ErrnoOf(parsed.status()) == EINVAL) return parsed.status();
    return ErrnoError(EUCLEAN,
                      absl::StrCat("the superblock is corrupt (",
                                   std::string(parsed.status().message()),
                                   "); no check is possible"));
  }
  sb_ = std::move(*parsed);
  E4_RETURN_IF_ERROR(format::CheckFeatures(sb_).status());

  const uint32_t bs = sb_.block_size();
  if (sb_.blocks_count > device_.Size() / bs) {
    Add("superblock",
        absl::StrCat("the filesystem is ", sb_.blocks_count,
                     " blocks long but the device holds only ",
                     device_.Size() / bs,
                     "; the superblock or the image is damaged, not checking "
                     "further"),
        0);
    return false;
  }
  // Every inode needs its slot in an inode table on the device: this also
  // bounds the per-inode memory of the check by the device's size.
  if (uint64_t{sb_.inodes_count} * sb_.inode_size() > device_.Size()) {
    Add("superblock",
        absl::StrCat(sb_.inodes_count, " inodes of ", sb_.inode_size(),
                     " bytes do not fit on a device of ", device_.Size(),
                     " bytes; not checking further"),
        0);
    return false;
  }
  cache_ = std::make_unique<io::BlockCache>(device_, bs, sb_.blocks_count,
                                            kCacheBlocks);
  cluster_bits_ = static_cast<uint32_t>(std::countr_zero(sb_.cluster_ratio()));
  const uint64_t ratio = sb_.cluster_ratio();
  cluster_count_ =
      (sb_.blocks_count - sb_.first_data_block + ratio - 1) / ratio;
  fs_seed_ = sb_.metadata_csum() ? sb_.checksum_seed() : 0;
  used_clusters_ = Bitset(cluster_count_);
  metadata_clusters_ = Bitset(cluster_count_);
  inode_state_.assign(sb_.inodes_count, 0);
  stored_links_ = SmallCounts(sb_.inodes_count);
  found_links_ = SmallCounts(sb_.inodes_count);

  if (sb_.rev_level == format::kGoodOldRevision &&
      sb_.feature_compat | sb_.feature_incompat | sb_.feature_ro_compat) {
    Add("superblock", "revision 0 filesystem with feature flags set", 0);
  }
  if (sb_.has_incompat(format::kIncompatRecover)) {
    Add("journal",
        sb_.has_compat(format::kCompatHasJournal)
            ? "the journal needs recovery; replay skipped (read-only check), "
              "so what follows describes the filesystem without it"
            : "the needs_recovery flag is set but the filesystem has no "
              "journal",
        0);
  }
  if (sb_.last_orphan > sb_.inodes_count ||
      (sb_.last_orphan != 0 && sb_.last_orphan < sb_.first_inode())) {
    Add("superblock",
        absl::StrCat("orphan list head ", sb_.last_orphan,
                     " is not a valid inode number"),
        0);
  }
  return true;
}

absl::Status Checker::LoadGroups() {
  const uint32_t count = sb_.group_count();
  groups_.assign(count, format::GroupDescriptor{});
  group_ok_.assign(count, false);
  const uint32_t size = sb_.descriptor_size();
  for (uint32_t g = 0; g < count; ++g) {
    const uint64_t block = format::GroupDescriptorBlock(sb_, g);
    if (block >= sb_.blocks_count) {
      Add("group_descriptor",
          absl::StrCat("the descriptor of group ", g, " would be at block ",
                       block, ", outside the filesystem"),
          g);
      continue;
    }
    E4_ASSIGN_OR_RETURN(io::BlockRef bytes, cache_->Read(block));
    const uint32_t offset = format::GroupDescriptorOffsetInBlock(sb_, g);
    if (offset + size > bytes->size()) continue;
    std::vector<uint8_t> raw(bytes->begin() + offset,
                             bytes->begin() + offset + size);
    if (sb_.has_group_desc_csum()) {
      const uint16_t want = format::GroupDescriptorChecksum(raw, g, sb_);
      const uint16_t stored = format::Le16(raw, kDescriptorChecksumOffset);
      if (want != stored) {
        Add("group_descriptor_checksum",
            absl::StrCat("group descriptor ", g, " checksum is ", Hex(stored),
                         ", should be ", Hex(want)),
            g);
        format::Put16(raw, kDescriptorChecksumOffset, want);
      }
    }
    auto gd = format::ParseGroupDescriptor(raw, g, sb_);
    if (!gd.ok()) {
      Add("group_descriptor", std::string(gd.status().message()), g);
      // Counts out of range leave the locations usable: parse without them
      // and keep the stored values for pass 5 to compare.
      std::vector<uint8_t> counts_cleared = raw;
      for (size_t offset : kDescriptorCountOffsets) {
        if (offset + 2 <= counts_cleared.size()) {
          format::Put16(counts_cleared, offset, 0);
        }
      }
      if (sb_.has_group_desc_csum()) {
        format::Put16(counts_cleared, kDescriptorChecksumOffset,
                      format::GroupDescriptorChecksum(counts_cleared, g, sb_));
      }
      gd = format::ParseGroupDescriptor(counts_cleared, g, sb_);
      if (!gd.ok()) continue;
      const bool wide = size >= format::kMinDescriptorSize64Bit;
      auto count = [&](size_t lo, size_t hi) {
        return uint32_t{format::Le16(raw, lo)} |
               (wide ? uint32_t{format::Le16(raw, hi)} << 16 : 0);
      };
      gd->free_blocks_count = count(0x0C, 0x2C);
      gd->free_inodes_count = count(0x0E, 0x2E);
      gd->used_dirs_count = count(0x10, 0x30);
      gd->itable_unused = count(0x1C, 0x32);
    }
    groups_[g] = *gd;
    group_ok_[g] = true;
    const format::GroupDescriptor& d = groups_[g];
    if (!sb_.has_group_desc_csum()) {
      if (d.flags & (format::kBgInodeUninit | format::kBgBlockUninit)) {
        Add("group_descriptor",
            absl::StrCat("group descriptor ", g,
                         " is marked uninitialized without the uninit_bg or "
                         "metadata_csum feature"),
            g);
      }
    } else {
      if (g + 1 == count && (d.flags & format::kBgBlockUninit)) {
        Add("group_descriptor",
            absl::StrCat("the last group (", g,
                         ") has BLOCK_UNINIT set, which is not allowed"),
            g);
      }
      if (d.itable_unused > d.free_inodes_count) {
        Add("group_descriptor",
            absl::StrCat("group descriptor ", g, " has ", d.itable_unused,
                         " unused inodes but only ", d.free_inodes_count,
                         " free ones"),
            g);
      }
    }
  }
  return absl::OkStatus();
}

void Checker::ClaimMetadata(uint64_t block, const std::string& what) {
  if (!BlockInFilesystem(block)) {
    Add("group_descriptor",
        absl::StrCat(what, " at block ", block, " is outside the filesystem"),
        block);
    return;
  }
  const uint64_t c = ClusterOf(block);
  if (used_clusters_.Test(c) && !sb_.bigalloc()) {
    Add("duplicate_block",
        absl::StrCat(what, " at block ", block,
                     " overlaps other filesystem metadata"),
        block);
  }
  used_clusters_.Set(c);
  metadata_clusters_.Set(c);
}

std::vector<std::pair<uint64_t, uint64_t>> Checker::GroupSuperRanges(
    uint32_t g) const {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  const bool meta_bg = sb_.has_incompat(format::kIncompatMetaBg);
  const uint32_t per_block = sb_.descriptors_per_block();
  // Descriptor blocks (and reserved ones) after a superblock copy outside the
  // meta_bg part of the table.
  const uint64_t old_desc_blocks =
      meta_bg ? std::min<uint64_t>(sb_.first_meta_bg, sb_.descriptor_blocks())
              : uint64_t{sb_.descriptor_blocks()} + sb_.reserved_gdt_blocks;
  uint64_t first = sb_.group_first_block(g);
  if (first == 0 && sb_.block_size() == 1024) first = 1;
  const bool has_sb = format::GroupHasSuperblock(sb_, g);
  if (!meta_bg || g / per_block < sb_.first_meta_bg) {
    if (has_sb) ranges.emplace_back(first, 1 + old_desc_blocks);
  } else {
    if (has_sb) ranges.emplace_back(first, 1);
    const uint32_t index = g % per_block;
    if (index == 0 || index == 1 || index == per_block - 1) {
      ranges.emplace_back(first + (has_sb ? 1 : 0), 1);
    }
  }
  return ranges;
}

void Checker::MarkGroupMetadata() {
  const uint32_t count = sb_.group_count();
  for (uint32_t g = 0; g < count; ++g) {
    for (const auto& [first, length] : GroupSuperRanges(g)) {
      for (uint64_t i = 0; i < length; ++i) {
        ClaimMetadata(first + i, absl::StrCat(i == 0 ? "the superblock"
                                                     : "descriptor block",
                                              " of group ", g));
      }
    }
  }
  for (uint32_t g = 0; g < count; ++g) {
    if (!group_ok_[g]) continue;
    const format::GroupDescriptor& d = groups_[g];
    ClaimMetadata(d.block_bitmap,
                  absl::StrCat("the block bitmap of group ", g));
    ClaimMetadata(d.inode_bitmap,
                  absl::StrCat("the inode bitmap of group ", g));
    for (uint64_t i = 0; i < sb_.inode_table_blocks(); ++i) {
      ClaimMetadata(d.inode_table + i,
                    absl::StrCat("inode table block ", i, " of group ", g));
    }
  }
}

absl::Status Checker::CheckJournal() {
  const bool has_journal = sb_.has_compat(format::kCompatHasJournal);
  if (!has_journal) {
    if (sb_.journal_inum != 0 && sb_.journal_inum < sb_.first_inode() &&
        sb_.journal_inum <= sb_.inodes_count &&
        (InodeState(sb_.journal_inum) & kTypeMask) != 0) {
      Add("journal",
          absl::StrCat("a journal inode (", sb_.journal_inum,
                       ") is set but the has_journal feature is not"),
          sb_.journal_inum);
    }
    return absl::OkStatus();
  }
  const uint32_t jino = sb_.journal_inum;
  if (jino == 0) return absl::OkStatus();  // an external journal device
  if (jino > sb_.inodes_count) {
    Add("journal", absl::StrCat("journal inode ", jino, " does not exist"),
        jino);
    return absl::OkStatus();
  }
  const uint8_t state = InodeState(jino);
  if ((state & kTypeMask) != format::kFtRegular) {
    Add("journal",
        absl::StrCat("journal inode ", jino, " is not a regular file in use"),
        jino);
    return absl::OkStatus();
  }
  if (journal_first_block_ == 0) {
    Add("journal", absl::StrCat("journal inode ", jino, " has no first block"),
        jino);
    return absl::OkStatus();
  }
  E4_ASSIGN_OR_RETURN(io::BlockRef block, cache_->Read(journal_first_block_));
  format::Bytes raw(*block);
  auto jsb = format::ParseJournalSuperblock(
      raw.first(std::min<size_t>(raw.size(), format::kJournalSuperblockSize)));
  if (!jsb.ok()) {
    Add("journal",
        absl::StrCat("journal superblock (block ", journal_first_block_,
                     "): ", std::string(jsb.status().message())),
        journal_first_block_);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint8_t>> Checker::ReadInodeBytes(uint32_t ino) {
  if (ino == 0 || ino > sb_.inodes_count) {
    return Corrupt(absl::StrCat("inode ", ino, " does not exist"));
  }
  const uint32_t group = (ino - 1) / sb_.inodes_per_group;
  if (!group_ok_[group]) {
    return Corrupt(absl::StrCat("inode ", ino, " is in group ", group,
                                ", whose descriptor is unusable"));
  }
  const uint64_t byte =
      uint64_t{(ino - 1) % sb_.inodes_per_group} * sb_.inode_size();
  E4_ASSIGN_OR_RETURN(
      io::BlockRef block,
      cache_->Read(groups_[group].inode_table + byte / sb_.block_size()));
  const size_t offset = byte % sb_.block_size();
  return std::vector<uint8_t>(block->begin() + offset,
                              block->begin() + offset + sb_.inode_size());
}

absl::StatusOr<format::Inode> Checker::LoadInode(uint32_t ino,
                                                 std::vector<uint8_t>& raw) {
  E4_ASSIGN_OR_RETURN(raw, ReadInodeBytes(ino));
  FixInodeChecksum(raw, ino, sb_);
  return format::ParseInode(raw, ino, sb_);
}

uint32_t Checker::InodeSeed(uint32_t ino, uint32_t generation) const {
  return format::InodeChecksumSeed(fs_seed_, ino, generation);
}

bool Checker::IsSpecialInode(uint32_t ino) const {
  if (ino < sb_.first_inode()) return true;
  if (ino == sb_.journal_inum || ino == sb_.usr_quota_inum ||
      ino == sb_.grp_quota_inum || ino == sb_.prj_quota_inum ||
      ino == sb_.orphan_file_inum) {
    return true;
  }
  return xattr_value_inodes_.contains(ino);
}

}  // namespace ext4::check
