"""What SQL means through dbsh, on SQLite, PostgreSQL and MariaDB alike (issues 15 and 21): transactions
typed as SQL reach the server (scripts, query -, the shell), several statements run in order,
:name parameters exist only in code, filters keep MongoDB's meaning or are refused, values come out
exact, any name is stored exactly, concurrent --create imports all land. Checked with each
database's own client."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
import uuid
from urllib.parse import urlsplit

import pytest

from dbsh.repl.app import Shell
from dbsh.target import resolve
from tests.dbshtest import dbsh


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def sql(request, tmp_path):
    kind = request.param
    url = f"sqlite:///{tmp_path}/s.db" if kind == "sqlite" else request.getfixturevalue(f"{kind}_url")
    return kind, url


def native(kind, url, statement, params=()):
    """Run SQL with the database's own Python client (autocommit), not with dbsh."""
    if kind == "sqlite":
        conn = sqlite3.connect(url.split(":///", 1)[1], isolation_level=None)
        try:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else None
        finally:
            conn.close()
    parts = urlsplit(url)
    if kind == "postgres":
        import psycopg

        with psycopg.connect(host=parts.hostname, port=parts.port, user=parts.username, password=parts.password,
                             dbname=parts.path.lstrip("/"), autocommit=True) as conn:
            cur = conn.execute(statement, params or None)
            return cur.fetchall() if cur.description else None
    import pymysql

    conn = pymysql.connect(host=parts.hostname, port=parts.port, user=parts.username, password=parts.password,
                           database=parts.path.lstrip("/"), autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params or None)
            return [tuple(r) for r in cur.fetchall()] if cur.description else None
    finally:
        conn.close()


def name(prefix="t"):
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def accounts(kind, url) -> str:
    t = name("acct")
    native(kind, url, f"create table {t} (id integer primary key, n integer check (n >= 0))")
    native(kind, url, f"insert into {t} values (1, 10), (2, 20)")
    return t


# -- transactions -----------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["stdin", "query -"])
def test_a_script_stops_at_its_first_error_and_its_transaction_is_rolled_back(sql, how):
    kind, url = sql
    t = accounts(kind, url)
    script = f"BEGIN;\nUPDATE {t} SET n = n - 5 WHERE id = 1;\nUPDATE {t} SET n = -1 WHERE id = 2;\nCOMMIT;\n"
    run = dbsh("-u", url, input=script) if how == "stdin" else dbsh("-u", url, "query", "-", input=script)
    assert run.code == 1
    assert "rolled back" in run.err
    assert native(kind, url, f"select id, n from {t} order by id") == [(1, 10), (2, 20)]


def test_a_transaction_left_open_at_the_end_of_a_script_is_rolled_back_with_a_note(sql):
    kind, url = sql
    t = accounts(kind, url)
    run = dbsh("-u", url, input=f"BEGIN;\nUPDATE {t} SET n = 0 WHERE id > 0;\n")
    assert run.code == 0, run.err
    assert run.err.strip().endswith("the transaction left open at the end was rolled back (end it with COMMIT to "
                                    "keep its changes)")
    assert native(kind, url, f"select n from {t} order by id") == [(10,), (20,)]
    run = dbsh("-u", url, "query", f"BEGIN; UPDATE {t} SET n = 0 WHERE id > 0")
    assert run.code == 0 and "rolled back" in run.err
    assert native(kind, url, f"select n from {t} order by id") == [(10,), (20,)]


def test_savepoints_and_commit_mean_what_they_mean_to_the_server(sql):
    kind, url = sql
    t = accounts(kind, url)
    script = (f"BEGIN;\nINSERT INTO {t} VALUES (3, 3);\nSAVEPOINT s1;\nINSERT INTO {t} VALUES (4, 4);\n"
              f"ROLLBACK TO SAVEPOINT s1;\nINSERT INTO {t} VALUES (5, 5);\nRELEASE SAVEPOINT s1;\nCOMMIT;\n")
    run = dbsh("-u", url, input=script)
    assert run.code == 0, run.err
    assert native(kind, url, f"select id from {t} order by id") == [(1,), (2,), (3,), (5,)]


