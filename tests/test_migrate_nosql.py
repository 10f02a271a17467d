"""`dbsh migrate` on NoSQL targets: one runner, records and a leased lock in the target itself.

Runs against SecantusDB (MongoDB stand-in), Redis, pouchdb-server (CouchDB stand-in), Neo4j 5.26
Community and Apache Cassandra 5.0. The data a migration writes and the version records are read
back with pymongo, redis-py, HTTP, the neo4j driver and cassandra-driver.
"""

import json
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.dbshtest import dbsh, dbsh_process

REV1 = '''\
"""seed users"""
revision = "r1"
down_revision = None


def upgrade(session):
    session.insert("mig_users", [{"id": 1, "name": "Ann", "n": 1}], create=True)


def downgrade(session):
    session.delete("mig_users", {"name": "Ann"})
'''

# not idempotent on purpose: n == 2 proves it ran exactly once
REV2 = '''\
"""count a visit"""
revision = "r2"
down_revision = "r1"


def upgrade(session):
    session.update("mig_users", {"name": "Ann"}, {"$inc": {"n": 1}})


def downgrade(session):
    session.update("mig_users", {"name": "Ann"}, {"$inc": {"n": -1}})
'''

# Cassandra increments counter columns only, and a counter table takes no INSERT (r1's): there r2 sets
# n instead. n == 2 then does not prove that r2 ran once; the one report per revision does.
CHANGE = {"$inc": {"n": 1}}
CASSANDRA_CHANGE = {"$set": {"n": 2}}
REV2_CASSANDRA = REV2.replace('{"$inc": {"n": 1}}', '{"$set": {"n": 2}}').replace('{"$inc": {"n": -1}}',
                                                                                  '{"$set": {"n": 1}}')


def rev2(kind: str) -> str:
    return REV2_CASSANDRA if kind == "cassandra" else REV2


def change(kind: str) -> dict:
    return CASSANDRA_CHANGE if kind == "cassandra" else CHANGE


FAILING = '''\
"""breaks"""
revision = "r3"
down_revision = "r2"


def upgrade(session):
    raise RuntimeError("boom in r3")


def downgrade(session):
    pass
'''

KINDS = ["mongo", "redis", "couchdb", "neo4j", "cassandra"]


