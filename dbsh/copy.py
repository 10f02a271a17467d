"""Moving data: `insert --file` and `dbsh copy SRC DST`, in batches, through each driver's bulk insert.

One loop serves both: documents come from a file reader or a source Session's ``find``; each
batch goes to ``session.insert`` (one transaction per batch where the backend has them). Around
it: bad rows to ``--errors FILE`` (``--max-errors N``), a checkpoint after every batch so
``--resume`` continues without duplicates, a Rich progress bar on a terminal, and Ctrl-C/SIGTERM
that let the batch in flight finish before stopping with an exact count.
"""

from __future__ import annotations

import datetime as dt
import decimal
import gc
import hashlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import urlsplit

from dbsh import DEFAULT_BATCH
from dbsh.drivers.base import Session, WriteResult
from dbsh.errors import EXIT_INTERRUPTED, DbshError, NotFound, PartialWrite, UsageError
from dbsh.inputs import Batch

CHECKPOINT_VERSION = 1


# -- locations -------------------------------------------------------------------------------
def split_location(text: str) -> tuple[str, str]:
    """``scheme://.../db/collection`` -> (URL of the database, collection); ``PROFILE/collection`` too.

    The collection is the last path part: sqlite:///app.db/users, mongodb://h/shop/products,
    redis://h:6379/0/users, couchdb://h:5984/users, cassandra://h/ks/users, bolt://h/Person.
    """
    if "://" not in text:
        name, sep, collection = text.rpartition("/")
        if not sep or not name or not collection:
            raise UsageError(f"expected URL/COLLECTION or PROFILE/COLLECTION, got {text!r}")
        return name, collection
    parts = urlsplit(text)
    base, sep, collection = parts.path.rpartition("/")
    if not sep or not collection:
        from dbsh.errors import redact

        raise UsageError(f"no collection in {redact(text)!r}",
                         hint="put it last in the path, e.g. postgresql://host/db/table")
    if parts.scheme.lower() == "sqlite" and base in ("", "/"):
        raise UsageError(f"no SQLite file in {text!r}", hint="e.g. sqlite:///app.db/users")
    # by hand: urlunsplit would turn sqlite:///app.db into sqlite:/app.db
    rebuilt = f"{parts.scheme}://{parts.netloc}{base}" + (f"?{parts.query}" if parts.query else "")
    return rebuilt, collection


def open_location(text: str, password: str | None = None) -> tuple[Session, str]:
    from dbsh import drivers, target

    where, collection = split_location(text)
    if "://" in where:
        resolved = target.resolve(where, password=password)
    else:
        resolved = target.resolve(profile=where, password=password)
    return drivers.connect(resolved), collection


# -- values between models --------------------------------------------------------------------
def plain_value(value: Any, keep_dates: bool, nested_dates: bool | None = None) -> Any:
    """A value every backend can store: ObjectId -> its hex string, graph/driver types -> JSON forms.
    ``keep_dates``: datetimes and decimals stay as they are; ``nested_dates``: also inside lists and
    objects (default: as keep_dates)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    inner = keep_dates if nested_dates is None else nested_dates
    if isinstance(value, dict):
        return {str(k): plain_value(v, inner) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_value(v, inner) for v in value]
    if keep_dates and isinstance(value, dt.datetime | dt.date):
        return value
    if keep_dates and isinstance(value, decimal.Decimal):
        return value
    from dbsh.output import jsonable

    converted = jsonable(value)
    if isinstance(converted, dict) and len(converted) == 1:
        (key, inner), = converted.items()
        if key in ("$oid", "$uuid", "$numberDecimal", "$numberLong"):
            return inner   # ObjectId -> "65f0...", as the issue asks: a string, not extended JSON
        if key == "$date":
            return inner if isinstance(inner, str) else converted
    return plain_value(converted, keep_dates) if isinstance(converted, dict | list) else converted


def flatten(doc: dict, sep: str = "_", prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a_b": 1}; lists stay values (JSON columns)."""
    out: dict = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, sep, name + sep))
        else:
            out[name] = value
    return out


