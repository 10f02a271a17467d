"""The ``dbsh`` command line: Typer parses, ``dbsh.commands`` runs, ``dbsh.output`` renders.

Start-up matters: ``dbsh --version`` and ``dbsh --help`` import no database library, and the
bare top-level help is printed without even importing Typer.
"""


import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Optional

from dbsh import DEFAULT_BATCH

HELP = "One shell for SQL, MongoDB, Redis, Cassandra, Neo4j and CouchDB."

# (name, one-line help, example): the single table behind `dbsh --help` and each command's help.
COMMANDS: list[tuple[str, str, str]] = [
    ("connect", "Check a connection: server version and round-trip time; --save it as a profile.",
     "dbsh connect postgresql://me@db.internal/shop --save shop"),
    ("insert", "Insert documents from arguments, --file F or - (jsonl, json, csv), in batches.",
     """dbsh insert people '{"name": "Bob", "count": 1}' --create"""),
    ("find", "Find documents matching a MongoDB-style filter; streamed.",
     """dbsh find people '{"count": {"$gt": 5}}' --sort -count --limit 10"""),
    ("update", "Update documents matching a filter with $set, $unset, $inc.",
     """dbsh update people '{"name": "Jill"}' '{"$set": {"count": 20}}'"""),
    ("delete", "Delete documents matching a filter (--all for an empty filter).",
     """dbsh delete people '{"name": "Bob"}'"""),
    ("count", "Count documents matching a filter.",
     """dbsh count people '{"count": {"$gte": 1}}'"""),
    ("query", "Run the backend's native language: SQL, CQL, Cypher, Redis, MongoDB, CouchDB.",
     "dbsh query 'select name from people where name like :n' -p n=J%"),
    ("collections", "List collections: tables, labels, key prefixes, databases.",
     "dbsh -u mongodb://localhost/shop collections"),
    ("describe", "Describe a collection: columns or fields, types, indexes.",
     "dbsh describe people"),
    ("explain", "Show how the backend would run a find.",
     """dbsh explain people '{"name": "Bob"}'"""),
    ("copy", "Copy a collection between any two backends: URL/COLLECTION to URL/COLLECTION, in batches.",
     "dbsh copy mongodb://localhost/shop/products postgresql://me@db/shop/products --create"),
    ("migrate", "Migrations: Alembic for SQL; locked, versioned revisions for NoSQL (upgrade, status...).",
     "dbsh -u postgresql://me@db.internal/shop migrate upgrade head"),
    ("bench", "YCSB workloads A-F (or a workload file) with HDR latency per operation; --compare targets.",
     "dbsh -u redis://localhost bench --workload a --records 100000 --operations 200000 --threads 8"),
]

EPILOG = """Targets: --url URL, -c PROFILE, or DBSH_URL; default: an embedded SQLite file.
URLs: sqlite:///file.db  postgresql://user@host/db  mysql://user@host/db  mongodb://host/db
      redis://host:6379/0  cassandra://host/keyspace  neo4j://host  couchdb://host:5984
Passwords: put them in DBSH_PASSWORD or use -W to be asked, rather than in the URL.
Output: a table on a terminal, jsonl when piped; --format table|json|jsonl|csv|tsv.
Exit codes: 0 ok, 1 query error, 2 bad input, 3 cannot connect, 130 interrupted."""


def _fast_path(argv: list[str]) -> bool:
    """Answer `dbsh --version` and `dbsh --help` without importing Typer (start-up time)."""
    if argv in (["--version"], ["-V"]):
        from dbsh import __version__

        print(f"dbsh {__version__}")
        return True
    if argv in (["--help"], ["-h"]):
        width = max(len(name) for name, _, _ in COMMANDS)
        lines = [HELP, "", "Usage: dbsh [OPTIONS] COMMAND [ARGS]...", "       dbsh [OPTIONS]          (open the shell)", "",
                 "Commands:"]
        lines += [f"  {name:<{width}}  {text}" for name, text, _ in COMMANDS]
        lines += ["", "Examples:"] + [f"  {example}" for _, _, example in COMMANDS[1:6]]
        lines += ["", "Options (before or after the command):",
                  "  -u, --url URL        database URL",
                  "  -c, --conn NAME      saved connection profile",
                  "  -f, --format FMT     table, json, jsonl, csv, tsv",
                  "  -W, --password       ask for the password",
                  "      --debug          show tracebacks",
                  "  -V, --version        print the version",
                  "  -h, --help           this help; dbsh COMMAND --help for one command", "",
                  EPILOG]
        print("\n".join(lines))
        return True
    return False


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if _fast_path(args):
        return
    app = build_app()
    app(args=args, prog_name="dbsh")


