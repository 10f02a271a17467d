"""The CQL compiler: pure functions over ``TableMeta`` (a small description of a table's primary key,
columns and indexes): filter AST -> CQL text with ``?`` markers, the values to bind, and why ALLOW
FILTERING would be needed; the INSERT, UPDATE and DELETE of the uniform verbs. Identifiers are
checked against the table's metadata and double-quoted; values are always bound to prepared
statements. Nothing here imports cassandra-driver, so it is unit-tested without it.
"""

from __future__ import annotations

import decimal
import json
import re
from dataclasses import dataclass, field
from typing import Any

from dbsh import query as q
from dbsh.drivers.cassandra.values import INTEGERS, bound, coerce, family, split_type
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
    def from_driver(cls, table) -> TableMeta:
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
    """A compiled read: CQL text with ``?`` markers and its values in marker order, and what dbsh does
    with the rows the server returns, where CQL cannot say it (MongoDB's meaning is kept either way)."""

    text: str
    values: list[Any] = field(default_factory=list)
    filtering: str | None = None    # why it reads rows no key or index selects (--allow-filtering); None: they do
    check: q.Node | None = None     # dbsh checks each row with it (dbsh.query.matches)
    order: list[tuple[str, int]] = field(default_factory=list)   # dbsh sorts the rows by it
    never: str | None = None        # why no row can match: nothing is sent
    fields: list[str] | None = None  # the columns to keep, when the query reads more for the check or sort
    skip: int = 0                   # rows dropped first (CQL has no OFFSET)
    limit: int | None = None        # rows kept at most
    work: str | None = None         # what dbsh does itself, in words ("checks $or", "sorts by age")


# -- filters: what CQL says, and what dbsh checks on each row --------------------------------------
RANGE_OPS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
SERVER_OPS = ("eq", "in", *RANGE_OPS)


@dataclass
class Where:
    """A filter in two parts: ``conds``, the conjunction CQL says (values as bound), and ``check``, what
    dbsh checks on each row read ($or, $ne, null, paths into maps, ...); ``never``: why no row can match."""

    conds: list[q.Cmp] = field(default_factory=list)
    check: q.Node | None = None
    never: str | None = None


def conjuncts(node: q.Node) -> list[q.Node]:
    if isinstance(node, q.And):
        return [part for item in node.items for part in conjuncts(item)]
    return [node]


def column_of(meta: TableMeta, path: str) -> str:
    """The column a field path reads: the column, or the head of a path into one (``address.city``);
    a clear error for a column the table does not have."""
    if isinstance(path, str) and path not in meta.columns and "." in path:
        head = path.split(".", 1)[0]
        if head in meta.columns:
            return head
    meta.column(path)
    return path


def plan_where(meta: TableMeta, where: q.Filter) -> Where:
    if where.is_empty:
        return Where()
    nodes = conjuncts(where.ast)
    for node in nodes:
        for path in q.fields_of(node):
            column_of(meta, path)
    conds, checks = [], []
    for node in nodes:
        where_to, item = _split(meta, node)
        if where_to == "never":
            return Where(never=item)
        (conds if where_to == "cql" else checks).append(item)
    check = None if not checks else checks[0] if len(checks) == 1 else q.And(tuple(checks))
    return Where(conds, row_check(meta, check))


def _split(meta: TableMeta, node: q.Node) -> tuple[str, Any]:
    """("cql", the condition with its values as bound), ("check", what dbsh checks), or ("never", why no
    row can match)."""
    if not isinstance(node, q.Cmp) or node.op not in SERVER_OPS or node.field not in meta.columns:
        return "check", node
    kind = meta.columns[node.field]
    if family(kind) == "collection":
        return "check", node
    values = node.value if node.op == "in" else (node.value,)
    if any(v is None for v in values):   # null is a missing column: CQL cannot select it
        return ("check", node) if node.op in ("eq", "in") else ("never", f"${node.op} null matches no value")
    if node.op == "in":
        kept: list[Any] = []
        for value in values:
            sent = bound(kind, "eq", value, node.field)
            if sent is not None and sent[1] not in kept:
                kept.append(sent[1])
        if not kept:
            return "never", (f"no value of $in on {node.field!r} can equal a {kind} value" if values
                             else f"$in on {node.field!r} lists no value")
        return "cql", q.Cmp(node.field, "in", tuple(kept))
    sent = bound(kind, node.op, node.value, node.field)
    if sent is None:
        return "never", f"{node.field!r} is {kind}: ${node.op} {_shown(node.value)} matches none of its values"
    if sent[0] == "exists":   # a bound beyond the type's range: every value of the column
        return "check", q.Cmp(node.field, "exists", True)
    return "cql", q.Cmp(node.field, sent[0], sent[1])


