"""Redis driver against a real Debian redis-server: every command of the README flow, reply types,
redis-cli quoting (checked against redis-cli itself), pipelined batches, pub/sub and MONITOR, the
uniform verbs. Results are checked with redis-py or redis-cli, never with dbsh."""

from __future__ import annotations

import io
import json
import math
import random
import shutil
import subprocess
import sys
import threading
from urllib.parse import urlsplit

import pytest
import redis

from dbsh import drivers
from dbsh.drivers.base import Result
from dbsh.drivers.redis import SCRIPT_CHUNK, SHAPED_FIELDS, encode_value, split_args
from dbsh.errors import PartialWrite, QueryError, UsageError
from dbsh.inputs import Batch
from dbsh.output import Renderer
from dbsh.target import resolve
from tests import servers
from tests.dbshtest import dbsh, dbsh_process

pytestmark = pytest.mark.redis

DB = 9   # our own database number on the shared session server; flushed before each test


@pytest.fixture
def url(redis_url):
    parts = urlsplit(redis_url)
    own = parts._replace(path=f"/{DB}").geturl()
    redis.Redis.from_url(own).flushdb()
    return own


@pytest.fixture
def r(url):
    client = redis.Redis.from_url(url)
    yield client
    client.close()


def port_of(url: str) -> int:
    return urlsplit(url).port


def q(url, *args, **kw):
    return dbsh("-u", url, "query", *args, **kw)


# --- the README flow ---------------------------------------------------------------------------

def test_set_get(url, r):
    run = q(url, 'SET name "John Doe"')
    assert (run.code, run.out) == (0, '{"value":"OK"}\n')
    assert r.get("name") == b"John Doe"
    run = q(url, "GET name")
    assert (run.code, run.out) == (0, '{"value":"John Doe"}\n')
    run = q(url, "GET missing")
    assert (run.code, run.out) == (0, '{"value":null}\n')


def test_list(url, r):
    run = q(url, "RPUSH words one two three")
    assert (run.code, run.out) == (0, '{"value":3}\n')
    assert r.lrange("words", 0, -1) == [b"one", b"two", b"three"]
    run = q(url, "LRANGE words 0 -1")
    assert run.json_lines() == [{"value": "one"}, {"value": "two"}, {"value": "three"}]


def test_hash_is_a_two_column_table(url, r):
    run = q(url, 'HSET user:1000 name "John Doe" age 30')
    assert (run.code, run.out) == (0, '{"value":2}\n')
    assert r.hgetall("user:1000") == {b"name": b"John Doe", b"age": b"30"}
    run = dbsh("-u", url, "-f", "csv", "query", "HGETALL user:1000")
    assert (run.code, run.out) == (0, "field,value\nname,John Doe\nage,30\n")


def test_setex_pttl(url, r):
    assert q(url, "SETEX timed 10 value").out == '{"value":"OK"}\n'
    assert 0 < r.pttl("timed") <= 10_000
    [row] = q(url, "PTTL timed").json_lines()
    assert 0 < row["value"] <= 10_000


# --- reply types -------------------------------------------------------------------------------

def test_sorted_set_with_scores_and_sets(url, r):
    r.zadd("z", {"a": 1, "b": 2.5})
    run = dbsh("-u", url, "-f", "csv", "query", "ZRANGE z 0 -1 WITHSCORES")
    assert run.out == "member,score\na,1.0\nb,2.5\n"
    assert q(url, "ZPOPMAX z").json_lines() == [{"member": "b", "score": 2.5}]
    r.sadd("s", "x")
    assert q(url, "SMEMBERS s").json_lines() == [{"member": "x"}]
    assert q(url, "ZSCORE z a").json_lines() == [{"value": 1.0}]


def test_nested_arrays_and_maps(url, r):
    entry = r.xadd("stream", {"f": "v"}).decode()
    assert q(url, "XRANGE stream - +").json_lines() == [{"value": [entry, ["f", "v"]]}]
    rows = q(url, "CONFIG GET maxmemory-policy").json_lines()
    assert rows == [{"field": "maxmemory-policy", "value": "noeviction"}]


def test_bytes_that_are_not_utf8_are_escaped(url, r):
    run = q(url, r'SET bin "\xff\xfeok"')
    assert run.code == 0
    assert r.get("bin") == b"\xff\xfeok"
    run = dbsh("-u", url, "-f", "csv", "query", "GET bin")
    assert (run.code, run.out) == (0, "value\n\\xff\\xfeok\n")
    [row] = q(url, "GET bin").json_lines()   # lossless in JSON
    assert row == {"value": {"$binary": {"base64": "//5vaw==", "subType": "00"}}}


