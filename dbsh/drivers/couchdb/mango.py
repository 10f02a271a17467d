"""dbsh's filters, projections and sorts as a Mango ``_find`` request. Pure: no I/O, no client.

Mango is MongoDB's query language in CouchDB's words, so a selector is the filter document itself,
once checked: an operator Mango does not have is a clear error here, before the server sees it.
"""

from __future__ import annotations

from typing import Any

from dbsh import query as q
from dbsh.errors import Unsupported, UsageError

MANGO_OPERATORS = frozenset("""
$and $or $nor $not $eq $ne $gt $gte $lt $lte $in $nin $exists $type $size $mod $regex $elemMatch
$allMatch $keyMapMatch $all $beginsWith
""".split())


def check_selector(doc: Any) -> dict:
    """A filter document as a Mango selector; what Mango cannot run is rejected (exit 2)."""
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


def find_body(where: q.Filter, fields: list[str] | None = None, sort: list[tuple[str, int]] | None = None,
              limit: int | None = None, skip: int | None = None) -> dict[str, Any]:
    """The body of a ``POST /db/_find``: selector, fields, sort, skip, limit."""
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


def sort_fields(body: dict) -> list[str]:
    """The fields a _find body sorts by (an index on them lets CouchDB sort)."""
    return [field for spec in body.get("sort") or [] for field in spec]
