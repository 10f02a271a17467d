"""The Memcached session: the native commands, and the uniform verbs over JSON documents under a key prefix.

A collection is a key prefix: ``users:42`` holds document 42 of ``users`` as JSON. The id is what follows
the last colon, so a collection name may hold colons (``users:archive``) and an id may not: the keys of
``users`` are exactly ``users:<id>`` with no colon in the id, never ``users:archive:7``. find, count,
update and delete list the keys with ``lru_crawler metadump`` on every server and filter client-side
(a scan, as on Redis), unless the filter pins the id. update and delete write with the item's cas token,
so a document changed meanwhile is read again and matched again, never overwritten blindly.

Several servers (``memcached://h1:11211,h2:11211``) share the keys by pymemcache's HashClient
(rendezvous hashing); a unix socket is ``memcached+unix:///path`` (or ``memcached:///path``); a user and
password in the URL log in with memcached's ASCII authentication (``-Y``).
"""

from __future__ import annotations

import functools
import inspect
import json
import random
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson
from pymemcache.client.hash import HashClient

from dbsh import query as q
from dbsh.drivers.base import Capabilities, Result, Session, WriteResult, batched
from dbsh.drivers.memcached.language import check_key, command_lines
from dbsh.drivers.memcached.native import Parser, Request, meta_row, number_or_text, text
from dbsh.drivers.memcached.protocol import SASL_HINT, AuthClient, Node, server_error
from dbsh.errors import ConnectError, DbshError, NotFound, PartialWrite, QueryError, Unsupported, UsageError

DEFAULT_PORT = 11211
SEQ = b"__seq__"           # users:__seq__ counts the ids given to documents inserted without one
FETCH_BATCH = 500          # documents per pipelined round of meta gets
PIPELINE_CHUNK = 1000      # native commands per pipelined round
SAMPLE_KEYS = 100_000      # keys looked at by `collections` and completion
DESCRIBE_SAMPLE = 1000
MAX_ROUNDS = 1000          # cas conflicts on one batch before an update or delete gives up
OPTIONS = {"timeout", "connect_timeout"}


def connect(target) -> MemcachedSession:
    return MemcachedSession(target)


class _HashClient(HashClient):
    client_class = AuthClient


