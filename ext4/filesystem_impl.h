// The engine behind the public Filesystem API: superblock and group
// descriptors, the in-core inode cache, and the per-operation logic that ties
// the format parsers, file maps, directories and xattrs together.
#ifndef E4FS_EXT4_FILESYSTEM_IMPL_H_
#define E4FS_EXT4_FILESYSTEM_IMPL_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "cache/ref_cache.h"
#include "ext4/allocator.h"
#include "ext4/directory.h"
#include "ext4/directory_writer.h"
#include "ext4/file_blocks.h"
#include "ext4/file_map.h"
#include "ext4/filesystem.h"
#include "ext4/format/group_descriptor.h"
#include "ext4/format/inode.h"
#include "ext4/format/superblock.h"
#include "ext4/format/xattr.h"
#include "ext4/io/block_cache.h"
#include "ext4/journal/journal_writer.h"
#include "ext4/journal/log_map.h"
#include "ext4/mmp.h"
#include "ext4/transaction.h"

namespace ext4 {

// An inode as the engine keeps it in core.
struct InCoreInode {
  InodeNumber ino = 0;
  format::Inode inode;
  std::vector<uint8_t> raw;    // the on-disk bytes (in-inode xattrs live here)
  uint32_t checksum_seed = 0;  // for extent, directory and htree checksums
};

class FilesystemImpl final : public Filesystem {
 public:
  FilesystemImpl(std::unique_ptr<io::BlockDevice> device,
                 const format::Superblock& superblock,
                 const MountOptions& options, bool read_only);
  ~FilesystemImpl() override;

  absl::Status Initialize();

  // Replays the journal of `device` (whose superblock is `sb`) before the
  // mount reads anything: in place for a read-write mount (the journal and
  // the recovery flag cleared), in memory for a read-only one (the device
  // returned reads the replayed blocks; the image is untouched).
  // filesystem_journal.cc.
  static absl::StatusOr<std::unique_ptr<io::BlockDevice>> Replay(
      std::unique_ptr<io::BlockDevice> device, const format::Superblock& sb,
      bool read_only);

  bool read_only() const override { return CannotWrite(); }
  std::string Describe() const override;
  void StartBackgroundWork() override;
  // Takes over the MMP claim made before the mount: updated from
  // StartBackgroundWork() on, released (marked clean) at destruction.
  void AdoptMultiMountProtection(std::unique_ptr<MultiMountProtection> mmp) {
    mmp_ = std::move(mmp);
  }
  absl::StatusOr<Attributes> GetAttr(InodeNumber ino) override;
  absl::StatusOr<InodeNumber> Lookup(InodeNumber dir,
                                     std::string_view name) override;
  absl::StatusOr<size_t> Read(InodeNumber ino, uint64_t offset,
                              std::span<uint8_t> out) override;
  absl::Status ReadDir(
      InodeNumber dir, uint64_t cookie,
      const std::function<bool(const DirEntry&)>& emit) override;
  absl::StatusOr<std::string> ReadLink(InodeNumber ino) override;
  absl::StatusOr<std::vector<std::string>> ListXattrs(InodeNumber ino) override;
  absl::StatusOr<std::string> GetXattr(InodeNumber ino,
                                       std::string_view name) override;
  absl::StatusOr<FsStats> StatFs() override;
  absl::StatusOr<Attributes> Create(InodeNumber dir, std::string_view name,
                                    uint32_t mode,
                                    const Credentials& who) override;
  absl::StatusOr<Attributes> MakeNode(InodeNumber dir, std::string_view name,
                                      uint32_t mode, uint32_t major,
                                      uint32_t minor,
                                      const Credentials& who) override;
  absl::StatusOr<Attributes> MakeDirectory(InodeNumber dir,
                                           std::string_view name, uint32_t mode,
                                           const Credentials& who) override;
  absl::StatusOr<Attributes> MakeSymlink(InodeNumber dir, std::string_view name,
                                         std::string_view target,
                                         const Credentials& who) override;
  absl::StatusOr<Attributes> CreateUnnamed(InodeNumber dir, uint32_t mode,
                                           const Credentials& who) override;
  absl::StatusOr<Attributes> Link(InodeNumber ino, InodeNumber new_dir,
                                  std::string_view new_name) override;
  absl::Status Unlink(InodeNumber dir, std::string_view name) override;
  absl::Status RemoveDirectory(InodeNumber dir, std::string_view name) override;
  absl::Status Rename(InodeNumber old_dir, std::string_view old_name,
                      InodeNumber new_dir, std::string_view new_name,
                      unsigned flags) override;
  absl::StatusOr<Attributes> SetAttr(InodeNumber ino,
                                     const SetAttrRequest& request,
                                     const Credentials& who) override;
  absl::StatusOr<size_t> Write(InodeNumber ino, uint64_t offset,
                               std::span<const uint8_t> data,
                               const Credentials& who) override;
  absl::StatusOr<size_t> WriteBack(InodeNumber ino, uint64_t offset,
                                   std::span<const uint8_t> data) override;
  absl::Status Allocate(InodeNumber ino, int mode, uint64_t offset,
                        uint64_t length) override;
  absl::StatusOr<uint64_t> Seek(InodeNumber ino, uint64_t offset,
                                int whence) override;
  absl::Status SetXattr(InodeNumber ino, std::string_view name,
                        std::string_view value, int flags) override;
  absl::Status RemoveXattr(InodeNumber ino, std::string_view name) override;
  absl::Status Sync(InodeNumber ino, bool data_only) override;
  absl::Status SyncAll() override;
  absl::Status ReadInPlace(
      InodeNumber ino, uint64_t offset, size_t size,
      absl::FunctionRef<absl::Status(std::span<const ReadPiece>)> consume)
      override;
  absl::Status OpenFile(InodeNumber ino) override;
  absl::Status Release(InodeNumber ino) override;

