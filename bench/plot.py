#!/usr/bin/python3
"""Plots rows per second against batch size for each implementation of the selection.

    /usr/bin/python3 bench/plot.py [--json compare.json] [--out docs/benchmarks.png]
        [--large] [--sizes 512x8,...]

Reads the --json output of bench/compare/compare.py; without --json it runs compare.py first
(with --sizes / --large passed on) and plots its numbers. Writes a PNG with log-log axes:
batch rows on x, rows per second on y, one line per implementation; skipped cells are left out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COMPARE = ROOT / "bench" / "compare" / "compare.py"
STYLE = {  # implementation -> (marker, line style)
    "shuffle_r1": ("o", "-"),
    "numpy": ("s", "--"),
    "torch": ("^", "--"),
    "loop": ("v", ":"),
}


def run_compare(extra_args: list[str]) -> dict:
    """Runs compare.py with --json into a temporary file and returns the parsed document."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "compare.json"
        subprocess.run([sys.executable, str(COMPARE), "--json", str(out), *extra_args], check=True)
        return json.loads(out.read_text())


def series(document: dict) -> dict[str, list[tuple[int, float]]]:
    """implementation -> [(rows, rows per second)], sorted by rows, timed cells only."""
    lines: dict[str, list[tuple[int, float]]] = {}
    for record in document["records"]:
        if record.get("rows_per_s"):
            lines.setdefault(record["implementation"], []).append(
                (record["rows"], record["rows_per_s"]))
    return {name: sorted(points) for name, points in lines.items()}


def plot(document: dict, out: Path) -> None:
    """Writes the log-log plot of rows/s against rows to `out` (PNG)."""
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    for name, points in sorted(series(document).items(),
                               key=lambda item: -max(rate for _, rate in item[1])):
        marker, style = STYLE.get(name, ("x", "-."))
        rows, rates = zip(*points)
        ax.plot(rows, rates, marker=marker, linestyle=style, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("batch size (rows = prompts x rollouts)")
    ax.set_ylabel("rows per second (one CPU thread)")
    ax.set_title("Shuffle-R1 selection: GRPO advantages + PTS + ABS")
    ax.grid(True, which="both", alpha=0.3)
    # outside the axes: inside, it covered some line whatever the corner
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=None,
                        help="compare.py --json output (default: run compare.py now)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.png",
                        help="PNG to write (default: docs/benchmarks.png)")
    parser.add_argument("--sizes", default=None, help="passed to compare.py when it runs")
    parser.add_argument("--large", action="store_true", help="passed to compare.py when it runs")
    args = parser.parse_args(argv)

    if args.json is not None:
        document = json.loads(args.json.read_text())
    else:
        extra = ["--sizes", args.sizes] if args.sizes else []
        extra += ["--large"] if args.large else []
        document = run_compare(extra)
    if not series(document):
        print("plot.py: no timed cells to plot", file=sys.stderr)
        return 1
    plot(document, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
