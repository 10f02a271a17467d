"""MongoDB, with pymongo: a backend as a package.

    session.py    the Session: connection, errors, transactions, catalog, the uniform verbs
    language.py   the language without pymongo: filter and update checks, extended JSON, and the
                  mongosh-style statement parser (``db.<collection>.<method>(<JSON5 args>)``)
    native.py     native statements run: one function per collection method, explain plans as rows
    values.py     BSON values as relaxed extended JSON in the output, and their type names
    bench.py      the YCSB adapter for dbsh bench
    migrate.py    the version store and lease lock of dbsh migrate

The backend record (dbsh.drivers) names ``dbsh.drivers.mongo.session:connect``; importing this
package imports no client library.
"""


def connect(target):
    from dbsh.drivers.mongo.session import connect

    return connect(target)
