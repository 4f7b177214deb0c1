#!/usr/bin/env python3
"""POSIX behaviour suite for a read-write e4fs mount.

Runs many small named checks of filesystem operations, each in a fresh
subdirectory of DIR, comparing results and exact errno values with what the
kernel's ext4 driver gives (the kernel is the reference: the suite passes on
a kernel ext4/ext3/ext2 mount of every supported layout).

Covered: create/open flags and name limits, mknod of every file type,
mkdir/rmdir/unlink, fast and block symlinks, hard links up to EMLINK,
rename and renameat2 (NOREPLACE, EXCHANGE, WHITEOUT), big (htree)
directories, reads and writes with holes and at large offsets, the maximum
file size (EFBIG), truncate, fallocate modes, SEEK_DATA/SEEK_HOLE,
copy_file_range, mmap and O_DIRECT I/O, chmod/chown/utimensat and the
timestamps each operation updates, setuid/setgid clearing, setgid and sticky
directories, permission checks as an unprivileged user, extended attributes
(flags, limits, capacity, shared blocks), POSIX ACLs (access and default),
inode flags (FS_IOC_GETFLAGS/SETFLAGS: append-only, immutable),
open-but-unlinked files, O_TMPFILE, fsync, statfs counters and the "." and
".." entries seen by getdents64.

Usage (as root; DIR must be on the filesystem under test):

    tests/posix_suite.py DIR [--no-fallocate] [--only NAME_SUBSTRING]
                         [--skip NAME=WHY]... [-v]

--no-fallocate is for ext2/ext3 layouts (indirect-mapped files, no
huge_file): the checks that need extents are skipped, fallocate_indirect
asserts what the kernel gives for such files (EOPNOTSUPP except for punching
holes), and the maximum file size is the indirect-mapped one.
A check goes on after a failed expectation, and prints one line
"FAIL name: expected X, got Y" for each (an unexpected exception ends the
check and is reported the same way); "ok name" with -v; "SKIP name: why" for
a check that cannot run (O_TMPFILE or statx birth time not supported). Then
"N checks, M failed"; the exit status is 1 if any check failed. The checks
leave their files behind, so that a later fsck sees a populated image.
Unprivileged steps run in forked children as uid/gid 65534 (and 1234); a
FUSE mount needs allow_other (and so default_permissions) for them.
link_emlink makes 65000 hard links: the slowest check.
"""

import argparse
import ctypes
import ctypes.util
import errno
import fcntl
import mmap
import os
import pickle
import platform
import random
import stat
import struct
import sys
import tempfile
import time
import traceback

# ---------------------------------------------------------------------------
# Constants the os module lacks.

AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
RENAME_WHITEOUT = 4
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_COLLAPSE_RANGE = 0x08
FALLOC_FL_ZERO_RANGE = 0x10
FALLOC_FL_INSERT_RANGE = 0x20
XATTR_CREATE = 1
XATTR_REPLACE = 2
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
STATX_BTIME = 0x800
STATX_BASIC_STATS = 0x7ff
DT_FIFO, DT_CHR, DT_DIR, DT_BLK, DT_REG, DT_LNK, DT_SOCK = 1, 2, 4, 6, 8, 10, 12
FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602
FS_IMMUTABLE_FL = 0x10
FS_APPEND_FL = 0x20
EXT4_EXTENTS_FL = 0x80000
SYS_GETDENTS64 = {"x86_64": 217, "aarch64": 61}.get(platform.machine())

# POSIX ACL xattr format: a version-2 header, then (tag, perm, id) entries.
ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ = 0x01, 0x02, 0x04
ACL_GROUP, ACL_MASK, ACL_OTHER = 0x08, 0x10, 0x20
ACL_UNDEFINED_ID = 0xFFFFFFFF
ACL_ACCESS = "system.posix_acl_access"
ACL_DEFAULT = "system.posix_acl_default"

# ext4's timestamp range with 256-byte inodes (34-bit seconds).
EXT4_TIME_MAX = (1 << 34) - 1 - (1 << 31)
EXT4_TIME_MIN = -(1 << 31)
EXT4_LINK_MAX = 65000

NOBODY = 65534
OTHER_UID = 1234

GIB = 1 << 30
MIB = 1 << 20

# ---------------------------------------------------------------------------
# libc wrappers.

libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6",
                   use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64,
                           ctypes.c_int64]
libc.getxattr.restype = ctypes.c_ssize_t
libc.getxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p,
                          ctypes.c_size_t]
libc.listxattr.restype = ctypes.c_ssize_t
libc.listxattr.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
libc.syscall.restype = ctypes.c_long


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _raise_errno():
    e = ctypes.get_errno()
    raise OSError(e, os.strerror(e))


def _b(path):
    return os.fsencode(path)


def renameat2(old, new, flags):
    if libc.renameat2(AT_FDCWD, _b(old), AT_FDCWD, _b(new),
                      ctypes.c_uint(flags)) != 0:
        _raise_errno()


def fallocate(fd, mode, offset, length):
    if libc.fallocate(fd, mode, offset, length) != 0:
        _raise_errno()


def link_fd(fd, new):
    """linkat(2) of an open file through /proc, following the magic link."""
    src = _b("/proc/self/fd/%d" % fd)
    if libc.linkat(AT_FDCWD, src, AT_FDCWD, _b(new), 0x400) != 0:
        _raise_errno()  # 0x400: AT_SYMLINK_FOLLOW


def get_flags(path):
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        buf = bytearray(8)
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf)
        return struct.unpack_from("<i", buf)[0] & 0xFFFFFFFF
    finally:
        os.close(fd)


def set_flags(path, flags):
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        buf = bytearray(struct.pack("<I", flags) + bytes(4))
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, buf)
    finally:
        os.close(fd)


def utimensat(path, atime, mtime, follow=True):
    """atime/mtime: (sec, nsec); nsec may be UTIME_NOW or UTIME_OMIT."""
    times = (Timespec * 2)(Timespec(*atime), Timespec(*mtime))
    flags = 0 if follow else 0x100  # AT_SYMLINK_NOFOLLOW
    if libc.utimensat(AT_FDCWD, _b(path), times, flags) != 0:
        _raise_errno()


def utimensat_null(path):
    if libc.utimensat(AT_FDCWD, _b(path), None, 0) != 0:
        _raise_errno()


def getxattr_size(path, name, size):
    """getxattr with a caller-chosen buffer size; returns the length."""
    buf = ctypes.create_string_buffer(max(size, 1))
    n = libc.getxattr(_b(path), name.encode(), buf if size else None, size)
    if n < 0:
        _raise_errno()
    return n


def listxattr_size(path, size):
    buf = ctypes.create_string_buffer(max(size, 1))
    n = libc.listxattr(_b(path), buf if size else None, size)
    if n < 0:
        _raise_errno()
    return n


def statx(path, mask):
    """Returns (stx_mask, btime_ns) or raises; None if statx is missing."""
    if not hasattr(libc, "statx"):
        return None
    buf = ctypes.create_string_buffer(256)
    if libc.statx(AT_FDCWD, _b(path), 0, mask, buf) != 0:
        _raise_errno()
    raw = buf.raw
    got_mask = struct.unpack_from("<I", raw, 0)[0]
    sec, nsec = struct.unpack_from("<qI", raw, 80)
    return got_mask, sec * 10**9 + nsec


