"""A cluster through the public API: initialize, election, writes, metrics and wait(),
config validation, shutdown. Every test runs on uvloop and on stock asyncio (conftest)."""
import asyncio

import msgpack
import pytest

from cluster_support import FAST, WAIT, Cluster, kv, node
from openraft_fast import (Config, ConfigError, Fatal, ForwardToLeader, InitializeError, InvalidArgumentType, LogId,
                           OutcomeUnknown, Raft, RaftError, RaftMetrics, ServerState, Stopped, Timeout)
from openraft_fast.network import LocalRouter
from openraft_fast.storage import MemLogStore, MemStateMachine


def test_initialize_and_second_initialize_fails(run):
    async def body():
        async with Cluster() as c:
            for i in (1, 2, 3):
                await c.start_node(i)
            # Before initialize: nobody leads, nobody is a voter, writes are refused.
            await asyncio.sleep(0.3)
            for i in (1, 2, 3):
                m = c.rafts[i].metrics
                assert m.state == ServerState.NOT_MEMBER and m.current_leader is None, m
                assert m.last_log_index == 0
            with pytest.raises(ForwardToLeader):
                await c.rafts[1].client_write(kv("a", 1))
            # A node that is not a voter of the membership cannot initialize it.
            with pytest.raises(InitializeError):
                await c.rafts[3].initialize({1: node(1), 2: node(2)})
            await c.rafts[1].initialize({i: node(i) for i in (1, 2, 3)})
            lead = await c.wait_leader()
            for i in (1, 2, 3):
                m = await c.rafts[i].wait(WAIT).members({1, 2, 3})
                assert m.membership.nodes == {i: node(i) for i in (1, 2, 3)}
            # Once initialized (or joined), initialize is refused everywhere.
            for i in (1, 2, 3):
                with pytest.raises(InitializeError):
                    await c.rafts[i].initialize({i: node(i) for i in (1, 2, 3)})
            assert await c.wait_leader() == lead
    run(body())


def test_initialize_every_node_at_once_without_elect_elects_one_leader(run):
    # elect=False: no node campaigns at once; the first election timer to fire wins, and the
    # first write through it stays committed (nobody deposes that leader in the same term).
    async def body():
        async with Cluster() as c:
            for i in (1, 2, 3):
                await c.start_node(i)
            with pytest.raises(InvalidArgumentType):
                await c.rafts[1].initialize([1, 2, 3], elect=1)
            for i in (1, 2, 3):
                await c.rafts[i].initialize({j: node(j) for j in (1, 2, 3)}, elect=False)
                assert c.rafts[i].metrics.current_leader is None
            lead = await c.wait_leader()
            await c.write(lead, "first", 1)
            for i in (1, 2, 3):
                m = await c.rafts[i].wait(WAIT).applied_index(c.rafts[lead].metrics.last_log_index)
                assert m.current_leader == lead
    run(body())


def test_initialize_single_node_cluster(run):
    async def body():
        async with Cluster() as c:
            await c.start_node(1)
            await c.rafts[1].initialize([1])            # ids only: default Node()
            m = await c.rafts[1].wait(WAIT).state(ServerState.LEADER)
            assert m.current_leader == 1 and m.membership.voter_ids == {1}
            r = await c.write(1, "solo", 1)
            assert r.log_id.index == m.last_log_index + 1
            assert c.sm(1).data == {"solo": 1}
    run(body())


def test_election_one_leader_others_follow(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3, 4, 5])
            await asyncio.sleep(0.3)            # several heartbeat rounds: the leadership holds
            assert await c.wait_leader() == lead
            ms = {i: c.rafts[i].metrics for i in c.rafts}
            assert [i for i, m in ms.items() if m.state == ServerState.LEADER] == [lead]
            term = ms[lead].current_term
            assert ms[lead].vote.committed and ms[lead].vote.leader_id.node_id == lead
            for i, m in ms.items():
                assert m.current_leader == lead, (i, m)
                assert m.current_term == term, (i, m)
                if i != lead:
                    assert m.state == ServerState.FOLLOWER, (i, m)
                assert c.rafts[i].current_leader() == lead
                assert c.rafts[i].is_leader() == (i == lead)
    run(body())


