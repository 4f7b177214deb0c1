#!/usr/bin/env python3
"""Compares a source tree with a mounted filesystem that should hold the same tree.

    compare_tree.py [options] SRC MNT
    compare_tree.py --self-test
    compare_tree.py --digest FILE...

Walks both trees without following symlinks (os.lstat) and compares, entry by
entry: names, file types, permission bits (with setuid/setgid/sticky),
uid/gid, sizes (not for directories), mtimes, nlink, contents, symlink
targets, device numbers, extended attributes and hard-link structure. It also
checks that the type readdir reports (d_type) and the type os.scandir reports
agree with lstat, and that readdir's d_ino is the st_ino lstat returns.

Rules:
  * The two roots themselves are not compared (mke2fs -d does not copy the
    source root's attributes), only what they contain.
  * A top-level lost+found in MNT that SRC lacks is ignored (and not counted
    in the root's link count).
  * Extended attributes: every namespace is compared except security.* and
    system.* (those depend on the LSM and ACL support of each filesystem, not
    on the image), unless --xattr-all is given.
  * Hard links: entries that share an inode in SRC must share one st_ino in MNT,
    entries that do not must not (one MNT inode per SRC inode and back).
  * Contents are compared by a sparse-aware digest: the file is cut in 64 KiB
    blocks, all-zero blocks are skipped, SEEK_DATA/SEEK_HOLE is used where the
    filesystem supports it; a hole and written zeros compare equal.
  * mtimes: --mtime-precision=ns (default) compares nanoseconds;
    --mtime-precision=s compares whole seconds (ext2/3/4 with 128-byte inodes
    stores no nanoseconds); --mtime-precision=none leaves them out. --mtime-32bit expects SRC seconds wrapped to a
    signed 32-bit value (128-byte inodes cannot store dates past 2038).

Prints every difference and exits 1 if there is any, 0 if the trees match,
2 on a usage error.

--digest prints the sparse-aware sha256 of each FILE (equal digests mean
equal bytes; a 1 GiB sparse image is hashed in a fraction of a second).
"""

import argparse
import ctypes
import ctypes.util
import errno
import hashlib
import os
import re
import shutil
import stat
import sys
import tempfile

BLOCK = 64 * 1024
CHUNK = 1024 * 1024
ZERO_BLOCK = bytes(BLOCK)
ZERO_CHUNK = bytes(CHUNK)

DT_NAMES = {0: "DT_UNKNOWN", 1: "DT_FIFO", 2: "DT_CHR", 4: "DT_DIR", 6: "DT_BLK",
            8: "DT_REG", 10: "DT_LNK", 12: "DT_SOCK", 14: "DT_WHT"}
IFMT_TO_DT = {stat.S_IFIFO: 1, stat.S_IFCHR: 2, stat.S_IFDIR: 4, stat.S_IFBLK: 6,
              stat.S_IFREG: 8, stat.S_IFLNK: 10, stat.S_IFSOCK: 12}
TYPE_NAMES = {stat.S_IFIFO: "fifo", stat.S_IFCHR: "char device", stat.S_IFDIR: "directory",
              stat.S_IFBLK: "block device", stat.S_IFREG: "regular file",
              stat.S_IFLNK: "symlink", stat.S_IFSOCK: "socket"}


def type_name(mode):
    return TYPE_NAMES.get(stat.S_IFMT(mode), "type %o" % stat.S_IFMT(mode))


# --- readdir through libc, to see d_type as the filesystem reports it --------

class _Dirent64(ctypes.Structure):
    _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64),
                ("d_reclen", ctypes.c_ushort), ("d_type", ctypes.c_ubyte),
                ("d_name", ctypes.c_char * 256)]


_libc = None


