"""The Cassandra session (DataStax ``cassandra-driver``): the connection, its errors, the catalog and
CQL passthrough with ``:name`` parameters; the uniform verbs come from ``documents.py``."""

from __future__ import annotations

import datetime as dt
import ssl
import time
from collections.abc import Iterator
from typing import Any

import cassandra
import cassandra.cqltypes
import cassandra.util
from cassandra import ConsistencyLevel, OperationTimedOut
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.protocol import ErrorMessage
from cassandra.query import SimpleStatement, dict_factory

from dbsh.drivers.base import Capabilities, Result
from dbsh.drivers.cassandra.cql import NAMED_MARKER, TableMeta, split_statements, without_literals
from dbsh.drivers.cassandra.documents import CassandraDocuments
from dbsh.drivers.cassandra.urls import parse_url
from dbsh.drivers.cassandra.values import coerce, map_json
from dbsh.errors import ConnectError, DbshError, NotFound, QueryError, UsageError, one_line, redact
from dbsh.output import register_encoder

# what a server answers when it refuses a statement (not a connection failure)
SERVER_ERRORS = (cassandra.RequestExecutionException, cassandra.RequestValidationException, ErrorMessage)
FETCH_SIZE = 1000


# Values of collection and time types come back as the driver's own classes: their JSON forms.
register_encoder(cassandra.util.SortedSet, list)
register_encoder(cassandra.util.OrderedMap, map_json)
register_encoder(cassandra.util.Time, str)          # 12:34:56.123456789 (nanoseconds)
register_encoder(cassandra.util.Date, str)          # dates outside Python's years 1-9999
register_encoder(cassandra.util.Duration, str)


def consistency_level(name: Any) -> int:
    key = str(name).strip().upper().replace("-", "_")
    if key not in ConsistencyLevel.name_to_value:
        raise UsageError(f"unknown consistency level {name!r}",
                         hint="one of " + ", ".join(ConsistencyLevel.name_to_value))
    return ConsistencyLevel.name_to_value[key]


def connect(target) -> CassandraSession:
    return CassandraSession(target)


class CassandraSession(CassandraDocuments):
    capabilities = Capabilities(language="cql", transactions=False, schema=True, statement_terminator=";")
    name = "Cassandra"

    def __init__(self, target):
        super().__init__(target)
        spec = parse_url(target.url)
        opts = spec["options"]
        self.keyspace: str | None = spec["keyspace"]
        self._default_consistency = consistency_level(opts.pop("consistency", "LOCAL_ONE"))
        self.timeout = self._connect_seconds(opts.pop("connect_timeout", None))
        # connect_timeout bounds each connection's TCP connect, OPTIONS/STARTUP and login (so a port where
        # another protocol listens, or none answers, fails in time); control_connection_timeout the first
        # queries (system.local, peers, schema). Each contact point is tried in turn, each within it.
        kwargs: dict[str, Any] = {"contact_points": spec["hosts"], "port": spec["port"],
                                  "connect_timeout": self.timeout, "control_connection_timeout": self.timeout,
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

    def _connect_seconds(self, in_url: str | None) -> float:
        """--connect-timeout (or the profile's connect_timeout) first, then the URL's ?connect_timeout=,
        then dbsh's default."""
        if in_url is None or (self.target.options or {}).get("connect_timeout") not in (None, ""):
            return self.connect_timeout
        try:
            seconds = float(in_url)
        except ValueError:
            seconds = 0
        if not seconds > 0:
            raise UsageError(f"?connect_timeout= needs a number of seconds above 0, got {in_url!r}")
        return seconds

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
        text = "; ".join(f"{host}: {self._failure(err)}" for host, err in errors.items()) or one_line(str(e))
        text = redact(text, self.target.password)
        if any(isinstance(err, cassandra.AuthenticationFailed) for err in errors.values()):
            return ConnectError(f"cannot authenticate to {self.target.display()}: {text}")
        return ConnectError(f"cannot connect to {self.target.display()}: {text}")

    def _failure(self, error: Exception) -> str:
        """One host's connection failure in a line; a timeout says which limit it hit."""
        if isinstance(error, OperationTimedOut):
            return f"no CQL answer within {self.timeout:g} s (--connect-timeout; is this a Cassandra port?)"
        return one_line(str(error))

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

    def _stream(self, result) -> Iterator[dict]:
        rows = iter(result)
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
        _ = self.client   # connect (metadata comes with the control connection)
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
        _ = self.client
        return Result(({"keyspace": ks, "current": ks == self.keyspace}
                       for ks in sorted(self.cluster.metadata.keyspaces)), ["keyspace", "current"])

    def collections(self) -> list[str]:
        if self.keyspace:
            return sorted(self._keyspace_meta(self.keyspace).tables)
        _ = self.client
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
        markers = {m[1:] for m in NAMED_MARKER.findall(without_literals(text))}
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
            self.notice(f"dbsh: no trace: {one_line(str(e))}")
            return
        total = trace.duration.total_seconds() * 1000 if trace.duration else 0
        self.notice(f"trace {trace.trace_id} on {trace.coordinator}: {trace.request_type}, {total:.3f} ms")
        for event in trace.events:
            elapsed = event.source_elapsed.total_seconds() * 1000 if event.source_elapsed else 0
            self.notice(f"  {elapsed:10.3f} ms  {event.source}  {event.thread_name}  {event.description}")


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
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
    if isinstance(value, list):
        return [_utc(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_utc(v) for v in value)
    if isinstance(value, cassandra.util.SortedSet):
        return cassandra.util.SortedSet(_utc(v) for v in value)
    if isinstance(value, cassandra.util.OrderedMap):
        return cassandra.util.OrderedMap((_utc(k), _utc(v)) for k, v in value.items())
    return value
