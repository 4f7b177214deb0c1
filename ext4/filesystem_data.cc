// File contents and attributes on a read-write mount: write, truncate,
// fallocate, lseek's SEEK_DATA/SEEK_HOLE, setattr, xattr changes, and the
// move of inline data out of the inode when it outgrows it.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ext4/directory_writer.h"
#include "ext4/extent_tree.h"
#include "ext4/file_blocks.h"
#include "ext4/filesystem_impl.h"
#include "ext4/xattr_writer.h"

namespace ext4 {
namespace {

format::InodeTime ToInodeTime(const Timestamp& t) {
  return format::InodeTime{t.sec, t.nsec};
}

bool SameTime(const format::InodeTime& stored,
              const std::optional<Timestamp>& given) {
  return !given || (stored.sec == given->sec && stored.nsec == given->nsec);
}

// A setattr that sets times, ctime among them, to what the inode holds
// already. The kernel sends one after every link, rename and unlink of a
// file it caches for writing (it keeps ctime then, and writes its copy
// back at once); the engine has set the same ctime in the same tick.
bool ChangesNothing(const SetAttrRequest& request, const format::Inode& inode) {
  return request.ctime && !request.size && !request.mode && !request.uid &&
         !request.gid && !request.atime_now && !request.mtime_now &&
         SameTime(inode.ctime, request.ctime) &&
         SameTime(inode.mtime, request.mtime) &&
         SameTime(inode.atime, request.atime);
}

}  // namespace

absl::Status FilesystemImpl::ConvertInlineData(Transaction& tx,
                                               InCoreInode& node) {
  E4_ASSIGN_OR_RETURN(std::string data, InlineData(node));
  const bool directory = S_ISDIR(node.inode.mode);
  const uint64_t size = node.inode.size;
  XattrWriteContext xctx{sb_.block_size(), sb_.metadata_csum(),
                         sb_.checksum_seed(), sb_.inode_size(),
                         sb_.has_incompat(format::kIncompatEaInode)};
  // system.data: index 7 ("system."), name "data".
  absl::Status removed = RemoveXattrIndexed(tx, xctx, node.inode, node.raw,
                                            *allocator_, 7, "data");
  if (!removed.ok() && ErrnoOf(removed) != ENODATA) return removed;
  std::array<uint8_t, 60> inline_block = node.inode.block;
  node.inode.flags &= ~format::kInodeFlagInlineData;
  node.inode.block.fill(0);
  ExtentTree::InitEmpty(node.inode);
  if (directory) {
    E4_ASSIGN_OR_RETURN(
        BlockMapping mapping,
        BlocksOf(node)->MapForWrite(tx, 0, 1, GoalFor(node), false));
    E4_ASSIGN_OR_RETURN(format::MutableBytes block,
                        tx.ModifyNew(mapping.physical));
    std::string extra = data.size() > 60 ? data.substr(60) : std::string();
    E4_RETURN_IF_ERROR(ConvertInlineToBlock(
        tx, DirContext(node),
        format::Bytes(inline_block.data(), inline_block.size()),
        format::Bytes(reinterpret_cast<const uint8_t*>(extra.data()),
                      extra.size()),
        block, node.ino));
    node.inode.size = sb_.block_size();
    return WriteInode(tx, node);
  }
  node.inode.size = 0;
  E4_RETURN_IF_ERROR(WriteInode(tx, node));
  data.resize(static_cast<size_t>(std::min<uint64_t>(size, data.size())));
  if (!data.empty()) {
    E4_RETURN_IF_ERROR(
        WriteLocked(
            tx, node, 0,
            std::span<const uint8_t>(
                reinterpret_cast<const uint8_t*>(data.data()), data.size()))
            .status());
  }
  node.inode.size = size;
  return WriteInode(tx, node);
}

absl::StatusOr<size_t> FilesystemImpl::WriteLocked(
    Transaction& tx, InCoreInode& node, uint64_t offset,
    std::span<const uint8_t> data) {
  if (node.inode.flags & format::kInodeFlagInlineData) {
    E4_RETURN_IF_ERROR(ConvertInlineData(tx, node));
  }
  const uint32_t bs = sb_.block_size();
  std::unique_ptr<FileBlocks> tree = BlocksOf(node);
  // A write that reaches past the largest size is cut short there, as the
  // kernel does; one that starts there fails.
  const uint64_t limit = MaxFileBytes(node, *tree);
  if (offset >= limit) return ErrnoError(EFBIG, "file too large");
  if (data.size() > limit - offset) {
    data = data.first(static_cast<size_t>(limit - offset));
  }
  const uint64_t end = offset + data.size();
  uint64_t position = offset;
  std::vector<uint8_t> scratch;
  // Blocks below this were mapped by this call's MapForWrite but hold
  // whatever their last owner left: an indirect map allocates every block
  // asked for, while only the first physically contiguous run comes back.
  uint64_t fresh_end = 0;
  while (position < end) {
    const uint64_t logical = position / bs;
    const uint32_t within = static_cast<uint32_t>(position % bs);
    const uint64_t blocks_left = (end - logical * bs + bs - 1) / bs;
    E4_ASSIGN_OR_RETURN(BlockMapping mapping, tree->Map(tx, logical));
    const bool allocated_here = logical < fresh_end;
    if (mapping.physical != 0 && !mapping.unwritten && !allocated_here) {
      // Written blocks take the bytes in place.
      uint64_t run =
          std::min<uint64_t>(mapping.length * bs - within, end - position);
      E4_RETURN_IF_ERROR(device_->WriteAt(
          mapping.physical * bs + within,
          data.subspan(position - offset, static_cast<size_t>(run))));
      position += run;
      continue;
    }
    // A hole or unwritten run: map it written and write whole blocks, zeros
    // around the new bytes (nothing else may show through).
    const bool was_unwritten = mapping.unwritten;
    BlockMapping fresh = mapping;
    uint64_t count = 0;
    if (allocated_here && mapping.physical != 0 && !mapping.unwritten) {
      count = std::min<uint64_t>(mapping.length, fresh_end - logical);
    } else {
      uint64_t want = std::min<uint64_t>(blocks_left, mapping.length);
      want = std::min<uint64_t>(want, 8192);
      E4_ASSIGN_OR_RETURN(
          fresh,
          tree->MapForWrite(tx, logical, want, GoalFor(node), was_unwritten));
      count = std::min<uint64_t>(fresh.length, want);
      fresh_end = logical + want;
    }
    uint64_t run = std::min<uint64_t>(count * bs - within, end - position);
    uint64_t covered_blocks = (within + run + bs - 1) / bs;
    // Whole blocks go to the device straight from the caller's bytes; only
    // a partial first or last block is staged in a zero-filled block.
    const uint8_t* source = data.data() + (position - offset);
    uint64_t done = 0;
    uint64_t block = fresh.physical;
    if (within != 0 || run < bs) {
      const uint64_t part = std::min<uint64_t>(bs - within, run);
      scratch.assign(bs, 0);
      std::memcpy(scratch.data() + within, source, static_cast<size_t>(part));
      E4_RETURN_IF_ERROR(device_->WriteAt(block * bs, scratch));
      done = part;
      ++block;
    }
    const uint64_t whole = (run - done) / bs * bs;
    if (whole > 0) {
      E4_RETURN_IF_ERROR(device_->WriteAt(
          block * bs,
          std::span<const uint8_t>(source + done, static_cast<size_t>(whole))));
      done += whole;
      block += whole / bs;
    }
    if (done < run) {
      scratch.assign(bs, 0);
      std::memcpy(scratch.data(), source + done,
                  static_cast<size_t>(run - done));
      E4_RETURN_IF_ERROR(device_->WriteAt(block * bs, scratch));
    }
    if (fresh.unwritten) {
      E4_RETURN_IF_ERROR(tree->MarkWritten(tx, logical, covered_blocks));
    }
    position += run;
  }
  if (end > node.inode.size) node.inode.size = end;
  return data.size();
}

absl::StatusOr<size_t> FilesystemImpl::Write(InodeNumber ino, uint64_t offset,
                                             std::span<const uint8_t> data,
                                             const Credentials& who) {
  return WriteFile(ino, offset, data, &who);
}

absl::StatusOr<size_t> FilesystemImpl::WriteBack(
    InodeNumber ino, uint64_t offset, std::span<const uint8_t> data) {
  return WriteFile(ino, offset, data, nullptr);
}

absl::StatusOr<size_t> FilesystemImpl::WriteFile(InodeNumber ino,
                                                 uint64_t offset,
                                                 std::span<const uint8_t> data,
                                                 const Credentials* who) {
  absl::MutexLock lock(&mu_);
  WriteScope scope(*this);
  if (CannotWrite()) return ErrnoError(EROFS, "read-only filesystem");
  E4_ASSIGN_OR_RETURN(InodeHandle node, GetInode(ino));
  if (S_ISDIR(node->inode.mode)) return ErrnoError(EISDIR, "is a directory");
  if (!S_ISREG(node->inode.mode)) return ErrnoError(EINVAL, "not a file");
  if (data.empty()) return size_t{0};
  Transaction tx(blocks_);
  E4_ASSIGN_OR_RETURN(size_t written, WriteLocked(tx, *node, offset, data));
  format::Inode& inode = node->inode;
  if (who != nullptr) {
    // Writing kills setuid, and setgid where it means "set group on exec".
    if (who->uid != 0) {
      if (inode.mode & S_ISUID) inode.mode &= ~S_ISUID;
      if ((inode.mode & S_ISGID) && (inode.mode & S_IXGRP)) {
        inode.mode &= ~S_ISGID;
      }
    }
    inode.mtime = inode.ctime = ToInodeTime(Now());
  }
  E4_RETURN_IF_ERROR(WriteInode(tx, *node));
  E4_RETURN_IF_ERROR(Finish(tx));
  return written;
}

uint64_t FilesystemImpl::MaxFileBytes(const InCoreInode& node,
                                      const FileBlocks& blocks) const {
  const uint32_t bits = sb_.block_size_bits();
  uint64_t max_blocks = blocks.max_logical();
  if (!sb_.has_ro_compat(format::kRoCompatHugeFile)) {
    // Without huge_file, i_blocks counts 512-byte sectors in 32 bits: the
    // data and the blocks mapping it must fit, as the kernel computes it.
    uint64_t room = (uint64_t{1} << 32) - 1;
    room >>= bits - 9;
    if (node.inode.flags & format::kInodeFlagExtents) {
      max_blocks = std::min(max_blocks, room);
    } else {
      const uint64_t per_block = uint64_t{1} << (bits - 2);
      const uint64_t direct = 12;
      uint64_t rest = room - direct - per_block;
      uint64_t meta = 1;
      if (rest < per_block * per_block) {
        meta += 1 + (rest + per_block - 1) / per_block;
      } else {
        meta += 1 + per_block;
        rest -= per_block * per_block;
        meta += 1 + (rest + per_block - 1) / per_block +
                (rest + per_block * per_block - 1) / (per_block * per_block);
      }
      if (max_blocks + meta > room)
        max_blocks = std::min(max_blocks, room - meta);
    }
  }
  return max_blocks << bits;
}

absl::Status FilesystemImpl::Truncate(Transaction& tx, InCoreInode& node,
                                      uint64_t size) {
  if (node.inode.flags & format::kInodeFlagInlineData) {
    E4_RETURN_IF_ERROR(ConvertInlineData(tx, node));
  }
  const uint32_t bs = sb_.block_size();
  std::unique_ptr<FileBlocks> tree = BlocksOf(node);
  if (size > MaxFileBytes(node, *tree)) {
    return ErrnoError(EFBIG, "file too large");
  }
  // The bytes past the end inside the last block must read as zeros when the
  // file later grows over them.
  auto zero_tail = [&](uint64_t from) -> absl::Status {
    if (from % bs == 0) return absl::OkStatus();
    E4_ASSIGN_OR_RETURN(BlockMapping mapping, tree->Map(tx, from / bs));
    if (mapping.physical == 0 || mapping.unwritten) return absl::OkStatus();
    std::vector<uint8_t> zeros(bs - from % bs, 0);
    return device_->WriteAt(mapping.physical * bs + from % bs, zeros);
  };
  if (size < node.inode.size) {
    E4_RETURN_IF_ERROR(tree->Remove(tx, (size + bs - 1) / bs, kEndOfFile));
    E4_RETURN_IF_ERROR(zero_tail(size));
  } else if (size > node.inode.size) {
    E4_RETURN_IF_ERROR(zero_tail(node.inode.size));
  }
  node.inode.size = size;
  return absl::OkStatus();
}

absl::StatusOr<Attributes> FilesystemImpl::SetAttr(
    InodeNumber ino, const SetAttrRequest& request, const Credentials& who) {
  absl::MutexLock lock(&mu_);
  WriteScope scope(*this);
  if (CannotWrite()) return ErrnoError(EROFS, "read-only filesystem");
  E4_ASSIGN_OR_RETURN(InodeHandle node, GetInode(ino));
  format::Inode& inode = node->inode;
  if (ChangesNothing(request, inode)) return AttributesOf(*node);
  Transaction tx(blocks_);
  const Timestamp now = Now();
  bool changed = false;
  if (request.size) {
    if (S_ISDIR(inode.mode)) return ErrnoError(EISDIR, "is a directory");
    if (!S_ISREG(inode.mode)) return ErrnoError(EINVAL, "not a regular file");
    if (*request.size != inode.size) {
      E4_RETURN_IF_ERROR(Truncate(tx, *node, *request.size));
    }
    // Also to the same size: truncate(2) always changes mtime and ctime.
    inode.mtime = ToInodeTime(now);
    changed = true;
  }
  if (request.mode) {
    uint32_t mode = *request.mode & 07777;
    // chmod by a non-member of the file's group cannot keep setgid.
    if (who.uid != 0 && (mode & S_ISGID) && !S_ISDIR(inode.mode)) {
      bool member = who.gid == inode.gid;
      for (uint32_t g : who.groups) member = member || g == inode.gid;
      if (!member) mode &= ~S_ISGID;
    }
    inode.mode = static_cast<uint16_t>((inode.mode & S_IFMT) | mode);
    if (!S_ISLNK(inode.mode)) {
      E4_RETURN_IF_ERROR(ChmodAccessAcl(tx, *node));
    }
    changed = true;
  }
  if (request.uid || request.gid) {
    if (request.uid) inode.uid = *request.uid;
    if (request.gid) inode.gid = *request.gid;
    // chown kills setuid, and setgid where it means "set group on exec".
    if (!S_ISDIR(inode.mode)) {
      inode.mode &= ~S_ISUID;
      if (inode.mode & S_IXGRP) inode.mode &= ~S_ISGID;
    }
    changed = true;
  }
  if (request.atime_now) inode.atime = ToInodeTime(now);
  if (request.atime) inode.atime = ToInodeTime(*request.atime);
  if (request.mtime_now) inode.mtime = ToInodeTime(now);
  if (request.mtime) inode.mtime = ToInodeTime(*request.mtime);
  changed = changed || request.atime_now || request.atime ||
            request.mtime_now || request.mtime;
  if (changed) inode.ctime = ToInodeTime(now);
  if (request.ctime) inode.ctime = ToInodeTime(*request.ctime);
  E4_RETURN_IF_ERROR(WriteInode(tx, *node));
  E4_RETURN_IF_ERROR(Finish(tx));
  return AttributesOf(*node);
}

absl::Status FilesystemImpl::Allocate(InodeNumber ino, int mode,
                                      uint64_t offset, uint64_t length) {
  if (mode & ~(kFallocKeepSize | kFallocPunchHole | kFallocZeroRange)) {
    return ErrnoError(EOPNOTSUPP, "unsupported fallocate mode");
  }
  if ((mode & kFallocPunchHole) &&
      (!(mode & kFallocKeepSize) || (mode & kFallocZeroRange))) {
    return ErrnoError(EOPNOTSUPP, "punching a hole needs KEEP_SIZE alone");
  }
  if (length == 0) return ErrnoError(EINVAL, "empty range");
  absl::MutexLock lock(&mu_);
  WriteScope scope(*this);
  if (CannotWrite()) return ErrnoError(EROFS, "read-only filesystem");
  E4_ASSIGN_OR_RETURN(InodeHandle node, GetInode(ino));
  if (S_ISDIR(node->inode.mode)) return ErrnoError(EISDIR, "is a directory");
  if (!S_ISREG(node->inode.mode)) return ErrnoError(ENODEV, "not a file");
  const uint32_t bs = sb_.block_size();
  const uint64_t end = offset + length;
  if (end < offset || end > (kEndOfFile - 1) * bs) {
    return ErrnoError(EFBIG, "file too large");
  }
  Transaction tx(blocks_);
  if (node->inode.flags & format::kInodeFlagInlineData) {
    E4_RETURN_IF_ERROR(ConvertInlineData(tx, *node));
  }
  // Block-mapped files cannot hold unwritten blocks: punching holes is all
  // they can do (as with the kernel).
  if (!(node->inode.flags & format::kInodeFlagExtents) &&
      mode != (kFallocPunchHole | kFallocKeepSize)) {
    return ErrnoError(EOPNOTSUPP, "fallocate needs an extent-mapped file");
  }
  std::unique_ptr<FileBlocks> tree = BlocksOf(*node);
  // Zeroes the written bytes of [from, to) inside one block.
  auto zero_bytes = [&](uint64_t from, uint64_t to) -> absl::Status {
    if (from >= to) return absl::OkStatus();
    E4_ASSIGN_OR_RETURN(BlockMapping mapping, tree->Map(tx, from / bs));
    if (mapping.physical == 0 || mapping.unwritten) return absl::OkStatus();
    std::vector<uint8_t> zeros(static_cast<size_t>(to - from), 0);
    return device_->WriteAt(mapping.physical * bs + from % bs, zeros);
  };
  auto allocate_unwritten = [&](uint64_t first, uint64_t last) -> absl::Status {
    for (uint64_t logical = first; logical < last;) {
      E4_ASSIGN_OR_RETURN(BlockMapping mapping, tree->Map(tx, logical));
      if (mapping.physical != 0) {
        logical += mapping.length;
        continue;
      }
      uint64_t want = std::min<uint64_t>(mapping.length, last - logical);
      E4_ASSIGN_OR_RETURN(BlockMapping fresh,
                          tree->MapForWrite(tx, logical, want, GoalFor(*node),
                                            /*unwritten=*/true));
      logical += std::max<uint64_t>(1, std::min<uint64_t>(fresh.length, want));
    }
    return absl::OkStatus();
  };
  const uint64_t first_full = (offset + bs - 1) / bs;
  const uint64_t last_full = end / bs;  // exclusive
  if (mode & (kFallocPunchHole | kFallocZeroRange)) {
    const uint64_t size = node->inode.size;
    const uint64_t stop = (mode & kFallocPunchHole) ? std::min(end, size) : end;
    if (first_full >= last_full) {
      E4_RETURN_IF_ERROR(
          zero_bytes(offset, std::min(stop, (offset / bs + 1) * bs)));
      if (stop > (offset / bs + 1) * bs) {
        E4_RETURN_IF_ERROR(zero_bytes((offset / bs + 1) * bs, stop));
      }
    } else {
      E4_RETURN_IF_ERROR(zero_bytes(offset, first_full * bs));
      E4_RETURN_IF_ERROR(tree->Remove(tx, first_full, last_full));
      E4_RETURN_IF_ERROR(zero_bytes(last_full * bs, stop));
      if (mode & kFallocZeroRange) {
        E4_RETURN_IF_ERROR(allocate_unwritten(first_full, last_full));
      }
    }
  } else {
    E4_RETURN_IF_ERROR(allocate_unwritten(offset / bs, (end + bs - 1) / bs));
  }
  if (!(mode & kFallocKeepSize) && end > node->inode.size) {
    node->inode.size = end;
  }
  Timestamp now = Now();
  node->inode.ctime = ToInodeTime(now);
  if (mode & (kFallocPunchHole | kFallocZeroRange)) {
    node->inode.mtime = ToInodeTime(now);
  }
  E4_RETURN_IF_ERROR(WriteInode(tx, *node));
  return Finish(tx);
}

absl::StatusOr<uint64_t> FilesystemImpl::Seek(InodeNumber ino, uint64_t offset,
                                              int whence) {
  if (whence != SEEK_DATA && whence != SEEK_HOLE) {
    return ErrnoError(EINVAL, "unsupported whence");
  }
  absl::ReaderMutexLock lock(&mu_);
  E4_ASSIGN_OR_RETURN(InodeHandle node, GetInode(ino));
  const uint64_t size = node->inode.size;
  if (offset >= size) return ErrnoError(ENXIO, "past the end of the file");
  if ((node->inode.flags & format::kInodeFlagInlineData) ||
      !S_ISREG(node->inode.mode)) {
    return whence == SEEK_DATA ? offset : size;
  }
  const uint32_t bs = sb_.block_size();
  std::unique_ptr<FileMap> map = MakeFileMap(
      node->inode, blocks_, sb_.metadata_csum(), node->checksum_seed);
  uint64_t logical = offset / bs;
  while (logical * bs < size) {
    // No map reaches block kEndOfFile: past it, a hostile i_size is one
    // hole (walking it block by block would never end).
    if (logical >= kEndOfFile) {
      if (whence == SEEK_HOLE) return std::max(offset, logical * bs);
      break;
    }
    E4_ASSIGN_OR_RETURN(BlockMapping mapping, map->Map(logical));
    // Unwritten extents read as zeros: a hole, as far as lseek is concerned.
    const bool data = mapping.physical != 0 && !mapping.unwritten;
    if (data == (whence == SEEK_DATA)) {
      return std::max(offset, logical * bs);
    }
    logical += std::max<uint64_t>(1, mapping.length);
  }
  if (whence == SEEK_HOLE) return size;
  return ErrnoError(ENXIO, "no data past the offset");
}

absl::Status FilesystemImpl::SetXattr(InodeNumber ino, std::string_view name,
                                      std::string_view value, int flags) {
  if (absl::StartsWith(absl::string_view(name.data(), name.size()),
                       "system.") &&
      name != "system.posix_acl_access" && name != "system.posix_acl_default") {
    return ErrnoError(EOPNOTSUPP, "unsupported attribute namespace");
  }
  absl::MutexLock lock(&mu_);
  WriteScope scope(*this);
  if (CannotWrite()) return ErrnoError(EROFS, "read-only filesystem");
  E4_ASSIGN_OR_RETURN(InodeHandle node, GetInode(ino));
  XattrWriteContext ctx{sb_.block_size(), sb_.metadata_csum(),
                        sb_.checksum_seed(), sb_.inode_size(),
                        sb_.has_incompat(format::kIncompatEaInode)};
  Transaction tx(blocks_);
  // As the kernel does on the first xattr: without ext_attr, e2fsck would
  // take any xattr block for garbage.
  sb_.feature_compat |= format::kCompatExtAttr;
  if (name == "system.posix_acl_access") {
    E4_RETURN_IF_ERROR(SetAccessAcl(tx, *node, value, flags));
  } else {
    E4_RETURN_IF_ERROR(ext4::SetXattr(tx, ctx, node->inode, node->raw,
                                      *allocator_, GoalFor(*node), name, value,
                                      flags));
  }
  node->inode.ctime = ToInodeTime(Now());
  E4_RETURN_IF_ERROR(WriteInode(tx, *node));
  return Finish(tx);
}

absl::Status FilesystemImpl::RemoveXattr(InodeNumber ino,
                                         std::string_view name) {
  if (name == "system.data") return ErrnoError(EOPNOTSUPP, "reserved name");
  absl::MutexLock lock(&mu_);
  WriteScope scope(*this);
  if (CannotWrite()) return ErrnoError(EROFS, "read-only filesystem");
  E4_ASSIGN_OR_RETURN(InodeHandle node, GetInode(ino));
  XattrWriteContext ctx{sb_.block_size(), sb_.metadata_csum(),
                        sb_.checksum_seed(), sb_.inode_size(),
                        sb_.has_incompat(format::kIncompatEaInode)};
  Transaction tx(blocks_);
  E4_RETURN_IF_ERROR(
      ext4::RemoveXattr(tx, ctx, node->inode, node->raw, *allocator_, name));
  node->inode.ctime = ToInodeTime(Now());
  E4_RETURN_IF_ERROR(WriteInode(tx, *node));
  return Finish(tx);
}

}  // namespace ext4
