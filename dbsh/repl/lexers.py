"""Syntax highlighting and the words of each native language (keywords, functions, methods).

The language name is the driver's ``capabilities.language`` (a Pygments alias where Pygments
has the language); CQL borrows the SQL lexer, Redis gets a small lexer of its own.
"""

from __future__ import annotations

from functools import cache

from pygments.lexer import RegexLexer, bygroups
from pygments.token import Keyword, Name, Number, String, Text

from dbsh.statements import rules

MONGO = ("javascript", "js", "mongo", "mongodb", "mongodb-shell")
HTTP = ("http", "couchdb", "couch")


class RedisLexer(RegexLexer):
    """Redis commands: the command word, quoted strings, numbers, the rest as plain arguments."""

    name = "Redis"
    aliases = ["redis"]
    tokens = {
        "root": [
            (r"^(\s*)([A-Za-z][\w.]*)", bygroups(Text, Keyword)),
            (r'"(\\\\|\\"|[^"])*"', String.Double),
            (r"'(\\\\|\\'|[^'])*'", String.Single),
            (r"-?\d+(\.\d+)?\b", Number),
            (r"\s+", Text),
            (r"\S+", Name),
        ],
    }


def lexer_class(language: str):
    """A Pygments lexer class for the language (plain text when Pygments has none)."""
    from pygments.lexers import get_lexer_by_name
    from pygments.lexers.special import TextLexer
    from pygments.util import ClassNotFound

    if language == "redis":
        return RedisLexer
    if (packaged := rules(language)) is not None:
        return packaged.lexer()
    if language == "cql":
        language = "sql"
    if language in MONGO:
        language = "javascript"
    try:
        return type(get_lexer_by_name(language))
    except ClassNotFound:
        return TextLexer


SQL_KEYWORDS = """SELECT FROM WHERE AND OR NOT IN IS NULL LIKE ILIKE BETWEEN EXISTS AS ON JOIN LEFT RIGHT INNER
OUTER FULL CROSS NATURAL USING GROUP BY ORDER HAVING LIMIT OFFSET DISTINCT UNION ALL INTERSECT EXCEPT INSERT
INTO VALUES UPDATE SET DELETE CREATE TABLE VIEW INDEX UNIQUE PRIMARY KEY FOREIGN REFERENCES DROP ALTER ADD
COLUMN RENAME TO TRUNCATE BEGIN COMMIT ROLLBACK TRANSACTION WITH RECURSIVE CASE WHEN THEN ELSE END ASC DESC
DEFAULT CHECK CONSTRAINT IF RETURNING EXPLAIN ANALYZE SHOW CAST TRUE FALSE INTEGER TEXT VARCHAR BOOLEAN
NUMERIC REAL DATE TIMESTAMP JSON JSONB SERIAL BIGINT PRAGMA VACUUM GRANT REVOKE SCHEMA DATABASE""".split()
SQL_FUNCTIONS = """count sum avg min max coalesce nullif lower upper length substr substring trim replace round abs
now current_date current_timestamp date_trunc extract json_extract json_agg string_agg group_concat cast
row_number rank dense_rank lag lead first_value last_value""".split()

CQL_KEYWORDS = """SELECT FROM WHERE AND IN INSERT INTO VALUES UPDATE SET DELETE CREATE TABLE KEYSPACE INDEX
PRIMARY KEY DROP ALTER ADD TRUNCATE USE USING TTL TIMESTAMP IF NOT EXISTS LIMIT ALLOW FILTERING ORDER BY ASC
DESC BATCH APPLY BEGIN WITH REPLICATION CLUSTERING TYPE MATERIALIZED VIEW PER PARTITION DISTINCT JSON TOKEN
text int bigint uuid timeuuid timestamp boolean double float map list set frozen counter""".split()

CYPHER_KEYWORDS = """MATCH OPTIONAL WHERE RETURN WITH UNWIND CREATE MERGE DELETE DETACH SET REMOVE ORDER BY SKIP
LIMIT AS AND OR NOT XOR IN IS NULL DISTINCT CALL YIELD UNION ALL CASE WHEN THEN ELSE END ON STARTS ENDS
CONTAINS EXISTS INDEX CONSTRAINT DROP ASC DESC TRUE FALSE""".split()
CYPHER_FUNCTIONS = """count collect sum avg min max id labels type keys properties nodes relationships size
length coalesce toString toInteger toFloat head last range exists startNode endNode""".split()

REDIS_COMMANDS = """GET SET MGET MSET DEL UNLINK EXISTS EXPIRE TTL PERSIST TYPE KEYS SCAN INCR INCRBY DECR
APPEND STRLEN HGET HSET HMGET HGETALL HDEL HKEYS HVALS HLEN HEXISTS HINCRBY HSCAN LPUSH RPUSH LPOP RPOP LRANGE
LLEN SADD SREM SMEMBERS SISMEMBER SCARD SSCAN ZADD ZREM ZRANGE ZRANGEBYSCORE ZSCORE ZCARD ZSCAN XADD XRANGE
XLEN PUBLISH SUBSCRIBE INFO PING DBSIZE FLUSHDB FLUSHALL SELECT RENAME MULTI EXEC DISCARD WATCH JSON.GET
JSON.SET JSON.DEL CONFIG CLIENT MONITOR""".split()

MONGO_METHODS = """find findOne insertOne insertMany updateOne updateMany replaceOne deleteOne deleteMany
countDocuments estimatedDocumentCount distinct aggregate createIndex dropIndex getIndexes drop renameCollection
findOneAndUpdate findOneAndDelete bulkWrite""".split()
MONGO_DB = """getCollectionNames listCollections createCollection dropDatabase runCommand stats""".split()
MONGO_OPERATORS = """$eq $ne $gt $gte $lt $lte $in $nin $exists $regex $and $or $not $nor $set $unset $inc
$push $pull $addToSet $match $group $project $sort $limit $skip $lookup $unwind $count $sum $avg""".split()

HTTP_WORDS = """GET PUT POST DELETE HEAD COPY _all_docs _find _bulk_docs _design _view _index _changes
_all_dbs""".split()


@cache
def words(language: str) -> tuple[list[str], list[str]]:
    """(keywords, functions) of a language, for completion."""
    if language in ("sql", "postgresql", "mysql", "sqlite"):
        return SQL_KEYWORDS, SQL_FUNCTIONS
    if language == "cql":
        return CQL_KEYWORDS, []
    if language in ("cypher", "cyp"):
        return CYPHER_KEYWORDS, CYPHER_FUNCTIONS
    if language == "redis":
        return REDIS_COMMANDS, []
    if (packaged := rules(language)) is not None:
        return packaged.KEYWORDS, []
    if language in MONGO:
        return ["db"] + MONGO_DB + MONGO_OPERATORS, MONGO_METHODS
    if language in HTTP:
        return HTTP_WORDS, []
    return [], []
