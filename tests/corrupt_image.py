#!/usr/bin/env python3
"""Applies seeded corruptions to the metadata of an ext2/3/4 image.

    corrupt_image.py IMAGE --seed N [--target KIND] [--count N] [--json]

The metadata is located with dumpe2fs and debugfs (e2fsprogs) and with the
image's own superblock and inode tables:

  superblock    the primary superblock (byte 1024)
  gdt           a group descriptor in the primary descriptor table
  block_bitmap  a group's block bitmap
  inode_bitmap  a group's inode bitmap
  inode_table   an inode in use (its fixed fields, i_block, the in-inode
                extended attribute area)
  extent        an index or leaf block of a file's extent tree
                (`debugfs -R "ex <ino>"`); on images without extents an
                indirect block (`debugfs -R "stat <ino>"`)
  directory     a directory block (`debugfs -R "blocks <ino>"`), often of
                an htree directory (its dx root or a leaf)
  xattr         an extended attribute block (`File ACL:` of
                `debugfs -R "stat <ino>"`)
  journal       the journal superblock or a block of the log
                (`debugfs -R "bmap <8> N"`)

Without --target the kind is KINDS[seed % 9], so consecutive seeds visit every
kind in turn. When the image has nothing of that kind (no xattr blocks, no
extent trees), the next kind that has something is used; the output names
the kind that was corrupted.

The corruption is one of:
  bitflip   1 to 8 bits flipped
  random    a run of random bytes
  zero      a field-sized range set to zero
  extreme   a 16- or 32-bit field set to 0, 0xFFFF or 0xFFFFFFFF
mostly aimed at the structure's real fields (its header, its entries).

With metadata_csum (or gdt_csum for descriptors), the checksum that covers the
changed bytes is usually recomputed afterwards ("csum=fixed"), so that the
bad values reach the parsers instead of stopping at the checksum; one time
in four it is left stale ("csum=stale") to test the checksum check itself.
The stored checksum is verified before the change: when it does not match
(an unknown layout), it is left alone ("csum=unverified").

With --count N, N structures are corrupted: the first as above, the others
of kinds the seed picks at random (the first is the same with any count).

Prints one line describing exactly what was changed, the corruptions joined
by "; " (or, with --json, one JSON object: the first corruption's fields and
the list of all), so that a failure can be reproduced from the seed and the
base image. Exits 0 when a change was made, 1 on errors.
"""

import argparse
import json
import random
import re
import struct
import subprocess
import sys

KINDS = (
    "superblock",
    "gdt",
    "block_bitmap",
    "inode_bitmap",
    "inode_table",
    "extent",
    "directory",
    "xattr",
    "journal",
)

# Feature bits used here.
COMPAT_HAS_JOURNAL = 0x4
INCOMPAT_EXTENTS = 0x40
INCOMPAT_64BIT = 0x80
INCOMPAT_META_BG = 0x10
INCOMPAT_CSUM_SEED = 0x2000
RO_COMPAT_GDT_CSUM = 0x10
RO_COMPAT_METADATA_CSUM = 0x400

# Inode flags.
EXT4_INDEX_FL = 0x1000
EXT4_EXTENTS_FL = 0x80000
EXT4_INLINE_DATA_FL = 0x10000000

EXT4_XATTR_MAGIC = 0xEA020000
EXTENT_MAGIC = 0xF30A
JBD2_MAGIC = 0xC03B3998

S_IFMT = 0o170000
S_IFDIR = 0o040000
S_IFREG = 0o100000
S_IFLNK = 0o120000

# Field tables: (offset, size, name).
SUPERBLOCK_FIELDS = (
    (0x00, 4, "s_inodes_count"),
    (0x04, 4, "s_blocks_count_lo"),
    (0x08, 4, "s_r_blocks_count_lo"),
    (0x0C, 4, "s_free_blocks_count_lo"),
    (0x10, 4, "s_free_inodes_count"),
    (0x14, 4, "s_first_data_block"),
    (0x18, 4, "s_log_block_size"),
    (0x1C, 4, "s_log_cluster_size"),
    (0x20, 4, "s_blocks_per_group"),
    (0x24, 4, "s_clusters_per_group"),
    (0x28, 4, "s_inodes_per_group"),
    (0x34, 2, "s_mnt_count"),
    (0x36, 2, "s_max_mnt_count"),
    (0x38, 2, "s_magic"),
    (0x3A, 2, "s_state"),
    (0x3C, 2, "s_errors"),
    (0x4C, 4, "s_rev_level"),
    (0x54, 4, "s_first_ino"),
    (0x58, 2, "s_inode_size"),
    (0x5A, 2, "s_block_group_nr"),
    (0x5C, 4, "s_feature_compat"),
    (0x60, 4, "s_feature_incompat"),
    (0x64, 4, "s_feature_ro_compat"),
    (0x68, 16, "s_uuid"),
    (0xCE, 2, "s_reserved_gdt_blocks"),
    (0xE0, 4, "s_journal_inum"),
    (0xE4, 4, "s_journal_dev"),
    (0xE8, 4, "s_last_orphan"),
    (0xEC, 16, "s_hash_seed"),
    (0xFC, 1, "s_def_hash_version"),
    (0xFD, 1, "s_jnl_backup_type"),
    (0xFE, 2, "s_desc_size"),
    (0x100, 4, "s_default_mount_opts"),
    (0x104, 4, "s_first_meta_bg"),
    (0x10C, 4, "s_jnl_blocks[0]"),
    (0x118, 4, "s_jnl_blocks[3]"),
    (0x11C, 4, "s_jnl_blocks[4]"),
    (0x120, 4, "s_jnl_blocks[5]"),
    (0x148, 4, "s_jnl_blocks[15]"),
    (0x14C, 4, "s_jnl_blocks[16]"),
    (0x150, 4, "s_blocks_count_hi"),
    (0x154, 4, "s_r_blocks_count_hi"),
    (0x158, 4, "s_free_blocks_count_hi"),
    (0x15C, 2, "s_min_extra_isize"),
    (0x15E, 2, "s_want_extra_isize"),
    (0x160, 4, "s_flags"),
    (0x166, 2, "s_mmp_update_interval"),
    (0x168, 8, "s_mmp_block"),
    (0x174, 1, "s_log_groups_per_flex"),
    (0x175, 1, "s_checksum_type"),
    (0x194, 4, "s_error_count"),
    (0x240, 4, "s_usr_quota_inum"),
    (0x244, 4, "s_grp_quota_inum"),
    (0x248, 4, "s_overhead_clusters"),
    (0x268, 4, "s_lpf_ino"),
    (0x26C, 4, "s_prj_quota_inum"),
    (0x270, 4, "s_checksum_seed"),
    (0x27C, 2, "s_encoding"),
    (0x27E, 2, "s_encoding_flags"),
    (0x3FC, 4, "s_checksum"),
)

