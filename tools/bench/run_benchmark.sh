#!/usr/bin/env bash
# Runs the e4fs benchmark: the same phases (bench_driver) on fresh ext4 images
# of one geometry, served by e4fs, fuse2fs, the kernel's ext4 (loop mount) and
# passthrough_ll over a loop mount (the floor: what any FUSE server costs),
# in several rounds; prints median seconds per phase and the ratios
# e4fs/kernel, e4fs/passthrough and e4fs/fuse2fs, and checks every image with
# e2fsck -fn afterwards. Run as root: sudo tools/bench/run_benchmark.sh
#
# A "cold" phase (walk, read, bigdir_lookup, seqread, randread) runs after an
# untimed unmount, sync, drop_caches and mount: a FUSE server's own caches
# survive drop_caches, so only a fresh mount makes it start cold.

set -u -o pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "${SCRIPT_DIR}/../.." && pwd)"
readonly SCRIPT_DIR REPO
readonly ALL_SYSTEMS="e4fs fuse2fs kernel passthrough"
readonly PHASES="mount16t mount create walk read link rename unlink bigdir_create bigdir_lookup seqwrite seqread randread"
readonly PASSTHROUGH_SRC=/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c
# passthrough_ll keeps a descriptor open per inode it has seen.
readonly PASSTHROUGH_MAX_ENTRIES=19000
# Fixed so every image has the same geometry and the same htree hash seed.
readonly IMAGE_UUID=5f0a6c1e-4d2b-4c59-9a37-0e4f5b6c7d80
readonly HASH_SEED=8d3f1c2a-6b7e-4f10-a2c4-9e8d7c6b5a41

usage() {
  cat <<EOF
usage: sudo $0 [options]
  --rounds N          rounds; each makes a fresh image per system (default 3)
  --files N           files in the source-like tree (default 10000)
  --entries N         entries in the big directory (default 100000;
                      passthrough runs min(N, ${PASSTHROUGH_MAX_ENTRIES}))
  --bytes N           size of the sequential file (default 1G; K/M/G suffixes)
  --randops N         4 KiB random reads (default 20000)
  --image-size SIZE   image size for mke2fs (default 4G; sparse)
  --systems "LIST"    any of: ${ALL_SYSTEMS} (default: all)
  --e4fs PATH         e4fs binary (default bazel-bin/tools/e4fs, else e4fs on PATH)
  --e4fs-options OPTS -o options for e4fs (default rw,fakeroot)
  --driver PATH       bench_driver (default bazel-bin/tools/bench_driver,
                      else bench_driver on PATH)
  --workdir DIR       images, logs and results (default: a new directory
                      under /var/tmp)
  --seed S            workload seed (default 1)
  --phase-timeout S   seconds before a phase counts as hung (default 3600)
  --keep-images       keep the images after e2fsck (default: only failed ones)
  --quick             small sizes for a smoke run (300 files, 3000 entries,
                      64M, 2000 random reads, 1G image, 1 round)
  -h, --help          this text
EOF
}

die() {
  echo "run_benchmark: $*" >&2
  exit 2
}

# ----------------------------------------------------------------------------
# Options.

rounds="" files="" entries="" bytes="" randops="" image_size=""
systems="${ALL_SYSTEMS}"
e4fs_bin="" e4fs_options="rw,fakeroot" driver="" workdir="" seed=1
phase_timeout=3600 keep_images=0 quick=0

while (($#)); do
  case "$1" in
    --keep-images) keep_images=1; shift; continue ;;
    --quick) quick=1; shift; continue ;;
    -h | --help) usage; exit 0 ;;
  esac
  (($# >= 2)) || die "option $1 needs a value"
  case "$1" in
    --rounds) rounds="$2" ;;
    --files) files="$2" ;;
    --entries) entries="$2" ;;
    --bytes) bytes="$2" ;;
    --randops) randops="$2" ;;
    --image-size) image_size="$2" ;;
    --systems) systems="$2" ;;
    --e4fs) e4fs_bin="$2" ;;
    --e4fs-options) e4fs_options="$2" ;;
    --driver) driver="$2" ;;
    --workdir) workdir="$2" ;;
    --seed) seed="$2" ;;
    --phase-timeout) phase_timeout="$2" ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
  shift 2
