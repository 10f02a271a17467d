"""Redis driver (redis-py): every native command with redis-cli quoting, pub/sub and MONITOR streamed,
pipelined batches with per-line errors, and the uniform verbs over hashes under a key prefix.

A collection is a key prefix: ``users:42`` is document 42 of ``users``, stored as a hash. Strings
are stored as they are; other values (and strings that would read back as something else) are
JSON-encoded, so every type comes back as it went in. Standalone servers and Redis Cluster
(``redis+cluster://`` or ``?cluster=true``) work alike; ``rediss://`` is TLS.
"""

from __future__ import annotations

import json
import math
import re
import sys
from contextlib import contextmanager
from itertools import chain, pairwise, repeat
from typing import Any, Iterable, Iterator, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson   # prints columns of numbers in one C call
import redis
from redis import exceptions as rexc
from redis.cluster import RedisCluster

from dbsh import query as q
from dbsh.drivers.base import Capabilities, Result, Session, WriteResult, batched, int_texts
from dbsh.errors import ConnectError, DbshError, PartialWrite, QueryError, Unsupported, UsageError, one_line, redact

SCAN_COUNT = 1000          # keys per SCAN round trip
PIPELINE_CHUNK = 1000      # commands per pipeline round trip
FETCH_BATCH = 500          # HGETALLs per pipeline when reading documents
SAMPLE_KEYS = 10_000       # keys sampled by `collections`
DESCRIBE_SAMPLE = 1000     # keys sampled by `describe`
STREAMING = {"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "MONITOR"}
SET_REPLIES = {"SMEMBERS", "SINTER", "SUNION", "SDIFF", "SRANDMEMBER", "SPOP"}
SCORED = {"ZPOPMIN", "ZPOPMAX", "BZPOPMIN", "BZPOPMAX", "ZMPOP", "BZMPOP"}
SEQ_SUFFIX = "__seq__"     # the per-collection id counter: users:__seq__ (a string key, never a document)
SCRIPT_CHUNK = 500         # documents per insert script call on a standalone server (pipelined: _Inserter)
SHAPED_FIELDS = 32         # documents with at most this many fields go through a script written for that count

# Insert a batch of documents atomically: a key that exists is left untouched (no half-merged documents)
# and its 1-based position returned; every other document is written whole, then expired.
# KEYS: the documents' keys (one hash slot on a cluster); ARGV: ttl seconds, 1 when a key repeats in
# KEYS, then per document its field count n and n field/value pairs. Keys are checked one by one only
# when one EXISTS over them all finds any. unpack() takes at most 4000 values (Lua's stack is 8000).
# both insert scripts start so: ttl, and whether keys must be checked one by one
_INSERT_PROLOGUE = """
local ttl = tonumber(ARGV[1])
local n = #KEYS
local check = ARGV[2] == '1'
if not check then
  for first = 1, n, 4000 do
    if redis.call('EXISTS', unpack(KEYS, first, math.min(first + 3999, n))) > 0 then check = true end
  end
end
"""
INSERT_SCRIPT = _INSERT_PROLOGUE + """local existing = {}
local pos = 3
for i = 1, n do
  local key = KEYS[i]
  local last = pos + 2 * ARGV[pos]
  if check and redis.call('EXISTS', key) == 1 then
    existing[#existing + 1] = i
  else
    for first = pos + 1, last, 4000 do
      redis.call('HSET', key, unpack(ARGV, first, math.min(first + 3999, last)))
    end
    if ttl > 0 then redis.call('EXPIRE', key, ttl) end
  end
  pos = last + 1
end
return existing
"""


def connect(target) -> "RedisSession":
    return RedisSession(target)


# --- redis-cli quoting (sdssplitargs) --------------------------------------------------------

_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("a"): b"\a"}
_HEX = b"0123456789abcdefABCDEF"
_SPACE = b" \n\r\t\v\f"


def split_args(line: str | bytes) -> list[bytes]:
    """Split a command line into arguments exactly as redis-cli does (sds.c sdssplitargs).

    "double quotes" take \\n \\r \\t \\b \\a \\xHH and \\<char>; 'single quotes' take only \\';
    a closing quote must be followed by a space or the end; unbalanced quotes are an error.
    """
    data = line.encode("utf-8", "surrogateescape") if isinstance(line, str) else line
    if b'"' not in data and b"'" not in data:
        return data.split()   # no quotes: plain whitespace splitting (the same space characters)
    args: list[bytes] = []
    i, n = 0, len(data)
    while True:
        while i < n and data[i] in _SPACE:
            i += 1
        if i >= n:
            return args
        current = bytearray()
        in_double = in_single = False
        while True:
            c = data[i] if i < n else None
            if in_double:
                if c is None:
                    raise UsageError("unbalanced quotes in command", hint="a \" is not closed")
                nxt = data[i + 1] if i + 1 < n else None
                if (c == 0x5C and nxt == ord("x") and i + 3 < n and data[i + 2] in _HEX
                        and data[i + 3] in _HEX):
                    current.append(int(data[i + 2:i + 4], 16))
                    i += 3
                elif c == 0x5C and nxt is not None:
                    i += 1
                    current += _ESCAPES.get(nxt, bytes([nxt]))
                elif c == ord('"'):
                    if nxt is not None and nxt not in _SPACE:
                        raise UsageError("closing quote must be followed by a space in command")
                    i += 1
                    break
                else:
                    current.append(c)
            elif in_single:
                if c is None:
                    raise UsageError("unbalanced quotes in command", hint="a ' is not closed")
                nxt = data[i + 1] if i + 1 < n else None
                if c == 0x5C and nxt == ord("'"):
                    i += 1
                    current.append(nxt)
                elif c == ord("'"):
                    if nxt is not None and nxt not in _SPACE:
                        raise UsageError("closing quote must be followed by a space in command")
                    i += 1
                    break
                else:
                    current.append(c)
            else:
                if c is None or c in _SPACE:
                    break
                if c == ord('"'):
                    in_double = True
                elif c == ord("'"):
                    in_single = True
                else:
                    current.append(c)
            i += 1
        args.append(bytes(current))


def _bind(args: list[bytes], params: dict[str, Any], *, strict: bool = True) -> list[Any]:
    """``:name`` arguments take the value of ``-p name=value`` as one whole argument (never re-split).

    The command name goes to redis-py as text (its cluster router looks commands up by name).
    """
    if args:
        args = [args[0].decode("utf-8", "replace"), *args[1:]]
    if not params:
        return args
    used: set[str] = set()
    bound: list[Any] = []
    for arg in args:
        name = arg[1:].decode("utf-8", "replace") if isinstance(arg, bytes) and arg.startswith(b":") else None
        if name is not None and name in params:
            used.add(name)
            value = params[name]
            bound.append(value if isinstance(value, (str, bytes, int, float)) and not isinstance(value, bool)
                         else json.dumps(value))
        else:
            bound.append(arg)
    unused = sorted(set(params) - used)
    if unused and strict:   # (a batch line may use only some of the parameters)
        raise UsageError(f"parameter {unused[0]!r} is not used", hint=f"write :{unused[0]} as a whole argument")
    return bound


