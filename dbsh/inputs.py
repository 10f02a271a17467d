"""Documents to insert: from command-line JSON, or streamed from a file or stdin.

jsonl, a JSON array (parsed element by element, never whole), csv or tsv with a header;
.gz and .zst compression by extension. Errors name the line they are on.
"""

from __future__ import annotations

import csv
import io
import json
import json.scanner
import re
import sys
from pathlib import Path
from typing import Any, Iterator

from dbsh.errors import UsageError

INPUT_FORMATS = ("jsonl", "json", "csv", "tsv")


def parse_json_arg(text: str, what: str = "document") -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"malformed JSON in {what}: {e.msg} at line {e.lineno} column {e.colno}") from None


def parse_document(text: str, what: str = "document") -> dict:
    value = parse_json_arg(text, what)
    if not isinstance(value, dict):
        raise UsageError(f"{what} must be a JSON object, got {type(value).__name__}: {text[:60]}")
    return value


_NUMERIC_START = frozenset("-0123456789")
_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?\Z")   # no group: an integer


def infer_scalar(text: str) -> Any:
    """A csv cell as the value it most plainly is: '' -> None, '42' -> 42, 'true' -> True.

    Numbers with leading zeros ('02134') stay text: they are codes, not quantities.
    """
    if text == "":
        return None
    first = text[0]
    if first in _NUMERIC_START:   # the common cases first, without a regex
        if text.isdigit() and text.isascii():
            return int(text) if first != "0" or len(text) == 1 else text
        number = _FLOAT.match(text)
        if number is None:
            return text
        return int(text) if number.lastindex is None else float(text)
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return text


_SCANNER = json.scanner.make_scanner(json.JSONDecoder())


class BadRow:
    """A row that could not be read, yielded instead of raised when the reader is ``lenient``
    (``insert --errors FILE``): where it is, why, and its text."""

    __slots__ = ("line", "reason", "text")

    def __init__(self, line: int, reason: str, text: str):
        self.line, self.reason, self.text = line, reason, text

    def __repr__(self) -> str:
        return f"BadRow(line={self.line}, reason={self.reason!r})"


SCHEMA_TYPES = {
    "text": str, "str": str, "string": str,
    "int": int, "integer": int, "bigint": int,
    "float": float, "real": float, "double": float, "number": float,
    "bool": None, "boolean": None,
    "json": None,
}


def parse_schema(text: str | None) -> dict[str, str] | None:
    """``--schema 'zip:text,count:int,tags:json'``: csv column types instead of inference."""
    if not text:
        return None
    schema: dict[str, str] = {}
    for part in text.split(","):
        name, sep, kind = part.strip().rpartition(":")
        kind = kind.strip().lower()
        if not sep or not name.strip() or kind not in SCHEMA_TYPES:
            raise UsageError(f"bad --schema entry {part.strip()!r}",
                             hint="use name:type with type one of text, int, float, bool, json")
        schema[name.strip()] = kind
    return schema


def convert_cell(text: str, kind: str) -> Any:
    """A csv cell as the type --schema gives it ('' is null except for text)."""
    if kind in ("text", "str", "string"):
        return text
    if text == "":
        return None
    if kind in ("bool", "boolean"):
        lowered = text.strip().lower()
        if lowered in ("true", "t", "yes", "1"):
            return True
        if lowered in ("false", "f", "no", "0"):
            return False
        raise ValueError(f"not a boolean: {text!r}")
    if kind == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"malformed JSON: {e.msg}") from None
    try:
        return SCHEMA_TYPES[kind](text)
    except ValueError:
        raise ValueError(f"not {'an integer' if SCHEMA_TYPES[kind] is int else 'a number'}: {text!r}") from None


