// The host side of get and put: reading and writing files, directories,
// symlinks and extended attributes of the machine e4 runs on, with errors
// as errno statuses.
#ifndef E4FS_TOOLS_E4_HOST_FILES_H_
#define E4FS_TOOLS_E4_HOST_FILES_H_

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace e4cli {

// A file descriptor closed on destruction.
class HostFile {
 public:
  HostFile() = default;
  ~HostFile();
  HostFile(const HostFile&) = delete;
  HostFile& operator=(const HostFile&) = delete;

  // Opens an existing file for reading (never following a final symlink).
  absl::Status Open(const std::string& path);
  // Creates a new file for writing (EEXIST when something is there).
  absl::Status Create(const std::string& path);
  // Reads up to `size` bytes at `offset` (0 at end of file).
  absl::StatusOr<size_t> ReadAt(uint64_t offset, uint8_t* data, size_t size);
  // Writes all of `size` bytes at `offset`.
  absl::Status WriteAt(uint64_t offset, const uint8_t* data, size_t size);
  // Sets the size (holes past the last write stay holes), then closes,
  // reporting a failed close.
  absl::Status Finish(uint64_t size);

  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

// Calls `region(start, end)` for each range of [0, size) that may hold data,
// in order, skipping what SEEK_DATA/SEEK_HOLE report as holes (the whole
// file is one region where the host filesystem cannot tell).
absl::Status ForEachDataRegion(
    int fd, uint64_t size,
    const std::function<absl::Status(uint64_t start, uint64_t end)>& region);

// A host directory's entry names (without "." and ".."), sorted.
absl::StatusOr<std::vector<std::string>> ListHostDirectory(
    const std::string& path);

// A symlink's target (`st` from lstat gives the expected length).
absl::StatusOr<std::string> ReadHostLink(const std::string& path,
                                         const struct stat& st);

// Every extended attribute of `path` (not following a symlink), in the
// order the host lists them. An unsupported filesystem has none.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ReadHostXattrs(
    const std::string& path);

// An errno status with `strerror(err)` as message.
absl::Status HostError(int err);

}  // namespace e4cli

#endif  // E4FS_TOOLS_E4_HOST_FILES_H_
