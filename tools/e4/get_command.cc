// e4 get: copies files and trees out of an image onto the host, the mirror
// of put: types, modes, owners, times, xattrs, hard links and holes.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <set>
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

constexpr char kGetUsage[] =
    "Usage: e4 get [OPTIONS] IMAGE:/path... DEST\n"
    "Copies files and directory trees out of an image onto the host,\n"
    "recursively, keeping file types (regular files, directories, symlinks,\n"
    "fifos, sockets, devices), permission bits, owners, access and\n"
    "modification times, extended attributes, hard links among the copied\n"
    "files, and holes (the image's holes and all-zero 4 KiB blocks are not\n"
    "written).\n"
    "\n"
    "Where IMAGE:/path goes (as cp -r does it):\n"
    "  - DEST is an existing directory: inside it, under its own name;\n"
    "    IMAGE:/ or IMAGE:/dir/. puts what the directory holds there instead;\n"
    "  - otherwise DEST is the name of the copy (a single source only).\n"
    "Nothing on the host is replaced: an entry that exists is an error\n"
    "(reported, and the copy goes on with the rest).\n"
    "\n"
    "Owners are set when e4 runs as root; otherwise files belong to the\n"
    "caller (as with cp -a) and only a failure other than EPERM is an error.\n"
    "Device files need the privilege to make them (CAP_MKNOD).\n"
    "\n"
    "  -v, --verbose      print each path as it is copied\n"
    "      --no-xattrs    do not copy extended attributes\n"
    "      --progress     draw a progress bar on stderr even when it is not a\n"
    "                     terminal\n"
    "      --no-progress  never draw it (by default: only on a terminal)\n"
    "  -h, --help         this help\n";

class Getter {
 public:
  Getter(const Command& cmd, Image& image, Progress& progress, bool verbose,
         bool xattrs)
      : cmd_(cmd),
        image_(image),
        fs_(*image.fs),
        progress_(progress),
        verbose_(verbose),
        xattrs_(xattrs) {}

  // Copies inode `ino` (shown as `from`) to the new host path `host`.
  void CopyEntry(ext4::InodeNumber ino, const std::string& from,
                 const std::string& host);
  // Copies what directory `dir` holds into the host directory `host`.
  void CopyContents(ext4::InodeNumber dir, const std::string& from,
                    const std::string& host);

  int errors() const { return errors_; }
  bool stopped() const { return stopped_; }

 private:
  void Error(const std::string& what, const std::string& message);
  absl::Status CopyData(ext4::InodeNumber ino, const ext4::Attributes& attr,
                        const std::string& host);
  void ApplyAttributes(ext4::InodeNumber ino, const ext4::Attributes& attr,
                       const std::string& from, const std::string& host);

  const Command& cmd_;
  Image& image_;
  ext4::Filesystem& fs_;
  Progress& progress_;
  const bool verbose_;
  const bool xattrs_;
  int errors_ = 0;
  bool stopped_ = false;
  // Inodes with several links -> the host path of their first copy.
  std::map<ext4::InodeNumber, std::string> links_;
  // Directories entered so far: a corrupt image may loop.
  std::set<ext4::InodeNumber> dirs_;
  std::vector<uint8_t> buffer_ = std::vector<uint8_t>(1 << 20);
};

void Getter::Error(const std::string& what, const std::string& message) {
  progress_.Clear();
  cmd_.Warn(what + ": " + message);
  ++errors_;
}

