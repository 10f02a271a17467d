"""Alembic environment for dbsh.

Under ``dbsh migrate`` the connection arrives in ``config.attributes["connection"]``, already holding
the migration lock (Alembic's connection-sharing recipe). Under plain ``alembic`` the target is
resolved the way dbsh does it (``-x url=URL``, ``-x conn=PROFILE``, ``DBSH_URL``, else dbsh's default
SQLite file; the password from the URL or DBSH_PASSWORD) and the same lock is taken
(``-x lock_timeout=SECONDS`` bounds the wait). No URL is ever written in alembic.ini.
"""

from logging.config import fileConfig

from alembic import context

config = context.config
dbsh_run = config.attributes.get("dbsh", False)
if config.config_file_name and not dbsh_run:
    fileConfig(config.config_file_name)

x = context.get_x_argument(as_dictionary=True)


def target_metadata():
    """What --autogenerate compares the database with: dbsh's --metadata, else the ini's
    ``target_metadata = package.module:attribute`` (e.g. ``myapp.models:Base.metadata``)."""
    if "target_metadata" in config.attributes:
        return config.attributes["target_metadata"]
    spec = x.get("metadata") or config.get_main_option("target_metadata")
    if not spec:
        return None
    from dbsh.migrate.sql import load_object

    return load_object(spec)


def run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata(),
        render_as_batch=connection.dialect.name == "sqlite",   # ALTER TABLE through copy-and-move on SQLite
        compare_type=True,
        on_version_apply=config.attributes.get("on_version_apply"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """--sql: print the SQL for the target's dialect, touching nothing."""
    url = config.attributes.get("url")
    if url is None:
        from dbsh.migrate.sql import database_url

        url = database_url(x.get("url"), x.get("conn"))
    context.configure(url=url, target_metadata=target_metadata(), literal_binds=True,
                      dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    from dbsh.migrate.sql import database_url, locked_connection

    timeout = x.get("lock_timeout")
    with locked_connection(database_url(x.get("url"), x.get("conn")),
                           lock_timeout=float(timeout) if timeout else None) as connection:
        run(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
