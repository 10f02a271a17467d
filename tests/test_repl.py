"""The interactive shell on SQLite, driven through prompt_toolkit's pipe input, checked with sqlite3.

Keys go in as a person types them ("\\r" is Enter, "\\x03" Ctrl-C, "\\x04" Ctrl-D, "\\t" Tab).
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import stat
import sys

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from dbsh import statements
from dbsh.repl import toolbar
from dbsh.repl.app import Shell
from dbsh.repl.history import history_path
from dbsh.target import resolve
from tests.dbshtest import dbsh, dbsh_process


@pytest.fixture(autouse=True)
def private_dirs(tmp_path, monkeypatch):
    """History and config in the test's own dirs, never the user's."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("DBSH_CONFIG", raising=False)
    monkeypatch.delenv("DBSH_URL", raising=False)


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table people (id integer primary key, name text, age int)")
        conn.executemany("insert into people (name, age) values (?, ?)", [("Ann", 34), ("Bob", 20), ("Cy", 51)])
    return path


def rows(path, sql):
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


class Typed:
    """A shell session fed with keystrokes; out and err hold what the user saw."""

    def __init__(self, url, keys: str, *, settings=None, target=None, **options):
        self.out, self.err = io.StringIO(), io.StringIO()
        with create_pipe_input() as pipe:
            pipe.send_text(keys)
            self.shell = Shell(target or resolve(url), settings=settings or {}, out=self.out, err=self.err,
                               pt_input=pipe, pt_output=DummyOutput(), **options)
            self.shell.loop()

    @property
    def output(self) -> str:
        return self.out.getvalue()

    @property
    def errors(self) -> str:
        return self.err.getvalue()


def url_of(path) -> str:
    return f"sqlite:///{path}"


# -- statements: multi-line, backslash commands, verbs ------------------------------------------

def test_multiline_sql_ends_at_the_semicolon(db):
    run = Typed(url_of(db), "select name\r  from people\r  where age > 30\r  order by name;\r\\q\r")
    assert run.output.splitlines() == [" name ", "──────", " Ann  ", " Cy   ", "(2 rows)"]
    assert run.errors == ""


def test_two_statements_on_one_line_and_a_semicolon_in_a_string(db):
    run = Typed(url_of(db), "insert into people (name, age) values ('a;b', 1); select count(*) as n from people;\r"
                            "\x04")
    assert rows(db, "select name from people where age = 1") == [("a;b",)]
    assert run.output.splitlines()[-2:] == [" 4 ", "(1 row)"]


def test_backslash_verbs_call_the_cli_functions(db):
    keys = ('\\insert people {"name": "Dee", "age": 40} {"name": "Eve", "age": 19}\r'
            '\\update people {"name": "Dee"} {"$inc": {"age": 1}}\r'
            '\\delete people {"age": {"$lte": 20}}\r'
            '\\find people {"age": {"$gt": 30}} --fields name,age --sort -age --limit 2\r'
            '\\count people\r'
            '\\q\r')
    run = Typed(url_of(db), keys)
    assert rows(db, "select name, age from people order by id") == [("Ann", 34), ("Cy", 51), ("Dee", 41)]
    assert run.output.splitlines() == [
        "inserted 2 rows into people",
        "updated 1 row in people",
        "deleted 2 rows in people",
        " name   age ",
        "────────────",
        " Cy     51  ",
        " Dee    41  ",
        "(2 rows)",
        "3",
    ]


def test_json_filter_may_span_lines(db):
    run = Typed(url_of(db), '\\find people {"age":\r {"$gte": 51}}\r\\q\r')
    assert "Cy" in run.output and "Ann" not in run.output


def test_format_expanded_collections_describe(db):
    keys = "\\format jsonl\r\\dt\r\\d people\r\\format csv\rselect name from people where id = 1;\r" \
           "\\format table\r\\x\rselect name, age from people where id = 1;\r\\q\r"
    run = Typed(url_of(db), keys)
    lines = run.output.splitlines()
    assert lines[0] == '{"name":"people"}'
    assert lines[1].startswith('{"column":"id","type":"INTEGER"')
    assert "name,\nAnn\n" not in run.output and "name\nAnn\n" in run.output
    assert " name   Ann " in run.output and " age    34  " in run.output   # expanded: one field per line
    assert "format: csv" in run.errors and "expanded display is on" in run.errors


