#!/usr/bin/env bash
# e4_cli_test.sh [E4]
#
# The e4 tool, without mounting anything and without root:
#  1. read-only commands on images mke2fs made from testdata/make_tree.sh's
#     tree (ext4, inline_data, 1 KiB blocks with ea_inode, 128-byte inodes,
#     bigalloc, ext3, ext2): `e4 ls -l`, `e4 stat`, `e4 cat`, `e4 extents`,
#     `e4 htree` (after e2fsck -D built the indexes) and `e4 info` agree
#     with debugfs and dumpe2fs (tests/e4_cli_compare.py), `e4 get` of the
#     whole image gives back the tree (tests/compare_tree.py), and none of
#     it changes a byte of the image;
#  2. `e4 put` of the tree into fresh images, then `e4 get`, round-trips it
#     exactly; every image e4 wrote is e2fsck-clean and marked clean, and
#     debugfs agrees with e4 on it;
#  3. mkdir, rm, mv, ln, chmod, chown, setfattr and getfattr, each checked
#     with debugfs and e2fsck;
#  4. every subcommand's --help exits 0; usage errors exit 1 with a hint,
#     other failures exit 2 with a message naming the path; the progress
#     bar appears only when asked for (stderr is not a terminal here).
#
# Run as root the tree holds everything (devices, foreign owners); otherwise
# the parts that need no privilege are built here instead.
# The binary: $1, else $E4, else `e4` on the PATH. KEEP=1 keeps the work
# directory. Prints PASS/FAIL lines; exits 1 if anything failed.
set -uo pipefail

source "$(dirname "$0")/testlib.sh"

