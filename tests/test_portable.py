"""The code paths macOS and Windows take, run here on Linux by making this system look like theirs
(monkeypatched sys.platform, or the POSIX-only call removed), against real servers."""

import json
import os
import signal
import socket
import sqlite3
import sys
from urllib.parse import urlsplit

import pytest

from tests.dbshtest import dbsh


def test_shell_cancel_wakeup_needs_no_os_set_blocking(monkeypatch):
    """The shell's Ctrl-C watcher hears signals through a socket pair: Windows takes only a socket as
    the wakeup fd, and has os.set_blocking for pipes only from Python 3.12."""
    from dbsh.repl.app import signal_wakeup

    monkeypatch.delattr(os, "set_blocking")
    caught = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: caught.append(signum))
    try:
        with signal_wakeup() as (reader, _):
            os.kill(os.getpid(), signal.SIGUSR1)
            assert signal.SIGUSR1 in reader.recv(64)
        assert signal.set_wakeup_fd(-1) == -1     # the previous wakeup fd (none) is back
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert caught == [signal.SIGUSR1]


@pytest.mark.parametrize("platform, method", [("linux", "fork"), ("darwin", "spawn"), ("win32", "spawn")])
def test_bench_workers_fork_only_on_linux(platform, method, monkeypatch):
    from dbsh.bench import runner

    monkeypatch.setattr(sys, "platform", platform)
    assert runner.start_method() == method


def test_bench_with_spawned_workers(sqlite_url, monkeypatch):
    """What macOS and Windows run: workers started with spawn, the target, workload and phase pickled
    to them (sys.platform itself cannot be faked here: multiprocessing reads it to spawn)."""
    from dbsh.bench import runner

    monkeypatch.setattr(runner, "start_method", lambda: "spawn")
    run = dbsh("-u", sqlite_url, "bench", "-w", "a", "--records", "30", "--operations", "40", "-t", "2", "-f", "json",
               "--seed", "3")
    assert run.code == 0, run.err
    rows = {(r["phase"], r["operation"]): r for r in json.loads(run.out)}
    assert (rows[("load", "INSERT")]["count"], rows[("load", "INSERT")]["errors"]) == (30, 0)
    assert (rows[("run", "ALL")]["count"], rows[("run", "ALL")]["errors"]) == (40, 0)
    assert rows[("run", "ALL")]["threads"] == 2
    with sqlite3.connect(urlsplit(sqlite_url).path) as conn:
        assert conn.execute("select count(*) from usertable").fetchone() == (30,)


def test_nosql_migrate_without_os_uname(redis_url, tmp_path, monkeypatch):
    """Windows has no os.uname(): the migration lock's owner names the host through socket."""
    import redis

    url = urlsplit(redis_url)._replace(path="/13").geturl()
    client = redis.Redis.from_url(url)
    client.flushdb()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delattr(os, "uname")
    assert dbsh("-u", url, "migrate", "init").code == 0
    run = dbsh("-u", url, "migrate", "upgrade", "head", "-f", "jsonl")
    assert run.code == 0, run.err
    [applied] = run.json_lines()
    records = {k.decode(): json.loads(v) for k, v in client.hgetall("{dbsh:migrate}:versions").items()}
    assert records[applied["revision"]]["state"] == "applied"
    assert f" on {socket.gethostname()} (" in records[applied["revision"]]["owner"]
    client.flushdb()
    client.close()
