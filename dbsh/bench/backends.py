"""One small adapter per backend: YCSB's five database calls in each one's natural native form.

An adapter wraps an open dbsh driver Session and uses its native client (``session.client``):
pymongo, Redis hashes, CQL prepared statements, Cypher with parameters, CouchDB documents. Values are
always bound parameters; the table and field names are validated identifiers (workload.NAME) and quoted
where the language quotes them.

Each backend's adapter lives with its driver (``dbsh.drivers.<backend>.bench``), named by the ``bench``
field of its record; here are the base class, Missing and adapter_for.

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


def adapter_for(session, workload) -> Adapter:
    """The bench adapter the session's backend record names."""
    backend = session.backend
    if backend is None or not backend.bench:
        raise Unsupported(f"dbsh bench does not support {session.name}")
    return backend.load(backend.bench)(session, workload)
