"""The Neo4j driver over Bolt, checked with the official neo4j client.

The server is a real Neo4j 5.26 Community with auth on (tests/servers.py, started once per session),
or the one DBSH_TEST_NEO4J_URL names.
"""

import contextlib
import csv
import json
import socket
import threading
import uuid
from urllib.parse import urlsplit

import pytest

from dbsh.drivers.neo4j.cypher import (
    CypherFilter,
    compile_find,
    compile_update,
    cypher_regex,
    plan_rows,
    quote_name,
    split_statements,
)
from dbsh.errors import UsageError
from dbsh.query import Filter, Update, parse_filter
from tests.dbshtest import closed_port, dbsh, dbsh_process, port_of, silent_port

pytestmark = pytest.mark.neo4j


@pytest.fixture(scope="module")
def graph(neo4j_url):
    """(url, native neo4j driver): one long-lived native connection for the checks."""
    import neo4j

    parts = urlsplit(neo4j_url)
    auth = (parts.username, parts.password or "") if parts.username else None
    driver = neo4j.GraphDatabase.driver(f"bolt://{parts.hostname}:{parts.port or 7687}", auth=auth)
    yield neo4j_url, driver
    driver.close()


@pytest.fixture
def cli(graph):
    def run(*args, **kw):
        return dbsh("-u", graph[0], *args, **kw)
    return run


def native(graph, text, **params):
    records, _, _ = graph[1].execute_query(text, params)
    return [r.data() for r in records]


@pytest.fixture
def label():
    return f"T{uuid.uuid4().hex[:8]}"


# -- the README flow -----------------------------------------------------------------------------
def test_readme_flow(graph, cli, label):
    run = cli("query", f"CREATE (john:{label} {{name: 'John Doe', age: 29}}) "
                       f"CREATE (jane:{label} {{name: 'Jane Doe', age: 32}}) CREATE (john)-[:FRIEND]->(jane)")
    assert run.code == 0, run.err
    assert run.json_lines() == [{"message": "nodes created: 2, relationships created: 1, properties set: 4, "
                                            "labels added: 1"}] or "nodes created: 2" in run.out
    run = cli("query", f"MATCH (p:{label})-[:FRIEND]->(f) RETURN p.name, f.name")
    assert run.json_lines() == [{"p.name": "John Doe", "f.name": "Jane Doe"}]
    run = cli("insert", label, '{"name": "Ann", "age": 34}')
    assert run.code == 0, run.err
    assert run.json_lines() == [{"action": "inserted", "collection": label, "count": 1}]
    assert native(graph, f"MATCH (n:{label} {{name: 'Ann'}}) RETURN n.age AS age") == [{"age": 34}]
    run = cli("find", label, '{"age": {"$gte": 30}}', "--sort", "-age")
    assert run.json_lines() == [{"name": "Ann", "age": 34}, {"name": "Jane Doe", "age": 32}]


def test_graph_values_are_lossless_in_json_and_readable_in_tables(graph, cli, label):
    native(graph, f"CREATE (:{label} {{name: 'a'}})-[:KNOWS {{since: 2020}}]->(:{label} {{name: 'b'}})")
    run = cli("-f", "json", "query", f"MATCH p=(a:{label})-[r:KNOWS]->(b) RETURN a, r, p")
    assert run.code == 0, run.err
    [row] = json.loads(run.out)
    assert row["a"]["labels"] == [label] and row["a"]["properties"] == {"name": "a"}
    assert row["a"]["element_id"]
    assert row["r"]["type"] == "KNOWS" and row["r"]["properties"] == {"since": 2020}
    assert row["r"]["start"] == row["a"]["element_id"]
    assert [n["properties"]["name"] for n in row["p"]["nodes"]] == ["a", "b"]
    assert row["p"]["relationships"][0]["element_id"] == row["r"]["element_id"]
    table = cli("-f", "table", "query", f"MATCH (a:{label} {{name: 'a'}}) RETURN a")
    assert '"name":"a"' in table.out and label in table.out and "(1 row)" in table.out
    # relationship and path properties and ends, in csv (one JSON cell each) and jsonl
    run = cli("-f", "csv", "query", f"MATCH (a:{label})-[r]->(b) RETURN type(r) AS t, r.since AS since, r")
    lines = run.out.splitlines()
    assert lines[0] == "t,since,r" and lines[1].startswith("KNOWS,2020,")
    assert json.loads(next(csv.reader([lines[1]]))[2])["properties"] == {"since": 2020}
    run = cli("query", f"MATCH p=(a:{label})-[:KNOWS]->(b) RETURN length(p) AS hops, [n IN nodes(p) | n.name] AS names")
    assert run.json_lines() == [{"hops": 1, "names": ["a", "b"]}]