@pytest.mark.parametrize("flag", ["--single-transaction", "-1"])
def test_single_transaction_wraps_the_whole_script(sql, flag):
    kind, url = sql
    t = accounts(kind, url)
    bad = f"UPDATE {t} SET n = 1 WHERE id = 1;\nINSERT INTO {t} VALUES (3, 3);\nUPDATE {t} SET n = -1 WHERE id = 2;\n"
    assert dbsh("-u", url, flag, input=bad).code == 1
    assert dbsh(flag, "-u", url, "query", "-", input=bad).code == 1
    assert native(kind, url, f"select id, n from {t} order by id") == [(1, 10), (2, 20)]
    good = f"UPDATE {t} SET n = 1 WHERE id = 1;\nINSERT INTO {t} VALUES (3, 3);\n"
    run = dbsh("-u", url, flag, input=good)
    assert (run.code, run.err) == (0, "")
    assert native(kind, url, f"select id, n from {t} order by id") == [(1, 1), (2, 20), (3, 3)]


def test_migrate_downgrade_minus_one_is_still_a_revision():
    from dbsh import cli

    call = cli.parse(["-u", "sqlite:///x.db", "migrate", "downgrade", "-1"], None)
    assert call.values["revision"] == "-1" and not call.settings.single_transaction
    call = cli.parse(["-1", "query", "-"], None)
    assert call.settings.single_transaction and call.values["text"] == "-"


def shell(url) -> Shell:
    return Shell(resolve(url), settings={}, out=io.StringIO(), err=io.StringIO(), interactive=False)


def test_transactions_typed_in_the_shell_reach_the_server_and_the_prompt_follows(sql):
    from dbsh.repl import toolbar

    kind, url = sql
    t = accounts(kind, url)
    sh = shell(url)
    try:
        assert sh.run_statement("BEGIN;") == 0
        assert sh.session.in_transaction and "*>" in toolbar.prompt_text(sh)
        assert sh.run_statement(f"UPDATE {t} SET n = 0 WHERE id = 1;") == 0
        assert sh.run_statement(f'\\insert {t} {{"id": 9, "n": 9}}') == 0      # the verbs join it
        assert sh.run_statement(f'\\update {t} {{"id": 2}} {{"$set": {{"n": 0}}}}') == 0
        assert native(kind, url, f"select id, n from {t} order by id") == [(1, 10), (2, 20)]
        assert sh.run_statement("ROLLBACK;") == 0
        assert not sh.session.in_transaction and "*" not in toolbar.prompt_text(sh)
        assert sh.run_statement("BEGIN;" if kind == "sqlite" else "START TRANSACTION;") == 0
        assert sh.run_statement(f"UPDATE {t} SET n = 11 WHERE id = 1;") == 0
        assert sh.run_statement("\\commit") == 0        # the alias ends the server's transaction
        assert native(kind, url, f"select id, n from {t} order by id") == [(1, 11), (2, 20)]
        assert sh.run_statement(f'\\insert {t} {{"id": 7, "n": 7}}') == 0      # no transaction: its own, committed
        assert native(kind, url, f"select count(*) from {t} where id = 7") == [(1,)]
        assert sh.run_statement("BEGIN;") == 0
        assert sh.run_statement(f"UPDATE {t} SET n = 0 WHERE id = 1;") == 0
    finally:
        sh.close()   # \q with a transaction open: rolled back, with a notice
    assert "rolled back" in sh.err.getvalue().splitlines()[-1]
    assert native(kind, url, f"select n from {t} where id = 1") == [(11,)]


def test_a_failed_statement_in_a_postgres_transaction_says_it_is_aborted(postgres_url):
    url = postgres_url
    t = accounts("postgres", url)
    sh = shell(url)
    try:
        assert sh.run_statement("\\begin") == 0
        assert sh.run_statement(f"UPDATE {t} SET n = 0 WHERE id = 1;") == 0
        assert sh.run_statement("select * from no_such_table_here;") == 1
        assert sh.run_statement("select 1;") == 1
        assert sh.session.in_transaction
        assert sh.run_statement("ROLLBACK;") == 0
        assert sh.run_statement("select 2 as two;") == 0
    finally:
        sh.close()
    errors = sh.err.getvalue().splitlines()
    assert errors[0].startswith('dbsh: error: relation "no_such_table_here" does not exist')
    assert errors[0].endswith("(the transaction is aborted: ROLLBACK or \\rollback ends it)")
    assert errors[1].startswith("dbsh: error: current transaction is aborted")
    assert not any("reconnected" in e for e in errors)
    assert native("postgres", url, f"select n from {t} where id = 1") == [(10,)]


def test_statements_that_cannot_run_in_a_transaction_run_in_autocommit(postgres_url):
    db = name("dbsh_db")
    run = dbsh("-u", postgres_url, "--yes", "query", f"CREATE DATABASE {db}; DROP DATABASE {db}; VACUUM")
    assert run.code == 0, run.err
    t = name()
    native("postgres", postgres_url, f"create table {t} (n int)")
    assert dbsh("-u", postgres_url, "query", f"CREATE INDEX CONCURRENTLY {t}_n ON {t} (n)").code == 0
    run = dbsh("-u", postgres_url, input=f"BEGIN;\nCREATE DATABASE {db};\n")
    assert run.code == 1 and "cannot run inside a transaction block" in run.err


