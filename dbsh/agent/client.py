"""The thin client: hand a command line to a running agent, or say it could not (None), so that it
runs in-process as before. It imports the _socket module and nothing else of note (measured by
benchmarks/oneshot_vs_native and tests/test_agent.py)."""

from __future__ import annotations

import os
import sys

# the commands that run in the agent: plain reads and writes on one session (and copy). The shell,
# connect (it may open the shell), agent, migrate (Alembic sets up logging) and bench (worker
# processes) run in-process, as do -W (a password prompt) and the help and completion words.
FORWARDED = frozenset({"insert", "find", "update", "delete", "count", "query", "collections", "describe",
                       "explain", "copy"})
IN_PROCESS_WORDS = frozenset({"-W", "--password", "-h", "--help", "--install-completion", "--show-completion",
                              "-V", "--version"})
# the global options that take a value (a test checks this against dbsh.verbs)
VALUED_GLOBALS = frozenset({"-u", "--url", "-c", "--conn", "-f", "--format", "--consistency", "--connect-timeout",
                            "--ssh"})


def main() -> None:
    """The `dbsh` command: the agent runs it if one answers, else dbsh.cli (which imports the rest)."""
    args = sys.argv[1:]
    code = forward(args)
    if code is None:
        from dbsh.cli import main as run_here

        run_here(args)   # exits
    sys.exit(code)


def command_word(args: list[str]) -> str | None:
    """The command of a command line, found as dbsh.cli.parse finds it; None when there is none or
    a word asks for the terminal (-W) or for help."""
    i = 0
    while i < len(args):
        word = args[i]
        if word in IN_PROCESS_WORDS:
            return None
        if word == "--" or not word.startswith("-") or word == "-":
            break
        flag = word.split("=", 1)[0] if word.startswith("--") else word[:2]
        if flag in VALUED_GLOBALS and "=" not in word and (word.startswith("--") or len(word) == 2):
            i += 1
        i += 1
    if i >= len(args) or args[i] == "--":
        return None
    rest = args[i + 1:]
    if "--" in rest:
        rest = rest[:rest.index("--")]
    if IN_PROCESS_WORDS.intersection(rest):
        return None
    return args[i]


def forward(args: list[str]) -> int | None:
    """The exit code of ``args`` run by the agent; None when it is to run in-process."""
    if os.environ.get("DBSH_NO_AGENT", "") not in ("", "0") or os.environ.get("_DBSH_COMPLETE"):
        return None
    if command_word(args) not in FORWARDED:
        return None
    import _socket

    from dbsh.agent import paths, protocol

    try:
        for fd in (0, 1, 2):
            os.fstat(fd)
        cwd = os.getcwd()
    except OSError:   # a closed stdin/stdout/stderr, a removed working directory
        return None
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(paths.socket_path())
    except OSError:
        sock.close()
        _start_if_configured()
        return None
    try:
        umask = os.umask(0o022)
        os.umask(umask)
        streams = (sys.stdin, sys.stdout, sys.stderr)
        encodings = [x for s in streams for x in (getattr(s, "encoding", None) or "utf-8",
                                                   getattr(s, "errors", None) or "strict")]
        ttys = "".join("1" if os.isatty(fd) else "0" for fd in (0, 1, 2))
        request = protocol.encode_request("run", argv=args, cwd=cwd, umask=umask, ttys=ttys, encodings=encodings,
                                          env=dict(os.environ))
        protocol.send(sock, request, [0, 1, 2])
        answer = protocol.recv(sock)
    except (OSError, ValueError):
        sock.close()
        return None
    if answer != b"accepted":   # busy with another command, or refused: run it here
        sock.close()
        return None
    return _wait(sock, protocol)


def _wait(sock, protocol) -> int:
    # signal's C core: no enum to import (start-up time); typeshed has no stub for it
    import _signal  # type: ignore[import-not-found]

    def interrupt(signum, frame):
        try:
            protocol.send(sock, b"interrupt")
        except OSError:
            pass

    _signal.signal(_signal.SIGINT, interrupt)
    try:
        while True:
            try:
                message = protocol.recv(sock)
            except (OSError, ValueError):
                message = None
            if message is None:
                sys.stderr.write("dbsh: error: the agent stopped before the command ended "
                                 "(dbsh agent status; DBSH_NO_AGENT=1 runs without it)\n")
                return 1
            if message.startswith(b"exit:"):
                return int(message[5:])
    finally:
        sock.close()


def _start_if_configured() -> None:
    """With agent = true in the config's [agent] table, start one for the commands that follow (this
    one runs in-process, not waiting for it)."""
    try:
        from dbsh import config

        wanted = config.settings("agent").get("agent") is True
    except Exception:  # noqa: BLE001 - an unreadable config is reported by the command itself
        return
    if wanted:
        from dbsh.agent import control

        control.spawn(wait=False)
