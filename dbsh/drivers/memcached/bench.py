"""dbsh bench on Memcached: YCSB's records as JSON documents under TABLE:KEY (dbsh's collection:id layout,
so `dbsh find TABLE` sees them), through pymemcache's calls as YCSB's memcached binding makes them.

insert is ``add`` (a record that exists is an error), read ``get``, update ``gets`` then ``cas`` with the
record's other fields kept (read again on a cas conflict). Memcached keeps no order of keys, and YCSB's own
memcached binding does not implement scan; here a scan (workload E) reads the records that follow the
start record by record number, in one multi-get: the same number of records a range scan reads.
"""

from __future__ import annotations

import orjson

from dbsh.bench.backends import Adapter, Missing
from dbsh.query import Filter


class MemcachedAdapter(Adapter):
    def __init__(self, session, workload):
        super().__init__(session, workload)
        self.client = session.client           # pymemcache Client, or HashClient over several servers
        self.prefix = f"{self.table}:"

    def drop(self) -> None:
        """The records a scan finds, and every key this workload's load and run can make: the crawler
        behind a scan skips items a client read a moment ago (a run's gets), so a scan alone may leave
        some behind, and the next load's adds would fail on them."""
        self.session.delete(self.table, Filter({}))
        w = self.w
        last = w.insertstart + w.recordcount + max(w.operationcount, w.insertcount)
        keys = [self.prefix + w.key(n) for n in range(w.insertstart, last)]
        for start in range(0, len(keys), 1000):
            self.client.delete_many(keys[start:start + 1000], noreply=False)

    def count(self) -> int:
        return self.session.count(self.table, Filter({}))

    def insert(self, key, values):
        if not self.client.add(self.prefix + key, orjson.dumps(values), noreply=False):
            raise KeyError(f"record {key} exists")

    def read(self, key, fields):
        value = self.client.get(self.prefix + key)
        if value is None:
            raise Missing(key)
        record = orjson.loads(value)
        return record if fields is None else {f: record.get(f) for f in fields}

    def update(self, key, values):
        name = self.prefix + key
        while True:
            value, cas = self.client.gets(name)
            if value is None:
                raise Missing(key)
            record = orjson.loads(value)
            record.update(values)
            stored = self.client.cas(name, orjson.dumps(record), cas, noreply=False)
            if stored is None:
                raise Missing(key)
            if stored:
                return

    def scan(self, start, count, fields):
        raise NotImplementedError("Memcached scans take the records' keys (scan_records)")

    def scan_records(self, keys, fields):
        """The records of ``keys`` (the start record and those after it by number) in one multi-get."""
        found = self.client.get_many([self.prefix + key for key in keys])
        for value in found.values():   # decoded, as read() does
            record = orjson.loads(value)
            if fields is not None:
                record = {f: record.get(f) for f in fields}
        return len(found)
