"""Concurrent imports into one collection: 8 processes at once, every one succeeds and the collection holds
exactly the rows of all their files (ids given, or generated: never one id twice). Checked with the
native clients. (Concurrent --create into SQL tables is the SQL driver's, in another branch.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pymongo
import pytest
import redis

from tests.test_copy import fresh

PROCESSES, ROWS = 8, 3000


def run_all(url: str, collection: str, files: list, env: dict) -> None:
    procs = [subprocess.Popen([sys.executable, "-m", "dbsh", "-u", url, "insert", collection, "--file", str(f),
                               "--batch", "500"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for f in files]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert [code for code, _ in results] == [0] * len(files), results


def files(tmp_path, with_ids: bool) -> list:
    out = []
    for n in range(PROCESSES):
        path = tmp_path / f"part{n}.jsonl"
        path.write_text("".join(json.dumps({**({"id": n * ROWS + i} if with_ids else {}), "part": n, "i": i}) + "\n"
                                for i in range(1, ROWS + 1)))
        out.append(path)
    return out


@pytest.mark.redis
@pytest.mark.parametrize("with_ids", [True, False], ids=["given-ids", "generated-ids"])
def test_eight_concurrent_imports_into_one_redis_collection(redis_url, tmp_path, dbsh_env, with_ids):
    url = redis_url.rsplit("/", 1)[0] + "/9"
    r = redis.Redis.from_url(url, decode_responses=True)
    r.flushdb()
    c = fresh("cc")
    run_all(url, c, files(tmp_path, with_ids), dbsh_env)
    keys = [k for k in r.scan_iter(match=f"{c}:*", count=1000) if not k.endswith("__seq__")]
    assert sorted(int(k.rsplit(":", 1)[1]) for k in keys) == list(range(1, PROCESSES * ROWS + 1))
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.hgetall(k)
    seen = sorted((int(h["part"]), int(h["i"])) for h in pipe.execute())
    assert seen == [(n, i) for n in range(PROCESSES) for i in range(1, ROWS + 1)]
    r.close()


@pytest.mark.secantusdb
def test_eight_concurrent_imports_into_one_mongodb_collection(mongo_url, tmp_path, dbsh_env):
    c = fresh("cc")
    run_all(mongo_url, c, files(tmp_path, True), dbsh_env)
    client = pymongo.MongoClient(mongo_url, serverSelectionTimeoutMS=10000)
    docs = list(client.get_default_database()[c].find({}, {"_id": 0}))
    client.close()
    assert sorted(d["id"] for d in docs) == list(range(1, PROCESSES * ROWS + 1))
