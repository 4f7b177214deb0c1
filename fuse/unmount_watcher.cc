#include "fuse/unmount_watcher.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "fuse/mount_table.h"

namespace e4fs {
namespace {

[[noreturn]] void Watch(int read_end, const std::string& mountpoint,
                        const std::string& source) {
  // Keep nothing of the mount (a copy of /dev/fuse here would keep the
  // connection alive after the server's end): the pipe moves to 3, 0-2 to
  // /dev/null (fusermount3 wants them open), everything else is closed.
  constexpr int kPipe = 3;
  if (read_end != kPipe) {
    if (dup2(read_end, kPipe) < 0) _exit(1);
    close(read_end);
  }
  const int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull >= 0) {
    for (int fd = 0; fd < 3; ++fd) dup2(devnull, fd);
  }
  syscall(SYS_close_range, kPipe + 1, ~0U, 0U);
  // Outlive the server whatever signal ends it (a terminal's ^C reaches the
  // whole process group).
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  prctl(PR_SET_NAME, "e4fs-unmount", 0, 0, 0);
  if (chdir("/") != 0) _exit(1);
  char byte;
  while (true) {
    const ssize_t n = read(kPipe, &byte, 1);
    // The server saw its mount go (DisarmUnmountWatcher): whatever is
    // mounted there by the time it exits is someone else's, even from the
    // same image.
    if (n == 1) _exit(0);
    if (n == 0) break;                   // the server has ended
    if (n < 0 && errno != EINTR) break;  // should not happen: end as well
  }
  if (!IsFuseMountOf(ReadProcText("/proc/self/mounts"), mountpoint, source))
    _exit(0);
  if (geteuid() == 0) {
    _exit(umount2(mountpoint.c_str(), MNT_DETACH) == 0 ? 0 : 1);
  }
  const char* const argv[] = {"fusermount3",      "-u",   "-q", "-z", "--",
                              mountpoint.c_str(), nullptr};
  execvp("fusermount3", const_cast<char* const*>(argv));
  _exit(1);
}

}  // namespace

bool IsFuseMountOf(const std::string& mounts_text,
                   const std::string& mountpoint, const std::string& source) {
  for (absl::string_view line : absl::StrSplit(mounts_text, '\n')) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    if (fields.size() < 3) continue;
    const std::string& type = fields[2];
    if (type != "fuse" && type.rfind("fuse.", 0) != 0) continue;
    if (UnescapeMountField(fields[1]) != mountpoint) continue;
    if (!source.empty() && UnescapeMountField(fields[0]) != source) continue;
    return true;
  }
  return false;
}

void DisarmUnmountWatcher(int watcher) {
  const char byte = 'd';
  while (write(watcher, &byte, 1) < 0 && errno == EINTR) {
  }
}

absl::StatusOr<int> StartUnmountWatcher(const std::string& mountpoint,
                                        const std::string& source) {
  int ends[2];
  if (pipe2(ends, O_CLOEXEC) != 0) {
    return absl::InternalError(
        absl::StrCat("unmount watcher: pipe: ", std::strerror(errno)));
  }
  const pid_t pid = fork();
  if (pid < 0) {
    const int error = errno;
    close(ends[0]);
    close(ends[1]);
    return absl::InternalError(
        absl::StrCat("unmount watcher: fork: ", std::strerror(error)));
  }
  if (pid == 0) {
    close(ends[1]);
    Watch(ends[0], mountpoint, source);
  }
  close(ends[0]);
  // The server never waits for it: let the kernel reap it.
  signal(SIGCHLD, SIG_IGN);
  return ends[1];
}

}  // namespace e4fs
