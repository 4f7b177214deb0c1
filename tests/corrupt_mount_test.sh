#!/usr/bin/env bash
# shellcheck disable=SC2016  # the step scripts expand in the step's shell
# corrupt_mount_test.sh [E4FS]
#
# Mount-level robustness on hostile images. Populated base images are made
# once (mke2fs -d from testdata/make_tree.sh's tree, plus extended attribute
# blocks, an htree directory of 2000 names and a fragmented file with a
# two-level extent tree), in several variants: 4 KiB blocks with
# metadata_csum, the same with inline_data, without any checksums, 1 KiB
# blocks with gdt_csum and no journal, ext3 (indirect block maps), and the
# shipped images of testdata/journal/ whose journals need replaying (ext4
# with metadata_csum, ext3). Then, for each seed, a copy of one variant is
# corrupted by tests/corrupt_image.py (superblock, group descriptors,
# bitmaps, inodes, extent or indirect, directory, xattr and journal blocks;
# the kind, the variant and, for a quarter of the seeds, 1 to 3 more
# corruptions follow from the seed), mounted read-write with
#     E4FS IMG MNT -f -o rw,errors=continue
# and used: walked (find, stat, readlink, getfattr -d, every regular file
# read, SEEK_DATA/SEEK_HOLE), written (new files, appends, writes into holes,
# fallocate and hole punching, mkdir, mknod, rename, truncate, links,
# setfattr), deleted from (rm -rf of subtrees), walked again, and
# unmounted. Nothing is opened through a symbolic link or as a FIFO: a
# corrupt inode can become either (see the prelude below). The mounts live
# in a private mount namespace of the test's own.
#
# Every operation may fail (EIO, EUCLEAN, ENOENT, EROFS...), and a mount may
# be refused (exit status 2 with a message). A seed FAILs when:
#   * the server dies of a signal or exits with a status other than 0 (2 for
#     a refused mount; 3 after an error under errors=panic);
#   * a step does not finish within its timeout (a hang: the server's threads
#     are dumped with gdb into its log, then it is killed);
#   * the server's log holds a sanitizer report (the binary may be built with
#     ASan/UBSan);
#   * anything outside the image is touched: the server runs in a fresh
#     directory holding only the image and the mount point, which must hold
#     exactly that afterwards, with the mount point empty and the image's size
#     unchanged;
#   * the server reported corruption (its log has "e4fs: inode N: ...") on a
#     read-write mount it left on its own (or stopped under errors=panic),
#     and the superblock does not record it afterwards (dumpe2fs -h: the
#     error state, or a larger error count).
#
# Reproducers of bugs this test found (testdata/corrupt/*.img.gz, described
# in the README.md there) are mounted and used like a seed's image before
# the seeds.
#
# Then the errors= policies are checked on one image with a known bad inode
# (its checksum broken): errors=remount-ro must refuse every change after the
# error with EROFS and still serve reads; errors=panic must stop the server
# with exit status 3 at the error; both record the error in the superblock.
#
# Environment:
#   CORRUPT_IMAGES   number of seeds (default 63: each kind on each variant
#                    once; about a minute and a half, with ASan too)
#   CORRUPT_SEED     first seed (default 1); seeds are SEED..SEED+IMAGES-1
#   CORRUPT_ERRORS   the errors= policy of the seeds (default continue)
#   CORRUPT_POLICY   0: skip the errors=remount-ro / errors=panic checks
#                    (default 1)
#   CORRUPT_TIMEOUT  seconds each command of a step may take (default 30)
#   CORRUPT_KEEP     a directory where the corrupted image (before the mount)
#                    and the server's log of every failing seed are kept
#                    (default: $TEST_UNDECLARED_OUTPUTS_DIR when set)
#   CORRUPT_VERBOSE  1: print the server's log tail for every seed
#   CORRUPT_CONTROL  1: skip the corruption (every step must then succeed on
#                    the mke2fs variants, no error be reported, and
#                    e2fsck -fn pass afterwards: a check of the test itself)
#   CORRUPT_IMAGE    one corrupted image (IMG or IMG.gz) to mount and use
#                    instead of the seeds (e.g. a kept one, or a reproducer
#                    of testdata/corrupt/)
# One seed again: CORRUPT_SEED=N CORRUPT_IMAGES=1 CORRUPT_POLICY=0 \
#   tests/corrupt_mount_test.sh BIN
set -uo pipefail

source "$(dirname "$0")/testlib.sh"
require_root_fuse
command -v setfattr >/dev/null || skip "setfattr (package attr) is not installed"
command -v getfattr >/dev/null || skip "getfattr (package attr) is not installed"
command -v dumpe2fs >/dev/null || skip "dumpe2fs is not installed"
resolve_e4fs "${1:-}"
# The mounts live in a private mount namespace of the test's own: a mount
# namespace another program creates meanwhile (a sandbox) would otherwise
# copy the FUSE mount and keep the server alive after the unmount here.
if [ -z "${CORRUPT_PRIVATE_NS:-}" ] && unshare -m --propagation private true 2>/dev/null; then
  CORRUPT_PRIVATE_NS=1 exec unshare -m --propagation private bash "$0" "$E4FS"
fi
corrupt=$(runfile tests/corrupt_image.py) || exit 1
make_tree=$(runfile testdata/make_tree.sh) || exit 1
journal_dir=""
if j=$(runfile testdata/journal/ext4-csum.img.gz 2>/dev/null); then journal_dir=$(dirname "$j"); fi
# Reproducers of bugs this test found: testdata/corrupt/*.img.gz, mounted and
# used like a seed's image before the seeds.
repro_dir=""
if r=$(runfile testdata/corrupt/README.md 2>/dev/null); then repro_dir=$(dirname "$r"); fi

