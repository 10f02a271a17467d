"""The CQL compiler: filter AST + table description -> CQL text, bound values, ALLOW FILTERING reasons,
and what dbsh checks and sorts itself where CQL cannot.

Pure functions, no server and no cassandra-driver import: every operator, the primary-key rules, quoting
and value binding (only the time and duration values need the driver's classes).
"""

import datetime as dt
import decimal
import uuid

import pytest

from dbsh import query as q
from dbsh.drivers.cassandra.cql import (
    NAMED_MARKER,
    TableMeta,
    compile_delete,
    compile_insert,
    compile_select,
    compile_update,
    full_key,
    quote_name,
    split_statements,
    without_literals,
)
from dbsh.drivers.cassandra.urls import parse_url
from dbsh.drivers.cassandra.values import coerce, split_type
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


@pytest.mark.parametrize("doc,lacks", [
    ({"$or": [{"age": 1}, {"age": 2}]}, "$or"),
    ({"$nor": [{"age": 1}]}, "$not/$nor"),
    ({"age": {"$not": {"$gt": 1}}}, "$not/$nor"),
    ({"age": {"$ne": 1}}, "$ne"),
    ({"age": {"$nin": [1]}}, "$nin"),
    ({"age": {"$exists": True}}, "$exists"),
    ({"name": {"$regex": "^A"}}, "$regex"),
    ({"age": None}, "= null"),
    ({"age": {"$in": [1, None]}}, "= null"),
])
def test_what_cql_cannot_say_dbsh_checks_on_each_row(doc, lacks):
    """MongoDB's meaning, not an error: CQL selects what it can, dbsh checks the rest on each row read.
    With nothing selecting rows by key or index that is a scan, which needs --allow-filtering."""
    with pytest.raises(UsageError) as e:
        select(USERS, doc)
    assert str(e.value) == (f"this filter on app.users reads the whole table: no key or index selects the rows, and "
                            f"CQL cannot say {lacks}: dbsh checks it on each row "
                            "(pass --allow-filtering to let dbsh scan it (slow on big tables))")
    stmt = select(USERS, doc, allow_filtering=True)
    assert stmt.text == 'SELECT * FROM "app"."users"' and stmt.values == []
    assert stmt.check is not None and stmt.work == f"checks {lacks} on each row"
    # the whole partition key selects the rows: dbsh checks those, no scan
    stmt = select(USERS, {"user_id": UID, **doc}, fields=["name"])
    columns = '"name"' if "name" in str(doc) else '"name", "age"'   # asked for, and what the check reads
    assert stmt.text == f'SELECT {columns} FROM "app"."users" WHERE "user_id" = ?'
    assert stmt.filtering is None and stmt.fields == ["name"] and stmt.check is not None


@pytest.mark.parametrize("doc,text,values", [
    ({"age": 34.0}, '"age" = ?', [34]),                       # 34.0 is 34
    ({"age": {"$gt": 30.5}}, '"age" > ?', [30]),               # an int above 30.5 is above 30
    ({"age": {"$gte": 30.5}}, '"age" > ?', [30]),
    ({"age": {"$lte": 30.5}}, '"age" < ?', [31]),
    ({"age": {"$in": [34, "20", 34.0, True]}}, '"age" IN ?', [[34]]),   # values of other types match nothing
    ({"age": {"$lt": 2**40}}, None, []),                       # beyond int's range: every value (dbsh: $exists)
])
def test_values_compare_as_mongodb_compares_them(doc, text, values):
    stmt = select(USERS, doc, allow_filtering=True)
    if text is None:
        assert stmt.check == q.Cmp("age", "exists", True) and "WHERE" not in stmt.text
    else:
        assert stmt.text == f'SELECT * FROM "app"."users" WHERE {text} ALLOW FILTERING' and stmt.values == values


@pytest.mark.parametrize("doc", [{"age": "34"}, {"age": 34.5}, {"name": 1}, {"age": True}, {"age": {"$gt": "3"}},
                                 {"age": {"$lt": None}}, {"age": {"$in": ["1"]}}, {"age": {"$in": []}},
                                 {"age": {"$gt": 2**40}}])
def test_a_value_no_row_can_match_sends_nothing(doc):
    """ "34" is not 34, true is not 1, and no int equals 34.5: MongoDB's answer is no row, without a scan."""
    stmt = select(USERS, {"user_id": {"$ne": UID}, **doc})   # (no --allow-filtering needed either)
    assert stmt.never and stmt.check is None


def test_typed_columns_read_filter_values_as_their_type_in_the_check_too():
    stmt = select(USERS, {"user_id": {"$nin": [UID]}}, allow_filtering=True)
    assert stmt.check == q.Cmp("user_id", "nin", (uuid.UUID(UID),))
    with pytest.raises(UsageError, match="'nope' is not a valid uuid"):
        select(USERS, {"user_id": {"$ne": "nope"}}, allow_filtering=True)


def test_paths_into_maps_and_collections_are_checked_by_dbsh():
    meta = TableMeta("app", "people", {"id": "int", "address": "map<text, text>", "tags": "list<text>"}, ("id",))
    stmt = select(meta, {"address.city": "Oslo", "tags": "red"}, fields=["id"], allow_filtering=True)
    assert stmt.text == 'SELECT "id", "address", "tags" FROM "app"."people"'
    assert stmt.work == "checks the path 'address.city', a condition on 'tags' (list<text>) on each row"
    with pytest.raises(UsageError, match=r"unknown column 'nope\.city'"):
        select(meta, {"nope.city": 1}, allow_filtering=True)


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


