"""The backends: one record each (schemes, extra, session, language, flags, bench, migrate), and the
registry that finds a record by URL scheme.

A record is plain data: reading it imports no client library, so `dbsh --help` and the option
tables stay fast. Everything else is named by import path ("module:attribute") and loaded only
when that backend is used. Built-in backends are listed in BUILTIN (one line each); third-party
ones register a record under the ``dbsh.drivers`` entry-point group and get everything a built-in
backend gets: the verbs, the shell, its flags, bench and migrate.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from dbsh.errors import UsageError


@dataclass(frozen=True)
class Flag:
    """A backend-specific command-line option (--ttl, --allow-filtering, ...).

    ``verbs``: the commands that take it ("*": every command, as a global option). Its value reaches
    the session as ``session.options[dest]``; a session of another backend refuses it clearly.
    """

    dest: str
    flags: tuple[str, ...]
    help: str
    type: str = "bool"               # bool, int, str
    metavar: str | None = None
    min: int | None = None
    verbs: tuple[str, ...] = ("*",)


@dataclass(frozen=True)
class Backend:
    key: str                         # short name: sqlite, postgresql, mongo, ... (migrate dirs, tests)
    name: str                        # what users call it: "PostgreSQL"
    schemes: tuple[str, ...]
    connect: str                     # "module:function" taking a Target, returning a Session
    language: str                    # native language (and Pygments lexer alias): sql, cql, cypher, ...
    extra: str | None = None         # the pip extra that brings its client library
    client: str | None = None        # the client library's import name, for "pip install" hints
    flags: tuple[Flag, ...] = ()
    bench: str | None = None         # "module:Adapter class" for dbsh bench
    migrate: str | None = None       # "module:Store class" for NoSQL migrate; "alembic" for SQL
    example: str = ""                # a URL, for help texts
    # where this backend cannot give MongoDB's meaning, by feature (regex, or, nested, sort, ...): dbsh
    # refuses those with a clear error (exit 2); the conformance suite checks it and the README lists it
    cannot: dict[str, str] = field(default_factory=dict)
    # how its data model differs (e.g. "null": a null value is a missing field), openly documented
    differs: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def load(self, path: str | None = None):
        """Import what ``path`` (default: the session factory) names, with a clear error when the
        backend's client library is not installed."""
        module_name, _, attr = (path or self.connect).partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name and (e.name == module_name or module_name.startswith(e.name + ".")):
                raise UsageError(f"no driver for {self.name} in this dbsh ({module_name} is not installed)") from None
            raise UsageError(f"the {self.name} backend needs the Python package {e.name!r}",
                             hint=f"pip install 'dbsh[{self.extra or 'all'}]'") from None
        return getattr(module, attr) if attr else module


SQL_DIFFERS = {"null": "a row has every column: a missing field is NULL, so null and missing are the same"}
SQL_CANNOT = {"nested": "columns are flat: a filter on a nested path (a.b) is refused"}

TTL = Flag("ttl", ("--ttl",), "Expire after SECONDS.", type="int", metavar="SECONDS", min=1, verbs=("insert",))