def getdents(path):
    """All entries of a directory as read by getdents64, "." and ".."
    included: a list of (name bytes, d_ino, d_type)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    out = []
    try:
        buf = ctypes.create_string_buffer(32768)
        while True:
            n = libc.syscall(ctypes.c_long(SYS_GETDENTS64), ctypes.c_long(fd),
                             buf, ctypes.c_long(len(buf)))
            if n < 0:
                _raise_errno()
            if n == 0:
                break
            raw = buf.raw[:n]
            pos = 0
            while pos < n:
                ino, _, reclen, dtype = struct.unpack_from("<QqHB", raw, pos)
                name = raw[pos + 19:pos + reclen].split(b"\0", 1)[0]
                out.append((name, ino, dtype))
                pos += reclen
    finally:
        os.close(fd)
    return out


# ---------------------------------------------------------------------------
# The check framework.

CHECKS = []


class Failure(Exception):
    """Ends a check that cannot go on."""


# The failed expectations of the running check: a check goes on after a
# failed expectation, so that one run shows every difference.
FAILURES = []
MAX_REPORTED = 8


def fail(msg):
    FAILURES.append(msg)


class Skip(Exception):
    pass


def check(fn):
    CHECKS.append(fn)
    return fn


def ename(e):
    if e == errno.EOPNOTSUPP:
        return "EOPNOTSUPP"
    return errno.errorcode.get(e, str(e))


def eq(what, expected, got):
    if expected != got:
        fail("expected %s = %s, got %s" % (what, _short(expected),
                                            _short(got)))


def true(what, cond, got=None):
    if not cond:
        fail("expected %s, got %s" % (what, _short(got)))


def later(what, before, after):
    """A timestamp (ns) that must have moved forward."""
    if not after > before:
        fail("expected %s to move past %d, got %d" % (what, before, after))


def _short(v):
    r = repr(v)
    return r if len(r) <= 120 else r[:100] + "...(%d chars)" % len(r)


def expect_errno(expected, fn, *args, what=None, **kwargs):
    exp = expected if isinstance(expected, tuple) else (expected,)
    if what is None:
        what = "%s%s" % (fn.__name__, _short(args))
    try:
        r = fn(*args, **kwargs)
    except OSError as e:
        if e.errno in exp:
            return
        fail("expected %s -> %s, got %s" % (
            what, "/".join(ename(x) for x in exp), ename(e.errno)))
        return
    if isinstance(r, int) and fn is os.open:
        os.close(r)
    fail("expected %s -> %s, got success (%s)" % (
        what, "/".join(ename(x) for x in exp), _short(r)))


def as_user(fn, uid=NOBODY, gid=NOBODY, umask=None):
    """Runs fn() in a child process with the given ids, no supplementary
    groups. Returns ("ok", value), ("errno", name) or ("exc", text)."""
    sys.stdout.flush()
    sys.stderr.flush()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            if umask is not None:
                os.umask(umask)
            res = ("ok", fn())
        except OSError as e:
            res = ("errno", ename(e.errno))
        except BaseException as e:  # reported to the parent
            res = ("exc", repr(e))
        try:
            os.write(w, pickle.dumps(res))
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while True:
        c = os.read(r, 65536)
        if not c:
            break
        chunks.append(c)
    os.close(r)
    os.waitpid(pid, 0)
    return pickle.loads(b"".join(chunks)) if chunks else ("exc", "no result")


def user_expect(what, expected, fn, **kw):
    """expected: "ok" or an errno name."""
    res = as_user(fn, **kw)
    got = "ok" if res[0] == "ok" else res[1]
    if got != expected:
        fail("expected %s as uid %d -> %s, got %s" % (
            what, kw.get("uid", NOBODY), expected, got))
    return res[1] if res[0] == "ok" else None


def touch(path, mode=0o644, data=None):
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, mode)
    try:
        if data:
            os.write(fd, data)
    finally:
        os.close(fd)


def write_file(path, data, mode=0o644):
    touch(path, mode, data)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def pread_all(fd, size, offset):
    out = b""
    while len(out) < size:
        c = os.pread(fd, size - len(out), offset + len(out))
        if not c:
            break
        out += c
    return out


def rbytes(seed, n):
    return random.Random(seed).randbytes(n)


def tick():
    """Lets the clock move on so that a changed timestamp is observable."""
    time.sleep(0.02)


def mode_of(path, follow=True):
    return stat.S_IMODE(os.stat(path, follow_symlinks=follow).st_mode)


def nlink(path):
    return os.lstat(path).st_nlink


def ino(path):
    return os.lstat(path).st_ino


def dents(path):
    return {name: (i, t) for name, i, t in getdents(path)}


class Ctx:
    def __init__(self, args, root):
        self.root = root
        self.no_fallocate = args.no_fallocate
        self.bsize = os.statvfs(root).f_bsize

    def max_file_size(self):
        """The largest size of a regular file, as the kernel's ext4 driver
        computes it: extent-mapped files are limited to 2^32-1 blocks;
        indirect-mapped ones (without huge_file, as ext2/ext3 images are made)
        by 2^32 sectors of data plus mapping blocks, or by the triple
        indirect reach for small blocks."""
        bits = self.bsize.bit_length() - 1
        if not self.no_fallocate:
            return ((1 << 32) - 1) << bits
        ppb = 1 << (bits - 2)
        limit = ((1 << 32) - 1) >> (bits - 9)
        reach = 12 + ppb + ppb * ppb + ppb * ppb * ppb
        meta = 1 + (1 + ppb) + (1 + ppb + ppb * ppb)
        if reach + meta <= limit:
            return reach << bits
        res = limit
        rest = limit - 12 - ppb
        meta = 1
        if rest < ppb * ppb:
            meta += 1 + -(-rest // ppb)
            return (res - meta) << bits
        meta += 1 + ppb
        rest -= ppb * ppb
        meta += 1 + -(-rest // ppb) + -(-rest // (ppb * ppb))
        return (res - meta) << bits


# ---------------------------------------------------------------------------
# create / open

@check
def open_creat_excl_exists(t):
    touch("f")
    expect_errno(errno.EEXIST, os.open, "f",
                 os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    os.mkdir("d")
    expect_errno(errno.EEXIST, os.open, "d",
                 os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)


@check
def open_missing(t):
    expect_errno(errno.ENOENT, os.open, "nope", os.O_RDONLY)
    expect_errno(errno.ENOENT, os.open, "nodir/x", os.O_CREAT | os.O_WRONLY,
                 0o644)
    expect_errno(errno.ENOENT, os.stat, "nope")


@check
def open_notdir_component(t):
    touch("f")
    expect_errno(errno.ENOTDIR, os.open, "f/x", os.O_RDONLY)
    expect_errno(errno.ENOTDIR, os.open, "f/x", os.O_CREAT | os.O_WRONLY,
                 0o644)
    expect_errno(errno.ENOTDIR, os.mkdir, "f/x")
    expect_errno(errno.ENOTDIR, os.open, "f", os.O_RDONLY | os.O_DIRECTORY)


@check
def name_length_limits(t):
    n255 = "a" * 255
    n256 = "b" * 256
    touch(n255)
    eq("listdir with a 255-byte name", [n255], os.listdir("."))
    os.stat(n255)
    os.rename(n255, "c" * 255)
    os.link("c" * 255, "d" * 255)
    os.symlink("c" * 255, "e" * 255)
    os.mkdir("f" * 255)
    os.mknod("g" * 255, stat.S_IFIFO | 0o644)
    eq("readlink of a 255-byte name", "c" * 255, os.readlink("e" * 255))
    eq("nlink after link to 255-byte name", 2, nlink("c" * 255))
    expect_errno(errno.ENAMETOOLONG, os.open, n256, os.O_CREAT | os.O_WRONLY,
                 0o644, what="create 256-byte name")
    expect_errno(errno.ENAMETOOLONG, os.stat, n256, what="stat 256-byte name")
    expect_errno(errno.ENAMETOOLONG, os.mkdir, n256, what="mkdir 256")
    expect_errno(errno.ENAMETOOLONG, os.symlink, "x", n256, what="symlink 256")
    expect_errno(errno.ENAMETOOLONG, os.link, "c" * 255, n256,
                 what="link 256")
    expect_errno(errno.ENAMETOOLONG, os.rename, "c" * 255, n256,
                 what="rename to 256")
    expect_errno(errno.ENAMETOOLONG, os.mknod, n256, stat.S_IFIFO | 0o644,
                 what="mknod 256")
    expect_errno(errno.ENAMETOOLONG, os.unlink, n256, what="unlink 256")


@check
def name_all_bytes(t):
    names = set()
    for b in range(1, 256):
        if b in (ord("/"), ord(".")):
            continue
        name = bytes([b]) + b"-" + bytes([b])
        touch(name)
        names.add(name)
    names.add(b".hidden")
    touch(b".hidden")
    names.add(b"..x")
    touch(b"..x")
    eq("listdir of byte-named files", sorted(names), sorted(os.listdir(b".")))
    for name in names:
        os.stat(name)


@check
def open_dir_for_write(t):
    os.mkdir("d")
    expect_errno(errno.EISDIR, os.open, "d", os.O_WRONLY)
    expect_errno(errno.EISDIR, os.open, "d", os.O_RDWR)
    expect_errno(errno.EISDIR, os.open, "d", os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(os.open("d", os.O_RDONLY))


@check
def open_trunc(t):
    write_file("f", b"x" * 10000)
    fd = os.open("f", os.O_WRONLY | os.O_TRUNC)
    os.write(fd, b"ab")
    os.close(fd)
    eq("content after O_TRUNC", b"ab", read_file("f"))
    eq("size after O_TRUNC", 2, os.stat("f").st_size)


@check
def open_append(t):
    write_file("f", b"hello")
    fd = os.open("f", os.O_WRONLY | os.O_APPEND)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, b" world")
    os.lseek(fd, 1, os.SEEK_SET)
    os.write(fd, b"!")
    os.close(fd)
    eq("content after O_APPEND writes", b"hello world!", read_file("f"))


@check
def open_creat_mode_owner(t):
    fd = os.open("f", os.O_CREAT | os.O_WRONLY, 0o777)
    os.close(fd)
    eq("mode of file created 0777 with umask 022", 0o755, mode_of("f"))
    st = os.stat("f")
    eq("uid/gid of new file", (0, 0), (st.st_uid, st.st_gid))
    eq("nlink of new file", 1, st.st_nlink)
    eq("size of new file", 0, st.st_size)
    eq("type of new file", True, stat.S_ISREG(st.st_mode))
    eq("new file: atime == mtime == ctime", (st.st_ctime_ns,) * 2,
       (st.st_atime_ns, st.st_mtime_ns))
    eq("st_blksize", t.bsize, st.st_blksize)
    eq("st_blocks of an empty file", 0, st.st_blocks)
    fd = os.open("f", os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    eq("O_CREAT of an existing file keeps its mode", 0o755, mode_of("f"))
    os.mkdir("d", 0o777)
    eq("mode of dir created 0777 with umask 022", 0o755, mode_of("d"))
    fd = os.open("g", os.O_CREAT | os.O_WRONLY, 0o400)
    os.write(fd, b"written through the creating fd")
    os.close(fd)
    eq("mode of 0400 file", 0o400, mode_of("g"))
    eq("content of 0400 file", b"written through the creating fd",
       read_file("g"))


@check
def open_creat_through_symlink(t):
    os.symlink("target", "link")
    fd = os.open("link", os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"via link")
    os.close(fd)
    eq("target created through dangling symlink", b"via link",
       read_file("target"))
    expect_errno(errno.EEXIST, os.open, "link",
                 os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    expect_errno(errno.ELOOP, os.open, "link", os.O_RDONLY | os.O_NOFOLLOW)


@check
def statx_btime(t):
    before = time.time_ns()
    touch("f")
    r = statx("f", STATX_BASIC_STATS | STATX_BTIME)
    if r is None or not (r[0] & STATX_BTIME):
        raise Skip("statx reports no birth time")
    mask, btime = r
    true("btime close to the creation time",
         before - 2 * 10**9 <= btime <= time.time_ns() + 2 * 10**9, btime)
    os.utime("f", ns=(10**18, 10**18))
    os.chmod("f", 0o600)
    eq("btime after utime/chmod", btime, statx("f", STATX_BTIME)[1])


# ---------------------------------------------------------------------------
# mknod

@check
def mknod_fifo(t):
    os.mknod("p", stat.S_IFIFO | 0o640)
    st = os.lstat("p")
    eq("fifo type", True, stat.S_ISFIFO(st.st_mode))
    eq("fifo mode", 0o640, stat.S_IMODE(st.st_mode))
    os.mkfifo("p2", 0o600)
    eq("mkfifo type", True, stat.S_ISFIFO(os.lstat("p2").st_mode))
    # Data through the fifo goes through the pipe, not the filesystem.
    fd = os.open("p", os.O_RDWR)
    os.write(fd, b"pipe")
    eq("data through fifo", b"pipe", os.read(fd, 4))
    os.close(fd)
    eq("fifo size", 0, os.lstat("p").st_size)


@check
def mknod_socket(t):
    os.mknod("s", stat.S_IFSOCK | 0o755)
    st = os.lstat("s")
    eq("socket type", True, stat.S_ISSOCK(st.st_mode))
    eq("socket mode", 0o755, stat.S_IMODE(st.st_mode))


@check
def mknod_devices(t):
    cases = [("c", stat.S_IFCHR, os.makedev(1, 3)),
             ("b", stat.S_IFBLK, os.makedev(7, 200)),
             ("cbig", stat.S_IFCHR, os.makedev(300, 70000)),
             ("bbig", stat.S_IFBLK, os.makedev(4095, 0xFFFFF)),
             ("c0", stat.S_IFCHR, os.makedev(0, 0))]
    for name, kind, rdev in cases:
        os.mknod(name, kind | 0o664, rdev)
    for name, kind, rdev in cases:
        st = os.lstat(name)
        eq("type of " + name, kind, stat.S_IFMT(st.st_mode))
        eq("rdev of " + name, (os.major(rdev), os.minor(rdev)),
           (os.major(st.st_rdev), os.minor(st.st_rdev)))
        eq("mode of " + name, 0o644, stat.S_IMODE(st.st_mode))
        eq("size of " + name, 0, st.st_size)


@check
def mknod_regular(t):
    os.mknod("r", stat.S_IFREG | 0o600)
    st = os.lstat("r")
    eq("mknod S_IFREG type", True, stat.S_ISREG(st.st_mode))
    eq("mknod S_IFREG mode", 0o600, stat.S_IMODE(st.st_mode))
    write_file("r", b"data", 0o600)
    eq("content of mknod'ed regular file", b"data", read_file("r"))


@check
def mknod_exists(t):
    touch("f")
    os.mkdir("d")
    os.symlink("dangling", "l")
    for name in ("f", "d", "l"):
        expect_errno(errno.EEXIST, os.mknod, name, stat.S_IFIFO | 0o644)
        expect_errno(errno.EEXIST, os.mknod, name, stat.S_IFCHR | 0o644,
                     os.makedev(1, 3))


@check
def dirent_types(t):
    touch("reg")
    os.mkdir("dir")
    os.symlink("reg", "lnk")
    os.mknod("fifo", stat.S_IFIFO | 0o644)
    os.mknod("sock", stat.S_IFSOCK | 0o644)
    os.mknod("chr", stat.S_IFCHR | 0o644, os.makedev(1, 3))
    os.mknod("blk", stat.S_IFBLK | 0o644, os.makedev(7, 0))
    want = {"reg": DT_REG, "dir": DT_DIR, "lnk": DT_LNK, "fifo": DT_FIFO,
            "sock": DT_SOCK, "chr": DT_CHR, "blk": DT_BLK}
    got = dents(".")
    for name, dtype in want.items():
        eq("d_type of " + name, dtype, got[name.encode()][1])
        eq("d_ino of " + name, ino(name), got[name.encode()][0])
    for e in os.scandir("."):
        eq("scandir inode of " + e.name, ino(e.name), e.inode())


# ---------------------------------------------------------------------------
# mkdir / rmdir / unlink

@check
def mkdir_basic(t):
    before = nlink(".")
    os.mkdir("d", 0o750)
    st = os.stat("d")
    eq("nlink of new dir", 2, st.st_nlink)
    eq("mode of new dir", 0o750, stat.S_IMODE(st.st_mode))
    eq("parent nlink after mkdir", before + 1, nlink("."))
    eq("listdir of new dir", [], os.listdir("d"))
    os.mkdir("d/e")
    eq("nlink of dir with a subdir", 3, nlink("d"))
    true("dir size is a multiple of the block size (or inline)",
         st.st_size % t.bsize == 0 or st.st_size <= 60, st.st_size)


@check
def mkdir_exists(t):
    os.mkdir("d")
    touch("f")
    os.symlink("nowhere", "l")
    expect_errno(errno.EEXIST, os.mkdir, "d")
    expect_errno(errno.EEXIST, os.mkdir, "f")
    expect_errno(errno.EEXIST, os.mkdir, "l")
    expect_errno(errno.ENOENT, os.mkdir, "missing/d")


@check
def rmdir_cases(t):
    os.mkdir("d")
    touch("d/f")
    expect_errno(errno.ENOTEMPTY, os.rmdir, "d")
    os.mkdir("d2")
    os.mkdir("d2/sub")
    expect_errno(errno.ENOTEMPTY, os.rmdir, "d2")
    touch("f")
    expect_errno(errno.ENOTDIR, os.rmdir, "f")
    expect_errno(errno.EINVAL, os.rmdir, "d/.")
    expect_errno(errno.ENOENT, os.rmdir, "missing")
    os.symlink("d", "l")
    expect_errno(errno.ENOTDIR, os.rmdir, "l")


@check
def rmdir_nlink(t):
    os.mkdir("d")
    os.mkdir("d/a")
    os.mkdir("d/b")
    eq("nlink with two subdirs", 4, nlink("d"))
    fd = os.open("d/a", os.O_RDONLY | os.O_DIRECTORY)
    os.rmdir("d/a")
    eq("nlink after rmdir", 3, nlink("d"))
    eq("nlink of removed dir through its fd", 0, os.fstat(fd).st_nlink)
    os.close(fd)
    os.rmdir("d/b")
    eq("nlink after second rmdir", 2, nlink("d"))
    expect_errno(errno.ENOENT, os.stat, "d/a")
    eq("listdir after rmdirs", [], os.listdir("d"))
    os.rmdir("d")
    expect_errno(errno.ENOENT, os.stat, "d")


@check
def unlink_cases(t):
    os.mkdir("d")
    expect_errno(errno.EISDIR, os.unlink, "d")
    expect_errno(errno.ENOENT, os.unlink, "missing")
    expect_errno(errno.ENOENT, os.unlink, "missing/x")
    write_file("f", b"abc")
    os.link("f", "g")
    os.unlink("f")
    eq("nlink of remaining link", 1, nlink("g"))
    eq("content through remaining link", b"abc", read_file("g"))
    os.symlink("g", "l")
    os.unlink("l")
    eq("target survives unlink of symlink", b"abc", read_file("g"))
    os.unlink("g")
    eq("listdir after unlinks", ["d"], os.listdir("."))


# ---------------------------------------------------------------------------
# symlinks

@check
def symlink_lengths(t):
    lengths = [1, 59, 60, 61, 200, 1000, t.bsize - 1]
    for n in lengths:
        target = ("t%d/" % n + "x" * n)[:n]
        os.symlink(target, "l%d" % n)
    for n in lengths:
        target = ("t%d/" % n + "x" * n)[:n]
        eq("readlink of %d-byte target" % n, target, os.readlink("l%d" % n))
        st = os.lstat("l%d" % n)
        eq("lstat size of %d-byte symlink" % n, n, st.st_size)
        eq("type of symlink", True, stat.S_ISLNK(st.st_mode))
        eq("mode of symlink", 0o777, stat.S_IMODE(st.st_mode))
        blocks = 0 if n < 60 else t.bsize // 512
        eq("st_blocks of %d-byte symlink" % n, blocks, st.st_blocks)


@check
def symlink_too_long(t):
    expect_errno(errno.ENAMETOOLONG, os.symlink, "y" * t.bsize, "l1",
                 what="symlink with a target of block size")
    expect_errno(errno.ENAMETOOLONG, os.symlink, "y" * 4096, "l2",
                 what="symlink with a 4096-byte target")
    expect_errno(errno.ENOENT, os.symlink, "", "l3",
                 what="symlink with an empty target")
    eq("nothing created", [], os.listdir("."))


@check
def symlink_exists(t):
    touch("f")
    os.mkdir("d")
    os.symlink("f", "l")
    for name in ("f", "d", "l"):
        expect_errno(errno.EEXIST, os.symlink, "x", name)
    eq("symlink unchanged", "f", os.readlink("l"))


@check
def symlink_follow(t):
    os.mkdir("d")
    write_file("d/f", b"deep")
    os.symlink("d", "ld")
    os.symlink("ld/f", "lf")
    os.symlink("/" + os.path.relpath(os.getcwd(), "/") + "/d/f", "abs")
    eq("read through two symlinks", b"deep", read_file("lf"))
    eq("read through absolute symlink", b"deep", read_file("abs"))
    os.symlink("loop2", "loop1")
    os.symlink("loop1", "loop2")
    expect_errno(errno.ELOOP, os.stat, "loop1")


# ---------------------------------------------------------------------------
# hard links

@check
def link_basic(t):
    write_file("f", b"shared")
    os.mkdir("d")
    os.link("f", "d/g")
    os.link("f", "h")
    eq("nlink after two links", 3, nlink("f"))
    eq("same inode", ino("f"), ino("d/g"))
    write_file("h", b"changed")
    eq("content through other link", b"changed", read_file("d/g"))
    os.unlink("f")
    eq("nlink after unlink", 2, nlink("h"))


@check
def link_errors(t):
    os.mkdir("d")
    touch("f")
    touch("g")
    expect_errno(errno.EPERM, os.link, "d", "d2")
    expect_errno(errno.EEXIST, os.link, "f", "g")
    expect_errno(errno.EEXIST, os.link, "f", "d")
    expect_errno(errno.ENOENT, os.link, "missing", "x")
    expect_errno(errno.ENOENT, os.link, "f", "missing/x")
    eq("nlink unchanged", 1, nlink("f"))


@check
def link_emlink(t):
    touch("f")
    os.mkdir("l")
    n = 1
    err = None
    t0 = time.monotonic()
    while n <= EXT4_LINK_MAX + 10:
        try:
            os.link("f", "l/%d" % n)
        except OSError as e:
            err = e.errno
            break
        n += 1
    eq("errno of the link past the limit", "EMLINK",
       ename(err) if err else "none")
    eq("nlink at EMLINK", EXT4_LINK_MAX, nlink("f"))
    os.unlink("l/1")
    os.link("f", "l/again")
    eq("nlink after unlink + link", EXT4_LINK_MAX, nlink("f"))
    if time.monotonic() - t0 > 20:
        print("note: link_emlink took %.1f s" % (time.monotonic() - t0))


# ---------------------------------------------------------------------------
# rename

@check
def rename_file_over_file(t):
    write_file("a", b"AAA")
    write_file("b", b"BBBB")
    ia = ino("a")
    fd = os.open("b", os.O_RDONLY)
    os.rename("a", "b")
    eq("content of target", b"AAA", read_file("b"))
    eq("inode of target", ia, ino("b"))
    expect_errno(errno.ENOENT, os.stat, "a")
    eq("nlink of replaced inode (open fd)", 0, os.fstat(fd).st_nlink)
    eq("replaced data still readable", b"BBBB", os.pread(fd, 10, 0))
    os.close(fd)
    eq("listdir", ["b"], os.listdir("."))


@check
def rename_dir_over_empty_dir(t):
    os.mkdir("a")
    write_file("a/inner", b"x")
    os.mkdir("b")
    ia = ino("a")
    before = nlink(".")
    os.rename("a", "b")
    eq("moved dir inode", ia, ino("b"))
    eq("content", b"x", read_file("b/inner"))
    eq("parent nlink", before - 1, nlink("."))
    eq("listdir", ["b"], os.listdir("."))
    eq("'..' of moved dir", ino("."), dents("b")[b".."][0])


@check
def rename_errors(t):
    os.mkdir("d")
    os.mkdir("full")
    touch("full/x")
    touch("f")
    expect_errno(errno.ENOTEMPTY, os.rename, "d", "full")
    expect_errno(errno.EISDIR, os.rename, "f", "d")
    expect_errno(errno.ENOTDIR, os.rename, "d", "f")
    os.mkdir("d/sub")
    expect_errno(errno.EINVAL, os.rename, "d", "d/sub/inside")
    expect_errno(errno.EINVAL, os.rename, "d", "d/inside")
    expect_errno(errno.ENOENT, os.rename, "missing", "x")
    expect_errno(errno.ENOENT, os.rename, "f", "missing/x")
    eq("listdir unchanged", ["d", "f", "full"], sorted(os.listdir(".")))


@check
def rename_across_dirs(t):
    os.mkdir("p1")
    os.mkdir("p2")
    os.mkdir("p1/x")
    write_file("p1/x/f", b"in x")
    write_file("p1/file", b"file")
    n1, n2 = nlink("p1"), nlink("p2")
    os.rename("p1/x", "p2/x")
    os.rename("p1/file", "p2/file")
    eq("p1 nlink", n1 - 1, nlink("p1"))
    eq("p2 nlink", n2 + 1, nlink("p2"))
    eq("stat(p2/x/..) inode", ino("p2"), os.stat("p2/x/..").st_ino)
    eq("'..' entry of moved dir", ino("p2"), dents("p2/x")[b".."][0])
    eq("content in moved dir", b"in x", read_file("p2/x/f"))
    eq("moved file", b"file", read_file("p2/file"))
    eq("p1 listing", [], os.listdir("p1"))
    eq("p2 listing", ["file", "x"], sorted(os.listdir("p2")))
    os.rmdir("p1")


@check
def rename_dir_over_dir_across(t):
    os.mkdir("p1")
    os.mkdir("p2")
    os.mkdir("p1/a")
    touch("p1/a/f")
    os.mkdir("p2/b")
    n1, n2 = nlink("p1"), nlink("p2")
    os.rename("p1/a", "p2/b")
    eq("p1 nlink", n1 - 1, nlink("p1"))
    eq("p2 nlink (one dir replaced another)", n2, nlink("p2"))
    eq("'..' of moved dir", ino("p2"), dents("p2/b")[b".."][0])
    eq("content", ["f"], os.listdir("p2/b"))


@check
def rename_over_linked_file(t):
    write_file("a", b"a")
    write_file("b", b"b")
    os.link("b", "b2")
    os.rename("a", "b")
    eq("victim's other link survives", (b"b", 1),
       (read_file("b2"), nlink("b2")))
    eq("renamed", (b"a", 1), (read_file("b"), nlink("b")))


@check
def rename_noreplace(t):
    write_file("a", b"a")
    write_file("b", b"b")
    expect_errno(errno.EEXIST, renameat2, "a", "b", RENAME_NOREPLACE)
    eq("target untouched", b"b", read_file("b"))
    renameat2("a", "c", RENAME_NOREPLACE)
    eq("renamed with NOREPLACE", b"a", read_file("c"))
    expect_errno(errno.ENOENT, os.stat, "a")
    expect_errno(errno.EINVAL, renameat2, "c", "d",
                 RENAME_NOREPLACE | RENAME_EXCHANGE)


@check
def rename_exchange(t):
    os.mkdir("p1")
    os.mkdir("p2")
    write_file("p1/f", b"file")
    os.mkdir("p2/d")
    touch("p2/d/inner")
    i_f, i_d = ino("p1/f"), ino("p2/d")
    n1, n2 = nlink("p1"), nlink("p2")
    renameat2("p1/f", "p2/d", RENAME_EXCHANGE)
    eq("p1/f is now the dir", (i_d, True),
       (ino("p1/f"), stat.S_ISDIR(os.lstat("p1/f").st_mode)))
    eq("p2/d is now the file", (i_f, True),
       (ino("p2/d"), stat.S_ISREG(os.lstat("p2/d").st_mode)))
    eq("p1 nlink", n1 + 1, nlink("p1"))
    eq("p2 nlink", n2 - 1, nlink("p2"))
    eq("'..' of exchanged dir", ino("p1"), dents("p1/f")[b".."][0])
    eq("stat(p1/f/..)", ino("p1"), os.stat("p1/f/..").st_ino)
    eq("file content", b"file", read_file("p2/d"))
    eq("dir content", ["inner"], os.listdir("p1/f"))
    expect_errno(errno.ENOENT, renameat2, "p2/d", "p2/missing",
                 RENAME_EXCHANGE)
    write_file("x", b"x")
    write_file("y", b"y")
    renameat2("x", "y", RENAME_EXCHANGE)
    eq("exchanged files", (b"y", b"x"), (read_file("x"), read_file("y")))


@check
def rename_exchange_dirs(t):
    os.mkdir("p1")
    os.mkdir("p2")
    os.mkdir("p1/a")
    os.mkdir("p1/a/x")
    os.mkdir("p2/b")
    ia, ib = ino("p1/a"), ino("p2/b")
    n1, n2 = nlink("p1"), nlink("p2")
    renameat2("p1/a", "p2/b", RENAME_EXCHANGE)
    eq("inodes swapped", (ib, ia), (ino("p1/a"), ino("p2/b")))
    eq("parent nlinks unchanged", (n1, n2), (nlink("p1"), nlink("p2")))
    eq("'..' of p1/a", ino("p1"), dents("p1/a")[b".."][0])
    eq("'..' of p2/b", ino("p2"), dents("p2/b")[b".."][0])
    eq("nlinks of the swapped dirs", (2, 3), (nlink("p1/a"), nlink("p2/b")))
    eq("'..' of p2/b/x", ino("p2/b"), dents("p2/b/x")[b".."][0])


@check
def rename_noop(t):
    write_file("a", b"a")
    os.rename("a", "a")
    eq("rename to itself keeps the file", (b"a", 1),
       (read_file("a"), nlink("a")))
    os.link("a", "b")
    os.rename("a", "b")
    eq("rename onto a link of the same inode keeps both",
       ["a", "b"], sorted(os.listdir(".")))
    eq("nlink", 2, nlink("a"))
    os.mkdir("d")
    os.rename("d", "d")
    eq("dir renamed to itself", 3, nlink("."))


@check
def rename_whiteout(t):
    write_file("a", b"a")
    write_file("b", b"b")
    renameat2("a", "b", RENAME_WHITEOUT)
    eq("target content", b"a", read_file("b"))
    st = os.lstat("a")
    eq("whiteout is a char device 0:0", (True, 0),
       (stat.S_ISCHR(st.st_mode), st.st_rdev))


@check
def rename_ctime(t):
    touch("f")
    os.mkdir("d")
    c0 = os.stat("f").st_ctime_ns
    tick()
    os.rename("f", "d/f")
    later("ctime of renamed file", c0, os.stat("d/f").st_ctime_ns)


# ---------------------------------------------------------------------------
# big directories

@check
def big_directory(t):
    os.mkdir("big")
    names = ["entry_%05d_%s" % (i, "n" * (i % 40)) for i in range(3000)]
    for n in names:
        os.close(os.open("big/" + n, os.O_CREAT | os.O_WRONLY, 0o644))
    eq("listing of 3000 entries", sorted(names), sorted(os.listdir("big")))
    for n in names[::2]:
        os.unlink("big/" + n)
    rest = names[1::2]
    eq("listing after removing half", sorted(rest), sorted(os.listdir("big")))
    for n in rest:
        os.close(os.open("big/" + n, os.O_RDONLY))
    for n in names[0:200:2]:
        expect_errno(errno.ENOENT, os.stat, "big/" + n)
    more = ["again_%04d" % i for i in range(500)]
    for n in more:
        os.mkdir("big/" + n)
    eq("listing after refilling", sorted(rest + more),
       sorted(os.listdir("big")))
    eq("nlink of big dir", 2 + len(more), nlink("big"))
    d = dents("big")
    eq("'.' of big dir", ino("big"), d[b"."][0])
    eq("'..' of big dir", ino("."), d[b".."][0])


# ---------------------------------------------------------------------------
# read / write

@check
def rw_basic(t):
    data = rbytes(1, 300000)
    write_file("f", data)
    eq("content", data, read_file("f"))
    fd = os.open("f", os.O_RDWR)
    os.pwrite(fd, b"MIDDLE", 150001)
    os.pwrite(fd, b"E" * 5000, 298000)
    os.close(fd)
    exp = bytearray(data)
    exp[150001:150007] = b"MIDDLE"
    exp[298000:303000] = b"E" * 5000
    eq("content after overwrite/extend", bytes(exp), read_file("f"))
    eq("size", 303000, os.stat("f").st_size)


@check
def rw_small_then_grow(t):
    write_file("f", b"tiny")
    eq("tiny file", b"tiny", read_file("f"))
    fd = os.open("f", os.O_WRONLY | os.O_APPEND)
    os.write(fd, b"-" * 50)
    os.write(fd, rbytes(2, 9000))
    os.close(fd)
    eq("grown file", b"tiny" + b"-" * 50 + rbytes(2, 9000), read_file("f"))
    os.truncate("f", 10)
    eq("truncated back", b"tiny" + b"-" * 6, read_file("f"))
    with open("f", "ab") as f:
        f.write(b"+")
    eq("appended after truncate", b"tiny" + b"-" * 6 + b"+", read_file("f"))


@check
def rw_holes(t):
    fd = os.open("f", os.O_CREAT | os.O_RDWR, 0o644)
    os.pwrite(fd, b"start", 0)
    os.pwrite(fd, b"end", 100000)
    eq("size", 100003, os.fstat(fd).st_size)
    got = pread_all(fd, 100003, 0)
    eq("hole reads zeros", b"start" + bytes(100000 - 5) + b"end", got)
    eq("read past EOF", b"", os.pread(fd, 10, 200000))
    eq("read across EOF", b"nd", os.pread(fd, 10, 100001))
    os.close(fd)


@check
def rw_large_offsets(t):
    fd = os.open("f", os.O_CREAT | os.O_RDWR, 0o644)
    off = 5 * GIB
    os.pwrite(fd, b"far away", off)
    st = os.fstat(fd)
    eq("size", off + 8, st.st_size)
    eq("data at 5 GiB", b"far away", os.pread(fd, 8, off))
    eq("zeros before", bytes(16), os.pread(fd, 16, off - 16))
    true("sparse: few blocks", st.st_blocks <= 4 * t.bsize // 512,
         st.st_blocks)
    off2 = t.max_file_size() // 2 // t.bsize * t.bsize + 123
    os.pwrite(fd, b"X", off2)
    eq("data at %d" % off2, b"X", os.pread(fd, 1, off2))
    os.close(fd)


@check
def efbig(t):
    limit = t.max_file_size()
    fd = os.open("f", os.O_CREAT | os.O_RDWR, 0o644)
    eq("write of the last byte", 1, os.pwrite(fd, b"L", limit - 1))
    eq("size at the limit", limit, os.fstat(fd).st_size)
    eq("last byte", b"L", os.pread(fd, 1, limit - 1))
    expect_errno(errno.EFBIG, os.pwrite, fd, b"x", limit,
                 what="pwrite at max size %d" % limit)
    expect_errno(errno.EFBIG, os.pwrite, fd, b"x", limit + 4096 * 2,
                 what="pwrite past max size")
    eq("write straddling the limit is short", 1,
       os.pwrite(fd, b"ab", limit - 1))
    try:
        os.close(fd)
    except OSError as e:
        fail("expected close after the writes at the limit to succeed, "
             "got %s" % ename(e.errno))
    touch("g")
    os.truncate("g", limit)
    eq("truncate to the limit", limit, os.stat("g").st_size)
    expect_errno(errno.EFBIG, os.truncate, "g", limit + 1)
    eq("size unchanged by the failed truncate", limit, os.stat("g").st_size)


@check
def fragmented_file(t):
    bs = t.bsize
    fd = os.open("f", os.O_CREAT | os.O_RDWR, 0o644)
    for i in range(600):
        os.pwrite(fd, bytes([i % 251 + 1]) * bs, 2 * i * bs)
    os.fsync(fd)

    def expect(n_blocks, filled):
        data = pread_all(fd, n_blocks * bs + bs, 0)
        want = bytearray(n_blocks * bs)
        for i in range(n_blocks):
            if i % 2 == 0 and i // 2 < filled:
                want[i * bs:(i + 1) * bs] = bytes([(i // 2) % 251 + 1]) * bs
        return bytes(want) == data
    size = (2 * 599 + 1) * bs
    eq("size", size, os.fstat(fd).st_size)
    true("content of 600 separate blocks", expect(1199, 600), "other")
    os.ftruncate(fd, 601 * bs)
    true("content after truncate into the middle", expect(601, 301),
         "other")
    for i in range(1, 601, 2):
        os.pwrite(fd, bytes([255]) * bs, i * bs)
    os.fsync(fd)
    data = pread_all(fd, 602 * bs, 0)
    eq("size after filling holes", 601 * bs, len(data))
    bad = [i for i in range(601)
           if data[i * bs:(i + 1) * bs] != bytes(
               [255 if i % 2 else (i // 2) % 251 + 1]) * bs]
    eq("blocks with wrong content after filling holes", [], bad[:10])
    os.close(fd)
    os.truncate("f", 0)
    eq("st_blocks after truncate to 0", 0, os.stat("f").st_blocks)


@check
def rw_boundary_sizes(t):
    bs = t.bsize
    sizes = [0, 1, 59, 60, 61, 100, 128, 156, 157, 160, 200, 255, 256,
             bs - 1, bs, bs + 1, 2 * bs - 1, 2 * bs, 12 * bs, 12 * bs + 1]
    for n in sizes:
        write_file("f%d" % n, rbytes(n, n))
    for n in sizes:
        eq("content of a %d-byte file" % n, rbytes(n, n),
           read_file("f%d" % n))
        with open("f%d" % n, "ab") as f:
            f.write(b"+")
        eq("size after appending to a %d-byte file" % n, n + 1,
           os.stat("f%d" % n).st_size)
        eq("content after append", rbytes(n, n) + b"+", read_file("f%d" % n))
    for n in sizes:
        os.truncate("f%d" % n, n // 2)
        eq("content after truncate to %d" % (n // 2), rbytes(n, n)[:n // 2],
           read_file("f%d" % n))


@check
def dir_grow_shrink(t):
    os.mkdir("d")
    names = ["name-%03d-%s" % (i, "x" * (i % 17)) for i in range(150)]
    for n in names:
        touch("d/" + n)
    eq("listing", sorted(names), sorted(os.listdir("d")))
    for n in names:
        os.unlink("d/" + n)
    eq("listing after removing all", [], os.listdir("d"))
    eq("entries", {b".", b".."}, set(dents("d")))
    touch("d/again")
    eq("reuse of an emptied dir", ["again"], os.listdir("d"))
    os.unlink("d/again")
    os.rmdir("d")
    expect_errno(errno.ENOENT, os.stat, "d")


@check
def inode_flags(t):
    write_file("f", b"x" * 100000)
    try:
        flags = get_flags("f")
    except OSError as e:
        raise Failure("expected FS_IOC_GETFLAGS to work, got %s" %
                      ename(e.errno))
    eq("extents flag", not t.no_fallocate, bool(flags & EXT4_EXTENTS_FL))
    set_flags("f", flags | FS_APPEND_FL)
    eq("append-only flag set", True,
       bool(get_flags("f") & FS_APPEND_FL))
    expect_errno(errno.EPERM, os.open, "f", os.O_WRONLY,
                 what="open append-only file without O_APPEND")
    fd = os.open("f", os.O_WRONLY | os.O_APPEND)
    os.write(fd, b"appended")
    os.close(fd)
    eq("appended", 100008, os.stat("f").st_size)
    expect_errno(errno.EPERM, os.unlink, "f", what="unlink append-only")
    expect_errno(errno.EPERM, os.truncate, "f", 0,
                 what="truncate append-only")
    set_flags("f", flags)
    write_file("g", b"frozen")
    set_flags("g", get_flags("g") | FS_IMMUTABLE_FL)
    expect_errno(errno.EPERM, os.open, "g", os.O_WRONLY,
                 what="open immutable file for writing")
    expect_errno(errno.EPERM, os.chmod, "g", 0o600, what="chmod immutable")
    expect_errno(errno.EPERM, os.unlink, "g", what="unlink immutable")
    expect_errno(errno.EPERM, os.link, "g", "g2", what="link immutable")
    expect_errno(errno.EPERM, os.rename, "g", "g3", what="rename immutable")
    expect_errno(errno.EPERM, os.setxattr, "g", "user.x", b"1",
                 what="setxattr on immutable")
    eq("immutable file readable", b"frozen", read_file("g"))
    set_flags("g", get_flags("g") & ~FS_IMMUTABLE_FL)
    os.unlink("g")
    os.unlink("f")
    os.mkdir("d")
    set_flags("d", get_flags("d") | FS_IMMUTABLE_FL)
    expect_errno(errno.EPERM, touch, "d/new",
                 what="create in an immutable dir")
    set_flags("d", get_flags("d") & ~FS_IMMUTABLE_FL)
    touch("d/new")


@check
def blocks_after_write(t):
    fd = os.open("f", os.O_CREAT | os.O_RDWR, 0o644)
    os.write(fd, b"b" * MIB)
    os.fsync(fd)
    st = os.fstat(fd)
    true("st_blocks counts 1 MiB written and synced (fd still open)",
         MIB // 512 <= st.st_blocks <= MIB // 512 + 8 * t.bsize // 512,
         st.st_blocks)
    os.close(fd)
    st = os.stat("f")
    true("st_blocks after close", MIB // 512 <= st.st_blocks <=
         MIB // 512 + 8 * t.bsize // 512, st.st_blocks)


@check
def mmap_rw(t):
    ps = mmap.PAGESIZE
    fd = os.open("f", os.O_CREAT | os.O_RDWR, 0o644)
    os.ftruncate(fd, 2 * ps + 100)
    m = mmap.mmap(fd, 2 * ps + 100)
    m[0:5] = b"hello"
    m[ps + 10:ps + 15] = b"world"
    m[2 * ps + 95:2 * ps + 100] = b"tail!"
    m.flush()
    m.close()
    os.close(fd)
    data = read_file("f")
    eq("size", 2 * ps + 100, len(data))
    eq("mmap writes", (b"hello", b"world", b"tail!"),
       (data[0:5], data[ps + 10:ps + 15], data[-5:]))
    write_file("g", b"read by mmap" * 1000)
    fd = os.open("g", os.O_RDONLY)
    m = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
    eq("mmap read", b"read by mmap" * 1000, m[:])
    m.close()
    os.close(fd)


@check
def o_direct(t):
    try:
        fd = os.open("f", os.O_CREAT | os.O_RDWR | os.O_DIRECT, 0o644)
    except OSError as e:
        raise Failure("expected open O_DIRECT to succeed, got %s" %
                      ename(e.errno))
    buf = mmap.mmap(-1, 8192)
    buf.write(rbytes(3, 8192))
    eq("direct write", 8192, os.pwrite(fd, buf, 4096))
    rd = mmap.mmap(-1, 8192)
    eq("direct read", 8192, os.preadv(fd, [rd], 4096))
    eq("direct read content", rbytes(3, 8192), rd[:])
    os.close(fd)
    eq("buffered read of direct write", bytes(4096) + rbytes(3, 8192),
       read_file("f"))


# ---------------------------------------------------------------------------
# truncate

@check
def truncate_up_down(t):
    write_file("f", b"x" * 10000)
    os.truncate("f", 5000)
    eq("size after shrink", 5000, os.stat("f").st_size)
    os.truncate("f", 20000)
    eq("grown content", b"x" * 5000 + bytes(15000), read_file("f"))
    write_file("g", b"y" * 8192)
    os.truncate("g", 4097)
    os.truncate("g", 8192)
    eq("partial block zeroed", b"y" * 4097 + bytes(4095), read_file("g"))
    fd = os.open("h", os.O_CREAT | os.O_RDWR, 0o644)
    os.write(fd, b"z" * 3000)
    os.ftruncate(fd, 1)
    os.pwrite(fd, b"!", 2999)
    eq("pwrite after ftruncate", b"z" + bytes(2998) + b"!",
       pread_all(fd, 5000, 0))
    os.ftruncate(fd, 0)
    eq("ftruncate to 0", (0, 0), (os.fstat(fd).st_size,
                                  os.fstat(fd).st_blocks))
    os.close(fd)


@check
def truncate_errors(t):
    write_file("f", b"abc")
    fd = os.open("f", os.O_RDONLY)
    expect_errno(errno.EINVAL, os.ftruncate, fd, 0,
                 what="ftruncate on an O_RDONLY fd")
    os.close(fd)
    os.mkdir("d")
    expect_errno(errno.EISDIR, os.truncate, "d", 0)
    expect_errno(errno.EINVAL, os.truncate, "f", -1)
    expect_errno(errno.ENOENT, os.truncate, "missing", 0)
    eq("content unchanged", b"abc", read_file("f"))


# ---------------------------------------------------------------------------
# fallocate, SEEK_DATA/SEEK_HOLE, copy_file_range

def _need_extents(t):
    if t.no_fallocate:
        raise Skip("fallocate needs extent-mapped files")


@check
def fallocate_default(t):
    _need_extents(t)
    fd = os.open("f", os.O_CREAT | os.O_RDWR, 0o644)
    fallocate(fd, 0, 0, MIB)
    st = os.fstat(fd)
    eq("size after fallocate", MIB, st.st_size)
    true("blocks allocated", st.st_blocks >= MIB // 512, st.st_blocks)
    eq("reads zeros", bytes(MIB), pread_all(fd, MIB, 0))
    fallocate(fd, 0, 0, 4096)
    eq("size after fallocate inside", MIB, os.fstat(fd).st_size)
    os.pwrite(fd, b"data", 1000)
    eq("write into preallocated", b"data", os.pread(fd, 4, 1000))
    os.close(fd)


@check
def fallocate_keep_size(t):
    _need_extents(t)
    fd = os.open("f", os.O_CREAT | os.O_RDWR, 0o644)
    os.write(fd, b"abc")
    fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, MIB)
    st = os.fstat(fd)
    eq("size after KEEP_SIZE", 3, st.st_size)
    true("blocks allocated", st.st_blocks >= MIB // 512, st.st_blocks)
    eq("content", b"abc", os.pread(fd, 100, 0))
    os.ftruncate(fd, 2 * MIB)
    eq("zeros over preallocated region", bytes(100), os.pread(fd, 100, 5000))
    os.close(fd)


@check
def fallocate_punch(t):
    _need_extents(t)
    fd = os.open("f", os.O_CREAT | os.O_RDWR, 0o644)
    os.write(fd, b"\xab" * MIB)
    os.fsync(fd)
    os.close(fd)
    fd = os.open("f", os.O_RDWR)
    b0 = os.fstat(fd).st_blocks
    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 256 << 10,
              256 << 10)
    st = os.fstat(fd)
    eq("size after punch", MIB, st.st_size)
    freed = b0 - st.st_blocks
    true("st_blocks shrinks by the hole (512 sectors, +- a map block)",
         512 - 2 * t.bsize // 512 <= freed <= 512, freed)
    data = pread_all(fd, MIB, 0)
    eq("punched content", b"\xab" * (256 << 10) + bytes(256 << 10) +
       b"\xab" * (512 << 10), data)
    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000, 4000)
    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, MIB - 10, 100)
    data = pread_all(fd, MIB, 0)
    eq("unaligned punches", b"\xab" * 1000 + bytes(4000) +
       b"\xab" * ((256 << 10) - 5000) + bytes(256 << 10) +
       b"\xab" * ((512 << 10) - 10) + bytes(10), data)
    eq("size after punch past EOF", MIB, os.fstat(fd).st_size)
    expect_errno(errno.EOPNOTSUPP, fallocate, fd, FALLOC_FL_PUNCH_HOLE, 0,
                 4096, what="PUNCH_HOLE without KEEP_SIZE")
    os.close(fd)


@check
def fallocate_zero_range(t):
    _need_extents(t)
    fd = os.open("f", os.O_CREAT | os.O_RDWR, 0o644)
    os.write(fd, b"\xcd" * 65536)
    os.fsync(fd)
    fallocate(fd, FALLOC_FL_ZERO_RANGE, 1000, 20000)
    eq("zeroed content", b"\xcd" * 1000 + bytes(20000) +
       b"\xcd" * (65536 - 21000), pread_all(fd, 65536, 0))
    eq("size", 65536, os.fstat(fd).st_size)
    fallocate(fd, FALLOC_FL_ZERO_RANGE, 65536, 8192)
    eq("size after ZERO_RANGE past EOF", 65536 + 8192, os.fstat(fd).st_size)
    b0 = os.fstat(fd).st_blocks
    fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 81920, 65536)
    st = os.fstat(fd)
    eq("size after ZERO_RANGE|KEEP_SIZE", 65536 + 8192, st.st_size)
    true("blocks grow with ZERO_RANGE|KEEP_SIZE",
         st.st_blocks >= b0 + 65536 // 512, st.st_blocks)
    os.close(fd)


@check
def fallocate_collapse_insert(t):
    _need_extents(t)
    bs = t.bsize
    fd = os.open("f", os.O_CREAT | os.O_RDWR, 0o644)
    for i in range(4):
        os.write(fd, bytes([i + 1]) * bs)
    os.fsync(fd)
    fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, bs, bs)
    eq("size after collapse", 3 * bs, os.fstat(fd).st_size)
    eq("content after collapse", b"\1" * bs + b"\3" * bs + b"\4" * bs,
       pread_all(fd, 4 * bs, 0))
    fallocate(fd, FALLOC_FL_INSERT_RANGE, bs, bs)
    eq("size after insert", 4 * bs, os.fstat(fd).st_size)
    eq("content after insert", b"\1" * bs + bytes(bs) + b"\3" * bs +
       b"\4" * bs, pread_all(fd, 5 * bs, 0))
    expect_errno(errno.EINVAL, fallocate, fd, FALLOC_FL_COLLAPSE_RANGE, 100,
                 bs, what="unaligned COLLAPSE_RANGE")
    expect_errno(errno.EINVAL, fallocate, fd, FALLOC_FL_COLLAPSE_RANGE, bs,
                 4 * bs, what="COLLAPSE_RANGE reaching EOF")
    expect_errno(errno.EINVAL, fallocate, fd, FALLOC_FL_INSERT_RANGE,
                 4 * bs, bs, what="INSERT_RANGE at EOF")
    os.close(fd)


@check
def fallocate_indirect(t):
    if not t.no_fallocate:
        raise Skip("only for indirect-mapped files")
    fd = os.open("f", os.O_CREAT | os.O_RDWR, 0o644)
    os.write(fd, b"\xee" * 65536)
    for mode in (0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_ZERO_RANGE,
                 FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_INSERT_RANGE):
        expect_errno(errno.EOPNOTSUPP, fallocate, fd, mode, 0, 4096,
                     what="fallocate mode %#x on an indirect file" % mode)
    eq("size unchanged", 65536, os.fstat(fd).st_size)
    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 8192)
    eq("punched content", b"\xee" * 4096 + bytes(8192) +
       b"\xee" * (65536 - 12288), pread_all(fd, 65536, 0))
    os.close(fd)


def _seek_expectations(fd, size):
    eq("SEEK_DATA from 0", MIB, os.lseek(fd, 0, os.SEEK_DATA))
    eq("SEEK_HOLE from 0", 0, os.lseek(fd, 0, os.SEEK_HOLE))
    eq("SEEK_HOLE from data", size, os.lseek(fd, MIB, os.SEEK_HOLE))
    eq("SEEK_DATA inside data", MIB + 10,
       os.lseek(fd, MIB + 10, os.SEEK_DATA))
    expect_errno(errno.ENXIO, os.lseek, fd, size, os.SEEK_DATA,
                 what="SEEK_DATA at EOF")
    expect_errno(errno.ENXIO, os.lseek, fd, size + 100, os.SEEK_HOLE,
                 what="SEEK_HOLE past EOF")


@check
def seek_data_hole(t):
    fd = os.open("f", os.O_CREAT | os.O_RDWR, 0o644)
    os.pwrite(fd, b"d" * 4096, MIB)
    os.fsync(fd)
    os.close(fd)
    size = MIB + 4096
    fd = os.open("f", os.O_RDONLY)
    _seek_expectations(fd, size)
    os.close(fd)
    os.truncate("f", 3 * MIB)
    fd = os.open("f", os.O_RDONLY)
    eq("SEEK_DATA after growing", MIB, os.lseek(fd, 0, os.SEEK_DATA))
    eq("SEEK_HOLE after growing", size, os.lseek(fd, MIB, os.SEEK_HOLE))
    expect_errno(errno.ENXIO, os.lseek, fd, size, os.SEEK_DATA,
                 what="SEEK_DATA in the trailing hole")
    eq("SEEK_HOLE in the trailing hole", 2 * MIB,
       os.lseek(fd, 2 * MIB, os.SEEK_HOLE))
    os.close(fd)


@check
def seek_data_hole_open_writer(t):
    fd = os.open("f", os.O_CREAT | os.O_RDWR, 0o644)
    os.pwrite(fd, b"d" * 4096, MIB)
    os.fsync(fd)
    _seek_expectations(fd, MIB + 4096)
    os.pwrite(fd, b"e" * 4096, 2 * MIB)
    eq("SEEK_DATA finds unsynced data", 2 * MIB,
       os.lseek(fd, MIB + 4096, os.SEEK_DATA))
    os.close(fd)


@check
def seek_data_unwritten(t):
    _need_extents(t)
    fd = os.open("f", os.O_CREAT | os.O_RDWR, 0o644)
    fallocate(fd, 0, 0, 65536)
    os.close(fd)
    fd = os.open("f", os.O_RDONLY)
    expect_errno(errno.ENXIO, os.lseek, fd, 0, os.SEEK_DATA,
                 what="SEEK_DATA over only unwritten extents")
    eq("SEEK_HOLE over unwritten", 0, os.lseek(fd, 0, os.SEEK_HOLE))
    os.close(fd)
    fd = os.open("f", os.O_RDWR)
    os.pwrite(fd, b"w" * 4096, 16384)
    os.fsync(fd)
    os.close(fd)
    fd = os.open("f", os.O_RDONLY)
    eq("SEEK_DATA finds the written part", 16384,
       os.lseek(fd, 0, os.SEEK_DATA))
    eq("SEEK_HOLE after the written part", 20480,
       os.lseek(fd, 16384, os.SEEK_HOLE))
    os.close(fd)


@check
def copy_file_range(t):
    src = rbytes(4, 100000)
    write_file("src", src)
    write_file("dst", b"#" * 1000)
    fs = os.open("src", os.O_RDONLY)
    fdst = os.open("dst", os.O_RDWR)
    done = 0
    while done < 50000:
        n = os.copy_file_range(fs, fdst, 50000 - done, 10000 + done,
                               4096 + done)
        if n == 0:
            break
        done += n
    eq("bytes copied", 50000, done)
    eq("copy past source EOF", 0, os.copy_file_range(fs, fdst, 100, 200000,
                                                      0))
    os.close(fs)
    os.close(fdst)
    eq("destination content", b"#" * 1000 + bytes(3096) + src[10000:60000],
       read_file("dst"))


# ---------------------------------------------------------------------------
# attributes and timestamps

@check
def chmod_bits(t):
    touch("f")
    os.mkdir("d")
    for m in (0o7777, 0o4755, 0o2755, 0o1777, 0o0, 0o640):
        os.chmod("f", m)
        eq("file mode after chmod %o" % m, m, mode_of("f"))
        os.chmod("d", m)
        eq("dir mode after chmod %o" % m, m, mode_of("d"))
    os.chmod("d", 0o755)
    eq("type kept", True, stat.S_ISREG(os.stat("f").st_mode))


@check
def chown_root(t):
    touch("f")
    os.chown("f", 1234, 5678)
    st = os.stat("f")
    eq("uid/gid", (1234, 5678), (st.st_uid, st.st_gid))
    os.chown("f", -1, 99)
    st = os.stat("f")
    eq("gid only", (1234, 99), (st.st_uid, st.st_gid))
    os.chown("f", 100000, 4000000000)
    st = os.stat("f")
    eq("32-bit ids", (100000, 4000000000), (st.st_uid, st.st_gid))
    os.symlink("f", "l")
    os.chown("l", 77, 88, follow_symlinks=False)
    st = os.lstat("l")
    eq("lchown of symlink", (77, 88), (st.st_uid, st.st_gid))
    st = os.stat("f")
    eq("target untouched by lchown", (100000, 4000000000),
       (st.st_uid, st.st_gid))


@check
def utime_ns(t):
    touch("f")
    cases = [(1234567890123456789, 987654321987654321),
             ((2**31 + 1000) * 10**9 + 5, (2**32 + 7) * 10**9 + 999999999),
             (-10**18 + 1, -123456789012345678),
             (0, 1)]
    for a, m in cases:
        os.utime("f", ns=(a, m))
        st = os.stat("f")
        eq("atime/mtime after utime %d %d" % (a, m), (a, m),
           (st.st_atime_ns, st.st_mtime_ns))
    os.symlink("f", "l")
    os.utime("l", ns=(5 * 10**9, 6 * 10**9), follow_symlinks=False)
    st = os.lstat("l")
    eq("symlink times", (5 * 10**9, 6 * 10**9),
       (st.st_atime_ns, st.st_mtime_ns))
    eq("target times untouched", 1, os.stat("f").st_mtime_ns)


@check
def utime_clamped(t):
    touch("f")
    os.utime("f", ns=(2**35 * 10**9 + 5, 2**35 * 10**9 + 5))
    st = os.stat("f")
    eq("times past ext4's range clamp to the max",
       (EXT4_TIME_MAX * 10**9, EXT4_TIME_MAX * 10**9),
       (st.st_atime_ns, st.st_mtime_ns))
    os.utime("f", ns=(-2**33 * 10**9, -2**33 * 10**9))
    st = os.stat("f")
    eq("times before ext4's range clamp to the min",
       (EXT4_TIME_MIN * 10**9, EXT4_TIME_MIN * 10**9),
       (st.st_atime_ns, st.st_mtime_ns))


@check
def utime_omit_now(t):
    touch("f")
    os.utime("f", ns=(10**18 + 111, 11 * 10**17 + 222))
    utimensat("f", (0, UTIME_OMIT), (1200000000, 5))
    st = os.stat("f")
    eq("UTIME_OMIT atime", (10**18 + 111, 1200000000 * 10**9 + 5),
       (st.st_atime_ns, st.st_mtime_ns))
    c0 = st.st_ctime_ns
    tick()
    before = time.time_ns()
    utimensat("f", (0, UTIME_NOW), (0, UTIME_OMIT))
    st = os.stat("f")
    eq("mtime kept with UTIME_OMIT", 1200000000 * 10**9 + 5, st.st_mtime_ns)
    true("atime set to now", abs(st.st_atime_ns - before) < 5 * 10**9,
         st.st_atime_ns)
    later("ctime on UTIME_NOW", c0, st.st_ctime_ns)
    c1 = st.st_ctime_ns
    tick()
    utimensat("f", (0, UTIME_OMIT), (0, UTIME_OMIT))
    eq("ctime with both omitted", c1, os.stat("f").st_ctime_ns)
    utimensat_null("f")
    st = os.stat("f")
    true("NULL times set both to now",
         abs(st.st_mtime_ns - time.time_ns()) < 5 * 10**9 and
         abs(st.st_atime_ns - time.time_ns()) < 5 * 10**9, st)


@check
def ctime_on_chmod_chown(t):
    touch("f")
    c0 = os.stat("f").st_ctime_ns
    tick()
    os.chmod("f", 0o600)
    c1 = os.stat("f").st_ctime_ns
    later("ctime on chmod", c0, c1)
    tick()
    os.chown("f", 5, 5)
    c2 = os.stat("f").st_ctime_ns
    later("ctime on chown", c1, c2)
    tick()
    os.utime("f", ns=(10**9, 10**9))
    later("ctime on utime", c2, os.stat("f").st_ctime_ns)


@check
def times_on_write_truncate(t):
    write_file("f", b"abc")

    def pwrite_one():
        fd = os.open("f", os.O_WRONLY)
        os.pwrite(fd, b"x", 1)
        os.close(fd)
    steps = [("write", pwrite_one),
             ("truncate", lambda: os.truncate("f", 1)),
             ("truncate to the same size", lambda: os.truncate("f", 1)),
             ("O_TRUNC",
              lambda: os.close(os.open("f", os.O_WRONLY | os.O_TRUNC)))]
    for what, step in steps:
        os.utime("f", ns=(10**18, 10**18))
        ctime = os.stat("f").st_ctime_ns
        tick()
        step()
        st = os.stat("f")
        later("mtime on " + what, 10**18, st.st_mtime_ns)
        later("ctime on " + what, ctime, st.st_ctime_ns)
    eq("atime untouched by write/truncate", 10**18, st.st_atime_ns)


@check
def dir_times(t):
    os.mkdir("d")
    touch("d/existing")
    os.mkdir("other")
    steps = [("create", lambda: touch("d/new")),
             ("unlink", lambda: os.unlink("d/new")),
             ("mkdir", lambda: os.mkdir("d/sub")),
             ("rmdir", lambda: os.rmdir("d/sub")),
             ("rename within", lambda: os.rename("d/existing", "d/e2")),
             ("rename out", lambda: os.rename("d/e2", "other/e2")),
             ("rename in", lambda: os.rename("other/e2", "d/e3")),
             ("link", lambda: os.link("d/e3", "d/e4")),
             ("symlink", lambda: os.symlink("x", "d/sl")),
             ("mknod", lambda: os.mknod("d/fifo", stat.S_IFIFO | 0o644))]
    for what, op in steps:
        os.utime("d", ns=(10**18, 10**18))
        c0 = os.stat("d").st_ctime_ns
        tick()
        op()
        st = os.stat("d")
        later("dir mtime on " + what, 10**18, st.st_mtime_ns)
        later("dir ctime on " + what, c0, st.st_ctime_ns)


@check
def ctime_on_link_unlink(t):
    touch("f")
    c0 = os.stat("f").st_ctime_ns
    tick()
    os.link("f", "g")
    c1 = os.stat("f").st_ctime_ns
    later("ctime on link", c0, c1)
    tick()
    os.unlink("g")
    c2 = os.stat("f").st_ctime_ns
    later("ctime on unlink of another name", c1, c2)


@check
def chown_clears_suid(t):
    cases = [(0o6755, 0o0755), (0o2755, 0o0755), (0o4755, 0o0755),
             (0o2644, 0o2644), (0o6644, 0o2644)]
    for i, (before, after) in enumerate(cases):
        name = "f%d" % i
        touch(name)
        os.chmod(name, before)
        os.chown(name, 1234, 1234)
        eq("mode after chown of %o" % before, after, mode_of(name))
    touch("same")
    os.chmod("same", 0o6755)
    os.chown("same", -1, -1)
    eq("mode after chown(-1, -1) of 6755", 0o755, mode_of("same"))
    os.mkdir("d")
    os.chmod("d", 0o6755)
    os.chown("d", 1234, 1234)
    eq("dir mode after chown", 0o6755, mode_of("d"))


@check
def write_clears_suid(t):
    cases = [(0o6777, 0o0777), (0o6766, 0o2766), (0o4777, 0o0777),
             (0o2777, 0o0777)]
    for i, (before, after) in enumerate(cases):
        name = "f%d" % i
        touch(name)
        os.chown(name, NOBODY, NOBODY)
        os.chmod(name, before)

        def write(name=name):
            fd = os.open(name, os.O_WRONLY)
            os.write(fd, b"x")
            os.close(fd)
        user_expect("write to %o file" % before, "ok", write)
        eq("mode after unprivileged write to %o" % before, after,
           mode_of(name))
    touch("root")
    os.chmod("root", 0o6777)
    write_file("root", b"by root")
    eq("root's write keeps setuid/setgid", 0o6777, mode_of("root"))


@check
def truncate_clears_suid(t):
    touch("f")
    os.chown("f", NOBODY, NOBODY)
    os.chmod("f", 0o6777)
    user_expect("truncate", "ok", lambda: os.truncate("f", 100))
    eq("mode after unprivileged truncate", 0o777, mode_of("f"))
    eq("size", 100, os.stat("f").st_size)


@check
def chmod_sgid_not_in_group(t):
    touch("f")
    os.chown("f", NOBODY, OTHER_UID)
    user_expect("chmod 2755 of own file", "ok",
                lambda: os.chmod("f", 0o2755))
    eq("setgid dropped (not in the file's group)", 0o755, mode_of("f"))
    touch("g")
    os.chown("g", NOBODY, NOBODY)
    user_expect("chmod 2755 of own file in own group", "ok",
                lambda: os.chmod("g", 0o2755))
    eq("setgid kept (in the group)", 0o2755, mode_of("g"))


@check
def setgid_directory(t):
    os.mkdir("s")
    os.chown("s", 0, OTHER_UID)
    os.chmod("s", 0o2775)
    touch("s/f")
    eq("file gid in setgid dir", OTHER_UID, os.stat("s/f").st_gid)
    eq("file mode", 0o644, mode_of("s/f"))
    os.mkdir("s/sub", 0o755)
    st = os.stat("s/sub")
    eq("subdir gid", OTHER_UID, st.st_gid)
    eq("subdir mode keeps setgid", 0o2755, stat.S_IMODE(st.st_mode))
    os.mkdir("s/sub/deeper")
    eq("setgid propagates", (OTHER_UID, 0o2755),
       (os.stat("s/sub/deeper").st_gid, mode_of("s/sub/deeper")))
    os.mknod("s/fifo", stat.S_IFIFO | 0o644)
    eq("fifo gid", OTHER_UID, os.stat("s/fifo").st_gid)
    os.symlink("x", "s/sl")
    eq("symlink gid", OTHER_UID, os.lstat("s/sl").st_gid)
    fd = os.open("s/rootsgid", os.O_CREAT | os.O_WRONLY, 0o2755)
    os.close(fd)
    eq("root keeps setgid on a file it creates", 0o2755,
       mode_of("s/rootsgid"))
    os.chmod("s", 0o2777)

    def create():
        os.close(os.open("s/usr", os.O_CREAT | os.O_WRONLY, 0o2777))
    user_expect("create in setgid dir", "ok", create, umask=0)
    st = os.stat("s/usr")
    eq("user file gid", OTHER_UID, st.st_gid)
    eq("user file loses setgid (not in group)", 0o777,
       stat.S_IMODE(st.st_mode))


@check
def sticky_directory(t):
    os.mkdir("s")
    os.chmod("s", 0o1777)
    touch("s/other")
    os.chown("s/other", OTHER_UID, OTHER_UID)
    os.chmod("s/other", 0o666)
    os.mkdir("s/otherdir")
    os.chown("s/otherdir", OTHER_UID, OTHER_UID)
    user_expect("unlink another user's file in sticky dir", "EPERM",
                lambda: os.unlink("s/other"))
    user_expect("rename another user's file in sticky dir", "EPERM",
                lambda: os.rename("s/other", "s/x"))
    user_expect("rmdir another user's dir in sticky dir", "EPERM",
                lambda: os.rmdir("s/otherdir"))

    def own():
        touch("s/mine")
        try:
            os.rename("s/mine", "s/other")
        except OSError as e:
            over = ename(e.errno)
        else:
            over = "ok"
        os.rename("s/mine", "s/mine2")
        os.unlink("s/mine2")
        return over
    got = user_expect("create/rename/unlink own file", "ok", own)
    eq("rename own file over another user's file", "EPERM", got)
    eq("other's file still there", OTHER_UID, os.stat("s/other").st_uid)
    eq("listing", ["other", "otherdir"], sorted(os.listdir("s")))
    os.unlink("s/other")


@check
def permissions_user(t):
    write_file("secret", b"s", 0o600)
    os.chmod("secret", 0o600)
    user_expect("open 0600 root file", "EACCES",
                lambda: os.close(os.open("secret", os.O_RDONLY)))
    os.mkdir("ro", 0o755)
    touch("ro/f")
    user_expect("create in 0755 root dir", "EACCES", lambda: touch("ro/new"))
    user_expect("mkdir in 0755 root dir", "EACCES",
                lambda: os.mkdir("ro/new"))
    user_expect("unlink in 0755 root dir", "EACCES",
                lambda: os.unlink("ro/f"))
    user_expect("rename in 0755 root dir", "EACCES",
                lambda: os.rename("ro/f", "ro/g"))
    write_file("pub", b"p", 0o644)
    user_expect("write to 0644 root file", "EACCES",
                lambda: os.close(os.open("pub", os.O_WRONLY)))
    user_expect("read 0644 root file", "ok", lambda: read_file("pub"))
    user_expect("chmod of root's file", "EPERM",
                lambda: os.chmod("pub", 0o777))
    user_expect("chown of root's file", "EPERM",
                lambda: os.chown("pub", NOBODY, NOBODY))
    user_expect("utime(NULL) of unwritable file", "EACCES",
                lambda: utimensat_null("pub"))
    user_expect("explicit utime of another's file", "EPERM",
                lambda: os.utime("pub", ns=(1, 1)))
    os.chmod("pub", 0o666)
    user_expect("utime(NULL) of writable file", "ok",
                lambda: utimensat_null("pub"))
    user_expect("explicit utime of another's writable file", "EPERM",
                lambda: os.utime("pub", ns=(1, 1)))
    os.mkdir("closed", 0o700)
    touch("closed/f")
    user_expect("stat inside a 0700 dir", "EACCES",
                lambda: os.stat("closed/f"))
    user_expect("list a 0700 dir", "EACCES", lambda: os.listdir("closed"))
    touch("mine")
    os.chown("mine", NOBODY, NOBODY)
    user_expect("chown own file to another uid", "EPERM",
                lambda: os.chown("mine", OTHER_UID, -1))
    user_expect("chown own file to a foreign group", "EPERM",
                lambda: os.chown("mine", -1, OTHER_UID))
    user_expect("chown own file to own ids", "ok",
                lambda: os.chown("mine", NOBODY, NOBODY))
    user_expect("chmod own file", "ok", lambda: os.chmod("mine", 0o600))
    eq("mode of own file", 0o600, mode_of("mine"))
    user_expect("explicit utime of own file", "ok",
                lambda: os.utime("mine", ns=(7, 8)))
    eq("times of own file", 8, os.stat("mine").st_mtime_ns)


# ---------------------------------------------------------------------------
# extended attributes

@check
def xattr_basic(t):
    touch("f")
    os.setxattr("f", "user.a", b"value-a")
    os.setxattr("f", "user.empty", b"")
    os.setxattr("f", "user.bin", bytes(range(256)))
    eq("get", b"value-a", os.getxattr("f", "user.a"))
    eq("empty value", b"", os.getxattr("f", "user.empty"))
    eq("binary value", bytes(range(256)), os.getxattr("f", "user.bin"))
    eq("list", ["user.a", "user.bin", "user.empty"],
       sorted(os.listxattr("f")))
    os.setxattr("f", "user.a", b"replaced, and longer than before")
    eq("replaced", b"replaced, and longer than before",
       os.getxattr("f", "user.a"))
    os.removexattr("f", "user.a")
    eq("list after remove", ["user.bin", "user.empty"],
       sorted(os.listxattr("f")))
    os.mkdir("d")
    os.setxattr("d", "user.dir", b"on a dir")
    eq("xattr on a dir", b"on a dir", os.getxattr("d", "user.dir"))
    os.setxattr("f", "trusted.t", b"trusted value")
    eq("trusted namespace", b"trusted value", os.getxattr("f", "trusted.t"))
    true("trusted.t listed for root", "trusted.t" in os.listxattr("f"),
         os.listxattr("f"))
    os.symlink("f", "l")
    os.setxattr("l", "trusted.onlink", b"link value", follow_symlinks=False)
    eq("trusted xattr on a symlink", b"link value",
       os.getxattr("l", "trusted.onlink", follow_symlinks=False))
    true("symlink xattr not on the target",
         "trusted.onlink" not in os.listxattr("f"), os.listxattr("f"))
    c0 = os.stat("f").st_ctime_ns
    tick()
    os.setxattr("f", "user.c", b"c")
    later("ctime on setxattr", c0, os.stat("f").st_ctime_ns)


@check
def xattr_errors(t):
    touch("f")
    os.setxattr("f", "user.x", b"1")
    expect_errno(errno.EEXIST, os.setxattr, "f", "user.x", b"2",
                 XATTR_CREATE)
    expect_errno(errno.ENODATA, os.setxattr, "f", "user.y", b"2",
                 XATTR_REPLACE)
    expect_errno(errno.ENODATA, os.getxattr, "f", "user.y")
    expect_errno(errno.ENODATA, os.removexattr, "f", "user.y")
    os.setxattr("f", "user.x", b"3", XATTR_REPLACE)
    os.setxattr("f", "user.z", b"4", XATTR_CREATE)
    eq("values", (b"3", b"4"), (os.getxattr("f", "user.x"),
                                os.getxattr("f", "user.z")))
    expect_errno(errno.EOPNOTSUPP, os.setxattr, "f", "foo.bar", b"x",
                 what="setxattr in an unknown namespace")
    expect_errno(errno.EOPNOTSUPP, os.getxattr, "f", "foo.bar",
                 what="getxattr in an unknown namespace")
    expect_errno(errno.EOPNOTSUPP, os.removexattr, "f", "foo.bar",
                 what="removexattr in an unknown namespace")
    expect_errno(errno.ENODATA, os.getxattr, "f", "trusted.none")


@check
def xattr_name_value_limits(t):
    touch("f")
    long_ok = "user." + "n" * 250
    os.setxattr("f", long_ok, b"v")
    eq("255-byte name", b"v", os.getxattr("f", long_ok))
    expect_errno(errno.ERANGE, os.setxattr, "f", "user." + "n" * 251, b"v",
                 what="setxattr with a 256-byte name")
    expect_errno(errno.ERANGE, os.getxattr, "f", "user." + "n" * 251,
                 what="getxattr with a 256-byte name")
    expect_errno(errno.E2BIG, os.setxattr, "f", "user.huge", b"h" * 70000,
                 what="setxattr of a 70000-byte value")
    expect_errno(errno.ENOSPC, os.setxattr, "f", "user.block",
                 b"b" * t.bsize, what="setxattr of a block-sized value")
    eq("list after failures", [long_ok], os.listxattr("f"))


@check
def xattr_block_value(t):
    touch("f")
    size = min(3000, t.bsize - 200)
    v = rbytes(5, size)
    os.setxattr("f", "user.big", v)
    os.setxattr("f", "user.small", b"s")
    eq("big value", v, os.getxattr("f", "user.big"))
    eq("small value", b"s", os.getxattr("f", "user.small"))
    true("an xattr block is counted in st_blocks",
         os.stat("f").st_blocks >= t.bsize // 512, os.stat("f").st_blocks)
    os.removexattr("f", "user.big")
    eq("list after removing big", ["user.small"], os.listxattr("f"))


@check
def xattr_small_buffer(t):
    touch("f")
    os.setxattr("f", "user.ten", b"0123456789")
    eq("size query", 10, getxattr_size("f", "user.ten", 0))
    expect_errno(errno.ERANGE, getxattr_size, "f", "user.ten", 1)
    expect_errno(errno.ERANGE, getxattr_size, "f", "user.ten", 9)
    eq("exact buffer", 10, getxattr_size("f", "user.ten", 10))
    eq("list size query", len(b"user.ten\0"), listxattr_size("f", 0))
    expect_errno(errno.ERANGE, listxattr_size, "f", 1)


@check
def xattr_fill_enospc(t):
    touch("f")
    done = []
    err = None
    for i in range(2000):
        name = "user.fill%04d" % i
        try:
            os.setxattr("f", name, rbytes(i, 100))
        except OSError as e:
            err = e.errno
            break
        done.append(name)
    eq("errno when xattr space runs out", "ENOSPC",
       ename(err) if err else "none")
    true("some xattrs fitted", len(done) > 3, len(done))
    for i, name in enumerate(done):
        eq("value of " + name, rbytes(i, 100), os.getxattr("f", name))
    eq("listed", sorted(done), sorted(os.listxattr("f")))
    os.removexattr("f", done[0])
    os.setxattr("f", "user.refill", rbytes(0, 100))
    eq("set after freeing space", rbytes(0, 100),
       os.getxattr("f", "user.refill"))


@check
def xattr_shared_block(t):
    size = min(2000, t.bsize // 2)
    v1 = b"S" * size
    for name in ("a", "b", "c"):
        touch(name)
        os.setxattr(name, "user.s", v1)
        os.setxattr(name, "user.t", b"tag")
    os.setxattr("a", "user.s", b"changed")
    eq("a changed", b"changed", os.getxattr("a", "user.s"))
    eq("b kept", v1, os.getxattr("b", "user.s"))
    os.removexattr("b", "user.s")
    eq("c kept after b's removal", v1, os.getxattr("c", "user.s"))
    expect_errno(errno.ENODATA, os.getxattr, "b", "user.s")
    eq("b's other xattr", b"tag", os.getxattr("b", "user.t"))
    os.unlink("c")
    eq("a after c's unlink", b"changed", os.getxattr("a", "user.s"))


# ---------------------------------------------------------------------------
# POSIX ACLs (raw xattr format)

def acl(*entries):
    out = struct.pack("<I", 2)
    for tag, perm, *ident in entries:
        out += struct.pack("<HHI", tag, perm,
                           ident[0] if ident else ACL_UNDEFINED_ID)
    return out


def acl_text(value):
    """An ACL xattr value in getfacl's short form, for messages."""
    if len(value) < 4 or (len(value) - 4) % 8:
        return "malformed %r" % value
    tags = {ACL_USER_OBJ: "u:", ACL_USER: "u:", ACL_GROUP_OBJ: "g:",
            ACL_GROUP: "g:", ACL_MASK: "m:", ACL_OTHER: "o:"}
    out = []
    for pos in range(4, len(value), 8):
        tag, perm, ident = struct.unpack_from("<HHI", value, pos)
        who = "" if ident == ACL_UNDEFINED_ID else str(ident)
        rwx = "".join(c if perm & b else "-"
                      for c, b in (("r", 4), ("w", 2), ("x", 1)))
        out.append("%s%s:%s" % (tags.get(tag, "?%d:" % tag), who, rwx))
    return "v%d " % struct.unpack_from("<I", value)[0] + ",".join(out)


