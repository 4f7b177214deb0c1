// Statuses that carry the exact errno the kernel's ext4 would return, so that
// the FUSE adapter can reply with it after the error has crossed the engine.
#ifndef E4FS_EXT4_ERRNO_STATUS_H_
#define E4FS_EXT4_ERRNO_STATUS_H_

#include <cerrno>
#include <string_view>

#include "absl/status/status.h"

namespace ext4 {

// The kernel's name for a corrupted on-disk structure.
inline constexpr int kEFSCORRUPTED = EUCLEAN;

// Builds a status whose errno survives ErrnoOf().
absl::Status ErrnoError(int err, std::string_view message);

// A corrupt on-disk structure: EUCLEAN, as the kernel's ext4 reports it.
absl::Status Corrupt(std::string_view message);

// The errno a status stands for: the one given to ErrnoError(), or a sensible
// one derived from the status code. 0 for OK.
int ErrnoOf(const absl::Status& status);

}  // namespace ext4

// Early-return helpers (this Abseil release has no public status macros).
#define E4_CONCAT_INNER_(a, b) a##b
#define E4_CONCAT_(a, b) E4_CONCAT_INNER_(a, b)

#define E4_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::absl::Status e4_status_ = (expr);      \
    if (!e4_status_.ok()) return e4_status_; \
  } while (false)

#define E4_ASSIGN_OR_RETURN(lhs, expr) \
  E4_ASSIGN_OR_RETURN_IMPL_(E4_CONCAT_(e4_statusor_, __LINE__), lhs, expr)

#define E4_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                              \
  if (!statusor.ok()) return statusor.status();        \
  lhs = std::move(statusor).value()

#endif  // E4FS_EXT4_ERRNO_STATUS_H_
