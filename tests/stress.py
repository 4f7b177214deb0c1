#!/usr/bin/env python3
"""A randomized multi-process stress run over one directory.

    stress.py DIR [--seconds N] [--procs P] [--seed S] [--no-fallocate]

P worker processes run random operations for N seconds:

  * each in a private directory (DIR/pN) of its own, where it keeps a model
    of what every file must hold (contents, size, xattrs, link names) and
    checks the filesystem against it as it goes and at the end;
  * all of them in one shared directory (DIR/shared), where they race each
    other: creates, writes, truncates, renames (plain, RENAME_NOREPLACE,
    RENAME_EXCHANGE, across directories), links, symlinks, mkdir and rmdir,
    xattrs and deletes. There only the error numbers are checked: a race may
    make an operation fail with ENOENT, EEXIST, ENOTEMPTY, ENOTDIR, EISDIR,
    EINVAL, ENODATA, EMLINK or ELOOP, but never with EIO, EUCLEAN, ENOSPC or
    anything else (EPERM only for what is always refused: a hard link to a
    directory).

Exits 0 when every worker finished with its model matching the filesystem
and no unexpected error, 1 otherwise (each problem printed), 2 on a usage
error. What is left in DIR is the tree to compare with another reader.
"""

import argparse
import ctypes
import errno
import multiprocessing
import os
import random
import stat
import sys
import time
import traceback

libc = ctypes.CDLL(None, use_errno=True)
libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                           ctypes.c_char_p, ctypes.c_uint]
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64,
                           ctypes.c_int64]
AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
FALLOC_FL_KEEP_SIZE = 1
FALLOC_FL_PUNCH_HOLE = 2
FALLOC_FL_ZERO_RANGE = 0x10

# Private files stop growing past this, so a long run stays far from a
# full filesystem.
MAX_FILE = 2 * 1024 * 1024

# What a race in the shared directory can legitimately answer.
RACE_ERRNOS = {errno.ENOENT, errno.EPERM, errno.EEXIST, errno.ENOTEMPTY,
               errno.ENOTDIR, errno.EISDIR, errno.EINVAL, errno.ENODATA,
               errno.EMLINK, errno.ELOOP}


def renameat2(old, new, flags):
    if libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD, os.fsencode(new),
                      flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), old)


