// A BlockDevice over a file or a block device, read with pread and written
// with pwrite at a fixed offset (the filesystem may start inside the file).
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "ext4/io/block_device.h"

namespace ext4::io {
namespace {

class FileBlockDevice final : public BlockDevice {
 public:
  FileBlockDevice(int fd, bool read_only, uint64_t offset, uint64_t size)
      : fd_(fd), read_only_(read_only), offset_(offset), size_(size) {}
  ~FileBlockDevice() override { close(fd_); }

  int DescriptorFor(uint64_t* file_offset_of_zero) const override {
    *file_offset_of_zero = offset_;
    return fd_;
  }

  absl::Status ReadAt(uint64_t offset, std::span<uint8_t> out) override {
    if (offset > size_ || out.size() > size_ - offset) {
      return ErrnoError(
          EIO, absl::StrCat("read of ", out.size(), " bytes at ", offset,
                            " is past the end of the image"));
    }
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n = pread(fd_, out.data() + done, out.size() - done,
                        static_cast<off_t>(offset_ + offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoError(errno, absl::StrCat("read at ", offset + done, ": ",
                                              std::strerror(errno)));
      }
      if (n == 0) {
        return ErrnoError(EIO, absl::StrCat("short read at ", offset + done));
      }
      done += static_cast<size_t>(n);
    }
    return absl::OkStatus();
  }

  absl::Status WriteAt(uint64_t offset,
                       std::span<const uint8_t> data) override {
    if (read_only_) return ErrnoError(EROFS, "device is read-only");
    if (offset > size_ || data.size() > size_ - offset) {
      return ErrnoError(
          EIO, absl::StrCat("write of ", data.size(), " bytes at ", offset,
                            " is past the end of the image"));
    }
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = pwrite(fd_, data.data() + done, data.size() - done,
                         static_cast<off_t>(offset_ + offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoError(errno, absl::StrCat("write at ", offset + done, ": ",
                                              std::strerror(errno)));
      }
      done += static_cast<size_t>(n);
    }
    return absl::OkStatus();
  }

  absl::Status Flush() override {
    if (read_only_) return absl::OkStatus();
    if (fdatasync(fd_) != 0) {
      return ErrnoError(errno,
                        absl::StrCat("fdatasync: ", std::strerror(errno)));
    }
    return absl::OkStatus();
  }

  uint64_t Size() const override { return size_; }
  bool read_only() const override { return read_only_; }

 private:
  const int fd_;
  const bool read_only_;
  const uint64_t offset_;
  const uint64_t size_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<BlockDevice>> FileDeviceFromFd(int fd,
                                                              bool read_only,
                                                              uint64_t offset) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return ErrnoError(err, absl::StrCat("fstat: ", std::strerror(err)));
  }
  uint64_t total = 0;
  if (S_ISBLK(st.st_mode)) {
    if (ioctl(fd, BLKGETSIZE64, &total) != 0) {
      int err = errno;
      close(fd);
      return ErrnoError(err, "cannot read the block device's size");
    }
  } else if (S_ISREG(st.st_mode)) {
    total = static_cast<uint64_t>(st.st_size);
  } else {
    close(fd);
    return ErrnoError(EINVAL, "not a regular file or block device");
  }
  if (offset > total) {
    close(fd);
    return ErrnoError(EINVAL, absl::StrCat("offset ", offset,
                                           " is past the end of the image (",
                                           total, " bytes)"));
  }
  // Two writers on one image corrupt it; an exclusive lock for writers and a
  // shared one for readers keeps e4fs instances (and tools that lock) apart.
  if (flock(fd, (read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
    int err = errno;
    close(fd);
    if (err == EWOULDBLOCK) {
      return ErrnoError(EBUSY, "the image is in use by another program");
    }
    return ErrnoError(err, absl::StrCat("lock: ", std::strerror(err)));
  }
  return std::unique_ptr<BlockDevice>(
      new FileBlockDevice(fd, read_only, offset, total - offset));
}

absl::StatusOr<std::unique_ptr<BlockDevice>> OpenFileDevice(
    const std::string& path, bool read_only, uint64_t offset) {
  int fd = open(path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    return ErrnoError(err, absl::StrCat(path, ": ", std::strerror(err)));
  }
  return FileDeviceFromFd(fd, read_only, offset);
}

}  // namespace ext4::io
