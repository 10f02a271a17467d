"""dbsh bench on real servers: the load phase's data checked with each native client, the operation
mix of workloads A-F, json fields, histogram files, --compare, open loop, and failures that are
counted and reported instead of crashing. Small record counts: this is about correctness, not speed."""

from __future__ import annotations

import json
import sqlite3
from urllib.parse import urlsplit

import pytest

from dbsh.bench.generators import fnvhash64
from tests import servers
from tests.dbshtest import dbsh

FIELDS = {f"field{i}" for i in range(10)}
JSON_FIELDS = ["target", "backend", "workload", "phase", "operation", "threads", "seconds", "count", "errors",
               "throughput", "min_us", "mean_us", "p50_us", "p95_us", "p99_us", "p99_9_us", "p99_99_us",
               "max_us", "error"]
# YCSB's proportions per workload (read, update, insert, scan, read-modify-write)
MIX = {
    "a": {"READ": 0.5, "UPDATE": 0.5},
    "b": {"READ": 0.95, "UPDATE": 0.05},
    "c": {"READ": 1.0},
    "d": {"READ": 0.95, "INSERT": 0.05},
    "e": {"SCAN": 0.95, "INSERT": 0.05},
    "f": {"READ": 0.5, "READ-MODIFY-WRITE": 0.5},
}


def bench(url: str, *args: str):
    run = dbsh("-u", url, "bench", "-f", "json", *args)
    rows = json.loads(run.out) if run.out.strip() else []
    return run, rows


def by_op(rows, phase: str) -> dict[str, dict]:
    return {r["operation"]: r for r in rows if r["phase"] == phase}


@pytest.fixture
def redis_db(redis_url):
    """Our own database number on the session's redis-server, empty."""
    import redis

    url = urlsplit(redis_url)._replace(path="/11").geturl()
    client = redis.Redis.from_url(url, decode_responses=True)
    client.flushdb()
    yield url, client
    client.flushdb()
    client.close()


# ------------------------------------------------------------------------------ the data is there
def test_load_writes_ycsb_records_sqlite(sqlite_url):
    run, rows = bench(sqlite_url, "--workload", "c", "--records", "40", "--load-only", "--seed", "1")
    assert run.code == 0, run.err
    load = by_op(rows, "load")
    assert load["INSERT"]["count"] == 40 and load["INSERT"]["errors"] == 0
    con = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    keys = {k for (k,) in con.execute("select ycsb_key from usertable")}
    assert keys == {f"user{fnvhash64(i)}" for i in range(40)}   # YCSB's hashed key names
    row = con.execute("select * from usertable limit 1").fetchone()
    assert len(row) == 11 and all(len(v) == 100 for v in row[1:])
    con.close()


@pytest.mark.postgres
def test_load_then_run_postgres(postgres_url):
    import psycopg

    table = "ycsb_pg"
    native = postgres_url
    with psycopg.connect(native, autocommit=True) as con:
        con.execute(f"drop table if exists {table}")
    run, _ = bench(postgres_url, "-w", "b", "--records", "100", "--load-only", "-t", "2", "-p", f"table={table}")
    assert run.code == 0, run.err
    run, rows = bench(postgres_url, "-w", "b", "--records", "100", "--operations", "300", "--run-only", "-t", "2",
                      "-p", f"table={table}", "--seed", "3")
    assert run.code == 0, run.err
    ops = by_op(rows, "run")
    assert ops["ALL"]["count"] == 300 and ops["ALL"]["errors"] == 0
    assert "load" not in {r["phase"] for r in rows}
    with psycopg.connect(native) as con:
        assert con.execute(f"select count(*), min(length(field3)) from {table}").fetchone() == (100, 100)


@pytest.mark.mariadb
def test_load_and_run_mariadb(mariadb_url):
    import pymysql

    parts = urlsplit(mariadb_url)
    con = pymysql.connect(host=parts.hostname, port=parts.port, user=parts.username, password=parts.password,
                          database=parts.path.strip("/"), autocommit=True)
    with con.cursor() as cur:
        cur.execute("drop table if exists ycsb_maria")
    run, rows = bench(mariadb_url, "-w", "e", "--records", "50", "--operations", "60", "-p", "table=ycsb_maria",
                      "-p", "maxscanlength=5", "--seed", "6")
    assert run.code == 0, run.err
    inserted = by_op(rows, "run")["INSERT"]["count"]
    assert by_op(rows, "run")["SCAN"]["count"] == 60 - inserted
    with con.cursor() as cur:
        cur.execute("select count(*) from ycsb_maria")
        assert cur.fetchone()[0] == 50 + inserted
    con.close()


