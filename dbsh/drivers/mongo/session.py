"""The MongoDB session (pymongo): filters and updates are MongoDB documents, checked (language.py) and
passed through; the native language is mongosh-style ``db.<collection>.<method>(<JSON5 args>)`` (native.py).

Input accepts extended JSON ({"$oid": ...}, {"$date": ...}); output renders BSON types as relaxed
extended JSON (values.py), so `find | insert` round-trips ObjectIds, dates and decimals.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import bson
import pymongo
from pymongo import errors as mongo_errors

from dbsh.drivers.base import Capabilities, Result, Session, WriteResult, batched, field_paths, sampled_fields
from dbsh.drivers.mongo import native
from dbsh.drivers.mongo.language import check_filter, check_update, document, from_extended_json
from dbsh.drivers.mongo.values import READ_OPTIONS, id_text, type_name
from dbsh.errors import ConnectError, DbshError, NotFound, PartialWrite, QueryError, UsageError, one_line, redact

IDS_REPORTED = 1000          # inserted ids listed in the summary up to this many documents
SAMPLE_SIZE = 200            # documents describe() samples for field names and types

# server error codes that mean the user's input was wrong (exit 2), not that the server failed
BAD_INPUT_CODES = {2, 9, 14, 15, 17, 40324, 168, 15952, 16410, 16436, 31249, 31250, 31253, 31254, 40352}
AUTH_CODES = {18}


def connect(target) -> MongoSession:
    return MongoSession(target)


# where `dbsh migrate` keeps its records and lock (dbsh.drivers.mongo.migrate.MongoStore): not the user's data
DBSH_COLLECTIONS = frozenset({"dbsh_migrations", "dbsh_migrate_lock"})


class MongoSession(Session):
    # transactions need a replica set or mongos; a standalone mongod refuses them at the first statement
    capabilities = Capabilities(language="javascript", transactions=True, statement_terminator=None, dates=True)
    natural_order = ("_id",)
    name = "MongoDB"
    _tx = None   # the pymongo ClientSession of an open transaction

    def __init__(self, target):
        super().__init__(target)
        options = {k.lower() for k, _ in parse_qsl(urlsplit(target.url).query)}
        kwargs: dict[str, Any] = {"appname": "dbsh"}
        # --connect-timeout bounds finding the server and its first reply (the monitor's hello runs with
        # connectTimeoutMS as its socket timeout); a reply to a query waits as long as it takes
        waited = int(self.connect_timeout * 1000)
        if "serverselectiontimeoutms" not in options:
            kwargs["serverSelectionTimeoutMS"] = waited
        if "connecttimeoutms" not in options:
            kwargs["connectTimeoutMS"] = waited
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")   # pymongo only warns about unknown or invalid URI options
                self.mongo = pymongo.MongoClient(target.url, **kwargs)
            database = self.mongo.get_default_database(default="test")
        except (mongo_errors.ConfigurationError, mongo_errors.InvalidURI, mongo_errors.InvalidName,
                ValueError, TypeError, UserWarning) as e:
            raise UsageError(f"invalid MongoDB URL {target.display()}: {self._text(e)}") from None
        self.client = database                     # the pymongo Database, for migrate and bench
        self.db = database.with_options(codec_options=READ_OPTIONS)

    # -- errors ----------------------------------------------------------------------------
    def _text(self, e: BaseException) -> str:
        details = getattr(e, "details", None)
        if isinstance(details, dict):
            errors = details.get("writeErrors") or []
            message = (errors[0].get("errmsg") if errors else None) or details.get("errmsg")
        else:
            message = None
        text = message or str(e)
        text = text.split(", full error:")[0].split(" (configured timeouts:")[0].split(", Timeout:")[0]
        return redact(one_line(text), self.target.password)

    def _error(self, e: BaseException) -> DbshError:
        if isinstance(e, DbshError):
            return e
        if isinstance(e, OverflowError):   # BSON's integers are 64 bits
            return UsageError("an integer does not fit in 64 bits, the largest MongoDB stores",
                              hint="write it as a string, or as a float if an approximate value will do")
        if isinstance(e, (mongo_errors.ConnectionFailure, mongo_errors.ConfigurationError)) and \
                not isinstance(e, mongo_errors.OperationFailure):
            return ConnectError(f"cannot connect to {self.target.display()}: {self._text(e)}")
        code = getattr(e, "code", None)
        if isinstance(e, mongo_errors.BulkWriteError):
            errors = e.details.get("writeErrors") or [{}]
            code = errors[0].get("code")
        if code in AUTH_CODES:
            return ConnectError(f"cannot authenticate to {self.target.display()}: {self._text(e)}")
        if code in BAD_INPUT_CODES or isinstance(e, (bson.errors.InvalidDocument, mongo_errors.InvalidName,
                                                       mongo_errors.InvalidOperation, TypeError, ValueError)):
            return UsageError(self._text(e))
        return QueryError(self._text(e))

    @contextmanager
    def _errors(self):
        try:
            yield
        except (mongo_errors.PyMongoError, bson.errors.BSONError, OverflowError) as e:
            raise self._error(e) from None

    def _stream(self, cursor) -> Result:
        """Stream a cursor; the first batch is fetched now, so a bad query fails before any output."""
        with self._errors():
            try:
                first = next(cursor)
            except StopIteration:
                cursor.close()
                return Result([], None)
            except BaseException:
                cursor.close()
                raise

        def rows() -> Iterator[dict]:
            yield first
            with self._errors():
                yield from cursor

        return Result(rows(), None, close=cursor.close)

    # -- connection ------------------------------------------------------------------------
    def server_info(self) -> dict[str, Any]:
        with self._errors():
            info = self.db.command("buildInfo")
        backend = self.name
        if info.get("secantusVersion"):   # say when it is the stand-in, not a real mongod
            backend = f"MongoDB wire protocol (SecantusDB {info['secantusVersion']})"
        return {"backend": backend, "version": info.get("version"), "database": self.db.name}

    def ping(self) -> float:
        start = time.perf_counter()
        with self._errors():
            self.db.command("ping")
        return time.perf_counter() - start

    def close(self) -> None:
        if self._tx is not None:
            self._tx.end_session()   # ending a session aborts its open transaction
            self._tx = None
        self.mongo.close()

    # -- transactions ----------------------------------------------------------------------
    def begin(self) -> None:
        if self._tx is not None:
            raise UsageError("a transaction is already open")
        with self._errors():
            session = self.mongo.start_session()
            try:
                session.start_transaction()
            except BaseException:
                session.end_session()
                raise
        self._tx = session

    def commit(self) -> None:
        self._finish("commit_transaction")

    def rollback(self) -> None:
        self._finish("abort_transaction")

    def _finish(self, how: str) -> None:
        if self._tx is None:
            raise UsageError("no transaction is open")
        session, self._tx = self._tx, None
        try:
            with self._errors():
                getattr(session, how)()
        finally:
            session.end_session()

    @property
    def in_transaction(self) -> bool:
        return self._tx is not None

    # -- catalog ---------------------------------------------------------------------------
    def collections(self) -> list[str]:
        """The user's collections: not dbsh's own migration records (DBSH_COLLECTIONS) nor system.*."""
        with self._errors():
            return sorted(n for n in self.db.list_collection_names()
                          if n not in DBSH_COLLECTIONS and not n.startswith("system."))

    def databases(self) -> Result:
        with self._errors():
            names = self.db.client.list_database_names()
        return Result(({"name": n, "current": n == self.db.name} for n in sorted(names)), ["name", "current"])

    def _collection(self, name: str, *, must_exist: bool = True):
        if not isinstance(name, str) or not name or "\x00" in name or name.startswith("$"):
            raise UsageError(f"invalid collection name {name!r}")
        if must_exist:
            with self._errors():
                exists = bool(self.db.list_collection_names(filter={"name": name}))
            if not exists:
                known = self.collections()
                hint = ("collections: " + ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")) if known \
                    else f"database {self.db.name!r} has no collections"
                raise NotFound(f"no collection named {name!r} in database {self.db.name!r}", hint=hint)
        with self._errors():
            return self.db[name]

    def describe(self, name: str) -> Result:
        coll = self._collection(name)
        with self._errors():
            indexes = list(coll.list_indexes())
            sample = list(coll.aggregate([{"$sample": {"size": SAMPLE_SIZE}}]))
        indexed: dict[str, list[str]] = {}
        for index in indexes:
            unique = " (unique)" if index.get("unique") else ""
            for key in index["key"]:
                indexed.setdefault(key, []).append(index["name"] + unique)
        return sampled_fields(sample, type_name, indexed, first=lambda path: path == "_id")

    def completions(self) -> dict[str, list[str]]:
        fields: dict[str, list[str]] = {}
        with self._errors():
            for name in self.collections()[:200]:
                names: dict[str, None] = {}
                for doc in self.db[name].find({}, limit=20):
                    names.update(dict.fromkeys(p for p, _ in field_paths(doc, type_name)))
                fields[name] = list(names)
        return fields

    # -- uniform verbs ---------------------------------------------------------------------
    def insert(self, name, docs: Iterable[dict], *, batch=1000, create=False, progress=None) -> WriteResult:
        # MongoDB creates a collection on first insert; --create is accepted and changes nothing
        coll = self._collection(name, must_exist=False)
        inserted = 0
        offset = 0
        ids: list[Any] | None = []
        try:
            for chunk in batched(docs, batch):
                chunk = [document(d) for d in chunk]
                try:   # unordered: the server writes every document it can, in any order (issue 9)
                    result = coll.insert_many(chunk, ordered=False, session=self._tx)
                except mongo_errors.BulkWriteError as e:
                    if not e.details.get("writeErrors"):
                        inserted += e.details.get("nInserted", 0)
                        raise
                    raise self._batch_error(e, name, chunk, inserted, offset) from None
                offset += len(chunk)
                inserted += len(result.inserted_ids)
                if ids is not None:
                    ids.extend(result.inserted_ids)
                    if len(ids) > IDS_REPORTED:
                        ids = None
                if progress:
                    progress(len(chunk))
        except (mongo_errors.PyMongoError, bson.errors.BSONError, OverflowError, DbshError) as e:
            err = self._error(e)
            if inserted and not isinstance(err, PartialWrite):
                raise type(err)(f"{err.message} ({inserted} documents were inserted into {name} "
                                "before this error)") from None
            raise err from None
        return WriteResult("inserted", name, inserted, ids=ids)

    def _batch_error(self, e: mongo_errors.BulkWriteError, name: str, chunk: list[dict],
                     before: int, offset: int) -> DbshError:
        """One line for an unordered batch that failed in part: how many of its documents went in,
        the _ids refused, the server's first message. The error carries ``rejected``: (position in
        the call's documents, message) of each refused document, and ``written``: the call's count."""
        failures = sorted(e.details["writeErrors"], key=lambda w: w.get("index", 0))
        done = e.details.get("nInserted", len(chunk) - len(failures))
        codes = {w.get("code") for w in failures}
        what = "duplicate key" if codes == {11000} else "refused"
        shown = ", ".join(id_text(chunk[w["index"]].get("_id")) for w in failures[:5])
        more = f" and {len(failures) - 5} more" if len(failures) > 5 else ""
        first = self._text(e)
        total = f" ({before + done} in all)" if before else ""
        return PartialWrite(f"{len(failures)} of {len(chunk)} documents in the batch were not inserted into {name} "
                            f"({what}: _id {shown}{more}), the other {done} were inserted{total}; "
                            f"first error: {first}",
                            written=before + done,
                            rejected=[(offset + w["index"], self._text_of(w)) for w in failures])

    def _text_of(self, write_error: dict) -> str:
        return redact(one_line(str(write_error.get("errmsg") or write_error.get("code"))), self.target.password)

    def _find_args(self, where, fields, sort, limit, skip) -> dict[str, Any]:
        args: dict[str, Any] = {"filter": check_filter(from_extended_json(where.doc))}
        if fields:
            projection = {f.lstrip("-"): 0 if f.startswith("-") else 1 for f in fields}
            if "_id" not in projection and any(projection.values()):
                projection["_id"] = 0
            args["projection"] = projection
        if sort:
            args["sort"] = [(f, pymongo.DESCENDING if d < 0 else pymongo.ASCENDING) for f, d in sort]
        if skip:
            args["skip"] = skip
        if limit:
            args["limit"] = limit
        return args

    def find(self, name, where, *, fields=None, sort=None, limit=None, skip=None) -> Result:
        args = self._find_args(where, fields, sort, limit, skip)
        coll = self._collection(name)
        if limit == 0:   # pymongo's limit(0) means no limit
            return Result([], None)
        with self._errors():
            return self._stream(coll.find(**args, session=self._tx))

    def count(self, name, where) -> int:
        query = check_filter(from_extended_json(where.doc))
        coll = self._collection(name)
        with self._errors():
            return coll.count_documents(query, session=self._tx)

    def update(self, name, where, change, *, upsert=False, one=False) -> WriteResult:
        query = check_filter(from_extended_json(where.doc))
        doc = check_update(from_extended_json(change.doc))
        coll = self._collection(name, must_exist=not upsert)
        with self._errors():
            run = coll.update_one if one else coll.update_many
            result = run(query, doc, upsert=upsert, session=self._tx)
        if result.upserted_id is not None:
            return WriteResult("upserted", name, 1, ids=[result.upserted_id], matched=0)
        return WriteResult("updated", name, result.modified_count, matched=result.matched_count)

    def delete(self, name, where, *, one=False) -> WriteResult:
        query = check_filter(from_extended_json(where.doc))
        coll = self._collection(name)
        with self._errors():
            result = (coll.delete_one if one else coll.delete_many)(query, session=self._tx)
        return WriteResult("deleted", name, result.deleted_count)

    def explain(self, name, where, **find_options) -> Result:
        args = self._find_args(where, find_options.get("fields"), find_options.get("sort"),
                               find_options.get("limit"), find_options.get("skip"))
        coll = self._collection(name)
        with self._errors():
            plan = coll.find(**args).explain()
        return native.plan_result(plan)

    # -- native language -------------------------------------------------------------------
    def stateless(self, text: str) -> bool:
        return native.stateless(text)

    def execute(self, text: str, params: dict[str, Any] | None = None) -> Result:
        return native.execute(self, text, params)