def parse_map(pairs: Iterable[str] | None) -> dict[str, str | None]:
    """``--map a:b`` renames field a to b; ``--map a:`` drops a."""
    mapping: dict[str, str | None] = {}
    for pair in pairs or ():
        old, sep, new = pair.partition(":")
        old, new = old.strip(), new.strip()
        if not sep or not old:
            raise UsageError(f"bad --map {pair!r}", hint="use --map old:new (or old: to drop the field)")
        if old in mapping:
            raise UsageError(f"--map names {old!r} twice")
        mapping[old] = new or None
    targets = [n for n in mapping.values() if n]
    if len(targets) != len(set(targets)):
        raise UsageError("--map renames two fields to the same name")
    return mapping


def converter(destination: Session, *, mapping: dict[str, str | None] | None = None, flat: bool = False,
              source: Session | None = None) -> Callable[[dict], dict]:
    keep_dates = destination.capabilities.schema or destination.name == "MongoDB"
    # inside lists and objects too on MongoDB (BSON has dates) and when objects become columns
    # (--flatten); a SQL JSON column holds JSON only
    nested_dates = destination.name == "MongoDB" or flat
    mapping = dict(mapping or {})
    if source is not None and source.name == "CouchDB":
        mapping.setdefault("_rev", None)   # a revision means nothing elsewhere (and CouchDB refuses it)
    # graph properties are scalars or lists of scalars: nested values travel as JSON text
    scalars_only = destination.name == "Neo4j"

    def convert(doc: dict) -> dict:
        doc = {str(k): plain_value(v, keep_dates, nested_dates) for k, v in doc.items()}
        if flat:
            doc = flatten(doc)
        if mapping:
            doc = {mapping.get(k, k): v for k, v in doc.items() if mapping.get(k, k) is not None}
        if scalars_only:
            doc = {k: json.dumps(v, ensure_ascii=False) if _nested(v) else v for k, v in doc.items()}
        return doc

    return convert


def _nested(value: Any) -> bool:
    return isinstance(value, dict) or (isinstance(value, list) and any(isinstance(v, dict | list) for v in value))


# -- bad rows ---------------------------------------------------------------------------------
class ErrorLog:
    """Bad rows: to ``--errors FILE`` (one JSON object a line: where, why, the row) or, with only
    ``--max-errors``, to stderr. Without either, the first bad row stops the run."""

    def __init__(self, path: str | None, max_errors: int | None, *, append: bool = False):
        self.path = path
        self.max_errors = max_errors if max_errors is not None else (None if path else 0)
        self.count = 0
        self._file = None
        if path:
            try:
                self._file = open(path, "a" if append else "w", encoding="utf-8")
            except OSError as e:
                raise UsageError(f"cannot write --errors {path}: {e.strerror}") from None

    @property
    def tolerant(self) -> bool:
        return self.max_errors is None or self.max_errors > 0

    def add(self, where: dict, reason: str, row: Any) -> None:
        from dbsh.output import to_json

        self.count += 1
        record = {**where, "error": reason, "row": row}
        if self._file is not None:
            self._file.write(to_json(record) + "\n")
            self._file.flush()
        else:
            place = ", ".join(f"{k} {v}" for k, v in where.items())
            print(f"dbsh: skipped bad row ({place}): {reason}", file=sys.stderr)
        if self.max_errors is not None and self.count > self.max_errors:
            raise UsageError(f"too many bad rows ({self.count}, --max-errors {self.max_errors}); last: "
                             f"{', '.join(f'{k} {v}' for k, v in where.items())}: {reason}")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


# -- checkpoints ------------------------------------------------------------------------------
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
    _seq: int = 0                    # saves so far: the slot with the higher one is the latest
    _fd: int | None = None

    @classmethod
    def for_run(cls, source: str, destination: str) -> "Checkpoint":
        key = hashlib.sha256(f"{source}\n{destination}".encode()).hexdigest()[:24]
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
        self._seq = data.get("seq", 0)
        return True

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
                "fingerprint": self.fingerprint, "saved": time.time()}
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
            if delta == self.written + self.pending["good"]:
                self.position = self.pending["end"]
                self.written += self.pending["good"]
                self.errors += self.pending["bad"]
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


