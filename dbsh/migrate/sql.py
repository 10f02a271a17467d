"""SQL migrations: Alembic's own commands and Config, run on a connection that holds a migration lock.

The lock makes parallel deploys apply each revision once: PostgreSQL ``pg_advisory_lock``,
MySQL/MariaDB ``GET_LOCK`` (both released by the server if the process dies), SQLite an exclusive
transaction around the whole run. ``migrations/env.py`` takes the same lock under plain ``alembic``.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import zlib
from argparse import Namespace
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy import exc as sa_exc

from dbsh.drivers.sql.urls import sqlalchemy_url
from dbsh.errors import ConnectError, DbshError, QueryError, UsageError, one_line, redact
from dbsh.migrate.report import Report

VERSION_TABLE = "alembic_version"
PG_LOCK_CLASS = 0x64627368   # "dbsh": first key of the two-key advisory lock
FOREVER = 24 * 24 * 3600    # "no timeout": 24 days, within SQLite's 32-bit busy_timeout in ms


class LockTimeout(QueryError):
    """Another run holds the migration lock past --lock-timeout (exit 1)."""


# -- where the migrations are ----------------------------------------------------------------
def make_config(directory: str | None, *, stdout=None) -> Config:
    """Alembic's Config: ``--dir`` (an Alembic script directory), else ./alembic.ini, else ./migrations."""
    stdout = stdout or sys.stdout
    # alembic's own progress lines ("Generating ... done") would mix with dbsh's rows on stdout
    quiet = Namespace(quiet=True, x=None)
    if directory:
        path = Path(directory)
        if (path / "alembic.ini").is_file() and not (path / "env.py").is_file():
            cfg = Config(str(path / "alembic.ini"), stdout=stdout, cmd_opts=quiet)
        else:
            if not (path / "env.py").is_file():
                raise UsageError(f"{directory} is not an Alembic migrations directory (no env.py)",
                                 hint=f"run dbsh migrate init --dir {directory} to make one")
            cfg = Config(stdout=stdout, cmd_opts=quiet)
            cfg.set_main_option("script_location", str(path.resolve()).replace("%", "%%"))
    elif Path("alembic.ini").is_file():
        cfg = Config("alembic.ini", stdout=stdout, cmd_opts=quiet)
    elif Path("migrations", "env.py").is_file():
        cfg = Config(stdout=stdout, cmd_opts=quiet)
        cfg.set_main_option("script_location", str(Path("migrations").resolve()).replace("%", "%%"))
    else:
        raise UsageError("no SQL migrations here: no alembic.ini or migrations/env.py in the current directory",
                         hint="run dbsh migrate init to make them, or use --dir PATH")
    cfg.attributes["dbsh"] = True
    return cfg


def uses_dbsh_connection(env: Path) -> bool:
    """Whether an env.py takes the connection dbsh passes in ``config.attributes`` (dbsh's does;
    Alembic's stock one connects to alembic.ini's sqlalchemy.url instead)."""
    try:
        return "attributes" in env.read_text(encoding="utf-8")
    except OSError:
        return True   # no env.py to judge: Alembic says what is wrong


def check_env(cfg: Config) -> None:
    """Refuse an env.py that would connect somewhere else than the target (exit 2), naming the fix."""
    env = Path(script_directory(cfg).dir) / "env.py"
    if not uses_dbsh_connection(env):
        shown = os.path.relpath(env) if not os.path.relpath(env).startswith("..") else str(env)
        raise UsageError(f"{shown} ignores the connection dbsh passes (it is Alembic's stock env.py, which "
                         "connects to sqlalchemy.url in alembic.ini)",
                         hint="dbsh migrate init --force replaces it with dbsh's env.py")


def script_directory(cfg: Config) -> ScriptDirectory:
    try:
        return ScriptDirectory.from_config(cfg)
    except CommandError as e:
        raise UsageError(one_line(str(e))) from None