def get_acl(path, name):
    return acl_text(os.getxattr(path, name))


@check
def acl_access(t):
    write_file("f", b"acl", 0o640)
    os.chmod("f", 0o640)
    value = acl((ACL_USER_OBJ, 6), (ACL_USER, 6, NOBODY),
                (ACL_GROUP_OBJ, 4), (ACL_MASK, 6), (ACL_OTHER, 0))
    os.setxattr("f", ACL_ACCESS, value)
    eq("ACL read back", acl_text(value), get_acl("f", ACL_ACCESS))
    eq("mode group bits show the mask", 0o660, mode_of("f"))
    user_expect("open for the named user", "ok",
                lambda: os.close(os.open("f", os.O_RDWR)))
    user_expect("open for another user", "EACCES",
                lambda: os.close(os.open("f", os.O_RDONLY)), uid=OTHER_UID,
                gid=OTHER_UID)
    os.chmod("f", 0o600)
    eq("chmod rewrites the mask", acl_text(acl(
        (ACL_USER_OBJ, 6), (ACL_USER, 6, NOBODY), (ACL_GROUP_OBJ, 4),
        (ACL_MASK, 0), (ACL_OTHER, 0))), get_acl("f", ACL_ACCESS))
    user_expect("open for the named user after mask 0", "EACCES",
                lambda: os.close(os.open("f", os.O_RDONLY)))


