"""The load loop shared by insert --file and copy: batches to the destination, bad rows to --errors,
a checkpoint after each batch, a progress bar, and Ctrl-C/SIGTERM that finish the batch in flight."""

from __future__ import annotations

import gc
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dbsh.bulk.checkpoint import Checkpoint, destination_count
from dbsh.drivers.base import Session, WriteResult
from dbsh.errors import EXIT_INTERRUPTED, DbshError, NotFound, PartialWrite, UsageError
from dbsh.inputs import Batch


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
                self._file = open(path, "a" if append else "w", encoding="utf-8")  # noqa: SIM115 - close() closes it
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
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress as Bar,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

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

    def drive(self, batches: Iterator[Batch], *closers) -> tuple[StopSignal, float]:
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
                batch, failed = self._converted(batch, self.convert)
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

    def _converted(self, batch: Batch, convert: Callable[[dict], dict]) -> tuple[Batch, int]:
        """The batch's documents through ``convert`` (copy's type mapping); a document it refuses
        goes to the errors file."""
        docs, positions, source, failed = [], [], [], 0
        for position, doc in zip(batch.positions, batch.documents()):
            try:
                docs.append(convert(doc))
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
        if e.counted:
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
    if not resume and ck.path.exists() and not Checkpoint(ck.path, ck.source, ck.destination).finished():
        print("dbsh: note: starting over; an earlier interrupted run of this copy left a checkpoint "
              "(--resume continues it)", file=sys.stderr)
    if found:
        ck.settle(destination_count(destination, collection))
        ck.done = False   # (a finished run resumed reads on from its end: nothing more to write)
        ck.save()
        return True
    ck.start_count = destination_count(destination, collection)
    if resume:
        if ck.start_count:   # starting over would add every row again
            noun = "row" if ck.start_count == 1 else "rows"
            raise UsageError(f"--resume needs a checkpoint, and no interrupted run of this import left one, while "
                             f"{collection} already has {ck.start_count} {noun}: delete the rows or drop --resume")
        print("dbsh: note: no checkpoint to resume from; starting at the beginning", file=sys.stderr)
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
    if ck is not None:   # kept, marked finished: a --resume after it (a kill before exit) writes nothing
        ck.done = True
        ck.save()
        ck.close()
    return outcome
