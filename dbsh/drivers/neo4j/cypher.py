"""Cypher for the uniform verbs, and Cypher text as typed. Pure: no I/O, no client library.

A collection is a label. Filters compile to a Cypher boolean expression with ``$p<N>`` parameters;
labels and property names are validated and backtick-quoted, so no identifier or value is pasted into
query text. Also here: splitting a script into statements, plan trees as rows, update counters as text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from dbsh import query as q
from dbsh.errors import Unsupported, UsageError

MAX_NAME = 255


# -- identifiers ---------------------------------------------------------------------------------
def quote_name(name: Any, what: str = "name") -> str:
    """A label, relationship type or property name as a backtick-quoted Cypher identifier."""
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or "\x00" in name:
        raise UsageError(f"invalid {what} {name!r}")
    # backticks are escaped by doubling; nothing inside `...` can end the identifier
    return "`" + name.replace("`", "``") + "`"


# -- filter compilation (pure: AST -> Cypher text + parameters) --------------------------------
class CypherFilter:
    """Compile the shared filter AST to a Cypher boolean expression over ``var`` with ``$p<N>``."""

    def __init__(self, var: str = "n", params: dict[str, Any] | None = None):
        self.var = var
        self.params = params if params is not None else {}

    def param(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return "$" + name

    def prop(self, field: str) -> str:
        if "." in field:
            raise Unsupported(f"nested field {field!r}: Neo4j properties are flat, so a filter on a nested path "
                              "is not supported")
        return f"{self.var}.{quote_name(field, 'property name')}"

    def compile(self, node: q.Node) -> str:
        if isinstance(node, q.And):
            if not node.items:
                return "true"
            return "(" + " AND ".join(self.compile(n) for n in node.items) + ")"
        if isinstance(node, q.Or):
            return "(" + " OR ".join(self.compile(n) for n in node.items) + ")"
        if isinstance(node, q.Not):
            # MongoDB semantics: NOT(age > 5) also matches nodes without age (Cypher gives null)
            return f"(NOT coalesce({self.compile(node.item)}, false))"
        return self.compare(node)

    def compare(self, node: q.Cmp) -> str:
        prop, op, value = self.prop(node.field), node.op, node.value
        values = value if op in ("in", "nin") else (value,)
        if op != "exists" and any(isinstance(v, dict) for v in values):
            raise Unsupported(f"comparing property {node.field!r} with a JSON object is not supported on Neo4j "
                              "(property values are scalars or lists)")
        if op == "eq":
            return f"{prop} IS NULL" if value is None else f"{prop} = {self.param(value)}"
        if op == "ne":
            return f"{prop} IS NOT NULL" if value is None else f"({prop} <> {self.param(value)} OR {prop} IS NULL)"
        if op in ("gt", "gte", "lt", "lte"):
            if value is None:
                return "false"
            sign = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
            return f"{prop} {sign} {self.param(value)}"
        # a list property is compared as a whole, as Cypher's = does: an element test would cost every
        # equality filter its index seek (the backend record declares this difference)
        if op == "in":
            plain = [v for v in value if v is not None]
            text = f"{prop} IN {self.param(plain)}"
            return f"({text} OR {prop} IS NULL)" if None in value else text
        if op == "nin":
            plain = [v for v in value if v is not None]
            if None in value:
                return f"({prop} IS NOT NULL AND NOT {prop} IN {self.param(plain)})"
            return f"({prop} IS NULL OR NOT {prop} IN {self.param(plain)})"
        if op == "exists":
            return f"{prop} IS NOT NULL" if value else f"{prop} IS NULL"
        if op == "regex":
            return f"{prop} =~ {self.param(cypher_regex(value, node.options))}"
        raise Unsupported(f"operator ${op} is not supported on Neo4j")


def cypher_regex(pattern: str, options: str = "") -> str:
    """MongoDB's $regex searches; Cypher's =~ must match the whole string: wrap it (Java regex flags)."""
    flags = "".join(sorted(set(options)))
    prefix = f"(?{flags})" if flags else ""
    return rf"{prefix}[\s\S]*(?:{pattern})[\s\S]*"


def compile_where(where: q.Filter, var: str = "n", params: dict[str, Any] | None = None) -> tuple[str, dict]:
    """A filter as `` WHERE ...`` (empty for the empty filter) and its parameters."""
    compiler = CypherFilter(var, params)
    if where.is_empty:
        return "", compiler.params
    return " WHERE " + compiler.compile(where.ast), compiler.params


def compile_find(label: str, where: q.Filter, *, sort=None, limit=None, skip=None,
                 returns: str = "n") -> tuple[str, dict]:
    clause, params = compile_where(where)
    text = f"MATCH (n:{quote_name(label, 'label')}){clause} RETURN {returns}"
    if sort:
        # MongoDB's order: a missing value sorts first ascending, last descending (Cypher puts null
        # last ascending): order by "has a value" first
        keys = []
        for f, d in sort:
            prop = f"n.{quote_name(f, 'property name')}"
            desc = " DESC" if d < 0 else ""
            keys += [f"{prop} IS NOT NULL{desc}", f"{prop}{desc}"]
        text += " ORDER BY " + ", ".join(keys)
    if skip:
        if skip < 0:
            raise UsageError("--skip must not be negative")
        params["skip"] = int(skip)
        text += " SKIP $skip"
    if limit is not None:
        if limit < 0:
            raise UsageError("--limit must not be negative")
        params["limit"] = int(limit)
        text += " LIMIT $limit"
    return text, params


def compile_update(label: str, where: q.Filter, change: q.Update, *, one: bool = False) -> tuple[str, dict]:
    clause, params = compile_where(where)
    text = f"MATCH (n:{quote_name(label, 'label')}){clause}"
    if one:
        text += " WITH n LIMIT 1"
    assignments: list[str] = []
    removes: list[str] = []
    for item in change.changes:
        if isinstance(item, q.Set):
            if isinstance(item.value, dict):
                raise Unsupported(f"$set {item.field!r} to a JSON object: Neo4j properties are scalars or lists")
            name = f"set{len(assignments)}"
            params[name] = item.value
            assignments.append(f"n.{quote_name(item.field, 'property name')} = ${name}")
        elif isinstance(item, q.Unset):
            removes.append(f"n.{quote_name(item.field, 'property name')}")
        else:
            prop = f"n.{quote_name(item.field, 'property name')}"
            name = f"inc{len(assignments)}"
            params[name] = item.amount
            assignments.append(f"{prop} = coalesce({prop}, 0) + ${name}")
    if assignments:
        text += " SET " + ", ".join(assignments)
    if removes:
        text += " REMOVE " + ", ".join(removes)
    return text + " RETURN count(n) AS matched", params


def check_properties(doc: Any, where: str) -> dict:
    if not isinstance(doc, dict):
        raise UsageError(f"{where}: a document must be a JSON object")
    for key, value in doc.items():
        quote_name(key, "property name")
        items = value if isinstance(value, list) else [value]
        if any(isinstance(v, dict | list) for v in items):
            raise UsageError(f"{where}: property {key!r} holds a nested object or list; Neo4j properties are "
                             "scalars or lists of scalars")
    return doc



# -- native statements -----------------------------------------------------------------------
PLAN = re.compile(r"^\s*(EXPLAIN|PROFILE)\b", re.IGNORECASE)


def split_statements(text: str) -> list[str]:
    """Split Cypher on ';' outside strings, quoted names and comments; drop empty statements."""
    from dbsh.statements import split_terminated

    return split_terminated(text, "cypher")


def plan_rows(plan: dict, profiled: bool) -> Iterator[dict]:
    """A query plan as rows whose ``operator`` column draws the tree."""

    def walk(node: dict, prefix: str, last: bool, root: bool) -> Iterator[dict]:
        args = node.get("args") or node.get("arguments") or {}
        branch = "" if root else ("└─ " if last else "├─ ")
        row = {"operator": prefix + branch + str(node.get("operatorType", "?")).split("@", 1)[0],
               "details": args.get("Details") or ", ".join(node.get("identifiers") or []) or None,
               "estimated_rows": _round(args.get("EstimatedRows"))}
        if profiled:
            row["rows"] = node.get("rows", args.get("Rows"))
            row["db_hits"] = node.get("dbHits", args.get("DbHits"))
        yield row
        children = node.get("children") or []
        deeper = prefix + ("" if root else ("   " if last else "│  "))
        for i, child in enumerate(children):
            yield from walk(child, deeper, i == len(children) - 1, False)

    yield from walk(plan, "", True, True)


def _round(value):
    return round(value, 1) if isinstance(value, float) else value




COUNTERS = ("nodes_created", "nodes_deleted", "relationships_created", "relationships_deleted",
            "properties_set", "labels_added", "labels_removed", "indexes_added", "indexes_removed",
            "constraints_added", "constraints_removed")


def counters_text(counters) -> str:
    parts = [f"{name.replace('_', ' ')}: {getattr(counters, name)}" for name in COUNTERS
             if getattr(counters, name, 0)]
    return ", ".join(parts) if parts else "no changes"


def same_keys(docs: list[dict]) -> Iterator[tuple[tuple[str, ...], list[list[Any]]]]:
    """Consecutive documents with the same keys, as (keys, rows of values)."""
    keys: tuple[str, ...] | None = None
    rows: list[list[Any]] = []
    for doc in docs:
        k = tuple(doc)
        if rows and k != keys:
            yield keys, rows
            rows = []
        keys = k
        rows.append(list(doc.values()))
    if rows:
        yield keys, rows