# --- values -------------------------------------------------------------------------------

def text(value: Any) -> Any:
    """Bytes from the server as text when they are UTF-8; other bytes stay bytes (shown escaped)."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    if isinstance(value, list | tuple):
        return [text(v) for v in value]
    if isinstance(value, set | frozenset):
        return [text(v) for v in value]
    if isinstance(value, dict):
        return {_key_text(k): text(v) for k, v in value.items()}
    return value


def _key_text(key: Any) -> Any:
    value = text(key)
    return value if isinstance(value, str | int | float) or value is None else repr(value)[2:-1]


_JSON_FIRST = frozenset(' \t\n\r{["-0123456789')   # how a text that parses as JSON can begin...
_JSON_WORDS = frozenset(("true", "false", "null", "NaN", "Infinity"))   # ...unless it is one of these


def encode_value(value: Any) -> str:
    """One document value as a hash field value; strings stay readable in redis-cli."""
    if isinstance(value, str):
        if value[:1] in _JSON_FIRST:
            try:
                json.loads(value)
            except ValueError:
                return value      # plain text reads back as itself
        elif value.rstrip(" \t\n\r") not in _JSON_WORDS:
            return value          # (the common case, without a failed parse)
    elif type(value) is int:
        return str(value)
    elif type(value) is float and math.isfinite(value):
        return repr(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def decode_value(raw: Any) -> Any:
    """A hash field value as a document value: JSON where it parses, else the text itself."""
    value = text(raw)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


# --- RESP: requests encoded straight into one buffer ------------------------------------------

def resp_bulk(arg: str | bytes) -> bytes:
    """One RESP bulk string (text as UTF-8)."""
    data = arg.encode() if isinstance(arg, str) else arg
    return b"$%d\r\n%b\r\n" % (len(data), data)


def resp_commands(commands: Iterable[Sequence[str | bytes | int]]) -> bytes:
    """Commands (sequences of str, bytes or int arguments) as RESP arrays of bulk strings, in one buffer
    for one write: what redis-py's packer does, without its per-command layers."""
    out: list[bytes] = []
    add = out.append
    for args in commands:
        add(b"*%d\r\n" % len(args))
        for a in args:
            add(resp_bulk(a if isinstance(a, str | bytes) else str(a)))
    return b"".join(out)


# What encode_value() may change: text that begins like JSON or like one of the JSON words. Everything
# else is stored as it is; the search runs over a column of values joined by NULs (a NUL inside a value can
# only add a false alarm, which sends the column through encode_value()).
_MAYBE_CHANGED = re.compile("\x00[" + re.escape("".join(sorted(_JSON_FIRST | {w[0] for w in _JSON_WORDS}))) + "]")
_BOOL_TEXT = {True: "true", False: "false"}


def _encoded_texts(values: Sequence[Any]) -> Sequence[str]:
    """encode_value() of each value of one field of many documents, worked out a column at a time (one
    type check, conversions by map) for the usual columns of one type; anything else goes value by value
    through encode_value(). Raises ValueError for an int too long to print."""
    kinds = set(map(type, values))
    if len(kinds) == 1:
        kind = kinds.pop()
        if kind is str:
            if _MAYBE_CHANGED.search("\x00" + "\x00".join(values)) is None:
                return values
        elif kind is int:
            return int_texts(values)
        elif kind is float:
            if all(map(math.isfinite, values)):
                # orjson prints a float as repr() does where repr() uses fixed notation (checked against
                # repr for 400,000 floats there); outside it, repr itself
                if max(map(abs, values)) < 1e16 and min(map(abs, values)) >= 1e-4:
                    return orjson.dumps(values).decode()[1:-1].split(",")
                return list(map(repr, values))
        elif kind is bool:
            return list(map(_BOOL_TEXT.__getitem__, values))
    return list(map(encode_value, values))


def _byte_lengths(texts: Sequence[str]) -> list[int]:
    if "".join(texts).isascii():
        return list(map(len, texts))
    return [len(t.encode()) for t in texts]


_SIZES = [f"${n}" for n in range(1024)]   # "$n", the head of a RESP bulk string of n bytes


def _size_marks(sizes: Sequence[int]) -> Iterable[str]:
    """"$n" for each byte length n (looked up, for the usual short values)."""
    if not sizes or max(sizes) < len(_SIZES):
        return map(_SIZES.__getitem__, sizes)
    return (f"${n}" for n in sizes)


def _document_ids(docs: list[Any]) -> list[Any]:
    """The id of each document (``id``, else ``_id``; None: generate one), refusing what cannot be a key."""
    ids = list(map(dict.get, docs, repeat("id"))) if all(map(isinstance, docs, repeat(dict))) else None
    if ids is not None and None in ids:
        for n, doc in enumerate(docs):
            if ids[n] is None and "id" not in doc:
                ids[n] = doc.get("_id")
    if ids is None or not set(map(type, ids)) <= {int, str, type(None)}:
        ids = []
        for doc in docs:   # the first document that is refused says why
            if not isinstance(doc, dict):
                raise UsageError(f"a document must be a JSON object, not {type(doc).__name__}")
            doc_id = doc.get("id", doc.get("_id"))
            if doc_id is not None and (isinstance(doc_id, bool) or not isinstance(doc_id, str | int)):
                raise UsageError(f"a Redis document id must be a string or an integer, got {json.dumps(doc_id)}")
            ids.append(doc_id)
    return ids


def _script_args(doc: dict) -> list[Any]:
    """One document in INSERT_SCRIPT's ARGV: its field count, then field/value pairs."""
    flat: list[Any] = [len(doc)]
    for field, value in doc.items():
        flat.append(field)
        flat.append(encode_value(value))
    return flat


def _glob_escape(text_: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text_)


def _check_collection(name: str) -> str:
    if not name or any(c.isspace() for c in name):
        raise UsageError(f"invalid collection (key prefix) {name!r}")
    return name


def _shaped_script(k: int) -> str:
    """INSERT_SCRIPT written out for documents that all have the same k fields. ARGV: the ttl, 1 when a key
    repeats in KEYS, the k field names, then one argument with the k values of each document in the order
    of KEYS, each value ended by a NUL (none contains one), split with Redis's built-in struct.unpack.
    A document then costs the server about 1.3 times the work of a plain HSET (INSERT_SCRIPT, with its
    field/value pairs in ARGV: 1.75; counted with valgrind on Redis 7.0)."""
    names = ", ".join(f"f{i}" for i in range(1, k + 1))
    values = ", ".join(f"v{i}" for i in range(1, k + 1))
    pairs = ", ".join(f"f{i}, v{i}" for i in range(1, k + 1))
    firsts = ", ".join(f"ARGV[{i + 2}]" for i in range(1, k + 1))
    return _INSERT_PROLOGUE + f"""local {names} = {firsts}
local values = ARGV[{k + 3}]
local existing = {{}}
local pos = 1
local {values}
for i = 1, n do
  {values}, pos = struct.unpack('{"s" * k}', values, pos)
  local key = KEYS[i]
  if check and redis.call('EXISTS', key) == 1 then
    existing[#existing + 1] = i
  else
    redis.call('HSET', key, {pairs})
    if ttl > 0 then redis.call('EXPIRE', key, ttl) end
  end
end
return existing
"""


