"""Run one phase (load or run) in worker processes, each with its own connection; merge their HDR
histograms.

Workers are forked processes, so a benchmark uses every core (Python threads would share one GIL).
Each opens its own dbsh Session, waits until all are connected, then runs its share of the
operations: closed loop (as fast as the server answers) or open loop (``rate``: operation k of a
worker is due at a fixed time and its latency is measured from that intended start, so a stalled
server shows up in the latencies instead of quietly lowering the load: coordinated omission).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_mod
import random
import signal
import time
from dataclasses import dataclass, field
from typing import Callable

from hdrh.histogram import HdrHistogram

from dbsh.bench import generators as g
from dbsh.bench.backends import adapter_for
from dbsh.bench.workload import Operations, Workload
from dbsh.errors import ConnectError, DbshError, one_line, redact

LOWEST_US, HIGHEST_US, DIGITS = 1, 3_600_000_000, 3   # 1 µs .. 1 hour, 3 significant digits
CONNECT_WAIT = 60.0


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


@dataclass(frozen=True)
class PhaseSpec:
    phase: str                      # "load" or "run"
    threads: int = 1
    operations: int | None = None   # None: until the duration is over
    duration: float | None = None   # seconds
    rate: float | None = None       # operations per second over all workers (open loop)
    pipeline: int = 1               # Redis: operations per round trip
    seed: int | None = None


@dataclass
class OpStats:
    histogram: HdrHistogram = field(default_factory=new_histogram)
    errors: int = 0
    first_error: str | None = None


@dataclass
class PhaseResult:
    phase: str
    threads: int
    seconds: float
    ops: dict[str, OpStats]
    problems: list[str]             # workers that could not connect or died
    interrupted: bool = False
    rate: float | None = None

    @property
    def count(self) -> int:
        return sum(s.histogram.get_total_count() for s in self.ops.values())

    @property
    def errors(self) -> int:
        return sum(s.errors for s in self.ops.values())


def _message(error: BaseException, password: str | None) -> str:
    if isinstance(error, DbshError):
        return redact(str(error), password)
    text = one_line(str(error)) if str(error).strip() else ""
    return redact(f"{type(error).__name__}: {text}" if text else type(error).__name__, password)


def split(total: int, parts: int, index: int) -> tuple[int, int]:
    """The [start, end) share of ``index`` when ``total`` items are split into ``parts``."""
    base, extra = divmod(total, parts)
    start = index * base + min(index, extra)
    return start, start + base + (1 if index < extra else 0)


class _Worker:
    """Runs in the child process."""

    def __init__(self, index: int, target, workload: Workload, spec: PhaseSpec, shared: dict, results):
        self.index, self.target, self.w, self.spec = index, target, workload, spec
        self.shared, self.results = shared, results
        self.stats: dict[str, OpStats] = {}
        self.password = target.password

    def stat(self, name: str) -> OpStats:
        s = self.stats.get(name)
        if s is None:
            s = self.stats[name] = OpStats()
        return s

    def fail(self, name: str, error: BaseException) -> None:
        s = self.stat(name)
        s.errors += 1
        if s.first_error is None:
            s.first_error = _message(error, self.password)
        self.shared["progress"][2 * self.index + 1] += 1

    def record(self, name: str, seconds: float) -> None:
        us = int(seconds * 1_000_000)
        self.stat(name).histogram.record_value(min(max(us, LOWEST_US), HIGHEST_US))

    def main(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # the parent turns Ctrl-C into the stop flag
        try:
            session = self.connect()
            adapter = adapter_for(session, self.w)
        except BaseException as e:  # noqa: BLE001 - reported to the parent, never a traceback
            self.results.put(("fatal", self.index, _message(e, self.password)))
            return
        self.results.put(("ready", self.index, None))
        self.shared["start"].wait()
        started = time.perf_counter()
        try:
            self.loop(adapter)
        except BaseException as e:  # noqa: BLE001
            self.results.put(("fatal", self.index, _message(e, self.password)))
        finally:
            ended = time.perf_counter()
            try:
                adapter.close()
                session.close()
            except BaseException:  # noqa: BLE001 - closing a broken connection may fail too
                pass
        encoded = {name: (s.histogram.encode(), s.errors, s.first_error) for name, s in self.stats.items()}
        self.results.put(("done", self.index, (encoded, started, ended)))

    def connect(self):
        """Open and ping this worker's own session (an unreachable server is reported once, not per
        operation); one retry, since a server may drop a connection attempt while many arrive at once."""
        from dbsh import drivers

        for attempt in (1, 2):
            session = drivers.connect(self.target)
            try:
                session.ping()
                return session
            except ConnectError:
                session.close()
                if attempt == 2:
                    raise
                time.sleep(0.1)

    def loop(self, adapter) -> None:
        spec, w = self.spec, self.w
        seed = None if spec.seed is None else spec.seed * 1000 + self.index
        rng = random.Random(seed)
        shared = self.shared
        if spec.phase == "load":
            lo, hi = split(w.insertcount, spec.threads, self.index)
            keys = iter(range(w.insertstart + lo, w.insertstart + hi))
            inserts = g.LocalInsertSequence(w.insertstart + hi)
            total = hi - lo
        else:
            inserts = g.SharedInsertSequence(shared["insert_counter"], shared["inflight"], shared["insert_lock"],
                                             self.index)
            keys = None
            total = None if spec.operations is None else split(spec.operations, spec.threads, self.index)[1] \
                - split(spec.operations, spec.threads, self.index)[0]
        ops = Operations(w, rng, inserts, spec.phase)
        stop, progress = shared["stop"], shared["progress"]
        deadline = None if spec.duration is None else time.perf_counter() + spec.duration
        interval = None if not spec.rate else spec.threads / spec.rate
        t0 = time.perf_counter() + (0 if interval is None else self.index * (1 / spec.rate))
        pipeline = spec.pipeline if adapter.pipelining and spec.pipeline > 1 else 1
        done = 0
        while total is None or done < total:
            if stop.value or (deadline is not None and time.perf_counter() >= deadline):
                break
            if pipeline > 1:
                n = pipeline if total is None else min(pipeline, total - done)
                batch = [self.prepare(ops, inserts, keys) for _ in range(n)]
                start = time.perf_counter()
                try:
                    outcomes = adapter.run_batch([(kind.lower(), args) for kind, args in batch])
                except Exception as e:  # noqa: BLE001 - the whole round trip failed
                    outcomes = [e] * len(batch)
                finally:
                    for kind, _ in batch:
                        if kind == "INSERT":
                            inserts.acknowledge()
                elapsed = time.perf_counter() - start
                for (kind, _), error in zip(batch, outcomes):
                    if error is None:
                        self.record(kind, elapsed)
                    else:
                        self.fail(kind, error)
                done += n
                progress[2 * self.index] = done
                continue
            kind, args = self.prepare(ops, inserts, keys)
            if interval is not None:
                intended = t0 + done * interval
                now = time.perf_counter()
                if intended > now:
                    time.sleep(intended - now)
                start = intended
            else:
                start = time.perf_counter()
            try:
                self.execute(adapter, kind, args, ops)
            except Exception as e:  # noqa: BLE001 - a failed operation is counted, not fatal
                self.fail(kind, e)
            else:
                self.record(kind, time.perf_counter() - start)
            finally:
                if kind == "INSERT":
                    inserts.acknowledge()
            done += 1
            progress[2 * self.index] = done

    def prepare(self, ops: Operations, inserts, keys) -> tuple[str, tuple]:
        """Choose the next operation and its arguments (outside the timed call, as YCSB's DB wrapper)."""
        w = self.w
        if keys is not None:
            return "INSERT", (w.key(next(keys)), ops.record())
        kind = ops.next_operation()
        if kind == "INSERT":
            return kind, (w.key(inserts.next_value()), ops.record())
        if kind == "READ":
            return kind, (w.key(ops.next_keynum()), ops.read_fields())
        if kind == "UPDATE":
            return kind, (w.key(ops.next_keynum()), ops.update_values())
        if kind == "SCAN":
            return kind, (w.key(ops.next_keynum()), ops.scan_length(), ops.read_fields())
        return kind, (w.key(ops.next_keynum()), ops.read_fields(), ops.update_values())

    @staticmethod
    def execute(adapter, kind: str, args: tuple, ops: Operations) -> None:
        if kind == "READ":
            adapter.read(*args)
        elif kind == "UPDATE":
            adapter.update(*args)
        elif kind == "INSERT":
            adapter.insert(*args)
        elif kind == "SCAN":
            adapter.scan(*args)
        else:   # READ-MODIFY-WRITE: read the record, then write the changed fields, timed as one
            key, fields, values = args
            adapter.read(key, fields)
            adapter.update(key, values)


def _child(index, target, workload, spec, shared, results):
    try:
        _Worker(index, target, workload, spec, shared, results).main()
    finally:
        results.close()
        results.join_thread()   # flush the queue's feeder thread before the hard exit
        os._exit(0)


def run_phase(target, workload: Workload, spec: PhaseSpec,
              on_progress: Callable[[int, int, float], None] | None = None) -> PhaseResult:
    """Run one phase; ``on_progress(done, errors, seconds)`` is called a few times a second."""
    ctx = mp.get_context("fork")
    threads = spec.threads
    shared = {
        "start": ctx.Event(),
        "stop": ctx.RawValue("b", 0),
        "progress": ctx.RawArray("q", 2 * threads),
        "insert_counter": ctx.RawValue("q", workload.recordcount),
        "inflight": ctx.RawArray("q", [-1] * threads),
        "insert_lock": ctx.Lock(),
    }
    results = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(i, target, workload, spec, shared, results), daemon=True)
             for i in range(threads)]
    for p in procs:
        p.start()
    problems: list[str] = []
    merged: dict[str, OpStats] = {}
    times: list[tuple[float, float]] = []
    interrupted = False
    pending_ready = set(range(threads))
    pending_done = set(range(threads))

    def handle(message) -> None:
        kind, index, payload = message
        if kind == "ready":
            pending_ready.discard(index)
        elif kind == "fatal":
            pending_ready.discard(index)
            pending_done.discard(index)
            if payload not in problems:
                problems.append(payload)
        else:
            pending_done.discard(index)
            encoded, started, ended = payload
            times.append((started, ended))
            for name, (hist, errors, first) in encoded.items():
                s = merged.setdefault(name, OpStats())
                s.histogram.decode_and_add(hist)
                s.errors += errors
                s.first_error = s.first_error or first

    def reap() -> None:
        """Workers that died without a word (killed, crashed in C) count as problems."""
        for i, p in enumerate(procs):
            if not p.is_alive() and i in pending_done:
                try:
                    handle(results.get(timeout=0.5))
                    continue
                except queue_mod.Empty:
                    pass
                pending_ready.discard(i)
                pending_done.discard(i)
                problems.append(f"worker {i} exited with code {p.exitcode}")

    began = time.perf_counter()
    try:
        while pending_ready and time.perf_counter() - began < CONNECT_WAIT:
            try:
                handle(results.get(timeout=0.2))
            except queue_mod.Empty:
                reap()
        shared["start"].set()
        run_start = time.perf_counter()
        while pending_done:
            try:
                handle(results.get(timeout=0.25))
            except queue_mod.Empty:
                reap()
            if on_progress is not None:
                progress = shared["progress"]
                on_progress(sum(progress[0::2]), sum(progress[1::2]), time.perf_counter() - run_start)
    except KeyboardInterrupt:
        interrupted = True
        shared["stop"].value = 1
        shared["start"].set()   # workers still waiting to start see the stop flag and report
        deadline = time.perf_counter() + 10
        while pending_done and time.perf_counter() < deadline:
            try:
                handle(results.get(timeout=0.25))
            except (queue_mod.Empty, KeyboardInterrupt):
                reap()
    finally:
        for p in procs:
            p.join(timeout=2)
            if p.is_alive():
                p.kill()
                p.join()
    seconds = (max(e for _, e in times) - min(s for s, _ in times)) if times else 0.0
    return PhaseResult(spec.phase, threads, seconds, merged, problems, interrupted, spec.rate)
