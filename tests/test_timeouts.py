"""No hangs: a port that never answers, or where another protocol listens, is exit 3 within
--connect-timeout (a one-line error), on every backend this branch owns (Redis, MongoDB, and the SQL
migrations' own connections). Each run is a real process under a generous limit, so a hang fails
the test instead of stopping the suite; nothing asserts on time."""

from __future__ import annotations

import pytest

from tests import dbshtest
from tests.dbshtest import dbsh_process, port_of


@pytest.fixture
def silent_port():
    """A TCP port that accepts connections and never says a word."""
    with dbshtest.silent_port() as port:
        yield port


def gives_up(run) -> None:
    assert run.code == 3, (run.code, run.err)
    assert run.err.startswith("dbsh: error: cannot connect to ") and len(run.err.strip().splitlines()) == 1, run.err


@pytest.mark.parametrize("url, command", [
    ("redis://127.0.0.1:{port}/0", ["query", "PING"]),
    ("redis://127.0.0.1:{port}/0?cluster=true", ["query", "PING"]),
    ("mongodb://127.0.0.1:{port}/x", ["find", "t"]),
    ("postgresql://u@127.0.0.1:{port}/x", ["migrate", "current"]),
    ("mysql://u@127.0.0.1:{port}/x", ["migrate", "current"]),
])
def test_a_port_that_never_answers_is_exit_3(silent_port, url, command, tmp_path):
    run = dbsh_process("-u", url.format(port=silent_port), "--connect-timeout", "2", *command, timeout=120)
    gives_up(run)


@pytest.mark.redis
@pytest.mark.parametrize("url, command", [
    ("mongodb://127.0.0.1:{port}/x", ["find", "t"]),
    ("postgresql://u@127.0.0.1:{port}/x", ["migrate", "current"]),
    ("mysql://u@127.0.0.1:{port}/x", ["migrate", "current"]),
])
def test_a_redis_port_for_another_protocol_is_exit_3(redis_url, url, command):
    run = dbsh_process("-u", url.format(port=port_of(redis_url)), "--connect-timeout", "2", *command, timeout=120)
    assert run.code == 3, (run.code, run.err)
    assert run.err.startswith("dbsh: error: ") and len(run.err.strip().splitlines()) == 1, run.err


@pytest.mark.parametrize("other", ["postgres_url", "mariadb_url", "mongo_url"])
def test_redis_at_a_port_of_another_protocol_is_exit_3(request, other):
    url = request.getfixturevalue(other)
    run = dbsh_process("-u", f"redis://127.0.0.1:{port_of(url)}/0", "--connect-timeout", "2", "query", "PING",
                       timeout=120)
    assert run.code == 3, (run.code, run.err)
    assert run.err.startswith("dbsh: error: ") and len(run.err.strip().splitlines()) == 1, run.err


@pytest.mark.redis
def test_the_timeout_bounds_only_connecting_not_a_slow_reply(redis_url):
    # a blocking command waits longer than the connect timeout and still answers
    run = dbsh_process("-u", redis_url, "--connect-timeout", "1", "query", "BLPOP never:there 2", timeout=120)
    assert run.code == 0, run.err
    assert run.out.strip() == '{"value":null}'


def test_connect_timeout_must_be_a_positive_number():
    run = dbsh_process("--connect-timeout", "zero", "count", "t", timeout=120)
    assert run.code == 2 and "--connect-timeout expects a number" in run.err, run.err
