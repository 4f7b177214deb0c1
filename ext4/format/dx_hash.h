// The htree directory name hashes: the legacy dx_hack_hash, half-MD4 and TEA,
// each in a signed-char and an unsigned-char flavour (which one a filesystem
// uses depends on the platform that created it, recorded in the superblock's
// signed/unsigned directory hash flags).
#ifndef E4FS_EXT4_FORMAT_DX_HASH_H_
#define E4FS_EXT4_FORMAT_DX_HASH_H_

#include <array>
#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"

namespace ext4::format {

// Hash version codes (dx_root_info.hash_version, s_def_hash_version). The
// unsigned variants are never stored in a dx_root: a filesystem with the
// unsigned flag adds 3 to the stored legacy/half_md4/tea code.
enum DxHashVersion : int {
  kDxHashLegacy = 0,
  kDxHashHalfMd4 = 1,
  kDxHashTea = 2,
  kDxHashLegacyUnsigned = 3,
  kDxHashHalfMd4Unsigned = 4,
  kDxHashTeaUnsigned = 5,
  kDxHashSiphash = 6,
};

// The largest major hash a name can have: 0xfffffffe (the 32-bit htree EOF
// marker shifted left) is replaced by this value.
inline constexpr uint32_t kDxHashMaxMajor = 0xfffffffc;

struct DxHash {
  uint32_t major = 0;  // low bit always clear
  uint32_t minor = 0;
};

// Hashes `name` with `hash_version` (0..5) and the superblock's s_hash_seed
// (an all-zero seed selects the default MD4 constants). EINVAL for unknown
// versions, EOPNOTSUPP for siphash (only used with casefolded, encrypted
// directories).
absl::StatusOr<DxHash> ComputeDxHash(std::string_view name, int hash_version,
                                     const std::array<uint32_t, 4>& seed);

}  // namespace ext4::format

#endif  // E4FS_EXT4_FORMAT_DX_HASH_H_