def test_bad_input_is_one_line_and_the_shell_goes_on(db):
    run = Typed(url_of(db), '\\find people {"age": {"$near": 1}}\r\\nope\rselect * from nowhere;\r'
                            'select count(*) as n from people;\r\\q\r')
    errors = run.errors.splitlines()
    assert errors[0].startswith("dbsh: error: ") and "$near" in errors[0]
    assert errors[1] == "dbsh: error: unknown command \\nope (\\? lists the commands)"
    assert errors[2] == "dbsh: error: no such table: nowhere"
    assert run.output.splitlines()[-2:] == [" 3 ", "(1 row)"]


def test_help_lists_every_command(db):
    run = Typed(url_of(db), "\\?\r\\q\r")
    for usage in ("\\find COLLECTION", "\\connect URL|NAME", "\\format table|json|jsonl|csv|tsv", "\\readonly",
                  "\\begin", "\\e [FILE]", "\\i FILE", "\\q"):
        assert usage in run.output
    assert "end statements with ';'" in run.output


# -- confirmations, read-only, transactions --------------------------------------------------

def test_destructive_statements_ask_first(db):
    run = Typed(url_of(db), "delete from people;\rn\rupdate people set age = 0;\r\r"
                            "\\delete people {}\rno\rdelete from people where name = 'Bob';\r\\q\r")
    assert rows(db, "select name, age from people order by id") == [("Ann", 34), ("Cy", 51)]
    assert run.errors.splitlines() == ["not run", "not run", "not run"]
    run = Typed(url_of(db), "drop table people;\ry\r\\q\r")
    assert rows(db, "select name from sqlite_master where type = 'table'") == []


def test_yes_skips_confirmations(db):
    Typed(url_of(db), "delete from people;\r\\q\r", yes=True)
    assert rows(db, "select count(*) from people") == [(0,)]


def test_transaction_commit_and_rollback(db):
    keys = ("\\begin\rinsert into people (name, age) values ('Tx', 1);\r\\rollback\r"
            "\\begin\rupdate people set age = 35 where name = 'Ann';\r\\commit\r\\q\r")
    Typed(url_of(db), keys)
    assert rows(db, "select name, age from people order by id") == [("Ann", 35), ("Bob", 20), ("Cy", 51)]


def test_prompt_shows_the_open_transaction_and_read_only(db):
    shell = Shell(resolve(url_of(db)), settings={}, out=io.StringIO(), err=io.StringIO(), interactive=False)
    try:
        assert toolbar.prompt_text(shell) == "shop.db> "
        shell.run_statement("\\begin")
        assert toolbar.prompt_text(shell) == "shop.db*> "
        bar = "".join(text for _, text in toolbar.toolbar(shell)())
        assert " SQLite " in bar and "db: " in bar and "transaction open" in bar
        shell.run_statement("\\rollback")
        shell.run_statement("\\readonly on")
        assert toolbar.prompt_text(shell) == "shop.db(ro)> "
        assert "read-only" in "".join(text for _, text in toolbar.toolbar(shell)())
    finally:
        shell.close()


def test_readonly_on_is_a_server_side_read_only_session(db):
    run = Typed(url_of(db), "\\readonly on\rinsert into people (name) values ('No');\r"
                            "select count(*) as n from people;\r\\readonly off\r"
                            "insert into people (name) values ('Yes');\r\\q\r")
    assert "dbsh: error: attempt to write a readonly database" in run.errors
    assert rows(db, "select name from people where id > 3") == [("Yes",)]


def test_readonly_profile_refuses_writes_outright(db, tmp_path):
    config = tmp_path / "config" / "dbsh" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[profiles.shop]\nurl = "{url_of(db)}"\nreadonly = true\n')
    run = Typed(None, '\\insert people {"name": "No"}\rdelete from people where id = 1;\r\\readonly off\r\\q\r',
                target=resolve(None, "shop"))
    errors = run.errors.splitlines()
    assert errors[0] == "dbsh: error: read-only connection: insert is refused (profile 'shop' has readonly = true)"
    assert errors[1] == "dbsh: error: attempt to write a readonly database"
    assert errors[2] == "dbsh: error: profile 'shop' is read-only (readonly = true in its config)"
    assert rows(db, "select count(*) from people") == [(3,)]


