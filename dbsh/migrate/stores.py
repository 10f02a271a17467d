"""Where each NoSQL backend keeps its migration records and its migration lock.

A store records one entry per revision (state running / applied / failed, checksum, times) in the
target itself, and offers a lock with a lease: ``try_lock`` takes it only if it is free or its lease
has expired, ``renew`` extends it only for its owner, ``unlock`` frees it only for its owner. So a run
killed while holding the lock blocks the next one for at most one lease. Every store works through the
session's native client (``session.client``), whose library the driver module already imported.

Here: the base classes (Store, Lease, LockTimeout) and store_for. Each backend's store lives with its
driver and is named by its record's ``migrate`` field:

    MongoDB    dbsh.drivers.mongo.migrate: collection dbsh_migrations; lock: a lease document in
               dbsh_migrate_lock (unique _id)
    Redis      dbsh.drivers.redis.migrate: hash {dbsh:migrate}:versions; lock: SET {dbsh:migrate}:lock NX PX,
               renewed by a Lua check
    CouchDB    dbsh.drivers.couchdb.migrate: database dbsh_migrations; lock: document "lock", every change
               guarded by its _rev
    Neo4j      dbsh.drivers.neo4j.migrate: (:DbshMigration) nodes; lock: a (:DbshMigrateLock) node under a
               unique constraint
    Cassandra  dbsh.drivers.cassandra.migrate: tables dbsh_migrations and dbsh_migrate_lock; lock: INSERT ...
               IF NOT EXISTS USING TTL
"""

from __future__ import annotations

import threading
import time
from typing import Any

from dbsh.errors import QueryError, Unsupported


class LockTimeout(QueryError):
    """Another run holds the migration lock past --lock-timeout (exit 1)."""


def now_ms() -> int:
    return int(time.time() * 1000)


class Lease:
    """Hold a store's lock for a ``with`` block, renewing it every third of the lease in a thread."""

    def __init__(self, store: Store, owner: str, *, lease: float, timeout: float | None, where: str):
        self.store = store
        self.owner = owner
        self.lease_ms = int(lease * 1000)
        self.timeout = timeout
        self.where = where
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Lease:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        pause = 0.05
        while not self.store.try_lock(self.owner, self.lease_ms):
            if deadline is not None and time.monotonic() >= deadline:
                holder = self.store.holder()
                if holder:
                    left = max(0.0, holder.get("expires_in", 0))
                    who = f"held by {holder.get('owner')} (its lease ends in {left:.1f} s unless renewed)"
                else:
                    who = "held by another run (it has just released it)"
                raise LockTimeout(f"timed out after {self.timeout:g} s waiting for the migration lock on "
                                  f"{self.where}: {who}")
            pause = min(pause * 1.5, 0.5)   # back off: waiting runs should not load the server
            time.sleep(pause if deadline is None else max(0.0, min(pause, deadline - time.monotonic())))
        self._renewed = time.monotonic()
        self._thread = threading.Thread(target=self._renew, name="dbsh-migrate-lease", daemon=True)
        self._thread.start()
        return self

    def _renew(self) -> None:
        interval = self.lease_ms / 3000
        while not self._stop.wait(interval):
            try:
                if self.store.renew(self.owner, self.lease_ms):
                    self._renewed = time.monotonic()
                    continue
                self.lost = True
                return
            except Exception:  # noqa: BLE001 - a failed renewal is retried until the lease runs out
                if time.monotonic() - self._renewed > self.lease_ms / 1000:
                    self.lost = True
                    return

    def check(self) -> None:
        """Called before each revision: never start one without the lock."""
        if self.lost:
            raise QueryError(f"lost the migration lock on {self.where} (its lease ran out before it could be "
                             "renewed); stopped before the next revision")

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.store.unlock(self.owner)
        except Exception:  # noqa: BLE001 - the lease expires on its own
            pass


class Store:
    """Migration records and the lock, for one backend."""

    def __init__(self, session):
        self.session = session
        self.client = session.client

    def setup(self) -> None:
        """Create what the records and the lock need (idempotent)."""

    def records(self, create: bool = True) -> dict[str, dict]:
        raise NotImplementedError

    def save(self, record: dict[str, Any]) -> None:
        raise NotImplementedError

    def remove(self, revision: str) -> None:
        raise NotImplementedError

    def try_lock(self, owner: str, lease_ms: int) -> bool:
        raise NotImplementedError

    def renew(self, owner: str, lease_ms: int) -> bool:
        raise NotImplementedError

    def unlock(self, owner: str) -> None:
        raise NotImplementedError

    def holder(self) -> dict | None:
        """{"owner": ..., "expires_in": seconds} of the current lock, or None."""
        raise NotImplementedError


def clean(record: dict) -> dict:
    """A record without its empty fields, as the stores save it."""
    return {k: v for k, v in record.items() if v is not None}


def store_for(backend: str, session) -> Store:
    """The version store the session's backend record names."""
    record = session.backend
    if record is None or not record.migrate or record.migrate == "alembic":
        raise Unsupported(f"dbsh migrate has no version store for {session.name}")
    return record.load(record.migrate)(session)
