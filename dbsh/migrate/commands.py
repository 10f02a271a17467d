"""The `dbsh migrate` commands (their arguments and options are in dbsh.verbs): each takes the parsed
Call, picks the engine (Alembic for SQL targets, the locked NoSQL runner for the others) and runs.
``init`` writes a new migrations project from dbsh/migrate/templates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

TEMPLATES = Path(__file__).with_name("templates")


def migrations(call, *, lock_timeout=None, lock_lease=None):
    """The migration engine for the target: Alembic for SQL, the NoSQL runner for the rest."""
    from dbsh import context, drivers
    from dbsh.migrate.report import Report
    from dbsh.output import Renderer

    settings = call.settings
    target = context.resolve(settings)
    report = Report(Renderer(settings.fmt))
    directory = call.values.get("directory")
    record = drivers.for_scheme(target.scheme)
    if record.migrate is None:
        from dbsh.errors import Unsupported

        why = record.cannot.get("migrate")
        raise Unsupported(f"dbsh migrate cannot run on {record.name}" + (f": {why}" if why else ""))
    if record.migrate == "alembic":
        from dbsh.migrate.sql import SqlMigrations

        return SqlMigrations(target, directory, report, lock_timeout=lock_timeout)
    from dbsh.migrate.runner import NoSqlMigrations

    return NoSqlMigrations(target, directory, report, lock_timeout=lock_timeout, lock_lease=lock_lease)


def _locked(call):
    v = call.values
    return migrations(call, lock_timeout=v.get("lock_timeout"), lock_lease=v.get("lock_lease"))


def upgrade(call) -> None:
    v = call.values
    _locked(call).upgrade(v["revision"], sql=v["sql"], dry_run=v["dry_run"], force=v["force"])


def downgrade(call) -> None:
    v = call.values
    _locked(call).downgrade(v["revision"], sql=v["sql"], force=v["force"])


def stamp(call) -> None:
    v = call.values
    _locked(call).stamp(v["revision"], sql=v["sql"], purge=v["purge"])


def revision(call) -> None:
    v = call.values
    migrations(call).revision(v["message"], autogenerate=v["autogenerate"], metadata=v["metadata"],
                              rev_id=v["rev_id"])


def current(call) -> None:
    migrations(call).current()


def heads(call) -> None:
    migrations(call).heads()


def history(call) -> None:
    migrations(call).history()


def status(call) -> None:
    migrations(call).status()


def plan(call) -> None:
    migrations(call).plan(call.values["revision"])


def resolve(call) -> None:
    _locked(call).resolve(call.values["revision"], applied=call.values["applied"])


# -- migrate init ----------------------------------------------------------------------------------
def init(call) -> None:
    """Write a migrations project for the target's kind: SQL gets alembic.ini and an Alembic directory
    whose env.py runs on dbsh's connection; NoSQL gets migrations/nosql/<backend>/ with a sample
    revision. Files already there are kept (``--force`` replaces a SQL env.py)."""
    import sys

    from dbsh import context, drivers
    from dbsh.migrate.report import Report
    from dbsh.output import Renderer

    settings = call.settings
    target = context.resolve(settings)
    backend = drivers.for_scheme(target.scheme)
    directory = call.values.get("directory")
    problem = None
    if backend.migrate == "alembic":
        rows, problem = _init_sql(Path(directory) if directory else None, force=call.values.get("force", False))
        where = f" --dir {directory}" if directory else ""
    elif backend.migrate:
        if call.values.get("force"):
            from dbsh.errors import UsageError

            raise UsageError("--force is for SQL targets (it replaces env.py)")
        rows = _init_nosql(Path(directory) if directory else Path("migrations", "nosql", backend.key), backend)
        where = f" --dir {directory}" if directory else ""
    else:
        from dbsh.errors import Unsupported

        raise Unsupported(f"dbsh migrate does not support {backend.name}")
    Report(Renderer(settings.fmt)).rows(rows, lambda r: f"{r['action']} {r['path']}")
    if problem is not None:
        raise problem
    print(f'dbsh: next: dbsh migrate{where} revision -m "what it does", then dbsh migrate{where} upgrade head',
          file=sys.stderr)


def _write(path: Path, text: str, rows: list[dict], *, replace: bool = False) -> None:
    if path.exists() and not replace:
        rows.append({"action": "kept", "path": str(path)})
        return
    action = "replaced" if path.exists() else "created"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    rows.append({"action": action, "path": str(path)})


def _init_sql(directory: Path | None, *, force: bool):
    """./alembic.ini + ./migrations/ (or, with --dir PATH, the Alembic directory PATH with an
    alembic.ini inside it for plain `alembic -c PATH/alembic.ini`). Returns the files written or
    kept, and the error to raise once they are reported (an env.py kept that ignores dbsh)."""
    from dbsh.errors import UsageError
    from dbsh.migrate.sql import uses_dbsh_connection

    rows: list[dict] = []
    ini = (TEMPLATES / "alembic.ini").read_text(encoding="utf-8")
    if directory is None:
        scripts, ini_path = Path("migrations"), Path("alembic.ini")
    else:
        scripts, ini_path = directory, directory / "alembic.ini"
        ini = ini.replace("script_location = %(here)s/migrations", "script_location = %(here)s")
    if scripts.exists() and not scripts.is_dir():
        raise UsageError(f"{scripts} exists and is not a directory")
    env = scripts / "env.py"
    _write(ini_path, ini, rows)
    _write(env, (TEMPLATES / "env.py").read_text(encoding="utf-8"), rows, replace=force)
    _write(scripts / "script.py.mako", (TEMPLATES / "script.py.mako").read_text(encoding="utf-8"), rows)
    versions = scripts / "versions"
    rows.append({"action": "kept" if versions.is_dir() else "created", "path": str(versions) + "/"})
    versions.mkdir(parents=True, exist_ok=True)
    if not uses_dbsh_connection(env):
        return rows, UsageError(f"kept {env}, which ignores the connection dbsh passes (Alembic's stock env.py "
                                "connects to sqlalchemy.url in alembic.ini)",
                                hint=f"dbsh migrate init{' --dir ' + str(directory) if directory else ''} --force "
                                "replaces it with dbsh's env.py")
    return rows, None


SAMPLE = '''"""sample: changes nothing; shows what a revision can do

