#include "tools/e4/image_path.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "ext4/errno_status.h"
#include "tools/e4/raw_image.h"

namespace e4cli {
namespace {

bool IsFile(const std::string& path) {
  struct stat st;
  return !path.empty() && stat(path.c_str(), &st) == 0 && !S_ISDIR(st.st_mode);
}

// The position of the ':' that ends the image name, or npos.
size_t SplitPoint(std::string_view argument) {
  for (size_t i = argument.find(':'); i != std::string_view::npos;
       i = argument.find(':', i + 1)) {
    if (IsFile(std::string(argument.substr(0, i)))) return i;
  }
  return std::string_view::npos;
}

class SharedDevice final : public ext4::io::BlockDevice {
 public:
  explicit SharedDevice(std::shared_ptr<ext4::io::BlockDevice> base)
      : base_(std::move(base)) {}
  absl::Status ReadAt(uint64_t offset, std::span<uint8_t> out) override {
    return base_->ReadAt(offset, out);
  }
  absl::Status WriteAt(uint64_t offset,
                       std::span<const uint8_t> data) override {
    return base_->WriteAt(offset, data);
  }
  absl::Status Flush() override { return base_->Flush(); }
  uint64_t Size() const override { return base_->Size(); }
  bool read_only() const override { return base_->read_only(); }

 private:
  std::shared_ptr<ext4::io::BlockDevice> base_;
};

absl::StatusOr<std::shared_ptr<ext4::io::BlockDevice>> OpenFile(
    const std::string& file, bool writable) {
  struct stat st;
  if (stat(file.c_str(), &st) != 0) {
    return ext4::ErrnoError(errno, std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) {
    return ext4::ErrnoError(EISDIR, "an image must be a file, not a directory");
  }
  auto device = ext4::io::OpenFileDevice(file, !writable);
  if (!device.ok()) {
    const int err = ext4::ErrnoOf(device.status());
    if (err == EBUSY) return device.status();
    // The device's message starts with the file name, which the caller
    // prints already.
    return ext4::ErrnoError(err, std::strerror(err));
  }
  return std::shared_ptr<ext4::io::BlockDevice>(std::move(*device));
}

}  // namespace

absl::StatusOr<ImagePath> ParseImagePath(std::string_view argument) {
  size_t colon = SplitPoint(argument);
  if (colon == std::string_view::npos) colon = argument.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return ext4::ErrnoError(
        EINVAL, "'" + std::string(argument) + "' is not IMAGE:/path");
  }
  ImagePath out;
  out.image = std::string(argument.substr(0, colon));
  out.path = NormalizePath(argument.substr(colon + 1));
  return out;
}

bool IsImagePath(std::string_view argument) {
  return SplitPoint(argument) != std::string_view::npos;
}

std::string Display(const ImagePath& where) {
  return where.image + ":" + where.path;
}

std::string NormalizePath(std::string_view path) {
  std::string out;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t end = path.find('/', i);
    if (end == std::string_view::npos) end = path.size();
    if (end > i) {
      out += '/';
      out.append(path.substr(i, end - i));
    }
    i = end;
  }
  return out.empty() ? "/" : out;
}

std::pair<std::string, std::string> SplitPath(std::string_view path) {
  std::string clean = NormalizePath(path);
  if (clean == "/") return {"/", ""};
  size_t slash = clean.rfind('/');
  std::string parent = slash == 0 ? "/" : clean.substr(0, slash);
  return {parent, clean.substr(slash + 1)};
}

std::string JoinPath(std::string_view dir, std::string_view name) {
  std::string out(dir);
  if (out.empty() || out.back() != '/') out += '/';
  out.append(name);
  return out;
}

std::string BaseName(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  if (path == "/") return "/";
  size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path
                                                     : path.substr(slash + 1));
}

std::unique_ptr<ext4::io::BlockDevice> ShareDevice(
    std::shared_ptr<ext4::io::BlockDevice> device) {
  return std::make_unique<SharedDevice>(std::move(device));
}

absl::StatusOr<std::shared_ptr<ext4::io::BlockDevice>> OpenDevice(
    const std::string& file) {
  return OpenFile(file, /*writable=*/false);
}

