#!/usr/bin/env bash
# A long fuzzing campaign measured in CPU time, not wall time: each target
# runs from its seed corpus until its process has used FUZZ_CPU_SECONDS of
# CPU (default 600), so a busy machine slows a campaign down without
# shortening it. FUZZ_JOBS targets run at once (default: one per core), at
# low priority. The corpus each target grows is kept in FUZZ_WORK (default a
# directory under /tmp), so a later campaign can continue from it.
#
#   fuzz/campaign.sh                  every target
#   fuzz/campaign.sh extent_fuzzer    only the named ones
#
# Prints one line per target: CPU seconds, executions, and the outcome.
# Exits non-zero when any target found a crash, leak, timeout or hang; its
# reproducer and log are left in FUZZ_WORK.
set -euo pipefail
cd "$(dirname "$0")/.."
cpu_limit=${FUZZ_CPU_SECONDS:-600}
# libFuzzer's timeout is wall time: at low priority on a busy machine a
# 10-second one fires on inputs that run in a fraction of a second.
timeout=${FUZZ_TIMEOUT:-60}
jobs=${FUZZ_JOBS:-$(nproc)}
work=${FUZZ_WORK:-/tmp/e4fs-fuzz-campaign}
mkdir -p "$work"

if [ $# -gt 0 ]; then
  names=("$@")
else
  mapfile -t names < <(bazel query 'kind(cc_binary, //fuzz:*)' 2>/dev/null |
    sed 's/.*://' | grep '_fuzzer$')
fi
bazel build --config=fuzz "${names[@]/#///fuzz:}" //fuzz:seed_images \
  //fuzz:seed_inputs //fuzz:journal_fuzzer_seeds

# Copies of the binaries, so a rebuild during a campaign changes nothing.
mkdir -p "$work/bin"
for name in "${names[@]}"; do
  cp -f "bazel-bin/fuzz/$name" "$work/bin/$name"
done

cpu_seconds_of() {  # utime + stime of a running process, in seconds
  local ticks
  ticks=$(awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null) || return 1
  echo $((ticks / $(getconf CLK_TCK)))
}

run_one() {
  local name=$1 corpus="$work/$1/corpus" log="$work/$1/log"
  mkdir -p "$corpus" "$work/$name/artifacts"
  if [ "$name" = image_fuzzer ]; then
    cp -n bazel-bin/fuzz/seeds/*.img "$corpus/"
  elif [ -d "bazel-bin/fuzz/seeds/$name" ]; then
    cp -n "bazel-bin/fuzz/seeds/$name"/* "$corpus/"
  fi
  nice -n 19 "$work/bin/$name" -max_total_time=86400 -timeout="$timeout" \
    -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/$name/artifacts/" "$corpus" >"$log" 2>&1 &
  local pid=$! used=0
  while kill -0 "$pid" 2>/dev/null; do
    used=$(cpu_seconds_of "$pid") || break
    if [ "$used" -ge "$cpu_limit" ]; then
      kill -INT "$pid"
      break
    fi
    sleep 5
  done
  local status=0
  wait "$pid" || status=$?
  local execs
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  local outcome=clean
  if ls "$work/$name/artifacts"/* >/dev/null 2>&1 ||
    grep -qE 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|runtime error:' "$log"; then
    outcome="FINDING (see $work/$name)"
  elif [ "$used" -lt "$cpu_limit" ]; then
    outcome="STOPPED EARLY with status $status (see $log)"
  fi
  printf '%-24s %6s CPU s %12s executions  %s\n' "$name" "$used" \
    "${execs:-?}" "$outcome" | tee "$work/$name/result"
}

running=0
for name in "${names[@]}"; do
  run_one "$name" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

failed=0
for name in "${names[@]}"; do
  grep -q ' clean$' "$work/$name/result" || failed=1
done
exit "$failed"