# -- keys: Ctrl-C, Ctrl-D, editor, files --------------------------------------------------------

def test_ctrl_c_clears_the_line_and_ctrl_d_quits(db):
    run = Typed(url_of(db), "delete from people\x03select name from people where id = 2;\r\x04")
    assert rows(db, "select count(*) from people") == [(3,)]
    assert " Bob " in run.output


def test_run_a_file(db, tmp_path):
    script = tmp_path / "load.sql"
    script.write_text("insert into people (name, age) values ('F1', 1);\n\\insert people {\"name\": \"F2\"}\n"
                      "insert into nowhere values (1);\ninsert into people (name) values ('never');\n")
    run = Typed(url_of(db), f"\\i {script}\r\\q\r")
    assert rows(db, "select name from people where id > 3 order by id") == [("F1",), ("F2",)]
    assert run.errors.splitlines() == ["dbsh: error: no such table: nowhere",
                                       f"dbsh: error: stopped running {script} at the first error"]


def test_edit_puts_the_edited_statement_back_at_the_prompt(db, tmp_path, monkeypatch):
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/id = 1/id = 3/' \"$1\"\n")
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("EDITOR", str(editor))
    monkeypatch.delenv("VISUAL", raising=False)
    run = Typed(url_of(db), "select name from people where id = 1;\r\\e\r\r\\q\r")
    assert run.output.split("(1 row)")[1].strip().splitlines()[-1].strip() == "Cy"


def test_row_limit_guard_asks_before_fetching_more(db):
    run = Typed(url_of(db), "select name from people order by id;\rn\rselect name from people order by id;\ry\r\\q\r",
                settings={"row_limit": 2})
    first, second = run.output.split("(2 rows)\n", 1)
    assert "Ann" in first and "Bob" in first and "Cy" not in first
    assert "(stopped after 2 rows; row_limit in the [repl] config)" in second
    assert second.rstrip().endswith("(3 rows)") and " Cy " in second


# -- history -----------------------------------------------------------------------------------

def test_history_is_per_connection_and_never_holds_a_password(db):
    target = resolve(url_of(db))
    Typed(url_of(db), "select 1;\r\\connect postgresql://ann:hunter2@127.0.0.1:1/x?password=hunter3\r\\q\r")
    text = history_path(target).read_text()
    assert "select 1;" in text
    assert "\\connect postgresql://ann:***@127.0.0.1:1/x?password=***" in text
    assert "hunter2" not in text and "hunter3" not in text
    assert history_path(resolve("sqlite:////elsewhere.db")) != history_path(target)


def test_history_recall_with_up_arrow(db):
    Typed(url_of(db), "select name from people where id = 2;\r\\q\r")
    run = Typed(url_of(db), "\x1b[A\x1b[A\r\\q\r")     # Up twice: past \q to the select
    assert " Bob " in run.output


# -- completion --------------------------------------------------------------------------------

def completions(shell, text):
    return [c.text for c in shell.prompt_session.completer.get_completions(Document(text), CompleteEvent())]


def test_completion_from_the_live_schema(db):
    with create_pipe_input() as pipe:
        pipe.send_text("\\q\r")
        shell = Shell(resolve(url_of(db)), settings={}, out=io.StringIO(), err=io.StringIO(), pt_input=pipe,
                      pt_output=DummyOutput())
        shell.prompt_session = shell._prompt_session()
        assert shell.catalog.wait(60)
        assert completions(shell, "select * from pe") == ["people"]
        assert completions(shell, "select people.a") == ["age"]
        assert "name" in completions(shell, "select na")
        assert completions(shell, "sel") == ["select"] and completions(shell, "SEL") == ["SELECT"]
        assert completions(shell, "\\fi") == ["\\find"]
        assert completions(shell, "\\find p") == ["people"]
        assert completions(shell, '\\find people {"a') == ["age"]
        assert completions(shell, "\\format j") == ["json", "jsonl"]
        assert completions(shell, "\\readonly o") == ["on", "off"]
        shell.run_statement("create table orders (id integer primary key, total real);")
        assert shell.catalog.wait(60)
        assert completions(shell, "select * from or") == ["orders"]
        shell.loop()


