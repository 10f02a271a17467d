"""YCSB's CoreWorkload: properties (the workloads/workload[a-f] files), keys, records and operations."""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from dbsh.bench import generators as g
from dbsh.errors import UsageError

# YCSB's CoreWorkload defaults (site.ycsb.workloads.CoreWorkload)
DEFAULTS: dict[str, str] = {
    "table": "usertable",
    "fieldcount": "10",
    "fieldlength": "100",
    "fieldlengthdistribution": "constant",
    "fieldnameprefix": "field",
    "readallfields": "true",
    "writeallfields": "false",
    "readproportion": "0.95",
    "updateproportion": "0.05",
    "insertproportion": "0",
    "scanproportion": "0",
    "readmodifywriteproportion": "0",
    "requestdistribution": "uniform",
    "zipfianconstant": "0.99",
    "minscanlength": "1",
    "maxscanlength": "1000",
    "scanlengthdistribution": "uniform",
    "insertorder": "hashed",
    "zeropadding": "1",
    "hotspotdatafraction": "0.2",
    "hotspotopnfraction": "0.8",
    "recordcount": "1000",
    "operationcount": "1000",
    "insertstart": "0",
}

# The published workloads (YCSB's workloads/workloada ... workloadf), without the comments.
WORKLOADS: dict[str, dict[str, str]] = {
    "a": {"readproportion": "0.5", "updateproportion": "0.5", "scanproportion": "0", "insertproportion": "0",
          "requestdistribution": "zipfian"},
    "b": {"readproportion": "0.95", "updateproportion": "0.05", "scanproportion": "0", "insertproportion": "0",
          "requestdistribution": "zipfian"},
    "c": {"readproportion": "1", "updateproportion": "0", "scanproportion": "0", "insertproportion": "0",
          "requestdistribution": "zipfian"},
    "d": {"readproportion": "0.95", "updateproportion": "0", "scanproportion": "0", "insertproportion": "0.05",
          "requestdistribution": "latest"},
    "e": {"readproportion": "0", "updateproportion": "0", "scanproportion": "0.95", "insertproportion": "0.05",
          "requestdistribution": "zipfian", "maxscanlength": "100", "scanlengthdistribution": "uniform"},
    "f": {"readproportion": "0.5", "updateproportion": "0", "scanproportion": "0", "insertproportion": "0",
          "readmodifywriteproportion": "0.5", "requestdistribution": "zipfian"},
}
for _name, _props in WORKLOADS.items():
    _props.update({"workload": "site.ycsb.workloads.CoreWorkload", "recordcount": "1000",
                   "operationcount": "1000", "readallfields": "true"})

OPERATIONS = ("READ", "UPDATE", "INSERT", "SCAN", "READ-MODIFY-WRITE")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def parse_properties(text: str, source: str = "workload file") -> dict[str, str]:
    """Java .properties, as YCSB's workload files use them: key=value or key: value, # and ! comments,
    backslash line continuations."""
    props: dict[str, str] = {}
    pending = ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = pending + raw.strip() if pending else raw.strip()
        pending = ""
        if not line or line[0] in "#!":
            continue
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending = line[:-1]
            continue
        match = re.match(r"^((?:[^=:\s\\]|\\.)+)\s*[=:\s]\s*(.*)$", line)
        if not match:
            if re.match(r"^\S+$", line):
                props[line] = ""
                continue
            raise UsageError(f"{source} line {number}: not a key=value property: {raw.strip()!r}")
        props[match.group(1).replace("\\", "")] = match.group(2)
    return props


