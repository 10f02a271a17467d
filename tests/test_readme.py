"""The README says what the code does: its table of divergences is the backend records' own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_lists_exactly_what_the_backend_records_declare():
    table = subprocess.run([sys.executable, str(ROOT / "scripts" / "divergences")], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert table in (ROOT / "README.md").read_text(encoding="utf-8"), "run scripts/divergences --write"


def test_readme_opens_with_the_two_commands():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert lines[2:6] == ["```sh", "python3 -m venv .venv && .venv/bin/pip install -q . && .venv/bin/dbsh",
                          "scripts/test", "```"]
    assert (ROOT / "scripts" / "test").stat().st_mode & 0o111
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()