done

if ((quick)); then
  : "${rounds:=1}" "${files:=300}" "${entries:=3000}" "${bytes:=64M}"
  : "${randops:=2000}" "${image_size:=1G}"
fi
: "${rounds:=3}" "${files:=10000}" "${entries:=100000}" "${bytes:=1G}"
: "${randops:=20000}" "${image_size:=4G}"

for n in "${rounds}" "${files}" "${entries}" "${randops}"; do
  [[ "$n" =~ ^[0-9]+$ ]] || die "not a count: $n"
done
((rounds >= 1)) || die "--rounds must be at least 1"
((entries >= 1)) || die "--entries must be at least 1"
[[ "${bytes}" =~ ^[0-9]+[KMG]?$ ]] || die "bad --bytes: ${bytes}"
for s in ${systems}; do
  [[ " ${ALL_SYSTEMS} " == *" $s "* ]] || die "unknown system: $s"
done
[[ -n "${systems// /}" ]] || die "no systems given"

((EUID == 0)) || die "run as root (mounts, loop devices, drop_caches)"

# ----------------------------------------------------------------------------
# Tools.

for tool in mke2fs e2fsck mount umount losetup timeout truncate; do
  command -v "${tool}" >/dev/null || die "missing ${tool}"
done

has_system() { [[ " ${systems} " == *" $1 "* ]]; }

if [[ -z "${driver}" ]]; then
  if [[ -x "${REPO}/bazel-bin/tools/bench_driver" ]]; then
    driver="${REPO}/bazel-bin/tools/bench_driver"
  else
    driver="$(command -v bench_driver || true)"
  fi
fi
[[ -n "${driver}" && -x "${driver}" ]] ||
  die "no bench_driver (bazel build //tools:bench_driver, or --driver PATH)"
driver="$(realpath -s "${driver}")"

if has_system e4fs; then
  if [[ -z "${e4fs_bin}" ]]; then
    if [[ -x "${REPO}/bazel-bin/tools/e4fs" ]]; then
      e4fs_bin="${REPO}/bazel-bin/tools/e4fs"
    else
      e4fs_bin="$(command -v e4fs || true)"
    fi
  fi
  [[ -n "${e4fs_bin}" && -x "${e4fs_bin}" ]] ||
    die "no e4fs (bazel build //tools:e4fs, or --e4fs PATH)"
  e4fs_bin="$(realpath -s "${e4fs_bin}")"
fi
if has_system fuse2fs; then
  command -v fuse2fs >/dev/null || die "missing fuse2fs (Debian package fuse2fs)"
fi
if has_system passthrough; then
  [[ -f "${PASSTHROUGH_SRC}" ]] ||
    die "missing ${PASSTHROUGH_SRC} (Debian package libfuse3-dev)"
  command -v cc >/dev/null || die "missing cc"
  pkg-config --exists fuse3 || die "pkg-config does not know fuse3"
fi

# passthrough_ll needs a descriptor per inode; raise the limit as far as
# allowed and keep its big directory under it.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile="$(ulimit -n)"
pt_entries="${entries}"
((pt_entries > PASSTHROUGH_MAX_ENTRIES)) && pt_entries=${PASSTHROUGH_MAX_ENTRIES}
if [[ "${nofile}" != unlimited ]] && ((pt_entries > nofile - 1000)); then
  pt_entries=$((nofile - 1000))
fi
if has_system passthrough && ((pt_entries < 1)); then
  die "open-files limit ${nofile} too low for passthrough"
fi

# ----------------------------------------------------------------------------
# Work directory.

if [[ -z "${workdir}" ]]; then
  workdir="$(mktemp -d /var/tmp/e4fs-bench.XXXXXX)" || die "mktemp failed"
else
  mkdir -p "${workdir}" || die "cannot make ${workdir}"
