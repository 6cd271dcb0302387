"""Cluster benchmarks (DESIGN section 6): C clients looping `await client_write(payload)` (or
`client_write_many` of --batch entries) for S seconds. B1/B2: an in-process cluster; B4 the same
with every node on its own WalLogStore (store="wal") next to the disk's own sync rate. B3: three
OS processes over TCP, with the TCP floor (`bench_tcp_floor`) and optionally PySyncObj
(`bench_pysyncobj`) run by the same client loops in the same run."""
from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shutil
import sys
import tempfile
import time
from array import array
from dataclasses import asdict, dataclass
from typing import Callable, List, NamedTuple, Optional, Sequence

from openraft_fast import Config, Node, Raft, ServerState
from openraft_fast._aio import freeze_startup_heap
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
    system: str = "ours"        # "ours", or a reference run side by side: "floor", "pysyncobj", ...
    # CPU seconds per entry x 1e6 while measuring: of the bench process (the leader, or the
    # whole cluster in one process) and of each follower process on average (nan: none or
    # unknown). Unlike put/s they hold up on a loaded machine: what others run is not counted.
    cpu_us: float = math.nan
    follower_cpu_us: float = math.nan
    # B6 log-length rows (bench_scale): entries in the leader's log when measuring began, and
    # on the full-log rows the RSS the fill added per entry in bytes (None / nan elsewhere).
    log_entries: Optional[int] = None
    rss_per_entry: float = math.nan
    # ... and the garbage collector's passes of GC_SLOW_MS or more while measuring, with the
    # longest pause (a pass over the log buffers walks every entry, so it grows with the log).
    gc_slow_passes: Optional[int] = None
    gc_longest_ms: float = math.nan


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


async def start_local_cluster(nodes: int, config: Optional[Config] = None, stores: Optional[BenchStores] = None,
                              freeze_gc: bool = True):
    """`nodes` voters on a LocalRouter with memory stores (or `stores`); returns (router,
    {id: Raft}, leader). With `freeze_gc`, the heap as it is once the leader is up is frozen
    (gc.freeze, as `openraft-fast serve` does): later collections never walk it again."""
    config = config or Config()
    stores = stores or BenchStores()
    router = LocalRouter()
    rafts = {}
    for i in range(1, nodes + 1):
        rafts[i] = await Raft.start(i, config, router.factory(i), *stores.make(i))
        router.add(rafts[i])
    await rafts[1].initialize({i: Node(f"local:{i}") for i in rafts})
    await rafts[1].wait(5.0).state(ServerState.LEADER)
    if freeze_gc:
        freeze_startup_heap()
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


async def run_load(leader, clients: int, batch: int, payload: bytes, seconds: float,
                   progress: Optional[Callable[[int, float], None]] = None, warmup: float = 0.2,
                   on_measure: Optional[Callable[[bool], None]] = None) -> tuple:
    """Run the client loops on `leader` (a Raft, or anything with its `client_write` and
    `client_write_many`); returns (entries written, elapsed seconds, latencies in seconds).
    `on_measure(True)` / `on_measure(False)`: the measured window opens / closes."""
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
        if on_measure is not None:
            on_measure(True)
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
    if on_measure is not None:
        on_measure(False)
    return len(lats) * batch, elapsed, lats


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


async def run_clients(writer, client_counts: List[int], batch: int, payload_size: int, seconds: float,
                      progress: Optional[Callable[[str], None]] = None, label: str = "",
                      follower_pids: Sequence[int] = ()) -> list:
    """run_load once per client count on one cluster:
    [(clients, entries, elapsed, latencies, bench-process CPU s, [CPU s of each follower])]."""
    payload = b"x" * payload_size
    runs = []
    for c in client_counts:
        def tick(n, t, c=c):
            if progress is not None and t > 0:
                progress(f"{label}clients={c:<5d} {n / t:>12,.0f} put/s  ({t:4.1f}s)")
        marks = []
        n, elapsed, lats = await run_load(writer, c, batch, payload, seconds, tick,
                                          on_measure=lambda _: marks.append(cpu_seconds(follower_pids)))
        used = [b - a for a, b in zip(*marks)]
        runs.append((c, n, elapsed, lats, used[0], used[1:]))
    return runs


async def bench_local(nodes: int, client_counts: List[int], batch: int, payload_size: int, seconds: float,
                      progress: Optional[Callable[[str], None]] = None, config: Optional[Config] = None,
                      store: str = "mem", data: Optional[str] = None, floors: bool = False,
                      freeze_gc: bool = True):
    """With store="wal", B4: each node on its own WalLogStore under `data`, and first rows
    with the disk's own sync rate there (bench_disk): one loop, and one loop per node at once.
    With `floors`, the in-process floor and the per-op future ceiling (bench_floors) run on the
    same loop right after each cluster row, as rows of system "floor" and "ceiling"."""
    stores = BenchStores(store, data)
    results = []
    if stores.root is not None:
        from openraft_fast.bench_disk import disk_sync_rate
        results.append(await asyncio.to_thread(disk_sync_rate, stores.root, seconds))
        if nodes > 1:       # the nodes share this disk: as many sync loops at once
            results.append(await asyncio.to_thread(disk_sync_rate, stores.root, seconds, 4096, nodes))
    router, rafts, leader = await start_local_cluster(nodes, config, stores, freeze_gc)
    try:
        runs: dict = {"ours": []}
        for c in client_counts:
            runs["ours"] += await run_clients(leader, [c], batch, payload_size, seconds, progress)
            if floors:
                from openraft_fast.bench_floors import FLOORS
                for system, make in FLOORS.items():
                    runs.setdefault(system, []).extend(
                        await run_clients(make(), [c], batch, payload_size, seconds, progress, f"{system} "))
    finally:
        for r in rafts.values():
            await r.shutdown()
        await stores.close()
    label = "local" if store == "mem" else f"local/{store}"
    for system, system_runs in runs.items():
        results += summarize(label, system, nodes, batch, payload_size, system_runs)
    return results


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


