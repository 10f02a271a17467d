"""Neo4j driver (the official ``neo4j`` package, Bolt): Cypher passthrough and the uniform verbs.

Collection = label. Filters compile to a Cypher WHERE with ``$parameters``; labels and property
names are validated and backtick-quoted, so no identifier or value is pasted into query text.
A dbsh Session holds one neo4j Driver and one neo4j session: a CLI run opens one connection.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from typing import Any, Iterable, Iterator
from urllib.parse import parse_qsl, unquote, urlsplit

import neo4j
import neo4j.exceptions as nx
import neo4j.graph
import neo4j.spatial
import neo4j.time

from dbsh import query as q
from dbsh.drivers.base import Capabilities, Result, Session, WriteResult, batched
from dbsh.errors import ConnectError, DbshError, QueryError, Unsupported, UsageError, one_line, redact
from dbsh.output import register_encoder

SCHEMES = ("neo4j", "neo4j+s", "neo4j+ssc", "bolt", "bolt+s", "bolt+ssc")
FETCH_SIZE = 1000
DESCRIBE_SAMPLE = 1000
DELETE_BATCH = 10000      # nodes deleted per transaction by the delete verb (outside \begin)
COMPLETION_LABELS = 200   # labels whose nodes the shell's completion samples (each one query)
COMPLETION_SAMPLE = 100   # nodes sampled per label
MAX_NAME = 255


# -- how graph values look in json (lossless) and in tables (the same, as one JSON cell) -------
def node_json(node: neo4j.graph.Node) -> dict[str, Any]:
    return {"element_id": node.element_id, "labels": sorted(node.labels), "properties": plain(dict(node))}


def relationship_json(rel: neo4j.graph.Relationship) -> dict[str, Any]:
    return {"element_id": rel.element_id, "type": rel.type,
            "start": rel.start_node.element_id if rel.start_node is not None else None,
            "end": rel.end_node.element_id if rel.end_node is not None else None,
            "properties": plain(dict(rel))}


def path_json(path: neo4j.graph.Path) -> dict[str, Any]:
    return {"nodes": [node_json(n) for n in path.nodes],
            "relationships": [relationship_json(r) for r in path.relationships]}


_FRACTION = re.compile(r"\.(\d*[1-9])?0+(?=\D|$)")


def temporal_text(value) -> str:
    """A date, time, datetime or duration in ISO 8601 as Neo4j's toString() writes it: the driver's
    iso_format() without its trailing zeros of nanoseconds, UTC as Z, a named zone after the offset
    in brackets (``2024-05-01T10:00:00+02:00[Europe/Stockholm]``)."""
    text = _FRACTION.sub(lambda m: "." + m.group(1) if m.group(1) else "", value.iso_format(), count=1)
    tz = getattr(value, "tzinfo", None)
    if tz is not None:
        if text.endswith("+00:00"):
            text = text[:-6] + "Z"
        zone = getattr(tz, "zone", None) or getattr(tz, "key", None)
        if zone and zone != "UTC":
            text += f"[{zone}]"
    return text


def point_json(point: neo4j.spatial.Point) -> dict[str, Any]:
    return {"srid": point.srid, "coordinates": list(point)}


def plain(value: Any) -> Any:
    """Duration and Point are tuples: JSON encoders write any tuple as a bare list (``[0, 1, 0, 0]``
    for P1D) and never ask a registered encoder. Give them (in lists and maps too) their own form."""
    if isinstance(value, neo4j.time.Duration):
        return temporal_text(value)
    if isinstance(value, neo4j.spatial.Point):
        return point_json(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


register_encoder(neo4j.graph.Node, node_json)
register_encoder(neo4j.graph.Relationship, relationship_json)
register_encoder(neo4j.graph.Path, path_json)
for _kind in (neo4j.time.Date, neo4j.time.Time, neo4j.time.DateTime, neo4j.time.Duration):
    register_encoder(_kind, temporal_text)
register_encoder(neo4j.spatial.Point, point_json)


# -- the driver's log --------------------------------------------------------------------------
class NotificationLines(logging.Handler):
    """The driver logs every server notification of severity WARNING (``The label `Persn` does not
    exist``) as the repr of the whole status object and the query, which Python's last-resort
    handler prints on stderr. One line instead: ``dbsh: warning: ... (01N50)``."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            status = getattr(record.args[0], "notification", None) if record.args else None
            text = (getattr(status, "status_description", None) or getattr(status, "description", None)
                    or record.getMessage())
            code = getattr(status, "gql_status", None) or getattr(status, "code", None)
            text = one_line(str(text)).removeprefix("warn: ")
            print(f"dbsh: warning: {text}" + (f" ({code})" if code else ""), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never break a command
            self.handleError(record)


_notifications = logging.getLogger("neo4j.notifications")
if not any(isinstance(h, NotificationLines) for h in _notifications.handlers):
    _notifications.addHandler(NotificationLines())
_notifications.propagate = False
# the rest of the driver's log (a retried deadlock, a routing table it is still waiting for) is not
# the user's business: what fails for good reaches them as one error line
logging.getLogger("neo4j").addHandler(logging.NullHandler())


# -- identifiers ---------------------------------------------------------------------------------
def quote_name(name: Any, what: str = "name") -> str:
    """A label, relationship type or property name as a backtick-quoted Cypher identifier."""
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or "\x00" in name:
        raise UsageError(f"invalid {what} {name!r}")
    # backticks are escaped by doubling; nothing inside `...` can end the identifier
    return "`" + name.replace("`", "``") + "`"


# -- filter compilation (pure: AST -> Cypher text + parameters) --------------------------------
class CypherFilter:
    """Compile the shared filter AST to a Cypher boolean expression over ``var`` with ``$p<N>``."""

    def __init__(self, var: str = "n", params: dict[str, Any] | None = None):
        self.var = var
        self.params = params if params is not None else {}

    def param(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return "$" + name

    def prop(self, field: str) -> str:
        if "." in field:
            raise Unsupported(f"nested field {field!r}: Neo4j properties are flat, so a filter on a nested path "
                              "is not supported")
        return f"{self.var}.{quote_name(field, 'property name')}"

    def compile(self, node: q.Node) -> str:
        if isinstance(node, q.And):
            if not node.items:
                return "true"
            return "(" + " AND ".join(self.compile(n) for n in node.items) + ")"
        if isinstance(node, q.Or):
            return "(" + " OR ".join(self.compile(n) for n in node.items) + ")"
        if isinstance(node, q.Not):
            # MongoDB semantics: NOT(age > 5) also matches nodes without age (Cypher gives null)
            return f"(NOT coalesce({self.compile(node.item)}, false))"
        return self.compare(node)

    def compare(self, node: q.Cmp) -> str:
        prop, op, value = self.prop(node.field), node.op, node.value
        values = value if op in ("in", "nin") else (value,)
        if op != "exists" and any(isinstance(v, dict) for v in values):
            raise Unsupported(f"comparing property {node.field!r} with a JSON object is not supported on Neo4j "
                              "(property values are scalars or lists)")
        if op == "eq":
            return f"{prop} IS NULL" if value is None else f"{prop} = {self.param(value)}"
        if op == "ne":
            return f"{prop} IS NOT NULL" if value is None else f"({prop} <> {self.param(value)} OR {prop} IS NULL)"
        if op in ("gt", "gte", "lt", "lte"):
            if value is None:
                return "false"
            sign = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
            return f"{prop} {sign} {self.param(value)}"
        # a list property is compared as a whole, as Cypher's = does: an element test would cost every
        # equality filter its index seek (the backend record declares this difference)
        if op == "in":
            plain = [v for v in value if v is not None]
            text = f"{prop} IN {self.param(plain)}"
            return f"({text} OR {prop} IS NULL)" if None in value else text
        if op == "nin":
            plain = [v for v in value if v is not None]
            if None in value:
                return f"({prop} IS NOT NULL AND NOT {prop} IN {self.param(plain)})"
            return f"({prop} IS NULL OR NOT {prop} IN {self.param(plain)})"
        if op == "exists":
            return f"{prop} IS NOT NULL" if value else f"{prop} IS NULL"
        if op == "regex":
            return f"{prop} =~ {self.param(cypher_regex(value, node.options))}"
        raise Unsupported(f"operator ${op} is not supported on Neo4j")


def cypher_regex(pattern: str, options: str = "") -> str:
    """MongoDB's $regex searches; Cypher's =~ must match the whole string: wrap it (Java regex flags)."""
    flags = "".join(sorted(set(options)))
    prefix = f"(?{flags})" if flags else ""
    return rf"{prefix}[\s\S]*(?:{pattern})[\s\S]*"


def compile_where(where: q.Filter, var: str = "n", params: dict[str, Any] | None = None) -> tuple[str, dict]:
    """A filter as `` WHERE ...`` (empty for the empty filter) and its parameters."""
    compiler = CypherFilter(var, params)
    if where.is_empty:
        return "", compiler.params
    return " WHERE " + compiler.compile(where.ast), compiler.params


def compile_find(label: str, where: q.Filter, *, sort=None, limit=None, skip=None,
                 returns: str = "n") -> tuple[str, dict]:
    clause, params = compile_where(where)
    text = f"MATCH (n:{quote_name(label, 'label')}){clause} RETURN {returns}"
    if sort:
        # MongoDB's order: a missing value sorts first ascending, last descending (Cypher puts null
        # last ascending): order by "has a value" first
        keys = []
        for f, d in sort:
            prop = f"n.{quote_name(f, 'property name')}"
            desc = " DESC" if d < 0 else ""
            keys += [f"{prop} IS NOT NULL{desc}", f"{prop}{desc}"]
        text += " ORDER BY " + ", ".join(keys)
    if skip:
        if skip < 0:
            raise UsageError("--skip must not be negative")
        params["skip"] = int(skip)
        text += " SKIP $skip"
    if limit is not None:
        if limit < 0:
            raise UsageError("--limit must not be negative")
        params["limit"] = int(limit)
        text += " LIMIT $limit"
    return text, params


def compile_update(label: str, where: q.Filter, change: q.Update, *, one: bool = False) -> tuple[str, dict]:
    clause, params = compile_where(where)
    text = f"MATCH (n:{quote_name(label, 'label')}){clause}"
    if one:
        text += " WITH n LIMIT 1"
    assignments: list[str] = []
    removes: list[str] = []
    for item in change.changes:
        if isinstance(item, q.Set):
            if isinstance(item.value, dict):
                raise Unsupported(f"$set {item.field!r} to a JSON object: Neo4j properties are scalars or lists")
            name = f"set{len(assignments)}"
            params[name] = item.value
            assignments.append(f"n.{quote_name(item.field, 'property name')} = ${name}")
        elif isinstance(item, q.Unset):
            removes.append(f"n.{quote_name(item.field, 'property name')}")
        else:
            prop = f"n.{quote_name(item.field, 'property name')}"
            name = f"inc{len(assignments)}"
            params[name] = item.amount
            assignments.append(f"{prop} = coalesce({prop}, 0) + ${name}")
    if assignments:
        text += " SET " + ", ".join(assignments)
    if removes:
        text += " REMOVE " + ", ".join(removes)
    return text + " RETURN count(n) AS matched", params


def check_properties(doc: Any, where: str) -> dict:
    if not isinstance(doc, dict):
        raise UsageError(f"{where}: a document must be a JSON object")
    for key, value in doc.items():
        quote_name(key, "property name")
        items = value if isinstance(value, list) else [value]
        if any(isinstance(v, dict | list) for v in items):
            raise UsageError(f"{where}: property {key!r} holds a nested object or list; Neo4j properties are "
                             "scalars or lists of scalars")
    return doc


# -- native statements -----------------------------------------------------------------------
_PLAN = re.compile(r"^\s*(EXPLAIN|PROFILE)\b", re.IGNORECASE)


def split_statements(text: str) -> list[str]:
    """Split Cypher on ';' outside strings, quoted names and comments; drop empty statements."""
    from dbsh.statements import split_terminated

    return split_terminated(text, "cypher")


def plan_rows(plan: dict, profiled: bool) -> Iterator[dict]:
    """A query plan as rows whose ``operator`` column draws the tree."""

    def walk(node: dict, prefix: str, last: bool, root: bool) -> Iterator[dict]:
        args = node.get("args") or node.get("arguments") or {}
        branch = "" if root else ("└─ " if last else "├─ ")
        row = {"operator": prefix + branch + str(node.get("operatorType", "?")).split("@", 1)[0],
               "details": args.get("Details") or ", ".join(node.get("identifiers") or []) or None,
               "estimated_rows": _round(args.get("EstimatedRows"))}
        if profiled:
            row["rows"] = node.get("rows", args.get("Rows"))
            row["db_hits"] = node.get("dbHits", args.get("DbHits"))
        yield row
        children = node.get("children") or []
        deeper = prefix + ("" if root else ("   " if last else "│  "))
        for i, child in enumerate(children):
            yield from walk(child, deeper, i == len(children) - 1, False)

    yield from walk(plan, "", True, True)


def _round(value):
    return round(value, 1) if isinstance(value, float) else value


# refused logins the driver raises as plain ClientErrors (AuthError covers Unauthorized): after
# dbms.security.auth_max_failed_attempts wrong passwords the user is locked out for a while
AUTH_CODES = frozenset({"Neo.ClientError.Security.AuthenticationRateLimit",
                        "Neo.ClientError.Security.CredentialsExpired"})
TX_FAILED = "the transaction failed at an earlier statement and the server rolled it back"

COUNTERS = ("nodes_created", "nodes_deleted", "relationships_created", "relationships_deleted",
            "properties_set", "labels_added", "labels_removed", "indexes_added", "indexes_removed",
            "constraints_added", "constraints_removed")


def counters_text(counters) -> str:
    parts = [f"{name.replace('_', ' ')}: {getattr(counters, name)}" for name in COUNTERS
             if getattr(counters, name, 0)]
    return ", ".join(parts) if parts else "no changes"


# -- connection --------------------------------------------------------------------------------
def connect(target) -> "Neo4jSession":
    return Neo4jSession(target)


class Neo4jSession(Session):
    capabilities = Capabilities(language="cypher", transactions=True, schema=False, statement_terminator=";",
                                dates=True, decimals=False,
                                nested=False)
    name = "Neo4j"

    def __init__(self, target):
        super().__init__(target)
        parts = urlsplit(target.url)
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            raise UsageError(f"not a Neo4j URL: {scheme}://")
        try:
            host, port = parts.hostname or "localhost", parts.port or 7687
        except ValueError as e:
            raise UsageError(f"invalid URL {target.display()}: {e}") from None
        options = dict(parse_qsl(parts.query))
        self.database = unquote(parts.path.strip("/")) or options.pop("database", None) or None
        user = target.username or os.environ.get("NEO4J_USERNAME") or os.environ.get("NEO4J_USER")
        password = target.password if target.password is not None else os.environ.get("NEO4J_PASSWORD")
        self._secret = password
        auth = (user, password or "") if user else None
        config: dict[str, Any] = {"user_agent": "dbsh", "fetch_size": FETCH_SIZE}
        for key, conf in (("connection_timeout", "connection_timeout"),
                          ("acquisition_timeout", "connection_acquisition_timeout")):
            if key in options:
                try:
                    config[conf] = float(options.pop(key))
                except ValueError:
                    raise UsageError(f"?{key}= needs a number of seconds") from None
        config.setdefault("connection_timeout", 10.0)
        config.setdefault("connection_acquisition_timeout", 15.0)
        uri = f"{scheme}://{host}:{port}"
        try:
            self.client = neo4j.GraphDatabase.driver(uri, auth=auth, **config)
        except (nx.ConfigurationError, ValueError) as e:
            raise UsageError(f"invalid Neo4j URL {target.display()}: {one_line(str(e))}") from None
        self._session: neo4j.Session | None = None
        self._tx: neo4j.Transaction | None = None
        self._tx_failed = False   # a statement of the open transaction failed: the server rolled it back

    # -- errors ----------------------------------------------------------------------------
    def _error(self, e: Exception) -> DbshError:
        if isinstance(e, DbshError):
            return e
        if self._tx is not None:
            self._tx_failed = True
        # the server's own message; a driver-side error's .message is a generic GQL description
        # ("50N42: Unexpected error has occurred. See debug log for details.")
        message = e.message if isinstance(e, nx.Neo4jError) else None
        text = redact(one_line(message or str(e)), self._secret)
        if text.endswith(":"):   # "Couldn't connect to h:p (...):" then the reason on the next lines
            text = " ".join(str(e).split())
        if isinstance(e, nx.AuthError) or getattr(e, "code", None) in AUTH_CODES:
            return ConnectError(f"cannot authenticate to {self.target.display()}: {text}")
        if isinstance(e, (nx.ServiceUnavailable, nx.SessionExpired, nx.ConnectionAcquisitionTimeoutError)) or \
                getattr(e, "code", None) == "Neo.ClientError.Database.DatabaseNotFound":
            return ConnectError(f"cannot connect to {self.target.display()}: {text}")
        if isinstance(e, nx.Neo4jError):
            code = getattr(e, "code", None)
            return QueryError(f"{text} ({code})" if code and code not in text else text)
        if isinstance(e, (nx.ConfigurationError, nx.TransactionError, nx.ResultError)):
            return QueryError(text)
        if isinstance(e, (OSError, nx.DriverError)):
            return ConnectError(f"cannot connect to {self.target.display()}: {text}")
        if isinstance(e, (TypeError, ValueError)):
            return UsageError(text)
        return QueryError(text)

    def _neo(self) -> neo4j.Session:
        if self._session is None:
            self._session = self.client.session(database=self.database, fetch_size=FETCH_SIZE)
        return self._session

    def _run(self, text: str, params: dict | None = None) -> neo4j.Result:
        """Run one statement in the open transaction, or as an auto-commit transaction."""
        if self._tx_failed:
            raise QueryError(f"{TX_FAILED}: \\rollback ends it")
        try:
            runner = self._tx if self._tx is not None else self._neo()
            return runner.run(text, params or {})
        except Exception as e:  # noqa: BLE001 - translated to one line
            raise self._error(e) from None

    def _all(self, text: str, params: dict | None = None) -> list[dict]:
        """A small, bounded result (catalog queries) as plain dicts."""
        try:
            result = self._run(text, params)
            return [dict(zip(r.keys(), r.values())) for r in result]
        except DbshError:
            raise
        except Exception as e:  # noqa: BLE001
            raise self._error(e) from None

    def _summary(self, result: neo4j.Result):
        try:
            return result.consume()
        except Exception as e:  # noqa: BLE001
            raise self._error(e) from None

    def _closer(self, result: neo4j.Result):
        """Result.close for a streamed result: the rest consumed. A result whose rows raised the
        server's error already answers ResultFailedError then, which would hide that error."""
        def close() -> None:
            try:
                result.consume()
            except nx.ResultFailedError:
                pass
            except Exception as e:  # noqa: BLE001
                raise self._error(e) from None
        return close

    def _stream(self, result: neo4j.Result, keys: list[str], convert=None) -> Iterator[dict]:
        try:
            for record in result:
                row = {key: plain(value) for key, value in zip(keys, record.values())}
                yield convert(row) if convert else row
        except Exception as e:  # noqa: BLE001
            raise self._error(e) from None

    # -- connection ------------------------------------------------------------------------
    def server_info(self) -> dict[str, Any]:
        summary = self._summary(self._run("RETURN 1 AS ok"))
        agent = summary.server.agent or "Neo4j"
        info: dict[str, Any] = {"backend": "Neo4j", "version": agent.split("/", 1)[-1],
                                "database": summary.database or self.database,
                                "bolt": ".".join(map(str, summary.server.protocol_version))}
        return info

    def ping(self) -> float:
        start = time.perf_counter()
        if self._tx is None:
            self._summary(self._run("RETURN 1"))
        else:   # not inside the user's transaction (a failed one answers every statement with an error)
            try:
                with self.client.session(database=self.database) as session:
                    session.run("RETURN 1").consume()
            except Exception as e:  # noqa: BLE001
                raise self._error(e) from None
        return time.perf_counter() - start

    def close(self) -> None:
        try:
            if self._tx is not None:
                self._tx.close()
            if self._session is not None:
                self._session.close()
        except Exception:  # noqa: BLE001 - closing must not hide the real outcome
            pass
        finally:
            self._tx = self._session = None
            self._tx_failed = False
            self.client.close()

    # -- transactions ----------------------------------------------------------------------
    def begin(self) -> None:
        if self._tx is not None:
            raise UsageError("a transaction is already open")
        try:
            self._tx = self._neo().begin_transaction()
        except Exception as e:  # noqa: BLE001
            raise self._error(e) from None

    def commit(self) -> None:
        self._finish("commit")

    def rollback(self) -> None:
        self._finish("rollback")

    def _finish(self, how: str) -> None:
        if self._tx is None:
            raise UsageError("no transaction is open")
        tx, self._tx = self._tx, None
        failed, self._tx_failed = self._tx_failed, False
        if failed:
            try:
                tx.close()   # the server has rolled it back already
            except Exception:  # noqa: BLE001 - nothing is left to undo
                pass
            if how == "commit":
                raise QueryError(f"{TX_FAILED}: nothing was committed")
            return
        try:
            getattr(tx, how)()
        except Exception as e:  # noqa: BLE001
            raise self._error(e) from None

    @property
    def in_transaction(self) -> bool:
        return self._tx is not None

    # -- catalog ---------------------------------------------------------------------------
    def collections(self) -> list[str]:
        return sorted(str(r["label"]) for r in self._all("CALL db.labels() YIELD label RETURN label"))

    def vocabulary(self) -> dict[str, Any]:
        """Relationship types and property keys, for completion."""
        found: dict[str, Any] = {}
        for key, text in (("relationships", "CALL db.relationshipTypes() YIELD relationshipType AS n RETURN n"),
                          ("properties", "CALL db.propertyKeys() YIELD propertyKey AS n RETURN n")):
            try:
                found[key] = sorted(str(r["n"]) for r in self._all(text))
            except DbshError:
                found[key] = []
        return found

    def completions(self) -> dict[str, list[str]]:
        """For the shell: every label (db.labels()) with the property keys of a sample of its nodes;
        past COMPLETION_LABELS labels, every property key the database has (db.propertyKeys())."""
        labels = self.collections()
        fields: dict[str, list[str]] = {}
        for name in labels[:COMPLETION_LABELS]:
            rows = self._all(f"MATCH (n:{quote_name(name, 'label')}) WITH n LIMIT $sample "
                             "UNWIND keys(n) AS key RETURN DISTINCT key", {"sample": COMPLETION_SAMPLE})
            fields[name] = sorted(str(r["key"]) for r in rows)
        if len(labels) > COMPLETION_LABELS:
            keys = sorted(str(r["key"]) for r in self._all("CALL db.propertyKeys() YIELD propertyKey AS key "
                                                           "RETURN key"))
            fields.update((name, keys) for name in labels[COMPLETION_LABELS:])
        return fields

    def databases(self) -> Result:
        rows = self._all("SHOW DATABASES YIELD name, currentStatus, default RETURN name, currentStatus AS status, "
                         "default")
        return Result(rows, ["name", "status", "default"])

    def describe(self, name: str) -> Result:
        label = quote_name(name, "label")
        rows: list[dict] = []
        # properties and their types, from a bounded sample of the label's nodes
        sample = self._all(f"MATCH (n:{label}) WITH n LIMIT $sample RETURN properties(n) AS p",
                           {"sample": DESCRIBE_SAMPLE})
        seen: dict[str, dict[str, None]] = {}
        for row in sample:
            for key, value in (row["p"] or {}).items():
                seen.setdefault(key, {})[_type_name(value)] = None
        total = len(sample)
        for key in sorted(seen):
            present = sum(1 for row in sample if key in (row["p"] or {}))
            rows.append({"kind": "property", "name": key, "detail": " | ".join(seen[key]) +
                         (f" (in {present} of {total} sampled nodes)" if present != total else "")})
        for index in self._schema_rows("SHOW INDEXES", "CALL db.indexes()", name):
            rows.append({"kind": "index", "name": index["name"], "detail": index["detail"]})
        for constraint in self._schema_rows("SHOW CONSTRAINTS", "CALL db.constraints()", name):
            rows.append({"kind": "constraint", "name": constraint["name"], "detail": constraint["detail"]})
        rels = self._all(f"MATCH (n:{label}) WITH n LIMIT $sample MATCH (n)-[r]-(m) "
                         "RETURN type(r) AS type, startNode(r) = n AS outgoing, count(*) AS n",
                         {"sample": DESCRIBE_SAMPLE})
        for rel in sorted(rels, key=lambda r: (r["type"], not r["outgoing"])):
            arrow = f"(:{name})-[:{rel['type']}]->()" if rel["outgoing"] else f"()-[:{rel['type']}]->(:{name})"
            rows.append({"kind": "relationship", "name": rel["type"], "detail": f"{arrow} x{rel['n']}"})
        if not rows and name not in self.collections():
            from dbsh.errors import NotFound

            raise NotFound(f"no label named {name!r}")
        return Result(rows, ["kind", "name", "detail"])

    def _schema_rows(self, modern: str, legacy: str, label: str) -> list[dict]:
        """Indexes or constraints on a label: SHOW ... (Neo4j 4.2+), else the db.* procedure."""
        try:
            found = self._all(modern)
        except QueryError:
            try:
                found = self._all(legacy)
            except QueryError:
                return []
        rows = []
        for item in found:
            labels = item.get("labelsOrTypes") or ([item["label"]] if item.get("label") else [])
            if label not in labels:
                continue
            props = item.get("properties") or []
            kind = item.get("type") or ", ".join(sorted({t for ts in (item.get("types") or {}).values()
                                                         for t in ts}))
            name = item.get("name") or f"{label}({', '.join(props)})"
            rows.append({"name": name, "detail": f"{kind} on ({', '.join(props)})".strip()})
        return rows

    # -- uniform verbs ---------------------------------------------------------------------
    def insert(self, name: str, docs: Iterable[dict], *, batch: int = 1000, create: bool = False,
               progress=None) -> WriteResult:
        label = quote_name(name, "label")
        done = 0
        for chunk in batched(docs, batch):
            for i, doc in enumerate(chunk, done + 1):
                check_properties(doc, f"document {i}")
            # one statement per run of documents with the same keys; rows travel as lists, so property
            # names appear only quoted in the text (never as parameter map keys)
            for keys, rows in _same_keys(chunk):
                sets = ", ".join(f"n.{quote_name(k, 'property name')} = r[{i}]" for i, k in enumerate(keys))
                text = f"UNWIND $rows AS r CREATE (n:{label})" + (f" SET {sets}" if sets else "")
                try:
                    summary = self._summary(self._run(text, {"rows": rows}))
                except DbshError as e:
                    if done and self._tx is None:
                        e.message += f" ({done} nodes were created in {name} before this batch)"
                    raise
                done += summary.counters.nodes_created
            if progress:
                progress(done)
        return WriteResult("inserted", name, done)

    def find(self, name, where, *, fields=None, sort=None, limit=None, skip=None) -> Result:
        text, params = compile_find(name, where, sort=sort, limit=limit, skip=skip, returns="properties(n) AS n")
        result = self._run(text, params)
        if fields:
            def convert(row):
                props = row["n"] or {}
                return {f: props.get(f) for f in fields}
            for f in fields:
                quote_name(f, "property name")
            return Result(self._stream(result, ["n"], convert), list(fields), close=self._closer(result))
        return Result(self._stream(result, ["n"], lambda row: row["n"] or {}), None, close=self._closer(result))

    def count(self, name, where) -> int:
        text, params = compile_find(name, where, returns="count(n) AS count")
        rows = self._all(text, params)
        return int(rows[0]["count"]) if rows else 0

    def update(self, name, where, change, *, upsert=False, one=False) -> WriteResult:
        text, params = compile_update(name, where, change, one=one)
        rows = self._all(text, params)
        matched = int(rows[0]["matched"]) if rows else 0
        if matched == 0 and upsert:
            doc = {k: v for k, v in q.equalities(where.ast).items() if v is not None}
            doc = q.apply_update(change.changes, doc)
            check_properties(doc, "upsert")
            self.insert(name, [doc])
            return WriteResult("upserted", name, 1, matched=0)
        return WriteResult("updated", name, matched, matched=matched)

    def delete(self, name, where, *, one=False) -> WriteResult:
        """DETACH DELETE the matching nodes. Outside an explicit transaction, DELETE_BATCH nodes per
        transaction: one transaction over a large label outgrows the server's transaction memory
        (dbms.memory.transaction.total.max: MemoryPoolOutOfMemoryError), as Neo4j's own
        CALL { ... } IN TRANSACTIONS avoids; an error then says how many were deleted before it."""
        clause, params = compile_where(where)
        text = f"MATCH (n:{quote_name(name, 'label')}){clause}"
        batched_ = not one and self._tx is None
        if one:
            text += " WITH n LIMIT 1"
        elif batched_:
            text += " WITH n LIMIT $batch"
            params["batch"] = DELETE_BATCH
        nodes = relationships = 0
        while True:
            try:
                counters = self._summary(self._run(text + " DETACH DELETE n", params)).counters
            except DbshError as e:
                if nodes:
                    e.message += f" ({nodes} nodes were deleted from {name} before this batch)"
                raise
            nodes += counters.nodes_deleted
            relationships += counters.relationships_deleted
            if not batched_ or counters.nodes_deleted < DELETE_BATCH:
                break
        details = {"relationships deleted": relationships} if relationships else {}
        return WriteResult("deleted", name, nodes, details=details)

    def explain(self, name, where, **find_options) -> Result:
        text, params = compile_find(name, where, **{k: v for k, v in find_options.items()
                                                    if k in ("sort", "limit", "skip")})
        return self._plan("EXPLAIN " + text, params, profiled=False)

    # -- native language -------------------------------------------------------------------
    def execute(self, text: str, params: dict[str, Any] | None = None) -> Result:
        statements = split_statements(text)
        if not statements:
            raise UsageError("empty Cypher statement")
        for statement in statements[:-1]:
            self._summary(self._run(statement, params))
        last = statements[-1]
        match = _PLAN.match(last)
        if match:
            return self._plan(last, params, profiled=match.group(1).upper() == "PROFILE")
        result = self._run(last, params)
        try:
            keys = list(result.keys())
        except Exception as e:  # noqa: BLE001
            raise self._error(e) from None
        if not keys:
            return Result.status(counters_text(self._summary(result).counters))
        return Result(self._stream(result, keys), keys, close=self._closer(result))

    def _plan(self, text: str, params, *, profiled: bool) -> Result:
        result = self._run(text, params)
        try:
            for _ in result:   # PROFILE runs the query: its rows are not the output, the plan is
                pass
        except Exception as e:  # noqa: BLE001
            raise self._error(e) from None
        summary = self._summary(result)
        plan = summary.profile if profiled else summary.plan
        if not plan:
            return Result.status("the server returned no plan for this statement")
        columns = ["operator", "details", "estimated_rows"] + (["rows", "db_hits"] if profiled else [])
        return Result(plan_rows(plan, profiled), columns)


def _same_keys(docs: list[dict]) -> Iterator[tuple[tuple[str, ...], list[list[Any]]]]:
    """Consecutive documents with the same keys, as (keys, rows of values)."""
    keys: tuple[str, ...] | None = None
    rows: list[list[Any]] = []
    for doc in docs:
        k = tuple(doc)
        if rows and k != keys:
            yield keys, rows
            rows = []
        keys = k
        rows.append(list(doc.values()))
    if rows:
        yield keys, rows


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "INTEGER"
    if isinstance(value, float):
        return "FLOAT"
    if isinstance(value, str):
        return "STRING"
    if isinstance(value, list):
        inner = sorted({_type_name(v) for v in value})
        return f"LIST<{' | '.join(inner) or 'ANY'}>"
    return type(value).__name__.upper()
