"""Checkpoints of a bulk load: a record after every batch, so --resume continues without duplicates."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from dbsh.drivers.base import Session
from dbsh.errors import NotFound, UsageError

# -- checkpoints ------------------------------------------------------------------------------
CHECKPOINT_VERSION = 1
_SLOT = 1 << 16


def latest_state(raw: bytes) -> dict | None:
    """The last state saved in a checkpoint file's bytes (None when neither slot holds one)."""
    saved = []
    for slot in (raw[:_SLOT], raw[_SLOT:2 * _SLOT]):
        try:   # a JSON line at the start of the slot; what follows is left of an older, longer one
            data = json.loads(slot.split(b"\n", 1)[0])
        except ValueError:
            continue
        if isinstance(data, dict):
            saved.append(data)
    return max(saved, key=lambda d: d.get("seq", 0)) if saved else None


def checkpoint_dir() -> Path:
    from dbsh import config

    return config.data_dir() / "checkpoints"


KEEP_FINISHED = 30 * 86400   # seconds a finished run's checkpoint is kept (a --resume after it writes nothing)


def _prune(folder: Path) -> None:
    """Remove checkpoints of runs that finished more than KEEP_FINISHED ago (interrupted ones stay)."""
    try:
        old = [p for p in folder.glob("*.json") if time.time() - p.stat().st_mtime > KEEP_FINISHED]
    except OSError:
        return
    for path in old:
        try:
            state = latest_state(path.read_bytes())
            if state is not None and state.get("done"):
                path.unlink()
        except OSError:
            pass


@dataclass
class Checkpoint:
    """Progress of one source -> destination run, saved after every batch.

    ``position`` is how far the source has been read (rows for a copy, lines for a file, elements
    for a JSON array);
    ``pending`` is the batch being written. On resume the destination's row count says whether
    that batch landed, so a kill between the write and the save neither loses nor repeats it.
    """

    path: Path
    source: str
    destination: str
    start_count: int = 0
    position: int = 0
    written: int = 0
    errors: int = 0
    pending: dict | None = None
    fingerprint: str | None = None   # a file's size and mtime: resuming a changed file would skip wrong rows
    done: bool = False               # the run finished: --resume again writes nothing (rather than refusing)
    _seq: int = 0                    # saves so far: the slot with the higher one is the latest
    _fd: int | None = None

    @classmethod
    def for_run(cls, source: str, destination: str) -> Checkpoint:
        key = hashlib.sha256(f"{source}\n{destination}".encode()).hexdigest()[:24]
        _prune(checkpoint_dir())
        return cls(checkpoint_dir() / f"{key}.json", source, destination)

    def load(self) -> bool:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return False
        except OSError:
            raise UsageError(f"unreadable checkpoint {self.path}; delete it to start over") from None
        data = latest_state(raw)
        if data is None:
            raise UsageError(f"unreadable checkpoint {self.path}; delete it to start over")
        if data.get("version") != CHECKPOINT_VERSION:
            raise UsageError(f"checkpoint {self.path} is from another dbsh version; delete it to start over")
        for name in ("start_count", "position", "written", "errors", "pending", "fingerprint"):
            setattr(self, name, data.get(name))
        self.done = bool(data.get("done"))
        self._seq = data.get("seq", 0)
        return True

    def finished(self) -> bool:
        """Whether the checkpoint file says its run finished."""
        try:
            return self.load() and self.done
        except UsageError:
            return False

    def save(self) -> None:
        """Twice a batch, so in place: two slots written in turn (one write each, no rename, which
        cost more than a batch of COPY here); a write cut short leaves the other slot whole."""
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        self._seq += 1
        data = {"version": CHECKPOINT_VERSION, "seq": self._seq, "source": self.source,
                "destination": self.destination, "start_count": self.start_count, "position": self.position,
                "written": self.written, "errors": self.errors, "pending": self.pending,
                "fingerprint": self.fingerprint, "done": self.done, "saved": time.time()}
        text = (json.dumps(data) + "\n").encode()
        if len(text) > _SLOT:
            raise UsageError("cannot keep a checkpoint: the source or destination name is too long")
        os.pwrite(self._fd, text, (self._seq % 2) * _SLOT)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)

    def settle(self, now_count: int) -> None:
        """After a crash: decide from the destination's count whether the pending batch landed."""
        delta = now_count - self.start_count
        if self.pending:
            landed = delta - self.written
            if landed == self.pending["good"]:
                self.position = self.pending["end"]
                self.written += self.pending["good"]
                self.errors += self.pending["bad"]
            elif 0 < landed < self.pending["good"]:   # a store whose batches are not all-or-nothing
                raise UsageError(f"cannot resume exactly: the batch in flight when the run stopped (positions "
                                 f"{self.position + 1}-{self.pending['end']} of the source) landed in part, "
                                 f"{landed} of its {self.pending['good']} rows",
                                 hint=f"remove those rows and run again with --resume, or delete {self.path} and "
                                      "start over")
            self.pending = None
        if delta != self.written:
            raise UsageError(f"cannot resume safely: the destination has {now_count} rows, the checkpoint "
                             f"expects {self.start_count + self.written}; it changed since the interrupted run",
                             hint=f"delete {self.path} and start over")


def destination_count(session: Session, collection: str) -> int:
    from dbsh.query import Filter

    try:
        return session.count(collection, Filter({}))
    except NotFound:
        return 0
