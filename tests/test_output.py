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
    assert jsonable(dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)) == "2024-01-02T03:04:05+00:00"
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


def _as_json_wrote(value):
    """What json.dumps writes (compact, UTF-8, dbsh's jsonable for other types), NaN and the
    infinities as null, a decimal as a JSON number with exactly its digits: the renderer's contract."""
    import math
    import re

    def finite(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, decimal.Decimal) and v.is_finite():
            return f"@@decimal {v}@@"
        if isinstance(v, dict):
            return {k: finite(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [finite(x) for x in v]
        return v

    text = json.dumps(finite(value), ensure_ascii=False, separators=(",", ":"), default=jsonable)
    return re.sub(r'"@@decimal ([^@]*)@@"', r"\1", text)


def _both_ways(fmt, rows):
    """The renderer's output to a text stream, and to a UTF-8 stream over bytes (stdout's kind, where
    it writes the bytes orjson makes)."""
    text = io.StringIO()
    Renderer(fmt, text).rows(rows)
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8", newline="")
    Renderer(fmt, stream).rows(rows)
    stream.flush()
    return text.getvalue(), raw.getvalue().decode("utf-8")


def test_json_output_is_byte_for_byte_json_dumps_for_every_type():
    import random
    import struct
    import uuid

    class Score(float):
        pass

    class Count(int):
        pass

    rnd = random.Random(5)
    floats = [0.0, -0.0, 0.1 + 0.2, 1e16, 1e15, 9999999999999998.0, 1e-5, 1.5e-5, 1e-4, 2.5e-7, 5e-324, 1e22,
              1.7976931348623157e308, 123.456, float("nan"), float("inf"), float("-inf")]
    floats += [struct.unpack("d", struct.pack("Q", rnd.getrandbits(64)))[0] for _ in range(2000)]
    floats += [rnd.uniform(-1, 1) * 10 ** rnd.uniform(-8, 20) for _ in range(2000)]
    texts = ["", 'quo"te', "back\\slash", "tab\tnew\nline\r\b\f", "\x00\x01\x1f\x7f", "é ünï 日本", "😀", "\u2028",
             "1e5 and 0.00001 in text"]
    others = [None, True, False, 0, -1, 2 ** 63 - 1, -2 ** 63, 2 ** 64 - 1, 2 ** 64, -2 ** 64, 10 ** 40, Count(7),
              Score(2.5), decimal.Decimal("12.50"), decimal.Decimal("12345678901234567890.123456789"),
              decimal.Decimal("1E+3"), dt.datetime(2024, 1, 2, 3, 4, 5, 6), dt.date(2024, 1, 2), dt.time(3, 4),
              dt.datetime(2024, 1, 2, tzinfo=dt.UTC), dt.timedelta(seconds=1.5), b"hi", b"\xff\x00",
              uuid.UUID(int=5), (1, 2), {"nested": [1.5e-7, {"x": float("nan")}]}, {1: "int key", 2.5: "float key",
              None: "null key"}, {True: "bool key", False: "false key"}, {1e20: "exponent key"}]
    rows = [{"i": i, "f": f, "t": rnd.choice(texts), "o": rnd.choice(others)} for i, f in enumerate(floats)]
    rows += [{"o": o} for o in others]
    want_jsonl = "".join(_as_json_wrote(r) + "\n" for r in rows)
    assert _both_ways("jsonl", rows) == (want_jsonl, want_jsonl)
    want_json = "[\n  " + ",\n  ".join(_as_json_wrote(r) for r in rows) + "\n]\n"
    assert _both_ways("json", rows) == (want_json, want_json)
    assert _both_ways("json", []) == ("[]\n", "[]\n")


def test_json_output_is_valid_json_nan_and_infinities_as_null():
    rows = [{"nan": float("nan"), "inf": float("inf"), "neg": [float("-inf")], "big": 2 ** 70}]
    for out in _both_ways("jsonl", rows):
        assert out == '{"nan":null,"inf":null,"neg":[null],"big":1180591620717411303424}\n'
        assert json.loads(out, parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))["big"] == 2 ** 70


def test_csv_cells_are_cell_text_whatever_the_type():
    from dbsh.output import cell_text

    odd = [None, "", "a,b", 'say "hi"', "line\nbreak", 0, -1, 2 ** 70, 1.5, -0.0, 1e16, float("nan"), True, False,
           b"\xff", b"hi", {"a": [1]}, [1, "x"], decimal.Decimal("1.10"), dt.date(2024, 1, 2)]
    rows = [{"a": v, "b": w} for v in odd for w in (None, "x", 3)] + [{"a": 1}, {"b": 2}, {"c": 3}]
    out = io.StringIO()
    import csv

    want = csv.writer(out, lineterminator="\n")
    want.writerow(["a", "b"])
    for row in rows:
        want.writerow([cell_text(row.get(c)) for c in ("a", "b")])
    assert render("csv", rows=rows, columns=["a", "b"]) == out.getvalue()
    assert render("csv", rows=[{"only": None}, {"only": ""}], columns=["only"]) == 'only\n""\n""\n'
    assert render("csv", rows=[{}], columns=[]) == "\n\n"
