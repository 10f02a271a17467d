"""One small adapter per backend: YCSB's five database calls in each one's natural native form.

An adapter wraps an open dbsh driver Session and uses its native client (``session.client``, or
``session.engine`` for SQL): prepared SQL, pymongo, Redis hashes, CQL prepared statements, Cypher
with parameters, CouchDB documents. Values are always bound parameters; the table and field names
are validated identifiers (workload.NAME) and quoted where the language quotes them.

Calls raise the client library's own exceptions; the runner counts them per operation type.
``read``/``update`` of a missing key raise ``Missing`` (YCSB's NOT_FOUND counts as a failure).
"""

from __future__ import annotations

from typing import Any

from dbsh.errors import Unsupported


class Missing(Exception):
    """The key is not there (YCSB: Status.NOT_FOUND)."""

    def __init__(self, key: str):
        super().__init__(f"key {key} not found")


class Adapter:
    pipelining = False   # Redis only: run_batch sends several operations in one round trip

    def __init__(self, session, workload):
        self.session, self.w = session, workload
        self.table, self.fields = workload.table, workload.fields

    def prepare(self) -> None:
        """Create the table/collection/index if missing (run once, before the workers start)."""

    def drop(self) -> None:
        """Remove the benchmark's table/collection (--clean)."""
        raise Unsupported(f"--clean is not supported on {self.session.name}")

    def count(self) -> int:
        """How many records there are (for the report and the tests)."""
        raise Unsupported(f"counting records is not supported on {self.session.name}")

    def insert(self, key: str, values: dict[str, str]) -> None:
        raise NotImplementedError

    def read(self, key: str, fields: list[str] | None) -> dict:
        raise NotImplementedError

    def update(self, key: str, values: dict[str, str]) -> None:
        raise NotImplementedError

    def scan(self, start: str, count: int, fields: list[str] | None) -> int:
        raise NotImplementedError

    def close(self) -> None:
        pass


# ------------------------------------------------------------------------------------------ SQL
class SqlAdapter(Adapter):
    """One DBAPI connection in autocommit, the statements built once (psycopg prepares them on the
    server after a few runs; sqlite3 caches them); every value a bound parameter."""

    def __init__(self, session, workload):
        super().__init__(session, workload)
        self.engine = session.engine
        dialect = self.engine.dialect
        quote = dialect.identifier_preparer.quote
        self.mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self.q_table = quote(self.table)
        self.q_key = quote("ycsb_key")
        self.q_fields = {f: quote(f) for f in self.fields}
        self._conn = None
        self._sql: dict[Any, str] = {}
        marks = ", ".join([self.mark] * (len(self.fields) + 1))
        self.insert_sql = (f"INSERT INTO {self.q_table} ({self.q_key}, "
                           f"{', '.join(self.q_fields.values())}) VALUES ({marks})")
        self.read_all_sql = f"SELECT * FROM {self.q_table} WHERE {self.q_key} = {self.mark}"
        self.scan_all_sql = (f"SELECT * FROM {self.q_table} WHERE {self.q_key} >= {self.mark} "
                             f"ORDER BY {self.q_key} LIMIT {self.mark}")

    @property
    def conn(self):
        if self._conn is None:
            raw = self.engine.raw_connection()
            driver = raw.driver_connection
            name = self.engine.dialect.name
            if name == "postgresql":
                driver.autocommit = True
            elif name in ("mysql", "mariadb"):
                driver.autocommit(True)
            else:
                driver.isolation_level = None   # sqlite3: autocommit
            self._raw, self._conn = raw, driver
        return self._conn

    def _run(self, sql: str, params: tuple):
        cur = self.conn.cursor()
        try:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else cur.rowcount
        finally:
            cur.close()

    def prepare(self) -> None:
        key_type = "VARCHAR(255)" if self.engine.dialect.name != "sqlite" else "TEXT"
        columns = ", ".join(f"{q} TEXT" for q in self.q_fields.values())
        self._run(f"CREATE TABLE IF NOT EXISTS {self.q_table} ({self.q_key} {key_type} PRIMARY KEY, {columns})", ())

    def drop(self) -> None:
        self._run(f"DROP TABLE IF EXISTS {self.q_table}", ())

    def count(self) -> int:
        return self._run(f"SELECT COUNT(*) FROM {self.q_table}", ())[0][0]

    def insert(self, key, values):
        self._run(self.insert_sql, (key, *(values[f] for f in self.fields)))

    def read(self, key, fields):
        if fields is None:
            sql = self.read_all_sql
        else:
            sql = self._sql.get(("read", tuple(fields)))
            if sql is None:
                cols = ", ".join(self.q_fields[f] for f in fields)
                sql = self._sql[("read", tuple(fields))] = \
                    f"SELECT {cols} FROM {self.q_table} WHERE {self.q_key} = {self.mark}"
        rows = self._run(sql, (key,))
        if not rows:
            raise Missing(key)
        return rows[0]

    def update(self, key, values):
        names = tuple(values)
        sql = self._sql.get(("update", names))
        if sql is None:
            sets = ", ".join(f"{self.q_fields[f]} = {self.mark}" for f in names)
            sql = self._sql[("update", names)] = f"UPDATE {self.q_table} SET {sets} WHERE {self.q_key} = {self.mark}"
        if self._run(sql, (*values.values(), key)) == 0:
            raise Missing(key)

    def scan(self, start, count, fields):
        return len(self._run(self.scan_all_sql, (start, count)))

    def close(self):
        if self._conn is not None:
            self._raw.close()
            self._conn = None


