#!/usr/bin/env bash
# e4_mkfs_test.sh [E4] [E4FS]
#
# `e4 mkfs` end to end. Empty images across the feature matrix must be
# `e2fsck -fn` clean and show their features in dumpe2fs; images made with
# `-d SRC` must hold SRC exactly. Where loop mounts work (root), the kernel's
# own ext4 mounts each image: read-only to compare with the tree
# (tests/compare_tree.py), read-write to write into the empty ones, after
# which e2fsck must still be clean. When an e4fs binary is given (second
# argument or $E4FS) and /dev/fuse is usable, the -d images are compared
# through e4fs read-only mounts as well. With loop devices, a block device
# full of random bytes is made into a filesystem (nothing assumed zero).
# Also the command line: usage errors, the refusal to overwrite a filesystem
# without -F, reproducible images.
#
# The source tree is testdata/make_tree.sh's when run as root; otherwise a
# smaller one (no device nodes, no foreign owners) made here.
# Environment: KEEP=1 keeps the work directory.
# Prints PASS/FAIL lines; exits 1 if anything failed.
set -uo pipefail

source "$(dirname "$0")/testlib.sh"

E4=${1:-${E4:-e4}}
if [[ $E4 != */* ]]; then E4=$(command -v "$E4") || {
  echo "FAIL: e4 binary not found (pass it as \$1)"
  exit 1
}; fi
E4=$(realpath "$E4")
for t in e2fsck dumpe2fs debugfs python3; do
  command -v "$t" >/dev/null 2>&1 || skip "$t is not installed"
done
compare=$(runfile tests/compare_tree.py) || exit 1
E4FS_BIN=${2:-${E4FS:-}}

work=$(make_workdir e4-mkfs) || exit 1
loopdev=""
cleanup() {
  for m in "$work"/kmnt "$work"/fmnt; do
    if is_mounted "$m"; then umount "$m" 2>/dev/null || fuse_unmount "$m" || umount -l "$m"; fi
  done
  if [ -n "$loopdev" ]; then losetup -d "$loopdev"; fi
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$work/kmnt" "$work/fmnt"

failures=0
pass() { echo "PASS: $*"; }
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

echo "binary under test: $E4"
echo "work directory: $work"

if [ "$(id -u)" -eq 0 ] && kernel_loop_ok "$work"; then
  kernel=1
else
  kernel=0
  echo "SKIP: kernel oracle: needs root and loop mounts of ext4"
fi
fuse=0
if [ -n "$E4FS_BIN" ] && [ "$(id -u)" -eq 0 ] && [ -r /dev/fuse ] && [ -w /dev/fuse ]; then
  E4FS_BIN=$(realpath "$E4FS_BIN")
  fuse=1
else
  echo "SKIP: e4fs comparison: give the e4fs binary as \$2 (needs root and /dev/fuse)"
fi

# ---- The source tree ----------------------------------------------------------
src=$work/src
if [ "$(id -u)" -eq 0 ]; then
  "$(runfile testdata/make_tree.sh)" "$src" >/dev/null || {
    echo "FAIL: make_tree.sh failed"
    exit 1
  }
else
  python3 - "$src" <<'EOF' || { echo "FAIL: cannot build the source tree"; exit 1; }
import os, sys
src = sys.argv[1]
os.makedirs(os.path.join(src, "dir/sub"))
def put(rel, data, mode=0o644):
    p = os.path.join(src, rel)
    with open(p, "wb") as f:
        f.write(data)
    os.chmod(p, mode)
put("hello", b"hello\n")
put("dir/pattern", bytes((i * 7 + 1) % 251 for i in range(300000)))
put("empty", b"")
put("dir/suid", b"#!/bin/sh\n", 0o4755)
with open(os.path.join(src, "sparse"), "wb") as f:
    f.write(b"head")
    f.seek(5 << 20)
    f.write(b"tail")
    f.truncate(9 << 20)
os.link(os.path.join(src, "hello"), os.path.join(src, "dir/hello_link"))
os.symlink("hello", os.path.join(src, "fast_link"))
os.symlink("x" * 200, os.path.join(src, "dir/slow_link"))
os.mkfifo(os.path.join(src, "fifo"))
os.setxattr(os.path.join(src, "hello"), "user.small", b"hi")
os.setxattr(os.path.join(src, "dir"), "user.big", b"B" * 3000)
for p in ("hello", "sparse", "dir/sub", "dir", "."):
    os.utime(os.path.join(src, p), ns=(1000000000123456789, 1234567890987654321))
EOF
fi

# check_image NAME IMG: e2fsck -fn clean and lost+found in the root.
check_image() {
  local name=$1 img=$2 out
  if ! out=$(e2fsck -fn "$img" 2>&1); then
    fail "$name: e2fsck -fn"
    echo "$out" | head -40
    return 1
  fi
  if ! debugfs -R "ls -l /" "$img" 2>/dev/null | grep -q "lost+found"; then
    fail "$name: debugfs sees no lost+found"
    return 1
  fi
  return 0
}

# ---- Empty images -------------------------------------------------------------
# name | e4 mkfs options | size | features dumpe2fs must list (space separated)
# | features it must not
empty_configs=(
  "default||512M|has_journal extent 64bit flex_bg metadata_csum huge_file dir_nlink extra_isize|resize_inode"
  "nocsum-no64bit|-O ^metadata_csum,^64bit|512M|has_journal extent flex_bg|metadata_csum 64bit"
  "1k-blocks|-b 1024|64M|has_journal extent metadata_csum|"
  "no-journal|-O ^has_journal|128M|extent|has_journal"
  "small|-b 4096|4M|extent|has_journal"
  "odd-size|-L odd|1034M|has_journal|"
  "gdt_csum|-O ^metadata_csum,uninit_bg|256M|uninit_bg|metadata_csum"
  "ext2|-t ext2|64M|filetype sparse_super|has_journal extent"
  "ext3|-t ext3|64M|has_journal|extent"
  "ext3-1k-big-journal|-t ext3 -b 1024 -J size=200|600M|has_journal|extent"
  "64k-blocks|-b 65536|256M|has_journal extent|"
)
for c in "${empty_configs[@]}"; do
  IFS='|' read -r name opts size want avoid <<<"$c"
  img=$work/$name.img
  # shellcheck disable=SC2086
  if ! out=$("$E4" mkfs -q $opts "$img" "$size" 2>&1); then
    fail "empty $name: e4 mkfs $opts: $out"
    continue
  fi
  check_image "empty $name" "$img" || continue
  features=" $(dumpe2fs -h "$img" 2>/dev/null | sed -n 's/^Filesystem features: *//p') "
  ok=1
  for f in $want; do [[ $features == *" $f "* ]] || { fail "empty $name: no $f in:$features"; ok=0; }; done
  for f in $avoid; do [[ $features == *" $f "* ]] && { fail "empty $name: $f in:$features"; ok=0; }; done
  [ $ok = 1 ] || continue
  if [ $kernel = 1 ] && [ "$name" != 64k-blocks ]; then
    # The kernel mounts it read-write, writes, and leaves it clean.
    if ! mount -o loop "$img" "$work/kmnt" 2>"$work/mount.err"; then
      fail "empty $name: kernel mount: $(cat "$work/mount.err")"
      continue
    fi
    mkdir -p "$work/kmnt/new/dir" && head -c 300000 /dev/urandom >"$work/kmnt/new/file" &&
      ln -s file "$work/kmnt/new/link" && [ -d "$work/kmnt/lost+found" ]
    rc=$?
    umount "$work/kmnt"
    [ $rc = 0 ] || { fail "empty $name: writing on the kernel mount"; continue; }
    check_image "empty $name after kernel writes" "$img" || continue
  fi
  pass "empty $name"
  rm -f "$img"
done

# ---- Images made from the tree ------------------------------------------------
# Two trees derived from it, for what some layouts cannot hold: without
# values over 900 bytes (a 1 KiB block holds no more, and the engine does not
# create EA inodes), and without mtimes past 2038 (128-byte inodes; the
# engine clamps them, as the kernel does).
derive() { # NAME FILTER
  cp -a "$src" "$work/$1" || return 1
  python3 - "$work/$1" "$2" <<'EOF'
import os, sys
root, what = sys.argv[1], sys.argv[2]
for d, dirs, files in os.walk(root):
    for n in dirs + files:
        p = os.path.join(d, n)
        if what == "small_xattrs" and not os.path.islink(p):
            for x in os.listxattr(p, follow_symlinks=False):
                if len(os.getxattr(p, x, follow_symlinks=False)) > 900:
                    os.removexattr(p, x, follow_symlinks=False)
        if what == "y2038" and os.lstat(p).st_mtime >= 2**31 and not os.path.isdir(p):
            st = os.stat(d)
            os.unlink(p)
            os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))
EOF
}
derive src_small_xattrs small_xattrs || fail "cannot derive a tree"
derive src_y2038 y2038 || fail "cannot derive a tree"

