#include "fuse/readahead_window.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "ext4/errno_status.h"
#include "fuse/mount_table.h"

namespace e4fs {

std::optional<std::string> MountDeviceFromMountinfo(
    std::string_view mountinfo, std::string_view mountpoint) {
  std::optional<std::string> device;
  const absl::string_view text(mountinfo.data(), mountinfo.size());
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    // id parent MAJ:MIN root mountpoint options ...
    std::vector<std::string> fields =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (fields.size() < 5) continue;
    if (UnescapeMountField(fields[4]) != mountpoint) continue;
    if (fields[2].find(':') == std::string::npos) continue;
    device = fields[2];
  }
  return device;
}

ReadaheadWindow::~ReadaheadWindow() {
  const int fd = fd_.exchange(-1);
  if (fd >= 0) close(fd);
}

absl::Status ReadaheadWindow::Prepare(const std::string& mountpoint,
                                      unsigned kib) {
  std::optional<std::string> device = MountDeviceFromMountinfo(
      ReadProcText("/proc/self/mountinfo"), mountpoint);
  if (!device) {
    return ext4::ErrnoError(ENOENT, absl::StrCat("no mount on ", mountpoint));
  }
  return PrepareFile(absl::StrCat("/sys/class/bdi/", *device, "/read_ahead_kb"),
                     kib);
}

absl::Status ReadaheadWindow::PrepareFile(const std::string& path,
                                          unsigned kib) {
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return ext4::ErrnoError(errno, absl::StrCat("cannot open ", path));
  kib_ = kib;
  const int old = fd_.exchange(fd);
  if (old >= 0) close(old);
  return absl::OkStatus();
}

void ReadaheadWindow::Apply() {
  if (fd_.load(std::memory_order_relaxed) < 0) return;
  const int fd = fd_.exchange(-1);
  if (fd < 0) return;  // another thread took it
  const std::string value = absl::StrCat(kib_, "\n");
  // Nothing to do about a refusal: the kernel's window stays.
  (void)!write(fd, value.data(), value.size());
  close(fd);
}

}  // namespace e4fs
