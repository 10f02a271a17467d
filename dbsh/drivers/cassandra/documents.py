"""The uniform verbs on Cassandra (find, count, explain, insert, update, delete) over the compiler of
``cql.py``; CassandraSession (``session.py``) adds the connection, its errors, the catalog and CQL."""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import heapq
import json
import re
import uuid
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

import cassandra.util
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.query import SimpleStatement

from dbsh import query as q
from dbsh.drivers.base import Result, Session, WriteResult, batched
from dbsh.drivers.cassandra.cql import (
    TableMeta,
    column_of,
    compile_delete,
    compile_insert,
    compile_read,
    compile_select,
    compile_update,
    full_key,
    quote_name,
    row_check,
)
from dbsh.drivers.cassandra.values import INTEGERS, bound, coerce, infer_columns, map_json, split_type
from dbsh.errors import NotFound, QueryError, Unsupported, UsageError

CONCURRENCY = 64
CAS_TRIES = 16   # compare-and-set rounds of an $inc on one row before giving up


class CassandraDocuments(Session):
    """The verbs, on what CassandraSession provides: table(), _run(), _prepare(), _bound(),
    _configure(), _stream(), _error()."""

    def _scan_allowed(self) -> bool:
        return bool(self.option("allow_filtering"))

    def find(self, name, where, *, fields=None, sort=None, limit=None, skip=None) -> Result:
        meta = self.table(name)
        stmt = compile_select(meta, where, fields=fields, sort=sort, limit=limit, skip=skip or 0,
                              allow_filtering=self._scan_allowed())
        if stmt.never:
            return Result((), list(fields) if fields else list(meta.columns))
        result = self._run(self._bound(stmt.text, stmt.values))
        names = list(fields) if fields else list(result.column_names or [])
        if stmt.check is not None or stmt.order:
            return Result(self._by_dbsh(meta, self._stream(result), stmt), names)
        return Result(islice(self._stream(result), stmt.skip, None if stmt.limit is None else stmt.skip + stmt.limit),
                      names)

    def _by_dbsh(self, meta: TableMeta, rows: Iterator[dict], stmt) -> Iterator[dict]:
        """What CQL cannot do, on the rows it returns: the check, the sort (only the first skip + limit rows
        are kept while sorting), skip and limit, the columns asked for; then a note of how many rows were read."""
        read = [0]

        def counted(rows):
            for row in rows:
                read[0] += 1
                yield row

        out: Iterator[dict] = counted(rows)
        if stmt.check is not None:
            out = (row for row in out if q.matches(stmt.check, plain_row(row)))
        if stmt.order:
            out = iter(sorted_rows(out, stmt.order, None if stmt.limit is None else stmt.skip + stmt.limit))
        out = islice(out, stmt.skip, None if stmt.limit is None else stmt.skip + stmt.limit)
        if stmt.fields:
            out = ({f: row.get(f) for f in stmt.fields} for row in out)
        try:
            yield from out
        except GeneratorExit:   # the reader stopped early: what was read so far
            self._read_note(meta, read[0], stmt.work)
            raise
        self._read_note(meta, read[0], stmt.work)

    def _read_note(self, meta: TableMeta, read: int, work: str | None) -> None:
        self.notice(f"dbsh: read {read} row{'' if read == 1 else 's'} of {meta.keyspace}.{meta.name} (dbsh {work})")

    def count(self, name, where) -> int:
        meta = self.table(name)
        stmt = compile_select(meta, where, count=True, allow_filtering=self._scan_allowed())
        if stmt.never:
            return 0
        result = self._run(self._bound(stmt.text, stmt.values))
        if stmt.check is not None:
            return sum(1 for _ in self._by_dbsh(meta, self._stream(result), stmt))
        row = result.one()
        return int(next(iter(row.values()))) if row else 0

    def explain(self, name, where, **find_options) -> Result:
        meta = self.table(name)
        stmt = compile_select(meta, where, fields=find_options.get("fields"), sort=find_options.get("sort"),
                              limit=find_options.get("limit"), skip=find_options.get("skip") or 0,
                              allow_filtering=True)
        if stmt.never:
            return Result([{"cql": None, "values": [], "plan": f"no row can match ({stmt.never}): nothing is sent"}],
                          ["cql", "values", "plan"])
        server = stmt.text.endswith(" ALLOW FILTERING")
        how = (f"scans with ALLOW FILTERING: {stmt.filtering}" if server else
               f"reads every row: {stmt.filtering}" if stmt.filtering else "served by the primary key or an index")
        if stmt.work and not (stmt.filtering and not server):
            how += f"; dbsh {stmt.work}"
        return Result([{"cql": stmt.text, "values": [str(v) for v in stmt.values], "plan": how}],
                      ["cql", "values", "plan"])

    def insert(self, name, docs: Iterable[dict], *, batch: int = 1000, create: bool = False,
               progress=None) -> WriteResult:
        ttl = self.option("ttl")
        if not create:
            self._insert_table(name)   # a missing table is an error, documents or not
        done, ids = 0, []
        for chunk in batched(docs, batch):
            meta = self._table_for(name, chunk) if create else self._insert_table(name)
            key = meta.partition_key[0] if len(meta.primary_key) == 1 else None
            # a table --create made without an "id" in the documents has a uuid key that dbsh fills
            generate = bool(self.option("generate_id")) or name in self._created_uuid_key
            if generate and (key is None or split_type(meta.columns[key])[0] not in ("uuid", "timeuuid")):
                raise Unsupported(f"--generate-id needs a single uuid or timeuuid primary key; "
                                  f"{meta.name} has {', '.join(meta.primary_key)}")
            groups: dict[tuple[str, ...], list[list[Any]]] = {}
            for i, doc in enumerate(chunk, done + 1):
                if not isinstance(doc, dict):
                    raise UsageError(f"document {i} is not a JSON object")
                if generate and doc.get(key) is None:
                    new = uuid.uuid4() if meta.columns[key] == "uuid" else uuid.uuid1()
                    doc = {key: new, **doc}
                    if len(ids) < 1000:
                        ids.append(str(new))
                columns = tuple(doc)
                args = [coerce(meta.columns.get(c, ""), doc[c], c) if c in meta.columns else meta.column(c)
                        for c in columns]
                if ttl:
                    args.append(int(ttl))
                groups.setdefault(columns, []).append(args)
            for columns, rows in groups.items():
                prepared = self._prepare(compile_insert(meta, columns, ttl))
                self._configure(prepared)
                done += self._concurrent(prepared, rows, done, name)
            if progress:
                progress(done)
        return WriteResult("inserted", name, done, ids=ids or None)

    def _insert_table(self, name: str) -> TableMeta:
        try:
            return self.table(name)
        except NotFound as e:
            if e.message.startswith("no table named"):
                e.hint = "pass --create to make it from the documents"
            raise

    def _table_for(self, name: str, docs: list[dict]) -> TableMeta:
        """--create: the table, made from the documents when it is missing (column types inferred,
        primary key ``id``: the documents' own, or a uuid dbsh generates), widened by the columns
        new documents bring."""
        docs = [d for d in docs if isinstance(d, dict)]
        # a Cassandra table name has no ".": one in the name separates the keyspace
        keyspace, table = name.split(".", 1) if "." in name else (self.keyspace, name)
        try:
            meta = self.table(name)
        except NotFound:
            meta = None
        if meta is None:
            if keyspace is None:
                raise UsageError(f"no keyspace chosen for table {name!r}",
                                 hint="put it in the URL (cassandra://host/keyspace) or write keyspace.table")
            if not re.fullmatch(r"\w{1,222}", table, flags=re.ASCII):
                raise UsageError(f"cannot create table {table!r}: Cassandra table names are letters, digits and _")
            columns = infer_columns(docs)
            if "id" not in columns:
                columns = {"id": "uuid", **columns}
                self._created_uuid_key.add(name)
            body = ", ".join(f"{quote_name(c)} {kind}" for c, kind in columns.items())
            self._run(SimpleStatement(f"CREATE TABLE IF NOT EXISTS {quote_name(keyspace)}.{quote_name(table)} "
                                      f"({body}, PRIMARY KEY ({quote_name('id')}))"))
        else:
            missing = {c: kind for c, kind in infer_columns(docs).items() if c not in meta.columns}
            if not missing:
                return meta
            added = ", ".join(f"{quote_name(c)} {kind}" for c, kind in missing.items())
            self._run(SimpleStatement(f"ALTER TABLE {meta.qualified} ADD ({added})"))
        self._meta.pop(name, None)
        self.cluster.refresh_table_metadata(keyspace, table)
        return self.table(name)

    def _concurrent(self, prepared, rows: list[list[Any]], done_before: int, name: str) -> int:
        """Bulk write with bounded concurrency; a failure says how much was written."""
        try:
            results = execute_concurrent_with_args(self.client, prepared, rows, concurrency=CONCURRENCY,
                                                   raise_on_first_error=False)
        except Exception as e:  # noqa: BLE001
            raise self._error(e) from None
        ok = sum(1 for success, _ in results if success)
        failures = [r for success, r in results if not success]
        if failures:
            error = self._error(failures[0])
            error.message += (f" ({len(failures)} of {len(rows)} rows in this batch failed; "
                              f"{done_before + ok} rows were written to {name})")
            raise error
        return ok

    def _matched(self, meta: TableMeta, where: q.Filter, one: bool, verb: str, columns: list[str] = ()):
        """The rows a write touches, with their primary key and ``columns``: always read first (a CQL write
        needs the whole key, and would create a row that is not there)."""
        key = full_key(meta, where)
        if key is None and not self.option("yes"):
            raise UsageError(f"{verb} on {meta.name} needs the full primary key ({', '.join(meta.primary_key)}) "
                             "in the filter with =",
                             hint=f"or pass --yes to read the matching keys first, then {verb} each row")
        stmt = compile_select(meta, where, fields=list(dict.fromkeys([*meta.primary_key, *columns])),
                              limit=1 if one else None, allow_filtering=self._scan_allowed())
        if key is None:
            self.notice(f"dbsh: warning: the filter does not give one full primary key: reading the matching keys of "
                        f"{meta.name} first, then writing each row (not atomic)")
        if stmt.never:
            return iter(())
        rows: Iterator[dict] = self._stream(self._run(self._bound(stmt.text, stmt.values)))
        if stmt.check is not None:
            rows = (row for row in rows if q.matches(stmt.check, plain_row(row)))
        return islice(rows, stmt.limit)

    def update(self, name, where, change, *, upsert=False, one=False) -> WriteResult:
        meta = self.table(name)
        ttl = self.option("ttl")
        stmt = compile_update(meta, change, ttl)
        head = [int(ttl)] if ttl else []
        new_row = self._upsert_row(meta, where, change) if upsert else None   # bad input: before any write
        increments = [column for column, _ in stmt.increments]
        rows = self._matched(meta, where, one, "update", increments)
        prepared = self._configure(self._prepare(stmt.text))
        count = matched = 0
        if not increments:
            for chunk in batched(rows, 1000):
                matched += len(chunk)
                count += self._concurrent(prepared, [head + stmt.values + [r[k] for k in stmt.keys] for r in chunk],
                                          count, name)
        else:
            check = row_check(meta, None if where.is_empty else where.ast)
            for row in rows:
                matched += 1
                count += self._increment(meta, stmt, prepared, head, row, check)
        if matched == 0 and new_row is not None:
            self._upsert(meta, stmt, head, new_row)
            return WriteResult("upserted", name, 1, matched=0)
        return WriteResult("updated", name, count, matched=matched)

    def _increment(self, meta: TableMeta, stmt, prepared, head: list, row: dict, check) -> int:
        """$inc of columns that are not counters: write what was read plus the amount, if the row still holds
        what was read (a lightweight transaction); else read it again and, if it still matches, retry."""
        reread = None
        for _ in range(CAS_TRIES):
            old = [row.get(column) for column, _ in stmt.increments]
            new = [added(meta.columns[column], value, amount, column)
                   for (column, amount), value in zip(stmt.increments, old)]
            result = self._run(prepared.bind(head + stmt.values + new + [row[k] for k in stmt.keys] + old))
            if result.was_applied:
                return 1
            paths = q.fields_of(check) if check is not None else ()
            reread = reread or self._configure(self._prepare(compile_read(
                meta, [*(c for c, _ in stmt.increments), *(column_of(meta, p) for p in paths)])))
            # (a row deleted meanwhile whose columns were all null is written again: IF col = null holds)
            row = next(self._stream(self._run(reread.bind([row[k] for k in meta.primary_key]))), None)
            if row is None or (check is not None and not q.matches(check, plain_row(row))):
                return 0   # deleted or changed so that it no longer matches: not this update's row any more
        raise QueryError(f"the row {', '.join(f'{k}={row[k]}' for k in meta.primary_key)} of {meta.name} kept changing "
                         f"while dbsh incremented it ({CAS_TRIES} tries); the rows before it were updated")

    def _upsert_row(self, meta: TableMeta, where: q.Filter, change) -> dict[str, Any]:
        """The row --upsert writes when nothing matches: the filter's equalities with the change applied
        (as MongoDB builds it); they must name the whole primary key, which says which row to write."""
        eqs = q.equalities(where.ast) if not where.is_empty else {}
        missing = [k for k in meta.primary_key if eqs.get(k) is None]
        if missing:
            raise UsageError(f"--upsert on {meta.name} needs the whole primary key ({', '.join(meta.primary_key)}) "
                             "in the filter with =", hint="it says which row to write")
        doc: dict[str, Any] = {}
        for column, value in eqs.items():
            meta.column(column)   # (a path into a column is not a row's column: refused)
            kind = meta.columns[column]
            sent = None if value is None else bound(kind, "eq", value, column)
            if value is not None and sent is None:
                raise UsageError(f"--upsert cannot write {column!r} = {json.dumps(value, default=str)}: "
                                 f"the column is {kind}")
            doc[column] = None if value is None else sent[1]
        return q.apply_update(change.changes, doc)

    def _upsert(self, meta: TableMeta, stmt, head: list, row: dict[str, Any]) -> None:
        if meta.is_counter:   # a counter row exists once incremented: the update itself writes it
            self._run(self._configure(self._prepare(stmt.text)).bind(
                head + stmt.values + [row[k] for k in stmt.keys]))
            return
        columns = tuple(c for c, v in row.items() if v is not None)
        values = [coerce(meta.columns[c], row[c], c) for c in columns] + head
        done = self._run(self._configure(self._prepare(compile_insert(meta, columns, head[0] if head else None,
                                                                      if_not_exists=True))).bind(values))
        if not done.was_applied:   # MongoDB's duplicate key error: a row with this key that the filter did not match
            key = ", ".join(f"{k}={row[k]}" for k in meta.primary_key)
            raise QueryError(f"--upsert on {meta.name}: the row {key} exists but does not match the filter; "
                             "dbsh does not overwrite it")

    def delete(self, name, where, *, one=False) -> WriteResult:
        meta = self.table(name)
        text, keys = compile_delete(meta)
        count = 0
        for chunk in batched(self._matched(meta, where, one, "delete"), 1000):
            count += self._concurrent(self._configure(self._prepare(text)), [[r[k] for k in keys] for r in chunk],
                                      count, name)
        return WriteResult("deleted", name, count)


