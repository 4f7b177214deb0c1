#include "fuse/adapter.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"

namespace e4fs {
namespace {

using ext4::InodeNumber;

// absl::string_view is its own type in this Abseil release.
std::string_view ToStd(absl::string_view s) { return {s.data(), s.size()}; }

Adapter& Self(fuse_req_t req) {
  return *static_cast<Adapter*>(fuse_req_userdata(req));
}

timespec ToTimespec(const ext4::Timestamp& t) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(t.sec);
  ts.tv_nsec = static_cast<long>(t.nsec);
  return ts;
}

void FillStat(const ext4::Attributes& a, InodeNumber ino, struct stat* st) {
  *st = {};
  st->st_ino = ino;
  st->st_mode = a.mode;
  st->st_nlink = a.nlink;
  st->st_uid = a.uid;
  st->st_gid = a.gid;
  st->st_size = static_cast<off_t>(a.size);
  st->st_blocks = static_cast<blkcnt_t>(a.blocks);
  st->st_blksize = a.block_size;
  st->st_rdev = makedev(a.rdev_major, a.rdev_minor);
  st->st_atim = ToTimespec(a.atime);
  st->st_mtim = ToTimespec(a.mtime);
  st->st_ctim = ToTimespec(a.ctime);
}

// Inodes 0 and 1 never become node ids: 0 means "no inode" and 1 would alias
// the kernel's root.
bool CanHandOut(InodeNumber ino) { return ino >= ext4::kRootInode; }

// Fills `e` from `attr` (nothing is pinned).
void FillEntry(const Adapter& self, const ext4::Attributes& attr,
               InodeNumber ino, fuse_entry_param* e) {
  *e = {};
  e->ino = Adapter::ToNode(ino);
  // The kernel expects generation 0 for its root.
  e->generation = ino == ext4::kRootInode ? 0 : attr.generation;
  FillStat(attr, ino, &e->attr);
  e->attr_timeout = self.options().attr_timeout;
  e->entry_timeout = self.options().entry_timeout;
}

// Fills `e` for `ino` and pins it once. Nothing stays pinned on error.
absl::Status MakeEntry(Adapter& self, InodeNumber ino, fuse_entry_param* e) {
  if (!CanHandOut(ino)) {
    return ext4::Corrupt(
        absl::StrCat("directory entry points to reserved inode ", ino));
  }
  if (absl::Status s = self.fs().Pin(ino); !s.ok()) return s;
  absl::StatusOr<ext4::Attributes> attr = self.fs().GetAttr(ino);
  if (!attr.ok()) {
    self.fs().Unpin(ino, 1);
    return attr.status();
  }
  FillEntry(self, *attr, ino, e);
  return absl::OkStatus();
}

// Pins the inode the engine just made or linked (`attr`) and fills `e`.
absl::Status PinNewEntry(Adapter& self, const ext4::Attributes& attr,
                         fuse_entry_param* e) {
  if (!CanHandOut(attr.ino)) {
    return ext4::ErrnoError(
        EIO, absl::StrCat("the engine answered with inode ", attr.ino));
  }
  if (absl::Status s = self.fs().Pin(attr.ino); !s.ok()) return s;
  FillEntry(self, attr, attr.ino, e);
  return absl::OkStatus();
}

// Replies to mknod, mkdir, symlink and link with the entry `attr` (or the
// error), pinning it once for the kernel's lookup count.
void ReplyNewEntry(Adapter& self, fuse_req_t req,
                   const absl::StatusOr<ext4::Attributes>& attr,
                   InodeNumber dir, std::string_view op) {
  if (!attr.ok()) {
    self.ReplyError(req, attr.status(), dir, op);
    return;
  }
  fuse_entry_param e;
  if (absl::Status s = PinNewEntry(self, *attr, &e); !s.ok()) {
    self.ReplyError(req, s, dir, op);
    return;
  }
  // The kernel did not take the node if the reply could not be sent.
  if (fuse_reply_entry(req, &e) != 0) self.fs().Unpin(attr->ino, 1);
}

bool IsDotOrDotDot(const std::string& name) {
  return name == "." || name == "..";
}

// A name the kernel can take: what a corrupt directory may hold otherwise
// (an empty name, '/', NUL) is skipped.
bool IsValidName(const std::string& name) {
  return !name.empty() && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

// Largest write the kernel sends in one request, and the chunk size of a
// server-side copy.
constexpr size_t kMaxWrite = size_t{1} << 20;
// A copy_file_range request copies at most this much; the caller loops (the
// reply carries a 32-bit count).
constexpr uint64_t kMaxCopyPerRequest = uint64_t{64} << 20;

bool Writable(int flags) { return (flags & O_ACCMODE) != O_RDONLY; }

// The caller of `req` as the engine sees it. Supplementary groups are not
// filled (see AddGroups).
ext4::Credentials Caller(const Adapter& self, fuse_req_t req) {
  ext4::Credentials who;
  const fuse_ctx* ctx = fuse_req_ctx(req);
  // With POSIX ACLs on, the kernel leaves the umask to the filesystem
  // (applied where no default ACL decides); otherwise it has applied it
  // already and applying it again changes nothing.
  who.umask = ctx->umask;
  if (self.options().fakeroot) return who;  // root
  who.uid = ctx->uid;
  who.gid = ctx->gid;
  return who;
}

// Adds the caller's supplementary groups. libfuse reads them from
// /proc/PID/task/PID/status, a file read per call that the sandbox may hide;
// they are fetched only where the engine needs them, and left empty when
// they cannot be read.
void AddGroups(fuse_req_t req, ext4::Credentials* who) {
  std::vector<gid_t> list(32);
  for (int attempt = 0; attempt < 3; ++attempt) {
    const int n =
        fuse_req_getgroups(req, static_cast<int>(list.size()), list.data());
    if (n < 0) return;
    if (static_cast<size_t>(n) <= list.size()) {
      who->groups.assign(list.begin(), list.begin() + n);
      return;
    }
    list.resize(static_cast<size_t>(n));  // more groups than room: again
  }
}

absl::StatusOr<ext4::Timestamp> ToTimestamp(const timespec& ts) {
  if (ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000L) {
    return ext4::ErrnoError(EINVAL, "nanoseconds out of range");
  }
  return ext4::Timestamp{static_cast<int64_t>(ts.tv_sec),
                         static_cast<uint32_t>(ts.tv_nsec)};
}

// Open flags for a regular file.
void SetOpenFlags(const Adapter& self, fuse_file_info* fi) {
  // This server is the only writer: cached pages stay valid across opens
  // (writes go through the kernel's page cache).
  fi->keep_cache = 1;
  if (self.read_only()) fi->noflush = 1;
}

// ---- Session ----

void Init(void* userdata, fuse_conn_info* conn) {
  Adapter& self = *static_cast<Adapter*>(userdata);
  // The first request, in the process that serves (after any fork into the
  // background and inside the sandbox): the engine's threads may start.
  self.fs().StartBackgroundWork();
  auto want = [conn](unsigned cap) {
    if (conn->capable & cap) conn->want |= cap;
  };
  want(FUSE_CAP_ASYNC_READ);
  want(FUSE_CAP_READDIRPLUS);
  want(FUSE_CAP_CACHE_SYMLINKS);
  want(FUSE_CAP_PARALLEL_DIROPS);
  want(FUSE_CAP_SPLICE_WRITE);
  want(FUSE_CAP_SPLICE_MOVE);
  // open(O_TRUNC) arrives as one request; Open truncates.
  want(FUSE_CAP_ATOMIC_O_TRUNC);
  if (self.options().posix_acl) {
    want(FUSE_CAP_POSIX_ACL);
    // The mode of a new inode reaches the engine unmasked, with the umask
    // beside it: a default ACL of the directory, not the umask, decides.
    want(FUSE_CAP_DONT_MASK);
  }
  // The kernel clears set-user-ID and set-group-ID itself, with a setattr
  // that carries the new mode, on write, truncate and chown; the engine then
  // applies modes as it is told. (Writes the kernel writes back from its
  // cache carry no caller, so the server could not do it right.)
  conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
#ifdef FUSE_CAP_HANDLE_KILLPRIV_V2
  conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV_V2;
#endif
  // Written data is handed to the engine in memory: splicing requests from
  // /dev/fuse into a pipe would cost a second system call per request and
  // save no copy.
  conn->want &= ~FUSE_CAP_SPLICE_READ;
  const bool writeback = !self.read_only() && self.options().writeback_cache &&
                         (conn->capable & FUSE_CAP_WRITEBACK_CACHE) != 0;
  if (writeback) {
    conn->want |= FUSE_CAP_WRITEBACK_CACHE;
  } else {
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  }
  self.set_writeback_cache(writeback);
  self.set_opendir_optional((conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) != 0);
  // libfuse has already lowered max_write to what its buffers hold.
  conn->max_write = std::min(conn->max_write, static_cast<unsigned>(kMaxWrite));
  conn->time_gran = 1;  // ext4 keeps nanoseconds (with extra_isize)
  if (self.options().max_read != 0) conn->max_read = self.options().max_read;
}

// Called once the session ends (unmount, a signal, or a lost connection):
// everything still in the engine's caches goes to the image.
void Destroy(void* userdata) {
  Adapter& self = *static_cast<Adapter*>(userdata);
  // The kernel sends no forgets at unmount: unlinked files it still knew
  // are freed now.
  if (absl::Status s = self.fs().ForgetAll(); !s.ok()) {
    self.Log(0, "unmount",
             absl::StrCat("cannot free unlinked files: ", s.message()));
  }
  if (absl::Status s = self.fs().SyncAll(); !s.ok()) {
    self.Log(0, "unmount",
             absl::StrCat("cannot write everything back: ", s.message()));
    self.set_final_sync_failed();
  }
}

// ---- Names and attributes ----

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Adapter& self = Self(req);
  absl::ReaderMutexLock order(&self.reply_order());
  const InodeNumber dir = Adapter::ToInode(parent);
  absl::StatusOr<InodeNumber> ino = self.fs().Lookup(dir, name);
  if (!ino.ok()) {
    if (ext4::ErrnoOf(ino.status()) == ENOENT &&
        self.options().negative_timeout > 0) {
      fuse_entry_param e{};  // ino 0: an absent name the kernel may cache
      e.entry_timeout = self.options().negative_timeout;
      fuse_reply_entry(req, &e);
      return;
    }
    self.ReplyError(req, ino.status(), dir, "lookup");
    return;
  }
  fuse_entry_param e;
  if (absl::Status s = MakeEntry(self, *ino, &e); !s.ok()) {
    self.ReplyError(req, s, CanHandOut(*ino) ? *ino : dir, "lookup");
    return;
  }
  // The kernel did not take the node if the reply could not be sent.
  if (fuse_reply_entry(req, &e) != 0) self.fs().Unpin(*ino, 1);
}

void Forget(fuse_req_t req, fuse_ino_t node, uint64_t nlookup) {
  Self(req).fs().Unpin(Adapter::ToInode(node), nlookup);
  fuse_reply_none(req);
}

void ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  ext4::Filesystem& fs = Self(req).fs();
  for (size_t i = 0; i < count; ++i) {
    fs.Unpin(Adapter::ToInode(forgets[i].ino), forgets[i].nlookup);
  }
  fuse_reply_none(req);
}