def test_load_writes_redis_hashes(redis_db):
    url, r = redis_db
    run, rows = bench(url, "-w", "a", "--records", "50", "--load-only", "-t", "2", "--seed", "1")
    assert run.code == 0, run.err
    keys = set(r.scan_iter(match="usertable:user*", _type="hash"))
    assert keys == {f"usertable:user{fnvhash64(i)}" for i in range(50)}
    record = r.hgetall(f"usertable:user{fnvhash64(7)}")
    assert set(record) == FIELDS and all(len(v) == 100 for v in record.values())
    assert r.zcard("usertable:__ycsb_index__") == 50   # what scans walk


@pytest.mark.secantusdb
def test_load_and_run_mongo(mongo_url):
    import pymongo

    client = pymongo.MongoClient(mongo_url)
    coll = client.get_default_database()["ycsb_mongo"]
    coll.drop()
    run, rows = bench(mongo_url, "-w", "e", "--records", "60", "--operations", "40", "-p", "table=ycsb_mongo",
                      "-p", "maxscanlength=5", "--seed", "2")
    assert run.code == 0, run.err
    assert coll.count_documents({}) == 60 + by_op(rows, "run")["INSERT"]["count"]
    doc = coll.find_one({"_id": f"user{fnvhash64(0)}"})
    assert set(doc) == FIELDS | {"_id"}
    client.close()


@pytest.mark.pouchdb
def test_load_and_run_couchdb(couchdb_url):
    import httpx

    server = httpx.Client(base_url=couchdb_url.replace("couchdb://", "http://", 1), timeout=10)
    server.delete("/ycsb_couch")
    run, rows = bench(couchdb_url, "-w", "a", "--records", "30", "--operations", "40", "-p", "table=ycsb_couch",
                      "--seed", "4")
    assert run.code == 0, run.err
    assert by_op(rows, "run")["ALL"]["count"] == 40
    assert server.get("/ycsb_couch").json()["doc_count"] == 30
    assert set(server.get(f"/ycsb_couch/user{fnvhash64(5)}").json()) == FIELDS | {"_id", "_rev"}
    docs = [server.get(f"/ycsb_couch/user{fnvhash64(i)}").json() for i in range(30)]
    assert len([d for d in docs if not d["_rev"].startswith("1-")]) > 0   # updates wrote new revisions
    server.close()


@pytest.fixture
def neo4j_native(neo4j_url):
    import neo4j

    parts = urlsplit(neo4j_url)
    auth = (parts.username, parts.password or "") if parts.username else None
    driver = neo4j.GraphDatabase.driver(f"{parts.scheme}://{parts.hostname}:{parts.port}", auth=auth)
    yield driver
    driver.close()


def test_load_and_run_neo4j(neo4j_url, neo4j_native):
    run, rows = bench(neo4j_url, "-w", "b", "--records", "30", "--operations", "30",
                      "-p", "table=YcsbNode", "--clean", "--seed", "5")
    assert run.code == 0, run.err
    assert by_op(rows, "run")["ALL"]["count"] == 30
    with neo4j_native.session() as s:
        assert s.run("MATCH (n:YcsbNode) RETURN count(n) AS c").single()["c"] == 30
        node = s.run("MATCH (n:YcsbNode {ycsb_key: $k}) RETURN n", k=f"user{fnvhash64(3)}").single()["n"]
        assert set(node.keys()) == FIELDS | {"ycsb_key"}