# -- stopping politely -----------------------------------------------------------------------
class StopSignal:
    """Ctrl-C / SIGTERM ask the loop to stop after the batch in flight; a second Ctrl-C stops now."""

    def __init__(self):
        self.requested: str | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self):
        if _main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


class Interrupted(DbshError):
    exit_code = EXIT_INTERRUPTED


# -- progress ---------------------------------------------------------------------------------
class Progress:
    """A Rich bar with rows/s and ETA on stderr when it is a terminal; silent otherwise. The bar
    counts rows out of ``total``, or, for a file of ``size`` bytes, how far into it reading has
    gone (the rows are counted beside it)."""

    def __init__(self, label: str, total: int | None, enabled: bool | None = None, *, size: int | None = None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._bar = None
        self._size = size
        if self.enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as Bar, TaskProgressColumn,
                                       TextColumn, TimeElapsedColumn, TimeRemainingColumn)

            count = MofNCompleteColumn() if size is None else TaskProgressColumn()
            columns = [TextColumn("{task.description}"), BarColumn(), count]
            if size is not None:
                columns.append(TextColumn("{task.fields[rows]:,} rows"))
            self._bar = Bar(*columns, TextColumn("{task.fields[rate]} rows/s"), TimeElapsedColumn(),
                            TimeRemainingColumn(), console=Console(stderr=True), transient=False)
            self._task = self._bar.add_task(label, total=total if size is None else size, rate="-", rows=0)
            self._start = time.perf_counter()
            self._done = 0
            self._at: int | None = None
            self._bar.start()

    def advance(self, rows: int, offset: int | None = None) -> None:
        """``rows`` more done; ``offset``: the bytes of the file read so far, for a bar of its size."""
        if self._bar is None:
            return
        self._done += rows
        rate = f"{self._done / max(time.perf_counter() - self._start, 1e-9):,.0f}"
        if self._size is None or offset is None:
            self._bar.update(self._task, advance=rows, rate=rate, rows=self._done)
        elif self._at is None:   # the first batch: a resumed run starts part way in (no speed from that)
            self._at = offset
            self._bar.reset(self._task, total=self._size, completed=offset, rate=rate, rows=self._done)
        else:
            self._bar.update(self._task, completed=offset, rate=rate, rows=self._done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


# -- reading ahead ------------------------------------------------------------------------------
class _ReadFailed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException):
        self.error = error


def read_ahead(batches: Iterator[Batch], prepare: Callable[[Batch], None], *, apart: bool = False) -> Iterator[Batch]:
    """The batches, read, parsed and prepared (``prepare``: the destination's prepare_batch) ahead of
    the writer: while the database server works on one batch, the next one is made ready. With
    ``apart`` (the destination's prepares_apart, where CAN_FORK), by a forked process, which shares
    no GIL with the writer; otherwise by a thread. A reading error reaches the writer in its place
    in the stream."""
    if apart:
        return _read_ahead_forked(batches, prepare)
    return _read_ahead_thread(batches, prepare)


# fork() without exec() is sound on Linux; macOS's system libraries may not survive it, Windows has none
CAN_FORK = sys.platform.startswith("linux")


_FRAME = "<Q"   # each batch handed over: its pickle's length, then the pickle


