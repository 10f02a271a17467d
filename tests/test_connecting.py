"""Connecting as people do: a password prompt when the server asks (on a terminal only), a profile's
password_command and keyring, TLS (PostgreSQL sslmode, rediss://) against servers with self-signed
certificates, and SSH tunnels through a real OpenSSH server. Terminal cases run dbsh inside tmux."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from dbsh.target import Target
from tests import servers
from tests.dbshtest import dbsh_process
from tests.test_repl_tmux import Terminal

tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (scripts/install-test-deps)")
PASSWORD = servers.PASSWORD


@pytest.fixture(scope="module")
def pg_tls():
    with servers.Postgres(ssl=True) as server:
        yield server


@pytest.fixture(scope="module")
def redis_tls():
    with servers.RedisTLS() as server:
        yield server


@pytest.fixture(scope="module")
def redis_pw():
    with servers.Redis(password=PASSWORD) as server:
        yield server


@pytest.fixture(scope="module")
def sshd():
    with servers.OpenSSH() as server:
        yield server


def without_password(url: str) -> str:
    return Target(url).without_password()


def write_config(tmp_path, text: str) -> dict:
    path = tmp_path / "config" / "dbsh" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return {"XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data")}


def terminal(tmp_path, *args: str, env: dict | None = None) -> Terminal:
    base = {"XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    return Terminal(tmp_path, [sys.executable, "-m", "dbsh", *args], {**base, **(env or {})}, remain=True)


# -- the password prompt -------------------------------------------------------------------------

@tmux
def test_postgres_asks_for_the_password_on_a_terminal(pg_tls, tmp_path):
    url = without_password(pg_tls.url)
    term = terminal(tmp_path, "-u", url)
    try:
        term.wait_for(f"Password for {url}:")
        term.type(PASSWORD)
        term.keys("Enter")
        term.wait_for("dbsh_test>")
        term.type("select current_user as who;")
        term.keys("Enter")
        screen = term.wait_for("(1 row)")
        assert " postgres" in screen and PASSWORD not in screen
    finally:
        term.close()


@tmux
def test_redis_asks_once_and_a_wrong_password_is_one_line(redis_pw, tmp_path):
    url = redis_pw.url.replace(f":{PASSWORD}@", "")
    term = terminal(tmp_path, "-u", url, "query", "PING")
    try:
        term.wait_for(f"Password for {url}:")
        term.type("wrong")
        term.keys("Enter")
        screen = term.wait_for("dbsh: error:")
        assert screen.count("Password for") == 1          # asked once
        errors = [line for line in screen.splitlines() if line.startswith("dbsh: error:")]
        assert len(errors) == 1 and ("WRONGPASS" in errors[0] or "invalid" in errors[0].lower()), screen
    finally:
        term.close()
    term = terminal(tmp_path, "-u", url)
    try:
        term.wait_for(f"Password for {url}:")
        term.type(PASSWORD)
        term.keys("Enter")
        term.wait_for("0>")
        term.type("PING")
        term.keys("Enter")
        term.wait_for("PONG")
    finally:
        term.close()


def test_scripts_keep_the_one_line_error_exit_3(pg_tls, redis_pw):
    run = dbsh_process("-u", without_password(pg_tls.url), "query", "select 1", input="")
    assert run.code == 3 and len(run.err.splitlines()) == 1
    assert run.err.startswith("dbsh: error: cannot connect to ") and "no password supplied" in run.err
    run = dbsh_process("-u", redis_pw.url.replace(f":{PASSWORD}@", ""), "query", "PING", input="")
    assert run.code == 3 and len(run.err.splitlines()) == 1 and "the server needs a password" in run.err, run.err


def test_one_dbsh_password_for_every_profile(pg_tls, redis_pw, tmp_path):
    env = write_config(tmp_path, f'[profiles.pg]\nurl = "{without_password(pg_tls.url)}"\n'
                                 f'[profiles.cache]\nurl = "{redis_pw.url.replace(f":{PASSWORD}@", "")}"\n')
    env["DBSH_PASSWORD"] = PASSWORD
    assert dbsh_process("-c", "pg", "query", "select 1 as one", env=env).out == '{"one":1}\n'
    assert dbsh_process("-c", "cache", "query", "PING", env=env).out == '{"value":"PONG"}\n'


# -- password_command and the keyring ------------------------------------------------------------

def test_password_command_of_a_profile(pg_tls, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text(PASSWORD + "\n")
    env = write_config(tmp_path, f'[profiles.pg]\nurl = "{without_password(pg_tls.url)}"\n'
                                 f'password_command = "cat {secret}"\n'
                                 f'[profiles.broken]\nurl = "{without_password(pg_tls.url)}"\n'
                                 'password_command = "echo oops >&2; exit 4"\n')
    run = dbsh_process("-c", "pg", "query", "select current_user as who", env=env)
    assert (run.code, run.out) == (0, '{"who":"postgres"}\n')
    run = dbsh_process("-c", "broken", "query", "select 1", env=env)
    assert (run.code, run.err) == (2, "dbsh: error: password_command of profile 'broken' failed (exit 4)\n")


def keyring_env(tmp_path) -> dict:
    return {"PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
            "XDG_DATA_HOME": str(tmp_path / "data")}


def test_keyring_profile_reads_its_password(pg_tls, tmp_path, monkeypatch):
    env = {**write_config(tmp_path, f'[profiles.pg]\nurl = "{without_password(pg_tls.url)}"\nkeyring = true\n'),
           **keyring_env(tmp_path)}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    import keyring
    import keyring.core

    keyring.core.init_backend()
    keyring.set_password("dbsh", "pg", PASSWORD)
    run = dbsh_process("-c", "pg", "query", "select 1 as one", env=env)
    assert (run.code, run.out) == (0, '{"one":1}\n')
    keyring.delete_password("dbsh", "pg")
    run = dbsh_process("-c", "pg", "query", "select 1 as one", env=env, input="")
    assert run.code == 3 and "no password supplied" in run.err


@tmux
def test_keyring_keeps_the_password_typed_at_the_prompt(pg_tls, tmp_path):
    env = {**write_config(tmp_path, f'[profiles.pg]\nurl = "{without_password(pg_tls.url)}"\nkeyring = true\n'),
           **keyring_env(tmp_path)}
    term = terminal(tmp_path, "-c", "pg", "query", "select 2 as two", env=env)
    try:
        term.wait_for("Password for ")
        term.type(PASSWORD)
        term.keys("Enter")
        term.wait_for("two")
    finally:
        term.close()
    run = dbsh_process("-c", "pg", "query", "select 3 as three", env=env)     # no terminal, no prompt
    assert (run.code, run.out) == (0, '{"three":3}\n')
    stored = list((tmp_path / "data").rglob("keyring_pass.cfg"))
    assert stored and "dbsh" in stored[0].read_text()


# -- TLS -----------------------------------------------------------------------------------------

def test_postgres_sslmode_require_and_verify_full(pg_tls):
    ssl_query = "select ssl from pg_stat_ssl where pid = pg_backend_pid()"
    run = dbsh_process("-u", pg_tls.url + "?sslmode=require", "query", ssl_query)
    assert (run.code, run.out) == (0, '{"ssl":true}\n'), run.err
    run = dbsh_process("-u", f"{pg_tls.url}?sslmode=verify-full&sslrootcert={pg_tls.cert}", "query", ssl_query)
    assert (run.code, run.out) == (0, '{"ssl":true}\n'), run.err
    run = dbsh_process("-u", pg_tls.url + "?sslmode=verify-full&sslrootcert=system", "query", "select 1")
    assert run.code == 3 and len(run.err.splitlines()) == 1 and "certificate verify failed" in run.err


def test_rediss_with_the_servers_ca_and_without_verification(redis_tls):
    run = dbsh_process("-u", f"{redis_tls.url}?ssl_ca_certs={redis_tls.cert}", "query", "INFO server")
    assert run.code == 0, run.err
    assert any(row.get("field") == "tcp_port" for row in map(json.loads, run.out.splitlines()))
    run = dbsh_process("-u", f"{redis_tls.url}?ssl_cert_reqs=none", "query", "PING")
    assert (run.code, run.out) == (0, '{"value":"PONG"}\n')
    run = dbsh_process("-u", redis_tls.url, "query", "PING")      # the system CAs do not know it
    assert run.code == 3 and len(run.err.splitlines()) == 1 and "certificate verify failed" in run.err


# -- SSH tunnels -----------------------------------------------------------------------------------

def ssh_env(sshd) -> dict:
    return {"DBSH_SSH_COMMAND": f"ssh -F {sshd.config}"}


def test_a_verb_through_an_ssh_tunnel(sshd, postgres_url, redis_url, tmp_path):
    log = sshd.dir / "sshd.log"
    before = log.read_text().count("Accepted publickey")
    run = dbsh_process("-u", postgres_url, "--ssh", sshd.destination, "query", "select 1 as one", env=ssh_env(sshd))
    assert (run.code, run.out) == (0, '{"one":1}\n'), run.err
    run = dbsh_process("--ssh", sshd.destination, "-u", redis_url, "query", "PING", env=ssh_env(sshd))
    assert (run.code, run.out) == (0, '{"value":"PONG"}\n'), run.err
    env = {**ssh_env(sshd), **write_config(tmp_path, f'[profiles.far]\nurl = "{postgres_url}"\n'
                                                      f'ssh = "{sshd.destination}"\n')}
    run = dbsh_process("-c", "far", "collections", env=env)
    assert run.code == 0, run.err
    assert log.read_text().count("Accepted publickey") >= before + 3       # each went through sshd


def test_a_bad_bastion_is_one_line_exit_3(sshd, postgres_url, tmp_path):
    run = dbsh_process("-u", postgres_url, "--ssh", "nobody@127.0.0.1:1", "query", "select 1", env=ssh_env(sshd))
    assert run.code == 3 and len(run.err.splitlines()) == 1
    assert run.err.startswith("dbsh: error: cannot open the SSH tunnel through nobody@127.0.0.1:1: ")
    assert "Connection refused" in run.err
    local = tmp_path / "x.db"
    run = dbsh_process("-u", f"sqlite:///{local}", "--ssh", sshd.destination, "query", "select 1", env=ssh_env(sshd))
    assert run.code == 2 and "a SQLite database is a local file" in run.err
    assert not local.exists()   # refused before anything was opened


@tmux
def test_the_shell_through_an_ssh_tunnel(sshd, postgres_url, tmp_path):
    term = terminal(tmp_path, "-u", postgres_url, "--ssh", sshd.destination, env=ssh_env(sshd))
    try:
        screen = term.wait_for("dbsh_test>")
        assert f"via ssh {sshd.destination}" in screen and PASSWORD not in screen
        term.type("select 'tunnelled' as how;")
        term.keys("Enter")
        term.wait_for(" tunnelled")
        term.type("\\q")
        term.keys("Enter")
    finally:
        term.close()


# -- libpq's own files: .pgpass and pg_service.conf ------------------------------------------------

def test_pgpass_and_pg_service(pg_tls, tmp_path):
    t = Target(pg_tls.url)
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{t.parts.port}:*:postgres:{PASSWORD}\n")
    pgpass.chmod(0o600)
    run = dbsh_process("-u", without_password(pg_tls.url), "query", "select 1 as one",
                       env={"PGPASSFILE": str(pgpass)})
    assert (run.code, run.out) == (0, '{"one":1}\n'), run.err
    services = tmp_path / "pg_service.conf"
    services.write_text(f"[shop]\nhost=127.0.0.1\nport={t.parts.port}\ndbname=dbsh_test\nuser=postgres\n"
                        "sslmode=require\n")
    run = dbsh_process("-u", "postgresql:///?service=shop", "query",
                       "select current_database() as db, ssl from pg_stat_ssl where pid = pg_backend_pid()",
                       env={"PGSERVICEFILE": str(services), "PGPASSFILE": str(pgpass)})
    assert (run.code, run.out) == (0, '{"db":"dbsh_test","ssl":true}\n'), run.err


@tmux
def test_the_shell_over_tls_and_with_a_password_command(redis_tls, pg_tls, tmp_path):
    term = terminal(tmp_path, "-u", f"{redis_tls.url}?ssl_ca_certs={redis_tls.cert}")
    try:
        term.wait_for("0>")
        term.type("PING")
        term.keys("Enter")
        term.wait_for("PONG")
    finally:
        term.close()
    secret = tmp_path / "secret"
    secret.write_text(PASSWORD + "\n")
    env = write_config(tmp_path, f'[profiles.pg]\nurl = "{without_password(pg_tls.url)}?sslmode=require"\n'
                                 f'password_command = "cat {secret}"\n')
    term = terminal(tmp_path, "-c", "pg", env=env)
    try:
        term.wait_for("dbsh_test>")
        term.type("select ssl from pg_stat_ssl where pid = pg_backend_pid();")
        term.keys("Enter")
        screen = term.wait_for("(1 row)")
        assert " true" in screen and PASSWORD not in screen and "Password for" not in screen
    finally:
        term.close()
