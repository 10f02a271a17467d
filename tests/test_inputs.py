"""Document readers: jsonl, json arrays (streamed), csv/tsv with inference, compression, errors."""

import gzip
import io
import json
import re

import pytest

from dbsh.errors import UsageError
from dbsh.inputs import DocumentReader, infer_scalar, open_documents


def read(text, fmt):
    return list(DocumentReader(io.StringIO(text), fmt))


def test_jsonl_skips_blank_lines():
    assert read('{"a": 1}\n\n{"a": 2}\n', "jsonl") == [{"a": 1}, {"a": 2}]


def test_jsonl_error_names_the_line():
    with pytest.raises(UsageError, match="line 3: malformed JSON"):
        read('{"a": 1}\n{"a": 2}\n{"a": \n', "jsonl")
    with pytest.raises(UsageError, match="line 1: expected a JSON object, got list"):
        read('[1]\n', "jsonl")


def test_json_array_streams_in_small_chunks():
    text = "[" + ",".join(f'{{"i": {i}, "s": "{"x" * 50}"}}' for i in range(5000)) + "]"
    docs = read(text, "json")
    assert len(docs) == 5000 and docs[-1]["i"] == 4999


def test_json_array_errors():
    with pytest.raises(UsageError, match="expected a JSON array"):
        read('"x"', "json")
    with pytest.raises(UsageError, match="line 2: malformed JSON"):
        read('[{"a": 1},\n{"a": }]', "json")
    assert read("[]", "json") == []
    assert read('{"a": 1}', "json") == [{"a": 1}]


def test_csv_inference_and_width_errors():
    docs = read("name,count,zip,ok,note\nAnn,3,02134,true,\nBob,1.5,10001,false,hi\n", "csv")
    assert docs == [{"name": "Ann", "count": 3, "zip": "02134", "ok": True, "note": None},
                    {"name": "Bob", "count": 1.5, "zip": 10001, "ok": False, "note": "hi"}]
    with pytest.raises(UsageError, match="line 3: 3 fields, but the header has 2"):
        read("a,b\n1,2\n1,2,3\n", "csv")


def test_infer_scalar():
    got = [infer_scalar(v) for v in ["", "0", "-7", "1e3", "007", "TRUE", "x"]]
    assert got == [None, 0, -7, 1000.0, "007", True, "x"]


def test_format_from_extension_and_gzip(tmp_path):
    path = tmp_path / "people.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write('{"a": 1}\n{"a": 2}\n')
    assert list(open_documents(str(path))) == [{"a": 1}, {"a": 2}]
    csv_path = tmp_path / "p.tsv"
    csv_path.write_text("a\tb\n1\t2\n")
    assert list(open_documents(str(csv_path))) == [{"a": 1, "b": 2}]


def test_missing_file():
    with pytest.raises(UsageError, match=r"cannot read /nonexistent\.jsonl"):
        open_documents("/nonexistent.jsonl")


def test_infer_column_matches_infer_scalar_cell_by_cell():
    import random

    from dbsh.inputs import infer_column

    rnd = random.Random(7)
    cells = ["", "0", "00", "-0", "-", "1", "-12", "007", "1.5", "-0.25", "1e5", "2E-3", "1.", ".5", "true",
             "FALSE", "True", "x", "1e", "٣", " 1", "1 ", "0x10", "nan", "a\nb", "1\n2", "1\r", "9" * 30]
    for _ in range(5000):
        pool = rnd.sample(cells, rnd.randint(1, 4))
        column = [rnd.choice(pool) for _ in range(rnd.randint(1, 6))]
        got, want = list(infer_column(column)), [infer_scalar(c) for c in column]
        assert [(type(v), v) for v in got] == [(type(v), v) for v in want], column


def batches(data: bytes, fmt="jsonl", size=1000, skip_to=0, lenient=True):
    return list(DocumentReader(io.BytesIO(data) if fmt in ("jsonl", "json") else io.StringIO(data.decode()), fmt,
                               lenient=lenient).batches(size, skip_to))


