// Whole images: mount the input as a filesystem and walk everything the
// public API can reach. Any crash, hang or sanitizer report is a bug; errors
// are the expected answer to most inputs.
#include <sys/stat.h>

#include <cstdint>
#include <vector>

#include "ext4/filesystem.h"

namespace {

constexpr int kMaxEntries = 2000;
constexpr size_t kMaxRead = 1 << 16;

void Walk(ext4::Filesystem& fs, ext4::InodeNumber dir, int depth, int& budget) {
  if (depth > 16) return;
  std::vector<ext4::DirEntry> entries;
  (void)fs.ReadDir(dir, 0, [&](const ext4::DirEntry& entry) {
    entries.push_back(entry);
    return --budget > 0;
  });
  for (const auto& entry : entries) {
    if (entry.name == "." || entry.name == "..") continue;
    auto ino = fs.Lookup(dir, entry.name);
    if (!ino.ok()) continue;
    auto attr = fs.GetAttr(*ino);
    if (!attr.ok()) continue;
    (void)fs.ListXattrs(*ino);
    (void)fs.GetXattr(*ino, "user.a");
    (void)fs.GetXattr(*ino, "system.posix_acl_access");
    if (S_ISDIR(attr->mode)) {
      (void)fs.Lookup(*ino, "no-such-name");
      Walk(fs, *ino, depth + 1, budget);
    } else if (S_ISLNK(attr->mode)) {
      (void)fs.ReadLink(*ino);
    } else if (S_ISREG(attr->mode)) {
      std::vector<uint8_t> buffer(kMaxRead);
      (void)fs.Read(*ino, 0, buffer);
      (void)fs.Read(*ino, attr->size > kMaxRead ? attr->size - kMaxRead : 0,
                    buffer);
    }
    if (budget <= 0) return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  ext4::MountOptions options;
  options.no_recovery = true;
  options.inode_cache_limit = 64;
  options.block_cache_limit = 64;
  auto fs = ext4::Filesystem::Open(
      ext4::io::MemoryDevice(std::move(bytes), /*read_only=*/true), options);
  if (!fs.ok()) return 0;
  (void)(*fs)->StatFs();
  int budget = kMaxEntries;
  Walk(**fs, ext4::kRootInode, 0, budget);
  return 0;
}
