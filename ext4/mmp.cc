#include "ext4/mmp.h"

#include <unistd.h>

#include <algorithm>
#include <random>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"

namespace ext4 {
namespace {

// The kernel's constants (fs/ext4/ext4.h).
constexpr int kDefaultUpdateInterval = 5;  // seconds, when the sb says 0
constexpr int kMaxUpdateInterval = 300;
constexpr int kMinCheckInterval = 5;
constexpr int kMaxCheckInterval = 300;
constexpr int kCheckMultiplier = 2;
// The updater reads the block back at least this often.
constexpr absl::Duration kReadBackInterval = absl::Seconds(60);

std::string HostName() {
  char name[65] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown";
  return name;
}

// A fresh live sequence number, as mmp_new_seq: random, at most kMmpSeqMax.
uint32_t NewSeq() {
  std::random_device random;
  uint32_t seq;
  do {
    seq = random();
  } while (seq > format::kMmpSeqMax || seq == 0);
  return seq;
}

std::string Holder(const format::MmpBlock& mmp) {
  return absl::StrCat("node \"", mmp.node_name, "\", device \"",
                      mmp.device_name, "\"");
}

}  // namespace

MultiMountProtection::MultiMountProtection(const format::Superblock& sb,
                                           uint64_t offset)
    : sb_(sb), offset_(offset), node_name_(HostName()) {}

MultiMountProtection::~MultiMountProtection() { StopUpdates(); }

absl::StatusOr<std::unique_ptr<MultiMountProtection>>
MultiMountProtection::Claim(io::BlockDevice& device,
                            const format::Superblock& sb,
                            const Sleeper& sleep) {
  if (sb.mmp_block < sb.first_data_block || sb.mmp_block >= sb.blocks_count) {
    return Corrupt(absl::StrCat("the MMP block number ", sb.mmp_block,
                                " is outside the filesystem"));
  }
  std::unique_ptr<MultiMountProtection> mmp(
      new MultiMountProtection(sb, sb.mmp_block * sb.block_size()));
  int update = sb.mmp_update_interval;
  if (update == 0) update = kDefaultUpdateInterval;
  update = std::min(update, kMaxUpdateInterval);
  mmp->update_interval_ = absl::Seconds(update);

  E4_ASSIGN_OR_RETURN(format::MmpBlock current, mmp->ReadBlock(device));
  // The longer of ours and the one the active node advertises (bounded:
  // the block is untrusted and a huge value would hang the mount).
  int check = std::max(kCheckMultiplier * update, kMinCheckInterval);
  check = std::max<int>(
      check, std::min<int>(current.check_interval, kMaxCheckInterval));
  mmp->check_interval_seconds_ = static_cast<uint16_t>(check);
  mmp->claim_wait_ = absl::Seconds(std::min(check * 2 + 1, check + 60));

  if (current.seq == format::kMmpSeqFsck) {
    return ErrnoError(EBUSY, absl::StrCat("e2fsck is running on the "
                                          "filesystem (MMP block held by ",
                                          Holder(current), ")"));
  }
  if (current.seq != format::kMmpSeqClean) {
    // Someone may be mounted: a live node changes the number meanwhile.
    sleep(mmp->claim_wait_);
    E4_ASSIGN_OR_RETURN(format::MmpBlock again, mmp->ReadBlock(device));
    if (again.seq != current.seq) {
      return ErrnoError(EBUSY,
                        absl::StrCat("the filesystem is in use by another "
                                     "node (MMP block updated by ",
                                     Holder(again), ")"));
    }
  }
  const uint32_t ours = NewSeq();
  E4_RETURN_IF_ERROR(mmp->WriteBlock(device, ours));
  // Another node claiming at the same time overwrites ours within the wait.
  sleep(mmp->claim_wait_);
  E4_ASSIGN_OR_RETURN(format::MmpBlock after, mmp->ReadBlock(device));
  if (after.seq != ours) {
    return ErrnoError(EBUSY, absl::StrCat("the filesystem is in use by "
                                          "another node (MMP block taken by ",
                                          Holder(after), ")"));
  }
  return mmp;
}

absl::StatusOr<format::MmpBlock> MultiMountProtection::ReadBlock(
    io::BlockDevice& device) const {
  std::vector<uint8_t> bytes(format::kMmpSize);
  E4_RETURN_IF_ERROR(device.ReadAt(offset_, bytes));
  return format::ParseMmpBlock(bytes, sb_);
}

absl::Status MultiMountProtection::WriteBlock(io::BlockDevice& device,
                                              uint32_t seq) {
  format::MmpBlock mmp;
  mmp.seq = seq;
  mmp.time = static_cast<uint64_t>(absl::ToUnixSeconds(absl::Now()));
  mmp.node_name = node_name_;
  mmp.device_name = "e4fs";
  mmp.check_interval = check_interval_seconds_;
  std::vector<uint8_t> bytes(format::kMmpSize);
  format::SerializeMmpBlock(mmp, sb_, bytes);
  E4_RETURN_IF_ERROR(device.WriteAt(offset_, bytes));
  // Durable at once: the other node reads the device, not our caches.
  E4_RETURN_IF_ERROR(device.Flush());
  absl::MutexLock lock(&mu_);
  seq_ = seq;
  return absl::OkStatus();
}

uint32_t MultiMountProtection::seq() const {
  absl::MutexLock lock(&mu_);
  return seq_;
}

void MultiMountProtection::StartUpdates(io::BlockDevice* device,
                                        ConflictHandler on_conflict) {
  if (updater_.joinable()) return;
  updater_ = std::thread([this, device, on_conflict = std::move(on_conflict)] {
    UpdateLoop(device, on_conflict);
  });
}

void MultiMountProtection::UpdateLoop(io::BlockDevice* device,
                                      ConflictHandler on_conflict) {
  absl::Time last_read_back = absl::Now();
  for (;;) {
    uint32_t last;
    {
      absl::MutexLock lock(&mu_);
      auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_;
      };
      mu_.AwaitWithTimeout(absl::Condition(&stopping), update_interval_);
      if (stopping_) return;
      last = seq_;
    }
    if (absl::Now() - last_read_back >= kReadBackInterval) {
      last_read_back = absl::Now();
      absl::StatusOr<format::MmpBlock> current = ReadBlock(*device);
      if (!current.ok()) {
        on_conflict(current.status());
        return;
      }
      if (current->seq != last) {
        on_conflict(ErrnoError(
            EBUSY,
            absl::StrCat("the MMP block was changed by ", Holder(*current),
                         ": the filesystem seems to be mounted on "
                         "another node as well")));
        return;
      }
    }
    uint32_t next = last + 1;
    if (next > format::kMmpSeqMax || last == format::kMmpSeqClean) next = 1;
    if (absl::Status written = WriteBlock(*device, next); !written.ok()) {
      on_conflict(written);
      return;
    }
  }
}

void MultiMountProtection::StopUpdates() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (updater_.joinable()) updater_.join();
}

absl::Status MultiMountProtection::Release(io::BlockDevice& device) {
  StopUpdates();
  return WriteBlock(device, format::kMmpSeqClean);
}

}  // namespace ext4
