// The bitmap allocator: blocks and inodes, found and released through the
// per-group bitmaps, with the group descriptors' and the superblock's free
// counts kept exact after every operation.
//
// Every bitmap and descriptor is read and changed through the caller's
// Transaction, so a transaction sees its own allocations and nothing reaches
// the disk before Commit(). Lazily initialised groups (BLOCK_UNINIT,
// INODE_UNINIT) get their bitmaps built on first use, as the kernel's ext4
// does; bitmap checksums (metadata_csum) and descriptor checksums (gdt_csum,
// metadata_csum) are kept current.
//
// In memory, like the kernel, the allocator keeps per-group and per-flex-group
// counters (nothing extra on disk) and the "system zone": every block that
// holds filesystem metadata (superblock copies, descriptor tables, reserved
// GDT blocks, bitmaps, inode tables). Blocks in it are never handed out and
// never accepted by FreeBlocks. All of this is read from the group
// descriptors on the first call that needs it (Load()).
//
// bigalloc is not supported for writing (e4fs mounts bigalloc read-only):
// Create() refuses it, and every mutating call returns EOPNOTSUPP.
//
// Files that grow past 1 MiB get the blocks after their last allocation
// reserved for them (up to 16 MiB; in memory, like the kernel's per-inode
// preallocation): other allocations skip those blocks, and the file's next
// pieces land there even when concurrent write-backs deliver them out of
// order. A reservation ends with DropReservations (the file's last close),
// when it is used up, when newer ones push it out, or when space runs short.
//
// Thread safety: every public method takes the allocator's own lock. The
// Transaction passed in belongs to one writer at a time.
#ifndef E4FS_EXT4_ALLOCATOR_H_
#define E4FS_EXT4_ALLOCATOR_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "ext4/block_allocator.h"
#include "ext4/format/group_descriptor.h"
#include "ext4/format/superblock.h"
#include "ext4/io/block_cache.h"
#include "ext4/transaction.h"

namespace ext4 {

class BitmapAllocator final : public BlockAllocator {
 public:
  // `sb` is the engine's in-core superblock: the allocator keeps its
  // free_blocks_count and free_inodes_count exact. Both references must
  // outlive the allocator.
  BitmapAllocator(format::Superblock& sb, io::BlockCache& blocks);
  // As the constructor, but EOPNOTSUPP for a filesystem this allocator cannot
  // write (bigalloc).
  static absl::StatusOr<std::unique_ptr<BitmapAllocator>> Create(
      format::Superblock& sb, io::BlockCache& blocks);

  BitmapAllocator(const BitmapAllocator&) = delete;
  BitmapAllocator& operator=(const BitmapAllocator&) = delete;

  // Reads every group descriptor (through tx): the in-memory counters, the
  // system zone, and the superblock's free counts recomputed as the sums of
  // the groups' (as the kernel does at mount). Called by the first operation
  // that needs it; call it again after Transaction::Abort() to drop the
  // counter changes the aborted transaction made. EUCLEAN for a corrupt
  // descriptor.
  absl::Status Load(Transaction& tx);
  // Load() unless done already; whether it is.
  absl::Status LoadIfNeeded(Transaction& tx);
  bool loaded() const;

  // Between 1 and `count` contiguous free blocks inside one group: the first
  // run of `count` free blocks at or after `goal` (wrapping around the
  // groups); when no such run exists anywhere, the longest run seen nearest
  // the goal. Without `use_reserve`, s_r_blocks_count blocks stay free.
  // ENOSPC when nothing can be given; EINVAL for count 0.
  absl::StatusOr<BlockRun> AllocateBlocks(Transaction& tx, uint64_t goal,
                                          uint64_t count,
                                          bool use_reserve) override;
  // AllocateBlocks for a file's data, using and renewing its reservation
  // (see the top of this file).
  absl::StatusOr<BlockRun> AllocateFileBlocks(Transaction& tx, uint32_t owner,
                                              uint64_t logical, uint64_t goal,
                                              uint64_t count,
                                              bool use_reserve) override;
  // Forgets the reservations of file `owner`.
  void DropReservations(uint32_t owner);
  // Blocks reserved for files now (for tests).
  uint64_t reserved_blocks() const;

  // Returns [first, first + count) to the free pool. EUCLEAN, changing
  // nothing, when any block is already free, is metadata, or lies outside
  // the filesystem. The range may cross groups.
  absl::Status FreeBlocks(Transaction& tx, uint64_t first,
                          uint64_t count) override;
  // The system zone (known once Load() has run; before, nothing is) and
  // everything past the last block.
  bool OverlapsMetadata(uint64_t first, uint64_t count) override;

  // A new inode number. Directories are spread over the groups (Orlov: a
  // top-level directory goes to a (flex) group with above-average free
  // inodes and blocks and the fewest directories; a deeper one near its
  // parent while the parent's group is not crowded); other inodes go to the
  // parent's (flex) group, or the next one with a free inode. The caller
  // writes the inode itself: with a lazily initialised inode table
  // (no ITABLE_ZEROED) the slot may hold garbage, so write all of it.
  // ENOSPC when no inode is free.
  absl::StatusOr<uint32_t> AllocateInode(Transaction& tx, uint32_t parent,
                                         bool directory);
  // Releases an inode (its bitmap bit, the free and directory counts).
  // EUCLEAN, changing nothing, for a reserved or nonexistent inode or one
  // that is already free.
  absl::Status FreeInode(Transaction& tx, uint32_t ino, bool directory);

