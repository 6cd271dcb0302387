"""Linearizable reads through the public API: READ_INDEX, LEASE_READ, both; on the leader and
on followers and learners (follower read index); a partitioned leader does not serve reads."""
import asyncio

import pytest

from cluster_support import Cluster, node
from openraft_fast import (ForwardToLeader, InvalidArgument, InvalidArgumentType, LeaseExpired, QuorumNotEnough,
                           RaftError, ReadPolicy, Timeout)
from openraft_fast.storage import MemStateMachine
from openraft_fast._core.messages import READ_INDEX_NOT_LEADER, READ_INDEX_OK, ReadIndexRequest

POLICIES = (ReadPolicy.READ_INDEX, ReadPolicy.LEASE_READ, ReadPolicy.READ_INDEX | ReadPolicy.LEASE_READ)


def test_ensure_linearizable_on_leader(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            L = c.rafts[lead]
            for policy in POLICIES:
                r = await c.write(lead, "k", int(policy))
                read_at = await L.ensure_linearizable(policy)
                # The read point covers every write acknowledged before the call, and the
                # leader's state machine reflects it when the call returns.
                assert read_at >= r.log_id, (policy, read_at, r.log_id)
                assert L.metrics.last_applied >= read_at
                assert c.sm(lead).data["k"] == int(policy)
            # Many concurrent reads (one quorum round serves them), mixed with writes.
            w = await c.write(lead, "k", "last")
            more = [c.rafts[lead].client_write(b"x%d" % i) for i in range(10)]
            reads = await asyncio.gather(*(L.ensure_linearizable(POLICIES[i % 3]) for i in range(30)))
            assert all(x >= w.log_id for x in reads)
            await asyncio.gather(*more)
            # The default policy is READ_INDEX.
            assert await L.ensure_linearizable() >= w.log_id
    run(body())


def test_follower_and_learner_reads_ask_the_leader_and_read_locally(run):
    """etcd's follower ReadIndex: a follower or learner gets a read point from the leader,
    waits until it has applied that far, and its own state machine then holds every write
    acknowledged before the read began."""
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            await c.start_node(4)
            await c.rafts[lead].add_learner(4, node(4))
            for f in (i for i in (1, 2, 3, 4) if i != lead):
                for policy in POLICIES:
                    r = await c.write(lead, "k", f"{f}-{int(policy)}")
                    asked = c.router.counts["read_index"]
                    read_at = await c.rafts[f].ensure_linearizable(policy)
                    assert c.router.counts["read_index"] == asked + 1, "a follower read must ask the leader"
                    assert read_at >= r.log_id, (f, policy, read_at, r.log_id)
                    assert c.rafts[f].metrics.last_applied >= read_at
                    assert c.sm(f).data["k"] == f"{f}-{int(policy)}", (f, policy)
            # Concurrent follower reads, mixed with writes.
            f = next(i for i in (1, 2, 3) if i != lead)
            w = await c.write(lead, "k", "last")
            reads = await asyncio.gather(*(c.rafts[f].ensure_linearizable(POLICIES[i % 3]) for i in range(20)))
            assert all(x >= w.log_id for x in reads)
    run(body())


def test_read_index_rpc_on_a_follower_names_the_leader(run):
    """The receiving side: a node that does not lead answers NOT_LEADER with the leader it
    knows, and a follower read that reaches it raises ForwardToLeader naming that leader."""
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            f = next(i for i in (1, 2, 3) if i != lead)
            resp = await c.rafts[f].read_index(ReadIndexRequest(int(ReadPolicy.READ_INDEX)))
            assert resp.result == READ_INDEX_NOT_LEADER and resp.leader_id == lead and resp.read_log_id is None
            resp = await c.rafts[lead].read_index(ReadIndexRequest(int(ReadPolicy.READ_INDEX)))
            assert resp.result == READ_INDEX_OK and resp.read_log_id is not None
            assert resp.read_log_id >= c.rafts[lead].metrics.committed
    run(body())


def test_follower_read_without_a_leader_fails_at_once(run):
    """A node that knows no leader (pristine, never initialized) cannot serve a linearizable
    read: ForwardToLeader with no leader named, and nothing is sent."""
    async def body():
        async with Cluster() as c:
            await c.start([1, 2, 3], init=False)
            for policy in POLICIES:
                with pytest.raises(ForwardToLeader) as ei:
                    await c.rafts[2].ensure_linearizable(policy)
                assert ei.value.leader_id is None and ei.value.leader_node is None
            assert c.router.counts["read_index"] == 0
    run(body())


class GatedStateMachine(MemStateMachine):
    """Fault injection: apply waits while the gate is closed (a stalled state machine)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()

    async def apply(self, entries):
        await self.gate.wait()
        return await super().apply(entries)


def test_follower_that_cannot_apply_the_read_point_times_out_not_stale(run):
    """The follower's state machine stalls: the read point covers a write it has not applied,
    so its read must fail with Timeout within the bound instead of returning stale state, and
    succeed once it has applied."""
    async def body():
        async with Cluster() as c:
            for i in (1, 2, 3):
                await c.start_node(i, sm=GatedStateMachine())
            await c.rafts[1].initialize({i: node(i) for i in (1, 2, 3)})
            lead = await c.wait_leader([1, 2, 3])
            f = next(i for i in (1, 2, 3) if i != lead)
            r = await c.write(lead, "k", "old")
            await c.wait_applied(r.log_id.index, ids=[f])
            c.sm(f).gate.clear()
            await c.write(lead, "k", "new")
            with pytest.raises(Timeout):
                await c.rafts[f].ensure_linearizable(ReadPolicy.READ_INDEX, timeout=0.3)
            assert c.sm(f).data["k"] == "old"
            c.sm(f).gate.set()
            await c.rafts[f].ensure_linearizable(ReadPolicy.READ_INDEX)
            assert c.sm(f).data["k"] == "new"
    run(body())


def test_follower_read_to_an_unreachable_leader_fails(run):
    """A follower cut off from the leader it knows: its read fails with a RaftError (the
    network's Unreachable), it never hangs and never reads locally."""
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            f = next(i for i in (1, 2, 3) if i != lead)
            await c.write(lead, "k", 1)
            c.router.cut(f, lead)
            with pytest.raises(RaftError):
                await c.rafts[f].ensure_linearizable(ReadPolicy.READ_INDEX, timeout=1.0)
    run(body())


def test_ensure_linearizable_checks_its_arguments(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            L = c.rafts[lead]
            for bad in ("read", None, 0, 4, True):
                with pytest.raises((InvalidArgumentType, InvalidArgument)):
                    await L.ensure_linearizable(bad)
            for bad in (0, -1.0, float("nan"), float("inf"), "1", True):
                with pytest.raises((InvalidArgumentType, InvalidArgument)):
                    await L.ensure_linearizable(ReadPolicy.READ_INDEX, timeout=bad)
            assert await L.ensure_linearizable(ReadPolicy.READ_INDEX, timeout=1.0) is not None
    run(body())


def test_lease_read_refused_on_partitioned_leader(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            await c.write(lead, "a", 1)
            c.router.isolate(lead)
            # Past the lease (election_timeout_min * (1 - drift)) no quorum has acked.
            await asyncio.sleep(c.config.election_timeout_min * 2)
            # LeaseExpired while it still leads; ForwardToLeader once check-quorum made it step
            # down (after election_timeout_max without quorum acks).
            with pytest.raises((LeaseExpired, ForwardToLeader)):
                await c.rafts[lead].ensure_linearizable(ReadPolicy.LEASE_READ)
            assert issubclass(LeaseExpired, QuorumNotEnough)
            # The rest elect a new leader that serves reads and writes.
            new = await c.wait_leader(exclude=[lead])
            assert new != lead
            r = await c.write(new, "b", 2)
            assert await c.rafts[new].ensure_linearizable(ReadPolicy.LEASE_READ) >= r.log_id
            assert await c.rafts[new].ensure_linearizable(ReadPolicy.READ_INDEX) >= r.log_id
    run(body())


def test_read_index_fails_on_partitioned_leader(run):
    """A leader cut off from every follower cannot confirm its leadership: a READ_INDEX read
    (alone or as the fallback of LEASE_READ) must fail (QuorumNotEnough or ForwardToLeader)
    within a bounded time, well after a new leader may have been elected, not hang."""
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            await c.write(lead, "a", 1)
            c.router.isolate(lead)
            L = c.rafts[lead]
            reads = [asyncio.ensure_future(L.ensure_linearizable(ReadPolicy.READ_INDEX))]
            # Once the lease has run out, LEASE_READ | READ_INDEX falls back to a READ_INDEX round.
            await asyncio.sleep(c.config.election_timeout_min * 2)
            reads.append(asyncio.ensure_future(L.ensure_linearizable(ReadPolicy.READ_INDEX | ReadPolicy.LEASE_READ)))
            new = await c.wait_leader(exclude=[lead])
            await c.write(new, "a", 2)          # the old leader's state is now stale
            done, pending = await asyncio.wait(reads, timeout=2.0)
            for f in pending:
                f.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
            assert not pending, (f"{len(pending)} READ_INDEX read(s) on the partitioned leader {lead} neither "
                                 f"returned nor failed 2s after the partition (leader state "
                                 f"{L.metrics.state.name}, term {L.metrics.current_term}; "
                                 f"new leader {new}, term {c.rafts[new].metrics.current_term})")
            for f in done:
                exc = f.exception()
                assert isinstance(exc, (QuorumNotEnough, ForwardToLeader)), (
                    f"a read on the partitioned leader returned {f.result() if exc is None else exc!r}")
    run(body())
