"""The shared filter and update language: MongoDB-style documents parsed into a small AST.

Each driver compiles the AST to its native form with bound parameters; backends that
cannot filter server-side (Redis) use ``matches``, the one client-side evaluator.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dbsh.errors import UsageError

COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "exists", "regex")


@dataclass(frozen=True)
class Cmp:
    """``field <op> value``; for ``regex`` the value is the pattern and ``options`` its flags."""

    field: str
    op: str
    value: Any
    options: str = ""


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Cmp | And | Or | Not
EVERYTHING = And(())


@dataclass(frozen=True)
class Set:
    field: str
    value: Any


@dataclass(frozen=True)
class Unset:
    field: str


@dataclass(frozen=True)
class Inc:
    field: str
    amount: int | float


Change = Set | Unset | Inc


class Filter:
    """A filter document as the user wrote it, parsed into the AST on first use.

    Document stores that speak this syntax natively (MongoDB) use ``doc`` and never pay for
    (or are limited by) the shared AST.
    """

    @classmethod
    def parse(cls, text: str | None) -> Filter:
        """A filter from the user's JSON text (none or blank: everything)."""
        if text is None or not text.strip():
            return cls({})
        from dbsh.inputs import parse_document

        return cls(parse_document(text, "filter"))

    def __init__(self, doc: dict | None = None):
        doc = {} if doc is None else doc
        if not isinstance(doc, dict):
            raise UsageError(f"a filter must be a JSON object, not {type(doc).__name__}")
        self.doc = doc
        self._ast: Node | None = None

    @property
    def ast(self) -> Node:
        if self._ast is None:
            self._ast = parse_filter(self.doc)
        return self._ast

    @property
    def is_empty(self) -> bool:
        return not self.doc

    def __repr__(self) -> str:
        return f"Filter({self.doc!r})"


class Update:
    """An update document (``$set``, ``$unset``, ``$inc``), parsed into changes on first use."""

    def __init__(self, doc: dict):
        if not isinstance(doc, dict):
            raise UsageError(f"an update must be a JSON object, not {type(doc).__name__}")
        if not doc:
            raise UsageError("the update document is empty", hint='e.g. {"$set": {"field": 1}}')
        self.doc = doc
        self._changes: tuple[Change, ...] | None = None

    @property
    def changes(self) -> tuple[Change, ...]:
        if self._changes is None:
            self._changes = parse_update(self.doc)
        return self._changes

    def __repr__(self) -> str:
        return f"Update({self.doc!r})"


def _is_operator_doc(value: Any) -> bool:
    if not isinstance(value, dict) or not value:
        return False
    dollar = [k.startswith("$") for k in value]
    if any(dollar) and not all(dollar):
        raise UsageError(f"cannot mix operators and fields in {json.dumps(value)}")
    return all(dollar)


