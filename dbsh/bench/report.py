"""What a benchmark prints: rows per phase and operation type (json/jsonl/csv/tsv through the dbsh
renderer, a Rich table on a terminal), side-by-side columns for --compare, and histogram files
(.hgrm percentile distributions, a .png plot with matplotlib (the [plot] extra), a self-contained
.html/.svg plot written directly, with no dependency)."""

from __future__ import annotations

import html
import io
import math
from pathlib import Path

from dbsh.bench.runner import OpStats, PhaseResult, new_histogram
from dbsh.bench.workload import OPERATIONS
from dbsh.errors import UsageError

# (row key, label, percentile) — latencies are in microseconds
PERCENTILES = (("p50_us", "p50", 50.0), ("p95_us", "p95", 95.0), ("p99_us", "p99", 99.0),
               ("p99_9_us", "p99.9", 99.9), ("p99_99_us", "p99.99", 99.99))
COLUMNS = ["target", "backend", "workload", "phase", "operation", "threads", "seconds", "count", "errors",
           "throughput", "min_us", "mean_us", *(k for k, _, _ in PERCENTILES), "max_us", "error"]
HISTOGRAM_SUFFIXES = (".png", ".html", ".svg", ".hgrm")


def check_histogram_path(path: str | None) -> None:
    if path and Path(path).suffix.lower() not in HISTOGRAM_SUFFIXES:
        raise UsageError(f"--histogram {path}: unknown file type", hint="use .png, .html, .svg or .hgrm")
    if path and not Path(path).parent.exists():
        raise UsageError(f"--histogram {path}: directory does not exist")
    if path and Path(path).suffix.lower() == ".png" and not _has_matplotlib():
        raise UsageError(f"--histogram {path}: a PNG needs matplotlib", hint=PNG_HINT)


PNG_HINT = "pip install 'dbsh[plot]', or write .svg, .html or .hgrm, which need nothing"


def _has_matplotlib() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("matplotlib") is not None
    except ValueError:   # in sys.modules as None: blocked
        return False


def ordered(ops: dict[str, OpStats]) -> list[tuple[str, OpStats]]:
    names = [n for n in OPERATIONS if n in ops] + sorted(n for n in ops if n not in OPERATIONS)
    return [(n, ops[n]) for n in names]


def combined(result: PhaseResult) -> OpStats:
    total = OpStats(new_histogram())
    for _, s in ordered(result.ops):
        total.histogram.add(s.histogram)
        total.errors += s.errors
        total.first_error = total.first_error or s.first_error
    if result.problems and total.first_error is None:
        total.first_error = result.problems[0]
    return total


def stats_row(name: str, s: OpStats, seconds: float) -> dict:
    h = s.histogram
    n = h.get_total_count()
    row = {"operation": name, "count": n, "errors": s.errors,
           "throughput": round(n / seconds, 1) if seconds > 0 else 0.0,
           "min_us": h.get_min_value() if n else None, "mean_us": round(h.get_mean_value(), 1) if n else None}
    for key, _, p in PERCENTILES:
        row[key] = h.get_value_at_percentile(p) if n else None
    row["max_us"] = h.get_max_value() if n else None
    row["error"] = s.first_error
    return row


def phase_rows(result: PhaseResult, *, target: str, backend: str, workload: str) -> list[dict]:
    """One row per operation type, then an ALL row for the phase (json/csv: every column, always)."""
    head = {"target": target, "backend": backend, "workload": workload, "phase": result.phase,
            "threads": result.threads, "seconds": round(result.seconds, 3)}
    rows = [{**head, **stats_row(name, s, result.seconds)} for name, s in ordered(result.ops)]
    rows.append({**head, **stats_row("ALL", combined(result), result.seconds)})
    return [{c: r.get(c) for c in COLUMNS} for r in rows]


def failed_rows(message: str, *, target: str, backend: str | None, workload: str) -> list[dict]:
    """A target that could not be benchmarked at all (--compare goes on with the others)."""
    row = dict.fromkeys(COLUMNS)
    row.update(target=target, backend=backend, workload=workload, phase="-", operation="ALL", count=0,
               errors=0, throughput=0.0, error=message)
    return [row]


