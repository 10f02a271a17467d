"""PostgreSQL through psycopg 3: connect (timeout, application_name), reflection from pg_catalog,
server-side cursors, the transaction state as psycopg reports it, and COPY for bulk loads (the
COPY text of a batch made by the reading process, dbsh.copy.read_ahead)."""

from __future__ import annotations

import json
import re
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.types.string import TextLoader

from dbsh.drivers.base import int_texts
from dbsh.drivers.sql import urls
from dbsh.drivers.sql.compile import JSON, TEXT, Column, Compiler, Dialect, Table
from dbsh.drivers.sql.session import SqlSession, same_key_columns
from dbsh.errors import UsageError, one_line

_PLAIN_SET = frozenset((str, int, float, bool, type(None), dict, list))
# COPY text format: backslash escapes for the characters that delimit rows and columns
_COPY_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_SPECIAL = ("\\", "\t", "\n", "\r")
_FLAGS = re.compile(r"\(\?([a-z]+)\)")


class PostgresDialect(Dialect):
    name = "PostgreSQL"
    paramstyle = "format"
    max_name_bytes = 63   # NAMEDATALEN - 1: PostgreSQL cuts longer names short
    nulls_first_sql = " NULLS FIRST"
    nulls_last_sql = " NULLS LAST"
    SERIAL = {"int": "BIGSERIAL", "serial": "SERIAL"}

    def regex(self, column: str, pattern: str, options: str, c: Compiler) -> str:
        """MongoDB's (PCRE's) meaning in PostgreSQL's regular expressions: '.' and [^...] stop at a
        newline unless s, ^ and $ match at lines with m (the embedded options p, n, s, w), x."""
        newline = {(False, False): "p", (True, False): "n", (False, True): "s", (True, True): "w"}[
            ("m" in options, "s" in options)]
        letters = newline + ("x" if "x" in options else "")
        own = _FLAGS.match(pattern)   # the pattern's own leading options come after ours and win
        if own:
            letters += own.group(1)
            pattern = pattern[own.end():]
        operator = "~*" if "i" in options else "~"
        return f"{column} {operator} {c.bind(f'(?{letters})' + pattern)}"

    def json_contains(self, column: str, value: Any, c: Compiler) -> str:
        # jsonb containment: an array contains a scalar among its elements, a scalar contains itself
        return f"CAST({column} AS jsonb) @> CAST({c.bind(json.dumps(value))} AS jsonb)"


DIALECT = PostgresDialect()


