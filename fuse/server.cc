#include "fuse/server.h"

#include <fuse_lowlevel.h>
#include <syslog.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "ext4/errno_status.h"
#include "ext4/filesystem.h"
#include "ext4/io/block_device.h"
#include "fuse/adapter.h"
#include "fuse/sandbox.h"
#include "fuse/unmount_watcher.h"

namespace e4fs {
namespace {

// One line naming the image and why it cannot be served.
void ReportImageError(const std::string& image, const absl::Status& status) {
  const std::string message(status.message());
  if (absl::StartsWith(message, image)) {
    std::fprintf(stderr, "%s: %s\n", kProgramName, message.c_str());
  } else {
    std::fprintf(stderr, "%s: %s: %s\n", kProgramName, image.c_str(),
                 message.c_str());
  }
}

// The daemon leaves its working directory, and the path names the mount in
// /proc/mounts: make it absolute (symlinks are kept as given).
std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  if (ec) return path;
  return absolute.lexically_normal().string();
}

// Owns a fuse_session and everything set up on it, undone in reverse order.
class Session {
 public:
  ~Session() {
    if (se_ == nullptr) return;
    if (mounted_ && unmount_at_end_) fuse_session_unmount(se_);
    if (signals_) fuse_remove_signal_handlers(se_);
    fuse_session_destroy(se_);
  }

  bool Create(const std::vector<std::string>& arguments, Adapter* adapter) {
    std::vector<std::string> storage = arguments;
    std::vector<char*> argv;
    for (std::string& arg : storage) argv.push_back(arg.data());
    argv.push_back(nullptr);
    fuse_args args =
        FUSE_ARGS_INIT(static_cast<int>(storage.size()), argv.data());
    se_ = fuse_session_new(&args, &Adapter::Operations(),
                           sizeof(fuse_lowlevel_ops), adapter);
    fuse_opt_free_args(&args);
    if (se_ != nullptr) adapter->set_session(se_);
    return se_ != nullptr;
  }

  bool SetSignalHandlers() {
    signals_ = fuse_set_signal_handlers(se_) == 0;
    return signals_;
  }

  bool Mount(const std::string& mountpoint) {
    mounted_ = fuse_session_mount(se_, mountpoint.c_str()) == 0;
    return mounted_;
  }

  // A sandboxed server leaves the unmount to fusermount3 (auto_unmount).
  void set_unmount_at_end(bool on) { unmount_at_end_ = on; }

  int Loop(const ServerOptions& options) {
    if (options.single_threaded) return fuse_session_loop(se_);
    fuse_loop_config* config = fuse_loop_cfg_create();
    if (config == nullptr) return -ENOMEM;
    fuse_loop_cfg_set_clone_fd(config, options.clone_fd ? 1 : 0);
    if (options.max_threads != 0) {
      fuse_loop_cfg_set_max_threads(config, options.max_threads);
    }
    if (options.max_idle_threads != 0) {
      fuse_loop_cfg_set_idle_threads(config, options.max_idle_threads);
    }
    const int ret = fuse_session_loop_mt(se_, config);
    fuse_loop_cfg_destroy(config);
    return ret;
  }

 private:
  fuse_session* se_ = nullptr;
  bool signals_ = false;
  bool mounted_ = false;
  bool unmount_at_end_ = true;
};

// The mount's source as /proc/mounts shows it: fsname= or the image.
std::string MountSource(const ServerOptions& options) {
  for (const std::string& option : options.fuse_options) {
    if (option.rfind("fsname=", 0) == 0) return option.substr(7);
  }
  return options.image;
}

// A failure after the daemon has left the terminal goes to syslog.
void LogFailure(const ServerOptions& options, const std::string& message) {
  if (options.foreground) {
    std::fprintf(stderr, "%s: %s\n", kProgramName, message.c_str());
  } else {
    syslog(LOG_ERR, "%s", message.c_str());
  }
}

// Keeps the descriptors opened since `inherited` was taken (the image,
// /dev/fuse, fusermount3's socket, syslog's) and enters the sandbox.
absl::Status EnterSandbox(const Sandbox& sandbox,
                          const std::vector<int>& inherited) {
  std::vector<int> keep;
  for (int fd : OpenDescriptors()) {
    if (!std::binary_search(inherited.begin(), inherited.end(), fd)) {
      keep.push_back(fd);
    }
  }
  return sandbox.Enter(keep);
}

bool HasForwardedOption(const ServerOptions& options, const char* option) {
  for (const std::string& o : options.fuse_options) {
    if (o == option) return true;
  }
  return false;
}

}  // namespace