@check
def acl_minimal(t):
    touch("f")
    os.setxattr("f", ACL_ACCESS, acl((ACL_USER_OBJ, 7), (ACL_GROUP_OBJ, 5),
                                     (ACL_OTHER, 0)))
    eq("mode from a minimal ACL", 0o750, mode_of("f"))
    expect_errno(errno.ENODATA, get_acl, "f", ACL_ACCESS,
                 what="minimal ACL is not stored")
    expect_errno(errno.EINVAL, os.setxattr, "f", ACL_ACCESS,
                 b"\x02\x00\x00\x00\x01", what="malformed ACL")
    expect_errno(errno.EINVAL, os.setxattr, "f", ACL_ACCESS,
                 acl((ACL_GROUP_OBJ, 5), (ACL_USER_OBJ, 7), (ACL_OTHER, 0)),
                 what="ACL entries out of order")
    expect_errno(errno.EACCES, os.setxattr, "f", ACL_DEFAULT,
                 acl((ACL_USER_OBJ, 7), (ACL_GROUP_OBJ, 5), (ACL_OTHER, 0)),
                 what="default ACL on a file")


@check
def acl_default_inherit(t):
    os.mkdir("d", 0o755)
    dflt = acl((ACL_USER_OBJ, 7), (ACL_USER, 7, OTHER_UID),
               (ACL_GROUP_OBJ, 5), (ACL_MASK, 7), (ACL_OTHER, 0))
    os.setxattr("d", ACL_DEFAULT, dflt)
    eq("default ACL read back", acl_text(dflt), get_acl("d", ACL_DEFAULT))
    eq("dir mode unchanged", 0o755, mode_of("d"))
    fd = os.open("d/f", os.O_CREAT | os.O_WRONLY, 0o666)
    os.close(fd)
    eq("file mode from default ACL (umask ignored)", 0o660, mode_of("d/f"))
    eq("file access ACL", acl_text(acl(
        (ACL_USER_OBJ, 6), (ACL_USER, 7, OTHER_UID), (ACL_GROUP_OBJ, 5),
        (ACL_MASK, 6), (ACL_OTHER, 0))), get_acl("d/f", ACL_ACCESS))
    expect_errno(errno.ENODATA, os.getxattr, "d/f", ACL_DEFAULT,
                 what="file has no default ACL")
    os.mkdir("d/s", 0o777)
    eq("subdir mode", 0o770, mode_of("d/s"))
    eq("subdir access ACL", acl_text(dflt), get_acl("d/s", ACL_ACCESS))
    eq("subdir default ACL", acl_text(dflt), get_acl("d/s", ACL_DEFAULT))
    os.mknod("d/p", stat.S_IFIFO | 0o640)
    eq("fifo mode", 0o640, mode_of("d/p"))
    os.removexattr("d", ACL_DEFAULT)
    expect_errno(errno.ENODATA, os.getxattr, "d", ACL_DEFAULT)
    touch("d/g", 0o666)
    eq("mode after default ACL removal (umask again)", 0o644, mode_of("d/g"))


