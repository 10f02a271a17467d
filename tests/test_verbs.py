"""One verb table behind every surface, and one session opener behind every command.

The command line (dbsh.argv), the Typer app (help pages, completion), `dbsh --help` and the shell's
backslash commands are all built from dbsh.verbs: an option exists on each of them or on none. And
every path that writes (the verbs, insert --file, copy, bench, migrate) opens its session through
dbsh.context, so a read-only profile refuses all of them alike, with nothing written.
"""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from dbsh import argv, cli, verbs
from dbsh.repl import meta
from dbsh.repl.app import Shell
from dbsh.target import resolve
from tests.dbshtest import dbsh, dbsh_typer

ROOT = Path(__file__).resolve().parent.parent


def sample_words(verb: verbs.Verb) -> list[str]:
    words = []
    for a in verb.args:
        if a.required:
            words.append("{}" if a.complete in ("filter", "update") else "x")
    return words


def sample_value(opt: verbs.Opt) -> str:
    return {"int": "3", "float": "2.5", "str": "v", "list": "a=1"}[opt.type]


def expected(opt: verbs.Opt):
    return {"int": 3, "float": 2.5, "str": "v", "list": ["a=1"], "bool": True}[opt.type]


def every_option():
    for verb in verbs.table().values():
        if verb.name == "migrate":
            continue
        for opt in verb.options:
            yield pytest.param(verb, opt, id=f"{verb.name}{opt.long}")


@pytest.mark.parametrize("verb,opt", list(every_option()))
def test_the_command_line_and_typer_parse_every_option_alike(verb, opt, monkeypatch):
    """The fast parser and the Typer app (built from the same table) give the same Call."""
    words = sample_words(verb) + [opt.flags[-1]] + ([] if opt.type == "bool" else [sample_value(opt)])
    prefix = verb.name.split()
    call = cli.parse([*prefix, *words], None)
    got = call.flags.get(opt.dest) if opt.backend else call.values[opt.dest]
    assert got == expected(opt)

    seen = []
    monkeypatch.setattr(cli, "execute", lambda c: seen.append(c) or 0)
    run = dbsh_typer(*prefix, *words)
    assert run.code == 0, run.out + run.err
    typer_call = seen[0]
    assert typer_call.verb.name == verb.name
    assert typer_call.values == call.values and typer_call.flags == call.flags


@pytest.mark.parametrize("verb,opt", [p for p in every_option() if p.values[0].shell])
def test_every_option_of_a_verb_is_accepted_by_its_backslash_form(verb, opt):
    command = meta.lookup(verb.shell)
    assert command is not None and command.verb.options == verb.options
    words = sample_words(verb) + [opt.long] + ([] if opt.type == "bool" else [sample_value(opt)])
    call, _ = argv.parse(words, command.verb, prog="")
    got = call.flags.get(opt.dest) if opt.backend else call.values[opt.dest]
    assert got == expected(opt)


def test_every_verb_is_in_the_fast_help_and_the_shell_help():
    text = cli.top_help()
    shell_help = "\n".join(c.usage for c in meta.COMMANDS.values())
    for verb in verbs.table().values():
        if " " not in verb.name:
            assert f"  {verb.name} " in text
        if verb.shell:
            assert verb.shell in shell_help
    for opt in verbs.global_options():
        assert opt.long in text


def test_backend_flags_come_from_the_backend_records():
    table = verbs.table()
    ttl = table["insert"].option("ttl")
    assert ttl.backend == ("Redis", "Memcached", "Cassandra") and "Redis / Memcached / Cassandra" in ttl.help
    assert table["find"].option("allow_filtering").backend == ("Cassandra",)
    assert "consistency" in {o.dest for o in verbs.global_options()}
    run = dbsh("-u", "sqlite:///:memory:", "insert", "t", '{"a": 1}', "--ttl", "5")
    assert (run.code, run.err) == (2, "dbsh: error: --ttl is not supported on SQLite\n")