# -- rows as dbsh checks and sorts them ---------------------------------------------------------------
def plain(value: Any) -> Any:
    """A value as a JSON document holds it: sets and tuples as lists, maps as objects with text keys."""
    if isinstance(value, cassandra.util.OrderedMap | dict):
        return {k: plain(v) for k, v in map_json(value).items()}
    if isinstance(value, list | tuple | set | frozenset | cassandra.util.SortedSet):
        return [plain(v) for v in value]
    return value


def plain_row(row: dict) -> dict:
    """A row as the document dbsh.query.matches checks: a null column is a missing field (Cassandra stores
    no nulls: an empty collection, an unset column and a null read back the same)."""
    return {k: plain(v) for k, v in row.items() if v is not None}


def order_key(value: Any) -> tuple:
    """MongoDB's order across types: missing/null, numbers, strings, objects, arrays, binary, uuids,
    booleans, dates and times."""
    if value is q._MISSING or value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (7, value)
    if isinstance(value, int | float | decimal.Decimal):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    if isinstance(value, dict | list):
        return (3 if isinstance(value, dict) else 4, json.dumps(value, sort_keys=True, default=str))
    if isinstance(value, bytes):
        return (5, value)
    if isinstance(value, uuid.UUID):
        return (6, value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return (8, value.isoformat())
    return (9, str(value))


def sorted_rows(rows: Iterable[dict], order: list[tuple[str, int]], top: int | None = None) -> list[dict]:
    """Rows in MongoDB's order of ``order`` ([(path, 1 or -1)]); with ``top``, only the first top rows (a
    bounded heap, not every row in memory)."""
    def compare(a, b):
        for (_, direction), x, y in zip(order, a[0], b[0]):
            if x != y:
                return direction if x > y else -direction
        return 0

    def keyed():
        for row in rows:
            doc = plain_row(row)
            yield tuple(order_key(q.lookup(doc, path)) for path, _ in order), row

    key = functools.cmp_to_key(compare)
    items = heapq.nsmallest(top, keyed(), key=key) if top is not None else sorted(keyed(), key=key)
    return [row for _, row in items]


def added(kind: str, value: Any, amount: int | float, column: str) -> Any:
    """What $inc writes: the value read plus the amount (a missing value counts as 0, as MongoDB's does)."""
    head = split_type(kind)[0]
    if head == "decimal":
        return (value or decimal.Decimal(0)) + decimal.Decimal(str(amount))
    if head in ("float", "double"):
        return float(value or 0) + amount
    total = (value or 0) + int(amount)
    bits = INTEGERS.get(head)
    if bits is not None and not -(1 << (bits - 1)) <= total < 1 << (bits - 1):
        raise UsageError(f"cannot $inc {column!r} to {total}: it is a {kind} column ({bits}-bit)")
    return total