# -- several statements, parameters --------------------------------------------------------------

def test_several_statements_in_one_text_run_in_order_each_result_printed(sql):
    kind, url = sql
    t = name()
    text = f"create table {t} (n integer); insert into {t} values (1), (2); select n from {t} order by n; " \
           f"select count(*) as c from {t}"
    run = dbsh("-u", url, "query", text)
    assert run.code == 0, run.err
    assert run.json_lines()[-3:] == [{"n": 1}, {"n": 2}, {"c": 2}]
    assert run.json_lines()[1] == {"message": "2 rows affected"}
    run = dbsh("-u", url, "query", "-", input="select 'a;b' as s; -- a ; in a comment\nselect 2 as two;\n")
    assert run.json_lines() == [{"s": "a;b"}, {"two": 2}]


def test_parameters_only_outside_literals_and_comments(sql):
    kind, url = sql
    run = dbsh("-u", url, "query", """select '{"a":1}' as j, ':x' as k -- :note""")
    assert (run.code, run.json_lines()) == (0, [{"j": '{"a":1}', "k": ":x"}]), run.err
    run = dbsh("-u", url, "query", "select 'a%b' as p, :v as v, '%s' as s", "-p", "v=50%")
    assert run.json_lines() == [{"p": "a%b", "v": "50%", "s": "%s"}], run.err
    run = dbsh("-u", url, "query", "select 'a%b' as p")
    assert run.json_lines() == [{"p": "a%b"}]
    run = dbsh("-u", url, "query", "select :missing as m /* :not_this */")
    assert (run.code, run.err) == (2, "dbsh: error: missing parameter :missing (pass -p name=value)\n")
    if kind == "postgres":
        run = dbsh("-u", url, "query", "select :n::int + 1 as n, '1'::int as m, $$ :no $$ as d", "-p", "n=41")
        assert run.json_lines() == [{"n": 42, "m": 1, "d": " :no "}]


# -- filters ------------------------------------------------------------------------------------

def test_filters_keep_mongodbs_meaning(sql):
    kind, url = sql
    t = name("shoes")
    docs = [{"id": 1, "name": "Ann", "sizes": [40, 41]}, {"id": 2, "name": "ann", "sizes": [42]},
            {"id": 3, "name": "Bo", "sizes": 41}, {"id": 4, "name": "b\nx", "sizes": ["41"]},
            {"id": 5, "name": None, "sizes": None}]
    assert dbsh("-u", url, "insert", t, *map(json.dumps, docs), "--create").code == 0

    def ids(flt, *more):
        run = dbsh("-u", url, "find", t, json.dumps(flt), "--fields", "id", "--sort", "id", *more)
        assert run.code == 0, run.err
        return [r["id"] for r in run.json_lines()]

    assert ids({"name": {"$regex": "^a"}}) == [2]                         # case-sensitive, whatever the collation
    assert ids({"name": {"$regex": "^a", "$options": "i"}}) == [1, 2]
    assert ids({"name": {"$regex": "^b.x$"}}) == []                        # '.' does not match a newline
    assert ids({"name": {"$regex": "^b.x$", "$options": "s"}}) == [4]
    assert ids({"name": {"$regex": "^x", "$options": "m"}}) == [4]
    assert ids({"sizes": 41}) == [1, 3]                                    # an element of the array, or the value
    assert ids({"sizes": "41"}) == [4]                                     # a string is not a number
    assert ids({"sizes": {"$in": [42, 40]}}) == [1, 2]
    assert ids({"sizes": {"$ne": 41}}) == [2, 4, 5]
    assert ids({"sizes": {"$nin": [41, 42]}}) == [4, 5]
    assert ids({"sizes": None}) == [5]
    run = dbsh("-u", url, "find", t, '{"sizes": {"$gt": 40}}')
    assert run.code == 2 and "$gt on the JSON column 'sizes' is not supported on" in run.err
    assert len(run.err.splitlines()) == 1
    assert dbsh("-u", url, "count", t, '{"sizes": 41}').json_lines() == [{"count": 2}]