def test_jsonl_bytes_are_read_exactly_whatever_the_fast_path_cannot_take():
    big = 123456789012345678901234567890
    data = (b'\xef\xbb\xbf{"a": 1}\r\n' + b'{"a": %d}\n' % big + b"\n" + b'{"a": NaN}\n' + b'{"a": "\xff"}\n'
            + b'{"a": -9223372036854775809}\n' + b'{"a": "x"}')
    (batch,) = batches(data)
    assert list(batch.positions) == [1, 2, 4, 6, 7]
    assert [d["a"] for d in batch.docs][:2] == [1, big] and type(batch.docs[1]["a"]) is int
    assert batch.docs[3]["a"] == -9223372036854775809 and batch.docs[4] == {"a": "x"}
    assert [(b.line, b.reason) for b in batch.bad] == [(5, "not UTF-8 text: byte 8 of the line")]
    fast = batches(b'{"a": 1}\n{"a": 2.5}\n{"a": [1, {"b": null}]}\n', size=2)
    assert [(list(b.positions), b.docs, b.end) for b in fast] == [
        ([1, 2], [{"a": 1}, {"a": 2.5}], 2), ([3], [{"a": [1, {"b": None}]}], 3)]
    assert [b.scalars for b in fast] == [True, False]   # only the first holds no containers
    assert [b.scalars for b in batches(b'{"a": "{"}\n{"b": 1}\n')] == [False]   # a brace in a string: unknown
    resumed = batches(b'{"a": 1}\n{"a": 2}\n{"a": 3}\n{"a": 4}\n{"a": 5}\n', size=2, skip_to=3)
    assert [(list(b.positions), b.docs, b.end) for b in resumed] == [([4], [{"a": 4}], 4), ([5], [{"a": 5}], 5)]


def test_csv_rows_spanning_lines_keep_their_starting_line():
    data = b'a,b\n1,"two\nlines"\n2,x\n\n3\n4,"\r\nz"\n5,y,extra\n'
    (batch,) = batches(data, "csv")
    assert list(batch.positions) == [2, 4, 7]
    assert batch.cells == [["1", "two\nlines"], ["2", "x"], ["4", "\r\nz"]]
    assert [(b.line, b.reason) for b in batch.bad] == [(6, "1 fields, but the header has 2"),
                                                         (9, "3 fields, but the header has 2")]
    assert batch.documents()[0] == {"a": 1, "b": "two\nlines"}
    resumed = batches(data, "csv", size=2, skip_to=4)
    assert [(b.cells, [x.line for x in b.bad]) for b in resumed] == [([], []), ([], [6]), ([["4", "\r\nz"]], [9])]


def test_json_array_resumes_by_element_not_by_line():
    data = b'[{"i": 1}, {"i": 2}, {"i": 3},\n {"i": 4}, {"i": 5}]'
    got = batches(data, "json", size=2, skip_to=3)
    assert [(b.positions, b.docs, b.end) for b in got] == [([], [], 2), ([2], [{"i": 4}], 4), ([2], [{"i": 5}], 5)]


def test_plain_csv_blocks_are_only_what_every_csv_reader_reads_alike():
    from dbsh.inputs import plain_block

    assert plain_block(["1,a\n", "2,\n"], 2, ",") == "1,a\n2,\n"
    assert plain_block(["1,a\r\n", "2,b"], 2, ",") == "1,a\n2,b\n"          # CRLF, no final newline
    for lines in (['1,"a"\n'], ["1,a\r", "2,b\n"], ["1,a\n", "\n", "2,b\n"], ["1,a,b\n"], ["1\n"],
                  ["1,a\x00\n"]):
        assert plain_block(lines, 2, ",") is None, lines
    assert plain_block(["a\n", "\\.\n"], 1, ",") is None                     # PostgreSQL's end of data
    assert plain_block(["a\n", "\n"], 1, ",") is None
    assert plain_block(["a\tb\n"], 2, "\t") == "a\tb\n"


def test_a_csv_turns_to_the_csv_reader_at_the_first_batch_that_is_not_plain():
    data = b'a,b\n1,x\n2,y\n3,"q,uoted"\n4,z\n5,w\n'
    got = batches(data, "csv", size=2)
    assert [(b.text, list(b.positions), b.cells) for b in got] == [
        ("1,x\n2,y\n", [2, 3], [["1", "x"], ["2", "y"]]),
        (None, [4, 5], [["3", "q,uoted"], ["4", "z"]]),
        (None, [6], [["5", "w"]])]
    assert got[0].flat_cells() == ["1", "x", "2", "y"] and got[1].flat_cells() == ["3", "q,uoted", "4", "z"]