def test_command_count_and_info(url):
    # redis-py's own reply parser raises TypeError on COMMAND COUNT; dbsh shows the raw reply
    [row] = q(url, "COMMAND COUNT").json_lines()
    assert isinstance(row["value"], int) and row["value"] > 100
    rows = q(url, "INFO server").json_lines()
    assert {"field": "redis_mode", "value": "standalone"} in rows


def test_parameters_are_whole_arguments(url, r):
    run = q(url, "SET :key :value", "-p", "key=k1", "-p", "value=a b; FLUSHALL")
    assert run.code == 0
    assert r.get("k1") == b"a b; FLUSHALL"
    run = q(url, "GET k1", "-p", "key=k1")
    assert run.code == 2 and "parameter 'key' is not used" in run.err


# --- quoting: the same as redis-cli ------------------------------------------------------------

QUOTED = [
    'plain',
    '"John Doe"',
    r'"tab\there"',
    r'"hex\x41\x7a"',
    r'"quote\"inside"',
    r'"back\\slash"',
    "'single \"quoted\"'",
    r"'it\'s'",
    r"'no\nescape'",
    'mid"dle quoted"',
    '""',
    '"ünïcode"',
]


@pytest.mark.parametrize("arg", QUOTED)
def test_quoting_matches_redis_cli(url, r, arg):
    cli = shutil.which("redis-cli")
    port = port_of(url)
    # redis-cli splits lines read from stdin with sdssplitargs, exactly as its prompt does
    subprocess.run([cli, "-h", "127.0.0.1", "-p", str(port), "-n", str(DB)], input=f"SET bycli {arg}\n".encode(),
                   check=True, capture_output=True)
    assert q(url, f"SET bydbsh {arg}").code == 0
    assert r.get("bydbsh") == r.get("bycli")


@pytest.mark.parametrize("line", ['SET k "unbalanced', "SET k 'open", 'SET k "a"b', "SET k 'a'b"])
def test_bad_quotes_are_usage_errors_and_write_nothing(url, r, line):
    run = q(url, line)
    assert run.code == 2
    assert run.err.startswith("dbsh: error: ") and len(run.err.splitlines()) == 1
    assert r.dbsize() == 0


def test_split_args_unit():
    assert split_args(r'SET k "a\nb" \x41') == [b"SET", b"k", b"a\nb", b"\\x41"]
    assert split_args("  ") == []
    with pytest.raises(UsageError):
        split_args('"abc')


# --- errors ------------------------------------------------------------------------------------

def test_unknown_command(url):
    run = q(url, "FOO bar")
    assert run.code == 1
    assert run.err == "dbsh: error: unknown command 'FOO', with args beginning with: 'bar'\n"


def test_wrong_type(url, r):
    r.set("name", "x")
    run = q(url, "LPUSH name y")
    assert run.code == 1
    assert run.err == "dbsh: error: WRONGTYPE Operation against a key holding the wrong kind of value\n"
    assert r.get("name") == b"x"


@pytest.fixture(scope="module")
def locked_url():
    with servers.Redis(password="dbsh-test-pw") as server:
        yield server.url


def test_wrong_password_is_exit_3_and_never_printed(locked_url):
    bad = locked_url.replace("dbsh-test-pw", "not-the-password")
    run = dbsh("-u", bad, "query", "GET x")
    assert run.code == 3
    assert "cannot authenticate" in run.err and "not-the-password" not in run.err + run.out
    run = dbsh("-u", locked_url.replace(":dbsh-test-pw@", ""), "query", "GET x")
    assert run.code == 3 and "needs a password" in run.err
    assert dbsh("-u", locked_url, "query", "PING").out == '{"value":"PONG"}\n'


def test_password_from_environment(locked_url):
    url = locked_url.replace(":dbsh-test-pw@", "default@")
    run = dbsh("-u", url, "query", "PING", env={"DBSH_PASSWORD": "dbsh-test-pw"})
    assert (run.code, run.out) == (0, '{"value":"PONG"}\n')


def test_unreachable_is_exit_3():
    run = dbsh("-u", f"redis://127.0.0.1:{servers.free_port()}/0", "query", "PING")
    assert run.code == 3 and run.err.startswith("dbsh: error: cannot connect to redis://127.0.0.1:")


# --- pipelined batches -------------------------------------------------------------------------

