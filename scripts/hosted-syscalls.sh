#!/usr/bin/env bash
# System calls of the server per ping-pong: our stream hosted on tokio,
# on our own runtime, and tokio's own stream, each on io_uring and epoll
# where that applies (`strace -c -f` on the server process only; the client
# is a blocking Python socket in another process).
#
#   scripts/hosted-syscalls.sh [N]        # N ping-pongs (default 20000)
#
# strace slows every call down: the counts are the figure, not the time.
# Set-up (ring, probe, runtime) is counted too, a few dozen calls: with
# N = 20000 it moves the per-ping-pong figure by well under 0.01.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
command -v strace >/dev/null || { echo "strace missing: apt-get install strace" >&2; exit 1; }
cargo build --quiet --release --features hosted --example hosted
bin=$CARGO_TARGET_DIR/release/examples/hosted

client() { # PORT N: N ping-pongs of one short line
  python3 - "$1" "$2" <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
f = s.makefile("rb")
for i in range(n):
    s.sendall(b"ping %d\n" % i)
    if f.readline() != b"ping %d\n" % i:
        sys.exit("bad echo at %d" % i)
s.shutdown(socket.SHUT_WR)
assert f.read() == b""
PY
}

printf '%-8s %-8s %10s %s\n' mode driver "calls/pp" "by name (per ping-pong)"
for run in "hosted uring" "hosted epoll" "ours uring" "ours epoll" "tokio -"; do
  set -- $run
  mode=$1 driver=$2
  out=$(mktemp) port_file=$(mktemp)
  if [[ $driver == - ]]; then
    strace -f -c -o "$out" "$bin" --serve "$mode" >"$port_file" &
  else
    URING_BUFIO_DRIVER=$driver strace -f -c -o "$out" "$bin" --serve "$mode" >"$port_file" &
  fi
  pid=$!
  while [[ ! -s $port_file ]]; do sleep 0.05; done
  client "$(cat "$port_file")" "$n"
  wait $pid
  python3 - "$out" "$n" "$mode" "$driver" <<'PY'
import sys
path, n, mode, driver = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
calls = {}
for line in open(path):
    f = line.split()
    if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
        calls[f[-1]] = int(f[3])
total = sum(calls.values())
top = sorted(calls.items(), key=lambda kv: -kv[1])
names = ", ".join("%s %.2f" % (k, v / n) for k, v in top if v / n >= 0.01)
print("%-8s %-8s %10.2f %s" % (mode, driver, total / n, names))
PY
  rm -f "$out" "$port_file"
done
