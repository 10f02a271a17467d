"""Memcached's native language as dbsh reads it: the command table, and what a command does (writes?
destructive?), the shell's words, completion and highlighting. Plain Python: importing this imports no
client library (the read-only guard, the shell and the lexer use it without pymemcache).

One command a line, arguments split with redis-cli's quoting. Storage commands take the value where
the protocol has its byte count (dbsh counts the bytes): ``set KEY FLAGS EXPTIME VALUE [noreply]``,
``cas KEY FLAGS EXPTIME VALUE CAS [noreply]``, ``ms KEY VALUE [FLAGS...]``; ``set KEY VALUE`` is the
short form (flags 0, no expiry).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import cast

from dbsh.errors import UsageError

MAX_KEY = 250                 # bytes: memcached's limit for a key
ONE_COMMAND_PER_LINE = True   # the shell runs each line, a script is one command a line


@dataclass(frozen=True)
class Command:
    usage: str
    help: str
    writes: bool = False
    keys: str = ""            # where the keys are, for completion: "first" (arg 1), "rest" (args 1...), "after" (2...)


STORE = "KEY FLAGS EXPTIME VALUE [noreply]  (or KEY VALUE)"
COMMANDS: dict[str, Command] = {
    "get": Command("get KEY...", "the values of keys (a miss shows nothing)", keys="rest"),
    "gets": Command("gets KEY...", "values with their cas tokens", keys="rest"),
    "gat": Command("gat EXPTIME KEY...", "get and touch: values, with a new expiry", True, keys="after"),
    "gats": Command("gats EXPTIME KEY...", "gat with cas tokens", True, keys="after"),
    "set": Command(f"set {STORE}", "store a value", True, keys="first"),
    "add": Command(f"add {STORE}", "store only if the key does not exist", True, keys="first"),
    "replace": Command(f"replace {STORE}", "store only if the key exists", True, keys="first"),
    "append": Command(f"append {STORE}", "add bytes after the value", True, keys="first"),
    "prepend": Command(f"prepend {STORE}", "add bytes before the value", True, keys="first"),
    "cas": Command("cas KEY FLAGS EXPTIME VALUE CAS [noreply]  (or KEY VALUE CAS)",
                   "store only if nobody wrote the key since gets gave CAS", True, keys="first"),
    "incr": Command("incr KEY N [noreply]", "add N to a decimal value", True, keys="first"),
    "decr": Command("decr KEY N [noreply]", "subtract N (not below 0)", True, keys="first"),
    "delete": Command("delete KEY [noreply]", "delete a key", True, keys="first"),
    "touch": Command("touch KEY EXPTIME [noreply]", "set a new expiry", True, keys="first"),
    "mg": Command("mg KEY [FLAGS...]", "meta get: v value, c cas, t ttl, f flags, s size, k key, ...",
                  keys="first"),
    "ms": Command("ms KEY VALUE [FLAGS...]", "meta set: T ttl, F flags, C cas, M mode (E add, A append, ...)",
                  True, keys="first"),
    "md": Command("md KEY [FLAGS...]", "meta delete: C cas, q quiet, I invalidate", True, keys="first"),
    "ma": Command("ma KEY [FLAGS...]", "meta arithmetic: D delta, MD decrement, N autovivify, v value", True,
                  keys="first"),
    "mn": Command("mn", "meta no-op: MN once every reply before it is in"),
    "me": Command("me KEY", "meta debug: what the server knows of a key", keys="first"),
    "stats": Command("stats [items|slabs|sizes|settings|conns|detail dump|reset]", "server statistics"),
    "flush_all": Command("flush_all [DELAY] [noreply]", "invalidate every item (asks first)", True),
    "version": Command("version", "the server's version"),
    "verbosity": Command("verbosity LEVEL [noreply]", "the server's log level", True),
    "cache_memlimit": Command("cache_memlimit MEGABYTES [noreply]", "change the memory limit", True),
    "lru_crawler": Command("lru_crawler metadump all|hash|CLASSIDS", "list keys with their expiry, size, ..."),
}
# known, and refused before anything is sent
REFUSED = {
    "quit": "dbsh keeps the connection open (\\q leaves the shell)",
    "shutdown": "dbsh does not shut servers down",
    "watch": "watch streams the server's log; dbsh cannot run it",
}
STORAGE = frozenset({"set", "add", "replace", "append", "prepend", "cas"})
KEYWORDS = sorted(COMMANDS)


def command_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of each command: one a line; blank lines and # comments are skipped."""
    return [(n, line) for n, line in enumerate(text.splitlines(), 1)
            if line.strip() and not line.lstrip().startswith("#")]


