#!/usr/bin/env bash
# rw_existing_test.sh [E4FS]
#
# Read-write on images that already hold data: an image made by mke2fs -d
# from testdata/make_tree.sh is copied; the kernel's ext4 changes one copy
# and e4fs the other with tests/rw_existing_ops.sh. Both must then hold the
# same tree (read back through e4fs and through the kernel), and e2fsck -fn
# must be clean on the e4fs copy. Needs loop mounts (the kernel is the
# reference); skips without them.
set -uo pipefail

source "$(dirname "$0")/testlib.sh"
require_root_fuse
command -v setfattr >/dev/null || skip "setfattr (package attr) is not installed"
resolve_e4fs "${1:-}"
compare=$(runfile tests/compare_tree.py) || exit 1
ops=$(runfile tests/rw_existing_ops.sh) || exit 1
make_tree=$(runfile testdata/make_tree.sh) || exit 1

work=$(make_workdir e4fs-rwx) || exit 1
cleanup() {
  for m in "$work"/mnt "$work"/kmnt "$work"/rmnt; do
    if is_mounted "$m"; then fuse_unmount "$m" || umount -l "$m"; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/mnt" "$work/kmnt" "$work/rmnt"
kernel_loop_ok "$work" || skip "loop mounts unavailable: the kernel is this test's reference"
"$make_tree" "$work/src" >/dev/null 2>&1 || { echo "FAIL: make_tree.sh failed"; exit 1; }

failed=0
for c in "ext4|" "ext4-inline_data|-O inline_data" "ext4-nocsum|-O ^metadata_csum,^64bit"; do
  IFS='|' read -r name opts <<<"$c"
  img="$work/$name.img"
  ref="$work/$name.ref.img"
  result=PASS
  why=""
  # shellcheck disable=SC2086
  if ! mke2fs -q -F -t ext4 $opts -d "$work/src" "$img" 1G >/dev/null 2>&1; then
    echo "FAIL: $name: mke2fs failed"; failed=1; continue
  fi
  # mke2fs -d leaves small slips e2fsck repairs; start both copies clean.
  e2fsck -fy "$img" >/dev/null 2>&1
  cp --sparse=always "$img" "$ref"
  if mount -o loop "$ref" "$work/rmnt" && "$ops" "$work/rmnt" >/dev/null; then
    :
  else
    result=FAIL; why="the operations fail on the kernel's ext4"
  fi
  if [ $result = PASS ]; then
    if ! timeout 20 "$E4FS" "$img" "$work/mnt" -o rw || ! wait_mounted "$work/mnt"; then
      result=FAIL; why="mount failed"
    else
      out=$(timeout 600 "$ops" "$work/mnt" 2>&1) || { result=FAIL; why="operations failed: $(echo "$out" | tail -5)"; }
      fuse_unmount "$work/mnt"
      wait_closed "$img" 20 || { result=FAIL; why="$why; server did not exit"; }
    fi
  fi
  if [ $result = PASS ]; then
    out=$(e2fsck -fn "$img" 2>&1) || { result=FAIL; why="e2fsck -fn: $(echo "$out" | head -30)"; }
  fi
  if [ $result = PASS ]; then
    if timeout 20 "$E4FS" "$img" "$work/mnt" -o ro && wait_mounted "$work/mnt"; then
      out=$(python3 "$compare" "$work/rmnt" "$work/mnt" 2>&1) ||
        { result=FAIL; why="e4fs's tree differs from the kernel's: $(echo "$out" | head -20)"; }
      # statfs: blocks, free, available, inodes, free inodes.
      e4fs_statfs=$(stat -f -c '%b %f %a %c %d' "$work/mnt")
      fuse_unmount "$work/mnt"
      wait_closed "$img" 20
    else
      result=FAIL; why="read-only remount failed"
    fi
  fi
  if [ $result = PASS ]; then
    if mount -o loop,ro "$img" "$work/kmnt"; then
      out=$(python3 "$compare" "$work/rmnt" "$work/kmnt" 2>&1) ||
        { result=FAIL; why="the kernel reads e4fs's image differently: $(echo "$out" | head -20)"; }
      kernel_statfs=$(stat -f -c '%b %f %a %c %d' "$work/kmnt")
      [ "$e4fs_statfs" = "$kernel_statfs" ] ||
        { result=FAIL; why="statfs differs: e4fs '$e4fs_statfs', kernel '$kernel_statfs'"; }
      umount "$work/kmnt"
    else
      result=FAIL; why="the kernel cannot mount e4fs's image"
    fi
  fi
  umount "$work/rmnt" 2>/dev/null
  echo "$result: $name${why:+ — $why}"
  [ $result = PASS ] || failed=1
  rm -f "$img" "$ref"
done
exit $failed
