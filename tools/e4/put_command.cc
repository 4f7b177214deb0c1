// e4 put: copies host files and trees into an image through the engine,
// keeping everything an ext4 inode holds: type, mode, owner, times, xattrs,
// hard links, symlinks, device numbers and holes.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "tools/e4/cli.h"
#include "tools/e4/commands.h"
#include "tools/e4/host_files.h"
#include "tools/e4/image_path.h"
#include "tools/e4/progress.h"

namespace e4cli {
namespace {

constexpr char kPutUsage[] =
    "Usage: e4 put [OPTIONS] SRC... IMAGE:/path\n"
    "Copies host files and directory trees into an image, recursively,\n"
    "keeping file types (regular files, directories, symlinks, fifos,\n"
    "sockets, devices), permission bits (setuid, setgid, sticky too), owners,\n"
    "access and modification times (to the nanosecond), extended attributes,\n"
    "hard links among the copied files, and holes: ranges the source reports\n"
    "as holes, and all-zero 4 KiB blocks, are left unallocated.\n"
    "\n"
    "Where SRC goes (as cp -r does it):\n"
    "  - IMAGE:/path is an existing directory: SRC goes inside it, under its\n"
    "    own name; SRC written as DIR/. puts what DIR holds there instead;\n"
    "  - otherwise IMAGE:/path is the name of the copy (its parent must\n"
    "    exist, and there must be a single SRC).\n"
    "Nothing in the image is replaced: an entry that exists already is an\n"
    "error (reported, and the copy goes on with the rest). The image ends\n"
    "clean: everything committed, the journal empty. Ctrl-C stops between\n"
    "two files and still leaves the image clean.\n"
    "\n"
    "  -v, --verbose      print each path as it is copied\n"
    "      --no-xattrs    do not copy extended attributes\n"
    "      --progress     draw a progress bar on stderr even when it is not a\n"
    "                     terminal\n"
    "      --no-progress  never draw it (by default: only on a terminal)\n"
    "  -h, --help         this help\n";

// Engine errors after which nothing else can be copied.
bool IsFatal(int err) {
  return err == ENOSPC || err == EROFS || err == EIO || err == EUCLEAN ||
         err == EDQUOT || err == ENOMEM;
}

class Putter {
 public:
  Putter(const Command& cmd, ext4::Filesystem& fs, Progress& progress,
         bool verbose, bool xattrs)
      : cmd_(cmd),
        fs_(fs),
        progress_(progress),
        verbose_(verbose),
        xattrs_(xattrs) {}

  // Copies `host` (itself) as `name` in `dir`.
  void CopyEntry(const std::string& host, ext4::InodeNumber dir,
                 const std::string& name);
  // Copies what the host directory holds into `dir`.
  void CopyContents(const std::string& host, ext4::InodeNumber dir);

  int errors() const { return errors_; }
  bool stopped() const { return stopped_; }
  // Reports an error about `what`.
  void Error(const std::string& what, const std::string& message);

 private:
  // Reports an engine error (after `prefix`); fatal ones stop the copy.
  // An xattr that does not fit is ENOSPC too, but only for that file
  // (`space_is_fatal` false).
  void EngineError(const std::string& what, const absl::Status& status,
                   const std::string& prefix = "", bool space_is_fatal = true);
  absl::StatusOr<ext4::Attributes> Make(const std::string& host,
                                        const struct stat& st,
                                        ext4::InodeNumber dir,
                                        const std::string& name);
  absl::Status CopyData(const std::string& host, const struct stat& st,
                        ext4::InodeNumber ino);
  // Writes the pending run [run_start_, run_start_ + run_.size()).
  absl::Status FlushRun(ext4::InodeNumber ino, uint64_t* end);
  // xattrs, owner, mode, times: after the contents (and, for a directory,
  // after its entries, which change its times).
  void ApplyAttributes(const std::string& host, const struct stat& st,
                       ext4::InodeNumber ino);

