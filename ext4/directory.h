// Directory lookup and listing, for linear, hash-indexed (htree) and inline
// directories. This layer knows the directory formats but not how a
// directory's blocks are found: the caller supplies them through
// DirectoryBlockSource (an extent or indirect map over the block cache in the
// engine, a vector of blocks in tests).
//
// Cookies (DirEntry::next_cookie) resume a listing just after an entry:
//  - linear directories: the byte position of the next record
//    (block * block_size + offset);
//  - htree directories: derived from the name hash, as the kernel's htree
//    readdir, so that they survive leaf splits. Bits 63..32 hold major >> 1,
//    bits 31..12 the top 20 bits of the minor hash, and bits 11..0 how many
//    entries of that (major, minor >> 12) bucket have been returned (entries
//    come in (major, minor, position) order; "." and ".." first, at hash 0).
//    A bucket of more than 4094 entries (only a hostile directory has one)
//    may lose entries when a listing is resumed inside it;
//  - inline directories: the kernel's positions ("." 0, ".." 12, then 20 +
//    the record's offset in i_block + system.data).
// Cookies are never 0 and always fit in an int64_t.
#ifndef E4FS_EXT4_DIRECTORY_H_
#define E4FS_EXT4_DIRECTORY_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ext4/filesystem.h"
#include "ext4/format/endian.h"

namespace ext4 {

// A directory's data blocks by logical number.
class DirectoryBlockSource {
 public:
  virtual ~DirectoryBlockSource() = default;
  // One whole directory block (block_size bytes).
  virtual absl::StatusOr<std::shared_ptr<const std::vector<uint8_t>>> ReadBlock(
      uint32_t logical) = 0;
  // The directory's size in blocks (i_size / block_size).
  virtual uint32_t BlockCount() const = 0;
};

struct DirectoryContext {
  uint32_t ino = 0;
  uint32_t block_size = 0;
  bool metadata_csum = false;
  uint32_t inode_checksum_seed = 0;
  bool htree = false;  // the inode's INDEX_FL and the fs's dir_index
  bool large_dir = false;
  std::array<uint32_t, 4> hash_seed = {0, 0, 0, 0};
  int default_hash_version = 0;  // s_def_hash_version, for new directories
  bool hash_unsigned = false;    // EXT2_FLAGS_UNSIGNED_HASH
  bool filetype = false;         // the filetype feature
};

// The inode number `name` refers to. ENOENT when absent, ENAMETOOLONG above
// 255 bytes, EUCLEAN for a corrupt block or index (an htree directory is not
// searched linearly when its index is bad). An htree lookup reads the root,
// one block per index level and the leaf (plus leaves that continue a hash
// collision).
absl::StatusOr<uint32_t> LookupInDirectory(const DirectoryContext& ctx,
                                           DirectoryBlockSource& blocks,
                                           std::string_view name);

// Calls `emit` for each entry from `cookie` on (0 = the start, "." and ".."
// included) until it returns false or the directory ends. Entries with inode
// 0 are skipped. Each call reads only what it lists (an htree listing
// resumed in the middle descends the index to the cookie's hash).
absl::Status ListDirectory(const DirectoryContext& ctx,
                           DirectoryBlockSource& blocks, uint64_t cookie,
                           const std::function<bool(const DirEntry&)>& emit);

// Inline directories (inline_data): `i_block` is the inode's 60-byte i_block
// (parent inode number in the first 4 bytes, then entries), `system_data`
// the value of the "system.data" xattr (more entries, possibly empty).
absl::StatusOr<uint32_t> LookupInInlineDirectory(const DirectoryContext& ctx,
                                                 format::Bytes i_block,
                                                 format::Bytes system_data,
                                                 std::string_view name);
absl::Status ListInlineDirectory(
    const DirectoryContext& ctx, format::Bytes i_block,
    format::Bytes system_data, uint64_t cookie,
    const std::function<bool(const DirEntry&)>& emit);

}  // namespace ext4

#endif  // E4FS_EXT4_DIRECTORY_H_
