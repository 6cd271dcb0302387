"""Snapshots and log purging through the public API: built by policy or on demand, purged,
and installed on a lagging follower and on a new learner."""

from cluster_support import FAST, WAIT, Cluster, node

# A snapshot every 20 applied entries; keep no log behind it.
SNAP = FAST.replace(snapshot_policy=20, max_in_snapshot_log_to_keep=0)


def test_snapshot_by_policy_and_purge(run):
    async def body():
        async with Cluster(SNAP.replace(max_in_snapshot_log_to_keep=5)) as c:
            lead = await c.start([1, 2, 3])
            r = None
            for i in range(45):
                r = await c.write(lead, f"k{i % 10}", i)
            await c.wait_applied(r.log_id.index)
            # Every node builds its own snapshots by the policy.
            for i in (1, 2, 3):
                m = await c.rafts[i].wait(WAIT).snapshot(40)
                assert m.snapshot.index >= 40 and m.snapshot.index <= m.last_applied.index
                snap = await c.sm(i).get_current_snapshot()
                assert snap is not None and snap.meta.last_log_id == m.snapshot
                assert snap.meta.membership is not None and snap.meta.membership.voter_ids == {1, 2, 3}
                # ... and purges the log behind it, keeping max_in_snapshot_log_to_keep entries.
                m = await c.rafts[i].wait(WAIT).purged(m.snapshot.index - 5)
                assert m.purged.index <= m.snapshot.index
                assert c.log(i).log.purged == m.purged
            # trigger.snapshot builds one now, up to what is applied; purge_log purges up to it.
            L = c.rafts[lead]
            r = await c.write(lead, "last", 1)
            await L.trigger.snapshot()
            m = await L.wait(WAIT).snapshot(r.log_id.index)
            assert m.snapshot == r.log_id
            await L.trigger.purge_log(r.log_id.index)
            m = await L.wait(WAIT).purged(r.log_id.index)
            assert m.purged == r.log_id
            st = await c.log(lead).get_log_state()
            assert st.last_purged_log_id == r.log_id
            # purge_log never goes past the snapshot.
            r2 = await c.write(lead, "past", 1)
            await L.trigger.purge_log(r2.log_id.index + 100)
            await L.trigger.heartbeat()
            assert L.metrics.purged == r.log_id
            # Writes go on after purging.
            r3 = await c.write(lead, "more", 2)
            await c.wait_applied(r3.log_id.index)
            c.assert_same_data()
    run(body())


def test_snapshot_never_policy(run):
    async def body():
        async with Cluster(FAST.replace(snapshot_policy="never")) as c:
            lead = await c.start([1, 2, 3])
            for i in range(30):
                r = await c.write(lead, f"k{i}", i)
            await c.wait_applied(r.log_id.index)
            for i in (1, 2, 3):
                m = c.rafts[i].metrics
                assert m.snapshot is None and m.purged is None
            # purge_log without a snapshot purges nothing.
            await c.rafts[lead].trigger.purge_log(10)
            await c.rafts[lead].trigger.heartbeat()
            assert c.rafts[lead].metrics.purged is None
            await c.rafts[lead].trigger.snapshot()
            m = await c.rafts[lead].wait(WAIT).snapshot(r.log_id.index)
            assert m.snapshot == r.log_id
    run(body())


