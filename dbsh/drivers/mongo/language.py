"""The MongoDB language, without pymongo: filter and update documents checked before the server sees
them, MongoDB extended JSON read into BSON values, and mongosh-style statements
(``db.<collection>.<method>(<JSON5 args>)[.<cursor method>(...)]``) parsed into a ShellCall.

Pure: importing it imports no client library; bson (for extended JSON and ObjectId()) and json5 (for
arguments) are imported by the first call that needs them.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from dbsh.errors import UsageError, one_line

QUERY_OPERATORS = frozenset("""
$eq $ne $gt $gte $lt $lte $in $nin $and $or $nor $not $exists $type $expr $jsonSchema $mod $regex
$options $text $search $language $caseSensitive $diacriticSensitive $where $geoIntersects $geoWithin
$near $nearSphere $box $center $centerSphere $geometry $maxDistance $minDistance $polygon $all
$elemMatch $size $bitsAllClear $bitsAllSet $bitsAnyClear $bitsAnySet $comment $rand $sampleRate
""".split())
# operator values that are not query documents (aggregation expressions, schemas, geometry, JS)
OPAQUE_OPERATORS = frozenset("$expr $jsonSchema $where $geometry $box $center $centerSphere $polygon $text".split())
UPDATE_OPERATORS = frozenset("""
$set $unset $inc $mul $rename $min $max $currentDate $setOnInsert $push $pull $pullAll $addToSet $pop $bit
""".split())


def from_extended_json(value: Any) -> Any:
    """Plain JSON values -> BSON values: {"$oid": ...} becomes an ObjectId, {"$date": ...} a datetime."""
    if isinstance(value, dict):
        converted = {k: from_extended_json(v) for k, v in value.items()}
        if converted and all(isinstance(k, str) and k.startswith("$") for k in converted):
            import bson
            from bson import json_util

            try:
                return json_util.object_hook(converted)
            except (ValueError, TypeError, KeyError, bson.errors.BSONError) as e:
                raise UsageError(f"bad extended JSON {json.dumps(value, default=str)[:80]}: {one_line(str(e))}") \
                    from None
        return converted
    if isinstance(value, list):
        return [from_extended_json(v) for v in value]
    return value


def document(doc: Any) -> dict:
    """A document to insert, its extended JSON read."""
    if not isinstance(doc, dict):
        raise UsageError(f"a document must be a JSON object, not {type(doc).__name__}")
    return from_extended_json(doc)


def check_filter(doc: Any, where: str = "filter") -> dict:
    """Reject unknown $operators before anything reaches the server (a typo is bad input, exit 2)."""
    if not isinstance(doc, dict):
        raise UsageError(f"a {where} must be a JSON object, not {type(doc).__name__}")
    _check_query(doc, where)
    return doc


def _check_query(value: Any, where: str) -> None:
    if isinstance(value, list):
        for item in value:
            _check_query(item, where)
        return
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        if not isinstance(key, str):
            raise UsageError(f"invalid field name {key!r} in {where}")
        if key.startswith("$"):
            if key not in QUERY_OPERATORS:
                raise UsageError(f"unknown query operator {key} in {where}",
                                 hint="e.g. $eq $ne $gt $gte $lt $lte $in $nin $exists $regex $elemMatch $and $or")
            if key in OPAQUE_OPERATORS:
                continue
        _check_query(item, where)


def check_update(doc: Any) -> dict | list:
    if isinstance(doc, list):   # an aggregation-pipeline update
        return doc
    if not isinstance(doc, dict) or not doc:
        raise UsageError("an update must be a non-empty JSON object of update operators",
                         hint='e.g. {"$set": {"price": 279}}')
    for key in doc:
        if not key.startswith("$"):
            raise UsageError(f"update documents use operators, not plain fields ({key!r})",
                             hint='e.g. {"$set": {"' + key + '": ...}}; to replace a document use '
                                  "query 'db.<collection>.replaceOne(filter, document)'")
        if key not in UPDATE_OPERATORS:
            raise UsageError(f"unknown update operator {key}", hint="supported: " + " ".join(sorted(UPDATE_OPERATORS)))
    return doc


SHELL_METHODS = ("find", "findOne", "insertOne", "insertMany", "updateOne", "updateMany", "replaceOne",
                 "deleteOne", "deleteMany", "aggregate", "countDocuments", "estimatedDocumentCount", "distinct",
                 "createIndex", "dropIndex", "drop")


# -- the mongosh-style language --------------------------------------------------------------

class ShellCall:
    def __init__(self, collection: str | None, method: str, args: list[Any],
                 chain: list[tuple[str, list[Any]]], explain: bool):
        self.collection = collection
        self.method = method
        self.args = args
        self.chain = chain
        self.explain = explain


def call_args(call: ShellCall, low: int, high: int) -> list[Any]:
    n = len(call.args)
    if not low <= n <= high:
        want = str(low) if low == high else f"{low} to {high}"
        raise UsageError(f"{call.method}() takes {want} argument{'s' if high != 1 else ''}, got {n}")
    return list(call.args)


def one_argument(name: str, args: list[Any]) -> Any:
    if len(args) != 1:
        raise UsageError(f".{name}() takes 1 argument, got {len(args)}")
    return args[0]


def mapping(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise UsageError(f"{what} must be an object, got {json.dumps(value, default=str)[:60]}")
    return value


class _Scanner:
    """A tiny scanner over the statement text: identifiers, dots, brackets and balanced (...) groups."""

    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def error(self, message: str) -> UsageError:
        return UsageError(f"{message} at position {self.pos + 1} of the query",
                          hint="write db.<collection>.<method>(<JSON arguments>), e.g. db.products.find({price: "
                               "{$gt: 100}})")

    def space(self) -> None:
        """Skip white space and // or /* */ comments."""
        text = self.text
        while self.pos < len(text):
            if text[self.pos].isspace():
                self.pos += 1
            elif text.startswith("//", self.pos):
                newline = text.find("\n", self.pos)
                self.pos = len(text) if newline < 0 else newline + 1
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                self.pos = len(text) if end < 0 else end + 2
            else:
                break

    def peek(self) -> str:
        self.space()
        return self.text[self.pos:self.pos + 1]

    def expect(self, char: str) -> None:
        if self.peek() != char:
            found = self.text[self.pos:self.pos + 10] or "the end"
            raise self.error(f"expected {char!r}, found {found!r}")
        self.pos += 1

    def name(self) -> str:
        self.space()
        start = self.pos
        while self.pos < len(self.text) and (self.text[self.pos].isalnum() or self.text[self.pos] in "_$"):
            self.pos += 1
        if start == self.pos:
            raise self.error("expected a name")
        return self.text[start:self.pos]

    def group(self, open_: str, close: str) -> str:
        """The text inside a balanced bracket pair, skipping brackets inside strings and comments."""
        self.expect(open_)
        start, depth, text = self.pos, 1, self.text
        pairs = {"(": ")", "[": "]", "{": "}"}
        stack = [close]
        while self.pos < len(text):
            ch = text[self.pos]
            if ch in "\"'`":
                end = self.pos + 1
                while end < len(text) and text[end] != ch:
                    end += 2 if text[end] == "\\" else 1
                if end >= len(text):
                    raise self.error("unterminated string")
                self.pos = end + 1
                continue
            if text.startswith("//", self.pos):
                newline = text.find("\n", self.pos)
                self.pos = len(text) if newline < 0 else newline + 1
                continue
            if text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.error("unterminated comment")
                self.pos = end + 2
                continue
            if ch in pairs:
                stack.append(pairs[ch])
            elif ch in ")]}":
                if ch != stack[-1]:
                    raise self.error(f"unbalanced {ch!r}")
                stack.pop()
                if not stack:
                    inner = text[start:self.pos]
                    self.pos += 1
                    return inner
            self.pos += 1
        depth = len(stack)
        raise self.error(f"{depth} unclosed bracket{'s' if depth != 1 else ''}")

    def arguments(self) -> list[Any]:
        inner = self.group("(", ")")
        if not inner.strip():
            return []
        try:
            values = _json5().loads("[" + shell_constructors(inner) + "]")
        except ValueError as e:
            raise UsageError(f"cannot parse the arguments ({inner.strip()[:60]}): {one_line(str(e))}",
                             hint="arguments are JSON5: unquoted keys and single quotes are fine") from None
        return from_extended_json(values)

    def string_argument(self) -> str:
        values = self.arguments()
        if len(values) != 1 or not isinstance(values[0], str) or not values[0]:
            raise self.error("expected one collection name string")
        return values[0]