class DocumentReader:
    """Iterate documents from a text stream; ``line`` is where the last document started.

    By default the first unreadable row raises ``UsageError`` naming its line; with ``lenient``
    it is yielded as a ``BadRow`` and reading goes on (a malformed JSON array cannot go on).
    """

    def __init__(self, stream: io.TextIOBase, fmt: str, name: str = "<stdin>", *, lenient: bool = False,
                 schema: dict[str, str] | None = None):
        if fmt not in INPUT_FORMATS:
            raise UsageError(f"unknown input format {fmt!r}", hint="choose " + ", ".join(INPUT_FORMATS))
        if schema and fmt not in ("csv", "tsv"):
            raise UsageError("--schema applies to csv and tsv input; JSON input carries its own types")
        self.stream = stream
        self.fmt = fmt
        self.name = name
        self.line = 0
        self.lenient = lenient
        self.schema = schema

    def __iter__(self) -> Iterator[dict]:
        return getattr(self, "_" + self.fmt)()

    def error(self, message: str) -> UsageError:
        return UsageError(f"{self.name} line {self.line}: {message}")

    def _bad(self, reason: str, text: str) -> BadRow:
        if not self.lenient:
            raise self.error(reason)
        return BadRow(self.line, reason, text)

    def _object(self, value: Any, text: str = "") -> dict | BadRow:
        if not isinstance(value, dict):
            return self._bad(f"expected a JSON object, got {type(value).__name__}", text or json.dumps(value))
        return value

    def _jsonl(self) -> Iterator[dict]:
        # the C scanner json.loads ends in, called directly: a third of the per-line cost; whatever
        # it does not take whole (errors, surrounding space) goes through json.loads as before
        scan = _SCANNER
        for number, text in enumerate(self.stream, 1):
            self.line = number
            try:
                value, end = scan(text, 0)
            except (StopIteration, json.JSONDecodeError, RecursionError):
                end = -1
            if end == len(text) - 1 and text[end] == "\n" and type(value) is dict:
                yield value
                continue
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as e:
                # e.pos, not e.colno: a line cut short fails on its newline, "column 1" of the next line
                yield self._bad(f"malformed JSON: {e.msg} at column {e.pos + 1}", text.rstrip("\r\n"))
                continue
            yield self._object(value, text.rstrip("\r\n"))

    def _json(self) -> Iterator[dict]:
        decoder = json.JSONDecoder()
        buf, pos, self.line, lines_before = "", 0, 1, 1
        eof = False
        started = False

        def fill() -> bool:
            nonlocal buf, pos, eof, lines_before
            chunk = self.stream.read(1 << 16)
            if not chunk:
                eof = True
                return False
            lines_before += buf.count("\n", 0, pos)
            buf = buf[pos:] + chunk
            pos = 0
            return True

        def skip_space() -> None:
            nonlocal pos
            while True:
                while pos < len(buf) and buf[pos] in " \t\r\n":
                    pos += 1
                if pos < len(buf) or not fill():
                    return

        skip_space()
        if pos < len(buf) and buf[pos] == "{":   # a single object is a one-document array
            started = None
        elif pos < len(buf) and buf[pos] == "[":
            pos += 1
            started = True
        else:
            raise self.error("expected a JSON array of objects")
        while True:
            skip_space()
            if started and pos < len(buf) and buf[pos] == "]":
                return
            while True:
                try:
                    value, end = decoder.raw_decode(buf, pos)
                    break
                except json.JSONDecodeError as e:
                    if eof or not fill():
                        self.line = lines_before + buf.count("\n", 0, e.pos)
                        raise self.error(f"malformed JSON: {e.msg}") from None
            self.line = lines_before + buf.count("\n", 0, pos)
            pos = end
            yield self._object(value)
            if started is None:
                return
            skip_space()
            if pos < len(buf) and buf[pos] == ",":
                pos += 1
            elif pos < len(buf) and buf[pos] == "]":
                return
            else:
                raise self.error("expected ',' or ']' in the JSON array")

    def _csv(self, delimiter: str = ",") -> Iterator[dict]:
        reader = csv.reader(self.stream, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise self.error(f"bad csv: {e}") from None
        if not header or any(not h.strip() for h in header):
            self.line = 1
            raise self.error("the csv header has an empty column name")
        width = len(header)
        schema = self.schema or {}
        unknown = sorted(set(schema) - set(header))
        if unknown:
            self.line = 1
            raise self.error(f"--schema names {', '.join(repr(u) for u in unknown)}, not in the header")
        kinds = [schema.get(h) for h in header]
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                self.line = reader.line_num
                yield self._bad(f"bad csv: {e}", "")
                continue
            self.line = reader.line_num
            if not cells:
                continue
            if len(cells) != width:
                yield self._bad(f"{len(cells)} fields, but the header has {width}", delimiter.join(cells))
                continue
            try:
                if schema:
                    yield {h: infer_scalar(c) if k is None else convert_cell(c, k)
                           for h, c, k in zip(header, cells, kinds)}
                else:
                    yield dict(zip(header, map(infer_scalar, cells)))
            except ValueError as e:
                yield self._bad(str(e), delimiter.join(cells))

    def _tsv(self) -> Iterator[dict]:
        return self._csv("\t")


def _format_from_name(name: str) -> str | None:
    for suffix in reversed(Path(name).suffixes):
        s = suffix.lower().lstrip(".")
        if s in ("jsonl", "ndjson"):
            return "jsonl"
        if s in INPUT_FORMATS:
            return s
    return None


def _open_binary(path: str):
    if path == "-":
        return sys.stdin.buffer
    try:
        raw = open(path, "rb")
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    lower = path.lower()
    if lower.endswith(".gz"):
        import gzip

        return gzip.open(raw)
    if lower.endswith(".zst"):
        try:
            import zstandard
        except ModuleNotFoundError:
            raise UsageError("reading .zst needs the zstandard package", hint="pip install 'dbsh[zstd]'") from None
        return zstandard.ZstdDecompressor().stream_reader(raw)
    return raw


def open_documents(path: str, fmt: str | None = None, *, lenient: bool = False,
                   schema: dict[str, str] | None = None) -> DocumentReader:
    """A reader for ``path`` ('-' is stdin); the format from ``fmt``, the name, or the first byte."""
    binary = _open_binary(path)
    if not hasattr(binary, "peek"):
        binary = io.BufferedReader(binary)
    fmt = fmt or _format_from_name(path)
    stream = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    if fmt is None:
        peek = binary.peek(64)
        first = peek.lstrip()[:1].lstrip(b"\xef\xbb\xbf")
        fmt = "json" if first == b"[" else "jsonl" if first in (b"{", b"") else "csv"
    return DocumentReader(stream, fmt, "<stdin>" if path == "-" else path, lenient=lenient, schema=schema)
