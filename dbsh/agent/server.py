"""The agent process: one per user, serving command lines on a Unix socket, one at a time.

    python -m dbsh.agent.server [--idle-timeout SECONDS]     (dbsh agent start runs this, detached)

A thread accepts connections: it refuses any peer of another uid (SO_PEERCRED), answers status and
stop, says ``busy`` while a command runs (the client then runs its command in-process: two dbsh in
one pipeline must not wait for each other), and hands a command to the main thread otherwise. The
main thread runs it as the command line would (dbsh.cli.run) with the client's stdin, stdout and
stderr on its own descriptors 0, 1 and 2, the client's environment, working directory and umask,
then puts its own back. Sessions stay open between commands in a SessionPool (dbsh.context). A
Ctrl-C from the client (or the client going away) interrupts the command in the main thread, as
SIGINT would in-process. After ``idle_timeout`` seconds without a command the agent exits.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import struct
import sys
import threading
import time
from contextlib import contextmanager

from dbsh import context
from dbsh.agent import DEFAULT_IDLE_TIMEOUT, paths, protocol

SESSION_IDLE = 300.0   # a pooled session unused this long is closed
MAX_SESSIONS = 8
# the environment that can change how a session connects: part of a pooled session's key
_CONNECTING_ENV = ("DBSH_", "PG", "MYSQL", "MARIADB", "REDIS", "SSL_", "REQUESTS_", "CURL_CA", "HTTP_PROXY",
                   "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "KRB5", "HOME", "XDG_CONFIG")


class SessionPool:
    """Open sessions kept between the agent's commands, keyed by target, options and the environment
    that connecting reads. A session goes back to the pool only after a command that succeeded and
    cannot have changed the connection's state (native text only where the session says so:
    Session.stateless); a read-only target's session is made read-only again at each use."""

    def __init__(self):
        self.idle: dict[tuple, tuple] = {}

    def _key(self, target, yes, options) -> tuple:
        env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(_CONNECTING_ENV)))
        return (target.url, target.profile, target.readonly, repr(sorted(target.options.items())), bool(yes),
                repr(sorted((options or {}).items())), env)

    @contextmanager
    def session(self, target, *, yes: bool = False, options=None, native: str | None = None):
        self.expire()
        key = self._key(target, yes, options)
        found = self.idle.pop(key, None)
        if found is not None:
            session, saved_options, _ = found
            session.options.clear()
            session.options.update(saved_options)
            try:
                if target.readonly:
                    session.make_readonly(True)
            except BaseException:
                session.close()
                raise
        else:
            session = context.open_session(target, yes=yes, options=options)
            saved_options = dict(session.options)
        ok = False
        try:
            yield session
            ok = True
        finally:
            keep = ok and (native is None or (native.strip() != "-" and session.stateless(native)) or _reset(session))
            if keep and len(self.idle) < MAX_SESSIONS:
                self.idle[key] = (session, saved_options, time.monotonic())
            else:
                session.close()

    def expire(self, everything: bool = False) -> None:
        now = time.monotonic()
        for key, (session, _, used) in list(self.idle.items()):
            if everything or now - used > SESSION_IDLE:
                del self.idle[key]
                try:
                    session.close()
                except Exception:  # noqa: BLE001 - a dead connection closes as it can
                    pass


def _reset(session) -> bool:
    """A fresh connection for the next command, the session kept (Session.reset)."""
    try:
        if session.reset():
            return True
    except Exception:  # noqa: BLE001 - a session that cannot be reset is closed
        pass
    return False


def _close_unread(conn: socket.socket) -> None:
    """Close after the answer, the peer's request left unread (a second at most): a socket closed
    with unread data would reset the connection before the peer reads the answer."""
    try:
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(1)
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline and conn.recv(65536):
            pass
    except OSError:
        pass
    conn.close()


def peer_uid(conn: socket.socket) -> int:
    """The user id of the process at the other end: SO_PEERCRED (Linux). Elsewhere an OSError, and the
    connection is closed unserved: Python has no getpeereid(), and a peer that cannot be checked is
    never served."""
    if hasattr(socket, "SO_PEERCRED"):
        _, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
        return uid
    raise OSError("no SO_PEERCRED: cannot tell which user connected")   # pragma: no cover


