// An embedding example that uses only the public header: prints every path
// under a directory of an image with its size, and the total.
//
//   tree_size IMAGE [PATH]
#include <cstdio>
#include <string>

#include "e4fs/e4fs.h"

namespace {

// Walks `dir` depth-first; `prefix` is its path.
uint64_t Walk(ext4::Filesystem& fs, ext4::InodeNumber dir,
              const std::string& prefix) {
  uint64_t total = 0;
  absl::Status status = fs.ReadDir(dir, 0, [&](const ext4::DirEntry& entry) {
    if (entry.name == "." || entry.name == "..") return true;
    const std::string path = prefix + "/" + entry.name;
    auto attr = fs.GetAttr(entry.ino);
    if (!attr.ok()) {
      std::fprintf(stderr, "%s: %s\n", path.c_str(),
                   std::string(attr.status().message()).c_str());
      return true;
    }
    std::printf("%12llu  %s\n", static_cast<unsigned long long>(attr->size),
                path.c_str());
    total += attr->size;
    if ((attr->mode & 0170000) == 0040000) {
      total += Walk(fs, entry.ino, path);
    }
    return true;
  });
  if (!status.ok()) {
    std::fprintf(stderr, "%s: %s\n", prefix.c_str(),
                 std::string(status.message()).c_str());
  }
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: tree_size IMAGE [PATH]\n");
    return 1;
  }
  auto device = ext4::io::OpenFileDevice(argv[1], /*read_only=*/true);
  if (!device.ok()) {
    std::fprintf(stderr, "%s: %s\n", argv[1],
                 std::string(device.status().message()).c_str());
    return 2;
  }
  auto fs = ext4::Filesystem::Open(std::move(*device), ext4::MountOptions{});
  if (!fs.ok()) {
    std::fprintf(stderr, "%s: %s\n", argv[1],
                 std::string(fs.status().message()).c_str());
    return 2;
  }
  const std::string start = argc == 3 ? argv[2] : "/";
  auto dir = (*fs)->ResolvePath(start);
  if (!dir.ok()) {
    std::fprintf(stderr, "%s: %s\n", start.c_str(),
                 std::string(dir.status().message()).c_str());
    return 2;
  }
  const uint64_t total = Walk(**fs, *dir, start == "/" ? "" : start);
  std::printf("%12llu  total\n", static_cast<unsigned long long>(total));
  return 0;
}
