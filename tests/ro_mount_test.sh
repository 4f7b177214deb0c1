#!/usr/bin/env bash
# ro_mount_test.sh [E4FS]
#
# Read-only mounts across the feature matrix. The source tree of
# testdata/make_tree.sh is built once; for each configuration an image is
# made with `mke2fs -d`, mounted read-only with `$E4FS IMG MNT -o ro`
# (daemonized) and compared with the tree (tests/compare_tree.py); `stat -f`
# must work, the unmount must leave the image byte-for-byte unchanged, and
# `e2fsck -fn` must be clean. Where loop mounts work, the kernel's own ext4
# mount of the same image is compared with the tree too (the oracle).
#
# The binary: $1, else $E4FS, else `e4fs` on the PATH. Any fuse2fs-compatible
# program works: E4FS=/usr/bin/fuse2fs tests/ro_mount_test.sh
# Environment: E4FS_OPTS (extra -o options), COMPARE_ARGS (extra
# compare_tree.py flags), CONFIGS (space-separated names to run a subset),
# KEEP=1 (keep the work directory).
# Prints one PASS/FAIL line per configuration; exits 1 if any failed.
set -uo pipefail

source "$(dirname "$0")/testlib.sh"
require_root_fuse
resolve_e4fs "${1:-}"
make_tree=$(runfile testdata/make_tree.sh) || exit 1
compare=$(runfile tests/compare_tree.py) || exit 1

# name | mke2fs -t | mke2fs options | compare_tree.py flags
# -b 1024 needs ea_inode: the tree's 3000-byte xattr does not fit a 1 KiB block.
# 128-byte inodes keep whole seconds only, in 32 bits.
all_configs=(
  "ext4|ext4||"
  "ext4-nocsum-no64bit|ext4|-O ^metadata_csum,^64bit|"
  "ext4-inline_data|ext4|-O inline_data|"
  "ext4-1k-blocks|ext4|-b 1024 -O ea_inode|"
  "ext4-128-inodes|ext4|-I 128|--mtime-precision=s --mtime-32bit"
  "ext4-bigalloc|ext4|-O bigalloc -C 16384|"
  "ext4-large_dir|ext4|-O large_dir|"
  "ext3|ext3||"
  "ext2|ext2||"
)
configs=()
for c in "${all_configs[@]}"; do
  name=${c%%|*}
  if [ -z "${CONFIGS:-}" ] || [[ " $CONFIGS " == *" $name "* ]]; then configs+=("$c"); fi
