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
    Memcached()       memcached://127.0.0.1:P                                    Memcached 1.6 (Debian)
    Memcached(3)      memcached://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3         3 servers, keys hashed by the client
    PouchDB()         couchdb://127.0.0.1:P                                      pouchdb-server 4.2.0, in RAM, no admin
    SecantusDB()      mongodb://127.0.0.1:P/dbsh_test                            MongoDB wire stand-in, in memory
    Neo4j()           bolt://neo4j:dbsh-test-pw@127.0.0.1:P                      Neo4j 5.26 Community (Maven Central)
    Cassandra()       cassandra://dbsh:PASSWORD@127.0.0.1:P/dbsh_test            Apache Cassandra 5.0.6 (Maven Central)
    CassandraRing()   cassandra://dbsh:PASSWORD@127.0.0.2,127.0.0.3,127.0.0.4:9042/dbsh_test   3 nodes, RF 3 keyspace

Neo4j is the real product: the jars of ``org.neo4j:neo4j`` (``tests/servers/neo4j/pom.xml``, fetched
by ``scripts/install-test-deps`` into ``.test-deps/neo4j``), run in a JVM of its own through the
entry point ``neo4j console`` runs, with auth on, Bolt on 127.0.0.1:P (advertised there too, so
``neo4j://`` routing works), HTTP off, a small heap and page cache. See the Neo4j section below.

Stand-ins (SecantusDB, pouchdb-server) are not the real products; tests that use them carry the
``secantusdb`` / ``pouchdb`` markers. Their known gaps are listed in the project notes
(SERVERS.md); the one that bites fixtures:

PouchDB: never configure an admin (an anonymous ``PUT /db`` then crashes it).

Apache Cassandra (section at the end of this file)
  * The jars come from Maven Central (tests/servers/cassandra/pom.xml, copied into
    .test-deps/cassandra/lib by scripts/install-test-deps); the JVM (Java 11 or 17) runs
    ``org.apache.cassandra.service.CassandraDaemon`` in the foreground with a cassandra.yaml and a
    logback.xml written into the temp dir (logs: ``<dir>/node*/system.log``), the JPMS options of
    Cassandra's conf/jvm17-server.options, a 512 MB heap, no JMX port, and start-up shortcuts for a
    throw-away node (no gossip settle wait, 1 s ring delay, no superuser set-up delay, no fsync).
    One node is ready (a login and ``SELECT release_version``) in about 5-12 s on 2 cores.
  * PasswordAuthenticator: the default superuser cassandra/cassandra creates the role ``dbsh``
    (superuser, password PASSWORD) and the keyspace ``dbsh_test``; tests log in as dbsh.
  * The ring's nodes share the default ports on 127.0.0.2-4, so it starts only in a private network
    namespace; the three JVMs start almost together (auto_bootstrap false, one pre-assigned token
    each; the seed first, the others once its gossip port listens: a node that reaches no seed
    within the ring delay exits with "Unable to gossip with any peers") in about 25-50 s;
    system_auth is replicated to all three, so a login works with a node down.
"""

from __future__ import annotations

import ctypes
import glob
import hashlib
import json
import logging
import os
import pwd
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

def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1 (bind to port 0, then close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    except Exception:  # noqa: BLE001 - best effort: the finalizers stop the server in a normal run
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
    def __enter__(self) -> Server:
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
            self.wait_until(lambda port=port: _redis_ping(port), f"PING on port {port}")
        self.run([cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports), "--cluster-yes"],
                 env=_clean_env())

        def all_ok() -> bool:
            return all("cluster_state:ok" in resp(p, "CLUSTER", "INFO") for p in ports)

        self.wait_until(all_ok, "cluster_state:ok on every node")
        return f"redis://127.0.0.1:{ports[0]}/0?cluster=true"


# ------------------------------------------------------------------------------------- Memcached

def memcached_text(address, payload: bytes, *, until: bytes = b"\r\n", timeout: float = 2.0) -> bytes:
    """Send raw text-protocol bytes to a memcached (("host", port) or a unix socket path) and read until the
    reply ends with ``until``: the tests' own client, not dbsh's."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(address)
        s.sendall(payload)
        reply = b""
        while not reply.endswith(until):
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
        return reply


def memcached_keys(address) -> list[bytes]:
    """Every key a memcached lists (lru_crawler metadump), URL-decoded: the tests' own view of the cache."""
    from urllib.parse import unquote_to_bytes

    reply = memcached_text(address, b"lru_crawler metadump all\r\n", until=b"END\r\n")
    return [unquote_to_bytes(line.split(b" ", 1)[0][4:]) for line in reply.split(b"\n") if line.startswith(b"key=")]


class Memcached(Server):
    """Debian memcached in the foreground, run as nobody; ``servers=3`` starts three (one URL names all),
    ``auth=(user, password)`` turns on ASCII authentication (-Y), ``sasl=(user, password)`` SASL (-S, which
    makes memcached speak only the binary protocol), ``unix=True`` listens on a unix socket only, ``port=``
    on that port (the first server)."""

    name = "memcached"

    def __init__(self, servers: int = 1, *, auth: tuple[str, str] | None = None,
                 sasl: tuple[str, str] | None = None, unix: bool = False, extra: tuple[str, ...] = (),
                 port: int | None = None) -> None:
        super().__init__()
        self.servers, self.auth, self.sasl, self.unix, self.extra = servers, auth, sasl, unix, extra
        self.port = port
        self.addresses: list = []

    def _start(self) -> str:
        binary = find_binary("memcached")
        user = "nobody" if is_root() else None
        if user:
            shutil.chown(self.dir, user)
        options = list(self.extra)
        env = _clean_env()
        if self.auth:
            (self.dir / "auth").write_text("%s:%s\n" % self.auth)
            options += ["-Y", str(self.dir / "auth")]
        if self.sasl:   # memcached's own password file (MEMCACHED_SASL_PWDB) and a SASL config naming PLAIN
            (self.dir / "memcached.conf").write_text("mech_list: plain\n")
            (self.dir / "pwdb").write_text("%s:%s\n" % self.sasl)
            options += ["-S"]
            env.update(SASL_CONF_PATH=str(self.dir), MEMCACHED_SASL_PWDB=str(self.dir / "pwdb"))
        for n in range(self.servers):
            if self.unix:
                address = str(self.dir / f"memcached{n}.sock")
                listen = ["-s", address, "-a", "0666"]
            else:
                address = ("127.0.0.1", self.port if self.port and not n else free_port())
                listen = ["-l", "127.0.0.1", "-p", str(address[1])]
            self.spawn([binary, *listen, "-U", "0", "-m", "64", *options], log=self.dir / f"memcached{n}.log",
                       user=user, env=env)
            self.addresses.append(address)
        for address in self.addresses:
            if self.sasl:   # binary protocol only: ready when it accepts a connection
                self.wait_until(lambda address=address: socket.create_connection(address, timeout=1).close() or True,
                                f"a connection to {address}")
            else:
                self.wait_until(lambda address=address: memcached_text(address, b"version\r\n").startswith(
                    (b"VERSION", b"CLIENT_ERROR unauthenticated")), f"version on {address}")
        login = "%s:%s@" % (self.auth or self.sasl) if (self.auth or self.sasl) else ""
        if self.unix:
            return f"memcached+unix://{login}{self.addresses[0]}"
        return f"memcached://{login}" + ",".join(f"{h}:{p}" for h, p in self.addresses)


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


# ----------------------------------------------------------------------------------------- Neo4j
# Neo4j 5.26 LTS Community, the real product: the jars of org.neo4j:neo4j from Maven Central
# (tests/servers/neo4j/pom.xml; scripts/install-test-deps copies them into .test-deps/neo4j/lib and
# links .test-deps/neo4j/java to a Java 17 or 21). Each start gets a fresh NEO4J_HOME in the temp
# dir with a neo4j.conf written here, and the user neo4j's password set before the first start as
# `neo4j-admin dbms set-initial-password` does (its auth.ini, made once per password by that very
# command and kept in .test-deps/neo4j). Started in a JVM of its own through the class that
# `neo4j console` starts; ready when the driver's verify_connectivity() passes over neo4j:// (a
# routing table from the default database) with the test password.

NEO4J_DIR = ROOT / ".test-deps" / "neo4j"
NEO4J_USER = "neo4j"
NEO4J_MAIN = "org.neo4j.server.CommunityEntryPoint"   # the server `neo4j console` runs
NEO4J_ADMIN = "org.neo4j.cli.AdminTool"               # neo4j-admin
# A small JVM for 2-core test machines, plus the options of Neo4j's default server.jvm.additional
# that matter here (page cache and Netty need the opened packages). TieredStopAtLevel=1 (the C1
# compiler only): over the Neo4j tests the JVM used half the CPU time (36 s instead of 71 s) and
# started faster; a test run never lasts long enough for C2's code to pay for its compiling.
NEO4J_JVM = ["-Xms512m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
             "-XX:-OmitStackTraceInFastThrow", "-XX:+UnlockExperimentalVMOptions",
             "-XX:+TrustFinalNonStaticFields", "-XX:+DisableExplicitGC", "-Dfile.encoding=UTF-8",
             "-Djdk.nio.maxCachedBufferSize=1024",
             "-Dio.netty.tryReflectionSetAccessible=true", "-Dlog4j2.disable.jmx=true",
             "--add-opens=java.base/java.nio=ALL-UNNAMED", "--add-opens=java.base/java.io=ALL-UNNAMED",
             "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED"]


def neo4j_conf(port: int) -> str:
    """neo4j.conf for one test server: Bolt only, on (and advertised at) 127.0.0.1:port."""
    return "\n".join([
        "server.default_listen_address=127.0.0.1",
        "server.default_advertised_address=127.0.0.1",
        "server.bolt.enabled=true",
        f"server.bolt.listen_address=127.0.0.1:{port}",
        f"server.bolt.advertised_address=127.0.0.1:{port}",   # the routing table neo4j:// gets
        "server.http.enabled=false",
        "server.https.enabled=false",
        "dbms.security.auth_enabled=true",
        "server.memory.pagecache.size=32m",
        "dbms.memory.transaction.total.max=256m",
        "db.memory.transaction.max=32m",   # one transaction's share: a test outgrows it with 60,000 nodes
        "db.tx_log.preallocate=false",
        "db.logs.query.enabled=OFF",
        "dbms.usage_report.enabled=false",
        "",
    ])


def neo4j_lib() -> Path:
    lib = NEO4J_DIR / "lib"
    if not any(lib.glob("neo4j-kernel-*.jar")):
        raise ServerError(f"Neo4j jars not found in {lib}; {INSTALL_HINT}")
    if not os.access(NEO4J_DIR / "java", os.X_OK):
        raise ServerError(f"{NEO4J_DIR / 'java'} (a Java 17 or 21) missing; {INSTALL_HINT}")
    return lib


def neo4j_version() -> str:
    """The version of the Neo4j jars installed (from the kernel jar's name), e.g. '5.26.30'."""
    jars = sorted(NEO4J_DIR.glob("lib/neo4j-kernel-[0-9]*.jar"))
    return jars[-1].name.removeprefix("neo4j-kernel-").removesuffix(".jar") if jars else "?"


class Neo4j(Server):
    """Neo4j 5.26 Community (jars from Maven Central under .test-deps/neo4j), auth on, Bolt only."""

    name = "neo4j"
    ready_timeout = 180.0          # a JVM on 2 busy cores: seconds, not milliseconds
    stop_signal = signal.SIGKILL   # its home is a temp dir thrown away: no clean shutdown to wait for

    def __init__(self, password: str = PASSWORD) -> None:
        super().__init__()
        self.password = password
        self.port: int | None = None

    def _java(self) -> list[str]:
        return [str(NEO4J_DIR / "java"), *NEO4J_JVM, "-cp", f"{neo4j_lib()}/*"]

    def _auth_ini(self) -> Path:
        """auth.ini for user neo4j with this password, written by `neo4j-admin dbms set-initial-password`
        once and kept (the command takes a JVM start; copying its file into a new home does not)."""
        digest = hashlib.sha256(f"{neo4j_version()}\0{self.password}".encode()).hexdigest()[:16]
        cached = NEO4J_DIR / f"auth-{digest}.ini"
        if not cached.exists():
            home = self.dir / "admin"
            (home / "conf").mkdir(parents=True)
            (home / "conf" / "neo4j.conf").write_text("")
            self.run([*self._java(), NEO4J_ADMIN, "dbms", "set-initial-password", self.password],
                     env=_clean_env(NEO4J_HOME=str(home), NEO4J_CONF=str(home / "conf")), timeout=120)
            tmp = cached.with_suffix(f".{os.getpid()}")
            shutil.copyfile(home / "data" / "dbms" / "auth.ini", tmp)
            tmp.replace(cached)
            shutil.rmtree(home, ignore_errors=True)
        return cached

    def _start(self) -> str:
        import neo4j

        home = self.dir / "home"
        conf = home / "conf"
        (home / "data" / "dbms").mkdir(parents=True)
        conf.mkdir()
        shutil.copyfile(self._auth_ini(), home / "data" / "dbms" / "auth.ini")
        self.port = port = free_port()
        (conf / "neo4j.conf").write_text(neo4j_conf(port))
        self.logs.append(home / "logs" / "neo4j.log")
        self.spawn([*self._java(), NEO4J_MAIN, f"--home-dir={home}", f"--config-dir={conf}", "--console-mode"],
                   log=self.dir / "console.log",
                   env=_clean_env(NEO4J_HOME=str(home), NEO4J_CONF=str(conf)))
        auth = (NEO4J_USER, self.password)

        def routing_ready() -> bool:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()   # quietly, until Bolt listens
            with neo4j.GraphDatabase.driver(f"neo4j://127.0.0.1:{port}", auth=auth, connection_timeout=2,
                                            connection_acquisition_timeout=5) as driver:
                driver.verify_connectivity()
            return True

        quiet = logging.getLogger("neo4j")   # "Unable to retrieve routing information" while starting
        was, quiet.disabled = quiet.disabled, True
        try:
            self.wait_until(routing_ready, f"Bolt verify_connectivity on port {port}")
        finally:
            quiet.disabled = was
        return f"bolt://{NEO4J_USER}:{self.password}@127.0.0.1:{port}"


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
           "couchdb": PouchDB, "mongo": SecantusDB, "neo4j": Neo4j,
           "memcached": Memcached}