  // A group's descriptor as this transaction sees it (EUCLEAN when corrupt
  // or past the last group).
  absl::StatusOr<format::GroupDescriptor> GetGroup(Transaction& tx,
                                                   uint32_t group);
  // Writes a descriptor back (serialised, descriptor checksum recomputed).
  // Changes to its free counts flow into the superblock's counts and the
  // in-memory counters. EINVAL for counts a group cannot have.
  absl::Status PutGroup(Transaction& tx, uint32_t group,
                        const format::GroupDescriptor& gd);
  // Serialises the in-core superblock into the primary superblock's bytes
  // (s_checksum recomputed under metadata_csum).
  absl::Status WriteSuperblock(Transaction& tx);

  // A good first block for an inode's data: in its group, or with flex
  // groups of 4 or more in its flex group (the second group of it for a
  // regular file, as the kernel does), past the metadata at the start (the
  // bitmaps and inode tables are known once Load() has run; before, only
  // the superblock copy and descriptor blocks are skipped).
  uint64_t GoalForInode(uint32_t ino, bool regular_file = false) const;

  // Journaled filesystems: blocks freed since the last journal commit are
  // not handed out again until that commit, so a crash (which brings back
  // the committed state, in which they are still in use) never finds them
  // overwritten. `commit` is called, with the allocator's lock held, when
  // only such blocks are left: it must commit the journal's running
  // transaction (without touching the allocator); blocks freed by the
  // transaction in progress stay held back.
  void DeferReuse(std::function<absl::Status()> commit);
  // The journal committed: every held-back block may be reused.
  void ReleaseFreed();

  uint64_t free_blocks() const;
  uint64_t free_inodes() const;
  // Whether a block is allocated (metadata included) as this transaction
  // sees it. Blocks outside the filesystem and unreadable bitmaps count as
  // in use.
  bool IsBlockInUse(Transaction& tx, uint64_t block);

 private:
  // [start, end) in blocks.
  struct Extent {
    uint64_t start = 0;
    uint64_t end = 0;
  };
  // In-memory copy of a group's counters (the descriptor is authoritative:
  // PutGroup keeps both in step) and what has been checked about its
  // bitmaps.
  struct GroupState {
    uint32_t free_blocks = 0;
    uint32_t free_inodes = 0;
    uint32_t used_dirs = 0;
    bool block_bitmap_checked = false;
    bool inode_bitmap_checked = false;
    bool block_bitmap_bad = false;
    bool inode_bitmap_bad = false;
  };
  struct FlexState {
    uint64_t free_blocks = 0;
    uint64_t free_inodes = 0;
    uint64_t used_dirs = 0;
  };

