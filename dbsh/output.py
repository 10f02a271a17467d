"""One renderer for the CLI and the REPL: Rich table on a terminal; json, jsonl, csv, tsv streamed.

Memory stays flat for any result size: rows are written as they arrive, and the table view
keeps only the rows it shows (it counts the rest).
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import decimal
import re
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from operator import itemgetter
from typing import Any, TextIO, cast

import orjson

from dbsh.errors import UsageError

FORMATS = ("table", "json", "jsonl", "csv", "tsv")
TABLE_MAX_ROWS = 200
CSV_HEADER_SAMPLE = 100

# Drivers register converters for their own types (ObjectId, Neo4j nodes, ...).
_encoders: dict[type, Callable[[Any], Any]] = {}


def register_encoder(kind: type, encode: Callable[[Any], Any]) -> None:
    _encoders[kind] = encode


def jsonable(value: Any) -> Any:
    """The JSON form of one non-JSON value, without loss: ISO dates, exact decimals, base64 bytes."""
    for kind in type(value).__mro__:
        encode = _encoders.get(kind)
        if encode is not None:
            return encode(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        if value.is_finite():
            # (finite: the exponent is an int, never one of 'n', 'N', 'F')
            if value == value.to_integral_value() and cast(int, value.as_tuple().exponent) >= 0:
                return int(value)
            as_float = float(value)
            # a float only when it reads back as the same decimal; else the exact text
            return as_float if decimal.Decimal(repr(as_float)) == value else str(value)
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return {"$binary": {"base64": base64.b64encode(raw).decode("ascii"), "subType": "00"}}
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


# A decimal is written as a JSON number with exactly its digits (1.50 stays 1.50, 12345678901234567890.1
# is not rounded to a float), in every row alike: orjson takes its text as a Fragment. json's C encoder
# (the exact path) writes only what Python's float and int print, so its default() hands a decimal over
# as a marked string, and the marks come off the encoded line: a NUL and a unit separator (escaped by
# the encoder as \u0000\u001f) that no string the encoder writes otherwise begins with in this order
# followed by "dbsh-number".
_NUMBER_MARK = "\x00\x1fdbsh-number\x1f"
_MARKED_TEXT = "\\u0000\\u001fdbsh-number"
_MARKED = re.compile(r'"\\u0000\\u001fdbsh-number\\u001f([-+.0-9eE]+)"')


def _default(value: Any) -> Any:
    """What orjson cannot write itself: a decimal as its exact digits, a float subclass as the float
    (as json writes it), else jsonable()."""
    if isinstance(value, decimal.Decimal) and value.is_finite():
        return orjson.Fragment(str(value))
    if isinstance(value, float):   # an input's ExactNumber keeps its digits; another subclass, the float
        text = getattr(value, "text", None)
        return orjson.Fragment(text) if text is not None else float(value)
    return jsonable(value)


def _exact_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal) and value.is_finite():
        return _NUMBER_MARK + str(value)
    if isinstance(value, float):
        text = getattr(value, "text", None)
        return _NUMBER_MARK + text if text is not None else float(value)
    return jsonable(value)


def _finite_floats(value: Any) -> str:
    """The text json writes for a float, with NaN and the infinities as null (always valid JSON)."""
    return float.__repr__(value) if value == value and value not in (_INF, -_INF) else "null"


_INF = float("inf")


def _make_exact_encoder() -> Callable[[Any], str]:
    """Values orjson does not write as json does (integers past 64 bits, floats with an exponent,
    lone surrogates): json's C encoder, once, reused (JSONEncoder.encode builds a new one per call);
    json's Python encoder where a non-finite float must become null. Compact, as mongoexport,
    sqlite3 -json and jq -c write JSON (and as SQLite's json_object builds it)."""
    # (json's own building blocks, private or C-only: typeshed leaves them out)
    from json.encoder import _make_iterencode, c_encode_basestring, c_make_encoder  # type: ignore[attr-defined]

    # allow_nan=False: a non-finite float raises ValueError, and the Python encoder writes null
    chunks = c_make_encoder(None, _exact_default, c_encode_basestring, None, ":", ",", False, False, False)
    slow = _make_iterencode(None, _exact_default, c_encode_basestring, None, _finite_floats, ":", ",", False,
                            False, True)
    join, marked, unmark = "".join, _MARKED_TEXT, _MARKED.sub

    def encode(value: Any) -> str:
        try:
            text = join(chunks(value, 0))
        except ValueError:
            text = join(slow(value, 0))
        return unmark(r"\1", text) if marked in text else text

    return encode


_exact = _make_exact_encoder()
_dumps = orjson.dumps
_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
# where orjson writes a number otherwise than json: an exponent (1e16 / 1e+16, 1.5e-7 / 1.5e-07), or
# 0.0000ddd for what json writes as d.dde-05. Text that merely looks so takes the exact path too.
# (An "e" then a digit or "-": a regex that starts with a literal is searched for fast.)
_EXPONENT = re.compile(rb"e[-0-9]").search


def _unlike_json(data: bytes) -> bool:
    return _EXPONENT(data) is not None or b"0.0000" in data


def json_bytes(value: Any) -> bytes:
    """``value`` as compact JSON, UTF-8: orjson, byte for byte what json writes (see _exact) except
    that NaN and the infinities are null."""
    try:
        data = _dumps(value, _default, _JSON_OPTIONS)
    except TypeError:   # orjson.JSONEncodeError is one: an integer past 64 bits, a lone surrogate
        return _exact(value).encode("utf-8", "surrogatepass")
    if not _unlike_json(data):
        return data
    return _exact(value).encode("utf-8", "surrogatepass")


def to_json(value: Any) -> str:
    """``value`` as compact JSON text (json_bytes, decoded)."""
    try:
        data = _dumps(value, _default, _JSON_OPTIONS)
    except TypeError:
        return _exact(value)
    if not _unlike_json(data):
        return data.decode("utf-8")
    return _exact(value)


def _byte_sink(out: TextIO) -> Callable[[bytes], Any] | None:
    """The write of the binary stream under ``out`` when bytes written there read as text written to
    ``out`` would (UTF-8, no newline translation), after flushing what ``out`` holds; else None."""
    import codecs

    buffer = getattr(out, "buffer", None)
    try:
        utf8 = codecs.lookup(out.encoding).name == "utf-8"
    except (AttributeError, LookupError, TypeError):
        return None
    if buffer is None or not utf8 or sys.platform == "win32":
        return None
    out.flush()
    return buffer.write


def _encoded_rows(rows: Iterator[Any], out: TextIO, before: bytes, between: bytes, after: bytes):
    """Write ``rows`` as JSON to ``out`` (its bytes directly where it allows), ``before`` the first,
    ``between`` each two and ``after`` each one; returns how many."""
    write_bytes = _byte_sink(out)
    dumps, default, options, exponent, n = _dumps, _default, _JSON_OPTIONS, _EXPONENT, 0
    if write_bytes is None:
        write = out.write
        text_before, text_between, text_after = before.decode(), between.decode(), after.decode()
        for row in rows:
            write((text_between if n else text_before) + to_json(row) + text_after)
            n += 1
        return n
    encoding, errors = "utf-8", getattr(out, "errors", None) or "strict"
    for row in rows:
        try:
            data = dumps(row, default, options)
        except TypeError:   # past 64 bits, a lone surrogate: json's encoder, as the text stream would take it
            data = _exact(row).encode(encoding, errors)
        else:
            if exponent(data) is not None or b"0.0000" in data:
                data = _exact(row).encode(encoding, errors)
        write_bytes((between if n else before) + data + after)
        n += 1
    return n


def cell_text(value: Any) -> str:
    """A value as one table or csv cell."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return repr(raw)[2:-1]  # escaped, never a crash
    if isinstance(value, dict | list | tuple):
        return to_json(value)
    if isinstance(value, decimal.Decimal):
        return str(value)   # exactly its digits, as the JSON number is written
    converted = jsonable(value)
    return converted if isinstance(converted, str) else to_json(converted)


def default_format(stream: TextIO | None = None) -> str:
    stream = stream or sys.stdout
    return "table" if _isatty(stream) else "jsonl"


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def check_format(fmt: str | None) -> str | None:
    if fmt is not None and fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}", hint="choose one of " + ", ".join(FORMATS))
    return fmt


class Renderer:
    def __init__(self, fmt: str | None = None, out: TextIO | None = None, *, expanded: bool | str = False,
                 max_rows: int = TABLE_MAX_ROWS, console=None):
        self.out = out or sys.stdout
        self.fmt = check_format(fmt) or default_format(self.out)
        self.expanded = expanded
        self.max_rows = max_rows
        self._console = console

    # -- entry points ----------------------------------------------------------------------
    def rows(self, rows: Iterable[dict], columns: list[str] | None = None) -> int:
        """Write rows in the chosen format; returns how many rows there were."""
        writer = getattr(self, "_" + self.fmt)
        return writer(iter(rows), columns)

    def result(self, result) -> int:
        if result.message is not None and result.columns is None:
            self.message(result.message)
            return 0
        if self.fmt == "table" and result.streaming:
            count = self._lines(result, result.columns)   # endless (SUBSCRIBE): a table would never print
        elif self.fmt in ("json", "jsonl") and result.json_lines is not None:
            count = self._encoded(result.json_lines())
        else:
            count = self.rows(result, result.columns)
        if result.message:
            self.message(result.message)
        return count

    def message(self, text: str) -> None:
        if self.fmt == "table":
            self.console.print(text, markup=False, highlight=False)
        else:
            self.rows([{"message": text}], ["message"])

    def write(self, outcome) -> None:
        """A WriteResult: a sentence on a terminal, one object (or csv row) otherwise."""
        if self.fmt == "table":
            self.console.print(outcome.summary(), markup=False, highlight=False)
        else:
            row = outcome.as_row()
            self.rows([row], list(row))

    def _lines(self, rows: Iterable[dict], columns: list[str] | None) -> int:
        """One line per row as it arrives, values separated by two spaces (streaming results)."""
        n = 0
        for row in rows:
            values = [row.get(c) for c in columns] if columns else list(row.values())
            self.out.write("  ".join(cell_text(v) for v in values if v is not None) + "\n")
            self.out.flush()
            n += 1
        return n

    # -- formats ---------------------------------------------------------------------------
    def _jsonl(self, rows: Iterator[dict], columns) -> int:
        n = _encoded_rows(rows, self.out, b"", b"", b"\n")
        self.out.flush()
        return n

    def _encoded(self, batches: Iterator[tuple[str, int]]) -> int:
        """Rows the database encoded itself: (text, count) pieces of ``count`` lines each, as jsonl
        or as a json array."""
        write, n = self.out.write, 0
        jsonl = self.fmt == "jsonl"
        for text, count in batches:
            if count:
                if jsonl:
                    write(text + "\n")
                else:
                    write((",\n  " if n else "[\n  ") + text.replace("\n", ",\n  "))
                n += count
        if not jsonl:
            write("\n]\n" if n else "[]\n")
        self.out.flush()
        return n

    def _json(self, rows: Iterator[dict], columns) -> int:
        n = _encoded_rows(rows, self.out, b"[\n  ", b",\n  ", b"")
        self.out.write("\n]\n" if n else "[]\n")
        self.out.flush()
        return n

    def _csv(self, rows: Iterator[dict], columns) -> int:
        head, columns = self._header(rows, columns)
        writer = csv.writer(self.out, lineterminator="\n")
        writer.writerow(columns)
        counted = _Counted(_cell_rows(chain(head, rows), columns))
        writer.writerows(counted)
        self.out.flush()
        return counted.n

    def _tsv(self, rows: Iterator[dict], columns) -> int:
        # tab-separated text without quoting (cut/awk friendly); \t \n \r \\ escaped as in
        # PostgreSQL's text format
        head, columns = self._header(rows, columns)
        write, n = self.out.write, 0
        write("\t".join(_tsv_cell(c) for c in columns) + "\n")
        for chunk in (head, rows):
            for row in chunk:
                write("\t".join(_tsv_value(row.get(c)) for c in columns) + "\n")
                n += 1
        self.out.flush()
        return n

    @staticmethod
    def _header(rows: Iterator[dict], columns) -> tuple[list[dict], list[str]]:
        """Columns for csv/tsv: as given, or the union of the keys of the first rows (schemaless)."""
        head: list[dict] = []
        if columns is None:
            seen: dict[str, None] = {}
            for row in rows:
                head.append(row)
                seen.update(dict.fromkeys(row))
                if len(head) >= CSV_HEADER_SAMPLE:
                    break
            columns = list(seen)
        return head, columns

    def _table(self, rows: Iterator[dict], columns) -> int:
        from rich import box
        from rich.table import Table
        from rich.text import Text

        shown: list[dict] = []
        total = 0
        for row in rows:
            total += 1
            if len(shown) < self.max_rows:
                shown.append(row)
        if columns is None:
            columns = list({k: None for row in shown for k in row})
        console = self.console
        expanded = self.expanded
        if expanded == "auto":      # \x auto: one field per line when a row would not fit the width
            expanded = _table_width(shown, columns) > console.width
        if expanded:
            for i, row in enumerate(shown, 1):
                table = Table(title=f"row {i}", box=box.SIMPLE_HEAD, show_header=False, title_justify="left")
                table.add_column(style="bold")
                table.add_column(overflow="fold")
                for c in columns:
                    table.add_row(c, _styled(row.get(c), Text))
                console.print(table)
        elif columns:
            table = Table(box=box.SIMPLE_HEAD, header_style="bold", show_edge=False)
            for c in columns:
                table.add_column(str(c), overflow="fold")
            for row in shown:
                table.add_row(*(_styled(row.get(c), Text) for c in columns))
            console.print(table)
        hidden = total - len(shown)
        noun = "row" if total == 1 else "rows"
        note = f"({total} {noun}"
        if hidden:
            note += f"; {hidden} more not shown: use --limit, or --format jsonl/csv for all"
        console.print(note + ")", style="dim", markup=False, highlight=False)
        return total

    @property
    def console(self):
        if self._console is None:
            from rich.console import Console

            # a table asked for in a pipe or file is not squeezed into 80 columns
            width = None if _isatty(self.out) else 240
            self._console = Console(file=self.out, soft_wrap=False, width=width)
        return self._console


# values the csv module writes as cell_text() does (None as an empty cell, numbers by str())
_CSV_AS_IS = frozenset({str, int, float, type(None)})


def _cell_rows(rows: Iterable[dict], columns: list[str]) -> Iterator[tuple]:
    """Each row's values in column order, for csv: as they are where csv writes them as cell_text()
    would, else through cell_text()."""
    if not columns:
        for _ in rows:
            yield ()
        return
    get = itemgetter(*columns)
    one = len(columns) == 1
    as_is = _CSV_AS_IS.issuperset
    for row in rows:
        try:
            values = (get(row),) if one else get(row)
        except KeyError:   # a row without some of the columns (schemaless)
            values = tuple(row.get(c) for c in columns)
        yield values if as_is(map(type, values)) else tuple(map(cell_text, values))


class _Counted:
    """An iterator that counts what it hands out."""

    def __init__(self, items: Iterator):
        self.items, self.n = items, 0

    def __iter__(self):
        return self

    def __next__(self):
        item = next(self.items)
        self.n += 1
        return item


def _table_width(rows: list[dict], columns: list) -> int:
    """The width a table of these rows takes (cells as shown, widest line of each, 3 columns of padding
    and rule between columns)."""
    widths = [len(str(c)) for c in columns]
    for row in rows:
        for i, c in enumerate(columns):
            text = cell_text(row.get(c)) if row.get(c) is not None else "null"
            widths[i] = max(widths[i], max((len(line) for line in text.splitlines()), default=0))
    return sum(widths) + 3 * len(columns)


_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _tsv_value(value: Any) -> str:
    """A value as a tsv cell. Bytes that are not UTF-8 are escaped once: cell_text's escapes of them
    (\\xff, \\\\, \\t, \\n, \\r) are already the tsv's own (PostgreSQL's COPY text format), not escaped again."""
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return cell_text(value)
    return _tsv_cell(cell_text(value))


def _tsv_cell(text: str) -> str:
    return text.translate(_TSV_ESCAPES)


def _styled(value: Any, Text):
    if value is None:
        return Text("null", style="dim")
    if isinstance(value, bool | int | float):
        return Text(cell_text(value), style="cyan")
    return Text(cell_text(value))
