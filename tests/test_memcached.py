"""Memcached against a real Debian memcached: the native commands, the uniform verbs, pipelining, TTLs, cas
conflicts, several servers, a unix socket, authentication, bench, import and copy, and bad input (protocol
injection included). What dbsh did is checked with a raw text-protocol client (a socket: tests/servers.py),
never with dbsh. Reads of that client use ``mg ... u`` (no LRU bump): a read that bumps an item makes the
server's LRU crawler skip it for a moment, and the tests list keys with the crawler."""

from __future__ import annotations

import json
import sqlite3
import threading
from urllib.parse import urlsplit

import pytest

from dbsh.drivers.memcached import language
from dbsh.query import Filter, Update
from dbsh.target import resolve
from tests.dbshtest import dbsh
from tests.servers import Memcached, free_port, memcached_keys, memcached_text

pytestmark = pytest.mark.memcached


def address_of(url: str):
    parts = urlsplit(url)
    return parts.hostname, parts.port


@pytest.fixture
def url(memcached_url):
    """The session's server, emptied for each test."""
    assert memcached_text(address_of(memcached_url), b"flush_all\r\n") == b"OK\r\n"
    return memcached_url


@pytest.fixture
def mc(url):
    return address_of(url)


def raw(address, payload: bytes, until: bytes = b"\r\n") -> bytes:
    return memcached_text(address, payload, until=until)


def value(address, key: bytes) -> bytes | None:
    """A key's value as the server holds it (None: no such key), read without bumping it."""
    reply = raw(address, b"mg %b v u\r\n" % key)
    if reply.startswith(b"EN"):
        return None
    head, _, rest = reply.partition(b"\r\n")
    assert head.startswith(b"VA "), reply
    size = int(head.split()[1])
    while len(rest) < size + 2:   # (a long value comes in more than one read)
        rest += raw(address, b"mg %b v u\r\n" % key, until=b"\r\n").partition(b"\r\n")[2][len(rest):]
    return rest[:size]


def doc(address, key: str):
    data = value(address, key.encode())
    return None if data is None else json.loads(data)


def meta(address, key: bytes, flags: bytes) -> dict[str, bytes]:
    reply = raw(address, b"mg %b %b u\r\n" % (key, flags)).split(b"\r\n")[0]
    return {p[:1].decode(): p[1:] for p in reply.split(b" ")[1:]}


def q(url, *args, **kw):
    return dbsh("-u", url, "query", *args, **kw)


def one_error(run, code: int) -> str:
    assert run.code == code, (run.code, run.out, run.err)
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dbsh: error: "), run.err
    return lines[0]


# -- native commands -----------------------------------------------------------------------------------

def test_set_and_get_as_memcached_holds_them(url, mc):
    run = q(url, 'set greeting 5 0 "hello world"')
    assert (run.code, run.out) == (0, '{"result":"STORED"}\n')
    assert raw(mc, b"get greeting\r\n", b"END\r\n") == b"VALUE greeting 5 11\r\nhello world\r\nEND\r\n"
    run = q(url, "get greeting missing")
    assert run.json_lines() == [{"key": "greeting", "value": "hello world", "flags": 5}]
    assert q(url, "set short v").code == 0 and value(mc, b"short") == b"v"   # KEY VALUE: flags 0, no expiry
    assert q(url, "get missing").out == ""


def test_storage_commands_and_cas(url, mc):
    raw(mc, b"set k 0 0 1\r\na\r\n")
    assert q(url, "add k x").json_lines() == [{"result": "NOT_STORED"}]
    assert q(url, "replace nokey x").json_lines() == [{"result": "NOT_STORED"}]
    assert q(url, "append k z").code == 0 and q(url, "prepend k y").code == 0
    assert value(mc, b"k") == b"yaz"
    [row] = q(url, "gets k").json_lines()
    token = row["cas"]
    raw(mc, b"set k 0 0 3\r\nnew\r\n")   # someone else writes: the token is stale
    assert q(url, f"cas k 0 0 mine {token}").json_lines() == [{"result": "EXISTS"}]
    assert value(mc, b"k") == b"new"
    [row] = q(url, "gets k").json_lines()
    assert q(url, f"cas k mine {row['cas']}").json_lines() == [{"result": "STORED"}]
    assert value(mc, b"k") == b"mine"


