// The e4fs command line, in the form fuse2fs and mount.fuse3 use:
//
//   e4fs IMAGE MOUNTPOINT [-o opt[,opt...]] [-f] [-d] [-s] [-h] [-V]
//
// Parsing is a pure function of the arguments (no I/O, no libfuse), so it is
// unit-tested on its own. The options libfuse and the kernel understand are
// collected apart and handed to fuse_session_new() by the server.
#ifndef E4FS_FUSE_OPTIONS_H_
#define E4FS_FUSE_OPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ext4/filesystem.h"

namespace e4fs {

inline constexpr char kProgramName[] = "e4fs";
inline constexpr char kVersion[] = "0.1.0";

// Exit statuses, as fuse2fs uses them: 1 for a bad command line, 2 when the
// image cannot be opened or mounted.
inline constexpr int kExitUsage = 1;
inline constexpr int kExitMountFailed = 2;

// Reads of at most 252 pages (1008 KiB) unless max_read= says otherwise: a
// reply fits, with its header and libfuse's slack, in the 1 MiB pipe an
// unprivileged process may have, so that it is spliced from the image
// rather than copied twice.
inline constexpr unsigned kDefaultMaxRead = 252 * 4096;

struct ServerOptions {
  enum class Action { kMount, kHelp, kVersion };
  Action action = Action::kMount;

  std::string image;
  std::string mountpoint;

  // What the engine is asked for: read_only, no_recovery, errors= and the
  // cache limits. read_only is the default until the write path exists.
  ext4::MountOptions mount;
  // Byte offset of the filesystem inside the image.
  uint64_t offset = 0;

  bool foreground = false;       // -f
  bool debug = false;            // -d, -o debug: libfuse logs every request
  bool single_threaded = false;  // -s
  bool allow_other = false;
  // Skip permission checks: with allow_other, default_permissions is then
  // left off, so every user sees the image as its owner would.
  bool fakeroot = false;

  // Let the kernel cache writes on a read-write mount (-o writeback_cache,
  // the default; -o nowriteback_cache sends every write(2) through).
  bool writeback_cache = true;

  // Kernel cache lifetimes, in seconds. This server is the only writer of
  // the image, so the kernel may keep what it learns for a long time.
  double entry_timeout = 86400;
  double attr_timeout = 86400;
  double negative_timeout = 86400;

  // The kernel's readahead window for the mount in KiB (needs root; see
  // readahead_window.h); 0 leaves the kernel's default. The largest READ
  // request by default: a window of one request.
  unsigned readahead_kb = kDefaultMaxRead / 1024;

  // The multi-threaded loop; 0 keeps libfuse's default.
  unsigned max_threads = 0;
  unsigned max_idle_threads = 0;
  bool clone_fd = false;

  // The sandbox (fuse/sandbox.h), on unless -o nosandbox; a server started
  // as root serves as this user.
  std::string sandbox_user = "nobody";
  bool sandbox = true;

  // Options for libfuse and the kernel mount (suid, nodev, allow_root,
  // fsname=, ...), in the order given. "ro"/"rw", allow_other and
  // default_permissions are added by LibfuseArguments().
  std::vector<std::string> fuse_options;
};

// Parses the arguments that follow argv[0]. Returns InvalidArgument with a
// one-line message for a bad command line.
absl::StatusOr<ServerOptions> ParseCommandLine(
    const std::vector<std::string>& args);

// The full help text for -h/--help.
std::string UsageText();

// The argument vector for fuse_session_new(): a program name, then "-o" with
// subtype, fsname, ro or rw (as the engine actually mounted), allow_other and
// default_permissions where asked for, and every forwarded option; "-d" when
// debugging.
// The largest read the kernel sends: max_read= as given (0 when it cannot
// be read), else kDefaultMaxRead, which LibfuseArguments() then passes.
unsigned MaxRead(const ServerOptions& options);

std::vector<std::string> LibfuseArguments(const ServerOptions& options,
                                          bool read_only);

// Escapes ',' and '\' for a libfuse "-o" list.
std::string EscapeOptionValue(const std::string& value);

}  // namespace e4fs

#endif  // E4FS_FUSE_OPTIONS_H_
