"""Routine operations on a cluster of real `serve` processes (default config: pre-vote on,
heartbeat 50 ms, election timeout 150-300 ms) under a write load, elections counted from
outside: an `ElectionWatch` polls every node's status and records each rise of the highest term
(an election) and each change of leader.

- a rolling restart of every follower, by SIGTERM and by SIGKILL: no election at all;
- a rolling restart of the leader by SIGTERM: it hands off, exactly one leader change each time;
- a removed node left running, then restarted: the cluster's term never moves, the node says
  "not_member";
- `cluster add-learner` of a node that is not running: exit 1, "was added but has not caught
  up"; `cluster change-membership` onto it: refused (not_enough_healthy_voters) unless --force.

Every acknowledged write is read back at the end of each test. CI runs the restarts on 3 and 5
nodes, the rest on 3, one round per operation, the removed node kept 8 s (about a minute and a
half in all). More (OPS_NODES applies to every test):
    OPS_NODES=3,5 OPS_ROUNDS=3 OPS_REMOVED_SECONDS=20 python -m pytest tests/ops -q
OPS_KEEP=1 keeps the node logs of passing tests too (a failing test always keeps them).
"""
import asyncio
import os
import shutil
import tempfile
import time

import pytest

from openraft_fast.cli.demo import Workload, _read_back
from openraft_fast.testing.localcluster import LocalCluster, NodeProcess
from openraft_fast.testing.opswatch import ElectionWatch
from openraft_fast.testing.serve_process import cli

def _sizes(default):
    return [int(x) for x in os.environ.get("OPS_NODES", default).split(",") if x.strip()]


RESTART_NODES = _sizes("3,5")
NODES = _sizes("3")
ROUNDS = int(os.environ.get("OPS_ROUNDS", "1"))
REMOVED_SECONDS = float(os.environ.get("OPS_REMOVED_SECONDS", "8"))
KEEP = os.environ.get("OPS_KEEP") == "1"
WRITERS = 4
LIMIT = 150.0        # any one test, everything included


def _run(coro_fn, nodes):
    """Run `coro_fn(cluster, work, watch)` on a fresh cluster under a write load; then check no
    acknowledged write was lost. A failure keeps the node logs and names their directory."""
    base = tempfile.mkdtemp(prefix=f"openraft-fast-ops-{nodes}-")
    ok = False

    async def main():
        cluster = LocalCluster(nodes, base)
        work = None
        try:
            await cluster.start()
            await cluster.converge()
            work = Workload(cluster, WRITERS)
            work.start()
            async with ElectionWatch(cluster, interval=0.05) as watch:
                await asyncio.sleep(0.5)
                try:
                    await coro_fn(cluster, work, watch)
                except BaseException:
                    print(f"watch: {watch.describe()}")
                    raise
            await work.finish()
            assert len(work.acked) > 0
            assert await _read_back(cluster, work.acked) == 0
        finally:
            if work is not None:
                await work.finish()
            await cluster.close()

    try:
        asyncio.run(asyncio.wait_for(main(), LIMIT))
        ok = True
    finally:
        if ok and not KEEP:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"node logs kept in {base}")


async def _restart(cluster, node_id, how, converge=True):
    node = cluster.nodes[node_id]
    if how == "sigterm":
        node.terminate(timeout=10.0)
        assert node.proc.returncode == 0, node.log_tail()        # a clean stop, not the SIGKILL fallback
    else:
        cluster.kill(node_id)
    await asyncio.sleep(0.3)                                      # down for a while, writes going on
    await cluster.start_node(node_id)
    await cluster.wait_up(node_id)
    if converge:
        await cluster.converge()


def _acked_after(work, t):
    return sum(1 for x in work.ack_times[-20000:] if x > t)


@pytest.mark.parametrize("nodes", RESTART_NODES)
def test_rolling_restart_of_followers_makes_no_election(nodes):
    async def scenario(cluster, work, watch):
        leader = watch.leader
        term = watch.term
        assert leader is not None
        for how in ("sigterm", "sigkill"):
            for r in range(ROUNDS):
                for f in sorted(i for i in cluster.nodes if i != leader):
                    mark = watch.mark()
                    t0 = time.monotonic()
                    await _restart(cluster, f, how)
                    await asyncio.sleep(0.5)
                    await watch.poll()
                    assert watch.elections_since(mark) == 0, f"{how} of n{f}: {watch.describe()}"
                    assert watch.leader_changes_since(mark) == 0, f"{how} of n{f}: {watch.describe()}"
                    assert _acked_after(work, t0) > 0
        assert (watch.leader, watch.term) == (leader, term)
        st = watch.last
        assert all(s is not None and s["term"] == term and s["leader"] == leader for s in st.values()), st

    _run(scenario, nodes)


