"""The `dbsh migrate` commands (their arguments and options are in dbsh.verbs): each takes the parsed
Call, picks the engine (Alembic for SQL targets, the locked NoSQL runner for the others) and runs."""

from __future__ import annotations


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
