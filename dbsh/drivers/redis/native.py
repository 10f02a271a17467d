"""Redis native commands: redis-cli quoting (sdssplitargs), ``:name`` parameters, replies as rows, and
RESP requests encoded straight into one buffer."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from dbsh.drivers.base import Result
from dbsh.errors import UsageError

STREAMING = {"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "MONITOR"}
SET_REPLIES = {"SMEMBERS", "SINTER", "SUNION", "SDIFF", "SRANDMEMBER", "SPOP"}
SCORED = {"ZPOPMIN", "ZPOPMAX", "BZPOPMIN", "BZPOPMAX", "ZMPOP", "BZMPOP"}
# commands that change the connection they run on (the warm agent does not reuse it after them)
CONNECTION_STATE = frozenset("""SELECT CLIENT MULTI EXEC DISCARD WATCH UNWATCH SUBSCRIBE PSUBSCRIBE SSUBSCRIBE
UNSUBSCRIBE PUNSUBSCRIBE SUNSUBSCRIBE MONITOR RESET AUTH HELLO READONLY READWRITE QUIT SYNC PSYNC REPLCONF
ASKING""".split())

# redis-cli quoting (sdssplitargs) is shared with Memcached's commands
from dbsh.drivers.quoting import split_args  # noqa: E402,F401


def _bind(args: list[bytes], params: dict[str, Any], *, strict: bool = True) -> list[Any]:
    """``:name`` arguments take the value of ``-p name=value`` as one whole argument (never re-split).

    The command name goes to redis-py as text (its cluster router looks commands up by name).
    """
    words: list[Any] = [args[0].decode("utf-8", "replace"), *args[1:]] if args else args
    if not params:
        return words
    used: set[str] = set()
    bound: list[Any] = []
    for arg in words:
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
    if isinstance(reply, bytes) and (name == "INFO" or (name == "CLUSTER" and _has(args[:2], b"INFO"))):
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

