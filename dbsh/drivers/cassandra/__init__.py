"""Cassandra (DataStax cassandra-driver): a backend as a package.

    cql.py        the CQL compiler: filter/update/sort AST + TableMeta -> CQL text with ? markers and the
                  values to bind, what dbsh checks on each row itself, and why a scan is needed. Pure:
                  no cassandra-driver import, so its unit tests run without the driver
    values.py     JSON values in, each CQL type's value out; the column types insert --create infers
    urls.py       cassandra://user:pw@h1,h2:9042/keyspace?consistency=... parsed
    session.py    the Session: connection (bounded by --connect-timeout), errors, catalog, CQL passthrough
    documents.py  the uniform verbs: prepared statements, concurrent writes, client-side checks and sorts
    bench.py      the YCSB adapter for dbsh bench
    migrate.py    dbsh migrate's records and its lock (a lightweight transaction with a TTL)

Importing this package imports no client library: session.py (named by the backend record) does.
"""
