"""dbsh bench on Redis (moved verbatim from dbsh/bench/backends.py)."""

from __future__ import annotations

from dbsh.bench.backends import Adapter, Missing


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
            from redis.exceptions import ResponseError  # the driver has imported redis already

            from dbsh.drivers.redis import resp_bulk, resp_commands  # built inside the timed call

            self.pool, self.conn, self.ResponseError = pool, pool.get_connection(), ResponseError
            self.conn.connect()
            self._sock = self.conn._sock
            self._reader = hiredis.Reader(replyError=ResponseError)   # an error reply is a value, not raised
            self._bulk, self._resp = resp_bulk, resp_commands
            self._names = {f: resp_bulk(f) for f in self.fields}
            # this instance's calls take the raw path: no branch per call (mypy: assigning methods)
            (self.read, self.update, self.insert, self.run_batch) = (  # type: ignore[method-assign]
                self._read_raw, self._update_raw, self._insert_raw, self._run_batch_raw)

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
