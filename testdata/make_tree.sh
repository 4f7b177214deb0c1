#!/usr/bin/env bash
# make_tree.sh DEST
#
# Builds a source tree that holds every kind of entry an ext2/3/4 image can
# hold, for `mke2fs -d DEST` and for tests that compare a mount with it
# (tests/compare_tree.py). Must run as root (mknod, chown). The result is
# deterministic: contents come from a fixed seed, and every mtime is set to a
# fixed value (1000000000, 2001-09-09) except those under times/.
#
#   sizes/      files of 0, 1, 4095, 4096, 4097 and 1 MiB+7 bytes, 300 KiB random
#   sparse/     a file with holes and data past 4 GiB; a file that is all hole
#   symlinks/   fast (short), 59/60-byte edge, long (~200 bytes), dangling, to a dir
#   hardlinks/  one inode with 3 names in 2 directories
#   special/    fifo, char device (1,3), block device (7,200), unix socket
#   modes/      4755 and 2755 files, 1777 and 2775 dirs, 0000 and 0777 files
#   owners/     1234:5678, 65534:65534, 100000:200000 (needs the high uid bits)
#   xattrs/     user.small=hi, user.large (3000 bytes), an empty value, on a dir
#   bigdir/     20,000 empty files named 0..19999
#   names/      a 255-byte name, UTF-8 names (é, 日本語, emoji), spaces
#   deep/       30 nested directories
#   empty_dir/  an empty directory
#   times/      mtimes 1960, 1990, 2040 (past 2038), 2020 + 123456789 ns
#
# Prints DEST on success.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 DEST" >&2
  exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "make_tree.sh: must run as root (mknod, chown)" >&2
  exit 1
fi
dest=$1
if [ -e "$dest" ] && [ -n "$(ls -A "$dest")" ]; then
  echo "make_tree.sh: $dest exists and is not empty" >&2
  exit 1
fi
mkdir -p "$dest"
cd "$dest"
umask 022

python3 - <<'EOF'
import os, random

rng = random.Random(20240229)

