"""The Cassandra driver against a real Apache Cassandra (tests/servers.py starts 5.0 from the Maven
Central jars; DBSH_TEST_CASSANDRA_URL points elsewhere), checked with cassandra-driver.

The CQL compiler's text is also unit-tested without a server in test_cql_compiler.py; here every
filter operator runs against the server and the rows it returns are checked.
"""

import json
import socket
import uuid

import pytest

from tests.dbshtest import dbsh, dbsh_process
from tests.servers import cassandra_cluster

pytestmark = pytest.mark.cassandra


# -- no server needed --------------------------------------------------------------------------
def test_unreachable_server_is_exit_3_without_the_password():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = dbsh("-u", f"cassandra://me:s3cret@127.0.0.1:{port}/ks", "collections")
    assert run.code == 3 and run.err.startswith("dbsh: error: cannot connect to cassandra://me:***@")
    assert "s3cret" not in run.out + run.err and len(run.err.strip().splitlines()) == 1


@pytest.fixture
def silent_port():
    """A TCP port that accepts connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]   # connections wait in the backlog, unanswered


@pytest.mark.redis
@pytest.mark.parametrize("where", ["silent", "redis"])
def test_a_port_of_another_protocol_or_none_is_exit_3_within_the_connect_timeout(where, request):
    """--connect-timeout bounds connecting and the first reply: a real process under a generous limit (a
    hang fails the test), and the message names the limit it hit."""
    if where == "redis":
        port = int(request.getfixturevalue("redis_url").split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
    else:
        port = request.getfixturevalue("silent_port")
    run = dbsh_process("-u", f"cassandra://me:s3cret@127.0.0.1:{port}/ks", "--connect-timeout", "1.5",
                       "find", "t", timeout=120)
    assert run.code == 3, (run.code, run.err)
    assert run.err == (f"dbsh: error: cannot connect to cassandra://me:***@127.0.0.1:{port}/ks: 127.0.0.1:{port}: "
                       "no CQL answer within 1.5 s (--connect-timeout; is this a Cassandra port?)\n")
    # the URL's own ?connect_timeout= counts when no --connect-timeout is given
    run = dbsh_process("-u", f"cassandra://127.0.0.1:{port}/ks?connect_timeout=1", "collections", timeout=120)
    assert run.code == 3 and "no CQL answer within 1 s" in run.err and len(run.err.splitlines()) == 1, run.err


def test_bad_options_are_exit_2_before_connecting():
    run = dbsh("-u", "cassandra://127.0.0.1:1/ks", "--consistency", "MOSTLY", "collections")
    assert run.code == 2 and "unknown consistency level 'MOSTLY'" in run.err
    run = dbsh("-u", "cassandra://127.0.0.1:1/ks?consistency=nope", "collections")
    assert run.code == 2
    run = dbsh("-u", "cassandra://127.0.0.1:x/ks", "collections")
    assert run.code == 2 and "invalid port" in run.err


# -- a real Cassandra ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cql(cassandra_url):
    """(url with a fresh keyspace, native session)."""
    cluster = cassandra_cluster(cassandra_url)
    session = cluster.connect()
    keyspace = f"dbsh_{uuid.uuid4().hex[:8]}"
    session.execute(f"CREATE KEYSPACE {keyspace} WITH replication = {{'class': 'SimpleStrategy', "
                    "'replication_factor': 1}")
    base = cassandra_url.split("?", 1)[0].rstrip("/")
    base = base.rsplit("/", 1)[0] if base.count("/") > 2 else base
    yield f"{base}/{keyspace}", session, keyspace
    session.execute(f"DROP KEYSPACE {keyspace}")
    cluster.shutdown()


def rows(cql, text, *values):
    return [dict(r._asdict()) for r in cql[1].execute(text.replace("KS.", cql[2] + "."), values)]


def test_readme_flow(cql):
    url = cql[0]
    run = dbsh("-u", url, "query", "CREATE TABLE IF NOT EXISTS users (user_id uuid PRIMARY KEY, name text, age int)")
    assert run.code == 0, run.err
    run = dbsh("-u", url, "insert", "users", '{"user_id": "uuid()", "name": "John Doe", "age": 29}')
    assert run.code == 2 and "--generate-id" in run.err
    run = dbsh("-u", url, "--yes", "insert", "users", '{"name": "John Doe", "age": 29}', "--generate-id")
    assert run.code == 0, run.err
    [new_id] = run.json_lines()[0]["ids"]
    assert rows(cql, "SELECT name, age FROM KS.users WHERE user_id = %s", uuid.UUID(new_id)) == [
        {"name": "John Doe", "age": 29}]
    run = dbsh("-u", url, "find", "users", json.dumps({"user_id": new_id}))
    assert run.json_lines() == [{"user_id": new_id, "age": 29, "name": "John Doe"}]
    run = dbsh("-u", url, "find", "users", '{"age": {"$gt": 20}}')
    assert run.code == 2 and "ALLOW FILTERING" in run.err and "'age'" in run.err
    run = dbsh("-u", url, "find", "users", '{"age": {"$gt": 20}}', "--allow-filtering")
    assert [r["name"] for r in run.json_lines()] == ["John Doe"]
    run = dbsh("-u", url, "query", "SELECT name FROM users WHERE user_id = :id", "-p", f"id={new_id}")
    assert run.json_lines() == [{"name": "John Doe"}]
    assert "users" in [r["name"] for r in dbsh("-u", url, "collections").json_lines()]
    described = dbsh("-u", url, "describe", "users").json_lines()
    assert described[0] == {"column": "user_id", "type": "uuid", "key": "partition key 1", "indexed": False}


def test_clustering_sort_update_delete_and_ttl(cql):
    url = cql[0]
    cql[1].execute(f"CREATE TABLE {cql[2]}.events (src text, ts int, kind text, PRIMARY KEY (src, ts)) "
                   "WITH CLUSTERING ORDER BY (ts DESC)")
    docs = [json.dumps({"src": "a", "ts": i, "kind": "x" if i % 2 else "y"}) for i in range(6)]
    assert dbsh("-u", url, "insert", "events", *docs).json_lines()[0]["count"] == 6
    run = dbsh("-u", url, "find", "events", '{"src": "a", "ts": {"$gte": 2}}', "--sort", "ts", "--limit", "2")
    assert [r["ts"] for r in run.json_lines()] == [2, 3]
    run = dbsh("-u", url, "update", "events", '{"src": "a", "ts": 1}', '{"$set": {"kind": "z"}}')
    assert run.json_lines()[0]["count"] == 1
    assert rows(cql, "SELECT kind FROM KS.events WHERE src = 'a' AND ts = 1") == [{"kind": "z"}]
    run = dbsh("-u", url, "delete", "events", '{"src": "a", "ts": {"$lt": 3}}')
    assert run.code == 2 and "--yes" in run.err
    assert len(rows(cql, "SELECT ts FROM KS.events")) == 6
    run = dbsh("-u", url, "--yes", "delete", "events", '{"src": "a", "ts": {"$lt": 3}}')
    assert run.json_lines()[0]["count"] == 3 and "warning" in run.err
    assert sorted(r["ts"] for r in rows(cql, "SELECT ts FROM KS.events")) == [3, 4, 5]
    assert dbsh("-u", url, "insert", "events", '{"src": "b", "ts": 1, "kind": "k"}', "--ttl", "3600").code == 0
    assert 0 < rows(cql, "SELECT TTL(kind) AS t FROM KS.events WHERE src = 'b'")[0]["t"] <= 3600
    run = dbsh("-u", url, "--consistency", "ONE", "query", "SELECT count(*) AS n FROM events", "--trace")
    assert run.json_lines() == [{"n": 4}] and "trace" in run.err


def test_hostile_identifiers_and_values(cql):
    url = cql[0]
    name = "We_ird"   # Cassandra table names are letters, digits and _; quoted, their case counts
    cql[1].execute(f'CREATE TABLE {cql[2]}."{name}" ("i""d" int PRIMARY KEY, "v;al" text)')
    value = "x'); DROP KEYSPACE system; --"
    run = dbsh("-u", url, "insert", name, json.dumps({'i"d': 1, "v;al": value}))
    assert run.code == 0, run.err
    assert dbsh("-u", url, "find", name, json.dumps({'i"d': 1})).json_lines() == [{'i"d': 1, "v;al": value}]
    assert dbsh("-u", url, "find", name, json.dumps({'i"d; DROP': 1})).code == 2
    assert dbsh("-u", url, "find", "users; DROP TABLE users").code == 2


def columns(cql, table):
    return {r["column_name"]: r["type"] for r in rows(
        cql, "SELECT column_name, type FROM system_schema.columns WHERE keyspace_name = %s AND table_name = %s",
        cql[2], table)}


def test_insert_create_makes_and_widens_the_table(cql):
    url = cql[0]
    run = dbsh("-u", url, "insert", "made", "--create",
               '{"id": 1, "name": "Ann", "score": 1.5, "ok": true, "tags": {"k": [1, 2]}}')
    assert run.code == 0, run.err
    assert columns(cql, "made") == {"id": "bigint", "name": "text", "score": "double", "ok": "boolean",
                                    "tags": "text"}
    assert rows(cql, "SELECT * FROM KS.made") == [{"id": 1, "name": "Ann", "score": 1.5, "ok": True,
                                                   "tags": '{"k": [1, 2]}'}]
    run = dbsh("-u", url, "insert", "made", '{"id": 2, "extra": 7}')
    assert run.code == 2 and "unknown column 'extra'" in run.err
    run = dbsh("-u", url, "insert", "made", "--create", '{"id": 2, "extra": 7}')
    assert run.code == 0, run.err
    assert columns(cql, "made")["extra"] == "bigint"
    assert rows(cql, "SELECT id, extra FROM KS.made WHERE id = 2") == [{"id": 2, "extra": 7}]
    # no "id" in the documents: a uuid key that dbsh fills, and says which
    run = dbsh("-u", url, "insert", "keyless", "--create", '{"name": "x"}', '{"name": "y"}')
    assert run.code == 0, run.err
    ids = run.json_lines()[0]["ids"]
    assert columns(cql, "keyless") == {"id": "uuid", "name": "text"}
    assert sorted((str(r["id"]), r["name"]) for r in rows(cql, "SELECT * FROM KS.keyless")) == sorted(
        zip(ids, ["x", "y"]))
    run = dbsh("-u", url, "insert", "no-such", "--create", '{"id": 1}')
    assert run.code == 2 and "Cassandra table names are letters, digits and _" in run.err


# -- the CQL compiler against the server: every operator, the rows it returns ----------------------
@pytest.fixture(scope="module")
def readings(cql):
    """readings: partition key sensor (a, b, c), clustering ts (0-9), v = 10 * ts, tag even/odd indexed."""
    session, ks = cql[1], cql[2]
    session.execute(f"CREATE TABLE {ks}.readings (sensor text, ts int, v int, tag text, PRIMARY KEY (sensor, ts))")
    session.execute(f"CREATE INDEX readings_tag ON {ks}.readings (tag)")
    insert = session.prepare(f"INSERT INTO {ks}.readings (sensor, ts, v, tag) VALUES (?, ?, ?, ?)")
    for sensor in "abc":
        for ts in range(10):
            session.execute(insert, (sensor, ts, 10 * ts, "odd" if ts % 2 else "even"))
    return cql[0]


ALL = [(s, t) for s in "abc" for t in range(10)]
SERVED = [   # filters the primary key or the index serves: no ALLOW FILTERING
    ({"sensor": "a"}, [("a", t) for t in range(10)]),
    ({"sensor": {"$eq": "a"}, "ts": 3}, [("a", 3)]),
    ({"sensor": {"$in": ["a", "c"]}, "ts": 1}, [("a", 1), ("c", 1)]),
    ({"sensor": "a", "ts": {"$gt": 7}}, [("a", 8), ("a", 9)]),
    ({"sensor": "a", "ts": {"$gte": 8}}, [("a", 8), ("a", 9)]),
    ({"sensor": "a", "ts": {"$lt": 2}}, [("a", 0), ("a", 1)]),
    ({"sensor": "a", "ts": {"$lte": 1}}, [("a", 0), ("a", 1)]),
    ({"sensor": "b", "ts": {"$gt": 2, "$lte": 4}}, [("b", 3), ("b", 4)]),
    ({"sensor": "a", "ts": {"$in": [2, 5, 42]}}, [("a", 2), ("a", 5)]),
    ({"$and": [{"sensor": "c"}, {"ts": {"$gte": 8}}]}, [("c", 8), ("c", 9)]),
    ({"tag": "odd", "sensor": "a"}, [("a", t) for t in range(1, 10, 2)]),
    ({"tag": "even"}, [(s, t) for s in "abc" for t in range(0, 10, 2)]),
    ({}, ALL),
]
FILTERED = [   # filters Cassandra runs only with ALLOW FILTERING, and why dbsh says it needs it
    ({"v": {"$gt": 85}}, [("a", 9), ("b", 9), ("c", 9)],
     "column 'v' is not part of the primary key and has no index"),
    ({"ts": 3}, [("a", 3), ("b", 3), ("c", 3)],
     "clustering columns are restricted without the partition key (this scans every partition)"),
    ({"sensor": {"$gte": "b"}, "ts": 0}, [("b", 0), ("c", 0)],
     "a range on partition key column 'sensor' (only = and $in select partitions)"),
    ({"tag": {"$in": ["odd"]}, "sensor": "b", "ts": {"$lt": 4}}, [("b", 1), ("b", 3)],
     "column 'tag' is not part of the primary key and is indexed for = only"),
    ({"sensor": "a", "v": {"$lte": 10, "$gte": 10}}, [("a", 1)],
     "column 'v' is not part of the primary key and has no index"),
]


def found(url, where, *extra):
    run = dbsh("-u", url, "find", "readings", json.dumps(where), *extra)
    assert run.code == 0, run.err
    return sorted((r["sensor"], r["ts"]) for r in run.json_lines())


@pytest.mark.parametrize("where, expected", SERVED, ids=[json.dumps(w) for w, _ in SERVED])
def test_filters_the_key_serves_run_without_allow_filtering(readings, cql, where, expected):
    assert found(readings, where) == expected
    plan = dbsh("-u", readings, "explain", "readings", json.dumps(where)).json_lines()[0]
    assert plan["plan"] == "served by the primary key or an index" and "ALLOW FILTERING" not in plan["cql"]
    cql[1].prepare(plan["cql"])   # and the server agrees
    assert dbsh("-u", readings, "count", "readings", json.dumps(where)).json_lines() == [{"count": len(expected)}]


@pytest.mark.parametrize("where, expected, why", FILTERED, ids=[json.dumps(w) for w, _, _ in FILTERED])
def test_filters_that_need_allow_filtering(readings, cql, where, expected, why):
    run = dbsh("-u", readings, "find", "readings", json.dumps(where))
    assert run.code == 2 and run.out == ""
    assert run.err == (f"dbsh: error: this filter on {cql[2]}.readings needs ALLOW FILTERING: {why} "
                       "(pass --allow-filtering to let Cassandra scan (slow on big tables))\n")
    assert found(readings, where, "--allow-filtering") == expected
    # the server agrees: it refuses to prepare the same CQL without ALLOW FILTERING
    from cassandra import InvalidRequest

    plan = dbsh("-u", readings, "explain", "readings", json.dumps(where)).json_lines()[0]
    assert plan["cql"].endswith(" ALLOW FILTERING") and plan["plan"] == f"scans with ALLOW FILTERING: {why}"
    with pytest.raises(InvalidRequest, match="use ALLOW FILTERING"):
        cql[1].prepare(plan["cql"].removesuffix(" ALLOW FILTERING"))


CHECKED = [   # what CQL cannot say: dbsh checks it on the rows the server returns (MongoDB's answer)
    ({"ts": {"$ne": 1}, "sensor": "a"}, [("a", t) for t in range(10) if t != 1], "$ne"),
    ({"ts": {"$nin": [1, 2]}, "sensor": "a"}, [("a", t) for t in range(10) if t not in (1, 2)], "$nin"),
    ({"sensor": "b", "$or": [{"ts": 1}, {"v": 50}]}, [("b", 1), ("b", 5)], "$or"),
    ({"tag": {"$exists": True}}, ALL, "$exists"),
    ({"tag": {"$regex": "^O", "$options": "i"}}, [(s, t) for s, t in ALL if t % 2], "$regex"),
    ({"$or": [{"sensor": "a"}, {"v": 90}]}, [("a", t) for t in range(10)] + [("b", 9), ("c", 9)], "$or"),
    ({"$nor": [{"sensor": "a"}, {"ts": {"$gt": 0}}]}, [("b", 0), ("c", 0)], "$not/$nor"),
    ({"ts": {"$not": {"$gt": 1}}}, [(s, t) for s, t in ALL if t <= 1], "$not/$nor"),
    ({"v": None}, [], "= null"),
]


@pytest.mark.parametrize("where, expected, lacks", CHECKED, ids=[json.dumps(w) for w, _, _ in CHECKED])
def test_what_cql_cannot_say_dbsh_checks_on_each_row(readings, cql, where, expected, lacks):
    bounded = "sensor" in where   # the partition key selects the rows: dbsh checks those, no scan
    run = dbsh("-u", readings, "find", "readings", json.dumps(where))
    if not bounded:
        assert run.code == 2 and run.out == "" and run.err == (
            f"dbsh: error: this filter on {cql[2]}.readings reads the whole table: no key or index selects the rows, "
            f"and CQL cannot say {lacks}: dbsh checks it on each row "
            "(pass --allow-filtering to let dbsh scan it (slow on big tables))\n")
        run = dbsh("-u", readings, "find", "readings", json.dumps(where), "--allow-filtering")
    assert run.code == 0, run.err
    assert sorted((r["sensor"], r["ts"]) for r in run.json_lines()) == sorted(expected)
    read = 10 if bounded else 30
    assert run.err == f"dbsh: read {read} rows of {cql[2]}.readings (dbsh checks {lacks} on each row)\n"
    run = dbsh("-u", readings, "count", "readings", json.dumps(where), "--allow-filtering")
    assert run.json_lines() == [{"count": len(expected)}]
    plan = dbsh("-u", readings, "explain", "readings", json.dumps(where)).json_lines()[0]
    assert plan["plan"] == (f"served by the primary key or an index; dbsh checks {lacks} on each row" if bounded else
                            f"reads every row: no key or index selects the rows, and CQL cannot say {lacks}: dbsh "
                            "checks it on each row")


@pytest.mark.parametrize("where", [{"ts": "1"}, {"tag": 1}, {"v": 12.5}, {"ts": {"$gt": "5"}}, {"v": {"$lt": None}},
                                   {"sensor": {"$in": [1, 2]}}])
def test_values_no_row_can_match_are_no_rows_without_a_query(readings, where):
    """MongoDB compares values of one type: "1" is not 1, and no int is 12.5. No row, no scan, exit 0."""
    run = dbsh("-u", readings, "find", "readings", json.dumps(where))
    assert run.code == 0 and run.out == "" and run.err == "", run.err
    assert dbsh("-u", readings, "count", "readings", json.dumps(where)).json_lines() == [{"count": 0}]
    plan = dbsh("-u", readings, "explain", "readings", json.dumps(where)).json_lines()[0]
    assert plan["cql"] is None and plan["plan"].startswith("no row can match (") and plan["plan"].endswith(
        "): nothing is sent")


def test_sort_skip_limit_within_a_partition_and_across(readings, cql):
    run = dbsh("-u", readings, "find", "readings", '{"sensor": "a"}', "--sort", "-ts", "--skip", "2", "--limit", "3",
               "--fields", "ts,v")
    assert run.json_lines() == [{"ts": 7, "v": 70}, {"ts": 6, "v": 60}, {"ts": 5, "v": 50}] and run.err == ""
    # not the clustering order, within one partition: dbsh sorts what the partition key selects
    run = dbsh("-u", readings, "find", "readings", '{"sensor": "b"}', "--sort", "-tag,ts", "--limit", "3",
               "--fields", "ts,tag")
    assert run.json_lines() == [{"ts": 1, "tag": "odd"}, {"ts": 3, "tag": "odd"}, {"ts": 5, "tag": "odd"}]
    assert run.err == f"dbsh: read 10 rows of {cql[2]}.readings (dbsh sorts by tag, ts)\n"
    # across partitions: a scan, so --allow-filtering
    run = dbsh("-u", readings, "find", "readings", "--sort", "v")
    assert run.code == 2 and run.err.startswith(f"dbsh: error: this sort on {cql[2]}.readings reads the whole table: ")
    run = dbsh("-u", readings, "find", "readings", '{"ts": {"$gte": 8}}', "--sort", "-v,sensor", "--skip", "1",
               "--allow-filtering", "--fields", "sensor,ts")
    assert [(r["sensor"], r["ts"]) for r in run.json_lines()] == [("b", 9), ("c", 9), ("a", 8), ("b", 8), ("c", 8)]


def test_inc_of_a_column_that_is_not_a_counter_and_upsert(cql):
    """$inc reads the value and writes it plus the amount IF it is still what was read (a lightweight
    transaction); --upsert writes the row the filter names unless one with its key is there."""
    url, session, ks = cql
    session.execute(f"CREATE TABLE {ks}.scores (id int PRIMARY KEY, name text, n int, x double, d decimal, "
                    "m map<text, int>)")
    session.execute(f"INSERT INTO {ks}.scores (id, name, n, x, d) VALUES (1, 'a', 5, 1.5, 2.25)")
    session.execute(f"INSERT INTO {ks}.scores (id, name) VALUES (2, 'b')")
    run = dbsh("-u", url, "--yes", "update", "scores", "{}", '{"$inc": {"n": 2, "x": 0.25, "d": 1}}', "--all")
    assert run.code == 2   # (update takes no --all)
    run = dbsh("-u", url, "--yes", "update", "scores", '{"name": {"$in": ["a", "b"]}}',
               '{"$inc": {"n": 2, "x": 0.25, "d": 1}, "$set": {"m.k": 7}}', "--allow-filtering")
    assert run.code == 0 and run.json_lines()[0]["count"] == 2, run.err
    got = {r["id"]: r for r in rows(cql, "SELECT id, n, x, d, m FROM KS.scores")}
    assert (got[1]["n"], got[1]["x"], str(got[1]["d"]), got[1]["m"]) == (7, 1.75, "3.25", {"k": 7})
    assert (got[2]["n"], got[2]["x"], str(got[2]["d"])) == (2, 0.25, "1")   # a missing value counts as 0
    run = dbsh("-u", url, "update", "scores", '{"id": 1}', '{"$inc": {"name": 1}}')
    assert run.code == 2 and "cannot $inc 'name': it is a text column, not a number" in run.err
    # --upsert: the row the filter names, with the change applied
    run = dbsh("-u", url, "--yes", "update", "scores", '{"id": 3, "name": "c"}', '{"$inc": {"n": 4}}', "--upsert",
               "--allow-filtering")
    assert run.json_lines()[0] == {"action": "upserted", "collection": "scores", "count": 1, "matched": 0}
    assert rows(cql, "SELECT name, n FROM KS.scores WHERE id = 3") == [{"name": "c", "n": 4}]
    # a row with that key that the filter does not match is not overwritten (MongoDB: a duplicate key)
    run = dbsh("-u", url, "--yes", "update", "scores", '{"id": 2, "name": "zed"}', '{"$set": {"n": 0}}', "--upsert",
               "--allow-filtering")
    assert run.code == 1 and run.err.splitlines()[-1] == (
        "dbsh: error: --upsert on scores: the row id=2 exists but does not match the filter; "
        "dbsh does not overwrite it")
    assert rows(cql, "SELECT name, n FROM KS.scores WHERE id = 2") == [{"name": "b", "n": 2}]
    run = dbsh("-u", url, "update", "scores", '{"name": "c"}', '{"$set": {"n": 0}}', "--upsert", "--yes",
               "--allow-filtering")
    assert run.code == 2 and "--upsert on scores needs the whole primary key (id)" in run.err


# -- consistency levels (one node: ONE, QUORUM and ALL are one replica; TWO cannot be met) -----------
def test_consistency_reaches_the_server(readings, cql):
    for level in ("ONE", "quorum", "LOCAL_ONE", "ALL"):
        run = dbsh("-u", readings, "--consistency", level, "find", "readings", '{"sensor": "a", "ts": 1}')
        assert run.json_lines() == [{"sensor": "a", "ts": 1, "tag": "odd", "v": 10}], (level, run.err)
    run = dbsh("-u", readings, "--consistency", "TWO", "find", "readings", '{"sensor": "a"}')
    assert run.code == 1 and run.out == "" and run.err.splitlines() == [
        "dbsh: error: Error from server: code=1000 [Unavailable exception] message=\"Cannot achieve consistency "
        "level TWO\" info={'consistency': 'TWO', 'required_replicas': 2, 'alive_replicas': 1}"]
    run = dbsh("-u", readings, "--consistency", "TWO", "insert", "readings", '{"sensor": "z", "ts": 1}')
    assert run.code == 1 and "Cannot achieve consistency level TWO" in run.err
    assert "0 rows were written to readings" in run.err
    assert rows(cql, "SELECT ts FROM KS.readings WHERE sensor = 'z'") == []
    url = readings.split("?")[0] + "?consistency=THREE"
    run = dbsh("-u", url, "query", "SELECT count(*) AS n FROM readings")
    assert run.code == 1 and "Cannot achieve consistency level THREE" in run.err
    run = dbsh("-u", url, "--consistency", "ONE", "query", "SELECT count(*) AS n FROM readings")
    assert run.json_lines() == [{"n": 30}]   # the flag wins over the URL


# -- paging: more rows than a page ------------------------------------------------------------------
def test_paging_through_more_rows_than_a_page(cql, tmp_path, monkeypatch):
    import dbsh.drivers.cassandra.session as driver

    url, session, ks = cql
    session.execute(f"CREATE TABLE {ks}.big (id int PRIMARY KEY, v text)")
    n = 12_000
    data = tmp_path / "big.jsonl"
    data.write_text("".join(json.dumps({"id": i, "v": f"row {i}"}) + "\n" for i in range(n)))
    run = dbsh("-u", url, "insert", "big", "--file", str(data))
    assert run.json_lines() == [{"action": "inserted", "collection": "big", "count": n}], run.err
    assert session.execute(f"SELECT count(*) FROM {ks}.big").one()[0] == n
    monkeypatch.setattr(driver, "FETCH_SIZE", 250)   # 48 pages
    run = dbsh("-u", url, "find", "big")
    ids = [r["id"] for r in run.json_lines()]
    assert len(ids) == n and set(ids) == set(range(n))
    run = dbsh("-u", url, "query", "SELECT id, v FROM big")
    assert sorted(r["id"] for r in run.json_lines()) == list(range(n))
    assert {r["v"] for r in run.json_lines()} == {f"row {i}" for i in range(n)}
    run = dbsh("-u", url, "find", "big", "--limit", "1100", "--skip", "600")
    assert len(run.json_lines()) == 1100
    assert dbsh("-u", url, "count", "big").json_lines() == [{"count": n}]


# -- TTL --------------------------------------------------------------------------------------------
def test_ttl_applies_to_every_column_written(cql):
    url, session, ks = cql
    session.execute(f"CREATE TABLE {ks}.sessions (id text PRIMARY KEY, user text, hits int)")
    run = dbsh("-u", url, "insert", "sessions", '{"id": "s1", "user": "ann", "hits": 1}', "--ttl", "3600")
    assert run.code == 0, run.err
    assert dbsh("-u", url, "insert", "sessions", '{"id": "s2", "user": "bob", "hits": 2}').code == 0
    ttls = {r.id: (r.tu, r.th)
            for r in session.execute(f"SELECT id, TTL(user) AS tu, TTL(hits) AS th FROM {ks}.sessions")}
    assert 0 < ttls["s1"][0] <= 3600 and 0 < ttls["s1"][1] <= 3600
    assert ttls["s2"] == (None, None)
    run = dbsh("-u", url, "insert", "sessions", '{"id": "s3"}', "--ttl", "0")
    assert run.code == 2 and "--ttl" in run.err


# -- every CQL type dbsh maps, in and out ------------------------------------------------------------
TYPED_COLUMNS = ("id uuid PRIMARY KEY, tu timeuuid, dec decimal, vi varint, li list<int>, se set<text>, "
                 "ma map<text, int>, mi map<int, boolean>, bl blob, ts timestamp, da date, ip inet, ip6 inet, "
                 "bo boolean, db double, fl float, bi bigint, i int, si smallint, ti tinyint, tx text, "
                 "asc_ ascii, tm time, du duration, tup tuple<int, text>, fli frozen<list<bigint>>, "
                 "nested map<text, frozen<list<int>>>")
TYPED_DOC = {"id": "6f1c1a52-3a0e-4c53-9d7e-4d8c8e8f0a11", "tu": "d2177dd0-eaa2-11de-a572-001b779c76e3",
             "dec": "12345678901234567890.123456789", "vi": 123456789012345678901234567890,
             "li": [3, 1, 2], "se": ["b", "a"], "ma": {"x": 1, "y": 2}, "mi": {"1": True, "2": False},
             "bl": {"$binary": {"base64": "AAEC/w==", "subType": "00"}}, "ts": "2024-02-29T12:34:56.789Z",
             "da": "2024-02-29", "ip": "192.168.1.10", "ip6": "2001:db8::1", "bo": True, "db": 0.1, "fl": 1.5,
             "bi": 9007199254740993, "i": -5, "si": 32000, "ti": -128, "tx": "héllo \"q\" '; --",
             "asc_": "plain", "tm": "12:34:56.123456789", "du": "1h30m", "tup": [1, "one"], "fli": [1, 2],
             "nested": {"k": [1, 2]}}
# as dbsh prints them (json is compact, keys in the table's column order: key first, then by name)
TYPED_OUT = ('{"id":"6f1c1a52-3a0e-4c53-9d7e-4d8c8e8f0a11","asc_":"plain","bi":9007199254740993,'
             '"bl":{"$binary":{"base64":"AAEC/w==","subType":"00"}},"bo":true,"da":"2024-02-29","db":0.1,'
             '"dec":12345678901234567890.123456789,"du":"0mo0d5400000000000ns","fl":1.5,"fli":[1,2],"i":-5,'
             '"ip":"192.168.1.10","ip6":"2001:db8::1","li":[3,1,2],"ma":{"x":1,"y":2},"mi":{"1":true,"2":false},'
             '"nested":{"k":[1,2]},"se":["a","b"],"si":32000,"ti":-128,"tm":"12:34:56.123456789",'
             '"ts":"2024-02-29T12:34:56.789000+00:00","tu":"d2177dd0-eaa2-11de-a572-001b779c76e3",'
             '"tup":[1,"one"],"tx":"héllo \\"q\\" \'; --","vi":123456789012345678901234567890}')


def test_every_type_in_and_out_exactly(cql):
    import datetime as dt
    import decimal
    import ipaddress

    from cassandra.util import Duration, Time

    url, session, ks = cql
    for table in ("typed", "typed_copy", "typed_query"):
        session.execute(f"CREATE TABLE {ks}.{table} ({TYPED_COLUMNS})")
    run = dbsh("-u", url, "insert", "typed", json.dumps(TYPED_DOC))
    assert run.code == 0, run.err
    row = session.execute(f"SELECT * FROM {ks}.typed").one()._asdict()
    assert row == {
        "id": uuid.UUID(TYPED_DOC["id"]), "tu": uuid.UUID(TYPED_DOC["tu"]),
        "dec": decimal.Decimal("12345678901234567890.123456789"), "vi": 123456789012345678901234567890,
        "li": [3, 1, 2], "se": {"a", "b"}, "ma": {"x": 1, "y": 2}, "mi": {1: True, 2: False},
        "bl": b"\x00\x01\x02\xff", "ts": dt.datetime(2024, 2, 29, 12, 34, 56, 789000), "da": row["da"],
        "ip": "192.168.1.10", "ip6": "2001:db8::1", "bo": True, "db": 0.1, "fl": 1.5, "bi": 9007199254740993,
        "i": -5, "si": 32000, "ti": -128, "tx": TYPED_DOC["tx"], "asc_": "plain",
        "tm": Time("12:34:56.123456789"), "du": Duration(0, 0, 5400 * 10**9), "tup": (1, "one"), "fli": [1, 2],
        "nested": {"k": [1, 2]}}
    assert str(row["da"]) == "2024-02-29" and ipaddress.ip_address(row["ip6"]).version == 6

    run = dbsh("-u", url, "find", "typed", "--format", "json")
    assert run.out == f"[\n  {TYPED_OUT}\n]\n"
    # what dbsh prints, it reads back: the same row in another table
    run = dbsh("-u", url, "insert", "typed_copy", "-", input=dbsh("-u", url, "find", "typed").out)
    assert run.code == 0, run.err
    assert session.execute(f"SELECT * FROM {ks}.typed_copy").one()._asdict() == row
    # and as bound parameters of a prepared statement (query with :name markers)
    names = list(TYPED_DOC)
    text = f"INSERT INTO typed_query ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"
    run = dbsh("-u", url, "query", text, *[a for n in names for a in ("-p", f"{n}={json.dumps(TYPED_DOC[n])}")])
    assert run.code == 0, run.err
    assert session.execute(f"SELECT * FROM {ks}.typed_query").one()._asdict() == row


def test_bad_values_are_exit_2_naming_the_column(cql):
    url, session, ks = cql
    session.execute(f"CREATE TABLE {ks}.typed_bad ({TYPED_COLUMNS})")
    for column, value, why in [("i", "x", "is not a valid int"), ("id", "uuid()", "--generate-id"),
                               ("ip", "999.1.1.1", "is not a valid inet"), ("du", "1x", "is not a valid duration"),
                               ("li", {"a": 1}, "is not a valid list"), ("bo", 1, "is not a valid boolean")]:
        doc = {"id": str(uuid.uuid4()), column: value} if column != "id" else {"id": value}
        run = dbsh("-u", url, "insert", "typed_bad", json.dumps(doc))
        assert run.code == 2 and f"column {column!r}" in run.err and why in run.err, (column, run.err)
    assert session.execute(f"SELECT count(*) FROM {ks}.typed_bad").one()[0] == 0


# -- query with :name parameters ---------------------------------------------------------------------
def test_query_binds_named_parameters(readings, cql):
    run = dbsh("-u", readings, "query", "SELECT ts, v FROM readings WHERE sensor = :s AND ts >= :low AND ts < :high",
               "-p", "s=b", "-p", "low=7", "-p", "high=9")
    assert run.json_lines() == [{"ts": 7, "v": 70}, {"ts": 8, "v": 80}]
    # a value is data, never CQL; ':x' inside a string literal is not a marker
    run = dbsh("-u", readings, "query", "SELECT ts FROM readings WHERE sensor = :s", "-p", "s=a' OR ''='")
    assert run.code == 0 and run.json_lines() == []
    run = dbsh("-u", readings, "query", "INSERT INTO readings (sensor, ts, tag) VALUES (:s, :t, 'lit:eral')",
               "-p", 's="q"', "-p", "t=1")
    assert run.code == 0, run.err
    assert rows(cql, "SELECT tag FROM KS.readings WHERE sensor = 'q'") == [{"tag": "lit:eral"}]
    rows(cql, "DELETE FROM KS.readings WHERE sensor = 'q'")   # the other tests count readings' rows
    run = dbsh("-u", readings, "query", "SELECT ts FROM readings WHERE sensor = :s AND ts = :t", "-p", "s=a")
    assert run.code == 2 and "missing parameter(s) t" in run.err
    run = dbsh("-u", readings, "query", "SELECT ts FROM readings WHERE sensor = :s AND ts = :t", "-p", "s=a",
               "-p", "t=soon")
    assert run.code == 2 and "column 't' is int: 'soon' is not a valid int" in run.err
    run = dbsh("-u", readings, "query", "SELEC ts FROM readings")
    assert run.code == 1 and run.err.startswith("dbsh: error: Error from server: code=2000 [Syntax error in CQL query]")
    assert len(run.err.splitlines()) == 1
