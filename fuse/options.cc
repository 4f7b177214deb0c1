#include "fuse/options.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace e4fs {
namespace {

absl::Status UsageError(std::string_view message) {
  return absl::InvalidArgumentError(
      absl::StrCat(std::string(message), " (see '", kProgramName, " --help')"));
}

// Options that libfuse and the kernel understand; they are passed on as
// given. "ro", "rw", allow_other and default_permissions are not here: they
// are decided by LibfuseArguments().
constexpr std::string_view kForwarded[] = {
    "suid",         "nosuid",
    "dev",          "nodev",
    "exec",         "noexec",
    "sync",         "async",
    "dirsync",      "atime",
    "noatime",      "allow_root",
    "auto_unmount", "default_permissions",
};
constexpr std::string_view kForwardedPrefixes[] = {
    "fsname=",  "subtype=",   "max_read=",   "blksize=",
    "context=", "fscontext=", "defcontext=", "rootcontext=",
};

// Options that mount(8), fstab or an ext4 fstab line carry and that mean
// nothing here (or nothing libfuse can pass on): accepted and dropped.
constexpr std::string_view kIgnored[] = {
    "defaults",   "auto",       "noauto",      "user",          "users",
    "nouser",     "owner",      "group",       "_netdev",       "nofail",
    "relatime",   "norelatime", "strictatime", "nostrictatime", "diratime",
    "nodiratime", "lazytime",   "nolazytime",  "iversion",      "noiversion",
    "loud",       "silent",     "acl",         "user_xattr",
};
constexpr std::string_view kIgnoredPrefixes[] = {
    "x-",
    "comment=",
    "user=",
    "helper=",
};

bool IsOneOf(std::string_view option, const auto& table) {
  for (std::string_view entry : table) {
    if (option == entry) return true;
  }
  return false;
}

bool HasPrefixIn(std::string_view option, const auto& table) {
  for (std::string_view prefix : table) {
    if (option.substr(0, prefix.size()) == prefix) return true;
  }
  return false;
}

// A whole-string unsigned number: decimal, or hexadecimal after "0x".
bool ParseUnsigned(std::string_view text, uint64_t* out) {
  int base = 10;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    text.remove_prefix(2);
    base = 16;
  }
  if (text.empty()) return false;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out, base);
  return ec == std::errc() && ptr == end;
}

// A byte count with an optional binary suffix: 64M, 512k, 1G.
bool ParseSize(std::string_view text, uint64_t* out) {
  uint64_t scale = 1;
  if (!text.empty()) {
    switch (absl::ascii_toupper(static_cast<unsigned char>(text.back()))) {
      case 'K':
        scale = uint64_t{1} << 10;
        break;
      case 'M':
        scale = uint64_t{1} << 20;
        break;
      case 'G':
        scale = uint64_t{1} << 30;
        break;
      case 'T':
        scale = uint64_t{1} << 40;
        break;
      default:
        break;
    }
    if (scale != 1) text.remove_suffix(1);
  }
  uint64_t value = 0;
  if (!ParseUnsigned(text, &value)) return false;
  if (value > std::numeric_limits<uint64_t>::max() / scale) return false;
  *out = value * scale;
  return true;
}

bool ParseSeconds(std::string_view text, double* out) {
  double value = 0;
  if (!absl::SimpleAtod(absl::string_view(text.data(), text.size()), &value) ||
      !std::isfinite(value) || value < 0) {
    return false;
  }
  *out = value;
  return true;
}

bool ParseCount(std::string_view text, unsigned* out) {
  uint64_t value = 0;
  if (!ParseUnsigned(text, &value) ||
      value > std::numeric_limits<unsigned>::max()) {
    return false;
  }
  *out = static_cast<unsigned>(value);
  return true;
}

absl::Status BadValue(std::string_view option) {
  return UsageError(
      absl::StrCat("invalid value in option '", std::string(option), "'"));
}

