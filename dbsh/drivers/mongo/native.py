"""MongoDB's native language in dbsh: mongosh-style statements (parsed by language.parse_shell) run
with pymongo, each collection method a function of (mongo, collection, call); and explain plans as rows.
"""

from __future__ import annotations

from typing import Any

import bson
from pymongo import errors as mongo_errors

from dbsh.drivers.base import Result
from dbsh.drivers.mongo.language import (
    SHELL_METHODS,
    ShellCall,
    call_args,
    check_filter,
    check_update,
    mapping,
    one_argument,
    parse_shell,
)
from dbsh.errors import Unsupported, UsageError


def stateless(text: str) -> bool:
    """A MongoDB command leaves the client as it was, but for authentication and sessions."""
    lowered = text.lower()
    return not any(word in lowered for word in ("logout", "authenticate", "session", "transaction"))


def execute(mongo, text: str, params: dict[str, Any] | None = None) -> Result:
    if params:
        raise Unsupported("-p parameters are not supported for MongoDB: write values in the JSON arguments")
    call = parse_shell(text)
    with mongo._errors():
        if call.collection is None:
            return _database_call(mongo, call)
        return _collection_call(mongo, call)


def _database_call(mongo, call: ShellCall) -> Result:
    if call.method == "runCommand":
        command = call_args(call, 1, 1)[0]
        if not isinstance(command, dict) or not command:
            raise UsageError("db.runCommand() needs a command document, e.g. {ping: 1}")
        return Result([mongo.db.command(bson.SON(command), session=mongo._tx)], None)
    if call.method == "getCollectionNames":
        call_args(call, 0, 0)
        return Result(({"name": n} for n in mongo.collections()), ["name"])
    raise UsageError(f"unknown database method db.{call.method}()",
                     hint="use db.runCommand({...}), db.getCollectionNames() or db.<collection>.<method>(...)")


def _collection_call(mongo, call: ShellCall) -> Result:
    method = call.method
    handler = METHODS.get(method)
    if handler is None:
        raise UsageError(f"unknown collection method {method}()", hint="supported: " + ", ".join(SHELL_METHODS))
    writes = method not in ("find", "findOne", "aggregate", "countDocuments", "distinct",
                            "estimatedDocumentCount")
    coll = mongo._collection(call.collection, must_exist=not writes)
    if call.explain and method not in ("find", "aggregate", "countDocuments", "distinct"):
        raise Unsupported(f"explain is supported for find, aggregate, countDocuments and distinct, not {method}")
    return handler(mongo, coll, call)


def find(mongo, coll, call) -> Result:
    query, projection = (call_args(call, 0, 2) + [None, None])[:2]
    kwargs: dict[str, Any] = {"filter": check_filter(query or {}), "projection": projection}
    for name, args in call.chain:
        if name == "sort":
            kwargs["sort"] = list(mapping(one_argument(name, args), "sort").items())
        elif name in ("limit", "skip", "batchSize"):
            value = one_argument(name, args)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise UsageError(f".{name}() needs a non-negative integer")
            kwargs["batch_size" if name == "batchSize" else name] = value
        elif name == "projection":
            kwargs["projection"] = one_argument(name, args)
        elif name == "hint":
            kwargs["hint"] = one_argument(name, args)
        else:
            raise UsageError(f"unknown cursor method .{name}()",
                             hint="supported: sort limit skip projection hint batchSize explain")
    cursor = coll.find(**kwargs, session=mongo._tx)
    if call.explain:
        return plan_result(cursor.explain())
    return mongo._stream(cursor)


def findOne(mongo, coll, call) -> Result:
    query, projection = (call_args(call, 0, 2) + [None, None])[:2]
    doc = coll.find_one(check_filter(query or {}), projection, session=mongo._tx)
    return Result([doc] if doc is not None else [], None)


def aggregate(mongo, coll, call) -> Result:
    pipeline, options = (call_args(call, 1, 2) + [None])[:2]
    if not isinstance(pipeline, list) or not all(isinstance(s, dict) for s in pipeline):
        raise UsageError("aggregate() needs an array of stage documents")
    options = dict(mapping(options or {}, "aggregate options"))
    if mongo.readonly and any(key in ("$out", "$merge") for stage in pipeline for key in stage):
        mongo.require_writable("an aggregation with a $out or $merge stage (it writes a collection)")
    if options.pop("explain", False) or call.explain:
        plan = mongo.db.command("explain", bson.SON([("aggregate", coll.name), ("pipeline", pipeline),
                                                    ("cursor", {})]), verbosity="queryPlanner")
        return plan_result(plan)
    return mongo._stream(coll.aggregate(pipeline, **options, session=mongo._tx))


