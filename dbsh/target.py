"""Where a command goes: --url, -c PROFILE, DBSH_URL, or the embedded SQLite default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from dbsh import config
from dbsh.errors import UsageError, redact

# profile keys that say how to connect, not what the backend gets
CONNECTION_KEYS = ("url", "readonly", "ssh", "password_command", "keyring")


@dataclass(frozen=True)
class Target:
    url: str
    profile: str | None = None
    readonly: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    ssh: str | None = None            # user@bastion[:port]: reach the server through an SSH tunnel
    keyring: bool = False             # the profile keeps its password in the system keyring
    remote: str | None = None         # through a tunnel: the URL as given (url is then the local end)

    @property
    def scheme(self) -> str:
        return self.url.split(":", 1)[0].lower()

    @property
    def parts(self):
        return urlsplit(self.url)

    @property
    def password(self) -> str | None:
        netloc = self.parts.netloc
        userinfo = netloc.rpartition("@")[0]
        if ":" in userinfo:
            return unquote(userinfo.split(":", 1)[1])
        return None

    @property
    def username(self) -> str | None:
        userinfo = self.parts.netloc.rpartition("@")[0]
        return unquote(userinfo.split(":", 1)[0]) if userinfo else None

    def display(self) -> str:
        """The URL safe to print (the one given, also through a tunnel): the password is never shown."""
        shown = redact(self.remote or self.url, self.password)
        return f"{shown} via ssh {self.ssh}" if self.ssh and self.remote else shown

    def without_password(self) -> str:
        return with_password(self.remote or self.url, None)

    def with_password(self, password: str | None) -> Target:
        return replace(self, url=with_password(self.url, password),
                       remote=with_password(self.remote, password) if self.remote else None)


def takes_password(url: str) -> bool:
    """Whether a password can be added to this URL: it names a user, or it is Redis (AUTH password)."""
    parts = urlsplit(url)
    return bool(parts.netloc.rpartition("@")[0].split(":", 1)[0]) or url.split(":", 1)[0].lower().startswith("redis")


def with_password(url: str, password: str | None) -> str:
    parts = urlsplit(url)
    userinfo, at, hostinfo = parts.netloc.rpartition("@")
    if not at:
        if password and url.split(":", 1)[0].lower().startswith("redis"):
            return urlunsplit(parts._replace(netloc=f":{quote(password, safe='')}@{hostinfo}"))
        return url
    user = userinfo.split(":", 1)[0]
    netloc = f"{user}:{quote(password, safe='')}@{hostinfo}" if password else f"{user}@{hostinfo}"
    return urlunsplit(parts._replace(netloc=netloc))


def check_url(url: str) -> None:
    """Refuse (exit 2) a URL no driver could use: a NUL, a bracket left open, a port that is not a
    number, a host name longer than DNS allows (63 characters a label, 253 in all)."""
    if "\x00" in url:
        raise UsageError(f"a URL cannot contain a NUL character: {redact(url)!r}")
    try:
        parts = urlsplit(url)
        if "," not in parts.netloc:   # (several hosts, each with its port: the driver reads them)
            parts.port   # noqa: B018 - parsing it is the check
    except ValueError as e:
        what = f"invalid port ({e})" if "port" in str(e).lower() else str(e)
        raise UsageError(f"invalid {_backend_name(url)}URL {redact(url)!r}: {what}") from None
    hosts = parts.netloc.rpartition("@")[2]
    for host in hosts.split(","):   # (cassandra://h1,h2 and mongodb://h1,h2 list several)
        name = host.rsplit(":", 1)[0] if not host.startswith("[") else ""
        labels = unquote(name).split(".")
        if len(unquote(name)) > 253 or any(len(label) > 63 for label in labels):
            raise UsageError(f"invalid {_backend_name(url)}URL {redact(url)[:120]!r}...: the host name is longer "
                             "than DNS allows (63 characters a label, 253 in all)")


def _backend_name(url: str) -> str:
    from dbsh import drivers

    try:
        return drivers.for_scheme(url.split(":", 1)[0]).name + " "
    except UsageError:
        return ""


def default_url() -> str:
    path = config.data_dir() / "dbsh.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def resolve(url: str | None = None, profile: str | None = None, *, password: str | None = None) -> Target:
    """Pick the target: an explicit URL, a saved profile, DBSH_URL, else the embedded default.

    The password comes from the URL, or else from ``password`` (a prompt), or else the profile's
    ``password_command`` (its output), or else the system keyring (a profile with keyring = true),
    or else DBSH_PASSWORD.
    """
    if url and profile:
        raise UsageError("give either --url or --conn, not both")
    readonly = False
    options: dict[str, Any] = {}
    saved: dict[str, Any] = {}
    if profile:
        saved = config.profile(profile)
        url = saved["url"]
        readonly = bool(saved.get("readonly", False))
        options = {k: v for k, v in saved.items() if k not in CONNECTION_KEYS}
    elif not url:
        url = os.environ.get("DBSH_URL") or default_url()
    if "://" not in url:
        if profile is None and url in config.profiles():
            return resolve(profile=url, password=password)
        raise UsageError(f"not a database URL or saved connection name: {redact(url)!r}",
                         hint="expected scheme://..., e.g. sqlite:///file.db or postgresql://user@host/db")
    check_url(url)
    target = Target(url=url, profile=profile, readonly=readonly, options=options, ssh=saved.get("ssh"),
                    keyring=bool(saved.get("keyring", False)))
    if target.password is None and takes_password(url):
        secret = (password or _from_command(profile, saved.get("password_command"))
                  or (keyring_password(profile) if target.keyring else None) or os.environ.get("DBSH_PASSWORD"))
        if secret:
            target = target.with_password(secret)
    return target


def _from_command(profile: str | None, command: str | None) -> str | None:
    """The first line a profile's password_command prints (its output is never shown nor logged)."""
    if not command:
        return None
    import subprocess

    try:
        done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UsageError(f"password_command of profile {profile!r} did not run: {type(e).__name__}") from None
    if done.returncode != 0:
        raise UsageError(f"password_command of profile {profile!r} failed (exit {done.returncode})")
    line = done.stdout.split("\n", 1)[0].rstrip("\r")
    if not line:
        raise UsageError(f"password_command of profile {profile!r} printed no password")
    return line


KEYRING_SERVICE = "dbsh"


def _keyring():
    try:
        import keyring
    except ModuleNotFoundError:
        raise UsageError("keyring = true needs the Python package 'keyring'",
                         hint="pip install 'dbsh[keyring]'") from None
    return keyring


def keyring_password(profile: str | None) -> str | None:
    """The password kept for a profile in the system keyring (service "dbsh", the profile's name)."""
    if not profile:
        return None
    try:
        return _keyring().get_password(KEYRING_SERVICE, profile)
    except UsageError:
        raise
    except Exception as e:  # noqa: BLE001 - a keyring backend's own errors
        raise UsageError(f"cannot read the keyring: {type(e).__name__}: {e}") from None


def save_keyring_password(profile: str, password: str) -> None:
    try:
        _keyring().set_password(KEYRING_SERVICE, profile, password)
    except UsageError:
        raise
    except Exception as e:  # noqa: BLE001
        raise UsageError(f"cannot write to the keyring: {type(e).__name__}: {e}") from None
