"""Where each NoSQL backend keeps its migration records and its migration lock.

A store records one entry per revision (state running / applied / failed, checksum, times) in the
target itself, and offers a lock with a lease: ``try_lock`` takes it only if it is free or its lease
has expired, ``renew`` extends it only for its owner, ``unlock`` frees it only for its owner. So a run
killed while holding the lock blocks the next one for at most one lease. Every store works through the
session's native client (``session.client``), whose library the driver module already imported.

    MongoDB    collection dbsh_migrations; lock: a lease document in dbsh_migrate_lock (unique _id)
    Redis      hash {dbsh:migrate}:versions; lock: SET {dbsh:migrate}:lock NX PX, renewed by a Lua check
    CouchDB    database dbsh_migrations; lock: document "lock", every change guarded by its _rev
    Neo4j      (:DbshMigration) nodes; lock: a (:DbshMigrateLock) node under a unique constraint
    Cassandra  tables dbsh_migrations and dbsh_migrate_lock; lock: INSERT ... IF NOT EXISTS USING TTL
               (dbsh.drivers.cassandra.migrate; Store and Lease, the base classes, stay here)
"""

from __future__ import annotations

import json
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

    def __init__(self, store: "Store", owner: str, *, lease: float, timeout: float | None, where: str):
        self.store = store
        self.owner = owner
        self.lease_ms = int(lease * 1000)
        self.timeout = timeout
        self.where = where
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "Lease":
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


def _clean(record: dict) -> dict:
    return {k: v for k, v in record.items() if v is not None}


# -- MongoDB -----------------------------------------------------------------------------------
class MongoStore(Store):
    def __init__(self, session):
        super().__init__(session)
        self.versions = self.client["dbsh_migrations"]
        self.locks = self.client["dbsh_migrate_lock"]

    def records(self, create: bool = True) -> dict[str, dict]:
        return {d["_id"]: {"revision": d.pop("_id"), **d} for d in self.versions.find({})}

    def save(self, record: dict) -> None:
        doc = {k: v for k, v in _clean(record).items() if k != "revision"}
        self.versions.replace_one({"_id": record["revision"]}, doc, upsert=True)

    def remove(self, revision: str) -> None:
        self.versions.delete_one({"_id": revision})

    def try_lock(self, owner: str, lease_ms: int) -> bool:
        from pymongo.errors import DuplicateKeyError

        now = now_ms()
        try:
            # matches only an expired lease; when there is none, the upsert's insert collides with a
            # live lock on the unique _id, so exactly one run wins
            self.locks.update_one({"_id": "lock", "expires": {"$lt": now}},
                                  {"$set": {"owner": owner, "expires": now + lease_ms}}, upsert=True)
            return True
        except DuplicateKeyError:
            return False

    def renew(self, owner: str, lease_ms: int) -> bool:
        return self.locks.update_one({"_id": "lock", "owner": owner},
                                     {"$set": {"expires": now_ms() + lease_ms}}).matched_count == 1

    def unlock(self, owner: str) -> None:
        self.locks.delete_one({"_id": "lock", "owner": owner})

    def holder(self) -> dict | None:
        doc = self.locks.find_one({"_id": "lock"})
        return {"owner": doc.get("owner"), "expires_in": (doc.get("expires", 0) - now_ms()) / 1000} if doc else None


# -- Redis -------------------------------------------------------------------------------------
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_UNLOCK = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class RedisStore(Store):
    # one hash tag: both keys live in the same cluster slot
    VERSIONS = "{dbsh:migrate}:versions"
    LOCK = "{dbsh:migrate}:lock"

    def records(self, create: bool = True) -> dict[str, dict]:
        return {_text(k): json.loads(_text(v)) for k, v in (self.client.hgetall(self.VERSIONS) or {}).items()}

    def save(self, record: dict) -> None:
        self.client.hset(self.VERSIONS, record["revision"], json.dumps(_clean(record)))

    def remove(self, revision: str) -> None:
        self.client.hdel(self.VERSIONS, revision)

    def try_lock(self, owner: str, lease_ms: int) -> bool:
        return bool(self.client.set(self.LOCK, owner, nx=True, px=lease_ms))

    def renew(self, owner: str, lease_ms: int) -> bool:
        return bool(self.client.eval(_RENEW, 1, self.LOCK, owner, lease_ms))

    def unlock(self, owner: str) -> None:
        self.client.eval(_UNLOCK, 1, self.LOCK, owner)

    def holder(self) -> dict | None:
        owner = self.client.get(self.LOCK)
        if owner is None:
            return None
        return {"owner": _text(owner), "expires_in": max(0, self.client.pttl(self.LOCK)) / 1000}


