#!/usr/bin/env bash
# journal_replay_test.sh [E4FS]
#
# Journals written by the kernel, replayed by e4fs. Each image is left by
# tests/kernel_journal.sh with committed, un-checkpointed transactions and an
# orphan (where loop mounts work; the images in testdata/journal/ always).
# The reference is a copy repaired by `e2fsck -fy`, read through e4fs:
#   - a read-only e4fs mount replays in memory: the same tree, and the image
#     stays byte-for-byte as it was;
#   - -o ro,norecovery mounts without replaying (and -o rw,norecovery is ro);
#   - a read-write e4fs mount replays in place and finishes the orphans: the
#     same tree, then e2fsck -fn clean and the kernel reads the same tree.
set -uo pipefail

source "$(dirname "$0")/testlib.sh"
require_root_fuse
resolve_e4fs "${1:-}"
compare=$(runfile tests/compare_tree.py) || exit 1
kernel_journal=$(runfile tests/kernel_journal.sh) || exit 1
shipped_dir=$(dirname "$(runfile testdata/journal/ext4-csum.img.gz)") || exit 1

work=$(make_workdir e4fs-jr) || exit 1
cleanup() {
  for m in "$work"/mnt "$work"/ref "$work"/kmnt; do
    if is_mounted "$m"; then fuse_unmount "$m" || umount -l "$m"; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/mnt" "$work/ref" "$work/kmnt"

failed=0
fail() {
  echo "FAIL: $*"
  failed=1
}

e4fs_mount() {  # IMAGE DIR OPTIONS
  timeout 30 "$E4FS" "$1" "$2" -o "$3" && wait_mounted "$2"
}
e4fs_unmount() {  # DIR IMAGE
  fuse_unmount "$1"
  wait_closed "$2" 20
}

# check NAME IMAGE RW: IMAGE needs recovery; RW=1 when e4fs may write it.
check() {
  local name=$1 img=$2 rw=$3 out before after
  if ! dumpe2fs -h "$img" 2>/dev/null | grep -q needs_recovery; then
    fail "$name: the image does not need recovery"; return
  fi
  cp --sparse=always "$img" "$work/fixed.img"
  e2fsck -fy "$work/fixed.img" >/dev/null 2>&1
  out=$(e2fsck -fn "$work/fixed.img" 2>&1) || { fail "$name: e2fsck -fy did not fix the copy: $out"; return; }
  e4fs_mount "$work/fixed.img" "$work/ref" ro || { fail "$name: cannot mount the reference"; return; }

  # Read-only: replay in memory.
  before=$(image_sha "$img")
  if e4fs_mount "$img" "$work/mnt" ro; then
    out=$(python3 "$compare" "$work/ref" "$work/mnt" 2>&1) || fail "$name: ro replay differs from e2fsck's: $(echo "$out" | head -20)"
    e4fs_unmount "$work/mnt" "$img"
  else
    fail "$name: read-only mount of an image that needs recovery failed"
  fi
  after=$(image_sha "$img")
  [ "$before" = "$after" ] || fail "$name: a read-only mount changed the image"

  # norecovery: the image as it is, read-only even when rw is asked for.
  if e4fs_mount "$img" "$work/mnt" rw,norecovery; then
    [ -d "$work/mnt/base" ] || fail "$name: norecovery mount shows no tree"
    if touch "$work/mnt/should-fail" 2>/dev/null; then
      fail "$name: norecovery mount is writable"
    fi
    e4fs_unmount "$work/mnt" "$img"
  else
    fail "$name: -o norecovery mount failed"
  fi
  [ "$before" = "$(image_sha "$img")" ] || fail "$name: a norecovery mount changed the image"

  if [ "$rw" = 1 ]; then
    if e4fs_mount "$img" "$work/mnt" rw; then
      out=$(python3 "$compare" "$work/ref" "$work/mnt" 2>&1) || fail "$name: rw replay differs from e2fsck's: $(echo "$out" | head -20)"
      e4fs_unmount "$work/mnt" "$img"
      out=$(e2fsck -fn "$img" 2>&1) || fail "$name: e2fsck -fn after e4fs's replay: $(echo "$out" | head -30)"
      if [ "$kernel" = 1 ]; then
        if mount -o loop,ro "$img" "$work/kmnt"; then
          out=$(python3 "$compare" "$work/ref" "$work/kmnt" 2>&1) || fail "$name: the kernel reads e4fs's replay differently: $(echo "$out" | head -20)"
          umount "$work/kmnt"
        else
          fail "$name: the kernel cannot mount e4fs's replayed image"
        fi
      fi
    else
      fail "$name: read-write mount with replay failed"
    fi
  fi
  e4fs_unmount "$work/ref" "$work/fixed.img"
  [ $failed = 0 ] && echo "PASS: $name"
}

kernel=0
kernel_loop_ok "$work" && kernel=1

# Shipped images: replayable without loop mounts.
for gz in "$shipped_dir"/*.img.gz; do
  name=shipped-$(basename "$gz" .img.gz)
  gunzip -c "$gz" >"$work/$name.img"
  rw=1
  case $name in *ext3*) rw=0 ;; esac
  check "$name" "$work/$name.img" "$rw"
  rm -f "$work/$name.img"
done

if [ "$kernel" = 1 ]; then
  for c in "ext4|-t ext4|1" "ext4-1k-nocsum|-t ext4 -b 1024 -O ^metadata_csum,^64bit|1" \
    "ext4-32bit-journal|-t ext4 -O ^64bit -J size=16|1" "ext4-orphan-file|-t ext4 -O orphan_file|1" "ext3|-t ext3|0"; do
    IFS='|' read -r name opts rw <<<"$c"
    img=$work/$name.img
    # shellcheck disable=SC2086
    mke2fs -q -F $opts "$img" 128M >/dev/null 2>&1 || { fail "$name: mke2fs"; continue; }
    if ! "$kernel_journal" "$img" "$work" >"$work/kj.log" 2>&1; then
      fail "$name: could not make the kernel leave a journal: $(tail -5 "$work/kj.log")"; continue
    fi
    check "kernel-$name" "$img" "$rw"
    rm -f "$img"
  done
else
  echo "SKIP: kernel-made journals (loop mounts unavailable); shipped images only"
fi
exit $failed
