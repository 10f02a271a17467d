"""SQL text as the user typed it: where its statements end, which ``:name`` words are parameters, and
what kind of statement each one is. Pure text work on dbsh's statement scanner (dbsh.statements),
which knows strings, quoted names, comments and $$ bodies."""

from __future__ import annotations

import json
import re
from typing import Any

from dbsh import statements
from dbsh.errors import UsageError

# ``:name`` in code, not the second colon of a ``::`` cast nor part of a word
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
# a statement PostgreSQL can run in a named cursor (DECLARE ... CURSOR FOR): a query that writes nothing
_PLAIN_QUERY = re.compile(r"\s*(select|values|table)\b|\s*with\b(?!.*\b(insert|update|delete|merge)\b)", re.I | re.S)


def split(text: str, language: str) -> list[str]:
    """The statements of a script, in order (a ';' inside a string, a quoted name, a comment or a $$
    body ends nothing); text with no code at all is no statement."""
    return statements.split_terminated(text, language)


def bind(text: str, params: dict[str, Any] | None, language: str, paramstyle: str) -> tuple[str, Any]:
    """(statement, driver parameters) for a statement with ``:name`` parameters, in the driver's
    paramstyle: "named" keeps ``:name`` (sqlite3 reads them itself) and takes a dict; "format" writes
    ``%s`` and takes a list, every other ``%`` doubled (psycopg and PyMySQL read ``%`` anywhere in
    the text once there are parameters). A statement without parameters goes as typed, with None.
    Only words in code are parameters: never in a string, a quoted name, a comment or a $$ body,
    nor the type of a ``::`` cast. A JSON object or array value goes as its JSON text."""
    found = statements.scan(text, language, None)
    places: list[tuple[int, int, str]] = []
    for start, end in found.spans:
        places += [(m.start(), m.end(), m.group(1)) for m in _PARAM.finditer(text, start, end)]
    if not places:
        return text, None
    given = params or {}
    missing = sorted({name for _, _, name in places} - set(given))
    if missing:
        raise UsageError(f"missing parameter {', '.join(':' + m for m in missing)}", hint="pass -p name=value")
    if paramstyle == "named":
        return text, {name: _value(given[name]) for _, _, name in places}
    pieces, values, last = [], [], 0
    for start, end, name in places:
        pieces += [text[last:start].replace("%", "%%"), "%s"]
        values.append(_value(given[name]))
        last = end
    pieces.append(text[last:].replace("%", "%%"))
    return "".join(pieces), values


def _value(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value


def code_of(statement: str, language: str) -> str:
    """The statement without its strings' contents and its comments."""
    return statements.scan(statement, language, None).code


def is_plain_query(statement: str, language: str) -> bool:
    """A query that writes nothing (SELECT, VALUES, TABLE, WITH without a data-modifying part)."""
    return _PLAIN_QUERY.match(code_of(statement, language)) is not None
