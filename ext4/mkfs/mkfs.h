// Making a new ext2/ext3/ext4 filesystem on a block device, as mke2fs does,
// without root and without the kernel: `e4 mkfs` and any program that
// embeds the engine use this.
//
// MakeFilesystem writes, in this order (the primary superblock last, so an
// interrupted run leaves no filesystem that looks whole):
//  - the inode tables, zeroed (unless the device is known to read zeros),
//    and the journal's blocks, zeroed likewise;
//  - the reserved inodes 1..10 as mke2fs leaves them (zero, checksummed;
//    inode 1 with its times), the root directory (inode 2, "." ".."
//    "lost+found"), lost+found (inode 11, 16 KiB of empty blocks so that
//    e2fsck can reconnect files without allocating) and the journal
//    (inode 8: extent-mapped or, without extents, indirect-mapped, one
//    contiguous run; a clean jbd2 v2 superblock with s_first 1, sequence 1
//    and the filesystem's UUID);
//  - the block and inode bitmaps (padding bits set) and, with metadata_csum
//    or gdt_csum, mke2fs's group flags: INODE_UNINIT for groups without
//    inodes in use, BLOCK_UNINIT where the kernel would rebuild the same
//    bitmap (never the last group), ITABLE_ZEROED always, and
//    bg_itable_unused; the bitmaps of uninitialized groups are not written
//    (nothing reads them), as with mke2fs;
//  - the descriptor table and the superblock in every backup group, then
//    the primary ones.
// Every checksum the features call for is set (superblock, descriptors,
// bitmaps, inodes, extent blocks, directory blocks), and every free count
// is exact.
//
// Not made (mke2fs makes them on request or by default): the resize inode
// and reserved GDT blocks (resize_inode), meta_bg, bigalloc, quota inodes,
// the orphan file; see options.h.
#ifndef E4FS_EXT4_MKFS_MKFS_H_
#define E4FS_EXT4_MKFS_MKFS_H_

#include "absl/status/status.h"
#include "ext4/io/block_device.h"
#include "ext4/mkfs/layout.h"
#include "ext4/mkfs/options.h"

namespace ext4::mkfs {

// Makes the filesystem `options` describe on `device` (whose size bounds
// it). Errors: those of PlanFilesystem(), EROFS for a read-only device, and
// the device's own.
absl::Status MakeFilesystem(io::BlockDevice& device,
                            const MkfsOptions& options);

}  // namespace ext4::mkfs

#endif  // E4FS_EXT4_MKFS_MKFS_H_
