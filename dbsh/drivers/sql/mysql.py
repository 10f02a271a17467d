"""MySQL and MariaDB through PyMySQL: connect (connect and first-reply timeouts), reflection from
information_schema (MariaDB's JSON columns are LONGTEXT with a json_valid() check), the transaction
state from the server's status flags, unbuffered cursors, multi-row INSERTs, KILL QUERY to cancel."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from itertools import chain
from typing import Any

import pymysql
import pymysql.cursors
from pymysql.constants import CLIENT, FIELD_TYPE, SERVER_STATUS
from pymysql.converters import conversions

from dbsh.drivers.sql import urls
from dbsh.drivers.sql.compile import JSON, TEXT, Column, Compiler, Dialect, Table
from dbsh.drivers.sql.session import SqlSession
from dbsh.errors import QueryError, UsageError, one_line

_JSON_VALID = re.compile(r"json_valid\(`((?:[^`]|``)+)`\)", re.IGNORECASE)
_SCALARS = frozenset((str, int, float, bool, type(None)))
# values as the server writes them where PyMySQL would make something else: TIME as text
# ('12:30:00', '-838:59:59'), not a timedelta of seconds
_DECODERS: dict[int | type[Any], Callable[[Any], str] | Callable[[str], Any]] = {**conversions, FIELD_TYPE.TIME: str}


class MysqlDialect(Dialect):
    quote_char = "`"
    paramstyle = "format"
    no_limit = "18446744073709551615"
    derived_pick = True
    exact_text = "CAST({} AS BINARY)"   # the default collations ignore case; MongoDB's comparisons do not
    default_values = "() VALUES ()"
    TYPES = {"text": "TEXT", "bool": "BOOL", "int": "BIGINT", "float": "FLOAT(53)", "numeric": "NUMERIC",
             "datetime": "DATETIME", "date": "DATE", "json": "JSON"}
    SERIAL = {"int": "BIGINT", "serial": "INTEGER"}
    AUTOINCREMENT = " AUTO_INCREMENT"
    KEY_TYPES = {"text": "VARCHAR(255)", "json": "VARCHAR(255)"}   # a TEXT column cannot be a key

    def __init__(self, name: str):
        self.name = name

    def check_name(self, name: str, what: str) -> None:
        super().check_name(name, what)
        if len(name) > 64 or name != name.rstrip(" "):
            raise UsageError(f"invalid {what} name {name[:40]!r}: {self.name} names have at most 64 characters "
                             f"and do not end with a space")

    def regex(self, column: str, pattern: str, options: str, c: Compiler) -> str:
        # PCRE's own options, first in the pattern: (?-i) makes the match case-sensitive whatever
        # the column's collation (REGEXP follows a case-insensitive one otherwise)
        flags = "".join(sorted(set(options) - {"i"}))
        prefix = f"(?i{flags})" if "i" in options else f"(?{flags}-i)"
        return f"{column} REGEXP {c.bind(prefix + pattern)}"

    def json_contains(self, column: str, value: Any, c: Compiler) -> str:
        # an array contains a scalar among its elements; a scalar contains one equal to it
        return f"JSON_CONTAINS({column}, {c.bind(json.dumps(value))})"


class MysqlSession(SqlSession):
    scanner = "mysql"
    paramstyle = "format"
    Error = pymysql.err.MySQLError
    BEGIN_WRITE = "START TRANSACTION"
    READONLY = "SET SESSION TRANSACTION READ {}"
    MARIADB_CHARSET = "utf8mb4"

    # the server went away / lost the connection / cannot reach it (CR_SERVER_GONE_ERROR, CR_SERVER_LOST)
    LOST = {2006, 2013, 2003, 2055}

    def _lost(self, e: BaseException) -> bool:
        code = e.args[0] if e.args and isinstance(e.args[0], int) else None
        return isinstance(e, pymysql.err.OperationalError) and code in self.LOST

    def __init__(self, target):
        self.name = "MariaDB" if urls.base_scheme(target.url) == "mariadb" else "MySQL"
        self.dialect = MysqlDialect(self.name)
        super().__init__(target)

    def _connect(self):
        parts = urls.server_parts(self.target, 3306)
        options = {"charset": self.MARIADB_CHARSET, **parts["options"]}
        try:
            conn = pymysql.connect(host=parts["host"] or "localhost", port=parts["port"], user=parts["user"],
                                   password=parts["password"] or "", database=parts["database"],
                                   connect_timeout=self.connect_timeout, read_timeout=self.connect_timeout,
                                   autocommit=True, conv=_DECODERS, client_flag=CLIENT.FOUND_ROWS, **options)
        except TypeError as e:   # an option PyMySQL does not know, from the URL's query
            raise UsageError(f"invalid URL {self.target.display()}: {e}") from None
        except (pymysql.err.MySQLError, OSError) as e:
            raise self._connect_error(e) from None
        # the first reply came within the timeout; a long query may take longer (a private attribute)
        conn._read_timeout = None  # type: ignore[attr-defined]
        if "mariadb" in conn.get_server_info().lower():
            self.name = self.dialect.name = "MariaDB"
        return conn

    def _message(self, e: BaseException) -> str:
        args: tuple[Any, ...] = getattr(e, "args", ())
        # PyMySQL errors are (code, message) tuples: show the message, as the mariadb client does
        if len(args) == 2 and isinstance(args[0], int):
            return one_line(f"{args[1]} (error {args[0]})")
        return one_line(str(e))

    @property
    def in_transaction(self) -> bool:
        conn = self.conn
        return conn is not None and bool(conn.server_status & SERVER_STATUS.SERVER_STATUS_IN_TRANS)

    def server_info(self) -> dict[str, Any]:
        version, database = self._all("select version(), database()")[0]
        name = "MariaDB" if "mariadb" in str(version).lower() else "MySQL"
        return {"backend": name, "version": str(version), "database": database}

    def cancel(self) -> None:
        """KILL QUERY the running statement, from a connection of its own (Ctrl-C in the shell)."""
        with contextlib.suppress(Exception):
            parts = urls.server_parts(self.target, 3306)
            other = pymysql.connect(host=parts["host"] or "localhost", port=parts["port"], user=parts["user"],
                                    password=parts["password"] or "", connect_timeout=5)
            try:
                with other.cursor() as cursor:
                    cursor.execute("KILL QUERY %s", (self.conn.thread_id(),))
            finally:
                other.close()

    def _cursor(self, stream: bool):
        return self.conn.cursor(pymysql.cursors.SSCursor if stream else pymysql.cursors.Cursor)

    # -- catalog -----------------------------------------------------------------------------
    DATABASES_SQL = ("SELECT schema_name AS name, schema_name = database() AS current "
                     "FROM information_schema.schemata ORDER BY schema_name")
    COLUMNS_SQL = ("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = database() "
                   "ORDER BY table_name, ordinal_position")
    REFERENCES_SQL = ("SELECT table_name, constraint_name, column_name, referenced_table_name, "
                      "referenced_column_name FROM information_schema.key_column_usage "
                      "WHERE table_schema = database() AND referenced_table_name IS NOT NULL "
                      "ORDER BY table_name, constraint_name, ordinal_position")

    def _collections(self) -> list[str]:
        return [r[0] for r in self._all("SELECT table_name FROM information_schema.tables "
                                        "WHERE table_schema = DATABASE()")]

    def _reflect(self, name: str) -> Table | None:
        table = self._columns(name, None)
        if table is None and "." in name:
            schema, _, bare = name.rpartition(".")
            table = self._columns(bare, schema)
        return table

    def _columns(self, name: str, schema: str | None) -> Table | None:
        where = "table_schema = COALESCE(%s, DATABASE()) AND table_name = %s"
        rows = self._all("SELECT table_name, column_name, column_type, is_nullable, column_default, column_key, "
                         f"data_type FROM information_schema.columns WHERE {where} ORDER BY ordinal_position",
                         (schema, name))
        if not rows:
            return None
        table = Table(rows[0][0], schema)
        for _, column, declared, nullable, default, key, data_type in rows:
            kind = JSON if data_type == "json" else TEXT if data_type in ("char", "varchar", "text", "tinytext",
                                                                         "mediumtext", "longtext") else "plain"
            table.columns[column] = Column(column, declared, kind, nullable == "YES", default, key == "PRI")
        with contextlib.suppress(QueryError):   # MySQL < 8.0.16 has no such view
            for (clause,) in self._all("SELECT check_clause FROM information_schema.check_constraints "
                                       "WHERE constraint_schema = COALESCE(%s, DATABASE()) AND table_name = %s",
                                       (schema, table.name)):
                match = _JSON_VALID.search(clause or "")
                if match and match.group(1).replace("``", "`") in table.columns:
                    table.columns[match.group(1).replace("``", "`")].kind = JSON
        for index, non_unique, column in self._all(
                f"SELECT index_name, non_unique, column_name FROM information_schema.statistics WHERE {where} "
                "AND index_name <> 'PRIMARY' ORDER BY index_name, seq_in_index", (schema, table.name)):
            if column in table.columns:
                table.indexes.setdefault(column, []).append(index + ("" if non_unique else " (unique)"))
        return table

    def _converter(self, table: Table, names: list[str]):
        at = [i for i, n in enumerate(names) if table.columns[n].kind == JSON]
        if not at:
            return None

        def convert(row: tuple) -> list:
            values = list(row)
            for i in at:
                if isinstance(values[i], str):
                    with contextlib.suppress(ValueError):
                        values[i] = json.loads(values[i])
            return values
        return convert

    # -- writing -----------------------------------------------------------------------------
    def _write_rows(self, table: Table, keys: list[str], rows: list[tuple], scalars: bool) -> None:
        """Multi-row INSERTs: PyMySQL's executemany writes them (as many rows a statement as fit)."""
        values = list(chain.from_iterable(rows))
        if not (scalars or set(map(type, values)) <= _SCALARS) or any(table.columns[k].kind == JSON for k in keys):
            rows = [self.bind_row(table, keys, row) for row in rows]
        sql = Compiler(self.dialect, table).insert_head(keys) + "(" + ", ".join(["%s"] * len(keys)) + ")"
        cursor = self.conn.cursor()
        try:
            with self._errors():
                cursor.executemany(sql, rows)
        finally:
            cursor.close()

