// Logical-to-physical block mapping of one file: extent trees and the
// ext2/ext3 indirect maps behind one interface, so reading, directories and
// (later) writing do not care which one an inode uses.
#ifndef E4FS_EXT4_FILE_MAP_H_
#define E4FS_EXT4_FILE_MAP_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "ext4/format/inode.h"
#include "ext4/io/block_cache.h"

namespace ext4 {

struct BlockMapping {
  uint64_t physical = 0;  // 0 for a hole
  // Blocks from the asked one on that are mapped contiguously (or, for a
  // hole, stay unmapped), at least 1.
  uint64_t length = 1;
  bool unwritten = false;  // allocated but reads as zeros
};

class FileMap {
 public:
  virtual ~FileMap() = default;
  virtual absl::StatusOr<BlockMapping> Map(uint64_t logical) = 0;
};

// Picks the extent tree or the indirect map from the inode's flags.
// `inode_checksum_seed` verifies extent block tails under metadata_csum.
std::unique_ptr<FileMap> MakeFileMap(const format::Inode& inode,
                                     io::BlockCache& blocks, bool metadata_csum,
                                     uint32_t inode_checksum_seed);

std::unique_ptr<FileMap> MakeExtentMap(const format::Inode& inode,
                                       io::BlockCache& blocks,
                                       bool metadata_csum,
                                       uint32_t inode_checksum_seed);
std::unique_ptr<FileMap> MakeIndirectMap(const format::Inode& inode,
                                         io::BlockCache& blocks);

}  // namespace ext4

#endif  // E4FS_EXT4_FILE_MAP_H_
