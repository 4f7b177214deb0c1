// IMAGE:/path arguments, and opening an image with the engine: read-only for
// the commands that look, read-write for those that change it (which end
// with CloseImage: everything committed, the image marked clean).
#ifndef E4FS_TOOLS_E4_IMAGE_PATH_H_
#define E4FS_TOOLS_E4_IMAGE_PATH_H_

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ext4/filesystem.h"
#include "ext4/io/block_device.h"

namespace e4cli {

struct ImagePath {
  std::string image;  // the image file
  std::string path;   // inside it: absolute, "/" for the root
};

// Splits "IMAGE:/path" (or "IMAGE:path", root-relative; "IMAGE:" is the
// root). An image name may itself hold ':' characters: the split is at the
// first ':' whose left side names an existing file, else at the first ':'.
// EINVAL without any ':'.
absl::StatusOr<ImagePath> ParseImagePath(std::string_view argument);

// Whether `argument` looks like IMAGE:/path (holds a ':' whose left side is
// an existing file), for commands that take both host and image paths.
bool IsImagePath(std::string_view argument);

// "IMAGE:/path", for messages.
std::string Display(const ImagePath& where);

// The path cleaned up: one leading '/', no empty components, no trailing
// '/'. "." and ".." are kept (the directories hold them).
std::string NormalizePath(std::string_view path);
// ("/a/b" -> "/a", "b"); the root gives ("/", "").
std::pair<std::string, std::string> SplitPath(std::string_view path);
std::string JoinPath(std::string_view dir, std::string_view name);
// The last component of a host or image path after trailing slashes are
// dropped: "a/b/" -> "b", "a/." -> ".", "/" -> "/".
std::string BaseName(std::string_view path);

class RawImage;

// One opened image. The device is shared so that the commands that parse
// raw structures (raw_image.h) read the same file under the same lock.
struct Image {
  Image();
  ~Image();

  std::string file;
  bool writable = false;
  std::shared_ptr<ext4::io::BlockDevice> device;
  std::unique_ptr<ext4::Filesystem> fs;
  // Made on first use by RawView() (raw_image.h).
  std::unique_ptr<RawImage> raw;
};

// Opens `file` and mounts it: read-only, or read-write with `writable`
// (journal replayed, image marked in use until CloseImage).
absl::StatusOr<std::unique_ptr<Image>> OpenImage(const std::string& file,
                                                 bool writable);
// Opens just the device (read-only), for commands that parse the image
// without mounting it.
absl::StatusOr<std::shared_ptr<ext4::io::BlockDevice>> OpenDevice(
    const std::string& file);

// Read-write images: commits everything and marks the image clean
// (SyncAll), then unmounts. Read-only ones are just closed.
absl::Status CloseImage(std::unique_ptr<Image> image);

// The images a command's operands name, each opened once.
class ImageSet {
 public:
  explicit ImageSet(bool writable) : writable_(writable) {}
  // Closes (CloseImage) whatever is still open; errors are lost, so call
  // CloseAll first.
  ~ImageSet();

  absl::StatusOr<Image*> Get(const std::string& file);
  // CloseImage on each; the first error, with the file it concerns, in
  // `failed_file`.
  absl::Status CloseAll(std::string* failed_file);

 private:
  const bool writable_;
  std::vector<std::unique_ptr<Image>> images_;
};

// A BlockDevice that forwards to a shared one.
std::unique_ptr<ext4::io::BlockDevice> ShareDevice(
    std::shared_ptr<ext4::io::BlockDevice> device);

// Resolves a path inside the image. Intermediate symlinks are followed;
// the final one only with `follow` (at most 40 in all, then ELOOP).
// `resolved`, when given, receives the path of what was reached.
absl::StatusOr<ext4::InodeNumber> Resolve(ext4::Filesystem& fs,
                                          std::string_view path, bool follow,
                                          std::string* resolved = nullptr);

// The directory that holds the last component of `path` (intermediate
// symlinks followed), and that component. EINVAL for the root, "." and "..".
struct ParentAndName {
  ext4::InodeNumber parent = 0;
  std::string name;
};
absl::StatusOr<ParentAndName> ResolveParent(ext4::Filesystem& fs,
                                            std::string_view path);

// Whether two paths name the same file (by device and inode).
bool SameFile(const std::string& a, const std::string& b);

// A directory's entries without "." and "..", in directory order.
absl::StatusOr<std::vector<ext4::DirEntry>> ListEntries(ext4::Filesystem& fs,
                                                        ext4::InodeNumber dir);

// Credentials of root: the image is edited as its owner would.
const ext4::Credentials& Root();

}  // namespace e4cli

#endif  // E4FS_TOOLS_E4_IMAGE_PATH_H_