def test_incr_decr_touch_delete(url, mc):
    raw(mc, b"set n 0 0 2\r\n10\r\n")
    assert q(url, "incr n 5").json_lines() == [{"value": 15}]
    assert q(url, "decr n 20").json_lines() == [{"value": 0}]
    assert q(url, "incr nokey 1").json_lines() == [{"value": "NOT_FOUND"}]
    assert q(url, "touch n 100").json_lines() == [{"result": "TOUCHED"}]
    assert 0 < int(meta(mc, b"n", b"t")["t"]) <= 100
    assert q(url, "delete n").json_lines() == [{"result": "DELETED"}]
    assert value(mc, b"n") is None


def test_meta_commands(url, mc):
    assert q(url, "ms m hello T100 F7").json_lines() == [{"result": "HD"}]
    assert value(mc, b"m") == b"hello" and meta(mc, b"m", b"f")["f"] == b"7"
    [row] = q(url, "mg m v t f s k").json_lines()
    assert row["result"] == "VA" and row["value"] == "hello" and row["flags"] == 7 and row["size"] == 5
    assert row["key"] == "m" and 0 < row["ttl"] <= 100
    assert q(url, "mg nokey v").json_lines() == [{"result": "EN"}]
    assert q(url, "ma counter N0 J10 v").json_lines() == [{"result": "VA", "value": "10"}]
    assert q(url, "ma counter D5 v").json_lines() == [{"result": "VA", "value": "15"}]
    assert q(url, "md m q").out == ""                     # quiet: nothing to say on success
    assert value(mc, b"m") is None
    assert q(url, "md m").json_lines() == [{"result": "NF"}]
    assert q(url, "mn").json_lines() == [{"result": "MN"}]
    assert q(url, "me counter").json_lines()[0]["key"] == "counter"


def test_stats_version_and_metadump(url, mc):
    raw(mc, b"set a 0 0 1\r\nx\r\n")
    stats = {r["stat"]: r["value"] for r in q(url, "stats").json_lines()}
    assert stats["curr_items"] >= 1 and isinstance(stats["pid"], int)   # (flushed items count until reclaimed)
    assert any(r["stat"] == "item_size_max" for r in q(url, "stats settings").json_lines())
    assert q(url, "version").json_lines()[0]["version"].startswith("1.6")
    rows = q(url, "lru_crawler metadump all").json_lines()
    assert [r["key"] for r in rows] == ["a"] and rows[0]["exp"] == -1


def test_quoting_and_parameters(url, mc):
    assert q(url, r'set k "a b\r\nc\x00d"').code == 0
    assert value(mc, b"k") == b"a b\r\nc\x00d"
    assert q(url, "set 'it''s' v").code == 2            # a closing quote must be followed by a space
    assert q(url, "set :key :value", "-p", "key=p1", "-p", "value=two words").code == 0
    assert value(mc, b"p1") == b"two words"
    assert one_error(q(url, "get k", "-p", "unused=1"), 2).endswith("write :unused as a whole argument)")


def test_flush_all_asks_first(url, mc):
    raw(mc, b"set a 0 0 1\r\nx\r\n")
    run = q(url, "flush_all")
    assert "refusing without confirmation: flush_all: it invalidates every item on every server" in one_error(run, 2)
    assert value(mc, b"a") == b"x"
    assert q(url, "flush_all", "--yes").json_lines() == [{"result": "OK"}]
    assert value(mc, b"a") is None


# -- pipelining --------------------------------------------------------------------------------------------

def test_many_lines_are_pipelined_and_errors_keep_their_line(url, mc):
    script = "\n".join(f"set k{i} {i}" for i in range(2500)) + "\n"
    run = q(url, "-", input=script)
    assert run.json_lines() == [{"commands": 2500, "replies": 2500, "errors": 0}], run.err
    assert len(memcached_keys(mc)) == 2500 and value(mc, b"k2499") == b"2499"
    run = q(url, "-", input="set t text\n# a comment\nincr t 1\nset after 1\nget t\n")
    assert run.code == 1
    assert run.err.splitlines() == ["dbsh: line 3: memcached: cannot increment or decrement non-numeric value",
                                    "dbsh: error: 1 of 4 commands failed (lines 3); 3 replies"]
    assert value(mc, b"after") == b"1" and value(mc, b"t") == b"text"


