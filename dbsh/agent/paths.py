"""Where the agent listens: ``dbsh/agent.sock`` in the user's runtime dir.

The directory is platformdirs.user_runtime_dir("dbsh"), worked out here without importing
platformdirs (the thin client must start in a few milliseconds; a test checks both agree):
$XDG_RUNTIME_DIR when it is a directory of ours that no one else can enter, else /run/user/UID on
the same terms, else runtime-UID in the temporary directory.
"""

from __future__ import annotations

import os
import stat
import sys

APP = "dbsh"
SOCKET = "agent.sock"
LOCK = "agent.lock"


def _private(path: str, missing_ok: bool = False) -> bool:
    """A real directory (not a symlink) of ours, closed to group and others."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return missing_ok
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o077


def runtime_base() -> str:
    xdg = os.environ.get("XDG_RUNTIME_DIR", "").strip()
    if xdg and os.path.isabs(xdg) and _private(xdg):
        return xdg
    if sys.platform.startswith("openbsd"):
        default = f"/tmp/run/user/{os.geteuid()}"
    elif sys.platform.startswith(("freebsd", "netbsd")):
        default = f"/var/run/user/{os.geteuid()}"
    else:
        default = f"/run/user/{os.geteuid()}"
    if _private(default):
        return default
    temp = next((os.environ[v] for v in ("TMPDIR", "TEMP", "TMP") if os.environ.get(v)), "/tmp")
    return os.path.join(temp, f"runtime-{os.geteuid()}")


def agent_dir() -> str:
    return os.path.join(runtime_base(), APP)


def socket_path() -> str:
    return os.path.join(agent_dir(), SOCKET)


def make_private_dir(path: str) -> None:
    """Create ``path`` (and a missing runtime base) mode 0700, or refuse one someone else could
    enter or replace."""
    from dbsh.errors import UsageError

    for part in (os.path.dirname(path), path):
        try:
            os.mkdir(part, 0o700)
        except FileExistsError:
            pass
        if not _private(part):
            raise UsageError(f"{part} is not a private directory of this user (mode 0700, owned by uid "
                             f"{os.geteuid()}): the agent will not listen there")
