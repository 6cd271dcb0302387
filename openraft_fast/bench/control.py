"""`bench --service control`: the control plane of the KV service on three `serve` processes
(WAL, fsync before acknowledging), driven from this process by KvClient:

- watch fan-out: `watchers` streams on one prefix (spread over the nodes), a writer putting keys
  under it; events delivered per second over all watchers, until every watcher has every event;
- lease keepalives per second (64 in flight on one lease: no log entry each, a lease read);
- transactions per second (64 in flight; a compare and two puts each, one entry);
- lock acquire/release cycles per second (8 contenders on one lock).

The client is Python in this process, so the rates include its own cost; they are what an
asyncio application gets.
"""
from __future__ import annotations

import asyncio
import tempfile
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional

import aiohttp

from openraft_fast.errors import RaftError


class ControlBenchError(RaftError):
    """The control-plane bench could not run."""


async def _for(seconds: float, concurrency: int, op: Callable[[int], Awaitable[Any]]) -> float:
    """Run `op(worker)` in `concurrency` loops for `seconds`; returns completed ops per second."""
    done = 0
    stop = time.monotonic() + seconds

    async def loop(w: int) -> None:
        nonlocal done
        while time.monotonic() < stop:
            await op(w)
            done += 1

    t0 = time.monotonic()
    await asyncio.gather(*(loop(w) for w in range(concurrency)))
    return done / (time.monotonic() - t0)


async def _watch_fanout(urls: List[str], kv, watchers: int, events: int) -> float:
    """Events delivered per second over `watchers` streams, `events` puts under one prefix."""
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    counts = [0] * watchers
    start_rev = await kv.put("fan/start", "x")
    ready = 0
    all_ready = asyncio.Event()
    finished = asyncio.Event()
    remaining = watchers

    async def watcher(i: int) -> None:
        nonlocal ready, remaining
        url = f"{urls[i % len(urls)]}/v1/watch?prefix=fan/e&from_revision={start_rev}"
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=None)) as resp:
            first = True
            async for chunk in resp.content.iter_any():
                if first:
                    first = False
                    ready += 1
                    if ready == watchers:
                        all_ready.set()
                counts[i] += chunk.count(b'"put"')
                if counts[i] >= events:
                    remaining -= 1
                    if not remaining:
                        finished.set()
                    return

    tasks = [asyncio.ensure_future(watcher(i)) for i in range(watchers)]
    try:
        await asyncio.wait_for(all_ready.wait(), 60)
        t0 = time.monotonic()
        sem = asyncio.Semaphore(64)

        async def put(j: int) -> None:
            async with sem:
                await kv.put(f"fan/e{j}", "v")

        await asyncio.gather(*(put(j) for j in range(events)))
        await asyncio.wait_for(finished.wait(), 120)
        return watchers * events / (time.monotonic() - t0)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await session.close()


async def bench_control(seconds: float, watchers: int = 1000, data: Optional[str] = None,
                        progress: Optional[Callable[[str], None]] = None) -> List[Dict[str, object]]:
    from openraft_fast.kv.client import KvClient
    from openraft_fast.testing.serve_process import cli, node_args, start_serve_cluster
    rows: List[Dict[str, object]] = []
    with tempfile.TemporaryDirectory(dir=data) as tmp:
        procs = await start_serve_cluster(tmp, extra=["--log-level", "warning"])
        try:
            rc, _, err = await cli("cluster", "init", "--endpoint", procs[1].url, *node_args(procs))
            if rc != 0:
                raise ControlBenchError(f"cluster init failed: {err}")
            urls = [p.url for p in procs.values()]
            async with KvClient(urls, timeout=30.0) as kv:
                await kv.put("warm", "up")
                if progress:
                    progress(f"watch fan-out: {watchers} watchers")
                events = max(20, int(200_000 / max(watchers, 1)))
                rate = await _watch_fanout(urls, kv, watchers, events)
                rows.append({"bench": "watch fan-out", "rate": rate, "unit": "events/s",
                             "note": f"{watchers} watchers on one prefix, {events} puts"})
                if progress:
                    progress("lease keepalives")
                lease = await kv.grant_lease(60)
                rate = await _for(seconds, 64, lambda w: kv.keepalive(lease))
                rows.append({"bench": "lease keepalive", "rate": rate, "unit": "keepalives/s",
                             "note": "64 in flight, one lease"})
                if progress:
                    progress("transactions")

                def transfer(w: int) -> Awaitable[Any]:
                    a, b = f"acct/{w}", f"acct/{w + 64}"
                    return kv.txn(compare=[{"key": a, "target": "exists", "op": "==", "value": True}],
                                  success=[{"put": {"key": a, "value": "1"}}, {"put": {"key": b, "value": "2"}}],
                                  failure=[{"put": {"key": a, "value": "0"}}])

                rate = await _for(seconds, 64, transfer)
                rows.append({"bench": "transaction", "rate": rate, "unit": "txn/s",
                             "note": "64 in flight; a compare and two puts each"})
                if progress:
                    progress("lock cycles")

                async def cycle(w: int) -> None:
                    async with kv.lock("bench-lock", ttl=10):
                        pass

                rate = await _for(seconds, 8, cycle)
                rows.append({"bench": "lock cycle", "rate": rate, "unit": "cycles/s",
                             "note": "8 contenders, one lock: grant, queue, acquire, release"})
        finally:
            for p in procs.values():
                if p.proc is not None:
                    await p.terminate(10)
    return rows


def format_control(rows: List[Dict[str, object]]) -> str:
    lines = [f"{'bench':<18} {'rate':>12} {'unit':<14} note", "-" * 80]
    for r in rows:
        lines.append(f"{r['bench']:<18} {float(r['rate']):>12,.0f} {r['unit']:<14} {r['note']}")  # type: ignore[arg-type]
    return "\n".join(lines)


__all__ = ["bench_control", "format_control", "ControlBenchError"]
