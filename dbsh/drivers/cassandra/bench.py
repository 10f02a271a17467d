"""dbsh bench on Cassandra: YCSB's CQL layout and calls, on the session's cassandra-driver Session."""

from __future__ import annotations

from typing import Any

from dbsh.bench.backends import Adapter, Missing
from dbsh.drivers.cassandra.session import consistency_level


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
