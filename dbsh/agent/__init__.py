"""The warm agent: an opt-in background process that keeps dbsh's imports and open sessions warm, so
a shell script calling dbsh a hundred times pays Python's and the client libraries' start-up once.

    dbsh agent start [--idle-timeout SECONDS]     (or agent = true in the [agent] table of the config)
    dbsh agent status | stop

One agent per user, on a Unix socket in the user's runtime dir (dbsh.agent.paths: a 0700 directory,
a 0600 socket; the peer's uid is checked on every connection). A command line goes to it through a
thin client (dbsh.agent.client, which imports almost nothing) that hands over its argv, environment,
working directory, umask and its stdin, stdout and stderr themselves (file descriptors passed over
the socket), forwards Ctrl-C and exits with the command's code. With no agent answering, or the agent
busy with another command, the command runs in-process as it always did. Commands that need the
terminal (the shell, -W, connect) always run in-process. The server is dbsh.agent.server.
"""

from __future__ import annotations

DEFAULT_IDLE_TIMEOUT = 900.0   # seconds without a command before the agent exits


def command(call) -> int:
    """`dbsh agent start|stop|status` (run in-process, never through the agent)."""
    from dbsh.agent import control

    return control.command(call)
