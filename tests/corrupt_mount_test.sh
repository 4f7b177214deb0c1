#!/usr/bin/env bash
# corrupt_mount_test.sh [E4FS]
#
# Mount-level robustness on hostile images. Populated base images are made
# once (mke2fs -d from testdata/make_tree.sh's tree, plus extended attribute
# blocks, an htree directory of 2000 names and a fragmented file with a
# two-level extent tree), in several variants: 4 KiB blocks with
# metadata_csum, the same with inline_data, without any checksums, 1 KiB
# blocks with gdt_csum, and the shipped images of testdata/journal/ whose
# journals need replaying (ext4 with metadata_csum, ext3 with indirect
# blocks). Then, for each seed, a copy of one variant is corrupted by
# tests/corrupt_image.py (superblock, group descriptors, bitmaps, inodes,
# extent, directory, xattr and journal blocks; the kind and the variant follow
# from the seed), mounted read-write with
#     E4FS IMG MNT -f -o rw,errors=continue
# and used: walked (find, stat, readlink, getfattr -d, every file read),
# written (new files, appends, writes into holes, mkdir, rename, truncate,
# links, setfattr), deleted from (rm -rf of subtrees), walked again, and
# unmounted.
#
# Every operation may fail (EIO, EUCLEAN, ENOENT, EROFS...), and a mount may
# be refused (exit status 2 with a message). A seed FAILs when:
#   * the server dies of a signal or exits with a status other than 0 (2 for
#     a refused mount);
#   * a step does not finish within its timeout (a hang: the server's threads
#     are dumped with gdb into its log, then it is killed);
#   * the server's log holds a sanitizer report (the binary may be built with
#     ASan/UBSan);
#   * anything outside the image is touched: the server runs in a fresh
#     directory holding only the image and the mount point, which must hold
#     exactly that afterwards, with the mount point empty and the image's size
#     unchanged.
# Whether the server recorded the corruption in the superblock (dumpe2fs -h:
# "Filesystem state: ... with errors" or an error count that was not there
# before the mount) is counted and reported, not judged.
#
# Environment:
#   CORRUPT_IMAGES   number of seeds (default 40)
#   CORRUPT_SEED     first seed (default 1); seeds are SEED..SEED+IMAGES-1
#   CORRUPT_ERRORS   the errors= policy (default continue); with panic the
#                    server may stop at the first error with any status that
#                    is not a signal
#   CORRUPT_TIMEOUT  seconds each command of a step may take (default 30)
#   CORRUPT_KEEP     a directory where the corrupted image (before the mount)
#                    and the server's log of every failing seed are kept
#                    (default: $TEST_UNDECLARED_OUTPUTS_DIR when set)
#   CORRUPT_VERBOSE  1: print the server's log tail for every seed
# One seed again: CORRUPT_SEED=N CORRUPT_IMAGES=1 tests/corrupt_mount_test.sh BIN
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
journal_dir=$(dirname "$(runfile testdata/journal/ext4-csum.img.gz 2>/dev/null)" 2>/dev/null) ||
  journal_dir=""

images=${CORRUPT_IMAGES:-40}
first_seed=${CORRUPT_SEED:-1}
policy=${CORRUPT_ERRORS:-continue}
step_timeout=${CORRUPT_TIMEOUT:-30}
keep=${CORRUPT_KEEP:-${TEST_UNDECLARED_OUTPUTS_DIR:-}}
verbose=${CORRUPT_VERBOSE:-0}
case $policy in
  continue | remount-ro | panic) ;;
  *) echo "FAIL: CORRUPT_ERRORS=$policy (continue, remount-ro or panic)"; exit 1 ;;
