// The kernel's readahead window for this mount.
//
// Every FUSE mount starts with the kernel's default window of 128 KiB
// (/sys/class/bdi/MAJ:MIN/read_ahead_kb of the mount's device): a sequential
// reader then costs one READ round trip per 128 KiB although a request may
// carry max_write (1 MiB here). Only root may widen the window, and the
// kernel lowers it again while it takes the INIT reply (to the max_readahead
// answered, itself at most what the kernel offered). So the setting is opened
// right after the mount, while /sys is reachable (the sandbox closes the way),
// and written once INIT is done: at the first open or read, before the
// kernel sets up the file's readahead state.
#ifndef E4FS_FUSE_READAHEAD_WINDOW_H_
#define E4FS_FUSE_READAHEAD_WINDOW_H_

#include <atomic>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace e4fs {

// The device number ("MAJ:MIN") of the mount on `mountpoint` (absolute, as
// mountinfo shows it unescaped) in the text of /proc/self/mountinfo; the
// last such line, the top of a stack of mounts. nullopt when none.
std::optional<std::string> MountDeviceFromMountinfo(
    std::string_view mountinfo, std::string_view mountpoint);

class ReadaheadWindow {
 public:
  ReadaheadWindow() = default;
  ~ReadaheadWindow();
  ReadaheadWindow(const ReadaheadWindow&) = delete;
  ReadaheadWindow& operator=(const ReadaheadWindow&) = delete;

  // Opens the read_ahead_kb setting of the mount on `mountpoint` for a
  // later Apply() of `kib`. Fails (and Apply() does nothing) when the mount
  // is not found or the setting cannot be opened (not root).
  absl::Status Prepare(const std::string& mountpoint, unsigned kib);
  // Tests and tools: a setting file of their own.
  absl::Status PrepareFile(const std::string& path, unsigned kib);

  // Writes the window once; later calls, and calls without a prepared
  // setting, cost one atomic load. Thread-safe.
  void Apply();

 private:
  std::atomic<int> fd_{-1};
  unsigned kib_ = 0;
};

}  // namespace e4fs

#endif  // E4FS_FUSE_READAHEAD_WINDOW_H_