GROUP_DESC_FIELDS = (
    (0x00, 4, "bg_block_bitmap_lo"),
    (0x04, 4, "bg_inode_bitmap_lo"),
    (0x08, 4, "bg_inode_table_lo"),
    (0x0C, 2, "bg_free_blocks_count_lo"),
    (0x0E, 2, "bg_free_inodes_count_lo"),
    (0x10, 2, "bg_used_dirs_count_lo"),
    (0x12, 2, "bg_flags"),
    (0x14, 4, "bg_exclude_bitmap_lo"),
    (0x18, 2, "bg_block_bitmap_csum_lo"),
    (0x1A, 2, "bg_inode_bitmap_csum_lo"),
    (0x1C, 2, "bg_itable_unused_lo"),
    (0x1E, 2, "bg_checksum"),
)
GROUP_DESC_FIELDS_64 = (
    (0x20, 4, "bg_block_bitmap_hi"),
    (0x24, 4, "bg_inode_bitmap_hi"),
    (0x28, 4, "bg_inode_table_hi"),
    (0x2C, 2, "bg_free_blocks_count_hi"),
    (0x2E, 2, "bg_free_inodes_count_hi"),
    (0x30, 2, "bg_used_dirs_count_hi"),
    (0x32, 2, "bg_itable_unused_hi"),
    (0x38, 2, "bg_block_bitmap_csum_hi"),
    (0x3A, 2, "bg_inode_bitmap_csum_hi"),
)

INODE_FIELDS = (
    (0x00, 2, "i_mode"),
    (0x02, 2, "i_uid"),
    (0x04, 4, "i_size_lo"),
    (0x14, 4, "i_dtime"),
    (0x18, 2, "i_gid"),
    (0x1A, 2, "i_links_count"),
    (0x1C, 4, "i_blocks_lo"),
    (0x20, 4, "i_flags"),
    (0x64, 4, "i_generation"),
    (0x68, 4, "i_file_acl_lo"),
    (0x6C, 4, "i_size_high"),
    (0x74, 2, "l_i_blocks_high"),
    (0x76, 2, "l_i_file_acl_high"),
    (0x7C, 2, "l_i_checksum_lo"),
)
INODE_EXTRA_FIELDS = (
    (0x80, 2, "i_extra_isize"),
    (0x82, 2, "i_checksum_hi"),
    (0x84, 4, "i_ctime_extra"),
    (0x88, 4, "i_mtime_extra"),
    (0x9C, 4, "i_projid"),
)
INODE_BLOCK_MAP_FIELDS = tuple(
    (0x28 + 4 * i, 4, "i_block[%d]" % i) for i in range(15))

EXTENT_HEADER_FIELDS = (
    (0, 2, "eh_magic"),
    (2, 2, "eh_entries"),
    (4, 2, "eh_max"),
    (6, 2, "eh_depth"),
    (8, 4, "eh_generation"),
)
EXTENT_INDEX_FIELDS = ((0, 4, "ei_block"), (4, 4, "ei_leaf_lo"),
                       (8, 2, "ei_leaf_hi"), (10, 2, "ei_unused"))
EXTENT_LEAF_FIELDS = ((0, 4, "ee_block"), (4, 2, "ee_len"),
                      (6, 2, "ee_start_hi"), (8, 4, "ee_start_lo"))

DIRENT_FIELDS = ((0, 4, "inode"), (4, 2, "rec_len"), (6, 1, "name_len"),
                 (7, 1, "file_type"))

XATTR_HEADER_FIELDS = (
    (0, 4, "h_magic"),
    (4, 4, "h_refcount"),
    (8, 4, "h_blocks"),
    (12, 4, "h_hash"),
    (16, 4, "h_checksum"),
)
XATTR_ENTRY_FIELDS = (
    (0, 1, "e_name_len"),
    (1, 1, "e_name_index"),
    (2, 2, "e_value_offs"),
    (4, 4, "e_value_inum"),
    (8, 4, "e_value_size"),
    (12, 4, "e_hash"),
)

JOURNAL_HEADER_FIELDS = ((0, 4, "h_magic"), (4, 4, "h_blocktype"),
                         (8, 4, "h_sequence"))
JOURNAL_SB_FIELDS = JOURNAL_HEADER_FIELDS + (
    (0x0C, 4, "s_blocksize"),
    (0x10, 4, "s_maxlen"),
    (0x14, 4, "s_first"),
    (0x18, 4, "s_sequence"),
    (0x1C, 4, "s_start"),
    (0x20, 4, "s_errno"),
    (0x24, 4, "s_feature_compat"),
    (0x28, 4, "s_feature_incompat"),
    (0x2C, 4, "s_feature_ro_compat"),
    (0x40, 4, "s_nr_users"),
    (0x44, 4, "s_dynsuper"),
    (0x48, 4, "s_max_transaction"),
    (0x4C, 4, "s_max_trans_data"),
    (0x50, 1, "s_checksum_type"),
    (0x54, 4, "s_num_fc_blks"),
    (0xFC, 4, "s_checksum"),
)