// Applies one option of a "-o" list.
absl::Status ApplyOption(std::string_view option, ServerOptions* opts) {
  if (option.empty()) return absl::OkStatus();  // "-o ro,,dev"
  const size_t eq = option.find('=');
  const std::string_view key = option.substr(0, eq);
  const std::string_view value =
      eq == std::string_view::npos ? std::string_view() : option.substr(eq + 1);
  const bool has_value = eq != std::string_view::npos;

  if (!has_value) {
    if (key == "ro") {
      opts->mount.read_only = true;
    } else if (key == "rw") {
      opts->mount.read_only = false;
    } else if (key == "norecovery" || key == "noload") {
      opts->mount.no_recovery = true;
    } else if (key == "fakeroot") {
      opts->fakeroot = true;
    } else if (key == "writeback_cache") {
      opts->writeback_cache = true;
    } else if (key == "nowriteback_cache") {
      opts->writeback_cache = false;
    } else if (key == "allow_other") {
      opts->allow_other = true;
    } else if (key == "debug") {
      opts->debug = true;
      opts->foreground = true;
    } else if (key == "clone_fd") {
      opts->clone_fd = true;
    } else if (key == "nosandbox") {
      opts->sandbox = false;
    } else if (IsOneOf(option, kForwarded)) {
      opts->fuse_options.emplace_back(option);
    } else if (IsOneOf(option, kIgnored) ||
               HasPrefixIn(option, kIgnoredPrefixes)) {
      // Accepted and dropped.
    } else {
      return UsageError(
          absl::StrCat("unknown mount option '", std::string(option), "'"));
    }
    return absl::OkStatus();
  }

  if (key == "offset") {
    if (!ParseUnsigned(value, &opts->offset)) return BadValue(option);
  } else if (key == "errors") {
    if (value == "continue") {
      opts->mount.errors = ext4::ErrorsPolicy::kContinue;
    } else if (value == "remount-ro") {
      opts->mount.errors = ext4::ErrorsPolicy::kRemountReadOnly;
    } else if (value == "panic") {
      opts->mount.errors = ext4::ErrorsPolicy::kPanic;
    } else {
      return UsageError(absl::StrCat(
          "invalid value in option '", std::string(option),
          "' (expected errors=continue, errors=remount-ro or errors=panic)"));
    }
  } else if (key == "cache_size") {
    uint64_t bytes = 0;
    if (!ParseSize(value, &bytes)) return BadValue(option);
    // Counted in 4 KiB blocks, the usual ext4 block size; at least a few.
    opts->mount.block_cache_limit =
        static_cast<size_t>(std::max<uint64_t>(bytes / 4096, 16));
  } else if (key == "commit") {
    // As ext4's commit=: seconds between journal commits; 0 means the
    // default.
    uint64_t seconds = 0;
    if (!ParseUnsigned(value, &seconds) || seconds > 86400) {
      return BadValue(option);
    }
    opts->mount.commit_interval_seconds =
        seconds == 0 ? 5 : static_cast<int>(seconds);
  } else if (key == "inode_cache") {
    uint64_t count = 0;
    if (!ParseUnsigned(value, &count) || count == 0) return BadValue(option);
    opts->mount.inode_cache_limit = static_cast<size_t>(count);
  } else if (key == "entry_timeout") {
    if (!ParseSeconds(value, &opts->entry_timeout)) return BadValue(option);
  } else if (key == "attr_timeout") {
    if (!ParseSeconds(value, &opts->attr_timeout)) return BadValue(option);
  } else if (key == "negative_timeout") {
    if (!ParseSeconds(value, &opts->negative_timeout)) return BadValue(option);
  } else if (key == "readahead_kb") {
    // The kernel takes at most 2 GiB less a page here.
    if (!ParseCount(value, &opts->readahead_kb) ||
        opts->readahead_kb > (1u << 21)) {
      return BadValue(option);
    }
  } else if (key == "max_threads") {
    if (!ParseCount(value, &opts->max_threads) || opts->max_threads == 0) {
      return BadValue(option);
    }
  } else if (key == "max_idle_threads") {
    if (!ParseCount(value, &opts->max_idle_threads)) return BadValue(option);
  } else if (key == "sandbox_user") {
    if (value.empty()) return BadValue(option);
    opts->sandbox_user = std::string(value);
  } else if (HasPrefixIn(option, kForwardedPrefixes)) {
    if (value.empty()) return BadValue(option);
    opts->fuse_options.emplace_back(option);
  } else if (HasPrefixIn(option, kIgnoredPrefixes)) {
    // Accepted and dropped.
  } else {
    return UsageError(
        absl::StrCat("unknown mount option '", std::string(option), "'"));
  }
  return absl::OkStatus();
}

