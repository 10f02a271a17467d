"""Native Memcached commands: a line (redis-cli quoting) -> the exact protocol request, checked before
anything is sent; the replies -> rows.

Every argument is checked for what it is: keys (1-250 bytes, no space or control character), numbers
(digits only), meta flags (printable, no space). A value is sent as a data block of its counted length,
so no key, value or flag can end the command line and start another (no protocol injection).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dbsh.drivers.memcached.language import COMMANDS, REFUSED, STORAGE, check_key
from dbsh.drivers.memcached.protocol import Node, server_error
from dbsh.drivers.quoting import split_args
from dbsh.errors import QueryError, UsageError

# what the meta commands' returned flags mean, as column names
META_FLAGS = {"b": "base64", "c": "cas", "f": "flags", "h": "hit_before", "k": "key", "l": "last_access",
              "O": "opaque", "s": "size", "t": "ttl", "W": "win", "X": "stale", "Z": "win_sent"}
_NUMERIC_FLAGS = {"c", "f", "h", "l", "s", "t"}
_FLAG = re.compile(rb"[A-Za-z][!-~]*")
_UINT = re.compile(rb"\d{1,20}")
_INT = re.compile(rb"-?\d{1,19}")


def text(value: bytes) -> Any:
    """Bytes from the server as text when they are UTF-8; other bytes stay bytes (shown escaped)."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value


def bind(args: list[bytes], params: dict[str, Any], *, strict: bool = True) -> list[bytes]:
    """``:name`` arguments take the value of ``-p name=value`` as one whole argument (never re-split)."""
    if not params:
        return args
    used: set[str] = set()
    bound = []
    for arg in args:
        name = arg[1:].decode("utf-8", "replace") if arg.startswith(b":") else None
        if name is not None and name in params:
            used.add(name)
            value = params[name]
            if isinstance(value, bytes):
                bound.append(value)
            elif isinstance(value, str):
                bound.append(value.encode())
            else:
                bound.append(json.dumps(value).encode())
        else:
            bound.append(arg)
    unused = sorted(set(params) - used)
    if unused and strict:
        raise UsageError(f"parameter {unused[0]!r} is not used", hint=f"write :{unused[0]} as a whole argument")
    return bound


# -- a parsed command ----------------------------------------------------------------------------------
@dataclass
class Request:
    """One command: what goes to which server, how each server's reply is read, and its rows."""

    name: str
    parts: list[tuple[Node, bytes]]
    read: Callable[[Node], list[dict]]
    columns: list[str] | None = None
    broadcast: bool = False          # sent to every server: rows say which
    order: list[bytes] = field(default_factory=list)   # multi-key get: the keys in the order asked

    def run(self) -> list[dict]:
        for node, data in self.parts:
            node.send(data)
        return self.collect()

    def collect(self) -> list[dict]:
        """Every part's reply, read to the end even when one is an error (raised after)."""
        rows: list[dict] = []
        error = None
        for node, _ in self.parts:
            try:
                got = self.read(node)
            except (UsageError, QueryError) as e:
                if error is None:
                    error = e
                continue
            if self.broadcast and len(self.parts) > 1:
                got = [{"server": node.name, **row} for row in got]
            rows += got
        if error is not None:
            raise error
        if self.order:
            place = {key: n for n, key in enumerate(self.order)}
            rows.sort(key=lambda row: place.get(row.pop("_key"), 0))
        return rows