def _crc_table(poly):
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc_table(0x82F63B78)
_CRC16 = _crc_table(0xA001)


def crc32c(crc, data):
    """Raw CRC-32C (no final inversion), as ext4 stores it."""
    t = _CRC32C
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


def crc16(crc, data):
    """CRC-16 (ANSI, reflected 0xA001), as gdt_csum uses it."""
    t = _CRC16
    for b in data:
        crc = (crc >> 8) ^ t[(crc ^ b) & 0xFF]
    return crc


def le16(b, o):
    return struct.unpack_from("<H", b, o)[0]


def le32(b, o):
    return struct.unpack_from("<I", b, o)[0]


def be32(b, o):
    return struct.unpack_from(">I", b, o)[0]


class Error(Exception):
    pass


def run(*args):
    try:
        p = subprocess.run(args, capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Error("%s: %s" % (args[0], e))
    return p.stdout.decode("utf-8", "replace")


class Image:
    """The image file and what e2fsprogs say about its layout."""

    def __init__(self, path):
        self.path = path
        self.f = open(path, "r+b")
        self.f.seek(0, 2)
        self.size = self.f.tell()
        sb = self.read(1024, 1024)
        self.sb = sb
        if le16(sb, 0x38) != 0xEF53:
            raise Error("%s: not an ext2/3/4 image (no superblock magic)" % path)
        self.block_size = 1024 << le32(sb, 0x18)
        self.inodes_per_group = le32(sb, 0x28)
        self.blocks_per_group = le32(sb, 0x20)
        self.clusters_per_group = le32(sb, 0x24)
        self.inode_size = le16(sb, 0x58) if le32(sb, 0x4C) >= 1 else 128
        self.first_ino = le32(sb, 0x54) if le32(sb, 0x4C) >= 1 else 11
        self.compat = le32(sb, 0x5C)
        self.incompat = le32(sb, 0x60)
        self.ro_compat = le32(sb, 0x64)
        self.journal_inum = le32(sb, 0xE0)
        self.desc_size = (le16(sb, 0xFE) if self.incompat & INCOMPAT_64BIT
                          else 32) or 32
        self.metadata_csum = bool(self.ro_compat & RO_COMPAT_METADATA_CSUM)
        self.gdt_csum = bool(self.ro_compat & RO_COMPAT_GDT_CSUM)
        self.uuid = bytes(sb[0x68:0x78])
        if self.incompat & INCOMPAT_CSUM_SEED:
            self.csum_seed = le32(sb, 0x270)
        else:
            self.csum_seed = crc32c(0xFFFFFFFF, self.uuid)
        self._parse_groups()
        self._inodes = None

    def read(self, off, n):
        self.f.seek(off)
        return bytearray(self.f.read(n))

    def write(self, off, data):
        if off < 0 or off + len(data) > self.size:
            raise Error("write outside the image (%d+%d)" % (off, len(data)))
        self.f.seek(off)
        self.f.write(data)

    def block(self, n):
        return self.read(n * self.block_size, self.block_size)

    def _parse_groups(self):
        out = run("dumpe2fs", self.path)
        self.groups = []
        self.gdt_block = None
        g = None
        for line in out.splitlines():
            m = re.match(r"Group (\d+): \(Blocks (\d+)-(\d+)\)(.*)", line)
            if m:
                flags = re.search(r"\[(.*)\]", m.group(4))
                g = {
                    "group": int(m.group(1)),
                    "flags": flags.group(1).split(", ") if flags else [],
                }
                self.groups.append(g)
                continue
            if g is None:
                continue
            m = re.search(r"Group descriptors at (\d+)-(\d+)", line)
            if m and g["group"] == 0:
                self.gdt_block = int(m.group(1))
            m = re.match(r"\s+Block bitmap at (\d+)", line)
            if m:
                g["block_bitmap"] = int(m.group(1))
            m = re.match(r"\s+Inode bitmap at (\d+)", line)
            if m:
                g["inode_bitmap"] = int(m.group(1))
            m = re.match(r"\s+Inode table at (\d+)-(\d+)", line)
            if m:
                g["inode_table"] = int(m.group(1))
        if not self.groups or self.gdt_block is None:
            raise Error("dumpe2fs %s: cannot find the group layout" % self.path)

    def inode_offset(self, ino):
        g, i = divmod(ino - 1, self.inodes_per_group)
        if g >= len(self.groups) or "inode_table" not in self.groups[g]:
            return None
        return self.groups[g]["inode_table"] * self.block_size + i * self.inode_size

    def inodes(self):
        """The inodes in use: dicts with ino, off, mode, flags, ..."""
        if self._inodes is not None:
            return self._inodes
        found = []
        isz = self.inode_size
        for g in self.groups:
            if "INODE_UNINIT" in g["flags"] or "inode_table" not in g:
                continue
            table = self.read(g["inode_table"] * self.block_size,
                              self.inodes_per_group * isz)
            for i in range(len(table) // isz):
                o = i * isz
                mode = le16(table, o)
                if mode == 0 or le16(table, o + 0x1A) == 0:
                    continue
                if le32(table, o + 0x14) != 0:  # i_dtime: deleted
                    continue
                ino = g["group"] * self.inodes_per_group + i + 1
                if ino < self.first_ino and ino not in (2, 7, 8, 11):
                    continue
                rec = {
                    "ino": ino,
                    "off": g["inode_table"] * self.block_size + o,
                    "mode": mode,
                    "flags": le32(table, o + 0x20),
                    "file_acl": le32(table, o + 0x68) |
                                (le16(table, o + 0x76) << 32),
                    "depth": 0,
                }
                if rec["flags"] & EXT4_EXTENTS_FL and le16(table, o + 0x28) == EXTENT_MAGIC:
                    rec["depth"] = le16(table, o + 0x28 + 6)
                found.append(rec)
        self._inodes = found
        return found

    def inode_seed(self, ino, gen):
        return crc32c(crc32c(self.csum_seed, struct.pack("<I", ino)),
                      struct.pack("<I", gen))


def is_dir(rec):
    return rec["mode"] & S_IFMT == S_IFDIR


def is_reg(rec):
    return rec["mode"] & S_IFMT == S_IFREG


class Target:
    """A structure to corrupt: its bytes, its fields, its checksum."""

    def __init__(self, kind, where, start, length, fields, region=None,
                 big_endian=False):
        self.kind = kind
        self.where = where  # human-readable location
        self.start = start  # absolute byte offset of the structure
        self.length = length
        self.fields = list(fields)  # (offset within structure, size, name)
        # The part of the structure where the meaning is (for random changes).
        self.region = region or (0, length)
        self.big_endian = big_endian
        self.checksum = None  # fn(img, before: bytes, after: bytearray) -> str


# --------------------------------------------------------------- choosers


def pick_superblock(img, rng):
    t = Target("superblock", "superblock@1024", 1024, 1024, SUPERBLOCK_FIELDS,
               region=(0, 0x180))
    if img.metadata_csum:

        def fix(img, before, after):
            if le32(before, 0x3FC) != crc32c(0xFFFFFFFF, before[:0x3FC]):
                return "unverified"
            if not le32(after, 0x64) & RO_COMPAT_METADATA_CSUM:
                return "none"
            struct.pack_into("<I", after, 0x3FC, crc32c(0xFFFFFFFF, after[:0x3FC]))
            return "fixed"

        t.checksum = fix
    return t


def _group_choice(img, rng, need=None, avoid_flag=None):
    groups = [g for g in img.groups if need is None or need in g]
    if not groups:
        return None
    good = [g for g in groups if avoid_flag is None or avoid_flag not in g["flags"]]
    if good and (rng.random() < 0.85 or len(good) == len(groups)):
        groups = good
    if rng.random() < 0.5 and groups[0]["group"] == 0:
        return groups[0]
    return rng.choice(groups)


def desc_checksum(img, group, desc):
    if img.metadata_csum:
        c = crc32c(img.csum_seed, struct.pack("<I", group))
        c = crc32c(c, desc[:0x1E])
        c = crc32c(c, b"\0\0")
        c = crc32c(c, desc[0x20:img.desc_size])
        return c & 0xFFFF
    c = crc16(0xFFFF, img.uuid)
    c = crc16(c, struct.pack("<I", group))
    c = crc16(c, desc[:0x1E])
    if img.incompat & INCOMPAT_64BIT and img.desc_size > 0x20:
        c = crc16(c, desc[0x20:img.desc_size])
    return c


def desc_offset(img, group):
    per_block = img.block_size // img.desc_size
    if img.incompat & INCOMPAT_META_BG and group >= per_block:
        return None
    return img.gdt_block * img.block_size + group * img.desc_size


def pick_gdt(img, rng):
    g = _group_choice(img, rng)
    off = desc_offset(img, g["group"])
    if off is None:
        g = img.groups[0]
        off = desc_offset(img, 0)
    fields = list(GROUP_DESC_FIELDS)
    if img.desc_size >= 64:
        fields += GROUP_DESC_FIELDS_64
    t = Target("gdt", "group %d descriptor@block %d+%d" %
               (g["group"], off // img.block_size, off % img.block_size),
               off, img.desc_size, fields)
    if img.metadata_csum or img.gdt_csum:
        group = g["group"]

        def fix(img, before, after):
            if le16(before, 0x1E) != desc_checksum(img, group, before):
                return "unverified"
            struct.pack_into("<H", after, 0x1E, desc_checksum(img, group, after))
            return "fixed"

        t.checksum = fix
    return t


def pick_bitmap(img, rng, kind):
    key = "block_bitmap" if kind == "block_bitmap" else "inode_bitmap"
    uninit = "BLOCK_UNINIT" if kind == "block_bitmap" else "INODE_UNINIT"
    g = _group_choice(img, rng, need=key, avoid_flag=uninit)
    if g is None:
        return None
    nbytes = ((img.clusters_per_group if kind == "block_bitmap" else
               img.inodes_per_group) + 7) // 8
    nbytes = min(nbytes, img.block_size)
    blk = g[key]
    # Mostly the start of the bitmap, where the allocated items are.
    region = (0, min(nbytes, 512)) if rng.random() < 0.6 else (0, nbytes)
    fields = [(o, 4, "bitmap word %d" % (o // 4))
              for o in range(0, min(nbytes, 1024) - 3, 4)]
    t = Target(kind, "group %d %s@block %d" % (g["group"], key.replace("_", " "), blk),
               blk * img.block_size, img.block_size, fields, region=region)
    doff = desc_offset(img, g["group"])
    if img.metadata_csum and doff is not None:
        group = g["group"]
        lo, hi = (0x18, 0x38) if kind == "block_bitmap" else (0x1A, 0x3A)
        has_hi = img.desc_size >= hi + 2

        def stored(desc):
            v = le16(desc, lo)
            if has_hi:
                v |= le16(desc, hi) << 16
            return v

        def fix(img, before, after):
            desc = img.read(doff, img.desc_size)
            want = crc32c(img.csum_seed, before[:nbytes])
            if not has_hi:
                want &= 0xFFFF
            if stored(desc) != want or le16(desc, 0x1E) != desc_checksum(img, group, desc):
                return "unverified"
            c = crc32c(img.csum_seed, after[:nbytes])
            struct.pack_into("<H", desc, lo, c & 0xFFFF)
            if has_hi:
                struct.pack_into("<H", desc, hi, c >> 16)
            struct.pack_into("<H", desc, 0x1E, desc_checksum(img, group, desc))
            img.write(doff, desc)
            return "fixed"

        t.checksum = fix
    return t


def inode_checksum(img, ino, raw):
    """The 32-bit inode checksum of raw (its checksum fields read as zero)."""
    gen = le32(raw, 0x64)
    r = bytearray(raw)
    r[0x7C:0x7E] = b"\0\0"
    if len(r) > 128 and 128 + le16(r, 0x80) >= 0x84:
        r[0x82:0x84] = b"\0\0"
    return crc32c(img.inode_seed(ino, gen), r)


def inode_csum_fits_hi(raw):
    return len(raw) > 128 and 128 + le16(raw, 0x80) >= 0x84


def stored_inode_checksum(raw):
    v = le16(raw, 0x7C)
    if inode_csum_fits_hi(raw):
        v |= le16(raw, 0x82) << 16
    return v


def set_inode_checksum(img, ino, raw):
    c = inode_checksum(img, ino, raw)
    struct.pack_into("<H", raw, 0x7C, c & 0xFFFF)
    if inode_csum_fits_hi(raw):
        struct.pack_into("<H", raw, 0x82, c >> 16)


def verify_inode_checksum(img, ino, raw):
    c = inode_checksum(img, ino, raw)
    if not inode_csum_fits_hi(raw):
        c &= 0xFFFF
    return stored_inode_checksum(raw) == c


def dirent_fields(buf, start, end, limit=64, prefix=""):
    """Fields of the directory entries in buf[start:end]."""
    fields = []
    off = start
    n = 0
    while off + 8 <= end and n < limit:
        rec_len = le16(buf, off + 4)
        name = bytes(buf[off + 8:off + 8 + buf[off + 6]]).decode("utf-8", "replace")
        for fo, fs, fn in DIRENT_FIELDS:
            fields.append((off + fo, fs, "%sdirent '%s' %s" % (prefix, name[:24], fn)))
        if rec_len < 8 or off + rec_len > end:
            break
        off += rec_len
        n += 1
    return fields


def xattr_entry_fields(buf, start, end, prefix):
    fields = []
    off = start
    n = 0
    while off + 16 <= end and n < 32 and le32(buf, off) != 0:
        name_len = buf[off]
        name = bytes(buf[off + 16:off + 16 + name_len]).decode("utf-8", "replace")
        for fo, fs, fn in XATTR_ENTRY_FIELDS:
            fields.append((off + fo, fs, "%s'%s' %s" % (prefix, name[:24], fn)))
        off += (16 + name_len + 3) & ~3
        n += 1
    return fields


def pick_inode(img, rng):
    inodes = img.inodes()
    if not inodes:
        return None
    reserved = [r for r in inodes if r["ino"] < img.first_ino]
    if reserved and rng.random() < 0.1:
        rec = rng.choice(reserved)
    else:
        others = [r for r in inodes if r["ino"] >= img.first_ino] or inodes
        weights = []
        for r in others:
            w = 1
            if is_dir(r):
                w += 3
            if r["flags"] & EXT4_INLINE_DATA_FL:
                w += 3
            if r["file_acl"]:
                w += 1
            if r["depth"] > 0:
                w += 5
            weights.append(w)
        rec = rng.choices(others, weights)[0]
    ino = rec["ino"]
    isz = img.inode_size
    raw = img.read(rec["off"], isz)
    fields = list(INODE_FIELDS)
    if rec["flags"] & EXT4_EXTENTS_FL:
        fields += [(0x28 + o, s, "i_block " + n) for o, s, n in EXTENT_HEADER_FIELDS]
        entries = min(le16(raw, 0x28 + 2), 4)
        depth = le16(raw, 0x28 + 6)
        for i in range(entries):
            for o, s, n in (EXTENT_INDEX_FIELDS if depth else EXTENT_LEAF_FIELDS):
                fields.append((0x28 + 12 + 12 * i + o, s, "i_block[%d] %s" % (i, n)))
    elif rec["flags"] & EXT4_INLINE_DATA_FL:
        if is_dir(rec):
            fields.append((0x28, 4, "inline parent inode"))
            fields += dirent_fields(raw, 0x2C, 0x64, prefix="inline ")
    elif rec["mode"] & S_IFMT != S_IFLNK or le32(raw, 0x1C) != 0:
        fields += INODE_BLOCK_MAP_FIELDS
    xattr_start = None
    if isz > 128:
        fields += [f for f in INODE_EXTRA_FIELDS if f[0] + f[1] <= isz]
        extra = le16(raw, 0x80)
        if 128 + extra + 4 <= isz:
            xattr_start = 128 + extra
            if le32(raw, xattr_start) == EXT4_XATTR_MAGIC:
                fields.append((xattr_start, 4, "in-inode xattr magic"))
                fields += xattr_entry_fields(raw, xattr_start + 4, isz, "in-inode xattr ")
    r = rng.random()
    if r < 0.45:
        region = (0, min(160, isz))
    elif r < 0.6 and xattr_start is not None:
        region = (xattr_start, isz)
    else:
        region = (0, isz)
    kind = "inode %d (mode %06o flags 0x%x)" % (ino, rec["mode"], rec["flags"])
    t = Target("inode_table", "%s@block %d+%d" % (kind, rec["off"] // img.block_size,
                                                  rec["off"] % img.block_size),
               rec["off"], isz, fields, region=region)
    if img.metadata_csum:

        def fix(img, before, after):
            if not verify_inode_checksum(img, ino, before):
                return "unverified"
            set_inode_checksum(img, ino, after)
            return "fixed"

        t.checksum = fix
    return t


def tail_checksum_fix(img, owner_ino, csum_len_fn, store_off_fn):
    """A fixer for blocks whose checksum is crc32c(inode seed, block[:n])."""

    def fix(img, before, after):
        raw = img.read(img.inode_offset(owner_ino), img.inode_size)
        seed = img.inode_seed(owner_ino, le32(raw, 0x64))
        n, at = csum_len_fn(before), store_off_fn(before)
        if n is None or at is None or at + 4 > len(before) or \
                le32(before, at) != crc32c(seed, before[:n]):
            return "unverified"
        n2, at2 = csum_len_fn(after), store_off_fn(after)
        if n2 is None or at2 is None or at2 + 4 > len(after):
            return "none"
        struct.pack_into("<I", after, at2, crc32c(seed, after[:n2]))
        return "fixed"

    return fix


def pick_extent(img, rng):
    inodes = img.inodes()
    trees = [r for r in inodes if r["depth"] > 0]
    if trees:
        rec = rng.choice(trees)
        ino = rec["ino"]
        out = run("debugfs", "-R", "ex <%d>" % ino, img.path)
        blocks = []
        for line in out.splitlines():
            m = re.match(r"\s*(\d+)/\s*(\d+)\s+\d+/\s*\d+\s+\d+\s*-\s*\d+\s+(\d+)", line)
            if m and int(m.group(1)) < int(m.group(2)):
                blocks.append((int(m.group(1)) + 1, int(m.group(3))))
        if not blocks:
            return None
        level, blk = rng.choice(blocks)
        buf = img.block(blk)
        fields = list(EXTENT_HEADER_FIELDS)
        entries = min(le16(buf, 2), (img.block_size - 12) // 12)
        depth = le16(buf, 6)
        for i in sorted(rng.sample(range(entries), min(entries, 24))):
            for o, s, n in (EXTENT_INDEX_FIELDS if depth else EXTENT_LEAF_FIELDS):
                fields.append((12 + 12 * i + o, s, "entry %d %s" % (i, n)))
        region = (0, 12 + 12 * entries) if rng.random() < 0.8 else (0, img.block_size)
        t = Target("extent", "extent tree block (level %d, depth %d) of inode %d@block %d" %
                   (level, depth, ino, blk), blk * img.block_size, img.block_size,
                   fields, region=region)
        if img.metadata_csum:
            bs = img.block_size

            def tail_off(b):
                off = 12 + 12 * le16(b, 4)
                return off if off + 4 <= bs else None

            t.checksum = tail_checksum_fix(img, ino, tail_off, tail_off)
        return t
    # No extent trees: the indirect blocks of a block-mapped file.
    candidates = [r for r in inodes if (is_reg(r) or is_dir(r)) and
                  not r["flags"] & (EXT4_EXTENTS_FL | EXT4_INLINE_DATA_FL)]
    rng.shuffle(candidates)
    for rec in candidates[:40]:
        out = run("debugfs", "-R", "stat <%d>" % rec["ino"], img.path)
        ind = [(k, int(b)) for k, b in re.findall(r"\((IND|DIND|TIND)\):(\d+)", out)]
        if not ind:
            continue
        what, blk = rng.choice(ind)
        per = img.block_size // 4
        fields = [(4 * i, 4, "pointer %d" % i)
                  for i in sorted(rng.sample(range(per), min(per, 32)))]
        return Target("extent", "%s block of inode %d@block %d" % (what, rec["ino"], blk),
                      blk * img.block_size, img.block_size, fields)
    return None


def pick_directory(img, rng):
    dirs = [r for r in img.inodes() if is_dir(r) and
            not r["flags"] & EXT4_INLINE_DATA_FL]
    if not dirs:
        return None
    indexed = [r for r in dirs if r["flags"] & EXT4_INDEX_FL]
    rec = rng.choice(indexed) if indexed and rng.random() < 0.4 else rng.choice(dirs)
    ino = rec["ino"]
    blocks = [int(x) for x in run("debugfs", "-R", "blocks <%d>" % ino, img.path).split()]
    if not blocks:
        return None
    if rec["flags"] & EXT4_INDEX_FL and rng.random() < 0.3:
        index = 0
    else:
        index = rng.randrange(len(blocks))
    blk = blocks[index]
    bs = img.block_size
    buf = img.block(blk)
    fields = []
    what = "directory block"
    count_offset = None
    first_rec = le16(buf, 4)
    if le32(buf, 0) == 0 and first_rec in (bs, 0) and index > 0:
        what = "htree node block"
        count_offset = 8
    elif index == 0 and rec["flags"] & EXT4_INDEX_FL and first_rec == 12:
        what = "htree root block"
        count_offset = 32
        fields += dirent_fields(buf, 0, 24)
        fields += [(24, 4, "dx reserved_zero"), (28, 1, "dx hash_version"),
                   (29, 1, "dx info_length"), (30, 1, "dx indirect_levels"),
                   (31, 1, "dx unused_flags")]
    if count_offset is not None:
        count = min(le16(buf, count_offset + 2), (bs - count_offset) // 8)
        fields += [(count_offset, 2, "dx limit"), (count_offset + 2, 2, "dx count"),
                   (count_offset + 4, 4, "dx block 0")]
        for i in range(1, count):
            fields += [(count_offset + 8 * i, 4, "dx hash %d" % i),
                       (count_offset + 8 * i + 4, 4, "dx block %d" % i)]
        region = (0, count_offset + 8 * max(count, 1))
    else:
        fields += dirent_fields(buf, 0, bs)
        region = (0, bs)
    t = Target("directory", "%s %d of dir inode %d@block %d" % (what, index, ino, blk),
               blk * bs, bs, fields, region=region)
    if img.metadata_csum:
        if count_offset is None:

            def leaf_len(b):
                t0 = bs - 12
                if le32(b, t0) == 0 and le16(b, t0 + 4) == 12 and b[t0 + 6] == 0 \
                        and b[t0 + 7] == 0xDE:
                    return t0
                return None

            t.checksum = tail_checksum_fix(img, ino, leaf_len,
                                           lambda b: None if leaf_len(b) is None else bs - 4)
        else:
            co = count_offset

            def dx_fix(img, before, after):
                raw = img.read(img.inode_offset(ino), img.inode_size)
                seed = img.inode_seed(ino, le32(raw, 0x64))

                def calc(b):
                    limit, count = le16(b, co), le16(b, co + 2)
                    tail = co + 8 * limit
                    if tail + 8 > bs or count > limit:
                        return None, None
                    c = crc32c(seed, b[:co + 8 * count])
                    c = crc32c(c, b[tail:tail + 4])
                    c = crc32c(c, b"\0\0\0\0")
                    return c, tail + 4

                c, at = calc(before)
                if c is None or le32(before, at) != c:
                    return "unverified"
                c, at = calc(after)
                if c is None:
                    return "none"
                struct.pack_into("<I", after, at, c)
                return "fixed"

            t.checksum = dx_fix
    return t


def pick_xattr(img, rng):
    owners = [r for r in img.inodes() if r["file_acl"]]
    if owners:
        rec = rng.choice(owners)
        out = run("debugfs", "-R", "stat <%d>" % rec["ino"], img.path)
        m = re.search(r"File ACL: (\d+)", out)
        blk = int(m.group(1)) if m else rec["file_acl"]
        if blk and blk * img.block_size < img.size:
            buf = img.block(blk)
            fields = list(XATTR_HEADER_FIELDS)
            fields += xattr_entry_fields(buf, 32, img.block_size, "")
            region = (0, 256) if rng.random() < 0.5 else (0, img.block_size)
            t = Target("xattr", "xattr block of inode %d@block %d" % (rec["ino"], blk),
                       blk * img.block_size, img.block_size, fields, region=region)
            if img.metadata_csum:

                def fix(img, before, after):
                    def calc(b):
                        c = crc32c(img.csum_seed, struct.pack("<Q", blk))
                        r = bytearray(b)
                        r[16:20] = b"\0\0\0\0"
                        return crc32c(c, r)

                    if le32(before, 16) != calc(before):
                        return "unverified"
                    struct.pack_into("<I", after, 16, calc(after))
                    return "fixed"

                t.checksum = fix
            return t
    return None


def pick_journal(img, rng):
    if not img.compat & COMPAT_HAS_JOURNAL or not img.journal_inum:
        return None
    jino = img.journal_inum

    def bmap(n):
        out = run("debugfs", "-R", "bmap <%d> %d" % (jino, n), img.path)
        m = re.search(r"^(\d+)\s*$", out, re.M)
        return int(m.group(1)) if m else 0

    jsb_blk = bmap(0)
    if not jsb_blk:
        return None
    jsb = img.block(jsb_blk)
    if be32(jsb, 0) != JBD2_MAGIC:
        return None
    maxlen, first, start = be32(jsb, 0x10), be32(jsb, 0x14), be32(jsb, 0x1C)
    logical = 0
    r = rng.random()
    if start and maxlen:
        phys = [int(x) for x in run("debugfs", "-R", "blocks <%d>" % jino,
                                    img.path).split()]
        log = []
        tagged = []
        n = start
        for _ in range(min(400, maxlen)):
            if n >= len(phys):
                break
            b = img.read(phys[n] * img.block_size, 12)
            log.append(n)
            if be32(b, 0) == JBD2_MAGIC:
                tagged.append(n)
            n += 1
            if n >= maxlen:
                n = first
        # The live log ends a little after its last tagged block.
        end = log.index(tagged[-1]) + 2 if tagged else 16
        if r < 0.25 or not log:
            logical = 0
        elif r < 0.75 and tagged:
            logical = rng.choice(tagged)
        else:
            logical = rng.choice(log[:end])
    elif r >= 0.8:
        logical = rng.randrange(1, min(64, maxlen or 64))
    blk = bmap(logical) if logical else jsb_blk
    if not blk:
        blk, logical = jsb_blk, 0
    buf = img.block(blk)
    if logical == 0:
        fields = JOURNAL_SB_FIELDS
        what = "journal superblock"
        region = (0, 0x100)
    else:
        fields = list(JOURNAL_HEADER_FIELDS)
        if be32(buf, 0) == JBD2_MAGIC:
            btype = be32(buf, 4)
            what = {1: "journal descriptor block", 2: "journal commit block",
                    5: "journal revoke block"}.get(btype, "journal block type %d" % btype)
            fields += [(o, 4, "word at +%d" % o) for o in range(12, 96, 4)]
            region = (0, 128) if rng.random() < 0.7 else (0, img.block_size)
        else:
            what = "journal data block"
            fields += [(o, 4, "word at +%d" % o) for o in range(12, 64, 4)]
            region = (0, img.block_size)
    return Target("journal", "%s (journal block %d)@block %d" % (what, logical, blk),
                  blk * img.block_size, img.block_size, fields, region=region,
                  big_endian=True)


PICKERS = {
    "superblock": pick_superblock,
    "gdt": pick_gdt,
    "block_bitmap": lambda img, rng: pick_bitmap(img, rng, "block_bitmap"),
    "inode_bitmap": lambda img, rng: pick_bitmap(img, rng, "inode_bitmap"),
    "inode_table": pick_inode,
    "extent": pick_extent,
    "directory": pick_directory,
    "xattr": pick_xattr,
    "journal": pick_journal,
}

# ------------------------------------------------------------- corruptions


def field_name(t, off):
    for fo, fs, fn in t.fields:
        if fo <= off < fo + fs:
            return fn
    return None


def corrupt(t, buf, rng):
    """Changes buf (the structure's bytes); returns (op, detail)."""
    lo, hi = t.region
    hi = min(hi, len(buf))
    if hi <= lo:
        lo, hi = 0, len(buf)
    fields = [f for f in t.fields if f[0] + f[1] <= len(buf)]
    op = rng.choice(("bitflip", "random", "zero", "extreme"))
    if op == "bitflip":
        n = rng.randint(1, 8)
        if fields and rng.random() < 0.5:
            fo, fs, _ = rng.choice(fields)
            span = (fo, fo + fs)
        else:
            span = (lo, hi)
        bits = set()
        while len(bits) < min(n, 8 * (span[1] - span[0])):
            bits.add((rng.randrange(span[0], span[1]), rng.randrange(8)))
        for o, b in sorted(bits):
            buf[o] ^= 1 << b
        return op, "%d bit%s at %s" % (len(bits), "s" * (len(bits) > 1),
                                       " ".join("+0x%x.%d" % x for x in sorted(bits)))
    if op == "random":
        length = rng.choice((1, 2, 4, 8, 16, 32, 64, rng.randint(1, hi - lo)))
        length = max(1, min(length, hi - lo))
        at = rng.randrange(lo, hi - length + 1)
        for _ in range(8):
            data = bytes(rng.randrange(256) for _ in range(length))
            if data != bytes(buf[at:at + length]):
                break
        buf[at:at + length] = data
        return op, "%d random byte%s at +0x%x" % (length, "s" * (length > 1), at)
    # zero / extreme: a field.
    for _ in range(16):
        if fields and rng.random() < 0.85:
            fo, fs, fn = rng.choice(fields)
        else:
            fs = rng.choice((2, 4, 8))
            fo = rng.randrange(lo, max(lo + 1, hi - fs + 1)) & ~(fs - 1)
            if fo + fs > len(buf):
                continue
            fn = field_name(t, fo) or "bytes"
        if op == "zero":
            if any(buf[fo:fo + fs]):
                buf[fo:fo + fs] = bytes(fs)
                return op, "%d bytes at +0x%x (%s)" % (fs, fo, fn)
            continue
        if fs == 1:
            continue
        width = 2 if fs == 2 else 4
        values = (0, 0xFFFF) if width == 2 else (0, 0xFFFF, 0xFFFFFFFF)
        value = rng.choice(values)
        fmt = (">" if t.big_endian else "<") + ("H" if width == 2 else "I")
        old = struct.unpack_from(fmt, buf, fo)[0]
        if old == value:
            continue
        struct.pack_into(fmt, buf, fo, value)
        return op, "%d-bit field at +0x%x (%s) = 0x%x (was 0x%x)" % (
            8 * width, fo, fn, value, old)
    # Nothing suitable: flip one bit in the region.
    o, b = rng.randrange(lo, hi), rng.randrange(8)
    buf[o] ^= 1 << b
    return "bitflip", "1 bit at +0x%x.%d" % (o, b)


def corrupt_one(img, rng, first):
    """Corrupts one structure, of KINDS[first] or the next kind that has
    one; returns its description."""
    t = None
    for i in range(len(KINDS)):
        kind = KINDS[(first + i) % len(KINDS)]
        t = PICKERS[kind](img, rng)
        if t is not None:
            break
    if t is None:
        raise Error("no metadata found to corrupt")
    before = img.read(t.start, t.length)
    after = bytearray(before)
    op, detail = corrupt(t, after, rng)
    csum = "none"
    if t.checksum is not None:
        if rng.random() < 0.25:
            csum = "stale"
        else:
            csum = t.checksum(img, bytes(before), after)
    img.write(t.start, after)
    changed = [i for i in range(len(before)) if before[i] != after[i]]
    return {
        "kind": t.kind,
        "where": t.where,
        "offset": t.start,
        "length": t.length,
        "op": op,
        "detail": detail,
        "csum": csum,
        "changed": [{"offset": t.start + i, "old": before[i], "new": after[i]}
                    for i in changed[:256]],
        "description": "kind=%s %s: %s %s csum=%s" % (t.kind, t.where, op, detail,
                                                     csum),
    }


def main():
    ap = argparse.ArgumentParser(
        description="Applies seeded corruptions to an ext2/3/4 image's metadata.")
    ap.add_argument("image")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--target", choices=KINDS,
                    help="the kind of structure (default: KINDS[seed %% 9])")
    ap.add_argument("--count", type=int, default=1,
                    help="how many structures to corrupt (default 1); the "
                    "first as without it, the others of random kinds")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    if args.count < 1:
        ap.error("--count must be at least 1")

    rng = random.Random(args.seed)
    done = []
    try:
        img = Image(args.image)
        first = KINDS.index(args.target) if args.target else args.seed % len(KINDS)
        for n in range(args.count):
            done.append(corrupt_one(img, rng, first if n == 0 else
                                    rng.randrange(len(KINDS))))
        img.f.close()
    except (Error, OSError, struct.error) as e:
        print("corrupt_image.py: %s" % e, file=sys.stderr)
        return 1
    desc = "seed=%d %s" % (args.seed, "; ".join(d["description"] for d in done))
    if args.json:
        # The first corruption's fields at the top, every one in the list.
        out = {"seed": args.seed}
        out.update(done[0])
        out["description"] = desc
        out["corruptions"] = done
        print(json.dumps(out))
    else:
        print(desc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
