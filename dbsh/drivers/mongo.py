"""MongoDB driver (pymongo): filters and updates are MongoDB documents, validated and passed through.

Input accepts extended JSON ({"$oid": ...}, {"$date": ...}); output renders BSON types as relaxed
extended JSON (bson.json_util), so `find | insert` round-trips ObjectIds, dates and decimals.
The native language is mongosh-style ``db.<collection>.<method>(<JSON5 args>)``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import warnings
from contextlib import contextmanager
from typing import Any, Iterable, Iterator
from urllib.parse import parse_qsl, urlsplit

import bson
import pymongo
from bson import json_util
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.datetime_ms import DatetimeMS
from pymongo import errors as mongo_errors

from dbsh.drivers.base import Capabilities, Result, Session, WriteResult, batched, field_paths, sampled_fields
from dbsh.errors import ConnectError, DbshError, NotFound, PartialWrite, QueryError, Unsupported, UsageError, one_line, redact
from dbsh.output import register_encoder

IDS_REPORTED = 1000          # inserted ids listed in the summary up to this many documents
SAMPLE_SIZE = 200            # documents describe() samples for field names and types

# Dates come back as DatetimeMS (a bson type) so json output is {"$date": ...}, not a bare string.
READ_OPTIONS = CodecOptions(tz_aware=True, datetime_conversion=DatetimeConversion.DATETIME_MS)

QUERY_OPERATORS = frozenset("""
$eq $ne $gt $gte $lt $lte $in $nin $and $or $nor $not $exists $type $expr $jsonSchema $mod $regex
$options $text $search $language $caseSensitive $diacriticSensitive $where $geoIntersects $geoWithin
$near $nearSphere $box $center $centerSphere $geometry $maxDistance $minDistance $polygon $all
$elemMatch $size $bitsAllClear $bitsAllSet $bitsAnyClear $bitsAnySet $comment $rand $sampleRate
""".split())
# operator values that are not query documents (aggregation expressions, schemas, geometry, JS)
OPAQUE_OPERATORS = frozenset("$expr $jsonSchema $where $geometry $box $center $centerSphere $polygon $text".split())
UPDATE_OPERATORS = frozenset("""
$set $unset $inc $mul $rename $min $max $currentDate $setOnInsert $push $pull $pullAll $addToSet $pop $bit
""".split())
# server error codes that mean the user's input was wrong (exit 2), not that the server failed
BAD_INPUT_CODES = {2, 9, 14, 15, 17, 40324, 168, 15952, 16410, 16436, 31249, 31250, 31253, 31254, 40352}
AUTH_CODES = {18}


def _relaxed(value: Any) -> Any:
    return json_util.default(value, json_options=json_util.RELAXED_JSON_OPTIONS)


for _kind in (bson.ObjectId, bson.Decimal128, DatetimeMS, bson.Binary, bson.Regex, bson.Timestamp,
              bson.MinKey, bson.MaxKey, bson.Code, bson.DBRef):
    register_encoder(_kind, _relaxed)


def from_extended_json(value: Any) -> Any:
    """Plain JSON values -> BSON values: {"$oid": ...} becomes an ObjectId, {"$date": ...} a datetime."""
    if isinstance(value, dict):
        converted = {k: from_extended_json(v) for k, v in value.items()}
        if converted and all(isinstance(k, str) and k.startswith("$") for k in converted):
            try:
                return json_util.object_hook(converted)
            except (ValueError, TypeError, KeyError, bson.errors.BSONError) as e:
                raise UsageError(f"bad extended JSON {json.dumps(value, default=str)[:80]}: {one_line(str(e))}") \
                    from None
        return converted
    if isinstance(value, list):
        return [from_extended_json(v) for v in value]
    return value


def check_filter(doc: Any, where: str = "filter") -> dict:
    """Reject unknown $operators before anything reaches the server (a typo is bad input, exit 2)."""
    if not isinstance(doc, dict):
        raise UsageError(f"a {where} must be a JSON object, not {type(doc).__name__}")
    _check_query(doc, where)
    return doc


def _check_query(value: Any, where: str) -> None:
    if isinstance(value, list):
        for item in value:
            _check_query(item, where)
        return
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        if not isinstance(key, str):
            raise UsageError(f"invalid field name {key!r} in {where}")
        if key.startswith("$"):
            if key not in QUERY_OPERATORS:
                raise UsageError(f"unknown query operator {key} in {where}",
                                 hint="e.g. $eq $ne $gt $gte $lt $lte $in $nin $exists $regex $elemMatch $and $or")
            if key in OPAQUE_OPERATORS:
                continue
        _check_query(item, where)


def check_update(doc: Any) -> dict | list:
    if isinstance(doc, list):   # an aggregation-pipeline update
        return doc
    if not isinstance(doc, dict) or not doc:
        raise UsageError("an update must be a non-empty JSON object of update operators",
                         hint='e.g. {"$set": {"price": 279}}')
    for key in doc:
        if not key.startswith("$"):
            raise UsageError(f"update documents use operators, not plain fields ({key!r})",
                             hint='e.g. {"$set": {"' + key + '": ...}}; to replace a document use '
                                  "query 'db.<collection>.replaceOne(filter, document)'")
        if key not in UPDATE_OPERATORS:
            raise UsageError(f"unknown update operator {key}", hint="supported: " + " ".join(sorted(UPDATE_OPERATORS)))
    return doc


def connect(target) -> "MongoSession":
    return MongoSession(target)


# where `dbsh migrate` keeps its records and lock (dbsh.migrate.stores.MongoStore): not the user's data
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
        """The user's collections: not dbsh's own migration records (dbsh.migrate.stores) nor system.*."""
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
        return sampled_fields(sample, _type_name, indexed, first=lambda path: path == "_id")

    def completions(self) -> dict[str, list[str]]:
        fields: dict[str, list[str]] = {}
        with self._errors():
            for name in self.collections()[:200]:
                names: dict[str, None] = {}
                for doc in self.db[name].find({}, limit=20):
                    names.update(dict.fromkeys(p for p, _ in field_paths(doc, _type_name)))
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
                chunk = [_document(d) for d in chunk]
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
        shown = ", ".join(_id_text(chunk[w["index"]].get("_id")) for w in failures[:5])
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
        return plan_result(plan)

    # -- native language -------------------------------------------------------------------
    def stateless(self, text: str) -> bool:
        """A MongoDB command leaves the client as it was, but for authentication and sessions."""
        lowered = text.lower()
        return not any(word in lowered for word in ("logout", "authenticate", "session", "transaction"))

    def execute(self, text: str, params: dict[str, Any] | None = None) -> Result:
        if params:
            raise Unsupported("-p parameters are not supported for MongoDB: write values in the JSON arguments")
        call = parse_shell(text)
        with self._errors():
            if call.collection is None:
                return self._database_call(call)
            return self._collection_call(call)

    def _database_call(self, call: "ShellCall") -> Result:
        if call.method == "runCommand":
            command = _args(call, 1, 1)[0]
            if not isinstance(command, dict) or not command:
                raise UsageError("db.runCommand() needs a command document, e.g. {ping: 1}")
            return Result([self.db.command(bson.SON(command), session=self._tx)], None)
        if call.method == "getCollectionNames":
            _args(call, 0, 0)
            return Result(({"name": n} for n in self.collections()), ["name"])
        raise UsageError(f"unknown database method db.{call.method}()",
                         hint="use db.runCommand({...}), db.getCollectionNames() or db.<collection>.<method>(...)")

    def _collection_call(self, call: "ShellCall") -> Result:
        method = call.method
        handler = getattr(self, "_m_" + method, None) if method in SHELL_METHODS else None
        if handler is None:
            raise UsageError(f"unknown collection method {method}()", hint="supported: " + ", ".join(SHELL_METHODS))
        writes = method not in ("find", "findOne", "aggregate", "countDocuments", "distinct",
                                "estimatedDocumentCount")
        coll = self._collection(call.collection, must_exist=not writes)
        if call.explain and method not in ("find", "aggregate", "countDocuments", "distinct"):
            raise Unsupported(f"explain is supported for find, aggregate, countDocuments and distinct, not {method}")
        return handler(coll, call)

    def _m_find(self, coll, call) -> Result:
        query, projection = (_args(call, 0, 2) + [None, None])[:2]
        kwargs: dict[str, Any] = {"filter": check_filter(query or {}), "projection": projection}
        for name, args in call.chain:
            if name == "sort":
                kwargs["sort"] = list(_mapping(_one(name, args), "sort").items())
            elif name in ("limit", "skip", "batchSize"):
                value = _one(name, args)
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise UsageError(f".{name}() needs a non-negative integer")
                kwargs["batch_size" if name == "batchSize" else name] = value
            elif name == "projection":
                kwargs["projection"] = _one(name, args)
            elif name == "hint":
                kwargs["hint"] = _one(name, args)
            else:
                raise UsageError(f"unknown cursor method .{name}()",
                                 hint="supported: sort limit skip projection hint batchSize explain")
        cursor = coll.find(**kwargs, session=self._tx)
        if call.explain:
            return plan_result(cursor.explain())
        return self._stream(cursor)

    def _m_findOne(self, coll, call) -> Result:
        query, projection = (_args(call, 0, 2) + [None, None])[:2]
        doc = coll.find_one(check_filter(query or {}), projection, session=self._tx)
        return Result([doc] if doc is not None else [], None)

    def _m_aggregate(self, coll, call) -> Result:
        pipeline, options = (_args(call, 1, 2) + [None])[:2]
        if not isinstance(pipeline, list) or not all(isinstance(s, dict) for s in pipeline):
            raise UsageError("aggregate() needs an array of stage documents")
        options = dict(_mapping(options or {}, "aggregate options"))
        if self.readonly and any(key in ("$out", "$merge") for stage in pipeline for key in stage):
            self.require_writable("an aggregation with a $out or $merge stage (it writes a collection)")
        if options.pop("explain", False) or call.explain:
            plan = self.db.command("explain", bson.SON([("aggregate", coll.name), ("pipeline", pipeline),
                                                        ("cursor", {})]), verbosity="queryPlanner")
            return plan_result(plan)
        return self._stream(coll.aggregate(pipeline, **options, session=self._tx))

    def _m_countDocuments(self, coll, call) -> Result:
        query = (_args(call, 0, 2) + [None])[0]
        return Result([{"count": coll.count_documents(check_filter(query or {}), session=self._tx)}], ["count"])

    def _m_estimatedDocumentCount(self, coll, call) -> Result:
        _args(call, 0, 1)
        return Result([{"count": coll.estimated_document_count()}], ["count"])

    def _m_distinct(self, coll, call) -> Result:
        field, query = (_args(call, 1, 2) + [None])[:2]
        if not isinstance(field, str) or not field:
            raise UsageError("distinct() needs a field name")
        values = coll.distinct(field, check_filter(query or {}), session=self._tx)
        return Result(({field: v} for v in values), [field])

    def _m_insertOne(self, coll, call) -> Result:
        doc = _mapping(_args(call, 1, 2)[0], "insertOne document")
        result = coll.insert_one(doc, session=self._tx)
        return Result([{"acknowledged": result.acknowledged, "insertedId": result.inserted_id}], None)

    def _m_insertMany(self, coll, call) -> Result:
        docs, options = (_args(call, 1, 2) + [None])[:2]
        if not isinstance(docs, list) or not docs or not all(isinstance(d, dict) for d in docs):
            raise UsageError("insertMany() needs a non-empty array of documents")
        ordered = bool(_mapping(options or {}, "insertMany options").get("ordered", True))
        try:
            result = coll.insert_many(docs, ordered=ordered, session=self._tx)
        except mongo_errors.BulkWriteError as e:
            err = self._error(e)
            raise type(err)(f"{err.message} ({e.details.get('nInserted', 0)} documents were inserted)") from None
        return Result([{"acknowledged": result.acknowledged, "insertedIds": result.inserted_ids}], None)

    def _update(self, coll, call, run, replace=False) -> Result:
        query, change, options = (_args(call, 2, 3) + [None])[:3]
        options = _mapping(options or {}, "update options")
        unknown = set(options) - {"upsert", "arrayFilters", "hint", "collation", "let"}
        if unknown:
            raise UsageError(f"unknown update option {sorted(unknown)[0]!r}")
        kwargs = {{"arrayFilters": "array_filters"}.get(k, k): v for k, v in options.items()}
        if replace:
            if not isinstance(change, dict) or any(k.startswith("$") for k in change):
                raise UsageError("replaceOne() needs a replacement document without $operators")
        else:
            check_update(change)
        result = run(check_filter(query), change, session=self._tx, **kwargs)
        return Result([{"acknowledged": result.acknowledged, "matchedCount": result.matched_count,
                        "modifiedCount": result.modified_count, "upsertedId": result.upserted_id}], None)

    def _m_updateOne(self, coll, call) -> Result:
        return self._update(coll, call, coll.update_one)

    def _m_updateMany(self, coll, call) -> Result:
        return self._update(coll, call, coll.update_many)

    def _m_replaceOne(self, coll, call) -> Result:
        return self._update(coll, call, coll.replace_one, replace=True)

    def _m_deleteOne(self, coll, call) -> Result:
        result = coll.delete_one(check_filter(_args(call, 1, 2)[0]), session=self._tx)
        return Result([{"acknowledged": result.acknowledged, "deletedCount": result.deleted_count}], None)

    def _m_deleteMany(self, coll, call) -> Result:
        result = coll.delete_many(check_filter(_args(call, 1, 2)[0]), session=self._tx)
        return Result([{"acknowledged": result.acknowledged, "deletedCount": result.deleted_count}], None)

    def _m_createIndex(self, coll, call) -> Result:
        keys, options = (_args(call, 1, 2) + [None])[:2]
        keys = _mapping(keys, "index keys")
        if not keys:
            raise UsageError("createIndex() needs at least one key, e.g. {price: 1}")
        name = coll.create_index(list(keys.items()), **_mapping(options or {}, "index options"))
        return Result([{"name": name}], ["name"])

    def _m_dropIndex(self, coll, call) -> Result:
        index = _args(call, 1, 1)[0]
        if isinstance(index, dict):
            index = list(index.items())
        elif not isinstance(index, str):
            raise UsageError("dropIndex() needs an index name or its key document")
        coll.drop_index(index)
        return Result([{"dropped": True}], None)

    def _m_drop(self, coll, call) -> Result:
        _args(call, 0, 0)
        existed = coll.name in self.db.list_collection_names(filter={"name": coll.name})
        coll.drop()
        return Result([{"dropped": existed}], ["dropped"])


SHELL_METHODS = ("find", "findOne", "insertOne", "insertMany", "updateOne", "updateMany", "replaceOne",
                 "deleteOne", "deleteMany", "aggregate", "countDocuments", "estimatedDocumentCount", "distinct",
                 "createIndex", "dropIndex", "drop")


def _id_text(value: Any) -> str:
    """An _id as the user wrote it: 4, "ann", {"$oid": "..."}."""
    return json_util.dumps(value, json_options=json_util.RELAXED_JSON_OPTIONS)


def _document(doc: Any) -> dict:
    if not isinstance(doc, dict):
        raise UsageError(f"a document must be a JSON object, not {type(doc).__name__}")
    return from_extended_json(doc)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, bson.Int64):
        return "long"
    if isinstance(value, int):
        return "int"
    return {float: "double", str: "string", dict: "object", list: "array", bson.ObjectId: "objectId",
            bson.Decimal128: "decimal", DatetimeMS: "date", bytes: "binData", bson.Binary: "binData",
            bson.Regex: "regex", bson.Timestamp: "timestamp"}.get(type(value), type(value).__name__)


def plan_result(plan: dict) -> Result:
    """An explain document as one row per plan stage (outermost first), with the totals as a message."""
    planner = plan.get("queryPlanner")
    if planner is None:   # aggregate explain: the first stage holds the query planner
        for stage in plan.get("stages") or []:
            planner = (stage.get("$cursor") or {}).get("queryPlanner")
            if planner:
                break
    rows = []
    stage = (planner or {}).get("winningPlan") or {}
    stage = stage.get("queryPlan", stage)
    depth = 0
    while stage:
        rows.append({"depth": depth, "stage": stage.get("stage"), "index": stage.get("indexName"),
                     "filter": stage.get("filter"), "keys": stage.get("keyPattern"),
                     "direction": stage.get("direction")})
        inputs = stage.get("inputStage") or (stage.get("inputStages") or [None])[0]
        stage, depth = inputs, depth + 1
    stats = plan.get("executionStats") or {}
    message = None
    if stats:
        message = (f"returned {stats.get('nReturned')}, examined {stats.get('totalDocsExamined')} documents "
                   f"and {stats.get('totalKeysExamined')} index keys")
    if not rows:
        return Result([plan], None, message=message)
    return Result(rows, ["depth", "stage", "index", "filter", "keys", "direction"], message=message)


# -- the mongosh-style language --------------------------------------------------------------

class ShellCall:
    def __init__(self, collection: str | None, method: str, args: list[Any],
                 chain: list[tuple[str, list[Any]]], explain: bool):
        self.collection = collection
        self.method = method
        self.args = args
        self.chain = chain
        self.explain = explain


def _args(call: ShellCall, low: int, high: int) -> list[Any]:
    n = len(call.args)
    if not low <= n <= high:
        want = str(low) if low == high else f"{low} to {high}"
        raise UsageError(f"{call.method}() takes {want} argument{'s' if high != 1 else ''}, got {n}")
    return list(call.args)


def _one(name: str, args: list[Any]) -> Any:
    if len(args) != 1:
        raise UsageError(f".{name}() takes 1 argument, got {len(args)}")
    return args[0]


def _mapping(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise UsageError(f"{what} must be an object, got {json.dumps(value, default=str)[:60]}")
    return value


class _Scanner:
    """A tiny scanner over the statement text: identifiers, dots, brackets and balanced (...) groups."""

    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def error(self, message: str) -> UsageError:
        return UsageError(f"{message} at position {self.pos + 1} of the query",
                          hint="write db.<collection>.<method>(<JSON arguments>), e.g. db.products.find({price: "
                               "{$gt: 100}})")

    def space(self) -> None:
        """Skip white space and // or /* */ comments."""
        text = self.text
        while self.pos < len(text):
            if text[self.pos].isspace():
                self.pos += 1
            elif text.startswith("//", self.pos):
                newline = text.find("\n", self.pos)
                self.pos = len(text) if newline < 0 else newline + 1
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                self.pos = len(text) if end < 0 else end + 2
            else:
                break

    def peek(self) -> str:
        self.space()
        return self.text[self.pos:self.pos + 1]

    def expect(self, char: str) -> None:
        if self.peek() != char:
            found = self.text[self.pos:self.pos + 10] or "the end"
            raise self.error(f"expected {char!r}, found {found!r}")
        self.pos += 1

    def name(self) -> str:
        self.space()
        start = self.pos
        while self.pos < len(self.text) and (self.text[self.pos].isalnum() or self.text[self.pos] in "_$"):
            self.pos += 1
        if start == self.pos:
            raise self.error("expected a name")
        return self.text[start:self.pos]

    def group(self, open_: str, close: str) -> str:
        """The text inside a balanced bracket pair, skipping brackets inside strings and comments."""
        self.expect(open_)
        start, depth, text = self.pos, 1, self.text
        pairs = {"(": ")", "[": "]", "{": "}"}
        stack = [close]
        while self.pos < len(text):
            ch = text[self.pos]
            if ch in "\"'`":
                end = self.pos + 1
                while end < len(text) and text[end] != ch:
                    end += 2 if text[end] == "\\" else 1
                if end >= len(text):
                    raise self.error("unterminated string")
                self.pos = end + 1
                continue
            if text.startswith("//", self.pos):
                newline = text.find("\n", self.pos)
                self.pos = len(text) if newline < 0 else newline + 1
                continue
            if text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.error("unterminated comment")
                self.pos = end + 2
                continue
            if ch in pairs:
                stack.append(pairs[ch])
            elif ch in ")]}":
                if ch != stack[-1]:
                    raise self.error(f"unbalanced {ch!r}")
                stack.pop()
                if not stack:
                    inner = text[start:self.pos]
                    self.pos += 1
                    return inner
            self.pos += 1
        depth = len(stack)
        raise self.error(f"{depth} unclosed bracket{'s' if depth != 1 else ''}")

    def arguments(self) -> list[Any]:
        inner = self.group("(", ")")
        if not inner.strip():
            return []
        try:
            values = _json5().loads("[" + shell_constructors(inner) + "]")
        except ValueError as e:
            raise UsageError(f"cannot parse the arguments ({inner.strip()[:60]}): {one_line(str(e))}",
                             hint="arguments are JSON5: unquoted keys and single quotes are fine") from None
        return from_extended_json(values)

    def string_argument(self) -> str:
        values = self.arguments()
        if len(values) != 1 or not isinstance(values[0], str) or not values[0]:
            raise self.error("expected one collection name string")
        return values[0]