def pattern(n, tag):
    # Deterministic, non-zero, position-dependent content.
    unit = bytes((i * 7 + tag) % 251 + 1 for i in range(4096))
    return (unit * (n // len(unit) + 1))[:n]

os.makedirs("sizes")
for n in (0, 1, 4095, 4096, 4097, (1 << 20) + 7):
    with open(f"sizes/{n}", "wb") as f:
        f.write(pattern(n, n % 13))
with open("sizes/random_300k", "wb") as f:
    f.write(rng.randbytes(300 * 1024))

# 20,000 entries in one directory: enough for a multi-level htree.
os.makedirs("bigdir")
for i in range(20000):
    os.close(os.open(f"bigdir/{i}", os.O_CREAT | os.O_WRONLY, 0o644))

# Names: the longest allowed, and UTF-8.
os.makedirs("names")
for name in ("n" * 255, "é", "日本語", "emoji_😀🎉", "with space", "-dash", "dot.in.name"):
    with open(os.path.join("names", name), "wb") as f:
        f.write(name.encode() + b"\n")
assert len(("n" * 255).encode()) == 255

# Deep nesting: 30 levels.
p = "deep"
for i in range(1, 31):
    p = os.path.join(p, f"d{i:02d}")
os.makedirs(p)
with open(os.path.join(p, "leaf"), "wb") as f:
    f.write(b"30 levels down\n")
EOF

# Sparse: data, a hole, data, a hole, data past 4 GiB, a trailing hole.
mkdir sparse
f=sparse/holes_past_4g
truncate -s $(((4 << 30) + (1 << 20))) "$f"
printf 'head of the sparse file\n' | dd of="$f" conv=notrunc status=none
printf 'one mebibyte in\n' | dd of="$f" bs=1 seek=$((1 << 20)) conv=notrunc status=none
printf 'past four gibibytes\n' | dd of="$f" bs=4096 seek=$(((4 << 30) / 4096 + 3)) conv=notrunc status=none
truncate -s $((10 << 20)) sparse/all_hole

# Symlinks: fast (target in the inode), at the 60-byte edge, long, dangling.
mkdir symlinks
ln -s ../sizes/4096 symlinks/fast
ln -s "$(printf 'e%.0s' $(seq 59))" symlinks/len59
ln -s "$(printf 'f%.0s' $(seq 60))" symlinks/len60
long=""
for i in $(seq 1 16); do long+="component$(printf %02d "$i")/"; done
ln -s "${long}end" symlinks/long # 195 bytes
ln -s does/not/exist symlinks/dangling
ln -s ../sizes symlinks/to_dir

# Hard links: one inode, 3 names in 2 directories.
mkdir -p hardlinks/a hardlinks/b
printf 'one inode, three names\n' >hardlinks/a/orig
ln hardlinks/a/orig hardlinks/a/second
ln hardlinks/a/orig hardlinks/b/third

# Special files.
mkdir special
mkfifo special/fifo
mknod special/null_chr c 1 3
mknod special/loop_blk b 7 200
python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' special/socket

# Modes (chown first: it clears setuid/setgid).
mkdir modes
printf '#!/bin/sh\n' >modes/setuid
printf '#!/bin/sh\n' >modes/setgid
printf 'x\n' >modes/none
printf 'x\n' >modes/all
chown 1234:5678 modes/setuid modes/setgid
chmod 4755 modes/setuid
chmod 2755 modes/setgid
chmod 0000 modes/none
chmod 0777 modes/all
mkdir modes/sticky_dir modes/setgid_dir
chmod 1777 modes/sticky_dir
chmod 2775 modes/setgid_dir

# Owners.
mkdir owners
printf 'a\n' >owners/u1234_g5678
printf 'b\n' >owners/nobody
printf 'c\n' >owners/big_ids
mkdir owners/dir_1234
chown 1234:5678 owners/u1234_g5678 owners/dir_1234
chown 65534:65534 owners/nobody
chown 100000:200000 owners/big_ids
chown -h 1234:5678 symlinks/fast

# Extended attributes.
mkdir -p xattrs/dir_with_xattr
printf 'small\n' >xattrs/small
printf 'large\n' >xattrs/large
printf 'both\n' >xattrs/both
large=$(python3 -c 'print("".join(chr(97 + (i * 7) % 26) for i in range(3000)), end="")')
if command -v setfattr >/dev/null 2>&1; then
  setfattr -n user.small -v hi xattrs/small
  setfattr -n user.large -v "$large" xattrs/large
  setfattr -n user.small -v hi xattrs/both
  setfattr -n user.large -v "$large" xattrs/both
  setfattr -n user.empty xattrs/both
  setfattr -n user.dir -v on-a-directory xattrs/dir_with_xattr
else
  LARGE="$large" python3 - <<'EOF'
import os
large = os.environ["LARGE"].encode()
os.setxattr("xattrs/small", "user.small", b"hi")
os.setxattr("xattrs/large", "user.large", large)
os.setxattr("xattrs/both", "user.small", b"hi")
os.setxattr("xattrs/both", "user.large", large)
os.setxattr("xattrs/both", "user.empty", b"")
os.setxattr("xattrs/dir_with_xattr", "user.dir", b"on-a-directory")
EOF
fi

mkdir empty_dir

# Timestamps: every entry gets a fixed mtime (children before parents, so a
# directory's own mtime is not disturbed afterwards), then times/ gets its
# special values.
mkdir times
for t in 1960 1990 2040 ns; do printf '%s\n' "$t" >"times/$t"; done
python3 - <<'EOF'
import os
T = 1_000_000_000 * 10**9
for root, dirs, files in os.walk(".", topdown=False):
    for name in files + dirs:
        os.utime(os.path.join(root, name), ns=(T, T), follow_symlinks=False)
EOF
touch -d '1960-06-15 12:00:00 UTC' times/1960
touch -d '1990-01-01 00:00:00 UTC' times/1990
touch -d '2040-01-01 00:00:00 UTC' times/2040
touch -d '2020-01-01 00:00:00.123456789 UTC' times/ns
touch -d @1000000000 times .

pwd
