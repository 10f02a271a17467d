"""dbsh: one command-line shell for SQL, MongoDB, Redis, Cassandra, Neo4j and CouchDB."""

__version__ = "0.1.0"
