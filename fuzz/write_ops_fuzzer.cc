// Whole images, changed: the input is a small image and a stream of
// operations run on it through ext4::Filesystem, mounted read-write on a
// memory device: create, write at offsets, truncate, mkdir, rename, link,
// unlink, rmdir, symlinks and device nodes, setxattr and removexattr,
// fallocate (preallocate, punch, zero), reads and seeks, unnamed files and
// open-unlinked ones, sync and remount. The result is then checked with the
// read-only checker (ext4/check).
//
// A mutated image is corrupt to begin with, so what the engine answers and
// what the checker finds are not failures, with one exception: when the
// checker finds nothing wrong with the image before the operations, the
// engine must keep it that way (no corruption errors from any operation, a
// clean check after) -- every seed image starts out clean. Any crash,
// sanitizer report, hang or errno outside what the calls document is a
// failure.
//
// Input: le16 N, N bytes of operations, then the image, cut short of its
// trailing zeros if need be (it is zero-padded to the filesystem's size, up
// to 4 MiB). Operations are a kind byte and its arguments (see RunOp); at
// most 64 run, with bounded sizes. In fuzzing builds a custom mutator
// mutates the operations and the image separately, so that the few bytes of
// operations are not lost behind the image's.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ext4/check/checker.h"
#include "ext4/errno_status.h"
#include "ext4/filesystem.h"
#include "ext4/format/endian.h"
#include "ext4/format/superblock.h"
#include "ext4/io/block_device.h"
#include "fuzz/fuzz_support.h"
#include "fuzz/shared_device.h"

namespace {

using ext4::InodeNumber;
using ext4::format::Bytes;
using ext4::fuzz::FuzzInput;
namespace format = ext4::format;

constexpr size_t kMaxOpBytes = 1024;
constexpr size_t kMaxOps = 64;
constexpr uint64_t kMaxImage = 4 << 20;
constexpr size_t kMaxWrite = 16 << 10;
constexpr size_t kMaxNames = 64;
constexpr size_t kMaxInodes = 64;

// The image the input holds, zero-padded to the filesystem's size.
std::vector<uint8_t> ImageOf(Bytes bytes) {
  std::vector<uint8_t> image(bytes.begin(), bytes.end());
  if (image.size() < 2048) return image;
  auto sb = format::ParseSuperblock(Bytes(image).subspan(1024, 1024));
  if (!sb.ok()) return image;
  const uint64_t block_size = sb->block_size();
  if (block_size == 0 || sb->blocks_count > kMaxImage / block_size) {
    return image;
  }
  const uint64_t size = sb->blocks_count * block_size;
  if (image.size() < size) image.resize(size, 0);
  return image;
}

bool Expected(int err) {
  switch (err) {
    case EPERM:
    case ENOENT:
    case EIO:
    case ENXIO:
    case E2BIG:
    case EACCES:
    case EEXIST:
    case EXDEV:
    case ENOTDIR:
    case EISDIR:
    case EINVAL:
    case EFBIG:
    case ENOSPC:
    case EROFS:
    case EMLINK:
    case ERANGE:
    case ENAMETOOLONG:
    case ENOTEMPTY:
    case ELOOP:
    case ENODATA:
    case EOPNOTSUPP:
    case EUCLEAN:
    case EBADMSG:
    case EAGAIN:
    case EBUSY:
    case ENODEV:  // fallocate on what is neither a file nor a directory
      return true;
    default:
      return false;
  }
}

class Session {
 public:
  Session(std::vector<uint8_t>& image, bool clean, ext4::ErrorsPolicy errors)
      : image_(image), clean_(clean), errors_(errors) {}

  bool Mount() {
    ext4::MountOptions options;
    options.read_only = false;
    options.inode_cache_limit = 16;
    options.block_cache_limit = 64;
    options.commit_interval_seconds = 0;
    options.errors = errors_;
    auto fs = ext4::Filesystem::Open(
        std::make_unique<ext4::fuzz::SharedDevice>(image_), options);
    if (!fs.ok()) {
      // A clean image may still be one the engine declines (an external
      // journal, an unknown feature), but never as corrupt.
      const int err = ext4::ErrnoOf(fs.status());
      if (clean_ && (err == EUCLEAN || err == EIO || err == EBADMSG)) {
        std::fprintf(stderr, "a clean image does not mount: %s\n",
                     std::string(fs.status().ToString()).c_str());
        FUZZ_CHECK(false);
      }
      return false;
    }
    fs_ = std::move(*fs);
    open_.clear();  // an unmount ends every open
    return true;
  }

