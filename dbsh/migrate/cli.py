"""The `dbsh migrate` command group: Typer parses, ``dbsh.migrate.engine_for`` runs, the renderer prints."""


from typing import Annotated, Optional

import typer

HELP = "Schema and data migrations: Alembic for SQL, locked versioned revisions for NoSQL."

SQL_SCHEMES = {"sqlite", "postgresql", "postgres", "mysql", "mariadb"}


def migrations(o, directory, *, lock_timeout=None, lock_lease=None):
    """The migration engine for the target: Alembic for SQL, the NoSQL runner for the rest."""
    from dbsh.cli import open_target, renderer
    from dbsh.migrate.report import Report

    target = open_target(o)
    report = Report(renderer(o))
    base = target.scheme.split("+", 1)[0]
    if base in SQL_SCHEMES:
        from dbsh.migrate.sql import SqlMigrations

        return SqlMigrations(target, directory, report, lock_timeout=lock_timeout)
    from dbsh.migrate.runner import NoSqlMigrations

    return NoSqlMigrations(target, directory, report, lock_timeout=lock_timeout, lock_lease=lock_lease)


def build() -> typer.Typer:
    from dbsh.cli import Options, running

    app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                      context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})

    UrlOpt = Annotated[Optional[str], typer.Option("--url", "-u", help="Database URL (or DBSH_URL).",
                                                   show_default=False)]
    ConnOpt = Annotated[Optional[str], typer.Option("--conn", "-c", help="Saved connection profile.",
                                                    show_default=False)]
    FormatOpt = Annotated[Optional[str], typer.Option("--format", "-f", help="table, json, jsonl, csv or tsv.",
                                                      show_default=False)]
    DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks.")]
    AskOpt = Annotated[bool, typer.Option("--password", "-W", help="Ask for the password.")]
    DirOpt = Annotated[Optional[str], typer.Option("--dir", "-d", help="Migrations directory (SQL: an Alembic "
                                                   "directory with env.py; NoSQL: the revision files). Default: "
                                                   "./alembic.ini or ./migrations; migrations/nosql/BACKEND.",
                                                   show_default=False)]
    TimeoutOpt = Annotated[Optional[float], typer.Option("--lock-timeout", min=0, help="Give up after SECONDS "
                                                         "waiting for the migration lock (default: wait).",
                                                         show_default=False)]
    LeaseOpt = Annotated[Optional[float], typer.Option("--lock-lease", min=1, help="NoSQL: lock lease in SECONDS, "
                                                       "renewed while running (default 30).", show_default=False)]
    SqlOpt = Annotated[bool, typer.Option("--sql", help="SQL: print the SQL instead of running it (offline).")]
    ForceOpt = Annotated[bool, typer.Option("--force", help="NoSQL: run even though a revision failed earlier.")]
    DryOpt = Annotated[bool, typer.Option("--dry-run", help="Show what would run, without running it.")]

    def opts(ctx: typer.Context, **overrides):
        base = ctx.obj if isinstance(ctx.obj, Options) else Options()
        merged = base.merge(**overrides)
        from dbsh.output import check_format

        with running(merged):
            check_format(merged.fmt)
        return merged

    def command(name: str, text: str, example: str):
        # ignore_unknown_options: a revision like -1 is an argument, not an option
        return app.command(name, help=text, epilog=f"Example: {example}",
                           context_settings={"ignore_unknown_options": True})

    @command("upgrade", "Apply revisions up to REVISION (head, +N, an id), under the migration lock.",
             "dbsh -u postgresql://me@db/shop migrate upgrade head")
    def upgrade(ctx: typer.Context,
                revision: Annotated[str, typer.Argument(metavar="REVISION", help="head, heads, +N or an id.")]
                = "heads",
                sql: SqlOpt = False, dry_run: DryOpt = False, force: ForceOpt = False, directory: DirOpt = None,
                lock_timeout: TimeoutOpt = None, lock_lease: LeaseOpt = None,
                url: UrlOpt = None, conn: ConnOpt = None, fmt: FormatOpt = None, debug: DebugOpt = False,
                ask_password: AskOpt = False):
        o = opts(ctx, url=url, conn=conn, fmt=fmt, debug=debug, ask_password=ask_password)
        with running(o):
            m = migrations(o, directory, lock_timeout=lock_timeout, lock_lease=lock_lease)
            m.upgrade(revision, sql=sql, dry_run=dry_run, force=force)

    @command("downgrade", "Revert revisions down to REVISION (-N, an id, base).",
             "dbsh migrate downgrade -1")
    def downgrade(ctx: typer.Context,
                  revision: Annotated[str, typer.Argument(metavar="REVISION", help="-N, an id, or base.")],
                  sql: SqlOpt = False, force: ForceOpt = False, directory: DirOpt = None,
                  lock_timeout: TimeoutOpt = None, lock_lease: LeaseOpt = None,
                  url: UrlOpt = None, conn: ConnOpt = None, fmt: FormatOpt = None, debug: DebugOpt = False,
                  ask_password: AskOpt = False):
        o = opts(ctx, url=url, conn=conn, fmt=fmt, debug=debug, ask_password=ask_password)
        with running(o):
            m = migrations(o, directory, lock_timeout=lock_timeout, lock_lease=lock_lease)
            m.downgrade(revision, sql=sql, force=force)

    @command("stamp", "Record REVISION as applied without running anything.",
             "dbsh migrate stamp head")
    def stamp(ctx: typer.Context, revision: Annotated[str, typer.Argument(metavar="REVISION")],
              sql: SqlOpt = False, purge: Annotated[bool, typer.Option("--purge", help="Empty the version "
                                                                       "records first.")] = False,
              directory: DirOpt = None, lock_timeout: TimeoutOpt = None, lock_lease: LeaseOpt = None,
              url: UrlOpt = None, conn: ConnOpt = None, fmt: FormatOpt = None, debug: DebugOpt = False,
              ask_password: AskOpt = False):
        o = opts(ctx, url=url, conn=conn, fmt=fmt, debug=debug, ask_password=ask_password)
        with running(o):
            migrations(o, directory, lock_timeout=lock_timeout, lock_lease=lock_lease).stamp(
                revision, sql=sql, purge=purge)

    @command("revision", "Create a revision file (SQL: --autogenerate compares with your models).",
             'dbsh migrate revision -m "create users table" --autogenerate --metadata app.models:metadata')
    def revision(ctx: typer.Context,
                 message: Annotated[Optional[str], typer.Option("--message", "-m", help="What it does.")] = None,
                 autogenerate: Annotated[bool, typer.Option("--autogenerate", help="SQL: diff the database "
                                                            "against the models.")] = False,
                 metadata: Annotated[Optional[str], typer.Option("--metadata", help="SQL: MODULE:ATTR of the "
                                                                 "models' MetaData for --autogenerate.")] = None,
                 rev_id: Annotated[Optional[str], typer.Option("--rev-id", help="Use this id instead of a "
                                                               "generated one.")] = None,
                 directory: DirOpt = None,
                 url: UrlOpt = None, conn: ConnOpt = None, fmt: FormatOpt = None, debug: DebugOpt = False,
                 ask_password: AskOpt = False):
        o = opts(ctx, url=url, conn=conn, fmt=fmt, debug=debug, ask_password=ask_password)
        with running(o):
            migrations(o, directory).revision(message, autogenerate=autogenerate, metadata=metadata,
                                              rev_id=rev_id)

    def reader(name: str, text: str, example: str):
        @command(name, text, example)
        def read(ctx: typer.Context, directory: DirOpt = None,
                 url: UrlOpt = None, conn: ConnOpt = None, fmt: FormatOpt = None, debug: DebugOpt = False,
                 ask_password: AskOpt = False):
            o = opts(ctx, url=url, conn=conn, fmt=fmt, debug=debug, ask_password=ask_password)
            with running(o):
                getattr(migrations(o, directory), name)()
        return read

    reader("current", "Show the applied head revision(s).", "dbsh migrate current")
    reader("heads", "Show the newest revision(s) in the migrations directory.", "dbsh migrate heads")
    reader("history", "List every revision, newest first.", "dbsh migrate history")
    reader("status", "Every revision with its state: applied, pending (NoSQL: failed, checksum changed).",
           "dbsh migrate status --format json")

    @command("plan", "What upgrade would run, without running it.", "dbsh migrate plan")
    def plan(ctx: typer.Context,
             revision: Annotated[str, typer.Argument(metavar="REVISION")] = "heads",
             directory: DirOpt = None,
             url: UrlOpt = None, conn: ConnOpt = None, fmt: FormatOpt = None, debug: DebugOpt = False,
             ask_password: AskOpt = False):
        o = opts(ctx, url=url, conn=conn, fmt=fmt, debug=debug, ask_password=ask_password)
        with running(o):
            migrations(o, directory).plan(revision)

    @command("resolve", "NoSQL: clear a failed revision so the next upgrade retries it (--applied: "
             "record it as done by hand).", "dbsh -u mongodb://localhost/shop migrate resolve 3f2a9c")
    def resolve(ctx: typer.Context, revision: Annotated[str, typer.Argument(metavar="REVISION")],
                applied: Annotated[bool, typer.Option("--applied", help="Record it as applied instead.")] = False,
                directory: DirOpt = None, lock_timeout: TimeoutOpt = None, lock_lease: LeaseOpt = None,
                url: UrlOpt = None, conn: ConnOpt = None, fmt: FormatOpt = None, debug: DebugOpt = False,
                ask_password: AskOpt = False):
        o = opts(ctx, url=url, conn=conn, fmt=fmt, debug=debug, ask_password=ask_password)
        with running(o):
            migrations(o, directory, lock_timeout=lock_timeout, lock_lease=lock_lease).resolve(
                revision, applied=applied)

    return app
