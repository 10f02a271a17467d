"""Fixtures: real servers (started lazily, once per session, by tests/servers.py) and an isolated
config/data/cache home for every test.

Each server fixture first honours DBSH_TEST_<BACKEND>_URL (POSTGRES, MARIADB, REDIS, REDIS_CLUSTER,
MEMCACHED, COUCHDB, MONGO, NEO4J, CASSANDRA) and then uses that server instead of starting one (compose.yaml
runs them all). A missing server binary is an error, not a skip.
"""

from __future__ import annotations

import os

import pytest

from tests import servers

# fixture name -> (env suffix, server class, marker added to tests that use it)
BACKENDS = {
    "postgres_url": ("POSTGRES", servers.Postgres, "postgres"),
    "mariadb_url": ("MARIADB", servers.MariaDB, "mariadb"),
    "redis_url": ("REDIS", servers.Redis, "redis"),
    "redis_cluster_url": ("REDIS_CLUSTER", servers.RedisCluster, "redis"),
    "memcached_url": ("MEMCACHED", servers.Memcached, "memcached"),
    "couchdb_url": ("COUCHDB", servers.PouchDB, "pouchdb"),
    "mongo_url": ("MONGO", servers.SecantusDB, "secantusdb"),
    "neo4j_url": ("NEO4J", servers.Neo4j, "neo4j"),
    "cassandra_url": ("CASSANDRA", servers.Cassandra, "cassandra"),
}
# what each server this session started is called in the terminal summary -> the server
STARTED: dict[str, servers.Server] = {}


def _external(fixture: str) -> str | None:
    return os.environ.get(f"DBSH_TEST_{BACKENDS[fixture][0]}_URL") or None


def _server(fixture: str):
    """Yield the external URL, or start the server, yield its URL and stop it at session end."""
    url = _external(fixture)
    if url:
        yield url
        return
    with BACKENDS[fixture][1]() as server:
        STARTED[server.name] = server
        yield server.url


@pytest.fixture(scope="session")
def postgres_url():
    yield from _server("postgres_url")


@pytest.fixture(scope="session")
def mariadb_url():
    yield from _server("mariadb_url")


@pytest.fixture(scope="session")
def redis_url():
    yield from _server("redis_url")


@pytest.fixture(scope="session")
def redis_cluster_url():
    yield from _server("redis_cluster_url")


@pytest.fixture(scope="session")
def memcached_url():
    yield from _server("memcached_url")


@pytest.fixture(scope="session")
def couchdb_url():
    yield from _server("couchdb_url")


@pytest.fixture(scope="session")
def mongo_url():
    yield from _server("mongo_url")


@pytest.fixture(scope="session")
def neo4j_url():
    yield from _server("neo4j_url")


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path}/test.db"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own XDG config/data/cache dirs and no DBSH_* settings from the user
    (DBSH_TEST_* are kept), so nothing reads or writes the real ~/.config/dbsh."""
    base = tmp_path_factory.mktemp("home")
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        path = base / var.split("_")[1].lower()
        path.mkdir()
        monkeypatch.setenv(var, str(path))
    runtime = base / "runtime"   # the agent's socket dir: no test reaches a user's agent
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    for var in list(os.environ):
        if var.startswith("DBSH_") and not var.startswith("DBSH_TEST_"):
            monkeypatch.delenv(var)
    return base


@pytest.fixture
def dbsh_env(_isolated_home):
    """The isolated environment as a dict, for subprocess ``env=`` (or ``monkeypatch``)."""
    return dict(os.environ)


def pytest_collection_modifyitems(items):
    """Mark tests by the servers they use, so ``-m pouchdb`` etc. select them and a stand-in pass is
    labelled as one (external servers from DBSH_TEST_*_URL get the plain backend marker)."""
    for item in items:
        for fixture in BACKENDS.keys() & set(getattr(item, "fixturenames", ())):
            marker = BACKENDS[fixture][2]
            if _external(fixture) and marker in ("pouchdb", "secantusdb"):
                continue
            item.add_marker(marker)


def pytest_report_header(config):
    used = [f"{name.removesuffix('_url')}={'external' if _external(name) else cls.__name__}"
            for name, (_, cls, _) in BACKENDS.items() if cls or _external(name)]
    netns = "private network namespace" if servers.in_private_netns() else "host network"
    lines = [f"dbsh test servers: {', '.join(used)}; {netns}"]
    if not _external("neo4j_url"):
        lines.append(f"neo4j: Neo4j {servers.neo4j_version()} Community (.test-deps/neo4j), "
                     f"Java {os.path.realpath(servers.NEO4J_DIR / 'java')}")
    if not _external("cassandra_url"):
        lines.append(f"cassandra: Apache Cassandra {servers.cassandra_version()} (.test-deps/cassandra)")
    return lines


@pytest.fixture(scope="session")
def cassandra_url():
    yield from _server("cassandra_url")


@pytest.fixture(scope="module")
def cassandra_ring():
    """A three-node Cassandra ring on 127.0.0.2-4 (same ports), for tests that stop and restart a node:
    the started ``servers.CassandraRing`` (its ``url`` lists the three nodes). Only in a private network
    namespace; there is no external stand-in for it (the tests kill its nodes)."""
    if not servers.in_private_netns():
        pytest.skip(servers.RING_REASON)
    with servers.CassandraRing() as ring:
        STARTED["cassandra ring (3 nodes)"] = ring
        yield ring


def pytest_terminal_summary(terminalreporter):
    """How long each server this session started took to be ready (the JVMs take seconds)."""
    if STARTED:
        terminalreporter.write_line("dbsh test servers started: " + ", ".join(
            f"{name} {server.startup_seconds:.1f} s" for name, server in STARTED.items()
            if server.startup_seconds is not None))