def test_write_then_read_back_on_every_node(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            expect = {}
            last = None
            for i in range(20):
                r = await c.write(lead, f"k{i % 7}", i)
                # MemStateMachine answers the previous value of the key.
                assert r.data == expect.get(f"k{i % 7}")
                assert last is None or r.log_id.index == last.index + 1
                last = r.log_id
                expect[f"k{i % 7}"] = i
            # Deletes answer the removed value.
            r = await c.rafts[lead].client_write(msgpack.packb(["k0"]))
            assert r.data == expect.pop("k0")
            await c.wait_applied(r.log_id.index)
            c.assert_same_data(expect=expect)
            for i in (1, 2, 3):
                m = c.rafts[i].metrics
                assert m.last_applied == r.log_id and m.committed is not None and m.committed >= r.log_id
    run(body())


def test_client_write_many(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            rs = await c.rafts[lead].client_write_many([kv(f"b{i}", i) for i in range(50)])
            assert len(rs) == 50
            idx = [rs.log_id(i).index for i in range(50)]
            assert idx == list(range(idx[0], idx[0] + 50))
            assert rs.last_log_id == rs.log_id(49)
            assert [x.data for x in rs] == [None] * 50
            # A second batch overwriting the keys answers the old values; single writes and
            # batches submitted together keep their order.
            f1 = c.rafts[lead].client_write(kv("b0", "single"))
            f2 = c.rafts[lead].client_write_many([kv("b0", "batch"), kv("b1", "batch")])
            r1, r2 = await asyncio.gather(f1, f2)
            assert r1.data == 0 and r2[0].data == "single" and r2[1].data == 1
            assert r2.log_id(0).index == r1.log_id.index + 1
            empty = await c.rafts[lead].client_write_many([])
            assert len(empty) == 0
            # A batch larger than max_payload_entries goes out in several messages.
            big = await c.rafts[lead].client_write_many([kv(f"big{i}", i) for i in range(3 * 300 + 7)])
            assert len(big) == 907 and big.last_log_id.index == big.log_id(0).index + 906
            await c.wait_applied(big.last_log_id.index)
            want = {f"b{i}": i for i in range(50)}
            want.update(b0="batch", b1="batch")
            want.update({f"big{i}": i for i in range(907)})
            c.assert_same_data(expect=want)
    run(body())


def test_write_on_follower_forwards_to_leader(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            for f in (i for i in (1, 2, 3) if i != lead):
                with pytest.raises(ForwardToLeader) as ei:
                    await c.rafts[f].client_write(kv("x", 1))
                assert ei.value.leader_id == lead
                assert ei.value.leader_node == node(lead)
                with pytest.raises(ForwardToLeader) as ei:
                    await c.rafts[f].client_write_many([kv("x", 1)])
                assert ei.value.leader_id == lead
                with pytest.raises(ForwardToLeader) as ei:
                    await c.rafts[f].trigger.transfer_leader(f)
                assert ei.value.leader_id == lead
            assert all(c.sm(i).data == {} for i in (1, 2, 3))
    run(body())


def test_metrics_and_wait(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            followers = [i for i in (1, 2, 3) if i != lead]
            r = None
            for i in range(5):
                r = await c.write(lead, f"m{i}", i)
            idx = r.log_id.index
            for i in (1, 2, 3):
                w = c.rafts[i].wait(WAIT)
                m = await w.log(idx)
                assert isinstance(m, RaftMetrics) and m.id == i
                assert m.last_log_index >= idx and m.last_applied.index >= idx
                assert (await w.applied_index(idx)).last_applied == r.log_id
                assert (await w.current_leader(lead)).current_leader == lead
                assert (await w.members({1, 2, 3})).membership.voter_ids == {1, 2, 3}
                m = await w.metrics(lambda m: m.committed is not None and m.committed.index >= idx, "committed")
                assert m.committed == r.log_id and m.last_log_id == r.log_id
                assert m.vote == c.rafts[lead].metrics.vote
                assert m.membership_log_id == LogId(m.membership_log_id.leader_id, 1)
                assert m.snapshot is None and m.purged is None and m.running_state is None
            # The leader reports per-target replication; followers do not.
            m = await c.rafts[lead].wait(WAIT).metrics(
                lambda m: m.replication and all(m.replication.get(f) == r.log_id for f in followers), "replication")
            assert set(m.replication) == set(followers)
            for f in followers:
                assert c.rafts[f].metrics.replication is None
            assert (await c.rafts[lead].wait(WAIT).state(ServerState.LEADER)).state == ServerState.LEADER
            # A wait that cannot be satisfied raises Timeout (a RaftError) in time.
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            with pytest.raises(Timeout):
                await c.rafts[followers[0]].wait(0.2).applied_index(idx + 1000)
            with pytest.raises(RaftError):
                await c.rafts[followers[0]].wait(0.1).state(ServerState.LEADER)
            with pytest.raises(Timeout):
                await c.rafts[lead].wait(0.1).members({1, 2})
            assert loop.time() - t0 < 3.0
            # A waiter is woken by progress made after it started waiting.
            waiter = asyncio.ensure_future(c.rafts[followers[1]].wait(WAIT).applied_index(idx + 3))
            await asyncio.sleep(0.05)
            assert not waiter.done()
            for i in range(3):
                r = await c.write(lead, "later", i)
            m = await waiter
            assert m.last_applied.index >= idx + 3
    run(body())


def test_shutdown_with_pending_writes(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            await c.write(lead, "before", 1)
            # Followers cannot ack: the writes stay pending until the shutdown.
            for f in (1, 2, 3):
                if f != lead:
                    c.router.cut(lead, f)
            await asyncio.sleep(0)
            futs = [c.rafts[lead].client_write(kv("p", i)) for i in range(10)]
            futs.append(c.rafts[lead].client_write_many([kv("q", i) for i in range(10)]))
            read = asyncio.ensure_future(c.rafts[lead].ensure_linearizable())
            await asyncio.sleep(0.05)
            assert not any(f.done() for f in futs)
            await c.rafts[lead].shutdown(transfer=False)     # stop now: no hand-off first
            c.stopped.add(lead)
            res = await asyncio.wait_for(asyncio.gather(*futs, read, return_exceptions=True), WAIT)
            # The writes were appended: the stopped node cannot know whether they commit.
            for x in res[:-1]:
                assert isinstance(x, OutcomeUnknown), f"pending write ended with {x!r}, expected OutcomeUnknown"
                assert x.reason == OutcomeUnknown.STOPPED and isinstance(x.__cause__, Stopped)
            assert isinstance(res[-1], Stopped), f"pending read ended with {res[-1]!r}, expected Stopped"
            assert isinstance(res[-1], Fatal) and isinstance(res[-1], RaftError)
            m = c.rafts[lead].metrics
            assert m.state == ServerState.SHUTDOWN
            assert m.running_state is None        # a clean shutdown is not an error
            assert not c.rafts[lead].is_leader()
            # Calls after the shutdown fail at once.
            with pytest.raises(Stopped):
                await c.rafts[lead].client_write(kv("after", 1))
            with pytest.raises(Stopped):
                await c.rafts[lead].ensure_linearizable()
            with pytest.raises(Stopped):
                await c.rafts[lead].trigger.heartbeat()
            # Shutdown twice is harmless.
            await c.rafts[lead].shutdown()
    run(body())


def test_config_validation(run):
    async def body():
        bad = [
            ("cluster_name", dict(cluster_name="")),
            ("heartbeat_interval", dict(heartbeat_interval=0)),
            ("heartbeat_interval", dict(heartbeat_interval=0.2, election_timeout_min=0.15)),
            ("election_timeout_min", dict(election_timeout_min=-1)),
            ("election_timeout_max", dict(election_timeout_min=0.3, election_timeout_max=0.3)),
            ("max_payload_entries", dict(max_payload_entries=0)),
            ("max_payload_entries", dict(max_payload_entries=1.5)),
            ("max_inflight", dict(max_inflight=True)),
            ("replication_lag_threshold", dict(replication_lag_threshold=-5)),
            ("snapshot_policy", dict(snapshot_policy=0)),
            ("snapshot_policy", dict(snapshot_policy="sometimes")),
            ("snapshot_policy", dict(snapshot_policy=True)),
            ("snapshot_chunk_size", dict(snapshot_chunk_size=0)),
            ("max_in_snapshot_log_to_keep", dict(max_in_snapshot_log_to_keep=-1)),
            ("purge_batch_size", dict(purge_batch_size=0)),
            ("leader_id_mode", dict(leader_id_mode="fast")),
            ("leader_lease", dict(leader_lease=1.0)),
            ("max_clock_drift", dict(max_clock_drift=1.0)),
            ("install_snapshot_timeout", dict(install_snapshot_timeout=0)),
            ("backoff", dict(backoff=-0.1)),
            ("quorum_factory", dict(quorum_factory=42)),
        ]
        for field, kwargs in bad:
            with pytest.raises(ConfigError) as ei:
                Config(**kwargs)
            assert ei.value.field == field, f"{kwargs}: ConfigError names {ei.value.field!r}, expected {field!r}"
            assert field in str(ei.value)
            assert isinstance(ei.value, ValueError) and isinstance(ei.value, RaftError)
        # replace() validates too, and valid configs pass.
        with pytest.raises(ConfigError) as ei:
            FAST.replace(election_timeout_max=0.05)
        assert ei.value.field == "election_timeout_max"
        ok = Config(snapshot_policy="never", leader_id_mode="std", max_in_snapshot_log_to_keep=0, leader_lease=0.1)
        assert ok.lease == 0.1 and FAST.lease == FAST.election_timeout_min
        router = LocalRouter()
        with pytest.raises(TypeError):
            await Raft.start(1, {"heartbeat_interval": 0.02}, router.factory(1), MemLogStore(), MemStateMachine())
        # A std-mode cluster works end to end.
        async with Cluster(FAST.replace(leader_id_mode="std")) as c:
            lead = await c.start([1, 2, 3])
            r = await c.write(lead, "std", 1)
            assert r.log_id.leader_id.std and r.log_id.leader_id.node_id is None
            await c.wait_applied(r.log_id.index)
            c.assert_same_data(expect={"std": 1})
    run(body())


class _Sink:
    """A sink for client_write_into: a Future's done/set_result/set_exception, recorded."""

    def __init__(self):
        self.result = self.error = None
        self.calls = 0

    def done(self):
        return self.calls > 0

    def set_result(self, r):
        self.calls += 1
        self.result = r

    def set_exception(self, e):
        self.calls += 1
        self.error = e


def test_client_write_into_resolves_a_sink_like_a_future(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            sinks = [_Sink() for _ in range(20)]
            for i, s in enumerate(sinks):
                c.rafts[lead].client_write_into(kv(f"k{i}", i), s)
            fut = c.rafts[lead].client_write(kv("after", 1))
            last = await fut                         # applied after every sink's entry
            assert all(s.calls == 1 and s.error is None for s in sinks)
            indexes = [s.result.log_id.index for s in sinks]
            assert indexes == list(range(indexes[0], indexes[0] + 20)) and last.log_id.index == indexes[-1] + 1
            follower = next(i for i in c.rafts if i != lead)
            s = _Sink()
            c.rafts[follower].client_write_into(kv("x", 1), s)
            await asyncio.sleep(0.05)
            assert s.calls == 1 and isinstance(s.error, ForwardToLeader) and s.error.leader_id == lead
            with pytest.raises(InvalidArgumentType):
                c.rafts[lead].client_write_into("not bytes", _Sink())
    run(body())