def test_a_bad_line_anywhere_writes_nothing(url, mc):
    run = q(url, "-", input="set a 1\nset b 2\nset c 0 0\n")
    assert one_error(run, 2) == "dbsh: error: line 3: set: wrong arguments (usage: set KEY FLAGS EXPTIME VALUE " \
                                "[noreply]  (or KEY VALUE))"
    assert memcached_keys(mc) == []


def test_noreply_runs_and_the_server_says_nothing(url, mc):
    assert q(url, "set a 0 0 x noreply").json_lines() == [{"result": "sent (noreply)"}]
    assert value(mc, b"a") == b"x"
    # memcached keeps quiet even about a failure: the value is unchanged, and nothing was said
    assert q(url, "incr a 1 noreply").json_lines() == [{"result": "sent (noreply)"}]
    assert value(mc, b"a") == b"x"


# -- bad input: one line, exit 2, nothing written; no protocol injection -----------------------------------

INJECTIONS = [
    ('set "k\\r\\nset injected 0 0 1" v', "key"),
    ('get "k\\r\\nset injected 0 0 1\\r\\nx"', "key"),
    ('delete "k set injected"', "space"),
    ('mg k "v\\r\\nms injected 1"', "flag"),
    ('incr k "1\\r\\nset injected 0 0 1"', "amount"),
    ('set k 0 "0\\r\\nset injected 0 0 1" v', "expiry"),
    ('stats "items\\r\\nflush_all"', "argument"),
]


@pytest.mark.parametrize("line,what", INJECTIONS, ids=[w for _, w in INJECTIONS])
def test_no_command_hides_in_an_argument(url, mc, line, what):
    raw(mc, b"set k 0 0 1\r\n7\r\n")
    one_error(q(url, line), 2)
    assert memcached_keys(mc) == [b"k"] and value(mc, b"k") == b"7"


def test_a_value_is_data_never_a_command(url, mc):
    payload = "x\r\nset injected 0 0 1\r\ny\r\nflush_all"
    assert q(url, "set k :v", "-p", f"v={payload}").code == 0
    assert dbsh("-u", url, "insert", "docs", json.dumps({"id": 1, "note": payload})).code == 0
    assert value(mc, b"k") == payload.encode() and doc(mc, "docs:1") == {"id": 1, "note": payload}
    assert sorted(memcached_keys(mc)) == [b"docs:1", b"k"]


def test_a_hostile_id_or_collection_is_refused_before_writing(url, mc):
    for args in (["docs", json.dumps({"id": "a\r\nset injected 0 0 1\r\nx"})],
                 ["docs", json.dumps({"id": "has space"})],
                 ["docs", json.dumps({"id": "a:b"})],
                 ["docs", json.dumps({"id": 1}), json.dumps({"id": "__seq__"})],
                 ["do cs", json.dumps({"id": 1})],
                 ["docs\r\nflush_all", json.dumps({"id": 1})],
                 ["docs:", json.dumps({"id": 1})],
                 ["a::b", json.dumps({"id": 1})],
                 ["docs", json.dumps({"id": "k" * 250})]):
        one_error(dbsh("-u", url, "insert", *args), 2)
    assert memcached_keys(mc) == []


def test_long_keys_and_big_values(url, mc):
    key = "k" * 251
    assert "memcached keys are at most 250 bytes" in one_error(q(url, f"set {key} v"), 2)
    assert q(url, f"set {'k' * 250} v").code == 0
    limit = int(next(r["value"] for r in q(url, "stats settings").json_lines() if r["stat"] == "item_size_max"))
    big = "x" * limit
    assert "over the server's item size limit" in one_error(q(url, "set big :v", "-p", f"v={big}"), 2)
    run = dbsh("-u", url, "insert", "docs", json.dumps({"id": 1}), json.dumps({"id": 2, "blob": big}))
    assert "document 2:" in one_error(run, 2) and "over the server's item size limit" in run.err
    assert memcached_keys(mc) == [("k" * 250).encode()]


def test_bad_numbers_and_unknown_commands(url, mc):
    raw(mc, b"set t 0 0 4\r\ntext\r\n")
    assert "the amount must be a non-negative integer, got 'x'" in one_error(q(url, "incr t x"), 2)
    assert "cannot increment or decrement non-numeric value" in one_error(q(url, "incr t 1"), 2)
    assert "flags must be a non-negative integer" in one_error(q(url, "set t -1 0 v"), 2)
    assert "unknown Memcached command 'frobnicate'" in one_error(q(url, "frobnicate t"), 2)
    assert "dbsh does not shut servers down" in one_error(q(url, "shutdown"), 2)
    assert value(mc, b"t") == b"text"


