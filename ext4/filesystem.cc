// Mounting: superblock, feature policy, journal state; and the path helper.
#include "ext4/filesystem.h"

#include <sys/stat.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "ext4/filesystem_impl.h"
#include "ext4/format/superblock.h"
#include "ext4/mmp.h"

namespace ext4 {

absl::StatusOr<std::unique_ptr<Filesystem>> Filesystem::Open(
    std::unique_ptr<io::BlockDevice> device, const MountOptions& options) {
  if (device->Size() < format::kSuperblockOffset + format::kSuperblockSize) {
    return ErrnoError(EINVAL,
                      "not an ext2/ext3/ext4 filesystem (image too small)");
  }
  std::vector<uint8_t> raw(format::kSuperblockSize);
  E4_RETURN_IF_ERROR(device->ReadAt(format::kSuperblockOffset, raw));
  E4_ASSIGN_OR_RETURN(format::Superblock sb, format::ParseSuperblock(raw));
  E4_ASSIGN_OR_RETURN(bool must_be_read_only, format::CheckFeatures(sb));
  if (!options.read_only && must_be_read_only) {
    return ErrnoError(EROFS,
                      "the filesystem has read-only features this driver does "
                      "not know; mount it with -o ro");
  }
  if (sb.has_incompat(format::kIncompatRecover) && options.no_recovery &&
      !options.read_only) {
    return ErrnoError(EROFS,
                      "the journal needs recovery; without it (norecovery) "
                      "only a read-only mount (-o ro) is possible");
  }
  // Multi-mount protection comes first, as in the kernel: nothing is
  // written (not even the journal's replay) while another node may be
  // using the device.
  std::unique_ptr<MultiMountProtection> mmp;
  if (!options.read_only && sb.has_incompat(format::kIncompatMmp) &&
      !device->read_only() && !sb.bigalloc()) {
    E4_ASSIGN_OR_RETURN(
        mmp, MultiMountProtection::Claim(
                 *device, sb, [](absl::Duration d) { absl::SleepFor(d); }));
  }
  if (sb.has_incompat(format::kIncompatRecover) && !options.no_recovery) {
    if (!sb.has_compat(format::kCompatHasJournal)) {
      return Corrupt("the recovery flag is set but there is no journal");
    }
    if (!options.read_only && device->read_only()) {
      return ErrnoError(EROFS, "the image is not writable; mount with -o ro");
    }
    E4_ASSIGN_OR_RETURN(device, FilesystemImpl::Replay(std::move(device), sb,
                                                       options.read_only));
    E4_RETURN_IF_ERROR(device->ReadAt(format::kSuperblockOffset, raw));
    E4_ASSIGN_OR_RETURN(sb, format::ParseSuperblock(raw));
    E4_ASSIGN_OR_RETURN(must_be_read_only, format::CheckFeatures(sb));
    if (!options.read_only && must_be_read_only) {
      return ErrnoError(EROFS,
                        "the filesystem has read-only features this driver "
                        "does not know; mount it with -o ro");
    }
  }
  if (!options.read_only) {
    if (sb.bigalloc()) {
      return ErrnoError(EROFS,
                        "read-write mounts of bigalloc filesystems are not "
                        "supported; mount with -o ro");
    }
    if (device->read_only()) {
      return ErrnoError(EROFS, "the image is not writable; mount with -o ro");
    }
  }
  auto fs = std::make_unique<FilesystemImpl>(std::move(device), sb, options,
                                             options.read_only);
  if (mmp != nullptr) fs->AdoptMultiMountProtection(std::move(mmp));
  E4_RETURN_IF_ERROR(fs->Initialize());
  if (!options.defer_background_work) fs->StartBackgroundWork();
  return std::unique_ptr<Filesystem>(std::move(fs));
}

// The write side's defaults: an engine that cannot write answers EROFS.
namespace {
absl::Status ReadOnly() { return ErrnoError(EROFS, "read-only filesystem"); }
}  // namespace

absl::StatusOr<Attributes> Filesystem::Create(InodeNumber, std::string_view,
                                              uint32_t, const Credentials&) {
  return ReadOnly();
}
absl::StatusOr<Attributes> Filesystem::MakeNode(InodeNumber, std::string_view,
                                                uint32_t, uint32_t, uint32_t,
                                                const Credentials&) {
  return ReadOnly();
}
absl::StatusOr<Attributes> Filesystem::MakeDirectory(InodeNumber,
                                                     std::string_view, uint32_t,
                                                     const Credentials&) {
  return ReadOnly();
}
absl::StatusOr<Attributes> Filesystem::MakeSymlink(InodeNumber,
                                                   std::string_view,
                                                   std::string_view,
                                                   const Credentials&) {
  return ReadOnly();
}
absl::StatusOr<Attributes> Filesystem::CreateUnnamed(InodeNumber, uint32_t,
                                                     const Credentials&) {
  return ReadOnly();
}
absl::StatusOr<Attributes> Filesystem::Link(InodeNumber, InodeNumber,
                                            std::string_view) {
  return ReadOnly();
}
absl::Status Filesystem::Unlink(InodeNumber, std::string_view) {
  return ReadOnly();
}
absl::Status Filesystem::RemoveDirectory(InodeNumber, std::string_view) {
  return ReadOnly();
}
absl::Status Filesystem::Rename(InodeNumber, std::string_view, InodeNumber,
                                std::string_view, unsigned) {
  return ReadOnly();
}
absl::StatusOr<Attributes> Filesystem::SetAttr(InodeNumber,
                                               const SetAttrRequest&,
                                               const Credentials&) {
  return ReadOnly();
}
absl::StatusOr<size_t> Filesystem::Write(InodeNumber, uint64_t,
                                         std::span<const uint8_t>,
                                         const Credentials&) {
  return ReadOnly();
}
absl::StatusOr<size_t> Filesystem::WriteBack(InodeNumber, uint64_t,
                                             std::span<const uint8_t>) {
  return ReadOnly();
}
absl::Status Filesystem::Allocate(InodeNumber, int, uint64_t, uint64_t) {
  return ReadOnly();
}
absl::StatusOr<uint64_t> Filesystem::Seek(InodeNumber, uint64_t, int) {
  return ReadOnly();
}
absl::Status Filesystem::SetXattr(InodeNumber, std::string_view,
                                  std::string_view, int) {
  return ReadOnly();
}
absl::Status Filesystem::RemoveXattr(InodeNumber, std::string_view) {
  return ReadOnly();
}
absl::Status Filesystem::Sync(InodeNumber, bool) { return absl::OkStatus(); }
absl::Status Filesystem::SyncAll() { return absl::OkStatus(); }
absl::Status Filesystem::ForgetAll() { return absl::OkStatus(); }
absl::Status Filesystem::ReadInPlace(
    InodeNumber, uint64_t, size_t,
    absl::FunctionRef<absl::Status(std::span<const ReadPiece>)>) {
  return ErrnoError(EOPNOTSUPP, "no in-place reads");
}
absl::Status Filesystem::OpenFile(InodeNumber) { return absl::OkStatus(); }
absl::Status Filesystem::Release(InodeNumber) { return absl::OkStatus(); }

absl::StatusOr<InodeNumber> Filesystem::ResolvePath(std::string_view path) {
  constexpr int kMaxSymlinkFollows = 40;
  int follows = 0;
  std::vector<std::string> pending;  // components still to walk, reversed
  for (absl::string_view part :
       absl::StrSplit(absl::string_view(path.data(), path.size()), '/',
                      absl::SkipEmpty())) {
    pending.insert(pending.begin(), std::string(part));
  }
  std::vector<InodeNumber> stack = {kRootInode};  // the walked directories
  while (!pending.empty()) {
    std::string name = std::move(pending.back());
    pending.pop_back();
    if (name == ".") continue;
    if (name == "..") {
      if (stack.size() > 1) stack.pop_back();
      continue;
    }
    E4_ASSIGN_OR_RETURN(InodeNumber next, Lookup(stack.back(), name));
    if (!pending.empty()) {
      E4_ASSIGN_OR_RETURN(Attributes attr, GetAttr(next));
      if (S_ISLNK(attr.mode)) {
        if (++follows > kMaxSymlinkFollows) {
          return ErrnoError(ELOOP, "too many levels of symbolic links");
        }
        E4_ASSIGN_OR_RETURN(std::string target, ReadLink(next));
        if (!target.empty() && target[0] == '/') stack.resize(1);
        std::vector<std::string> parts;
        for (absl::string_view part :
             absl::StrSplit(target, '/', absl::SkipEmpty())) {
          parts.emplace_back(part);
        }
        for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
          pending.push_back(*it);
        }
        continue;
      }
    }
    stack.push_back(next);
  }
  return stack.back();
}

}  // namespace ext4
