"""Redis inserts: the Lua scripts that write a batch of documents atomically (a key that exists is left
untouched and reported), the values encoded a column at a time, and _Inserter, which pipelines the
script calls of a batch on one connection."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from itertools import chain, pairwise, repeat
from typing import Any

import orjson  # prints columns of numbers in one C call
from redis import exceptions as rexc

from dbsh.drivers.base import int_texts
from dbsh.drivers.redis.native import resp_commands, text
from dbsh.errors import UsageError

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
    if str in set(map(type, ids)) and any(":" in i for i in ids if type(i) is str):
        bad = next(i for i in ids if type(i) is str and ":" in i)
        raise UsageError(f"a Redis document id cannot contain ':' (got {json.dumps(bad)})",
                         hint="the key COLLECTION:a:b is document b of the collection COLLECTION:a")
    return ids


def _script_args(doc: dict) -> list[Any]:
    """One document in INSERT_SCRIPT's ARGV: its field count, then field/value pairs."""
    flat: list[Any] = [len(doc)]
    for field, value in doc.items():
        flat.append(field)
        flat.append(encode_value(value))
    return flat



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
MULTI, EXEC = b"*1\r\n$5\r\nMULTI\r\n", b"*1\r\n$4\r\nEXEC\r\n"
STRUCT_PROBE = "return pcall(function() return struct.unpack('s', 'x\\0') end) and 1 or 0"


_NAMES: dict[tuple, list[str] | None] = {}   # field names -> them as RESP bulk strings (None: not text)


def _field_names(fields: tuple) -> list[str] | None:
    try:
        return _NAMES[fields]
    except KeyError:
        pass
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

    A batch goes as one EVAL per SCRIPT_CHUNK documents, each sent as soon as it is encoded (or all in one
    write when the read-ahead thread prepared them: _Prepared), inside one MULTI ... EXEC: the server runs
    the batch's calls together when EXEC arrives, so a client killed at any point (kill -9) leaves the
    whole batch written or none of it, and --resume continues exactly. The replies (the refused
    positions) are read at the end. Each call, as INSERT_SCRIPT for a whole batch, leaves a key that exists
    untouched and reports it, and writes every other document whole. The calls run in order, so a key
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
            shaped: tuple[int, list[str], bytes] | bool | None
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
                if request is None:   # (the calls sent so far run as one transaction, then this one alone)
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
                pending.append(request if sent else MULTI + request)
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
        """EXEC the transaction of the calls sent and read their replies, in order; the first call that
        failed is raised once all have answered (the others ran, and count)."""
        if not sent:
            return set()
        conn.send_packed_command((EXEC,), check_health=False)
        conn.read_response()                      # MULTI: OK
        failed: Exception | None = None
        for start, _ in sent:                     # each call: QUEUED, or an error (EXEC then runs none)
            try:
                conn.read_response()
            except rexc.ResponseError as e:
                if failed is None:
                    failed, self.at = e, keys[start]
        try:
            replies = conn.read_response()
        except rexc.ResponseError as e:           # EXECABORT: nothing ran
            raise failed or e from None
        refused: set[int] = set()
        for (start, end), reply in zip(sent, replies):
            if isinstance(reply, Exception):
                if failed is None:
                    failed, self.at = reply, keys[start]
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
                 shaped: tuple[int, list[str], bytes] | bool | None = True) -> bytes | None:
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
                    k, shaped_names, data = shaped
                    start = "\r\n".join([f"*{6 + n + k}", self._head(k), *common, *shaped_names])
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
            all_ints = set(map(type, these)) == {int}
            texts = int_texts(these) if all_ints else list(map(str, these))
            ints = texts if all_ints else None   # (then each document's "id" field is its id)
            repeats, shaped = len(set(texts)) < end - start, _shaped_values(docs[start:end], ints)
            keys = request = None
            if inserter is not None and prefix is not None:
                keys = list(map(prefix.__add__, texts))
                request = inserter.request(keys, docs[start:end], ttl_bulk, repeats, shaped)
            self.calls.append((texts, repeats, shaped, keys, request))
