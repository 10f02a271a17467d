"""The SQL driver on real PostgreSQL and MariaDB servers, checked with psycopg and PyMySQL."""

import json
import uuid
from urllib.parse import urlsplit

import pytest

from tests.dbshtest import dbsh, dbsh_process


@pytest.fixture(params=["postgres", "mariadb"])
def server(request):
    url = request.getfixturevalue(f"{request.param}_url")
    return request.param, url


def native(kind, url, sql, params=()):
    """Run SQL with the database's own Python client, not with dbsh."""
    parts = urlsplit(url)
    if kind == "postgres":
        import psycopg

        with psycopg.connect(host=parts.hostname, port=parts.port, user=parts.username,
                             password=parts.password, dbname=parts.path.lstrip("/")) as conn:
            cur = conn.execute(sql.replace("`", '"'), params)
            return cur.fetchall() if cur.description else None
    import pymysql

    conn = pymysql.connect(host=parts.hostname, port=parts.port, user=parts.username, password=parts.password,
                           database=parts.path.lstrip("/"), autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params or None)
            return [tuple(r) for r in cur.fetchall()] if cur.description else None
    finally:
        conn.close()


def table_name(prefix="people"):
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def test_readme_flow(server):
    kind, url = server
    t = table_name()
    run = dbsh("-u", url, "insert", t, '{"name": "Bob", "count": 1}', '{"name": "Jill", "count": 15}', "--create")
    assert run.code == 0, run.err
    assert native(kind, url, f"select id, name, count from {t} order by id") == [(1, "Bob", 1), (2, "Jill", 15)]
    assert dbsh("-u", url, "find", t, '{"count": {"$gt": 5}}').json_lines() == [{"id": 2, "name": "Jill", "count": 15}]
    assert dbsh("-u", url, "update", t, '{"name": "Jill"}', '{"$set": {"count": 20}}').json_lines()[0]["count"] == 1
    assert dbsh("-u", url, "delete", t, '{"name": "Bob"}').json_lines()[0]["count"] == 1
    assert native(kind, url, f"select name, count from {t}") == [("Jill", 20)]
    run = dbsh("-u", url, "query", f"select name, count from {t} where name like :n", "-p", "n=J%")
    assert run.json_lines() == [{"name": "Jill", "count": 20}]
    assert t in [r["name"] for r in dbsh("-u", url, "collections").json_lines()]
    columns = [c["column"] for c in dbsh("-u", url, "describe", t).json_lines()]
    assert columns == ["id", "name", "count"]


def test_connect_reports_version_and_saves_profile_without_password(server, monkeypatch):
    kind, url = server
    run = dbsh("connect", url, "--save", "srv")
    assert run.code == 0, run.err
    info = run.json_lines()[0]
    assert info["backend"] == ("PostgreSQL" if kind == "postgres" else "MariaDB")
    assert info["version"] and info["round_trip_ms"] > 0
    password = urlsplit(url).password
    assert password not in run.out + run.err
    from dbsh.config import config_path

    assert password not in config_path().read_text()
    # the profile needs the password from the environment
    monkeypatch.setenv("DBSH_PASSWORD", password)
    t = table_name()
    assert dbsh("-c", "srv", "insert", t, '{"a": 1}', "--create").code == 0
    assert native(kind, url, f"select a from {t}") == [(1,)]


def test_wrong_password_and_unreachable_host(server):
    kind, url = server
    parts = urlsplit(url)
    bad = url.replace(f":{parts.password}@", ":not-the-password@")
    run = dbsh("-u", bad, "find", "t")
    assert run.code == 3
    assert run.err.startswith("dbsh: error: cannot connect to ")
    assert "not-the-password" not in run.err and len(run.err.splitlines()) == 1
    scheme = url.split("://")[0]
    run = dbsh("-u", f"{scheme}://u:secret@127.0.0.1:1/x", "find", "t")
    assert run.code == 3 and "secret" not in run.err and len(run.err.splitlines()) == 1


def test_bulk_insert_from_file_in_batches(server, tmp_path):
    kind, url = server
    t = table_name()
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"n": i, "meta": {"even": i % 2 == 0}}) + "\n" for i in range(3000)))
    run = dbsh("-u", url, "insert", t, "--file", str(path), "--create", "--batch", "500")
    assert run.json_lines() == [{"action": "inserted", "collection": t, "count": 3000}]
    assert native(kind, url, f"select count(*), sum(n) from {t}") == [(3000, sum(range(3000)))]
    found = dbsh("-u", url, "find", t, '{"n": 4}').json_lines()
    assert found == [{"id": 5, "n": 4, "meta": {"even": True}}]