# -- CouchDB -----------------------------------------------------------------------------------
class CouchStore(Store):
    """Records are documents ``revision:<id>`` of the database dbsh_migrations; the lock is the
    document ``lock`` there, every change to it guarded by its _rev (a stale _rev is a Conflict)."""

    DB = "dbsh_migrations"
    PREFIX = "revision:"

    def __init__(self, session):
        super().__init__(session)
        self._ready = False

    def setup(self) -> None:
        self.db(create=True)

    def db(self, create: bool = False) -> str | None:
        """The records' database name, or None when it does not exist (and ``create`` is false)."""
        if not self._ready:
            if not self.client.exists(self.DB):
                if not create:
                    return None
                self.client.create(self.DB)   # False: another run created it first, which is fine
            self._ready = True
        return self.DB

    def records(self, create: bool = True) -> dict[str, dict]:
        db = self.db(create)
        if db is None:
            return {}
        out = {}
        with self.client.all_docs(db, start=self.PREFIX, end=self.PREFIX + "\ufff0", include_docs=True) as rows:
            for row in rows:
                doc = {k: v for k, v in (row.get("doc") or {}).items() if not k.startswith("_")}
                if "revision" in doc:
                    out[doc["revision"]] = doc
        return out

    def save(self, record: dict) -> None:
        db = self.db(True)
        doc_id = self.PREFIX + record["revision"]
        old = self.client.get(db, doc_id)
        doc = {"_id": doc_id, **_clean(record)}
        if old is not None:
            doc["_rev"] = old["_rev"]
        self.client.put(db, doc)

    def remove(self, revision: str) -> None:
        db = self.db(True)
        old = self.client.get(db, self.PREFIX + revision)
        if old is not None:
            self.client.remove(db, old)

    def try_lock(self, owner: str, lease_ms: int) -> bool:
        from dbsh.drivers.couchdb.client import Conflict

        db = self.db(True)
        now = now_ms()
        doc = self.client.get(db, "lock")
        if doc is not None and doc.get("owner") and doc.get("expires", 0) >= now:
            return False
        new = {"_id": "lock", "owner": owner, "expires": now + lease_ms}
        if doc is not None:
            new["_rev"] = doc["_rev"]   # taking over an expired lease: only if nobody changed it meanwhile
        try:
            self.client.put(db, new)
            return True
        except Conflict:
            return False

    def renew(self, owner: str, lease_ms: int) -> bool:
        from dbsh.drivers.couchdb.client import Conflict

        db = self.db(True)
        doc = self.client.get(db, "lock")
        if doc is None or doc.get("owner") != owner:
            return False
        doc["expires"] = now_ms() + lease_ms
        try:
            self.client.put(db, doc)
            return True
        except Conflict:
            return False

    def unlock(self, owner: str) -> None:
        from dbsh.drivers.couchdb.client import Conflict

        db = self.db(True)
        doc = self.client.get(db, "lock")
        if doc is not None and doc.get("owner") == owner:
            doc["owner"], doc["expires"] = None, 0
            try:
                self.client.put(db, doc)
            except Conflict:
                pass

    def holder(self) -> dict | None:
        db = self.db(False)
        doc = self.client.get(db, "lock") if db is not None else None
        if not doc or not doc.get("owner"):
            return None
        return {"owner": doc["owner"], "expires_in": (doc.get("expires", 0) - now_ms()) / 1000}


# -- Neo4j -------------------------------------------------------------------------------------
class Neo4jStore(Store):
    def _q(self, text: str, **params) -> list[dict]:
        try:
            records, _, _ = self.client.execute_query(text, params, database_=self.session.database)
        except Exception as e:  # noqa: BLE001 - one line, and exit 3 for a refused login
            raise self.session._error(e) from None
        return [r.data() for r in records]

    def setup(self) -> None:
        # the lock is only safe under its unique constraint: a failure here stops the run
        for text in ("CREATE CONSTRAINT dbsh_migrate_lock IF NOT EXISTS FOR (l:DbshMigrateLock) "
                     "REQUIRE l.name IS UNIQUE",
                     "CREATE CONSTRAINT dbsh_migration IF NOT EXISTS FOR (v:DbshMigration) "
                     "REQUIRE v.revision IS UNIQUE"):
            self._q(text)

    def records(self, create: bool = True) -> dict[str, dict]:
        rows = self._q("MATCH (v:DbshMigration) RETURN properties(v) AS v")
        return {r["v"]["revision"]: dict(r["v"]) for r in rows}

    def save(self, record: dict) -> None:
        self._q("MERGE (v:DbshMigration {revision: $rev}) SET v = $props", rev=record["revision"],
                props=_clean(record))

    def remove(self, revision: str) -> None:
        self._q("MATCH (v:DbshMigration {revision: $rev}) DELETE v", rev=revision)

    def try_lock(self, owner: str, lease_ms: int) -> bool:
        now = now_ms()
        # SET before the check takes the node's write lock, so the check reads the latest committed lease
        rows = self._q("MERGE (l:DbshMigrateLock {name: 'lock'}) SET l.touched = $now "
                       "WITH l WHERE l.owner IS NULL OR l.expires < $now OR l.owner = $owner "
                       "SET l.owner = $owner, l.expires = $expires RETURN l.owner AS owner",
                       now=now, owner=owner, expires=now + lease_ms)
        return bool(rows) and rows[0]["owner"] == owner

    def renew(self, owner: str, lease_ms: int) -> bool:
        rows = self._q("MATCH (l:DbshMigrateLock {name: 'lock'}) WHERE l.owner = $owner "
                       "SET l.expires = $expires RETURN l.owner AS owner", owner=owner, expires=now_ms() + lease_ms)
        return bool(rows)

    def unlock(self, owner: str) -> None:
        self._q("MATCH (l:DbshMigrateLock {name: 'lock'}) WHERE l.owner = $owner SET l.owner = NULL, l.expires = 0",
                owner=owner)

    def holder(self) -> dict | None:
        rows = self._q("MATCH (l:DbshMigrateLock {name: 'lock'}) WHERE l.owner IS NOT NULL "
                       "RETURN l.owner AS owner, l.expires AS expires")
        return {"owner": rows[0]["owner"], "expires_in": (rows[0]["expires"] - now_ms()) / 1000} if rows else None


def store_for(backend: str, session) -> Store:
    """The version store the session's backend record names."""
    record = session.backend
    if record is None or not record.migrate or record.migrate == "alembic":
        raise Unsupported(f"dbsh migrate has no version store for {session.name}")
    return record.load(record.migrate)(session)
