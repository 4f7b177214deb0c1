// The engine's only view of storage. Every byte comes through here, so tests
// and fuzzers swap in memory or fault-injecting devices (LevelDB's Env idea).
#ifndef E4FS_EXT4_IO_BLOCK_DEVICE_H_
#define E4FS_EXT4_IO_BLOCK_DEVICE_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ext4::io {

class BlockDevice {
 public:
  virtual ~BlockDevice() = default;

  // Reads exactly out.size() bytes at `offset`; a read past the end is EIO.
  virtual absl::Status ReadAt(uint64_t offset, std::span<uint8_t> out) = 0;
  // Writes exactly data.size() bytes at `offset`.
  virtual absl::Status WriteAt(uint64_t offset,
                               std::span<const uint8_t> data) = 0;
  // Makes every completed write durable.
  virtual absl::Status Flush() = 0;
  // Size in bytes.
  virtual uint64_t Size() const = 0;
  virtual bool read_only() const = 0;
  // A device over a file or block device: its descriptor and where device
  // offset 0 lies in it, so that callers may hand reads to the kernel
  // (splice) instead of copying them. -1 for devices with no descriptor.
  virtual int DescriptorFor(uint64_t* file_offset_of_zero) const {
    (void)file_offset_of_zero;
    return -1;
  }
};

// A file or block device opened by path. `offset` is where the filesystem
// starts inside it (fuse2fs's offset= option). Takes an advisory lock so two
// writers cannot share an image.
absl::StatusOr<std::unique_ptr<BlockDevice>> OpenFileDevice(
    const std::string& path, bool read_only, uint64_t offset = 0);

// Serves an already open descriptor (ownership passes to the device).
absl::StatusOr<std::unique_ptr<BlockDevice>> FileDeviceFromFd(
    int fd, bool read_only, uint64_t offset = 0);

// An in-memory device for tests and fuzzing.
std::unique_ptr<BlockDevice> MemoryDevice(std::vector<uint8_t> bytes,
                                          bool read_only = false);

}  // namespace ext4::io

#endif  // E4FS_EXT4_IO_BLOCK_DEVICE_H_
