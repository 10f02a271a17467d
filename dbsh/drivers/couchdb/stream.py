"""CouchDB's JSON answers read incrementally, so a big ``_all_docs``, ``_find``, view or ``_changes``
answer streams: the array under "rows", "docs" or "results" yields one element at a time while the
rest of the answer (``bookmark``, ``warning``, ``last_seq``, ``total_rows`` ...) is kept in ``rest``.
A feed of several JSON values one after the other (``_changes?feed=continuous``) yields each one as
it arrives."""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator
from typing import Any


class JsonStream:
    ARRAYS = ("rows", "docs", "results")
    CHUNK = 64 * 1024

    def __init__(self, chunks: Iterable[bytes]):
        """``chunks``: the answer's bytes in pieces of any size (httpx's ``iter_bytes()``), or a
        file-like object with ``read()``."""
        if hasattr(chunks, "read"):
            source = chunks
            chunks = iter(lambda: source.read(self.CHUNK), b"")
        self._chunks = iter(chunks)
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.rest: dict[str, Any] = {}
        self.decoder = json.JSONDecoder()
        self._utf8 = codecs.getincrementaldecoder("utf-8")()

    def _more(self) -> bool:
        while not self.eof:
            chunk = next(self._chunks, None)
            if chunk is None:
                self.eof = True
                chunk = b""
            elif not chunk:
                continue
            if isinstance(chunk, str):
                chunk = chunk.encode("utf-8")
            text = self._utf8.decode(chunk, final=self.eof)   # keeps a split UTF-8 sequence for later
            self.buf = self.buf[self.pos:] + text
            self.pos = 0
            return bool(chunk)
        return False

    def _peek(self) -> str:
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos].isspace():
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more() and self.pos >= len(self.buf):
                return ""

    def _expect(self, char: str) -> None:
        if self._peek() != char:
            raise ValueError(f"expected {char!r} at offset {self.pos}")
        self.pos += 1

    def _value(self) -> Any:
        """One complete JSON value. Only a number or a literal that ends at the buffer's end may go
        on, so only those wait for more data (a live feed must not wait for the next line)."""
        self._peek()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
                if end < len(self.buf) or self.eof or self.buf[end - 1] in '}]"':
                    self.pos = end
                    return value
            except json.JSONDecodeError:
                if self.eof:
                    raise
            self._more()

    def _array(self) -> Iterator[dict]:
        self.pos += 1
        n = 0
        while self._peek() != "]":
            if not self._peek():
                raise ValueError("unexpected end of the answer")
            if n:
                self._expect(",")
            item = self._value()
            yield item if isinstance(item, dict) else {"value": item}
            n += 1
        self.pos += 1

    def _object(self) -> Iterator[dict]:
        self.pos += 1
        answer: dict[str, Any] = {}
        streamed = False
        first = True
        while self._peek() != "}":
            if not self._peek():
                raise ValueError("unexpected end of the answer")
            if not first:
                self._expect(",")
            first = False
            key = self._value()
            self._expect(":")
            if key in self.ARRAYS and self._peek() == "[":
                streamed = True
                yield from self._array()
            else:
                answer[key] = self._value()
        self.pos += 1
        self.rest = answer
        if not streamed:
            yield answer

    def rows(self) -> Iterator[dict]:
        """The rows: the elements of the streamed array; an object without one is one row; a top-level
        array's elements are rows; a scalar is ``{"value": ...}``."""
        while (first := self._peek()):
            if first == "{":
                yield from self._object()
            elif first == "[":
                yield from self._array()
            else:
                yield {"value": self._value()}
