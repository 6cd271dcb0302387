"""Forwarded writes: client_write(data, forward=True) on any node, through the leader, with the
outcome rules intact (refused -> retried, then ForwardToLeader; maybe applied -> OutcomeUnknown)."""
import asyncio

import msgpack
import pytest

from openraft_fast import ApplyError, ForwardToLeader, NetworkError, Node, OutcomeUnknown
from openraft_fast._core.messages import FORWARD_OK, ForwardRequest
from openraft_fast.runtime.forward import ForwardedBatchResponses
from openraft_fast.storage import MemStateMachine

from cluster_support import FAST, WAIT, Cluster, kv


class RefusingStateMachine(MemStateMachine):
    """Refuses (ApplyError) every command whose key starts with "bad"."""

    async def apply(self, entries):
        out = await super().apply(entries)
        for i, (kind, payload) in enumerate(zip(entries.kinds, entries.payloads)):
            if kind == 0 and msgpack.unpackb(payload)[0].startswith("bad"):
                out[i] = ApplyError(f"refused {msgpack.unpackb(payload)[0]}", "Refused", {"at": entries.start + i})
        return out


def _followers(c, leader):
    return [i for i in c.live() if i != leader]


def test_a_follower_forwards_a_write_and_gets_the_leaders_answer(run):
    async def body():
        async with Cluster() as c:
            leader = await c.start([1, 2, 3])
            f = _followers(c, leader)[0]
            with pytest.raises(ForwardToLeader):
                await c.rafts[f].client_write(kv("a", 1))
            r1 = await c.rafts[f].client_write(kv("a", 1), forward=True)
            r2 = await c.rafts[f].client_write(kv("a", 2), forward=True)
            assert r1.data is None and r2.data == 1            # MemStateMachine answers the previous value
            assert r2.log_id.index == r1.log_id.index + 1
            assert r2.log_id == c.rafts[leader].metrics.last_applied or \
                r2.log_id.index <= c.rafts[leader].metrics.last_applied.index
            assert r1.log_id.leader_id == c.rafts[leader].metrics.vote.leader_id
            # the leader's own forward=True is a plain write
            r3 = await c.rafts[leader].client_write(kv("b", 3), forward=True)
            assert r3.log_id.index == r2.log_id.index + 1
            await c.wait_applied(r3.log_id.index)
            c.assert_same_data(expect={"a": 2, "b": 3})
            assert c.router.counts["forward"] == 2
    run(body())


def test_a_forwarded_batch_keeps_its_order_and_log_ids(run):
    async def body():
        async with Cluster() as c:
            leader = await c.start([1, 2, 3])
            f = _followers(c, leader)[0]
            rs = await c.rafts[f].client_write_many([kv("k", i) for i in range(50)], forward=True)
            assert isinstance(rs, ForwardedBatchResponses) and len(rs) == 50
            assert rs.data == [None] + list(range(49))
            ids = [r.log_id.index for r in rs]
            assert ids == list(range(ids[0], ids[0] + 50))
            assert rs.last_log_id.index == ids[-1]
            await c.wait_applied(ids[-1])
            c.assert_same_data(expect={"k": 49})
    run(body())


def test_an_apply_error_reaches_a_forwarding_caller_and_the_cluster_goes_on(run):
    async def body():
        async with Cluster() as c:
            for i in (1, 2, 3):
                await c.start_node(i, sm=RefusingStateMachine())
            await c.rafts[1].initialize({i: Node(f"local:{i}") for i in (1, 2, 3)})
            leader = await c.wait_leader()
            f = _followers(c, leader)[0]
            with pytest.raises(ApplyError) as ei:
                await c.rafts[f].client_write(kv("bad1", 1), forward=True)
            assert ei.value.kind == "Refused" and ei.value.message == "refused bad1"
            assert ei.value.data["at"] > 0
            rs = await c.rafts[f].client_write_many([kv("ok", 1), kv("bad2", 2), kv("ok", 3)], forward=True)
            assert rs.data[0] is None and rs.data[2] == 1
            assert rs.data[1] == ApplyError("refused bad2", "Refused", {"at": rs.log_id(1).index})
            r = await c.rafts[f].client_write(kv("ok", 4), forward=True)
            assert r.data == 3
            await c.wait_applied(r.log_id.index)
    run(body())


