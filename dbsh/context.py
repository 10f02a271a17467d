"""Where a command's session comes from: the one place that resolves the target and opens a session.

Every caller (the CLI verbs, the shell and its completion catalog, copy, bench and its workers,
migrate) goes through ``open_session``, so --yes, the profile's read-only flag (server-side where
the backend has it) and the backend flags apply everywhere alike.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from dbsh.errors import UsageError


@dataclass
class Settings:
    """The global options of a command line (or of the shell): where to connect and how to answer."""

    url: str | None = None
    conn: str | None = None
    fmt: str | None = None
    debug: bool = False
    ask_password: bool = False
    yes: bool = False
    single_transaction: bool = False
    connect_timeout: float | None = None    # --connect-timeout (None: the profile's, else the default)
    # global backend flags (e.g. Cassandra's --consistency), by dest
    options: dict[str, Any] = field(default_factory=dict)

    def merge(self, **overrides: Any) -> "Settings":
        """These settings with the given ones taken over (None/False/empty mean "not given")."""
        values = {k: v for k, v in overrides.items() if v not in (None, False, {}, ())}
        if "options" in values:
            values["options"] = {**self.options, **values["options"]}
        return replace(self, **values)


def ask_password() -> str:
    import getpass

    if not sys.stdin.isatty():
        raise UsageError("-W asks for a password, but stdin is not a terminal; set DBSH_PASSWORD")
    return getpass.getpass("Password: ")


def resolve(settings: Settings, where: str | None = None):
    """The Target of these settings, or of ``where`` (a URL or a saved profile name) when given."""
    from dbsh import target

    password = ask_password() if settings.ask_password else None
    if where is not None:
        if "://" in where:
            found = target.resolve(where, None, password=password)
        else:
            found = target.resolve(None, where, password=password)
    else:
        found = target.resolve(settings.url, settings.conn, password=password)
    if settings.connect_timeout is not None:
        found = replace(found, options={**found.options, "connect_timeout": settings.connect_timeout})
    return found


def open_session(target, *, yes: bool = False, options: dict[str, Any] | None = None,
                 writes: str | None = None, single_transaction: bool = False):
    """Connect to ``target`` and apply the rules every session follows: ``yes`` (skip confirmations),
    the profile's read-only flag, the backend ``options`` (flags: a flag the backend does not know is
    a clear error). ``single_transaction``: a script run on it (query -) is one transaction.
    ``writes`` names what the caller is about to do when it will write (copy, bench,
    migrate upgrade ...): a read-only target refuses it here, before anything is written."""
    from dbsh import drivers

    session = drivers.connect(target)
    try:
        session.options["yes"] = yes
        if single_transaction:
            session.options["single_transaction"] = True
        if target.readonly:
            session.make_readonly(True)
        session.set_options(**(options or {}))
        if writes:
            session.require_writable(writes)
    except BaseException:
        session.close()
        raise
    return session


# Set by the warm agent (dbsh.agent.server.SessionPool): sessions kept open between commands. None in
# a command line run in-process: each command opens its session and closes it.
pool = None


@contextmanager
def session_for(target, *, yes: bool = False, options: dict[str, Any] | None = None, native: str | None = None,
                single_transaction: bool = False):
    """The session a verb runs on: opened by open_session and closed after, or, in the agent, taken
    from its pool and given back (``native``: the native text the verb runs, which decides whether
    the session can serve another command: Session.stateless)."""
    if pool is not None and not single_transaction:
        with pool.session(target, yes=yes, options=options, native=native) as session:
            yield session
        return
    session = open_session(target, yes=yes, options=options, single_transaction=single_transaction)
    try:
        yield session
    finally:
        session.close()


def require_writable(target, what: str) -> None:
    """For the one write path that opens no dbsh session (Alembic's own connection): the same
    refusal, with the same words, as Session.require_writable."""
    if target.readonly:
        from dbsh.drivers.base import ReadOnly, readonly_message

        raise ReadOnly(readonly_message(target, what))