int Serve(ServerOptions options) {
#ifdef NDEBUG
  // Abseil means its lock-order graph for debug builds only, but the system
  // library is built with it on: every lock and unlock then records stacks
  // and edges, a quarter of the server's own time per request. Optimized
  // builds turn it off; the others keep it as a check.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  // The engine's threads start at the session's INIT, in the process that
  // serves, inside the sandbox.
  options.mount.defer_background_work = true;
  // Whatever the caller left open is closed by the sandbox; what is opened
  // from here on (image, /dev/fuse, log) is what serving needs.
  const std::vector<int> inherited = OpenDescriptors();
  std::optional<Sandbox> sandbox;
  if (options.sandbox) {
    SandboxConfig config;
    config.user = options.sandbox_user;
    // Refused calls are reported on stderr while it is the terminal.
    config.report_fd = options.foreground ? 2 : -1;
    absl::StatusOr<Sandbox> prepared = Sandbox::Prepare(config);
    if (!prepared.ok()) {
      std::fprintf(stderr, "%s: %s\n", kProgramName,
                   std::string(prepared.status().message()).c_str());
      return kExitUsage;
    }
    sandbox = *std::move(prepared);
  }
  options.image = AbsolutePath(options.image);
  // Unmounting at the end (on SIGTERM) goes by this path, after the daemon
  // has left its working directory.
  options.mountpoint = AbsolutePath(options.mountpoint);

  absl::StatusOr<std::unique_ptr<ext4::io::BlockDevice>> device =
      ext4::io::OpenFileDevice(options.image, options.mount.read_only,
                               options.offset);
  if (!device.ok()) {
    ReportImageError(options.image, device.status());
    return kExitMountFailed;
  }
  absl::StatusOr<std::unique_ptr<ext4::Filesystem>> fs =
      ext4::Filesystem::Open(std::move(*device), options.mount);
  if (!fs.ok()) {
    ReportImageError(options.image, fs.status());
    return kExitMountFailed;
  }
  const bool read_only = (*fs)->read_only();
  if (read_only && !options.mount.read_only) {
    std::fprintf(stderr, "%s: %s: mounted read-only\n", kProgramName,
                 options.image.c_str());
  }

  AdapterOptions adapter_options;
  adapter_options.entry_timeout = options.entry_timeout;
  adapter_options.attr_timeout = options.attr_timeout;
  adapter_options.negative_timeout = options.negative_timeout;
  // LibfuseArguments() turns default_permissions on with allow_other unless
  // fakeroot is given.
  adapter_options.default_permissions =
      (options.allow_other && !options.fakeroot) ||
      HasForwardedOption(options, "default_permissions");
  // ACLs are enforced wherever the kernel checks permissions.
  adapter_options.posix_acl = adapter_options.default_permissions;
  adapter_options.fakeroot = options.fakeroot;
  adapter_options.writeback_cache = options.writeback_cache;
  adapter_options.max_read = MaxRead(options);
  Adapter adapter(**fs, adapter_options);

  {
    Session session;
    if (!session.Create(LibfuseArguments(options, read_only), &adapter)) {
      // libfuse has said why.
      return kExitMountFailed;
    }
    if (!session.SetSignalHandlers()) {
      std::fprintf(stderr, "%s: cannot install signal handlers\n",
                   kProgramName);
      return kExitMountFailed;
    }
    if (!session.Mount(options.mountpoint)) {
      // libfuse has said why.
      return kExitMountFailed;
    }
    if (options.readahead_kb != 0) {
      // Only root may widen it; everyone else keeps the kernel's window.
      (void)adapter.readahead_window().Prepare(options.mountpoint,
                                               options.readahead_kb);
    }
    // Leave the terminal only now, so every error above reached it.
    if (fuse_daemonize(options.foreground ? 1 : 0) != 0) {
      return kExitMountFailed;
    }
    if (!options.foreground) {
      // Connected now: the sandbox allows no new sockets.
      openlog(kProgramName, LOG_PID | LOG_NDELAY, LOG_DAEMON);
      adapter.set_log_to_syslog(true);
    }
    int watcher_fd = -1;
    if (sandbox) {
      // The sandboxed server cannot unmount: a watcher does it at its end.
      absl::StatusOr<int> watcher =
          StartUnmountWatcher(options.mountpoint, MountSource(options));
      if (!watcher.ok()) {
        LogFailure(options, std::string(watcher.status().message()));
        return 1;
      }
      watcher_fd = *watcher;
      session.set_unmount_at_end(false);
      if (absl::Status s = EnterSandbox(*sandbox, inherited); !s.ok()) {
        LogFailure(options, std::string(s.message()));
        return 1;
      }
    }
    const int ret = session.Loop(options);
    // 0: the kernel ended the session, the mount is gone (a signal gives
    // its number, a failure a negative errno). Say so before the final
    // write-back, while a new mount may already be taking the place.
    if (ret == 0 && watcher_fd >= 0) DisarmUnmountWatcher(watcher_fd);
    // A positive value is the signal that ended the loop: a clean stop.
    if (ret < 0) {
      LogFailure(options,
                 absl::StrCat("request loop failed: ", std::strerror(-ret)));
      return 1;
    }
  }
  // The session's end (above) wrote everything back through the adapter's
  // destroy; it has logged why if that failed.
  if (adapter.final_sync_failed()) return 1;
  return 0;
}

int RunServer(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  absl::StatusOr<ServerOptions> options = ParseCommandLine(args);
  if (!options.ok()) {
    std::fprintf(stderr, "%s: %s\n", kProgramName,
                 std::string(options.status().message()).c_str());
    return kExitUsage;
  }
  switch (options->action) {
    case ServerOptions::Action::kHelp:
      std::fputs(UsageText().c_str(), stdout);
      return 0;
    case ServerOptions::Action::kVersion:
      std::printf("%s %s\n", kProgramName, kVersion);
      return 0;
    case ServerOptions::Action::kMount:
      break;
  }
  return Serve(*std::move(options));
}

}  // namespace e4fs
