#include "ext4/journal/log_map.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"

namespace ext4::journal {

absl::StatusOr<LogMap> LogMap::Create(std::vector<LogRun> runs,
                                      uint64_t fs_blocks) {
  LogMap map;
  for (const LogRun& run : runs) {
    if (run.count == 0) continue;
    if (run.index != map.size_) {
      return Corrupt(
          absl::StrCat("the journal has a hole at block ", map.size_));
    }
    if (run.physical == 0 || run.physical >= fs_blocks ||
        run.count > fs_blocks - run.physical) {
      return Corrupt("the journal's blocks lie outside the filesystem");
    }
    // Adjacent runs that are also physically adjacent become one.
    if (!map.runs_.empty()) {
      LogRun& last = map.runs_.back();
      if (last.physical + last.count == run.physical) {
        last.count += run.count;
        map.size_ += run.count;
        continue;
      }
    }
    map.runs_.push_back(run);
    map.size_ += run.count;
  }
  return map;
}

const LogRun* LogMap::RunOf(uint64_t index) const {
  auto it = std::upper_bound(
      runs_.begin(), runs_.end(), index,
      [](uint64_t i, const LogRun& run) { return i < run.index; });
  if (it == runs_.begin()) return nullptr;
  --it;
  if (index >= it->index + it->count) return nullptr;
  return &*it;
}

absl::StatusOr<uint64_t> LogMap::Physical(uint64_t index) const {
  const LogRun* run = RunOf(index);
  if (run == nullptr) {
    return Corrupt(
        absl::StrCat("journal block ", index, " is past the journal's end"));
  }
  return run->physical + (index - run->index);
}

uint64_t LogMap::ContiguousFrom(uint64_t index) const {
  const LogRun* run = RunOf(index);
  if (run == nullptr) return 0;
  return run->index + run->count - index;
}

absl::Status DeviceLog::Read(uint64_t index, std::span<uint8_t> out) {
  E4_ASSIGN_OR_RETURN(uint64_t physical, map_.Physical(index));
  return device_.ReadAt(physical * block_size_, out);
}

}  // namespace ext4::journal
