"""How graph values look in json (lossless) and in tables (the same, as one JSON cell): nodes,
relationships and paths as objects, temporal values in ISO 8601 as Neo4j writes them, points as
{srid, coordinates}; and the type names describe shows."""

from __future__ import annotations

import re
from typing import Any

import neo4j
import neo4j.graph
import neo4j.spatial
import neo4j.time

from dbsh.output import register_encoder


def node_json(node: neo4j.graph.Node) -> dict[str, Any]:
    return {"element_id": node.element_id, "labels": sorted(node.labels), "properties": plain(dict(node))}


def relationship_json(rel: neo4j.graph.Relationship) -> dict[str, Any]:
    return {"element_id": rel.element_id, "type": rel.type,
            "start": rel.start_node.element_id if rel.start_node is not None else None,
            "end": rel.end_node.element_id if rel.end_node is not None else None,
            "properties": plain(dict(rel))}


def path_json(path: neo4j.graph.Path) -> dict[str, Any]:
    return {"nodes": [node_json(n) for n in path.nodes],
            "relationships": [relationship_json(r) for r in path.relationships]}


_FRACTION = re.compile(r"\.(\d*[1-9])?0+(?=\D|$)")


def temporal_text(value) -> str:
    """A date, time, datetime or duration in ISO 8601 as Neo4j's toString() writes it: the driver's
    iso_format() without its trailing zeros of nanoseconds, UTC as Z, a named zone after the offset
    in brackets (``2024-05-01T10:00:00+02:00[Europe/Stockholm]``)."""
    text = _FRACTION.sub(lambda m: "." + m.group(1) if m.group(1) else "", value.iso_format(), count=1)
    tz = getattr(value, "tzinfo", None)
    if tz is not None:
        if text.endswith("+00:00"):
            text = text[:-6] + "Z"
        zone = getattr(tz, "zone", None) or getattr(tz, "key", None)
        if zone and zone != "UTC":
            text += f"[{zone}]"
    return text


def point_json(point: neo4j.spatial.Point) -> dict[str, Any]:
    return {"srid": point.srid, "coordinates": list(point)}


def plain(value: Any) -> Any:
    """Duration and Point are tuples: JSON encoders write any tuple as a bare list (``[0, 1, 0, 0]``
    for P1D) and never ask a registered encoder. Give them (in lists and maps too) their own form."""
    if isinstance(value, neo4j.time.Duration):
        return temporal_text(value)
    if isinstance(value, neo4j.spatial.Point):
        return point_json(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


register_encoder(neo4j.graph.Node, node_json)
register_encoder(neo4j.graph.Relationship, relationship_json)
register_encoder(neo4j.graph.Path, path_json)
for _kind in (neo4j.time.Date, neo4j.time.Time, neo4j.time.DateTime, neo4j.time.Duration):
    register_encoder(_kind, temporal_text)
register_encoder(neo4j.spatial.Point, point_json)


def type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "INTEGER"
    if isinstance(value, float):
        return "FLOAT"
    if isinstance(value, str):
        return "STRING"
    if isinstance(value, list):
        inner = sorted({type_name(v) for v in value})
        return f"LIST<{' | '.join(inner) or 'ANY'}>"
    return type(value).__name__.upper()
