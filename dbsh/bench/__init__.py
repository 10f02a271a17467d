"""dbsh bench: YCSB core workloads (A-F, or any CoreWorkload properties file) on every backend,
with HDR latency histograms per operation type.

    dbsh -u redis://localhost bench --workload a --records 100000 --operations 200000 --threads 8

``bench()`` is the one entry point, for the CLI and for Python callers. The parts:
``generators`` (YCSB's key choosers), ``workload`` (properties, keys, records), ``backends`` (one
adapter per backend, over the driver Session's native client), ``runner`` (worker processes, open
or closed loop, merged histograms), ``report`` (rows, tables, histogram files).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field

from dbsh.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_RUNTIME, ConnectError, DbshError, QueryError, UsageError

__all__ = ["bench", "parse_duration"]


def parse_duration(text: str | None) -> float | None:
    """'60s', '5m', '1h', '250ms' or a number of seconds."""
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text)
    if not match:
        raise UsageError(f"bad duration {text!r}", hint="e.g. 60s, 5m, 1h, 500ms")
    value = float(match.group(1)) * {"ms": 0.001, None: 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]
    if value <= 0:
        raise UsageError("--duration must be above 0")
    return value


def parse_properties(pairs: list[str] | None) -> dict[str, str]:
    props: dict[str, str] = {}
    for pair in pairs or ():
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"bad property {pair!r}", hint="use -p name=value, e.g. -p fieldcount=5")
        props[name.strip()] = value.strip()
    return props


@dataclass
class Options:
    workload: str | None = None
    workload_file: str | None = None
    properties: list[str] | None = None
    records: int | None = None
    operations: int | None = None
    threads: int = 1
    rate: float | None = None
    duration: str | None = None
    load: bool = True
    run: bool = True
    pipeline: int = 1
    seed: int | None = None
    histogram: str | None = None
    clean: bool = False
    backend_options: dict = field(default_factory=dict)   # e.g. {"consistency": "QUORUM"}, for every session


def command(call) -> int:
    """`dbsh bench`: the targets (-u/-c, or the arguments with --compare), the workload, the report."""
    from dbsh import context
    from dbsh.output import Renderer

    v, s = call.values, call.settings
    if v["targets"] and not v["compare"]:
        raise UsageError("targets as arguments need --compare (or use -u URL)")
    if v["compare"] and not v["targets"]:
        raise UsageError("--compare needs the targets to compare as arguments")
    targets = [context.resolve(s, t) for t in v["targets"]] if v["compare"] else [context.resolve(s)]
    options = Options(workload=v["workload"], workload_file=v["workload_file"], properties=v["properties"],
                      records=v["records"], operations=v["operations"], threads=v["threads"], rate=v["rate"],
                      duration=v["duration"], load=not v["run_only"], run=not v["load_only"],
                      pipeline=v["pipeline"], seed=v["seed"], histogram=v["histogram"], clean=v["clean"],
                      backend_options=dict(s.options))
    return bench(targets, Renderer(s.fmt), options, compare=v["compare"])


def bench(targets: list, out, options: Options, *, compare: bool = False) -> int:
    """Benchmark each target (load phase, run phase); render; return the exit code.

    One target: a connection failure is an error (exit 3). With ``compare`` a target that cannot be
    reached is reported in its column and the others still run. Failed operations are counted per type
    and reported (exit 1 when any failed)."""
    from dbsh.bench import report, runner
    from dbsh.bench.workload import Workload, load_properties

    o = options
    if not o.load and not o.run:
        raise UsageError("--load-only and --run-only exclude each other")
    if o.threads < 1:
        raise UsageError("--threads must be at least 1")
    if o.rate is not None and o.rate <= 0:
        raise UsageError("--rate must be above 0")
    if o.pipeline < 1:
        raise UsageError("--pipeline must be at least 1")
    if o.pipeline > 1 and o.rate:
        raise UsageError("--pipeline and --rate cannot be combined (an open loop times each operation)")
    report.check_histogram_path(o.histogram)
    duration = parse_duration(o.duration)
    overrides = parse_properties(o.properties)
    if o.records is not None:
        overrides["recordcount"] = str(o.records)
    if o.operations is not None:
        overrides["operationcount"] = str(o.operations)
    props = load_properties(o.workload, o.workload_file, overrides)
    w = Workload.from_properties(props)
    run_operations = w.operationcount if (o.operations is not None or duration is None) else None
    if o.pipeline > 1:
        heavy = [n for n, p in w.proportions if p > 0 and n in ("SCAN", "READ-MODIFY-WRITE")]
        if heavy:
            raise UsageError(f"--pipeline batches READ, UPDATE and INSERT only; this workload has {', '.join(heavy)}")

    all_rows: list[dict] = []
    drawn: list[tuple[str, runner.PhaseResult]] = []
    code = EXIT_OK
    for target in targets:
        label = target.display()
        try:
            backend, results = _bench_one(target, w, o, duration, run_operations, compare)
        except DbshError as e:
            if not compare:
                raise
            print(f"dbsh: bench {label}: {e}", file=sys.stderr)
            all_rows += report.failed_rows(str(e), target=label, backend=None, workload=w.name)
            code = max(code, e.exit_code)
            continue
        for result in results:
            all_rows += report.phase_rows(result, target=label, backend=backend, workload=w.name)
            if result.errors or result.problems:
                code = max(code, EXIT_RUNTIME)
            if result.interrupted:
                code = EXIT_INTERRUPTED
        if results:
            chosen = next((r for r in results if r.phase == "run"), results[-1])
            drawn.append((backend if compare else "", chosen))
        if code == EXIT_INTERRUPTED:
            break
    report.render(out, all_rows, compare=compare)
    if o.histogram and drawn:
        for path in report.write_histogram(o.histogram, report.series_for(drawn)):
            print(f"dbsh: latency histogram written to {path}", file=sys.stderr)
    return code


def _bench_one(target, w, o: Options, duration, run_operations, compare: bool):
    from dbsh import context
    from dbsh.bench import runner
    from dbsh.bench.backends import adapter_for

    # a flag the backend has not is exit 2 here, before any work
    session = context.open_session(target, writes="bench", options=o.backend_options)
    try:
        backend = session.name
        adapter = adapter_for(session, w)
        if o.pipeline > 1 and not adapter.pipelining:
            raise UsageError(f"--pipeline is not supported on {backend} (Redis only)")
        session.ping()
        try:
            if o.clean and o.load:
                adapter.drop()
            adapter.prepare()
            if o.load and not o.clean:
                _refuse_loaded(adapter, w, target)
        except DbshError:
            raise
        except Exception as e:  # noqa: BLE001 - the client library's own error, in one line
            raise QueryError(f"cannot prepare {w.table} on {target.display()}: {runner._message(e, target.password)}"
                             ) from None
        finally:
            adapter.close()
    finally:
        session.close()   # workers open their own connections; nothing is shared across fork

    results = []
    phases = []
    if o.load:
        phases.append(runner.PhaseSpec("load", o.threads, w.insertcount, None, o.rate, o.pipeline, o.seed,
                                       o.backend_options))
    if o.run:
        phases.append(runner.PhaseSpec("run", o.threads, run_operations, duration, o.rate, o.pipeline, o.seed,
                                       o.backend_options))
    for spec in phases:
        result = _run_with_progress(target, w, spec, backend)
        results.append(result)
        _summary(result, backend if compare else None)
        if result.problems and not result.count and not compare:
            raise ConnectError(f"bench {spec.phase} on {target.display()}: {result.problems[0]}")
        if result.interrupted:
            break
    return backend, results


def _refuse_loaded(adapter, w, target) -> None:
    """A load onto the records of an earlier one would fail every INSERT (their keys exist): say so
    before running, and how to go on. Its first key is the test: one read on every backend."""
    from dbsh.bench.backends import Missing

    try:
        adapter.read(w.key(w.insertstart), None)
    except Missing:
        return
    try:
        held = f"{adapter.count():,} records"
    except DbshError:
        held = "records"
    raise UsageError(f"{w.table} on {target.display()} already holds {held} from an earlier load, so every INSERT "
                     "of this one would fail", hint="pass --clean to drop them and load afresh, or --run-only to "
                     "run the workload on them")


def _run_with_progress(target, w, spec, backend: str):
    from dbsh.bench import runner

    if not sys.stderr.isatty():
        return runner.run_phase(target, w, spec)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    total = spec.operations if spec.operations is not None else None
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[rate]:>10} ops/s  errors {task.fields[errors]}"), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(f"{backend} {spec.phase}", total=total, rate="-", errors=0)

        def update(done: int, errors: int, seconds: float) -> None:
            rate = f"{done / seconds:,.0f}" if seconds > 0 else "-"
            bar.update(task, completed=done, rate=rate, errors=errors)

        return runner.run_phase(target, w, spec, update)


def _summary(result, backend: str | None) -> None:
    where = f"{backend} " if backend else ""
    rate = f"{result.count / result.seconds:,.0f} ops/s" if result.seconds > 0 else "-"
    loop = f", open loop at {result.rate:g}/s" if result.rate else ""
    print(f"dbsh: {where}{result.phase}: {result.count} operations in {result.seconds:.2f} s ({rate}, "
          f"{result.threads} worker{'s' if result.threads != 1 else ''}{loop}), {result.errors} errors"
          + (" (interrupted)" if result.interrupted else ""), file=sys.stderr)
    for name, s in result.ops.items():
        if s.errors:
            print(f"dbsh: {where}{name}: {s.errors} failed, first: {s.first_error}", file=sys.stderr)
    for problem in result.problems:
        print(f"dbsh: {where}{result.phase}: {problem}", file=sys.stderr)
