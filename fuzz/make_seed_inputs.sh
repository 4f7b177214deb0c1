#!/usr/bin/env bash
# Cuts seed inputs for the parser fuzz targets out of the seed images (see
# make_seed_images.sh): superblocks, group descriptors, inodes, extent roots,
# directory blocks (an htree directory is made with e2fsck -D), inline
# directories and xattr areas, each behind the header bytes its target reads
# first, plus a few hand-written ACLs, names and built-directory recipes.
# Usage: make_seed_inputs.sh IMAGE_DIR OUT_DIR; writes OUT_DIR/<target>/<seed>.
set -euo pipefail
images=$1
out=$2
export PATH="$PATH:/usr/sbin:/sbin"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for target in superblock group_descriptor inode extent dirent directory xattr \
  dx_hash; do
  mkdir -p "$out/${target}_fuzzer"
done

# Little-endian 32-bit value as 4 raw bytes.
le32() {
  printf "\\x$(printf %02x $(($1 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))"
  printf "\\x$(printf %02x $(($1 >> 16 & 255)))\\x$(printf %02x $(($1 >> 24 & 255)))"
}
zeros() { head -c "$1" /dev/zero; }
# bytes FILE OFFSET [COUNT]: COUNT bytes (or all) of FILE from OFFSET.
bytes() {
  dd if="$1" iflag=skip_bytes,count_bytes skip="$2" ${3:+count="$3"} \
    status=none
}
superblock() { bytes "$1" 1024 1024; }
u16() { od -An -tu2 -j "$2" -N2 "$1" | tr -d ' '; }
u32() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }
block_size() { echo $((1024 << $(u32 "$1" $((1024 + 0x18))))); }
inode_size() { u16 "$1" $((1024 + 0x58)); }
ino_of() { debugfs -R "stat $2" "$1" 2>/dev/null | sed -n 's/^Inode: \([0-9]*\).*/\1/p'; }
# The bytes of the inode at PATH.
inode_bytes() {
  local loc
  loc=$(debugfs -R "imap $2" "$1" 2>/dev/null |
    sed -n 's/.*located at block \([0-9]*\), offset 0x\([0-9a-f]*\).*/\1 0x\2/p')
  set -- "$1" $loc
  bytes "$1" $(($2 * $(block_size "$1") + $3)) "$(inode_size "$1")"
}
# inode IMAGE PATH [OFFSET [COUNT]]: the inode's bytes, or a part of them.
inode() {
  inode_bytes "$1" "$2" >"$work/inode"
  bytes "$work/inode" "${3:-0}" ${4:+"$4"}
}
# Logical block N of PATH.
dir_block() {
  local physical
  physical=$(debugfs -R "bmap $2 $3" "$1" 2>/dev/null)
  bytes "$1" $((physical * $(block_size "$1"))) "$(block_size "$1")"
}

ext2=$images/ext2.img
ext4=$images/ext4.img
inline=$images/inline.img
small=$images/small_inodes.img
htree=$work/htree.img
cp "$ext4" "$htree"
e2fsck -fyD "$htree" >/dev/null 2>&1 || true

