#!/usr/bin/env bash
# Set-up and main job in one: installs what is missing, builds e4fs, installs
# it on the PATH (so `mount -t fuse.e4fs` finds it) and mounts an image.
#
#   ./run.sh                          mount a demo image made from testdata/
#   ./run.sh IMAGE MOUNTPOINT [-o OPTIONS] [-f]
set -euo pipefail
cd "$(dirname "$0")"

scripts/install-deps.sh
bazel build -c opt //tools:e4fs
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo install -m 0755 bazel-bin/tools/e4fs /usr/local/bin/e4fs
# mount(8) -> mount.fuse3 looks the subtype up on the PATH of a root shell.
[ -e /usr/sbin/e4fs ] || $sudo ln -sf /usr/local/bin/e4fs /usr/sbin/e4fs

if [ $# -eq 0 ]; then
  demo=${E4FS_DEMO_DIR:-/tmp/e4fs-demo}
  mkdir -p "$demo/mnt"
  if mountpoint -q "$demo/mnt"; then fusermount3 -u "$demo/mnt" || umount "$demo/mnt"; fi
  rm -rf "$demo/src"
  testdata/make_tree.sh "$demo/src" >/dev/null
  mke2fs -q -F -t ext4 -d "$demo/src" "$demo/demo.img" 1G >/dev/null
  e4fs "$demo/demo.img" "$demo/mnt" -o ro
  echo "mounted $demo/demo.img read-only on $demo/mnt; unmount with: fusermount3 -u $demo/mnt"
  ls "$demo/mnt"
else
  e4fs "$@"
fi