# ------------------------------------------------------------------------------------- Cassandra
# Apache Cassandra from Maven Central: cassandra-all and its dependencies, copied by
# scripts/install-test-deps (tests/servers/cassandra/pom.xml) into .test-deps/cassandra/lib, run as
# `java ... org.apache.cassandra.service.CassandraDaemon` with a cassandra.yaml written per run.

CASSANDRA_LIB = ROOT / ".test-deps" / "cassandra" / "lib"
CASSANDRA_USER = "dbsh"          # a superuser role created at start (PasswordAuthenticator)
CASSANDRA_PORT = 9042            # the ring's nodes each have an address of their own: default ports
CASSANDRA_HEAP = "512M"
RING_REASON = ("the Cassandra ring binds 127.0.0.2-4 on fixed ports; run the suite through scripts/test, "
               "which uses a private network namespace")

# What Cassandra 5.0 ships in conf/jvm17-server.options (JPMS exports/opens and Netty settings; its
# bin/cassandra reads them), plus the few general ones of conf/jvm-server.options that matter here.
# Heap, GC and JIT are ours: a small fixed heap, no pre-touch, a serial collector, and the C1
# compiler only (start-up costs about 9 s of CPU instead of 14; the tests' load is light).
CASSANDRA_JVM_OPTIONS = [
    "-Djdk.attach.allowAttachSelf=true",
    "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports", "java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports", "java.sql/java.sql=ALL-UNNAMED",
    "--add-exports", "java.base/java.lang.ref=ALL-UNNAMED",
    "--add-exports", "jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-exports", "jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-exports", "jdk.attach/sun.tools.attach=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens", "jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens", "java.base/java.io=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens", "jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang=ALL-UNNAMED",
    "--add-opens", "java.base/java.util=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
    # jvm-server.options
    "-ea", "-da:net.openhft...", "-Xss256k", "-XX:+UseThreadPriorities", "-XX:+PerfDisableSharedMem",
    "-Djava.net.preferIPv4Stack=true",
    # ours
    f"-Xms{CASSANDRA_HEAP}", f"-Xmx{CASSANDRA_HEAP}", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
    "-XX:+ExitOnOutOfMemoryError",
]