# -- connections and the lock ----------------------------------------------------------------
def engine_for(url: str, *, lock_timeout: float | None = None, connect_timeout: float | None = None) -> sa.Engine:
    """An engine for a dbsh (or SQLAlchemy) URL; SQLite runs in exclusive transactions. ``connect_timeout``
    (default dbsh.DEFAULT_CONNECT_TIMEOUT) bounds connecting and the server's first reply."""
    from dbsh import DEFAULT_CONNECT_TIMEOUT

    seconds = connect_timeout or DEFAULT_CONNECT_TIMEOUT
    sa_url = sqlalchemy_url(url) if "+" not in url.split("://", 1)[0] else url
    dialect = sa_url.split(":", 1)[0].split("+", 1)[0]
    holder = f"dbsh migrate pid {os.getpid()} on {socket.gethostname()}"[:63]
    if dialect == "sqlite":
        wait = FOREVER if lock_timeout is None else lock_timeout
        engine = sa.create_engine(sa_url, connect_args={"timeout": wait}, poolclass=sa.pool.NullPool)

        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_conn, record):
            dbapi_conn.isolation_level = None   # SQLAlchemy's BEGIN below, not pysqlite's implicit one
            dbapi_conn.execute(f"PRAGMA busy_timeout = {int(wait * 1000)}")

        @sa.event.listens_for(engine, "begin")
        def _begin(conn):
            conn.exec_driver_sql("BEGIN EXCLUSIVE")
        return engine
    args: dict[str, Any] = {"connect_timeout": max(1, round(seconds))}
    if dialect == "postgresql":
        args["application_name"] = holder
        return sa.create_engine(sa_url, connect_args=args, poolclass=sa.pool.NullPool)
    # PyMySQL's connect_timeout covers only the TCP connect: the server's greeting is read with
    # read_timeout, which is then lifted, so a migration's statements wait as long as they take
    args["program_name"] = holder
    args["read_timeout"] = seconds
    engine = sa.create_engine(sa_url, connect_args=args, poolclass=sa.pool.NullPool)

    @sa.event.listens_for(engine, "connect")
    def _no_read_timeout(dbapi_conn, record):
        if hasattr(dbapi_conn, "_read_timeout"):
            dbapi_conn._read_timeout = None
    return engine


def connect(engine: sa.Engine, display: str, password: str | None = None) -> sa.Connection:
    try:
        return engine.connect()
    except sa_exc.DBAPIError as e:
        orig = getattr(e, "orig", None) or e
        raise ConnectError(f"cannot connect to {display}: {redact(one_line(str(orig)), password)}") from None


