"""Paired, alternating runs for the benchmark scripts: each round runs every side once, the order
turning each round, so a slow minute of this shared VM costs every side alike; a ratio is the median
of the per-round ratios, printed with the number of runs."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VENV = ROOT / ".venv/bin"
PYTHON = str(VENV / "python") if (VENV / "python").exists() else sys.executable
# the dbsh command as installed (bin/dbsh); python -m dbsh where there is no venv
DBSH = [str(VENV / "dbsh")] if (VENV / "dbsh").exists() else [PYTHON, "-m", "dbsh"]


def timed(argv, *, stdin=None, stdout=subprocess.DEVNULL, env=None, cwd=None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process; a non-zero exit stops the benchmark."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, env=env, cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(map(str, argv))[:300]} failed ({code}): {err.strip()[:500]}")
    return seconds, usage.ru_maxrss / 1024


def rounds(sides: dict, runs: int) -> dict[str, list[tuple[float, float]]]:
    """``sides``: label -> a function returning (seconds, peak RSS MB). Each side runs ``runs`` times,
    in turns; the order is reversed every other round."""
    results: dict[str, list[tuple[float, float]]] = {label: [] for label in sides}
    labels = list(sides)
    for i in range(runs):
        for label in (labels if i % 2 == 0 else labels[::-1]):
            results[label].append(sides[label]())
    return results


def ratio(results, numerator: str, denominator: str) -> float:
    """Median over the rounds of numerator's time / denominator's time (paired by round)."""
    return statistics.median(a[0] / b[0] for a, b in zip(results[numerator], results[denominator]))


def median_seconds(results, label: str) -> float:
    return statistics.median(r[0] for r in results[label])


def peak_rss(results, label: str) -> float:
    return max(r[1] for r in results[label])
