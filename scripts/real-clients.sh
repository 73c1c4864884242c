#!/usr/bin/env bash
# The protocol examples under clients someone else wrote: examples/resp
# under redis-benchmark (against redis-server too) and examples/http under
# wrk, each contender's server pinned to CPU 0 and the client to CPU 1,
# contenders interleaved over several rounds. Prints, per case, the median
# and spread (max-min over median) of requests per second and of the
# server's CPU time per request (utime+stime from /proc/PID/stat), the
# client's CPU share, and ratios against the tokio twin (and redis-server).
#
#   scripts/real-clients.sh [--rounds N] [--only resp|http] [--duration S]
#                           [--scale F] [--out DIR]
#
# --rounds: rounds of every case (default 2); --duration: seconds per wrk
# run (default 2); --scale: multiplies redis-benchmark's request counts
# (default 1: each run takes about a second); --out: where the raw results
# go (default a new temp directory). One round takes about 2.5 minutes.
# Checks for redis-server, redis-benchmark and wrk, installing them with
# apt-get (Debian: redis-server, redis-tools, wrk) when missing and root.
# Ports 7379-7392 (below the ephemeral range). It stops only the processes
# it started. Not part of CI.
set -euo pipefail

rounds=2 only="" duration=2 scale=1 out=""
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --scale) scale=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "real-clients.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=${out:-$(mktemp -d /tmp/real-clients.XXXXXX)}
mkdir -p "$out"
results="$out/results.txt"
: >"$results"
server_cpu=0 client_cpu=1
tck=$(getconf CLK_TCK)

# --- tools --------------------------------------------------------------
need_install=""
for tool in redis-server redis-benchmark wrk; do
    command -v "$tool" >/dev/null || need_install=1
done
if [ -n "$need_install" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing redis-server, redis-tools, wrk (apt-get)" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools wrk >/dev/null
    else
        echo "real-clients.sh: needs redis-server, redis-benchmark and wrk (apt-get install redis-server redis-tools wrk)" >&2
        exit 2
    fi
fi
command -v taskset >/dev/null || { echo "real-clients.sh: needs taskset (util-linux)" >&2; exit 2; }

echo "building the examples (release)" >&2
cargo build --release --quiet --features hosted --example resp --example http
bin="${CARGO_TARGET_DIR:-$root/target}/release/examples"

# --- servers ------------------------------------------------------------
started=()
stop_all() {
    for pid in "${started[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${started[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap stop_all EXIT

declare -A pid_of port_of
# start NAME PORT COMMAND...: starts a server pinned to the server CPU and
# waits (at most 5 s) until it accepts on PORT.
start() {
    local name=$1 port=$2
    shift 2
    taskset -c "$server_cpu" "$@" >"$out/$name.log" 2>&1 &
    local pid=$!
    started+=("$pid")
    pid_of[$name]=$pid port_of[$name]=$port
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || { echo "server $name died: $(cat "$out/$name.log")" >&2; exit 1; }
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "server $name does not accept on port $port" >&2
    exit 1
}

resp_contenders=(uring pooled epoll hosted tokio redis)
http_contenders=(uring pooled epoll hosted tokio hyper-uring hyper-tokio)
if [ "$only" != http ]; then
    port=7379
    for c in uring pooled epoll tokio; do
        start "resp-$c" $port "$bin/resp" --runtime "$c" --port $port
        port=$((port + 1))
    done
    start resp-hosted 7389 "$bin/resp" --runtime hosted --port 7389
    start resp-redis 7391 redis-server --port 7391 --bind 127.0.0.1 --save '' --appendonly no
fi
if [ "$only" != resp ]; then
    port=7383
    for c in uring pooled epoll tokio; do
        start "http-$c" $port "$bin/http" --runtime "$c" --port $port
        port=$((port + 1))
    done
    start http-hosted 7390 "$bin/http" --runtime hosted --port 7390
    start http-hyper-uring 7387 "$bin/http" --runtime uring --hyper --port 7387
    start http-hyper-tokio 7388 "$bin/http" --runtime tokio --hyper --port 7388
fi

# cpu_ticks PID: the process's utime+stime (all threads), in clock ticks.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# children_cpu FILE: the CPU seconds (user+sys) of this shell's waited-for
# children so far, from the `times` builtin (run in this shell: a pipeline
# would fork and count a fresh process's children), written to FILE.
children_cpu() {
    times >"$1"
    awk 'NR == 2 {
        t = 0
        for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); t += p[1] * 60 + p[2] }
        print t }' "$1"
}

# measure KIND CASE CONTENDER ROUND COMMAND...: runs the client command
# pinned to the client CPU; the command prints "REQUESTS RPS" last. Appends
# "KIND CASE CONTENDER ROUND RPS CPU_US_PER_REQ CLIENT_SHARE" to results.
measure() {
    local kind=$1 case=$2 contender=$3 round=$4
    shift 4
    local pid=${pid_of[$kind-$contender]}
    local before after cpu0 cpu1 wall0 wall1
    before=$(cpu_ticks "$pid")
    children_cpu "$out/times" >"$out/cpu0"
    wall0=$EPOCHREALTIME
    # The subshell pins itself, so the client it runs inherits the CPU.
    (taskset -p -c "$client_cpu" "$BASHPID" >/dev/null; "$@") >"$out/client.out" 2>&1
    wall1=$EPOCHREALTIME
    children_cpu "$out/times" >"$out/cpu1"
    after=$(cpu_ticks "$pid")
    read -r cpu0 <"$out/cpu0"
    read -r cpu1 <"$out/cpu1"
    tail -n 1 "$out/client.out" >"$out/client.last"
    awk -v k="$kind" -v c="$case" -v n="$contender" -v r="$round" -v t="$((after - before))" \
        -v tck="$tck" -v ccpu="$cpu1 - $cpu0" -v wall="$wall1 - $wall0" '{ reqs = $1; rps = $2 }
        END {
            split(ccpu, a, " - "); split(wall, w, " - ")
            share = (w[1] - w[2] != 0) ? 100 * (a[1] - a[2]) / (w[1] - w[2]) : 0
            cpu = (reqs > 0) ? 1e6 * t / tck / reqs : 0
            printf "%s %s %s %s %.0f %.3f %.0f\n", k, c, n, r, rps, cpu, share
        }' "$out/client.last" >>"$results"
}

