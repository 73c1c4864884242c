#!/usr/bin/env python3
"""Old code against new code with the comparison harness, interleaved.

Runs two builds of `benches/compare.rs` in turn (old, new, old, new, ...),
one round each time, then prints per case and contender the median of each
build, the ratio new/old, and the old build's own round-to-round spread.
A figure is flagged when the new median is more than 5 % worse than the
old one beyond that spread.

    cargo bench --bench compare --no-run     # in each tree; note the binary
    scripts/compare-ab.py OLD_BIN NEW_BIN [--rounds 3] [-- HARNESS ARGS]

Example (the issue 11 check):
    scripts/compare-ab.py /tmp/compare-old target/release/deps/compare-XXXX \\
        --rounds 3 -- --only pingpong,pipeline,bulk,codec \\
        --contenders uring,epoll,pool,frames
"""
import csv
import os
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict

HIGHER_IS_BETTER = ("req/s", "GB/s", "Mlines/s")


def run(binary, args, csv_path):
    cmd = [binary, "--rounds", "1", "--csv", csv_path] + args
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def read(csv_path, into):
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            key = (row["workload"], row["case"], row["placement"],
                   row["contender"], row["metric"])
            into[key].append(float(row["median"]))


def worse_by(metric, old, new):
    """How much worse new is than old, as a fraction (negative: better)."""
    if old == 0 or old != old or new != new:
        return 0.0
    if metric in HIGHER_IS_BETTER:
        return old / new - 1 if new else float("inf")
    return new / old - 1


def main():
    argv = sys.argv[1:]
    harness = []
    if "--" in argv:
        i = argv.index("--")
        argv, harness = argv[:i], argv[i + 1:]
    rounds = 3
    if "--rounds" in argv:
        i = argv.index("--rounds")
        rounds = int(argv[i + 1])
        del argv[i:i + 2]
    if len(argv) != 2:
        sys.exit(__doc__)
    old_bin, new_bin = argv
    figures = {"old": defaultdict(list), "new": defaultdict(list)}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for name, binary in (("old", old_bin), ("new", new_bin)):
                path = os.path.join(tmp, f"{name}{r}.csv")
                run(binary, harness, path)
                read(path, figures[name])
    print("| workload | case | placement | contender | figure | old | new | new/old"
          " | old spread | flag |")
    print("|---|---|---|---|---|---:|---:|---:|---:|---|")
    flagged = 0
    for key in sorted(figures["old"]):
        old_v, new_v = figures["old"][key], figures["new"].get(key, [])
        if not new_v:
            continue
        old_m, new_m = statistics.median(old_v), statistics.median(new_v)
        spread = (max(old_v) / min(old_v) - 1) if min(old_v) > 0 else 0.0
        worse = worse_by(key[4], old_m, new_m)
        flag = "WORSE" if worse > spread + 0.05 else ""
        flagged += bool(flag)
        ratio = new_m / old_m if old_m else float("nan")
        print(f"| {' | '.join(key)} | {old_m:.4g} | {new_m:.4g} | {ratio:.3f}"
              f" | {spread * 100:.0f} % | {flag} |")
    print(f"\n{flagged} figures worse by more than 5 % beyond the old spread")


if __name__ == "__main__":
    main()
