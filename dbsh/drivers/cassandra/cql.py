"""The CQL compiler: pure functions over ``TableMeta`` (a small description of a table's primary key,
columns and indexes): filter AST -> CQL text with ``?`` markers, the values to bind, and why ALLOW
FILTERING would be needed; the INSERT, UPDATE and DELETE of the uniform verbs. Identifiers are
checked against the table's metadata and double-quoted; values are always bound to prepared
statements. Nothing here imports cassandra-driver, so it is unit-tested without it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from dbsh import query as q
from dbsh.drivers.cassandra.values import coerce
from dbsh.errors import Unsupported, UsageError


# -- identifiers ---------------------------------------------------------------------------------
def quote_name(name: str) -> str:
    """A CQL identifier, double-quoted (case kept; embedded quotes doubled)."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise UsageError(f"invalid CQL name {name!r}")
    return '"' + name.replace('"', '""') + '"'


# -- table description (what the compiler needs; built from cluster metadata or by tests) ------
@dataclass(frozen=True)
class TableMeta:
    keyspace: str
    name: str
    columns: dict[str, str]                       # column -> CQL type, e.g. "uuid", "set<text>"
    partition_key: tuple[str, ...]
    clustering: tuple[str, ...] = ()
    clustering_order: tuple[str, ...] = ()         # "ASC" / "DESC" per clustering column
    indexed: frozenset[str] = frozenset()          # columns with a secondary index

    @property
    def primary_key(self) -> tuple[str, ...]:
        return self.partition_key + self.clustering

    @property
    def qualified(self) -> str:
        return f"{quote_name(self.keyspace)}.{quote_name(self.name)}"

    @property
    def is_counter(self) -> bool:
        return any(t == "counter" for t in self.columns.values())

    def column(self, name: str) -> str:
        """The quoted column name; a clear error for a column the table does not have."""
        if not isinstance(name, str) or name not in self.columns:
            raise UsageError(f"unknown column {name!r} in table {self.keyspace}.{self.name}",
                             hint="columns: " + ", ".join(self.columns))
        return quote_name(name)

    @classmethod
    def from_driver(cls, table) -> "TableMeta":
        clustering = tuple(c.name for c in table.clustering_key)
        order = tuple("DESC" if c.is_reversed else "ASC" for c in table.clustering_key)
        indexed = set()
        for index in (table.indexes or {}).values():
            target = (index.index_options or {}).get("target", "")
            target = re.sub(r"^(keys|values|entries|full)\((.*)\)$", r"\2", target).strip('"')
            if target:
                indexed.add(target)
        return cls(keyspace=table.keyspace_name, name=table.name,
                   columns={name: str(col.cql_type) for name, col in table.columns.items()},
                   partition_key=tuple(c.name for c in table.partition_key), clustering=clustering,
                   clustering_order=order, indexed=frozenset(indexed))


@dataclass
class Statement:
    """Compiled CQL: text with ``?`` markers, values in marker order, and why it needs ALLOW FILTERING."""

    text: str
    values: list[Any] = field(default_factory=list)
    filtering: str | None = None    # None: the primary key or an index serves the filter


# -- filter compilation ------------------------------------------------------------------------
RANGE_OPS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def restrictions(meta: TableMeta, node: q.Node) -> list[q.Cmp]:
    """The filter as a flat list of column conditions (CQL WHERE is a conjunction only)."""
    if isinstance(node, q.And):
        out: list[q.Cmp] = []
        for item in node.items:
            out += restrictions(meta, item)
        return out
    if isinstance(node, q.Or):
        raise Unsupported("$or is not supported on Cassandra (CQL WHERE has no OR)",
                          hint="run one find per alternative")
    if isinstance(node, q.Not):
        raise Unsupported("$not/$nor is not supported on Cassandra (CQL WHERE has no NOT)")
    meta.column(node.field)
    if node.op in ("eq", "in") + tuple(RANGE_OPS):
        values = node.value if node.op == "in" else (node.value,)
        if any(v is None for v in values):
            raise Unsupported(f"comparing {node.field!r} with null is not supported on Cassandra")
        if node.op == "in" and not values:
            raise UsageError(f"$in on {node.field!r} needs at least one value")
        return [node]
    raise Unsupported(f"operator ${node.op} is not supported on Cassandra",
                      hint="supported: $eq $in $gt $gte $lt $lte, combined with AND")


