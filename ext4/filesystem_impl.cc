#include "ext4/filesystem_impl.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "ext4/format/checksum.h"
#include "ext4/format/endian.h"
#include "ext4/overhead.h"

namespace ext4 {
namespace {

// Bound on the in-inode xattr walk and on symlink targets (PATH_MAX).
constexpr uint64_t kMaxSymlinkLength = 4096;

class MappedDirectory final : public DirectoryBlockSource {
 public:
  MappedDirectory(std::unique_ptr<FileMap> map, io::BlockCache& blocks,
                  uint64_t size)
      : map_(std::move(map)),
        blocks_(blocks),
        // A directory cannot hold more blocks than the filesystem has: a
        // hostile i_size over a map that repeats one block would otherwise
        // make a listing or a failed lookup walk billions of blocks.
        count_(static_cast<uint32_t>(std::min<uint64_t>(
            {size / blocks.block_size(), blocks.block_count(), UINT32_MAX}))) {}

  absl::StatusOr<std::shared_ptr<const std::vector<uint8_t>>> ReadBlock(
      uint32_t logical) override {
    if (logical >= count_) {
      return Corrupt(absl::StrCat("directory block ", logical,
                                  " is past the directory's end"));
    }
    E4_ASSIGN_OR_RETURN(BlockMapping mapping, map_->Map(logical));
    if (mapping.physical == 0 || mapping.unwritten) {
      return Corrupt(absl::StrCat("hole at directory block ", logical));
    }
    return blocks_.Read(mapping.physical);
  }

  uint32_t BlockCount() const override { return count_; }