  void Unmount() {
    for (InodeNumber ino : open_) Note(fs_->Release(ino));
    open_.clear();
    Note(fs_->SyncAll());
    fs_.reset();
  }

  // The names and inodes operations pick from: what the root and its
  // subdirectories hold, and what operations made.
  void Explore() {
    Remember(ext4::kRootInode, true);
    ListInto(ext4::kRootInode);
    for (size_t i = 0; i < dirs_.size() && i < 4; ++i) ListInto(dirs_[i]);
  }

  void Run(FuzzInput& in) {
    for (size_t op = 0; op < kMaxOps && in.remaining() > 0 && fs_; ++op) {
      RunOp(in);
    }
  }

  ext4::Filesystem* fs() { return fs_.get(); }

 private:
  void Note(const absl::Status& status) {
    if (status.ok()) return;
    const int err = ext4::ErrnoOf(status);
    if (!Expected(err) ||
        (clean_ && (err == EUCLEAN || err == EIO || err == EBADMSG))) {
      std::fprintf(stderr, "%s error: %s\n",
                   clean_ ? "clean image" : "unexpected",
                   std::string(status.ToString()).c_str());
      FUZZ_CHECK(false);
    }
  }
  template <typename T>
  void Note(const absl::StatusOr<T>& result) {
    Note(result.status());
  }

  void Remember(InodeNumber ino, bool dir) {
    if (ino == 0) return;
    if (dir) {
      if (std::find(dirs_.begin(), dirs_.end(), ino) == dirs_.end() &&
          dirs_.size() < kMaxInodes) {
        dirs_.push_back(ino);
      }
    } else if (std::find(files_.begin(), files_.end(), ino) == files_.end() &&
               files_.size() < kMaxInodes) {
      files_.push_back(ino);
    }
  }
  void RememberName(const std::string& name) {
    if (name == "." || name == ".." || names_.size() >= kMaxNames) return;
    if (std::find(names_.begin(), names_.end(), name) == names_.end()) {
      names_.push_back(name);
    }
  }
  void Remember(const absl::StatusOr<ext4::Attributes>& attr) {
    if (attr.ok()) Remember(attr->ino, S_ISDIR(attr->mode));
  }

  void ListInto(InodeNumber dir) {
    size_t seen = 0;
    Note(fs_->ReadDir(dir, 0, [&](const ext4::DirEntry& entry) {
      RememberName(entry.name);
      if (entry.name != "." && entry.name != "..") {
        Remember(entry.ino, entry.type == S_IFDIR);
      }
      return ++seen < 256;
    }));
  }

  InodeNumber Dir(uint8_t pick) {
    return dirs_.empty() ? ext4::kRootInode : dirs_[pick % dirs_.size()];
  }
  InodeNumber Any(uint8_t pick) {
    const size_t total = dirs_.size() + files_.size();
    if (total == 0) return ext4::kRootInode;
    const size_t i = pick % total;
    return i < files_.size() ? files_[i] : dirs_[i - files_.size()];
  }
  // A known name mostly; a new one, or one too long, sometimes.
  std::string Name(uint8_t pick) {
    if (pick < 0xC0 && !names_.empty()) return names_[pick % names_.size()];
    if (pick == 0xFF) return std::string(256, 'L');
    std::string name = "n" + std::to_string(pick & 0x1F);
    if (pick & 0x20) name += std::string(100, 'x');
    return name;
  }
  uint64_t Offset(uint32_t raw) {
    switch (raw >> 30) {
      case 0:
        return raw & 0xFFFF;
      case 1:
        return uint64_t{raw & 0xFFF} << 12;  // up to 16 MiB, block-aligned
      case 2:
        return uint64_t{raw & 0x3FFFFFFF} << 14;  // up to 16 TiB
      default:
        return raw & 0x3FF;
    }
  }