images=${CORRUPT_IMAGES:-63}
first_seed=${CORRUPT_SEED:-1}
policy=${CORRUPT_ERRORS:-continue}
policy_checks=${CORRUPT_POLICY:-1}
step_timeout=${CORRUPT_TIMEOUT:-30}
keep=${CORRUPT_KEEP:-${TEST_UNDECLARED_OUTPUTS_DIR:-}}
verbose=${CORRUPT_VERBOSE:-0}
control=${CORRUPT_CONTROL:-0}
one_image=${CORRUPT_IMAGE:-}
case $policy in
  continue | remount-ro | panic) ;;
  *) echo "FAIL: CORRUPT_ERRORS=$policy (continue, remount-ro or panic)"; exit 1 ;;
esac
if [ -n "$one_image" ]; then
  if ! one_image=$(realpath "$one_image") || [ ! -f "$one_image" ]; then
    echo "FAIL: CORRUPT_IMAGE=${CORRUPT_IMAGE} is not a file"
    exit 1
  fi
fi

work=$(make_workdir e4fs-corrupt) || exit 1
run=$work/run
mnt=$run/mnt
server=""
cleanup() {
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then kill -9 "$server" 2>/dev/null; fi
  if is_mounted "$mnt"; then fuse_unmount "$mnt" || umount -l "$mnt" 2>/dev/null; fi
  [ -n "$server" ] && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# A crashing server must not leave core files in its directory.
ulimit -c 0
mkdir -p "$work/base" "$work/logs"
[ -n "$keep" ] && mkdir -p "$keep"
if [ -n "$one_image" ]; then
  echo "binary under test: $E4FS (errors=$policy, image $one_image)"
else
  what="seeds $first_seed..$((first_seed + images - 1))"
  [ "$control" = 1 ] && what="$what, control: not corrupted"
  echo "binary under test: $E4FS (errors=$policy, $what)"
fi
started=$SECONDS

# ---------------------------------------------------------------- base images

src=$work/src
"$make_tree" "$src" >/dev/null 2>&1 || { echo "FAIL: make_tree.sh failed"; exit 1; }
python3 - "$src" <<'PY' || { echo "FAIL: cannot extend the source tree"; exit 1; }
import os, sys
src = sys.argv[1]
# A smaller bigdir keeps every walk quick; htree/ is the indexed directory.
for i in range(200, 20000):
    os.unlink(os.path.join(src, "bigdir", str(i)))
os.makedirs(os.path.join(src, "htree"))
for i in range(2000):
    open(os.path.join(src, "htree", "entry-%05d-%s" % (i, "x" * (i % 40))), "w").close()
# 1500 one-block pieces with a hole after each: 1500 extents, a tree of
# depth 2 with 4 KiB blocks.
with open(os.path.join(src, "fragmented"), "wb") as f:
    for i in range(1500):
        f.seek(i * 8192)
        f.write(bytes([i % 251 + 1]) * 4096)
# Files whose attributes need a block of their own.
for i in range(20):
    p = os.path.join(src, "xattrs", "many%d" % i)
    with open(p, "w") as f:
        f.write("x%d\n" % i)
    os.setxattr(p, "user.k%d" % i, b"v" * (50 + 40 * i))
    os.setxattr(p, "trusted.t", b"tv")
PY

# Fixed identifiers and clock: the same seed corrupts the same structures.
uuid=6f1c2b3a-0000-4000-8000-00000000e4f5
hash_seed=6f1c2b3a-0000-4000-8000-0000000000a1
# make_base NAME SIZE TYPE MKE2FS-OPTIONS...
make_base() {
  local name=$1 size=$2 type=$3 img=$work/base/$1.img out
  shift 3
  if ! out=$(E2FSPROGS_FAKE_TIME=1000000000 mke2fs -q -F -t "$type" -U "$uuid" \
    -E "hash_seed=$hash_seed" "$@" -d "$src" "$img" "$size" 2>&1); then
    echo "FAIL: mke2fs for $name: $out"
    exit 1
  fi
  # mke2fs -d leaves small slips; -D indexes the large directories.
  E2FSPROGS_FAKE_TIME=1000000000 e2fsck -fyD "$img" >/dev/null 2>&1
  out=$(e2fsck -fn "$img" 2>&1) || { echo "FAIL: base image $name is not clean: $out"; exit 1; }
}
# Extent trees with and without checksums and inline data; block maps with
# and without a journal (ext2 with 1 KiB blocks reaches triple indirect
# blocks); ext4 written in place, without a journal.
variants=(ext4 ext4-inline ext4-nocsum ext3 ext4-1k ext2)
make_base ext4 160M ext4 -b 4096 -N 8192
make_base ext4-inline 160M ext4 -b 4096 -N 8192 -O inline_data
make_base ext4-nocsum 160M ext4 -b 4096 -N 8192 -O ^metadata_csum,^64bit
make_base ext3 160M ext3 -b 4096 -N 8192
# 1 KiB blocks cannot hold the 3000-byte attribute.
setfattr -x user.large "$src/xattrs/large"
setfattr -x user.large "$src/xattrs/both"
make_base ext4-1k 64M ext4 -b 1024 -N 8192 -O ^metadata_csum,uninit_bg,^has_journal
make_base ext2 64M ext2 -b 1024 -N 8192
if [ -n "$journal_dir" ]; then
  for j in ext4-csum ext3; do
    gzip -dc "$journal_dir/$j.img.gz" >"$work/base/journal-$j.img" ||
      { echo "FAIL: cannot unpack $journal_dir/$j.img.gz"; exit 1; }
  done
  variants+=(journal)
else
  echo "note: testdata/journal/ not found; no journal replay variant"
fi
# The kinds cycle with seed % 9 and the variants with seed % 7: every pair
# of them comes up in 63 seeds (without testdata/journal/, 6 variants: a
# third of the pairs).
nvariants=${#variants[@]}
rm -rf "$src"
echo "base images ready in $((SECONDS - started)) s"

# ------------------------------------------------------------------ one seed

# The step scripts are single-quoted on purpose: they expand in the step's
# shell, inside the mount point.

# A corrupt image can turn any name into a FIFO (opening it would wait for a
# writer forever), a device or a symbolic link to anywhere (a write through it
# would land outside the image). So the step scripts open only what lstat
# calls a regular file or a directory, reached through no symbolic link:
#   ok PATH    no component of PATH is a symbolic link, and PATH is a
#              regular file, a directory or absent
#   okf PATH   the same, and PATH is not a directory
# and the contents are read by a walker that does the same (lstat first,
# O_NOFOLLOW|O_NONBLOCK, directories by lstat, each directory once).
prelude='
ok() {
  local cur="" c IFS=/
  for c in $1; do
    cur=${cur:+$cur/}$c
    [ -L "$cur" ] && return 1
  done
  [ ! -e "$1" ] || [ -f "$1" ] || [ -d "$1" ]
}
okf() { ok "$1" && [ ! -d "$1" ]; }
'
reader=$work/read_tree.py
cat >"$reader" <<'PY'
import errno, os, stat, sys
failed = 0
root = os.lstat(".")
seen = {(root.st_dev, root.st_ino)}
stack = ["."]
entries = 0
while stack and entries < 200000:
    d = stack.pop()
    try:
        names = os.listdir(d)
    except OSError as e:
        print("%s: %s" % (d, e), file=sys.stderr)
        failed += 1
        continue
    for n in names:
        entries += 1
        p = os.path.join(d, n)
        try:
            st = os.lstat(p)
        except OSError as e:
            print("%s: %s" % (p, e), file=sys.stderr)
            failed += 1
            continue
        if stat.S_ISDIR(st.st_mode):
            if st.st_dev == root.st_dev and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                stack.append(p)
        elif stat.S_ISREG(st.st_mode):
            # Whole files up to 16 MiB; of bigger ones (a corrupt size can
            # claim exabytes) the first 4 MiB.
            left = st.st_size if st.st_size < (16 << 20) else 4 << 20
            try:
                fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY)
                try:
                    while left > 0:
                        b = os.read(fd, min(left, 1 << 20))
                        if not b:
                            break
                        left -= len(b)
                    # The data and holes (at most 1000 pieces), which must
                    # follow each other forwards.
                    pos = 0
                    for _ in range(1000):
                        try:
                            data = os.lseek(fd, pos, os.SEEK_DATA)
                        except OSError as e:
                            if e.errno == errno.ENXIO:
                                break
                            raise
                        hole = os.lseek(fd, data, os.SEEK_HOLE)
                        if data < pos or hole <= data:
                            raise OSError(errno.EIO, "SEEK_DATA/SEEK_HOLE from %d: data at %d, hole at %d" % (pos, data, hole))
                        pos = hole
                finally:
                    os.close(fd)
            except OSError as e:
                print("%s: %s" % (p, e), file=sys.stderr)
                failed += 1
sys.exit(1 if failed else 0)
PY

# step NAME SCRIPT: runs SCRIPT (bash, in the mount point, after the
# prelude) under the timeout; a timeout is a hang. Returns 1 when the seed
# must stop (hang, or the server is gone).
step() {
  local name=$1 script=$2 rc
  if ! kill -0 "$server" 2>/dev/null; then return 1; fi
  (cd "$mnt" && timeout -k 5 "$step_timeout" bash -c "$prelude$script") >/dev/null 2>>"$work/ops.log"
  rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    hang="$name: ${script:0:120}"
    return 1
  fi
  if [ "$rc" -ne 0 ]; then
    op_errors=$((op_errors + 1))
    failed_steps="$failed_steps${failed_steps:+, }$name"
  fi
  ops=$((ops + 1))
  return 0
}

# The walk: every entry, its attributes, link targets, extended attributes and
# contents; lookups of present and absent names in the indexed directory.
walk() {
  local tag=$1
  step "$tag find" "find . -xdev -printf '%y %m %n %u %g %s %T@ %p -> %l\n'" &&
    step "$tag stat" "find . -xdev -exec stat -- {} +" &&
    step "$tag readlink" "find . -xdev -type l -exec readlink -- {} +" &&
    step "$tag getfattr" "getfattr -R -d -h -m - ." &&
    step "$tag read" "python3 $reader" &&
    step "$tag statfs" "stat -f ." &&
    step "$tag lookups" 'for n in htree/entry-{00000,00040,00400,01200,01960}- htree/absent-{1..9} bigdir/{1,50,199,absent}; do
      out=$(stat -- "$n" 2>&1) || case $out in *"No such file"*) ;; *) echo "$out" >&2; exit 1 ;; esac; done'
}

