"""Failover time of a local cluster of `serve` processes (default config, durable WAL, TCP).

    python -m benches.failover [--kills 20] [--nodes 3] [--writers 8] [--json FILE]
    python -m benches.failover --ops [--rounds 5] [--rows leader_sigterm,bridge] [--json FILE]

Each round: writers keep putting; the leader gets SIGKILL; we time (a) the kill to the first
write acknowledged afterwards (it can only come from the new leader: the old one is dead) and
(b) the kill to the first status poll (every 20 ms) that shows a new leader. Then the killed
node is restarted and the cluster left to converge before the next round. Reported: p50 and max
over the rounds (nearest rank), and the writes lost over all rounds (every acknowledged write is
read back at the end: must be 0). A figure for a report, not an assertion; noisy under load.

With --ops, a row per routine operation instead (follower restart by SIGTERM and SIGKILL,
leader SIGTERM, leader SIGKILL, a removed node left running, leader isolation and a bridge
through the fault proxy), each with its elections, term change, longest gap between
acknowledged writes and time to a new leader, checked against the targets of the stability
issue (see `_target`).
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
from openraft_fast.config import Config
from openraft_fast.testing.faultproxy import FaultNetworkProcess
from openraft_fast.testing.localcluster import LocalCluster, NodeProcess
from openraft_fast.testing.opswatch import ElectionWatch, longest_gap


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


# ---------------------------------------------------------------------------------- --ops
# One row per routine operation, several rounds each, on a 3-node (default) cluster under the
# same write load: elections (term rises seen by polling every node's status every 20 ms), the
# term change, leader changes, the longest gap between acknowledged writes from the operation
# until the cluster has settled, and the time to a new leader where one is expected. Rows
# that cut the network (isolation, bridge) run on a second cluster whose raft traffic goes
# through the fault proxy (a subprocess: one more process on the CPUs, one more hop).

HEARTBEAT = Config().heartbeat_interval
ET_MAX = Config().election_timeout_max
OPS_ROWS = ("follower_sigterm", "follower_sigkill", "leader_sigterm", "leader_sigkill", "removed_running",
            "leader_isolated", "bridge")
NEEDS_PROXY = {"leader_isolated", "bridge"}


async def _settle(cluster: LocalCluster, linger: float) -> None:
    await cluster.converge(timeout=60.0)
    await asyncio.sleep(linger)


async def _op_round(row: str, r: int, cluster: LocalCluster, watch: ElectionWatch, work: Workload,
                    hold: float, linger: float) -> dict:
    """One operation; returns the round's figures."""
    leader = await cluster.leader(timeout=30.0)
    await watch.poll()
    followers = sorted(i for i in cluster.nodes if i != leader and cluster.nodes[i].alive)
    mark = watch.mark()
    new_leader_expected = row in ("leader_sigterm", "leader_sigkill", "leader_isolated")
    t0 = time.monotonic()
    target = leader
    if row in ("follower_sigterm", "follower_sigkill"):
        target = followers[r % len(followers)]
        node = cluster.nodes[target]
        node.terminate(timeout=10.0) if row == "follower_sigterm" else node.kill()
        await asyncio.sleep(hold)
        await cluster.start_node(target)
        await cluster.wait_up(target)
    elif row in ("leader_sigterm", "leader_sigkill"):
        node = cluster.nodes[leader]
        node.terminate(timeout=10.0) if row == "leader_sigterm" else node.kill()
        await cluster.leader(timeout=30.0, exclude=(leader,))
        await asyncio.sleep(hold)
        await cluster.start_node(leader)
        await cluster.wait_up(leader)
    elif row == "leader_isolated":
        await cluster.faults.isolate(leader)
        await cluster.leader(timeout=30.0, exclude=(leader,))
        await asyncio.sleep(hold)
        await cluster.faults.heal()
    elif row == "bridge":
        # the leader and one follower cannot reach each other; the other follower reaches both
        target = followers[r % len(followers)]
        await cluster.faults.cut_both(leader, target)
        await asyncio.sleep(hold)
        await cluster.faults.heal()
    elif row == "removed_running":
        # a fresh node joins (learner, then voter), is removed and keeps running for `hold`
        voters = sorted(cluster.nodes)
        target = max(max(cluster.nodes), getattr(cluster, "_ops_last_id", 0)) + 1     # a fresh id each round
        cluster._ops_last_id = target
        cluster.nodes[target] = NodeProcess(target, cluster.base_dir)
        await cluster.start_node(target)
        await cluster.wait_up(target)
        n = cluster.nodes[target]
        async with cluster.client(timeout=30.0) as kv:
            await kv.add_learner(target, n.advertised, n.http)
            await kv.change_membership(voters + [target])
            await watch.poll()
            mark = watch.mark()
            t0 = time.monotonic()
            await kv.change_membership(voters)
        await asyncio.sleep(hold)
        await watch.poll()
        st = await cluster.status(target)
        n.kill()
        del cluster.nodes[target]
        if st is None or st["state"] != "not_member":
            print(f"  removed n{target} reports {None if st is None else st['state']!r}, not 'not_member'")
    else:
        raise ValueError(row)
    await _settle(cluster, linger)
    end = time.monotonic()
    await watch.poll()
    to_leader = None
    if new_leader_expected:
        rec = watch.first_leader_after(t0, exclude=(leader,))
        to_leader = None if rec is None else rec[0] - t0
    return {"row": row, "round": r + 1, "node": target, "leader_before": leader, "leader_after": watch.leader,
            "elections": watch.elections_since(mark), "term_change": watch.term_change_since(mark),
            "leader_changes": watch.leader_changes_since(mark),
            "longest_write_gap_s": longest_gap(work.ack_times, t0, end), "to_new_leader_s": to_leader}


