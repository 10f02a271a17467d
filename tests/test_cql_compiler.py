"""The CQL compiler: filter AST + table description -> CQL text, bound values, ALLOW FILTERING reasons.

Pure functions, no server: every operator, the primary-key rules, quoting and value binding.
"""

import datetime as dt
import decimal
import uuid

import pytest

from dbsh.drivers.cassandra import (
    NAMED_MARKER,
    TableMeta,
    _without_literals,
    coerce,
    compile_delete,
    compile_insert,
    compile_select,
    compile_update,
    full_key,
    parse_url,
    quote_name,
    split_statements,
    split_type,
)
from dbsh.errors import Unsupported, UsageError
from dbsh.query import Filter, Update

USERS = TableMeta("app", "users", {"user_id": "uuid", "name": "text", "age": "int"}, ("user_id",),
                  indexed=frozenset({"name"}))
# partition (sensor, day), clustering (ts DESC, seq ASC)
READINGS = TableMeta("app", "readings", {"sensor": "text", "day": "date", "ts": "timestamp", "seq": "int",
                                         "value": "double", "tags": "set<text>"},
                     ("sensor", "day"), ("ts", "seq"), ("DESC", "ASC"))
HITS = TableMeta("app", "hits", {"page": "text", "n": "counter"}, ("page",))
UID = "5b6962dd-3f90-4c93-8f61-eabfa4a803e2"


def select(meta, doc, **kw):
    return compile_select(meta, Filter(doc), **kw)


def test_partition_key_equality_runs_as_is_with_a_bound_uuid():
    stmt = select(USERS, {"user_id": UID})
    assert stmt.text == 'SELECT * FROM "app"."users" WHERE "user_id" = ?'
    assert stmt.values == [uuid.UUID(UID)]
    assert stmt.filtering is None


def test_in_on_partition_key_binds_one_list():
    stmt = select(USERS, {"user_id": {"$in": [UID, str(uuid.UUID(int=1))]}})
    assert stmt.text == 'SELECT * FROM "app"."users" WHERE "user_id" IN ?'
    assert stmt.values == [[uuid.UUID(UID), uuid.UUID(int=1)]]


def test_regular_column_range_needs_allow_filtering_and_says_why():
    with pytest.raises(UsageError) as e:
        select(USERS, {"age": {"$gt": 20}})
    assert "needs ALLOW FILTERING" in str(e.value)
    assert "'age' is not part of the primary key and has no index" in str(e.value)
    assert "--allow-filtering" in str(e.value)
    assert e.value.exit_code == 2
    stmt = select(USERS, {"age": {"$gt": 20}}, allow_filtering=True)
    assert stmt.text == 'SELECT * FROM "app"."users" WHERE "age" > ? ALLOW FILTERING'
    assert stmt.values == [20]


@pytest.mark.parametrize("op,sign", [("$gt", ">"), ("$gte", ">="), ("$lt", "<"), ("$lte", "<=")])
def test_every_range_operator_on_a_clustering_column(op, sign):
    stmt = select(READINGS, {"sensor": "s1", "day": "2024-05-01", "ts": {op: "2024-05-01T10:00:00Z"}})
    assert stmt.text == f'SELECT * FROM "app"."readings" WHERE "sensor" = ? AND "day" = ? AND "ts" {sign} ?'
    assert stmt.values == ["s1", dt.date(2024, 5, 1), dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)]
    assert stmt.filtering is None


def test_equality_prefix_then_range_on_clustering_columns_is_served():
    stmt = select(READINGS, {"sensor": "s1", "day": "2024-05-01", "ts": "2024-05-01T10:00:00+00:00",
                             "seq": {"$gte": 3, "$lt": 9}})
    assert stmt.filtering is None
    assert stmt.text.endswith('"ts" = ? AND "seq" >= ? AND "seq" < ?')
    assert stmt.values[-2:] == [3, 9]


def test_indexed_column_equality_needs_no_filtering_but_a_range_does():
    assert select(USERS, {"name": "Ann"}).filtering is None
    with pytest.raises(UsageError, match="'name' is not part of the primary key and is indexed for = only"):
        select(USERS, {"name": {"$gt": "A"}})


@pytest.mark.parametrize("doc,reason", [
    ({"sensor": "s1"}, "partition key column(s) 'sensor' without 'day'"),
    ({"sensor": {"$gt": "a"}, "day": "2024-01-01"}, "a range on partition key column 'sensor'"),
    ({"sensor": "s1", "day": "2024-01-01", "seq": 1}, "clustering column 'seq' is restricted but 'ts' before it"),
    ({"sensor": "s1", "day": "2024-01-01", "ts": {"$gt": "2024-01-01"}, "seq": 1},
     "clustering column 'seq' follows a range or $in on 'ts'"),
    ({"ts": "2024-01-01T00:00:00"}, "clustering columns are restricted without the partition key"),
    ({"sensor": "s1", "day": "2024-01-01", "value": 1.5}, "column 'value' is not part of the primary key"),
])
def test_primary_key_rules(doc, reason):
    with pytest.raises(UsageError, match="needs ALLOW FILTERING") as e:
        select(READINGS, doc)
    assert reason in str(e.value)
    stmt = select(READINGS, doc, allow_filtering=True)
    assert stmt.text.endswith(" ALLOW FILTERING")
    assert reason in stmt.filtering


