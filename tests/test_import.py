"""`insert --file`: compressed jsonl/json/csv/tsv streamed in batches into real servers (PostgreSQL by
COPY), bad rows to --errors with their exact line, --max-errors, --schema, --resume; export with find."""

from __future__ import annotations

import gzip
import json
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.dbshtest import dbsh, dbsh_on_terminal
from tests.test_copy import Backend


def fresh(prefix="t"):
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def sqlite_rows(url, sql):
    conn = sqlite3.connect(url.split(":///", 1)[1])
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_every_format_and_compression_into_postgres(postgres_url, tmp_path):
    import zstandard

    pg = Backend("postgres", postgres_url)
    t = fresh()
    rows = [{"id": i, "name": f"n{i}", "price": i / 4, "ok": i % 2 == 0, "meta": {"i": i}} for i in range(1, 1201)]
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows[:500]).encode()))
    (tmp_path / "b.json.zst").write_bytes(zstandard.ZstdCompressor().compress(json.dumps(rows[500:800]).encode()))
    csv_lines = ["id,name,price,ok"] + [f"{r['id']},{r['name']},{r['price']},{str(r['ok']).lower()}"
                                         for r in rows[800:1000]]
    (tmp_path / "c.csv").write_text("\n".join(csv_lines) + "\n")
    (tmp_path / "d.tsv.gz").write_bytes(gzip.compress(("\n".join(
        line.replace(",", "\t") for line in ["id,name,price,ok"] + [
            f"{r['id']},{r['name']},{r['price']},{str(r['ok']).lower()}" for r in rows[1000:]]) + "\n").encode()))
    expected = {"a.jsonl.gz": 500, "b.json.zst": 300, "c.csv": 200, "d.tsv.gz": 200}
    for i, (name, count) in enumerate(expected.items()):
        run = dbsh("-u", postgres_url, "insert", t, "--file", str(tmp_path / name), "--batch", "128",
                   *(["--create"] if i == 0 else []))
        assert run.code == 0, run.err
        assert run.err == ""   # no progress bar when stderr is not a terminal
        assert run.json_lines() == [{"action": "inserted", "collection": t, "count": count}]
    got = sorted(pg.native_rows(t), key=lambda r: r["id"])
    assert len(got) == 1200
    assert got[0] == {"id": 1, "name": "n1", "price": 0.25, "ok": False, "meta": {"i": 1}}
    assert got[899] == {"id": 900, "name": "n900", "price": 225.0, "ok": True, "meta": None}


@pytest.mark.parametrize("fork", [True, False], ids=["read-ahead-process", "read-ahead-thread"])
def test_bad_rows_go_to_the_errors_file_with_their_exact_lines(postgres_url, tmp_path, monkeypatch, fork):
    monkeypatch.setattr("dbsh.bulk.readahead.CAN_FORK", fork)   # a thread where fork() is not at hand
    pg = Backend("postgres", postgres_url)
    t = fresh()
    dbsh("-u", postgres_url, "query", f"create table {t} (id integer primary key, n integer, s text)")
    lines = [json.dumps({"id": i, "n": i, "s": f"s{i}"}) for i in range(1, 21)]
    lines[3] = '{"id": 4, "n": '                                   # line 4: malformed JSON
    lines[6] = json.dumps({"id": 7, "n": "seven", "s": "x"})        # line 7: the server refuses the value
    lines[11] = "[12]"                                              # line 12: not an object
    lines[15] = json.dumps({"id": 3, "n": 16, "s": "dup"})          # line 16: duplicate key
    (tmp_path / "rows.jsonl").write_text("\n".join(lines) + "\n")
    errors = tmp_path / "errors.jsonl"
    run = dbsh("-u", postgres_url, "insert", t, "--file", str(tmp_path / "rows.jsonl"), "--batch", "5",
               "--errors", str(errors))
    assert run.code == 0, run.err
    assert run.json_lines() == [{"action": "inserted", "collection": t, "count": 16, "errors": 4}]
    logged = [json.loads(line) for line in errors.read_text().splitlines()]
    assert [e["line"] for e in logged] == [4, 7, 12, 16]
    assert logged[0]["error"].startswith("malformed JSON") and logged[0]["row"] == '{"id": 4, "n": '
    assert logged[1]["error"].startswith("invalid input syntax for type integer") and logged[1]["row"]["n"] == "seven"
    assert logged[2] == {"line": 12, "error": "expected a JSON object, got list", "row": "[12]"}
    assert logged[3]["error"].startswith("duplicate key value violates unique constraint")
    ids = sorted(r["id"] for r in pg.native_rows(t))
    assert ids == [i for i in range(1, 21) if i not in (4, 7, 12, 16)]


