"""SSH tunnels: --ssh user@bastion[:port] (or `ssh` in a profile) reaches the server through the system's
`ssh -N -L`, as pgcli and mycli do: the bastion's ssh_config, agent, keys and known_hosts all apply.

    ssh -N -L 127.0.0.1:LOCAL:HOST:PORT -o ExitOnForwardFailure=yes [-o BatchMode=yes] [-p P] user@bastion

The target's host and port are rewritten to 127.0.0.1:LOCAL for the session's lifetime; the ssh process
ends with the session (and with dbsh: it gets SIGTERM if dbsh dies). DBSH_SSH_COMMAND replaces "ssh"
(e.g. "ssh -F ~/work/ssh_config"), as GIT_SSH_COMMAND does for git.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlsplit, urlunsplit

from dbsh.errors import ConnectError, UsageError

DEFAULT_PORTS = {"postgresql": 5432, "postgres": 5432, "mysql": 3306, "mariadb": 3306, "redis": 6379,
                 "rediss": 6379, "mongodb": 27017, "cassandra": 9042, "neo4j": 7687, "neo4j+s": 7687,
                 "neo4j+ssc": 7687, "bolt": 7687, "bolt+s": 7687, "bolt+ssc": 7687, "couchdb": 5984,
                 "couchdbs": 6984}
WAIT_SECONDS = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:   # preexec_fn: the tunnel ends if dbsh is killed
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux: the tunnel is still closed at exit
        pass


def remote(url: str) -> tuple[str, int]:
    """(host, port) the URL points at: what the tunnel forwards to."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower().split("+cluster")[0]
    if scheme == "sqlite":
        raise UsageError("--ssh: a SQLite database is a local file; there is no server to tunnel to")
    hostinfo = parts.netloc.rpartition("@")[2]
    if "," in hostinfo or scheme == "mongodb+srv":
        raise UsageError("--ssh tunnels to one server: this URL names several hosts (or an SRV record)")
    host, port = parts.hostname, parts.port
    if not host:
        raise UsageError(f"--ssh needs a URL with a host, not {scheme}://{hostinfo}")
    return host, port or DEFAULT_PORTS.get(scheme, 0) or _no_port(scheme)


def _no_port(scheme: str) -> int:
    raise UsageError(f"--ssh: give the port in the URL (no default port known for {scheme}://)")


def local_url(url: str, port: int) -> str:
    """The URL with its host and port replaced by the tunnel's local end."""
    parts = urlsplit(url)
    userinfo, at, _ = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo}{at}127.0.0.1:{port}"))


class Tunnel:
    """One `ssh -N -L` process, open until close()."""

    def __init__(self, spec: str, host: str, port: int):
        self.spec = spec
        destination, _, ssh_port = spec.rpartition(":") if spec.count(":") == 1 else (spec, "", "")
        if not destination or (ssh_port and not ssh_port.isdigit()):
            raise UsageError(f"--ssh takes user@host[:port], not {spec!r}")
        self.local_port = _free_port()
        command = shlex.split(os.environ.get("DBSH_SSH_COMMAND") or "ssh")
        command += ["-N", "-L", f"127.0.0.1:{self.local_port}:{host}:{port}",
                    "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=30"]
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            command += ["-o", "BatchMode=yes"]      # a script never waits on a prompt it cannot answer
        if ssh_port:
            command += ["-p", ssh_port]
        command.append(destination)
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 - read and closed when the tunnel stops
        try:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=self._errors, preexec_fn=_die_with_parent)
        except OSError as e:
            self._errors.close()
            raise ConnectError(f"cannot start ssh for --ssh {spec}: {e.strerror}") from None
        self._wait()

    def _wait(self) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            if self.process.poll() is not None:
                why = self._why()
                self.close()
                raise ConnectError(f"cannot open the SSH tunnel through {self.spec}: {why}")
            try:
                socket.create_connection(("127.0.0.1", self.local_port), timeout=1).close()
                return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.close()
                raise ConnectError(f"cannot open the SSH tunnel through {self.spec}: no forward after "
                                   f"{WAIT_SECONDS:.0f} s")
            time.sleep(0.05)

    def _why(self) -> str:
        try:
            self._errors.seek(0)
            lines = [line.strip() for line in self._errors.read().decode(errors="replace").splitlines()
                     if line.strip() and not line.startswith(("Warning: Permanently added", "debug"))]
        except (OSError, ValueError):
            lines = []
        return lines[-1] if lines else f"ssh exited with {self.process.returncode}"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        try:
            self._errors.close()
        except OSError:
            pass
