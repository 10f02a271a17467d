"""config.toml: profiles saved by `connect --save` keep the user's comments and order; the README's
table of environment variables lists every one dbsh reads."""

import os
import re
import stat
from pathlib import Path

from tests.dbshtest import dbsh

ROOT = Path(__file__).resolve().parent.parent

USER_FILE = """\
# my dbsh settings
[repl]
keys = "vi"        # I like vi
row_limit = 50

# production: careful
[profiles.prod]
url = "postgresql://app@db.internal/shop"   # the primary
readonly = true

[profiles.old]
url = "sqlite:///old.db"
"""


def config_file(tmp_path) -> Path:
    return tmp_path / "conf" / "config.toml"


def test_save_keeps_comments_order_and_other_tables(sqlite_url, tmp_path, monkeypatch):
    path = config_file(tmp_path)
    path.parent.mkdir()
    path.write_text(USER_FILE)
    monkeypatch.setenv("DBSH_CONFIG", str(path))
    run = dbsh("connect", sqlite_url, "--save", "local")
    assert run.code == 0, run.err
    assert run.err == f"saved connection 'local' in {path}\n"
    assert path.read_text() == USER_FILE + f'\n[profiles.local]\nurl = "{sqlite_url}"\n'
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert dbsh("-c", "local", "insert", "t", '{"a": 1}', "--create").code == 0


def test_saving_a_profile_again_changes_it_in_place(sqlite_url, tmp_path, monkeypatch):
    path = config_file(tmp_path)
    path.parent.mkdir()
    path.write_text(USER_FILE)
    monkeypatch.setenv("DBSH_CONFIG", str(path))
    assert dbsh("connect", sqlite_url, "--save", "prod").code == 0     # no --readonly this time
    assert path.read_text() == USER_FILE.replace(
        'url = "postgresql://app@db.internal/shop"   # the primary\nreadonly = true\n',
        f'url = "{sqlite_url}"   # the primary\n')
    assert dbsh("connect", sqlite_url, "--save", "old", "--readonly").code == 0
    assert path.read_text().endswith(f'[profiles.old]\nurl = "{sqlite_url}"\nreadonly = true\n')


def test_first_save_writes_a_new_file(sqlite_url):
    run = dbsh("connect", sqlite_url, "--save", "local", "--readonly")
    assert run.code == 0, run.err
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "dbsh" / "config.toml"
    assert path.read_text() == f'[profiles.local]\nurl = "{sqlite_url}"\nreadonly = true\n'


def test_a_broken_file_is_not_overwritten(sqlite_url, tmp_path, monkeypatch):
    path = config_file(tmp_path)
    path.parent.mkdir()
    path.write_text("[profiles\nurl = 1\n")
    monkeypatch.setenv("DBSH_CONFIG", str(path))
    run = dbsh("connect", sqlite_url, "--save", "local")
    assert run.code == 2 and run.err.startswith(f"dbsh: error: cannot read {path}: ") and run.err.count("\n") == 1
    assert path.read_text() == "[profiles\nurl = 1\n"


def test_readme_documents_every_environment_variable():
    """Every variable the code reads (os.environ.get / getenv / os.environ[...]) is in the README's
    environment table."""
    read = set()
    for path in (ROOT / "dbsh").rglob("*.py"):
        text = path.read_text()
        read |= set(re.findall(r"""environ(?:\.get)?[\[(]\s*["']([A-Z_][A-Z0-9_]*)["']""", text))
        read |= set(re.findall(r"""getenv\(\s*["']([A-Z_][A-Z0-9_]*)["']""", text))
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Environment variables", 1)[1].split("\n## ", 1)[0]
    first_cells = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    documented = {name for cell in first_cells for name in re.findall(r"`([A-Z_][A-Z0-9_]*)`", cell)}
    assert read, "found no environment variables in the code"
    assert read <= documented, f"not in the README's table: {sorted(read - documented)}"
    assert "DBSH_CONFIG" in documented and "_DBSH_COMPLETE" in documented


def test_readme_paths_per_os_are_platformdirs_own(monkeypatch):
    """The README's table says where config.toml and the data live on Linux and macOS as platformdirs
    computes them (Windows: platformdirs asks Windows itself, which cannot be run here)."""
    from platformdirs.macos import MacOS
    from platformdirs.unix import Unix

    from dbsh import config

    table = (ROOT / "README.md").read_text().split("### Configuration files", 1)[1].split("###", 1)[0]
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", "/home/me")
    linux = Unix("dbsh", appauthor=False)
    assert (linux.user_config_dir, linux.user_data_dir) == ("/home/me/.config/dbsh", "/home/me/.local/share/dbsh")
    assert (str(config.config_dir()), str(config.data_dir())) == (linux.user_config_dir, linux.user_data_dir)
    assert "`~/.config/dbsh/`" in rows["Linux"] and "`~/.local/share/dbsh/`" in rows["Linux"]
    monkeypatch.setenv("HOME", "/Users/me")
    mac = MacOS("dbsh", appauthor=False)
    assert mac.user_config_dir == mac.user_data_dir == "/Users/me/Library/Application Support/dbsh"
    assert rows["macOS"].count("`~/Library/Application Support/dbsh/`") == 2
    assert rows["Windows"].count("`%LOCALAPPDATA%\\dbsh\\`") == 2