void GetAttr(fuse_req_t req, fuse_ino_t node, fuse_file_info*) {
  Adapter& self = Self(req);
  absl::ReaderMutexLock order(&self.reply_order());
  const InodeNumber ino = Adapter::ToInode(node);
  absl::StatusOr<ext4::Attributes> attr = self.fs().GetAttr(ino);
  if (!attr.ok()) {
    self.ReplyError(req, attr.status(), ino, "getattr");
    return;
  }
  struct stat st;
  FillStat(*attr, ino, &st);
  fuse_reply_attr(req, &st, self.options().attr_timeout);
}

void ReadLink(fuse_req_t req, fuse_ino_t node) {
  Adapter& self = Self(req);
  const InodeNumber ino = Adapter::ToInode(node);
  absl::StatusOr<std::string> target = self.fs().ReadLink(ino);
  if (!target.ok()) {
    self.ReplyError(req, target.status(), ino, "readlink");
    return;
  }
  fuse_reply_readlink(req, target->c_str());
}

void Access(fuse_req_t req, fuse_ino_t, int mask) {
  // Permission bits are the kernel's business (default_permissions); only
  // the read-only state is known here.
  // The engine's answer, not the mount's: errors=remount-ro turns it.
  fuse_reply_err(req, (mask & W_OK) && Self(req).fs().read_only() ? EROFS : 0);
}

