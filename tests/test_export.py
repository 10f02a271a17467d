"""find --format jsonl/json on SQLite: the JSON SQLite builds itself (json_object, a window of rowids
at a time) must be byte for byte what the Python renderer writes from the rows, whatever the values."""

from __future__ import annotations

import io
import random
import sqlite3
import struct

import pytest

from dbsh import drivers, target
from dbsh.drivers.sql import sqlite_json as sql_driver
from dbsh.output import Renderer
from dbsh.query import Filter
from tests.dbshtest import dbsh


def _odd_table(path):
    conn = sqlite3.connect(path)
    conn.execute('create table odd (id integer primary key, t text, n integer, r real, b boolean, u, '
                 '"q""uote é" text)')
    rnd = random.Random(11)
    floats = [0.0, -0.0, 0.1 + 0.2, 1e16, 1e15, 999999999999999.9, 1e-5, 1e-4, 2.5e-7, 5e-324,
              1.7976931348623157e308, float("inf"), float("-inf"), 123.456, -0.001, 1e9, 123456789.123456]
    floats += [struct.unpack("d", struct.pack("Q", rnd.getrandbits(64)))[0] for _ in range(3000)]
    floats += [round(rnd.uniform(-1e6, 1e6), rnd.randint(0, 8)) for _ in range(3000)]
    floats = [f for f in floats if f == f]   # SQLite stores NaN as NULL
    texts = ["plain", "", 'quo"te', "back\\slash", "tab\tnew\nline\r", "\x00nul", "\x01\x1f\x7f", "é ünï", "😀",
             "\u2028", None]
    others = [None, 7, -3, 2 ** 62, 3.5, "text", b"bytes", b"\xff\xfe", 1e300]
    rows = []
    for i, f in enumerate(floats, 1):
        rows.append((i * 3, rnd.choice(texts), rnd.choice([None, 1, -2 ** 63, 2 ** 63 - 1, 4.5, "x", b"\x00"]),
                     f, rnd.choice([0, 1, None, 1, 0, 2, "x", 0.5]), rnd.choice(others),
                     rnd.choice(texts + [b"blob"])))
    conn.executemany("insert into odd values (?, ?, ?, ?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()
    return len(rows)


@pytest.fixture
def odd(tmp_path):
    n = _odd_table(tmp_path / "odd.db")
    session = drivers.connect(target.resolve(f"sqlite:///{tmp_path}/odd.db"))
    yield session, n
    session.close()


def _render(result, fmt, database_json):
    if not database_json:
        result.json_lines = None
    out = io.StringIO()
    count = Renderer(fmt, out).result(result)
    return out.getvalue(), count


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
@pytest.mark.parametrize("options", [{}, {"limit": 4321}, {"sort": [("r", -1)], "limit": 50}, {"skip": 10},
                                     {"where": {"b": True}}, {"fields": ["r", "id"]}], ids=str)
def test_sqlite_builds_exactly_the_json_the_renderer_writes(odd, monkeypatch, fmt, options):
    monkeypatch.setattr(sql_driver, "WINDOW", 997)   # many windows, the last one partial
    session, n = odd
    options = dict(options)
    where = Filter(options.pop("where", {}))
    fast = session.find("odd", where, **options)
    assert fast.json_lines is not None
    got, count = _render(fast, fmt, True)
    want, want_count = _render(session.find("odd", where, **options), fmt, False)
    assert count == want_count and count > 0
    assert got == want


def test_columns_the_database_cannot_render_keep_the_python_path(tmp_path):
    dbsh("-u", f"sqlite:///{tmp_path}/d.db", "insert", "d", '{"at": "x", "meta": {"a": [1, 2]}}', "--create")
    conn = sqlite3.connect(tmp_path / "d.db")
    conn.execute("create table when_ (id integer primary key, at datetime, price numeric)")
    conn.execute("insert into when_ values (1, '2024-05-06 07:08:09.000000', 1.50)")
    conn.commit()
    conn.close()
    session = drivers.connect(target.resolve(f"sqlite:///{tmp_path}/d.db"))
    try:
        assert session.find("when_", Filter({})).json_lines is None
        assert session.find("d", Filter({})).json_lines is None   # a JSON column
    finally:
        session.close()
    run = dbsh("-u", f"sqlite:///{tmp_path}/d.db", "find", "when_", "--format", "jsonl")
    assert run.out == '{"id":1,"at":"2024-05-06T07:08:09","price":1.5}\n'


def test_a_large_export_streams_every_row_once(tmp_path, monkeypatch):
    monkeypatch.setattr(sql_driver, "WINDOW", 1000)
    conn = sqlite3.connect(tmp_path / "big.db")
    conn.execute("create table big (id integer primary key, v text, f real)")
    conn.executemany("insert into big values (?, ?, ?)", ((i * 7, f"v{i}", i / 8) for i in range(1, 12346)))
    conn.execute("delete from big where id % 5 = 0")   # gaps in the rowids
    conn.commit()
    conn.close()
    run = dbsh("-u", f"sqlite:///{tmp_path}/big.db", "find", "big", "--format", "jsonl")
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    expected = [i for i in range(1, 12346) if (i * 7) % 5]
    assert lines == [f'{{"id":{i * 7},"v":"v{i}","f":{i / 8!r}}}' for i in expected]
    run = dbsh("-u", f"sqlite:///{tmp_path}/big.db", "find", "big", "--format", "json", "--limit", "2")
    assert run.out == '[\n  {"id":7,"v":"v1","f":0.125},\n  {"id":14,"v":"v2","f":0.25}\n]\n'
    run = dbsh("-u", f"sqlite:///{tmp_path}/big.db", "find", "big", '{"id": -1}', "--format", "json")
    assert run.out == "[]\n"
