"""The SQL session every dialect shares: one long-lived DB-API connection, as psql keeps one.

The connection is in autocommit between statements; a transaction exists on the server only when
the user opens one (BEGIN, START TRANSACTION, or \\begin), and ``in_transaction`` asks the driver
whether one is open. Native statements pass to the server as typed (several in one text run one
after another); the uniform verbs run inside the user's open transaction, or in one of their own
that commits when they end. Reads stream (server-side cursors on PostgreSQL, unbuffered on MySQL,
fetchmany everywhere). Driver errors become one-line QueryError / ConnectError / UsageError, the
password never shown.

A dialect module (sqlite, postgres, mysql) subclasses SqlSession: connect, reflection, value
conversion, read-only mode, cancel and its bulk path.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from operator import itemgetter
from typing import Any, Literal, overload

from dbsh import query as q
from dbsh.drivers.base import Capabilities, Result, Session, WriteResult, batched
from dbsh.drivers.sql import language
from dbsh.drivers.sql.compile import Compiler, Dialect, Table, infer_columns
from dbsh.errors import ConnectError, DbshError, NotFound, QueryError, UsageError, one_line, redact

STREAM_BATCH = 1000   # rows fetched at a time from a cursor


class SqlSession(Session):
    capabilities = Capabilities(language="sql", transactions=True, schema=True, atomic_insert=True)
    dialect: Dialect
    scanner = "sql"                  # dbsh.statements' language for this dialect's text
    paramstyle = "format"            # how language.bind writes parameters for the driver
    Error: type[Exception] = Exception   # the driver's base exception class
    BEGIN_WRITE = "BEGIN"            # how a transaction that will write starts
    READONLY: str = ""               # the statement that switches read-only mode ({} is the word)

    def __init__(self, target):
        super().__init__(target)
        self._tables: dict[str, Table] = {}
        self.conn: Any = None   # the DB-API connection (sqlite3, psycopg, PyMySQL)
        self.client = self.conn = self._connect()

    # -- driver hooks (each dialect) ---------------------------------------------------------
    def _connect(self):
        raise NotImplementedError

    def _reflect(self, name: str) -> Table | None:
        raise NotImplementedError

    def _collections(self) -> list[str]:
        raise NotImplementedError

    def _cursor(self, stream: bool):
        """A cursor for a statement; ``stream`` for a query whose rows are fetched as read."""
        return self.conn.cursor()

    def _write_rows(self, table: Table, keys: list[str], rows: list[tuple], scalars: bool) -> None:
        """Rows (values in ``keys`` order) into a table, inside the caller's transaction."""
        raise NotImplementedError

    def _converter(self, table: Table, names: list[str]) -> Callable[[tuple], tuple] | None:
        """How a row of these columns is read from the driver's values (JSON text parsed, ...)."""
        return None

    @property
    def in_transaction(self) -> bool:
        raise NotImplementedError

    def _readonly_word(self, flag: bool) -> str:
        return "ONLY" if flag else "WRITE"

    # -- errors ------------------------------------------------------------------------------
    def _message(self, e: BaseException) -> str:
        return one_line(str(e))

    def _error(self, e: BaseException) -> DbshError:
        """A driver exception as a one-line dbsh error, never showing the password."""
        if isinstance(e, DbshError):
            return e
        if isinstance(e, OverflowError):
            return UsageError(f"integer out of range: {self.name} stores integers in 64 bits "
                              f"(up to 9223372036854775807)")
        if self._lost(e):
            return ConnectError(f"lost the connection to {self.target.display()}: "
                                f"{redact(self._message(e), self.target.password)}")
        return QueryError(redact(self._message(e), self.target.password))

    def _lost(self, e: BaseException) -> bool:
        """Whether the error means the connection is gone (the server stopped, the network broke):
        then it is exit 3, as failing to connect is. The dialects say."""
        return False

    def _connect_error(self, e: BaseException) -> ConnectError:
        return ConnectError(f"cannot connect to {self.target.display()}: "
                            f"{redact(self._message(e), self.target.password)}")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (self.Error, OverflowError) as e:
            raise self._error(e) from None

    def _run(self, sql: str, params: Any = None):
        """Run one statement of dbsh's own on a fresh cursor; returns the cursor (the caller closes it)."""
        cursor = self.conn.cursor()
        try:
            with self._errors():
                cursor.execute(sql) if params is None else cursor.execute(sql, params)
        except BaseException:
            cursor.close()
            raise
        return cursor

    def _scalar(self, sql: str, params: Any = None) -> Any:
        cursor = self._run(sql, params)
        try:
            row = cursor.fetchone()
        finally:
            cursor.close()
        return None if row is None else row[0]

    def _all(self, sql: str, params: Any = None) -> list[tuple]:
        cursor = self._run(sql, params)
        try:
            return list(cursor.fetchall())
        finally:
            cursor.close()

    # -- connection --------------------------------------------------------------------------
    def ping(self) -> float:
        start = time.perf_counter()
        self._scalar("select 1")
        return time.perf_counter() - start

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    # -- for the warm agent (dbsh.agent): may this session serve the next command? -------------
    # statements that leave the connection as they found it (no setting, transaction or cursor left)
    _STATELESS = frozenset(("select", "insert", "update", "delete", "with", "values", "table", "show", "explain",
                            "describe", "desc"))

    def stateless(self, text: str) -> bool:
        if self.in_transaction:
            return False
        try:
            words = [part.split(None, 1)[0].lower() for part in self.statements(text) if part.split()]
        except Exception:  # noqa: BLE001 - what cannot be read is not known to be stateless
            return False
        return bool(words) and all(w.strip("(") in self._STATELESS for w in words)

    def reset(self) -> bool:
        """A new connection in place of this one (its settings and transaction gone), read-only again
        if the session was."""
        self.close()
        self.client = self.conn = self._connect()
        self._tables.clear()
        if self.readonly:
            self.set_readonly(True)
        return True

    # -- transactions -----------------------------------------------------------------------
    def begin(self) -> None:
        if self.in_transaction:
            raise UsageError("a transaction is already open")
        self._run("BEGIN").close()   # \begin is BEGIN, as typed (SQLite's deferred, not IMMEDIATE)

    def commit(self) -> None:
        if not self.in_transaction:
            raise UsageError("no transaction is open")
        self._run("COMMIT").close()

    def rollback(self) -> None:
        if not self.in_transaction:
            raise UsageError("no transaction is open")
        self._run("ROLLBACK").close()

    def _rollback_quietly(self) -> None:
        with contextlib.suppress(Exception):
            if self.in_transaction:
                self.conn.cursor().execute("ROLLBACK")

    @contextlib.contextmanager
    def _transaction(self, write: bool = False) -> Iterator[bool]:
        """The user's open transaction (yields False), or one of the session's own (yields True),
        committed when the block ends, rolled back when it raises."""
        if self.in_transaction:
            yield False
            return
        self._run(self.BEGIN_WRITE if write else "BEGIN").close()
        try:
            yield True
        except BaseException:
            self._rollback_quietly()
            raise
        self._run("COMMIT").close()

    # -- read-only sessions ------------------------------------------------------------------
    def set_readonly(self, flag: bool) -> bool:
        """A server-side read-only session (SQLite query_only, PostgreSQL/MariaDB READ ONLY)."""
        if self.in_transaction:
            raise UsageError("finish the open transaction first (commit or rollback)")
        self._run(self.READONLY.format(self._readonly_word(flag))).close()
        self.readonly = flag
        return True

    # -- catalog ------------------------------------------------------------------------------
    def collections(self) -> list[str]:
        return sorted(self._collections())

    @overload
    def table(self, name: str, *, missing_ok: Literal[False] = False) -> Table: ...
    @overload
    def table(self, name: str, *, missing_ok: bool) -> Table | None: ...

    def table(self, name: str, *, missing_ok: bool = False) -> Table | None:
        table = self._tables.get(name)
        if table is not None:
            return table
        if not isinstance(name, str) or not name:
            raise UsageError(f"invalid table name {name!r}")
        table = self._reflect(name)
        if table is None:
            if missing_ok:
                return None
            known = self.collections()
            hint = ("tables: " + ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")) if known else None
            raise NotFound(f"no table named {name!r}", hint=hint or "the database has no tables")
        self._tables[name] = table
        return table

    def describe(self, name: str) -> Result:
        table = self.table(name)
        references: dict[str, str] = {}
        for fk in self.foreign_keys(name):
            for mine, theirs in zip(fk["columns"], fk["referred"]):
                references[mine] = f"{fk['table']}({theirs})"
        rows = [{"column": c.name, "type": c.type, "nullable": c.nullable, "default": c.default,
                 "primary_key": c.primary_key, "indexes": ", ".join(table.indexes.get(c.name, [])) or None,
                 "references": references.get(c.name)}
                for c in table.columns.values()]
        return Result(rows, ["column", "type", "nullable", "default", "primary_key", "indexes", "references"])

    # each dialect's catalog queries: (name, current[, ...]); (table, column); and
    # (table, constraint, column, referred table, referred column) in constraint order
    DATABASES_SQL = ""
    COLUMNS_SQL = ""
    REFERENCES_SQL = ""

    def databases(self) -> Result:
        """The server's databases (schemas on MySQL, attached files on SQLite), the current one marked."""
        cursor = self._run(self.DATABASES_SQL)
        try:
            names = [d[0].lower() for d in cursor.description]
            rows = [dict(zip(names, r)) for r in cursor.fetchall()]
        finally:
            cursor.close()
        for row in rows:
            row["current"] = bool(row["current"])
        return Result(rows, names)

    def completions(self) -> dict[str, list[str]]:
        """Every table's and view's columns in one catalog read."""
        fields: dict[str, list[str]] = {}
        for table, column in self._all(self.COLUMNS_SQL):
            fields.setdefault(table, []).append(column)
        return fields

    def references(self) -> dict[str, list[dict[str, Any]]]:
        """Every table's foreign keys, in one catalog read (join completion and \\d)."""
        found: dict[str, dict[Any, dict[str, Any]]] = {}
        for table, constraint, column, referred_table, referred in self._all(self.REFERENCES_SQL):
            fk = found.setdefault(table, {}).setdefault(constraint, {
                "name": None if isinstance(constraint, int) else constraint, "columns": [],
                "table": referred_table, "referred": []})
            fk["columns"].append(column)
            fk["referred"].append(referred)
        return {table: list(fks.values()) for table, fks in found.items()}

    def foreign_keys(self, name: str) -> list[dict[str, Any]]:
        table = self.table(name)
        return self.references().get(table.name, [])

    # -- reading -----------------------------------------------------------------------------
    def _stream(self, sql: str, params: Any, *, stream: bool = True, convert=None, own_transaction=False) -> Result:
        """Run a statement; a Result streaming its rows (a status message when it returns none).
        ``own_transaction``: the cursor needs a transaction, begun here when the user has none
        and ended when the Result is closed."""
        own = own_transaction and not self.in_transaction
        if own:
            self._run("BEGIN").close()
        cursor = None
        try:
            cursor = self._cursor(stream)
            with self._errors():
                cursor.execute(sql) if params is None else cursor.execute(sql, params)
            description = cursor.description
            if description is None:
                count = cursor.rowcount
                cursor.close()
                if own:
                    self._run("COMMIT").close()
                noun = "row" if count == 1 else "rows"
                return Result.status(f"{count} {noun} affected" if count is not None and count >= 0 else "done")
        except BaseException:
            if cursor is not None:
                with contextlib.suppress(Exception):
                    cursor.close()
            if own:
                self._rollback_quietly()
            raise
        columns = [d[0] for d in description]
        state = {"open": True, "failed": False}

        def rows() -> Iterator[dict]:
            try:
                with self._errors():
                    while chunk := cursor.fetchmany(STREAM_BATCH):
                        if convert is not None:
                            chunk = map(convert, chunk)
                        for row in chunk:
                            yield dict(zip(columns, row))
            except BaseException:
                state["failed"] = True
                raise

        def close() -> None:
            if not state["open"]:
                return
            state["open"] = False
            try:
                with self._errors():
                    cursor.close()
            finally:
                if own:
                    if state["failed"]:
                        self._rollback_quietly()
                    else:
                        self._run("COMMIT").close()

        return Result(rows(), columns, close=close)

    def _select(self, name: str, where: q.Filter, fields, sort, limit, skip) -> tuple[Table, str, list, list[str]]:
        table = self.table(name)
        c = Compiler(self.dialect, table)
        names = list(fields) if fields else list(table.columns)
        sql = c.select(where, names, sort, limit, skip)
        return table, sql, c.params, [table.columns[n].name for n in names]

    def find(self, name, where, *, fields=None, sort=None, limit=None, skip=None) -> Result:
        table, sql, params, names = self._select(name, where, fields, sort, limit, skip)
        return self._stream(sql, params, convert=self._converter(table, names),
                            own_transaction=self.streams_in_transaction)

    streams_in_transaction = False   # PostgreSQL: a server-side cursor lives in a transaction

    def count(self, name, where) -> int:
        table = self.table(name)
        c = Compiler(self.dialect, table)
        sql = c.count(where)
        return int(self._scalar(sql, c.params))

    def explain(self, name, where, **find_options) -> Result:
        _, sql, params, _ = self._select(name, where, find_options.get("fields"), find_options.get("sort"),
                                         find_options.get("limit"), find_options.get("skip"))
        return Result(list(self._stream(self.EXPLAIN + sql, params, stream=False)))

    EXPLAIN = "EXPLAIN "

    # -- native SQL -------------------------------------------------------------------------
    def statements(self, text: str) -> list[str]:
        return language.split(text, self.scanner)

    def execute(self, text: str, params: dict[str, Any] | None = None) -> Result:
        """Native SQL. Several statements run one after another (the Result is the last one's:
        dbsh.commands.query renders each of them, asking statements() for them)."""
        parts = self.statements(text)
        if not parts:
            raise UsageError("empty statement")
        for part in parts[:-1]:
            for _ in self._statement(part, params):
                pass
        return self._statement(parts[-1], params)

    def _statement(self, statement: str, params: dict[str, Any] | None) -> Result:
        self._tables.clear()   # DDL may change what a table looks like
        sql, args = language.bind(statement, params, self.scanner, self.paramstyle)
        return self._native(sql, args, statement)

    def _native(self, sql: str, args: Any, statement: str) -> Result:
        plain = language.is_plain_query(statement, self.scanner)
        return self._stream(sql, args, stream=plain, own_transaction=plain and self.streams_in_transaction)

    # -- writing ----------------------------------------------------------------------------
    def bind_row(self, table: Table, keys: list[str], row: tuple) -> tuple:
        kinds = [table.columns[k].kind for k in keys]
        return tuple(self.dialect.bind_value(v, kind) for v, kind in zip(row, kinds))

    def insert(self, name, docs: Iterable[dict], *, batch=1000, create=False, progress=None) -> WriteResult:
        committed = 0
        try:
            for chunk in batched(docs, batch):
                self._insert_chunk(name, chunk, same_keys(chunk), create)
                committed += len(chunk)
                if progress:
                    progress(len(chunk))
        except DbshError as e:
            raise type(e)(partial(e.message, committed, name, self.in_transaction), hint=e.hint) from None
        return WriteResult("inserted", name, committed)

    def _insert_chunk(self, name: str, chunk: list[dict], groups, create: bool, scalars: bool = False) -> None:
        """One batch of documents in one transaction; ``groups`` as same_keys gives them; ``scalars``
        when every value is known to be a str, int, float, bool or None."""
        groups = list(groups)
        table = self._table_for(name, chunk, create, {k for keys, *_ in groups for k in keys})
        with self._transaction(write=True):
            self._insert_groups(table, groups, scalars)

    def _insert_groups(self, table: Table, groups, scalars: bool = False) -> None:
        for keys, group, rows in groups:
            if not keys:
                with self._errors():
                    cursor = self.conn.cursor()
                    try:
                        for _ in group:
                            cursor.execute(Compiler(self.dialect, table).insert_head([]))
                    finally:
                        cursor.close()
                continue
            self._write_rows(table, keys, rows, scalars)

    def insert_batch(self, name, batch, *, create=False) -> WriteResult:
        """Documents, or csv cells converted by the table's column types as the database's own csv
        import reads them (the dialect's _write_cells); a table whose columns cannot take cells
        (JSON, dates on SQLite, ...) takes inferred documents."""
        if batch.header is None:
            if not (batch.prepared and self._write_prepared(name, batch.prepared)):
                self._insert_chunk(name, batch.docs, same_keys(batch.docs), create, batch.scalars)
            return WriteResult("inserted", name, len(batch))
        header = batch.header
        if not len(batch) or len(set(header)) != len(header):
            return super().insert_batch(name, batch, create=create)
        try:
            table = self._tables.get(name) or self.table(name, missing_ok=True)
            if table is None or not set(header) <= set(table.columns):   # --create: types inferred
                table = self._table_for(name, batch.documents(), create, set(header))
            with self._transaction(write=True):
                if not self._write_cells(table, batch):
                    self._insert_groups(table, same_keys(batch.documents()))
        except DbshError as e:
            raise type(e)(partial(e.message, 0, name, self.in_transaction), hint=e.hint) from None
        return WriteResult("inserted", name, len(batch))

    def _write_cells(self, table: Table, batch) -> bool:
        """csv cells into the table, read by the columns' types; False (nothing written) when the
        dialect cannot, and the documents go instead."""
        return False

    def _write_prepared(self, name: str, prepared) -> bool:
        """A batch prepare_batch made ready; False, having written nothing, when it cannot be."""
        return False

    def _table_for(self, name: str, docs: list[dict], create: bool, keys: set[str] | None = None) -> Table:
        """The table to insert ``docs`` into (whose fields are ``keys``, when known), made or widened
        with --create."""
        table = self._tables.get(name) or self.table(name, missing_ok=True)
        if table is None:
            if not create:
                raise NotFound(f"no table named {name!r}", hint="pass --create to make it from the documents")
            table = self._create(name, docs)
        missing = (set(chain.from_iterable(docs)) if keys is None else keys) - set(table.columns)
        if missing:
            if not create:
                raise UsageError(f"table {name!r} has no column {', '.join(repr(m) for m in sorted(missing))}",
                                 hint="pass --create to add the columns")
            table = self._add_columns(table, docs, sorted(missing))
        return table

    def _ddl(self, sql: str, done: Callable[[], Table | None]) -> Table:
        """Run DDL in a transaction of its own (committed before the rows go in, so that concurrent
        importers see it); when it fails because another session did the same meanwhile (``done()``
        finds the result), go on with that."""
        try:
            with self._transaction(write=True):
                self._run(sql, () if self.paramstyle == "format" else None).close()
        except QueryError:
            table = done()
            if table is None:
                raise
            return table
        table = done()
        if table is None:
            raise QueryError(f"{self.name} did not keep the table as dbsh made it")
        return table

    def _create(self, name: str, docs: list[dict]) -> Table:
        self.dialect.check_name(name, "table")
        columns = infer_columns(docs)
        for column in columns:
            self.dialect.check_name(column, "column")

        def made() -> Table | None:
            self._tables.pop(name, None)
            return self.table(name, missing_ok=True)

        return self._ddl(self.dialect.create_table(name, columns), made)

    def _add_columns(self, table: Table, docs: list[dict], names: list[str]) -> Table:
        inferred = infer_columns(docs)
        for column in names:
            self.dialect.check_name(column, "column")
        name = table.name
        for column in names:
            sql = f"ALTER TABLE {self.dialect.table_name(table)} ADD COLUMN {self.dialect.quote(column)} " \
                  f"{self.dialect.column_type(inferred.get(column, 'text'))}"

            def added(column=column) -> Table | None:
                self._tables.pop(name, None)
                now = self.table(name)
                return now if column in now.columns else None

            table = self._ddl(sql, added)
        return table

    def update(self, name, where, change, *, upsert=False, one=False) -> WriteResult:
        table = self.table(name)
        c = Compiler(self.dialect, table)
        sql = c.update(where, change.changes, one)
        with self._transaction(write=True):
            count = self._rowcount(sql, c.params)
            if count == 0 and upsert:
                doc = {**q.equalities(where.ast), **{
                    ch.field: ch.value if isinstance(ch, q.Set) else ch.amount
                    for ch in change.changes if not isinstance(ch, q.Unset)}}
                keys = list(doc)
                for key in keys:
                    c.column(key)
                self._write_rows(table, keys, [tuple(doc[k] for k in keys)], False)
                return WriteResult("upserted", name, 1, matched=0)
        return WriteResult("updated", name, count)

    def delete(self, name, where, *, one=False) -> WriteResult:
        table = self.table(name)
        c = Compiler(self.dialect, table)
        sql = c.delete(where, one)
        with self._transaction(write=True):
            count = self._rowcount(sql, c.params)
        return WriteResult("deleted", name, count)

    def _rowcount(self, sql: str, params: list) -> int:
        cursor = self._run(sql, params)
        try:
            return cursor.rowcount
        finally:
            cursor.close()


def partial(message: str, committed: int, name: str, in_tx: bool) -> str:
    if committed and not in_tx:
        return (f"{message} ({committed} rows were committed to {name} before this batch; "
                "the failing batch was rolled back)")
    return message


# -- batches of documents ---------------------------------------------------------------------
def same_keys(docs: list[dict]) -> Iterator[tuple[list[str], list[dict], list[tuple]]]:
    """(keys, documents, their values in key order) for each run of documents with the same keys,
    so each run is one multi-row statement or COPY."""
    if not docs:
        return
    keys = list(docs[0])
    if keys and len(set(map(len, docs))) == 1:   # the common case, checked in C: all alike
        try:
            rows = _values(docs, keys)
        except KeyError:
            rows = None
        if rows is not None:
            yield keys, docs, rows
            return
    group: list[dict] = []
    shape: tuple[str, ...] = ()
    for doc in docs:
        k = tuple(doc)
        if group and k != shape:
            yield list(shape), group, _values(group, list(shape))
            group = []
        shape = k
        group.append(doc)
    if group:
        yield list(shape), group, _values(group, list(shape))


def same_key_columns(docs: list[dict]) -> Iterator[tuple[list[str], int, list]]:
    """(keys, how many documents, their values column by column) for each run of documents with the
    same keys, as same_keys groups them; the columns taken straight from the documents when all
    have the same keys (a third of the work of rows turned into columns)."""
    if docs:
        keys = list(docs[0])
        if keys and len(set(map(len, docs))) == 1:
            try:
                yield keys, len(docs), [list(map(itemgetter(k), docs)) for k in keys]
                return
            except KeyError:
                pass
    for keys, group, rows in same_keys(docs):
        yield keys, len(group), list(zip(*rows))


def _values(docs: list[dict], keys: list[str]) -> list[tuple]:
    if not keys:
        return [()] * len(docs)
    if len(keys) == 1:
        return [(doc[keys[0]],) for doc in docs]
    return list(map(itemgetter(*keys), docs))
