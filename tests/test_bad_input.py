"""Every input error is exit 2 and every lost connection exit 3, each with a one-line message, never an
internal error (exit 1 naming a Python exception): deep JSON, lone surrogates, bytes that are not UTF-8,
numbers past a double or past 64 bits, malformed URLs, a server killed during an export."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests import servers
from tests.dbshtest import dbsh
from tests.native import fixture_of, snapshot
from tests.test_copy import fresh

DEEP = '{"a": ' + "[" * 1000 + "]" * 1000 + "}"


def refused(run, code: int = 2, says: str | None = None) -> None:
    assert run.code == code, (run.code, run.err)
    assert run.err.startswith("dbsh: error: ") and len(run.err.strip().splitlines()) == 1, run.err
    assert "Error:" not in run.err.split("dbsh: error: ", 1)[1][:40], run.err   # no Python exception name
    if says:
        assert says in run.err, run.err


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "mariadb", "mongo", "redis", "couchdb"])
@pytest.mark.parametrize("document, says", [
    (DEEP, "nested deeper than 100 levels"),
    ('{"a": "\\ud800"}', "a lone surrogate (\\ud800) is not valid Unicode text"),
    ('{"a": 1e400}', "the number 1e400 is out of range"),
], ids=["deep", "lone-surrogate", "1e400"])
def test_a_bad_document_is_exit_2_and_writes_nothing(request, kind, document, says, tmp_path):
    url = request.getfixturevalue(fixture_of(kind))
    c = fresh("bad")
    assert dbsh("-u", url, "insert", c, '{"id": 1}', "--create").code == 0
    before = snapshot(kind, url, c)
    refused(dbsh("-u", url, "insert", c, document), says=says)
    # (a jsonl line orjson reads, however deep, is refused where Python's recursion ends: exit 2 all the same)
    refused(dbsh("-u", url, "insert", c, "-", input=document + "\n"), says=None if document == DEEP else says)
    refused(dbsh("-u", url, "insert", c, "-", "-i", "json", input=f"[{document}]"), says=says)
    refused(dbsh("-u", url, "find", c, document), says=says)
    assert snapshot(kind, url, c) == before


def test_json_deeper_than_pythons_parser_is_exit_2_everywhere(sqlite_url):
    deeper = '{"a": ' + "[" * 5000 + "]" * 5000 + "}"
    refused(dbsh("-u", sqlite_url, "insert", "t", deeper, "--create"))
    refused(dbsh("-u", sqlite_url, "insert", "t", "--create", "-", input=deeper + "\n"))
    refused(dbsh("-u", sqlite_url, "query", "select :x", "-p", "x=" + deeper))
    refused(dbsh("-u", sqlite_url, "update", "t", "{}", '{"$set": ' + deeper + "}"))


@pytest.mark.secantusdb
def test_an_integer_past_64_bits_is_exit_2_on_mongodb(mongo_url):
    c = fresh("big")
    refused(dbsh("-u", mongo_url, "insert", c, '{"n": 123456789012345678901234567890}'),
            says="an integer does not fit in 64 bits")
    refused(dbsh("-u", mongo_url, "insert", c, "-", input='{"n": 1}\n{"n": 123456789012345678901234567890}\n'))
    refused(dbsh("-u", mongo_url, "find", c, '{"n": 123456789012345678901234567890}'))
    assert snapshot("mongo", mongo_url, c)["rows"] in (None, [])


@pytest.mark.parametrize("data, fmt", [
    (b'\xff\xfe{"a": 1}\n', []),
    (b'\xff\xfe{"a": 1}\n', ["-i", "jsonl"]),
    (b"\xe9t\xe9,x\n1,2\n", ["-i", "csv"]),
    (b'[{"a": "\xe9"}]', ["-i", "json"]),
], ids=["sniffed", "jsonl", "csv", "json"])
def test_stdin_that_is_not_utf8_is_exit_2(sqlite_url, dbsh_env, data, fmt):
    proc = subprocess.run([sys.executable, "-m", "dbsh", "-u", sqlite_url, "insert", "t", "--create", *fmt, "-"],
                          input=data, capture_output=True, env=dbsh_env, timeout=120)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert err.startswith("dbsh: error: ") and len(err.strip().splitlines()) == 1 and "UTF-8" in err, err


@pytest.mark.parametrize("url, says", [
    ("postgresql://[::1/x", "invalid PostgreSQL URL 'postgresql://[::1/x': Invalid IPv6 URL"),
    ("postgresql://" + "h" * 300 + "/x", "the host name is longer than DNS allows"),
    ("redis://" + "h" * 300 + ":6379/0", "the host name is longer than DNS allows"),
    ("mongodb://" + "h" * 70 + ".example/x", "the host name is longer than DNS allows"),
    ("redis://127.0.0.1:1/0?bogus=1", "invalid Redis URL redis://127.0.0.1:1/0?bogus=1: unknown option 'bogus'"),
    ("sqlite:////tmp/a\x00b.db", "a URL cannot contain a NUL character"),
    ("redis://127.0.0.1:99999/0", "Port out of range"),
    ("postgresql://127.0.0.1:port/x", "invalid PostgreSQL URL"),
])
def test_a_malformed_url_is_exit_2(url, says):
    refused(dbsh("-u", url, "--connect-timeout", "2", "count", "t"), says=says)


@pytest.mark.redis
def test_couchdb_at_a_port_that_is_not_http_is_exit_3(redis_url):
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    refused(dbsh("-u", f"couchdb://127.0.0.1:{port}", "--connect-timeout", "2", "collections"), code=3)


@pytest.mark.parametrize("server_class, kind", [(servers.Redis, "redis"), (servers.SecantusDB, "mongo"),
                                                (servers.Postgres, "postgres")], ids=["redis", "mongo", "postgres"])
def test_a_server_killed_during_an_export_is_exit_3(server_class, kind, dbsh_env, tmp_path):
    with server_class() as server:
        url = server.url
        rows = "".join(json.dumps({"id": i, "v": "x" * 50}) + "\n" for i in range(1, 40_001))
        run = dbsh("-u", url, "insert", "t", "-", "--create", input=rows)
        assert run.code == 0, run.err
        proc = subprocess.Popen([sys.executable, "-m", "dbsh", "-u", url, "find", "t"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=dbsh_env, text=True)
        assert proc.stdout.readline().startswith("{")   # exporting: the pipe fills and holds it mid-way
        server.stop()
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err
    assert err.startswith("dbsh: error: ") and len(err.strip().splitlines()) == 1, err
    assert 0 < out.count("\n") < 40_000