fi
workdir="$(realpath "${workdir}")"
readonly MNT="${workdir}/mnt"
readonly LOWER="${workdir}/lower"
readonly LOGS="${workdir}/logs"
readonly RESULTS="${workdir}/results.tsv"
mkdir -p "${MNT}" "${LOWER}" "${LOGS}"

# True when something is mounted on $1. Reads the mount table rather than
# stat()ing the directory, which fails or hangs when a FUSE server has died
# or stopped answering.
is_mounted() {
  local escaped="${1//\\/\\134}"
  escaped="${escaped// /\\040}"
  escaped="${escaped//$'\t'/\\011}"
  escaped="${escaped//$'\n'/\\012}"
  MOUNT_PATH="${escaped}" awk '$5 == ENVIRON["MOUNT_PATH"] { found = 1 }
    END { exit !found }' /proc/self/mountinfo
}

for dir in "${MNT}" "${LOWER}"; do
  is_mounted "${dir}" && die "${dir} is mounted already"
done
avail_kb="$(df --output=avail -k "${workdir}" | tail -1)"
# The sequential file, the tree (~140 MB at 10000 files) and metadata.
case "${bytes}" in
  *G) need_kb=$((${bytes%G} * 1048576)) ;;
  *M) need_kb=$((${bytes%M} * 1024)) ;;
  *K) need_kb=$((${bytes%K})) ;;
  *) need_kb=$((bytes / 1024)) ;;
esac
need_kb=$((need_kb + files * 16 + 512 * 1024))
((avail_kb > need_kb)) ||
  die "${workdir} has ${avail_kb} KiB free, the benchmark needs about ${need_kb}"

# ----------------------------------------------------------------------------
# Cleanup: whatever this script mounted or started is undone on any exit.

server_pid=0   # the FUSE server of the current mount, 0 if none
image=""       # the current image

process_alive() {
  local state
  state="$(awk '{sub(/.*\) /, ""); print substr($0, 1, 1)}' \
    "/proc/$1/stat" 2>/dev/null)" || return 1
  [[ -n "${state}" && "${state}" != Z && "${state}" != X ]]
}

detach_loops() {
  local dev
  [[ -n "${image}" ]] || return 0
  for dev in $(losetup -j "${image}" -O NAME -n 2>/dev/null); do
    losetup -d "${dev}" 2>/dev/null
  done
}

# Waits (up to 30 s) until no loop device refers to the image, so that
# e2fsck sees everything the kernel wrote.
wait_loops_detached() {
  local i
  [[ -n "${image}" ]] || return 0
  for ((i = 0; i < 3000; i++)); do
    [[ -z "$(losetup -j "${image}" 2>/dev/null)" ]] && return 0
    sleep 0.01
  done
  echo "run_benchmark: loop device for ${image} did not go away" >&2
  return 1
}

# Unmounts by any means, stops the server this script started (by its pid)
# and detaches loop devices. Used after failures and on exit.
force_unmount() {
  local i
  if is_mounted "${MNT}"; then
    umount "${MNT}" 2>/dev/null || umount -l "${MNT}" 2>/dev/null
  fi
  if ((server_pid > 0)); then
    for ((i = 0; i < 100 && 1; i++)); do
      process_alive "${server_pid}" || break
      sleep 0.1
    done
    if process_alive "${server_pid}"; then
      kill -TERM "${server_pid}" 2>/dev/null
      sleep 2
      process_alive "${server_pid}" && kill -KILL "${server_pid}" 2>/dev/null
    fi
    server_pid=0
  fi
  if is_mounted "${LOWER}"; then
    umount "${LOWER}" 2>/dev/null || umount -l "${LOWER}" 2>/dev/null
  fi
  detach_loops
  wait_loops_detached
}

on_exit() {
  force_unmount >/dev/null 2>&1
}
trap on_exit EXIT
trap 'echo "run_benchmark: interrupted" >&2; exit 130' INT TERM HUP

# ----------------------------------------------------------------------------
# Mounting each system.

