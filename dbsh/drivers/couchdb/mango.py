"""dbsh's filters as Mango ``_find`` requests with MongoDB's meaning. Pure: no I/O, no client.

Mango looks like MongoDB's language but does not mean the same (CouchDB 3, mango_selector.erl):

    - a condition on a missing field is false (only ``$exists: false`` matches it), so ``$ne``, ``$nin``
      and negations never match a document without the field, where MongoDB's do;
    - comparisons follow CouchDB's collation across types (null < booleans < numbers < strings < arrays
      < objects), so ``{"$lt": 20}`` matches null and ``{"$gt": 30}`` matches every string;
    - ``$eq`` compares an array as a whole (MongoDB also matches one of its elements), while ``$in``
      and ``$nin`` look only at the elements;
    - strings compare by ICU collation ("bob" < "Cy"), MongoDB by code point ("Cy" < "bob");
    - ``$not`` and ``$nor`` are pushed down onto the comparisons, which then miss absent fields.

So the shared AST (dbsh.query) is compiled here, not passed through: each comparison gets its type
guard (``$type``), its missing and null cases spelled out (``$exists``, ``$eq: null``), and an
``$elemMatch`` for array elements. What has no exact Mango form (a string range, a negated range or
regex, an array or object as the value) is compiled to a wider selector and marked inexact: the
session then evaluates the filter on each document itself (dbsh.query.matches, MongoDB's meaning) and
pages, sorts and projects client-side. Sorting is always dbsh's (CouchDB sorts only with an index, by
ICU collation, without the documents that lack the field), but for ``_id``, which CouchDB orders as
MongoDB does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dbsh import query as q
from dbsh.errors import UsageError

# operators of Mango that MongoDB's filter language, which the verbs speak, does not have (or means
# otherwise): they run natively, in a POST /db/_find
MANGO_OPERATORS = frozenset("$type $size $mod $elemMatch $allMatch $keyMapMatch $all $beginsWith".split())
NOTHING = {"_id": {"$exists": False}}     # every document has an _id: a selector that matches none
EVERY = {"_id": {"$gt": None}}            # every _id is a string, after null: all documents
TYPES = {bool: "boolean", int: "number", float: "number"}
RANGES = ("gt", "gte", "lt", "lte")


def _scalar(value: Any) -> bool:
    return isinstance(value, (bool, int, float, str))


class Compiler:
    """AST -> (Mango selector, exact). ``exact``: CouchDB's answer to the selector is MongoDB's answer
    to the filter; otherwise the selector is a superset, and the caller checks each document."""

    def compile(self, node: q.Node) -> tuple[dict, bool]:
        if isinstance(node, q.And):
            return self._all([self.compile(item) for item in node.items])
        if isinstance(node, q.Or):
            return self._any([self.compile(item) for item in node.items])
        if isinstance(node, q.Not):
            return self.negate(node.item)
        return self.comparison(node)

    def negate(self, node: q.Node) -> tuple[dict, bool]:
        """NOT node, pushed down as MongoDB means it: exact for equality, membership and existence;
        anything else (a range, a regex) is widened to every document, checked by dbsh."""
        if isinstance(node, q.Not):
            return self.compile(node.item)
        if isinstance(node, q.And):
            return self._any([self.negate(item) for item in node.items])
        if isinstance(node, q.Or):
            return self._all([self.negate(item) for item in node.items])
        opposite = {"eq": "ne", "ne": "eq", "in": "nin", "nin": "in"}.get(node.op)
        if opposite:
            return self.comparison(q.Cmp(node.field, opposite, node.value))
        if node.op == "exists":
            return self.comparison(q.Cmp(node.field, "exists", not node.value))
        return {}, False

    @staticmethod
    def _all(parts: list[tuple[dict, bool]]) -> tuple[dict, bool]:
        exact = all(e for _, e in parts)
        docs = [d for d, _ in parts if d]
        if not docs:
            return {}, exact
        return (docs[0] if len(docs) == 1 else {"$and": docs}), exact

    @staticmethod
    def _any(parts: list[tuple[dict, bool]]) -> tuple[dict, bool]:
        exact = all(e for _, e in parts)
        docs = [d for d, _ in parts]
        if any(not d for d in docs):   # one branch matches everything
            return {}, exact
        docs = [d for d in docs if d != NOTHING]
        if not docs:
            return NOTHING, exact
        return (docs[0] if len(docs) == 1 else {"$or": docs}), exact

    def comparison(self, node: q.Cmp) -> tuple[dict, bool]:
        f, op, value = node.field, node.op, node.value
        if f == "_id":
            return self._id(node)
        if "." in f and (op in ("ne", "nin") or (op == "exists" and not value) or
                         (op in ("eq", "in") and None in (value if op == "in" else (value,)))):
            # a missing field matches these; under a parent that is not an object (a string, an array)
            # CouchDB finds a "bad path" instead, which matches nothing, not even $exists: false
            return {}, False
        if op == "exists":
            return {f: {"$exists": bool(value)}}, True
        if op == "eq":
            if value is None:
                return self._null(f), True
            if _scalar(value):
                # $in looks at a scalar itself and at the elements of an array: MongoDB's equality
                return {f: {"$in": [value]}}, True
            return {f: {"$exists": True}}, False
        if op == "ne":
            if value is None:   # present, not null, no null element
                return {f: {"$nin": [None]}}, True
            if _scalar(value):
                return {"$or": [{f: {"$exists": False}}, {f: {"$eq": None}}, {f: {"$nin": [value]}}]}, True
            return {}, False
        if op == "in":
            if not all(v is None or _scalar(v) for v in value):
                return {}, False
            plain = [v for v in value if v is not None]
            parts = ([({f: {"$in": plain}}, True)] if plain else []) + \
                ([(self._null(f), True)] if None in value else [])
            return self._any(parts) if parts else (NOTHING, True)
        if op == "nin":
            if not all(v is None or _scalar(v) for v in value):
                return {}, False
            plain = [v for v in value if v is not None]
            if None in value:
                return {f: {"$nin": [None, *plain]}}, True
            if not plain:
                return {}, True
            return {"$or": [{f: {"$exists": False}}, {f: {"$eq": None}}, {f: {"$nin": plain}}]}, True
        if op in RANGES:
            if value is None:   # dbsh's meaning (dbsh.query.matches): nothing is ordered against null
                return NOTHING, True
            kind = TYPES.get(type(value))
            if kind is None:    # strings (ICU collation), arrays, objects: checked by dbsh
                return {f: {"$exists": True}}, False
            test = {"$type": kind, f"${op}": value}
            return {"$or": [{f: test}, {f: {"$elemMatch": test}}]}, True
        if op == "regex":
            test = {"$regex": regex(value, node.options)}
            return {"$or": [{f: test}, {f: {"$elemMatch": test}}]}, True
        raise UsageError(f"operator ${op} is not supported on CouchDB")

    @staticmethod
    def _null(f: str) -> dict:
        """MongoDB's ``{f: null}``: missing, null, or an array with a null element."""
        return {"$or": [{f: {"$exists": False}}, {f: {"$eq": None}}, {f: {"$elemMatch": {"$eq": None}}}]}

    def _id(self, node: q.Cmp) -> tuple[dict, bool]:
        """_id is always a string, and CouchDB compares it as MongoDB compares strings (raw, by code point):
        its conditions pass through as they are, so a lookup by _id keeps the primary index."""
        op, value = node.op, node.value
        if op == "exists":
            return ({}, True) if value else (NOTHING, True)
        if op in ("in", "nin"):
            strings = [v for v in value if isinstance(v, str)]
            if op == "in":
                return ({"_id": {"$in": strings}}, True) if strings else (NOTHING, True)
            return ({"_id": {"$nin": strings}}, True) if strings else ({}, True)
        if op == "regex":
            return {"_id": {"$regex": regex(value, node.options)}}, True
        if not isinstance(value, str):
            return ({}, True) if op == "ne" else (NOTHING, True)
        return {"_id": {f"${op}": value}}, True