def latency(us) -> str:
    if us is None:
        return "-"
    if us < 1000:
        return f"{us:.0f}µs" if isinstance(us, int) or us >= 10 else f"{us:.1f}µs"
    if us < 1_000_000:
        return f"{us / 1000:.2f}ms"
    return f"{us / 1_000_000:.2f}s"


def render(out, rows: list[dict], *, compare: bool) -> None:
    if out.fmt != "table":
        out.rows(rows, COLUMNS)
        return
    from rich.table import Table

    if not compare:
        table = Table(show_edge=False, pad_edge=False)
        for name in ("phase", "operation", "count", "errors", "ops/s", "min", "mean", "p50", "p95", "p99",
                     "p99.9", "p99.99", "max"):
            table.add_column(name, justify="left" if name in ("phase", "operation") else "right", no_wrap=True)
        for r in rows:
            table.add_row(r["phase"], r["operation"], str(r["count"]), str(r["errors"]), f"{r['throughput']:,.0f}",
                          latency(r["min_us"]), latency(r["mean_us"]),
                          *(latency(r[k]) for k, _, _ in PERCENTILES), latency(r["max_us"]))
        out.console.print(table)
        return
    targets = list(dict.fromkeys(r["target"] for r in rows))
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("phase")
    table.add_column("operation")
    table.add_column("metric")
    for t in targets:
        label = next(r["backend"] for r in rows if r["target"] == t) or "failed"
        table.add_column(f"{label}\n{t}", justify="right", overflow="fold")
    by = {(r["target"], r["phase"], r["operation"]): r for r in rows}
    keys = list(dict.fromkeys((r["phase"], r["operation"]) for r in rows if r["phase"] != "-"))
    per_phase = {phase: sum(1 for p, op in keys if p == phase and op != "ALL") for phase, _ in keys}
    keys = [(p, op) for p, op in keys if op != "ALL" or per_phase[p] > 1]   # ALL repeats a lone operation
    metrics = (("ops/s", lambda r: f"{r['throughput']:,.0f}"), ("p50", lambda r: latency(r["p50_us"])),
               ("p99", lambda r: latency(r["p99_us"])), ("p99.9", lambda r: latency(r["p99_9_us"])),
               ("max", lambda r: latency(r["max_us"])), ("errors", lambda r: str(r["errors"])))
    for phase, op in keys:
        for i, (metric, fmt) in enumerate(metrics):
            cells = [fmt(by[(t, phase, op)]) if (t, phase, op) in by else "-" for t in targets]
            table.add_row(phase if i == 0 else "", op if i == 0 else "", metric, *cells,
                          end_section=i == len(metrics) - 1)
    failed = [r for r in rows if r["phase"] == "-"]
    if failed:
        table.add_row("-", "ALL", "error", *(next((r["error"] for r in failed if r["target"] == t), "") or ""
                                            for t in targets))
    out.console.print(table)


# ------------------------------------------------------------------------------------ histograms
Series = list[tuple[str, OpStats]]   # (label, stats)


def series_for(results: list[tuple[str, PhaseResult]]) -> Series:
    """The latency series to draw: each operation type of the run phase (else load), per target."""
    out: Series = []
    for label, result in results:
        for name, s in ordered(result.ops):
            if s.histogram.get_total_count():
                out.append((f"{label} {result.phase} {name}".strip(), s))
    return out


def write_histogram(path: str, series: Series) -> list[str]:
    """Write the latency distribution; returns the files written."""
    if not series:
        raise UsageError("no successful operations: no latency histogram to draw")
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".hgrm":
        return _hgrm(p, series)
    if suffix == ".png":
        return [_png(p, series)]
    p.write_text(_html(series) if suffix == ".html" else _svg(series), encoding="utf-8")
    return [str(p)]


def _hgrm(p: Path, series: Series) -> list[str]:
    """HdrHistogram's percentile distribution (values in milliseconds), one file per series."""
    written = []
    for label, s in series:
        target = p if len(series) == 1 else p.with_name(f"{p.stem}.{_slug(label)}{p.suffix}")
        buf = io.BytesIO()
        s.histogram.output_percentile_distribution(buf, 1000.0)
        target.write_bytes(buf.getvalue())
        written.append(str(target))
    return written


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-").lower()