def filtering_reason(meta: TableMeta, conds: list[q.Cmp]) -> str | None:
    """Why Cassandra would need ALLOW FILTERING for these conditions (None when it does not)."""
    by_col: dict[str, list[str]] = {}
    for c in conds:
        by_col.setdefault(c.field, []).append(c.op)
    pk = meta.partition_key
    restricted_pk = [col for col in pk if col in by_col]
    for col in restricted_pk:
        if any(op in RANGE_OPS for op in by_col[col]):
            return f"a range on partition key column {col!r} (only = and $in select partitions)"
    partition_fixed = len(restricted_pk) == len(pk)
    if restricted_pk and not partition_fixed:
        missing = [col for col in pk if col not in by_col]
        return (f"partition key column(s) {', '.join(map(repr, restricted_pk))} without "
                f"{', '.join(map(repr, missing))}: the whole partition key is needed")
    # clustering columns: a prefix of equalities, the last one may be a range or $in
    open_range = None
    for i, col in enumerate(meta.clustering):
        if col not in by_col:
            later = [c for c in meta.clustering[i + 1:] if c in by_col]
            if later:
                return f"clustering column {later[0]!r} is restricted but {col!r} before it is not"
            break
        if open_range is not None:
            return f"clustering column {col!r} follows a range or $in on {open_range!r}"
        if any(op != "eq" for op in by_col[col]):
            open_range = col
    regular = [c for c in by_col if c not in meta.primary_key]
    unindexed = [c for c in regular if c not in meta.indexed or any(op != "eq" for op in by_col[c])]
    if unindexed:
        col = unindexed[0]
        why = "has no index" if col not in meta.indexed else "is indexed for = only"
        return f"column {col!r} is not part of the primary key and {why}"
    if len(regular) > 1:
        return f"more than one indexed column ({', '.join(map(repr, regular))})"
    clustering_used = any(c in by_col for c in meta.clustering)
    if clustering_used and not partition_fixed and not regular:
        return "clustering columns are restricted without the partition key (this scans every partition)"
    return None


def compile_where(meta: TableMeta, where: q.Filter) -> tuple[str, list[Any], str | None, list[q.Cmp]]:
    if where.is_empty:
        return "", [], None, []
    conds = restrictions(meta, where.ast)
    parts, values = [], []
    for c in conds:
        col = meta.column(c.field)
        kind = meta.columns[c.field]
        if c.op == "eq":
            parts.append(f"{col} = ?")
            values.append(coerce(kind, c.value, c.field))
        elif c.op == "in":
            parts.append(f"{col} IN ?")
            values.append([coerce(kind, v, c.field) for v in c.value])
        else:
            parts.append(f"{col} {RANGE_OPS[c.op]} ?")
            values.append(coerce(kind, c.value, c.field))
    return " WHERE " + " AND ".join(parts), values, filtering_reason(meta, conds), conds


def compile_order(meta: TableMeta, sort: list[tuple[str, int]], conds: list[q.Cmp]) -> str:
    """ORDER BY: clustering columns in their order, all as declared or all reversed."""
    if not sort:
        return ""
    for name, _ in sort:
        meta.column(name)
    fields = [name for name, _ in sort]
    if fields != list(meta.clustering[:len(fields)]):
        raise Unsupported(f"Cassandra sorts only by clustering columns in their order "
                          f"({', '.join(meta.clustering) or 'this table has none'})")
    fixed = {c.field for c in conds if c.op in ("eq", "in")}
    if not set(meta.partition_key) <= fixed:
        raise Unsupported("Cassandra sorts only within partitions: give the partition key with = or $in",
                          hint="partition key: " + ", ".join(meta.partition_key))
    flips = {(d < 0) != (meta.clustering_order[i] == "DESC") for i, (_, d) in enumerate(sort)}
    if len(flips) > 1:
        raise Unsupported("Cassandra sorts by the clustering order or its exact reverse, not a mix")
    return " ORDER BY " + ", ".join(f"{quote_name(n)} {'DESC' if d < 0 else 'ASC'}" for n, d in sort)


