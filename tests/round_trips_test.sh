#!/usr/bin/env bash
# round_trips_test.sh [E4FS]
#
# The fast paths, counted in requests. The server runs with -d (libfuse
# logs every request it receives), a workload walks each path, and the
# kernel must have sent no more requests than the path allows: cached
# attributes, names, absent names and symlinks; no FLUSH, OPENDIR or
# RELEASEDIR round trips; no SETATTR at the close of a new file; 1008 KiB
# reads through the widened readahead window, spliced from the image;
# cached pages on a second open. A broken fast path shows here as a count, long before a benchmark
# would notice it.
set -uo pipefail

source "$(dirname "$0")/testlib.sh"
require_root_fuse
resolve_e4fs "${1:-}"

work=$(make_workdir e4fs-trips) || exit 1
mnt=$work/mnt
img=$work/fs.img
log=$work/server.log
cleanup() {
  if is_mounted "$mnt"; then fuse_unmount "$mnt" || umount -l "$mnt"; fi
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$mnt"
failures=0

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

start_server() {
  "$E4FS" "$img" "$mnt" -d -o rw >"$log" 2>&1 &
  server=$!
  wait_mounted "$mnt" || {
    cat "$log"
    echo "FAIL: mount"
    exit 1
  }
}

stop_server() {
  fuse_unmount "$mnt" || fail "unmount"
  wait "$server" || fail "the server exited with $?"
}

mark() { marked=$(wc -l <"$log"); }

# since OPCODE: requests of that kind since the last mark.
since() {
  tail -n "+$((marked + 1))" "$log" | grep -c "opcode: $1 "
}

# at_most OPCODE LIMIT WHAT
at_most() {
  local n
  n=$(since "$1")
  [ "$n" -le "$2" ] || fail "$3: $n $1 requests, expected at most $2"
}

mke2fs -q -F -t ext4 "$img" 64M
start_server

# New files: create, write, close. The engine stamps times with the
# kernel's clock, so the first write finds them current and the close sends
# no SETATTR (one may slip through where a clock tick falls in between);
# FLUSH is refused once, for good.
mark
python3 - "$mnt" <<'EOF' || fail "creating files"
import os, sys
d = os.path.join(sys.argv[1], "d")
os.mkdir(d)
for i in range(200):
    with open(os.path.join(d, "f%d" % i), "wb") as f:
        f.write(b"x" * 100)
EOF
[ "$(since CREATE)" = 200 ] || fail "200 creates sent $(since CREATE) CREATE requests"
at_most SETATTR 20 "closing 200 new files"
at_most FLUSH 1 "closing 200 files"

# Cached attributes, names and absent names.
mark
python3 - "$mnt" <<'EOF' || fail "stat loop"
import os, sys
d = os.path.join(sys.argv[1], "d")
for _ in range(50):
    os.stat(os.path.join(d, "f7"))
    try:
        os.stat(os.path.join(d, "absent"))
    except FileNotFoundError:
        pass
    else:
        raise SystemExit("absent exists")
EOF
at_most GETATTR 1 "50 stats of one file"
at_most LOOKUP 2 "50 stats of a file and 50 of an absent name"

# Directories: no OPENDIR/RELEASEDIR round trips on a read-write mount.
mark
python3 - "$mnt" <<'EOF' || fail "listing"
import os, sys
d = os.path.join(sys.argv[1], "d")
for i in range(10):
    os.mkdir(os.path.join(d, "sub%d" % i))
for _ in range(5):
    assert len(os.listdir(d)) == 210
    for i in range(10):
        assert os.listdir(os.path.join(d, "sub%d" % i)) == []
EOF
at_most OPENDIR 1 "60 directory listings"
at_most RELEASEDIR 0 "60 directory listings"

# Symlinks are cached.
mark
ln -s d/f7 "$mnt/link"
for _ in $(seq 20); do readlink "$mnt/link" >/dev/null; done
at_most READLINK 1 "20 readlinks"

# A sequential reader gets up to 1008 KiB per READ (max_read) with the
# readahead window widened to match, and a second open reads from the kept
# page cache.
python3 - "$mnt" <<'EOF' || fail "writing the big file"
import os, sys
with open(os.path.join(sys.argv[1], "big"), "wb") as f:
    f.write(os.urandom(8 << 20))
    os.fsync(f.fileno())
EOF
stop_server
sync
echo 3 >/proc/sys/vm/drop_caches
start_server
mark
cat "$mnt/big" >/dev/null || fail "reading the big file"
# The kernel's readahead starts small (256 KiB, 512 KiB) and then asks for
# whole windows: about a dozen requests (the kernel's own 128 KiB window
# would take 64).
at_most READ 12 "a cold sequential read of 8 MiB"
# The replies came from the image by splice, not copied through the server.
spliced=$(tail -n "+$((marked + 1))" "$log" | grep -c "success, outsize: [0-9]* (splice)")
[ "$spliced" -ge 8 ] || fail "only $spliced of the big file's READ replies were spliced"
# Then one request (1008 KiB, max_read) ahead of the reader: one request in
# flight while it copies.
ra=$(cat "/sys/class/bdi/$(mountpoint -d "$mnt")/read_ahead_kb")
[ "$ra" = 1008 ] || fail "the mount's readahead window is $ra KiB, not 1008"
mark
cat "$mnt/big" >/dev/null || fail "reading the big file again"
at_most READ 0 "reading the big file a second time"
stop_server

out=$(e2fsck -fn "$img" 2>&1) || fail "e2fsck -fn: $out"
grep -q "sandbox refused" "$log" && fail "the sandbox refused calls"
if [ "$failures" -gt 0 ]; then
  echo "--- server log (last 40 lines)"
  tail -n 40 "$log"
  exit 1
fi
echo PASS
