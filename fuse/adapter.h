// The low-level FUSE adapter: a fuse_lowlevel_ops table whose requests are
// answered by an ext4::Filesystem.
//
// The FUSE node id is the ext4 inode number, except that the kernel's root
// (FUSE_ROOT_ID, 1) stands for ext4's root (inode 2); inode 1, the bad-blocks
// inode, is never handed out. Every reply that hands out a node id (lookup,
// readdirplus, create, mknod, mkdir, symlink, link, tmpfile) pins the inode in
// the engine once; forget unpins by the kernel's lookup count. Every open
// that succeeds (open, create, tmpfile) is one OpenFile, every release one
// Release, so an unlinked file lives until its last close.
//
// Set-user-ID and set-group-ID bits: the kernel clears them itself
// (FUSE_CAP_HANDLE_KILLPRIV is off), by a setattr carrying the new mode on
// write, truncate and chown; only open(O_TRUNC), which the kernel leaves to
// the server (atomic O_TRUNC), is handled here.
#ifndef E4FS_FUSE_ADAPTER_H_
#define E4FS_FUSE_ADAPTER_H_

#include <fuse_lowlevel.h>

#include <atomic>
#include <cstdint>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "ext4/filesystem.h"
#include "fuse/readahead_window.h"

namespace e4fs {

struct AdapterOptions {
  // Kernel cache lifetimes in seconds; a negative_timeout of 0 answers
  // absent names with a plain ENOENT that the kernel does not cache.
  double entry_timeout = 86400;
  double attr_timeout = 86400;
  double negative_timeout = 86400;
  // Ask the kernel to enforce POSIX ACLs (implies default_permissions).
  bool posix_acl = false;
  // The kernel checks permissions (default_permissions): setattr is then
  // applied as asked, the kernel having done the owner and group checks and
  // the set-group-ID clearing on chmod.
  bool default_permissions = false;
  // Every caller acts as root (uid 0, gid 0): no permission checks in the
  // engine, and new inodes belong to root.
  bool fakeroot = false;
  // On a read-write mount, let the kernel cache writes and send them later
  // (FUSE_CAP_WRITEBACK_CACHE). Safe because this server is the only writer
  // of the image; the kernel then keeps sizes and mtimes of open files.
  bool writeback_cache = true;
  // The max_read= the mount was given (libfuse insists the INIT reply
  // repeats it); 0 leaves libfuse's value.
  unsigned max_read = 0;
};

class Adapter {
 public:
  Adapter(ext4::Filesystem& fs, const AdapterOptions& options);
  Adapter(const Adapter&) = delete;
  Adapter& operator=(const Adapter&) = delete;

  // The operations table; pass this Adapter as fuse_session_new()'s userdata.
  static const fuse_lowlevel_ops& Operations();

  // Node id <-> inode number.
  static ext4::InodeNumber ToInode(fuse_ino_t node) {
    return node == FUSE_ROOT_ID ? ext4::kRootInode
                                : static_cast<ext4::InodeNumber>(node);
  }
  static fuse_ino_t ToNode(ext4::InodeNumber ino) {
    return ino == ext4::kRootInode ? FUSE_ROOT_ID : fuse_ino_t{ino};
  }

  // Errors worth an operator's attention (corruption, I/O) go to syslog
  // instead of stderr once the server has left the terminal.
  void set_log_to_syslog(bool on) { log_to_syslog_.store(on); }

  ext4::Filesystem& fs() { return fs_; }
  // The session, for notifications to the kernel (none before it is set).
  void set_session(fuse_session* se) { session_.store(se); }
  fuse_session* session() const { return session_.load(); }
  // Widened at the first open or read (see readahead_window.h).
  ReadaheadWindow& readahead_window() { return readahead_window_; }
  const AdapterOptions& options() const { return options_; }
  bool read_only() const { return read_only_; }

  // Replies to `req` with the errno of `status`, logging corruption and I/O
  // errors with the inode and the operation.
  void ReplyError(fuse_req_t req, const absl::Status& status,
                  ext4::InodeNumber ino, std::string_view op);
  // Logs one line about `ino` (about the filesystem when `ino` is 0).
  void Log(ext4::InodeNumber ino, std::string_view op, std::string_view what);

  // Whether the kernel agreed to cache writes (set at init).
  bool writeback_cache() const { return writeback_.load(); }
  void set_writeback_cache(bool on) { writeback_.store(on); }
  // The kernel takes ENOSYS for an opendir as success without state.
  void set_opendir_optional(bool on) { opendir_optional_.store(on); }
  bool opendir_optional() const { return opendir_optional_.load(); }

  // Open files with write access, counted while the writeback cache is on:
  // the kernel may then hold data of `ino` that the engine has not seen yet
  // (it writes it all back at the latest on the last release).
  void NoteOpen(ext4::InodeNumber ino, int flags);
  void NoteRelease(ext4::InodeNumber ino, int flags);
  bool MayHaveUnwrittenData(ext4::InodeNumber ino);

  // Orders the replies that carry attributes (lookup, getattr, readdirplus:
  // shared) after the changes that make cached attributes of other inodes
  // stale (create, link, unlink, rename...: exclusive), each held from the
  // engine call through the reply. The kernel drops a directory's cached
  // attributes when a change in it is answered, but takes a getattr answer
  // computed before that change and arriving after it as current, and
  // keeps it for the whole attribute timeout.
  absl::Mutex& reply_order() { return reply_order_; }

  // Set when writing everything back at unmount failed.
  bool final_sync_failed() const { return final_sync_failed_.load(); }
  void set_final_sync_failed() { final_sync_failed_.store(true); }

 private:
  ext4::Filesystem& fs_;
  const AdapterOptions options_;
  const bool read_only_;
  std::atomic<bool> log_to_syslog_{false};
  std::atomic<fuse_session*> session_{nullptr};
  ReadaheadWindow readahead_window_;
  std::atomic<bool> writeback_{false};
  std::atomic<bool> opendir_optional_{false};
  std::atomic<bool> final_sync_failed_{false};
  absl::Mutex reply_order_;
  absl::Mutex writers_mu_;
  absl::flat_hash_map<ext4::InodeNumber, uint32_t> writers_
      ABSL_GUARDED_BY(writers_mu_);
};

}  // namespace e4fs

#endif  // E4FS_FUSE_ADAPTER_H_