  void RunOp(FuzzInput& in) {
    const uint8_t kind = in.U8();
    const uint8_t p1 = in.U8();
    const uint8_t p2 = in.U8();
    const ext4::Credentials who;
    switch (kind % 20) {
      case 0: {
        auto attr = fs_->Create(Dir(p1), Name(p2), S_IFREG | 0644, who);
        Note(attr);
        Remember(attr);
        if (attr.ok()) RememberName(Name(p2));
        break;
      }
      case 1: {
        const uint64_t offset = Offset(in.U32());
        const size_t length = in.U16() % (kMaxWrite + 1);
        std::vector<uint8_t> data(length, static_cast<uint8_t>(p2));
        Note(fs_->Write(Any(p1), offset, data, who));
        break;
      }
      case 2: {
        ext4::SetAttrRequest request;
        request.size = Offset(in.U32());
        Note(fs_->SetAttr(Any(p1), request, who));
        break;
      }
      case 3: {
        auto attr = fs_->MakeDirectory(Dir(p1), Name(p2), 0755, who);
        Note(attr);
        Remember(attr);
        if (attr.ok()) RememberName(Name(p2));
        break;
      }
      case 4: {
        const uint8_t p3 = in.U8();
        const uint8_t p4 = in.U8();
        const uint8_t f = in.U8() % 4;
        const unsigned flags = f == 0   ? ext4::kRenameNoReplace
                               : f == 1 ? ext4::kRenameExchange
                                        : 0;
        Note(fs_->Rename(Dir(p1), Name(p2), Dir(p3), Name(p4), flags));
        RememberName(Name(p4));
        break;
      }
      case 5: {
        const uint8_t p3 = in.U8();
        Note(fs_->Link(Any(p1), Dir(p2), Name(p3)));
        RememberName(Name(p3));
        break;
      }
      case 6:
        Note(fs_->Unlink(Dir(p1), Name(p2)));
        break;
      case 7:
        Note(fs_->RemoveDirectory(Dir(p1), Name(p2)));
        break;
      case 8: {
        const size_t length = in.U16() % 5000;
        const std::string value(length, static_cast<char>('a' + p2 % 26));
        static const char* const kNames[] = {"user.a", "user.b",
                                             "user.longer_name", "trusted.t",
                                             "security.selinux"};
        Note(fs_->SetXattr(Any(p1), kNames[p2 % std::size(kNames)], value,
                           (p2 >> 5) % 3));
        break;
      }
      case 9: {
        static const char* const kNames[] = {"user.a", "user.b",
                                             "user.longer_name", "trusted.t",
                                             "system.posix_acl_access"};
        Note(fs_->RemoveXattr(Any(p1), kNames[p2 % std::size(kNames)]));
        break;
      }
      case 10: {
        static const int kModes[] = {
            0, ext4::kFallocKeepSize,
            ext4::kFallocPunchHole | ext4::kFallocKeepSize,
            ext4::kFallocZeroRange,
            ext4::kFallocZeroRange | ext4::kFallocKeepSize};
        const uint64_t offset = Offset(in.U32());
        const uint64_t length = 1 + uint64_t{in.U16()} * (p2 % 8u + 1) * 64;
        Note(fs_->Allocate(Any(p1), kModes[p2 % std::size(kModes)], offset,
                           length));
        break;
      }
      case 11: {
        const std::string target(1 + in.U8() * 4 % 400, 't');
        auto attr = fs_->MakeSymlink(Dir(p1), Name(p2), target, who);
        Note(attr);
        if (attr.ok()) {
          RememberName(Name(p2));
          Note(fs_->ReadLink(attr->ino));
        }
        break;
      }
      case 12: {
        const uint64_t offset = Offset(in.U32());
        std::vector<uint8_t> out(1 + in.U16() % kMaxWrite);
        const InodeNumber ino = Any(p1);
        Note(fs_->Read(ino, offset, out));
        Note(fs_->Seek(ino, offset, p2 & 1 ? SEEK_HOLE : SEEK_DATA));
        break;
      }
      case 13:
        ListInto(Dir(p1));
        Note(fs_->Lookup(Dir(p1), Name(p2)));
        break;
      case 14: {
        static const uint32_t kTypes[] = {S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK};
        auto attr =
            fs_->MakeNode(Dir(p1), Name(p2),
                          kTypes[p2 % std::size(kTypes)] | 0600, 8, p2, who);
        Note(attr);
        if (attr.ok()) RememberName(Name(p2));
        break;
      }
      case 15: {
        // An unnamed file, linked in or left to go at its release.
        auto attr = fs_->CreateUnnamed(Dir(p1), S_IFREG | 0600, who);
        Note(attr);
        if (!attr.ok()) break;
        Remember(attr);
        Note(fs_->OpenFile(attr->ino));
        open_.push_back(attr->ino);
        if (p2 & 1) Note(fs_->Link(attr->ino, Dir(p1), Name(p2)));
        break;
      }
      case 16: {
        // Open, then unlink: the inode waits on the orphan list.
        const InodeNumber ino = Any(p1);
        const absl::Status opened = fs_->OpenFile(ino);
        Note(opened);
        if (opened.ok()) open_.push_back(ino);
        break;
      }
      case 17:
        if (!open_.empty()) {
          Note(fs_->Release(open_.back()));
          open_.pop_back();
        }
        break;
      case 18: {
        ext4::SetAttrRequest request;
        request.mode = p2 * 0x10u & 07777;
        request.uid = p2;
        request.mtime_now = true;
        Note(fs_->SetAttr(Any(p1), request, who));
        Note(fs_->Sync(Any(p1), p2 & 1));
        break;
      }
      case 19:
        if (p1 & 1) {
          // Unmount and mount again: open-unlinked inodes are left on the
          // orphan list for the next mount to finish.
          open_.clear();
          Note(fs_->SyncAll());
          fs_.reset();
          if (!Mount()) return;
        } else {
          fs_->DropCaches();
          Note(fs_->StatFs());
        }
        break;
    }
  }

