"""Driver registry: URL scheme -> driver module, imported only when that scheme is used.

Third-party drivers register a module under the ``dbsh.drivers`` entry-point group, with the
URL scheme as the entry-point name; the module exposes ``connect(target) -> Session``.
"""

from __future__ import annotations

import importlib

from dbsh.errors import UsageError

BUILTIN: dict[str, str] = {
    "sqlite": "dbsh.drivers.sql",
    "postgresql": "dbsh.drivers.sql",
    "postgres": "dbsh.drivers.sql",
    "mysql": "dbsh.drivers.sql",
    "mariadb": "dbsh.drivers.sql",
    "mongodb": "dbsh.drivers.mongo",
    "mongodb+srv": "dbsh.drivers.mongo",
    "redis": "dbsh.drivers.redis",
    "rediss": "dbsh.drivers.redis",
    "redis+cluster": "dbsh.drivers.redis",
    "rediss+cluster": "dbsh.drivers.redis",
    "cassandra": "dbsh.drivers.cassandra",
    "neo4j": "dbsh.drivers.neo4j",
    "neo4j+s": "dbsh.drivers.neo4j",
    "neo4j+ssc": "dbsh.drivers.neo4j",
    "bolt": "dbsh.drivers.neo4j",
    "bolt+s": "dbsh.drivers.neo4j",
    "bolt+ssc": "dbsh.drivers.neo4j",
    "couchdb": "dbsh.drivers.couchdb",
    "couchdbs": "dbsh.drivers.couchdb",
}

# The pip extra that brings each module's client library, for a helpful error.
EXTRAS = {
    "dbsh.drivers.mongo": "mongo",
    "dbsh.drivers.redis": "redis",
    "dbsh.drivers.cassandra": "cassandra",
    "dbsh.drivers.neo4j": "neo4j",
    "dbsh.drivers.couchdb": "couchdb",
}


def _plugin(scheme: str) -> str | None:
    from importlib.metadata import entry_points

    for ep in entry_points(group="dbsh.drivers"):
        if ep.name == scheme:
            return ep.value
    return None


def module_for(scheme: str) -> str:
    scheme = scheme.lower()
    found = BUILTIN.get(scheme) or _plugin(scheme)
    if not found:
        known = ", ".join(sorted(BUILTIN))
        raise UsageError(f"unknown URL scheme {scheme!r}", hint=f"known: {known}")
    return found


def load(scheme: str):
    name = module_for(scheme)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and (e.name == name or name.startswith(e.name + ".")):
            raise UsageError(f"no driver for {scheme}:// in this dbsh ({name} is not installed)") from None
        extra = EXTRAS.get(name, "all")
        raise UsageError(f"the {scheme}:// driver needs the Python package {e.name!r}",
                         hint=f"pip install 'dbsh[{extra}]'") from None


def connect(target):
    """Open a Session for a Target."""
    return load(target.scheme).connect(target)
