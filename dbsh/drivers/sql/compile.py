"""dbsh's query AST (dbsh.query) to SQL text and bound parameters, for one dialect.

Pure: no driver, no connection. A ``Dialect`` says how names are quoted, how parameters are written
and how the few things SQL dialects spell differently are written (regular expressions, membership
in a JSON array, LIMIT without a limit, NULL ordering). Every value is a bound parameter; every name
is quoted, so any name (with quotes, backticks, ``%``, ``?``, ``:`` in it) is a name, never SQL.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from dataclasses import dataclass, field
from typing import Any

from dbsh import query as q
from dbsh.errors import Unsupported, UsageError

# what dbsh makes of a column (Column.kind): how values are read and filtered
JSON, BOOL, DATETIME, DATE, TIME, PLAIN = "json", "bool", "datetime", "date", "time", "plain"
TEXT, NUMBER = "text", "number"   # PLAIN columns whose values are strings / numbers


@dataclass
class Column:
    name: str
    type: str                        # the declared type, as the database shows it
    kind: str = PLAIN                # JSON, BOOL, DATETIME, DATE, TIME, TEXT, NUMBER, PLAIN
    nullable: bool = True
    default: str | None = None
    primary_key: bool = False


@dataclass
class Table:
    name: str                        # as the user named it
    schema: str | None
    columns: dict[str, Column] = field(default_factory=dict)
    indexes: dict[str, list[str]] = field(default_factory=dict)   # column -> "name (unique)" labels

    @property
    def primary_key(self) -> list[str]:
        return [c.name for c in self.columns.values() if c.primary_key]

    def kind(self, name: str) -> str:
        return self.columns[name].kind


class Dialect:
    """How one SQL dialect writes what the compiler needs; the dialect modules subclass it."""

    name = "SQL"
    quote_char = '"'
    paramstyle = "qmark"             # qmark (?) or format (%s)
    max_name_bytes = 0               # the longest name the database keeps whole (0: no limit)
    no_limit: str | None = None      # the LIMIT that means "no limit", for an OFFSET alone (None: not needed)
    nulls_first_sql = ""             # after ASC so that nulls sort first, as MongoDB sorts them
    nulls_last_sql = ""              # after DESC so that nulls sort last
    derived_pick = False             # --one's subquery must be wrapped (MySQL cannot read the target table)
    # how a text column is compared code point by code point, as MongoDB compares strings, where the
    # column's collation would not (MariaDB's default ones ignore case): a template for the column
    exact_text: str | None = None
    default_values = "DEFAULT VALUES"   # an INSERT of a row of defaults
    # the column types --create makes, by generic_type(); "serial" is an integer id the database numbers
    TYPES = {"text": "TEXT", "bool": "BOOLEAN", "int": "BIGINT", "float": "FLOAT(53)", "numeric": "NUMERIC",
             "datetime": "TIMESTAMP WITH TIME ZONE", "date": "DATE", "json": "JSON"}
    SERIAL = {"int": "BIGINT", "serial": "INTEGER"}   # + the dialect's autoincrement words
    AUTOINCREMENT = ""
    KEY_TYPES: dict[str, str] = {}   # types a primary key takes instead (MySQL: no TEXT key)

    @property
    def mark(self) -> str:
        return "?" if self.paramstyle == "qmark" else "%s"

    def ident(self, name: str) -> str:
        """A name quoted so that it stays one name whatever it holds, for a statement sent without
        parameters (nothing reads its '%' then)."""
        q = self.quote_char
        return q + name.replace(q, q + q) + q

    def quote(self, name: str) -> str:
        """A name quoted for a statement sent with parameters (its '%' doubled for a driver whose
        placeholders are %s: dbsh sends its own statements with a parameter list, if an empty one)."""
        text = self.ident(name)
        return text.replace("%", "%%") if self.paramstyle == "format" else text

    def table_name(self, table: Table, quote=None) -> str:
        quote = quote or self.quote
        return (quote(table.schema) + "." if table.schema else "") + quote(table.name)

    def check_name(self, name: str, what: str) -> None:
        """A name for a new table or column: refused when the database would not keep it exactly."""
        if not isinstance(name, str) or not name or "\x00" in name:
            raise UsageError(f"invalid {what} name {name!r}")
        if self.max_name_bytes and len(name.encode()) > self.max_name_bytes:
            raise UsageError(f"invalid {what} name {name[:40]!r}...: {self.name} keeps names of at most "
                             f"{self.max_name_bytes} bytes")

    def column_type(self, generic: str) -> str:
        return self.TYPES[generic]

    def create_table(self, name: str, columns: dict[str, str]) -> str:
        """CREATE TABLE for --create: the inferred columns, and an ``id`` primary key (numbered by
        the database when it holds integers, added as one when the documents have no id)."""
        columns = dict(columns)
        kind = columns.pop("id", "serial")
        if kind in ("int", "serial"):
            key = f"{self.SERIAL[kind]} NOT NULL{self.AUTOINCREMENT} PRIMARY KEY"
        else:
            key = f"{self.KEY_TYPES.get(kind) or self.TYPES[kind]} NOT NULL PRIMARY KEY"
        parts = [f"{self.quote('id')} {key}"] + [f"{self.quote(c)} {self.TYPES[t]}" for c, t in columns.items()]
        return f"CREATE TABLE IF NOT EXISTS {self.quote(name)} ({', '.join(parts)})"

    # -- what dialects write differently ----------------------------------------------------
    def regex(self, column: str, pattern: str, options: str, c: Compiler) -> str:
        raise Unsupported(f"$regex is not supported on {self.name}")

    def json_contains(self, column: str, value: Any, c: Compiler) -> str:
        """SQL true when a JSON column holds ``value`` or an array with ``value`` among its elements
        (MongoDB's meaning of ``{field: value}`` on an array)."""
        raise Unsupported(f"filters on JSON columns are not supported on {self.name}")

    def bind_value(self, value: Any, kind: str) -> Any:
        """A value as the driver takes it for a column of ``kind``."""
        if value is None:
            return None
        if kind == JSON or isinstance(value, dict | list):
            return json.dumps(value, ensure_ascii=False, default=str)
        return value


class Compiler:
    """One statement's SQL and its parameters, in order."""

    def __init__(self, dialect: Dialect, table: Table):
        self.d = dialect
        self.table = table
        self.params: list[Any] = []

    def bind(self, value: Any) -> str:
        self.params.append(value)
        return self.d.mark

    def column(self, field: str) -> Column:
        column = self.table.columns.get(field)
        if column is not None:
            return column
        if "." in field and field.split(".", 1)[0] in self.table.columns:
            raise Unsupported(f"nested field {field!r}: {self.d.name} columns are flat in dbsh filters")
        raise UsageError(f"unknown column {field!r} in table {self.table.name!r}",
                         hint="columns: " + ", ".join(self.table.columns))

    def name(self, field: str) -> str:
        return self.d.quote(self.column(field).name)

    # -- WHERE -------------------------------------------------------------------------------
    def where(self, node: q.Node) -> str:
        if isinstance(node, q.And):
            return "(" + " AND ".join(["1 = 1", *(self.where(n) for n in node.items)]) + ")"
        if isinstance(node, q.Or):
            return "(" + " OR ".join(self.where(n) for n in node.items) + ")"
        if isinstance(node, q.Not):
            # MongoDB's meaning: NOT matches every row the condition does not match, rows where a
            # field is NULL included (SQL's NOT of an unknown is unknown): NOT (... IS TRUE)
            return f"(CASE WHEN {self.where(node.item)} THEN 0 ELSE 1 END = 1)"
        return self.condition(node)

    def exact(self, col: str, family: str) -> str:
        """The column as compared with a string, code point by code point (see Dialect.exact_text)."""
        if family == TEXT and self.d.exact_text:
            return self.d.exact_text.format(col)
        return col

    def condition(self, node: q.Cmp) -> str:
        column = self.column(node.field)
        col = self.d.quote(column.name)
        op, value = node.op, node.value
        if op == "exists":
            return f"{col} IS NOT NULL" if value else f"{col} IS NULL"
        values = value if op in ("in", "nin") else (value,)
        if any(isinstance(v, dict | list) for v in values):
            raise Unsupported(f"comparing a column with a JSON object or array is not supported on {self.d.name}")
        if column.kind == JSON:
            return self._json_condition(column, col, op, value)
        if op == "regex":
            return self.d.regex(col, value, node.options, self)
        # MongoDB compares within a type only: a string never equals (or orders against) a number,
        # true is not 1; the SQL database would convert one to the other
        family = column_family(column)
        exact = self.exact(col, family)
        if op == "eq":
            if value is None:
                return f"{col} IS NULL"
            if not fits(family, value):
                return "1 = 0"
            if exact != col:   # the collation's equality narrows by the index, the exact one decides
                return f"({col} = {self.bind(value)} AND {exact} = {self.bind(value)})"
            return f"{col} = {self.bind(value)}"
        if op == "ne":
            if value is None:
                return f"{col} IS NOT NULL"
            if not fits(family, value):
                return "1 = 1"
            return f"({exact} <> {self.bind(value)} OR {col} IS NULL)"
        if op in ("gt", "gte", "lt", "lte"):
            if value is None or not fits(family, value):
                return "1 = 0"
            return f"{exact} {_OPS[op]} {self.bind(value)}"
        present = [v for v in values if v is not None and fits(family, v)]
        if op == "in":
            found = f"{col} IN ({', '.join(self.bind(v) for v in present)})" if present else "1 = 0"
            if present and exact != col:
                found = f"({found} AND {exact} IN ({', '.join(self.bind(v) for v in present)}))"
            return f"({found} OR {col} IS NULL)" if None in values else found
        if op == "nin":
            found = f"({exact} NOT IN ({', '.join(self.bind(v) for v in present)}) OR {col} IS NULL)" if present \
                else "1 = 1"
            return f"({found} AND {col} IS NOT NULL)" if None in values else found
        raise Unsupported(f"operator ${op} is not supported on {self.d.name}")

    def _json_condition(self, column: Column, col: str, op: str, value: Any) -> str:
        """A JSON column: a value matches the value itself or an element of an array (MongoDB's meaning);
        what that cannot say (order, patterns) is refused rather than answered differently."""
        if op in ("eq", "ne") and value is None:
            return f"{col} IS NULL" if op == "eq" else f"{col} IS NOT NULL"
        if op in ("eq", "ne"):
            found = self.d.json_contains(col, value, self)
            return found if op == "eq" else f"(NOT {found} OR {col} IS NULL)"
        if op in ("in", "nin"):
            present = [v for v in value if v is not None]
            found = "(" + " OR ".join(self.d.json_contains(col, v, self) for v in present) + ")" if present \
                else "1 = 0"
            if op == "in":
                return f"({found} OR {col} IS NULL)" if None in value else found
            missing = f"(NOT {found} OR {col} IS NULL)" if present else "1 = 1"
            return f"({missing} AND {col} IS NOT NULL)" if None in value else missing
        raise Unsupported(f"${op} on the JSON column {column.name!r} is not supported on {self.d.name} "
                          f"(JSON columns take $eq, $ne, $in, $nin and $exists)")

    # -- whole statements ----------------------------------------------------------------------
    def select(self, where: q.Filter, fields: list[str] | None = None, sort=None, limit: int | None = None,
               skip: int | None = None, columns: list[str] | None = None) -> str:
        names = columns if columns is not None else (fields or list(self.table.columns))
        head = ", ".join(self.name(f) for f in names)
        sql = f"SELECT {head} FROM {self.d.table_name(self.table)} WHERE {self.where(where.ast)}"
        return sql + self.order(sort) + self.limit(limit, skip)

    def order(self, sort) -> str:
        if not sort:
            return ""
        keys = [f"{self.exact(self.name(f), column_family(self.column(f)))} "
                f"{'DESC' + self.d.nulls_last_sql if d < 0 else 'ASC' + self.d.nulls_first_sql}" for f, d in sort]
        return " ORDER BY " + ", ".join(keys)

    def limit(self, limit: int | None, skip: int | None) -> str:
        if limit is not None and limit < 0:
            raise UsageError("--limit must not be negative")
        if skip is not None and skip < 0:
            raise UsageError("--skip must not be negative")
        sql = ""
        if limit is not None:
            sql = f" LIMIT {self.bind(int(limit))}"
        elif skip and self.d.no_limit is not None:
            sql = f" LIMIT {self.d.no_limit}"
        if skip:
            sql += f" OFFSET {self.bind(int(skip))}"
        return sql

    def count(self, where: q.Filter) -> str:
        return f"SELECT COUNT(*) FROM {self.d.table_name(self.table)} WHERE {self.where(where.ast)}"

    def one_row(self, condition: str) -> str:
        """``condition`` narrowed to one row (--one), by the primary key."""
        key = self.table.primary_key
        if not key:
            raise Unsupported(f"--one needs a primary key, and {self.table.name!r} has none")
        cols = ", ".join(self.d.quote(k) for k in key)
        pick = f"SELECT {cols} FROM {self.d.table_name(self.table)} WHERE {condition} LIMIT 1"
        if self.d.derived_pick:
            pick = f"SELECT {cols} FROM ({pick}) AS dbsh_one"
        return f"({cols}) IN ({pick})" if len(key) > 1 else f"{cols} IN ({pick})"

    def update(self, where: q.Filter, changes, one: bool) -> str:
        sets = []
        for change in changes:
            column = self.column(change.field)
            col = self.d.quote(column.name)
            if isinstance(change, q.Set):
                sets.append(f"{col} = {self.bind(self.d.bind_value(change.value, column.kind))}")
            elif isinstance(change, q.Unset):
                sets.append(f"{col} = NULL")
            else:
                sets.append(f"{col} = COALESCE({col}, 0) + {self.bind(change.amount)}")
        condition = self.where(where.ast)
        if one:
            condition = self.one_row(condition)
        return f"UPDATE {self.d.table_name(self.table)} SET {', '.join(sets)} WHERE {condition}"

    def delete(self, where: q.Filter, one: bool) -> str:
        condition = self.where(where.ast)
        if one:
            condition = self.one_row(condition)
        return f"DELETE FROM {self.d.table_name(self.table)} WHERE {condition}"

    def insert_head(self, keys: list[str]) -> str:
        """``INSERT INTO t (a, b) VALUES `` for these columns (DEFAULT VALUES when there are none)."""
        if not keys:
            return f"INSERT INTO {self.d.table_name(self.table)} {self.d.default_values}"
        return f"INSERT INTO {self.d.table_name(self.table)} ({', '.join(self.name(k) for k in keys)}) VALUES "


_OPS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_NUMERIC_WORDS = ("int", "numeric", "decimal", "real", "float", "double", "serial", "money")


def column_family(column: Column) -> str:
    """TEXT, NUMBER or BOOL when the column holds only that type of value (so a value of another type
    cannot match it, as in MongoDB); the column's kind otherwise."""
    if column.kind in (TEXT, NUMBER, BOOL) or column.kind != PLAIN:
        return column.kind
    declared = column.type.lower()
    if declared.startswith("bool") or declared == "tinyint(1)":
        return BOOL
    if any(w in declared for w in _NUMERIC_WORDS):
        return NUMBER
    if any(w in declared for w in ("char", "text", "clob")):
        return TEXT
    return PLAIN


def fits(family: str, value: Any) -> bool:
    """Whether a filter value is of the type the column holds (None: the caller handles it)."""
    if family == TEXT:
        return isinstance(value, str)
    if family == NUMBER:
        return isinstance(value, int | float | decimal.Decimal) and not isinstance(value, bool)
    if family == BOOL:
        return isinstance(value, bool)
    return True


# -- the column types --create infers ----------------------------------------------------------
# a generic type name per set of Python value types; each dialect spells them (Dialect subclasses'
# TYPES): the same types SQLAlchemy's generic types gave before
def generic_type(values: list[Any]) -> str:
    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return "text"
    if kinds <= {bool}:
        return "bool"
    if kinds <= {int}:
        return "int"
    if kinds <= {int, float}:
        return "float"
    if kinds <= {decimal.Decimal, int}:
        return "numeric"
    if kinds <= {dt.datetime}:
        return "datetime"
    if kinds <= {dt.date}:
        return "date"
    if any(issubclass(k, dict | list) for k in kinds):
        return "json"
    return "text"


def infer_columns(docs: list[dict]) -> dict[str, str]:
    """Each field of the documents and its generic type, in first-seen order."""
    names: dict[str, list[Any]] = {}
    for doc in docs:
        for key, value in doc.items():
            names.setdefault(key, []).append(value)
    return {key: generic_type(values) for key, values in names.items()}
