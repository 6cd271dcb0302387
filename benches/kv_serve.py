"""Puts through the HTTP API of a 3-process `openraft-fast serve` cluster (WAL, fsync before
acknowledging) from KvClient: 1 client and 64 concurrent clients, 16 B values; puts/s and
latency percentiles. `python -m benches.kv_serve [SECONDS]`."""
import asyncio
import sys
import tempfile
import time

from openraft_fast.kv import KvClient
from openraft_fast.testing.serve_process import ServeProcess, cli, free_ports


async def measure(seconds: float = 3.0, client_counts=(1, 64)):
    with tempfile.TemporaryDirectory() as tmp:
        rp, hp = free_ports(3), free_ports(3)
        procs = {i: ServeProcess(i, rp[i - 1], hp[i - 1], f"{tmp}/n{i}", ["--log-level", "warning"]) for i in (1, 2, 3)}
        try:
            for p in procs.values():
                await p.start()
            for p in procs.values():
                await p.wait_http()
            nodes = sum((["--node", f"{i}={p.raft},{p.http}"] for i, p in procs.items()), [])
            rc, out, err = await cli("cluster", "init", "--endpoint", procs[1].url, *nodes)
            if rc != 0:
                raise RuntimeError(err)
            urls = [p.url for p in procs.values()]
            async with KvClient(urls) as kv:
                await kv.put("warm", "up")
            rows = []
            for clients in client_counts:
                done, lat = 0, []
                deadline = time.perf_counter() + seconds

                async def one(n):
                    nonlocal done
                    async with KvClient(urls) as c:
                        while time.perf_counter() < deadline:
                            t = time.perf_counter()
                            await c.put(f"c{n}", "v" * 16)
                            lat.append(time.perf_counter() - t)
                            done += 1
                t0 = time.perf_counter()
                await asyncio.gather(*(one(n) for n in range(clients)))
                lat.sort()
                rows.append((clients, done / (time.perf_counter() - t0), lat[len(lat) // 2], lat[int(len(lat) * 0.99)]))
            return rows
        finally:
            for p in procs.values():
                await p.terminate(10)


if __name__ == "__main__":
    for clients, rate, p50, p99 in asyncio.run(measure(float(sys.argv[1]) if len(sys.argv) > 1 else 3.0)):
        print(f"{clients:>3} clients: {rate:>8,.0f} puts/s  p50 {p50 * 1e3:.2f} ms  p99 {p99 * 1e3:.2f} ms")
