"""The client loops every cluster bench runs: C clients each looping `await client_write(payload)`
(or `client_write_many` of `batch` entries) against a writer for S seconds."""
from __future__ import annotations

import asyncio
import time
from array import array
from typing import Callable, List, Optional, Sequence

from openraft_fast.bench.results import cpu_seconds


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