def test_neo4j_adapter_statements(neo4j_url, neo4j_native):
    """The bench's Cypher (insert, read, update, scan, index, drop) through a dbsh Neo4j session; checked
    with the native driver."""
    from dbsh import drivers
    from dbsh.bench.backends import Missing, adapter_for
    from dbsh.bench.workload import Workload, load_properties
    from dbsh.target import resolve

    w = Workload.from_properties(load_properties("a", None, {"table": "YcsbAdapter", "fieldcount": "3"}))
    session = drivers.connect(resolve(neo4j_url))
    try:
        adapter = adapter_for(session, w)
        adapter.drop()
        adapter.prepare()
        for i in range(5):
            adapter.insert(f"user{i}", {"field0": f"a{i}", "field1": "b", "field2": "c"})
        adapter.update("user2", {"field1": "changed"})
        assert adapter.read("user3", None)["n"]["field0"] == "a3"
        assert adapter.scan("user1", 3, None) == 3
        assert adapter.count() == 5
        with pytest.raises(Missing):
            adapter.read("user9", None)
        adapter.prepare()   # again: the index exists, nothing to do
        adapter.close()
    finally:
        session.close()
    with neo4j_native.session() as s:
        rows = s.run("MATCH (n:YcsbAdapter) RETURN n.ycsb_key AS k, n.field1 AS f ORDER BY k").data()
        indexes = s.run("SHOW INDEXES YIELD labelsOrTypes, properties WHERE labelsOrTypes = ['YcsbAdapter'] "
                        "RETURN properties").data()
    assert rows == [{"k": f"user{i}", "f": "changed" if i == 2 else "b"} for i in range(5)]
    assert indexes == [{"properties": ["ycsb_key"]}]


def test_neo4j_adapter_drops_a_table_larger_than_one_batch(neo4j_url, neo4j_native):
    from dbsh import drivers
    from dbsh.bench.backends import adapter_for
    from dbsh.bench.workload import Workload, load_properties
    from dbsh.target import resolve

    with neo4j_native.session() as s:
        s.run("UNWIND range(1, 25000) AS i CALL (i) { CREATE (:YcsbDrop {ycsb_key: 'user' + i}) } "
              "IN TRANSACTIONS OF 10000 ROWS").consume()
        s.run("MATCH (a:YcsbDrop {ycsb_key: 'user1'}), (b:YcsbDrop {ycsb_key: 'user2'}) CREATE (a)-[:R]->(b)").consume()
    w = Workload.from_properties(load_properties("a", None, {"table": "YcsbDrop"}))
    session = drivers.connect(resolve(neo4j_url))
    try:
        adapter = adapter_for(session, w)
        adapter.drop()
        adapter.close()
    finally:
        session.close()
    with neo4j_native.session() as s:
        assert s.run("MATCH (n:YcsbDrop) RETURN count(n) AS c").single()["c"] == 0


def test_cassandra(cassandra_url):
    run, rows = bench(cassandra_url, "-w", "a", "--records", "50", "--operations", "50", "-p", "table=ycsb_cql",
                      "--clean")
    assert run.code == 0, run.err
    assert by_op(rows, "run")["ALL"]["count"] == 50


def test_load_and_run_cassandra(cassandra_url):
    """Workload E (scans along the token ring, inserts), two workers; the rows read with cassandra-driver."""
    keyspace = urlsplit(cassandra_url).path.strip("/")
    with servers.cassandra_cluster(cassandra_url) as cluster:
        session = cluster.connect(keyspace)
        session.execute("DROP TABLE IF EXISTS ycsb_cql_e")
        run, rows = bench(cassandra_url, "-w", "e", "--records", "100", "--operations", "200", "-t", "2",
                          "-p", "table=ycsb_cql_e", "-p", "maxscanlength=5", "--seed", "4")
        assert run.code == 0, run.err
        load, ops = by_op(rows, "load"), by_op(rows, "run")
        assert load["INSERT"]["count"] == 100 and load["INSERT"]["errors"] == 0
        assert ops["ALL"]["count"] == 200 and ops["ALL"]["errors"] == 0 and set(ops) == {"ALL", "SCAN", "INSERT"}
        keys = {r.y_id for r in session.execute("SELECT y_id FROM ycsb_cql_e")}
        assert len(keys) == 100 + ops["INSERT"]["count"]
        assert {f"user{fnvhash64(i)}" for i in range(100)} <= keys   # YCSB's hashed key names
        row = session.execute("SELECT * FROM ycsb_cql_e WHERE y_id = %s", [f"user{fnvhash64(0)}"]).one()._asdict()
        assert set(row) == FIELDS | {"y_id"} and all(len(row[f]) == 100 for f in FIELDS)
        session.execute("DROP TABLE ycsb_cql_e")


