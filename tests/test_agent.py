"""The warm agent (dbsh agent start): the same output and exit codes as without it, Ctrl-C, idle
exit, another user refused, a read-only profile read-only through it, a thin client. Every test
starts its own agent in its own runtime dir (conftest's isolated XDG_RUNTIME_DIR)."""

from __future__ import annotations

import json
import os
import pty
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from dbsh import verbs
from dbsh.agent import client, paths

DB = 11   # a Redis database of its own


def run(*args, env, input=None, agent=True):
    """`dbsh ARGS` as a user runs it: a process (the bin/dbsh launcher's code), through the agent
    when one runs, or in-process with DBSH_NO_AGENT=1."""
    env = {**env, "DBSH_NO_AGENT": "" if agent else "1"}
    proc = subprocess.run([sys.executable, "-m", "dbsh", *args], input=input, env=env, capture_output=True,
                          text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def status(env) -> dict:
    code, out, err = run("agent", "status", env=env)
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def agent_env(dbsh_env):
    env = dict(dbsh_env)
    code, _, err = run("agent", "start", "--idle-timeout", "120", env=env)
    assert code == 0 and "agent started" in err, err
    yield env
    run("agent", "stop", env=env)


@pytest.fixture
def rurl(redis_url):
    import redis

    own = urlsplit(redis_url)._replace(path=f"/{DB}").geturl()
    client = redis.Redis.from_url(own)
    client.flushdb()
    yield own
    client.close()


def test_output_and_exit_codes_are_the_same_with_and_without_the_agent(agent_env, rurl, postgres_url, tmp_path):
    sqlite = f"sqlite:///{tmp_path}/a.db"
    docs = "".join(json.dumps({"id": i, "name": f"n{i}", "score": i / 3}) + "\n" for i in range(3000))
    run("-u", sqlite, "insert", "people", "-", "--create", input=docs, env=agent_env, agent=False)
    closed = "redis://127.0.0.1:1/0"
    cases = [
        (["-u", rurl, "query", "SET name ann"], None),
        (["-u", rurl, "query", "GET name"], None),
        (["-u", rurl, "query", "NOSUCHCOMMAND x"], None),                      # exit 1
        (["-u", rurl, "find"], None),                                          # exit 2: usage
        (["-u", closed, "query", "GET name"], None),                           # exit 3
        (["-u", rurl, "insert", "users", "-"], '{"id": 1, "a": "x"}\n{"id": 2, "a": "y"}\n'),
        (["-u", rurl, "find", "users", "--format", "csv", "--sort", "id"], None),
        (["-u", sqlite, "find", "people", '{"score": {"$gt": 100}}', "--format", "json"], None),
        (["-u", sqlite, "find", "people", "--format", "jsonl"], None),         # 3000 rows: a large output
        (["-u", sqlite, "count", "people"], None),
        (["-u", postgres_url, "query", "select 1 as one, 'x' as t"], None),
        (["-u", postgres_url, "query", "select * from no_such_table"], None),
        (["--format", "xml", "-u", sqlite, "count", "people"], None),
    ]
    codes = set()
    before = status(agent_env)["commands"]
    for args, stdin in cases:
        without = run(*args, env=agent_env, input=stdin, agent=False)
        if args[-1] == "-":   # the insert writes: the second run inserts again (existing ids)
            run("-u", rurl, "query", "DEL users:1 users:2 users:__seq__", env=agent_env, agent=False)
        through = run(*args, env=agent_env, input=stdin)
        assert through == without, args
        codes.add(without[0])
    assert codes == {0, 1, 2, 3}
    assert status(agent_env)["commands"] >= before + len(cases)   # they did go through the agent


def test_a_terminal_gets_the_table_through_the_agent(agent_env, tmp_path):
    sqlite = f"sqlite:///{tmp_path}/t.db"
    run("-u", sqlite, "insert", "t", '{"a": 1, "b": "x"}', "--create", env=agent_env, agent=False)

    def on_terminal(agent):
        master, slave = pty.openpty()
        env = {**agent_env, "DBSH_NO_AGENT": "" if agent else "1", "COLUMNS": "80", "TERM": "xterm"}
        proc = subprocess.Popen([sys.executable, "-m", "dbsh", "-u", sqlite, "find", "t"], stdout=slave,
                                stderr=slave, stdin=slave, env=env)
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        os.close(master)
        return proc.wait(), b"".join(chunks).decode()

    before = status(agent_env)["commands"]
    assert on_terminal(True) == on_terminal(False)
    code, text = on_terminal(True)
    assert code == 0 and "(1 row)" in text and "{" not in text   # a table, not jsonl
    assert status(agent_env)["commands"] == before + 2


def test_ctrl_c_interrupts_the_command_in_the_agent(agent_env, rurl):
    proc = subprocess.Popen([sys.executable, "-m", "dbsh", "-u", rurl, "query", "BLPOP never-pushed 0"],
                            env=agent_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    import redis

    watcher = redis.Redis.from_url(rurl)
    while time.monotonic() < deadline:   # until the agent's connection is blocked in BLPOP
        if any(c.get("cmd") == "blpop" for c in watcher.client_list()):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, out, err) == (130, "", "dbsh: interrupted\n")
    assert not any(c.get("cmd") == "blpop" for c in watcher.client_list())
    # the agent serves on
    watcher.set("after", "yes")
    assert run("-u", rurl, "query", "GET after", env=agent_env)[:2] == (0, '{"value":"yes"}\n')
    watcher.close()


def test_a_connection_is_kept_warm_but_not_after_it_changed_state(agent_env, rurl):
    import redis

    r = redis.Redis.from_url(rurl)
    r.set("k", "db11")
    other = urlsplit(rurl)._replace(path="/12").geturl()
    redis.Redis.from_url(other).set("k", "db12")
    ids = set()
    for _ in range(3):
        assert run("-u", rurl, "query", "CLIENT ID", env=agent_env)[0] == 0
    for _ in range(3):
        code, out, _ = run("-u", rurl, "query", "GET k", env=agent_env)
        ids.add(out)
    assert ids == {'{"value":"db11"}\n'}
    assert status(agent_env)["sessions"] == 1
    # SELECT switches the connection's database: that session is closed, not reused
    assert run("-u", rurl, "query", "SELECT 12", env=agent_env)[0] == 0
    assert run("-u", rurl, "query", "GET k", env=agent_env)[1] == '{"value":"db11"}\n'
    redis.Redis.from_url(other).flushdb()


def test_a_readonly_profile_stays_readonly_through_the_agent(agent_env, rurl, tmp_path):
    assert run("connect", rurl, "--save", "ro", "--readonly", env=agent_env)[0] == 0
    assert run("connect", rurl, "--save", "rw", env=agent_env)[0] == 0
    import redis

    r = redis.Redis.from_url(rurl)
    r.set("k", "before")
    for _ in range(2):   # the second time on the pooled session
        assert run("-c", "ro", "query", "GET k", env=agent_env)[:2] == (0, '{"value":"before"}\n')
        for args in (["query", "SET k after"], ["insert", "users", '{"id": 1}'], ["delete", "users", "--all"],
                     ["query", "ECHO x\nSET k after"]):
            through = run("-c", "ro", *args, env=agent_env)
            assert through == run("-c", "ro", *args, env=agent_env, agent=False)
            assert through[0] != 0 and "read-only" in through[2], (args, through)
    assert r.get("k") == b"before" and not r.exists("users:1")
    assert run("-c", "rw", "query", "SET k after", env=agent_env)[0] == 0   # another profile, another session
    assert r.get("k") == b"after"
    assert run("-c", "ro", "query", "SET k again", env=agent_env)[0] != 0
    assert r.get("k") == b"after"


def test_the_agent_exits_when_idle(dbsh_env):
    code, _, err = run("agent", "start", "--idle-timeout", "2", env=dbsh_env)
    assert code == 0 and "agent started" in err, err
    socket_file = Path(paths.socket_path())
    deadline = time.monotonic() + 60
    while status(dbsh_env)["running"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status(dbsh_env) == {"running": False, "socket": str(socket_file)}
    assert not socket_file.exists()


def test_start_stop_status(dbsh_env):
    assert status(dbsh_env)["running"] is False
    assert run("agent", "start", env=dbsh_env)[0] == 0
    found = status(dbsh_env)
    assert found["running"] is True and found["socket"] == paths.socket_path()
    mode = os.stat(found["socket"]).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(found["socket"])).st_mode) == 0o700
    assert run("agent", "start", env=dbsh_env)[2] == f"dbsh: agent already running (pid {found['pid']})\n"
    assert run("agent", "stop", env=dbsh_env)[2] == f"dbsh: agent stopped (pid {found['pid']})\n"
    assert status(dbsh_env)["running"] is False
    assert run("agent", "stop", env=dbsh_env)[2] == "dbsh: no agent running\n"
    code, _, err = run("agent", "restart", env=dbsh_env)
    assert (code, err) == (2, "dbsh: error: unknown agent action 'restart' (start, stop or status)\n")


