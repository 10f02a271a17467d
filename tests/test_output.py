"""The renderer: exact bytes for each format, lossless json, bounded tables, streaming."""

import datetime as dt
import decimal
import io
import json

import pytest

from dbsh.drivers.base import Result, WriteResult
from dbsh.errors import UsageError
from dbsh.output import Renderer, jsonable

ROWS = [{"id": 1, "name": "Ann", "tags": ["a"], "ok": True}, {"id": 2, "name": "Bob, Jr.", "tags": None, "ok": False}]


def render(fmt, rows=ROWS, columns=None, **kw):
    out = io.StringIO()
    Renderer(fmt, out, **kw).rows(rows, columns)
    return out.getvalue()


def test_jsonl_exact():
    assert render("jsonl") == ('{"id":1,"name":"Ann","tags":["a"],"ok":true}\n'
                               '{"id":2,"name":"Bob, Jr.","tags":null,"ok":false}\n')


def test_json_is_one_array():
    assert json.loads(render("json")) == ROWS
    assert render("json", rows=[]) == "[]\n"


def test_csv_and_tsv_exact():
    assert render("csv") == 'id,name,tags,ok\n1,Ann,"[""a""]",true\n2,"Bob, Jr.",,false\n'
    assert render("tsv") == 'id\tname\ttags\tok\n1\tAnn\t["a"]\ttrue\n2\tBob, Jr.\t\tfalse\n'


def test_csv_header_is_union_of_keys_for_schemaless_rows():
    assert render("csv", rows=[{"a": 1}, {"b": 2}]) == "a,b\n1,\n,2\n"


def test_lossless_json_values():
    assert jsonable(dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)) == "2024-01-02T03:04:05+00:00"
    assert jsonable(dt.date(2024, 1, 2)) == "2024-01-02"
    assert jsonable(decimal.Decimal("12.50")) == 12.5
    assert jsonable(decimal.Decimal("10")) == 10
    big = decimal.Decimal("12345678901234567890.123456789")
    assert jsonable(big) == str(big)                     # exact text when a float would round
    assert jsonable(b"\xff\x00") == {"$binary": {"base64": "/wA=", "subType": "00"}}
    assert jsonable(b"hi") == "hi"


def test_table_is_bounded_with_a_note():
    text = render("table", rows=({"n": i} for i in range(50)), max_rows=10)
    assert " 9 " in text and " 10 " not in text
    assert "(50 rows; 40 more not shown" in text


def test_unknown_format():
    with pytest.raises(UsageError, match="unknown format 'xml'"):
        Renderer("xml", io.StringIO())


def test_write_result_forms():
    out = io.StringIO()
    Renderer("table", out).write(WriteResult("inserted", "people", 2))
    assert out.getvalue() == "inserted 2 rows into people\n"
    out = io.StringIO()
    Renderer("jsonl", out).write(WriteResult("updated", "people", 1, matched=3))
    assert json.loads(out.getvalue()) == {"action": "updated", "collection": "people", "count": 1, "matched": 3}


def test_rows_stream_one_at_a_time():
    """jsonl writes each row before the next is produced (constant memory)."""
    out = io.StringIO()
    seen = []

    def rows():
        for i in range(3):
            seen.append(out.getvalue().count("\n"))
            yield {"i": i}

    Renderer("jsonl", out).result(Result(rows()))
    assert seen == [0, 1, 2]
