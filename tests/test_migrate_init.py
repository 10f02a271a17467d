"""`dbsh migrate init` from an empty directory, then `revision -m first` and `upgrade head`, as the
README shows them, on SQLite, real PostgreSQL and MongoDB (SecantusDB); results checked with
sqlite3, psycopg and pymongo. Also: Alembic's stock env.py is refused with the fix named, and a
directory without a project says to run `dbsh migrate init`."""

import re
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.dbshtest import dbsh

ROOT = Path(__file__).resolve().parent.parent
NEXT = 'dbsh: next: dbsh migrate revision -m "what it does", then dbsh migrate upgrade head\n'
CREATE_TABLE = '''def upgrade() -> None:
    """Upgrade schema."""
    op.create_table("users", sa.Column("id", sa.Integer, primary_key=True), sa.Column("email", sa.String(80)))
'''


@pytest.fixture
def empty_dir(tmp_path, monkeypatch):
    work = tmp_path / "app"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def sql_flow(url: str, work: Path) -> str:
    """The README's SQL session; returns the revision id. Between revision and upgrade, the user
    writes the revision's upgrade() (here: a users table)."""
    run = dbsh("-u", url, "migrate", "init", "-f", "table")
    assert (run.code, run.out, run.err) == (0, "created alembic.ini\ncreated migrations/env.py\n"
                                               "created migrations/script.py.mako\ncreated migrations/versions/\n",
                                            NEXT)
    run = dbsh("-u", url, "migrate", "revision", "-m", "first", "-f", "table")
    assert run.code == 0, run.err
    match = re.fullmatch(r"created revision ([0-9a-f]{12}) \(first\): (.*)\n", run.out)
    assert match, run.out
    rev, path = match[1], Path(match[2])
    assert path == work / "migrations" / "versions" / f"{rev}_first.py" and path.is_file()
    text = path.read_text()
    path.write_text(text.replace('def upgrade() -> None:\n    """Upgrade schema."""\n    pass\n', CREATE_TABLE))
    run = dbsh("-u", url, "migrate", "upgrade", "head", "-f", "table")
    assert (run.code, run.out, run.err) == (0, f"upgrade base -> {rev}: first\n", "")
    return rev


def test_sqlite_from_an_empty_directory(empty_dir):
    url = f"sqlite:///{empty_dir / 'app.db'}"
    rev = sql_flow(url, empty_dir)
    with sqlite3.connect(empty_dir / "app.db") as conn:
        assert conn.execute("select version_num from alembic_version").fetchall() == [(rev,)]
        assert [r[1] for r in conn.execute("pragma table_info(users)")] == ["id", "email"]
    assert "sqlalchemy.url" not in (empty_dir / "alembic.ini").read_text()


def test_postgresql_from_an_empty_directory(empty_dir, postgres_url):
    import psycopg

    parts = urlsplit(postgres_url)
    name = f"init_{uuid.uuid4().hex[:10]}"
    admin = dict(host=parts.hostname, port=parts.port, user=parts.username, password=parts.password)
    with psycopg.connect(**admin, dbname=parts.path.lstrip("/"), autocommit=True) as conn:
        conn.execute(f"create database {name}")
    rev = sql_flow(urlunsplit(parts._replace(path="/" + name)), empty_dir)
    with psycopg.connect(**admin, dbname=name) as conn:
        assert conn.execute("select version_num from alembic_version").fetchall() == [(rev,)]
        assert conn.execute("select column_name from information_schema.columns where table_name = 'users' "
                            "order by ordinal_position").fetchall() == [("id",), ("email",)]


def test_mongodb_from_an_empty_directory(empty_dir, mongo_url):
    import pymongo

    db_name = f"init_{uuid.uuid4().hex[:10]}"
    url = urlunsplit(urlsplit(mongo_url)._replace(path="/" + db_name))
    run = dbsh("-u", url, "migrate", "init", "-f", "table")
    assert run.code == 0, run.err
    match = re.fullmatch(r"created migrations/nosql/mongo/\n"
                         r"created (migrations/nosql/mongo/([0-9a-f]{12})_sample\.py)\n", run.out)
    assert match and run.err == NEXT, (run.out, run.err)
    sample_path, sample = Path(match[1]), match[2]
    assert f"revision = {sample!r}\ndown_revision = None\n" in sample_path.read_text()
    run = dbsh("-u", url, "migrate", "revision", "-m", "first", "-f", "table")
    match = re.fullmatch(r"created revision ([0-9a-f]{12}) \(first\): (migrations/nosql/mongo/\1_first\.py)\n", run.out)
    assert run.code == 0 and match, (run.out, run.err)
    first = match[1]
    assert f"down_revision = {sample!r}" in Path(match[2]).read_text()
    run = dbsh("-u", url, "migrate", "upgrade", "head", "-f", "table")
    assert (run.code, run.out, run.err) == (0, f"upgrade {sample}: sample: changes nothing; shows what a revision "
                                               f"can do\nupgrade {first}: first\n", "")
    client = pymongo.MongoClient(mongo_url)
    try:
        records = {d["_id"]: d["state"] for d in client[db_name]["dbsh_migrations"].find({})}
    finally:
        client.close()
    assert records == {sample: "applied", first: "applied"}
    # init again: everything is kept, no second sample
    run = dbsh("-u", url, "migrate", "init", "-f", "table")
    assert (run.code, run.out) == (0, "kept migrations/nosql/mongo/\n")