def _words(line: str) -> list[str]:
    """The words of a line, for telling what it does (quotes matter only for values, never for the
    command word and flags read here)."""
    return line.split()


def _line_writes(line: str) -> bool:
    words = _words(line)
    name = words[0].lower()
    command = COMMANDS.get(name)
    if command is None:
        return True                      # unknown: refused anyway; errs on the side of writing
    if name == "stats":                  # stats reset, stats detail on|off change the server
        rest = [w.lower() for w in words[1:]]
        return bool(rest) and (rest[0] == "reset" or (rest[0] == "detail" and rest[1:2] != ["dump"]))
    if name == "mg":                     # N vivifies a missing item, T changes the expiry
        return any(w[:1] in ("N", "T") for w in words[2:])
    if name == "lru_crawler":
        return [w.lower() for w in words[1:2]] != ["metadump"]
    return command.writes


def writes(text: str) -> bool:
    """Whether any command of the text may change data (for a client-side read-only session)."""
    return any(_line_writes(line) for _, line in command_lines(text))


def destructive(text: str) -> str | None:
    """Why a command needs confirmation: flush_all empties the cache (on every server)."""
    for number, line in command_lines(text):
        if _words(line)[0].lower() == "flush_all":
            where = f"line {number}: " if len(command_lines(text)) > 1 else ""
            return f"{where}it invalidates every item on every server"
    return None


def check_key(key: bytes, what: str = "key") -> bytes:
    """A key as memcached's text protocol takes it: 1-250 bytes, no space and no control character
    (so a key can never end a command line and start another)."""
    if not key:
        raise UsageError(f"empty {what}")
    if len(key) > MAX_KEY:
        raise UsageError(f"{what} is {len(key)} bytes; memcached keys are at most {MAX_KEY} bytes",
                         hint=f"{key[:40].decode('utf-8', 'replace')}...")
    if _BAD_KEY.search(key):
        shown = key.decode("utf-8", "backslashreplace")
        raise UsageError(f"{what} {shown!r} has a space or a control character; memcached keys cannot")
    return key


_BAD_KEY = re.compile(rb"[\x00-\x20\x7f]")
_TOKEN = re.compile(r"[\w:.\-/@#$%+=~]*$")


def complete(text: str, keys: list[str]) -> list[tuple[str, int, str]]:
    """(word, start position, what) to offer for the text before the cursor: a command name first,
    then key names (from the server's key list) where the command takes a key."""
    partial = cast(re.Match[str], _TOKEN.search(text)).group(0)   # (it matches the empty string too)
    before = text[:len(text) - len(partial)].split()
    if not before:
        upper = partial[:1].isupper()
        return [(name.upper() if upper else name, -len(partial), COMMANDS[name].help)
                for name in KEYWORDS if name.startswith(partial.lower())]
    command = COMMANDS.get(before[0].lower())
    position = len(before)              # the argument being typed, 1 = the first after the command
    if command is None or not command.keys or (command.keys == "first" and position != 1) or (
            command.keys == "after" and position < 2):
        return []
    return [(key, -len(partial), "key") for key in keys if key.startswith(partial)]


@lru_cache(maxsize=1)
def lexer():
    """A Pygments lexer: the command word, quoted strings, numbers, the rest as plain arguments."""
    from pygments.lexer import RegexLexer, bygroups
    from pygments.token import Keyword, Name, Number, String, Text

    class MemcachedLexer(RegexLexer):
        name = "Memcached"
        aliases = ["memcached"]
        tokens = {
            "root": [
                (r"^(\s*)([A-Za-z_]+)", bygroups(Text, Keyword)),
                (r'"(\\\\|\\"|[^"])*"', String.Double),
                (r"'(\\\\|\\'|[^'])*'", String.Single),
                (r"-?\d+\b", Number),
                (r"\s+", Text),
                (r"\S+", Name),
            ],
        }

    return MemcachedLexer
