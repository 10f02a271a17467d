"""The steps of a find that dbsh does itself where a database cannot give MongoDB's answer: filter
(dbsh.query.matches), sort (MongoDB's order, dbsh.query.order_key), skip and limit, project.

Each step streams: a sort with a limit keeps only skip + limit documents (a heap); one without keeps
SPILL documents in memory and writes longer inputs to temporary files in sorted runs, merged as they
are read back.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import pickle
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

from dbsh import query as q

SPILL = 50_000          # documents sorted in memory; more are sorted in runs of this size on disk


@functools.total_ordering
class _Descending:
    """A sort key in reverse, so that one tuple of keys sorts fields in mixed directions."""

    __slots__ = ("key",)
    __hash__ = None   # compared, never hashed

    def __init__(self, key: tuple):
        self.key = key

    def __eq__(self, other) -> bool:
        return self.key == other.key

    def __lt__(self, other) -> bool:
        return other.key < self.key

    def __reduce__(self):
        return (_Descending, (self.key,))


def sort_key(sort: list[tuple[str, int]]):
    def key(doc: dict) -> tuple:
        parts = []
        for field, direction in sort:
            value = q.order_key(q.lookup(doc, field), direction < 0)
            parts.append(_Descending(value) if direction < 0 else value)
        return tuple(parts)
    return key


def sort_documents(docs: Iterable[dict], sort: list[tuple[str, int]], *, keep: int | None = None
                   ) -> Iterator[dict]:
    """``docs`` in MongoDB's order by ``sort`` (ties keep their order); only the first ``keep`` when given."""
    key = sort_key(sort)
    if keep is not None:
        yield from heapq.nsmallest(keep, docs, key=key)
        return
    counter = itertools.count()
    runs: list[Any] = []
    try:
        while True:
            chunk = sorted(((key(doc), next(counter), doc) for doc in itertools.islice(docs, SPILL)),
                           key=lambda item: item[:2])
            if not runs and len(chunk) < SPILL:   # it all fits: no file
                yield from (doc for _, _, doc in chunk)
                return
            if not chunk:
                break
            run = tempfile.TemporaryFile(prefix="dbsh-sort-")  # noqa: SIM115 - kept open in runs, closed after the merge
            runs.append(run)
            for item in chunk:   # one pickle each (a shared memo would outgrow memory)
                pickle.dump(item, run, protocol=pickle.HIGHEST_PROTOCOL)
            run.seek(0)
            if len(chunk) < SPILL:
                break
        for _, _, doc in heapq.merge(*(_read(run) for run in runs), key=lambda item: item[:2]):
            yield doc
    finally:
        for run in runs:
            run.close()


def _read(run) -> Iterator[tuple]:
    while True:
        try:
            yield pickle.load(run)
        except EOFError:
            return


def project(doc: dict, fields: list[str]) -> dict:
    """The given fields of a document, a dotted path as nested objects (as CouchDB's Mango sends them);
    missing fields are left out."""
    out: dict[str, Any] = {}
    for field in fields:
        value = q.lookup(doc, field)
        if value is q._MISSING:
            continue
        *parents, leaf = field.split(".")
        target = out
        for part in parents:
            nxt = target.setdefault(part, {})
            if not isinstance(nxt, dict):
                break
            target = nxt
        else:
            target[leaf] = value
    return out


def find_steps(docs: Iterable[dict], *, check: q.Node | None = None, sort: list[tuple[str, int]] | None = None,
               skip: int = 0, limit: int | None = None, fields: list[str] | None = None) -> Iterator[dict]:
    """The client-side steps of a find, in MongoDB's order: filter, sort, skip, limit, project. Closing
    it closes ``docs`` (a stream from the server)."""
    source = iter(docs)
    rows: Iterator[dict] = source
    try:
        if check is not None:
            rows = (doc for doc in rows if q.matches(check, doc))
        if sort:
            rows = sort_documents(rows, sort, keep=None if limit is None else skip + limit)
        if skip or limit is not None:
            rows = itertools.islice(rows, skip, None if limit is None else skip + limit)
        if fields:
            rows = (project(doc, fields) for doc in rows)
        yield from rows
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()