// Splits a "-o" list at unescaped commas; "\," and "\\" stand for themselves.
absl::Status ApplyOptionList(std::string_view list, ServerOptions* opts) {
  std::string current;
  for (size_t i = 0; i < list.size(); ++i) {
    const char c = list[i];
    if (c == '\\' && i + 1 < list.size()) {
      current.push_back(list[++i]);
    } else if (c == ',') {
      if (absl::Status s = ApplyOption(current, opts); !s.ok()) return s;
      current.clear();
    } else {
      current.push_back(c);
    }
  }
  return ApplyOption(current, opts);
}

bool HasOption(const ServerOptions& opts, std::string_view prefix) {
  for (const std::string& option : opts.fuse_options) {
    if (std::string_view(option).substr(0, prefix.size()) == prefix) {
      return true;
    }
  }
  return false;
}

}  // namespace

absl::StatusOr<ServerOptions> ParseCommandLine(
    const std::vector<std::string>& args) {
  ServerOptions opts;
  std::vector<std::string> positional;
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      positional.push_back(arg);
    } else if (arg == "--") {
      options_done = true;
    } else if (arg == "-h" || arg == "--help") {
      opts.action = ServerOptions::Action::kHelp;
      return opts;
    } else if (arg == "-V" || arg == "--version") {
      opts.action = ServerOptions::Action::kVersion;
      return opts;
    } else if (arg == "-o") {
      if (i + 1 >= args.size()) return UsageError("option -o needs a value");
      if (absl::Status s = ApplyOptionList(args[++i], &opts); !s.ok()) {
        return s;
      }
    } else if (arg.rfind("-o", 0) == 0) {
      if (absl::Status s =
              ApplyOptionList(std::string_view(arg).substr(2), &opts);
          !s.ok()) {
        return s;
      }
    } else if (arg == "-f") {
      opts.foreground = true;
    } else if (arg == "-d") {
      opts.debug = true;
      opts.foreground = true;
    } else if (arg == "-s") {
      opts.single_threaded = true;
    } else {
      return UsageError(absl::StrCat("unknown option '", arg, "'"));
    }
  }

  if (positional.empty()) return UsageError("missing image and mount point");
  if (positional.size() == 1) return UsageError("missing mount point");
  if (positional.size() > 2) {
    return UsageError(
        absl::StrCat("unexpected argument '", positional[2], "'"));
  }
  if (positional[0].empty()) return UsageError("empty image path");
  if (positional[1].empty()) return UsageError("empty mount point");
  opts.image = positional[0];
  opts.mountpoint = positional[1];
  // The journal is left as it is, so nothing may be written after it.
  if (opts.mount.no_recovery) opts.mount.read_only = true;
  // Each thread of clone_fd opens /dev/fuse again, which the sandbox's
  // empty root no longer has.
  if (opts.clone_fd && opts.sandbox) {
    return UsageError("clone_fd needs -o nosandbox");
  }
  return opts;
}

std::string EscapeOptionValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == ',' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

unsigned MaxRead(const ServerOptions& options) {
  constexpr std::string_view kKey = "max_read=";
  for (const std::string& option : options.fuse_options) {
    if (std::string_view(option).substr(0, kKey.size()) != kKey) continue;
    unsigned value = 0;
    if (!absl::SimpleAtoi(option.substr(kKey.size()), &value)) return 0;
    return value;
  }
  return kDefaultMaxRead;
}

