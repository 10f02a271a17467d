"""Reading the user's text (shared by the REPL, the CLI's read-only guard and the drivers): where a statement ends, what it does (destructive? a write?), arguments.

One small scanner knows strings, quoted names and comments for each language, so a ';' or a
'{' inside a string never ends or opens anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dbsh.errors import UsageError

# comment markers per language family; Cypher has no '--' comment ((a)--(b) is a pattern)
_COMMENTS = {
    "sql": ("--", "/*"),
    "cql": ("--", "//", "/*"),
    "cypher": ("//", "/*"),
}


def comment_markers(language: str) -> tuple[str, ...]:
    return _COMMENTS.get(language, ("--", "/*") if language in ("postgresql", "mysql", "sqlite") else ())


@dataclass
class Scan:
    """What a left-to-right scan found: code outside strings/comments, and the state at the end."""

    code: str             # the text with strings blanked ('' stays, contents become spaces) and comments removed
    depth: int            # open brackets ({[ minus closing ones
    open_quote: bool      # the text ends inside a string, quoted name or block comment
    cuts: list[int]       # offsets just after each terminator outside strings and comments


def scan(text: str, language: str = "sql", terminator: str | None = ";") -> Scan:
    markers = comment_markers(language)
    out: list[str] = []
    cuts: list[int] = []
    depth = 0
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "'\"`":
            j = i + 1
            while j < n:
                if text[j] == "\\" and c != "`" and language not in ("sql", "postgresql", "sqlite", "cql"):
                    j += 2
                    continue
                if text[j] == c:
                    if j + 1 < n and text[j + 1] == c:   # doubled quote inside a string
                        j += 2
                        continue
                    break
                j += 1
            if j >= n:
                out.append(c)
                return Scan("".join(out), depth, True, cuts)
            out.append(c + " " * (j - i - 1) + c)
            i = j + 1
            continue
        if c == "$" and language in ("sql", "postgresql", "cql"):
            m = re.match(r"\$([A-Za-z_]\w*)?\$", text[i:])
            if m and not (i and (text[i - 1].isalnum() or text[i - 1] == "_")):
                tag = m.group(0)
                end = text.find(tag, i + len(tag))
                if end < 0:
                    return Scan("".join(out), depth, True, cuts)
                out.append("''")
                i = end + len(tag)
                continue
        if "/*" in markers and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                return Scan("".join(out), depth, True, cuts)
            out.append(" ")
            i = end + 2
            continue
        if any(m != "/*" and text.startswith(m, i) for m in markers):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        out.append(c)
        i += 1
        if terminator and c == terminator:
            cuts.append(i)
    return Scan("".join(out), depth, False, cuts)


def is_complete(text: str, language: str, terminator: str | None) -> bool:
    """Whether Enter should run the buffer: a backslash command or quit word, a terminated
    statement (SQL, CQL, Cypher), balanced brackets (JSON-shaped languages), or any line (Redis)."""
    stripped = text.strip()
    if not stripped or stripped.startswith("\\") or stripped.lower() in ("quit", "exit", "help"):
        return _balanced(stripped, language) if stripped.startswith("\\") else True
    if language == "redis":
        return True
    found = scan(text, language, terminator)
    if found.open_quote:
        return False
    if terminator:
        return found.code.rstrip().endswith(terminator)
    return found.depth <= 0


def _balanced(text: str, language: str) -> bool:
    found = scan(text, "json", None)
    return not found.open_quote and found.depth <= 0


def split(text: str, language: str, terminator: str | None) -> list[str]:
    """The statements of a buffer or a file, in order. Backslash commands are one line each."""
    statements: list[str] = []
    pending: list[str] = []

    def flush():
        chunk = "\n".join(pending).strip()
        pending.clear()
        if chunk:
            statements.extend(_cut(chunk, language, terminator))

    for line in text.splitlines():
        if not pending and line.strip().startswith("\\"):
            pending.append(line)
            if _balanced("\n".join(pending), language):
                statements.append("\n".join(pending).strip())
                pending.clear()
            continue
        if pending and pending[0].lstrip().startswith("\\"):
            pending.append(line)
            if _balanced("\n".join(pending), language):
                statements.append("\n".join(pending).strip())
                pending.clear()
            continue
        pending.append(line)
        if language == "redis" or (not terminator and is_complete("\n".join(pending), language, terminator)):
            flush()
    if pending:
        flush()
    return statements


def _cut(chunk: str, language: str, terminator: str | None) -> list[str]:
    if not terminator:
        return [chunk]
    found = scan(chunk, language, terminator)
    parts, start = [], 0
    for cut in found.cuts:
        parts.append(chunk[start:cut])
        start = cut
    parts.append(chunk[start:])
    return [p.strip() for p in parts if p.strip() and p.strip() != terminator]


def split_terminated(text: str, language: str, terminator: str = ";") -> list[str]:
    """The statements of a script in a ';'-terminated language (what drivers run one by one):
    cut outside strings, quoted names, $$ blocks and comments; parts with no code are dropped."""
    parts = []
    for part in _cut(text.strip(), language, terminator):
        if part.endswith(terminator):
            part = part[: -len(terminator)].rstrip()
        if scan(part, language, None).code.strip():
            parts.append(part)
    return parts


# -- what a statement does ------------------------------------------------------------------

def _code(text: str, language: str) -> str:
    return scan(text, language, None).code


def _words(code: str) -> list[str]:
    return re.findall(r"[A-Za-z_][\w.]*", code.lower())


def destructive(text: str, language: str) -> str | None:
    """Why a statement needs confirmation (drops or empties data wholesale), or None."""
    code = _code(text, language).strip().rstrip(";").strip()
    words = _words(code)
    if not words:
        return None
    first = words[0]
    # MongoDB shell style: db.coll.deleteMany({}) / remove({}) / drop(), db.dropDatabase()
    m = re.match(r"db\.(?:getCollection\(\s*'\s*'\s*\)|[\w$-]+)\.(deleteMany|remove|drop)\s*\((.*)\)\s*$",
                 code, re.S)
    if m:
        args = re.sub(r"\s", "", _code(text, language).strip().rstrip(";"))
        if m.group(1) == "drop":
            return "it drops a collection"
        if re.search(r"\.(deleteMany|remove)\((\{\})?\)$", args):
            return "it deletes every document of the collection"
        return None
    if re.match(r"db\.dropDatabase\s*\(", code):
        return "it drops the database"
    if first in ("flushall", "flushdb"):
        return f"{first.upper()} deletes every key"
    if first in ("del", "unlink"):
        if any(ch in text for ch in "*?["):
            return "it deletes every key matching a pattern"
        return None
    if first == "drop":
        what = [w for w in words[1:] if w not in ("if", "exists")][:2]
        return "it drops " + (" ".join(what) or "an object")
    if first == "truncate":
        return "it deletes every row"
    if re.match(r"delete\s+/", code, re.I):   # CouchDB over HTTP: DELETE /db removes the database
        return "it deletes a whole database" if re.match(r"delete\s+/+[^/\s?]+/*(\?\S*)?$", code, re.I) else None
    if first in ("delete", "update") and "where" not in words:
        return f"{first.upper()} without WHERE changes every row"
    if re.search(r"\bdetach\s+delete\b", code, re.I) and "where" not in words:
        return "DETACH DELETE without WHERE deletes every matched node"
    return None


_SQL_READS = {"select", "with", "explain", "show", "describe", "desc", "values", "table", "pragma", "analyze"}
_REDIS_READS = {
    "get", "mget", "hget", "hmget", "hgetall", "hkeys", "hvals", "hlen", "hexists", "hscan", "keys", "scan",
    "type", "ttl", "pttl", "exists", "strlen", "getrange", "lrange", "llen", "lindex", "smembers",
    "sismember", "smismember", "scard", "sscan", "srandmember", "zrange", "zrangebyscore", "zrevrange",
    "zrevrangebyscore", "zscore", "zcard", "zrank", "zrevrank", "zcount", "zscan", "info", "ping", "dbsize",
    "json.get", "json.type", "json.objkeys", "json.arrlen", "json.strlen", "xrange", "xrevrange", "xlen",
    "echo", "time", "randomkey", "pfcount", "bitcount", "getbit", "lpos", "object", "memory", "dump",
    "ft.search", "ft.info", "ft._list", "ft.aggregate", "role", "lastsave", "cluster", "command",
}
_MONGO_READS = {"find", "findone", "aggregate", "count", "countdocuments", "estimateddocumentcount", "distinct",
                "getindexes", "stats", "explain", "listindexes"}


def writes(text: str, language: str) -> bool:
    """Whether a statement may change data, for a client-side read-only session.

    Errs on the side of refusing: only statements known to read pass.
    """
    code = _code(text, language).strip()
    words = _words(code)
    if not words:
        return False
    first = words[0]
    m = re.match(r"db\.(?:[\w$-]+\.)?(\w+)\s*\(", code)
    if m:
        return m.group(1).lower() not in _MONGO_READS and m.group(1).lower() not in ("getcollectionnames",
                                                                                      "listcollections")
    if re.match(r"(get|head|options)\s+/", code, re.I):
        return False
    if re.match(r"(put|post|delete|patch|copy)\s+/", code, re.I):
        return True
    if language == "cypher" or first in ("match", "optional", "unwind", "return", "call"):
        bad = {"create", "merge", "delete", "set", "remove", "drop", "detach", "load", "foreach"}
        return bool(bad & set(words)) or first == "call" and "db.create" in code.lower()
    if first in _REDIS_READS and language not in ("sql", "cql"):
        return False
    if first in _SQL_READS:
        if first == "pragma":
            return "=" in code
        return bool({"insert", "update", "delete", "merge"} & set(words)) and first == "with"
    return True


_UNLOCKS_SQL = re.compile(
    r"\bread\s+write\b"                                        # BEGIN/START TRANSACTION/SET ... READ WRITE
    r"|^\s*set\b.*\b(default_transaction_read_only|transaction_read_only|tx_read_only)\b"
    r"|^\s*set\s+session\s+characteristics\b"
    r"|^\s*reset\s+(all|default_transaction_read_only|transaction_read_only)\b"
    r"|^\s*discard\s+all\b"
    r"|^\s*pragma\s+(\w+\.)?query_only\b\s*[=(]"
    r"|^\s*set\s+session\s+authorization\b|^\s*reset\s+session\s+authorization\b",
    re.I | re.S)


def unlocks_readonly(text: str, language: str) -> bool:
    """Whether a statement would switch a server-side read-only session back to read-write
    (SQL: BEGIN READ WRITE, SET SESSION CHARACTERISTICS, PRAGMA query_only = off, RESET ALL, ...)."""
    if language not in ("sql", "postgresql", "mysql", "sqlite"):
        return False
    return _UNLOCKS_SQL.search(_code(text, language)) is not None


# -- backslash-command arguments -----------------------------------------------------------

def arguments(text: str) -> list[str]:
    """Split backslash-command arguments: a JSON object or array is one argument (spaces and
    double quotes kept), 'single' or "double" quotes group words, the rest splits on spaces."""
    args: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c in "{[":
            depth, j = 0, i
            while j < n:
                ch = text[j]
                if ch == '"':
                    j += 1
                    while j < n and text[j] != '"':
                        j += 2 if text[j] == "\\" else 1
                elif ch in "{[":
                    depth += 1
                elif ch in "}]":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j >= n:
                raise UsageError(f"unbalanced brackets in {text[i:]!r}")
            args.append(text[i:j + 1])
            i = j + 1
            continue
        if c in "'\"":
            end = text.find(c, i + 1)
            if end < 0:
                raise UsageError(f"unterminated quote in {text[i:]!r}")
            args.append(text[i + 1:end])
            i = end + 1
            continue
        j = i
        while j < n and not text[j].isspace():
            j += 1
        args.append(text[i:j])
        i = j
    return args


# -- $1-style arguments of the shell's named queries ------------------------------------------

_SKIPPED = {"--": r"--[^\n]*", "//": r"//[^\n]*", "/*": r"/\*.*?\*/"}


def _positional_pattern(language: str) -> re.Pattern:
    skipped = [r"'(?:[^'\\]|''|\\.)*'", r'"(?:[^"\\]|\\.)*"'] + [_SKIPPED[m] for m in comment_markers(language)]
    return re.compile(f"({'|'.join(skipped)})|\\$(\\d+)(?!\\w)", re.S)


def positional(text: str, language: str, values: list) -> tuple[str, dict]:
    """(text, params) for a named query's ``$1``, ``$2`` ... (not inside strings or comments), each
    value bound the backend's way: ``:p1`` (SQL, CQL, a whole Redis argument), ``$p1`` (Cypher); the
    JSON-shaped languages, which take no parameters, get the value's JSON text (in a CouchDB path,
    the value URL-quoted). Every $N needs its value and every value a $N."""
    import json
    from urllib.parse import quote

    used: set[int] = set()
    params: dict = {}
    first_line = len(text.split("\n", 1)[0])

    def replace(m: re.Match) -> str:
        if m.group(1) is not None:
            return m.group(1)
        n = int(m.group(2))
        if not 1 <= n <= len(values):
            raise UsageError(f"${n} has no value: {len(values)} argument{'s' if len(values) != 1 else ''} given")
        used.add(n)
        value = values[n - 1]
        if language in ("javascript", "js", "mongo", "mongodb"):
            return json.dumps(value, ensure_ascii=False)
        if language in ("http", "couchdb"):
            return quote(str(value), safe="") if m.start() < first_line else json.dumps(value, ensure_ascii=False)
        if language == "redis":
            start, end = m.start(), m.end()
            whole = (start == 0 or text[start - 1].isspace()) and (end == len(text) or text[end].isspace())
            if not whole:       # part of a word (users:$1): the value must be a plain word itself
                word = str(value)
                if not word or any(c.isspace() or c in "'\"" for c in word):
                    raise UsageError(f"${n} is part of a word, and its value {word!r} is not one plain word")
                return word
        params[f"p{n}"] = value
        return f"$p{n}" if language in ("cypher", "cyp") else f":p{n}"

    bound = _positional_pattern(language).sub(replace, text)
    extra = sorted(set(range(1, len(values) + 1)) - used)
    if extra:
        raise UsageError(f"too many arguments: the query has no ${extra[0]}")
    return bound, params
