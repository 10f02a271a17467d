"""Values between data models: what every backend can store, flattening, field renames."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Callable, Iterable
from typing import Any

from dbsh.drivers.base import Session
from dbsh.errors import UsageError


# -- values between models --------------------------------------------------------------------
def plain_value(value: Any, keep_dates: bool, keep_decimals: bool | None = None,
                nested_dates: bool | None = None) -> Any:
    """A value every backend can store: ObjectId -> its hex string, graph/driver types -> JSON forms.
    ``keep_dates``: dates and times stay Python's (a Neo4j date or time becomes one: nanoseconds past
    the microsecond are dropped); ``keep_decimals`` (default: as keep_dates): decimals stay exact;
    ``nested_dates`` (default: as keep_dates): dates inside lists and objects stay Python's too."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if keep_decimals is None:
        keep_decimals = keep_dates
    inner = keep_dates if nested_dates is None else nested_dates
    if isinstance(value, dict):
        return {str(k): plain_value(v, inner, keep_decimals and inner) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_value(v, inner, keep_decimals and inner) for v in value]
    if keep_dates and isinstance(value, dt.datetime | dt.date | dt.time):
        return value
    if keep_dates and callable(getattr(value, "to_native", None)):   # neo4j.time Date, Time, DateTime
        native = value.to_native()
        if isinstance(native, dt.datetime | dt.date | dt.time):
            return native
    if keep_decimals and isinstance(value, decimal.Decimal):
        return value
    from dbsh.output import jsonable

    converted = jsonable(value)
    if isinstance(converted, dict) and len(converted) == 1:
        (key, inner), = converted.items()
        if key in ("$oid", "$uuid", "$numberDecimal", "$numberLong"):
            return inner   # ObjectId -> "65f0...", as the issue asks: a string, not extended JSON
        if key == "$date":
            return inner if isinstance(inner, str) else converted
    return plain_value(converted, keep_dates, keep_decimals) if isinstance(converted, dict | list) else converted


def flatten(doc: dict, sep: str = "_", prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a_b": 1}; lists stay values (JSON columns)."""
    out: dict = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, sep, name + sep))
        else:
            out[name] = value
    return out


def parse_map(pairs: Iterable[str] | None) -> dict[str, str | None]:
    """``--map a:b`` renames field a to b; ``--map a:`` drops a."""
    mapping: dict[str, str | None] = {}
    for pair in pairs or ():
        old, sep, new = pair.partition(":")
        old, new = old.strip(), new.strip()
        if not sep or not old:
            raise UsageError(f"bad --map {pair!r}", hint="use --map old:new (or old: to drop the field)")
        if old in mapping:
            raise UsageError(f"--map names {old!r} twice")
        mapping[old] = new or None
    targets = [n for n in mapping.values() if n]
    if len(targets) != len(set(targets)):
        raise UsageError("--map renames two fields to the same name")
    return mapping


def converter(destination: Session, *, mapping: dict[str, str | None] | None = None, flat: bool = False,
              source: Session | None = None) -> Callable[[dict], dict]:
    keep_dates = destination.capabilities.schema or destination.capabilities.dates
    keep_decimals = keep_dates and destination.capabilities.decimals
    # inside lists and objects too where the store has nested dates (MongoDB's BSON), and when objects
    # become columns (--flatten); a JSON column (SQL, Cassandra) holds JSON only
    caps = destination.capabilities
    nested_dates = (caps.dates and caps.nested and not caps.schema) or flat
    mapping = dict(mapping or {})
    for internal in (source.internal_fields if source is not None else ()):
        mapping.setdefault(internal, None)
    # where values are scalars or lists of scalars (graph properties), nested ones travel as JSON text
    scalars_only = not destination.capabilities.nested

    def convert(doc: dict) -> dict:
        doc = {str(k): plain_value(v, keep_dates, keep_decimals, nested_dates) for k, v in doc.items()}
        if flat:
            doc = flatten(doc)
        if mapping:
            doc = {mapping.get(k, k): v for k, v in doc.items() if mapping.get(k, k) is not None}
        if scalars_only:
            doc = {k: json.dumps(v, ensure_ascii=False) if _nested(v) else v for k, v in doc.items()}
        return doc

    return convert


def _nested(value: Any) -> bool:
    return isinstance(value, dict) or (isinstance(value, list) and any(isinstance(v, dict | list) for v in value))