# Whether the server's Lua has struct.unpack (Redis, Valkey and KeyDB do; a server that does not gets
# INSERT_SCRIPT only).
STRUCT_PROBE = "return pcall(function() return struct.unpack('s', 'x\\0') end) and 1 or 0"


_NAMES: dict[tuple, list[str] | None] = {}   # field names -> them as RESP bulk strings (None: not text)


def _field_names(fields: tuple) -> list[str] | None:
    names = _NAMES.get(fields, ())
    if names == ():
        if len(_NAMES) >= 1000:
            _NAMES.clear()
        names = None
        if all(type(f) is str for f in fields):
            try:
                names = [f"${len(f.encode())}\r\n{f}" for f in fields]
            except UnicodeEncodeError:
                pass
        _NAMES[fields] = names
    return names


def _shaped_values(group: list[dict], int_ids: list[str] | None = None) -> tuple[int, list[str], bytes] | None:
    """What _shaped_script takes of documents that share their fields: the field count, the names as
    RESP, and the values (encode_value, a column at a time) each ended by a NUL, as one argument. None:
    the documents differ in their fields, have too many, a name that is not text, or a value that holds
    a NUL or cannot be encoded (INSERT_SCRIPT takes them). ``int_ids``: the documents' ``id`` values
    as text when they are all ints (made for their keys already)."""
    fields = tuple(group[0])
    k = len(fields)
    if k > SHAPED_FIELDS or list(map(tuple, group)).count(fields) != len(group):
        return None
    names = _field_names(fields)
    if names is None:
        return None
    try:
        columns = [int_ids if int_ids is not None and field == "id" else _encoded_texts(values)
                   for field, values in zip(fields, zip(*map(dict.values, group)))]
        values = "\x00".join(chain.from_iterable(zip(*columns))) + "\x00"
        if values.count("\x00") != len(group) * k:
            return None
        return k, names, values.encode()
    except ValueError:   # text that is not valid Unicode, an int too long to print
        return None


class _Inserter:
    """The insert scripts on a standalone server, encoded here and pipelined on one connection.

    A batch goes as one EVAL per SCRIPT_CHUNK documents, each sent as soon as it is encoded, so the server
    runs one while the next is being encoded (or all in one write when the read-ahead thread prepared
    them: _Prepared); the replies (the refused positions) are read at the end.
    Each call is atomic, as INSERT_SCRIPT is for a whole batch: a key that exists is left untouched and
    reported, every other document is written whole. The calls run in order on one connection, so a key
    that repeats across calls is refused after its first writer like one that repeats within a call.

    A call whose documents share their field names (in order), at most SHAPED_FIELDS of them, uses the
    script written for that count (_shaped_script): the names go once and the values in one argument,
    encoded a column at a time. The others (and a server whose Lua lacks struct) use INSERT_SCRIPT with
    each document's field/value pairs. The requests are RESP built here (redis-py packing each argument
    of each command cost more than the server's work). A chunk that cannot be encoded here (a field name
    that is not text, text that is not valid Unicode) goes through ``exact``, the session's redis-py call
    of INSERT_SCRIPT, after the calls in flight have answered.

    ``written`` counts the documents stored by the last insert() and ``at`` names the first key of the
    chunk that failed, for the message when one does."""

    def __init__(self, pool):
        self.pool = pool
        self.heads: dict[int | None, str] = {}         # field count (None: INSERT_SCRIPT) -> EVAL and the script
        self.struct: bool | None = None                  # whether the server's Lua has struct.unpack
        self.written = 0
        self.at: str | None = None

    def insert(self, prefix: str, ids: list[Any], docs: list[dict], ttl: int, exact,
               prepared: _Prepared | None = None) -> tuple[list[str], set[int]]:
        """Write each document to the key prefix + its id unless that key exists; returns the keys and the
        positions that were refused. ``exact(keys, start, end)`` settles docs[start:end] the redis-py way.
        Calls worked out here are sent as each is encoded (the server runs one while the next is being
        encoded); calls ``prepared`` ahead go out together."""
        self.written, self.at = 0, None
        ttl_bulk = f"${len(str(ttl))}\r\n{ttl}"
        plain = set(map(type, ids)) <= {int, str}
        keys: list[str] = []
        refused: set[int] = set()
        conn = self.pool.get_connection()   # (the pool checks it: a connection the server dropped is made anew)
        try:
            if self.struct is None:
                conn.send_packed_command((resp_commands([("EVAL", STRUCT_PROBE, 0)]),), check_health=False)
                self.struct = conn.read_response() == 1
            sent: list[tuple[int, int]] = []
            pending: list[bytes] = []
            for n, (start, end) in enumerate(pairwise([*range(0, len(ids), SCRIPT_CHUNK), len(ids)])):
                request = None
                if prepared is not None:
                    texts, repeats, shaped, these, request = prepared.calls[n]
                    if these is None or prepared.prefix != prefix or prepared.ttl != ttl or not self.struct:
                        these, request = list(map(prefix.__add__, texts)), None
                else:
                    these = (list(map(prefix.__add__, map(str, ids[start:end]))) if plain
                             else [f"{prefix}{doc_id}" for doc_id in ids[start:end]])
                    repeats, shaped = len(set(these)) < end - start, True
                keys += these
                if request is None:
                    request = self.request(these, docs[start:end], ttl_bulk, repeats, shaped)
                if request is None:
                    if pending:
                        conn.send_packed_command((b"".join(pending),), check_health=False)
                        pending = []
                    refused |= self._collect(conn, keys, sent)
                    sent = []
                    self.at = these[0]
                    done = exact(keys, start, end)
                    self.at = None
                    refused |= done
                    self.written += end - start - len(done)
                    continue
                pending.append(request)
                sent.append((start, end))
                if prepared is None:
                    conn.send_packed_command(pending, check_health=False)
                    pending = []
            if pending:   # one write: the thread reading ahead takes the GIL at each one
                conn.send_packed_command((b"".join(pending),), check_health=False)
            refused |= self._collect(conn, keys, sent)
        except BaseException as e:
            if not isinstance(e, rexc.ResponseError):   # (an error reply comes after all the others)
                conn.disconnect()   # replies may be in flight: not handed out again as it is
            if self.at is None and keys:
                self.at = keys[0]
            raise
        finally:
            self.pool.release(conn)
        return keys, refused

    def _collect(self, conn, keys: list[str], sent: list[tuple[int, int]]) -> set[int]:
        """The replies of the calls sent, in order; the first call that failed is raised once all have
        answered (the others ran, and count)."""
        refused: set[int] = set()
        failed = None
        for start, end in sent:
            try:
                reply = conn.read_response()
            except rexc.ResponseError as e:
                if failed is None:
                    failed, self.at = e, keys[start]
                continue
            refused.update(start + n - 1 for n in reply)
            self.written += end - start - len(reply)
        if failed is not None:
            raise failed
        return refused

    def _head(self, fields: int | None) -> str:
        head = self.heads.get(fields)
        if head is None:
            script = INSERT_SCRIPT if fields is None else _shaped_script(fields)
            head = self.heads[fields] = f"$4\r\nEVAL\r\n${len(script)}\r\n{script}"
        return head

    def request(self, keys: list[str], group: list[dict], ttl_bulk: str, repeats: bool,
                 shaped: tuple[int, list[str], bytes] | None | bool = True) -> bytes | None:
        """EVAL of an insert script writing group[n] to keys[n], in RESP; None: not encodable here.
        ``shaped``: _shaped_values(group) when it was worked out ahead (True: work it out now)."""
        n = len(keys)
        try:   # numkeys, KEYS, then ttl and repeats: the ARGV both scripts begin with
            common = [f"${len(str(n))}\r\n{n}",
                      "\r\n".join(chain.from_iterable(zip(_size_marks(_byte_lengths(keys)), keys))),
                      ttl_bulk, "$1\r\n1" if repeats else "$1\r\n0"]
            if self.struct:
                if shaped is True:
                    shaped = _shaped_values(group)
                if shaped:
                    k, names, data = shaped
                    start = "\r\n".join([f"*{6 + n + k}", self._head(k), *common, *names])
                    return b"%b\r\n$%d\r\n%b\r\n" % (start.encode(), len(data), data)
            body = []
            args = 5 + n
            for doc in group:
                names = _field_names(tuple(doc))
                if names is None:
                    return None
                texts = list(map(encode_value, doc.values()))
                body.append(f"${len(str(len(doc)))}\r\n{len(doc)}")
                body.extend(chain.from_iterable(zip(names, _size_marks(_byte_lengths(texts)), texts)))
                args += 1 + 2 * len(doc)
            return "\r\n".join([f"*{args}", self._head(None), *common, *body, ""]).encode()
        except ValueError:   # text that is not valid Unicode, an int too long to print: as redis-py has it
            return None


