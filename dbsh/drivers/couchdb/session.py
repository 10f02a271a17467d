"""The CouchDB session: a collection is a database, the native language ``METHOD /path [JSON body]``.

find is Mango ``_find`` (paged with bookmarks where the server gives them, else skip; each page read
as a stream); writes go through ``_bulk_docs`` and report per-document conflicts.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote

from dbsh import query as q
from dbsh.drivers.base import Capabilities, Result, Session, WriteResult, batched, sampled_fields
from dbsh.drivers.client_side import find_steps
from dbsh.drivers.couchdb.client import CouchClient, Rows, database_path, server_url
from dbsh.drivers.couchdb.mango import FindPlan, find_plan, parse
from dbsh.errors import DbshError, NotFound, PartialWrite, QueryError, Unsupported, UsageError

PAGE = 1000                  # documents per _find page and per _bulk_docs write
IDS_REPORTED = 1000          # inserted ids listed in the summary up to this many documents
SAMPLE_SIZE = 200            # documents describe() samples for field names and types
METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD", "COPY")


def connect(target) -> CouchSession:
    return CouchSession(target)


class CouchSession(Session):
    capabilities = Capabilities(language="http", statement_terminator=None)
    internal_fields = ("_rev",)     # a revision means nothing elsewhere (and CouchDB refuses it)
    natural_order = ("_id",)
    name = "CouchDB"

    def __init__(self, target):
        super().__init__(target)
        self.url = server_url(target)
        # the native client: dbsh's CouchDB HTTP client (its httpx.Client is .client.http)
        self.client = CouchClient(self.url, username=target.username, password=target.password,
                                  display=target.display(), timeout=self.connect_timeout)
        self._known: set[str] = set()

    def close(self) -> None:
        self.client.close()

    def _existing(self, name: str, create: bool = False) -> str:
        """The path of database ``name``, made first with ``create``; a missing one is an error
        that lists the databases there are."""
        path = database_path(name)
        if name in self._known:
            return path
        if not self.client.exists(name):
            if not create:
                known = self.collections()
                hint = ("databases: " + ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")) if known \
                    else "the server has no databases"
                raise NotFound(f"no database named {name!r}", hint=hint + "; pass --create to make it")
            self.client.create(name)   # False: created meanwhile by someone else, which is fine
        self._known.add(name)
        return path

    # -- connection ------------------------------------------------------------------------
    def server_info(self) -> dict[str, Any]:
        info = self.client.greet()
        vendor = (info.get("vendor") or {}).get("name") or ""
        backend = self.name if "couchdb" in vendor.lower() or not vendor else f"CouchDB API ({vendor})"
        return {"backend": backend, "version": info.get("version")}

    def ping(self) -> float:
        start = time.perf_counter()
        self.client.request("GET", "/")
        return time.perf_counter() - start

    # -- catalog ---------------------------------------------------------------------------
    def collections(self) -> list[str]:
        return sorted(n for n in self.client.request("GET", "/_all_dbs") if not n.startswith("_"))

    def databases(self) -> Result:
        """CouchDB's databases are dbsh's collections."""
        return Result(({"name": n} for n in self.collections()), ["name"])

    def describe(self, name: str) -> Result:
        path = self._existing(name)
        indexes = self.client.request("GET", f"{path}/_index").get("indexes", [])
        with self.client.all_docs(name, include_docs=True, limit=SAMPLE_SIZE) as rows:
            docs = [r["doc"] for r in rows if r.get("doc") and not r["id"].startswith("_design/")]
        indexed: dict[str, list[str]] = {}
        for index in indexes:
            for spec in (index.get("def") or {}).get("fields") or []:
                for field in spec:
                    indexed.setdefault(field, []).append(index.get("name") or "?")
        return sampled_fields(docs, _type_name, indexed, first=lambda path: path.startswith("_"))

    # -- Mango paging ----------------------------------------------------------------------
    @property
    def stand_in(self) -> bool:
        """Whether the server is pouchdb-server, the CouchDB API stand-in of the tests (its welcome
        says so), whose Mango differs from CouchDB's (see mango.find_plan)."""
        welcome = self.client.greet()
        vendor = str((welcome.get("vendor") or {}).get("name") or "")
        return "express-pouchdb" in welcome or "pouchdb" in vendor.lower()

    def _plan(self, where: q.Filter, fields=None, sort=None, limit=None, skip=None) -> FindPlan:
        return find_plan(where, fields, sort, limit, skip, stand_in=self.stand_in)

    def _run(self, path: str, plan: FindPlan, name: str, *, note: bool = True) -> Iterator[dict]:
        """The documents of a find: what the server sends for the plan's body, then dbsh's own steps."""
        if plan.reads_all and note:
            why = "pouchdb-server's Mango is not CouchDB's" if self.stand_in else "Mango cannot say this filter"
            self.notice(f"dbsh: note: every document of {name} is read and filtered by dbsh ({why})")
            note = False
        return find_steps(self._docs(path, dict(plan.body), name, note=note), check=plan.check, sort=plan.sort,
                          skip=plan.skip, limit=plan.limit, fields=plan.fields)

    def _docs(self, path: str, body: dict[str, Any], name: str, *, note: bool = True) -> Iterator[dict]:
        """The documents a _find body selects, in pages of at most PAGE (bookmarks where the server
        has them, else skip), each page streamed as it arrives. ``note``: say when no index serves it."""
        remaining = body.pop("limit", None)
        skip = body.pop("skip", 0)
        bookmark = None
        warned = False
        while remaining is None or remaining > 0:
            page = PAGE if remaining is None else min(PAGE, remaining)
            request = {**body, "limit": page}
            if bookmark:
                request["bookmark"] = bookmark
            elif skip:
                request["skip"] = skip
            rows = self.client.rows("POST", f"{path}/_find", body=request)
            n = 0
            with rows:
                for doc in rows:
                    n += 1
                    yield doc
            answer = rows.rest
            warning = answer.get("warning")
            if warning and note and not warned and "index" in warning.lower():
                warned = True
                self.notice(f"dbsh: note: no index serves this query on {name}: CouchDB reads every document "
                            f"({warning.strip()})")
            if n < page:
                return
            if remaining is not None:
                remaining -= n
            new_bookmark = answer.get("bookmark")
            if new_bookmark and new_bookmark != "nil":
                bookmark = new_bookmark
            else:
                bookmark = None
                skip += n

    def _matching(self, path: str, where: q.Filter, name: str, fields=None, one=False) -> list[dict]:
        """Every match (only the given fields), read fully before anything is written, so writes cannot
        shift the pages still to be read."""
        return list(self._run(path, self._plan(where, fields=fields, limit=1 if one else None), name, note=False))

    # -- uniform verbs ---------------------------------------------------------------------
    def find(self, name, where, *, fields=None, sort=None, limit=None, skip=None) -> Result:
        plan = self._plan(where, fields, sort, limit, skip)
        docs = self._run(self._existing(name), plan, name)
        head = list(itertools.islice(docs, 1))   # the first request now: a bad query fails before any output
        return Result(itertools.chain(head, docs), None, close=docs.close)

    def count(self, name, where) -> int:
        plan = self._plan(where, fields=["_id"])
        return sum(1 for _ in self._run(self._existing(name), plan, name))

    def _bulk_docs(self, path: str, docs: list[dict]) -> list[dict]:
        return self.client.request("POST", f"{path}/_bulk_docs", body={"docs": docs})

    def insert(self, name, docs: Iterable[dict], *, batch=1000, create=False, progress=None) -> WriteResult:
        path = self._existing(name, create=create)
        inserted = 0
        offset = 0
        ids: list[str] | None = []
        for chunk in batched(docs, min(batch, PAGE)):
            for doc in chunk:
                if not isinstance(doc, dict):
                    raise UsageError(f"a document must be a JSON object, not {type(doc).__name__}")
                if "_rev" in doc:
                    raise UsageError("insert documents must not carry _rev", hint="use update to change documents")
            try:
                results = self._bulk_docs(path, chunk)
            except DbshError as e:
                raise type(e)(_partial(e.message, inserted, "inserted into", name)) from None
            ok = [r for r in results if not r.get("error")]
            failed = [r for r in results if r.get("error")]
            inserted += len(ok)
            if ids is not None:
                ids.extend(r["id"] for r in ok)
                if len(ids) > IDS_REPORTED:
                    ids = None
            if failed:   # _bulk_docs answers in the order of the documents sent
                raise PartialWrite(_failures("inserted", failed, len(chunk)) +
                                   f" ({inserted} documents were inserted into {name})", written=inserted,
                                   rejected=[(offset + i, f"{r.get('error')}: {r.get('reason', '')}".rstrip(": "))
                                             for i, r in enumerate(results) if r.get("error")])
            offset += len(chunk)
            if progress:
                progress(len(chunk))
        return WriteResult("inserted", name, inserted, ids=ids)

    def update(self, name, where, change, *, upsert=False, one=False) -> WriteResult:
        changes = change.changes    # $set $unset $inc; anything else is bad input (exit 2)
        if any(c.field.startswith("_") for c in changes):
            raise UsageError("CouchDB's _id, _rev and other _ fields cannot be changed")
        parse(where)
        path = self._existing(name)
        matches = self._matching(path, where, name, one=one)
        if not matches:
            if not upsert:
                return WriteResult("updated", name, 0, matched=0)
            doc = q.apply_update(changes, q.equalities(where.ast))
            results = self._bulk_docs(path, [doc])
            failed = [r for r in results if r.get("error")]
            if failed:
                raise QueryError(_failures("upserted", failed, 1))
            return WriteResult("upserted", name, 1, ids=[results[0]["id"]], matched=0)
        # every change worked out before the first write: one that cannot be made ($inc of a string or a
        # null, as MongoDB refuses it) stops the update with nothing written
        changed = [new for doc in matches if (new := q.apply_update(changes, doc)) != doc]
        written = self._bulk_write(path, batched(changed, PAGE), name, "updated", "in", len(matches))
        return WriteResult("updated", name, written, matched=len(matches))

    def _bulk_write(self, path: str, chunks: Iterable[list[dict]], name: str, action: str, preposition: str,
                    matched: int) -> int:
        """Write chunks of changed documents (with their _rev) through _bulk_docs; conflicts are
        reported per document, with how many of the matching documents were written."""
        written = 0
        for docs in chunks:
            if not docs:
                continue
            try:
                results = self._bulk_docs(path, docs)
            except DbshError as e:
                raise type(e)(_partial(e.message, written, f"{action} {preposition}", name)) from None
            failed = [r for r in results if r.get("error")]
            written += len(results) - len(failed)
            if failed:
                raise QueryError(_failures(action, failed, len(docs)) +
                                 f" ({written} of {matched} matching documents were {action})")
        return written

    def delete(self, name, where, *, one=False) -> WriteResult:
        parse(where)
        path = self._existing(name)
        matches = self._matching(path, where, name, fields=["_id", "_rev"], one=one)
        tombstones = ([{"_id": d["_id"], "_rev": d["_rev"], "_deleted": True} for d in chunk]
                      for chunk in batched(matches, PAGE))
        return WriteResult("deleted", name, self._bulk_write(path, tombstones, name, "deleted", "from",
                                                             len(matches)))

    def explain(self, name, where, **find_options) -> Result:
        """CouchDB's plan for the _find dbsh sends, and what dbsh does itself on the answer
        (``dbsh_does``: filter, sort, skip, limit)."""
        steps = self._plan(where, find_options.get("fields"), find_options.get("sort"),
                           find_options.get("limit"), find_options.get("skip"))
        path = self._existing(name)
        plan = self.client.request("POST", f"{path}/_explain", body=steps.body)
        index = plan.get("index") or {}
        fields = [f for spec in (index.get("def") or {}).get("fields") or [] for f in spec]
        row = {"index": index.get("name"), "type": index.get("type"), "design_doc": index.get("ddoc"),
               "fields": ", ".join(fields) or None, "selector": plan.get("selector"),
               "full_scan": index.get("type") == "special" and index.get("name") == "_all_docs",
               "dbsh_does": ", ".join(steps.client_side) or None}
        return Result([row], list(row))

    # -- native HTTP -----------------------------------------------------------------------
    def execute(self, text: str, params: dict[str, Any] | None = None) -> Result:
        """``METHOD /path [JSON body]``: a JSON answer streams as rows (the elements of its "rows",
        "docs" or "results", or each value of a continuous feed); other answers are one body row."""
        if params:
            raise Unsupported("-p parameters are not supported for CouchDB: write values in the path or body")
        method, path, body = parse_request(text)
        response = self.client.open(method, path, body=body)
        if method == "HEAD":
            response.close()
            return Result.status(f"HTTP {response.status_code}")
        chunks = response.iter_bytes()
        if "json" not in response.headers.get("content-type", ""):
            # some servers label JSON text/plain (pouchdb-server's _changes): JSON is what it starts as
            first = next((c for c in chunks if c.strip()), b"")
            if first.lstrip()[:1] not in (b"{", b"["):
                try:
                    raw = first + b"".join(chunks)
                finally:
                    response.close()
                if not raw:
                    return Result.status(f"HTTP {response.status_code}")
                return Result([{"body": raw.decode("utf-8", "replace")}], ["body"])
            chunks = itertools.chain([first], chunks)
        rows = Rows(self.client, response, chunks)
        head = list(itertools.islice(rows, 1))   # a malformed answer fails before any output
        return Result(itertools.chain(head, rows), None, close=rows.close)


