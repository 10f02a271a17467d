"""The shell: read a statement, run it through the session, render it like the CLI does.

Interactive on a terminal (prompt_toolkit), or non-interactive over a script on stdin or \\i FILE
(no prompts: a destructive statement needs --yes). Errors are one line and never end the
interactive shell; in a script the first error stops the run with its exit code.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterable
from contextlib import ExitStack, contextmanager
from itertools import chain, islice
from typing import TYPE_CHECKING, TextIO

from dbsh import context, statements
from dbsh.commands import Declined
from dbsh.drivers.base import Result
from dbsh.errors import (
    EXIT_INTERRUPTED,
    EXIT_RUNTIME,
    ConnectError,
    DbshError,
    QueryError,
    Unsupported,
    UsageError,
    one_line,
    redact,
)
from dbsh.output import Renderer
from dbsh.repl import meta
from dbsh.repl.catalog import Catalog
from dbsh.repl.meta import Quit

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession

DEFAULT_ROW_LIMIT = 1000
DEFAULT_PAGER = "less -SRXF"



@contextmanager
def signal_wakeup():
    """(reader, writer): a socket pair whose reader receives the number of each signal caught while
    the block runs (Python's signal wakeup fd is the writer). A socket pair, not a pipe: Windows
    takes only a socket as the wakeup fd, and a socket is made non-blocking without os.set_blocking
    (which Windows has for pipes only from Python 3.12); POSIX takes either. Raises ValueError
    where no wakeup fd can be set (not the main thread)."""
    import socket

    reader, writer = socket.socketpair()
    try:
        writer.setblocking(False)   # the C-level handler must never block
        previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    except BaseException:
        reader.close()
        writer.close()
        raise
    try:
        yield reader, writer
    finally:
        signal.set_wakeup_fd(previous)
        writer.close()
        reader.close()


class GuardedRenderer(Renderer):
    """The CLI's renderer, with the shell's row-limit guard in front of every result."""

    def __init__(self, shell, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.shell = shell

    def result(self, result) -> int:
        return super().result(self.shell.guard(result, self))


class Tee(io.TextIOBase):
    """\\tee: what the screen gets, also written to a file (without terminal colours)."""

    _ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")

    def __init__(self, screen, file):
        self.screen, self.file = screen, file

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.screen.write(text)
        self.file.write(self._ANSI.sub("", text))
        return len(text)

    def flush(self) -> None:
        self.screen.flush()
        self.file.flush()


class Shell:
    def __init__(self, target, *, session=None, fmt: str | None = None, yes: bool = False,
                 interactive: bool = True, settings: dict | None = None, out=None, err=None,
                 pt_input=None, pt_output=None, backend_options: dict | None = None,
                 single_transaction: bool = False):
        from dbsh import config

        self.settings = config.settings("repl") if settings is None else settings
        self.interactive = interactive
        self.yes = yes
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.pt_input, self.pt_output = pt_input, pt_output
        self.backend_options = backend_options or {}
        self.single_transaction = single_transaction   # a script on stdin runs in one transaction (-1)
        self.fmt = fmt or ("table" if interactive else Renderer(None, self.out).fmt)
        self.expanded: bool | str = False      # True, False or "auto" (\x auto)
        self.timing = False
        self.redirect: TextIO | None = None   # \o FILE: results go to this file instead of the screen
        self.tee: TextIO | None = None        # \tee FILE: results go to the screen and this file
        self.watching = False         # \watch runs: no pager in between
        self.delimiter: str | None = None    # set by a DELIMITER line (SQL), as the mysql client does
        self.row_limit = int(self.settings.get("row_limit", DEFAULT_ROW_LIMIT) or 0) if interactive else 0
        pager = self.settings.get("pager", os.environ.get("PAGER") or DEFAULT_PAGER)
        self.pager = pager if isinstance(pager, str) else None     # pager = false turns it off
        self.dropped = False
        self.last_statement = ""
        self.next_default = ""
        self.prompt_session: PromptSession[str] | None = None
        self.target = target
        self.session = session if session is not None else self._open(target)
        self.target = self.session.target      # with the password typed at a prompt, if one was
        self.session.notify = self.notice
        self._after_connect()
        self.catalog = Catalog(self._catalog_session)
        self.refresh_catalog()

    # -- connection ------------------------------------------------------------------------
    def _open(self, target):
        session = context.open_session(target, yes=self.yes, options=self.backend_options)
        session.notify = self.notice      # the driver's notes go where the shell writes its own
        return session

    def _catalog_session(self):
        # its own connection: the shell's may be inside the user's transaction
        return context.open_session(self.target, options=self.backend_options, ask=False)

    def _after_connect(self, info: dict | None = None) -> None:
        if info is None:
            try:
                info = dict(self.session.server_info())
            except DbshError:
                info = {"backend": self.session.name}
        self.info = info

    def switch(self, where: str) -> None:
        """\\connect: open the new target first; the old session stays if that fails."""
        from dbsh import target as targets

        new_target = targets.resolve(where, None) if "://" in where else targets.resolve(None, where)
        session = self._open(new_target)
        new_target = session.target
        try:
            info = dict(session.server_info())     # drivers may connect lazily: make sure it answers
        except BaseException:
            session.close()
            raise
        old = self.session
        self.target, self.session = new_target, session
        self.dropped = False
        old.close()
        self._after_connect(info)
        from dbsh import commands

        commands.connect_report(self.session, self.report_renderer())
        self.catalog.close()
        self.catalog = Catalog(self._catalog_session)
        self.refresh_catalog()
        if self.prompt_session is not None:
            self.prompt_session = self._prompt_session()

    def refresh_catalog(self) -> None:
        if self.interactive:     # scripts complete nothing
            self.catalog.refresh()

    def _reconnect(self) -> None:
        try:
            self.session.close()
        except Exception:  # noqa: BLE001 - the old connection is already broken
            pass
        session = self._open(self.target)
        try:
            info = dict(session.server_info())
        except BaseException:
            session.close()
            raise
        self.session = session
        self.dropped = False
        self._after_connect(info)
        self.notice(f"the connection was lost; reconnected to {self.target.display()}")

    def _check_alive(self) -> None:
        """After a failed statement: a session that no longer answers is reopened next time."""
        try:
            self.session.ping()
        except Unsupported:
            pass
        except Exception:  # noqa: BLE001 - any failure to ping means the connection is gone
            self.dropped = True

    def set_output(self, path: str | None, *, tee: bool = False) -> None:
        """\\o FILE (results to the file only, truncated first) or \\tee FILE (to the screen and the
        file, appended); no path ends either."""
        for current in (self.redirect, self.tee):
            if current is not None:
                current.close()
        self.redirect = self.tee = None
        if not path:
            return
        try:
            # (SIM115: open until the next \o or \tee closes it)
            handle = open(os.path.expanduser(path), "a" if tee else "w", encoding="utf-8")  # noqa: SIM115
        except OSError as e:
            raise UsageError(f"cannot write {path}: {e.strerror}") from None
        if tee:
            self.tee = handle
        else:
            self.redirect = handle

    def close(self) -> None:
        """At \\q, Ctrl-D or the end of a script: a transaction still open is rolled back (with a
        notice), as the server does when psql's connection ends."""
        from dbsh.commands import end_script

        self.set_output(None)
        self.catalog.close()
        try:
            end_script(self.session, failed=False, notice=self.notice)
        except Exception:  # noqa: BLE001 - closing at exit must not raise
            pass
        try:
            self.session.close()
        except Exception:  # noqa: BLE001 - closing at exit must not raise
            pass

    # -- state shown in the prompt and toolbar ---------------------------------------------
    @property
    def language(self) -> str:
        return self.session.capabilities.language

    @property
    def terminator(self) -> str | None:
        """What ends a statement: the language's (';', or none), or what a DELIMITER line set."""
        return self.delimiter or self.session.capabilities.statement_terminator

    def in_transaction(self) -> bool:
        try:
            return bool(self.session.in_transaction)
        except Exception:  # noqa: BLE001 - the toolbar must never fail
            return False

    def backend_label(self) -> str:
        return str(self.info.get("backend") or self.session.name)

    def database_label(self) -> str:
        database = self.info.get("database")
        if database:
            return os.path.basename(str(database)) or str(database)
        return self.target.profile or self.target.scheme

    # -- rules applied before running ------------------------------------------------------
    @property
    def readonly(self) -> bool:
        """Held by the session (one state, one message): a read-only profile's session is read-only
        from the start and cannot be switched back."""
        return bool(self.session.readonly)

    def set_readonly(self, flag: bool) -> None:
        self.session.make_readonly(flag)

    def check_writable(self, what: str) -> None:
        self.session.require_writable(what)

    def require_transactions(self) -> None:
        if not self.session.capabilities.transactions:
            raise Unsupported(f"{self.session.name} has no transactions")

    def confirm(self, what: str) -> None:
        """Ask before a destructive statement; scripts need --yes."""
        if self.yes:
            return
        if not self.interactive:
            raise UsageError(f"refusing without confirmation: {what}", hint="pass --yes to run it")
        if not self.ask(f"{what}. Run it? [y/N] "):
            raise Declined()

    def ask(self, question: str) -> bool:
        from prompt_toolkit import PromptSession

        try:
            answer: str = PromptSession(input=self.pt_input, output=self.pt_output).prompt(question)
        except (KeyboardInterrupt, EOFError):
            return False
        return answer.strip().lower() in ("y", "yes")

    # -- output ----------------------------------------------------------------------------
    def notice(self, text: str, *, to_stdout: bool = False) -> None:
        stream = self.out if to_stdout else self.err
        stream.write(text + "\n")
        stream.flush()

    def report_renderer(self) -> Renderer:
        """For the connection report: one line on stderr, never folded."""
        from rich.console import Console

        return Renderer("table", self.err, console=Console(file=self.err, soft_wrap=True))

    def _terminal(self) -> bool:
        try:
            return self.interactive and self.out.isatty()
        except (AttributeError, ValueError):
            return False

    @contextmanager
    def output(self):
        """A renderer for one command: through the pager on a terminal when the output is long;
        Ctrl-C cancels the command."""
        stream, console, paged = self.out, None, None
        if self.redirect is not None:
            from rich.console import Console

            stream = self.redirect
            console = Console(file=stream, force_terminal=False, no_color=True, soft_wrap=False,
                              width=shutil.get_terminal_size().columns)
        elif self._terminal():
            size = shutil.get_terminal_size()
            if self.pager and not self.watching:
                from dbsh.repl.pager import PagedOutput

                paged = stream = PagedOutput(self.pager, self.out, size.lines)
            from rich.console import Console

            if self.tee is not None:
                stream = Tee(stream, self.tee)
            console = Console(file=stream, force_terminal=True, width=size.columns, soft_wrap=False)
        elif self.tee is not None:
            stream = Tee(stream, self.tee)
        if console is None and self.expanded == "auto":     # the terminal's width decides, even in a pipe
            from rich.console import Console

            console = Console(file=stream, width=shutil.get_terminal_size().columns, soft_wrap=False)
        renderer = GuardedRenderer(self, self.fmt, stream, expanded=self.expanded,
                                   max_rows=self.row_limit or sys.maxsize, console=console)
        try:
            with self.cancellable():
                yield renderer
        finally:
            if paged is not None:
                try:
                    paged.close()
                except BrokenPipeError:
                    pass

    def guard(self, result, renderer) -> Result:
        """At most row_limit rows unless the user asks for more (only the head is fetched first)."""
        limit = self.row_limit
        if not limit or not self.interactive or (result.message is not None and result.columns is None):
            return result
        rows = iter(result)
        head = list(islice(rows, limit + 1))
        if len(head) <= limit:
            return Result(head, result.columns, message=result.message)
        if self.ask(f"the result has more than {limit} rows; fetch them all? [y/N] "):
            renderer.max_rows = sys.maxsize
            return Result(chain(head, rows), result.columns, message=result.message, close=result.close)
        result.close()
        return Result(head[:limit], result.columns,
                      message=f"(stopped after {limit} rows; row_limit in the [repl] config)")

    # -- running ---------------------------------------------------------------------------
    def run_statement(self, text: str) -> int:
        """Run one statement or backslash command; returns its exit code (errors are printed)."""
        text = text.strip()
        if not text:
            return 0
        start = time.perf_counter()
        timed = self.timing        # \timing on does not time itself
        try:
            word = text.rstrip(";").strip().lower()
            if word in ("\\q", "\\quit", "quit", "exit"):
                raise Quit()
            if self.dropped:
                self._reconnect()
            if text.startswith("\\"):
                meta.dispatch(self, text)
            elif word == "help":
                meta.dispatch(self, "\\?")
            elif self.language in statements.SQL and statements.delimiter(text) is not None:
                new = statements.delimiter(text)
                self.delimiter = None if new == ";" else new
            else:
                self.native(text)
        except Quit:
            raise
        except Declined:
            self.notice("not run")
            return 0
        except KeyboardInterrupt:
            self.notice("cancelled")
            self._check_alive()
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            return 0
        except DbshError as error:
            self.notice(f"dbsh: error: {redact(str(error), self.target.password)}")
            if isinstance(error, ConnectError | QueryError):
                self._check_alive()     # \connect to a bad URL leaves the current connection alive
            return error.exit_code
        except Exception as error:  # noqa: BLE001 - one line, the shell goes on
            self.notice(f"dbsh: error: {type(error).__name__}: {redact(one_line(str(error)), self.target.password)}")
            return EXIT_RUNTIME
        if timed and self.timing:
            self.notice(f"Time: {(time.perf_counter() - start) * 1000:.3f} ms")
        return 0

    def native(self, text: str, params: dict | None = None) -> None:
        from dbsh import commands

        writes = statements.writes(text, self.language)
        self.last_statement = text
        with self.output() as out:
            commands.query(self.session, out, text, params=params or {}, ask=self.confirm_question, script=False)
        if writes:
            self.refresh_catalog()   # DDL and writes may add collections or fields

    def confirm_question(self, question: str) -> bool:
        """commands.confirm's question, asked the shell's way (a script without --yes refuses)."""
        if not self.interactive:
            raise UsageError(f"refusing without confirmation: {question.removesuffix('. Run it? [y/N] ')}",
                             hint="pass --yes to run it")
        return self.ask(question)

    @contextmanager
    def cancellable(self):
        """Ctrl-C while a statement runs. Python raises KeyboardInterrupt only between bytecodes,
        so a client stuck in one C call (sqlite3) would not notice: a thread woken through the
        signal wakeup fd asks the session to cancel() at once (on every platform: signal_wakeup)."""
        if not self.interactive or threading.current_thread() is not threading.main_thread():
            yield
            return
        with ExitStack() as stack:
            try:
                reader, writer = stack.enter_context(signal_wakeup())
            except ValueError:   # no wakeup fd to be had: Ctrl-C still raises KeyboardInterrupt
                reader = None
            if reader is None:
                yield
                return
            done = threading.Event()
            session = self.session

            def watch():
                while not done.is_set():
                    data = reader.recv(64)
                    if done.is_set() or not data:
                        return
                    if signal.SIGINT in data:
                        session.cancel()

            watcher = threading.Thread(target=watch, name="dbsh-cancel", daemon=True)
            watcher.start()
            try:
                yield
            finally:
                done.set()
                try:
                    writer.send(b"\0")   # wake the watcher, which then sees done
                except OSError:
                    pass   # full: it has data to wake up to anyway
                watcher.join()

    def watch(self, interval: float, count: int | None = None) -> None:
        """\\watch: the last statement again every ``interval`` seconds, ``count`` times or until Ctrl-C
        (or an error). Each run is announced on stderr with its number."""
        text = self.last_statement
        if not text:
            raise UsageError("no statement to watch: run one first")
        first = text.strip().splitlines()[0]
        runs = 0
        self.watching = True
        try:
            while count is None or runs < count:
                if runs:
                    time.sleep(interval)
                runs += 1
                self.notice(f"\\watch every {interval:g}s, run {runs} at {time.strftime('%H:%M:%S')}: {first}")
                if self.run_statement(text):
                    return
        except KeyboardInterrupt:
            self.notice("")         # Ctrl-C ends the watch; the shell goes on
        finally:
            self.watching = False

    def run_lines(self, lines: Iterable[str]) -> int:
        """Run a script line by line: statements end as at the prompt; the first error stops it."""
        pending: list[str] = []
        number = 0
        for line in lines:
            pending.append(line.rstrip("\n"))
            text = "\n".join(pending)
            if statements.is_complete(text, self.language, self.terminator) and text.strip():
                pending.clear()
                for statement in statements.split(text, self.language, self.terminator):
                    number += 1
                    code = self.run_statement(statement)
                    if code:
                        return code
            elif not text.strip():
                pending.clear()
        leftover = "\n".join(pending)
        for statement in statements.split(leftover, self.language, self.terminator):
            code = self.run_statement(statement)
            if code:
                return code
        return 0

    def run_file(self, path: str) -> None:
        from dbsh.commands import end_script

        try:
            with open(os.path.expanduser(path), encoding="utf-8") as f:
                code = self.run_lines(f)
        except OSError as e:
            raise UsageError(f"cannot read {path}: {e.strerror}") from None
        if code:
            end_script(self.session, failed=True, notice=self.notice)
            stopped = DbshError(f"stopped running {path} at the first error")
            stopped.exit_code = code
            raise stopped

    def edit(self, path: str | None) -> None:
        import click

        if path:
            try:
                with open(os.path.expanduser(path), encoding="utf-8") as f:
                    text = f.read()
            except OSError as e:
                raise UsageError(f"cannot read {path}: {e.strerror}") from None
        else:
            text = self.last_statement
        edited = click.edit(text, extension=".sql" if self.language == "sql" else ".txt", require_save=False)
        self.next_default = (edited or "").rstrip("\n")

    # -- the interactive loop --------------------------------------------------------------
    def input_complete(self, text: str) -> bool:
        """Whether Enter runs the text typed at the prompt (else it starts a new line)."""
        return statements.is_complete(text, self.language, self.terminator)

    def _prompt_session(self) -> PromptSession[str]:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
        from prompt_toolkit.lexers import PygmentsLexer
        from prompt_toolkit.styles import Style

        from dbsh.repl import keys, lexers, toolbar
        from dbsh.repl.completer import ShellCompleter
        from dbsh.repl.history import RedactingHistory, history_path

        history = RedactingHistory(history_path(self.target), secrets=(self.target.password,))
        return PromptSession(
            message=lambda: toolbar.prompt_text(self),
            multiline=True,            # Enter runs a complete statement: keys.py
            prompt_continuation=toolbar.continuation(self),
            lexer=PygmentsLexer(lexers.lexer_class(self.language)),
            completer=ShellCompleter(self),
            complete_while_typing=True,
            complete_in_thread=True,   # a key-name scan (Redis) runs beside the prompt, never in its way
            history=history,
            auto_suggest=AutoSuggestFromHistory(),
            vi_mode=str(self.settings.get("keys", "emacs")).lower() == "vi",
            bottom_toolbar=toolbar.toolbar(self),
            key_bindings=keys.bindings(self),
            style=Style.from_dict(toolbar.STYLE),
            enable_open_in_editor=True,
            input=self.pt_input,
            output=self.pt_output,
        )

    def loop(self) -> int:
        self.prompt_session = self._prompt_session()
        try:
            while True:
                try:
                    text = self.prompt_session.prompt(default=self.next_default)
                except KeyboardInterrupt:
                    self.next_default = ""
                    continue       # Ctrl-C clears the line; the shell stays
                except EOFError:
                    break          # Ctrl-D
                self.next_default = ""
                try:
                    for statement in statements.split(text, self.language, self.terminator):
                        if self.run_statement(statement):
                            break
                except Quit:
                    break
                except KeyboardInterrupt:      # a second Ctrl-C while the first was being handled
                    self.notice("cancelled")
        finally:
            self.close()
        return 0

    def run_script(self, lines: Iterable[str]) -> int:
        """Statements from stdin, as psql runs a piped script: the first error stops it, and a
        transaction open then (or at the end) is rolled back; -1 runs it all in one transaction."""
        from dbsh.commands import begin_script, end_script

        code = 0
        try:
            if self.single_transaction:
                begin_script(self.session)
            code = self.run_lines(lines)
        except Quit:
            code = 0
        except DbshError as error:
            self.notice(f"dbsh: error: {redact(str(error), self.target.password)}")
            code = error.exit_code
        finally:
            try:
                end_script(self.session, failed=bool(code), single=self.single_transaction, notice=self.notice)
            except DbshError as error:
                self.notice(f"dbsh: error: {redact(str(error), self.target.password)}")
                code = code or error.exit_code
            self.close()
        return code
