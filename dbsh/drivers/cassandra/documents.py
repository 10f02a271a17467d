"""The uniform verbs on Cassandra (find, count, explain, insert, update, delete) over the compiler of
``cql.py``; CassandraSession (``session.py``) adds the connection, its errors, the catalog and CQL."""

from __future__ import annotations

import re
import uuid
from typing import Any, Iterable, Iterator

from cassandra.concurrent import execute_concurrent_with_args
from cassandra.query import SimpleStatement

from dbsh import query as q
from dbsh.drivers.base import Result, Session, WriteResult, batched
from dbsh.drivers.cassandra.cql import (TableMeta, compile_delete, compile_insert, compile_select, compile_update,
                                        full_key, quote_name)
from dbsh.drivers.cassandra.values import coerce, infer_columns, split_type
from dbsh.errors import NotFound, Unsupported, UsageError

CONCURRENCY = 64


class CassandraDocuments(Session):
    """The verbs, on what CassandraSession provides: table(), _run(), _prepare(), _bound(),
    _configure(), _stream(), _error()."""

    def find(self, name, where, *, fields=None, sort=None, limit=None, skip=None) -> Result:
        meta = self.table(name)
        stmt = compile_select(meta, where, fields=fields, sort=sort,
                              limit=None if limit is None else limit + (skip or 0),
                              allow_filtering=bool(self.option("allow_filtering")))
        result = self._run(self._bound(stmt.text, stmt.values))
        return Result(self._stream(result, skip or 0), list(fields) if fields else list(result.column_names or []))

    def count(self, name, where) -> int:
        meta = self.table(name)
        stmt = compile_select(meta, where, count=True, allow_filtering=bool(self.option("allow_filtering")))
        row = self._run(self._bound(stmt.text, stmt.values)).one()
        return int(next(iter(row.values()))) if row else 0

    def explain(self, name, where, **find_options) -> Result:
        meta = self.table(name)
        stmt = compile_select(meta, where, fields=find_options.get("fields"), sort=find_options.get("sort"),
                              limit=find_options.get("limit"), allow_filtering=True)
        how = f"scans with ALLOW FILTERING: {stmt.filtering}" if stmt.filtering else "served by the primary key or an index"
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

    def _keys(self, meta: TableMeta, where: q.Filter, one: bool, verb: str) -> Iterator[list[Any]]:
        """Primary keys of the rows a write touches; a read first when the filter is not one full key."""
        key = full_key(meta, where)
        if key is None and not self.option("yes"):
            raise UsageError(f"{verb} on {meta.name} needs the full primary key ({', '.join(meta.primary_key)}) "
                             "in the filter with =",
                             hint=f"or pass --yes to read the matching keys first, then {verb} each row")
        if key is None:
            self.notice(f"dbsh: warning: the filter does not give one full primary key: reading the matching keys of "
                        f"{meta.name} first, then writing each row (not atomic)")
        stmt = compile_select(meta, where, fields=list(meta.primary_key), limit=1 if one else None,
                              allow_filtering=bool(self.option("allow_filtering")))
        for row in self._run(self._bound(stmt.text, stmt.values)):
            yield [row[k] for k in meta.primary_key]

    def update(self, name, where, change, *, upsert=False, one=False) -> WriteResult:
        meta = self.table(name)
        ttl = self.option("ttl")
        text, set_values, _ = compile_update(meta, change, ttl)
        head = [int(ttl)] if ttl else []
        if upsert and full_key(meta, where) is None:
            raise UsageError(f"--upsert on {meta.name} needs the full primary key in the filter with =")
        count = matched = 0
        for chunk in batched(self._keys(meta, where, one, "update"), 1000):
            matched += len(chunk)
            count += self._concurrent(self._configure(self._prepare(text)),
                                      [head + set_values + k for k in chunk], count, name)
        if matched == 0 and upsert:
            # a CQL UPDATE of a missing row writes it: the upsert is the same statement
            key = full_key(meta, where)
            row = head + set_values + [coerce(meta.columns[k], key[k], k) for k in meta.primary_key]
            self._concurrent(self._configure(self._prepare(text)), [row], 0, name)
            return WriteResult("upserted", name, 1, matched=0)
        return WriteResult("updated", name, count, matched=matched)

    def delete(self, name, where, *, one=False) -> WriteResult:
        meta = self.table(name)
        text, _ = compile_delete(meta)
        count = 0
        for chunk in batched(self._keys(meta, where, one, "delete"), 1000):
            count += self._concurrent(self._configure(self._prepare(text)), chunk, count, name)
        return WriteResult("deleted", name, count)

