"""The ``dbsh`` command line, built from the verb table (dbsh.verbs).

Every command runs through one path: dbsh.argv parses the words, ``execute`` opens the session
(dbsh.context) and calls the verb, errors become one line and an exit code. That path imports
neither Typer nor Rich, so a piped one-shot command starts fast. The Typer app, built from the same
table, serves the help pages (``dbsh COMMAND --help``) and shell completion
(``--install-completion``, ``--show-completion``); its commands call the same ``execute``.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dbsh.verbs import Call

COMPLETION_ENV = "_DBSH_COMPLETE"
TYPER_WORDS = {"--help", "-h", "--install-completion", "--show-completion"}
SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


def main(argv: list[str] | None = None) -> None:
    """Run a command line in this process and exit with its code (the `dbsh` command is
    dbsh.agent.client.main, which hands it to a warm agent when one runs, else calls this)."""
    args = sys.argv[1:] if argv is None else argv
    try:
        code = run(args)
        sys.stdout.flush()
    except BrokenPipeError:   # `dbsh --help | head -1`: the reader went away, as in execute()
        _quiet_stdout()
        code = 141
    sys.exit(code)


def _quiet_stdout() -> None:
    """stdout to /dev/null, so the interpreter's last flush of a closed pipe cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)


def run(args: list[str]) -> int:
    """Run one command line; returns the exit code."""
    if args in (["--version"], ["-V"]):
        from dbsh import __version__

        print(f"dbsh {__version__}")
        return 0
    if args in (["--help"], ["-h"]):
        print(top_help())
        return 0
    if args and args[0] in ("--show-completion", "--install-completion") and len(args) <= 2:
        return completion(args[0] == "--install-completion", args[1] if len(args) == 2 else None)
    if os.environ.get(COMPLETION_ENV) or TYPER_WORDS & set(_before_separator(args)):
        return _typer(args)
    from dbsh.context import Settings

    settings = Settings()
    try:
        call = parse(args, settings)
    except BaseException as error:  # noqa: BLE001 - the one place errors are rendered
        return fail(error, settings.debug or "--debug" in args)
    return execute(call)


def _before_separator(args: list[str]) -> list[str]:
    return args[: args.index("--")] if "--" in args else args


def parse(args: list[str], settings) -> Call:
    """A command line -> Call (settings filled from the global options wherever they stand).

    Read first with the built-in backends' flags only: looking up plugins (entry points) costs a
    one-shot command 30-80 ms. A command line that does not parse so is read again with them."""
    from dbsh import drivers
    from dbsh.errors import UsageError

    try:
        return _parse(args, settings, plugins=False)
    except UsageError:
        if not drivers.plugins():
            raise
    return _parse(args, settings, plugins=True)


def _parse(args: list[str], settings, plugins: bool) -> Call:
    from dbsh import argv, verbs
    from dbsh.context import Settings
    from dbsh.errors import UsageError
    from dbsh.verbs import HELP, Verb

    globals_ = verbs.global_options(plugins=plugins)
    table = verbs.table(plugins=plugins)
    # the command is the first word that is neither a global option nor its value
    takes_value = {f for o in globals_ if o.type != "bool" for f in o.flags}
    i = 0
    while i < len(args):
        word = args[i]
        if word == "--" or not word.startswith("-") or word == "-":
            break
        flag = word.split("=", 1)[0] if word.startswith("--") else word[:2]
        if flag in takes_value and "=" not in word and (word.startswith("--") or len(word) == 2):
            i += 1
        i += 1
    name = args[i] if i < len(args) and args[i] != "--" else None
    if name == "--":
        name = None
    rest = args[:i] + args[i + 1:] if name is not None else args
    verb: Verb | None
    if name is None:
        verb = Verb("", HELP, "", run="dbsh.repl:start_from_cli", session=False)
    elif name == "migrate":
        subs = [v for v in table.values() if v.name.startswith("migrate ")]
        valued = takes_value | {f for v in subs for o in v.options if o.type != "bool" for f in o.flags}
        j = i + 1
        while j < len(args) and args[j].startswith("-") and args[j] != "-":
            flag = args[j].split("=", 1)[0] if args[j].startswith("--") else args[j][:2]
            j += 2 if flag in valued and "=" not in args[j] and (args[j].startswith("--") or len(args[j]) == 2) else 1
        if j >= len(args):
            raise UsageError("migrate needs a command", hint="dbsh migrate --help lists them")
        sub = args[j]
        verb = table.get(f"migrate {sub}")
        if verb is None:
            known = ", ".join(v.name.split()[1] for v in subs)
            raise UsageError(f"unknown migrate command {sub!r}", hint=f"known: {known}")
        rest = args[:i] + args[i + 1:j] + args[j + 1:]
    else:
        verb = table.get(name)
        if verb is None or name == "migrate":
            raise UsageError(f"unknown command {name!r}", hint="dbsh --help lists the commands")
    call, given = argv.parse(rest, verb, globals=globals_)
    options = {k: v for k, v in call.flags.items() if k not in {o.dest for o in verb.options}}
    call.flags = {k: v for k, v in call.flags.items() if k not in options}
    call.settings = Settings(**given, options=options)
    if settings is not None:
        settings.debug = call.settings.debug
    return call


