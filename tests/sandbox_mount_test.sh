#!/usr/bin/env bash
# sandbox_mount_test.sh [E4FS]
#
# The server's sandbox seen from outside, on a running mount:
#   - started as root: /proc/PID/status shows Uid not 0 (nobody, or the
#     -o sandbox_user), every capability set empty, NoNewPrivs 1, Seccomp 2;
#     /proc/PID/root shows none of the host's files; the only descriptors
#     are 0-2, the image, /dev/fuse and the unmount watcher's pipe;
#   - a workload of every kind of change (files, fsync, xattrs, links,
#     renames, truncation, removal) works, and the server reports no refused
#     system call;
#   - SIGTERM: the server exits 0, the mount goes away, the image is marked
#     clean and e2fsck -fn finds nothing; an external umount the same;
#     kill -9: the mount goes away all the same;
#   - a bad -o sandbox_user is refused before anything is mounted;
#     -o nosandbox serves unconfined;
#   - started by an ordinary user (through fusermount3): the same confinement
#     without the user switch. fusermount3 opens /dev/fuse as that user, so
#     this part needs /dev/fuse open to all users; where it is not it is
#     skipped with a message (SANDBOX_TEST_OPEN_FUSE=1 makes it mode 0666
#     for the test's duration and restores it).
set -uo pipefail

source "$(dirname "$0")/testlib.sh"
require_root_fuse
resolve_e4fs "${1:-}"
id nobody >/dev/null 2>&1 || skip "there is no user 'nobody'"

# Under /tmp, readable by every user: the unprivileged part runs as nobody.
work=$(mktemp -d /tmp/e4fs-sandbox.XXXXXX) || exit 1
chmod 755 "$work"
fuse_mode=$(stat -c %a /dev/fuse)
cleanup() {
  local m
  for m in "$work"/mnt*; do
    if is_mounted "$m"; then fuse_unmount "$m" || umount -l "$m"; fi
  done
  [ "$(stat -c %a /dev/fuse)" = "$fuse_mode" ] || chmod "$fuse_mode" /dev/fuse
  rm -rf "$work"
}
trap cleanup EXIT
failed=0
fail() {
  echo "FAIL: $*"
  failed=1
}

# field PID NAME: a field of /proc/PID/status, tabs turned into spaces.
field() {
  awk -v f="$2:" '$1 == f { $1 = ""; sub(/^ /, ""); print }' "/proc/$1/status"
}

# check_confined PID UID LABEL: the status and the view of a sandboxed server.
check_confined() {
  local pid=$1 uid=$2 label=$3 set fd target
  [ "$(field "$pid" Uid)" = "$uid $uid $uid $uid" ] ||
    fail "$label: Uid is '$(field "$pid" Uid)', want $uid everywhere"
  [ "$(field "$pid" Gid | cut -d' ' -f1)" != 0 ] || [ "$uid" = 0 ] ||
    fail "$label: Gid is '$(field "$pid" Gid)'"
  for set in CapInh CapPrm CapEff CapBnd CapAmb; do
    [ "$(field "$pid" $set)" = 0000000000000000 ] ||
      fail "$label: $set is $(field "$pid" $set)"
  done
  [ "$(field "$pid" NoNewPrivs)" = 1 ] || fail "$label: NoNewPrivs is not 1"
  [ "$(field "$pid" Seccomp)" = 2 ] || fail "$label: Seccomp is not 2"
  [ -z "$(ls -A "/proc/$pid/root/" 2>&1)" ] ||
    fail "$label: the server's root shows: $(ls -A "/proc/$pid/root/" 2>&1 | head -5 | tr '\n' ' ')"
  for fd in /proc/"$pid"/fd/*; do
    target=$(readlink "$fd")
    case "${fd##*/}:$target" in
      [012]:*) ;;
      *:"$img" | *:/dev/fuse | *:pipe:*) ;;
      # Its own mount's readahead setting, until the first open.
      *:"/sys/devices/virtual/bdi/$(mountpoint -d "$mnt")/read_ahead_kb") ;;
      *) fail "$label: the server holds fd ${fd##*/} -> $target" ;;
    esac
  done
}

