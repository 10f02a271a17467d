"""Migration output through dbsh's renderer: a line per row on a terminal, rows for json/jsonl/csv."""

from __future__ import annotations

from collections.abc import Callable

from dbsh.output import Renderer


class Report:
    def __init__(self, out: Renderer):
        self.out = out

    def rows(self, rows: list[dict], text: Callable[[dict], str], *, empty: str | None = None) -> None:
        if self.out.fmt == "table":
            for row in rows:
                self.out.console.print(text(row), markup=False, highlight=False, soft_wrap=True)
            if not rows and empty:
                self.out.console.print(empty, markup=False, highlight=False)
        else:
            columns = list(dict.fromkeys(k for row in rows for k in row)) or None
            self.out.rows(rows, columns)