def test_cassandra_consistency_applies_to_every_operation(cassandra_url, redis_db):
    """One node: TWO cannot be met, so every operation fails (counted, exit 1); ONE works."""
    args = ["-w", "c", "--records", "20", "--operations", "20", "-t", "2", "-p", "table=ycsb_cql_cl"]
    run, rows = bench(cassandra_url, "--clean", *args)
    assert run.code == 0, run.err
    run = dbsh("-u", cassandra_url, "--consistency", "TWO", "bench", "-f", "json", "--run-only", *args)
    rows = json.loads(run.out)
    assert run.code == 1 and by_op(rows, "run")["READ"]["errors"] == 20 and by_op(rows, "run")["READ"]["count"] == 0
    assert ("READ: 20 failed, first: Error from server: code=1000 [Unavailable exception] message=\"Cannot achieve "
            "consistency level TWO\"") in run.err
    run = dbsh("-u", cassandra_url, "--consistency", "ONE", "bench", "-f", "json", "--run-only", *args)
    assert run.code == 0 and by_op(json.loads(run.out), "run")["READ"]["count"] == 20
    run = dbsh("-u", redis_db[0], "--consistency", "ONE", "bench", *args)
    assert run.code == 2 and "--consistency is not supported on Redis" in run.err


# ------------------------------------------------------------------------------ the operation mix
@pytest.mark.parametrize("workload", sorted(MIX))
def test_operation_mix_matches_the_workload(redis_db, workload):
    url, _ = redis_db
    n = 1000
    run, rows = bench(url, "-w", workload, "--records", "200", "--operations", str(n), "-t", "2", "--seed", "11",
                      "-p", "maxscanlength=5")
    assert run.code == 0, run.err
    ops = by_op(rows, "run")
    assert ops["ALL"]["count"] == n and ops["ALL"]["errors"] == 0
    assert set(ops) - {"ALL"} == set(MIX[workload])
    for name, share in MIX[workload].items():
        assert ops[name]["count"] / n == pytest.approx(share, abs=0.04), name


def test_workload_d_reads_only_inserted_keys(redis_db):
    """Latest: reads follow the inserts across workers and never pick a key not yet written."""
    url, r = redis_db
    run, rows = bench(url, "-w", "d", "--records", "100", "--operations", "600", "-t", "3", "--seed", "8")
    assert run.code == 0, run.err
    ops = by_op(rows, "run")
    assert ops["READ"]["errors"] == 0 and ops["INSERT"]["errors"] == 0
    assert r.zcard("usertable:__ycsb_index__") == 100 + ops["INSERT"]["count"]


# ------------------------------------------------------------------------------ output
def test_json_has_the_documented_fields(redis_db):
    url, _ = redis_db
    run, rows = bench(url, "-w", "a", "--records", "50", "--operations", "100")
    assert run.code == 0, run.err
    assert [list(r) for r in rows] == [JSON_FIELDS] * len(rows)
    assert [(r["phase"], r["operation"]) for r in rows] == [
        ("load", "INSERT"), ("load", "ALL"), ("run", "READ"), ("run", "UPDATE"), ("run", "ALL")]
    run_all = rows[-1]
    assert run_all["target"] == url and run_all["backend"] == "Redis" and run_all["workload"] == "a"
    assert run_all["threads"] == 1 and run_all["count"] == 100 and run_all["error"] is None
    assert run_all["min_us"] <= run_all["p50_us"] <= run_all["p95_us"] <= run_all["p99_us"] \
        <= run_all["p99_9_us"] <= run_all["p99_99_us"] <= run_all["max_us"]
    assert run_all["throughput"] > 0 and run_all["seconds"] > 0
    assert "run: 100 operations" in run.err


def test_table_output(redis_db):
    url, _ = redis_db
    run = dbsh("-u", url, "bench", "-f", "table", "-w", "c", "--records", "20", "--operations", "30",
               env={"COLUMNS": "160"})
    assert run.code == 0, run.err
    header = run.out.splitlines()[0].replace("┃", " ").split()
    assert header[:4] == ["phase", "operation", "count", "errors"] and "p99.99" in header