# workload DIR: every kind of change, and a check of what it wrote.
workload() {
  python3 - "$1" <<'EOF'
import os, sys
d = sys.argv[1]
os.mkdir(os.path.join(d, "dir"))
data = os.urandom(3 * 1024 * 1024 + 123)
p = os.path.join(d, "dir", "data")
with open(p, "wb") as f:
    f.write(data)
    f.flush()
    os.fsync(f.fileno())
os.setxattr(p, "user.note", b"sandboxed")
os.link(p, os.path.join(d, "hardlink"))
os.symlink("dir/data", os.path.join(d, "symlink"))
os.rename(os.path.join(d, "hardlink"), os.path.join(d, "renamed"))
with open(os.path.join(d, "short"), "wb") as f:
    f.write(b"x" * 100000)
os.truncate(os.path.join(d, "short"), 4096)
os.mkdir(os.path.join(d, "gone"))
open(os.path.join(d, "gone", "f"), "w").close()
os.unlink(os.path.join(d, "gone", "f"))
os.rmdir(os.path.join(d, "gone"))
fd = os.open(d, os.O_RDONLY)
os.fsync(fd)
os.close(fd)
assert open(os.path.join(d, "renamed"), "rb").read() == data
assert os.getxattr(p, "user.note") == b"sandboxed"
assert os.readlink(os.path.join(d, "symlink")) == "dir/data"
assert os.path.getsize(os.path.join(d, "short")) == 4096
assert sorted(os.listdir(d)) == ["dir", "lost+found", "renamed", "short", "symlink"]
EOF
}

# readahead_kb MNT: the kernel's readahead window of the mount on MNT.
readahead_kb() {
  cat "/sys/class/bdi/$(mountpoint -d "$1")/read_ahead_kb"
}

# check_image IMG LABEL: clean state and e2fsck -fn clean.
check_image() {
  local out
  dumpe2fs -h "$1" 2>/dev/null | grep -q '^Filesystem state: *clean$' ||
    fail "$2: the image is not marked clean: $(dumpe2fs -h "$1" 2>/dev/null | grep '^Filesystem state')"
  out=$(e2fsck -fn "$1" 2>&1) || fail "$2: e2fsck -fn: $out"
}

# wait_exit PID SECONDS: until the process is gone.
wait_exit() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

img=$work/fs.img
mnt=$work/mnt
mkdir -p "$mnt"
nobody_uid=$(id -u nobody)

# --- As root, the default sandbox; stopped by SIGTERM.
mke2fs -q -F -t ext4 "$img" 64M
"$E4FS" "$img" "$mnt" -f -o rw 2>"$work/server.log" &
server=$!
if ! wait_mounted "$mnt"; then
  cat "$work/server.log"
  echo "FAIL: mount"
  exit 1
fi
check_confined "$server" "$nobody_uid" "root, default"
workload "$mnt" || fail "root, default: the workload failed"
# The server opened the mount's readahead setting before the sandbox and
# widened it at the first open (readahead_kb, 1008 by default: one READ).
ra=$(readahead_kb "$mnt")
[ "$ra" = 1008 ] || fail "root, default: read_ahead_kb of the mount is '$ra', not 1008"
kill -TERM "$server"
wait "$server"
rc=$?
[ "$rc" = 0 ] || fail "root, default: the server exited with $rc after SIGTERM"
wait_unmounted "$mnt" 10 || fail "root, default: still mounted 10 s after SIGTERM"
if grep -q "sandbox refused" "$work/server.log"; then
  fail "root, default: the sandbox refused calls: $(grep "sandbox refused" "$work/server.log" | sort | uniq -c | tr '\n' ' ')"
fi
check_image "$img" "root, default"