def test_native_parameters_and_several_statements(graph, cli, label):
    run = cli("query", "RETURN $n AS n, $s AS s", "-p", "n=5", "-p", 's=a; `x` "q"')
    assert run.json_lines() == [{"n": 5, "s": 'a; `x` "q"'}]
    # each -p value is JSON when it is JSON: typed as such on the server
    run = cli("query", f"CREATE (n:{label} {{name: $name, n: $n, f: $f, ok: $ok, tags: $tags, s: $s, gone: $gone}}) "
                       "RETURN valueType(n.n) AS tn, valueType(n.f) AS tf, valueType(n.tags) AS tl",
              "-p", "name=Ann", "-p", "n=7", "-p", "f=1.5", "-p", "ok=true", "-p", 'tags=["a", "b"]',
              "-p", 's="5"', "-p", "gone=null")
    assert run.json_lines() == [{"tn": "INTEGER NOT NULL", "tf": "FLOAT NOT NULL",
                                 "tl": "LIST<STRING NOT NULL> NOT NULL"}]
    assert native(graph, f"MATCH (n:{label}) RETURN properties(n) AS p") == [
        {"p": {"name": "Ann", "n": 7, "f": 1.5, "ok": True, "tags": ["a", "b"], "s": "5"}}]
    run = cli("query", f"MATCH (n:{label}) WHERE n.name = $name AND $tag IN n.tags RETURN n.n AS n",
              "-p", "name=Ann", "-p", "tag=b")
    assert run.json_lines() == [{"n": 7}]
    native(graph, f"MATCH (n:{label}) DELETE n")
    run = cli("query", f"CREATE (:{label} {{v: ';'}}); // a comment; with semicolons\n"
                       f"MATCH (n:{label}) RETURN n.v AS v;")
    assert run.json_lines() == [{"v": ";"}]
    assert cli("query", "RETURN $missing AS m").code == 1


# -- uniform verbs -------------------------------------------------------------------------------
PEOPLE = [{"name": "Ann", "age": 34, "tags": ["a", "b"]}, {"name": "Bob", "age": 19},
          {"name": "Cy", "age": 45, "city": "Oslo"}, {"name": "Di"}]


@pytest.fixture
def people(graph, label):
    graph[1].execute_query(f"UNWIND $rows AS r CREATE (n:{label}) SET n = r", {"rows": PEOPLE})
    return label


@pytest.mark.parametrize("flt,names", [
    ({"age": {"$gt": 30}}, ["Ann", "Cy"]),
    ({"age": {"$lte": 34}}, ["Ann", "Bob"]),
    ({"age": {"$lt": 34, "$gte": 19}}, ["Bob"]),
    ({"name": {"$in": ["Bob", "Di", "Zed"]}}, ["Bob", "Di"]),
    ({"age": {"$nin": [19, 34]}}, ["Cy", "Di"]),            # a missing field matches $nin
    ({"age": {"$ne": 19}}, ["Ann", "Cy", "Di"]),            # ... and $ne
    ({"age": None}, ["Di"]),
    ({"city": {"$exists": True}}, ["Cy"]),
    ({"city": {"$exists": False}, "age": {"$exists": True}}, ["Ann", "Bob"]),
    ({"$or": [{"name": "Ann"}, {"age": {"$gt": 40}}]}, ["Ann", "Cy"]),
    ({"$nor": [{"age": {"$gt": 30}}]}, ["Bob", "Di"]),      # NOT keeps nodes without age
    ({"age": {"$not": {"$gte": 20}}}, ["Bob", "Di"]),
    ({"$and": [{"age": {"$gt": 1}}, {"name": {"$ne": "Ann"}}]}, ["Bob", "Cy"]),
])
def test_find_operators(cli, people, flt, names):
    run = cli("find", people, json.dumps(flt), "--sort", "name")
    assert run.code == 0, run.err
    assert [r["name"] for r in run.json_lines()] == names


def test_find_regex(graph, cli, people):
    run = cli("find", people, '{"name": {"$regex": "^a|y$", "$options": "i"}}', "--sort", "name")
    assert [r["name"] for r in run.json_lines()] == ["Ann", "Cy"]


def test_find_fields_sort_limit_skip_and_count(cli, people):
    run = cli("find", people, '{"age": {"$exists": true}}', "--fields", "name,age", "--sort", "-age", "--limit", "2",
              "--skip", "1")
    assert run.json_lines() == [{"name": "Ann", "age": 34}, {"name": "Bob", "age": 19}]
    assert cli("count", people, '{"age": {"$exists": true}}').json_lines() == [{"count": 3}]
    assert cli("-f", "table", "count", people).out.strip() == "4"
    # a list property round-trips
    assert cli("find", people, '{"name": "Ann"}').json_lines() == [PEOPLE[0]]


