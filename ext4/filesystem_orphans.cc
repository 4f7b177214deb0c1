// Orphan recovery at a read-write mount: inodes a crash left on the orphan
// list (the s_last_orphan chain through i_dtime, or the orphan file's slots)
// are finished as the kernel's ext4_orphan_cleanup does -- an inode without
// links is freed, one with links (an interrupted truncate) is truncated to
// its size.
#include <sys/stat.h>

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "ext4/extent_tree.h"
#include "ext4/file_blocks.h"
#include "ext4/filesystem_impl.h"
#include "ext4/format/checksum.h"
#include "ext4/format/endian.h"

namespace ext4 {

namespace {
constexpr uint32_t kOrphanBlockMagic = 0x0b10ca04;
constexpr uint32_t kOrphanBlockTail = 8;  // ob_magic, ob_checksum
}  // namespace

absl::Status FilesystemImpl::FinishOrphan(InodeNumber ino) {
  E4_ASSIGN_OR_RETURN(InodeHandle node, GetInode(ino));
  Transaction tx(blocks_);
  if (node->inode.links_count == 0) {
    if (node->inode.mode == 0) {
      return Corrupt(absl::StrCat("orphan inode ", ino, " is not in use"));
    }
    node->inode.dtime = 0;
    E4_RETURN_IF_ERROR(FreeInode(tx, *node));
  } else {
    node->inode.dtime = 0;
    // Every block past the size goes, preallocated ones included, as the
    // kernel's truncate does.
    if ((S_ISREG(node->inode.mode) || S_ISDIR(node->inode.mode)) &&
        HasBlockMap(*node)) {
      const uint32_t bs = sb_.block_size();
      E4_RETURN_IF_ERROR(BlocksOf(*node)->Remove(
          tx, (node->inode.size + bs - 1) / bs, kEndOfFile));
    }
    E4_RETURN_IF_ERROR(WriteInode(tx, *node));
  }
  return Finish(tx);
}

absl::Status FilesystemImpl::RecoverOrphans() {
  // The chain: each inode's dtime names the next one. A corrupt chain
  // (out-of-range number, a loop) ends the walk; what was reached is done.
  uint32_t steps = 0;
  while (sb_.last_orphan != 0) {
    const InodeNumber ino = sb_.last_orphan;
    if (ino < sb_.first_inode() || ino > sb_.inodes_count ||
        ++steps > sb_.inodes_count) {
      std::fprintf(stderr,
                   "e4fs: orphan list is corrupt at inode %u; "
                   "dropping the rest of it\n",
                   ino);
      sb_.last_orphan = 0;
      break;
    }
    E4_ASSIGN_OR_RETURN(InodeHandle node, GetInode(ino));
    // Unhook it first: whatever happens to the inode, the list moves on.
    sb_.last_orphan = node->inode.dtime;
    {
      WriteScope scope(*this);
      absl::Status status = FinishOrphan(ino);
      if (!status.ok()) {
        std::fprintf(stderr, "e4fs: recovering orphan inode %u: %s\n", ino,
                     std::string(status.message()).c_str());
      }
    }
  }
  {
    WriteScope scope(*this);
    Transaction tx(blocks_);
    E4_RETURN_IF_ERROR(Finish(tx));
  }
  if (!sb_.has_compat(format::kCompatOrphanFile) ||
      !sb_.has_ro_compat(format::kRoCompatOrphanPresent)) {
    return absl::OkStatus();
  }
  return RecoverOrphanFile();
}

absl::Status FilesystemImpl::RecoverOrphanFile() {
  const InodeNumber file = sb_.orphan_file_inum;
  E4_ASSIGN_OR_RETURN(InodeHandle orphan_file, GetInode(file));
  const uint32_t bs = sb_.block_size();
  const uint64_t nblocks = orphan_file->inode.size / bs;
  if (nblocks > sb_.blocks_count) {
    return Corrupt("the orphan file is larger than the filesystem");
  }
  const uint32_t slots = (bs - kOrphanBlockTail) / 4;
  std::unique_ptr<FileMap> map =
      MakeFileMap(orphan_file->inode, blocks_, sb_.metadata_csum(),
                  orphan_file->checksum_seed);
  for (uint64_t index = 0; index < nblocks; ++index) {
    E4_ASSIGN_OR_RETURN(BlockMapping mapping, map->Map(index));
    if (mapping.physical == 0) return Corrupt("the orphan file has a hole");
    std::vector<InodeNumber> inodes;
    {
      E4_ASSIGN_OR_RETURN(io::BlockRef block, blocks_.Read(mapping.physical));
      if (format::Le32(*block, bs - kOrphanBlockTail) != kOrphanBlockMagic) {
        return Corrupt("an orphan file block has a bad magic number");
      }
      for (uint32_t slot = 0; slot < slots; ++slot) {
        const uint32_t ino = format::Le32(*block, slot * 4);
        if (ino != 0) inodes.push_back(ino);
      }
    }
    for (InodeNumber ino : inodes) {
      if (ino < sb_.first_inode() || ino > sb_.inodes_count) continue;
      WriteScope scope(*this);
      absl::Status status = FinishOrphan(ino);
      if (!status.ok()) {
        std::fprintf(stderr, "e4fs: recovering orphan inode %u: %s\n", ino,
                     std::string(status.message()).c_str());
      }
    }
    // Every slot of the block is free again.
    WriteScope scope(*this);
    Transaction tx(blocks_);
    E4_ASSIGN_OR_RETURN(format::MutableBytes bytes,
                        tx.Modify(mapping.physical));
    std::fill(bytes.begin(), bytes.begin() + slots * 4, 0);
    if (sb_.metadata_csum()) {
      // Over the inode's seed, the block's physical number, the slots.
      uint8_t physical[8];
      format::Put64(physical, 0, mapping.physical);
      uint32_t csum = format::Crc32c(orphan_file->checksum_seed, physical);
      csum = format::Crc32c(csum, bytes.first(slots * 4));
      format::Put32(bytes, bs - 4, csum);
    }
    E4_RETURN_IF_ERROR(Finish(tx));
  }
  WriteScope scope(*this);
  sb_.feature_ro_compat &= ~format::kRoCompatOrphanPresent;
  Transaction tx(blocks_);
  return Finish(tx);
}

}  // namespace ext4
