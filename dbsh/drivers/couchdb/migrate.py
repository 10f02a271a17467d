"""dbsh migrate on CouchDB (moved from dbsh/migrate/stores.py): records are documents of the database
dbsh_migrations; the lock is its document "lock", every change guarded by its _rev."""

from __future__ import annotations

from dbsh.drivers.couchdb.client import Conflict
from dbsh.migrate.stores import Store, clean, now_ms


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
        doc = {"_id": doc_id, **clean(record)}
        if old is not None:
            doc["_rev"] = old["_rev"]
        self.client.put(db, doc)

    def remove(self, revision: str) -> None:
        db = self.db(True)
        old = self.client.get(db, self.PREFIX + revision)
        if old is not None:
            self.client.remove(db, old)

    def try_lock(self, owner: str, lease_ms: int) -> bool:
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