def test_update_set_unset_inc_one_and_upsert(graph, cli, people):
    run = cli("update", people, '{"age": {"$gt": 30}}', '{"$set": {"senior": true}, "$inc": {"age": 1}}')
    assert run.json_lines() == [{"action": "updated", "collection": people, "count": 2, "matched": 2}]
    assert native(graph, f"MATCH (n:{people}) WHERE n.senior RETURN n.name AS name, n.age AS age ORDER BY name") == [
        {"name": "Ann", "age": 35}, {"name": "Cy", "age": 46}]
    assert cli("update", people, '{"name": "Cy"}', '{"$unset": {"city": ""}}').code == 0
    assert native(graph, f"MATCH (n:{people} {{name: 'Cy'}}) RETURN n.city AS city") == [{"city": None}]
    run = cli("update", people, '{"senior": true}', '{"$set": {"flag": 1}}', "--one")
    assert run.json_lines()[0]["count"] == 1
    assert native(graph, f"MATCH (n:{people}) WHERE n.flag = 1 RETURN count(n) AS c") == [{"c": 1}]
    run = cli("update", people, '{"name": "Eve"}', '{"$set": {"age": 50}, "$inc": {"visits": 1}}', "--upsert")
    assert run.json_lines()[0]["action"] == "upserted"
    assert native(graph, f"MATCH (n:{people} {{name: 'Eve'}}) RETURN properties(n) AS p") == [
        {"p": {"name": "Eve", "age": 50, "visits": 1}}]
    run = cli("update", people, '{"name": "Nobody"}', '{"$set": {"age": 1}}')
    assert run.json_lines()[0]["count"] == 0
    assert native(graph, f"MATCH (n:{people} {{name: 'Nobody'}}) RETURN n") == []


def test_delete_detaches_and_is_guarded(graph, cli, people):
    native(graph, f"MATCH (a:{people} {{name: 'Ann'}}), (b:{people} {{name: 'Bob'}}) CREATE (a)-[:KNOWS]->(b)")
    run = cli("delete", people, "{}")
    assert run.code == 2 and "--all" in run.err
    run = cli("delete", people, '{"name": "Ann"}')
    assert run.json_lines() == [{"action": "deleted", "collection": people, "count": 1,
                                 "relationships deleted": 1}]
    assert cli("delete", people, '{"age": {"$exists": true}}', "--one").json_lines()[0]["count"] == 1
    assert native(graph, f"MATCH (n:{people}) RETURN count(n) AS c") == [{"c": 2}]
    assert cli("delete", people, "--all").json_lines()[0]["count"] == 2
    assert native(graph, f"MATCH (n:{people}) RETURN count(n) AS c") == [{"c": 0}]


def test_verbs_touch_only_nodes_with_the_label(graph, cli, label):
    other = f"O{label}"
    native(graph, f"UNWIND [1, 2, 3] AS i "
                  f"CREATE (:{label} {{i: i}}), (:{other} {{i: i}}), (:{label}:{other} {{i: 10 + i}})")
    assert cli("count", label).json_lines() == [{"count": 6}]
    assert cli("count", other, '{"i": {"$lt": 10}}').json_lines() == [{"count": 3}]
    assert [r["i"] for r in cli("find", label, '{"i": {"$gt": 1}}', "--sort", "i").json_lines()] == [2, 3, 11, 12, 13]
    run = cli("update", label, '{"i": {"$lte": 2}}', '{"$set": {"hit": true}}')
    assert run.json_lines()[0]["count"] == 2
    run = cli("delete", other, '{"i": {"$gt": 11}}')
    assert run.json_lines()[0]["count"] == 2
    assert native(graph, f"MATCH (n) WHERE n:{label} OR n:{other} "
                         "RETURN labels(n) AS l, n.i AS i, n.hit AS hit ORDER BY i, size(l)") == [
        {"l": [label], "i": 1, "hit": True}, {"l": [other], "i": 1, "hit": None},
        {"l": [label], "i": 2, "hit": True}, {"l": [other], "i": 2, "hit": None},
        {"l": [label], "i": 3, "hit": None}, {"l": [other], "i": 3, "hit": None},
        {"l": [label, other], "i": 11, "hit": None}]


