"""Failover time of a local cluster of `serve` processes (default config, durable WAL, TCP).

    python -m benches.failover [--kills 20] [--nodes 3] [--writers 8] [--json FILE]

Each round: writers keep putting; the leader gets SIGKILL; we time (a) the kill to the first
write acknowledged afterwards (it can only come from the new leader: the old one is dead) and
(b) the kill to the first status poll (every 20 ms) that shows a new leader. Then the killed
node is restarted and the cluster left to converge before the next round. Reported: p50 and max
over the rounds (nearest rank), and the writes lost over all rounds (every acknowledged write is
read back at the end: must be 0). A figure for a report, not an assertion; noisy under load.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time

from openraft_fast.bench.results import percentile
from openraft_fast.cli.demo import Workload, _read_back
from openraft_fast.testing.localcluster import LocalCluster


async def failover(kills: int, nodes: int, writers: int, warm: float, out=sys.stdout) -> dict:
    base = tempfile.mkdtemp(prefix="openraft-fast-failover-")
    cluster = LocalCluster(nodes, base)
    to_write, to_leader = [], []
    work = None
    try:
        await cluster.start()
        work = Workload(cluster, writers)
        work.start()
        for k in range(kills):
            await asyncio.sleep(warm)
            leader = await cluster.leader(timeout=30.0)
            killed_at = time.monotonic()
            cluster.kill(leader)
            new = await cluster.leader(timeout=30.0, exclude=(leader,))
            to_leader.append(time.monotonic() - killed_at)
            deadline = time.monotonic() + 30.0
            while time.monotonic() < deadline and not (work.ack_times and work.ack_times[-1] > killed_at):
                await asyncio.sleep(0.005)
            after = [t for t in work.ack_times[-5000:] if t > killed_at]
            to_write.append(min(after) - killed_at if after else float("inf"))
            out.write(f"kill {k + 1}/{kills}: leader n{leader} -> n{new}: new leader seen after "
                      f"{to_leader[-1] * 1000:.0f} ms, first acknowledged write after {to_write[-1] * 1000:.0f} ms\n")
            out.flush()
            await cluster.restart(leader)
            await cluster.converge(timeout=60.0)
        await work.finish()
        lost = await _read_back(cluster, work.acked)
    finally:
        if work is not None:
            await work.finish()
        await cluster.close()
        shutil.rmtree(base, ignore_errors=True)
    w, l_ = sorted(to_write), sorted(to_leader)
    return {"nodes": nodes, "kills": kills, "writers": writers,
            "kill_to_first_write_ms": {"p50": percentile(w, 0.5) * 1000, "max": w[-1] * 1000},
            "kill_to_new_leader_ms": {"p50": percentile(l_, 0.5) * 1000, "max": l_[-1] * 1000},
            "writes_acknowledged": len(work.acked) if work else 0,
            "writes_outcome_unknown": work.unknown if work else 0, "writes_lost": lost}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benches.failover", description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--writers", type=int, default=8)
    p.add_argument("--warm", type=float, default=1.0, help="seconds of writes before each kill")
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args(argv)
    if args.kills < 1 or args.nodes < 3 or args.writers < 1 or args.warm <= 0:
        p.error("--kills >= 1, --nodes >= 3, --writers >= 1, --warm > 0")
    from openraft_fast._aio import run
    r = run(failover(args.kills, args.nodes, args.writers, args.warm))
    print(f"\n{r['nodes']} nodes, {r['kills']} leader kills (SIGKILL), {r['writers']} writers, default config:")
    print(f"  kill -> first acknowledged write   p50 {r['kill_to_first_write_ms']['p50']:7.0f} ms   "
          f"max {r['kill_to_first_write_ms']['max']:7.0f} ms")
    print(f"  kill -> new leader seen (20 ms poll) p50 {r['kill_to_new_leader_ms']['p50']:5.0f} ms   "
          f"max {r['kill_to_new_leader_ms']['max']:7.0f} ms")
    print(f"  writes acknowledged {r['writes_acknowledged']}, outcome unknown {r['writes_outcome_unknown']}, "
          f"lost {r['writes_lost']}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(r, f, indent=2)
    return 0 if r["writes_lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
