"""Fuzzing kept in the repo: Hypothesis builds hostile command lines (JSON of every shape and depth, lone
surrogates, huge and odd numbers, hostile names, broken options) and runs them through the CLI entry point
(dbsh.cli.run, in-process) on every backend. Each must end with a documented exit code and a one-line
message, never an internal error (exit 1 naming a Python exception); a command refused as bad input
(exit 2), and any write on a read-only profile, must leave the database as it was (read with its own
client).

Examples are bounded and derandomized, so CI runs the same few hundred in well under a minute a backend;
DBSH_FUZZ_EXAMPLES=2000 runs more (with a random seed) on demand."""

from __future__ import annotations

import json
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.dbshtest import dbsh
from tests.native import KINDS, fixture_of, snapshot
from tests.test_copy import fresh

EXAMPLES = int(os.environ.get("DBSH_FUZZ_EXAMPLES", "15"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize="DBSH_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
INTERNAL = re.compile(r"dbsh: error: [A-Za-z_.]*(Error|Exception|Warning|Exit)\b.*\(--debug shows the traceback\)")

names = st.one_of(
    st.sampled_from(["fz", "users:archive", "a b", "x%y", "a`b", "Ω", "__seq__", "db.x", "$x", "x" * 300, "-", "--"]),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=12),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=10))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                           st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                           max_leaves=8)
operators = st.sampled_from(["$gt", "$lt", "$in", "$nin", "$ne", "$exists", "$regex", "$not", "$and", "$or", "$nor",
                             "$set", "$unset", "$inc", "$where", "$bogus", "$options", "$elemMatch"])
hostile_json = st.one_of(
    json_values.map(json.dumps),
    st.builds(lambda op, v: json.dumps({"a": {op: v}}), operators, json_values),
    st.builds(lambda op, v: json.dumps({op: v}), operators, json_values),
    st.sampled_from(['{"a": ' + "[" * 1000 + "]" * 1000 + "}", '{"a": "\\ud800"}', '{"a": 1e400}', '{"a": NaN}',
                     '{"a": -Infinity}', "{", "", "[]", "null", '{"id": {"$oid": "zz"}}', '{"a": {"$date": "x"}}',
                     '{"a": ' + "1" * 400 + "}", '{"":1}', '{"a.b": 1}', '{"$set": {}}', '{"_id": []}']),
    st.text(max_size=30),
)
options = st.lists(st.sampled_from(["--limit", "--skip", "--sort", "--fields", "--one", "--all", "--upsert",
                                    "--batch", "--create", "-p", "--format", "--ttl", "--resume", "-1", "x", "0",
                                    "-name,", "a,,b", "json", "csv", "table", "99999999999999999999"]),
                   max_size=3)


@st.composite
def command_lines(draw, collection: str) -> list[str]:
    verb = draw(st.sampled_from(["insert", "find", "count", "update", "delete", "explain", "describe", "query"]))
    name = draw(st.one_of(st.just(collection), names))
    if verb == "query":
        text = draw(st.one_of(st.text(max_size=40), hostile_json, st.sampled_from([
            "select 1", "ECHO x\nFLUSHDB", "db.fz.find({})", "MATCH (n) RETURN count(n)", "GET /_all_dbs",
            "select :x", "db.fz.aggregate([{$out: 'o'}])", "DEL fz:1", "drop table fz"])))
        return ["query", text, *draw(options)]
    if verb == "describe":
        return ["describe", name]
    first = draw(hostile_json)
    if verb in ("update",):
        return [verb, name, first, draw(hostile_json), *draw(options)]
    return [verb, name, first, *draw(options)]


@pytest.mark.parametrize("kind", KINDS)
def test_no_command_line_ends_in_an_internal_error(request, kind):
    url = request.getfixturevalue(fixture_of(kind))
    collection = fresh("Fz" if kind == "neo4j" else "fz")
    seeded = dbsh("-u", url, "insert", collection, '{"id": 1, "name": "Ann", "age": 34}',
                  '{"id": 2, "name": "Bob", "tags": ["x"]}', "--create")
    assert seeded.code == 0, seeded.err

    @FUZZ
    @given(args=command_lines(collection))
    def check(args):
        before = snapshot(kind, url, collection)
        run = dbsh("-u", url, "--connect-timeout", "5", *args)
        assert run.code in (0, 1, 2, 3), (args, run.code, run.err)
        assert not INTERNAL.search(run.err), (args, run.err)
        if run.code:
            errors = [line for line in run.err.splitlines() if line.startswith("dbsh: error: ")]
            assert len(errors) == 1, (args, run.err)
        if run.code == 2 and args[0] != "query":
            assert snapshot(kind, url, collection) == before, (args, run.err)

    check()


@pytest.mark.parametrize("kind", KINDS)
def test_no_write_changes_a_readonly_profile(request, kind):
    from tests.test_readonly import native_writes, password_env

    url = request.getfixturevalue(fixture_of(kind))
    collection = fresh("Fz" if kind == "neo4j" else "fz")
    assert dbsh("-u", url, "insert", collection, '{"id": 1, "name": "Ann"}', "--create").code == 0
    assert dbsh("connect", url, "--save", "ro", "--readonly").code == 0
    env = password_env(url)
    writes = native_writes(kind, collection)

    @FUZZ
    @given(args=st.one_of(
        st.builds(lambda d: ["insert", collection, d], hostile_json),
        st.builds(lambda f, u: ["update", collection, f, u], hostile_json, hostile_json),
        st.builds(lambda f: ["delete", collection, f, "--all"], hostile_json),
        st.builds(lambda a, b: ["query", f"{a}\n{b}" if kind in ("redis", "mongo", "couchdb") else f"{a}; {b}"],
                  st.sampled_from(writes + ["select 1", "PING", "GET /"]), st.sampled_from(writes)),
    ))
    def check(args):
        before = snapshot(kind, url, collection)
        run = dbsh("-c", "ro", "--yes", *args, env=env)
        assert not INTERNAL.search(run.err), (args, run.err)
        assert run.code in (1, 2), (args, run.code, run.err)
        assert snapshot(kind, url, collection) == before, (args, run.err)

    check()


