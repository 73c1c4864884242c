#!/usr/bin/env bash
# Runs the test suite (the library's unit tests and the integration tests;
# not the doctests) under AddressSanitizer, then under LeakSanitizer, and
# prints the number of sanitizer errors of each run, or says plainly why it
# cannot run here.
#
#   scripts/sanitize.sh            both runs (several minutes; not in CI)
#   scripts/sanitize.sh address    one of them (address or leak)
#
# -Zsanitizer is a nightly-only flag; the stable compiler accepts it with
# RUSTC_BOOTSTRAP=1, which this script sets. Each sanitizer builds in its own
# target directory (SANITIZE_TARGET_DIR, default target/sanitize/) for the
# host triple explicitly, so build scripts and proc macros stay
# uninstrumented. Neither sanitizer sees the kernel write into memory: that
# is what the quarantine tests are for. URING_BUFIO_DRIVER=epoll in front
# runs the suite on the epoll backend.
# Exit status: 0 no sanitizer error, 1 errors, 2 cannot run here.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
host=x86_64-unknown-linux-gnu
base=${SANITIZE_TARGET_DIR:-$root/target/sanitize}
sanitizers=${1:-address leak}
export RUSTC_BOOTSTRAP=1

cannot() {
    echo "sanitize.sh: CANNOT RUN here: $*"
    exit 2
}

[ "$(uname -m)-$(uname -s)" = "x86_64-Linux" ] ||
    cannot "the sanitizers are set up for $host only, this is $(uname -m) $(uname -s)"

# Can this compiler build and run a sanitized program at all?
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'fn main() { let v = vec![1u8]; std::hint::black_box(&v); }' > "$probe/p.rs"
for san in $sanitizers; do
    case "$san" in
    address | leak) ;;
    *) echo "sanitize.sh: unknown sanitizer '$san' (address or leak)" >&2; exit 2 ;;
    esac
    if ! rustc -Zsanitizer="$san" --target "$host" -o "$probe/p" "$probe/p.rs" > "$probe/log" 2>&1; then
        cannot "$(rustc --version) refuses -Zsanitizer=$san even with RUSTC_BOOTSTRAP=1: $(head -n 3 "$probe/log")"
    fi
    "$probe/p" > "$probe/log" 2>&1 ||
        cannot "a program built with -Zsanitizer=$san does not run here: $(head -n 3 "$probe/log")"
done

total=0
for san in $sanitizers; do
    dir=$base/$san
    log=$base/$san.log
    mkdir -p "$dir"
    echo "sanitize.sh: $san: cargo test --lib --tests under -Zsanitizer=$san (log: $log)"
    start=$(date +%s)
    # AddressSanitizer's own leak check is off in the address run: leaks
    # are the leak run's job, and each run then counts one kind of error.
    CARGO_TARGET_DIR=$dir \
        RUSTFLAGS="-Zsanitizer=$san -Cforce-frame-pointers=yes" \
        ASAN_OPTIONS="detect_leaks=0:detect_stack_use_after_return=1" \
        LSAN_OPTIONS="report_objects=0" \
        cargo test --target "$host" --lib --tests --no-fail-fast > "$log" 2>&1
    status=$?
    secs=$(($(date +%s) - start))
    if ! grep -q "^test result:" "$log"; then
        grep -E "^error|^Caused by|^  " "$log" | head -n 8
        cannot "the suite did not build or run with -Zsanitizer=$san (cargo exit $status); log: $log"
    fi
    case "$san" in
    address) errors=$(grep -c "ERROR: AddressSanitizer" "$log") ;;
    leak) errors=$(grep -cE "^(Direct|Indirect) leak of" "$log") ;;
    esac
    passed=$(grep -oE "test result: [A-Za-z]+\. [0-9]+ passed" "$log" | grep -oE "[0-9]+" | awk '{s+=$1} END {print s+0}')
    failed=$(grep -oE "[0-9]+ failed;" "$log" | grep -oE "[0-9]+" | awk '{s+=$1} END {print s+0}')
    echo "sanitize.sh: $san: $errors sanitizer errors; tests ${passed:-0} passed, ${failed:-0} failed; ${secs}s (cargo exit $status)"
    if [ "$errors" -gt 0 ]; then
        grep -E "ERROR: (Address|Leak)Sanitizer|^(Direct|Indirect) leak of|SUMMARY:" "$log" | head -n 20
    fi
    if [ "${failed:-0}" -gt 0 ] || [ "$status" -ne 0 ]; then
        grep -E "^test .* FAILED|^    [a-z_:]+$|panicked at" "$log" | head -n 20
    fi
    total=$((total + errors))
done
echo "sanitize.sh: total sanitizer errors: $total"
[ "$total" -eq 0 ]
