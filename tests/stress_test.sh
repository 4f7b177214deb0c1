#!/usr/bin/env bash
# stress_test.sh [E4FS]
#
# A randomized multi-process stress run (tests/stress.py: workers racing in
# one shared directory, each also checking the files of its own against a
# model) on a fresh read-write e4fs mount of every layout. Afterwards the
# tree e4fs showed is copied out, the image is unmounted and must be
# `e2fsck -fn` clean, and the kernel's own ext4 mount of the image must read
# back that tree: exactly as a fresh read-only e4fs mount shows it, and as
# the live mount showed it in everything but mtimes. (A live mount's kernel
# may cache a directory's mtime from a getattr answer that raced a change
# in it -- FUSE's attribute cache, not the image.)
#
#   STRESS_SECONDS  length of each layout's run (default 10)
#   STRESS_PROCS    worker processes (default 3)
#   STRESS_LAYOUTS  names of the layouts to run (default: all)
#   STRESS_SEED     the random seed (default: a new one, printed)
#   STRESS_KEEP     a directory to keep the image and the copied tree of a
#                   failed layout in
#
# The long run: sudo STRESS_SECONDS=600 tests/stress_test.sh bazel-bin/tools/e4fs
set -uo pipefail

source "$(dirname "$0")/testlib.sh"
require_root_fuse
resolve_e4fs "${1:-}"
compare=$(runfile tests/compare_tree.py) || exit 1
stress=$(runfile tests/stress.py) || exit 1
seconds=${STRESS_SECONDS:-10}
procs=${STRESS_PROCS:-3}
seed=${STRESS_SEED:-$RANDOM}

# name | mke2fs options
configs=(
  "ext4|"
  "ext4-nocsum-no64bit|-O ^metadata_csum,^64bit"
  "ext4-1k-blocks|-b 1024"
  "ext4-inline_data|-O inline_data"
  "ext3|-t ext3"
  "ext2|-t ext2"
)

mount_workdir e4fs-stress "the kernel cross-check"

echo "binary under test: $E4FS; $procs processes, ${seconds}s per layout, seed $seed"
failed=0
for c in "${configs[@]}"; do
  IFS='|' read -r name opts <<<"$c"
  if [ -n "${STRESS_LAYOUTS:-}" ] && [[ " $STRESS_LAYOUTS " != *" $name "* ]]; then
    continue
  fi
  img="$work/$name.img"
  view="$work/view"
  rm -rf "$view" "$view.ro"
  extra=""
  case " $opts " in *" ext2 "* | *" ext3 "*) extra="--no-fallocate" ;; *) opts="-t ext4 $opts" ;; esac
  result=PASS
  why=""
  # shellcheck disable=SC2086
  mke2fs -q -F $opts "$img" 512M >/dev/null 2>&1 || { result=FAIL; why="mke2fs failed"; }
  if [ $result = PASS ]; then
    if ! timeout 20 "$E4FS" "$img" "$work/mnt" -o rw || ! wait_mounted "$work/mnt"; then
      result=FAIL; why="mount failed"
    fi
  fi
  if [ $result = PASS ]; then
    mkdir "$work/mnt/stress"
    # shellcheck disable=SC2086
    if ! out=$(timeout $((seconds + 900)) python3 "$stress" "$work/mnt/stress" \
      --seconds "$seconds" --procs "$procs" --seed "$seed" $extra 2>&1); then
      result=FAIL; why="stress run failed: $(echo "$out" | tail -20)"
    else
      echo "$name: $(echo "$out" | tail -1)"
    fi
    # What e4fs shows once the workers are done.
    cp -a "$work/mnt/stress" "$view" || { result=FAIL; why="$why; copying the tree out failed"; }
    fuse_unmount "$work/mnt" || { result=FAIL; why="$why; unmount failed"; }
    wait_closed "$img" 30 || { result=FAIL; why="$why; server did not exit"; }
  fi
  if [ $result = PASS ]; then
    # ... and what it shows from the image, with nothing cached.
    if ! timeout 20 "$E4FS" "$img" "$work/mnt" -o ro || ! wait_mounted "$work/mnt"; then
      result=FAIL; why="read-only remount failed"
    else
      cp -a "$work/mnt/stress" "$view.ro" || { result=FAIL; why="copying the remounted tree out failed"; }
      fuse_unmount "$work/mnt"
      wait_closed "$img" 30
    fi
  fi
  if [ $result = PASS ]; then
    if ! out=$(e2fsck -fn "$img" 2>&1); then
      result=FAIL; why="e2fsck -fn: $(echo "$out" | head -30)"
    fi
  fi
  if [ $result = PASS ] && [ "$kernel" = 1 ]; then
    if mount -o loop,ro "$img" "$work/kmnt"; then
      out=$(python3 "$compare" "$view.ro" "$work/kmnt/stress" 2>&1) ||
        { result=FAIL; why="the kernel reads a different tree: $(echo "$out" | head -20)"; }
      out=$(python3 "$compare" --mtime-precision=none "$view" "$work/kmnt/stress" 2>&1) ||
        { result=FAIL; why="$why; the kernel reads a different tree than the live mount showed: $(echo "$out" | head -20)"; }
      umount "$work/kmnt"
    else
      result=FAIL; why="the kernel cannot mount the image"
    fi
  fi
  echo "$result: $name${why:+ — $why}"
  [ $result = PASS ] || failed=1
  if [ $result != PASS ] && [ -n "${STRESS_KEEP:-}" ]; then
    mkdir -p "$STRESS_KEEP" && mv "$img" "$STRESS_KEEP/" && mv "$view" "$STRESS_KEEP/$name.view" &&
      echo "kept in $STRESS_KEEP: $name.img, $name.view"
  fi
  rm -rf "$img" "$view" "$view.ro"
done

exit $failed