void Getter::CopyEntry(ext4::InodeNumber ino, const std::string& from,
                       const std::string& host) {
  if (stopped_) return;
  const std::string shown = image_.file + ":" + from;
  auto attr = fs_.GetAttr(ino);
  if (!attr.ok()) {
    Error(shown, StatusText(attr.status()));
    return;
  }
  if (verbose_) {
    progress_.Clear();
    std::fprintf(stderr, "%s\n", shown.c_str());
  }
  progress_.AddEntry();
  const uint32_t type = attr->mode & S_IFMT;
  const bool linkable = type != S_IFDIR && attr->nlink > 1;
  if (linkable) {
    auto it = links_.find(ino);
    if (it != links_.end()) {
      if (link(it->second.c_str(), host.c_str()) != 0) {
        Error(host, std::strerror(errno));
      }
      if (type == S_IFREG) progress_.AddBytes(attr->size);
      return;
    }
  }
  absl::Status made = absl::OkStatus();
  switch (type) {
    case S_IFREG:
      made = CopyData(ino, *attr, host);
      break;
    case S_IFDIR:
      if (!dirs_.insert(ino).second) {
        Error(shown, "directory loop: the image is corrupt");
        return;
      }
      if (mkdir(host.c_str(), 0700) != 0) made = HostError(errno);
      break;
    case S_IFLNK: {
      auto target = fs_.ReadLink(ino);
      if (!target.ok()) {
        Error(shown, StatusText(target.status()));
        return;
      }
      if (symlink(target->c_str(), host.c_str()) != 0) made = HostError(errno);
      break;
    }
    case S_IFIFO:
    case S_IFSOCK:
    case S_IFCHR:
    case S_IFBLK:
      if (mknod(host.c_str(), type | 0600,
                makedev(attr->rdev_major, attr->rdev_minor)) != 0) {
        made = HostError(errno);
      }
      break;
    default:
      made = ext4::ErrnoError(EOPNOTSUPP, "unknown file type");
  }
  if (!made.ok()) {
    Error(host, StatusText(made));
    if (ext4::ErrnoOf(made) == ENOSPC || ext4::ErrnoOf(made) == EDQUOT) {
      stopped_ = true;
    }
    return;
  }
  if (linkable) links_[ino] = host;
  if (type == S_IFDIR) {
    CopyContents(ino, from, host);
    if (stopped_) return;
  }
  ApplyAttributes(ino, *attr, shown, host);
}

void Getter::CopyContents(ext4::InodeNumber dir, const std::string& from,
                          const std::string& host) {
  dirs_.insert(dir);
  auto entries = ListEntries(fs_, dir);
  if (!entries.ok()) {
    Error(image_.file + ":" + from, StatusText(entries.status()));
    return;
  }
  std::sort(entries->begin(), entries->end(),
            [](const ext4::DirEntry& a, const ext4::DirEntry& b) {
              return a.name < b.name;
            });
  for (const ext4::DirEntry& e : *entries) {
    if (stopped_) return;
    if (e.name.empty() || e.name.find('/') != std::string::npos) {
      Error(image_.file + ":" + from,
            "an entry with an impossible name: the image is corrupt");
      continue;
    }
    CopyEntry(e.ino, JoinPath(from, e.name), JoinPath(host, e.name));
  }
}