writes() {
  step "mkdir" 'for d in new new/a/b/c deep/d01/new_in_deep; do ok "$d" && mkdir -p "$d"; done' &&
    step "create" 'ok new && for i in $(seq 1 40); do okf new/f$i && head -c $((i * 3001)) /dev/urandom >new/f$i; done' &&
    step "create in htree" 'ok htree && for i in $(seq 1 200); do : >htree/added-$i-yyyyyyyyyyyyyyyyyyyy; done' &&
    step "append" 'for f in sizes/* names/* xattrs/* hardlinks/a/orig times/* owners/* modes/setuid base/*; do if okf "$f" && [ -f "$f" ]; then echo appended >>"$f"; fi; done' &&
    step "append large" 'okf fragmented && head -c 1100000 /dev/urandom >>fragmented; okf sizes/4097 && head -c 300000 /dev/urandom >>sizes/4097' &&
    step "fill holes" 'okf fragmented && for i in $(seq 1 2 81); do dd if=/dev/urandom of=fragmented bs=4096 seek=$((i * 7)) count=1 oflag=nofollow conv=notrunc status=none; done' &&
    step "write past 4G" 'okf sparse/holes_past_4g && printf more | dd of=sparse/holes_past_4g bs=1 seek=4294967000 oflag=nofollow conv=notrunc status=none' &&
    step "fallocate" 'okf fragmented || exit 0; for a in "-p -o 100000 -l 300000" "-o 13000000 -l 100000" "-z -o 40960 -l 8192" "-n -o 14000000 -l 65536"; do
      out=$(fallocate $a fragmented 2>&1) || case $out in *"not supported"* | *unsupported*) ;; *) echo "$out" >&2; exit 1 ;; esac; done' &&
    step "special files" 'ok new && mkfifo new/fifo && mknod new/null c 1 3' &&
    step "truncate" 'for f in sizes/4097:100 new/f1:5M sizes/random_300k:0 fragmented:20000; do okf "${f%%:*}" && truncate -s "${f#*:}" "${f%%:*}"; done' &&
    step "rename" 'for m in new/f2:new/a/f2 new/f3:htree/ names/é:names/renamed bigdir/7:bigdir/77 new/a:new/moved sizes/4096:sizes/1; do ok "${m%%:*}" && ok "${m#*:}" && mv -- "${m%%:*}" "${m#*:}"; done' &&
    step "links" 'ok new/f4.link && ln new/f4 new/f4.link; ok new/sym && ln -s ../sizes new/sym; ok new/longsym && ln -s "$(printf "t%.0s" $(seq 300))" new/longsym' &&
    step "setfattr" 'for f in new/f5 xattrs/small xattrs/both xattrs/many3 xattrs/dir_with_xattr htree; do ok "$f" || continue; setfattr -h -n user.added -v value "$f"; setfattr -h -n user.big -v "$(head -c 500 /dev/zero | tr "\0" b)" "$f"; done; ok xattrs/both && setfattr -h -x user.small xattrs/both; ok xattrs/many7 && setfattr -h -x user.k7 xattrs/many7' &&
    step "chmod" 'okf new/f6 && chmod 600 new/f6; ok new/f7 && chown -h 1:1 new/f7; ok new/f8 && touch -h -d @1234567890 new/f8' &&
    step "fsync" 'for f in new/f9 fragmented; do okf "$f" && [ -f "$f" ] && sync "$f"; done'
}