 private:
  std::unique_ptr<FileMap> map_;
  io::BlockCache& blocks_;
  const uint32_t count_;
};

Timestamp ToTimestamp(const format::InodeTime& time) {
  return Timestamp{time.sec, time.nsec};
}

}  // namespace

FilesystemImpl::FilesystemImpl(std::unique_ptr<io::BlockDevice> device,
                               const format::Superblock& superblock,
                               const MountOptions& options, bool read_only)
    : device_(std::move(device)),
      sb_(superblock),
      options_(options),
      read_only_(read_only),
      blocks_(*device_, sb_.block_size(), sb_.blocks_count,
              options.block_cache_limit),
      inodes_(options.inode_cache_limit),
      sb_errors_behaviour_(superblock.errors) {
  absl::MutexLock lock(&errors_mu_);
  error_record_.base_count = superblock.error_count;
}

FilesystemImpl::~FilesystemImpl() {
  // Without SyncAll first this is a crash as far as the image is concerned:
  // the running transaction is not committed.
  StopCommitThread();
  // This node no longer uses the device.
  if (mmp_ != nullptr) {
    if (absl::Status s = mmp_->Release(*device_); !s.ok()) {
      std::fprintf(stderr, "e4fs: cannot mark the MMP block clean: %s\n",
                   std::string(s.message()).c_str());
    }
  }
}

void FilesystemImpl::StartBackgroundWork() {
  if (mmp_ == nullptr) return;
  mmp_->StartUpdates(device_.get(), [this](const absl::Status& status) {
    // Mounted twice, or the block cannot be written: an error of the
    // filesystem, with the errors= policy.
    absl::ReaderMutexLock lock(&mu_);
    RecordError(status, 0);
  });
}

absl::Status FilesystemImpl::Initialize() {
  uint64_t needed = sb_.blocks_count * sb_.block_size();
  if (device_->Size() / sb_.block_size() < sb_.blocks_count) {
    return ErrnoError(EINVAL,
                      absl::StrCat("the image holds ", device_->Size(),
                                   " bytes but the filesystem needs ", needed));
  }
  E4_ASSIGN_OR_RETURN(InodeHandle root, GetInode(kRootInode));
  if (!S_ISDIR(root->inode.mode)) {
    return Corrupt("the root inode is not a directory");
  }
  if (!read_only_) {
    absl::MutexLock lock(&mu_);
    E4_RETURN_IF_ERROR(StartWriting());
    mounting_ = false;
  }
  return absl::OkStatus();
}

std::string FilesystemImpl::Describe() const {
  char uuid[37];
  const uint8_t* u = sb_.uuid;
  std::snprintf(
      uuid, sizeof(uuid),
      "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
      u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
      u[12], u[13], u[14], u[15]);
  return absl::StrCat("label \"", sb_.volume_name, "\", UUID ", uuid, ", ",
                      sb_.blocks_count, " blocks of ", sb_.block_size(),
                      " bytes, features: ", format::FeatureNames(sb_));
}

absl::StatusOr<format::GroupDescriptor> FilesystemImpl::GetGroup(
    uint32_t group) {
  if (group >= sb_.group_count()) {
    return Corrupt(absl::StrCat("group ", group, " does not exist"));
  }
  uint64_t block = format::GroupDescriptorBlock(sb_, group);
  uint32_t offset = format::GroupDescriptorOffsetInBlock(sb_, group);
  E4_ASSIGN_OR_RETURN(io::BlockRef bytes, blocks_.Read(block));
  format::Bytes all(*bytes);
  if (offset + sb_.descriptor_size() > all.size()) {
    return Corrupt(absl::StrCat("group descriptor ", group, " out of block"));
  }
  return format::ParseGroupDescriptor(
      all.subspan(offset, sb_.descriptor_size()), group, sb_);
}

absl::StatusOr<std::unique_ptr<InCoreInode>> FilesystemImpl::LoadInode(
    InodeNumber ino) {
  if (ino == 0 || ino > sb_.inodes_count) {
    return Corrupt(absl::StrCat("inode number ", ino, " is out of range"));
  }
  uint32_t group = (ino - 1) / sb_.inodes_per_group;
  uint32_t index = (ino - 1) % sb_.inodes_per_group;
  E4_ASSIGN_OR_RETURN(format::GroupDescriptor gd, GetGroup(group));
  if ((sb_.has_ro_compat(format::kRoCompatGdtCsum) || sb_.metadata_csum()) &&
      (gd.flags & format::kBgInodeUninit)) {
    return Corrupt(absl::StrCat("inode ", ino, " lies in an unused group"));
  }
  uint32_t inode_size = sb_.inode_size();
  uint64_t byte = uint64_t{index} * inode_size;
  uint64_t block = gd.inode_table + byte / sb_.block_size();
  E4_ASSIGN_OR_RETURN(io::BlockRef bytes, blocks_.Read(block));
  format::Bytes raw =
      format::Bytes(*bytes).subspan(byte % sb_.block_size(), inode_size);
  auto node = std::make_unique<InCoreInode>();
  node->ino = ino;
  E4_ASSIGN_OR_RETURN(node->inode, format::ParseInode(raw, ino, sb_));
  node->raw.assign(raw.begin(), raw.end());
  if (node->inode.mode == 0) {
    return Corrupt(absl::StrCat("inode ", ino, " is not in use"));
  }
  node->checksum_seed = format::InodeChecksumSeed(sb_.checksum_seed(), ino,
                                                  node->inode.generation);
  return node;
}

absl::StatusOr<FilesystemImpl::InodeHandle> FilesystemImpl::GetInode(
    InodeNumber ino) {
  auto handle = inodes_.GetOrLoad(ino, [&] { return LoadInode(ino); });
  if (!handle.ok()) return Report(handle.status(), ino);
  if (in_write_) touched_.push_back(*handle);
  return handle;
}

absl::StatusOr<Attributes> FilesystemImpl::GetAttr(InodeNumber ino) {
  absl::ReaderMutexLock lock(&mu_);
  E4_ASSIGN_OR_RETURN(InodeHandle handle, GetInode(ino));
  return AttributesOf(*handle);
}

absl::StatusOr<Attributes> FilesystemImpl::AttributesOf(
    const InCoreInode& node) const {
  const format::Inode& inode = node.inode;
  Attributes attr;
  attr.ino = node.ino;
  attr.mode = inode.mode;
  attr.nlink = inode.links_count;
  attr.uid = inode.uid;
  attr.gid = inode.gid;
  attr.size = inode.size;
  attr.blocks = inode.blocks;
  attr.generation = inode.generation;
  attr.block_size = sb_.block_size();
  attr.atime = ToTimestamp(inode.atime);
  attr.mtime = ToTimestamp(inode.mtime);
  attr.ctime = ToTimestamp(inode.ctime);
  attr.crtime = ToTimestamp(inode.crtime);
  if (S_ISCHR(inode.mode) || S_ISBLK(inode.mode)) {
    format::Bytes block(inode.block.data(), inode.block.size());
    uint32_t old_dev = format::Le32(block, 0);
    if (old_dev != 0) {
      attr.rdev_major = (old_dev >> 8) & 0xFF;
      attr.rdev_minor = old_dev & 0xFF;
    } else {
      uint32_t dev = format::Le32(block, 4);
      attr.rdev_major = (dev & 0xFFF00) >> 8;
      attr.rdev_minor = (dev & 0xFF) | ((dev >> 12) & 0xFFF00);
    }
  }
  return attr;
}

DirectoryContext FilesystemImpl::DirContext(const InCoreInode& node) const {
  DirectoryContext ctx;
  ctx.ino = node.ino;
  ctx.block_size = sb_.block_size();
  ctx.metadata_csum = sb_.metadata_csum();
  ctx.inode_checksum_seed = node.checksum_seed;
  ctx.htree = (node.inode.flags & format::kInodeFlagIndex) &&
              sb_.has_compat(format::kCompatDirIndex);
  ctx.large_dir = sb_.has_incompat(format::kIncompatLargeDir);
  for (int i = 0; i < 4; ++i) ctx.hash_seed[i] = sb_.hash_seed[i];
  ctx.default_hash_version = sb_.def_hash_version;
  ctx.hash_unsigned = sb_.hash_unsigned();
  ctx.filetype = sb_.has_incompat(format::kIncompatFiletype);
  return ctx;
}

absl::StatusOr<InodeNumber> FilesystemImpl::Lookup(InodeNumber dir,
                                                   std::string_view name) {
  absl::ReaderMutexLock lock(&mu_);
  E4_ASSIGN_OR_RETURN(InodeHandle handle, GetInode(dir));
  return LookupLocked(*handle, name);
}

absl::StatusOr<InodeNumber> FilesystemImpl::LookupLocked(
    const InCoreInode& node, std::string_view name) {
  const InodeNumber dir = node.ino;
  if (name.size() > 255) return ErrnoError(ENAMETOOLONG, "name too long");
  if (!S_ISDIR(node.inode.mode)) return ErrnoError(ENOTDIR, "not a directory");
  DirectoryContext ctx = DirContext(node);
  absl::StatusOr<uint32_t> found;
  if (node.inode.flags & format::kInodeFlagInlineData) {
    E4_ASSIGN_OR_RETURN(std::string extra, SystemDataXattr(node));
    found = LookupInInlineDirectory(
        ctx, format::Bytes(node.inode.block.data(), node.inode.block.size()),
        format::Bytes(reinterpret_cast<const uint8_t*>(extra.data()),
                      extra.size()),
        name);
  } else {
    MappedDirectory source(MakeFileMap(node.inode, blocks_, sb_.metadata_csum(),
                                       node.checksum_seed),
                           blocks_, node.inode.size);
    found = LookupInDirectory(ctx, source, name);
  }
  if (!found.ok()) return Report(found.status(), dir);
  if (*found == 0 || *found > sb_.inodes_count) {
    return Report(Corrupt(absl::StrCat("entry \"", std::string(name),
                                       "\" points to invalid inode ", *found)),
                  dir);
  }
  return *found;
}

absl::Status FilesystemImpl::ReadDir(
    InodeNumber dir, uint64_t cookie,
    const std::function<bool(const DirEntry&)>& emit) {
  // Entries are gathered under the lock in batches and handed to `emit`
  // outside it, so a caller may call back into the engine from `emit`.
  constexpr size_t kBatch = 256;
  while (true) {
    std::vector<DirEntry> batch;
    {
      absl::ReaderMutexLock lock(&mu_);
      E4_ASSIGN_OR_RETURN(InodeHandle handle, GetInode(dir));
      const InCoreInode& node = *handle;
      if (!S_ISDIR(node.inode.mode)) {
        return ErrnoError(ENOTDIR, "not a directory");
      }
      DirectoryContext ctx = DirContext(node);
      auto collect = [&](const DirEntry& entry) {
        batch.push_back(entry);
        return batch.size() < kBatch;
      };
      absl::Status status;
      if (node.inode.flags & format::kInodeFlagInlineData) {
        E4_ASSIGN_OR_RETURN(std::string extra, SystemDataXattr(node));
        status = ListInlineDirectory(
            ctx,
            format::Bytes(node.inode.block.data(), node.inode.block.size()),
            format::Bytes(reinterpret_cast<const uint8_t*>(extra.data()),
                          extra.size()),
            cookie, collect);
      } else {
        MappedDirectory source(
            MakeFileMap(node.inode, blocks_, sb_.metadata_csum(),
                        node.checksum_seed),
            blocks_, node.inode.size);
        status = ListDirectory(ctx, source, cookie, collect);
      }
      if (!status.ok() && batch.empty()) return Report(status, dir);
    }
    for (const DirEntry& entry : batch) {
      if (!emit(entry)) return absl::OkStatus();
    }
    if (batch.size() < kBatch) return absl::OkStatus();
    cookie = batch.back().next_cookie;
  }
}

absl::StatusOr<std::string> FilesystemImpl::InlineData(
    const InCoreInode& node) {
  std::string data(reinterpret_cast<const char*>(node.inode.block.data()),
                   node.inode.block.size());
  E4_ASSIGN_OR_RETURN(std::string extra, SystemDataXattr(node));
  data += extra;
  return data;
}

absl::StatusOr<size_t> FilesystemImpl::ReadData(const InCoreInode& node,
                                                uint64_t offset,
                                                std::span<uint8_t> out) {
  const uint64_t size = node.inode.size;
  if (offset >= size || out.empty()) return 0;
  const size_t total =
      static_cast<size_t>(std::min<uint64_t>(out.size(), size - offset));
  if (node.inode.flags & format::kInodeFlagInlineData) {
    E4_ASSIGN_OR_RETURN(std::string data, InlineData(node));
    size_t available =
        offset < data.size() ? data.size() - static_cast<size_t>(offset) : 0;
    size_t copied = std::min(total, available);
    if (copied) std::memcpy(out.data(), data.data() + offset, copied);
    // A size beyond the inline bytes reads as zeros, as a hole would.
    std::memset(out.data() + copied, 0, total - copied);
    return total;
  }
  const uint32_t block_size = sb_.block_size();
  std::unique_ptr<FileMap> map =
      MakeFileMap(node.inode, blocks_, sb_.metadata_csum(), node.checksum_seed);
  size_t done = 0;
  while (done < total) {
    uint64_t position = offset + done;
    uint64_t logical = position / block_size;
    uint32_t within = static_cast<uint32_t>(position % block_size);
    E4_ASSIGN_OR_RETURN(BlockMapping mapping, map->Map(logical));
    uint64_t run = mapping.length * block_size - within;
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(run, total - done));
    std::span<uint8_t> piece = out.subspan(done, chunk);
    if (mapping.physical == 0 || mapping.unwritten) {
      std::memset(piece.data(), 0, piece.size());
    } else {
      E4_RETURN_IF_ERROR(
          device_->ReadAt(mapping.physical * block_size + within, piece));
    }
    done += chunk;
  }
  return total;
}

