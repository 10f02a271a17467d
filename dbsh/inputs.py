"""Documents to insert: from command-line JSON, or streamed from a file or stdin.

jsonl, a JSON array (parsed element by element, never whole), csv or tsv with a header;
.gz and .zst compression by extension. Errors name the line they are on.
"""

from __future__ import annotations

import csv
import io
import json
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


_INT = re.compile(r"-?(0|[1-9][0-9]*)\Z")
_FLOAT = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?\Z")


def infer_scalar(text: str) -> Any:
    """A csv cell as the value it most plainly is: '' -> None, '42' -> 42, 'true' -> True.

    Numbers with leading zeros ('02134') stay text: they are codes, not quantities.
    """
    if text == "":
        return None
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return text


class DocumentReader:
    """Iterate documents from a text stream; ``line`` is where the last document started."""

    def __init__(self, stream: io.TextIOBase, fmt: str, name: str = "<stdin>"):
        if fmt not in INPUT_FORMATS:
            raise UsageError(f"unknown input format {fmt!r}", hint="choose " + ", ".join(INPUT_FORMATS))
        self.stream = stream
        self.fmt = fmt
        self.name = name
        self.line = 0

    def __iter__(self) -> Iterator[dict]:
        return getattr(self, "_" + self.fmt)()

    def error(self, message: str) -> UsageError:
        return UsageError(f"{self.name} line {self.line}: {message}")

    def _object(self, value: Any) -> dict:
        if not isinstance(value, dict):
            raise self.error(f"expected a JSON object, got {type(value).__name__}")
        return value

    def _jsonl(self) -> Iterator[dict]:
        for number, text in enumerate(self.stream, 1):
            self.line = number
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as e:
                raise self.error(f"malformed JSON: {e.msg} at column {e.colno}") from None
            yield self._object(value)

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
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                self.line = reader.line_num
                raise self.error(f"bad csv: {e}") from None
            self.line = reader.line_num
            if not cells:
                continue
            if len(cells) != width:
                raise self.error(f"{len(cells)} fields, but the header has {width}")
            yield {h: infer_scalar(c) for h, c in zip(header, cells)}

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
            raise UsageError("reading .zst needs the zstandard package", hint="pip install zstandard") from None
        return zstandard.ZstdDecompressor().stream_reader(raw)
    return raw


def open_documents(path: str, fmt: str | None = None) -> DocumentReader:
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
    return DocumentReader(stream, fmt, "<stdin>" if path == "-" else path)
