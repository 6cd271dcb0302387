"""Routine operations that must not disturb a cluster (in process, through the public API):
leader hand-off on shutdown, a removed node that learns it and goes quiet, membership calls that
tell the truth about dead nodes. Real processes: tests/ops."""
import asyncio

import pytest

from cluster_support import FAST, WAIT, Cluster, kv, node
from openraft_fast import ChangeMembershipError, ForwardToLeader, OutcomeUnknown, ServerState, Timeout


def test_leader_shutdown_hands_leadership_over(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            await c.write(lead, "a", 1)
            term = c.rafts[lead].metrics.current_term
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            await c.rafts[lead].shutdown()                  # transfer=True by default
            handed = loop.time() - t0
            c.router.remove(lead)
            c.stopped.add(lead)
            others = [i for i in (1, 2, 3) if i != lead]
            new = await c.wait_leader(others, timeout=0.01 + FAST.election_timeout_min)
            # One new leadership, at once: no election timeout was waited out.
            assert c.rafts[new].metrics.current_term == term + 1
            assert handed < FAST.election_timeout_max
            r = await c.write(new, "b", 2)
            await c.wait_applied(r.log_id.index, others)
            c.assert_same_data(others, expect={"a": 1, "b": 2})
    run(body())


def test_leader_shutdown_does_not_wait_for_a_hand_off_target_that_just_stopped(run, caplog):
    """Nodes shut down in turn: the voters the leader heard from a moment ago look healthy but
    are stopped. The TimeoutNow to the one it picks cannot be delivered, so the leader stops
    at once instead of waiting out election_timeout_max for a leader that cannot come."""
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            await c.write(lead, "a", 1)
            for i in (1, 2, 3):
                if i != lead:
                    await c.rafts[i].shutdown(transfer=False)       # still in the router: sends fail
                    c.stopped.add(i)
            caplog.clear()
            with caplog.at_level("INFO", logger="openraft_fast"):
                await c.rafts[lead].shutdown()
            c.stopped.add(lead)
            text = caplog.text
            assert "cannot be reached" in text and "did not finish" not in text, text
    run(body())


def test_shutdown_without_transfer_leaves_at_once(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            await c.rafts[lead].shutdown(transfer=False)
            c.stopped.add(lead)
            others = [i for i in (1, 2, 3) if i != lead]
            # Nobody was handed anything: the followers still name the stopped leader.
            assert all(c.rafts[i].current_leader() == lead for i in others)
            with pytest.raises(TypeError):
                await c.rafts[others[0]].shutdown(transfer="yes")
    run(body())


def test_add_learner_that_is_not_running_times_out_saying_it_was_added(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            with pytest.raises(Timeout) as ei:
                await c.rafts[lead].add_learner(4, node(4), timeout=0.5)
            assert "learner 4 was added but has not caught up within 0.5s" in str(ei.value)
            assert 4 in c.rafts[lead].metrics.membership.learner_ids
    run(body())


def test_change_membership_onto_a_dead_learner_is_refused_unless_forced(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            with pytest.raises(Timeout):
                await c.rafts[lead].add_learner(4, node(4), timeout=0.3)
            with pytest.raises(ChangeMembershipError) as ei:
                await c.rafts[lead].change_membership({lead, 4})
            assert ei.value.reason == "not_enough_healthy_voters" and "[4]" in str(ei.value)
            assert c.rafts[lead].metrics.membership.voter_ids == {1, 2, 3}
            # Forced, the change goes ahead: the joint config is appended. It needs 4's acks, so the
            # leader loses its quorum (check-quorum) and the call cannot tell how it ends.
            with pytest.raises(OutcomeUnknown):
                await asyncio.wait_for(c.rafts[lead].change_membership({lead, 4}, force=True), WAIT)
            m = c.rafts[lead].metrics.membership
            assert m.is_joint and m.voter_ids == {1, 2, 3, 4}
            # Once 4 runs, the cluster elects a leader of the joint config again.
            await c.start_node(4)
            new = await c.wait_leader([1, 2, 3, 4], timeout=WAIT)
            await c.rafts[new].wait(WAIT).applied_index(c.rafts[new].metrics.last_log_index)
    run(body())


async def leader_not_3(c: Cluster) -> int:
    """Start {1, 2, 3} and return its leader, moved off node 3 (the node these tests remove)."""
    lead = await c.start([1, 2, 3])
    if lead == 3:
        await c.rafts[3].trigger.transfer_leader(1)
        lead = await c.wait_leader([1, 2])
    return lead


def test_removed_node_left_running_learns_it_and_changes_no_term(run):
    """Node 3 is removed while cut off, so it never receives its removal. Healed, it pre-votes;
    the voters answer "not a member": it goes quiet (NOT_MEMBER) and no one's term moves."""
    async def body():
        async with Cluster() as c:
            lead = await leader_not_3(c)
            c.router.isolate(3)
            await c.rafts[lead].change_membership({1, 2})
            term = c.rafts[lead].metrics.current_term
            # Past the bound the leader keeps replicating to a removed node (10 election
            # timeouts): 3 will not get its removal; meanwhile it pre-votes into the void.
            await asyncio.sleep(FAST.election_timeout_max * 11)
            assert c.rafts[3].metrics.current_term <= term
            assert 3 in c.rafts[3].metrics.membership.voter_ids       # it never got its removal
            c.router.heal(3)
            m = await c.rafts[3].wait(WAIT).state(ServerState.NOT_MEMBER)      # the voters told it
            assert m.current_term <= term
            await asyncio.sleep(FAST.election_timeout_max * 5)      # it stays quiet
            assert c.rafts[3].metrics.state == ServerState.NOT_MEMBER
            assert c.rafts[lead].is_leader() and c.rafts[lead].metrics.current_term == term
            for i in (1, 2):
                assert c.rafts[i].metrics.current_term == term
            with pytest.raises(ForwardToLeader):
                await c.rafts[3].client_write(kv("x", 1))
            # Taken back as a learner, it follows again.
            await c.rafts[lead].add_learner(3, node(3), timeout=WAIT)
            await c.rafts[3].wait(WAIT).state(ServerState.LEARNER)
            assert c.rafts[lead].metrics.current_term == term
    run(body())


def test_removed_node_reachable_gets_its_removal_and_goes_quiet(run):
    async def body():
        async with Cluster() as c:
            lead = await leader_not_3(c)
            term = c.rafts[lead].metrics.current_term
            await c.rafts[lead].change_membership({1, 2})
            m = await c.rafts[3].wait(WAIT).state(ServerState.NOT_MEMBER)
            assert 3 not in m.membership.node_ids()
            await asyncio.sleep(FAST.election_timeout_max * 5)
            assert c.rafts[3].metrics.state == ServerState.NOT_MEMBER
            assert all(c.rafts[i].metrics.current_term == term for i in (1, 2, 3))
            assert c.rafts[lead].metrics.replication.keys() == {1, 2} - {lead}
    run(body())