def test_pipe_reports_each_failing_line(url, r, tmp_path):
    text = "\n".join([
        "SET a 1",            # 1
        "INCR a",             # 2
        "",                   # 3 blank: skipped
        "LPUSH a x",          # 4 WRONGTYPE
        'SET b "open',        # 5 unbalanced quotes: never sent
        "# a comment",        # 6 skipped
        "NOSUCHCOMMAND",      # 7 unknown
        "RPUSH l one two",    # 8
    ]) + "\n"
    run = q(url, "-", input=text)
    assert run.code == 1
    assert run.out == ""
    assert run.err.splitlines() == [
        'dbsh: line 5: unbalanced quotes in command (a " is not closed)',
        "dbsh: line 4: WRONGTYPE Operation against a key holding the wrong kind of value",
        "dbsh: line 7: unknown command 'NOSUCHCOMMAND', with args beginning with:",
        "dbsh: error: 3 of 6 commands failed (lines 4, 5, 7); 3 replies",
    ]
    assert r.get("a") == b"2" and r.lrange("l", 0, -1) == [b"one", b"two"] and not r.exists("b")


def test_pipe_in_chunks_keeps_line_numbers(url, r, tmp_path):
    lines = [f"SET key:{i} {i}" for i in range(1, 2501)]
    lines[2099] = "HSET key:1 f"          # line 2100, in the third chunk: wrong number of arguments
    path = tmp_path / "redis_commands.txt"
    path.write_text("\n".join(lines) + "\n")
    with open(path) as f:
        run = q(url, "-", input=f.read())
    assert run.code == 1
    assert run.err.splitlines()[-1] == "dbsh: error: 1 of 2500 commands failed (lines 2100); 2499 replies"
    assert r.dbsize() == 2499 and r.get("key:2500") == b"2500"

    ok = "\n".join(f"RPUSH big {i}" for i in range(3000))
    run = q(url, "-", input=ok)
    assert (run.code, run.json_lines()) == (0, [{"commands": 3000, "replies": 3000, "errors": 0}])
    assert r.llen("big") == 3000


# --- streaming: SUBSCRIBE, PSUBSCRIBE, MONITOR ----------------------------------------------