absl::StatusOr<size_t> FilesystemImpl::Read(InodeNumber ino, uint64_t offset,
                                            std::span<uint8_t> out) {
  absl::ReaderMutexLock lock(&mu_);
  E4_ASSIGN_OR_RETURN(InodeHandle handle, GetInode(ino));
  if (S_ISDIR(handle->inode.mode)) return ErrnoError(EISDIR, "is a directory");
  // A symlink's or device's i_block holds no block map (a fast symlink's
  // target would read as block numbers).
  if (!S_ISREG(handle->inode.mode)) {
    return ErrnoError(EINVAL, "not a regular file");
  }
  auto read = ReadData(*handle, offset, out);
  if (!read.ok()) return Report(read.status(), ino);
  return read;
}

absl::Status FilesystemImpl::ReadInPlace(
    InodeNumber ino, uint64_t offset, size_t size,
    absl::FunctionRef<absl::Status(std::span<const ReadPiece>)> consume) {
  uint64_t base = 0;
  const int fd = device_->DescriptorFor(&base);
  if (fd < 0) return ErrnoError(EOPNOTSUPP, "the device has no descriptor");
  absl::ReaderMutexLock lock(&mu_);
  E4_ASSIGN_OR_RETURN(InodeHandle handle, GetInode(ino));
  const format::Inode& inode = handle->inode;
  if (S_ISDIR(inode.mode)) return ErrnoError(EISDIR, "is a directory");
  if (!S_ISREG(inode.mode)) return ErrnoError(EINVAL, "not a regular file");
  if (inode.flags & format::kInodeFlagInlineData) {
    return ErrnoError(EOPNOTSUPP, "inline data");
  }
  thread_local std::vector<ReadPiece> pieces;
  pieces.clear();
  if (offset < inode.size && size > 0) {
    const size_t total =
        static_cast<size_t>(std::min<uint64_t>(size, inode.size - offset));
    const uint32_t block_size = sb_.block_size();
    const uint64_t device_size = device_->Size();
    std::unique_ptr<FileMap> map =
        MakeFileMap(inode, blocks_, sb_.metadata_csum(), handle->checksum_seed);
    size_t done = 0;
    while (done < total) {
      const uint64_t position = offset + done;
      const uint32_t within = static_cast<uint32_t>(position % block_size);
      auto mapping = map->Map(position / block_size);
      if (!mapping.ok()) return Report(mapping.status(), ino);
      const uint64_t run = mapping->length * block_size - within;
      const size_t chunk =
          static_cast<size_t>(std::min<uint64_t>(run, total - done));
      ReadPiece piece{.length = chunk};
      if (mapping->physical != 0 && !mapping->unwritten) {
        const uint64_t at = mapping->physical * block_size + within;
        // A map pointing past the image is corrupt (a splice would come
        // back short).
        if (mapping->physical > device_size / block_size || at > device_size ||
            chunk > device_size - at) {
          return Report(Corrupt(absl::StrCat("data block ", mapping->physical,
                                             " past the end of the image")),
                        ino);
        }
        piece.fd = fd;
        piece.offset = base + at;
      }
      if (!pieces.empty() && pieces.back().fd == piece.fd &&
          (piece.fd < 0 ||
           pieces.back().offset + pieces.back().length == piece.offset)) {
        pieces.back().length += chunk;  // contiguous: one piece
      } else {
        pieces.push_back(piece);
      }
      done += chunk;
    }
  }
  return consume(pieces);
}

