// Corruption found while serving: recorded in the superblock as the kernel's
// ext4 records it (the error state, the count, the first and the last error's
// time, inode and code), then the errors= policy -- go on, refuse further
// changes (remount-ro), or stop the server (panic).
#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "ext4/filesystem_impl.h"

namespace ext4 {
namespace {

// The payload that marks a status as recorded, so that a caller passing it
// on to NoteError does not count it twice.
constexpr char kRecordedPayload[] = "e4fs/error-recorded";

// The kernel's s_first_error_errcode values (EXT4_ERR_*).
uint8_t ErrorCode(int err) {
  switch (err) {
    case EIO:
      return 1;
    case ENOMEM:
      return 2;
    case EBADMSG:
      return 3;  // EFSBADCRC
    case EUCLEAN:
      return 4;  // EFSCORRUPTED
    case ENOSPC:
      return 5;
    case EROFS:
      return 7;
    default:
      return 0;
  }
}

}  // namespace

ErrorsPolicy FilesystemImpl::EffectiveErrorsPolicy() const {
  if (options_.errors != ErrorsPolicy::kDefault) return options_.errors;
  switch (sb_errors_behaviour_) {
    case format::kErrorsReadOnly:
      return ErrorsPolicy::kRemountReadOnly;
    case format::kErrorsPanic:
      return ErrorsPolicy::kPanic;
    default:
      return ErrorsPolicy::kContinue;
  }
}

absl::Status FilesystemImpl::Report(const absl::Status& status,
                                    InodeNumber ino) const {
  const int err = ErrnoOf(status);
  if ((err != EUCLEAN && err != EIO) ||
      status.GetPayload(kRecordedPayload).has_value()) {
    return status;
  }
  const_cast<FilesystemImpl*>(this)->RecordError(status, ino);
  absl::Status marked = status;
  marked.SetPayload(kRecordedPayload, absl::Cord("1"));
  return marked;
}

void FilesystemImpl::NoteError(const absl::Status& status, InodeNumber ino) {
  absl::ReaderMutexLock lock(&mu_);
  (void)Report(status, ino);
}

void FilesystemImpl::RecordError(const absl::Status& status, InodeNumber ino) {
  const std::string message(status.message());
  if (absl::StartsWith(message, absl::StrCat("inode ", ino, ":"))) {
    std::fprintf(stderr, "e4fs: %s\n", message.c_str());  // names it already
  } else {
    std::fprintf(stderr, "e4fs: inode %u: %s\n", ino, message.c_str());
  }
  const ErrorsPolicy policy = EffectiveErrorsPolicy();
  {
    absl::MutexLock lock(&errors_mu_);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    ErrorRecord& r = error_record_;
    if (r.count == 0) {
      r.first_time = now.tv_sec;
      r.first_ino = ino;
      r.first_code = ErrorCode(ErrnoOf(status));
    }
    r.last_time = now.tv_sec;
    r.last_ino = ino;
    r.last_code = ErrorCode(ErrnoOf(status));
    r.count++;
    r.unsaved = true;
    if (!read_only_) {
      // On the image at once, as the kernel does, in case the server does
      // not live to commit it (a panic, a crash).
      absl::Status saved = SaveErrorsInPlaceLocked();
      if (!saved.ok()) {
        std::fprintf(stderr, "e4fs: cannot record the error: %s\n",
                     std::string(saved.message()).c_str());
      }
    }
  }
  switch (policy) {
    case ErrorsPolicy::kRemountReadOnly:
      if (!errors_read_only_.exchange(true)) {
        std::fprintf(stderr,
                     "e4fs: errors=remount-ro: refusing further changes\n");
      }
      break;
    case ErrorsPolicy::kPanic:
      std::fprintf(stderr, "e4fs: errors=panic: stopping the server\n");
      std::fflush(stderr);
      _exit(3);
    default:
      break;
  }
}

void FilesystemImpl::ApplyErrorRecord(format::Superblock& sb) {
  const ErrorRecord& r = error_record_;
  if (r.count == 0) return;
  sb.state |= format::kStateError;
  sb.error_count = r.base_count + r.count;
  if (sb.first_error_time == 0) {
    sb.first_error_time = r.first_time;
    sb.first_error_ino = r.first_ino;
    sb.first_error_errcode = r.first_code;
    sb.first_error_func = "e4fs";
  }
  sb.last_error_time = r.last_time;
  sb.last_error_ino = r.last_ino;
  sb.last_error_errcode = r.last_code;
  sb.last_error_func = "e4fs";
}

absl::Status FilesystemImpl::SaveErrorsInPlaceLocked() {
  std::vector<uint8_t> raw(format::kSuperblockSize);
  E4_RETURN_IF_ERROR(device_->ReadAt(format::kSuperblockOffset, raw));
  E4_ASSIGN_OR_RETURN(format::Superblock on_disk, format::ParseSuperblock(raw));
  ApplyErrorRecord(on_disk);
  format::SerializeSuperblock(on_disk, raw);
  E4_RETURN_IF_ERROR(device_->WriteAt(format::kSuperblockOffset, raw));
  return device_->Flush();
}

void FilesystemImpl::FoldErrors() {
  absl::MutexLock lock(&errors_mu_);
  ErrorRecord& r = error_record_;
  if (!r.unsaved) return;
  // The in-core superblock goes to the image with every transaction: from
  // now on it carries the errors too.
  ApplyErrorRecord(sb_);
  r.unsaved = false;
}

}  // namespace ext4
