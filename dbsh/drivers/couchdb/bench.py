"""dbsh bench on CouchDB (moved from dbsh/bench/backends.py)."""

from __future__ import annotations

from dbsh.bench.backends import Adapter, Missing


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
