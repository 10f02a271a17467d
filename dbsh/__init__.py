"""dbsh: one command-line shell for SQL, MongoDB, Redis, Cassandra, Neo4j and CouchDB."""

__version__ = "0.1.0"

# rows per batch (one transaction each) of insert --file and copy: a PostgreSQL COPY or a SQLite
# multi-row insert of 5,000 rows costs little more than one of 1,000 (a million rows into
# PostgreSQL: 5.8 s in batches of 1,000, 4.0 s in batches of 5,000, on the test VM)
DEFAULT_BATCH = 5000

# seconds to connect and to wait for the server's first reply (--connect-timeout): a wrong port, or one
# where another protocol listens, is a clear error (exit 3) instead of a hang
DEFAULT_CONNECT_TIMEOUT = 10.0
