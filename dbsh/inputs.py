"""Documents to insert: from command-line JSON, or streamed from a file or stdin.

jsonl, a JSON array (parsed element by element, never whole), csv or tsv with a header;
.gz and .zst compression by extension. Errors name the line they are on.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re
import sys
from collections.abc import Iterator, Sequence
from itertools import chain, islice, repeat
from pathlib import Path
from typing import Any, cast

import orjson

from dbsh.errors import UsageError

INPUT_FORMATS = ("jsonl", "json", "csv", "tsv")


def parse_json_arg(text: str, what: str = "document") -> Any:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:   # bytes that were not UTF-8 (kept as surrogates by the command line)
        raise UsageError(f"{what} is not UTF-8 text (character {e.start + 1})") from None
    try:
        return loads_checked(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"malformed JSON in {what}: {e.msg} at line {e.lineno} column {e.colno}") from None
    except BadValue as e:
        raise UsageError(f"{e} in {what}") from None


class BadValue(ValueError):
    """JSON that parses in Python but has no faithful value to store (exit 2, naming why)."""


MAX_DEPTH = 100      # nesting levels a document may have (MongoDB allows 100; Python's parser recurses)


class ExactNumber(float):
    """A JSON number with more digits than a double keeps (12345678901234567890.123456789): a float to
    everything that takes floats, its exact digits to str() and repr(), so a decimal column (Cassandra's
    decimal, coerced from str()) and dbsh's JSON output keep every digit (find | insert stays exact)."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> ExactNumber:
        number = super().__new__(cls, text)
        number.text = text
        return number

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__


def finite_float(text: str) -> float:
    """A JSON number as a float, refusing one a double cannot hold (1e400 would be infinity); one with
    more digits than a double keeps is an ExactNumber."""
    value = float(text)
    if value in (math.inf, -math.inf):
        raise BadValue(f"the number {text[:40]} is out of range (beyond a double's 1.8e308)")
    if len(text) > 17 and _decimal(repr(value)) != _decimal(text):
        return ExactNumber(text)
    return value


def _decimal(text: str):
    import decimal

    return decimal.Decimal(text)


_SURROGATE_ESCAPE = re.compile(r"\\[uU][dD][89a-fA-F]")


