#include "tools/e4/host_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "ext4/errno_status.h"

namespace e4cli {

absl::Status HostError(int err) {
  return ext4::ErrnoError(err, std::strerror(err));
}

HostFile::~HostFile() {
  if (fd_ >= 0) close(fd_);
}

absl::Status HostFile::Open(const std::string& path) {
  fd_ = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
  if (fd_ < 0) return HostError(errno);
  return absl::OkStatus();
}

absl::Status HostFile::Create(const std::string& path) {
  fd_ = open(path.c_str(),
             O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC,
             0600);
  if (fd_ < 0) return HostError(errno);
  return absl::OkStatus();
}

absl::StatusOr<size_t> HostFile::ReadAt(uint64_t offset, uint8_t* data,
                                        size_t size) {
  while (true) {
    ssize_t n = pread(fd_, data, size, static_cast<off_t>(offset));
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) return HostError(errno);
  }
}

absl::Status HostFile::WriteAt(uint64_t offset, const uint8_t* data,
                               size_t size) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = pwrite(fd_, data + done, size - done,
                       static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return HostError(errno);
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status HostFile::Finish(uint64_t size) {
  absl::Status status = absl::OkStatus();
  if (ftruncate(fd_, static_cast<off_t>(size)) != 0) status = HostError(errno);
  if (close(fd_) != 0 && status.ok()) status = HostError(errno);
  fd_ = -1;
  return status;
}

absl::Status ForEachDataRegion(
    int fd, uint64_t size,
    const std::function<absl::Status(uint64_t, uint64_t)>& region) {
  uint64_t pos = 0;
  while (pos < size) {
    off_t data = lseek(fd, static_cast<off_t>(pos), SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) return absl::OkStatus();  // only a hole is left
      // No hole information here: the rest is one region.
      return region(pos, size);
    }
    const uint64_t start = static_cast<uint64_t>(data);
    if (start >= size) return absl::OkStatus();
    off_t hole = lseek(fd, data, SEEK_HOLE);
    uint64_t end = hole < 0 ? size : std::min<uint64_t>(hole, size);
    if (end <= start) end = size;
    if (absl::Status s = region(start, end); !s.ok()) return s;
    pos = end;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ListHostDirectory(
    const std::string& path) {
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return HostError(errno);
  std::vector<std::string> names;
  while (true) {
    errno = 0;
    struct dirent* e = readdir(dir);
    if (e == nullptr) break;
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  const int err = errno;
  closedir(dir);
  if (err != 0) return HostError(err);
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<std::string> ReadHostLink(const std::string& path,
                                         const struct stat& st) {
  size_t size = static_cast<size_t>(std::max<off_t>(st.st_size, 0)) + 1;
  while (true) {
    std::string target(size, '\0');
    ssize_t n = readlink(path.c_str(), target.data(), target.size());
    if (n < 0) return HostError(errno);
    if (static_cast<size_t>(n) < target.size()) {
      target.resize(static_cast<size_t>(n));
      return target;
    }
    size *= 2;  // the link grew
    if (size > (1 << 20)) return HostError(ENAMETOOLONG);
  }
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ReadHostXattrs(
    const std::string& path) {
  std::vector<std::pair<std::string, std::string>> out;
  std::string names;
  while (true) {
    ssize_t n = llistxattr(path.c_str(), nullptr, 0);
    if (n < 0) {
      if (errno == ENOTSUP) return out;
      return HostError(errno);
    }
    names.resize(static_cast<size_t>(n));
    if (n == 0) return out;
    n = llistxattr(path.c_str(), names.data(), names.size());
    if (n < 0 && errno == ERANGE) continue;  // the list grew
    if (n < 0) return HostError(errno);
    names.resize(static_cast<size_t>(n));
    break;
  }
  for (size_t i = 0; i < names.size();) {
    size_t end = names.find('\0', i);
    if (end == std::string::npos) end = names.size();
    std::string name = names.substr(i, end - i);
    i = end + 1;
    if (name.empty()) continue;
    std::string value;
    bool gone = false;
    while (true) {
      ssize_t n = lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
      if (n < 0 && errno == ENODATA) {
        gone = true;  // removed since it was listed
        break;
      }
      if (n < 0) return HostError(errno);
      value.resize(static_cast<size_t>(n));
      if (n == 0) break;
      n = lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
      if (n < 0 && errno == ERANGE) continue;
      if (n < 0) return HostError(errno);
      value.resize(static_cast<size_t>(n));
      break;
    }
    if (gone) continue;
    out.emplace_back(std::move(name), std::move(value));
  }
  return out;
}

}  // namespace e4cli