def load_properties(workload: str | None, workload_file: str | None, overrides: dict[str, str]) -> dict[str, str]:
    props = dict(DEFAULTS)
    if workload and workload_file:
        raise UsageError("give --workload or --workload-file, not both")
    if workload_file:
        path = Path(workload_file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise UsageError(f"cannot read workload file {workload_file}: {e.strerror or e}") from None
        props.update(parse_properties(text, str(path)))
        props.setdefault("workload_name", path.name)
    else:
        name = (workload or "a").lower().removeprefix("workload")
        if name not in WORKLOADS:
            raise UsageError(f"unknown workload {workload!r}", hint="a, b, c, d, e or f (or --workload-file)")
        props.update(WORKLOADS[name])
        props["workload_name"] = name
    workload_class = props.get("workload", "site.ycsb.workloads.CoreWorkload")
    if not workload_class.endswith("CoreWorkload"):
        raise UsageError(f"workload class {workload_class} is not supported (only CoreWorkload)")
    props.update(overrides)
    return props


def _int(props: dict[str, str], key: str, minimum: int = 0) -> int:
    try:
        value = int(str(props[key]).strip())
    except (KeyError, ValueError):
        raise UsageError(f"property {key} must be an integer, got {props.get(key)!r}") from None
    if value < minimum:
        raise UsageError(f"property {key} must be at least {minimum}, got {value}")
    return value


def _float(props: dict[str, str], key: str) -> float:
    try:
        value = float(str(props[key]).strip())
    except (KeyError, ValueError):
        raise UsageError(f"property {key} must be a number, got {props.get(key)!r}") from None
    if value < 0:
        raise UsageError(f"property {key} must not be negative, got {value}")
    return value


def _bool(props: dict[str, str], key: str) -> bool:
    value = str(props[key]).strip().lower()
    if value not in ("true", "false"):
        raise UsageError(f"property {key} must be true or false, got {props[key]!r}")
    return value == "true"


@dataclass(frozen=True)
class Workload:
    """The parsed, validated properties one phase needs (picklable: it goes to the workers)."""

    name: str
    table: str
    fieldcount: int
    fieldlength: int
    fieldlengthdistribution: str
    fieldnameprefix: str
    readallfields: bool
    writeallfields: bool
    proportions: tuple[tuple[str, float], ...]
    requestdistribution: str
    zipfianconstant: float
    minscanlength: int
    maxscanlength: int
    scanlengthdistribution: str
    ordered: bool
    zeropadding: int
    hotspotdatafraction: float
    hotspotopnfraction: float
    recordcount: int
    operationcount: int
    insertstart: int
    insertcount: int

    @classmethod
    def from_properties(cls, props: dict[str, Any]) -> Workload:
        table = str(props["table"])
        if not NAME.match(table):
            raise UsageError(f"invalid table name {table!r}", hint="letters, digits and _, starting with a letter")
        prefix = str(props["fieldnameprefix"])
        if not NAME.match(prefix):
            raise UsageError(f"invalid fieldnameprefix {prefix!r}")
        dist = str(props["requestdistribution"]).strip().lower()
        if dist not in ("uniform", "zipfian", "latest", "hotspot"):
            raise UsageError(f"requestdistribution {dist!r} is not supported", hint="uniform, zipfian, latest, hotspot")
        for key in ("fieldlengthdistribution", "scanlengthdistribution"):
            if str(props[key]).strip().lower() not in ("constant", "uniform", "zipfian"):
                raise UsageError(f"{key} {props[key]!r} is not supported", hint="constant, uniform or zipfian")
        order = str(props["insertorder"]).strip().lower()
        if order not in ("hashed", "ordered"):
            raise UsageError(f"insertorder must be hashed or ordered, got {order!r}")
        proportions = (("READ", _float(props, "readproportion")), ("UPDATE", _float(props, "updateproportion")),
                       ("INSERT", _float(props, "insertproportion")), ("SCAN", _float(props, "scanproportion")),
                       ("READ-MODIFY-WRITE", _float(props, "readmodifywriteproportion")))
        if not any(w > 0 for _, w in proportions):
            raise UsageError("every operation proportion is 0: nothing to run")
        recordcount = _int(props, "recordcount", 1)
        insertstart = _int(props, "insertstart")
        insertcount = _int(props, "insertcount", 1) if "insertcount" in props else recordcount - insertstart
        if insertcount < 1:
            raise UsageError("insertstart must be below recordcount")
        minscan, maxscan = _int(props, "minscanlength", 1), _int(props, "maxscanlength", 1)
        if minscan > maxscan:
            raise UsageError("minscanlength is above maxscanlength")
        fieldcount = _int(props, "fieldcount", 1)
        if fieldcount > 1000:
            raise UsageError("fieldcount above 1000 is not supported")
        return cls(name=str(props.get("workload_name", "custom")), table=table, fieldcount=fieldcount,
                   fieldlength=_int(props, "fieldlength", 1),
                   fieldlengthdistribution=str(props["fieldlengthdistribution"]).strip().lower(),
                   fieldnameprefix=prefix, readallfields=_bool(props, "readallfields"),
                   writeallfields=_bool(props, "writeallfields"), proportions=proportions,
                   requestdistribution=dist, zipfianconstant=_float(props, "zipfianconstant"),
                   minscanlength=minscan, maxscanlength=maxscan,
                   scanlengthdistribution=str(props["scanlengthdistribution"]).strip().lower(),
                   ordered=order == "ordered", zeropadding=_int(props, "zeropadding", 1),
                   hotspotdatafraction=_float(props, "hotspotdatafraction"),
                   hotspotopnfraction=_float(props, "hotspotopnfraction"), recordcount=recordcount,
                   operationcount=_int(props, "operationcount"), insertstart=insertstart, insertcount=insertcount)

    @property
    def fields(self) -> list[str]:
        return [f"{self.fieldnameprefix}{i}" for i in range(self.fieldcount)]

    def key(self, keynum: int) -> str:
        """CoreWorkload.buildKeyName: "user" + (FNV-hashed unless ordered) number, zero padded."""
        if not self.ordered:
            keynum = g.fnvhash64(keynum)
        return "user" + str(keynum).rjust(self.zeropadding, "0")


KEY_CACHE = 1 << 20
_PRINTABLE = (string.ascii_letters + string.digits + string.punctuation + " ").encode()


class Operations:
    """One worker's generators: which operation next, on which key, with which values."""

    def __init__(self, w: Workload, rng: random.Random, inserts, phase: str):
        self.w, self.rng, self.inserts = w, rng, inserts
        self.fields = w.fields
        self.chooser = g.DiscreteGenerator(list(w.proportions), rng)
        # a pool of random printable bytes; values are slices of it (as cheap as YCSB's RandomByteIterator)
        self.pool = bytes(rng.choice(_PRINTABLE) for _ in range(8192)).decode() * (2 + w.fieldlength // 8192)
        self.fieldlength = self._length_generator(w.fieldlengthdistribution, 1, w.fieldlength)
        self.scanlength = self._length_generator(w.scanlengthdistribution, w.minscanlength, w.maxscanlength)
        self.keychooser: g.NumberGenerator | None = None   # (the run phase's; loading inserts in order)
        # without inserts in the mix nothing moves the acknowledged insert counter: read its limit once
        self.fixed_limit = inserts.last_value() if phase == "run" and not dict(w.proportions)["INSERT"] else None
        self._keys: dict[int, str] = {}   # keynum -> key name (FNV hash + padding), bounded
        if phase == "run":
            start, count = w.insertstart, w.insertcount
            dist = w.requestdistribution
            if dist == "uniform":
                self.keychooser = g.UniformLongGenerator(start, start + count - 1, rng)
            elif dist == "zipfian":
                insert_share = dict(w.proportions)["INSERT"] / sum(p for _, p in w.proportions)
                expected_new = int(w.operationcount * insert_share * 2.0)   # YCSB's fudge factor 2
                self.keychooser = g.ScrambledZipfianGenerator(start, start + count + expected_new, rng,
                                                              w.zipfianconstant)
            elif dist == "latest":
                self.keychooser = g.SkewedLatestGenerator(inserts.last_value, rng)
            else:
                self.keychooser = g.HotspotIntegerGenerator(start, start + count - 1, w.hotspotdatafraction,
                                                            w.hotspotopnfraction, rng)

    def _length_generator(self, dist: str, low: int, high: int) -> Callable[[], int]:
        if dist == "constant":
            return lambda: high
        gen: g.NumberGenerator
        if dist == "uniform":
            gen = g.UniformLongGenerator(low, high, self.rng)
        else:
            gen = g.ZipfianGenerator(low, high, self.rng)
        return gen.next_value

    def next_operation(self) -> str:
        return self.chooser.next_value()

    def key(self, keynum: int) -> str:
        """The workload's key name, cached for the keys this worker draws again and again."""
        key = self._keys.get(keynum)
        if key is None:
            key = self.w.key(keynum)
            if len(self._keys) < KEY_CACHE:
                self._keys[keynum] = key
        return key

    def next_keynum(self) -> int:
        """CoreWorkload.nextKeynum: never a key beyond the last acknowledged insert."""
        limit = self.fixed_limit if self.fixed_limit is not None else self.inserts.last_value()
        chooser = cast(g.NumberGenerator, self.keychooser)   # (set: only the run phase draws keys)
        while True:
            keynum = chooser.next_value()
            if keynum <= limit:
                return keynum

    # int(random() * n) rather than randrange(n): one draw, no rejection loop (a few per operation)
    def value(self) -> str:
        n = self.fieldlength()
        start = int(self.rng.random() * 8192)
        return self.pool[start:start + n]

    def record(self) -> dict[str, str]:
        return {f: self.value() for f in self.fields}

    def update_values(self) -> dict[str, str]:
        if self.w.writeallfields:
            return self.record()
        fields = self.fields
        return {fields[int(self.rng.random() * len(fields))]: self.value()}

    def read_fields(self) -> list[str] | None:
        if self.w.readallfields:
            return None
        fields = self.fields
        return [fields[int(self.rng.random() * len(fields))]]

    def scan_length(self) -> int:
        return self.scanlength()
