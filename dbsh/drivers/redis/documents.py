"""The uniform verbs on Redis: a collection is a key prefix, a document a hash under ``collection:id``."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, cast

from redis import exceptions as rexc

from dbsh import query as q
from dbsh.drivers.base import Result, Session, WriteResult, batched
from dbsh.drivers.redis.inserts import (
    INSERT_SCRIPT,
    SEQ_SUFFIX,
    _document_ids,
    _Inserter,
    _Prepared,
    _script_args,
    decode_value,
    encode_value,
)
from dbsh.drivers.redis.native import _key_text, text
from dbsh.errors import DbshError, PartialWrite, QueryError, Unsupported, UsageError

DROP_NEW_COUNTER = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
SCAN_COUNT = 1000          # keys per SCAN round trip
FETCH_BATCH = 500          # HGETALLs per pipeline when reading documents
SAMPLE_KEYS = 10_000       # keys sampled by `collections`
DESCRIBE_SAMPLE = 1000     # keys sampled by `describe`


def _glob_escape(text_: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text_)


def _check_collection(name: str) -> str:
    if not name or any(c.isspace() for c in name):
        raise UsageError(f"invalid collection (key prefix) {name!r}")
    return name



class RedisDocuments(Session):
    """The uniform verbs (find, count, insert, update, delete, collections, describe) over the session's
    client; RedisSession (dbsh.drivers.redis.session) adds the connection, its errors and the native
    commands."""

    cluster = False
    _inserter: _Inserter | None = None
    _insert_sha: str | None = None

    # RedisSession's: redis-py's errors as dbsh errors, and a server's message without the password
    def _errors(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def _clean(self, message: str) -> str:
        raise NotImplementedError

    # -- uniform verbs -----------------------------------------------------------------------
    def _keys(self, collection: str, where: q.Filter, counter: list[int]) -> Iterator[str]:
        """Candidate keys: one key when the filter pins the id, else a SCAN of the prefix."""
        ids = q.equalities(where.ast) if not where.is_empty else {}
        for field in ("id", "_id"):
            value = ids.get(field)
            if isinstance(value, str | int) and not isinstance(value, bool):
                if ":" not in str(value):   # (an id never holds ':': that key is another collection's)
                    counter[0] += 1
                    yield f"{collection}:{value}"
                return
        pattern = _glob_escape(collection) + ":*"
        start = len(collection.encode()) + 1
        with self._errors():
            for key in self.client.scan_iter(match=pattern, count=SCAN_COUNT, _type="hash"):
                if b":" in (key if isinstance(key, bytes) else key.encode())[start:]:
                    continue   # users:archive:1 is document 1 of users:archive, not of users
                counter[0] += 1
                yield text(key) if isinstance(text(key), str) else key

    def _documents(self, collection: str, where: q.Filter, counter: list[int]) -> Iterator[tuple[Any, dict]]:
        """(key, document) for every document of the collection that matches, fetched pipelined."""
        ast = None if where.is_empty else where.ast
        prefix = collection + ":"
        for keys in batched(self._keys(collection, where, counter), FETCH_BATCH):
            with self._errors():
                pipe = self.client.pipeline(transaction=False)
                for key in keys:
                    pipe.hgetall(key)
                hashes = pipe.execute(raise_on_error=False)
            for key, fields in zip(keys, hashes):
                if isinstance(fields, Exception) or not fields:
                    continue   # gone meanwhile, or not a hash
                doc = {_key_text(k): decode_value(v) for k, v in fields.items()}
                if "id" not in doc and "_id" not in doc:
                    suffix = key[len(prefix):] if isinstance(key, str) else text(key[len(prefix.encode()):])
                    doc = {"id": decode_value(suffix), **doc}
                if ast is None or q.matches(ast, doc):
                    yield key, doc

    def find(self, name: str, where: q.Filter, *, fields: list[str] | None = None,
             sort: list[tuple[str, int]] | None = None, limit: int | None = None,
             skip: int | None = None) -> Result:
        collection = _check_collection(name)
        counter = [0]
        where.ast  # noqa: B018 - a bad filter fails here, before any scanning

        def rows() -> Iterator[dict]:
            docs: Iterable[dict] = (doc for _, doc in self._documents(collection, where, counter))
            if sort:
                docs = _sorted(docs, sort)
            skipped = produced = 0
            try:
                for doc in docs:
                    if skip and skipped < skip:
                        skipped += 1
                        continue
                    if limit is not None and produced >= limit:
                        break
                    produced += 1
                    yield _project(doc, fields)
            except GeneratorExit:   # the reader stopped early: what was scanned so far
                _scanned(self, collection, counter)
                raise
            else:   # (after an error, the error alone)
                _scanned(self, collection, counter)

        return Result(rows(), None)

    def count(self, name: str, where: q.Filter) -> int:
        counter = [0]
        return sum(1 for _ in self._documents(_check_collection(name), where, counter))

    def prepare_batch(self, name: str, batch) -> None:
        """In the thread that reads ahead: the insert calls of a batch of documents with ids, worked out
        while the batch before is being written (_Prepared); insert_batch sends them. Anything unusual
        is left for the insert itself to work out and, if need be, refuse."""
        if self.cluster or batch.header is not None or not batch.docs:
            return
        inserter = self._inserter
        if inserter is None:
            return
        try:
            ids = _document_ids(batch.docs)
            if None in ids or not set(map(type, ids)) <= {int, str}:
                return
            prepared = _Prepared(batch.docs, ids, inserter if inserter.struct else None,
                                 f"{_check_collection(name)}:", int(self.option("ttl") or 0))
        except Exception:   # noqa: BLE001 - the insert meets it again and says what is wrong
            return
        batch.prepared = prepared

    def insert_batch(self, name: str, batch, *, create: bool = False) -> WriteResult:
        prepared = batch.prepared if type(batch.prepared) is _Prepared else None
        if prepared is not None and prepared.docs is batch.docs:
            return self.insert(name, batch.docs, batch=max(len(batch), 1), create=create, prepared=prepared)
        return super().insert_batch(name, batch, create=create)

    def insert(self, name: str, docs: Iterable[dict], *, batch: int = 1000, create: bool = False,
               progress=None, prepared: _Prepared | None = None) -> WriteResult:
        collection = _check_collection(name)
        ttl = int(self.option("ttl") or 0)
        inserted, existing, rejected, offset = 0, [], [], 0
        ids: list[Any] = []
        for chunk in batched(docs, batch):
            ahead = prepared if prepared is not None and prepared.docs is chunk else None
            todo, todo_ids = chunk, ahead.ids if ahead is not None else _document_ids(chunk)
            while todo:   # generated ids that hit an existing key (written with an explicit id) go round again
                keys, sent_ids, generated, skipped = self._insert_round(collection, todo, todo_ids, ttl, inserted,
                                                                        ahead)
                ahead = None
                if not skipped:
                    inserted += len(keys)
                    if len(ids) <= 1000:
                        ids.extend(sent_ids[:1001 - len(ids)])
                    break
                again = []
                for n, key in enumerate(keys):
                    if n not in skipped:
                        inserted += 1
                        if len(ids) <= 1000:
                            ids.append(sent_ids[n])
                    elif n in generated:
                        again.append(todo[n])
                    else:   # explicit ids are all settled in the first round, so n is the chunk position
                        existing.append(key)
                        rejected.append((offset + n, f"key {key} already exists"))
                todo, todo_ids = again, [None] * len(again)
            offset += len(chunk)
            if progress:
                progress(inserted)
        if existing:
            more = f" and {len(existing) - 5} more" if len(existing) > 5 else ""
            raise PartialWrite(f"inserted {inserted} documents into {collection}; {len(existing)} already existed "
                               f"and were left unchanged: {', '.join(existing[:5])}{more}",
                               written=inserted, rejected=rejected)
        details = {"ttl": ttl} if ttl else {}
        return WriteResult("inserted", collection, inserted, ids=ids if len(ids) <= 1000 else None,
                           details=details)

    def _insert_round(self, collection: str, docs: list[dict], doc_ids: list[Any], ttl: int, inserted: int,
                      prepared: _Prepared | None = None):
        """Insert a batch: through _Inserter on a standalone server, with INSERT_SCRIPT once per hash slot
        (pipelined) on a cluster. Ids for documents without one (None in doc_ids) come from one INCRBY.
        Returns the keys and ids sent, the positions whose id was generated, and the positions whose key
        already existed (left unchanged)."""
        missing = doc_ids.count(None)
        generated: set[int] = set()
        stored = docs
        if missing:
            with self._errors():
                next_id = self.client.incrby(f"{collection}:{SEQ_SUFFIX}", missing) - missing
            doc_ids, stored = list(doc_ids), list(docs)
            for n, doc_id in enumerate(doc_ids):
                if doc_id is None:
                    next_id += 1
                    doc_ids[n] = next_id
                    stored[n] = {"id": next_id, **docs[n]}
                    generated.add(n)
        inserter = None
        keys: list[str] = []
        try:
            with self._errors(), self._counter_kept_only_if_used(collection, missing, lambda: inserter):
                if self.cluster:
                    keys = [f"{collection}:{doc_id}" for doc_id in doc_ids]
                    slots: dict[int, list[int]] = {}
                    for n, key in enumerate(keys):
                        slots.setdefault(self.client.keyslot(key), []).append(n)
                    skipped = self._script_by_slot(keys, [_script_args(d) for d in stored], ttl,
                                                   list(slots.values()))
                else:
                    inserter = cast(_Inserter, self._inserter)   # (standalone: made when it connected)
                    keys, skipped = inserter.insert(f"{collection}:", doc_ids, stored, ttl,
                                                    lambda ks, a, b: self._exact(ks, stored, ttl, a, b),
                                                    prepared if stored is docs else None)
        except QueryError as e:
            done = inserted + (inserter.written if inserter is not None else 0)
            at = inserter.at if inserter is not None and inserter.at else keys[0] if keys else f"{collection}:"
            raise QueryError(f"insert stopped at {at} after {done} documents: {e.message}") from None
        return keys, doc_ids, generated, skipped

    @contextmanager
    def _counter_kept_only_if_used(self, collection: str, missing: int, inserter):
        """An insert that fails before writing anything leaves no id counter (collection:__seq__) it made."""
        try:
            yield
        except BaseException:
            made = missing and (inserter() is None or inserter().written == 0)
            if made:
                try:   # only the counter this insert created, unchanged since
                    self.client.eval(DROP_NEW_COUNTER, 1, f"{collection}:{SEQ_SUFFIX}", missing)
                except Exception:   # noqa: BLE001 - the insert's own error is the one to report
                    pass
            raise

    def _exact(self, keys: list[str], docs: list[dict], ttl: int, start: int, end: int) -> set[int]:
        """INSERT_SCRIPT over docs[start:end] on a standalone server: the positions whose key existed."""
        these = keys[start:end]
        repeats = int(len(set(these)) < len(these))
        args = [ttl, repeats, *(a for doc in docs[start:end] for a in _script_args(doc))]
        return {start + n - 1 for n in self._script(these, args)}

    def _script(self, keys: list[str], args: list[Any]) -> list[int]:
        """INSERT_SCRIPT on a standalone server by its SHA1, loading it when the server lacks it."""
        sha = self._insert_sha or self.client.script_load(INSERT_SCRIPT)
        self._insert_sha = sha
        try:
            return self.client.evalsha(sha, len(keys), *keys, *args)
        except rexc.NoScriptError:   # SCRIPT FLUSH or a restart meanwhile; nothing ran
            self._insert_sha = self.client.script_load(INSERT_SCRIPT)
            return self.client.evalsha(self._insert_sha, len(keys), *keys, *args)

    def _script_by_slot(self, keys: list[str], argv: list[list[Any]], ttl: int,
                        groups: list[list[int]]) -> set[int]:
        """INSERT_SCRIPT once per hash slot, all pipelined (a script may touch the keys of one slot only)."""
        skipped: set[int] = set()
        for attempt in (1, 2):
            if self._insert_sha is None:
                self._insert_sha = self.client.script_load(INSERT_SCRIPT)   # on every primary
            pipe = self.client.pipeline(transaction=False)
            for group in groups:
                group_keys = [keys[n] for n in group]
                repeats = int(len(set(group_keys)) < len(group_keys))
                pipe.execute_command("EVALSHA", self._insert_sha, len(group), *group_keys, ttl, repeats,
                                     *(a for n in group for a in argv[n]))
            results = pipe.execute(raise_on_error=False)
            retry = []
            for group, result in zip(groups, results):
                if isinstance(result, rexc.NoScriptError) and attempt == 1:
                    retry.append(group)   # a node that lost its scripts (restart, failover); nothing ran
                elif isinstance(result, Exception):
                    raise result
                else:
                    skipped.update(group[i - 1] for i in result)
            if not retry:
                break
            groups, self._insert_sha = retry, None
        return skipped

    def update(self, name: str, where: q.Filter, change: q.Update, *, upsert: bool = False,
               one: bool = False) -> WriteResult:
        collection = _check_collection(name)
        changes = change.changes
        for c in changes:
            if c.field.split(".")[0] in ("id", "_id"):
                raise Unsupported(f"cannot change {c.field!r}: it is part of the Redis key")
        counter = [0]
        matched = updated = 0
        for keys_docs in batched(self._documents(collection, where, counter), FETCH_BATCH):
            with self._errors():
                pipe = self.client.pipeline(transaction=False)
                for key, doc in keys_docs:
                    matched += 1
                    new = q.apply_update(changes, doc)
                    self._write_diff(pipe, key, doc, new)
                    if one:
                        break
                results = pipe.execute(raise_on_error=False)
            errors = [r for r in results if isinstance(r, Exception)]
            if errors:
                raise QueryError(f"update failed after {updated} documents: {self._clean(str(errors[0]))}")
            updated = matched
            if one:
                break
        _scanned(self, collection, counter)
        if matched == 0 and upsert:
            doc = q.apply_update(changes, {k: v for k, v in q.equalities(where.ast).items()
                                           if not isinstance(v, dict)})
            result = self.insert(collection, [doc])
            return WriteResult("upserted", collection, result.count, ids=result.ids)
        return WriteResult("updated", collection, updated, matched=matched)

    @staticmethod
    def _write_diff(pipe, key, old: dict, new: dict) -> None:
        removed = [f for f in old if f not in new]
        changed = {f: encode_value(v) for f, v in new.items() if f not in old or old[f] != v
                   or type(old[f]) is not type(v)}
        if removed:
            pipe.hdel(key, *removed)
        if changed:
            pipe.hset(key, mapping=changed)

    def delete(self, name: str, where: q.Filter, *, one: bool = False) -> WriteResult:
        collection = _check_collection(name)
        counter = [0]
        deleted = 0
        for keys_docs in batched(self._documents(collection, where, counter), FETCH_BATCH):
            keys = [k for k, _ in keys_docs][: 1 if one else None]
            with self._errors():
                pipe = self.client.pipeline(transaction=False)
                for key in keys:
                    pipe.delete(key)
                deleted += sum(r for r in pipe.execute() if isinstance(r, int))
            if one:
                break
        _scanned(self, collection, counter)
        return WriteResult("deleted", collection, deleted)

    # -- catalog ---------------------------------------------------------------------------
    def collections(self) -> list[str]:
        prefixes: set[str] = set()
        with self._errors():
            for n, key in enumerate(self.client.scan_iter(count=SCAN_COUNT), 1):
                name = text(key)
                if isinstance(name, str) and ":" in name:
                    prefixes.add(name.rpartition(":")[0])
                if n >= SAMPLE_KEYS:
                    self.notice(f"dbsh: sampled the first {SAMPLE_KEYS} keys")
                    break
        return sorted(prefixes)

    def describe(self, name: str) -> Result:
        collection = _check_collection(name)
        pattern = _glob_escape(collection) + ":*"
        start = len(collection.encode()) + 1
        keys: list[Any] = []
        with self._errors():
            for key in self.client.scan_iter(match=pattern, count=SCAN_COUNT):
                if b":" in (key if isinstance(key, bytes) else key.encode())[start:]:
                    continue   # another collection's key (users:archive:1 of users:archive)
                keys.append(key)
                if len(keys) >= DESCRIBE_SAMPLE:
                    break
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.type(key)
                pipe.memory_usage(key)
                pipe.ttl(key)
            meta = pipe.execute(raise_on_error=False)
            types = [text(t) for t in meta[0::3]]
            memory = [m for m in meta[1::3] if isinstance(m, int)]
            expiring = sum(1 for t in meta[2::3] if isinstance(t, int) and t >= 0)
            hashes = [k for k, t in zip(keys, types) if t == "hash"][:200]
            pipe = self.client.pipeline(transaction=False)
            for key in hashes:
                pipe.hgetall(key)
            docs = [r for r in pipe.execute(raise_on_error=False) if isinstance(r, dict)]
        if not keys:
            from dbsh.errors import NotFound

            raise NotFound(f"no keys match {collection}:*")
        fields: dict[str, dict[str, int]] = {}
        for doc in docs:
            for field, raw in doc.items():
                kinds = fields.setdefault(_key_text(field), {})
                kind = _json_type(decode_value(raw))
                kinds[kind] = kinds.get(kind, 0) + 1
        rows = [{"field": f, "type": "|".join(sorted(kinds)), "count": sum(kinds.values())}
                for f, kinds in fields.items()]
        by_type: dict[str, int] = {}
        for t in types:
            by_type[t] = by_type.get(t, 0) + 1
        type_text = ", ".join(f"{k} {v}" for k, v in sorted(by_type.items()))
        average = round(sum(memory) / len(memory)) if memory else 0
        more = "+" if len(keys) >= DESCRIBE_SAMPLE else ""
        message = (f"{collection}: {len(keys)}{more} keys sampled ({type_text}); {expiring} with a TTL; "
                   f"memory {sum(memory)} bytes, {average} per key; fields from {len(docs)} hashes")
        return Result(rows, ["field", "type", "count"], message=message)

    def completions(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name in self.collections()[:50]:
            try:
                out[name] = [r["field"] for r in self.describe(name)]
            except DbshError:
                out[name] = []
        return out


def _scanned(session, collection: str, counter: list[int]) -> None:
    noun = "key" if counter[0] == 1 else "keys"
    session.notice(f"dbsh: scanned {counter[0]} {noun} of {collection}:* (filtered client-side)")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"


def _sorted(docs: Iterable[dict], sort: list[tuple[str, int]]) -> list[dict]:
    """Client-side sort; missing values first (as MongoDB does), mixed types grouped by type name."""
    items = list(docs)
    for field, direction in reversed(sort):
        def key(doc, field=field):
            value = q.lookup(doc, field)
            if value is q._MISSING or value is None:
                return (0, "", 0)
            if isinstance(value, bool):
                return (2, "bool", int(value))
            if isinstance(value, int | float):
                return (1, "", value)
            return (3, type(value).__name__, value if isinstance(value, str) else json.dumps(value, sort_keys=True))
        items.sort(key=key, reverse=direction < 0)
    return items


def _project(doc: dict, fields: list[str] | None) -> dict:
    if not fields:
        return doc
    out = {}
    for field in fields:
        value = q.lookup(doc, field)
        if value is not q._MISSING:
            out[field] = value
    return out
