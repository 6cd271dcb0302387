"""What a bench run produces and how it is shown: BenchResult rows, the one percentile definition,
CPU accounting, the table, the JSON and the ratio lines."""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable, List, Optional, Sequence


@dataclass
class BenchResult:
    transport: str
    nodes: int
    clients: int
    batch: int
    payload: int
    put_per_s: float
    inverse_rate_us: float      # 1e6 / put_per_s: not a latency (see p50_us, p99_us)
    p50_us: float
    p99_us: float
    ops: int
    seconds: float
    system: str = "ours"        # "ours", or a reference run side by side: "floor", "pysyncobj", ...
    # CPU seconds per entry x 1e6 while measuring: of the bench process (the leader, or the
    # whole cluster in one process) and of each follower process on average (nan: none or
    # unknown). Unlike put/s they hold up on a loaded machine: what others run is not counted.
    cpu_us: float = math.nan
    follower_cpu_us: float = math.nan
    # B6 log-length rows (bench.scale): entries in the leader's log when measuring began, and
    # on the full-log rows the RSS the fill added per entry in bytes (None / nan elsewhere).
    log_entries: Optional[int] = None
    rss_per_entry: float = math.nan
    # ... and the garbage collector's passes of GC_SLOW_MS or more while measuring, with the
    # longest pause (a pass over the log buffers walks every entry, so it grows with the log).
    gc_slow_passes: Optional[int] = None
    gc_longest_ms: float = math.nan



def percentile(sorted_values, q: float) -> float:
    """The nearest-rank q-quantile (0 < q <= 1) of ascending values: the smallest value with at
    least q of all values at or below it (0.0 for no values). The one definition every bench
    and report uses."""
    n = len(sorted_values)
    if not n:
        return 0.0
    k = math.ceil(q * n) - 1
    return sorted_values[min(n - 1, max(0, k))]



def cpu_seconds(pids: Sequence[int] = ()) -> List[float]:
    """CPU seconds (user + system) used so far by this process and by each of `pids` (nan
    where /proc cannot tell)."""
    out = [time.process_time()]
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            out.append((int(fields[11]) + int(fields[12])) / _CLOCK_TICKS)
        except (OSError, IndexError, ValueError):
            out.append(math.nan)
    return out


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100



def summarize(transport: str, system: str, nodes: int, batch: int, payload_size: int, runs) -> List[BenchResult]:
    """BenchResults of `runs` from run_clients. Call it
    once the cluster is down: sorting a million samples blocks the loop long enough for the
    leader's lease to lapse (check-quorum would then refuse the next phase's writes)."""
    results = []
    for c, n, elapsed, samples, cpu, follower_cpu in runs:
        lats = sorted(samples)
        rate = n / elapsed if elapsed else 0.0
        per_entry = 1e6 / n if n else math.nan
        followers = sum(follower_cpu) / len(follower_cpu) * per_entry if follower_cpu else math.nan
        results.append(BenchResult(transport, nodes, c, batch, payload_size, rate, 1e6 / rate if rate else 0.0,
                                   percentile(lats, 0.5) * 1e6, percentile(lats, 0.99) * 1e6, n, elapsed, system,
                                   cpu * per_entry, followers))
    return results


def format_table(results: List[BenchResult]) -> str:
    # The B6 log-length columns only when some row has them.
    log = any(r.log_entries is not None for r in results)
    head = f"{'system':17s} {'transport':9s} {'nodes':>5s} {'clients':>7s} {'batch':>5s} {'payload':>7s} {'put/s':>12s} {'1e6/rate':>8s} {'p50 us':>9s} {'p99 us':>9s} {'cpu us/e':>8s} {'foll us/e':>9s}"
    if log:
        head += f" {'log entries':>11s} {'rss B/e':>8s}"
    rows = [head, "-" * len(head)]
    for r in results:
        row = (f"{r.system:17s} {r.transport:9s} {r.nodes:5d} {r.clients:7d} {r.batch:5d} {r.payload:7d} {r.put_per_s:12,.0f} "
               f"{r.inverse_rate_us:8.2f} {r.p50_us:9.1f} {r.p99_us:9.1f} {_cell(r.cpu_us, 8)} "
               f"{_cell(r.follower_cpu_us, 9)}")
        if log:
            entries = "-" if r.log_entries is None else f"{r.log_entries:,d}"
            row += f" {entries:>11s} {_cell(r.rss_per_entry, 8, 1)}"
        rows.append(row)
    notes = ["cpu us/e: CPU microseconds per entry of the bench process (with --transport tcp: the leader);",
             "foll us/e: of each follower process. put/s and latencies depend on the machine's load, these less."]
    if log:
        notes.append("log entries: in the leader's log when the row began; rss B/e: resident bytes the fill added "
                     "per entry.")
    return "\n".join(rows + notes)


def _cell(value: float, width: int, decimals: int = 2) -> str:
    return f"{'-':>{width}s}" if math.isnan(value) else f"{value:{width}.{decimals}f}"


def results_json(results: List[BenchResult]) -> dict:
    keys = ("system", "transport", "nodes", "clients", "batch", "payload", "put_per_s", "inverse_rate_us", "p50_us",
            "p99_us", "cpu_us", "follower_cpu_us", "log_entries", "rss_per_entry", "gc_slow_passes", "gc_longest_ms")

    def value(v):
        return None if isinstance(v, float) and math.isnan(v) else v       # JSON has no NaN
    return {"results": [{k: value(asdict(r)[k]) for k in keys} for r in results]}


def live_printer(stream=sys.stderr) -> Callable[[str], None]:
    tty = stream.isatty()

    def show(line: str) -> None:
        if tty:
            stream.write("\r" + line.ljust(60))
        else:
            stream.write(line + "\n")
        stream.flush()
    return show




def format_ratios(results: List[BenchResult]) -> str:
    """ours/floor and ours/best PySyncObj per (nodes, clients, payload), for the lines under the
    table (naming the nodes when rows of several node counts are there)."""
    by_key: dict = {}
    for r in results:
        by_key.setdefault((r.nodes, r.clients, r.payload), {})[r.system] = r
    several_counts = len({nodes for nodes, _, _ in by_key}) > 1
    lines = []
    for (nodes, clients, payload), row in sorted(by_key.items()):
        ours = row.get("ours")
        if ours is None:
            continue
        parts = []
        for ref in ("floor", "ceiling"):
            r = row.get(ref)
            if r is not None and r.put_per_s:
                parts.append(f"ours/{ref} {ours.put_per_s / r.put_per_s:6.2f}x")
        peers = [r for s, r in row.items() if s.startswith("pysyncobj") and r.put_per_s]
        if peers:
            best = max(peers, key=lambda r: r.put_per_s)
            parts.append(f"ours/{best.system} (its best) {ours.put_per_s / best.put_per_s:8.1f}x")
        if parts:
            prefix = f"nodes={nodes} " if several_counts else ""
            lines.append(f"{prefix}clients={clients:<5d} payload={payload:<5d} " + "  ".join(parts))
    return "\n".join(lines)
