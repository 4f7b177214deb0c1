// The state the check's passes share, and the passes themselves (one file
// each: checker.cc for the superblock and groups, inode_pass.cc,
// directory_pass.cc, link_pass.cc for connectivity and link counts,
// bitmap_pass.cc). Internal to ext4/check.
#ifndef E4FS_EXT4_CHECK_CHECKER_INTERNAL_H_
#define E4FS_EXT4_CHECK_CHECKER_INTERNAL_H_

#include <bit>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ext4/check/checker.h"
#include "ext4/format/group_descriptor.h"
#include "ext4/format/inode.h"
#include "ext4/format/superblock.h"
#include "ext4/io/block_cache.h"
#include "ext4/io/block_device.h"

namespace ext4::check {

// A fixed-size set of small integers, one bit each.
class Bitset {
 public:
  Bitset() = default;
  explicit Bitset(uint64_t size) : size_(size), words_((size + 63) / 64) {}

  uint64_t size() const { return size_; }
  bool Test(uint64_t i) const {
    return i < size_ && ((words_[i >> 6] >> (i & 63)) & 1) != 0;
  }
  void Set(uint64_t i) {
    if (i < size_) words_[i >> 6] |= uint64_t{1} << (i & 63);
  }
  uint64_t Count() const {
    uint64_t n = 0;
    for (uint64_t w : words_) n += std::popcount(w);
    return n;
  }

 private:
  uint64_t size_ = 0;
  std::vector<uint64_t> words_;
};

// Per-inode counts that are nearly always small: a byte each, the rare
// larger values in a side table.
class SmallCounts {
 public:
  SmallCounts() = default;
  explicit SmallCounts(uint64_t size) : small_(size, 0) {}

  uint32_t Get(uint64_t i) const {
    if (i >= small_.size()) return 0;
    if (small_[i] != kOverflow) return small_[i];
    auto it = large_.find(i);
    return it == large_.end() ? 0 : it->second;
  }
  void Set(uint64_t i, uint32_t value) {
    if (i >= small_.size()) return;
    if (value < kOverflow) {
      small_[i] = static_cast<uint8_t>(value);
      large_.erase(i);
    } else {
      small_[i] = kOverflow;
      large_[i] = value;
    }
  }
  void Increment(uint64_t i) {
    uint32_t value = Get(i);
    if (value != UINT32_MAX) Set(i, value + 1);
  }

 private:
  static constexpr uint8_t kOverflow = 255;
  std::vector<uint8_t> small_;
  absl::flat_hash_map<uint64_t, uint32_t> large_;
};

// Logical blocks [logical, logical + length) of a file at `physical`.
struct BlockRun {
  uint32_t logical = 0;
  uint32_t length = 0;
  uint64_t physical = 0;
};

// What the passes after the first need to know about one directory.
struct DirectoryInfo {
  uint32_t parent = 0;  // the directory whose entry names it (0: none found)
  uint32_t dotdot = 0;  // what its ".." names (0: none found)
  bool dotdot_seen = false;
  std::vector<BlockRun> runs;  // its data blocks, from pass 1
};

// An xattr block and the inodes found using it.
struct XattrBlockUse {
  uint32_t refcount = 0;  // h_refcount as stored
  uint32_t users = 0;     // inodes whose i_file_acl names it
  uint32_t first_user = 0;
};

// Per-inode state byte: the dirent file type of the inode's mode in the low
// bits, and flags.
inline constexpr uint8_t kTypeMask = 0x07;
inline constexpr uint8_t kInUse = 0x10;
inline constexpr uint8_t kBadMode = 0x20;
inline constexpr uint8_t kIsDirectory = 0x40;

class Checker {
 public:
  explicit Checker(io::BlockDevice& device) : device_(device) {}

  absl::StatusOr<Report> Run();

  // Adds a problem (at most kMaxProblemsPerKind of a kind are kept; the rest
  // are counted and summed up at the end).
  void Add(std::string_view kind, std::string message, uint64_t number);

 private:
  // checker.cc: pass 0.
  // False when the check cannot go past the superblock (a problem says why).
  absl::StatusOr<bool> LoadSuperblock();
  absl::Status LoadGroups();
  void MarkGroupMetadata();
  // The superblock copy and descriptor blocks (reserved ones included) a
  // group holds, as (first block, count) ranges.
  std::vector<std::pair<uint64_t, uint64_t>> GroupSuperRanges(uint32_t g) const;
  absl::Status CheckJournal();
  // Marks one metadata block of the filesystem (not of an inode) in use;
  // `what` names it for the overlap message.
  void ClaimMetadata(uint64_t block, const std::string& what);

