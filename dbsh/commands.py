"""The verbs as plain functions: the CLI and the REPL's backslash commands both call these.

Each takes an open Session and a Renderer, parses the user's text, runs, and renders.
"""

from __future__ import annotations

import sys
from typing import Any, Iterable

from dbsh.drivers.base import Result, Session
from dbsh.errors import UsageError
from dbsh.inputs import open_documents, parse_document, parse_json_arg
from dbsh.output import Renderer
from dbsh.query import Filter, Update, parse_fields, parse_sort


def parse_filter_text(text: str | None) -> Filter:
    if text is None or not text.strip():
        return Filter({})
    return Filter(parse_document(text, "filter"))


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


def refuse_if_readonly(session: Session, verb: str) -> None:
    """A read-only profile (readonly = true) or \\readonly on: the uniform writes are refused here,
    whatever the backend; native statements are refused by the server where it can enforce it."""
    if session.readonly:
        raise UsageError(f"read-only connection: {verb} is refused"
                         + (f" (profile {session.target.profile!r} has readonly = true)"
                            if session.target.readonly and session.target.profile else ""))


def insert(session: Session, out: Renderer, collection: str, docs: list[str], *, file: str | None = None,
           input_format: str | None = None, batch: int = 1000, create: bool = False, progress=None,
           schema: str | None = None, errors: str | None = None, max_errors: int | None = None,
           resume: bool = False) -> None:
    refuse_if_readonly(session, "insert")
    """JSON arguments go to the driver in one call; a file or stdin streams through dbsh.copy (batches,
    a progress bar on a terminal, bad rows to --errors, a checkpoint for --resume)."""
    if batch < 1:
        raise UsageError("--batch must be at least 1")
    if file and docs:
        raise UsageError("give documents as arguments or with --file, not both")
    path = file or ("-" if docs == ["-"] or (not docs and not sys.stdin.isatty()) else None)
    if path is None:
        if errors or max_errors is not None or resume or schema:
            raise UsageError("--errors, --max-errors, --resume and --schema apply to --file input")
        source = documents(docs, None, input_format)
        out.write(session.insert(collection, source, batch=batch, create=create, progress=progress))
        return
    from dbsh import copy

    out.write(copy.import_file(session, collection, path, input_format=input_format, schema=schema,
                               batch=batch, create=create, errors=errors, max_errors=max_errors, resume=resume,
                               progress=progress if isinstance(progress, bool) else None))


def find(session: Session, out: Renderer, collection: str, filter_text: str | None = None, *,
         fields: str | None = None, sort: str | None = None, limit: int | None = None,
         skip: int | None = None) -> int:
    result = session.find(collection, parse_filter_text(filter_text), fields=parse_fields(fields),
                          sort=parse_sort(sort), limit=limit, skip=skip)
    return out.result(result)


def count(session: Session, out: Renderer, collection: str, filter_text: str | None = None) -> int:
    n = session.count(collection, parse_filter_text(filter_text))
    if out.fmt == "table":
        out.console.print(str(n), markup=False, highlight=False)
    else:
        out.rows([{"count": n}], ["count"])
    return n


def update(session: Session, out: Renderer, collection: str, filter_text: str, update_text: str, *,
           upsert: bool = False, one: bool = False) -> None:
    refuse_if_readonly(session, "update")
    where = parse_filter_text(filter_text)
    change = parse_json_arg(update_text, "update")
    out.write(session.update(collection, where, Update(change), upsert=upsert, one=one))


def delete(session: Session, out: Renderer, collection: str, filter_text: str | None, *,
           one: bool = False, everything: bool = False) -> None:
    refuse_if_readonly(session, "delete")
    where = parse_filter_text(filter_text)
    if where.is_empty and not everything:
        raise UsageError(f"refusing to delete every document in {collection} with an empty filter",
                         hint="pass --all to mean it")
    out.write(session.delete(collection, where, one=one))


def explain(session: Session, out: Renderer, collection: str, filter_text: str | None = None, **options) -> None:
    where = parse_filter_text(filter_text)
    out.result(session.explain(collection, where, fields=parse_fields(options.get("fields")),
                               sort=parse_sort(options.get("sort")), limit=options.get("limit"),
                               skip=options.get("skip")))


def query(session: Session, out: Renderer, text: str, params: dict[str, Any] | None = None) -> None:
    if text == "-":
        text = sys.stdin.read()
    if session.readonly and not session.server_readonly:
        from dbsh.statements import writes

        if writes(text, session.capabilities.language):
            raise UsageError(f"read-only connection: refusing a statement that may write on {session.name}")
    out.result(session.execute(text, params or {}))


def collections(session: Session, out: Renderer) -> None:
    out.result(Result(({"name": n} for n in session.collections()), ["name"]))


def describe(session: Session, out: Renderer, name: str) -> None:
    out.result(session.describe(name))


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
