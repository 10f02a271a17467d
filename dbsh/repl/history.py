"""Persistent history, one file per connection in the user data dir, with passwords taken out."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from prompt_toolkit.history import FileHistory

from dbsh import config
from dbsh.errors import redact

_PASSWORD_PARAM = re.compile(r"(?i)\b(password|passwd|pwd)=([^&\s]+)")


def history_path(target) -> Path:
    """history/<profile or scheme>-<hash of the URL without password>."""
    key = target.profile or target.without_password()
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    label = re.sub(r"[^\w.-]+", "_", target.profile or target.scheme)[:40]
    return config.data_dir() / "history" / f"{label}-{digest}"


def clean(text: str, *secrets: str | None) -> str:
    """The line as it may be kept: URL passwords, password= parameters and known secrets hidden."""
    return _PASSWORD_PARAM.sub(lambda m: f"{m[1]}=***", redact(text, *secrets))


class RedactingHistory(FileHistory):
    """A FileHistory that never keeps a password, in memory or on disk."""

    def __init__(self, path: Path, secrets=()):
        path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(str(path))
        self.secrets = tuple(s for s in secrets if s)

    def append_string(self, string: str) -> None:
        super().append_string(clean(string, *self.secrets))
