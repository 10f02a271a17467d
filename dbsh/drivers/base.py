"""The driver interface: what every backend offers the CLI, the REPL, migrate, bench and copy.

A backend is one module in ``dbsh.drivers`` exposing ``connect(target) -> Session``. It imports
its client library inside that module, so nothing here pulls in a database library.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dbsh.errors import DbshError, Unsupported, UsageError
from dbsh.query import Filter, Update


@dataclass(frozen=True)
class Capabilities:
    language: str                   # native language, also the Pygments lexer alias: sql, cql, cypher, ...
    transactions: bool = False      # begin/commit/rollback
    schema: bool = False            # fixed columns (SQL, CQL): --create infers a schema
    statement_terminator: str | None = ";"   # the REPL ends multi-line input at this (None: one line each)
    # an insert batch is all-or-nothing (a SQL transaction); elsewhere a failed batch may have
    # landed in part, reported as errors.PartialWrite when the driver knows which documents
    atomic_insert: bool = False
    # the database runs inside this process (SQLite): its work holds the same CPU and, in part,
    # the GIL, so bulk loads do not read ahead in a second thread (a forked process may:
    # Session.prepares_apart)
    embedded: bool = False
    dates: bool = False             # stores dates and times as such (copy keeps them; elsewhere ISO text)
    decimals: bool = True           # with dates (or a schema): stores exact decimals as such
    nested: bool = True             # stores nested objects (elsewhere, copy sends them as JSON text)


class Result:
    """What a driver hands the renderer: rows (dicts) consumed once, so output streams, or a status.

    rows        the rows, iterated once (a cursor behind them, closed when done or on close())
    columns     their column names when the backend knows them (None: each row's own keys)
    message     a status line: alone for a statement ("3 rows affected"), or after the rows
    streaming   an endless feed (SUBSCRIBE, MONITOR): written row by row, never gathered in a table
    json_lines  the same rows already encoded as JSON, exactly as the renderer would write them:
                a function giving (text, count) pieces of ``count`` lines, from a database that
                builds JSON itself (SQLite); the renderer uses it for json and jsonl
    Notes beside the data ("scanned 40 keys") go through Session.notice, not in the Result.
    """

    def __init__(self, rows: Iterable[dict] = (), columns: list[str] | None = None, *,
                 message: str | None = None, close: Callable[[], None] | None = None, streaming: bool = False,
                 json_lines: Callable[[], Iterator[tuple[str, int]]] | None = None):
        self._rows = iter(rows)
        self.columns = columns
        self.message = message
        self.streaming = streaming
        self.json_lines = json_lines
        self._close = close

    def __iter__(self) -> Iterator[dict]:
        try:
            yield from self._rows
        finally:
            self.close()

    def close(self) -> None:
        if self._close is not None:
            close, self._close = self._close, None
            close()

    @classmethod
    def status(cls, message: str) -> Result:
        return cls((), None, message=message)


@dataclass
class WriteResult:
    """What a write did; rendered as one summary row (json) or line (terminal)."""

    action: str                      # inserted / updated / deleted / upserted
    collection: str
    count: int
    ids: list[Any] | None = None
    matched: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        noun = "row" if self.count == 1 else "rows"
        text = f"{self.action} {self.count} {noun}"
        if self.matched is not None and self.matched != self.count:
            text += f" ({self.matched} matched)"
        text += f" {'into' if self.action == 'inserted' else 'in'} {self.collection}"
        extra = ", ".join(f"{k}: {v}" for k, v in self.details.items())
        return f"{text} ({extra})" if extra else text

    def as_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"action": self.action, "collection": self.collection, "count": self.count}
        if self.matched is not None:
            row["matched"] = self.matched
        if self.ids is not None:
            row["ids"] = self.ids
        row.update(self.details)
        return row


class ReadOnly(UsageError):
    """A write refused by a read-only session (exit 2)."""


# the Session methods that write, each guarded by the read-only rule (see Session.__init_subclass__)
_WRITES = ("insert", "insert_batch", "update", "delete")


class Session:
    """One connection to one database. Drivers override what their backend can do.

    Open one with dbsh.context.open_session, which applies --yes, the profile's read-only flag and
    the backend flags. A read-only session refuses every write itself: the uniform writes, native
    statements that may write or that would switch the read-only mode off, and (through
    require_writable) copy, bench and migrate, which work on the native client.
    """

    capabilities = Capabilities(language="text")
    name = "database"                # human name of the backend: "PostgreSQL", "Redis", ...
    client: Any = None               # the native client (pymongo Database, redis.Redis, ...) for migrate/bench
    internal_fields: tuple[str, ...] = ()   # fields of the backend's own, dropped when copied elsewhere (_rev)
    natural_order: tuple[str, ...] = ()     # fields whose order find returns stably (copy --resume): _id
    backend: Any = None              # its dbsh.drivers.Backend record (set by dbsh.drivers.connect)

    def __init__(self, target):
        self.target = target
        # backend-specific options from the command line, e.g. {"ttl": 3600}; only the flags of this
        # backend's record ever arrive here (set_options rejects the others with a clear error)
        self.options: dict[str, Any] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in _WRITES:
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "_guarded", False):
                setattr(cls, name, _guarded(name, method))
        execute = cls.__dict__.get("execute")
        if execute is not None and not getattr(execute, "_guarded", False):
            setattr(cls, "execute", _guarded_execute(execute))  # noqa: B010 - mypy refuses assigning a method

    def option(self, name: str, default: Any = None) -> Any:
        return self.options.get(name, default)

    @property
    def connect_timeout(self) -> float:
        """Seconds to connect and to wait for the server's first reply: --connect-timeout, else the
        profile's connect_timeout, else dbsh.DEFAULT_CONNECT_TIMEOUT. A driver bounds both with it, so
        a wrong port (or one where another protocol listens) is a ConnectError, never a hang."""
        from dbsh import DEFAULT_CONNECT_TIMEOUT

        value = (getattr(self.target, "options", None) or {}).get("connect_timeout")
        if value in (None, ""):
            return DEFAULT_CONNECT_TIMEOUT
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            raise UsageError(f"connect_timeout must be a number of seconds, got {value!r}") from None
        if not seconds > 0:
            raise UsageError(f"connect_timeout must be more than 0 seconds, got {value!r}")
        return seconds

    # where notes beside the data go ("scanned 40 keys", a warning): stderr on the command line, the
    # shell's own output in the shell (it sets this); drivers call notice(), never print
    notify: Callable[[str], None] | None = None

    def notice(self, text: str) -> None:
        if self.notify is not None:
            self.notify(text)
            return
        import sys

        print(text, file=sys.stderr, flush=True)

    def set_options(self, **options: Any) -> None:
        """Accept command-line options this backend understands; reject the rest clearly."""
        given = {k: v for k, v in options.items() if v not in (None, False)}
        known = {f.dest for f in self.backend.flags} if self.backend is not None else set()
        unknown = sorted(set(given) - known - {"yes"})
        if unknown:
            flags = ", ".join("--" + u.replace("_", "-") for u in unknown)
            raise Unsupported(f"{flags} is not supported on {self.name}")
        self.options.update(given)

    # -- connection ------------------------------------------------------------------------
    def server_info(self) -> dict[str, Any]:
        """Backend name, server version and what else is worth showing on connect."""
        return {"backend": self.name}

    def ping(self) -> float:
        """Round-trip time of the cheapest request, in seconds."""
        raise Unsupported(f"{self.name} has no ping")

    def timed_ping(self) -> float:
        start = time.perf_counter()
        self.ping()
        return time.perf_counter() - start

    def cancel(self) -> None:
        """Interrupt the running statement; called from another thread (Ctrl-C in the shell) for
        client libraries that do not cancel on KeyboardInterrupt themselves. Default: nothing."""

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- catalog ---------------------------------------------------------------------------
    def collections(self) -> list[str]:
        raise Unsupported(f"{self.name} cannot list collections")

    def describe(self, name: str) -> Result:
        raise Unsupported(f"{self.name} cannot describe {name}")

    def databases(self) -> Result:
        """The databases (keyspaces, db numbers) on the server, the current one marked: the shell's \\l."""
        raise Unsupported(f"{self.name} cannot list databases")

    def vocabulary(self) -> dict[str, Any]:
        """What completion may know beyond collections and fields, from the server (read by the shell's
        background catalog): "command_docs" (Redis COMMAND DOCS), "relationships" and "properties"
        (graph), ... Default: nothing."""
        return {}

    def references(self) -> dict[str, list[dict[str, Any]]]:
        """Every collection's foreign_keys() at once (join completion); default: none."""
        return {}

    lists_keys = False   # key_names() can list every key at once (the shell reads them in the background)

    def key_names(self, prefix: str = "", limit: int = 100) -> list[str]:
        """Names of keys that begin with ``prefix`` (a bounded scan), for completion. Default: none."""
        return []

    def foreign_keys(self, name: str) -> list[dict[str, Any]]:
        """References from a collection to others: {"name", "columns", "table", "referred"} each
        (columns of ``name`` -> columns of ``table``). For \\d and join completion; default: none."""
        return []

    def completions(self) -> dict[str, list[str]]:
        """Field names per collection, for the REPL's completion. Schemaless backends override this
        with fields of sampled documents (or key patterns, property keys); the default asks describe()."""
        fields: dict[str, list[str]] = {}
        for name in self.collections()[:200]:
            try:
                rows = list(self.describe(name))
            except DbshError:
                rows = []
            fields[name] = [str(r.get("column") or r.get("field") or r.get("name") or next(iter(r.values()), ""))
                            for r in rows if r]
        return fields

    # -- uniform verbs ---------------------------------------------------------------------
    def insert(self, name: str, docs: Iterable[dict], *, batch: int = 1000, create: bool = False,
               progress=None) -> WriteResult:
        raise Unsupported(f"insert is not supported on {self.name}")

    @contextlib.contextmanager
    def bulk_load(self) -> Iterator[None]:
        """Around a bulk load (insert --file, copy): settings a backend keeps only for one. Default: none."""
        yield

    def insert_batch(self, name: str, batch, *, create: bool = False) -> WriteResult:
        """One batch of a bulk load (dbsh.inputs.Batch), in one transaction where there are any.
        Drivers whose collections have column types convert csv text by those types, as the
        database's own csv import would; the default inserts the batch's documents (csv cells
        typed by inference)."""
        return self.insert(name, batch.documents(), batch=max(len(batch), 1), create=create)

    def prepare_batch(self, name: str, batch) -> None:
        """Work on a batch bound for collection ``name`` that needs no connection (encoding it, say),
        done by the thread or process that reads ahead while the batch before it is written
        (dbsh.bulk.readahead); insert_batch finds it in ``batch.prepared``. Default: nothing."""

    @property
    def prepares_apart(self) -> bool:
        """Whether prepare_batch may run in a forked reading process (dbsh.bulk.readahead): it then
        uses nothing of the session but its settings, ``batch.prepared`` is plain data (bytes, tuples)
        that pickles cheaply, and insert_batch writes a batch from it alone, asking for
        ``batch.docs`` (parsed again from ``batch.lines`` then) only when it cannot."""
        return False

    def find(self, name: str, where: Filter, *, fields: list[str] | None = None,
             sort: list[tuple[str, int]] | None = None, limit: int | None = None,
             skip: int | None = None) -> Result:
        raise Unsupported(f"find is not supported on {self.name}")

    def update(self, name: str, where: Filter, change: Update, *, upsert: bool = False,
               one: bool = False) -> WriteResult:
        raise Unsupported(f"update is not supported on {self.name}")

    def delete(self, name: str, where: Filter, *, one: bool = False) -> WriteResult:
        raise Unsupported(f"delete is not supported on {self.name}")

    def stable_order(self, name: str) -> list[tuple[str, int]] | None:
        """An order find returns the same way every time, so copy --resume can skip what was copied:
        the primary key of a SQL table, _id of a document store; None when the backend has none to
        offer (Cassandra's token order is stable by itself)."""
        if self.natural_order:
            return [(f, 1) for f in self.natural_order]
        if self.capabilities.schema and self.capabilities.transactions:
            try:
                keys = [r["column"] for r in self.describe(name) if r.get("primary_key")]
            except (DbshError, KeyError):
                keys = []
            return [(k, 1) for k in keys] or None
        return None

    def count(self, name: str, where: Filter) -> int:
        return sum(1 for _ in self.find(name, where))

    def explain(self, name: str, where: Filter, **find_options) -> Result:
        raise Unsupported(f"explain is not supported on {self.name}")

    # -- native language -------------------------------------------------------------------
    def execute(self, text: str, params: dict[str, Any] | None = None) -> Result:
        raise Unsupported(f"{self.name} has no native query language in dbsh")

    def statements(self, text: str) -> list[str]:
        """The statements of a native script, in order: dbsh.commands.query runs and renders them
        one by one. Default: the text is one statement (drivers that split scripts override this)."""
        return [text]

    # -- transactions (capabilities.transactions) -------------------------------------------
    def begin(self) -> None:
        raise Unsupported(f"{self.name} has no transactions")

    def commit(self) -> None:
        raise Unsupported(f"{self.name} has no transactions")

    def rollback(self) -> None:
        raise Unsupported(f"{self.name} has no transactions")

    @property
    def in_transaction(self) -> bool:
        return False

    # -- read-only sessions (profile readonly = true, the REPL's \\readonly) ------------------
    readonly = False
    server_readonly = False          # True when the server itself enforces it

    def make_readonly(self, flag: bool) -> bool:
        """What callers use: set_readonly, and remember whether the server enforces it. A profile
        saved with readonly = true cannot be switched back."""
        if not flag and self.target.readonly:
            raise ReadOnly(f"profile {self.target.profile!r} is read-only (readonly = true in its config)")
        self.server_readonly = bool(self.set_readonly(flag)) and flag
        return self.server_readonly

    def stateless(self, text: str) -> bool:
        """Whether running native ``text`` leaves the connection as it found it (no database switched,
        no session setting, no transaction or subscription left open), so the warm agent may give
        the session to another command. Unknown: no."""
        return False

    def reset(self) -> bool:
        """Make the connection as a new one would be (after native text that may have changed it),
        keeping what the session has learnt, so the warm agent can give it to another command; False
        when this session cannot (the agent then closes it)."""
        return False

    def require_writable(self, what: str) -> None:
        """Refuse ``what`` (a verb, "copy", "bench", "migrate upgrade", ...) on a read-only session."""
        if self.readonly:
            raise ReadOnly(readonly_message(self.target, what))

    def check_statement(self, text: str) -> None:
        """Refuse a native statement on a read-only session: one that may write (when the server
        does not enforce read-only itself), or one that would switch the read-only mode off.
        Every statement of a multi-statement input is checked."""
        if not self.readonly:
            return
        from dbsh import statements

        language = self.capabilities.language
        for statement in statements.split(text, language, self.capabilities.statement_terminator) or [text]:
            if statements.unlocks_readonly(statement, language):
                raise ReadOnly(readonly_message(self.target, "a statement that changes the session's "
                                                "read-only mode"))
            if not self.server_readonly and statements.writes(statement, language):
                raise ReadOnly(readonly_message(self.target, f"a statement that may write on {self.name}"))

    def set_readonly(self, flag: bool) -> bool:
        """Make the session read-only, or writable again. Returns True when the server enforces it
        (a read-only session); the default returns False: the caller refuses writes client-side."""
        self.readonly = flag
        return False


def field_paths(doc: dict, type_name, prefix: str = "", depth: int = 0) -> Iterator[tuple[str, str]]:
    """(dotted path, type name) of a document's fields, nested objects to three levels: what
    describe shows for schemaless collections, each backend naming types its own way."""
    for key, value in doc.items():
        path = prefix + key
        yield path, type_name(value)
        if isinstance(value, dict) and depth < 2:
            yield from field_paths(value, type_name, path + ".", depth + 1)


def sampled_fields(docs: list[dict], type_name, indexed: dict[str, list[str]], first) -> Result:
    """describe for a schemaless collection: each field of a sample with its types (most common
    first), how many sampled documents have it, and the indexes on it. ``first(path)`` is True
    for the fields listed before the others (_id, CouchDB's _ fields)."""
    seen: dict[str, dict[str, int]] = {}
    for doc in docs:
        for path, kind in field_paths(doc, type_name):
            counts = seen.setdefault(path, {})
            counts[kind] = counts.get(kind, 0) + 1
    for key in indexed:
        seen.setdefault(key, {})
    rows = []
    for path in sorted(seen, key=lambda p: (not first(p), p)):
        counts = seen[path]
        rows.append({"field": path, "types": ", ".join(sorted(counts, key=lambda k: -counts[k])) or None,
                     "present": f"{sum(counts.values())}/{len(docs)}",
                     "indexes": ", ".join(indexed.get(path, [])) or None})
    return Result(rows, ["field", "types", "present", "indexes"])


def int_texts(values) -> list[str]:
    """str() of each int, printed by orjson in one call (several times faster than str() a value) when
    all fit in 64 bits; str() itself otherwise."""
    import orjson

    if not values:
        return []
    try:
        return orjson.dumps(values).decode()[1:-1].split(",")
    except TypeError:   # orjson.JSONEncodeError: an int beyond 64 bits
        return list(map(str, values))


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Split an iterable into lists of at most ``size`` items, lazily."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    if isinstance(items, list):   # slices, not an item-by-item copy (insert gets whole batches)
        for start in range(0, len(items), size):
            yield items if size >= len(items) else items[start:start + size]
        return
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def readonly_message(target, what: str) -> str:
    """The one wording of a refused write, for the session and for paths without one (Alembic)."""
    why = (f" (profile {target.profile!r} has readonly = true)" if target.readonly and target.profile
           else "" if not target.readonly else " (the target is read-only)")
    hint = "" if target.readonly else "; \\readonly off allows writes"
    return f"read-only connection: {what} is refused{why}{hint}"


def _guarded(verb: str, method):
    import functools

    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        if self.readonly:
            self.require_writable("insert" if verb == "insert_batch" else verb)
        return method(self, *args, **kwargs)

    guarded._guarded = True  # type: ignore[attr-defined]  # a marker on the function: no type says it has one
    return guarded


def _guarded_execute(method):
    import functools

    @functools.wraps(method)
    def guarded(self, text, *args, **kwargs):
        if self.readonly:
            self.check_statement(text)
        return method(self, text, *args, **kwargs)

    guarded._guarded = True  # type: ignore[attr-defined]  # a marker on the function: no type says it has one
    return guarded
