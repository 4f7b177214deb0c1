// The public, inode-based API of the engine. Tools, the FUSE adapter and any
// program that embeds e4fs use only this header (and block_device.h).
// Nothing here knows FUSE; errors carry the kernel's errno (ErrnoOf()).
#ifndef E4FS_EXT4_FILESYSTEM_H_
#define E4FS_EXT4_FILESYSTEM_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ext4/errno_status.h"
#include "ext4/io/block_device.h"

namespace ext4 {

using InodeNumber = uint32_t;
inline constexpr InodeNumber kRootInode = 2;

struct Timestamp {
  int64_t sec = 0;
  uint32_t nsec = 0;
};

// POSIX file type bits as in st_mode (S_IFREG...) are used throughout.
struct Attributes {
  InodeNumber ino = 0;
  uint32_t mode = 0;  // type and permission bits, as st_mode
  uint32_t nlink = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;
  uint64_t blocks = 0;  // in 512-byte units, as st_blocks
  uint32_t rdev_major = 0;
  uint32_t rdev_minor = 0;
  uint32_t generation = 0;
  uint32_t block_size = 0;  // preferred I/O size, as st_blksize
  Timestamp atime, mtime, ctime, crtime;
};

struct DirEntry {
  std::string name;
  InodeNumber ino = 0;
  uint32_t type = 0;  // S_IFMT bits of the entry's file type, 0 if unknown
  // The cookie that resumes the listing just after this entry. Stable across
  // calls for as long as the directory is not changed.
  uint64_t next_cookie = 0;
};

struct FsStats {
  uint32_t block_size = 0;
  uint64_t blocks = 0;
  uint64_t free_blocks = 0;
  uint64_t available_blocks = 0;  // free minus the root reserve
  uint64_t inodes = 0;
  uint64_t free_inodes = 0;
  uint32_t name_max = 255;
  uint64_t fsid = 0;
};

// Who asks: the owner of new inodes, the setgid rules, and the root reserve.
struct Credentials {
  uint32_t uid = 0;
  uint32_t gid = 0;
  // Supplementary groups (setgid clearing on chmod checks membership).
  std::vector<uint32_t> groups;
  // Applied to the mode of a new inode whose directory has no default ACL.
  uint32_t umask = 0;
};

// A setattr request: only the fields that are set change.
struct SetAttrRequest {
  std::optional<uint32_t> mode;  // permission bits (07777) only
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  std::optional<uint64_t> size;
  // Times: a value, or now (the engine's clock) when *_now is set.
  std::optional<Timestamp> atime;
  std::optional<Timestamp> mtime;
  bool atime_now = false;
  bool mtime_now = false;
  std::optional<Timestamp> ctime;
};

// fallocate modes, as in <linux/falloc.h>.
inline constexpr int kFallocKeepSize = 0x01;
inline constexpr int kFallocPunchHole = 0x02;
inline constexpr int kFallocZeroRange = 0x10;

// rename flags, as in <linux/fs.h>.
inline constexpr unsigned kRenameNoReplace = 1;
inline constexpr unsigned kRenameExchange = 2;

// setxattr flags, as in <sys/xattr.h>.
inline constexpr int kXattrCreate = 1;
inline constexpr int kXattrReplace = 2;

enum class ErrorsPolicy { kDefault, kContinue, kRemountReadOnly, kPanic };

struct MountOptions {
  bool read_only = true;
  // Mount although the journal needs recovery (the image is read as it is).
  bool no_recovery = false;
  ErrorsPolicy errors = ErrorsPolicy::kDefault;
  // Soft limit on in-core inodes that no one pins; the cache grows past it
  // only while everything in it is in use. The kernel keeps the attributes
  // of what it looked up itself; this cache serves the engine's own work.
  size_t inode_cache_limit = 16384;
  // Soft limit on cached metadata blocks (32 MiB of 4 KiB blocks: the
  // inode tables and index of a 100,000-entry directory). A miss costs a
  // read from the host's page cache. With the inode cache, what bounds the
  // server's memory: 117 MiB at the peak of a walk of 1,000,000 files,
  // most of it the lookup count of every inode the kernel holds.
  size_t block_cache_limit = 8192;
  // Journaled read-write mounts commit the running transaction this often
  // (and on fsync, at unmount, and when it grows large); 0: only then.
  int commit_interval_seconds = 5;
  // Open starts the engine's own threads that must run from the mount on
  // (the MMP updater) unless this is set; a server that forks into the
  // background or enters a sandbox after Open sets it and calls
  // StartBackgroundWork() once it is the process that serves.
  bool defer_background_work = false;
};

class Filesystem {
 public:
  // Mounts the filesystem on `device`. Errors: EINVAL for a device that does
  // not hold ext2/3/4, EOPNOTSUPP naming an unsupported INCOMPAT feature,
  // EROFS for a read-write mount of an image with unknown RO_COMPAT features,
  // EUCLEAN for corrupt metadata, EAGAIN when the journal needs recovery and
  // recovery is not possible or not allowed.
  static absl::StatusOr<std::unique_ptr<Filesystem>> Open(
      std::unique_ptr<io::BlockDevice> device, const MountOptions& options);