# ---------------------------------------------------------------------------
# unlinked files, O_TMPFILE, sync, statfs, readdir

@check
def open_unlinked(t):
    os.mkdir("d")
    fd = os.open("d/f", os.O_CREAT | os.O_RDWR, 0o644)
    os.write(fd, rbytes(6, 10000))
    os.unlink("d/f")
    eq("nlink of open unlinked file", 0, os.fstat(fd).st_nlink)
    os.pwrite(fd, b"later", 20000)
    eq("size", 20005, os.fstat(fd).st_size)
    eq("read back", rbytes(6, 10000), os.pread(fd, 10000, 0))
    eq("read back later write", b"later", os.pread(fd, 5, 20000))
    eq("listing", [], os.listdir("d"))
    expect_errno(errno.ENOENT, os.stat, "d/f")
    os.ftruncate(fd, 10)
    eq("ftruncate of unlinked file", 10, os.fstat(fd).st_size)
    os.rmdir("d")
    os.fsync(fd)
    os.close(fd)


@check
def o_tmpfile(t):
    try:
        fd = os.open(".", os.O_TMPFILE | os.O_RDWR, 0o600)
    except OSError as e:
        if e.errno == errno.EOPNOTSUPP:
            raise Skip("O_TMPFILE is not supported (EOPNOTSUPP)")
        raise
    os.write(fd, b"temporary")
    eq("nlink of tmpfile", 0, os.fstat(fd).st_nlink)
    eq("listing", [], os.listdir("."))
    link_fd(fd, "linked")
    eq("linked content", b"temporary", read_file("linked"))
    eq("nlink after linkat", 1, os.fstat(fd).st_nlink)
    eq("mode", 0o600, mode_of("linked"))
    os.close(fd)
    fd = os.open(".", os.O_TMPFILE | os.O_RDWR | os.O_EXCL, 0o600)
    expect_errno(errno.ENOENT, link_fd, fd, "excl",
                 what="link of an O_EXCL tmpfile")
    os.close(fd)
    eq("listing", ["linked"], os.listdir("."))