def checked_json(value: Any, text: str | bytes | None = None) -> Any:
    """A parsed value, refused (BadValue) when it nests deeper than MAX_DEPTH or holds a lone surrogate
    ("\\ud800": text with no UTF-8 form, which no database stores). Cheap: the surrogate check only
    runs when the text has such an escape, the depth walk only over containers."""
    _check_depth(value)
    if text is not None:
        found = _SURROGATE_ESCAPE.search(text if isinstance(text, str) else text.decode("utf-8", "replace"))
        if found is not None:
            try:
                json.dumps(value, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError as e:
                raise BadValue(f"a lone surrogate ({e.object[e.start:e.end].encode('unicode_escape').decode()}) "
                               "is not valid Unicode text") from None
    return value


def _check_depth(value: Any, *, many: bool = False) -> None:
    """BadValue when ``value`` (``many``: each of the values of the list) nests deeper than MAX_DEPTH."""
    level = value if many else [value]
    for _ in range(MAX_DEPTH + 1):
        level = [v for item in level if isinstance(item, dict | list)
                 for v in (item.values() if isinstance(item, dict) else item) if isinstance(v, dict | list)]
        if not level:
            return
    raise BadValue(f"a document nested deeper than {MAX_DEPTH} levels")


def _value_end(buf: str, pos: int) -> int:
    """Where the JSON value starting at ``pos`` ends (brackets and strings followed, nothing parsed)."""
    depth, i, n = 0, pos, len(buf)
    while i < n:
        c = buf[i]
        if c == '"':
            i += 1
            while i < n and buf[i] != '"':
                i += 2 if buf[i] == "\\" else 1
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
            if depth <= 0:
                return i + 1
        elif depth == 0 and c in ",\n":
            return i
        i += 1
    return n


def loads_checked(text: str) -> Any:
    """json.loads for a line or an argument: a document nested past Python's parser's limit, a number
    past a double or a lone surrogate are BadValue, not a crash."""
    try:
        value = json.loads(text, parse_float=finite_float)
    except RecursionError:
        raise BadValue(f"a document nested deeper than {MAX_DEPTH} levels") from None
    return checked_json(value, text)


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



# Whole csv columns at once: one regex over the joined cells decides, for the common columns
# (all integers, all decimals, all booleans, plain text), what infer_scalar would make of every
# cell, and the conversion runs in C. Anything else goes cell by cell through infer_scalar.
_INT_COLUMN = re.compile(r"(?:(?:-?(?:0|[1-9][0-9]*))?\n)*\Z")
_FLOAT_COLUMN = re.compile(r"(?:(?:-?(?:0|[1-9][0-9]*)(?:\.[0-9]+(?:[eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+))?\n)*\Z")
# a cell infer_scalar might not keep as text: empty, number-like, or a boolean word
_NOT_PLAIN_TEXT = re.compile(r"\n(?:[-0-9\n]|(?i:true|false)\n)")
_BOOL_WORDS = {"true": True, "false": False, "": None}


def infer_column(cells: tuple[str, ...] | list[str]) -> list | tuple:
    """``[infer_scalar(c) for c in cells]``, computed a column at a time."""
    joined = "\n".join(cells) + "\n"
    if joined.count("\n") != len(cells):   # a cell with a line break: the regexes cannot tell
        return list(map(infer_scalar, cells))
    if not _NOT_PLAIN_TEXT.search("\n" + joined):
        return cells
    if "" in cells:
        if _INT_COLUMN.match(joined):
            return [int(c) if c else None for c in cells]
        if _FLOAT_COLUMN.match(joined):
            return [float(c) if c else None for c in cells]
    elif _INT_COLUMN.match(joined):
        return list(map(int, cells))
    elif _FLOAT_COLUMN.match(joined):
        return list(map(float, cells))
    first = cells[0].lower()
    if first in _BOOL_WORDS:
        lowered = list(map(str.lower, cells))
        if set(lowered) <= _BOOL_WORDS.keys():
            return list(map(_BOOL_WORDS.__getitem__, lowered))
    return list(map(infer_scalar, cells))


def infer_rows(header: list[str], rows: list[list[str]]) -> list[dict]:
    """csv rows (lists of cells, each as wide as the header) as documents, types inferred."""
    if not rows:
        return []
    columns = [infer_column(c) for c in zip(*rows)]
    return list(map(dict, map(zip, repeat(header), zip(*columns))))


_fast_loads = orjson.loads
# 19 digits in a row: maybe an integer orjson would read as a float (it keeps 64 bits); json reads it
# exactly. Digits mapped to 0 and a substring search: ten times faster than a regex.
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_NINETEEN_DIGITS = re.compile(r"[0-9]{19}")


def _whole_batch(lines: list) -> tuple[list[dict], bytes | str] | None:
    """(documents, the lines joined) when orjson reads every line as an object, exactly; None when it
    cannot take the lines whole (a bad or blank line, a BOM, NaN, an integer it would turn into a
    float): json must read them one by one. (Every line holds a whole object, so joining them with
    nothing between cannot run the digits of two lines together.)"""
    try:
        docs = list(map(_fast_loads, lines))
    except ValueError:   # orjson.JSONDecodeError is one
        return None
    if set(map(type, docs)) != {dict}:
        return None
    text = type(lines[0])().join(lines)
    return None if _long_number(text) else (docs, text)


def parse_jsonl_lines(lines: list[bytes]) -> list[dict]:
    """The documents of jsonl lines the reader found good (Batch.lines), parsed as it parsed them."""
    whole = _whole_batch(lines)
    if whole is not None:
        return whole[0]
    return [json.loads(line.decode("utf-8").removeprefix("\ufeff")) for line in lines]


def _long_number(text: bytes | str) -> bool:
    if isinstance(text, bytes):
        return b"0" * 19 in text.translate(_DIGITS_TO_ZERO)
    return _NINETEEN_DIGITS.search(text) is not None


JSON_CHUNK = 1 << 20   # text of a JSON array read at a time
# by the type of the text (bytes or str): its symbols, its spaces (a pattern that always matches), its BOM
_JSON_SYMBOLS: dict[type, tuple[Any, ...]] = {bytes: (b"\n", b"[", b"]", b"{", b"}", b","),
                                              str: ("\n", "[", "]", "{", "}", ",")}
_JSON_SPACE: dict[type, Any] = {bytes: re.compile(rb"[ \t\r\n]*"), str: re.compile(r"[ \t\r\n]*")}
_BOM: dict[type, Any] = {bytes: b"\xef\xbb\xbf", str: "\ufeff"}
_DECODER = json.JSONDecoder(parse_float=finite_float)


class _Malformed(Exception):
    def __init__(self, line: int, message: str):
        self.line, self.message = line, message


def _exact_elements(buf: bytes | str, pos: int, line: int, eof: bool, one: bool = False):
    """Elements of a JSON array from ``buf[pos:]`` (at an element or a ','), read one by one by json:
    (values, the line each starts on, the position and line reading stopped at, whether it stopped
    right after an element). It stops at ']', or, short of ``eof``, at an element the buffer cuts."""
    if isinstance(buf, bytes):
        try:
            text, _ = codecs.utf_8_decode(buf[pos:], "strict", eof)
        except UnicodeDecodeError as e:
            raise _Malformed(line + buf.count(b"\n", pos, pos + e.start),
                             "not UTF-8 text") from None
    else:
        text = buf[pos:]
    values: list = []
    lines: list[int] = []
    i, n, at, after = 0, len(text), 0, False
    space = _JSON_SPACE[str]
    while True:
        i = space.match(text, i).end()
        if i >= n or text[i] == "]":
            break
        line += text.count("\n", at, i)
        at = i
        if after:
            if text[i] != ",":
                raise _Malformed(line, "expected ',' or ']' in the JSON array")
            i += 1
            after = False
            continue
        try:
            value, end = _DECODER.raw_decode(text, i)
            value = checked_json(value, text[i:end])
        except BadValue as e:   # a number past a double, a lone surrogate, too deep: a bad row in its place
            end = _value_end(text, i)
            if end >= n and not eof:
                break
            value = e
        except RecursionError:
            end = _value_end(text, i)
            if end >= n and not eof:
                break
            value = BadValue(f"a document nested deeper than {MAX_DEPTH} levels")
        except json.JSONDecodeError as e:
            if not eof and (e.msg.startswith("Unterminated string") or e.pos >= n - 8):
                break   # cut by the end of the buffer
            raise _Malformed(line + text.count("\n", i, e.pos), f"malformed JSON: {e.msg}") from None
        values.append(value)
        lines.append(line)
        i, after = end, True
        if one:
            break
    line += text.count("\n", at, i)
    if type(buf) is bytes:
        pos += len(text[:i].encode("utf-8")) if not text.isascii() else i
    else:
        pos += i
    return values, lines, pos, line, after


class _JsonText:
    """The text of a run of JSON array elements orjson read whole, and the line it starts on: the line
    of each element is worked out from it only if asked for (an error to report about one)."""

    __slots__ = ("text", "line", "_lines")
    _lines: list[int] | None

    def __init__(self, text: bytes | str, line: int):
        self.text, self.line, self._lines = text, line, None

    def lines(self) -> list[int]:
        if self._lines is None:
            self._lines = _exact_elements(self.text, 0, self.line, True)[1]
        return self._lines


class ElementLines:  # noqa: PLW1641 - unhashable like the list it stands for (__eq__ sets __hash__ to None)
    """The lines the documents of a batch from a JSON array start on (``Batch.positions``): a list,
    whose runs read whole by orjson are counted only when a line is asked for."""

    __slots__ = ("_runs", "_len", "_list")

    def __init__(self):
        self._runs: list = []
        self._len = 0
        self._list: list[int] | None = None

    def add(self, where, lo: int, hi: int) -> None:
        self._runs.append((where, lo, hi))
        self._len += hi - lo
        self._list = None

    def _lines(self) -> list[int]:
        if self._list is None:
            lines: list[int] = []
            for where, lo, hi in self._runs:
                lines += (where if type(where) is list else where.lines())[lo:hi]
            self._list = lines
        return self._list

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index):
        return self._lines()[index]

    def __iter__(self):
        return iter(self._lines())

    def __eq__(self, other) -> bool:
        if isinstance(other, (list, tuple, ElementLines)):
            return self._lines() == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        return repr(self._lines())


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
    number = int if SCHEMA_TYPES[kind] is int else float   # (the other kinds returned above)
    try:
        return number(text)
    except ValueError:
        raise ValueError(f"not {'an integer' if number is int else 'a number'}: {text!r}") from None


