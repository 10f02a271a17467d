"""Neo4j over Bolt, with the official ``neo4j`` package: a backend as a package.

    session.py    the Session: connection, errors, transactions, catalog, the uniform verbs, Cypher text
    cypher.py     the verbs' Cypher without the client library: filters compiled to a WHERE with
                  ``$parameters``, quoted labels and property names, statements split, plans as rows
    values.py     graph values (nodes, relationships, paths, temporal values, points) in the output
    bench.py      the YCSB adapter for dbsh bench
    migrate.py    the version store and lease lock of dbsh migrate

The backend record (dbsh.drivers) names ``dbsh.drivers.neo4j.session:connect``; importing this package
imports no client library.
"""


def connect(target):
    from dbsh.drivers.neo4j.session import connect

    return connect(target)
