"""The package as users get it, and its metadata: no dead dependency in any extra, the slim [all].

The build itself (sdist and wheel with `python -m build`, `twine check`, the wheel installed into a
fresh venv and run from there) is scripts/check-package: it needs the package index, so scripts/test
runs it outside the tests' private network namespace, alongside them, and the first test here
reports its result.
"""

import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_built_wheel_runs_from_a_fresh_venv():
    log = os.environ.get("DBSH_TEST_PACKAGE_LOG")
    if not log:
        pytest.skip("scripts/test runs scripts/check-package on a whole-suite run; run it alone to check the package")
    rc = Path(log + ".rc")
    while not rc.exists():    # it started with the suite; pytest's timeout bounds the wait
        time.sleep(0.5)
    output = Path(log).read_text()
    assert rc.read_text().strip() == "0", output
    assert output.startswith("check-package: built dbsh-"), output


def test_no_extra_installs_couchdb_python_and_all_leaves_matplotlib_to_plot():
    extras = PYPROJECT["project"]["optional-dependencies"]
    every = [req.lower() for reqs in extras.values() for req in reqs]
    assert not [r for r in every if r.startswith("couchdb")]
    assert extras["couchdb"] == ["httpx>=0.25"]
    assert extras["plot"] == ["matplotlib>=3.8"]
    assert "plot" not in extras["all"][0] and not [r for r in every if "matplotlib" in r and r not in extras["plot"]]


def test_the_spdx_license_has_the_setuptools_that_reads_it():
    assert PYPROJECT["project"]["license"] == "MIT"
    assert PYPROJECT["build-system"]["requires"] == ["setuptools>=77"]   # PEP 639 license expressions
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_help_into_a_closed_pipe_is_quiet():
    """`dbsh --help | head -1`: the reader is gone before dbsh writes; no traceback, exit 141."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([sys.executable, "-m", "dbsh", "--help"], stdout=write, stderr=subprocess.PIPE,
                              text=True)
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (141, "")