# Start-up shortcuts for a throw-away node (system properties Cassandra 5.0 reads; see its
# CassandraRelevantProperties):
CASSANDRA_TEST_PROPERTIES = [
    "-Dcassandra-foreground=yes",
    "-Dcassandra.skip_wait_for_gossip_to_settle=0",   # do not wait for gossip to settle
    "-Dcassandra.ring_delay_ms=1000",                  # default 30 s
    "-Dcassandra.superuser_setup_delay_ms=0",          # create the default role at once (default 10 s)
    "-Dcassandra.unsafesystem=true",                   # no fsync of the system tables
    "-Dcassandra.skip_sync=true",                      # no fsync at all: the data dir is thrown away
    "-Dcassandra.test.flush_local_schema_changes=false",  # schema changes stay in the commit log
    "-Dcassandra.test.ignore_sigar=true",
]

CASSANDRA_LOGBACK = """<configuration>
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>{log}</file>
    <encoder><pattern>%-5level [%thread] %date{{HH:mm:ss,SSS}} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/></root>
</configuration>
"""


def cassandra_lib() -> Path:
    if not any(CASSANDRA_LIB.glob("cassandra-all-*.jar")):
        raise ServerError(f"Cassandra jars not found in {CASSANDRA_LIB}; {INSTALL_HINT}")
    return CASSANDRA_LIB


