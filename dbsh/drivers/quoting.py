"""redis-cli's quoting (sds.c sdssplitargs), shared by the languages that read commands the way redis-cli
does: Redis, and Memcached's text protocol commands. Plain Python: no client library."""

from __future__ import annotations

from dbsh.errors import UsageError

_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("a"): b"\a"}
_HEX = b"0123456789abcdefABCDEF"
_SPACE = b" \n\r\t\v\f"


def split_args(line: str | bytes) -> list[bytes]:
    """Split a command line into arguments exactly as redis-cli does (sds.c sdssplitargs).

    "double quotes" take \\n \\r \\t \\b \\a \\xHH and \\<char>; 'single quotes' take only \\';
    a closing quote must be followed by a space or the end; unbalanced quotes are an error.
    """
    data = line.encode("utf-8", "surrogateescape") if isinstance(line, str) else line
    if b'"' not in data and b"'" not in data:
        return data.split()   # no quotes: plain whitespace splitting (the same space characters)
    args: list[bytes] = []
    i, n = 0, len(data)
    while True:
        while i < n and data[i] in _SPACE:
            i += 1
        if i >= n:
            return args
        current = bytearray()
        in_double = in_single = False
        while True:
            c = data[i] if i < n else None
            if in_double:
                if c is None:
                    raise UsageError("unbalanced quotes in command", hint="a \" is not closed")
                nxt = data[i + 1] if i + 1 < n else None
                if (c == 0x5C and nxt == ord("x") and i + 3 < n and data[i + 2] in _HEX
                        and data[i + 3] in _HEX):
                    current.append(int(data[i + 2:i + 4], 16))
                    i += 3
                elif c == 0x5C and nxt is not None:
                    i += 1
                    current += _ESCAPES.get(nxt, bytes([nxt]))
                elif c == ord('"'):
                    if nxt is not None and nxt not in _SPACE:
                        raise UsageError("closing quote must be followed by a space in command")
                    i += 1
                    break
                else:
                    current.append(c)
            elif in_single:
                if c is None:
                    raise UsageError("unbalanced quotes in command", hint="a ' is not closed")
                nxt = data[i + 1] if i + 1 < n else None
                if c == 0x5C and nxt == ord("'"):
                    i += 1
                    current.append(nxt)
                elif c == ord("'"):
                    if nxt is not None and nxt not in _SPACE:
                        raise UsageError("closing quote must be followed by a space in command")
                    i += 1
                    break
                else:
                    current.append(c)
            else:
                if c is None or c in _SPACE:
                    break
                if c == ord('"'):
                    in_double = True
                elif c == ord("'"):
                    in_single = True
                else:
                    current.append(c)
            i += 1
        args.append(bytes(current))
