"""The Redis session (redis-py): every native command with redis-cli quoting, pub/sub and MONITOR streamed,
pipelined batches with per-line errors, and the uniform verbs over hashes under a key prefix.

A collection is a key prefix: ``users:42`` is document 42 of ``users``, stored as a hash. Strings
are stored as they are; other values (and strings that would read back as something else) are
JSON-encoded, so every type comes back as it went in. Standalone servers and Redis Cluster
(``redis+cluster://`` or ``?cluster=true``) work alike; ``rediss://`` is TLS.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from redis import exceptions as rexc
from redis.client import CaseInsensitiveDict
from redis.cluster import RedisCluster

from dbsh.drivers.base import Capabilities, Result, batched
from dbsh.drivers.redis.documents import SCAN_COUNT, RedisDocuments, _glob_escape
from dbsh.drivers.redis.inserts import _Inserter
from dbsh.drivers.redis.native import CONNECTION_STATE, STREAMING, _bind, _name, reply_result, split_args, text
from dbsh.errors import ConnectError, DbshError, QueryError, Unsupported, UsageError, one_line, redact

PIPELINE_CHUNK = 1000      # commands per pipeline round trip


def _split_url(url: str) -> tuple[str, bool]:
    """dbsh URL -> redis-py URL and whether it names a cluster."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    cluster = scheme.endswith("+cluster")
    base = scheme.split("+", 1)[0]
    query = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "cluster":
            cluster = cluster or value.lower() in ("1", "true", "yes", "on")
        else:
            query.append((key, value))
    return urlunsplit(parts._replace(scheme=base, query=urlencode(query))), cluster



def _no_reply_timeout(client) -> None:
    """Once connected: replies are waited for as long as they take (connections made later still give
    up connecting after the connect timeout)."""
    pools = [client.connection_pool] if hasattr(client, "connection_pool") else \
        [node.redis_connection.connection_pool for node in client.get_nodes() if node.redis_connection is not None]
    for pool in pools:
        pool.connection_kwargs["socket_timeout"] = None
        for conn in [*getattr(pool, "_available_connections", ()), *getattr(pool, "_in_use_connections", ())]:
            conn.socket_timeout = None
            if getattr(conn, "_sock", None) is not None:
                conn._sock.settimeout(None)


