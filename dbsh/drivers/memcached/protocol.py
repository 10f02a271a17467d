"""Memcached's text protocol on pymemcache's connections: one Node per server.

pymemcache's Client makes and keeps the connection (TCP or a unix socket, TLS, the connect and reply
timeouts) and its HashClient places keys on servers (rendezvous hashing), so dbsh and an application
using pymemcache put a key on the same server. The meta commands, pipelined batches and
``lru_crawler metadump``, which pymemcache has no calls for, are written and read here, on the
client's socket. Each exchange reads its replies to the end, so the socket is always in step.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import BinaryIO
from urllib.parse import unquote_to_bytes

from pymemcache.client.base import Client

from dbsh.errors import ConnectError, QueryError, UsageError

CRAWLER_WAIT = 30.0        # seconds to wait for another client's lru_crawler run to finish
# what a server started with SASL (-S) does to the text protocol: it closes the connection
SASL_HINT = ("a server started with SASL (-S) speaks only the binary protocol, and dbsh (pymemcache) the text "
             "protocol, whose login is memcached's ASCII authentication (-Y)")


class AuthClient(Client):
    """pymemcache's Client, logged in on every (re)connect when the server takes memcached's ASCII
    authentication (``-Y`` auth file): a ``set`` of "user password" before anything else."""

    auth: tuple[str, str] | None = None

    def _connect(self) -> None:
        super()._connect()
        if self.auth is None:
            return
        user, password = self.auth
        data = f"{user} {password}".encode()
        self.sock.sendall(b"set auth 0 0 %d\r\n%b\r\n" % (len(data), data))
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            reply += chunk
        if reply != b"STORED\r\n":
            self.close()
            raise _AuthFailed(reply.decode("utf-8", "replace").strip()
                              or f"the server closed the connection at the login ({SASL_HINT})")


class _AuthFailed(Exception):
    pass


def server_error(line: bytes) -> Exception | None:
    """The dbsh error of an error reply (None: not one). CLIENT_ERROR is bad input (exit 2), as is an
    item over the server's size limit; other server errors exit 1."""
    if line == b"ERROR" or line.startswith(b"ERROR "):
        return QueryError("the server does not know this command")
    if line.startswith(b"CLIENT_ERROR"):
        text = line[13:].decode("utf-8", "replace")
        if text == "unauthenticated":
            return ConnectError("the server needs a user name and password (memcached://user:password@host)")
        return UsageError(f"memcached: {text}")
    if line.startswith(b"SERVER_ERROR"):
        text = line[13:].decode("utf-8", "replace")
        if "too large" in text:
            return UsageError(f"memcached: {text} (the value is over the server's item size limit)")
        return QueryError(f"memcached: {text}")
    if line.startswith(b"BUSY"):
        return QueryError(f"memcached: {line.decode('utf-8', 'replace')}")
    return None