  virtual ~Filesystem() = default;

  // Whether changes are refused: a read-only mount, or one that an error
  // under errors=remount-ro has made read-only (this can turn true while
  // mounted).
  virtual bool read_only() const = 0;
  // See MountOptions::defer_background_work. Called again, does nothing.
  virtual void StartBackgroundWork() {}
  // A one-line description: label, UUID, features.
  virtual std::string Describe() const = 0;

  virtual absl::StatusOr<Attributes> GetAttr(InodeNumber ino) = 0;
  // ENOENT when absent, ENOTDIR when `dir` is not a directory, ENAMETOOLONG.
  virtual absl::StatusOr<InodeNumber> Lookup(InodeNumber dir,
                                             std::string_view name) = 0;
  // Reads up to out.size() bytes at `offset`; fewer at end of file. Holes and
  // unwritten extents read as zeros. EISDIR for a directory.
  virtual absl::StatusOr<size_t> Read(InodeNumber ino, uint64_t offset,
                                      std::span<uint8_t> out) = 0;
  // Where up to `size` bytes at `offset` lie: pieces of a descriptor (the
  // image's) or zeros (fd -1), fewer bytes at end of file. `consume` runs
  // with the blocks held (no write may free and reuse them meanwhile): a
  // FUSE server replies with the pieces spliced, not copied. EOPNOTSUPP
  // when the data is not in a descriptor as it is (inline data, a device
  // without one): use Read.
  struct ReadPiece {
    int fd = -1;
    uint64_t offset = 0;
    size_t length = 0;
  };
  virtual absl::Status ReadInPlace(
      InodeNumber ino, uint64_t offset, size_t size,
      absl::FunctionRef<absl::Status(std::span<const ReadPiece>)> consume);
  // Lists entries from `cookie` (0 = the start, "." and ".." included),
  // calling `emit` for each until it returns false or the directory ends.
  virtual absl::Status ReadDir(
      InodeNumber dir, uint64_t cookie,
      const std::function<bool(const DirEntry&)>& emit) = 0;
  // EINVAL when `ino` is not a symlink.
  virtual absl::StatusOr<std::string> ReadLink(InodeNumber ino) = 0;
  // Full names ("user.foo", "security.selinux", "system.posix_acl_access").
  virtual absl::StatusOr<std::vector<std::string>> ListXattrs(
      InodeNumber ino) = 0;
  // ENODATA when absent. POSIX ACLs come back in the xattr format the VFS
  // uses, converted from ext4's on-disk format.
  virtual absl::StatusOr<std::string> GetXattr(InodeNumber ino,
                                               std::string_view name) = 0;
  virtual absl::StatusOr<FsStats> StatFs() = 0;

