#!/usr/bin/python3
"""Times the Shuffle-R1 selection in Python (loop, NumPy, PyTorch) against shuffle_r1.

    /usr/bin/python3 bench/compare/compare.py [--sizes 512x16,65536x16] [--large]
        [--bench build/release/bench/shuffle_r1_bench] [--json OUT] [--check]

Every implementation gets the same batch per size: shuffle_r1::synthetic_rewards with the C++
benchmark's seed (2024), re-implemented bit for bit in batch.py. Python times are the median of
several runs of the whole selection (GRPO advantages, PTS keep ratio 0.5, ABS power transform,
8 rounds of K/8 pairs, short rounds shrunk), inputs prepared outside the timer. shuffle_r1's time
is the median real_time of `shuffle_r1_bench --benchmark_filter=BM_Pipeline_CPU/prompts:P/
rollouts:N$ --benchmark_repetitions=5`, the same computation through run_pipeline with a reused
workspace. An implementation is skipped where one run would take more than --skip-over seconds
(estimated from the previous size, or from a 64-prompt probe). --check runs a quick self-check instead: the three
Python implementations give the same advantages and pairs, and their ABS outputs are valid.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import batch  # noqa: E402
import impls  # noqa: E402

DEFAULT_SIZES = "512x8,512x16,4096x16,65536x16"
LARGE_SIZE = "1048576x16"
DEFAULT_BENCH = ROOT / "build" / "release" / "bench" / "shuffle_r1_bench"
LIBRARY = "shuffle_r1"


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """'512x16,4096x16' -> [(512, 16), (4096, 16)]."""
    sizes = []
    for item in text.split(","):
        try:
            prompts, rollouts = (int(v) for v in item.lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"size '{item}' is not PROMPTSxROLLOUTS") from None
        if prompts < 1 or rollouts < 2 or rollouts % 2:
            raise argparse.ArgumentTypeError(f"size '{item}': need prompts >= 1, even rollouts")
        sizes.append((prompts, rollouts))
    return sizes


def time_python(impl, rewards, prompts, rollouts, max_runs: int, budget_s: float):
    """Median seconds of impl.run over up to max_runs runs, stopping once budget_s is spent.

    The first run is a warm-up and is discarded when it is cheap (under 1 s); a slow first run
    counts as a sample. Returns (median seconds, number of timed runs).
    """
    inputs = impl.prepare(rewards, prompts, rollouts)
    start = time.perf_counter()
    impl.run(inputs, 0)
    first = time.perf_counter() - start
    samples = [] if first < 1.0 else [first]
    seed = 1
    while len(samples) < max_runs and (not samples or sum(samples) + first < budget_s):
        start = time.perf_counter()
        impl.run(inputs, seed)
        samples.append(time.perf_counter() - start)
        seed += 1
    return statistics.median(samples), len(samples)


def probe(impl, rewards, prompts, rollouts, probe_prompts: int = 64) -> float:
    """Seconds per row of one run on the first `probe_prompts` prompts (to decide skipping)."""
    p = min(prompts, probe_prompts)
    inputs = impl.prepare(rewards[:p * rollouts], p, rollouts)
    impl.run(inputs, 0)  # warm-up
    start = time.perf_counter()
    impl.run(inputs, 0)
    return (time.perf_counter() - start) / (p * rollouts)


def time_library(bench: Path, prompts: int, rollouts: int):
    """Median real_time (seconds) of BM_Pipeline_CPU at this size, or (None, reason)."""
    if not bench.is_file():
        return None, f"no benchmark binary at {bench} (build target shuffle_r1_bench)"
    name = f"BM_Pipeline_CPU/prompts:{prompts}/rollouts:{rollouts}"
    command = [str(bench), f"--benchmark_filter={name}$", "--benchmark_format=json",
               "--benchmark_repetitions=5"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return None, f"benchmark failed ({done.returncode}): {done.stderr.strip()[:200]}"
    if not done.stdout.strip():  # "Failed to match any benchmarks"
        return None, f"the benchmark has no size {prompts}x{rollouts}"
    report = json.loads(done.stdout)
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
    for entry in report.get("benchmarks", []):
        if entry.get("aggregate_name") == "median":
            return entry["real_time"] * scale[entry["time_unit"]], None
    return None, f"the benchmark has no size {prompts}x{rollouts}"


def format_seconds(seconds) -> str:
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_rate(rows_per_s) -> str:
    """Rows per second with an SI prefix: '49.8 k', '212 M'."""
    if not rows_per_s:
        return "-"
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if rows_per_s >= scale:
            return f"{rows_per_s / scale:.3g} {prefix}"
    return f"{rows_per_s:.3g}"


def format_ratio(ratio) -> str:
    """An implementation's time over shuffle_r1's: '18.9x', '4,066x'."""
    if not ratio:
        return "-"
    return f"{ratio:,.0f}x" if ratio >= 100 else f"{ratio:.1f}x"


def measure(sizes, bench: Path, max_runs: int, budget_s: float, skip_over_s: float) -> list[dict]:
    """One record per (size, implementation), sizes in ascending number of rows."""
    records = []
    seconds_per_row = {}  # per implementation, from the largest size timed so far
    for prompts, rollouts in sorted(sizes, key=lambda s: s[0] * s[1]):
        rows = prompts * rollouts
        rewards = batch.synthetic_rewards(prompts, rollouts, batch.BENCH_SEED)
        library_s, library_note = time_library(bench, prompts, rollouts)
        for cls in impls.IMPLEMENTATIONS:
            impl = cls()
            record = {"prompts": prompts, "rollouts": rollouts, "rows": rows,
                      "implementation": impl.name, "median_s": None, "runs": 0, "note": None}
            if impl.name not in seconds_per_row:  # no smaller size timed yet: a short probe
                seconds_per_row[impl.name] = probe(impl, rewards, prompts, rollouts)
            estimate = seconds_per_row[impl.name] * rows
            if estimate > skip_over_s:
                record["note"] = f"skipped: one run would take about {estimate:.0f} s"
            else:
                record["median_s"], record["runs"] = time_python(
                    impl, rewards, prompts, rollouts, max_runs, budget_s)
                seconds_per_row[impl.name] = record["median_s"] / rows
            records.append(record)
            print(f"  {prompts}x{rollouts} {impl.name}: {format_seconds(record['median_s'])}",
                  file=sys.stderr, flush=True)
        records.append({"prompts": prompts, "rollouts": rollouts, "rows": rows,
                        "implementation": LIBRARY, "median_s": library_s,
                        "runs": 5 if library_s is not None else 0, "note": library_note})
        for record in records[-len(impls.IMPLEMENTATIONS) - 1:]:
            t = record["median_s"]
            record["rows_per_s"] = rows / t if t else None
            record["vs_shuffle_r1"] = t / library_s if t and library_s else None
    return records


def print_table(records: list[dict]) -> None:
    print("Shuffle-R1 selection: GRPO advantages + PTS (keep 0.5) + ABS (power, 8 rounds), "
          "one CPU thread")
    header = (f"{'size':>11} {'rows':>9}  {'implementation':<14} {'median':>9} {'rows/s':>9} "
              f"{'runs':>4}  {'time / shuffle_r1':>17}")
    print(header)
    print("-" * len(header))
    for r in records:
        size = f"{r['prompts']}x{r['rollouts']}"
        rate = format_rate(r["rows_per_s"])
        ratio = format_ratio(r["vs_shuffle_r1"])
        line = (f"{size:>11} {r['rows']:>9}  {r['implementation']:<14} "
                f"{format_seconds(r['median_s']):>9} {rate:>9} {r['runs']:>4}  {ratio:>17}")
        if r["note"]:
            line += f"  ({r['note']})"
        print(line)


def self_check() -> int:
    """The three Python implementations agree and produce valid ABS output. Returns exit code."""
    failures = 0
    cases = [(64, 16, 1), (33, 8, 2), (16, 2, 3), (5, 12, 4)]
    for prompts, rollouts, seed in cases:
        rewards = batch.synthetic_rewards(prompts, rollouts, seed)
        selections = {cls.name: impls.select(cls(), rewards, prompts, rollouts, seed)
                      for cls in impls.IMPLEMENTATIONS}
        reference = selections[impls.LoopImpl.name]
        for name, sel in selections.items():
            problems = impls.invariant_violations(sel)
            if sel is not reference:
                problems += impls.differences(reference, sel)
            for p in problems:
                print(f"check {prompts}x{rollouts} {name}: {p}")
            failures += len(problems)
    print("check: " + ("ok" if failures == 0 else f"{failures} problem(s)"))
    return 0 if failures == 0 else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=parse_sizes, default=None,
                        help=f"comma-separated PROMPTSxROLLOUTS (default {DEFAULT_SIZES})")
    parser.add_argument("--large", action="store_true", help=f"also time {LARGE_SIZE}")
    parser.add_argument("--bench", type=Path, default=DEFAULT_BENCH,
                        help="shuffle_r1_bench binary (default: %(default)s)")
    parser.add_argument("--json", type=Path, default=None, help="also write all numbers here")
    parser.add_argument("--runs", type=int, default=7, help="most timed runs per cell")
    parser.add_argument("--budget", type=float, default=10.0,
                        help="seconds of runs per cell after which timing stops")
    parser.add_argument("--skip-over", type=float, default=30.0,
                        help="skip an implementation whose run would take longer (s)")
    parser.add_argument("--check", action="store_true",
                        help="only check that the Python implementations agree, then exit")
    args = parser.parse_args(argv)
    if args.check:
        return self_check()

    sizes = args.sizes or parse_sizes(DEFAULT_SIZES)
    if args.large:
        sizes += parse_sizes(LARGE_SIZE)
    records = measure(sizes, args.bench, args.runs, args.budget, args.skip_over)
    print_table(records)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "description": "median seconds per selection step; rows/s = rows / median",
            "config": vars(impls.Config()),
            "machine": {"python": platform.python_version(), "numpy": np.__version__,
                        "torch": impls.torch.__version__, "processor": platform.processor(),
                        "platform": platform.platform()},
            "records": records,
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