class Parser:
    """Lines -> Requests for a set of servers: ``route(key)`` names the server of a key, ``limit(node)``
    its item size limit (values over it are refused before sending)."""

    def __init__(self, nodes: list[Node], route: Callable[[bytes], Node], limit: Callable[[Node], int]):
        self.nodes, self.route, self.limit = nodes, route, limit

    def parse(self, line: str, params: dict[str, Any] | None = None, *, strict: bool = True) -> Request:
        args = bind(split_args(line), params or {}, strict=strict)
        if not args:
            raise UsageError("no command given")
        name = args[0].decode("utf-8", "replace").lower()
        if name in REFUSED:
            raise UsageError(f"{name}: {REFUSED[name]}")
        if name not in COMMANDS:
            raise UsageError(f"unknown Memcached command {name!r}",
                             hint="known: " + " ".join(sorted(COMMANDS)))
        rest = args[1:]
        for arg in rest:
            if name not in STORAGE and name != "ms" and _has_control(arg):
                raise UsageError(f"{name}: argument {arg[:40]!r} has a space or a control character")
        try:
            return getattr(self, "_" + name)(name, rest)
        except _Arity:
            raise UsageError(f"{name}: wrong arguments", hint=f"usage: {COMMANDS[name].usage}") from None

    # -- helpers ---------------------------------------------------------------------------------
    def _key(self, name: str, key: bytes) -> bytes:
        return check_key(key, f"{name}: key")

    def _value(self, name: str, node: Node, key: bytes, value: bytes) -> None:
        limit = self.limit(node)
        # memcached stores key, value and a header of about 50 bytes in one item
        if len(value) + len(key) + 64 > limit:
            raise UsageError(f"{name}: the value of {key.decode('utf-8', 'replace')} is {len(value)} bytes, over the "
                             f"server's item size limit ({limit} bytes with the key and item header)")

    @staticmethod
    def _number(name: str, what: str, arg: bytes, *, signed: bool = False, limit: int = 1 << 64) -> bytes:
        if not (_INT if signed else _UINT).fullmatch(arg) or abs(int(arg)) >= limit:
            kind = "an integer" if signed else "a non-negative integer"
            raise UsageError(f"{name}: {what} must be {kind}, got {arg[:40].decode('utf-8', 'replace')!r}")
        return arg

    def _broadcast(self, name: str, data: bytes, read, columns=None) -> Request:
        return Request(name, [(node, data) for node in self.nodes], read, columns, broadcast=True)

    @staticmethod
    def _noreply(rest: list[bytes]) -> tuple[list[bytes], bool]:
        if rest and rest[-1] == b"noreply":
            return rest[:-1], True
        return rest, False

    # -- retrieval -------------------------------------------------------------------------------
    def _get(self, name, rest, exptime: bytes | None = None):
        if not rest:
            raise _Arity()
        keys = [self._key(name, k) for k in rest]
        by_node: dict[int, tuple[Node, list[bytes]]] = {}
        for key in keys:
            node = self.route(key)
            by_node.setdefault(id(node), (node, []))[1].append(key)
        head = name.encode() + (b" " + exptime if exptime is not None else b"")
        parts = [(node, head + b" " + b" ".join(ks) + b"\r\n") for node, ks in by_node.values()]
        cas = name.endswith("s")
        columns = ["key", "value", "flags", "cas"] if cas else ["key", "value", "flags"]
        return Request(name, parts, lambda node: read_values(node, cas, keep_key=len(parts) > 1), columns,
                       order=keys if len(parts) > 1 else [])

    _gets = _get

    def _gat(self, name, rest):
        if len(rest) < 2:
            raise _Arity()
        return self._get(name, rest[1:], exptime=self._number(name, "the expiry", rest[0], signed=True))

    _gats = _gat

    # -- storage ---------------------------------------------------------------------------------
    def _set(self, name, rest):
        rest, noreply = self._noreply(rest)
        cas = b""
        if name == "cas":
            if len(rest) not in (3, 5):
                raise _Arity()
            cas = b" " + self._number(name, "the cas token", rest[-1])
            rest = rest[:-1]
        if len(rest) == 2:
            key, flags, exptime, value = rest[0], b"0", b"0", rest[1]
        elif len(rest) == 4:
            key, flags, exptime, value = rest
            self._number(name, "flags", flags, limit=1 << 32)
            self._number(name, "the expiry", exptime, signed=True)
        else:
            raise _Arity()
        key = self._key(name, key)
        node = self.route(key)
        self._value(name, node, key, value)
        data = b"%b %b %b %b %d%b%b\r\n%b\r\n" % (name.encode(), key, flags, exptime, len(value), cas,
                                                    b" noreply" if noreply else b"", value)
        return self._single(name, node, data, noreply)

    _add = _replace = _append = _prepend = _cas = _set

    def _single(self, name: str, node: Node, data: bytes, noreply: bool, read=None) -> Request:
        if noreply:   # the no-op after it tells when the server is through (and brings back any error)
            return Request(name, [(node, data + b"mn\r\n")], read_noreply, ["result"])
        return Request(name, [(node, data)], read or read_status, ["result"] if read is None else ["value"])

    def _incr(self, name, rest):
        rest, noreply = self._noreply(rest)
        if len(rest) != 2:
            raise _Arity()
        key = self._key(name, rest[0])
        delta = self._number(name, "the amount", rest[1])
        return self._single(name, self.route(key), b"%b %b %b%b\r\n" % (name.encode(), key, delta,
                            b" noreply" if noreply else b""), noreply, read_number)

    _decr = _incr

    def _delete(self, name, rest):
        rest, noreply = self._noreply(rest)
        if len(rest) != 1:
            raise _Arity()
        key = self._key(name, rest[0])
        return self._single(name, self.route(key), b"delete %b%b\r\n" % (key, b" noreply" if noreply else b""),
                            noreply)

    def _touch(self, name, rest):
        rest, noreply = self._noreply(rest)
        if len(rest) != 2:
            raise _Arity()
        key = self._key(name, rest[0])
        exptime = self._number(name, "the expiry", rest[1], signed=True)
        return self._single(name, self.route(key), b"touch %b %b%b\r\n" % (key, exptime,
                            b" noreply" if noreply else b""), noreply)

    # -- meta commands ---------------------------------------------------------------------------
    def _meta_flags(self, name: str, flags: list[bytes]) -> list[bytes]:
        for flag in flags:
            if not _FLAG.fullmatch(flag):
                raise UsageError(f"{name}: bad flag {flag[:40].decode('utf-8', 'replace')!r}",
                                 hint="a flag is a letter and its token, e.g. v, T60, C123")
        return flags

    def _meta(self, name: str, key: bytes, flags: list[bytes], value: bytes | None = None) -> Request:
        key = self._key(name, key)
        node = self.route(key)
        head = b" ".join([name.encode(), key, *([b"%d" % len(value)] if value is not None else []), *flags])
        data = head + b"\r\n" + (value + b"\r\n" if value is not None else b"")
        quiet = b"q" in flags
        if quiet:
            data += b"mn\r\n"
        return Request(name, [(node, data)], lambda n: read_meta(n, quiet), None)

    def _mg(self, name, rest):
        if not rest:
            raise _Arity()
        return self._meta(name, rest[0], self._meta_flags(name, rest[1:]))

    _md = _ma = _mg

    def _ms(self, name, rest):
        if len(rest) < 2:
            raise _Arity()
        key, value, flags = self._key(name, rest[0]), rest[1], self._meta_flags(name, rest[2:])
        self._value(name, self.route(key), key, value)
        return self._meta(name, key, flags, value)

    def _me(self, name, rest):
        if len(rest) != 1:
            raise _Arity()
        key = self._key(name, rest[0])
        return Request(name, [(self.route(key), b"me %b\r\n" % key)], read_debug, None)

    def _mn(self, name, rest):
        if rest:
            raise _Arity()
        return self._broadcast(name, b"mn\r\n", read_status, ["result"])

    # -- the server --------------------------------------------------------------------------------
    def _stats(self, name, rest):
        return self._broadcast(name, b" ".join([b"stats", *rest]) + b"\r\n", read_stats, None)

    def _flush_all(self, name, rest):
        rest, noreply = self._noreply(rest)
        if len(rest) > 1:
            raise _Arity()
        delay = [self._number(name, "the delay", rest[0])] if rest else []
        data = b" ".join([b"flush_all", *delay, *([b"noreply"] if noreply else [])]) + b"\r\n"
        if noreply:
            return self._broadcast(name, data + b"mn\r\n", read_noreply, ["result"])
        return self._broadcast(name, data, read_status, ["result"])

    def _version(self, name, rest):
        if rest:
            raise _Arity()
        return self._broadcast(name, b"version\r\n", read_version, ["version"])

    def _verbosity(self, name, rest):
        rest, noreply = self._noreply(rest)
        if len(rest) != 1:
            raise _Arity()
        data = b"%b %b%b\r\n" % (name.encode(), self._number(name, "the level", rest[0]),
                                 b" noreply" if noreply else b"")
        if noreply:
            return self._broadcast(name, data + b"mn\r\n", read_noreply, ["result"])
        return self._broadcast(name, data, read_status, ["result"])

    _cache_memlimit = _verbosity

    def _lru_crawler(self, name, rest):
        if not rest or rest[0].lower() != b"metadump" or len(rest) != 2:
            raise UsageError("lru_crawler: dbsh runs only `lru_crawler metadump all|hash|CLASSIDS`",
                             hint="the crawler's settings are the server's business")
        return self._broadcast(name, b"lru_crawler metadump " + rest[1] + b"\r\n", read_metadump, None)