def test_sort_puts_nulls_first_as_mongodb_does(sql):
    kind, url = sql
    t = name()
    dbsh("-u", url, "insert", t, '{"n": 2}', '{"n": null}', '{"n": 1}', "--create")
    run = dbsh("-u", url, "find", t, "--sort", "n", "--fields", "n")
    assert [r["n"] for r in run.json_lines()] == [None, 1, 2]
    run = dbsh("-u", url, "find", t, "--sort", "-n", "--fields", "n")
    assert [r["n"] for r in run.json_lines()] == [2, 1, None]


# -- values and names -----------------------------------------------------------------------------

def test_decimals_are_exact_json_numbers_of_one_type(sql):
    kind, url = sql
    if kind == "sqlite":
        pytest.skip("SQLite has no decimal type: NUMERIC columns hold integers and floats")
    t = name()
    native(kind, url, f"create table {t} (id integer primary key, d numeric(30, 6))")
    native(kind, url, f"insert into {t} values (1, 1.5), (2, 12345678901234567890.123456), (3, 0.1), (4, 2)")
    run = dbsh("-u", url, "find", t, "--sort", "id", "--fields", "d")
    assert run.out.splitlines() == ['{"d":1.500000}', '{"d":12345678901234567890.123456}', '{"d":0.100000}',
                                    '{"d":2.000000}']
    assert dbsh("-u", url, "find", t, "--sort", "id", "--fields", "d", "--format", "csv").out.splitlines() == \
        ["d", "1.500000", "12345678901234567890.123456", "0.100000", "2.000000"]


def test_interval_and_bytea_on_postgres(postgres_url):
    run = dbsh("-u", postgres_url, "query", r"select interval '1 month 2 days 03:00:00' as i, '\xde00ff'::bytea as b, "
                                            r"'abc'::bytea as t")
    assert run.json_lines() == [{"i": "1 mon 2 days 03:00:00", "b": {"$binary": {"base64": "3gD/", "subType": "00"}},
                                 "t": "abc"}]
    # bytes that are not UTF-8: escaped once, in tsv as in csv (\xHH, and \\ for a backslash: the
    # escapes of PostgreSQL's COPY text format, which tsv writes)
    for fmt in ("tsv", "csv"):
        run = dbsh("-u", postgres_url, "-f", fmt, "query", r"select '\xde5c09ff'::bytea as b")
        assert run.out == "b\n" + r"\xde\\\t\xff" + "\n"


def test_mariadb_time_is_text_as_the_server_writes_it(mariadb_url):
    run = dbsh("-u", mariadb_url, "query", "select cast('12:30:05' as time) as t, cast('-838:59:59' as time) as u")
    assert run.json_lines() == [{"t": "12:30:05", "u": "-838:59:59"}]


@pytest.mark.parametrize("field", ["we`ird", "50% off", "a\"b", "q?:x", "per%cent`"])
def test_any_name_is_stored_exactly(sql, field):
    kind, url = sql
    t = name("n%`\"")
    run = dbsh("-u", url, "insert", t, json.dumps({field: "v", "n": 1}), "--create")
    assert run.code == 0, run.err
    assert dbsh("-u", url, "find", t, json.dumps({field: "v"})).json_lines() == [{"id": 1, field: "v", "n": 1}]
    assert dbsh("-u", url, "update", t, json.dumps({field: "v"}), json.dumps({"$set": {field: "w"}})).code == 0
    quoted = '"' + t.replace('"', '""') + '"' if kind != "mariadb" else "`" + t.replace("`", "``") + "`"
    column = '"' + field.replace('"', '""') + '"' if kind != "mariadb" else "`" + field.replace("`", "``") + "`"
    assert native(kind, url, f"select {column}, n from {quoted}") == [("w", 1)]


def test_a_name_the_database_would_cut_short_is_refused(postgres_url):
    run = dbsh("-u", postgres_url, "insert", "t" * 64, '{"a": 1}', "--create")
    assert run.code == 2 and "at most 63 bytes" in run.err