# name | e4 mkfs options | size | source | compare_tree.py flags
tree_configs=(
  "ext4||512M|src|"
  "nocsum-no64bit|-O ^metadata_csum,^64bit|512M|src|"
  "1k-blocks|-b 1024|512M|src_small_xattrs|"
  "no-journal|-O ^has_journal|512M|src|"
  "inline_data|-O inline_data|512M|src|"
  "128-inodes|-I 128|512M|src_y2038|--mtime-precision=s"
  "ext3|-t ext3|512M|src|"
  "ext2|-t ext2|512M|src|"
)
for c in "${tree_configs[@]}"; do
  IFS='|' read -r name opts size tree flags <<<"$c"
  img=$work/tree-$name.img
  tree=$work/$tree
  # shellcheck disable=SC2086
  if ! out=$("$E4" mkfs -q $opts -d "$tree" "$img" "$size" 2>&1); then
    fail "tree $name: e4 mkfs $opts -d: $out"
    continue
  fi
  check_image "tree $name" "$img" || continue
  if [ $kernel = 1 ]; then
    if ! mount -o loop,ro "$img" "$work/kmnt" 2>"$work/mount.err"; then
      fail "tree $name: kernel mount: $(cat "$work/mount.err")"
      continue
    fi
    # shellcheck disable=SC2086
    python3 "$compare" $flags "$tree" "$work/kmnt" >"$work/compare.out" 2>&1
    rc=$?
    umount "$work/kmnt"
    if [ $rc != 0 ]; then
      fail "tree $name: kernel mount differs from the source"
      head -30 "$work/compare.out"
      continue
    fi
  fi
  if [ $fuse = 1 ]; then
    if ! "$E4FS_BIN" "$img" "$work/fmnt" -o ro 2>"$work/mount.err" || ! wait_mounted "$work/fmnt"; then
      fail "tree $name: e4fs mount: $(cat "$work/mount.err")"
      continue
    fi
    # shellcheck disable=SC2086
    python3 "$compare" $flags "$tree" "$work/fmnt" >"$work/compare.out" 2>&1
    rc=$?
    fuse_unmount "$work/fmnt"
    wait_closed "$img"
    if [ $rc != 0 ]; then
      fail "tree $name: e4fs mount differs from the source"
      head -30 "$work/compare.out"
      continue
    fi
  fi
  pass "tree $name"
  rm -f "$img"
