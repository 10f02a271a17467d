"""Backslash commands: one table that both dispatches and writes the \\? help.

The verbs call the same functions as the CLI subcommands (``dbsh.commands``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dbsh import commands
from dbsh.errors import UsageError
from dbsh.output import FORMATS
from dbsh.statements import arguments


class Quit(Exception):
    """\\q, quit, exit."""


@dataclass(frozen=True)
class MetaCommand:
    name: str
    aliases: tuple[str, ...]
    usage: str
    help: str
    args: tuple[str, ...]       # completion of each argument: collection, filter, file, profile, or a|b|c
    run: Callable[..., None]
    verb: object = None         # the dbsh.verbs.Verb behind a verb's backslash form (its options complete)


COMMANDS: dict[str, MetaCommand] = {}


def command(name: str, *aliases: str, usage: str = "", args: tuple[str, ...] = ()):
    def register(fn):
        help_text = (fn.__doc__ or "").strip().splitlines()[0]
        COMMANDS[name] = MetaCommand(name, aliases, usage, help_text, args, fn)
        return fn
    return register


def lookup(word: str) -> MetaCommand | None:
    for cmd in COMMANDS.values():
        if word == cmd.name or word in cmd.aliases:
            return cmd
    return None


def dispatch(shell, text: str) -> None:
    head, _, rest = text.strip().partition(" ")
    if "\n" in head:
        head, _, more = head.partition("\n")
        rest = more + " " + rest
    cmd = lookup(head)
    if cmd is None:
        raise UsageError(f"unknown command {head}", hint="\\? lists the commands")
    if cmd.verb is not None:
        shell.last_statement = text.strip()     # \\watch and \\e take it up
    cmd.run(shell, rest.strip())


# -- argument helpers ------------------------------------------------------------------------

def needs(positional: list[str], count: int, usage: str, most: int | None = None) -> None:
    if len(positional) < count or (most is not None and len(positional) > most):
        raise UsageError(f"usage: {usage}")


def plain(arg: str, usage: str, most: int) -> list[str]:
    """The arguments of a shell-only command (no options)."""
    words = arguments(arg)
    for word in words:
        if word.startswith("--"):
            raise UsageError(f"unknown option {word.split('=', 1)[0]}", hint=f"usage: {usage}")
    needs(words, 0, usage, most)
    return words


def on_off(arg: str, current: bool, name: str) -> bool:
    word = arg.strip().lower()
    if not word:
        return not current
    if word in ("on", "true", "1", "yes"):
        return True
    if word in ("off", "false", "0", "no"):
        return False
    raise UsageError(f"\\{name} takes on or off, not {arg!r}")


# -- the verbs: the same table, parser and functions as the command line ----------------------

def _before(shell, call) -> None:
    """What the shell adds to a verb: confirmation of an empty-filter update/delete, and no reading
    of documents from stdin (in a script that is the script itself)."""
    name, v = call.verb.name, call.values
    if name == "insert":
        if not v.get("documents") and not v.get("file"):
            raise UsageError(f"no documents given; usage: \\insert {call.verb.usage} | --file F")
    elif name == "update":
        if commands.parse_filter_text(v["filter"]).is_empty and not v.get("one"):
            shell.confirm(f"\\update {v['collection']} with an empty filter changes every document")
    elif name == "delete":
        if commands.parse_filter_text(v["filter"]).is_empty and not v.get("one") and not v.get("everything"):
            shell.confirm(f"\\delete {v['collection']} with an empty filter deletes every document")
            v["everything"] = True


WRITING = {"insert", "update", "delete", "copy"}


def _verb(verb):
    def run(shell, arg: str) -> None:
        from dbsh import argv

        call, _ = argv.parse(arguments(arg), verb, prog="")
        _before(shell, call)
        if verb.name in WRITING and verb.session:
            shell.check_writable(verb.name)
        module, _, attr = verb.run.partition(":")
        import importlib

        fn = getattr(importlib.import_module(module), attr)
        with shell.output() as out:
            if not verb.session:
                from dbsh.context import Settings

                call.settings = Settings(fmt=shell.fmt, yes=shell.yes, options=dict(shell.backend_options))
                fn(call)
            else:
                session = shell.session
                saved = dict(session.options)
                try:
                    session.set_options(**call.flags)
                    # the shell's session outlives the statement: its transaction stays open
                    extra = {"ask": shell.confirm_question, "script": False} if verb.name == "query" else {}
                    fn(session, out, **call.values, **extra)
                finally:
                    session.options = saved
        if verb.name in WRITING:
            shell.refresh_catalog()

    run.__doc__ = verb.help
    return run


def _register_verbs() -> None:
    from dbsh.verbs import table

    for verb in table().values():
        if verb.shell:
            options = " [options]" if verb.options else ""
            COMMANDS[verb.shell] = MetaCommand(verb.shell, verb.aliases, f"{verb.shell} {verb.usage}{options}".strip(),
                                               verb.help, tuple(a.complete or "" for a in verb.args), _verb(verb),
                                               verb)


_register_verbs()


@command("\\refresh", usage="\\refresh")
def refresh(shell, arg: str) -> None:
    """Fetch the schema for completion again (in the background)."""
    shell.refresh_catalog()
    shell.notice("refreshing completions in the background")


# -- connection and session ------------------------------------------------------------------

@command("\\connect", "\\c", usage="\\connect URL|NAME", args=("profile",))
def connect(shell, arg: str) -> None:
    """Connect to another database (URL or saved profile)."""
    positional = plain(arg, COMMANDS["\\connect"].usage, 1)
    needs(positional, 1, COMMANDS["\\connect"].usage, 1)
    shell.switch(positional[0])


@command("\\begin", usage="\\begin")
def begin(shell, arg: str) -> None:
    """Open a transaction (the prompt shows * while it is open)."""
    shell.require_transactions()
    shell.session.begin()


@command("\\commit", usage="\\commit")
def commit(shell, arg: str) -> None:
    """Commit the open transaction."""
    shell.require_transactions()
    shell.session.commit()
    shell.refresh_catalog()


@command("\\rollback", usage="\\rollback")
def rollback(shell, arg: str) -> None:
    """Roll back the open transaction."""
    shell.require_transactions()
    shell.session.rollback()


@command("\\readonly", usage="\\readonly [on|off]", args=("on|off",))
def readonly(shell, arg: str) -> None:
    """Refuse writes (a server-side read-only session where the backend has one)."""
    shell.set_readonly(on_off(arg, shell.readonly, "readonly"))


# -- display ---------------------------------------------------------------------------------

@command("\\format", usage="\\format " + "|".join(FORMATS), args=("|".join(FORMATS),))
def format_(shell, arg: str) -> None:
    """Choose the output format."""
    fmt = arg.strip()
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}", hint="choose one of " + ", ".join(FORMATS))
    shell.fmt = fmt
    shell.notice(f"format: {fmt}")


@command("\\x", usage="\\x [on|off|auto]", args=("on|off|auto",))
def expanded(shell, arg: str) -> None:
    """Expanded rows, one field per line (auto: when a row is wider than the terminal)."""
    if arg.strip().lower() == "auto":
        shell.expanded = "auto"
    else:
        shell.expanded = on_off(arg, bool(shell.expanded), "x")
    state = "auto" if shell.expanded == "auto" else "on" if shell.expanded else "off"
    shell.notice(f"expanded display is {state}")


@command("\\timing", usage="\\timing [on|off]", args=("on|off",))
def timing(shell, arg: str) -> None:
    """Show how long each command took."""
    shell.timing = on_off(arg, shell.timing, "timing")
    shell.notice(f"timing is {'on' if shell.timing else 'off'}")


@command("\\o", "\\out", usage="\\o [FILE]", args=("file",))
def out(shell, arg: str) -> None:
    """Send results to FILE instead of the screen (\\o alone: back to the screen)."""
    positional = plain(arg, COMMANDS["\\o"].usage, 1)
    shell.set_output(positional[0] if positional else None)
    shell.notice(f"results go to {positional[0]}" if positional else "results go to the screen")


@command("\\tee", usage="\\tee [FILE]", args=("file",))
def tee(shell, arg: str) -> None:
    """Also append results to FILE, as shown (\\tee alone: stop)."""
    positional = plain(arg, COMMANDS["\\tee"].usage, 1)
    shell.set_output(positional[0] if positional else None, tee=True)
    shell.notice(f"results are also written to {positional[0]}" if positional else "results go to the screen only")


@command("\\watch", usage="\\watch [SECONDS] [c=COUNT]")
def watch(shell, arg: str) -> None:
    """Run the last statement again every SECONDS (default 2) until Ctrl-C, or COUNT times."""
    usage = COMMANDS["\\watch"].usage
    interval, count = 2.0, None
    for word in plain(arg, usage, 2):
        key, eq, value = word.partition("=")
        try:
            if eq and key in ("c", "count"):
                count = int(value)
            elif eq and key in ("i", "interval"):
                interval = float(value)
            elif not eq:
                interval = float(word)
            else:
                raise ValueError(word)
        except ValueError:
            raise UsageError(f"\\watch: {word!r} is not a number of seconds nor c=COUNT",
                             hint=f"usage: {usage}") from None
    if interval < 0 or (count is not None and count < 1):
        raise UsageError(f"usage: {usage} (SECONDS at least 0, COUNT at least 1)")
    shell.watch(interval, count)


# -- named queries: [named_queries] in config.toml -------------------------------------------

@command("\\n", usage="\\n [NAME [ARG...]]", args=("named",))
def named(shell, arg: str) -> None:
    """Run a named query with its $1, $2 ... arguments (bound, never pasted); \\n alone lists them."""
    from dbsh import config
    from dbsh.statements import positional

    words = arguments(arg)
    saved = config.named_queries()
    if not words:
        with shell.output() as out:
            out.rows(({"name": k, "query": v} for k, v in sorted(saved.items())), ["name", "query"])
        return
    name, values = words[0], [_value(w) for w in words[1:]]
    if name not in saved:
        known = ", ".join(sorted(saved)) or "none saved"
        raise UsageError(f"no named query {name!r} (known: {known})", hint="save one with \\ns NAME QUERY")
    text, params = positional(saved[name], shell.language, values)
    shell.native(text, params)


def _value(word: str):
    """An argument is read as JSON when it is JSON (42, true, "42"), else as text: as -p does."""
    return commands.parse_params([f"v={word}"])["v"]


@command("\\ns", usage="\\ns NAME QUERY")
def named_save(shell, arg: str) -> None:
    """Save QUERY (with $1, $2 ... for arguments) as NAME in the config file."""
    from dbsh import config

    name, _, text = arg.strip().partition(" ")
    text = text.strip()
    if not name or not text:
        raise UsageError("usage: " + COMMANDS["\\ns"].usage)
    path = config.save_named_query(name, text)
    shell.notice(f"saved {name!r} in {path}")


@command("\\nd", usage="\\nd NAME", args=("named",))
def named_delete(shell, arg: str) -> None:
    """Delete the named query NAME."""
    from dbsh import config

    positional = plain(arg, COMMANDS["\\nd"].usage, 1)
    needs(positional, 1, COMMANDS["\\nd"].usage, 1)
    config.save_named_query(positional[0], None)
    shell.notice(f"deleted {positional[0]!r}")


# -- input -----------------------------------------------------------------------------------

@command("\\e", "\\edit", usage="\\e [FILE]", args=("file",))
def edit(shell, arg: str) -> None:
    """Edit the last statement (or FILE) in $EDITOR; the result comes back at the prompt."""
    shell.edit(arg.strip() or None)


@command("\\i", "\\include", usage="\\i FILE", args=("file",))
def include(shell, arg: str) -> None:
    """Run the statements of a file (stops at the first error)."""
    positional = plain(arg, COMMANDS["\\i"].usage, 1)
    needs(positional, 1, COMMANDS["\\i"].usage, 1)
    shell.run_file(positional[0])


@command("\\?", "\\help", usage="\\?")
def help_(shell, arg: str) -> None:
    """This help."""
    lines = help_lines()
    terminator = shell.terminator
    ending = (f"end statements with {terminator!r}" if terminator else "one statement per line, or a balanced "
              "JSON document")
    lines += ["", f"Anything else is {shell.backend_label()} {shell.language}: {ending}.",
              "Tab completes; Ctrl-R searches history; Alt-Enter runs the buffer as is; Ctrl-D quits."]
    shell.notice("\n".join(lines), to_stdout=True)


def help_lines() -> list[str]:
    """One line per command: its usage, its other names, what it does (the README's list too)."""
    entries = []
    for c in COMMANDS.values():
        usage = c.usage
        if c.aliases:
            usage += f"  ({', '.join(c.aliases)})"
        entries.append((usage, c.help))
    width = max(len(u) for u, _ in entries)
    return [f"  {u:<{width}}  {h}" for u, h in entries]


@command("\\q", "\\quit", usage="\\q")
def quit_(shell, arg: str) -> None:
    """Quit."""
    raise Quit()