def test_deleting_a_large_label_stays_within_the_servers_transaction_memory(graph, cli, label):
    """60,000 nodes: one DETACH DELETE transaction outgrows the test server's 32 MiB per transaction
    (db.memory.transaction.max; MemoryPoolOutOfMemoryError); the verb deletes in batches of its own
    transactions."""
    with graph[1].session() as s:
        s.run(f"UNWIND range(1, 60000) AS i CALL (i) {{ CREATE (:{label} {{i: i}}) }} "
              "IN TRANSACTIONS OF 10000 ROWS").consume()
    native(graph, f"MATCH (a:{label} {{i: 1}}), (b:{label} {{i: 2}}) CREATE (a)-[:NEXT]->(b)")
    run = cli("delete", label, '{"i": {"$gt": 100}}')
    assert run.code == 0, run.err
    assert run.json_lines() == [{"action": "deleted", "collection": label, "count": 59900}]
    run = cli("delete", label, "--all")
    assert run.json_lines() == [{"action": "deleted", "collection": label, "count": 100,
                                 "relationships deleted": 1}]
    assert native(graph, f"MATCH (n:{label}) RETURN count(n) AS c") == [{"c": 0}]


def test_bulk_insert_from_a_file_in_batches(graph, cli, label, tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"i": i, "even": i % 2 == 0}) + "\n" for i in range(2500)))
    run = cli("insert", label, "--file", str(path), "--batch", "1000")
    assert run.json_lines() == [{"action": "inserted", "collection": label, "count": 2500}]
    assert native(graph, f"MATCH (n:{label}) RETURN count(n) AS c, sum(n.i) AS s") == [{"c": 2500, "s": 3123750}]
    run = cli("find", label, '{"even": true, "i": {"$lt": 10}}', "--sort", "i", "--fields", "i")
    assert run.json_lines() == [{"i": i} for i in range(0, 10, 2)]


def test_large_batches(graph, cli, label):
    rows = "".join(json.dumps({"i": i, "s": "x" * 50}) + "\n" for i in range(5000))
    run = cli("insert", label, "-", "--batch", "5000", input=rows)
    assert run.json_lines()[0]["count"] == 5000
    assert native(graph, f"MATCH (n:{label}) RETURN count(n) AS c") == [{"c": 5000}]


def test_bad_documents_are_refused_before_anything_is_written(graph, cli, label):
    run = cli("insert", label, '{"a": 1}', '{"a": {"nested": true}}')
    assert run.code == 2 and "nested object" in run.err and len(run.err.strip().splitlines()) == 1
    assert native(graph, f"MATCH (n:{label}) RETURN count(n) AS c") == [{"c": 0}]
    assert cli("find", label, '{"a": {"$bogus": 1}}').code == 2
    run = cli("find", label, '{"a": {"b": 1}}')
    assert run.code == 2 and "JSON object" in run.err


# -- catalog -------------------------------------------------------------------------------------
def test_collections_and_describe(graph, cli, people):
    native(graph, f"MATCH (a:{people} {{name: 'Ann'}}), (b:{people} {{name: 'Bob'}}) CREATE (a)-[:LIKES]->(b)")
    native(graph, f"CREATE INDEX FOR (n:{people}) ON (n.name)")
    assert people in [r["name"] for r in cli("collections").json_lines()]
    rows = cli("describe", people).json_lines()
    props = {r["name"]: r["detail"] for r in rows if r["kind"] == "property"}
    assert props["name"] == "STRING"
    assert props["age"] == "INTEGER (in 3 of 4 sampled nodes)"
    assert props["tags"] == "LIST<STRING> (in 1 of 4 sampled nodes)"
    assert any(r["kind"] == "index" and "(name)" in r["detail"] for r in rows), rows
    rels = [r["detail"] for r in rows if r["kind"] == "relationship"]
    assert f"(:{people})-[:LIKES]->() x1" in rels and f"()-[:LIKES]->(:{people}) x1" in rels


def test_explain_and_profile_render_a_plan_tree(graph, cli, people):
    run = cli("-f", "json", "explain", people, '{"age": {"$gt": 20}}')
    plan = json.loads(run.out)
    assert [r["operator"] for r in plan] == ["ProduceResults", "└─ Filter", "   └─ NodeByLabelScan"]
    assert plan[1]["details"] == "n.age > $p0" and plan[2]["details"] == f"n:{people}"
    assert set(plan[0]) == {"operator", "details", "estimated_rows"}
    # with an index, the plan says so
    native(graph, f"CREATE INDEX FOR (n:{people}) ON (n.name)")
    native(graph, "CALL db.awaitIndexes(60)")
    plan = json.loads(cli("-f", "json", "explain", people, '{"name": "Ann"}').out)
    assert plan[1]["operator"] == "└─ NodeIndexSeek" and f"n:{people}(name)" in plan[1]["details"]
    # EXPLAIN plans and runs nothing; PROFILE runs it and counts rows and db hits per operator
    run = cli("-f", "json", "query", f"EXPLAIN CREATE (:{people} {{name: 'Nope'}})")
    assert run.code == 0 and json.loads(run.out)[-1]["operator"].endswith("Create")
    assert native(graph, f"MATCH (n:{people} {{name: 'Nope'}}) RETURN count(n) AS c") == [{"c": 0}]
    run = cli("-f", "json", "query", f"PROFILE MATCH (n:{people}) WHERE n.age > $a RETURN n.name", "-p", "a=20")
    plan = json.loads(run.out)
    assert [r["operator"] for r in plan] == ["ProduceResults", "└─ Projection", "   └─ Filter",
                                             "      └─ NodeByLabelScan"]
    assert [r["rows"] for r in plan] == [2, 2, 2, 4] and all(isinstance(r["db_hits"], int) for r in plan)
    table = cli("-f", "table", "query", f"PROFILE MATCH (n:{people}) RETURN n.name")
    assert table.out.splitlines()[0].split() == ["operator", "details", "estimated_rows", "rows", "db_hits"]
    assert "└─ NodeByLabelScan" in table.out