# ---------------------------------------------------------------------------------------- Redis
class RedisAdapter(Adapter):
    """A record is the hash TABLE:KEY (dbsh's collection:id layout, so `dbsh find TABLE` sees it); scans
    walk the sorted set TABLE:__ycsb_index__ by key (ZRANGEBYLEX), as YCSB's Redis binding keeps one."""

    pipelining = True

    def __init__(self, session, workload):
        super().__init__(session, workload)
        self.r = session.client
        self.prefix = f"{self.table}:"
        self.index = f"{self.table}:__ycsb_index__"
        # A standalone server: this worker takes one redis-py connection (connected, authenticated, the
        # database selected) for the whole phase and owns its socket: commands are sent as RESP built
        # here, and the replies of a round trip are parsed from what one recv() brought, by a hiredis
        # Reader of its own, in one pass. This skips redis-py's per-command pool checkout, retry,
        # observability and per-reply read layers. A cluster routes each key to its node through the
        # cluster client (the generic path below).
        pool = getattr(self.r, "connection_pool", None)
        self.conn = None
        if pool is not None and not getattr(session, "cluster", False):
            import hiredis
            from redis.exceptions import ResponseError   # the driver has imported redis already

            from dbsh.drivers.redis import resp_bulk, resp_commands   # built inside the timed call

            self.pool, self.conn, self.ResponseError = pool, pool.get_connection(), ResponseError
            self.conn.connect()
            self._sock = self.conn._sock
            self._reader = hiredis.Reader(replyError=ResponseError)   # an error reply is a value, not raised
            self._bulk, self._resp = resp_bulk, resp_commands
            self._names = {f: resp_bulk(f) for f in self.fields}
            self.read, self.update, self.insert, self.run_batch = \
                self._read_raw, self._update_raw, self._insert_raw, self._run_batch_raw

    def close(self):
        if self.conn is not None:
            self.conn.disconnect()   # its parser never saw this socket's replies: start it afresh
            self.pool.release(self.conn)
            self.conn = None

    def _replies(self, n: int) -> list:
        """The next ``n`` replies: every reply that one recv() brings is parsed before the next one."""
        gets, feed, recv, got = self._reader.gets, self._reader.feed, self._sock.recv, []
        while True:
            reply = gets()
            while reply is not False:
                got.append(reply)
                if len(got) == n:
                    return got
                reply = gets()
            data = recv(65536)
            if not data:
                from redis.exceptions import ConnectionError

                raise ConnectionError("Connection closed by server.")
            feed(data)

    # --- one connection, packed commands (standalone server)
    def _command(self, kind: str, args: tuple) -> list[tuple]:
        """The Redis commands for one operation, as argument tuples."""
        if kind == "update":   # as YCSB's Redis binding: HSET, no existence check
            key, values = args
            return [("HSET", self.prefix + key, *(x for item in values.items() for x in item))]
        if kind == "read":
            key, fields = args
            return [("HGETALL", self.prefix + key) if fields is None else ("HMGET", self.prefix + key, *fields)]
        if kind == "insert":
            key, values = args
            return [("HSET", self.prefix + key, *(x for item in values.items() for x in item)),
                    ("ZADD", self.index, 0, key)]
        raise ValueError(kind)

    def _encode(self, kind: str, args: tuple) -> bytes:
        """One read or update in RESP, the command and field names encoded once per worker."""
        key = args[0]
        if kind == "update":   # as YCSB's Redis binding: HSET, no existence check
            values = args[1]
            parts = [b"*%d\r\n$4\r\nHSET\r\n" % (2 + 2 * len(values)), self._bulk(self.prefix + key)]
            for f, v in values.items():
                parts += (self._names.get(f) or self._bulk(f), self._bulk(v))
            return b"".join(parts)
        fields = args[1]
        if fields is None:
            return b"*2\r\n$7\r\nHGETALL\r\n" + self._bulk(self.prefix + key)
        parts = [b"*%d\r\n$5\r\nHMGET\r\n" % (2 + len(fields)), self._bulk(self.prefix + key)]
        parts += [self._names.get(f) or self._bulk(f) for f in fields]
        return b"".join(parts)

    def _call(self, packed: bytes):
        self._sock.sendall(packed)
        reply = self._replies(1)[0]
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def _read_raw(self, key, fields):
        found = self._call(self._encode("read", (key, fields)))
        if fields is not None:
            found = found if any(v is not None for v in found) else None
        if not found:
            raise Missing(key)
        return found

    def _update_raw(self, key, values):
        self._call(self._encode("update", (key, values)))

    def _insert_raw(self, key, values):
        self._sock.sendall(self._resp(self._command("insert", (key, values))))
        error = next((r for r in self._replies(2) if isinstance(r, BaseException)), None)
        if error is not None:
            raise error

    def _run_batch_raw(self, ops: list[tuple[str, tuple]]) -> list[BaseException | None]:
        encode, resp = self._encode, self._resp
        packed = [resp(self._command(kind, args)) if kind == "insert" else encode(kind, args) for kind, args in ops]
        self._sock.sendall(b"".join(packed))
        n = len(ops) + sum(1 for kind, _ in ops if kind == "insert")   # an insert is HSET + ZADD
        # a server error is that operation's outcome (as redis-py's pipeline with raise_on_error=False);
        # a lost connection raises: the whole batch failed
        return self._outcomes(ops, self._replies(n))

    def drop(self) -> None:
        pipe = self.r.pipeline(transaction=False)
        for n, key in enumerate(self.r.scan_iter(match=self.prefix + "*", count=1000), 1):
            pipe.delete(key)
            if n % 1000 == 0:
                pipe.execute()
        pipe.execute()

    def count(self) -> int:
        return sum(1 for _ in self.r.scan_iter(match=self.prefix + "*", count=1000, _type="hash"))

    def _queue(self, pipe, kind: str, args: tuple) -> None:
        if kind == "insert":
            key, values = args
            pipe.hset(self.prefix + key, mapping=values)
            pipe.zadd(self.index, {key: 0})
        elif kind == "read":
            key, fields = args
            if fields is None:
                pipe.hgetall(self.prefix + key)
            else:
                pipe.hmget(self.prefix + key, fields)
        elif kind == "update":
            key, values = args
            pipe.hset(self.prefix + key, mapping=values)   # as YCSB's Redis binding: HSET, no existence check
        else:
            raise ValueError(kind)

    def insert(self, key, values):
        pipe = self.r.pipeline(transaction=False)
        self._queue(pipe, "insert", (key, values))
        pipe.execute()

    def read(self, key, fields):
        if fields is None:
            found = self.r.hgetall(self.prefix + key)
        else:
            found = self.r.hmget(self.prefix + key, fields)
            found = found if any(v is not None for v in found) else None
        if not found:
            raise Missing(key)
        return found

    def update(self, key, values):
        self.r.hset(self.prefix + key, mapping=values)

    def scan(self, start, count, fields):
        keys = self.r.zrangebylex(self.index, b"[" + start.encode(), b"+", start=0, num=count)
        pipe = self.r.pipeline(transaction=False)
        for key in keys:
            if isinstance(key, bytes):
                key = key.decode()
            if fields is None:
                pipe.hgetall(self.prefix + key)
            else:
                pipe.hmget(self.prefix + key, fields)
        return len(pipe.execute())

    def run_batch(self, ops: list[tuple[str, tuple]]) -> list[BaseException | None]:
        """Several simple operations in one pipeline (one round trip); one outcome per operation."""
        pipe = self.r.pipeline(transaction=False)
        for kind, args in ops:
            self._queue(pipe, kind, args)
        return self._outcomes(ops, pipe.execute(raise_on_error=False))

    @staticmethod
    def _outcomes(ops: list[tuple[str, tuple]], replies: list) -> list[BaseException | None]:
        outcomes: list[BaseException | None] = []
        if len(replies) == len(ops):   # one command per operation (no inserts): reply k is operation k's
            add = outcomes.append
            for (kind, args), reply in zip(ops, replies):
                if isinstance(reply, BaseException):
                    add(reply)
                elif kind == "read" and (not reply or (isinstance(reply, list) and all(v is None for v in reply))):
                    add(Missing(args[0]))
                else:
                    add(None)
            return outcomes
        i = 0
        for kind, args in ops:
            width = 2 if kind == "insert" else 1
            reply = replies[i:i + width]
            i += width
            error = next((r for r in reply if isinstance(r, BaseException)), None)
            if error is None and kind == "read":
                found = reply[0]
                if not found or (isinstance(found, list) and all(v is None for v in found)):
                    error = Missing(args[0])
            outcomes.append(error)
        return outcomes