  // inode_pass.cc: pass 1.
  absl::Status CheckInodes();
  struct BlockWalk;
  absl::Status CheckInode(uint32_t ino, format::Bytes raw);
  absl::Status WalkBlocks(const format::Inode& inode, BlockWalk& walk);
  absl::Status WalkExtentNode(format::Bytes raw, int expected_depth,
                              uint64_t start, uint64_t end, BlockWalk& walk);
  absl::Status WalkIndirect(uint32_t pointer, int levels, uint64_t first,
                            BlockWalk& walk);
  void MapDataBlocks(uint64_t logical, uint64_t physical, uint64_t count,
                     bool unwritten, BlockWalk& walk);
  // Claims `count` blocks from `block` for the inode the walk is on; false
  // when one of them was in use already.
  bool ClaimForInode(uint64_t block, uint64_t count, BlockWalk& walk);
  absl::Status CheckXattrBlock(uint32_t ino, uint64_t block, BlockWalk& walk);

  // directory_pass.cc: pass 2.
  absl::Status CheckDirectories();
  absl::Status CheckDirectory(uint32_t ino, DirectoryInfo& info);
  struct EntryContext;
  void CheckEntry(EntryContext& ctx, uint32_t entry_inode,
                  std::string_view name, uint8_t file_type, int slot);

  // link_pass.cc: passes 3 and 4.
  void CheckConnectivity();
  void CheckLinkCounts();

  // bitmap_pass.cc: pass 5.
  absl::Status CheckBitmaps();

  // Helpers.
  // Bitmap index of a block's cluster.
  uint64_t ClusterOf(uint64_t block) const {
    return (block - sb_.first_data_block) >> cluster_bits_;
  }
  bool BlockInFilesystem(uint64_t block) const {
    return block >= sb_.first_data_block && block < sb_.blocks_count;
  }
  // The bytes of inode `ino` (a copy).
  absl::StatusOr<std::vector<uint8_t>> ReadInodeBytes(uint32_t ino);
  // Reads and parses inode `ino` whatever its checksum (pass 1 reported
  // that); `raw` receives its bytes.
  absl::StatusOr<format::Inode> LoadInode(uint32_t ino,
                                          std::vector<uint8_t>& raw);
  uint32_t InodeSeed(uint32_t ino, uint32_t generation) const;
  uint8_t& InodeState(uint32_t ino) { return inode_state_[ino - 1]; }
  bool IsSpecialInode(uint32_t ino) const;

  io::BlockDevice& device_;
  format::Superblock sb_;
  std::unique_ptr<io::BlockCache> cache_;
  uint32_t cluster_bits_ = 0;
  uint64_t cluster_count_ = 0;
  uint32_t fs_seed_ = 0;

  std::vector<format::GroupDescriptor> groups_;
  std::vector<bool> group_ok_;  // descriptor usable

  Bitset used_clusters_;              // found in use
  Bitset metadata_clusters_;          // of which: filesystem metadata
  std::vector<uint8_t> inode_state_;  // per inode, index ino - 1
  SmallCounts stored_links_;          // i_links_count of in-use inodes
  SmallCounts found_links_;           // names found for each inode
  absl::flat_hash_map<uint32_t, DirectoryInfo> directories_;
  absl::flat_hash_map<uint64_t, XattrBlockUse> xattr_blocks_;
  absl::flat_hash_set<uint32_t> xattr_value_inodes_;
  uint64_t journal_first_block_ = 0;  // the journal inode's logical block 0

  Report report_;
  absl::flat_hash_map<std::string, uint64_t> kind_counts_;
};

// Compares an inode's stored checksum with the one its bytes give (the low
// 16 bits only where the inode has no room for the high half); fills in
// both values.
bool InodeChecksumMatches(format::Bytes raw, uint32_t ino,
                          const format::Superblock& sb, uint32_t* stored,
                          uint32_t* expected);
// Stores the checksum the bytes give, so that the parser accepts them.
void FixInodeChecksum(format::MutableBytes raw, uint32_t ino,
                      const format::Superblock& sb);

// The most problems of one kind a report lists.
inline constexpr uint64_t kMaxProblemsPerKind = 100;

}  // namespace ext4::check

#endif  // E4FS_EXT4_CHECK_CHECKER_INTERNAL_H_
