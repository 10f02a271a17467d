"""The conformance cases: each everyday task written once, with MongoDB's meaning as the expectation.

The data set is DOCS. A filter case's expected answer is the reference evaluator (dbsh.query.matches,
MongoDB's semantics) over DOCS as the backend stores them (see Traits in test_conformance.py); the
cases list what each one exercises (``needs``), so a backend that declares it cannot do one answers
with a clear error (exit 2) instead of a silently different result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DOCS: list[dict[str, Any]] = [
    {"id": 1, "name": "Ann", "age": 34, "score": 9.5, "active": True, "city": "Oslo", "code": "007",
     "tags": ["red", "blue"], "address": {"city": "Oslo", "zip": "0150"}, "nick": "annie"},
    {"id": 2, "name": "bob", "age": 20, "score": 7.0, "active": False, "city": "Bergen", "code": "42",
     "tags": ["blue"], "address": {"city": "Bergen", "zip": "5003"}},
    {"id": 3, "name": "Cy", "age": 51, "score": 3.25, "active": True, "city": "oslo", "code": "7",
     "tags": [], "nick": None},
    {"id": 4, "name": "Dee", "age": None, "active": False, "city": "Paris", "tags": ["green"]},
    {"id": 5, "name": "Eve", "age": 34, "score": 10, "city": "Oslo", "code": "0042"},
    {"id": 6, "name": "Finn", "age": 17, "score": -1.5, "active": True, "city": "Bergen", "nick": "fi",
     "address": {"city": "Oslo", "zip": "0151"}},
]

# the schema typed backends (SQL, Cassandra) give DOCS
COLUMNS = {"id": "int", "name": "text", "age": "int", "score": "double", "active": "boolean", "city": "text",
           "code": "text", "tags": "list", "address": "map", "nick": "text"}


@dataclass(frozen=True)
class Case:
    id: str
    filter: dict
    needs: frozenset[str] = frozenset()     # features exercised: regex, or, not, ne, in, nin, exists, arrays,
    #                                         nested, null, range, types ... (a backend may declare it cannot)
    note: str = ""


def case(id: str, flt: dict, *needs: str, note: str = "") -> Case:
    return Case(id, flt, frozenset(needs), note)


FILTERS: list[Case] = [
    case("everything", {}),
    case("eq-string", {"name": "Ann"}),
    case("eq-int", {"age": 34}),
    case("eq-int-as-float", {"age": 34.0}, note="34 and 34.0 are equal numbers"),
    case("eq-float", {"score": 9.5}),
    case("eq-bool", {"active": True}),
    case("eq-bool-false", {"active": False}),
    case("eq-string-digits", {"code": "007"}, note="a string of digits stays a string"),
    case("number-is-not-string", {"age": "34"}, "types", note="no match across types"),
    case("bool-is-not-1", {"active": 1}, "types", note="true is not 1"),
    case("gt", {"age": {"$gt": 30}}, "range"),
    case("gte", {"age": {"$gte": 34}}, "range"),
    case("lt", {"age": {"$lt": 20}}, "range"),
    case("lte", {"age": {"$lte": 20}}, "range"),
    case("range", {"age": {"$gte": 20, "$lt": 40}}, "range"),
    case("gt-float", {"score": {"$gt": 7}}, "range"),
    case("gt-negative", {"score": {"$lt": 0}}, "range"),
    case("gt-string", {"name": {"$gt": "Cy"}}, "range", note="code-point order: lower case after upper"),
    case("gt-across-types", {"age": {"$gt": "30"}}, "range", "types", note="no comparison across types"),
    case("gt-null", {"age": {"$gt": None}}, "range", "null"),
    case("ne", {"age": {"$ne": 34}}, "ne", note="matches missing and null"),
    case("ne-string", {"city": {"$ne": "Oslo"}}, "ne"),
    case("eq-null", {"age": None}, "null", note="null matches null and missing"),
    case("ne-null", {"age": {"$ne": None}}, "ne", "null"),
    case("exists", {"nick": {"$exists": True}}, "exists"),
    case("not-exists", {"nick": {"$exists": False}}, "exists"),
    case("in", {"name": {"$in": ["Ann", "bob", "Zed"]}}, "in"),
    case("in-numbers", {"age": {"$in": [17, 51]}}, "in"),
    case("in-with-null", {"age": {"$in": [20, None]}}, "in", "null"),
    case("in-mixed-types", {"age": {"$in": [34, "20"]}}, "in", "types"),
    case("nin", {"city": {"$nin": ["Oslo", "oslo"]}}, "nin"),
    case("nin-numbers", {"age": {"$nin": [34, 20]}}, "nin", note="matches missing and null"),
    case("regex", {"name": {"$regex": "^b"}}, "regex"),
    case("regex-case-sensitive", {"name": {"$regex": "^B"}}, "regex", note="no match: case matters"),
    case("regex-i", {"name": {"$regex": "^B", "$options": "i"}}, "regex"),
    case("regex-anywhere", {"name": {"$regex": "n"}}, "regex"),
    case("regex-i-city", {"city": {"$regex": "^oslo$", "$options": "i"}}, "regex"),
    case("not-regex", {"name": {"$not": {"$regex": "^[AB]"}}}, "regex", "not"),
    case("not-gt", {"age": {"$not": {"$gt": 30}}}, "not", "range", note="NOT keeps missing and null"),
    case("or", {"$or": [{"age": {"$lt": 18}}, {"name": "Dee"}]}, "or", "range"),
    case("and", {"$and": [{"city": "Oslo"}, {"age": 34}]}),
    case("implicit-and", {"city": "Oslo", "active": True}),
    case("nor", {"$nor": [{"city": "Oslo"}, {"active": False}]}, "nor", "not"),
    case("or-of-and", {"$or": [{"city": "Bergen", "active": True}, {"name": "Cy"}]}, "or"),
    case("array-contains", {"tags": "blue"}, "arrays"),
    case("array-in", {"tags": {"$in": ["green", "nope"]}}, "arrays", "in"),
    case("nested-path", {"address.city": "Oslo"}, "nested"),
    case("nested-string-digits", {"address.zip": "0150"}, "nested"),
]

SORTS: list[tuple[str, str, set[str]]] = [
    # (id, --sort, needs)
    ("sort-int-asc", "age,id", {"sort", "null"}),      # null and missing sort first (MongoDB)
    ("sort-int-desc", "-age,id", {"sort", "null"}),    # ... and last descending
    ("sort-string", "name", {"sort"}),                 # code-point order: "Ann" < "Cy" < "bob"
    ("sort-float-desc", "-score,id", {"sort", "null"}),
]


@dataclass(frozen=True)
class UpdateCase:
    id: str
    filter: dict
    update: dict
    options: tuple[str, ...] = ()
    needs: frozenset[str] = field(default_factory=frozenset)


def update_case(id: str, flt: dict, upd: dict, *options: str, needs: tuple[str, ...] = ()) -> UpdateCase:
    return UpdateCase(id, flt, upd, options, frozenset(needs))


UPDATES: list[UpdateCase] = [
    update_case("set", {"city": "Oslo"}, {"$set": {"active": False}}),
    update_case("set-one", {"city": "Oslo"}, {"$set": {"score": 1.0}}, "--one", needs=("one",)),
    update_case("set-none-matched", {"name": "Zed"}, {"$set": {"age": 1}}),
    update_case("set-two-fields", {"id": 2}, {"$set": {"age": 21, "city": "Oslo"}}),
    update_case("unset", {"id": 1}, {"$unset": {"nick": ""}}, needs=("unset",)),
    update_case("inc", {"city": "Bergen"}, {"$inc": {"age": 1}}, needs=("inc",)),
    update_case("inc-float", {"id": 3}, {"$inc": {"score": 0.5}}, needs=("inc",)),
    update_case("inc-missing", {"id": 4}, {"$inc": {"age": 5}}, needs=("inc", "null")),
    update_case("set-and-inc", {"id": 5}, {"$set": {"city": "Rome"}, "$inc": {"age": -4}}, needs=("inc",)),
    update_case("upsert-insert", {"id": 7, "name": "Gus"}, {"$set": {"age": 40}}, "--upsert", needs=("upsert",)),
    update_case("upsert-update", {"id": 2}, {"$set": {"age": 22}}, "--upsert", needs=("upsert",)),
]

DELETES: list[tuple[str, dict, tuple[str, ...]]] = [
    ("delete-filter", {"city": "Oslo"}, ()),
    ("delete-one", {"city": "Oslo"}, ("--one",)),
    ("delete-none", {"name": "Zed"}, ()),
    ("delete-range", {"age": {"$lt": 21}}, ()),
    ("delete-all", {}, ("--all",)),
]

PAGES: list[tuple[str, list[str]]] = [
    # (id, find options): a sorted page of ids
    ("limit", ["--sort", "id", "--limit", "2"]),
    ("skip", ["--sort", "id", "--skip", "4"]),
    ("limit-skip", ["--sort", "id", "--skip", "1", "--limit", "3"]),
    ("limit-0", ["--sort", "id", "--limit", "0"]),
]
