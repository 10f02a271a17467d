"""Redis holds: collections never overlap (users never reaches into users:archive), a failed insert
leaves no id counter behind, and an import killed with SIGKILL at any point resumes to exactly the file's
rows (each batch is one MULTI ... EXEC). Checked with redis-py, the native client."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from dbsh.bulk.checkpoint import latest_state
from tests.dbshtest import dbsh

pytestmark = pytest.mark.redis


@pytest.fixture
def r(redis_url):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    yield client
    client.close()


def test_a_collection_never_reaches_into_a_longer_one(redis_url, r):
    assert dbsh("-u", redis_url, "insert", "users", '{"id": 1, "name": "Ann"}').code == 0
    assert dbsh("-u", redis_url, "insert", "users:archive", '{"id": 1, "name": "Old"}').code == 0
    run = dbsh("-u", redis_url, "find", "users")
    assert run.code == 0 and run.json_lines() == [{"id": 1, "name": "Ann"}], run.out
    assert dbsh("-u", redis_url, "count", "users").json_lines() == [{"count": 1}]
    assert dbsh("-u", redis_url, "find", "users", '{"id": "archive:1"}').json_lines() == []
    assert dbsh("-u", redis_url, "update", "users", "{}", '{"$set": {"seen": true}}').code == 0
    assert r.hgetall("users:archive:1") == {"id": "1", "name": "Old"}
    run = dbsh("-u", redis_url, "delete", "users", "--all")
    assert run.code == 0 and run.json_lines()[0]["count"] == 1, run.out
    assert sorted(r.keys()) == ["users:archive:1"]
    assert dbsh("-u", redis_url, "find", "users:archive").json_lines() == [{"id": 1, "name": "Old"}]
    assert dbsh("-u", redis_url, "collections").json_lines() == [{"name": "users:archive"}]


def test_an_id_with_a_colon_is_refused(redis_url, r):
    run = dbsh("-u", redis_url, "insert", "users", '{"id": "archive:1", "name": "x"}', '{"id": 2}')
    assert run.code == 2
    assert run.err == ("dbsh: error: a Redis document id cannot contain ':' (got \"archive:1\") (the key "
                       "COLLECTION:a:b is document b of the collection COLLECTION:a)\n")
    assert r.dbsize() == 0


def test_a_failed_insert_leaves_no_id_counter(redis_url, r):
    run = dbsh("-u", redis_url, "insert", "users", '{"name": "\\ud800"}')
    assert run.code == 2 and len(run.err.strip().splitlines()) == 1, run.err
    assert r.dbsize() == 0
    assert dbsh("-u", redis_url, "insert", "users", '{"name": "Ann"}').code == 0
    assert r.get("users:__seq__") == "1" and r.hgetall("users:1") == {"id": "1", "name": "Ann"}


ROWS = 60_000


def _written(folder: Path) -> int:
    best = -1
    for path in folder.glob("*.json"):
        try:
            state = latest_state(path.read_bytes())
        except FileNotFoundError:
            continue
        if state:
            best = max(best, state["written"])
    return best


def test_kill_9_at_any_point_then_resume_gives_exactly_the_files_rows(redis_url, r, tmp_path, dbsh_env):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"id": i, "v": f"v{i}", "n": i * 2}) + "\n" for i in range(1, ROWS + 1)))
    folder = Path(dbsh_env["XDG_DATA_HOME"]) / "dbsh" / "checkpoints"
    rnd = random.Random(21)
    kills, finished = 0, None
    for attempt in range(6):
        args = [sys.executable, "-m", "dbsh", "-u", redis_url, "insert", "t", "--file", str(path), "--batch", "1000"]
        proc = subprocess.Popen(args + (["--resume"] if attempt else []), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=dbsh_env)
        before = max(_written(folder), 0)
        while proc.poll() is None and _written(folder) <= before:
            pass
        # anywhere in the next batch or two: before, during or after its EXEC
        for _ in range(rnd.randrange(0, 400_000)):
            if proc.poll() is not None:
                break
        if proc.poll() is not None:
            finished = proc
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        stored = r.dbsize()
        assert stored % 1000 == 0, f"a batch landed in part: {stored} keys"
    if finished is not None:
        out, err = finished.communicate()
        assert finished.returncode == 0, err
    else:
        run = dbsh("-u", redis_url, "insert", "t", "--file", str(path), "--resume", "--batch", "1000")
        assert run.code == 0, run.err
    assert kills >= 1
    assert r.dbsize() == ROWS
    pipe = r.pipeline(transaction=False)
    for i in range(1, ROWS + 1):
        pipe.hgetall(f"t:{i}")
    assert pipe.execute() == [{"id": str(i), "v": f"v{i}", "n": str(i * 2)} for i in range(1, ROWS + 1)]
