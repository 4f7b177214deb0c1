// The engine behind the public Filesystem API: superblock and group
// descriptors, the in-core inode cache, and the per-operation logic that ties
// the format parsers, file maps, directories and xattrs together.
#ifndef E4FS_EXT4_FILESYSTEM_IMPL_H_
#define E4FS_EXT4_FILESYSTEM_IMPL_H_

#include <memory>
#include <string>
#include <vector>

#include "cache/ref_cache.h"
#include "ext4/directory.h"
#include "ext4/file_map.h"
#include "ext4/filesystem.h"
#include "ext4/format/group_descriptor.h"
#include "ext4/format/inode.h"
#include "ext4/format/superblock.h"
#include "ext4/format/xattr.h"
#include "ext4/io/block_cache.h"

namespace ext4 {

// An inode as the engine keeps it in core.
struct InCoreInode {
  InodeNumber ino = 0;
  format::Inode inode;
  std::vector<uint8_t> raw;    // the on-disk bytes (in-inode xattrs live here)
  uint32_t checksum_seed = 0;  // for extent, directory and htree checksums
};

class FilesystemImpl final : public Filesystem {
 public:
  FilesystemImpl(std::unique_ptr<io::BlockDevice> device,
                 const format::Superblock& superblock,
                 const MountOptions& options, bool read_only);

  absl::Status Initialize();

  bool read_only() const override { return read_only_; }
  std::string Describe() const override;
  absl::StatusOr<Attributes> GetAttr(InodeNumber ino) override;
  absl::StatusOr<InodeNumber> Lookup(InodeNumber dir,
                                     std::string_view name) override;
  absl::StatusOr<size_t> Read(InodeNumber ino, uint64_t offset,
                              std::span<uint8_t> out) override;
  absl::Status ReadDir(
      InodeNumber dir, uint64_t cookie,
      const std::function<bool(const DirEntry&)>& emit) override;
  absl::StatusOr<std::string> ReadLink(InodeNumber ino) override;
  absl::StatusOr<std::vector<std::string>> ListXattrs(
      InodeNumber ino) override;
  absl::StatusOr<std::string> GetXattr(InodeNumber ino,
                                       std::string_view name) override;
  absl::StatusOr<FsStats> StatFs() override;
  absl::Status Pin(InodeNumber ino, uint64_t count) override;
  void Unpin(InodeNumber ino, uint64_t count) override;
  size_t InodesInCore() const override { return inodes_.size(); }
  uint64_t MetadataBlockReads() const override {
    return blocks_.device_reads();
  }
  void DropCaches() override;

 private:
  using InodeCache = cache::RefCache<InodeNumber, InCoreInode>;
  using InodeHandle = InodeCache::Handle;

  absl::StatusOr<format::GroupDescriptor> GetGroup(uint32_t group);
  absl::StatusOr<std::unique_ptr<InCoreInode>> LoadInode(InodeNumber ino);
  absl::StatusOr<InodeHandle> GetInode(InodeNumber ino);

  // Reads file bytes through the inode's block map (or its inline data).
  absl::StatusOr<size_t> ReadData(const InCoreInode& node, uint64_t offset,
                                  std::span<uint8_t> out);
  // The inline data of an inode: i_block followed by the system.data xattr.
  absl::StatusOr<std::string> InlineData(const InCoreInode& node);
  absl::StatusOr<std::string> SystemDataXattr(const InCoreInode& node);

  DirectoryContext DirContext(const InCoreInode& node) const;

  // All xattr entries of an inode: in-inode first, then the external block
  // (filesystem_xattrs.cc).
  absl::StatusOr<std::vector<format::XattrEntry>> CollectXattrs(
      const InCoreInode& node);
  // An entry's value, read from its EA inode when it has one.
  absl::StatusOr<std::string> XattrValue(const format::XattrEntry& entry);

  absl::Status Report(const absl::Status& status, InodeNumber ino) const;

  std::unique_ptr<io::BlockDevice> device_;
  const format::Superblock sb_;
  const MountOptions options_;
  const bool read_only_;
  io::BlockCache blocks_;
  InodeCache inodes_;
};

}  // namespace ext4

#endif  // E4FS_EXT4_FILESYSTEM_IMPL_H_