def parse_request(text: str) -> tuple[str, str, Any]:
    """``METHOD /path [JSON body]`` -> (method, path with its query string, body or None)."""
    text = text.strip()
    if not text:
        raise UsageError("empty query", hint="e.g. GET /mydb/_all_docs?limit=5")
    head, _, rest = text.partition(" ")
    method = head.upper()
    if method not in METHODS:
        raise UsageError(f"unknown HTTP method {head!r}", hint="write METHOD /path [JSON body], e.g. GET /_all_dbs")
    rest = rest.strip()
    path, _, body_text = rest.partition(" ") if " " in rest else (rest, "", "")
    if "\n" in path:
        path, _, more = path.partition("\n")
        body_text = more + body_text
    if not path.startswith("/"):
        raise UsageError(f"the path must start with /, got {path[:40]!r}", hint="e.g. GET /mydb/_all_docs")
    # keep the user's escapes; encode what may not appear raw in a URL
    path = quote(path, safe="/?&=%:+,;@$!*'()[]~-._")
    body = None
    if body_text.strip():
        try:
            body = json.loads(body_text)
        except json.JSONDecodeError as e:
            raise UsageError(f"malformed JSON body: {e.msg} at line {e.lineno} column {e.colno}") from None
    return method, path, body


def _failures(action: str, failed: list[dict], total: int) -> str:
    shown = "; ".join(f"{r.get('id')}: {r.get('error')}" + (f" ({r['reason']})" if r.get("reason") else "")
                      for r in failed[:5])
    more = f"; and {len(failed) - 5} more" if len(failed) > 5 else ""
    return f"{len(failed)} of {total} documents in this batch were not {action}: {shown}{more}"


def _partial(message: str, done: int, action: str, name: str) -> str:
    return f"{message} ({done} documents were {action} {name} before this error)" if done else message


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", dict: "object",
            list: "array"}.get(type(value), type(value).__name__)
