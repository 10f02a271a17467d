"""SQLite exports whose JSON SQLite builds itself: ``json_object`` writes each row exactly as dbsh's
renderer would (tests/test_export.py holds it to that, byte for byte), a window of rowids at a time,
so Python handles one string a window instead of a tuple a row."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from dbsh.drivers.sql.compile import BOOL, NUMBER, PLAIN, TEXT, Dialect, Table

WINDOW = 5000   # rowids a window of an export spans
STREAM_BATCH = 1000


def row_sql(dialect: Dialect, table: Table, names: list[str], exact: bool) -> str | None:
    """SQL for a row of ``dbsh_r`` (the query as a subquery) as the JSON line the renderer would
    write, by json_object, for the values SQLite renders alike: text, integers, integer booleans,
    floats of at most 15 digits written without an exponent. Any other value (a blob, a float
    needing 16-17 digits or an exponent, a boolean that is not an integer) makes the ``exact``
    form call dbsh_json_row, which does what the Python path does, and the fast form fail (a run
    of rows is then redone exactly). None when a column's values are converted on the Python side
    (dates, JSON)."""
    quote = dialect.quote
    key = table.primary_key
    pairs, odd = [], []
    for name in names:
        column = table.columns[name]
        ref = f"dbsh_r.{quote(name)}"
        # json_object writes a float with 15 digits (%!.15g): Python's repr when it reads back as the
        # same float and has no exponent; the first test settles floats of up to 6 decimals cheaply
        short = (f"round({ref} * 1e6) / 1e6 = {ref} AND {ref} < 1e9 AND {ref} > -1e9 "
                 f"AND ({ref} >= 1e-4 OR {ref} <= -1e-4 OR {ref} = 0)")
        digits = (f"{ref} < 1e15 AND {ref} > -1e15 AND ({ref} >= 1e-4 OR {ref} <= -1e-4) "
                  f"AND CAST(CAST({ref} AS TEXT) AS REAL) = {ref}")
        fail = "json('not JSON')"   # raises: the fast form gives the rows back to the exact one
        if column.kind == BOOL:
            if exact:
                value = f"CASE WHEN {ref} IS NULL THEN NULL WHEN {ref} THEN json('true') ELSE json('false') END"
                odd.append(f"typeof({ref}) NOT IN ('integer', 'null')")
            else:
                value = (f"CASE typeof({ref}) WHEN 'integer' THEN CASE WHEN {ref} THEN json('true') "
                         f"ELSE json('false') END WHEN 'null' THEN NULL ELSE {fail} END")
        elif column.kind in (TEXT, NUMBER, PLAIN):
            value = ref   # values exactly as sqlite3 returns them; blobs make json_object fail
            integer = "INT" in column.type.upper()
            rowid = integer and key == [name] and column.type.upper() == "INTEGER"
            if column.kind == TEXT or rowid:   # no floats: numbers are stored as text / always an integer
                if exact:
                    odd.append(f"typeof({ref}) = 'blob'")
            elif exact:
                odd.append(f"CASE typeof({ref}) WHEN 'real' THEN NOT ({short} OR {digits}) "
                           f"WHEN 'blob' THEN 1 ELSE 0 END")
            elif integer:
                value = f"CASE WHEN typeof({ref}) = 'real' THEN {fail} ELSE {ref} END"
            else:
                value = f"CASE WHEN {short} THEN {ref} WHEN typeof({ref}) = 'real' THEN {fail} ELSE {ref} END"
        else:
            return None
        pairs.append("'" + name.replace("'", "''") + f"', {value}")
    row = f"json_object({', '.join(pairs)})"
    if not odd:
        return row
    refs = ", ".join(f"dbsh_r.{quote(n)}" for n in names)
    return f"CASE WHEN {' OR '.join(odd)} THEN dbsh_json_row({refs}) ELSE {row} END"


def lines(session, table: Table, names: list[str], query: tuple[str, list] | None,
          limit: int | None = None) -> Iterator[tuple[str, int]]:
    """The rows of ``query`` (SQL and parameters) as JSON lines built by SQLite; without a query, the
    whole table in rowid windows, the first ``limit`` rows (None: all)."""
    from dbsh.output import to_json

    conn, dialect = session.conn, session.dialect
    convert = session._converter(table, names)

    def python_row(*values):
        if convert is not None:
            values = convert(values)
        return to_json(dict(zip(names, values)))

    exact = row_sql(dialect, table, names, exact=True)
    try:
        conn.create_function("dbsh_json_row", len(names), python_row)
        with session._transaction():   # one read transaction: the windows see one state of the table
            if query is not None or not _has_rowid(conn, table):
                sql, params = query or (f"SELECT {', '.join(map(dialect.quote, names))} "
                                        f"FROM {dialect.table_name(table)}", [])
                cursor = conn.cursor()
                try:
                    cursor.execute(f"SELECT {exact} FROM ({sql}) AS dbsh_r", params)
                    left = limit if query is None else None
                    while (left is None or left > 0) and (rows := cursor.fetchmany(STREAM_BATCH)):
                        if left is not None:
                            rows = rows[:left]
                            left -= len(rows)
                        yield "\n".join([r[0] for r in rows]), len(rows)
                finally:
                    cursor.close()
                return
            name = dialect.table_name(table)
            window = (f"SELECT {', '.join(map(dialect.quote, names))}, _rowid_ AS dbsh_rowid FROM {name} "
                      f"WHERE _rowid_ >= ? AND _rowid_ < ? ORDER BY _rowid_")
            queries = [f"SELECT group_concat({row}, char(10)), count(*) FROM ({window}) AS dbsh_r"
                       for row in (row_sql(dialect, table, names, exact=False), exact)]
            yield from _windows(conn, name, queries, limit)
    except sqlite3.Error as e:
        raise session._error(e) from None


def _has_rowid(conn, table: Table) -> bool:
    """A table (not a view, not WITHOUT ROWID) whose rows can be read in rowid ranges."""
    row = conn.execute("SELECT type, sql FROM sqlite_master WHERE name = ? COLLATE NOCASE", (table.name,)).fetchone()
    return bool(row) and row[0] == "table" and "without rowid" not in " ".join((row[1] or "").lower().split())


def _windows(conn, quoted: str, queries, limit: int | None) -> Iterator[tuple[str, int]]:
    """Run a window query over consecutive rowid ranges of WINDOW rows, in order, in the one read
    transaction the connection is in: the fast query, or for a window where it fails, the exact one."""
    fast, exact = queries

    def run(sql: str, low: int, high: int) -> tuple[str | None, int]:
        return conn.execute(sql, (low, high)).fetchone()

    low = conn.execute(f"SELECT min(_rowid_) FROM {quoted}").fetchone()[0]
    left = limit
    while low is not None and (left is None or left > 0):
        high = conn.execute(f"SELECT _rowid_ FROM {quoted} WHERE _rowid_ >= ? ORDER BY _rowid_ "
                            f"LIMIT 1 OFFSET {WINDOW}", (low,)).fetchone()
        high = None if high is None else high[0]
        end = (1 << 63) - 1 if high is None else high
        try:
            text, count = run(fast, low, end)
        except sqlite3.OperationalError:   # a value json_object would not write as Python does
            text, count = run(exact, low, end)
        low = high
        if not count or text is None:   # (no rows in the window: no text either)
            continue
        if left is not None:
            if count > left:
                text, count = "\n".join(text.split("\n", left)[:left]), left
            left -= count
        yield text, count
