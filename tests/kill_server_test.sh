#!/usr/bin/env bash
# kill_server_test.sh [E4FS]
#
# kill -9 of the e4fs server in the middle of a write workload, then a fresh
# mount: the journal is replayed, every file whose fsync returned is there
# with its bytes, and e2fsck -fn finds the image clean.
set -uo pipefail

source "$(dirname "$0")/testlib.sh"
require_root_fuse
resolve_e4fs "${1:-}"

work=$(make_workdir e4fs-kill) || exit 1
cleanup() {
  if is_mounted "$work/mnt"; then fuse_unmount "$work/mnt" || umount -l "$work/mnt"; fi
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/mnt"
img=$work/fs.img
failed=0

for round in 1 2 3; do
  mke2fs -q -F -t ext4 "$img" 256M >/dev/null 2>&1 || { echo "FAIL: mke2fs"; exit 1; }
  # In the foreground (backgrounded here) so that its pid and messages are
  # at hand.
  "$E4FS" "$img" "$work/mnt" -f -o rw,commit=1 2>"$work/server1.$round.log" &
  server=$!
  wait_mounted "$work/mnt" || { echo "FAIL: mount"; cat "$work/server1.$round.log"; exit 1; }
  # The writer logs a file's name only after its fsync returned.
  python3 - "$work/mnt" "$work/synced.$round" <<'PY' &
import os, sys
mnt, log = sys.argv[1], sys.argv[2]
# The mount's device: once the killed server's watcher has unmounted it,
# names under mnt are the bare directory beneath, which would take writes
# without end (and fill a tmpfs work directory).
mount_dev = os.stat(mnt).st_dev
with open(log, "w") as out:
    i = 0
    try:
        while os.stat(mnt).st_dev == mount_dev:
            d = os.path.join(mnt, "d%d" % (i % 7))
            os.makedirs(d, exist_ok=True)
            path = os.path.join(d, "f%d" % i)
            data = (("%d:" % i) * 3000).encode()[: 1000 + (i * 7919) % 60000]
            with open(path, "wb") as f:
                f.write(data)
                if i % 3 == 0:
                    f.flush()
                    os.fsync(f.fileno())
                    out.write("%s %d\n" % (path[len(mnt) + 1:], i))
                    out.flush()
            if i % 5 == 0:
                os.rename(path, path + ".r")  # unsynced churn
            i += 1
    except OSError:
        pass
PY
  writer=$!
  sleep $((round))
  kill -9 "$server"
  wait "$writer" 2>/dev/null
  umount -l "$work/mnt" 2>/dev/null || fusermount3 -uz "$work/mnt" 2>/dev/null
  wait_closed "$img" 20 || { echo "FAIL: the image is still open"; exit 1; }
  synced=$(wc -l <"$work/synced.$round")
  [ "$synced" -gt 0 ] || { echo "FAIL: round $round: no fsync returned before the kill"; failed=1; continue; }

  "$E4FS" "$img" "$work/mnt" -f -o rw 2>"$work/server2.$round.log" &
  second=$!
  wait_mounted "$work/mnt" ||
    { echo "FAIL: round $round: remount after the kill failed"; cat "$work/server2.$round.log"; failed=1; continue; }
  lost=$(python3 - "$work/mnt" "$work/synced.$round" <<'PY'
import os, sys
mnt, log = sys.argv[1], sys.argv[2]
lost = 0
for line in open(log):
    rel, i = line.split()
    i = int(i)
    want = (("%d:" % i) * 3000).encode()[: 1000 + (i * 7919) % 60000]
    path = os.path.join(mnt, rel)
    if not os.path.exists(path):
        path += ".r"  # renamed after its fsync, maybe committed
    try:
        got = open(path, "rb").read()
    except OSError:
        got = None
    if got != want:
        lost += 1
        print("lost:", rel, file=sys.stderr)
print(lost)
PY
)
  fuse_unmount "$work/mnt"
  wait "$second"
  out=$(e2fsck -fn "$img" 2>&1)
  rc=$?
  if [ "$lost" != 0 ] || [ $rc != 0 ]; then
    echo "FAIL: round $round: $lost of $synced fsync'ed files lost; e2fsck: $rc $(echo "$out" | head -20)"
    echo "--- the killed server said:"; tail -20 "$work/server1.$round.log"
    echo "--- the next one said:"; tail -20 "$work/server2.$round.log"
    failed=1
  else
    echo "PASS: round $round: killed after $synced fsyncs; all there, e2fsck clean"
  fi
done
exit $failed
