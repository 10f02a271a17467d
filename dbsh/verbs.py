"""The verb table: every dbsh command once, with its arguments, options, help and example.

Built from it: the command-line parser (dbsh.argv, the path every command takes), the Typer app
(help pages and shell completion), `dbsh --help`, the shell's backslash commands and their \\?
help, and the README's command reference (tests check it is current). So an option exists on every
surface or on none. Backend-specific flags (--ttl, --allow-filtering, ...) come from the backend
records (dbsh.drivers) and join the verbs they name.

Plain data: importing this imports no database library, no Typer and no Rich.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from dbsh import DEFAULT_BATCH, DEFAULT_CONNECT_TIMEOUT


@dataclass(frozen=True)
class Opt:
    dest: str
    flags: tuple[str, ...]           # "--limit", "-n"
    help: str
    type: str = "bool"               # bool, int, float, str, list (repeatable str)
    metavar: str | None = None
    default: Any = None
    min: float | None = None
    complete: str | None = None      # what the shell completes: file, collection, profile, or a|b|c
    backend: tuple[str, ...] = ()    # backend flag: names of the backends that understand it

    @property
    def long(self) -> str:
        return next(f for f in self.flags if f.startswith("--"))

    def value_default(self) -> Any:
        if self.type == "bool":
            return bool(self.default)
        if self.type == "list":
            return list(self.default or ())
        return self.default


@dataclass(frozen=True)
class Arg:
    dest: str
    metavar: str
    help: str = ""
    required: bool = True
    many: bool = False               # takes every remaining argument
    default: Any = None
    complete: str | None = None      # collection, filter, file, profile, update
    signed: bool = False             # takes negative numbers (-1): such a word is this argument, not an option


@dataclass(frozen=True)
class Verb:
    name: str                        # "find"; "migrate upgrade" for a subcommand
    help: str
    example: str
    args: tuple[Arg, ...] = ()
    options: tuple[Opt, ...] = ()
    run: str = ""                    # "module:function"
    session: bool = True             # run(session, out, **values) on the target's session; else run(call)
    shell: str | None = None         # backslash name in the shell ("\\find"); None: CLI only
    aliases: tuple[str, ...] = ()    # more backslash names ("\\dt")
    globals: bool = True             # takes the connection options (--url, --conn, ...)

    @property
    def usage(self) -> str:
        parts = []
        for a in self.args:
            text = a.metavar + ("..." if a.many else "")
            parts.append(text if a.required else f"[{text}]")
        return " ".join(parts)

    def option(self, dest: str) -> Opt:
        return next(o for o in self.options if o.dest == dest)


# -- global options --------------------------------------------------------------------------------
URL = Opt("url", ("--url", "-u"), "Database URL (or DBSH_URL).", type="str", metavar="URL")
CONN = Opt("conn", ("--conn", "-c"), "Saved connection profile.", type="str", metavar="NAME", complete="profile")
FORMAT = Opt("fmt", ("--format", "-f"), "table, json, jsonl, csv or tsv.", type="str", metavar="FMT",
             complete="table|json|jsonl|csv|tsv")
PASSWORD = Opt("ask_password", ("--password", "-W"), "Ask for the password.")
DEBUG = Opt("debug", ("--debug",), "Show tracebacks.")
YES = Opt("yes", ("--yes", "-y"), "Answer yes to confirmations (scripts; destructive statements).")
SINGLE = Opt("single_transaction", ("--single-transaction", "-1"), "Run a script (stdin, query -) in one "
             "transaction: all of it or nothing.")
CONNECT_TIMEOUT = Opt("connect_timeout", ("--connect-timeout",), "Give up connecting (and waiting for the "
                      f"server's first reply) after SECONDS (default {DEFAULT_CONNECT_TIMEOUT:g}).", type="float",
                      metavar="SECONDS", min=0.1)
SSH = Opt("ssh", ("--ssh",), "Reach the server through an SSH tunnel (the system's ssh -L) via this host.",
          type="str", metavar="USER@HOST[:PORT]")
GLOBALS: tuple[Opt, ...] = (URL, CONN, FORMAT, PASSWORD, DEBUG, YES, SINGLE, CONNECT_TIMEOUT, SSH)
# what `dbsh copy` takes of them (its targets are its arguments)
COPY_GLOBALS = ("fmt", "debug", "yes", "ask_password", "connect_timeout")

# -- shared pieces -----------------------------------------------------------------------------------
COLLECTION = Arg("collection", "COLLECTION", "Table, collection, label, key prefix...", complete="collection")
FILTER = Arg("filter", "FILTER", "MongoDB-style filter (JSON).", required=False, complete="filter")
FIELDS = Opt("fields", ("--fields",), "Comma-separated fields to show.", type="str", metavar="A,B")
SORT = Opt("sort", ("--sort",), "Sort fields, - for descending: -price,name.", type="str", metavar="FIELDS")
LIMIT = Opt("limit", ("--limit", "-n"), "At most N documents.", type="int", metavar="N", min=0)
SKIP = Opt("skip", ("--skip",), "Skip the first N documents.", type="int", metavar="N", min=0)
BATCH = Opt("batch", ("--batch",), "Documents per batch (one transaction each where there are any).",
            type="int", metavar="N", default=DEFAULT_BATCH, min=1)
CREATE = Opt("create", ("--create",), "Create the collection (and columns) if missing.")
ERRORS = Opt("errors", ("--errors",), "Write bad rows (with line and reason) to FILE and go on.", type="str",
             metavar="FILE", complete="file")
MAX_ERRORS = Opt("max_errors", ("--max-errors",), "Stop after N bad rows (default: no limit with --errors).",
                 type="int", metavar="N", min=0)
RESUME = Opt("resume", ("--resume",), "Continue an interrupted run from its checkpoint.")
DIR = Opt("directory", ("--dir", "-d"), "Migrations directory (SQL: an Alembic directory with env.py; NoSQL: "
          "the revision files). Default: ./alembic.ini or ./migrations; migrations/nosql/BACKEND.", type="str",
          metavar="PATH", complete="file")
LOCK_TIMEOUT = Opt("lock_timeout", ("--lock-timeout",), "Give up after SECONDS waiting for the migration lock "
                   "(default: wait).", type="float", metavar="SECONDS", min=0)
LOCK_LEASE = Opt("lock_lease", ("--lock-lease",), "NoSQL: lock lease in SECONDS, renewed while running "
                 "(default 30).", type="float", metavar="SECONDS", min=1)
SQL = Opt("sql", ("--sql",), "SQL: print the SQL instead of running it (offline).")
FORCE = Opt("force", ("--force",), "NoSQL: run even though a revision failed earlier.")
REVISION = Arg("revision", "REVISION", "head, heads, +N, -N, an id, or base.", signed=True)

M = "dbsh.commands"
MIG = "dbsh.migrate.commands"


def _migrate(name: str, help: str, example: str, *args: Arg, options: tuple[Opt, ...] = ()) -> Verb:
    return Verb(f"migrate {name}", help, example, args, options + (DIR,), f"{MIG}:{name}", session=False)


VERBS: tuple[Verb, ...] = (
    Verb("connect", "Check a connection: server version and round-trip time; --save it as a profile.",
         "dbsh connect postgresql://me@db.internal/shop --save shop",
         (Arg("where", "URL|NAME", "URL or saved profile.", required=False, complete="profile"),),
         (Opt("save", ("--save",), "Save as a named profile (without the password).", type="str", metavar="NAME"),
          Opt("readonly", ("--readonly",), "Mark the saved profile read-only.")),
         f"{M}:connect", session=False),
    Verb("insert", "Insert documents from arguments, --file F or - (jsonl, json, csv), in batches.",
         """dbsh insert people '{"name": "Bob", "count": 1}' --create""",
         (COLLECTION, Arg("documents", "DOCUMENT", "JSON objects, or - for stdin.", required=False, many=True,
                          complete="filter")),
         (Opt("file", ("--file", "-F"), "Read documents from a file (- for stdin).", type="str", metavar="FILE",
              complete="file"),
          Opt("input_format", ("--input-format", "-i"), "jsonl, json, csv or tsv (default: from the name or "
              "content).", type="str", metavar="FMT", complete="jsonl|json|csv|tsv"),
          BATCH, CREATE,
          Opt("schema", ("--schema",), "csv/tsv column types instead of inference, e.g. zip:text,count:int.",
              type="str", metavar="COL:TYPE,..."),
          ERRORS, MAX_ERRORS, RESUME),
         f"{M}:insert", shell="\\insert"),
    Verb("find", "Find documents matching a MongoDB-style filter; streamed.",
         """dbsh find people '{"count": {"$gt": 5}}' --sort -count --limit 10""",
         (COLLECTION, FILTER), (FIELDS, SORT, LIMIT, SKIP), f"{M}:find", shell="\\find"),
    Verb("update", "Update documents matching a filter with $set, $unset, $inc.",
         """dbsh update people '{"name": "Jill"}' '{"$set": {"count": 20}}'""",
         (COLLECTION, replace(FILTER, required=True),
          Arg("update", "UPDATE", 'e.g. {"$set": {"a": 1}}', complete="update")),
         (Opt("upsert", ("--upsert",), "Insert when nothing matches."),
          Opt("one", ("--one",), "Update at most one document.")),
         f"{M}:update", shell="\\update"),
    Verb("delete", "Delete documents matching a filter (--all for an empty filter).",
         """dbsh delete people '{"name": "Bob"}'""",
         (COLLECTION, FILTER),
         (Opt("one", ("--one",), "Delete at most one document."),
          Opt("everything", ("--all",), "Allow an empty filter: delete every document.")),
         f"{M}:delete", shell="\\delete"),
    Verb("count", "Count documents matching a filter.",
         """dbsh count people '{"count": {"$gte": 1}}'""",
         (COLLECTION, FILTER), (), f"{M}:count", shell="\\count"),
    Verb("query", "Run the backend's native language: SQL, CQL, Cypher, Redis, MongoDB, CouchDB.",
         "dbsh query 'select name from people where name like :n' -p n=J%",
         (Arg("text", "TEXT", "Native statement(s), or - for a script on stdin."),),
         (Opt("params", ("--param", "-p"), "name=value (the value is read as JSON if it is JSON).", type="list",
              metavar="NAME=VALUE"),),
         f"{M}:query", shell="\\query"),
    Verb("collections", "List collections (tables, labels, key prefixes, databases), or those matching PATTERN.",
         "dbsh -u mongodb://localhost/shop collections 'prod*'",
         (Arg("pattern", "PATTERN", "Only names matching this (* ? [...] wildcards).", required=False,
              complete="collection"),), (), f"{M}:collections", shell="\\collections", aliases=("\\dt",)),
    Verb("describe", "Describe a collection (or each one matching a pattern): columns or fields, types, indexes, "
         "references.",
         "dbsh describe people", (replace(COLLECTION, help="Table, collection, label, key prefix... or a pattern "
                                          "(peo*)."),), (), f"{M}:describe", shell="\\describe", aliases=("\\d",)),
    Verb("databases", "List the databases on the server (keyspaces, Redis db numbers), the current one marked.",
         "dbsh -u postgresql://me@db.internal/shop databases", (), (), f"{M}:databases", shell="\\databases",
         aliases=("\\l",)),
    Verb("explain", "Show how the backend would run a find.",
         """dbsh explain people '{"name": "Bob"}'""",
         (COLLECTION, FILTER), (FIELDS, SORT, LIMIT, SKIP), f"{M}:explain", shell="\\explain"),
    Verb("copy", "Copy a collection between any two backends: URL/COLLECTION to URL/COLLECTION, in batches.",
         "dbsh copy mongodb://localhost/shop/products postgresql://me@db/shop/products --create",
         (Arg("source", "SRC", "URL/COLLECTION (or PROFILE/COLLECTION) to read.", complete="profile"),
          Arg("destination", "DST", "URL/COLLECTION (or PROFILE/COLLECTION) to write.", complete="profile")),
         (Opt("where", ("--where",), "Copy only documents matching this filter (JSON).", type="str",
              metavar="FILTER"),
          Opt("mapping", ("--map",), "Rename a field: old:new (old: drops it).", type="list", metavar="OLD:NEW"),
          Opt("flat", ("--flatten",), "Nested objects become columns a_b instead of JSON."),
          Opt("create", ("--create",), "Create the destination (schema inferred from the first batch)."),
          BATCH, ERRORS, MAX_ERRORS, RESUME),
         f"{M}:copy", session=False, shell="\\copy"),
    Verb("migrate", "Migrations: Alembic for SQL; locked, versioned revisions for NoSQL (upgrade, status...).",
         "dbsh -u postgresql://me@db.internal/shop migrate upgrade head", session=False),
    Verb("bench", "YCSB workloads A-F (or a workload file) with HDR latency per operation; --compare targets.",
         "dbsh -u redis://localhost bench --workload a --records 100000 --operations 200000 --threads 8",
         (Arg("targets", "URL|NAME", "With --compare: the targets to run side by side.", required=False,
              many=True, complete="profile"),),
         (Opt("compare", ("--compare",), "Run the same workload on each target given as an argument."),
          Opt("workload", ("--workload", "-w"), "YCSB core workload a-f (default a).", type="str", metavar="A-F",
              complete="a|b|c|d|e|f"),
          Opt("workload_file", ("--workload-file",), "A YCSB workload properties file.", type="str",
              metavar="FILE", complete="file"),
          Opt("properties", ("--property", "-p"), "Override a property: name=value.", type="list",
              metavar="NAME=VALUE"),
          Opt("records", ("--records",), "recordcount.", type="int", metavar="N", min=1),
          Opt("operations", ("--operations",), "operationcount.", type="int", metavar="N", min=0),
          Opt("threads", ("--threads", "-t"), "Worker processes, each with its own connection.", type="int",
              metavar="N", default=1, min=1),
          Opt("rate", ("--rate",), "Open loop: operations per second; latency from intended start.",
              type="float", metavar="OPS", min=0.001),
          Opt("duration", ("--duration",), "Stop the run phase after this long, e.g. 60s, 5m.", type="str",
              metavar="TIME"),
          Opt("load_only", ("--load-only",), "Only load the records."),
          Opt("run_only", ("--run-only",), "Only run the operations."),
          Opt("pipeline", ("--pipeline",), "Redis: operations per round trip.", type="int", metavar="N",
              default=1, min=1),
          Opt("seed", ("--seed",), "Random seed (repeatable key choices).", type="int", metavar="N"),
          Opt("histogram", ("--histogram",), "Write the latency distribution: .png, .html, .svg, .hgrm.",
              type="str", metavar="FILE", complete="file"),
          Opt("clean", ("--clean",), "Drop the benchmark table first (load phase).")),
         "dbsh.bench:command", session=False),
    _migrate("init", "Start a migrations project: SQL alembic.ini + migrations/ (env.py on dbsh's connection); "
             "NoSQL migrations/nosql/BACKEND/ with a sample revision.", "dbsh -u sqlite:///app.db migrate init",
             options=(Opt("force", ("--force",), "SQL: replace an existing env.py (e.g. Alembic's stock one, which "
                          "ignores dbsh's connection) with dbsh's."),)),
    Verb("agent", "Start, stop or show the warm agent that keeps imports and connections open (opt-in).",
         "dbsh agent start --idle-timeout 600",
         (Arg("action", "ACTION", "start, stop or status.", complete="start|stop|status"),),
         (Opt("idle_timeout", ("--idle-timeout",), "start: exit after SECONDS without a command (default 900).",
              type="float", metavar="SECONDS", min=1),),
         "dbsh.agent:command", session=False),
    _migrate("upgrade", "Apply revisions up to REVISION (head, +N, an id), under the migration lock.",
             "dbsh -u postgresql://me@db/shop migrate upgrade head",
             replace(REVISION, required=False, default="heads"),
             options=(SQL, Opt("dry_run", ("--dry-run",), "Show what would run, without running it."), FORCE,
                      LOCK_TIMEOUT, LOCK_LEASE)),
    _migrate("downgrade", "Revert revisions down to REVISION (-N, an id, base).", "dbsh migrate downgrade -1",
             REVISION, options=(SQL, FORCE, LOCK_TIMEOUT, LOCK_LEASE)),
    _migrate("stamp", "Record REVISION as applied without running anything.", "dbsh migrate stamp head",
             REVISION, options=(SQL, Opt("purge", ("--purge",), "Empty the version records first."), LOCK_TIMEOUT,
                                LOCK_LEASE)),
    _migrate("revision", "Create a revision file (SQL: --autogenerate compares with your models).",
             'dbsh migrate revision -m "create users table" --autogenerate --metadata app.models:metadata',
             options=(Opt("message", ("--message", "-m"), "What it does.", type="str", metavar="TEXT"),
                      Opt("autogenerate", ("--autogenerate",), "SQL: diff the database against the models."),
                      Opt("metadata", ("--metadata",), "SQL: MODULE:ATTR of the models' MetaData for "
                          "--autogenerate.", type="str", metavar="MODULE:ATTR"),
                      Opt("rev_id", ("--rev-id",), "Use this id instead of a generated one.", type="str",
                          metavar="ID"))),
    _migrate("current", "Show the applied head revision(s).", "dbsh migrate current"),
    _migrate("heads", "Show the newest revision(s) in the migrations directory.", "dbsh migrate heads"),
    _migrate("history", "List every revision, newest first.", "dbsh migrate history"),
    _migrate("status", "Every revision with its state: applied, pending (NoSQL: failed, checksum changed).",
             "dbsh migrate status --format json"),
    _migrate("plan", "What upgrade would run, without running it.", "dbsh migrate plan",
             replace(REVISION, required=False, default="heads")),
    _migrate("resolve", "NoSQL: clear a failed revision so the next upgrade retries it (--applied: record it as "
             "done by hand).", "dbsh -u mongodb://localhost/shop migrate resolve 3f2a9c", REVISION,
             options=(Opt("applied", ("--applied",), "Record it as applied instead."), LOCK_TIMEOUT, LOCK_LEASE)),
)

HELP = "One shell for SQL, MongoDB, Redis, Cassandra, Neo4j, CouchDB and more."
EPILOG = """Targets: --url URL, -c PROFILE, or DBSH_URL; default: an embedded SQLite file.
URLs: sqlite:///file.db  postgresql://user@host/db  mysql://user@host/db  mongodb://host/db
      redis://host:6379/0  cassandra://host/keyspace  neo4j://host  couchdb://host:5984
