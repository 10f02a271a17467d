"""YCSB's generators and workload files, ported to dbsh.bench: checked against YCSB's own algorithm
(Java source of site.ycsb.generator / site.ycsb.Utils, 0.17) on fixed seeds. No server needed."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from dbsh.bench import generators as g
from dbsh.bench.workload import Workload, load_properties, parse_properties
from dbsh.errors import UsageError

# YCSB's workloads/workloada, verbatim (comments and all)
WORKLOADA = """# Copyright (c) 2010 Yahoo! Inc. All rights reserved.
# Yahoo! Cloud System Benchmark
# Workload A: Update heavy workload
#   Application example: Session store recording recent actions
#
#   Read/update ratio: 50/50
#   Default data size: 1 KB records (10 fields, 100 bytes each, plus key)
#   Request distribution: zipfian

recordcount=1000
operationcount=1000
workload=site.ycsb.workloads.CoreWorkload

readallfields=true

readproportion=0.5
updateproportion=0.5
scanproportion=0
insertproportion=0

requestdistribution=zipfian
"""


def java_fnv1a_64(val: int) -> int:
    """FNV-1a 64 over the 8 little-endian bytes of a Java long, then Math.abs on the signed result:
    what Utils.fnvhash64 computes, written independently of the port (bytes, not shifts)."""
    h = 0xCBF29CE484222325
    for byte in val.to_bytes(8, "little", signed=True):
        h = ((h ^ byte) * 0x100000001B3) % 2**64
    signed = h - 2**64 if h >= 2**63 else h
    return signed if signed == -2**63 else abs(signed)


@pytest.mark.parametrize("value", [0, 1, 2, 42, 999, 123456789, 2**31 - 1, 2**40 + 7])
def test_fnvhash64_is_ycsbs(value):
    assert g.fnvhash64(value) == java_fnv1a_64(value)
    assert g.fnvhash64(value) >= 0


def test_zipfian_draw_is_ycsbs_formula():
    """nextLong(itemcount) after nextDouble() = u, from ZipfianGenerator.java."""
    items, theta = 1000, 0.99
    gen = g.ZipfianGenerator(0, items - 1, random.Random(1))
    zetan = sum(1 / (i + 1) ** theta for i in range(items))
    zeta2 = 1 + 1 / 2 ** theta
    eta = (1 - (2.0 / items) ** (1 - theta)) / (1 - zeta2 / zetan)
    alpha = 1 / (1 - theta)
    assert gen.zetan == pytest.approx(zetan, rel=1e-12)
    for u in (0.0, 0.1, 0.15, 0.2, 0.5, 0.9, 0.99, 0.999999):
        uz = u * zetan
        expected = 0 if uz < 1 else 1 if uz < 1 + 0.5 ** theta else int(items * (eta * u - eta + 1) ** alpha)
        assert gen.value_for(u, items) == expected


def test_zipfian_distribution_on_a_fixed_seed():
    """The two most popular items come out with YCSB's exact probabilities 1/zetan and 2^-theta/zetan,
    and popularity falls with rank (Gray et al.'s approximation beyond that)."""
    items, n = 1000, 200_000
    gen = g.ZipfianGenerator(0, items - 1, random.Random(12345))
    counts = Counter(gen.next_value() for _ in range(n))
    assert min(counts) >= 0 and max(counts) <= items - 1
    zetan = gen.zetan
    assert counts[0] / n == pytest.approx(1 / zetan, abs=0.004)
    assert counts[1] / n == pytest.approx(0.5 ** 0.99 / zetan, abs=0.004)
    assert counts[0] > counts[1] > counts[5] > counts[50] > counts[500]
    # a fixed seed gives the same keys again (--seed makes runs repeatable)
    a, b = (g.ZipfianGenerator(0, items - 1, random.Random(99)) for _ in range(2))
    assert [a.next_value() for _ in range(50)] == [b.next_value() for _ in range(50)]


def test_scrambled_zipfian_hot_keys_are_ycsbs():
    """ScrambledZipfianGenerator draws from 10^10 items with YCSB's precomputed zeta, then maps item i
    to min + fnvhash64(i) % itemcount: the hottest key is fnvhash64(0) % n, the next fnvhash64(1) % n."""
    n = 1000
    gen = g.ScrambledZipfianGenerator(0, n - 1, random.Random(7))
    assert gen.gen.zetan == g.SCRAMBLED_ZETAN == 26.46902820178302
    assert gen.gen.items == 10_000_000_001
    counts = Counter(gen.next_value() for _ in range(100_000))
    (top, top_count), (second, _) = counts.most_common(2)
    assert top == g.fnvhash64(0) % n
    assert second == g.fnvhash64(1) % n
    assert top_count / 100_000 == pytest.approx(1 / g.SCRAMBLED_ZETAN, abs=0.005)
    assert all(0 <= k < n for k in counts)


def test_zeta_for_huge_item_counts():
    """YCSB's precomputed zeta(10^10, 0.99) comes out of the Euler-Maclaurin tail too, so another
    zipfianconstant with the scrambled generator does not sum 10^10 terms."""
    assert g.zeta_large(g.SCRAMBLED_ITEM_COUNT, 0.99) == pytest.approx(g.SCRAMBLED_ZETAN, rel=1e-9)
    assert g.zeta_large(300_000, 0.8) == pytest.approx(g.zetastatic(0, 300_000, 0.8, 0), rel=1e-12)
    gen = g.ScrambledZipfianGenerator(0, 99, random.Random(1), zipfianconstant=0.9)
    assert all(0 <= gen.next_value() <= 99 for _ in range(100))


def test_latest_prefers_the_newest_keys():
    last = [999]
    gen = g.SkewedLatestGenerator(lambda: last[0], random.Random(3))
    draws = [gen.next_value() for _ in range(20_000)]
    assert max(draws) <= 999 and min(draws) >= 0
    assert Counter(draws).most_common(1)[0][0] == 999
    last[0] = 1999   # inserts moved the newest key on
    assert Counter(gen.next_value() for _ in range(20_000)).most_common(1)[0][0] == 1999


def test_hotspot_and_uniform():
    rng = random.Random(5)
    hot = g.HotspotIntegerGenerator(0, 999, 0.2, 0.8, rng)
    draws = [hot.next_value() for _ in range(20_000)]
    assert sum(1 for d in draws if d < 200) / len(draws) == pytest.approx(0.8, abs=0.02)
    uni = g.UniformLongGenerator(10, 19, rng)
    assert {uni.next_value() for _ in range(2000)} == set(range(10, 20))


def test_operation_chooser_proportions():
    chooser = g.DiscreteGenerator([("READ", 0.95), ("UPDATE", 0.05), ("SCAN", 0)], random.Random(9))
    counts = Counter(chooser.next_value() for _ in range(20_000))
    assert set(counts) == {"READ", "UPDATE"}
    assert counts["UPDATE"] / 20_000 == pytest.approx(0.05, abs=0.01)


def test_workload_file_in_ycsb_format(tmp_path):
    path = tmp_path / "workloada"
    path.write_text(WORKLOADA)
    props = load_properties(None, str(path), {"recordcount": "50"})
    w = Workload.from_properties(props)
    assert dict(w.proportions) == {"READ": 0.5, "UPDATE": 0.5, "INSERT": 0.0, "SCAN": 0.0, "READ-MODIFY-WRITE": 0.0}
    assert (w.recordcount, w.operationcount, w.requestdistribution) == (50, 1000, "zipfian")
    assert (w.fieldcount, w.fieldlength, w.table, w.fields[0]) == (10, 100, "usertable", "field0")
    # YCSB's key names: "user" + FNV-hashed number (hashed insert order), or the number itself (ordered)
    assert w.key(3) == f"user{g.fnvhash64(3)}"
    ordered = Workload.from_properties({**props, "insertorder": "ordered", "zeropadding": "6"})
    assert ordered.key(3) == "user000003"


def test_properties_syntax():
    props = parse_properties("a = 1\nb:2\n! comment\nc=x\\\n  y\n# d=4\n")
    assert props == {"a": "1", "b": "2", "c": "xy"}


@pytest.mark.parametrize("props, message", [
    ({"requestdistribution": "exponential"}, "requestdistribution"),
    ({"fieldcount": "ten"}, "fieldcount"),
    ({"table": "user table"}, "invalid table name"),
    ({"readproportion": "0", "updateproportion": "0"}, "nothing to run"),
])
def test_bad_properties_are_usage_errors(props, message):
    with pytest.raises(UsageError, match=message):
        Workload.from_properties(load_properties("c", None, props))


def test_unknown_workload():
    with pytest.raises(UsageError, match="unknown workload"):
        load_properties("z", None, {})