@pytest.mark.parametrize("doc,what", [
    ({"$or": [{"age": 1}, {"age": 2}]}, "$or is not supported on Cassandra"),
    ({"$nor": [{"age": 1}]}, "$not/$nor is not supported on Cassandra"),
    ({"age": {"$not": {"$gt": 1}}}, "$not/$nor is not supported on Cassandra"),
    ({"age": {"$ne": 1}}, "operator $ne is not supported on Cassandra"),
    ({"age": {"$nin": [1]}}, "operator $nin is not supported on Cassandra"),
    ({"age": {"$exists": True}}, "operator $exists is not supported on Cassandra"),
    ({"name": {"$regex": "^A"}}, "operator $regex is not supported on Cassandra"),
    ({"age": None}, "comparing 'age' with null is not supported on Cassandra"),
])
def test_operators_cql_cannot_run_are_clear_errors(doc, what):
    with pytest.raises(Unsupported) as e:
        select(USERS, doc, allow_filtering=True)
    assert what in str(e.value)
    assert e.value.exit_code == 2


def test_unknown_columns_are_rejected_never_pasted():
    for doc in ({'age" = 1; DROP TABLE users; --': 1}, {"nope": 1}):
        with pytest.raises(UsageError, match="unknown column"):
            select(USERS, doc, allow_filtering=True)
    with pytest.raises(UsageError, match="unknown column"):
        select(USERS, {}, fields=['name" FROM x; --'])
    with pytest.raises(UsageError, match="unknown column"):
        compile_insert(USERS, ("user_id", "x); DROP TABLE users; --"))


def test_hostile_names_are_double_quoted_and_values_bound():
    meta = TableMeta('k"s', 'ta"ble; DROP', {'co"l; --': "text", "id": "int"}, ("id",))
    stmt = select(meta, {'co"l; --': "x'); DROP TABLE t; --"}, allow_filtering=True)
    assert stmt.text == ('SELECT * FROM "k""s"."ta""ble; DROP" WHERE "co""l; --" = ? ALLOW FILTERING')
    assert stmt.values == ["x'); DROP TABLE t; --"]
    assert quote_name('a"b') == '"a""b"'
    with pytest.raises(UsageError):
        quote_name("a\x00b")


def test_fields_limit_and_count():
    stmt = select(USERS, {"user_id": UID}, fields=["name", "age"], limit=5)
    assert stmt.text == 'SELECT "name", "age" FROM "app"."users" WHERE "user_id" = ? LIMIT ?'
    assert stmt.values == [uuid.UUID(UID), 5]
    assert select(USERS, {}, count=True).text == 'SELECT COUNT(*) FROM "app"."users"'
    with pytest.raises(UsageError, match="--limit"):
        select(USERS, {}, limit=-1)


def test_sort_follows_the_clustering_order_or_its_reverse():
    key = {"sensor": "s1", "day": "2024-01-01"}
    assert select(READINGS, key, sort=[("ts", -1)]).text.endswith(' ORDER BY "ts" DESC')
    assert select(READINGS, key, sort=[("ts", 1), ("seq", -1)]).text.endswith(' ORDER BY "ts" ASC, "seq" DESC')
    with pytest.raises(Unsupported, match="not a mix"):
        select(READINGS, key, sort=[("ts", -1), ("seq", -1)])
    with pytest.raises(Unsupported, match="only by clustering columns"):
        select(READINGS, key, sort=[("value", 1)])
    with pytest.raises(Unsupported, match="only by clustering columns"):
        select(READINGS, key, sort=[("seq", 1)])
    with pytest.raises(Unsupported, match="give the partition key"):
        select(READINGS, {}, sort=[("ts", 1)])


def test_insert_statement_and_missing_key():
    assert compile_insert(USERS, ("user_id", "name")) == 'INSERT INTO "app"."users" ("user_id", "name") VALUES (?, ?)'
    assert compile_insert(USERS, ("user_id",), ttl=60).endswith("VALUES (?) USING TTL ?")
    with pytest.raises(UsageError, match=r"missing primary key column.*'user_id'.*--generate-id"):
        compile_insert(USERS, ("name",))


