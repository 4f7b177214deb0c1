// The server's sandbox: once the mount is established, the process keeps only
// what serving needs and loses the power to do anything else, so that a
// crafted image that takes over the parser cannot reach the host.
//
// Entering the sandbox, in this order:
//   1. every descriptor except the kept ones (/dev/fuse, the image, the log
//      sink, libfuse's auto-unmount socket) and 0-2 is closed;
//   2. the process leaves the host's file tree: a private mount namespace
//      (inside a new user namespace when not started as root) whose root is
//      an empty read-only tmpfs, the host's tree detached;
//   3. started as root, it switches to an unprivileged user (groups cleared);
//   4. every capability is dropped (effective, permitted, inheritable,
//      ambient and the bounding set);
//   5. no_new_privs is set;
//   6. a seccomp allow-list (libseccomp) admits exactly the system calls the
//      serving threads make (see sandbox.cc). Any other call is refused with
//      EPERM and reported: one line on the report descriptor, and the kernel's
//      audit log. New processes cannot be made (clone only with CLONE_THREAD).
//
// Entering must happen while the process has one thread (unshare of a user
// namespace requires it, and the filter then covers every later thread).
#ifndef E4FS_FUSE_SANDBOX_H_
#define E4FS_FUSE_SANDBOX_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace e4fs {

// The descriptors this process has open now, in increasing order.
std::vector<int> OpenDescriptors();

struct SandboxConfig {
  // The account a server started as root switches to.
  std::string user = "nobody";
  // Where a refused system call is reported (one line); -1 for nowhere.
  int report_fd = 2;
};

class Sandbox {
 public:
  // Resolves everything that needs the host's files (the user's ids) while
  // they are still reachable. Fails for an unknown user.
  static absl::StatusOr<Sandbox> Prepare(const SandboxConfig& config);

  // Enters the sandbox (steps 1-6 above), keeping `keep_fds` (0, 1 and 2
  // are always kept). Irreversible; on an error the process may be partly
  // confined and must not go on serving.
  absl::Status Enter(const std::vector<int>& keep_fds) const;

  // Whether Enter() switches user (started as root).
  bool switches_user() const { return switch_user_; }
  uid_t uid() const { return uid_; }
  gid_t gid() const { return gid_; }

 private:
  Sandbox() = default;

  SandboxConfig config_;
  bool switch_user_ = false;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
};

}  // namespace e4fs

#endif  // E4FS_FUSE_SANDBOX_H_
