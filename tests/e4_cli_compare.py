#!/usr/bin/env python3
"""Compares what `e4` shows of an image with what e2fsprogs shows of it.

    e4_cli_compare.py E4 IMAGE ls PATH...        e4 ls -lai vs debugfs ls -l
    e4_cli_compare.py E4 IMAGE stat PATH...      e4 stat --json vs debugfs stat
    e4_cli_compare.py E4 IMAGE cat PATH...       e4 cat vs debugfs cat (sha256)
    e4_cli_compare.py E4 IMAGE extents PATH...   e4 extents vs debugfs stat's
                                                 block list (data and tree or
                                                 indirect blocks)
    e4_cli_compare.py E4 IMAGE htree DIR         e4 htree vs debugfs htree_dump
    e4_cli_compare.py E4 IMAGE info              e4 info --json vs dumpe2fs -h

Used by e4_cli_test.sh. Prints one line per difference and exits 1 if there
is any, 0 when everything agrees (with a summary line), 2 on a usage error or
when a tool fails. Run with TZ=UTC: both tools print times in local time.
"""

import datetime
import hashlib
import json
import os
import re
import subprocess
import sys

DEBUGFS = "debugfs"
DUMPE2FS = "dumpe2fs"


class Failed(Exception):
    pass


def run(args, binary=False):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise Failed("%s exited %d: %s" % (" ".join(args[:3]), p.returncode,
                                           p.stderr.decode(errors="replace").strip()))
    return p.stdout if binary else p.stdout.decode("utf-8", errors="surrogateescape")