# The kernel reads back what the sandboxed server wrote.
if kernel_loop_ok "$work"; then
  kmnt=$work/kmnt
  mkdir -p "$kmnt"
  if mount -o loop,ro "$img" "$kmnt"; then
    [ "$(getfattr --only-values -n user.note "$kmnt/dir/data" 2>/dev/null)" = sandboxed ] ||
      fail "kernel: the xattr is not there"
    cmp -s "$kmnt/dir/data" "$kmnt/renamed" || fail "kernel: the hard link differs"
    [ "$(stat -c %h "$kmnt/renamed")" = 2 ] || fail "kernel: link count"
    umount "$kmnt"
  else
    fail "kernel: the image does not mount"
  fi
fi

# --- Another user; stopped by an external umount.
if id daemon >/dev/null 2>&1; then
  "$E4FS" "$img" "$mnt" -f -o rw,sandbox_user=daemon 2>"$work/server.log" &
  server=$!
  if wait_mounted "$mnt"; then
    check_confined "$server" "$(id -u daemon)" "sandbox_user=daemon"
    echo data >"$mnt/by-daemon" || fail "sandbox_user=daemon: write"
    umount "$mnt" || fail "sandbox_user=daemon: umount"
    wait_exit "$server" 10 || fail "sandbox_user=daemon: the server runs on after umount"
    wait "$server" || fail "sandbox_user=daemon: exit status $? after umount"
    check_image "$img" "sandbox_user=daemon"
  else
    fail "sandbox_user=daemon: mount: $(cat "$work/server.log")"
  fi
fi

# --- kill -9: the watcher unmounts all the same.
"$E4FS" "$img" "$mnt" -f -o rw 2>"$work/server.log" &
server=$!
if wait_mounted "$mnt"; then
  echo more >"$mnt/before-kill"
  kill -KILL "$server"
  wait "$server" 2>/dev/null
  wait_unmounted "$mnt" 10 || fail "kill -9: still mounted 10 s later"
  # The next mount recovers whatever the journal holds.
  "$E4FS" "$img" "$mnt" -f -o rw 2>"$work/server.log" &
  server=$!
  if wait_mounted "$mnt"; then
    ls "$mnt" >/dev/null || fail "kill -9: the next mount cannot list"
    umount "$mnt"
    wait "$server" || fail "kill -9: the next server exited with $?"
    check_image "$img" "after kill -9"
  else
    fail "kill -9: the next mount failed: $(cat "$work/server.log")"
  fi
else
  fail "kill -9: mount: $(cat "$work/server.log")"
fi

# --- Unmounted by the user, and mounted again from the same path before
# the old server has exited: the old server's watcher must leave the new
# mount alone (same mount point, same source). The old server is stopped
# across the umount and the new mount so that it exits only afterwards.
"$E4FS" "$img" "$mnt" -f -o rw 2>"$work/server.log" &
server=$!
if wait_mounted "$mnt" && ls "$mnt" >/dev/null; then  # INIT answered
  kill -STOP "$server"
  # -c: no stat of the path, which would wait for the stopped server.
  umount -c "$mnt" || fail "remount: umount"
  mv "$img" "$work/old.img"
  mke2fs -q -F -t ext4 "$img" 64M
  "$E4FS" "$img" "$mnt" -f -o rw 2>"$work/server2.log" &
  server2=$!
  if wait_mounted "$mnt"; then
    echo new >"$mnt/on-the-new-mount" || fail "remount: write on the new mount"
    kill -CONT "$server"
    wait "$server" || fail "remount: the old server exited with $?"
    sleep 1  # the old watcher's turn
    is_mounted "$mnt" || fail "remount: the old server's watcher unmounted the new mount"
    [ "$(cat "$mnt/on-the-new-mount" 2>&1)" = new ] ||
      fail "remount: the new mount lost its file"
    umount "$mnt"
    wait "$server2" || fail "remount: the new server exited with $?"
    check_image "$img" "remount: the new image"
  else
    kill -CONT "$server"
    fail "remount: mount: $(cat "$work/server2.log")"
  fi
  check_image "$work/old.img" "remount: the old image"
  mv "$work/old.img" "$img"