# -- the uniform verbs ---------------------------------------------------------------------------------------

def test_insert_find_update_delete_seen_on_the_wire(url, mc):
    run = dbsh("-u", url, "insert", "users", '{"id": 1, "name": "Ann", "age": 34}',
               '{"id": "bob", "name": "Bob", "age": 20}', '{"name": "Cy", "tags": ["a"]}')
    # Cy has no id: the counter's first one (1) is taken, so it goes round again and gets 2
    assert run.json_lines() == [{"action": "inserted", "collection": "users", "count": 3, "ids": [1, "bob", 2]}]
    assert doc(mc, "users:1") == {"id": 1, "name": "Ann", "age": 34}
    assert doc(mc, "users:bob") == {"id": "bob", "name": "Bob", "age": 20}
    assert doc(mc, "users:2") == {"id": 2, "name": "Cy", "tags": ["a"]}
    assert sorted(memcached_keys(mc)) == [b"users:1", b"users:2", b"users:__seq__", b"users:bob"]
    run = dbsh("-u", url, "find", "users", '{"age": {"$gt": 25}}')
    assert run.json_lines() == [{"id": 1, "name": "Ann", "age": 34}]
    assert run.err == "dbsh: scanned 3 keys of users:<id> (lru_crawler metadump, filtered client-side)\n"
    run = dbsh("-u", url, "update", "users", '{"name": "Bob"}', '{"$inc": {"age": 1}, "$set": {"city": "Oslo"}}')
    assert run.json_lines()[0]["count"] == 1
    assert doc(mc, "users:bob") == {"id": "bob", "name": "Bob", "age": 21, "city": "Oslo"}
    assert dbsh("-u", url, "count", "users").json_lines() == [{"count": 3}]
    run = dbsh("-u", url, "delete", "users", '{"id": 1}')
    assert run.json_lines()[0]["count"] == 1 and run.err == "dbsh: read 1 key of users:<id> (the filter pins the id)\n"
    assert value(mc, b"users:1") is None and doc(mc, "users:bob") is not None


def test_insert_leaves_an_existing_key_unchanged_and_says_so(url, mc):
    raw(mc, b"set users:2 0 0 5\r\nolder\r\n")
    run = dbsh("-u", url, "insert", "users", '{"id": 1}', '{"id": 2}', '{"id": 3}')
    assert "inserted 2 documents into users; 1 already existed and were left unchanged: users:2" in one_error(run, 1)
    assert value(mc, b"users:2") == b"older" and doc(mc, "users:3") == {"id": 3}


def test_values_that_are_not_documents_are_skipped_and_counted(url, mc):
    raw(mc, b"set users:9 0 0 5\r\nhello\r\n")
    dbsh("-u", url, "insert", "users", '{"id": 1, "name": "Ann"}')
    run = dbsh("-u", url, "find", "users")
    assert run.json_lines() == [{"id": 1, "name": "Ann"}]
    assert "1 held no JSON document" in run.err


def test_collections_are_unambiguous(url, mc):
    dbsh("-u", url, "insert", "users", '{"id": 1, "name": "Ann"}', '{"id": 2, "name": "Bob"}')
    dbsh("-u", url, "insert", "users:archive", '{"id": 1, "name": "Old"}')
    assert sorted(r["id"] for r in dbsh("-u", url, "find", "users").json_lines()) == [1, 2]
    assert dbsh("-u", url, "find", "users:archive").json_lines() == [{"id": 1, "name": "Old"}]
    assert dbsh("-u", url, "collections").json_lines() == [{"name": "users"}, {"name": "users:archive"}]
    assert dbsh("-u", url, "delete", "users", "--all").json_lines()[0]["count"] == 2
    assert doc(mc, "users:archive:1") == {"id": 1, "name": "Old"} and value(mc, b"users:1") is None
    assert "holds a colon" in one_error(dbsh("-u", url, "insert", "users", '{"id": "archive:2"}'), 2)