def _read_ahead_forked(batches: Iterator[Batch], prepare: Callable[[Batch], None]) -> Iterator[Batch]:
    """read_ahead in a forked child, which reads and prepares each batch and hands it over, pickled,
    through a pipe (jsonl documents as their lines: Batch.__getstate__). The child ignores Ctrl-C,
    which the writer handles; it ends when the writer stops reading (it is killed) or goes away
    (its next write fails)."""
    import fcntl
    import pickle
    import struct

    frame = struct.Struct(_FRAME)
    r, w = os.pipe()
    try:   # room for a batch or two (a pipe holds 64 KiB by default): the child gets on with the next
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 1 << 20)
    except (OSError, AttributeError):
        pass
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        pid = os.fork()
    except OSError:   # no process to be had (EAGAIN, ENOMEM): a thread, then
        os.close(r)
        os.close(w)
        yield from _read_ahead_thread(batches, prepare)
        return
    if pid == 0:   # the child: never returns
        try:
            os.close(r)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            with open(w, "wb") as out:
                def send(message) -> None:
                    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
                    out.write(frame.pack(len(data)))
                    out.write(data)
                    out.flush()

                try:
                    for batch in batches:
                        prepare(batch)
                        send(("batch", batch))
                    send(("end", None))
                except BrokenPipeError:
                    pass
                except BaseException as e:  # noqa: BLE001 - handed to the writer, which raises it
                    import traceback

                    try:   # the error itself if it pickles (and unpickles), else its text
                        error = pickle.dumps(e, protocol=pickle.HIGHEST_PROTOCOL)
                    except Exception:  # noqa: BLE001
                        error = None
                    try:
                        send(("error", (error, f"{type(e).__name__}: {e}", traceback.format_exc())))
                    except BrokenPipeError:
                        pass
        finally:
            os._exit(0)
    os.close(w)
    try:
        with open(r, "rb") as source:
            while True:
                head = source.read(frame.size)
                size = frame.unpack(head)[0] if len(head) == frame.size else 0
                data = source.read(size)
                if not size or len(data) < size:   # it ended without saying so (killed, say)
                    raise DbshError("the process reading the input ended unexpectedly")
                kind, item = pickle.loads(data)
                if kind == "end":
                    return
                if kind == "error":
                    error, text, where = item
                    try:
                        error = pickle.loads(error)
                    except Exception:  # noqa: BLE001 - (one whose class takes other arguments)
                        error = DbshError(text)
                    error.add_note(f"raised in the process reading ahead:\n{where}")   # (what --debug shows)
                    raise error
                yield item
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):   # (reaped by someone else's SIGCHLD handling)
            pass


def _read_ahead_thread(batches: Iterator[Batch], prepare: Callable[[Batch], None], depth: int = 2) -> Iterator[Batch]:
    """read_ahead in a background thread, up to ``depth`` batches ahead (the writer waits on its
    socket without the GIL)."""
    import queue
    import threading

    ready: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    end = object()

    def work() -> None:
        try:
            for batch in batches:
                if stop.is_set():
                    return
                prepare(batch)
                ready.put(batch)
            ready.put(end)
        except BaseException as e:  # noqa: BLE001 - handed to the writer, which raises it
            ready.put(_ReadFailed(e))

    thread = threading.Thread(target=work, name="dbsh-read-ahead", daemon=True)
    # the writer wakes from its socket waits needing the GIL back: by default the reading thread
    # keeps it up to 5 ms each time, the server idle meanwhile (0.25 ms: 5% less wall time here)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, 0.00025))
    thread.start()
    try:
        while (item := ready.get()) is not end:
            if type(item) is _ReadFailed:
                raise item.error
            yield item
    finally:
        sys.setswitchinterval(interval)
        stop.set()
        while thread.is_alive():   # unblock a reader waiting to hand over a batch, let it stop
            try:
                ready.get(timeout=0.05)
            except queue.Empty:
                pass


# -- the loop -----------------------------------------------------------------------------------
@dataclass
class Outcome(WriteResult):
    source: str | None = None
    skipped: int = 0
    errors_file: str | None = None
    seconds: float = 0.0
    stopped: str | None = None

    def summary(self) -> str:
        noun = "row" if self.count == 1 else "rows"
        text = f"{self.action} {self.count} {noun} into {self.collection}"
        if self.source:
            text = f"{self.action} {self.count} {noun} from {self.source} into {self.collection}"
        if self.skipped:
            text += f"; {self.skipped} bad {'row' if self.skipped == 1 else 'rows'} " + \
                    (f"in {self.errors_file}" if self.errors_file else "skipped")
        if self.seconds >= 0.5 and self.count:
            text += f" ({self.count / self.seconds:,.0f} rows/s)"
        return text

    def as_row(self) -> dict[str, Any]:
        row = super().as_row()
        if self.skipped or self.errors_file:
            row["errors"] = self.skipped
        return row