# -- transactions, schemes -----------------------------------------------------------------------
def test_transaction_commit_through_the_session(graph, label):
    from dbsh import drivers, target

    with drivers.connect(target.resolve(graph[0])) as session:
        assert session.capabilities.language == "cypher" and session.client is not None
        session.begin()
        session.insert(label, [{"x": 1}])
        session.commit()
    assert native(graph, f"MATCH (n:{label}) RETURN n.x AS x") == [{"x": 1}]


def test_transaction_rollback(graph, label):
    from dbsh import drivers, target

    with drivers.connect(target.resolve(graph[0])) as session:
        session.begin()
        session.insert(label, [{"x": 1}])
        session.rollback()
    assert native(graph, f"MATCH (n:{label}) RETURN count(n) AS c") == [{"c": 0}]


def test_neo4j_routing_scheme(graph, label):
    """neo4j:// asks the server for a routing table (one server here, advertised at 127.0.0.1:P) and
    sends writes and reads where it says."""
    parts = urlsplit(graph[0])
    url = graph[0].replace(parts.scheme + "://", "neo4j://", 1)
    assert dbsh("-u", url, "query", "RETURN 1 AS one").json_lines() == [{"one": 1}]
    assert dbsh("-u", url, "insert", label, '{"name": "Ann", "age": 34}', '{"name": "Bob"}').code == 0
    assert native(graph, f"MATCH (n:{label}) RETURN n.name AS name ORDER BY name") == [{"name": "Ann"},
                                                                                     {"name": "Bob"}]
    assert dbsh("-u", url, "find", label, '{"age": 34}').json_lines() == [{"name": "Ann", "age": 34}]
    assert dbsh("-u", url, "delete", label, "--all").json_lines()[0]["count"] == 2
    run = dbsh_process("-u", url, "connect")
    assert run.code == 0 and json.loads(run.out)["url"] == url.replace(f":{parts.password}@", ":***@")


TEMPORALS = {   # Cypher -> the ISO 8601 text json shows (which is what Neo4j's own toString() gives)
    "date('2024-05-01')": "2024-05-01",
    "datetime('2024-05-01T10:00:00.5+02:00')": "2024-05-01T10:00:00.5+02:00",
    "datetime('2024-05-01T10:00:00Z')": "2024-05-01T10:00:00Z",
    "datetime('2024-05-01T10:00:00[Europe/Stockholm]')": "2024-05-01T10:00:00+02:00[Europe/Stockholm]",
    "localdatetime('2024-05-01T10:00:00.000000001')": "2024-05-01T10:00:00.000000001",
    "time('10:00:00.25+01:00')": "10:00:00.25+01:00",
    "localtime('10:00')": "10:00:00",
    "duration('P1D')": "P1D",
    "duration('PT1.5S')": "PT1.5S",
    "duration({months: 14, days: 3, hours: 1})": "P1Y2M3DT1H",
}


def test_temporal_values_are_iso_8601(graph, cli):
    items = list(TEMPORALS.items())
    text = "RETURN " + ", ".join(f"{cypher} AS v{i}, toString({cypher}) AS s{i}" for i, (cypher, _) in enumerate(items))
    [row] = json.loads(cli("-f", "json", "query", text).out)
    for i, (cypher, iso) in enumerate(items):
        assert (row[f"v{i}"], row[f"s{i}"]) == (iso, iso), cypher
    # in lists, as node properties, and in a table cell
    run = cli("query", "RETURN [date('2024-05-01'), duration('P2D')] AS l, {d: duration('PT1M')} AS m")
    assert run.json_lines() == [{"l": ["2024-05-01", "P2D"], "m": {"d": "PT1M"}}]
    label = f"T{uuid.uuid4().hex[:8]}"
    native(graph, f"CREATE (:{label} {{day: date('2024-05-01'), took: duration('PT2H'), at: point({{x: 1, y: 2}})}})")
    assert cli("find", label).json_lines() == [{"day": "2024-05-01", "took": "PT2H",
                                                 "at": {"srid": 7203, "coordinates": [1.0, 2.0]}}]
    [row] = json.loads(cli("-f", "json", "query", f"MATCH (n:{label}) RETURN n").out)
    assert row["n"]["properties"]["took"] == "PT2H"
    table = cli("-f", "table", "query", "RETURN duration('P1D') AS p, datetime('2024-05-01T10:00:00Z') AS t")
    assert "P1D" in table.out and "2024-05-01T10:00:00Z" in table.out and "[" not in table.out