async def _round_trip(cluster: LocalCluster, n: int = 50) -> float:
    """Median time of one put, one client, no load: a client round trip through the leader."""
    times = []
    async with cluster.client(timeout=10.0) as kv:
        for i in range(n):
            t = time.monotonic()
            await kv.put(f"rtt/{i}", "x")
            times.append(time.monotonic() - t)
    return percentile(sorted(times), 0.5)


async def ops_bench(rows, rounds: int, nodes: int, writers: int, hold: float, removed_hold: float,
                    linger: float, out=sys.stdout, keep: bool = False) -> dict:
    results: list = []
    info: dict = {"nodes": nodes, "rounds": rounds, "writers": writers, "heartbeat_s": HEARTBEAT,
                  "election_timeout_max_s": ET_MAX, "hold_s": hold, "removed_hold_s": removed_hold}
    lost = 0
    acked = 0
    for proxied in (False, True):
        group = [r for r in rows if (r in NEEDS_PROXY) == proxied]
        if not group:
            continue
        base = tempfile.mkdtemp(prefix="openraft-fast-ops-bench-")
        net = await FaultNetworkProcess.start() if proxied else None
        cluster = LocalCluster(nodes, base, faults=net)
        work = None
        ok = False
        try:
            await cluster.start()
            await cluster.converge(timeout=60.0)
            info["round_trip_s" + ("_proxied" if proxied else "")] = await _round_trip(cluster)
            work = Workload(cluster, writers)
            work.start()
            async with ElectionWatch(cluster, interval=0.02) as watch:
                await asyncio.sleep(1.0)
                for row in group:
                    for r in range(rounds):
                        res = await _op_round(row, r, cluster, watch, work,
                                              removed_hold if row == "removed_running" else hold, linger)
                        res["proxied"] = proxied
                        results.append(res)
                        out.write(f"{row} {r + 1}/{rounds}: n{res['node']}: elections {res['elections']}, "
                                  f"term +{res['term_change']}, leader changes {res['leader_changes']} "
                                  f"(n{res['leader_before']} -> n{res['leader_after']}), longest write gap "
                                  f"{res['longest_write_gap_s'] * 1000:.0f} ms"
                                  + ("" if res["to_new_leader_s"] is None else
                                     f", new leader after {res['to_new_leader_s'] * 1000:.0f} ms") + "\n")
                        out.flush()
            await work.finish()
            acked += len(work.acked)
            lost += await _read_back(cluster, work.acked)
            ok = True
        finally:
            if work is not None:
                await work.finish()
            await cluster.close()
            if net is not None:
                await net.close()
            if ok and not keep:
                shutil.rmtree(base, ignore_errors=True)
            else:
                out.write(f"node logs kept in {base}\n")
    info["writes_acknowledged"] = acked
    info["writes_lost"] = lost
    return {"config": info, "rounds": results, "rows": _summarize(rows, results, info)}


def _summarize(rows, results, info) -> dict:
    rtt = info.get("round_trip_s", 0.0)
    summary = {}
    for row in rows:
        rs = [x for x in results if x["row"] == row]
        if not rs:
            continue
        gaps = sorted(x["longest_write_gap_s"] for x in rs)
        lead = sorted(x["to_new_leader_s"] for x in rs if x["to_new_leader_s"] is not None)
        s = {"rounds": len(rs),
             "elections": sum(x["elections"] for x in rs), "elections_max": max(x["elections"] for x in rs),
             "term_change": sum(x["term_change"] for x in rs), "term_change_max": max(x["term_change"] for x in rs),
             "leader_changes": [x["leader_changes"] for x in rs],
             "gap_p50_s": percentile(gaps, 0.5), "gap_max_s": gaps[-1],
             "to_new_leader_p50_s": percentile(lead, 0.5) if lead else None,
             "to_new_leader_max_s": lead[-1] if lead else None,
             "new_leader_missing": sum(1 for x in rs if x["to_new_leader_s"] is None)
             if row in ("leader_sigterm", "leader_sigkill", "leader_isolated") else 0}
        s["target"], s["met"] = _target(row, s, rs, rtt)
        summary[row] = s
    return summary