def test_ttl_on_insert_and_kept_by_update(url, mc):
    run = dbsh("-u", url, "insert", "sessions", '{"id": 1, "user": "ann"}', "--ttl", "600")
    assert run.json_lines()[0]["ttl"] == 600
    assert 0 < int(meta(mc, b"sessions:1", b"t")["t"]) <= 600
    dbsh("-u", url, "insert", "sessions", '{"id": 2, "user": "bob"}')
    assert meta(mc, b"sessions:2", b"t")["t"] == b"-1"
    assert dbsh("-u", url, "update", "sessions", "{}", '{"$set": {"seen": true}}').json_lines()[0]["count"] == 2
    assert 0 < int(meta(mc, b"sessions:1", b"t")["t"]) <= 600 and meta(mc, b"sessions:2", b"t")["t"] == b"-1"
    assert doc(mc, "sessions:1") == {"id": 1, "user": "ann", "seen": True}
    assert "--ttl is not supported" in one_error(dbsh("-u", "sqlite:///x.db", "insert", "t", "{}", "--ttl", "5"), 2)


def test_update_does_not_lose_a_write_made_between_its_read_and_its_write(url, mc):
    """A writer slips in after dbsh read the document: dbsh's cas write fails, it reads again, matches
    again and applies its change to the new document (both changes are kept)."""
    from dbsh.context import open_session

    dbsh("-u", url, "insert", "acct", '{"id": 1, "balance": 10, "owner": "ann"}')
    session = open_session(resolve(url))
    fetch = session._fetch
    slipped = []

    def fetch_then_someone_writes(node, keys):
        found = fetch(node, keys)
        if not slipped:
            slipped.append(True)
            data = b'{"id":1,"balance":100,"owner":"ann","note":"deposit"}'
            assert raw(mc, b"set acct:1 0 0 %d\r\n%b\r\n" % (len(data), data)) == b"STORED\r\n"
        return found

    session._fetch = fetch_then_someone_writes
    try:
        result = session.update("acct", Filter({"owner": "ann"}), Update({"$inc": {"balance": 5}}))
    finally:
        session.close()
    assert result.count == 1
    assert doc(mc, "acct:1") == {"id": 1, "balance": 105, "owner": "ann", "note": "deposit"}
    stats = {r["stat"]: r["value"] for r in q(url, "stats").json_lines()}
    assert stats["cas_badval"] >= 1


def test_concurrent_updaters_lose_no_increment(url, mc):
    """Six sessions increment the same documents at once. On the key the filter pins, every increment lands;
    through a scan, every update that said it landed did (a scan may not see a document that another
    client holds at that instant: the LRU crawler skips items in use, see the README)."""
    from dbsh.context import open_session

    dbsh("-u", url, "insert", "counters", '{"id": 1, "n": 0}', '{"id": 2, "m": 0}')
    errors, landed = [], []

    def worker():
        session = open_session(resolve(url))
        try:
            for _ in range(25):
                session.update("counters", Filter({"id": 1}), Update({"$inc": {"n": 1}}))
                landed.append(session.update("counters", Filter({"m": {"$gte": 0}}), Update({"$inc": {"m": 1}})).count)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            session.close()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert doc(mc, "counters:1")["n"] == 6 * 25
    assert doc(mc, "counters:2")["m"] == sum(landed) and sum(landed) > 0
    stats = {r["stat"]: r["value"] for r in q(url, "stats").json_lines()}
    assert stats["cas_misses"] == 0


def test_describe_explain_and_collections(url, mc):
    dbsh("-u", url, "insert", "users", '{"id": 1, "name": "Ann", "age": 34}', '{"id": 2, "name": "Bob"}')
    run = dbsh("-u", url, "describe", "users")
    rows = [r for r in run.json_lines() if "field" in r]
    assert {r["field"]: (r["type"], r["count"]) for r in rows} == {"id": ("number", 2), "name": ("string", 2),
                                                                   "age": ("number", 1)}
    plan = dbsh("-u", url, "explain", "users", '{"age": 1}').json_lines()[0]["plan"]
    assert plan.startswith("lru_crawler metadump on 1 server(s)")
    assert dbsh("-u", url, "explain", "users", '{"id": 2}').json_lines()[0]["plan"].startswith("mg users:2")
    assert one_error(dbsh("-u", url, "describe", "nothing"), 2) == "dbsh: error: no keys match nothing:<id>"