@dataclass
class Load:
    """One run: batches of rows (dbsh.inputs.Batch) -> destination collection."""

    destination: Session
    collection: str
    create: bool = False
    convert: Callable[[dict], dict] | None = None
    errors: ErrorLog = field(default_factory=lambda: ErrorLog(None, None))
    checkpoint: Checkpoint | None = None
    progress: Progress | None = None
    where_name: str = "line"      # how positions are named in errors: line (files) or row (copies)
    written: int = 0
    ids: list | None = field(default_factory=list)

    def drive(self, batches: Iterator[Batch], *closers) -> tuple["StopSignal", float]:
        """Run the batches under Ctrl-C/SIGTERM handling, then close what the caller opened,
        whatever happens; returns the signal state and the seconds it took."""
        started = time.perf_counter()
        # what exists now (modules, connections) lives to the end: keep the collector, which every
        # batch's new rows set off, from walking it again and again (a tenth of a large import)
        gc.freeze()
        try:
            with StopSignal() as stop, self.destination.bulk_load():
                self.run(batches, stop)
        except DbshError as e:
            raise self._partial(e) from None
        finally:
            gc.unfreeze()
            if self.checkpoint is not None:
                self.checkpoint.close()
            for close in closers:
                close()
        return stop, time.perf_counter() - started

    def run(self, batches: Iterable[Batch], stop: StopSignal) -> None:
        ck = self.checkpoint
        for batch in batches:
            for row in batch.bad:
                self.errors.add({self.where_name: row.line}, row.reason, row.text)
            bad = len(batch.bad)
            if self.convert is not None:
                batch, failed = self._converted(batch)
                bad += failed
            if ck is not None:
                ck.pending = {"end": batch.end, "good": len(batch), "bad": bad}
                ck.save()
            landed, rejected = self._write(batch)
            if ck is not None:
                ck.position = batch.end
                ck.written += landed
                ck.errors += bad + rejected
                ck.pending = None
                ck.save()
            if self.progress is not None:
                self.progress.advance(len(batch) + bad, batch.offset)
            if stop.requested:
                return

    def _converted(self, batch: Batch) -> tuple[Batch, int]:
        """The batch's documents through ``convert`` (copy's type mapping); a document it refuses
        goes to the errors file."""
        docs, positions, source, failed = [], [], [], 0
        for position, doc in zip(batch.positions, batch.documents()):
            try:
                docs.append(self.convert(doc))
            except (DbshError, ValueError, TypeError) as e:
                failed += 1
                self.errors.add({self.where_name: position}, str(e), doc)
                continue
            positions.append(position)
            source.append(doc)
        return Batch(positions, docs, end=batch.end, source=source), failed

    def _write(self, batch: Batch) -> tuple[int, int]:
        """Insert a batch. A batch that landed in part (PartialWrite) says which documents were refused:
        those go to the errors file and the rest count. Otherwise, when bad rows may be skipped, find
        them by halving the batch: safe only where a failed batch wrote nothing (an atomic insert, or
        a refusal before writing)."""
        if not len(batch):
            return 0, 0
        try:
            result = self.destination.insert_batch(self.collection, batch, create=self.create)
        except PartialWrite as e:
            self.written += e.written
            if not self.errors.tolerant:
                raise self._partial(e) from None
            for index, reason in e.rejected:
                self.errors.add({self.where_name: batch.positions[index]}, reason, batch.row(index))
            return e.written, len(e.rejected)
        except DbshError as e:
            safe = self.destination.capabilities.atomic_insert or isinstance(e, UsageError)
            if not (self.errors.tolerant and safe) or isinstance(e, NotFound):
                raise self._partial(e) from None
            if len(batch) == 1:
                self.errors.add({self.where_name: batch.positions[0]}, e.message, batch.row(0))
                return 0, 1
            half = len(batch) // 2
            a = self._write(batch.part(0, half))
            b = self._write(batch.part(half, len(batch)))
            return a[0] + b[0], a[1] + b[1]
        self.written += result.count
        if self.ids is not None:
            if result.ids is None or len(self.ids) + len(result.ids) > 1000:
                self.ids = None
            else:
                self.ids.extend(result.ids)
        return result.count, 0

    def _partial(self, e: DbshError) -> DbshError:
        if getattr(e, "counted", False):
            return e
        e.counted = True
        if isinstance(e, PartialWrite):
            e.message = f"{e.message} ({self.written} rows written to {self.collection} in all)"
            if self.checkpoint is not None:
                e.hint = "run again with --resume to continue"
        elif self.written:
            how = ("was rolled back" if self.destination.capabilities.atomic_insert
                   else "may be partly written")
            e.message = f"{e.message} ({self.written} rows were committed to {self.collection} before this " \
                        f"batch; the failing batch {how})"
            if self.checkpoint is not None:
                e.hint = "run again with --resume to continue"
        return e