def countDocuments(mongo, coll, call) -> Result:
    query = (call_args(call, 0, 2) + [None])[0]
    return Result([{"count": coll.count_documents(check_filter(query or {}), session=mongo._tx)}], ["count"])


def estimatedDocumentCount(mongo, coll, call) -> Result:
    call_args(call, 0, 1)
    return Result([{"count": coll.estimated_document_count()}], ["count"])


def distinct(mongo, coll, call) -> Result:
    field, query = (call_args(call, 1, 2) + [None])[:2]
    if not isinstance(field, str) or not field:
        raise UsageError("distinct() needs a field name")
    values = coll.distinct(field, check_filter(query or {}), session=mongo._tx)
    return Result(({field: v} for v in values), [field])


def insertOne(mongo, coll, call) -> Result:
    doc = mapping(call_args(call, 1, 2)[0], "insertOne document")
    result = coll.insert_one(doc, session=mongo._tx)
    return Result([{"acknowledged": result.acknowledged, "insertedId": result.inserted_id}], None)


def insertMany(mongo, coll, call) -> Result:
    docs, options = (call_args(call, 1, 2) + [None])[:2]
    if not isinstance(docs, list) or not docs or not all(isinstance(d, dict) for d in docs):
        raise UsageError("insertMany() needs a non-empty array of documents")
    ordered = bool(mapping(options or {}, "insertMany options").get("ordered", True))
    try:
        result = coll.insert_many(docs, ordered=ordered, session=mongo._tx)
    except mongo_errors.BulkWriteError as e:
        err = mongo._error(e)
        raise type(err)(f"{err.message} ({e.details.get('nInserted', 0)} documents were inserted)") from None
    return Result([{"acknowledged": result.acknowledged, "insertedIds": result.inserted_ids}], None)


def _update(mongo, coll, call, run, replace=False) -> Result:
    query, change, options = (call_args(call, 2, 3) + [None])[:3]
    options = mapping(options or {}, "update options")
    unknown = set(options) - {"upsert", "arrayFilters", "hint", "collation", "let"}
    if unknown:
        raise UsageError(f"unknown update option {sorted(unknown)[0]!r}")
    kwargs = {{"arrayFilters": "array_filters"}.get(k, k): v for k, v in options.items()}
    if replace:
        if not isinstance(change, dict) or any(k.startswith("$") for k in change):
            raise UsageError("replaceOne() needs a replacement document without $operators")
    else:
        check_update(change)
    result = run(check_filter(query), change, session=mongo._tx, **kwargs)
    return Result([{"acknowledged": result.acknowledged, "matchedCount": result.matched_count,
                    "modifiedCount": result.modified_count, "upsertedId": result.upserted_id}], None)


def updateOne(mongo, coll, call) -> Result:
    return _update(mongo, coll, call, coll.update_one)


def updateMany(mongo, coll, call) -> Result:
    return _update(mongo, coll, call, coll.update_many)


def replaceOne(mongo, coll, call) -> Result:
    return _update(mongo, coll, call, coll.replace_one, replace=True)


def deleteOne(mongo, coll, call) -> Result:
    result = coll.delete_one(check_filter(call_args(call, 1, 2)[0]), session=mongo._tx)
    return Result([{"acknowledged": result.acknowledged, "deletedCount": result.deleted_count}], None)


def deleteMany(mongo, coll, call) -> Result:
    result = coll.delete_many(check_filter(call_args(call, 1, 2)[0]), session=mongo._tx)
    return Result([{"acknowledged": result.acknowledged, "deletedCount": result.deleted_count}], None)


def createIndex(mongo, coll, call) -> Result:
    keys, options = (call_args(call, 1, 2) + [None])[:2]
    keys = mapping(keys, "index keys")
    if not keys:
        raise UsageError("createIndex() needs at least one key, e.g. {price: 1}")
    name = coll.create_index(list(keys.items()), **mapping(options or {}, "index options"))
    return Result([{"name": name}], ["name"])


def dropIndex(mongo, coll, call) -> Result:
    index = call_args(call, 1, 1)[0]
    if isinstance(index, dict):
        index = list(index.items())
    elif not isinstance(index, str):
        raise UsageError("dropIndex() needs an index name or its key document")
    coll.drop_index(index)
    return Result([{"dropped": True}], None)


def drop(mongo, coll, call) -> Result:
    call_args(call, 0, 0)
    existed = coll.name in mongo.db.list_collection_names(filter={"name": coll.name})
    coll.drop()
    return Result([{"dropped": existed}], ["dropped"])


METHODS = {name: globals()[name] for name in SHELL_METHODS}   # the method functions above, by name


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
