"""`dbsh copy SRC DST` between real servers, checked with each database's own client: counts, values,
types; --where, --map, --flatten; SIGTERM and SIGKILL mid-copy, then --resume without duplicates."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from dbsh.bulk.checkpoint import latest_state
from tests.dbshtest import dbsh, dbsh_on_terminal

ROWS = [{"id": i, "name": f"n{i}", "score": i * 1.5, "active": i % 3 == 0, "tags": {"k": i, "even": i % 2 == 0}}
        for i in range(1, 31)]


def fresh(prefix="t"):
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def _decode(value):
    """Redis hashes hold text; the driver JSON-encodes whatever is not a plain string."""
    text = value.decode() if isinstance(value, bytes) else value
    try:
        return json.loads(text)
    except ValueError:
        return text


class Backend:
    """One test server: where a collection lives, how to seed it with dbsh, how to read it natively."""

    def __init__(self, kind, url):
        self.kind, self.url = kind, url

    def location(self, collection):
        return f"{self.url.split('?')[0]}/{collection}" + (f"?{self.url.split('?')[1]}" if "?" in self.url else "")

    def seed(self, collection, rows):
        run = dbsh("-u", self.url, "insert", collection, *[json.dumps(r) for r in rows], "--create")
        assert run.code == 0, run.err

    def native_rows(self, collection) -> list[dict]:
        parts = urlsplit(self.url)
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.url.split(":///", 1)[1])
            conn.row_factory = sqlite3.Row
            try:
                return [dict(r) for r in conn.execute(f'select * from "{collection}"')]
            finally:
                conn.close()
        if self.kind == "postgres":
            import psycopg
            from psycopg.rows import dict_row

            with psycopg.connect(host=parts.hostname, port=parts.port, user=parts.username, password=parts.password,
                                 dbname=parts.path.lstrip("/"), row_factory=dict_row) as conn:
                return conn.execute(f'select * from "{collection}"').fetchall()
        if self.kind == "mariadb":
            import pymysql

            conn = pymysql.connect(host=parts.hostname, port=parts.port, user=parts.username,
                                   password=parts.password, database=parts.path.lstrip("/"),
                                   cursorclass=pymysql.cursors.DictCursor)
            try:
                with conn.cursor() as cur:
                    cur.execute(f"select * from `{collection}`")
                    return list(cur.fetchall())
            finally:
                conn.close()
        if self.kind == "mongo":
            import pymongo

            client = pymongo.MongoClient(self.url, serverSelectionTimeoutMS=5000)
            try:
                return list(client[parts.path.lstrip("/")][collection].find())
            finally:
                client.close()
        if self.kind == "redis":
            import redis

            client = redis.Redis.from_url(self.url)
            try:
                return [{k.decode(): _decode(v) for k, v in client.hgetall(key).items()}
                        for key in client.scan_iter(match=f"{collection}:*", _type="hash")]
            finally:
                client.close()
        if self.kind == "memcached":
            from tests.servers import memcached_keys, memcached_text

            address = (parts.hostname, parts.port)
            keys = [k for k in memcached_keys(address) if k.startswith(f"{collection}:".encode())]
            reply = memcached_text(address, b"get " + b" ".join(keys) + b"\r\n", until=b"END\r\n")
            return [json.loads(line) for line in reply.split(b"\r\n") if line.startswith(b"{")]
        if self.kind == "couchdb":
            with urllib.request.urlopen(f"http://{parts.netloc}/{collection}/_all_docs?include_docs=true") as r:
                return [row["doc"] for row in json.load(r)["rows"] if not row["id"].startswith("_design/")]
        if self.kind == "neo4j":
            import neo4j

            with neo4j.GraphDatabase.driver(f"bolt://{parts.hostname}:{parts.port}",
                                            auth=(parts.username, parts.password)) as driver:
                records, _, _ = driver.execute_query(f"MATCH (n:`{collection}`) RETURN properties(n) AS p")
                return [dict(r["p"]) for r in records]
        if self.kind == "cassandra":
            from tests.servers import cassandra_cluster

            cluster = cassandra_cluster(self.url)
            try:
                session = cluster.connect(parts.path.strip("/"))
                return [r._asdict() for r in session.execute(f'select * from "{collection}"')]
            finally:
                cluster.shutdown()
        raise AssertionError(self.kind)


NOSQL = ["mongo", "redis", "memcached", "couchdb", "neo4j"]
SQL = ["sqlite", "postgres", "mariadb"]
# every ordered pair of the SQL servers; each document/graph/key-value store to and from SQLite and PostgreSQL
PAIRS = [(a, b) for a in SQL for b in SQL if a != b] + \
        [p for n in NOSQL for s in ("sqlite", "postgres") for p in ((n, s), (s, n))] + \
        [("cassandra", "sqlite"), ("sqlite", "cassandra"), ("cassandra", "postgres"), ("postgres", "cassandra")]


def backend(request, kind) -> Backend:
    url = request.getfixturevalue("sqlite_url" if kind == "sqlite" else f"{kind}_url")
    return Backend(kind, url)


def normalized(row: dict) -> dict:
    """A destination row in plain terms: JSON text read back, 0/1 as booleans."""
    tags = row["tags"] if "tags" in row else {"k": row.get("tags_k"), "even": row.get("tags_even")}
    if isinstance(tags, str):
        tags = json.loads(tags)
    return {"id": int(row["id"]), "name": row["name"], "score": float(row["score"]), "active": bool(row["active"]),
            "tags": {"k": int(tags["k"]), "even": bool(tags["even"])}}


@pytest.mark.parametrize("src_kind, dst_kind", PAIRS, ids=[f"{a}-to-{b}" for a, b in PAIRS])
def test_round_trip_between_backends(request, src_kind, dst_kind):
    src, dst = backend(request, src_kind), backend(request, dst_kind)
    a, b = fresh(), fresh()
    seed = ROWS
    if src_kind == "neo4j":   # graph properties are scalars: the nested object is stored as JSON text
        seed = [{**r, "tags": json.dumps(r["tags"])} for r in ROWS]
    src.seed(a, seed)
    run = dbsh("copy", src.location(a), dst.location(b), "--create", "--batch", "7")
    assert run.code == 0, run.err
    assert run.json_lines() == [{"action": "copied", "collection": b, "count": len(ROWS)}]
    rows = dst.native_rows(b)
    assert sorted((normalized(r) for r in rows), key=lambda r: r["id"]) == ROWS
    sample = next(r for r in rows if int(r["id"]) == 7)
    assert isinstance(sample["score"], float) and sample["score"] == 10.5
    if dst_kind in ("postgres", "mongo", "neo4j", "couchdb"):
        # MariaDB's BOOL is TINYINT(1): its rows carry 0/1, and so do their copies
        expected = 0 if src_kind == "mariadb" else False
        assert sample["active"] == expected and type(sample["active"]) is type(expected)
        assert isinstance(sample["id"], int)
    if src_kind == "mongo" and dst_kind in SQL:
        # ObjectId -> its 24 hex digits as text
        assert isinstance(sample["_id"], str) and len(sample["_id"]) == 24
    if src_kind == "couchdb":
        assert "_rev" not in sample


def test_where_map_flatten_into_postgres(request, postgres_url, sqlite_url):
    src, dst = Backend("sqlite", sqlite_url), Backend("postgres", postgres_url)
    a, b = fresh(), fresh()
    src.seed(a, ROWS)
    run = dbsh("copy", src.location(a), dst.location(b), "--create", "--where", '{"active": true}',
               "--map", "name:title", "--map", "score:", "--flatten")
    assert run.code == 0, run.err
    assert run.json_lines()[0]["count"] == 10
    rows = sorted(dst.native_rows(b), key=lambda r: r["id"])
    assert [r["id"] for r in rows] == [3, 6, 9, 12, 15, 18, 21, 24, 27, 30]
    assert rows[0] == {"id": 3, "title": "n3", "active": True, "tags_k": 3, "tags_even": False}
    import psycopg

    parts = urlsplit(postgres_url)
    with psycopg.connect(host=parts.hostname, port=parts.port, user=parts.username, password=parts.password,
                         dbname=parts.path.lstrip("/")) as conn:
        types = dict(conn.execute("select column_name, data_type from information_schema.columns "
                                  "where table_name = %s", (b,)).fetchall())
    assert types == {"id": "bigint", "title": "text", "active": "boolean", "tags_k": "bigint",
                     "tags_even": "boolean"}


# -- Neo4j: dates and times keep their types ------------------------------------------------------
def neo4j_native_query(neo4j_url, text, **params):
    import neo4j

    parts = urlsplit(neo4j_url)
    with neo4j.GraphDatabase.driver(f"bolt://{parts.hostname}:{parts.port}",
                                    auth=(parts.username, parts.password)) as driver:
        records, _, _ = driver.execute_query(text, params)
    return [r.data() for r in records]


def test_postgres_dates_times_and_decimals_into_neo4j(postgres_url, neo4j_url):
    import psycopg

    table, label = fresh(), fresh("L")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"create table {table} (id int primary key, day date, at timestamptz, local timestamp, "
                     "price numeric(10,2), ratio numeric)")
        conn.execute(f"insert into {table} values (1, '2024-05-01', '2024-05-01 10:00:00+02', "
                     "'2024-05-01 10:00:00.25', 12.50, 0.1)")
    run = dbsh("copy", f"{postgres_url}/{table}", f"{neo4j_url}/{label}")
    assert run.code == 0, run.err
    [row] = neo4j_native_query(neo4j_url, f"MATCH (n:{label}) RETURN n.id AS id, "
                                          "valueType(n.day) AS day, toString(n.day) AS d, "
                                          "valueType(n.at) AS at, "
                                          "n.at.epochSeconds = datetime('2024-05-01T08:00:00Z').epochSeconds AS same, "
                                          "valueType(n.local) AS local, toString(n.local) AS l, "
                                          "n.price AS price, n.ratio AS ratio")
    assert row == {"id": 1, "day": "DATE NOT NULL", "d": "2024-05-01", "at": "ZONED DATETIME NOT NULL",
                   "same": True, "local": "LOCAL DATETIME NOT NULL", "l": "2024-05-01T10:00:00.25",
                   "price": 12.5, "ratio": 0.1}


def test_neo4j_temporal_values_into_postgres_and_neo4j(postgres_url, neo4j_url):
    import psycopg
    from psycopg.rows import dict_row

    label, table, label2 = fresh("L"), fresh(), fresh("L")
    neo4j_native_query(neo4j_url, f"CREATE (:{label} {{id: 1, day: date('2024-05-01'), "
                                  "at: datetime('2024-05-01T10:00:00+02:00'), took: duration('PT2H')})")
    run = dbsh("copy", f"{neo4j_url}/{label}", f"{postgres_url}/{table}", "--create")
    assert run.code == 0, run.err
    with psycopg.connect(postgres_url, row_factory=dict_row) as conn:
        [row] = conn.execute(f"select day, at, took from {table}").fetchall()
        types = {r["column_name"]: r["data_type"] for r in conn.execute(
            "select column_name, data_type from information_schema.columns where table_name = %s", (table,))}
    assert types["day"] == "date" and types["at"] == "timestamp with time zone"
    assert str(row["day"]) == "2024-05-01" and row["at"].isoformat().startswith("2024-05-01T08:00:00")
    assert row["took"] == "PT2H"   # a duration travels as its ISO 8601 text
    run = dbsh("copy", f"{neo4j_url}/{label}", f"{neo4j_url}/{label2}")
    assert run.code == 0, run.err
    assert neo4j_native_query(neo4j_url, f"MATCH (n:{label2}) RETURN valueType(n.day) AS day, "
                                         "valueType(n.at) AS at, toString(n.at) AS a") == [
        {"day": "DATE NOT NULL", "at": "ZONED DATETIME NOT NULL", "a": "2024-05-01T10:00:00+02:00"}]


@pytest.mark.parametrize("args, message", [
    (["sqlite:///x.db", "sqlite:///y.db/t"], "no SQLite file in 'sqlite:///x.db'"),
    (["postgresql://h/", "sqlite:///y.db/t"], "no collection in 'postgresql://h/'"),
    (["nope/t", "sqlite:///y.db/t"], "no saved connection named 'nope'"),
    (["sqlite:///{d}/a.db/t", "sqlite:///{d}/a.db/t"], "source and destination are the same collection"),
    (["sqlite:///{d}/a.db/t", "sqlite:///{d}/b.db/t", "--map", "a"], "bad --map 'a'"),
])
def test_bad_arguments_are_one_line_usage_errors(tmp_path, args, message):
    sqlite3.connect(tmp_path / "a.db").execute("create table t (id integer primary key)").connection.close()
    run = dbsh("copy", *[a.format(d=tmp_path) for a in args])
    assert run.code == 2
    assert run.err.startswith(f"dbsh: error: {message}") and run.err.count("\n") == 1


def test_missing_destination_needs_create(tmp_path):
    src = f"sqlite:///{tmp_path}/a.db"
    dbsh("-u", src, "insert", "t", '{"a": 1}', "--create")
    run = dbsh("copy", f"{src}/t", f"sqlite:///{tmp_path}/b.db/t")
    assert run.code == 2
    assert run.err == "dbsh: error: no table named 't' (pass --create to make it from the documents)\n"


def test_cassandra_types_into_postgres_and_a_missing_table_needs_create(cassandra_url, postgres_url):
    """uuid, set, map, list, timestamp (UTC), decimal, blob from Cassandra into PostgreSQL --create,
    read back with psycopg."""
    import datetime as dt
    import decimal

    import psycopg

    from tests.servers import cassandra_cluster

    a, b = fresh("ctypes"), fresh("ctypes")
    keyspace = urlsplit(cassandra_url).path.strip("/")
    row_id = uuid.uuid4()
    with cassandra_cluster(cassandra_url) as cluster:
        session = cluster.connect(keyspace)
        session.execute(f"CREATE TABLE {a} (id uuid PRIMARY KEY, tags set<text>, attrs map<text, int>, "
                        "seen list<timestamp>, at timestamp, price decimal, raw blob)")
        session.execute(f"INSERT INTO {a} (id, tags, attrs, seen, at, price, raw) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                        (row_id, {"b", "a"}, {"x": 1}, [dt.datetime(2024, 1, 2, 3, 4, 5)],
                         dt.datetime(2024, 2, 29, 23, 30), decimal.Decimal("19.99"), b"\x00\xff"))
    run = dbsh("copy", Backend("cassandra", cassandra_url).location(a), Backend("postgres", postgres_url).location(b))
    assert run.code == 2 and "no table named" in run.err and "--create" in run.err
    run = dbsh("copy", Backend("cassandra", cassandra_url).location(a), Backend("postgres", postgres_url).location(b),
               "--create")
    assert run.code == 0, run.err
    with psycopg.connect(postgres_url) as conn:
        conn.execute("set time zone 'America/New_York'")   # a timestamp must not be read as local time
        row = conn.execute(f'select id, tags, attrs, seen, at, price from "{b}"').fetchone()
    assert row == (str(row_id), ["a", "b"], {"x": 1}, ["2024-01-02T03:04:05+00:00"],
                   dt.datetime(2024, 2, 29, 23, 30, tzinfo=dt.UTC), decimal.Decimal("19.99"))


# -- interruption ----------------------------------------------------------------------------------
N = 30_000


def _big_source(tmp_path) -> str:
    path = tmp_path / "src.db"
    conn = sqlite3.connect(path)
    conn.execute("create table big (id integer primary key, v text)")
    conn.executemany("insert into big values (?, ?)", ((i, f"v{i}") for i in range(1, N + 1)))
    conn.commit()
    conn.close()
    return f"sqlite:///{path}/big"


def _start_copy(src, dst, env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dbsh", "copy", src, dst, "--create", "--batch", "100"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_progress(proc, data_home: Path) -> None:
    """Until the copy has saved a checkpoint with rows written (the copy is not finished yet)."""
    folder = data_home / "dbsh" / "checkpoints"
    while proc.poll() is None:
        for path in folder.glob("*.json"):
            try:
                state = latest_state(path.read_bytes())
            except FileNotFoundError:
                continue
            if state and state["written"] > 0:
                return
    pytest.fail(f"the copy finished before it could be interrupted: {proc.stderr.read()}")


def _pg_ids(url, table):
    return [r["id"] for r in Backend("postgres", url).native_rows(table)]


def test_sigkill_then_resume_has_no_missing_and_no_duplicate_rows(tmp_path, postgres_url, dbsh_env):
    src = _big_source(tmp_path)
    table = fresh("big")
    proc = _start_copy(src, f"{postgres_url}/{table}", dbsh_env)
    _wait_for_progress(proc, Path(dbsh_env["XDG_DATA_HOME"]))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = _pg_ids(postgres_url, table)
    assert 0 < len(partial) < N
    run = dbsh("copy", src, f"{postgres_url}/{table}", "--resume")
    assert run.code == 0, run.err
    ids = _pg_ids(postgres_url, table)
    assert len(ids) == N and sorted(ids) == list(range(1, N + 1))
    assert run.json_lines() == [{"action": "copied", "collection": table, "count": N}]
    left = list((Path(dbsh_env["XDG_DATA_HOME"]) / "dbsh" / "checkpoints").glob("*.json"))
    assert len(left) == 1 and latest_state(left[0].read_bytes())["done"] is True   # kept, marked finished


def test_sigterm_finishes_the_batch_and_reports_exactly_what_was_written(tmp_path, postgres_url, dbsh_env):
    src = _big_source(tmp_path)
    table = fresh("big")
    proc = _start_copy(src, f"{postgres_url}/{table}", dbsh_env)
    _wait_for_progress(proc, Path(dbsh_env["XDG_DATA_HOME"]))
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate()
    assert proc.returncode == 130, err
    written = len(_pg_ids(postgres_url, table))
    assert 0 < written < N and written % 100 == 0   # whole batches only
    assert err == (f"dbsh: error: stopped by SIGTERM: {written} rows written to {table} (the batch in flight was "
                   "finished) (run again with --resume to continue)\n")
    run = dbsh("copy", src, f"{postgres_url}/{table}", "--resume")
    assert run.code == 0, run.err
    assert sorted(_pg_ids(postgres_url, table)) == list(range(1, N + 1))


def test_progress_bar_on_a_terminal_and_nothing_when_piped(tmp_path, dbsh_env):
    src = f"sqlite:///{tmp_path}/a.db"
    assert dbsh("-u", src, "insert", "t", *[json.dumps({"id": i}) for i in range(1, 51)], "--create").code == 0
    run = dbsh_on_terminal("copy", f"{src}/t", f"sqlite:///{tmp_path}/b.db/t", "--create",
                           env={**dbsh_env, "COLUMNS": "120"})
    assert run.code == 0
    assert "t → t" in run.err and "50/50" in run.err and "rows/s" in run.err
    assert json.loads(run.out) == {"action": "copied", "collection": "t", "count": 50}
    run = dbsh("copy", f"{src}/t", f"sqlite:///{tmp_path}/c.db/t", "--create")
    assert (run.code, run.err) == (0, "")


def test_a_checkpoint_cut_short_falls_back_to_the_state_before(tmp_path):
    from dbsh.bulk.checkpoint import Checkpoint

    ck = Checkpoint(tmp_path / "c.json", "file:/x", "sqlite:///y/t")
    for position in (10, 20, 30):
        ck.position = position
        ck.save()
    ck.close()
    assert Checkpoint(ck.path, "", "").load() and latest_state(ck.path.read_bytes())["position"] == 30
    raw = bytearray(ck.path.read_bytes())
    raw[1 << 16:(1 << 16) + 20] = b"{\"version\": 1, \"po\x00"   # the last save (slot 1) torn mid-write
    ck.path.write_bytes(bytes(raw))
    again = Checkpoint(ck.path, "", "")
    assert again.load() and again.position == 20
    again.position = 40
    again.save()   # continues in the slot after the one it read
    again.close()
    assert latest_state(ck.path.read_bytes())["position"] == 40