else
  fail "remount: mount: $(cat "$work/server.log")"
fi

# --- A user that does not exist: refused, nothing mounted.
"$E4FS" "$img" "$mnt" -f -o rw,sandbox_user=no-such-user-e4fs >"$work/out.log" 2>&1
rc=$?
[ "$rc" != 0 ] || fail "sandbox_user=no-such-user-e4fs was accepted"
grep -q "no-such-user-e4fs" "$work/out.log" ||
  fail "no message names the unknown user: $(cat "$work/out.log")"
is_mounted "$mnt" && fail "mounted with an unknown sandbox user"

# --- nosandbox: unconfined, unmounts itself.
"$E4FS" "$img" "$mnt" -f -o rw,nosandbox,readahead_kb=0 2>"$work/server.log" &
server=$!
if wait_mounted "$mnt"; then
  [ "$(field "$server" Seccomp)" = 0 ] || fail "nosandbox: Seccomp is $(field "$server" Seccomp)"
  [ "$(field "$server" Uid | cut -d' ' -f1)" = 0 ] || fail "nosandbox: the user was switched"
  default_ra=$(readahead_kb "$mnt")
  cat "$mnt/dir/data" >/dev/null || fail "nosandbox: read"
  ra=$(readahead_kb "$mnt")
  [ "$ra" = "$default_ra" ] || fail "nosandbox: readahead_kb=0 changed read_ahead_kb from $default_ra to $ra"
  kill -TERM "$server"
  wait "$server" || fail "nosandbox: exit status $?"
  wait_unmounted "$mnt" 10 || fail "nosandbox: still mounted after SIGTERM"
  check_image "$img" "nosandbox"
else
  fail "nosandbox: mount: $(cat "$work/server.log")"
fi

# --- An ordinary user, through fusermount3.
if [ "${SANDBOX_TEST_OPEN_FUSE:-0}" = 1 ]; then
  chmod 0666 /dev/fuse
fi
if [ "$(($(stat -c %a /dev/fuse) % 10))" -lt 6 ]; then
  echo "SKIP (unprivileged mount): /dev/fuse is mode $(stat -c %a /dev/fuse)," \
    "and fusermount3 opens it as the calling user; run with" \
    "SANDBOX_TEST_OPEN_FUSE=1 to open it to all users for the test"
elif ! command -v setpriv >/dev/null 2>&1; then
  echo "SKIP (unprivileged mount): setpriv is not installed"
else
  as_nobody=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups)
  cp "$E4FS" "$work/e4fs"
  chmod 755 "$work/e4fs"
  umnt=$work/mnt-user
  mkdir -p "$umnt"
  mke2fs -q -F -t ext4 "$img" 64M
  chown nobody "$img" "$umnt"
  "${as_nobody[@]}" "$work/e4fs" "$img" "$umnt" -f -o rw 2>"$work/user.log" &
  server=$!
  if wait_mounted "$umnt"; then
    # setpriv execs the server in place: $! is the server.
    check_confined "$server" "$nobody_uid" "unprivileged"
    "${as_nobody[@]}" sh -c 'printf "user data" >"$1/f"' sh "$umnt" ||
      fail "unprivileged: write"
    [ "$("${as_nobody[@]}" cat "$umnt/f")" = "user data" ] || fail "unprivileged: read back"
    kill -TERM "$server"
    wait "$server" || fail "unprivileged: exit status $? after SIGTERM"
    wait_unmounted "$umnt" 10 || fail "unprivileged: still mounted 10 s after SIGTERM"
    grep -q "sandbox refused" "$work/user.log" &&
      fail "unprivileged: refused calls: $(grep "sandbox refused" "$work/user.log" | head -3)"
    check_image "$img" "unprivileged"
  else
    fail "unprivileged: mount: $(cat "$work/user.log")"
  fi
fi

if [ "$failed" = 0 ]; then
  echo "PASS"
fi
exit "$failed"
