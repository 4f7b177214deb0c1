#include "ext4/transaction.h"

#include <atomic>

#include "ext4/errno_status.h"

namespace ext4 {

uint64_t Transaction::NextId() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

absl::StatusOr<format::MutableBytes> Transaction::Modify(uint64_t block) {
  auto it = changed_.find(block);
  if (it != changed_.end()) return format::MutableBytes(*it->second);
  E4_ASSIGN_OR_RETURN(io::BlockRef current, blocks_.Read(block));
  auto copy = std::make_shared<std::vector<uint8_t>>(*current);
  format::MutableBytes bytes(*copy);
  changed_.emplace(block, std::move(copy));
  return bytes;
}

absl::StatusOr<format::MutableBytes> Transaction::ModifyNew(uint64_t block) {
  if (block >= blocks_.block_count()) {
    return Corrupt("new metadata block outside the filesystem");
  }
  // Freed and reused in the same transaction: it is written, not dropped.
  std::erase(forgotten_, block);
  auto& slot = changed_[block];
  slot = std::make_shared<std::vector<uint8_t>>(blocks_.block_size(), 0);
  return format::MutableBytes(*slot);
}

absl::StatusOr<format::Bytes> Transaction::Read(uint64_t block) {
  auto it = changed_.find(block);
  if (it != changed_.end()) return format::Bytes(*it->second);
  auto held = read_.find(block);
  if (held != read_.end()) return format::Bytes(*held->second);
  E4_ASSIGN_OR_RETURN(io::BlockRef current, blocks_.Read(block));
  // Keep the block alive for as long as the transaction: the span points
  // into it.
  read_.emplace(block, current);
  return format::Bytes(*current);
}

void Transaction::Forget(uint64_t block) {
  changed_.erase(block);
  forgotten_.push_back(block);
}

absl::Status Transaction::Commit() {
  if (blocks_.ordered_writes() && !changed_.empty()) {
    // Allocations first; a barrier makes them (and the file data written
    // before this commit) durable before anything that points at them.
    for (uint64_t block : first_) {
      auto it = changed_.find(block);
      if (it == changed_.end()) continue;
      E4_RETURN_IF_ERROR(blocks_.Write(block, std::move(it->second)));
      changed_.erase(it);
    }
    E4_RETURN_IF_ERROR(blocks_.Flush());
    // Releases last, behind another barrier.
    std::map<uint64_t, std::shared_ptr<std::vector<uint8_t>>> late;
    for (uint64_t block : last_) {
      auto it = changed_.find(block);
      if (it == changed_.end()) continue;
      late.insert(changed_.extract(it));
    }
    for (auto& [block, bytes] : changed_) {
      E4_RETURN_IF_ERROR(blocks_.Write(block, std::move(bytes)));
    }
    changed_.clear();
    if (!late.empty()) {
      E4_RETURN_IF_ERROR(blocks_.Flush());
      for (auto& [block, bytes] : late) {
        E4_RETURN_IF_ERROR(blocks_.Write(block, std::move(bytes)));
      }
    }
  }
  first_.clear();
  last_.clear();
  for (auto& [block, bytes] : changed_) {
    E4_RETURN_IF_ERROR(blocks_.Write(block, std::move(bytes)));
  }
  changed_.clear();
  for (uint64_t block : forgotten_) blocks_.Drop(block);
  forgotten_.clear();
  read_.clear();
  return absl::OkStatus();
}

}  // namespace ext4
