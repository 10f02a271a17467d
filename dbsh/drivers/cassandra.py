"""Cassandra driver (DataStax ``cassandra-driver``): CQL passthrough and the uniform verbs.

The CQL compiler is a set of pure functions over ``TableMeta`` (a small description of a table's
primary key, columns and indexes): filter AST -> CQL text with ``?`` markers, the values to bind,
and why ALLOW FILTERING would be needed. Identifiers are checked against the table's metadata and
double-quoted; values are always bound to prepared statements.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import ipaddress
import json
import re
import ssl
import sys
import time
import uuid
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Iterable, Iterator
from urllib.parse import parse_qsl, unquote

import cassandra
import cassandra.cqltypes
import cassandra.util
from cassandra import ConsistencyLevel
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.protocol import ErrorMessage
from cassandra.query import SimpleStatement, dict_factory

from dbsh import query as q
from dbsh.drivers.base import Capabilities, Result, Session, WriteResult, batched
from dbsh.errors import ConnectError, DbshError, NotFound, QueryError, Unsupported, UsageError, one_line, redact
from dbsh.output import jsonable, register_encoder

# what a server answers when it refuses a statement (not a connection failure)
SERVER_ERRORS = (cassandra.RequestExecutionException, cassandra.RequestValidationException, ErrorMessage)
FETCH_SIZE = 1000
CONCURRENCY = 64
DEFAULT_PORT = 9042


# Values of collection and time types come back as the driver's own classes: their JSON forms.
def _map_json(value) -> dict:
    """A CQL map as a JSON object: keys that are not text become their JSON text (map<int, ...> -> "1")."""
    return {k if isinstance(k, str) else _key_text(k): v for k, v in value.items()}


def _key_text(key: Any) -> str:
    plain = jsonable(key)
    return plain if isinstance(plain, str) else json.dumps(plain, separators=(",", ":"), default=jsonable)


register_encoder(cassandra.util.SortedSet, list)
register_encoder(cassandra.util.OrderedMap, _map_json)
register_encoder(cassandra.util.Time, str)          # 12:34:56.123456789 (nanoseconds)
register_encoder(cassandra.util.Date, str)          # dates outside Python's years 1-9999
register_encoder(cassandra.util.Duration, str)


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


# -- values: JSON in, the column's CQL type out ------------------------------------------------
def split_type(kind: str) -> tuple[str, list[str]]:
    """``map<text, frozen<list<int>>>`` -> ("map", ["text", "frozen<list<int>>"])."""
    kind = kind.strip()
    if "<" not in kind:
        return kind.lower(), []
    head, inner = kind.split("<", 1)
    inner = inner.rsplit(">", 1)[0]
    args, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "," and depth == 0:
            args.append(inner[start:i].strip())
            start = i + 1
    args.append(inner[start:].strip())
    head = head.strip().lower()
    if head == "frozen":
        return split_type(args[0])
    return head, args


def coerce(kind: str, value: Any, column: str) -> Any:
    """A JSON value as the Python type the driver serialises for this CQL type."""
    if value is None:
        return None
    head, args = split_type(kind)
    try:
        if head in ("uuid", "timeuuid"):
            if isinstance(value, uuid.UUID):
                return value
            if not isinstance(value, str):
                raise ValueError
            return uuid.UUID(value)
        if head in ("int", "bigint", "smallint", "tinyint", "varint", "counter"):
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
                    return int(value)
                raise ValueError
            return value
        if head in ("float", "double"):
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ValueError
            return float(value)
        if head == "decimal":
            if isinstance(value, bool):
                raise ValueError
            return decimal.Decimal(str(value))
        if head == "boolean":
            if not isinstance(value, bool):
                raise ValueError
            return value
        if head in ("text", "varchar", "ascii"):
            if isinstance(value, (dict, list)) and head != "ascii":   # nested values: JSON text
                return json.dumps(value, ensure_ascii=False, default=str)
            if not isinstance(value, str):
                raise ValueError
            return value
        if head == "timestamp":
            if isinstance(value, dt.datetime):
                return value
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return dt.datetime.fromtimestamp(value / 1000, dt.timezone.utc)
            text = str(value).replace("Z", "+00:00")
            return dt.datetime.fromisoformat(text)
        if head == "date":
            return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
        if head == "time":   # nanoseconds: "12:34:56.123456789", or nanoseconds since midnight
            if isinstance(value, bool) or not isinstance(value, (dt.time, cassandra.util.Time, int, str)):
                raise ValueError
            return cassandra.util.Time(value)
        if head == "duration":
            return value if isinstance(value, cassandra.util.Duration) else parse_duration(value)
        if head == "inet":
            return str(ipaddress.ip_address(str(value)))
        if head == "blob":
            if isinstance(value, (bytes, bytearray)):
                return bytes(value)
            if isinstance(value, dict) and "$binary" in value:
                return base64.b64decode(value["$binary"]["base64"])
            if isinstance(value, str):
                return value.encode("utf-8")
            raise ValueError
        if head in ("list", "set"):
            if not isinstance(value, (list, tuple, set)):
                raise ValueError
            items = [coerce(args[0], v, column) for v in value]
            return items if head == "list" else set(items)
        if head == "map":
            if not isinstance(value, dict):
                raise ValueError
            return {coerce(args[0], k, column): coerce(args[1], v, column) for k, v in value.items()}
        if head == "tuple":
            if not isinstance(value, (list, tuple)) or len(value) != len(args):
                raise ValueError
            return tuple(coerce(a, v, column) for a, v in zip(args, value))
    except (ValueError, TypeError, decimal.InvalidOperation, ArithmeticError):
        hint = None
        if head in ("uuid", "timeuuid") and value in ("uuid()", "now()"):
            hint = "dbsh does not run CQL functions from JSON: use --generate-id, or query 'INSERT ... uuid()'"
        raise UsageError(f"column {column!r} is {kind}: {value!r} is not a valid {head}", hint=hint) from None
    return value   # user-defined and other types: let the driver decide


def cql_type(values: list[Any]) -> str:
    """The CQL type --create gives a column holding these JSON values (nested ones are JSON text)."""
    kinds = {type(v) for v in values if v is not None}
    for kind, cql in ((bool, "boolean"), (int, "bigint"), (float, "double"), (dt.datetime, "timestamp"),
                      (dt.date, "date"), (uuid.UUID, "uuid"), (bytes, "blob")):
        if kinds and kinds <= {kind}:
            return cql
    if kinds and kinds <= {int, float}:
        return "double"
    if kinds and kinds <= {int, decimal.Decimal}:
        return "decimal"
    return "text"


def infer_columns(docs: list[dict]) -> dict[str, str]:
    values: dict[str, list[Any]] = {}
    for doc in docs:
        for key, value in doc.items():
            values.setdefault(key, []).append(value)
    return {key: cql_type(v) for key, v in values.items()}


DURATION_UNITS = {"y": (12, 0, 0), "mo": (1, 0, 0), "w": (0, 7, 0), "d": (0, 1, 0), "h": (0, 0, 3600 * 10**9),
                  "m": (0, 0, 60 * 10**9), "s": (0, 0, 10**9), "ms": (0, 0, 10**6), "us": (0, 0, 1000),
                  "µs": (0, 0, 1000), "ns": (0, 0, 1)}


def parse_duration(value: Any) -> cassandra.util.Duration:
    """A CQL duration literal such as ``1h30m`` or ``-2mo3d`` (the form dbsh prints: ``0mo0d5400000000000ns``)."""
    text = value.strip().lower() if isinstance(value, str) else ""
    sign = -1 if text.startswith("-") else 1
    parts = re.findall(r"(\d+)(mo|ms|us|µs|ns|y|w|d|h|m|s)", text.lstrip("-"))
    if not parts or "".join(n + u for n, u in parts) != text.lstrip("-"):
        raise ValueError
    months = days = nanos = 0
    for number, unit in parts:
        m, d, n = DURATION_UNITS[unit]
        months, days, nanos = months + int(number) * m, days + int(number) * d, nanos + int(number) * n
    return cassandra.util.Duration(sign * months, sign * days, sign * nanos)


# -- native statements -----------------------------------------------------------------------
def split_statements(text: str) -> list[str]:
    """Split CQL on ';' outside strings, quoted names, $$ blocks and comments."""
    from dbsh.statements import split_terminated

    return split_terminated(text, "cql")


NAMED_MARKER = re.compile(r":[A-Za-z_][A-Za-z0-9_]*")


# -- connection --------------------------------------------------------------------------------
def parse_url(url: str) -> dict[str, Any]:
    """``cassandra://user:pw@h1,h2:9042/keyspace?consistency=LOCAL_QUORUM&dc=dc1&ssl=true``."""
    scheme, rest = url.split("://", 1)
    if scheme.lower() != "cassandra":
        raise UsageError(f"not a Cassandra URL: {scheme}://")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hostinfo = netloc.rpartition("@")
    hosts, port = [], DEFAULT_PORT
    for item in (hostinfo or "127.0.0.1").split(","):
        item = item.strip()
        if item.startswith("["):                      # [::1]:9042
            host, _, tail = item[1:].partition("]")
            item_port = tail.lstrip(":")
        else:
            host, _, item_port = item.partition(":")
        if item_port:
            if not item_port.isdigit():
                raise UsageError(f"invalid port {item_port!r} in the Cassandra URL")
            port = int(item_port)
        if host:
            hosts.append(host)
    options = dict(parse_qsl(query))
    keyspace = unquote(path.strip("/")) or options.pop("keyspace", None) or None
    return {"hosts": hosts or ["127.0.0.1"], "port": port, "keyspace": keyspace, "options": options}


