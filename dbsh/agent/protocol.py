"""The agent's wire format: frames of a 4-byte big-endian length and a payload.

The client's first frame is the request, NUL-separated fields (argv and environment cannot hold a
NUL), with the client's stdin, stdout and stderr attached (SCM_RIGHTS). Then the agent says
``accepted``, ``busy`` or ``refused:REASON``; the client may send ``interrupt`` (Ctrl-C); the agent
ends with ``exit:CODE``. Plain bytes and the _socket module only: the client imports nothing else.
"""

from __future__ import annotations

import os
import sys

VERSION = b"dbsh-agent-1"
MAX_FRAME = 16 << 20


def send(sock, payload: bytes, fds: list[int] | None = None) -> None:
    data = len(payload).to_bytes(4, "big") + payload
    if fds:
        import _socket

        rights = b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in fds)
        sent = sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])
        data = data[sent:]
    while data:
        data = data[sock.send(data):]


def _exactly(sock, n: int, head: bytes = b"") -> bytes | None:
    parts, have = [head], len(head)
    while have < n:
        chunk = sock.recv(min(n - have, 1 << 20))
        if not chunk:
            return None
        parts.append(chunk)
        have += len(chunk)
    return b"".join(parts)


def recv(sock) -> bytes | None:
    """The next frame's payload; None at the end of the stream."""
    head = _exactly(sock, 4)
    if head is None:
        return None
    size = int.from_bytes(head, "big")
    if size > MAX_FRAME:
        raise ValueError("frame too large")
    return _exactly(sock, size)


def recv_with_fds(sock, most: int = 3) -> tuple[bytes | None, list[int]]:
    """The first frame and the file descriptors that came with it."""
    import _socket

    space = _socket.CMSG_SPACE(most * 4)
    data, ancillary, _, _ = sock.recvmsg(65536, space)
    fds: list[int] = []
    for level, kind, payload in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            usable = len(payload) - len(payload) % 4
            fds += [int.from_bytes(payload[i:i + 4], sys.byteorder, signed=True) for i in range(0, usable, 4)]
    if len(data) < 4:
        rest = _exactly(sock, 4, data)
        if rest is None:
            return None, fds
        data = rest
    size = int.from_bytes(data[:4], "big")
    if size > MAX_FRAME:
        raise ValueError("frame too large")
    whole = _exactly(sock, size + 4, data)
    return (None if whole is None else whole[4:]), fds


def encode_request(op: str, *, argv: list[str] | tuple[str, ...] = (), cwd: str = "", umask: int = 0o022,
                   ttys: str = "000", encodings: list[str] | tuple[str, ...] = (),
                   env: dict[str, str] | None = None) -> bytes:
    fields = [VERSION, op.encode(), os.fsencode(cwd), b"%d" % umask, ttys.encode(),
              "\n".join(encodings).encode(), b"%d" % len(argv)]
    fields += [os.fsencode(a) for a in argv]
    fields += [os.fsencode(k) + b"=" + os.fsencode(v) for k, v in (env or {}).items()]
    return b"\0".join(fields)


def decode_request(payload: bytes) -> dict:
    fields = payload.split(b"\0")
    if fields[0] != VERSION:
        raise ValueError("not a request of this dbsh's agent protocol")
    argc = int(fields[6])
    argv = [os.fsdecode(a) for a in fields[7:7 + argc]]
    env = {}
    for item in fields[7 + argc:]:
        key, _, value = item.partition(b"=")
        env[os.fsdecode(key)] = os.fsdecode(value)
    return {"op": fields[1].decode(), "cwd": os.fsdecode(fields[2]), "umask": int(fields[3]),
            "ttys": fields[4].decode(), "encodings": fields[5].decode().split("\n"), "argv": argv, "env": env}
