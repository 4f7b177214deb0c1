# shellcheck shell=bash
# Shared helpers for the mount-level tests (sourced, not run).
#
# The tests find the e4fs binary as their first argument (Bazel passes
# $(location //tools:e4fs)), else in $E4FS, else as `e4fs` on the PATH; any
# fuse2fs-compatible program works (E4FS=/usr/bin/fuse2fs).

# Tools live in sbin; Bazel's test PATH may not include it.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# runfile REL: a file of this workspace, from the source tree or the runfiles.
runfile() {
  local rel=$1 c
  for c in "$TESTS_DIR/../$rel" \
    "${TEST_SRCDIR:-/nonexistent}/${TEST_WORKSPACE:-e4fs}/$rel" \
    "$PWD/$rel"; do
    if [ -e "$c" ]; then
      echo "$c"
      return 0
    fi
  done
  echo "cannot find $rel (looked beside $TESTS_DIR and in runfiles)" >&2
  return 1
}

# skip MESSAGE: the whole test is skipped (exit 0).
skip() {
  echo "SKIP: $*"
  exit 0
}

# require_root_fuse: skips unless root with /dev/fuse.
require_root_fuse() {
  [ "$(id -u)" -eq 0 ] || skip "needs root (mounting FUSE and loop devices)"
  [ -c /dev/fuse ] || skip "/dev/fuse is missing"
  [ -r /dev/fuse ] && [ -w /dev/fuse ] || skip "/dev/fuse is not usable"
  local t
  for t in mke2fs e2fsck debugfs python3 sha256sum; do
    command -v "$t" >/dev/null 2>&1 || skip "$t is not installed"
  done
}

# resolve_e4fs [ARG]: sets E4FS to an absolute path (the server chdirs to /
# when it daemonizes, so nothing it is given may be relative).
resolve_e4fs() {
  local b=${1:-${E4FS:-e4fs}}
  if [[ $b != */* ]]; then
    b=$(command -v "$b") || {
      echo "FAIL: e4fs binary '${1:-${E4FS:-e4fs}}' not found (pass it as \$1 or E4FS=)" >&2
      exit 1
    }
  fi
  [ -x "$b" ] || {
    echo "FAIL: $b is not an executable" >&2
    exit 1
  }
  E4FS=$(realpath "$b")
  export E4FS
}

# make_workdir PREFIX: a fresh directory, on tmpfs when it can hold user xattrs
# (the source tree needs them), else under TEST_TMPDIR / TMPDIR / /tmp.
make_workdir() {
  local prefix=$1 base d
  for base in /dev/shm "${TEST_TMPDIR:-}" "${TMPDIR:-}" /tmp; do
    [ -n "$base" ] && [ -d "$base" ] && [ -w "$base" ] || continue
    d=$(mktemp -d "$base/$prefix.XXXXXX") || continue
    if python3 -c 'import os,sys; p=os.path.join(sys.argv[1],"x"); open(p,"w").close(); os.setxattr(p,"user.t",b"1"); os.unlink(p)' "$d" 2>/dev/null; then
      echo "$d"
      return 0
    fi
    rmdir "$d"
  done
  echo "no temporary directory with user xattr support" >&2
  return 1
}

is_mounted() {
  local m
  m=$(realpath "$1")
  awk -v m="$m" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo
}

# wait_mounted DIR [SECONDS]
wait_mounted() {
  local dir=$1 limit=${2:-20} i
  for ((i = 0; i < limit * 10; i++)); do
    is_mounted "$dir" && return 0
    sleep 0.1
  done
  return 1
}

# wait_unmounted DIR [SECONDS]
wait_unmounted() {
  local dir=$1 limit=${2:-10} i
  for ((i = 0; i < limit * 10; i++)); do
    is_mounted "$dir" || return 0
    sleep 0.1
  done
  return 1
}

# mount_field DIR FIELD: fstype (e.g. fuse.e4fs) or options (e.g. ro,nosuid)
# of the mount on DIR, from /proc/mounts.
mount_field() {
  local m
  m=$(realpath "$1")
  awk -v m="$m" -v f="$2" '$2 == m { if (f == "fstype") print $3; else print $4 }' /proc/mounts | tail -1
}

# holders FILE: pids of processes that have FILE open.
holders() {
  local f p fd
  f=$(realpath "$1")
  for p in /proc/[0-9]*; do
    for fd in "$p"/fd/*; do
      if [ "$(readlink "$fd" 2>/dev/null)" = "$f" ]; then
        echo "${p#/proc/}"
        break
      fi
    done
  done 2>/dev/null
}

# wait_closed FILE [SECONDS]: until no process has FILE open (the server
# has exited after the unmount).
wait_closed() {
  local f=$1 limit=${2:-10} i
  for ((i = 0; i < limit * 10; i++)); do
    [ -z "$(holders "$f")" ] && return 0
    sleep 0.1
  done
  return 1
}

# fuse_unmount DIR: unmounts a FUSE mount (fusermount3, else umount).
fuse_unmount() {
  local dir=$1
  is_mounted "$dir" || return 0
  fusermount3 -u "$dir" 2>/dev/null || fusermount -u "$dir" 2>/dev/null || umount "$dir" 2>/dev/null
  wait_unmounted "$dir" 10 && return 0
  umount -l "$dir" 2>/dev/null
  return 1
}

# kernel_loop_ok DIR: whether the kernel can loop-mount an ext4 image here.
kernel_loop_ok() {
  local dir=$1 img=$1/loopprobe.img mnt=$1/loopprobe.mnt ok=1
  mkdir -p "$mnt"
  mke2fs -q -F -t ext4 "$img" 8M >/dev/null 2>&1 || ok=0
  if [ "$ok" = 1 ] && mount -o loop,ro "$img" "$mnt" 2>/dev/null; then
    umount "$mnt"
  else
    ok=0
  fi
  rm -rf "$img" "$mnt"
  [ "$ok" = 1 ]
}

# image_sha FILE: sha256 of FILE's bytes, computed sparse-aware (64 KiB
# blocks that are all zero are skipped), so a 1 GiB sparse image takes
# milliseconds instead of seconds; equal digests mean byte-for-byte equal.
image_sha() {
  python3 "$(runfile tests/compare_tree.py)" --digest "$1" | cut -d' ' -f1
}

# mount_workdir PREFIX WHAT: sets `work` to a fresh directory holding mnt/
# (for e4fs) and kmnt/ (for the kernel), both unmounted and the directory
# removed at exit, and `kernel` to 1 when the kernel can loop-mount images
# here (else 0, saying that WHAT is skipped).
mount_workdir() {
  work=$(make_workdir "$1") || exit 1
  # shellcheck disable=SC2064
  trap "cleanup_mount_workdir '$work'" EXIT
  mkdir -p "$work/mnt" "$work/kmnt"
  kernel=0
  kernel_loop_ok "$work" && kernel=1
  [ "$kernel" = 1 ] || echo "SKIP: loop mounts unavailable: $2 is skipped"
}

cleanup_mount_workdir() {
  local m
  for m in "$1"/mnt "$1"/kmnt; do
    if is_mounted "$m"; then fuse_unmount "$m" || umount -l "$m"; fi
  done
  rm -rf "$1"
}
