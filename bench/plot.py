"""A bar chart of end to end against the floor per operation, as SVG, from bench/run.py's JSON files.

    .venv/bin/python -m bench.plot --title "SQLite" docs/performance/sqlite-10k.json \
        docs/performance/sqlite-1m.json --out docs/performance/sqlite.svg

Hand-written SVG, so the plot needs nothing beyond the standard library. One row per operation,
one pair of bars (end to end, floor) per run, on a logarithmic axis: the operations range from a
millisecond to seconds.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

# Colour per run (by position), and a lighter tint of it for that run's floor.
PALETTE = (("#1f5fa8", "#9dbde3"), ("#c2452d", "#eeb0a3"), ("#2e7d32", "#a5d6a7"), ("#6a1b9a", "#ce93d8"))
LABEL_WIDTH = 300
PLOT_WIDTH = 520
BAR = 7
GAP = 10
TOP = 60
LEFT_PAD = 10


@dataclass
class Run:
    label: str
    figures: dict[str, tuple[float | None, float | None]]  # operation -> (end to end, floor) medians


def load(path: Path, label: str | None = None) -> Run:
    data: dict[str, Any] = json.loads(path.read_text())
    figures: dict[str, tuple[float | None, float | None]] = {}
    for row in data["measurements"]:
        e2e = row["end_to_end"]["median_ms"] if row["end_to_end"] else None
        floor = row["floor"]["median_ms"] if row["floor"] else None
        figures[row["operation"]] = (e2e, floor)
    return Run(label or f"{data['database']}, {data['incidents']:,} incidents", figures)


def _x(ms: float, lo: float, hi: float) -> float:
    return LABEL_WIDTH + PLOT_WIDTH * (math.log10(ms) - lo) / (hi - lo)


def svg(runs: list[Run], title: str) -> str:
    if not runs or len(runs) > len(PALETTE):
        raise ValueError(f"Plot 1 to {len(PALETTE)} runs, not {len(runs)}.")
    operations: list[str] = []
    for run in runs:
        operations += [op for op in run.figures if op not in operations]
    values = [v for run in runs for pair in run.figures.values() for v in pair if v]
    lo = math.floor(math.log10(max(min(values, default=1.0), 0.1)))
    hi = math.ceil(math.log10(max(values, default=10.0)))
    hi = max(hi, lo + 1)
    row_height = len(runs) * 2 * BAR + GAP
    height = TOP + len(operations) * row_height + 40
    width = LABEL_WIDTH + PLOT_WIDTH + 80
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{LEFT_PAD}" y="18" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    # Legend: one swatch pair per run.
    lx = LEFT_PAD
    for n, run in enumerate(runs):
        dark, light = PALETTE[n]
        out.append(f'<rect x="{lx}" y="30" width="10" height="10" fill="{dark}"/>')
        out.append(f'<rect x="{lx + 12}" y="30" width="10" height="10" fill="{light}"/>')
        text = f"{run.label}: end to end / floor"
        out.append(f'<text x="{lx + 26}" y="39">{escape(text)}</text>')
        lx += 30 + 6 * len(text)
    # Decades on the axis, with grid lines.
    bottom = TOP + len(operations) * row_height
    for decade in range(lo, hi + 1):
        x = _x(10.0**decade, lo, hi)
        out.append(f'<line x1="{x:.1f}" y1="{TOP - 6}" x2="{x:.1f}" y2="{bottom}" stroke="#ddd"/>')
        label = f"{10.0**decade:g} ms" if decade < 3 else f"{10.0 ** (decade - 3):g} s"
        out.append(f'<text x="{x:.1f}" y="{bottom + 14}" text-anchor="middle">{label}</text>')
    for i, op in enumerate(operations):
        y = TOP + i * row_height
        out.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + row_height / 2:.1f}" text-anchor="end" '
            f'dominant-baseline="middle">{escape(op)}</text>'
        )
        for n, run in enumerate(runs):
            dark, light = PALETTE[n]
            pair = run.figures.get(op, (None, None))
            for k, (value, colour) in enumerate(zip(pair, (dark, light), strict=True)):
                if not value:
                    continue
                top = y + (2 * n + k) * BAR
                x = _x(value, lo, hi)
                out.append(
                    f'<rect x="{LABEL_WIDTH}" y="{top}" width="{max(x - LABEL_WIDTH, 1):.1f}" '
                    f'height="{BAR - 1}" fill="{colour}"><title>{escape(run.label)} '
                    f"{'floor' if k else 'end to end'}: {value:.1f} ms</title></rect>"
                )
    out.append(
        f'<text x="{LABEL_WIDTH}" y="{bottom + 30}">Median milliseconds, logarithmic scale; '
        "darker bar: Quell end to end, lighter bar: the floor endpoint.</text>"
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _median(row: dict[str, Any], figure: str) -> float | None:
    value = row.get(figure)
    return float(value["median_ms"]) if value else None


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _times(a: float | None, b: float | None) -> str:
    return "—" if a is None or b is None or b <= 0 else f"{a / b:.2f}"


def scaling_markdown(small: Path, large: Path) -> str:
    """A Markdown table of how each operation's figures grow from one run's scale to another's."""
    runs = [json.loads(path.read_text()) for path in (small, large)]
    rows = [{row["operation"]: row for row in run["measurements"]} for run in runs]
    names = [f"{run['incidents']:,}" for run in runs]
    lines = [
        f"| Operation | E2E ms at {names[0]} | E2E ms at {names[1]} | ratio | Quell SQL ms at {names[0]} "
        f"| Quell SQL ms at {names[1]} | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for op, row in rows[0].items():
        other = rows[1].get(op)
        if other is None:
            continue
        e2e = (_median(row, "end_to_end"), _median(other, "end_to_end"))
        sql = (_median(row, "quell_sql"), _median(other, "quell_sql"))
        lines.append(
            f"| {op} | {_cell(e2e[0])} | {_cell(e2e[1])} | {_times(e2e[1], e2e[0])} "
            f"| {_cell(sql[0])} | {_cell(sql[1])} | {_times(sql[1], sql[0])} |"
        )
    return "\n".join(lines) + "\n"


# Issue 6's goals: end to end within 2x the floor, Quell's SQL within 1.5x the hand-written SQL,
# and the time at the large scale no more than 1.5x the time at the small one.
GOALS = {"floor": 2.0, "sql": 1.5, "scale": 1.5}


def _verdict(ratio: float | None, goal: float) -> str:
    if ratio is None:
        return "—"
    return f"{ratio:.2f} {'met' if ratio <= goal else '**not met**'}"


def goals_markdown(small: Path, large: Path | None = None) -> str:
    """Per operation, each of issue 6's ratios and whether it meets its goal (medians)."""
    runs = [json.loads(path.read_text()) for path in ([small, large] if large else [small])]
    rows = [{row["operation"]: row for row in run["measurements"]} for run in runs]
    header = "| Operation | E2E ÷ floor (≤ 2) | Quell SQL ÷ hand SQL (≤ 1.5) |"
    rule = "|---|---|---|"
    if large:
        header += f" E2E {runs[1]['incidents']:,} ÷ {runs[0]['incidents']:,} (≤ 1.5) |"
        rule += "---|"
    lines = [header, rule]
    last = rows[-1]
    for op, row in last.items():
        e2e, floor = _median(row, "end_to_end"), _median(row, "floor")
        sql, hand = _median(row, "quell_sql"), _median(row, "hand_sql")
        cells = [
            _verdict(e2e / floor if e2e and floor else None, GOALS["floor"]),
            _verdict(sql / hand if sql and hand else None, GOALS["sql"]),
        ]
        if large:
            before = rows[0].get(op)
            grown = _median(before, "end_to_end") if before else None
            cells.append(_verdict(e2e / grown if e2e and grown else None, GOALS["scale"]))
        lines.append(f"| {op} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", type=Path, help="JSON files written by bench/run.py --json.")
    parser.add_argument(
        "--label", action="append", help="A label per run, in order (default: from the file)."
    )
    parser.add_argument("--title", default="Quell end to end vs the floor endpoint")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="Write a Markdown table of the second run over the first instead.",
    )
    parser.add_argument(
        "--goals",
        action="store_true",
        help="Write a Markdown table of issue 6's goals per operation for one run (or two: small, large).",
    )
    args = parser.parse_args()
    if args.goals:
        if len(args.runs) > 2:
            parser.error("--goals takes one or two runs.")
        args.out.write_text(goals_markdown(*args.runs))
        return
    if args.scaling:
        if len(args.runs) != 2:
            parser.error("--scaling compares exactly two runs.")
        args.out.write_text(scaling_markdown(*args.runs))
        return
    labels = args.label or []
    if labels and len(labels) != len(args.runs):
        parser.error("Give one --label per run, or none.")
    runs = [load(path, labels[n] if labels else None) for n, path in enumerate(args.runs)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(svg(runs, args.title))


if __name__ == "__main__":
    main()