absl::StatusOr<std::string> FilesystemImpl::ReadLink(InodeNumber ino) {
  absl::ReaderMutexLock lock(&mu_);
  E4_ASSIGN_OR_RETURN(InodeHandle handle, GetInode(ino));
  const format::Inode& inode = handle->inode;
  if (!S_ISLNK(inode.mode)) return ErrnoError(EINVAL, "not a symlink");
  if (inode.size == 0 || inode.size > kMaxSymlinkLength) {
    return Report(Corrupt(absl::StrCat("symlink of length ", inode.size)), ino);
  }
  uint64_t xattr_blocks = inode.file_acl ? sb_.cluster_size() / 512 : 0;
  bool fast = !(inode.flags & format::kInodeFlagInlineData) &&
              !(inode.flags & format::kInodeFlagEaInode) &&
              inode.blocks <= xattr_blocks;
  if (fast) {
    if (inode.size >= inode.block.size()) {
      return Report(Corrupt("fast symlink longer than its inode"), ino);
    }
    return std::string(reinterpret_cast<const char*>(inode.block.data()),
                       static_cast<size_t>(inode.size));
  }
  std::string target(static_cast<size_t>(inode.size), '\0');
  auto read =
      ReadData(*handle, 0,
               std::span<uint8_t>(reinterpret_cast<uint8_t*>(target.data()),
                                  target.size()));
  if (!read.ok()) return Report(read.status(), ino);
  return target;
}