def test_agent_true_in_the_config_starts_one(dbsh_env, tmp_path):
    config = Path(dbsh_env["XDG_CONFIG_HOME"]) / "dbsh" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[agent]\nagent = true\nidle_timeout = 30\n")
    sqlite = f"sqlite:///{tmp_path}/c.db"
    assert run("-u", sqlite, "query", "select 1 as x", env=dbsh_env)[:2] == (0, '{"x":1}\n')   # in-process
    deadline = time.monotonic() + 60
    while not status(dbsh_env)["running"] and time.monotonic() < deadline:
        time.sleep(0.1)
    found = status(dbsh_env)
    assert found["running"] and found["idle_timeout"] == 30
    assert run("-u", sqlite, "query", "select 1 as x", env=dbsh_env)[:2] == (0, '{"x":1}\n')
    assert status(dbsh_env)["commands"] == 1
    run("agent", "stop", env=dbsh_env)


NOBODY = r"""
import socket, sys
path, request = sys.argv[1], bytes.fromhex(sys.argv[2])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(path)
except PermissionError:
    print("no access"); sys.exit(0)
s.sendall(len(request).to_bytes(4, "big") + request)
data = b""
while chunk := s.recv(4096):
    data += chunk
print(data[4:].decode())
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("python3", path="/usr/bin"),
                    reason="needs root (to run as nobody) and /usr/bin/python3")
def test_another_user_cannot_use_the_agent(dbsh_env, rurl):
    base = tempfile.mkdtemp(prefix="dbsh-runtime-")   # below /tmp, where nobody may pass through
    env = {**dbsh_env, "XDG_RUNTIME_DIR": base}
    assert run("agent", "start", env=env)[0] == 0
    try:
        sock = status(env)["socket"]
        from dbsh.agent import protocol

        request = protocol.encode_request("run", argv=["-u", rurl, "query", "SET pwned 1"], cwd="/",
                                          ttys="000", encodings=["utf-8", "strict"] * 3, env={}).hex()

        def as_nobody():
            return subprocess.run(["/usr/bin/python3", "-c", NOBODY, sock, request], user="nobody",
                                  capture_output=True, text=True, timeout=60, cwd="/").stdout.strip()

        assert as_nobody() == "no access"   # the 0700 directory keeps others out
        os.chmod(base, 0o711)               # and were it opened up, the agent checks the peer's uid
        os.chmod(os.path.dirname(sock), 0o711)
        os.chmod(sock, 0o666)
        assert as_nobody() == "refused:another user"
        for path in (base, os.path.dirname(sock)):
            os.chmod(path, 0o700)
        assert status(env)["refused"] == 1
        import redis

        assert redis.Redis.from_url(rurl).get("pwned") is None
    finally:
        run("agent", "stop", env=env)
        shutil.rmtree(base, ignore_errors=True)


def test_two_dbsh_in_one_pipeline_do_not_wait_for_each_other(agent_env, tmp_path):
    sqlite = f"sqlite:///{tmp_path}/p.db"
    docs = "".join(json.dumps({"id": i, "pad": "x" * 200}) + "\n" for i in range(20000))
    run("-u", sqlite, "insert", "src", "-", "--create", input=docs, env=agent_env)
    dbsh = f"{sys.executable} -m dbsh"
    other = f"sqlite:///{tmp_path}/q.db"   # (one SQLite file read and written at once: "database is locked")
    proc = subprocess.run(["sh", "-c", f"{dbsh} -u {sqlite} find src | {dbsh} -u {other} insert dst - --create "
                           f"&& {dbsh} -u {other} count dst"],
                          env=agent_env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == '{"count":20000}'


def test_commands_that_need_the_terminal_run_in_process():
    assert client.command_word(["-u", "x", "find", "t"]) == "find"
    assert client.command_word(["--url=x", "-fjson", "query", "GET a", "--", "-W"]) == "query"
    for args in ([], ["-u", "x"], ["-W", "find", "t"], ["find", "t", "--password"], ["find", "--help"],
                 ["--version"]):
        assert client.command_word(args) not in client.FORWARDED, args
    for word in ("connect", "agent", "migrate", "bench"):
        assert word not in client.FORWARDED


def test_the_client_knows_which_global_options_take_a_value():
    valued = {f for o in verbs.global_options() if o.type != "bool" for f in o.flags}
    assert valued == client.VALUED_GLOBALS


def test_the_socket_dir_is_platformdirs_user_runtime_dir(monkeypatch, tmp_path):
    import warnings

    import platformdirs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert paths.agent_dir() == platformdirs.user_runtime_dir("dbsh", appauthor=False)
        monkeypatch.delenv("XDG_RUNTIME_DIR")
        assert paths.agent_dir() == platformdirs.user_runtime_dir("dbsh", appauthor=False)
        open_dir = tmp_path / "open"
        open_dir.mkdir(mode=0o755)
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(open_dir))   # not private: not used
        assert paths.agent_dir() == platformdirs.user_runtime_dir("dbsh", appauthor=False)


def test_the_thin_client_imports_almost_nothing(agent_env, tmp_path):
    code = ("import sys; before = set(sys.modules)\n"
            "from dbsh.agent.client import forward\n"
            f"status = forward(['-u', 'sqlite:///{tmp_path}/x.db', 'query', 'select 2 as two'])\n"
            "print(status, ' '.join(sorted(set(sys.modules) - before)), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], env=agent_env, capture_output=True, text=True, timeout=60)
    status_text, _, modules = proc.stderr.strip().partition(" ")
    assert (status_text, proc.stdout) == ("0", '{"two":2}\n')
    assert set(modules.split()) <= {"dbsh", "dbsh.agent", "dbsh.agent.client", "dbsh.agent.paths",
                                    "dbsh.agent.protocol", "_socket", "_signal", "__future__"}, modules


def test_sql_session_settings_do_not_leak_into_the_next_command(agent_env, postgres_url):
    for _ in range(2):
        assert run("-u", postgres_url, "query", "SET application_name = 'leaked'", env=agent_env)[0] == 0
        assert run("-u", postgres_url, "query", "SHOW application_name", env=agent_env)[1] == \
            '{"application_name":"dbsh"}\n'
        assert run("-u", postgres_url, "query", "BEGIN", env=agent_env)[0] == 0   # a transaction left open
        assert run("-u", postgres_url, "query", "select 1 as x", env=agent_env)[:2] == (0, '{"x":1}\n')
    assert status(agent_env)["sessions"] == 1   # kept warm all the same