def cassandra_version() -> str:
    """The version of the cassandra-all jar in .test-deps (e.g. 5.0.6), or '' when there is none."""
    jars = sorted(CASSANDRA_LIB.glob("cassandra-all-*.jar"))
    return jars[-1].name.removeprefix("cassandra-all-").removesuffix(".jar") if jars else ""


def cassandra_java() -> str:
    """The java to run Cassandra 5.0 with (it supports Java 11 and 17): $JAVA_HOME's, else PATH's."""
    home = os.environ.get("JAVA_HOME")
    java = find_binary("java", Path(home) / "bin" / "java" if home else "")
    done = subprocess.run([java, "-version"], capture_output=True, text=True)
    first = (done.stderr or done.stdout).splitlines()[0] if (done.stderr or done.stdout) else ""
    major = first.split('"')[1].split(".")[0] if first.count('"') >= 2 else "?"
    if major not in ("11", "17"):
        raise ServerError(f"{java} is Java {major}; Cassandra 5.0 needs Java 11 or 17 (set JAVA_HOME)")
    return java


def cassandra_yaml(node_dir: Path, address: str, *, native_port: int, storage_port: int, seeds: str,
                   initial_token: int, auth: bool = True) -> str:
    """A minimal cassandra.yaml for one test node: everything it writes lives under ``node_dir``."""
    auth_lines = (["authenticator: PasswordAuthenticator", "authorizer: CassandraAuthorizer",
                   "role_manager: CassandraRoleManager"] if auth else
                  ["authenticator: AllowAllAuthenticator", "authorizer: AllowAllAuthorizer"])
    return "\n".join([
        "cluster_name: dbsh-test",
        "num_tokens: 1",
        f"initial_token: {initial_token}",
        "partitioner: org.apache.cassandra.dht.Murmur3Partitioner",
        "auto_bootstrap: false",
        f"listen_address: {address}",
        f"rpc_address: {address}",
        f"native_transport_port: {native_port}",
        f"storage_port: {storage_port}",
        "seed_provider:",
        "  - class_name: org.apache.cassandra.locator.SimpleSeedProvider",
        "    parameters:",
        f'      - seeds: "{seeds}"',
        "endpoint_snitch: SimpleSnitch",
        "commitlog_sync: periodic",
        "commitlog_sync_period: 10000ms",
        "commitlog_segment_size: 8MiB",
        f"data_file_directories: [{node_dir / 'data'}]",
        f"commitlog_directory: {node_dir / 'commitlog'}",
        f"saved_caches_directory: {node_dir / 'saved_caches'}",
        f"hints_directory: {node_dir / 'hints'}",
        f"cdc_raw_directory: {node_dir / 'cdc_raw'}",
        *auth_lines,
        "credentials_validity: 60s",
        "roles_validity: 60s",
        "permissions_validity: 60s",
        "concurrent_reads: 8",
        "concurrent_writes: 8",
        "concurrent_counter_writes: 8",
        "memtable_heap_space: 64MiB",
        "memtable_offheap_space: 64MiB",
        "file_cache_size: 32MiB",
        "key_cache_size: 8MiB",
        "index_summary_capacity: 8MiB",
        "user_defined_functions_enabled: false",
        "",
    ])


