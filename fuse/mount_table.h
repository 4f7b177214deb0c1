// Reading the kernel's mount tables (/proc/self/mounts, mountinfo).
#ifndef E4FS_FUSE_MOUNT_TABLE_H_
#define E4FS_FUSE_MOUNT_TABLE_H_

#include <string>
#include <string_view>

namespace e4fs {

// The whole text of a /proc file; empty when it cannot be read.
std::string ReadProcText(const char* path);

// A path field as the mount tables write it: space, tab, newline and
// backslash come as \ooo.
std::string UnescapeMountField(std::string_view field);

}  // namespace e4fs

#endif  // E4FS_FUSE_MOUNT_TABLE_H_
