"""--resume with no checkpoint: on a destination that already has rows it refuses (exit 2, one line saying
what to do) instead of adding every row again; on an empty one it starts at the beginning. Every backend,
checked with its own client."""

from __future__ import annotations

import json

import pytest

from tests.dbshtest import dbsh
from tests.test_copy import NOSQL, SQL, backend, fresh

ROWS = [{"id": i, "name": f"n{i}"} for i in range(1, 4)]


@pytest.mark.parametrize("kind", SQL + NOSQL)
def test_resume_without_a_checkpoint_refuses_a_destination_with_rows(request, tmp_path, kind):
    store = backend(request, kind)
    collection = fresh("Res" if kind == "neo4j" else "res")
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    args = [json.dumps(r) for r in ROWS]   # rows that came without a checkpoint (not from this import)
    run = dbsh("-u", store.url, "insert", collection, *args, "--create")
    assert run.code == 0, run.err
    run = dbsh("-u", store.url, "insert", collection, "--file", str(path), "--resume")
    assert run.code == 2, run.err
    assert run.err == (f"dbsh: error: --resume needs a checkpoint, and no interrupted run of this import left one, "
                       f"while {collection} already has 3 rows: delete the rows or drop --resume\n")
    assert sorted(int(r["id"]) for r in store.native_rows(collection)) == [1, 2, 3]


def test_resume_after_a_finished_import_writes_nothing(sqlite_url, tmp_path):
    """A run that finished (killed, say, before it could exit) leaves its checkpoint marked finished:
    --resume then writes nothing more (and reports the import's total), where starting over would add every row
    again."""
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    assert dbsh("-u", sqlite_url, "insert", "people", "--file", str(path), "--create").code == 0
    run = dbsh("-u", sqlite_url, "insert", "people", "--file", str(path), "--resume")
    assert (run.code, run.json_lines()[0]["count"]) == (0, 3), run.err   # the import's total, as on any resume
    assert dbsh("-u", sqlite_url, "count", "people").out.strip() == '{"count":3}'


def test_resume_without_a_checkpoint_on_an_empty_destination_starts_at_the_beginning(sqlite_url, tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    run = dbsh("-u", sqlite_url, "insert", "people", "--file", str(path), "--create", "--resume")
    assert run.code == 0, run.err
    assert "no checkpoint to resume from; starting at the beginning" in run.err
    assert dbsh("-u", sqlite_url, "count", "people").out.strip() == '{"count":3}'
