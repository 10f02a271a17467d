"""`dbsh bench` on SQL: YCSB's five calls as prepared-once SQL on the session's own DB-API connection
(``session.client``), in autocommit as the session keeps it; every value a bound parameter."""

from __future__ import annotations

from typing import Any

from dbsh.bench.backends import Adapter, Missing


class SqlAdapter(Adapter):
    """The statements are built once (psycopg prepares them on the server after a few runs; sqlite3
    caches them); table and field names are quoted by the session's dialect."""

    def __init__(self, session, workload):
        super().__init__(session, workload)
        self.conn = session.client
        quote = session.dialect.quote
        self.mark = session.dialect.mark
        self.sqlite = session.dialect.paramstyle == "qmark"
        self.q_table = quote(self.table)
        self.q_key = quote("ycsb_key")
        self.q_fields = {f: quote(f) for f in self.fields}
        self._sql: dict[Any, str] = {}
        marks = ", ".join([self.mark] * (len(self.fields) + 1))
        self.insert_sql = (f"INSERT INTO {self.q_table} ({self.q_key}, "
                           f"{', '.join(self.q_fields.values())}) VALUES ({marks})")
        self.read_all_sql = f"SELECT * FROM {self.q_table} WHERE {self.q_key} = {self.mark}"
        self.scan_all_sql = (f"SELECT * FROM {self.q_table} WHERE {self.q_key} >= {self.mark} "
                             f"ORDER BY {self.q_key} LIMIT {self.mark}")

    def _run(self, sql: str, params: tuple):
        cur = self.conn.cursor()
        try:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else cur.rowcount
        finally:
            cur.close()

    def prepare(self) -> None:
        key_type = "TEXT" if self.sqlite else "VARCHAR(255)"
        columns = ", ".join(f"{q} TEXT" for q in self.q_fields.values())
        self._run(f"CREATE TABLE IF NOT EXISTS {self.q_table} ({self.q_key} {key_type} PRIMARY KEY, {columns})", ())

    def drop(self) -> None:
        self._run(f"DROP TABLE IF EXISTS {self.q_table}", ())

    def count(self) -> int:
        return self._run(f"SELECT COUNT(*) FROM {self.q_table}", ())[0][0]

    def insert(self, key, values):
        self._run(self.insert_sql, (key, *(values[f] for f in self.fields)))

    def read(self, key, fields):
        sql: str | None
        if fields is None:
            sql = self.read_all_sql
        else:
            sql = self._sql.get(("read", tuple(fields)))
            if sql is None:
                cols = ", ".join(self.q_fields[f] for f in fields)
                sql = self._sql[("read", tuple(fields))] = \
                    f"SELECT {cols} FROM {self.q_table} WHERE {self.q_key} = {self.mark}"
        rows = self._run(sql, (key,))
        if not rows:
            raise Missing(key)
        return rows[0]

    def update(self, key, values):
        names = tuple(values)
        sql = self._sql.get(("update", names))
        if sql is None:
            sets = ", ".join(f"{self.q_fields[f]} = {self.mark}" for f in names)
            sql = self._sql[("update", names)] = f"UPDATE {self.q_table} SET {sets} WHERE {self.q_key} = {self.mark}"
        if self._run(sql, (*values.values(), key)) == 0:
            raise Missing(key)

    def scan(self, start, count, fields):
        return len(self._run(self.scan_all_sql, (start, count)))