def test_read_only_refuses_every_write(url, mc, tmp_path):
    from dbsh import config

    config.save_profile("cache", url, readonly=True)
    raw(mc, b"set a 0 0 1\r\nx\r\n")
    assert dbsh("-c", "cache", "query", "get a").json_lines()[0]["value"] == "x"
    assert dbsh("-c", "cache", "query", "mg a v").code == 0
    for args in (["query", "set a y"], ["query", "get a\nset b 1"], ["query", "mg a v T30"], ["query", "gat 10 a"],
                 ["query", "stats reset"], ["query", "incr a 1"], ["query", "ma a"], ["query", "flush_all", "--yes"],
                 ["insert", "users", '{"id": 1}'], ["update", "users", "{}", '{"$set": {"a": 1}}'],
                 ["delete", "users", "--all"]):
        assert "read-only connection" in one_error(dbsh("-c", "cache", *args), 2), args
    assert memcached_keys(mc) == [b"a"] and value(mc, b"a") == b"x"


def test_language_rules():
    writes = language.writes
    assert not any(writes(t) for t in ("get a", "gets a b", "mg a v c", "me a", "mn", "stats", "stats items",
                                       "stats detail dump", "version", "lru_crawler metadump all", "# note"))
    assert all(writes(t) for t in ("set a 1", "add a 1", "replace a 1", "append a 1", "prepend a 1", "cas a 1 2",
                                   "incr a 1", "decr a 1", "delete a", "touch a 1", "gat 1 a", "gats 1 a",
                                   "ms a v", "md a", "ma a", "mg a v N30", "mg a T5", "flush_all", "verbosity 1",
                                   "cache_memlimit 64", "stats reset", "stats detail on", "lru_crawler enable",
                                   "whatever", "get a\ndelete a"))
    assert language.destructive("get a") is None
    assert language.destructive("flush_all") == "it invalidates every item on every server"
    assert language.destructive("get a\nFLUSH_ALL 10") == "line 2: it invalidates every item on every server"
    assert [w for w, _, _ in language.complete("ge", [])] == ["get", "gets"]
    assert [w for w, _, _ in language.complete("get us", ["users:1", "users:2", "x"])] == ["users:1", "users:2"]
    assert language.complete("set users:1 us", ["users:1"]) == []          # a value, not a key
    assert [w for w, _, _ in language.complete("gat 10 u", ["u1"])] == ["u1"]


# -- connecting ----------------------------------------------------------------------------------------------

def test_unreachable_port_is_exit_3():
    run = dbsh("-u", f"memcached://127.0.0.1:{free_port()}", "query", "version")
    assert "cannot connect to memcached at 127.0.0.1:" in one_error(run, 3)


def test_bad_urls_are_exit_2():
    assert "names servers only" in one_error(dbsh("-u", "memcached://127.0.0.1:1/db", "query", "version"), 2)
    assert "unknown option 'bogus'" in one_error(dbsh("-u", "memcached://127.0.0.1:1?bogus=1", "query", "x"), 2)
    assert "invalid port" in one_error(dbsh("-u", "memcached://127.0.0.1:x", "query", "version"), 2)


def test_migrate_refuses_a_cache(url):
    run = dbsh("-u", url, "migrate", "upgrade")
    assert one_error(run, 2) == "dbsh: error: dbsh migrate cannot run on Memcached: a cache has no schema to migrate"


def test_connect_report(url):
    run = dbsh("-u", url, "connect", "-f", "json")
    [info] = json.loads(run.out)
    assert info["backend"] == "Memcached" and info["version"].startswith("1.6")


@pytest.fixture(scope="module")
def three():
    with Memcached(3) as server:
        yield server


def test_three_servers_share_the_keys_as_pymemcache_does(three):
    from pymemcache.client.hash import HashClient

    url = three.url
    for address in three.addresses:
        raw(address, b"flush_all\r\n")
    docs = [json.dumps({"id": i, "n": i}) for i in range(60)]
    assert dbsh("-u", url, "insert", "spread", *docs).json_lines()[0]["count"] == 60
    per_server = [set(memcached_keys(a)) for a in three.addresses]
    assert all(keys for keys in per_server) and sum(len(k) for k in per_server) == 60
    client = HashClient(three.addresses)
    try:
        for i in range(60):   # each document where pymemcache's HashClient looks for it
            assert json.loads(client.get(f"spread:{i}")) == {"id": i, "n": i}
    finally:
        client.close()
    assert dbsh("-u", url, "count", "spread").json_lines() == [{"count": 60}]
    run = dbsh("-u", url, "find", "spread", '{"n": {"$lt": 3}}', "--sort", "n")
    assert run.json_lines() == [{"id": 0, "n": 0}, {"id": 1, "n": 1}, {"id": 2, "n": 2}]
    assert "on 3 servers" in run.err
    rows = q(url, "get spread:5 spread:1 spread:40 spread:7").json_lines()
    assert [r["key"] for r in rows] == ["spread:5", "spread:1", "spread:40", "spread:7"]
    assert len({r["server"] for r in q(url, "version").json_lines()}) == 3
    assert dbsh("-u", url, "update", "spread", '{"n": {"$gte": 50}}', '{"$inc": {"n": 100}}').json_lines()[0][
        "count"] == 10
    assert json.loads(client.get("spread:55")) == {"id": 55, "n": 155}
    assert dbsh("-u", url, "delete", "spread", "--all").json_lines()[0]["count"] == 60
    assert q(url, "flush_all", "--yes").json_lines() == [{"server": f"{h}:{p}", "result": "OK"}
                                                         for h, p in three.addresses]


