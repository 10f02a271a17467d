"""`dbsh agent start|stop|status`, and starting an agent in the background."""

from __future__ import annotations

import os
import sys
import time

from dbsh.agent import DEFAULT_IDLE_TIMEOUT, paths, protocol


def ask(op: str, timeout: float = 5.0) -> bytes | None:
    """Send ``op`` (status, stop) to the agent; its answer, or None when no agent answers."""
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(paths.socket_path())
        protocol.send(sock, protocol.encode_request(op))
        return protocol.recv(sock)
    except OSError:
        return None
    finally:
        sock.close()


def status() -> dict | None:
    import json

    answer = ask("status")
    if not answer or not answer.startswith(b"{"):
        return None
    return json.loads(answer)


def spawn(*, wait: bool = True, idle_timeout: float | None = None) -> dict | None:
    """Start an agent detached from this terminal and session; with ``wait``, its status once it
    answers (None if it did not within 30 s)."""
    import subprocess

    if idle_timeout is None:
        from dbsh import config

        idle_timeout = float(config.settings("agent").get("idle_timeout", DEFAULT_IDLE_TIMEOUT))
    paths.make_private_dir(paths.agent_dir())
    subprocess.Popen([sys.executable, "-m", "dbsh.agent.server", "--idle-timeout", str(idle_timeout)],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True, close_fds=True, cwd="/")
    if not wait:
        return None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = status()
        if found is not None:
            return found
        time.sleep(0.05)
    return None


def command(call) -> int:
    from dbsh.errors import ConnectError, UsageError
    from dbsh.output import Renderer

    action = call.values["action"]
    out = Renderer(call.settings.fmt)
    if action == "status":
        shown = status() or {"running": False, "socket": paths.socket_path()}
        out.rows([shown], list(shown))
        return 0
    if action == "start":
        found = status()
        if found is None:
            found = spawn(idle_timeout=call.values.get("idle_timeout"))
            if found is None:
                raise ConnectError(f"the agent did not start listening on {paths.socket_path()} within 30 s")
            print(f"dbsh: agent started (pid {found['pid']}, {found['socket']})", file=sys.stderr)
        else:
            print(f"dbsh: agent already running (pid {found['pid']})", file=sys.stderr)
        return 0
    if action == "stop":
        found = status()
        if found is None:
            print("dbsh: no agent running", file=sys.stderr)
            return 0
        ask("stop")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and os.path.exists(found["socket"]):
            time.sleep(0.05)
        print(f"dbsh: agent stopped (pid {found['pid']})", file=sys.stderr)
        return 0
    raise UsageError(f"unknown agent action {action!r}", hint="start, stop or status")
