"""SQL driver: SQLite, PostgreSQL and MySQL/MariaDB through SQLAlchemy Core.

Filters compile to SQLAlchemy expressions, so every value is a bound parameter; table and
column names are checked against the reflected schema and quoted by the dialect.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import decimal
import json
import re
import time
from itertools import chain
from operator import itemgetter
from typing import Any, Iterable, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from dbsh import query as q
from dbsh.drivers.base import Capabilities, Result, Session, WriteResult, batched, int_texts
from dbsh.errors import ConnectError, DbshError, NotFound, QueryError, Unsupported, UsageError, one_line, redact

SCHEMES = {
    "sqlite": "sqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}
STREAM_BATCH = 1000


def sqlalchemy_url(url: str) -> str:
    """dbsh URL -> SQLAlchemy URL (explicit drivers like postgresql+asyncpg are kept)."""
    scheme, rest = url.split("://", 1)
    base = scheme.split("+", 1)[0].lower()
    if "+" in scheme:
        return url
    if base not in SCHEMES:
        raise UsageError(f"not a SQL URL: {scheme}://")
    if base in ("mysql", "mariadb"):
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        query.setdefault("charset", "utf8mb4")
        rest = urlunsplit(parts._replace(scheme="x", query=urlencode(query))).split("://", 1)[1]
    return f"{SCHEMES[base]}://{rest}"


def connect(target) -> "SqlSession":
    return SqlSession(target)


class SqlSession(Session):
    capabilities = Capabilities(language="sql", transactions=True, schema=True, atomic_insert=True)

    def __init__(self, target):
        super().__init__(target)
        url = sqlalchemy_url(target.url)
        self.dialect = url.split(":", 1)[0].split("+", 1)[0]
        self.name = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mysql": "MySQL",
                     "mariadb": "MariaDB"}.get(self.dialect, self.dialect)
        kwargs: dict[str, Any] = {}
        if self.dialect == "sqlite":
            self._check_sqlite_path(url)
            self.capabilities = dataclasses.replace(self.capabilities, embedded=True)
        elif self.dialect == "postgresql":
            kwargs["connect_args"] = {"connect_timeout": 10, "application_name": "dbsh"}
        else:
            kwargs["connect_args"] = {"connect_timeout": 10}
        try:
            self.engine = sa.create_engine(url, **kwargs)
        except (sa_exc.ArgumentError, ValueError) as e:
            raise UsageError(f"invalid URL {target.display()}: {one_line(str(e))}") from None
        except ModuleNotFoundError as e:
            raise UsageError(f"the {self.name} driver needs the Python package {e.name!r}",
                             hint=f"pip install 'dbsh[{'postgres' if self.dialect == 'postgresql' else 'mysql'}]'"
                             ) from None
        if self.dialect == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_on_connect)
            sa.event.listen(self.engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
            # connections in use, so cancel() can interrupt them from another thread
            sa.event.listen(self.engine, "checkout", lambda dbapi, record, proxy: self._busy.add(dbapi))
            sa.event.listen(self.engine, "checkin", lambda dbapi, record: self._busy.discard(dbapi))
        self._busy: set = set()
        self._conn: sa.Connection | None = None   # open while the user holds a transaction
        self._tables: dict[str, sa.Table] = {}
        self._copy = self.dialect == "postgresql" and self.engine.driver == "psycopg"   # bulk loads by COPY
        self._statements: dict[tuple, str] = {}   # multi-row INSERT texts built for bulk inserts

    @staticmethod
    def _check_sqlite_path(url: str) -> None:
        from pathlib import Path

        path = url.split(":///", 1)[1].split("?", 1)[0] if ":///" in url else ""
        if path and path != ":memory:" and not Path(path).parent.exists():
            raise ConnectError(f"cannot open SQLite database {path}: directory does not exist")

    # -- errors ----------------------------------------------------------------------------
    def _error(self, e: Exception) -> DbshError:
        """Translate a driver exception into a one-line dbsh error, never showing the password."""
        orig = getattr(e, "orig", None) or e
        args = getattr(orig, "args", ())
        # PyMySQL errors are (code, message) tuples: show the message, as the mariadb client does
        text = f"{args[1]} (error {args[0]})" if len(args) == 2 and isinstance(args[0], int) else str(orig)
        return QueryError(redact(one_line(text), self.target.password))

    def _connect(self) -> sa.Connection:
        try:
            conn = self.engine.connect()
        except sa_exc.DBAPIError as e:
            raise self._connect_error(e) from None
        return conn

    def _connect_error(self, e: Exception) -> DbshError:
        orig = getattr(e, "orig", None) or e
        return ConnectError(f"cannot connect to {self.target.display()}: "
                            f"{redact(one_line(str(orig)), self.target.password)}")

    class _Use:
        """A connection for one operation: the user's open transaction, or a fresh one."""

        def __init__(self, session: "SqlSession", write: bool):
            self.session = session
            self.write = write

        def __enter__(self) -> sa.Connection:
            s = self.session
            if s._conn is not None:
                self.own = False
                return s._conn
            self.own = True
            self.conn = s._connect()
            self.tx = self.conn.begin()
            return self.conn

        def __exit__(self, kind, value, tb):
            if not self.own:
                return False
            try:
                if kind is None:
                    self.tx.commit()
                else:
                    self.tx.rollback()
            finally:
                self.conn.close()
            return False

    def _use(self, write: bool = False):
        return self._Use(self, write)

    # -- connection ------------------------------------------------------------------------
    def server_info(self) -> dict[str, Any]:
        with self._use() as conn:
            if self.dialect == "sqlite":
                version = conn.exec_driver_sql("select sqlite_version()").scalar()
                database = self.engine.url.database or ":memory:"
            elif self.dialect == "postgresql":
                version = conn.exec_driver_sql("show server_version").scalar()
                database = conn.exec_driver_sql("select current_database()").scalar()
            else:
                version = conn.exec_driver_sql("select version()").scalar()
                database = conn.exec_driver_sql("select database()").scalar()
        name = self.name
        if self.dialect != "sqlite" and "mariadb" in str(version).lower():
            name = "MariaDB"
        return {"backend": name, "version": str(version), "database": database}

    def ping(self) -> float:
        start = time.perf_counter()
        with self._use() as conn:
            conn.exec_driver_sql("select 1").scalar()
        return time.perf_counter() - start

    def cancel(self) -> None:
        """SQLite: interrupt the running statement (sqlite3 never sees Ctrl-C inside one step).
        psycopg cancels a PostgreSQL query on Ctrl-C by itself."""
        for dbapi_conn in list(self._busy):
            try:
                dbapi_conn.interrupt()
            except Exception:  # noqa: BLE001 - a connection closing meanwhile has nothing to interrupt
                pass

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.engine.dispose()

    @contextlib.contextmanager
    def bulk_load(self) -> Iterator[None]:
        """SQLite in the default rollback-journal mode: the journal is truncated instead of deleted
        at each batch's commit (as safe; the commits cost a third less here), and put back after."""
        raw = None
        if self.dialect == "sqlite" and self._conn is None:
            raw = self.engine.raw_connection()   # outside any transaction: the mode can change
            if str(raw.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "delete":
                raw.execute("PRAGMA journal_mode = TRUNCATE")
            else:
                raw.close()
                raw = None
        try:
            yield
        finally:
            if raw is not None:
                try:
                    raw.execute("PRAGMA journal_mode = DELETE")   # removes the emptied journal file
                finally:
                    raw.close()

    # -- transactions ----------------------------------------------------------------------
    def begin(self) -> None:
        if self._conn is not None:
            raise UsageError("a transaction is already open")
        self._conn = self._connect()
        self._tx = self._conn.begin()

    def commit(self) -> None:
        self._finish("commit")

    def rollback(self) -> None:
        self._finish("rollback")

    def _finish(self, how: str) -> None:
        if self._conn is None:
            raise UsageError("no transaction is open")
        try:
            getattr(self._tx, how)()
        except sa_exc.DBAPIError as e:
            raise self._error(e) from None
        finally:
            self._conn.close()
            self._conn = None

    @property
    def in_transaction(self) -> bool:
        return self._conn is not None

    # -- read-only sessions ----------------------------------------------------------------
    _READONLY = {"sqlite": "PRAGMA query_only = {}",
                 "postgresql": "SET SESSION CHARACTERISTICS AS TRANSACTION READ {}",
                 "mysql": "SET SESSION TRANSACTION READ {}", "mariadb": "SET SESSION TRANSACTION READ {}"}

    def set_readonly(self, flag: bool) -> bool:
        """A server-side read-only session: each pooled connection is switched when checked out."""
        if self._conn is not None:
            raise UsageError("finish the open transaction first (commit or rollback)")
        template = self._READONLY.get(self.dialect)
        if template is None:
            return super().set_readonly(flag)
        if not hasattr(self, "_readonly_hooked"):
            sa.event.listen(self.engine, "checkout", self._on_checkout_readonly)
            self._readonly_hooked = True
        self.readonly = flag
        return True

    def _on_checkout_readonly(self, dbapi_conn, record, proxy) -> None:
        # pooled connections remember their setting; switch only those that differ
        if record.info.get("dbsh_readonly", False) == self.readonly:
            return
        template = self._READONLY[self.dialect]
        if self.dialect == "sqlite":
            word = "ON" if self.readonly else "OFF"
        else:
            word = "ONLY" if self.readonly else "WRITE"
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(template.format(word))
        finally:
            cursor.close()
        record.info["dbsh_readonly"] = self.readonly
        if self.dialect != "sqlite":
            dbapi_conn.commit()   # a SET inside a rolled-back transaction would be undone

    # -- catalog ---------------------------------------------------------------------------
    def collections(self) -> list[str]:
        try:
            with self._use() as conn:
                inspector = sa.inspect(conn)
                return sorted(inspector.get_table_names() + inspector.get_view_names())
        except sa_exc.DBAPIError as e:
            raise self._error(e) from None

    _DATABASES = {
        "postgresql": "select datname as name, datname = current_database() as current from pg_database "
                      "where not datistemplate order by datname",
        "mysql": "select schema_name as name, schema_name = database() as current from information_schema.schemata "
                 "order by schema_name",
        "sqlite": "select name, file, name = 'main' as current from pragma_database_list order by seq",
    }

    def databases(self) -> Result:
        sql = self._DATABASES["mysql" if self.dialect == "mariadb" else self.dialect]
        try:
            with self._use() as conn:
                rows = [dict(r._mapping) for r in conn.exec_driver_sql(sql)]
        except sa_exc.DBAPIError as e:
            raise self._error(e) from None
        for row in rows:
            row["current"] = bool(row["current"])
        return Result(rows, list(rows[0]) if rows else ["name", "current"])

    def completions(self) -> dict[str, list[str]]:
        """Every table's and view's columns in one catalog read (get_multi_columns)."""
        try:
            with self._use() as conn:
                inspector = sa.inspect(conn)
                found = {**inspector.get_multi_columns(), **inspector.get_multi_columns(kind=sa.engine.ObjectKind.VIEW)}
        except sa_exc.DBAPIError as e:
            raise self._error(e) from None
        return {table: [c["name"] for c in columns] for (_, table), columns in sorted(found.items())}

    def references(self) -> dict[str, list[dict[str, Any]]]:
        try:
            with self._use() as conn:
                found = sa.inspect(conn).get_multi_foreign_keys()
        except sa_exc.DBAPIError as e:
            raise self._error(e) from None
        return {table: [{"name": fk.get("name"), "columns": fk["constrained_columns"], "table": fk["referred_table"],
                         "referred": fk["referred_columns"]} for fk in fks]
                for (_, table), fks in found.items() if fks}

    def foreign_keys(self, name: str) -> list[dict[str, Any]]:
        table = self.table(name)
        try:
            with self._use() as conn:
                found = sa.inspect(conn).get_foreign_keys(table.name, schema=table.schema)
        except sa_exc.DBAPIError as e:
            raise self._error(e) from None
        return [{"name": fk.get("name"), "columns": fk["constrained_columns"], "table": fk["referred_table"],
                 "referred": fk["referred_columns"]} for fk in found]

    def table(self, name: str, conn: sa.Connection | None = None, *, missing_ok: bool = False) -> sa.Table | None:
        if name in self._tables:
            return self._tables[name]
        if not isinstance(name, str) or not name:
            raise UsageError(f"invalid table name {name!r}")

        def reflect(c: sa.Connection) -> sa.Table | None:
            schema, _, bare = name.rpartition(".") if "." in name and self.dialect != "sqlite" else ("", "", name)
            inspector = sa.inspect(c)
            if not inspector.has_table(bare, schema=schema or None) and bare not in inspector.get_view_names(
                    schema=schema or None):
                return None
            table = sa.Table(bare, sa.MetaData(), schema=schema or None, autoload_with=c)
            if self.dialect in ("mysql", "mariadb"):
                _restore_mariadb_json(table, c)
            for col in table.columns:   # MySQL DOUBLE reflects as Decimal-returning: floats stay floats
                if isinstance(col.type, sa.Float) and getattr(col.type, "asdecimal", False):
                    col.type.asdecimal = False
            return table

        try:
            if conn is not None:
                table = reflect(conn)
            else:
                with self._use() as c:
                    table = reflect(c)
        except sa_exc.DBAPIError as e:
            raise self._error(e) from None
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
        try:
            with self._use() as conn:
                indexes = sa.inspect(conn).get_indexes(table.name, schema=table.schema)
        except sa_exc.DBAPIError as e:
            raise self._error(e) from None
        indexed: dict[str, list[str]] = {}
        for index in indexes:
            for col in index.get("column_names") or []:
                if col:
                    label = index["name"] + (" (unique)" if index.get("unique") else "")
                    indexed.setdefault(col, []).append(label)
        references: dict[str, str] = {}
        for fk in self.foreign_keys(name):
            for mine, theirs in zip(fk["columns"], fk["referred"]):
                references[mine] = f"{fk['table']}({theirs})"
        rows = []
        for col in table.columns:
            rows.append({
                "column": col.name,
                "type": str(col.type.compile(dialect=self.engine.dialect)),
                "nullable": col.nullable,
                "default": None if col.server_default is None else str(getattr(col.server_default, "arg", "")),
                "primary_key": col.primary_key,
                "indexes": ", ".join(indexed.get(col.name, [])) or None,
                "references": references.get(col.name),
            })
        return Result(rows, ["column", "type", "nullable", "default", "primary_key", "indexes", "references"])

    # -- filter compilation ----------------------------------------------------------------
    def _column(self, table: sa.Table, field: str) -> sa.ColumnElement:
        if field in table.c:
            return table.c[field]
        if "." in field and field.split(".", 1)[0] in table.c:
            raise Unsupported(f"nested field {field!r}: {self.name} columns are flat in dbsh filters")
        raise UsageError(f"unknown column {field!r} in table {table.name!r}",
                         hint="columns: " + ", ".join(table.c.keys()))

    def compile_filter(self, table: sa.Table, node: q.Node) -> sa.ColumnElement[bool]:
        if isinstance(node, q.And):
            return sa.and_(sa.true(), *(self.compile_filter(table, n) for n in node.items))
        if isinstance(node, q.Or):
            return sa.or_(*(self.compile_filter(table, n) for n in node.items))
        if isinstance(node, q.Not):
            inner = self.compile_filter(table, node.item)
            # MongoDB semantics: NOT(age > 5) also matches rows where age is null
            nullable = [self._column(table, f) for f in set(q.fields_of(node.item))]
            return sa.or_(sa.not_(inner), *(c.is_(None) for c in nullable))
        col = self._column(table, node.field)
        op, value = node.op, node.value
        if isinstance(value, dict | list) or (op in ("in", "nin") and any(isinstance(v, dict | list) for v in value)):
            if op not in ("exists",):
                raise Unsupported(f"comparing a column with a JSON object or array is not supported on {self.name}")
        if op == "eq":
            return col.is_(None) if value is None else col == value
        if op == "ne":
            return col.is_not(None) if value is None else sa.or_(col != value, col.is_(None))
        if op in ("gt", "gte", "lt", "lte"):
            if value is None:
                return sa.false()
            return {"gt": col > value, "gte": col >= value, "lt": col < value, "lte": col <= value}[op]
        if op == "in":
            values = [v for v in value if v is not None]
            expr = col.in_(values)
            return sa.or_(expr, col.is_(None)) if None in value else expr
        if op == "nin":
            values = [v for v in value if v is not None]
            expr = sa.or_(col.not_in(values), col.is_(None)) if values else sa.true()
            return sa.and_(expr, col.is_not(None)) if None in value else expr
        if op == "exists":
            return col.is_not(None) if value else col.is_(None)
        if op == "regex":
            flags = "i" if "i" in node.options else None
            if set(node.options) - {"i"}:
                raise Unsupported(f"$options {node.options!r} on {self.name}: only 'i' is supported")
            return col.regexp_match(value, flags=flags)
        raise Unsupported(f"operator ${op} is not supported on {self.name}")

    def _select(self, table: sa.Table, where: q.Filter, fields, sort, limit, skip) -> sa.Select:
        columns = [self._column(table, f) for f in fields] if fields else [table]
        stmt = sa.select(*columns).where(self.compile_filter(table, where.ast))
        for field, direction in sort or ():
            col = self._column(table, field)
            stmt = stmt.order_by(col.desc() if direction < 0 else col.asc())
        if limit is not None:
            if limit < 0:
                raise UsageError("--limit must not be negative")
            stmt = stmt.limit(limit)
        if skip:
            if skip < 0:
                raise UsageError("--skip must not be negative")
            stmt = stmt.offset(skip)
            if limit is None and self.dialect in ("mysql", "mariadb", "sqlite"):
                stmt = stmt.limit(2**63 - 1 if self.dialect != "sqlite" else -1)
        return stmt

    # -- uniform verbs ---------------------------------------------------------------------
    def find(self, name, where, *, fields=None, sort=None, limit=None, skip=None) -> Result:
        table = self.table(name)
        stmt = self._select(table, where, fields, sort, limit, skip)
        columns = [self._column(table, f) for f in fields] if fields else list(table.columns)
        if self.dialect != "sqlite" or _sqlite_json_row(columns, self.engine.dialect, exact=True) is None:
            return self._stream(stmt)
        # SQLite can build the JSON itself: the query runs once a renderer asks for rows or for JSON
        streamed: list[Result] = []

        def rows():
            streamed.append(self._stream(stmt))
            yield from streamed[0]

        def json_lines():
            if sort or skip or where.doc:   # in the query's own order and plan, a row at a time
                return self._sqlite_json_lines(table, stmt, columns, False)
            return self._sqlite_json_lines(table, self._select(table, where, fields, None, None, None),
                                           columns, limit)

        result = Result(rows(), [c.name for c in columns], close=lambda: streamed and streamed[0].close())
        result.json_lines = json_lines
        return result

    def _sqlite_json_lines(self, table: sa.Table, stmt, columns: list[sa.Column],
                           limit: int | None | bool) -> Iterator[tuple[str, int]]:
        """The rows of ``stmt`` as JSON lines built by SQLite (_sqlite_json_row); ``limit`` (None for no
        limit) when ``stmt`` is an unsorted query that may run in rowid windows, False otherwise."""
        import sqlite3

        from dbsh.output import to_json

        dialect = self.engine.dialect
        names = [c.name for c in columns]
        processors = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]

        def python_row(*values):
            return to_json({n: v if p is None else p(v) for n, v, p in zip(names, values, processors)})

        def compiled(query):
            done = query.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
            return str(done), _positional(done), list(done.positiontup or [])

        exact = _sqlite_json_row(columns, dialect, exact=True)
        try:
            with self._use() as conn:
                dbapi = conn.connection.dbapi_connection
                dbapi.create_function("dbsh_json_row", len(columns), python_row)
                if limit is False or not _has_rowid(dbapi, table):
                    sql, params, _ = compiled(sa.select(sa.literal_column(exact)).select_from(stmt.subquery("dbsh_r")))
                    cursor = dbapi.cursor()   # sqlite3's own: one string a row, nothing to process
                    try:
                        cursor.execute(sql, params)
                        while rows := cursor.fetchmany(STREAM_BATCH):
                            yield "\n".join([r[0] for r in rows]), len(rows)
                    finally:
                        cursor.close()
                    return
                rowid = sa.literal_column("_rowid_")
                window = stmt.add_columns(rowid.label("dbsh_rowid")).where(
                    rowid >= sa.bindparam("dbsh_low"), rowid < sa.bindparam("dbsh_high")).order_by(rowid)
                queries = [compiled(sa.select(sa.func.group_concat(sa.literal_column(row), sa.literal_column("char(10)")),
                                              sa.func.count()).select_from(window.subquery("dbsh_r")))
                           for row in (_sqlite_json_row(columns, dialect, exact=False), exact)]
                yield from _windows(self, dbapi, table, queries, limit)
        except sqlite3.Error as e:
            raise self._error(e) from None

    def count(self, name, where) -> int:
        table = self.table(name)
        stmt = sa.select(sa.func.count()).select_from(table).where(self.compile_filter(table, where.ast))
        try:
            with self._use() as conn:
                return int(conn.execute(stmt).scalar_one())
        except sa_exc.DBAPIError as e:
            raise self._error(e) from None

    def explain(self, name, where, **find_options) -> Result:
        table = self.table(name)
        stmt = self._select(table, where, find_options.get("fields"), find_options.get("sort"),
                            find_options.get("limit"), find_options.get("skip"))
        compiled = stmt.compile(dialect=self.engine.dialect)
        prefix = "EXPLAIN QUERY PLAN " if self.dialect == "sqlite" else "EXPLAIN "
        try:
            with self._use() as conn:
                rows = conn.exec_driver_sql(prefix + str(compiled), _positional(compiled)).mappings().all()
        except sa_exc.DBAPIError as e:
            raise self._error(e) from None
        return Result([dict(r) for r in rows])

    def _stream(self, stmt, params=None, server_cursor: bool = True) -> Result:
        """Run a row-returning statement and stream its rows (server-side cursor where there is one)."""
        use = self._use()
        conn = use.__enter__()
        try:
            options = {"stream_results": True, "yield_per": STREAM_BATCH} if server_cursor else {}
            result = conn.execution_options(**options).execute(stmt, params)
        except sa_exc.DBAPIError as e:
            use.__exit__(type(e), e, None)
            raise self._error(e) from None
        except BaseException as e:
            use.__exit__(type(e), e, None)
            raise
        if not result.returns_rows:
            count = result.rowcount
            use.__exit__(None, None, None)
            noun = "row" if count == 1 else "rows"
            return Result.status(f"{count} {noun} affected" if count >= 0 else "done")
        columns = list(result.keys())
        closed = False

        def rows():
            try:
                # partitions of yield_per rows: far less per-row overhead than iterating the Result
                for chunk in result.partitions():
                    for row in chunk:
                        yield dict(zip(columns, row))
            except sa_exc.DBAPIError as e:
                raise self._error(e) from None

        def close():
            nonlocal closed
            if not closed:
                closed = True
                try:
                    result.close()
                finally:
                    use.__exit__(None, None, None)

        return Result(rows(), columns, close=close)

    def insert(self, name, docs: Iterable[dict], *, batch=1000, create=False, progress=None) -> WriteResult:
        committed = 0
        try:
            for chunk in batched(docs, batch):
                self._insert_chunk(name, chunk, _same_keys(chunk), create)
                committed += len(chunk)
                if progress:
                    progress(len(chunk))
        except DbshError as e:
            raise type(e)(_partial(e.message, committed, name, self._conn is not None), hint=e.hint) from None
        except sa_exc.DBAPIError as e:
            err = self._error(e)
            raise type(err)(_partial(err.message, committed, name, self._conn is not None)) from None
        return WriteResult("inserted", name, committed)

    def _insert_chunk(self, name: str, chunk: list[dict], groups, create: bool, scalars: bool = False) -> None:
        """One batch of documents in one transaction; ``groups`` as _same_keys gives them; ``scalars``
        when every value is known to be a str, int, float, bool or None."""
        groups = list(groups)
        with self._use(write=True) as conn:
            table = self._table_for(name, chunk, conn, create, {k for keys, *_ in groups for k in keys})
            self._insert_groups(conn, table, groups, scalars)

    def _insert_groups(self, conn: sa.Connection, table: sa.Table, groups, scalars: bool = False) -> None:
        """One batch of documents (_same_keys groups) through the dialect's fastest path: COPY on
        PostgreSQL, multi-row INSERTs through sqlite3 on SQLite, SQLAlchemy's executemany elsewhere
        (PyMySQL sends it as multi-row INSERTs)."""
        for keys, group, rows in groups:
            if not keys:
                conn.execute(table.insert(), group)   # INSERT ... DEFAULT VALUES
                continue
            if self._copy:
                self._copy_rows(conn, table, keys, rows)
                continue
            if self.dialect == "sqlite":
                values = list(chain.from_iterable(rows))
                kinds = _SCALARS if scalars else set(map(type, values))
                if kinds <= _PLAIN_SET:
                    if dict in kinds or list in kinds or any(isinstance(table.c[k].type, sa.JSON) for k in keys):
                        as_json = [isinstance(table.c[k].type, sa.JSON) for k in keys]
                        values = [_copy_value(v, j) for row in rows for v, j in zip(row, as_json)]
                    self._sqlite_rows(conn, table, keys, ["?{}"] * len(keys), values)
                    continue
            try:
                conn.execute(table.insert(), [self._prepare(table, doc) for doc in group])
            except OverflowError:   # sqlite3 binding an int past 64 bits
                raise UsageError(_SQLITE_RANGE) from None

    @property
    def prepares_apart(self) -> bool:
        return self._copy or self.dialect == "sqlite"

    def prepare_batch(self, name, batch) -> None:
        """Documents as they are written, for each run of them with the same keys: (keys, how many,
        what goes). For PostgreSQL's COPY, their COPY text as UTF-8, as it is for columns that are
        not JSON; for SQLite, every value, row after row, when all are scalars; None when a value is
        not plain. insert_batch checks that against the table. Pure work on the batch: it runs in
        another process (prepares_apart)."""
        if batch.header is not None or not batch.docs or not self.prepares_apart:
            return
        prepared = []
        if self._copy:
            for keys, n, columns in _same_key_columns(batch.docs):
                text = _copy_text(columns, [False] * len(keys))
                prepared.append((keys, n, None if text is None else text.encode()))
        else:
            for keys, group, rows in _same_keys(batch.docs):
                values = list(chain.from_iterable(rows))
                plain = batch.scalars or set(map(type, values)) <= _SCALARS
                prepared.append((keys, len(group), values if plain else None))
        batch.prepared = prepared

    def insert_batch(self, name, batch, *, create=False) -> WriteResult:
        """Documents, or csv cells converted by the table's column types as ``sqlite3 .import`` and
        ``psql \\copy`` read a csv: text stays as written, '' is null, numbers and booleans as the
        column's type reads them (SQLite's column affinity; PostgreSQL's input functions, through
        COPY). A table with other columns (JSON, dates on SQLite, ...) takes inferred documents."""
        if batch.header is None:
            try:
                if not (batch.prepared and self._write_prepared(name, batch.prepared)):
                    self._insert_chunk(name, batch.docs, _same_keys(batch.docs), create, batch.scalars)
            except sa_exc.DBAPIError as e:
                raise self._error(e) from None
            return WriteResult("inserted", name, len(batch))
        header = batch.header
        fast = self.dialect == "sqlite" or self._copy
        if not len(batch) or not fast or len(set(header)) != len(header):
            return super().insert_batch(name, batch, create=create)
        try:
            with self._use(write=True) as conn:
                table = self._tables.get(name)
                if table is None:
                    table = self.table(name, conn, missing_ok=True)
                if table is None or not set(header) <= set(table.c.keys()):   # --create: types inferred
                    table = self._table_for(name, batch.documents(), conn, create, set(header))
                kinds = [_cell_kind(self.dialect, table.c[h].type) for h in header]
                if None in kinds:
                    self._insert_groups(conn, table, _same_keys(batch.documents()))
                elif self.dialect == "sqlite":
                    self._sqlite_cells(conn, table, header, kinds, batch.flat_cells())
                else:
                    self._copy_cells(conn, table, batch)
        except DbshError as e:
            raise type(e)(_partial(e.message, 0, name, self._conn is not None), hint=e.hint) from None
        except sa_exc.DBAPIError as e:
            raise self._error(e) from None
        return WriteResult("inserted", name, len(batch))

    def _sqlite_cells(self, conn: sa.Connection, table: sa.Table, header: list[str], kinds: list[str],
                      cells: list[str]) -> None:
        """csv cells (row after row) into SQLite: affinity types the text; '' is null; booleans read
        true/false in any case; untyped columns (no affinity) take inferred values."""
        from dbsh.inputs import infer_column

        width = len(header)
        sql = []
        for i, kind in enumerate(kinds):
            column = cells[i::width]
            if kind == "infer":
                cells[i::width] = infer_column(column)
            # NULLIF only for a column with empty cells in this batch: a function call less a cell
            sql.append("?{}" if kind == "text" and "" not in column else _SQLITE_CELL[kind])
        self._sqlite_rows(conn, table, header, sql, cells)

    def _sqlite_rows(self, conn: sa.Connection, table: sa.Table, keys: list[str], cells: list[str],
                     values: list) -> None:
        """Values (row after row) through sqlite3 in multi-row INSERTs, as many rows a statement as
        SQLite takes parameters, past SQLAlchemy's per-row parameter processing; ``cells`` are the
        SQL for each column's value, ``?{}`` its parameter."""
        import sqlite3

        preparer = self.engine.dialect.identifier_preparer
        width = len(keys)
        max_params = 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
        per = max(1, min(max_params // width, 1000)) * width
        head = f"INSERT INTO {preparer.format_table(table)} ({', '.join(preparer.quote(k) for k in keys)}) VALUES "

        def statement(n: int) -> str:
            key = (head, tuple(cells), n)
            text = self._statements.get(key)
            if text is None:
                if len(self._statements) > 64:
                    self._statements.clear()
                text = self._statements[key] = head + ",".join(
                    "(" + ",".join(c.format(r * width + i + 1) for i, c in enumerate(cells)) + ")" for r in range(n))
            return text

        cursor = conn.connection.dbapi_connection.cursor()
        try:
            for start in range(0, len(values), per):
                part = values[start:start + per]
                cursor.execute(statement(len(part) // width), part)
        except sqlite3.Error as e:
            raise self._error(e) from None
        except OverflowError:
            raise UsageError(_SQLITE_RANGE) from None
        finally:
            cursor.close()

    def _copy_rows(self, conn: sa.Connection, table: sa.Table, keys: list[str], rows: list[tuple]) -> None:
        """PostgreSQL's fastest bulk path: COPY FROM STDIN in the batch's transaction. Text format, so
        the server parses each value as its column's type; JSON columns get JSON text. Plain values
        (text, numbers, booleans, nulls, JSON) go as pre-formatted COPY text, one write per batch."""
        import psycopg

        as_json = [isinstance(table.c[k].type, sa.JSON) for k in keys]
        statement = self._copy_into(table, keys)
        text = _copy_text(list(zip(*rows)), as_json)
        try:
            with conn.connection.driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
                if text is not None:
                    copy.write(text)
                else:
                    for row in rows:
                        copy.write_row([_copy_value(v, j) for v, j in zip(row, as_json)])
        except psycopg.Error as e:
            raise self._error(e) from None

    def _copy_into(self, table: sa.Table, keys: list[str]) -> str:
        """COPY into these columns of the table FROM STDIN (text format; options may follow)."""
        preparer = self.engine.dialect.identifier_preparer
        return f"COPY {preparer.format_table(table)} ({', '.join(preparer.quote(k) for k in keys)}) FROM STDIN"

    def _write_prepared(self, name: str, prepared: list[tuple[list[str], int, Any]]) -> bool:
        """A batch as prepare_batch made it ready, in one transaction, into a table already known to
        have its columns, none of them JSON (which take JSON text, not the values prepared); False,
        having written nothing, for any other batch, which then goes by its documents."""
        table = self._tables.get(name)
        if table is None:
            return False
        for keys, _, ready in prepared:
            if ready is None or not keys or \
                    not all(k in table.c and not isinstance(table.c[k].type, sa.JSON) for k in keys):
                return False
        if self._copy:
            return self._copy_prepared(table, prepared)
        with self._use(write=True) as conn:
            for keys, _, values in prepared:
                self._sqlite_rows(conn, table, keys, ["?{}"] * len(keys), values)
        return True

    def _copy_prepared(self, table: sa.Table, prepared: list[tuple[list[str], int, bytes]]) -> bool:
        """The COPY text (UTF-8) of each run; False, having written nothing, on a connection whose
        client encoding is another (psycopg then encodes the values, as it always has)."""
        import psycopg

        with self._use(write=True) as conn:
            driver = conn.connection.driver_connection
            if driver.info.encoding != "utf-8":
                return False
            try:
                for keys, _, text in prepared:
                    with driver.cursor() as cursor, cursor.copy(self._copy_into(table, keys)) as copy:
                        copy.write(text)
            except psycopg.Error as e:
                raise self._error(e) from None
        return True

    def _copy_cells(self, conn: sa.Connection, table: sa.Table, batch) -> None:
        """csv cells into PostgreSQL by COPY, '' meaning null: the server reads each cell as its
        column's type, exactly as psql \\copy does. Plain lines go as they were read (COPY csv);
        other cells as COPY text, escaped."""
        import psycopg

        into = self._copy_into(table, batch.header)
        if batch.text is not None:
            statement = into + f" (FORMAT csv, DELIMITER '{batch.delimiter}')"
            text = batch.text
        else:
            rows = batch.cells
            statement = into + " (FORMAT text, NULL '')"
            text = "\n".join(map("\t".join, rows)) + "\n"
            if ("\\" in text or "\r" in text or text.count("\n") != len(rows)
                    or text.count("\t") != len(rows) * (len(batch.header) - 1)):   # a cell holds a delimiter
                text = "\n".join("\t".join(c.translate(_COPY_ESCAPE) for c in row) for row in rows) + "\n"
        try:
            with conn.connection.driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
                copy.write(text)
        except psycopg.Error as e:
            raise self._error(e) from None

    def _table_for(self, name: str, docs: list[dict], conn: sa.Connection, create: bool,
                   keys: set[str] | None = None) -> sa.Table:
        """The table to insert ``docs`` into (whose fields are ``keys``, when known), made or widened
        with --create."""
        table = self._tables.get(name)
        if table is None:
            table = self.table(name, conn, missing_ok=True)
        if table is None:
            if not create:
                raise NotFound(f"no table named {name!r}", hint="pass --create to make it from the documents")
            table = self._create(name, docs, conn)
        missing = (set(chain.from_iterable(docs)) if keys is None else keys) - set(table.c.keys())
        if missing:
            if not create:
                raise UsageError(f"table {name!r} has no column {', '.join(repr(m) for m in sorted(missing))}",
                                 hint="pass --create to add the columns")
            table = self._add_columns(table, docs, sorted(missing), conn)
        return table

    def _create(self, name: str, docs: list[dict], conn: sa.Connection) -> sa.Table:
        _check_identifier(name, "table")
        columns = _infer_columns(docs)
        if "id" not in columns:
            table_cols = [sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)]
        else:
            table_cols = [sa.Column("id", columns.pop("id"), primary_key=True,
                                    autoincrement=isinstance(columns.get("id"), sa.Integer))]
        table_cols += [sa.Column(c, t) for c, t in columns.items()]
        table = sa.Table(name, sa.MetaData(), *table_cols)
        table.create(conn)
        self._tables[name] = table
        return table

    def _add_columns(self, table: sa.Table, docs: list[dict], names: list[str], conn) -> sa.Table:
        inferred = _infer_columns(docs)
        preparer = self.engine.dialect.identifier_preparer
        for col in names:
            _check_identifier(col, "column")
            kind = inferred.get(col, sa.Text()).compile(dialect=self.engine.dialect)
            conn.exec_driver_sql(f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN "
                                 f"{preparer.quote(col)} {kind}")
        self._tables.pop(table.name, None)
        return self.table(table.name, conn)

    def _prepare(self, table: sa.Table, doc: dict) -> dict:
        row = {}
        for key, value in doc.items():
            if isinstance(value, dict | list) and not isinstance(table.c[key].type, sa.JSON):
                value = json.dumps(value, ensure_ascii=False)
            row[key] = value
        return row

    def update(self, name, where, change, *, upsert=False, one=False) -> WriteResult:
        table = self.table(name)
        condition = self.compile_filter(table, where.ast)
        values: dict[str, Any] = {}
        for c in change.changes:
            col = self._column(table, c.field)
            if isinstance(c, q.Set):
                value = c.value
                if isinstance(value, dict | list) and not isinstance(col.type, sa.JSON):
                    value = json.dumps(value, ensure_ascii=False)
                values[c.field] = value
            elif isinstance(c, q.Unset):
                values[c.field] = None
            else:
                values[c.field] = sa.func.coalesce(col, 0) + c.amount
        try:
            with self._use(write=True) as conn:
                if one:
                    condition = self._one_row(table, condition)
                count = conn.execute(sa.update(table).where(condition).values(values)).rowcount
                if count == 0 and upsert:
                    doc = {**q.equalities(where.ast), **{
                        c.field: c.value if isinstance(c, q.Set) else c.amount
                        for c in change.changes if not isinstance(c, q.Unset)}}
                    conn.execute(table.insert(), [self._prepare(table, doc)])
                    return WriteResult("upserted", name, 1, matched=0)
        except sa_exc.DBAPIError as e:
            raise self._error(e) from None
        return WriteResult("updated", name, count)

    def _one_row(self, table: sa.Table, condition):
        key = list(table.primary_key.columns)
        if not key:
            raise Unsupported(f"--one needs a primary key, and {table.name!r} has none")
        pick = sa.select(*key).where(condition).limit(1)
        if self.dialect in ("mysql", "mariadb"):
            pick = sa.select(*(sa.literal_column(c.name) for c in key)).select_from(pick.subquery())
        if len(key) == 1:
            return key[0].in_(pick)
        return sa.tuple_(*key).in_(pick)

    def delete(self, name, where, *, one=False) -> WriteResult:
        table = self.table(name)
        condition = self.compile_filter(table, where.ast)
        try:
            with self._use(write=True) as conn:
                if one:
                    condition = self._one_row(table, condition)
                count = conn.execute(sa.delete(table).where(condition)).rowcount
        except sa_exc.DBAPIError as e:
            raise self._error(e) from None
        return WriteResult("deleted", name, count)

    # -- native SQL ------------------------------------------------------------------------
    def execute(self, text: str, params: dict[str, Any] | None = None) -> Result:
        text = text.strip().rstrip(";").strip()
        if not text:
            raise UsageError("empty statement")
        self._tables.clear()   # DDL may change what a table looks like
        stmt = sa.text(text)
        missing = set(stmt.compile().params) - set(params or {})
        if missing:
            raise UsageError(f"missing parameter {', '.join(':' + m for m in sorted(missing))}",
                             hint="pass -p name=value")
        # PostgreSQL streams through a named cursor (DECLARE ... CURSOR FOR), which only takes queries
        server_cursor = self.dialect != "postgresql" or _PLAIN_QUERY.match(text) is not None
        return self._stream(stmt, params or {}, server_cursor=server_cursor)


_PLAIN_QUERY = re.compile(r"\s*(select|values|table)\b|\s*with\b(?!.*\b(insert|update|delete|merge)\b)", re.I | re.S)


def _positional(compiled) -> tuple | dict:
    params = compiled.params
    if compiled.positiontup is not None:
        return tuple(params[name] for name in compiled.positiontup)
    return params


def _sqlite_on_connect(dbapi_conn, record) -> None:
    # let SQLAlchemy own transactions (BEGIN on begin) instead of pysqlite's implicit ones
    dbapi_conn.isolation_level = None
    dbapi_conn.execute("PRAGMA foreign_keys = ON")
    dbapi_conn.execute("PRAGMA busy_timeout = 5000")


_PLAIN = (str, int, float, bool, type(None), dict, list)


_PLAIN_SET = frozenset(_PLAIN)
_SCALARS = frozenset((str, int, float, bool, type(None)))
_SQLITE_RANGE = "integer out of range: SQLite stores integers in 64 bits (up to 9223372036854775807)"
# a csv cell's SQL on SQLite, by the column's kind (_cell_kind); {} is the parameter's number
_SQLITE_CELL = {
    "text": "NULLIF(?{0},'')",
    "bool": "CASE lower(?{0}) WHEN 'true' THEN 1 WHEN 'false' THEN 0 ELSE NULLIF(?{0},'') END",
    "infer": "?{0}",
}


WINDOW = 5000   # rowids a window of a SQLite export spans


def _has_rowid(dbapi, table: sa.Table) -> bool:
    """A table (not a view, not WITHOUT ROWID) whose rows can be read in rowid ranges."""
    row = dbapi.execute("SELECT type, sql FROM sqlite_master WHERE name = ?", (table.name,)).fetchone()
    return bool(row) and row[0] == "table" and "without rowid" not in " ".join((row[1] or "").lower().split())


def _windows(session, dbapi, table: sa.Table, queries, limit: int | None) -> Iterator[tuple[str, int]]:
    """Run a window query over consecutive rowid ranges of WINDOW rows, in order, in the one read
    transaction ``dbapi`` is in: the fast query, or for a window where it fails, the exact one.
    SQLite aggregates each window into one string, so Python handles one string a window."""
    import sqlite3

    quoted = session.engine.dialect.identifier_preparer.format_table(table)
    fast, exact = queries

    def run(query, low: int, high: int) -> tuple[str | None, int]:
        sql, params, names = query
        values = list(params)
        values[names.index("dbsh_low")], values[names.index("dbsh_high")] = low, high
        return dbapi.execute(sql, values).fetchone()

    low = dbapi.execute(f"SELECT min(_rowid_) FROM {quoted}").fetchone()[0]
    left = limit
    while low is not None and (left is None or left > 0):
        high = dbapi.execute(f"SELECT _rowid_ FROM {quoted} WHERE _rowid_ >= ? ORDER BY _rowid_ "
                             f"LIMIT 1 OFFSET {WINDOW}", (low,)).fetchone()
        high = None if high is None else high[0]
        end = (1 << 63) - 1 if high is None else high
        try:
            text, count = run(fast, low, end)
        except sqlite3.OperationalError:   # a value json_object would not write as Python does
            text, count = run(exact, low, end)
        low = high
        if not count:
            continue
        if left is not None:
            if count > left:
                text, count = "\n".join(text.split("\n", left)[:left]), left
            left -= count
        yield text, count


def _sqlite_affinity(col: sa.Column, dialect) -> str:
    """The column's SQLite type affinity, by SQLite's rules on the declared type."""
    if isinstance(col.type, sa.types.NullType):
        return "blob"
    declared = str(col.type.compile(dialect=dialect)).upper()
    if "INT" in declared:
        return "integer"
    if any(word in declared for word in ("CHAR", "CLOB", "TEXT")):
        return "text"
    if "BLOB" in declared:
        return "blob"
    if any(word in declared for word in ("REAL", "FLOA", "DOUB")):
        return "real"
    return "numeric"


def _sqlite_json_row(columns: list[sa.Column], dialect, exact: bool) -> str | None:
    """SQL for a row of ``dbsh_r`` (the query as a subquery) as the JSON line the renderer would
    write, by json_object, for the values SQLite renders alike: text, integers, integer booleans,
    floats of at most 15 digits written without an exponent. Any other value (a blob, a float
    needing 16-17 digits or an exponent, a boolean that is not an integer) makes the ``exact``
    form call dbsh_json_row, which does what the Python path does, and the fast form fail (a run
    of rows is then redone exactly). None when a column's type converts values on the Python side
    (dates, decimals, JSON, ...)."""
    quote = dialect.identifier_preparer.quote
    pairs, odd = [], []
    for col in columns:
        ref = f"dbsh_r.{quote(col.name)}"
        kind = col.type
        affinity = _sqlite_affinity(col, dialect)
        # json_object writes a float with 15 digits (%!.15g): Python's repr when it reads back as the
        # same float and has no exponent; the first test settles floats of up to 6 decimals cheaply
        short = (f"round({ref} * 1e6) / 1e6 = {ref} AND {ref} < 1e9 AND {ref} > -1e9 "
                 f"AND ({ref} >= 1e-4 OR {ref} <= -1e-4 OR {ref} = 0)")
        digits = (f"{ref} < 1e15 AND {ref} > -1e15 AND ({ref} >= 1e-4 OR {ref} <= -1e-4) "
                  f"AND CAST(CAST({ref} AS TEXT) AS REAL) = {ref}")
        fail = "json('not JSON')"   # raises: the fast form gives the rows back to the exact one
        if isinstance(kind, sa.Boolean):
            if exact:
                value = f"CASE WHEN {ref} IS NULL THEN NULL WHEN {ref} THEN json('true') ELSE json('false') END"
                odd.append(f"typeof({ref}) NOT IN ('integer', 'null')")
            else:
                value = (f"CASE typeof({ref}) WHEN 'integer' THEN CASE WHEN {ref} THEN json('true') "
                         f"ELSE json('false') END WHEN 'null' THEN NULL ELSE {fail} END")
        elif isinstance(kind, sa.String | sa.Integer | sa.Float | sa.types.NullType) and \
                kind.dialect_impl(dialect).result_processor(dialect, None) is None:
            value = ref   # values exactly as sqlite3 returns them; blobs make json_object fail
            rowid = (affinity == "integer" and col.primary_key and len(col.table.primary_key.columns) == 1
                     and str(kind.compile(dialect=dialect)).upper() == "INTEGER")
            if affinity == "text" or rowid:   # no floats: numbers are stored as text / always an integer
                if exact:
                    odd.append(f"typeof({ref}) = 'blob'")
            elif exact:
                odd.append(f"CASE typeof({ref}) WHEN 'real' THEN NOT ({short} OR {digits}) "
                           f"WHEN 'blob' THEN 1 ELSE 0 END")
            elif affinity == "integer":
                value = f"CASE WHEN typeof({ref}) = 'real' THEN {fail} ELSE {ref} END"
            else:
                value = f"CASE WHEN {short} THEN {ref} WHEN typeof({ref}) = 'real' THEN {fail} ELSE {ref} END"
        else:
            return None
        pairs.append("'" + col.name.replace("'", "''") + f"', {value}")
    row = f"json_object({', '.join(pairs)})"
    if not odd:
        return row
    refs = ", ".join(f"dbsh_r.{quote(c.name)}" for c in columns)
    return f"CASE WHEN {' OR '.join(odd)} THEN dbsh_json_row({refs}) ELSE {row} END"


def _cell_kind(dialect: str, kind: sa.types.TypeEngine) -> str | None:
    """How a column takes csv text: 'text' (the database reads it by the column's type), 'bool',
    'infer' (SQLite columns without a type: values inferred); None: documents instead."""
    if dialect == "sqlite":
        if isinstance(kind, sa.Boolean):
            return "bool"
        if isinstance(kind, sa.Integer | sa.Float | sa.Numeric | sa.String):   # Float: not a Numeric in 2.1
            return "text"
        return "infer" if isinstance(kind, sa.types.NullType) else None
    if isinstance(kind, sa.JSON | sa.ARRAY | sa.LargeBinary | sa.types.NullType) or \
            type(kind).__name__ in ("JSONB", "HSTORE", "BYTEA"):
        return None
    return "text"   # PostgreSQL's input function for the column's type reads the cell


# COPY text format: backslash escapes for the characters that delimit rows and columns
_COPY_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_SPECIAL = ("\\", "\t", "\n", "\r")


def _copy_cell(value: Any, json_column: bool) -> str:
    if value is None:
        return "\\N"
    if json_column or isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False).translate(_COPY_ESCAPE)
    kind = type(value)
    if kind is bool:
        return "t" if value else "f"
    if kind is str:
        return value.translate(_COPY_ESCAPE)
    if kind is float:
        return repr(value)
    return str(value)   # int


def _copy_text(values_by_column: list[tuple], as_json: list[bool]) -> str | None:
    """A batch as COPY text (tab-separated, escaped, \\N for null), built column by column; None
    when a value is not plain (dates, decimals, ...): then psycopg's write_row adapts each one."""
    columns = []
    for values, json_column in zip(values_by_column, as_json):
        kinds = set(map(type, values))
        if not kinds <= _PLAIN_SET:
            return None
        if json_column or dict in kinds or list in kinds or len(kinds) > 1:
            column = [_copy_cell(v, json_column) for v in values]
        elif str in kinds:
            column = values
            joined = "".join(values)
            if any(c in joined for c in _COPY_SPECIAL):
                column = [v.translate(_COPY_ESCAPE) for v in values]
        elif int in kinds or float in kinds:
            column = _number_texts(values, int in kinds)
        elif bool in kinds:
            column = ["t" if v else "f" for v in values]
        else:
            column = ["\\N"] * len(values)
        columns.append(column)
    text = "\n".join(map("\t".join, zip(*columns))) + "\n"
    if "\x00" in text:
        return None   # let psycopg report it as it always did
    return text


def _number_texts(values: tuple, ints: bool) -> list[str]:
    """The text of a column of ints (int_texts) or of floats: orjson writes the whole column in one
    call, several times faster than repr() a value (the shortest text that reads back as the same
    float, as repr's is). It writes NaN and infinities as null: those columns take repr()."""
    import orjson

    if ints or not values:
        return int_texts(values)
    text = orjson.dumps(values)
    if b"null" in text:
        return list(map(float.__repr__, values))
    return text[1:-1].decode().split(",")


def _copy_value(value: Any, json_column: bool) -> Any:
    if value is None:
        return None
    if json_column or isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


_JSON_VALID = re.compile(r"json_valid\(`((?:[^`]|``)+)`\)", re.IGNORECASE)


def _restore_mariadb_json(table: sa.Table, conn: sa.Connection) -> None:
    """MariaDB's JSON is LONGTEXT with a column-level json_valid() check: reflect it back as JSON."""
    try:
        checks = conn.execute(sa.text(
            "select check_clause from information_schema.check_constraints "
            "where constraint_schema = coalesce(:schema, database()) and table_name = :table"),
            {"schema": table.schema, "table": table.name}).scalars().all()
    except sa_exc.DBAPIError:
        return   # MySQL < 8.0.16 has no such view; its JSON type reflects as JSON anyway
    for clause in checks:
        match = _JSON_VALID.search(clause or "")
        if match:
            column = match.group(1).replace("``", "`")
            if column in table.c:
                table.c[column].type = sa.JSON()


def _check_identifier(name: str, what: str) -> None:
    if not name or "\x00" in name or len(name) > 63:
        raise UsageError(f"invalid {what} name {name!r}")


def _same_keys(docs: list[dict]) -> Iterator[tuple[list[str], list[dict], list[tuple]]]:
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
    shape = None
    for doc in docs:
        k = tuple(doc)
        if group and k != shape:
            yield list(shape), group, _values(group, list(shape))
            group = []
        shape = k
        group.append(doc)
    if group:
        yield list(shape), group, _values(group, list(shape))


def _same_key_columns(docs: list[dict]) -> Iterator[tuple[list[str], int, list]]:
    """(keys, how many documents, their values column by column) for each run of documents with the
    same keys, as _same_keys groups them; the columns taken straight from the documents when all
    have the same keys (a third of the work of rows turned into columns)."""
    if docs:
        keys = list(docs[0])
        if keys and len(set(map(len, docs))) == 1:
            try:
                yield keys, len(docs), [list(map(itemgetter(k), docs)) for k in keys]
                return
            except KeyError:
                pass
    for keys, group, rows in _same_keys(docs):
        yield keys, len(group), list(zip(*rows))


def _values(docs: list[dict], keys: list[str]) -> list[tuple]:
    if not keys:
        return [()] * len(docs)
    if len(keys) == 1:
        return [(doc[keys[0]],) for doc in docs]
    return list(map(itemgetter(*keys), docs))


def _sql_type(values: list[Any]) -> sa.types.TypeEngine:
    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return sa.Text()
    if kinds <= {bool}:
        return sa.Boolean()
    if kinds <= {int}:
        return sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    if kinds <= {int, float}:
        return sa.Float(precision=53).with_variant(sa.Float(), "sqlite")
    if kinds <= {decimal.Decimal, int}:
        return sa.Numeric()
    if kinds <= {dt.datetime}:
        return sa.DateTime(timezone=True)
    if kinds <= {dt.date}:
        return sa.Date()
    if any(issubclass(k, dict | list) for k in kinds):
        return sa.JSON()
    return sa.Text()


def _infer_columns(docs: list[dict]) -> dict[str, sa.types.TypeEngine]:
    names: dict[str, list[Any]] = {}
    for doc in docs:
        for key, value in doc.items():
            names.setdefault(key, []).append(value)
    for key in names:
        _check_identifier(key, "column")
    return {key: _sql_type(values) for key, values in names.items()}


def _partial(message: str, committed: int, name: str, in_tx: bool) -> str:
    if committed and not in_tx:
        return f"{message} ({committed} rows were committed to {name} before this batch; the failing batch was rolled back)"
    return message
