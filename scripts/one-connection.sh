#!/usr/bin/env bash
# One-connection request/response cost: redis-benchmark at -c 1 against
# RESP servers that are already running, contenders interleaved round by
# round; per round the server's CPU time per request (all its threads,
# from /proc/PID/task/*/schedstat, nanoseconds) and requests per second;
# then medians and, per round, each contender against the first one.
#
#   scripts/one-connection.sh ROUNDS REQUESTS TEST NAME:PORT...
#
# Example (servers on CPU 0, the client runs on CPU 1):
#   cargo build --release --features hosted --example resp
#   taskset -c 0 target/release/examples/resp --runtime tokio --port 7415 &
#   taskset -c 0 target/release/examples/resp --runtime uring --port 7412 &
#   scripts/one-connection.sh 8 20000 ping_mbulk tokio:7415 uring:7412
set -euo pipefail
[ $# -ge 4 ] || { sed -n 2,15p "$0" >&2; exit 2; }
rounds=$1 n=$2 test=$3
shift 3
out=$(mktemp)
trap 'rm -f "$out"' EXIT

cpu_ns() {
    local t=0 a
    for f in /proc/"$1"/task/*/schedstat; do
        read -r a _ <"$f"
        t=$((t + a))
    done
    echo "$t"
}

for r in $(seq "$rounds"); do
    for spec in "$@"; do
        name=${spec%%:*} port=${spec##*:}
        pid=$(ss -ltnpH "sport = :$port" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
        [ -n "$pid" ] || { echo "nothing listens on port $port" >&2; exit 1; }
        before=$(cpu_ns "$pid")
        rps=$(taskset -c 1 redis-benchmark -p "$port" -c 1 -n "$n" -t "$test" -q 2>/dev/null |
            tr '\r' '\n' | grep "requests per second" | tail -1 | awk '{print $2}')
        after=$(cpu_ns "$pid")
        echo "$r $name $rps $(((after - before) / n))" | tee -a "$out"
    done
done

python3 - "$out" "${1%%:*}" <<'PY'
import collections, statistics as st, sys
rows = [l.split() for l in open(sys.argv[1])]
base = sys.argv[2]
by = collections.defaultdict(dict)
for r, name, rps, ns in rows:
    by[r][name] = (float(rps), int(ns))
names = list(dict.fromkeys(name for _, name, _, _ in rows))
print(f"{'server':10} {'req/s':>8} {'µs/req':>7}   per round, {base} over it (CPU) and it over {base} (req/s)")
for name in names:
    rps = st.median(by[r][name][0] for r in by)
    us = st.median(by[r][name][1] for r in by) / 1000
    cpu = [by[r][base][1] / by[r][name][1] for r in by]
    req = [by[r][name][0] / by[r][base][0] for r in by]
    print(f"{name:10} {rps:8.0f} {us:7.1f}   CPU {st.median(cpu):.2f} [{min(cpu):.2f}-{max(cpu):.2f}]"
          f"  req/s {st.median(req):.2f} [{min(req):.2f}-{max(req):.2f}]")
PY
