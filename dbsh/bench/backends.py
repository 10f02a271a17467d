"""One small adapter per backend: YCSB's five database calls in each one's natural native form.

An adapter wraps an open dbsh driver Session and uses its native client (``session.client``):
pymongo, Redis hashes, CQL prepared statements, Cypher with parameters, CouchDB documents. Values are
always bound parameters; the table and field names are validated identifiers (workload.NAME) and quoted
where the language quotes them.

Each backend's adapter lives with its driver (``dbsh.drivers.<backend>.bench``), named by the ``bench``
field of its record; here are the base class, Missing, adapter_for, and Cassandra's adapter.

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
            if self.session.option("consistency"):   # --consistency: every operation at that level
                from dbsh.drivers.cassandra import consistency_level

                stmt.consistency_level = consistency_level(self.session.option("consistency"))
        return stmt

    def _execute(self, stmt, values):
        """Run a prepared statement; a failure as dbsh's one-line error (the driver's NoHostAvailable
        wraps the server's answer, e.g. Unavailable at --consistency ALL)."""
        try:
            return self.cql.execute(stmt, values)
        except Exception as e:  # noqa: BLE001
            raise self.session._error(e) from None

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
        self._execute(stmt, (key, *(values[f] for f in self.fields)))

    def read(self, key, fields):
        cols = "*" if fields is None else ", ".join(f'"{f}"' for f in fields)
        stmt = self._prep(("read", cols), f"SELECT {cols} FROM {self.t} WHERE y_id = ?")
        row = self._execute(stmt, (key,)).one()
        if row is None:
            raise Missing(key)
        return row

    def update(self, key, values):
        names = tuple(values)
        sets = ", ".join(f'"{f}" = ?' for f in names)
        # a plain UPDATE (an upsert), as YCSB's CQL binding; IF EXISTS would make it a Paxos round
        stmt = self._prep(("update", names), f"UPDATE {self.t} SET {sets} WHERE y_id = ?")
        self._execute(stmt, (*values.values(), key))

    def scan(self, start, count, fields):
        cols = "*" if fields is None else ", ".join(f'"{f}"' for f in fields)
        stmt = self._prep(("scan", cols), f"SELECT {cols} FROM {self.t} WHERE token(y_id) >= token(?) LIMIT ?")
        return sum(1 for _ in self._execute(stmt, (start, count)))


def adapter_for(session, workload) -> Adapter:
    """The bench adapter the session's backend record names."""
    backend = session.backend
    if backend is None or not backend.bench:
        raise Unsupported(f"dbsh bench does not support {session.name}")
    return backend.load(backend.bench)(session, workload)