drop_caches() {
  sync
  echo 3 >/proc/sys/vm/drop_caches
}

# Runs `bench_driver mount` for system $1; its output line goes to the
# global mount_line.
mount_system() {
  local system="$1" log="${LOGS}/$2.server.log" pidfile="${workdir}/pid"
  local -a cmd server=(--server)
  case "${system}" in
    kernel) cmd=(mount -o loop "${image}" "${MNT}") server=() ;;
    fuse2fs) cmd=(fuse2fs "${image}" "${MNT}" -o fakeroot -f) ;;
    e4fs) cmd=("${e4fs_bin}" "${image}" "${MNT}" -o "${e4fs_options}" -f) ;;
    passthrough)
      # shellcheck disable=SC2016  # $1.. expand in the inner shell
      cmd=(sh -c 'mount -o loop "$1" "$2" && exec "$3" -f \
             -o source="$2",cache=always,writeback "$4"' \
        sh "${image}" "${LOWER}" "${workdir}/passthrough_ll" "${MNT}")
      ;;
  esac
  rm -f "${pidfile}"
  mount_line=""
  if ! mount_line="$("${driver}" mount "${MNT}" "${server[@]}" --timeout 60 \
    --pidfile "${pidfile}" --log "${log}" -- "${cmd[@]}")"; then
    echo "run_benchmark: mounting ${system} failed; server log ${log}:" >&2
    tail -n 20 "${log}" >&2
    return 1
  fi
  server_pid="$(cat "${pidfile}")"
}

# Unmounts system $1 and waits until the server has exited and the loop
# devices are gone, so the image holds everything.
unmount_system() {
  local system="$1" pid_args=()
  ((server_pid > 0)) && pid_args=(--pid "${server_pid}")
  if ! "${driver}" unmount "${MNT}" --timeout 300 "${pid_args[@]}" \
    -- umount "${MNT}" >/dev/null; then
    echo "run_benchmark: unmounting ${system} failed" >&2
    return 1
  fi
  server_pid=0
  if [[ "${system}" == passthrough ]]; then
    umount "${LOWER}" || return 1
  fi
  wait_loops_detached
}

# ----------------------------------------------------------------------------
# One round of one system.

failures=0
fail_notes=()

# record ROUND SYSTEM PHASE SECONDS OPS STATUS
record() {
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"${RESULTS}"
}

# Parses "phase=P seconds=S ops=N" into the globals r_phase, r_sec, r_ops.
parse_line() {
  r_phase="" r_sec="" r_ops=""
  local word
  for word in $1; do
    case "${word}" in
      phase=*) r_phase="${word#phase=}" ;;
      seconds=*) r_sec="${word#seconds=}" ;;
      ops=*) r_ops="${word#ops=}" ;;
    esac
  done
  [[ -n "${r_phase}" && -n "${r_sec}" && -n "${r_ops}" ]]
}

report_phase() {
  printf '  round %d  %-11s %-14s %10.4f s  %8s ops\n' "$1" "$2" "$3" "$4" "$5"
}

# run_phase ROUND SYSTEM PHASE DRIVER_ARGS...
run_phase() {
  local round="$1" system="$2" phase="$3" out err="${LOGS}/$2.$1.$3.err"
  shift 3
  if ! out="$(timeout -k 10 "${phase_timeout}" "${driver}" "${phase}" \
    "${MNT}" "$@" 2>"${err}")" || ! parse_line "${out}"; then
    echo "run_benchmark: FAILED: ${system} round ${round} phase ${phase}:" >&2
    sed 's/^/    /' "${err}" >&2
    record "${round}" "${system}" "${phase}" "" "" FAIL
    fail_notes+=("${system} round ${round}: ${phase} failed: $(tail -n 1 "${err}")")
    return 1
  fi
  record "${round}" "${system}" "${phase}" "${r_sec}" "${r_ops}" ok
  report_phase "${round}" "${system}" "${phase}" "${r_sec}" "${r_ops}"
}

