"""Reading the user's text (shared by the REPL, the CLI's read-only guard and the drivers): where a
statement ends, what it does (destructive? a write?), arguments.

One small scanner knows strings, quoted names and comments for each language, so a ';' or a
'{' inside a string never ends or opens anything.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field

from dbsh.errors import UsageError

# languages whose rules live in their backend's package (dbsh/drivers/<backend>/language.py): each module
# has writes(text), destructive(text), ONE_COMMAND_PER_LINE, KEYWORDS, complete(text, keys) and lexer()
PACKAGED = {"memcached": "dbsh.drivers.memcached.language"}


def rules(language: str):
    """The language module of a packaged language, or None."""
    name = PACKAGED.get(language)
    return importlib.import_module(name) if name else None


def one_per_line(language: str) -> bool:
    return language == "redis" or getattr(rules(language), "ONE_COMMAND_PER_LINE", False)


# comment markers per language family; Cypher has no '--' comment ((a)--(b) is a pattern)
_COMMENTS = {
    "sql": ("--", "/*"),
    "cql": ("--", "//", "/*"),
    "cypher": ("//", "/*"),
}


def comment_markers(language: str) -> tuple[str, ...]:
    return _COMMENTS.get(language, ("--", "/*") if language in ("postgresql", "mysql", "sqlite") else ())


SQL = ("sql", "postgresql", "mysql", "sqlite")
# statements whose body holds ';'-terminated statements between BEGIN and END
_ROUTINES = {"TRIGGER", "PROCEDURE", "FUNCTION", "EVENT", "PACKAGE"}
# END IF, END LOOP ... close blocks that open without a counted word
_UNCOUNTED_ENDS = {"IF", "LOOP", "WHILE", "REPEAT", "FOR"}
_DELIMITER = re.compile(r"delimiter[ \t]+(\S+)[ \t]*(?=\n|$)", re.I)
DIRECTIVE = "DELIMITER"


@dataclass
class Scan:
    """What a left-to-right scan found: code outside strings/comments, and the state at the end."""

    code: str             # the text with strings blanked ('' stays, contents become spaces) and comments removed
    depth: int            # open brackets ({[ minus closing ones
    open_quote: bool      # the text ends inside a string, quoted name or block comment
    cuts: list[int]       # offsets just after each terminator outside strings and comments
    # what made each cut: the terminator's text, or DIRECTIVE for a client-side `DELIMITER X` line
    ends: list[str] = field(default_factory=list)
    terminator: str | None = None    # the terminator in force at the end (DELIMITER changes it)
    pending: bool = False            # code after the last cut (an unfinished statement)
    # [start, end) offsets in the text of each run of code (what ``code`` keeps of it), for callers
    # that must edit the code and leave strings and comments alone (SQL parameters)
    spans: list[list[int]] = field(default_factory=list)


class _Blocks:
    """Where ';' ends nothing: inside the BEGIN ... END body of CREATE TRIGGER / PROCEDURE / FUNCTION /
    EVENT (SQLite triggers, MariaDB routines, PostgreSQL BEGIN ATOMIC) and MariaDB's BEGIN NOT ATOMIC,
    counting nested BEGIN and CASE against END (END IF, END LOOP ... close nothing counted); and inside
    CQL's BEGIN BATCH ... APPLY BATCH."""

    def __init__(self, language: str):
        self.language = language
        self.reset()

    def reset(self) -> None:
        self.head: list[str] = []      # the statement's first words
        self.routine = False
        self.depth = 0
        self.last = ""

    def word(self, word: str) -> None:
        w = word.upper()
        if len(self.head) < 8:
            self.head.append(w)
            if self.language == "cql":
                if self.head[0] == "BEGIN" and w == "BATCH" and len(self.head) <= 3:
                    self.depth = 1
            elif self.head[0] == "CREATE" and w in _ROUTINES:
                self.routine = True
            elif self.head == ["BEGIN", "NOT", "ATOMIC"]:
                self.routine, self.depth = True, 1
        if self.language == "cql":
            if self.last == "APPLY" and w == "BATCH":
                self.depth = 0
        elif self.routine:
            if w in ("BEGIN", "CASE") and not (w == "CASE" and self.last == "END"):
                self.depth += 1
            elif self.last == "END" and w in _UNCOUNTED_ENDS:
                self.depth += 1       # the END before it was not a counted one
            if w == "END":
                self.depth -= 1
        self.last = w

    @property
    def open(self) -> bool:
        return self.depth > 0