@check
def fsync_calls(t):
    fd = os.open("f", os.O_CREAT | os.O_RDWR, 0o644)
    os.write(fd, b"x" * 10000)
    os.fsync(fd)
    os.pwrite(fd, b"y", 20000)
    os.fdatasync(fd)
    os.close(fd)
    os.mkdir("d")
    dfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(dfd)
    os.close(dfd)
    dfd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(dfd)
    os.fdatasync(dfd)
    os.close(dfd)
    os.sync()
    eq("content", 20001, os.stat("f").st_size)


@check
def statfs_counts(t):
    s = os.statvfs(".")
    eq("f_namemax", 255, s.f_namemax)
    true("f_bavail <= f_bfree <= f_blocks",
         s.f_bavail <= s.f_bfree <= s.f_blocks, s)
    got = None
    for attempt in range(5):
        before = os.statvfs(".").f_ffree
        touch("n%d" % attempt)
        got = before - os.statvfs(".").f_ffree
        if got == 1:
            break
        time.sleep(0.2)
    eq("f_ffree decrease after one create", 1, got)
    want = 10 * MIB // s.f_frsize
    slack = want // 20 + 64
    got = None
    for attempt in range(3):
        before = os.statvfs(".").f_bfree
        fd = os.open("big%d" % attempt, os.O_CREAT | os.O_WRONLY, 0o644)
        os.write(fd, rbytes(7, 10 * MIB))
        os.fsync(fd)
        os.close(fd)
        got = before - os.statvfs(".").f_bfree
        if want <= got <= want + slack:
            break
        time.sleep(0.2)
    true("f_bfree decrease after writing 10 MiB in [%d, %d]" % (
        want, want + slack), want <= got <= want + slack, got)


