"""The shell on the server backends: completion lists from each real server, confirmations in
every language, read-only sessions, reconnects and Ctrl-C. Data is checked with the native client."""

from __future__ import annotations

import io
import re
import shutil
import sys
import time
import uuid

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from dbsh.repl.app import Shell
from dbsh.target import resolve
from tests.test_repl import Typed


def open_shell(url) -> Shell:
    """A shell whose catalog has been fetched (tests wait for it; the prompt never does)."""
    pipe_cm = create_pipe_input()
    pipe = pipe_cm.__enter__()
    shell = Shell(resolve(url), settings={}, out=io.StringIO(), err=io.StringIO(), pt_input=pipe,
                  pt_output=DummyOutput())
    shell.prompt_session = shell._prompt_session()
    shell._pipe = pipe_cm
    shell.pipe = pipe
    assert shell.catalog.wait(120), "the catalog never arrived"
    assert shell.catalog.error is None, shell.catalog.error
    return shell


def done(shell: Shell) -> None:
    shell.close()
    shell._pipe.__exit__(None, None, None)


def completions(shell, text):
    return [c.text for c in shell.prompt_session.completer.get_completions(Document(text), CompleteEvent())]


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


# -- PostgreSQL --------------------------------------------------------------------------------

@pytest.fixture
def pg(postgres_url):
    import psycopg

    table = unique("people")
    with psycopg.connect(postgres_url.replace("postgresql://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute(f"create table {table} (id serial primary key, name text, age int)")
        conn.execute(f"insert into {table} (name, age) values ('Ann', 34), ('Bob', 20)")
    yield postgres_url, table
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"drop table if exists {table}")


def pg_rows(url, sql):
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def test_postgres_completion_from_the_live_catalog(pg):
    url, table = pg
    shell = open_shell(url)
    try:
        assert completions(shell, f"select * from {table[:9]}") == [table]
        assert completions(shell, f"select {table}.") == ["id", "name", "age"]
        assert completions(shell, f"\\describe {table[:9]}") == [table]
        assert completions(shell, f'\\find {table} {{"ag') == ["age"]
    finally:
        done(shell)


def test_postgres_readonly_is_a_server_side_read_only_session(pg):
    url, table = pg
    run = Typed(url, f"\\readonly on\rinsert into {table} (name) values ('No');\r"
                     f"\\begin\rupdate {table} set age = 1 where name = 'Ann';\r\\rollback\r"
                     f"select count(*) as n from {table};\r\\q\r")
    errors = run.errors.splitlines()
    assert errors[0] == "dbsh: error: cannot execute INSERT in a read-only transaction"
    # inside \begin, a failed statement aborts the PostgreSQL transaction: the error says so
    assert errors[1] == ("dbsh: error: cannot execute UPDATE in a read-only transaction (the transaction is aborted: "
                         "ROLLBACK or \\rollback ends it)")
    assert pg_rows(url, f"select name, age from {table} order by id") == [("Ann", 34), ("Bob", 20)]


def test_postgres_transaction_in_the_shell(pg):
    url, table = pg
    Typed(url, f"\\begin\rinsert into {table} (name, age) values ('Tx', 1);\r\\rollback\r"
               f"\\begin\rupdate {table} set age = 35 where name = 'Ann';\r\\commit\r\\q\r")
    assert pg_rows(url, f"select name, age from {table} order by id") == [("Ann", 35), ("Bob", 20)]


def test_postgres_dropped_connection_reconnects_on_the_next_command(pg):
    import psycopg

    url, table = pg
    shell = Shell(resolve(url), settings={}, out=io.StringIO(), err=io.StringIO(), interactive=False)
    try:
        assert shell.run_statement("\\begin") == 0
        assert shell.run_statement(f"insert into {table} (name) values ('lost');") == 0
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("select pg_terminate_backend(pid) from pg_stat_activity "
                          "where application_name = 'dbsh' and pid <> pg_backend_pid()")
        assert shell.run_statement("select 1;") == 3          # a lost connection is exit 3, as on connect
        assert shell.run_statement("select 2 as two;") == 0
    finally:
        shell.close()
    errors = shell.err.getvalue().splitlines()
    assert errors[0].startswith("dbsh: error: lost the connection to ")
    assert "terminating connection due to administrator command" in errors[0]
    assert errors[1] == f"the connection was lost; reconnected to {resolve(url).display()}"
    assert shell.out.getvalue().splitlines()[-1] == '{"two":2}'
    assert pg_rows(url, f"select count(*) from {table} where name = 'lost'") == [(0,)]


SLEEPING = "select pid from pg_stat_activity where wait_event = 'PgSleep'"


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (scripts/install-test-deps)")
def test_postgres_ctrl_c_cancels_the_running_query_and_keeps_the_shell(pg, tmp_path, dbsh_env):
    from tests.test_repl_tmux import Terminal

    url, table = pg
    term = Terminal(tmp_path, [sys.executable, "-m", "dbsh", "-u", url], dbsh_env)
    try:
        term.wait_for("dbsh_test>")
        term.type("select pg_sleep(600);")
        term.keys("Enter")
        deadline = time.monotonic() + 60
        while not pg_rows(url, SLEEPING):
            assert time.monotonic() < deadline, term.screen()
            time.sleep(0.05)
        term.keys("C-c")
        term.wait_for("cancelled")
        term.type(f"select name from {table} where age = 20;")
        term.keys("Enter")
        term.wait_for(" Bob")
        assert pg_rows(url, SLEEPING) == []
        assert "password" not in term.screen() and url.split(":")[2].split("@")[0] not in term.screen()
    finally:
        term.close()


# -- MariaDB -----------------------------------------------------------------------------------

def test_mariadb_readonly_session(mariadb_url):
    import pymysql

    from dbsh.target import Target

    table = unique("t")
    run = Typed(mariadb_url, f"create table {table} (id int primary key, name text);\r\\readonly on\r"
                             f"insert into {table} values (1, 'No');\r\\readonly off\r"
                             f"insert into {table} values (2, 'Yes');\r\\q\r", yes=True)
    shell = open_shell(mariadb_url)
    try:
        assert completions(shell, f"select * from {table[:6]}") == [table]
        assert completions(shell, f"select {table}.") == ["id", "name"]
    finally:
        done(shell)
    first = run.errors.splitlines()[0]
    assert first.startswith("dbsh: error: ") and "Cannot execute statement in a READ ONLY transaction" in first
    t = Target(mariadb_url)
    conn = pymysql.connect(host="127.0.0.1", port=t.parts.port, user=t.username, password=t.password,
                           database=t.parts.path.lstrip("/"))
    try:
        with conn.cursor() as cur:
            cur.execute(f"select id, name from {table}")
            assert cur.fetchall() == ((2, "Yes"),)
            cur.execute(f"drop table {table}")
    finally:
        conn.close()


# -- Redis -------------------------------------------------------------------------------------

@pytest.fixture
def redis_client(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    client.hset("users:1", mapping={"name": "Ann", "age": "34"})
    client.hset("users:2", mapping={"name": "Bob", "city": "Oslo"})
    client.set("counter", "7")
    yield client
    client.flushdb()
    client.close()


def test_redis_completion_lists_prefixes_fields_and_commands(redis_url, redis_client):
    shell = open_shell(redis_url)
    try:
        assert completions(shell, "HGETALL us") == ["users:", "users:1", "users:2"]     # prefixes, then keys
        assert completions(shell, "\\find users {\"ci") == ["city"]
        assert completions(shell, "hgeta") == ["hgetall"] and completions(shell, "HGETA") == ["HGETALL"]
    finally:
        done(shell)


def test_redis_one_line_per_command_flushdb_asks_readonly_refuses(redis_url, redis_client):
    run = Typed(redis_url, "HGET users:1 name\rFLUSHDB\rn\r\\readonly on\rSET counter 8\rGET counter\r"
                           "\\insert users {\"id\": 3, \"name\": \"Cy\"}\r\\q\r")
    assert "Ann" in run.output and "7" in run.output
    assert run.errors.splitlines() == [
        "not run",
        "dbsh: error: read-only connection: a statement that may write on Redis is refused; \\readonly off allows "
        "writes",
        "dbsh: error: read-only connection: insert is refused; \\readonly off allows writes",
    ]
    assert redis_client.get("counter") == "7" and redis_client.exists("users:3") == 0
    assert redis_client.dbsize() == 3


# -- MongoDB (SecantusDB stand-in) -------------------------------------------------------------

@pytest.fixture
def mongo_db(mongo_url):
    import pymongo

    client = pymongo.MongoClient(mongo_url)
    db = client.get_default_database()
    name = unique("users")
    db[name].insert_many([{"name": "Ann", "age": 34, "address": {"city": "Oslo"}}, {"name": "Bob", "age": 20}])
    yield db, name
    db[name].drop()
    client.close()


@pytest.mark.secantusdb
def test_mongo_completion_collections_methods_fields(mongo_url, mongo_db):
    db, name = mongo_db
    shell = open_shell(mongo_url)
    try:
        assert name in completions(shell, "db.us")
        assert completions(shell, f"db.{name}.fin") == ["find", "findOne", "findOneAndUpdate", "findOneAndDelete"]
        assert completions(shell, f'db.{name}.find({{"ag') == ["age"]
        assert "address.city" in completions(shell, f'\\find {name} {{"addr')
    finally:
        done(shell)


@pytest.mark.secantusdb
def test_mongo_multiline_json_confirmation_and_readonly(mongo_url, mongo_db):
    db, name = mongo_db
    run = Typed(mongo_url, f"db.{name}.find(\r{{\"age\": {{\"$gt\": 30}}}})\r"
                           f"db.{name}.deleteMany({{}})\rn\r"
                           f"\\readonly on\rdb.{name}.insertOne({{\"name\": \"No\"}})\r\\q\r")
    assert "Ann" in run.output and "Bob" not in run.output
    assert run.errors.splitlines() == [
        "not run",
        "dbsh: error: read-only connection: a statement that may write on MongoDB is refused; \\readonly off allows "
        "writes",
    ]
    assert db[name].count_documents({}) == 2


# -- Neo4j ---------------------------------------------------------------------------------------

@pytest.fixture
def few_sampled_labels(monkeypatch):
    """The session's graph holds the labels of every test so far: the shell samples the nodes of 5 of
    them (not 200) for its completion, so each catalog refresh here stays short."""
    monkeypatch.setattr("dbsh.drivers.neo4j.session.COMPLETION_LABELS", 5)


def test_cypher_completion_and_detach_delete_confirmation(neo4j_url, few_sampled_labels):
    label = unique("Person")
    shell = open_shell(neo4j_url)
    try:
        assert shell.run_statement(f"CREATE (:{label} {{name: 'Ann', age: 34}});") == 0
        assert shell.catalog.wait(120)
        assert label in completions(shell, f"MATCH (n:{label[:8]}")
        assert "age" in completions(shell, f"MATCH (n:{label}) RETURN n.a")
        shell.pipe.send_text("n\r")
        assert shell.run_statement(f"MATCH (n:{label}) DETACH DELETE n;") == 0     # answered no
        assert shell.run_statement(f"MATCH (n:{label}) RETURN count(n) AS n;") == 0
        shell.pipe.send_text("y\r")
        assert shell.run_statement(f"MATCH (n:{label}) DETACH DELETE n;") == 0     # answered yes
        assert shell.run_statement(f"MATCH (n:{label}) RETURN count(n) AS n;") == 0
    finally:
        done(shell)
    assert shell.err.getvalue() == "not run\n"
    counts = [line for line in shell.out.getvalue().splitlines() if line.strip() in ("0", "1")]
    assert counts == [" 1 ", " 0 "]


def test_cypher_completion_offers_every_label_and_only_property_keys(neo4j_url, few_sampled_labels):
    """Labels come from db.labels() however many there are; fields are property keys (not the names of
    indexes or relationship types), from sampled nodes or, past the first COMPLETION_LABELS labels (200;
    5 here), db.propertyKeys()."""
    tag = uuid.uuid4().hex[:6]
    first = f"A{tag}"                               # sorted before every other label of the test graph
    many = [f"B{tag}_{i}" for i in range(8)]        # more labels than the shell samples nodes of
    last = f"Zz{tag}"                               # sorted after all of them
    cypher(neo4j_url, f"CREATE (:{first} {{zeta: 1}})-[:LINKS_{tag}]->(:{first} {{zeta: 2, eta: 3}})")
    cypher(neo4j_url, f"CREATE INDEX idx_{tag} FOR (n:{first}) ON (n.zeta)")
    cypher(neo4j_url, "CREATE " + ", ".join(f"(:{name} {{k{i % 3}: 1}})" for i, name in enumerate(many)))
    cypher(neo4j_url, f"CREATE (:{last} {{omega{tag}: 1}})")
    try:
        shell = open_shell(neo4j_url)
        try:
            assert completions(shell, f'\\find {first} {{"') == ["eta", "zeta"]
            assert completions(shell, f'\\find B{tag}_2 {{"') == ["k2"]
            assert completions(shell, f"MATCH (n:B{tag}_") == many
            assert completions(shell, f"MATCH (n:Zz{tag[:3]}") == [last]
            assert f"omega{tag}" in completions(shell, f'\\find {last} {{"omega')   # db.propertyKeys()
        finally:
            done(shell)
    finally:
        cypher(neo4j_url, f"DROP INDEX idx_{tag}")
        cypher(neo4j_url, f"MATCH (n) WHERE any(l IN labels(n) WHERE l STARTS WITH 'B{tag}_' OR l IN [$a, $z]) "
                          "DETACH DELETE n", a=first, z=last)


def cypher(url, text, **params) -> list[dict]:
    from urllib.parse import urlsplit

    import neo4j

    parts = urlsplit(url)
    with neo4j.GraphDatabase.driver(f"bolt://{parts.hostname}:{parts.port}",
                                    auth=(parts.username, parts.password)) as driver:
        records, _, _ = driver.execute_query(text, params)
    return [r.data() for r in records]


def neo4j_count(url, label) -> int:
    return cypher(url, f"MATCH (n:`{label}`) RETURN count(n) AS c")[0]["c"]


def test_cypher_failed_statement_in_a_transaction_then_rollback_leaves_nothing(neo4j_url):
    label = unique("Tx")
    run = Typed(neo4j_url, f"\\begin\rCREATE (:{label} {{n: 1}});\rRETURN 1/0;\rCREATE (:{label} {{n: 2}});\r"
                           f"\\rollback\rMATCH (n:{label}) RETURN count(n) AS c;\r"
                           f"\\begin\rCREATE (:{label} {{n: 3}});\rRETURN nope;\r\\commit\r"
                           f"\\begin\rCREATE (:{label} {{n: 4}});\r\\commit\r\\q\r")
    assert run.errors.splitlines() == [
        "dbsh: error: / by zero (Neo.ClientError.Statement.ArithmeticError)",
        "dbsh: error: the transaction failed at an earlier statement and the server rolled it back: "
        "\\rollback ends it",
        "dbsh: error: Variable `nope` not defined (line 1, column 8 (offset: 7)) "
        "(Neo.ClientError.Statement.SyntaxError)",
        "dbsh: error: the transaction failed at an earlier statement and the server rolled it back: "
        "nothing was committed",
    ]   # and never "the connection was lost": it was not
    assert run.output.splitlines()[1:4] == [" c ", "───", " 0 "]
    assert neo4j_count(neo4j_url, label) == 1   # only the committed n: 4


def test_cypher_transaction_commit_and_rollback_in_the_shell(neo4j_url):
    label = unique("Tx")
    shell = Shell(resolve(neo4j_url), settings={}, out=io.StringIO(), err=io.StringIO(), interactive=False)
    try:
        assert shell.run_statement("\\begin") == 0 and shell.in_transaction()
        assert shell.run_statement(f"CREATE (:{label} {{n: 1}});") == 0
        assert neo4j_count(neo4j_url, label) == 0      # not visible outside before the commit
        assert shell.run_statement("\\rollback") == 0 and not shell.in_transaction()
        assert shell.run_statement("\\begin") == 0
        assert shell.run_statement(f"CREATE (:{label} {{n: 2}});") == 0
        assert shell.run_statement("\\commit") == 0
    finally:
        shell.close()
    assert shell.err.getvalue() == ""
    assert neo4j_count(neo4j_url, label) == 1


# -- CouchDB (pouchdb-server stand-in) ---------------------------------------------------------

@pytest.mark.pouchdb
def test_couchdb_completion_multiline_body_and_delete_database_asks(couchdb_url):
    import httpx

    server = httpx.Client(base_url=couchdb_url.replace("couchdb://", "http://", 1), timeout=10)
    name = unique("shop")
    assert server.put(f"/{name}").status_code in (201, 202)
    assert server.post(f"/{name}/_bulk_docs", json={"docs": [{"_id": "a", "name": "Ann", "age": 34},
                                                             {"_id": "b", "name": "Bob", "age": 20}]}).is_success
    try:
        shell = open_shell(couchdb_url)
        try:
            assert name in completions(shell, f"GET /{name[:6]}")
            assert "age" in completions(shell, f'\\find {name} {{"a')
        finally:
            done(shell)
        run = Typed(couchdb_url, f'\\format jsonl\rPOST /{name}/_find {{"selector":\r {{"age": {{"$gt": 30}}}},\r'
                                 f' "fields": ["name"]}}\rDELETE /{name}\rn\r\\q\r')
        assert '"Ann"' in run.output and '"Bob"' not in run.output
        assert run.errors.splitlines() == ["format: jsonl", "not run"]
        assert server.get(f"/{name}").json()["doc_count"] == 2
    finally:
        server.delete(f"/{name}")
        server.close()


# -- Cassandra (Apache Cassandra 5.0) ---------------------------------------------------------

def test_cassandra_completion_and_truncate_asks(cassandra_url):
    table = unique("people")
    run = Typed(cassandra_url, f"CREATE TABLE {table} (id int PRIMARY KEY, name text);\r"
                               f"INSERT INTO {table} (id, name) VALUES (1, 'Ann');\r"
                               f"TRUNCATE {table};\rn\r\\q\r")
    assert run.errors == "not run\n"
    shell = open_shell(cassandra_url)
    try:
        assert table in completions(shell, f"SELECT * FROM {table[:9]}")
        assert shell.run_statement(f"SELECT count(*) AS n FROM {table};") == 0
        assert shell.out.getvalue().splitlines()[-2:] == [" 1 ", "(1 row)"]   # TRUNCATE was not run
        shell.pipe.send_text("y\r")
        assert shell.run_statement(f"DROP TABLE {table};") == 0
        assert shell.out.getvalue().splitlines()[-1] == "OK"
    finally:
        done(shell)
    from tests.servers import cassandra_cluster

    with cassandra_cluster(cassandra_url) as cluster:
        keyspace = cassandra_url.split("?", 1)[0].rsplit("/", 1)[1]
        assert not cluster.connect().execute("SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s "
                                             "AND table_name = %s", (keyspace, table)).all()


# -- bodies on the real servers: MariaDB DELIMITER routines, PostgreSQL $$ functions ------------

def _three_ways(url, script: str, tmp_path):
    """The script typed at the prompt, run with \\i, and piped into `dbsh`: each must succeed."""
    from tests.dbshtest import dbsh

    typed = Typed(url, script.replace("\n", "\r") + "\\q\r", yes=True)
    assert "error" not in typed.errors, typed.errors
    path = tmp_path / "script.sql"
    path.write_text(script)
    included = Typed(url, f"\\i {path}\r\\q\r", yes=True)
    assert "error" not in included.errors, included.errors
    piped = dbsh("-u", url, "--yes", input=script)
    assert piped.code == 0, piped.err
    return typed, included, piped


def test_mariadb_routines_with_delimiter_and_without(mariadb_url, tmp_path):
    import pymysql

    from dbsh.target import Target

    name = unique("p")
    script = (f"DROP PROCEDURE IF EXISTS {name};\n"
              "DELIMITER //\n"
              f"CREATE PROCEDURE {name}(IN x INT)\n"
              "BEGIN\n"
              "  IF x > 0 THEN SELECT 'positive' AS s; ELSE SELECT 'not' AS s; END IF;\n"
              "END //\n"
              "DELIMITER ;\n"
              f"CALL {name}(1);\n"
              f"DROP FUNCTION IF EXISTS {name}_f;\n"
              f"CREATE FUNCTION {name}_f(x INT) RETURNS INT DETERMINISTIC\n"
              "BEGIN\n"
              "  DECLARE y INT DEFAULT 0;\n"
              "  WHILE y < x DO SET y = y + 1; END WHILE;\n"
              "  RETURN y * 10;\n"
              "END;\n"
              f"SELECT {name}_f(4) AS f;\n")
    typed, included, piped = _three_ways(mariadb_url, script, tmp_path)
    assert " positive " in typed.output and " 40 " in typed.output
    assert " positive " in included.output and " 40 " in included.output
    assert piped.json_lines()[-1] == {"f": 40} and {"s": "positive"} in piped.json_lines()
    t = Target(mariadb_url)
    conn = pymysql.connect(host="127.0.0.1", port=t.parts.port, user=t.username, password=t.password,
                           database=t.parts.path.lstrip("/"))
    try:
        with conn.cursor() as cur:
            cur.execute("select routine_name from information_schema.routines where routine_name like %s "
                        "order by 1", (f"{name}%",))
            assert cur.fetchall() == ((name,), (f"{name}_f",))
            cur.execute(f"drop procedure {name}")
            cur.execute(f"drop function {name}_f")
    finally:
        conn.close()


def test_postgres_dollar_quoted_function_bodies(postgres_url, tmp_path):
    name = unique("f")
    script = (f"create or replace function {name}(x int) returns int language plpgsql as $$\n"
              "begin\n"
              "  if x > 0 then return x * 10; end if;\n"
              "  return 0;\n"
              "end;\n"
              "$$;\n"
              f"create or replace function {name}_t() returns text language sql as $body$ select 'a;b' $body$;\n"
              f"select {name}(4) as f, {name}_t() as t;\n")
    typed, included, piped = _three_ways(postgres_url, script, tmp_path)
    for run in (typed, included):
        assert " 40 " in run.output and " a;b " in run.output
    assert piped.json_lines()[-1] == {"f": 40, "t": "a;b"}
    assert pg_rows(postgres_url, f"select count(*) from pg_proc where proname like '{name}%'") == [(2,)]
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"drop function {name}; drop function {name}_t")


# -- context-aware completion on the real servers -----------------------------------------------

def test_redis_command_table_from_the_server_hints_and_key_names(redis_url, redis_client):
    from dbsh.repl import redis_commands
    from dbsh.repl.completer import argument_hint

    redis_client.set("user:counter", "1")
    shell = open_shell(redis_url)
    try:
        commands = shell.catalog.snapshot.commands
        assert len(commands) > 200 and commands["HGET"].syntax == "key field"      # COMMAND DOCS answered
        assert commands["HGET"].summary == redis_commands.table()["HGET"].summary   # as the shipped table
        assert set(completions(shell, "HGET ")) == {"users:", "user:", "users:1", "users:2", "counter", "user:counter"}
        assert completions(shell, "HGET users:") == ["users:", "users:1", "users:2"]
        assert completions(shell, "HGET users:1 ") == []            # a field: no key names there
        assert completions(shell, "DEL counter u") == ["user:", "users:", "user:counter", "users:1", "users:2"]
        assert completions(shell, "SET counter 8 E") == ["EX", "EXAT"]
        assert completions(shell, "set counter 8 x") == ["xx"]
        assert completions(shell, "config g") == ["get"]
        assert "zrangebyscore" in completions(shell, "zrange")
        assert argument_hint(shell, "HGET ") == "HGET key field: Get the value of a hash field"
        assert argument_hint(shell, "config get ").startswith("CONFIG GET parameter [parameter ...]")
    finally:
        done(shell)


@pytest.mark.secantusdb
def test_mongo_dotted_paths_complete_their_sub_fields(mongo_url, mongo_db):
    db, name = mongo_db
    db[name].insert_one({"name": "Phone", "specs": {"ram": 8, "cpu": {"cores": 8}}})
    shell = open_shell(mongo_url)
    try:
        assert completions(shell, f"db.{name}.find({{specs.") == ["ram", "cpu", "cpu.cores"]
        assert completions(shell, f'db.{name}.find({{"specs.c') == ["cpu", "cpu.cores"]
        assert completions(shell, f'db.{name}.find({{"address.') == ["city"]
        assert completions(shell, f'\\find {name} {{"specs.') == ["specs.ram", "specs.cpu", "specs.cpu.cores"]
    finally:
        done(shell)


def test_postgres_join_conditions_from_foreign_keys(postgres_url):
    import psycopg

    people, orders = unique("people"), unique("orders")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"create table {people} (id serial primary key, name text)")
        conn.execute(f"create table {orders} (id serial primary key, buyer int references {people}(id), total int)")
    shell = open_shell(postgres_url)
    try:
        assert completions(shell, f"select * from {people} p join {orders} o on ") == ["o.buyer = p.id"]
        assert completions(shell, f"select * from {orders} o where o.") == ["id", "buyer", "total"]
        assert completions(shell, f"select * from {people} p join ")[0] == orders
        shell.run_statement(f"\\d {orders}")
    finally:
        done(shell)
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f"drop table {orders}; drop table {people}")
    assert f"{people}(id)" in shell.out.getvalue()


