// Filling a filesystem from a directory tree of the host (mke2fs -d), through
// the engine's public API only, so that it works on any mounted Filesystem.
#ifndef E4FS_EXT4_MKFS_POPULATE_H_
#define E4FS_EXT4_MKFS_POPULATE_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "ext4/filesystem.h"
#include "ext4/io/block_device.h"
#include "ext4/mkfs/options.h"

namespace ext4::mkfs {

// Copies everything under the host directory `dir` into the root directory
// of `fs` (mounted read-write), without following symlinks: directories,
// regular files, symlinks, device nodes, fifos and sockets, with their
// permission bits (setuid, setgid and sticky included), owners, atime,
// mtime and ctime (to the nanosecond where the inodes hold it; creation
// times are the engine's), and extended attributes. Files with several
// names become one inode with as many links. All-zero blocks of regular
// files, and the holes of the source, become holes. Entries are copied in
// name order, so the same tree and options give the same image.
//
// The root directory takes the permission bits, owner, times and extended
// attributes of `dir` itself. A top-level lost+found directory of `dir`
// fills the existing lost+found instead of replacing it.
//
// The first error stops the copy and is returned with the host path it
// concerns (ENOENT, EACCES... from the host; ENOSPC, EMLINK... from the
// engine). What was copied before stays.
absl::Status PopulateFromDirectory(Filesystem& fs, const std::string& dir);

// A device that forwards every call to `device`, which must outlive it: for
// handing a device that the caller keeps to Filesystem::Open().
std::unique_ptr<io::BlockDevice> BorrowDevice(io::BlockDevice& device);

// MakeFilesystem() (mkfs.h), then mounts the new filesystem read-write
// through the engine, copies the tree at `source_dir` into it with
// PopulateFromDirectory() and unmounts it cleanly.
absl::Status MakeFilesystemFromDirectory(io::BlockDevice& device,
                                         const MkfsOptions& options,
                                         const std::string& source_dir);

}  // namespace ext4::mkfs

#endif  // E4FS_EXT4_MKFS_POPULATE_H_