@check
def readdir_dots(t):
    os.mkdir("sub")
    os.mkdir("sub/inner")
    touch("sub/f")
    d = dents("sub")
    eq("'.' inode", ino("sub"), d[b"."][0])
    eq("'..' inode", ino("."), d[b".."][0])
    eq("'.' and '..' are dirs", (DT_DIR, DT_DIR), (d[b"."][1], d[b".."][1]))
    eq("entries", {b".", b"..", b"inner", b"f"}, set(d))
    d = dents("sub/inner")
    eq("empty dir entries", {b".", b".."}, set(d))
    eq("inner '..'", ino("sub"), d[b".."][0])
    eq("stat('.')", ino("sub"), os.stat("sub/.").st_ino)
    eq("stat('..')", ino("."), os.stat("sub/..").st_ino)
    names = [n for n, _, _ in getdents("sub")]
    eq("no duplicates", len(names), len(set(names)))


# ---------------------------------------------------------------------------

def run_one(fn, t, verbose):
    name = fn.__name__
    d = tempfile.mkdtemp(prefix=name + ".", dir=t.root)
    os.chmod(d, 0o755)
    os.chdir(d)
    os.umask(0o022)
    del FAILURES[:]
    skipped = None
    try:
        fn(t)
    except Skip as e:
        skipped = str(e)
    except Failure as e:
        FAILURES.append(str(e))
    except Exception as e:  # an unexpected error fails the check only
        tb = traceback.extract_tb(e.__traceback__)
        where = ", ".join("line %d" % f.lineno for f in tb[1:][-3:])
        FAILURES.append("expected no exception, got %s: %s (at %s)" % (
            type(e).__name__, e, where))
    finally:
        os.chdir(t.root)
        os.umask(0o022)
    if FAILURES:
        for msg in FAILURES[:MAX_REPORTED]:
            print("FAIL %s: %s" % (name, msg))
        if len(FAILURES) > MAX_REPORTED:
            print("FAIL %s: ... and %d more" % (
                name, len(FAILURES) - MAX_REPORTED))
        return "fail"
    if skipped is not None:
        print("SKIP %s: %s" % (name, skipped))
        return "skip"
    if verbose:
        print("ok %s" % name)
    return "ok"