# Unmount, drop the kernel's caches, mount again: nothing timed.
cold_remount() {
  local round="$1" system="$2"
  unmount_system "${system}" || return 1
  drop_caches
  mount_system "${system}" "${system}.${round}"
}

# Descriptors the FUSE server holds (e4fs must not keep one per inode).
record_server_fds() {
  local round="$1" system="$2" n
  ((server_pid > 0)) && [[ -d "/proc/${server_pid}/fd" ]] || return 0
  n="$(find "/proc/${server_pid}/fd" -mindepth 1 -maxdepth 1 2>/dev/null |
    wc -l)" || return 0
  record "${round}" "${system}" server_fds "${n}" 0 info
}

# mount16t: a fresh sparse image of 16 TiB less 1 MiB (the largest file the
# host's ext4 holds), mounted with cold caches; then the idle server's RSS.
run_big_mount() {
  local round="$1" system="$2" saved="${image}" rss
  image="${workdir}/${system}.${round}.16t.img"
  rm -f "${image}"
  if ! truncate -s "$((16 * 1024 ** 4 - 1024 ** 2))" "${image}" ||
    ! mke2fs -q -F -t ext4 "${image}" \
      >"${LOGS}/${system}.${round}.16t.mke2fs.log" 2>&1; then
    record "${round}" "${system}" mount16t "" "" FAIL
    fail_notes+=("${system} round ${round}: making the 16 TiB image failed")
  else
    drop_caches
    if mount_system "${system}" "${system}.${round}.16t" &&
      parse_line "${mount_line}"; then
      record "${round}" "${system}" mount16t "${r_sec}" 1 ok
      report_phase "${round}" "${system}" mount16t "${r_sec}" 1
      sleep 1
      if ((server_pid > 0)) && [[ -r "/proc/${server_pid}/status" ]]; then
        rss="$(awk '$1 == "VmRSS:" { print $2 }' "/proc/${server_pid}/status")"
        [[ -n "${rss}" ]] && record "${round}" "${system}" idle_rss_kib "${rss}" 0 info
      fi
      unmount_system "${system}" ||
        fail_notes+=("${system} round ${round}: unmounting the 16 TiB image failed")
    else
      record "${round}" "${system}" mount16t "" "" FAIL
      fail_notes+=("${system} round ${round}: mounting the 16 TiB image failed")
    fi
  fi
  rm -f "${image}"
  image="${saved}"
}

run_round() {
  local round="$1" system="$2" n_entries="${entries}"
  [[ "${system}" == passthrough ]] && n_entries="${pt_entries}"
  local -a common=(--files "${files}" --entries "${n_entries}"
    --bytes "${bytes}" --seed "${seed}")

  run_big_mount "${round}" "${system}"
  image="${workdir}/${system}.${round}.img"
  rm -f "${image}"
  truncate -s "${image_size}" "${image}" || return 1
  if ! mke2fs -q -F -t ext4 -U "${IMAGE_UUID}" \
    -E "hash_seed=${HASH_SEED},lazy_itable_init=0,lazy_journal_init=0" \
    "${image}" >"${LOGS}/${system}.${round}.mke2fs.log" 2>&1; then
    cat "${LOGS}/${system}.${round}.mke2fs.log" >&2
    return 1
  fi
  drop_caches

  if ! mount_system "${system}" "${system}.${round}" ||
    ! parse_line "${mount_line}"; then
    record "${round}" "${system}" mount "" "" FAIL
    fail_notes+=("${system} round ${round}: mount failed")
    return 1
  fi
  record "${round}" "${system}" mount "${r_sec}" 1 ok
  report_phase "${round}" "${system}" mount "${r_sec}" 1

  local step
  for step in create cold:walk cold:read link rename unlink bigdir_create \
    cold:bigdir_lookup seqwrite cold:seqread cold:randread; do
    local phase="${step#cold:}" extra=()
    if [[ "${step}" == cold:* ]] && ! cold_remount "${round}" "${system}"; then
      record "${round}" "${system}" "${phase}" "" "" FAIL
      fail_notes+=("${system} round ${round}: remount before ${phase} failed")
      return 1
    fi
    case "${phase}" in
      bigdir_lookup) extra=(--ops "${n_entries}") ;;
      randread) extra=(--ops "${randops}") ;;
    esac
    run_phase "${round}" "${system}" "${phase}" "${common[@]}" \
      "${extra[@]}" || return 1
    [[ "${phase}" == bigdir_lookup ]] && record_server_fds "${round}" "${system}"
  done
  unmount_system "${system}"
}