// ---- Files ----

// open(O_TRUNC): the kernel sends no setattr for it (atomic O_TRUNC), so
// the truncation, the new mtime and the clearing of set-user-ID and
// set-group-ID that the kernel does on a truncate by an unprivileged caller
// are made here. The open was allowed already: the engine applies it as root.
absl::Status TruncateOnOpen(Adapter& self, fuse_req_t req, InodeNumber ino) {
  E4_ASSIGN_OR_RETURN(ext4::Attributes attr, self.fs().GetAttr(ino));
  if (!S_ISREG(attr.mode)) return absl::OkStatus();  // as the kernel does
  ext4::SetAttrRequest request;
  request.size = 0;
  request.mtime_now = true;
  // The real caller, as the kernel judges a truncate (also with fakeroot).
  if (fuse_req_ctx(req)->uid != 0) {
    uint32_t mode = attr.mode & 07777;
    mode &= ~S_ISUID;
    // Without group execute, set-group-ID means mandatory locking: kept.
    if ((mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP)) mode &= ~S_ISGID;
    if (mode != (attr.mode & 07777)) request.mode = mode;
  }
  return self.fs().SetAttr(ino, request, ext4::Credentials{}).status();
}

void Open(fuse_req_t req, fuse_ino_t node, fuse_file_info* fi) {
  Adapter& self = Self(req);
  const InodeNumber ino = Adapter::ToInode(node);
  // errors=remount-ro: refused at open, before the kernel's write-back
  // cache could accept writes that can no longer land.
  if (self.fs().read_only() && (Writable(fi->flags) || (fi->flags & O_TRUNC))) {
    fuse_reply_err(req, EROFS);
    return;
  }
  if (absl::Status s = self.fs().OpenFile(ino); !s.ok()) {
    self.ReplyError(req, s, ino, "open");
    return;
  }
  if (fi->flags & O_TRUNC) {
    if (absl::Status s = TruncateOnOpen(self, req, ino); !s.ok()) {
      (void)self.fs().Release(ino);
      self.ReplyError(req, s, ino, "open");
      return;
    }
  }
  SetOpenFlags(self, fi);
  self.NoteOpen(ino, fi->flags);
  // Before the reply: the kernel sets up the file's readahead after it.
  self.readahead_window().Apply();
  // No release follows an open the kernel never saw.
  if (fuse_reply_open(req, fi) != 0) {
    self.NoteRelease(ino, fi->flags);
    (void)self.fs().Release(ino);
  }
}

// Replies to a read with the pieces ReadInPlace found: descriptor ranges
// (spliced when the kernel and the pipe allow, else read by libfuse) and
// zeros.
void ReplyPieces(fuse_req_t req,
                 std::span<const ext4::Filesystem::ReadPiece> pieces) {
  if (pieces.empty()) {
    fuse_reply_buf(req, nullptr, 0);
    return;
  }
  thread_local std::vector<unsigned char> storage;
  thread_local std::vector<char> zeros;
  storage.assign(offsetof(fuse_bufvec, buf) + pieces.size() * sizeof(fuse_buf),
                 0);
  auto* vec = reinterpret_cast<fuse_bufvec*>(storage.data());
  vec->count = pieces.size();
  // Every hole points into the same zeros: sized for the largest first, as
  // growing them later would move what earlier pieces point at.
  size_t largest_hole = 0;
  for (const auto& piece : pieces) {
    if (piece.fd < 0) largest_hole = std::max(largest_hole, piece.length);
  }
  if (zeros.size() < largest_hole) zeros.resize(largest_hole, 0);
  for (size_t i = 0; i < pieces.size(); ++i) {
    fuse_buf& buf = vec->buf[i];
    buf.size = pieces[i].length;
    if (pieces[i].fd >= 0) {
      buf.flags =
          static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
      buf.fd = pieces[i].fd;
      buf.pos = static_cast<off_t>(pieces[i].offset);
    } else {
      buf.mem = zeros.data();
    }
  }
  fuse_reply_data(req, vec, FUSE_BUF_SPLICE_MOVE);
}