# -- errors --------------------------------------------------------------------------------------
def test_errors_are_one_line_with_the_right_exit_code(graph, cli):
    run = cli("query", "RETURN 1 +")
    assert run.code == 1 and run.err.startswith("dbsh: error: Invalid input") and run.out == ""
    assert run.err.endswith(" (Neo.ClientError.Statement.SyntaxError)\n") and len(run.err.splitlines()) == 1
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    run = dbsh("-u", f"bolt://someone:s3cret@127.0.0.1:{free}", "query", "RETURN 1")
    assert run.code == 3 and "cannot connect" in run.err
    assert "s3cret" not in run.out + run.err and "***" in run.err
    assert dbsh("-u", graph[0], "insert", "X", '{"a": 1}', "--ttl", "5").code == 2


def test_an_error_while_rows_stream_is_the_servers_message(cli):
    run = cli("query", "RETURN 1/0 AS x")
    assert (run.code, run.out) == (1, "")
    assert run.err == "dbsh: error: / by zero (Neo.ClientError.Statement.ArithmeticError)\n"
    # the rows before it are out already; the error follows them, on its own line
    run = cli("query", "UNWIND [5, 0] AS i RETURN 10 / i AS x")
    assert run.code == 1 and run.json_lines() == [{"x": 2}]
    assert run.err == "dbsh: error: / by zero (Neo.ClientError.Statement.ArithmeticError)\n"
    run = cli("query", "UNWIND [1, 'a'] AS v RETURN v - 1 AS w")
    assert run.code == 1 and run.json_lines() == [{"w": 0}] and len(run.err.splitlines()) == 1
    assert "ResultFailedError" not in run.err and run.err.rstrip().endswith("(Neo.ClientError.Statement.TypeError)")


def test_server_warnings_are_one_line_each_on_stderr(cli, label):
    run = cli("query", f"MATCH (n:{label}) RETURN n")
    assert (run.code, run.out) == (0, "")
    assert run.err.startswith("dbsh: warning: ") and run.err.count("\n") == 1
    assert f"The label `{label}` does not exist" in run.err and run.err.endswith(" (01N50)\n")
    run = cli("count", label, '{"nosuch": 1}')    # the verbs' own statements too: a typo shows
    assert run.json_lines() == [{"count": 0}] and run.err.count("\n") == 2 and "`nosuch`" in run.err


def test_a_missing_database_cannot_be_connected_to(graph, cli):
    run = dbsh("-u", f"{graph[0]}/nosuchdb", "count", "X")
    assert run.code == 3 and run.out == "" and len(run.err.splitlines()) == 1
    assert run.err.startswith("dbsh: error: cannot connect to ") and "nosuchdb" in run.err
    assert "dbsh-test-pw" not in run.err
    assert dbsh("-u", f"{graph[0]}/neo4j", "query", "RETURN 1 AS one").json_lines() == [{"one": 1}]


# -- connecting ----------------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["bolt", "neo4j"])
@pytest.mark.parametrize("where", ["nothing-answers", "redis-listens", "closed"])
def test_a_wrong_port_is_one_line_exit_3_within_the_connect_timeout(request, scheme, where):
    """--connect-timeout bounds connecting and the server's first reply (the Bolt handshake, the login):
    a port that accepts and never answers, one where Redis listens (it waits for a newline the Bolt
    handshake never sends), a closed one. A real process under a generous limit: a hang fails the test;
    nothing asserts on time."""
    with contextlib.ExitStack() as stack:
        if where == "nothing-answers":
            port = stack.enter_context(silent_port())
        elif where == "redis-listens":
            port = port_of(request.getfixturevalue("redis_url"))
        else:
            port = closed_port()
        run = dbsh_process("-u", f"{scheme}://neo4j:s3cret@127.0.0.1:{port}", "--connect-timeout", "2",
                           "query", "RETURN 1", timeout=90)
    why = "connection refused" if where == "closed" else "no answer within 2 s (is a Neo4j server listening there?)"
    assert (run.code, run.out, run.err) == (3, "", f"dbsh: error: cannot connect to {scheme}://neo4j:***@127.0.0.1:"
                                                   f"{port}: {why}\n")