def cassandra_cluster(url: str, **kwargs):
    """A native cassandra-driver Cluster for a test URL (credentials from it): for checking what
    dbsh wrote with Cassandra's own client."""
    from urllib.parse import unquote, urlsplit

    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import Cluster

    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    hosts, port = [], CASSANDRA_PORT
    for item in netloc.split(","):
        host, _, item_port = item.partition(":")
        hosts.append(host)
        port = int(item_port) if item_port else port
    if parts.username:
        kwargs.setdefault("auth_provider", PlainTextAuthProvider(unquote(parts.username),
                                                                 unquote(parts.password or "")))
    return Cluster(hosts, port=port, **kwargs)


class CassandraNode:
    """One CassandraDaemon JVM of a Cassandra server or ring: its dir, yaml, process and log."""

    def __init__(self, server: Server, node_dir: Path, address: str, native_port: int, storage_port: int,
                 seeds: str, initial_token: int, auth: bool) -> None:
        self.server, self.dir, self.address, self.port = server, node_dir, address, native_port
        self.storage_port = storage_port
        self.proc: subprocess.Popen | None = None
        node_dir.mkdir(parents=True, exist_ok=True)
        (node_dir / "cassandra.yaml").write_text(cassandra_yaml(
            node_dir, address, native_port=native_port, storage_port=storage_port, seeds=seeds,
            initial_token=initial_token, auth=auth))
        self.log = node_dir / "system.log"
        (node_dir / "logback.xml").write_text(CASSANDRA_LOGBACK.format(log=self.log))

    def start(self, java: str, properties: tuple[str, ...] = ()) -> None:
        classpath = f"{cassandra_lib()}/*"
        args = [java, *CASSANDRA_JVM_OPTIONS, *CASSANDRA_TEST_PROPERTIES, *properties,
                f"-Dcassandra.config=file://{self.dir / 'cassandra.yaml'}",
                f"-Dlogback.configurationFile=file://{self.dir / 'logback.xml'}",
                f"-Dcassandra.logdir={self.dir}", f"-Dcassandra.storagedir={self.dir}",
                f"-XX:HeapDumpPath={self.dir}", f"-Xlog:gc=warning:file={self.dir / 'gc.log'}",
                "-cp", classpath, "org.apache.cassandra.service.CassandraDaemon"]
        if str(self.log) not in map(str, self.server.logs):
            self.server.logs.append(self.log)
        self.proc = self.server.spawn(args, log=self.dir / "stdout.log", env=_clean_env())

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop this node (SIGTERM: Cassandra drains and exits; SIGKILL: a crash)."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.server.procs.remove(proc)

    def accepts(self) -> bool:
        """The CQL port listens (Cassandra opens it last, once the node has joined)."""
        with socket.create_connection((self.address, self.port), timeout=1):
            return True

    def gossips(self) -> bool:
        """The storage (gossip) port listens: other nodes can contact this one."""
        with socket.create_connection((self.address, self.storage_port), timeout=1):
            return True