def test_rows_sqlite_refuses_go_to_the_errors_file_as_they_were_read(sqlite_url, tmp_path):
    """A batch SQLite refuses is halved until the refused rows are found; their documents come from
    the lines the reading process handed over, parsed as the reader parsed them."""
    t = fresh()
    dbsh("-u", sqlite_url, "query", f"create table {t} (id integer primary key, n integer not null, s text)")
    lines = [json.dumps({"id": i, "n": i, "s": f"s{i}"}) for i in range(1, 21)]
    lines[0] = "\ufeff" + lines[0]                                                  # line 1: a BOM
    lines[4] = '{"id": 5, "n": 123456789012345678901234567890, "s": "big"}'        # line 5: past 64 bits
    lines[6] = json.dumps({"id": 7, "n": None, "s": "null n"})                      # line 7: NOT NULL
    lines[8] = '{"id": 9, "n": '                                                    # line 9: malformed
    lines[15] = json.dumps({"id": 3, "n": 16, "s": "dup \u00e9"})                  # line 16: duplicate id
    (tmp_path / "rows.jsonl").write_text("\n".join(lines) + "\n")
    errors = tmp_path / "errors.jsonl"
    run = dbsh("-u", sqlite_url, "insert", t, "--file", str(tmp_path / "rows.jsonl"), "--batch", "8",
               "--errors", str(errors))
    assert run.code == 0, run.err
    assert run.json_lines() == [{"action": "inserted", "collection": t, "count": 16, "errors": 4}]
    logged = [json.loads(line) for line in errors.read_text().splitlines()]
    assert [(e["line"], e["row"]) for e in logged] == [
        (5, {"id": 5, "n": 123456789012345678901234567890, "s": "big"}), (7, {"id": 7, "n": None, "s": "null n"}),
        (9, '{"id": 9, "n": '), (16, {"id": 3, "n": 16, "s": "dup é"})]
    assert logged[0]["error"] == "integer out of range: SQLite stores integers in 64 bits (up to 9223372036854775807)"
    assert "NOT NULL" in logged[1]["error"] and "UNIQUE" in logged[3]["error"]
    rows = sqlite_rows(sqlite_url, f"select id, n, s from {t} order by id")
    assert [r[0] for r in rows] == [i for i in range(1, 21) if i not in (5, 7, 9, 16)]
    assert rows[0] == (1, 1, "s1")


def test_max_errors_stops_the_run_and_says_what_was_written(sqlite_url, tmp_path):
    dbsh("-u", sqlite_url, "insert", "t", '{"a": 1}', "--create")
    (tmp_path / "x.csv").write_text("a\n2\n3\n4\n5,6\n7\n8,9\n10\n11,12\n13\n")
    run = dbsh("-u", sqlite_url, "insert", "t", "--file", str(tmp_path / "x.csv"), "--batch", "3",
               "--max-errors", "1")
    assert run.code == 2
    assert run.err.splitlines() == [
        "dbsh: skipped bad row (line 5): 2 fields, but the header has 1",
        "dbsh: skipped bad row (line 7): 2 fields, but the header has 1",
        "dbsh: error: too many bad rows (2, --max-errors 1); last: line 7: 2 fields, but the header has 1 "
        "(3 rows were committed to t before this batch; the failing batch was rolled back) "
        "(run again with --resume to continue)"]
    assert sqlite_rows(sqlite_url, "select a from t order by a") == [(1,), (2,), (3,), (4,)]