def _get_libc():
    global _libc
    if _libc is None:
        lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        lib.opendir.restype = ctypes.c_void_p
        lib.opendir.argtypes = [ctypes.c_char_p]
        lib.readdir64.restype = ctypes.POINTER(_Dirent64)
        lib.readdir64.argtypes = [ctypes.c_void_p]
        lib.closedir.argtypes = [ctypes.c_void_p]
        _libc = lib
    return _libc


def read_dir(path):
    """Returns {name: (d_type, d_ino)} for a directory (bytes path and names)."""
    libc = _get_libc()
    d = libc.opendir(path)
    if not d:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)
    out = {}
    try:
        while True:
            ctypes.set_errno(0)
            ent = libc.readdir64(d)
            if not ent:
                e = ctypes.get_errno()
                if e:
                    raise OSError(e, os.strerror(e), path)
                break
            name = ent.contents.d_name  # c_char array: bytes up to the NUL
            if name in (b".", b".."):
                continue
            if name in out:
                raise OSError(errno.EIO, "readdir returned %r twice" % name, path)
            out[name] = (ent.contents.d_type, ent.contents.d_ino)
    finally:
        libc.closedir(d)
    return out


# --- content digest ---------------------------------------------------------

def _data_regions(fd, size):
    """Yields (start, end) ranges that may hold data; holes are left out when
    the filesystem reports them, otherwise the whole file is one region."""
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:
                return
            if pos == 0 and e.errno in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS):
                yield (0, size)
                return
            raise
        try:
            end = os.lseek(fd, start, os.SEEK_HOLE)
        except OSError:
            end = size
        end = min(end, size)
        if end <= start:
            end = size
        yield (start, end)
        pos = end