void Read(fuse_req_t req, fuse_ino_t node, size_t size, off_t off,
          fuse_file_info*) {
  Adapter& self = Self(req);
  const InodeNumber ino = Adapter::ToInode(node);
  if (off < 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  self.readahead_window().Apply();  // for files opened before
  // The data where it lies in the image, handed to libfuse to splice into
  // the reply (one copy, in the kernel) while the engine holds the blocks.
  absl::Status in_place = self.fs().ReadInPlace(
      ino, static_cast<uint64_t>(off), size,
      [&](std::span<const ext4::Filesystem::ReadPiece> pieces) {
        ReplyPieces(req, pieces);
        return absl::OkStatus();
      });
  if (in_place.ok()) return;
  if (ext4::ErrnoOf(in_place) != EOPNOTSUPP) {
    self.ReplyError(req, in_place, ino, "read");
    return;
  }
  // One buffer per worker thread, as large as the largest read it served.
  thread_local std::vector<uint8_t> buffer;
  if (buffer.size() < size) buffer.resize(size);
  absl::StatusOr<size_t> n = self.fs().Read(
      ino, static_cast<uint64_t>(off), std::span<uint8_t>(buffer.data(), size));
  if (!n.ok()) {
    self.ReplyError(req, n.status(), ino, "read");
    return;
  }
  fuse_reply_buf(req, reinterpret_cast<const char*>(buffer.data()),
                 std::min(*n, size));
}

void Release(fuse_req_t req, fuse_ino_t node, fuse_file_info* fi) {
  Adapter& self = Self(req);
  const InodeNumber ino = Adapter::ToInode(node);
  self.NoteRelease(ino, fi->flags);
  // The kernel does not look at the answer; errors are only logged.
  if (absl::Status s = self.fs().Release(ino); !s.ok()) {
    self.ReplyError(req, s, ino, "release");
    return;
  }
  fuse_reply_err(req, 0);
}

// Nothing is buffered here: every write has reached the engine. ENOSYS
// tells the kernel so once and for all: it stops sending FLUSH at every
// close (it still writes its cached pages back first, which is all a close
// needs).
void Flush(fuse_req_t req, fuse_ino_t, fuse_file_info*) {
  fuse_reply_err(req, ENOSYS);
}

void Fsync(fuse_req_t req, fuse_ino_t node, int datasync, fuse_file_info*) {
  Adapter& self = Self(req);
  const InodeNumber ino = Adapter::ToInode(node);
  if (absl::Status s = self.fs().Sync(ino, datasync != 0); !s.ok()) {
    self.ReplyError(req, s, ino, "fsync");
    return;
  }
  // The block count the write-backs changed, before fsync(2) returns: the
  // notification after each write-back write may still be on its way.
  if (self.writeback_cache() && self.session() != nullptr) {
    (void)fuse_lowlevel_notify_inval_inode(self.session(), node, -1, 0);
  }
  fuse_reply_err(req, 0);
}

// ---- Directories ----

void OpenDir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  Adapter& self = Self(req);
  if (self.read_only()) {
    // Listings cannot change: the kernel may keep them (worth more than
    // the round trip of the open).
    fi->cache_readdir = 1;
    fi->keep_cache = 1;
  } else if (self.opendir_optional()) {
    // Nothing is kept per open directory: ENOSYS tells the kernel so, and
    // it stops sending OPENDIR and RELEASEDIR for good.
    fuse_reply_err(req, ENOSYS);
    return;
  }
  fuse_reply_open(req, fi);
}

void ReadDirCommon(fuse_req_t req, fuse_ino_t node, size_t size, off_t off,
                   bool plus) {
  Adapter& self = Self(req);
  absl::ReaderMutexLock order(&self.reply_order());
  const InodeNumber dir = Adapter::ToInode(node);
  const char* const op = plus ? "readdirplus" : "readdir";
  auto buf = std::make_unique_for_overwrite<char[]>(size);
  size_t used = 0;
  std::vector<InodeNumber> pinned;

  absl::Status status = self.fs().ReadDir(
      dir, static_cast<uint64_t>(off), [&](const ext4::DirEntry& d) {
        if (d.next_cookie == 0) {
          self.Log(dir, op, "directory cookie 0 after an entry; listing cut");
          return false;
        }
        if (!IsValidName(d.name)) {
          // Corruption the engine's checks let through (an empty name or
          // one with '/'): recorded as any other.
          self.Log(dir, op, "skipped an entry with an invalid name");
          self.fs().NoteError(
              ext4::Corrupt("directory entry with an empty name or a '/'"),
              dir);
          return true;
        }
        const off_t next = static_cast<off_t>(d.next_cookie);
        struct stat st {};
        st.st_ino = d.ino;
        st.st_mode = d.type & S_IFMT;
        const size_t left = size - used;
        if (!plus) {
          const size_t need = fuse_add_direntry(req, buf.get() + used, left,
                                                d.name.c_str(), &st, next);
          if (need > left) return false;
          used += need;
          return true;
        }
        fuse_entry_param e{};
        e.attr = st;
        // Measure first: an entry that does not fit must not be pinned.
        if (fuse_add_direntry_plus(req, nullptr, 0, d.name.c_str(), &e, next) >
            left) {
          return false;
        }
        // "." and ".." carry no node (the kernel ignores them here).
        if (!IsDotOrDotDot(d.name)) {
          if (absl::Status s = MakeEntry(self, d.ino, &e); s.ok()) {
            pinned.push_back(d.ino);
          } else {
            // Sent without a node: a later lookup reports the error.
            const int err = ext4::ErrnoOf(s);
            if (err == EUCLEAN || err == EIO) {
              self.Log(CanHandOut(d.ino) ? d.ino : dir, op, ToStd(s.message()));
            }
            e = {};
            e.attr = st;
          }
        }
        used += fuse_add_direntry_plus(req, buf.get() + used, left,
                                       d.name.c_str(), &e, next);
        return true;
      });

  if (!status.ok()) {
    if (used == 0) {
      self.ReplyError(req, status, dir, op);
      return;
    }
    // Serve what was read; the error comes back on the next call.
  }
  if (fuse_reply_buf(req, buf.get(), used) != 0) {
    for (InodeNumber ino : pinned) self.fs().Unpin(ino, 1);
  }
}

void ReadDir(fuse_req_t req, fuse_ino_t node, size_t size, off_t off,
             fuse_file_info*) {
  ReadDirCommon(req, node, size, off, /*plus=*/false);
}

void ReadDirPlus(fuse_req_t req, fuse_ino_t node, size_t size, off_t off,
                 fuse_file_info*) {
  ReadDirCommon(req, node, size, off, /*plus=*/true);
}

void ReleaseDir(fuse_req_t req, fuse_ino_t, fuse_file_info*) {
  fuse_reply_err(req, 0);
}

