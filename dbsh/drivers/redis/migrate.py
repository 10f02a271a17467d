"""dbsh migrate on Redis (moved from dbsh/migrate/stores.py): records in the hash
{dbsh:migrate}:versions; the lock is SET {dbsh:migrate}:lock NX PX, renewed and released by a Lua check of
its owner. Both keys share one hash tag, so they live in one cluster slot."""

from __future__ import annotations

import json

from dbsh.migrate.stores import Store, clean

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
        self.client.hset(self.VERSIONS, record["revision"], json.dumps(clean(record)))

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
