#!/usr/bin/env bash
# mmp_mount_test.sh [E4FS]
#
# Multi-mount protection on a read-write mount of an mmp image
# (update interval 1 s, so every claim waits 11 s, as the kernel's would):
#   - the mount claims the MMP block and keeps changing its sequence number;
#   - the kernel, asked to mount the same image meanwhile, refuses (it sees
#     the number change);
#   - the unmount marks the block clean; e2fsck -fn is clean and the kernel
#     mounts the image and reads what e4fs wrote;
#   - a block that says e2fsck is running makes e4fs refuse the mount.
set -uo pipefail

source "$(dirname "$0")/testlib.sh"
require_root_fuse
resolve_e4fs "${1:-}"

work=$(make_workdir e4fs-mmp) || exit 1
cleanup() {
  if is_mounted "$work/mnt"; then fuse_unmount "$work/mnt" || umount -l "$work/mnt"; fi
  if is_mounted "$work/kmnt"; then umount "$work/kmnt" || umount -l "$work/kmnt"; fi
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/mnt" "$work/kmnt"
img=$work/fs.img
failed=0
fail() {
  echo "FAIL: $*"
  failed=1
}

mmp_seq() { debugfs -R dump_mmp "$img" 2>/dev/null | awk '$1 == "sequence:" { print $2 }'; }

mke2fs -q -F -t ext4 -O mmp -E mmp_update_interval=1 "$img" 64M ||
  { echo "FAIL: mke2fs"; exit 1; }
[ "$(mmp_seq)" = ff4d4d50 ] || fail "a fresh image's MMP block is not clean: $(mmp_seq)"

started=$SECONDS
if ! "$E4FS" "$img" "$work/mnt" -o rw 2>"$work/server.log"; then
  cat "$work/server.log"
  echo "FAIL: the read-write mount of an mmp image failed"
  exit 1
fi
waited=$((SECONDS - started))
[ "$waited" -ge 10 ] || fail "the mount did not wait for other nodes (${waited}s, want >= 11)"
echo "written while mounted" >"$work/mnt/file" || fail "write"
first=$(mmp_seq)
sleep 2.5
second=$(mmp_seq)
case "$first" in
  ff4d4d50 | e24d4d50 | "") fail "the MMP block is not claimed while mounted: '$first'" ;;
esac
[ "$first" != "$second" ] || fail "the sequence number did not change in 2.5 s ($first)"

if kernel_loop_ok "$work"; then
  if mount -o loop "$img" "$work/kmnt" 2>"$work/kernel.log"; then
    umount "$work/kmnt"
    fail "the kernel mounted the image while e4fs had it mounted"
  fi
fi

fuse_unmount "$work/mnt" || fail "unmount"
wait_closed "$img" 10 || fail "the server holds the image after the unmount"
[ "$(mmp_seq)" = ff4d4d50 ] || fail "the MMP block is not clean after the unmount: $(mmp_seq)"
out=$(e2fsck -fn "$img" 2>&1) || fail "e2fsck -fn: $out"
if kernel_loop_ok "$work"; then
  if mount -o loop,ro "$img" "$work/kmnt"; then
    [ "$(cat "$work/kmnt/file")" = "written while mounted" ] || fail "the kernel reads other contents"
    umount "$work/kmnt"
  else
    fail "the kernel cannot mount the image after e4fs"
  fi
fi

# e2fsck running elsewhere: refused at once, with a message that says so.
# (debugfs would put its own number back on close: the sequence field is
# written directly, on an image without metadata_csum so no checksum needs
# recomputing.)
fsck_img=$work/fsck.img
mke2fs -q -F -t ext4 -O mmp,^metadata_csum -E mmp_update_interval=1 "$fsck_img" 16M
mmp_block=$(dumpe2fs -h "$fsck_img" 2>/dev/null | awk -F: '/^MMP block number/ { gsub(/ /, "", $2); print $2 }')
block_size=$(dumpe2fs -h "$fsck_img" 2>/dev/null | awk -F: '/^Block size/ { gsub(/ /, "", $2); print $2 }')
python3 - "$fsck_img" "$((mmp_block * block_size + 4))" <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2]))
    f.write(struct.pack("<I", 0xE24D4D50))
PY
started=$SECONDS
if "$E4FS" "$fsck_img" "$work/mnt" -o rw 2>"$work/fsck.log"; then
  fuse_unmount "$work/mnt"
  fail "mounted while the MMP block says e2fsck is running"
else
  grep -q "e2fsck is running" "$work/fsck.log" ||
    fail "no message about e2fsck: $(cat "$work/fsck.log")"
  [ $((SECONDS - started)) -lt 5 ] || fail "the refusal waited"
fi
# Read-only mounts do not take part in MMP.
if "$E4FS" "$fsck_img" "$work/mnt" -o ro 2>"$work/ro.log"; then
  [ -d "$work/mnt/lost+found" ] || fail "read-only mount: no lost+found"
  fuse_unmount "$work/mnt"
else
  fail "read-only mount of an image being checked: $(cat "$work/ro.log")"
fi

[ "$failed" = 0 ] && echo PASS
exit "$failed"