def compile_select(meta: TableMeta, where: q.Filter, *, fields: list[str] | None = None,
                   sort: list[tuple[str, int]] | None = None, limit: int | None = None,
                   allow_filtering: bool = False, count: bool = False) -> Statement:
    clause, values, reason, conds = compile_where(meta, where)
    if count:
        columns = "COUNT(*)"
    else:
        columns = ", ".join(meta.column(f) for f in fields) if fields else "*"
    text = f"SELECT {columns} FROM {meta.qualified}{clause}{compile_order(meta, sort or [], conds)}"
    if limit is not None:
        if limit < 0:
            raise UsageError("--limit must not be negative")
        text += " LIMIT ?"
        values.append(int(limit))
    if reason:
        if not allow_filtering:
            raise UsageError(f"this filter on {meta.keyspace}.{meta.name} needs ALLOW FILTERING: {reason}",
                             hint="pass --allow-filtering to let Cassandra scan (slow on big tables)")
        text += " ALLOW FILTERING"
    return Statement(text, values, reason)


def full_key(meta: TableMeta, where: q.Filter) -> dict[str, Any] | None:
    """The primary key when the filter is exactly ``key column = value`` for every key column."""
    if where.is_empty:
        return None
    conds = restrictions(meta, where.ast)
    eqs = {c.field: c.value for c in conds if c.op == "eq"}
    if len(conds) != len(eqs) or set(eqs) != set(meta.primary_key):
        return None
    return eqs


def compile_insert(meta: TableMeta, columns: tuple[str, ...], ttl: int | None = None) -> str:
    missing = [k for k in meta.primary_key if k not in columns]
    if missing:
        raise UsageError(f"missing primary key column(s) {', '.join(map(repr, missing))} for "
                         f"{meta.keyspace}.{meta.name}",
                         hint="give them, or --generate-id for a uuid/timeuuid key")
    names = ", ".join(meta.column(c) for c in columns)
    marks = ", ".join("?" for _ in columns)
    text = f"INSERT INTO {meta.qualified} ({names}) VALUES ({marks})"
    return text + (" USING TTL ?" if ttl else "")


def compile_update(meta: TableMeta, change: q.Update, ttl: int | None = None) -> tuple[str, list[Any], list[str]]:
    """``UPDATE t SET ... WHERE <every key column> = ?``; returns the text, the SET values and key order."""
    sets, values = [], []
    for item in change.changes:
        col = meta.column(item.field)
        if item.field in meta.primary_key:
            raise Unsupported(f"cannot change primary key column {item.field!r} in Cassandra",
                              hint="insert a new row and delete the old one")
        kind = meta.columns[item.field]
        if isinstance(item, q.Set):
            if kind == "counter":
                raise Unsupported(f"counter column {item.field!r} can only be changed with $inc")
            sets.append(f"{col} = ?")
            values.append(coerce(kind, item.value, item.field))
        elif isinstance(item, q.Unset):
            sets.append(f"{col} = ?")
            values.append(None)
        else:
            if kind != "counter":
                raise Unsupported(f"$inc on {item.field!r} ({kind}): Cassandra increments counter columns only")
            if not isinstance(item.amount, int):
                raise UsageError(f"$inc on counter {item.field!r} needs an integer")
            sets.append(f"{col} = {col} + ?")
            values.append(item.amount)
    keys = list(meta.primary_key)
    where = " AND ".join(f"{quote_name(k)} = ?" for k in keys)
    using = " USING TTL ?" if ttl else ""
    return f"UPDATE {meta.qualified}{using} SET {', '.join(sets)} WHERE {where}", values, keys


def compile_delete(meta: TableMeta) -> tuple[str, list[str]]:
    keys = list(meta.primary_key)
    return (f"DELETE FROM {meta.qualified} WHERE " + " AND ".join(f"{quote_name(k)} = ?" for k in keys), keys)


# -- native statements -----------------------------------------------------------------------
def split_statements(text: str) -> list[str]:
    """Split CQL on ';' outside strings, quoted names, $$ blocks and comments."""
    from dbsh.statements import split_terminated

    return split_terminated(text, "cql")


NAMED_MARKER = re.compile(r":[A-Za-z_][A-Za-z0-9_]*")


def without_literals(text: str) -> str:
    """CQL with strings, quoted names and comments blanked (to find :name markers safely)."""
    return re.sub(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$\$.*?\$\$|(--|//)[^\n]*|/\*.*?\*/", " ", text, flags=re.S)