# e2fsck -fn on the unmounted image; loud on any complaint.
check_image() {
  local round="$1" system="$2" log="${LOGS}/$2.$1.e2fsck.log"
  if e2fsck -fn "${image}" >"${log}" 2>&1; then
    record "${round}" "${system}" e2fsck "" "" ok
    ((keep_images)) || rm -f "${image}"
  else
    local rc=$?
    echo "run_benchmark: E2FSCK FAILED (exit ${rc}) on ${system} round" \
      "${round}; image kept at ${image}:" >&2
    sed 's/^/    /' "${log}" | head -n 60 >&2
    record "${round}" "${system}" e2fsck "" "" FAIL
    fail_notes+=("${system} round ${round}: e2fsck -fn exit ${rc} (${log})")
    failures=$((failures + 1))
  fi
}

# ----------------------------------------------------------------------------
# The run.

if has_system passthrough; then
  read -r -a fuse3_flags <<<"$(pkg-config --cflags --libs fuse3)"
  cc -O2 -Wall -o "${workdir}/passthrough_ll" "${PASSTHROUGH_SRC}" \
    "${fuse3_flags[@]}" >"${LOGS}/passthrough_ll.build.log" 2>&1 ||
    die "building passthrough_ll failed: see ${LOGS}/passthrough_ll.build.log"
fi

printf 'round\tsystem\tphase\tseconds\tops\tstatus\n' >"${RESULTS}"

echo "e4fs benchmark: ${rounds} round(s); systems: ${systems}"
echo "  tree ${files} files; big directory ${entries} entries" \
  "(passthrough ${pt_entries}); sequential file ${bytes}; ${randops} random reads"
echo "  images: mke2fs -t ext4, ${image_size}, fixed UUID and hash seed;" \
  "open-files limit ${nofile}"
echo "  kernel $(uname -r); $(mke2fs -V 2>&1 | head -n 1)"
has_system e4fs && echo "  e4fs: ${e4fs_bin} -o ${e4fs_options}" \
  "($("${e4fs_bin}" -V 2>&1 | head -n 1))"
echo "  driver: ${driver}"
echo "  workdir: ${workdir}"

for ((round = 1; round <= rounds; round++)); do
  for system in ${systems}; do
    if ! run_round "${round}" "${system}"; then
      failures=$((failures + 1))
      echo "run_benchmark: ${system} round ${round} stopped early" >&2
      force_unmount
    fi
    check_image "${round}" "${system}"
    image=""
  done
done

# ----------------------------------------------------------------------------
# Summary: medians over the rounds, and ratios where both sides ran.

echo
echo "Median seconds over ${rounds} round(s) (results: ${RESULTS})"
awk -F'\t' -v systems="${systems}" -v phases="${PHASES}" \
  -v rounds="${rounds}" '