def test_alembic_stock_env_py_is_refused_and_init_force_replaces_it(empty_dir):
    url = f"sqlite:///{empty_dir / 'app.db'}"
    proc = subprocess.run([sys.executable, "-m", "alembic", "init", "migrations"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert dbsh("-u", url, "migrate", "revision", "-m", "x").code == 0     # runs no env.py
    stock = (empty_dir / "migrations" / "env.py").read_text()
    refused = ("dbsh: error: migrations/env.py ignores the connection dbsh passes (it is Alembic's stock env.py, "
               "which connects to sqlalchemy.url in alembic.ini) (dbsh migrate init --force replaces it with "
               "dbsh's env.py)\n")
    for args in (["upgrade", "head"], ["upgrade", "head", "--sql"], ["downgrade", "base"], ["stamp", "head"]):
        run = dbsh("-u", url, "migrate", *args)
        assert (run.code, run.out, run.err) == (2, "", refused), args
    assert not (empty_dir / "app.db").exists() or not sqlite3.connect(empty_dir / "app.db").execute(
        "select name from sqlite_master where name = 'alembic_version'").fetchall()
    run = dbsh("-u", url, "migrate", "init", "-f", "table")
    assert run.code == 2 and run.out == ("kept alembic.ini\nkept migrations/env.py\nkept migrations/script.py.mako\n"
                                         "kept migrations/versions/\n")
    assert run.err == ("dbsh: error: kept migrations/env.py, which ignores the connection dbsh passes (Alembic's "
                       "stock env.py connects to sqlalchemy.url in alembic.ini) (dbsh migrate init --force "
                       "replaces it with dbsh's env.py)\n")
    assert (empty_dir / "migrations" / "env.py").read_text() == stock
    run = dbsh("-u", url, "migrate", "init", "--force", "-f", "table")
    assert run.code == 0 and "replaced migrations/env.py\n" in run.out
    run = dbsh("-u", url, "migrate", "upgrade", "head", "-f", "table")
    assert run.code == 0 and run.out.startswith("upgrade base -> ") and run.out.endswith(": x\n"), run.err


def test_no_project_says_run_migrate_init(empty_dir, mongo_url):
    url = f"sqlite:///{empty_dir / 'app.db'}"
    run = dbsh("-u", url, "migrate", "upgrade", "head")
    assert (run.code, run.err) == (2, "dbsh: error: no SQL migrations here: no alembic.ini or migrations/env.py in "
                                      "the current directory (run dbsh migrate init to make them, or use --dir "
                                      "PATH)\n")
    run = dbsh("-u", url, "migrate", "--dir", "db/migrations", "status")
    assert (run.code, run.err) == (2, "dbsh: error: db/migrations is not an Alembic migrations directory (no env.py) "
                                      "(run dbsh migrate init --dir db/migrations to make one)\n")
    mongo = urlunsplit(urlsplit(mongo_url)._replace(path=f"/init_{uuid.uuid4().hex[:10]}"))
    run = dbsh("-u", mongo, "migrate", "upgrade", "head")
    assert (run.code, run.err) == (2, "dbsh: error: no migrations directory migrations/nosql/mongo (run dbsh migrate "
                                      "init to make it, or use --dir PATH)\n")


def test_init_dir_elsewhere_for_dbsh_and_plain_alembic(empty_dir):
    url = f"sqlite:///{empty_dir / 'app.db'}"
    run = dbsh("-u", url, "migrate", "init", "--dir", "db/migrations", "-f", "table")
    assert (run.code, run.out) == (0, "created db/migrations/alembic.ini\ncreated db/migrations/env.py\n"
                                      "created db/migrations/script.py.mako\ncreated db/migrations/versions/\n")
    assert run.err == ('dbsh: next: dbsh migrate --dir db/migrations revision -m "what it does", then dbsh migrate '
                       '--dir db/migrations upgrade head\n')
    assert dbsh("-u", url, "migrate", "--dir", "db/migrations", "revision", "-m", "one", "--rev-id", "r1").code == 0
    proc = subprocess.run([sys.executable, "-m", "alembic", "-c", "db/migrations/alembic.ini", "-x", f"url={url}",
                           "upgrade", "head"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    with sqlite3.connect(empty_dir / "app.db") as conn:
        assert conn.execute("select version_num from alembic_version").fetchall() == [("r1",)]
    run = dbsh("-u", url, "migrate", "--dir", "db/migrations", "current", "-f", "table")
    assert (run.code, run.out) == (0, "r1 (head): one\n")


def test_the_templates_are_this_repository_s_reference_files():
    """migrate init writes the same env.py, script.py.mako and alembic.ini as this repository's own."""
    templates = ROOT / "dbsh" / "migrate" / "templates"
    assert (templates / "env.py").read_text() == (ROOT / "migrations" / "env.py").read_text()
    assert (templates / "script.py.mako").read_text() == (ROOT / "migrations" / "script.py.mako").read_text()
    assert (templates / "alembic.ini").read_text() == (ROOT / "alembic.ini").read_text()