class Batch:
    """Rows read together, from a file or a source collection, on their way to a destination.

    ``positions`` holds the line (or source row) of each good row, in order. The rows are ``docs``;
    or, for csv/tsv without --schema, text cells under ``header`` (``cells``; ``text`` when they
    came as plain delimited lines, split only when asked), which a destination with column types
    converts by those types (``Session.insert_batch``) and any other destination gets as
    ``documents()``, typed by inference. ``bad`` holds the rows that could not be read, ``end``
    how far the source has been read (where a resumed run goes on), ``source`` the documents as
    they were read when ``docs`` are converted ones (for the errors file). ``lines`` holds the
    jsonl lines of the documents as read (bytes): a batch handed over from a reading process
    (dbsh.copy.read_ahead) comes as those lines, parsed into ``docs`` only if they are asked for.
    """

    __slots__ = ("positions", "_docs", "header", "_cells", "text", "bad", "end", "source", "delimiter", "prepared",
                 "scalars", "_lines", "offset")

    def __init__(self, positions, docs: list[dict] | None = None, *, header: list[str] | None = None,
                 cells: list[list[str]] | None = None, text: str | None = None,
                 bad: list[BadRow] | tuple = (), end: int = 0, source: list | None = None, delimiter: str = ",",
                 lines: list[bytes] | bytes | None = None):
        self.positions, self._docs, self.header, self._cells, self.text = positions, docs, header, cells, text
        self.bad, self.end, self.source, self.delimiter = bad, end, source, delimiter
        self._lines = lines   # a list, or the lines joined (split when asked for)
        self.prepared = None   # what the destination worked out ahead (Session.prepare_batch)
        self.scalars = False   # known to hold only str, int, float, bool and None values
        self.offset = None     # bytes of the file (as stored: compressed) read up to this batch's end

    def __getstate__(self) -> tuple:
        """As a reading process hands a batch over: jsonl documents travel as their lines (joined),
        several times cheaper to pickle than the documents, and are parsed again only if asked for."""
        lines = self._lines
        if type(lines) is list:
            lines = b"".join(lines)
        return (self.positions, self._docs if lines is None else None, self.header, self._cells, self.text,
                self.bad, self.end, self.source, self.delimiter, self.prepared, self.scalars, lines, self.offset)

    def __setstate__(self, state: tuple) -> None:
        (self.positions, self._docs, self.header, self._cells, self.text, self.bad, self.end, self.source,
         self.delimiter, self.prepared, self.scalars, self._lines, self.offset) = state   # lines split when asked for

    @property
    def lines(self) -> list[bytes] | None:
        if isinstance(self._lines, bytes):
            lines = self._lines.split(b"\n")
            if not lines[-1]:
                lines.pop()   # each good line holds a document: only the text after the last newline is empty
            self._lines = lines
        return self._lines

    @property
    def docs(self) -> list[dict] | None:
        if self._docs is None:
            lines = self.lines
            if lines is not None:
                self._docs = parse_jsonl_lines(lines)
        return self._docs

    @docs.setter
    def docs(self, docs: list[dict] | None) -> None:
        self._docs = docs

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def cells(self) -> list[list[str]] | None:
        if self._cells is None and self.text is not None:
            self._cells = [line.split(self.delimiter) for line in self.text.split("\n")[:-1]]
        return self._cells

    def flat_cells(self) -> list[str]:
        """Every cell, row after row (plain text split in one pass)."""
        if self.text is not None:
            return self.text.replace("\n", self.delimiter).split(self.delimiter)[:-1]
        return list(chain.from_iterable(cast(list[list[str]], self.cells)))   # (csv: text or cells)

    def documents(self) -> list[dict]:
        if self.docs is None:   # (then csv cells under a header)
            self.docs = infer_rows(cast(list[str], self.header), cast(list[list[str]], self.cells))
        return self.docs

    def part(self, start: int, stop: int) -> Batch:
        """Rows start:stop of this batch (to find a refused row by halving)."""
        def cut(rows):
            return None if rows is None else rows[start:stop]

        return Batch(self.positions[start:stop], cut(self.docs), header=self.header, cells=cut(self.cells),
                     end=self.end, source=cut(self.source), delimiter=self.delimiter)

    def row(self, index: int) -> Any:
        """Row ``index`` as read: its csv text, or the document."""
        if self.header is not None:
            return self.delimiter.join(cast(list[list[str]], self.cells)[index])
        return cast(list, self.source or self.docs)[index]


