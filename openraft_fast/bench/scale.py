"""B6, scale (DESIGN section 6): how the cost of a write grows with the cluster and the log.

- Voters: `bench --nodes 3,5,7` runs the usual rows once per node count; `format_node_costs`
  puts each count's cost per write (1e6/rate) beside the smallest count's (target: 7 voters at
  most 1.5x the cost of 3).
- Log length: `bench_log_entries` fills the leader's log to N entries with `client_write_many`
  batches, measures put/s, then measures a fresh cluster with an empty log, and reports the
  resident memory the fill added per entry and the garbage collector's pauses (`GcPauses`). Its
  nodes never snapshot (`log_keeping_config`): a snapshot would let the engine purge the log,
  and the point is N entries held.

Payload sizes need nothing here: `--payload 16,1024,65536` runs each size in turn.
"""
from __future__ import annotations

import asyncio
import gc
import math
import os
import sys
import time
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

from openraft_fast import Config
from openraft_fast.bench.load import run_clients
from openraft_fast.bench.local import start_local_cluster
from openraft_fast.bench.results import BenchResult, summarize
from openraft_fast.errors import RaftError

# The fill: this many writers, each submitting batches of this many entries.
FILL_CLIENTS = 8
FILL_BATCH = 4096
FILL_BATCH_BYTES = 8 << 20     # fewer entries per batch for large payloads
FILL_TIMEOUT = 900.0        # seconds; a fill still short of N by then stops, and says so

# Garbage collections at least this long (ms) are counted in the rows.
GC_SLOW_MS = 10.0

# Memory the fill may plan to use, as a share of what the machine has available.
MEMORY_SHARE = 0.7


def log_keeping_config() -> Config:
    """The log-length bench's node config: no snapshot, hence no purge, so the log keeps every
    entry; election timeouts of 1-2 s, since with all nodes on one loop a garbage collection
    over lists of millions of entries stalls leader and followers alike (GcPauses)."""
    return Config(heartbeat_interval=0.1, election_timeout_min=1.0, election_timeout_max=2.0,
                  snapshot_policy="never")


# ---- voters ----------------------------------------------------------------------------------

def format_node_costs(results: List[BenchResult]) -> str:
    """Per (transport, clients, batch, payload) of our rows: the cost per write of each node
    count relative to the smallest one (3 when run), from 1e6/rate and from CPU us per entry."""
    groups: Dict[tuple, Dict[int, BenchResult]] = {}
    for r in results:
        if r.system == "ours" and r.log_entries is None:
            groups.setdefault((r.transport, r.clients, r.batch, r.payload), {})[r.nodes] = r
    lines = []
    for (transport, clients, batch, payload), by_nodes in groups.items():
        if len(by_nodes) < 2:
            continue
        base_nodes = min(by_nodes)
        base = by_nodes.pop(base_nodes)
        parts = []
        for nodes, r in sorted(by_nodes.items()):
            cost = _ratio(r.inverse_rate_us, base.inverse_rate_us)
            cpu = _ratio(r.cpu_us, base.cpu_us)
            parts.append(f"{nodes} voters cost {cost:.2f}x of {base_nodes} (cpu {cpu:.2f}x)")
        lines.append(f"{transport} clients={clients:<5d} batch={batch:<5d} payload={payload:<6d} " + ", ".join(parts))
    if lines:
        lines.append("cost = 1e6/rate relative to the fewest voters; cpu: CPU us per entry likewise "
                     "(target: 7 voters <= 1.5x of 3)")
    return "\n".join(lines)


def _ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


# ---- log length ------------------------------------------------------------------------------

