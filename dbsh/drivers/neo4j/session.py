"""The Neo4j session (the official ``neo4j`` package, Bolt): Cypher passthrough and the uniform verbs.

Collection = label. The verbs' Cypher comes from cypher.py (filters with ``$parameters``, quoted names);
graph values are rendered by values.py. A dbsh Session holds one neo4j Driver and one neo4j session: a
CLI run opens one connection.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import neo4j
import neo4j.exceptions as nx

from dbsh import query as q
from dbsh.drivers.base import Capabilities, Result, Session, WriteResult, batched
from dbsh.drivers.neo4j.cypher import (
    PLAN,
    check_properties,
    compile_find,
    compile_update,
    compile_where,
    counters_text,
    plan_rows,
    quote_name,
    same_keys,
    split_statements,
)
from dbsh.drivers.neo4j.values import plain, type_name
from dbsh.errors import ConnectError, DbshError, QueryError, UsageError, one_line, redact

SCHEMES = ("neo4j", "neo4j+s", "neo4j+ssc", "bolt", "bolt+s", "bolt+ssc")
FETCH_SIZE = 1000
DESCRIBE_SAMPLE = 1000
DELETE_BATCH = 10000      # nodes deleted per transaction by the delete verb (outside \begin)
COMPLETION_LABELS = 200   # labels whose nodes the shell's completion samples (each one query)
COMPLETION_SAMPLE = 100   # nodes sampled per label


# The driver logs each server notification (``The label `Persn` does not exist``) as the repr of the
# whole status object and the query; dbsh reads them from each statement's summary instead and says them
# through Session.notice, one line each. The driver's log (those records, a retried deadlock, a routing
# table it is still waiting for) is not the user's business: what fails for good reaches them as one
# error line. A NullHandler keeps Python's last-resort handler from printing it.
logging.getLogger("neo4j").addHandler(logging.NullHandler())

# refused logins the driver raises as plain ClientErrors (AuthError covers Unauthorized): after
# dbms.security.auth_max_failed_attempts wrong passwords the user is locked out for a while
AUTH_CODES = frozenset({"Neo.ClientError.Security.AuthenticationRateLimit",
                        "Neo.ClientError.Security.CredentialsExpired"})
TX_FAILED = "the transaction failed at an earlier statement and the server rolled it back"


# -- connection --------------------------------------------------------------------------------
def connect(target) -> Neo4jSession:
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
        # --connect-timeout bounds connecting (connection_timeout: the TCP connect) and the server's first
        # reply (the acquisition deadline bounds the Bolt handshake and HELLO/LOGON as well), so a port
        # where another protocol listens fails in time; the replies to statements wait as long as they take
        config.setdefault("connection_timeout", self.connect_timeout)
        config.setdefault("connection_acquisition_timeout", self.connect_timeout)
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
            return ConnectError(f"cannot connect to {self.target.display()}: {self._unreachable(e) or text}")
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

    def _unreachable(self, e: Exception) -> str | None:
        """Why connecting failed, in the user's words, from the driver's chain of errors (a routing
        failure wraps the connection's own in an ExceptionGroup); None: the driver's text says it."""
        pending, seen = [e], 0
        while pending and seen < 32:
            error = pending.pop(0)
            seen += 1
            if isinstance(error, TimeoutError):
                return f"no answer within {self.connect_timeout:g} s (is a Neo4j server listening there?)"
            if isinstance(error, ConnectionRefusedError):
                return "connection refused"
            if "looks like HTTP" in str(error):
                return "the server there speaks HTTP, not Bolt (Bolt's port is 7687 by default)"
            pending += [x for x in (*getattr(error, "exceptions", ()), error.__cause__, error.__context__)
                        if x is not None]
        return None

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
            rows = [dict(zip(r.keys(), r.values())) for r in result]
            self._notify(result.consume())
            return rows
        except DbshError:
            raise
        except Exception as e:  # noqa: BLE001
            raise self._error(e) from None

    def _summary(self, result: neo4j.Result):
        try:
            summary = result.consume()
        except Exception as e:  # noqa: BLE001
            raise self._error(e) from None
        self._notify(summary)
        return summary

    def _notify(self, summary) -> None:
        """The server's warnings about a statement, each as one line through notice():
        ``dbsh: warning: The label `Persn` does not exist ... (01N50)``. Once per summary."""
        if summary is None or getattr(summary, "_dbsh_told", False):
            return
        summary._dbsh_told = True
        for text, code in _warnings(summary):
            text = one_line(str(text)).removeprefix("warn: ")
            self.notice(f"dbsh: warning: {text}" + (f" ({code})" if code else ""))

    def _closer(self, result: neo4j.Result):
        """Result.close for a streamed result: the rest consumed. A result whose rows raised the
        server's error already answers ResultFailedError then, which would hide that error."""
        def close() -> None:
            try:
                summary = result.consume()
            except nx.ResultFailedError:
                return
            except Exception as e:  # noqa: BLE001
                raise self._error(e) from None
            self._notify(summary)
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
                seen.setdefault(key, {})[type_name(value)] = None
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
            for keys, rows in same_keys(chunk):
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
        match = PLAN.match(last)
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


def _warnings(summary) -> Iterator[tuple[str, str | None]]:
    """(description, code) of each notification of severity WARNING in a result summary: GQL status
    objects where the driver has them (5.22+), else the older notifications."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # a preview feature before driver 6: it warns when read
        statuses = getattr(summary, "gql_status_objects", None)
    if statuses is not None:
        for status in statuses:
            if status.is_notification and str(getattr(status.severity, "value", status.severity)) == "WARNING":
                yield status.status_description, status.gql_status
        return
    for notification in getattr(summary, "summary_notifications", None) or []:
        if str(getattr(notification.severity_level, "value", notification.severity_level)) == "WARNING":
            yield notification.description, notification.code
