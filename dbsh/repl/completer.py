"""Completion: backslash commands and their arguments, the language's words, and the live schema
from the catalog (dbsh/repl/catalog.py), read without waiting; until the catalog has arrived the
completer offers keywords and commands only."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import cast

from prompt_toolkit.completion import CompleteEvent, Completer, Completion, PathCompleter
from prompt_toolkit.document import Document

from dbsh.repl import lexers
from dbsh.repl.catalog import Snapshot
from dbsh.statements import rules

_WORD = re.compile(r"([\w$:]*)$")
_DOTTED = re.compile(r"([\w$]+(?:\.[\w$]+)*)\.([\w$]*)$")
_TABLE_CONTEXT = re.compile(r"\b(from|join|into|update|table|describe|truncate)\s+[\w$]*$", re.I)
_CYPHER_LABEL = re.compile(r"[(:]\s*[\w$]*:([\w$]*)$")
_CYPHER_TYPE = re.compile(r"\[\s*[\w$]*\s*:\s*([\w$]*)$")          # -[r:KNOWS or [:KNOWS
_CYPHER_BOUND = re.compile(r"\(\s*([A-Za-z_][\w$]*)\s*:\s*([\w$]+)")     # (n:Person
# a table after FROM, JOIN, UPDATE, INTO or a comma, and its alias: people p, people AS p
_TABLE_REF = re.compile(r"(?:\b(?:from|join|update|into)\s+|,\s*)([\w$]+(?:\.[\w$]+)?)"
                        r"(?:\s+(?:as\s+)?([A-Za-z_][\w$]*))?", re.I)
_JOIN_ON = re.compile(r"\bjoin\s+([\w$.]+)(?:\s+(?:as\s+)?([A-Za-z_][\w$]*))?\s+on\s+([\w$.]*)$", re.I)
_JOIN = re.compile(r"\bjoin\s+([\w$]*)$", re.I)
_NOT_ALIAS = {"where", "join", "inner", "left", "right", "full", "cross", "natural", "on", "using", "group",
              "order", "limit", "having", "union", "set", "values", "select", "returning", "offset", "outer",
              "window", "for", "lateral", "default", "as", "and", "or", "except", "intersect", "fetch"}


def table_refs(sql: str, collections: list[str]) -> dict[str, str]:
    """Aliases and names of the known tables a SQL statement reads: {"p": "people", "people": "people"}."""
    known = {c.lower(): c for c in collections}
    refs: dict[str, str] = {}
    for m in _TABLE_REF.finditer(sql):
        table = known.get(m.group(1).lower()) or known.get(m.group(1).rsplit(".", 1)[-1].lower())
        if table is None:
            continue
        refs.setdefault(table.lower(), table)
        alias = m.group(2)
        if alias and alias.lower() not in _NOT_ALIAS:
            refs[alias.lower()] = table
    return refs


class ShellCompleter(Completer):
    """Backslash commands and their arguments, then the language's words and the live schema."""

    def __init__(self, shell):
        self.shell = shell
        self.paths = PathCompleter(expanduser=True)

    # what the shell knows right now; never blocks
    @property
    def snapshot(self) -> Snapshot:
        return self.shell.catalog.snapshot

    def get_completions(self, document: Document, complete_event) -> Iterable[Completion]:
        text = document.text_before_cursor
        if text.lstrip().startswith("\\"):
            yield from self._meta(text.lstrip())
            return
        requested = complete_event.completion_requested if complete_event else True
        if not requested and not text.strip():
            return   # an empty prompt (a new one, after Ctrl-C) opens no menu until Tab asks for one
        if self.shell.language == "redis":
            yield from self._redis(text, requested)
            return
        yield from self._native(text, requested, document.text)

    # -- backslash commands ----------------------------------------------------------------
    def _meta(self, text: str) -> Iterable[Completion]:
        from dbsh.repl.meta import COMMANDS, lookup

        if " " not in text:
            for name, command in COMMANDS.items():
                for spelling in (name, *command.aliases):
                    if spelling.startswith(text):
                        yield Completion(spelling, -len(text), display_meta=command.help)
            return
        name, rest = text.split(" ", 1)
        cmd = lookup(name)
        if cmd is None:
            return
        words = rest.split(" ")
        partial = words[-1]
        position = len([w for w in words[:-1] if w])     # which argument is being typed
        # a JSON filter may hold spaces: every later word still belongs to it
        kind = cmd.args[position] if position < len(cmd.args) else (
            "filter" if cmd.args[-1:] == ("filter",) else None)
        if kind == "collection":
            yield from _matching(self.snapshot.collections, partial, "collection")
        elif kind == "filter":
            yield from self._fields_for(words[0] if position else "", partial)
        elif kind == "file":
            yield from self.paths.get_completions(Document(partial), CompleteEvent())
        elif kind == "profile":
            from dbsh import config

            try:
                yield from _matching(sorted(config.profiles()), partial, "saved connection")
            except Exception:  # noqa: BLE001 - a broken config file must not break typing
                return
        elif kind == "named":
            from dbsh import config

            try:
                yield from _matching(sorted(config.named_queries()), partial, "named query")
            except Exception:  # noqa: BLE001 - a broken config file must not break typing
                return
        elif kind:
            yield from _matching(kind.split("|"), partial, "")

    def _fields_for(self, collection: str, partial: str) -> Iterable[Completion]:
        partial = partial.lstrip('{"[,')
        yield from _matching(self.snapshot.fields.get(collection, []), partial, "field")

    # -- native language -------------------------------------------------------------------
    def _native(self, text: str, requested: bool, whole: str = "") -> Iterable[Completion]:
        snap = self.snapshot
        language = self.shell.language
        if (packaged := rules(language)) is not None:   # a packaged language completes itself
            for word, start, meta in packaged.complete(text, snap.keys):
                yield Completion(word, start, display_meta=meta or None)
            return
        keywords, functions = lexers.words(language)
        sql = language in ("sql", "cql")
        cypher = language in ("cypher", "cyp")
        dotted = _DOTTED.search(text)
        if dotted:
            owner, partial = dotted.group(1), dotted.group(2)
            if owner == "db" and language in lexers.MONGO:
                yield from _matching(snap.collections, partial, "collection")
                yield from _matching(lexers.MONGO_DB, partial, "method")
                return
            if owner.startswith("db.") and owner.count(".") == 1 and language in lexers.MONGO:
                yield from _matching(functions, partial, "method")
                return
            if language in lexers.MONGO:       # {specs.  a path inside documents: its sub-fields
                yield from self._subfields(text, owner, partial)
                return
            name = owner.split(".")[-1]
            if sql:
                name = table_refs(whole or text, snap.collections).get(name.lower(), name)
            elif cypher:
                bound = dict(_CYPHER_BOUND.findall(whole or text))
                if name in bound and snap.fields.get(bound[name]):
                    name = bound[name]
                elif name not in snap.fields:
                    every = sorted({f for fs in snap.fields.values() for f in fs}
                                   | set(snap.vocabulary.get("properties", [])))
                    yield from _matching(every, partial, "property")
                    return
            if name in snap.fields:
                yield from _matching(snap.fields[name], partial, f"field of {name}")
                return
        if cypher:
            label = _CYPHER_LABEL.search(text)
            kind = _CYPHER_TYPE.search(text)
            if kind:
                yield from _matching(snap.vocabulary.get("relationships", []), kind.group(1), "relationship type")
                return
            if label:
                yield from _matching(snap.collections, label.group(1), "label")
                return
        partial = cast(re.Match[str], _WORD.search(text)).group(1)   # (it matches the empty string too)
        if sql:
            on = _JOIN_ON.search(text)
            if on:
                yield from self._join_conditions(text[:on.start()], on.group(1), on.group(2), on.group(3))
                return
            join = _JOIN.search(text)
            if join:
                related = self._related(text[:join.start()])
                yield from _matching(related, partial, "related table")
                yield from _matching([c for c in snap.collections if c not in related], partial, "collection")
                return
        if _TABLE_CONTEXT.search(text):
            yield from _matching(snap.collections, partial, "collection")
            return
        if not partial and not requested:
            return      # while typing, offer words only once a word is started (Tab offers them all)
        mentioned = [c for c in snap.collections if re.search(rf"\b{re.escape(c)}\b", text)]
        seen: set[str] = set()
        for c in mentioned:
            for f in _matching(snap.fields.get(c, []), partial, f"field of {c}"):
                if f.text not in seen:
                    seen.add(f.text)
                    yield f
        if text[:len(text) - len(partial)].endswith(('"', "'")):
            if not mentioned:      # inside a quoted key or name: only field names make sense
                yield from _matching(sorted({f for fs in snap.fields.values() for f in fs}), partial, "field")
            return
        upper = partial[:1].isupper() or not partial
        yield from _matching([k if upper else k.lower() for k in keywords], partial, "keyword")
        yield from _matching(functions, partial, "function")
        yield from _matching(snap.collections, partial, "collection")
        if not mentioned:
            every = sorted({f for fs in snap.fields.values() for f in fs})
            yield from _matching(every, partial, "field")


    # -- SQL joins --------------------------------------------------------------------------------
    def _links(self, a: str, b: str) -> list[tuple[list[str], list[str]]]:
        """(columns of a, columns of b) pairs that a foreign key joins, either way."""
        refs = self.snapshot.references
        found = [(fk["columns"], fk["referred"]) for fk in refs.get(a, []) if fk["table"] == b]
        found += [(fk["referred"], fk["columns"]) for fk in refs.get(b, []) if fk["table"] == a]
        return found

    def _related(self, before: str) -> list[str]:
        """Tables a foreign key links to a table already in the statement."""
        snap = self.snapshot
        scope = set(table_refs(before, snap.collections).values())
        return [c for c in snap.collections if any(self._links(c, t) for t in scope)]

    def _join_conditions(self, before: str, joined: str, alias: str | None, partial: str) -> Iterable[Completion]:
        """After JOIN x ON: the conditions foreign keys give between x and each table before it."""
        snap = self.snapshot
        known = {c.lower(): c for c in snap.collections}
        table = known.get(joined.lower())
        if table is None:
            return
        mine = alias if alias and alias.lower() not in _NOT_ALIAS else joined
        scope: dict[str, str] = {}        # each table before the JOIN, by the name the statement uses
        for m in _TABLE_REF.finditer(before):
            other = known.get(m.group(1).lower())
            if other is not None:
                named = m.group(2) if m.group(2) and m.group(2).lower() not in _NOT_ALIAS else m.group(1)
                scope.setdefault(other, named)
        conditions = []
        for other, name in scope.items():
            for left, right in self._links(table, other):
                conditions.append(" AND ".join(f"{mine}.{a} = {name}.{b}" for a, b in zip(left, right)))
        yield from _matching(conditions, partial, "join")

    # -- MongoDB paths ------------------------------------------------------------------------------
    def _subfields(self, text: str, owner: str, partial: str) -> Iterable[Completion]:
        """{specs.  ->  the fields under specs (of the collection the statement names, else of all)."""
        snap = self.snapshot
        m = re.search(r"\bdb\.([\w$-]+)\.", text)
        fields = snap.fields.get(m.group(1), []) if m else sorted({f for fs in snap.fields.values() for f in fs})
        head = owner + "."
        rests = list(dict.fromkeys(f[len(head):] for f in fields if f.startswith(head)))
        yield from _matching(rests, partial, f"field of {owner}")

    # -- Redis ----------------------------------------------------------------------------------------
    def _redis(self, text: str, requested: bool) -> Iterable[Completion]:
        from dbsh.repl import redis_commands

        commands = self.snapshot.commands or redis_commands.table()
        words = text.split()
        partial = "" if not words or text[-1:].isspace() else words[-1]
        done = words if not partial else words[:-1]
        upper = not partial or partial[:1].isupper()
        if not done:
            if not partial and not requested:
                return
            names = sorted(n for n in commands if " " not in n)
            for name in names:
                if name.startswith(partial.upper()):
                    shown = name if upper else name.lower()
                    yield Completion(shown, -len(partial), display_meta=commands[name].summary)
            return
        first = done[0].upper()
        two = f"{first} {done[1].upper()}" if len(done) > 1 else None
        if two is not None and two in commands:
            command, position = commands[two], len(done) - 2
        elif first in commands:
            command, position = commands[first], len(done) - 1
            subs = sorted(n.split(" ", 1)[1] for n in commands if n.startswith(first + " "))
            if subs and position == 0:
                for sub in subs:
                    if sub.startswith(partial.upper()):
                        shown = sub if upper else sub.lower()
                        yield Completion(shown, -len(partial), display_meta=commands[f"{first} {sub}"].summary)
                return
        else:
            return
        if command.is_key(position):
            prefixes = [p + ":" for p in self.snapshot.collections]
            yield from _matching([p for p in prefixes if p.startswith(partial)], partial, "key prefix")
            yield from _matching(self.shell.catalog.key_names(partial), partial, "key")
        elif partial or requested:
            tokens = sorted(set(re.findall(r"\b[A-Z][A-Z_-]+\b", command.syntax)))
            yield from _matching(tokens if upper else [t.lower() for t in tokens], partial, "option")


def argument_hint(shell, text: str) -> str | None:
    """`HGET key field: Get the value of a hash field` for a Redis command being typed."""
    from dbsh.repl import redis_commands

    if shell.language != "redis":
        return None
    words = text.split()
    if not words or (len(words) == 1 and not text[-1:].isspace()):
        return None
    commands = shell.catalog.snapshot.commands or redis_commands.table()
    two = " ".join(words[:2]).upper()
    command = commands.get(two) if len(words) > 1 else None
    command = command or commands.get(words[0].upper())
    if command is None:
        return None
    return f"{command.name} {command.syntax}: {command.summary}".strip()


def _matching(candidates: Iterable[str], partial: str, meta: str) -> Iterable[Completion]:
    low = partial.lower()
    for c in candidates:
        if c.lower().startswith(low):
            yield Completion(c, -len(partial), display_meta=meta or None)