@contextmanager
def migration_lock(conn: sa.Connection, *, lock_timeout: float | None, display: str) -> Iterator[None]:
    """Hold the migration lock on this connection. On SQLite the connection stays inside the exclusive
    transaction (committed when the block succeeds); elsewhere it is a session lock, outside any transaction."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        try:
            conn.begin()
        except sa_exc.OperationalError as e:
            if "locked" in str(e).lower():
                raise LockTimeout(f"timed out after {_secs(lock_timeout)} waiting for the migration lock on "
                                  f"{display}: another process holds the SQLite database's write lock") from None
            raise
        try:
            yield
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        return
    if dialect == "postgresql":
        key = zlib.crc32(f"{conn.exec_driver_sql('select current_database()').scalar()}:{VERSION_TABLE}".encode())
        key = key & 0x7FFFFFFF
        if lock_timeout is None:
            conn.execute(sa.text("select pg_advisory_lock(:c, :k)"), {"c": PG_LOCK_CLASS, "k": key})
        else:
            deadline = time.monotonic() + lock_timeout
            while not conn.execute(sa.text("select pg_try_advisory_lock(:c, :k)"),
                                   {"c": PG_LOCK_CLASS, "k": key}).scalar():
                if time.monotonic() >= deadline:
                    holder = _pg_holder(conn, key)
                    conn.rollback()
                    raise LockTimeout(f"timed out after {_secs(lock_timeout)} waiting for the migration lock "
                                      f"on {display}: held by {holder}")
                time.sleep(0.2)
        conn.commit()
        try:
            yield
        finally:
            _quietly(conn, "select pg_advisory_unlock(:c, :k)", {"c": PG_LOCK_CLASS, "k": key})
        return
    if dialect in ("mysql", "mariadb"):
        database = conn.exec_driver_sql("select database()").scalar() or ""
        name = f"dbsh_migrate:{database}"[:64]
        wait = FOREVER if lock_timeout is None else lock_timeout
        got = conn.execute(sa.text("select get_lock(:n, :t)"), {"n": name, "t": wait}).scalar()
        if got != 1:
            holder = _mysql_holder(conn, name)
            conn.rollback()
            raise LockTimeout(f"timed out after {_secs(lock_timeout)} waiting for the migration lock on "
                              f"{display}: held by {holder}")
        conn.commit()
        try:
            yield
        finally:
            _quietly(conn, "select release_lock(:n)", {"n": name})
        return
    raise UsageError(f"dbsh migrate has no lock for {dialect}")


def _quietly(conn: sa.Connection, sql: str, params: dict) -> None:
    try:
        if conn.in_transaction():
            conn.rollback()
        conn.execute(sa.text(sql), params)
        conn.commit()
    except sa_exc.DBAPIError:
        pass   # the connection closes next, and the server drops its locks with it


def _secs(timeout: float | None) -> str:
    return f"{timeout:g} s" if timeout is not None else f"{FOREVER} s"


def _pg_holder(conn: sa.Connection, key: int) -> str:
    row = conn.execute(sa.text(
        "select a.pid, a.application_name, a.usename, host(a.client_addr) as addr, "
        "extract(epoch from now() - a.backend_start)::int as age "
        "from pg_locks l join pg_stat_activity a on a.pid = l.pid "
        "where l.locktype = 'advisory' and l.granted and l.classid = :c and l.objid = :k "
        "and l.database = (select oid from pg_database where datname = current_database())"),
        {"c": PG_LOCK_CLASS, "k": key}).mappings().first()
    if row is None:
        return "another session (it has just released it)"
    app = f"{row['application_name']}, " if row["application_name"] else ""
    return f"server pid {row['pid']} ({app}user {row['usename']} from {row['addr'] or 'local socket'}, " \
           f"connected {row['age']} s ago)"


def _mysql_holder(conn: sa.Connection, name: str) -> str:
    holder = conn.execute(sa.text("select is_used_lock(:n)"), {"n": name}).scalar()
    if holder is None:
        return "another session (it has just released it)"
    row = conn.execute(sa.text("select user, host, time from information_schema.processlist where id = :i"),
                       {"i": holder}).mappings().first()
    if row is None:
        return f"connection {holder}"
    return f"connection {holder} (user {row['user']} from {row['host']}, busy {row['time']} s)"


@contextmanager
def locked_connection(url: str, *, lock_timeout: float | None = None, display: str | None = None,
                      password: str | None = None, connect_timeout: float | None = None) -> Iterator[sa.Connection]:
    """A connection holding the migration lock; for dbsh migrate and for env.py under plain alembic."""
    display = display or redact(url, password)
    engine = engine_for(url, lock_timeout=lock_timeout, connect_timeout=connect_timeout)
    try:
        conn = connect(engine, display, password)
        try:
            with migration_lock(conn, lock_timeout=lock_timeout, display=display):
                yield conn
        finally:
            conn.close()
    finally:
        engine.dispose()


def database_url(url: str | None = None, profile: str | None = None) -> str:
    """The SQLAlchemy URL for env.py under plain alembic: -x url=..., -x conn=PROFILE, DBSH_URL, or dbsh's default."""
    from dbsh import target

    return sqlalchemy_url(target.resolve(url, profile).url)