class Node:
    """One server: its pymemcache client, and buffered reading of replies off its socket."""

    def __init__(self, name: str, client: Client):
        self.name = name                 # host:port or the socket path, as HashClient names it
        self.client = client
        self._reader: BinaryIO | None = None   # buffered reading off the client's socket, by _file()
        self._sock: object = None                # the socket it reads
        self.item_size_max: int | None = None

    def _file(self) -> None:
        """Connected, with a reader on the client's current socket."""
        sock = self.client.sock
        if sock is None:
            self.connect()
            sock = self.client.sock
        if sock is not self._sock:
            self._sock, self._reader = sock, sock.makefile("rb", buffering=1 << 16)

    def connect(self) -> None:
        try:
            self.client._connect()
        except _AuthFailed as e:
            raise ConnectError(f"cannot authenticate to memcached at {self.name}: {e}") from None
        except (TimeoutError, OSError) as e:
            raise ConnectError(f"cannot connect to memcached at {self.name}: {e.strerror or e}") from None

    def lost(self, error: BaseException | None = None) -> ConnectError:
        """Close the connection (a reply may be half read) and say so; the next request reconnects."""
        self.close()
        why = f": {getattr(error, 'strerror', None) or error}" if error else ""
        return ConnectError(f"lost the connection to memcached at {self.name}{why}")

    def close(self) -> None:
        self._reader = self._sock = None
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass

    # -- sending and reading ---------------------------------------------------------------
    def send(self, data: bytes) -> None:
        self._file()
        try:
            self.client.sock.sendall(data)
        except OSError as e:
            raise self.lost(e) from None
        except BaseException:   # Ctrl-C halfway through a request
            self.close()
            raise

    def line(self) -> bytes:
        """One reply line without its line end (metadump ends its lines with a bare newline)."""
        if self._reader is None:   # closed since the request went out
            raise self.lost()
        try:
            line = self._reader.readline()
        except (OSError, ValueError) as e:
            raise self.lost(e) from None
        if not line.endswith(b"\n"):
            raise self.lost()
        return line[:-2] if line.endswith(b"\r\n") else line[:-1]

    def data(self, size: int) -> bytes:
        """A data block of ``size`` bytes and its \\r\\n."""
        if self._reader is None:
            raise self.lost()
        try:
            block = self._reader.read(size + 2)
        except (OSError, ValueError) as e:
            raise self.lost(e) from None
        if len(block) != size + 2:
            raise self.lost()
        return block[:-2]

    def until_noop(self) -> list[bytes]:
        """The lines before MN: what quiet meta commands and noreply commands said (errors, misses)."""
        lines = []
        while (line := self.line()) != b"MN":
            lines.append(line)
        return lines

    # -- requests the verbs use ------------------------------------------------------------
    def version(self) -> str:
        self.send(b"version\r\n")
        line = self.line()
        if not line.startswith(b"VERSION "):
            raise server_error(line) or QueryError(f"unexpected reply to version: {line[:80]!r}")
        return line[8:].decode("utf-8", "replace")

    def settings(self) -> dict[str, str]:
        self.send(b"stats settings\r\n")
        found = {}
        while (line := self.line()) != b"END":
            parts = line.split(b" ", 2)
            if parts[0] != b"STAT" or len(parts) < 3:
                raise server_error(line) or QueryError(f"unexpected reply to stats settings: {line[:80]!r}")
            found[parts[1].decode()] = parts[2].decode("utf-8", "replace")
        return found

    def max_item(self) -> int:
        """The server's item size limit (-I), read once."""
        if self.item_size_max is None:
            self.item_size_max = int(self.settings().get("item_size_max", 1 << 20))
        return self.item_size_max

    def keys(self) -> Iterator[bytes]:
        """Every key the LRU crawler walks, URL-decoded (metadump, without parsing the rest of each line)."""
        for line in self.metadump(parse=False):
            end = line.find(b" ")
            key = line[4:end if end > 0 else None]
            yield unquote_to_bytes(key) if b"%" in key else key

    def metadump(self, command: bytes = b"lru_crawler metadump all\r\n", *, wait: bool = True, parse: bool = True
                 ) -> Iterator:
        """Every item the LRU crawler walks (key=... exp=... la=... cas=... fetch=... cls=... size=...),
        the key URL-decoded. ``wait``: while another client's crawl runs (the server does one at a
        time), ask again for up to CRAWLER_WAIT seconds."""
        deadline = time.monotonic() + CRAWLER_WAIT
        pause = 0.005
        while True:
            self.send(command)
            line = self.line()
            if not (wait and line.startswith(b"BUSY")):
                break
            if time.monotonic() > deadline:
                raise QueryError(f"memcached at {self.name}: the LRU crawler stayed busy for {CRAWLER_WAIT:.0f} s "
                                 "(another client is listing keys)")
            time.sleep(pause)
            pause = min(pause * 2, 0.2)
        done = False
        try:
            yield from self.items(line, parse)
            done = True
        finally:
            if not done:
                self.close()   # the rest of the listing may still be on its way: start afresh next time

    def items(self, line: bytes | None = None, parse: bool = True) -> Iterator:
        """The items of a metadump reply, read to END (``line``: its first, read already); with ``parse``
        False, its lines as they are."""
        if line is None:
            line = self.line()
        while line != b"END":
            if not line.startswith(b"key="):
                error = server_error(line)
                if error is None or line.startswith(b"ERROR"):
                    error = UsageError(f"memcached at {self.name} does not list its keys "
                                       f"({line[:80].decode('utf-8', 'replace')}; started with -X?): dbsh cannot "
                                       "scan it; find by id only")
                while line != b"END" and not line.startswith((b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR", b"BUSY")):
                    line = self.line()
                raise error
            if parse:
                item = dict(field.partition(b"=")[::2] for field in line.split(b" "))
                item[b"key"] = unquote_to_bytes(item[b"key"])
                yield item
            else:
                yield line
            line = self.line()
