#!/usr/bin/env bash
# Makes the small seed images the image fuzzer starts from: one per layout the
# engine reads (ext2 indirect maps, ext4 extents with htree, inline data,
# 1 KiB blocks, 128-byte inodes). Usage: make_seed_images.sh OUT_DIR
set -euo pipefail
out=$1
mkdir -p "$out"
export PATH="$PATH:/usr/sbin:/sbin"
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
mkdir -p "$src/dir/sub" "$src/big"
printf 'hello\n' > "$src/small"
head -c 20000 /dev/zero | tr '\0' 'x' > "$src/dir/file"
ln -s small "$src/link"
ln -s "$(printf 'long/%.0s' {1..20})target" "$src/dir/longlink"
ln "$src/small" "$src/dir/hardlink"
for i in $(seq 1 120); do : > "$src/big/entry-$i"; done
setfattr -n user.a -v value "$src/small" 2>/dev/null || true

make() {  # name, size, mke2fs arguments...
  local name=$1 size=$2
  shift 2
  mke2fs -q -F -N 256 -d "$src" "$@" "$out/$name" "$size" >/dev/null 2>&1
}
make ext2.img 512K -t ext2 -b 1024
make ext3.img 4M -t ext3 -b 1024 -J size=1
make ext4.img 512K -t ext4 -b 1024 -O ^has_journal
make inline.img 512K -t ext4 -b 1024 -O ^has_journal,inline_data
make small_inodes.img 512K -t ext4 -b 1024 -I 128 -O ^has_journal,^metadata_csum,^64bit
