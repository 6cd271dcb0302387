"""B1/B2/B4: an in-process cluster on the LocalRouter; with store="wal" (B4) every node on its own
WalLogStore next to the disk's own sync rate (bench.disk)."""
from __future__ import annotations

import asyncio
import shutil
import tempfile
from typing import Callable, List, Optional

from openraft_fast import Config, Node, Raft, ServerState
from openraft_fast._aio import freeze_startup_heap
from openraft_fast.bench.load import run_clients
from openraft_fast.bench.results import summarize
from openraft_fast.network import LocalRouter
from openraft_fast.storage import MemLogStore, NoopStateMachine, WalLogStore


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



async def bench_local(nodes: int, client_counts: List[int], batch: int, payload_size: int, seconds: float,
                      progress: Optional[Callable[[str], None]] = None, config: Optional[Config] = None,
                      store: str = "mem", data: Optional[str] = None, floors: bool = False,
                      freeze_gc: bool = True):
    """With store="wal", B4: each node on its own WalLogStore under `data`, and first rows
    with the disk's own sync rate there (bench.disk): one loop, and one loop per node at once.
    With `floors`, the in-process floor and the per-op future ceiling (bench.floors) run on the
    same loop right after each cluster row, as rows of system "floor" and "ceiling"."""
    stores = BenchStores(store, data)
    results = []
    if stores.root is not None:
        from openraft_fast.bench.disk import disk_sync_rate
        results.append(await asyncio.to_thread(disk_sync_rate, stores.root, seconds))
        if nodes > 1:       # the nodes share this disk: as many sync loops at once
            results.append(await asyncio.to_thread(disk_sync_rate, stores.root, seconds, 4096, nodes))
    router, rafts, leader = await start_local_cluster(nodes, config, stores, freeze_gc)
    try:
        runs: dict = {"ours": []}
        for c in client_counts:
            runs["ours"] += await run_clients(leader, [c], batch, payload_size, seconds, progress)
            if floors:
                from openraft_fast.bench.floors import FLOORS
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