class _Arity(Exception):
    pass


def _has_control(arg: bytes) -> bool:
    return any(b < 0x21 or b == 0x7F for b in arg)


# -- reading replies ---------------------------------------------------------------------------------
def _raise(line: bytes):
    error = server_error(line)
    if error is None:
        error = QueryError(f"unexpected reply: {line[:80].decode('utf-8', 'replace')}")
    raise error


def read_values(node: Node, cas: bool, keep_key: bool = False) -> list[dict]:
    rows = []
    while (line := node.line()) != b"END":
        parts = line.split(b" ")
        if parts[0] != b"VALUE" or len(parts) < 4:
            _raise(line)
        value = node.data(int(parts[3]))
        row = {"key": text(parts[1]), "value": text(value), "flags": int(parts[2])}
        if cas:
            row["cas"] = int(parts[4])
        if keep_key:
            row["_key"] = parts[1]
        rows.append(row)
    return rows


def read_status(node: Node) -> list[dict]:
    line = node.line()
    if server_error(line) is not None:
        _raise(line)
    return [{"result": line.decode("utf-8", "replace")}]


def read_noreply(node: Node) -> list[dict]:
    said = node.until_noop()
    for line in said:
        if server_error(line) is not None:
            _raise(line)
    return [{"result": "sent (noreply)"}]


