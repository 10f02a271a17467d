"""Redis driver (redis-py): every native command with redis-cli quoting, pub/sub and MONITOR streamed,
pipelined batches with per-line errors, and the uniform verbs over hashes under a key prefix.

A collection is a key prefix: ``users:42`` is document 42 of ``users``, stored as a hash. Strings
are stored as they are; other values (and strings that would read back as something else) are
JSON-encoded, so every type comes back as it went in. Standalone servers and Redis Cluster
(``redis+cluster://`` or ``?cluster=true``) work alike; ``rediss://`` is TLS.

The package: ``session`` (connection, errors, native commands), ``native`` (redis-cli quoting, replies,
RESP), ``documents`` (the uniform verbs), ``inserts`` (the insert scripts and their pipelining),
``bench`` (dbsh bench's adapter).
"""

from __future__ import annotations

from dbsh.drivers.redis.inserts import SCRIPT_CHUNK, SEQ_SUFFIX, SHAPED_FIELDS, decode_value, encode_value
from dbsh.drivers.redis.native import reply_result, resp_bulk, resp_commands, split_args
from dbsh.drivers.redis.session import RedisSession

__all__ = ["RedisSession", "SCRIPT_CHUNK", "SEQ_SUFFIX", "SHAPED_FIELDS", "connect", "decode_value", "encode_value",
           "reply_result", "resp_bulk", "resp_commands", "split_args"]


def connect(target) -> RedisSession:
    return RedisSession(target)
