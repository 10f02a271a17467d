"""SQL URLs: the parts a DB-API driver connects with, and the SQLAlchemy URL `dbsh migrate` gives
Alembic. Plain text work: importing this imports no driver and no SQLAlchemy."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from dbsh.errors import UsageError

# dbsh scheme -> the SQLAlchemy dialect+driver Alembic runs on
SQLALCHEMY = {
    "sqlite": "sqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}


def base_scheme(url: str) -> str:
    """postgresql+psycopg://... -> postgresql (SQLAlchemy-style URLs name a driver after '+')."""
    return url.split("://", 1)[0].split("+", 1)[0].lower()


def sqlalchemy_url(url: str) -> str:
    """dbsh URL -> SQLAlchemy URL (explicit drivers like postgresql+asyncpg are kept)."""
    scheme, rest = url.split("://", 1)
    base = base_scheme(url)
    if "+" in scheme:
        return url
    if base not in SQLALCHEMY:
        raise UsageError(f"not a SQL URL: {scheme}://")
    if base in ("mysql", "mariadb"):
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        query.setdefault("charset", "utf8mb4")
        rest = urlunsplit(parts._replace(scheme="x", query=urlencode(query))).split("://", 1)[1]
    return f"{SQLALCHEMY[base]}://{rest}"


def server_parts(target, default_port: int | None) -> dict[str, Any]:
    """host, port, user, password, database and the query's options of a server URL; a malformed
    URL is a usage error (exit 2), not a driver's traceback."""
    try:
        parts = urlsplit(target.url)
        port = parts.port or default_port
        host = unquote(parts.hostname or "") or None
    except ValueError as e:
        raise UsageError(f"invalid URL {target.display()}: {e}") from None
    database = unquote(parts.path.lstrip("/")) or None
    return {"host": host, "port": port, "user": target.username, "password": target.password,
            "database": database, "options": dict(parse_qsl(parts.query))}