def regex(pattern: str, options: str = "") -> str:
    """MongoDB's $regex and $options as one CouchDB pattern: Erlang's re is PCRE, which takes the options
    inline, ``(?i)``; ``(*UTF)`` makes it match characters rather than bytes, as MongoDB does. (The
    stand-in, pouchdb-server, runs JavaScript's RegExp, which knows neither: see find_plan.)"""
    flags = "".join(sorted(set(options)))
    return "(*UTF)" + (f"(?{flags})" if flags else "") + pattern


def selector(where: q.Filter) -> tuple[dict, bool]:
    """The Mango selector of a filter and whether it is exact (see Compiler)."""
    if where.is_empty:
        return {}, True
    return Compiler().compile(parse(where))


def parse(where: q.Filter) -> q.Node:
    """The filter's AST; Mango's own operators are refused with the way to run them natively."""
    try:
        return where.ast
    except UsageError as e:
        word = next((w.rstrip(":,") for w in e.message.split() if w.startswith("$")), "")
        if word in MANGO_OPERATORS:
            raise UsageError(f"{e.message} (the verbs speak MongoDB's filter language)",
                             hint="Mango's own operators run natively: dbsh query 'POST /<db>/_find "
                                  '{"selector": {...}}\'') from None
        raise


@dataclass
class FindPlan:
    """A find as CouchDB and dbsh share it: ``body`` is the _find request (its selector, and the
    fields, sort, skip and limit the server applies); the rest is done by dbsh on what comes back,
    in this order: ``check`` (the filter, when the selector is wider), ``sort``, ``skip``/``limit``,
    ``fields``."""

    body: dict[str, Any]
    check: q.Node | None = None
    sort: list[tuple[str, int]] | None = None
    skip: int = 0
    limit: int | None = None
    fields: list[str] | None = None
    needs: list[str] = field(default_factory=list)   # fields the server must send for dbsh's steps

    @property
    def reads_all(self) -> bool:
        """Whether the server is asked for every document, for dbsh to filter."""
        return self.check is not None and self.body["selector"] in ({}, EVERY)

    @property
    def client_side(self) -> list[str]:
        """What dbsh does itself, in words (explain shows it)."""
        steps = [name for name, done in (("filter", self.check is not None), ("sort", self.sort),
                                         ("skip", self.skip), ("limit", self.limit is not None)) if done]
        return steps


