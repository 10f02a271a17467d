"""User configuration: saved connection profiles and settings in the user config dir (TOML)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dbsh.errors import NotFound, UsageError

APP = "dbsh"


def config_dir() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP, appauthor=False))


def data_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP, appauthor=False))


def config_path() -> Path:
    return Path(os.environ.get("DBSH_CONFIG") or config_dir() / "config.toml")


def load() -> dict[str, Any]:
    path = config_path()
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"cannot read {path}: {e}") from None


def settings(section: str) -> dict[str, Any]:
    """A settings table such as [repl] (keys, row_limit, pager)."""
    value = load().get(section, {})
    return value if isinstance(value, dict) else {}


def profiles() -> dict[str, dict[str, Any]]:
    return {k: v for k, v in load().get("profiles", {}).items() if isinstance(v, dict)}


def profile(name: str) -> dict[str, Any]:
    found = profiles().get(name)
    if found is None:
        known = ", ".join(sorted(profiles())) or "none saved"
        raise NotFound(f"no saved connection named {name!r} (known: {known})",
                       hint="save one with: dbsh connect URL --save NAME")
    if "url" not in found:
        raise UsageError(f"profile {name!r} in {config_path()} has no url")
    return found


def _check_name(name: str, what: str) -> None:
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise UsageError(f"invalid {what} name {name!r}: use letters, digits, '-', '_' or '.'")


def _edit(change: Callable[[Any, Path], None]) -> Path:
    """Edit config.toml in place with tomlkit: the user's comments, order and other tables stay as they
    were. ``change(doc, path)`` edits the parsed document; the file is replaced atomically, mode 0600."""
    import tomlkit

    path = config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    try:
        doc = tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as e:
        raise UsageError(f"cannot read {path}: {e}", hint="fix the file, then save again") from None
    change(doc, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(tomlkit.dumps(doc), encoding="utf-8")
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return path


def _table(doc: Any, key: str, path: Path, *, super_table: bool = False) -> Any:
    import tomlkit

    found = doc.get(key)
    if found is None:
        found = tomlkit.table(is_super_table=super_table)
        doc[key] = found
    elif not isinstance(found, dict):
        raise UsageError(f"cannot save in {path}: {key!r} is not a table")
    return found


def save_profile(name: str, url: str, **extra: Any) -> Path:
    """Store a profile. The URL passed here must already be free of any password. A profile saved
    again keeps its place and its own comments."""
    import tomlkit

    _check_name(name, "profile")
    values = {"url": url, **{k: v for k, v in extra.items() if v is not None}}

    def change(doc: Any, path: Path) -> None:
        profiles = _table(doc, "profiles", path, super_table=True)
        entry = profiles.get(name)
        if isinstance(entry, dict):
            for key in [k for k in entry if k not in values]:
                del entry[key]
            for key, value in values.items():
                entry[key] = value
        else:
            entry = tomlkit.table()
            entry.update(values)
            profiles[name] = entry

    return _edit(change)


NAMED = "named_queries"


def named_queries() -> dict[str, str]:
    """The shell's named queries ([named_queries] in config.toml: name = "query text")."""
    return {k: v for k, v in settings(NAMED).items() if isinstance(v, str)}


def save_named_query(name: str, text: str | None) -> Path:
    """Store a named query (None: delete it)."""
    _check_name(name, "query")

    def change(doc: Any, path: Path) -> None:
        table = _table(doc, NAMED, path)
        if text is None:
            if name not in table:
                raise NotFound(f"no named query {name!r}", hint="\\n lists them")
            del table[name]
        else:
            table[name] = text

    return _edit(change)
