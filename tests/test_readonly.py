"""A read-only profile holds: every write path (the verbs, insert --file, copy, bench, migrate upgrade and
stamp, and native writes, including the ones hidden after a read in a multi-statement input, the
aggregation stages that write, and the statements that would switch the session's read-only mode off)
is refused on every backend, and the database, read with its own client, is unchanged.

16 attempts on each of 7 backends: 112; a bypass is a command that succeeds or changes anything."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.dbshtest import dbsh
from tests.native import KINDS, fixture_of, snapshot
from tests.test_copy import fresh

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def native_writes(kind: str, c: str) -> list[str]:
    """Eight native writes in the backend's language, against collection ``c``."""
    sql = [f"insert into {c} (name) values ('x')", f"update {c} set name = 'x'", f"delete from {c}",
           "create table other_t (a int)", f"drop table {c}", f"select 1; delete from {c}"]
    return {
        "sqlite": sql + [f"pragma query_only = off; delete from {c}", f"PRAGMA query_only(0); delete from {c}"],
        "postgres": sql + [f"BEGIN READ WRITE; delete from {c}; COMMIT",
                           f"SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; delete from {c}"],
        "mariadb": sql + [f"SET SESSION TRANSACTION READ WRITE; delete from {c}",
                          f"START TRANSACTION READ WRITE; delete from {c}; COMMIT"],
        "mongo": [f'db.{c}.insertOne({{name: "x"}})', f'db.{c}.updateMany({{}}, {{$set: {{name: "x"}}}})',
                  f"db.{c}.deleteMany({{}})", f"db.{c}.drop()", f'db.{c}.aggregate([{{$out: "{c}_out"}}])',
                  f'db.{c}.aggregate([{{"$merge": {{"into": "{c}_out"}}}}])',
                  f'db.runCommand({{insert: "{c}", documents: [{{a: 1}}]}})',
                  f"db.{c}.find({{}})\ndb.{c}.deleteMany({{}})"],
        "redis": ["SET a 1", f"HSET {c}:1 name x", f"DEL {c}:1", "FLUSHDB", "ECHO x\nFLUSHDB",
                  "EVAL \"return redis.call('set', 'a', '1')\" 0", "PING\nSET a 1", f"RENAME {c}:1 {c}:2"],
        "couchdb": [f"PUT /{c}_new", f'POST /{c} {{"a": 1}}', f"DELETE /{c}", f'PUT /{c}/doc9 {{"a": 1}}',
                    f'POST /{c}/_bulk_docs {{"docs": [{{"a": 1}}]}}', f"COPY /{c}/doc1",
                    f"GET /{c}\nDELETE /{c}", f'POST /{c}/_purge {{}}'],
        "neo4j": [f"CREATE (n:{c} {{name: 'x'}})", f"MERGE (n:{c} {{name: 'y'}})", f"MATCH (n:{c}) SET n.name = 'z'",
                  f"MATCH (n:{c}) DELETE n", "MATCH (n) DETACH DELETE n", f"UNWIND [1, 2] AS x CREATE (:{c} {{x: x}})",
                  f"MATCH (n) RETURN count(n); CREATE (:{c})", f"MATCH (n:{c}) REMOVE n.name"],
    }[kind]


def migrations(kind: str, tmp_path) -> str:
    if kind in ("sqlite", "postgres", "mariadb"):
        folder = tmp_path / "alembic"
        (folder / "versions").mkdir(parents=True)
        for name in ("env.py", "script.py.mako"):
            (folder / name).write_text((ROOT / "migrations" / name).read_text())
        (folder / "versions" / "r1_make.py").write_text(
            'revision = "r1"\ndown_revision = None\nfrom alembic import op\n'
            'def upgrade():\n    op.execute("create table made (id integer)")\n'
            'def downgrade():\n    op.execute("drop table made")\n')
        return str(folder)
    folder = tmp_path / "rev"
    folder.mkdir()
    (folder / "a1_first.py").write_text(
        'revision = "a1"\ndown_revision = None\n'
        'def upgrade(session):\n    session.insert("migrated", [{"id": 1}], create=True)\n'
        'def downgrade(session):\n    pass\n')
    return str(folder)


def password_env(url: str) -> dict:
    """A profile never keeps a password: the commands on it take the URL's from DBSH_PASSWORD."""
    from urllib.parse import urlsplit

    return {"DBSH_PASSWORD": urlsplit(url).password}




