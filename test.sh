#!/usr/bin/env bash
# Runs every test: unit tests, the same unit tests under ASan/UBSan, the
# mount-level tests (FUSE, the kernel as oracle where loop mounts work), a
# short smoke run of every fuzz target, and the formatting check.
set -euo pipefail
cd "$(dirname "$0")"

scripts/install-deps.sh

echo "== formatting (clang-format, Google style)"
git ls-files '*.cc' '*.h' | xargs -r clang-format --dry-run --Werror

echo "== unit and mount tests"
# Optimized, as the server is installed (run.sh): the mount tests and the
# million-entry directory take a third of the time.
bazel test -c opt //...

echo "== unit tests under ASan/UBSan"
# (tests tagged "slow" build a million-entry directory: once is enough)
bazel test --config=asan --test_tag_filters=-mount,-slow //cache/... //ext4/... //fuse/...

if [ -x fuzz/smoke.sh ]; then
  echo "== fuzz smoke"
  fuzz/smoke.sh
fi
echo "all tests passed"
