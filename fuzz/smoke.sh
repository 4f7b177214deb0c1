#!/usr/bin/env bash
# A short libFuzzer run of every fuzz target, built with clang and
# ASan/UBSan, each starting from its seed corpus. For long campaigns run a
# target by hand: bazel-bin/fuzz/NAME -max_total_time=3600 CORPUS_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SMOKE_SECONDS:-10}
targets=$(bazel query 'kind(cc_binary, //fuzz:*)' 2>/dev/null)
bazel build --config=fuzz $targets //fuzz:seed_images //fuzz:seed_inputs //fuzz:journal_fuzzer_seeds
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in $targets; do
  name=${target##*:}
  corpus="$work/$name"
  mkdir -p "$corpus"
  # Whole images for the image target; the parser targets get the inputs
  # make_seed_inputs.sh cut for them.
  if [ "$name" = image_fuzzer ]; then
    cp bazel-bin/fuzz/seeds/*.img "$corpus/"
  elif [ -d "bazel-bin/fuzz/seeds/$name" ]; then
    cp "bazel-bin/fuzz/seeds/$name"/* "$corpus/"
  fi
  echo "fuzzing $name for ${seconds}s"
  "bazel-bin/fuzz/$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=0 "$corpus" >"$work/$name.log" 2>&1 ||
    { tail -50 "$work/$name.log"; echo "fuzz target $name failed"; exit 1; }
done
echo "fuzz smoke passed"
