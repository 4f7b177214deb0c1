#!/usr/bin/env bash
# The embedding example lists an image made by mke2fs -d with the sizes
# of its files and their total.
set -euo pipefail
bin=$1
command -v mke2fs >/dev/null || PATH=$PATH:/usr/sbin:/sbin
work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/treesize.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src/sub"
printf 'hello\n' >"$work/src/a"
head -c 5000 /dev/zero >"$work/src/sub/b"
mke2fs -q -F -t ext4 -d "$work/src" "$work/img" 8M >/dev/null 2>&1
out=$("$bin" "$work/img")
echo "$out"
grep -Eq '^ +6  /a$' <<<"$out"
grep -Eq '^ +5000  /sub/b$' <<<"$out"
grep -Eq '^ +[0-9]+  total$' <<<"$out"
out=$("$bin" "$work/img" /sub)
grep -Eq '^ +5000  /sub/b$' <<<"$out"
if "$bin" "$work/img" /missing 2>/dev/null; then
  echo "FAIL: a missing path must fail"
  exit 1
fi
echo PASS
