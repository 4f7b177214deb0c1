// Multi-mount protection (feature mmp), as the kernel's ext4 does it: a
// read-write mount first makes sure no other node is updating the MMP block,
// claims it with a sequence number of its own, and then rewrites it every
// update interval for as long as it is mounted; a clean unmount marks it
// clean. Another node (a kernel, e2fsck, another e4fs) that finds the number
// changing while it waits does not mount.
#ifndef E4FS_EXT4_MMP_H_
#define E4FS_EXT4_MMP_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ext4/format/mmp.h"
#include "ext4/format/superblock.h"
#include "ext4/io/block_device.h"

namespace ext4 {

class MultiMountProtection {
 public:
  // How the claim waits; tests pass one that does not sleep.
  using Sleeper = std::function<void(absl::Duration)>;
  // Told when the updater finds someone else's sequence number in the block
  // (the filesystem is mounted twice) or cannot write it; it stops then.
  using ConflictHandler = std::function<void(const absl::Status&)>;

  // Claims the MMP block of `sb` on `device` for a read-write mount. Waits
  // (through `sleep`) twice the check interval plus a second, once if the
  // block says another node is active, and once after writing its own
  // number. EBUSY when another node is active or e2fsck is running, EUCLEAN
  // for a bad MMP block or block number.
  static absl::StatusOr<std::unique_ptr<MultiMountProtection>> Claim(
      io::BlockDevice& device, const format::Superblock& sb,
      const Sleeper& sleep);

  // Stops the updater; the block keeps the live number (as a crash would).
  ~MultiMountProtection();

  // Starts rewriting the block on `device` every update interval; every
  // minute the block is read back first.
  void StartUpdates(io::BlockDevice* device, ConflictHandler on_conflict);

  // Stops the updater and marks the block clean.
  absl::Status Release(io::BlockDevice& device);

  // The number last written, and how often it changes.
  uint32_t seq() const;
  absl::Duration update_interval() const { return update_interval_; }
  // What a claim waits (after the kernel's formula).
  absl::Duration claim_wait() const { return claim_wait_; }

 private:
  MultiMountProtection(const format::Superblock& sb, uint64_t offset);

  absl::StatusOr<format::MmpBlock> ReadBlock(io::BlockDevice& device) const;
  absl::Status WriteBlock(io::BlockDevice& device, uint32_t seq);
  void StopUpdates();
  void UpdateLoop(io::BlockDevice* device, ConflictHandler on_conflict);

  const format::Superblock sb_;
  const uint64_t offset_;  // of the MMP block on the device, in bytes
  std::string node_name_;
  absl::Duration update_interval_;
  uint16_t check_interval_seconds_ = 0;
  absl::Duration claim_wait_;

  mutable absl::Mutex mu_;
  uint32_t seq_ ABSL_GUARDED_BY(mu_) = format::kMmpSeqClean;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread updater_;
};

}  // namespace ext4

#endif  // E4FS_EXT4_MMP_H_
