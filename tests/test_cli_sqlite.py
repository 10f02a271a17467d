"""The spine on the embedded default and on SQLite files: the README's commands, checked with sqlite3."""

import json
import sqlite3

import pytest

from dbsh import __version__
from dbsh.config import data_dir
from tests.dbshtest import dbsh, dbsh_process


def rows(path, sql, params=()):
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, params).fetchall()


def test_version_and_help_fast_path():
    run = dbsh_process("--version")
    assert (run.code, run.out) == (0, f"dbsh {__version__}\n")
    run = dbsh_process("--help")
    assert run.code == 0
    for name in ("connect", "insert", "find", "update", "delete", "query", "collections", "describe"):
        assert f"\n  {name} " in run.out
    assert "Examples:" in run.out


def test_command_help_has_an_example():
    run = dbsh("find", "--help")
    assert run.code == 0
    assert "Example: dbsh find people" in " ".join(run.out.split())


def test_readme_flow_on_the_embedded_default():
    db = data_dir() / "dbsh.db"
    run = dbsh("insert", "people", '{"name": "Bob", "count": 1}', '{"name": "Jill", "count": 15}', "--create")
    assert run.code == 0, run.err
    assert run.json_lines() == [{"action": "inserted", "collection": "people", "count": 2}]
    assert rows(db, "select id, name, count from people order by id") == [(1, "Bob", 1), (2, "Jill", 15)]

    run = dbsh("find", "people", '{"count": {"$gt": 5}}')
    assert run.json_lines() == [{"id": 2, "name": "Jill", "count": 15}]

    run = dbsh("update", "people", '{"name": "Jill"}', '{"$set": {"count": 20}}')
    assert run.json_lines()[0]["count"] == 1
    run = dbsh("delete", "people", '{"name": "Bob"}')
    assert run.json_lines()[0]["count"] == 1
    assert rows(db, "select name, count from people") == [("Jill", 20)]

    run = dbsh("query", "select name, count from people where name like :n", "-p", "n=J%", "--format", "csv")
    assert run.out == "name,count\nJill,20\n"
    assert dbsh("collections").json_lines() == [{"name": "people"}]
    described = dbsh("describe", "people").json_lines()
    assert [(c["column"], c["primary_key"]) for c in described] == [("id", True), ("name", False), ("count", False)]


def test_table_format_exact(sqlite_url):
    dbsh("-u", sqlite_url, "insert", "t", '{"name": "Ann", "n": 1}', "--create")
    run = dbsh("-u", sqlite_url, "find", "t", "--format", "table")
    assert run.out.splitlines() == [" id   name   n ", "───────────────", " 1    Ann    1 ", "(1 row)"]


def test_create_infers_types_and_json(sqlite_url, tmp_path):
    doc = {"id": 7, "name": "Ann", "score": 1.5, "ok": True, "meta": {"a": [1, 2]}}
    assert dbsh("-u", sqlite_url, "insert", "t", json.dumps(doc), "--create").code == 0
    path = sqlite_url.split("///", 1)[1]
    columns = {r[1]: (r[2], r[5]) for r in rows(path, "pragma table_info(t)")}
    assert columns == {"id": ("INTEGER", 1), "name": ("TEXT", 0), "score": ("FLOAT", 0),
                       "ok": ("BOOLEAN", 0), "meta": ("JSON", 0)}
    assert dbsh("-u", sqlite_url, "find", "t").json_lines() == [doc]


def test_missing_table_suggests_create(sqlite_url):
    run = dbsh("-u", sqlite_url, "insert", "nope", '{"a": 1}')
    assert run.code == 2
    assert run.err == "dbsh: error: no table named 'nope' (pass --create to make it from the documents)\n"


def test_insert_from_file_formats(sqlite_url, tmp_path):
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text("".join(json.dumps({"i": i, "s": f"v{i}"}) + "\n" for i in range(2500)))
    run = dbsh("-u", sqlite_url, "insert", "t", "--file", str(jsonl), "--create", "--batch", "1000")
    assert run.json_lines() == [{"action": "inserted", "collection": "t", "count": 2500}]
    arr = tmp_path / "p.json"
    arr.write_text(json.dumps([{"i": 1, "s": "x"}, {"i": 2, "s": "y"}]))
    assert dbsh("-u", sqlite_url, "insert", "t", "-F", str(arr)).json_lines()[0]["count"] == 2
    run = dbsh("-u", sqlite_url, "insert", "t", "-", input="i,s\n5,five\n6,six\n")
    assert run.json_lines()[0]["count"] == 2
    path = sqlite_url.split("///", 1)[1]
    assert rows(path, "select count(*), sum(i) from t")[0] == (2504, sum(range(2500)) + 14)
    assert rows(path, "select s from t where i = 6 order by id") == [("v6",), ("six",)]


