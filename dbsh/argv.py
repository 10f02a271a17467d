"""Parse a command's words against its verb (dbsh.verbs): the command line and the shell's backslash
commands both go through here, so they accept exactly the same arguments and options.

    --name value, --name=value, -n value, -n5, bool flags, repeatable list options,
    "--" ends the options, "-" and negative numbers (-1) are arguments.

Errors are one-line UsageErrors (exit 2) naming the option and what it takes.
"""

from __future__ import annotations

import re
from typing import Any

from dbsh.errors import UsageError
from dbsh.verbs import Call, Opt, Verb

_NUMBER = re.compile(r"-\d")


def _convert(opt: Opt, flag: str, raw: str) -> Any:
    if opt.type in ("str", "list"):
        return raw
    kind = int if opt.type == "int" else float
    try:
        value = kind(raw)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise UsageError(f"{flag} expects {what}, got {raw!r}") from None
    if opt.min is not None and value < opt.min:
        raise UsageError(f"{flag} must be at least {opt.min:g}, got {raw}")
    return value


def parse(words: list[str], verb: Verb, *, globals: tuple[Opt, ...] = (), prog: str = "dbsh") -> tuple[Call, dict]:
    """(Call with the verb's values and backend flags, the global options given) for ``words``.

    ``globals`` are accepted anywhere among the words (as before or after the command)."""
    options = {**{f: o for o in globals for f in o.flags}, **{f: o for o in verb.options for f in o.flags}}
    global_dests = {o.dest for o in globals}
    signed = any(a.signed for a in verb.args)   # -1 is then a value (migrate downgrade -1), else maybe a flag
    found: dict[str, Any] = {}
    positional: list[str] = []
    i, n = 0, len(words)
    only_args = False
    while i < n:
        word = words[i]
        i += 1
        if only_args or word == "-" or not word.startswith("-") or \
                (_NUMBER.match(word) and (signed or word not in options)):
            positional.append(word)
            continue
        if word == "--":
            only_args = True
            continue
        if word.startswith("--"):
            flag, eq, value = word.partition("=")
            attached = value if eq else None
        else:
            flag, attached = word[:2], (word[2:] or None)
        opt = options.get(flag)
        if opt is None:
            known = " ".join(sorted({o.long for o in verb.options})) or "none"
            where = f"{prog} {verb.name}" if prog else verb.name
            raise UsageError(f"unknown option {flag} for {where}", hint=f"its options: {known}")
        if opt.type == "bool":
            if attached is not None:
                raise UsageError(f"{flag} takes no value")
            found[opt.dest] = True
            continue
        if attached is None:
            if i >= n:
                raise UsageError(f"{flag} needs a value" + (f" ({opt.metavar})" if opt.metavar else ""))
            attached = words[i]
            i += 1
        value = _convert(opt, flag, attached)
        if opt.type == "list":
            found.setdefault(opt.dest, []).append(value)
        else:
            found[opt.dest] = value
    values: dict[str, Any] = {}
    name = verb.shell if prog == "" and verb.shell else verb.name
    usage = f"usage: {prog + ' ' if prog else ''}{name} {verb.usage}".rstrip()
    for arg in verb.args:
        if arg.many:
            values[arg.dest] = positional
            positional = []
        elif positional:
            values[arg.dest] = positional.pop(0)
        elif arg.required:
            raise UsageError(f"missing {arg.metavar}; {usage}")
        else:
            values[arg.dest] = arg.default
    if positional:
        raise UsageError(f"unexpected argument {positional[0]!r}; {usage}")
    flags = {}
    given_globals = {}
    for opt in (*verb.options, *globals):
        if opt.dest in global_dests and opt.dest not in {o.dest for o in verb.options}:
            if opt.dest in found:
                given_globals[opt.dest] = found[opt.dest]
            continue
        value = found.get(opt.dest, opt.value_default())
        if opt.backend:
            if opt.dest in found:
                flags[opt.dest] = value
        else:
            values[opt.dest] = value
    for opt in globals:
        if opt.backend and opt.dest in found:
            flags[opt.dest] = found[opt.dest]
            given_globals.pop(opt.dest, None)
    return Call(verb, values, flags), given_globals