def read_number(node: Node) -> list[dict]:
    line = node.line()
    if line.isdigit():
        return [{"value": int(line)}]
    if server_error(line) is not None:
        _raise(line)
    return [{"value": line.decode("utf-8", "replace")}]


def read_version(node: Node) -> list[dict]:
    line = node.line()
    if not line.startswith(b"VERSION "):
        _raise(line)
    return [{"version": line[8:].decode("utf-8", "replace")}]


def read_stats(node: Node) -> list[dict]:
    rows = []
    while (line := node.line()) != b"END":
        if server_error(line) is not None:
            _raise(line)
        if line in (b"OK", b"RESET"):   # stats detail on|off, stats reset
            return [{"result": line.decode()}]
        kind, _, rest = line.partition(b" ")
        if kind == b"STAT":
            stat, _, value = rest.partition(b" ")
            rows.append({"stat": stat.decode("utf-8", "replace"), "value": number_or_text(value)})
        else:                           # ITEM (cachedump), PREFIX (detail dump)
            first, _, value = rest.partition(b" ")
            rows.append({"stat": f"{kind.decode()} {text(first)}", "value": value.decode("utf-8", "replace")})
    return rows


def read_metadump(node: Node) -> list[dict]:
    rows = []
    for item in node.items():
        row = {"key": text(item.pop(b"key"))}
        for name, value in item.items():
            row[name.decode()] = number_or_text(value)
        rows.append(row)
    return rows


def read_debug(node: Node) -> list[dict]:
    line = node.line()
    if line == b"EN":
        return [{"result": "EN"}]
    if not line.startswith(b"ME "):
        _raise(line)
    parts = line.split(b" ")
    row: dict[str, Any] = {"result": "ME", "key": text(parts[1])}
    for part in parts[2:]:
        name, _, value = part.partition(b"=")
        row[name.decode()] = number_or_text(value)
    return [row]


def meta_row(node: Node, line: bytes) -> dict:
    """One meta reply (HD, VA, EN, NS, EX, NF, MN) with its returned flags as columns."""
    if server_error(line) is not None:
        _raise(line)
    parts = line.split(b" ")
    code = parts[0].decode("utf-8", "replace")
    row: dict[str, Any] = {"result": code}
    flags = parts[1:]
    if code == "VA":
        size, flags = int(parts[1]), parts[2:]
        row["value"] = text(node.data(size))
    for flag in flags:
        letter, token = chr(flag[0]), flag[1:]
        column = META_FLAGS.get(letter, letter)
        if not token:
            row[column] = True
        elif letter in _NUMERIC_FLAGS and _INT.fullmatch(token):
            row[column] = int(token)
        else:
            row[column] = text(token)
    return row


def read_meta(node: Node, quiet: bool) -> list[dict]:
    if not quiet:
        return [meta_row(node, node.line())]
    rows, error = [], None
    while (line := node.line()) != b"MN":
        try:
            rows.append(meta_row(node, line))
        except (UsageError, QueryError) as e:
            error = error or e
    if error is not None:
        raise error
    return rows


def number_or_text(value: bytes) -> Any:
    if _INT.fullmatch(value):
        return int(value)
    return value.decode("utf-8", "replace")