def test_named_query_names_complete(db):
    from dbsh import config

    config.save_named_query("older", "select name from people where age > $1;")
    config.save_named_query("oldest", "select max(age) from people;")
    with create_pipe_input() as pipe:
        pipe.send_text("\\q\r")
        shell = Shell(resolve(url_of(db)), settings={}, out=io.StringIO(), err=io.StringIO(), pt_input=pipe,
                      pt_output=DummyOutput())
        shell.prompt_session = shell._prompt_session()
        assert completions(shell, "\\n ol") == ["older", "oldest"]
        assert completions(shell, "\\nd olde") == ["older", "oldest"]
        shell.loop()


# -- the command line: `dbsh` alone ------------------------------------------------------------

def test_dbsh_alone_reads_statements_from_stdin(db):
    run = dbsh("-u", url_of(db), input="select name from people\n where id = 1;\n\\count people\n")
    assert (run.code, run.out) == (0, '{"name":"Ann"}\n{"count":3}\n')


def test_stdin_stops_at_the_first_error_with_its_exit_code(db):
    run = dbsh("-u", url_of(db), input="select * from nowhere;\nselect 1;\n")
    assert (run.code, run.out, run.err) == (1, "", "dbsh: error: no such table: nowhere\n")
    run = dbsh("-u", url_of(db), input='\\find people {"age": {"$near": 1}}\n')
    assert run.code == 2


def test_stdin_never_prompts_destructive_needs_yes(db):
    run = dbsh("-u", url_of(db), input="delete from people;\n")
    assert run.code == 2
    assert run.err == ("dbsh: error: refusing without confirmation: delete from people: DELETE without WHERE "
                       "changes every row (pass --yes to run it)\n")
    assert rows(db, "select count(*) from people") == [(3,)]
    run = dbsh("-u", url_of(db), "--yes", input="delete from people;\n")
    assert (run.code, rows(db, "select count(*) from people")) == (0, [(0,)])


def test_dbsh_alone_uses_the_embedded_default():
    run = dbsh_process(input="create table notes (body text);\ninsert into notes values ('hi');\n"
                             "select body from notes;\n")
    assert (run.code, run.out.splitlines()[-1]) == (0, '{"body":"hi"}')
    from dbsh.config import data_dir

    assert rows(data_dir() / "dbsh.db", "select body from notes") == [("hi",)]


def test_connect_in_a_pipeline_only_reports(db):
    run = dbsh("connect", url_of(db), "--format", "jsonl")
    assert run.code == 0 and run.json_lines()[0]["backend"] == "SQLite"


def test_help_does_not_import_prompt_toolkit():
    code = ("import sys; sys.argv = ['dbsh', 'find', '--help']\n"
            "from dbsh.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('prompt_toolkit' in sys.modules, file=sys.stderr)")
    import subprocess

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ)
    assert done.stderr.strip().splitlines()[-1] == "False"


# -- the scanner: where statements end, what they do ------------------------------------------

@pytest.mark.parametrize("text, language, terminator, complete", [
    ("select 1", "sql", ";", False),
    ("select ';'", "sql", ";", False),
    ("select ';';", "sql", ";", True),
    ("select 1 -- done;", "sql", ";", False),
    ("select $$a;b$$;", "sql", ";", True),
    ("MATCH (a)--(b) RETURN a;", "cypher", ";", True),
    ('db.users.find({"a":', "javascript", None, False),
    ('db.users.find({"a": "}"})', "javascript", None, True),
    ("SET k {", "redis", None, True),
    ('\\find t {"a":', "sql", ";", False),
    ("\\dt", "sql", ";", True),
])
def test_where_a_statement_ends(text, language, terminator, complete):
    assert statements.is_complete(text, language, terminator) is complete