  // ---- The write side. On a read-only mount every call answers EROFS. ----
  // Each returns the new inode's attributes; EEXIST, ENOENT, ENOTDIR,
  // ENAMETOOLONG, ENOSPC, EMLINK as the kernel's ext4 does.
  virtual absl::StatusOr<Attributes> Create(InodeNumber dir,
                                            std::string_view name,
                                            uint32_t mode,
                                            const Credentials& who);
  // Any file type by mode (fifo, socket, char, block, regular).
  virtual absl::StatusOr<Attributes> MakeNode(InodeNumber dir,
                                              std::string_view name,
                                              uint32_t mode, uint32_t major,
                                              uint32_t minor,
                                              const Credentials& who);
  virtual absl::StatusOr<Attributes> MakeDirectory(InodeNumber dir,
                                                   std::string_view name,
                                                   uint32_t mode,
                                                   const Credentials& who);
  virtual absl::StatusOr<Attributes> MakeSymlink(InodeNumber dir,
                                                 std::string_view name,
                                                 std::string_view target,
                                                 const Credentials& who);
  // An unnamed regular file on the orphan list (O_TMPFILE): linked in later
  // with Link(), or gone at its last Release().
  virtual absl::StatusOr<Attributes> CreateUnnamed(InodeNumber dir,
                                                   uint32_t mode,
                                                   const Credentials& who);
  virtual absl::StatusOr<Attributes> Link(InodeNumber ino, InodeNumber new_dir,
                                          std::string_view new_name);
  virtual absl::Status Unlink(InodeNumber dir, std::string_view name);
  virtual absl::Status RemoveDirectory(InodeNumber dir, std::string_view name);
  virtual absl::Status Rename(InodeNumber old_dir, std::string_view old_name,
                              InodeNumber new_dir, std::string_view new_name,
                              unsigned flags);
  virtual absl::StatusOr<Attributes> SetAttr(InodeNumber ino,
                                             const SetAttrRequest& request,
                                             const Credentials& who);
  // Writes at `offset` (extending the file as needed); clears setuid and
  // setgid as the kernel does for a non-root writer.
  virtual absl::StatusOr<size_t> Write(InodeNumber ino, uint64_t offset,
                                       std::span<const uint8_t> data,
                                       const Credentials& who);
  // Writes data a page cache wrote back (FUSE's writeback cache). Its owner
  // keeps the file's times and sends them with SetAttr (the kernel does,
  // ordered after the data only per request, not across the server's
  // threads), and it cleared setuid and setgid at write(2) time: neither
  // changes here, or the times stored would be a later moment than the
  // ones the writer saw.
  virtual absl::StatusOr<size_t> WriteBack(InodeNumber ino, uint64_t offset,
                                           std::span<const uint8_t> data);
  virtual absl::Status Allocate(InodeNumber ino, int mode, uint64_t offset,
                                uint64_t length);
  // SEEK_DATA / SEEK_HOLE (ENXIO past the end), as lseek(2).
  virtual absl::StatusOr<uint64_t> Seek(InodeNumber ino, uint64_t offset,
                                        int whence);
  virtual absl::Status SetXattr(InodeNumber ino, std::string_view name,
                                std::string_view value, int flags);
  virtual absl::Status RemoveXattr(InodeNumber ino, std::string_view name);
  // Makes the inode's data and metadata durable (data only, plus what is
  // needed to read it back, with `data_only`).
  virtual absl::Status Sync(InodeNumber ino, bool data_only);
  // Makes everything durable (syncfs, unmount).
  virtual absl::Status SyncAll();
  // Open files: an open pin keeps an unlinked inode alive (on the orphan
  // list) until the last Release.
  virtual absl::Status OpenFile(InodeNumber ino);
  virtual absl::Status Release(InodeNumber ino);

  // A caller that met EUCLEAN or EIO from any call may pass the status on:
  // the engine records it in the superblock (once) and applies errors=.
  virtual void NoteError(const absl::Status& status, InodeNumber ino) {
    (void)status;
    (void)ino;
  }

  // Lifetime pins: the adapter pins on every reply that hands out a node id
  // and unpins on forget. Pin checks that the inode loads; the engine keeps
  // in-core inodes within its cache limit whatever the kernel remembers.
  // An unlinked inode stays allocated (on the orphan list) while pinned, so
  // its number is never handed out again while the kernel may still send
  // requests for it; the last unpin (or release) frees it.
  virtual absl::Status Pin(InodeNumber ino, uint64_t count = 1) = 0;
  virtual void Unpin(InodeNumber ino, uint64_t count) = 0;
  // The kernel is gone (FUSE's destroy): every pin and open count is
  // dropped, and the unlinked inodes they kept are freed.
  virtual absl::Status ForgetAll();

  // Number of inodes currently in core (for tests and the benchmark).
  virtual size_t InodesInCore() const = 0;
  // Number of metadata block reads that missed the block cache.
  virtual uint64_t MetadataBlockReads() const = 0;
  virtual void DropCaches() = 0;

  // Resolves an absolute or root-relative path ("/a/b", "a/b") without
  // following a final symlink; intermediate symlinks are followed (at most 40).
  absl::StatusOr<InodeNumber> ResolvePath(std::string_view path);
};

}  // namespace ext4

#endif  // E4FS_EXT4_FILESYSTEM_H_