def find_plan(where: q.Filter, fields: list[str] | None = None, sort: list[tuple[str, int]] | None = None,
              limit: int | None = None, skip: int | None = None, *, stand_in: bool = False) -> FindPlan:
    """How a find runs: everything on the server when the selector is exact and the order is _id's
    (or none); else the server sends a superset in any order, and dbsh filters, sorts and pages."""
    if skip is not None and skip < 0:
        raise UsageError("--skip must not be negative")
    if limit is not None and limit < 0:
        raise UsageError("--limit must not be negative")
    if stand_in:
        # the stand-in: pouchdb-server's Mango (pouchdb-find 7.3) merges an $and of $or wrongly (dropping
        # matches), fails on $regex inside $or and $elemMatch, runs $regex with JavaScript's RegExp (no
        # inline (?i)), and differs from CouchDB on null and missing fields: it is asked for every
        # document (by _id > null: its _explain fails on an empty selector), and dbsh filters them
        parse(where)
        mango, exact = EVERY, where.is_empty
    else:
        mango, exact = selector(where)
    body: dict[str, Any] = {"selector": mango}
    # (pouchdb-server fails on a descending _id sort: the stand-in's order is dbsh's)
    server_sort = bool(sort) and len(sort) == 1 and sort[0][0] == "_id" and not stand_in
    if server_sort:
        body["sort"] = [{"_id": "desc" if sort[0][1] < 0 else "asc"}]
    if exact and (not sort or server_sort):
        if fields:
            body["fields"] = list(fields)
        if skip:
            body["skip"] = skip
        if limit is not None:
            body["limit"] = limit
        return FindPlan(body)
    plan = FindPlan(body, check=None if exact else parse(where), sort=None if server_sort else sort,
                    skip=skip or 0, limit=limit, fields=list(fields) if fields else None)
    if fields:
        needs = list(fields) + (list(q.fields_of(plan.check)) if plan.check is not None else []) + \
            [f for f, _ in plan.sort or []]
        plan.needs = list(dict.fromkeys(needs))
        body["fields"] = plan.needs
    return plan