def _check_field(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise UsageError(f"invalid field name {name!r}")
    return name


def parse_filter(doc: dict) -> Node:
    """Parse a MongoDB-style query document into the AST (raises UsageError on bad input)."""
    if not isinstance(doc, dict):
        raise UsageError(f"a filter must be a JSON object, not {type(doc).__name__}")
    items: list[Node] = []
    for key, value in doc.items():
        if key in ("$and", "$or", "$nor"):
            if not isinstance(value, list) or not value:
                raise UsageError(f"{key} needs a non-empty array of filters")
            parts = tuple(parse_filter(v) for v in value)
            node: Node = And(parts) if key == "$and" else Or(parts)
            items.append(Not(node) if key == "$nor" else node)
        elif key.startswith("$"):
            raise UsageError(f"unknown top-level operator {key}",
                             hint="supported: $and $or $nor, or field conditions")
        else:
            items.append(_parse_field(_check_field(key), value))
    return items[0] if len(items) == 1 else And(tuple(items))


def _parse_field(field: str, value: Any) -> Node:
    if not _is_operator_doc(value):
        return Cmp(field, "eq", value)
    conds: list[Node] = []
    options = value.get("$options", "")
    if options and "$regex" not in value:
        raise UsageError("$options needs $regex")
    for op, arg in value.items():
        name = op[1:]
        if op == "$options":
            continue
        if op == "$not":
            if isinstance(arg, dict) and _is_operator_doc(arg):
                conds.append(Not(_parse_field(field, arg)))
            elif isinstance(arg, str):
                conds.append(Not(_regex(field, arg, "")))
            else:
                raise UsageError("$not needs an operator document or a regular expression")
        elif name in ("in", "nin"):
            if not isinstance(arg, list):
                raise UsageError(f"{op} needs an array, got {json.dumps(arg)}")
            conds.append(Cmp(field, name, tuple(arg)))
        elif name == "exists":
            conds.append(Cmp(field, "exists", bool(arg)))
        elif name == "regex":
            conds.append(_regex(field, arg, options))
        elif name in COMPARISONS:
            conds.append(Cmp(field, name, arg))
        else:
            raise UsageError(f"unknown operator {op} on field {field!r}",
                             hint="supported: $eq $ne $gt $gte $lt $lte $in $nin $exists $regex $not")
    return conds[0] if len(conds) == 1 else And(tuple(conds))


def _regex(field: str, pattern: Any, options: str) -> Cmp:
    if not isinstance(pattern, str):
        raise UsageError(f"$regex needs a string pattern, got {json.dumps(pattern)}")
    if set(options) - set("imsx"):
        raise UsageError(f"unsupported $options {options!r}: use i, m, s or x")
    try:
        re.compile(pattern)
    except re.error as e:
        raise UsageError(f"invalid regular expression {pattern!r}: {e}") from None
    return Cmp(field, "regex", pattern, options)


def parse_update(doc: dict) -> tuple[Change, ...]:
    changes: list[Change] = []
    for op, fields in doc.items():
        if not op.startswith("$"):
            raise UsageError(f"update documents use operators, not plain fields ({op!r})",
                             hint='e.g. {"$set": {"' + str(op) + '": ...}}')
        if op not in ("$set", "$unset", "$inc"):
            raise UsageError(f"unknown update operator {op}", hint="supported: $set $unset $inc")
        if not isinstance(fields, dict) or not fields:
            raise UsageError(f"{op} needs a non-empty object of fields")
        for field, value in fields.items():
            _check_field(field)
            if op == "$set":
                changes.append(Set(field, value))
            elif op == "$unset":
                changes.append(Unset(field))
            else:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise UsageError(f"$inc needs a number for {field!r}, got {json.dumps(value)}")
                changes.append(Inc(field, value))
    seen: set[str] = set()
    for change in changes:
        if change.field in seen:
            raise UsageError(f"field {change.field!r} is changed twice in one update")
        seen.add(change.field)
    return tuple(changes)


def fields_of(node: Node) -> Iterable[str]:
    """Every field a filter mentions."""
    if isinstance(node, Cmp):
        yield node.field
    elif isinstance(node, Not):
        yield from fields_of(node.item)
    else:
        for item in node.items:
            yield from fields_of(item)


def equalities(node: Node) -> dict[str, Any]:
    """Top-level ``field == value`` conditions (what an upsert inserts)."""
    items = node.items if isinstance(node, And) else (node,)
    return {n.field: n.value for n in items if isinstance(n, Cmp) and n.op == "eq"}


def parse_sort(spec: str | None) -> list[tuple[str, int]]:
    """``-price,name`` -> [("price", -1), ("name", 1)]."""
    if not spec:
        return []
    keys = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        direction = -1 if part.startswith("-") else 1
        name = part.lstrip("+-")
        keys.append((_check_field(name), direction))
    return keys


def parse_fields(spec: str | None) -> list[str] | None:
    if not spec:
        return None
    return [_check_field(f.strip()) for f in spec.split(",") if f.strip()]


# --- client-side evaluation, for backends that cannot filter on the server ---------------

_MISSING = object()


def lookup(doc: Any, path: str) -> Any:
    """Resolve a dotted path (``address.city``, ``tags.0``); _MISSING when absent."""
    current = doc
    for part in path.split("."):
        if isinstance(current, dict):
            current = current.get(part, _MISSING)
        elif isinstance(current, list) and part.isdigit():
            index = int(part)
            current = current[index] if index < len(current) else _MISSING
        else:
            return _MISSING
        if current is _MISSING:
            return _MISSING
    return current


def _candidates(value: Any) -> list[Any]:
    # MongoDB semantics: a condition on an array field matches the array or any element.
    return [value, *value] if isinstance(value, list) else [value]


def _ordered(a: Any, b: Any, op: str) -> bool:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        if not (isinstance(a, bool) and isinstance(b, bool)):
            return False
    elif isinstance(a, numbers) and isinstance(b, numbers):
        pass
    elif type(a) is not type(b) or a is None:
        return False
    try:
        if op == "gt":
            return a > b
        if op == "gte":
            return a >= b
        if op == "lt":
            return a < b
        return a <= b
    except TypeError:
        return False


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return a == b


_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}


