#include "ext4/mkfs/populate.h"

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
#include "ext4/mkfs/mkfs.h"

namespace ext4::mkfs {
namespace {

// Reads of file contents go in pieces of this size.
constexpr size_t kReadChunk = 1 << 20;

absl::Status HostError(int err, const std::string& what,
                       const std::string& path) {
  return ErrnoError(err, absl::StrCat(what, " ", path, ": ", strerror(err)));
}

// The engine's error, with the host path it happened on.
absl::Status EngineError(const absl::Status& status, const std::string& what,
                         const std::string& path) {
  return ErrnoError(
      ErrnoOf(status),
      absl::StrCat(what, " ", path, ": ", std::string(status.message())));
}

Timestamp ToTimestamp(const struct timespec& ts) {
  return {static_cast<int64_t>(ts.tv_sec), static_cast<uint32_t>(ts.tv_nsec)};
}

// Closes a descriptor or directory stream on scope exit.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;

 private:
  int fd_;
};

class Copier {
 public:
  explicit Copier(Filesystem& fs) : fs_(fs) {}

  absl::Status Run(const std::string& dir);

 private:
  // Copies the entries of host directory `path` into directory `ino`.
  absl::Status CopyDirectory(const std::string& path, InodeNumber ino,
                             bool top);
  absl::Status CopyEntry(const std::string& path, const std::string& name,
                         InodeNumber parent, bool top);
  absl::Status CopyData(const std::string& path, const struct stat& st,
                        InodeNumber ino);
  absl::Status CopyXattrs(const std::string& path, InodeNumber ino);
  // Owner, then extended attributes, then mode and times (chown clears
  // setuid; every change moves ctime).
  absl::Status ApplyAttributes(const std::string& path, const struct stat& st,
                               InodeNumber ino);
  absl::Status ApplyTimes(const std::string& path, const struct stat& st,
                          InodeNumber ino);

  Filesystem& fs_;
  Credentials root_;
  uint32_t block_size_ = 4096;
  // Host inodes with several names, by (device, inode): the copy's inode
  // and the host's attributes, whose times are set again at the end (a new
  // link moves ctime).
  std::map<std::pair<dev_t, ino_t>, std::pair<InodeNumber, struct stat>>
      linked_;
  std::vector<uint8_t> buffer_;
};

absl::Status Copier::Run(const std::string& dir) {
  struct stat st;
  if (lstat(dir.c_str(), &st) != 0) return HostError(errno, "cannot stat", dir);
  if (!S_ISDIR(st.st_mode)) {
    return ErrnoError(ENOTDIR, absl::StrCat(dir, " is not a directory"));
  }
  auto stats = fs_.StatFs();
  if (!stats.ok()) return stats.status();
  block_size_ = stats->block_size;
  E4_RETURN_IF_ERROR(CopyDirectory(dir, kRootInode, /*top=*/true));
  E4_RETURN_IF_ERROR(ApplyAttributes(dir, st, kRootInode));
  for (const auto& [key, value] : linked_) {
    E4_RETURN_IF_ERROR(ApplyTimes(dir, value.second, value.first));
  }
  return absl::OkStatus();
}

absl::Status Copier::CopyDirectory(const std::string& path, InodeNumber ino,
                                   bool top) {
  DIR* stream = opendir(path.c_str());
  if (stream == nullptr) return HostError(errno, "cannot open", path);
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* entry = readdir(stream)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
    errno = 0;
  }
  const int err = errno;
  closedir(stream);
  if (err != 0) return HostError(err, "cannot read", path);
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    E4_RETURN_IF_ERROR(CopyEntry(path + "/" + name, name, ino, top));
  }
  return absl::OkStatus();
}