def scan(text: str, language: str = "sql", terminator: str | None = ";") -> Scan:
    markers = comment_markers(language)
    out: list[str] = []
    cuts: list[int] = []
    ends: list[str] = []
    spans: list[list[int]] = []
    depth = 0
    blocks = _Blocks(language)
    pending = False             # code since the last cut
    directives = terminator is not None and language in SQL

    def cut(at: int, how: str) -> None:
        nonlocal pending
        cuts.append(at)
        ends.append(how)
        blocks.reset()
        pending = False

    def result(open_quote: bool) -> Scan:
        return Scan("".join(out), depth, open_quote, cuts, ends, terminator, pending or open_quote, spans)

    def code(start: int, end: int) -> None:
        """text[start:end] is code, kept as it is in ``out``."""
        if spans and spans[-1][1] == start:
            spans[-1][1] = end
        else:
            spans.append([start, end])

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
            pending = True
            if j >= n:
                out.append(c)
                return result(True)
            out.append(c + " " * (j - i - 1) + c)
            i = j + 1
            continue
        if terminator and terminator != ";" and text.startswith(terminator, i):
            out.append(terminator)           # a DELIMITER-set terminator ends a statement whatever is open
            code(i, i + len(terminator))
            i += len(terminator)
            cut(i, terminator)
            continue
        if c == "$" and language in ("sql", "postgresql", "cql"):
            m = re.match(r"\$([A-Za-z_]\w*)?\$", text[i:])
            if m and not (i and (text[i - 1].isalnum() or text[i - 1] == "_")):
                tag = m.group(0)
                end = text.find(tag, i + len(tag))
                pending = True
                if end < 0:
                    return result(True)
                out.append("''")
                i = end + len(tag)
                continue
        if "/*" in markers and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                return result(True)
            out.append(" ")
            i = end + 2
            continue
        if any(m != "/*" and text.startswith(m, i) for m in markers):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if c.isalpha() or c == "_":
            m = re.compile(r"[A-Za-z_]\w*").match(text, i)
            word = m.group(0) if m else c
            if i and (text[i - 1].isalnum() or text[i - 1] in "_$"):
                out.append(word)             # the rest of a word (a1b, x$y): not a keyword
                code(i, i + len(word))
                i += len(word)
                continue
            if directives and not pending and word.lower() == "delimiter" \
                    and text[text.rfind("\n", 0, i) + 1:i].strip() == "":
                d = _DELIMITER.match(text, i)
                if d:                        # DELIMITER // (mysql's client-side directive): a line of its own
                    out.append(d.group(0))
                    code(i, d.end())
                    i = d.end()
                    terminator = d.group(1)
                    cut(i, DIRECTIVE)
                    continue
            out.append(word)
            code(i, i + len(word))
            pending = True
            i += len(word)
            if terminator == ";":
                blocks.word(word)
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        out.append(c)
        code(i, i + 1)
        i += 1
        if terminator == ";" and c == ";" and not blocks.open:
            cut(i, terminator)
        elif not c.isspace():
            pending = True
    return result(False)


def delimiter(statement: str) -> str | None:
    """The new terminator of a `DELIMITER X` directive line, or None for any other statement."""
    m = _DELIMITER.fullmatch(statement.strip())
    return m.group(1) if m else None


