"""The shared filter/update language: parsing, errors, and the client-side evaluator."""

import pytest

from dbsh import query as q
from dbsh.errors import UsageError


def test_parse_equality_and_operators():
    ast = q.parse_filter({"name": "Ann", "age": {"$gt": 30, "$lte": 40}})
    assert ast == q.And((q.Cmp("name", "eq", "Ann"),
                         q.And((q.Cmp("age", "gt", 30), q.Cmp("age", "lte", 40)))))


def test_parse_logical_operators():
    ast = q.parse_filter({"$or": [{"a": 1}, {"b": {"$in": [1, 2]}}], "$nor": [{"c": None}]})
    assert ast == q.And((q.Or((q.Cmp("a", "eq", 1), q.Cmp("b", "in", (1, 2)))),
                         q.Not(q.Or((q.Cmp("c", "eq", None),)))))


def test_parse_not_and_regex():
    ast = q.parse_filter({"name": {"$not": {"$regex": "^J", "$options": "i"}}})
    assert ast == q.Not(q.Cmp("name", "regex", "^J", "i"))


@pytest.mark.parametrize("doc, message", [
    ({"a": {"$foo": 1}}, "unknown operator $foo"),
    ({"$where": "x"}, "unknown top-level operator $where"),
    ({"a": {"$in": 3}}, "$in needs an array"),
    ({"a": {"$regex": "("}}, "invalid regular expression"),
    ({"$or": []}, "$or needs a non-empty array"),
    ({"a": {"$gt": 1, "b": 2}}, "cannot mix operators and fields"),
    ({"a": {"$options": "i"}}, "$options needs $regex"),
])
def test_parse_errors_are_usage_errors(doc, message):
    with pytest.raises(UsageError, match=message.replace("$", r"\$").replace("(", r"\(")):
        q.parse_filter(doc)


def test_update_parsing():
    changes = q.parse_update({"$set": {"a": 1}, "$unset": {"b": ""}, "$inc": {"c": 2}})
    assert changes == (q.Set("a", 1), q.Unset("b"), q.Inc("c", 2))
    with pytest.raises(UsageError, match="unknown update operator"):
        q.parse_update({"$push": {"a": 1}})
    with pytest.raises(UsageError, match="operators, not plain fields"):
        q.parse_update({"a": 1})
    with pytest.raises(UsageError, match=r"\$inc needs a number"):
        q.parse_update({"$inc": {"a": "x"}})
    with pytest.raises(UsageError, match="changed twice"):
        q.parse_update({"$set": {"a": 1}, "$inc": {"a": 1}})


def test_filter_is_parsed_lazily():
    f = q.Filter({"a": {"$elemMatch": {"b": 1}}})   # MongoDB passes raw documents through
    assert f.doc == {"a": {"$elemMatch": {"b": 1}}}
    with pytest.raises(UsageError):
        f.ast  # noqa: B018 - parsing it is what raises


DOCS = [
    {"name": "Ann", "age": 34, "tags": ["a", "b"], "address": {"city": "Oslo"}},
    {"name": "Bob", "age": 17, "tags": [], "nick": None},
    {"name": "jill", "age": 30.5},
    {"name": "Kim"},
]


@pytest.mark.parametrize("filter_doc, expected", [
    ({}, ["Ann", "Bob", "jill", "Kim"]),
    ({"age": {"$gt": 30}}, ["Ann", "jill"]),
    ({"age": {"$gte": 17, "$lt": 34}}, ["Bob", "jill"]),
    ({"age": {"$ne": 17}}, ["Ann", "jill", "Kim"]),            # $ne matches missing fields
    ({"age": {"$exists": False}}, ["Kim"]),
    ({"nick": None}, ["Ann", "Bob", "jill", "Kim"]),             # null matches missing
    ({"tags": "a"}, ["Ann"]),                                    # array contains
    ({"tags": {"$in": ["b", "z"]}}, ["Ann"]),
    ({"name": {"$nin": ["Ann", "Bob"]}}, ["jill", "Kim"]),
    ({"name": {"$regex": "^j", "$options": "i"}}, ["jill"]),
    ({"name": {"$not": {"$regex": "^[AB]"}}}, ["jill", "Kim"]),
    ({"address.city": "Oslo"}, ["Ann"]),
    ({"$or": [{"age": {"$lt": 18}}, {"name": "Kim"}]}, ["Bob", "Kim"]),
    ({"age": {"$gt": "30"}}, []),                                # no cross-type comparison
    ({"age": True}, []),                                         # bool is not 1
])
def test_matches(filter_doc, expected):
    ast = q.parse_filter(filter_doc)
    assert [d["name"] for d in DOCS if q.matches(ast, d)] == expected


def test_apply_update_nested_and_inc():
    doc = {"a": 1, "n": {"x": 1}}
    out = q.apply_update(q.parse_update({"$inc": {"a": 2, "n.x": 1}, "$set": {"n.y": [1]}}), doc)
    assert out == {"a": 3, "n": {"x": 2, "y": [1]}}
    assert doc == {"a": 1, "n": {"x": 1}}
    with pytest.raises(UsageError, match="cannot \\$inc"):
        q.apply_update(q.parse_update({"$inc": {"s": 1}}), {"s": "text"})


def test_sort_and_fields():
    assert q.parse_sort("-price, name") == [("price", -1), ("name", 1)]
    assert q.parse_fields("name, price") == ["name", "price"]
    assert q.equalities(q.parse_filter({"a": 1, "b": {"$gt": 2}})) == {"a": 1}


def test_order_key_is_mongodbs_sort_order():
    from dbsh.query import order_key

    values = [True, "b", {"a": 1}, [], 3.5, None, "B", -1, [2, 9], False]
    assert sorted(values, key=order_key) == [[], None, -1, [2, 9], 3.5, "B", "b", {"a": 1}, False, True]
    # an array sorts by its smallest element ascending and by its largest descending
    assert sorted([[2, 9], 5], key=lambda v: order_key(v, True), reverse=True) == [[2, 9], 5]
    assert order_key(34) == order_key(34.0)


def test_client_side_sort_spills_long_inputs_keeps_ties_and_mixed_directions(monkeypatch):
    from dbsh.drivers import client_side

    monkeypatch.setattr(client_side, "SPILL", 4)
    docs = [{"i": i, "g": i % 3, "s": f"x{i % 2}"} for i in range(11)]
    want = sorted(sorted(docs, key=lambda d: d["i"]), key=lambda d: (-d["g"], d["s"]))
    got = list(client_side.sort_documents(iter(docs), [("g", -1), ("s", 1)]))
    assert got == want
    assert list(client_side.sort_documents(iter(docs), [("g", -1), ("s", 1)], keep=3)) == want[:3]
    assert list(client_side.find_steps(docs, check=q.parse_filter({"g": 1}), sort=[("i", -1)], skip=1, limit=2,
                                       fields=["i"])) == [{"i": 7}, {"i": 4}]