  void NoteError(const absl::Status& status, InodeNumber ino) override;
  absl::Status Pin(InodeNumber ino, uint64_t count) override;
  void Unpin(InodeNumber ino, uint64_t count) override;
  absl::Status ForgetAll() override;
  size_t InodesInCore() const override { return inodes_.size(); }
  uint64_t MetadataBlockReads() const override {
    return blocks_.device_reads();
  }
  void DropCaches() override;

 private:
  using InodeCache = cache::RefCache<InodeNumber, InCoreInode>;
  using InodeHandle = InodeCache::Handle;

  absl::StatusOr<format::GroupDescriptor> GetGroup(uint32_t group);
  absl::StatusOr<std::unique_ptr<InCoreInode>> LoadInode(InodeNumber ino);
  absl::StatusOr<InodeHandle> GetInode(InodeNumber ino);

  // Reads file bytes through the inode's block map (or its inline data).
  absl::StatusOr<size_t> ReadData(const InCoreInode& node, uint64_t offset,
                                  std::span<uint8_t> out);
  // The inline data of an inode: i_block followed by the system.data xattr.
  absl::StatusOr<std::string> InlineData(const InCoreInode& node);
  absl::StatusOr<std::string> SystemDataXattr(const InCoreInode& node);

  DirectoryContext DirContext(const InCoreInode& node) const;

  // All xattr entries of an inode: in-inode first, then the external block
  // (filesystem_xattrs.cc).
  absl::StatusOr<std::vector<format::XattrEntry>> CollectXattrs(
      const InCoreInode& node);
  // An entry's value, read from its EA inode when it has one.
  absl::StatusOr<std::string> XattrValue(const format::XattrEntry& entry);

  // ---- Errors (filesystem_errors.cc). ----
  // Records corruption (EUCLEAN) and I/O errors once (the status comes back
  // marked) and applies the errors= policy; other statuses pass through.
  absl::Status Report(const absl::Status& status, InodeNumber ino) const;
  void RecordError(const absl::Status& status, InodeNumber ino);
  ErrorsPolicy EffectiveErrorsPolicy() const;
  // Writes the error record into `sb` (state, count, first and last error).
  void ApplyErrorRecord(format::Superblock& sb)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(errors_mu_);
  absl::Status SaveErrorsInPlaceLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(errors_mu_);
  // Brings the in-core superblock up to date with the error record; called
  // by every commit (with mu_ held exclusively).
  void FoldErrors();
  // Writes are refused: read-only mount, or errors=remount-ro after an error.
  bool CannotWrite() const {
    return read_only_ || errors_read_only_.load(std::memory_order_relaxed);
  }

