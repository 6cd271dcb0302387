"""Three or four Raft nodes in one process talking over real TCP sockets on 127.0.0.1."""
import asyncio

from openraft_fast import ReadPolicy, ServerState
from openraft_fast._core.messages import (READ_INDEX_OK, AppendRequest, AppendResponse, ReadIndexRequest,
                                          ReadIndexResponse)
from openraft_fast._core import codec
from openraft_fast.errors import ForwardToLeader
from openraft_fast.network.tcp import LANE_APPEND, LANE_CONTROL
from openraft_fast.network.tcp.server import ServerConnection
from tcp_support import FAST, WAIT, TcpCluster, kv


def test_elect_replicate_and_read(run):
    async def body():
        async with TcpCluster() as c:
            lead = await c.start([1, 2, 3])
            r = None
            for i in range(50):
                r = await c.write(lead, f"k{i}", i)
            many = await c.rafts[lead].client_write_many([kv(f"m{i}", i) for i in range(500)])
            last = many[len(many) - 1].log_id.index
            assert last > r.log_id.index
            for i in (1, 2, 3):
                await c.rafts[i].wait(WAIT).applied_index(last)
                sm = c.rafts[i]._core.sm
                assert sm.data["k49"] == 49 and sm.data["m499"] == 499
            at = await c.rafts[lead].ensure_linearizable(ReadPolicy.READ_INDEX)
            assert at.index >= last
            follower = next(i for i in (1, 2, 3) if i != lead)
            try:
                await c.write(follower, "x", 1)
                raise AssertionError("a follower took a write")
            except ForwardToLeader as exc:
                assert exc.leader_id == lead and exc.leader_node == c.node(lead)
    run(body())


def test_leader_stops_new_leader_elected(run):
    async def body():
        async with TcpCluster() as c:
            lead = await c.start([1, 2, 3])
            r = await c.write(lead, "a", 1)
            await c.stop(lead)
            rest = [i for i in (1, 2, 3) if i != lead]
            new = await c.wait_leader(rest)
            assert new != lead
            r2 = await c.write(new, "b", 2)
            assert r2.log_id.index > r.log_id.index
            for i in rest:
                await c.rafts[i].wait(WAIT).applied_index(r2.log_id.index)
                assert c.rafts[i]._core.sm.data == {"a": 1, "b": 2}
    run(body())


def test_membership_change_over_tcp(run):
    async def body():
        async with TcpCluster() as c:
            lead = await c.start([1, 2, 3])
            await c.write(lead, "a", 1)
            await c.start_node(4)
            await c.rafts[lead].add_learner(4, c.node(4), blocking=True)
            keep = [i for i in (1, 2, 3) if i != lead][:1] + [lead, 4]
            await c.rafts[lead].change_membership(set(keep))
            m = await c.rafts[4].wait(WAIT).members(set(keep))
            assert m.membership.voter_ids == set(keep)
            r = await c.write(lead, "b", 2)
            await c.rafts[4].wait(WAIT).applied_index(r.log_id.index)
            assert c.rafts[4]._core.sm.data == {"a": 1, "b": 2}
    run(body())


