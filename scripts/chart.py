#!/usr/bin/env python3
"""Turns the comparison harness's CSV into an SVG bar chart.

    python3 scripts/chart.py [CSV] [SVG]

defaults: target/compare.csv -> docs/compare.svg. For every case, one bar per
peer: our headline figure (uring-bufio on io_uring) over the peer's, medians,
so a bar right of the 1.0 line means we are ahead. Our own other modes
(epoll, frames(), the pooled reader "pool") are drawn the same way: a bar
left of 1.0 means that mode beat plain io_uring. Standard library only.
"""

import csv
import sys
from collections import OrderedDict
from html import escape

PEERS = ["epoll", "frames", "pool", "tokio", "monoio", "std", "cat"]
COLORS = {
    "epoll": "#7f7f7f",
    "frames": "#17becf",
    "pool": "#ff7f0e",
    "tokio": "#d62728",
    "monoio": "#1f77b4",
    "std": "#2ca02c",
    "cat": "#9467bd",
}
LABELS = {
    "epoll": "uring-bufio on epoll",
    "frames": "uring-bufio frames()",
    "pool": "uring-bufio pooled reader",
    "tokio": "tokio",
    "monoio": "monoio",
    "std": "std",
    "cat": "cat > /dev/null",
}
WORKLOAD_TITLES = {
    "scan": "1. line scan of a page-cached file (GB/s)",
    "pingpong": "2. line ping-pong over loopback (round trips/s)",
    "pipeline": "3. pipelined PING/PONG (requests/s)",
    "bulk": "4. bulk stream over loopback (GB/s)",
    "codec": "5. LinesCodec server, FramedRead (lines/s)",
}


def target(workload, case, peer):
    """The ratio issue 6 asks of us against `peer` in this case, if any."""
    if workload == "scan":
        return {"tokio": 3.0, "std": 1.0}.get(peer)
    if workload == "pingpong":
        return {"tokio": 1.15}.get(peer)
    if workload == "pipeline" and case.startswith("depth 64"):
        return {"tokio": 1.5, "monoio": 1.0}.get(peer)
    if workload == "bulk":
        return {"tokio": 1.0}.get(peer)
    return None


WIDTH = 960
LABEL_W = 250
BAR_H = 9
GAP = 7
PLOT_W = WIDTH - LABEL_W - 70


def read_cases(path):
    """{(workload, case, placement): {contender: median}} of headline figures."""
    cases = OrderedDict()
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["headline"] != "1":
                continue
            key = (row["workload"], row["case"], row["placement"])
            try:
                value = float(row["median"])
            except ValueError:
                continue
            cases.setdefault(key, {})[row["contender"]] = value
    return cases


def ratios(cases):
    """[(workload, label, [(peer, ratio)])] for cases where we ran."""
    out = []
    for (workload, case, placement), figs in cases.items():
        ours = figs.get("uring")
        if not ours or ours != ours:  # missing or NaN
            continue
        bars = [
            (p, ours / figs[p], target(workload, case, p))
            for p in PEERS
            if p in figs and figs[p] == figs[p] and figs[p] > 0
        ]
        if bars:
            out.append((workload, f"{case} ({placement})", bars))
    return out


def render(rows):
    top = max([max(r, t or 0) for _, _, bars in rows for _, r, t in bars] + [2.0])
    scale = PLOT_W / (top * 1.05)
    parts = []
    y = 70
    current = None
    for workload, label, bars in rows:
        if workload != current:
            current = workload
            y += 12
            title = WORKLOAD_TITLES.get(workload, workload)
            parts.append(
                f'<text x="10" y="{y}" font-weight="bold" font-size="13">{escape(title)}</text>'
            )
            y += 10
        block = len(bars) * BAR_H
        parts.append(
            f'<text x="{LABEL_W - 8}" y="{y + block / 2 + 4:.1f}" text-anchor="end" '
            f'font-size="11">{escape(label)}</text>'
        )
        for peer, ratio, goal in bars:
            w = max(ratio * scale, 1)
            if goal:
                gx = LABEL_W + goal * scale
                parts.append(
                    f'<line x1="{gx:.1f}" y1="{y - 1}" x2="{gx:.1f}" y2="{y + BAR_H}" '
                    f'stroke="#000" stroke-width="2"><title>target {goal}x</title></line>'
                )
            parts.append(
                f'<rect x="{LABEL_W}" y="{y}" width="{w:.1f}" height="{BAR_H - 1}" '
                f'fill="{COLORS[peer]}"><title>{escape(LABELS[peer])}: {ratio:.2f}x</title></rect>'
            )
            parts.append(
                f'<text x="{LABEL_W + w + 3:.1f}" y="{y + BAR_H - 1}" font-size="8">{ratio:.2f}</text>'
            )
            y += BAR_H
        y += GAP
    height = y + 30
    one = LABEL_W + scale
    axis = [
        f'<line x1="{one:.1f}" y1="55" x2="{one:.1f}" y2="{y}" stroke="#000" '
        f'stroke-dasharray="4,3"/>',
        f'<text x="{one:.1f}" y="{y + 14}" text-anchor="middle" font-size="11">1.0 = even</text>',
    ]
    for t in range(2, int(top) + 1):
        x = LABEL_W + t * scale
        axis.append(
            f'<line x1="{x:.1f}" y1="55" x2="{x:.1f}" y2="{y}" stroke="#ccc"/>'
            f'<text x="{x:.1f}" y="{y + 14}" text-anchor="middle" font-size="11">{t}x</text>'
        )
    legend = []
    lx = 10
    for peer in PEERS:
        if any(p == peer for _, _, bars in rows for p, _, _ in bars):
            legend.append(
                f'<rect x="{lx}" y="36" width="12" height="10" fill="{COLORS[peer]}"/>'
                f'<text x="{lx + 16}" y="45" font-size="11">{escape(LABELS[peer])}</text>'
            )
            lx += 30 + 7 * len(LABELS[peer])
    legend.append(
        f'<line x1="{lx + 5}" y1="35" x2="{lx + 5}" y2="47" stroke="#000" stroke-width="2"/>'
        f'<text x="{lx + 12}" y="45" font-size="11">target set by issue 6</text>'
    )
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">'
        f'<rect width="100%" height="100%" fill="#fff"/>'
        f'<text x="10" y="20" font-size="15" font-weight="bold">uring-bufio (io_uring) '
        f"over each peer: median of the headline figure; right of 1.0 = we are ahead</text>"
    )
    return "\n".join([head] + axis + legend + parts + ["</svg>\n"])


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "target/compare.csv"
    dst = sys.argv[2] if len(sys.argv) > 2 else "docs/compare.svg"
    rows = ratios(read_cases(src))
    if not rows:
        sys.exit(f"{src}: no case with a figure for uring and a peer")
    with open(dst, "w") as f:
        f.write(render(rows))
    print(f"{dst}: {len(rows)} cases")


if __name__ == "__main__":
    main()
