"""YCSB's number generators, ported from site.ycsb.generator (YCSB 0.17) line by line.

Every generator draws its randomness from ``rng.random()`` (a ``random.Random``), where YCSB
calls ``ThreadLocalRandom.current().nextDouble()``; the arithmetic after that draw is YCSB's,
including its quirks (ZipfianGenerator's eta uses the initial item count; Math.abs of a long).
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable
from typing import Protocol

FNV_OFFSET_BASIS_64 = 0xCBF29CE484222325
FNV_PRIME_64 = 1099511628211
_MASK64 = (1 << 64) - 1

ZIPFIAN_CONSTANT = 0.99
# ScrambledZipfianGenerator: zeta(10^10 items, 0.99), precomputed by YCSB (ZETAN, ITEM_COUNT)
SCRAMBLED_ZETAN = 26.46902820178302
SCRAMBLED_ITEM_COUNT = 10_000_000_000


def _signed64(value: int) -> int:
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


def java_abs(value: int) -> int:
    """Math.abs(long): Long.MIN_VALUE stays negative, as in Java."""
    return value if value == -(1 << 63) else abs(value)


def fnvhash64(val: int) -> int:
    """Utils.fnvhash64: FNV-1a over the 8 low bytes of a long, then Math.abs (as a Java long).
    The 8 rounds are unrolled (a key is built per operation; this is a hot path)."""
    p, m = FNV_PRIME_64, _MASK64
    h = ((FNV_OFFSET_BASIS_64 ^ (val & 0xFF)) * p) & m
    h = ((h ^ ((val >> 8) & 0xFF)) * p) & m
    h = ((h ^ ((val >> 16) & 0xFF)) * p) & m
    h = ((h ^ ((val >> 24) & 0xFF)) * p) & m
    h = ((h ^ ((val >> 32) & 0xFF)) * p) & m
    h = ((h ^ ((val >> 40) & 0xFF)) * p) & m
    h = ((h ^ ((val >> 48) & 0xFF)) * p) & m
    h = ((h ^ ((val >> 56) & 0xFF)) * p) & m
    if h >= 1 << 63:   # a negative Java long: Math.abs, except Long.MIN_VALUE stays negative
        h -= 1 << 64
        return h if h == -(1 << 63) else -h
    return h


def zetastatic(st: int, n: int, theta: float, initialsum: float) -> float:
    """ZipfianGenerator.zetastatic: initialsum + sum(1 / (i+1)^theta for i in [st, n))."""
    total = initialsum
    for i in range(st, n):
        total += 1 / ((i + 1) ** theta)
    return total


def zeta_large(n: int, theta: float, exact: int = 100_000) -> float:
    """zeta(n, theta) for n too large to sum (YCSB sums 10^10 terms for a non-default zipfianconstant):
    the first terms exactly, the tail by Euler-Maclaurin (relative error far below 1e-9 here)."""
    if n <= exact:
        return zetastatic(0, n, theta, 0)
    head = zetastatic(0, exact, theta, 0)
    k = exact + 1   # the tail is sum over i in [k, n] of i^-theta
    integral = math.log(n / k) if theta == 1 else (n ** (1 - theta) - k ** (1 - theta)) / (1 - theta)
    ends = (k ** -theta + n ** -theta) / 2
    slope = theta / 12 * (k ** (-theta - 1) - n ** (-theta - 1))
    return head + integral + ends + slope


class NumberGenerator(Protocol):
    """What the workload draws key numbers and lengths from: any of the integer generators here."""

    def next_value(self) -> int: ...


class CounterGenerator:
    """A counter from ``start``; lastValue() is the last number handed out."""

    def __init__(self, start: int):
        self.counter = start

    def next_value(self) -> int:
        value = self.counter
        self.counter += 1
        return value

    def last_value(self) -> int:
        return self.counter - 1


class UniformLongGenerator:
    def __init__(self, lb: int, ub: int, rng: random.Random):
        self.lb, self.ub, self.interval = lb, ub, ub - lb + 1
        self.rng = rng

    def next_value(self) -> int:
        return int(self.rng.random() * self.interval) + self.lb


class ZipfianGenerator:
    """Gray et al., "Quickly Generating Billion-Record Synthetic Databases" (SIGMOD 1994), as YCSB has it."""

    def __init__(self, min_: int, max_: int, rng: random.Random, zipfianconstant: float = ZIPFIAN_CONSTANT,
                 zetan: float | None = None):
        self.rng = rng
        self.items = max_ - min_ + 1
        self.base = min_
        self.theta = zipfianconstant
        self.zeta2theta = zetastatic(0, 2, self.theta, 0)
        self.alpha = 1.0 / (1.0 - self.theta)
        self.zetan = zetastatic(0, self.items, self.theta, 0) if zetan is None else zetan
        self.countforzeta = self.items
        self.eta = (1 - (2.0 / self.items) ** (1 - self.theta)) / (1 - self.zeta2theta / self.zetan)
        self.last: int | None = None
        self.next_value()

    @classmethod
    def of_items(cls, items: int, rng: random.Random) -> ZipfianGenerator:
        return cls(0, items - 1, rng)

    def next_long(self, itemcount: int) -> int:
        if itemcount != self.countforzeta and itemcount > self.countforzeta:
            # incremental zeta, as YCSB does when the item count grows (its eta keeps self.items)
            self.zetan = zetastatic(self.countforzeta, itemcount, self.theta, self.zetan)
            self.countforzeta = itemcount
            self.eta = (1 - (2.0 / self.items) ** (1 - self.theta)) / (1 - self.zeta2theta / self.zetan)
        u = self.rng.random()
        return self.value_for(u, itemcount)

    def value_for(self, u: float, itemcount: int) -> int:
        """The draw for one uniform number u in [0, 1): YCSB's nextLong after nextDouble()."""
        uz = u * self.zetan
        if uz < 1.0:
            return self.base
        if uz < 1.0 + 0.5 ** self.theta:
            return self.base + 1
        ret = self.base + int(itemcount * ((self.eta * u - self.eta + 1) ** self.alpha))
        self.last = ret
        return ret

    def next_value(self) -> int:
        return self.next_long(self.items)