# redis_run PORT TEST P C N: one redis-benchmark run; prints "N RPS".
redis_run() {
    local csv
    csv=$(redis-benchmark -h 127.0.0.1 -p "$1" -t "$2" -P "$3" -c "$4" -n "$5" -q --csv)
    echo "$csv" | awk -F'"' -v n="$5" 'NR > 1 && $2 != "" { rps = $4 } END { print n, rps }'
}

# wrk_run PORT C: one wrk run; prints "REQUESTS RPS".
wrk_run() {
    wrk -t1 -c "$2" -d "${duration}s" "http://127.0.0.1:$1/" | awk '
        / requests in / { reqs = $1 }
        /Non-2xx|Socket errors/ { print "wrk: " $0 > "/dev/stderr" }
        /^Requests\/sec:/ { rps = $2 }
        END { print reqs, rps }'
}

# One rotation of the contender list per round, so no contender always
# runs first or last after another.
rotate() {
    local by=$1
    shift
    local list=("$@") n=$#
    for i in $(seq 0 $((n - 1))); do
        echo "${list[$(((i + by) % n))]}"
    done
}

resp_cases=("1 1 20000" "1 50 100000" "16 50 500000" "64 64 1000000")
for round in $(seq "$rounds"); do
    echo "round $round of $rounds" >&2
    if [ "$only" != http ]; then
        for pc in "${resp_cases[@]}"; do
            read -r p c n <<<"$pc"
            n=$(awk -v n="$n" -v s="$scale" 'BEGIN { printf "%d", n * s }')
            for t in ping_mbulk set get; do
                for who in $(rotate "$round" "${resp_contenders[@]}"); do
                    measure resp "$t/P$p/c$c" "$who" "$round" redis_run "${port_of[resp-$who]}" "$t" "$p" "$c" "$n"
                done
            done
        done
    fi
    if [ "$only" != resp ]; then
        for c in 1 50 256; do
            for who in $(rotate "$round" "${http_contenders[@]}"); do
                measure http "c$c" "$who" "$round" wrk_run "${port_of[http-$who]}" "$c"
            done
        done
    fi
done

# --- summary ------------------------------------------------------------
echo
echo "server on CPU $server_cpu, client on CPU $client_cpu; $rounds round(s); raw: $results"
echo "rps and cpu: median [spread = (max-min)/median]; cpu in us of server CPU per request;"
echo "client%: the client's CPU share (rps only counts where it stayed under 90%, marked *);"
echo "x tokio: rps ratio ours/tokio and cpu ratio tokio/ours (above 1: ours ahead);"
echo "x epoll / x redis likewise against our epoll backend / redis-server."
awk -f - "$results" <<'AWK'
function median(list, n,    a, i, j, v, k) {
    k = split(list, a, " ")
    for (i = 2; i <= k; i++) { v = a[i]; for (j = i - 1; j > 0 && a[j] + 0 > v + 0; j--) a[j + 1] = a[j]; a[j + 1] = v }
    lo = a[1]; hi = a[k]
    return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
{
    key = $1 " " $2 " " $3
    if (!(key in seen)) { seen[key] = 1; order[++nkeys] = key }
    rps[key] = rps[key] " " $5; cpu[key] = cpu[key] " " $6; share[key] = share[key] " " $7
}
END {
    printf "%-5s %-18s %-12s %10s %6s %9s %6s %7s %8s %8s %8s %8s %8s %8s\n", "kind", "case", "contender", "rps", "spr", "cpu us", "spr", "client%", "rps/tok", "cpu/tok", "rps/epl", "cpu/epl", "rps/rds", "cpu/rds"
    for (i = 1; i <= nkeys; i++) {
        key = order[i]
        r = median(rps[key]); rs = (r > 0) ? (hi - lo) / r : 0
        c = median(cpu[key]); cs = (c > 0) ? (hi - lo) / c : 0
        s = median(share[key])
        mr[key] = r; mc[key] = c; ms[key] = s
    }
    for (i = 1; i <= nkeys; i++) {
        key = order[i]; split(key, f, " ")
        base = f[1] " " f[2] " "
        median(rps[key]); rsp = (mr[key] > 0) ? (hi - lo) / mr[key] : 0
        median(cpu[key]); csp = (mc[key] > 0) ? (hi - lo) / mc[key] : 0
        line = sprintf("%-5s %-18s %-12s %9.0f%s %6.2f %9.2f %6.2f %7.0f", f[1], f[2], f[3], mr[key], (ms[key] >= 90 ? "*" : " "), rsp, mc[key], csp, ms[key])
        # hyper on our runtime is compared with hyper on tokio.
        split(f[3] ~ /^hyper-/ ? "hyper-tokio none none" : "tokio epoll redis", bases, " ")
        for (b = 1; b <= 3; b++) {
            other = base bases[b]
            if ((other in mr) && other != key && mr[other] > 0 && mc[key] > 0) {
                line = line sprintf(" %8.2f %8.2f", mr[key] / mr[other], mc[other] / mc[key])
            } else {
                line = line sprintf(" %8s %8s", "-", "-")
            }
        }
        print line
    }
}
AWK
