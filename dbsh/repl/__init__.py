"""The interactive shell (prompt_toolkit). Imported only when the shell starts: `dbsh --help` stays fast.

app.py       the loop, running statements, confirmations, read-only, reconnects, output
meta.py      backslash commands: one table for dispatch and \\? help
completer.py   completion from a catalog refreshed in the background
lexers.py    Pygments lexers and the words of each language
toolbar.py   prompt and bottom toolbar;  keys.py  key bindings;  history.py  per-connection history
pager.py     long results through $PAGER
"""

from __future__ import annotations

import sys


def start_from_cli(call) -> int:
    """`dbsh` with no command: the shell on the target (a script when stdin is not a terminal)."""
    from dbsh import context

    s = call.settings
    return start(context.resolve(s), fmt=s.fmt, yes=s.yes, backend_options=s.options,
                 single_transaction=s.single_transaction)


def start(target, *, session=None, fmt: str | None = None, yes: bool = False,
          backend_options: dict | None = None, interactive: bool | None = None,
          single_transaction: bool = False) -> int:
    """Open the shell on a target (or an open session); returns the exit code.

    Interactive when stdin and stdout are terminals; otherwise the statements on stdin run
    one after another without prompts, and the first error ends the run with its exit code.
    """
    from dbsh.repl.app import Shell

    if interactive is None:
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
    shell = Shell(target, session=session, fmt=fmt, yes=yes, interactive=interactive,
                  backend_options=backend_options, single_transaction=single_transaction and not interactive)
    if not interactive:
        return shell.run_script(sys.stdin)
    from dbsh import commands

    if session is None:     # `dbsh connect` has printed its report already
        commands.connect_report(shell.session, shell.report_renderer())
    print("Type \\? for help, \\q to quit.", file=sys.stderr)
    return shell.loop()