std::vector<std::string> LibfuseArguments(const ServerOptions& options,
                                          bool read_only) {
  std::vector<std::string> list;
  if (!HasOption(options, "subtype=")) {
    list.push_back(absl::StrCat("subtype=", kProgramName));
  }
  if (!HasOption(options, "fsname=")) {
    list.push_back(absl::StrCat("fsname=", EscapeOptionValue(options.image)));
  }
  if (!HasOption(options, "max_read=")) {
    list.push_back(absl::StrCat("max_read=", kDefaultMaxRead));
  }
  // libfuse turns "ro" into MS_RDONLY on the kernel mount.
  list.push_back(read_only ? "ro" : "rw");
  if (options.allow_other) {
    list.push_back("allow_other");
    if (!options.fakeroot && !HasOption(options, "default_permissions")) {
      list.push_back("default_permissions");
    }
  }
  if (options.debug) list.push_back("debug");
  for (const std::string& option : options.fuse_options) {
    // fsname= and subtype= values were checked as given; escape commas.
    list.push_back(EscapeOptionValue(option));
  }
  return {kProgramName, "-o", absl::StrJoin(list, ",")};
}

std::string UsageText() {
  return absl::StrCat(
      "usage: ", kProgramName,
      " IMAGE MOUNTPOINT [-o opt[,opt...]] [-f] [-d] [-s]\n"
      "\n"
      "general options:\n"
      "    -o opt,[opt...]        mount options\n"
      "    -f                     stay in the foreground\n"
      "    -d                     print every FUSE request (implies -f)\n"
      "    -s                     serve requests on a single thread\n"
      "    -h   --help            print this help\n"
      "    -V   --version         print the version\n"
      "\n"
      "e4fs options:\n"
      "    -o ro                  read-only mount (the default)\n"
      "    -o rw                  read-write mount\n"
      "    -o norecovery          do not replay the journal (implies ro);\n"
      "                           also spelled noload\n"
      "    -o commit=SECS         journal commit interval (5)\n"
      "    -o errors=continue|remount-ro|panic\n"
      "                           what to do on finding corruption\n"
      "    -o offset=BYTES        the filesystem starts BYTES into IMAGE\n"
      "    -o allow_other         let every user in; turns on\n"
      "                           default_permissions\n"
      "    -o fakeroot            no permission checks: with allow_other,\n"
      "                           every user has the owner's access;\n"
      "                           new files belong to root\n"
      "    -o writeback_cache     read-write: the kernel caches writes and\n"
      "                           sends them later (the default)\n"
      "    -o nowriteback_cache   read-write: every write(2) reaches the\n"
      "                           image through the server at once\n"
      "    -o cache_size=SIZE     metadata block cache (K, M, G suffixes)\n"
      "    -o inode_cache=N       unused in-core inodes kept\n"
      "    -o entry_timeout=SECS  kernel name cache lifetime (86400)\n"
      "    -o attr_timeout=SECS   kernel attribute cache lifetime (86400)\n"
      "    -o negative_timeout=SECS\n"
      "                           kernel cache lifetime of absent names "
      "(86400)\n"
      "    -o readahead_kb=N      kernel readahead window for the mount,\n"
      "                           when run as root (1024; 0: the kernel's)\n"
      "    -o max_threads=N       worker threads at most\n"
      "    -o max_idle_threads=N  idle worker threads kept\n"
      "    -o clone_fd            one /dev/fuse descriptor per thread\n"
      "    -o debug               same as -d\n"
      "    -o sandbox_user=USER   the user a server started as root serves as\n"
      "                           (default: nobody)\n"
      "    -o nosandbox           serve unconfined (for debugging): no user\n"
      "                           switch, host files reachable, every system\n"
      "                           call allowed\n"
      "\n"
      "passed on to the kernel mount:\n"
      "    suid nosuid dev nodev exec noexec sync async dirsync atime "
      "noatime\n"
      "    allow_root auto_unmount default_permissions fsname= subtype=\n"
      "    max_read= blksize= context= fscontext= defcontext= rootcontext=\n"
      "\n"
      "accepted and ignored (from mount(8) and fstab):\n"
      "    defaults auto noauto user users nouser owner group _netdev "
      "nofail\n"
      "    relatime strictatime diratime lazytime iversion (and their no-\n"
      "    forms) acl user_xattr x-* comment=\n"
      "\n"
      "mount -t fuse.e4fs IMAGE MOUNTPOINT -o ro, or in /etc/fstab:\n"
      "    IMAGE MOUNTPOINT fuse.e4fs ro 0 0\n"
      "unmount with: fusermount3 -u MOUNTPOINT (or umount MOUNTPOINT)\n");
}

}  // namespace e4fs