def _compile(pattern: str, options: str) -> re.Pattern:
    flags = 0
    for ch in options:
        flags |= _FLAGS[ch]
    return re.compile(pattern, flags)


def matches(node: Node, doc: dict) -> bool:
    """Evaluate the AST against one document, with MongoDB's semantics for missing fields."""
    if isinstance(node, And):
        return all(matches(item, doc) for item in node.items)
    if isinstance(node, Or):
        return any(matches(item, doc) for item in node.items)
    if isinstance(node, Not):
        return not matches(node.item, doc)
    value = lookup(doc, node.field)
    op = node.op
    if op == "exists":
        return (value is not _MISSING) == node.value
    if op == "eq":
        if value is _MISSING:
            return node.value is None
        return any(_equal(v, node.value) for v in _candidates(value))
    if op == "ne":
        return not matches(Cmp(node.field, "eq", node.value), doc)
    if op == "in":
        return any(matches(Cmp(node.field, "eq", v), doc) for v in node.value)
    if op == "nin":
        return not matches(Cmp(node.field, "in", node.value), doc)
    if value is _MISSING:
        return False
    if op == "regex":
        pattern = _compile(node.value, node.options)
        return any(isinstance(v, str) and pattern.search(v) is not None for v in _candidates(value))
    return any(_ordered(v, node.value, op) for v in _candidates(value))


def order_key(value: Any, descending: bool = False) -> tuple:
    """A key that sorts values in MongoDB's order: missing and null, numbers (by value, 34 = 34.0),
    strings (by code point), objects, arrays, booleans; an empty array before null. An array sorts
    by its smallest element ascending and by its largest descending, as MongoDB does."""
    if isinstance(value, list):
        if not value:
            return (0,)
        keys = [_element_key(v) for v in value]
        return max(keys) if descending else min(keys)
    return _element_key(value)


def _element_key(value: Any) -> tuple:
    if value is _MISSING or value is None:
        return (1,)
    if isinstance(value, bool):
        return (8, value)
    if isinstance(value, (int, float)):
        return (2, value)
    if isinstance(value, str):
        return (3, value)
    if isinstance(value, dict):
        return (4, tuple((k, _element_key(v)) for k, v in value.items()))
    if isinstance(value, list):
        return (5, tuple(_element_key(v) for v in value))
    return (9, type(value).__name__, repr(value))


def apply_update(changes: Iterable[Change], doc: dict) -> dict:
    """Apply changes to a copy of a flat-or-nested document (client-side update)."""
    result = json.loads(json.dumps(doc, default=str)) if any("." in c.field for c in changes) else dict(doc)
    for change in changes:
        *parents, leaf = change.field.split(".")
        target = result
        for part in parents:
            nxt = target.get(part)
            if not isinstance(nxt, dict):
                if isinstance(change, Unset):
                    break
                nxt = target[part] = {}
            target = nxt
        else:
            if isinstance(change, Set):
                target[leaf] = change.value
            elif isinstance(change, Unset):
                target.pop(leaf, None)
            else:
                current = target.get(leaf, 0)
                if isinstance(current, bool) or not isinstance(current, (int, float)):
                    raise UsageError(f"cannot $inc field {change.field!r}: it holds {json.dumps(current)}")
                target[leaf] = current + change.amount
    return result