absl::Status Getter::CopyData(ext4::InodeNumber ino,
                              const ext4::Attributes& attr,
                              const std::string& host) {
  HostFile file;
  E4_RETURN_IF_ERROR(file.Create(host));
  const uint64_t size = attr.size;
  constexpr uint64_t kChunk = 4096;
  uint64_t counted = 0;
  // Copies [from, to), leaving all-zero aligned 4 KiB pieces unwritten.
  auto copy = [&](uint64_t from, uint64_t to) -> absl::Status {
    while (from < to) {
      const size_t want =
          static_cast<size_t>(std::min<uint64_t>(buffer_.size(), to - from));
      E4_ASSIGN_OR_RETURN(size_t got,
                          fs_.Read(ino, from, std::span(buffer_.data(), want)));
      if (got == 0) {
        return ext4::ErrnoError(EIO, absl::StrCat("short read at ", from));
      }
      size_t run_start = 0, run_len = 0;
      for (size_t off = 0; off < got;) {
        const uint64_t abs = from + off;
        const size_t piece = static_cast<size_t>(
            std::min<uint64_t>(kChunk - abs % kChunk, got - off));
        const uint8_t* p = buffer_.data() + off;
        const bool zero =
            piece == kChunk &&
            std::all_of(p, p + piece, [](uint8_t b) { return b == 0; });
        if (zero) {
          if (run_len > 0) {
            E4_RETURN_IF_ERROR(file.WriteAt(
                from + run_start, buffer_.data() + run_start, run_len));
          }
          run_len = 0;
        } else {
          if (run_len == 0) run_start = off;
          run_len += piece;
        }
        off += piece;
      }
      if (run_len > 0) {
        E4_RETURN_IF_ERROR(file.WriteAt(from + run_start,
                                        buffer_.data() + run_start, run_len));
      }
      from += got;
      counted += got;
      progress_.AddBytes(got);
    }
    return absl::OkStatus();
  };
  uint64_t pos = 0;
  while (pos < size) {
    auto data = fs_.Seek(ino, pos, SEEK_DATA);
    if (!data.ok()) {
      if (ext4::ErrnoOf(data.status()) == ENXIO) break;  // a hole to the end
      E4_RETURN_IF_ERROR(copy(pos, size));               // no hole information
      break;
    }
    const uint64_t start = std::max(pos, std::min(*data, size));
    if (start >= size) break;
    auto hole = fs_.Seek(ino, start, SEEK_HOLE);
    uint64_t end = hole.ok() ? std::min(*hole, size) : size;
    if (end <= start) end = size;
    E4_RETURN_IF_ERROR(copy(start, end));
    pos = end;
  }
  progress_.AddBytes(size - std::min(size, counted));  // the holes
  return file.Finish(size);
}

void Getter::ApplyAttributes(ext4::InodeNumber ino,
                             const ext4::Attributes& attr,
                             const std::string& from, const std::string& host) {
  const bool symlink = S_ISLNK(attr.mode);
  if (xattrs_) {
    auto names = fs_.ListXattrs(ino);
    if (!names.ok()) {
      Error(from, "extended attributes: " + StatusText(names.status()));
    } else {
      for (const std::string& name : *names) {
        auto value = fs_.GetXattr(ino, name);
        if (!value.ok()) {
          Error(from, "xattr " + name + ": " + StatusText(value.status()));
          continue;
        }
        if (lsetxattr(host.c_str(), name.c_str(), value->data(), value->size(),
                      0) != 0) {
          Error(host, "xattr " + name + ": " + std::strerror(errno));
        }
      }
    }
  }
  if (lchown(host.c_str(), attr.uid, attr.gid) != 0) {
    // Without the privilege the copy belongs to the caller, as cp -a does.
    if (!(errno == EPERM && geteuid() != 0)) {
      Error(host, std::string("owner: ") + std::strerror(errno));
    }
  }
  // Mode after the owner: a change of owner clears setuid and setgid.
  if (!symlink && chmod(host.c_str(), attr.mode & 07777) != 0) {
    Error(host, std::string("mode: ") + std::strerror(errno));
  }
  struct timespec times[2];
  times[0].tv_sec = static_cast<time_t>(attr.atime.sec);
  times[0].tv_nsec = attr.atime.nsec;
  times[1].tv_sec = static_cast<time_t>(attr.mtime.sec);
  times[1].tv_nsec = attr.mtime.nsec;
  if (utimensat(AT_FDCWD, host.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
    Error(host, std::string("times: ") + std::strerror(errno));
  }
}

// Counts what a copy will go through, for the progress bar.
void Measure(ext4::Filesystem& fs, ext4::InodeNumber ino, bool top,
             std::set<ext4::InodeNumber>& seen, uint64_t* bytes,
             uint64_t* entries) {
  auto attr = fs.GetAttr(ino);
  if (!attr.ok()) return;
  if (!top) ++*entries;
  if (S_ISREG(attr->mode)) *bytes += attr->size;
  if (!S_ISDIR(attr->mode) || !seen.insert(ino).second) return;
  auto list = ListEntries(fs, ino);
  if (!list.ok()) return;
  for (const ext4::DirEntry& e : *list) {
    Measure(fs, e.ino, false, seen, bytes, entries);
  }
}

}  // namespace

