"""CouchDB driver over its HTTP API (couchdb-python's HTTP layer): a collection is a database.

find is Mango ``_find`` (paged with bookmarks where the server gives them, else skip); writes go
through ``_bulk_docs`` and report per-document conflicts. The native language is
``METHOD /path [JSON body]`` against the server's HTTP API.
"""

from __future__ import annotations

import codecs
import itertools
import json
import re
import sys
import time
from typing import Any, Iterable, Iterator
from urllib.parse import quote, urlsplit, urlunsplit

import couchdb
from couchdb import http as couch_http

from dbsh import query as q
from dbsh.drivers.base import Capabilities, Result, Session, WriteResult, batched, sampled_fields
from dbsh.errors import ConnectError, DbshError, NotFound, PartialWrite, QueryError, Unsupported, UsageError, one_line, redact

TIMEOUT = 10                 # seconds for connecting and for each response
PAGE = 1000                  # documents per _find page and per _bulk_docs write
IDS_REPORTED = 1000          # inserted ids listed in the summary up to this many documents
SAMPLE_SIZE = 200            # documents describe() samples for field names and types
METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD", "COPY")
DATABASE_NAME = re.compile(r"[a-z][a-z0-9_$()+/-]*\Z")
MANGO_OPERATORS = frozenset("""
$and $or $nor $not $eq $ne $gt $gte $lt $lte $in $nin $exists $type $size $mod $regex $elemMatch
$allMatch $keyMapMatch $all $beginsWith
""".split())


def connect(target) -> "CouchSession":
    return CouchSession(target)


def server_url(target) -> str:
    """couchdb://host:port/prefix -> http://host:port/prefix (couchdbs -> https), without credentials."""
    parts = urlsplit(target.url)
    scheme = {"couchdb": "http", "couchdbs": "https"}.get(parts.scheme.lower())
    if scheme is None:
        raise UsageError(f"not a CouchDB URL: {target.display()}")
    if not parts.hostname:
        raise UsageError(f"no host in {target.display()}", hint="e.g. couchdb://127.0.0.1:5984")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"bad port in {target.display()}") from None
    netloc = host + (f":{port}" if port else "")
    return urlunsplit((scheme, netloc, parts.path.rstrip("/") + "/", parts.query, ""))


def check_selector(doc: Any) -> dict:
    """Reject what Mango cannot run before it reaches the server (exit 2)."""
    if not isinstance(doc, dict):
        raise UsageError(f"a filter must be a JSON object, not {type(doc).__name__}")
    _check(doc)
    return doc


