"""The Mango compiler (dbsh/drivers/couchdb/mango.py), checked against a model of CouchDB 3's own matcher.

The CouchDB of the test machines is pouchdb-server, whose Mango differs from CouchDB's (dbsh asks it for
every document and filters them itself), so the selectors dbsh sends a real CouchDB are checked here:
``couch_match`` follows src/mango/src/mango_selector.erl (match/3) and mango_doc:get_field/2 of Apache
CouchDB 3, with its collation (null < false < true < numbers < strings < arrays < objects). For every
filter, a selector marked exact must give MongoDB's answer (dbsh.query.matches) on every document, and
any other selector must keep every document MongoDB's answer keeps (dbsh filters the rest). With
DBSH_TEST_COUCHDB_URL pointing at a real CouchDB, tests/test_conformance.py checks it end to end.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings, strategies as st

from dbsh import query as q
from dbsh.drivers.couchdb.mango import NOTHING, find_plan, regex, selector
from dbsh.errors import UsageError
from tests.conformance_cases import DOCS, FILTERS

NOT_FOUND, BAD_PATH = object(), object()


# -- a model of CouchDB's matcher -------------------------------------------------------------------
def rank(value) -> int:
    if value is None:
        return 0
    if value is False:
        return 1
    if value is True:
        return 2
    if isinstance(value, (int, float)):
        return 3
    if isinstance(value, str):
        return 4
    if isinstance(value, list):
        return 5
    return 6


def cmp(a, b) -> int:
    """mango_json:cmp (strings by code point here: the compiler never relies on their order)."""
    ra, rb = rank(a), rank(b)
    if ra != rb:
        return -1 if ra < rb else 1
    if ra in (0, 1, 2):   # null, false, true: one value each
        return 0
    if ra == 5:
        for x, y in zip(a, b):
            c = cmp(x, y)
            if c:
                return c
        return (len(a) > len(b)) - (len(a) < len(b))
    if ra == 6:
        return cmp([[k, v] for k, v in a.items()], [[k, v] for k, v in b.items()])
    return (a > b) - (a < b)


def get_field(value, path: str):
    for name in path.split("."):
        if isinstance(value, dict):
            if name not in value:
                return NOT_FOUND
            value = value[name]
        elif isinstance(value, list):
            if not name.isdigit() or int(name) >= len(value):
                return BAD_PATH
            value = value[int(name)]
        else:
            return BAD_PATH
    return value


def type_name(value) -> str:
    return ["null", "boolean", "boolean", "number", "string", "array", "object"][rank(value)]


def couch_match(sel: dict, value) -> bool:
    """mango_selector:match/3 on a selector as dbsh writes them (multi-key objects are an implicit $and)."""
    if not sel:
        return True
    if len(sel) > 1:
        return all(couch_match({k: v}, value) for k, v in sel.items())
    [(key, arg)] = sel.items()
    if key == "$and":
        return all(couch_match(s, value) for s in arg)
    if key == "$or":
        return any(couch_match(s, value) for s in arg)
    if key.startswith("$"):
        return operator(key, arg, value)
    found = get_field(value, key)
    if found is NOT_FOUND:
        return arg == {"$exists": False}
    if found is BAD_PATH:
        return False
    if not (isinstance(arg, dict) and arg and all(k.startswith("$") for k in arg)):
        arg = {"$eq": arg}
    return couch_match(arg, found)


def operator(op: str, arg, value) -> bool:
    if op == "$eq":
        return cmp(value, arg) == 0
    if op in ("$gt", "$gte", "$lt", "$lte"):
        c = cmp(value, arg)
        return {"$gt": c > 0, "$gte": c >= 0, "$lt": c < 0, "$lte": c <= 0}[op]
    if op == "$ne":
        return cmp(value, arg) != 0
    if op == "$in":
        values = value if isinstance(value, list) else [value]
        return any(cmp(v, a) == 0 for v in values for a in arg)
    if op == "$nin":
        if isinstance(value, list):
            return not any(cmp(v, a) == 0 for v in value for a in arg)
        return all(cmp(value, a) != 0 for a in arg)
    if op == "$exists":
        return arg      # the value is there (a missing field is decided by the field lookup)
    if op == "$type":
        return type_name(value) == arg
    if op == "$elemMatch":
        return isinstance(value, list) and any(couch_match(arg, v) for v in value)
    if op == "$regex":
        pattern = arg.removeprefix("(*UTF)")
        return isinstance(value, str) and re.search(pattern, value) is not None
    raise AssertionError(f"the compiler wrote {op}, which the model does not know")


def check(flt: dict, docs: list[dict]) -> None:
    where = q.Filter(flt)
    mango, exact = selector(where)
    for doc in docs:
        want = q.matches(where.ast, doc)
        got = couch_match(mango, doc)
        if exact:
            assert got == want, (flt, mango, doc)
        else:
            assert got or not want, (flt, mango, doc)   # a superset: dbsh filters the rest


# -- the conformance cases and a few by hand --------------------------------------------------------
@pytest.mark.parametrize("case", FILTERS, ids=[c.id for c in FILTERS])
def test_conformance_filters_compile_to_mongodbs_answer_on_couchdb(case):
    check(case.filter, [dict(d, _id=str(d["id"])) for d in DOCS])


def test_what_couchdb_alone_gets_wrong_is_compiled_away():
    docs = [{"_id": "1", "n": None}, {"_id": "2", "n": 5}, {"_id": "3", "n": "x"}, {"_id": "4"},
            {"_id": "5", "n": [1, 40]}, {"_id": "6", "n": [None]}, {"_id": "7", "n": True}]
    for flt in ({"n": {"$lt": 10}}, {"n": {"$gt": 30}}, {"n": {"$ne": 5}}, {"n": {"$nin": [5, 1]}},
                {"n": None}, {"n": {"$in": [None, 40]}}, {"n": 40}, {"n": {"$not": {"$gt": 3}}},
                {"n": {"$gte": True}}, {"$nor": [{"n": 5}, {"n": "x"}]}):
        check(flt, docs)


def test_exact_selectors():
    assert selector(q.Filter({"n": 5})) == ({"n": {"$in": [5]}}, True)
    assert selector(q.Filter({"_id": "a"})) == ({"_id": {"$eq": "a"}}, True)    # the primary index serves it
    assert selector(q.Filter({"n": {"$gt": 30}}))[0] == {
        "$or": [{"n": {"$type": "number", "$gt": 30}}, {"n": {"$elemMatch": {"$type": "number", "$gt": 30}}}]}
    assert selector(q.Filter({"n": {"$gt": None}})) == (NOTHING, True)
    assert selector(q.Filter({"s": {"$gt": "Cy"}})) == ({"s": {"$exists": True}}, False)   # ICU order: dbsh's
    assert selector(q.Filter({"s": {"$not": {"$gt": 3}}})) == ({}, False)


def test_regex_options_are_inline_pcre():
    assert regex("^b", "i") == "(*UTF)(?i)^b"
    assert regex("x", "") == "(*UTF)x"
    mango, exact = selector(q.Filter({"name": {"$regex": "^B", "$options": "i"}}))
    assert exact and mango["$or"][0] == {"name": {"$regex": "(*UTF)(?i)^B"}}


def test_find_plans():
    plan = find_plan(q.Filter({"n": 5}), ["n"], None, 3, 1)
    assert plan.body == {"selector": {"n": {"$in": [5]}}, "fields": ["n"], "skip": 1, "limit": 3}
    assert plan.client_side == []
    plan = find_plan(q.Filter({"n": 5}), ["m"], [("n", -1)], 3, 1)   # CouchDB's order is not MongoDB's
    assert plan.body == {"selector": {"n": {"$in": [5]}}, "fields": ["m", "n"]}
    assert plan.client_side == ["sort", "skip", "limit"] and plan.fields == ["m"]
    plan = find_plan(q.Filter({"n": 5}), None, [("_id", -1)], 2)      # but _id's is
    assert plan.body == {"selector": {"n": {"$in": [5]}}, "sort": [{"_id": "desc"}], "limit": 2}
    plan = find_plan(q.Filter({"n": 5}), ["m"], None, 2, stand_in=True)
    assert plan.body == {"selector": {"_id": {"$gt": None}}, "fields": ["m", "n"]}
    assert plan.client_side == ["filter", "limit"] and plan.reads_all
    with pytest.raises(UsageError, match=r"\$elemMatch") as refused:
        find_plan(q.Filter({"tags": {"$elemMatch": {"$eq": "x"}}}))
    assert "POST /<db>/_find" in refused.value.hint


# -- random filters over random documents -----------------------------------------------------------
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.5, 2.0, -1.5]),
                    st.sampled_from(["", "a", "B", "ab", "3"]))
values = st.one_of(scalars, st.lists(scalars, max_size=3))
documents = st.lists(st.fixed_dictionaries({}, optional={
    "a": values, "b": st.one_of(values, st.fixed_dictionaries({}, optional={"c": values}))}), max_size=6)
fields = st.sampled_from(["a", "b", "b.c"])


def conditions():
    one = st.one_of(
        st.builds(lambda f, v: {f: v}, fields, scalars),
        st.builds(lambda f, op, v: {f: {op: v}}, fields, st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt",
                                                                           "$lte"]), scalars),
        st.builds(lambda f, op, v: {f: {op: v}}, fields, st.sampled_from(["$in", "$nin"]),
                  st.lists(scalars, max_size=3)),
        st.builds(lambda f, v: {f: {"$exists": v}}, fields, st.booleans()),
        st.builds(lambda f, p, o: {f: {"$regex": p, "$options": o}}, fields, st.sampled_from(["^a", "b$", "3", "A"]),
                  st.sampled_from(["", "i"])),
        st.builds(lambda f, op, v: {f: {"$not": {op: v}}}, fields, st.sampled_from(["$eq", "$gt", "$lte", "$in"]),
                  st.one_of(scalars, st.lists(scalars, max_size=2))),
    )
    return st.recursive(one, lambda inner: st.one_of(
        st.builds(lambda op, parts: {op: parts}, st.sampled_from(["$and", "$or", "$nor"]),
                  st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda a, b: {**a, **b}, inner, inner)), max_leaves=4)


@settings(max_examples=300, deadline=None)
@given(flt=conditions(), docs=documents)
def test_random_filters_give_mongodbs_answer_or_a_superset(flt, docs):
    try:
        q.parse_filter(flt)
    except UsageError:   # e.g. $in with a non-list after merging: the verbs refuse it anyway
        return
    check(flt, [dict(d, _id=str(i)) for i, d in enumerate(docs)])
