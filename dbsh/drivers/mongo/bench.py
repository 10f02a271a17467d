"""dbsh bench on MongoDB (moved from dbsh/bench/backends.py)."""

from __future__ import annotations

from dbsh.bench.backends import Adapter, Missing


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
