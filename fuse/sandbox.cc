#include "fuse/sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace e4fs {
namespace {

absl::Status SystemError(const std::string& what, int error) {
  return absl::Status(
      absl::ErrnoToStatusCode(error),
      absl::StrCat("sandbox: ", what, ": ", std::strerror(error)));
}

// The system calls the serving threads make, and nothing else:
//   - libfuse's request loop: reading requests from /dev/fuse, writing
//     replies (writev), splicing through per-thread pipes (pipe2, fcntl
//     F_SETPIPE_SZ, splice, vmsplice), worker threads (clone with
//     CLONE_THREAD, below), their stacks and exits, semaphores (futex);
//   - the engine: pread/pwrite/fdatasync/fsync on the image, memory, locks
//     (futex), the journal's commit timer (clock reads, sleeps);
//   - logging: writes to stderr and sends on the syslog socket opened before
//     the sandbox;
//   - signals: libfuse's handlers for a clean stop on SIGTERM/SIGINT/SIGHUP,
//     and abort();
//   - what glibc does under the hood of those: rseq and robust futex lists
//     for new threads, getrandom for malloc, fstat for stdio, sched_yield.
constexpr const char* kAllowedCalls[] = {
    // I/O on descriptors already open.
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "preadv",
    "pwritev",
    "preadv2",
    "pwritev2",
    "lseek",
    "close",
    "fcntl",
    "fstat",
    "newfstatat",
    "statx",
    "fdatasync",
    "fsync",
    "poll",
    "ppoll",
    // Zero-copy paths of libfuse.
    "pipe",
    "pipe2",
    "splice",
    "vmsplice",
    "tee",
    // Logging to syslog over the socket connected before the sandbox.
    "sendto",
    "sendmsg",
    // Memory.
    "mmap",
    "munmap",
    "mprotect",
    "madvise",
    "brk",
    "mremap",
    // Threads and their synchronisation.
    "futex",
    "set_robust_list",
    "get_robust_list",
    "rseq",
    "set_tid_address",
    "sched_yield",
    "sched_getaffinity",
    "sched_getparam",
    "sched_getscheduler",
    "gettid",
    "exit",
    // Time: the commit timer and timestamps.
    "clock_gettime",
    "clock_getres",
    "clock_nanosleep",
    "nanosleep",
    "gettimeofday",
    "time",
    // Signals: libfuse's shutdown handlers, abort().
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sigaltstack",
    "restart_syscall",
    // Identity reads and the process's end.
    "getpid",
    "getppid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getresuid",
    "getresgid",
    "exit_group",
    "getrandom",
};

// The descriptor a refused call is reported on (set once, before the filter
// is loaded; read from the signal handler).
int g_report_fd = -1;

// Set once the filter is loaded.
bool g_sandboxed = false;

// Appends the decimal form of `value` to `out` (async-signal-safe).
char* AppendNumber(char* out, long value) {
  char digits[24];
  int n = 0;
  unsigned long v = value < 0 ? 0UL - static_cast<unsigned long>(value)
                              : static_cast<unsigned long>(value);
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0 && n < 24);
  if (value < 0) *out++ = '-';
  while (n > 0) *out++ = digits[--n];
  return out;
}

// SIGSYS from the filter: report the call and make it fail with EPERM. Only
// async-signal-safe work here.
void OnRefusedCall(int, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  if (g_report_fd >= 0) {
    char line[96];
    const char prefix[] = "e4fs: sandbox refused system call ";
    char* p = line;
    std::memcpy(p, prefix, sizeof(prefix) - 1);
    p += sizeof(prefix) - 1;
    p = AppendNumber(p, info->si_syscall);
    *p++ = '\n';
    ssize_t ignored = write(g_report_fd, line, static_cast<size_t>(p - line));
    (void)ignored;
  }
  auto* uc = static_cast<ucontext_t*>(context);
#if defined(__x86_64__)
  uc->uc_mcontext.gregs[REG_RAX] = -EPERM;
#elif defined(__aarch64__)
  uc->uc_mcontext.regs[0] = static_cast<unsigned long long>(-EPERM);
#else
#error "set the system call's return register for this architecture"
#endif
  errno = saved_errno;
}

// Fails unless this process has exactly one thread.
absl::Status CheckSingleThreaded() {
  DIR* tasks = opendir("/proc/self/task");
  if (tasks == nullptr) return SystemError("/proc/self/task", errno);
  int count = 0;
  while (dirent* entry = readdir(tasks)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(tasks);
  if (count != 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("sandbox: must be entered with one thread, not ", count));
  }
  return absl::OkStatus();
}