def test_snapshot_streams_in_chunks_to_new_learner(run, monkeypatch):
    cfg = FAST.replace(snapshot_policy=50, max_in_snapshot_log_to_keep=0, snapshot_chunk_size=16 * 1024)

    async def body():
        async with TcpCluster(cfg) as c:
            lead = await c.start([1, 2, 3])
            value = "v" * 2000
            r = await c.rafts[lead].client_write_many([kv(f"k{i}", value) for i in range(120)])
            last = r[len(r) - 1].log_id
            await c.rafts[lead].trigger.snapshot()
            await c.rafts[lead].wait(WAIT).snapshot(last.index)
            await c.rafts[lead].wait(WAIT).purged(last.index)
            snap = await c.rafts[lead]._core.sm.get_current_snapshot()
            assert len(snap.data) > 10 * cfg.snapshot_chunk_size
            await c.start_node(4)
            chunks = []
            orig = ServerConnection._chunk

            def counting(self, corr, ch):       # count the chunks the learner's server receives
                chunks.append((ch.offset, len(ch.data), ch.last))
                return orig(self, corr, ch)
            monkeypatch.setattr(ServerConnection, "_chunk", counting)
            await c.rafts[lead].add_learner(4, c.node(4), blocking=True)
            m = await c.rafts[4].wait(WAIT).snapshot(last.index)
            assert m.snapshot.index >= last.index
            assert c.rafts[4]._core.sm.data["k119"] == value
            assert len(chunks) == -(-len(snap.data) // cfg.snapshot_chunk_size)
            assert [o for o, _, _ in chunks] == [i * cfg.snapshot_chunk_size for i in range(len(chunks))]
            assert [lst for _, _, lst in chunks] == [False] * (len(chunks) - 1) + [True]
            assert sum(n for _, n, _ in chunks) == len(snap.data)
    run(body())


def test_heartbeats_flow_while_the_append_lane_is_stuck(run):
    """A follower stops reading its append connection (bulk data piles up in the leader's
    send buffer) for several election timeouts: heartbeats still reach it on the control
    lane, so it starts no election; once it reads again it catches up."""
    cfg = FAST.replace(heartbeat_interval=0.05, election_timeout_min=0.4, election_timeout_max=0.8)

    async def body():
        async with TcpCluster(cfg) as c:
            lead = await c.start([1, 2, 3])
            f = next(i for i in (1, 2, 3) if i != lead)
            await c.write(lead, "first", 1)
            term = c.rafts[f].metrics.current_term
            stuck = [conn for conn in c.servers[f]._conns if conn.lane == LANE_APPEND]
            assert len(stuck) == 1
            stuck[0].transport.pause_reading()
            big = b"x" * (256 * 1024)
            rs = await c.rafts[lead].client_write_many([big] * 32)        # 8 MiB, committed by the others
            last = rs[len(rs) - 1].log_id.index
            client = c.rafts[lead]._core.clients[f]
            append_conn, control_conn = client._conns[LANE_APPEND], client._conns[LANE_CONTROL]
            assert append_conn.transport.get_extra_info("sockname") != control_conn.transport.get_extra_info("sockname")
            await asyncio.sleep(4 * cfg.election_timeout_max)
            m = c.rafts[f].metrics
            assert m.last_applied.index < last, "the append lane was not stuck"
            assert m.current_term == term and m.current_leader == lead, "heartbeats did not get through"
            assert append_conn.transport.get_write_buffer_size() > 0
            stuck[0].transport.resume_reading()
            await c.rafts[f].wait(WAIT).applied_index(last)
            assert c.rafts[f].metrics.current_term == term
    run(body(), timeout=60)


def test_pipelined_requests_one_write_per_loop_iteration(run):
    """Many requests in flight on one connection, answered by correlation id, and one
    transport.write per connection per loop iteration."""
    async def body():
        async with TcpCluster() as c:
            lead = await c.start([1, 2, 3])
            follower = next(i for i in (1, 2, 3) if i != lead)
            net = c.factories[lead].new_client(follower, c.node(follower))
            try:
                vote = c.rafts[lead]._core.engine.vote
                req = AppendRequest(vote, None, None, None, 0, 0, 0)
                first = await net.heartbeat(req)         # connects (handshake + request in one write)
                assert type(first) is AppendResponse
                conn = net._conns[LANE_CONTROL]
                writes = []
                conn.transport = _CountingTransport(conn.transport, writes)
                futs = [net.heartbeat(req) for _ in range(200)]
                assert len(conn.pending) == 200
                resps = await asyncio.gather(*futs)
                assert all(type(r) is AppendResponse for r in resps)
                assert len(writes) == 1 and writes[0] == 200 * len(codec.encode(req, 5))
            finally:
                net.close()
    run(body())


class _CountingTransport:
    """Records the size of every write, forwards everything to the real transport."""

    def __init__(self, real, writes):
        self._real = real
        self._writes = writes

    def write(self, data):
        self._writes.append(len(data))
        self._real.write(data)

    def __getattr__(self, name):
        return getattr(self._real, name)


def test_follower_reads_over_tcp(run):
    """ensure_linearizable on a follower asks the leader for a read index over the control
    lane, then reads locally once applied."""
    async def body():
        async with TcpCluster() as c:
            lead = await c.start([1, 2, 3])
            r = await c.write(lead, "k", "v")
            follower = next(i for i in (1, 2, 3) if i != lead)
            at = await c.rafts[follower].ensure_linearizable(ReadPolicy.READ_INDEX)
            assert at.index >= r.log_id.index
            assert c.rafts[follower].metrics.last_applied.index >= r.log_id.index
            assert c.rafts[follower]._core.sm.data["k"] == "v"
            # The request itself, straight over a client: the leader answers with its read point.
            net = c.factories[follower].new_client(lead, c.node(lead))
            try:
                resp = await net.read_index(ReadIndexRequest(1))
                assert type(resp) is ReadIndexResponse and resp.result == READ_INDEX_OK
                assert resp.read_log_id.index >= r.log_id.index
            finally:
                net.close()
    run(body())


def test_interrupted_snapshot_transfer_is_abandoned_then_retried(run, monkeypatch):
    """The learner's server drops the snapshot connection in the middle of the first transfer:
    both sides abandon it (the partial data goes with the connection) and the engine's retry
    installs the whole snapshot."""
    cfg = FAST.replace(snapshot_policy=50, max_in_snapshot_log_to_keep=0, snapshot_chunk_size=8 * 1024)

    async def body():
        async with TcpCluster(cfg) as c:
            lead = await c.start([1, 2, 3])
            r = await c.rafts[lead].client_write_many([kv(f"k{i}", "v" * 1000) for i in range(100)])
            last = r[len(r) - 1].log_id
            await c.rafts[lead].trigger.snapshot()
            await c.rafts[lead].wait(WAIT).purged(last.index)
            await c.start_node(4)
            seen, cut = [], []
            orig = ServerConnection._chunk

            def cut_first_transfer(self, corr, ch):
                seen.append((self, ch.offset))      # the object, not its id(): ids get reused
                if len({conn for conn, _ in seen}) == 1 and ch.offset >= 3 * cfg.snapshot_chunk_size:
                    cut.append(self._snap is not None and len(self._snap) == ch.offset)
                    self.abort("test: cut in the middle of a snapshot")
                    cut.append(self._snap is None)    # the partial snapshot is dropped with it
                    return
                return orig(self, corr, ch)
            monkeypatch.setattr(ServerConnection, "_chunk", cut_first_transfer)
            await c.rafts[lead].add_learner(4, c.node(4), blocking=False)
            m = await c.rafts[4].wait(10.0).snapshot(last.index)
            assert m.snapshot.index >= last.index
            assert c.rafts[4]._core.sm.data["k99"] == "v" * 1000
            assert cut == [True, True], "the transfer was not cut as planned"
            conns = [conn for conn, _ in seen]
            assert len(set(conns)) >= 2, "the snapshot was not resent on a new connection"
            # The retry started over from offset 0 on its new connection.
            assert [o for conn, o in seen if conn == conns[-1]][0] == 0
    run(body())


def test_leader_transfer_over_tcp(run):
    """transfer_leader sends TimeoutNow (one-way, control lane): the target takes over."""
    async def body():
        async with TcpCluster() as c:
            lead = await c.start([1, 2, 3])
            r = await c.write(lead, "a", 1)
            to = next(i for i in (1, 2, 3) if i != lead)
            await c.rafts[to].wait(WAIT).applied_index(r.log_id.index)
            await c.rafts[lead].trigger.transfer_leader(to)
            await c.rafts[to].wait(WAIT).state(ServerState.LEADER)
            assert await c.wait_leader([1, 2, 3]) == to
            r = await c.write(to, "b", 2)
            for i in (1, 2, 3):
                await c.rafts[i].wait(WAIT).applied_index(r.log_id.index)
                assert c.rafts[i]._core.sm.data == {"a": 1, "b": 2}
    run(body())


def test_forwarded_writes_over_tcp(run):
    async def body():
        async with TcpCluster() as c:
            lead = await c.start([1, 2, 3])
            follower = next(i for i in (1, 2, 3) if i != lead)
            r1 = await c.rafts[follower].client_write(kv("f", 1), forward=True)
            r2 = await c.rafts[follower].client_write(kv("f", 2), forward=True)
            assert r1.data is None and r2.data == 1 and r2.log_id.index == r1.log_id.index + 1
            big = [kv(f"b{i}", "x" * 1000) for i in range(2000)]       # ~2 MB in one forward
            rs = await c.rafts[follower].client_write_many(big, forward=True)
            assert len(rs) == 2000 and rs.last_log_id.index == r2.log_id.index + 2000
            await c.rafts[follower].wait(WAIT).applied_index(rs.last_log_id.index)
            assert c.rafts[follower]._core.sm.data["b1999"] == "x" * 1000
            # the leader goes away: the follower's forwarded write waits for the next leader
            await c.stop(lead)
            del c.rafts[lead]
            r3 = await c.rafts[follower].client_write(kv("f", 3), forward=True, timeout=WAIT)
            assert r3.data == 2 and r3.log_id.leader_id.term > r1.log_id.leader_id.term
    run(body())