absl::StatusOr<uint64_t> FilesystemImpl::Overhead() {
  // Computed once, on first use: mounting stays cheap on huge images.
  absl::MutexLock lock(&overhead_mu_);
  if (overhead_) return *overhead_;
  uint64_t journal_blocks = 0;
  if (sb_.has_compat(format::kCompatHasJournal) && sb_.journal_inum != 0 &&
      !sb_.has_incompat(format::kIncompatJournalDev)) {
    E4_ASSIGN_OR_RETURN(InodeHandle journal, GetInode(sb_.journal_inum));
    journal_blocks = journal->inode.size / sb_.block_size();
  }
  E4_ASSIGN_OR_RETURN(
      uint64_t overhead,
      OverheadBlocks(
          sb_, [this](uint32_t group) { return GetGroup(group); },
          journal_blocks));
  overhead_ = overhead;
  return overhead;
}

absl::StatusOr<FsStats> FilesystemImpl::StatFs() {
  if (!read_only_ && allocator_ != nullptr && !allocator_->loaded()) {
    // The free counts are the groups' sums, computed once by the allocator
    // (which rewrites them in sb_: exclusively).
    absl::MutexLock lock(&mu_);
    Transaction tx(blocks_);
    if (absl::Status s = allocator_->LoadIfNeeded(tx); !s.ok()) {
      return Report(s, 0);
    }
  }
  absl::ReaderMutexLock lock(&mu_);
  FsStats stats;
  stats.block_size = sb_.block_size();
  E4_ASSIGN_OR_RETURN(uint64_t overhead, Overhead());
  // On a read-write mount the allocator keeps the free counts exact; a
  // read-only mount reports what the superblock recorded.
  StatfsCounts counts = KernelStatfs(
      sb_, overhead, std::min(sb_.free_blocks_count, sb_.blocks_count),
      std::min<uint64_t>(sb_.free_inodes_count, sb_.inodes_count));
  stats.blocks = counts.blocks;
  stats.free_blocks = counts.bfree;
  stats.available_blocks = counts.bavail;
  stats.inodes = counts.files;
  stats.free_inodes = counts.ffree;
  stats.name_max = 255;
  uint64_t u0 = format::Le64(format::Bytes(sb_.uuid, 16), 0);
  uint64_t u1 = format::Le64(format::Bytes(sb_.uuid, 16), 8);
  stats.fsid = u0 ^ u1;
  return stats;
}

absl::Status FilesystemImpl::Pin(InodeNumber ino, uint64_t count) {
  // The inode must load; it then stays in core only as the cache's limit
  // allows. Keeping every inode the kernel knows in core would grow the
  // server by a kilobyte per file while a million-file tree is walked; a
  // lookup count (lookups_) is all that unlinking needs to know.
  // Shared, like every reader: a write operation in progress must neither
  // see this inode join its undo list nor have it loaded under its feet.
  absl::ReaderMutexLock lock(&mu_);
  E4_ASSIGN_OR_RETURN(InodeHandle handle, GetInode(ino));
  absl::MutexLock counts(&lookups_mu_);
  lookups_[ino] += count;
  return absl::OkStatus();
}

void FilesystemImpl::DropCaches() {
  inodes_.Clear();
  blocks_.Clear();
}

}  // namespace ext4