def test_cypher_completion_of_relationship_types_and_bound_properties(neo4j_url):
    label, kind = unique("Person"), unique("KNOWS").upper()
    shell = open_shell(neo4j_url)
    try:
        assert shell.run_statement(f"CREATE (:{label} {{name: 'Ann', age: 3}})-[:{kind} {{since: 2020}}]->"
                                   f"(:{label} {{name: 'Bob'}});") == 0
        shell.refresh_catalog()
        assert shell.catalog.wait(60)
        assert completions(shell, f"MATCH (a)-[:{kind[:6]}") == [kind]
        assert completions(shell, f"MATCH (a)-[r:{kind[:6]}") == [kind]
        assert set(completions(shell, f"MATCH (p:{label}) RETURN p.")) == {"name", "age"}
        assert "since" in completions(shell, "MATCH ()-[r]->() RETURN r.s")
        shell.pipe.send_text("y\r")
        shell.run_statement(f"MATCH (n:{label}) DETACH DELETE n;")
    finally:
        done(shell)


# -- in a real terminal ------------------------------------------------------------------------------

tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (scripts/install-test-deps)")


def terminal_on(url, tmp_path, dbsh_env):
    from tests.test_repl_tmux import Terminal

    return Terminal(tmp_path, [sys.executable, "-m", "dbsh", "-u", url], dbsh_env)


