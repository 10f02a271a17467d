"""dbsh bench on Neo4j (moved from dbsh/bench/backends.py)."""

from __future__ import annotations

from dbsh.bench.backends import Adapter, Missing


class Neo4jAdapter(Adapter):
    """A record is a node (:TABLE {ycsb_key, field0, ...}); Cypher with parameters, an index on ycsb_key."""

    def __init__(self, session, workload):
        super().__init__(session, workload)
        self.driver = session.client
        self.database = getattr(session, "database", None)
        self._s = None
        label = f"`{self.table}`"
        self.cypher = {
            # properties spelled out in the pattern; every value is a parameter
            "insert": f"CREATE (n:{label} {{ycsb_key: $key, "
                      + ", ".join(f"`{f}`: ${f}" for f in self.fields) + "})",
            "read": f"MATCH (n:{label} {{ycsb_key: $key}}) RETURN n LIMIT 1",

            "scan": f"MATCH (n:{label}) WHERE n.ycsb_key >= $key RETURN n ORDER BY n.ycsb_key LIMIT $limit",
            "count": f"MATCH (n:{label}) RETURN count(n) AS c",
            # in batches: one transaction over a big table outgrows the server's transaction memory
            "drop": f"MATCH (n:{label}) WITH n LIMIT $batch DETACH DELETE n RETURN count(*) AS c",
            "index": f"CREATE INDEX IF NOT EXISTS FOR (n:{label}) ON (n.ycsb_key)",
        }

    @property
    def s(self):
        if self._s is None:
            self._s = self.driver.session(database=self.database)
        return self._s

    def _run(self, name, **params):
        return list(self.s.run(self.cypher[name], params))

    def prepare(self) -> None:
        self._run("index")

    def drop(self) -> None:
        while self._run("drop", batch=10000)[0]["c"] == 10000:
            pass

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