def test_schema_types_csv_columns(sqlite_url, tmp_path):
    (tmp_path / "z.csv").write_text("zip,n,tags\n02134,7,\"[1,2]\"\n10001,x,[]\n")
    run = dbsh("-u", sqlite_url, "insert", "z", "--file", str(tmp_path / "z.csv"), "--create",
               "--schema", "zip:text,n:int,tags:json", "--errors", str(tmp_path / "e.jsonl"))
    assert run.code == 0, run.err
    assert sqlite_rows(sqlite_url, "select zip, n, tags from z") == [("02134", 7, "[1, 2]")]
    assert json.loads((tmp_path / "e.jsonl").read_text()) == {"line": 3, "error": "not an integer: 'x'",
                                                              "row": "10001,x,[]"}
    run = dbsh("-u", sqlite_url, "insert", "z", "--file", str(tmp_path / "z.csv"), "--schema", "zip:date")
    assert (run.code, run.err) == (2, "dbsh: error: bad --schema entry 'zip:date' (use name:type with type one "
                                      "of text, int, float, bool, json)\n")


def test_resume_after_a_failed_batch_continues_without_duplicates(sqlite_url, tmp_path):
    dbsh("-u", sqlite_url, "query", "create table r (id integer primary key, v text)")
    lines = [json.dumps({"id": i, "v": str(i)}) for i in range(1, 11)]
    lines[6] = json.dumps({"id": 2, "v": "dup"})   # line 7 collides with line 2
    (tmp_path / "r.jsonl").write_text("\n".join(lines) + "\n")
    run = dbsh("-u", sqlite_url, "insert", "r", "--file", str(tmp_path / "r.jsonl"), "--batch", "3")
    assert run.code == 1
    assert "(6 rows were committed to r before this batch; the failing batch was rolled back)" in run.err
    run = dbsh("-u", sqlite_url, "insert", "r", "--file", str(tmp_path / "r.jsonl"), "--batch", "3", "--resume",
               "--errors", str(tmp_path / "e.jsonl"))
    assert run.code == 0, run.err
    assert run.json_lines() == [{"action": "inserted", "collection": "r", "count": 9, "errors": 1}]
    assert sqlite_rows(sqlite_url, "select id from r order by id") == [(i,) for i in range(1, 11) if i != 7]
    assert json.loads((tmp_path / "e.jsonl").read_text())["line"] == 7


def test_find_jsonl_export_feeds_insert_elsewhere(redis_url, sqlite_url, tmp_path):
    t = fresh("s")
    docs = [{"id": i, "user": f"u{i}", "hits": i * 10} for i in range(1, 51)]
    assert dbsh("-u", redis_url, "insert", t, *[json.dumps(d) for d in docs]).code == 0
    run = dbsh("-u", redis_url, "find", t, "--format", "jsonl")
    assert run.code == 0
    (tmp_path / "s.jsonl").write_text(run.out)
    assert sorted((json.loads(line) for line in run.out.splitlines()), key=lambda d: d["id"]) == docs
    run = dbsh("-u", sqlite_url, "insert", t, "--file", str(tmp_path / "s.jsonl"), "--create")
    assert run.json_lines() == [{"action": "inserted", "collection": t, "count": 50}]
    assert sqlite_rows(sqlite_url, f"select count(*), sum(hits) from {t}") == [(50, 12750)]


def test_stdin_cannot_resume(sqlite_url):
    run = dbsh("-u", sqlite_url, "insert", "t", "-", "--resume", input='{"a": 1}\n')
    assert (run.code, run.err) == (2, "dbsh: error: --resume needs a file: standard input cannot be read again\n")


def test_resume_refuses_a_file_that_changed(sqlite_url, tmp_path):
    dbsh("-u", sqlite_url, "query", "create table r (id integer primary key)")
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": 1}\n{"id": 2}\n{"id": 1}\n')
    assert dbsh("-u", sqlite_url, "insert", "r", "--file", str(path), "--batch", "2").code == 1
    path.write_text('{"id": 1}\n{"id": 2}\n{"id": 3}\n')
    run = dbsh("-u", sqlite_url, "insert", "r", "--file", str(path), "--resume")
    assert (run.code, run.err) == (2, f"dbsh: error: cannot resume: {path} changed since the interrupted run "
                                      "(run without --resume to start over)\n")