def test_a_port_where_http_listens_is_named(couchdb_url):
    port = port_of(couchdb_url)
    run = dbsh_process("-u", f"bolt://127.0.0.1:{port}", "query", "RETURN 1", timeout=90)
    assert (run.code, run.out) == (3, "")
    assert run.err == (f"dbsh: error: cannot connect to bolt://127.0.0.1:{port}: the server there speaks HTTP, not "
                       "Bolt (Bolt's port is 7687 by default)\n")


def test_the_connect_timeout_does_not_bound_a_slow_reply(graph, label):
    """A statement that waits (here for a lock another transaction holds for 3 s) answers after more than
    --connect-timeout: the timeout bounds only connecting and the server's first reply."""
    native(graph, f"CREATE (:{label} {{k: 1, n: 1}})")
    with graph[1].session() as holder:
        tx = holder.begin_transaction()
        tx.run(f"MATCH (n:{label}) SET n.n = 2").consume()      # holds the node's write lock
        release = threading.Timer(3, tx.commit)
        release.start()
        try:
            run = dbsh("-u", graph[0], "--connect-timeout", "1", "update", label, '{"k": 1}', '{"$set": {"m": 1}}')
        finally:
            release.join()
    assert run.code == 0, run.err
    assert native(graph, f"MATCH (n:{label}) RETURN n.n AS n, n.m AS m") == [{"n": 2, "m": 1}]


# -- authentication ------------------------------------------------------------------------------
def with_password(url, password):
    parts = urlsplit(url)
    return url.replace(f"{parts.username}:{parts.password}@", f"{parts.username}:{password}@", 1)


def test_wrong_password_is_one_line_exit_3_and_never_printed(graph):
    parts = urlsplit(graph[0])
    bad = with_password(graph[0], "Wr0ng-s3cret")
    for url in (bad, bad.replace(f"{parts.scheme}://", "neo4j://", 1)):   # two tries: a third would lock neo4j out
        run = dbsh_process("-u", url, "query", "RETURN 1")
        scheme = urlsplit(url).scheme
        assert (run.code, run.out) == (3, "")
        assert run.err == (f"dbsh: error: cannot authenticate to {scheme}://{parts.username}:***@{parts.hostname}:"
                           f"{parts.port}: The client is unauthorized due to authentication failure.\n")
    # the right password from DBSH_PASSWORD, with the user in the URL (this also resets the failed count)
    run = dbsh("-u", f"bolt://{parts.username}@{parts.hostname}:{parts.port}", "query", "RETURN 1 AS one",
               env={"DBSH_PASSWORD": parts.password})
    assert run.json_lines() == [{"one": 1}] and parts.password not in run.err


def test_a_user_locked_out_after_wrong_passwords_cannot_authenticate_exit_3(graph):
    """Neo4j locks a user out for a while after 3 wrong passwords (dbms.security.auth_max_failed_attempts):
    even the right password is then refused, with Neo.ClientError.Security.AuthenticationRateLimit."""
    parts = urlsplit(graph[0])
    user, password = f"u{uuid.uuid4().hex[:8]}", "right-pw-123"
    graph[1].execute_query(f"CREATE USER {user} SET PASSWORD $pw CHANGE NOT REQUIRED", {"pw": password},
                           database_="system")
    try:
        base = f"bolt://{user}:{{}}@{parts.hostname}:{parts.port}"
        assert dbsh("-u", base.format(password), "query", "RETURN 1 AS one").json_lines() == [{"one": 1}]
        for _ in range(3):
            assert dbsh("-u", base.format("wrong-pw-1"), "query", "RETURN 1").code == 3
        run = dbsh("-u", base.format(password), "query", "RETURN 1")
        assert (run.code, run.out) == (3, "") and len(run.err.splitlines()) == 1
        assert run.err.startswith(f"dbsh: error: cannot authenticate to bolt://{user}:***@")
        assert "too many times in a row" in run.err and password not in run.err
    finally:
        graph[1].execute_query(f"DROP USER {user}", database_="system")


# -- injection -----------------------------------------------------------------------------------
HOSTILE = ["x`) DETACH DELETE (m", "a'b\"c; MATCH (m) DETACH DELETE m //", "we`ird`; RETURN 1"]
QUOTED_VALUE = "v'); MATCH (m) DETACH DELETE m; //"


