#!/usr/bin/env bash
# rw_existing_ops.sh DIR: changes to a tree that mke2fs -d wrote
# (testdata/make_tree.sh), run the same way on the kernel's ext4 and on e4fs:
# inline files and directories growing out of the inode, a 20,000-entry
# linear directory shrinking and growing, xattr blocks freed, deep trees
# removed, hard links dropped.
set -euo pipefail
cd "$1"

# Files of every size grow (1 and 0 bytes are inline with inline_data).
for f in sizes/0 sizes/1 sizes/4095 sizes/4096 sizes/4097; do
  printf 'appended to %s\n' "$f" >> "$f"
done
printf 'overwritten' | dd of=sizes/random_300k bs=1 seek=5000 conv=notrunc status=none
truncate -s 100 sizes/1048583
truncate -s 3000000 sparse/holes_past_4g
# Small (inline) directories grow out of the inode.
for i in $(seq 1 40); do echo "$i" > "empty_dir/new-file-$i"; done
mkdir empty_dir/sub
mv hardlinks/a empty_dir/sub/moved-link
# The big directory: remove a third, rename some, add new names.
python3 - <<'PY'
import os
for i in range(0, 20000, 3):
    os.unlink("bigdir/%d" % i)
for i in range(1, 3000, 3):
    os.rename("bigdir/%d" % i, "bigdir/renamed-%d" % i)
for i in range(500):
    open("bigdir/added-%d" % i, "w").write("x" * (i % 7))
PY
# Deep nesting removed; xattrs changed and removed.
rm -rf deep/d01/d02
setfattr -x user.large xattrs/both
setfattr -n user.added -v new xattrs/small
setfattr -x user.large xattrs/large
chmod 0600 modes/setuid
chown 4321:8765 owners/nobody
rm symlinks/long special/fifo
ln -s new-target symlinks/replaced-fast
mv names/é names/renamed-é
find . -path ./lost+found -prune -o -depth -print0 | xargs -0 touch -h -d @1200000000
