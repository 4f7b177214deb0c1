#!/usr/bin/env bash
# rw_mount_test.sh [E4FS]
#
# Read-write mounts across the feature matrix: the same sequence of
# operations (tests/rw_ops.sh) runs on a reference directory and on a fresh
# image mounted read-write through e4fs. The mounted tree must match the
# reference, `e2fsck -fn` must be clean after the unmount (which must also
# mark the filesystem clean), and the kernel's own ext4 mount of the image
# must read back the same tree. ext2 and ext3 (indirect-mapped files, no
# fallocate) run the sequence without its fallocate part.
set -uo pipefail

source "$(dirname "$0")/testlib.sh"
require_root_fuse
command -v setfattr >/dev/null || skip "setfattr (package attr) is not installed"
resolve_e4fs "${1:-}"
compare=$(runfile tests/compare_tree.py) || exit 1
ops=$(runfile tests/rw_ops.sh) || exit 1

# name | mke2fs options | compare_tree.py flags
configs=(
  "ext4||"
  "ext4-nocsum-no64bit|-O ^metadata_csum,^64bit|"
  "ext4-1k-blocks|-b 1024|"
  "ext4-128-inodes|-I 128|--mtime-precision=s"
  "ext4-inline_data|-O inline_data|"
  "ext4-large_dir|-O large_dir|"
  "ext3|-t ext3|--mtime-precision=s"
  "ext2|-t ext2|--mtime-precision=s"
  "ext3-1k-blocks|-t ext3 -b 1024|--mtime-precision=s"
)

# mke2fs -t for a layout: its own when it names one, else ext4.
fs_type_args() {
  case " $1 " in *" -t "*) echo "$1" ;; *) echo "-t ext4 $1" ;; esac
}

work=$(make_workdir e4fs-rw) || exit 1
cleanup() {
  for m in "$work"/mnt "$work"/kmnt; do
    if is_mounted "$m"; then fuse_unmount "$m" || umount -l "$m"; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/mnt" "$work/kmnt"
# The reference: the same operations on the kernel's own ext4, on an image
# of the same layout; where loop mounts are unavailable, on a directory of
# the disk filesystem (tmpfs lacks fallocate's zero range).
refbase=$(mktemp -d "${TEST_TMPDIR:-/tmp}/e4fs-ref.XXXXXX")
trap 'cleanup; umount "$refbase/mnt" 2>/dev/null; rm -rf "$refbase"' EXIT
mkdir -p "$refbase/mnt"
kernel=0
kernel_loop_ok "$work" && kernel=1
[ "$kernel" = 1 ] || echo "SKIP: loop mounts unavailable; the reference is a plain directory and the kernel cross-check is skipped"

# reference OPTS: runs the operations on the reference for one layout.
reference() {
  umount "$refbase/mnt" 2>/dev/null
  rm -rf "$refbase/mnt/ref" "$refbase/ref.img"
  if [ "$kernel" = 1 ]; then
    # shellcheck disable=SC2086
    mke2fs -q -F $(fs_type_args "$1") "$refbase/ref.img" 512M >/dev/null 2>&1 &&
      mount -o loop "$refbase/ref.img" "$refbase/mnt" || return 1
  fi
  mkdir -p "$refbase/mnt/ref" && RW_OPS_NO_FALLOCATE=$no_fallocate "$ops" "$refbase/mnt/ref" >/dev/null
}

echo "binary under test: $E4FS"
failed=0
for c in "${configs[@]}"; do
  IFS='|' read -r name opts flags <<<"$c"
  img="$work/$name.img"
  no_fallocate=""
  case " $opts " in *" ext2 "* | *" ext3 "*) no_fallocate=1 ;; esac
  result=PASS
  why=""
  reference "$opts" || { result=FAIL; why="the operations fail on the reference"; }
  # shellcheck disable=SC2086
  mke2fs -q -F $(fs_type_args "$opts") "$img" 512M >/dev/null 2>&1 || { result=FAIL; why="mke2fs failed"; }
  if [ $result = PASS ]; then
    if ! timeout 20 "$E4FS" "$img" "$work/mnt" -o rw || ! wait_mounted "$work/mnt"; then
      result=FAIL; why="mount failed"
    fi
  fi
  if [ $result = PASS ]; then
    if ! out=$(RW_OPS_NO_FALLOCATE=$no_fallocate timeout 600 "$ops" "$work/mnt" 2>&1); then
      result=FAIL; why="operations failed: $(echo "$out" | tail -5)"
    fi
    fuse_unmount "$work/mnt" || { result=FAIL; why="$why; unmount failed"; }
    wait_closed "$img" 20 || { result=FAIL; why="$why; server did not exit"; }
  fi
  # What reached the disk, read back through e4fs after a remount (the
  # kernel's attribute cache of the first mount does not count).
  if [ $result = PASS ]; then
    if ! timeout 20 "$E4FS" "$img" "$work/mnt" -o ro || ! wait_mounted "$work/mnt"; then
      result=FAIL; why="read-only remount failed"
    else
      out=$(python3 "$compare" $flags "$refbase/mnt/ref/tree" "$work/mnt/tree" 2>&1) ||
        { result=FAIL; why="mounted tree differs: $(echo "$out" | head -20)"; }
      fuse_unmount "$work/mnt"
      wait_closed "$img" 20
    fi
  fi
  if [ $result = PASS ]; then
    if ! out=$(e2fsck -fn "$img" 2>&1); then
      result=FAIL; why="e2fsck -fn: $(echo "$out" | head -30)"
    elif ! dumpe2fs -h "$img" 2>/dev/null | grep -q '^Filesystem state: *clean$'; then
      result=FAIL; why="the unmount did not mark the filesystem clean"
    fi
  fi
  if [ $result = PASS ] && [ "$kernel" = 1 ]; then
    if mount -o loop,ro "$img" "$work/kmnt"; then
      out=$(python3 "$compare" $flags "$refbase/mnt/ref/tree" "$work/kmnt/tree" 2>&1) ||
        { result=FAIL; why="kernel mount differs: $(echo "$out" | head -20)"; }
      umount "$work/kmnt"
    else
      result=FAIL; why="the kernel cannot mount the image"
    fi
  fi
  echo "$result: $name${why:+ — $why}"
  [ $result = PASS ] || failed=1
  rm -f "$img"
done

exit $failed
