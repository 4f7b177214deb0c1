#!/usr/bin/env bash
# `e4 check` through the binary: e2fsck's exit codes (0 clean, 4 problems
# left uncorrected, 8 operational error, 16 usage error), the text and JSON
# reports, on clean images and on images damaged with debugfs, each of which
# `e2fsck -fn` flags too. Needs e2fsprogs and python3, not root.
#
#   tests/e4_check_test.sh path/to/e4
# The debugfs commands below are single-quoted on purpose: they expand once
# the image they query exists.
# shellcheck disable=SC2016
set -uo pipefail

# shellcheck source=tests/testlib.sh
source "$(dirname "${BASH_SOURCE[0]}")/testlib.sh"

E4=${1:-${E4:-e4}}
if [[ $E4 != */* ]]; then
  E4=$(command -v "$E4") || {
    echo "FAIL: e4 binary not found (pass it as \$1)" >&2
    exit 1
  }
fi
E4=$(realpath "$E4")
for t in mke2fs e2fsck debugfs python3; do
  command -v "$t" >/dev/null 2>&1 || skip "$t is not installed"
done

work=$(mktemp -d "${TEST_TMPDIR:-${TMPDIR:-/tmp}}/e4_check.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# expect_exit WANT DESCRIPTION -- COMMAND...: runs COMMAND (standard output
# in $work/out, standard error in $work/err) and compares its exit code.
expect_exit() {
  local want=$1 what=$2
  shift 3
  "$@" >"$work/out" 2>"$work/err"
  local got=$?
  if [ "$got" -ne "$want" ]; then
    fail "$what: exit $got, want $want"
    sed 's/^/    /' "$work/out" "$work/err"
    return 1
  fi
  echo "ok: $what"
}

# The source tree: a file, a bigger file, a symlink, two directories.
src=$work/src
mkdir -p "$src/sub" "$src/sub2"
printf 'hello\n' >"$src/file"
seq 1 5000 >"$src/big"
ln -s file "$src/link"
for i in $(seq 1 50); do printf '%s\n' "$i" >"$src/sub/f$i"; done

img=$work/fs.img
make_image() {
  mke2fs -q -F "$@" -b 1024 -d "$src" "$img" 4M >/dev/null 2>&1 ||
    fail "mke2fs $* failed"
}
q() { debugfs -R "$1" "$img" 2>/dev/null; }
damage() { debugfs -w -R "$1" "$img" >/dev/null 2>&1; }

# has_kind FILE KIND: whether the JSON report in FILE (which must parse)
# lists a problem of KIND.
has_kind() {
  local kinds
  kinds=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("\n".join(p["kind"] for p in r["problems"]))' "$1") ||
    return 1
  grep -qx "$2" <<<"$kinds"
}

# Usage and operational errors.
expect_exit 0 "--help" -- "$E4" check --help
grep -q "usage: e4 check" "$work/out" || fail "--help prints no usage"
expect_exit 16 "no image" -- "$E4" check
expect_exit 16 "unknown option" -- "$E4" check --bogus "$img"
expect_exit 16 "two images" -- "$E4" check "$img" "$img"
expect_exit 8 "missing image" -- "$E4" check "$work/does-not-exist.img"
head -c 1048576 /dev/zero >"$work/zeros.img"
expect_exit 8 "not a filesystem" -- "$E4" check "$work/zeros.img"
grep -q "^e4 check: " "$work/err" || fail "not a filesystem: no 'e4 check:' error"
expect_exit 8 "not a filesystem (--json)" -- "$E4" check --json "$work/zeros.img"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["exit_code"] == 8 and r["error"]' \
  "$work/out" 2>/dev/null || fail "--json error report is not the expected JSON"

# Clean images, as e2fsck -fn sees them.
for args in "-t ext4" "-t ext4 -O ^metadata_csum,^64bit" "-t ext3" "-t ext2" \
  "-t ext4 -O inline_data" "-t ext4 -O bigalloc -C 4096"; do
  # shellcheck disable=SC2086
  make_image $args
  e2fsck -fn "$img" >/dev/null 2>&1 || fail "e2fsck -fn is not clean on $args"
  expect_exit 0 "clean: $args" -- "$E4" check "$img"
  grep -q "clean" "$work/out" || fail "clean: $args: no 'clean' in the output"
  expect_exit 0 "clean --json: $args" -- "$E4" check -fn --json "$img"
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["clean"] and r["problems"] == [] and r["inodes_checked"] > 10' \
    "$work/out" 2>/dev/null || fail "clean --json: $args: unexpected report"
done

# corrupt NAME KIND MKE2FS-ARGS -- DEBUGFS-COMMAND...: e2fsck -fn must flag
# the damage (exit code with bit 4) and `e4 check` exit 4 reporting KIND.
corrupt() {
  local name=$1 kind=$2 args=$3
  shift 4
  # shellcheck disable=SC2086
  make_image $args
  local cmd
  for cmd in "$@"; do
    cmd=$(eval "echo \"$cmd\"")
    damage "$cmd"
  done
  e2fsck -fn "$img" >"$work/e2fsck.out" 2>&1
  local rc=$?
  if [ $((rc & 4)) -eq 0 ]; then
    fail "$name: e2fsck -fn does not flag it (exit $rc)"
    sed 's/^/    /' "$work/e2fsck.out"
  fi
  local before after
  before=$(sha256sum "$img")
  expect_exit 4 "$name" -- "$E4" check --json "$img" || return
  after=$(sha256sum "$img")
  [ "$before" = "$after" ] || fail "$name: the check changed the image"
  if ! has_kind "$work/out" "$kind"; then
    fail "$name: no '$kind' problem reported"
    sed 's/^/    /' "$work/out"
  fi
}

corrupt "link count" link_count "-t ext4" -- 'sif /file links_count 5'
corrupt "block in use marked free" block_bitmap "-t ext4" -- \
  'freeb $(q "bmap /big 0")'
corrupt "free block marked in use" block_bitmap "-t ext4" -- \
  'setb $(q "ffb 1 3000" | sed -n "s/.*found: \([0-9]*\).*/\1/p")'
corrupt "inode marked free" inode_bitmap "-t ext4" -- 'freei /file'
corrupt "cleared inode" dirent_inode "-t ext4" -- 'clri /file'
corrupt "bad extent root" extent_tree "-t ext4" -- 'sif /file block[0] 12345'
corrupt "indirect block outside" block_range "-t ext2" -- \
  'sif /file block[0] 12345'
corrupt "block claimed twice" duplicate_block "-t ext2" -- \
  'sif /file block[0] $(q "bmap /big 0")'
corrupt "group descriptor checksum" group_descriptor_checksum "-t ext4" -- \
  'set_bg 0 free_blocks_count 7'
corrupt "group free count" group_free_blocks "-t ext4" -- \
  'set_bg 0 free_blocks_count 7' 'set_bg 0 checksum calc'
corrupt "unconnected directory" unconnected_directory "-t ext4" -- \
  'unlink /sub2'
corrupt "directory hard link" directory_hardlink "-t ext4" -- \
  'link /sub2 /sub/alias'
corrupt "i_blocks" i_blocks "-t ext4" -- 'sif /big blocks 100'
corrupt "i_size" i_size "-t ext4" -- 'sif /big size 1'
corrupt "file type" dirent_type "-t ext4" -- 'sif /file mode 0x21a4'

# A flipped byte in a directory block (metadata_csum: the checksum tail).
make_image -t ext4
block=$(q "bmap /sub 0")
printf '\x55' | dd of="$img" bs=1 seek=$((block * 1024 + 30)) conv=notrunc status=none
expect_exit 4 "flipped directory byte" -- "$E4" check --json "$img" &&
  { has_kind "$work/out" directory_checksum ||
    fail "flipped directory byte: no directory_checksum problem"; }

# A flipped byte in an inode: its checksum.
make_image -t ext4
loc=$(q "imap /file")
blk=$(echo "$loc" | sed -n 's/.*located at block \([0-9]*\).*/\1/p')
off=$(echo "$loc" | sed -n 's/.*offset \(0x[0-9a-f]*\).*/\1/p')
printf '\x55' | dd of="$img" bs=1 seek=$((blk * 1024 + off + 8)) conv=notrunc status=none
e2fsck -fn "$img" >/dev/null 2>&1
[ $(($? & 4)) -ne 0 ] || fail "flipped inode byte: e2fsck -fn does not flag it"
expect_exit 4 "flipped inode byte" -- "$E4" check -v "$img" &&
  { grep -q "inode_checksum" "$work/out" || fail "flipped inode byte: no inode_checksum"; }
grep -q "problems by kind:" "$work/out" || fail "-v prints no summary by kind"

# A journal that needs recovery (e2fsck -n skips the replay and flags it).
if gz=$(runfile testdata/journal/ext4-csum.img.gz 2>/dev/null); then
  gzip -dc "$gz" >"$work/journal.img"
  expect_exit 4 "journal needs recovery" -- "$E4" check --json "$work/journal.img" &&
    { has_kind "$work/out" journal || fail "needs recovery: no journal problem"; }
else
  echo "note: testdata/journal images not found; skipping the recovery case"
fi

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "PASS"
