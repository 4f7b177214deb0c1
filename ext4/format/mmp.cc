#include "ext4/format/mmp.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "ext4/format/checksum.h"

namespace ext4::format {
namespace {

constexpr size_t kNodeNameOffset = 0x10;
constexpr size_t kNodeNameSize = 64;
constexpr size_t kDeviceNameOffset = 0x50;
constexpr size_t kDeviceNameSize = 32;
constexpr size_t kCheckIntervalOffset = 0x70;

// A NUL-padded name field.
std::string NameField(Bytes block, size_t offset, size_t size) {
  const auto* begin = reinterpret_cast<const char*>(block.data() + offset);
  return std::string(begin, strnlen(begin, size));
}

void PutName(MutableBytes block, size_t offset, size_t size,
             const std::string& name) {
  std::memset(block.data() + offset, 0, size);
  std::memcpy(block.data() + offset, name.data(), std::min(size, name.size()));
}

uint32_t MmpChecksum(Bytes block, const Superblock& sb) {
  return Crc32c(sb.checksum_seed(), block.first(kMmpChecksumOffset));
}

}  // namespace

absl::StatusOr<MmpBlock> ParseMmpBlock(Bytes block, const Superblock& sb) {
  if (block.size() < kMmpSize) return Corrupt("the MMP block is too short");
  MmpBlock mmp;
  mmp.magic = Le32(block, 0x00);
  if (mmp.magic != kMmpMagic) {
    return Corrupt(absl::StrCat("the MMP block has a bad magic number 0x",
                                absl::Hex(mmp.magic)));
  }
  if (sb.metadata_csum() &&
      Le32(block, kMmpChecksumOffset) != MmpChecksum(block, sb)) {
    return Corrupt("the MMP block's checksum does not match");
  }
  mmp.seq = Le32(block, 0x04);
  mmp.time = Le64(block, 0x08);
  mmp.node_name = NameField(block, kNodeNameOffset, kNodeNameSize);
  mmp.device_name = NameField(block, kDeviceNameOffset, kDeviceNameSize);
  mmp.check_interval = Le16(block, kCheckIntervalOffset);
  return mmp;
}

void SerializeMmpBlock(const MmpBlock& mmp, const Superblock& sb,
                       MutableBytes block) {
  std::memset(block.data(), 0, kMmpSize);
  Put32(block, 0x00, mmp.magic);
  Put32(block, 0x04, mmp.seq);
  Put64(block, 0x08, mmp.time);
  PutName(block, kNodeNameOffset, kNodeNameSize, mmp.node_name);
  PutName(block, kDeviceNameOffset, kDeviceNameSize, mmp.device_name);
  Put16(block, kCheckIntervalOffset, mmp.check_interval);
  if (sb.metadata_csum()) {
    Put32(block, kMmpChecksumOffset, MmpChecksum(block, sb));
  }
}

}  // namespace ext4::format