class _Prepared:
    """A batch's insert calls worked out ahead (RedisSession.prepare_batch): the documents' ids, and for
    each call of SCRIPT_CHUNK documents their ids as text, whether one repeats and _shaped_values(); with
    ``inserter`` and the key ``prefix`` (the collection's) also its keys and its request, used when
    the batch goes to that collection with that ``ttl``."""

    __slots__ = ("calls", "docs", "ids", "prefix", "ttl")

    def __init__(self, docs: list[dict], ids: list[Any], inserter: _Inserter | None = None,
                 prefix: str | None = None, ttl: int = 0):
        self.docs, self.ids, self.prefix, self.ttl = docs, ids, prefix, ttl
        self.calls = []
        ttl_bulk = f"${len(str(ttl))}\r\n{ttl}"
        for start, end in pairwise([*range(0, len(ids), SCRIPT_CHUNK), len(ids)]):
            these = ids[start:end]
            ints = set(map(type, these)) == {int}
            texts = int_texts(these) if ints else list(map(str, these))
            ints = texts if ints else None   # (then each document's "id" field is its id)
            repeats, shaped = len(set(texts)) < end - start, _shaped_values(docs[start:end], ints)
            keys = request = None
            if inserter is not None and prefix is not None:
                keys = list(map(prefix.__add__, texts))
                request = inserter.request(keys, docs[start:end], ttl_bulk, repeats, shaped)
            self.calls.append((texts, repeats, shaped, keys, request))


# --- the session --------------------------------------------------------------------------

