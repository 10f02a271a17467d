"""The NoSQL migration runner: one revision format and graph (Alembic's ScriptDirectory), one lock.

A revision is a Python file with ``revision``, ``down_revision``, ``upgrade(session)`` and
``downgrade(session)``; ``session`` is the dbsh driver session (wrapped so the uniform verbs take plain
dicts). Applied revisions, their checksums, state (running / applied / failed) and times are recorded
in the target itself (``dbsh.migrate.stores``), under a leased lock renewed while the run lives.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket  # gethostname: os.uname() does not exist on Windows
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from alembic.util import CommandError

from dbsh.drivers.base import Result, Session
from dbsh.errors import DbshError, QueryError, UsageError, one_line, redact
from dbsh.migrate.report import Report
from dbsh.migrate.stores import Lease, store_for
from dbsh.query import Filter, Update

DEFAULT_LEASE = 30.0

TEMPLATE = '''"""{message}

Revision ID: {revision}
Revises: {down_revision}
Create Date: {date}
"""

# `session` is the dbsh session of the target: the uniform verbs take plain dicts
#   session.insert("users", [{{"name": "Ann"}}]); session.update("users", {{"age": None}}, {{"$set": {{"age": 0}}}})
#   session.find / count / delete, session.execute("native text", {{"param": 1}}), session.client (native client)
# A NoSQL revision has no transaction: write it so that running it again after an interruption is harmless.

revision = {revision!r}
down_revision = {down!r}


def upgrade(session):
    pass


def downgrade(session):
    pass
'''


def backend_of(target) -> str:
    """The backend's key (mongo, redis, ...): its directory under migrations/nosql/."""
    from dbsh import drivers

    return drivers.for_scheme(target.scheme).key


def checksum(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes().replace(b"\r\n", b"\n")).hexdigest()


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


class PlanOnly(Exception):
    """A migration reached for the native client during a dry run: its operations cannot be listed."""


class MigrationSession:
    """What a revision's upgrade()/downgrade() gets: the dbsh session, verbs with plain dicts.

    In a dry run (``plan``) writes are recorded instead of sent; reads still go to the database."""

    def __init__(self, session: Session, *, plan: list[dict] | None = None):
        self._session = session
        self._plan = plan

    def _note(self, operation: str, collection: str | None, detail: Any) -> bool:
        if self._plan is None:
            return False
        self._plan.append({"operation": operation, "collection": collection, "detail": detail})
        return True

    @staticmethod
    def _filter(where) -> Filter:
        return where if isinstance(where, Filter) else Filter(dict(where or {}))

    def insert(self, name: str, docs: Iterable[dict], **options):
        if self._plan is not None:
            docs = list(docs)
            self._note("insert", name, f"{len(docs)} document{'s' if len(docs) != 1 else ''}")
            return None
        return self._session.insert(name, docs, **options)

    def update(self, name: str, where, change, **options):
        where = self._filter(where)
        change = change if isinstance(change, Update) else Update(change)
        if self._note("update", name, {"filter": where.doc, "update": change.doc, **options}):
            return None
        return self._session.update(name, where, change, **options)

    def delete(self, name: str, where=None, **options):
        where = self._filter(where)
        if self._note("delete", name, {"filter": where.doc, **options}):
            return None
        return self._session.delete(name, self._filter(where), **options)

    def find(self, name: str, where=None, **options) -> Result:
        return self._session.find(name, self._filter(where), **options)

    def count(self, name: str, where=None) -> int:
        return self._session.count(name, self._filter(where))

    def execute(self, text: str, params: dict | None = None) -> Result:
        if self._note("execute", None, {"text": text, "params": params or {}}):
            return Result([], [])
        return self._session.execute(text, params or {})

    @property
    def client(self):
        if self._plan is not None:
            raise PlanOnly()
        return self._session.client

    def __getattr__(self, name):
        return getattr(self._session, name)


