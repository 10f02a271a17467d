"""Backslash commands: one table that both dispatches and writes the \\? help.

The verbs call the same functions as the CLI subcommands (``dbsh.commands``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

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
    cmd.run(shell, rest.strip())


# -- argument helpers ------------------------------------------------------------------------

def options(words: list[str], spec: dict[str, type]) -> tuple[list[str], dict]:
    """Split `--name value` / `--flag` options (names from spec) from positional arguments."""
    positional: list[str] = []
    found: dict = {}
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("--") and len(word) > 2:
            name, eq, value = word[2:].partition("=")
            key = name.replace("-", "_")
            if key not in spec:
                known = " ".join("--" + k.replace("_", "-") for k in spec) or "none"
                raise UsageError(f"unknown option --{name}", hint=f"options: {known}")
            kind = spec[key]
            if kind is bool:
                found[key] = True
            else:
                if not eq:
                    i += 1
                    if i >= len(words):
                        raise UsageError(f"--{name} needs a value")
                    value = words[i]
                try:
                    found[key] = kind(value)
                except ValueError:
                    raise UsageError(f"--{name} expects {kind.__name__}, got {value!r}") from None
                if kind is int and found[key] < 0:
                    raise UsageError(f"--{name} must not be negative")
        else:
            positional.append(word)
        i += 1
    return positional, found


def needs(positional: list[str], count: int, usage: str, most: int | None = None) -> None:
    if len(positional) < count or (most is not None and len(positional) > most):
        raise UsageError(f"usage: {usage}")


def on_off(arg: str, current: bool, name: str) -> bool:
    word = arg.strip().lower()
    if not word:
        return not current
    if word in ("on", "true", "1", "yes"):
        return True
    if word in ("off", "false", "0", "no"):
        return False
    raise UsageError(f"\\{name} takes on or off, not {arg!r}")


# -- the uniform verbs -----------------------------------------------------------------------

@command("\\find", usage="\\find COLLECTION [FILTER] [--fields a,b] [--sort -a,b] [--limit N] [--skip N]",
         args=("collection", "filter"))
def find(shell, arg: str) -> None:
    """Find documents matching a MongoDB-style filter."""
    usage = COMMANDS["\\find"].usage
    positional, opts = options(arguments(arg), {"fields": str, "sort": str, "limit": int, "skip": int})
    needs(positional, 1, usage, 2)
    with shell.output() as out:
        commands.find(shell.session, out, positional[0], positional[1] if len(positional) > 1 else None, **opts)


@command("\\count", usage="\\count COLLECTION [FILTER]", args=("collection", "filter"))
def count(shell, arg: str) -> None:
    """Count documents matching a filter."""
    positional, _ = options(arguments(arg), {})
    needs(positional, 1, COMMANDS["\\count"].usage, 2)
    with shell.output() as out:
        commands.count(shell.session, out, positional[0], positional[1] if len(positional) > 1 else None)


@command("\\insert", usage="\\insert COLLECTION DOC... | --file F [--create] [--batch N]",
         args=("collection", "filter"))
def insert(shell, arg: str) -> None:
    """Insert documents (JSON objects, or --file F: jsonl, json, csv)."""
    usage = COMMANDS["\\insert"].usage
    positional, opts = options(arguments(arg), {"file": str, "create": bool, "batch": int, "input_format": str})
    needs(positional, 1, usage)
    if len(positional) == 1 and not opts.get("file"):
        raise UsageError(f"no documents given; usage: {usage}")
    shell.check_writable("\\insert")
    with shell.output() as out:
        commands.insert(shell.session, out, positional[0], positional[1:], **opts)
    shell.refresh_catalog()


@command("\\update", usage="\\update COLLECTION FILTER UPDATE [--upsert] [--one]",
         args=("collection", "filter"))
def update(shell, arg: str) -> None:
    """Update documents matching a filter with $set, $unset, $inc."""
    positional, opts = options(arguments(arg), {"upsert": bool, "one": bool})
    needs(positional, 3, COMMANDS["\\update"].usage, 3)
    shell.check_writable("\\update")
    if positional[1].replace(" ", "") == "{}" and not opts.get("one"):
        shell.confirm(f"\\update {positional[0]} with an empty filter changes every document")
    with shell.output() as out:
        commands.update(shell.session, out, *positional, **opts)
    shell.refresh_catalog()


@command("\\delete", usage="\\delete COLLECTION FILTER [--one] [--all]", args=("collection", "filter"))
def delete(shell, arg: str) -> None:
    """Delete documents matching a filter (an empty filter asks first)."""
    positional, opts = options(arguments(arg), {"one": bool, "all": bool})
    needs(positional, 1, COMMANDS["\\delete"].usage, 2)
    shell.check_writable("\\delete")
    where = positional[1] if len(positional) > 1 else None
    everything = opts.get("all", False)
    if commands.parse_filter_text(where).is_empty and not opts.get("one"):
        shell.confirm(f"\\delete {positional[0]} with an empty filter deletes every document")
        everything = True
    with shell.output() as out:
        commands.delete(shell.session, out, positional[0], where, one=opts.get("one", False), everything=everything)


@command("\\explain", usage="\\explain COLLECTION [FILTER] [--sort ...] [--limit N]", args=("collection", "filter"))
def explain(shell, arg: str) -> None:
    """Show how the backend would run a find."""
    positional, opts = options(arguments(arg), {"fields": str, "sort": str, "limit": int, "skip": int})
    needs(positional, 1, COMMANDS["\\explain"].usage, 2)
    with shell.output() as out:
        commands.explain(shell.session, out, positional[0], positional[1] if len(positional) > 1 else None, **opts)


# -- catalog ---------------------------------------------------------------------------------

@command("\\collections", "\\dt", usage="\\collections")
def collections(shell, arg: str) -> None:
    """List collections: tables, labels, key prefixes, databases."""
    with shell.output() as out:
        commands.collections(shell.session, out)


@command("\\describe", "\\d", usage="\\describe NAME  (\\d alone lists collections)", args=("collection",))
def describe(shell, arg: str) -> None:
    """Describe a collection: columns or fields, types, indexes."""
    positional, _ = options(arguments(arg), {})
    if not positional:
        return collections(shell, "")
    needs(positional, 1, COMMANDS["\\describe"].usage, 1)
    with shell.output() as out:
        commands.describe(shell.session, out, positional[0])


@command("\\refresh", usage="\\refresh")
def refresh(shell, arg: str) -> None:
    """Fetch the schema for completion again (in the background)."""
    shell.refresh_catalog()
    shell.notice("refreshing completions in the background")


# -- connection and session ------------------------------------------------------------------

@command("\\connect", "\\c", usage="\\connect URL|NAME", args=("profile",))
def connect(shell, arg: str) -> None:
    """Connect to another database (URL or saved profile)."""
    positional, _ = options(arguments(arg), {})
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


@command("\\x", usage="\\x [on|off]", args=("on|off",))
def expanded(shell, arg: str) -> None:
    """Expanded rows: one field per line."""
    shell.expanded = on_off(arg, shell.expanded, "x")
    shell.notice(f"expanded display is {'on' if shell.expanded else 'off'}")


@command("\\timing", usage="\\timing [on|off]", args=("on|off",))
def timing(shell, arg: str) -> None:
    """Show how long each command took."""
    shell.timing = on_off(arg, shell.timing, "timing")
    shell.notice(f"timing is {'on' if shell.timing else 'off'}")


# -- input -----------------------------------------------------------------------------------

@command("\\e", "\\edit", usage="\\e [FILE]", args=("file",))
def edit(shell, arg: str) -> None:
    """Edit the last statement (or FILE) in $EDITOR; the result comes back at the prompt."""
    shell.edit(arg.strip() or None)


@command("\\i", "\\include", usage="\\i FILE", args=("file",))
def include(shell, arg: str) -> None:
    """Run the statements of a file (stops at the first error)."""
    positional, _ = options(arguments(arg), {})
    needs(positional, 1, COMMANDS["\\i"].usage, 1)
    shell.run_file(positional[0])


@command("\\?", "\\help", usage="\\?")
def help_(shell, arg: str) -> None:
    """This help."""
    width = max(len(c.usage) for c in COMMANDS.values())
    lines = [f"  {c.usage:<{width}}  {c.help}" for c in COMMANDS.values()]
    terminator = shell.terminator
    ending = (f"end statements with {terminator!r}" if terminator else "one statement per line, or a balanced "
              "JSON document")
    lines += ["", f"Anything else is {shell.backend_label()} {shell.language}: {ending}.",
              "Tab completes; Ctrl-R searches history; Alt-Enter runs the buffer as is; Ctrl-D quits."]
    shell.notice("\n".join(lines), to_stdout=True)


@command("\\q", "\\quit", usage="\\q")
def quit_(shell, arg: str) -> None:
    """Quit."""
    raise Quit()