def test_histogram_files(redis_db, tmp_path):
    url, _ = redis_db
    for name in ("lat.png", "lat.html", "lat.hgrm"):
        run = dbsh("-u", url, "bench", "-w", "a", "--records", "30", "--operations", "60",
                   "--histogram", str(tmp_path / name), "--clean")
        assert run.code == 0, run.err
    assert (tmp_path / "lat.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "lat.html").read_text()
    assert "<svg" in page and "run READ" in page and "run UPDATE" in page
    hgrm = (tmp_path / "lat.run-read.hgrm").read_text()
    assert "Percentile" in hgrm and "#[Max" in hgrm
    assert (tmp_path / "lat.run-update.hgrm").exists()


def test_svg_and_html_histograms_need_no_matplotlib(redis_db, tmp_path, monkeypatch):
    """Without the [plot] extra: .svg and .html are written all the same; .png is refused before the
    benchmark runs, naming the extra."""
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)   # as if not installed
    url, client = redis_db
    for name in ("lat.svg", "lat.html"):
        run = dbsh("-u", url, "bench", "-w", "c", "--records", "20", "--operations", "30",
                   "--histogram", str(tmp_path / name), "--clean")
        assert run.code == 0, run.err
        assert f"dbsh: latency histogram written to {tmp_path / name}\n" in run.err
    assert (tmp_path / "lat.svg").read_text().startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert "<svg" in (tmp_path / "lat.html").read_text()
    client.flushdb()
    run = dbsh("-u", url, "bench", "-w", "c", "--records", "20", "--histogram", str(tmp_path / "lat.png"))
    assert (run.code, run.err) == (2, f"dbsh: error: --histogram {tmp_path / 'lat.png'}: a PNG needs matplotlib "
                                      "(pip install 'dbsh[plot]', or write .svg, .html or .hgrm, which need "
                                      "nothing)\n")
    assert client.dbsize() == 0 and not (tmp_path / "lat.png").exists()   # nothing ran


def test_loading_again_says_to_pass_clean_sqlite(sqlite_url):
    path = sqlite_url.split("///", 1)[1]
    args = ("-w", "a", "--records", "30", "--operations", "20", "--seed", "1")
    assert bench(sqlite_url, *args)[0].code == 0
    with sqlite3.connect(path) as conn:
        conn.execute("update usertable set field0 = 'mine' where rowid = 1")
    run, rows = bench(sqlite_url, *args)
    assert (run.code, rows) == (2, [])
    assert run.err == (f"dbsh: error: usertable on {sqlite_url} already holds 30 records from an earlier load, so "
                       "every INSERT of this one would fail (pass --clean to drop them and load afresh, or "
                       "--run-only to run the workload on them)\n")
    with sqlite3.connect(path) as conn:   # nothing ran: the earlier records are as they were
        assert conn.execute("select count(*), sum(field0 = 'mine') from usertable").fetchone() == (30, 1)
    run, rows = bench(sqlite_url, *args, "--run-only")
    assert run.code == 0 and by_op(rows, "run")["ALL"]["count"] == 20 and by_op(rows, "run")["ALL"]["errors"] == 0
    run, rows = bench(sqlite_url, *args, "--clean")
    assert run.code == 0 and by_op(rows, "load")["INSERT"]["errors"] == 0
    with sqlite3.connect(path) as conn:
        assert conn.execute("select count(*), sum(field0 = 'mine') from usertable").fetchone() == (30, 0)


def test_loading_again_says_to_pass_clean_redis(redis_db):
    url, client = redis_db
    args = ("-w", "c", "--records", "25", "--operations", "10", "-p", "table=again")
    assert bench(url, *args)[0].code == 0
    run, rows = bench(url, *args)
    assert (run.code, rows) == (2, [])
    assert run.err == (f"dbsh: error: again on {url} already holds 25 records from an earlier load, so every "
                       "INSERT of this one would fail (pass --clean to drop them and load afresh, or --run-only "
                       "to run the workload on them)\n")
    run, rows = bench(url, *args, "--clean")
    assert run.code == 0, run.err
    assert (by_op(rows, "load")["INSERT"]["count"], by_op(rows, "load")["INSERT"]["errors"]) == (25, 0)
    assert len(list(client.scan_iter("again:*", _type="hash"))) == 25


def test_compare_side_by_side(redis_db, sqlite_url):
    url, _ = redis_db
    run = dbsh("bench", "--compare", url, sqlite_url, "-w", "c", "--records", "20", "--operations", "40",
               "-f", "json")
    assert run.code == 0, run.err
    rows = json.loads(run.out)
    assert {(r["backend"], r["phase"], r["operation"]) for r in rows if r["operation"] == "ALL"} == {
        ("Redis", "load", "ALL"), ("Redis", "run", "ALL"), ("SQLite", "load", "ALL"), ("SQLite", "run", "ALL")}
    table = dbsh("bench", "--compare", url, sqlite_url, "-w", "c", "--records", "20", "--operations", "40",
                 "--run-only", "-f", "table")
    assert table.code == 0, table.err
    assert "Redis" in table.out and "SQLite" in table.out and "ops/s" in table.out


