#!/usr/bin/env bash
# System calls by name for one contender on one workload of the comparison
# harness, per thread, with `strace -c -f` (or `perf stat` on the
# raw_syscalls tracepoint with --perf).
#
#   scripts/syscalls.sh pipeline tokio "depth 64 x1"
#   scripts/syscalls.sh scan uring "64 B" --perf
#
# Arguments: WORKLOAD CONTENDER [CASE FILTER] [--perf]. Extra harness
# arguments can be given in COMPARE_ARGS (default: one short round). The
# harness itself reports syscalls per request (perf counters per thread);
# this script says which calls they are. strace slows every call down, so
# the request rate it shows is not a speed figure.
set -euo pipefail
cd "$(dirname "$0")/.."

workload=${1:?usage: $0 WORKLOAD CONTENDER [CASE FILTER] [--perf]}
contender=${2:?usage: $0 WORKLOAD CONTENDER [CASE FILTER] [--perf]}
filter=${3:-}
tool=strace
[[ "${3:-}" == --perf ]] && { filter=""; tool=perf; }
[[ "${4:-}" == --perf ]] && tool=perf

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
bin=$(cargo bench --bench compare --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "compare" and m.get("executable"):
        print(m["executable"])')
args=(--only "$workload" --contenders "$contender" --rounds 1 --duration 1
  --scan-bytes 256M --bulk-bytes 1G --codec-bytes 64M --csv /dev/null)
[[ -n "$filter" ]] && args+=(--filter "$filter")
# shellcheck disable=SC2206
[[ -n "${COMPARE_ARGS:-}" ]] && args+=($COMPARE_ARGS)

out=$(mktemp)
trap 'rm -f "$out"' EXIT
case $tool in
strace)
  command -v strace >/dev/null || { echo "strace missing: apt-get install strace" >&2; exit 1; }
  strace -f -c -o "$out" "$bin" "${args[@]}"
  echo "--- strace -c -f (all threads, set-up included) ---"
  cat "$out"
  ;;
perf)
  perf stat -o "$out" -e 'raw_syscalls:sys_enter' -e 'syscalls:sys_enter_io_uring_enter' \
    -e 'syscalls:sys_enter_epoll_wait' -e 'syscalls:sys_enter_recvfrom' \
    -e 'syscalls:sys_enter_sendmsg' -e 'syscalls:sys_enter_read' -e 'syscalls:sys_enter_write' \
    "$bin" "${args[@]}"
  cat "$out"
  ;;
esac