Passwords: put them in DBSH_PASSWORD or use -W to be asked, rather than in the URL.
Output: a table on a terminal, jsonl when piped; --format table|json|jsonl|csv|tsv.
Exit codes: 0 ok, 1 query error, 2 bad input, 3 cannot connect, 130 interrupted."""


def backend_options(plugins: bool = True) -> dict[str, tuple[Opt, set[str]]]:
    """Every backend flag as (an option, the verbs that take it), by dest, its help naming the backends
    that take it; read from the backend records (built-in, and plugins unless ``plugins`` is false)
    without importing a driver."""
    from dbsh.drivers import backends

    merged: dict[str, tuple[Any, list[str], set[str]]] = {}
    for backend in backends(with_plugins=plugins):
        for flag in backend.flags:
            _, names, verbs = merged.setdefault(flag.dest, (flag, [], set()))
            if backend.name not in names:
                names.append(backend.name)
            verbs.update(flag.verbs)
    found: dict[str, tuple[Opt, set[str]]] = {}
    for dest, (flag, names, verbs) in merged.items():
        found[dest] = (Opt(dest, flag.flags, f"{' / '.join(names)}: {flag.help}", type=flag.type,
                           metavar=flag.metavar, min=flag.min, backend=tuple(names)), verbs)
    return found


def table(with_backends: bool = True, plugins: bool = True) -> dict[str, Verb]:
    """The verbs by name, each with the backend flags that apply to it."""
    extra = backend_options(plugins) if with_backends else {}
    verbs = {}
    for verb in VERBS:
        flags = tuple(opt for opt, names in extra.values() if verb.name in names)
        verbs[verb.name] = replace(verb, options=verb.options + flags) if flags else verb
    return verbs


def global_options(with_backends: bool = True, plugins: bool = True) -> tuple[Opt, ...]:
    """The global options: connection and output, plus the backend flags every command takes."""
    extra = backend_options(plugins) if with_backends else {}
    return GLOBALS + tuple(opt for opt, names in extra.values() if "*" in names)


def shell_verbs() -> dict[str, Verb]:
    """The verbs with a backslash form, by every backslash name."""
    found = {}
    for verb in table().values():
        if verb.shell:
            for name in (verb.shell, *verb.aliases):
                found[name] = verb
    return found


@dataclass
class Call:
    """A parsed command: the verb, its values by dest (defaults filled in), the backend flags given."""

    verb: Verb
    values: dict[str, Any] = field(default_factory=dict)
    flags: dict[str, Any] = field(default_factory=dict)
    settings: Any = None             # dbsh.context.Settings
