// The unmount of a sandboxed server. Once sandboxed, the server can neither
// call umount2 (no privileges, no host tree) nor run fusermount3 (no execve),
// so before the sandbox it forks a small watcher that holds nothing of the
// mount (no image, no /dev/fuse) and waits for the server's end: when the
// server exits for any reason (SIGTERM, a failure, kill -9) the watcher
// unmounts the mount point lazily, if it is still this server's FUSE mount.
//
// libfuse's own auto_unmount (fusermount3 staying behind) does the same for
// root, but in libfuse 3.14 it never unmounts an ordinary user's mount: it
// probes the dead mount as root and gets EACCES instead of ENOTCONN.
#ifndef E4FS_FUSE_UNMOUNT_WATCHER_H_
#define E4FS_FUSE_UNMOUNT_WATCHER_H_

#include <string>

#include "absl/status/statusor.h"

namespace e4fs {

// Forks the watcher for the FUSE mount at `mountpoint` (absolute) whose
// source is `source` (the fsname as /proc/mounts shows it). Returns the
// descriptor the server keeps open for as long as it serves; its closing (at
// the server's exit) starts the unmount.
absl::StatusOr<int> StartUnmountWatcher(const std::string& mountpoint,
                                        const std::string& source);

// Tells the watcher that the mount is gone already (the kernel ended the
// session: an unmount), so that it leaves alone whatever is mounted there
// when the server exits -- a new mount of the same image, for one.
void DisarmUnmountWatcher(int watcher);

// Whether /proc/self/mounts lists a FUSE mount (type fuse or fuse.*) at
// `mountpoint` from `source` (both unescaped).
bool IsFuseMountOf(const std::string& mounts_text,
                   const std::string& mountpoint, const std::string& source);

}  // namespace e4fs

#endif  // E4FS_FUSE_UNMOUNT_WATCHER_H_