def parse_url(url: str) -> tuple[list[tuple[str, int] | str], dict[str, float]]:
    """The servers of a URL (host, port pairs, or one unix socket path) and its options."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    hostinfo = parts.netloc.rpartition("@")[2]
    options: dict[str, float] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in OPTIONS:
            raise UsageError(f"unknown option {name!r} in a Memcached URL", hint="known: " + ", ".join(sorted(OPTIONS)))
        try:
            options[name] = float(value)
        except ValueError:
            raise UsageError(f"{name} must be a number of seconds, got {value!r}") from None
    path = unquote(parts.path)
    if scheme == "memcached+unix" or (not hostinfo and path not in ("", "/")):
        if hostinfo or path in ("", "/"):
            raise UsageError("a unix socket URL names the socket's path: memcached+unix:///path/to/memcached.sock")
        return [path], options
    if path not in ("", "/"):
        raise UsageError(f"a Memcached URL names servers only, not a path ({path!r})",
                         hint="memcached://host:11211 or memcached://h1:11211,h2:11211")
    servers: list[tuple[str, int] | str] = []
    for spec in hostinfo.split(","):
        spec = spec.strip()
        if not spec:
            raise UsageError("a Memcached URL needs a host: memcached://host:11211")
        if spec.startswith("["):
            host, _, rest = spec[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ""
        else:
            host, _, port = spec.partition(":")
        if not host or (port and not port.isdigit()) or (port and not 0 < int(port) < 65536):
            raise UsageError(f"bad server {spec!r} in a Memcached URL", hint="host:port, e.g. 127.0.0.1:11211")
        servers.append((host, int(port) if port else DEFAULT_PORT))
    return servers, options


# -- documents -----------------------------------------------------------------------------------------
def encode_doc(doc: dict) -> bytes:
    try:
        return orjson.dumps(doc)
    except TypeError:   # an int past 64 bits
        try:
            return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        except ValueError as e:
            raise UsageError(f"a document cannot be stored as JSON: {e}") from None


def decode_doc(value: bytes) -> dict | None:
    """A stored value as a document; None when it is not a JSON object (a plain value under the prefix)."""
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        try:
            doc = json.loads(value)
        except ValueError:
            return None
    return doc if isinstance(doc, dict) else None


def check_collection(name: str) -> bytes:
    raw = name.encode("utf-8", "surrogatepass") if isinstance(name, str) else name
    if not raw or raw.startswith(b":") or raw.endswith(b":") or b"::" in raw:
        raise UsageError(f"invalid collection (key prefix) {name!r}",
                         hint="a name such as users or users:archive (no empty part between colons)")
    check_key(raw + b":x", f"collection {name!r}")
    return raw


def id_text(doc_id: Any) -> bytes:
    """A document id as the end of its key: an integer or a string with no colon, space or control
    character (the colon ends the collection's prefix)."""
    if isinstance(doc_id, bool) or not isinstance(doc_id, int | str):
        raise UsageError(f"a Memcached document id must be a string or an integer, got {json.dumps(doc_id)}")
    raw = str(doc_id).encode()
    if not raw or b":" in raw:
        raise UsageError(f"document id {doc_id!r} cannot be part of a key: it is empty or holds a colon "
                         "(the colon separates the collection from the id)")
    if raw == SEQ:
        raise UsageError(f"document id {SEQ.decode()!r} is reserved (the collection's id counter)")
    return raw


def id_of_key(suffix: bytes) -> Any:
    value = suffix.decode("utf-8", "replace")
    return int(value) if value.isdigit() and (value == "0" or not value.startswith("0")) else value


def _mongo_order(value: Any) -> tuple:
    """MongoDB's order across types: null/missing, numbers, strings, objects, arrays, booleans."""
    if value is q._MISSING or value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (5, value)
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    if isinstance(value, dict):
        return (3, json.dumps(value, sort_keys=True))
    return (4, json.dumps(value, sort_keys=True))


def sort_docs(docs: Iterable[dict], sort: list[tuple[str, int]]) -> list[dict]:
    items = list(docs)
    for name, direction in reversed(sort):
        items.sort(key=lambda doc: _mongo_order(q.lookup(doc, name)), reverse=direction < 0)
    return items


def project(doc: dict, fields: list[str] | None) -> dict:
    if not fields:
        return doc
    out = {}
    for name in fields:
        value = q.lookup(doc, name)
        if value is not q._MISSING:
            out[name] = value
    return out


def _resets(method):
    """An exchange cut short (an error, Ctrl-C) may leave replies unread on some connection: close them
    all, so the next command starts on fresh ones (they reconnect by themselves)."""
    if inspect.isgeneratorfunction(method):
        @functools.wraps(method)
        def generator(self, *args, **kwargs):
            try:
                yield from method(self, *args, **kwargs)
            except GeneratorExit:   # the reader stopped between items: every reply was read
                raise
            except BaseException:
                self.close()
                raise
        return generator

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except BaseException:
            self.close()
            raise
    return call


class _Item:
    """A document as read: where it is, its key, its JSON, and what a cas write needs."""

    __slots__ = ("node", "key", "doc", "cas", "ttl", "flags")

    def __init__(self, node: Node, key: bytes, doc: dict, cas: int, ttl: int, flags: int):
        self.node, self.key, self.doc, self.cas, self.ttl, self.flags = node, key, doc, cas, ttl, flags


class _Prepared:
    """A batch's keys' ends and values, encoded by the thread that reads ahead."""

    __slots__ = ("docs", "ids", "values")

    def __init__(self, docs, ids, values):
        self.docs, self.ids, self.values = docs, ids, values


class MemcachedSession(Session):
    capabilities = Capabilities(language="memcached", statement_terminator=None)
    name = "Memcached"

    def __init__(self, target):
        super().__init__(target)
        servers, options = parse_url(target.url)
        kwargs = dict(connect_timeout=options.get("connect_timeout", 10.0), timeout=options.get("timeout", 30.0),
                      allow_unicode_keys=True, no_delay=True)
        auth = (target.username or "", target.password or "") if target.username else None
        if len(servers) == 1:
            self.client = AuthClient(servers[0], **kwargs)
            clients = {servers[0] if isinstance(servers[0], str) else "%s:%s" % servers[0]: self.client}
        else:
            self.client = _HashClient(servers, **kwargs)
            clients = dict(self.client.clients)
        self.nodes = []
        for name, client in clients.items():
            client.auth = auth
            self.nodes.append(Node(name, client))
        self._by_name = {node.name: node for node in self.nodes}
        self.parser = Parser(self.nodes, self.route, lambda node: node.max_item())
        try:
            self.versions = [node.version() for node in self.nodes]
        except ConnectError as e:
            self.close()
            if e.message.startswith("lost the connection"):   # what a SASL server (-S) does to text
                raise ConnectError(f"{e.message} at its first command ({SASL_HINT})") from None
            raise
        except DbshError as e:
            self.close()
            raise ConnectError(f"memcached at {self.target.display()} did not answer `version`: {e}") from None

    # -- connection --------------------------------------------------------------------------
    def route(self, key: bytes) -> Node:
        """The server of a key: the one pymemcache's HashClient picks for it."""
        if len(self.nodes) == 1:
            return self.nodes[0]
        try:
            name = key.decode("utf-8")
        except UnicodeDecodeError:
            name = key.decode("latin-1")
        return self._by_name[self.client.hasher.get_node(name)]

    def server_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"backend": self.name, "version": self.versions[0]}
        if len(self.nodes) > 1:
            info["servers"] = len(self.nodes)
        return info

    def ping(self) -> float:
        for node in self.nodes:
            node.version()
        return 0.0

    def close(self) -> None:
        for node in self.nodes:
            node.close()

    # -- native commands ---------------------------------------------------------------------
    def execute(self, text_: str, params: dict[str, Any] | None = None) -> Result:
        lines = command_lines(text_)
        if not lines:
            raise UsageError("no command given")
        if len(lines) > 1:
            return self._pipe(lines, params or {})
        request = self.parser.parse(lines[0][1], params or {})
        if request.name == "lru_crawler":
            return self._metadump(request)
        try:
            rows = request.run()
        except BaseException:
            self.close()   # (a reply may be unread)
            raise
        return Result(rows, request.columns)

    def _metadump(self, request: Request) -> Result:
        """lru_crawler metadump, streamed: every key of a big cache, never held in memory at once."""

        @_resets
        def rows(self) -> Iterator[dict]:
            for node, data in request.parts:
                for item in node.metadump(data, wait=False):
                    row = {"server": node.name} if len(self.nodes) > 1 else {}
                    row["key"] = text(item.pop(b"key"))
                    row.update((k.decode(), number_or_text(v)) for k, v in item.items())
                    yield row

        return Result(rows(self), None)

    def _pipe(self, lines: list[tuple[int, str]], params: dict[str, Any]) -> Result:
        """Many commands, each checked before any is sent (bad input writes nothing), then pipelined per
        server in chunks; replies that are errors are reported with their line."""
        requests = []
        for number, line in lines:
            try:
                requests.append((number, self.parser.parse(line, params, strict=False)))
            except UsageError as e:
                raise UsageError(f"line {number}: {e}") from None
        for name in set(params) - {a for _, line in lines for a in _param_names(line)}:
            raise UsageError(f"parameter {name!r} is not used", hint=f"write :{name} as a whole argument")

        @_resets
        def run(self) -> Iterator[dict]:
            replies, failed = 0, []
            for chunk in batched(requests, PIPELINE_CHUNK):
                sends: dict[int, list[bytes]] = {}
                for _, request in chunk:
                    for node, data in request.parts:
                        sends.setdefault(id(node), []).append(data)
                for node in self.nodes:
                    if id(node) in sends:
                        node.send(b"".join(sends[id(node)]))
                for number, request in chunk:
                    try:
                        request.collect()
                        replies += 1
                    except ConnectError:
                        raise
                    except DbshError as e:
                        failed.append(number)
                        print(f"dbsh: line {number}: {e}", file=sys.stderr)
            if failed:
                shown = ", ".join(map(str, failed[:20])) + (", ..." if len(failed) > 20 else "")
                raise QueryError(f"{len(failed)} of {len(requests)} commands failed (lines {shown}); {replies} replies")
            yield {"commands": len(requests), "replies": replies, "errors": 0}

        return Result(run(self), ["commands", "replies", "errors"])

    # -- keys and documents --------------------------------------------------------------------
    @_resets
    def _keys(self, collection: bytes, where: q.Filter, counter: list[int]) -> Iterator[tuple[Node, list[bytes]]]:
        """The candidate keys, by server: the one key when the filter pins the id, else the
        collection's keys from each server's metadump."""
        value = self._pinned(where)
        if value is not None:
            try:
                key = collection + b":" + id_text(value)
                check_key(key)
            except UsageError:
                return   # no document can have this id
            counter[0] += 1
            yield self.route(key), [key]
            return
        prefix = collection + b":"
        start = len(prefix)
        for node in self.nodes:
            keys = []
            for key in node.keys():  # noqa: SIM118 - a Node, not a dict: keys() lists the server's keys
                if key.startswith(prefix) and len(key) > start and key.find(b":", start) < 0 and key[start:] != SEQ:
                    keys.append(key)
            counter[0] += len(keys)
            if keys:
                yield node, keys

    @staticmethod
    def _pinned(where: q.Filter) -> Any:
        """The id the filter pins (an equality on id or _id), or None."""
        ids = q.equalities(where.ast) if not where.is_empty else {}
        for name in ("id", "_id"):
            value = ids.get(name)
            if isinstance(value, str | int) and not isinstance(value, bool):
                return value
        return None

    def _fetch(self, node: Node, keys: list[bytes]) -> list[tuple[bytes, bytes, int, int, int]]:
        """(key, value, cas, ttl, flags) of the keys that exist, in one pipelined round."""
        # u: the read does not bump the item in the LRU, so it never moves an item under the crawler's walk
        node.send(b"".join(b"mg %b v k c t f q u\r\n" % key for key in keys) + b"mn\r\n")
        found = []
        error = None
        while (line := node.line()) != b"MN":
            if not line.startswith(b"VA "):
                error = error or server_error(line) or QueryError(f"unexpected reply: {line[:80]!r}")
                continue
            parts = line.split(b" ")
            value = node.data(int(parts[1]))
            meta = {p[:1]: p[1:] for p in parts[2:]}
            found.append((meta[b"k"], value, int(meta[b"c"]), int(meta[b"t"]), int(meta[b"f"])))
        if error is not None:
            raise error
        return found

    def _items(self, collection: bytes, node: Node, keys: list[bytes], ast, skipped: list[int]) -> list[_Item]:
        start = len(collection) + 1
        items = []
        for key, value, cas, ttl, flags in self._fetch(node, keys):
            doc = decode_doc(value)
            if doc is None:
                skipped[0] += 1
                continue
            if "id" not in doc and "_id" not in doc:
                doc = {"id": id_of_key(key[start:]), **doc}
            if ast is None or q.matches(ast, doc):
                items.append(_Item(node, key, doc, cas, ttl, flags))
        return items

    @_resets
    def _documents(self, collection: bytes, where: q.Filter, counter: list[int], skipped: list[int]) -> Iterator[_Item]:
        ast = None if where.is_empty else where.ast
        for node, keys in self._keys(collection, where, counter):
            for chunk in batched(keys, FETCH_BATCH):
                yield from self._items(collection, node, chunk, ast, skipped)

    def _scanned(self, collection: bytes, where: q.Filter, counter: list[int], skipped: list[int]) -> None:
        other = f"; {skipped[0]} held no JSON document" if skipped[0] else ""
        if self._pinned(where) is not None:
            print(f"dbsh: read {counter[0]} key of {collection.decode()}:<id> (the filter pins the id{other})",
                  file=sys.stderr)
            return
        noun = "key" if counter[0] == 1 else "keys"
        servers = f" on {len(self.nodes)} servers" if len(self.nodes) > 1 else ""
        print(f"dbsh: scanned {counter[0]} {noun} of {collection.decode()}:<id>{servers} "
              f"(lru_crawler metadump, filtered client-side{other})", file=sys.stderr)

    # -- uniform verbs: reading ----------------------------------------------------------------
    def find(self, name: str, where: q.Filter, *, fields: list[str] | None = None,
             sort: list[tuple[str, int]] | None = None, limit: int | None = None,
             skip: int | None = None) -> Result:
        collection = check_collection(name)
        where.ast  # noqa: B018 - a bad filter fails here, before any scanning
        counter, skipped = [0], [0]

        def rows() -> Iterator[dict]:
            docs: Iterable[dict] = (item.doc for item in self._documents(collection, where, counter, skipped))
            if sort:
                docs = sort_docs(docs, sort)
            passed = produced = 0
            try:
                for doc in docs:
                    if skip and passed < skip:
                        passed += 1
                        continue
                    if limit is not None and produced >= limit:
                        break
                    produced += 1
                    yield project(doc, fields)
            finally:
                self._scanned(collection, where, counter, skipped)

        return Result(rows(), None)

    @_resets
    def count(self, name: str, where: q.Filter) -> int:
        collection = check_collection(name)
        where.ast  # noqa: B018 - a bad filter fails here
        counter, skipped = [0], [0]
        return sum(1 for _ in self._documents(collection, where, counter, skipped))

    def explain(self, name: str, where: q.Filter, **find_options) -> Result:
        collection = check_collection(name)
        where.ast  # noqa: B018 - a bad filter fails here
        pinned = self._pinned(where)
        if pinned is not None:
            plan = f"mg {collection.decode()}:{pinned} (the filter pins the id), then the filter client-side"
        else:
            plan = (f"lru_crawler metadump on {len(self.nodes)} server(s): every key of the cache is listed; "
                    f"the keys {collection.decode()}:<id> are read with pipelined mg, {FETCH_BATCH} a round, "
                    "and filtered client-side")
        if find_options.get("sort"):
            plan += "; sorted client-side"
        return Result([{"plan": plan}], ["plan"])

    # -- uniform verbs: inserting ---------------------------------------------------------------
    def _ids(self, docs: list[Any]) -> list[bytes | None]:
        ids: list[bytes | None] = []
        for n, doc in enumerate(docs, 1):
            if not isinstance(doc, dict):
                raise UsageError(f"document {n}: a document must be a JSON object, not {type(doc).__name__}")
            doc_id = doc.get("id", doc.get("_id"))
            try:
                ids.append(None if doc_id is None else id_text(doc_id))
            except UsageError as e:
                raise UsageError(f"document {n}: {e.message}") from None
        return ids

    def prepare_batch(self, name: str, batch) -> None:
        """In the thread that reads ahead: the batch's ids and JSON values, while the batch before is written."""
        if batch.header is not None or not batch.docs:
            return
        try:
            ids = self._ids(batch.docs)
            batch.prepared = _Prepared(batch.docs, ids, [encode_doc(d) for d in batch.docs])
        except Exception:   # noqa: BLE001 - the insert meets it again and says what is wrong
            return

    def insert_batch(self, name: str, batch, *, create: bool = False) -> WriteResult:
        prepared = batch.prepared if type(batch.prepared) is _Prepared else None
        if prepared is not None and prepared.docs is batch.docs:
            return self.insert(name, batch.docs, batch=max(len(batch), 1), create=create, prepared=prepared)
        return super().insert_batch(name, batch, create=create)

    @_resets
    def insert(self, name: str, docs: Iterable[dict], *, batch: int = 1000, create: bool = False,
               progress=None, prepared: _Prepared | None = None) -> WriteResult:
        collection = check_collection(name)
        ttl = int(self.option("ttl") or 0)
        inserted, existing, rejected, offset = 0, [], [], 0
        ids: list[Any] = []
        for chunk in batched(docs, batch):
            ahead = prepared if prepared is not None and prepared.docs is chunk else None
            chunk_ids = ahead.ids if ahead is not None else self._ids(chunk)
            values = ahead.values if ahead is not None else [encode_doc(d) for d in chunk]
            todo = list(range(len(chunk)))
            stored_docs = list(chunk)
            while todo:   # generated ids that hit a key written with an explicit id go round again
                missing = [n for n in todo if chunk_ids[n] is None]
                if missing:
                    first = self._next_ids(collection, len(missing))
                    for k, n in enumerate(missing):
                        chunk_ids[n] = b"%d" % (first + k)
                        stored_docs[n] = {"id": first + k, **chunk[n]}
                        values[n] = encode_doc(stored_docs[n])
                generated = set(missing)
                # (every id is set now: the missing ones were just numbered)
                keys = {n: collection + b":" + cast(bytes, chunk_ids[n]) for n in todo}
                for n in todo:
                    try:
                        check_key(keys[n])
                        self._fits(keys[n], values[n])
                    except UsageError as e:
                        raise UsageError(f"document {offset + n + 1}: {e.message}") from None
                refused, failed = self._store(keys, values, ttl)
                again = []
                for n in todo:
                    if n in refused and n in generated:
                        again.append(n)
                        chunk_ids[n] = None
                    elif n in refused:
                        existing.append(keys[n].decode())
                        rejected.append((offset + n, f"key {keys[n].decode()} already exists"))
                    elif n in failed:
                        rejected.append((offset + n, failed[n]))
                    else:
                        inserted += 1
                        if len(ids) <= 1000:
                            ids.append(id_of_key(cast(bytes, chunk_ids[n])) if n in generated else stored_docs[n].get(
                                "id", stored_docs[n].get("_id")))
                todo = again
            offset += len(chunk)
            if progress:
                progress(inserted)
        if rejected:
            failed_only = [r for r in rejected if "already exists" not in r[1]]
            parts = []
            if existing:
                more = f" and {len(existing) - 5} more" if len(existing) > 5 else ""
                parts.append(f"{len(existing)} already existed and were left unchanged: "
                             f"{', '.join(existing[:5])}{more}")
            if failed_only:
                parts.append(f"{len(failed_only)} were refused by the server: {failed_only[0][1]}")
            raise PartialWrite(f"inserted {inserted} documents into {collection.decode()}; " + "; ".join(parts),
                               written=inserted, rejected=rejected)
        details = {"ttl": ttl} if ttl else {}
        return WriteResult("inserted", collection.decode(), inserted, ids=ids if len(ids) <= 1000 else None,
                           details=details)

    def _fits(self, key: bytes, value: bytes) -> None:
        limit = self.route(key).max_item()
        if len(value) + len(key) + 64 > limit:
            raise UsageError(f"{key.decode('utf-8', 'replace')} is {len(value)} bytes of JSON, over the server's item "
                             f"size limit ({limit} bytes with the key and item header)")

    @_resets
    def _next_ids(self, collection: bytes, n: int) -> int:
        """The first of n new ids from the collection's counter (created at n when missing): one round trip."""
        key = collection + b":" + SEQ
        node = self.route(key)
        node.send(b"ma %b N0 J%d D%d v\r\n" % (key, n, n))
        row = meta_row(node, node.line())
        if row.get("result") != "VA":
            raise QueryError(f"cannot count ids in {key.decode()}: {row.get('result')}")
        return int(row["value"]) - n + 1

    @_resets
    def _store(self, keys: dict[int, bytes], values: list[bytes], ttl: int) -> tuple[set[int], dict[int, str]]:
        """Add each value under its key unless the key exists: meta sets in quiet mode (memcached's noreply
        that still reports what failed), pipelined per server, each server's batch ended by a no-op whose
        answer is the final check that all were handled. Returns the positions refused because their key
        existed, and the ones the server refused otherwise (with why)."""
        mode = b" T%d ME q O" % ttl if ttl else b" ME q O"
        by_node: dict[int, tuple[Node, list[int]]] = {}
        for n, key in keys.items():
            node = self.route(key)
            by_node.setdefault(id(node), (node, []))[1].append(n)
        for node, positions in by_node.values():
            node.send(b"".join(b"ms %b %d%b%d\r\n%b\r\n" % (keys[n], len(values[n]), mode, n, values[n])
                               for n in positions) + b"mn\r\n")
        refused: set[int] = set()
        failed: dict[int, str] = {}
        unattributed: list[tuple[Node, list[int], bytes]] = []
        for node, positions in by_node.values():
            for line in node.until_noop():
                parts = line.split(b" ")
                opaque = next((int(p[1:]) for p in parts[1:] if p[:1] == b"O" and p[1:].isdigit()), None)
                if parts[0] == b"NS" and opaque is not None:
                    refused.add(opaque)
                elif opaque is not None:
                    failed[opaque] = line.decode("utf-8", "replace")
                else:   # an error line carries no opaque: which item it was is settled below
                    unattributed.append((node, positions, line))
        if unattributed:
            for _, _, line in unattributed:
                error = server_error(line)
                if isinstance(error, ConnectError):
                    raise error
            seen = set()
            for node, positions, line in unattributed:
                if id(node) in seen:
                    continue
                seen.add(id(node))
                present = self._present(node, [keys[n] for n in positions if n not in refused])
                reason = line.decode("utf-8", "replace")
                for n in positions:
                    if n not in refused and keys[n] not in present:
                        failed[n] = reason
        return refused, failed

    @staticmethod
    def _present(node: Node, keys: list[bytes]) -> set[bytes]:
        node.send(b"".join(b"mg %b k q u\r\n" % key for key in keys) + b"mn\r\n")
        return {p[1:] for line in node.until_noop() for p in line.split(b" ")[1:] if p[:1] == b"k"}

    # -- uniform verbs: changing -----------------------------------------------------------------
    @_resets
    def _write_round(self, items: list[_Item], build) -> tuple[list[_Item], list[_Item], int]:
        """One pipelined round of cas writes (``build(item)`` -> request bytes) per server: the items
        written, the ones changed by someone else meanwhile (cas mismatch), and how many had vanished."""
        by_node: dict[int, tuple[Node, list[_Item]]] = {}
        for item in items:
            by_node.setdefault(id(item.node), (item.node, []))[1].append(item)
        requests = [(node, b"".join(build(item) for item in group)) for node, group in by_node.values()]
        for node, data in requests:   # (all built first: a document refused by build() sends nothing)
            node.send(data)
        done, conflicts, gone, error = [], [], 0, None
        for node, group in by_node.values():
            for item in group:
                line = node.line()
                code = line[:2]
                if code == b"HD":
                    done.append(item)
                elif code == b"EX":
                    conflicts.append(item)
                elif code == b"NF":
                    gone += 1
                else:
                    error = error or server_error(line) or QueryError(f"unexpected reply: {line[:80]!r}")
        if error is not None:
            raise error
        return done, conflicts, gone

    def _again(self, collection: bytes, items: list[_Item], ast) -> list[_Item]:
        """The items changed meanwhile, read again (with their new cas) and matched again."""
        fresh = []
        by_node: dict[int, tuple[Node, list[bytes]]] = {}
        for item in items:
            by_node.setdefault(id(item.node), (item.node, []))[1].append(item.key)
        for node, keys in by_node.values():
            fresh += self._items(collection, node, keys, ast, [0])
        return fresh

    def _settle(self, collection: bytes, items: list[_Item], ast, build, change=None, limit: int | None = None):
        """Write items with their cas tokens until every one is written or no longer matches: what
        someone else changed meanwhile is read, matched and changed again (no lost updates)."""
        written: list[_Item] = []
        rounds = 0
        while items:
            if change is not None:
                for item in items:
                    item.doc = change(item.doc)
            if limit is not None:
                items = items[:max(limit - len(written), 0)]
                if not items:
                    break
            done, conflicts, _ = self._write_round(items, build)
            written += done
            if not conflicts:
                break
            rounds += 1
            if rounds >= MAX_ROUNDS:
                raise QueryError(f"gave up after {rounds} cas conflicts on {conflicts[0].key.decode()}: other "
                                 f"clients keep changing it ({len(written)} written)")
            if rounds > 2:
                time.sleep(random.random() * min(0.05, 0.002 * rounds))
            items = self._again(collection, conflicts, ast)
        return written

    @_resets
    def update(self, name: str, where: q.Filter, change: q.Update, *, upsert: bool = False,
               one: bool = False) -> WriteResult:
        collection = check_collection(name)
        changes = change.changes
        for c in changes:
            if c.field.split(".")[0] in ("id", "_id"):
                raise Unsupported(f"cannot change {c.field!r}: it is part of the Memcached key")
        ast = None if where.is_empty else where.ast

        def build(item: _Item) -> bytes:
            value = encode_doc(item.doc)
            self._fits(item.key, value)
            ttl = b" T%d" % max(item.ttl, 1) if item.ttl >= 0 else b""
            return b"ms %b %d C%d F%d%b\r\n%b\r\n" % (item.key, len(value), item.cas, item.flags, ttl, value)

        for _ in range(MAX_ROUNDS):
            counter, skipped = [0], [0]
            updated = 0
            matched = False
            for items in batched(self._documents(collection, where, counter, skipped), FETCH_BATCH):
                matched = True
                done = self._settle(collection, items, ast, build, lambda doc: q.apply_update(changes, doc),
                                    1 if one else None)
                updated += len(done)
                if one and updated:
                    break
            self._scanned(collection, where, counter, skipped)
            if matched or not upsert:
                return WriteResult("updated", collection.decode(), updated, matched=updated)
            doc = q.apply_update(changes, {k: v for k, v in q.equalities(where.ast).items()
                                           if not isinstance(v, dict)})
            try:
                result = self.insert(name, [doc])
            except PartialWrite:   # inserted by someone else meanwhile: update it instead
                continue
            return WriteResult("upserted", collection.decode(), result.count, ids=result.ids)
        raise QueryError(f"upsert into {collection.decode()} kept meeting a document inserted meanwhile")

    @_resets
    def delete(self, name: str, where: q.Filter, *, one: bool = False) -> WriteResult:
        collection = check_collection(name)
        ast = None if where.is_empty else where.ast
        counter, skipped = [0], [0]
        deleted = 0
        # lru_crawler metadump can pass over an item being bumped in its LRU at that moment: after a
        # delete of every match, look again until a scan finds none left (at most twice more)
        for scan in range(1 if one else 3):
            counts = (counter, skipped) if scan == 0 else ([0], [0])
            found = 0
            for items in batched(self._documents(collection, where, *counts), FETCH_BATCH):
                found += len(items)
                done = self._settle(collection, items, ast, lambda item: b"md %b C%d\r\n" % (item.key, item.cas),
                                    limit=1 if one else None)
                deleted += len(done)
                if one and deleted:
                    break
            if not found:
                break
        self._scanned(collection, where, counter, skipped)
        return WriteResult("deleted", collection.decode(), deleted)

    # -- catalog -------------------------------------------------------------------------------
    @_resets
    def _all_keys(self, limit: int = SAMPLE_KEYS) -> Iterator[tuple[Node, bytes]]:
        seen = 0
        for node in self.nodes:
            for key in node.keys():  # noqa: SIM118 - a Node, not a dict: keys() lists the server's keys
                if seen < limit:
                    yield node, key
                seen += 1
        if seen > limit:
            print(f"dbsh: looked at the first {limit} of {seen} keys", file=sys.stderr)

    @_resets
    def collections(self) -> list[str]:
        prefixes = set()
        for _, key in self._all_keys():
            prefix, sep, _ = key.rpartition(b":")
            if sep and prefix:
                prefixes.add(prefix.decode("utf-8", "replace"))
        return sorted(prefixes)

    @_resets
    def describe(self, name: str) -> Result:
        collection = check_collection(name)
        counter, skipped = [0], [0]
        items: list[_Item] = []
        for node, keys in self._keys(collection, q.Filter({}), counter):
            for chunk in batched(keys[:DESCRIBE_SAMPLE - len(items)], FETCH_BATCH):
                items += self._items(collection, node, chunk, None, skipped)
            if len(items) >= DESCRIBE_SAMPLE:
                break
        if not counter[0]:
            raise NotFound(f"no keys match {collection.decode()}:<id>")
        fields: dict[str, dict[str, int]] = {}
        for item in items:
            for field, value in item.doc.items():
                kinds = fields.setdefault(field, {})
                kind = _json_type(value)
                kinds[kind] = kinds.get(kind, 0) + 1
        rows = [{"field": f, "type": "|".join(sorted(kinds)), "count": sum(kinds.values())}
                for f, kinds in fields.items()]
        expiring = sum(1 for item in items if item.ttl >= 0)
        message = (f"{collection.decode()}: {counter[0]} keys; {len(items)} documents read, {expiring} with a TTL"
                   + (f"; {skipped[0]} values that are not JSON documents" if skipped[0] else ""))
        return Result(rows, ["field", "type", "count"], message=message)

    @_resets
    def completions(self) -> dict[str, list[str]]:
        """Collections (key prefixes) and the fields of a few of each one's documents, from one metadump."""
        by_prefix: dict[bytes, list[tuple[Node, bytes]]] = {}
        for node, key in self._all_keys():
            prefix, sep, rest = key.rpartition(b":")
            if sep and prefix and rest != SEQ:
                keys = by_prefix.setdefault(prefix, [])
                if len(keys) < 20:
                    keys.append((node, key))
        out: dict[str, list[str]] = {}
        for prefix in sorted(by_prefix)[:200]:
            fields: dict[str, None] = {}
            for node in self.nodes:
                node_keys = [k for n, k in by_prefix[prefix] if n is node]
                if node_keys and len(out) < 50:
                    for item in self._items(prefix, node, node_keys, None, [0]):
                        fields.update(dict.fromkeys(item.doc))
            out[prefix.decode("utf-8", "replace")] = list(fields)
        return out

    lists_keys = True

    @_resets
    def key_names(self, prefix: str = "", limit: int = 10_000) -> list[str]:
        names = [key.decode("utf-8", "replace") for _, key in self._all_keys(limit)]
        return sorted(n for n in names if n.startswith(prefix))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"


def _param_names(line: str) -> list[str]:
    return [word[1:] for word in line.split() if word.startswith(":")]
