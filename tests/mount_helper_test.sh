#!/usr/bin/env bash
# mount_helper_test.sh [E4FS]
#
# `mount -t fuse.e4fs IMG MNT -o ro` and an /etc/fstab line must work.
#
# How mount(8) finds the server: mount runs /sbin/mount.fuse (mount.fuse3)
# with an environment that holds no PATH (util-linux 2.38 drops it);
# mount.fuse3 runs `/bin/sh -c "'e4fs' 'IMG' 'MNT' '-o' 'ro,dev,suid'"`, and
# the shell, having no PATH, searches its built-in default
# (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin for dash).
# A directory put on the caller's PATH is therefore never searched. This test
# places a symlink to the binary under test in the first directory of that
# default path (normally /usr/local/sbin), so it wins over any installed
# copy, and afterwards removes it (or restores what was there).
#
# The binary: $1, else $E4FS, else `e4fs` on the PATH. SUBTYPE (default e4fs)
# is the name after "fuse."; SUBTYPE=fuse2fs E4FS=/usr/bin/fuse2fs checks the
# test itself against fuse2fs.
set -uo pipefail

source "$(dirname "$0")/testlib.sh"
require_root_fuse
resolve_e4fs "${1:-}"
subtype=${SUBTYPE:-e4fs}
[ -x /sbin/mount.fuse3 ] || [ -x /sbin/mount.fuse ] || [ -x /usr/sbin/mount.fuse3 ] ||
  skip "mount.fuse3 is not installed (package fuse3)"

# The directory the helper's shell searches first.
shell_path=$(env -i /bin/sh -c 'echo "$PATH"')
link_dir=${shell_path%%:*}
[ -d "$link_dir" ] || mkdir -p "$link_dir" || skip "cannot create $link_dir"
link=$link_dir/$subtype
saved=""
placed=0

work=$(make_workdir e4fs-helper) || exit 1
mnt=$work/mnt
cleanup() {
  is_mounted "$mnt" && { umount "$mnt" 2>/dev/null || umount -l "$mnt"; }
  if [ "$placed" = 1 ]; then rm -f "$link"; fi
  if [ -n "$saved" ]; then mv -f "$saved" "$link"; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -e "$link" ] || [ -L "$link" ]; then
  if [ "$(realpath "$link" 2>/dev/null)" != "$E4FS" ]; then
    saved=$link_dir/.$subtype.saved-by-mount-helper-test.$$
    mv "$link" "$saved" || { echo "FAIL: cannot move $link aside"; exit 1; }
    echo "note: $link moved aside for the test; it is restored afterwards"
  fi
fi
if [ ! -e "$link" ]; then
  ln -s "$E4FS" "$link" || { echo "FAIL: cannot create $link"; exit 1; }
  placed=1
fi
echo "binary under test: $E4FS (as $link, subtype fuse.$subtype)"

mkdir -p "$work/src" "$mnt"
printf 'mounted through mount.fuse3\n' >"$work/src/hello.txt"
img=$work/helper.img
mke2fs -q -F -t ext4 -d "$work/src" "$img" 16M >/dev/null || { echo "FAIL: mke2fs"; exit 1; }
sha=$(image_sha "$img")

failed=0
check() { # NAME CONDITION-COMMAND...
  local name=$1
  shift
  if "$@"; then
    echo "PASS $name"
  else
    echo "FAIL $name"
    failed=$((failed + 1))
  fi
}

# mounted_ok HOW: the mount is up, typed fuse.SUBTYPE, read-only, served by
# the binary under test, readable; then unmounts it with umount(8).
mounted_ok() {
  local how=$1 type opts pid exe ok=1
  if ! wait_mounted "$mnt" 20; then
    echo "  $how: not mounted"
    return 1
  fi
  type=$(mount_field "$mnt" fstype)
  opts=$(mount_field "$mnt" options)
  echo "  $how: /proc/mounts: type $type, options $opts"
  [ "$type" = "fuse.$subtype" ] || { echo "  $how: type is '$type', want fuse.$subtype"; ok=0; }
  [[ ",$opts," == *,ro,* ]] || { echo "  $how: options '$opts' lack ro"; ok=0; }
  pid=$(holders "$img" | head -1)
  exe=$(realpath "/proc/$pid/exe" 2>/dev/null)
  [ -n "$pid" ] && [ "$exe" = "$E4FS" ] ||
    { echo "  $how: the image is served by pid '${pid:-none}' running '${exe:-?}', not $E4FS"; ok=0; }
  if [ "$(cat "$mnt/hello.txt" 2>&1)" != "mounted through mount.fuse3" ]; then
    echo "  $how: hello.txt reads back wrong: $(cat "$mnt/hello.txt" 2>&1 | head -1)"
    ok=0
  fi
  if ! umount "$mnt"; then
    echo "  $how: umount failed"
    ok=0
  fi
  if is_mounted "$mnt"; then
    echo "  $how: still mounted after umount"
    ok=0
  fi
  if ! wait_closed "$img" 10; then
    echo "  $how: the server still holds the image 10 s after umount"
    ok=0
  fi
  [ "$ok" = 1 ]
}

try_mount() { # HOW COMMAND...
  local how=$1 out
  shift
  if ! out=$(timeout 30 "$@" 2>&1); then
    echo "  $how: '$*' failed: $out"
    return 1
  fi
  mounted_ok "$how"
}

check "mount -t fuse.$subtype IMG MNT -o ro" \
  try_mount "mount -t" mount -t "fuse.$subtype" "$img" "$mnt" -o ro

fstab=$work/fstab
echo "$img $mnt fuse.$subtype ro,noauto 0 0" >"$fstab"
check "mount --fstab (line: IMG MNT fuse.$subtype ro,noauto 0 0)" \
  try_mount "fstab" mount --fstab "$fstab" "$mnt"

check "image unchanged by the read-only mounts" test "$(image_sha "$img")" = "$sha"

if [ "$failed" -eq 0 ]; then
  echo "mount_helper_test: PASS"
else
  echo "mount_helper_test: $failed check(s) FAILED"
fi
[ "$failed" -eq 0 ]
