#include "ext4/errno_status.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"

namespace ext4 {
namespace {

constexpr char kErrnoPayload[] = "e4fs/errno";

absl::StatusCode CodeForErrno(int err) {
  switch (err) {
    case ENOENT:
    case ENODATA:
      return absl::StatusCode::kNotFound;
    case EEXIST:
      return absl::StatusCode::kAlreadyExists;
    case EINVAL:
    case ENAMETOOLONG:
    case ENOTDIR:
    case EISDIR:
    case ERANGE:
      return absl::StatusCode::kInvalidArgument;
    case EPERM:
    case EACCES:
    case EROFS:
      return absl::StatusCode::kPermissionDenied;
    case ENOSPC:
    case EFBIG:
    case EMLINK:
    case E2BIG:
      return absl::StatusCode::kResourceExhausted;
    case ENOTSUP:
      return absl::StatusCode::kUnimplemented;
    case EUCLEAN:
      return absl::StatusCode::kDataLoss;
    default:
      return absl::StatusCode::kInternal;
  }
}

}  // namespace

absl::Status ErrnoError(int err, std::string_view message) {
  absl::Status status(CodeForErrno(err),
                      absl::string_view(message.data(), message.size()));
  status.SetPayload(kErrnoPayload, absl::Cord(std::to_string(err)));
  return status;
}

absl::Status Corrupt(std::string_view message) {
  return ErrnoError(kEFSCORRUPTED, message);
}

int ErrnoOf(const absl::Status& status) {
  if (status.ok()) return 0;
  if (auto payload = status.GetPayload(kErrnoPayload)) {
    int err = 0;
    if (absl::SimpleAtoi(std::string(*payload), &err) && err > 0) return err;
  }
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      return ENOENT;
    case absl::StatusCode::kAlreadyExists:
      return EEXIST;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return EINVAL;
    case absl::StatusCode::kPermissionDenied:
      return EPERM;
    case absl::StatusCode::kResourceExhausted:
      return ENOSPC;
    case absl::StatusCode::kUnimplemented:
      return ENOTSUP;
    case absl::StatusCode::kDataLoss:
      return EUCLEAN;
    default:
      return EIO;
  }
}

}  // namespace ext4