  absl::Status Supported() const;
  absl::Status EnsureLoaded(Transaction& tx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status LoadLocked(Transaction& tx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<format::GroupDescriptor> GetGroupLocked(Transaction& tx,
                                                         uint32_t group)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status PutGroupLocked(Transaction& tx, uint32_t group,
                              const format::GroupDescriptor& gd)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Geometry.
  uint32_t group_count() const { return group_count_; }
  // Blocks in a group (the last one may be short).
  uint32_t BlocksInGroup(uint32_t group) const;
  // Superblock copy, descriptor blocks and reserved GDT blocks at the start
  // of a group (the kernel's ext4_num_base_meta_clusters).
  uint32_t BaseMetaBlocks(uint32_t group) const;
  uint32_t FlexOf(uint32_t group) const { return group >> flex_log_; }
  uint32_t flex_size() const { return 1u << flex_log_; }
  bool uninit_flags_valid() const { return sb_.has_group_desc_csum(); }
  bool BlockUninit(const format::GroupDescriptor& gd) const;
  bool InodeUninit(const format::GroupDescriptor& gd) const;
  // Whether [start, start + count) touches the system zone.
  bool OverlapsSystemZone(uint64_t start, uint64_t count) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Bitmap checksums as stored in a descriptor (16 bits with 32-byte
  // descriptors).
  uint32_t BlockBitmapChecksum(format::Bytes bitmap) const;
  uint32_t InodeBitmapChecksum(format::Bytes bitmap) const;

  // The block bitmap of a BLOCK_UNINIT group as it is once initialised:
  // metadata and the padding past the group's end set. `out` is one block.
  void BuildUninitBlockBitmap(uint32_t group, format::MutableBytes out) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The group's block bitmap for reading: the on-disk one (checked the first
  // time: checksum, metadata bits, free count), or a built one for a
  // BLOCK_UNINIT group (in scratch_). EUCLEAN marks the group bad.
  absl::StatusOr<format::Bytes> ReadBlockBitmap(
      Transaction& tx, uint32_t group, const format::GroupDescriptor& gd)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<format::Bytes> ReadInodeBitmap(
      Transaction& tx, uint32_t group, const format::GroupDescriptor& gd)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes a BLOCK_UNINIT group's bitmap real in tx; updates gd (flag, free
  // count, checksum) without writing it.
  absl::StatusOr<format::MutableBytes> InitBlockBitmap(
      Transaction& tx, uint32_t group, format::GroupDescriptor& gd)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Searches one group's bitmap bits [from, to) for the first run of
  // `count` free blocks (a run may go on past `to`); records the longest run
  // seen in `best` when it beats it.
  struct Candidate {
    uint32_t group = 0;
    uint32_t start = 0;
    uint32_t length = 0;
  };
  bool FindRun(format::Bytes bitmap, uint32_t nbits, uint32_t from, uint32_t to,
               uint32_t count, uint32_t group, Candidate& best) const;
  // Visits the groups from the goal for a run of `want` blocks (FindRun);
  // `any_run`: also groups with fewer free blocks, stopping at the first
  // group with any free run. True when a full run was found (in `best`).
  // `owner`: the file allocating (0: none); other files' reservations count
  // as used.
  absl::StatusOr<bool> SearchGroups(Transaction& tx, uint32_t goal_group,
                                    uint32_t goal_offset, uint32_t want,
                                    bool any_run, uint32_t owner,
                                    Candidate& best)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<BlockRun> AllocateLocked(Transaction& tx, uint64_t goal,
                                          uint64_t count, bool use_reserve,
                                          uint32_t owner)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes [first, first + count) from every reservation.
  void Unreserve(uint64_t first, uint64_t count)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The group's block bitmap with what `owner` may not take marked used
  // (UsableBits); nullopt for a group with nothing free or a bad bitmap.
  absl::StatusOr<std::optional<format::Bytes>> FreeBitsOf(Transaction& tx,
                                                          uint32_t group,
                                                          uint32_t owner)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // How many blocks from `block` on are free to `owner`, in block's group.
  absl::StatusOr<uint64_t> FreeRunAt(Transaction& tx, uint64_t block,
                                     uint32_t owner)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The first block at or after `from` in `group` free to `owner`, or the
  // group's size.
  absl::StatusOr<uint32_t> FirstFreeInGroup(Transaction& tx, uint32_t group,
                                            uint32_t from, uint32_t owner)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reserves for `owner`'s logical blocks from `logical` on the free blocks
  // from the first free one at or after `after` (up to 16 MiB, up to the
  // first block in use or reserved), unless the owner has blocks reserved
  // for `logical` or beyond.
  absl::Status Reserve(Transaction& tx, uint32_t owner, uint64_t logical,
                       uint64_t after) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status MarkBlocksUsed(Transaction& tx, const Candidate& run)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The bitmap to search: `bits` itself, or a copy in busy_scratch_ with
  // the held-back freed blocks of the group and the blocks reserved for
  // files other than `owner` marked in use.
  format::Bytes UsableBits(uint32_t group, format::Bytes bits, uint32_t owner)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Inode group choice.
  int64_t FindGroupOrlov(uint32_t parent_group, bool top_level)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t FindGroupOther(uint32_t parent_group, uint32_t parent)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t OrlovFallback(uint32_t parent_group)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Allocates an inode in one group; 0 when the group turned out to have
  // none (or its bitmap is bad).
  absl::StatusOr<uint32_t> AllocateInodeInGroup(Transaction& tx, uint32_t group,
                                                bool directory)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  format::Superblock& sb_;
  io::BlockCache& blocks_;
  const uint32_t group_count_;
  const uint32_t flex_log_;

  mutable absl::Mutex mu_;
  bool loaded_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<GroupState> groups_ ABSL_GUARDED_BY(mu_);
  std::vector<FlexState> flex_ ABSL_GUARDED_BY(mu_);
  uint64_t used_dirs_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Extent> system_zone_ ABSL_GUARDED_BY(mu_);  // sorted, merged
  std::vector<uint8_t> scratch_ ABSL_GUARDED_BY(mu_);     // built bitmaps
  uint32_t topdir_rotor_ ABSL_GUARDED_BY(mu_) = 0;
  // Freed since the last journal commit (DeferReuse), with the id of the
  // transaction that freed them.
  struct FreedRun {
    uint64_t start = 0;
    uint64_t end = 0;
    uint64_t tx = 0;
  };
  bool defer_reuse_ ABSL_GUARDED_BY(mu_) = false;
  std::function<absl::Status()> commit_ ABSL_GUARDED_BY(mu_);
  std::vector<FreedRun> freed_ ABSL_GUARDED_BY(mu_);
  std::vector<uint8_t> busy_scratch_ ABSL_GUARDED_BY(mu_);
  // Blocks [start, end) kept for file `owner`'s logical blocks from
  // `logical` on, oldest first.
  struct Reservation {
    uint64_t start = 0;
    uint64_t end = 0;
    uint32_t owner = 0;
    uint64_t logical = 0;
  };
  std::vector<Reservation> reservations_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ext4

#endif  // E4FS_EXT4_ALLOCATOR_H_
