// `e4 check`: a read-only consistency check of an ext2/ext3/ext4 image, in
// the spirit of `e2fsck -fn`. It never writes: every problem is reported and
// left as it is.
//
// The passes follow e2fsck's, simplified and with bounded memory (bitmaps of
// the blocks and inodes found in use, one byte per inode for link counts and
// types, per-directory records; nothing per block):
//   0. the superblock and every group descriptor: checksums, where the
//      bitmaps and inode tables lie, the journal's state;
//   1. every inode in use (links_count != 0, plus the reserved ones): inode
//      checksum, mode, flags, extent trees (headers, depth, checksums,
//      ordering, ranges) or indirect maps, each block claimed once,
//      i_blocks and i_size against the blocks found, symlinks, device
//      inodes, extended attributes in the inode and in xattr blocks
//      (checksum, reference count);
//   2. every directory: well-formed entries, checksum tails, "." and "..",
//      htree indexes (counts, limits, hash order and ranges, checksums),
//      entries naming in-use inodes with the right file type;
//   3. connectivity: every directory reachable from the root, ".." naming
//      the parent;
//   4. link counts against the names found;
//   5. block and inode bitmaps, their checksums and the groups' free and
//      directory counts against what the other passes found.
// The superblock's own free counts are not compared: e2fsck recomputes them
// silently too.
#ifndef E4FS_EXT4_CHECK_CHECKER_H_
#define E4FS_EXT4_CHECK_CHECKER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ext4/io/block_device.h"

namespace ext4::check {

struct Problem {
  // A short, stable name for the kind of problem (for example
  // "inode_checksum", "link_count", "block_bitmap"): see kProblemKinds.
  std::string kind;
  // What is wrong, in words, naming the structure and the values found.
  std::string message;
  // The inode or block the problem is about (which one the kind says; 0
  // when neither applies).
  uint64_t inode_or_block = 0;
};

struct Report {
  std::vector<Problem> problems;
  uint64_t inodes_checked = 0;  // inodes found in use
  uint64_t blocks_checked = 0;  // blocks found in use (metadata included)
};

// Every kind a Problem may carry, for documentation and tests.
inline constexpr const char* kProblemKinds[] = {
    "superblock",  // superblock fields (the problem's number: 0)
    "superblock_checksum",
    "journal",           // needs recovery, or a bad journal inode or superblock
    "group_descriptor",  // a descriptor's fields or locations (group number)
    "group_descriptor_checksum",
    "inode",  // an in-use inode that cannot be parsed, bad flags or dtime
    "inode_checksum",
    "inode_mode",
    "zero_dtime",  // a deleted inode (no links) with a mode but no dtime
    "reserved_inode",
    "extent_tree",  // headers, depth, ordering, ranges (inode number)
    "extent_checksum",
    "block_range",      // a block pointer outside the filesystem (inode)
    "duplicate_block",  // a block claimed twice (block number)
    "i_blocks",
    "i_size",
    "symlink",
    "device_inode",
    "inline_data",
    "xattr",  // in-inode extended attributes (inode number)
    "xattr_block",
    "xattr_checksum",
    "xattr_refcount",
    "directory_block",  // malformed entries (directory inode)
    "directory_checksum",
    "directory_hole",
    "dot",
    "dotdot",
    "dirent_name",
    "dirent_inode",  // an entry naming a bad or unused inode
    "dirent_type",
    "directory_hardlink",
    "htree",
    "htree_checksum",
    "root",
    "unconnected_directory",
    "unattached_inode",
    "link_count",
    "block_bitmap",  // block bitmap differences (first block of a run)
    "block_bitmap_checksum",
    "inode_bitmap",  // inode bitmap differences (first inode of a run)
    "inode_bitmap_checksum",
    "group_free_blocks",  // a group's counts (group number)
    "group_free_inodes",
    "group_used_dirs",
};

// Checks the filesystem on `device` without writing to it. A status error
// means the check could not be done at all (no ext2/3/4 superblock,
// impossible geometry, an unsupported incompat feature, a read error): what
// e2fsck reports with exit code 8. Problems found are in the report (e2fsck's
// exit code 4 when there is any).
absl::StatusOr<Report> CheckFilesystem(io::BlockDevice& device);

}  // namespace ext4::check

#endif  // E4FS_EXT4_CHECK_CHECKER_H_
