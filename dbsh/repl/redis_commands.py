"""The Redis command table for completion and argument hints: the server's own (COMMAND DOCS, Redis 7+,
fetched by the catalog in the background), or the table shipped with dbsh (redis_commands.json, the
same structure, written from Redis 7.0's COMMAND DOCS by ``python -m dbsh.repl.redis_commands URL``).

A command's entry: {"summary", "group", "arguments": [...]} with COMMAND DOCS' argument records
(name, type, token, flags optional/multiple, nested arguments of oneof and block); subcommands
(CONFIG GET, CLIENT LIST ...) are entries named "CONFIG GET".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

SHIPPED = Path(__file__).with_name("redis_commands.json")


@dataclass(frozen=True)
class Command:
    name: str                  # "HGET", "CONFIG GET"
    summary: str
    group: str
    syntax: str                # "key field"
    keys: tuple[int, ...]      # argument positions (0 = first after the name) that are key names
    keys_from: int | None      # every position from here on is a key name (DEL key [key ...])

    def is_key(self, position: int) -> bool:
        return position in self.keys or (self.keys_from is not None and position >= self.keys_from)


def decoded(value: Any) -> Any:
    """A raw RESP2/RESP3 COMMAND DOCS reply as plain str/list/dict (RESP2 maps are flat lists)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {decoded(k): decoded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [decoded(v) for v in value]
    return value


def _as_map(value: Any) -> dict:
    if isinstance(value, dict):
        return value
    if isinstance(value, list) and len(value) % 2 == 0:
        return dict(zip(value[::2], value[1::2]))
    return {}


def docs_table(reply: Any) -> dict[str, dict]:
    """{"HGET": {"summary", "group", "arguments"}, "CONFIG GET": ...} from a COMMAND DOCS reply."""
    table: dict[str, dict] = {}

    def arguments(raw) -> list[dict]:
        found = []
        for arg in raw or []:
            arg = _as_map(arg)
            entry = {k: arg[k] for k in ("name", "type", "token") if k in arg}
            flags = [f for f in arg.get("flags") or [] if f in ("optional", "multiple")]
            if flags:
                entry["flags"] = flags
            if arg.get("arguments"):
                entry["arguments"] = arguments(arg["arguments"])
            found.append(entry)
        return found

    def add(name: str, doc) -> None:
        doc = _as_map(doc)
        table[name.upper()] = {"summary": doc.get("summary", ""), "group": doc.get("group", ""),
                               "arguments": arguments(doc.get("arguments"))}
        for sub, subdoc in _as_map(doc.get("subcommands")).items():
            add(sub.replace("|", " "), subdoc)

    for name, doc in _as_map(decoded(reply)).items():
        add(name, doc)
    return table


def _syntax(arg: dict) -> str:
    kind = arg.get("type")
    if kind == "pure-token":
        text = arg.get("token", arg.get("name", ""))
    elif kind == "oneof":
        text = "|".join(_syntax({**a, "flags": []}) for a in arg.get("arguments", []))
    elif kind == "block":
        text = " ".join(_syntax(a) for a in arg.get("arguments", []))
    else:
        text = arg.get("name", "")
        if arg.get("token"):
            text = f"{arg['token']} {text}"
    flags = arg.get("flags") or []
    if "multiple" in flags:
        text = f"{text} [{text} ...]"
    if "optional" in flags:
        text = f"[{text}]"
    return text


def command(name: str, doc: dict) -> Command:
    args = doc.get("arguments") or []
    keys: list[int] = []
    keys_from = None
    for position, arg in enumerate(args):
        flags = arg.get("flags") or []
        if arg.get("token") or arg.get("type") in ("oneof", "block", "pure-token"):
            break                       # positions after an optional part are not known
        if arg.get("type") == "key":
            if "multiple" in flags:
                keys_from = position
                break
            keys.append(position)
        if "optional" in flags or "multiple" in flags:
            break
    return Command(name, doc.get("summary", ""), doc.get("group", ""), " ".join(_syntax(a) for a in args),
                   tuple(keys), keys_from)


@cache
def shipped() -> dict[str, dict]:
    with SHIPPED.open(encoding="utf-8") as f:
        return json.load(f)


def table(server: dict[str, dict] | None = None) -> dict[str, Command]:
    """The commands by upper-case name: the server's when it answered COMMAND DOCS, else the shipped ones."""
    if not server:
        return _shipped_table()
    return {name: command(name, doc) for name, doc in server.items()}


@cache
def _shipped_table() -> dict[str, Command]:
    return {name: command(name, doc) for name, doc in shipped().items()}


def main(argv: list[str] | None = None) -> None:   # pragma: no cover - a maintainer's tool
    """Write redis_commands.json from a server's COMMAND DOCS: python -m dbsh.repl.redis_commands URL."""
    import sys

    import redis

    url = (argv or sys.argv[1:])[0]
    client = redis.Redis.from_url(url)
    conn = client.connection_pool.get_connection()
    try:
        conn.send_command("COMMAND", "DOCS")
        reply = conn.read_response()
    finally:
        client.connection_pool.release(conn)
    SHIPPED.write_text(json.dumps(docs_table(reply), sort_keys=True, separators=(",", ":")) + "\n",
                       encoding="utf-8")


if __name__ == "__main__":   # pragma: no cover
    main()