def test_lagging_follower_catches_up_by_snapshot_after_purge(run):
    """Isolate a follower, write past the snapshot policy and purge the leader's log past
    what the follower holds; once healed it can only catch up through the snapshot."""
    async def body():
        async with Cluster(SNAP) as c:
            lead = await c.start([1, 2, 3])
            lag = next(i for i in (1, 2, 3) if i != lead)
            r = await c.write(lead, "before", 0)
            await c.rafts[lag].wait(WAIT).applied_index(r.log_id.index)
            lag_last = c.rafts[lag].metrics.last_log_index
            c.router.isolate(lag)
            for i in range(60):
                r = await c.write(lead, f"k{i % 10}", i)
            L = c.rafts[lead]
            m = await L.wait(WAIT).snapshot(60)
            await L.trigger.purge_log(m.snapshot.index)
            # The leader's log no longer holds what the follower needs next.
            m = await L.wait(2.0).purged(lag_last + 1)
            assert m.purged.index > lag_last
            before = c.router.counts["snapshot"]
            c.router.heal(lag)
            await c.rafts[lag].wait(WAIT).applied_index(r.log_id.index)
            assert c.router.counts["snapshot"] > before
            ml = c.rafts[lag].metrics
            assert ml.snapshot is not None and ml.snapshot.index >= m.purged.index
            c.assert_same_data(expect={**{f"k{i}": 50 + i for i in range(10)}, "before": 0})
            # And it keeps following by log entries afterwards.
            r = await c.write(lead, "after", 1)
            await c.wait_applied(r.log_id.index)
            c.assert_same_data()
    run(body())


def test_far_behind_follower_gets_snapshot(run):
    """A follower lagging more than replication_lag_threshold behind the leader's snapshot
    gets the snapshot instead of the log (no purge needed)."""
    async def body():
        async with Cluster(SNAP.replace(replication_lag_threshold=10)) as c:
            lead = await c.start([1, 2, 3])
            lag = next(i for i in (1, 2, 3) if i != lead)
            c.router.isolate(lag)
            for i in range(50):
                r = await c.write(lead, f"k{i}", i)
            await c.rafts[lead].wait(WAIT).snapshot(40)
            before = c.router.counts["snapshot"]
            c.router.heal(lag)
            m = await c.rafts[lag].wait(WAIT).applied_index(r.log_id.index)
            assert c.router.counts["snapshot"] > before
            assert m.snapshot is not None and m.snapshot.index >= 40
            snap = await c.sm(lag).get_current_snapshot()
            assert snap is not None and snap.meta.last_log_id == m.snapshot
            c.assert_same_data(expect={f"k{i}": i for i in range(50)})
    run(body())


def test_new_learner_gets_snapshot(run):
    async def body():
        async with Cluster(SNAP) as c:
            lead = await c.start([1, 2, 3])
            for i in range(50):
                r = await c.write(lead, f"k{i}", i)
            await c.wait_applied(r.log_id.index)
            snap = (await c.rafts[lead].wait(WAIT).snapshot(40)).snapshot
            # Every follower has acked everything: purging up to the snapshot is allowed.
            await c.rafts[lead].trigger.purge_log(snap.index)
            m = await c.rafts[lead].wait(WAIT).purged(snap.index)
            before = c.router.counts["snapshot"]
            await c.start_node(4)
            await c.rafts[lead].add_learner(4, node(4), blocking=True)
            r = await c.write(lead, "after", 1)
            m4 = await c.rafts[4].wait(WAIT).applied_index(r.log_id.index)
            assert c.router.counts["snapshot"] > before
            assert m4.snapshot is not None and m4.snapshot.index >= m.purged.index
            # The learner's log starts after the snapshot it installed.
            assert m4.purged is not None and m4.purged.index >= m.purged.index
            c.assert_same_data(expect={**{f"k{i}": i for i in range(50)}, "after": 1})
            # Promote it: the new voter works from its snapshot-based state.
            resp = await c.rafts[lead].change_membership({1, 2, 3, 4})
            assert resp.membership.voter_ids == {1, 2, 3, 4}
            r = await c.write(lead, "voter4", 1)
            await c.wait_applied(r.log_id.index)
            c.assert_same_data()
            # Restart it from its stores (a log purged up to the installed snapshot).
            await c.stop(4)
            r = await c.write(lead, "while-down", 1)
            raft4 = await c.restart(4)
            assert raft4.metrics.last_applied.index >= m4.snapshot.index
            await raft4.wait(WAIT).current_leader(lead)
            await raft4.wait(WAIT).applied_index(r.log_id.index)
            c.assert_same_data()
    run(body())
