"""Smoke tests: every server fixture really answers, checked with the database's own client."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests import servers


def test_postgres_answers_with_password(postgres_url):
    import psycopg

    parts = urlsplit(postgres_url)
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("select current_database(), current_user").fetchone() == ("dbsh_test", "postgres")
        conn.execute("create temp table t (n int)")
        conn.execute("insert into t values (1), (2)")
        assert conn.execute("select sum(n) from t").fetchone() == (3,)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host=parts.hostname, port=parts.port, user="postgres", password="wrong",
                        dbname="dbsh_test", connect_timeout=5)


def test_mariadb_answers_with_password(mariadb_url):
    import pymysql

    parts = urlsplit(mariadb_url)
    conn = pymysql.connect(host=parts.hostname, port=parts.port, user=parts.username, password=parts.password,
                           database=parts.path.lstrip("/"), autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("select database(), current_user(), @@character_set_server, version()")
            db, user, charset, version = cur.fetchone()
            assert (db, user, charset) == ("dbsh_test", "dbsh@127.0.0.1", "utf8mb4") and "MariaDB" in version
            cur.execute("create table t (n int)")
            cur.execute("insert into t values (%s), (%s)", (1, 2))
            cur.execute("select sum(n) from t")
            assert cur.fetchone() == (3,)
            cur.execute("drop table t")
    finally:
        conn.close()
    with pytest.raises(pymysql.err.OperationalError) as err:
        pymysql.connect(host=parts.hostname, port=parts.port, user=parts.username, password="wrong")
    assert err.value.args[0] == 1045  # access denied


def test_redis_answers(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url)
    assert client.ping()
    client.set("smoke", "1")
    assert client.get("smoke") == b"1"
    client.close()


def test_redis_with_password_refuses_without_it():
    import redis

    with servers.Redis(password="s3cret") as server:
        assert server.url.startswith("redis://:s3cret@127.0.0.1:")
        assert redis.Redis.from_url(server.url).ping()
        bare = server.url.replace(":s3cret@", "")
        with pytest.raises(redis.AuthenticationError):
            redis.Redis.from_url(bare).ping()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis.from_url(server.url.replace("s3cret", "wrong")).ping()


def test_redis_cluster_spreads_keys(redis_cluster_url):
    from redis.cluster import RedisCluster

    parts = urlsplit(redis_cluster_url)
    assert parse_qs(parts.query) == {"cluster": ["true"]}
    client = RedisCluster(host=parts.hostname, port=parts.port)
    try:
        assert len(client.get_primaries()) == 3
        assert client.cluster_info()["cluster_state"] == "ok"
        keys = [f"k{i}" for i in range(30)]
        for key in keys:
            client.set(key, key)
        assert [client.get(k) for k in keys] == [k.encode() for k in keys]
        assert len({client.get_node_from_key(k).port for k in keys}) == 3
    finally:
        client.close()


@pytest.mark.pouchdb
def test_pouchdb_answers_couchdb_api(couchdb_url):
    import json
    import urllib.request

    base = couchdb_url.replace("couchdb://", "http://", 1)

    def http(method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"null")

    assert http("GET", "/")[1]["version"]
    assert http("PUT", "/smoke")[0] == 201
    status, doc = http("POST", "/smoke", {"name": "Ann"})
    assert doc["ok"] is True
    assert http("GET", f"/smoke/{doc['id']}")[1]["name"] == "Ann"
    assert "smoke" in http("GET", "/_all_dbs")[1]
    assert http("DELETE", "/smoke")[0] == 200


@pytest.mark.secantusdb
def test_secantusdb_answers_mongo_wire(mongo_url):
    import pymongo

    with pymongo.MongoClient(mongo_url, serverSelectionTimeoutMS=5000) as client:
        assert client.admin.command("ping")["ok"] == 1
        db = client.get_default_database()
        assert db.name == "dbsh_test"
        db.smoke.insert_many([{"n": 1}, {"n": 2}])
        assert sorted(d["n"] for d in db.smoke.find({}, {"_id": 0})) == [1, 2]
        db.smoke.drop()


def test_neo4j_is_the_real_community_server_with_auth_and_routing(neo4j_url):
    import neo4j

    parts = urlsplit(neo4j_url)
    auth = (parts.username, parts.password)
    assert parts.scheme == "bolt" and parts.hostname == "127.0.0.1" and auth == ("neo4j", servers.PASSWORD)
    with neo4j.GraphDatabase.driver(f"neo4j://127.0.0.1:{parts.port}", auth=auth) as driver:
        driver.verify_connectivity()
        records, _, _ = driver.execute_query("CALL dbms.components() YIELD name, versions, edition "
                                             "RETURN name, versions[0] AS version, edition")
        [component] = [r.data() for r in records]
        assert component["name"] == "Neo4j Kernel" and component["edition"] == "community"
        assert component["version"].startswith("5.26.")
        # the routing table names the one server, at the address it was started on
        records, _, _ = driver.execute_query("CALL dbms.routing.getRoutingTable({}) YIELD servers "
                                             "UNWIND servers AS s RETURN s.role AS role, s.addresses AS a")
        assert {r["role"]: r["a"] for r in records} == {role: [f"127.0.0.1:{parts.port}"]
                                                        for role in ("WRITE", "READ", "ROUTE")}
        records, _, _ = driver.execute_query("CREATE (n:Smoke {i: $i}) RETURN n.i AS i", i=7)
        assert [r["i"] for r in records] == [7]
        driver.execute_query("MATCH (n:Smoke) DELETE n")
    for bad in (("neo4j", "wrong"), None):   # auth is on: a wrong password, or none, is refused
        with (neo4j.GraphDatabase.driver(f"bolt://127.0.0.1:{parts.port}", auth=bad) as driver,
              pytest.raises(neo4j.exceptions.AuthError)):
            driver.verify_connectivity()


def test_neo4j_without_its_jars_is_an_error_not_a_skip(monkeypatch, tmp_path):
    monkeypatch.setattr(servers, "NEO4J_DIR", tmp_path)
    server = servers.Neo4j()
    with pytest.raises(servers.ServerError, match=r"Neo4j jars not found .*run scripts/install-test-deps"):
        server.start()
    assert server.dir is None and not server.procs


def test_missing_binary_is_an_error_not_a_skip(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(servers.ServerError, match="redis-server not found; run scripts/install-test-deps"):
        servers.Redis().start()


def test_isolated_home(dbsh_env, tmp_path_factory):
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        assert dbsh_env[var] == os.environ[var]
        assert Path(dbsh_env[var]).is_dir() and str(tmp_path_factory.getbasetemp()) in dbsh_env[var]
    assert "DBSH_URL" not in dbsh_env and "DBSH_URL" not in os.environ
    from dbsh.config import config_path

    assert str(config_path()).startswith(dbsh_env["XDG_CONFIG_HOME"])


def test_sqlite_url(sqlite_url, tmp_path):
    assert sqlite_url == f"sqlite:///{tmp_path}/test.db"
