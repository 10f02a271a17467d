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


def dbsh_on_terminal(*args: str, env: dict) -> Run:
    """A real `dbsh` process whose stderr is a terminal (a pty), stdout piped: ``err`` is all it drew
    there (progress bars), as text."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "dbsh", *args], stdout=subprocess.PIPE, stderr=slave,
                            env=env, text=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:   # EIO: the terminal's other end closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    out = proc.stdout.read()
    return Run(proc.wait(), out, b"".join(chunks).decode(errors="replace"))