void FsyncDir(fuse_req_t req, fuse_ino_t node, int datasync, fuse_file_info*) {
  Adapter& self = Self(req);
  const InodeNumber ino = Adapter::ToInode(node);
  if (absl::Status s = self.fs().Sync(ino, datasync != 0); !s.ok()) {
    self.ReplyError(req, s, ino, "fsyncdir");
    return;
  }
  fuse_reply_err(req, 0);
}

// ---- Filesystem ----

void StatFs(fuse_req_t req, fuse_ino_t node) {
  Adapter& self = Self(req);
  absl::StatusOr<ext4::FsStats> stats = self.fs().StatFs();
  if (!stats.ok()) {
    self.ReplyError(req, stats.status(), Adapter::ToInode(node), "statfs");
    return;
  }
  struct statvfs sv {};
  sv.f_bsize = stats->block_size;
  sv.f_frsize = stats->block_size;
  sv.f_blocks = stats->blocks;
  sv.f_bfree = stats->free_blocks;
  sv.f_bavail = stats->available_blocks;
  sv.f_files = stats->inodes;
  sv.f_ffree = stats->free_inodes;
  sv.f_favail = stats->free_inodes;
  sv.f_fsid = stats->fsid;
  sv.f_namemax = stats->name_max;
  if (self.fs().read_only()) sv.f_flag = ST_RDONLY;
  fuse_reply_statfs(req, &sv);
}

// ---- Extended attributes ----

// Answers a getxattr/listxattr request for `value`: its size when the caller
// asks (size 0), ERANGE when the caller's buffer is too small.
void ReplyXattrValue(fuse_req_t req, const std::string& value, size_t size) {
  if (size == 0) {
    fuse_reply_xattr(req, value.size());
  } else if (size < value.size()) {
    fuse_reply_err(req, ERANGE);
  } else {
    fuse_reply_buf(req, value.data(), value.size());
  }
}

void GetXattr(fuse_req_t req, fuse_ino_t node, const char* name, size_t size) {
  Adapter& self = Self(req);
  const InodeNumber ino = Adapter::ToInode(node);
  absl::StatusOr<std::string> value = self.fs().GetXattr(ino, name);
  if (!value.ok()) {
    self.ReplyError(req, value.status(), ino, "getxattr");
    return;
  }
  ReplyXattrValue(req, *value, size);
}

void ListXattr(fuse_req_t req, fuse_ino_t node, size_t size) {
  Adapter& self = Self(req);
  const InodeNumber ino = Adapter::ToInode(node);
  absl::StatusOr<std::vector<std::string>> names = self.fs().ListXattrs(ino);
  if (!names.ok()) {
    self.ReplyError(req, names.status(), ino, "listxattr");
    return;
  }
  std::string list;
  for (const std::string& name : *names) {
    list.append(name);
    list.push_back('\0');
  }
  ReplyXattrValue(req, list, size);
}

void SetXattr(fuse_req_t req, fuse_ino_t node, const char* name,
              const char* value, size_t size, int flags) {
  Adapter& self = Self(req);
  const InodeNumber ino = Adapter::ToInode(node);
  absl::Status s =
      self.fs().SetXattr(ino, name, std::string_view(value, size), flags);
  if (!s.ok()) {
    self.ReplyError(req, s, ino, "setxattr");
    return;
  }
  fuse_reply_err(req, 0);
}

void RemoveXattr(fuse_req_t req, fuse_ino_t node, const char* name) {
  Adapter& self = Self(req);
  const InodeNumber ino = Adapter::ToInode(node);
  if (absl::Status s = self.fs().RemoveXattr(ino, name); !s.ok()) {
    self.ReplyError(req, s, ino, "removexattr");
    return;
  }
  fuse_reply_err(req, 0);
}

// ---- Creating and removing names ----

// Replies to create and tmpfile: the new inode `attr` is opened and pinned,
// then handed out with its open file.
void ReplyCreated(Adapter& self, fuse_req_t req,
                  const absl::StatusOr<ext4::Attributes>& attr, InodeNumber dir,
                  fuse_file_info* fi, std::string_view op) {
  if (!attr.ok()) {
    self.ReplyError(req, attr.status(), dir, op);
    return;
  }
  const InodeNumber ino = attr->ino;
  fuse_entry_param e;
  if (absl::Status s = PinNewEntry(self, *attr, &e); !s.ok()) {
    self.ReplyError(req, s, dir, op);
    return;
  }
  if (absl::Status s = self.fs().OpenFile(ino); !s.ok()) {
    self.fs().Unpin(ino, 1);
    self.ReplyError(req, s, ino, op);
    return;
  }
  SetOpenFlags(self, fi);
  self.NoteOpen(ino, fi->flags);
  self.readahead_window().Apply();
  // The kernel took neither the node nor the open file if the reply failed.
  if (fuse_reply_create(req, &e, fi) != 0) {
    self.NoteRelease(ino, fi->flags);
    (void)self.fs().Release(ino);
    self.fs().Unpin(ino, 1);
  }
}

void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
            fuse_file_info* fi) {
  Adapter& self = Self(req);
  absl::WriterMutexLock order(&self.reply_order());
  const InodeNumber dir = Adapter::ToInode(parent);
  ReplyCreated(
      self, req,
      self.fs().Create(dir, name, S_IFREG | (mode & 07777), Caller(self, req)),
      dir, fi, "create");
}

#if FUSE_VERSION >= FUSE_MAKE_VERSION(3, 17)
// O_TMPFILE: an unnamed file, linked in later or gone at its last release.
void TmpFile(fuse_req_t req, fuse_ino_t parent, mode_t mode,
             fuse_file_info* fi) {
  Adapter& self = Self(req);
  absl::WriterMutexLock order(&self.reply_order());
  const InodeNumber dir = Adapter::ToInode(parent);
  ReplyCreated(
      self, req,
      self.fs().CreateUnnamed(dir, S_IFREG | (mode & 07777), Caller(self, req)),
      dir, fi, "tmpfile");
}
#endif

