"""A short smoke of every script in benchmarks/ (tiny sizes, one run), so they keep working: each must
finish and print its ratios. The figures themselves are not checked here (no timed assertions):
the scripts are run on demand for those."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RATIO = r"\d+\.\d\d"

SCRIPTS = {
    "oneshot_vs_native": (["--calls", "2", "--runs", "1"],
                          [rf"Redis .* ratio with agent {RATIO}, without {RATIO}",
                           rf"PostgreSQL .* ratio with agent {RATIO}", rf"MariaDB .* ratio with agent {RATIO}",
                           "MongoDB +not measured"]),
    "json_import_vs_jsonl": (["--rows", "300", "--runs", "1"],
                             [rf"reader +array .* ratio {RATIO} \(1 runs\)", rf"reader +pretty .* ratio {RATIO}",
                              rf"insert +array .* ratio {RATIO}"]),
    "export_vs_sqlite3": (["--rows", "300", "--runs", "1"],
                          [rf"--format {fmt} .*: ratio {RATIO} \(1 runs\); peak RSS dbsh \d+ MB"
                           for fmt in ("jsonl", "json ", "csv ")]),
    "bench_vs_redis_benchmark": (["--clients", "1", "--requests", "300", "--pipeline", "1", "4", "--runs", "1"],
                                 [rf"(SET|GET) / H(SET|MGET) +1 +{pipe} .* {RATIO} " for pipe in (1, 4)]),
    "import_vs_native": (["300", "--only", "sqlite,postgres,redis,export", "--repeat", "1"],
                         [rf"{label} .* dbsh speed = {RATIO}x native" for label in ("SQLite", "PostgreSQL", "Redis",
                                                                                 "Export")]),
    "startup": (["2"], [r"dbsh --help +\d+\.\d ms +\(\d+\.\dx\)"]),
    "oneshot_vs_litecli": (["1"], [r"dbsh find +median", rf"(litecli -e = {RATIO}x|litecli is not installed)"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_each_benchmark_script_runs_and_prints_its_ratios(name, dbsh_env):
    if name in ("oneshot_vs_native", "bench_vs_redis_benchmark") and not shutil.which("redis-benchmark"):
        pytest.skip("redis-tools not installed")
    args, expected = SCRIPTS[name]
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *args], capture_output=True, text=True,
                          timeout=600, env=dbsh_env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for pattern in expected:
        assert re.search(pattern, proc.stdout), (pattern, proc.stdout)


def test_every_benchmark_script_has_a_smoke():
    scripts = {p.name for p in (ROOT / "benchmarks").iterdir() if p.is_file() and p.suffix != ".py"}
    assert scripts == set(SCRIPTS)
