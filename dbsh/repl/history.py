"""Persistent history, one file per connection in the user data dir, with passwords taken out.

What is kept of a line: URL passwords (user:***@host, ?password=***), known secrets, and the secret of
every statement that sets a password, in each backend's language (the rules apply to every line: a
rule of another language never matches something that needs keeping):

    SQL, CQL, Cypher   every string after PASSWORD or IDENTIFIED BY: CREATE/ALTER ROLE|USER ... PASSWORD
                       '...', IDENTIFIED BY '...', SET PASSWORD = PASSWORD('...'), SET PASSWORD FROM '...'
                       TO '...', WITH PASSWORD = '...'
    Redis              AUTH / HELLO ... AUTH user pw, ACL SETUSER ... >pw <pw #hash !hash,
                       CONFIG SET requirepass|masterauth ..., MIGRATE ... AUTH pw | AUTH2 user pw
    MongoDB            pwd: "..." (createUser, updateUser, runCommand), changeUserPassword("user", "...")
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from prompt_toolkit.history import FileHistory

from dbsh import config
from dbsh.errors import redact

_PASSWORD_PARAM = re.compile(r"(?i)\b(password|passwd|pwd)=([^&\s]+)")
# a string literal: 'single' (doubled '' or \' inside), "double", or $tag$dollar$tag$; one cut short by the
# end of the text runs to its end
_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*(?:'|$)|\"(?:[^\"\\]|\\.)*(?:\"|$)|\$\$.*?(?:\$\$|$)"
                      r"|\$(?P<tag>[A-Za-z_]\w*)\$.*?(?:\$(?P=tag)\$|$)",
                      re.S)
_SQL_SECRET = re.compile(r"(?i)\b(?:password|identified\s+by|identified\s+via)\b")
_MONGO_PWD = re.compile(r"""(?i)(["']?\b(?:pwd|password)\b["']?\s*:\s*)""")
_MONGO_CHANGE = re.compile(r"(?i)\bchangeUserPassword\s*\(")
_REDIS_TOKEN = re.compile(r"\"(?:[^\"\\]|\\.)*(?:\"|$)|'(?:[^'\\]|\\.)*(?:'|$)|\S+")
_REDIS_FIRST = {"AUTH", "HELLO", "ACL", "CONFIG", "MIGRATE"}


def history_path(target) -> Path:
    """history/<profile or scheme>-<hash of the URL without password>."""
    key = target.profile or target.without_password()
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    label = re.sub(r"[^\w.-]+", "_", target.profile or target.scheme)[:40]
    return config.data_dir() / "history" / f"{label}-{digest}"


def clean(text: str, *secrets: str | None) -> str:
    """The line as it may be kept: URL passwords, password= parameters, known secrets and the secrets
    of password-setting statements hidden."""
    text = _PASSWORD_PARAM.sub(lambda m: f"{m[1]}=***", redact(text, *secrets))
    return "\n".join(_clean_statement(line) for line in _statements(text))


def _statements(text: str) -> list[str]:
    # a Redis command is one line; the other languages' statements may span lines (kept whole)
    lines = text.split("\n")
    if any(_redis_name(line) in _REDIS_FIRST for line in lines):
        return lines
    return [text]


def _redis_name(line: str) -> str:
    words = line.split(None, 1)
    return words[0].upper() if words else ""


def _masked(literal: str) -> str:
    if literal.startswith("$"):
        return "'***'"
    quote = literal[0]
    return f"{quote}***{quote}"


def _clean_statement(text: str) -> str:
    if _redis_name(text) in _REDIS_FIRST:
        return _clean_redis(text)
    found = _SQL_SECRET.search(text)
    if found:   # every string after the keyword (SET PASSWORD FROM 'old' TO 'new' has two)
        text = text[:found.end()] + _LITERAL.sub(lambda m: _masked(m[0]), text[found.end():])
    change = _MONGO_CHANGE.search(text)
    if change:   # changeUserPassword("user", "secret"): the strings after the first
        head, rest = text[:change.end()], text[change.end():]
        seen = [0]

        def second_on(m):
            seen[0] += 1
            return m[0] if seen[0] == 1 else _masked(m[0])

        text = head + _LITERAL.sub(second_on, rest)
    if _MONGO_PWD.search(text):
        text = re.sub(_MONGO_PWD.pattern + r"""("(?:[^"\\]|\\.)*(?:"|$)|'(?:[^'\\]|\\.)*(?:'|$)|[^,}\s]+)""",
                      lambda m: m[1] + (_masked(m[2]) if m[2][0] in "'\"" else "***"), text)
    return text


def _clean_redis(line: str) -> str:
    tokens = [(m.start(), m.end(), m[0]) for m in _REDIS_TOKEN.finditer(line)]
    words = [t[2].strip("\"'").upper() for t in tokens]
    hide: set[int] = set()
    first = words[0]
    if first == "AUTH":
        hide.update(range(1, len(tokens)))
    elif first in ("HELLO", "MIGRATE"):
        for i, word in enumerate(words):
            if word == "AUTH":
                hide.update(range(i + 1, min(i + 3 if first == "HELLO" else i + 2, len(tokens))))
            elif word == "AUTH2":
                hide.update(range(i + 1, min(i + 3, len(tokens))))
    elif first == "ACL" and len(words) > 1 and words[1] == "SETUSER":
        hide.update(i for i in range(3, len(tokens)) if tokens[i][2].lstrip("\"'")[:1] in "<>#!")
    elif first == "CONFIG" and len(words) > 1 and words[1] == "SET":
        for i in range(2, len(tokens) - 1):
            if words[i] in ("REQUIREPASS", "MASTERAUTH") and i % 2 == 0:
                hide.add(i + 1)
    if not hide:
        return line
    out, done = [], 0
    for i in sorted(hide):
        start, end, token = tokens[i]
        quote = token[0] if token[0] in "'\"" else ""
        bare = token[len(quote):]
        mark = bare[0] if first == "ACL" and bare[:1] in "<>#!" else ""
        out.append(line[done:start] + f"{quote}{mark}***{quote}")
        done = end
    return "".join(out) + line[done:]


class RedactingHistory(FileHistory):
    """A FileHistory that never keeps a password, in memory or on disk."""

    def __init__(self, path: Path, secrets=()):
        path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(str(path))
        self.secrets = tuple(s for s in secrets if s)

    def append_string(self, string: str) -> None:
        super().append_string(clean(string, *self.secrets))