// Closes every descriptor but 0-2 and `keep`.
absl::Status CloseOtherDescriptors(std::vector<int> keep) {
  keep.push_back(0);
  keep.push_back(1);
  keep.push_back(2);
  std::sort(keep.begin(), keep.end());
  keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
  unsigned next = 0;
  for (int fd : keep) {
    if (fd < 0) continue;
    const unsigned kept = static_cast<unsigned>(fd);
    if (kept > next && syscall(SYS_close_range, next, kept - 1, 0U) != 0) {
      return SystemError("close_range", errno);
    }
    next = kept + 1;
  }
  if (syscall(SYS_close_range, next, ~0U, 0U) != 0) {
    return SystemError("close_range", errno);
  }
  return absl::OkStatus();
}

// Moves the process into a private mount namespace whose root is an empty,
// read-only tmpfs; the host's tree (with this mount's own FUSE mount, which
// must not be kept alive by the copy) is detached.
absl::Status LeaveHostTree(bool as_root) {
  const int flags = as_root ? CLONE_NEWNS : (CLONE_NEWUSER | CLONE_NEWNS);
  if (unshare(flags) != 0) {
    return SystemError(
        as_root ? "unshare(CLONE_NEWNS)" : "unshare(CLONE_NEWUSER|CLONE_NEWNS)",
        errno);
  }
  // Nothing done below may propagate back to the host's namespace.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return SystemError("making mounts private", errno);
  }
  // /proc is a directory every Linux system has and never this server's own
  // FUSE mount point (resolving that would wait for a request loop that is
  // not running yet).
  const char* const kScratch = "/proc";
  if (mount("e4fs-sandbox", kScratch, "tmpfs",
            MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY,
            "size=4k,nr_inodes=2,mode=0555") != 0) {
    return SystemError("mounting an empty tmpfs", errno);
  }
  if (chdir(kScratch) != 0) return SystemError("chdir", errno);
  // pivot_root(".", "."): the old root ends up stacked on the new one, and
  // is then detached.
  if (syscall(SYS_pivot_root, ".", ".") != 0) {
    return SystemError("pivot_root", errno);
  }
  if (umount2(".", MNT_DETACH) != 0) {
    return SystemError("detaching the host's tree", errno);
  }
  if (chdir("/") != 0) return SystemError("chdir /", errno);
  return absl::OkStatus();
}

absl::Status SwitchUser(uid_t uid, gid_t gid) {
  if (setgroups(0, nullptr) != 0) return SystemError("setgroups", errno);
  if (setresgid(gid, gid, gid) != 0) return SystemError("setresgid", errno);
  if (setresuid(uid, uid, uid) != 0) return SystemError("setresuid", errno);
  return absl::OkStatus();
}

// Empties the bounding set and the ambient set. Needs CAP_SETPCAP, so it
// comes before the user switch.
absl::Status DropBoundingSet() {
  for (int cap = 0; cap < 64; ++cap) {
    if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0) break;  // past the last
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      return SystemError("dropping the capability bounding set", errno);
    }
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 &&
      errno != EINVAL) {  // EINVAL: a kernel without ambient capabilities
    return SystemError("clearing ambient capabilities", errno);
  }
  return absl::OkStatus();
}

// Empties the effective, permitted and inheritable sets (a user switch has
// emptied them already; a user namespace has filled them).
absl::Status ClearCapabilities() {
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  header.pid = 0;
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capset, &header, data) != 0) {
    return SystemError("capset", errno);
  }
  return absl::OkStatus();
}

absl::Status InstallReporter(int report_fd) {
  g_report_fd = report_fd;
  struct sigaction action {};
  action.sa_sigaction = OnRefusedCall;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  if (sigaction(SIGSYS, &action, nullptr) != 0) {
    return SystemError("sigaction(SIGSYS)", errno);
  }
  sigset_t sys;
  sigemptyset(&sys);
  sigaddset(&sys, SIGSYS);
  pthread_sigmask(SIG_UNBLOCK, &sys, nullptr);
  return absl::OkStatus();
}

