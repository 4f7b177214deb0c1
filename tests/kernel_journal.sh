#!/usr/bin/env bash
# kernel_journal.sh IMAGE WORKDIR
#
# Leaves IMAGE (an ext3/ext4 image) with a journal to replay, written by the
# kernel itself: it is loop-mounted, changed (files, directories, renames,
# deletes, xattrs, an unlinked file held open so it sits on the orphan
# list), and then shut down with EXT4_IOC_SHUTDOWN(LOGFLUSH): the journal
# is committed but nothing is checkpointed, as after a power cut. Used by
# tests/journal_replay_test.sh and to make the images in testdata/journal/.
set -eu
img=$1
work=$2
mnt=$work/kj.mnt
mkdir -p "$mnt"
mount -o loop "$img" "$mnt"
trap 'umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true' EXIT
mkdir -p "$mnt/base"
for i in $(seq 1 40); do
  yes "base file $i" | head -c $((i * 997)) >"$mnt/base/f$i"
done
sync
# Everything below lives only in the journal when the filesystem stops.
mkdir -p "$mnt/new/deep/er"
for i in $(seq 1 60); do
  printf 'file %s\n' "$i" >"$mnt/new/n$i"
done
yes "a bigger file" | head -c 300000 >"$mnt/new/deep/er/big"
ln -s ../base/f1 "$mnt/new/link"
ln "$mnt/base/f2" "$mnt/new/hard"
mv "$mnt/base/f3" "$mnt/new/moved"
rm -f "$mnt/base/f4" "$mnt/base/f5"
mkdir "$mnt/new/gone" && rmdir "$mnt/new/gone"
setfattr -n user.color -v blue "$mnt/new/n1" 2>/dev/null || true
truncate -s 100 "$mnt/base/f40"
# An open, unlinked file: on the orphan list at the shutdown.
python3 - "$mnt" <<'PY'
import fcntl, os, struct, sys, time
mnt = sys.argv[1]
path = os.path.join(mnt, "new", "orphan")
fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
os.write(fd, b"x" * 200000)
os.unlink(path)
# Commit the journal and stop the filesystem without checkpointing.
root = os.open(mnt, os.O_RDONLY)
EXT4_IOC_SHUTDOWN = 0x8004587D
EXT4_GOING_FLAGS_LOGFLUSH = 1
fcntl.ioctl(root, EXT4_IOC_SHUTDOWN, struct.pack("I", EXT4_GOING_FLAGS_LOGFLUSH))
os.close(root)
os.close(fd)
PY
umount "$mnt"
trap - EXIT
rmdir "$mnt"
dumpe2fs -h "$img" 2>/dev/null | grep -q needs_recovery || {
  echo "kernel_journal.sh: $img was left without a journal to replay" >&2
  exit 1
}
