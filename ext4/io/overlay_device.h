// A read-only view of a device with some blocks replaced: how a read-only
// mount sees an image whose journal it replayed in memory, leaving the
// image itself untouched.
#ifndef E4FS_EXT4_IO_OVERLAY_DEVICE_H_
#define E4FS_EXT4_IO_OVERLAY_DEVICE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "ext4/io/block_device.h"

namespace ext4::io {

// `blocks`: block number (of `block_size` bytes) -> contents read instead.
// Writes answer EROFS.
std::unique_ptr<BlockDevice> OverlayDevice(
    std::unique_ptr<BlockDevice> base, uint32_t block_size,
    std::map<uint64_t, std::vector<uint8_t>> blocks);

}  // namespace ext4::io

#endif  // E4FS_EXT4_IO_OVERLAY_DEVICE_H_