  std::vector<uint8_t>& image_;
  const bool clean_;
  const ext4::ErrorsPolicy errors_;
  std::unique_ptr<ext4::Filesystem> fs_;
  std::vector<InodeNumber> dirs_;
  std::vector<InodeNumber> files_;
  std::vector<std::string> names_;
  std::vector<InodeNumber> open_;
};

void PrintProblems(const ext4::check::Report& report) {
  for (size_t i = 0; i < report.problems.size() && i < 20; ++i) {
    std::fprintf(stderr, "  %s: %s\n", report.problems[i].kind.c_str(),
                 report.problems[i].message.c_str());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const size_t op_bytes = std::min<size_t>(in.U16(), kMaxOpBytes);
  const Bytes ops = in.Take(op_bytes);
  std::vector<uint8_t> image = ImageOf(in.Rest());
  if (image.size() > kMaxImage) return 0;

  bool clean = false;
  {
    ext4::fuzz::SharedDevice device(image);
    auto before = ext4::check::CheckFilesystem(device);
    clean = before.ok() && before->problems.empty();
  }
  FuzzInput op_in(ops.data(), ops.size());
  // errors=remount-ro now and then; never errors=panic, which ends the
  // process.
  const ext4::ErrorsPolicy errors = (op_in.U8() & 1)
                                        ? ext4::ErrorsPolicy::kRemountReadOnly
                                        : ext4::ErrorsPolicy::kContinue;
  {
    Session session(image, clean, errors);
    if (!session.Mount()) return 0;
    session.Explore();
    session.Run(op_in);
    if (session.fs() == nullptr) return 0;
    session.Unmount();
  }
  ext4::fuzz::SharedDevice device(image);
  auto after = ext4::check::CheckFilesystem(device);
  if (clean && !(after.ok() && after->problems.empty())) {
    std::fprintf(stderr, "a clean image is no longer clean:\n");
    if (after.ok()) {
      PrintProblems(*after);
    } else {
      std::fprintf(stderr, "  %s\n",
                   std::string(after.status().ToString()).c_str());
    }
    FUZZ_CHECK(false);
  }
  return 0;
}

#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

// Mutates either the operations or a window of the image, keeping the
// layout: le16 length, operations, image.
extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size,
                                          size_t max_size, unsigned int seed) {
  std::minstd_rand rng(seed);
  if (max_size < 2) return LLVMFuzzerMutate(data, size, max_size);
  size_t op_len = 0;
  if (size >= 2) {
    op_len = std::min<size_t>(data[0] | (data[1] << 8), size - 2);
    op_len = std::min(op_len, kMaxOpBytes);
  }
  const size_t image_at = size >= 2 ? 2 + op_len : size;
  const size_t image_len = size - image_at;
  if (image_len > 0 && rng() % 2 == 0) {
    // A window of up to 1 KiB of the image, mostly in its first 64 KiB
    // where the metadata is; the image keeps its size.
    const size_t span =
        rng() % 4 == 0 ? image_len : std::min<size_t>(image_len, 64 << 10);
    const size_t at = rng() % span;
    const size_t window = std::min<size_t>(1024, image_len - at);
    LLVMFuzzerMutate(data + image_at + at, window, window);
    return size;
  }
  std::vector<uint8_t> ops(data + std::min<size_t>(2, size), data + image_at);
  ops.resize(kMaxOpBytes);
  if (op_len == 0) {
    ops[0] = static_cast<uint8_t>(rng());
    op_len = 1;
  }
  const size_t new_len = LLVMFuzzerMutate(ops.data(), op_len, kMaxOpBytes);
  std::vector<uint8_t> image(data + image_at, data + size);
  size_t out = 0;
  data[out++] = static_cast<uint8_t>(new_len);
  if (out < max_size) data[out++] = static_cast<uint8_t>(new_len >> 8);
  const size_t ops_fit = std::min(new_len, max_size - out);
  std::memcpy(data + out, ops.data(), ops_fit);
  out += ops_fit;
  const size_t image_fit = std::min(image.size(), max_size - out);
  std::memcpy(data + out, image.data(), image_fit);
  return out + image_fit;
}
#endif  // FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