@pytest.mark.parametrize("text, language, asks", [
    ("DELETE FROM t", "sql", True),
    ("delete from t where a = 1", "sql", False),
    ("update t set a = 'where'", "sql", True),
    ("DROP TABLE IF EXISTS t", "sql", True),
    ("TRUNCATE t", "cql", True),
    ("FLUSHALL", "redis", True),
    ("DEL users:*", "redis", True),
    ("DEL users:1", "redis", False),
    ("db.users.deleteMany({})", "javascript", True),
    ("db.users.deleteMany({ })", "javascript", True),
    ('db.users.deleteMany({"a": 1})', "javascript", False),
    ("db.users.drop()", "javascript", True),
    ("MATCH (n) DETACH DELETE n", "cypher", True),
    ("MATCH (n) WHERE n.x = 1 DETACH DELETE n", "cypher", False),
    ("DELETE /shop", "http", True),
    ("DELETE /shop/doc1?rev=1-abc", "http", False),
])
def test_destructive_statements_are_recognised(text, language, asks):
    assert (statements.destructive(text, language) is not None) is asks


@pytest.mark.parametrize("text, language, writes", [
    ("select * from t", "sql", False),
    ("with x as (delete from t returning *) select * from x", "sql", True),
    ("insert into t values (1)", "sql", True),
    ("pragma table_info(t)", "sql", False),
    ("MATCH (n) RETURN n", "cypher", False),
    ("MATCH (n) SET n.a = 1", "cypher", True),
    ("HGETALL users:1", "redis", False),
    ("HSET users:1 a 1", "redis", True),
    ("db.users.find({})", "javascript", False),
    ("db.users.insertOne({})", "javascript", True),
    ("GET /shop/_all_docs", "http", False),
    ("PUT /shop", "http", True),
])
def test_client_side_read_only_refuses_what_may_write(text, language, writes):
    assert statements.writes(text, language) is writes


# -- connection switching, keys, highlighting -------------------------------------------------

def test_connect_switches_database_and_profile(db, tmp_path):
    other = tmp_path / "other.db"
    config = tmp_path / "config" / "dbsh" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[profiles.shop]\nurl = "{url_of(db)}"\n')
    run = Typed(url_of(db), f"\\c {url_of(other)}\rcreate table notes (body text);\r"
                            "\\connect shop\rselect count(*) as n from people;\r\\q\r")
    assert rows(other, "select name from sqlite_master") == [("notes",)]
    report = " ".join(run.errors.split())
    assert "connected to SQLite" in report and f"at {url_of(other)}" in report
    assert run.output.splitlines()[-2:] == [" 3 ", "(1 row)"]
    assert run.shell.target.profile == "shop"


def test_failed_connect_keeps_the_current_connection(db):
    run = Typed(url_of(db), "\\c sqlite:////no/such/dir/x.db\rselect count(*) as n from people;\r\\q\r")
    assert run.errors.splitlines() == ["dbsh: error: cannot open SQLite database /no/such/dir/x.db: "
                                       "directory does not exist"]
    assert run.output.splitlines()[-2:] == [" 3 ", "(1 row)"]


def test_timing_reports_each_command(db):
    run = Typed(url_of(db), "\\timing on\rselect 1 as one;\r\\q\r")
    assert run.errors.splitlines()[0] == "timing is on"
    assert run.errors.splitlines()[1].startswith("Time: ") and run.errors.splitlines()[1].endswith(" ms")


def test_ctrl_r_searches_history(db):
    Typed(url_of(db), "select name from people where id = 3;\rselect name from people where id = 1;\r\\q\r")
    run = Typed(url_of(db), "\x12id = 3\r\r\\q\r")     # Ctrl-R, the words, Enter takes the match, Enter runs it
    assert " Cy " in run.output and " Ann " not in run.output


def test_vi_keys_from_the_config(db):
    from prompt_toolkit.enums import EditingMode

    run = Typed(url_of(db), "\\q\r", settings={"keys": "vi"})
    assert run.shell.prompt_session.editing_mode == EditingMode.VI
    assert Typed(url_of(db), "\\q\r").shell.prompt_session.editing_mode == EditingMode.EMACS


@pytest.mark.parametrize("language, lexer", [("sql", "SqlLexer"), ("cypher", "CypherLexer"),
                                              ("javascript", "JavascriptLexer"), ("http", "HttpLexer"),
                                              ("redis", "RedisLexer"), ("cql", "SqlLexer"), ("nope", "TextLexer")])
def test_highlighting_per_language(language, lexer):
    from dbsh.repl.lexers import lexer_class

    assert lexer_class(language).__name__ == lexer