def main():
    ap = argparse.ArgumentParser(
        description="POSIX behaviour checks for an ext2/3/4 mount")
    ap.add_argument("dir", help="an empty directory on the filesystem")
    ap.add_argument("--no-fallocate", action="store_true",
                    help="ext2/ext3 layout: files are indirect-mapped")
    ap.add_argument("--only", help="run only checks whose name contains this")
    ap.add_argument("--skip", action="append", default=[],
                    metavar="NAME=WHY",
                    help="leave out the check NAME, printing WHY (repeatable)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    skips = {}
    for item in args.skip:
        name, _, why = item.partition("=")
        if not any(fn.__name__ == name for fn in CHECKS):
            sys.exit("posix_suite.py: --skip names no check: %s" % name)
        skips[name] = why or "left out"
    if os.geteuid() != 0:
        sys.exit("posix_suite.py must run as root")
    if SYS_GETDENTS64 is None:
        sys.exit("unsupported machine %s" % platform.machine())
    root = os.path.abspath(args.dir)
    t = Ctx(args, root)
    os.umask(0o022)
    counts = {"ok": 0, "fail": 0, "skip": 0}
    t0 = time.monotonic()
    for fn in CHECKS:
        if args.only and args.only not in fn.__name__:
            continue
        if fn.__name__ in skips:
            print("SKIP %s: %s" % (fn.__name__, skips[fn.__name__]))
            counts["skip"] += 1
            continue
        counts[run_one(fn, t, args.verbose)] += 1
        sys.stdout.flush()
    total = sum(counts.values())
    line = "%d checks, %d failed" % (total, counts["fail"])
    if counts["skip"]:
        line += ", %d skipped" % counts["skip"]
    if args.verbose:
        line += " (%.1f s)" % (time.monotonic() - t0)
    print(line)
    return 1 if counts["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
