"""dbsh migrate on Neo4j (moved from dbsh/migrate/stores.py): records are (:DbshMigration) nodes; the
lock is a (:DbshMigrateLock) node under a unique constraint."""

from __future__ import annotations

from dbsh.migrate.stores import Store, clean, now_ms


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
                props=clean(record))

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
