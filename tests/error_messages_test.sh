#!/usr/bin/env bash
# error_messages_test.sh [E4FS]
#
# Every refusal to mount exits non-zero within 10 s with exactly one line on
# stderr that names the problem: a missing image, a file that is not ext2/3/4,
# an incompat feature e4fs does not support (casefold) and an unknown incompat
# bit, a journal that needs recovery, bad option values (offset=abc,
# errors=bogus). And the two ways in that must work: `-o ro,norecovery`
# mounts the needs-recovery image read-only without touching it, and
# `-o ro,offset=1048576` mounts an image embedded 1 MiB into a bigger file.
#
# The binary: $1, else $E4FS, else `e4fs` on the PATH.
# The needs-recovery cases need kernel loop mounts; they print SKIP without.
set -uo pipefail

source "$(dirname "$0")/testlib.sh"
require_root_fuse
resolve_e4fs "${1:-}"

work=$(make_workdir e4fs-errors) || exit 1
mnt=$work/mnt
cleanup() {
  for m in "$mnt" "$work/kmnt"; do
    if is_mounted "$m"; then fuse_unmount "$m" || umount -l "$m"; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$mnt" "$work/kmnt" "$work/src"
echo "binary under test: $E4FS"

failed=0
pass() { echo "PASS $1"; }
fail() {
  echo "FAIL $1"
  shift
  local l
  for l in "$@"; do echo "    $l"; done
  failed=$((failed + 1))
}

# expect_error NAME REGEX IMAGE [ARGS...]: `$E4FS IMAGE MNT ARGS...` must fail
# promptly with one stderr line matching REGEX (extended, case-insensitive).
expect_error() {
  local name=$1 regex=$2 img=$3 rc lines msg
  shift 3
  local err=$work/stderr out=$work/stdout
  timeout 10 "$E4FS" "$img" "$mnt" "$@" >"$out" 2>"$err"
  rc=$?
  if is_mounted "$mnt"; then
    fuse_unmount "$mnt"
    wait_closed "$img" 10
    fail "$name" "mounted anyway (exit $rc)"
    return
  fi
  lines=$(grep -c '' "$err")
  msg=$(head -c 300 "$err" | tr '\n' '|')
  if [ "$rc" -eq 124 ]; then
    fail "$name" "did not exit within 10 s"
  elif [ "$rc" -gt 128 ]; then
    fail "$name" "killed by signal $((rc - 128)); stderr: $msg"
  elif [ "$rc" -eq 0 ]; then
    fail "$name" "exit status 0; stderr: $msg"
  elif [ "$lines" -ne 1 ]; then
    fail "$name" "exit $rc with $lines lines on stderr, want exactly 1: $msg"
  elif ! grep -Eiq -- "$regex" "$err"; then
    fail "$name" "exit $rc, but the message does not match /$regex/: $msg"
  else
    pass "$name: exit $rc: $(head -1 "$err")"
  fi
}

# mount_ok NAME IMAGE [ARGS...]: `$E4FS IMAGE MNT ARGS...` must mount.
mount_ok() {
  local name=$1 img=$2 out
  shift 2
  if ! out=$(timeout 30 "$E4FS" "$img" "$mnt" "$@" 2>&1); then
    fail "$name" "mount failed: $(echo "$out" | tr '\n' '|')"
    return 1
  fi
  if ! is_mounted "$mnt" && ! wait_mounted "$mnt" 20; then
    fail "$name" "not mounted 20 s after the command returned"
    return 1
  fi
  return 0
}

unmount_and_wait() { # IMAGE
  fuse_unmount "$mnt" || return 1
  wait_closed "$1" 10
}

printf 'hello\n' >"$work/src/hello.txt"
good=$work/good.img
mke2fs -q -F -t ext4 -d "$work/src" "$good" 16M >/dev/null || { echo "FAIL: mke2fs"; exit 1; }

# 1. A missing image.
expect_error "missing image" "No such file" "$work/does-not-exist.img" -o ro

# 2. A file that is not ext2/3/4.
head -c $((4 << 20)) /dev/zero >"$work/zeros.img"
expect_error "zero-filled file (not ext)" "not an ext" "$work/zeros.img" -o ro

# 3. Incompat features e4fs does not support: casefold (a real, valid image),
# and a bit no version of ext4 defines.
if mke2fs -q -F -t ext4 -O casefold -d "$work/src" "$work/casefold.img" 16M >/dev/null 2>&1; then
  expect_error "unsupported incompat feature (casefold)" "casefold" "$work/casefold.img" -o ro
else
  echo "SKIP unsupported incompat feature (casefold): this mke2fs cannot make one"
fi
cp "$good" "$work/unknown.img"
incompat_of() { # IMAGE: s_feature_incompat, read from the superblock
  python3 -c 'import struct, sys
with open(sys.argv[1], "rb") as f:
    f.seek(1024 + 0x60)
    print(struct.unpack("<I", f.read(4))[0])' "$1"
}
debugfs -w -R "ssv feature_incompat $(($(incompat_of "$work/unknown.img") | 0x80000000))" \
  "$work/unknown.img" >/dev/null 2>&1
if (($(incompat_of "$work/unknown.img") & 0x80000000)); then
  expect_error "unknown incompat feature bit 31" "feature|incompat|unsupported" "$work/unknown.img" -o ro
else
  fail "unknown incompat feature bit 31" "could not set the bit with debugfs"
fi

# 4. Bad option values.
expect_error "bad option offset=abc" "offset" "$good" -o ro,offset=abc
expect_error "bad option errors=bogus" "errors|bogus" "$good" -o ro,errors=bogus

# 5. offset=: an image 1 MiB into a bigger file.
embedded=$work/embedded.bin
truncate -s $((1 << 20)) "$embedded"
cat "$good" >>"$embedded"
truncate -s +$((1 << 20)) "$embedded"
sha=$(image_sha "$embedded")
if mount_ok "offset=1048576" "$embedded" -o ro,offset=1048576; then
  got=$(cat "$mnt/hello.txt" 2>&1)
  unmount_and_wait "$embedded"
  if [ "$got" != hello ]; then
    fail "offset=1048576" "hello.txt reads back '$got'"
  elif [ "$(image_sha "$embedded")" != "$sha" ]; then
    fail "offset=1048576" "the file changed"
  else
    pass "offset=1048576: mounted and read back"
  fi
fi

# 6. A journal that needs recovery (made by the kernel: write, shut down with
# EXT4_IOC_SHUTDOWN + EXT4_GOING_FLAGS_LOGFLUSH, unmount).
recov=$work/recovery.img
if ! kernel_loop_ok "$work"; then
  echo "SKIP needs-recovery journal: kernel loop mounts do not work here"
else
  mke2fs -q -F -t ext4 "$recov" 64M >/dev/null
  made=0
  if mount -o loop "$recov" "$work/kmnt"; then
    for i in 1 2 3; do echo "file $i" >"$work/kmnt/f$i"; done
    mkdir "$work/kmnt/dir"
    python3 - "$work/kmnt" <<'EOF' && made=1
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.ioctl(fd, 0x8004587D, struct.pack("I", 1))  # EXT4_IOC_SHUTDOWN, LOGFLUSH
os.close(fd)
EOF
    umount "$work/kmnt" || umount -l "$work/kmnt"
  fi
  if [ "$made" = 1 ] && dumpe2fs -h "$recov" 2>/dev/null | grep -q '^Filesystem features:.*needs_recovery'; then
    sha=$(image_sha "$recov")
    # Replay needs a readable journal: a corrupt journal superblock on an
    # image that needs recovery is refused, naming the journal.
    jblock=$(debugfs -R "bmap <8> 0" "$recov" 2>/dev/null)
    bsize=$(dumpe2fs -h "$recov" 2>/dev/null | awk -F: '/^Block size/ {print $2+0}')
    cp --sparse=always "$recov" "$work/badjournal.img"
    printf '\0\0\0\0' | dd of="$work/badjournal.img" bs=1 seek=$((jblock * bsize)) conv=notrunc 2>/dev/null
    expect_error "needs recovery, journal superblock corrupt" "journal" "$work/badjournal.img" -o ro
    if mount_ok "-o ro,norecovery on a needs-recovery image" "$recov" -o ro,norecovery; then
      listing=$(ls "$mnt" 2>&1 | tr '\n' ' ')
      unmount_and_wait "$recov"
      if [[ " $listing " != *" lost+found "* ]]; then
        fail "-o ro,norecovery on a needs-recovery image" "root lists: $listing"
      elif [ "$(image_sha "$recov")" != "$sha" ]; then
        fail "-o ro,norecovery on a needs-recovery image" "the image changed (was the journal replayed?)"
      else
        pass "-o ro,norecovery on a needs-recovery image: mounted, root lists: $listing"
      fi
    fi
  else
    fail "journal needs recovery" "could not make an image that needs recovery"
  fi
fi

if [ "$failed" -eq 0 ]; then
  echo "error_messages_test: PASS"
else
  echo "error_messages_test: $failed case(s) FAILED"
fi
[ "$failed" -eq 0 ]