class RedisSession(RedisDocuments):
    capabilities = Capabilities(language="redis", statement_terminator=None)
    name = "Redis"

    def __init__(self, target):
        super().__init__(target)
        self._url, self.cluster = _split_url(target.url)
        self._raw = None
        self._insert_sha: str | None = None
        self._inserter: _Inserter | None = None   # standalone: made once the client is
        self.protocol = 3
        with self._errors():
            try:
                self.client = self._open(protocol=3)
            except (rexc.ResponseError, rexc.ConnectionError) as e:
                message = str(e)
                if isinstance(e, rexc.AuthenticationError) or not (
                        "HELLO" in message.upper() or "unknown command" in message.lower()
                        or "protocol" in message.lower()):
                    raise
                self.protocol = 2   # a server before Redis 6 has no RESP3
                self.client = self._open(protocol=2)
        if self.cluster:
            self.name = "Redis Cluster"
        else:
            self._inserter = _Inserter(self.client.connection_pool)

    def _open(self, *, protocol: int):
        """A client whose first connection answered within the connect timeout; the timeout then bounds
        only connecting, never a reply (BLPOP, SUBSCRIBE and a slow command wait as long as they take)."""
        seconds = self.connect_timeout
        kwargs = dict(protocol=protocol, socket_connect_timeout=seconds, socket_timeout=seconds)
        client: redis.Redis | RedisCluster
        try:
            if self.cluster:
                client = RedisCluster.from_url(self._url, **kwargs)
            else:
                client = redis.Redis.from_url(self._url, **kwargs)
                client.ping()
        except (ValueError, TypeError) as e:
            # ValueError: a malformed URL; TypeError: a query parameter redis-py has no option for
            message = one_line(str(e))
            if isinstance(e, TypeError) and "unexpected keyword argument" in message:
                message = "unknown option " + message.rsplit("argument", 1)[-1].strip()
            raise UsageError(f"invalid Redis URL {self.target.display()}: {message}") from None
        except rexc.InvalidResponse as e:   # another protocol listens there
            raise ConnectError(f"cannot connect to {self.target.display()}: the server there does not speak Redis "
                               f"({self._clean(str(e))})") from None
        except UnicodeError as e:   # a host name too long for IDNA, say
            raise UsageError(f"invalid Redis URL {self.target.display()}: {one_line(str(e))}") from None
        _no_reply_timeout(client)
        return client

    @contextmanager
    def _errors(self):
        """redis-py exceptions -> one-line dbsh errors with the right exit code."""
        try:
            yield
        except DbshError:
            raise
        except rexc.AuthenticationError as e:
            message = str(e)
            if "HELLO must be called" in message or "Authentication required" in message:
                message = "the server needs a password (put it in the URL, DBSH_PASSWORD, or use -W)"
            raise ConnectError(f"cannot authenticate to {self.target.display()}: {self._clean(message)}") from None
        except (rexc.ConnectionError, rexc.TimeoutError, rexc.ClusterDownError) as e:
            raise ConnectError(f"cannot connect to {self.target.display()}: {self._clean(str(e))}") from None
        except rexc.RedisClusterException as e:
            message = self._clean(str(e))
            if "Redis Cluster cannot be connected" in message or "cluster_enabled" in message.lower():
                raise ConnectError(f"cannot connect to {self.target.display()} as a cluster: {message}") from None
            raise QueryError(message) from None
        except rexc.ResponseError as e:
            message = self._clean(str(e))
            if message.startswith(("NOAUTH", "WRONGPASS")):
                raise ConnectError(f"cannot authenticate to {self.target.display()}: {message}") from None
            raise QueryError(message) from None
        except UnicodeError:   # a lone surrogate ("\ud800" in JSON) has no UTF-8 form
            raise UsageError("text that is not valid Unicode (a lone surrogate such as \\ud800) cannot be sent "
                             "to Redis") from None
        except rexc.RedisError as e:
            raise QueryError(self._clean(str(e)) or type(e).__name__) from None

    def _clean(self, message: str) -> str:
        return redact(one_line(message), self.target.password)

    # -- connection ------------------------------------------------------------------------
    def server_info(self) -> dict[str, Any]:
        with self._errors():
            info = self.client.info("server")
        if self.cluster:   # {node: info} from every node
            info = next(iter(info.values())) if info and isinstance(next(iter(info.values())), dict) else info
        parts = urlsplit(self._url)
        return {"backend": self.name, "version": str(info.get("redis_version", "")),
                "mode": info.get("redis_mode"), "protocol": f"RESP{self.protocol}",
                "database": None if self.cluster else (parts.path.strip("/") or "0")}

    def ping(self) -> float:
        with self._errors():
            self.client.ping()
        return 0.0

    def databases(self) -> Result:
        """The numbered databases that hold keys (INFO keyspace), and the current one."""
        if self.cluster:
            raise Unsupported("a Redis Cluster has one database (0)")
        with self._errors():
            keyspace = self.client.info("keyspace")
        current = int(urlsplit(self._url).path.strip("/") or 0)
        found = {int(k[2:]): v for k, v in keyspace.items() if k.startswith("db") and k[2:].isdigit()}
        found.setdefault(current, {"keys": 0, "expires": 0})
        return Result(({"db": n, "keys": found[n].get("keys", 0), "expires": found[n].get("expires", 0),
                        "current": n == current} for n in sorted(found)), ["db", "keys", "expires", "current"])

    def vocabulary(self) -> dict[str, Any]:
        """The server's own command table (COMMAND DOCS, Redis 7+) as it answered it; none from an
        older server (the shell then uses the table shipped with dbsh). Read raw: redis-py's reply
        parser for COMMAND fails on DOCS and COUNT replies."""
        try:
            return {"command_docs": self.raw.execute_command("COMMAND", "DOCS")}
        except Exception:  # noqa: BLE001 - completion is best effort
            return {}

    def key_names(self, prefix: str = "", limit: int = 100) -> list[str]:
        """Keys beginning with ``prefix``: SCAN MATCH, at most 20 rounds of SCAN_COUNT keys, so a large
        keyspace costs a bounded time."""
        pattern = _glob_escape(prefix) + "*"
        found: list[str] = []
        with self._errors():
            if self.cluster:
                for key in self.client.scan_iter(match=pattern, count=SCAN_COUNT):
                    found.append(text(key))
                    if len(found) >= limit:
                        break
            else:
                cursor = 0
                for _ in range(20):
                    cursor, keys = self.client.scan(cursor, match=pattern, count=SCAN_COUNT)
                    found += [text(k) for k in keys]
                    if not cursor or len(found) >= limit:
                        break
        return sorted({k for k in found if isinstance(k, str)})[:limit]

    def close(self) -> None:
        for client in (self._raw, self.client):
            if client is not None:
                try:
                    client.close()
                except Exception:   # noqa: BLE001 - closing is best effort
                    pass

    # -- native commands ---------------------------------------------------------------------
    @property
    def raw(self):
        """A client that returns the server's replies untouched (no redis-py reply parsing)."""
        if self._raw is None:
            raw: redis.Redis | RedisCluster
            with self._errors():
                if self.cluster:
                    raw = RedisCluster.from_url(self._url, protocol=self.protocol,
                                                socket_connect_timeout=self.connect_timeout,
                                                socket_timeout=self.connect_timeout)
                    _no_reply_timeout(raw)
                    raw.cluster_response_callbacks = CaseInsensitiveDict({})
                    for node in raw.get_nodes():
                        if node.redis_connection is not None:
                            node.redis_connection.response_callbacks = CaseInsensitiveDict({})
                else:
                    # one connection, so MULTI/EXEC, WATCH and SELECT behave as in redis-cli
                    raw = redis.Redis(connection_pool=self.client.connection_pool, single_connection_client=True)
                    raw.response_callbacks = CaseInsensitiveDict({})
            self._raw = raw
        return self._raw

    def _route(self, args: list[Any]) -> dict[str, Any]:
        """Cluster: a command redis-py does not know goes to one node, which answers it (or says it is
        unknown) as redis-cli would; redis-py would otherwise refresh its command table and fail."""
        if not self.cluster:
            return {}
        known = self.raw.commands_parser.commands
        if str(args[0]).lower() in known:
            return {}
        return {"target_nodes": self.raw.get_default_node()}

    def execute(self, text_: str, params: dict[str, Any] | None = None) -> Result:
        lines = text_.splitlines()
        commands = [(n, line) for n, line in enumerate(lines, 1)
                    if line.strip() and not line.lstrip().startswith("#")]
        if len(commands) > 1:
            return self._pipe(commands, params or {})
        if not commands:
            raise UsageError("no command given")
        args = _bind(split_args(commands[0][1]), params or {})
        return self.command(args)

    def stateless(self, text: str) -> bool:
        """No command of ``text`` changes the connection (SELECT, CLIENT, MULTI, WATCH, SUBSCRIBE ...)."""
        try:
            names = [_name(split_args(line)[0]) for line in text.splitlines()
                     if line.strip() and not line.lstrip().startswith("#")]
        except Exception:  # noqa: BLE001 - what cannot be read is not known to be stateless
            return False
        return bool(names) and not CONNECTION_STATE.intersection(names)

    def reset(self) -> bool:
        """Drop every connection (a SELECTed database, a CLIENT SETNAME, a subscription); the next
        command connects anew."""
        pool = getattr(self.raw, "connection_pool", None)
        if pool is None:   # a cluster: its nodes' connections
            return False
        pool.disconnect()
        return True

    def command(self, args: list[Any]) -> Result:
        name = _name(args[0])
        if name in STREAMING:
            return self._stream(name, args)
        if name in ("SYNC", "PSYNC"):
            raise Unsupported(f"{name} is a replication command; dbsh cannot run it")
        with self._errors():
            try:
                reply = self.raw.execute_command(*args, **self._route(args))
            except rexc.RedisClusterException as e:
                if "Missing key" not in str(e):
                    raise
                # a command redis-py cannot route (unknown to it, or CLUSTER INFO given as two words):
                # ask one node, so the server answers (or refuses) it as redis-cli would
                reply = self.raw.execute_command(*args, target_nodes=self.raw.get_default_node())
        return reply_result(name, args, reply)

    def _pipe(self, commands: list[tuple[int, str]], params: dict[str, Any]) -> Result:
        """Many commands, pipelined in chunks (like redis-cli --pipe), errors reported per line."""

        def run() -> Iterator[dict]:
            replies = failed_lines = total = 0
            failed: list[int] = []
            for chunk in batched(commands, PIPELINE_CHUNK):
                pipe = self.raw.pipeline(transaction=False)
                sent: list[int] = []
                for number, line in chunk:
                    total += 1
                    try:
                        args = _bind(split_args(line), params, strict=False)
                        name = _name(args[0])
                        if name in STREAMING or name in ("MULTI", "EXEC", "DISCARD", "WATCH"):
                            raise Unsupported(f"{name} cannot run in a pipelined batch")
                    except DbshError as e:
                        failed.append(number)
                        self.notice(f"dbsh: line {number}: {e}")
                        continue
                    pipe.execute_command(*args, **self._route(args))
                    sent.append(number)
                if not sent:
                    continue
                with self._errors():
                    results = pipe.execute(raise_on_error=False)
                for number, result in zip(sent, results):
                    if isinstance(result, Exception):
                        failed.append(number)
                        self.notice(f"dbsh: line {number}: {self._clean(str(result))}")
                    else:
                        replies += 1
            failed_lines = len(failed)
            if failed:
                failed.sort()
                shown = ", ".join(map(str, failed[:20])) + (", ..." if len(failed) > 20 else "")
                raise QueryError(f"{failed_lines} of {total} commands failed (lines {shown}); {replies} replies")
            yield {"commands": total, "replies": replies, "errors": 0}

        return Result(run(), ["commands", "replies", "errors"])

    def _stream(self, name: str, args: list[Any]) -> Result:
        """SUBSCRIBE / PSUBSCRIBE / SSUBSCRIBE / MONITOR: rows as messages arrive, until --count or Ctrl-C."""
        limit = self.option("count")
        if name == "MONITOR":
            if len(args) != 1:
                raise UsageError("MONITOR takes no arguments")
            with self._errors():
                monitor = self.client.monitor(target_node=self.client.get_default_node()) if self.cluster \
                    else self.client.monitor()
                monitor.__enter__()

            def monitor_rows() -> Iterator[dict]:
                seen = 0
                while limit is None or seen < limit:
                    with self._errors():
                        event = monitor.next_command()
                    seen += 1
                    yield {"time": event.get("time"), "db": event.get("db"),
                           "client": f"{event.get('client_address')}:{event.get('client_port')}",
                           "command": text(event.get("command"))}

            result = Result(monitor_rows(), ["time", "db", "client", "command"],
                            close=lambda: monitor.__exit__(None, None, None))
        else:
            if len(args) < 2:
                raise UsageError(f"{name} needs at least one channel")
            channels = [a if isinstance(a, str) else text(a) for a in args[1:]]
            with self._errors():
                pubsub = self.client.pubsub()
                getattr(pubsub, name.lower())(*channels)

            def message_rows() -> Iterator[dict]:
                seen = 0
                while limit is None or seen < limit:
                    with self._errors():
                        message = pubsub.get_message(timeout=1.0)
                    if message is None or message["type"] not in ("message", "pmessage", "smessage"):
                        continue
                    seen += 1
                    yield {"type": message["type"], "pattern": text(message.get("pattern")),
                           "channel": text(message["channel"]), "data": text(message["data"])}

            result = Result(message_rows(), ["type", "pattern", "channel", "data"], close=pubsub.close)
        result.streaming = True   # written row by row as messages come
        return result