# ---- B3: three OS processes over TCP ------------------------------------------------------

TCP_SYSTEMS = ("ours", "floor")          # always run; a --peer adds its configurations


def tcp_bench_config() -> Config:
    """Our nodes' config over TCP: election timeouts long enough that a loop stalled by the
    other processes on a shared machine does not start an election mid-run."""
    return Config(heartbeat_interval=0.1, election_timeout_min=1.0, election_timeout_max=2.0)


class TcpCluster(NamedTuple):
    writer: object                  # node 1, with client_write / client_write_many
    follower_pids: List[int]


@contextlib.asynccontextmanager
async def tcp_cluster(system: str, nodes: int, config: Optional[Config] = None,
                      use_uvloop: Optional[bool] = None):
    """`nodes` processes on 127.0.0.1: this one is node 1 and the leader, the followers are
    child processes (killed on exit). Yields a TcpCluster: node 1's writer for `run_load`."""
    from openraft_fast.bench_procs import Children, free_ports
    if system == "ours":
        from openraft_fast.network.tcp import TcpNetworkFactory, serve_tcp
        config = config or tcp_bench_config()
        argvs = [["openraft_fast.bench_node", "--id", str(i), "--port", "0"] + config_args(config)
                 for i in range(2, nodes + 1)]
        async with Children(argvs, use_uvloop=use_uvloop) as kids:
            raft = await Raft.start(1, config, TcpNetworkFactory(1, config, ssl=None), MemLogStore(),
                                    NoopStateMachine())
            server = None
            try:
                server = await serve_tcp(raft, "127.0.0.1", 0)
                members = {1: Node(f"127.0.0.1:{server.port}")}
                members.update({i: Node(f"127.0.0.1:{p}") for i, p in enumerate(kids.ports, start=2)})
                await raft.initialize(members)
                await raft.wait(10.0).state(ServerState.LEADER)
                yield TcpCluster(raft, kids.pids)
            finally:
                await raft.shutdown()
                if server is not None:
                    await server.close()
    elif system == "floor":
        from openraft_fast.bench_tcp_floor import FloorLeader
        argvs = [["openraft_fast.bench_tcp_floor", "--port", "0"] for _ in range(2, nodes + 1)]
        async with Children(argvs, use_uvloop=use_uvloop) as kids:
            leader = FloorLeader(nodes)
            try:
                await leader.connect([("127.0.0.1", p) for p in kids.ports])
                yield TcpCluster(leader, kids.pids)
            finally:
                await leader.close()
    else:
        from openraft_fast.bench_pysyncobj import CONFIGS, PySyncObjLeader, follower_argv
        nobatch = CONFIGS[system]
        addrs = [f"127.0.0.1:{p}" for p in free_ports(nodes)]
        argvs = [follower_argv(a, [b for b in addrs if b != a], nobatch) for a in addrs[1:]]
        async with Children(argvs, use_uvloop=use_uvloop) as kids:
            peer = PySyncObjLeader(addrs[0], addrs[1:], nobatch)
            try:
                await peer.wait_leader()
                yield TcpCluster(peer, kids.pids)
            finally:
                await peer.close()


def config_args(config: Config) -> List[str]:
    """The command-line flags of `bench_node` that give a follower the leader's timing."""
    return ["--heartbeat", repr(config.heartbeat_interval), "--election-min", repr(config.election_timeout_min),
            "--election-max", repr(config.election_timeout_max)]


async def bench_tcp(nodes: int, client_counts: List[int], batch: int, payload_sizes: List[int], seconds: float,
                    peer: Optional[str] = None, progress: Optional[Callable[[str], None]] = None,
                    config: Optional[Config] = None, use_uvloop: Optional[bool] = None,
                    systems: Optional[List[str]] = None) -> List[BenchResult]:
    """B3: rows per (system, payload, clients). Ours and the floor run on clusters up at the same
    time, measured alternately row by row, so a machine whose speed drifts (shared cores)
    shifts both alike; each PySyncObj configuration then runs on its own cluster (its tick
    thread would otherwise share the bench process with our leader)."""
    if systems is None:
        systems = list(TCP_SYSTEMS)
        if peer == "pysyncobj":
            from openraft_fast.bench_pysyncobj import CONFIGS
            systems += list(CONFIGS)
    groups = [[s for s in systems if s in TCP_SYSTEMS]] + [[s] for s in systems if s not in TCP_SYSTEMS]
    runs: dict = {}                       # (system, payload) -> run_clients' runs
    for group in filter(None, groups):
        async with contextlib.AsyncExitStack() as stack:
            clusters = [(s, await stack.enter_async_context(tcp_cluster(s, nodes, config, use_uvloop))) for s in group]
            for size in payload_sizes:
                for c in client_counts:
                    for system, cluster in clusters:
                        label = f"{system:<17s} payload={size:<5d} "
                        runs.setdefault((system, size), []).extend(
                            await run_clients(cluster.writer, [c], _system_batch(system, batch), size, seconds,
                                              progress, label, cluster.follower_pids))
    results = []
    for system in systems:
        for size in payload_sizes:
            results.extend(summarize("tcp", system, nodes, _system_batch(system, batch), size, runs[(system, size)]))
    return results


def _system_batch(system: str, batch: int) -> int:
    # PySyncObj has no batch call: its rows are single writes whatever --batch says.
    return batch if system in TCP_SYSTEMS else 1


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