int RunGet(int argc, char** argv) {
  Command cmd("get", kGetUsage);
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
  if (operands.size() < 2)
    return cmd.UsageError("expected IMAGE:/path... DEST");
  const std::string dest = operands.back();
  std::vector<ImagePath> sources;
  for (size_t i = 0; i + 1 < operands.size(); ++i) {
    auto where = ParseImagePath(operands[i]);
    if (!where.ok())
      return cmd.UsageError(std::string(where.status().message()));
    sources.push_back(*where);
  }
  struct stat dest_st;
  const bool dest_exists = stat(dest.c_str(), &dest_st) == 0;
  const bool dest_is_dir = dest_exists && S_ISDIR(dest_st.st_mode);
  if (dest_exists && !dest_is_dir) {
    return cmd.Fail(dest + ": exists and is not a directory");
  }
  if (!dest_exists && sources.size() > 1) {
    return cmd.Fail(dest + ": " + std::strerror(ENOENT) +
                    " (several sources need an existing directory)");
  }

  ImageSet images(/*writable=*/false);
  struct Job {
    Image* image;
    ext4::InodeNumber ino;
    std::string from;
    std::string host;
    bool contents;
  };
  std::vector<Job> jobs;
  int rc = kExitOk;
  for (size_t i = 0; i < sources.size(); ++i) {
    const ImagePath& where = sources[i];
    auto image = images.Get(where.image);
    if (!image.ok()) {
      rc = cmd.Fail(where.image + ": " + StatusText(image.status()));
      continue;
    }
    auto ino = Resolve(*(*image)->fs, where.path, /*follow=*/false);
    if (!ino.ok()) {
      rc = cmd.Fail(Display(where) + ": " + StatusText(ino.status()));
      continue;
    }
    auto attr = (*image)->fs->GetAttr(*ino);
    if (!attr.ok()) {
      rc = cmd.Fail(Display(where) + ": " + StatusText(attr.status()));
      continue;
    }
    const std::string base =
        BaseName(operands[i].substr(where.image.size() + 1));
    const bool is_dir = S_ISDIR(attr->mode);
    const bool contents =
        dest_is_dir && is_dir &&
        (where.path == "/" || base == "." || base == "/" || base.empty());
    if (base == "..") {
      rc =
          cmd.UsageError("'" + operands[i] + "': name the directory, not '..'");
      continue;
    }
    std::string host = dest;
    if (dest_is_dir && !contents) host = JoinPath(dest, BaseName(where.path));
    jobs.push_back({*image, *ino, where.path, host, contents});
  }
  if (rc != kExitOk) return rc;

  const bool draw = ProgressWanted(progress_mode);
  uint64_t total_bytes = 0, total_entries = 0;
  if (draw) {
    for (const Job& job : jobs) {
      std::set<ext4::InodeNumber> seen;
      Measure(*job.image->fs, job.ino, job.contents, seen, &total_bytes,
              &total_entries);
    }
  }
  Progress progress(draw, total_bytes, total_entries);
  // One per image, so that hard links are kept across sources.
  std::map<Image*, std::unique_ptr<Getter>> getters;
  bool stopped = false;
  for (const Job& job : jobs) {
    auto& getter = getters[job.image];
    if (getter == nullptr) {
      getter =
          std::make_unique<Getter>(cmd, *job.image, progress, verbose, xattrs);
    }
    if (job.contents) {
      getter->CopyContents(job.ino, job.from, job.host);
    } else {
      getter->CopyEntry(job.ino, job.from, job.host);
    }
    if (getter->stopped()) {
      stopped = true;
      break;
    }
  }
  progress.Finish();
  int errors = 0;
  for (const auto& [image, getter] : getters) errors += getter->errors();
  return errors > 0 || stopped ? kExitFailure : kExitOk;
}

}  // namespace e4cli
