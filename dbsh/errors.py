"""Errors carry their exit code and a one-line message; the CLI renders them in one place."""

from __future__ import annotations

import re
from typing import cast

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_CONNECT = 3
EXIT_INTERRUPTED = 130


class DbshError(Exception):
    """Base class: a message for the user and the exit code that goes with it."""

    exit_code = EXIT_RUNTIME
    counted = False   # (dbsh.bulk.load: the rows written so far are in the message already)

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


# a query-string parameter that carries a secret: password=, pass=, pwd=, passwd=, authPassword=,
# sslpassword=, tlsCertificateKeyFilePassword=, secret=, token=, ... (the name is matched without regard to case)
_PARAM_SECRET = re.compile(r"(?i)([?&;][\w.-]{0,64}?(?:pass|pwd|secret|token)[\w.-]{0,64}=)"
                           r"([^&;#\s]*?)(?=[:,.)\]'\"]?(?:[\s&;#]|$))")
_SPACE = re.compile(r"\s")
_USER = re.compile(r"[^:/@?#\s]*")


def redact(text: str, *secrets: str | None) -> str:
    """Hide passwords: in URLs (user:***@host), in secret query parameters (?password=***), and any
    known secret values. Linear in the text: no pattern that backtracks over what the user typed."""
    text = _mask_userinfo(text)
    if "=" in text:
        text = _PARAM_SECRET.sub(lambda m: f"{m[1]}***" if m[2] else m[0], text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _mask_userinfo(text: str) -> str:
    """scheme://user:PASSWORD@host -> scheme://user:***@host. The password runs to the last '@' before the
    host's end (whitespace, '/', '?', '#'), else to the first '@' before whitespace (a password with '/')."""
    at = text.find("://")
    if at < 0:
        return text
    out: list[str] = []
    done = 0
    n = len(text)
    next_space = next_at = -1   # cached positions (each search runs forward only: linear overall)
    while at >= 0:
        start = at + 3
        j = cast(re.Match[str], _USER.match(text, start)).end()   # (it matches the empty string too)
        if j >= n or text[j] != ":":
            at = text.find("://", start)
            continue
        if next_space < j:
            m = _SPACE.search(text, j)
            next_space = m.start() if m else n
        end = next_space
        for stop in "/?#":
            k = text.find(stop, j, end)
            if k >= 0:
                end = k
        last = text.rfind("@", j, end)
        if last < 0:
            if next_at < j:
                next_at = text.find("@", j)
                if next_at < 0:
                    next_at = n
            last = next_at if next_at < next_space else -1
        if last < 0:
            at = text.find("://", next_space)
            continue
        out.append(text[done:j + 1])
        out.append("***")
        done = last
        at = text.find("://", last)
    out.append(text[done:])
    return "".join(out)


def one_line(text: str) -> str:
    """Collapse a (driver) message to its first meaningful line."""
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    if not lines:
        return "unknown error"
    first = lines[0]
    # SQLAlchemy appends "(Background on this error at: ...)" and "[SQL: ...]" lines
    cut = first.rfind("(Background on this error at:")
    if cut >= 0 and first.endswith(")"):
        first = first[:cut].rstrip()
    return first
