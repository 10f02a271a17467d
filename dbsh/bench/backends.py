"""One small adapter per backend: YCSB's five database calls in each one's natural native form.

An adapter wraps an open dbsh driver Session and uses its native client (``session.client``):
pymongo, Cypher with parameters, CouchDB documents (the SQL, Redis, Memcached and Cassandra adapters
live with their drivers: dbsh.drivers.<backend>.bench). Values are always bound parameters; the table
and field names are validated identifiers (workload.NAME) and quoted where the language quotes them.

Calls raise the client library's own exceptions; the runner counts them per operation type.
``read``/``update`` of a missing key raise ``Missing`` (YCSB's NOT_FOUND counts as a failure).
"""

from __future__ import annotations

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
    a scan is _all_docs from the key with include_docs. Through the session's HTTP client (httpx,
    one kept-alive connection per worker)."""

    def __init__(self, session, workload):
        super().__init__(session, workload)
        self.client = session.client

    def prepare(self) -> None:
        self.client.create(self.table)    # False when it is there already

    def drop(self) -> None:
        self.client.drop(self.table)

    def count(self) -> int:
        return self.client.info(self.table)["doc_count"]

    def insert(self, key, values):
        self.client.put(self.table, {"_id": key, **values})

    def read(self, key, fields):
        doc = self.client.get(self.table, key)
        if doc is None:
            raise Missing(key)
        return doc

    def update(self, key, values):
        doc = self.client.get(self.table, key)
        if doc is None:
            raise Missing(key)
        doc.update(values)
        self.client.put(self.table, doc)

    def scan(self, start, count, fields):
        with self.client.all_docs(self.table, start=start, limit=count, include_docs=True) as rows:
            return sum(1 for _ in rows)


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


def adapter_for(session, workload) -> Adapter:
    """The bench adapter the session's backend record names."""
    backend = session.backend
    if backend is None or not backend.bench:
        raise Unsupported(f"dbsh bench does not support {session.name}")
    return backend.load(backend.bench)(session, workload)