esac

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
echo "binary under test: $E4FS (errors=$policy, seeds $first_seed..$((first_seed + images - 1)))"
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
# make_base NAME SIZE MKE2FS-OPTIONS...
make_base() {
  local name=$1 size=$2 img=$work/base/$1.img out
  shift 2
  if ! out=$(E2FSPROGS_FAKE_TIME=1000000000 mke2fs -q -F -t ext4 -U "$uuid" \
    -E "hash_seed=$hash_seed" "$@" -d "$src" "$img" "$size" 2>&1); then
    echo "FAIL: mke2fs for $name: $out"
    exit 1
  fi
  # mke2fs -d leaves small slips; -D indexes the large directories.
  E2FSPROGS_FAKE_TIME=1000000000 e2fsck -fyD "$img" >/dev/null 2>&1
  out=$(e2fsck -fn "$img" 2>&1) || { echo "FAIL: base image $name is not clean: $out"; exit 1; }
}
variants=(ext4 ext4-inline ext4-nocsum ext4-1k)
make_base ext4 160M -b 4096 -N 8192
make_base ext4-inline 160M -b 4096 -N 8192 -O inline_data
make_base ext4-nocsum 160M -b 4096 -N 8192 -O ^metadata_csum,^64bit
# 1 KiB blocks cannot hold the 3000-byte attribute.
setfattr -x user.large "$src/xattrs/large"
setfattr -x user.large "$src/xattrs/both"
make_base ext4-1k 64M -b 1024 -N 8192 -O ^metadata_csum,uninit_bg
if [ -n "$journal_dir" ]; then
  for j in ext4-csum ext3; do
    gzip -dc "$journal_dir/$j.img.gz" >"$work/base/journal-$j.img" ||
      { echo "FAIL: cannot unpack $journal_dir/$j.img.gz"; exit 1; }
  done
  variants+=(journal)
else
  echo "note: testdata/journal/ not found; no journal replay variant"
fi
# The kinds cycle with seed % 9 and the variants with seed % ${#variants[@]}
# (4 or 5): every pair of them comes up.
nvariants=${#variants[@]}
rm -rf "$src"
echo "base images ready in $((SECONDS - started)) s"

# ------------------------------------------------------------------ one seed

# The step scripts are single-quoted on purpose: they expand in the step's
# shell, inside the mount point.
# shellcheck disable=SC2016

# step NAME SCRIPT: runs SCRIPT (bash, in the mount point) under the
# timeout; a timeout is a hang. Returns 1 when the seed must stop (hang, or
# the server is gone).
step() {
  local name=$1 script=$2 rc
  if ! kill -0 "$server" 2>/dev/null; then return 1; fi
  (cd "$mnt" && timeout -k 5 "$step_timeout" bash -c "$script") >/dev/null 2>>"$work/ops.log"
  rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    hang="$name: ${script:0:120}"
    return 1
  fi
  [ "$rc" -ne 0 ] && op_errors=$((op_errors + 1))
  ops=$((ops + 1))
  return 0
}

# The walk: every entry, its attributes, link targets, extended attributes and
# contents (files of 16 MiB or more only in part: a corrupt size can claim
# exabytes). With lookups of absent names in the indexed directory.
walk() {
  local tag=$1
  step "$tag find" "find . -xdev -printf '%y %m %n %u %g %s %T@ %p -> %l\n'" &&
    step "$tag stat" "find . -xdev -exec stat -- {} +" &&
    step "$tag readlink" "find . -xdev -type l -exec readlink -- {} +" &&
    step "$tag getfattr" "getfattr -R -d -h -m - ." &&
    step "$tag cat" "find . -xdev -type f -size -16M -exec cat -- {} +" &&
    step "$tag head" "find . -xdev -type f -size +15M -exec head -c 4194304 -- {} +" &&
    step "$tag statfs" "stat -f ." &&
    step "$tag lookups" 'for n in htree/entry-{00000,00040,00400,01200,01960}- htree/absent-{1..9} bigdir/{1,50,199,absent}; do
      out=$(stat -- "$n" 2>&1) || case $out in *"No such file"*) ;; *) echo "$out" >&2; exit 1 ;; esac; done'
}