def test_unix_socket():
    with Memcached(unix=True) as server:
        path = server.addresses[0]
        assert server.url == f"memcached+unix://{path}"
        assert dbsh("-u", server.url, "insert", "users", '{"id": 1, "name": "Ann"}').code == 0
        assert doc(path, "users:1") == {"id": 1, "name": "Ann"}
        assert dbsh("-u", f"memcached://{path}", "find", "users").json_lines() == [{"id": 1, "name": "Ann"}]
        run = dbsh("copy", f"{server.url}/users", f"{server.url}/people")
        assert run.code == 0 and doc(path, "people:1") == {"id": 1, "name": "Ann"}


def test_ascii_authentication():
    with Memcached(auth=("dbsh", "s3cret-pw")) as server:
        host, port = server.addresses[0]
        assert dbsh("-u", server.url, "query", "set a 0 0 x").code == 0
        login = b"set auth 0 0 14\r\ndbsh s3cret-pw\r\n"
        assert memcached_text((host, port), login + b"mg a v u\r\n", until=b"x\r\n").endswith(b"VA 1\r\nx\r\n")
        run = dbsh("-u", f"memcached://dbsh:wrong-pw@{host}:{port}", "query", "get a")
        assert "cannot authenticate to memcached at" in one_error(run, 3) and "wrong-pw" not in run.err
        run = dbsh("-u", f"memcached://dbsh@{host}:{port}", "query", "get a", env={"DBSH_PASSWORD": "s3cret-pw"})
        assert run.json_lines()[0]["value"] == "x"
        run = dbsh("-u", f"memcached://{host}:{port}", "query", "get a")
        assert "needs a user name and password" in one_error(run, 3)


def test_a_sasl_server_is_a_clear_connect_error():
    """Debian's memcached has SASL (-S), but then it speaks only the binary protocol; pymemcache and dbsh
    speak the text protocol, whose login is ASCII authentication (-Y, above)."""
    with Memcached(sasl=("dbsh", "s3cret-pw")) as server:
        run = dbsh("-u", server.url, "query", "version")
        message = one_error(run, 3)
        assert "binary protocol" in message and "s3cret-pw" not in run.err


def test_a_restarted_server_is_reconnected_on_the_next_command():
    import io

    from dbsh.repl.app import Shell

    port = free_port()
    with Memcached(port=port) as first:
        shell = Shell(resolve(first.url), settings={}, out=io.StringIO(), err=io.StringIO(), interactive=False)
        assert shell.run_statement("set a 0 0 x") == 0
    try:
        with Memcached(port=port) as second:
            assert shell.run_statement("get a") == 3          # the connection went with the first server
            assert shell.run_statement("set b 0 0 y") == 0    # ... and the next command makes a new one
            assert value(second.addresses[0], b"b") == b"y"
    finally:
        shell.close()
    assert shell.err.getvalue().startswith(f"dbsh: error: lost the connection to memcached at 127.0.0.1:{port}")
    assert len(shell.err.getvalue().splitlines()) == 1


# -- bench, import, copy -------------------------------------------------------------------------------------

