"""Long results go through a pager; short ones print directly. Output streams either way."""

from __future__ import annotations

import io
import shlex
import subprocess
from typing import IO, cast


class PagedOutput(io.TextIOBase):
    """Holds the first screenful; once output is longer, starts the pager and streams into it."""

    def __init__(self, command: str, out, height: int):
        self.command = command
        self.out = out
        self.height: float = max(height - 2, 1)   # (infinity once there is no pager)
        self._held: list[str] = []
        self._lines = 0
        self.proc: subprocess.Popen[str] | None = None

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self.proc is not None:
            _stdin(self.proc).write(text)
            return len(text)
        self._held.append(text)
        self._lines += text.count("\n")
        if self._lines > self.height:
            self._start()
        return len(text)

    def _start(self) -> None:
        try:
            self.proc = subprocess.Popen(shlex.split(self.command), stdin=subprocess.PIPE, text=True,
                                         encoding="utf-8", errors="replace")
        except OSError:
            self.command = ""   # no such pager: print directly from now on
            self.proc = None
            self.out.write("".join(self._held))
            self._held = []
            self.height = float("inf")
            return
        _stdin(self.proc).write("".join(self._held))
        self._held = []

    def flush(self) -> None:
        if self.proc is not None:
            _stdin(self.proc).flush()

    def close(self) -> None:
        if self.proc is not None:
            try:
                _stdin(self.proc).close()
            except BrokenPipeError:
                pass
            self.proc.wait()
            self.proc = None
        elif self._held:
            self.out.write("".join(self._held))
            self._held = []
            self.out.flush()
        super().close()


def _stdin(proc: subprocess.Popen[str]) -> IO[str]:
    """The pager's stdin: never None, as it was started with stdin=PIPE."""
    return cast(IO[str], proc.stdin)