# -- the power commands: \watch, \o, \tee, named queries, \x auto, \l, patterns, references -----

def test_help_lists_every_registered_command_and_alias(db):
    from dbsh.repl.meta import COMMANDS

    run = Typed(url_of(db), "\\?\r\\q\r")
    for cmd in COMMANDS.values():
        for name in (cmd.name, *cmd.aliases):
            assert f"{name} " in run.output or f"{name})" in run.output or f"{name}," in run.output, name
    for name in ("\\dt", "\\d", "\\c", "\\l", "\\watch", "\\o", "\\tee", "\\n", "\\ns", "\\nd", "\\x"):
        assert any(line.lstrip().startswith(name + " ") or f"({name})" in line or f" {name}," in line
                   for line in run.output.splitlines()), name


def test_timing_on_does_not_time_itself(db):
    run = Typed(url_of(db), "\\timing on\rselect 1 as one;\r\\timing off\r\\q\r")
    lines = run.errors.splitlines()
    assert lines[0] == "timing is on" and lines[1].startswith("Time: ") and lines[2] == "timing is off"
    assert len(lines) == 3


def test_watch_runs_the_last_statement_count_times(db):
    run = Typed(url_of(db), "select count(*) as n from people;\r\\watch 0 c=3\r\\q\r")
    assert run.output.count("(1 row)") == 4
    runs = [line for line in run.errors.splitlines() if line.startswith("\\watch")]
    assert [line.split(" at ")[0] for line in runs] == ["\\watch every 0s, run 1", "\\watch every 0s, run 2",
                                                        "\\watch every 0s, run 3"]
    assert runs[0].endswith(": select count(*) as n from people;")


def test_watch_a_verb_and_nothing_to_watch(db):
    run = Typed(url_of(db), "\\watch 1\r\\count people\r\\watch 0 c=2\r\\watch 1 x\r\\q\r")
    errors = run.errors.splitlines()
    assert errors[0] == "dbsh: error: no statement to watch: run one first"
    assert run.output.splitlines() == ["3", "3", "3"]
    assert errors[-1].startswith("dbsh: error: \\watch: 'x' is not a number of seconds nor c=COUNT")


def test_o_sends_results_to_a_file_and_tee_to_both(db, tmp_path):
    out, tee = tmp_path / "out.txt", tmp_path / "tee.txt"
    tee.write_text("before\n")
    run = Typed(url_of(db), f"\\o {out}\rselect name from people where id = 1;\r\\o\r"
                            f"select name from people where id = 2;\r"
                            f"\\tee {tee}\rselect name from people where id = 3;\r\\tee\r"
                            "select name from people where id = 1;\r\\q\r")
    assert out.read_text().split() == ["name", "──────", "Ann", "(1", "row)"]
    assert tee.read_text().split() == ["before", "name", "──────", "Cy", "(1", "row)"]
    assert " Ann " in run.output.split(" Bob ")[1] and " Cy " in run.output    # the screen after \o
    assert run.output.count(" Ann ") == 1
    assert run.errors.splitlines() == [f"results go to {out}", "results go to the screen",
                                       f"results are also written to {tee}", "results go to the screen only"]


def test_named_queries_are_saved_run_with_bound_arguments_listed_and_deleted(db, tmp_path):
    run = Typed(url_of(db), "\\ns older select name from people where age > $1 and name <> $2 order by name;\r"
                            "\\n older 30 Cy\r"
                            "\\n older 0 \"x' or 1=1 --\"\r"
                            "\\n\r\\nd older\r\\n older 1 a\r\\n older 1\r\\q\r")
    config = (tmp_path / "config" / "dbsh" / "config.toml").read_text()
    assert "[named_queries]" not in config or "older" not in config     # deleted again
    lines = run.output.splitlines()
    assert lines[:4] == [" name ", "──────", " Ann  ", "(1 row)"]
    assert "Bob" in run.output and "(3 rows)" in run.output        # the quote is a value, not SQL
    assert " older   select name from people where age > $1 and name <> $2 order by name; " in run.output
    errors = run.errors.splitlines()
    assert errors[0].startswith("saved 'older' in ") and errors[1] == "deleted 'older'"
    assert errors[2] == "dbsh: error: no named query 'older' (known: none saved) (save one with \\ns NAME QUERY)"


