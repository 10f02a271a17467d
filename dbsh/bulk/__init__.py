"""Moving data: `insert --file` and `dbsh copy SRC DST`, in batches, through each driver's bulk insert.

One loop serves both: documents come from a file reader or a source Session's ``find``; each
batch goes to ``session.insert`` (one transaction per batch where the backend has them). Around
it: bad rows to ``--errors FILE`` (``--max-errors N``), a checkpoint after every batch so
``--resume`` continues without duplicates, a Rich progress bar on a terminal, and Ctrl-C/SIGTERM
that let the batch in flight finish before stopping with an exact count.
"""


from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from dbsh import DEFAULT_BATCH
from dbsh.bulk import readahead
from dbsh.bulk.checkpoint import Checkpoint
from dbsh.bulk.load import ErrorLog, Load, Outcome, Progress, _finish, _resume
from dbsh.bulk.locations import open_location
from dbsh.bulk.values import converter, parse_map
from dbsh.drivers.base import Session
from dbsh.errors import UsageError
from dbsh.inputs import Batch
from dbsh.query import Filter


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
    batches = reader.batches(batch, ck.position if ck is not None and resumed else 0)
    closers = [bar.close, log.close]
    apart = readahead.CAN_FORK and session.prepares_apart
    if apart or not session.capabilities.embedded:   # (SQLite gains nothing from a thread reading ahead)
        batches = readahead.read_ahead(batches, lambda b: session.prepare_batch(collection, b), apart=apart)
        closers.insert(0, batches.close)   # the reader stops as soon as the load does, whatever ended it
    stop, seconds = load.drive(batches, *closers)
    written, skipped = (ck.written, ck.errors) if ck is not None else (load.written, log.count)
    outcome = Outcome("inserted", collection, written, ids=load.ids, skipped=skipped, errors_file=errors,
                      seconds=seconds)
    return _finish(load, ck, stop, outcome)


# -- copy SRC DST -------------------------------------------------------------------------------
def copy(source: Session, src_collection: str, destination: Session, dst_collection: str, *,
         where: str | None = None, mapping: list[str] | None = None, flat: bool = False, create: bool = False,
         batch: int = DEFAULT_BATCH, errors: str | None = None, max_errors: int | None = None, resume: bool = False,
         progress: bool | None = None) -> Outcome:
    if batch < 1:
        raise UsageError("--batch must be at least 1")
    if max_errors is not None and max_errors < 0:
        raise UsageError("--max-errors must not be negative")
    filter_ = Filter.parse(where)
    convert = converter(destination, mapping=parse_map(mapping), flat=flat, source=source)
    src_name = f"{source.target.without_password()}/{src_collection}"
    dst_name = f"{destination.target.without_password()}/{dst_collection}"
    if src_name == dst_name:
        raise UsageError("source and destination are the same collection")
    ck = Checkpoint.for_run(f"{src_name}?where={json.dumps(filter_.doc, sort_keys=True)}", dst_name)
    resumed = _resume(ck, resume, destination, dst_collection)
    order = source.stable_order(src_collection)
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


def copy_locations(out, source_text: str, destination_text: str, *, settings=None, **options: Any) -> Outcome:
    """`dbsh copy SRC DST`: open both ends, copy, print the summary, close both."""
    source, src_collection = open_location(source_text, settings)
    try:
        destination, dst_collection = open_location(destination_text, settings, writes="copy")
        try:
            outcome = copy(source, src_collection, destination, dst_collection, **options)
        finally:
            destination.close()
    finally:
        source.close()
    out.write(outcome)
    return outcome