BUILTIN: tuple[Backend, ...] = (
    Backend("sqlite", "SQLite", ("sqlite",), "dbsh.drivers.sql:connect", "sql",
            bench="dbsh.drivers.sql.bench:SqlAdapter", migrate="alembic", example="sqlite:///app.db", cannot=SQL_CANNOT,
            differs=SQL_DIFFERS),
    Backend("postgresql", "PostgreSQL", ("postgresql", "postgres"), "dbsh.drivers.sql:connect", "sql",
            extra="postgres", client="psycopg", bench="dbsh.drivers.sql.bench:SqlAdapter", migrate="alembic",
            example="postgresql://user@host:5432/db", cannot=SQL_CANNOT,
            differs=SQL_DIFFERS),
    Backend("mysql", "MySQL/MariaDB", ("mysql", "mariadb"), "dbsh.drivers.sql:connect", "sql",
            extra="mysql", client="pymysql", bench="dbsh.drivers.sql.bench:SqlAdapter", migrate="alembic",
            example="mysql://user@host:3306/db", cannot=SQL_CANNOT,
            differs=SQL_DIFFERS),
    Backend("mongo", "MongoDB", ("mongodb", "mongodb+srv"), "dbsh.drivers.mongo.session:connect", "javascript",
            extra="mongo", client="pymongo", bench="dbsh.drivers.mongo.bench:MongoAdapter",
            migrate="dbsh.drivers.mongo.migrate:MongoStore", example="mongodb://host:27017/db"),
    Backend("redis", "Redis", ("redis", "rediss", "redis+cluster", "rediss+cluster"), "dbsh.drivers.redis:connect",
            "redis", extra="redis", client="redis",
            flags=(TTL, Flag("count", ("--count",), "SUBSCRIBE/MONITOR: stop after N messages.", type="int",
                             metavar="N", min=1, verbs=("query",))),
            bench="dbsh.drivers.redis.bench:RedisAdapter", migrate="dbsh.drivers.redis.migrate:RedisStore",
            example="redis://host:6379/0"),
    Backend("memcached", "Memcached", ("memcached", "memcached+unix"), "dbsh.drivers.memcached.session:connect",
            "memcached", extra="memcached", client="pymemcache", flags=(TTL,),
            bench="dbsh.drivers.memcached.bench:MemcachedAdapter", migrate=None, example="memcached://host:11211",
            cannot={"migrate": "a cache has no schema to migrate"}),
    Backend("cassandra", "Cassandra", ("cassandra",), "dbsh.drivers.cassandra.session:connect", "cql",
            extra="cassandra", client="cassandra",
            flags=(Flag("consistency", ("--consistency",), "Consistency level, e.g. LOCAL_QUORUM.", type="str",
                        metavar="LEVEL"),
                   Flag("allow_filtering", ("--allow-filtering",),
                        "Allow a filter or sort no key or index serves: Cassandra or dbsh reads the whole table.",
                        verbs=("find", "count", "update", "delete", "explain")),
                   Flag("trace", ("--trace",), "Show the query trace.", verbs=("query",)),
                   TTL,
                   Flag("generate_id", ("--generate-id",), "Generate a missing id (a uuid).", verbs=("insert",))),
            bench="dbsh.drivers.cassandra.bench:CassandraAdapter",
            migrate="dbsh.drivers.cassandra.migrate:CassandraStore",
            example="cassandra://host:9042/keyspace",
            # every filter, sort and update of the conformance suite gets MongoDB's answer: what CQL cannot say
            # ($or, $ne, $regex, null, paths into maps, any sort) dbsh checks or sorts on the rows it reads
            differs={"null": "Cassandra stores no nulls: a column set to null is a missing column",
                     "empty-collections": "an empty list, set or map is no value at all: it reads back missing",
                     "typed-values": "a filter value on a uuid, timestamp, date, time, inet, blob, duration or tuple "
                                     "column is read as that type (from its JSON text), as insert reads it",
                     "create": "insert --create types columns from the first documents it sees; a nested object or "
                               "an array becomes a text column holding its JSON"}),
    Backend("neo4j", "Neo4j", ("neo4j", "neo4j+s", "neo4j+ssc", "bolt", "bolt+s", "bolt+ssc"),
            "dbsh.drivers.neo4j.session:connect", "cypher", extra="neo4j", client="neo4j",
            bench="dbsh.drivers.neo4j.bench:Neo4jAdapter", migrate="dbsh.drivers.neo4j.migrate:Neo4jStore",
            example="neo4j://host:7687",
            cannot={"nested-values": "properties are scalars or lists of scalars: a nested object is refused",
                    "nested": "properties are flat: a filter on a nested path (a.b) is refused"},
            differs={"null": "a property set to null is removed: null and missing are the same",
                     "arrays": "a list property is compared as a whole, as Cypher's = does: a value does not match "
                               "an element of it (so equality keeps its index seek)"}),
    Backend("couchdb", "CouchDB", ("couchdb", "couchdbs"), "dbsh.drivers.couchdb.session:connect", "http",
            extra="couchdb", client="httpx", bench="dbsh.drivers.couchdb.bench:CouchAdapter",
            migrate="dbsh.drivers.couchdb.migrate:CouchStore", example="couchdb://host:5984"),
)

_plugins: tuple[Backend, ...] | None = None


def plugins() -> tuple[Backend, ...]:
    """Backends registered by other packages under the ``dbsh.drivers`` entry-point group: each entry
    point names a Backend record (or a list of them). Read once, and only when a scheme is not built
    in or every backend is listed."""
    global _plugins
    if _plugins is None and not _declared_anywhere():
        _plugins = ()
    if _plugins is None:
        from importlib.metadata import entry_points

        found: list[Backend] = []
        for ep in entry_points(group="dbsh.drivers"):
            try:
                value = ep.load()
            except Exception:  # noqa: BLE001 - a broken plugin must not break dbsh
                continue
            if isinstance(value, Backend):
                found.append(value)
            elif isinstance(value, list | tuple):
                found += [b for b in value if isinstance(b, Backend)]
            elif hasattr(value, "connect"):   # the older form: a module with connect(), named by scheme
                found.append(Backend(ep.name, ep.name, (ep.name,), f"{value.__name__}:connect", "text"))
        _plugins = tuple(found)
    return _plugins


def _declared_anywhere() -> bool:
    """Whether an installed distribution may declare a ``dbsh.drivers`` entry point: a look into the
    entry_points.txt files on sys.path (importing importlib.metadata alone costs a one-shot command
    more than the rest of its start); anything but a plain directory on sys.path (a zip) may."""
    import os
    import sys

    for folder in sys.path:
        try:
            names = os.listdir(folder or ".")
        except NotADirectoryError:
            return True
        except OSError:
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info")):
                try:
                    with open(os.path.join(folder or ".", name, "entry_points.txt"), "rb") as f:
                        if b"dbsh.drivers" in f.read():
                            return True
                except OSError:
                    continue
    return False


def backends(*, with_plugins: bool = True) -> tuple[Backend, ...]:
    return BUILTIN + (plugins() if with_plugins else ())


def schemes() -> list[str]:
    return sorted(s for b in BUILTIN for s in b.schemes)


def for_scheme(scheme: str) -> Backend:
    """The backend of a URL scheme; SQLAlchemy-style driver suffixes (postgresql+psycopg) name
    their base scheme."""
    scheme = scheme.lower()
    for backend in BUILTIN:
        if scheme in backend.schemes:
            return backend
    base = scheme.split("+", 1)[0]
    for backend in BUILTIN:
        if backend.migrate == "alembic" and base in backend.schemes:
            return backend
    for backend in plugins():
        if scheme in backend.schemes:
            return backend
    raise UsageError(f"unknown URL scheme {scheme!r}", hint="known: " + ", ".join(schemes()))


def connect(target):
    """Open a Session for a Target (no options applied: dbsh.context.open_session does that)."""
    backend = for_scheme(target.scheme)
    session = backend.load()(target)
    session.backend = backend
    return session
