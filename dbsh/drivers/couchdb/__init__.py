"""CouchDB over its HTTP API, with httpx: a collection is a database.

    client.py   the HTTP client: one httpx.Client, CouchDB's error answers as dbsh errors, streamed rows
    mango.py    filters as Mango selectors with MongoDB's meaning, and the plan of a find: what CouchDB
                does and what dbsh does on its answer (pure: no I/O)
    stream.py   JSON answers read incrementally (_all_docs, _find, _changes, views)
    session.py  the dbsh Session: the verbs, the catalog, native ``METHOD /path [JSON body]`` requests
    bench.py    the YCSB adapter for dbsh bench
    migrate.py  the version store and lease lock of dbsh migrate

The backend record (dbsh.drivers) names ``dbsh.drivers.couchdb.session:connect``; importing this
package imports no HTTP library.
"""


def connect(target):
    from dbsh.drivers.couchdb.session import connect

    return connect(target)