def _shown(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def row_check(meta: TableMeta, node: q.Node | None) -> q.Node | None:
    """A filter as dbsh.query.matches evaluates it on a row: values compared with a typed column (uuid,
    timestamp, decimal, ...; elements of a list or set of them) read as that type, as the server compares
    them; JSON columns (numbers, text, booleans) keep MongoDB's comparison as it is."""
    if node is None:
        return None
    if isinstance(node, q.And):
        return q.And(tuple(row_check(meta, item) for item in node.items))
    if isinstance(node, q.Or):
        return q.Or(tuple(row_check(meta, item) for item in node.items))
    if isinstance(node, q.Not):
        return q.Not(row_check(meta, node.item))
    kind = meta.columns.get(node.field)
    if kind is None or node.op in ("exists", "regex"):
        return node
    head, args = split_type(kind)
    if family(kind) == "typed":
        def read(v):
            return coerce(kind, v, node.field)
    elif head == "decimal":
        def read(v):
            return decimal.Decimal(str(v)) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
    elif head in ("list", "set") and family(args[0]) == "typed":
        def read(v):
            return coerce(args[0], v, node.field) if not isinstance(v, (list, dict)) else v
    else:
        return node
    value = (tuple(v if v is None else read(v) for v in node.value) if node.op in ("in", "nin")
             else node.value if node.value is None else read(node.value))
    return q.Cmp(node.field, node.op, value, node.options)


def cql_lacks(meta: TableMeta, node: q.Node) -> str:
    """What in a check CQL cannot say, in a few words: "$or", "$ne, null", "the path 'address.city'"."""
    found: list[str] = []

    def walk(n: q.Node) -> None:
        if isinstance(n, q.And):
            for item in n.items:
                walk(item)
            return
        if isinstance(n, q.Or | q.Not):
            found.append("$or" if isinstance(n, q.Or) else "$not/$nor")
            return
        kind = meta.columns.get(n.field)
        if kind is None:
            found.append(f"the path {n.field!r}")
        elif family(kind) == "collection":
            found.append(f"a condition on {n.field!r} ({kind})")
        elif n.op in ("eq", "in"):
            found.append("= null")
        else:
            found.append("$" + n.op)

    walk(node)
    return ", ".join(dict.fromkeys(found))


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


def compile_where(conds: list[q.Cmp]) -> tuple[str, list[Any]]:
    parts, values = [], []
    for c in conds:
        col = quote_name(c.field)
        if c.op == "eq":
            parts.append(f"{col} = ?")
        elif c.op == "in":
            parts.append(f"{col} IN ?")
        else:
            parts.append(f"{col} {RANGE_OPS[c.op]} ?")
        values.append(list(c.value) if c.op == "in" else c.value)
    return (" WHERE " + " AND ".join(parts)) if parts else "", values


def native_order(meta: TableMeta, sort: list[tuple[str, int]], conds: list[q.Cmp]) -> str | None:
    """ORDER BY, where Cassandra can sort: by clustering columns in their order, all as declared or all
    reversed, within one partition (its key given with =). None: dbsh sorts the rows itself."""
    if not sort:
        return ""
    if [name for name, _ in sort] != list(meta.clustering[:len(sort)]):
        return None
    if not set(meta.partition_key) <= {c.field for c in conds if c.op == "eq"}:
        return None   # (with $in on the partition key the server cannot page an ORDER BY)
    flips = {(d < 0) != (meta.clustering_order[i] == "DESC") for i, (_, d) in enumerate(sort)}
    if len(flips) > 1:
        return None
    return " ORDER BY " + ", ".join(f"{quote_name(n)} {'DESC' if d < 0 else 'ASC'}" for n, d in sort)


def compile_select(meta: TableMeta, where: q.Filter, *, fields: list[str] | None = None,
                   sort: list[tuple[str, int]] | None = None, limit: int | None = None, skip: int = 0,
                   allow_filtering: bool = False, count: bool = False) -> Statement:
    """The read of find (count: of count): what CQL selects, and what dbsh checks and sorts. A read that
    no key or index selects needs ``allow_filtering`` (--allow-filtering), whether Cassandra filters
    (ALLOW FILTERING) or dbsh does, and the error says why."""
    plan = plan_where(meta, where)
    sort = [] if count else list(sort or [])
    for name, _ in sort:
        column_of(meta, name)
    for name in fields or ():
        meta.column(name)
    if limit is not None and limit < 0:
        raise UsageError("--limit must not be negative")
    if skip < 0:
        raise UsageError("--skip must not be negative")
    order = native_order(meta, sort, plan.conds)
    by_dbsh = sort if order is None else []
    client = plan.check is not None or bool(by_dbsh)
    clause, values = compile_where(plan.conds)
    if client and (fields or count):   # the columns asked for, and those the check and the sort read
        paths = [*(fields or ()), *(q.fields_of(plan.check) if plan.check is not None else ()),
                 *(name for name, _ in by_dbsh)]
        columns = ", ".join(quote_name(c) for c in dict.fromkeys(column_of(meta, p) for p in paths))
    elif count:
        columns = "COUNT(*)"
    else:
        columns = ", ".join(meta.column(f) for f in fields) if fields else "*"
    text = f"SELECT {columns} FROM {meta.qualified}{clause}{order or ''}"
    if limit and not client and not count:
        text += " LIMIT ?"
        values.append(int(limit) + skip)
    work = " and ".join(filter(None, [
        f"checks {cql_lacks(meta, plan.check)} on each row" if plan.check is not None else "",
        f"sorts by {', '.join(name for name, _ in by_dbsh)}" if by_dbsh else ""])) or None
    server = filtering_reason(meta, plan.conds) if plan.conds else None
    scan = None
    if client and server is None and not plan.conds:
        scan = "no key or index selects the rows, and " + "; ".join(filter(None, [
            (f"CQL cannot say {cql_lacks(meta, plan.check)}: dbsh checks it on each row"
             if plan.check is not None else ""),
            "Cassandra sorts only by clustering columns within one partition: dbsh sorts by "
            + ", ".join(name for name, _ in by_dbsh) if by_dbsh else ""]))
    if (server or scan) and not allow_filtering and not plan.never:
        if server:
            raise UsageError(f"this filter on {meta.keyspace}.{meta.name} needs ALLOW FILTERING: {server}",
                             hint="pass --allow-filtering to let Cassandra scan (slow on big tables)")
        checked = plan.check is not None
        what = "filter and sort" if checked and by_dbsh else "filter" if checked else "sort"
        raise UsageError(f"this {what} on {meta.keyspace}.{meta.name} reads the whole table: {scan}",
                         hint="pass --allow-filtering to let dbsh scan it (slow on big tables)")
    if server:
        text += " ALLOW FILTERING"
    never = plan.never or ("--limit 0 asks for no row" if limit == 0 and not count else None)
    return Statement(text, values, server or scan, check=plan.check, order=by_dbsh, never=never,
                     fields=list(fields) if fields and client else None, skip=skip, limit=limit, work=work)


def full_key(meta: TableMeta, where: q.Filter) -> dict[str, Any] | None:
    """The primary key (values as bound) when the filter is exactly ``key column = value`` for every key column."""
    if where.is_empty:
        return None
    plan = plan_where(meta, where)
    eqs = {c.field: c.value for c in plan.conds if c.op == "eq"}
    if plan.never or plan.check is not None or len(plan.conds) != len(eqs) or set(eqs) != set(meta.primary_key):
        return None
    return eqs


def compile_read(meta: TableMeta, columns: list[str]) -> str:
    """One row by its whole primary key (the values bound in key order)."""
    names = ", ".join(quote_name(c) for c in dict.fromkeys([*meta.primary_key, *columns]))
    where = " AND ".join(f"{quote_name(k)} = ?" for k in meta.primary_key)
    return f"SELECT {names} FROM {meta.qualified} WHERE {where}"


# -- writes -------------------------------------------------------------------------------------------
def compile_insert(meta: TableMeta, columns: tuple[str, ...], ttl: int | None = None, *,
                   if_not_exists: bool = False) -> str:
    missing = [k for k in meta.primary_key if k not in columns]
    if missing:
        raise UsageError(f"missing primary key column(s) {', '.join(map(repr, missing))} for "
                         f"{meta.keyspace}.{meta.name}",
                         hint="give them, or --generate-id for a uuid/timeuuid key")
    names = ", ".join(meta.column(c) for c in columns)
    marks = ", ".join("?" for _ in columns)
    text = f"INSERT INTO {meta.qualified} ({names}) VALUES ({marks})"
    return text + (" IF NOT EXISTS" if if_not_exists else "") + (" USING TTL ?" if ttl else "")


@dataclass
class UpdateStatement:
    """``UPDATE t SET ... WHERE <every key column> = ?``. Bound in order: the TTL (if any), ``values``, then
    per row the new value of each of ``increments``, the key (``keys``), and the values it read: an $inc of a
    column that is not a counter is a compare-and-set (IF col = <what dbsh read>), so a concurrent change
    is never lost."""

    text: str
    values: list[Any]
    keys: list[str]
    increments: list[tuple[str, int | float]] = field(default_factory=list)


def compile_update(meta: TableMeta, change: q.Update, ttl: int | None = None) -> UpdateStatement:
    sets, values, increments = [], [], []
    for item in change.changes:
        if item.field not in meta.columns and "." in item.field:
            fragment, bound_values = _map_entry(meta, item)
            sets.append(fragment)
            values += bound_values
            continue
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
        elif kind == "counter":
            if not isinstance(item.amount, int):
                raise UsageError(f"$inc on counter {item.field!r} needs an integer")
            sets.append(f"{col} = {col} + ?")
            values.append(item.amount)
        else:
            if family(kind) != "number":
                raise UsageError(f"cannot $inc {item.field!r}: it is a {kind} column, not a number")
            if split_type(kind)[0] in INTEGERS and item.amount != int(item.amount):
                raise UsageError(f"cannot $inc {item.field!r} by {item.amount}: it is a {kind} column (whole numbers)")
            increments.append((item.field, item.amount))
    sets += [f"{quote_name(name)} = ?" for name, _ in increments]
    keys = list(meta.primary_key)
    where = " AND ".join(f"{quote_name(k)} = ?" for k in keys)
    using = " USING TTL ?" if ttl else ""
    cas = (" IF " + " AND ".join(f"{quote_name(name)} = ?" for name, _ in increments)) if increments else ""
    return UpdateStatement(f"UPDATE {meta.qualified}{using} SET {', '.join(sets)} WHERE {where}{cas}", values, keys,
                           increments)


def _map_entry(meta: TableMeta, item: q.Change) -> tuple[str, list[Any]]:
    """$set/$unset of ``column.key`` on a map column: that entry (``m[?] = ?``, ``m = m - ?``)."""
    head, key = item.field.split(".", 1)
    kind = meta.columns.get(head)
    if kind is None:
        meta.column(item.field)   # an unknown column: its own error
    name, args = split_type(kind)
    if name != "map" or kind.lower().startswith("frozen") or isinstance(item, q.Inc) or "." in key:
        raise Unsupported(f"cannot change {item.field!r} in Cassandra: a change writes a whole column, "
                          "or with $set/$unset one entry of a map column that is not frozen")
    col = quote_name(head)
    if isinstance(item, q.Unset):
        return f"{col} = {col} - ?", [{coerce(args[0], key, head)}]
    return f"{col}[?] = ?", [coerce(args[0], key, head), coerce(args[1], item.value, item.field)]


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