def test_usage_errors_are_one_line_exit_2():
    for args, message in [
        (["find"], "missing COLLECTION; usage: dbsh find COLLECTION [FILTER]"),
        (["find", "t", "--limit"], "--limit needs a value (N)"),
        (["find", "t", "--limit", "x"], "--limit expects a whole number, got 'x'"),
        (["find", "t", "--limit", "-3"], "--limit must be at least 0, got -3"),
        (["find", "t", "{}", "extra"], "unexpected argument 'extra'; usage: dbsh find COLLECTION [FILTER]"),
        (["frobnicate"], "unknown command 'frobnicate' (dbsh --help lists the commands)"),
        (["migrate", "sideways"], "unknown migrate command 'sideways'"),
    ]:
        run = dbsh("-u", "sqlite:///:memory:", *args)
        assert run.code == 2 and run.err.startswith(f"dbsh: error: {message}"), (args, run.err)
        assert len(run.err.splitlines()) == 1


def test_global_options_go_before_or_after_the_command(tmp_path):
    url = f"sqlite:///{tmp_path}/g.db"
    assert dbsh("insert", "t", '{"a": 1}', "--create", "-u", url).code == 0
    assert dbsh("-f", "csv", "find", "t", "-u", url).out == "id,a\n1,1\n"
    assert dbsh("--url=" + url, "find", "t", "--format=json").out == '[\n  {"id":1,"a":1}\n]\n'
    assert dbsh("-u", url, "migrate", "--dir", str(tmp_path / "none"), "status").code == 2


def test_a_piped_one_shot_imports_neither_typer_nor_rich(tmp_path):
    url = f"sqlite:///{tmp_path}/lean.db"
    dbsh("-u", url, "insert", "t", '{"a": 1}', "--create")
    code = ("import sys; from dbsh.cli import run\n"
            f"code = run(['-u', {url!r}, 'find', 't'])\n"
            "heavy = [m for m in ('typer', 'rich', 'click') if m in sys.modules]\n"
            "print(code, heavy, file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout == '{"id":1,"a":1}\n'
    assert proc.stderr.strip() == "0 []"


# -- the shell's \insert takes every option the command line takes ----------------------------------

def test_shell_insert_with_errors_file(tmp_path):
    db = tmp_path / "s.db"
    data = tmp_path / "people.jsonl"
    data.write_text('{"id": 1, "name": "Ann"}\n{"id": 2, "name": \n{"id": 3, "name": "Cy"}\n')
    bad = tmp_path / "bad.jsonl"
    out, err = io.StringIO(), io.StringIO()
    with create_pipe_input() as pipe:
        pipe.send_text(f"\\insert people --file {data} --create --errors {bad} --batch 2\r\\q\r")
        Shell(resolve(f"sqlite:///{db}"), settings={}, out=out, err=err, pt_input=pipe,
              pt_output=DummyOutput()).loop()
    assert err.getvalue() == ""
    assert "inserted 2 rows into people; 1 bad row in" in out.getvalue()
    with sqlite3.connect(db) as conn:
        assert conn.execute("select id, name from people order by id").fetchall() == [(1, "Ann"), (3, "Cy")]
    assert [json.loads(line)["line"] for line in bad.read_text().splitlines()] == [2]


# -- one session opener: a read-only profile refuses every write path ---------------------------

@pytest.fixture
def readonly_profile(tmp_path, dbsh_env):
    db = tmp_path / "ro.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table people (id integer primary key, name text)")
        conn.execute("insert into people (name) values ('Ann')")
    assert dbsh("connect", f"sqlite:///{db}", "--save", "ro", "--readonly").code == 0
    return db


def table_state(db) -> list:
    with sqlite3.connect(db) as conn:
        return conn.execute("select name, sql from sqlite_master order by name").fetchall() + \
            conn.execute("select * from people").fetchall()


