#!/usr/bin/env bash
# Runs one cargo-fuzz target of fuzz/ for a given time and prints how many
# inputs it executed, or says plainly why it cannot run here.
#
#   scripts/fuzz.sh TARGET SECONDS     TARGET: lines, frames or ops
#
# cargo fuzz builds with -Zsanitizer=address and sanitizer-coverage flags,
# which only a nightly compiler accepts; the stable compiler does too with
# RUSTC_BOOTSTRAP=1, which this script sets (a nightly toolchain is not
# needed). Not part of CI. The corpus grows in fuzz/corpus/TARGET (ignored
# by git); a crashing input is kept in fuzz/artifacts/TARGET/ and printed.
# URING_BUFIO_DRIVER=epoll in front fuzzes the epoll backend.
# Exit status: 0 no crash, 1 a crash, 2 cannot run here.
set -uo pipefail

usage="usage: scripts/fuzz.sh TARGET SECONDS (TARGET: lines, frames, ops)"
target=${1:?$usage}
seconds=${2:?$usage}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

case "$target" in
lines | frames | ops) ;;
*) echo "fuzz.sh: unknown target '$target'; $usage" >&2; exit 2 ;;
esac

cannot() {
    echo "fuzz.sh: CANNOT RUN here: $*"
    exit 2
}

command -v cargo-fuzz > /dev/null ||
    cannot "cargo-fuzz is not installed (install it with: cargo install cargo-fuzz)"

export RUSTC_BOOTSTRAP=1
target_dir=${FUZZ_TARGET_DIR:-$root/fuzz/target}
log_dir=$target_dir/logs
mkdir -p "$log_dir" "fuzz/corpus/$target"
build_log=$log_dir/build-$target.log
run_log=$log_dir/run-$target.log

echo "fuzz.sh: building $target (cargo fuzz, AddressSanitizer, $(rustc --version))"
if ! cargo fuzz build --target-dir "$target_dir" "$target" > "$build_log" 2>&1; then
    tail -n 15 "$build_log"
    if grep -qE "only accepted on the nightly|unstable|-Z" "$build_log"; then
        cannot "this compiler refuses the nightly-only flags cargo fuzz needs (-Zsanitizer), even with RUSTC_BOOTSTRAP=1; full log: $build_log"
    fi
    cannot "cargo fuzz build failed; full log: $build_log"
fi

echo "fuzz.sh: running $target for ${seconds}s (log: $run_log)"
cargo fuzz run --target-dir "$target_dir" "$target" -- \
    -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 \
    > "$run_log" 2>&1
status=$?

execs=$(grep -oE "stat::number_of_executed_units: *[0-9]+" "$run_log" | grep -oE "[0-9]+$" | tail -n 1)
if [ -z "$execs" ]; then
    execs=$(grep -oE "^#[0-9]+" "$run_log" | tr -d '#' | tail -n 1)
fi
rate=$(grep -oE "exec/s: *[0-9]+" "$run_log" | grep -oE "[0-9]+$" | tail -n 1)
crash=$(grep -oE "Test unit written to [^ ]+" "$run_log" | tail -n 1 | sed 's/Test unit written to //')

if [ "$status" -ne 0 ] || [ -n "$crash" ]; then
    echo "fuzz.sh: $target CRASHED after ${execs:-?} executions"
    grep -E "panicked at|ERROR: AddressSanitizer|ERROR: LeakSanitizer|SUMMARY" "$run_log" | head -n 10
    sed -n '/panicked at/,/^note:/p' "$run_log" | head -n 20
    [ -n "$crash" ] && echo "fuzz.sh: crashing input: $crash (replay: RUSTC_BOOTSTRAP=1 cargo fuzz run $target $crash)"
    exit 1
fi
echo "fuzz.sh: $target: ${execs:-?} executions in ${seconds}s (${rate:-?} exec/s), 0 crashes"