absl::Status Copier::CopyEntry(const std::string& path, const std::string& name,
                               InodeNumber parent, bool top) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    return HostError(errno, "cannot stat", path);
  }
  const uint32_t perms = st.st_mode & 07777;
  if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
    auto it = linked_.find({st.st_dev, st.st_ino});
    if (it != linked_.end()) {
      auto linked = fs_.Link(it->second.first, parent, name);
      if (!linked.ok())
        return EngineError(linked.status(), "cannot link", path);
      return absl::OkStatus();
    }
  }
  InodeNumber ino = 0;
  if (S_ISDIR(st.st_mode)) {
    if (top && name == "lost+found") {
      // mkfs made one already: fill it.
      auto existing = fs_.Lookup(parent, name);
      if (existing.ok()) ino = *existing;
    }
    if (ino == 0) {
      auto made = fs_.MakeDirectory(parent, name, perms, root_);
      if (!made.ok()) {
        return EngineError(made.status(), "cannot make directory", path);
      }
      ino = made->ino;
    }
    E4_RETURN_IF_ERROR(CopyDirectory(path, ino, /*top=*/false));
  } else if (S_ISREG(st.st_mode)) {
    auto made = fs_.Create(parent, name, perms, root_);
    if (!made.ok()) return EngineError(made.status(), "cannot create", path);
    ino = made->ino;
    E4_RETURN_IF_ERROR(CopyData(path, st, ino));
  } else if (S_ISLNK(st.st_mode)) {
    std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
    ssize_t n = readlink(path.c_str(), target.data(), target.size());
    if (n < 0) return HostError(errno, "cannot read symlink", path);
    if (static_cast<size_t>(n) >= target.size()) {
      return HostError(EAGAIN, "symlink changed while read:", path);
    }
    target.resize(static_cast<size_t>(n));
    auto made = fs_.MakeSymlink(parent, name, target, root_);
    if (!made.ok()) {
      return EngineError(made.status(), "cannot make symlink", path);
    }
    ino = made->ino;
  } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ||
             S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) {
    const bool device = S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode);
    auto made = fs_.MakeNode(parent, name, st.st_mode & (S_IFMT | 07777),
                             device ? major(st.st_rdev) : 0,
                             device ? minor(st.st_rdev) : 0, root_);
    if (!made.ok()) return EngineError(made.status(), "cannot make", path);
    ino = made->ino;
  } else {
    return ErrnoError(EINVAL, absl::StrCat(path, ": unknown file type"));
  }
  E4_RETURN_IF_ERROR(ApplyAttributes(path, st, ino));
  if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
    linked_[{st.st_dev, st.st_ino}] = {ino, st};
  }
  return absl::OkStatus();
}

absl::Status Copier::CopyData(const std::string& path, const struct stat& st,
                              InodeNumber ino) {
  if (st.st_size == 0) return absl::OkStatus();  // even if unreadable
  const int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return HostError(errno, "cannot open", path);
  FdCloser closer(fd);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const uint64_t bs = block_size_;
  buffer_.resize(kReadChunk);
  uint64_t position = 0;
  while (position < size) {
    // The next region that may hold data; the source's holes are skipped.
    off_t data = lseek(fd, static_cast<off_t>(position), SEEK_DATA);
    uint64_t start = position;
    uint64_t end = size;
    if (data < 0) {
      if (errno == ENXIO) break;  // only a hole is left
      if (errno != EINVAL && errno != EOPNOTSUPP) {
        return HostError(errno, "cannot seek in", path);
      }
    } else {
      start = static_cast<uint64_t>(data);
      off_t hole = lseek(fd, data, SEEK_HOLE);
      if (hole > data) end = std::min(size, static_cast<uint64_t>(hole));
    }
    if (start >= size) break;
    // Whole blocks, so that an all-zero block can stay a hole.
    start -= start % bs;
    while (start < end) {
      const size_t want =
          static_cast<size_t>(std::min<uint64_t>(kReadChunk, end - start));
      ssize_t got = pread(fd, buffer_.data(), want, static_cast<off_t>(start));
      if (got < 0) return HostError(errno, "cannot read", path);
      if (got == 0) break;  // the file shrank under us
      const size_t n = static_cast<size_t>(got);
      // Write each run of blocks that are not all zero.
      auto zero_block = [&](size_t off) {
        const size_t len = std::min<size_t>(bs, n - off);
        return std::all_of(buffer_.begin() + off, buffer_.begin() + off + len,
                           [](uint8_t b) { return b == 0; });
      };
      size_t off = 0;
      while (off < n) {
        if (zero_block(off)) {
          off += std::min<size_t>(bs, n - off);
          continue;
        }
        const size_t run = off;
        while (off < n && !zero_block(off)) {
          off += std::min<size_t>(bs, n - off);
        }
        auto written = fs_.Write(
            ino, start + run,
            std::span<const uint8_t>(buffer_.data() + run, off - run), root_);
        if (!written.ok()) {
          return EngineError(written.status(), "cannot write", path);
        }
      }
      start += n;
    }
    position = std::max(end, position + 1);
  }
  // Trailing holes and all-zero tails: the size alone.
  auto attr = fs_.GetAttr(ino);
  if (!attr.ok())
    return EngineError(attr.status(), "cannot stat copy of", path);
  if (attr->size != size) {
    SetAttrRequest request;
    request.size = size;
    auto set = fs_.SetAttr(ino, request, root_);
    if (!set.ok()) return EngineError(set.status(), "cannot resize", path);
  }
  return absl::OkStatus();
}