@pytest.fixture(params=[1 << 20, 16], ids=["1MiB-reads", "16-byte-reads"])
def json_chunk(request, monkeypatch):
    """The array reader at its own read size, and at reads so small that every element, string and
    line spans several of them."""
    import dbsh.inputs

    monkeypatch.setattr(dbsh.inputs, "JSON_CHUNK", request.param)
    return request.param


def test_json_array_elements_with_brackets_quotes_and_nesting_keep_their_lines(json_chunk):
    docs = [{"s": 'a},{"b": 1}]', "q": 'say \\"}]\\" \u00e9 \u6f22', "n": [{"x": [1, {"y": "]"}]}, []]},
            {"deep": {"a": {"b": {"c": [[[{"d": "}"}]]]}}}}, {"big": 123456789012345678901234567890, "nan": None},
            {"e": "\\u007d"}]
    text = "\ufeff[\n" + ",\n\n".join(json.dumps(d) for d in docs) + "\n]\n"
    for stream in (io.BytesIO(text.encode()), io.StringIO(text[1:])):   # as a file is read, and as text
        got = list(DocumentReader(stream, "json").batches(2))
        assert [d for b in got for d in b.docs] == docs
        assert [p for b in got for p in b.positions] == [2, 4, 6, 8]
        assert type(got[1].docs[0]["big"]) is int
    pretty = json.dumps(docs, indent=2).encode()
    starts = [n for n, line in enumerate(pretty.decode().splitlines(), 1) if line == "  {"]
    assert [p for b in batches(pretty, "json", size=3) for p in b.positions] == starts


def test_json_array_errors_name_their_line(json_chunk):
    for data, line, what in ((b'[{"a": 1},\n{"a": 2},\n{"a": }]', 3, "malformed JSON"),
                             (b'[{"a": 1},\n\n{"a": 2} {"a": 3}]', 3, "expected ',' or ']'"),
                             (b'[{"a": 1},\n{"a": "x\n"}]', 2, "malformed JSON: Invalid control character"),
                             (b'\xef\xbb\xbf[\n{"a": 1},\n[2]]', 3, "expected a JSON object, got list"),
                             (b'[{"a": 1},\n{"a": "\xff"}]', 2, "not UTF-8 text")):
        with pytest.raises(UsageError, match=f"line {line}: {re.escape(what)}"):
            batches(data, "json", lenient=False)


def test_a_cut_off_json_array_is_an_error_on_its_last_line(json_chunk):
    data = b"[\n" + b",\n".join(b'{"i": %d, "s": "[{\\"x\\"}]"}' % i for i in range(200)) + b"\n]\n"
    assert len([d for b in batches(data, "json") for d in b.docs]) == 200
    for cut in (len(data) - 3, len(data) // 2, len(data) // 2 + 7, 40):
        with pytest.raises(UsageError, match=r"line \d+: malformed JSON") as e:
            batches(data[:cut], "json", lenient=False)
        last = data[:cut].count(b"\n") + 1   # one element a line: the cut one starts on the last line
        assert f"line {last}:" in str(e.value)


def test_a_20_mb_element_is_read_whole(tmp_path):
    big = {"blob": "x" * 20_000_000, "list": [{"a": i, "s": "}]"} for i in range(1000)]}
    path = tmp_path / "big.json"
    path.write_bytes(b'[{"before": 1},\n' + json.dumps(big).encode() + b',\n{"after": 2}]')
    got = list(open_documents(str(path)).batches(1000))
    assert [len(d) for d in got[0].docs] == [1, 2, 1] and got[0].docs[1] == big
    assert list(got[0].positions) == [1, 2, 3]


def test_json_array_batches_cross_process_boundaries_as_read(json_chunk):
    import pickle

    data = b"[" + b",".join(b'{"i": %d}' % i for i in range(25)) + b"]"
    got = batches(data, "json", size=10)
    assert [(len(b), b.end) for b in got] == [(10, 10), (10, 20), (5, 25)]
    again = pickle.loads(pickle.dumps(got[1]))
    assert again.docs == [{"i": i} for i in range(10, 20)] and list(again.positions) == [1] * 10