def test_named_query_argument_count_must_match(db):
    run = Typed(url_of(db), "\\ns one select name from people where id = $1;\r\\n one\r\\n one 1 2\r\\n one 2\r\\q\r")
    errors = run.errors.splitlines()
    assert errors[1] == "dbsh: error: $1 has no value: 0 arguments given"
    assert errors[2] == "dbsh: error: too many arguments: the query has no $2"
    assert " Bob " in run.output


def test_expanded_auto_only_for_rows_wider_than_the_terminal(db, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    wide = "select " + ", ".join(f"'{'x' * 10}' as c{i}" for i in range(8)) + ";"
    run = Typed(url_of(db), f"\\x auto\rselect name, age from people where id = 1;\r{wide}\r\\q\r")
    out = run.output
    assert " name   age " in out.split("row 1")[0]          # narrow: a table
    assert " c0   xxxxxxxxxx " in out and "row 1" in out    # wide: one field per line
    assert "expanded display is auto" in run.errors


def test_l_lists_databases_and_dt_d_take_patterns_and_references(db):
    with sqlite3.connect(db) as conn:
        conn.execute("create table orders (id integer primary key, person_id int references people(id), total real)")
        conn.execute("create table pets (id integer primary key, owner int references people(id))")
    run = Typed(url_of(db), "\\format jsonl\r\\l\r\\dt pe*\r\\d pe*\r\\d orders\r\\q\r")
    lines = [json.loads(line) for line in run.output.splitlines()]
    assert lines[0] == {"name": "main", "file": str(db), "current": True}
    assert lines[1:3] == [{"name": "people"}, {"name": "pets"}]
    described = [(row["collection"], row["column"]) for row in lines[3:8]]
    assert described == [("people", "id"), ("people", "name"), ("people", "age"), ("pets", "id"), ("pets", "owner")]
    assert lines[7]["references"] == "people(id)"
    assert {row["column"]: row["references"] for row in lines[8:]} == {
        "id": None, "person_id": "people(id)", "total": None}


# -- bodies: triggers, routines, DELIMITER, $$ ---------------------------------------------------

PROCEDURE = """DELIMITER //
CREATE PROCEDURE p(IN x INT)
BEGIN
  IF x > 0 THEN SELECT 1; ELSE SELECT 2; END IF;
  CASE x WHEN 1 THEN SELECT 'one'; ELSE SELECT 'other'; END CASE;
END //
DELIMITER ;
CALL p(1);"""


@pytest.mark.parametrize("text, language, expected", [
    ("CREATE TRIGGER t AFTER INSERT ON a BEGIN\n INSERT INTO b VALUES (CASE WHEN new.x THEN 1 ELSE 2 END);\n"
     " UPDATE c SET n = n + 1;\nEND;\nSELECT 1;", "sql",
     ["CREATE TRIGGER t AFTER INSERT ON a BEGIN\n INSERT INTO b VALUES (CASE WHEN new.x THEN 1 ELSE 2 END);\n"
      " UPDATE c SET n = n + 1;\nEND;", "SELECT 1;"]),
    (PROCEDURE, "sql", ["DELIMITER //", PROCEDURE.split("\n", 1)[1].split(" //")[0], "DELIMITER ;", "CALL p(1);"]),
    ("CREATE PROCEDURE q()\nBEGIN\n WHILE 1 DO SELECT 1; END WHILE;\n SELECT 2;\nEND;\nCALL q();", "sql",
     ["CREATE PROCEDURE q()\nBEGIN\n WHILE 1 DO SELECT 1; END WHILE;\n SELECT 2;\nEND;", "CALL q();"]),
    ("create function f() returns int as $$ begin return 1; end; $$ language plpgsql; select f();", "sql",
     ["create function f() returns int as $$ begin return 1; end; $$ language plpgsql;", "select f();"]),
    ("DELIMITER $$\ncreate function g() returns int begin return 1; end$$\nDELIMITER ;", "sql",
     ["DELIMITER $$", "create function g() returns int begin return 1; end", "DELIMITER ;"]),
    ("BEGIN BATCH INSERT INTO t (a) VALUES (1); INSERT INTO t (a) VALUES (2); APPLY BATCH; SELECT a FROM t;", "cql",
     ["BEGIN BATCH INSERT INTO t (a) VALUES (1); INSERT INTO t (a) VALUES (2); APPLY BATCH;", "SELECT a FROM t;"]),
    ("begin; insert into t values (1); commit;", "sql", ["begin;", "insert into t values (1);", "commit;"]),
])
def test_bodies_are_one_statement(text, language, expected):
    assert statements.split(text, language, ";") == expected
    assert statements.split_terminated(text, language) == [
        e.rstrip(";") for e in expected if not e.startswith("DELIMITER")]


@pytest.mark.parametrize("text, terminator, complete", [
    ("CREATE TRIGGER t AFTER INSERT ON a BEGIN\n INSERT INTO b VALUES (1);", ";", False),
    ("CREATE TRIGGER t AFTER INSERT ON a BEGIN\n INSERT INTO b VALUES (1);\nEND;", ";", True),
    ("DELIMITER //", ";", True),
    ("select 1;", "//", False),
    ("select 1 //", "//", True),
    ("select 1; -- done", ";", True),
])
def test_where_a_body_ends(text, terminator, complete):
    assert statements.is_complete(text, "sql", terminator) is complete


SQLITE_SCRIPT = """create table items (id integer primary key, name text);
create table log (what text);
create trigger logged after insert on items
begin
  insert into log values ('added ' || new.name);
  insert into log values (case when new.id > 1 then 'more' else 'first' end);
end;
insert into items (name) values ('pen'), ('ink');
"""


def test_sqlite_trigger_body_at_the_prompt_in_a_file_and_piped(tmp_path):
    expected = [("added pen",), ("first",), ("added ink",), ("more",)]
    typed = tmp_path / "typed.db"
    Typed(url_of(typed), SQLITE_SCRIPT.replace("\n", "\r") + "\\q\r")
    assert rows(typed, "select what from log order by rowid") == expected
    script = tmp_path / "script.sql"
    script.write_text(SQLITE_SCRIPT)
    included = tmp_path / "included.db"
    run = Typed(url_of(included), f"\\i {script}\r\\q\r")
    assert run.errors == ""
    assert rows(included, "select what from log order by rowid") == expected
    piped = tmp_path / "piped.db"
    run = dbsh("-u", url_of(piped), input=SQLITE_SCRIPT)
    assert run.code == 0, run.err
    assert rows(piped, "select what from log order by rowid") == expected


def test_sql_completion_knows_aliases_and_join_conditions(db):
    with sqlite3.connect(db) as conn:
        conn.execute("create table orders (id integer primary key, person_id int references people(id), total real)")
        conn.execute("create table notes (body text)")
    with create_pipe_input() as pipe:
        pipe.send_text("\\q\r")
        shell = Shell(resolve(url_of(db)), settings={}, out=io.StringIO(), err=io.StringIO(), pt_input=pipe,
                      pt_output=DummyOutput())
        shell.prompt_session = shell._prompt_session()
        assert shell.catalog.wait(60)
        completer = shell.prompt_session.completer

        def offered(text, cursor=None):
            doc = Document(text, cursor if cursor is not None else len(text))
            return [c.text for c in completer.get_completions(doc, CompleteEvent())]

        assert offered("select p. from people p", cursor=len("select p.")) == ["id", "name", "age"]
        assert offered("select o.to from orders as o", cursor=len("select o.to")) == ["total"]
        assert offered("select * from orders o where o.to") == ["total"]
        assert offered("select * from people p join orders o on ") == ["o.person_id = p.id"]
        assert offered("select * from orders join people on ") == ["people.id = orders.person_id"]
        assert offered("select * from people p join ")[:1] == ["orders"]        # related tables first
        assert "notes" in offered("select * from people p join ")
        shell.loop()


def test_the_readme_lists_every_shell_command_as_backslash_help_does():
    from pathlib import Path

    from dbsh.repl.meta import help_lines

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    shell = readme[readme.index("## The shell"):readme.index("## Backends")]
    missing = [line for line in help_lines() if line not in shell]
    assert not missing, "README's shell section is out of date (paste \\? output):\n" + "\n".join(missing)