def test_sort_follows_the_clustering_order_or_its_reverse_else_dbsh_sorts():
    key = {"sensor": "s1", "day": "2024-01-01"}
    assert select(READINGS, key, sort=[("ts", -1)]).text.endswith(' ORDER BY "ts" DESC')
    assert select(READINGS, key, sort=[("ts", 1), ("seq", -1)]).text.endswith(' ORDER BY "ts" ASC, "seq" DESC')
    for sort in ([("ts", -1), ("seq", -1)], [("value", 1)], [("seq", 1)]):   # within the partition: dbsh sorts
        stmt = select(READINGS, key, sort=sort, limit=2, skip=1)
        assert "ORDER BY" not in stmt.text and "LIMIT" not in stmt.text and stmt.filtering is None
        assert stmt.order == sort and (stmt.skip, stmt.limit) == (1, 2)
    with pytest.raises(UsageError) as e:   # every partition: a scan, and the error says why
        select(READINGS, {}, sort=[("ts", 1)])
    assert str(e.value) == ("this sort on app.readings reads the whole table: no key or index selects the rows, and "
                            "Cassandra sorts only by clustering columns within one partition: dbsh sorts by ts "
                            "(pass --allow-filtering to let dbsh scan it (slow on big tables))")
    stmt = select(READINGS, {"sensor": {"$in": ["a", "b"]}, "day": "2024-01-01"}, sort=[("ts", 1)])
    assert stmt.order == [("ts", 1)] and "ORDER BY" not in stmt.text   # (the server cannot page that ORDER BY)


def test_insert_statement_and_missing_key():
    assert compile_insert(USERS, ("user_id", "name")) == 'INSERT INTO "app"."users" ("user_id", "name") VALUES (?, ?)'
    assert compile_insert(USERS, ("user_id",), ttl=60).endswith("VALUES (?) USING TTL ?")
    with pytest.raises(UsageError, match=r"missing primary key column.*'user_id'.*--generate-id"):
        compile_insert(USERS, ("name",))


def test_update_statement_and_rules():
    stmt = compile_update(USERS, Update({"$set": {"name": "Bo"}, "$unset": {"age": 1}}))
    assert stmt.text == 'UPDATE "app"."users" SET "name" = ?, "age" = ? WHERE "user_id" = ?'
    assert stmt.values == ["Bo", None] and stmt.keys == ["user_id"] and stmt.increments == []
    stmt = compile_update(HITS, Update({"$inc": {"n": 2}}), ttl=None)
    assert stmt.text == 'UPDATE "app"."hits" SET "n" = "n" + ? WHERE "page" = ?' and stmt.values == [2]
    assert compile_update(USERS, Update({"$set": {"age": 1}}), ttl=9).text.startswith(
        'UPDATE "app"."users" USING TTL ? SET')
    # $inc of a column that is not a counter: a compare-and-set of the value dbsh read
    stmt = compile_update(USERS, Update({"$set": {"name": "Bo"}, "$inc": {"age": -2}}))
    assert stmt.text == 'UPDATE "app"."users" SET "name" = ?, "age" = ? WHERE "user_id" = ? IF "age" = ?'
    assert stmt.values == ["Bo"] and stmt.increments == [("age", -2)]
    with pytest.raises(UsageError, match="cannot \\$inc 'name': it is a text column, not a number"):
        compile_update(USERS, Update({"$inc": {"name": 1}}))
    with pytest.raises(UsageError, match=r"cannot \$inc 'age' by 0\.5: it is a int column"):
        compile_update(USERS, Update({"$inc": {"age": 0.5}}))
    with pytest.raises(Unsupported, match="primary key column 'user_id'"):
        compile_update(USERS, Update({"$set": {"user_id": UID}}))
    with pytest.raises(UsageError, match="is int"):
        compile_update(USERS, Update({"$set": {"age": "old"}}))


def test_update_of_one_map_entry():
    meta = TableMeta("app", "p", {"id": "int", "m": "map<text, int>", "f": "frozen<map<text, int>>", "n": "int"},
                     ("id",))
    stmt = compile_update(meta, Update({"$set": {"m.a": 1}, "$unset": {"m.b": ""}}))
    assert stmt.text == 'UPDATE "app"."p" SET "m"[?] = ?, "m" = "m" - ? WHERE "id" = ?'
    assert stmt.values == ["a", 1, {"b"}]
    for change in ({"$set": {"f.a": 1}}, {"$set": {"n.a": 1}}, {"$inc": {"m.a": 1}}, {"$set": {"m.a.b": 1}}):
        with pytest.raises(Unsupported, match="one entry of a map column that is not frozen"):
            compile_update(meta, Update(change))
    with pytest.raises(UsageError, match=r"unknown column 'x\.a'"):
        compile_update(meta, Update({"$set": {"x.a": 1}}))


def test_delete_statement_and_full_key_detection():
    assert compile_delete(READINGS) == (
        'DELETE FROM "app"."readings" WHERE "sensor" = ? AND "day" = ? AND "ts" = ? AND "seq" = ?',
        ["sensor", "day", "ts", "seq"])
    assert full_key(USERS, Filter({"user_id": UID})) == {"user_id": uuid.UUID(UID)}
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


def test_time_values_are_the_drivers_own():
    pytest.importorskip("cassandra", reason="cassandra-driver's Time class")
    assert coerce("time", "10:20:30", "t") == dt.time(10, 20, 30)


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
    assert {m[1:] for m in NAMED_MARKER.findall(without_literals(text))} == {"id", "y"}