def content_digest(path, size):
    """sha256 over (offset, block) of every 64 KiB block that is not all zero,
    then the size; the same for a hole and for written zeros."""
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NOCTTY)
    try:
        next_block = 0
        for start, end in _data_regions(fd, size):
            first = max(start // BLOCK, next_block)
            last = (end + BLOCK - 1) // BLOCK  # exclusive
            off = first * BLOCK
            stop = min(last * BLOCK, size)
            while off < stop:
                want = min(CHUNK, stop - off)
                data = os.pread(fd, want, off)
                if len(data) != want:
                    raise OSError(errno.EIO, "short read: %d bytes at %d, wanted %d"
                                  % (len(data), off, want), path)
                if not (want == CHUNK and data == ZERO_CHUNK):
                    for i in range(0, want, BLOCK):
                        blk = data[i:i + BLOCK]
                        if blk.count(0) != len(blk):
                            h.update((off + i).to_bytes(8, "little"))
                            h.update(blk)
                off += want
            next_block = max(next_block, last)
        tail = os.pread(fd, 1, size)
        if tail:
            raise OSError(errno.EIO, "read past end of file (size %d) returned data" % size, path)
    finally:
        os.close(fd)
    h.update(b"size:%d" % size)
    return h.hexdigest()


# --- comparison -------------------------------------------------------------

def wrap32(sec):
    return ((sec + (1 << 31)) % (1 << 32)) - (1 << 31)


class Comparer:
    def __init__(self, src, mnt, mtime_precision="ns", mtime_32bit=False,
                 xattr_all=False, check_d_ino=True, out=sys.stdout):
        self.src = os.fsencode(src)
        self.mnt = os.fsencode(mnt)
        self.mtime_precision = mtime_precision
        self.mtime_32bit = mtime_32bit
        self.xattr_all = xattr_all
        self.check_d_ino = check_d_ino
        self.out = out
        self.diffs = 0
        self.entries = 0
        # SRC (st_dev, st_ino) -> set of MNT st_ino, and back, with example paths.
        self.src_to_mnt = {}
        self.mnt_to_src = {}
        self.paths_of_src = {}
        self.kinds = {}  # kind of difference -> [count, first path]

    def diff(self, rel, what):
        self.diffs += 1
        shown = os.fsdecode(rel) if rel else "/"
        print("DIFF %s: %s" % (shown, what), file=self.out)
        kind = re.sub(r"\d+", "N", what.split(":")[0])
        k = self.kinds.setdefault(kind, [0, shown])
        k[0] += 1

    # xattrs -----------------------------------------------------------------
    def xattrs(self, path):
        try:
            names = os.listxattr(path, follow_symlinks=False)
        except OSError as e:
            if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
                return {}
            raise
        out = {}
        for n in names:
            if not self.xattr_all and (n.startswith("security.") or n.startswith("system.")):
                continue
            try:
                out[n] = os.getxattr(path, n, follow_symlinks=False)
            except OSError as e:
                out[n] = "<error: %s>" % os.strerror(e.errno)
        return out

    def compare_xattrs(self, rel, sp, mp):
        try:
            sx = self.xattrs(sp)
        except OSError as e:
            self.diff(rel, "listxattr failed on SRC: %s" % e)
            return
        try:
            mx = self.xattrs(mp)
        except OSError as e:
            self.diff(rel, "listxattr failed: %s" % e)
            return
        for n in sorted(set(sx) | set(mx)):
            if n not in mx:
                self.diff(rel, "xattr %s missing" % n)
            elif n not in sx:
                self.diff(rel, "xattr %s unexpected (value %r)" % (n, _short(mx[n])))
            elif sx[n] != mx[n]:
                self.diff(rel, "xattr %s differs: src %d bytes %r, mnt %d bytes %r"
                          % (n, len(sx[n]), _short(sx[n]), len(mx[n]), _short(mx[n])))

    # one entry ----------------------------------------------------------------
    def expected_mtime(self, st):
        ns = st.st_mtime_ns
        sec, frac = divmod(ns, 10**9)
        if self.mtime_32bit:
            sec = wrap32(sec)
        if self.mtime_precision == "s":
            frac = 0
        return sec * 10**9 + frac

    def observed_mtime(self, st):
        ns = st.st_mtime_ns
        if self.mtime_precision == "s":
            ns -= ns % 10**9
        return ns

    def compare_entry(self, rel, sp, mp, ss, ms, is_root=False):
        self.entries += 1
        self.record_inode(rel, ss, ms)
        if stat.S_IFMT(ss.st_mode) != stat.S_IFMT(ms.st_mode):
            self.diff(rel, "type: src %s, mnt %s" % (type_name(ss.st_mode), type_name(ms.st_mode)))
            return False
        if is_root:
            return True
        if stat.S_IMODE(ss.st_mode) != stat.S_IMODE(ms.st_mode):
            self.diff(rel, "mode: src %04o, mnt %04o" % (stat.S_IMODE(ss.st_mode), stat.S_IMODE(ms.st_mode)))
        if ss.st_uid != ms.st_uid:
            self.diff(rel, "uid: src %d, mnt %d" % (ss.st_uid, ms.st_uid))
        if ss.st_gid != ms.st_gid:
            self.diff(rel, "gid: src %d, mnt %d" % (ss.st_gid, ms.st_gid))
        if ss.st_nlink != ms.st_nlink:
            self.diff(rel, "nlink: src %d, mnt %d" % (ss.st_nlink, ms.st_nlink))
        want, got = self.expected_mtime(ss), self.observed_mtime(ms)
        if self.mtime_precision != "none" and want != got:
            self.diff(rel, "mtime: src %s, mnt %s (precision %s%s)"
                      % (_ts(want), _ts(got), self.mtime_precision, ", 32-bit" if self.mtime_32bit else ""))
        kind = stat.S_IFMT(ss.st_mode)
        if kind != stat.S_IFDIR and ss.st_size != ms.st_size:
            self.diff(rel, "size: src %d, mnt %d" % (ss.st_size, ms.st_size))
        elif kind == stat.S_IFREG and ss.st_size > 0:
            try:
                a = content_digest(sp, ss.st_size)
            except OSError as e:
                self.diff(rel, "cannot read SRC: %s" % e)
                a = None
            try:
                b = content_digest(mp, ms.st_size)
            except OSError as e:
                self.diff(rel, "read failed: %s" % e)
                b = None
            if a is not None and b is not None and a != b:
                self.diff(rel, "contents differ: sparse-aware sha256 %s vs %s" % (a[:16], b[:16]))
        if kind == stat.S_IFLNK:
            try:
                want_t, got_t = os.readlink(sp), os.readlink(mp)
                if want_t != got_t:
                    self.diff(rel, "symlink target: src %r, mnt %r" % (want_t, got_t))
            except OSError as e:
                self.diff(rel, "readlink failed: %s" % e)
        if kind in (stat.S_IFCHR, stat.S_IFBLK):
            sr = (os.major(ss.st_rdev), os.minor(ss.st_rdev))
            mr = (os.major(ms.st_rdev), os.minor(ms.st_rdev))
            if sr != mr:
                self.diff(rel, "rdev: src %d:%d, mnt %d:%d" % (sr + mr))
        return True

    def record_inode(self, rel, ss, ms):
        key = (ss.st_dev, ss.st_ino)
        self.src_to_mnt.setdefault(key, set()).add(ms.st_ino)
        self.mnt_to_src.setdefault(ms.st_ino, set()).add(key)
        self.paths_of_src.setdefault(key, []).append(rel)

    def check_dirents(self, rel, path, ents, side):
        """d_type from readdir and os.scandir's view must agree with lstat."""
        scan = {}
        try:
            with os.scandir(path) as it:
                for e in it:
                    scan[e.name] = e
        except OSError as e:
            self.diff(rel, "%sscandir failed: %s" % (side, e))
            return {}
        if set(scan) != set(ents):
            self.diff(rel, "%sscandir and readdir disagree on names" % side)
        stats = {}
        for name, (dtype, dino) in ents.items():
            p = os.path.join(path, name)
            r = os.path.join(rel, name) if rel else name
            try:
                st = os.lstat(p)
            except OSError as e:
                self.diff(r, "%slstat failed: %s" % (side, e))
                continue
            stats[name] = st
            fmt = stat.S_IFMT(st.st_mode)
            if dtype != IFMT_TO_DT.get(fmt):
                self.diff(r, "%sd_type %s but lstat says %s" % (side, DT_NAMES.get(dtype, dtype), type_name(st.st_mode)))
            if self.check_d_ino and dino != st.st_ino:
                self.diff(r, "%sd_ino %d but st_ino %d" % (side, dino, st.st_ino))
            e = scan.get(name)
            if e is not None:
                got = (e.is_dir(follow_symlinks=False), e.is_file(follow_symlinks=False),
                       e.is_symlink())
                want = (fmt == stat.S_IFDIR, fmt == stat.S_IFREG, fmt == stat.S_IFLNK)
                if got != want:
                    self.diff(r, "%sos.scandir is_dir/is_file/is_symlink %s but lstat says %s"
                              % (side, got, type_name(st.st_mode)))
        return stats

    def walk(self, rel, sdir, mdir, ss, ms, is_root=False):
        try:
            sents = read_dir(sdir)
        except OSError as e:
            self.diff(rel, "cannot list SRC: %s" % e)
            return
        try:
            ments = read_dir(mdir)
        except OSError as e:
            self.diff(rel, "readdir failed: %s" % e)
            return
        sstats = self.check_dirents(rel, sdir, sents, "SRC: ")
        mstats = self.check_dirents(rel, mdir, ments, "")
        if is_root and b"lost+found" in ments and b"lost+found" not in sents:
            del ments[b"lost+found"]
            # The ignored lost+found holds a link to the root ("..").
            if ms.st_nlink != ss.st_nlink + 1:
                self.diff(rel, "nlink: src %d (+1 for lost+found), mnt %d" % (ss.st_nlink, ms.st_nlink))
        elif is_root and ms.st_nlink != ss.st_nlink:
            self.diff(rel, "nlink: src %d, mnt %d" % (ss.st_nlink, ms.st_nlink))
        for name in sorted(set(sents) | set(ments)):
            r = os.path.join(rel, name) if rel else name
            if name not in ments:
                self.diff(r, "missing")
                continue
            if name not in sents:
                self.diff(r, "unexpected entry")
                continue
            if name not in sstats or name not in mstats:
                continue
            sp, mp = os.path.join(sdir, name), os.path.join(mdir, name)
            s_st, m_st = sstats[name], mstats[name]
            if not self.compare_entry(r, sp, mp, s_st, m_st):
                continue
            self.compare_xattrs(r, sp, mp)
            if stat.S_ISDIR(s_st.st_mode):
                self.walk(r, sp, mp, s_st, m_st)

    def check_hard_links(self):
        for key, inos in self.src_to_mnt.items():
            if len(inos) > 1:
                paths = ", ".join(os.fsdecode(p) for p in self.paths_of_src[key])
                self.diff(self.paths_of_src[key][0],
                          "hard links split: one SRC inode (%s) shows as %d MNT inodes %s"
                          % (paths, len(inos), sorted(inos)))
        for ino, keys in self.mnt_to_src.items():
            if len(keys) > 1:
                paths = ", ".join(os.fsdecode(self.paths_of_src[k][0] or b"/") for k in keys)
                self.diff(self.paths_of_src[next(iter(keys))][0],
                          "distinct SRC inodes share MNT st_ino %d: %s" % (ino, paths))

    def run(self):
        try:
            ss = os.lstat(self.src)
            ms = os.lstat(self.mnt)
        except OSError as e:
            print("compare_tree: %s" % e, file=sys.stderr)
            return 2
        if not stat.S_ISDIR(ss.st_mode) or not stat.S_ISDIR(ms.st_mode):
            print("compare_tree: both arguments must be directories", file=sys.stderr)
            return 2
        self.compare_entry(b"", self.src, self.mnt, ss, ms, is_root=True)
        self.walk(b"", self.src, self.mnt, ss, ms, is_root=True)
        self.check_hard_links()
        if self.diffs:
            for kind, (count, first) in sorted(self.kinds.items(), key=lambda kv: -kv[1][0]):
                print("SUMMARY %6d x %s (first: %s)" % (count, kind, first), file=self.out)
            print("compare_tree: %d difference(s) in %d entries" % (self.diffs, self.entries), file=self.out)
            return 1
        print("compare_tree: trees match (%d entries)" % self.entries, file=self.out)
        return 0


def _short(v):
    if isinstance(v, bytes) and len(v) > 40:
        return v[:40] + b"..."
    return v


def _ts(ns):
    sec, frac = divmod(ns, 10**9)
    return "%d.%09d" % (sec, frac)


# --- self test ----------------------------------------------------------------

def _build_sample(root):
    """A small tree with every kind of entry the comparer looks at."""
    j = lambda *p: os.path.join(root, *p)
    os.makedirs(j("d", "sub"))
    with open(j("d", "file"), "wb") as f:
        f.write(b"hello\n" * 100)
    with open(j("sparse"), "wb") as f:
        f.write(b"start")
        f.seek(3 * 1024 * 1024)
        f.write(b"end")
    with open(j("zeros"), "wb") as f:  # written zeros: must equal the same-size hole
        f.write(bytes(200 * 1024))
    with open(j("hole"), "wb") as f:  # all hole
        f.truncate(200 * 1024)
    with open(j("linked"), "wb") as f:
        f.write(b"linked\n")
    os.link(j("linked"), j("d", "linked2"))
    for n in ("p1", "p2"):  # two pairs of links with the same contents
        with open(j(n), "wb") as f:
            f.write(b"pair\n")
        os.link(j(n), j(n + "b"))
    os.symlink("d/file", j("sym"))
    os.symlink("nowhere", j("dangling"))
    os.mkfifo(j("fifo"))
    os.chmod(j("d", "file"), 0o4755)
    os.setxattr(j("d", "file"), "user.k", b"v")
    # Devices and foreign owners need privileges a sandbox may not grant.
    try:
        os.mknod(j("chr"), stat.S_IFCHR | 0o644, os.makedev(1, 3))
    except OSError:
        pass
    try:
        os.chown(j("d", "sub"), 1234, 5678)
    except OSError:
        pass
    for dirpath, dirs, files in os.walk(root, topdown=False):
        for n in files + dirs:
            os.utime(os.path.join(dirpath, n), ns=(10**18, 10**18 + 5), follow_symlinks=False)


def _mutations(sample):
    """(description, function(root)) pairs; each must make the comparison fail."""
    def write(path, data, mode="r+b", at=0):
        with open(path, mode) as f:
            f.seek(at)
            f.write(data)

    def keep_mtime(path, fn):
        st = os.lstat(path)
        fn()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)

    def same_mtime(root, rel):
        os.utime(os.path.join(root, rel), ns=(10**18, 10**18 + 5), follow_symlinks=False)

    def break_link(r):
        p = os.path.join(r, "d", "linked2")
        os.unlink(p)
        shutil.copyfile(os.path.join(r, "linked"), p)
        same_mtime(r, "d/linked2")
        same_mtime(r, "d")

    def cross_links(r):
        # Same names, contents and link counts; only the grouping differs.
        j = lambda n: os.path.join(r, n)
        os.unlink(j("p1b"))
        os.unlink(j("p2b"))
        os.link(j("p2"), j("p1b"))
        os.link(j("p1"), j("p2b"))
        same_mtime(r, ".")

    def add_file(r):
        open(os.path.join(r, "d", "extra"), "wb").close()
        same_mtime(r, "d/extra")
        same_mtime(r, "d")

    def remove_file(r):
        os.unlink(os.path.join(r, "sym"))
        same_mtime(r, ".")

    def retype(r):
        p = os.path.join(r, "dangling")
        os.unlink(p)
        os.mkfifo(p)
        same_mtime(r, "dangling")
        same_mtime(r, ".")

    def retarget(r):
        p = os.path.join(r, "sym")
        os.unlink(p)
        os.symlink("d/filX", p)
        same_mtime(r, "sym")
        same_mtime(r, ".")

    muts = [
        ("one byte of content", lambda r: keep_mtime(os.path.join(r, "d", "file"),
                                                      lambda: write(os.path.join(r, "d", "file"), b"J"))),
        ("a byte past the hole", lambda r: keep_mtime(os.path.join(r, "sparse"),
                                                       lambda: write(os.path.join(r, "sparse"), b"E", at=3 * 1024 * 1024))),
        ("data written into a hole", lambda r: keep_mtime(os.path.join(r, "hole"),
                                                           lambda: write(os.path.join(r, "hole"), b"x", at=100000))),
        ("size", lambda r: keep_mtime(os.path.join(r, "zeros"), lambda: os.truncate(os.path.join(r, "zeros"), 1))),
        ("mode", lambda r: os.chmod(os.path.join(r, "d", "file"), 0o755)),
        ("mtime by 1 ns", lambda r: os.utime(os.path.join(r, "linked"), ns=(10**18, 10**18 + 6))),
        ("symlink target", retarget),
        ("xattr value", lambda r: os.setxattr(os.path.join(r, "d", "file"), "user.k", b"w")),
        ("xattr removed", lambda r: os.removexattr(os.path.join(r, "d", "file"), "user.k")),
        ("xattr added", lambda r: os.setxattr(os.path.join(r, "d"), "user.new", b"")),
        ("extra entry", add_file),
        ("missing entry", remove_file),
        ("type", retype),
        ("hard link broken", break_link),
        ("hard link grouping", cross_links),
    ]
    if os.path.exists(os.path.join(sample, "chr")):
        def redev(r):
            p = os.path.join(r, "chr")
            os.unlink(p)
            os.mknod(p, stat.S_IFCHR | 0o644, os.makedev(1, 5))
            same_mtime(r, "chr")
            same_mtime(r, ".")
        muts.append(("rdev", redev))
    if os.lstat(os.path.join(sample, "d", "sub")).st_uid == 1234:
        muts.append(("uid", lambda r: os.chown(os.path.join(r, "d", "sub"), 1235, 5678, follow_symlinks=False)))
    return muts