def test_update_statement_and_rules():
    text, values, keys = compile_update(USERS, Update({"$set": {"name": "Bo"}, "$unset": {"age": 1}}))
    assert text == 'UPDATE "app"."users" SET "name" = ?, "age" = ? WHERE "user_id" = ?'
    assert values == ["Bo", None] and keys == ["user_id"]
    text, values, _ = compile_update(HITS, Update({"$inc": {"n": 2}}), ttl=None)
    assert text == 'UPDATE "app"."hits" SET "n" = "n" + ? WHERE "page" = ?' and values == [2]
    assert compile_update(USERS, Update({"$set": {"age": 1}}), ttl=9)[0].startswith(
        'UPDATE "app"."users" USING TTL ? SET')
    with pytest.raises(Unsupported, match="counter columns only"):
        compile_update(USERS, Update({"$inc": {"age": 1}}))
    with pytest.raises(Unsupported, match="primary key column 'user_id'"):
        compile_update(USERS, Update({"$set": {"user_id": UID}}))
    with pytest.raises(UsageError, match="is int"):
        compile_update(USERS, Update({"$set": {"age": "old"}}))


def test_delete_statement_and_full_key_detection():
    assert compile_delete(READINGS) == (
        'DELETE FROM "app"."readings" WHERE "sensor" = ? AND "day" = ? AND "ts" = ? AND "seq" = ?',
        ["sensor", "day", "ts", "seq"])
    assert full_key(USERS, Filter({"user_id": UID})) == {"user_id": UID}
    assert full_key(USERS, Filter({"user_id": UID, "age": 3})) is None
    assert full_key(USERS, Filter({"user_id": {"$in": [UID]}})) is None
    assert full_key(USERS, Filter({})) is None
    assert full_key(READINGS, Filter({"sensor": "a", "day": "2024-01-01"})) is None


def test_values_are_coerced_to_the_column_type():
    assert coerce("uuid", UID, "id") == uuid.UUID(UID)
    assert coerce("bigint", "42", "n") == 42
    assert coerce("double", 3, "x") == 3.0 and isinstance(coerce("double", 3, "x"), float)
    assert coerce("decimal", 1.1, "d") == decimal.Decimal("1.1")
    assert coerce("timestamp", 0, "t") == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    assert coerce("time", "10:20:30", "t") == dt.time(10, 20, 30)
    assert coerce("inet", "::1", "ip") == "::1"
    assert coerce("blob", "hi", "b") == b"hi"
    assert coerce("set<text>", ["a", "b", "a"], "s") == {"a", "b"}
    assert coerce("frozen<map<text, list<int>>>", {"a": [1, 2]}, "m") == {"a": [1, 2]}
    assert coerce("tuple<int, text>", [1, "x"], "t") == (1, "x")
    assert coerce("text", None, "x") is None
    for kind, bad in [("int", 1.5), ("int", True), ("boolean", "yes"), ("text", 5), ("uuid", "nope"),
                      ("inet", "999.1.1.1"), ("date", "2024-13-01"), ("list<int>", "x"), ("map<text, int>", [1])]:
        with pytest.raises(UsageError, match=f"is {kind.split('<')[0]}"):
            coerce(kind, bad, "c")


def test_uuid_function_strings_are_not_magic():
    with pytest.raises(UsageError) as e:
        coerce("uuid", "uuid()", "user_id")
    assert "'uuid()' is not a valid uuid" in str(e.value) and "--generate-id" in str(e.value)


def test_split_type():
    assert split_type("map<text, frozen<list<int>>>") == ("map", ["text", "frozen<list<int>>"])
    assert split_type("frozen<set<uuid>>") == ("set", ["uuid"])
    assert split_type("TEXT") == ("text", [])


def test_url_parsing():
    spec = parse_url("cassandra://me:pw@h1,h2:9142/shop?consistency=LOCAL_QUORUM&dc=eu")
    assert spec == {"hosts": ["h1", "h2"], "port": 9142, "keyspace": "shop",
                    "options": {"consistency": "LOCAL_QUORUM", "dc": "eu"}}
    assert parse_url("cassandra://[::1]:9043")["hosts"] == ["::1"]
    assert parse_url("cassandra://")["hosts"] == ["127.0.0.1"]
    with pytest.raises(UsageError, match="invalid port"):
        parse_url("cassandra://h:x/ks")


def test_statement_splitting_respects_strings_comments_and_dollar_blocks():
    text = ("INSERT INTO t (a) VALUES ('x;y''z'); -- c;\n"
            "CREATE FUNCTION f() RETURNS text LANGUAGE java AS $$ return \";\"; $$;"
            ' SELECT "we;ird" FROM t /* ; */ ;  ; -- only a comment')
    assert split_statements(text) == [
        "INSERT INTO t (a) VALUES ('x;y''z')",
        "-- c;\nCREATE FUNCTION f() RETURNS text LANGUAGE java AS $$ return \";\"; $$",
        'SELECT "we;ird" FROM t /* ; */']


def test_named_markers_outside_literals_only():
    text = "SELECT * FROM t WHERE id = :id AND t = '10:30' AND \"x:y\" = :y -- :z"
    assert {m[1:] for m in NAMED_MARKER.findall(_without_literals(text))} == {"id", "y"}
