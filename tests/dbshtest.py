"""Run dbsh the way users do: in-process through the real Typer app, or as a real subprocess."""

from __future__ import annotations

import contextlib
import io
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


class _Stream(io.TextIOWrapper):
    """A text stream over bytes, as a pipe is (not a TTY; has a buffer)."""

    def __init__(self, data: bytes = b""):
        super().__init__(io.BytesIO(data), encoding="utf-8", errors="surrogateescape", newline="")

    def fileno(self) -> int:   # no file descriptor: like a closed pipe's
        raise io.UnsupportedOperation("fileno")

    def value(self) -> str:
        self.flush()
        return self.buffer.getvalue().decode("utf-8", errors="replace")


def dbsh(*args: str, input: str | None = None, env: dict | None = None) -> Run:
    """In-process run of the real CLI entry point (dbsh.cli.run), the path every command takes;
    stdin and stdout are pipes, so output defaults to jsonl. ``env`` is added to the environment."""
    from dbsh import cli

    saved = sys.stdin, sys.stdout, sys.stderr
    saved_env = dict(os.environ)
    sys.stdin = _Stream((input or "").encode())
    sys.stdout, sys.stderr = _Stream(), _Stream()
    out, err = sys.stdout, sys.stderr
    try:
        if env:
            os.environ.update({k: v for k, v in env.items() if v is not None})
            for k, v in env.items():
                if v is None:
                    os.environ.pop(k, None)
        code = cli.run(list(args))
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
        os.environ.clear()
        os.environ.update(saved_env)
    return Run(code, out.value(), err.value())


def dbsh_typer(*args: str, input: str | None = None, env: dict | None = None) -> Run:
    """The same command through the Typer app built from the verb table (help, completion)."""
    from typer.testing import CliRunner

    from dbsh.cli import build_app

    result = CliRunner().invoke(build_app(), list(args), input=input, env=env, catch_exceptions=False)
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


@contextlib.contextmanager
def silent_port():
    """A TCP port on 127.0.0.1 that accepts connections and never says a word (for connect timeouts)."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    held, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_of(url: str) -> int:
    """The port of a server URL (scheme://[user[:password]@]host:port/...)."""
    return int(url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1].rsplit(":", 1)[1])