# -- the commands ----------------------------------------------------------------------------
class SqlMigrations:
    """`dbsh migrate` verbs for a SQL target: each one is alembic.command with the real Config."""

    def __init__(self, target, directory: str | None, report: Report, *, lock_timeout: float | None = None):
        self.target = target
        self.report = report
        self.lock_timeout = lock_timeout
        self.cfg = make_config(directory)
        self.display = target.display()

    # connections -------------------------------------------------------------------------
    @contextmanager
    def _errors(self, doing: str, *, changes: bool = False) -> Iterator[None]:
        """Errors as one line; for commands that change the database, say where it stands now."""
        try:
            yield
        except DbshError:
            raise
        except (CommandError, RevisionError) as e:
            raise UsageError(redact(one_line(str(e)), self.target.password)) from None
        except sa_exc.DBAPIError as e:
            text = redact(one_line(str(getattr(e, "orig", None) or e)), self.target.password)
            if getattr(e, "connection_invalidated", False):
                raise ConnectError(f"lost the connection to {self.display}: {text}") from None
            where = f" (the database is at {self._where_now()})" if changes else ""
            raise QueryError(f"{doing} failed: {text}{where}") from None
        except Exception as e:   # an error in a revision's Python code
            if not changes:
                raise
            text = redact(one_line(f"{type(e).__name__}: {e}"), self.target.password)
            raise QueryError(f"{doing} failed: {text} (the database is at {self._where_now()})") from None

    @contextmanager
    def _plain_connection(self) -> Iterator[sa.Connection]:
        engine = engine_for(self.target.url, lock_timeout=self.lock_timeout,
                            connect_timeout=self.target.options.get("connect_timeout"))
        if engine.dialect.name == "sqlite":
            engine.dispose()
            engine = sa.create_engine(sqlalchemy_url(self.target.url), poolclass=sa.pool.NullPool)
        try:
            conn = connect(engine, self.display, self.target.password)
            try:
                yield conn
            finally:
                conn.close()
        finally:
            engine.dispose()

    def _run_locked(self, fn, *args, **kwargs) -> list[dict]:
        """Run an alembic command on a locked connection; returns the steps it applied."""
        from dbsh import context

        context.require_writable(self.target, f"migrate {fn.__name__}")
        steps: list[dict] = []

        def on_apply(*, ctx, step, heads, run_args):
            steps.append({
                "action": "stamp" if step.is_stamp else ("upgrade" if step.is_upgrade else "downgrade"),
                "revision": ", ".join(step.up_revision_ids) or "base",
                "from": ", ".join(step.source_revision_ids) or "base",
                "to": ", ".join(step.destination_revision_ids) or "base",
                "message": (step.up_revision.doc if step.up_revision is not None else "") or "",
            })

        check_env(self.cfg)
        with locked_connection(self.target.url, lock_timeout=self.lock_timeout, display=self.display,
                               password=self.target.password,
                               connect_timeout=self.target.options.get("connect_timeout")) as conn:
            self.cfg.attributes["connection"] = conn
            self.cfg.attributes["on_version_apply"] = on_apply
            try:
                fn(self.cfg, *args, **kwargs)
            finally:
                self.cfg.attributes.pop("connection", None)
        return steps

    def _where_now(self) -> str:
        """After a failure: the revision the database is really at (what committed, what rolled back)."""
        try:
            return ", ".join(self._applied_heads()) or "base"
        except DbshError:
            return "unknown"

    def _offline(self, fn, *args, **kwargs) -> None:
        check_env(self.cfg)
        self.cfg.attributes["url"] = sqlalchemy_url(self.target.url)
        fn(self.cfg, *args, sql=True, **kwargs)

    # verbs -------------------------------------------------------------------------------
    def upgrade(self, revision: str = "heads", *, sql: bool = False, dry_run: bool = False, **_) -> None:
        if dry_run:
            return self.plan(revision)
        with self._errors("upgrade", changes=True):
            if sql:
                return self._offline(command.upgrade, revision)
            steps = self._run_locked(command.upgrade, revision)
        self._report_steps(steps, "already at " + revision)

    def downgrade(self, revision: str, *, sql: bool = False, dry_run: bool = False, **_) -> None:
        with self._errors("downgrade", changes=True):
            if sql:
                return self._offline(command.downgrade, revision)
            if dry_run:
                raise UsageError("--dry-run is for upgrade; use downgrade --sql to see the SQL")
            steps = self._run_locked(command.downgrade, revision)
        self._report_steps(steps, "nothing to downgrade")

    def stamp(self, revision: str, *, sql: bool = False, purge: bool = False) -> None:
        with self._errors("stamp", changes=True):
            if sql:
                return self._offline(command.stamp, revision, purge=purge)
            steps = self._run_locked(command.stamp, revision, purge=purge)
        self._report_steps(steps, f"already stamped {revision}")

    def revision(self, message: str | None, *, autogenerate: bool = False, metadata: str | None = None,
                 rev_id: str | None = None) -> None:
        with self._errors("revision"):
            if autogenerate:
                check_env(self.cfg)
                if metadata:
                    self.cfg.attributes["target_metadata"] = load_object(metadata)
                with self._plain_connection() as conn:
                    self.cfg.attributes["connection"] = conn
                    scripts = command.revision(self.cfg, message=message, autogenerate=True, rev_id=rev_id)
                    self.cfg.attributes.pop("connection", None)
            else:
                scripts = command.revision(self.cfg, message=message, rev_id=rev_id)
        for script in scripts if isinstance(scripts, list) else [scripts]:
            if script is None:
                continue
            self.report.rows([{"action": "created", "revision": script.revision,
                               "down_revision": _ids(script.down_revision), "message": script.doc,
                               "path": script.path}],
                             lambda r: f"created revision {r['revision']} ({r['message']}): {r['path']}")

    def _applied_heads(self) -> tuple[str, ...]:
        with self._errors("reading the version table"), self._plain_connection() as conn:
            return MigrationContext.configure(conn).get_current_heads()

    def _states(self) -> list[dict]:
        """Every revision, oldest first, applied or pending."""
        script = script_directory(self.cfg)
        current = self._applied_heads()
        known = {rev.revision for rev in script.walk_revisions()}
        applied: set[str] = set()
        mine = tuple(c for c in current if c in known)
        for rev in script.revision_map.iterate_revisions(mine, "base") if mine else ():
            applied.add(rev.revision)
        heads = set(script.get_heads())
        rows = [{"revision": c, "down_revision": None, "message": "(not in the migrations directory)",
                 "state": "applied", "current": True, "head": False} for c in current if c not in known]
        for rev in reversed(list(script.walk_revisions())):
            rows.append({"revision": rev.revision, "down_revision": _ids(rev.down_revision), "message": rev.doc,
                         "state": "applied" if rev.revision in applied else "pending",
                         "current": rev.revision in current, "head": rev.revision in heads})
        return rows

    def current(self) -> None:
        script = script_directory(self.cfg)
        current = self._applied_heads()
        heads = set(script.get_heads())
        rows = []
        for rev_id in current:
            try:
                rev = script.get_revision(rev_id)
            except CommandError:
                rev = None
            rows.append({"revision": rev_id, "message": rev.doc if rev else "(not in the migrations directory)",
                         "head": rev_id in heads})
        self.report.rows(rows, lambda r: f"{r['revision']}{' (head)' if r['head'] else ''}: {r['message']}",
                         empty="no revision applied (base)")

    def heads(self) -> None:
        script = script_directory(self.cfg)
        rows = [{"revision": rev.revision, "message": rev.doc}
                for rev in (script.get_revision(h) for h in script.get_heads())]
        self.report.rows(rows, lambda r: f"{r['revision']} (head): {r['message']}", empty="no revisions yet")

    def history(self) -> None:
        script = script_directory(self.cfg)
        rows = [{"revision": rev.revision, "down_revision": _ids(rev.down_revision), "message": rev.doc,
                 "head": rev.is_head} for rev in script.walk_revisions()]
        self.report.rows(rows, lambda r: f"{r['down_revision'] or '<base>'} -> {r['revision']}"
                         f"{' (head)' if r['head'] else ''}, {r['message']}", empty="no revisions yet")

    def status(self) -> None:
        with self._errors("status"):
            states = self._states()
        self.report.rows(states, lambda r: f"{r['state']:<8} {r['revision']}  {r['message']}",
                         empty="no revisions yet")

    def plan(self, revision: str = "heads") -> None:
        script = script_directory(self.cfg)
        with self._errors("plan"):
            current = self._applied_heads()
            missing = [c for c in current if c not in {rev.revision for rev in script.walk_revisions()}]
            if missing:
                raise UsageError(f"the database is at {', '.join(missing)}, which is not in the migrations "
                                 "directory")
            steps = list(reversed(list(script.iterate_revisions(revision, current or "base"))))
        rows = [{"action": "upgrade", "revision": rev.revision, "message": rev.doc} for rev in steps
                if rev.revision not in current]
        self.report.rows(rows, lambda r: f"would upgrade {r['revision']}: {r['message']}",
                         empty="nothing to do: already at " + revision)

    def resolve(self, revision: str, **_) -> None:
        raise UsageError("resolve is for NoSQL targets; SQL revisions run in transactions (use stamp to move "
                         "the version table)")

    def _report_steps(self, steps: list[dict], nothing: str) -> None:
        self.report.rows(steps, lambda r: f"{r['action']} {r['from']} -> {r['to']}: {r['message']}".rstrip(": "),
                         empty=nothing)


def _ids(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        return ", ".join(value)
    return value


def load_object(spec: str):
    """``package.module:attr`` (e.g. ``myapp.models:Base.metadata``), importable from the current directory."""
    import importlib

    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UsageError(f"bad --metadata {spec!r}", hint="use package.module:attribute, e.g. app.models:metadata")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj = importlib.import_module(module_name)
    except ImportError as e:
        raise UsageError(f"cannot import {module_name} for --metadata: {one_line(str(e))}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"{module_name} has no {attr} for --metadata") from None
    return obj
