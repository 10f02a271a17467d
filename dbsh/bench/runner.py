"""Run one phase (load or run) in worker processes, each with its own connection; merge their HDR
histograms.

Workers are processes (forked on Linux, spawned elsewhere: start_method), so a benchmark uses every
core (Python threads would share one GIL).
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
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

from dbsh.bench import generators as g
from dbsh.bench.backends import adapter_for
from dbsh.bench.workload import OPERATIONS, Operations, Workload
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
    options: dict = field(default_factory=dict)   # backend options for each worker's session (--consistency)


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
        from dbsh import context

        for attempt in (1, 2):
            session = context.open_session(self.target, options=self.spec.options)
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
        inserts: g.LocalInsertSequence | g.SharedInsertSequence
        total: int | None
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
        prepare = self.preparer(adapter, ops, inserts, keys)
        pipeline = spec.pipeline if adapter.pipelining and spec.pipeline > 1 else 1
        # latencies are tallied per operation type as {microseconds: count} (a dict update per operation,
        # cheaper than an HDR record); they go into the HDR histograms at the end, exactly as recorded
        tallies: dict[str, dict[int, int]] = {}
        try:
            if pipeline > 1:
                self.batches(adapter, prepare, inserts, total, pipeline, tallies)
            else:
                self.singles(prepare, inserts, total, tallies)
        finally:
            self.flush(tallies)

    def flush(self, tallies: dict[str, dict[int, int]]) -> None:
        for kind, tally in tallies.items():
            record = self.stat(kind).histogram.record_value
            for us, n in tally.items():
                record(min(max(us, LOWEST_US), HIGHEST_US), n)
            tally.clear()

    def singles(self, prepare, inserts, total, tallies) -> None:
        """One operation per round trip: closed loop, or open loop (latency from the intended start)."""
        spec = self.spec
        stop, progress, slot = self.shared["stop"], self.shared["progress"], 2 * self.index
        perf, sleep, acknowledge, fail = time.perf_counter, time.sleep, inserts.acknowledge, self.fail
        deadline = None if spec.duration is None else perf() + spec.duration
        rate = spec.rate
        interval = None if not rate else spec.threads / rate
        t0 = perf() + (0 if not rate else self.index * (1 / rate))
        for kind in OPERATIONS:
            tallies[kind] = {}
        done = 0
        if deadline is not None and perf() >= deadline:
            return
        while total is None or done < total:
            if stop.value:
                break
            kind, call, args = prepare()
            if interval is not None:
                intended = t0 + done * interval
                now = perf()
                if intended > now:
                    sleep(intended - now)
                start = intended
            else:
                start = perf()
            try:
                call(*args)
            except Exception as e:  # noqa: BLE001 - a failed operation is counted, not fatal
                end = perf()
                fail(kind, e)
            else:
                end = perf()
                us = int((end - start) * 1_000_000)
                tally = tallies[kind]
                tally[us] = tally.get(us, 0) + 1
            if kind == "INSERT":
                acknowledge()
            done += 1
            progress[slot] = done
            if deadline is not None and end >= deadline:
                break
            if not done & 0xFFFF:
                self.trim(tallies)
        for kind in [k for k, t in tallies.items() if not t]:
            del tallies[kind]

    def trim(self, tallies) -> None:
        """Keep the tallies small on very long runs (they hold one entry per distinct microsecond)."""
        if sum(len(t) for t in tallies.values()) > 100_000:
            self.flush(tallies)

    def batches(self, adapter, prepare, inserts, total, pipeline, tallies) -> None:
        """``pipeline`` operations per round trip. Every operation of a batch is recorded with the batch's
        round-trip time (from sending the first command to the last reply), as redis-benchmark records
        each pipelined request with its batch's latency (it does not divide it)."""
        spec = self.spec
        stop, progress, slot = self.shared["stop"], self.shared["progress"], 2 * self.index
        perf, run_batch, acknowledge = time.perf_counter, adapter.run_batch, inserts.acknowledge
        deadline = None if spec.duration is None else perf() + spec.duration
        lower = {kind: kind.lower() for kind in OPERATIONS}
        done = 0
        while total is None or done < total:
            if stop.value or (deadline is not None and perf() >= deadline):
                break
            n = pipeline if total is None else min(pipeline, total - done)
            batch = [prepare() for _ in range(n)]
            commands = [(lower[kind], args) for kind, _, args in batch]
            start = perf()
            try:
                outcomes = run_batch(commands)
            except Exception as e:  # noqa: BLE001 - the whole round trip failed
                outcomes = [e] * n
            finally:
                for kind, _, _ in batch:
                    if kind == "INSERT":
                        acknowledge()
            us = int((perf() - start) * 1_000_000)
            for (kind, _, _), error in zip(batch, outcomes):
                if error is None:
                    tally = tallies.get(kind)
                    if tally is None:
                        tally = tallies[kind] = {}
                    tally[us] = tally.get(us, 0) + 1
                else:
                    self.fail(kind, error)
            done += n
            progress[slot] = done
            if (done & 0xFFFF) < n:   # crossed a multiple of 65536
                self.trim(tallies)

    def preparer(self, adapter, ops: Operations, inserts, keys) -> Callable[[], tuple[str, Callable, tuple]]:
        """The next operation, its adapter call and its arguments, chosen outside the timed call (as YCSB's
        DB wrapper); the lookups are bound once here, not per operation."""
        w, key = self.w, ops.key
        insert, read, update, scan = adapter.insert, adapter.read, adapter.update, adapter.scan
        scan_records = getattr(adapter, "scan_records", None)
        record, read_fields, update_values = ops.record, ops.read_fields, ops.update_values
        if keys is not None:
            wkey = w.key
            return lambda: ("INSERT", insert, (wkey(next(keys)), record()))
        next_operation, next_keynum, next_insert = ops.next_operation, ops.next_keynum, inserts.next_value

        def read_modify_write(k, fields, values):   # read the record, then write the changed fields, timed as one
            read(k, fields)
            update(k, values)

        def prepare() -> tuple[str, Callable, tuple]:
            kind = next_operation()
            if kind == "READ":
                return kind, read, (key(next_keynum()), read_fields())
            if kind == "UPDATE":
                return kind, update, (key(next_keynum()), update_values())
            if kind == "INSERT":
                return kind, insert, (w.key(next_insert()), record())
            if kind == "SCAN":
                if scan_records is not None:   # a store without key order: the records that follow by number
                    first = next_keynum()
                    return kind, scan_records, ([key(n) for n in range(first, first + ops.scan_length())],
                                                read_fields())
                return kind, scan, (key(next_keynum()), ops.scan_length(), read_fields())
            return kind, read_modify_write, (key(next_keynum()), read_fields(), update_values())

        return prepare


def _child(index, target, workload, spec, shared, results):
    try:
        _Worker(index, target, workload, spec, shared, results).main()
    finally:
        results.close()
        results.join_thread()   # flush the queue's feeder thread before the hard exit
        os._exit(0)


def start_method() -> str:
    """How worker processes start: fork() where it is sound (Linux: fast, nothing to re-import);
    spawn elsewhere (Windows has no fork; macOS's system libraries may not survive one), which
    starts each worker afresh and hands it the target, workload and phase pickled."""
    return "fork" if sys.platform.startswith("linux") else "spawn"


def run_phase(target, workload: Workload, spec: PhaseSpec,
              on_progress: Callable[[int, int, float], None] | None = None) -> PhaseResult:
    """Run one phase; ``on_progress(done, errors, seconds)`` is called a few times a second."""
    ctx = mp.get_context(start_method())
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
    # (typeshed gives get_context(str) the BaseContext, which lacks Process; every real context has it)
    procs = [ctx.Process(target=_child, args=(i, target, workload, spec, shared, results),  # type: ignore[attr-defined]
                         daemon=True)
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