@pytest.mark.parametrize("kind", KINDS)
def test_no_write_gets_through_a_readonly_profile(request, tmp_path, kind):
    url = request.getfixturevalue(fixture_of(kind))
    if kind == "redis":
        url = url.rsplit("/", 1)[0] + "/7"
        import redis

        redis.Redis.from_url(url).flushdb()
    c = fresh("Ro" if kind == "neo4j" else "ro")
    run = dbsh("-u", url, "insert", c, json.dumps({"id": 1, "name": "Ann"}), "--create")
    assert run.code == 0, run.err
    assert dbsh("connect", url, "--save", "ro", "--readonly").code == 0
    source = tmp_path / "src.db"
    with sqlite3.connect(source) as conn:
        conn.execute("create table people (id integer primary key, name text)")
        conn.execute("insert into people (id, name) values (7, 'Bo')")
    data = tmp_path / "rows.jsonl"
    data.write_text('{"id": 9, "name": "Cy"}\n')
    folder = migrations(kind, tmp_path)

    attempts = [
        ["-c", "ro", "insert", c, '{"id": 5, "name": "No"}'],
        ["-c", "ro", "insert", c, "--file", str(data)],
        ["-c", "ro", "update", c, "{}", '{"$set": {"name": "X"}}'],
        ["-c", "ro", "delete", c, "--all"],
        ["copy", f"sqlite:///{source}/people", f"ro/{c}"],
        ["-c", "ro", "bench", "-w", "a", "--records", "5", "--operations", "5"],
        ["-c", "ro", "migrate", "upgrade", "head", "--dir", folder],
        ["-c", "ro", "migrate", "stamp", "head", "--dir", folder],
    ] + [["-c", "ro", "--yes", "query", text] for text in native_writes(kind, c)]
    assert len(attempts) == 16

    before = snapshot(kind, url, c)
    bypasses = []
    for args in attempts:
        run = dbsh(*args, env=password_env(url))
        after = snapshot(kind, url, c)
        if run.code == 0 or after != before:
            bypasses.append((args, run.code, run.err))
            before = after
        else:
            assert len(run.err.strip().splitlines()) == 1, (args, run.err)
            if run.code == 2:
                assert "read-only" in run.err, (args, run.err)
            else:   # the server itself refused it (a read-only SQL session), or the statement
                assert run.code == 1, (args, run.err)
    assert bypasses == [], f"{len(bypasses)} of {len(attempts)} writes got through on {kind}"


@pytest.mark.parametrize("kind, statement", [
    ("postgres", "BEGIN READ WRITE"),
    ("postgres", "START TRANSACTION READ WRITE"),
    ("postgres", "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE"),
    ("postgres", "SET default_transaction_read_only = off"),
    ("postgres", "SET SESSION transaction_read_only TO off"),
    ("postgres", "RESET ALL"),
    ("postgres", "RESET default_transaction_read_only"),
    ("postgres", "DISCARD ALL"),
    ("postgres", "select 1; set transaction read write"),
    ("mariadb", "SET SESSION TRANSACTION READ WRITE"),
    ("mariadb", "SET TRANSACTION READ WRITE"),
    ("mariadb", "START TRANSACTION READ WRITE"),
    ("mariadb", "SET SESSION tx_read_only = 0"),
    ("mariadb", "SET @@session.transaction_read_only = OFF"),
    ("sqlite", "PRAGMA query_only = 0"),
    ("sqlite", "pragma main.query_only(false)"),
])
def test_a_statement_that_switches_read_only_off_is_refused(request, kind, statement):
    url = request.getfixturevalue(fixture_of(kind))
    assert dbsh("connect", url, "--save", "ro", "--readonly").code == 0
    c = fresh("ro")
    assert dbsh("-u", url, "insert", c, '{"id": 1}', "--create").code == 0
    before = snapshot(kind, url, c)
    run = dbsh("-c", "ro", "--yes", "query", f"{statement}; delete from {c}", env=password_env(url))
    assert run.code == 2, run.err
    assert run.err.startswith("dbsh: error: read-only connection: a statement that changes the session's "
                              "read-only mode is refused"), run.err
    assert snapshot(kind, url, c) == before


@pytest.mark.secantusdb
def test_an_aggregation_that_writes_is_refused_however_its_stage_is_spelt(mongo_url):
    c = fresh("ro")
    assert dbsh("-u", mongo_url, "insert", c, '{"id": 1}').code == 0
    assert dbsh("connect", mongo_url, "--save", "ro", "--readonly").code == 0
    before = snapshot("mongo", mongo_url, c)
    for stage in ['{"\\u0024out": "x_out"}', '{$merge: {into: "x_out"}}', "{'$out': 'x_out'}"]:
        run = dbsh("-c", "ro", "query", f"db.{c}.aggregate([{stage}])", env=password_env(mongo_url))
        assert run.code == 2 and "read-only connection" in run.err, (stage, run.err)
    run = dbsh("-c", "ro", "query", f"db.{c}.aggregate([{{$match: {{}}}}])")
    assert run.code == 0 and run.json_lines()[0]["id"] == 1, run.err
    assert snapshot("mongo", mongo_url, c) == before