@dataclass
class Options:
    url: Optional[str] = None
    conn: Optional[str] = None
    fmt: Optional[str] = None
    debug: bool = False
    ask_password: bool = False
    consistency: Optional[str] = None
    yes: bool = False

    def merge(self, **overrides) -> "Options":
        values = dict(self.__dict__)
        values.update({k: v for k, v in overrides.items() if v not in (None, False)})
        return Options(**values)


def fail(error: BaseException, debug: bool) -> int:
    """Print one line for an error and return its exit code (traceback only with --debug)."""
    from dbsh.errors import DbshError, EXIT_INTERRUPTED, EXIT_RUNTIME, redact

    if debug:
        import traceback

        traceback.print_exception(error, file=sys.stderr)
    if isinstance(error, KeyboardInterrupt):
        print("dbsh: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if isinstance(error, DbshError):
        print(f"dbsh: error: {redact(str(error))}", file=sys.stderr)
        return error.exit_code
    text = redact(str(error).strip().splitlines()[0] if str(error).strip() else "")
    print(f"dbsh: error: {type(error).__name__}: {text}" + ("" if debug else " (--debug shows the traceback)"),
          file=sys.stderr)
    return EXIT_RUNTIME


@contextmanager
def running(opts: Options):
    """Run a command body: errors become one line and an exit code; stdout closing early is fine."""
    import typer

    try:
        yield
    except BrokenPipeError:
        # the reader (e.g. `| head`) went away: stop quietly, like any Unix filter
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(141)
    except (typer.Exit, typer.Abort):
        raise
    except BaseException as error:  # noqa: BLE001 - the one place errors are rendered
        if isinstance(error, SystemExit):
            raise
        raise typer.Exit(fail(error, opts.debug))


def open_target(opts: Options):
    from dbsh import target

    password = None
    if opts.ask_password:
        import getpass

        if not sys.stdin.isatty():
            from dbsh.errors import UsageError

            raise UsageError("-W asks for a password, but stdin is not a terminal; set DBSH_PASSWORD")
        password = getpass.getpass("Password: ")
    return target.resolve(opts.url, opts.conn, password=password)


@contextmanager
def session_for(opts: Options, **backend_options):
    """Open the target's session; backend-specific flags (--ttl, --allow-filtering...) go to the driver."""
    from dbsh import drivers

    session = drivers.connect(open_target(opts))
    try:
        session.options["yes"] = opts.yes   # every backend: skip confirmations
        if session.target.readonly:
            session.make_readonly(True)
        session.set_options(consistency=opts.consistency, **backend_options)
        yield session
    finally:
        session.close()


def run_verb(opts: Options, name: str, *args, backend: dict | None = None, **kwargs) -> None:
    """Run one of dbsh.commands on the target's session: the body of every verb command."""
    with running(opts):
        from dbsh import commands

        with session_for(opts, **(backend or {})) as session:
            getattr(commands, name)(session, renderer(opts), *args, **kwargs)


def renderer(opts: Options):
    from dbsh.output import Renderer

    return Renderer(opts.fmt)


def build_app():
    import typer

    from dbsh import __version__

    app = typer.Typer(help=HELP, epilog=EPILOG, add_completion=False, no_args_is_help=False,
                      rich_markup_mode=None, pretty_exceptions_enable=False,
                      context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})

    UrlOpt = Annotated[Optional[str], typer.Option("--url", "-u", help="Database URL (or DBSH_URL).",
                                                   show_default=False)]
    ConnOpt = Annotated[Optional[str], typer.Option("--conn", "-c", help="Saved connection profile.",
                                                    show_default=False)]
    FormatOpt = Annotated[Optional[str], typer.Option("--format", "-f",
                                                      help="table, json, jsonl, csv or tsv.", show_default=False)]
    DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks.")]
    AskOpt = Annotated[bool, typer.Option("--password", "-W", help="Ask for the password.")]
    SchemaOpt = Annotated[Optional[str], typer.Option("--schema", metavar="COL:TYPE,...", help="csv/tsv column types instead of "
                                                      "inference, e.g. zip:text,count:int.", show_default=False)]
    ErrorsOpt = Annotated[Optional[str], typer.Option("--errors", metavar="FILE", help="Write bad rows (with line and reason) "
                                                      "to FILE and go on.", show_default=False)]
    MaxErrorsOpt = Annotated[Optional[int], typer.Option("--max-errors", min=0, metavar="N", help="Stop after N bad rows "
                                                         "(default: no limit with --errors).", show_default=False)]
    ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from its "
                                             "checkpoint.")]

    def version_callback(value: bool):
        if value:
            print(f"dbsh {__version__}")
            raise typer.Exit()

    @app.callback(invoke_without_command=True)
    def root(ctx: typer.Context, url: UrlOpt = None, conn: ConnOpt = None, fmt: FormatOpt = None,
             debug: DebugOpt = False, ask_password: AskOpt = False,
             consistency: Annotated[Optional[str], typer.Option("--consistency", help="Cassandra consistency "
                                                                "level, e.g. LOCAL_QUORUM.")] = None,
             yes: Annotated[bool, typer.Option("--yes", "-y", help="Answer yes to confirmations "
                                               "(scripts).")] = False,
             version: Annotated[bool, typer.Option("--version", "-V", callback=version_callback,
                                                   is_eager=True, help="Print the version.")] = False):
        ctx.obj = Options(url, conn, fmt, debug, ask_password, consistency, yes)
        if ctx.invoked_subcommand is None:
            # `dbsh` alone opens the shell; with stdin not a terminal it runs the statements on stdin
            o = ctx.obj
            with running(o):
                from dbsh import repl
                from dbsh.output import check_format

                check_format(o.fmt)
                code = repl.start(open_target(o), fmt=o.fmt, yes=o.yes,
                                  backend_options={"consistency": o.consistency})
            raise typer.Exit(code)

    def opts(ctx: typer.Context, **overrides) -> Options:
        base = ctx.obj if isinstance(ctx.obj, Options) else Options()
        merged = base.merge(**overrides)
        from dbsh.output import check_format

        with running(merged):
            check_format(merged.fmt)
        return merged

    def command(name: str):
        text, example = next((t, e) for n, t, e in COMMANDS if n == name)
        return app.command(name, help=text, epilog=f"Example: {example}")

    @command("connect")
    def connect_cmd(ctx: typer.Context,
                    target_url: Annotated[Optional[str], typer.Argument(metavar="URL|NAME",
                                                                        help="URL or saved profile.")] = None,
                    save: Annotated[Optional[str], typer.Option("--save", help="Save as a named profile "
                                                                "(without the password).")] = None,
                    readonly: Annotated[bool, typer.Option("--readonly", help="Mark the saved profile read-only.")
                                        ] = False,
                    url: UrlOpt = None, conn: ConnOpt = None, fmt: FormatOpt = None, debug: DebugOpt = False,
                    ask_password: AskOpt = False):
        o = opts(ctx, url=url, conn=conn, fmt=fmt, debug=debug, ask_password=ask_password)
        if target_url:
            if "://" in target_url:
                o = o.merge(url=target_url)
                o.conn = None
            else:
                o = o.merge(conn=target_url)
                o.url = None
        with running(o):
            from dbsh import commands, config

            out = renderer(o)
            with session_for(o) as session:
                commands.connect_report(session, out)
                if save:
                    path = config.save_profile(save, session.target.without_password(),
                                               readonly=readonly or None)
                    note = " (password not saved: use DBSH_PASSWORD or -W)" if session.target.password else ""
                    print(f"saved connection {save!r} in {path}{note}", file=sys.stderr)
                elif sys.stdin.isatty() and sys.stdout.isatty():
                    from dbsh import repl   # on a terminal the report opens the shell

                    repl.start(session.target, session=session, fmt=o.fmt, yes=o.yes, interactive=True)

    @command("insert")
    def insert_cmd(ctx: typer.Context,
                   collection: Annotated[str, typer.Argument(metavar="COLLECTION", help="Table, collection, label, "
                                                                                  "prefix...")],
                   docs: Annotated[Optional[list[str]], typer.Argument(metavar="DOCUMENT", help="JSON objects, or - "
                                                                       "for stdin.",
                                                                       show_default=False)] = None,
                   file: Annotated[Optional[str], typer.Option("--file", "-F", help="Read documents from a file "
                                                               "(- for stdin).")] = None,
                   input_format: Annotated[Optional[str], typer.Option("--input-format", "-i",
                                                                       help="jsonl, json, csv or tsv "
                                                                       "(default: from the name or content).")]
                   = None,
                   batch: Annotated[int, typer.Option("--batch", help="Documents per batch/transaction.")]
                   = DEFAULT_BATCH,
                   create: Annotated[bool, typer.Option("--create", help="Create the collection (and "
                                                        "columns) if missing.")] = False,
                   ttl: Annotated[Optional[int], typer.Option("--ttl", min=1, help="Expire after SECONDS "
                                                              "(Redis, Cassandra).")] = None,
                   generate_id: Annotated[bool, typer.Option("--generate-id", help="Generate a missing id "
                                                             "(Cassandra: uuid).")] = False,
                   schema: SchemaOpt = None, errors: ErrorsOpt = None, max_errors: MaxErrorsOpt = None,
                   resume: ResumeOpt = False,
                   url: UrlOpt = None, conn: ConnOpt = None, fmt: FormatOpt = None, debug: DebugOpt = False,
                   ask_password: AskOpt = False):
        o = opts(ctx, url=url, conn=conn, fmt=fmt, debug=debug, ask_password=ask_password)
        run_verb(o, "insert", collection, docs or [], file=file,
                 input_format=input_format, batch=batch, create=create, schema=schema,
                 errors=errors, max_errors=max_errors, resume=resume,
                 backend=dict(ttl=ttl, generate_id=generate_id))

    @command("copy")
    def copy_cmd(ctx: typer.Context,
                 source: Annotated[str, typer.Argument(metavar="SRC", help="URL/COLLECTION (or PROFILE/COLLECTION) "
                                                       "to read.")],
                 destination: Annotated[str, typer.Argument(metavar="DST", help="URL/COLLECTION (or "
                                                            "PROFILE/COLLECTION) to write.")],
                 where: Annotated[Optional[str], typer.Option("--where", metavar="FILTER", help="Copy only documents matching this "
                                                              "filter (JSON).")] = None,
                 mapping: Annotated[Optional[list[str]], typer.Option("--map", metavar="OLD:NEW", help="Rename a field: old:new "
                                                                      "(old: drops it).", show_default=False)] = None,
                 flat: Annotated[bool, typer.Option("--flatten", help="Nested objects become columns a_b "
                                                    "instead of JSON.")] = False,
                 create: Annotated[bool, typer.Option("--create", help="Create the destination (schema inferred "
                                                      "from the first batch).")] = False,
                 batch: Annotated[int, typer.Option("--batch", metavar="N", help="Rows per batch/transaction.")]
                 = DEFAULT_BATCH,
                 errors: ErrorsOpt = None, max_errors: MaxErrorsOpt = None, resume: ResumeOpt = False,
                 fmt: FormatOpt = None, debug: DebugOpt = False):
        o = opts(ctx, fmt=fmt, debug=debug)
        with running(o):
            from dbsh import copy

            copy.copy_locations(renderer(o), source, destination, where=where, mapping=mapping, flat=flat,
                                create=create, batch=batch, errors=errors, max_errors=max_errors, resume=resume)

    FilterArg = Annotated[Optional[str], typer.Argument(metavar="FILTER", help="MongoDB-style filter (JSON).",
                                                        show_default=False)]
    FilteringOpt = Annotated[bool, typer.Option("--allow-filtering", help="Cassandra: allow a filter the "
                                                "primary key does not serve.")]

    @command("find")
    def find_cmd(ctx: typer.Context, collection: Annotated[str, typer.Argument(metavar="COLLECTION")], where: FilterArg = None,
                 fields: Annotated[Optional[str], typer.Option("--fields", help="Comma-separated fields.")] = None,
                 sort: Annotated[Optional[str], typer.Option("--sort", help="e.g. -price,name")] = None,
                 limit: Annotated[Optional[int], typer.Option("--limit", "-n", min=0)] = None,
                 skip: Annotated[Optional[int], typer.Option("--skip", min=0)] = None,
                 allow_filtering: FilteringOpt = False,
                 url: UrlOpt = None, conn: ConnOpt = None, fmt: FormatOpt = None, debug: DebugOpt = False,
                 ask_password: AskOpt = False):
        o = opts(ctx, url=url, conn=conn, fmt=fmt, debug=debug, ask_password=ask_password)
        run_verb(o, "find", collection, where, fields=fields, sort=sort, limit=limit, skip=skip,
                 backend=dict(allow_filtering=allow_filtering))

    @command("count")
    def count_cmd(ctx: typer.Context, collection: Annotated[str, typer.Argument(metavar="COLLECTION")], where: FilterArg = None,
                  allow_filtering: FilteringOpt = False,
                  url: UrlOpt = None, conn: ConnOpt = None, fmt: FormatOpt = None, debug: DebugOpt = False,
                  ask_password: AskOpt = False):
        o = opts(ctx, url=url, conn=conn, fmt=fmt, debug=debug, ask_password=ask_password)
        run_verb(o, "count", collection, where, backend=dict(allow_filtering=allow_filtering))

    @command("update")
    def update_cmd(ctx: typer.Context, collection: Annotated[str, typer.Argument(metavar="COLLECTION")],
                   where: Annotated[str, typer.Argument(metavar="FILTER", help="MongoDB-style filter (JSON).")],
                   change: Annotated[str, typer.Argument(metavar="UPDATE", help='e.g. {"$set": {"a": 1}}')],
                   upsert: Annotated[bool, typer.Option("--upsert", help="Insert when nothing matches.")] = False,
                   one: Annotated[bool, typer.Option("--one", help="Update at most one document.")] = False,
                   allow_filtering: FilteringOpt = False,
                   url: UrlOpt = None, conn: ConnOpt = None, fmt: FormatOpt = None, debug: DebugOpt = False,
                   ask_password: AskOpt = False):
        o = opts(ctx, url=url, conn=conn, fmt=fmt, debug=debug, ask_password=ask_password)
        run_verb(o, "update", collection, where, change, upsert=upsert, one=one,
                 backend=dict(allow_filtering=allow_filtering))

    @command("delete")
    def delete_cmd(ctx: typer.Context, collection: Annotated[str, typer.Argument(metavar="COLLECTION")], where: FilterArg = None,
                   one: Annotated[bool, typer.Option("--one", help="Delete at most one document.")] = False,
                   everything: Annotated[bool, typer.Option("--all", help="Allow an empty filter.")] = False,
                   allow_filtering: FilteringOpt = False,
                   url: UrlOpt = None, conn: ConnOpt = None, fmt: FormatOpt = None, debug: DebugOpt = False,
                   ask_password: AskOpt = False):
        o = opts(ctx, url=url, conn=conn, fmt=fmt, debug=debug, ask_password=ask_password)
        run_verb(o, "delete", collection, where, one=one, everything=everything,
                 backend=dict(allow_filtering=allow_filtering))

    @command("query")
    def query_cmd(ctx: typer.Context,
                  text: Annotated[str, typer.Argument(metavar="TEXT", help="Native statement, or - for stdin.")],
                  param: Annotated[Optional[list[str]], typer.Option("--param", "-p", help="name=value "
                                                                     "(value read as JSON if it is JSON).",
                                                                     show_default=False)] = None,
                  trace: Annotated[bool, typer.Option("--trace", help="Cassandra: show the query trace.")] = False,
                  count: Annotated[Optional[int], typer.Option("--count", min=1, help="Redis SUBSCRIBE/MONITOR: "
                                                               "stop after N messages.")] = None,
                  url: UrlOpt = None, conn: ConnOpt = None, fmt: FormatOpt = None, debug: DebugOpt = False,
                  ask_password: AskOpt = False):
        o = opts(ctx, url=url, conn=conn, fmt=fmt, debug=debug, ask_password=ask_password)
        with running(o):
            from dbsh import commands

            params = commands.parse_params(param)
            with session_for(o, trace=trace, count=count) as session:
                commands.query(session, renderer(o), text, params)

    @command("collections")
    def collections_cmd(ctx: typer.Context, url: UrlOpt = None, conn: ConnOpt = None, fmt: FormatOpt = None,
                        debug: DebugOpt = False, ask_password: AskOpt = False):
        o = opts(ctx, url=url, conn=conn, fmt=fmt, debug=debug, ask_password=ask_password)
        run_verb(o, "collections")

    @command("describe")
    def describe_cmd(ctx: typer.Context, name: Annotated[str, typer.Argument(metavar="COLLECTION")],
                     url: UrlOpt = None, conn: ConnOpt = None, fmt: FormatOpt = None, debug: DebugOpt = False,
                     ask_password: AskOpt = False):
        o = opts(ctx, url=url, conn=conn, fmt=fmt, debug=debug, ask_password=ask_password)
        run_verb(o, "describe", name)

    @command("explain")
    def explain_cmd(ctx: typer.Context, collection: Annotated[str, typer.Argument(metavar="COLLECTION")], where: FilterArg = None,
                    allow_filtering: FilteringOpt = False,
                    url: UrlOpt = None, conn: ConnOpt = None, fmt: FormatOpt = None, debug: DebugOpt = False,
                    ask_password: AskOpt = False):
        o = opts(ctx, url=url, conn=conn, fmt=fmt, debug=debug, ask_password=ask_password)
        run_verb(o, "explain", collection, where, backend=dict(allow_filtering=allow_filtering))

    @command("bench")
    def bench_cmd(ctx: typer.Context,
                  compare_targets: Annotated[Optional[list[str]], typer.Argument(
                      metavar="[URL|NAME]...", help="With --compare: the targets to run side by side.",
                      show_default=False)] = None,
                  compare: Annotated[bool, typer.Option("--compare", help="Run the same workload on each "
                                                        "target given as an argument.")] = False,
                  workload: Annotated[Optional[str], typer.Option("--workload", "-w", help="YCSB core workload "
                                                                  "a-f (default a).")] = None,
                  workload_file: Annotated[Optional[str], typer.Option("--workload-file", help="A YCSB workload "
                                                                       "properties file.")] = None,
                  prop: Annotated[Optional[list[str]], typer.Option("--property", "-p", help="Override a "
                                                                    "property: name=value.", show_default=False)]
                  = None,
                  records: Annotated[Optional[int], typer.Option("--records", min=1, help="recordcount.")] = None,
                  operations: Annotated[Optional[int], typer.Option("--operations", min=0,
                                                                    help="operationcount.")] = None,
                  threads: Annotated[int, typer.Option("--threads", "-t", min=1, help="Worker processes, each "
                                                       "with its own connection.")] = 1,
                  rate: Annotated[Optional[float], typer.Option("--rate", min=0.001, help="Open loop: operations "
                                                                "per second; latency from intended start.")] = None,
                  duration: Annotated[Optional[str], typer.Option("--duration", help="Stop the run phase after "
                                                                  "this long, e.g. 60s, 5m.")] = None,
                  load_only: Annotated[bool, typer.Option("--load-only", help="Only load the records.")] = False,
                  run_only: Annotated[bool, typer.Option("--run-only", help="Only run the operations.")] = False,
                  pipeline: Annotated[int, typer.Option("--pipeline", min=1, help="Redis: operations per round "
                                                        "trip.")] = 1,
                  seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed (repeatable key "
                                                              "choices).")] = None,
                  histogram: Annotated[Optional[str], typer.Option("--histogram", help="Write the latency "
                                                                   "distribution: .png, .html, .svg, .hgrm.")]
                  = None,
                  clean: Annotated[bool, typer.Option("--clean", help="Drop the benchmark table first "
                                                      "(load phase).")] = False,
                  url: UrlOpt = None, conn: ConnOpt = None, fmt: FormatOpt = None, debug: DebugOpt = False,
                  ask_password: AskOpt = False):
        o = opts(ctx, url=url, conn=conn, fmt=fmt, debug=debug, ask_password=ask_password)
        with running(o):
            from dbsh import bench, target
            from dbsh.errors import UsageError

            if compare_targets and not compare:
                raise UsageError("targets as arguments need --compare (or use -u URL)")
            if compare and not compare_targets:
                raise UsageError("--compare needs the targets to compare as arguments")
            targets = [target.resolve(t) for t in compare_targets] if compare else [open_target(o)]
            options = bench.Options(workload=workload, workload_file=workload_file, properties=prop,
                                    records=records, operations=operations, threads=threads, rate=rate,
                                    duration=duration, load=not run_only, run=not load_only, pipeline=pipeline,
                                    seed=seed, histogram=histogram, clean=clean,
                                    backend_options={"consistency": o.consistency} if o.consistency else {})
            code = bench.bench(targets, renderer(o), options, compare=compare)
        raise typer.Exit(code)

    from dbsh.migrate import typer_app   # loads no Alembic/SQLAlchemy until a migrate command runs

    text, example = next((t, e) for n, t, e in COMMANDS if n == "migrate")
    app.add_typer(typer_app(), name="migrate", help=text, epilog=f"Example: {example}")

    return app