@pytest.mark.parametrize("quoted", [False, True], ids=["plain lines", "csv reader"])
def test_csv_into_an_existing_sqlite_table_is_read_by_its_column_types(sqlite_url, tmp_path, quoted):
    dbsh("-u", sqlite_url, "query", "create table c (id integer primary key, code text, n real, ok boolean, "
                                    "raw, t text)")
    t = '"a,b"' if quoted else "a b"
    (tmp_path / "c.csv").write_text(f'id,code,n,ok,raw,t\n1,007,1.50,TRUE,42,true\n2,1e5,,false,x,{t}\n'
                                    '3,,7,1,2.5,\n')
    run = dbsh("-u", sqlite_url, "insert", "c", "--file", str(tmp_path / "c.csv"))
    assert run.json_lines() == [{"action": "inserted", "collection": "c", "count": 3}]
    # text stays as written, '' is null, booleans in any case, untyped columns inferred
    assert sqlite_rows(sqlite_url, "select id, code, n, typeof(n), ok, raw, typeof(raw), t from c order by id") == [
        (1, "007", 1.5, "real", 1, 42, "integer", "true"),
        (2, "1e5", None, "null", 0, "x", "text", "a,b" if quoted else "a b"),
        (3, None, 7.0, "real", 1, 2.5, "real", None)]


def test_csv_into_postgres_goes_by_copy_and_bad_rows_keep_their_lines(postgres_url, tmp_path):
    pg = Backend("postgres", postgres_url)
    t = fresh()
    dbsh("-u", postgres_url, "query", f"create table {t} (id integer primary key, code text, ok boolean, "
                                      "at date, n numeric)")
    rows = ["id,code,ok,at,n"] + [f"{i},c{i},{'t' if i % 2 else 'false'},2024-01-{i:02d},{i}.10" for i in range(1, 11)]
    rows[3] = "3,c3,maybe,2024-01-03,3"                 # line 4: not a boolean
    rows[7] = '7,"tab\there \\\\ back\\\\slash",,,'      # line 8: delimiters and backslashes are data
    (tmp_path / "p.csv").write_text("\n".join(rows) + "\n")
    run = dbsh("-u", postgres_url, "insert", t, "--file", str(tmp_path / "p.csv"), "--batch", "4",
               "--errors", str(tmp_path / "e.jsonl"))
    assert run.code == 0, run.err
    assert run.json_lines() == [{"action": "inserted", "collection": t, "count": 9, "errors": 1}]
    (logged,) = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert logged["line"] == 4 and logged["row"] == "3,c3,maybe,2024-01-03,3"
    assert logged["error"].startswith('invalid input syntax for type boolean: "maybe"')
    got = {r["id"]: r for r in pg.native_rows(t)}
    assert sorted(got) == [1, 2, 4, 5, 6, 7, 8, 9, 10]
    import datetime
    import decimal

    assert got[2] == {"id": 2, "code": "c2", "ok": False, "at": datetime.date(2024, 1, 2), "n": decimal.Decimal("2.10")}
    assert got[7] == {"id": 7, "code": "tab\there \\\\ back\\\\slash", "ok": None, "at": None, "n": None}


def test_plain_csv_lines_go_to_postgres_as_they_are_read(postgres_url, tmp_path):
    import datetime
    import decimal

    pg = Backend("postgres", postgres_url)
    t = fresh()
    dbsh("-u", postgres_url, "query", f"create table {t} (id integer primary key, code text, ok boolean, "
                                      "at date, n numeric, back text)")
    (tmp_path / "p.tsv").write_text("id\tcode\tok\tat\tn\tback\n1\t007\tTRUE\t2024-02-29\t1.50\ta\\b\n"
                                    "2\t\tf\t\t\t\\N\n")
    run = dbsh("-u", postgres_url, "insert", t, "--file", str(tmp_path / "p.tsv"))
    assert run.json_lines() == [{"action": "inserted", "collection": t, "count": 2}]
    assert sorted(pg.native_rows(t), key=lambda r: r["id"]) == [
        {"id": 1, "code": "007", "ok": True, "at": datetime.date(2024, 2, 29), "n": decimal.Decimal("1.50"),
         "back": "a\\b"},
        {"id": 2, "code": None, "ok": False, "at": None, "n": None, "back": "\\N"}]


