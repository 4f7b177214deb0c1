#include "fuse/adapter.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <memory>
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
  *e = {};
  e->ino = Adapter::ToNode(ino);
  // The kernel expects generation 0 for its root.
  e->generation = ino == ext4::kRootInode ? 0 : attr->generation;
  FillStat(*attr, ino, &e->attr);
  e->attr_timeout = self.options().attr_timeout;
  e->entry_timeout = self.options().entry_timeout;
  return absl::OkStatus();
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

// ---- Session ----

void Init(void* userdata, fuse_conn_info* conn) {
  Adapter& self = *static_cast<Adapter*>(userdata);
  auto want = [conn](unsigned cap) {
    if (conn->capable & cap) conn->want |= cap;
  };
  want(FUSE_CAP_ASYNC_READ);
  want(FUSE_CAP_READDIRPLUS);
  want(FUSE_CAP_CACHE_SYMLINKS);
  want(FUSE_CAP_PARALLEL_DIROPS);
  want(FUSE_CAP_SPLICE_WRITE);
  want(FUSE_CAP_SPLICE_MOVE);
  if (self.options().posix_acl) want(FUSE_CAP_POSIX_ACL);
  // No write path yet: the kernel must not accept writes into its cache.
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  const unsigned readahead = self.options().max_readahead;
  if (readahead != 0 && readahead < conn->max_readahead) {
    conn->max_readahead = readahead;
  }
  conn->time_gran = 1;  // ext4 keeps nanoseconds (with extra_isize)
}

void Destroy(void*) {}

// ---- Names and attributes ----

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Adapter& self = Self(req);
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
  fuse_reply_err(req, (mask & W_OK) && Self(req).read_only() ? EROFS : 0);
}

// ---- Files ----

void Open(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  Adapter& self = Self(req);
  // There is no write path yet, whatever the mount asked for.
  if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
    fuse_reply_err(req, EROFS);
    return;
  }
  // This server is the only writer: cached pages stay valid across opens.
  fi->keep_cache = 1;
  if (self.read_only()) fi->noflush = 1;
  fuse_reply_open(req, fi);
}

void Read(fuse_req_t req, fuse_ino_t node, size_t size, off_t off,
          fuse_file_info*) {
  Adapter& self = Self(req);
  const InodeNumber ino = Adapter::ToInode(node);
  if (off < 0) {
    fuse_reply_err(req, EINVAL);
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

void Release(fuse_req_t req, fuse_ino_t, fuse_file_info*) {
  fuse_reply_err(req, 0);
}

void Flush(fuse_req_t req, fuse_ino_t, fuse_file_info*) {
  fuse_reply_err(req, 0);
}

void Fsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
  fuse_reply_err(req, 0);
}

// ---- Directories ----

void OpenDir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  if (Self(req).read_only()) {
    // Listings cannot change: the kernel may keep them.
    fi->cache_readdir = 1;
    fi->keep_cache = 1;
  }
  fuse_reply_open(req, fi);
}

void ReadDirCommon(fuse_req_t req, fuse_ino_t node, size_t size, off_t off,
                   bool plus) {
  Adapter& self = Self(req);
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
          self.Log(dir, op, "skipped an entry with an invalid name");
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

void FsyncDir(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
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
  if (self.read_only()) sv.f_flag = ST_RDONLY;
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

// ---- Everything that would change the image: not yet. ----

void ReplyReadOnly(fuse_req_t req) { fuse_reply_err(req, EROFS); }

fuse_lowlevel_ops MakeOperations() {
  fuse_lowlevel_ops ops{};
  ops.init = Init;
  ops.destroy = Destroy;
  ops.lookup = Lookup;
  ops.forget = Forget;
  ops.forget_multi = ForgetMulti;
  ops.getattr = GetAttr;
  ops.readlink = ReadLink;
  ops.access = Access;
  ops.open = Open;
  ops.read = Read;
  ops.flush = Flush;
  ops.release = Release;
  ops.fsync = Fsync;
  ops.opendir = OpenDir;
  ops.readdir = ReadDir;
  ops.readdirplus = ReadDirPlus;
  ops.releasedir = ReleaseDir;
  ops.fsyncdir = FsyncDir;
  ops.statfs = StatFs;
  ops.getxattr = GetXattr;
  ops.listxattr = ListXattr;

  ops.setattr = [](fuse_req_t req, fuse_ino_t, struct stat*, int,
                   fuse_file_info*) { ReplyReadOnly(req); };
  ops.mknod = [](fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) {
    ReplyReadOnly(req);
  };
  ops.mkdir = [](fuse_req_t req, fuse_ino_t, const char*, mode_t) {
    ReplyReadOnly(req);
  };
  ops.unlink = [](fuse_req_t req, fuse_ino_t, const char*) {
    ReplyReadOnly(req);
  };
  ops.rmdir = [](fuse_req_t req, fuse_ino_t, const char*) {
    ReplyReadOnly(req);
  };
  ops.symlink = [](fuse_req_t req, const char*, fuse_ino_t, const char*) {
    ReplyReadOnly(req);
  };
  ops.rename = [](fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t,
                  const char*, unsigned int) { ReplyReadOnly(req); };
  ops.link = [](fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) {
    ReplyReadOnly(req);
  };
  ops.write = [](fuse_req_t req, fuse_ino_t, const char*, size_t, off_t,
                 fuse_file_info*) { ReplyReadOnly(req); };
  ops.create = [](fuse_req_t req, fuse_ino_t, const char*, mode_t,
                  fuse_file_info*) { ReplyReadOnly(req); };
  ops.fallocate = [](fuse_req_t req, fuse_ino_t, int, off_t, off_t,
                     fuse_file_info*) { ReplyReadOnly(req); };
  ops.setxattr = [](fuse_req_t req, fuse_ino_t, const char*, const char*,
                    size_t, int) { ReplyReadOnly(req); };
  ops.removexattr = [](fuse_req_t req, fuse_ino_t, const char*) {
    ReplyReadOnly(req);
  };
  ops.copy_file_range = [](fuse_req_t req, fuse_ino_t, off_t, fuse_file_info*,
                           fuse_ino_t, off_t, fuse_file_info*, size_t,
                           int) { ReplyReadOnly(req); };
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
  if (err == EUCLEAN || err == EIO) Log(ino, op, ToStd(status.message()));
  fuse_reply_err(req, err);
}

void Adapter::Log(InodeNumber ino, std::string_view op, std::string_view what) {
  const std::string line =
      absl::StrCat("inode ", ino, ": ", absl::string_view(op.data(), op.size()),
                   ": ", absl::string_view(what.data(), what.size()));
  if (log_to_syslog_.load(std::memory_order_relaxed)) {
    syslog(LOG_ERR, "%s", line.c_str());
  } else {
    std::fprintf(stderr, "e4fs: %s\n", line.c_str());
  }
}

}  // namespace e4fs