# rm does not follow symbolic links (its arguments' last components may be
# links); their directories are checked.
deletes() {
  step "rm files" 'ok htree && rm -f htree/entry-01*; ok bigdir && rm -f bigdir/1*; ok new && rm -f new/f1*' &&
    step "rm -rf subtrees" 'rm -rf deep fragmented xattrs sparse '"$1" &&
    step "rmdir" 'for d in empty_dir new/moved/b/c; do if ok "$d" && [ -d "$d" ]; then rmdir "$d" || exit; fi; done'
}

# server_log_sanitizer LOG: the first line of a sanitizer report in LOG.
server_log_sanitizer() {
  grep -m 1 -E 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|ThreadSanitizer|MemorySanitizer|runtime error:' "$1"
}

# The top frames of the first sanitizer report in a log.
sanitizer_frames() {
  awk '/Sanitizer|runtime error:/ && !n { n = 1; sub(/^ +/, ""); print "    " $0; next }
       n && /^ *#[0-9]+ / && c < 6 { sub(/^ +/, ""); print "      " $0; c++ }' "$1"
}

# mount_users: the processes whose working directory, root or open files
# lie under the mount point.
mount_users() {
  local p l found=""
  for p in /proc/[0-9]*; do
    for l in "$p"/cwd "$p"/root "$p"/fd/*; do
      case $(readlink "$l" 2>/dev/null) in
        "$mnt" | "$mnt"/*)
          found="$found ${p#/proc/}($(cat "$p"/comm 2>/dev/null))"
          break
          ;;
      esac
    done
  done 2>/dev/null
  echo "${found:- none}"
}

# other_namespaces: the processes of other mount namespaces in which the
# mount point is still mounted.
other_namespaces() {
  local p ns mine found=""
  mine=$(readlink /proc/self/ns/mnt)
  declare -A seen=()
  for p in /proc/[0-9]*; do
    ns=$(readlink "$p"/ns/mnt 2>/dev/null) || continue
    [ "$ns" = "$mine" ] || [ -n "${seen[$ns]:-}" ] && continue
    seen[$ns]=1
    if grep -q -F " $mnt " "$p"/mountinfo 2>/dev/null; then
      found="$found ${p#/proc/}($(cat "$p"/comm 2>/dev/null))"
    fi
  done
  echo "${found# }"
}

# unmount_mnt: fusermount3 -u, retried while the mount is busy, then a lazy
# unmount; sets unmount_note to what happened.
unmount_mnt() {
  local i out=""
  unmount_note="unmounted"
  for ((i = 0; i < 20; i++)); do
    out=$(timeout 20 fusermount3 -u "$mnt" 2>&1) && return 0
    [ $? -eq 124 ] && out="fusermount3 -u did not return within 20 s" && break
    is_mounted "$mnt" || return 0
    sleep 0.5
  done
  unmount_note="unmount failed: $out; users of the mount:$(mount_users); lazy unmount"
  umount -l "$mnt" 2>/dev/null
}

# One line per thread of a gdb backtrace: its first frames outside the
# system libraries.
gdb_threads() {
  awk '/^Thread / { if (line) print line; line = "      thread " $2 ":"; n = 0; next }
       /^#[0-9]+ / && n < 3 && !/ from \/(usr\/)?lib|\?\? \(|at \.\.?\/(sysdeps|nptl|misc)\/|clone3 / {
         f = $0; sub(/^#[0-9]+ +(0x[0-9a-f]+ in )?/, "", f)
         line = line (n ? " <- " : " ") substr(f, 1, 90); n++ }
       END { if (line) print line }' "$1" | head -16
}

# engine_errors: the lines of a server log (stdin) by which the engine
# reported corruption it records ("e4fs: inode N: MESSAGE"); not the
# adapter's notes ("e4fs: inode N: readdir: ...", of entries it skipped).
engine_errors() {
  grep -E '^e4fs: inode [0-9]+: ' | grep -v -E '^e4fs: inode [0-9]+: (readdir|readdirplus|unmount): '
}

# sb_errors IMG: "BIT COUNT": whether the superblock's state has the error
# bit (1 or 0) and its error count; from dumpe2fs -h, else (dumpe2fs refuses
# a superblock the server may accept) from the raw bytes.
sb_errors() {
  local out bit=0 count
  if out=$(dumpe2fs -h "$1" 2>/dev/null) && [[ $out == *"Filesystem state:"* ]]; then
    [[ $(grep -m 1 '^Filesystem state:' <<<"$out") == *"with errors"* ]] && bit=1
    count=$(awk -F: '/^FS Error count:/ { gsub(/ /, "", $2); print $2 }' <<<"$out")
    echo "$bit ${count:-0}"
  else
    python3 -c 'import struct, sys
with open(sys.argv[1], "rb") as f:
    f.seek(1024)
    sb = f.read(1024)
state, = struct.unpack_from("<H", sb, 0x3A)
count, = struct.unpack_from("<I", sb, 0x194)
print(1 if state & 2 else 0, count)' "$1" 2>/dev/null || echo "0 0"
  fi
}

# error_recorded BEFORE AFTER (each "BIT COUNT"): whether AFTER records an
# error that BEFORE did not.
error_recorded() {
  local bit_before count_before bit_after count_after
  read -r bit_before count_before <<<"$1"
  read -r bit_after count_after <<<"$2"
  [ "$bit_after" = 1 ] && { [ "$bit_before" = 0 ] || [ "$count_after" != "$count_before" ]; }
}

# start_server IMG-NAME OPTIONS: the server in $run on $mnt, in the
# foreground, its output in $log; waits until it has mounted or exited.
start_server() {
  (cd "$run" && exec "$E4FS" "$1" mnt -f -o "$2") >"$log" 2>&1 &
  server=$!
  for ((i = 0; i < 200; i++)); do
    is_mounted "$mnt" && break
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
  done
}

fails=0 passes=0 refused=0 recorded=0 mounted=0 total_ops=0 total_op_errors=0
crashes=0 hangs=0 sanitizer=0 touched=0 badexit=0 unrecorded=0 control_fails=0 tried=0
delete_extra=(htree bigdir sizes names symlinks hardlinks modes owners times special new)

# try_image NAME N CHECK_OPS: mounts $run/fs.img (already in place; $desc
# says what was done to it), uses it, judges the server and prints one
# PASS/FAIL line naming NAME. N picks the subtree the deletes remove in
# addition; with CHECK_OPS=1 every step must succeed (control runs).
try_image() {
  local name=$1 n=$2 check_ops=$3
  local result=PASS why="" note="" was_mounted=no panicked=no unmount_note="not mounted"
  local size_before size_after state_before state_after status holders extra inmnt report reported fsck_out
  tried=$((tried + 1))
  img=$run/fs.img
  log=$work/logs/server.log
  rm -f "$log" "$log.gdb"
  : >"$work/ops.log"
  [ -n "$keep" ] && cp --sparse=always "$img" "$work/corrupted.img"
  size_before=$(stat -c %s "$img")
  state_before=$(sb_errors "$img")

  hang="" ops=0 op_errors=0 failed_steps=""
  start_server fs.img "rw,errors=$policy"
  if is_mounted "$mnt"; then
    was_mounted=yes
    mounted=$((mounted + 1))
    walk first &&
      writes &&
      deletes "${delete_extra[$((n % ${#delete_extra[@]}))]}" &&
      walk again
    total_ops=$((total_ops + ops))
    total_op_errors=$((total_op_errors + op_errors))
    note="$ops ops, $op_errors failed"
    if [ -n "$hang" ]; then
      result=FAIL why="hang in step '$hang'"
      hangs=$((hangs + 1))
    fi
    if [ -n "$hang" ] && kill -0 "$server" 2>/dev/null; then
      {
        echo "==== threads of the hung server (gdb) ===="
        timeout 60 gdb -p "$server" -batch -ex "thread apply all bt" 2>&1
      } >>"$log.gdb"
      kill -9 "$server" 2>/dev/null
    fi
    unmount_mnt
  elif kill -0 "$server" 2>/dev/null; then
    result=FAIL why="no mount within 20 s and the server is still running (hang at mount)"
    hangs=$((hangs + 1))
    timeout 60 gdb -p "$server" -batch -ex "thread apply all bt" >"$log.gdb" 2>&1
    kill -9 "$server" 2>/dev/null
  fi
  # The server must exit on its own after the unmount.
  for ((i = 0; i < 300; i++)); do
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
  done
  holders=""
  if kill -0 "$server" 2>/dev/null && [ "$unmount_note" = unmounted ]; then
    holders=$(other_namespaces)
  fi
  if [ -n "$holders" ]; then
    # Not the server's doing: the kernel keeps the connection while another
    # namespace holds a copy of the mount. A SIGTERM must stop it cleanly.
    note="${note:+$note; }the mount lives on in another mount namespace ($holders): stopped with SIGTERM"
    kill -TERM "$server" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
      kill -0 "$server" 2>/dev/null || break
      sleep 0.1
    done
  fi
  if kill -0 "$server" 2>/dev/null; then
    timeout 60 gdb -p "$server" -batch -ex "thread apply all bt" >>"$log.gdb" 2>&1
    kill -9 "$server" 2>/dev/null
    [ $result = PASS ] && hangs=$((hangs + 1))
    result=FAIL why="${why:+$why; }the server did not exit within 30 s of the unmount${holders:+ nor 10 s after a SIGTERM} ($unmount_note; still mounted: $(is_mounted "$mnt" && echo yes || echo no); users of the mount: $(mount_users))"
  fi
  wait "$server" 2>/dev/null
  status=$?
  server=""
  if [ $result = FAIL ]; then
    : # killed by the test after a hang
  elif [ "$status" -gt 128 ]; then
    result=FAIL why="server killed by signal $((status - 128)) (SIG$(kill -l $((status - 128)) 2>/dev/null))"
    crashes=$((crashes + 1))
  elif [ "$status" -eq 2 ] && [ "$was_mounted" = no ]; then
    refused=$((refused + 1))
    note="mount refused: $(grep -v -E 'Sanitizer|^ *#|^=+' "$log" | head -1 | cut -c1-160)"
  elif [ "$status" -eq 3 ] && [ "$policy" = panic ] && grep -q 'errors=panic: stopping the server' "$log"; then
    # At an error found while serving, or while mounting (as the kernel
    # panics when the root inode is bad).
    panicked=yes
    [ "$was_mounted" = no ] && note="stopped while mounting"
    note="$note; stopped with status 3 (errors=panic)"
  elif [ "$was_mounted" = no ]; then
    result=FAIL why="the server exited with status $status without mounting: $(head -2 "$log" | tr '\n' '|' | cut -c1-200)"
    badexit=$((badexit + 1))
  elif [ "$status" -ne 0 ]; then
    result=FAIL why="server exited with status $status: $(grep -v -E '^ +#[0-9]+ ' "$log" | tail -2 | tr '\n' '|' | cut -c1-200)"
    badexit=$((badexit + 1))
  fi
  if report=$(server_log_sanitizer "$log"); then
    [ $result = PASS ] || why="$why; "
    result=FAIL why="${why}sanitizer report: $report"
    sanitizer=$((sanitizer + 1))
  fi
  # Nothing outside the image: the directory holds the image and the (empty)
  # mount point, and the image has kept its size.
  if is_mounted "$mnt"; then umount -l "$mnt" 2>/dev/null; fi
  extra=$(find "$run" -mindepth 1 -maxdepth 1 ! -name fs.img ! -name mnt -printf '%f ' 2>&1 | head -c 300)
  inmnt=$(find "$mnt" -mindepth 1 -maxdepth 1 -printf '%f ' 2>&1 | head -c 300)
  size_after=$(stat -c %s "$img" 2>/dev/null || echo missing)
  if [ -n "$extra" ] || [ -n "$inmnt" ] || [ "$size_after" != "$size_before" ]; then
    [ $result = PASS ] || why="$why; "
    result=FAIL why="${why}touched outside the image:${extra:+ new files in its directory: $extra}${inmnt:+ left in the mount point: $inmnt}"
    [ "$size_after" != "$size_before" ] && why="$why image size $size_before -> $size_after"
    touched=$((touched + 1))
  fi
  # The corruption the server reported must be recorded in the superblock,
  # unless it could not write (a read-only mount, one it ended up with) or
  # did not end on its own (killed after a hang: the judgment is made).
  reported=$(engine_errors <"$log" | wc -l)
  state_after=$(sb_errors "$img")
  if error_recorded "$state_before" "$state_after"; then
    recorded=$((recorded + 1))
    note="$note; error recorded"
  elif [ "$reported" -gt 0 ] && { [ "$was_mounted" = yes ] || [ $panicked = yes ]; } && [ $result = PASS ] &&
    ! grep -q -E 'mounted read-only|cannot record the error' "$log"; then
    result=FAIL why="the server reported $reported errors (first: $(engine_errors <"$log" | head -1 | cut -c1-120)) but the superblock does not record them (before: $state_before, after: $state_after; error bit and count)"
    unrecorded=$((unrecorded + 1))
  fi
  if [ "$check_ops" = 1 ] && [ $result = PASS ]; then
    if [ "$was_mounted" = no ] || [ "$op_errors" -ne 0 ] || [ "$reported" -ne 0 ]; then
      result=FAIL why="control: not mounted, a step failed or an error was reported on an image that is not corrupted (failed steps: ${failed_steps:-none})"
      control_fails=$((control_fails + 1))
    elif ! fsck_out=$(e2fsck -fn "$img" 2>&1); then
      result=FAIL why="control: e2fsck -fn finds the image inconsistent after the steps: $(grep -v -E '^(Pass|e2fsck) ' <<<"$fsck_out" | head -4 | tr '\n' '|' | cut -c1-300)"
      control_fails=$((control_fails + 1))
    fi
  fi

  if [ $result = PASS ]; then
    passes=$((passes + 1))
    echo "PASS $name: $desc [$note]"
  else
    fails=$((fails + 1))
    echo "FAIL $name: $desc"
    echo "    $why"
    [ -n "$note" ] && echo "    ($note${failed_steps:+; failed steps: $failed_steps})"
    if server_log_sanitizer "$log" >/dev/null; then sanitizer_frames "$log"; fi
    if [ -s "$log.gdb" ]; then
      echo "    server threads:"
      gdb_threads "$log.gdb"
    fi
    echo "    server log (tail):"
    grep -v -E '^ +#[0-9]+ ' "$log" | tail -5 | sed 's/^/      /'
    if [ "$check_ops" = 1 ] && [ -s "$work/ops.log" ]; then
      echo "    failed commands (tail):"
      tail -8 "$work/ops.log" | cut -c1-200 | sed 's/^/      /'
    fi
    if [ -n "$keep" ]; then
      local tag=${name//[^A-Za-z0-9=.-]/_}
      cp --sparse=always "$work/corrupted.img" "$keep/corrupt-$tag.img"
      cat "$log" "$log.gdb" >"$keep/corrupt-$tag.log" 2>/dev/null
      echo "    kept: $keep/corrupt-$tag.img, $keep/corrupt-$tag.log"
    fi
  fi
  if [ "$verbose" = 1 ]; then
    tail -5 "$log"
    tail -20 "$work/ops.log"
  fi
  rm -f "$log" "$log.gdb" "$work/corrupted.img"
}

# fresh_run: an empty directory for the server, with the mount point.
fresh_run() {
  rm -rf "$run"
  mkdir -p "$mnt"
}

# ------------------------------------------------------------- the images

if [ -n "$one_image" ]; then
  fresh_run
  case $one_image in
    *.gz) gzip -dc "$one_image" >"$run/fs.img" ;;
    *) cp --sparse=always "$one_image" "$run/fs.img" ;;
  esac
  desc="as given"
  n=$(basename "$one_image" | tr -cd 0-9)
  try_image "image=$(basename "$one_image")" "${n:-0}" 0
  images=0 policy_checks=0
elif [ -n "$repro_dir" ] && [ "$control" != 1 ]; then
  # The reproducers first: each found a bug once.
  for r in "$repro_dir"/*.img.gz; do
    [ -e "$r" ] || continue
    fresh_run
    gzip -dc "$r" >"$run/fs.img" || { echo "FAIL: cannot unpack $r"; fails=$((fails + 1)); continue; }
    desc="reproducer (testdata/corrupt/README.md)"
    n=$(basename "$r" .img.gz | tr -cd 0-9)
    try_image "image=$(basename "$r")" "${n:-0}" 0
  done
fi

# corruptions SEED: how many structures the seed corrupts: one, or for a
# quarter of the seeds 2 to 4 (the first of them is the one-corruption seed's).
corruptions() {
  if (($1 % 4 == 3)); then echo $((2 + $1 / 4 % 3)); else echo 1; fi
}

for ((seed = first_seed; seed < first_seed + images; seed++)); do
  variant=${variants[$((seed % nvariants))]}
  base=$work/base/$variant.img
  if [ "$variant" = journal ]; then
    if (((seed / nvariants) % 2)); then base=$work/base/journal-ext3.img; else base=$work/base/journal-ext4-csum.img; fi
    variant=$(basename "$base" .img)
  fi
  fresh_run
  cp --sparse=always "$base" "$run/fs.img"
  check_ops=0
  if [ "$control" = 1 ]; then
    desc="not corrupted (control)"
    # The journal images hold only a small tree: steps on what they lack
    # fail there.
    [[ $variant != journal-* ]] && check_ops=1
  elif ! desc=$(python3 "$corrupt" "$run/fs.img" --seed "$seed" --count "$(corruptions "$seed")" 2>&1); then
    echo "FAIL seed=$seed variant=$variant: corrupt_image.py failed: $desc"
    fails=$((fails + 1))
    continue
  fi
  desc=${desc#"seed=$seed "}
  try_image "seed=$seed variant=$variant" "$seed" "$check_ops"
done

# ------------------------------------------------------ errors= policies

# policy_image: the ext4 base image with the inode of sizes/4097 made bad
# (its checksum broken): looking it up reports EUCLEAN.
policy_image() {
  local loc blk off bs
  fresh_run
  cp --sparse=always "$work/base/ext4.img" "$run/fs.img"
  loc=$(debugfs -R "imap /sizes/4097" "$run/fs.img" 2>/dev/null | grep -o 'located at block [0-9]*, offset 0x[0-9a-f]*')
  blk=$(awk '{ print $4 }' <<<"${loc%,*}")
  off=$(awk '{ print $NF }' <<<"$loc")
  bs=$(dumpe2fs -h "$run/fs.img" 2>/dev/null | awk -F: '/^Block size:/ { gsub(/ /, "", $2); print $2 }')
  [ -n "$blk" ] && [ -n "$off" ] && [ -n "$bs" ] || return 1
  # i_checksum_lo, 0x7C into the inode.
  python3 -c 'import sys
p, at = sys.argv[1], int(sys.argv[2]) * int(sys.argv[3]) + int(sys.argv[4], 16) + 0x7C
with open(p, "r+b") as f:
    f.seek(at)
    b = f.read(1)
    f.seek(at)
    f.write(bytes([b[0] ^ 0x5A]))' "$run/fs.img" "$blk" "$bs" "$off"
}

# policy_fail MESSAGE: one failed policy check, with the server's log.
policy_fail() {
  fails=$((fails + 1))
  echo "FAIL policy: $*"
  grep -v -E '^ +#[0-9]+ ' "$log" | tail -5 | sed 's/^/      /'
}

# policy_end: unmounts, waits for the server; sets status.
policy_end() {
  unmount_mnt
  for ((i = 0; i < 300; i++)); do
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$server" 2>/dev/null && kill -9 "$server" 2>/dev/null
  wait "$server" 2>/dev/null
  status=$?
  server=""
  if report=$(server_log_sanitizer "$log"); then
    policy_fail "sanitizer report: $report"
    sanitizer_frames "$log"
  fi
}

# in_mnt SCRIPT: runs SCRIPT in the mount point; prints its stderr.
in_mnt() {
  { (cd "$mnt" && timeout -k 5 "$step_timeout" bash -c "$1") >/dev/null; } 2>&1
}

if [ "$policy_checks" = 1 ]; then
  log=$work/logs/policy.log
  checks_failed=$fails
  if ! policy_image; then
    policy_fail "cannot make the image with a bad inode"
  else
    # errors=remount-ro: changes work until the error, fail with EROFS
    # after it; reads still work; the error is in the superblock.
    before=$(sb_errors "$run/fs.img")
    start_server fs.img rw,errors=remount-ro
    if ! is_mounted "$mnt"; then
      policy_fail "errors=remount-ro: the image did not mount"
    else
      out=$(in_mnt 'mkdir before_error && echo x >before_error/f')
      [ -z "$out" ] || policy_fail "errors=remount-ro: a change before the error failed: $out"
      out=$(in_mnt 'stat sizes/4097')
      [[ $out == *"Structure needs cleaning"* ]] ||
        policy_fail "errors=remount-ro: the bad inode gave '$out', not EUCLEAN"
      for change in 'mkdir after_error' 'echo y >>before_error/f' 'rm before_error/f' \
        'touch sizes/4096' 'setfattr -n user.x -v 1 sizes/1' 'mv sizes/1 sizes/one'; do
        out=$(in_mnt "$change")
        [[ $out == *"Read-only file system"* ]] ||
          policy_fail "errors=remount-ro: '$change' after the error gave '${out:-success}', not EROFS"
      done
      out=$(in_mnt 'cat sizes/4096 before_error/f >/dev/null && ls bigdir >/dev/null')
      [ -z "$out" ] || policy_fail "errors=remount-ro: reads after the error failed: $out"
      policy_end
      [ "$status" -eq 0 ] || policy_fail "errors=remount-ro: the server exited with status $status"
      error_recorded "$before" "$(sb_errors "$run/fs.img")" ||
        policy_fail "errors=remount-ro: the superblock does not record the error ($(sb_errors "$run/fs.img"))"
      [ "$(debugfs -R 'cat /before_error/f' "$run/fs.img" 2>/dev/null)" = x ] ||
        policy_fail "errors=remount-ro: the change made before the error is not on the image"
    fi
    # errors=panic: the server stops with status 3 at the error, which it
    # has recorded first.
    policy_image
    before=$(sb_errors "$run/fs.img")
    start_server fs.img rw,errors=panic
    if ! is_mounted "$mnt"; then
      policy_fail "errors=panic: the image did not mount"
    else
      out=$(in_mnt 'stat sizes/4096 && stat sizes/4097')
      for ((i = 0; i < 100; i++)); do
        kill -0 "$server" 2>/dev/null || break
        sleep 0.1
      done
      kill -0 "$server" 2>/dev/null && policy_fail "errors=panic: the server is still running after the error ($out)"
      policy_end
      [ "$status" -eq 3 ] || policy_fail "errors=panic: the server exited with status $status, not 3"
      error_recorded "$before" "$(sb_errors "$run/fs.img")" ||
        policy_fail "errors=panic: the superblock does not record the error ($(sb_errors "$run/fs.img"))"
    fi
  fi
  if [ "$fails" -eq "$checks_failed" ]; then
    echo "PASS policy: errors=remount-ro refuses changes with EROFS after the error and keeps reading;" \
      "errors=panic stops the server with status 3; both record the error"
  fi
fi

echo "----"
if [ -n "$one_image" ]; then what="$(basename "$one_image")"; else what="seeds $first_seed..$((first_seed + images - 1))"; fi
echo "summary: $tried images ($what, errors=$policy):" \
  "$passes PASS, $fails FAIL; $refused mounts refused cleanly, $mounted mounted"
echo "  failures: $crashes crashed, $hangs hung, $sanitizer with sanitizer reports," \
  "$badexit with a bad exit status, $touched touched outside the image," \
  "$unrecorded with errors not recorded in the superblock"
[ "$control" = 1 ] && echo "  control: $control_fails images with failed steps or reported errors"
echo "  operations: $total_ops run on mounted images, $total_op_errors of them reported errors"
echo "  errors recorded in the superblock: on $recorded images ($mounted were mounted)"
echo "  time: $((SECONDS - started)) s"
[ "$fails" -eq 0 ]
