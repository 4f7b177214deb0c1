// Directory changes: adding, removing and re-pointing entries of linear,
// hash-indexed (htree) and inline directories. The layout decisions follow
// the kernel's ext4 so that the kernel and e2fsck read the result as their
// own:
//  - a new entry takes the first record with enough slack (a used record is
//    cut to its own length, the new one takes the rest); a linear directory
//    with no room gets a new block, except that a full one-block directory
//    on a dir_index filesystem becomes an htree (block 0 turns into the
//    dx_root, its entries move to two new leaves split by hash);
//  - a full htree leaf splits: its entries and the new one are sorted by
//    hash and the upper part moves to a new block; the index gets an entry
//    for it (with the continuation bit when equal hashes straddle the two
//    leaves). A full index block splits in two; a full root moves its
//    entries into a new index block and the tree grows a level, up to 2
//    index levels (3 with large_dir), beyond which an insert is ENOSPC;
//  - a removed entry merges into the record before it in its block, or
//    becomes an unused record when it is the block's first. Blocks are
//    never given back (the kernel keeps them too).
// Every block changed gets its checksum tail (leaves) or dx_tail (index
// blocks) updated under metadata_csum. All blocks are read and changed
// through the transaction.
//
// Errors: EEXIST, ENOENT, ENAMETOOLONG (> 255 bytes), EINVAL (empty names,
// "." and "..", names holding '/' or NUL), ENOSPC (no block or a full
// index), EUCLEAN for corrupt blocks. After an error the transaction may hold
// part of the change (a block appended, a split made): the caller aborts it.
#ifndef E4FS_EXT4_DIRECTORY_WRITER_H_
#define E4FS_EXT4_DIRECTORY_WRITER_H_

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ext4/directory.h"
#include "ext4/format/endian.h"
#include "ext4/transaction.h"

namespace ext4 {

// How the writer reaches a directory's blocks; the engine implements it over
// the inode's extent tree or block map.
class DirectoryWriteTarget {
 public:
  virtual ~DirectoryWriteTarget() = default;
  // The directory's size in blocks (i_size / block_size).
  virtual uint32_t BlockCount() const = 0;
  // The physical block of logical block `logical` (< BlockCount()); EUCLEAN
  // for a hole.
  virtual absl::StatusOr<uint64_t> PhysicalBlock(Transaction& tx,
                                                 uint32_t logical) = 0;
  // Allocates and maps a new block at logical BlockCount(), grows i_size by
  // one block and returns the new block's physical number (the writer fills
  // it through tx.ModifyNew). ENOSPC when nothing is free.
  virtual absl::StatusOr<uint64_t> AppendBlock(Transaction& tx) = 0;
  // The directory became (or stopped being) indexed: set or clear
  // EXT4_INDEX_FL on the inode.
  virtual void SetIndexed(bool indexed) = 0;
  // Whether the directory may become an htree: the filesystem has dir_index.
  virtual bool CanIndex() const = 0;
};

// Writes a new directory's first block: "." -> self, ".." -> parent covering
// the rest of the block (up to the checksum tail under metadata_csum).
// `block` is ctx.block_size bytes.
absl::Status InitDirectoryBlock(const DirectoryContext& ctx,
                                format::MutableBytes block, uint32_t self,
                                uint32_t parent);

// Adds `name` -> `ino`. The S_IFMT bits of `mode` give the entry's file type
// (with the filetype feature). EEXIST when the name is present. When a
// linear directory becomes an htree, ctx.htree turns true and the target's
// SetIndexed(true) is called.
absl::Status AddEntry(Transaction& tx, DirectoryContext& ctx,
                      DirectoryWriteTarget& dir, std::string_view name,
                      uint32_t ino, uint32_t mode);

// Removes `name` (ENOENT when absent).
absl::Status RemoveEntry(Transaction& tx, const DirectoryContext& ctx,
                         DirectoryWriteTarget& dir, std::string_view name);

// Points the existing entry `name` at `ino` and sets its file type from
// `mode` (rename over an existing name). ENOENT when absent.
absl::Status ReplaceEntry(Transaction& tx, const DirectoryContext& ctx,
                          DirectoryWriteTarget& dir, std::string_view name,
                          uint32_t ino, uint32_t mode);

// Points the directory's ".." at `parent` (rename across directories).
absl::Status SetParent(Transaction& tx, const DirectoryContext& ctx,
                       DirectoryWriteTarget& dir, uint32_t parent);

// True when no entry but "." and ".." is in use (rmdir's ENOTEMPTY check).
// Reads every block, as the kernel does.
absl::StatusOr<bool> IsEmpty(Transaction& tx, const DirectoryContext& ctx,
                             DirectoryWriteTarget& dir);

// ---------------------------------------------------------------------------
// Inline directories (inline_data). `i_block` is the inode's 60-byte i_block:
// the parent's inode number, then records covering the remaining 56 bytes.
// `system_data` is the value of the "system.data" xattr: more records
// covering it exactly (often empty). The caller writes the inode (and the
// xattr, where a call says it changed) back and updates its checksum.

// Adds `name` -> `ino` into i_block. Returns false, changing nothing, when
// the record does not fit there: the caller then converts the directory to
// a block directory (ConvertInlineToBlock) and calls AddEntry. EEXIST when
// the name is in i_block or system.data.
absl::StatusOr<bool> AddInlineEntry(const DirectoryContext& ctx,
                                    format::MutableBytes i_block,
                                    format::Bytes system_data,
                                    std::string_view name, uint32_t ino,
                                    uint32_t mode);

// Writes the first block of the block directory an inline directory becomes:
// "." -> self, ".." -> the inline parent, then every entry of i_block and
// system.data, the last record covering the rest (and the checksum tail
// under metadata_csum). `new_block` is ctx.block_size bytes (its previous
// contents are overwritten). ENOSPC if the entries cannot fit one block.
absl::Status ConvertInlineToBlock(Transaction& tx, const DirectoryContext& ctx,
                                  format::Bytes i_block,
                                  format::Bytes system_data,
                                  format::MutableBytes new_block,
                                  uint32_t self);

// Removes `name` from i_block or system.data. Returns true when the change
// was made in `system_data` (the caller must write the xattr back); its size
// never changes.
absl::StatusOr<bool> RemoveInlineEntry(const DirectoryContext& ctx,
                                       format::MutableBytes i_block,
                                       format::MutableBytes system_data,
                                       std::string_view name);

// Re-points `name` at `ino` with the file type of `mode`. Returns true when
// the entry was in `system_data` (to be written back).
absl::StatusOr<bool> ReplaceInlineEntry(const DirectoryContext& ctx,
                                        format::MutableBytes i_block,
                                        format::MutableBytes system_data,
                                        std::string_view name, uint32_t ino,
                                        uint32_t mode);

// True when neither i_block nor system.data holds a used record.
absl::StatusOr<bool> IsInlineEmpty(format::Bytes i_block,
                                   format::Bytes system_data);

// Sets the parent inode number (the first 4 bytes of i_block).
absl::Status SetInlineParent(format::MutableBytes i_block, uint32_t parent);

}  // namespace ext4

#endif  // E4FS_EXT4_DIRECTORY_WRITER_H_