class Cassandra(Server):
    """Apache Cassandra 5.0 (Maven Central jars), one node on 127.0.0.1, PasswordAuthenticator with a
    superuser role ``dbsh`` and a keyspace ``dbsh_test`` (SimpleStrategy, RF 1)."""

    name = "cassandra"
    ready_timeout = 90.0
    stop_signal = signal.SIGKILL   # a throw-away data dir: no drain (SIGTERM takes ~5 s)

    def _start(self) -> str:
        java = cassandra_java()
        port = free_port()
        storage = free_port()
        node = CassandraNode(self, self.dir / "node", "127.0.0.1", port, storage,
                             seeds=f"127.0.0.1:{storage}", initial_token=0, auth=True)
        node.start(java)
        self.wait_until(node.accepts, f"the CQL port {port}")
        url = f"cassandra://{CASSANDRA_USER}:{PASSWORD}@127.0.0.1:{port}/{DATABASE}"
        admin = f"cassandra://cassandra:cassandra@127.0.0.1:{port}"
        self.wait_until(lambda: _cassandra_setup(admin, [
            f"CREATE ROLE IF NOT EXISTS {CASSANDRA_USER} WITH PASSWORD = '{PASSWORD}' "
            "AND SUPERUSER = true AND LOGIN = true",
            f"CREATE KEYSPACE IF NOT EXISTS {DATABASE} WITH replication = "
            "{'class': 'SimpleStrategy', 'replication_factor': 1}"]), "CQL login and set-up")
        self.wait_until(lambda: _cassandra_release(url), f"SELECT release_version as {CASSANDRA_USER}")
        return url


