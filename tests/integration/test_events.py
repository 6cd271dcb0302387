"""Raft.events(): a subscription starts with the state now, then reports role, leader and
membership changes, snapshots built and installed, in order, and ends with NodeStopped; a
subscriber that leaves is forgotten, one that lags loses the oldest events and is told."""
import asyncio

import pytest

from cluster_support import FAST, WAIT, Cluster, events_until, node
from openraft_fast import (EventsLost, Fatal, InvalidArgument, LeaderChanged, MembershipChanged, NodeStopped,
                           RoleChanged, ServerState, SnapshotBuilt, SnapshotInstalled, StorageError)
from openraft_fast.storage import MemStateMachine

IDS = (1, 2, 3)


def test_a_follower_sees_the_leader_fail_over_in_order(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start(IDS)
            f = next(i for i in IDS if i != lead)
            events = c.rafts[f].events()
            term = c.rafts[f].metrics.current_term
            first = [await events.__anext__() for _ in range(3)]
            assert first[:2] == [RoleChanged(ServerState.FOLLOWER, term), LeaderChanged(lead, term)]
            assert first[2] == MembershipChanged(c.rafts[f].metrics.membership, c.rafts[f].metrics.membership_log_id)
            assert first[0].time > 0
            await c.stop(lead)
            seen = await events_until(events, lambda e: isinstance(e, LeaderChanged) and e.leader_id is not None)
            new = await c.wait_leader(exclude=[lead])
            assert seen[-1].leader_id == new and seen[-1].term > term, seen
            roles = [e.state for e in seen if isinstance(e, RoleChanged)]
            if new == f:
                # It stood and won: candidate, then leader, then it names itself.
                assert roles[-2:] == [ServerState.CANDIDATE, ServerState.LEADER], seen
            else:
                assert ServerState.LEADER not in roles and roles[-1:] in ([], [ServerState.FOLLOWER]), seen
            # In order: the terms never go back, and the leader was lost before another came.
            terms = [e.term for e in seen if isinstance(e, (RoleChanged, LeaderChanged))]
            assert terms == sorted(terms), seen
            leaders = [e.leader_id for e in seen if isinstance(e, LeaderChanged)]
            assert leaders[0] is None and lead not in leaders, seen
            # Each event is a change: no two consecutive events of one kind say the same.
            for a, b in zip(seen, seen[1:]):
                assert type(a) is not type(b) or a != b, seen
    run(body())


def test_membership_changes_are_reported_in_log_order(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start(IDS)
            L = c.rafts[lead]
            events = L.events()
            await events_until(events, lambda e: isinstance(e, MembershipChanged))      # the state now
            await c.start_node(4)
            await L.add_learner(4, node(4))
            await L.change_membership({1, 2, 3, 4})
            seen = await events_until(events, lambda e: isinstance(e, MembershipChanged)
                                      and not e.membership.is_joint and 4 in e.membership.voter_ids)
            changes = [e for e in seen if isinstance(e, MembershipChanged)]
            assert [e.log_id.index for e in changes] == sorted(e.log_id.index for e in changes)
            assert changes[0].membership.learner_ids == {4} and changes[0].membership.voter_ids == set(IDS)
            assert any(e.membership.is_joint for e in changes), changes
            assert changes[-1].log_id == L.metrics.membership_log_id
            # The leader stayed the leader: no role or leader event came with these.
            assert all(isinstance(e, MembershipChanged) for e in seen), seen
    run(body())


def test_snapshots_built_and_installed_on_a_lagging_node(run):
    config = FAST.replace(snapshot_policy=20, max_in_snapshot_log_to_keep=0, replication_lag_threshold=10)

    async def body():
        async with Cluster(config) as c:
            lead = await c.start(IDS)
            lag = next(i for i in IDS if i != lead)
            on_leader = c.rafts[lead].events()
            on_lagging = c.rafts[lag].events()
            c.router.isolate(lag)
            for i in range(50):
                r = await c.write(lead, f"k{i}", i)
            built = (await events_until(on_leader, lambda e: isinstance(e, SnapshotBuilt)))[-1]
            assert built.last_log_id.index >= 20 and built.meta.last_log_id == built.last_log_id
            c.router.heal(lag)
            seen = await events_until(on_lagging, lambda e: isinstance(e, SnapshotInstalled))
            m = await c.rafts[lag].wait(WAIT).applied_index(r.log_id.index)
            assert seen[-1].last_log_id.index >= 40 and seen[-1].last_log_id == m.snapshot
            # It installed the leader's snapshot: it built none of its own meanwhile.
            assert not any(isinstance(e, SnapshotBuilt) and e.last_log_id.index >= 40 for e in seen), seen
    run(body())


def test_shutdown_ends_the_stream_with_node_stopped(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start(IDS)
            f = next(i for i in IDS if i != lead)
            events = c.rafts[f].events()
            await c.rafts[f].shutdown()
            c.stopped.add(f)
            seen = [e async for e in events]
            assert seen[-1] == NodeStopped(None) and not any(isinstance(e, NodeStopped) for e in seen[:-1]), seen
            # A subscription to a stopped node: only NodeStopped.
            assert [e async for e in c.rafts[f].events()] == [NodeStopped(None)]
    run(body())


class SnapshotFailsStateMachine(MemStateMachine):
    async def build_snapshot(self):
        raise OSError(28, "No space left on device")


def test_a_fatal_stop_is_reported_with_its_cause(run):
    async def body():
        async with Cluster() as c:
            for i in IDS:
                await c.start_node(i, sm=SnapshotFailsStateMachine() if i == 1 else None)
            await c.rafts[1].initialize({i: node(i) for i in IDS})
            await c.wait_leader(IDS)
            events = c.rafts[1].events()
            await c.rafts[1].trigger.snapshot()
            seen = await events_until(events, lambda e: isinstance(e, NodeStopped))
            cause = seen[-1].cause
            assert isinstance(cause, Fatal) and cause is c.rafts[1].metrics.running_state
            assert isinstance(cause.__cause__, StorageError), cause.__cause__
            assert "state machine build_snapshot raised OSError(28, 'No space left on device'): fatal" in str(cause)
            with pytest.raises(StopAsyncIteration):
                await events.__anext__()
            c.stopped.add(1)
    run(body())


def test_a_subscriber_that_leaves_is_forgotten(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start(IDS)
            raft = c.rafts[lead]
            core = raft._core
            assert not core.executor.watched            # nobody listens: the pump looks for nothing
            async for event in raft.events():
                assert isinstance(event, RoleChanged)
                assert core.executor.watched and len(core.event_stream) == 1
                break
            assert len(core.event_stream) == 0 and not core.executor.watched
            # aclose() forgets at once, whoever else still holds the iterator; iterating ends.
            kept = raft.events()
            other = raft.events()
            assert len(core.event_stream) == 2
            await kept.aclose()
            assert len(core.event_stream) == 1 and core.executor.watched
            assert [e async for e in kept] == []
            del other
            assert len(core.event_stream) == 0 and not core.executor.watched
    run(body())


def test_a_lagging_subscriber_loses_the_oldest_events_and_is_told(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start(IDS)
            raft = c.rafts[lead]
            events = raft.events(backlog=2)           # the state now is 3 events: one is lost
            m = raft.metrics
            assert await events.__anext__() == EventsLost(1)
            assert await events.__anext__() == LeaderChanged(lead, m.current_term)
            assert await events.__anext__() == MembershipChanged(m.membership, m.membership_log_id)
            await c.start_node(4)
            await raft.add_learner(4, node(4))
            await raft.shutdown(transfer=False)
            c.stopped.add(lead)
            # A membership change and NodeStopped, read late with room for 2: nothing lost.
            rest = [e async for e in events]
            assert [type(e) for e in rest] == [MembershipChanged, NodeStopped], rest
            with pytest.raises(InvalidArgument):
                raft.events(backlog=0)
    run(body())


def test_an_idle_subscriber_waits_and_is_woken(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start(IDS)
            f = next(i for i in IDS if i != lead)
            events = c.rafts[f].events()
            for _ in range(3):
                await events.__anext__()
            waiting = asyncio.ensure_future(events.__anext__())
            await asyncio.sleep(0.1)
            assert not waiting.done()                 # nothing changed: nothing to read
            await c.rafts[lead].trigger.transfer_leader(f)
            seen = [await asyncio.wait_for(waiting, WAIT)]
            seen += await events_until(events, lambda e: e == LeaderChanged(f, e.term))
            assert RoleChanged(ServerState.LEADER, seen[-1].term) in seen, seen
    run(body())