@tmux
def test_redis_hints_and_key_names_on_a_terminal(redis_url, redis_client, tmp_path, dbsh_env):
    term = terminal_on(redis_url, tmp_path, dbsh_env)
    try:
        term.wait_for("0>")
        term.type("HGET ")
        term.wait_for("HGET key field: Get the value of a hash field")     # the toolbar's hint
        term.type("users:")
        screen = term.wait_for("users:2")                                   # key names, from SCAN
        assert "users:1" in screen and " key" in screen
        term.type("1 name")
        term.keys("Enter")
        term.wait_for("Ann")
        term.keys("C-l")
        term.type("\\l")
        term.keys("Enter")
        screen = term.wait_for(" current")
        screen = term.wait_for(" true")
        assert re.search(r"^ 0 +3 +0 +true", screen, re.M), screen               # db 0 holds the 3 keys
    finally:
        term.close()


@pytest.mark.secantusdb
@tmux
def test_mongo_sub_fields_and_collections_on_a_terminal(mongo_url, mongo_db, tmp_path, dbsh_env):
    # a database of its own: the suite's shared one holds more collections than the shell samples
    # fields of up front (the first 200 by name)
    shared, name = mongo_db
    database = unique("dbsh_fields")
    db = shared.client[database]
    db[name].insert_one({"name": "Phone", "specs": {"ram": 8, "cpu": {"cores": 8}}})
    db["dbsh_migrations"].insert_one({"_id": "r1", "state": "applied"})
    url = mongo_url.split("?", 1)[0].rsplit("/", 1)[0] + "/" + database
    term = terminal_on(url, tmp_path, dbsh_env)
    try:
        term.wait_for(f"{database}>")
        term.type(f"db.{name}.find({{specs.")
        screen = term.wait_for("cpu.cores")
        assert "ram" in screen and "field of specs" in screen
        term.keys("C-c")
        term.type(f"\\dt {name[:6]}*")
        term.keys("Enter")
        screen = term.wait_for("row")
        assert name in screen
        term.keys("C-l")
        term.type("\\dt dbsh_*")
        term.keys("Enter")
        term.wait_for("(0 rows)")
    finally:
        term.close()
        shared.client.drop_database(database)


