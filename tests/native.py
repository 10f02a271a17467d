"""What a database holds, read with its own client (never with dbsh): a snapshot to compare before and
after a command that must not have changed anything (read-only refusals, the fuzz suite)."""

from __future__ import annotations

import json
import sqlite3
import urllib.request
from urllib.parse import urlsplit

KINDS = ["sqlite", "postgres", "mariadb", "mongo", "redis", "couchdb", "neo4j"]


def fixture_of(kind: str) -> str:
    return "sqlite_url" if kind == "sqlite" else f"{kind}_url"


def quoted(name: str, quote: str = '"') -> str:
    return quote + name.replace(quote, quote * 2) + quote


def snapshot(kind: str, url: str, collection: str) -> dict:
    """Every collection of the database with its row count, and every row of ``collection``."""
    parts = urlsplit(url)
    if kind == "sqlite":
        conn = sqlite3.connect(url.split(":///", 1)[1])
        try:
            names = [r[0] for r in conn.execute("select name from sqlite_master where type = 'table' order by 1")]
            counts = {n: conn.execute(f"select count(*) from {quoted(n)}").fetchone()[0] for n in names}
            rows = sorted(map(repr, conn.execute(f"select * from {quoted(collection)}"))) if collection in names \
                else None
        finally:
            conn.close()
        return {"counts": counts, "rows": rows}
    if kind == "postgres":
        import psycopg

        with psycopg.connect(host=parts.hostname, port=parts.port, user=parts.username, password=parts.password,
                             dbname=parts.path.lstrip("/")) as conn:
            names = [r[0] for r in conn.execute("select table_name from information_schema.tables where "
                                                "table_schema = 'public' order by 1")]
            counts = {n: conn.execute(f"select count(*) from {quoted(n)}").fetchone()[0] for n in names}
            rows = sorted(map(repr, conn.execute(f"select * from {quoted(collection)}"))) if collection in names \
                else None
        return {"counts": counts, "rows": rows}
    if kind == "mariadb":
        import pymysql

        conn = pymysql.connect(host=parts.hostname, port=parts.port, user=parts.username, password=parts.password,
                               database=parts.path.lstrip("/"))
        try:
            with conn.cursor() as cur:
                cur.execute("select table_name from information_schema.tables where table_schema = database() "
                            "order by 1")
                names = [r[0] for r in cur.fetchall()]
                counts = {}
                for n in names:
                    cur.execute(f"select count(*) from {quoted(n, '`')}")
                    counts[n] = cur.fetchone()[0]
                rows = None
                if collection in names:
                    cur.execute(f"select * from {quoted(collection, '`')}")
                    rows = sorted(map(repr, cur.fetchall()))
        finally:
            conn.close()
        return {"counts": counts, "rows": rows}
    if kind == "mongo":
        import pymongo

        client = pymongo.MongoClient(url, serverSelectionTimeoutMS=10000)
        try:
            db = client[parts.path.lstrip("/")]
            names = sorted(db.list_collection_names())
            counts = {n: db[n].count_documents({}) for n in names}
            rows = sorted(map(repr, db[collection].find())) if collection in names else None
        finally:
            client.close()
        return {"counts": counts, "rows": rows}
    if kind == "redis":
        import redis

        client = redis.Redis.from_url(url)
        try:
            keys = sorted(client.scan_iter(count=1000))
            values = {k: client.dump(k) for k in keys}
        finally:
            client.close()
        return {"keys": values}
    if kind == "couchdb":
        base = f"http://{parts.netloc}"
        with urllib.request.urlopen(f"{base}/_all_dbs") as r:
            names = json.load(r)
        counts = {}
        for n in names:
            with urllib.request.urlopen(f"{base}/{n}") as r:
                info = json.load(r)
            counts[n] = (info.get("doc_count"), info.get("update_seq"))
        return {"counts": counts}
    if kind == "neo4j":
        return _graph(url, collection)
    raise AssertionError(kind)


def _graph(url: str, collection: str) -> dict:
    import neo4j

    parts = urlsplit(url)
    plain = f"{parts.scheme}://{parts.hostname}:{parts.port}"
    with neo4j.GraphDatabase.driver(plain, auth=(parts.username, parts.password)) as driver, driver.session() as s:
        nodes = s.run("MATCH (n) RETURN count(n) AS c").single()["c"]
        rels = s.run("MATCH ()-[r]->() RETURN count(r) AS c").single()["c"]
        rows = sorted(repr(sorted(dict(r["p"]).items())) for r in
                      s.run(f"MATCH (n:{quoted(collection, '`')}) RETURN properties(n) AS p"))
    return {"nodes": nodes, "relationships": rels, "rows": rows}
