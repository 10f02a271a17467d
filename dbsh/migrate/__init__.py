"""`dbsh migrate`: Alembic for SQL targets; one locked, versioned runner for the NoSQL ones.

Importing this package loads neither Alembic nor SQLAlchemy: ``typer_app()`` builds the command
group, and the migration engines are imported only when a migrate command runs.
"""


def typer_app():
    """The `dbsh migrate` command group (Typer), for ``app.add_typer`` in dbsh.cli."""
    from dbsh.migrate.cli import build

    return build()