def test_bench_loads_records_and_runs_every_workload(url, mc):
    run = dbsh("-u", url, "bench", "-f", "json", "--workload", "a", "--records", "50", "--operations", "100",
               "--load-only", "--seed", "1")
    assert run.code == 0, run.err
    keys = [k for k in memcached_keys(mc) if k.startswith(b"usertable:")]
    assert len(keys) == 50
    record = json.loads(value(mc, keys[0]))
    assert sorted(record) == [f"field{i}" for i in range(10)]
    assert dbsh("-u", url, "count", "usertable").json_lines() == [{"count": 50}]
    for workload in "abcdef":   # each on a fresh table (--clean): inserts are adds, as in YCSB's binding
        run = dbsh("-u", url, "bench", "-f", "json", "--workload", workload, "--records", "40", "--operations", "150",
                   "--clean", "--seed", "2")
        assert run.code == 0, (workload, run.err)
        ops = {r["operation"]: r for r in json.loads(run.out) if r["phase"] == "run"}
        assert ops["ALL"]["count"] == 150 and all(r["errors"] == 0 for r in ops.values()), ops
        if workload == "e":
            assert ops["SCAN"]["count"] > 0
    inserted = ops["ALL"]["count"] - ops["READ"]["count"] - ops["READ-MODIFY-WRITE"]["count"]
    assert inserted == 0 and len([k for k in memcached_keys(mc) if k.startswith(b"usertable:")]) == 40


def test_insert_file_in_batches_and_errors_file(url, mc, tmp_path):
    path = tmp_path / "people.jsonl"
    path.write_text("".join(json.dumps({"id": i, "name": f"n{i}"}) + "\n" for i in range(1, 1201)))
    raw(mc, b"set people:7 0 0 3\r\nold\r\n")
    run = dbsh("-u", url, "insert", "people", "--file", str(path), "--batch", "100", "--errors",
               str(tmp_path / "bad.jsonl"))
    assert run.code == 0, run.err
    [row] = run.json_lines()
    assert (row["count"], row["errors"]) == (1199, 1)
    [bad] = [json.loads(line) for line in (tmp_path / "bad.jsonl").read_text().splitlines()]
    assert bad["line"] == 7 and "people:7 already exists" in bad["error"]
    assert value(mc, b"people:7") == b"old" and doc(mc, "people:1200") == {"id": 1200, "name": "n1200"}
    assert len(memcached_keys(mc)) == 1200


def test_copy_to_and_from_sqlite(url, mc, sqlite_url):
    rows = [{"id": i, "name": f"n{i}", "score": i / 2} for i in range(1, 21)]
    assert dbsh("-u", sqlite_url, "insert", "src", *map(json.dumps, rows), "--create").code == 0
    run = dbsh("copy", f"{sqlite_url}/src", f"{url}/dst", "--batch", "6")
    assert run.json_lines() == [{"action": "copied", "collection": "dst", "count": 20}], run.err
    assert doc(mc, "dst:20") == {"id": 20, "name": "n20", "score": 10.0}
    run = dbsh("copy", f"{url}/dst", f"{sqlite_url}/back", "--create", "--where", '{"score": {"$gt": 5}}')
    assert run.json_lines()[0]["count"] == 10, run.err
    conn = sqlite3.connect(sqlite_url.split(":///", 1)[1])
    try:
        assert conn.execute("select id, name, score from back order by id").fetchall() == \
            [(i, f"n{i}", i / 2) for i in range(11, 21)]
    finally:
        conn.close()


# -- the shell -----------------------------------------------------------------------------------------------

def test_shell_completes_commands_and_key_names_and_asks_before_flush_all(url, mc):
    from tests.test_repl import Typed
    from tests.test_repl_servers import completions, done, open_shell

    dbsh("-u", url, "insert", "users", '{"id": 1, "name": "Ann"}', '{"id": 2, "name": "Bob"}')
    shell = open_shell(url)
    try:
        assert completions(shell, "ge") == ["get", "gets"]
        assert completions(shell, "FLU") == ["FLUSH_ALL"]
        assert completions(shell, "get users:") == ["users:1", "users:2"]
        assert completions(shell, '\\find users {"na') == ["name"]
        assert "users" in completions(shell, "\\dt ") or completions(shell, "\\find us") == ["users"]
    finally:
        done(shell)
    run = Typed(url, "get users:1\rflush_all\rn\r\\dt\r\\q\r")
    assert "Ann" in run.output and "users" in run.output
    assert run.errors.splitlines() == ["not run"]
    assert doc(mc, "users:1") == {"id": 1, "name": "Ann"}
    run = Typed(url, "flush_all\ry\r\\q\r")
    assert value(mc, b"users:1") is None
