"""BSON values in dbsh's output: relaxed extended JSON ({"$oid": ...}, {"$date": ...}), so `find | insert`
round-trips ObjectIds, dates and decimals; and the type names describe shows."""

from __future__ import annotations

from typing import Any

import bson
from bson import json_util
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.datetime_ms import DatetimeMS

from dbsh.output import register_encoder

# Dates come back as DatetimeMS (a bson type) so json output is {"$date": ...}, not a bare string.
READ_OPTIONS = CodecOptions(tz_aware=True, datetime_conversion=DatetimeConversion.DATETIME_MS)


def _relaxed(value: Any) -> Any:
    return json_util.default(value, json_options=json_util.RELAXED_JSON_OPTIONS)


for _kind in (bson.ObjectId, bson.Decimal128, DatetimeMS, bson.Binary, bson.Regex, bson.Timestamp,
              bson.MinKey, bson.MaxKey, bson.Code, bson.DBRef):
    register_encoder(_kind, _relaxed)


def id_text(value: Any) -> str:
    """An _id as the user wrote it: 4, "ann", {"$oid": "..."}."""
    return json_util.dumps(value, json_options=json_util.RELAXED_JSON_OPTIONS)


def type_name(value: Any) -> str:
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