def _resume(ck: Checkpoint, resume: bool, destination: Session, collection: str) -> bool:
    """Load and settle the checkpoint for --resume; without --resume start one. True when resuming."""
    fingerprint = ck.fingerprint
    found = ck.load() if resume else False
    if found and ck.fingerprint != fingerprint:
        raise UsageError(f"cannot resume: {ck.source.removeprefix('file:')} changed since the interrupted run",
                         hint="run without --resume to start over")
    ck.fingerprint = fingerprint
    if not resume and ck.path.exists():
        print("dbsh: note: starting over; an earlier interrupted run of this copy left a checkpoint "
              "(--resume continues it)", file=sys.stderr)
    if found:
        ck.settle(destination_count(destination, collection))
        ck.save()
        return True
    if resume:
        print("dbsh: note: no checkpoint to resume from; starting at the beginning", file=sys.stderr)
    ck.start_count = destination_count(destination, collection)
    ck.position = ck.written = ck.errors = 0
    ck.pending = None
    ck.save()
    return False


def _finish(load: Load, ck: Checkpoint | None, stop: StopSignal, outcome: Outcome) -> Outcome:
    if stop.requested:
        noun = "row" if outcome.count == 1 else "rows"
        raise Interrupted(f"stopped by {stop.requested}: {outcome.count} {noun} written to {load.collection} "
                          f"(the batch in flight was finished)",
                          hint="run again with --resume to continue" if ck is not None else None)
    if ck is not None:
        ck.remove()
    return outcome


# -- insert --file ----------------------------------------------------------------------------
def import_file(session: Session, collection: str, path: str, *, input_format: str | None = None,
                schema: str | None = None, batch: int = DEFAULT_BATCH, create: bool = False, errors: str | None = None,
                max_errors: int | None = None, resume: bool = False, progress: bool | None = None) -> Outcome:
    """Stream a file (or '-') into a collection; bad rows to --errors; --resume after an interruption."""
    from dbsh.inputs import open_documents, parse_schema

    if batch < 1:
        raise UsageError("--batch must be at least 1")
    if max_errors is not None and max_errors < 0:
        raise UsageError("--max-errors must not be negative")
    if resume and path == "-":
        raise UsageError("--resume needs a file: standard input cannot be read again")
    reader = open_documents(path, input_format, lenient=errors is not None or bool(max_errors),
                            schema=parse_schema(schema))
    ck = None
    if path != "-":
        source = str(Path(path).resolve())
        ck = Checkpoint.for_run(f"file:{source}", f"{session.target.without_password()}/{collection}")
        stat = os.stat(source)
        ck.fingerprint = f"{stat.st_size}:{stat.st_mtime_ns}"
    resumed = _resume(ck, resume, session, collection) if ck is not None else False
    log = ErrorLog(errors, max_errors, append=resumed)
    bar = Progress(f"{Path(path).name if path != '-' else 'stdin'} → {collection}", None, progress, size=reader.size)
    load = Load(session, collection, create, None, log, ck, bar, "line")
    batches = reader.batches(batch, ck.position if resumed else 0)
    closers = [bar.close, log.close]
    apart = CAN_FORK and session.prepares_apart
    if apart or not session.capabilities.embedded:   # (SQLite gains nothing from a thread reading ahead)
        batches = read_ahead(batches, lambda b: session.prepare_batch(collection, b), apart=apart)
        closers.insert(0, batches.close)   # the reader stops as soon as the load does, whatever ended it
    stop, seconds = load.drive(batches, *closers)
    written, skipped = (ck.written, ck.errors) if ck is not None else (load.written, log.count)
    outcome = Outcome("inserted", collection, written, ids=load.ids, skipped=skipped, errors_file=errors,
                      seconds=seconds)
    return _finish(load, ck, stop, outcome)


