#!/usr/bin/env bash
# rw_ops.sh DIR: one fixed sequence of POSIX operations, run the same way on
# a reference directory and on a read-write e4fs mount; the two trees must
# then match. Ends by pinning every timestamp, so the comparison is exact.
set -euo pipefail
d=$1
cd "$d"

# Files of many sizes, written through write(2).
mkdir -p tree/a/b/c tree/empty
printf '' > tree/empty.txt
printf 'hello\n' > tree/a/small
head -c 4096 /dev/zero | tr '\0' 'z' > tree/a/exact-block
python3 - <<'PY'
import random
r = random.Random(7)
with open("tree/a/b/random", "wb") as f:
    f.write(bytes(r.getrandbits(8) for _ in range(3 * 1024 * 1024 + 5)))
with open("tree/a/b/c/odd", "wb") as f:
    f.write(bytes(r.getrandbits(8) for _ in range(12345)))
PY
# Overwrite in the middle, append, write past the end (a hole).
printf 'MIDDLE' | dd of=tree/a/b/random bs=1 seek=1000000 conv=notrunc status=none
printf 'tail' >> tree/a/small
printf 'far' | dd of=tree/a/b/c/odd bs=1 seek=200000 conv=notrunc status=none
# Sparse files, fallocate, punch, truncate down and up.
truncate -s 5G tree/sparse
printf 'end' | dd of=tree/sparse bs=1 seek=$((5 * 1024 * 1024 * 1024 - 3)) conv=notrunc status=none
# (ext2/ext3 files are indirect-mapped: fallocate is EOPNOTSUPP there, on
# the kernel too; RW_OPS_NO_FALLOCATE=1 leaves it out.)
if [ -z "${RW_OPS_NO_FALLOCATE:-}" ]; then
  fallocate -l 1M tree/prealloc
  : > tree/keep-size
  fallocate -n -l 64K tree/keep-size
  python3 -c 'import random,sys; sys.stdout.buffer.write(random.Random(1).randbytes(200000))' > tree/punched
  fallocate -p -o 4096 -l 65536 tree/punched
  fallocate -p -o 100 -l 50 tree/punched
  fallocate -z -o 150000 -l 10000 tree/punched
fi
python3 -c 'import random,sys; sys.stdout.buffer.write(random.Random(2).randbytes(100000))' > tree/shrink
truncate -s 5000 tree/shrink
truncate -s 70000 tree/shrink
# Every kind of entry.
ln -s small tree/a/fastlink
ln -s "$(printf 'x%.0s' {1..150})/target" tree/a/longlink
ln -s /nonexistent/dangling tree/dangling
mkfifo tree/fifo
mknod tree/chardev c 1 3
mknod tree/blockdev b 7 200
ln tree/a/small tree/hardlink1
ln tree/a/small tree/a/b/hardlink2
# A directory big enough to become an htree and split.
mkdir tree/big
python3 -c '
import os
for i in range(3000):
    open("tree/big/entry-%05d-%s" % (i, "n" * (i % 40)), "w").close()
'
for i in $(seq 0 3 2999); do rm "tree/big/entry-$(printf %05d "$i")-$(printf 'n%.0s' $(seq 1 $((i % 40))) | head -c $((i % 40)))"; done
# Renames: within and across directories, over files and empty directories.
mv tree/a/b/c/odd tree/moved-odd
mkdir tree/victim-dir tree/dir-to-move
echo inner > tree/dir-to-move/inner
mv tree/dir-to-move tree/a/b/
mv tree/a/b/dir-to-move tree/victim-dir-2
mv -T tree/victim-dir-2 tree/victim-dir
echo old > tree/overwritten
echo new > tree/replacement
mv tree/replacement tree/overwritten
python3 - <<'PY'
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
def renameat2(a, b, flags):
    r = libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), flags)
    return 0 if r == 0 else ctypes.get_errno()
open("tree/x1", "w").write("one")
os.mkdir("tree/x2")
assert renameat2("tree/x1", "tree/x2", RENAME_EXCHANGE) == 0
import errno
assert renameat2("tree/x1", "tree/a", RENAME_NOREPLACE) == errno.EEXIST
assert renameat2("tree/a", "tree/a/b/newname", 0) == errno.EINVAL
# An open file outlives its last name.
f = open("tree/unlinked", "w+b")
os.unlink("tree/unlinked")
f.write(b"still here" * 1000)
f.flush(); f.seek(0)
assert f.read(10) == b"still here"
f.close()
# Errors the kernel's ext4 gives.
def err(fn, *a):
    try:
        fn(*a)
    except OSError as e:
        return e.errno
    return 0
assert err(os.rmdir, "tree/a") == errno.ENOTEMPTY
assert err(os.mkdir, "tree/a") == errno.EEXIST
assert err(os.unlink, "tree/a") in (errno.EISDIR, errno.EPERM)
assert err(os.rmdir, "tree/a/small") == errno.ENOTDIR
assert err(open, "tree/" + "n" * 256, "w") == errno.ENAMETOOLONG
# SEEK_DATA / SEEK_HOLE on the sparse file.
fd = os.open("tree/sparse", os.O_RDONLY)
assert os.lseek(fd, 0, os.SEEK_HOLE) == 0
assert os.lseek(fd, 0, os.SEEK_DATA) >= 5 * 1024**3 - 4096
os.close(fd)
PY
rm -r tree/a/b/c
rmdir tree/empty
mkdir tree/empty
# Modes, owners, xattrs.
chmod 4755 tree/a/small
chmod 2755 tree/moved-odd
mkdir -m 1777 tree/sticky
mkdir tree/setgid && chmod 2775 tree/setgid && chown 0:5678 tree/setgid
echo child > tree/setgid/file
mkdir tree/setgid/sub
chown 1234:5678 tree/a/exact-block
setfattr -n user.small -v hi tree/a/exact-block
# Too big for the inode body on every layout, small enough for a 1 KiB block.
setfattr -n user.large -v "$(head -c 900 /dev/zero | tr '\0' 'L')" tree/a/exact-block
setfattr -n user.gone -v x tree/a/exact-block
setfattr -x user.gone tree/a/exact-block
setfattr -n user.replaced -v first tree/moved-odd
setfattr -n user.replaced -v second tree/moved-odd
# Pin every timestamp so the trees compare exactly.
find tree -depth -exec touch -h -d @1000000000 {} +
# Nanoseconds and a date past 2038 (clamped where the inode cannot hold it).
touch -h -d '2040-02-03 04:05:06.123456789' tree/a/exact-block
touch -h -d '1999-12-31 23:59:59.5' tree/moved-odd
