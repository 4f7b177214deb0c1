// The journal's life inside a mount: replay before anything else reads the
// image, the writer on read-write mounts, when transactions commit (a size
// threshold, the commit=N timer, fsync, unmount), and the commit thread.
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "ext4/errno_status.h"
#include "ext4/filesystem_impl.h"
#include "ext4/format/journal.h"
#include "ext4/io/overlay_device.h"
#include "ext4/journal/recovery.h"

namespace ext4 {

absl::StatusOr<journal::LogMap> FilesystemImpl::JournalLogMap() {
  if (sb_.has_incompat(format::kIncompatJournalDev) || sb_.journal_inum == 0) {
    return ErrnoError(EOPNOTSUPP, "external journals are not supported");
  }
  E4_ASSIGN_OR_RETURN(InodeHandle node, GetInode(sb_.journal_inum));
  const uint32_t bs = sb_.block_size();
  const uint64_t blocks = node->inode.size / bs;
  if (blocks == 0) return Corrupt("the journal inode is empty");
  if (blocks > sb_.blocks_count) return Corrupt("the journal is too large");
  std::unique_ptr<FileMap> map = MakeFileMap(
      node->inode, blocks_, sb_.metadata_csum(), node->checksum_seed);
  std::vector<journal::LogRun> runs;
  for (uint64_t index = 0; index < blocks;) {
    E4_ASSIGN_OR_RETURN(BlockMapping mapping, map->Map(index));
    if (mapping.physical == 0 || mapping.unwritten) {
      return Corrupt(absl::StrCat("the journal has a hole at block ", index));
    }
    const uint64_t count = std::min(mapping.length, blocks - index);
    runs.push_back({index, mapping.physical, count});
    index += count;
  }
  return journal::LogMap::Create(std::move(runs), sb_.blocks_count);
}

absl::Status FilesystemImpl::StartJournal() {
  E4_ASSIGN_OR_RETURN(journal::LogMap map, JournalLogMap());
  journal::JournalWriterOptions options;
  options.fs_block_size = sb_.block_size();
  options.fs_64bit = sb_.has_incompat(format::kIncompat64Bit);
  options.metadata_csum = sb_.metadata_csum();
  E4_ASSIGN_OR_RETURN(journal_, journal::JournalWriter::Open(
                                    *device_, std::move(map), options));
  // While mounted the journal is in use: every superblock written has the
  // recovery flag, so a crash leaves it for the next mount.
  sb_.feature_incompat |= format::kIncompatRecover;
  blocks_.set_write_back(true);
  allocator_->DeferReuse([this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return CommitJournal(/*release_freed=*/false);
  });
  return absl::OkStatus();
}

absl::Status FilesystemImpl::CommitJournal(bool release_freed) {
  if (journal_ == nullptr) return absl::OkStatus();
  bool errors_unsaved = false;
  {
    absl::MutexLock lock(&errors_mu_);
    errors_unsaved = error_record_.unsaved;
  }
  if (errors_unsaved) {
    // Errors recorded since the last operation: the superblock this commit
    // checkpoints must carry them.
    FoldErrors();
    Transaction tx(blocks_);
    E4_RETURN_IF_ERROR(allocator_->WriteSuperblock(tx));
    E4_RETURN_IF_ERROR(tx.Commit());
  }
  std::map<uint64_t, io::BlockRef> dirty = blocks_.DirtyBlocks();
  if (dirty.empty()) return absl::OkStatus();
  if (!recover_flag_on_disk_) {
    E4_RETURN_IF_ERROR(SetRecoverFlagInPlace(true));
  }
  absl::Status status = journal_->Commit(dirty);
  if (!status.ok()) {
    std::fprintf(stderr, "e4fs: journal commit failed: %s\n",
                 std::string(status.message()).c_str());
    return status;
  }
  blocks_.MarkClean(dirty);
  if (release_freed) allocator_->ReleaseFreed();
  return absl::OkStatus();
}

absl::Status FilesystemImpl::SetRecoverFlagInPlace(bool on) {
  // Only the flag changes, in the superblock as the image holds it (the
  // last checkpoint), never in a newer in-core state the journal has not
  // committed. The kernel does the same at mount and at unmount.
  std::vector<uint8_t> raw(format::kSuperblockSize);
  E4_RETURN_IF_ERROR(device_->ReadAt(format::kSuperblockOffset, raw));
  E4_ASSIGN_OR_RETURN(format::Superblock on_disk, format::ParseSuperblock(raw));
  if (on) {
    on_disk.feature_incompat |= format::kIncompatRecover;
  } else {
    on_disk.feature_incompat &= ~format::kIncompatRecover;
  }
  format::SerializeSuperblock(on_disk, raw);
  E4_RETURN_IF_ERROR(device_->Flush());
  E4_RETURN_IF_ERROR(device_->WriteAt(format::kSuperblockOffset, raw));
  E4_RETURN_IF_ERROR(device_->Flush());
  // The cached copy of the superblock's block must not bring the old flag
  // back: it is rewritten from sb_ by the next transaction anyway.
  recover_flag_on_disk_ = on;
  return absl::OkStatus();
}

absl::Status FilesystemImpl::AfterCommit() {
  if (journal_ == nullptr) return absl::OkStatus();
  if (!mounting_) StartCommitThread();
  // Commit well before the running transaction outgrows the log.
  if (blocks_.dirty_count() * 2 > journal_->capacity()) {
    return CommitJournal(/*release_freed=*/true);
  }
  return absl::OkStatus();
}

void FilesystemImpl::StartCommitThread() {
  // Started by the first change after the mount rather than at the mount:
  // a server that forks into the background after mounting would lose it.
  if (commit_thread_.joinable() || options_.commit_interval_seconds <= 0) {
    return;
  }
  commit_thread_ = std::thread([this] {
    const absl::Duration interval =
        absl::Seconds(options_.commit_interval_seconds);
    for (;;) {
      {
        absl::MutexLock lock(&timer_mu_);
        auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(timer_mu_) {
          return stop_commits_;
        };
        timer_mu_.AwaitWithTimeout(absl::Condition(&stopping), interval);
        if (stop_commits_) return;
      }
      absl::MutexLock lock(&mu_);
      if (blocks_.dirty_count() > 0) {
        (void)CommitJournal(/*release_freed=*/true);
      }
    }
  });
}

void FilesystemImpl::StopCommitThread() {
  {
    absl::MutexLock lock(&timer_mu_);
    stop_commits_ = true;
  }
  if (commit_thread_.joinable()) commit_thread_.join();
}

// ---- Replay at mount ----

absl::StatusOr<std::unique_ptr<io::BlockDevice>> FilesystemImpl::Replay(
    std::unique_ptr<io::BlockDevice> device, const format::Superblock& sb,
    bool read_only) {
  MountOptions probe_options;
  probe_options.read_only = true;
  probe_options.no_recovery = true;
  auto probe = std::make_unique<FilesystemImpl>(std::move(device), sb,
                                                probe_options, true);
  absl::StatusOr<journal::LogMap> map = probe->JournalLogMap();
  std::unique_ptr<io::BlockDevice> raw = std::move(probe->device_);
  probe.reset();
  if (!map.ok()) {
    return ErrnoError(ErrnoOf(map.status()),
                      absl::StrCat("the journal needs recovery but cannot be "
                                   "read: ",
                                   std::string(map.status().message())));
  }
  journal::DeviceLog log(*raw, *map, sb.block_size());
  absl::StatusOr<journal::ReplayPlan> plan =
      journal::ScanJournal(log, sb.blocks_count);
  if (!plan.ok()) {
    return ErrnoError(ErrnoOf(plan.status()),
                      absl::StrCat("journal recovery failed: ",
                                   std::string(plan.status().message())));
  }
  if (plan->fast_commit_data) {
    return ErrnoError(EOPNOTSUPP,
                      "the journal holds fast-commit records, whose replay "
                      "is not supported; let the kernel or e2fsck recover "
                      "it, or mount with -o ro,norecovery");
  }
  if (plan->checksum_errors > 0 || plan->out_of_range > 0) {
    std::fprintf(stderr,
                 "e4fs: journal recovery skipped %llu logged blocks with bad "
                 "checksums or block numbers; run e2fsck\n",
                 static_cast<unsigned long long>(plan->checksum_errors +
                                                 plan->out_of_range));
  }
  if (read_only) {
    // Replayed in memory: the image stays as it is.
    return io::OverlayDevice(std::move(raw), sb.block_size(),
                             std::move(plan->blocks));
  }
  const uint32_t bs = sb.block_size();
  for (const auto& [block, bytes] : plan->blocks) {
    E4_RETURN_IF_ERROR(raw->WriteAt(block * bs, bytes));
  }
  E4_RETURN_IF_ERROR(raw->Flush());
  // The log is empty now; the next transaction continues the sequence.
  {
    E4_ASSIGN_OR_RETURN(uint64_t physical, map->Physical(0));
    std::vector<uint8_t> block(bs);
    E4_RETURN_IF_ERROR(raw->ReadAt(physical * bs, block));
    E4_ASSIGN_OR_RETURN(format::JournalSuperblock jsb,
                        format::ParseJournalSuperblock(block));
    jsb.start = 0;
    jsb.sequence = plan->restart_sequence;
    format::SerializeJournalSuperblock(jsb, block);
    E4_RETURN_IF_ERROR(raw->WriteAt(physical * bs, block));
  }
  // The superblock as replay left it, without the recovery flag.
  std::vector<uint8_t> raw_sb(format::kSuperblockSize);
  E4_RETURN_IF_ERROR(raw->ReadAt(format::kSuperblockOffset, raw_sb));
  E4_ASSIGN_OR_RETURN(format::Superblock replayed,
                      format::ParseSuperblock(raw_sb));
  replayed.feature_incompat &= ~format::kIncompatRecover;
  format::SerializeSuperblock(replayed, raw_sb);
  E4_RETURN_IF_ERROR(raw->WriteAt(format::kSuperblockOffset, raw_sb));
  E4_RETURN_IF_ERROR(raw->Flush());
  return raw;
}

}  // namespace ext4