def self_test():
    """Proves the comparer passes equal trees and fails on each kind of change."""
    import io
    failures = 0
    with tempfile.TemporaryDirectory(prefix="compare_tree_selftest.") as tmp:
        a = os.path.join(tmp, "a")
        _build_sample(a)
        b0 = os.path.join(tmp, "b0")
        _build_sample(b0)
        out = io.StringIO()
        rc = Comparer(a, b0, out=out).run()
        if rc != 0:
            print("SELF-TEST FAIL: identical trees reported different:\n" + out.getvalue())
            failures += 1
        else:
            print("self-test ok: identical trees match")
        # Seconds precision forgives nanoseconds but not seconds.
        b1 = os.path.join(tmp, "b1")
        _build_sample(b1)
        os.utime(os.path.join(b1, "linked"), ns=(10**18, 10**18))
        if Comparer(a, b1, mtime_precision="s", out=io.StringIO()).run() != 0:
            print("SELF-TEST FAIL: --mtime-precision=s did not ignore nanoseconds")
            failures += 1
        os.utime(os.path.join(b1, "linked"), ns=(10**18, 10**18 + 10**9))
        if Comparer(a, b1, mtime_precision="s", out=io.StringIO()).run() == 0:
            print("SELF-TEST FAIL: --mtime-precision=s missed a 1 s difference")
            failures += 1
        for i, (what, mutate) in enumerate(_mutations(a)):
            b = os.path.join(tmp, "m%d" % i)
            _build_sample(b)
            mutate(b)
            out = io.StringIO()
            rc = Comparer(a, b, out=out).run()
            if rc == 0:
                print("SELF-TEST FAIL: a changed %s was not detected" % what)
                failures += 1
            else:
                first = out.getvalue().splitlines()[0]
                print("self-test ok: changed %s detected (%s)" % (what, first))
    if failures:
        print("compare_tree self-test: %d FAILURE(S)" % failures)
        return 1
    print("compare_tree self-test: PASS")
    return 0


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", nargs="?")
    ap.add_argument("mnt", nargs="?")
    ap.add_argument("--mtime-precision", choices=("s", "ns", "none"),
                    default="ns")
    ap.add_argument("--mtime-32bit", action="store_true",
                    help="expect SRC mtimes wrapped to signed 32-bit seconds")
    ap.add_argument("--xattr-all", action="store_true",
                    help="compare security.* and system.* xattrs too")
    ap.add_argument("--no-d-ino", action="store_true",
                    help="do not require readdir's d_ino to equal st_ino")
    ap.add_argument("--self-test", action="store_true",
                    help="prove the comparer detects differences, then exit")
    ap.add_argument("--digest", nargs="+", metavar="FILE",
                    help="print the sparse-aware sha256 of each FILE, then exit")
    args = ap.parse_args(argv)
    if args.self_test:
        return self_test()
    if args.digest:
        for f in args.digest:
            print("%s  %s" % (content_digest(f, os.stat(f).st_size), f))
        return 0
    if not args.src or not args.mnt:
        ap.print_usage(sys.stderr)
        return 2
    return Comparer(args.src, args.mnt, args.mtime_precision, args.mtime_32bit,
                    args.xattr_all, not args.no_d_ino).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