# ---------------------------------------------------------------------------------------- MongoDB
class MongoAdapter(Adapter):
    """A record is a document {_id: key, field0: ...} (as YCSB's MongoDB binding stores it)."""

    def __init__(self, session, workload):
        super().__init__(session, workload)
        self.coll = session.client[self.table]

    def drop(self) -> None:
        self.coll.drop()

    def count(self) -> int:
        return self.coll.count_documents({})

    def insert(self, key, values):
        self.coll.insert_one({"_id": key, **values})

    def read(self, key, fields):
        doc = self.coll.find_one({"_id": key}, projection=fields)
        if doc is None:
            raise Missing(key)
        return doc

    def update(self, key, values):
        if self.coll.update_one({"_id": key}, {"$set": values}).matched_count == 0:
            raise Missing(key)

    def scan(self, start, count, fields):
        return sum(1 for _ in self.coll.find({"_id": {"$gte": start}}, projection=fields, sort=[("_id", 1)],
                                             limit=count))


# ---------------------------------------------------------------------------------------- CouchDB
class CouchAdapter(Adapter):
    """A record is the document TABLE/KEY; an update reads its _rev and writes it back (CouchDB's MVCC);
    a scan is _all_docs from the key with include_docs."""

    def __init__(self, session, workload):
        super().__init__(session, workload)
        self.server = session.client
        self._db = None

    @property
    def db(self):
        if self._db is None:
            self._db = self.server[self.table]
        return self._db

    def prepare(self) -> None:
        if self.table not in self.server:
            self.server.create(self.table)

    def drop(self) -> None:
        if self.table in self.server:
            self.server.delete(self.table)

    def count(self) -> int:
        return self.db.info()["doc_count"]

    def insert(self, key, values):
        self.db.save({"_id": key, **values})

    def read(self, key, fields):
        doc = self.db.get(key)
        if doc is None:
            raise Missing(key)
        return doc

    def update(self, key, values):
        doc = self.db.get(key)
        if doc is None:
            raise Missing(key)
        doc.update(values)
        self.db.save(doc)

    def scan(self, start, count, fields):
        return sum(1 for _ in self.db.view("_all_docs", startkey=start, limit=count, include_docs=True))