def is_complete(text: str, language: str, terminator: str | None) -> bool:
    """Whether Enter should run the buffer: a backslash command or quit word, a terminated
    statement (SQL, CQL, Cypher), balanced brackets (JSON-shaped languages), or any line (Redis)."""
    stripped = text.strip()
    if not stripped or stripped.startswith("\\") or stripped.lower() in ("quit", "exit", "help"):
        return _balanced(stripped, language) if stripped.startswith("\\") else True
    if one_per_line(language):
        return True
    found = scan(text, language, terminator)
    if found.open_quote:
        return False
    if terminator:
        return bool(found.cuts) and not found.pending
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
        if one_per_line(language) or (not terminator and is_complete("\n".join(pending), language, terminator)):
            flush()
    if pending:
        flush()
    return statements


def _pieces(chunk: str, language: str, terminator: str) -> list[tuple[str, str]]:
    """(statement, what ended it) for each statement of a chunk; the last one may have no end ("")."""
    found = scan(chunk, language, terminator)
    pieces, start = [], 0
    for cut, end in zip(found.cuts, found.ends):
        pieces.append((chunk[start:cut].strip(), end))
        start = cut
    pieces.append((chunk[start:].strip(), ""))
    return [(text, end) for text, end in pieces if text and text != end]


def _cut(chunk: str, language: str, terminator: str | None) -> list[str]:
    """The statements of a chunk: each keeps its ';' (drivers strip it), loses a DELIMITER-set
    terminator (the server would not understand it); a DELIMITER directive is a statement of its
    own, for the shell to follow."""
    if not terminator:
        return [chunk]
    parts = []
    for text, end in _pieces(chunk, language, terminator):
        if end not in ("", ";", DIRECTIVE):
            text = text[: -len(end)].rstrip()
        if text:
            parts.append(text)
    return parts


def split_terminated(text: str, language: str, terminator: str = ";") -> list[str]:
    """The statements of a script in a ';'-terminated language (what drivers run one by one):
    cut outside strings, quoted names, $$ blocks, comments and BEGIN ... END bodies of triggers and
    routines, following DELIMITER directives (which are dropped); parts with no code are dropped."""
    parts = []
    for part, end in _pieces(text.strip(), language, terminator):
        if end == DIRECTIVE:
            continue
        if end:
            part = part[: -len(end)].rstrip()
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
    if (packaged := rules(language)) is not None:
        return packaged.destructive(text)
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
_AGGREGATE_WRITES = re.compile(r"\$(?:out|merge)\b|\\u0024", re.I)   # (the stage names, or one escaped)
_MONGO_READS = {"find", "findone", "aggregate", "count", "countdocuments", "estimateddocumentcount", "distinct",
                "getindexes", "stats", "explain", "listindexes"}


def writes(text: str, language: str) -> bool:
    """Whether a statement may change data, for a client-side read-only session.

    Errs on the side of refusing: only statements known to read pass.
    """
    if (packaged := rules(language)) is not None:
        return packaged.writes(text)
    code = _code(text, language).strip()
    words = _words(code)
    if not words:
        return False
    first = words[0]
    m = re.match(r"db\.(?:[\w$-]+\.)?(\w+)\s*\(", code)
    if m:
        if m.group(1).lower() == "aggregate" and _AGGREGATE_WRITES.search(text):
            return True   # a $out or $merge stage writes a collection
        return m.group(1).lower() not in _MONGO_READS and m.group(1).lower() not in ("getcollectionnames",
                                                                                      "listcollections")
    if re.match(r"(get|head|options)\s+/", code, re.I):
        return False
    if re.match(r"(put|post|delete|patch|copy)\s+/", code, re.I):
        return True
    if language == "cypher" or first in ("match", "optional", "unwind", "return", "call"):
        bad = {"create", "merge", "delete", "set", "remove", "drop", "detach", "load", "foreach"}
        return bool(bad & set(words)) or (first == "call" and "db.create" in code.lower())
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
