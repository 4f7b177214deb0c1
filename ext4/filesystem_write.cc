// The namespace operations of a read-write mount: creating, linking,
// unlinking, renaming and freeing inodes, with the orphan list for inodes
// that are unlinked while open. Every operation runs under the exclusive
// lock as one transaction.
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "ext4/directory_writer.h"
#include "ext4/extent_tree.h"
#include "ext4/file_blocks.h"
#include "ext4/filesystem_impl.h"
#include "ext4/format/checksum.h"
#include "ext4/xattr_writer.h"

namespace ext4 {
namespace {

// The most links an inode may have (EXT4_LINK_MAX).
constexpr uint32_t kLinkMax = 65000;
constexpr uint32_t kMaxNameLength = 255;

format::InodeTime ToInodeTime(const Timestamp& t) {
  return format::InodeTime{t.sec, t.nsec};
}

// A directory's blocks as the directory writer sees them: its block map.
class MappedDirectoryTarget final : public DirectoryWriteTarget {
 public:
  MappedDirectoryTarget(InCoreInode& node, FileBlocks& tree,
                        uint32_t block_size, uint64_t goal, bool can_index)
      : node_(node),
        tree_(tree),
        block_size_(block_size),
        goal_(goal),
        can_index_(can_index) {}

  uint32_t BlockCount() const override {
    return static_cast<uint32_t>(node_.inode.size / block_size_);
  }

  absl::StatusOr<uint64_t> PhysicalBlock(Transaction& tx,
                                         uint32_t logical) override {
    E4_ASSIGN_OR_RETURN(BlockMapping mapping, tree_.Map(tx, logical));
    if (mapping.physical == 0 || mapping.unwritten) {
      return Corrupt(
          absl::StrCat("hole at block ", logical, " of directory ", node_.ino));
    }
    return mapping.physical;
  }

  absl::StatusOr<uint64_t> AppendBlock(Transaction& tx) override {
    uint32_t logical = BlockCount();
    E4_ASSIGN_OR_RETURN(BlockMapping mapping,
                        tree_.MapForWrite(tx, logical, 1, goal_, false));
    node_.inode.size += block_size_;
    return mapping.physical;
  }

  bool CanIndex() const override { return can_index_; }

  void SetIndexed(bool indexed) override {
    if (indexed) {
      node_.inode.flags |= format::kInodeFlagIndex;
    } else {
      node_.inode.flags &= ~format::kInodeFlagIndex;
    }
  }

