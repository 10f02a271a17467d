"""Document readers: jsonl, json arrays (streamed), csv/tsv with inference, compression, errors."""

import gzip
import io

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
    assert [infer_scalar(v) for v in ["", "0", "-7", "1e3", "007", "TRUE", "x"]] == [None, 0, -7, 1000.0, "007", True, "x"]


def test_format_from_extension_and_gzip(tmp_path):
    path = tmp_path / "people.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write('{"a": 1}\n{"a": 2}\n')
    assert list(open_documents(str(path))) == [{"a": 1}, {"a": 2}]
    csv_path = tmp_path / "p.tsv"
    csv_path.write_text("a\tb\n1\t2\n")
    assert list(open_documents(str(csv_path))) == [{"a": 1, "b": 2}]


def test_missing_file():
    with pytest.raises(UsageError, match="cannot read /nonexistent.jsonl"):
        open_documents("/nonexistent.jsonl")
