"""Failures through the public API: a dead leader, restarts from the stores, leader
transfer, a faulty network, and storage failures (fatal for the node, clean for the rest)."""
import asyncio

import pytest

from cluster_support import FAST, WAIT, Cluster, kv, node, retry_write
from openraft_fast import (Fatal, ForwardToLeader, OutcomeUnknown, RaftError, ServerState, Stopped, StorageError,
                           Timeout)
from openraft_fast.storage import MemLogStore, MemStateMachine


async def wait_state(raft, state, timeout=WAIT):
    """Poll the metrics (a stopping node fails its waiters, so wait() cannot see SHUTDOWN)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while raft.metrics.state != state:
        if loop.time() > deadline:
            raise AssertionError(f"node {raft.node_id} is {raft.metrics.state.name}, not {state.name}, "
                                 f"after {timeout}s")
        await asyncio.sleep(0.01)
    return raft.metrics


def test_kill_leader_new_leader_no_acked_write_lost(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3, 4, 5])
            acked = {}
            for i in range(30):
                await c.write(lead, f"k{i % 12}", i)
                acked[f"k{i % 12}"] = i
            old_term = c.rafts[lead].metrics.current_term
            # Writes in flight when the leader dies: their outcome is unknown, never garbage.
            inflight = [c.rafts[lead].client_write(kv("inflight", i)) for i in range(5)]
            await c.stop(lead)
            res = await asyncio.gather(*inflight, return_exceptions=True)
            assert all(isinstance(x, Stopped) or not isinstance(x, BaseException) for x in res), res
            new = await c.wait_leader(exclude=[lead])
            assert new != lead
            assert c.rafts[new].metrics.current_term > old_term
            await c.rafts[new].ensure_linearizable()
            data = dict(c.sm(new).data)
            assert data.pop("inflight", 0) in range(5)
            assert data == acked, "an acknowledged write was lost"
            # The survivors keep serving; kill the second leader too (3 of 5 left).
            r = await c.write(new, "after", 1)
            await c.stop(new)
            third = await c.wait_leader(exclude=[lead, new])
            await c.rafts[third].ensure_linearizable()
            assert c.sm(third).data["after"] == 1
            r = await c.write(third, "third", 3)
            await c.wait_applied(r.log_id.index)
            c.assert_same_data()
    run(body())


def test_restart_node_from_its_stores(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            f = next(i for i in (1, 2, 3) if i != lead)
            for i in range(10):
                r = await c.write(lead, f"a{i}", i)
            await c.rafts[f].wait(WAIT).applied_index(r.log_id.index)
            vote_before = c.rafts[f].metrics.vote
            await c.stop(f)
            for i in range(10):
                r = await c.write(lead, f"b{i}", i)
            raft = await c.restart(f)
            # It comes back with what it persisted ...
            m = raft.metrics
            assert m.vote >= vote_before
            assert m.last_log_index >= 11 and m.last_applied is not None
            assert m.membership.voter_ids == {1, 2, 3}
            # ... rejoins and catches up.
            await raft.wait(WAIT).current_leader(lead)
            await raft.wait(WAIT).applied_index(r.log_id.index)
            assert (await raft.wait(WAIT).state(ServerState.FOLLOWER)).current_leader == lead
            c.assert_same_data()
            # Restart the leader: the others elect a new one, the old one rejoins as follower.
            await c.stop(lead)
            new = await c.wait_leader(exclude=[lead])
            r = await c.write(new, "c", 1)
            old = await c.restart(lead)
            await old.wait(WAIT).current_leader(new)
            m = await old.wait(WAIT).applied_index(r.log_id.index)
            assert m.state == ServerState.FOLLOWER
            assert await c.wait_leader() == new
            r = await c.write(new, "d", 1)
            await c.wait_applied(r.log_id.index)
            c.assert_same_data()
    run(body())


def test_restart_whole_cluster_from_stores(run):
    async def body():
        async with Cluster(FAST.replace(snapshot_policy=15)) as c:
            lead = await c.start([1, 2, 3])
            expect = {}
            for i in range(40):
                r = await c.write(lead, f"k{i % 9}", i)
                expect[f"k{i % 9}"] = i
            await c.wait_applied(r.log_id.index)
            for i in (1, 2, 3):
                await c.stop(i)
            for i in (1, 2, 3):
                await c.restart(i)
            await c.wait_leader()
            r = await retry_write(c, "after", 1)
            expect["after"] = 1
            await c.wait_applied(r.log_id.index)
            c.assert_same_data(expect=expect)
            assert r.log_id.index > 40
    run(body())


def test_cluster_restarted_from_its_stores_elects_and_accepts_writes(run):
    """Every node restarts from its stores. The old leader stands for election at once (under
    a new leader id, never re-using the old one); whoever wins takes writes, and nothing
    written before is lost."""
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            r = await c.write(lead, "a", 1)
            await c.wait_applied(r.log_id.index)
            for i in (1, 2, 3):
                await c.stop(i)
            for i in (1, 2, 3):
                await c.restart(i)
            new = await c.wait_leader([1, 2, 3])
            m = c.rafts[new].metrics
            assert m.vote.leader_id.term > r.log_id.leader_id.term
            r = await asyncio.wait_for(c.write(new, "b", 2), WAIT)
            await c.wait_applied(r.log_id.index)
            c.assert_same_data(expect={"a": 1, "b": 2})
    run(body())


def test_transfer_leader(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            await c.start_node(4)
            await c.rafts[lead].add_learner(4, node(4))
            for i in range(10):
                r = await c.write(lead, f"k{i}", i)
            to = next(i for i in (1, 2, 3) if i != lead)
            await c.rafts[lead].trigger.transfer_leader(to)
            m = await c.rafts[to].wait(WAIT).state(ServerState.LEADER)
            assert await c.wait_leader([1, 2, 3]) == to
            assert m.current_term > r.log_id.leader_id.term
            old = await c.rafts[lead].wait(WAIT).current_leader(to)
            assert old.state == ServerState.FOLLOWER
            with pytest.raises(ForwardToLeader) as ei:
                await c.rafts[lead].client_write(kv("x", 1))
            assert ei.value.leader_id == to
            r = await c.write(to, "after", 1)
            await c.rafts[4].wait(WAIT).current_leader(to)
            await c.wait_applied(r.log_id.index)
            c.assert_same_data(expect={**{f"k{i}": i for i in range(10)}, "after": 1})
            # To itself: nothing happens. To a learner: refused.
            await c.rafts[to].trigger.transfer_leader(to)
            assert c.rafts[to].is_leader()
            with pytest.raises(RaftError):
                await c.rafts[to].trigger.transfer_leader(4)
            # And back.
            await c.rafts[to].trigger.transfer_leader(lead)
            await c.rafts[lead].wait(WAIT).state(ServerState.LEADER)
            assert await c.wait_leader([1, 2, 3]) == lead
            await c.write(lead, "back", 1)
    run(body())


def test_faulty_network_still_commits(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            before = dict(c.router.counts)
            c.router.set_drop(0.15)
            c.router.set_delay(0.004)
            expect = {}
            for i in range(40):
                await retry_write(c, f"k{i % 15}", i, timeout=10.0)
                expect[f"k{i % 15}"] = i
            c.router.heal()
            lead = await c.wait_leader()
            r = await retry_write(c, "done", 1)
            expect["done"] = 1
            await c.wait_applied(r.log_id.index)
            c.assert_same_data(expect=expect)
            for kind in ("append", "heartbeat", "vote"):
                assert c.router.counts[kind] >= before.get(kind, 0), kind
            assert c.router.counts["append"] > before.get("append", 0)
            assert c.router.counts["heartbeat"] > before.get("heartbeat", 0)
            # A cut link: the leader cannot reach one follower; the other makes the quorum.
            f1, f2 = (i for i in (1, 2, 3) if i != lead)
            c.router.cut(lead, f1)
            for i in range(10):
                r = await c.write(lead, f"cut{i}", i)
            await c.rafts[f2].wait(WAIT).applied_index(r.log_id.index)
            assert c.rafts[f1].metrics.last_log_index < r.log_id.index
            c.router.restore(lead, f1)
            await c.wait_applied(r.log_id.index)
            c.assert_same_data()
    run(body())


class FailingLogStore(MemLogStore):
    """A MemLogStore whose calls named in `fail` raise (after a suspension if `suspend`)."""

    def __init__(self, suspend: bool = False) -> None:
        super().__init__()
        self.fail = set()
        self.suspend = suspend

    async def save_vote(self, vote):
        if self.suspend:
            await asyncio.sleep(0.001)
        if "save_vote" in self.fail:
            raise OSError("disk failure in save_vote")
        await super().save_vote(vote)

    def append(self, entries, on_flushed):
        if "append" in self.fail:
            raise OSError("disk failure in append")
        super().append(entries, on_flushed)


class FailingStateMachine(MemStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.fail = False

    async def apply(self, entries):
        if self.fail:
            await asyncio.sleep(0.001)
            raise RuntimeError("state machine failure in apply")
        return await super().apply(entries)


async def start_with(c: Cluster, special: dict):
    """Start nodes 1-3 (node i with the stores in `special`, if any), initialize from node 1
    and return the leader."""
    for i in (1, 2, 3):
        log_store, sm = special.get(i, (None, None))
        await c.start_node(i, log_store, sm)
    await c.rafts[1].initialize({i: node(i) for i in (1, 2, 3)})
    return await c.wait_leader()


def assert_storage_fatal(m, what: str):
    assert m.state == ServerState.SHUTDOWN
    err = m.running_state
    assert isinstance(err, Fatal) and not isinstance(err, Stopped), f"running_state is {err!r}"
    assert what in str(err), f"running_state {err!r} does not say what failed ({what})"
    cause = err if isinstance(err, StorageError) else err.__cause__
    assert isinstance(cause, StorageError), f"the cause of {err!r} is {cause!r}, not a StorageError"


def test_follower_append_failure_is_fatal_and_clean(run):
    async def body():
        async with Cluster() as c:
            bad = FailingLogStore()
            await start_with(c, {3: (bad, None)})
            lead = await c.wait_leader()
            if lead == 3:
                await c.rafts[3].trigger.transfer_leader(1)
                lead = await c.wait_leader()
                assert lead != 3
            r = await c.write(lead, "a", 1)
            await c.wait_applied(r.log_id.index)
            waiter = asyncio.ensure_future(c.rafts[3].wait(WAIT).applied_index(10_000))
            await asyncio.sleep(0)
            bad.fail.add("append")
            r = await c.write(lead, "b", 2)             # committed by the leader and the other follower
            m = await wait_state(c.rafts[3], ServerState.SHUTDOWN)
            assert_storage_fatal(m, "append")
            with pytest.raises(Fatal) as ei:
                await asyncio.wait_for(waiter, WAIT)
            assert not isinstance(ei.value, (Stopped, Timeout))
            with pytest.raises(Fatal):
                await c.rafts[3].client_write(kv("x", 1))
            with pytest.raises(Fatal):
                await c.rafts[3].ensure_linearizable()
            assert not c.rafts[3].is_leader()
            # The others keep serving.
            for i in range(5):
                r = await c.write(lead, f"c{i}", i)
            await c.wait_applied(r.log_id.index, [1, 2])
            c.assert_same_data([1, 2], expect={"a": 1, "b": 2, **{f"c{i}": i for i in range(5)}})
            assert c.rafts[lead].is_leader()
    run(body())


def test_leader_append_failure_fails_pending_writes(run):
    async def body():
        async with Cluster() as c:
            stores = {i: (FailingLogStore(), None) for i in (1, 2, 3)}
            lead = await start_with(c, stores)
            acked = {}
            for i in range(10):
                await c.write(lead, f"k{i}", i)
                acked[f"k{i}"] = i
            stores[lead][0].fail.add("append")
            futs = [c.rafts[lead].client_write(kv("lost", i)) for i in range(5)]
            res = await asyncio.wait_for(asyncio.gather(*futs, return_exceptions=True), WAIT)
            for x in res:
                # Appended in memory when the store failed: the node cannot know their outcome.
                assert isinstance(x, OutcomeUnknown), f"pending write ended with {x!r}"
                assert isinstance(x.__cause__, Fatal) and not isinstance(x.__cause__, Stopped)
                assert "append" in str(x)
            assert_storage_fatal(c.rafts[lead].metrics, "append")
            # The other two elect a leader and keep every acknowledged write.
            new = await c.wait_leader(exclude=[lead])
            await c.rafts[new].ensure_linearizable()
            assert c.sm(new).data == acked
            r = await c.write(new, "after", 1)
            await c.wait_applied(r.log_id.index, [i for i in (1, 2, 3) if i != lead])
    run(body())


@pytest.mark.parametrize("suspend", [False, True], ids=["inline", "suspended"])
def test_save_vote_failure_is_fatal(run, suspend):
    async def body():
        # Without pre-vote: a cut-off node then stands at once, saving a vote (with pre-vote it
        # would not save one until a quorum granted its pre-vote).
        async with Cluster(FAST.replace(enable_pre_vote=False)) as c:
            bad = FailingLogStore(suspend=suspend)
            await start_with(c, {3: (bad, None)})
            lead = await c.wait_leader()
            if lead == 3:
                await c.rafts[3].trigger.transfer_leader(1)
                lead = await c.wait_leader()
            term = c.rafts[lead].metrics.current_term
            r = await c.write(lead, "a", 1)
            bad.fail.add("save_vote")
            # Cut off, node 3 stands for election once the leader's lease has passed: it must
            # save its vote first, which fails. (trigger.elect() is ignored inside the lease.)
            c.router.isolate(3)
            m = await wait_state(c.rafts[3], ServerState.SHUTDOWN)
            assert_storage_fatal(m, "save_vote")
            c.router.heal(3)
            # Its vote request was never sent (nothing is sent before the vote is durable),
            # so the leader was not disturbed.
            assert c.rafts[lead].is_leader() and c.rafts[lead].metrics.current_term == term
            r = await c.write(lead, "b", 2)
            await c.wait_applied(r.log_id.index, [1, 2])
            c.assert_same_data([1, 2], expect={"a": 1, "b": 2})
    run(body())


def test_state_machine_failure_is_fatal(run):
    async def body():
        async with Cluster() as c:
            sm = FailingStateMachine()
            await start_with(c, {3: (None, sm)})
            lead = await c.wait_leader()
            if lead == 3:
                await c.rafts[3].trigger.transfer_leader(1)
                lead = await c.wait_leader()
            await c.write(lead, "a", 1)
            sm.fail = True
            r = await c.write(lead, "b", 2)
            m = await wait_state(c.rafts[3], ServerState.SHUTDOWN)
            assert_storage_fatal(m, "apply")
            await c.wait_applied(r.log_id.index, [1, 2])
            r = await c.write(lead, "c", 3)
            await c.wait_applied(r.log_id.index, [1, 2])
            c.assert_same_data([1, 2], expect={"a": 1, "b": 2, "c": 3})
    run(body())


def test_pre_vote_isolated_follower_does_not_disrupt(run):
    """With enable_pre_vote, a follower cut off for many election timeouts does not raise its
    term, and healing it does not depose the leader."""
    async def body():
        async with Cluster(FAST.replace(enable_pre_vote=True)) as c:
            lead = await c.start([1, 2, 3])
            f = next(i for i in (1, 2, 3) if i != lead)
            term = c.rafts[lead].metrics.current_term
            c.router.isolate(f)
            for i in range(5):
                await c.write(lead, f"k{i}", i)
            await asyncio.sleep(c.config.election_timeout_max * 4)
            assert c.rafts[f].metrics.current_term == term, "pre-vote: an isolated node must not raise its term"
            assert c.rafts[f].metrics.state != ServerState.LEADER
            c.router.heal(f)
            r = await c.write(lead, "healed", 1)
            await c.rafts[f].wait(WAIT).applied_index(r.log_id.index)
            await asyncio.sleep(c.config.election_timeout_max * 2)
            assert await c.wait_leader() == lead
            assert c.rafts[lead].metrics.current_term == term
            c.assert_same_data()
    run(body())


def test_transfer_to_unreachable_node_gives_up(run):
    """A transfer to a node that cannot take over lapses after an election timeout: the
    leader keeps leading and takes writes again."""
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            to = next(i for i in (1, 2, 3) if i != lead)
            c.router.isolate(to)
            await c.rafts[lead].trigger.transfer_leader(to)
            r = await retry_write(c, "still", 1, timeout=WAIT, ids=[lead])
            assert c.rafts[lead].is_leader()
            assert r.log_id.leader_id.node_id == lead
            c.router.heal(to)
            await c.rafts[to].wait(WAIT).applied_index(r.log_id.index)
            c.assert_same_data(expect={"still": 1})
    run(body())