done

# ---- A block device full of old data -------------------------------------------
# Nothing is assumed zero there: the tables and the journal must be written
# over, and the size comes from the device.
if [ $kernel = 1 ]; then
  head -c $((96 << 20)) /dev/urandom >"$work/dirty.img"
  if ! loopdev=$(losetup -f --show "$work/dirty.img"); then
    fail "block device: losetup"
    loopdev=""
  elif ! out=$("$E4" mkfs -q -F -i 4096 -d "$src" "$loopdev" 2>&1); then
    fail "block device: e4 mkfs -d: $out"
  elif check_image "block device" "$loopdev"; then
    if [ "$(dumpe2fs -h "$loopdev" 2>/dev/null | sed -n 's/^Block count: *//p')" != 24576 ]; then
      fail "block device: the filesystem does not fill the device"
    elif ! mount -o ro "$loopdev" "$work/kmnt" 2>"$work/mount.err"; then
      fail "block device: kernel mount: $(cat "$work/mount.err")"
    else
      python3 "$compare" "$src" "$work/kmnt" >"$work/compare.out" 2>&1
      rc=$?
      umount "$work/kmnt"
      if [ $rc = 0 ]; then
        pass "block device"
      else
        fail "block device: kernel mount differs from the source"
        head -30 "$work/compare.out"
      fi
    fi
  fi
  if [ -n "$loopdev" ]; then
    losetup -d "$loopdev"
    loopdev=""
  fi
  rm -f "$work/dirty.img"