writes() {
  step "mkdir" 'mkdir new; mkdir -p new/a/b/c deep/d01/new_in_deep' &&
    step "create" 'for i in $(seq 1 40); do head -c $((i * 3001)) /dev/urandom >new/f$i; done' &&
    step "create in htree" 'for i in $(seq 1 200); do : >htree/added-$i-yyyyyyyyyyyyyyyyyyyy; done' &&
    step "append" 'for f in sizes/* names/* xattrs/* hardlinks/a/orig times/* owners/* modes/setuid base/*; do if [ -f "$f" ]; then echo appended >>"$f"; fi; done' &&
    step "append large" 'head -c 1100000 /dev/urandom >>fragmented; head -c 300000 /dev/urandom >>sizes/4097' &&
    step "fill holes" 'for i in $(seq 1 2 81); do dd if=/dev/urandom of=fragmented bs=4096 seek=$((i * 7)) count=1 conv=notrunc status=none; done' &&
    step "write past 4G" 'printf more | dd of=sparse/holes_past_4g bs=1 seek=4294967000 conv=notrunc status=none' &&
    step "truncate" 'truncate -s 100 sizes/4097; truncate -s 5M new/f1; truncate -s 0 sizes/random_300k; truncate -s 20000 fragmented' &&
    step "rename" 'mv new/f2 new/a/f2; mv new/f3 htree/; mv names/é names/renamed; mv bigdir/7 bigdir/77; mv new/a new/moved; mv sizes/4096 sizes/1' &&
    step "links" 'ln new/f4 new/f4.link; ln -s ../sizes new/sym; ln -s "$(printf "t%.0s" $(seq 300))" new/longsym' &&
    step "setfattr" 'for f in new/f5 xattrs/small xattrs/both xattrs/many3 xattrs/dir_with_xattr htree; do setfattr -n user.added -v value "$f"; setfattr -n user.big -v "$(head -c 500 /dev/zero | tr "\0" b)" "$f"; done; setfattr -x user.small xattrs/both; setfattr -x user.k7 xattrs/many7' &&
    step "chmod" 'chmod 600 new/f6; chown 1:1 new/f7; touch -d @1234567890 new/f8' &&
    step "fsync" 'sync new/f9 fragmented'
}