class Agent:
    def __init__(self, idle_timeout: float = DEFAULT_IDLE_TIMEOUT):
        self.idle_timeout = idle_timeout
        self.path = paths.socket_path()
        self.pool = SessionPool()
        self.jobs: queue.Queue = queue.Queue()
        self.lock = threading.Lock()
        self.running: socket.socket | None = None   # the connection whose command runs now
        self.interruptible = False
        self.stopping = False
        self.started = time.time()
        self.commands = 0
        self.refused = 0
        self.main_thread = threading.get_ident()

    # -- listening -------------------------------------------------------------------------------
    def listen(self) -> socket.socket | None:
        """Bind the socket, or None when another agent already answers there."""
        import fcntl

        directory = os.path.dirname(self.path)
        paths.make_private_dir(directory)
        self._lock_file = open(os.path.join(directory, paths.LOCK), "a")  # noqa: SIM115 - held while the agent runs
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return None   # another agent holds the lock: it runs, or is starting
        try:
            os.unlink(self.path)   # left by an agent that was killed
        except FileNotFoundError:
            pass
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            listener.bind(self.path)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        listener.listen(64)
        return listener

    def accept_loop(self, listener: socket.socket) -> None:
        while not self.stopping:
            try:
                conn, _ = listener.accept()
            except OSError:
                if self.stopping:
                    return
                continue
            try:
                self.greet(conn)
            except Exception:  # noqa: BLE001 - one bad client must not stop the agent
                conn.close()

    def greet(self, conn: socket.socket) -> None:
        if peer_uid(conn) != os.geteuid():
            self.refused += 1
            protocol.send(conn, b"refused:another user")
            _close_unread(conn)
            return
        payload, fds = protocol.recv_with_fds(conn)
        try:
            request = protocol.decode_request(payload) if payload else None
        except (ValueError, IndexError):
            request = None
        if request is None or (request["op"] == "run" and len(fds) != 3):
            for fd in fds:
                os.close(fd)
            protocol.send(conn, b"refused:bad request")
            conn.close()
            return
        if request["op"] == "status":
            protocol.send(conn, self.status().encode())
            conn.close()
            return
        if request["op"] == "stop":
            self.stopping = True
            protocol.send(conn, b"stopping")
            conn.close()
            self.jobs.put(None)
            return
        with self.lock:
            busy = self.running is not None or self.stopping
            if not busy:
                self.running = conn
        if busy:
            for fd in fds:
                os.close(fd)
            protocol.send(conn, b"busy")
            conn.close()
            return
        self.jobs.put((conn, request, fds))

    def status(self) -> str:
        import json

        return json.dumps({"running": True, "pid": os.getpid(), "socket": self.path,
                           "idle_timeout": self.idle_timeout, "uptime": round(time.time() - self.started, 1),
                           "commands": self.commands, "sessions": len(self.pool.idle), "refused": self.refused})

    # -- running ---------------------------------------------------------------------------------
    def serve(self) -> int:
        listener = self.listen()
        if listener is None:
            return 0
        signal.signal(signal.SIGINT, self._on_sigint)
        signal.signal(signal.SIGTERM, lambda *_: self.jobs.put(None))
        context.pool = self.pool
        threading.Thread(target=self.accept_loop, args=(listener,), daemon=True).start()
        last = time.monotonic()
        try:
            while True:
                try:
                    job = self.jobs.get(timeout=max(0.05, min(60.0, last + self.idle_timeout - time.monotonic())))
                except queue.Empty:
                    self.pool.expire()
                    if time.monotonic() - last >= self.idle_timeout:
                        break
                    continue
                if job is None:
                    break
                self.run(*job)
                last = time.monotonic()
        finally:
            self.stopping = True
            try:
                os.unlink(self.path)
            except OSError:
                pass
            listener.close()
            self.pool.expire(everything=True)
        return 0

    def _on_sigint(self, signum, frame):
        if self.interruptible:
            raise KeyboardInterrupt

    def run(self, conn: socket.socket, request: dict, fds: list[int]) -> None:
        code = 1
        try:
            protocol.send(conn, b"accepted")
            watcher = threading.Thread(target=self.watch, args=(conn,), daemon=True)
            watcher.start()
            code = self.execute(request, fds)
            self.commands += 1
        except OSError:
            pass   # the client went away
        finally:
            with self.lock:
                self.running = None
            try:
                protocol.send(conn, b"exit:%d" % code)
            except OSError:
                pass
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def watch(self, conn: socket.socket) -> None:
        """Ctrl-C forwarded by the client, or the client gone: interrupt the command it runs."""
        while True:
            try:
                message = protocol.recv(conn)
            except (OSError, ValueError):
                message = None
            with self.lock:
                mine = self.running is conn
            if not mine:
                return
            if message is None or message == b"interrupt":
                if self.interruptible:
                    signal.pthread_kill(self.main_thread, signal.SIGINT)
                if message is None:
                    return

    def execute(self, request: dict, fds: list[int]) -> int:
        """Run the request's command line on the client's descriptors, environment, directory and
        umask; then put the agent's own back."""
        from dbsh import cli

        saved_fds = [os.dup(fd) for fd in (0, 1, 2)]
        saved_streams = sys.stdin, sys.stdout, sys.stderr
        saved_env = dict(os.environ)
        saved_cwd = os.getcwd()
        saved_argv = sys.argv
        saved_umask = os.umask(request["umask"])
        streams = []
        try:
            for target, fd in zip((0, 1, 2), fds):
                os.dup2(fd, target)
                os.close(fd)
            fds = []
            enc = request["encodings"] + ["utf-8", "strict"] * 3
            tty_out = request["ttys"][1:2] == "1"
            # as Python makes its own: stdout line-buffered on a terminal, stderr always
            # (SIM115: the command's streams, closed with the others in `streams` when it ends)
            sys.stdin = open(0, encoding=enc[0], errors=enc[1], newline="\n", closefd=False)  # noqa: SIM115
            sys.stdout = open(1, "w", buffering=1 if tty_out else -1, encoding=enc[2], errors=enc[3],  # noqa: SIM115
                              newline="\n", closefd=False)
            sys.stderr = open(2, "w", buffering=1, encoding=enc[4], errors=enc[5], newline="\n",  # noqa: SIM115
                              closefd=False)
            streams = [sys.stdin, sys.stdout, sys.stderr]
            _replace_environ(request["env"])
            os.chdir(request["cwd"])
            sys.argv = ["dbsh", *request["argv"]]
            try:
                self.interruptible = True
                try:
                    code = cli.run(request["argv"])
                finally:
                    self.interruptible = False
            except KeyboardInterrupt:
                print("dbsh: interrupted", file=sys.stderr)
                code = 130
            return code
        except Exception as e:  # noqa: BLE001 - the agent's own failure: one line, and it serves on
            os.write(2, f"dbsh: error: the agent could not run the command: {type(e).__name__}: {e}\n".encode())
            return 1
        finally:
            self.interruptible = False
            for stream in reversed(streams):
                try:
                    stream.close()   # flushes; the descriptor stays (closefd=False)
                except (OSError, ValueError):
                    pass
            for fd in fds:
                os.close(fd)
            sys.stdin, sys.stdout, sys.stderr = saved_streams
            for target, fd in zip((0, 1, 2), saved_fds):
                os.dup2(fd, target)
                os.close(fd)
            _replace_environ(saved_env)
            os.chdir(saved_cwd)
            os.umask(saved_umask)
            sys.argv = saved_argv


def _replace_environ(env: dict[str, str]) -> None:
    tz = os.environ.get("TZ")
    for key in [k for k in os.environ if k not in env]:
        del os.environ[key]
    for key, value in env.items():
        if os.environ.get(key) != value:
            os.environ[key] = value
    if os.environ.get("TZ") != tz:
        time.tzset()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    idle = DEFAULT_IDLE_TIMEOUT
    if "--idle-timeout" in args:
        idle = float(args[args.index("--idle-timeout") + 1])
    # imports a command needs, loaded once here rather than by the first command
    import dbsh.cli
    import dbsh.commands
    import dbsh.output  # noqa: F401
    return Agent(idle).serve()


if __name__ == "__main__":
    sys.exit(main())