def test_numbers_reach_postgres_exactly_by_copy(postgres_url, tmp_path):
    """Each float column's COPY text reads back as the same double (shortest forms, exponents, -0.0,
    NaN and infinities); integers up to and past 64 bits keep every digit."""
    import decimal
    import math
    import random

    pg = Backend("postgres", postgres_url)
    t = fresh()
    dbsh("-u", postgres_url, "query", f"create table {t} (id integer primary key, x double precision, "
                                      "n numeric, b bigint)")
    rnd = random.Random(5)
    edge = [0.1 + 0.2, 1e16, 1e-7, -0.0, 5e-324, 1.7976931348623157e308, 123456789.123456789, 2.0 ** 70]
    floats = edge + [rnd.uniform(-1e6, 1e6) for _ in range(300)] + [struct_float(rnd) for _ in range(300)]
    lines = [json.dumps({"id": i, "x": x, "n": 2 ** 64 + i, "b": -(2 ** 63) + i}) for i, x in enumerate(floats)]
    odd = len(lines)   # a batch of its own, holding NaN and infinity (json reads them; orjson would not)
    lines += ['{"id": %d, "x": NaN, "n": 1, "b": 1}' % odd, '{"id": %d, "x": Infinity, "n": 2, "b": 2}' % (odd + 1)]
    (tmp_path / "n.jsonl").write_text("\n".join(lines) + "\n")
    run = dbsh("-u", postgres_url, "insert", t, "--file", str(tmp_path / "n.jsonl"), "--batch", str(odd))
    assert run.code == 0, run.err
    got = {r["id"]: r for r in pg.native_rows(t)}
    assert len(got) == len(lines)
    for i, x in enumerate(floats):
        assert got[i]["x"] == x and math.copysign(1, got[i]["x"]) == math.copysign(1, x), (i, x, got[i]["x"])
        assert got[i]["n"] == decimal.Decimal(2 ** 64 + i) and got[i]["b"] == -(2 ** 63) + i
    assert math.isnan(got[odd]["x"]) and got[odd + 1]["x"] == math.inf