done
[ ${#configs[@]} -gt 0 ] || { echo "FAIL: CONFIGS='$CONFIGS' matches no configuration"; exit 1; }

work=$(make_workdir e4fs-ro) || exit 1
builder=""
cleanup() {
  if [ -n "$builder" ]; then pkill -P "$builder" 2>/dev/null; kill "$builder" 2>/dev/null; wait "$builder" 2>/dev/null; fi
  for m in "$work"/mnt "$work"/kmnt; do
    if is_mounted "$m"; then fuse_unmount "$m" || umount -l "$m"; fi
  done
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$work/mnt" "$work/kmnt"

echo "binary under test: $E4FS"
echo "work directory: $work"
t0=$SECONDS
"$make_tree" "$work/src" >/dev/null || { echo "FAIL: make_tree.sh failed"; exit 1; }
echo "source tree built in $((SECONDS - t0))s"

if kernel_loop_ok "$work"; then
  kernel=1
else
  kernel=0
  echo "SKIP: kernel oracle: loop mounts of ext4 do not work here; only e4fs is compared with the tree"
fi

# debugfs commands that make an image hold what mke2fs 1.47.0 -d drops:
# nanoseconds and dates past 2038 (large inodes only), and the size of files
# that end in a hole (lost with inline_data).
fixup_cmds() { # SRC LARGE_INODES
  python3 - "$1" "$2" <<'EOF'
import os, stat, sys
src, large = os.fsencode(sys.argv[1]), sys.argv[2] == "1"
def q(rel):
    return '"/%s"' % os.fsdecode(rel).replace('"', '\\"')
for root, dirs, files in os.walk(src):
    for name in dirs + files:
        p = os.path.join(root, name)
        rel = os.path.relpath(p, src)
        st = os.lstat(p)
        sec, ns = divmod(st.st_mtime_ns, 10**9)
        if large and (ns or not -2**31 <= sec < 2**31):
            lo = ((sec + 2**31) % 2**32) - 2**31
            epoch = ((sec - lo) >> 32) & 3
            print("set_inode_field %s mtime @%d" % (q(rel), sec))
            print("set_inode_field %s mtime_extra %d" % (q(rel), (ns << 2) | epoch))
        if stat.S_ISREG(st.st_mode) and st.st_blocks * 512 < st.st_size:
            print("set_inode_field %s size %d" % (q(rel), st.st_size))
EOF
}

# build_image INDEX: writes $work/imgN (+ .log, and .done holding ok or error).
build_image() {
  local i=$1 name type opts large=1
  IFS='|' read -r name type opts _ <<<"${configs[$i]}"
  local img=$work/img$i log=$work/img$i.log
  [[ " $opts " == *" -I 128 "* ]] && large=0
  {
    # shellcheck disable=SC2086
    if ! mke2fs -q -F -t "$type" $opts -d "$work/src" "$img" 1G; then
      echo "mke2fs failed" >"$img.done"
      return
    fi
    fixup_cmds "$work/src" "$large" >"$img.fixups"
    local out
    out=$(debugfs -w -f "$img.fixups" "$img" 2>&1 | grep -v -e '^debugfs [0-9]' -e '^debugfs: ')
    if [ -n "$out" ]; then
      echo "$out"
      echo "debugfs fix-ups failed: $out" >"$img.done"
      return
    fi
    # mke2fs 1.47.0 leaves some slips (e.g. i_blocks of files with EA
    # inodes); let e2fsck repair them so the image starts clean.
    e2fsck -fy "$img" >"$img.e2fsck-fy" 2>&1
    local rc=$?
    if [ $rc -ge 4 ]; then
      echo "e2fsck -fy could not repair the new image (rc $rc)" >"$img.done"
      return
    fi
    [ $rc -ne 0 ] && echo "NOTE: e2fsck -fy repaired the new image" && cat "$img.e2fsck-fy"
    echo ok >"$img.done"
  } >"$log" 2>&1
}

# Images are built in the background, as many at once as there are CPUs,
# while earlier ones are tested.
(
  jobs_max=$(nproc 2>/dev/null || echo 2)
  for i in "${!configs[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n; done
    build_image "$i" &
  done
  wait
) &
builder=$!

failed=0
for i in "${!configs[@]}"; do
  IFS='|' read -r name type opts cflags <<<"${configs[$i]}"
  img=$work/img$i
  errs=()
  tstart=$SECONDS
  while [ ! -s "$img.done" ] && [ $((SECONDS - tstart)) -lt 600 ]; do sleep 0.2; done
  status=$(cat "$img.done" 2>/dev/null || echo "image build timed out")
  if [ "$status" != ok ]; then
    echo "FAIL $name: image: $status"
    sed 's/^/    /' "$img.log" | head -20
    failed=$((failed + 1))
    rm -f "$img"
    continue
  fi
  grep -q NOTE "$img.log" && echo "  $name: e2fsck -fy repaired slips of mke2fs in the new image (see KEEP=1 $img.log)"
  if ! e2fsck -fn "$img" >"$img.e2fsck0" 2>&1; then
    echo "FAIL $name: the new image is not e2fsck-clean before any mount"
    sed 's/^/    /' "$img.e2fsck0" | head -20
    failed=$((failed + 1))
    continue
  fi
  sha_before=$(image_sha "$img")
  inodes=$(dumpe2fs -h "$img" 2>/dev/null | awk -F: '/^Inode count/ { gsub(/ /, "", $2); print $2 }')

  # --- e4fs ---
  mnt=$work/mnt
  t=$SECONDS
  if ! timeout 30 "$E4FS" "$img" "$mnt" -o "ro${E4FS_OPTS:+,$E4FS_OPTS}" >"$img.mount.out" 2>&1; then
    errs+=("mount command failed: $(tr '\n' ' ' <"$img.mount.out")")
  elif ! is_mounted "$mnt" && ! wait_mounted "$mnt" 20; then
    errs+=("not mounted 20 s after the command returned")
  fi
  if is_mounted "$mnt"; then
    # shellcheck disable=SC2086
    if ! python3 "$compare" $cflags ${COMPARE_ARGS:-} "$work/src" "$mnt" >"$img.compare" 2>&1; then
      errs+=("$(tail -1 "$img.compare")")
    fi
    if sf=$(stat -f -c '%S %b %f %c %d' "$mnt" 2>&1); then
      read -r bsize blocks _ files _ <<<"$sf"
      [ "${blocks:-0}" -gt 0 ] && [ "${bsize:-0}" -gt 0 ] || errs+=("stat -f: nonsense: $sf")
      [ "$files" = "$inodes" ] || errs+=("stat -f: $files inodes, the superblock says $inodes")
    else
      errs+=("stat -f failed: $sf")
    fi
    opts_seen=$(mount_field "$mnt" options)
    [[ ",$opts_seen," == *,ro,* ]] || errs+=("/proc/mounts options '$opts_seen' lack ro")
    fuse_unmount "$mnt" || errs+=("unmount failed")
  fi
  wait_closed "$img" 30 || errs+=("the server still holds the image 30 s after the unmount")
  fuse_secs=$((SECONDS - t))
  [ "$(image_sha "$img")" = "$sha_before" ] || errs+=("the read-only mount changed the image")
  e2fsck -fn "$img" >"$img.e2fsck1" 2>&1 || errs+=("e2fsck -fn after the mount: $(grep -v '^Pass\|^e2fsck' "$img.e2fsck1" | head -3 | tr '\n' ' ')")

  # --- the kernel, as oracle ---
  kres="kernel: SKIP (no loop mounts)"
  if [ "$kernel" = 1 ]; then
    if mount -t "$type" -o loop,ro "$img" "$work/kmnt" 2>"$img.kmount"; then
      # shellcheck disable=SC2086
      if python3 "$compare" $cflags "$work/src" "$work/kmnt" >"$img.kcompare" 2>&1; then
        kres="kernel: match"
      else
        kres="kernel: DIFFERS"
        errs+=("the kernel's mount differs from the tree (mke2fs or the tree is at fault): $(tail -1 "$img.kcompare")")
      fi
      umount "$work/kmnt" || umount -l "$work/kmnt"
      [ "$(image_sha "$img")" = "$sha_before" ] || errs+=("the image changed under the kernel's ro mount")
    else
      kres="kernel: mount failed"
      errs+=("kernel mount failed: $(head -1 "$img.kmount")")
    fi
  fi

  if [ ${#errs[@]} -eq 0 ]; then
    echo "PASS $name (e4fs ${fuse_secs}s; $kres)"
  else
    echo "FAIL $name ($kres)"
    for e in "${errs[@]}"; do echo "    $e"; done
    if [ -s "$img.compare" ] && ! tail -1 "$img.compare" | grep -q 'trees match'; then
      grep '^SUMMARY' "$img.compare" | head -20 | sed 's/^/      /'
      grep '^DIFF' "$img.compare" | head -10 | sed 's/^/      /'
    fi
    if [ -s "$img.kcompare" ] && ! tail -1 "$img.kcompare" | grep -q 'trees match'; then
      grep '^SUMMARY' "$img.kcompare" | head -10 | sed 's/^/      kernel /'
      grep '^DIFF' "$img.kcompare" | head -10 | sed 's/^/      kernel /'
    fi
    failed=$((failed + 1))
  fi
  [ "${KEEP:-0}" = 1 ] || rm -f "$img"
done
wait "$builder" 2>/dev/null
builder=""

echo "ro_mount_test: $((${#configs[@]} - failed)) of ${#configs[@]} configurations passed in $((SECONDS - t0))s"
[ "$failed" -eq 0 ]
