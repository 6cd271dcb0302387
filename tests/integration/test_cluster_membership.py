"""Membership changes through the public API: learners, promotion, joint consensus,
replace-all, retain, changes proposed while a change is in flight."""
import asyncio

import pytest

from cluster_support import WAIT, Cluster, node, retry_write
from openraft_fast import ChangeMembershipError, ForwardToLeader, OutcomeUnknown, ServerState
from openraft_fast._core.types import MEMBERSHIP


def membership_entries(c: Cluster, i: int):
    """The membership configs in node i's stored log, in order (tuples of voter sets)."""
    log = c.log(i).log
    out = []
    for idx in range(log.first_index, log.last_index + 1):
        if log.kind_at(idx) == MEMBERSHIP:
            out.append(tuple(set(cfg) for cfg in log.payload_at(idx).configs))
    return out


async def wait_voters(c: Cluster, ids, voters, learners=None):
    for i in ids:
        m = await c.rafts[i].wait(WAIT).members(voters)
        if learners is not None:
            assert m.membership.learner_ids == frozenset(learners), (i, m.membership)


def test_add_learner_blocking_then_promote(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            for i in range(30):
                r = await c.write(lead, f"k{i}", i)
            await c.start_node(4)
            resp = await c.rafts[lead].add_learner(4, node(4), blocking=True)
            assert resp.membership.learner_ids == {4} and resp.membership.voter_ids == {1, 2, 3}
            assert resp.membership.get_node(4) == node(4)
            # Blocking: it is caught up (within replication_lag_threshold) once this returns;
            # it then holds everything written before.
            m4 = await c.rafts[4].wait(WAIT).applied_index(r.log_id.index)
            assert m4.state == ServerState.LEARNER and m4.current_leader == lead
            assert c.sm(4).data == c.sm(lead).data
            assert c.rafts[4].metrics.membership.is_learner(4)
            # Adding it again changes nothing.
            again = await c.rafts[lead].add_learner(4, node(4), blocking=True)
            assert again.membership == resp.membership
            # Promote it.
            resp = await c.rafts[lead].change_membership({1, 2, 3, 4})
            assert resp.membership.voter_ids == {1, 2, 3, 4} and not resp.membership.is_joint
            assert resp.membership.learner_ids == frozenset()
            await wait_voters(c, [1, 2, 3, 4], {1, 2, 3, 4}, learners=())
            m4 = await c.rafts[4].wait(WAIT).state(ServerState.FOLLOWER)
            assert m4.current_leader == lead
            # The log went through the joint config.
            cfgs = membership_entries(c, lead)
            assert cfgs[-2:] == [({1, 2, 3}, {1, 2, 3, 4}), ({1, 2, 3, 4},)], cfgs
            # With one old voter down, a quorum (3 of 4) needs node 4: it votes on entries now.
            others = [i for i in (1, 2, 3) if i != lead]
            await c.stop(others[0])
            r = await c.write(lead, "with4", 1)
            await c.wait_applied(r.log_id.index)
            c.assert_same_data()
    run(body())


def test_add_learner_non_blocking(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            await c.start_node(5)
            resp = await c.rafts[lead].add_learner(5, node(5), blocking=False)
            assert 5 in resp.membership.learner_ids
            r = await c.write(lead, "x", 1)
            m = await c.rafts[5].wait(WAIT).applied_index(r.log_id.index)
            assert m.state == ServerState.LEARNER
            assert c.sm(5).data == {"x": 1}
            # A learner refuses writes and names the leader.
            with pytest.raises(ForwardToLeader) as ei:
                await c.rafts[5].client_write(b"nope")
            assert ei.value.leader_id == lead
    run(body())


def test_replace_all_voters(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            for i in range(10):
                await c.write(lead, f"old{i}", i)
            for i in (4, 5, 6):
                await c.start_node(i)
                await c.rafts[lead].add_learner(i, node(i), blocking=True)
            resp = await c.rafts[lead].change_membership({4, 5, 6}, retain=False)
            assert resp.membership.voter_ids == {4, 5, 6} and not resp.membership.is_joint
            assert resp.membership.node_ids() == {4, 5, 6}
            new_lead = await c.wait_leader([4, 5, 6])
            await wait_voters(c, [4, 5, 6], {4, 5, 6}, learners=())
            cfgs = membership_entries(c, new_lead)
            assert ({1, 2, 3}, {4, 5, 6}) in cfgs and cfgs[-1] == ({4, 5, 6},), cfgs
            # The old voters are out; the new cluster commits and keeps every old write,
            # while the removed nodes are still running (they must not disrupt it).
            await asyncio.sleep(0.3)
            r = await retry_write(c, "new", 1, ids=[4, 5, 6])
            await c.wait_applied(r.log_id.index, [4, 5, 6])
            c.assert_same_data([4, 5, 6], expect={**{f"old{i}": i for i in range(10)}, "new": 1})
            assert all(not c.rafts[i].is_leader() for i in (1, 2, 3))
            # The removed nodes get no more entries once they are out.
            for i in (1, 2, 3):
                assert c.rafts[i].metrics.last_log_index < r.log_id.index
    run(body())


def test_change_membership_retain(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            await c.start_node(4)
            await c.rafts[lead].add_learner(4, node(4))
            gone = next(i for i in (1, 2, 3) if i != lead)
            keep = {1, 2, 3, 4} - {gone}
            resp = await c.rafts[lead].change_membership(keep, retain=True)
            assert resp.membership.voter_ids == keep
            assert resp.membership.learner_ids == {gone}, "retain=True keeps the removed voter as a learner"
            assert resp.membership.get_node(gone) == node(gone)
            # It is a learner once the config without it is committed on it (until then it
            # may still stand for election, as a voter of the committed config).
            m = await c.rafts[gone].wait(WAIT).metrics(
                lambda m: m.state == ServerState.LEARNER and m.membership.voter_ids == keep, "learner of keep")
            assert not m.membership.is_joint
            # It still receives the log as a learner.
            r = await c.write(lead, "to-learner", 1)
            await c.rafts[gone].wait(WAIT).applied_index(r.log_id.index)
            assert c.sm(gone).data == {"to-learner": 1}
            # retain=False removes it for good; it stops getting entries.
            gone2 = next(i for i in keep if i != lead)
            keep2 = keep - {gone2}
            resp = await c.rafts[lead].change_membership(keep2, retain=False)
            assert resp.membership.voter_ids == keep2
            assert resp.membership.node_ids() == keep2 | {gone}, resp.membership
            await wait_voters(c, keep2, keep2, learners={gone})
            r = await c.write(lead, "after", 2)
            await c.wait_applied(r.log_id.index, keep2 | {gone})
            c.assert_same_data(keep2 | {gone})
            assert c.rafts[gone2].metrics.last_log_index < r.log_id.index
            # Removing a learner is a change to the same voter set with retain=False.
            resp = await c.rafts[lead].change_membership(keep2, retain=False)
            assert resp.membership.voter_ids == keep2
    run(body())


def test_change_membership_errors(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            with pytest.raises(ChangeMembershipError) as ei:
                await c.rafts[lead].change_membership(set())
            assert ei.value.reason == "empty"
            with pytest.raises(ChangeMembershipError) as ei:
                await c.rafts[lead].change_membership({1, 2, 9})
            assert ei.value.reason == "learner_not_found"
            follower = next(i for i in (1, 2, 3) if i != lead)
            with pytest.raises(ForwardToLeader) as ei:
                await c.rafts[follower].change_membership({1, 2})
            assert ei.value.leader_id == lead
            with pytest.raises(ForwardToLeader):
                await c.rafts[follower].add_learner(7, node(7))
            # No-op: the current voters.
            before = c.rafts[lead].metrics.last_log_index
            resp = await c.rafts[lead].change_membership({1, 2, 3})
            assert resp.membership.voter_ids == {1, 2, 3}
            assert c.rafts[lead].metrics.last_log_index == before
            await c.wait_leader()
    run(body())


def test_change_while_joint_in_progress_then_extended_joint(run):
    """A change proposed while the joint config is not committed is refused ("in_progress");
    once the joint config is committed, a new goal moves on from it (extended joint)."""
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            for i in (4, 5):
                await c.start_node(i)
                await c.rafts[lead].add_learner(i, node(i))
            others = sorted({1, 2, 3} - {lead})
            goal_a = {lead, others[0], 4}
            goal_b = {lead, 4, 5}
            L = c.rafts[lead]
            # Slow links: the joint config takes a round trip of 40 ms to commit (a round trip
            # longer than the leader lease would make the leader refuse changes: check-quorum).
            c.router.set_delay(0.02)
            task_a = asyncio.ensure_future(L.change_membership(goal_a))
            await L.wait(WAIT).metrics(lambda m: m.membership.is_joint, "joint appended")
            m = L.metrics
            assert m.committed is None or m.committed.index < m.membership_log_id.index
            with pytest.raises(ChangeMembershipError) as ei:
                await L.change_membership(goal_b)
            assert ei.value.reason == "in_progress"
            with pytest.raises(ChangeMembershipError) as ei:
                await L.add_learner(6, node(6))
            assert ei.value.reason == "in_progress"
            # Stop the first caller before it proposes the uniform step: the joint config
            # commits on its own and stays.
            task_a.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task_a
            joint = await L.wait(WAIT).metrics(
                lambda m: m.membership.is_joint and m.committed is not None
                and m.committed.index >= m.membership_log_id.index, "joint committed")
            assert set(joint.membership.configs) == {frozenset({1, 2, 3}), frozenset(goal_a)}
            c.router.set_delay(0.0)
            resp = await L.change_membership(goal_b)
            assert resp.membership.voter_ids == goal_b and not resp.membership.is_joint
            cfgs = membership_entries(c, lead)
            assert cfgs[-3:] == [({1, 2, 3}, goal_a), (goal_a, goal_b), (goal_b,)], cfgs
            await wait_voters(c, goal_b, goal_b)
            r = await c.write(lead, "ext", 1)
            await c.wait_applied(r.log_id.index, goal_b)
            c.assert_same_data(goal_b, expect={"ext": 1})
    run(body())


def test_concurrent_change_membership_is_coherent(run):
    """Two changes racing: each either completes to its goal or is refused "in_progress";
    the cluster ends in a uniform config every node agrees on, and it still commits."""
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            for i in (4, 5):
                await c.start_node(i)
                await c.rafts[lead].add_learner(i, node(i))
            goals = [{1, 2, 3, 4}, {1, 2, 3, 5}]
            L = c.rafts[lead]
            res = await asyncio.gather(*(L.change_membership(g) for g in goals), return_exceptions=True)
            ok = []
            for g, x in zip(goals, res):
                if isinstance(x, ChangeMembershipError):
                    assert x.reason == "in_progress", x
                else:
                    assert not isinstance(x, BaseException), x
                    ok.append(g)
            assert ok, f"both changes were refused: {res}"
            final = L.metrics.membership
            assert not final.is_joint and set(final.voter_ids) in ok, (final, res)
            await wait_voters(c, final.voter_ids, final.voter_ids)
            r = await c.write(lead, "after", 1)
            await c.wait_applied(r.log_id.index, final.voter_ids)
            c.assert_same_data(final.voter_ids)
    run(body())


def test_membership_call_of_an_isolated_leader_fails_within_a_bound(run):
    """A membership entry appended by a leader that is then cut off never commits: the call
    must not wait forever. Check-quorum steps the leader down and the call fails with
    OutcomeUnknown("leadership_lost") (the entry may still be committed by a later leader)."""
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            await c.start_node(4)
            # Cut off at once: the leader still holds its lease, so it appends the entry, but
            # no follower receives it.
            c.router.isolate(lead)
            call = asyncio.ensure_future(c.rafts[lead].add_learner(4, node(4), blocking=False))
            bound = 3 * c.config.election_timeout_max
            with pytest.raises(OutcomeUnknown) as ei:
                await asyncio.wait_for(call, bound + WAIT)
            assert ei.value.reason in (OutcomeUnknown.LEADERSHIP_LOST, OutcomeUnknown.TRUNCATED)
            assert not c.rafts[lead].is_leader()
    run(body())