# -- copy SRC DST -------------------------------------------------------------------------------
def stable_order(session: Session, collection: str) -> list[tuple[str, int]] | None:
    """An order the source returns the same way every time, so --resume can skip what was copied."""
    if session.capabilities.schema:
        try:
            keys = [r["column"] for r in session.describe(collection) if r.get("primary_key")]
        except (DbshError, KeyError):
            keys = []
        if keys and session.capabilities.language == "sql":
            return [(k, 1) for k in keys]
        return None   # Cassandra: token order is already stable
    if session.name in ("MongoDB", "CouchDB"):
        return [("_id", 1)]
    return None


def copy(source: Session, src_collection: str, destination: Session, dst_collection: str, *,
         where: str | None = None, mapping: list[str] | None = None, flat: bool = False, create: bool = False,
         batch: int = DEFAULT_BATCH, errors: str | None = None, max_errors: int | None = None, resume: bool = False,
         progress: bool | None = None) -> Outcome:
    from dbsh.commands import parse_filter_text

    if batch < 1:
        raise UsageError("--batch must be at least 1")
    if max_errors is not None and max_errors < 0:
        raise UsageError("--max-errors must not be negative")
    filter_ = parse_filter_text(where)
    convert = converter(destination, mapping=parse_map(mapping), flat=flat, source=source)
    src_name = f"{source.target.without_password()}/{src_collection}"
    dst_name = f"{destination.target.without_password()}/{dst_collection}"
    if src_name == dst_name:
        raise UsageError("source and destination are the same collection")
    ck = Checkpoint.for_run(f"{src_name}?where={json.dumps(filter_.doc, sort_keys=True)}", dst_name)
    resumed = _resume(ck, resume, destination, dst_collection)
    order = stable_order(source, src_collection)
    total = None
    if progress or (progress is None and sys.stderr.isatty()):
        total = source.count(src_collection, filter_)
    result = source.find(src_collection, filter_, sort=order, skip=ck.position or None)
    log = ErrorLog(errors, max_errors, append=resumed)
    bar = Progress(f"{src_collection} → {dst_collection}", total, progress)
    if total and ck.position:
        bar.advance(ck.position)
    load = Load(destination, dst_collection, create, convert, log, ck, bar, "row")
    start = ck.position

    def batches() -> Iterator[Batch]:
        rows = iter(result)
        read = start
        while docs := list(islice(rows, batch)):
            yield Batch(range(read + 1, read + len(docs) + 1), docs, end=read + len(docs))
            read += len(docs)

    stop, seconds = load.drive(batches(), result.close, bar.close, log.close)
    outcome = Outcome("copied", dst_collection, ck.written, source=f"{source.target.display()}/{src_collection}",
                      skipped=ck.errors, errors_file=errors, seconds=seconds)
    return _finish(load, ck, stop, outcome)


def copy_locations(out, source_text: str, destination_text: str, **options: Any) -> Outcome:
    """`dbsh copy SRC DST`: open both ends, copy, print the summary, close both."""
    source, src_collection = open_location(source_text)
    try:
        destination, dst_collection = open_location(destination_text)
        try:
            outcome = copy(source, src_collection, destination, dst_collection, **options)
        finally:
            destination.close()
    finally:
        source.close()
    out.write(outcome)
    return outcome