def test_every_write_path_into_a_readonly_profile_is_refused(readonly_profile, tmp_path):
    before = table_state(readonly_profile)
    source = tmp_path / "src.db"
    with sqlite3.connect(source) as conn:
        conn.execute("create table people (id integer primary key, name text)")
        conn.execute("insert into people (id, name) values (7, 'Bo')")
    data = tmp_path / "rows.jsonl"
    data.write_text('{"id": 9, "name": "Cy"}\n')

    refusals = {
        "insert": (["-c", "ro", "insert", "people", '{"name": "No"}'], "insert is refused"),
        "insert --file": (["-c", "ro", "insert", "people", "--file", str(data)], "insert is refused"),
        "update": (["-c", "ro", "update", "people", "{}", '{"$set": {"name": "X"}}'], "update is refused"),
        "delete": (["-c", "ro", "delete", "people", "--all"], "delete is refused"),
        "copy": (["copy", f"sqlite:///{source}/people", "ro/people"], "copy is refused"),
        "bench": (["-c", "ro", "bench", "-w", "c", "--records", "5", "--operations", "5"], "bench is refused"),
        "query": (["-c", "ro", "query", "insert into people (name) values ('No')"], ""),
    }
    for what, (args, message) in refusals.items():
        run = dbsh(*args)
        if what == "query":   # the server refuses it (PRAGMA query_only): a query error
            assert run.code == 1 and "readonly" in run.err.replace(" ", "").lower(), (what, run.err)
        else:
            assert run.code == 2, (what, run.code, run.err)
            assert message in run.err and "(profile 'ro' has readonly = true)" in run.err, (what, run.err)
    assert table_state(readonly_profile) == before


def test_migrate_upgrade_into_a_readonly_profile_is_refused(readonly_profile, tmp_path):
    versions = tmp_path / "alembic" / "versions"
    versions.mkdir(parents=True)
    for name in ("env.py", "script.py.mako"):
        (tmp_path / "alembic" / name).write_text((ROOT / "migrations" / name).read_text())
    (versions / "r1_make.py").write_text(
        'revision = "r1"\ndown_revision = None\nfrom alembic import op\n'
        'def upgrade():\n    op.execute("create table made (id integer)")\n'
        'def downgrade():\n    op.execute("drop table made")\n')
    before = table_state(readonly_profile)
    for command in (["upgrade", "head"], ["stamp", "head"]):
        run = dbsh("-c", "ro", "migrate", *command, "--dir", str(tmp_path / "alembic"))
        assert run.code == 2 and f"migrate {command[0]} is refused (profile 'ro' has readonly = true)" in run.err, \
            run.err
    assert table_state(readonly_profile) == before
    run = dbsh("-c", "ro", "migrate", "status", "--dir", str(tmp_path / "alembic"), "-f", "jsonl")
    assert run.code == 0, run.err


@pytest.mark.redis
def test_nosql_migrate_and_bench_into_a_readonly_profile_are_refused(redis_url, tmp_path):
    import redis as redis_py

    client = redis_py.Redis.from_url(redis_url)
    client.flushdb()
    assert dbsh("connect", redis_url, "--save", "rro", "--readonly").code == 0
    revisions = tmp_path / "rev"
    revisions.mkdir()
    (revisions / "a1_first.py").write_text(
        'revision = "a1"\ndown_revision = None\n'
        'def upgrade(session):\n    session.client.set("migrated", 1)\n'
        'def downgrade(session):\n    session.client.delete("migrated")\n')
    run = dbsh("-c", "rro", "migrate", "upgrade", "--dir", str(revisions))
    assert run.code == 2 and "migrate upgrade is refused (profile 'rro' has readonly = true)" in run.err, run.err
    run = dbsh("-c", "rro", "bench", "-w", "a", "--records", "5", "--operations", "5")
    assert run.code == 2 and "bench is refused" in run.err, run.err
    run = dbsh("-c", "rro", "query", "ECHO x\nFLUSHDB", "--yes")
    assert run.code == 2 and "may write on Redis is refused" in run.err, run.err
    assert client.dbsize() == 0
    client.close()


def test_a_plugin_backends_flag_is_read_though_plugins_are_looked_up_only_when_needed(monkeypatch):
    """The command line is read with the built-in backends' flags first (looking up entry points costs
    a one-shot command tens of milliseconds), and again with the plugins' when it does not parse."""
    from dbsh import drivers

    plugin = drivers.Backend("kv", "KV", ("kv",), "kvdb:connect", "text",
                             flags=(drivers.Flag("shard", ("--shard",), "Shard.", type="str", metavar="S"),))
    monkeypatch.setattr(drivers, "_plugins", (plugin,))
    call = cli.parse(["-u", "kv://h", "--shard", "s1", "find", "t"], None)
    assert call.verb.name == "find" and call.settings.options == {"shard": "s1"}
    assert cli.parse(["find", "t"], None).verb.name == "find"
    with pytest.raises(Exception, match="unknown option --nope"):
        cli.parse(["find", "t", "--nope"], None)