# -- native clients ------------------------------------------------------------------------------
class Native:
    """Read (and clean) the test data and the migration records with each database's own client."""

    def __init__(self, kind, url):
        self.kind, self.url = kind, url

    def reset(self):
        k = self.kind
        if k == "redis":
            r = self._redis()
            for key in r.scan_iter("mig_users:*"):
                r.delete(key)
            r.delete("{dbsh:migrate}:versions", "{dbsh:migrate}:lock")
        elif k == "couchdb":
            for db in ("mig_users", "dbsh_migrations"):
                self._http("DELETE", db)
        elif k == "neo4j":
            self._cypher("MATCH (n) WHERE n:mig_users OR n:DbshMigration OR n:DbshMigrateLock DELETE n")
        elif k == "cassandra":
            s = self._cassandra()
            for t in ("mig_users", "dbsh_migrations", "dbsh_migrate_lock"):
                s.execute(f"DROP TABLE IF EXISTS {t}")
            s.execute("CREATE TABLE mig_users (name text PRIMARY KEY, id int, n int)")   # r2 finds Ann by key

    def users(self):
        """[(name, n)] of the documents the migrations wrote."""
        k = self.kind
        if k == "mongo":
            return [(d["name"], d["n"]) for d in self._mongo().mig_users.find({})]
        if k == "redis":
            r = self._redis()
            return [(h[b"name"].decode(), json.loads(h[b"n"])) for h in
                    (r.hgetall(key) for key in r.scan_iter("mig_users:*")) if b"name" in h]
        if k == "couchdb":
            status, body = self._http("GET", "mig_users/_all_docs?include_docs=true")
            if status == 404:
                return []
            return [(row["doc"]["name"], row["doc"]["n"]) for row in body["rows"]]
        if k == "neo4j":
            return [(r["name"], r["n"]) for r in self._cypher("MATCH (u:mig_users) RETURN u.name AS name, u.n AS n")]
        return [(r.name, r.n) for r in self._cassandra().execute("SELECT name, n FROM mig_users")]

    def records(self):
        """{revision: state} as stored in the target."""
        k = self.kind
        if k == "mongo":
            return {d["_id"]: d["state"] for d in self._mongo().dbsh_migrations.find({})}
        if k == "redis":
            return {f.decode(): json.loads(v)["state"] for f, v in
                    self._redis().hgetall("{dbsh:migrate}:versions").items()}
        if k == "couchdb":
            status, body = self._http("GET", "dbsh_migrations/_all_docs?include_docs=true")
            return {} if status == 404 else {r["doc"]["revision"]: r["doc"]["state"] for r in body["rows"]
                                             if r["id"].startswith("revision:")}
        if k == "neo4j":
            return {r["rev"]: r["state"] for r in
                    self._cypher("MATCH (v:DbshMigration) RETURN v.revision AS rev, v.state AS state")}
        from cassandra import InvalidRequest

        try:
            rows = self._cassandra().execute("SELECT revision, record FROM dbsh_migrations")
        except InvalidRequest as e:   # not made yet (a dry run or bad input creates nothing)
            assert "does not exist" in str(e)
            return {}
        return {r.revision: json.loads(r.record)["state"] for r in rows}

    def _mongo(self):
        import pymongo

        if not hasattr(self, "_m"):
            self._m = pymongo.MongoClient(self.url)
        return self._m.get_default_database()

    def _redis(self):
        import redis

        return redis.Redis.from_url(self.url)

    def _http(self, method, path):
        parts = urlsplit(self.url)
        req = urllib.request.Request(f"http://{parts.hostname}:{parts.port}/{path}", method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, None

    def _cypher(self, text):
        import neo4j

        parts = urlsplit(self.url)
        with neo4j.GraphDatabase.driver(f"bolt://{parts.hostname}:{parts.port}",
                                        auth=(parts.username, parts.password)) as driver:
            records, _, _ = driver.execute_query(text)
            return [r.data() for r in records]

    def _cassandra(self):
        from tests.servers import cassandra_cluster

        if not hasattr(self, "_c"):
            self._c = cassandra_cluster(self.url).connect(urlsplit(self.url).path.strip("/"))
        return self._c


@pytest.fixture(params=KINDS)
def target(request):
    kind = request.param
    url = request.getfixturevalue(f"{kind}_url")
    if kind == "mongo":   # a fresh database per test
        url = urlunsplit(urlsplit(url)._replace(path=f"/mig_{uuid.uuid4().hex[:10]}"))
    native = Native(kind, url)
    native.reset()
    yield kind, url, native
    if hasattr(native, "_c"):   # the cassandra-driver cluster (its threads would outlive the test)
        native._c.cluster.shutdown()


@pytest.fixture
def revs(request, tmp_path):
    kind = request.getfixturevalue("target")[0] if "target" in request.fixturenames else None
    d = tmp_path / "nosql"
    d.mkdir()
    (d / "r1_seed_users.py").write_text(REV1)
    (d / "r2_count_a_visit.py").write_text(rev2(kind))
    return d


def run(url, *args, process=False, **kw):
    return (dbsh_process if process else dbsh)("-u", url, "migrate", *args, **kw)


# -- the verbs -----------------------------------------------------------------------------------
def test_plan_upgrade_status_downgrade_stamp(target, revs):
    kind, url, native = target
    d = str(revs)
    plan = run(url, "plan", "--dir", d)
    assert plan.code == 0, plan.err
    assert [(r["revision"], [(o["operation"], o["collection"]) for o in r["operations"]])
            for r in plan.json_lines()] == [("r1", [("insert", "mig_users")]), ("r2", [("update", "mig_users")])]
    assert plan.json_lines()[1]["operations"][0]["detail"] == {"filter": {"name": "Ann"}, "update": change(kind)}
    assert native.users() == [] and native.records() == {}        # the plan wrote nothing

    up = run(url, "upgrade", "head", "--dir", d)
    assert up.code == 0, up.err
    assert up.json_lines() == [{"action": "upgrade", "revision": "r1", "message": "seed users"},
                               {"action": "upgrade", "revision": "r2", "message": "count a visit"}]
    assert native.users() == [("Ann", 2)]
    assert native.records() == {"r1": "applied", "r2": "applied"}

    status = run(url, "status", "--dir", d, "--format", "json")
    rows = json.loads(status.out)
    assert [(r["revision"], r["state"], r["checksum_changed"]) for r in rows] == [("r1", "applied", False),
                                                                                   ("r2", "applied", False)]
    assert all(r["applied_at"] for r in rows)
    assert run(url, "current", "--dir", d).json_lines() == [{"revision": "r2", "message": "count a visit",
                                                             "head": True}]
    again = run(url, "upgrade", "--dir", d, "-f", "table")
    assert again.code == 0 and again.out.strip() == "already at heads"
    assert native.users() == [("Ann", 2)]

    down = run(url, "downgrade", "-1", "--dir", d)
    assert down.code == 0, down.err
    assert [r["revision"] for r in down.json_lines()] == ["r2"]
    assert native.users() == [("Ann", 1)] and native.records() == {"r1": "applied"}
    assert run(url, "downgrade", "base", "--dir", d).code == 0
    assert native.users() == [] and native.records() == {}

    stamp = run(url, "stamp", "head", "--dir", d)
    assert stamp.code == 0, stamp.err
    assert native.records() == {"r1": "applied", "r2": "applied"} and native.users() == []


def test_failed_revision_blocks_until_resolved(target, revs):
    kind, url, native = target
    d = str(revs)
    (revs / "r3_breaks.py").write_text(FAILING)
    first = run(url, "upgrade", "--dir", d)
    assert first.code == 1
    assert first.err.strip().splitlines()[-1] == ("dbsh: error: revision r3 failed: RuntimeError: boom in r3; it is "
                                                  "recorded as failed and later runs refuse until "
                                                  "`dbsh migrate resolve r3` (or --force)")
    assert native.records() == {"r1": "applied", "r2": "applied", "r3": "failed"}
    assert native.users() == [("Ann", 2)]

    again = run(url, "upgrade", "--dir", d)
    assert again.code == 1
    assert "revision r3 failed at" in again.err and "refusing to run until it is resolved" in again.err
    assert "dbsh migrate resolve r3" in again.err
    status = {r["revision"]: r for r in run(url, "status", "--dir", d).json_lines()}
    assert status["r3"]["state"] == "failed" and status["r3"]["error"] == "RuntimeError: boom in r3"

    (revs / "r3_breaks.py").write_text(FAILING.replace('raise RuntimeError("boom in r3")', "pass"))
    resolved = run(url, "resolve", "r3", "--dir", d)
    assert resolved.code == 0, resolved.err
    assert "r3" not in native.records()
    fixed = run(url, "upgrade", "--dir", d)
    assert fixed.code == 0, fixed.err
    assert native.records() == {"r1": "applied", "r2": "applied", "r3": "applied"}
    assert native.users() == [("Ann", 2)]


def test_force_retries_a_failed_revision_and_changed_checksums_are_reported(target, revs):
    kind, url, native = target
    d = str(revs)
    (revs / "r3_breaks.py").write_text(FAILING)
    assert run(url, "upgrade", "--dir", d).code == 1
    (revs / "r3_breaks.py").write_text(FAILING.replace('raise RuntimeError("boom in r3")', "pass"))
    (revs / "r1_seed_users.py").write_text(REV1 + "\n# edited after it was applied\n")
    forced = run(url, "upgrade", "--force", "--dir", d)
    assert forced.code == 0, forced.err
    assert "dbsh: warning: revision r1 changed since it was applied" in forced.err
    assert [r["revision"] for r in forced.json_lines()] == ["r3"]
    status = {r["revision"]: r for r in run(url, "status", "--dir", d).json_lines()}
    assert status["r1"]["checksum_changed"] is True and status["r2"]["checksum_changed"] is False


def test_bad_input_is_exit_2(target, revs, tmp_path):
    kind, url, native = target
    assert run(url, "upgrade", "nosuch", "--dir", str(revs)).code == 2
    missing = run(url, "upgrade", "--dir", str(tmp_path / "none"))
    assert missing.code == 2 and "no migrations directory" in missing.err
    sql = run(url, "upgrade", "--sql", "--dir", str(revs))
    assert sql.code == 2 and "--sql is for SQL targets" in sql.err
    assert native.records() == {}


def test_revision_creates_a_linked_file(target, tmp_path):
    kind, url, native = target
    d = tmp_path / "fresh"
    first = run(url, "revision", "-m", "add index", "--dir", str(d))
    assert first.code == 0, first.err
    second = run(url, "revision", "-m", "backfill", "--dir", str(d), "--rev-id", "b2")
    row = second.json_lines()[0]
    assert row["down_revision"] == first.json_lines()[0]["revision"]
    assert [r["revision"] for r in run(url, "history", "--dir", str(d)).json_lines()] == [
        "b2", first.json_lines()[0]["revision"]]
    up = run(url, "upgrade", "--dir", str(d))
    assert up.code == 0, up.err
    assert set(native.records().values()) == {"applied"} and len(native.records()) == 2


# -- concurrency and the lease -----------------------------------------------------------------
@pytest.mark.slow
def test_eight_parallel_upgrades_apply_each_revision_once(target, revs, dbsh_env):
    kind, url, native = target
    procs = [subprocess.Popen([sys.executable, "-m", "dbsh", "-u", url, "migrate", "upgrade", "head", "--dir",
                               str(revs)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dbsh_env)
             for _ in range(8)]
    results = [(p.wait(timeout=180), p.stdout.read(), p.stderr.read()) for p in procs]
    assert [code for code, _, _ in results] == [0] * 8, [err for _, _, err in results]
    applied = [json.loads(line)["revision"] for _, out, _ in results for line in out.splitlines()]
    assert sorted(applied) == ["r1", "r2"]
    assert native.users() == [("Ann", 2)]
    assert native.records() == {"r1": "applied", "r2": "applied"}


@pytest.mark.slow
def test_killed_run_blocks_only_until_its_lease_expires(target, revs, tmp_path, dbsh_env):
    kind, url, native = target
    started = tmp_path / "started"
    (revs / "r2_count_a_visit.py").write_text(rev2(kind).replace("def upgrade(session):\n", textwrap.dedent(f"""\
        def upgrade(session):
            import pathlib, time
            pathlib.Path({str(started)!r}).touch()
            time.sleep(120)
        """)))
    proc = subprocess.Popen([sys.executable, "-m", "dbsh", "-u", url, "migrate", "upgrade", "--lock-lease", "2",
                             "--dir", str(revs)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dbsh_env)
    try:
        while not started.exists():
            assert proc.poll() is None, "the run ended before reaching the slow revision"
            time.sleep(0.05)
        # while it lives, it renews its lease: another run gives up, naming the holder
        waiting = run(url, "upgrade", "--lock-timeout", "1", "--dir", str(revs))
        assert waiting.code == 1
        assert "timed out after 1 s waiting for the migration lock" in waiting.err
        assert f"held by dbsh migrate pid {proc.pid} on" in waiting.err
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    (revs / "r2_count_a_visit.py").write_text(rev2(kind))
    assert native.records() == {"r1": "applied", "r2": "running"}
    after = run(url, "upgrade", "--lock-timeout", "60", "--dir", str(revs), process=True, env=dbsh_env)
    assert after.code == 0, after.err
    assert "revision r2 was interrupted in an earlier run" in after.err
    assert native.users() == [("Ann", 2)]
    assert native.records() == {"r1": "applied", "r2": "applied"}


def test_redis_cluster_keeps_records_and_lock_in_one_slot(redis_cluster_url, revs):
    from redis.cluster import RedisCluster

    url = redis_cluster_url
    client = RedisCluster.from_url(url.split("?", 1)[0])
    client.delete("{dbsh:migrate}:versions", "mig_users:1")
    up = run(url, "upgrade", "--dir", str(revs))
    assert up.code == 0, up.err
    assert [r["revision"] for r in up.json_lines()] == ["r1", "r2"]
    records = {k.decode(): json.loads(v)["state"] for k, v in client.hgetall("{dbsh:migrate}:versions").items()}
    assert records == {"r1": "applied", "r2": "applied"}
    assert client.exists("{dbsh:migrate}:lock") == 0          # released
    assert client.hget("mig_users:1", "n") == b"2"


def neo4j_native(neo4j_url):
    return Native("neo4j", neo4j_url)


def test_neo4j_lock_is_a_node_under_a_unique_constraint(neo4j_url, revs):
    import neo4j

    native = neo4j_native(neo4j_url)
    native.reset()
    up = run(neo4j_url, "upgrade", "--dir", str(revs))
    assert up.code == 0, up.err
    constraints = {r["name"]: r for r in native._cypher(
        "SHOW CONSTRAINTS YIELD name, type, labelsOrTypes, properties")}
    assert constraints["dbsh_migrate_lock"] == {"name": "dbsh_migrate_lock", "type": "UNIQUENESS",
                                                "labelsOrTypes": ["DbshMigrateLock"], "properties": ["name"]}
    assert constraints["dbsh_migration"]["properties"] == ["revision"]
    # released: one lock node, no owner; a second one is refused by the server
    assert native._cypher("MATCH (l:DbshMigrateLock) RETURN l.name AS name, l.owner AS owner") == [
        {"name": "lock", "owner": None}]
    with pytest.raises(neo4j.exceptions.ConstraintError):
        native._cypher("CREATE (:DbshMigrateLock {name: 'lock'})")


def test_neo4j_migrate_refuses_to_run_without_its_lock_constraint(neo4j_url, revs):
    """An index already on :DbshMigrateLock(name) keeps Neo4j from creating the unique constraint the lock
    needs: the run stops with the server's message instead of taking a lock that is not safe."""
    native = neo4j_native(neo4j_url)
    native.reset()
    native._cypher("DROP CONSTRAINT dbsh_migrate_lock IF EXISTS")
    native._cypher("CREATE INDEX lock_name_index FOR (l:DbshMigrateLock) ON (l.name)")
    try:
        up = run(neo4j_url, "upgrade", "--dir", str(revs))
        assert up.code == 1 and up.out == "" and len(up.err.splitlines()) == 1
        assert up.err.startswith("dbsh: error: There already exists an index") and "DbshMigrateLock" in up.err
        assert native.users() == [] and native.records() == {}
    finally:
        native._cypher("DROP INDEX lock_name_index IF EXISTS")
    assert run(neo4j_url, "upgrade", "--dir", str(revs)).code == 0


def test_neo4j_migrate_with_a_wrong_password_is_exit_3(neo4j_url, revs):
    parts = urlsplit(neo4j_url)
    bad = f"bolt://{parts.username}:Wr0ng-s3cret@{parts.hostname}:{parts.port}"
    for verb in ("status", "upgrade"):
        result = run(bad, verb, "--dir", str(revs))
        assert (result.code, result.out) == (3, "")
        assert result.err == (f"dbsh: error: cannot authenticate to bolt://{parts.username}:***@{parts.hostname}:"
                              f"{parts.port}: The client is unauthorized due to authentication failure.\n")
    assert run(neo4j_url, "status", "--dir", str(revs)).code == 0   # and a good login clears the failed count


def test_dry_run_lists_operations_and_says_when_it_cannot(target, revs):
    kind, url, native = target
    (revs / "r3_native.py").write_text('"""native index"""\nrevision = "r3"\ndown_revision = "r2"\n\n\n'
                                       'def upgrade(session):\n    session.client\n\n\ndef downgrade(session):\n'
                                       '    pass\n')
    dry = run(url, "upgrade", "--dry-run", "--dir", str(revs), "-f", "table")
    assert dry.code == 0, dry.err
    assert dry.out.splitlines() == [
        "would upgrade r1: seed users",
        "    insert mig_users 1 document",
        "would upgrade r2: count a visit",
        '    update mig_users {"filter":{"name":"Ann"},"update":' + json.dumps(change(kind), separators=(",", ":"))
        + '}',
        "would upgrade r3: native index",
        "    (uses the native client: operations not listed)",
    ]
    assert native.users() == [] and native.records() == {}