class PostgresSession(SqlSession):
    name = "PostgreSQL"
    dialect = DIALECT
    scanner = "postgresql"
    paramstyle = "format"
    Error = psycopg.Error
    READONLY = "SET SESSION CHARACTERISTICS AS TRANSACTION READ {}"
    streams_in_transaction = True   # a server-side cursor (DECLARE) lives in a transaction
    _cursors = 0

    def _lost(self, e: BaseException) -> bool:
        conn = self.conn
        return isinstance(e, psycopg.OperationalError) and (conn is None or conn.broken or conn.closed)

    def _connect(self):
        # what the URL leaves out stays None, so libpq fills it in as psql would: PG* variables,
        # ~/.pgpass, a pg_service entry (postgresql:///?service=shop), the local socket
        parts = urls.server_parts(self.target, None)
        kwargs = {"host": parts["host"], "port": parts["port"], "user": parts["user"], "password": parts["password"],
                  "dbname": parts["database"], "connect_timeout": max(2, round(self.connect_timeout)),
                  "application_name": "dbsh", **parts["options"]}
        try:
            conn = psycopg.connect(autocommit=True, **kwargs)
        except psycopg.ProgrammingError as e:   # a bad option in the URL
            raise UsageError(f"invalid URL {self.target.display()}: {self._message(e)}") from None
        except psycopg.Error as e:
            raise self._connect_error(e) from None
        # an interval as PostgreSQL writes it ("1 mon 2 days 03:00:00"), exactly, not as seconds
        conn.adapters.register_loader("interval", TextLoader)
        return conn

    @property
    def in_transaction(self) -> bool:
        conn = self.conn
        return conn is not None and conn.info.transaction_status in (
            TransactionStatus.INTRANS, TransactionStatus.INERROR, TransactionStatus.ACTIVE)

    def _message(self, e: BaseException) -> str:
        text = one_line(str(e))
        if isinstance(e, psycopg.Error) and self.conn is not None and not self.conn.closed and \
                self.conn.info.transaction_status == TransactionStatus.INERROR:
            text += " (the transaction is aborted: ROLLBACK or \\rollback ends it)"
        return text

    def ping(self) -> float:
        if self.conn is not None and not self.conn.closed and \
                self.conn.info.transaction_status == TransactionStatus.INERROR:
            return 0.0   # an aborted transaction answers nothing but ROLLBACK; the connection is alive
        return super().ping()

    def server_info(self) -> dict[str, Any]:
        version, database = self._all("select current_setting('server_version'), current_database()")[0]
        return {"backend": "PostgreSQL", "version": str(version), "database": database}

    def _cursor(self, stream: bool):
        if not stream:
            return self.conn.cursor()
        PostgresSession._cursors += 1
        return self.conn.cursor(name=f"dbsh_{PostgresSession._cursors}")

    # -- catalog -----------------------------------------------------------------------------
    DATABASES_SQL = ("SELECT datname AS name, datname = current_database() AS current FROM pg_database "
                     "WHERE NOT datistemplate ORDER BY datname")
    COLUMNS_SQL = ("SELECT c.relname, a.attname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                   "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
                   "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'f') "
                   "ORDER BY c.relname, a.attnum")
    REFERENCES_SQL = ("SELECT cl.relname, con.conname, a.attname, rc.relname, ra.attname FROM pg_constraint con "
                      "JOIN pg_class cl ON cl.oid = con.conrelid JOIN pg_namespace n ON n.oid = cl.relnamespace "
                      "JOIN pg_class rc ON rc.oid = con.confrelid "
                      "CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(mine, theirs, i) "
                      "JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.mine "
                      "JOIN pg_attribute ra ON ra.attrelid = con.confrelid AND ra.attnum = k.theirs "
                      "WHERE con.contype = 'f' AND n.nspname = current_schema() ORDER BY cl.relname, con.conname, k.i")

    def _collections(self) -> list[str]:
        return [r[0] for r in self._all(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'f')")]

    def _oid(self, name: str) -> tuple[int, str, str | None] | None:
        plain = DIALECT.quote_char + name.replace('"', '""') + DIALECT.quote_char
        oid = self._scalar("SELECT to_regclass(%s)::oid", (plain,))
        if oid is not None:
            return oid, name, None
        if "." in name:
            schema, _, bare = name.rpartition(".")
            qualified = '"' + schema.replace('"', '""') + '"."' + bare.replace('"', '""') + '"'
            oid = self._scalar("SELECT to_regclass(%s)::oid", (qualified,))
            if oid is not None:
                return oid, bare, schema
        return None

    def _reflect(self, name: str) -> Table | None:
        found = self._oid(name)
        if found is None:
            return None
        oid, bare, schema = found
        table = Table(bare, schema)
        keys = {r[0] for r in self._all(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s AND i.indisprimary", (oid,))}
        for column, declared, nullable, default, typname, category in self._all(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, "
                "pg_get_expr(d.adbin, d.adrelid), t.typname, t.typcategory FROM pg_attribute a "
                "JOIN pg_type t ON t.oid = a.atttypid "
                "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
                "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", (oid,)):
            kind = JSON if typname in ("json", "jsonb") else TEXT if category == "S" else "plain"
            table.columns[column] = Column(column, declared, kind, nullable, default, column in keys)
        for index, unique, column in self._all(
                "SELECT i.relname, x.indisunique, a.attname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                "JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = ANY(x.indkey) "
                "WHERE x.indrelid = %s AND NOT x.indisprimary ORDER BY i.relname", (oid,)):
            table.indexes.setdefault(column, []).append(index + (" (unique)" if unique else ""))
        return table

    # -- COPY ----------------------------------------------------------------------------------
    def _copy_into(self, table: Table, keys: list[str]) -> str:
        """COPY into these columns of the table FROM STDIN (text format; options may follow): a
        statement psycopg sends as it is (no parameters), so the names' '%' stay single."""
        columns = ", ".join(DIALECT.ident(k) for k in keys)
        return f"COPY {DIALECT.table_name(table, DIALECT.ident)} ({columns}) FROM STDIN"

    def _copy(self, statement: str, text: str | bytes | None = None, rows=None) -> None:
        try:
            with self.conn.cursor() as cursor, cursor.copy(statement) as copy:
                if text is not None:
                    copy.write(text)
                else:
                    for row in rows:
                        copy.write_row(row)
        except psycopg.Error as e:
            raise self._error(e) from None

    def _write_rows(self, table: Table, keys: list[str], rows: list[tuple], scalars: bool) -> None:
        """PostgreSQL's fastest bulk path: COPY FROM STDIN in the batch's transaction. Text format, so
        the server parses each value as its column's type; JSON columns get JSON text. Plain values
        (text, numbers, booleans, nulls, JSON) go as pre-formatted COPY text, one write per batch."""
        as_json = [table.columns[k].kind == JSON for k in keys]
        text = copy_text(list(zip(*rows)), as_json)
        self._copy(self._copy_into(table, keys), text,
                   None if text is not None else ([_copy_value(v, j) for v, j in zip(row, as_json)] for row in rows))

    @property
    def prepares_apart(self) -> bool:
        return True

    def prepare_batch(self, name, batch) -> None:
        """For each run of documents with the same keys: (keys, how many, their COPY text as UTF-8, as
        it is for columns that are not JSON), None when a value is not plain. insert_batch checks
        that against the table. Pure work on the batch: it runs in another process."""
        if batch.header is not None or not batch.docs:
            return
        prepared = []
        for keys, n, columns in same_key_columns(batch.docs):
            text = copy_text(columns, [False] * len(keys))
            prepared.append((keys, n, None if text is None else text.encode()))
        batch.prepared = prepared

    def _write_prepared(self, name: str, prepared) -> bool:
        """The COPY text (UTF-8) of each run, into a table known to have its columns, none of them
        JSON; False, having written nothing, for any other batch, or on a connection whose client
        encoding is another (psycopg then encodes the values, as it always has)."""
        table = self._tables.get(name)
        if table is None or self.conn.info.encoding != "utf-8":
            return False
        for keys, _, ready in prepared:
            if ready is None or not keys or \
                    not all(k in table.columns and table.columns[k].kind != JSON for k in keys):
                return False
        with self._transaction(write=True):
            for keys, _, text in prepared:
                self._copy(self._copy_into(table, keys), text)
        return True

    def _write_cells(self, table: Table, batch) -> bool:
        """csv cells by COPY, '' meaning null: the server reads each cell as its column's type, exactly
        as psql \\copy does. Plain lines go as they were read (COPY csv); other cells as COPY text,
        escaped. Columns whose input cells cannot be (JSON, arrays, bytea): False."""
        if any(_takes_documents(table.columns[h]) for h in batch.header):
            return False
        into = self._copy_into(table, batch.header)
        if batch.text is not None:
            self._copy(into + f" (FORMAT csv, DELIMITER '{batch.delimiter}')", batch.text)
            return True
        rows = batch.cells
        text = "\n".join(map("\t".join, rows)) + "\n"
        if ("\\" in text or "\r" in text or text.count("\n") != len(rows)
                or text.count("\t") != len(rows) * (len(batch.header) - 1)):   # a cell holds a delimiter
            text = "\n".join("\t".join(c.translate(_COPY_ESCAPE) for c in row) for row in rows) + "\n"
        self._copy(into + " (FORMAT text, NULL '')", text)
        return True


def _takes_documents(column: Column) -> bool:
    declared = column.type.lower()
    return column.kind == JSON or declared.endswith("]") or declared in ("bytea", "hstore")


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


def copy_text(values_by_column: list, as_json: list[bool]) -> str | None:
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


def _number_texts(values, ints: bool) -> list[str]:
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

