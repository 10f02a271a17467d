"""Completion: backslash commands and their arguments, the language's words, and the live schema
from the catalog (dbsh/repl/catalog.py), read without waiting; until the catalog has arrived the
completer offers keywords and commands only."""

from __future__ import annotations

import re
from typing import Iterable

from prompt_toolkit.completion import Completer, Completion, PathCompleter
from prompt_toolkit.document import Document

from dbsh.repl import lexers
from dbsh.repl.catalog import Snapshot
from dbsh.statements import rules


_WORD = re.compile(r"([\w$:]*)$")
_DOTTED = re.compile(r"([\w$]+(?:\.[\w$]+)*)\.([\w$]*)$")
_TABLE_CONTEXT = re.compile(r"\b(from|join|into|update|table|describe|truncate)\s+[\w$]*$", re.I)
_CYPHER_LABEL = re.compile(r"[(:]\s*[\w$]*:([\w$]*)$")


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
        yield from self._native(text, complete_event.completion_requested if complete_event else True)

    # -- backslash commands ----------------------------------------------------------------
    def _meta(self, text: str) -> Iterable[Completion]:
        from dbsh.repl.meta import COMMANDS, lookup

        if " " not in text:
            for name, cmd in COMMANDS.items():
                for spelling in (name, *cmd.aliases):
                    if spelling.startswith(text):
                        yield Completion(spelling, -len(text), display_meta=cmd.help)
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
            yield from self.paths.get_completions(Document(partial), None)
        elif kind == "profile":
            from dbsh import config

            try:
                yield from _matching(sorted(config.profiles()), partial, "saved connection")
            except Exception:  # noqa: BLE001 - a broken config file must not break typing
                return
        elif kind:
            yield from _matching(kind.split("|"), partial, "")

    def _fields_for(self, collection: str, partial: str) -> Iterable[Completion]:
        partial = partial.lstrip('{"[,')
        yield from _matching(self.snapshot.fields.get(collection, []), partial, "field")

    # -- native language -------------------------------------------------------------------
    def _native(self, text: str, requested: bool) -> Iterable[Completion]:
        snap = self.snapshot
        language = self.shell.language
        if (packaged := rules(language)) is not None:   # a packaged language completes itself
            for word, start, meta in packaged.complete(text, snap.keys):
                yield Completion(word, start, display_meta=meta or None)
            return
        keywords, functions = lexers.words(language)
        dotted = _DOTTED.search(text)
        if dotted:
            owner, partial = dotted.group(1), dotted.group(2)
            if owner == "db" and language in lexers.MONGO:
                yield from _matching(snap.collections, partial, "collection")
                yield from _matching(lexers.MONGO_DB, partial, "method")
                return
            if owner.startswith("db.") and language in lexers.MONGO:
                yield from _matching(functions, partial, "method")
                return
            name = owner.split(".")[-1]
            if name in snap.fields:
                yield from _matching(snap.fields[name], partial, "field")
                return
        label = _CYPHER_LABEL.search(text)
        if label and language in ("cypher", "cyp"):
            yield from _matching(snap.collections, label.group(1), "label")
            return
        partial = _WORD.search(text).group(1)
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


def _matching(candidates: Iterable[str], partial: str, meta: str) -> Iterable[Completion]:
    low = partial.lower()
    for c in candidates:
        if c.lower().startswith(low):
            yield Completion(c, -len(partial), display_meta=meta or None)
