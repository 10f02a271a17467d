"""Where a command's session comes from: the one place that resolves the target and opens a session.

Every caller (the CLI verbs, the shell and its completion catalog, copy, bench and its workers,
migrate) goes through ``open_session``, so --yes, the profile's read-only flag (server-side where
the backend has it) and the backend flags apply everywhere alike.
"""

from __future__ import annotations

import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from dbsh.errors import ConnectError, UsageError

if TYPE_CHECKING:
    from dbsh.agent.server import SessionPool

# what each backend says when it wants a (right) password: PostgreSQL, MariaDB, Redis, Neo4j, CouchDB,
# MongoDB, Cassandra
_AUTH = re.compile(r"no password supplied|password authentication failed|access denied for user|NOAUTH|WRONGPASS|"
                   r"invalid (username-)?password|authentication (failed|required)|unauthori[sz]ed|"
                   r"requires authentication|not authorized|needs a password|cannot authenticate", re.I)


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
    ssh: str | None = None           # --ssh user@bastion[:port]
    # global backend flags (e.g. Cassandra's --consistency), by dest
    options: dict[str, Any] = field(default_factory=dict)

    def merge(self, **overrides: Any) -> Settings:
        """These settings with the given ones taken over (None/False/empty mean "not given")."""
        values = {k: v for k, v in overrides.items() if v not in (None, False, {}, ())}
        if "options" in values:
            values["options"] = {**self.options, **values["options"]}
        return replace(self, **values)


def ask_password(prompt: str = "Password: ") -> str:
    import getpass

    if not sys.stdin.isatty():
        raise UsageError("-W asks for a password, but stdin is not a terminal; set DBSH_PASSWORD")
    return getpass.getpass(prompt)


def on_terminal() -> bool:
    try:
        return sys.stdin.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def needs_password(error: BaseException) -> bool:
    """Whether a failed connection is the server asking for a password (or refusing the one given)."""
    return isinstance(error, ConnectError) and _AUTH.search(str(error)) is not None


def _connect(target, ask: bool):
    """drivers.connect; on a terminal the connection is tried at once (a ping), and a server that wants a
    password gets one prompt for it. Elsewhere (scripts) the first command meets the error: one line,
    exit 3. Returns the session and whether the password was typed."""
    from dbsh import drivers
    from dbsh.errors import Unsupported
    from dbsh.target import takes_password

    asked = False
    while True:
        session = None
        try:
            session = drivers.connect(target)
            if ask and on_terminal():
                try:
                    session.ping()
                except Unsupported:
                    pass
            return session, asked
        except ConnectError as error:
            if session is not None:
                try:
                    session.close()
                except Exception:  # noqa: BLE001 - already failed
                    pass
            if asked or not ask or not on_terminal() or not needs_password(error) or not takes_password(target.url):
                raise
            target = target.with_password(ask_password(f"Password for {target.display()}: "))
            asked = True


def resolve(settings: Settings, where: str | None = None):
    """The Target of these settings, or of ``where`` (a URL or a saved profile name) when given."""
    from dbsh import target

    password = ask_password() if settings.ask_password else None
    if where is not None:
        found = target.resolve(where, None, password=password) if "://" in where else \
            target.resolve(None, where, password=password)
    else:
        found = target.resolve(settings.url, settings.conn, password=password)
    if settings.connect_timeout is not None:
        found = replace(found, options={**found.options, "connect_timeout": settings.connect_timeout})
    return replace(found, ssh=settings.ssh) if settings.ssh else found


def open_session(target, *, yes: bool = False, options: dict[str, Any] | None = None,
                 writes: str | None = None, single_transaction: bool = False, ask: bool = True):
    """Connect to ``target`` and apply the rules every session follows: ``yes`` (skip confirmations),
    the profile's read-only flag, the backend ``options`` (flags: a flag the backend does not know is
    a clear error). ``single_transaction``: a script run on it (query -) is one transaction.
    ``writes`` names what the caller is about to do when it will write (copy, bench,
    migrate upgrade ...): a read-only target refuses it here, before anything is written. ``ask``: on a
    terminal, a server that wants a password gets one prompt (never for background sessions)."""
    tunnel = None
    if target.ssh and not target.remote:
        from dbsh import tunnel as tunnels

        tunnel = tunnels.Tunnel(target.ssh, *tunnels.remote(target.url))
        target = replace(target, url=tunnels.local_url(target.url, tunnel.local_port), remote=target.url)
    try:
        session, asked = _connect(target, ask)
    except BaseException:
        if tunnel is not None:
            tunnel.close()
        raise
    if tunnel is not None:
        _close_with(session, tunnel)
    if asked and target.keyring and target.profile:
        from dbsh.target import save_keyring_password

        save_keyring_password(target.profile, session.target.password or "")
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
pool: SessionPool | None = None


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


def _close_with(session, tunnel) -> None:
    """The tunnel lives as long as the session: closing the session ends it."""
    close = session.close

    def close_both() -> None:
        try:
            close()
        finally:
            tunnel.close()

    session.close = close_both
    session.tunnel = tunnel


def require_writable(target, what: str) -> None:
    """For the one write path that opens no dbsh session (Alembic's own connection): the same
    refusal, with the same words, as Session.require_writable."""
    if target.readonly:
        from dbsh.drivers.base import ReadOnly, readonly_message

        raise ReadOnly(readonly_message(target, what))
