"""One renderer for the CLI and the REPL: Rich table on a terminal; json, jsonl, csv, tsv streamed.

Memory stays flat for any result size: rows are written as they arrive, and the table view
keeps only the rows it shows (it counts the rest).
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import decimal
import json
import sys
import uuid
from typing import Any, Callable, Iterable, Iterator, TextIO

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
            if value == value.to_integral_value() and value.as_tuple().exponent >= 0:
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


def _make_encoder() -> Callable[[Any], str]:
    """One reusable C encoder: JSONEncoder.encode builds a new one per call, which cost more than
    the encoding itself on large exports. Rows come from a database, so no cycle check is needed.
    Compact, as mongoexport, sqlite3 -json and jq -c write JSON (and as SQLite's json_object
    builds it, which SQLite exports use)."""
    try:
        from json.encoder import c_encode_basestring, c_make_encoder
    except ImportError:   # pragma: no cover - CPython always has the speedups
        c_make_encoder = None
    if c_make_encoder is None or c_encode_basestring is None:
        return json.JSONEncoder(default=jsonable, ensure_ascii=False, separators=(",", ":")).encode
    chunks = c_make_encoder(None, jsonable, c_encode_basestring, None, ":", ",", False, False, True)
    join = "".join

    def encode(value: Any) -> str:
        return join(chunks(value, 0))

    return encode


_encode_line = _make_encoder()


def to_json(value: Any) -> str:
    return _encode_line(value)


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
        if self.fmt == "table" and getattr(result, "streaming", False):
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
        write, encode, n = self.out.write, _encode_line, 0
        for row in rows:
            write(encode(row) + "\n")
            n += 1
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
        write, encode, n = self.out.write, _encode_line, 0
        for row in rows:
            write(",\n  " if n else "[\n  ")
            write(encode(row))
            n += 1
        write("\n]\n" if n else "[]\n")
        self.out.flush()
        return n

    def _csv(self, rows: Iterator[dict], columns) -> int:
        head, columns = self._header(rows, columns)
        writer = csv.writer(self.out, lineterminator="\n")
        writer.writerow(columns)
        n = 0
        for chunk in (head, rows):
            for row in chunk:
                writer.writerow([cell_text(row.get(c)) for c in columns])
                n += 1
        self.out.flush()
        return n

    def _tsv(self, rows: Iterator[dict], columns) -> int:
        # tab-separated text without quoting (cut/awk friendly); \t \n \r \\ escaped as in
        # PostgreSQL's text format
        head, columns = self._header(rows, columns)
        write, n = self.out.write, 0
        write("\t".join(_tsv_cell(c) for c in columns) + "\n")
        for chunk in (head, rows):
            for row in chunk:
                write("\t".join(_tsv_cell(cell_text(row.get(c))) for c in columns) + "\n")
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


def _tsv_cell(text: str) -> str:
    return text.translate(_TSV_ESCAPES)


def _styled(value: Any, Text):
    if value is None:
        return Text("null", style="dim")
    if isinstance(value, bool | int | float):
        return Text(cell_text(value), style="cyan")
    return Text(cell_text(value))
