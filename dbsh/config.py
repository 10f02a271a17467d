"""User configuration: saved connection profiles and settings in the user config dir (TOML)."""

from __future__ import annotations

import os
import tomllib
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


def save_profile(name: str, url: str, **extra: Any) -> Path:
    """Store a profile. The URL passed here must already be free of any password."""
    _check_name(name, "profile")
    data = load()
    data.setdefault("profiles", {})[name] = {"url": url, **{k: v for k, v in extra.items() if v is not None}}
    return _write(data)


NAMED = "named_queries"


def named_queries() -> dict[str, str]:
    """The shell's named queries ([named_queries] in config.toml: name = "query text")."""
    return {k: v for k, v in settings(NAMED).items() if isinstance(v, str)}


def save_named_query(name: str, text: str | None) -> Path:
    """Store a named query (None: delete it)."""
    _check_name(name, "query")
    data = load()
    table = data.setdefault(NAMED, {})
    if text is None:
        if name not in table:
            raise NotFound(f"no named query {name!r}", hint="\\n lists them")
        del table[name]
    else:
        table[name] = text
    return _write(data)


def _write(data: dict[str, Any]) -> Path:
    import tomli_w

    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:
        tomli_w.dump(data, f)
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return path
