// The low-level FUSE adapter: a fuse_lowlevel_ops table whose requests are
// answered by an ext4::Filesystem.
//
// The FUSE node id is the ext4 inode number, except that the kernel's root
// (FUSE_ROOT_ID, 1) stands for ext4's root (inode 2); inode 1, the bad-blocks
// inode, is never handed out. Every reply that hands out a node id pins the
// inode in the engine once; forget unpins by the kernel's lookup count.
#ifndef E4FS_FUSE_ADAPTER_H_
#define E4FS_FUSE_ADAPTER_H_

#include <fuse_lowlevel.h>

#include <atomic>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "ext4/filesystem.h"

namespace e4fs {

struct AdapterOptions {
  // Kernel cache lifetimes in seconds; a negative_timeout of 0 answers
  // absent names with a plain ENOENT that the kernel does not cache.
  double entry_timeout = 86400;
  double attr_timeout = 86400;
  double negative_timeout = 86400;
  // Upper bound on the kernel's readahead in bytes; 0 keeps the kernel's.
  unsigned max_readahead = 0;
  // Ask the kernel to enforce POSIX ACLs (implies default_permissions).
  bool posix_acl = false;
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
  const AdapterOptions& options() const { return options_; }
  bool read_only() const { return read_only_; }

  // Replies to `req` with the errno of `status`, logging corruption and I/O
  // errors with the inode and the operation.
  void ReplyError(fuse_req_t req, const absl::Status& status,
                  ext4::InodeNumber ino, std::string_view op);
  // Logs one line about `ino`.
  void Log(ext4::InodeNumber ino, std::string_view op, std::string_view what);

 private:
  ext4::Filesystem& fs_;
  const AdapterOptions options_;
  const bool read_only_;
  std::atomic<bool> log_to_syslog_{false};
};

}  // namespace e4fs

#endif  // E4FS_FUSE_ADAPTER_H_
