"""`bench --service http|binary`: the KV service as users meet it. Three `openraft-fast serve`
processes (WAL, fsync before acknowledging) and a load generator in its own process putting
16 B values through the leader, at each connection count: over HTTP one request in flight per
connection (wrk), over the binary client protocol that many requests in flight on up to 8
connections (bench.binary_load). Reports put/s, p50 and p99, and the leader's CPU
microseconds per request (from /proc), next to the engine's own rate over TCP with the WAL in
the same run (`bench --transport tcp --store wal`) as the floor the service is measured against.

wrk (a C load generator: `apt install wrk`) keeps the load client's own cost out of the
leader's figures; without it, `--load python` runs bench.http_load, a lean client of ours that
costs the machine more per request.
"""
from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import sys
import tempfile
from typing import Callable, List, Optional

from openraft_fast.bench.results import BenchResult, cpu_seconds
from openraft_fast.errors import RaftError

# The wrk script: PUT /v1/kv/k<n> with {"value": "<payload bytes>"} over 1000 keys, and a
# summary line of JSON at the end (latencies in microseconds).
_WRK_SCRIPT = """
local n = 0
local body = '{"value": "' .. string.rep("v", %d) .. '"}'
local headers = {["Content-Type"] = "application/json"}
request = function()
  n = n + 1
  return wrk.format("PUT", "/v1/kv/k" .. (n %% 1000), headers, body)
end
done = function(s, latency, requests)
  local e = s.errors
  io.write(string.format('SUMMARY {"requests": %%d, "duration_us": %%d, "socket_errors": %%d, "non2xx": %%d, ' ..
    '"p50_us": %%d, "p99_us": %%d}\\n', s.requests, s.duration, e.connect + e.read + e.write + e.timeout,
    e.status, latency:percentile(50), latency:percentile(99)))
end
"""


NO_WRK = ("--load wrk: wrk is not installed (Debian/Ubuntu: apt install wrk); --load python uses a load "
          "client of ours instead, which costs the machine more per request")


class ServiceBenchError(RaftError):
    """The service bench could not run (no wrk, a node that did not start, failed requests)."""


def wrk_path() -> Optional[str]:
    return shutil.which("wrk")


async def _load(kind: str, url: str, connections: int, seconds: float, script: str, payload: int) -> dict:
    """One load run in its own process: wrk with the script, bench.http_load, or for the
    binary protocol bench.binary_load (`connections` requests in flight over up to 8)."""
    if kind == "binary":
        host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)
        argv = [sys.executable, "-m", "openraft_fast.bench.binary_load", "--host", host, "--port", port,
                "--connections", str(min(connections, 8)), "--outstanding", str(connections),
                "--seconds", str(seconds), "--payload", str(payload)]
    elif kind == "wrk":
        threads = 1 if connections < 4 else 2
        argv = [wrk_path() or "wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
                "--timeout", "10s", "-s", script, url]
    else:
        host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)
        argv = [sys.executable, "-m", "openraft_fast.bench.http_load", "--host", host, "--port", port,
                "--connections", str(connections), "--seconds", str(seconds), "--payload", str(payload)]
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), seconds + 30)
    for line in out.decode().splitlines():
        if line.startswith("SUMMARY "):
            return json.loads(line[len("SUMMARY "):])
    raise ServiceBenchError(f"{kind} printed no summary (exit {proc.returncode}): {out.decode()} {err.decode()}")


async def _leader(procs) -> int:
    from openraft_fast.kv import KvClient
    async with KvClient([p.url for p in procs.values()], timeout=10.0) as kv:
        await kv.put("warm", "up")                  # a leader exists and has committed
        for _ in range(50):
            leaders = [s["id"] for s in (await kv.cluster_status()).values()
                       if isinstance(s, dict) and s.get("state") == "leader"]
            if len(leaders) == 1:
                return leaders[0]
            await asyncio.sleep(0.1)
    raise ServiceBenchError("the service cluster agreed on no leader")


async def bench_service(service: str, client_counts: List[int], payload: int, seconds: float,
                        progress: Optional[Callable[[str], None]] = None,
                        data: Optional[str] = None, load: str = "wrk") -> List[BenchResult]:
    """Rows of system "service" (transport `service`: "http" or "binary") per connection
    count (binary: requests in flight); for http, `load` is "wrk" or "python"
    (bench.http_load, for a machine without wrk)."""
    from openraft_fast.testing.serve_process import cli, node_args, start_serve_cluster
    if service == "binary":
        load = "binary"
    elif load == "wrk" and wrk_path() is None:
        raise ServiceBenchError(NO_WRK)
    with tempfile.TemporaryDirectory(dir=data) as tmp:
        script = os.path.join(tmp, "put.lua")
        with open(script, "w", encoding="utf-8") as f:
            f.write(_WRK_SCRIPT % payload)
        procs = await start_serve_cluster(tmp, extra=["--log-level", "warning"], client=service == "binary")
        try:
            rc, _, err = await cli("cluster", "init", "--endpoint", procs[1].url, *node_args(procs))
            if rc != 0:
                raise ServiceBenchError(f"cluster init failed: {err}")
            lead = await _leader(procs)
            target = f"orf://{procs[lead].client}" if service == "binary" else procs[lead].url
            leader_pid = procs[lead].proc.pid           # type: ignore[union-attr]
            follower_pids = [p.proc.pid for i, p in procs.items() if i != lead]     # type: ignore[union-attr]
            await _load(load, target, 16, 1.0, script, payload)                     # warm up
            rows = []
            for c in client_counts:
                if progress is not None:
                    progress(f"service {service} ({load}) payload={payload:<5d} clients={c}")
                before = cpu_seconds([leader_pid] + follower_pids)[1:]
                s = await _load(load, target, c, seconds, script, payload)
                after = cpu_seconds([leader_pid] + follower_pids)[1:]
                ok = s["requests"] - s["non2xx"]
                if s["socket_errors"] or s["non2xx"] > s["requests"] // 100:
                    raise ServiceBenchError(f"{c} connections: {s['non2xx']} non-2xx answers and "
                                            f"{s['socket_errors']} socket errors of {s['requests']} requests")
                secs = s["duration_us"] / 1e6
                rate = ok / secs if secs else 0.0
                used = [b - a for a, b in zip(before, after)]
                foll = [u for u in used[1:] if not math.isnan(u)]
                rows.append(BenchResult(
                    transport=service, nodes=3, clients=c, batch=1, payload=payload, put_per_s=rate,
                    inverse_rate_us=1e6 / rate if rate else math.nan, p50_us=float(s["p50_us"]),
                    p99_us=float(s["p99_us"]), ops=ok, seconds=secs, system="service",
                    cpu_us=used[0] / ok * 1e6 if ok else math.nan,
                    follower_cpu_us=sum(foll) / len(foll) / ok * 1e6 if ok and foll else math.nan))
            return rows
        finally:
            for p in procs.values():
                if p.proc is not None:
                    await p.terminate(10)


def format_service_ratios(results: List[BenchResult]) -> str:
    """service/floor per connection count: the service against the engine's own TCP + WAL rate."""
    floor = {r.clients: r for r in results if r.system == "ours" and r.transport == "tcp"}
    lines = []
    for r in results:
        if r.system != "service":
            continue
        f = floor.get(r.clients) or (max(floor.values(), key=lambda x: x.clients) if floor else None)
        if f is not None and f.put_per_s:
            lines.append(f"clients={r.clients:<5d} service/engine(tcp+wal, {f.clients} clients) "
                         f"{r.put_per_s / f.put_per_s:6.2f}x")
    return "\n".join(lines)