  // ---- The write side (filesystem_write.cc and friends). ----
  // Marks the filesystem in use (not clean) on a read-write mount.
  absl::Status StartWriting() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // ---- The journal (filesystem_journal.cc). ----
  // The journal inode's blocks.
  absl::StatusOr<journal::LogMap> JournalLogMap();
  // Read-write mounts of journaled filesystems: the writer, write-back
  // mode in the block cache, the recovery flag set while mounted.
  absl::Status StartJournal() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Logs and checkpoints every dirty block as one transaction.
  // `release_freed`: blocks freed before may be reused afterwards (false
  // when the allocator asks, as it then does that itself).
  absl::Status CommitJournal(bool release_freed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sets or clears the recovery flag in the on-disk superblock, in place:
  // set before the first transaction goes to the journal, cleared at a
  // clean unmount once the journal is empty.
  absl::Status SetRecoverFlagInPlace(bool on)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After each operation's commit: the size threshold, the timer thread.
  absl::Status AfterCommit() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartCommitThread();
  void StopCommitThread();

  // Orphan recovery at mount (filesystem_orphans.cc): the s_last_orphan
  // chain, then the orphan file's slots.
  absl::Status RecoverOrphans() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RecoverOrphanFile() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Frees an orphan without links, truncates one with links to its size.
  absl::Status FinishOrphan(InodeNumber ino) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Attributes> AttributesOf(const InCoreInode& node) const;
  absl::StatusOr<InodeNumber> LookupLocked(const InCoreInode& dir,
                                           std::string_view name);
  // The inode table block and byte offset of an inode.
  absl::StatusOr<std::pair<uint64_t, uint32_t>> InodeLocation(InodeNumber ino);
  // Serializes the in-core inode into its slot (and refreshes node.raw).
  absl::Status WriteInode(Transaction& tx, InCoreInode& node);
  // Commits the transaction together with the superblock's counters.
  absl::Status Finish(Transaction& tx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<InodeHandle> NewInode(Transaction& tx, InCoreInode& dir,
                                       uint32_t mode, const Credentials& who);
  // ACL inheritance (filesystem_acl.cc): a directory's default ACL in the
  // VFS form ("" when it has none), and what a new inode gets from it.
  absl::StatusOr<std::string> DefaultAcl(const InCoreInode& dir);
  // Sets system.posix_acl_access (VFS form) as the kernel's
  // posix_acl_update_mode does: the mode's permission bits follow the ACL
  // (group bits from the mask), and an ACL the mode says all of is not
  // stored (any stored one goes).
  absl::Status SetAccessAcl(Transaction& tx, InCoreInode& node,
                            std::string_view acl, int flags);
  // chmod with an access ACL (posix_acl_chmod): its owner, mask (or owning
  // group) and other entries take the new permission bits.
  absl::Status ChmodAccessAcl(Transaction& tx, InCoreInode& node);
  absl::Status InheritAcls(Transaction& tx, const std::string& default_acl,
                           InCoreInode& node);
  // Adds an entry for `child` to `dir` (growing or indexing it as needed).
  absl::Status AddLink(Transaction& tx, InCoreInode& dir, std::string_view name,
                       InCoreInode& child);
  absl::Status RemoveLink(Transaction& tx, InCoreInode& dir,
                          std::string_view name);
  // Runs `body` with the directory's blocks as the directory writer sees
  // them (an inline directory first moves into a block).
  absl::Status EditDirectory(
      Transaction& tx, InCoreInode& dir,
      absl::FunctionRef<absl::Status(DirectoryWriteTarget&, DirectoryContext&)>
          body);
  // Drops one link of `node`; frees it when none remain and it is not open,
  // or puts it on the orphan list when it is.
  absl::Status DropLink(Transaction& tx, InCoreInode& node)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status FreeInode(Transaction& tx, InCoreInode& node);
  // Whether an open file or a kernel reference still uses the inode.
  bool Referenced(InodeNumber ino) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Frees ino if it is a kept orphan nobody holds any more.
  absl::Status FreeIfUnreferenced(InodeNumber ino) ABSL_LOCKS_EXCLUDED(mu_);
  // Frees an inode of kept_orphans_ whose last user went (a write
  // operation of its own).
  absl::Status FreeKeptOrphan(InodeNumber ino)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status AddOrphan(Transaction& tx, InCoreInode& node);
  absl::Status RemoveOrphan(Transaction& tx, InCoreInode& node);
  absl::Status Truncate(Transaction& tx, InCoreInode& node, uint64_t size);
  // The largest size `node`, mapped by `blocks`, may have (EFBIG past it).
  uint64_t MaxFileBytes(const InCoreInode& node,
                        const FileBlocks& blocks) const;
  // The block map to change a file's blocks through (extents or indirect).
  std::unique_ptr<FileBlocks> BlocksOf(InCoreInode& node);
  // Whether i_block holds a block map (not a fast symlink's target, device
  // numbers or inline data).
  bool HasBlockMap(const InCoreInode& node) const;
  absl::Status ConvertInlineData(Transaction& tx, InCoreInode& node);
  // Write and WriteBack: `who` is null for a write-back (no time or mode
  // change).
  absl::StatusOr<size_t> WriteFile(InodeNumber ino, uint64_t offset,
                                   std::span<const uint8_t> data,
                                   const Credentials* who);
  absl::StatusOr<size_t> WriteLocked(Transaction& tx, InCoreInode& node,
                                     uint64_t offset,
                                     std::span<const uint8_t> data);
  absl::Status CheckNewName(std::string_view name) const;
  absl::StatusOr<InodeHandle> WritableDirectory(InodeNumber dir);
  // True when `ancestor` is `dir` or one of its parents.
  absl::StatusOr<bool> IsAncestor(InodeNumber ancestor, InodeNumber dir);
  uint64_t GoalFor(const InCoreInode& node) const;

  // One write operation's undo: a failed operation drops its transaction,
  // and the in-core state it touched (inodes, superblock fields, allocator
  // counters) is reloaded from what the disk holds.
  class WriteScope {
   public:
    explicit WriteScope(FilesystemImpl& fs)
        ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs.mu_);
    ~WriteScope();
    WriteScope(const WriteScope&) = delete;
    WriteScope& operator=(const WriteScope&) = delete;

   private:
    FilesystemImpl& fs_;
    format::Superblock saved_;
    uint64_t free_blocks_;
    uint64_t free_inodes_;
  };
  void Rollback(bool reload_allocator) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Timestamp Now() const;
  // Blocks statfs leaves out of f_blocks, as the kernel counts them.
  absl::StatusOr<uint64_t> Overhead();

  std::unique_ptr<io::BlockDevice> device_;
  // Read operations hold it shared, write operations exclusive.
  mutable absl::Mutex mu_;
  format::Superblock sb_;
  const MountOptions options_;
  const bool read_only_;
  io::BlockCache blocks_;
  InodeCache inodes_;
  std::unique_ptr<BitmapAllocator> allocator_;  // read-write mounts only
  // Read-write mounts of journaled filesystems only.
  std::unique_ptr<journal::JournalWriter> journal_;
  std::thread commit_thread_;
  // True until Initialize returns: the commit thread starts with the first
  // request, not during the mount, which a server may follow with a fork.
  bool mounting_ = true;
  struct ErrorRecord {
    uint32_t base_count = 0;  // s_error_count at mount
    uint32_t count = 0;       // errors since
    int64_t first_time = 0, last_time = 0;
    uint32_t first_ino = 0, last_ino = 0;
    uint8_t first_code = 0, last_code = 0;
    bool unsaved = false;  // not yet in sb_
  };
  absl::Mutex errors_mu_;
  ErrorRecord error_record_ ABSL_GUARDED_BY(errors_mu_);
  std::atomic<bool> errors_read_only_{false};
  const uint16_t sb_errors_behaviour_;
  bool recover_flag_on_disk_ = false;
  absl::Mutex timer_mu_;
  bool stop_commits_ ABSL_GUARDED_BY(timer_mu_) = false;
  // Open counts: an unlinked inode lives on until its last release. Their
  // own lock, so that opens and releases never wait for (or hold up) the
  // operations on mu_. Taken after mu_ when both are.
  absl::Mutex opens_mu_;
  absl::flat_hash_map<InodeNumber, uint64_t> open_counts_
      ABSL_GUARDED_BY(opens_mu_);
  // The kernel's lookup counts (Pin/Unpin). Taken after mu_ and opens_mu_
  // when more than one is.
  absl::Mutex lookups_mu_;
  absl::flat_hash_map<InodeNumber, uint64_t> lookups_
      ABSL_GUARDED_BY(lookups_mu_);
  // Unlinked inodes kept on the orphan list because they were open or known
  // to the kernel when their last link went.
  absl::flat_hash_set<InodeNumber> kept_orphans_ ABSL_GUARDED_BY(mu_);
  absl::Mutex overhead_mu_;
  std::optional<uint64_t> overhead_ ABSL_GUARDED_BY(overhead_mu_);
  // The running write operation's bookkeeping (see WriteScope).
  bool in_write_ = false;
  bool committed_ = false;
  std::vector<InodeHandle> touched_;
  std::vector<InodeNumber> created_;
  // Multi-mount protection of a read-write mount (feature mmp). Last, so it
  // is gone before the device.
  std::unique_ptr<MultiMountProtection> mmp_;
};

}  // namespace ext4

#endif  // E4FS_EXT4_FILESYSTEM_IMPL_H_
