"""dbsh migrate on Cassandra: the records in table dbsh_migrations, the lock a row of dbsh_migrate_lock
taken by a lightweight transaction (INSERT ... IF NOT EXISTS USING TTL: the TTL is the lease)."""

from __future__ import annotations

import json
import math

from cassandra import InvalidRequest

from dbsh.migrate.stores import Store, clean


class CassandraStore(Store):
    def setup(self) -> None:
        self.client.execute("CREATE TABLE IF NOT EXISTS dbsh_migrations (revision text PRIMARY KEY, record text)")
        self.client.execute("CREATE TABLE IF NOT EXISTS dbsh_migrate_lock (name text PRIMARY KEY, owner text)")

    def records(self, create: bool = True) -> dict[str, dict]:
        if create:
            self.setup()
        try:
            rows = self.client.execute("SELECT revision, record FROM dbsh_migrations")
        except InvalidRequest:   # no table yet, and a dry run creates nothing
            return {}
        return {r["revision"]: json.loads(r["record"]) for r in rows}   # the session's rows are dicts

    def save(self, record: dict) -> None:
        self.client.execute("INSERT INTO dbsh_migrations (revision, record) VALUES (%s, %s)",
                            (record["revision"], json.dumps(clean(record))))

    def remove(self, revision: str) -> None:
        self.client.execute("DELETE FROM dbsh_migrations WHERE revision = %s", (revision,))

    def try_lock(self, owner: str, lease_ms: int) -> bool:
        # a lightweight transaction (Paxos): one run wins; the TTL is the lease
        return self.client.execute("INSERT INTO dbsh_migrate_lock (name, owner) VALUES ('lock', %s) "
                                   "IF NOT EXISTS USING TTL %s", (owner, math.ceil(lease_ms / 1000))).was_applied

    def renew(self, owner: str, lease_ms: int) -> bool:
        return self.client.execute("UPDATE dbsh_migrate_lock USING TTL %s SET owner = %s WHERE name = 'lock' "
                                   "IF owner = %s", (math.ceil(lease_ms / 1000), owner, owner)).was_applied

    def unlock(self, owner: str) -> None:
        self.client.execute("DELETE FROM dbsh_migrate_lock WHERE name = 'lock' IF owner = %s", (owner,))

    def holder(self) -> dict | None:
        row = self.client.execute("SELECT owner, TTL(owner) AS ttl FROM dbsh_migrate_lock WHERE name = 'lock'").one()
        return {"owner": row["owner"], "expires_in": row["ttl"] or 0} if row else None