def test_bad_csv_row_writes_nothing(sqlite_url):
    dbsh("-u", sqlite_url, "insert", "t", '{"a": 1, "b": 2}', "--create")
    run = dbsh("-u", sqlite_url, "insert", "t", "-", input="a,b\n3,4\n5,6,7\n")
    assert run.code == 2
    assert run.err == "dbsh: error: <stdin> line 3: 3 fields, but the header has 2\n"
    assert rows(sqlite_url.split("///", 1)[1], "select a, b from t") == [(1, 2)]


@pytest.mark.parametrize("args, code, message", [
    (["find", "t", "{bad"], 2, "dbsh: error: malformed JSON in filter: Expecting property name enclosed in "
                               "double quotes at line 1 column 2\n"),
    (["find", "t", '{"a": {"$near": 1}}'], 2, "dbsh: error: unknown operator $near on field 'a' "
                                             "(supported: $eq $ne $gt $gte $lt $lte $in $nin $exists $regex $not)\n"),
    (["find", "t", '{"zzz": 1}'], 2, "dbsh: error: unknown column 'zzz' in table 't' (columns: id, a)\n"),
    (["find", "nope"], 2, "dbsh: error: no table named 'nope' (tables: t)\n"),
    (["delete", "t", "{}"], 2, "dbsh: error: refusing to delete every document in t with an empty filter "
                               "(pass --all to mean it)\n"),
    (["update", "t", '{"a": 1}', '{"a": 2}'], 2, "dbsh: error: update documents use operators, not plain fields "
                                                 "('a') (e.g. {\"$set\": {\"a\": ...}})\n"),
    (["query", "selec 1"], 1, 'dbsh: error: near "selec": syntax error\n'),
    (["query", "select :x"], 2, "dbsh: error: missing parameter :x (pass -p name=value)\n"),
    (["find", "t", "--format", "xml"], 2, "dbsh: error: unknown format 'xml' (choose one of table, json, jsonl, "
                                          "csv, tsv)\n"),
    (["find", "t", "--ttl", "5"], 2, None),
])
def test_bad_input_is_one_line_with_exit_code(sqlite_url, args, code, message):
    dbsh("-u", sqlite_url, "insert", "t", '{"a": 1}', "--create")
    run = dbsh("-u", sqlite_url, *args)
    assert run.code == code, run.err
    if message:
        assert run.err == message
    assert len(run.err.strip().splitlines()) >= 1 and "Traceback" not in run.err
    assert rows(sqlite_url.split("///", 1)[1], "select a from t") == [(1,)]


def test_injection_in_values_and_names(sqlite_url):
    evil = "x'); drop table t; --\"`"
    assert dbsh("-u", sqlite_url, "insert", "t", json.dumps({"name": evil}), "--create").code == 0
    assert dbsh("-u", sqlite_url, "find", "t", json.dumps({"name": evil})).json_lines()[0]["name"] == evil
    assert dbsh("-u", sqlite_url, "query", "select name from t where name = :v", "-p", f"v={evil}").json_lines() \
        == [{"name": evil}]
    # a table name full of quotes is an identifier, never SQL
    assert dbsh("-u", sqlite_url, "insert", 'a"; drop table t; --', '{"v": 1}', "--create").code == 0
    path = sqlite_url.split("///", 1)[1]
    assert sorted(r[0] for r in rows(path, "select name from sqlite_master where type='table'")) == \
        ['a"; drop table t; --', "t"]
    assert rows(path, "select name from t") == [(evil,)]


def test_update_upsert_one_inc_unset(sqlite_url):
    u = ("-u", sqlite_url)
    dbsh(*u, "insert", "t", '{"k": "a", "n": 1}', '{"k": "a", "n": 2}', '{"k": "b", "n": 3}', "--create")
    assert dbsh(*u, "update", "t", '{"k": "a"}', '{"$inc": {"n": 10}}', "--one").json_lines()[0]["count"] == 1
    assert dbsh(*u, "update", "t", '{"k": "b"}', '{"$unset": {"n": ""}}').json_lines()[0]["count"] == 1
    run = dbsh(*u, "update", "t", '{"k": "c"}', '{"$set": {"n": 9}}', "--upsert")
    assert run.json_lines()[0]["action"] == "upserted"
    path = sqlite_url.split("///", 1)[1]
    assert rows(path, "select k, n from t order by id") == [("a", 11), ("a", 2), ("b", None), ("c", 9)]