absl::Status Copier::CopyXattrs(const std::string& path, InodeNumber ino) {
  ssize_t size = llistxattr(path.c_str(), nullptr, 0);
  if (size < 0) {
    if (errno == ENOTSUP) return absl::OkStatus();
    return HostError(errno, "cannot list extended attributes of", path);
  }
  if (size == 0) return absl::OkStatus();
  std::string names(static_cast<size_t>(size), '\0');
  size = llistxattr(path.c_str(), names.data(), names.size());
  if (size < 0) {
    return HostError(errno, "cannot list extended attributes of", path);
  }
  names.resize(static_cast<size_t>(size));
  std::vector<std::string> list;
  for (size_t i = 0; i < names.size();) {
    size_t end = names.find('\0', i);
    if (end == std::string::npos) end = names.size();
    if (end > i) list.push_back(names.substr(i, end - i));
    i = end + 1;
  }
  std::sort(list.begin(), list.end());
  for (const std::string& name : list) {
    ssize_t length = lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (length < 0) {
      if (errno == ENODATA) continue;  // removed meanwhile
      return HostError(errno, absl::StrCat("cannot read ", name, " of"), path);
    }
    std::string value(static_cast<size_t>(length), '\0');
    length = lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
    if (length < 0) {
      return HostError(errno, absl::StrCat("cannot read ", name, " of"), path);
    }
    value.resize(static_cast<size_t>(length));
    absl::Status set = fs_.SetXattr(ino, name, value, 0);
    if (!set.ok()) {
      return EngineError(set, absl::StrCat("cannot set ", name, " on"), path);
    }
  }
  return absl::OkStatus();
}

absl::Status Copier::ApplyAttributes(const std::string& path,
                                     const struct stat& st, InodeNumber ino) {
  SetAttrRequest owner;
  owner.uid = st.st_uid;
  owner.gid = st.st_gid;
  auto set = fs_.SetAttr(ino, owner, root_);
  if (!set.ok()) return EngineError(set.status(), "cannot chown", path);
  E4_RETURN_IF_ERROR(CopyXattrs(path, ino));
  if (!S_ISLNK(st.st_mode)) {
    SetAttrRequest mode;
    mode.mode = st.st_mode & 07777;
    set = fs_.SetAttr(ino, mode, root_);
    if (!set.ok()) return EngineError(set.status(), "cannot chmod", path);
  }
  return ApplyTimes(path, st, ino);
}

absl::Status Copier::ApplyTimes(const std::string& path, const struct stat& st,
                                InodeNumber ino) {
  SetAttrRequest times;
  times.atime = ToTimestamp(st.st_atim);
  times.mtime = ToTimestamp(st.st_mtim);
  times.ctime = ToTimestamp(st.st_ctim);
  auto set = fs_.SetAttr(ino, times, root_);
  if (!set.ok()) return EngineError(set.status(), "cannot set times of", path);
  return absl::OkStatus();
}

// Forwards to a device owned elsewhere.
class BorrowedDevice : public io::BlockDevice {
 public:
  explicit BorrowedDevice(io::BlockDevice& device) : device_(device) {}
  absl::Status ReadAt(uint64_t offset, std::span<uint8_t> out) override {
    return device_.ReadAt(offset, out);
  }
  absl::Status WriteAt(uint64_t offset,
                       std::span<const uint8_t> data) override {
    return device_.WriteAt(offset, data);
  }
  absl::Status Flush() override { return device_.Flush(); }
  uint64_t Size() const override { return device_.Size(); }
  bool read_only() const override { return device_.read_only(); }

 private:
  io::BlockDevice& device_;
};

}  // namespace

absl::Status PopulateFromDirectory(Filesystem& fs, const std::string& dir) {
  Copier copier(fs);
  return copier.Run(dir);
}

std::unique_ptr<io::BlockDevice> BorrowDevice(io::BlockDevice& device) {
  return std::make_unique<BorrowedDevice>(device);
}

absl::Status MakeFilesystemFromDirectory(io::BlockDevice& device,
                                         const MkfsOptions& options,
                                         const std::string& source_dir) {
  E4_RETURN_IF_ERROR(MakeFilesystem(device, options));
  MountOptions mount;
  mount.read_only = false;
  mount.commit_interval_seconds = 0;
  E4_ASSIGN_OR_RETURN(std::unique_ptr<Filesystem> fs,
                      Filesystem::Open(BorrowDevice(device), mount));
  absl::Status status = PopulateFromDirectory(*fs, source_dir);
  absl::Status synced = fs->SyncAll();
  fs.reset();
  E4_RETURN_IF_ERROR(status);
  return synced;
}

}  // namespace ext4::mkfs
