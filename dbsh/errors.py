"""Errors carry their exit code and a one-line message; the CLI renders them in one place."""

from __future__ import annotations

import re

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_CONNECT = 3
EXIT_INTERRUPTED = 130


class DbshError(Exception):
    """Base class: a message for the user and the exit code that goes with it."""

    exit_code = EXIT_RUNTIME

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        text = self.message if not self.hint else f"{self.message} ({self.hint})"
        return one_line(text)


class UsageError(DbshError):
    """Bad input: malformed JSON, unknown operator, bad option value (exit 2)."""

    exit_code = EXIT_USAGE


class NotFound(UsageError):
    """A collection, table or profile that does not exist (exit 2)."""


class Unsupported(UsageError):
    """Something the backend cannot do, such as an operator it cannot run (exit 2)."""


class ConnectError(DbshError):
    """Cannot reach or authenticate to the server (exit 3)."""

    exit_code = EXIT_CONNECT


class QueryError(DbshError):
    """The server refused or failed a statement (exit 1)."""


class PartialWrite(QueryError):
    """A write that landed in part on a backend without atomic batches (exit 1).

    ``written``: documents of this call that were stored; ``rejected``: (position among the
    documents passed to the call, reason) for each one refused. Import and copy use them to log
    exactly the refused rows and count the rest, instead of assuming nothing was written.
    """

    def __init__(self, message: str, *, written: int, rejected: list[tuple[int, str]], hint: str | None = None):
        super().__init__(message, hint=hint)
        self.written = written
        self.rejected = rejected


_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@")


def redact(text: str, *secrets: str | None) -> str:
    """Hide passwords: in URLs (user:***@host) and any known secret values."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def one_line(text: str) -> str:
    """Collapse a (driver) message to its first meaningful line."""
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    if not lines:
        return "unknown error"
    first = lines[0]
    # SQLAlchemy appends "(Background on this error at: ...)" and "[SQL: ...]" lines
    first = re.sub(r"\s*\(Background on this error at:.*\)$", "", first)
    return first
