// A read-only view of an image's raw structures for the commands that show
// them (info, stat's inode fields, extents, htree): the superblock, group
// descriptors, on-disk inodes and file maps, read through a block cache with
// the same parsers the engine uses.
#ifndef E4FS_TOOLS_E4_RAW_IMAGE_H_
#define E4FS_TOOLS_E4_RAW_IMAGE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "ext4/file_map.h"
#include "ext4/format/group_descriptor.h"
#include "ext4/format/inode.h"
#include "ext4/format/superblock.h"
#include "ext4/io/block_cache.h"
#include "ext4/io/block_device.h"

namespace e4cli {

struct RawInode {
  uint32_t ino = 0;
  ext4::format::Inode inode;
  std::vector<uint8_t> raw;    // inode_size() bytes
  uint32_t checksum_seed = 0;  // for extent, directory and htree checksums
};

class RawImage {
 public:
  // Reads and validates the superblock of `device`. With `replay_journal`,
  // an image whose journal needs recovery is seen as after the replay (in
  // memory, as a read-only mount sees it); without, exactly as on disk.
  static absl::StatusOr<std::unique_ptr<RawImage>> Open(
      std::shared_ptr<ext4::io::BlockDevice> device, bool replay_journal);

  const ext4::format::Superblock& sb() const { return sb_; }
  ext4::io::BlockCache& blocks() { return *blocks_; }
  ext4::io::BlockDevice& device() { return *device_; }
  // True when the journal was replayed in memory for this view.
  bool replayed() const { return replayed_; }

  // One group's descriptor, parsed and checked (EUCLEAN names the group).
  absl::StatusOr<ext4::format::GroupDescriptor> Group(uint32_t group);
  // An inode in use (EUCLEAN for a free slot or a corrupt inode).
  absl::StatusOr<RawInode> Inode(uint32_t ino);
  // The inode's logical-to-physical map (extents or indirect blocks).
  std::unique_ptr<ext4::FileMap> Map(const RawInode& inode);

 private:
  RawImage() = default;

  std::unique_ptr<ext4::io::BlockDevice> device_;
  ext4::format::Superblock sb_;
  std::unique_ptr<ext4::io::BlockCache> blocks_;
  bool replayed_ = false;
};

struct Image;
// The raw view of an opened image, made on first use and kept with it. A
// mount that replayed the journal in memory is matched: the view replays it
// too.
absl::StatusOr<RawImage*> RawView(Image& image);

}  // namespace e4cli

#endif  // E4FS_TOOLS_E4_RAW_IMAGE_H_
