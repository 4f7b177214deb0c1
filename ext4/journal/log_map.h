// Where the journal's log lives on the device: the journal inode's blocks,
// by their index in the journal, as runs of physical blocks. Recovery reads
// through it and the writer writes through it; both work on the raw device,
// under the block cache, as jbd2 does under the buffer cache.
#ifndef E4FS_EXT4_JOURNAL_LOG_MAP_H_
#define E4FS_EXT4_JOURNAL_LOG_MAP_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ext4/io/block_device.h"
#include "ext4/journal/recovery.h"

namespace ext4::journal {

struct LogRun {
  uint64_t index = 0;     // first journal block of the run
  uint64_t physical = 0;  // where it is on the device
  uint64_t count = 0;
};

class LogMap {
 public:
  LogMap() = default;
  // `runs` must cover indices 0.. without gaps, in order (EUCLEAN
  // otherwise), and lie inside a filesystem of `fs_blocks` blocks.
  static absl::StatusOr<LogMap> Create(std::vector<LogRun> runs,
                                       uint64_t fs_blocks);

  uint64_t size() const { return size_; }
  // The physical block of journal block `index` (EUCLEAN past the end).
  absl::StatusOr<uint64_t> Physical(uint64_t index) const;
  // How many journal blocks from `index` on are physically contiguous.
  uint64_t ContiguousFrom(uint64_t index) const;

 private:
  const LogRun* RunOf(uint64_t index) const;

  std::vector<LogRun> runs_;
  uint64_t size_ = 0;
};

// The log as recovery reads it: blocks by journal index, from the device.
class DeviceLog final : public JournalLog {
 public:
  DeviceLog(io::BlockDevice& device, const LogMap& map, uint32_t block_size)
      : device_(device), map_(map), block_size_(block_size) {}

  uint64_t block_count() const override { return map_.size(); }
  uint32_t block_size() const override { return block_size_; }
  absl::Status Read(uint64_t index, std::span<uint8_t> out) override;

 private:
  io::BlockDevice& device_;
  const LogMap& map_;
  const uint32_t block_size_;
};

}  // namespace ext4::journal

#endif  // E4FS_EXT4_JOURNAL_LOG_MAP_H_