def fallocate(fd, mode, offset, length):
    if libc.fallocate(fd, mode, offset, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


class Failure(Exception):
    pass


class PrivateModel:
    """The files one worker owns, and what each must hold."""

    def __init__(self, root, rng, no_fallocate):
        self.root = root
        self.rng = rng
        self.no_fallocate = no_fallocate
        self.files = {}    # inode key -> bytearray contents
        self.names = {}    # name -> inode key
        self.xattrs = {}   # inode key -> {name: value}
        self.next_key = 0
        os.mkdir(root)

    def path(self, name):
        return os.path.join(self.root, name)

    def random_name(self):
        return "f%03d" % self.rng.randrange(60)

    def existing(self):
        return self.rng.choice(sorted(self.names)) if self.names else None

    def payload(self, n):
        return self.rng.randbytes(n)

    def random_size(self):
        r = self.rng.random()
        if r < 0.5:
            return self.rng.randrange(0, 200)
        if r < 0.85:
            return self.rng.randrange(0, 70000)
        return self.rng.randrange(0, 3 * 1024 * 1024)

    # --- operations -----------------------------------------------------

    def op_create(self):
        name = self.random_name()
        data = self.payload(self.random_size())
        if name in self.names:
            # A new inode, not the old one truncated: other links keep it.
            os.unlink(self.path(name))
            self.drop_name(name)
        with open(self.path(name), "wb") as f:
            f.write(data)
        key = self.next_key
        self.next_key += 1
        self.files[key] = bytearray(data)
        self.names[name] = key
        self.xattrs[key] = {}

    def op_write(self):
        name = self.existing()
        if name is None:
            return
        key = self.names[name]
        content = self.files[key]
        offset = self.rng.randrange(0, min(len(content), MAX_FILE) + 100000)
        data = self.payload(self.rng.randrange(1, 150000))
        fd = os.open(self.path(name), os.O_WRONLY)
        try:
            os.pwrite(fd, data, offset)
            if self.rng.random() < 0.1:
                os.fsync(fd)
        finally:
            os.close(fd)
        if offset > len(content):
            content.extend(bytes(offset - len(content)))
        content[offset:offset + len(data)] = data

    def op_append(self):
        name = self.existing()
        if name is None:
            return
        data = self.payload(self.rng.randrange(1, 20000))
        with open(self.path(name), "ab") as f:
            f.write(data)
        self.files[self.names[name]].extend(data)

    def op_truncate(self):
        name = self.existing()
        if name is None:
            return
        content = self.files[self.names[name]]
        size = self.rng.randrange(0, min(len(content) * 2, MAX_FILE) + 10000)
        os.truncate(self.path(name), size)
        if size < len(content):
            del content[size:]
        else:
            content.extend(bytes(size - len(content)))

    def op_fallocate(self):
        name = self.existing()
        if name is None or self.no_fallocate:
            return
        content = self.files[self.names[name]]
        offset = self.rng.randrange(0, len(content) + 50000)
        length = self.rng.randrange(1, 200000)
        mode = self.rng.choice([0, FALLOC_FL_KEEP_SIZE,
                                FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                FALLOC_FL_ZERO_RANGE])
        fd = os.open(self.path(name), os.O_WRONLY)
        try:
            fallocate(fd, mode, offset, length)
        finally:
            os.close(fd)
        end = offset + length
        if mode & FALLOC_FL_PUNCH_HOLE or mode == FALLOC_FL_ZERO_RANGE:
            stop = min(end, len(content))
            if offset < stop:
                content[offset:stop] = bytes(stop - offset)
        if not mode & FALLOC_FL_KEEP_SIZE and end > len(content):
            content.extend(bytes(end - len(content)))

    def op_link(self):
        name = self.existing()
        new = self.random_name()
        if name is None or new in self.names:
            return
        os.link(self.path(name), self.path(new))
        self.names[new] = self.names[name]

    def op_rename(self):
        name = self.existing()
        if name is None:
            return
        new = self.random_name()
        if new == name:
            return
        if self.names.get(new) == self.names[name]:
            # Both names are links of one inode: rename does nothing.
            os.rename(self.path(name), self.path(new))
            return
        if self.rng.random() < 0.3 and new in self.names:
            renameat2(self.path(name), self.path(new), RENAME_EXCHANGE)
            self.names[name], self.names[new] = self.names[new], self.names[name]
            return
        os.rename(self.path(name), self.path(new))
        if new in self.names:
            self.drop_name(new)
        self.names[new] = self.names.pop(name)

    def op_unlink(self):
        name = self.existing()
        if name is None:
            return
        os.unlink(self.path(name))
        self.drop_name(name)

    def op_xattr(self):
        name = self.existing()
        if name is None:
            return
        key = self.names[name]
        attrs = self.xattrs[key]
        if attrs and self.rng.random() < 0.3:
            victim = self.rng.choice(sorted(attrs))
            os.removexattr(self.path(name), victim)
            del attrs[victim]
            return
        # At most four values of at most 200 bytes: they fit one 1 KiB
        # block, so ENOSPC is never a right answer.
        if len(attrs) >= 4:
            return
        xname = "user.x%d" % self.rng.randrange(6)
        value = self.payload(self.rng.choice([3, 40, 200]))
        os.setxattr(self.path(name), xname, value)
        attrs[xname] = value

    def op_unlinked_open(self):
        # An open file outlives its name, and its blocks go at the last close.
        name = "unlinked"
        data = self.payload(self.rng.randrange(1, 300000))
        fd = os.open(self.path(name), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.unlink(self.path(name))
            os.write(fd, data)
            if os.pread(fd, len(data), 0) != data:
                raise Failure("an unlinked open file lost its data")
            if os.fstat(fd).st_nlink != 0:
                raise Failure("an unlinked open file still has links")
        finally:
            os.close(fd)

    def drop_name(self, name):
        key = self.names.pop(name)
        if key not in self.names.values():
            del self.files[key]
            del self.xattrs[key]

    # --- checks ---------------------------------------------------------

    def check_one(self, name):
        key = self.names[name]
        with open(self.path(name), "rb") as f:
            got = f.read()
        want = bytes(self.files[key])
        if got != want:
            first = next((i for i in range(min(len(got), len(want)))
                          if got[i] != want[i]), min(len(got), len(want)))
            raise Failure("%s: %d bytes, expected %d; first difference at %d"
                          % (self.path(name), len(got), len(want), first))
        st = os.lstat(self.path(name))
        links = sum(1 for k in self.names.values() if k == key)
        if st.st_nlink != links:
            raise Failure("%s: nlink %d, expected %d"
                          % (self.path(name), st.st_nlink, links))
        attrs = {a: os.getxattr(self.path(name), a)
                 for a in os.listxattr(self.path(name)) if a.startswith("user.")}
        if attrs != self.xattrs[key]:
            raise Failure("%s: xattrs %r, expected %r"
                          % (self.path(name), sorted(attrs),
                             sorted(self.xattrs[key])))

    def check_all(self):
        listed = set(os.listdir(self.root))
        if listed != set(self.names):
            raise Failure("%s lists %s, expected %s"
                          % (self.root, sorted(listed ^ set(self.names)),
                             "the symmetric difference to be empty"))
        for name in sorted(self.names):
            self.check_one(name)


class SharedChaos:
    """Racing operations in the directory every worker uses."""

    def __init__(self, root, rng, no_fallocate):
        self.root = root
        self.rng = rng
        self.no_fallocate = no_fallocate

    def random_path(self):
        # Up to two levels of directories, few names: workers collide.
        parts = [self.rng.choice(["d0", "d1", "d2"])
                 for _ in range(self.rng.randrange(0, 3))]
        parts.append(self.rng.choice(["a", "b", "c", "d0", "d1", "d2", "e"]))
        return os.path.join(self.root, *parts)

    def remove_tree(self, path):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(path)
            return
        try:
            names = os.listdir(path)
        except (FileNotFoundError, NotADirectoryError):
            return
        for name in names:
            try:
                self.remove_tree(os.path.join(path, name))
            except OSError as e:
                if e.errno not in RACE_ERRNOS:
                    raise
        os.rmdir(path)

    def one(self):
        p = self.random_path()
        q = self.random_path()
        op = self.rng.randrange(14)
        if op == 13:
            # Now and then a whole subtree goes, racing everything else:
            # without it the tree grows until the inodes run out.
            if self.rng.random() < 0.1:
                self.remove_tree(os.path.join(self.root, self.rng.choice(
                    ["a", "b", "c", "d0", "d1", "d2", "e"])))
            return
        if op == 0:
            with open(p, "wb") as f:
                f.write(self.rng.randbytes(self.rng.randrange(0, 20000)))
        elif op == 1:
            os.mkdir(p)
        elif op == 2:
            os.rmdir(p)
        elif op == 3:
            os.unlink(p)
        elif op == 4:
            os.rename(p, q)
        elif op == 5:
            renameat2(p, q, self.rng.choice([RENAME_NOREPLACE, RENAME_EXCHANGE]))
        elif op == 6:
            os.link(p, q)
        elif op == 7:
            # Fast (in the inode) and block symlinks; no component is too
            # long to follow.
            os.symlink("/".join(["target"] * self.rng.choice([1, 15, 50])), p)
        elif op == 8:
            os.truncate(p, self.rng.randrange(0, 100000))
        elif op == 9:
            os.setxattr(p, "user.s%d" % self.rng.randrange(3),
                        self.rng.randbytes(self.rng.choice([4, 200])))
        elif op == 10:
            os.removexattr(p, "user.s%d" % self.rng.randrange(3))
        elif op == 11:
            fd = os.open(p, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, b"appended\n")
                if not self.no_fallocate and self.rng.random() < 0.5:
                    fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 65536)
            finally:
                os.close(fd)
        else:
            os.chmod(p, self.rng.choice([0o600, 0o644, 0o755, 0o1777]))
            os.utime(p, ns=(self.rng.randrange(2**33) * 10**9 + 123,
                            self.rng.randrange(2**33) * 10**9 + 456))


def worker(index, args, results):
    rng = random.Random(args.seed * 1000 + index)
    problems = []
    counts = {"private": 0, "shared": 0, "shared_refused": 0}
    try:
        model = PrivateModel(os.path.join(args.dir, "p%d" % index), rng,
                             args.no_fallocate)
        chaos = SharedChaos(os.path.join(args.dir, "shared"), rng,
                            args.no_fallocate)
        ops = [(model.op_create, 6), (model.op_write, 8), (model.op_append, 4),
               (model.op_truncate, 3), (model.op_fallocate, 2),
               (model.op_link, 2), (model.op_rename, 4), (model.op_unlink, 3),
               (model.op_xattr, 3), (model.op_unlinked_open, 1)]
        weights = [w for _, w in ops]
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            if rng.random() < 0.5:
                op = rng.choices(ops, weights)[0][0]
                op()
                counts["private"] += 1
                if rng.random() < 0.05 and model.names:
                    model.check_one(model.existing())
            else:
                try:
                    chaos.one()
                except OSError as e:
                    if e.errno not in RACE_ERRNOS:
                        raise
                    counts["shared_refused"] += 1
                counts["shared"] += 1
        model.check_all()
    except Failure as e:
        problems.append("worker %d: %s" % (index, e))
    except Exception:  # an unexpected error number, or a bug: report it all
        problems.append("worker %d: %s" % (index, traceback.format_exc()))
    results.put((index, counts, problems))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--procs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-fallocate", action="store_true",
                    help="indirect-mapped files (ext2/ext3): no fallocate")
    args = ap.parse_args()
    if not os.path.isdir(args.dir):
        print("stress.py: %s is not a directory" % args.dir, file=sys.stderr)
        return 2
    shared = os.path.join(args.dir, "shared")
    os.makedirs(shared, exist_ok=True)
    for d in ("d0", "d1", "d2"):
        os.makedirs(os.path.join(shared, d), exist_ok=True)
    results = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=worker, args=(i, args, results))
               for i in range(args.procs)]
    for w in workers:
        w.start()
    problems = []
    totals = {}
    for _ in workers:
        try:
            index, counts, worker_problems = results.get(
                timeout=args.seconds + 600)
        except Exception:
            problems.append("a worker did not report (hung or died)")
            break
        problems.extend(worker_problems)
        for k, v in counts.items():
            totals[k] = totals.get(k, 0) + v
    for w in workers:
        w.join(timeout=60)
        if w.exitcode != 0:
            problems.append("worker %s exited with %s" % (w.name, w.exitcode))
    print("stress: %d processes, %.0f s: %d private operations, %d shared "
          "(%d refused by a race)" % (args.procs, args.seconds,
                                      totals.get("private", 0),
                                      totals.get("shared", 0),
                                      totals.get("shared_refused", 0)))
    for p in problems:
        print("PROBLEM:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
