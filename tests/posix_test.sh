#!/usr/bin/env bash
# posix_test.sh [E4FS]
#
# The POSIX behaviour suite (tests/posix_suite.py: every write operation,
# results and exact errno values) on every layout: first on the kernel's own
# ext4 mount of a fresh image (the suite must pass there: the kernel is the
# reference), then on a fresh read-write e4fs mount, which must pass too and
# leave an image `e2fsck -fn` clean. The default layout also runs with
# -o nowriteback_cache, where the kernel keeps nothing of its own and every
# check applies.
set -uo pipefail

source "$(dirname "$0")/testlib.sh"
require_root_fuse
resolve_e4fs "${1:-}"
suite=$(runfile tests/posix_suite.py) || exit 1

# name | mke2fs options | e4fs mount options
configs=(
  "ext4||rw,allow_other"
  "ext4-nowriteback|-t ext4|rw,allow_other,nowriteback_cache"
  "ext4-nocsum-no64bit|-O ^metadata_csum,^64bit|rw,allow_other"
  "ext4-1k-blocks|-b 1024|rw,allow_other"
  "ext4-inline_data|-O inline_data|rw,allow_other"
  "ext3|-t ext3|rw,allow_other"
  "ext2|-t ext2|rw,allow_other"
)

# What e4fs does not do at all (each a feature of its own, named in the
# README): whiteouts (overlayfs), the inode flag ioctls, collapse and
# insert range.
not_implemented=(
  --skip "rename_whiteout=RENAME_WHITEOUT is not implemented"
  --skip "inode_flags=FS_IOC_GETFLAGS/SETFLAGS are not implemented"
  --skip "fallocate_collapse_insert=COLLAPSE_RANGE/INSERT_RANGE are not implemented"
)
# With the writeback cache the kernel keeps the size and the times of a
# file it caches and never asks the server: writes past the largest size
# succeed in the cache and fail at write-back, times it sets are not
# clamped, a truncate to the same size changes no time, and SEEK_DATA and
# SEEK_HOLE are refused while cached data may be unwritten. The
# nowriteback_cache run checks all of these.
writeback_skips=(
  --skip "efbig=writeback cache: the kernel keeps the size (see ext4-nowriteback)"
  --skip "utime_clamped=writeback cache: the kernel keeps the times (see ext4-nowriteback)"
  --skip "times_on_write_truncate=writeback cache: the kernel keeps the times (see ext4-nowriteback)"
  --skip "seek_data_hole_open_writer=writeback cache: refused while data may be unwritten (see ext4-nowriteback)"
)

mount_workdir e4fs-posix "checking the suite on the kernel"

echo "binary under test: $E4FS"
failed=0
for c in "${configs[@]}"; do
  IFS='|' read -r name opts mount_opts <<<"$c"
  case " $opts " in *" -t "*) ;; *) opts="-t ext4 $opts" ;; esac
  args=()
  case " $opts " in *" ext2 "* | *" ext3 "*) args+=(--no-fallocate) ;; esac
  img="$work/$name.img"
  result=PASS
  why=""
  if [ "$kernel" = 1 ]; then
    # shellcheck disable=SC2086
    mke2fs -q -F $opts "$img" 512M >/dev/null 2>&1 &&
      mount -o loop "$img" "$work/kmnt" && mkdir "$work/kmnt/t" ||
      { result=FAIL; why="cannot set up the kernel's mount"; }
    if [ $result = PASS ]; then
      out=$(timeout 600 python3 "$suite" "${args[@]}" "$work/kmnt/t" 2>&1) ||
        { result=FAIL; why="the suite fails on the kernel's ext4: $(echo "$out" | grep -v '^SKIP' | tail -15)"; }
    fi
    umount "$work/kmnt" 2>/dev/null
  fi
  skips=("${not_implemented[@]}")
  [[ ",$mount_opts," == *",nowriteback_cache,"* ]] || skips+=("${writeback_skips[@]}")
  if [ "$name" = ext2 ]; then
    # Without a journal every operation is synced on its own: 65,000 links
    # take minutes. The limit is checked on every other layout.
    skips+=(--skip "link_emlink=slow without a journal; checked on the other layouts")
  fi
  if [ $result = PASS ]; then
    # shellcheck disable=SC2086
    mke2fs -q -F $opts "$img" 512M >/dev/null 2>&1 || { result=FAIL; why="mke2fs failed"; }
  fi
  if [ $result = PASS ]; then
    if ! timeout 20 "$E4FS" "$img" "$work/mnt" -o "$mount_opts" || ! wait_mounted "$work/mnt"; then
      result=FAIL; why="mount failed"
    fi
  fi
  if [ $result = PASS ]; then
    mkdir "$work/mnt/t"
    if ! out=$(timeout 900 python3 "$suite" "${args[@]}" "${skips[@]}" "$work/mnt/t" 2>&1); then
      result=FAIL; why="$(echo "$out" | grep -v '^SKIP' | tail -25)"
    else
      echo "$name: $(echo "$out" | tail -1)"
    fi
    fuse_unmount "$work/mnt" || { result=FAIL; why="$why; unmount failed"; }
    wait_closed "$img" 30 || { result=FAIL; why="$why; server did not exit"; }
  fi
  if [ $result = PASS ]; then
    if ! out=$(e2fsck -fn "$img" 2>&1); then
      result=FAIL; why="e2fsck -fn: $(echo "$out" | head -30)"
    fi
  fi
  echo "$result: $name${why:+ — $why}"
  [ $result = PASS ] || failed=1
  rm -f "$img"
done

exit $failed