def _split_url(url: str) -> tuple[str, bool]:
    """dbsh URL -> redis-py URL and whether it names a cluster."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    cluster = scheme.endswith("+cluster")
    base = scheme.split("+", 1)[0]
    query = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "cluster":
            cluster = cluster or value.lower() in ("1", "true", "yes", "on")
        else:
            query.append((key, value))
    return urlunsplit(parts._replace(scheme=base, query=urlencode(query))), cluster


class RedisSession(Session):
    capabilities = Capabilities(language="redis", statement_terminator=None)
    name = "Redis"

    def __init__(self, target):
        super().__init__(target)
        self._url, self.cluster = _split_url(target.url)
        self._raw = None
        self._insert_sha: str | None = None
        self._inserter: _Inserter | None = None   # standalone: made once the client is
        self.protocol = 3
        with self._errors():
            try:
                self.client = self._open(protocol=3)
            except (rexc.ResponseError, rexc.ConnectionError) as e:
                message = str(e)
                if isinstance(e, rexc.AuthenticationError) or not (
                        "HELLO" in message.upper() or "unknown command" in message.lower()
                        or "protocol" in message.lower()):
                    raise
                self.protocol = 2   # a server before Redis 6 has no RESP3
                self.client = self._open(protocol=2)
        if self.cluster:
            self.name = "Redis Cluster"
        else:
            self._inserter = _Inserter(self.client.connection_pool)

    def _open(self, *, protocol: int):
        kwargs = dict(protocol=protocol, socket_connect_timeout=10)
        try:
            if self.cluster:
                client = RedisCluster.from_url(self._url, **kwargs)
            else:
                client = redis.Redis.from_url(self._url, **kwargs)
                client.ping()
        except ValueError as e:
            raise UsageError(f"invalid Redis URL {self.target.display()}: {one_line(str(e))}") from None
        return client

    @contextmanager
    def _errors(self):
        """redis-py exceptions -> one-line dbsh errors with the right exit code."""
        try:
            yield
        except DbshError:
            raise
        except rexc.AuthenticationError as e:
            message = str(e)
            if "HELLO must be called" in message or "Authentication required" in message:
                message = "the server needs a password (put it in the URL, DBSH_PASSWORD, or use -W)"
            raise ConnectError(f"cannot authenticate to {self.target.display()}: {self._clean(message)}") from None
        except (rexc.ConnectionError, rexc.TimeoutError, rexc.ClusterDownError) as e:
            raise ConnectError(f"cannot connect to {self.target.display()}: {self._clean(str(e))}") from None
        except rexc.RedisClusterException as e:
            message = self._clean(str(e))
            if "Redis Cluster cannot be connected" in message or "cluster_enabled" in message.lower():
                raise ConnectError(f"cannot connect to {self.target.display()} as a cluster: {message}") from None
            raise QueryError(message) from None
        except rexc.ResponseError as e:
            message = self._clean(str(e))
            if message.startswith(("NOAUTH", "WRONGPASS")):
                raise ConnectError(f"cannot authenticate to {self.target.display()}: {message}") from None
            raise QueryError(message) from None
        except rexc.RedisError as e:
            raise QueryError(self._clean(str(e)) or type(e).__name__) from None

    def _clean(self, message: str) -> str:
        return redact(one_line(message), self.target.password)

    # -- connection ------------------------------------------------------------------------
    def server_info(self) -> dict[str, Any]:
        with self._errors():
            info = self.client.info("server")
        if self.cluster:   # {node: info} from every node
            info = next(iter(info.values())) if info and isinstance(next(iter(info.values())), dict) else info
        parts = urlsplit(self._url)
        return {"backend": self.name, "version": str(info.get("redis_version", "")),
                "mode": info.get("redis_mode"), "protocol": f"RESP{self.protocol}",
                "database": None if self.cluster else (parts.path.strip("/") or "0")}

    def databases(self) -> Result:
        """The numbered databases that hold keys (INFO keyspace), and the current one."""
        if self.cluster:
            raise Unsupported("a Redis Cluster has one database (0)")
        with self._errors():
            keyspace = self.client.info("keyspace")
        current = int(urlsplit(self._url).path.strip("/") or 0)
        found = {int(k[2:]): v for k, v in keyspace.items() if k.startswith("db") and k[2:].isdigit()}
        found.setdefault(current, {"keys": 0, "expires": 0})
        return Result(({"db": n, "keys": found[n].get("keys", 0), "expires": found[n].get("expires", 0),
                        "current": n == current} for n in sorted(found)), ["db", "keys", "expires", "current"])

    def ping(self) -> float:
        with self._errors():
            self.client.ping()
        return 0.0

    def close(self) -> None:
        for client in (self._raw, self.client):
            if client is not None:
                try:
                    client.close()
                except Exception:   # noqa: BLE001 - closing is best effort
                    pass

    # -- native commands ---------------------------------------------------------------------
    @property
    def raw(self):
        """A client that returns the server's replies untouched (no redis-py reply parsing)."""
        if self._raw is None:
            with self._errors():
                if self.cluster:
                    raw = RedisCluster.from_url(self._url, protocol=self.protocol, socket_connect_timeout=10)
                    raw.cluster_response_callbacks = {}
                    for node in raw.get_nodes():
                        if node.redis_connection is not None:
                            node.redis_connection.response_callbacks = {}
                else:
                    # one connection, so MULTI/EXEC, WATCH and SELECT behave as in redis-cli
                    raw = redis.Redis(connection_pool=self.client.connection_pool, single_connection_client=True)
                    raw.response_callbacks = {}
            self._raw = raw
        return self._raw

    def _route(self, args: list[Any]) -> dict[str, Any]:
        """Cluster: a command redis-py does not know goes to one node, which answers it (or says it is
        unknown) as redis-cli would; redis-py would otherwise refresh its command table and fail."""
        if not self.cluster:
            return {}
        known = self.raw.commands_parser.commands
        if str(args[0]).lower() in known:
            return {}
        return {"target_nodes": self.raw.get_default_node()}

    def execute(self, text_: str, params: dict[str, Any] | None = None) -> Result:
        lines = text_.splitlines()
        commands = [(n, line) for n, line in enumerate(lines, 1)
                    if line.strip() and not line.lstrip().startswith("#")]
        if len(commands) > 1:
            return self._pipe(commands, params or {})
        if not commands:
            raise UsageError("no command given")
        args = _bind(split_args(commands[0][1]), params or {})
        return self.command(args)

    def command(self, args: list[Any]) -> Result:
        name = _name(args[0])
        if name in STREAMING:
            return self._stream(name, args)
        if name in ("SYNC", "PSYNC"):
            raise Unsupported(f"{name} is a replication command; dbsh cannot run it")
        with self._errors():
            try:
                reply = self.raw.execute_command(*args, **self._route(args))
            except rexc.RedisClusterException as e:
                if "Missing key" not in str(e):
                    raise
                # a command redis-py cannot route (unknown to it, or CLUSTER INFO given as two words):
                # ask one node, so the server answers (or refuses) it as redis-cli would
                reply = self.raw.execute_command(*args, target_nodes=self.raw.get_default_node())
        return reply_result(name, args, reply)

    def _pipe(self, commands: list[tuple[int, str]], params: dict[str, Any]) -> Result:
        """Many commands, pipelined in chunks (like redis-cli --pipe), errors reported per line."""

        def run() -> Iterator[dict]:
            replies = failed_lines = total = 0
            failed: list[int] = []
            for chunk in batched(commands, PIPELINE_CHUNK):
                pipe = self.raw.pipeline(transaction=False)
                sent: list[int] = []
                for number, line in chunk:
                    total += 1
                    try:
                        args = _bind(split_args(line), params, strict=False)
                        name = _name(args[0])
                        if name in STREAMING or name in ("MULTI", "EXEC", "DISCARD", "WATCH"):
                            raise Unsupported(f"{name} cannot run in a pipelined batch")
                    except DbshError as e:
                        failed.append(number)
                        print(f"dbsh: line {number}: {e}", file=sys.stderr)
                        continue
                    pipe.execute_command(*args, **self._route(args))
                    sent.append(number)
                if not sent:
                    continue
                with self._errors():
                    results = pipe.execute(raise_on_error=False)
                for number, result in zip(sent, results):
                    if isinstance(result, Exception):
                        failed.append(number)
                        print(f"dbsh: line {number}: {self._clean(str(result))}", file=sys.stderr)
                    else:
                        replies += 1
            failed_lines = len(failed)
            if failed:
                failed.sort()
                shown = ", ".join(map(str, failed[:20])) + (", ..." if len(failed) > 20 else "")
                raise QueryError(f"{failed_lines} of {total} commands failed (lines {shown}); {replies} replies")
            yield {"commands": total, "replies": replies, "errors": 0}

        return Result(run(), ["commands", "replies", "errors"])

    def _stream(self, name: str, args: list[Any]) -> Result:
        """SUBSCRIBE / PSUBSCRIBE / SSUBSCRIBE / MONITOR: rows as messages arrive, until --count or Ctrl-C."""
        limit = self.option("count")
        if name == "MONITOR":
            if len(args) != 1:
                raise UsageError("MONITOR takes no arguments")
            with self._errors():
                monitor = self.client.monitor(target_node=self.client.get_default_node()) if self.cluster \
                    else self.client.monitor()
                monitor.__enter__()

            def monitor_rows() -> Iterator[dict]:
                seen = 0
                while limit is None or seen < limit:
                    with self._errors():
                        event = monitor.next_command()
                    seen += 1
                    yield {"time": event.get("time"), "db": event.get("db"),
                           "client": f"{event.get('client_address')}:{event.get('client_port')}",
                           "command": text(event.get("command"))}

            result = Result(monitor_rows(), ["time", "db", "client", "command"],
                            close=lambda: monitor.__exit__(None, None, None))
        else:
            if len(args) < 2:
                raise UsageError(f"{name} needs at least one channel")
            channels = [a if isinstance(a, str) else text(a) for a in args[1:]]
            with self._errors():
                pubsub = self.client.pubsub()
                getattr(pubsub, name.lower())(*channels)

            def message_rows() -> Iterator[dict]:
                seen = 0
                while limit is None or seen < limit:
                    with self._errors():
                        message = pubsub.get_message(timeout=1.0)
                    if message is None or message["type"] not in ("message", "pmessage", "smessage"):
                        continue
                    seen += 1
                    yield {"type": message["type"], "pattern": text(message.get("pattern")),
                           "channel": text(message["channel"]), "data": text(message["data"])}

            result = Result(message_rows(), ["type", "pattern", "channel", "data"], close=pubsub.close)
        result.streaming = True
        return result

    # -- uniform verbs -----------------------------------------------------------------------
    def _keys(self, collection: str, where: q.Filter, counter: list[int]) -> Iterator[str]:
        """Candidate keys: one key when the filter pins the id, else a SCAN of the prefix."""
        ids = q.equalities(where.ast) if not where.is_empty else {}
        for field in ("id", "_id"):
            value = ids.get(field)
            if isinstance(value, str | int) and not isinstance(value, bool):
                counter[0] += 1
                yield f"{collection}:{value}"
                return
        pattern = _glob_escape(collection) + ":*"
        with self._errors():
            for key in self.client.scan_iter(match=pattern, count=SCAN_COUNT, _type="hash"):
                counter[0] += 1
                yield text(key) if isinstance(text(key), str) else key

    def _documents(self, collection: str, where: q.Filter, counter: list[int]) -> Iterator[tuple[Any, dict]]:
        """(key, document) for every document of the collection that matches, fetched pipelined."""
        ast = None if where.is_empty else where.ast
        prefix = collection + ":"
        for keys in batched(self._keys(collection, where, counter), FETCH_BATCH):
            with self._errors():
                pipe = self.client.pipeline(transaction=False)
                for key in keys:
                    pipe.hgetall(key)
                hashes = pipe.execute(raise_on_error=False)
            for key, fields in zip(keys, hashes):
                if isinstance(fields, Exception) or not fields:
                    continue   # gone meanwhile, or not a hash
                doc = {_key_text(k): decode_value(v) for k, v in fields.items()}
                if "id" not in doc and "_id" not in doc:
                    suffix = key[len(prefix):] if isinstance(key, str) else text(key[len(prefix.encode()):])
                    doc = {"id": decode_value(suffix), **doc}
                if ast is None or q.matches(ast, doc):
                    yield key, doc

    def find(self, name: str, where: q.Filter, *, fields: list[str] | None = None,
             sort: list[tuple[str, int]] | None = None, limit: int | None = None,
             skip: int | None = None) -> Result:
        collection = _check_collection(name)
        counter = [0]
        where.ast   # a bad filter fails here, before any scanning

        def rows() -> Iterator[dict]:
            docs: Iterable[dict] = (doc for _, doc in self._documents(collection, where, counter))
            if sort:
                docs = _sorted(docs, sort)
            skipped = produced = 0
            try:
                for doc in docs:
                    if skip and skipped < skip:
                        skipped += 1
                        continue
                    if limit is not None and produced >= limit:
                        break
                    produced += 1
                    yield _project(doc, fields)
            finally:
                _scanned(collection, counter)

        return Result(rows(), None)

    def count(self, name: str, where: q.Filter) -> int:
        counter = [0]
        return sum(1 for _ in self._documents(_check_collection(name), where, counter))

    def prepare_batch(self, name: str, batch) -> None:
        """In the thread that reads ahead: the insert calls of a batch of documents with ids, worked out
        while the batch before is being written (_Prepared); insert_batch sends them. Anything unusual
        is left for the insert itself to work out and, if need be, refuse."""
        if self.cluster or batch.header is not None or not batch.docs:
            return
        inserter = self._inserter
        try:
            ids = _document_ids(batch.docs)
            if None in ids or not set(map(type, ids)) <= {int, str}:
                return
            prepared = _Prepared(batch.docs, ids, inserter if inserter.struct else None,
                                 f"{_check_collection(name)}:", int(self.option("ttl") or 0))
        except Exception:   # noqa: BLE001 - the insert meets it again and says what is wrong
            return
        batch.prepared = prepared

    def insert_batch(self, name: str, batch, *, create: bool = False) -> WriteResult:
        prepared = batch.prepared if type(batch.prepared) is _Prepared else None
        if prepared is not None and prepared.docs is batch.docs:
            return self.insert(name, batch.docs, batch=max(len(batch), 1), create=create, prepared=prepared)
        return super().insert_batch(name, batch, create=create)

    def insert(self, name: str, docs: Iterable[dict], *, batch: int = 1000, create: bool = False,
               progress=None, prepared: _Prepared | None = None) -> WriteResult:
        collection = _check_collection(name)
        ttl = int(self.option("ttl") or 0)
        inserted, ids, existing, rejected, offset = 0, [], [], [], 0
        for chunk in batched(docs, batch):
            ahead = prepared if prepared is not None and prepared.docs is chunk else None
            todo, todo_ids = chunk, ahead.ids if ahead is not None else _document_ids(chunk)
            while todo:   # generated ids that hit an existing key (written with an explicit id) go round again
                keys, sent_ids, generated, skipped = self._insert_round(collection, todo, todo_ids, ttl, inserted,
                                                                        ahead)
                ahead = None
                if not skipped:
                    inserted += len(keys)
                    if len(ids) <= 1000:
                        ids.extend(sent_ids[:1001 - len(ids)])
                    break
                again = []
                for n, key in enumerate(keys):
                    if n not in skipped:
                        inserted += 1
                        if len(ids) <= 1000:
                            ids.append(sent_ids[n])
                    elif n in generated:
                        again.append(todo[n])
                    else:   # explicit ids are all settled in the first round, so n is the chunk position
                        existing.append(key)
                        rejected.append((offset + n, f"key {key} already exists"))
                todo, todo_ids = again, [None] * len(again)
            offset += len(chunk)
            if progress:
                progress(inserted)
        if existing:
            more = f" and {len(existing) - 5} more" if len(existing) > 5 else ""
            raise PartialWrite(f"inserted {inserted} documents into {collection}; {len(existing)} already existed "
                               f"and were left unchanged: {', '.join(existing[:5])}{more}",
                               written=inserted, rejected=rejected)
        details = {"ttl": ttl} if ttl else {}
        return WriteResult("inserted", collection, inserted, ids=ids if len(ids) <= 1000 else None,
                           details=details)

    def _insert_round(self, collection: str, docs: list[dict], doc_ids: list[Any], ttl: int, inserted: int,
                      prepared: _Prepared | None = None):
        """Insert a batch: through _Inserter on a standalone server, with INSERT_SCRIPT once per hash slot
        (pipelined) on a cluster. Ids for documents without one (None in doc_ids) come from one INCRBY.
        Returns the keys and ids sent, the positions whose id was generated, and the positions whose key
        already existed (left unchanged)."""
        missing = doc_ids.count(None)
        generated: set[int] = set()
        stored = docs
        if missing:
            with self._errors():
                next_id = self.client.incrby(f"{collection}:{SEQ_SUFFIX}", missing) - missing
            doc_ids, stored = list(doc_ids), list(docs)
            for n, doc_id in enumerate(doc_ids):
                if doc_id is None:
                    next_id += 1
                    doc_ids[n] = next_id
                    stored[n] = {"id": next_id, **docs[n]}
                    generated.add(n)
        inserter = None
        keys: list[str] = []
        try:
            with self._errors():
                if self.cluster:
                    keys = [f"{collection}:{doc_id}" for doc_id in doc_ids]
                    slots: dict[int, list[int]] = {}
                    for n, key in enumerate(keys):
                        slots.setdefault(self.client.keyslot(key), []).append(n)
                    skipped = self._script_by_slot(keys, [_script_args(d) for d in stored], ttl,
                                                   list(slots.values()))
                else:
                    inserter = self._inserter
                    keys, skipped = inserter.insert(f"{collection}:", doc_ids, stored, ttl,
                                                    lambda ks, a, b: self._exact(ks, stored, ttl, a, b),
                                                    prepared if stored is docs else None)
        except QueryError as e:
            done = inserted + (inserter.written if inserter is not None else 0)
            at = inserter.at if inserter is not None and inserter.at else keys[0] if keys else f"{collection}:"
            raise QueryError(f"insert stopped at {at} after {done} documents: {e.message}") from None
        return keys, doc_ids, generated, skipped

    def _exact(self, keys: list[str], docs: list[dict], ttl: int, start: int, end: int) -> set[int]:
        """INSERT_SCRIPT over docs[start:end] on a standalone server: the positions whose key existed."""
        these = keys[start:end]
        repeats = int(len(set(these)) < len(these))
        args = [ttl, repeats, *(a for doc in docs[start:end] for a in _script_args(doc))]
        return {start + n - 1 for n in self._script(these, args)}

    def _script(self, keys: list[str], args: list[Any]) -> list[int]:
        """INSERT_SCRIPT on a standalone server by its SHA1, loading it when the server lacks it."""
        sha = self._insert_sha or self.client.script_load(INSERT_SCRIPT)
        self._insert_sha = sha
        try:
            return self.client.evalsha(sha, len(keys), *keys, *args)
        except rexc.NoScriptError:   # SCRIPT FLUSH or a restart meanwhile; nothing ran
            self._insert_sha = self.client.script_load(INSERT_SCRIPT)
            return self.client.evalsha(self._insert_sha, len(keys), *keys, *args)

    def _script_by_slot(self, keys: list[str], argv: list[list[Any]], ttl: int,
                        groups: list[list[int]]) -> set[int]:
        """INSERT_SCRIPT once per hash slot, all pipelined (a script may touch the keys of one slot only)."""
        skipped: set[int] = set()
        for attempt in (1, 2):
            if self._insert_sha is None:
                self._insert_sha = self.client.script_load(INSERT_SCRIPT)   # on every primary
            pipe = self.client.pipeline(transaction=False)
            for group in groups:
                group_keys = [keys[n] for n in group]
                repeats = int(len(set(group_keys)) < len(group_keys))
                pipe.execute_command("EVALSHA", self._insert_sha, len(group), *group_keys, ttl, repeats,
                                     *(a for n in group for a in argv[n]))
            results = pipe.execute(raise_on_error=False)
            retry = []
            for group, result in zip(groups, results):
                if isinstance(result, rexc.NoScriptError) and attempt == 1:
                    retry.append(group)   # a node that lost its scripts (restart, failover); nothing ran
                elif isinstance(result, Exception):
                    raise result
                else:
                    skipped.update(group[i - 1] for i in result)
            if not retry:
                break
            groups, self._insert_sha = retry, None
        return skipped

    def update(self, name: str, where: q.Filter, change: q.Update, *, upsert: bool = False,
               one: bool = False) -> WriteResult:
        collection = _check_collection(name)
        changes = change.changes
        for c in changes:
            if c.field.split(".")[0] in ("id", "_id"):
                raise Unsupported(f"cannot change {c.field!r}: it is part of the Redis key")
        counter = [0]
        matched = updated = 0
        for keys_docs in batched(self._documents(collection, where, counter), FETCH_BATCH):
            with self._errors():
                pipe = self.client.pipeline(transaction=False)
                for key, doc in keys_docs:
                    matched += 1
                    new = q.apply_update(changes, doc)
                    self._write_diff(pipe, key, doc, new)
                    if one:
                        break
                results = pipe.execute(raise_on_error=False)
            errors = [r for r in results if isinstance(r, Exception)]
            if errors:
                raise QueryError(f"update failed after {updated} documents: {self._clean(str(errors[0]))}")
            updated = matched
            if one:
                break
        _scanned(collection, counter)
        if matched == 0 and upsert:
            doc = q.apply_update(changes, {k: v for k, v in q.equalities(where.ast).items()
                                           if not isinstance(v, dict)})
            result = self.insert(collection, [doc])
            return WriteResult("upserted", collection, result.count, ids=result.ids)
        return WriteResult("updated", collection, updated, matched=matched)

    @staticmethod
    def _write_diff(pipe, key, old: dict, new: dict) -> None:
        removed = [f for f in old if f not in new]
        changed = {f: encode_value(v) for f, v in new.items() if f not in old or old[f] != v
                   or type(old[f]) is not type(v)}
        if removed:
            pipe.hdel(key, *removed)
        if changed:
            pipe.hset(key, mapping=changed)

    def delete(self, name: str, where: q.Filter, *, one: bool = False) -> WriteResult:
        collection = _check_collection(name)
        counter = [0]
        deleted = 0
        for keys_docs in batched(self._documents(collection, where, counter), FETCH_BATCH):
            keys = [k for k, _ in keys_docs][: 1 if one else None]
            with self._errors():
                pipe = self.client.pipeline(transaction=False)
                for key in keys:
                    pipe.delete(key)
                deleted += sum(r for r in pipe.execute() if isinstance(r, int))
            if one:
                break
        _scanned(collection, counter)
        return WriteResult("deleted", collection, deleted)

    # -- catalog ---------------------------------------------------------------------------
    def collections(self) -> list[str]:
        prefixes: set[str] = set()
        with self._errors():
            for n, key in enumerate(self.client.scan_iter(count=SCAN_COUNT), 1):
                name = text(key)
                if isinstance(name, str) and ":" in name:
                    prefixes.add(name.rpartition(":")[0])
                if n >= SAMPLE_KEYS:
                    print(f"dbsh: sampled the first {SAMPLE_KEYS} keys", file=sys.stderr)
                    break
        return sorted(prefixes)

    def describe(self, name: str) -> Result:
        collection = _check_collection(name)
        pattern = _glob_escape(collection) + ":*"
        keys: list[Any] = []
        with self._errors():
            for key in self.client.scan_iter(match=pattern, count=SCAN_COUNT):
                keys.append(key)
                if len(keys) >= DESCRIBE_SAMPLE:
                    break
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.type(key)
                pipe.memory_usage(key)
                pipe.ttl(key)
            meta = pipe.execute(raise_on_error=False)
            types = [text(t) for t in meta[0::3]]
            memory = [m for m in meta[1::3] if isinstance(m, int)]
            expiring = sum(1 for t in meta[2::3] if isinstance(t, int) and t >= 0)
            hashes = [k for k, t in zip(keys, types) if t == "hash"][:200]
            pipe = self.client.pipeline(transaction=False)
            for key in hashes:
                pipe.hgetall(key)
            docs = [r for r in pipe.execute(raise_on_error=False) if isinstance(r, dict)]
        if not keys:
            from dbsh.errors import NotFound

            raise NotFound(f"no keys match {collection}:*")
        fields: dict[str, dict[str, int]] = {}
        for doc in docs:
            for field, raw in doc.items():
                kinds = fields.setdefault(_key_text(field), {})
                kind = _json_type(decode_value(raw))
                kinds[kind] = kinds.get(kind, 0) + 1
        rows = [{"field": f, "type": "|".join(sorted(kinds)), "count": sum(kinds.values())}
                for f, kinds in fields.items()]
        by_type: dict[str, int] = {}
        for t in types:
            by_type[t] = by_type.get(t, 0) + 1
        type_text = ", ".join(f"{k} {v}" for k, v in sorted(by_type.items()))
        average = round(sum(memory) / len(memory)) if memory else 0
        more = "+" if len(keys) >= DESCRIBE_SAMPLE else ""
        message = (f"{collection}: {len(keys)}{more} keys sampled ({type_text}); {expiring} with a TTL; "
                   f"memory {sum(memory)} bytes, {average} per key; fields from {len(docs)} hashes")
        return Result(rows, ["field", "type", "count"], message=message)

    def vocabulary(self) -> dict[str, Any]:
        """The server's own command table (COMMAND DOCS, Redis 7+) as it answered it; none from an
        older server (the shell then uses the table shipped with dbsh). Read raw: redis-py's reply
        parser for COMMAND fails on DOCS and COUNT replies."""
        try:
            return {"command_docs": self.raw.execute_command("COMMAND", "DOCS")}
        except Exception:  # noqa: BLE001 - completion is best effort
            return {}

    def key_names(self, prefix: str, limit: int = 100) -> list[str]:
        """Keys beginning with ``prefix``: SCAN MATCH, at most 20 rounds of SCAN_COUNT keys, so a large
        keyspace costs a bounded time."""
        pattern = _glob_escape(prefix) + "*"
        found: list[str] = []
        with self._errors():
            if self.cluster:
                for key in self.client.scan_iter(match=pattern, count=SCAN_COUNT):
                    found.append(text(key))
                    if len(found) >= limit:
                        break
            else:
                cursor = 0
                for _ in range(20):
                    cursor, keys = self.client.scan(cursor, match=pattern, count=SCAN_COUNT)
                    found += [text(k) for k in keys]
                    if not cursor or len(found) >= limit:
                        break
        return sorted({k for k in found if isinstance(k, str)})[:limit]

    def completions(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name in self.collections()[:50]:
            try:
                out[name] = [r["field"] for r in self.describe(name)]
            except DbshError:
                out[name] = []
        return out


def _scanned(collection: str, counter: list[int]) -> None:
    noun = "key" if counter[0] == 1 else "keys"
    print(f"dbsh: scanned {counter[0]} {noun} of {collection}:* (filtered client-side)", file=sys.stderr)


# --- rendering replies ----------------------------------------------------------------------

def _name(arg: Any) -> str:
    raw = arg if isinstance(arg, bytes) else str(arg).encode()
    return raw.decode("utf-8", "replace").upper()


def _has(args: list[Any], word: bytes) -> bool:
    return any(isinstance(a, bytes) and a.upper() == word for a in args[1:])


def reply_result(name: str, args: list[Any], reply: Any) -> Result:
    """A Redis reply as rows: value; field/value for maps; member(/score) for sets and sorted sets."""
    if isinstance(reply, dict):
        return Result(({"field": k, "value": v} for k, v in text(reply).items()), ["field", "value"])
    if isinstance(reply, bytes) and (name == "INFO" or name == "CLUSTER" and _has(args[:2], b"INFO")):
        return Result(_info_rows(text(reply)), ["field", "value"])
    if isinstance(reply, list | tuple | set):
        items = text(list(reply))
        if name in SCORED or _has(args, b"WITHSCORES") or _has(args, b"WITHSCORE"):
            return Result(_scored(items), ["member", "score"])
        if name in SET_REPLIES:
            return Result(({"member": m} for m in items), ["member"])
        return Result(({"value": v} for v in items), ["value"])
    if isinstance(reply, bool):
        reply = "OK" if reply else reply
    return Result([{"value": text(reply)}], ["value"])


def _scored(items: list[Any]) -> Iterator[dict]:
    if items and all(isinstance(i, list) and len(i) == 2 for i in items):   # RESP3: [[member, score], ...]
        pairs = items
    elif len(items) == 3 and not isinstance(items[0], list):                 # BZPOPMIN: key, member, score
        pairs = [items[1:]]
    else:                                                                   # RESP2: member, score, ...
        pairs = list(zip(items[0::2], items[1::2]))
    for member, score in pairs:
        yield {"member": member, "score": _number(score)}


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _info_rows(body: str) -> Iterator[dict]:
    for line in body.splitlines():
        if line and not line.startswith("#") and ":" in line:
            field, _, value = line.partition(":")
            yield {"field": field, "value": value}


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


def _sorted(docs: Iterable[dict], sort: list[tuple[str, int]]) -> list[dict]:
    """Client-side sort; missing values first (as MongoDB does), mixed types grouped by type name."""
    items = list(docs)
    for field, direction in reversed(sort):
        def key(doc, field=field):
            value = q.lookup(doc, field)
            if value is q._MISSING or value is None:
                return (0, "", 0)
            if isinstance(value, bool):
                return (2, "bool", int(value))
            if isinstance(value, int | float):
                return (1, "", value)
            return (3, type(value).__name__, value if isinstance(value, str) else json.dumps(value, sort_keys=True))
        items.sort(key=key, reverse=direction < 0)
    return items


def _project(doc: dict, fields: list[str] | None) -> dict:
    if not fields:
        return doc
    out = {}
    for field in fields:
        value = q.lookup(doc, field)
        if value is not q._MISSING:
            out[field] = value
    return out