absl::StatusOr<std::unique_ptr<Image>> OpenImage(const std::string& file,
                                                 bool writable) {
  auto image = std::make_unique<Image>();
  image->file = file;
  image->writable = writable;
  E4_ASSIGN_OR_RETURN(image->device, OpenFile(file, writable));
  ext4::MountOptions options;
  options.read_only = !writable;
  // One short-lived process: commits happen per operation and at the end,
  // no timer thread is needed.
  options.commit_interval_seconds = 0;
  auto fs = ext4::Filesystem::Open(ShareDevice(image->device), options);
  if (!fs.ok()) {
    const int err = ext4::ErrnoOf(fs.status());
    if (writable && err == EROFS) {
      return ext4::ErrnoError(EROFS,
                              "this image cannot be changed: " +
                                  std::string(fs.status().message()) +
                                  " (the read-only commands still work)");
    }
    return fs.status();
  }
  image->fs = std::move(*fs);
  return image;
}

Image::Image() = default;
Image::~Image() = default;

ImageSet::~ImageSet() {
  std::string ignored;
  CloseAll(&ignored).IgnoreError();
}

absl::StatusOr<Image*> ImageSet::Get(const std::string& file) {
  for (const auto& image : images_) {
    if (image->file == file) return image.get();
  }
  E4_ASSIGN_OR_RETURN(std::unique_ptr<Image> image, OpenImage(file, writable_));
  images_.push_back(std::move(image));
  return images_.back().get();
}

absl::Status ImageSet::CloseAll(std::string* failed_file) {
  absl::Status first = absl::OkStatus();
  for (auto& image : images_) {
    std::string file = image->file;
    absl::Status status = CloseImage(std::move(image));
    if (!status.ok() && first.ok()) {
      first = status;
      *failed_file = file;
    }
  }
  images_.clear();
  return first;
}

absl::Status CloseImage(std::unique_ptr<Image> image) {
  if (image == nullptr) return absl::OkStatus();
  absl::Status status = absl::OkStatus();
  image->raw.reset();
  if (image->writable && image->fs != nullptr) status = image->fs->SyncAll();
  image->fs.reset();
  if (status.ok() && image->writable) status = image->device->Flush();
  image.reset();
  return status;
}

absl::StatusOr<ext4::InodeNumber> Resolve(ext4::Filesystem& fs,
                                          std::string_view path, bool follow,
                                          std::string* resolved) {
  std::string current = NormalizePath(path);
  for (int hops = 0;; ++hops) {
    E4_ASSIGN_OR_RETURN(ext4::InodeNumber ino, fs.ResolvePath(current));
    if (follow) {
      E4_ASSIGN_OR_RETURN(ext4::Attributes attr, fs.GetAttr(ino));
      if (S_ISLNK(attr.mode)) {
        if (hops >= 40) {
          return ext4::ErrnoError(ELOOP, "too many levels of symbolic links");
        }
        E4_ASSIGN_OR_RETURN(std::string target, fs.ReadLink(ino));
        if (target.empty()) return ext4::ErrnoError(ENOENT, "empty symlink");
        current =
            target[0] == '/'
                ? NormalizePath(target)
                : NormalizePath(JoinPath(SplitPath(current).first, target));
        continue;
      }
    }
    if (resolved != nullptr) *resolved = current;
    return ino;
  }
}

absl::StatusOr<ParentAndName> ResolveParent(ext4::Filesystem& fs,
                                            std::string_view path) {
  auto [parent_path, name] = SplitPath(path);
  if (name.empty() || name == "." || name == "..") {
    return ext4::ErrnoError(EINVAL, name.empty()
                                        ? "not possible on the root directory"
                                        : "not possible on '.' or '..'");
  }
  ParentAndName out;
  E4_ASSIGN_OR_RETURN(out.parent, Resolve(fs, parent_path, /*follow=*/true));
  out.name = std::move(name);
  return out;
}

bool SameFile(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  if (stat(a.c_str(), &sa) != 0 || stat(b.c_str(), &sb) != 0) return a == b;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

absl::StatusOr<std::vector<ext4::DirEntry>> ListEntries(ext4::Filesystem& fs,
                                                        ext4::InodeNumber dir) {
  std::vector<ext4::DirEntry> entries;
  E4_RETURN_IF_ERROR(fs.ReadDir(dir, 0, [&](const ext4::DirEntry& e) {
    if (e.name != "." && e.name != "..") entries.push_back(e);
    return true;
  }));
  return entries;
}

const ext4::Credentials& Root() {
  static const ext4::Credentials* root = new ext4::Credentials();
  return *root;
}

}  // namespace e4cli
