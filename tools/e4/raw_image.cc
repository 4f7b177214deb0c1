#include "tools/e4/raw_image.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "ext4/filesystem_impl.h"
#include "ext4/format/checksum.h"
#include "tools/e4/image_path.h"

namespace e4cli {

namespace format = ext4::format;

absl::StatusOr<std::unique_ptr<RawImage>> RawImage::Open(
    std::shared_ptr<ext4::io::BlockDevice> device, bool replay_journal) {
  std::unique_ptr<RawImage> image(new RawImage());
  image->device_ = ShareDevice(device);
  if (image->device_->Size() <
      format::kSuperblockOffset + format::kSuperblockSize) {
    return ext4::ErrnoError(
        EINVAL, "not an ext2/ext3/ext4 filesystem (image too small)");
  }
  std::vector<uint8_t> raw(format::kSuperblockSize);
  E4_RETURN_IF_ERROR(image->device_->ReadAt(format::kSuperblockOffset, raw));
  E4_ASSIGN_OR_RETURN(image->sb_, format::ParseSuperblock(raw));
  if (replay_journal && image->sb_.has_incompat(format::kIncompatRecover) &&
      image->sb_.has_compat(format::kCompatHasJournal)) {
    E4_ASSIGN_OR_RETURN(
        image->device_,
        ext4::FilesystemImpl::Replay(std::move(image->device_), image->sb_,
                                     /*read_only=*/true));
    E4_RETURN_IF_ERROR(image->device_->ReadAt(format::kSuperblockOffset, raw));
    E4_ASSIGN_OR_RETURN(image->sb_, format::ParseSuperblock(raw));
    image->replayed_ = true;
  }
  image->blocks_ = std::make_unique<ext4::io::BlockCache>(
      *image->device_, image->sb_.block_size(), image->sb_.blocks_count, 4096);
  return image;
}

absl::StatusOr<format::GroupDescriptor> RawImage::Group(uint32_t group) {
  if (group >= sb_.group_count()) {
    return ext4::Corrupt(absl::StrCat("group ", group, " does not exist"));
  }
  const uint64_t block = format::GroupDescriptorBlock(sb_, group);
  const uint32_t offset = format::GroupDescriptorOffsetInBlock(sb_, group);
  E4_ASSIGN_OR_RETURN(ext4::io::BlockRef bytes, blocks_->Read(block));
  format::Bytes all(*bytes);
  if (offset + sb_.descriptor_size() > all.size()) {
    return ext4::Corrupt(
        absl::StrCat("group descriptor ", group, " lies outside its block"));
  }
  return format::ParseGroupDescriptor(
      all.subspan(offset, sb_.descriptor_size()), group, sb_);
}

absl::StatusOr<RawInode> RawImage::Inode(uint32_t ino) {
  if (ino == 0 || ino > sb_.inodes_count) {
    return ext4::Corrupt(
        absl::StrCat("inode number ", ino, " is out of range"));
  }
  const uint32_t group = (ino - 1) / sb_.inodes_per_group;
  const uint32_t index = (ino - 1) % sb_.inodes_per_group;
  E4_ASSIGN_OR_RETURN(format::GroupDescriptor gd, Group(group));
  const uint64_t byte = uint64_t{index} * sb_.inode_size();
  E4_ASSIGN_OR_RETURN(ext4::io::BlockRef bytes,
                      blocks_->Read(gd.inode_table + byte / sb_.block_size()));
  format::Bytes raw =
      format::Bytes(*bytes).subspan(byte % sb_.block_size(), sb_.inode_size());
  RawInode out;
  out.ino = ino;
  E4_ASSIGN_OR_RETURN(out.inode, format::ParseInode(raw, ino, sb_));
  if (out.inode.mode == 0) {
    return ext4::Corrupt(absl::StrCat("inode ", ino, " is not in use"));
  }
  out.raw.assign(raw.begin(), raw.end());
  out.checksum_seed =
      format::InodeChecksumSeed(sb_.checksum_seed(), ino, out.inode.generation);
  return out;
}

std::unique_ptr<ext4::FileMap> RawImage::Map(const RawInode& inode) {
  return ext4::MakeFileMap(inode.inode, *blocks_, sb_.metadata_csum(),
                           inode.checksum_seed);
}

absl::StatusOr<RawImage*> RawView(Image& image) {
  if (image.raw == nullptr) {
    E4_ASSIGN_OR_RETURN(image.raw,
                        RawImage::Open(image.device, /*replay_journal=*/true));
  }
  return image.raw.get();
}

}  // namespace e4cli