class ScrambledZipfianGenerator:
    """Zipfian popularity, but the popular items are scattered over the key space by FNV hashing."""

    def __init__(self, min_: int, max_: int, rng: random.Random, zipfianconstant: float = ZIPFIAN_CONSTANT):
        self.min, self.max = min_, max_
        self.itemcount = max_ - min_ + 1
        if zipfianconstant == ZIPFIAN_CONSTANT:
            self.gen = ZipfianGenerator(0, SCRAMBLED_ITEM_COUNT, rng, zipfianconstant, SCRAMBLED_ZETAN)
        else:
            self.gen = ZipfianGenerator(0, SCRAMBLED_ITEM_COUNT, rng, zipfianconstant,
                                        zeta_large(SCRAMBLED_ITEM_COUNT + 1, zipfianconstant))

    def next_value(self) -> int:
        return self.scramble(self.gen.next_value())

    def scramble(self, value: int) -> int:
        return self.min + fnvhash64(value) % self.itemcount


class SkewedLatestGenerator:
    """Zipfian over the most recently inserted keys: latest is most popular."""

    def __init__(self, last_value: Callable[[], int], rng: random.Random):
        self.basis = last_value
        self.zipfian = ZipfianGenerator.of_items(max(last_value(), 1), rng)

    def next_value(self) -> int:
        maximum = self.basis()
        return maximum - self.zipfian.next_long(maximum)


class HotspotIntegerGenerator:
    """hotopnfraction of the operations go to the first hotsetfraction of the keys."""

    def __init__(self, lb: int, ub: int, hotset_fraction: float, hotopn_fraction: float, rng: random.Random):
        if not 0 <= hotset_fraction <= 1 or not 0 <= hotopn_fraction <= 1:
            raise ValueError("hotspot fractions must be between 0 and 1")
        self.lb, self.ub = lb, ub
        self.rng = rng
        self.hotopn_fraction = hotopn_fraction
        interval = ub - lb + 1
        self.hot_interval = int(interval * hotset_fraction)
        self.cold_interval = interval - self.hot_interval

    def _long(self) -> int:
        return java_abs(_signed64(self.rng.getrandbits(64)))

    def next_value(self) -> int:
        if self.rng.random() < self.hotopn_fraction and self.hot_interval:
            return self.lb + self._long() % self.hot_interval
        if not self.cold_interval:
            return self.lb + self._long() % max(self.hot_interval, 1)
        return self.lb + self.hot_interval + self._long() % self.cold_interval


class DiscreteGenerator:
    """Pick a name with the given weights (YCSB's operation chooser)."""

    def __init__(self, weights: list[tuple[str, float]], rng: random.Random):
        self.values = [(name, w) for name, w in weights if w > 0]
        self.total = sum(w for _, w in self.values)
        if not self.values:
            raise ValueError("no operation has a proportion above 0")
        self.rng = rng

    def next_value(self) -> str:
        val = self.rng.random()
        if len(self.values) == 1:   # one operation: the same draw, no walk
            return self.values[0][0]
        for name, weight in self.values:
            if val < weight / self.total:
                return name
            val -= weight / self.total
        return self.values[-1][0]


class SharedInsertSequence:
    """YCSB's AcknowledgedCounterGenerator across worker processes.

    ``next_value`` hands out the next key number (a shared counter); ``last_value`` is the highest
    key number below which every insert has finished, so readers never pick a key still in flight.
    ``counter`` is a shared int, ``inflight`` a shared int array (one slot per worker, -1 = idle).
    """

    def __init__(self, counter, inflight, lock, worker: int):
        self.counter, self.inflight, self.lock, self.worker = counter, inflight, lock, worker

    def next_value(self) -> int:
        with self.lock:
            value = self.counter.value
            self.inflight[self.worker] = value   # visible before the counter moves past it
            self.counter.value = value + 1
        return value

    def acknowledge(self) -> None:
        self.inflight[self.worker] = -1

    def last_value(self) -> int:
        limit = self.counter.value - 1
        for key in self.inflight:
            if 0 <= key <= limit:
                limit = key - 1
        return limit


class LocalInsertSequence:
    """The same interface in one process (no other writers)."""

    def __init__(self, start: int):
        self.counter = start
        self.lock = threading.Lock()

    def next_value(self) -> int:
        value = self.counter
        self.counter += 1
        return value

    def acknowledge(self) -> None:
        pass

    def last_value(self) -> int:
        return self.counter - 1
