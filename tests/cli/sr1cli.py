"""Helpers for the end-to-end tests of the sr1 tool (not a test module itself).

The sr1 binary is taken from the environment variable SR1 (set by ctest), else from the release
build directory. Tests write their CSV files into temporary directories.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMPARE_DIR = ROOT / "bench" / "compare"


def sr1_path() -> str:
    """The sr1 binary under test; exits with a clear message when there is none."""
    path = os.environ.get("SR1") or str(ROOT / "build" / "release" / "tools" / "sr1" / "sr1")
    if not os.access(path, os.X_OK):
        sys.exit(f"sr1 binary not found at {path}: build target sr1 or set SR1")
    return path


SR1 = sr1_path()


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """Runs sr1 with the arguments; stdout and stderr are captured as text."""
    return subprocess.run([SR1, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          check=False, timeout=120)


def write_csv(path: Path, header, rows, *, newline: str = "\n", bom: bool = False) -> Path:
    """Writes a CSV: `header` and each row are sequences of already-formatted field strings."""
    lines = [",".join(header)] + [",".join(str(f) for f in row) for row in rows]
    data = newline.join(lines) + newline
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data.encode("utf-8"))
    return path


def write_batch(path: Path, groups, rewards) -> Path:
    """A CSV with columns group and reward; rewards written so they parse back exactly."""
    return write_csv(path, ["group", "reward"],
                     [(g, repr(float(r))) for g, r in zip(groups, rewards)])


def select(csv: Path, *options: str) -> dict:
    """Runs `sr1 select --input csv options...`, requires success, returns the parsed JSON."""
    done = run("select", "--input", csv, *options)
    if done.returncode != 0 or done.stderr:
        raise AssertionError(f"sr1 select {' '.join(map(str, options))} failed "
                             f"({done.returncode}): {done.stderr.strip()}")
    return json.loads(done.stdout)