def test_failing_batch_is_rolled_back_and_reported(server, tmp_path):
    kind, url = server
    t = table_name()
    native(kind, url, f"create table {t} (id integer primary key, v text)")
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"id": i, "v": "x"}) + "\n" for i in [1, 2, 3, 4, 4, 5]))
    run = dbsh("-u", url, "insert", t, "--file", str(path), "--batch", "3")
    assert run.code == 1
    assert "(3 rows were " in run.err and "the failing batch was rolled back" in run.err
    assert len(run.err.splitlines()) == 1
    assert native(kind, url, f"select id from {t} order by id") == [(1,), (2,), (3,)]


def test_injection_leaves_the_database_intact(server):
    kind, url = server
    t = table_name()
    evil = "x'); drop table " + t + "; -- \"` \\"
    assert dbsh("-u", url, "insert", t, json.dumps({"name": evil}), "--create").code == 0
    assert dbsh("-u", url, "find", t, json.dumps({"name": {"$in": [evil]}})).json_lines()[0]["name"] == evil
    weird = "w" + uuid.uuid4().hex[:6] + "'\"; drop table " + t + "; --"
    run = dbsh("-u", url, "insert", weird, '{"v": 1}', "--create")
    assert run.code == 0, run.err
    assert native(kind, url, f"select name from {t}") == [(evil,)]
    assert dbsh("-u", url, "find", weird).json_lines() == [{"id": 1, "v": 1}]


def test_stream_large_result_through_real_process(server):
    kind, url = server
    t = table_name()
    native(kind, url, f"create table {t} (n integer)")
    if kind == "postgres":
        native(kind, url, f"insert into {t} select generate_series(1, 20000)")
    else:
        native(kind, url, f"insert into {t} select seq from seq_1_to_20000")
    run = dbsh_process("-u", url, "find", t, "--format", "csv")
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0] == "n" and len(lines) == 20001 and sorted(int(x) for x in lines[1:]) == list(range(1, 20001))


def test_server_error_is_exit_1(server):
    kind, url = server
    run = dbsh("-u", url, "query", "select * from no_such_table_here")
    assert run.code == 1 and run.err.startswith("dbsh: error: ") and len(run.err.splitlines()) == 1


def test_regex_and_not_filters(server):
    kind, url = server
    t = table_name()
    dbsh("-u", url, "insert", t, '{"name": "Ann", "age": 30}', '{"name": "bob", "age": null}',
         '{"name": "Cid", "age": 50}', "--create")
    run = dbsh("-u", url, "find", t, '{"name": {"$regex": "^[ab]", "$options": "i"}}', "--fields", "name",
               "--sort", "name")
    assert run.json_lines() == [{"name": "Ann"}, {"name": "bob"}]
    run = dbsh("-u", url, "find", t, '{"age": {"$not": {"$gt": 40}}}', "--fields", "name", "--sort", "name")
    assert run.json_lines() == [{"name": "Ann"}, {"name": "bob"}]
    run = dbsh("-u", url, "find", t, '{"age": {"$ne": 30}}', "--fields", "name")
    assert sorted(r["name"] for r in run.json_lines()) == ["Cid", "bob"]   # $ne matches null too


def test_bulk_path_keeps_awkward_values_exact(server, tmp_path):
    """PostgreSQL's COPY text format and SQLite/MariaDB executemany: escapes, \\N, JSON, inf, nulls."""
    kind, url = server
    t = table_name()
    docs = [{"id": 1, "s": "a\tb\\c\nd\re", "j": {"k": "x\ty\\"}, "b": True, "f": 1.5, "n": None},
            {"id": 2, "s": "", "j": [1, "\\n"], "b": False, "f": 2.25, "n": None},
            {"id": 3, "s": "\\N", "j": None, "b": None, "f": None, "n": "'; drop table x; --"}]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    run = dbsh("-u", url, "insert", t, "--file", str(path), "--create")
    assert run.code == 0, run.err
    got = native(kind, url, f"select id, s, b, f, n from {t} order by id")
    expected = [(d["id"], d["s"], d["b"], d["f"], d["n"]) for d in docs]
    if kind == "mariadb":   # BOOLEAN is TINYINT(1) there
        expected = [(i, s, None if b is None else int(b), f, n) for i, s, b, f, n in expected]
    assert got == expected
    assert [r["j"] for r in dbsh("-u", url, "find", t, "--sort", "id", "--fields", "j").json_lines()] == \
        [d["j"] for d in docs]
