"""Run dbsh the way users do: in-process through the real Typer app, or as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


def dbsh(*args: str, input: str | None = None, env: dict | None = None) -> Run:
    """In-process run of the real CLI (stdout is not a TTY, so output defaults to jsonl)."""
    from typer.testing import CliRunner

    from dbsh.cli import build_app

    runner = CliRunner()
    result = runner.invoke(build_app(), list(args), input=input, env=env, catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr)


def dbsh_process(*args: str, input: str | None = None, env: dict | None = None, timeout: float = 60) -> Run:
    """A real `dbsh` process (python -m dbsh), for end-to-end cases."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "dbsh", *args], input=input, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    return Run(proc.returncode, proc.stdout, proc.stderr)