fi

# ---- The command line -----------------------------------------------------------
expect_exit() { # CODE DESCRIPTION COMMAND...
  local code=$1 what=$2
  shift 2
  "$@" >"$work/cli.out" 2>&1
  local rc=$?
  if [ $rc = "$code" ]; then
    pass "cli: $what"
  else
    fail "cli: $what: exit $rc, expected $code"
    head -5 "$work/cli.out"
  fi
}
img=$work/cli.img
expect_exit 1 "no arguments" "$E4" mkfs
expect_exit 1 "unknown option" "$E4" mkfs -Z "$img" 64M
expect_exit 1 "bad size" "$E4" mkfs "$img" 64Q
expect_exit 1 "unknown feature" "$E4" mkfs -O no_such_feature "$img" 64M
expect_exit 0 "--help" "$E4" mkfs --help
grep -q "Usage: e4 mkfs" "$work/cli.out" || fail "cli: --help prints no usage"
expect_exit 2 "invalid block size" "$E4" mkfs -b 3000 "$img" 64M
[ -e "$img" ] && fail "cli: an invalid option created the image"
expect_exit 1 "feature it cannot make" "$E4" mkfs -O resize_inode "$img" 64M
expect_exit 2 "missing source directory" "$E4" mkfs -d "$work/nowhere" "$img" 64M
expect_exit 2 "size needed for a new image" "$E4" mkfs "$img"
expect_exit 0 "new image" "$E4" mkfs -q "$img" 64M
expect_exit 2 "refuses to overwrite a filesystem" "$E4" mkfs -q "$img" 64M
expect_exit 0 "-F overwrites, size from the file" "$E4" mkfs -q -F -b 1024 "$img"
[ "$(stat -c %s "$img")" = $((64 << 20)) ] || fail "cli: the image changed size"
[ "$(dumpe2fs -h "$img" 2>/dev/null | sed -n 's/^Block size: *//p')" = 1024 ] ||
  fail "cli: -F did not make the new filesystem"
expect_exit 0 "summary" "$E4" mkfs -F "$img" 64M
grep -q "Filesystem UUID" "$work/cli.out" || fail "cli: no summary without -q"

# Reproducible: the same time, UUID and hash seed give the same bytes.
repro() {
  SOURCE_DATE_EPOCH=1700000000 "$E4" mkfs -q -F -U 01234567-89ab-cdef-0123-456789abcdef \
    -E hash_seed=fedcba98-7654-3210-fedc-ba9876543210,root_owner=1000:1000 -L repro "$1" 64M
}
if repro "$work/r1.img" && repro "$work/r2.img" &&
  [ "$(image_sha "$work/r1.img")" = "$(image_sha "$work/r2.img")" ]; then
  if dumpe2fs -h "$work/r1.img" 2>/dev/null | grep -q "^Filesystem created: .*2023" &&
    debugfs -R "stat /" "$work/r1.img" 2>/dev/null | grep -q "User:  1000"; then
    pass "cli: reproducible image"
  else
    fail "cli: SOURCE_DATE_EPOCH or root_owner not applied"
  fi
else
  fail "cli: two runs with fixed time and ids differ"
fi

if [ $failures -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "all passed"
