"""The schema for completion, fetched in a background thread and swapped in when done.

The catalog opens its own session (never the shell's, which may hold the user's transaction) and
asks it for collection names and fields (``Session.completions()``); the prompt never waits.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dbsh.errors import DbshError

if TYPE_CHECKING:
    from dbsh.drivers.base import Session


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
    # collection -> its references to others ({"columns", "table", "referred"}: Session.foreign_keys)
    references: dict[str, list[dict]] = field(default_factory=dict)
    vocabulary: dict[str, Any] = field(default_factory=dict)     # Session.vocabulary()
    commands: dict[str, Any] = field(default_factory=dict)       # Redis: the server's command table
    keys: list[str] = field(default_factory=list)     # key names read up front (Memcached's metadump)


KEY_CACHE_SECONDS = 5.0


class Catalog:
    """Collections and fields of one target, refreshed in the background."""

    def __init__(self, open_session: Callable[[], Session]):
        self._open = open_session
        self.snapshot = Snapshot()
        self.error: str | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._again = False
        self._running = False
        self._keys_session: Session | None = None
        self._keys_lock = threading.Lock()
        self._keys: dict[str, tuple[float, list[str]]] = {}

    def refresh(self) -> None:
        """Start a refresh (or queue one after the running one); returns at once."""
        with self._lock:
            self._done.clear()
            if self._running:
                self._again = True
                return
            self._running = True
        threading.Thread(target=self._work, name="dbsh-catalog", daemon=True).start()

    def key_names(self, prefix: str, limit: int = 100) -> list[str]:
        """Key names beginning with ``prefix`` (Redis): a bounded scan on the catalog's own connection,
        kept for a few seconds. Called from the completion thread, never from the prompt's."""
        now = time.monotonic()
        for cached, (when, names) in list(self._keys.items()):
            if now - when > KEY_CACHE_SECONDS:
                del self._keys[cached]
            elif prefix.startswith(cached) and len(names) < limit:   # that scan saw every match
                return [n for n in names if n.startswith(prefix)]
        with self._keys_lock:
            try:
                if self._keys_session is None:
                    self._keys_session = self._open()
                names = self._keys_session.key_names(prefix, limit)
            except Exception:  # noqa: BLE001 - completion is best effort
                self.close()
                return []
        self._keys[prefix] = (now, names)
        return names

    def close(self) -> None:
        session, self._keys_session = self._keys_session, None
        if session is not None:
            try:
                session.close()
            except Exception:  # noqa: BLE001 - closing must not raise
                pass

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
                        references = session.references()
                    except Exception:  # noqa: BLE001 - join completion is best effort
                        references = {}
                    try:
                        vocabulary = session.vocabulary()
                    except Exception:  # noqa: BLE001 - extra words are best effort
                        vocabulary = {}
                    try:   # key-value stores that list every key at once (Memcached); Redis scans per prefix
                        keys = session.key_names() if getattr(session, "lists_keys", False) else []
                    except DbshError:
                        keys = []
                finally:
                    session.close()
                commands = {}
                if vocabulary.get("command_docs"):
                    from dbsh.repl import redis_commands

                    commands = redis_commands.table(redis_commands.docs_table(vocabulary["command_docs"]))
                self.snapshot = Snapshot(names, {k: list(v) for k, v in fields.items()}, references, vocabulary,
                                         commands, keys)
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