def plain_block(lines: list[str], width: int, delimiter: str) -> str | None:
    """The lines as one block ending in a newline, when they are plain delimited text that every
    csv reader reads alike (no quotes, NULs or lone carriage returns, no blank lines, each line as
    wide as the header, no PostgreSQL end-of-data line); None otherwise."""
    block = "".join(lines)
    if '"' in block or "\x00" in block or set(map(str.count, lines, repeat(delimiter))) != {width - 1}:
        return None
    if "\r" in block:
        if block.count("\r") != block.count("\r\n"):
            return None
        block = block.replace("\r\n", "\n")
    if not block.endswith("\n"):
        block += "\n"
    if "\n\n" in block or block.startswith("\n") or "\n\\.\n" in "\n" + block:
        return None
    return block


class DocumentReader:
    """Documents from a text stream, in batches (``batches``) or one by one (iteration).

    By default the first unreadable row raises ``UsageError`` naming its line; with ``lenient``
    it goes into the batch's ``bad`` rows and reading goes on (a malformed JSON array cannot go on).
    """

    def __init__(self, stream: io.TextIOBase, fmt: str, name: str = "<stdin>", *, lenient: bool = False,
                 schema: dict[str, str] | None = None, file=None):
        if fmt not in INPUT_FORMATS:
            raise UsageError(f"unknown input format {fmt!r}", hint="choose " + ", ".join(INPUT_FORMATS))
        if schema and fmt not in ("csv", "tsv"):
            raise UsageError("--schema applies to csv and tsv input; JSON input carries its own types")
        self.stream = stream
        self.file = file   # the file as stored, whose position says how far reading has gone (progress)
        self.size = _regular_size(file)
        self.fmt = fmt
        self.name = name
        self.lenient = lenient
        self.schema = schema

    def __iter__(self) -> Iterator[dict]:
        for batch in self.batches(1000):
            yield from batch.documents()

    def batches(self, size: int, skip_to: int = 0) -> Iterator[Batch]:
        """Batches of up to ``size`` rows; rows at or before position ``skip_to`` (a checkpoint's
        ``end``: a line, or an element of a JSON array) are passed over without being parsed."""
        if self.fmt == "jsonl":
            return self._reading(self._jsonl(size, skip_to))
        if self.fmt == "json":
            return self._reading(self._json(size, skip_to))
        return self._reading(self._csv(size, skip_to, "\t" if self.fmt == "tsv" else ","))

    def _reading(self, batches: Iterator[Batch]) -> Iterator[Batch]:
        """The batches; a file that cannot be read on (a corrupt or cut-off .gz/.zst, an I/O error)
        is a one-line error naming it, which says what earlier batches committed like any other."""
        import zlib

        unreadable: tuple = (OSError, EOFError, zlib.error)
        if "zstandard" in sys.modules:
            unreadable += (sys.modules["zstandard"].ZstdError,)
        try:
            for batch in batches:
                if self.size is not None:
                    try:
                        batch.offset = self.file.tell()
                    except (OSError, ValueError):
                        pass
                yield batch
        except unreadable as e:
            detail = " ".join(str(e).split()) or type(e).__name__
            raise UsageError(f"cannot read {self.name}: {detail}") from None
        except UnicodeDecodeError as e:   # csv, tsv and json are read as UTF-8 text
            raise UsageError(f"{self.name} is not UTF-8 text (byte 0x{e.object[e.start]:02x} at {e.start + 1} of a "
                             "block read)", hint="convert it, e.g. iconv -f latin1 -t utf-8") from None
        except RecursionError:
            raise UsageError(f"{self.name}: a document nested deeper than {MAX_DEPTH} levels") from None

    def error(self, line: int, message: str) -> UsageError:
        return UsageError(f"{self.name} line {line}: {message}")

    def _bad(self, line: int, reason: str, text: str) -> BadRow:
        if not self.lenient:
            raise self.error(line, reason)
        return BadRow(line, reason, text)

    def _jsonl(self, size: int, skip_to: int) -> Iterator[Batch]:
        # orjson parses a batch of lines (bytes, as read) about twice as fast as json does; a batch
        # it cannot take whole is read line by line by json, which says what is wrong where
        for first, lines in _line_chunks(self.stream, size, skip_to):
            if not lines:
                continue
            read = first + len(lines) - 1
            whole = _whole_batch(lines)
            if whole is not None:
                docs, text = whole
                batch = Batch(range(first, read + 1), docs, end=read,
                              lines=text if type(text) is bytes else None)   # (split if asked for)
                # one brace a line and no bracket: every value is a JSON scalar
                if isinstance(text, str):
                    batch.scalars = text.count("{") == len(lines) and "[" not in text
                else:
                    batch.scalars = text.count(b"{") == len(lines) and b"[" not in text
                yield batch
                continue
            docs, positions, good = [], [], []
            bad: list[BadRow] = []
            for number, raw in enumerate(lines, first):
                doc = self._jsonl_line(number, raw, bad)
                if doc is not None:
                    docs.append(doc)
                    positions.append(number)
                    good.append(raw)
            yield Batch(positions, docs, bad=bad, end=read, lines=good if type(lines[0]) is bytes else None)

    def _jsonl_line(self, number: int, raw: bytes | str, bad: list[BadRow]) -> dict | None:
        if isinstance(raw, str):
            text = raw
        else:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                bad.append(self._bad(number, f"not UTF-8 text: byte {e.start + 1} of the line",
                                     raw.decode("utf-8", "replace").rstrip("\r\n")))
                return None
        if number == 1:
            text = text.removeprefix("\ufeff")
        if not text.strip():
            return None
        try:
            value = loads_checked(text)
        except json.JSONDecodeError as e:
            # e.pos, not e.colno: a line cut short fails on its newline, "column 1" of the next line
            at = "" if e.msg.endswith(" at") else " at"   # "Unterminated string starting at"
            bad.append(self._bad(number, f"malformed JSON: {e.msg}{at} column {e.pos + 1}", text.rstrip("\r\n")))
            return None
        except BadValue as e:
            bad.append(self._bad(number, str(e), text.rstrip("\r\n")))
            return None
        if type(value) is not dict:
            bad.append(self._bad(number, f"expected a JSON object, got {type(value).__name__}", text.rstrip("\r\n")))
            return None
        return value

    def _json(self, size: int, skip_to: int) -> Iterator[Batch]:
        """A JSON array, element by element; positions name lines, ``end`` counts elements."""
        ordinal = count = 0
        docs: list[dict] = []
        bad: list[BadRow] = []
        positions = ElementLines()
        for values, where in self._json_runs():
            i = 0
            while i < len(values):
                take = min(size - count, len(values) - i)
                chunk = values[i:i + take]
                first = ordinal + 1
                ordinal += take
                if first > skip_to and set(map(type, chunk)) == {dict}:
                    docs += chunk
                    positions.add(where, i, i + take)
                else:   # passed over (resume) or not objects: the lines of this run are needed
                    lines = where if type(where) is list else where.lines()
                    for k, value in enumerate(chunk):
                        if first + k <= skip_to:
                            continue
                        if type(value) is dict:
                            docs.append(value)
                            positions.add(lines, i + k, i + k + 1)
                        elif isinstance(value, BadValue):
                            bad.append(self._bad(lines[i + k], str(value), ""))
                        else:
                            bad.append(self._bad(lines[i + k], f"expected a JSON object, got {type(value).__name__}",
                                                 json.dumps(value)))
                count += take
                i += take
                if count == size:
                    yield Batch(positions, docs, bad=bad, end=ordinal)
                    docs, bad, positions, count = [], [], ElementLines(), 0
        if count:
            yield Batch(positions, docs, bad=bad, end=ordinal)

    def _json_runs(self) -> Iterator[tuple[list, Any]]:
        """The elements of a JSON array (or of one lone object) in runs: (values, where), ``where``
        the lines each element starts on, or a _JsonText that works them out if they are asked for.

        Most of an array goes through orjson a megabyte at a time: the text up to one of the last '}'s
        of the buffer, read as the elements of an array, is taken when it parses whole (a prefix of a
        valid array parses whole only where it ends between two elements). Where it does not (a
        malformed element, NaN, a number past 64 bits, no cut found) json reads the buffer element by
        element, exactly, and says what is wrong on which line. An element larger than the buffer
        makes the buffer double at each read, so it is parsed about twice, not once per read. Lines
        are counted as the text is passed over, never again from the start of the buffer."""
        read = self.stream.read
        buf = read(JSON_CHUNK)
        kind = type(buf)
        nl, lb, rb, lbrace, rbrace, comma = _JSON_SYMBOLS[kind]
        space = _JSON_SPACE[kind]
        buf = buf.removeprefix(_BOM[kind])
        pos, line, eof = 0, 1, not buf
        growing = False   # an element is larger than the buffer: read on before json tries it

        def fill(least: int = 0) -> bool:
            nonlocal buf, pos, eof
            chunk = read(max(least, JSON_CHUNK))
            if not chunk:
                eof = True
                return False
            buf = buf[pos:] + chunk
            pos = 0
            return True

        def exact(one: bool = False):
            nonlocal pos, line
            try:
                values, lines, pos, line, after = _exact_elements(buf, pos, line, eof, one)
            except _Malformed as e:
                raise self.error(e.line, e.message) from None
            return values, lines, after

        def skip_space() -> None:
            nonlocal pos, line
            while True:
                end = space.match(buf, pos).end()
                line += buf.count(nl, pos, end)
                pos = end
                if pos < len(buf) or eof or not fill():
                    return

        skip_space()
        first = buf[pos:pos + 1]
        if first == lbrace:   # a single object is a one-document array
            while fill(len(buf)):
                pass
            values, lines, _ = exact(one=True)
            yield values, lines
            return
        if first != lb:
            raise self.error(line, "expected a JSON array of objects")
        pos += 1
        after_element = False
        while True:
            skip_space()
            if pos >= len(buf):
                raise self.error(line, "malformed JSON: the array ends before its closing ']' (a file cut short?)")
            c = buf[pos:pos + 1]
            if c == rb:
                return
            if after_element:
                if c != comma:
                    raise self.error(line, "expected ',' or ']' in the JSON array")
                pos += 1
                after_element = False
                continue
            taken, hi = None, len(buf)
            for _ in range(1 if growing else 3):
                cut = buf.rfind(rbrace, pos, hi)
                if cut < 0:
                    break
                text = buf[pos:cut + 1]
                try:
                    taken = orjson.loads(lb + text + rb)
                except orjson.JSONDecodeError as e:
                    if "end of data" in e.msg or e.pos >= len(e.doc) - 1:
                        hi = cut   # the cut fell inside an element: try an earlier one
                        continue
                    break   # wrong before the cut: json says what and where
                if _long_number(text):
                    taken = None
                else:
                    try:   # orjson reads up to 1,024 levels: deeper than MAX_DEPTH goes the exact way
                        _check_depth(taken, many=True)
                    except BadValue:
                        taken = None
                break
            if taken is not None:
                yield taken, _JsonText(text, line)
                line += text.count(nl)
                pos = cut + 1
                after_element, growing = True, False
                continue
            if growing and not eof:
                fill(len(buf) - pos)
                continue
            values, lines, after_element = exact()
            if values:
                yield values, lines
                growing = False
            elif not after_element and pos < len(buf) and buf[pos:pos + 1] != rb:
                growing = True   # not one whole element in the buffer
                fill(len(buf) - pos)

    def _csv(self, size: int, skip_to: int, delimiter: str) -> Iterator[Batch]:
        reader = csv.reader(self.stream, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise self.error(reader.line_num, f"bad csv: {e}") from None
        if not header or any(not h.strip() for h in header):
            raise self.error(1, "the csv header has an empty column name")
        width = len(header)
        schema = self.schema or {}
        unknown = sorted(set(schema) - set(header))
        if unknown:
            raise self.error(1, f"--schema names {', '.join(repr(u) for u in unknown)}, not in the header")
        kinds = [schema.get(h) for h in header]
        read, base = reader.line_num, 0
        if not schema:
            # plain lines go as text, split only if a destination needs cells; from the first batch
            # that is not plain on, the csv reader takes over (its lines counted from ``base``)
            for first, lines in _line_chunks(self.stream, size, skip_to, read):
                read = first + len(lines) - 1
                block = plain_block(lines, width, delimiter) if lines else ""
                if block is None:
                    base = first - 1
                    reader = csv.reader(chain(lines, self.stream), delimiter=delimiter)
                    read = base
                    break
                yield Batch(range(first, read + 1), header=header, text=block, end=read, delimiter=delimiter)
            else:
                return
        while True:
            rows: list[list[str]] = []
            failure = None
            try:
                rows.extend(islice(reader, size))   # rows read before a csv.Error stay in the list
            except csv.Error as e:
                failure = e
            if not rows and failure is None:
                return
            first, read = read, base + reader.line_num
            starts: Sequence[int]
            if failure is None and read - first == len(rows):
                starts = range(first + 1, read + 1)     # one line a row: the common case
            else:
                starts = _row_starts(rows, first)
            bad: list[BadRow] = []
            if read > skip_to and starts and starts[0] <= skip_to:
                keep = [i for i, line in enumerate(starts) if line > skip_to]
                rows, starts = [rows[i] for i in keep], [starts[i] for i in keep]
            elif read <= skip_to:
                rows, starts = [], []
            if failure is not None and read > skip_to:
                bad.append(self._bad(read, f"bad csv: {failure}", ""))
            if set(map(len, rows)) - {width}:   # blank lines and rows of the wrong width
                kept, kept_starts = [], []
                for cells, line in zip(rows, starts):
                    if len(cells) == width:
                        kept.append(cells)
                        kept_starts.append(line)
                    elif cells:
                        bad.append(self._bad(line, f"{len(cells)} fields, but the header has {width}",
                                             delimiter.join(cells)))
                rows, starts = kept, kept_starts
            if not schema:
                yield Batch(starts, header=header, cells=rows, bad=bad, end=read, delimiter=delimiter)
                continue
            docs, positions = [], []
            for cells, line in zip(rows, starts):
                try:
                    docs.append({h: infer_scalar(c) if k is None else convert_cell(c, k)
                                 for h, c, k in zip(header, cells, kinds)})
                    positions.append(line)
                except ValueError as e:
                    bad.append(self._bad(line, str(e), delimiter.join(cells)))
            yield Batch(positions, docs, bad=bad, end=read)


def _line_chunks(stream, size: int, skip_to: int, read: int = 0) -> Iterator[tuple[int, list]]:
    """(number of its first line, lines) of each run of up to ``size`` lines of ``stream``, ``read``
    lines having been read; lines at or before ``skip_to`` are dropped (a resumed run), so a run
    wholly before it comes as (the line after it, [])."""
    while lines := list(islice(stream, size)):
        first = read + 1
        read += len(lines)
        if first <= skip_to:
            lines, first = lines[skip_to - first + 1:], min(skip_to, read) + 1
        yield first, lines


def _row_starts(rows: list[list[str]], before: int) -> list[int]:
    """The line each csv row starts on, ``before`` lines having been read: a quoted cell may hold
    line breaks (\\n, \\r or \\r\\n, as the reader counts lines)."""
    starts = []
    line = before
    for cells in rows:
        starts.append(line + 1)
        line += 1 + sum(c.count("\n") + c.count("\r") - c.count("\r\n") for c in cells)
    return starts


def _format_from_name(name: str) -> str | None:
    for suffix in reversed(Path(name).suffixes):
        s = suffix.lower().lstrip(".")
        if s in ("jsonl", "ndjson"):
            return "jsonl"
        if s in INPUT_FORMATS:
            return s
    return None


def _open_binary(path: str):
    """(the stream of the file's bytes, decompressed; the file as stored, None for stdin)."""
    if path == "-":
        return sys.stdin.buffer, None
    try:
        raw = open(path, "rb")  # noqa: SIM115 - returned to the caller, which closes it
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    lower = path.lower()
    if lower.endswith(".gz"):
        import gzip

        return gzip.open(raw), raw
    if lower.endswith(".zst"):
        try:
            import zstandard
        except ModuleNotFoundError:
            raise UsageError("reading .zst needs the zstandard package", hint="pip install 'dbsh[zstd]'") from None
        return zstandard.ZstdDecompressor().stream_reader(raw), raw
    return raw, raw


def _regular_size(file) -> int | None:
    """The size of a regular file (not a pipe, a terminal or a socket), else None."""
    import os
    import stat

    try:
        info = os.fstat(file.fileno())
    except (AttributeError, OSError, ValueError):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def open_documents(path: str, fmt: str | None = None, *, lenient: bool = False,
                   schema: dict[str, str] | None = None) -> DocumentReader:
    """A reader for ``path`` ('-' is stdin); the format from ``fmt``, the name, or the first byte."""
    binary, file = _open_binary(path)
    if not hasattr(binary, "peek"):
        binary = io.BufferedReader(binary)
    fmt = fmt or _format_from_name(path)
    if fmt is None:
        peek = binary.peek(64)
        first = peek.lstrip()[:1].lstrip(b"\xef\xbb\xbf")
        fmt = "json" if first == b"[" else "jsonl" if first in (b"{", b"") else "csv"
    # jsonl and json are read as bytes (orjson decodes UTF-8 itself); csv and tsv as text
    stream = binary if fmt in ("jsonl", "json") else io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    return DocumentReader(stream, fmt, "<stdin>" if path == "-" else path, lenient=lenient, schema=schema,
                          file=file)
