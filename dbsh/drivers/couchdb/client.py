"""The HTTP client of the CouchDB backend: one ``httpx.Client`` (kept-alive connections, Basic auth),
CouchDB's error answers turned into dbsh errors, and answers read as streams of rows (``_all_docs``,
``_find``, ``_changes``, views) rather than loaded whole.

Timeouts: the connect timeout bounds connecting (every time) and the server's first reply: before its
first request the client asks for the server's welcome (``GET /``), bounded; every later reply waits
as long as it takes (a long-poll feed, a _find without an index over a big database).

The session, the migration store and the bench adapter all talk to CouchDB through it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from dbsh.drivers.couchdb.stream import JsonStream
from dbsh.errors import ConnectError, DbshError, QueryError, UsageError, one_line, redact

TIMEOUT = 10                 # seconds for connecting and for the server's first reply (the session's connect timeout)
DATABASE_NAME = re.compile(r"[a-z][a-z0-9_$()+/-]*\Z")


class Refused(QueryError):
    """CouchDB answered with an error status (exit 1): ``status``, ``error``, ``reason``."""

    def __init__(self, message: str, *, status: int, error: str | None, reason: str | None):
        super().__init__(message)
        self.status, self.error, self.reason = status, error, reason


class Missing(Refused):
    """404: no such database, document or endpoint."""


class Conflict(Refused):
    """409 (a document's _rev is not the current one) or 412 (the database exists already)."""


class BadRequest(UsageError):
    """400: CouchDB rejected the request itself (exit 2)."""

    def __init__(self, message: str, *, status: int = 400, error: str | None = None, reason: str | None = None):
        super().__init__(message)
        self.status, self.error, self.reason = status, error, reason


def server_url(target) -> str:
    """couchdb://host:port/prefix -> http://host:port/prefix/ (couchdbs -> https), without credentials."""
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


def database_path(name: str) -> str:
    """``/name`` for a valid database name (a / in it is escaped, as CouchDB wants)."""
    if not isinstance(name, str) or not DATABASE_NAME.match(name):
        raise UsageError(f"invalid CouchDB database name {name!r}",
                         hint="lowercase letters, digits and _$()+-/ , starting with a letter")
    return "/" + quote(name, safe="")


def doc_path(db: str, doc_id: str) -> str:
    return f"{database_path(db)}/{quote(doc_id, safe='')}"


class Rows:
    """The rows of a streamed JSON answer (see JsonStream), read as they arrive; ``rest`` is the rest
    of the answer once the rows are read. Close it (or read it to the end) to free the connection."""

    def __init__(self, client: CouchClient, response: httpx.Response, chunks: Iterator[bytes] | None = None):
        self.client = client
        self.response = response
        self.stream = JsonStream(response.iter_bytes() if chunks is None else chunks)
        self._rows = self.stream.rows()

    def __iter__(self) -> Rows:
        return self

    def __next__(self) -> dict:
        try:
            return next(self._rows)
        except StopIteration:
            self.close()
            raise
        except ValueError as e:
            self.close()
            raise QueryError(f"the server sent malformed JSON: {one_line(str(e))}") from None
        except httpx.HTTPError as e:
            self.close()
            raise self.client.transport_error(e) from None

    @property
    def rest(self) -> dict[str, Any]:
        return self.stream.rest

    def close(self) -> None:
        self.response.close()

    def __enter__(self) -> Rows:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class CouchClient:
    """CouchDB's HTTP API at ``base`` (``http(s)://host:port/prefix/``)."""

    def __init__(self, base: str, *, username: str | None = None, password: str | None = None,
                 display: str | None = None, timeout: float = TIMEOUT):
        self.base = base
        self.display = display or base
        self.password = password
        self.timeout = timeout
        self.welcome: dict | None = None    # the server's answer to GET /, once it has answered
        auth = httpx.BasicAuth(username, password or "") if username else None
        # connecting is bounded; a reply is waited for as long as it takes (the first one: see greet)
        self.http = httpx.Client(base_url=base, auth=auth, follow_redirects=True,
                                 timeout=httpx.Timeout(timeout, read=None, write=None, pool=None),
                                 headers={"Accept": "application/json", "User-Agent": "dbsh"})

    # -- errors ------------------------------------------------------------------------------
    def _text(self, text: str) -> str:
        return redact(one_line(text), self.password)

    def transport_error(self, e: Exception, *, connecting: bool = False) -> DbshError:
        """A request that got no (complete) answer, as one line (exit 3; exit 2 for a bad URL).
        ``connecting``: the server's first reply, where anything but an answer means it cannot be used."""
        if isinstance(e, (httpx.InvalidURL, httpx.UnsupportedProtocol)):
            return UsageError(f"bad CouchDB URL {self.display}: {self._text(str(e))}")
        reason = re.sub(r"^\[Errno -?\d+\]\s*", "", str(e)) or type(e).__name__
        if isinstance(e, httpx.RemoteProtocolError) and connecting:   # another protocol listens there
            return ConnectError(f"cannot connect to {self.display}: the server there does not speak HTTP "
                                f"({self._text(reason)})")
        if isinstance(e, httpx.TimeoutException) and not isinstance(e, httpx.ConnectTimeout):
            return ConnectError(f"cannot connect to {self.display}: no answer within {self.timeout:g} s")
        if connecting or isinstance(e, (httpx.ConnectError, httpx.ConnectTimeout)):
            return ConnectError(f"cannot connect to {self.display}: {self._text(reason)}")
        return ConnectError(f"lost the connection to {self.display}: {self._text(reason)}")

    def answer_error(self, response: httpx.Response) -> DbshError:
        """An error answer (status >= 400) as the dbsh error that says what CouchDB said."""
        status = response.status_code
        error = reason = None
        try:
            body = response.json()
        except (ValueError, httpx.ResponseNotRead):
            body = None
        if isinstance(body, dict):
            error, reason = body.get("error"), body.get("reason")
        text = self._text(f"{error}: {reason}" if error and reason else str(error or reason or f"HTTP {status}"))
        if status == 401:
            return ConnectError(f"cannot authenticate to {self.display}: {text}")
        if status == 400:
            return BadRequest(text, status=status, error=error, reason=reason)
        kind = Missing if status == 404 else Conflict if status in (409, 412) else Refused
        return kind(text, status=status, error=error, reason=reason)

    # -- requests ----------------------------------------------------------------------------
    def _build(self, method: str, path: str, params: dict | None, body: Any) -> httpx.Request:
        content = None
        headers = {}
        if body is not None:
            content = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        # the path is relative to the base (which may carry a prefix): no leading / for httpx's merge
        return self.http.build_request(method, path.lstrip("/"), params=params, content=content, headers=headers)

    @contextmanager
    def streamed(self, method: str, path: str, *, params: dict | None = None, body: Any = None
                 ) -> Iterator[httpx.Response]:
        """A response whose body is not read yet; an error status raises (its body read first)."""
        response = self.open(method, path, params=params, body=body)
        try:
            yield response
        finally:
            response.close()

    def greet(self) -> dict:
        """The server's welcome (``GET /``), asked before the first request: connecting and this reply
        are bounded by the connect timeout, so a port where nothing answers, or where another protocol
        listens, is a ConnectError in time. A refused login is one too (exit 3)."""
        if self.welcome is not None:
            return self.welcome
        request = self._build("GET", "/", None, None)
        request.extensions["timeout"] = httpx.Timeout(self.timeout).as_dict()
        try:
            response = self.http.send(request)
        except httpx.HTTPError as e:
            raise self.transport_error(e, connecting=True) from None
        if response.status_code >= 400:
            error = self.answer_error(response)
            if isinstance(error, ConnectError):
                raise error
            raise ConnectError(f"cannot connect to {self.display}: GET / answers {error.message} "
                               "(not a CouchDB server?)")
        try:
            welcome = response.json()
        except ValueError:
            welcome = None
        if not isinstance(welcome, dict):
            raise ConnectError(f"cannot connect to {self.display}: the server there does not answer as CouchDB "
                               "does (GET / is not a JSON object)")
        self.welcome = welcome
        return welcome

    def open(self, method: str, path: str, *, params: dict | None = None, body: Any = None) -> httpx.Response:
        """Send a request and return the response with its body unread (the caller closes it); an
        error status raises, with CouchDB's reason."""
        if self.welcome is None:
            self.greet()
        try:
            response = self.http.send(self._build(method, path, params, body), stream=True)
        except httpx.HTTPError as e:
            raise self.transport_error(e) from None
        if response.status_code >= 400:
            try:
                response.read()
            except httpx.HTTPError:
                pass
            finally:
                response.close()
            raise self.answer_error(response)
        return response

    def request(self, method: str, path: str, *, params: dict | None = None, body: Any = None) -> Any:
        """A request whose answer is small: its JSON (None for an empty body)."""
        response = self.open(method, path, params=params, body=body)
        try:
            data = response.read()
        except httpx.HTTPError as e:
            raise self.transport_error(e) from None
        finally:
            response.close()
        if not data:
            return None
        try:
            return json.loads(data)
        except ValueError as e:
            raise QueryError(f"the server sent malformed JSON: {one_line(str(e))}") from None

    def rows(self, method: str, path: str, *, params: dict | None = None, body: Any = None) -> Rows:
        """The rows of a JSON answer, streamed (see Rows)."""
        return Rows(self, self.open(method, path, params=params, body=body))

    # -- what the migration store and bench need -----------------------------------------------
    def exists(self, db: str) -> bool:
        try:
            self.request("HEAD", database_path(db))
        except Missing:
            return False
        return True

    def create(self, db: str) -> bool:
        """Create the database; False when it was there already (another client made it first)."""
        try:
            self.request("PUT", database_path(db))
        except Conflict:
            return False
        return True

    def drop(self, db: str) -> bool:
        try:
            self.request("DELETE", database_path(db))
        except Missing:
            return False
        return True

    def info(self, db: str) -> dict:
        return self.request("GET", database_path(db))

    def get(self, db: str, doc_id: str) -> dict | None:
        try:
            return self.request("GET", doc_path(db, doc_id))
        except Missing:
            return None

    def put(self, db: str, doc: dict) -> str:
        """Write a document (with its _rev to change one); returns the new _rev. Conflict: someone
        else changed it first."""
        answer = self.request("PUT", doc_path(db, doc["_id"]), body=doc)
        return answer["rev"]

    def remove(self, db: str, doc: dict) -> None:
        self.request("DELETE", doc_path(db, doc["_id"]), params={"rev": doc["_rev"]})

    def all_docs(self, db: str, *, start: str | None = None, end: str | None = None, limit: int | None = None,
                 include_docs: bool = False) -> Rows:
        """``_all_docs`` rows in key order from ``start`` to ``end`` (inclusive), streamed."""
        params: dict[str, Any] = {}
        if start is not None:
            params["startkey"] = json.dumps(start)
        if end is not None:
            params["endkey"] = json.dumps(end)
        if limit is not None:
            params["limit"] = limit
        if include_docs:
            params["include_docs"] = "true"
        return self.rows("GET", f"{database_path(db)}/_all_docs", params=params)

    def changes(self, db: str, *, since: str | int | None = None, limit: int | None = None,
                include_docs: bool = False) -> Rows:
        """``_changes`` results after ``since``, streamed; ``rows.rest["last_seq"]`` once read."""
        params: dict[str, Any] = {}
        if since is not None:
            params["since"] = since
        if limit is not None:
            params["limit"] = limit
        if include_docs:
            params["include_docs"] = "true"
        return self.rows("GET", f"{database_path(db)}/_changes", params=params)

    def close(self) -> None:
        self.http.close()
