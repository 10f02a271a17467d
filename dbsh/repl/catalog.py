"""The schema for completion, fetched in a background thread and swapped in when done.

The catalog opens its own session (never the shell's, which may hold the user's transaction) and
asks it for collection names and fields (``Session.completions()``); the prompt never waits.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from typing import Callable

from dbsh.errors import DbshError


class _QuietThreads:
    """stderr that drops what the catalog threads write (a driver's notes would garble the prompt)."""

    def __init__(self, real):
        self.real = real
        self.quiet: set[int] = set()

    def write(self, text: str) -> int:
        if threading.get_ident() in self.quiet:
            return len(text)
        return self.real.write(text)

    def __getattr__(self, name):
        return getattr(self.real, name)


def _silence_this_thread() -> None:
    if not isinstance(sys.stderr, _QuietThreads):
        sys.stderr = _QuietThreads(sys.stderr)
    sys.stderr.quiet.add(threading.get_ident())


@dataclass(frozen=True)
class Snapshot:
    collections: list[str] = field(default_factory=list)
    fields: dict[str, list[str]] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)     # key names, on key-value stores (Session.key_names)


class Catalog:
    """Collections and fields of one target, refreshed in the background."""

    def __init__(self, open_session: Callable[[], object]):
        self._open = open_session
        self.snapshot = Snapshot()
        self.error: str | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._again = False
        self._running = False

    def refresh(self) -> None:
        """Start a refresh (or queue one after the running one); returns at once."""
        with self._lock:
            self._done.clear()
            if self._running:
                self._again = True
                return
            self._running = True
        threading.Thread(target=self._work, name="dbsh-catalog", daemon=True).start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the latest refresh finished (tests and scripts only; the prompt never waits)."""
        return self._done.wait(timeout)

    def _work(self) -> None:
        _silence_this_thread()
        try:
            self._refresh_until_current()
        finally:
            if isinstance(sys.stderr, _QuietThreads):
                sys.stderr.quiet.discard(threading.get_ident())

    def _refresh_until_current(self) -> None:
        while True:
            try:
                session = self._open()
                try:
                    try:
                        fields = session.completions()
                    except DbshError:     # a backend that cannot describe: names only
                        fields = {name: [] for name in session.collections()}
                    names = sorted(fields)
                    try:
                        keys = session.key_names()
                    except DbshError:
                        keys = []
                finally:
                    session.close()
                self.snapshot = Snapshot(names, {k: list(v) for k, v in fields.items()}, keys)
                self.error = None
            except BaseException as e:  # noqa: BLE001 - completion is best effort; keep the last snapshot
                self.error = str(e)
            with self._lock:
                if self._again:
                    self._again = False
                    continue
                self._running = False
                self._done.set()
                return