def _cassandra_setup(url: str, statements: list[str]) -> bool:
    with cassandra_cluster(url, connect_timeout=5, control_connection_timeout=5) as cluster:
        session = cluster.connect()
        for text in statements:
            session.execute(text, timeout=30)
    return True


def _cassandra_release(url: str) -> bool:
    with cassandra_cluster(url, connect_timeout=5, control_connection_timeout=5) as cluster:
        return bool(cluster.connect().execute("SELECT release_version FROM system.local").one())


RING_PROPERTIES = ("-Dcassandra.ring_delay_ms=15000",)


class CassandraRing(Server):
    """Three Cassandra nodes on 127.0.0.2, .3 and .4, each on the default ports (9042, 7000); the
    first is the seed. Auth as in ``Cassandra`` (system_auth replicated to all three nodes, so a login
    survives a node down) and a keyspace ``dbsh_test`` with replication factor 3.

    The nodes start almost together: ``auto_bootstrap: false`` with pre-assigned tokens (one each,
    evenly spread) and no wait for gossip to settle; the two others as soon as the seed's gossip port
    listens. ``stop_node(i)`` / ``start_node(i)`` take one down and
    bring it back with its data; both return when every node coordinates a read at ALL again (or, for
    a stop, when the node has exited). Binds addresses other than 127.0.0.1 on fixed ports, so it only
    starts in a private network namespace."""

    name = "cassandra-ring"
    ready_timeout = 180.0
    stop_signal = signal.SIGKILL
    addresses = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
    storage_port = 7000

    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[CassandraNode] = []
        self._java = ""

    def _start(self) -> str:
        if not in_private_netns():
            raise ServerError(RING_REASON)
        self._java = cassandra_java()
        seed = f"{self.addresses[0]}:{self.storage_port}"
        count = len(self.addresses)
        for i, address in enumerate(self.addresses):
            token = -(2 ** 63) + i * (2 ** 64 // count)
            self.nodes.append(CassandraNode(self, self.dir / f"node{i + 1}", address, CASSANDRA_PORT,
                                            self.storage_port, seeds=seed, initial_token=token, auth=True))
        # A node that is not a seed gives up ("Unable to gossip with any peers") when no seed answers
        # within the ring delay: the others start once the seed's gossip port listens (a little over
        # half of its start-up), with a ring delay that outlasts a loaded machine's pauses.
        seed_node = self.nodes[0]
        seed_node.start(self._java, RING_PROPERTIES)
        self.wait_until(seed_node.gossips, f"the gossip port of the seed {seed_node.address}")
        for node in self.nodes[1:]:
            node.start(self._java, RING_PROPERTIES)
        for node in self.nodes:
            self.wait_until(node.accepts, f"the CQL port of {node.address}")
        hosts = ",".join(self.addresses)
        admin = f"cassandra://cassandra:cassandra@{hosts}:{CASSANDRA_PORT}"
        replicated = "{'class': 'SimpleStrategy', 'replication_factor': %d}" % count
        self.wait_until(lambda: _cassandra_setup(admin, [
            f"ALTER KEYSPACE system_auth WITH replication = {replicated}",
            f"CREATE ROLE IF NOT EXISTS {CASSANDRA_USER} WITH PASSWORD = '{PASSWORD}' "
            "AND SUPERUSER = true AND LOGIN = true",
            f"CREATE KEYSPACE IF NOT EXISTS {DATABASE} WITH replication = {replicated}"]),
            "CQL login and set-up")
        self.url = f"cassandra://{CASSANDRA_USER}:{PASSWORD}@{hosts}:{CASSANDRA_PORT}/{DATABASE}"
        self.wait_all_up()
        return self.url

    def node_url(self, i: int) -> str:
        """A URL that reaches node ``i`` only (as the driver's single contact point)."""
        return f"cassandra://{CASSANDRA_USER}:{PASSWORD}@{self.addresses[i]}:{CASSANDRA_PORT}/{DATABASE}"

    def wait_all_up(self) -> None:
        """Until every node, as coordinator, reads system_auth at consistency ALL: all of them are up
        and each sees the others up."""
        for i, node in enumerate(self.nodes):
            self.wait_until(lambda i=i, node=node: _cassandra_read_all(self.node_url(i), node.address),
                            f"a read at ALL coordinated by {node.address}")

    def stop_node(self, i: int, sig: int = signal.SIGTERM) -> None:
        self.nodes[i].stop(sig)

    def start_node(self, i: int) -> None:
        node = self.nodes[i]
        node.start(self._java, RING_PROPERTIES)
        self.wait_until(node.accepts, f"the CQL port of {node.address}")
        self.wait_all_up()


def _cassandra_read_all(url: str, address: str) -> bool:
    from cassandra import ConsistencyLevel
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, ExecutionProfile
    from cassandra.policies import WhiteListRoundRobinPolicy

    only = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([address]),
                            consistency_level=ConsistencyLevel.ALL, request_timeout=10)
    with cassandra_cluster(url, connect_timeout=5, control_connection_timeout=5,
                           execution_profiles={EXEC_PROFILE_DEFAULT: only}) as cluster:
        session = cluster.connect()
        return bool(session.execute("SELECT role FROM system_auth.roles WHERE role = %s", [CASSANDRA_USER]).one())


SERVERS["cassandra"] = Cassandra