def rss_bytes() -> float:
    """This process's resident set size now (nan where /proc cannot tell)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return math.nan


def available_memory() -> float:
    """MemAvailable of /proc/meminfo in bytes (nan where unknown)."""
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return math.nan


def estimated_fill_bytes(entries: int, payload_size: int, nodes: int) -> int:
    """A generous guess of the memory a fill takes (measured: 166 B per entry for 16 B payloads
    and 3 nodes): each entry's payload object, shared by the nodes of one process, plus per node
    two log buffers (the engine's and the store's) of a pointer, a kind byte and a byte count."""
    payload_object = 0 if payload_size == 0 else (33 + payload_size + 15) // 16 * 16
    return entries * (payload_object + nodes * 2 * 24 + 32)


def check_fill_fits(entries: int, payload_sizes: List[int], nodes: List[int]) -> Optional[str]:
    """Why a fill of `entries` entries would not fit in memory, or None."""
    need = max(estimated_fill_bytes(entries, p, n) for p in payload_sizes for n in nodes)
    have = available_memory()
    if not math.isnan(have) and need > MEMORY_SHARE * have:
        return (f"--log-entries {entries:,}: the fill needs about {need / 2**30:.1f} GiB, more than "
                f"{MEMORY_SHARE:.0%} of the {have / 2**30:.1f} GiB available; use fewer entries or smaller payloads")
    return None


class LogFill(NamedTuple):
    entries: int            # entries written by the fill
    seconds: float
    rss_added: float        # bytes of RSS the fill added (nan: unknown)
    complete: bool          # False: stopped by the time bound short of the target


async def fill_log(leader, entries: int, payload_size: int, progress: Optional[Callable[[str], None]] = None,
                   clients: int = FILL_CLIENTS, timeout: float = FILL_TIMEOUT) -> LogFill:
    """Write `entries` entries through `leader.client_write_many`, each its own payload object
    (so the memory held per entry includes its payload), in at most `timeout` seconds."""
    batch = max(1, min(FILL_BATCH, FILL_BATCH_BYTES // max(1, payload_size)))
    # Slicing one random block gives each entry its own bytes object at ~0.1 us apiece.
    block = os.urandom(batch * payload_size)
    offsets = range(0, batch * payload_size, payload_size) if payload_size else range(batch)
    left = [entries]
    perf = time.perf_counter
    start = perf()
    deadline = start + timeout
    rss_before = rss_bytes()

    async def writer():
        while left[0] > 0 and perf() < deadline:
            n = min(batch, left[0])
            left[0] -= n
            if payload_size:
                payloads = [block[o:o + payload_size] for o in offsets[:n]]
            else:
                payloads = [b""] * n
            await leader.client_write_many(payloads)

    async def report():
        while True:
            await asyncio.sleep(0.5)
            done, t = entries - left[0], perf() - start
            if progress is not None:
                progress(f"fill {done:>12,d}/{entries:,d} entries {done / t:>10,.0f}/s ({t:5.1f}s)")

    reporter = asyncio.ensure_future(report())
    try:
        await asyncio.gather(*(writer() for _ in range(clients)))
    finally:
        reporter.cancel()
    elapsed = perf() - start
    written = entries - max(0, left[0])
    return LogFill(written, elapsed, rss_bytes() - rss_before, left[0] <= 0)


class GcPauses:
    """How long each garbage collection lasts while inside the `with`. A pass over the
    generation that holds the log buffers' payload lists walks every entry (3 nodes, 16 B
    payloads: about 0.45 s at 10 M entries, 2-4 s at 50 M), and with all nodes on one loop it
    stalls leader and followers alike. Until those lists reach the oldest generation that can
    be a young (generation 1) pass, not only a full one."""

    def __init__(self) -> None:
        self.pauses: List[float] = []
        self._began = 0.0

    def __enter__(self) -> "GcPauses":
        gc.callbacks.append(self._on_gc)
        return self

    def __exit__(self, *exc) -> None:
        gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.pauses.append(time.perf_counter() - self._began)


def entries_held(raft) -> int:
    m = raft.metrics
    return m.last_log_index - (m.purged.index if m.purged is not None else 0)


async def bench_log_entries(nodes: int, client_counts: List[int], batch: int, payload_size: int, seconds: float,
                            log_entries: int, progress: Optional[Callable[[str], None]] = None,
                            config: Optional[Config] = None, freeze_gc: bool = True) -> Tuple[List[BenchResult], LogFill]:
    """A row per client count on a cluster whose leader's log was first filled to `log_entries`
    entries, then the same rows on a fresh cluster with an (almost) empty log. The full log goes
    first so that no earlier cluster's freed memory is reused by the fill and hides from its RSS."""
    config = config or log_keeping_config()
    full, fill = await _log_rows(nodes, config, log_entries, client_counts, batch, payload_size, seconds, progress,
                                 freeze_gc)
    empty, _ = await _log_rows(nodes, config, 0, client_counts, batch, payload_size, seconds, progress, freeze_gc)
    return full + empty, fill


