"""What a replicated object costs: calls per second of examples/lock_counter.py's LockCounter on
three ReplicatedNodes in one process (real TCP on 127.0.0.1, WAL with fsync, default config),
called on the leader and on a follower (forwarded), one caller and many, next to the raw
client_write of the same payloads (the floor, measured in the same run).

    python -m benches.replicated [--seconds 3] [--callers 1,64] [--json FILE]

Figures for a report, not assertions; run alone (2 cores are shared by the three nodes).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from openraft_fast import ServerState, run
from openraft_fast.replicated import ReplicatedNode
from openraft_fast.replicated.object import pack_call
from openraft_fast.testing.serve_process import free_ports

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from lock_counter import LockCounter  # noqa: E402


async def _rate(call, callers: int, seconds: float) -> float:
    done = 0
    stop = time.perf_counter() + seconds

    async def caller():
        nonlocal done
        while time.perf_counter() < stop:
            await call()
            done += 1

    t = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return done / (time.perf_counter() - t)


async def bench(seconds: float, callers_list) -> dict:
    with tempfile.TemporaryDirectory() as data:
        peers = {i: f"127.0.0.1:{p}" for i, p in zip((1, 2, 3), free_ports(3))}
        objs = {i: LockCounter() for i in peers}
        nodes = {i: await ReplicatedNode.start(objs[i], i, peers, f"{data}/{i}") for i in peers}
        try:
            while True:
                leaders = [i for i, n in nodes.items() if n.raft.metrics.state == ServerState.LEADER]
                if leaders:
                    break
                await asyncio.sleep(0.01)
            lead = leaders[0]
            follower = next(i for i in nodes if i != lead)
            await objs[follower].incr()
            payload = pack_call("incr", (1,), None)
            rows = {}
            for callers in callers_list:
                rows[f"client_write on the leader, {callers} callers"] = await _rate(
                    lambda: nodes[lead].raft.client_write(payload), callers, seconds)
                rows[f"obj.incr() on the leader, {callers} callers"] = await _rate(
                    lambda: objs[lead].incr(), callers, seconds)
                rows[f"obj.incr() on a follower (forwarded), {callers} callers"] = await _rate(
                    lambda: objs[follower].incr(), callers, seconds)
                rows[f"obj.value() on a follower (read index), {callers} callers"] = await _rate(
                    lambda: objs[follower].value(), callers, seconds)
            return rows
        finally:
            for n in nodes.values():
                await n.close()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benches.replicated", description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--callers", default="1,64")
    p.add_argument("--json", metavar="FILE")
    a = p.parse_args(argv)
    rows = run(bench(a.seconds, [int(x) for x in a.callers.split(",")]))
    width = max(len(k) for k in rows)
    for k, v in rows.items():
        print(f"{k:<{width}}  {v:>9,.0f} /s")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