CONSTRUCTORS = ("ObjectId", "ISODate", "Date", "NumberDecimal", "Decimal128", "NumberLong", "NumberInt", "UUID")


def _json5():
    """json5, imported by the first shell-syntax statement (the verbs never need it)."""
    import json5

    return json5


def shell_constructors(text: str) -> str:
    """Rewrite mongosh value constructors (ObjectId("..."), ISODate("..."), new Date(),
    NumberDecimal("..."), NumberLong(..), NumberInt(..), UUID("...")) as extended JSON, token by token:
    strings and comments are copied untouched."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "\"'`":
            end = i + 1
            while end < n and text[end] != ch:
                end += 2 if text[end] == "\\" else 1
            out.append(text[i:end + 1])
            i = end + 1
        elif ch.isalpha() or ch in "_$":
            end = i
            while end < n and (text[end].isalnum() or text[end] in "_$"):
                end += 1
            word = text[i:end]
            if word == "new":
                after = end
                while after < n and text[after].isspace():
                    after += 1
                nxt = after
                while nxt < n and (text[nxt].isalnum() or text[nxt] in "_$"):
                    nxt += 1
                if text[after:nxt] in CONSTRUCTORS:
                    word, end = text[after:nxt], nxt
            scanner = _Scanner(text)
            scanner.pos = end
            if word in CONSTRUCTORS and scanner.peek() == "(":
                inner = scanner.group("(", ")")
                try:
                    args = _json5().loads("[" + shell_constructors(inner) + "]") if inner.strip() else []
                except ValueError as e:
                    raise UsageError(f"cannot parse {word}({inner.strip()[:40]}): {one_line(str(e))}") from None
                out.append(json.dumps(_construct(word, args)))
                i = scanner.pos
            else:
                out.append(word if word != "new" else text[i:end])
                i = end
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _construct(word: str, args: list[Any]) -> dict:
    if len(args) > 1:
        raise UsageError(f"{word}() takes at most one argument")
    arg = args[0] if args else None
    if word == "ObjectId":
        if arg is None:
            import bson

            arg = bson.ObjectId()
        return {"$oid": str(arg)}
    if word in ("ISODate", "Date"):
        if arg is None:
            now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
            return {"$date": now.replace("+00:00", "Z")}
        if isinstance(arg, (int, float)) and not isinstance(arg, bool):
            return {"$date": {"$numberLong": str(int(arg))}}
        if isinstance(arg, str) and len(arg) == 10:   # a bare date: midnight UTC, as mongosh reads it
            arg += "T00:00:00Z"
        return {"$date": arg}
    if word in ("NumberDecimal", "Decimal128"):
        return {"$numberDecimal": str(arg if arg is not None else 0)}
    if word == "NumberLong":
        return {"$numberLong": str(int(arg or 0))}
    if word == "NumberInt":
        return {"$numberInt": str(int(arg or 0))}
    return {"$uuid": str(arg)}


def parse_shell(text: str) -> ShellCall:
    """Parse ``db.coll.method(args)[.chain(args)...]``, ``db.getCollection("x").method(...)``,
    ``db["x"].method(...)``, ``db.coll.explain().find(...)`` and ``db.runCommand({...})``."""
    text = text.strip().rstrip(";").strip()
    if not text:
        raise UsageError("empty query")
    s = _Scanner(text)
    if s.name() != "db":
        s.pos = 0
        raise s.error("a MongoDB query starts with db.")
    collection: str | None = None
    if s.peek() == "[":
        try:
            collection = _json5().loads(s.group("[", "]"))
        except ValueError:
            raise s.error("expected a quoted collection name in db[...]") from None
        if not isinstance(collection, str):
            raise s.error("expected a quoted collection name in db[...]")
        s.expect(".")
        first = s.name()
    else:
        s.expect(".")
        first = s.name()
        if first == "getCollection":
            collection = s.string_argument()
            s.expect(".")
            first = s.name()
    if collection is None and s.peek() == "(":
        # a database method: db.runCommand({...})
        args = s.arguments()
        if s.peek():
            raise s.error("unexpected text after the call")
        return ShellCall(None, first, args, [], False)
    if collection is None:
        collection = first
        s.expect(".")
        first = s.name()
    explain = False
    if first == "explain":
        if s.arguments() not in ([], ["queryPlanner"], ["executionStats"], ["allPlansExecution"]):
            raise s.error("explain() takes an optional verbosity string")
        explain = True
        s.expect(".")
        first = s.name()
    args = s.arguments()
    chain: list[tuple[str, list[Any]]] = []
    while s.peek() == ".":
        s.pos += 1
        name = s.name()
        chain_args = s.arguments()
        if name == "explain":
            explain = True
        elif name == "toArray" or name == "pretty":
            continue
        else:
            chain.append((name, chain_args))
    if s.peek():
        raise s.error(f"unexpected {s.text[s.pos:s.pos + 10]!r}")
    if chain and first not in ("find",):
        raise UsageError(f"cursor methods like .{chain[0][0]}() only follow find()")
    return ShellCall(collection, first, args, chain, explain)
