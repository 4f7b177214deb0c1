#!/usr/bin/env bash
# Cuts seed inputs for the parser fuzz targets out of the seed images (see
# make_seed_images.sh): superblocks, group descriptors, inodes, extent roots,
# directory blocks (an htree directory is made with e2fsck -D), inline
# directories and xattr areas, each behind the header bytes its target reads
# first, plus a few hand-written ACLs, names and built-directory recipes;
# then indirect maps, htree blocks and directory recipes, inline inodes, and
# operations followed by whole images for the targets above the parsers.
# Usage: make_seed_inputs.sh IMAGE_DIR OUT_DIR; writes OUT_DIR/<target>/<seed>.
set -euo pipefail
images=$1
out=$2
export PATH="$PATH:/usr/sbin:/sbin"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for target in superblock group_descriptor inode extent dirent directory xattr \
  dx_hash indirect htree inline_data write_ops; do
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

# indirect_fuzzer: flags (0: 1 KiB blocks), the block count, the walk bound,
# i_block, the indirect blocks ({le32 number, the block}), then operations
# (kind, le32 logical, le32 count; see indirect_fuzzer.cc).
indirect_seed() {  # image, path, walk bound
  local img=$1 blocks
  blocks=$(debugfs -R "stat $2" "$img" 2>/dev/null |
    grep -o '([DT]*IND):[0-9]*' | cut -d: -f2)
  printf '\x00'
  le32 "$(u32 "$img" $((1024 + 4)))"
  le32 "$3"
  inode "$img" "$2" 40 60
  printf "\\x$(printf %02x $(echo $blocks | wc -w))"
  for b in $blocks; do le32 "$b"; bytes "$img" $((b * 1024)) 1024; done
}
indirect_ops() {
  # Map 6 blocks at the start of the double indirect range and 3 at the
  # start of the triple one, remove 5..15, ask for the next extent from 0,
  # remove from the double range to the end, map block 13.
  printf '\x00\x04\x00\x00\x00\x05\x00\x00\x00'
  printf '\x00\x06\x00\x00\x00\x02\x00\x00\x00'
  printf '\x01\x05\x00\x00\x80\x0a\x00\x00\x00'
  printf '\x02\x00\x00\x00\x80\x00\x00\x00\x00'
  printf '\x01\x04\x00\x00\x00\x00\x00\x00\x80'
  printf '\x03\x0d\x00\x00\x80\x00\x00\x00\x00'
}
indirect_seed "$ext2" /dir/file 20 >"$out/indirect_fuzzer/ext2_file"
{ indirect_seed "$ext2" /dir/file 20; indirect_ops; } \
  >"$out/indirect_fuzzer/ext2_file_ops"
indirect_seed "$images/ext3.img" '<8>' 1024 >"$out/indirect_fuzzer/ext3_journal"
# A triple indirect map by hand: direct blocks 100..111, the single indirect
# block 20 (200..207), the double 21 -> 23 (300, 301, hole, 305), the triple
# 22 -> 24 -> 25 (400..403).
pointers() {  # block number, pointers...: the block record
  local n=$1
  shift
  le32 "$n"
  for p in "$@"; do le32 "$p"; done
  zeros $((1024 - 4 * $#))
}
{
  printf '\x00'
  le32 1000
  le32 70000
  for p in $(seq 100 111) 20 21 22; do le32 "$p"; done
  printf '\x06'
  pointers 20 $(seq 200 207)
  pointers 21 23
  pointers 23 300 301 0 305
  pointers 22 24
  pointers 24 25
  pointers 25 400 401 402 403
  indirect_ops
} >"$out/indirect_fuzzer/triple"

# htree_fuzzer, blocks: 0, flags (0x01 metadata_csum; 1 KiB), a checksum
# seed, a hash to look up, the block: the root of /big (made an htree by
# e2fsck -D) and an interior block by hand (limit 127, three entries).
{ printf '\x00\x01'; le32 0; le32 0x80000000; dir_block "$htree" /big 0; } \
  >"$out/htree_fuzzer/root"
{ printf '\x00\x00'; le32 0; le32 0x40000000; le32 0; printf '\x00\x04\x00\x00'
  printf '\x7f\x00\x03\x00'; le32 1; le32 0x30000000; le32 2; le32 0x90000000
  le32 3; } >"$out/htree_fuzzer/node"
# Directory mode: 1, flags (block size, 0x04 metadata_csum, 0x08 large_dir,
# 0x10 filetype, 0x40 no indexing), hash version, hash seed, checksum seed,
# name prefix, name length, names added first (le16), then operations
# (kind, le16 argument; see htree_fuzzer.cc): add new names in a burst,
# look one up, remove, replace, list, set the parent, check emptiness, flip
# a byte and look up again.
htree_ops() {
  printf '\x08\x30\x00\x03\x05\x00\x01\x05\x00\x02\x07\x00\x04\x02\x00'
  printf '\x06\x09\x00\x05\x00\x00\x80\x00\x00\x03\x10\x00'
  printf '\x07\x00\x00'; le32 1100; printf '\x55'
  printf '\x03\x01\x00\x04\x00\x00\x00\x81\x00'
}
{ printf '\x01\x14\x01'; zeros 16; le32 0x12345678; printf '\x05entry\xc8'
  printf '\xc2\x01'; htree_ops; } >"$out/htree_fuzzer/csum_1k"
{ printf '\x01\x18\x02'; le32 1; le32 2; le32 3; le32 4; le32 0
  printf '\x03dir\xff\x90\x01'; htree_ops; } >"$out/htree_fuzzer/large_dir_tea"
{ printf '\x01\x52\x00'; zeros 20; printf '\x04file\x00\x32\x00'; htree_ops; } \
  >"$out/htree_fuzzer/linear_4k"
# 4 KiB blocks, every pointer set: the triple indirect block 12 points at
# the double 11 from all its slots, 11 at the single 10, 10 at block 5. A
# run over it must not take one step per indirect block.
repeat32() {  # value, count: the little-endian value, count times
  printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) \
    $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)))%.0s" \
    $(seq "$2")
}
{
  printf '\x02'
  le32 100000
  le32 16
  repeat32 5 12
  le32 10
  le32 11
  le32 12
  printf '\x03'
  le32 10; repeat32 5 1024
  le32 11; repeat32 10 1024
  le32 12; repeat32 11 1024
} >"$out/indirect_fuzzer/shared_full"