  const Command& cmd_;
  ext4::Filesystem& fs_;
  Progress& progress_;
  const bool verbose_;
  const bool xattrs_;
  int errors_ = 0;
  bool stopped_ = false;
  // Source (device, inode) of multiply-linked files -> their inode in the
  // image.
  std::map<std::pair<dev_t, ino_t>, ext4::InodeNumber> links_;
  std::vector<uint8_t> buffer_ = std::vector<uint8_t>(1 << 20);
  std::vector<uint8_t> run_;
  uint64_t run_start_ = 0;
};

void Putter::Error(const std::string& what, const std::string& message) {
  progress_.Clear();
  cmd_.Warn(what + ": " + message);
  ++errors_;
}

void Putter::EngineError(const std::string& what, const absl::Status& status,
                         const std::string& prefix, bool space_is_fatal) {
  Error(what, prefix + StatusText(status));
  const int err = ext4::ErrnoOf(status);
  if (IsFatal(err) && (space_is_fatal || err != ENOSPC)) stopped_ = true;
}

absl::StatusOr<ext4::Attributes> Putter::Make(const std::string& host,
                                              const struct stat& st,
                                              ext4::InodeNumber dir,
                                              const std::string& name) {
  ext4::Credentials owner;
  owner.uid = st.st_uid;
  owner.gid = st.st_gid;
  const uint32_t perms = st.st_mode & 07777;
  switch (st.st_mode & S_IFMT) {
    case S_IFREG:
      return fs_.Create(dir, name, perms, owner);
    case S_IFDIR:
      return fs_.MakeDirectory(dir, name, perms, owner);
    case S_IFLNK: {
      E4_ASSIGN_OR_RETURN(std::string target, ReadHostLink(host, st));
      return fs_.MakeSymlink(dir, name, target, owner);
    }
    case S_IFIFO:
    case S_IFSOCK:
    case S_IFCHR:
    case S_IFBLK:
      return fs_.MakeNode(dir, name, st.st_mode & (S_IFMT | 07777),
                          major(st.st_rdev), minor(st.st_rdev), owner);
    default:
      return ext4::ErrnoError(EOPNOTSUPP, "unknown file type");
  }
}

void Putter::CopyEntry(const std::string& host, ext4::InodeNumber dir,
                       const std::string& name) {
  if (stopped_) return;
  if (Interrupted()) {
    stopped_ = true;
    return;
  }
  struct stat st;
  if (lstat(host.c_str(), &st) != 0) {
    Error(host, std::strerror(errno));
    return;
  }
  if (verbose_) {
    progress_.Clear();
    std::fprintf(stderr, "%s\n", host.c_str());
  }
  progress_.AddEntry();
  const bool linkable = !S_ISDIR(st.st_mode) && st.st_nlink > 1;
  const auto key = std::make_pair(st.st_dev, st.st_ino);
  if (linkable) {
    auto it = links_.find(key);
    if (it != links_.end()) {
      auto linked = fs_.Link(it->second, dir, name);
      if (!linked.ok()) EngineError(host, linked.status());
      if (S_ISREG(st.st_mode)) progress_.AddBytes(st.st_size);
      return;
    }
  }
  auto made = Make(host, st, dir, name);
  if (!made.ok()) {
    EngineError(host, made.status());
    return;
  }
  const ext4::InodeNumber ino = made->ino;
  if (linkable) links_[key] = ino;
  if (S_ISREG(st.st_mode)) {
    absl::Status status = CopyData(host, st, ino);
    if (!status.ok()) {
      EngineError(host, status);
      return;
    }
  } else if (S_ISDIR(st.st_mode)) {
    CopyContents(host, ino);
    if (stopped_) return;
  }
  ApplyAttributes(host, st, ino);
}

void Putter::CopyContents(const std::string& host, ext4::InodeNumber dir) {
  auto names = ListHostDirectory(host);
  if (!names.ok()) {
    Error(host, StatusText(names.status()));
    return;
  }
  for (const std::string& name : *names) {
    if (stopped_) return;
    CopyEntry(JoinPath(host, name), dir, name);
  }
}

absl::Status Putter::FlushRun(ext4::InodeNumber ino, uint64_t* end) {
  size_t done = 0;
  while (done < run_.size()) {
    E4_ASSIGN_OR_RETURN(
        size_t n,
        fs_.Write(ino, run_start_ + done,
                  std::span(run_.data() + done, run_.size() - done), Root()));
    if (n == 0) return ext4::ErrnoError(EIO, "the engine wrote nothing");
    done += n;
  }
  *end = std::max<uint64_t>(*end, run_start_ + run_.size());
  run_.clear();
  return absl::OkStatus();
}

absl::Status Putter::CopyData(const std::string& host, const struct stat& st,
                              ext4::InodeNumber ino) {
  HostFile file;
  E4_RETURN_IF_ERROR(file.Open(host));
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  constexpr uint64_t kChunk = 4096;
  uint64_t written_end = 0;  // where the file ends in the image so far
  uint64_t counted = 0;      // bytes the progress bar has seen
  run_.clear();
  E4_RETURN_IF_ERROR(ForEachDataRegion(
      file.fd(), size, [&](uint64_t start, uint64_t end) -> absl::Status {
        if (Interrupted()) return ext4::ErrnoError(EINTR, "interrupted");
        for (uint64_t pos = start; pos < end;) {
          const size_t want = static_cast<size_t>(
              std::min<uint64_t>(buffer_.size(), end - pos));
          E4_ASSIGN_OR_RETURN(size_t got,
                              file.ReadAt(pos, buffer_.data(), want));
          if (got == 0) {
            return ext4::ErrnoError(EIO, "the file shrank while it was copied");
          }
          // 4 KiB-aligned pieces; all-zero whole pieces stay holes.
          for (size_t off = 0; off < got;) {
            const uint64_t abs = pos + off;
            const size_t piece = static_cast<size_t>(
                std::min<uint64_t>(kChunk - abs % kChunk, got - off));
            const uint8_t* p = buffer_.data() + off;
            const bool zero =
                piece == kChunk &&
                std::all_of(p, p + piece, [](uint8_t b) { return b == 0; });
            if (zero) {
              if (!run_.empty())
                E4_RETURN_IF_ERROR(FlushRun(ino, &written_end));
            } else {
              if (!run_.empty() && run_start_ + run_.size() != abs) {
                E4_RETURN_IF_ERROR(FlushRun(ino, &written_end));
              }
              if (run_.empty()) run_start_ = abs;
              run_.insert(run_.end(), p, p + piece);
              if (run_.size() >= buffer_.size()) {
                E4_RETURN_IF_ERROR(FlushRun(ino, &written_end));
              }
            }
            off += piece;
          }
          pos += got;
          counted += got;
          progress_.AddBytes(got);
        }
        return absl::OkStatus();
      }));
  if (!run_.empty()) E4_RETURN_IF_ERROR(FlushRun(ino, &written_end));
  progress_.AddBytes(size - std::min(size, counted));  // the holes
  if (written_end < size) {
    // The file ends in a hole: its size says where the end is.
    ext4::SetAttrRequest resize;
    resize.size = size;
    E4_RETURN_IF_ERROR(fs_.SetAttr(ino, resize, Root()).status());
  }
  return absl::OkStatus();
}

void Putter::ApplyAttributes(const std::string& host, const struct stat& st,
                             ext4::InodeNumber ino) {
  if (xattrs_) {
    auto xattrs = ReadHostXattrs(host);
    if (!xattrs.ok()) {
      Error(host, "extended attributes: " + StatusText(xattrs.status()));
    } else {
      for (const auto& [name, value] : *xattrs) {
        absl::Status status = fs_.SetXattr(ino, name, value, 0);
        if (!status.ok()) {
          EngineError(host, status, "xattr " + name + ": ",
                      /*space_is_fatal=*/false);
          if (stopped_) return;
        }
      }
      // What the new inode got that the source lacks (a default ACL's
      // inheritance) goes.
      auto present = fs_.ListXattrs(ino);
      if (present.ok()) {
        for (const std::string& name : *present) {
          bool wanted = false;
          for (const auto& kv : *xattrs) wanted = wanted || kv.first == name;
          if (wanted) continue;
          absl::Status status = fs_.RemoveXattr(ino, name);
          if (!status.ok()) {
            EngineError(host, status, "xattr " + name + ": ");
          }
        }
      }
    }
  }
  auto attr = fs_.GetAttr(ino);
  if (!attr.ok()) {
    EngineError(host, attr.status());
    return;
  }
  if (attr->uid != st.st_uid || attr->gid != st.st_gid) {
    // A setgid directory handed its group down.
    ext4::SetAttrRequest chown;
    chown.uid = st.st_uid;
    chown.gid = st.st_gid;
    auto done = fs_.SetAttr(ino, chown, Root());
    if (!done.ok()) {
      EngineError(host, done.status());
      return;
    }
  }
  // Mode after the owner: a change of owner clears setuid and setgid.
  ext4::SetAttrRequest rest;
  if (!S_ISLNK(st.st_mode)) rest.mode = st.st_mode & 07777;
  rest.atime = ext4::Timestamp{st.st_atim.tv_sec,
                               static_cast<uint32_t>(st.st_atim.tv_nsec)};
  rest.mtime = ext4::Timestamp{st.st_mtim.tv_sec,
                               static_cast<uint32_t>(st.st_mtim.tv_nsec)};
  auto done = fs_.SetAttr(ino, rest, Root());
  if (!done.ok()) EngineError(host, done.status());
}

// Counts what a copy will go through, for the progress bar.
void Measure(const std::string& host, bool top, uint64_t* bytes,
             uint64_t* entries) {
  struct stat st;
  if (lstat(host.c_str(), &st) != 0) return;
  if (!top) ++*entries;
  if (S_ISREG(st.st_mode)) *bytes += static_cast<uint64_t>(st.st_size);
  if (!S_ISDIR(st.st_mode)) return;
  auto names = ListHostDirectory(host);
  if (!names.ok()) return;
  for (const std::string& name : *names) {
    Measure(JoinPath(host, name), false, bytes, entries);
  }
}

}  // namespace

int RunPut(int argc, char** argv) {
  Command cmd("put", kPutUsage);
  bool verbose = false;
  bool xattrs = true;
  ProgressMode progress_mode = ProgressMode::kAuto;
  constexpr int kNoXattrs = 0x100, kProgress = 0x101, kNoProgress = 0x102;
  std::vector<std::string> operands;
  if (auto stop = cmd.ParseOptions(
          argc, argv, "v",
          {{"verbose", no_argument, nullptr, 'v'},
           {"no-xattrs", no_argument, nullptr, kNoXattrs},
           {"progress", no_argument, nullptr, kProgress},
           {"no-progress", no_argument, nullptr, kNoProgress}},
          [&](int c, const char*) -> std::optional<int> {
            if (c == 'v') verbose = true;
            if (c == kNoXattrs) xattrs = false;
            if (c == kProgress) progress_mode = ProgressMode::kAlways;
            if (c == kNoProgress) progress_mode = ProgressMode::kNever;
            return std::nullopt;
          },
          &operands)) {
    return *stop;
  }
  if (operands.size() < 2) {
    return cmd.UsageError("expected SRC... IMAGE:/path");
  }
  auto dest = ParseImagePath(operands.back());
  if (!dest.ok()) return cmd.UsageError(std::string(dest.status().message()));
  const std::vector<std::string> sources(operands.begin(), operands.end() - 1);
  for (const std::string& src : sources) {
    struct stat st;
    if (lstat(src.c_str(), &st) != 0) {
      return cmd.Fail(src + ": " + std::strerror(errno));
    }
    if (BaseName(src) == "..") {
      return cmd.UsageError("'" + src + "': name the directory, not '..'");
    }
  }

  auto opened = OpenImage(dest->image, /*writable=*/true);
  if (!opened.ok()) {
    return cmd.Fail(dest->image + ": " + StatusText(opened.status()));
  }
  std::unique_ptr<Image> image = std::move(*opened);
  ext4::Filesystem& fs = *image->fs;
  CatchInterrupts();

  // Where each source goes: (host path, directory in the image, name), an
  // empty name for "what the directory holds".
  struct Job {
    std::string host;
    ext4::InodeNumber dir;
    std::string name;
  };
  std::vector<Job> jobs;
  std::string setup_error;
  auto target = Resolve(fs, dest->path, /*follow=*/true);
  if (target.ok()) {
    auto attr = fs.GetAttr(*target);
    if (!attr.ok()) {
      setup_error = StatusText(attr.status());
    } else if (!S_ISDIR(attr->mode)) {
      setup_error = "exists and is not a directory";
    } else {
      for (const std::string& src : sources) {
        const std::string base = BaseName(src);
        struct stat st;
        const bool contents = (base == "." || base == "/") &&
                              stat(src.c_str(), &st) == 0 &&
                              S_ISDIR(st.st_mode);
        jobs.push_back({src, *target, contents ? "" : base});
      }
    }
  } else if (ext4::ErrnoOf(target.status()) == ENOENT) {
    auto [parent_path, name] = SplitPath(dest->path);
    auto parent = Resolve(fs, parent_path, /*follow=*/true);
    if (sources.size() > 1) {
      setup_error = "not a directory (several sources need one)";
    } else if (!parent.ok()) {
      setup_error = StatusText(parent.status());
    } else {
      jobs.push_back({sources[0], *parent, name});
    }
  } else {
    setup_error = StatusText(target.status());
  }
  int rc = kExitOk;
  if (!setup_error.empty()) {
    rc = cmd.Fail(Display(*dest) + ": " + setup_error);
  } else {
    const bool draw = ProgressWanted(progress_mode);
    uint64_t total_bytes = 0, total_entries = 0;
    if (draw) {
      for (const Job& job : jobs) {
        Measure(job.host, job.name.empty(), &total_bytes, &total_entries);
      }
    }
    Progress progress(draw, total_bytes, total_entries);
    Putter putter(cmd, fs, progress, verbose, xattrs);
    for (const Job& job : jobs) {
      if (job.name.empty()) {
        putter.CopyContents(job.host, job.dir);
      } else {
        putter.CopyEntry(job.host, job.dir, job.name);
      }
      if (putter.stopped()) break;
    }
    progress.Finish();
    if (Interrupted()) {
      cmd.Warn("interrupted: what was copied so far stays in the image");
      rc = kExitFailure;
    } else if (putter.stopped()) {
      cmd.Warn("stopped after an error the image cannot recover from");
      rc = kExitFailure;
    }
    if (putter.errors() > 0) rc = kExitFailure;
  }
  absl::Status closed = CloseImage(std::move(image));
  if (!closed.ok()) {
    return cmd.Fail(dest->image + ": could not finish writing the image: " +
                    StatusText(closed));
  }
  return rc;
}

}  // namespace e4cli
