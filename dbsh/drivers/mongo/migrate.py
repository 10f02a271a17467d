"""dbsh migrate on MongoDB (moved from dbsh/migrate/stores.py): records in the collection
dbsh_migrations; the lock is a lease document in dbsh_migrate_lock (its unique _id makes one run win)."""

from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from dbsh.migrate.stores import Store, clean, now_ms


class MongoStore(Store):
    def __init__(self, session):
        super().__init__(session)
        self.versions = self.client["dbsh_migrations"]
        self.locks = self.client["dbsh_migrate_lock"]

    def records(self, create: bool = True) -> dict[str, dict]:
        return {d["_id"]: {"revision": d.pop("_id"), **d} for d in self.versions.find({})}

    def save(self, record: dict) -> None:
        doc = {k: v for k, v in clean(record).items() if k != "revision"}
        self.versions.replace_one({"_id": record["revision"]}, doc, upsert=True)

    def remove(self, revision: str) -> None:
        self.versions.delete_one({"_id": revision})

    def try_lock(self, owner: str, lease_ms: int) -> bool:
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