# inline_data_fuzzer: flags (0x01: the template filesystem has
# metadata_csum), the 256-byte inode, then operations (kind, le16, byte;
# see inline_data_fuzzer.cc): read, write inside and past the inline bytes,
# set an xattr, truncate, seek, remove user.a; list, create, make a
# directory, rename, unlink, remove the directory, list again.
inline_ops() {
  printf '\x00\x00\x00\x10\x01\x0a\x00\x13\x08\x01\x00\x40\x00\x00\x00\xff'
  printf '\x01\x64\x00\x95\x02\x1e\x00\x00\x0b\x00\x00\x01\x09\x00\x00\x01'
  printf '\x0a\x00\x00\x00\x03\x01\x00\x00\x03\x02\x00\x00\x05\x03\x00\x00'
  printf '\x07\x01\x00\x00\x04\x02\x00\x00\x06\x03\x00\x00\x0a\x00\x00\x00'
}
inline_seed() {  # image, path, flags, seed name
  { printf "\\x$3"; inode "$1" "$2"; inline_ops; } \
    >"$out/inline_data_fuzzer/$4"
}
inline_seed "$inline" /small 01 file
inline_seed "$inline" /dir 01 dir
inline_seed "$inline" /dir/longlink 01 symlink
# Inline bytes past i_block, in system.data: a 100-byte file, and a
# directory whose last two entries sit in system.data (mke2fs never puts
# them there, the kernel does; debugfs sets the xattr).
spill=$work/spill
mkdir -p "$spill/src/dir"
head -c 100 /dev/zero | tr '\0' 'y' >"$spill/src/file"
: >"$spill/src/dir/a"
mke2fs -q -F -t ext4 -b 1024 -I 256 -N 64 -O ^has_journal,inline_data \
  -d "$spill/src" "$spill/img" 256K >/dev/null 2>&1
for i in 1 2; do
  le32 13
  printf '\x18\x00\x0e\x01spilled-name-%d\x00\x00' "$i"
done >"$spill/data"
debugfs -w -R "ea_set -f $spill/data /dir system.data" "$spill/img" >/dev/null 2>&1
debugfs -w -R "sif /dir size 108" "$spill/img" >/dev/null 2>&1
inline_seed "$spill/img" /file 01 spill_file
inline_seed "$spill/img" /dir 00 spill_dir

# write_ops_fuzzer: le16 length, the operations (see write_ops_fuzzer.cc:
# create, write, mkdir, rename, link, setxattr, punch, symlink, read and
# seek, list, mknod, unnamed file, open, unlink, remount, truncate, rmdir,
# removexattr, chmod and sync, release), then each seed image without its
# trailing zero blocks (the fuzzer pads it back).
write_ops() {
  printf '\x00'
  printf '\x00\x00\xc1'
  printf '\x01\x03\x41'; le32 $((0x40000010)); printf '\x00\x20'
  printf '\x03\x00\xc2'
  printf '\x00\x01\xc3'
  printf '\x04\x00\xc1\x00\xc4\x02'
  printf '\x05\x03\x00\xc5'
  printf '\x08\x03\x00\x40\x00'
  printf '\x0a\x03\x02'; le32 0; printf '\x10\x00'
  printf '\x0b\x00\xc6\x20'
  printf '\x0c\x03\x01'; le32 0; printf '\x00\x01'
  printf '\x0d\x00\x00'
  printf '\x0e\x00\xc7'
  printf '\x0f\x00\xc9'
  printf '\x10\x04\x00'
  printf '\x06\x00\xc5'
  printf '\x13\x01\x00'
  printf '\x02\x03\x00'; le32 256
  printf '\x07\x00\xc2'
  printf '\x09\x03\x00'
  printf '\x12\x03\x10'
  printf '\x11\x00\x00'
}
write_ops >"$work/ops"
for img in "$images"/*.img; do
  used=$(od -An -v -tx1 -w1024 "$img" | grep -n '[1-9a-f]' | tail -1 | cut -d: -f1)
  { printf "\\x$(printf %02x $(($(wc -c <"$work/ops") & 255)))\\x00"
    cat "$work/ops"
    head -c $((${used:-1} * 1024)) "$img"; } \
    >"$out/write_ops_fuzzer/$(basename "$img" .img)"
done