class NoSqlMigrations:
    """`dbsh migrate` verbs for MongoDB, Redis, CouchDB, Neo4j and Cassandra targets."""

    def __init__(self, target, directory: str | None, report: Report, *, lock_timeout: float | None = None,
                 lock_lease: float | None = None):
        self.target = target
        self.report = report
        self.backend = backend_of(target)
        self.dir = Path(directory) if directory else Path("migrations", "nosql", self.backend)
        self.lock_timeout = lock_timeout
        self.lease = lock_lease or DEFAULT_LEASE
        self.owner = f"dbsh migrate pid {os.getpid()} on {socket.gethostname()} ({uuid.uuid4().hex[:8]})"
        self._script: ScriptDirectory | None = None

    # -- the revision graph --------------------------------------------------------------------
    @property
    def script(self) -> ScriptDirectory:
        if self._script is None:
            if not self.dir.is_dir():
                raise UsageError(f"no migrations directory {self.dir}",
                                 hint="run dbsh migrate init to make it, or use --dir PATH")
            try:
                self._script = ScriptDirectory(str(self.dir), version_locations=[str(self.dir)])
                self._script.revision_map.heads  # noqa: B018 - load and check every file now
            except CommandError as e:
                raise UsageError(one_line(str(e))) from None
            except DbshError:
                raise
            except Exception as e:  # noqa: BLE001 - a revision file that does not even import
                raise UsageError(f"cannot load the revisions in {self.dir}: {one_line(f'{type(e).__name__}: {e}')}") \
                    from None
        return self._script

    def revisions(self) -> list:
        """Every revision, oldest first (a topological order)."""
        return list(reversed(list(self.script.walk_revisions())))

    def _resolve(self, revision: str) -> list[str]:
        try:
            if revision in ("head", "heads"):
                return list(self.script.get_heads())
            if revision == "base":
                return []
            return [self.script.get_revision(revision).revision]
        except (CommandError, AttributeError) as e:
            raise UsageError(f"Can't locate revision identified by {revision!r}"
                             if isinstance(e, AttributeError) else one_line(str(e))) from None

    def _ancestors(self, revs: Iterable[str]) -> set[str]:
        parents = {r.revision: tuple(r._all_down_revisions) for r in self.revisions()}
        seen: set[str] = set()
        todo = list(revs)
        while todo:
            rev = todo.pop()
            if rev not in seen:
                seen.add(rev)
                todo.extend(parents.get(rev, ()))
        return seen

    def _module(self, rev: str):
        return self.script.get_revision(rev).module

    # -- session and store ----------------------------------------------------------------------
    def _open(self, writes: str | None = None):
        from dbsh import context

        session = context.open_session(self.target, writes=writes)
        try:
            store = store_for(self.backend, session)
            store.setup()
        except BaseException:
            session.close()
            raise
        return session, store

    def _check_blocked(self, records: dict[str, dict], force: bool) -> None:
        failed = [r for r in records.values() if r.get("state") == "failed"]
        if failed and not force:
            r = failed[0]
            raise QueryError(f"revision {r['revision']} failed at {r.get('failed_at', '?')} ({r.get('error', '')}); "
                             f"refusing to run until it is resolved: fix it, then `dbsh migrate resolve "
                             f"{r['revision']}` (or --force to retry it)")

    def _warn_changed(self, records: dict[str, dict]) -> None:
        for rev in self.revisions():
            r = records.get(rev.revision)
            if r and r.get("state") == "applied" and r.get("checksum") and r["checksum"] != checksum(rev.path):
                print(f"dbsh: warning: revision {rev.revision} changed since it was applied (checksum "
                      f"{r['checksum'][:12]} then, {checksum(rev.path)[:12]} now)", file=sys.stderr)

    def _run(self, rev, direction: str, session, store, lease: Lease) -> dict:
        lease.check()
        started = now()
        base = {"revision": rev.revision, "message": rev.doc or "", "checksum": checksum(rev.path)}
        store.save({**base, "state": "running", "direction": direction, "started_at": started, "owner": self.owner})
        fn = getattr(rev.module, direction, None)
        if fn is None:
            raise UsageError(f"revision {rev.revision} has no {direction}(session) function")
        try:
            fn(MigrationSession(session))
        except BaseException as e:
            text = redact(one_line(str(e) if isinstance(e, DbshError) else f"{type(e).__name__}: {e}"),
                          self.target.password)
            store.save({**base, "state": "failed", "direction": direction, "started_at": started,
                        "failed_at": now(), "error": text, "owner": self.owner})
            if isinstance(e, KeyboardInterrupt):
                raise
            raise QueryError(f"revision {rev.revision} failed: {text}; it is recorded as failed and later runs "
                             f"refuse until `dbsh migrate resolve {rev.revision}` (or --force)") from None
        if direction == "upgrade":
            store.save({**base, "state": "applied", "applied_at": now(), "started_at": started,
                        "owner": self.owner})
        else:
            store.remove(rev.revision)
        return {"action": direction, "revision": rev.revision, "message": rev.doc or ""}

    def _interrupted(self, records: dict[str, dict]) -> None:
        for r in records.values():
            if r.get("state") == "running":
                print(f"dbsh: warning: revision {r['revision']} was interrupted in an earlier run ({r.get('owner')}, "
                      f"started {r.get('started_at')}) whose lock lease expired; running it again", file=sys.stderr)

    # -- verbs ---------------------------------------------------------------------------------
    def upgrade(self, revision: str = "heads", *, sql: bool = False, dry_run: bool = False,
                force: bool = False) -> None:
        if sql:
            raise UsageError(f"--sql is for SQL targets; use `dbsh migrate plan` to see what {self.backend} "
                             "would run")
        if dry_run:
            return self.plan(revision)
        wanted = self._wanted(revision)
        session, store = self._open(writes="migrate upgrade")
        done: list[dict] = []
        try:
            with Lease(store, self.owner, lease=self.lease, timeout=self.lock_timeout,
                       where=self.target.display()) as lease:
                records = store.records()
                self._check_blocked(records, force)
                self._warn_changed(records)
                self._interrupted(records)
                for rev in self.revisions():
                    if rev.revision in wanted and records.get(rev.revision, {}).get("state") != "applied":
                        done.append(self._run(rev, "upgrade", session, store, lease))
        finally:
            self.report.rows(done, lambda r: f"upgrade {r['revision']}: {r['message']}",
                             empty=f"already at {revision}")
            session.close()

    def _wanted(self, revision: str) -> set[str]:
        if revision.startswith("+"):
            raise UsageError("relative upgrades (+N) are not supported on NoSQL targets; name a revision or head")
        return self._ancestors(self._resolve(revision))

    def downgrade(self, revision: str, *, sql: bool = False, force: bool = False, **_) -> None:
        if sql:
            raise UsageError("--sql is for SQL targets")
        session, store = self._open(writes="migrate downgrade")
        done: list[dict] = []
        try:
            with Lease(store, self.owner, lease=self.lease, timeout=self.lock_timeout,
                       where=self.target.display()) as lease:
                records = store.records()
                self._check_blocked(records, force)
                applied = [r for r in self.revisions()
                           if records.get(r.revision, {}).get("state") in ("applied", "failed", "running")]
                if revision.startswith("-"):
                    try:
                        n = int(revision[1:])
                    except ValueError:
                        raise UsageError(f"bad relative revision {revision!r}", hint="e.g. -1") from None
                    undo = list(reversed(applied))[:n]
                else:
                    keep = self._ancestors(self._resolve(revision))
                    undo = [r for r in reversed(applied) if r.revision not in keep]
                for rev in undo:
                    done.append(self._run(rev, "downgrade", session, store, lease))
        finally:
            self.report.rows(done, lambda r: f"downgrade {r['revision']}: {r['message']}",
                             empty="nothing to downgrade")
            session.close()

    def stamp(self, revision: str, *, sql: bool = False, purge: bool = False) -> None:
        if sql:
            raise UsageError("--sql is for SQL targets")
        keep = self._ancestors(self._resolve(revision))
        session, store = self._open(writes="migrate stamp")
        rows = []
        try:
            with Lease(store, self.owner, lease=self.lease, timeout=self.lock_timeout, where=self.target.display()):
                records = store.records()
                for rev in self.revisions():
                    if rev.revision in keep and (purge or records.get(rev.revision, {}).get("state") != "applied"):
                        store.save({"revision": rev.revision, "message": rev.doc or "", "checksum": checksum(rev.path),
                                    "state": "applied", "applied_at": now(), "owner": self.owner, "stamped": True})
                        rows.append({"action": "stamp", "revision": rev.revision, "message": rev.doc or ""})
                for rev_id in records:
                    if rev_id not in keep:
                        store.remove(rev_id)
                        rows.append({"action": "unstamp", "revision": rev_id,
                                     "message": records[rev_id].get("message")})
        finally:
            session.close()
        self.report.rows(rows, lambda r: f"{r['action']} {r['revision']}: {r['message']}",
                         empty=f"already stamped {revision}")

    def resolve(self, revision: str, *, applied: bool = False) -> None:
        rev_id = self._resolve(revision)
        if len(rev_id) != 1:
            raise UsageError("resolve takes one revision id")
        rev = self.script.get_revision(rev_id[0])
        session, store = self._open(writes="migrate resolve")
        try:
            with Lease(store, self.owner, lease=self.lease, timeout=self.lock_timeout, where=self.target.display()):
                record = store.records().get(rev.revision)
                if record is None or record.get("state") not in ("failed", "running"):
                    raise UsageError(f"revision {rev.revision} is not failed (it is "
                                     f"{record.get('state') if record else 'pending'})")
                if applied:
                    store.save({"revision": rev.revision, "message": rev.doc or "", "checksum": checksum(rev.path),
                                "state": "applied", "applied_at": now(), "owner": self.owner, "resolved": True})
                else:
                    store.remove(rev.revision)
        finally:
            session.close()
        state = "applied" if applied else "pending"
        self.report.rows([{"action": "resolved", "revision": rev.revision, "state": state}],
                         lambda r: f"resolved {r['revision']}: now {r['state']}")

    def revision(self, message: str | None, *, autogenerate: bool = False, metadata: str | None = None,
                 rev_id: str | None = None) -> None:
        if autogenerate or metadata:
            raise UsageError("--autogenerate and --metadata are for SQL targets")
        from alembic.util import rev_id as new_id

        self.dir.mkdir(parents=True, exist_ok=True)
        heads = list(self.script.get_heads())
        rid = rev_id or new_id()
        down = heads[0] if len(heads) == 1 else (tuple(heads) or None)
        slug = "_".join("".join(c if c.isalnum() else " " for c in (message or "")).lower().split())[:40]
        path = self.dir / (f"{rid}_{slug}.py" if slug else f"{rid}.py")
        if path.exists() or rid in {r.revision for r in self.revisions()}:
            raise UsageError(f"revision {rid} already exists")
        path.write_text(TEMPLATE.format(message=message or "", revision=rid, down=down,
                                        down_revision=", ".join(heads) if heads else "",
                                        date=dt.datetime.now().isoformat(sep=" ", timespec="seconds")))
        self.report.rows([{"action": "created", "revision": rid, "down_revision": ", ".join(heads) or None,
                           "message": message or "", "path": str(path)}],
                         lambda r: f"created revision {r['revision']} ({r['message']}): {r['path']}")

    # -- reading ---------------------------------------------------------------------------------
    def _records(self) -> dict[str, dict]:
        session, store = self._open()
        try:
            return store.records()
        finally:
            session.close()

    def status(self) -> None:
        records = self._records()
        rows = []
        for rev in self.revisions():
            r = records.get(rev.revision, {})
            state = r.get("state") or "pending"
            if state == "running":   # a run that never finished
                state = "interrupted"
            row = {"revision": rev.revision, "down_revision": _ids(rev.down_revision), "message": rev.doc or "",
                   "state": state, "applied_at": r.get("applied_at"),
                   "checksum_changed": bool(r.get("checksum")) and r["checksum"] != checksum(rev.path)}
            if r.get("error"):
                row["error"] = r["error"]
            rows.append(row)
        known = {r.revision for r in self.revisions()}
        for rev_id, r in records.items():
            if rev_id not in known:
                rows.append({"revision": rev_id, "down_revision": None, "message": r.get("message", ""),
                             "state": f"{r.get('state')} (file missing)", "applied_at": r.get("applied_at"),
                             "checksum_changed": False})

        def line(r):
            extra = " (changed since applied)" if r["checksum_changed"] else ""
            extra += f" [{r['error']}]" if r.get("error") else ""
            return f"{r['state']:<11} {r['revision']}  {r['message']}{extra}"
        self.report.rows(rows, line, empty="no revisions yet")

    def current(self) -> None:
        records = self._records()
        applied = {k for k, r in records.items() if r.get("state") == "applied"}
        below = set()
        for rev in self.revisions():
            if rev.revision in applied:
                below |= self._ancestors([rev.revision]) - {rev.revision}
        heads = set(self.script.get_heads())
        rows = [{"revision": rev.revision, "message": rev.doc or "", "head": rev.revision in heads}
                for rev in self.revisions() if rev.revision in applied - below]
        self.report.rows(rows, lambda r: f"{r['revision']}{' (head)' if r['head'] else ''}: {r['message']}",
                         empty="no revision applied (base)")

    def heads(self) -> None:
        rows = [{"revision": h, "message": self.script.get_revision(h).doc or ""} for h in self.script.get_heads()]
        self.report.rows(rows, lambda r: f"{r['revision']} (head): {r['message']}", empty="no revisions yet")

    def history(self) -> None:
        rows = [{"revision": rev.revision, "down_revision": _ids(rev.down_revision), "message": rev.doc or "",
                 "head": rev.is_head} for rev in self.script.walk_revisions()]
        self.report.rows(rows, lambda r: f"{r['down_revision'] or '<base>'} -> {r['revision']}"
                         f"{' (head)' if r['head'] else ''}, {r['message']}", empty="no revisions yet")

    def plan(self, revision: str = "heads") -> None:
        """The pending revisions and, where they use the uniform verbs, their operations; nothing is written."""
        wanted = self._wanted(revision)
        from dbsh import context

        session = context.open_session(self.target)
        try:
            store = store_for(self.backend, session)
            records = store.records(create=False)
            self._check_blocked(records, force=False)
            rows = []
            for rev in self.revisions():
                if rev.revision not in wanted or records.get(rev.revision, {}).get("state") == "applied":
                    continue
                ops: list[dict] = []
                note = None
                try:
                    rev.module.upgrade(MigrationSession(session, plan=ops))
                except PlanOnly:
                    note = "uses the native client: operations not listed"
                except Exception as e:  # noqa: BLE001 - a dry run reports, it does not stop
                    note = f"could not be dry-run: {one_line(f'{type(e).__name__}: {e}')}"
                rows.append({"revision": rev.revision, "message": rev.doc or "", "operations": ops,
                             **({"note": note} if note else {})})
        finally:
            session.close()

        def line(r):
            lines = [f"would upgrade {r['revision']}: {r['message']}"]
            lines += [f"    {op['operation']} {op['collection'] or ''} {_short(op['detail'])}".rstrip()
                      for op in r["operations"]]
            if r.get("note"):
                lines.append(f"    ({r['note']})")
            return "\n".join(lines)
        self.report.rows(rows, line, empty=f"nothing to do: already at {revision}")


def _short(detail: Any) -> str:
    from dbsh.output import to_json

    return detail if isinstance(detail, str) else to_json(detail)


def _ids(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        return ", ".join(value)
    return value