async def _log_rows(nodes: int, config: Config, fill_to: int, client_counts: List[int], batch: int,
                    payload_size: int, seconds: float,
                    progress: Optional[Callable[[str], None]], freeze_gc: bool) -> Tuple[List[BenchResult], LogFill]:
    """One cluster: its leader's log filled to `fill_to` entries (0: not filled), then a row per
    client count, each with the entries held when it began and the RSS the fill added per entry."""
    router, rafts, leader = await start_local_cluster(nodes, config, freeze_gc=freeze_gc)
    held, runs, gc_pauses = [], [], []
    try:
        # Watched throughout, not only within the rows: any pass stalls the nodes.
        with GcPauses() as gc_watch:
            try:
                fill = LogFill(0, 0.0, math.nan, True)
                if fill_to:
                    fill = await fill_log(leader, max(0, fill_to - entries_held(leader)), payload_size, progress)
                for c in client_counts:
                    held.append(entries_held(leader))
                    seen = len(gc_watch.pauses)
                    runs += await run_clients(leader, [c], batch, payload_size, seconds, progress,
                                              f"log={held[-1]:<11,d} ")
                    gc_pauses.append(gc_watch.pauses[seen:])
            except RaftError:
                _explain_stall(gc_watch.pauses, config)
                raise
        purged = leader.metrics.purged
    finally:
        for r in rafts.values():
            await r.shutdown()
    if purged is not None:      # log_keeping_config forbids it; a config passed in may not
        raise RuntimeError(f"the log was purged up to {purged} during the bench: it did not keep every entry")
    rows = summarize("local", "ours", nodes, batch, payload_size, runs)
    for row, count, pauses in zip(rows, held, gc_pauses):
        row.log_entries = count
        row.gc_slow_passes = sum(p * 1e3 >= GC_SLOW_MS for p in pauses)
        row.gc_longest_ms = max(pauses, default=0.0) * 1e3
        if fill.entries:
            row.rss_per_entry = fill.rss_added / fill.entries
    return rows, fill


def _explain_stall(pauses: List[float], config: Config) -> None:
    """A write failed mid-run (the leader lost its leadership): say so if a garbage collection
    outlasted the election timeout, the likely cause on a long log."""
    longest = max(pauses, default=0.0)
    if longest >= config.election_timeout_min:
        print(f"\nbench --log-entries: a garbage collection paused every node for {longest * 1e3:,.0f} ms, "
              f"longer than the election timeout ({config.election_timeout_min:g}-{config.election_timeout_max:g} s): "
              f"leadership was lost. Use fewer --log-entries.", file=sys.stderr)


def _gc_cell(r: BenchResult) -> str:
    if r.gc_slow_passes is None:
        return "-"
    return f"{r.gc_slow_passes} (longest {r.gc_longest_ms:,.0f} ms)" if r.gc_slow_passes else "0"


def format_log_costs(results: List[BenchResult], fills: List[LogFill]) -> str:
    """Lines under the table: per (nodes, clients, payload), put/s on the full log relative to
    the empty one, and the RSS per entry next to payload + 16 B; then how each fill went."""
    groups: Dict[tuple, List[BenchResult]] = {}
    for r in results:
        if r.log_entries is not None:
            groups.setdefault((r.nodes, r.clients, r.batch, r.payload), []).append(r)
    lines = []
    for (nodes, clients, batch, payload), rows in groups.items():
        empty = min(rows, key=lambda r: r.log_entries or 0)
        full = max(rows, key=lambda r: r.log_entries or 0)
        if full is empty:
            continue
        rel = _ratio(full.put_per_s, empty.put_per_s)
        lines.append(f"nodes={nodes} clients={clients:<5d} payload={payload:<6d} put/s at {full.log_entries:,d} "
                     f"entries / at {empty.log_entries:,d}: {rel:.2f}x (target >= 0.90); RSS per entry "
                     f"{full.rss_per_entry:,.0f} B vs payload + 16 = {payload + 16} B; GC passes >= {GC_SLOW_MS:g} ms "
                     f"{_gc_cell(full)} / {_gc_cell(empty)}")
    for f in fills:
        state = "" if f.complete else f" (STOPPED by the {FILL_TIMEOUT:.0f} s bound: short of the target)"
        lines.append(f"fill: {f.entries:,d} entries in {f.seconds:.1f} s, {f.entries / max(f.seconds, 1e-9):,.0f}/s"
                     f"{state}")
    if lines:
        lines.append("The log is kept whole: snapshot_policy='never', so no snapshot and no purge (checked: "
                     "purged is None after the run). RSS per entry is the whole process's: every node's log "
                     "buffers, and each payload object once (in-process nodes share it).")
    return "\n".join(lines)
