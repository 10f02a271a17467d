"""The verbs as plain functions: the command line and the shell's backslash commands both call these,
with the values dbsh.argv parsed against the verb table (dbsh.verbs).

Verbs on a session take (session, renderer, **values); the others (connect, copy) take the Call.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

from dbsh.drivers.base import Result, Session
from dbsh.errors import DbshError, UsageError
from dbsh.inputs import open_documents, parse_document, parse_json_arg
from dbsh.output import Renderer
from dbsh.query import Filter, Update, parse_fields, parse_sort


class Declined(DbshError):
    """The user answered no to a confirmation: nothing ran (exit 1 on the command line)."""

    def __init__(self, message: str = "not run"):
        super().__init__(message)


def parse_filter_text(text: str | None) -> Filter:
    return Filter.parse(text)


def parse_params(pairs: Iterable[str] | None) -> dict[str, Any]:
    """``-p name=value``: the value is read as JSON when it is valid JSON (42, true, "42"), else as text."""
    params: dict[str, Any] = {}
    for pair in pairs or ():
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"bad parameter {pair!r}", hint="use -p name=value")
        try:
            import json

            params[name] = json.loads(raw)
        except ValueError:
            params[name] = raw
    return params


def documents(args: list[str], file: str | None, input_format: str | None):
    """Documents from JSON arguments, or streamed from --file (or '-' for stdin)."""
    if file and args:
        raise UsageError("give documents as arguments or with --file, not both")
    if args == ["-"]:
        file = "-"
        args = []
    if file:
        return open_documents(file, input_format)
    if not args:
        if sys.stdin.isatty():
            raise UsageError("no documents given", hint="pass JSON objects as arguments, --file F, or - for stdin")
        return open_documents("-", input_format)
    return [parse_document(a, f"document {i}") for i, a in enumerate(args, 1)]


# -- confirmations ------------------------------------------------------------------------------------
def ask_on_terminal(question: str) -> bool:
    """A yes/no question on the terminal (stderr), for the command line."""
    sys.stderr.write(question)
    sys.stderr.flush()
    try:
        answer = sys.stdin.readline()
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return False
    return answer.strip().lower() in ("y", "yes")


def confirm(session: Session, what: str, ask: Callable[[str], bool] | None = None) -> None:
    """Go on only if the user agrees to ``what`` (a destructive statement): --yes agrees; on a
    terminal the user is asked; anywhere else (a script, a pipe) it is refused: pass --yes."""
    if session.option("yes"):
        return
    if ask is None:
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise UsageError(f"refusing without confirmation: {what}", hint="pass --yes to run it")
        ask = ask_on_terminal
    if not ask(f"{what}. Run it? [y/N] "):
        raise Declined()


def destructive_reason(session: Session, text: str) -> str | None:
    from dbsh.statements import destructive

    reason = destructive(text, session.capabilities.language)
    if reason:
        first = text.strip().splitlines()[0].rstrip(";")
        return f"{first[:60]}{'...' if len(first) > 60 else ''}: {reason}"
    return None


# -- the verbs on a session ---------------------------------------------------------------------------
def insert(session: Session, out: Renderer, collection: str, documents: list[str] | None = None, *,
           file: str | None = None, input_format: str | None = None, batch: int = 1000, create: bool = False,
           progress=None, schema: str | None = None, errors: str | None = None, max_errors: int | None = None,
           resume: bool = False) -> None:
    """JSON arguments go to the driver in one call; a file or stdin streams through dbsh.bulk (batches,
    a progress bar on a terminal, bad rows to --errors, a checkpoint for --resume)."""
    session.require_writable("insert")
    docs = list(documents or [])
    if batch < 1:
        raise UsageError("--batch must be at least 1")
    if file and docs:
        raise UsageError("give documents as arguments or with --file, not both")
    path = file or ("-" if docs == ["-"] or (not docs and not sys.stdin.isatty()) else None)
    if path is None:
        if errors or max_errors is not None or resume or schema:
            raise UsageError("--errors, --max-errors, --resume and --schema apply to --file input")
        source = _documents_or_usage(docs, input_format)
        out.write(session.insert(collection, source, batch=batch, create=create, progress=progress))
        return
    from dbsh import bulk

    out.write(bulk.import_file(session, collection, path, input_format=input_format, schema=schema,
                               batch=batch, create=create, errors=errors, max_errors=max_errors, resume=resume,
                               progress=progress if isinstance(progress, bool) else None))


def _documents_or_usage(docs: list[str], input_format: str | None):
    if not docs:
        raise UsageError("no documents given", hint="pass JSON objects as arguments, --file F, or - for stdin")
    return documents(docs, None, input_format)


def find(session: Session, out: Renderer, collection: str, filter: str | None = None, *,
         fields: str | None = None, sort: str | None = None, limit: int | None = None,
         skip: int | None = None) -> int:
    result = session.find(collection, parse_filter_text(filter), fields=parse_fields(fields),
                          sort=parse_sort(sort), limit=limit, skip=skip)
    return out.result(result)


def count(session: Session, out: Renderer, collection: str, filter: str | None = None) -> int:
    n = session.count(collection, parse_filter_text(filter))
    if out.fmt == "table":
        out.console.print(str(n), markup=False, highlight=False)
    else:
        out.rows([{"count": n}], ["count"])
    return n


def update(session: Session, out: Renderer, collection: str, filter: str, update: str, *,
           upsert: bool = False, one: bool = False) -> None:
    session.require_writable("update")
    where = parse_filter_text(filter)
    change = parse_json_arg(update, "update")
    out.write(session.update(collection, where, Update(change), upsert=upsert, one=one))


def delete(session: Session, out: Renderer, collection: str, filter: str | None = None, *,
           one: bool = False, everything: bool = False) -> None:
    session.require_writable("delete")
    where = parse_filter_text(filter)
    if where.is_empty and not everything:
        raise UsageError(f"refusing to delete every document in {collection} with an empty filter",
                         hint="pass --all to mean it")
    out.write(session.delete(collection, where, one=one))


def explain(session: Session, out: Renderer, collection: str, filter: str | None = None, *,
            fields: str | None = None, sort: str | None = None, limit: int | None = None,
            skip: int | None = None) -> None:
    where = parse_filter_text(filter)
    out.result(session.explain(collection, where, fields=parse_fields(fields), sort=parse_sort(sort), limit=limit,
                               skip=skip))


def query(session: Session, out: Renderer, text: str, *, params: list[str] | dict[str, Any] | None = None,
          ask: Callable[[str], bool] | None = None, script: bool = True) -> None:
    """Native statements, one after another, each result rendered in order; a destructive one asks
    first (``ask``: the shell's prompt; by default the terminal's, and no terminal means --yes is
    needed). The first error stops them. ``script``: the text is a whole script (the command line,
    not the shell's session), so a transaction it leaves open, at an error or at its end, is rolled
    back as psql does when its connection ends, with a note; --single-transaction wraps it in one."""
    if text == "-":
        text = sys.stdin.read()
    values = params if isinstance(params, dict) else parse_params(params)
    session.check_statement(text)   # a read-only session refuses the script before any of it runs
    single = script and bool(session.option("single_transaction"))
    if single:
        begin_script(session)
    try:
        for statement in session.statements(text) or [text]:
            native(session, out, statement, values, ask)
    except BaseException:
        if script:
            end_script(session, failed=True, single=single)
        raise
    if script:
        end_script(session, failed=False, single=single)


def native(session: Session, out: Renderer, text: str, values: dict[str, Any],
           ask: Callable[[str], bool] | None = None) -> None:
    """One native statement: refused on a read-only session when it may write, confirmed when it is
    destructive, run, rendered."""
    session.check_statement(text)
    reason = destructive_reason(session, text)
    if reason:
        confirm(session, reason, ask)
    out.result(session.execute(text, values))


def note(text: str) -> None:
    print(f"dbsh: note: {text}", file=sys.stderr)


def begin_script(session: Session) -> None:
    """--single-transaction: the whole script in one transaction, as psql -1 runs it."""
    if not session.capabilities.transactions:
        from dbsh.errors import Unsupported

        raise Unsupported(f"--single-transaction: {session.name} has no transactions")
    session.begin()


def end_script(session: Session, *, failed: bool, single: bool = False,
               notice: Callable[[str], None] = note) -> None:
    """The end of a script (or of the shell): a transaction still open is rolled back, not committed,
    as the server does when psql's connection ends, and the user is told; a --single-transaction
    script that ran to its end commits."""
    try:
        still_open = session.capabilities.transactions and session.in_transaction
    except Exception:  # noqa: BLE001 - a lost connection has no transaction left
        return
    if not still_open:
        return
    if single and not failed:
        session.commit()
        return
    try:
        session.rollback()
    except Exception:  # noqa: BLE001 - the server rolls it back when the connection ends anyway
        pass
    if failed:
        notice("the open transaction was rolled back (the script stopped at an error)")
    else:
        notice("the transaction left open at the end was rolled back (end it with COMMIT to keep its changes)")


def collections(session: Session, out: Renderer, pattern: str | None = None) -> None:
    names = session.collections()
    if pattern:
        from fnmatch import fnmatchcase

        names = [n for n in names if fnmatchcase(n, pattern)]
    out.result(Result(({"name": n} for n in names), ["name"]))


def is_pattern(name: str) -> bool:
    return any(c in name for c in "*?[")


def describe(session: Session, out: Renderer, collection: str) -> None:
    """One collection, or each one a pattern (peo*) matches: a titled table each on a terminal,
    rows with a "collection" field otherwise."""
    if not is_pattern(collection):
        out.result(session.describe(collection))
        return
    from fnmatch import fnmatchcase

    from dbsh.errors import NotFound

    names = [n for n in session.collections() if fnmatchcase(n, collection)]
    if not names:
        raise NotFound(f"no collection matches {collection!r}")
    for name in names:
        result = session.describe(name)
        if out.fmt == "table":
            out.console.print(f"{name}:", markup=False, highlight=False, style="bold")
            out.result(result)
        else:
            columns = ["collection", *(result.columns or [])]
            out.rows(({"collection": name, **row} for row in result), columns)


def databases(session: Session, out: Renderer) -> None:
    out.result(session.databases())


def connect_report(session: Session, out: Renderer) -> dict[str, Any]:
    info = dict(session.server_info())
    rtt = min(session.timed_ping() for _ in range(3))
    info = {"url": session.target.display(), **info, "round_trip_ms": round(rtt * 1000, 3)}
    if out.fmt == "table":
        where = info.get("database")
        version = f" {info['version']}" if info.get("version") else ""
        text = f"connected to {info['backend']}{version} at {info['url']}"
        if where:
            text += f" (database {where})"
        out.console.print(f"{text}; round trip {info['round_trip_ms']:.2f} ms", markup=False, highlight=False)
    else:
        out.rows([info], list(info))
    return info


# -- the verbs that open their own sessions ---------------------------------------------------------
def connect(call) -> int:
    from dbsh import config, context

    s = call.settings
    where = call.values.get("where")
    settings = s.merge(url=where, conn=None) if where and "://" in where else s
    if where and "://" not in where:
        settings = s.merge(conn=where)
        settings.url = None
    elif where:
        settings.conn = None
    out = Renderer(s.fmt)
    session = context.open_session(context.resolve(settings), yes=s.yes, options=s.options)
    try:
        connect_report(session, out)
        save = call.values.get("save")
        if save:
            path = config.save_profile(save, session.target.without_password(),
                                       readonly=call.values.get("readonly") or None, ssh=s.ssh)
            note = " (password not saved: use DBSH_PASSWORD or -W)" if session.target.password else ""
            print(f"saved connection {save!r} in {path}{note}", file=sys.stderr)
        elif sys.stdin.isatty() and sys.stdout.isatty():
            from dbsh import repl  # on a terminal the report opens the shell

            return repl.start(session.target, session=session, fmt=s.fmt, yes=s.yes, interactive=True)
    finally:
        session.close()
    return 0


def copy(call) -> int:
    from dbsh import bulk

    s = call.settings
    v = dict(call.values)
    bulk.copy_locations(Renderer(s.fmt), v.pop("source"), v.pop("destination"), settings=s, **v)
    return 0