absl::Status LoadFilter() {
  // Default: trap into OnRefusedCall, which reports and fails the call.
  scmp_filter_ctx filter = seccomp_init(SCMP_ACT_TRAP);
  if (filter == nullptr) {
    return absl::InternalError("sandbox: seccomp_init failed");
  }
  auto check = [&](int rc, const char* what) -> absl::Status {
    if (rc == 0) return absl::OkStatus();
    seccomp_release(filter);
    return SystemError(what, -rc);
  };
  for (const char* name : kAllowedCalls) {
    const int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // not a call on this architecture
    absl::Status status =
        check(seccomp_rule_add(filter, SCMP_ACT_ALLOW, nr, 0), name);
    if (!status.ok()) return status;
  }
  // Opening files: the root is empty, so the honest answer is ENOENT, given
  // without a line of our own (the kernel's audit log still records it).
  // libfuse probes /proc/sys/fs/pipe-max-size before growing a splice pipe
  // (and copies instead), glibc's malloc /proc/sys/vm/overcommit_memory.
  for (const char* name : {"open", "openat", "openat2"}) {
    const int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;
    absl::Status status =
        check(seccomp_rule_add(filter, SCMP_ACT_ERRNO(ENOENT), nr, 0), name);
    if (!status.ok()) return status;
  }
  // New threads, never new processes: glibc tries clone3 first (its flags
  // sit behind a pointer the filter cannot read), so clone3 answers ENOSYS
  // and glibc falls back to clone, allowed only with CLONE_THREAD.
  absl::Status status = check(
      seccomp_rule_add(filter, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0),
      "clone3");
  if (!status.ok()) return status;
  status = check(
      seccomp_rule_add(filter, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                       SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD)),
      "clone");
  if (!status.ok()) return status;
  // Signals only to this process's own threads (abort(), pthread_kill).
  const scmp_datum_t self = static_cast<scmp_datum_t>(getpid());
  status = check(seccomp_rule_add(filter, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                                  SCMP_A0(SCMP_CMP_EQ, self)),
                 "tgkill");
  if (!status.ok()) return status;
  status = check(seccomp_rule_add(filter, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1,
                                  SCMP_A0(SCMP_CMP_EQ, self)),
                 "kill");
  if (!status.ok()) return status;
  // A future thread gets the filter too; the kernel logs what it refuses.
  status = check(seccomp_attr_set(filter, SCMP_FLTATR_CTL_TSYNC, 1), "tsync");
  if (!status.ok()) return status;
  status = check(seccomp_attr_set(filter, SCMP_FLTATR_CTL_LOG, 1), "log");
  if (!status.ok()) return status;
  status = check(seccomp_load(filter), "seccomp_load");
  if (!status.ok()) return status;
  seccomp_release(filter);
  g_sandboxed = true;
  return absl::OkStatus();
}

}  // namespace

#if defined(__SANITIZE_ADDRESS__)
#define E4FS_LEAK_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define E4FS_LEAK_SANITIZER 1
#endif
#endif
#ifdef E4FS_LEAK_SANITIZER
// LeakSanitizer's check at exit stops the world through a ptrace'ing child
// process, which the sandbox refuses (and the refusal kills the process):
// sanitizer builds skip the leak check once sandboxed.
extern "C" int __lsan_is_turned_off() { return g_sandboxed ? 1 : 0; }
#endif

std::vector<int> OpenDescriptors() {
  std::vector<int> fds;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return fds;
  const int own = dirfd(dir);
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    const int fd = std::atoi(entry->d_name);
    if (fd != own) fds.push_back(fd);
  }
  closedir(dir);
  std::sort(fds.begin(), fds.end());
  return fds;
}

absl::StatusOr<Sandbox> Sandbox::Prepare(const SandboxConfig& config) {
  Sandbox sandbox;
  sandbox.config_ = config;
  if (geteuid() == 0) {
    errno = 0;
    const passwd* entry = getpwnam(config.user.c_str());
    if (entry == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("sandbox: no user named '", config.user, "'"));
    }
    if (entry->pw_uid == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sandbox: user '", config.user, "' is root; name another user"));
    }
    sandbox.switch_user_ = true;
    sandbox.uid_ = entry->pw_uid;
    sandbox.gid_ = entry->pw_gid;
  } else {
    sandbox.uid_ = geteuid();
    sandbox.gid_ = getegid();
  }
  // Load the time zone while /etc/localtime is reachable (syslog stamps).
  tzset();
  return sandbox;
}

absl::Status Sandbox::Enter(const std::vector<int>& keep_fds) const {
  absl::Status status = CheckSingleThreaded();
  if (!status.ok()) return status;
  status = CloseOtherDescriptors(keep_fds);
  if (!status.ok()) return status;
  status = LeaveHostTree(/*as_root=*/geteuid() == 0);
  if (!status.ok()) return status;
  status = DropBoundingSet();
  if (!status.ok()) return status;
  if (switch_user_) {
    status = SwitchUser(uid_, gid_);
    if (!status.ok()) return status;
  }
  status = ClearCapabilities();
  if (!status.ok()) return status;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return SystemError("no_new_privs", errno);
  }
  status = InstallReporter(config_.report_fd);
  if (!status.ok()) return status;
  return LoadFilter();
}

}  // namespace e4fs