void MakeNode(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
              dev_t rdev) {
  Adapter& self = Self(req);
  absl::WriterMutexLock order(&self.reply_order());
  const InodeNumber dir = Adapter::ToInode(parent);
  ReplyNewEntry(self, req,
                self.fs().MakeNode(dir, name, mode & (S_IFMT | 07777),
                                   major(rdev), minor(rdev), Caller(self, req)),
                dir, "mknod");
}

void MakeDirectory(fuse_req_t req, fuse_ino_t parent, const char* name,
                   mode_t mode) {
  Adapter& self = Self(req);
  absl::WriterMutexLock order(&self.reply_order());
  const InodeNumber dir = Adapter::ToInode(parent);
  ReplyNewEntry(self, req,
                self.fs().MakeDirectory(dir, name, S_IFDIR | (mode & 07777),
                                        Caller(self, req)),
                dir, "mkdir");
}

void Symlink(fuse_req_t req, const char* target, fuse_ino_t parent,
             const char* name) {
  Adapter& self = Self(req);
  absl::WriterMutexLock order(&self.reply_order());
  const InodeNumber dir = Adapter::ToInode(parent);
  ReplyNewEntry(self, req,
                self.fs().MakeSymlink(dir, name, target, Caller(self, req)),
                dir, "symlink");
}

void Link(fuse_req_t req, fuse_ino_t node, fuse_ino_t new_parent,
          const char* new_name) {
  Adapter& self = Self(req);
  absl::WriterMutexLock order(&self.reply_order());
  const InodeNumber ino = Adapter::ToInode(node);
  ReplyNewEntry(self, req,
                self.fs().Link(ino, Adapter::ToInode(new_parent), new_name),
                ino, "link");
}

void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Adapter& self = Self(req);
  absl::WriterMutexLock order(&self.reply_order());
  const InodeNumber dir = Adapter::ToInode(parent);
  if (absl::Status s = self.fs().Unlink(dir, name); !s.ok()) {
    self.ReplyError(req, s, dir, "unlink");
    return;
  }
  fuse_reply_err(req, 0);
}

void RemoveDirectory(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Adapter& self = Self(req);
  absl::WriterMutexLock order(&self.reply_order());
  const InodeNumber dir = Adapter::ToInode(parent);
  if (absl::Status s = self.fs().RemoveDirectory(dir, name); !s.ok()) {
    self.ReplyError(req, s, dir, "rmdir");
    return;
  }
  fuse_reply_err(req, 0);
}

void Rename(fuse_req_t req, fuse_ino_t parent, const char* name,
            fuse_ino_t new_parent, const char* new_name, unsigned int flags) {
  Adapter& self = Self(req);
  absl::WriterMutexLock order(&self.reply_order());
  const InodeNumber dir = Adapter::ToInode(parent);
  constexpr unsigned kKnown = ext4::kRenameNoReplace | ext4::kRenameExchange;
  // RENAME_WHITEOUT (overlayfs) and anything newer are not supported;
  // exchange and no-replace exclude each other.
  if ((flags & ~kKnown) != 0 || flags == kKnown) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  if (absl::Status s = self.fs().Rename(dir, name, Adapter::ToInode(new_parent),
                                        new_name, flags);
      !s.ok()) {
    self.ReplyError(req, s, dir, "rename");
    return;
  }
  fuse_reply_err(req, 0);
}

// ---- Changing files ----

void SetAttr(fuse_req_t req, fuse_ino_t node, struct stat* attr, int to_set,
             fuse_file_info*) {
  Adapter& self = Self(req);
  const InodeNumber ino = Adapter::ToInode(node);
  ext4::SetAttrRequest request;
  bool any = false;
  if (to_set & FUSE_SET_ATTR_MODE) {
    request.mode = attr->st_mode & 07777;
    any = true;
  }
  if (to_set & FUSE_SET_ATTR_UID) {
    request.uid = attr->st_uid;
    any = true;
  }
  if (to_set & FUSE_SET_ATTR_GID) {
    request.gid = attr->st_gid;
    any = true;
  }
  if (to_set & FUSE_SET_ATTR_SIZE) {
    if (attr->st_size < 0) {
      fuse_reply_err(req, EINVAL);
      return;
    }
    request.size = static_cast<uint64_t>(attr->st_size);
    any = true;
  }
  // *_NOW comes with the plain bit: the engine's clock wins over the value.
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
    request.atime_now = true;
    any = true;
  } else if (to_set & FUSE_SET_ATTR_ATIME) {
    absl::StatusOr<ext4::Timestamp> t = ToTimestamp(attr->st_atim);
    if (!t.ok()) {
      self.ReplyError(req, t.status(), ino, "setattr");
      return;
    }
    request.atime = *t;
    any = true;
  }
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
    request.mtime_now = true;
    any = true;
  } else if (to_set & FUSE_SET_ATTR_MTIME) {
    absl::StatusOr<ext4::Timestamp> t = ToTimestamp(attr->st_mtim);
    if (!t.ok()) {
      self.ReplyError(req, t.status(), ino, "setattr");
      return;
    }
    request.mtime = *t;
    any = true;
  }
  // Sent with the writeback cache, which keeps ctime in the kernel.
  if (to_set & FUSE_SET_ATTR_CTIME) {
    absl::StatusOr<ext4::Timestamp> t = ToTimestamp(attr->st_ctim);
    if (!t.ok()) {
      self.ReplyError(req, t.status(), ino, "setattr");
      return;
    }
    request.ctime = *t;
    any = true;
  }

  absl::StatusOr<ext4::Attributes> result;
  if (!any) {
    result = self.fs().GetAttr(ino);  // nothing the engine keeps
  } else {
    ext4::Credentials who;  // root: the kernel has checked everything
    if (!self.options().default_permissions) {
      who = Caller(self, req);
      if (who.uid != 0 && (request.mode || request.gid)) {
        AddGroups(req, &who);
      }
    }
    result = self.fs().SetAttr(ino, request, who);
  }
  if (!result.ok()) {
    self.ReplyError(req, result.status(), ino, "setattr");
    return;
  }
  struct stat st;
  FillStat(*result, ino, &st);
  fuse_reply_attr(req, &st, self.options().attr_timeout);
}

