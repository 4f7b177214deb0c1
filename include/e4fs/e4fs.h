// e4fs as a library: the one header an embedding program includes.
//
//   #include "e4fs/e4fs.h"
//
// brings in the engine's public API -- everything is inode-based:
//
//   ext4::io::OpenFileDevice(path, read_only)      an image file or device
//   ext4::io::MemoryDevice(bytes)                  an image in memory
//   ext4::Filesystem::Open(device, MountOptions)   mount it (replaying the
//                                                  journal if it needs it)
//   fs->ResolvePath("/a/b")                        path -> inode number
//   fs->Lookup / GetAttr / ReadDir / Read / ReadLink / ListXattrs /
//   GetXattr / StatFs                              reading
//   fs->Create / MakeDirectory / MakeSymlink / MakeNode / Link / Unlink /
//   RemoveDirectory / Rename / Write / SetAttr / Allocate / SetXattr /
//   RemoveXattr / Sync                             changing (read-write)
//   fs->SyncAll()                                  commit everything and
//                                                  mark the image clean
//   ext4::mkfs::MakeFilesystem(device, options)    a new filesystem
//   ext4::mkfs::PopulateFromDirectory(fs, dir)     fill it from a tree
//   ext4::check::CheckFilesystem(device)           a read-only fsck
//
// Every call returns absl::Status or absl::StatusOr; ext4::ErrnoOf(status)
// is the errno the kernel's ext4 returns in the same situation. A
// Filesystem is safe to use from several threads.
#ifndef E4FS_INCLUDE_E4FS_E4FS_H_
#define E4FS_INCLUDE_E4FS_E4FS_H_

#include "ext4/check/checker.h"
#include "ext4/errno_status.h"
#include "ext4/filesystem.h"
#include "ext4/io/block_device.h"
#include "ext4/mkfs/mkfs.h"
#include "ext4/mkfs/populate.h"

#endif  // E4FS_INCLUDE_E4FS_E4FS_H_
