"""Cluster benchmarks B1/B2/B4 (DESIGN section 6): an in-process cluster, C clients looping
`await client_write(payload)` (or `client_write_many` of --batch entries) for S seconds; B4
with every node on its own WalLogStore (store="wal") next to the disk's own sync rate."""
from __future__ import annotations

import asyncio
import math
import shutil
import sys
import tempfile
import time
from array import array
from dataclasses import asdict, dataclass
from typing import Callable, List, Optional

from openraft_fast import Config, Node, Raft, ServerState
from openraft_fast.network import LocalRouter
from openraft_fast.storage import MemLogStore, NoopStateMachine, WalLogStore


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


class BenchStores:
    """The nodes' stores: memory ("mem"), or a WalLogStore each ("wal") in a fresh directory
    under `data` (the system's temp dir by default), removed by close()."""

    def __init__(self, store: str = "mem", data: Optional[str] = None) -> None:
        if store not in ("mem", "wal"):
            raise ValueError(f"store must be 'mem' or 'wal', got {store!r}")
        self.store = store
        self.root = tempfile.mkdtemp(prefix="orf-bench-", dir=data) if store == "wal" else None
        self.logs: list = []

    def make(self, i: int):
        log = MemLogStore() if self.root is None else WalLogStore(f"{self.root}/node-{i}")
        self.logs.append(log)
        return log, NoopStateMachine()

    async def close(self) -> None:
        for log in self.logs:
            if isinstance(log, WalLogStore):
                await log.close()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)


async def start_local_cluster(nodes: int, config: Optional[Config] = None, stores: Optional[BenchStores] = None):
    """`nodes` voters on a LocalRouter with memory stores (or `stores`); returns (router,
    {id: Raft}, leader)."""
    config = config or Config()
    stores = stores or BenchStores()
    router = LocalRouter()
    rafts = {}
    for i in range(1, nodes + 1):
        rafts[i] = await Raft.start(i, config, router.factory(i), *stores.make(i))
        router.add(rafts[i])
    await rafts[1].initialize({i: Node(f"local:{i}") for i in rafts})
    await rafts[1].wait(5.0).state(ServerState.LEADER)
    return router, rafts, rafts[1]


def percentile(sorted_values, q: float) -> float:
    """The nearest-rank q-quantile (0 < q <= 1) of ascending values: the smallest value with at
    least q of all values at or below it (0.0 for no values). The one definition every bench
    and report uses."""
    n = len(sorted_values)
    if not n:
        return 0.0
    k = math.ceil(q * n) - 1
    return sorted_values[min(n - 1, max(0, k))]


async def run_load(leader: Raft, clients: int, batch: int, payload: bytes, seconds: float,
                   progress: Optional[Callable[[int, float], None]] = None, warmup: float = 0.2) -> tuple:
    """Run the client loops; returns (entries written, elapsed seconds, latencies in seconds)."""
    perf = time.perf_counter
    # Clients run until `stop`, which the phase timer sets once measuring has begun.
    state = {"measuring": False, "stop": float("inf")}
    # An array, not a list: the garbage collector does not walk it (a list of a million
    # floats is traversed by every full collection, which the benchmark would then measure).
    lats = array("d")
    many = [payload] * batch if batch > 1 else None

    async def client():
        write = leader.client_write
        write_many = leader.client_write_many
        append = lats.append
        while True:
            t0 = perf()
            if t0 >= state["stop"]:
                return
            if many is None:
                await write(payload)
            else:
                await write_many(many)
            if state["measuring"]:
                append(perf() - t0)

    async def phases():
        await asyncio.sleep(warmup)
        state["measuring"] = True
        start = perf()
        state["stop"] = start + seconds
        while perf() < state["stop"]:
            await asyncio.sleep(min(0.5, max(0.0, state["stop"] - perf())))
            if progress is not None:
                progress(len(lats) * batch, perf() - start)
        return start

    tasks = [asyncio.ensure_future(client()) for _ in range(clients)]
    start = await phases()
    await asyncio.gather(*tasks)
    elapsed = perf() - start
    return len(lats) * batch, elapsed, lats


async def bench_local(nodes: int, client_counts: List[int], batch: int, payload_size: int, seconds: float,
                      progress: Optional[Callable[[str], None]] = None, config: Optional[Config] = None,
                      store: str = "mem", data: Optional[str] = None):
    """With store="wal", B4: each node on its own WalLogStore under `data`, and first rows
    with the disk's own sync rate there (bench_disk): one loop, and one loop per node at once."""
    stores = BenchStores(store, data)
    results = []
    if stores.root is not None:
        from openraft_fast.bench_disk import disk_sync_rate
        results.append(await asyncio.to_thread(disk_sync_rate, stores.root, seconds))
        if nodes > 1:       # the nodes share this disk: as many sync loops at once
            results.append(await asyncio.to_thread(disk_sync_rate, stores.root, seconds, 4096, nodes))
    router, rafts, leader = await start_local_cluster(nodes, config, stores)
    payload = b"x" * payload_size
    runs = []
    try:
        for c in client_counts:
            def tick(n, t, c=c):
                if progress is not None and t > 0:
                    progress(f"clients={c:<5d} {n / t:>12,.0f} put/s  ({t:4.1f}s)")
            runs.append((c,) + await run_load(leader, c, batch, payload, seconds, tick))
    finally:
        for r in rafts.values():
            await r.shutdown()
        await stores.close()
    # Percentiles only now: sorting a million samples blocks the loop long enough for the
    # leader's lease to lapse (check-quorum would then refuse the next phase's writes).
    label = "local" if store == "mem" else f"local/{store}"
    for c, n, elapsed, samples in runs:
        lats = sorted(samples)
        rate = n / elapsed if elapsed else 0.0
        results.append(BenchResult(label, nodes, c, batch, payload_size, rate, 1e6 / rate if rate else 0.0,
                                   percentile(lats, 0.5) * 1e6, percentile(lats, 0.99) * 1e6, n, elapsed))
    return results


def format_table(results: List[BenchResult]) -> str:
    head = f"{'transport':9s} {'nodes':>5s} {'clients':>7s} {'batch':>5s} {'payload':>7s} {'put/s':>12s} {'1e6/rate':>8s} {'p50 us':>9s} {'p99 us':>9s}"
    rows = [head, "-" * len(head)]
    for r in results:
        rows.append(f"{r.transport:9s} {r.nodes:5d} {r.clients:7d} {r.batch:5d} {r.payload:7d} {r.put_per_s:12,.0f} "
                    f"{r.inverse_rate_us:8.2f} {r.p50_us:9.1f} {r.p99_us:9.1f}")
    return "\n".join(rows)


def results_json(results: List[BenchResult]) -> dict:
    keys = ("transport", "nodes", "clients", "batch", "payload", "put_per_s", "inverse_rate_us", "p50_us", "p99_us")
    return {"results": [{k: asdict(r)[k] for k in keys} for r in results]}


def live_printer(stream=sys.stderr) -> Callable[[str], None]:
    tty = stream.isatty()

    def show(line: str) -> None:
        if tty:
            stream.write("\r" + line.ljust(60))
        else:
            stream.write(line + "\n")
        stream.flush()
    return show
