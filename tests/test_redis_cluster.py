"""Redis driver against a real Redis Cluster: three redis-server masters on loopback, created with
``redis-cli --cluster create``. Uniform verbs and a pipelined file run across nodes; results are
checked with redis-py's RedisCluster and with each node directly, never with dbsh."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
import redis
from redis.cluster import RedisCluster

from tests.dbshtest import dbsh

pytestmark = pytest.mark.redis


@pytest.fixture
def rc(redis_cluster_url):
    client = RedisCluster.from_url(redis_cluster_url.replace("?cluster=true", ""))
    client.flushall(target_nodes=RedisCluster.PRIMARIES)
    yield client
    client.close()


@pytest.fixture
def url(redis_cluster_url, rc):
    return redis_cluster_url


def node_keys(rc) -> dict[str, set[bytes]]:
    """Keys per primary, read from each node directly."""
    keys = {}
    for node in rc.get_primaries():
        with redis.Redis(host=node.host, port=node.port) as direct:
            keys[node.name] = set(direct.keys("*"))
    return keys


def test_cluster_scheme_and_native_commands(url, rc):
    parts = urlsplit(url)
    scheme_url = f"redis+cluster://{parts.netloc}"
    run = dbsh("-u", scheme_url, "query", 'SET name "John Doe"')
    assert (run.code, run.out) == (0, '{"value":"OK"}\n')
    assert rc.get("name") == b"John Doe"
    assert dbsh("-u", url, "query", "HSET user:1000 name Ann age 30").code == 0
    run = dbsh("-u", url, "-f", "csv", "query", "HGETALL user:1000")
    assert run.out == "field,value\nname,Ann\nage,30\n"
    rc.zadd("z", {"a": 1})
    assert dbsh("-u", url, "query", "ZRANGE z 0 -1 WITHSCORES").json_lines() == [{"member": "a", "score": 1.0}]
    assert {"field": "cluster_state", "value": "ok"} in dbsh("-u", url, "query", "CLUSTER INFO").json_lines()
    [info] = json.loads(dbsh("-f", "json", "connect", url).out)
    assert info["backend"] == "Redis Cluster" and info["mode"] == "cluster"


def test_cluster_errors(url, rc):
    rc.set("name", "x")
    run = dbsh("-u", url, "query", "LPUSH name y")
    assert (run.code, run.err) == (1, "dbsh: error: WRONGTYPE Operation against a key holding the wrong kind "
                                      "of value\n")
    run = dbsh("-u", url, "query", "NOSUCHCOMMAND a")
    assert run.code == 1 and "unknown command 'NOSUCHCOMMAND'" in run.err
    run = dbsh("-u", url, "query", 'SET "open')
    assert run.code == 2


def test_cluster_uniform_verbs_across_nodes(url, rc):
    docs = [{"name": f"user{i}", "age": 10 + i} for i in range(30)]
    run = dbsh("-u", url, "insert", "users", *map(json.dumps, docs), "--ttl", "600")
    assert run.code == 0, run.err
    assert run.json_lines()[0]["count"] == 30
    spread = node_keys(rc)
    assert sum(1 for keys in spread.values() if any(k.startswith(b"users:") for k in keys)) == 3
    assert rc.hget("users:5", "age") == b"14" and 0 < rc.ttl("users:5") <= 600

    run = dbsh("-u", url, "find", "users", '{"age": {"$gte": 35}}', "--sort", "age")
    assert [d["age"] for d in run.json_lines()] == [35, 36, 37, 38, 39]
    assert run.err == "dbsh: scanned 30 keys of users:* (filtered client-side)\n"

    run = dbsh("-u", url, "update", "users", '{"age": {"$gte": 35}}', '{"$inc": {"age": 100}}')
    assert run.json_lines()[0]["count"] == 5
    assert sorted(int(rc.hget(f"users:{i}", "age")) for i in range(26, 31)) == [135, 136, 137, 138, 139]

    run = dbsh("-u", url, "delete", "users", '{"age": {"$lt": 20}}')
    assert run.json_lines()[0]["count"] == 10
    remaining = [k for keys in node_keys(rc).values() for k in keys if k.startswith(b"users:") and k[6:].isdigit()]
    assert len(remaining) == 20
    assert dbsh("-u", url, "collections").json_lines() == [{"name": "users"}]


def test_cluster_pipelined_file(url, rc, tmp_path):
    lines = [f"SET key:{i} {i}" for i in range(1, 1201)]
    lines[9] = "INCR key:1 extra"  # line 10: wrong number of arguments
    lines[1099] = "NOSUCHCOMMAND"  # line 1100, second chunk
    path = tmp_path / "redis_cluster_commands.txt"
    path.write_text("\n".join(lines) + "\n")
    run = dbsh("-u", url, "query", "-", input=path.read_text())
    assert run.code == 1
    assert run.err.splitlines() == [
        "dbsh: line 10: wrong number of arguments for 'incr' command",
        "dbsh: line 1100: unknown command 'NOSUCHCOMMAND', with args beginning with:",
        "dbsh: error: 2 of 1200 commands failed (lines 10, 1100); 1198 replies",
    ]
    assert rc.get("key:1200") == b"1200" and not rc.exists("key:10")
    assert sum(len([k for k in keys if k.startswith(b"key:")]) for keys in node_keys(rc).values()) == 1198


def test_cluster_subscribe(url, rc):
    import subprocess
    import sys
    import threading

    proc = subprocess.Popen([sys.executable, "-m", "dbsh", "-u", url, "query", "SUBSCRIBE news", "--count", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pause = threading.Event()

    def subscribed() -> bool:
        counts = rc.pubsub_numsub("news", target_nodes=RedisCluster.ALL_NODES)
        return any(n for _, n in counts) or proc.poll() is not None

    while not subscribed():
        pause.wait(0.02)
    rc.publish("news", "hello")   # classic pub/sub messages reach every node of the cluster
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert json.loads(out) == {"type": "message", "pattern": None, "channel": "news", "data": "hello"}


def test_cluster_insert_groups_keys_by_slot(url, rc):
    """One script per hash slot: keys sharing a slot ({tag}) go together; an existing key and an id
    repeated in the batch are left unchanged and named; a generated id that hits one goes round again."""
    rc.hset("users:{t}2", mapping={"id": "{t}2", "name": "Old"})
    rc.hset("users:1", mapping={"id": "1", "name": "Old"})
    docs = [{"id": f"{{t}}{i}", "n": i} for i in range(1, 6)] + [{"id": "{t}4", "n": "again"}]
    docs += [{"name": "gen"}] + [{"id": i, "n": i} for i in range(100, 130)]
    run = dbsh("-u", url, "insert", "users", *map(json.dumps, docs), "--ttl", "600")
    assert run.code == 1
    assert run.err == ("dbsh: error: inserted 35 documents into users; 2 already existed and were left "
                       "unchanged: users:{t}2, users:{t}4\n")
    assert rc.hgetall("users:{t}2") == {b"id": b"{t}2", b"name": b"Old"} and rc.ttl("users:{t}2") == -1
    assert rc.hgetall("users:{t}4") == {b"id": b"{t}4", b"n": b"4"} and 0 < rc.ttl("users:{t}4") <= 600
    assert rc.hgetall("users:1") == {b"id": b"1", b"name": b"Old"}
    assert rc.hgetall("users:2") == {b"id": b"2", b"name": b"gen"} and rc.get("users:__seq__") == b"2"
    assert all(rc.hget(f"users:{i}", "n") == str(i).encode() for i in range(100, 130))
    assert len([k for keys in node_keys(rc).values() for k in keys if k.startswith(b"users:")]) == 2 + 35 + 1
