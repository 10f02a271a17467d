"""The Cassandra driver against a real Apache Cassandra (tests/servers.py starts 5.0 from the Maven
Central jars; DBSH_TEST_CASSANDRA_URL points elsewhere), checked with cassandra-driver.

The CQL compiler's text is also unit-tested without a server in test_cql_compiler.py; here every
filter operator runs against the server and the rows it returns are checked.
"""

import json
import socket
import uuid

import pytest

from tests.dbshtest import dbsh
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