function median(list,    n, v, i, j, t) {
  n = split(list, v, " ")
  for (i = 2; i <= n; i++)
    for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) {
      t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
    }
  if (n % 2) return v[(n + 1) / 2]
  return (v[n / 2] + v[n / 2 + 1]) / 2
}
NR == 1 { next }
$6 == "ok" && $3 != "e2fsck" {
  vals[$2, $3] = vals[$2, $3] " " $4; ops[$2, $3] = $5
}
$6 == "FAIL" && $3 != "e2fsck" { failed[$2, $3]++ }
$3 == "e2fsck" { fsck_total[$2]++; if ($6 == "ok") fsck_ok[$2]++ }
$3 == "server_fds" { fds[$2] = fds[$2] " " $4 }
$3 == "idle_rss_kib" { rss[$2] = rss[$2] " " $4 }
END {
  ns = split(systems, sys, " ")
  np = split(phases, ph, " ")
  nr = 0
  for (i = 1; i <= ns; i++) have[sys[i]] = 1
  if (have["e4fs"]) {
    if (have["kernel"]) ratio[++nr] = "kernel"
    if (have["passthrough"]) ratio[++nr] = "passthrough"
    if (have["fuse2fs"]) ratio[++nr] = "fuse2fs"
  }
  printf "%-14s %9s", "phase", "ops"
  for (i = 1; i <= ns; i++) printf " %12s", sys[i]
  for (i = 1; i <= nr; i++) printf " %15s", "e4fs/" ratio[i]
  printf "\n"
  footnote = 0
  for (p = 1; p <= np; p++) {
    phase = ph[p]
    ref = ""
    for (i = 1; i <= ns; i++)
      if ((sys[i], phase) in ops) { ref = ops[sys[i], phase]; break }
    if (have["e4fs"] && (("e4fs", phase) in ops)) ref = ops["e4fs", phase]
    printf "%-14s %9s", phase, ref
    for (i = 1; i <= ns; i++) {
      key = sys[i] SUBSEP phase
      if (key in vals) {
        med[key] = median(vals[key])
        cell = sprintf("%.4f", med[key])
        if (ops[key] != ref) { cell = cell "*"; footnote = 1 }
        if (failed[key]) { cell = cell "!"; partial = 1 }
      } else {
        cell = failed[key] ? "FAILED" : "-"
      }
      printf " %12s", cell
    }
    for (i = 1; i <= nr; i++) {
      a = "e4fs" SUBSEP phase; b = ratio[i] SUBSEP phase
      if (!(a in med) || !(b in med) || med[b] <= 0 || ops[a] <= 0 || ops[b] <= 0) {
        cell = "-"
      } else if (ops[a] == ops[b]) {
        cell = sprintf("%.2f", med[a] / med[b])
      } else {
        # Different amounts of work: compare the time per operation.
        cell = sprintf("%.2f*", (med[a] / ops[a]) / (med[b] / ops[b]))
      }
      printf " %15s", cell
    }
    printf "\n"
  }
  printf "%-14s %9s", "e2fsck -fn", ""
  for (i = 1; i <= ns; i++) {
    s = sys[i]
    if (fsck_ok[s] == fsck_total[s]) cell = sprintf("ok %d/%d", fsck_ok[s], fsck_total[s])
    else cell = sprintf("FAIL %d/%d", fsck_total[s] - fsck_ok[s], fsck_total[s])
    printf " %12s", cell
  }
  printf "\n"
  line = ""
  for (i = 1; i <= ns; i++)
    if (sys[i] in fds) line = line sprintf("  %s %d", sys[i], median(fds[sys[i]]))
  if (line != "")
    printf "descriptors held by the server after bigdir_lookup (median):%s\n", line
  line = ""
  for (i = 1; i <= ns; i++)
    if (sys[i] in rss) line = line sprintf("  %s %.1f MiB", sys[i], median(rss[sys[i]]) / 1024)
  if (line != "")
    printf "idle server RSS after mounting the 16 TiB image (median):%s\n", line
  if (footnote)
    print "* different amount of work (ops column): the ratio compares seconds per operation"
  if (partial)
    print "! some rounds failed; the median is over the rounds that ran"
  print "ratios below 1 mean e4fs is faster"
}' "${RESULTS}"

if have_fds="$(awk -F'\t' '$2 == "e4fs" && $3 == "server_fds" && $4 > 1000' \
  "${RESULTS}")" && [[ -n "${have_fds}" ]]; then
  fail_notes+=("e4fs held more than 1000 descriptors after bigdir_lookup")
  failures=$((failures + 1))
fi

if ((failures)); then
  echo
  echo "FAILURES (${failures}):"
  printf '  %s\n' "${fail_notes[@]}"
  echo "logs: ${LOGS}"
  exit 1
fi
echo "all phases ran; every image passed e2fsck -fn"