Revision ID: {revision}
Revises:
Create Date: {date}
"""

# `session` is the dbsh session of the target ({name}); the uniform verbs take plain dicts:
#   session.insert("users", [{{"name": "Ann"}}])
#   session.update("users", {{"age": {{"$exists": False}}}}, {{"$set": {{"age": 0}}}})
#   session.find / count / delete, session.execute("native text"), session.client (the native client)
# A NoSQL revision has no transaction: write it so that running it again after an interruption is harmless.
# `dbsh migrate revision -m "what it does"` writes the next revision after this one.

revision = {revision!r}
down_revision = None


def upgrade(session):
    # e.g. {example}
    pass


def downgrade(session):
    pass
'''

EXAMPLES = {
    "mongo": 'session.client["users"].create_index("email", unique=True)',
    "redis": 'session.execute("SET app:schema 2")',
    "couchdb": 'session.execute(\'POST /users/_index {"index": {"fields": ["email"]}}\')',
    "neo4j": 'session.execute("CREATE CONSTRAINT user_email IF NOT EXISTS FOR (u:User) REQUIRE u.email IS UNIQUE")',
    "cassandra": 'session.execute("CREATE TABLE IF NOT EXISTS users (id uuid PRIMARY KEY, email text)")',
}


def _init_nosql(directory: Path, backend) -> list[dict]:
    """The revisions directory, with a sample revision when it has none yet."""
    from alembic.util import rev_id

    from dbsh.errors import UsageError

    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} exists and is not a directory")
    rows: list[dict] = []
    rows.append({"action": "kept" if directory.is_dir() else "created", "path": str(directory) + "/"})
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.glob("*.py")):
        return rows   # revisions there already: nothing to add
    revision = rev_id()
    text = SAMPLE.format(revision=revision, name=backend.name,
                         date=dt.datetime.now().isoformat(sep=" ", timespec="seconds"),
                         example=EXAMPLES.get(backend.key, 'session.execute("native text")'))
    _write(directory / f"{revision}_sample.py", text, rows)
    return rows
