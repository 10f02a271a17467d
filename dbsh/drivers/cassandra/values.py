"""JSON values in, each CQL type's Python value out (what cassandra-driver serialises), and the
column types ``insert --create`` gives documents. Pure: nothing here needs the driver at import time
(its time and duration classes are imported where those types are met)."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import ipaddress
import json
import math
import re
import uuid
from typing import Any

from dbsh.errors import UsageError


def split_type(kind: str) -> tuple[str, list[str]]:
    """``map<text, frozen<list<int>>>`` -> ("map", ["text", "frozen<list<int>>"])."""
    kind = kind.strip()
    if "<" not in kind:
        return kind.lower(), []
    head, inner = kind.split("<", 1)
    inner = inner.rsplit(">", 1)[0]
    args, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "," and depth == 0:
            args.append(inner[start:i].strip())
            start = i + 1
    args.append(inner[start:].strip())
    head = head.strip().lower()
    if head == "frozen":
        return split_type(args[0])
    return head, args


def coerce(kind: str, value: Any, column: str) -> Any:
    """A JSON value as the Python type the driver serialises for this CQL type."""
    if value is None:
        return None
    head, args = split_type(kind)
    try:
        if head in ("uuid", "timeuuid"):
            if isinstance(value, uuid.UUID):
                return value
            if not isinstance(value, str):
                raise ValueError
            return uuid.UUID(value)
        if head in ("int", "bigint", "smallint", "tinyint", "varint", "counter"):
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
                    return int(value)
                raise ValueError
            return value
        if head in ("float", "double"):
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ValueError
            return float(value)
        if head == "decimal":
            if isinstance(value, bool):
                raise ValueError
            return decimal.Decimal(str(value))
        if head == "boolean":
            if not isinstance(value, bool):
                raise ValueError
            return value
        if head in ("text", "varchar", "ascii"):
            if isinstance(value, (dict, list)) and head != "ascii":   # nested values: JSON text
                return json.dumps(value, ensure_ascii=False, default=str)
            if not isinstance(value, str):
                raise ValueError
            return value
        if head == "timestamp":
            if isinstance(value, dt.datetime):
                return value
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return dt.datetime.fromtimestamp(value / 1000, dt.UTC)
            text = str(value).replace("Z", "+00:00")
            return dt.datetime.fromisoformat(text)
        if head == "date":
            return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
        if head == "time":   # nanoseconds: "12:34:56.123456789", or nanoseconds since midnight
            from cassandra.util import Time

            if isinstance(value, bool) or not isinstance(value, (dt.time, Time, int, str)):
                raise ValueError
            return Time(value)
        if head == "duration":
            from cassandra.util import Duration

            return value if isinstance(value, Duration) else parse_duration(value)
        if head == "inet":
            return str(ipaddress.ip_address(str(value)))
        if head == "blob":
            if isinstance(value, (bytes, bytearray)):
                return bytes(value)
            if isinstance(value, dict) and "$binary" in value:
                return base64.b64decode(value["$binary"]["base64"])
            if isinstance(value, str):
                return value.encode("utf-8")
            raise ValueError
        if head in ("list", "set"):
            if not isinstance(value, (list, tuple, set)):
                raise ValueError
            items = [coerce(args[0], v, column) for v in value]
            return items if head == "list" else set(items)
        if head == "map":
            if not isinstance(value, dict):
                raise ValueError
            return {coerce(args[0], k, column): coerce(args[1], v, column) for k, v in value.items()}
        if head == "tuple":
            if not isinstance(value, (list, tuple)) or len(value) != len(args):
                raise ValueError
            return tuple(coerce(a, v, column) for a, v in zip(args, value))
    except (ValueError, TypeError, decimal.InvalidOperation, ArithmeticError):
        hint = None
        if head in ("uuid", "timeuuid") and value in ("uuid()", "now()"):
            hint = "dbsh does not run CQL functions from JSON: use --generate-id, or query 'INSERT ... uuid()'"
        raise UsageError(f"column {column!r} is {kind}: {value!r} is not a valid {head}", hint=hint) from None
    return value   # user-defined and other types: let the driver decide


def cql_type(values: list[Any]) -> str:
    """The CQL type --create gives a column holding these JSON values (nested ones are JSON text)."""
    kinds = {type(v) for v in values if v is not None}
    for kind, cql in ((bool, "boolean"), (int, "bigint"), (float, "double"), (dt.datetime, "timestamp"),
                      (dt.date, "date"), (uuid.UUID, "uuid"), (bytes, "blob")):
        if kinds and kinds <= {kind}:
            return cql
    if kinds and kinds <= {int, float}:
        return "double"
    if kinds and kinds <= {int, decimal.Decimal}:
        return "decimal"
    return "text"


def infer_columns(docs: list[dict]) -> dict[str, str]:
    values: dict[str, list[Any]] = {}
    for doc in docs:
        for key, value in doc.items():
            values.setdefault(key, []).append(value)
    return {key: cql_type(v) for key, v in values.items()}


DURATION_UNITS = {"y": (12, 0, 0), "mo": (1, 0, 0), "w": (0, 7, 0), "d": (0, 1, 0), "h": (0, 0, 3600 * 10**9),
                  "m": (0, 0, 60 * 10**9), "s": (0, 0, 10**9), "ms": (0, 0, 10**6), "us": (0, 0, 1000),
                  "µs": (0, 0, 1000), "ns": (0, 0, 1)}


def parse_duration(value: Any):
    """A CQL duration literal such as ``1h30m`` or ``-2mo3d`` (the form dbsh prints: ``0mo0d5400000000000ns``)."""
    text = value.strip().lower() if isinstance(value, str) else ""
    sign = -1 if text.startswith("-") else 1
    parts = re.findall(r"(\d+)(mo|ms|us|µs|ns|y|w|d|h|m|s)", text.lstrip("-"))
    if not parts or "".join(n + u for n, u in parts) != text.lstrip("-"):
        raise ValueError
    months = days = nanos = 0
    for number, unit in parts:
        m, d, n = DURATION_UNITS[unit]
        months, days, nanos = months + int(number) * m, days + int(number) * d, nanos + int(number) * n
    from cassandra.util import Duration

    return Duration(sign * months, sign * days, sign * nanos)



# -- filters: MongoDB's meaning on typed columns ----------------------------------------------
INTEGERS = {"int": 32, "bigint": 64, "counter": 64, "smallint": 16, "tinyint": 8, "varint": None}   # bits
FLOATS = ("float", "double")
TEXTS = ("text", "varchar", "ascii")
COLLECTIONS = ("list", "set", "map")


def family(kind: str) -> str:
    """How a filter compares with a column: "number", "string" and "boolean" columns hold JSON values,
    compared as MongoDB does (34 is 34.0, "34" is not 34, 1 is not true); "collection" columns (list, set,
    map) are checked by dbsh; the other types ("typed": uuid, timestamp, inet, ...) read a filter value
    as their own type, as insert does."""
    head = split_type(kind)[0]
    if head in INTEGERS or head in FLOATS or head == "decimal":
        return "number"
    if head in TEXTS:
        return "string"
    if head == "boolean":
        return "boolean"
    if head in COLLECTIONS:
        return "collection"
    return "typed"


def bound(kind: str, op: str, value: Any, column: str) -> tuple[str, Any] | None:
    """``column op value`` as the CQL comparison to send (op, value of the column's type), or None when no
    value of the column can satisfy it under MongoDB's rules (a value of another JSON type, a fraction
    equal to an int column, a bound beyond the column's range). ``value`` is not None."""
    head = split_type(kind)[0]
    kind_family = family(kind)
    if kind_family == "typed":
        return op, coerce(kind, value, column)
    if kind_family == "string":
        ok = isinstance(value, str) and (head != "ascii" or value.isascii())
        return (op, value) if ok else None
    if kind_family == "boolean":
        return (op, value) if isinstance(value, bool) else None
    if isinstance(value, bool) or not isinstance(value, (int, float, decimal.Decimal)):
        return None
    if head in FLOATS:
        return op, float(value)
    if head == "decimal":
        return op, decimal.Decimal(str(value))
    if value != value:   # NaN equals nothing and orders with nothing
        return None
    if not isinstance(value, int):
        if value in (float("inf"), float("-inf")):
            return None if (value > 0) == (op in ("eq", "gt", "gte")) else ("exists", None)
        whole = int(value)
        if whole == value:
            value = whole
        elif op == "eq":
            return None
        else:   # n > 30.5 is n > 30, n <= 30.5 is n < 31
            op, value = ("gt", math.floor(value)) if op in ("gt", "gte") else ("lt", math.ceil(value))
    bits = INTEGERS[head]
    if bits is not None:   # a bound beyond the type's range: nothing, or every value
        low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        if value > high:
            return None if op in ("eq", "gt", "gte") else ("exists", None)
        if value < low:
            return None if op in ("eq", "lt", "lte") else ("exists", None)
    return op, value


def map_json(value) -> dict:
    """A CQL map as a JSON object: keys that are not text become their JSON text (map<int, ...> -> "1")."""
    return {k if isinstance(k, str) else key_text(k): v for k, v in value.items()}


def key_text(key: Any) -> str:
    from dbsh.output import jsonable

    plain = jsonable(key)
    return plain if isinstance(plain, str) else json.dumps(plain, separators=(",", ":"), default=jsonable)