# superblock_fuzzer: the 1024 superblock bytes.
for img in "$images"/*.img; do
  superblock "$img" >"$out/superblock_fuzzer/$(basename "$img" .img)"
done

# group_descriptor_fuzzer: 0x80 (superblock from the input), the superblock,
# the group number, the descriptor (1 KiB blocks: the table is block 2).
for img in "$ext2" "$ext4" "$small"; do
  { printf '\x80'; superblock "$img"; le32 0; bytes "$img" 2048 64; } \
    >"$out/group_descriptor_fuzzer/$(basename "$img" .img)"
done

# inode_fuzzer: 0x80, the superblock, the inode number, the inode.
inode_seed() {  # image, path, seed name
  { printf '\x80'; superblock "$1"; le32 "$(ino_of "$1" "$2")"; inode "$1" "$2"; } \
    >"$out/inode_fuzzer/$3"
}
inode_seed "$ext2" / ext2_root
inode_seed "$ext4" / ext4_root
inode_seed "$ext4" /dir/file ext4_file
inode_seed "$ext4" /dir/longlink ext4_symlink
inode_seed "$inline" /dir inline_dir
inode_seed "$small" /dir/file small_inodes_file

# extent_fuzzer: selector 0 (i_block, any depth), a seed, the extent root.
for img in "$ext4" "$small"; do
  { printf '\x00'; le32 0; inode "$img" /dir/file 40 60; } \
    >"$out/extent_fuzzer/$(basename "$img" .img)_file"
done

# dirent_fuzzer: flags (0x08: metadata_csum), a checksum seed, a rec_len
# probe, the block.
{ printf '\x08'; le32 0; printf '\x00\x00'; dir_block "$htree" /big 0; } \
  >"$out/dirent_fuzzer/htree_root"
{ printf '\x08'; le32 0; printf '\x00\x00'; dir_block "$htree" /big 1; } \
  >"$out/dirent_fuzzer/htree_leaf"
{ printf '\x00'; le32 0; printf '\x00\x00'; dir_block "$ext2" /big 0; } \
  >"$out/dirent_fuzzer/ext2_dir"

# directory_fuzzer, raw mode: 0, flags, the hash seed, the uuid, the inode
# number and generation (for the checksum seed), shape 0, no extra name,
# then the blocks (or the inline i_block).
raw_dir() {  # image, path, flags, block count
  local img=$1 ino
  ino=$(ino_of "$img" "$2")
  printf '\x00'
  printf "\\x$3"
  bytes "$img" $((1024 + 0xEC)) 16
  bytes "$img" $((1024 + 0x68)) 16
  le32 "$ino"
  inode "$img" "$2" $((0x64)) 4
  printf '\x00\x00'
  if [ "$4" = inline ]; then
    inode "$img" "$2" 40 60
  else
    for ((i = 0; i < $4; i++)); do dir_block "$img" "$2" "$i"; done
  fi
}
raw_dir "$htree" /big 15 4 >"$out/directory_fuzzer/htree_big"
raw_dir "$ext2" /big 10 2 >"$out/directory_fuzzer/linear_big"
raw_dir "$inline" /dir 10 inline >"$out/directory_fuzzer/inline_dir"
# Built mode (1 blocks, 2 inline): flags, hash seed, checksum seed, hash
# version, levels, fanout, records per block, batch, no mutations, names.
names=$(seq -f 'entry-%g' 1 120 | paste -sd/)
{ printf '\x01\x15'; zeros 20; printf '\x01\x01\x03\x04\x02\x00%s' "$names"; } \
  >"$out/directory_fuzzer/built_htree"
{ printf '\x01\x10'; zeros 20; printf '\x00\x00\x00\x05\x03\x00%s' "$names"; } \
  >"$out/directory_fuzzer/built_linear"
{ printf '\x02\x10'; zeros 20; printf '\x00\x00\x02\x00\x01\x00a/bb/ccc/dddd/%s' \
  "$(seq -f 'name-%g' 1 8 | paste -sd/)"; } >"$out/directory_fuzzer/built_inline"

# xattr_fuzzer: flags, a block number, a checksum seed, then the bytes: an
# in-inode xattr area, ACLs in both forms, names.
{ zeros 9; inode "$inline" /dir $((128 + 32)); } \
  >"$out/xattr_fuzzer/inline_dir"
{ zeros 9; printf '\x01\x00\x00\x00\x01\x00\x06\x00\x04\x00\x04\x00\x20\x00\x04\x00'; } \
  >"$out/xattr_fuzzer/acl_disk"
{ zeros 9; printf '\x02\x00\x00\x00\x01\x00\x06\x00\xff\xff\xff\xff'
  printf '\x02\x00\x06\x00\xe8\x03\x00\x00\x04\x00\x04\x00\xff\xff\xff\xff'
  printf '\x10\x00\x06\x00\xff\xff\xff\xff\x20\x00\x04\x00\xff\xff\xff\xff'; } \
  >"$out/xattr_fuzzer/acl_xattr"
{ printf '\x04'; zeros 8
  printf 'user.mime_type\0security.selinux\0system.posix_acl_access\0trusted.x'; } \
  >"$out/xattr_fuzzer/names"

# dx_hash_fuzzer: the seed, then the name.
{ zeros 16; printf 'entry-1'; } >"$out/dx_hash_fuzzer/default_seed"
{ bytes "$ext4" $((1024 + 0xEC)) 16; printf 'lost+found'; } \
  >"$out/dx_hash_fuzzer/image_seed"
