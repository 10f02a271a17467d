"""SQL backends (SQLite, PostgreSQL, MySQL/MariaDB) on their DB-API drivers: the stdlib sqlite3,
psycopg 3 and PyMySQL. SQLAlchemy is not used here (only `dbsh migrate` runs on it, through Alembic).

    compile.py   the filter/update/sort/limit compiler: query AST -> SQL text + bound parameters
    language.py  SQL text as typed: statements, :name parameters, kinds of statement
    session.py   the session every dialect shares: one connection, transactions, verbs, streaming
    sqlite.py  postgres.py  mysql.py   each dialect: connect, reflection, values, bulk path
    sqlite_json.py   SQLite exports whose JSON SQLite builds
    bench.py     the `dbsh bench` adapter
    urls.py      URLs: driver connect arguments, and the SQLAlchemy URL for migrate

Importing this package imports no driver: ``connect`` loads the one dialect module a URL names.
"""

from __future__ import annotations

from dbsh.drivers.sql.urls import base_scheme

DIALECTS = {
    "sqlite": "dbsh.drivers.sql.sqlite:SqliteSession",
    "postgresql": "dbsh.drivers.sql.postgres:PostgresSession",
    "postgres": "dbsh.drivers.sql.postgres:PostgresSession",
    "mysql": "dbsh.drivers.sql.mysql:MysqlSession",
    "mariadb": "dbsh.drivers.sql.mysql:MysqlSession",
}


def connect(target):
    """The session of a SQL URL (sqlite://, postgresql://, mysql://, mariadb://, and their
    SQLAlchemy-style forms such as postgresql+psycopg://)."""
    import importlib

    from dbsh.errors import UsageError

    module, _, name = DIALECTS[base_scheme(target.url)].partition(":")
    try:
        session_class = getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as e:
        extra = "postgres" if "postgres" in module else "mysql"
        raise UsageError(f"the SQL backend of {target.scheme}:// needs the Python package {e.name!r}",
                         hint=f"pip install 'dbsh[{extra}]'") from None
    return session_class(target)