@pytest.mark.parametrize("nodes", RESTART_NODES)
def test_rolling_restart_of_the_leader_by_sigterm_changes_leader_once(nodes):
    async def scenario(cluster, work, watch):
        for r in range(ROUNDS * 2):
            leader = await cluster.leader()
            await watch.poll()
            assert watch.leader == leader
            mark = watch.mark()
            t0 = time.monotonic()
            cluster.nodes[leader].terminate(timeout=10.0)
            assert cluster.nodes[leader].proc.returncode == 0, cluster.nodes[leader].log_tail()
            new = await cluster.leader(exclude=(leader,))
            await cluster.start_node(leader)
            await cluster.wait_up(leader)
            await cluster.converge()
            await asyncio.sleep(0.5)
            await watch.poll()
            assert watch.leader_changes_since(mark) == 1, f"round {r}: {watch.describe()}"
            assert watch.elections_since(mark) == 1 and watch.term_change_since(mark) == 1, watch.describe()
            assert watch.leader == new != leader
            assert _acked_after(work, t0) > 0

    _run(scenario, nodes)


@pytest.mark.parametrize("nodes", NODES)
def test_removed_node_running_then_restarted_never_moves_the_term(nodes):
    async def scenario(cluster, work, watch):
        leader = watch.leader
        term = watch.term
        removed = max(i for i in cluster.nodes if i != leader)
        keep = sorted(i for i in cluster.nodes if i != removed)
        mark = watch.mark()
        async with cluster.client(timeout=20.0) as kv:
            await kv.change_membership(keep)
        # the removed node learns its removal (the leader replicates to it until it holds it)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            st = await cluster.status(removed)
            if st is not None and st["state"] == "not_member":
                break
            await asyncio.sleep(0.1)
        assert st is not None and st["state"] == "not_member", st
        await asyncio.sleep(REMOVED_SECONDS)            # left running, cut off from the cluster's heartbeats
        await watch.poll()
        assert watch.elections_since(mark) == 0 and watch.term == term, watch.describe()
        assert watch.leader_changes_since(mark) == 0, watch.describe()
        await _restart(cluster, removed, "sigterm", converge=False)   # nothing is replicated to it now
        await asyncio.sleep(max(1.0, REMOVED_SECONDS / 4))
        await watch.poll()
        st = watch.last[removed]
        assert st is not None and st["state"] == "not_member", st
        assert removed not in st["voters"] + st["learners"], st
        assert watch.elections_since(mark) == 0 and watch.term == term, watch.describe()
        assert watch.leader == leader
        for i in keep:
            s = watch.last[i]
            assert s is not None and s["voters"] == keep and s["term"] == term, s

    _run(scenario, nodes)


@pytest.mark.parametrize("nodes", NODES)
def test_dead_learner_add_times_out_and_membership_change_onto_it_needs_force(nodes):
    async def scenario(cluster, work, watch):
        leader = watch.leader
        term = watch.term
        new_id = max(cluster.nodes) + 1
        dead = NodeProcess(new_id, cluster.base_dir)                 # ports and data dir; not started
        endpoints = ",".join(cluster.urls)
        mark = watch.mark()
        code, out, err = await cli("cluster", "add-learner", "--endpoints", endpoints, "--id", str(new_id),
                                   "--raft", dead.advertised, "--http", dead.http, "--timeout", "2")
        assert code == 1, (code, out, err)
        assert "was added but has not caught up" in err and "learner_not_caught_up" not in out, err
        st = await cluster.status(leader)
        assert new_id in st["learners"], st
        # n{new_id} and the leader as the voters: only one of the two is healthy
        goal = f"{leader},{new_id}"
        code, out, err = await cli("cluster", "change-membership", "--endpoints", endpoints, "--voters", goal)
        assert code == 1 and "not_enough_healthy_voters" in err, (code, out, err)
        st = await cluster.status(leader)
        assert st["voters"] == sorted(cluster.nodes) and not st["joint"], st
        assert watch.elections_since(mark) == 0 and watch.term == term, watch.describe()
        # --force: accepted, the joint config is appended. The leader cannot commit it without
        # n{new_id} (and steps down by check-quorum: exit 3, outcome unknown, is expected); once
        # the learner runs, the cluster elects a leader and the change can be completed.
        code, out, err = await cli("cluster", "change-membership", "--endpoints", endpoints, "--voters", goal,
                                   "--force", "--timeout", "5")
        assert code in (0, 3) and "not_enough_healthy_voters" not in err, (code, out, err)
        st = await cluster.status(leader)
        assert st["joint"] and new_id in st["voters"], st
        cluster.nodes[new_id] = dead
        await cluster.start_node(new_id)
        await cluster.wait_up(new_id)
        await cluster.leader()
        code, out, err = await cli("cluster", "change-membership", "--endpoints", endpoints + "," + dead.url,
                                   "--voters", goal, "--timeout", "30")
        assert code == 0, (code, out, err)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            sts = {i: await cluster.status(i) for i in (leader, new_id)}
            if all(s is not None and s["voters"] == sorted({leader, new_id}) and not s["joint"] and s["leader"]
                   in (leader, new_id) for s in sts.values()):
                break
            await asyncio.sleep(0.1)
        assert all(s is not None and s["voters"] == sorted({leader, new_id}) and not s["joint"] for s in sts.values()), sts
        print(f"forced change onto a dead learner: {watch.describe()}")

    _run(scenario, nodes)