def _check(value: Any) -> None:
    if isinstance(value, list):
        for item in value:
            _check(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "$options":
                raise Unsupported("$options is not supported by CouchDB's $regex",
                                  hint="CouchDB: write (?i) in the pattern")
            if key.startswith("$") and key not in MANGO_OPERATORS:
                raise UsageError(f"unknown operator {key} for CouchDB Mango",
                                 hint="supported: " + " ".join(sorted(MANGO_OPERATORS)))
            _check(item)


class CouchSession(Session):
    capabilities = Capabilities(language="http", statement_terminator=None)
    name = "CouchDB"

    def __init__(self, target):
        super().__init__(target)
        self.url = server_url(target)
        session = couch_http.Session(timeout=TIMEOUT, retry_delays=[])
        self.client = couchdb.Server(self.url, session=session)   # couchdb-python Server, for migrate/bench
        if target.username:
            self.client.resource.credentials = (target.username, target.password or "")
        self._known: set[str] = set()

    # -- errors ----------------------------------------------------------------------------
    def _reason(self, e: BaseException) -> str:
        args = e.args[0] if e.args else ""
        if isinstance(e, couch_http.ServerError) and isinstance(args, tuple):
            status, error = args
            args = error if error else f"HTTP {status}"
        if isinstance(args, tuple):
            error, reason = (list(args) + [None, None])[:2]
            args = f"{error}: {reason}" if reason else str(error or "")
        if isinstance(args, bytes):
            args = args.decode("utf-8", "replace")
        return redact(one_line(str(args) or type(e).__name__), self.target.password)

    def _error(self, e: BaseException) -> DbshError:
        if isinstance(e, DbshError):
            return e
        if isinstance(e, (couch_http.Unauthorized,)):
            return ConnectError(f"cannot authenticate to {self.target.display()}: {self._reason(e)}")
        if isinstance(e, (OSError, couch_http.RedirectLimit)) and not isinstance(e, couch_http.HTTPError):
            text = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or type(e).__name__
            return ConnectError(f"cannot connect to {self.target.display()}: {one_line(text)}")
        if isinstance(e, couch_http.ServerError) and e.args and isinstance(e.args[0], tuple) and e.args[0][0] == 400:
            return UsageError(self._reason(e))
        return QueryError(self._reason(e))

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (couch_http.HTTPError, OSError, couch_http.RedirectLimit) as e:
            raise self._error(e) from None

    def _db(self, name: str):
        if not isinstance(name, str) or not DATABASE_NAME.match(name):
            raise UsageError(f"invalid CouchDB database name {name!r}",
                             hint="lowercase letters, digits and _$()+-/ , starting with a letter")
        return self.client.resource(name)

    def _existing(self, name: str, create: bool = False):
        resource = self._db(name)
        if name in self._known:
            return resource
        try:
            resource.head()
            exists = True
        except couch_http.ResourceNotFound:
            exists = False
        except (couch_http.HTTPError, OSError, couch_http.RedirectLimit) as e:
            raise self._error(e) from None
        if not exists:
            if not create:
                known = self.collections()
                hint = ("databases: " + ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")) if known \
                    else "the server has no databases"
                raise NotFound(f"no database named {name!r}", hint=hint + "; pass --create to make it")
            try:
                resource.put_json()
            except couch_http.PreconditionFailed:
                pass   # created meanwhile by someone else: fine
            except (couch_http.HTTPError, OSError, couch_http.RedirectLimit) as e:
                raise self._error(e) from None
        self._known.add(name)
        return resource

    def _post(self, resource, path: str, body: dict) -> dict:
        return self._call(resource.post_json, path, body=body)[2]

    # -- connection ------------------------------------------------------------------------
    def _welcome(self) -> dict:
        return self._call(self.client.resource.get_json)[2]

    def server_info(self) -> dict[str, Any]:
        info = self._welcome()
        vendor = (info.get("vendor") or {}).get("name") or ""
        backend = self.name if "couchdb" in vendor.lower() or not vendor else f"CouchDB API ({vendor})"
        return {"backend": backend, "version": info.get("version")}

    def ping(self) -> float:
        start = time.perf_counter()
        self._welcome()
        return time.perf_counter() - start

    # -- catalog ---------------------------------------------------------------------------
    def collections(self) -> list[str]:
        names = self._call(self.client.resource.get_json, "_all_dbs")[2]
        return sorted(n for n in names if not n.startswith("_"))

    def databases(self) -> Result:
        """CouchDB's databases are dbsh's collections."""
        return Result(({"name": n} for n in self.collections()), ["name"])

    def describe(self, name: str) -> Result:
        resource = self._existing(name)
        indexes = self._call(resource.get_json, "_index")[2].get("indexes", [])
        sample = self._call(resource.get_json, "_all_docs", include_docs="true", limit=SAMPLE_SIZE)[2]["rows"]
        docs = [r["doc"] for r in sample if r.get("doc") and not r["id"].startswith("_design/")]
        indexed: dict[str, list[str]] = {}
        for index in indexes:
            for spec in (index.get("def") or {}).get("fields") or []:
                for field in spec:
                    indexed.setdefault(field, []).append(index.get("name") or "?")
        return sampled_fields(docs, _type_name, indexed, first=lambda path: path.startswith("_"))

    # -- Mango paging ----------------------------------------------------------------------
    def _mango(self, where: q.Filter, fields=None, sort=None, limit=None, skip=None) -> dict[str, Any]:
        body: dict[str, Any] = {"selector": check_selector(where.doc)}
        if fields:
            body["fields"] = list(fields)
        if sort:
            body["sort"] = [{f: "desc" if d < 0 else "asc"} for f, d in sort]
        if skip:
            body["skip"] = skip
        if limit is not None:
            body["limit"] = limit
        return body

    def _pages(self, resource, body: dict[str, Any], name: str) -> Iterator[list[dict]]:
        """Mango pages of at most PAGE documents: bookmarks where the server has them, else skip."""
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
            try:
                answer = self._post(resource, "_find", request)
            except UsageError as e:
                if "sort" in e.message.lower() and sort_fields(body):
                    raise UsageError(e.message, hint="CouchDB sorts only with an index: dbsh query 'POST /"
                                     f"{name}/_index {json.dumps({'index': {'fields': sort_fields(body)}})}'") from None
                raise
            docs = answer.get("docs") or []
            warning = answer.get("warning")
            if warning and not warned and "index" in warning.lower():
                warned = True
                print(f"dbsh: note: no index serves this query on {name}: CouchDB reads every document "
                      f"({warning.strip()})", file=sys.stderr)
            if docs:
                yield docs
            if len(docs) < page:
                return
            if remaining is not None:
                remaining -= len(docs)
            new_bookmark = answer.get("bookmark")
            if new_bookmark and new_bookmark != "nil":
                bookmark = new_bookmark
            else:
                bookmark = None
                skip += len(docs)

    def _matching(self, resource, where: q.Filter, name: str, fields=None, one=False) -> list[dict]:
        """Every match (only the given fields), read fully before anything is written, so writes cannot
        shift the pages still to be read."""
        body = self._mango(where, fields=fields, limit=1 if one else None)
        return [doc for page in self._pages(resource, body, name) for doc in page]

    # -- uniform verbs ---------------------------------------------------------------------
    def find(self, name, where, *, fields=None, sort=None, limit=None, skip=None) -> Result:
        body = self._mango(where, fields, sort, limit, skip)
        resource = self._existing(name)
        pages = self._pages(resource, body, name)
        first = next(pages, [])   # the first page now: a bad query fails before any output

        def rows() -> Iterator[dict]:
            yield from first
            for page in pages:
                yield from page

        return Result(rows(), None, close=pages.close)

    def count(self, name, where) -> int:
        body = self._mango(where, fields=["_id"])
        resource = self._existing(name)
        return sum(len(page) for page in self._pages(resource, body, name))

    def insert(self, name, docs: Iterable[dict], *, batch=1000, create=False, progress=None) -> WriteResult:
        resource = self._existing(name, create=create)
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
                results = self._post(resource, "_bulk_docs", {"docs": chunk})
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
        check_selector(where.doc)
        resource = self._existing(name)
        matches = self._matching(resource, where, name, one=one)
        if not matches:
            if not upsert:
                return WriteResult("updated", name, 0, matched=0)
            doc = q.apply_update(changes, q.equalities(where.ast))
            results = self._post(resource, "_bulk_docs", {"docs": [doc]})
            failed = [r for r in results if r.get("error")]
            if failed:
                raise QueryError(_failures("upserted", failed, 1))
            return WriteResult("upserted", name, 1, ids=[results[0]["id"]], matched=0)
        changed = ([new for doc in chunk if (new := q.apply_update(changes, doc)) != doc]
                   for chunk in batched(matches, PAGE))
        written = self._bulk_write(resource, changed, name, "updated", "in", len(matches))
        return WriteResult("updated", name, written, matched=len(matches))

    def _bulk_write(self, resource, chunks: Iterable[list[dict]], name: str, action: str, preposition: str,
                    matched: int) -> int:
        """Write chunks of changed documents (with their _rev) through _bulk_docs; conflicts are
        reported per document, with how many of the matching documents were written."""
        written = 0
        for docs in chunks:
            if not docs:
                continue
            try:
                results = self._post(resource, "_bulk_docs", {"docs": docs})
            except DbshError as e:
                raise type(e)(_partial(e.message, written, f"{action} {preposition}", name)) from None
            failed = [r for r in results if r.get("error")]
            written += len(results) - len(failed)
            if failed:
                raise QueryError(_failures(action, failed, len(docs)) +
                                 f" ({written} of {matched} matching documents were {action})")
        return written

    def delete(self, name, where, *, one=False) -> WriteResult:
        check_selector(where.doc)
        resource = self._existing(name)
        matches = self._matching(resource, where, name, fields=["_id", "_rev"], one=one)
        tombstones = ([{"_id": d["_id"], "_rev": d["_rev"], "_deleted": True} for d in chunk]
                      for chunk in batched(matches, PAGE))
        return WriteResult("deleted", name, self._bulk_write(resource, tombstones, name, "deleted", "from",
                                                             len(matches)))

    def explain(self, name, where, **find_options) -> Result:
        body = self._mango(where, find_options.get("fields"), find_options.get("sort"),
                           find_options.get("limit"), find_options.get("skip"))
        resource = self._existing(name)
        plan = self._post(resource, "_explain", body)
        index = plan.get("index") or {}
        fields = [f for spec in (index.get("def") or {}).get("fields") or [] for f in spec]
        row = {"index": index.get("name"), "type": index.get("type"), "design_doc": index.get("ddoc"),
               "fields": ", ".join(fields) or None, "selector": plan.get("selector"),
               "full_scan": index.get("type") == "special" and index.get("name") == "_all_docs"}
        return Result([row], list(row))

    # -- native HTTP -----------------------------------------------------------------------
    def execute(self, text: str, params: dict[str, Any] | None = None) -> Result:
        if params:
            raise Unsupported("-p parameters are not supported for CouchDB: write values in the path or body")
        method, path, body = parse_request(text)
        url = self.url.rstrip("/") + path
        headers = {"Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body)
            headers["Content-Type"] = "application/json"
        status, msg, data = self._call(self.client.resource.session.request, method, url, body=payload,
                                       headers=headers, credentials=self.client.resource.credentials)
        if data is None:
            return Result.status(f"HTTP {status}")
        ctype = (msg.get("content-type", "") if msg else "") or ""
        if "json" not in ctype:
            raw = data.read()
            _close(data)
            return Result([{"body": raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw}], ["body"])
        stream = JsonStream(data)
        try:
            first = stream.rows()
            head = list(itertools.islice(first, 1))   # parse errors surface before any output
        except ValueError as e:
            _close(data)
            raise QueryError(f"the server sent malformed JSON: {one_line(str(e))}") from None
        except BaseException:
            _close(data)
            raise

        def rows() -> Iterator[dict]:
            yield from head
            try:
                yield from first
            except ValueError as e:
                raise QueryError(f"the server sent malformed JSON: {one_line(str(e))}") from None
            except OSError as e:
                raise self._error(e) from None

        return Result(rows(), None, close=lambda: _close(data))


def _close(data) -> None:
    close = getattr(data, "close", None)
    if close is not None:
        close()


class JsonStream:
    """Rows of a JSON answer read incrementally, so a big _all_docs, view or _changes answer streams:
    the array under "rows", "docs" or "results" yields one element at a time; any other answer (an
    object, an array, a scalar) becomes rows as in response_rows()."""

    ARRAYS = ("rows", "docs", "results")
    CHUNK = 64 * 1024

    def __init__(self, data):
        self.data = data
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.decoder = json.JSONDecoder()
        self._utf8 = codecs.getincrementaldecoder("utf-8")()

    def _more(self) -> bool:
        if self.eof:
            return False
        chunk = self.data.read(self.CHUNK)
        if isinstance(chunk, str):
            chunk = chunk.encode("utf-8")
        self.eof = not chunk
        text = self._utf8.decode(chunk or b"", final=self.eof)   # keeps a split UTF-8 sequence for later
        self.buf = self.buf[self.pos:] + text
        self.pos = 0
        return bool(chunk)

    def _peek(self) -> str:
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos].isspace():
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more() and self.pos >= len(self.buf):
                return ""

    def _expect(self, char: str) -> None:
        if self._peek() != char:
            raise ValueError(f"expected {char!r} at offset {self.pos}")
        self.pos += 1

    def _value(self) -> Any:
        """One complete JSON value; a value that ends at the buffer's end is re-read with more data
        (a number may go on)."""
        self._peek()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
                if end < len(self.buf) or self.eof:
                    self.pos = end
                    return value
            except json.JSONDecodeError:
                if self.eof:
                    raise
            self._more()

    def rows(self) -> Iterator[dict]:
        first = self._peek()
        if first == "{":
            self.pos += 1
            answer: dict[str, Any] = {}
            while self._peek() != "}":
                if answer or self._streamed:
                    self._expect(",")
                key = self._value()
                self._expect(":")
                if key in self.ARRAYS and self._peek() == "[":
                    self._streamed = True
                    self.pos += 1
                    n = 0
                    while self._peek() != "]":
                        if n:
                            self._expect(",")
                        item = self._value()
                        yield item if isinstance(item, dict) else {"value": item}
                        n += 1
                    self.pos += 1
                else:
                    answer[key] = self._value()
                if not self._peek():
                    raise ValueError("unexpected end of the answer")
            if not self._streamed:
                yield answer
        elif first == "[":
            self.pos += 1
            n = 0
            while self._peek() != "]":
                if n:
                    self._expect(",")
                item = self._value()
                yield item if isinstance(item, dict) else {"value": item}
                n += 1
        else:
            yield {"value": self._value()}

    _streamed = False


def sort_fields(body: dict) -> list[str]:
    return [field for spec in body.get("sort") or [] for field in spec]


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