deletes() {
  step "rm files" 'rm -f htree/entry-01* bigdir/1* new/f1*' &&
    step "rm -rf subtrees" 'rm -rf deep fragmented xattrs sparse '"$1" &&
    step "rmdir" 'rmdir empty_dir new/moved/b/c'
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

fails=0 passes=0 refused=0 recorded=0 mounted=0 total_ops=0 total_op_errors=0
crashes=0 hangs=0 sanitizer=0 touched=0 badexit=0
delete_extra=(htree bigdir sizes names symlinks hardlinks modes owners times special new)

for ((seed = first_seed; seed < first_seed + images; seed++)); do
  variant=${variants[$((seed % nvariants))]}
  base=$work/base/$variant.img
  if [ "$variant" = journal ]; then
    if (((seed / nvariants) % 2)); then base=$work/base/journal-ext3.img; else base=$work/base/journal-ext4-csum.img; fi
    variant=$(basename "$base" .img)
  fi
  # e4fs writes only ext4 (extents); the ext3 image is mounted read-only
  # (its journal is replayed in memory) and the writes fail with EROFS.
  mode=rw
  [ "$variant" = journal-ext3 ] && mode=ro
  label=$variant
  [ $mode = ro ] && label="$variant(ro)"
  rm -rf "$run"
  mkdir -p "$mnt"
  img=$run/fs.img
  cp --sparse=always "$base" "$img"
  log=$work/logs/server.$seed.log
  : >"$work/ops.log"
  if [ "${CORRUPT_CONTROL:-0}" = 1 ]; then
    desc="seed=$seed (control: not corrupted)"
  elif ! desc=$(python3 "$corrupt" "$img" --seed "$seed" 2>&1); then
    echo "FAIL seed=$seed variant=$label: corrupt_image.py failed: $desc"
    fails=$((fails + 1))
    continue
  fi
  desc=${desc#"seed=$seed "}
  [ -n "$keep" ] && cp --sparse=always "$img" "$work/corrupted.img"
  size_before=$(stat -c %s "$img")
  state_before=$(dumpe2fs -h "$img" 2>/dev/null | grep -E '^(Filesystem state|FS Error count):' | tr -s ' ')

  result=PASS why="" note="" hang="" ops=0 op_errors=0
  (cd "$run" && exec "$E4FS" fs.img mnt -f -o "$mode,errors=$policy") >"$log" 2>&1 &
  server=$!
  # Up: mounted, or the server has already exited.
  for ((i = 0; i < 200; i++)); do
    is_mounted "$mnt" && break
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
  done
  was_mounted=no unmount_note="not mounted"
  if is_mounted "$mnt"; then
    was_mounted=yes
    mounted=$((mounted + 1))
    walk first &&
      writes &&
      deletes "${delete_extra[$((seed % ${#delete_extra[@]}))]}" &&
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
  if [ -n "$hang" ] || [ $result = FAIL ]; then
    : # killed by the test after a hang
  elif [ "$status" -gt 128 ]; then
    result=FAIL why="server killed by signal $((status - 128)) (SIG$(kill -l $((status - 128)) 2>/dev/null))"
    crashes=$((crashes + 1))
  elif [ "$status" -eq 2 ] && [ "$was_mounted" = no ]; then
    refused=$((refused + 1))
    note="mount refused: $(grep -v -E 'Sanitizer|^ *#|^=+' "$log" | head -1 | cut -c1-160)"
  elif [ "$was_mounted" = no ]; then
    result=FAIL why="the server exited with status $status without mounting: $(head -2 "$log" | tr '\n' '|' | cut -c1-200)"
    badexit=$((badexit + 1))
  elif [ "$status" -ne 0 ]; then
    if [ "$policy" = panic ]; then
      note="$note; server stopped with status $status (errors=panic)"
    else
      result=FAIL why="server exited with status $status: $(grep -v -E '^ +#[0-9]+ ' "$log" | tail -2 | tr '\n' '|' | cut -c1-200)"
      badexit=$((badexit + 1))
    fi
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
  # Did the server record the corruption in the superblock?
  state_after=$(dumpe2fs -h "$img" 2>/dev/null | grep -E '^(Filesystem state|FS Error count):' | tr -s ' ')
  if [ "$state_after" != "$state_before" ] && [[ $state_after == *"with errors"* || $state_after == *"Error count"* ]]; then
    recorded=$((recorded + 1))
    note="$note; error recorded"
  fi

  if [ $result = PASS ]; then
    passes=$((passes + 1))
    echo "PASS seed=$seed variant=$label: $desc [$note]"
  else
    fails=$((fails + 1))
    echo "FAIL seed=$seed variant=$label: $desc"
    echo "    $why"
    [ -n "$note" ] && echo "    ($note)"
    if server_log_sanitizer "$log" >/dev/null; then sanitizer_frames "$log"; fi
    if [ -s "$log.gdb" ]; then
      echo "    server threads:"
      gdb_threads "$log.gdb"
    fi
    echo "    server log (tail):"
    grep -v -E '^ +#[0-9]+ ' "$log" | tail -5 | sed 's/^/      /'
    if [ -n "$keep" ]; then
      cp "$work/corrupted.img" "$keep/corrupt-seed$seed-$variant.img"
      cat "$log" "$log.gdb" >"$keep/corrupt-seed$seed.log" 2>/dev/null
      echo "    kept: $keep/corrupt-seed$seed-$variant.img, $keep/corrupt-seed$seed.log"
    fi
  fi
  [ "$verbose" = 1 ] && { tail -5 "$log"; tail -20 "$work/ops.log"; }
  rm -f "$log" "$log.gdb" "$work/corrupted.img"
done

echo "----"
echo "summary: $images images (seeds $first_seed..$((first_seed + images - 1)), errors=$policy):" \
  "$passes PASS, $fails FAIL; $refused mounts refused cleanly, $mounted mounted"
echo "  failures: $crashes crashed, $hangs hung, $sanitizer with sanitizer reports," \
  "$badexit with a bad exit status, $touched touched outside the image"
echo "  operations: $total_ops run on mounted images, $total_op_errors of them reported errors"
echo "  errors recorded in the superblock: $recorded of $mounted mounted images"
echo "  time: $((SECONDS - started)) s"
[ "$fails" -eq 0 ]
