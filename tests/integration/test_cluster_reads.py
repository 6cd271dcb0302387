"""Linearizable reads through the public API: READ_INDEX, LEASE_READ, both; followers
forward; a partitioned leader does not serve reads."""
import asyncio

import pytest

from cluster_support import WAIT, Cluster, node
from openraft_fast import ForwardToLeader, LeaseExpired, QuorumNotEnough, RaftError, ReadPolicy, ServerState

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


def test_ensure_linearizable_on_follower_forwards(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            await c.start_node(4)
            await c.rafts[lead].add_learner(4, node(4))
            for f in (i for i in (1, 2, 3, 4) if i != lead):
                for policy in POLICIES:
                    with pytest.raises(ForwardToLeader) as ei:
                        await c.rafts[f].ensure_linearizable(policy)
                    assert ei.value.leader_id == lead, (f, policy, ei.value)
                    assert ei.value.leader_node == node(lead)
                    assert f"local:{lead}" in str(ei.value)
    run(body())


def test_lease_read_refused_on_partitioned_leader(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            await c.write(lead, "a", 1)
            c.router.isolate(lead)
            # Past the lease (election_timeout_min * (1 - drift)) no quorum has acked.
            await asyncio.sleep(c.config.election_timeout_min * 2)
            with pytest.raises(LeaseExpired):
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
