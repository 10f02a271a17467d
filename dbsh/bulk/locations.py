"""Where a copy reads and writes: URL/COLLECTION or PROFILE/COLLECTION, opened as every session is."""

from __future__ import annotations

from urllib.parse import urlsplit

from dbsh.drivers.base import Session
from dbsh.errors import UsageError


# -- locations -------------------------------------------------------------------------------
def split_location(text: str) -> tuple[str, str]:
    """``scheme://.../db/collection`` -> (URL of the database, collection); ``PROFILE/collection`` too.

    The collection is the last path part: sqlite:///app.db/users, mongodb://h/shop/products,
    redis://h:6379/0/users, couchdb://h:5984/users, cassandra://h/ks/users, bolt://h/Person.
    """
    if "://" not in text:
        name, sep, collection = text.rpartition("/")
        if not sep or not name or not collection:
            raise UsageError(f"expected URL/COLLECTION or PROFILE/COLLECTION, got {text!r}")
        return name, collection
    parts = urlsplit(text)
    base, sep, collection = parts.path.rpartition("/")
    if not sep or not collection:
        from dbsh.errors import redact

        raise UsageError(f"no collection in {redact(text)!r}",
                         hint="put it last in the path, e.g. postgresql://host/db/table")
    if parts.scheme.lower() == "sqlite" and base in ("", "/"):
        raise UsageError(f"no SQLite file in {text!r}", hint="e.g. sqlite:///app.db/users")
    # by hand: urlunsplit would turn sqlite:///app.db into sqlite:/app.db
    rebuilt = f"{parts.scheme}://{parts.netloc}{base}" + (f"?{parts.query}" if parts.query else "")
    return rebuilt, collection


def open_location(text: str, settings=None, *, writes: str | None = None) -> tuple[Session, str]:
    """The session and collection of a URL/COLLECTION or PROFILE/COLLECTION location, opened as every
    session is (dbsh.context): ``writes`` for a destination, which a read-only target refuses."""
    from dbsh import context, drivers

    where, collection = split_location(text)
    settings = settings or context.Settings()
    target = context.resolve(settings, where)
    # a global flag (--consistency) goes to the end whose backend takes it
    known = {f.dest for f in drivers.for_scheme(target.scheme).flags}
    options = {k: v for k, v in settings.options.items() if k in known}
    return context.open_session(target, yes=settings.yes, options=options, writes=writes), collection
