"""`dbsh migrate`: Alembic for SQL targets; one locked, versioned runner for the NoSQL ones.

Importing this package loads neither Alembic nor SQLAlchemy: the commands (dbsh.migrate.commands,
their options in dbsh.verbs) import the migration engines only when one runs.
"""