def debugfs(image, commands):
    """Runs debugfs commands in one session; returns {index: output}."""
    script = "".join("%s\n" % c for c in commands)
    p = subprocess.run([DEBUGFS, "-f", "-", image], input=script.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = p.stdout.decode("utf-8", errors="surrogateescape")
    # Each command's output follows a "debugfs: COMMAND" echo line.
    parts = re.split(r"^debugfs: .*$\n?", out, flags=re.M)[1:]
    if len(parts) != len(commands):
        raise Failed("debugfs gave %d outputs for %d commands: %s"
                     % (len(parts), len(commands), p.stderr.decode(errors="replace")))
    return parts


def quote(path):
    return '"%s"' % path.replace('"', '\\"')


TYPE_CHARS = {"-": 0o100000, "d": 0o040000, "l": 0o120000, "c": 0o020000,
              "b": 0o060000, "p": 0o010000, "s": 0o140000}


def mode_from_string(s):
    mode = TYPE_CHARS[s[0]]
    bits = [0o400, 0o200, 0o100, 0o040, 0o020, 0o010, 0o004, 0o002, 0o001]
    for i, b in enumerate(bits):
        c = s[1 + i]
        if c in "rwx":
            mode |= b
        elif c in "sStT":
            if c in "st":
                mode |= b
            mode |= {2: 0o4000, 5: 0o2000, 8: 0o1000}[i]
    return mode


class Report:
    def __init__(self):
        self.diffs = 0
        self.checked = 0

    def diff(self, where, what):
        self.diffs += 1
        print("DIFF %s: %s" % (where, what))


# --- ls ---------------------------------------------------------------------

E4_LS = re.compile(r"^\s*(\d+) ([-dlcbps?][-rwxsStT]{9}) +(\d+) +(\d+) +(\d+) "
                   r"+(\d+|\d+, +\d+) (\d{4}-\d\d-\d\d \d\d:\d\d) (.*)$")
DEBUGFS_LS = re.compile(r"^\s*(\d+)\s+(\d+)\s+\((\d+)\)\s+(\d+)\s+(\d+)\s+(\d+)\s+"
                        r"(\d+-\w+-\d+ \d\d:\d\d) (.*)$")


def debugfs_name(text):
    """debugfs writes bytes outside printable ASCII as \\xHH."""
    raw = re.sub(rb"\\x([0-9a-f]{2})", lambda m: bytes([int(m.group(1), 16)]),
                 text.encode("utf-8", errors="surrogateescape"))
    return raw.decode("utf-8", errors="surrogateescape")


def minutes(date):
    return int(datetime.datetime.strptime(date, "%Y-%m-%d %H:%M")
               .replace(tzinfo=datetime.timezone.utc).timestamp()) // 60


def check_ls(e4, image, paths, report):
    outs = debugfs(image, ["ls -l %s" % quote(p) for p in paths])
    for path, dbg in zip(paths, outs):
        mine = {}
        for line in run([e4, "ls", "-lai", "%s:%s" % (image, path)]).splitlines():
            m = E4_LS.match(line)
            if not m:
                report.diff(path, "unparsed e4 ls line %r" % line)
                continue
            ino, mode_s, _nlink, uid, gid, size, date, name = m.groups()
            mode = mode_from_string(mode_s)
            if (mode & 0o170000) == 0o120000:
                name = name.split(" -> ", 1)[0]
            mine[name] = (int(ino), mode, int(uid), int(gid),
                          size if "," not in size else None, date)
        theirs = {}
        for line in dbg.splitlines():
            if not line.strip() or re.match(r"^\s*0\s", line):
                continue  # unused records (inode 0) debugfs shows too
            m = DEBUGFS_LS.match(line)
            if not m:
                report.diff(path, "unparsed debugfs ls line %r" % line)
                continue
            ino, mode, _ft, uid, gid, size, date, name = m.groups()
            name = debugfs_name(name)
            mode = int(mode, 8)
            d = datetime.datetime.strptime(date, "%d-%b-%Y %H:%M")
            is_dev = (mode & 0o170000) in (0o020000, 0o060000)
            theirs[name] = (int(ino), mode, int(uid), int(gid),
                            None if is_dev else size, d.strftime("%Y-%m-%d %H:%M"))
        for name in sorted(set(mine) | set(theirs)):
            report.checked += 1
            if name not in mine:
                report.diff(path, "e4 ls lacks %r" % name)
            elif name not in theirs:
                report.diff(path, "e4 ls has %r, debugfs does not" % name)
            elif mine[name][:5] == theirs[name][:5] and \
                    abs(minutes(theirs[name][5]) - minutes(mine[name][5]) - (1 << 32) / 60) < 2 and \
                    minutes(mine[name][5]) < 0:
                # debugfs's ls reads a time before 1970 as unsigned (2096
                # for 1960); e4 keeps the sign, as the kernel does.
                pass
            elif mine[name] != theirs[name]:
                report.diff("%s/%s" % (path, name), "e4 %s, debugfs %s"
                            % (mine[name], theirs[name]))


# --- stat -------------------------------------------------------------------

DEBUGFS_TYPES = {"regular": "file", "directory": "dir", "symlink": "symlink",
                 "FIFO": "fifo", "socket": "socket", "character special": "chardev",
                 "block special": "blockdev"}


def signed32(v):
    return v - (1 << 32) if v & 0x80000000 else v


def parse_debugfs_stat(text):
    st = {"xattrs": {}}
    m = re.search(r"Inode: (\d+)\s+Type: ([\w ]+?)\s+Mode:\s+(\d+)\s+Flags: (0x[0-9a-f]+)", text)
    st["ino"], st["type"] = int(m.group(1)), DEBUGFS_TYPES.get(m.group(2), m.group(2))
    st["mode"], st["flags"] = int(m.group(3), 8), int(m.group(4), 16)
    st["generation"] = int(re.search(r"Generation: (\d+)", text).group(1))
    m = re.search(r"User:\s+(\d+)\s+Group:\s+(\d+)\s+(?:Project:\s+(\d+)\s+)?Size: (\d+)", text)
    st["uid"], st["gid"], st["size"] = int(m.group(1)), int(m.group(2)), int(m.group(4))
    if m.group(3) is not None:
        st["projid"] = int(m.group(3))
    st["file_acl"] = int(re.search(r"File ACL: (\d+)", text).group(1))
    m = re.search(r"Links: (\d+)\s+Blockcount: (\d+)", text)
    st["nlink"], st["blocks"] = int(m.group(1)), int(m.group(2))
    for m in re.finditer(r"^\s*(a|c|m|cr)time: 0x([0-9a-f]+)(?::([0-9a-f]+))?", text, re.M):
        lo = signed32(int(m.group(2), 16))
        extra = int(m.group(3), 16) if m.group(3) else 0
        st[m.group(1) + "time"] = (lo + ((extra & 3) << 32), extra >> 2)
    m = re.search(r"Size of extra inode fields: (\d+)", text)
    st["extra_isize"] = int(m.group(1)) if m else 0
    m = re.search(r"^Extended attributes:\n((?:  .*\n?)*)", text, re.M)
    if m:
        for line in m.group(1).splitlines():
            x = re.match(r"  (\S+) \((\d+)\)", line)
            if x and x.group(1) != "system.data":  # inline data, not listed
                st["xattrs"][x.group(1)] = int(x.group(2))
    m = re.search(r"Device major/minor number: (\d+):(\d+)", text)
    if m:
        st["rdev"] = (int(m.group(1)), int(m.group(2)))
    m = re.search(r'Fast link dest: "(.*)"', text)
    if m:
        st["fast_target"] = m.group(1)
    return st


def check_stat(e4, image, paths, report):
    outs = debugfs(image, ["stat %s" % quote(p) for p in paths])
    mine_all = json.loads(run([e4, "stat", "--json"] + ["%s:%s" % (image, p) for p in paths]))
    if isinstance(mine_all, dict):
        mine_all = [mine_all]
    for path, dbg, mine in zip(paths, outs, mine_all):
        report.checked += 1
        try:
            theirs = parse_debugfs_stat(dbg)
        except AttributeError:
            report.diff(path, "unparsed debugfs stat: %r" % dbg[:200])
            continue
        got = {
            "ino": mine["ino"], "type": mine["type"],
            "mode": int(mine["mode"], 8), "flags": mine["flags"],
            "generation": mine["generation"], "uid": mine["uid"], "gid": mine["gid"],
            "size": mine["size"], "file_acl": mine["file_acl"], "nlink": mine["nlink"],
            "blocks": mine["blocks"], "extra_isize": mine["extra_isize"],
            "xattrs": {x["name"]: x["size"] for x in mine["xattrs"]},
        }
        want = {k: theirs[k] for k in got}
        if "projid" in theirs:
            got["projid"], want["projid"] = mine["projid"], theirs["projid"]
        for t in ("atime", "mtime", "ctime", "crtime"):
            if t in theirs:
                got[t] = (mine[t]["sec"], mine[t]["nsec"])
                want[t] = theirs[t]
            elif t in mine and t != "crtime":
                report.diff(path, "debugfs shows no %s" % t)
        if "rdev" in theirs or "rdev" in mine:
            got["rdev"] = (mine["rdev"]["major"], mine["rdev"]["minor"]) if "rdev" in mine else None
            want["rdev"] = theirs.get("rdev")
        if "fast_target" in theirs:
            got["target"], want["target"] = mine.get("target"), theirs["fast_target"]
        for k in sorted(got):
            if got[k] != want[k]:
                report.diff(path, "%s: e4 %r, debugfs %r" % (k, got[k], want[k]))


# --- cat --------------------------------------------------------------------

def check_cat(e4, image, paths, report):
    sizes = json.loads(run([e4, "stat", "--json", "-L"] + ["%s:%s" % (image, p) for p in paths]))
    if isinstance(sizes, dict):
        sizes = [sizes]
    for path, st in zip(paths, sizes):
        report.checked += 1
        mine = hashlib.sha256(run([e4, "cat", "%s:%s" % (image, path)], binary=True)).hexdigest()
        data = run([DEBUGFS, "-R", "cat %s" % quote(path), image], binary=True)
        if "inline_data" in st.get("flag_names", []):
            # debugfs 1.47 dumps the inline data area as it is, whatever
            # i_size says; a file longer than its inline data reads as zeros
            # past it (as the kernel reads it).
            data = data[:st["size"]] + bytes(max(0, st["size"] - len(data)))
        theirs = hashlib.sha256(data).hexdigest()
        if mine != theirs:
            report.diff(path, "contents differ: e4 %s, debugfs %s" % (mine[:16], theirs[:16]))


# --- extents ----------------------------------------------------------------

E4_RUN = re.compile(r"logical (\d+)(?:-(\d+))? -> physical (\d+)(?:-(\d+))?")
E4_NODE = re.compile(r"node at block (\d+):")
E4_INDIRECT = re.compile(r"^indirect blocks \(\d+\): (.*)$", re.M)
DEBUGFS_ITEM = re.compile(r"\((\w+?)(?:-(\d+))?\)(?:\[u\])?:(\d+)(?:-(\d+))?")


def expand(first, last):
    first = int(first)
    return range(first, int(last) + 1 if last else first + 1)


def check_extents(e4, image, paths, report):
    outs = debugfs(image, ["stat %s" % quote(p) for p in paths])
    for path, dbg in zip(paths, outs):
        report.checked += 1
        text = run([e4, "extents", "%s:%s" % (image, path)])
        mine_data, mine_meta = set(), set()
        for m in E4_RUN.finditer(text):
            ls, ps = expand(m.group(1), m.group(2)), expand(m.group(3), m.group(4))
            mine_data.update(zip(ls, ps))
        for m in E4_NODE.finditer(text):
            mine_meta.add(int(m.group(1)))
        for m in E4_INDIRECT.finditer(text):
            for part in m.group(1).split(", "):
                a, _, b = part.partition("-")
                mine_meta.update(expand(a, b or None))
        block_list = re.search(r"^(?:BLOCKS|EXTENTS):\n(.*)$", dbg, re.M)
        theirs_data, theirs_meta = set(), set()
        if block_list:
            for m in DEBUGFS_ITEM.finditer(block_list.group(1)):
                what, last, p1, p2 = m.groups()
                if what.isdigit():
                    theirs_data.update(zip(expand(what, last), expand(p1, p2)))
                else:  # IND, DIND, TIND, ETBn
                    theirs_meta.update(expand(p1, p2))
        if mine_data != theirs_data:
            only_e4 = sorted(mine_data - theirs_data)[:5]
            only_dbg = sorted(theirs_data - mine_data)[:5]
            report.diff(path, "data blocks differ: only e4 %s, only debugfs %s" % (only_e4, only_dbg))
        if mine_meta != theirs_meta:
            report.diff(path, "tree/indirect blocks: e4 %s, debugfs %s"
                        % (sorted(mine_meta)[:10], sorted(theirs_meta)[:10]))


# --- htree ------------------------------------------------------------------

def check_htree(e4, image, paths, report):
    for path in paths:
        report.checked += 1
        text = run([e4, "htree", "%s:%s" % (image, path)])
        mine = [(int(h, 16), int(b)) for h, b in
                re.findall(r"entry \d+: hash 0x([0-9a-f]+) -> block (\d+)", text)]
        dbg = run([DEBUGFS, "-R", "htree_dump %s" % quote(path), image])
        theirs = [(int(h, 16), int(b)) for h, b in
                  re.findall(r"Entry #\d+: Hash 0x([0-9a-f]+), block (\d+)", dbg)]
        if not mine:
            report.diff(path, "e4 htree shows no index entries")
        if sorted(set(mine)) != sorted(set(theirs)):
            report.diff(path, "index entries differ: e4 %d, debugfs %d" % (len(set(mine)), len(set(theirs))))
        m = re.search(r"total: \d+ leaf blocks, (\d+) names, (\d+) problems", text)
        if not m or m.group(2) != "0":
            report.diff(path, "e4 htree found problems: %s" % (m.group(0) if m else text[-200:]))
        names = len(re.findall(r"0x[0-9a-f]{8}-[0-9a-f]{8} \(\d+\) ", dbg))
        if m and names and int(m.group(1)) != names:
            report.diff(path, "names in leaves: e4 %s, debugfs %d" % (m.group(1), names))


# --- info -------------------------------------------------------------------

def check_info(e4, image, report):
    mine = json.loads(run([e4, "info", "--json", image]))
    sb = mine["superblock"]
    dump = run([DUMPE2FS, "-h", image])
    theirs = {}
    for line in dump.splitlines():
        k, sep, v = line.partition(":")
        if sep:
            theirs[k.strip()] = v.strip()
    pairs = [("Inode count", "inodes_count"), ("Block count", "blocks_count"),
             ("Reserved block count", "r_blocks_count"), ("Free blocks", "free_blocks_count"),
             ("Free inodes", "free_inodes_count"), ("First block", "first_data_block"),
             ("Block size", "block_size"), ("Blocks per group", "blocks_per_group"),
             ("Inodes per group", "inodes_per_group"), ("Inode blocks per group", "inode_blocks_per_group"),
             ("Filesystem UUID", "uuid"), ("Inode size", "inode_size"), ("First inode", "first_inode"),
             ("Reserved GDT blocks", "reserved_gdt_blocks"), ("Journal inode", "journal_inum"),
             ("Filesystem volume name", "volume_name"), ("Filesystem magic number", "magic"),
             ("Mount count", "mnt_count"), ("Maximum mount count", "max_mnt_count"),
             ("Default directory hash", "def_hash_version"), ("Directory Hash Seed", "hash_seed"),
             ("Group descriptor size", "desc_size"), ("Flex block group size", "flex_bg_size")]
    for label, key in pairs:
        if label not in theirs and key not in sb:
            continue
        report.checked += 1
        if str(sb.get(key)) != theirs.get(label):
            report.diff("info", "%s: e4 %r, dumpe2fs %r" % (label, sb.get(key), theirs.get(label)))
    report.checked += 1
    features = set(theirs.get("Filesystem features", "").split())
    if set(mine["features"]) != features:
        report.diff("info", "features: e4 %s, dumpe2fs %s" % (sorted(mine["features"]), sorted(features)))
    # Per-group free counts must add up to what dumpe2fs -h shows for the
    # whole filesystem (the superblock counters of a clean image).
    groups = mine.get("groups", [])
    report.checked += 1
    if sum(g.get("free_inodes", 0) for g in groups) != sb["free_inodes_count"]:
        report.diff("info", "group free inode counts do not add up")


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    e4, image, what, paths = argv[1], argv[2], argv[3], argv[4:]
    report = Report()
    checks = {"ls": check_ls, "stat": check_stat, "cat": check_cat,
              "extents": check_extents, "htree": check_htree}
    try:
        if what == "info":
            check_info(e4, image, report)
        elif what in checks:
            checks[what](e4, image, paths, report)
        else:
            print("unknown check %r" % what, file=sys.stderr)
            return 2
    except Failed as e:
        print("ERROR %s" % e)
        return 2
    if report.diffs:
        print("%s %s: %d difference(s) in %d checks" % (os.path.basename(image), what,
                                                         report.diffs, report.checked))
        return 1
    print("%s %s: e4 and e2fsprogs agree (%d checks)" % (os.path.basename(image), what,
                                                         report.checked))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
