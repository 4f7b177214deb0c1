#!/usr/bin/env bash
# Memory while walking a big tree: makes an ext4 image holding FILES empty
# files (default 1,000,000, in directories of 1,000) through the kernel's
# own ext4 (a loop mount), mounts it with e4fs, walks it cold with lstat on
# every name, and prints the server's peak resident memory (VmHWM) and the
# walk's time. The issue's bound: under 200 MiB for a million files.
#
#   sudo tools/bench/walk_rss.sh [--files N] [--e4fs PATH] [--workdir DIR]
#                                [--e4fs-options OPTS] [--image PATH]
#
# --image PATH keeps the image there (made if missing), for repeated runs.
set -u -o pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "${SCRIPT_DIR}/../.." && pwd)"
files=1000000
e4fs_bin="${REPO}/bazel-bin/tools/e4fs"
e4fs_options="rw"
workdir=""
keep_image=""

die() {
  echo "walk_rss: $*" >&2
  exit 2
}

while (($#)); do
  (($# >= 2)) || die "option $1 needs a value"
  case "$1" in
    --files) files="$2" ;;
    --e4fs) e4fs_bin="$2" ;;
    --e4fs-options) e4fs_options="$2" ;;
    --workdir) workdir="$2" ;;
    --image) keep_image="$2" ;;
    *) die "unknown option: $1" ;;
  esac
  shift 2
done
[[ "${files}" =~ ^[0-9]+$ ]] && ((files > 0)) || die "not a count: ${files}"
((EUID == 0)) || die "run as root (loop mount, drop_caches)"
[[ -x "${e4fs_bin}" ]] || die "no e4fs at ${e4fs_bin} (bazel build -c opt //tools:e4fs)"
e4fs_bin="$(realpath "${e4fs_bin}")"

if [[ -z "${workdir}" ]]; then
  workdir="$(mktemp -d /var/tmp/e4fs-walk.XXXXXX)" || die "mktemp failed"
fi
mkdir -p "${workdir}/mnt" || die "cannot make ${workdir}/mnt"
workdir="$(realpath "${workdir}")"
mnt="${workdir}/mnt"
img="${keep_image:-${workdir}/walk.img}"
cleanup() {
  if mountpoint -q "${mnt}"; then umount "${mnt}" || umount -l "${mnt}"; fi
  [[ -n "${keep_image}" ]] || rm -f "${img}"
}
trap cleanup EXIT

make_image() {
  # Inode tables for every file, 256 bytes each, and room for directories.
  truncate -s "$((files / 1000 * 8 + 1024))M" "${img}" || die "truncate failed"
  mke2fs -q -F -t ext4 -N "$((files + files / 1000 + 1000))" "${img}" ||
    die "mke2fs failed"
  mount -o loop "${img}" "${mnt}" || die "loop mount failed"
  echo "walk_rss: creating ${files} files through the kernel's ext4"
  python3 - "${mnt}" "${files}" <<'EOF' || die "creating the tree failed"
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for d in range((n + 999) // 1000):
    path = os.path.join(root, "d%04d" % d)
    os.mkdir(path)
    for i in range(min(1000, n - d * 1000)):
        os.close(os.open(os.path.join(path, "f%03d" % i),
                         os.O_CREAT | os.O_WRONLY, 0o644))
EOF
  umount "${mnt}" || die "unmount failed"
}

[[ -n "${keep_image}" && -f "${img}" ]] || make_image
sync
echo 3 >/proc/sys/vm/drop_caches

"${e4fs_bin}" "${img}" "${mnt}" -o "${e4fs_options}" || die "e4fs mount failed"
# The server (not its unmount watcher, named e4fs-unmount) of this image.
pid=""
for p in $(pgrep -x e4fs); do
  tr '\0' '\n' <"/proc/${p}/cmdline" 2>/dev/null | grep -qxF "${img}" && pid=$p
done
[[ -n "${pid}" ]] || die "no e4fs process serves ${img}"
start=$(date +%s.%N)
count="$(python3 - "${mnt}" <<'EOF'
import os, sys
n = 0
for top, dirs, names in os.walk(sys.argv[1]):
    for name in names + dirs:
        os.lstat(os.path.join(top, name))
        n += 1
print(n)
EOF
)" || die "the walk failed"
end=$(date +%s.%N)
hwm="$(awk '$1 == "VmHWM:" { print $2 }' "/proc/${pid}/status")"
rss="$(awk '$1 == "VmRSS:" { print $2 }' "/proc/${pid}/status")"
umount "${mnt}"
# The server writes everything back after the unmount; the image is its
# (locked) until it exits.
while kill -0 "${pid}" 2>/dev/null; do sleep 0.1; done
gone=$(date +%s.%N)
printf 'walk_rss: %s names walked in %.1f s; e4fs peak RSS %.1f MiB, at the end %.1f MiB; exited %.1f s after the walk\n' \
  "${count}" "$(echo "${end} - ${start}" | bc)" "$(echo "${hwm} / 1024" | bc -l)" \
  "$(echo "${rss} / 1024" | bc -l)" "$(echo "${gone} - ${end}" | bc)"
((count >= files)) || die "walked ${count} names, expected at least ${files}"