CONSTRUCTORS = ("ObjectId", "ISODate", "Date", "NumberDecimal", "Decimal128", "NumberLong", "NumberInt", "UUID")


def _json5():
    """json5, imported by the first shell-syntax statement (the verbs never need it)."""
    import json5

    return json5


def shell_constructors(text: str) -> str:
    """Rewrite mongosh value constructors (ObjectId("..."), ISODate("..."), new Date(),
    NumberDecimal("..."), NumberLong(..), NumberInt(..), UUID("...")) as extended JSON, token by token:
    strings and comments are copied untouched."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "\"'`":
            end = i + 1
            while end < n and text[end] != ch:
                end += 2 if text[end] == "\\" else 1
            out.append(text[i:end + 1])
            i = end + 1
        elif ch.isalpha() or ch in "_$":
            end = i
            while end < n and (text[end].isalnum() or text[end] in "_$"):
                end += 1
            word = text[i:end]
            if word == "new":
                after = end
                while after < n and text[after].isspace():
                    after += 1
                nxt = after
                while nxt < n and (text[nxt].isalnum() or text[nxt] in "_$"):
                    nxt += 1
                if text[after:nxt] in CONSTRUCTORS:
                    word, end = text[after:nxt], nxt
            scanner = _Scanner(text)
            scanner.pos = end
            if word in CONSTRUCTORS and scanner.peek() == "(":
                inner = scanner.group("(", ")")
                try:
                    args = _json5().loads("[" + shell_constructors(inner) + "]") if inner.strip() else []
                except ValueError as e:
                    raise UsageError(f"cannot parse {word}({inner.strip()[:40]}): {one_line(str(e))}") from None
                out.append(json.dumps(_construct(word, args)))
                i = scanner.pos
            else:
                out.append(word if word != "new" else text[i:end])
                i = end
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _construct(word: str, args: list[Any]) -> dict:
    if len(args) > 1:
        raise UsageError(f"{word}() takes at most one argument")
    arg = args[0] if args else None
    if word == "ObjectId":
        return {"$oid": str(arg) if arg is not None else str(bson.ObjectId())}
    if word in ("ISODate", "Date"):
        if arg is None:
            now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
            return {"$date": now.replace("+00:00", "Z")}
        if isinstance(arg, (int, float)) and not isinstance(arg, bool):
            return {"$date": {"$numberLong": str(int(arg))}}
        if isinstance(arg, str) and len(arg) == 10:   # a bare date: midnight UTC, as mongosh reads it
            arg += "T00:00:00Z"
        return {"$date": arg}
    if word in ("NumberDecimal", "Decimal128"):
        return {"$numberDecimal": str(arg if arg is not None else 0)}
    if word == "NumberLong":
        return {"$numberLong": str(int(arg or 0))}
    if word == "NumberInt":
        return {"$numberInt": str(int(arg or 0))}
    return {"$uuid": str(arg)}


def parse_shell(text: str) -> ShellCall:
    """Parse ``db.coll.method(args)[.chain(args)...]``, ``db.getCollection("x").method(...)``,
    ``db["x"].method(...)``, ``db.coll.explain().find(...)`` and ``db.runCommand({...})``."""
    text = text.strip().rstrip(";").strip()
    if not text:
        raise UsageError("empty query")
    s = _Scanner(text)
    if s.name() != "db":
        s.pos = 0
        raise s.error("a MongoDB query starts with db.")
    collection: str | None = None
    if s.peek() == "[":
        try:
            collection = _json5().loads(s.group("[", "]"))
        except ValueError:
            raise s.error("expected a quoted collection name in db[...]") from None
        if not isinstance(collection, str):
            raise s.error("expected a quoted collection name in db[...]")
        s.expect(".")
        first = s.name()
    else:
        s.expect(".")
        first = s.name()
        if first == "getCollection":
            collection = s.string_argument()
            s.expect(".")
            first = s.name()
    if collection is None and s.peek() == "(":
        # a database method: db.runCommand({...})
        args = s.arguments()
        if s.peek():
            raise s.error("unexpected text after the call")
        return ShellCall(None, first, args, [], False)
    if collection is None:
        collection = first
        s.expect(".")
        first = s.name()
    explain = False
    if first == "explain":
        if s.arguments() not in ([], ["queryPlanner"], ["executionStats"], ["allPlansExecution"]):
            raise s.error("explain() takes an optional verbosity string")
        explain = True
        s.expect(".")
        first = s.name()
    args = s.arguments()
    chain: list[tuple[str, list[Any]]] = []
    while s.peek() == ".":
        s.pos += 1
        name = s.name()
        chain_args = s.arguments()
        if name == "explain":
            explain = True
        elif name == "toArray" or name == "pretty":
            continue
        else:
            chain.append((name, chain_args))
    if s.peek():
        raise s.error(f"unexpected {s.text[s.pos:s.pos + 10]!r}")
    if chain and first not in ("find",):
        raise UsageError(f"cursor methods like .{chain[0][0]}() only follow find()")
    return ShellCall(collection, first, args, chain, explain)