 private:
  InCoreInode& node_;
  FileBlocks& tree_;
  const uint32_t block_size_;
  const uint64_t goal_;
  const bool can_index_;
};

bool InGroup(const Credentials& who, uint32_t gid) {
  if (who.gid == gid) return true;
  for (uint32_t g : who.groups) {
    if (g == gid) return true;
  }
  return false;
}

}  // namespace

Timestamp FilesystemImpl::Now() const {
  // The clock the kernel stamps inodes with (current_time(): the coarse
  // real-time clock, advanced once per tick). The kernel keeps the times of
  // files it caches for writing and compares them with that clock at each
  // write: a file this engine created in the same tick then needs no time
  // update, and closing it costs no setattr round trip.
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return Timestamp{ts.tv_sec, static_cast<uint32_t>(ts.tv_nsec)};
}

uint64_t FilesystemImpl::GoalFor(const InCoreInode& node) const {
  return allocator_->GoalForInode(node.ino);
}

absl::Status FilesystemImpl::StartWriting() {
  E4_ASSIGN_OR_RETURN(allocator_, BitmapAllocator::Create(sb_, blocks_));
  // The allocator reads every group descriptor (2,048 blocks on a 16 TiB
  // filesystem) when the first allocation or statfs needs it, not here.
  Transaction tx(blocks_);
  if (sb_.has_compat(format::kCompatHasJournal)) {
    E4_RETURN_IF_ERROR(StartJournal());
  } else {
    // No journal: allocations reach the disk, behind a barrier, before
    // what points at them; a crash leaves at worst leaked blocks or inodes.
    blocks_.set_ordered_writes(true);
  }
  sb_.state &= ~format::kStateValid;
  sb_.mnt_count++;
  sb_.mtime = Now().sec;
  E4_RETURN_IF_ERROR(Finish(tx));
  E4_RETURN_IF_ERROR(RecoverOrphans());
  // The mount itself (the recovery flag, the mount count, orphans
  // finished) is on disk before the first request.
  return CommitJournal(/*release_freed=*/true);
}

FilesystemImpl::WriteScope::WriteScope(FilesystemImpl& fs)
    : fs_(fs),
      saved_(fs.sb_),
      free_blocks_(fs.allocator_ ? fs.allocator_->free_blocks() : 0),
      free_inodes_(fs.allocator_ ? fs.allocator_->free_inodes() : 0) {
  fs_.in_write_ = true;
  fs_.committed_ = false;
  fs_.touched_.clear();
  fs_.created_.clear();
}

FilesystemImpl::WriteScope::~WriteScope() {
  if (!fs_.committed_) {
    // The allocator's counters only move when it was used.
    bool allocated =
        fs_.allocator_ && (fs_.allocator_->free_blocks() != free_blocks_ ||
                           fs_.allocator_->free_inodes() != free_inodes_);
    fs_.sb_ = saved_;
    fs_.Rollback(allocated);
  }
  fs_.in_write_ = false;
  fs_.touched_.clear();
  fs_.created_.clear();
}

void FilesystemImpl::Rollback(bool reload_allocator) {
  in_write_ = false;
  for (InodeNumber ino : created_) inodes_.Erase(ino);
  for (InodeHandle& handle : touched_) {
    auto fresh = LoadInode(handle->ino);
    if (fresh.ok()) *handle = std::move(**fresh);
  }
  touched_.clear();
  for (InodeNumber ino : created_) inodes_.Erase(ino);
  created_.clear();
  if (reload_allocator) {
    Transaction tx(blocks_);
    absl::Status status = allocator_->Load(tx);
    if (!status.ok()) {
      std::fprintf(stderr, "e4fs: reloading allocation state: %s\n",
                   std::string(status.message()).c_str());
    }
  }
}

absl::StatusOr<std::pair<uint64_t, uint32_t>> FilesystemImpl::InodeLocation(
    InodeNumber ino) {
  if (ino == 0 || ino > sb_.inodes_count) {
    return Corrupt(absl::StrCat("inode number ", ino, " is out of range"));
  }
  uint32_t group = (ino - 1) / sb_.inodes_per_group;
  uint32_t index = (ino - 1) % sb_.inodes_per_group;
  E4_ASSIGN_OR_RETURN(format::GroupDescriptor gd, GetGroup(group));
  uint64_t byte = uint64_t{index} * sb_.inode_size();
  return std::make_pair(gd.inode_table + byte / sb_.block_size(),
                        static_cast<uint32_t>(byte % sb_.block_size()));
}

absl::Status FilesystemImpl::WriteInode(Transaction& tx, InCoreInode& node) {
  // Times outside what the inode can store are clamped, as the kernel does:
  // 32-bit seconds without the extra fields, 34 bits with them.
  const bool wide = node.inode.extra_isize >= 4 * 4;
  const int64_t lowest = INT32_MIN;
  const int64_t highest = wide ? (int64_t{1} << 34) + INT32_MIN - 1 : INT32_MAX;
  for (format::InodeTime* t : {&node.inode.atime, &node.inode.mtime,
                               &node.inode.ctime, &node.inode.crtime}) {
    if (t->sec < lowest || t->sec > highest) {
      t->sec = std::clamp(t->sec, lowest, highest);
      t->nsec = 0;
    }
    if (!wide) t->nsec = 0;
  }
  // A file past 2 GiB needs large_file, as the kernel sets it when it
  // writes such an inode (the superblock goes out with this transaction).
  if (node.inode.size > 0x7FFFFFFFu &&
      !sb_.has_ro_compat(format::kRoCompatLargeFile)) {
    sb_.feature_ro_compat |= format::kRoCompatLargeFile;
  }
  E4_ASSIGN_OR_RETURN(auto location, InodeLocation(node.ino));
  E4_ASSIGN_OR_RETURN(format::MutableBytes block, tx.Modify(location.first));
  format::MutableBytes slot = block.subspan(location.second, sb_.inode_size());
  if (node.raw.size() == slot.size()) {
    std::memcpy(slot.data(), node.raw.data(), slot.size());
  }
  format::SerializeInode(node.inode, node.ino, sb_, slot);
  node.raw.assign(slot.begin(), slot.end());
  return absl::OkStatus();
}

absl::Status FilesystemImpl::Finish(Transaction& tx) {
  FoldErrors();
  E4_RETURN_IF_ERROR(allocator_->WriteSuperblock(tx));
  absl::Status status = tx.Commit();
  if (status.ok()) committed_ = true;
  if (!status.ok()) {
    std::fprintf(stderr, "e4fs: commit failed: %s\n",
                 std::string(status.message()).c_str());
    return status;
  }
  // The operation is done whatever the journal says; a failed journal
  // commit is reported by the next fsync or unmount.
  absl::Status journaled = AfterCommit();
  (void)journaled;
  return absl::OkStatus();
}

absl::Status FilesystemImpl::CheckNewName(std::string_view name) const {
  if (CannotWrite()) return ErrnoError(EROFS, "read-only filesystem");
  if (name.empty()) return ErrnoError(ENOENT, "empty name");
  if (name.size() > kMaxNameLength) {
    return ErrnoError(ENAMETOOLONG, "name too long");
  }
  if (name == "." || name == "..") return ErrnoError(EEXIST, "name exists");
  if (name.find('/') != std::string_view::npos ||
      name.find('\0') != std::string_view::npos) {
    return ErrnoError(EINVAL, "invalid name");
  }
  return absl::OkStatus();
}

absl::StatusOr<FilesystemImpl::InodeHandle> FilesystemImpl::WritableDirectory(
    InodeNumber dir) {
  if (CannotWrite()) return ErrnoError(EROFS, "read-only filesystem");
  E4_ASSIGN_OR_RETURN(InodeHandle handle, GetInode(dir));
  if (!S_ISDIR(handle->inode.mode)) {
    return ErrnoError(ENOTDIR, "not a directory");
  }
  if (handle->inode.links_count == 0) {
    return ErrnoError(ENOENT, "directory was removed");
  }
  return handle;
}

absl::StatusOr<FilesystemImpl::InodeHandle> FilesystemImpl::NewInode(
    Transaction& tx, InCoreInode& dir, uint32_t mode, const Credentials& who) {
  const bool directory = S_ISDIR(mode);
  std::string default_acl;
  if (!S_ISLNK(mode)) {
    E4_ASSIGN_OR_RETURN(default_acl, DefaultAcl(dir));
  }
  // The umask applies only where no default ACL decides the permissions
  // (with POSIX ACLs on, the kernel leaves both to the filesystem).
  if (default_acl.empty() && !S_ISLNK(mode)) mode &= ~(who.umask & 0777);
  E4_ASSIGN_OR_RETURN(uint32_t ino,
                      allocator_->AllocateInode(tx, dir.ino, directory));
  auto node = std::make_unique<InCoreInode>();
  node->ino = ino;
  node->raw.assign(sb_.inode_size(), 0);
  format::Inode& inode = node->inode;
  inode.uid = who.uid;
  inode.gid = who.gid;
  if (dir.inode.mode & S_ISGID) {
    // A setgid directory hands its group down, and its setgid bit to
    // subdirectories.
    inode.gid = dir.inode.gid;
    if (directory) mode |= S_ISGID;
  } else if ((mode & S_ISGID) && !directory && who.uid != 0 &&
             !InGroup(who, inode.gid)) {
    mode &= ~S_ISGID;
  }
  inode.mode = static_cast<uint16_t>(mode);
  inode.links_count = directory ? 2 : 1;
  Timestamp now = Now();
  inode.atime = inode.mtime = inode.ctime = inode.crtime = ToInodeTime(now);
  if (sb_.inode_size() > 128) {
    uint32_t extra = sb_.want_extra_isize ? sb_.want_extra_isize : 32;
    inode.extra_isize = static_cast<uint16_t>(
        std::min<uint32_t>(extra, sb_.inode_size() - 128));
  }
  static std::mt19937 generations{std::random_device{}()};
  inode.generation = generations();
  node->checksum_seed =
      format::InodeChecksumSeed(sb_.checksum_seed(), ino, inode.generation);
  if ((directory || S_ISREG(mode)) &&
      sb_.has_incompat(format::kIncompatExtents)) {
    ExtentTree::InitEmpty(inode);
  }
  E4_RETURN_IF_ERROR(InheritAcls(tx, default_acl, *node));
  E4_RETURN_IF_ERROR(WriteInode(tx, *node));
  // An inode number can come back while the kernel still remembers its
  // previous life: refresh the cached entry instead of serving stale data.
  InCoreInode* fresh = node.get();
  InCoreInode copy = *fresh;
  E4_ASSIGN_OR_RETURN(InodeHandle handle,
                      inodes_.GetOrLoad(ino, [&] { return std::move(node); }));
  if (&*handle != fresh) *handle = std::move(copy);
  created_.push_back(ino);
  return handle;
}

std::unique_ptr<FileBlocks> FilesystemImpl::BlocksOf(InCoreInode& node) {
  std::unique_ptr<FileBlocks> blocks =
      FileBlocks::For(node.inode, sb_.block_size(), sb_.metadata_csum(),
                      node.checksum_seed, *allocator_);
  blocks->set_owner(node.ino);
  return blocks;
}

bool FilesystemImpl::HasBlockMap(const InCoreInode& node) const {
  const format::Inode& inode = node.inode;
  if (inode.flags & format::kInodeFlagInlineData) return false;
  if (inode.flags & format::kInodeFlagExtents) return true;
  if (S_ISREG(inode.mode) || S_ISDIR(inode.mode)) return true;
  if (!S_ISLNK(inode.mode)) return false;  // device numbers, or nothing
  // A fast symlink keeps its target in i_block: only a symlink with data
  // blocks (beyond an xattr block) has a map.
  const uint64_t xattr_sectors =
      inode.file_acl != 0 ? sb_.block_size() / 512 : 0;
  return inode.blocks > xattr_sectors;
}

absl::Status FilesystemImpl::EditDirectory(
    Transaction& tx, InCoreInode& dir,
    absl::FunctionRef<absl::Status(DirectoryWriteTarget&, DirectoryContext&)>
        body) {
  // Inline directories move into a block before any change.
  if (dir.inode.flags & format::kInodeFlagInlineData) {
    E4_RETURN_IF_ERROR(ConvertInlineData(tx, dir));
  }
  std::unique_ptr<FileBlocks> tree = BlocksOf(dir);
  MappedDirectoryTarget target(dir, *tree, sb_.block_size(), GoalFor(dir),
                               sb_.has_compat(format::kCompatDirIndex));
  DirectoryContext ctx = DirContext(dir);
  return body(target, ctx);
}

absl::Status FilesystemImpl::AddLink(Transaction& tx, InCoreInode& dir,
                                     std::string_view name,
                                     InCoreInode& child) {
  E4_RETURN_IF_ERROR(EditDirectory(
      tx, dir, [&](DirectoryWriteTarget& target, DirectoryContext& ctx) {
        return AddEntry(tx, ctx, target, name, child.ino, child.inode.mode);
      }));
  dir.inode.mtime = dir.inode.ctime = ToInodeTime(Now());
  return WriteInode(tx, dir);
}

absl::Status FilesystemImpl::RemoveLink(Transaction& tx, InCoreInode& dir,
                                        std::string_view name) {
  E4_RETURN_IF_ERROR(EditDirectory(
      tx, dir, [&](DirectoryWriteTarget& target, DirectoryContext& ctx) {
        return RemoveEntry(tx, ctx, target, name);
      }));
  dir.inode.mtime = dir.inode.ctime = ToInodeTime(Now());
  return WriteInode(tx, dir);
}

absl::Status FilesystemImpl::FreeInode(Transaction& tx, InCoreInode& node) {
  const bool directory = S_ISDIR(node.inode.mode);
  if (HasBlockMap(node)) {
    E4_RETURN_IF_ERROR(BlocksOf(node)->Remove(tx, 0, kEndOfFile));
  }
  if (node.inode.file_acl != 0) {
    XattrWriteContext ctx{sb_.block_size(), sb_.metadata_csum(),
                          sb_.checksum_seed(), sb_.inode_size(),
                          sb_.has_incompat(format::kIncompatEaInode)};
    E4_RETURN_IF_ERROR(ReleaseXattrBlock(tx, ctx, node.inode, *allocator_));
  }
  node.inode.links_count = 0;
  node.inode.size = 0;
  node.inode.dtime = static_cast<uint32_t>(Now().sec);
  E4_RETURN_IF_ERROR(WriteInode(tx, node));
  E4_RETURN_IF_ERROR(allocator_->FreeInode(tx, node.ino, directory));
  inodes_.Erase(node.ino);
  return absl::OkStatus();
}

absl::Status FilesystemImpl::AddOrphan(Transaction& tx, InCoreInode& node) {
  node.inode.dtime = sb_.last_orphan;
  sb_.last_orphan = node.ino;
  return WriteInode(tx, node);
}

absl::Status FilesystemImpl::RemoveOrphan(Transaction& tx, InCoreInode& node) {
  const uint32_t next = node.inode.dtime;
  if (sb_.last_orphan == node.ino) {
    sb_.last_orphan = next;
  } else {
    InodeNumber current = sb_.last_orphan;
    for (uint32_t steps = 0; current != 0; ++steps) {
      if (steps > sb_.inodes_count) return Corrupt("orphan list loops");
      E4_ASSIGN_OR_RETURN(InodeHandle prev, GetInode(current));
      if (prev->inode.dtime == node.ino) {
        prev->inode.dtime = next;
        E4_RETURN_IF_ERROR(WriteInode(tx, *prev));
        break;
      }
      current = prev->inode.dtime;
    }
  }
  node.inode.dtime = 0;
  return WriteInode(tx, node);
}

absl::Status FilesystemImpl::DropLink(Transaction& tx, InCoreInode& node) {
  if (node.inode.links_count > 0) node.inode.links_count--;
  node.inode.ctime = ToInodeTime(Now());
  if (node.inode.links_count > 0) return WriteInode(tx, node);
  if (Referenced(node.ino)) {
    kept_orphans_.insert(node.ino);
    return AddOrphan(tx, node);
  }
  return FreeInode(tx, node);
}

bool FilesystemImpl::Referenced(InodeNumber ino) {
  {
    absl::MutexLock lock(&opens_mu_);
    auto open = open_counts_.find(ino);
    if (open != open_counts_.end() && open->second > 0) return true;
  }
  absl::MutexLock lock(&lookups_mu_);
  return lookups_.contains(ino);
}

absl::Status FilesystemImpl::FreeKeptOrphan(InodeNumber ino) {
  WriteScope scope(*this);
  kept_orphans_.erase(ino);
  E4_ASSIGN_OR_RETURN(InodeHandle node, GetInode(ino));
  if (node->inode.links_count != 0) return absl::OkStatus();  // linked again
  // The last user of an unlinked inode went: off the orphan list, and gone.
  Transaction tx(blocks_);
  E4_RETURN_IF_ERROR(RemoveOrphan(tx, *node));
  E4_RETURN_IF_ERROR(FreeInode(tx, *node));
  return Finish(tx);
}

absl::StatusOr<Attributes> FilesystemImpl::MakeNode(
    InodeNumber dir, std::string_view name, uint32_t mode, uint32_t major,
    uint32_t minor, const Credentials& who) {
  absl::MutexLock lock(&mu_);
  WriteScope scope(*this);
  E4_RETURN_IF_ERROR(CheckNewName(name));
  E4_ASSIGN_OR_RETURN(InodeHandle parent, WritableDirectory(dir));
  auto existing = LookupLocked(*parent, name);
  if (existing.ok()) return ErrnoError(EEXIST, "file exists");
  if (ErrnoOf(existing.status()) != ENOENT) return existing.status();
  const uint32_t type = mode & S_IFMT;
  if (type != S_IFREG && type != S_IFIFO && type != S_IFSOCK &&
      type != S_IFCHR && type != S_IFBLK) {
    return ErrnoError(EINVAL, "invalid file type");
  }
  Transaction tx(blocks_);
  E4_ASSIGN_OR_RETURN(InodeHandle child, NewInode(tx, *parent, mode, who));
  if (type == S_IFCHR || type == S_IFBLK) {
    // The kernel's encoding: old 16-bit form in i_block[0] when it fits,
    // else the new 32-bit form in i_block[1].
    format::MutableBytes block(child->inode.block.data(),
                               child->inode.block.size());
    if (major < 256 && minor < 256) {
      format::Put32(block, 0, (major << 8) | minor);
    } else {
      format::Put32(block, 4,
                    (minor & 0xFF) | (major << 8) | ((minor & ~0xFFu) << 12));
    }
    E4_RETURN_IF_ERROR(WriteInode(tx, *child));
  }
  E4_RETURN_IF_ERROR(AddLink(tx, *parent, name, *child));
  E4_RETURN_IF_ERROR(Finish(tx));
  return AttributesOf(*child);
}

absl::StatusOr<Attributes> FilesystemImpl::Create(InodeNumber dir,
                                                  std::string_view name,
                                                  uint32_t mode,
                                                  const Credentials& who) {
  return MakeNode(dir, name, S_IFREG | (mode & 07777), 0, 0, who);
}

absl::StatusOr<Attributes> FilesystemImpl::MakeDirectory(
    InodeNumber dir, std::string_view name, uint32_t mode,
    const Credentials& who) {
  absl::MutexLock lock(&mu_);
  WriteScope scope(*this);
  E4_RETURN_IF_ERROR(CheckNewName(name));
  E4_ASSIGN_OR_RETURN(InodeHandle parent, WritableDirectory(dir));
  auto existing = LookupLocked(*parent, name);
  if (existing.ok()) return ErrnoError(EEXIST, "file exists");
  if (ErrnoOf(existing.status()) != ENOENT) return existing.status();
  format::Inode& up = parent->inode;
  bool overflow = up.links_count != 1 && up.links_count + 1u >= kLinkMax;
  if (overflow && !sb_.has_ro_compat(format::kRoCompatDirNlink)) {
    return ErrnoError(EMLINK, "too many subdirectories");
  }
  Transaction tx(blocks_);
  E4_ASSIGN_OR_RETURN(InodeHandle child,
                      NewInode(tx, *parent, S_IFDIR | (mode & 07777), who));
  E4_RETURN_IF_ERROR(EditDirectory(
      tx, *child,
      [&](DirectoryWriteTarget& target, DirectoryContext& ctx) -> absl::Status {
        E4_ASSIGN_OR_RETURN(uint64_t block, target.AppendBlock(tx));
        E4_ASSIGN_OR_RETURN(format::MutableBytes bytes, tx.ModifyNew(block));
        return InitDirectoryBlock(ctx, bytes, child->ino, parent->ino);
      }));
  E4_RETURN_IF_ERROR(WriteInode(tx, *child));
  // dir_nlink: past the limit a directory's link count stays 1 ("many").
  if (up.links_count != 1) up.links_count = overflow ? 1 : up.links_count + 1;
  E4_RETURN_IF_ERROR(AddLink(tx, *parent, name, *child));
  E4_RETURN_IF_ERROR(Finish(tx));
  return AttributesOf(*child);
}

absl::StatusOr<Attributes> FilesystemImpl::MakeSymlink(InodeNumber dir,
                                                       std::string_view name,
                                                       std::string_view target,
                                                       const Credentials& who) {
  if (target.empty()) return ErrnoError(ENOENT, "empty symlink target");
  if (target.size() >= sb_.block_size() || target.size() >= 4096) {
    return ErrnoError(ENAMETOOLONG, "symlink target too long");
  }
  absl::MutexLock lock(&mu_);
  WriteScope scope(*this);
  E4_RETURN_IF_ERROR(CheckNewName(name));
  E4_ASSIGN_OR_RETURN(InodeHandle parent, WritableDirectory(dir));
  auto existing = LookupLocked(*parent, name);
  if (existing.ok()) return ErrnoError(EEXIST, "file exists");
  if (ErrnoOf(existing.status()) != ENOENT) return existing.status();
  Transaction tx(blocks_);
  E4_ASSIGN_OR_RETURN(InodeHandle child,
                      NewInode(tx, *parent, S_IFLNK | 0777, who));
  format::Inode& inode = child->inode;
  if (target.size() < inode.block.size()) {
    // A fast symlink: the target lives in i_block, no blocks, no extents.
    std::memcpy(inode.block.data(), target.data(), target.size());
    inode.size = target.size();
    E4_RETURN_IF_ERROR(WriteInode(tx, *child));
  } else {
    if (sb_.has_incompat(format::kIncompatExtents)) {
      ExtentTree::InitEmpty(inode);
    }
    E4_RETURN_IF_ERROR(
        WriteLocked(
            tx, *child, 0,
            std::span<const uint8_t>(
                reinterpret_cast<const uint8_t*>(target.data()), target.size()))
            .status());
    // The size and the block map WriteLocked set reach the inode table.
    E4_RETURN_IF_ERROR(WriteInode(tx, *child));
  }
  E4_RETURN_IF_ERROR(AddLink(tx, *parent, name, *child));
  E4_RETURN_IF_ERROR(Finish(tx));
  return AttributesOf(*child);
}

absl::StatusOr<Attributes> FilesystemImpl::CreateUnnamed(
    InodeNumber dir, uint32_t mode, const Credentials& who) {
  absl::MutexLock lock(&mu_);
  WriteScope scope(*this);
  E4_ASSIGN_OR_RETURN(InodeHandle parent, WritableDirectory(dir));
  Transaction tx(blocks_);
  E4_ASSIGN_OR_RETURN(InodeHandle child,
                      NewInode(tx, *parent, S_IFREG | (mode & 07777), who));
  child->inode.links_count = 0;
  kept_orphans_.insert(child->ino);
  E4_RETURN_IF_ERROR(AddOrphan(tx, *child));
  E4_RETURN_IF_ERROR(Finish(tx));
  return AttributesOf(*child);
}

absl::StatusOr<Attributes> FilesystemImpl::Link(InodeNumber ino,
                                                InodeNumber new_dir,
                                                std::string_view new_name) {
  absl::MutexLock lock(&mu_);
  WriteScope scope(*this);
  E4_RETURN_IF_ERROR(CheckNewName(new_name));
  E4_ASSIGN_OR_RETURN(InodeHandle parent, WritableDirectory(new_dir));
  E4_ASSIGN_OR_RETURN(InodeHandle node, GetInode(ino));
  if (S_ISDIR(node->inode.mode)) {
    return ErrnoError(EPERM, "hard links to directories are not allowed");
  }
  if (node->inode.links_count >= kLinkMax) {
    return ErrnoError(EMLINK, "too many links");
  }
  auto existing = LookupLocked(*parent, new_name);
  if (existing.ok()) return ErrnoError(EEXIST, "file exists");
  if (ErrnoOf(existing.status()) != ENOENT) return existing.status();
  Transaction tx(blocks_);
  if (node->inode.links_count == 0) {
    kept_orphans_.erase(ino);
    E4_RETURN_IF_ERROR(RemoveOrphan(tx, *node));
  }
  node->inode.links_count++;
  node->inode.ctime = ToInodeTime(Now());
  E4_RETURN_IF_ERROR(WriteInode(tx, *node));
  E4_RETURN_IF_ERROR(AddLink(tx, *parent, new_name, *node));
  E4_RETURN_IF_ERROR(Finish(tx));
  return AttributesOf(*node);
}

absl::Status FilesystemImpl::Unlink(InodeNumber dir, std::string_view name) {
  absl::MutexLock lock(&mu_);
  WriteScope scope(*this);
  E4_ASSIGN_OR_RETURN(InodeHandle parent, WritableDirectory(dir));
  if (name == "." || name == "..") return ErrnoError(EISDIR, "is a directory");
  E4_ASSIGN_OR_RETURN(InodeNumber ino, LookupLocked(*parent, name));
  E4_ASSIGN_OR_RETURN(InodeHandle node, GetInode(ino));
  if (S_ISDIR(node->inode.mode)) return ErrnoError(EISDIR, "is a directory");
  Transaction tx(blocks_);
  E4_RETURN_IF_ERROR(RemoveLink(tx, *parent, name));
  E4_RETURN_IF_ERROR(DropLink(tx, *node));
  return Finish(tx);
}

absl::Status FilesystemImpl::RemoveDirectory(InodeNumber dir,
                                             std::string_view name) {
  absl::MutexLock lock(&mu_);
  WriteScope scope(*this);
  E4_ASSIGN_OR_RETURN(InodeHandle parent, WritableDirectory(dir));
  if (name == ".") return ErrnoError(EINVAL, "cannot remove \".\"");
  if (name == "..") return ErrnoError(ENOTEMPTY, "cannot remove \"..\"");
  E4_ASSIGN_OR_RETURN(InodeNumber ino, LookupLocked(*parent, name));
  E4_ASSIGN_OR_RETURN(InodeHandle node, GetInode(ino));
  if (!S_ISDIR(node->inode.mode)) return ErrnoError(ENOTDIR, "not a directory");
  Transaction tx(blocks_);
  bool empty = true;
  E4_RETURN_IF_ERROR(EditDirectory(
      tx, *node,
      [&](DirectoryWriteTarget& target, DirectoryContext& ctx) -> absl::Status {
        E4_ASSIGN_OR_RETURN(empty, IsEmpty(tx, ctx, target));
        return absl::OkStatus();
      }));
  if (!empty) return ErrnoError(ENOTEMPTY, "directory not empty");
  E4_RETURN_IF_ERROR(RemoveLink(tx, *parent, name));
  if (parent->inode.links_count > 2) parent->inode.links_count--;
  E4_RETURN_IF_ERROR(WriteInode(tx, *parent));
  node->inode.links_count = 1;  // "." goes with the directory itself
  E4_RETURN_IF_ERROR(DropLink(tx, *node));
  return Finish(tx);
}

absl::StatusOr<bool> FilesystemImpl::IsAncestor(InodeNumber ancestor,
                                                InodeNumber dir) {
  InodeNumber current = dir;
  for (uint32_t steps = 0; steps <= sb_.inodes_count; ++steps) {
    if (current == ancestor) return true;
    if (current == kRootInode) return false;
    E4_ASSIGN_OR_RETURN(InodeHandle node, GetInode(current));
    E4_ASSIGN_OR_RETURN(current, LookupLocked(*node, ".."));
  }
  return Corrupt("directory tree has a loop");
}

absl::Status FilesystemImpl::Rename(InodeNumber old_dir,
                                    std::string_view old_name,
                                    InodeNumber new_dir,
                                    std::string_view new_name, unsigned flags) {
  if (flags & ~(kRenameNoReplace | kRenameExchange)) {
    return ErrnoError(EINVAL, "unknown rename flags");
  }
  if ((flags & kRenameNoReplace) && (flags & kRenameExchange)) {
    return ErrnoError(EINVAL, "conflicting rename flags");
  }
  absl::MutexLock lock(&mu_);
  WriteScope scope(*this);
  E4_RETURN_IF_ERROR(CheckNewName(new_name));
  if (old_name == "." || old_name == "..") {
    return ErrnoError(EBUSY, "cannot rename \".\" or \"..\"");
  }
  E4_ASSIGN_OR_RETURN(InodeHandle from_dir, WritableDirectory(old_dir));
  E4_ASSIGN_OR_RETURN(InodeHandle to_dir, WritableDirectory(new_dir));
  E4_ASSIGN_OR_RETURN(InodeNumber ino, LookupLocked(*from_dir, old_name));
  E4_ASSIGN_OR_RETURN(InodeHandle source, GetInode(ino));
  auto target_ino = LookupLocked(*to_dir, new_name);
  if (!target_ino.ok() && ErrnoOf(target_ino.status()) != ENOENT) {
    return target_ino.status();
  }
  const bool source_is_dir = S_ISDIR(source->inode.mode);
  InodeHandle target;
  if (target_ino.ok()) {
    if (flags & kRenameNoReplace) return ErrnoError(EEXIST, "file exists");
    if (*target_ino == ino) return absl::OkStatus();  // same inode: no-op
    E4_ASSIGN_OR_RETURN(target, GetInode(*target_ino));
  } else if (flags & kRenameExchange) {
    return ErrnoError(ENOENT, "no such file to exchange with");
  }
  const bool target_is_dir = target && S_ISDIR(target->inode.mode);
  // A directory may not move into its own subtree.
  if (source_is_dir && old_dir != new_dir) {
    E4_ASSIGN_OR_RETURN(bool inside, IsAncestor(ino, new_dir));
    if (inside)
      return ErrnoError(EINVAL, "cannot move a directory into itself");
  }
  if ((flags & kRenameExchange) && target_is_dir && old_dir != new_dir) {
    E4_ASSIGN_OR_RETURN(bool inside, IsAncestor(target->ino, old_dir));
    if (inside)
      return ErrnoError(EINVAL, "cannot move a directory into itself");
  }
  Transaction tx(blocks_);
  auto with_target = [&](InCoreInode& dir, auto&& body) -> absl::Status {
    return EditDirectory(tx, dir,
                         [&](DirectoryWriteTarget& d, DirectoryContext& ctx) {
                           return body(d, ctx);
                         });
  };
  const Timestamp now = Now();
  if (flags & kRenameExchange) {
    E4_RETURN_IF_ERROR(with_target(*from_dir, [&](auto& d, const auto& ctx) {
      return ReplaceEntry(tx, ctx, d, old_name, target->ino,
                          target->inode.mode);
    }));
    E4_RETURN_IF_ERROR(with_target(*to_dir, [&](auto& d, const auto& ctx) {
      return ReplaceEntry(tx, ctx, d, new_name, source->ino,
                          source->inode.mode);
    }));
    if (old_dir != new_dir) {
      if (source_is_dir) {
        E4_RETURN_IF_ERROR(with_target(*source, [&](auto& d, const auto& ctx) {
          return SetParent(tx, ctx, d, new_dir);
        }));
      }
      if (target_is_dir) {
        E4_RETURN_IF_ERROR(with_target(*target, [&](auto& d, const auto& ctx) {
          return SetParent(tx, ctx, d, old_dir);
        }));
      }
      if (source_is_dir != target_is_dir) {
        InCoreInode& gains = source_is_dir ? *to_dir : *from_dir;
        InCoreInode& loses = source_is_dir ? *from_dir : *to_dir;
        if (gains.inode.links_count != 1) gains.inode.links_count++;
        if (loses.inode.links_count > 2) loses.inode.links_count--;
      }
    }
    source->inode.ctime = target->inode.ctime = ToInodeTime(now);
    E4_RETURN_IF_ERROR(WriteInode(tx, *source));
    E4_RETURN_IF_ERROR(WriteInode(tx, *target));
  } else {
    if (target) {
      if (source_is_dir && !target_is_dir) {
        return ErrnoError(ENOTDIR, "not a directory");
      }
      if (!source_is_dir && target_is_dir) {
        return ErrnoError(EISDIR, "is a directory");
      }
      if (target_is_dir) {
        bool empty = true;
        E4_RETURN_IF_ERROR(with_target(*target, [&](auto& d, const auto& ctx) {
          E4_ASSIGN_OR_RETURN(empty, IsEmpty(tx, ctx, d));
          return absl::OkStatus();
        }));
        if (!empty) return ErrnoError(ENOTEMPTY, "directory not empty");
      }
      E4_RETURN_IF_ERROR(with_target(*to_dir, [&](auto& d, const auto& ctx) {
        return ReplaceEntry(tx, ctx, d, new_name, source->ino,
                            source->inode.mode);
      }));
      if (target_is_dir) {
        target->inode.links_count = 1;
        if (to_dir->inode.links_count > 2) to_dir->inode.links_count--;
      }
      E4_RETURN_IF_ERROR(DropLink(tx, *target));
    } else {
      if (source_is_dir && old_dir != new_dir &&
          to_dir->inode.links_count != 1 &&
          to_dir->inode.links_count + 1u >= kLinkMax &&
          !sb_.has_ro_compat(format::kRoCompatDirNlink)) {
        return ErrnoError(EMLINK, "too many subdirectories");
      }
      E4_RETURN_IF_ERROR(with_target(*to_dir, [&](auto& d, const auto& ctx) {
        DirectoryContext writable = ctx;
        return AddEntry(tx, writable, d, new_name, source->ino,
                        source->inode.mode);
      }));
    }
    E4_RETURN_IF_ERROR(with_target(*from_dir, [&](auto& d, const auto& ctx) {
      return RemoveEntry(tx, ctx, d, old_name);
    }));
    if (source_is_dir && old_dir != new_dir) {
      E4_RETURN_IF_ERROR(with_target(*source, [&](auto& d, const auto& ctx) {
        return SetParent(tx, ctx, d, new_dir);
      }));
      if (from_dir->inode.links_count > 2) from_dir->inode.links_count--;
      // The new parent gains the source's "..", also when the source
      // replaced a directory (whose ".." it lost above).
      if (to_dir->inode.links_count != 1) {
        to_dir->inode.links_count = to_dir->inode.links_count + 1u >= kLinkMax
                                        ? 1
                                        : to_dir->inode.links_count + 1;
      }
    }
    source->inode.ctime = ToInodeTime(now);
    E4_RETURN_IF_ERROR(WriteInode(tx, *source));
  }
  from_dir->inode.mtime = from_dir->inode.ctime = ToInodeTime(now);
  to_dir->inode.mtime = to_dir->inode.ctime = ToInodeTime(now);
  E4_RETURN_IF_ERROR(WriteInode(tx, *from_dir));
  if (old_dir != new_dir) E4_RETURN_IF_ERROR(WriteInode(tx, *to_dir));
  return Finish(tx);
}

absl::Status FilesystemImpl::OpenFile(InodeNumber ino) {
  absl::MutexLock lock(&opens_mu_);
  open_counts_[ino]++;
  return absl::OkStatus();
}

absl::Status FilesystemImpl::Release(InodeNumber ino) {
  {
    absl::MutexLock lock(&opens_mu_);
    auto it = open_counts_.find(ino);
    if (it == open_counts_.end()) return absl::OkStatus();
    if (--it->second > 0) return absl::OkStatus();
    open_counts_.erase(it);
  }
  // The file's last writer went: blocks kept for its growth go back.
  if (allocator_ != nullptr) allocator_->DropReservations(ino);
  return FreeIfUnreferenced(ino);
}

absl::Status FilesystemImpl::FreeIfUnreferenced(InodeNumber ino) {
  if (read_only_) return absl::OkStatus();
  {
    // Nearly every file released or forgotten is linked: a shared look
    // suffices for them (and the kernel forgets thousands at once when it
    // shrinks its cache).
    absl::ReaderMutexLock shared(&mu_);
    if (!kept_orphans_.contains(ino)) return absl::OkStatus();
  }
  // Checked again: another release or an unlink may have come in between.
  absl::MutexLock lock(&mu_);
  if (!kept_orphans_.contains(ino) || Referenced(ino)) return absl::OkStatus();
  return FreeKeptOrphan(ino);
}

void FilesystemImpl::Unpin(InodeNumber ino, uint64_t count) {
  {
    absl::MutexLock lock(&lookups_mu_);
    auto it = lookups_.find(ino);
    if (it == lookups_.end()) return;
    if (it->second > count) {
      it->second -= count;
      return;
    }
    lookups_.erase(it);
  }
  if (absl::Status s = FreeIfUnreferenced(ino); !s.ok()) (void)Report(s, ino);
}

absl::Status FilesystemImpl::ForgetAll() {
  {
    absl::MutexLock lock(&lookups_mu_);
    lookups_.clear();
  }
  {
    absl::MutexLock lock(&opens_mu_);
    open_counts_.clear();
  }
  absl::MutexLock lock(&mu_);
  if (read_only_) return absl::OkStatus();
  const std::vector<InodeNumber> kept(kept_orphans_.begin(),
                                      kept_orphans_.end());
  for (InodeNumber ino : kept) E4_RETURN_IF_ERROR(FreeKeptOrphan(ino));
  return absl::OkStatus();
}

absl::Status FilesystemImpl::Sync(InodeNumber, bool) {
  if (read_only_) return absl::OkStatus();
  if (journal_ != nullptr) {
    // fsync commits the running transaction (it holds the inode's changes
    // and everything before them), as jbd2 does.
    absl::MutexLock lock(&mu_);
    return CommitJournal(/*release_freed=*/true);
  }
  return device_->Flush();
}

absl::Status FilesystemImpl::SyncAll() {
  absl::MutexLock lock(&mu_);
  WriteScope scope(*this);
  if (read_only_) return absl::OkStatus();
  // Everything is written through at commit; what remains is to mark the
  // filesystem clean and make it durable. The next change marks it in use.
  Transaction tx(blocks_);
  sb_.state |= format::kStateValid;
  sb_.wtime = Now().sec;
  E4_RETURN_IF_ERROR(Finish(tx));
  sb_.state &= ~format::kStateValid;
  if (journal_ != nullptr) {
    // The journal empty first, then the flag off: a crash in between
    // finds the flag and an empty journal, which is harmless.
    E4_RETURN_IF_ERROR(CommitJournal(/*release_freed=*/true));
    return SetRecoverFlagInPlace(false);
  }
  return device_->Flush();
}

}  // namespace ext4