def test_pipeline(redis_db):
    url, r = redis_db
    run, rows = bench(url, "-w", "a", "--records", "100", "--operations", "500", "--pipeline", "16", "-t", "2")
    assert run.code == 0, run.err
    assert by_op(rows, "load")["INSERT"]["count"] == 100 and by_op(rows, "run")["ALL"]["count"] == 500
    assert r.zcard("usertable:__ycsb_index__") == 100


def test_open_loop_rate_and_duration(redis_db):
    url, _ = redis_db
    run, rows = bench(url, "-w", "c", "--records", "20", "--operations", "50", "--rate", "500", "-t", "2")
    assert run.code == 0, run.err
    assert by_op(rows, "run")["READ"]["count"] == 50
    assert "open loop at 500/s" in run.err
    run, rows = bench(url, "-w", "c", "--run-only", "--records", "20", "--duration", "300ms")
    assert run.code == 0, run.err
    assert by_op(rows, "run")["READ"]["count"] > 0


def test_ctrl_c_reports_what_ran(redis_db, dbsh_env):
    """Ctrl-C stops the workers, prints the partial report and exits 130."""
    import signal
    import subprocess
    import sys
    import time

    url, _ = redis_db
    proc = subprocess.Popen([sys.executable, "-m", "dbsh", "-u", url, "bench", "-w", "c", "--records", "20",
                             "--operations", "100000000", "-f", "json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dbsh_env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(3)   # not a timing assertion: whatever ran by then is what the report must show
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "(interrupted)" in err and "Traceback" not in err
    rows = json.loads(out)
    assert rows[-1]["operation"] == "ALL" and rows[-1]["count"] < 100000000


# ------------------------------------------------------------------------------ failures
def test_failing_operations_are_counted_not_fatal():
    """A real failure: redis-server out of memory refuses writes (OOM) and still answers reads."""
    import redis

    with servers.Redis() as server:
        url = server.url
        run, _ = bench(url, "-w", "a", "--records", "50", "--load-only")
        assert run.code == 0, run.err
        client = redis.Redis.from_url(url)
        client.config_set("maxmemory", 1)
        client.config_set("maxmemory-policy", "noeviction")
        run, rows = bench(url, "-w", "a", "--records", "50", "--operations", "200", "--run-only", "--seed", "1")
        client.close()
    assert run.code == 1
    ops = by_op(rows, "run")
    assert ops["UPDATE"]["errors"] > 50 and ops["UPDATE"]["count"] == 0
    assert "maxmemory" in ops["UPDATE"]["error"] and ops["READ"]["errors"] == 0 and ops["READ"]["count"] > 50
    assert ops["READ"]["count"] + ops["UPDATE"]["errors"] == 200
    assert "UPDATE:" in run.err and "failed, first:" in run.err and "Traceback" not in run.err


def test_unreachable_server():
    port = servers.free_port()
    run = dbsh("-u", f"redis://127.0.0.1:{port}/0", "bench", "-w", "a", "--records", "10")
    assert run.code == 3
    assert run.err.startswith("dbsh: error: cannot connect to") and len(run.err.strip().splitlines()) == 1


def test_compare_reports_an_unreachable_target_and_runs_the_others(redis_db):
    url, _ = redis_db
    dead = f"redis://127.0.0.1:{servers.free_port()}/0"
    run = dbsh("bench", "--compare", dead, url, "-w", "c", "--records", "10", "--operations", "20", "-f", "json")
    assert run.code == 3
    rows = json.loads(run.out)
    failed = [r for r in rows if r["target"] == dead]
    assert len(failed) == 1 and "cannot connect" in failed[0]["error"] and failed[0]["count"] == 0
    assert by_op([r for r in rows if r["target"] == url], "run")["ALL"]["count"] == 20


@pytest.mark.parametrize("args, message", [
    (["-w", "z"], "unknown workload"),
    (["--duration", "soon"], "bad duration"),
    (["--load-only", "--run-only"], "exclude each other"),
    (["--pipeline", "4"], "not supported on SQLite"),
    (["-w", "e", "--pipeline", "4"], "READ, UPDATE and INSERT only"),
    (["--histogram", "x.gif"], "unknown file type"),
    (["-p", "fieldcount"], "bad property"),
    (["extra-url"], "need --compare"),
])
def test_bad_input_is_exit_2(sqlite_url, args, message):
    run = dbsh("-u", sqlite_url, "bench", *args)
    assert run.code == 2, run.err
    assert message in run.err and len(run.err.strip().splitlines()) == 1