@tmux
def test_mariadb_delimiter_typed_on_a_terminal(mariadb_url, tmp_path, dbsh_env):
    name = unique("p")
    term = terminal_on(mariadb_url, tmp_path, dbsh_env)
    try:
        term.wait_for("dbsh_test>")
        for line in ("DELIMITER //", f"CREATE PROCEDURE {name}()", "BEGIN", "  SELECT 'inside' AS s;", "END //",
                     "DELIMITER ;", f"CALL {name}();"):
            term.type(line)
            term.keys("Enter")
        term.wait_for(" inside")
        term.keys("C-l")
        term.type(f"DROP PROCEDURE {name};")
        term.keys("Enter")
        term.wait_for("Run it? [y/N]")
        term.type("y")
        term.keys("Enter")
        term.wait_for("rows affected")
    finally:
        term.close()


@tmux
def test_postgres_join_completion_and_a_dollar_body_on_a_terminal(pg, tmp_path, dbsh_env):
    import psycopg

    url, table = pg
    orders = unique("orders")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"create table {orders} (id serial primary key, buyer int references {table}(id))")
    term = terminal_on(url, tmp_path, dbsh_env)
    try:
        term.wait_for("dbsh_test>")
        for _ in range(60):     # the catalog arrives in the background: type again until it has
            term.type(f"select * from {orders} o join {table} p on ")
            term.keys("Tab")
            time.sleep(0.5)
            if "p.id = o.buyer" in term.screen():
                break
            term.keys("C-c")
        term.wait_for("p.id = o.buyer")
        term.keys("C-c")
        for line in (f"create function {table}_f() returns int language plpgsql as $$", "begin",
                     "  return 7;", "end;", "$$;", f"select {table}_f() as f;"):
            term.type(line)
            term.keys("Enter")
        term.wait_for(" 7")
    finally:
        term.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"drop table {orders}; drop function if exists {table}_f")


def test_redis_without_command_docs_completes_from_the_shipped_table(redis_url, redis_client):
    """A server before Redis 7 answers no COMMAND DOCS (its catalog has no command table): the table
    shipped with dbsh answers instead."""
    import dataclasses

    from dbsh.repl import redis_commands
    from dbsh.repl.completer import argument_hint

    shell = open_shell(redis_url)
    try:
        shell.catalog.snapshot = dataclasses.replace(shell.catalog.snapshot, commands={}, vocabulary={})
        assert len(redis_commands.table()) > 300
        assert completions(shell, "xad") == ["xadd"] and completions(shell, "CLIENT KI") == ["KILL"]
        assert completions(shell, "HGETALL users:") == ["users:", "users:1", "users:2"]
        assert argument_hint(shell, "ZADD ").startswith("ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member")
    finally:
        done(shell)