def struct_float(rnd):
    """A random double from its 64 bits: every exponent, the digits repr needs to spell it."""
    import math
    import struct

    while True:
        x = struct.unpack("<d", rnd.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isfinite(x):
            return x


def test_a_sqlite_load_leaves_the_journal_mode_and_no_journal_file(sqlite_url, tmp_path):
    (tmp_path / "j.jsonl").write_text("".join(f'{{"id": {i}}}\n' for i in range(1, 2001)))
    run = dbsh("-u", sqlite_url, "insert", "j", "--file", str(tmp_path / "j.jsonl"), "--create", "--batch", "100")
    assert run.json_lines() == [{"action": "inserted", "collection": "j", "count": 2000}]
    path = sqlite_url.split(":///", 1)[1]
    assert sqlite_rows(sqlite_url, "pragma journal_mode") == [("delete",)]
    assert not os.path.exists(path + "-journal")
    sqlite_rows(sqlite_url, "pragma journal_mode = wal")
    dbsh("-u", sqlite_url, "insert", "j", "--file", str(tmp_path / "j.jsonl"), "--errors", str(tmp_path / "e"))
    assert sqlite_rows(sqlite_url, "pragma journal_mode") == [("wal",)]


# -- the reading process (PostgreSQL reads ahead in a forked child) ---------------------------------
BIG = 200_000


def _start_import(tmp_path, url, table, env) -> tuple[subprocess.Popen, Path]:
    path = tmp_path / "big.jsonl"
    path.write_text("".join(f'{{"id": {i}, "v": "v{i}"}}\n' for i in range(1, BIG + 1)))
    proc = subprocess.Popen([sys.executable, "-m", "dbsh", "-u", url, "insert", table, "--file", str(path),
                             "--create", "--batch", "100"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True)   # a process group, as a shell gives
    return proc, path


def _group_gone(pgid: int, timeout: float = 10) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_ctrl_c_mid_import_finishes_the_batch_and_leaves_no_reading_process(tmp_path, postgres_url, dbsh_env):
    from tests.test_copy import _pg_ids, _wait_for_progress

    table = fresh("big")
    proc, path = _start_import(tmp_path, postgres_url, table, dbsh_env)
    _wait_for_progress(proc, Path(dbsh_env["XDG_DATA_HOME"]))
    os.killpg(proc.pid, signal.SIGINT)   # Ctrl-C reaches the whole group: dbsh and its reader
    out, err = proc.communicate()
    assert proc.returncode == 130, err
    written = len(_pg_ids(postgres_url, table))
    assert 0 < written < BIG and written % 100 == 0
    assert err == (f"dbsh: error: stopped by SIGINT: {written} rows written to {table} (the batch in flight was "
                   "finished) (run again with --resume to continue)\n")
    assert _group_gone(proc.pid)
    run = dbsh("-u", postgres_url, "insert", table, "--file", str(path), "--resume")
    assert run.code == 0, run.err
    assert sorted(_pg_ids(postgres_url, table)) == list(range(1, BIG + 1))


def test_a_malformed_line_read_ahead_stops_the_import_where_it_is(tmp_path, postgres_url):
    """The reading process's error reaches the writer in its place: the batches before it are in."""
    from tests.test_copy import _pg_ids

    table = fresh()
    dbsh("-u", postgres_url, "query", f"create table {table} (id integer primary key, s text)")
    lines = [json.dumps({"id": i, "s": f"s{i}"}) for i in range(1, 31)]
    lines[24] = '{"id": 25, "s": "s25",}'
    (tmp_path / "r.jsonl").write_text("\n".join(lines) + "\n")
    run = dbsh("-u", postgres_url, "insert", table, "--file", str(tmp_path / "r.jsonl"), "--batch", "10")
    assert run.code == 2
    assert run.err.startswith(f"dbsh: error: {tmp_path / 'r.jsonl'} line 25: malformed JSON: Expecting property "
                              "name enclosed in double quotes at column 23 (20 rows were committed to")
    assert sorted(_pg_ids(postgres_url, table)) == list(range(1, 21))


def _forked_children() -> list[int]:
    """This process's children that are forks of it (same command line): read-ahead processes."""
    me = Path("/proc/self/cmdline").read_bytes()
    pids = []
    for task in Path("/proc/self/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                if Path(f"/proc/{pid}/cmdline").read_bytes() == me:
                    pids.append(int(pid))
            except FileNotFoundError:
                pass
    return pids


def test_a_refused_batch_ends_the_reading_process_before_dbsh_says_so(tmp_path, postgres_url):
    table = fresh()
    dbsh("-u", postgres_url, "query", f"create table {table} (id integer primary key)")
    (tmp_path / "r.jsonl").write_text("".join(f'{{"id": {i % 30_000}}}\n' for i in range(60_000)))
    assert _forked_children() == []
    run = dbsh("-u", postgres_url, "insert", table, "--file", str(tmp_path / "r.jsonl"))
    assert run.code != 0 and "duplicate key value" in run.err and run.err.count("\n") == 1
    assert _forked_children() == []


def test_a_corrupt_gzip_read_ahead_is_a_one_line_error(tmp_path, postgres_url):
    """A file that cannot be read on (gzip's CRC check fails at its end) is a one-line error, from the
    reading process as from any reader, saying what the batches before it committed."""
    from tests.test_copy import _pg_ids

    table = fresh()
    dbsh("-u", postgres_url, "query", f"create table {table} (id integer primary key)")
    data = bytearray(gzip.compress("".join(f'{{"id": {i}}}\n' for i in range(1, 12_001)).encode()))
    data[-8] ^= 0xFF   # the CRC-32 of the trailer
    (tmp_path / "r.jsonl.gz").write_bytes(bytes(data))
    run = dbsh("-u", postgres_url, "insert", table, "--file", str(tmp_path / "r.jsonl.gz"))
    assert run.code == 2 and run.err.count("\n") == 1
    assert run.err.startswith(f"dbsh: error: cannot read {tmp_path / 'r.jsonl.gz'}: CRC check failed 0x")
    assert f"(10000 rows were committed to {table} before this batch" in run.err
    assert sorted(_pg_ids(postgres_url, table)) == list(range(1, 10_001))


def test_copy_text_prepared_as_utf8_respects_another_client_encoding(tmp_path, postgres_url):
    """The reading process prepares COPY text as UTF-8; a connection with another client encoding
    takes the documents instead, encoded by psycopg, and the text arrives as it was."""
    pg = Backend("postgres", postgres_url)
    table = fresh()
    dbsh("-u", postgres_url, "query", f"create table {table} (id integer primary key, s text)")
    (tmp_path / "e.jsonl").write_text('{"id": 1, "s": "caf\\u00e9 \\u00fc"}\n{"id": 2, "s": "plain"}\n')
    run = dbsh("-u", f"{postgres_url}?client_encoding=latin1", "insert", table, "--file", str(tmp_path / "e.jsonl"))
    assert run.code == 0, run.err
    assert sorted(pg.native_rows(table), key=lambda r: r["id"]) == [{"id": 1, "s": "café ü"}, {"id": 2, "s": "plain"}]


def test_a_killed_reading_process_is_an_error_saying_what_was_written(tmp_path, postgres_url, dbsh_env):
    from tests.test_copy import _pg_ids, _wait_for_progress

    table = fresh("big")
    proc, path = _start_import(tmp_path, postgres_url, table, dbsh_env)
    _wait_for_progress(proc, Path(dbsh_env["XDG_DATA_HOME"]))
    readers = [int(pid) for task in Path(f"/proc/{proc.pid}/task").iterdir()
               for pid in (task / "children").read_text().split()]
    assert len(readers) == 1
    os.kill(readers[0], signal.SIGKILL)
    out, err = proc.communicate()
    written = len(_pg_ids(postgres_url, table))
    assert proc.returncode == 1 and 0 < written < BIG
    assert err == (f"dbsh: error: the process reading the input ended unexpectedly ({written} rows were committed "
                   f"to {table} before this batch; the failing batch was rolled back) (run again with --resume to "
                   "continue)\n")
    run = dbsh("-u", postgres_url, "insert", table, "--file", str(path), "--resume")
    assert run.code == 0, run.err
    assert sorted(_pg_ids(postgres_url, table)) == list(range(1, BIG + 1))


def test_a_killed_import_leaves_no_reading_process_and_resumes_exactly(tmp_path, postgres_url, dbsh_env):
    from tests.test_copy import _pg_ids, _wait_for_progress

    table = fresh("big")
    proc, path = _start_import(tmp_path, postgres_url, table, dbsh_env)
    _wait_for_progress(proc, Path(dbsh_env["XDG_DATA_HOME"]))
    proc.send_signal(signal.SIGKILL)   # dbsh alone: its reader finds the pipe closed and ends
    proc.wait()
    assert _group_gone(proc.pid)
    partial = _pg_ids(postgres_url, table)
    assert 0 < len(partial) < BIG
    run = dbsh("-u", postgres_url, "insert", table, "--file", str(path), "--resume")
    assert run.code == 0, run.err
    ids = _pg_ids(postgres_url, table)
    assert len(ids) == BIG and sorted(ids) == list(range(1, BIG + 1))


def test_copy_columns_are_the_documents_values_by_key():
    """PostgreSQL's prepared COPY takes each run of same-keyed documents column by column: the same
    values, in the same runs, as the rows every other path writes."""
    import random

    from dbsh.drivers.sql.session import same_key_columns as _same_key_columns, same_keys as _same_keys

    rnd = random.Random(3)
    shapes = [("a", "b"), ("b", "a"), ("a",), ("a", "b", "c"), ()]
    for _ in range(300):
        docs = []
        for _ in range(rnd.randint(0, 12)):
            keys = rnd.choice(shapes[:rnd.randint(1, len(shapes))])
            docs.append({k: rnd.choice([1, "x", None, 2.5, True]) for k in keys})
        expected = [(keys, len(group), list(zip(*rows))) for keys, group, rows in _same_keys(docs)]
        got = [(keys, n, [tuple(c) for c in columns]) for keys, n, columns in _same_key_columns(docs)]
        assert got == expected


def test_a_file_import_shows_how_far_into_the_file_it_is_on_a_terminal(tmp_path, dbsh_env):
    """On a terminal, the bar of a file import is the share of the file read (compressed bytes for a
    .gz), with the rows, rows/s and the time left beside it; piped, nothing."""
    path = tmp_path / "r.jsonl.gz"
    path.write_bytes(gzip.compress("".join(f'{{"id": {i}, "v": "{i * 7919 % 10007}"}}\n'
                                           for i in range(1, 30_001)).encode()))
    run = dbsh_on_terminal("-u", f"sqlite:///{tmp_path}/a.db", "insert", "t", "--file", str(path), "--create",
                           "--batch", "1000", env={**dbsh_env, "COLUMNS": "150"})
    assert run.code == 0
    assert "r.jsonl.gz → t" in run.err and "100%" in run.err and "30,000 rows" in run.err
    assert "rows/s" in run.err and "/?" not in run.err
    assert json.loads(run.out) == {"action": "inserted", "collection": "t", "count": 30000}
    assert sqlite_rows(f"sqlite:///{tmp_path}/a.db", "select count(*) from t") == [(30000,)]