def _target(row, s, rs, rtt):
    if row in ("follower_sigterm", "follower_sigkill"):
        return "0 elections", s["elections"] == 0
    if row == "leader_sigterm":
        bound = 2 * HEARTBEAT + rtt
        return (f"1 leader change/round, gap p50 <= {bound * 1000:.0f} ms",
                all(x["leader_changes"] == 1 for x in rs) and s["gap_p50_s"] <= bound)
    if row in ("leader_sigkill", "leader_isolated"):
        bound = ET_MAX + 0.3
        return (f"new leader p50 <= {bound * 1000:.0f} ms, <= 1 election/failure",
                s["new_leader_missing"] == 0 and s["to_new_leader_p50_s"] is not None
                and s["to_new_leader_p50_s"] <= bound and s["elections_max"] <= 1)
    if row == "removed_running":
        return "term unchanged", s["term_change"] == 0
    if row == "bridge":
        bound = 2 * ET_MAX
        return f"gap p50 <= {bound * 1000:.0f} ms", s["gap_p50_s"] <= bound
    return "", True


def format_ops_table(r: dict) -> str:
    ms = lambda v: "-" if v is None else f"{v * 1000:.0f}"  # noqa: E731
    head = ("operation", "rounds", "elections", "max/round", "term +", "leader chg", "gap p50 ms", "gap max ms",
            "new leader p50 ms", "max ms", "target", "met")
    lines = [head]
    for row, s in r["rows"].items():
        changes = sorted(set(s["leader_changes"]))
        lines.append((row, str(s["rounds"]), str(s["elections"]), str(s["elections_max"]), str(s["term_change"]),
                      "/".join(map(str, changes)), ms(s["gap_p50_s"]), ms(s["gap_max_s"]),
                      ms(s["to_new_leader_p50_s"]), ms(s["to_new_leader_max_s"]), s["target"],
                      "yes" if s["met"] else "NO"))
    widths = [max(len(x[i]) for x in lines) for i in range(len(head))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(x, widths)).rstrip() for x in lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benches.failover", description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--writers", type=int, default=8)
    p.add_argument("--warm", type=float, default=1.0, help="seconds of writes before each kill")
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--ops", action="store_true", help="a row per routine operation instead of leader kills")
    p.add_argument("--rounds", type=int, default=5, help="--ops: rounds per row")
    p.add_argument("--rows", default=",".join(OPS_ROWS), help=f"--ops: rows to run ({','.join(OPS_ROWS)})")
    p.add_argument("--hold", type=float, default=1.0,
                   help="--ops: seconds a node stays down / a fault stays on")
    p.add_argument("--removed-hold", type=float, default=5.0, help="--ops: seconds the removed node runs")
    p.add_argument("--keep", action="store_true", help="--ops: keep the nodes' data and logs")
    p.add_argument("--linger", type=float, default=0.5, help="--ops: seconds watched after the cluster settled")
    args = p.parse_args(argv)
    if args.ops:
        return _ops_main(args, p)
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


def _ops_main(args, p) -> int:
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    bad = [r for r in rows if r not in OPS_ROWS]
    if bad or args.rounds < 1 or args.nodes < 3 or args.writers < 1 or args.hold <= 0 or args.removed_hold <= 0:
        p.error(f"unknown rows {bad}" if bad else "--rounds >= 1, --nodes >= 3, --writers >= 1, holds > 0")
    from openraft_fast._aio import run
    r = run(ops_bench(rows, args.rounds, args.nodes, args.writers, args.hold, args.removed_hold, args.linger,
                      keep=args.keep))
    c = r["config"]
    print(f"\n{c['nodes']} nodes, {c['rounds']} rounds per row, {c['writers']} writers, default config "
          f"(heartbeat {HEARTBEAT * 1000:.0f} ms, election timeout max {ET_MAX * 1000:.0f} ms); client round trip "
          f"{c.get('round_trip_s', 0) * 1000:.1f} ms"
          + (f", {c['round_trip_s_proxied'] * 1000:.1f} ms through the proxy" if "round_trip_s_proxied" in c else "")
          + ":")
    print(format_ops_table(r))
    print(f"writes acknowledged {c['writes_acknowledged']}, lost {c['writes_lost']}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(r, f, indent=2)
    return 0 if c["writes_lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
