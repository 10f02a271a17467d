"""Cassandra URLs: ``cassandra://user:pw@h1,h2:9042/keyspace?consistency=LOCAL_QUORUM&dc=dc1&ssl=true``."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote

from dbsh.errors import UsageError

DEFAULT_PORT = 9042


def parse_url(url: str) -> dict[str, Any]:
    """``cassandra://user:pw@h1,h2:9042/keyspace?consistency=LOCAL_QUORUM&dc=dc1&ssl=true``."""
    scheme, rest = url.split("://", 1)
    if scheme.lower() != "cassandra":
        raise UsageError(f"not a Cassandra URL: {scheme}://")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    hostinfo = netloc.rpartition("@")[2]
    hosts, port = [], DEFAULT_PORT
    for item in (hostinfo or "127.0.0.1").split(","):
        item = item.strip()
        if item.startswith("["):                      # [::1]:9042
            host, _, tail = item[1:].partition("]")
            item_port = tail.lstrip(":")
        else:
            host, _, item_port = item.partition(":")
        if item_port:
            if not item_port.isdigit():
                raise UsageError(f"invalid port {item_port!r} in the Cassandra URL")
            port = int(item_port)
        if host:
            hosts.append(host)
    options = dict(parse_qsl(query))
    keyspace = unquote(path.strip("/")) or options.pop("keyspace", None) or None
    return {"hosts": hosts or ["127.0.0.1"], "port": port, "keyspace": keyspace, "options": options}