def test_string_values_with_quotes_are_bound_not_pasted(graph, cli, label):
    sentinel = f"S{uuid.uuid4().hex[:8]}"
    native(graph, f"CREATE (:{sentinel})")
    values = [QUOTED_VALUE, "a\\b", "\\'", 'say "hi"\n', "\\u0041 \\n"]
    assert cli("insert", label, *[json.dumps({"v": v}) for v in values]).code == 0
    assert sorted(r["v"] for r in native(graph, f"MATCH (n:{label}) RETURN n.v AS v")) == sorted(values)
    assert cli("count", label, json.dumps({"v": QUOTED_VALUE})).json_lines() == [{"count": 1}]
    assert cli("find", label, json.dumps({"v": "a\\b"})).json_lines() == [{"v": "a\\b"}]
    assert cli("query", "RETURN $s AS s", "-p", "s=it's").json_lines() == [{"s": "it's"}]
    # an injection attempt through a parameter stays data
    evil = f"' CREATE (:{sentinel}) WITH 1 AS s RETURN s //"
    assert cli("query", "RETURN $s AS s", "-p", f"s={evil}").json_lines() == [{"s": evil}]
    run = cli("update", label, json.dumps({"v": QUOTED_VALUE}), json.dumps({"$set": {"w": evil}}))
    assert run.json_lines()[0]["count"] == 1
    assert native(graph, f"MATCH (n:{label}) WHERE n.w IS NOT NULL RETURN n.w AS w") == [{"w": evil}]
    assert native(graph, f"MATCH (n:{sentinel}) RETURN count(n) AS c") == [{"c": 1}]


def test_hostile_labels_and_properties_never_run_as_cypher(graph, cli, label):
    sentinel = f"S{uuid.uuid4().hex[:8]}"
    native(graph, f"CREATE (:{sentinel} {{keep: true}})")
    for name in HOSTILE:
        doc = json.dumps({name: QUOTED_VALUE})
        runs = [cli("insert", name, doc), cli("find", name, doc), cli("update", name, doc, json.dumps(
            {"$set": {name: 1}})), cli("delete", name, doc), cli("count", label, json.dumps({name: 1})),
            cli("find", label, "{}", "--sort", name, "--fields", name)]
        for run in runs:
            assert run.code == 0, (name, run.err)
        assert native(graph, f"MATCH (n:{sentinel}) RETURN n.keep AS keep") == [{"keep": True}]
    for name in HOSTILE:   # each name round-trips as a label and a property name
        cli("insert", name, json.dumps({name: "v"}))
        records = native(graph, f"MATCH (n:{quote_name(name)}) RETURN properties(n) AS p")
        assert {"p": {name: "v"}} in records


# -- the compiler (pure) -------------------------------------------------------------------------
def test_cypher_compiler_quotes_names_and_binds_values():
    text, params = compile_find("Per`son", Filter({"a`b": "x'y", "n": {"$in": [1, None]}}),
                                sort=[("a`b", -1)], limit=5, skip=2)
    assert text == ("MATCH (n:`Per``son`) WHERE (n.`a``b` = $p0 AND (n.`n` IN $p1 OR n.`n` IS NULL)) RETURN n "
                    "ORDER BY n.`a``b` IS NOT NULL DESC, n.`a``b` DESC SKIP $skip LIMIT $limit")
    assert params == {"p0": "x'y", "p1": [1], "skip": 2, "limit": 5}
    text, params = compile_update("L", Filter({}), Update({"$set": {"a": 1}, "$unset": {"b": 1}, "$inc": {"c": 2}}),
                                  one=True)
    assert text == ("MATCH (n:`L`) WITH n LIMIT 1 SET n.`a` = $set0, n.`c` = coalesce(n.`c`, 0) + $inc1 "
                    "REMOVE n.`b` RETURN count(n) AS matched")
    assert params == {"set0": 1, "inc1": 2}
    c = CypherFilter()
    assert c.compile(parse_filter({"a": {"$not": {"$gt": 1}}})) == "(NOT coalesce(n.`a` > $p0, false))"
    assert cypher_regex("^a", "i") == r"(?i)[\s\S]*(?:^a)[\s\S]*"
    for bad in ("", "a\x00b", 5):
        with pytest.raises(UsageError):
            quote_name(bad)


def test_cypher_statement_splitting():
    assert split_statements("RETURN ';' AS a; // x;\nRETURN `;` ; /* ; */ ;") == ["RETURN ';' AS a",
                                                                               "// x;\nRETURN `;`"]


def test_plan_rows_draw_a_tree():
    plan = {"operatorType": "ProduceResults@neo4j", "identifiers": ["n"], "args": {"EstimatedRows": 2.0},
            "children": [{"operatorType": "Filter", "args": {"Details": "n.age > $p0", "EstimatedRows": 1.5},
                          "children": [{"operatorType": "NodeByLabelScan", "args": {"Details": "n:L"},
                                        "children": []}]},
                         {"operatorType": "Argument", "args": {}, "children": []}]}
    rows = list(plan_rows(plan, profiled=False))
    assert [r["operator"] for r in rows] == ["ProduceResults", "├─ Filter", "│  └─ NodeByLabelScan", "└─ Argument"]
    assert rows[1]["details"] == "n.age > $p0" and rows[0]["estimated_rows"] == 2.0
