// What a new filesystem should look like: the options of `e4 mkfs` (a subset
// of mke2fs's), and the feature lists mke2fs's -O and -t accept.
#ifndef E4FS_EXT4_MKFS_OPTIONS_H_
#define E4FS_EXT4_MKFS_OPTIONS_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ext4::mkfs {

// The three superblock feature words.
struct FeatureSet {
  uint32_t compat = 0;
  uint32_t incompat = 0;
  uint32_t ro_compat = 0;

  bool operator==(const FeatureSet&) const = default;
};

// The feature sets of mke2fs's filesystem types (mke2fs.conf as e2fsprogs
// ships it), minus resize_inode, which e4 mkfs does not make:
//   ext2: sparse_super large_file filetype dir_index ext_attr
//   ext3: ext2 + has_journal
//   ext4: ext3 + extent huge_file flex_bg metadata_csum 64bit dir_nlink
//         extra_isize
// EINVAL for any other name.
absl::StatusOr<FeatureSet> FeaturesForType(std::string_view type);
// The ext4 set.
FeatureSet DefaultFeatures();

// Applies a mke2fs -O list to `features`: names separated by commas (or
// spaces), each turning a feature on, or off with a leading '^'; "none" (or
// "clear") turns every feature off. Names are mke2fs's (extent or extents,
// uninit_bg or gdt_csum, ...). EINVAL for a name e2fsprogs does not know,
// EOPNOTSUPP for one that e4 mkfs cannot make (resize_inode, meta_bg,
// bigalloc, quota, orphan_file, ...; see kSupported* in options.cc).
// Nothing changes on error.
absl::Status ApplyFeatureList(std::string_view list, FeatureSet& features);

// EOPNOTSUPP naming the first feature of `features` that e4 mkfs cannot make.
absl::Status CheckSupported(const FeatureSet& features);

// The features by name, in dumpe2fs order.
std::string FeatureSetNames(const FeatureSet& features);

struct MkfsOptions {
  // The filesystem's size; 0 takes the whole device. Rounded down to whole
  // blocks; a last group too short to hold its own metadata (plus 50 blocks)
  // is dropped, as mke2fs does.
  uint64_t size_bytes = 0;
  // 1024, 2048, 4096 ... 65536. mke2fs picks 1024 for filesystems under
  // 512 MiB; e4 mkfs always uses 4096 unless told (the kernel mounts block
  // sizes up to the page size only).
  uint32_t block_size = 4096;
  // 128, 256, ... up to the block size.
  uint32_t inode_size = 256;
  // One inode per this many bytes (1024 .. 64 MiB), unless inode_count is
  // set. mke2fs's default for every size but its "small" and "floppy" types.
  uint32_t inode_ratio = 16384;
  // The number of inodes to aim for (rounded up to fill whole inode table
  // blocks in every group); 0 derives it from inode_ratio.
  uint64_t inode_count = 0;
  // Blocks reserved for the super-user, in percent of the filesystem (0..50).
  double reserved_percent = 5.0;
  FeatureSet features = DefaultFeatures();
  // Journal size in blocks (has_journal): 0 picks mke2fs's default for the
  // filesystem's size, and leaves the journal out (as mke2fs does) when the
  // filesystem has fewer than 2048 blocks. An explicit size must lie in
  // [1024, 10240000] blocks and take at most half the filesystem.
  uint32_t journal_blocks = 0;
  // Up to 16 bytes.
  std::string label;
  // Random (version 4) when all zero.
  std::array<uint8_t, 16> uuid{};
  // The directory hash seed; random when all zero.
  std::array<uint8_t, 16> hash_seed{};
  // Owner of the root directory.
  uint32_t root_uid = 0;
  uint32_t root_gid = 0;
  // Creation time (seconds since the epoch) of the superblock and the
  // inodes mkfs writes; unset: SOURCE_DATE_EPOCH when it is set and valid,
  // else the current time. With this, a uuid and a hash seed, the image is
  // reproducible byte for byte.
  std::optional<int64_t> time;
  // The device already reads as zeros everywhere (a new sparse file): the
  // inode tables and the journal are not written over with zeros.
  bool assume_zeroed = false;
};

// The creation time mkfs uses when MkfsOptions::time is unset.
int64_t DefaultCreationTime();

// A random (version 4) UUID.
std::array<uint8_t, 16> RandomUuid();

// Parses a UUID in its 36-character text form (8-4-4-4-12 hex digits).
absl::StatusOr<std::array<uint8_t, 16>> ParseUuid(std::string_view text);
std::string FormatUuid(const std::array<uint8_t, 16>& uuid);

}  // namespace ext4::mkfs

#endif  // E4FS_EXT4_MKFS_OPTIONS_H_