# ---------------------------------------------------------------------------------------- Neo4j
class Neo4jAdapter(Adapter):
    """A record is a node (:TABLE {ycsb_key, field0, ...}); Cypher with parameters, an index on ycsb_key."""

    def __init__(self, session, workload):
        super().__init__(session, workload)
        self.driver = session.client
        self.database = getattr(session, "database", None)
        self._s = None
        label = f"`{self.table}`"
        self.cypher = {
            # properties spelled out (FalkorDB rejects SET n = $map); every value is still a parameter
            "insert": f"CREATE (n:{label} {{ycsb_key: $key, "
                      + ", ".join(f"`{f}`: ${f}" for f in self.fields) + "})",
            "read": f"MATCH (n:{label} {{ycsb_key: $key}}) RETURN n LIMIT 1",

            "scan": f"MATCH (n:{label}) WHERE n.ycsb_key >= $key RETURN n ORDER BY n.ycsb_key LIMIT $limit",
            "count": f"MATCH (n:{label}) RETURN count(n) AS c",
            "drop": f"MATCH (n:{label}) DELETE n",
            "index": f"CREATE INDEX FOR (n:{label}) ON (n.ycsb_key)",
        }

    @property
    def s(self):
        if self._s is None:
            self._s = self.driver.session(database=self.database)
        return self._s

    def _run(self, name, **params):
        return list(self.s.run(self.cypher[name], params))

    def prepare(self) -> None:
        try:
            self._run("index")
        except Exception as e:  # noqa: BLE001 - an existing index is fine
            if "already" not in str(e).lower() and "equivalent" not in str(e).lower():
                raise

    def drop(self) -> None:
        self._run("drop")

    def count(self) -> int:
        return self._run("count")[0]["c"]

    def insert(self, key, values):
        self._run("insert", key=key, **values)

    def read(self, key, fields):
        rows = self._run("read", key=key)
        if not rows:
            raise Missing(key)
        return rows[0]

    def update(self, key, values):
        name = ("update",) + tuple(values)
        if name not in self.cypher:
            sets = ", ".join(f"n.`{f}` = ${f}" for f in values)
            self.cypher[name] = f"MATCH (n:`{self.table}` {{ycsb_key: $key}}) SET {sets} RETURN count(n) AS c"
        if self._run(name, key=key, **values)[0]["c"] == 0:
            raise Missing(key)

    def scan(self, start, count, fields):
        return len(self._run("scan", key=start, limit=count))

    def close(self):
        if self._s is not None:
            self._s.close()
            self._s = None