E4=${1:-${E4:-e4}}
if [[ $E4 != */* ]]; then
  E4=$(command -v "$E4") || { echo "FAIL: e4 binary not found (pass it as \$1)"; exit 1; }
fi
E4=$(realpath "$E4")
[ -x "$E4" ] || { echo "FAIL: $E4 is not executable"; exit 1; }
for t in mke2fs e2fsck debugfs dumpe2fs python3 sha256sum; do
  command -v "$t" >/dev/null 2>&1 || skip "$t is not installed"
done
compare_tree=$(runfile tests/compare_tree.py) || exit 1
compare_cli=$(runfile tests/e4_cli_compare.py) || exit 1
make_tree=$(runfile testdata/make_tree.sh) || exit 1

export TZ=UTC LC_ALL=C
work=$(make_workdir e4cli) || exit 1
cleanup() {
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
echo "binary under test: $E4"
echo "work directory: $work"

failures=0
pass() { echo "PASS $*"; }
fail() {
  echo "FAIL $*"
  failures=$((failures + 1))
}
# check NAME COMMAND...: PASS when the command succeeds, else FAIL with its
# output (indented).
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    pass "$name"
  else
    fail "$name"
    printf '%s\n' "$out" | head -40 | sed 's/^/    /'
  fi
}
# fsck_clean NAME IMAGE: e2fsck -fn finds nothing and the image is marked
# clean with an empty journal.
fsck_clean() {
  local name=$1 img=$2 out state
  if ! out=$(e2fsck -fn "$img" 2>&1); then
    fail "$name: e2fsck -fn"
    printf '%s\n' "$out" | head -30 | sed 's/^/    /'
    return 1
  fi
  state=$(dumpe2fs -h "$img" 2>/dev/null)
  if ! grep -q '^Filesystem state: *clean$' <<<"$state" ||
    grep -q '^Filesystem features:.*needs_recovery' <<<"$state"; then
    fail "$name: image not marked clean: $(grep -e '^Filesystem state' -e '^Filesystem features' <<<"$state")"
    return 1
  fi
  return 0
}

# ---------------------------------------------------------------- tree ----

src=$work/src
if [ "$(id -u)" -eq 0 ]; then
  "$make_tree" "$src" >/dev/null || { echo "FAIL: make_tree.sh"; exit 1; }
else
  echo "NOTE: not root: the tree has no devices and no foreign owners"
  mkdir -p "$src"
  python3 - "$src" <<'EOF' || { echo "FAIL: building the tree"; exit 1; }
# What testdata/make_tree.sh makes, less what needs privileges.
import os, random, socket, sys
root = sys.argv[1]
os.chdir(root)
rng = random.Random(20240229)
def pattern(n, tag):
    unit = bytes((i * 7 + tag) % 251 + 1 for i in range(4096))
    return (unit * (n // len(unit) + 1))[:n]
def write(p, data):
    with open(p, "wb") as f:
        f.write(data)
os.makedirs("sizes")
for n in (0, 1, 4095, 4096, 4097, (1 << 20) + 7):
    write("sizes/%d" % n, pattern(n, n % 13))
write("sizes/random_300k", rng.randbytes(300 * 1024))
os.makedirs("bigdir")
for i in range(20000):
    os.close(os.open("bigdir/%d" % i, os.O_CREAT | os.O_WRONLY, 0o644))
os.makedirs("names")
for name in ("n" * 255, "é", "日本語", "emoji_😀🎉", "with space", "-dash", "dot.in.name"):
    write(os.path.join("names", name), name.encode() + b"\n")
p = "deep"
for i in range(1, 31):
    p = os.path.join(p, "d%02d" % i)
os.makedirs(p)
write(os.path.join(p, "leaf"), b"30 levels down\n")
os.makedirs("sparse")
with open("sparse/holes_past_4g", "wb") as f:
    f.truncate((4 << 30) + (1 << 20))
    f.write(b"head of the sparse file\n")
    f.seek(1 << 20); f.write(b"one mebibyte in\n")
    f.seek(((4 << 30) // 4096 + 3) * 4096); f.write(b"past four gibibytes\n")
with open("sparse/all_hole", "wb") as f:
    f.truncate(10 << 20)
os.makedirs("symlinks")
os.symlink("../sizes/4096", "symlinks/fast")
os.symlink("e" * 59, "symlinks/len59")
os.symlink("f" * 60, "symlinks/len60")
os.symlink("".join("component%02d/" % i for i in range(1, 17)) + "end", "symlinks/long")
os.symlink("does/not/exist", "symlinks/dangling")
os.symlink("../sizes", "symlinks/to_dir")
os.makedirs("hardlinks/a"); os.makedirs("hardlinks/b")
write("hardlinks/a/orig", b"one inode, three names\n")
os.link("hardlinks/a/orig", "hardlinks/a/second")
os.link("hardlinks/a/orig", "hardlinks/b/third")
os.makedirs("special")
os.mkfifo("special/fifo")
socket.socket(socket.AF_UNIX).bind("special/socket")
os.makedirs("modes")
# (Mode 0000 would make the file unreadable without root.)
for n, m in (("setuid", 0o4755), ("setgid", 0o2755), ("owner_read", 0o400), ("all", 0o777)):
    write("modes/" + n, b"x\n"); os.chmod("modes/" + n, m)
for n, m in (("sticky_dir", 0o1777), ("setgid_dir", 0o2775)):
    os.makedirs("modes/" + n); os.chmod("modes/" + n, m)
os.makedirs("xattrs/dir_with_xattr")
large = "".join(chr(97 + (i * 7) % 26) for i in range(3000)).encode()
for n in ("small", "large", "both"):
    write("xattrs/" + n, n.encode() + b"\n")
os.setxattr("xattrs/small", "user.small", b"hi")
os.setxattr("xattrs/large", "user.large", large)
os.setxattr("xattrs/both", "user.small", b"hi")
os.setxattr("xattrs/both", "user.large", large)
os.setxattr("xattrs/both", "user.empty", b"")
os.setxattr("xattrs/dir_with_xattr", "user.dir", b"on-a-directory")
os.makedirs("empty_dir")
os.makedirs("times")
for t in ("1960", "1990", "2040", "ns"):
    write("times/" + t, t.encode() + b"\n")
T = 10**18
for r, dirs, files in os.walk(".", topdown=False):
    for n in files + dirs:
        os.utime(os.path.join(r, n), ns=(T, T), follow_symlinks=False)
for n, sec, ns in (("1960", -301492800, 0), ("1990", 631152000, 0),
                   ("2040", 2208988800, 0), ("ns", 1577836800, 123456789)):
    t = sec * 10**9 + ns
    os.utime("times/" + n, ns=(t, t))
os.utime("times", ns=(T, T))
EOF
fi
# Extras for e4 extents: a file of 600 one-block extents (an extent tree
# with index blocks), and 256 KiB of written zeros (put leaves them holes).
mkdir -p "$src/extra"
python3 - "$src/extra" <<'EOF'
import os, sys
with open(os.path.join(sys.argv[1], "frag"), "wb") as f:
    for i in range(600):
        f.seek(i * 65536)
        f.write(b"%d\n" % i)
with open(os.path.join(sys.argv[1], "zeros"), "wb") as f:
    f.write(bytes(256 * 1024))
EOF
touch -h -d @1000000000 "$src/extra/frag" "$src/extra/zeros" "$src/extra" "$src"

# make_lists TREE TAG: the paths the comparisons look at, in arrays
# TAG_dirs, TAG_entries, TAG_files and TAG_mapped: every directory but those
# under deep/d05; every entry outside bigdir plus two inside it; regular
# files under 64 MiB for cat; files, directories and slow symlinks for
# extents.
make_lists() {
  python3 - "$1" "$work/$2" <<'EOF2' || { echo "FAIL: listing $1"; exit 1; }
import os, stat, sys
src, prefix = sys.argv[1], sys.argv[2]
dirs, entries, files, mapped = ["/"], ["/"], [], []
for root, ds, fs in os.walk(src):
    rel = "/" + os.path.relpath(root, src) if root != src else ""
    if rel.startswith("/deep/d01/d02/d03/d04/d05"):
        continue
    for n in sorted(ds + fs):
        p = rel + "/" + n
        if rel == "/bigdir" and n not in ("0", "19999"):
            continue
        st = os.lstat(os.path.join(root, n))
        entries.append(p)
        if stat.S_ISDIR(st.st_mode):
            dirs.append(p)
            mapped.append(p)
        elif stat.S_ISREG(st.st_mode):
            mapped.append(p)
            if st.st_size < (64 << 20):
                files.append(p)
        elif stat.S_ISLNK(st.st_mode) and st.st_size >= 60:
            mapped.append(p)
for name, items in (("dirs", dirs), ("entries", entries), ("files", files),
                    ("mapped", mapped)):
    with open(prefix + "." + name, "w") as f:
        f.write("\n".join(items) + "\n")
EOF2
  local kind
  for kind in dirs entries files mapped; do
    mapfile -t "${2}_$kind" <"$work/$2.$kind"
  done
}
make_lists "$src" full
echo "tree: ${#full_entries[@]} entries compared, ${#full_dirs[@]} directories listed"

# agree IMAGE LABEL [TAG]: e4 and e2fsprogs show the same things of IMAGE
# (the paths of make_lists TAG, by default those of the whole tree).
agree() {
  local img=$1 label=$2 tag=${3:-full}
  local -n dirs=${tag}_dirs entries=${tag}_entries files=${tag}_files mapped=${tag}_mapped
  check "$label: e4 ls -l = debugfs ls -l" python3 "$compare_cli" "$E4" "$img" ls "${dirs[@]}"
  check "$label: e4 stat = debugfs stat" python3 "$compare_cli" "$E4" "$img" stat "${entries[@]}"
  check "$label: e4 cat = debugfs cat" python3 "$compare_cli" "$E4" "$img" cat "${files[@]}"
  check "$label: e4 extents = debugfs block lists" python3 "$compare_cli" "$E4" "$img" extents "${mapped[@]}"
  check "$label: e4 info = dumpe2fs -h" python3 "$compare_cli" "$E4" "$img" info
}

# remove ROOT REL...: removes ROOT/REL..., keeping the parents' times.
remove() {
  python3 - "$@" <<'EOF2'
import os, shutil, sys
root = sys.argv[1]
for rel in sys.argv[2:]:
    p = os.path.join(root, rel)
    parent = os.path.dirname(p)
    st = os.stat(parent)
    if os.path.isdir(p) and not os.path.islink(p):
        shutil.rmtree(p)
    elif os.path.lexists(p):
        os.unlink(p)
    os.utime(parent, ns=(st.st_atime_ns, st.st_mtime_ns))
EOF2
}
# without REL...: a copy of the tree without REL... (made once per list),
# for comparisons where mke2fs -d (not e4) loses something; prints its path.
without() {
  [ $# -eq 0 ] && { echo "$src"; return; }
  local dir
  dir=$work/without.$(echo "$*" | tr ' /' '_-')
  if [ ! -d "$dir" ]; then
    cp -a "$src" "$dir"
    remove "$dir" "$@"
  fi
  echo "$dir"
}

# -------------------------------------------------- 1. read-only commands ----

# name | mke2fs -t | options | compare_tree flags | what mke2fs -d loses
ro_configs=(
  "ext4|ext4|||times/ns times/2040"
  "ext4-inline_data|ext4|-O inline_data||times/ns times/2040 sparse"
  "ext4-1k-ea_inode|ext4|-b 1024 -O ea_inode||times/ns times/2040"
  "ext4-128-inodes|ext4|-I 128|--mtime-precision=s --mtime-32bit|"
  "ext4-bigalloc|ext4|-O bigalloc -C 16384||times/ns times/2040"
  "ext3|ext3|||times/ns times/2040"
  "ext2|ext2|||times/ns times/2040"
)
# Images are made in the background, two at a time.
build_image() { # NAME TYPE OPTS
  local img=$work/$1.img log=$work/$1.mkfs
  # shellcheck disable=SC2086
  if ! mke2fs -q -F -t "$2" $3 -N 40000 -d "$src" "$img" 1G >"$log" 2>&1; then
    echo failed >"$work/$1.done"
    return
  fi
  # mke2fs -d leaves slips e2fsck repairs (exit 1); start clean.
  e2fsck -fy "$img" >>"$log" 2>&1
  if [ $? -lt 4 ]; then echo ok >"$work/$1.done"; else echo failed >"$work/$1.done"; fi
}
(
  for c in "${ro_configs[@]}"; do
    IFS='|' read -r name type opts _ <<<"$c"
    while [ "$(jobs -rp | wc -l)" -ge 2 ]; do wait -n; done
    build_image "$name" "$type" "$opts" &
  done
  wait
) &
builder=$!

for c in "${ro_configs[@]}"; do
  IFS='|' read -r name type opts cflags lost <<<"$c"
  img=$work/$name.img
  t0=$SECONDS
  while [ ! -s "$work/$name.done" ] && [ $((SECONDS - t0)) -lt 900 ]; do sleep 0.2; done
  [ -s "$work/$name.done" ] || echo "timed out" >"$work/$name.done"
  if [ "$(cat "$work/$name.done")" != ok ]; then
    fail "$name: mke2fs could not make the image"
    sed 's/^/    /' "$work/$name.mkfs" | head -10
    continue
  fi
  before=$(image_sha "$img")
  agree "$img" "$name"
  out=$work/$name.get
  if "$E4" get "$img:/" "$out" >"$work/$name.get.log" 2>&1; then
    # shellcheck disable=SC2086
    [ -n "$lost" ] && remove "$out" $lost
    # shellcheck disable=SC2086
    check "$name: e4 get gives back the tree" python3 "$compare_tree" $cflags "$(without $lost)" "$out"
  else
    fail "$name: e4 get"
    sed 's/^/    /' "$work/$name.get.log" | head -10
  fi
  rm -rf "$out"
  if [ "$(image_sha "$img")" = "$before" ]; then
    pass "$name: read-only commands left the image untouched"
  else
    fail "$name: read-only commands changed the image"
  fi
done
wait "$builder"

# htree: e2fsck -D indexes the directories mke2fs -d left linear (1 KiB
# blocks give a two-level index).
for name in ext4 ext4-1k-ea_inode ext3; do
  img=$work/$name.img
  [ -f "$img" ] || continue
  e2fsck -fyD "$img" >/dev/null 2>&1
  check "$name: e4 htree = debugfs htree_dump" python3 "$compare_cli" "$E4" "$img" htree /bigdir
done
out=$("$E4" htree "$work/ext4.img:/names")
grep -q "^linear directory: 1 block" <<<"$out" && pass "htree says a one-block directory is linear" ||
  fail "htree of a linear directory: $out"
if out=$("$E4" htree "$work/ext4-inline_data.img:/empty_dir"); then
  grep -q "inline directory" <<<"$out" && pass "inline_data: htree says the directory is inline" ||
    fail "inline_data: htree of an inline directory: $out"
fi
out=$("$E4" extents "$work/ext4-inline_data.img:/names/é")
grep -q "^inline data" <<<"$out" && pass "inline_data: extents says the file is inline" ||
  fail "inline_data: extents of an inline file: $out"
out=$("$E4" stat "$work/ext4-inline_data.img:/names/é")
grep -q "^Flags: 0x10000000 (inline_data)" <<<"$out" && pass "inline_data: stat shows the flag" ||
  fail "inline_data: stat: $out"

# ------------------------------------------------ 2. put/get round trips ----

# name | mke2fs -t | options | compare_tree flags | DIFF lines expected
rw_configs=(
  "ext4|ext4||"
  "ext4-inline_data|ext4|-O inline_data|"
  "ext4-nocsum-no64bit|ext4|-O ^metadata_csum,^64bit|"
  "ext4-large_dir|ext4|-O large_dir|"
  "ext4-128-inodes|ext4|-I 128|--mtime-precision=s|times/2040: mtime"
  "ext4-1k|ext4|-b 1024|"
  "ext3|ext3||"
  "ext2|ext2||"
)
for c in "${rw_configs[@]}"; do
  IFS='|' read -r name type opts cflags expected <<<"$c"
  img=$work/rt-$name.img
  # shellcheck disable=SC2086
  mke2fs -q -F -t "$type" $opts -N 40000 "$img" 1G >/dev/null 2>&1 || { fail "$name: mke2fs"; continue; }
  src_used=$src
  tag=full
  if [ "$name" = ext4-1k ]; then
    # A 3000-byte value fits no 1 KiB block, and e4 makes no EA inodes.
    src_used=$(without xattrs/large xattrs/both)
    tag=nolarge
    make_lists "$src_used" "$tag"
  fi
  "$E4" put "$src_used/." "$img:/" >"$work/put.log" 2>&1
  rc=$?
  if [ $rc -ne 0 ]; then
    fail "$name: e4 put exited $rc"
    sed 's/^/    /' "$work/put.log" | head -10
  else
    pass "$name: e4 put"
  fi
  fsck_clean "$name: after put" "$img" && pass "$name: e2fsck -fn clean, image marked clean after put"
  out=$work/rt-$name.out
  rm -rf "$out"
  if "$E4" get "$img:/" "$out" >"$work/get.log" 2>&1; then
    # shellcheck disable=SC2086
    result=$(python3 "$compare_tree" $cflags "$src_used" "$out")
    diffs=$(grep '^DIFF' <<<"$result" | sed 's/^DIFF //')
    [ -n "$expected" ] && diffs=$(grep -v -e "^$expected" <<<"$diffs")
    if [ -z "$diffs" ] && grep -q '^compare_tree: ' <<<"$result"; then
      pass "$name: put then get round-trips the tree${expected:+ (but $expected, as expected)}"
    else
      fail "$name: put then get round trip"
      printf '%s\n' "$diffs" "$(tail -3 <<<"$result")" | head -20 | sed 's/^/    /'
    fi
  else
    fail "$name: e4 get"
    sed 's/^/    /' "$work/get.log" | head -10
  fi
  rm -rf "$out"
  agree "$img" "$name (written by e4)" "$tag"
  check "$name (written by e4): e4 htree = debugfs htree_dump" python3 "$compare_cli" "$E4" "$img" htree /bigdir
done

# The 128-byte inode's 2040 date: clamped to the last second it can hold,
# as the kernel does.
if out=$("$E4" stat --json "$work/rt-ext4-128-inodes.img:/times/2040"); then
  python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(d["mtime"]["sec"] != 2**31-1)' <<<"$out" &&
    pass "ext4-128-inodes: a date past 2038 is clamped to 2038-01-19" ||
    fail "ext4-128-inodes: 2040 date: $out"
fi
# Written zeros became holes.
blocks=$("$E4" stat --json "$work/rt-ext4.img:/extra/zeros" | python3 -c 'import json,sys; print(json.load(sys.stdin)["blocks"])')
[ "$blocks" = 0 ] && pass "put: all-zero blocks are left as holes" || fail "put: extra/zeros has $blocks blocks"
out=$("$E4" extents "$work/rt-ext4.img:/extra/frag")
grep -q "node at block" <<<"$out" && pass "put: 600 extents make an extent tree with index blocks" ||
  fail "put: extra/frag: $(head -3 <<<"$out")"

# ----------------------------------------------------- 3. changing commands ----

img=$work/change.img
mke2fs -q -F -t ext4 -N 40000 "$img" 256M >/dev/null 2>&1
"$E4" put "$src/sizes" "$src/hardlinks" "$src/symlinks" "$img:/" >/dev/null 2>&1 || fail "put for the change tests"

# step NAME EXPECTED_RC E4-ARGS...: runs e4, checks its exit status and
# that the image is e2fsck-clean and marked clean afterwards.
step() {
  local name=$1 want=$2 got
  shift 2
  "$E4" "$@" >"$work/step.out" 2>"$work/step.err"
  got=$?
  if [ "$got" != "$want" ]; then
    fail "$name: exit $got, expected $want"
    sed 's/^/    /' "$work/step.err" | head -5
    return 1
  fi
  fsck_clean "$name" "$img" || return 1
  return 0
}
# said NAME PATTERN: the last step's stderr matches PATTERN.
said() {
  if grep -q -e "$2" "$work/step.err"; then pass "$1"; else
    fail "$1: stderr was: $(head -c 300 "$work/step.err")"
  fi
}
# dbg CMD: debugfs output for one command.
dbg() { debugfs -R "$1" "$img" 2>&1; }
# expect NAME TEXT DEBUGFS-CMD: debugfs's output holds TEXT.
expect() {
  if grep -q -e "$2" <<<"$(dbg "$3")"; then pass "$1"; else
    fail "$1: debugfs '$3' lacks '$2'"
    dbg "$3" | head -12 | sed 's/^/    /'
  fi
}

step "mkdir" 0 mkdir "$img:/cli" && expect "mkdir makes a 0755 directory" "Type: directory *Mode:  0755" "stat /cli"
step "mkdir -p -m" 0 mkdir -p -m 0750 "$img:/cli/a/b/c" && expect "mkdir -p -m 0750" "Mode:  0750" "stat /cli/a/b/c"
step "mkdir -p on an existing tree" 0 mkdir -p "$img:/cli/a/b"
step "mkdir of an existing directory fails" 2 mkdir "$img:/cli/a" && said "mkdir: EEXIST is reported" "$img:/cli/a: File exists"
step "ln -s" 0 ln -s ../../sizes/4096 "$img:/cli/a/sl" && expect "ln -s makes a fast symlink" 'Fast link dest: "../../sizes/4096"' "stat /cli/a/sl"
step "ln" 0 ln "$img:/sizes/4096" "$img:/cli/hard" && expect "ln adds a link" "Links: 2" "stat /sizes/4096"
[ "$(dbg "stat /cli/hard" | sed -n 's/^Inode: \([0-9]*\).*/\1/p')" = "$(dbg "stat /sizes/4096" | sed -n 's/^Inode: \([0-9]*\).*/\1/p')" ] &&
  pass "ln: both names share the inode" || fail "ln: different inodes"
step "ln into a directory" 0 ln "$img:/sizes/1" /cli/a && expect "ln DIR puts the link inside" "Links: 2" "stat /cli/a/1"
step "mv rename" 0 mv "$img:/cli/hard" "$img:/cli/moved" && expect "mv renames" "moved" "ls /cli"
step "mv into a directory" 0 mv "$img:/cli/moved" /cli/a && expect "mv DIR moves inside" "Links: 2" "stat /cli/a/moved"
step "mv -n refuses to replace" 2 mv -n "$img:/cli/a/1" "$img:/cli/a/moved"
step "chmod octal" 0 chmod 4750 "$img:/cli/a/moved" && expect "chmod 4750" "Mode:  04750" "stat /cli/a/moved"
step "chmod symbolic -R" 0 chmod -R go-rwx,u+s "$img:/cli/a/b" && expect "chmod -R go-rwx,u+s" "Mode:  04700" "stat /cli/a/b/c"
step "chown" 0 chown 1234:5678 "$img:/cli/a/moved" &&
  expect "chown sets owner and group" "User:  1234   Group:  5678" "stat /cli/a/moved" &&
  expect "chown clears setuid" "Mode:  0750" "stat /cli/a/moved"
step "chown -h on a symlink" 0 chown -h 42:43 "$img:/cli/a/sl" && expect "chown -h changes the symlink" "User:    42   Group:    43" "stat /cli/a/sl"
step "chown :GROUP -R" 0 chown -R :77 "$img:/cli/a/b" && expect "chown -R :77" "Group:    77" "stat /cli/a/b/c"
step "setfattr hex" 0 setfattr -n user.k -v 0x6869 "$img:/cli/a" && expect "setfattr stores the value" "user.k (2)" "stat /cli/a"
step "setfattr text" 0 setfattr -n user.t -v '"a\012b"' "$img:/cli/a"
if [ "$("$E4" getfattr --only-values -n user.t "$img:/cli/a" | od -An -c | tr -s ' ')" = " a \n b" ]; then
  pass "getfattr --only-values gives the raw value"
else
  fail "getfattr --only-values: $("$E4" getfattr --only-values -n user.t "$img:/cli/a" | od -c)"
fi
out=$("$E4" getfattr "$img:/cli/a")
grep -q '^user.k="hi"$' <<<"$out" && grep -q '^# file: ' <<<"$out" && pass "getfattr dumps name=value" ||
  fail "getfattr: $out"
"$E4" getfattr -e hex -n user.k "$img:/cli/a" | grep -q '^user.k=0x6869$' && pass "getfattr -e hex" || fail "getfattr -e hex"
if step "setfattr -x" 0 setfattr -x user.k "$img:/cli/a"; then
  if dbg "stat /cli/a" | grep -q "user.k"; then fail "setfattr -x left user.k"; else pass "setfattr -x removes it"; fi
fi
step "getfattr of a missing name fails" 2 getfattr -n user.k "$img:/cli/a" && said "getfattr: ENODATA is reported" "user.k: No data available"
step "rm of a directory without -r fails" 2 rm "$img:/cli/a" && said "rm: says to use -r" "is a directory (use -r"
step "rm -d of a non-empty directory fails" 2 rm -d "$img:/cli/a"
step "rm of a file" 0 rm "$img:/cli/a/1" && expect "rm drops a link" "Links: 1" "stat /sizes/1"
step "rm -r" 0 rm -r "$img:/cli" && expect "rm -r removes the tree" "File not found" "stat /cli"
expect "rm -r drops the hard link's second name" "Links: 1" "stat /sizes/4096"
step "rm -f of a missing path" 0 rm -f "$img:/nothing/here"
step "rm of a missing path fails" 2 rm "$img:/nothing" && said "rm: ENOENT is reported" "e4 rm: $img:/nothing: No such file or directory"
step "put into an existing name fails" 2 put "$src/sizes" "$img:/"
step "put a single file under a new name" 0 put "$src/sizes/4097" "$img:/renamed" &&
  check "put FILE IMAGE:/newname keeps the contents" cmp <("$E4" cat "$img:/renamed") "$src/sizes/4097"
step "put more sources into a directory" 0 put "$src/names" "$src/times" "$img:/hardlinks"
step "mv across images fails" 2 mv "$img:/renamed" "$work/ext4.img:/x"

# -------------------------------------------------- 4. help, usage, errors ----

subcommands=$("$E4" --help | awk '/^Subcommands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } /^$/ { on = 0 }')
count=0
for s in $subcommands; do
  count=$((count + 1))
  if out=$("$E4" "$s" --help 2>&1) && [ -n "$out" ]; then :; else
    fail "e4 $s --help"
  fi
done
[ "$count" -ge 18 ] && pass "e4 --help lists $count subcommands, each has --help" ||
  fail "e4 --help lists only $count subcommands: $subcommands"
for s in info ls stat cat extents htree get put mkdir rm mv ln chmod chown setfattr getfattr mkfs check; do
  grep -qx "$s" <<<"$subcommands" || fail "e4 --help does not list $s"
done
"$E4" --version | grep -q '^e4 ' && pass "e4 --version" || fail "e4 --version"

# usage RC PATTERN E4-ARGS...: exit status and a stderr line.
usage() {
  local want=$1 pattern=$2 got err
  shift 2
  err=$("$E4" "$@" 2>&1 >/dev/null)
  got=$?
  if [ "$got" = "$want" ] && grep -q -e "$pattern" <<<"$err"; then
    pass "e4 $* -> exit $want"
  else
    fail "e4 $*: exit $got (expected $want), stderr: $err"
  fi
}
good=$work/ext4.img
echo "not an image" >"$work/text.img"
usage 1 "subcommand" 
usage 1 "unknown subcommand" frobnicate
usage 1 "Try 'e4 ls --help'" ls
usage 1 "unknown option" ls --bogus "$good:/"
usage 1 "unknown option -Z" ls -Z "$good:/"
usage 1 "is not IMAGE:/path" ls nocolon
usage 2 "e4 ls: $good:/nothing: No such file or directory" ls "$good:/nothing"
usage 2 "No such file or directory" ls "$work/missing.img:/"
usage 2 "not an ext2/ext3/ext4 filesystem" ls "$work/text.img:/"
usage 2 "Not a directory" ls "$good:/sizes/1/x"
usage 2 "Is a directory" cat "$good:/sizes"
usage 2 "Not a directory" htree "$good:/sizes/1"
usage 2 "No such file or directory" extents "$good:/nothing"
usage 2 "No such file or directory" stat "$good:/nothing"
usage 2 "Read-only file system" mkdir "$work/ext4-bigalloc.img:/new"
usage 2 "Read-only file system" put "$src/sizes" "$work/ext4-bigalloc.img:/new"
usage 1 "invalid mode" chmod 99 "$good:/sizes"
usage 1 "invalid mode" chmod u+q "$good:/sizes"
usage 1 "unknown user" chown no_such_user_e4test "$good:/sizes"
usage 1 "either -n NAME or -x NAME" setfattr "$good:/sizes"
usage 1 "expected one IMAGE" info
usage 2 "not an ext2/ext3/ext4 filesystem" info "$work/text.img"
usage 2 "No such file or directory" put "$work/no_such_source" "$img:/"
usage 2 "exists and is not a directory" get "$good:/sizes" "$work/text.img"
usage 2 "exists and is not a directory" put "$src/sizes" "$img:/renamed"

# JSON outputs parse.
for args in "info --json $good" "stat --json $good:/sizes/1 $good:/names" "ls --json $good:/names" "getfattr --json $good:/xattrs/both"; do
  # shellcheck disable=SC2086
  if "$E4" $args | python3 -c 'import json,sys; json.load(sys.stdin)' 2>/dev/null; then
    pass "e4 ${args%% *} --json is valid JSON"
  else
    fail "e4 $args: not valid JSON"
  fi
done

# The progress bar: only on a terminal, or when asked for.
mke2fs -q -F -t ext4 "$work/progress.img" 64M >/dev/null 2>&1
"$E4" put "$src/sizes" "$work/progress.img:/" 2>"$work/quiet.err" >/dev/null
[ ! -s "$work/quiet.err" ] && pass "put draws no progress bar when stderr is not a terminal" ||
  fail "put wrote to stderr: $(head -c 200 "$work/quiet.err")"
"$E4" put --progress "$src/names" "$work/progress.img:/" 2>"$work/bar.err" >/dev/null
grep -q '100%' "$work/bar.err" && grep -q 'entries' "$work/bar.err" && pass "put --progress draws the bar" ||
  fail "put --progress: $(head -c 200 "$work/bar.err" | od -c | head -3)"
rm -rf "$work/pout"
"$E4" get --progress "$work/progress.img:/sizes" "$work/pout" 2>"$work/bar.err" >/dev/null
grep -q '100%' "$work/bar.err" && pass "get --progress draws the bar" || fail "get --progress"

echo
if [ "$failures" -eq 0 ]; then
  echo "PASS: e4_cli_test"
  exit 0
fi
echo "FAIL: $failures check(s) failed"
exit 1
