"""CouchDB over its HTTP API, with httpx: a collection is a database.

    client.py   the HTTP client: one httpx.Client, CouchDB's error answers as dbsh errors, streamed rows
    mango.py    filters, fields and sorts as a Mango _find request (pure: no I/O)
    stream.py   JSON answers read incrementally (_all_docs, _find, _changes, views)
    session.py  the dbsh Session: the verbs, the catalog, native ``METHOD /path [JSON body]`` requests

The backend record (dbsh.drivers) names ``dbsh.drivers.couchdb.session:connect``; importing this
package imports no HTTP library.
"""


def connect(target):
    from dbsh.drivers.couchdb.session import connect

    return connect(target)