def test_forwarding_follows_a_leader_change(run):
    async def body():
        async with Cluster() as c:
            leader = await c.start([1, 2, 3])
            f = _followers(c, leader)[0]
            await c.rafts[f].client_write(kv("x", 1), forward=True)
            await c.stop(leader)
            # Refusals (no leader, the dead one unreachable) are retried inside the call.
            r = await c.rafts[f].client_write(kv("x", 2), forward=True, timeout=WAIT)
            assert r.data == 1
            new = await c.wait_leader()
            assert new != leader
            assert r.log_id.leader_id.term > 1
    run(body())


def test_no_leader_within_the_timeout_raises_forward_to_leader(run):
    async def body():
        async with Cluster() as c:
            leader = await c.start([1, 2, 3])
            f = _followers(c, leader)[0]
            for i in c.live():
                if i != f:
                    c.router.isolate(i)
            loop = asyncio.get_running_loop()
            t = loop.time()
            with pytest.raises(ForwardToLeader):
                await c.rafts[f].client_write(kv("y", 1), forward=True, timeout=0.5)
            assert loop.time() - t < 0.5 + FAST.election_timeout_max * 3 + 1.0     # bounded, never forever
            # never appended anywhere
            for i in c.live():
                assert "y" not in c.sm(i).data
            c.router.heal()
    run(body())


def test_a_lost_answer_is_outcome_unknown(run):
    async def body():
        async with Cluster() as c:
            leader = await c.start([1, 2, 3])
            f = _followers(c, leader)[0]
            # the request gets through, the answer does not: the write may have applied
            real = c.router._return

            def drop_forward_answers(src, dst, inner, fut):
                if src == leader and dst == f and not inner.exception() and type(inner.result()).__name__ == "ForwardResponse":
                    fut.set_exception(NetworkError("answer lost"))
                    return
                real(src, dst, inner, fut)
            c.router._return = drop_forward_answers
            c.router.set_delay(0.001)          # the faulty path, where answers can be lost
            with pytest.raises(OutcomeUnknown) as ei:
                await c.rafts[f].client_write(kv("z", 1), forward=True)
            assert ei.value.reason == OutcomeUnknown.NO_RESPONSE
            c.router._return = real
            c.router.heal()
            # it did apply (exactly once)
            await c.write(leader, "after", 1)
            await c.wait_applied(c.rafts[leader].metrics.last_applied.index)
            assert c.sm(leader).data["z"] == 1
    run(body())


def test_a_malformed_forward_request_fails_that_call_only(run):
    async def body():
        async with Cluster() as c:
            leader = await c.start([1, 2, 3])
            for bad in (b"\xc1", msgpack.packb([]), msgpack.packb(["text"]), msgpack.packb([b"a", b"b"])):
                with pytest.raises(Exception) as ei:
                    await c.rafts[leader].forward(ForwardRequest(False, bad))
                assert "malformed forwarded write" in str(ei.value)
            resp = await c.rafts[leader].forward(ForwardRequest(False, msgpack.packb([kv("m", 1)])))
            assert resp.result == FORWARD_OK
    run(body())


def test_a_follower_stops_naming_a_leader_it_no_longer_hears(run):
    async def body():
        # The lease (0.05 s) runs out long before the election timeout (1-2 s): only the lease
        # rule can make the follower stop naming the isolated leader.
        cfg = FAST.replace(election_timeout_min=1.0, election_timeout_max=2.0, leader_lease=0.05)
        async with Cluster(cfg) as c:
            leader = await c.start([1, 2, 3])
            f = _followers(c, leader)[0]
            with pytest.raises(ForwardToLeader) as ei:
                await c.rafts[f].client_write(kv("q", 1))
            assert ei.value.leader_id == leader
            c.router.isolate(leader)
            await asyncio.sleep(0.2)
            with pytest.raises(ForwardToLeader) as ei:
                await c.rafts[f].client_write(kv("q", 1))
            assert ei.value.leader_id is None
            assert c.rafts[f].current_leader() is None
            c.router.heal()
            await c.rafts[f].wait(WAIT).current_leader(leader)
    run(body())