def _start(url, *args):
    return subprocess.Popen([sys.executable, "-m", "dbsh", "-u", url, "query", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(predicate):
    event = threading.Event()
    while not predicate():
        event.wait(0.02)


def test_subscribe_streams_until_count(url, r):
    proc = _start(url, "SUBSCRIBE channel1 channel2", "--count", "2")
    _wait_for(lambda: dict(r.pubsub_numsub("channel1", "channel2")) == {b"channel1": 1, b"channel2": 1}
              or proc.poll() is not None)
    r.publish("channel1", "hello")
    r.publish("channel2", b"\xff")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert [json.loads(line) for line in out.splitlines()] == [
        {"type": "message", "pattern": None, "channel": "channel1", "data": "hello"},
        {"type": "message", "pattern": None, "channel": "channel2",
         "data": {"$binary": {"base64": "/w==", "subType": "00"}}},
    ]


def test_psubscribe_table_prints_each_message_as_a_line(url, r):
    proc = _start(url, "PSUBSCRIBE news.*", "--count", "1", "--format", "table")
    _wait_for(lambda: r.pubsub_numpat() == 1 or proc.poll() is not None)
    r.publish("news.sport", "goal")
    out, err = proc.communicate(timeout=30)
    assert (proc.returncode, out) == (0, "pmessage  news.*  news.sport  goal\n"), err


def test_monitor(url, r):
    proc = _start(url, "MONITOR", "--count", "1")

    def monitoring():
        clients = r.client_list()
        return any(c.get("cmd") == "monitor" for c in clients) or proc.poll() is not None

    _wait_for(monitoring)
    r.set("watched", "1")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    [row] = [json.loads(line) for line in out.splitlines()]
    assert row["command"] == "SET watched 1" and row["db"] == DB


def test_streaming_renderer_writes_rows_as_they_arrive():
    buffer = io.StringIO()
    seen = []

    def rows():
        yield {"type": "message", "channel": "c", "data": "one"}
        seen.append(buffer.getvalue())   # the first row is already out before the second arrives
        yield {"type": "message", "channel": "c", "data": "two"}

    result = Result(rows(), ["type", "channel", "data"])
    result.streaming = True
    assert Renderer("table", buffer).result(result) == 2
    assert seen == ["message  c  one\n"]
    assert buffer.getvalue() == "message  c  one\nmessage  c  two\n"


# --- uniform verbs -----------------------------------------------------------------------------

def test_insert_with_ttl_and_types_restored(url, r):
    run = dbsh("-u", url, "insert", "users", '{"id": 42, "name": "Ann", "age": 34}', "--ttl", "3600")
    assert run.code == 0, run.err
    assert run.json_lines() == [{"action": "inserted", "collection": "users", "count": 1, "ids": [42],
                                 "ttl": 3600}]
    assert r.hgetall("users:42") == {b"id": b"42", b"name": b"Ann", b"age": b"34"}
    assert 0 < r.ttl("users:42") <= 3600

    doc = {"name": "Bob", "age": 12, "zip": "0150", "code": "34", "ok": True, "none": None,
           "tags": ["a", 1], "address": {"city": "Oslo"}}
    run = dbsh("-u", url, "insert", "users", json.dumps(doc))
    assert run.json_lines()[0]["ids"] == [1]          # generated with INCR on users:__seq__
    stored = r.hgetall("users:1")
    assert stored[b"name"] == b"Bob" and stored[b"zip"] == b"0150" and stored[b"code"] == b'"34"'
    assert json.loads(stored[b"address"]) == {"city": "Oslo"}
    assert r.get("users:__seq__") == b"1" and r.ttl("users:1") == -1
    found = dbsh("-u", url, "find", "users", '{"name": "Bob"}').json_lines()
    assert found == [{"id": 1, **doc}]


def test_insert_duplicate_id_changes_nothing(url, r):
    assert dbsh("-u", url, "insert", "users", '{"id": 7, "name": "Ann"}').code == 0
    run = dbsh("-u", url, "insert", "users", '{"id": 7, "name": "Eve", "extra": 1}', '{"id": 8, "name": "Dan"}')
    assert run.code == 1
    assert run.err == ("dbsh: error: inserted 1 documents into users; 1 already existed and were left "
                       "unchanged: users:7\n")
    assert r.hgetall("users:7") == {b"id": b"7", b"name": b"Ann"}
    assert r.hget("users:8", "name") == b"Dan"


def test_insert_batches_from_file(url, r, tmp_path):
    """Existing keys and an id repeated in a batch are left alone and named, generated ids that hit
    explicit ones go round again, a 5000-field document is written whole; the import stops after the
    batch that met existing keys."""
    r.hset("users:2", mapping={"id": "2", "name": "Old"})
    r.hset("users:2150", mapping={"id": "2150", "name": "Old"})
    docs = [{"name": "gen-a"}, {"name": "gen-b"}]                   # ids 1, then 2 is taken -> 3
    docs += [{"id": i, "n": i} for i in range(1000, 2396)]         # 2150 exists (second batch of 700)
    docs += [{"id": 2100, "n": "again"}, {"id": "wide", **{f"f{i}": i for i in range(5000)}}]
    docs += [{"id": 9000}] * 700                                   # third batch: never reached
    path = tmp_path / "users.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    run = dbsh("-u", url, "insert", "users", "--file", str(path), "--batch", "700", "--ttl", "100")
    assert run.code == 1
    assert run.err == ("dbsh: error: inserted 698 documents into users; 2 already existed and were left "
                       "unchanged: users:2150, users:2100 (1398 rows written to users in all) "
                       "(run again with --resume to continue)\n")
    assert r.hgetall("users:1") == {b"id": b"1", b"name": b"gen-a"}
    assert r.hgetall("users:3") == {b"id": b"3", b"name": b"gen-b"} and r.get("users:__seq__") == b"3"
    assert r.hgetall("users:2") == {b"id": b"2", b"name": b"Old"} and r.ttl("users:2") == -1
    assert r.hgetall("users:2150") == {b"id": b"2150", b"name": b"Old"} and r.ttl("users:2150") == -1
    assert r.hgetall("users:2100") == {b"id": b"2100", b"n": b"2100"} and 0 < r.ttl("users:2100") <= 100
    assert r.hget("users:2395", "n") == b"2395" and not r.exists("users:9000")
    wide = r.hgetall("users:wide")
    assert len(wide) == 5001 and wide[b"f4999"] == b"4999" and 0 < r.ttl("users:wide") <= 100
    assert r.dbsize() == 2 + 700 + 698 + 1   # and the counter


def test_insert_calls_settle_existing_and_repeated_keys(url, r, tmp_path):
    """A batch goes as several pipelined script calls (SCRIPT_CHUNK documents each): a key that existed,
    an id repeated within one call and one repeated calls later are each refused exactly (the first
    writer wins), logged with their line and left unchanged; all the others are written with the TTL."""
    c = SCRIPT_CHUNK
    r.hset("users:5", mapping={"id": "5", "name": "Old"})                      # first call
    r.hset(f"users:{2 * c + 100}", mapping={"id": str(2 * c + 100), "name": "Old"})   # third call
    docs = [{"id": i, "name": f"n{i}"} for i in range(1, 4 * c + 1)]
    docs[19] = {"id": 10, "name": "again"}           # line 20 repeats line 10 in the same call
    docs[3 * c + 149] = {"id": 100, "name": "late"}  # a line of the fourth call repeats line 100
    path, bad = tmp_path / "users.jsonl", tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    run = dbsh("-u", url, "insert", "users", "--file", str(path), "--batch", str(4 * c), "--ttl", "100",
               "--errors", str(bad))
    assert run.code == 0, run.err
    [row] = run.json_lines()
    assert (row["count"], row["errors"]) == (4 * c - 4, 4)
    logged = [(b["line"], b["error"]) for b in map(json.loads, bad.read_text().splitlines())]
    assert logged == [(5, "key users:5 already exists"), (20, "key users:10 already exists"),
                      (2 * c + 100, f"key users:{2 * c + 100} already exists"),
                      (3 * c + 150, "key users:100 already exists")]
    for old in ("users:5", f"users:{2 * c + 100}"):
        assert r.hgetall(old) == {b"id": old[6:].encode(), b"name": b"Old"} and r.ttl(old) == -1
    assert r.hgetall("users:10") == {b"id": b"10", b"name": b"n10"}
    assert r.hgetall("users:100") == {b"id": b"100", b"name": b"n100"}
    assert not r.exists("users:20") and not r.exists(f"users:{3 * c + 150}")
    assert all(0 < r.ttl(f"users:{i}") <= 100 for i in (1, 10, 100, c + 1, 2 * c + 99, 2 * c + 101, 4 * c))
    assert r.dbsize() == 4 * c - 2


VALUES = ["plain", "", "12", "-3", "true", " null", "nullish", "{}", "[1", "é日本", 'say "hi"', "a\nb", "%s%d",
          7, -0, 10**30, 0.1, -0.0, 1e300, float("nan"), float("inf"), True, False, None, [1, "a"], {"k": {"n": None}}]


def test_insert_stores_values_as_encode_value_in_every_way_a_call_is_built(url, r, tmp_path):
    """Whichever way a call is encoded (documents sharing their fields: values a column at a time, one
    type or mixed, in one argument; the same with a value holding a NUL; documents of mixed fields;
    documents with more fields than a written-out script takes), each value is stored as encode_value()
    has it, the fields in the document's order, and find reads every document back as it went in."""
    n, c = len(VALUES), SCRIPT_CHUNK   # each kind below fills its own calls
    shared = [{"id": i, "v": VALUES[i % n], "s": "x" * (i % 5), "w": ["true", "12", "{}", "ok"][i % 4],
               "f": i / 7, "b": i % 2 == 0, "u": f"ü{i}", "%": i} for i in range(c)]
    nul = [{"id": f"z{i}", "t": "a\x00b" if i == 7 else f"t{i}", "n": i} for i in range(c)]
    mixed = [{"id": f"m{i}", "a": VALUES[i % n], **({"b": VALUES[(i + 3) % n]} if i % 3 else {})} for i in range(60)]
    wide = [{"id": f"w{i}", **{f"f{j}": VALUES[(i + j) % n] for j in range(SHAPED_FIELDS + 1)}} for i in range(3)]
    docs = shared + nul + mixed + wide
    path = tmp_path / "values.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    run = dbsh("-u", url, "insert", "users", "--file", str(path), "--batch", str(len(docs)))
    assert run.code == 0, run.err
    for doc in docs:
        stored = r.hgetall(f"users:{doc['id']}")
        assert list(stored) == [f.encode() for f in doc], doc
        assert stored == {f.encode(): encode_value(v).encode() for f, v in doc.items()}, doc
    assert r.hgetall("users:3")[b"v"] == b'"-3"' and r.hgetall("users:0")[b"w"] == b'"true"'
    assert r.hgetall("users:18")[b"v"] == b"1e+300" and r.hgetall("users:20")[b"v"] == b"Infinity"
    assert r.hget("users:z7", "t") == b"a\x00b" and r.hget("users:z8", "t") == b"t8"
    found = dbsh("-u", url, "find", "users").json_lines()
    # JSON output is valid JSON: NaN and the infinities are written as null
    shown = [{k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in d.items()} for d in docs]
    assert sorted(map(json.dumps, found)) == sorted(map(json.dumps, shown))


def test_insert_prints_numbers_as_str_and_repr_do(url, r, tmp_path):
    """Columns of ints or floats are printed a column at a time (orjson, where it prints as str() and
    repr() do: ints within 64 bits, floats where repr uses fixed notation; else str/repr): every stored
    number is encode_value()'s text, whatever the magnitude, in calls of one kind and of mixed kinds."""
    rnd = random.Random(7)
    floats = [rnd.uniform(-1, 1) * 10 ** rnd.uniform(-8, 20) for _ in range(1500)]
    floats = [0.0, -0.0, 1e-4, -1e-4, 9.999999999999998e15, 1e16, 0.1 + 0.2, 1 / 3, 5e-324, 1.7976931348623157e308,
              *floats]
    ints = [0, -1, 2**63 - 1, -2**63, 2**64 - 1, 2**64, -2**70] + [rnd.randint(-2**63, 2**64 - 1) for _ in range(1500)]
    rows = [{"id": i, "f": f, "n": n} for i, (f, n) in enumerate(zip(floats, ints))]   # (2**64 in the first call)
    rows += [{"id": 10_000 + i, "f": rnd.uniform(1, 1000)} for i in range(SCRIPT_CHUNK)]   # all in fixed notation
    rows += [{"id": 20_000 + i, "n": i} for i in range(SCRIPT_CHUNK)]                     # all within 64 bits
    path = tmp_path / "numbers.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in rows))
    run = dbsh("-u", url, "insert", "users", "--file", str(path), "--batch", "5000")
    assert run.code == 0, run.err
    pipe = r.pipeline()
    for doc in rows:
        pipe.hgetall(f"users:{doc['id']}")
    for doc, stored in zip(rows, pipe.execute()):
        assert stored == {f.encode(): encode_value(v).encode() for f, v in doc.items()}, doc


def test_insert_generated_ids_go_round_again_across_calls(url, r, tmp_path):
    """Ids for a batch come from one INCRBY; those that hit a key written with an explicit id (in any
    call of the batch) are refused and go round again with new ids, in order."""
    r.hset("users:5", mapping={"id": "5", "name": "Old"})
    r.hset("users:300", mapping={"id": "300", "name": "Old"})
    path = tmp_path / "gen.jsonl"
    path.write_text("".join(json.dumps({"name": f"g{i}"}) + "\n" for i in range(600)))
    run = dbsh("-u", url, "insert", "users", "--file", str(path), "--batch", "600")
    assert run.code == 0, run.err
    assert run.json_lines()[0]["count"] == 600
    assert r.get("users:__seq__") == b"602"
    assert r.hgetall("users:5") == {b"id": b"5", b"name": b"Old"}
    assert r.hgetall("users:601") == {b"id": b"601", b"name": b"g4"}
    assert r.hgetall("users:602") == {b"id": b"602", b"name": b"g299"}
    names = sorted(r.hget(f"users:{i}", "name") for i in range(1, 603) if i not in (5, 300))
    assert names == sorted(f"g{i}".encode() for i in range(600))


def test_insert_refuses_an_id_that_cannot_be_a_key_before_writing(url, r, tmp_path):
    """An id that is not a string or an integer fails the whole batch before anything is written (so
    --errors can find the row by halving the batch); without --errors the import stops there."""
    path = tmp_path / "ids.jsonl"
    path.write_text("".join(json.dumps({"id": i, "n": 1}) + "\n" for i in [1, 2, True, 4, 5.5, 6]))
    run = dbsh("-u", url, "insert", "users", "--file", str(path))
    assert run.code == 2
    assert "a Redis document id must be a string or an integer, got true" in run.err
    assert r.dbsize() == 0
    bad = tmp_path / "bad.jsonl"
    run = dbsh("-u", url, "insert", "users", "--file", str(path), "--errors", str(bad))
    assert run.code == 0, run.err
    assert [json.loads(b)["line"] for b in bad.read_text().splitlines()] == [3, 5]
    assert sorted(r.keys()) == [b"users:1", b"users:2", b"users:4", b"users:6"]


def test_insert_batches_prepared_ahead_land_where_they_are_sent(url, r):
    """prepare_batch (run by the thread that reads ahead) builds whole requests for the collection the
    batch is bound for; sent there they still refuse an existing key exactly, and a batch sent to another
    collection than it was prepared for is written there, not where it was prepared for."""
    session = drivers.connect(resolve(url))
    try:
        session.insert("users", [{"id": 0, "n": 0}])
        docs = [{"id": i, "n": i} for i in range(1, 2 * SCRIPT_CHUNK + 1)]
        ahead = Batch(list(range(len(docs))), docs)
        session.prepare_batch("users", ahead)
        assert all(call[-1] is not None for call in ahead.prepared.calls)   # whole requests for users:
        r.hset("users:7", "n", "old")
        with pytest.raises(PartialWrite) as e:
            session.insert_batch("users", ahead)
        assert e.value.rejected == [(6, "key users:7 already exists")] and e.value.written == len(docs) - 1
        assert r.hgetall("users:7") == {b"n": b"old"}
        assert r.hgetall(f"users:{2 * SCRIPT_CHUNK}") == {b"id": str(2 * SCRIPT_CHUNK).encode(),
                                                          b"n": str(2 * SCRIPT_CHUNK).encode()}
        elsewhere = Batch(list(range(len(docs))), [dict(d) for d in docs])
        session.prepare_batch("users", elsewhere)
        assert session.insert_batch("other", elsewhere).count == len(docs)
        assert r.hgetall("other:7") == {b"id": b"7", b"n": b"7"}
        assert len(r.keys("other:*")) == len(docs) and len(r.keys("users:*")) == len(docs) + 1
    finally:
        session.close()


def test_insert_after_the_server_dropped_the_connection(url, r):
    """The insert path takes its connection from the session's pool for each batch, so one the server
    closed meanwhile (a restart, CLIENT KILL, a timeout) is made anew instead of failing the next insert."""
    session = drivers.connect(resolve(url))
    try:
        assert session.insert("users", [{"id": i} for i in range(10)]).count == 10
        assert r.client_kill_filter(_type="normal", skipme=True) >= 1
        assert session.insert("users", [{"id": i} for i in range(10, 20)]).count == 10
        assert len(r.keys("users:*")) == 20
    finally:
        session.close()


def test_insert_refused_by_the_server_leaves_the_session_clean(url, r):
    """An error reply (here OOM, in every call) stops the insert with the server's reason and where;
    the session's pipelined connection has no replies left over, so its next insert works. A field
    name that is not text goes the redis-py way (stored as redis-py writes it)."""
    session = drivers.connect(resolve(url))
    try:
        assert session.insert("users", [{"id": i} for i in range(600)]).count == 600
        r.config_set("maxmemory", 1)
        try:
            with pytest.raises(QueryError) as e:
                session.insert("users", [{"id": i, "n": i} for i in range(1000, 1600)])
        finally:
            r.config_set("maxmemory", 0)
        assert e.value.message.startswith("insert stopped at users:1000 after 0 documents: ")
        assert "command not allowed when used memory > 'maxmemory'" in e.value.message
        assert not any(r.exists(f"users:{i}") for i in range(1000, 1600))
        assert session.insert("users", [{"id": 700, "n": 1}, {"id": 701, "n": 2}]).count == 2
        assert r.hgetall("users:700") == {b"id": b"700", b"n": b"1"} and r.hget("users:701", "n") == b"2"
        assert session.insert("users", [{"id": "after", 2: "two"}]).count == 1
        assert r.hgetall("users:after") == {b"id": b"after", b"2": b"two"}
    finally:
        session.close()


def seed(url):
    docs = [{"id": i, "name": n, "age": a} for i, (n, a) in enumerate(
        [("Ann", 34), ("Bob", 12), ("Cy", 31), ("Dee", 17), ("Eve", 50)], 1)]
    run = dbsh("-u", url, "insert", "users", *map(json.dumps, docs))
    assert run.code == 0, run.err


def test_find_scans_and_filters(url, r):
    seed(url)
    r.set("users:note", "a string key under the prefix is not a document")
    r.hset("other:1", mapping={"age": 99})
    run = dbsh("-u", url, "find", "users", '{"age": {"$gt": 30}}', "--sort", "-age", "--fields", "name,age")
    assert run.code == 0
    assert run.json_lines() == [{"name": "Eve", "age": 50}, {"name": "Ann", "age": 34}, {"name": "Cy", "age": 31}]
    assert run.err == "dbsh: scanned 5 keys of users:* (filtered client-side)\n"
    run = dbsh("-u", url, "find", "users", '{"id": 3}')
    assert run.json_lines() == [{"id": 3, "name": "Cy", "age": 31}]
    assert run.err == "dbsh: scanned 1 key of users:* (filtered client-side)\n"
    assert dbsh("-u", url, "count", "users", '{"name": {"$regex": "^[A-C]"}}').json_lines() == [{"count": 3}]
    run = dbsh("-u", url, "find", "users", '{"age": {"$foo": 1}}')
    assert run.code == 2 and "unknown operator $foo" in run.err


def test_find_on_hashes_written_by_other_tools(url, r):
    assert q(url, 'HSET user:1000 name "John Doe" age 30').code == 0
    assert dbsh("-u", url, "find", "user").json_lines() == [{"id": 1000, "name": "John Doe", "age": 30}]


def test_update(url, r):
    seed(url)
    run = dbsh("-u", url, "update", "users", '{"id": 1}', '{"$inc": {"age": 1}}')
    assert run.json_lines() == [{"action": "updated", "collection": "users", "count": 1, "matched": 1}]
    assert r.hget("users:1", "age") == b"35"
    run = dbsh("-u", url, "update", "users", '{"age": {"$lt": 18}}', '{"$set": {"minor": true}, "$unset": {"age": ""}}')
    assert run.json_lines()[0]["count"] == 2
    assert r.hgetall("users:2") == {b"id": b"2", b"name": b"Bob", b"minor": b"true"}
    run = dbsh("-u", url, "update", "users", '{"id": 1}', '{"$set": {"id": 9}}')
    assert run.code == 2 and "part of the Redis key" in run.err
    run = dbsh("-u", url, "update", "users", '{"name": "Zed"}', '{"$set": {"age": 1}}', "--upsert")
    assert run.json_lines()[0]["action"] == "upserted"
    assert r.hget("users:6", "name") == b"Zed"


def test_delete(url, r):
    seed(url)
    run = dbsh("-u", url, "delete", "users", '{"age": {"$lt": 18}}')
    assert run.json_lines() == [{"action": "deleted", "collection": "users", "count": 2}]
    assert sorted(r.scan_iter(match="users:[0-9]*")) == [b"users:1", b"users:3", b"users:5"]
    assert dbsh("-u", url, "delete", "users").code == 2   # an empty filter needs --all


def test_collections_and_describe(url, r):
    seed(url)
    r.set("session:abc", "x", ex=100)
    r.set("plain", "no prefix")
    assert dbsh("-u", url, "collections").json_lines() == [{"name": "session"}, {"name": "users"}]
    run = dbsh("-u", url, "describe", "users")
    rows = run.json_lines()
    assert rows[:3] == [{"field": "id", "type": "number", "count": 5},
                        {"field": "name", "type": "string", "count": 5},
                        {"field": "age", "type": "number", "count": 5}]
    assert rows[3]["message"].startswith("users: 5 keys sampled (hash 5); 0 with a TTL; memory ")
    assert dbsh("-u", url, "describe", "nothing").code == 2


def test_connect_report(url):
    run = dbsh("-f", "json", "connect", url)
    assert run.code == 0, run.err
    [info] = json.loads(run.out)
    assert info["backend"] == "Redis" and info["version"].startswith("7.") and info["protocol"] == "RESP3"


def test_real_process_end_to_end(url, r):
    run = dbsh_process("-u", url, "query", 'SET greeting "hi there"')
    assert (run.code, run.out) == (0, '{"value":"OK"}\n')
    assert r.get("greeting") == b"hi there"


# --- TLS ---------------------------------------------------------------------------------------

class TlsRedis(servers.Server):
    """redis-server with only a TLS port and a self-signed certificate made by openssl."""

    name = "redis-tls"

    def _start(self) -> str:
        self.run([shutil.which("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem",
                  "-out", "cert.pem", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
        port = servers.free_port()
        args = servers.redis_args(servers.find_binary("redis-server"), 0, self.dir)
        self.spawn(args + ["--tls-port", str(port), "--tls-cert-file", "cert.pem", "--tls-key-file", "key.pem",
                           "--tls-ca-cert-file", "cert.pem", "--tls-auth-clients", "no"], log=self.dir / "redis.log")
        ca = self.dir / "cert.pem"

        def ready() -> bool:
            try:
                return redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(ca)).ping()
            except redis.RedisError:
                return False

        self.wait_until(ready, f"TLS PING on port {port}")
        return f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}"


def test_tls():
    with TlsRedis() as server:
        run = dbsh("-u", server.url, "query", "SET over tls")
        assert (run.code, run.out) == (0, '{"value":"OK"}\n')
        assert redis.Redis.from_url(server.url).get("over") == b"tls"
        untrusted = server.url.split("?")[0]   # the self-signed certificate is not trusted without ssl_ca_certs
        run = dbsh("-u", untrusted, "query", "PING")
        assert run.code == 3 and "certificate verify failed" in run.err


def test_pipe_with_parameters(url, r):
    run = q(url, "-", "-p", "v=a b", "-p", "n=3", input="SET k :v\nINCRBY c :n\nPING\n")
    assert (run.code, run.json_lines()) == (0, [{"commands": 3, "replies": 3, "errors": 0}])
    assert r.get("k") == b"a b" and r.get("c") == b"3"


def test_import_with_an_error_log_names_exactly_the_existing_keys(url, r, tmp_path):
    """A batch that lands in part: only the refused documents go to --errors; the rest count."""
    r.hset("users:5", mapping={"id": "5", "name": "Old"})
    path = tmp_path / "users.jsonl"
    path.write_text("".join(json.dumps({"id": i, "name": f"n{i}"}) + "\n" for i in range(1, 11)))
    run = dbsh("-u", url, "insert", "users", "--file", str(path), "--batch", "4", "--errors", str(tmp_path / "bad"))
    assert run.code == 0, run.err
    [row] = run.json_lines()
    assert (row["count"], row["errors"]) == (9, 1)
    [bad] = [json.loads(line) for line in (tmp_path / "bad").read_text().splitlines()]
    assert bad["line"] == 5 and "users:5 already exists" in bad["error"]
    assert r.hget("users:5", "name") == b"Old" and r.hget("users:10", "name") == b"n10"
