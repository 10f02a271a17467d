"""SQLite through the standard library's sqlite3: connect, reflection (PRAGMA table_info,
index_list), values read by the declared column types, multi-row INSERTs, csv cells read by the
columns' affinity, and exports whose JSON SQLite builds itself (sqlite_json)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import decimal
import functools
import json
import math
import re
import sqlite3
from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from typing import Any, cast

from dbsh.drivers.base import Result
from dbsh.drivers.sql import sqlite_json
from dbsh.drivers.sql.compile import (
    BOOL,
    DATE,
    DATETIME,
    JSON,
    NUMBER,
    PLAIN,
    TEXT,
    TIME,
    Column,
    Compiler,
    Dialect,
    Table,
)
from dbsh.drivers.sql.session import SqlSession, same_keys
from dbsh.errors import ConnectError, UsageError

_SCALARS = frozenset((str, int, float, bool, type(None)))
_NOT_FINITE = (math.inf, -math.inf)
_PLAIN = _SCALARS | {dict, list}
MAX_PARAMS = 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
# a csv cell's SQL, by the column's kind (_cell_kind); {} is the parameter's number
_CELL = {
    "text": "NULLIF(?{0},'')",
    "bool": "CASE lower(?{0}) WHEN 'true' THEN 1 WHEN 'false' THEN 0 ELSE NULLIF(?{0},'') END",
    "infer": "?{0}",
}


class SqliteDialect(Dialect):
    name = "SQLite"
    paramstyle = "qmark"
    no_limit = "-1"
    TYPES = {"text": "TEXT", "bool": "BOOLEAN", "int": "INTEGER", "float": "FLOAT", "numeric": "NUMERIC",
             "datetime": "DATETIME", "date": "DATE", "json": "JSON"}
    SERIAL = {"int": "INTEGER", "serial": "INTEGER"}

    def regex(self, column: str, pattern: str, options: str, c: Compiler) -> str:
        # SQLite has no regular expressions of its own: Python's, registered on the connection
        return f"dbsh_regexp({column}, {c.bind(pattern)}, {c.bind(options)})"

    def json_contains(self, column: str, value: Any, c: Compiler) -> str:
        if isinstance(value, bool):
            typed = f"e.type = '{'true' if value else 'false'}'"
        elif isinstance(value, int | float):
            typed = f"e.type IN ('integer', 'real') AND e.value = {c.bind(value)}"
        else:
            typed = f"e.type = 'text' AND e.value = {c.bind(value)}"
        # the value itself (json_each gives a scalar as one row without a key) or an array's element
        return f"EXISTS (SELECT 1 FROM json_each({column}) AS e WHERE (e.key IS NULL OR json_type({column}) = " \
               f"'array') AND {typed})"

    def bind_value(self, value: Any, kind: str) -> Any:
        if value is None:
            return None
        if kind == JSON or isinstance(value, dict | list):
            return json.dumps(value, ensure_ascii=False, default=str)
        return sqlite_value(value)


DIALECT = SqliteDialect()


def sqlite_value(value: Any) -> Any:
    """A value sqlite3 binds: dates as ISO 8601 text (SQLite's date functions read it), decimals as
    their exact text (a NUMERIC column makes a number of it), anything else unknown as text."""
    kind = type(value)
    if kind in _SCALARS or kind is bytes:
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat(" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, int | float | str | bytes):
        return value
    return str(value)


@functools.lru_cache(maxsize=64)
def _pattern(pattern: str, options: str) -> re.Pattern:
    flags = 0
    for letter in options:
        flags |= {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}[letter]
    return re.compile(pattern, flags)


def _regexp(value: Any, pattern: str, options: str) -> int:
    """MongoDB's $regex: a match anywhere in a string; other values never match."""
    return int(isinstance(value, str) and _pattern(pattern, options).search(value) is not None)


def _kind(declared: str) -> str:
    """What dbsh makes of a column of this declared type: SQLite's affinity rules, and the types
    whose values are read back as what they were (booleans, JSON, dates)."""
    upper = declared.upper()
    word = upper.split("(", 1)[0].strip()
    if word in ("BOOLEAN", "BOOL"):
        return BOOL
    if word == "JSON":
        return JSON
    if word in ("DATETIME", "TIMESTAMP"):
        return DATETIME
    if word == "DATE":
        return DATE
    if word == "TIME":
        return TIME
    if "INT" in upper:
        return NUMBER
    if any(w in upper for w in ("CHAR", "CLOB", "TEXT")):
        return TEXT
    if "BLOB" in upper or not upper:
        return PLAIN
    return NUMBER   # REAL, FLOA, DOUB and NUMERIC affinity


def _read(kind: str):
    """The function turning a stored value of a column of this kind into what dbsh shows."""
    if kind == BOOL:
        return lambda v: v if v is None else bool(v)
    parse = {JSON: json.loads, DATETIME: dt.datetime.fromisoformat, DATE: dt.date.fromisoformat,
             TIME: dt.time.fromisoformat}.get(kind)
    if parse is None:
        return None

    def read(value):
        if isinstance(value, str):
            try:
                return parse(value)
            except ValueError:
                return value   # not what the type says: shown as stored
        return value
    return read


class SqliteSession(SqlSession):
    capabilities = dataclasses.replace(SqlSession.capabilities, embedded=True)
    name = "SQLite"
    dialect = DIALECT
    scanner = "sqlite"
    paramstyle = "named"
    Error = sqlite3.Error
    BEGIN_WRITE = "BEGIN IMMEDIATE"   # take the write lock now: waits (busy timeout) instead of failing later
    READONLY = "PRAGMA query_only = {}"
    EXPLAIN = "EXPLAIN QUERY PLAN "
    BUSY_TIMEOUT_MS = 30000

    def _connect(self):
        path = sqlite_path(self.target.url)
        if path != ":memory:" and not Path(path).parent.exists():
            raise ConnectError(f"cannot open SQLite database {path}: directory does not exist")
        self.path = path
        try:
            conn = sqlite3.connect(path, isolation_level=None)   # autocommit: BEGIN only when asked
        except ValueError as e:   # a NUL in the path
            raise UsageError(f"invalid SQLite path {path!r}: {e}") from None
        except sqlite3.Error as e:
            raise self._connect_error(e) from None
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA busy_timeout = {self.BUSY_TIMEOUT_MS}")
        except sqlite3.Error as e:
            conn.close()
            raise self._connect_error(e) from None
        conn.create_function("dbsh_regexp", 3, _regexp, deterministic=True)
        self._statements: dict[tuple, str] = {}   # multi-row INSERT texts built for bulk inserts
        return conn

    def _readonly_word(self, flag: bool) -> str:
        return "ON" if flag else "OFF"

    @property
    def in_transaction(self) -> bool:
        return self.conn is not None and self.conn.in_transaction

    def cancel(self) -> None:
        """Interrupt the running statement (sqlite3 never sees Ctrl-C inside one step)."""
        with contextlib.suppress(Exception):
            self.conn.interrupt()

    def server_info(self) -> dict[str, Any]:
        return {"backend": "SQLite", "version": sqlite3.sqlite_version, "database": self.path}

    # -- catalog -----------------------------------------------------------------------------
    DATABASES_SQL = "SELECT name, file, name = 'main' AS current FROM pragma_database_list ORDER BY seq"
    COLUMNS_SQL = ("SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p "
                   "WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
                   "ORDER BY m.name, p.cid")
    REFERENCES_SQL = ("SELECT m.name, f.id, f.\"from\", f.\"table\", f.\"to\" FROM sqlite_master m "
                      "JOIN pragma_foreign_key_list(m.name) f WHERE m.type = 'table' ORDER BY m.name, f.id, f.seq")

    def _collections(self) -> list[str]:
        return [r[0] for r in self._all("SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                                        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")]

    def _reflect(self, name: str) -> Table | None:
        rows = self._all("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?)", (name,))
        if not rows:
            return None
        table = Table(name, None)
        for column, declared, notnull, default, pk in rows:
            table.columns[column] = Column(column, declared or "", _kind(declared or ""), not notnull, default, pk > 0)
        for index, unique, origin in self._all("SELECT name, \"unique\", origin FROM pragma_index_list(?)", (name,)):
            if origin == "pk":
                continue
            for (column,) in self._all("SELECT name FROM pragma_index_info(?)", (index,)):
                if column in table.columns:
                    table.indexes.setdefault(column, []).append(index + (" (unique)" if unique else ""))
        return table

    def _converter(self, table: Table, names: list[str]):
        reads = [_read(table.columns[n].kind) for n in names]
        if not any(reads):
            return None
        pairs = [(i, f) for i, f in enumerate(reads) if f is not None]

        def convert(row: tuple) -> list:
            values = list(row)
            for i, f in pairs:
                values[i] = f(values[i])
            return values
        return convert

    # -- reading -----------------------------------------------------------------------------
    def find(self, name, where, *, fields=None, sort=None, limit=None, skip=None) -> Result:
        table, sql, params, names = self._select(name, where, fields, sort, limit, skip)
        convert = self._converter(table, names)
        if sqlite_json.row_sql(self.dialect, table, names, exact=True) is None:
            return self._stream(sql, params, convert=convert)
        # SQLite can build the JSON itself: the query runs once a renderer asks for rows or for JSON
        streamed: list[Result] = []

        def rows():
            streamed.append(self._stream(sql, params, convert=convert))
            yield from streamed[0]

        def json_lines():
            if sort or skip or where.doc:   # in the query's own order and plan, a row at a time
                return sqlite_json.lines(self, table, names, (sql, params))
            return sqlite_json.lines(self, table, names, None, limit)

        def close() -> None:
            if streamed:
                streamed[0].close()

        result = Result(rows(), names, close=close)
        result.json_lines = json_lines
        return result

    # -- writing -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def bulk_load(self) -> Iterator[None]:
        """In the default rollback-journal mode the journal is truncated instead of deleted at each
        batch's commit (as safe; the commits cost a third less here), and put back after."""
        switched = False
        if not self.in_transaction and str(self._scalar("PRAGMA journal_mode")).lower() == "delete":
            self._run("PRAGMA journal_mode = TRUNCATE").close()
            switched = True
        try:
            yield
        finally:
            if switched and self.conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("PRAGMA journal_mode = DELETE")   # removes the emptied journal file

    def _write_rows(self, table: Table, keys: list[str], rows: list[tuple], scalars: bool) -> None:
        values = list(chain.from_iterable(rows))
        kinds = set(map(type, values))
        if float in kinds:
            check_finite(values)
        if kinds <= _PLAIN and not any(table.columns[k].kind == JSON for k in keys) \
                and dict not in kinds and list not in kinds:
            self._rows(table, keys, ["?{}"] * len(keys), values)
        else:
            self._rows(table, keys, ["?{}"] * len(keys),
                       list(chain.from_iterable(self.bind_row(table, keys, row) for row in rows)))

    def _rows(self, table: Table, keys: list[str], cells: list[str], values: list) -> None:
        """Values (row after row) in multi-row INSERTs, as many rows a statement as SQLite takes
        parameters; ``cells`` are the SQL for each column's value, ``?{}`` its parameter."""
        width = len(keys)
        per = max(1, min(MAX_PARAMS // width, 1000)) * width
        head = Compiler(self.dialect, table).insert_head(keys)

        def statement(n: int) -> str:
            key = (head, tuple(cells), n)
            text = self._statements.get(key)
            if text is None:
                if len(self._statements) > 64:
                    self._statements.clear()
                text = self._statements[key] = head + ",".join(
                    "(" + ",".join(c.format(r * width + i + 1) for i, c in enumerate(cells)) + ")" for r in range(n))
            return text

        cursor = self.conn.cursor()
        try:
            with self._errors():
                for start in range(0, len(values), per):
                    part = values[start:start + per]
                    cursor.execute(statement(len(part) // width), part)
        finally:
            cursor.close()

    def _write_cells(self, table: Table, batch) -> bool:
        """csv cells (row after row) into SQLite: affinity types the text; '' is null; booleans read
        true/false in any case; untyped columns (no affinity) take inferred values."""
        from dbsh.inputs import infer_column

        header = batch.header
        kinds = [_cell_kind(table.columns[h]) for h in header]
        if None in kinds:
            return False
        cells = batch.flat_cells()
        width = len(header)
        sql = []
        for i, kind in enumerate(cast(list[str], kinds)):   # (no None: that returned above)
            column = cells[i::width]
            if kind == "infer":
                cells[i::width] = infer_column(column)
            # NULLIF only for a column with empty cells in this batch: a function call less a cell
            sql.append("?{}" if kind == "text" and "" not in column else _CELL[kind])
        self._rows(table, header, sql, cells)
        return True

    @property
    def prepares_apart(self) -> bool:
        return True

    def prepare_batch(self, name, batch) -> None:
        """For each run of documents with the same keys: (keys, how many, every value row after row)
        when all are scalars, else None. Pure work on the batch: it runs in another process."""
        if batch.header is not None or not batch.docs:
            return
        prepared = []
        for keys, group, rows in same_keys(batch.docs):
            values = list(chain.from_iterable(rows))
            kinds = set(map(type, values))
            # a number too large for a float (1e400 in JSON): written by the documents' path, which says so
            plain = kinds <= _SCALARS and not (float in kinds
                                               and (_NOT_FINITE[0] in values or _NOT_FINITE[1] in values))
            prepared.append((keys, len(group), values if plain else None))
        batch.prepared = prepared

    def _write_prepared(self, name: str, prepared) -> bool:
        table = self._tables.get(name)
        if table is None:
            return False
        for keys, _, ready in prepared:
            if ready is None or not keys or not all(k in table.columns and table.columns[k].kind != JSON
                                                    for k in keys):
                return False
        with self._transaction(write=True):
            for keys, _, values in prepared:
                self._rows(table, keys, ["?{}"] * len(keys), values)
        return True


def check_finite(values: list) -> None:
    """JSON has no infinity: a float that is one was a number too large for a float (1e400)."""
    if _NOT_FINITE[0] in values or _NOT_FINITE[1] in values:
        raise UsageError("number out of range: a value is too large for a floating-point number (e.g. 1e400)")


def _cell_kind(column: Column) -> str | None:
    """How a column takes csv text: 'text' (SQLite's affinity reads it), 'bool', 'infer' (a column
    without a type: values inferred); None: documents instead."""
    if column.kind == BOOL:
        return "bool"
    if column.kind in (TEXT, NUMBER):
        return "text"
    return "infer" if column.kind == PLAIN and not column.type else None


def sqlite_path(url: str) -> str:
    """The file of a sqlite:///relative.db or sqlite:////absolute.db URL (:memory: for sqlite://)."""
    rest = url.split("://", 1)[1] if "://" in url else ""
    if not rest or rest in ("/", "/:memory:"):
        return ":memory:"
    path = rest[1:] if rest.startswith("/") else rest
    return path.split("?", 1)[0]