def consistency_level(name: Any) -> int:
    key = str(name).strip().upper().replace("-", "_")
    if key not in ConsistencyLevel.name_to_value:
        raise UsageError(f"unknown consistency level {name!r}",
                         hint="one of " + ", ".join(ConsistencyLevel.name_to_value))
    return ConsistencyLevel.name_to_value[key]


def connect(target) -> "CassandraSession":
    return CassandraSession(target)


class CassandraSession(Session):
    capabilities = Capabilities(language="cql", transactions=False, schema=True, statement_terminator=";")
    name = "Cassandra"

    def __init__(self, target):
        super().__init__(target)
        spec = parse_url(target.url)
        opts = spec["options"]
        self.keyspace: str | None = spec["keyspace"]
        self._default_consistency = consistency_level(opts.pop("consistency", "LOCAL_ONE"))
        try:
            timeout = float(opts.pop("connect_timeout", 5))
        except ValueError:
            raise UsageError("?connect_timeout= needs a number of seconds") from None
        kwargs: dict[str, Any] = {"contact_points": spec["hosts"], "port": spec["port"],
                                  "connect_timeout": timeout, "control_connection_timeout": timeout,
                                  "protocol_version": int(opts["protocol_version"]) if "protocol_version" in opts
                                  else None}
        if kwargs["protocol_version"] is None:
            del kwargs["protocol_version"]
        if target.username:
            kwargs["auth_provider"] = PlainTextAuthProvider(target.username, target.password or "")
        if str(opts.get("ssl", opts.get("tls", ""))).lower() in ("1", "true", "yes"):
            context = ssl.create_default_context(cafile=opts.get("ssl_ca") or None)
            if str(opts.get("ssl_verify", "true")).lower() in ("0", "false", "no"):
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            kwargs["ssl_context"] = context
        policy = DCAwareRoundRobinPolicy(local_dc=opts["dc"]) if opts.get("dc") else DCAwareRoundRobinPolicy()
        profile = ExecutionProfile(load_balancing_policy=TokenAwarePolicy(policy), row_factory=dict_factory,
                                   consistency_level=self._default_consistency,
                                   request_timeout=float(opts.get("request_timeout", 30)))
        kwargs["execution_profiles"] = {EXEC_PROFILE_DEFAULT: profile}
        self.cluster = Cluster(**kwargs)
        self._client = None
        self._meta: dict[str, TableMeta] = {}
        self._prepared: dict[str, Any] = {}
        self._created_uuid_key: set[str] = set()   # tables insert --create made with a generated uuid id

    def set_options(self, **options: Any) -> None:
        if options.get("consistency"):
            consistency_level(options["consistency"])   # a bad level is bad input, before connecting
        super().set_options(**options)

    # -- connection ------------------------------------------------------------------------
    @property
    def client(self):
        """The cassandra-driver Session, connected on first use."""
        if self._client is None:
            try:
                self._client = self.cluster.connect(self.keyspace)
            except NoHostAvailable as e:
                raise self._connect_error(e) from None
            except cassandra.InvalidRequest as e:
                raise NotFound(f"no keyspace named {self.keyspace!r}: {one_line(str(e))}") from None
            except Exception as e:  # noqa: BLE001
                raise self._connect_error(e) from None
            self._client.default_fetch_size = FETCH_SIZE
        return self._client

    def _connect_error(self, e: Exception) -> DbshError:
        errors = getattr(e, "errors", None) or {}
        text = "; ".join(f"{host}: {one_line(str(err))}" for host, err in errors.items()) or one_line(str(e))
        text = redact(text, self.target.password)
        if any(isinstance(err, cassandra.AuthenticationFailed) for err in errors.values()):
            return ConnectError(f"cannot authenticate to {self.target.display()}: {text}")
        return ConnectError(f"cannot connect to {self.target.display()}: {text}")

    def _error(self, e: Exception) -> DbshError:
        if isinstance(e, DbshError):
            return e
        if isinstance(e, NoHostAvailable):
            # the driver also says "no host available" after trying the next host for a statement
            # a server refused (Unavailable at --consistency ALL with a node down): that is the error
            refused = [err for err in (e.errors or {}).values() if isinstance(err, SERVER_ERRORS)]
            if not refused:
                return self._connect_error(e)
            e = refused[0]
        text = one_line(str(e))
        if text.startswith("<Error from server") and text.endswith(">"):   # the driver's repr of some errors
            text = text[1:-1]
        return QueryError(redact(text, self.target.password))

    def close(self) -> None:
        self.cluster.shutdown()

    def _local(self, text: str):
        """A read of the coordinator's own system.local: at ONE, whatever --consistency says (a level
        such as TWO cannot be met on a table kept on one node, and would fail the ping, not the work)."""
        try:
            return self.client.execute(SimpleStatement(text, consistency_level=ConsistencyLevel.ONE)).one()
        except DbshError:
            raise
        except Exception as e:  # noqa: BLE001 - translated to one line
            raise self._error(e) from None

    def server_info(self) -> dict[str, Any]:
        row = self._local("SELECT release_version, cluster_name, data_center FROM system.local")
        return {"backend": "Cassandra", "version": row["release_version"], "database": self.keyspace,
                "cluster": row["cluster_name"], "data_center": row["data_center"]}

    def ping(self) -> float:
        start = time.perf_counter()
        self._local("SELECT release_version FROM system.local")
        return time.perf_counter() - start

    # -- running statements ----------------------------------------------------------------
    def _configure(self, stmt):
        if self.option("consistency"):
            stmt.consistency_level = consistency_level(self.option("consistency"))
        if getattr(stmt, "fetch_size", None) is None:
            stmt.fetch_size = FETCH_SIZE
        return stmt

    def _run(self, stmt, values=None, *, trace: bool = False):
        self._configure(stmt)
        try:
            return self.client.execute(stmt, values, trace=trace)
        except DbshError:
            raise
        except Exception as e:  # noqa: BLE001 - translated to one line
            raise self._error(e) from None

    def _prepare(self, text: str):
        if text not in self._prepared:
            try:
                self._prepared[text] = self.client.prepare(text)
            except DbshError:
                raise
            except Exception as e:  # noqa: BLE001
                raise self._error(e) from None
        return self._prepared[text]

    def _bound(self, text: str, values: list[Any]):
        stmt = self._prepare(text).bind(values)
        return self._configure(stmt)

    def _stream(self, result, skip: int = 0) -> Iterator[dict]:
        rows = iter(result)
        if skip:
            rows = islice(rows, skip, None)   # CQL has no OFFSET: skipped rows are read and dropped
        # the driver reads a timestamp as a naive datetime in UTC: say that it is UTC
        stamps = [name for name, kind in zip(result.column_names or (), result.column_types or ())
                  if _has_timestamps(kind)]
        if stamps:
            rows = (_in_utc(row, stamps) for row in rows)
        try:
            yield from rows
        except Exception as e:  # noqa: BLE001
            raise self._error(e) from None

    # -- catalog ---------------------------------------------------------------------------
    def _keyspace_meta(self, name: str):
        self.client   # connect (metadata comes with the control connection)
        ks = self.cluster.metadata.keyspaces.get(name)
        if ks is None:
            raise NotFound(f"no keyspace named {name!r}")
        return ks

    def table(self, name: str) -> TableMeta:
        if name in self._meta:
            return self._meta[name]
        keyspace, table = self.keyspace, name
        if keyspace is None or (name not in self._keyspace_meta(keyspace).tables and "." in name):
            if "." not in name:
                raise UsageError(f"no keyspace chosen for table {name!r}",
                                 hint="put it in the URL (cassandra://host/keyspace) or write keyspace.table")
            keyspace, table = name.split(".", 1)
        tables = self._keyspace_meta(keyspace).tables
        if table not in tables:
            known = sorted(tables)
            raise NotFound(f"no table named {table!r} in keyspace {keyspace!r}",
                           hint=("tables: " + ", ".join(known[:10])) if known else "the keyspace has no tables")
        self._meta[name] = TableMeta.from_driver(tables[table])
        return self._meta[name]

    def databases(self) -> Result:
        """The keyspaces (Cassandra's databases), the current one marked."""
        self.client
        return Result(({"keyspace": ks, "current": ks == self.keyspace}
                       for ks in sorted(self.cluster.metadata.keyspaces)), ["keyspace", "current"])

    def collections(self) -> list[str]:
        if self.keyspace:
            return sorted(self._keyspace_meta(self.keyspace).tables)
        self.client
        return sorted(f"{ks}.{t}" for ks, meta in self.cluster.metadata.keyspaces.items()
                      if not ks.startswith("system") for t in meta.tables)

    def describe(self, name: str) -> Result:
        meta = self.table(name)
        rows = []
        for col, kind in meta.columns.items():
            if col in meta.partition_key:
                role = f"partition key {meta.partition_key.index(col) + 1}"
            elif col in meta.clustering:
                i = meta.clustering.index(col)
                role = f"clustering {i + 1} {meta.clustering_order[i]}"
            else:
                role = "regular"
            rows.append({"column": col, "type": kind, "key": role, "indexed": col in meta.indexed})
        order = {c: i for i, c in enumerate(meta.primary_key)}
        rows.sort(key=lambda r: (order.get(r["column"], len(order)), r["column"]))
        return Result(rows, ["column", "type", "key", "indexed"])

    # -- uniform verbs ---------------------------------------------------------------------
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
            print(f"dbsh: warning: the filter does not give one full primary key: reading the matching keys of "
                  f"{meta.name} first, then writing each row (not atomic)", file=sys.stderr)
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

    # -- native language -------------------------------------------------------------------
    def execute(self, text: str, params: dict[str, Any] | None = None) -> Result:
        statements = split_statements(text)
        if not statements:
            raise UsageError("empty CQL statement")
        trace = bool(self.option("trace"))
        result = None
        for statement in statements:
            result = self._execute_one(statement, params or {}, trace)
            if trace:
                self._print_trace(result)
        if result is None or not result.column_names:
            return Result.status("OK")
        return Result(self._stream(result), list(result.column_names))

    def _execute_one(self, text: str, params: dict[str, Any], trace: bool):
        markers = {m[1:] for m in NAMED_MARKER.findall(_without_literals(text))}
        if not markers:
            return self._run(SimpleStatement(text, fetch_size=FETCH_SIZE), trace=trace)
        missing = sorted(markers - set(params))
        if missing:
            raise UsageError(f"missing parameter(s) {', '.join(missing)}", hint="pass -p name=value")
        prepared = self._prepare(text)
        values = {}
        for col in prepared.column_metadata:
            values[col.name] = coerce(str(col.type.cql_parameterized_type()), params.get(col.name), col.name)
        return self._run(self._configure(prepared.bind(values)), trace=trace)

    def _print_trace(self, result) -> None:
        try:
            trace = result.get_query_trace(max_wait=5)
        except Exception as e:  # noqa: BLE001 - tracing is diagnostics: say so, do not fail the query
            print(f"dbsh: no trace: {one_line(str(e))}", file=sys.stderr)
            return
        total = trace.duration.total_seconds() * 1000 if trace.duration else 0
        print(f"trace {trace.trace_id} on {trace.coordinator}: {trace.request_type}, {total:.3f} ms",
              file=sys.stderr)
        for event in trace.events:
            elapsed = event.source_elapsed.total_seconds() * 1000 if event.source_elapsed else 0
            print(f"  {elapsed:10.3f} ms  {event.source}  {event.thread_name}  {event.description}", file=sys.stderr)


def _has_timestamps(kind) -> bool:
    """Whether a column's type (a cassandra.cqltypes class) is or holds a timestamp (list<timestamp>...)."""
    if not isinstance(kind, type):
        return False
    return issubclass(kind, cassandra.cqltypes.DateType) or any(map(_has_timestamps, getattr(kind, "subtypes", ())))


def _in_utc(row: dict, names: list[str]) -> dict:
    for name in names:
        row[name] = _utc(row.get(name))
    return row


def _utc(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value
    if isinstance(value, list):
        return [_utc(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_utc(v) for v in value)
    if isinstance(value, cassandra.util.SortedSet):
        return cassandra.util.SortedSet(_utc(v) for v in value)
    if isinstance(value, cassandra.util.OrderedMap):
        return cassandra.util.OrderedMap((_utc(k), _utc(v)) for k, v in value.items())
    return value


def _without_literals(text: str) -> str:
    """CQL with strings, quoted names and comments blanked (to find :name markers safely)."""
    return re.sub(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$\$.*?\$\$|(--|//)[^\n]*|/\*.*?\*/", " ", text, flags=re.S)