def test_concurrent_imports_with_create_into_one_new_table_all_land(sql, tmp_path, dbsh_env):
    kind, url = sql
    t = name("par")
    procs = []
    for i in range(8):
        path = tmp_path / f"p{i}.jsonl"
        path.write_text("".join(json.dumps({"w": i, "k": j, f"extra{i % 3}": j}) + "\n" for j in range(2500)))
        procs.append(subprocess.Popen([sys.executable, "-m", "dbsh", "-u", url, "insert", t, "--file", str(path),
                                       "--create", "--batch", "500"], env=dbsh_env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    results = [(p.wait(timeout=240), p.stderr.read()) for p in procs]
    assert all(code == 0 for code, _ in results), results
    assert native(kind, url, f"select w, count(*), count(distinct k) from {t} group by w order by w") == \
        [(i, 2500, 2500) for i in range(8)]


def test_numbers_sqlite_cannot_hold_are_one_line_usage_errors(tmp_path):
    url = f"sqlite:///{tmp_path}/n.db"
    run = dbsh("-u", url, "insert", "t", '{"a": 123456789012345678901234567890}', "--create")
    assert (run.code, run.err) == (2, "dbsh: error: integer out of range: SQLite stores integers in 64 bits "
                                      "(up to 9223372036854775807)\n")
    run = dbsh("-u", url, "insert", "t", '{"a": 1e400}', "--create")
    assert (run.code, len(run.err.splitlines())) == (2, 1) and "1e400" in run.err
    path = tmp_path / "big.jsonl"
    path.write_text('{"a": 1}\n{"a": 1e400}\n')
    run = dbsh("-u", url, "insert", "t", "--file", str(path), "--create")
    assert run.code == 2 and "line 2" in run.err and "1e400 is out of range" in run.err


@pytest.mark.parametrize("scheme", ["sqlite+pysqlite", "postgresql+psycopg", "mysql+pymysql"])
def test_sqlalchemy_style_urls_are_accepted(scheme, request, tmp_path):
    base = scheme.split("+")[0]
    if base == "sqlite":
        url = f"{scheme}:///{tmp_path}/a.db"
    else:
        url = request.getfixturevalue("postgres_url" if base == "postgresql" else "mariadb_url")
        url = scheme + url[url.index("://"):]
    t = name()
    assert dbsh("-u", url, "insert", t, '{"a": 1}', "--create").code == 0
    assert dbsh("-u", url, "find", t).json_lines() == [{"id": 1, "a": 1}]


def test_a_find_on_sqlite_imports_no_sqlalchemy(tmp_path, dbsh_env):
    url = f"sqlite:///{tmp_path}/x.db"
    assert dbsh("-u", url, "insert", "people", '{"name": "Jill", "count": 15}', "--create").code == 0
    code = ("import sys; from dbsh.cli import run\n"
            f"code = run(['-u', {url!r}, 'find', 'people', '{{\"count\": {{\"$gt\": 5}}}}'])\n"
            "heavy = ('sqlalchemy', 'alembic', 'psycopg', 'pymysql', 'typer', 'importlib.metadata')\n"
            "print(code, ' '.join(m for m in heavy if m in sys.modules), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dbsh_env)
    assert proc.stdout == '{"id":1,"name":"Jill","count":15}\n'
    assert proc.stderr.strip() == "0", proc.stderr


def test_bench_runs_on_the_sessions_own_connection(tmp_path):
    url = f"sqlite:///{tmp_path}/y.db"
    run = dbsh("-u", url, "bench", "--workload", "a", "--records", "50", "--operations", "100", "-f", "json")
    assert run.code == 0, run.err
    assert native("sqlite", url, "select count(*) from usertable") == [(50,)]
    assert os.path.exists(f"{tmp_path}/y.db")


def test_include_stops_at_an_error_and_rolls_its_transaction_back(sql, tmp_path):
    kind, url = sql
    t = accounts(kind, url)
    script = tmp_path / "s.sql"
    script.write_text(f"BEGIN;\nUPDATE {t} SET n = 5 WHERE id = 1;\nUPDATE {t} SET n = -1 WHERE id = 2;\nCOMMIT;\n")
    sh = shell(url)
    try:
        assert sh.run_statement(f"\\i {script}") == 1
        assert not sh.session.in_transaction
    finally:
        sh.close()
    assert "the open transaction was rolled back (the script stopped at an error)" in sh.err.getvalue()
    assert native(kind, url, f"select id, n from {t} order by id") == [(1, 10), (2, 20)]


def test_describe_and_explain_from_the_catalog(sql):
    kind, url = sql
    t = name()
    native(kind, url, f"create table {t} (id integer primary key, email varchar(80) not null, n integer)")
    native(kind, url, f"create unique index {t}_email on {t} (email)")
    described = dbsh("-u", url, "describe", t).json_lines()
    # (SQLite's PRAGMA table_info says a primary key without NOT NULL is nullable, as SQLite allows)
    assert [(c["column"], c["primary_key"], c["nullable"]) for c in described] == \
        [("id", True, kind == "sqlite"), ("email", False, False), ("n", False, True)]
    assert described[1]["indexes"] == f"{t}_email (unique)"
    run = dbsh("-u", url, "explain", t, '{"email": "x"}')
    assert run.code == 0 and run.json_lines(), run.err