// Writes `data` at `off` and replies with the count.
void WriteData(Adapter& self, fuse_req_t req, InodeNumber ino,
               std::span<const uint8_t> data, off_t off, fuse_file_info* fi) {
  if (off < 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  if (data.empty()) {
    fuse_reply_write(req, 0);
    return;
  }
  // Pages the kernel writes back from its cache carry no caller (the header
  // holds 0 or -1); the kernel has cleared set-user-ID and set-group-ID at
  // write(2) time already and keeps the times itself (it sends them with a
  // SETATTR that may overtake this request on another thread).
  const bool write_back = fi != nullptr && fi->writepage;
  absl::StatusOr<size_t> n =
      write_back ? self.fs().WriteBack(ino, static_cast<uint64_t>(off), data)
                 : self.fs().Write(ino, static_cast<uint64_t>(off), data,
                                   Caller(self, req));
  if (!n.ok()) {
    self.ReplyError(req, n.status(), ino, "write");
    return;
  }
  fuse_reply_write(req, std::min(*n, data.size()));
  // The kernel keeps size and times of a file it caches, but takes the
  // block count (st_blocks) from the server, and only when it asks again:
  // without this it shows the count of before the write until the
  // attribute timeout (du, stat after fsync). Attributes only (offset -1).
  if (write_back && self.session() != nullptr) {
    (void)fuse_lowlevel_notify_inval_inode(self.session(), Adapter::ToNode(ino),
                                           -1, 0);
  }
}

void Write(fuse_req_t req, fuse_ino_t node, const char* buf, size_t size,
           off_t off, fuse_file_info* fi) {
  WriteData(
      Self(req), req, Adapter::ToInode(node),
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(buf), size),
      off, fi);
}

// libfuse calls this instead of Write. The data is in memory unless it was
// spliced from /dev/fuse into a pipe; then it is copied out first.
void WriteBuf(fuse_req_t req, fuse_ino_t node, fuse_bufvec* bufv, off_t off,
              fuse_file_info* fi) {
  Adapter& self = Self(req);
  const InodeNumber ino = Adapter::ToInode(node);
  if (bufv->count == 1 && bufv->idx == 0 &&
      !(bufv->buf[0].flags & FUSE_BUF_IS_FD) &&
      bufv->off <= bufv->buf[0].size) {
    const fuse_buf& b = bufv->buf[0];
    std::span<const uint8_t> data(
        static_cast<const uint8_t*>(b.mem) + bufv->off, b.size - bufv->off);
    bufv->off = b.size;  // consumed
    WriteData(self, req, ino, data, off, fi);
    return;
  }
  const size_t size = fuse_buf_size(bufv);
  if (size > kMaxWrite) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  thread_local std::vector<uint8_t> buffer;
  if (buffer.size() < size) buffer.resize(size);
  fuse_bufvec dst = FUSE_BUFVEC_INIT(size);
  dst.buf[0].mem = buffer.data();
  const ssize_t copied =
      fuse_buf_copy(&dst, bufv, static_cast<fuse_buf_copy_flags>(0));
  if (copied < 0) {
    self.ReplyError(req,
                    ext4::ErrnoError(static_cast<int>(-copied),
                                     "cannot take the written data"),
                    ino, "write");
    return;
  }
  WriteData(
      self, req, ino,
      std::span<const uint8_t>(buffer.data(), static_cast<size_t>(copied)), off,
      fi);
}

