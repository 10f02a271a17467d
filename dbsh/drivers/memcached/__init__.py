"""Memcached: a backend as a package.

    session.py    the Session: native commands, the uniform verbs over JSON documents under a key prefix,
                  the bulk path (pipelined quiet meta sets, each server's batch ended by a no-op)
    protocol.py   the text protocol on pymemcache's connections: one Node per server
    native.py     native commands: parsed and checked before sending, replies rendered as rows
    language.py   the language's rules (command table, writes, destructive, completion, lexer): no
                  client library, so the shell and the read-only guard use it without pymemcache
    bench.py      the YCSB adapter for dbsh bench

Importing this package imports no client library: session.py (named by the backend record) does.
"""
