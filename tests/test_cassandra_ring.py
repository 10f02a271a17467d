"""Consistency levels on a real three-node Apache Cassandra ring (tests/servers.py: CassandraRing, on
127.0.0.2-4 in the private network namespace of scripts/test), through dbsh, with a node down.

Replication factor 3: QUORUM needs two replicas, ALL needs three. Rows are checked with
cassandra-driver, at ALL, so every replica answers.
"""

import json

import pytest

from tests.dbshtest import dbsh
from tests.servers import cassandra_cluster

pytestmark = [pytest.mark.cassandra, pytest.mark.slow]


def native_rows(url, consistency="ALL"):
    from cassandra import ConsistencyLevel
    from cassandra.query import SimpleStatement

    with cassandra_cluster(url) as cluster:
        stmt = SimpleStatement("SELECT id, v FROM dbsh_test.ring",
                               consistency_level=ConsistencyLevel.name_to_value[consistency])
        return sorted((r.id, r.v) for r in cluster.connect().execute(stmt))


def test_quorum_survives_a_node_down_and_all_does_not(cassandra_ring):
    ring = cassandra_ring
    url = ring.url
    with cassandra_cluster(url) as cluster:
        session = cluster.connect()
        assert session.execute("SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = "
                               "'dbsh_test'").one().replication["replication_factor"] == "3"
        session.execute("CREATE TABLE dbsh_test.ring (id int PRIMARY KEY, v text)")
        assert len(cluster.metadata.all_hosts()) == 3

    run = dbsh("-u", url, "--consistency", "QUORUM", "insert", "ring",
               *[json.dumps({"id": i, "v": f"v{i}"}) for i in range(1, 21)])
    assert run.code == 0, run.err
    assert run.json_lines() == [{"action": "inserted", "collection": "ring", "count": 20}]
    assert native_rows(url) == [(i, f"v{i}") for i in range(1, 21)]

    ring.stop_node(2)   # 127.0.0.4: SIGTERM, it leaves the ring's view as down

    run = dbsh("-u", url, "--consistency", "QUORUM", "find", "ring", '{"id": {"$in": [1, 2, 3]}}')
    assert run.code == 0, run.err
    assert sorted(r["id"] for r in run.json_lines()) == [1, 2, 3]
    run = dbsh("-u", url, "--consistency", "QUORUM", "insert", "ring",
               *[json.dumps({"id": i, "v": f"v{i}"}) for i in range(21, 31)])
    assert run.code == 0, run.err
    run = dbsh("-u", url, "--consistency", "QUORUM", "update", "ring", '{"id": 1}', '{"$set": {"v": "changed"}}')
    assert run.code == 0, run.err
    assert dbsh("-u", url, "--consistency", "QUORUM", "count", "ring").json_lines() == [{"count": 30}]

    # ALL needs the node that is down: a query error (exit 1), one line, saying why
    run = dbsh("-u", url, "--consistency", "ALL", "find", "ring", '{"id": 1}')
    assert run.code == 1 and run.out == ""
    assert len(run.err.strip().splitlines()) == 1, run.err
    assert run.err.startswith("dbsh: error: ") and "Cannot achieve consistency level ALL" in run.err, run.err
    assert "dbsh-test-pw" not in run.err
    run = dbsh("-u", url, "--consistency", "ALL", "insert", "ring", '{"id": 99, "v": "never"}')
    assert run.code == 1 and len(run.err.strip().splitlines()) == 1, run.err
    assert "Cannot achieve consistency level ALL" in run.err and "0 rows were written to ring" in run.err

    ring.start_node(2)   # back with its data; it missed ids 21-30 and the update

    run = dbsh("-u", url, "--consistency", "ALL", "find", "ring")
    assert run.code == 0, run.err
    expected = [(i, "changed" if i == 1 else f"v{i}") for i in range(1, 31)]
    assert sorted((r["id"], r["v"]) for r in run.json_lines()) == expected
    assert native_rows(ring.node_url(2)) == expected