void Fallocate(fuse_req_t req, fuse_ino_t node, int mode, off_t offset,
               off_t length, fuse_file_info*) {
  Adapter& self = Self(req);
  const InodeNumber ino = Adapter::ToInode(node);
  if (offset < 0 || length <= 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  if (absl::Status s =
          self.fs().Allocate(ino, mode, static_cast<uint64_t>(offset),
                             static_cast<uint64_t>(length));
      !s.ok()) {
    self.ReplyError(req, s, ino, "fallocate");
    return;
  }
  fuse_reply_err(req, 0);
}

// SEEK_DATA and SEEK_HOLE; the kernel answers SEEK_SET, SEEK_CUR and SEEK_END
// itself.
void Lseek(fuse_req_t req, fuse_ino_t node, off_t off, int whence,
           fuse_file_info*) {
  Adapter& self = Self(req);
  const InodeNumber ino = Adapter::ToInode(node);
  if (whence != SEEK_DATA && whence != SEEK_HOLE) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  if (off < 0) {
    fuse_reply_err(req, ENXIO);
    return;
  }
  // The kernel asks without writing its cached data back first: while the
  // file is open for writing, data the engine has not seen would look like a
  // hole (or lie past the end), and a sparse-aware copy would lose it. Say
  // "not supported" (cp, tar and qemu-img then read everything) rather than
  // ENOSYS, which would turn lseek off for the whole mount.
  if (self.MayHaveUnwrittenData(ino)) {
    fuse_reply_err(req, EOPNOTSUPP);
    return;
  }
  absl::StatusOr<uint64_t> result =
      self.fs().Seek(ino, static_cast<uint64_t>(off), whence);
  if (!result.ok()) {
    self.ReplyError(req, result.status(), ino, "lseek");
    return;
  }
  if (*result > static_cast<uint64_t>(std::numeric_limits<off_t>::max())) {
    fuse_reply_err(req, EOVERFLOW);
    return;
  }
  fuse_reply_lseek(req, static_cast<off_t>(*result));
}

// Copies through the engine in chunks; the kernel has written back both
// ranges from its cache before asking. Answers the bytes copied (fewer at the
// end of the source, or before an error that then comes back on the next
// call).
void CopyFileRange(fuse_req_t req, fuse_ino_t node_in, off_t off_in,
                   fuse_file_info*, fuse_ino_t node_out, off_t off_out,
                   fuse_file_info*, size_t len, int flags) {
  Adapter& self = Self(req);
  const InodeNumber in = Adapter::ToInode(node_in);
  const InodeNumber out = Adapter::ToInode(node_out);
  if (flags != 0 || off_in < 0 || off_out < 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  constexpr uint64_t kOffMax = std::numeric_limits<off_t>::max();
  uint64_t length = std::min<uint64_t>(len, kMaxCopyPerRequest);
  length = std::min(length, kOffMax - static_cast<uint64_t>(off_in));
  length = std::min(length, kOffMax - static_cast<uint64_t>(off_out));
  const uint64_t src = static_cast<uint64_t>(off_in);
  const uint64_t dst = static_cast<uint64_t>(off_out);
  if (in == out && src < dst + length && dst < src + length) {
    fuse_reply_err(req, EINVAL);  // overlapping ranges, as the kernel says
    return;
  }
  const ext4::Credentials who = Caller(self, req);
  thread_local std::vector<uint8_t> buffer;
  if (buffer.size() < kMaxWrite) buffer.resize(kMaxWrite);
  uint64_t done = 0;
  absl::Status error;
  InodeNumber error_ino = in;
  while (done < length) {
    const size_t chunk =
        static_cast<size_t>(std::min<uint64_t>(kMaxWrite, length - done));
    absl::StatusOr<size_t> n = self.fs().Read(
        in, src + done, std::span<uint8_t>(buffer.data(), chunk));
    if (!n.ok()) {
      error = n.status();
      break;
    }
    const size_t got = std::min(*n, chunk);
    if (got == 0) break;  // end of the source
    absl::StatusOr<size_t> w = self.fs().Write(
        out, dst + done, std::span<const uint8_t>(buffer.data(), got), who);
    if (!w.ok()) {
      error = w.status();
      error_ino = out;
      break;
    }
    const size_t put = std::min(*w, got);
    done += put;
    if (put < got || got < chunk) break;
  }
  if (done == 0 && !error.ok()) {
    self.ReplyError(req, error, error_ino, "copy_file_range");
    return;
  }
  fuse_reply_write(req, static_cast<size_t>(done));
}

fuse_lowlevel_ops MakeOperations() {
  fuse_lowlevel_ops ops{};
  ops.init = Init;
  ops.destroy = Destroy;
  ops.lookup = Lookup;
  ops.forget = Forget;
  ops.forget_multi = ForgetMulti;
  ops.getattr = GetAttr;
  ops.setattr = SetAttr;
  ops.readlink = ReadLink;
  ops.mknod = MakeNode;
  ops.mkdir = MakeDirectory;
  ops.unlink = Unlink;
  ops.rmdir = RemoveDirectory;
  ops.symlink = Symlink;
  ops.rename = Rename;
  ops.link = Link;
  ops.access = Access;
  ops.create = Create;
  ops.open = Open;
  ops.read = Read;
  ops.write = Write;
  ops.write_buf = WriteBuf;
  ops.flush = Flush;
  ops.release = Release;
  ops.fsync = Fsync;
  ops.fallocate = Fallocate;
  ops.lseek = Lseek;
  ops.copy_file_range = CopyFileRange;
  ops.opendir = OpenDir;
  ops.readdir = ReadDir;
  ops.readdirplus = ReadDirPlus;
  ops.releasedir = ReleaseDir;
  ops.fsyncdir = FsyncDir;
  ops.statfs = StatFs;
  ops.setxattr = SetXattr;
  ops.getxattr = GetXattr;
  ops.listxattr = ListXattr;
  ops.removexattr = RemoveXattr;
#if FUSE_VERSION >= FUSE_MAKE_VERSION(3, 17)
  ops.tmpfile = TmpFile;
#endif
  return ops;
}

}  // namespace

Adapter::Adapter(ext4::Filesystem& fs, const AdapterOptions& options)
    : fs_(fs), options_(options), read_only_(fs.read_only()) {}

const fuse_lowlevel_ops& Adapter::Operations() {
  static const fuse_lowlevel_ops ops = MakeOperations();
  return ops;
}

void Adapter::ReplyError(fuse_req_t req, const absl::Status& status,
                         InodeNumber ino, std::string_view op) {
  int err = ext4::ErrnoOf(status);
  if (err <= 0) err = EIO;
  // The engine records corruption in the superblock and logs it (once).
  if (err == EUCLEAN || err == EIO) fs().NoteError(status, ino);
  (void)op;
  fuse_reply_err(req, err);
}

void Adapter::Log(InodeNumber ino, std::string_view op, std::string_view what) {
  const std::string line =
      absl::StrCat(ino != 0 ? absl::StrCat("inode ", ino, ": ") : std::string(),
                   absl::string_view(op.data(), op.size()), ": ",
                   absl::string_view(what.data(), what.size()));
  if (log_to_syslog_.load(std::memory_order_relaxed)) {
    syslog(LOG_ERR, "%s", line.c_str());
  } else {
    std::fprintf(stderr, "e4fs: %s\n", line.c_str());
  }
}

void Adapter::NoteOpen(InodeNumber ino, int flags) {
  if (!Writable(flags) || !writeback_cache()) return;
  absl::MutexLock lock(&writers_mu_);
  ++writers_[ino];
}

void Adapter::NoteRelease(InodeNumber ino, int flags) {
  if (!Writable(flags) || !writeback_cache()) return;
  absl::MutexLock lock(&writers_mu_);
  auto it = writers_.find(ino);
  if (it == writers_.end()) return;
  if (--it->second == 0) writers_.erase(it);
}

bool Adapter::MayHaveUnwrittenData(InodeNumber ino) {
  if (!writeback_cache()) return false;
  absl::MutexLock lock(&writers_mu_);
  return writers_.contains(ino);
}

}  // namespace e4fs