def _curve(s: OpStats) -> list[tuple[float, float]]:
    """(1/(1-percentile), latency ms) points of the percentile distribution, as HdrHistogram plots it."""
    points = []
    for item in s.histogram.get_percentile_iterator(5):
        pct = item.percentile_level_iterated_to
        if pct >= 100.0:
            break
        points.append((1.0 / (1.0 - pct / 100.0), item.value_iterated_to / 1000.0))
    points.append((1.0 / (1.0 - 0.999999), s.histogram.get_max_value() / 1000.0))
    return points


TICKS = ((1, "0%"), (2, "50%"), (10, "90%"), (100, "99%"), (1000, "99.9%"), (10_000, "99.99%"),
         (100_000, "99.999%"), (1_000_000, "99.9999%"))


def _png(p: Path, series: Series) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("--histogram FILE.png needs matplotlib", hint=PNG_HINT) from None
    fig, ax = plt.subplots(figsize=(9, 5), dpi=110)
    for label, s in series:
        xs, ys = zip(*_curve(s))
        ax.plot(xs, ys, label=label, linewidth=1.5)
    ax.set_xscale("log")
    ax.set_xticks([t for t, _ in TICKS], [name for _, name in TICKS])
    ax.set_xlim(1, 1_000_000)
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Latency by percentile (HdrHistogram)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    fig.savefig(p)
    plt.close(fig)
    return str(p)


COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def _svg(series: Series, width: int = 900, height: int = 480) -> str:
    """The same percentile plot as the PNG, as plain SVG (no dependency)."""
    left, right, top, bottom = 70, 20, 30, 50
    pw, ph = width - left - right, height - top - bottom
    curves = [(label, _curve(s)) for label, s in series]
    ymax = max(y for _, c in curves for _, y in c) or 1.0
    ymax = 10 ** math.ceil(math.log10(ymax)) if ymax > 0 else 1.0
    ymax = ymax / 2 if max(y for _, c in curves for _, y in c) < ymax / 2 else ymax

    def x(v: float) -> float:
        return left + pw * math.log10(max(v, 1)) / 6

    def y(v: float) -> float:
        return top + ph * (1 - v / ymax)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14">Latency by percentile '
             f'(HdrHistogram)</text>']
    for t, name in TICKS:
        parts.append(f'<line x1="{x(t):.1f}" y1="{top}" x2="{x(t):.1f}" y2="{top + ph}" stroke="#ddd"/>')
        parts.append(f'<text x="{x(t):.1f}" y="{top + ph + 16}" text-anchor="middle">{name}</text>')
    for i in range(6):
        v = ymax * i / 5
        parts.append(f'<line x1="{left}" y1="{y(v):.1f}" x2="{left + pw}" y2="{y(v):.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    parts.append(f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle">percentile</text>')
    parts.append(f'<text x="16" y="{top + ph / 2}" text-anchor="middle" transform="rotate(-90 16 '
                 f'{top + ph / 2})">latency (ms)</text>')
    for i, (label, curve) in enumerate(curves):
        color = COLORS[i % len(COLORS)]
        pts = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in curve)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{pts}"/>')
        parts.append(f'<rect x="{left + 10}" y="{top + 8 + 16 * i}" width="12" height="3" fill="{color}"/>')
        parts.append(f'<text x="{left + 28}" y="{top + 13 + 16 * i}">{html.escape(label)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _html(series: Series) -> str:
    rows = []
    for label, s in series:
        r = stats_row(label, s, 0)
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in
                                     (label, r["count"], latency(r["min_us"]), latency(r["p50_us"]),
                                      latency(r["p99_us"]), latency(r["p99_9_us"]), latency(r["max_us"]))) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("series", "count", "min", "p50", "p99", "p99.9", "max"))
    return ("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>dbsh bench latency</title>"
            "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 10px;text-align:right}"
            "td:first-child,th:first-child{text-align:left}</style></head><body>\n"
            f"{_svg(series)}\n<table><tr>{head}</tr>{''.join(rows)}</table>\n</body></html>\n")