def execute(call: Call) -> int:
    """Run a parsed command: its errors become one line on stderr and an exit code."""
    settings = call.settings
    try:
        from dbsh.output import check_format

        check_format(settings.fmt)
        verb = call.verb
        module, _, attr = verb.run.partition(":")
        import importlib

        fn = getattr(importlib.import_module(module), attr)
        if not verb.session:
            code = fn(call)
            return code if isinstance(code, int) else 0
        from dbsh import context

        native = call.values.get("text") if verb.name == "query" else None
        with context.session_for(context.resolve(settings), yes=settings.yes,
                                 options={**settings.options, **call.flags}, native=native,
                                 single_transaction=settings.single_transaction) as session:
            fn(session, renderer(settings), **call.values)
        return 0
    except BrokenPipeError:
        # the reader (e.g. `| head`) went away: stop quietly, like any Unix filter
        _quiet_stdout()
        return 141
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 0
    except BaseException as error:  # noqa: BLE001 - the one place errors are rendered
        return fail(error, settings.debug)


def renderer(settings):
    from dbsh.output import Renderer

    return Renderer(settings.fmt)


def fail(error: BaseException, debug: bool) -> int:
    """Print one line for an error and return its exit code (traceback only with --debug)."""
    from dbsh.errors import EXIT_INTERRUPTED, EXIT_RUNTIME, DbshError, redact

    if debug:
        import traceback

        traceback.print_exception(error, file=sys.stderr)
    if isinstance(error, KeyboardInterrupt):
        print("dbsh: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    error = _as_dbsh_error(error)
    if isinstance(error, DbshError):
        print(f"dbsh: error: {shortened(redact(str(error)))}", file=sys.stderr)
        return error.exit_code
    text = shortened(redact(str(error).strip().splitlines()[0] if str(error).strip() else ""))
    print(f"dbsh: error: {type(error).__name__}: {text}" + ("" if debug else " (--debug shows the traceback)"),
          file=sys.stderr)
    return EXIT_RUNTIME


def _as_dbsh_error(error: BaseException) -> BaseException:
    """What a driver or a library let through, named for what it is when it is plainly bad input (exit 2)
    or a lost connection (exit 3), rather than an internal error. The drivers raise dbsh errors
    themselves; this is the net under them."""
    import http.client
    import socket

    from dbsh.errors import ConnectError, DbshError, UsageError, one_line

    if isinstance(error, DbshError | KeyboardInterrupt):
        return error
    if isinstance(error, RecursionError):
        return UsageError("the input is nested too deeply")
    if isinstance(error, UnicodeError):
        return UsageError(f"text that is not valid Unicode: {one_line(str(error))}")
    if isinstance(error, OverflowError):
        return UsageError(f"a number out of range: {one_line(str(error))}")
    if isinstance(error, ConnectionError | TimeoutError | socket.gaierror | http.client.HTTPException):
        return ConnectError(f"connection lost or refused: {one_line(str(error)) or type(error).__name__}")
    if type(error).__module__.startswith("sqlalchemy"):
        # SQLAlchemy after the server went away mid-result: the connection was invalidated
        if getattr(error, "connection_invalidated", False) or "invalid transaction is rolled back" in str(error):
            return ConnectError("the connection to the database was lost")
    return error


def shortened(text: str, limit: int = 1000) -> str:
    """A message with a huge name in it (a megabyte-long field) keeps its start and end."""
    if len(text) <= limit:
        return text
    return f"{text[:limit - 200]}... ({len(text) - limit + 100:,} characters) ...{text[-100:]}"


# -- help ---------------------------------------------------------------------------------------------
def _option_lines(opts) -> list[str]:
    cells = []
    for o in opts:
        short = next((f for f in o.flags if not f.startswith("--")), None)
        flag = (f"{short}, " if short else "    ") + o.long + (f" {o.metavar}" if o.metavar else "")
        cells.append((flag, o.help))
    width = max(len(c[0]) for c in cells)
    return [f"  {flag:<{width}}  {text}" for flag, text in cells]


def top_help() -> str:
    """`dbsh --help`, from the verb table (printed without importing Typer)."""
    from dbsh import verbs
    from dbsh.verbs import EPILOG, HELP

    table = verbs.table()
    commands = [v for v in table.values() if " " not in v.name]
    width = max(len(v.name) for v in commands)
    lines = [HELP, "", "Usage: dbsh [OPTIONS] COMMAND [ARGS]...", "       dbsh [OPTIONS]          (open the shell)", "",
             "Commands:"]
    lines += [f"  {v.name:<{width}}  {v.help}" for v in commands]
    lines += ["", "Examples:"] + [f"  {v.example}" for v in commands[1:6]]
    lines += ["", "Options (before or after the command):"]
    lines += _option_lines(verbs.global_options())
    lines += ["  -V, --version         Print the version.",
              "  -h, --help            This help; dbsh COMMAND --help for one command.",
              "      --install-completion [SHELL]",
              "                        Install completion for bash, zsh or fish (default: the shell running dbsh).",
              "      --show-completion [SHELL]",
              "                        Print that completion script instead.", "",
              EPILOG]
    return "\n".join(lines)


def completion(install: bool, shell: str | None) -> int:
    """`--show-completion [SHELL]` prints the completion script of that shell, `--install-completion
    [SHELL]` installs it (Typer's files: ~/.bash_completions/dbsh.sh, ~/.zfunc/_dbsh,
    ~/.config/fish/completions/dbsh.fish); without SHELL, the shell dbsh runs under. Typer alone
    takes no shell name, which a script or a Dockerfile writing for another shell needs."""
    # Typer's own script templates and installer (typer<0.29 is pinned; tests/test_completion.py
    # fails if they move)
    from typer._completion_shared import _get_shell_name, get_completion_script, install as install_script

    flag = "--install-completion" if install else "--show-completion"
    if shell is None:
        shell = _get_shell_name()
        if shell not in SHELLS:
            what = f"this shell ({shell})" if shell else "which shell this is"
            print(f"dbsh: error: cannot complete for {what} (name one: dbsh {flag} bash|zsh|fish)", file=sys.stderr)
            return 2
    elif shell not in SHELLS:
        print(f"dbsh: error: no completion for {shell!r} (name one: dbsh {flag} bash|zsh|fish)", file=sys.stderr)
        return 2
    if install:
        name, path = install_script(shell=shell, prog_name="dbsh", complete_var=COMPLETION_ENV)
        print(f"{name} completion installed in {path}; it takes effect in new shells")
    else:
        print(get_completion_script(prog_name="dbsh", complete_var=COMPLETION_ENV, shell=shell))
    return 0


# -- the Typer app (help pages, shell completion) ---------------------------------------------------
def _typer(args: list[str]) -> int:
    app = build_app()
    try:
        app(args=args, prog_name="dbsh", standalone_mode=True)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


def build_app():
    """The Typer app, built from the verb table: each command's callback builds the same Call the
    command-line parser would and runs it through ``execute``."""
    import inspect

    import typer

    from dbsh import __version__, verbs
    from dbsh.context import Settings
    from dbsh.verbs import EPILOG, HELP, Call, Verb

    settings_box: dict = {}
    globals_ = verbs.global_options()
    global_dests = {o.dest for o in globals_}

    def typer_param(opt, *, argument=None):
        if argument is not None:
            a = argument
            arg_kind = list[str] | None if a.many else (str if a.required else str | None)
            default = ... if a.required and not a.many else (None if a.many else a.default)
            return arg_kind, typer.Argument(default, metavar=a.metavar, help=a.help, show_default=False,
                                        autocompletion=_completer(a.complete))
        kind = {"bool": bool, "int": int | None, "float": float | None, "str": str | None,
                "list": list[str] | None}[opt.type]
        extra = {}
        if opt.min is not None:
            extra["min"] = opt.min
        return kind, typer.Option(opt.value_default() if opt.type != "list" else None, *opt.flags, help=opt.help,
                                  metavar=opt.metavar, show_default=opt.type not in ("bool", "list")
                                  and opt.default is not None, autocompletion=_completer(opt.complete), **extra)

    def make(verb: Verb, group_app):
        params = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)]
        annotations: dict[str, Any] = {"ctx": typer.Context}
        seen = set()
        for a in verb.args:
            kind, default = typer_param(None, argument=a)
            params.append(inspect.Parameter(a.dest, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default,
                                            annotation=kind))
            annotations[a.dest] = kind
        own = list(verb.options)
        takes = own + ([o for o in globals_ if o.dest not in {x.dest for x in own}]
                       if verb.globals else [])
        for o in takes:
            if o.dest in seen:
                continue
            seen.add(o.dest)
            kind, default = typer_param(o)
            params.append(inspect.Parameter("opt_" + o.dest, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                            default=default, annotation=kind))
            annotations["opt_" + o.dest] = kind

        def callback(ctx, **kwargs):
            values = {a.dest: kwargs.get(a.dest) for a in verb.args}
            for a in verb.args:
                if a.many and values[a.dest] is None:
                    values[a.dest] = []
            flags, given = {}, {}
            for o in takes:
                value = kwargs.get("opt_" + o.dest)
                if o.type == "list":
                    value = list(value or [])
                if o.dest in global_dests and o not in own:
                    if value not in (None, False, []):
                        given[o.dest] = value
                elif o.backend:
                    if value not in (None, False):
                        flags[o.dest] = value
                else:
                    values[o.dest] = value
            base = settings_box.get("root") or Settings()
            options = {k: v for k, v in given.items() if any(o.dest == k and o.backend for o in globals_)}
            plain = {k: v for k, v in given.items() if k not in options}
            settings = base.merge(**plain, options=options)
            code = execute(Call(verb, values, flags, settings))
            raise typer.Exit(code)

        # (what Typer reads: a function's signature can be set, though no type says so)
        callback.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        callback.__annotations__ = annotations
        callback.__name__ = verb.name.replace(" ", "_")
        name = verb.name.split()[-1]
        group_app.command(name, help=verb.help, epilog=f"Example: {verb.example}",
                          context_settings={"ignore_unknown_options": verb.name.startswith("migrate")})(callback)

    common: dict[str, Any] = dict(no_args_is_help=False, rich_markup_mode=None, pretty_exceptions_enable=False,
                                  context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
    app = typer.Typer(help=HELP, epilog=EPILOG, add_completion=True, **common)

    def version_callback(value: bool):
        if value:
            print(f"dbsh {__version__}")
            raise typer.Exit()

    root_params = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)]
    root_ann: dict[str, Any] = {"ctx": typer.Context}
    for o in globals_:
        kind, default = typer_param(o)
        root_params.append(inspect.Parameter("opt_" + o.dest, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                             default=default, annotation=kind))
        root_ann["opt_" + o.dest] = kind
    root_params.append(inspect.Parameter("version", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=bool,
                                         default=typer.Option(False, "--version", "-V", callback=version_callback,
                                                              is_eager=True, help="Print the version.")))
    root_ann["version"] = bool

    def root(ctx, **kwargs):
        given = {o.dest: kwargs.get("opt_" + o.dest) for o in globals_}
        options = {o.dest: given[o.dest] for o in globals_ if o.backend and given[o.dest] not in (None, False)}
        plain = {k: v for k, v in given.items() if k not in options and v not in (None, False)}
        settings_box["root"] = Settings(**plain, options=options)
        if ctx.invoked_subcommand is None:
            raise typer.Exit(execute(Call(Verb("", HELP, "", run="dbsh.repl:start_from_cli", session=False),
                                          {}, {}, settings_box["root"])))

    root.__signature__ = inspect.Signature(root_params)  # type: ignore[attr-defined]
    root.__annotations__ = root_ann
    app.callback(invoke_without_command=True)(root)

    table = verbs.table()
    migrate_verb = table["migrate"]
    migrate_app = typer.Typer(help=migrate_verb.help, no_args_is_help=True, add_completion=False,
                              **{k: v for k, v in common.items() if k != "no_args_is_help"})
    for verb in table.values():
        if verb.name == "migrate":
            continue
        make(verb, migrate_app if verb.name.startswith("migrate ") else app)
    app.add_typer(migrate_app, name="migrate", help=migrate_verb.help, epilog=f"Example: {migrate_verb.example}")
    return app


def _completer(kind: str | None):
    """Shell completion (bash, zsh, fish) of an argument or option value."""
    if kind is None:
        return None
    if kind == "profile":
        def profiles(incomplete: str):
            from dbsh import config

            try:
                names = sorted(config.profiles())
            except Exception:  # noqa: BLE001 - completion must never fail
                return []
            return [n for n in names if n.startswith(incomplete)]
        return profiles
    if "|" in kind:
        choices = kind.split("|")
        return lambda incomplete: [c for c in choices if c.startswith(incomplete)]
    return None