def test_find_options(sqlite_url):
    u = ("-u", sqlite_url)
    dbsh(*u, "insert", "t", *[json.dumps({"n": i, "s": str(i)}) for i in range(10)], "--create")
    run = dbsh(*u, "find", "t", '{"n": {"$in": [1, 5, 7, 8]}}', "--sort", "-n", "--fields", "n", "--limit", "2",
               "--skip", "1")
    assert run.json_lines() == [{"n": 7}, {"n": 5}]
    assert dbsh(*u, "count", "t", '{"n": {"$gte": 5}}').json_lines() == [{"count": 5}]
    assert dbsh(*u, "find", "t", '{"s": {"$regex": "^[12]$"}}', "--fields", "s").json_lines() == \
        [{"s": "1"}, {"s": "2"}]


def test_jsonl_streams_through_a_pipe(sqlite_url):
    """A real process piped to `head`: closing the pipe early is not an error message."""
    import subprocess
    import sys

    dbsh("-u", sqlite_url, "query", "create table big (i integer)")
    dbsh("-u", sqlite_url, "query", "with recursive c(x) as (select 1 union all select x+1 from c where x < 200000)"
         " insert into big select x from c")
    proc = subprocess.run(f"{sys.executable} -m dbsh -u {sqlite_url} find big | head -3", shell=True,
                          capture_output=True, text=True)
    assert proc.stdout == '{"i":1}\n{"i":2}\n{"i":3}\n'
    assert proc.stderr == ""


def test_profiles_save_and_use(sqlite_url):
    run = dbsh("connect", sqlite_url, "--save", "local")
    assert run.code == 0, run.err
    info = run.json_lines()[0]
    assert info["backend"] == "SQLite" and info["round_trip_ms"] >= 0
    assert dbsh("-c", "local", "insert", "t", '{"a": 1}', "--create").code == 0
    assert dbsh("find", "t", "-c", "local").json_lines() == [{"id": 1, "a": 1}]
    run = dbsh("-c", "missing", "find", "t")
    assert run.code == 2 and run.err.startswith("dbsh: error: no saved connection named 'missing'")


def test_dbsh_url_env(sqlite_url, monkeypatch):
    monkeypatch.setenv("DBSH_URL", sqlite_url)
    assert dbsh("insert", "t", '{"a": 1}', "--create").code == 0
    assert rows(sqlite_url.split("///", 1)[1], "select a from t") == [(1,)]


def test_unknown_scheme_and_unreachable_file():
    run = dbsh("-u", "oracle://x/y", "find", "t")
    assert run.code == 2 and "unknown URL scheme 'oracle'" in run.err
    run = dbsh("-u", "sqlite:////nonexistent/dir/x.db", "find", "t")
    assert run.code == 3
    assert run.err == "dbsh: error: cannot open SQLite database /nonexistent/dir/x.db: directory does not exist\n"


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["find", "--help"], ["query", "--help"]])
def test_help_imports_no_database_library(args):
    import subprocess
    import sys

    code = ("import sys; from dbsh.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "heavy = ('sqlalchemy', 'alembic', 'pymongo', 'redis', 'neo4j', 'cassandra', 'prompt_toolkit', 'httpx')\n"
            "print(' '.join(m for m in heavy if m in sys.modules), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert proc.returncode == 0
    assert proc.stderr.strip() == ""


def test_readonly_profile_refuses_writes(sqlite_url):
    dbsh("-u", sqlite_url, "insert", "t", '{"a": 1}', "--create")
    assert dbsh("connect", sqlite_url, "--save", "ro", "--readonly").code == 0
    run = dbsh("-c", "ro", "insert", "t", '{"a": 2}')
    assert (run.code, run.err) == (2, "dbsh: error: read-only connection: insert is refused "
                                      "(profile 'ro' has readonly = true)\n")
    assert dbsh("-c", "ro", "delete", "t", '{"a": 1}').code == 2
    run = dbsh("-c", "ro", "query", "delete from t where a = 1")   # refused by SQLite itself (query_only)
    assert run.code == 1 and "readonly" in run.err.replace("-", "").replace(" ", "").lower()
    run = dbsh("-c", "ro", "query", "delete from t")               # destructive: asks first, so needs --yes
    assert run.code == 2 and "refusing without confirmation" in run.err and "--yes" in run.err
    for unlock in ("PRAGMA query_only = off", "pragma query_only(0)", "BEGIN; PRAGMA query_only=0; COMMIT"):
        run = dbsh("-c", "ro", "query", unlock)
        assert (run.code, run.err) == (2, "dbsh: error: read-only connection: a statement that changes the "
                                          "session's read-only mode is refused (profile 'ro' has readonly = true)\n")
    assert dbsh("-c", "ro", "find", "t").json_lines() == [{"id": 1, "a": 1}]
    assert rows(sqlite_url.split("///", 1)[1], "select a from t") == [(1,)]