# ---------------------------------------------------------------------------------------- Cassandra
class CassandraAdapter(Adapter):
    """YCSB's CQL layout (y_id text PRIMARY KEY, field0 text, ...), prepared statements; a scan walks the
    token ring from the start key, as YCSB's CQL binding does."""

    def __init__(self, session, workload):
        super().__init__(session, workload)
        self.cql = session.client
        self.t = f'"{self.table}"'
        self.cols = ", ".join(f'"{f}"' for f in self.fields)
        self._prepared: dict[Any, Any] = {}

    def _prep(self, name, text: str):
        stmt = self._prepared.get(name)
        if stmt is None:
            stmt = self._prepared[name] = self.cql.prepare(text)
        return stmt

    def prepare(self) -> None:
        cols = ", ".join(f'"{f}" text' for f in self.fields)
        self.cql.execute(f"CREATE TABLE IF NOT EXISTS {self.t} (y_id text PRIMARY KEY, {cols})")

    def drop(self) -> None:
        self.cql.execute(f"DROP TABLE IF EXISTS {self.t}")

    def count(self) -> int:
        return next(iter(self.cql.execute(f"SELECT COUNT(*) AS c FROM {self.t}")))["c"]

    def insert(self, key, values):
        marks = ", ".join("?" * (len(self.fields) + 1))
        stmt = self._prep("insert", f"INSERT INTO {self.t} (y_id, {self.cols}) VALUES ({marks})")
        self.cql.execute(stmt, (key, *(values[f] for f in self.fields)))

    def read(self, key, fields):
        cols = "*" if fields is None else ", ".join(f'"{f}"' for f in fields)
        stmt = self._prep(("read", cols), f"SELECT {cols} FROM {self.t} WHERE y_id = ?")
        row = self.cql.execute(stmt, (key,)).one()
        if row is None:
            raise Missing(key)
        return row

    def update(self, key, values):
        names = tuple(values)
        sets = ", ".join(f'"{f}" = ?' for f in names)
        # a plain UPDATE (an upsert), as YCSB's CQL binding; IF EXISTS would make it a Paxos round
        stmt = self._prep(("update", names), f"UPDATE {self.t} SET {sets} WHERE y_id = ?")
        self.cql.execute(stmt, (*values.values(), key))

    def scan(self, start, count, fields):
        cols = "*" if fields is None else ", ".join(f'"{f}"' for f in fields)
        stmt = self._prep(("scan", cols), f"SELECT {cols} FROM {self.t} WHERE token(y_id) >= token(?) LIMIT ?")
        return sum(1 for _ in self.cql.execute(stmt, (start, count)))


def adapter_for(session, workload) -> Adapter:
    """The bench adapter the session's backend record names."""
    backend = session.backend
    if backend is None or not backend.bench:
        raise Unsupported(f"dbsh bench does not support {session.name}")
    return backend.load(backend.bench)(session, workload)
