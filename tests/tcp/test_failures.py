"""Failures: refused and broken connections, backoff, timeouts, closing, a peer that stops
reading."""
import asyncio
import contextlib
import logging
import socket

import pytest

from openraft_fast import Node
from openraft_fast._core import codec
from openraft_fast._core.log import LogSlice
from openraft_fast._core.messages import (AppendRequest, InstallSnapshotRequest, SnapshotMeta, SnapshotResponse,
                                          VoteRequest)
from openraft_fast._core.types import LeaderId, Vote
from openraft_fast.errors import (InvalidArgument, InvalidArgumentType, NetworkError, RaftError, Timeout,
                                  Unreachable)
from openraft_fast.network.tcp import LANE_APPEND, TcpNetworkFactory, parse_addr, serve_tcp
from tcp_support import FAST, TCP_LOG, WAIT, TcpCluster, tcp_log

VOTE = Vote(LeaderId(1, 1), False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def append(payload_size: int = 0) -> AppendRequest:
    entries = LogSlice(1, [b"x" * payload_size], None, [(1, LeaderId(1, 1))]) if payload_size else None
    return AppendRequest(VOTE, None, entries, None, 1, 1, 0)


async def outcome(fut, timeout=WAIT):
    """The exception an RPC future failed with (None if it succeeded)."""
    try:
        await asyncio.wait_for(fut, timeout)
    except RaftError as exc:
        return exc
    return None


class SilentRaft:
    """Fault injection: a node that takes requests and never answers."""

    def __init__(self, node_id=2, config=FAST):
        self.node_id = node_id
        self.config = config
        self.taken = 0

    def _never(self, req):
        self.taken += 1
        return asyncio.get_running_loop().create_future()

    append_entries = vote = install_snapshot = timeout_now = read_index = _never


def test_refused_connection_backs_off_and_logs_once(run, caplog):
    async def body():
        caplog.set_level(logging.DEBUG, logger=TCP_LOG)
        accepts = []

        async def slam(reader, writer):      # accepts, then closes at once: a broken peer
            accepts.append(1)
            writer.close()

        srv = await asyncio.start_server(slam, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        f = TcpNetworkFactory(1, FAST.replace(backoff=0.02))
        net = f.new_client(2, Node(f"127.0.0.1:{port}"))
        errors = []
        try:
            for _ in range(100):                 # 100 heartbeats over >= 1 s
                errors.append(await outcome(net.heartbeat(append())))
                await asyncio.sleep(0.01)
        finally:
            f.close()
            srv.close()
        assert all(isinstance(e, (Unreachable, NetworkError)) for e in errors), errors
        # Growing backoff (0.02, 0.04, ... capped at 1 s): a handful of attempts, not 100.
        assert 2 <= len(accepts) <= 10, len(accepts)
        assert any("next attempt in" in str(e) for e in errors)
        downs = [r for r in caplog.records if r.name == TCP_LOG and r.levelno >= logging.WARNING]
        assert len(downs) == 1, [r.getMessage() for r in downs]
    run(body())


def test_closed_port_is_unreachable(run):
    async def body():
        f = TcpNetworkFactory(1, FAST)
        net = f.new_client(2, Node(f"127.0.0.1:{free_port()}"))
        try:
            assert isinstance(await outcome(net.vote(VoteRequest(VOTE))), Unreachable)
            assert isinstance(await outcome(net.append_entries(append())), Unreachable)
            bad = f.new_client(3, Node("no-port-here"))
            assert isinstance(await outcome(bad.vote(VoteRequest(VOTE))), Unreachable)
        finally:
            f.close()
    run(body())


@contextlib.asynccontextmanager
async def silent_peer():
    """(raft, server, client): a client of node 1 to a served SilentRaft node 2."""
    raft = SilentRaft()
    server = await serve_tcp(raft, "127.0.0.1", 0)
    f = TcpNetworkFactory(1, FAST, append_timeout=30.0)
    try:
        yield raft, server, f.new_client(2, Node(f"127.0.0.1:{server.port}"))
    finally:
        f.close()
        await server.close()


async def taken(raft, n):
    while raft.taken < n:
        await asyncio.sleep(0.01)


def test_server_close_fails_pending_rpcs_and_timeouts_fire(run):
    async def body():
        async with silent_peer() as (raft, server, net):
            # Control lane: election_timeout_max (0.3 s) per request.
            assert isinstance(await outcome(net.vote(VoteRequest(VOTE))), Timeout)
            futs = [net.append_entries(append(100)) for _ in range(10)]
            await taken(raft, 11)
            assert not any(f.done() for f in futs)
            await server.close()
            errs = [await outcome(fut) for fut in futs]
            assert all(type(e) is NetworkError for e in errs), errs
    run(body())


def test_client_close_fails_pending_and_refuses_new(run):
    async def body():
        async with silent_peer() as (raft, server, net):
            fut = net.append_entries(append(10))
            await taken(raft, 1)
            net.factory.close()
            assert isinstance(await outcome(fut), NetworkError)
            assert isinstance(await outcome(net.append_entries(append(10))), NetworkError)
    run(body())


def test_stopped_node_answers_with_errors_and_cluster_goes_on(run):
    async def body():
        async with TcpCluster() as c:
            lead = await c.start([1, 2, 3])
            follower = next(i for i in (1, 2, 3) if i != lead)
            await c.rafts[follower].shutdown()          # its server still listens
            net = c.factories[lead].new_client(follower, c.node(follower))
            try:
                err = await outcome(net.vote(VoteRequest(VOTE)))
                assert isinstance(err, NetworkError) and "Stopped" in str(err)
            finally:
                net.close()
            r = await c.write(lead, "still", "committing")
            assert r.log_id.index > 0
    run(body())


def test_follower_server_restart_reconnects_and_catches_up(run, caplog):
    async def body():
        caplog.set_level(logging.INFO, logger=TCP_LOG)
        async with TcpCluster() as c:
            lead = await c.start([1, 2, 3])
            follower = next(i for i in (1, 2, 3) if i != lead)
            port = c.servers[follower].port
            await c.servers[follower].close()
            rs = [await c.write(lead, f"k{i}", i) for i in range(20)]     # a quorum without it
            await asyncio.sleep(0.3)          # the leader keeps trying (backoff) meanwhile
            c.servers[follower] = await serve_tcp(c.rafts[follower], "127.0.0.1", port)
            await c.rafts[follower].wait(WAIT).applied_index(rs[-1].log_id.index)
            assert c.rafts[follower]._core.sm.data["k19"] == 19
            msgs = tcp_log(caplog)
            down = [m for m in msgs if f"node {lead}: link to node {follower}" in m and "is down" in m]
            up = [m for m in msgs if f"node {lead}: connected to node {follower}" in m]
            assert len(down) == 1 and len(up) == 1, msgs
    run(body())


def test_peer_that_stops_reading_does_not_grow_the_send_buffer(run):
    async def body():
        stuck = asyncio.Event()

        async def handshake_then_stop_reading(reader, writer):
            dec = codec.FrameDecoder()
            while not dec.feed(await reader.read(4096)):
                pass
            writer.write(codec.encode(codec.HandshakeReply(True, ""), 0))
            await stuck.wait()                  # never reads again
            writer.close()

        srv = await asyncio.start_server(handshake_then_stop_reading, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        limit = 1 << 20
        f = TcpNetworkFactory(1, FAST, max_send_buffer=limit, append_timeout=30.0)
        net = f.new_client(2, Node(f"127.0.0.1:{port}"))
        futs = []
        try:
            refused = None
            for n in range(400):                  # up to 100 MiB offered
                fut = net.append_entries(append(256 * 1024))
                futs.append(fut)
                await asyncio.sleep(0.005)
                if fut.done():
                    refused = fut.exception()
                    break
            assert isinstance(refused, NetworkError) and "not reading" in str(refused), (n, refused)
            conn = net._conns[LANE_APPEND]
            assert conn.transport.get_write_buffer_size() <= limit + 512 * 1024
        finally:
            stuck.set()
            f.close()
            srv.close()
            await asyncio.gather(*futs, return_exceptions=True)      # all failed by the close
    run(body())


def test_refused_handshake_surfaces_as_network_error_with_the_reason(run, caplog):
    async def body():
        caplog.set_level(logging.WARNING, logger=TCP_LOG)
        async with TcpCluster() as c:
            lead = await c.start([1, 2, 3])
            foreign = TcpNetworkFactory(1, FAST.replace(cluster_name="another-cluster"))
            lost = TcpNetworkFactory(1, FAST)
            try:
                err = await outcome(foreign.new_client(lead, c.node(lead)).vote(VoteRequest(VOTE)))
                assert type(err) is NetworkError and "cluster 'another-cluster'" in str(err), err
                # A client that thinks node 7 listens at the leader's address.
                err = await outcome(lost.new_client(7, c.node(lead)).vote(VoteRequest(VOTE)))
                assert type(err) is NetworkError and f"meant for node 7 reached node {lead}" in str(err), err
            finally:
                foreign.close()
                lost.close()
            server_side = [m for m in tcp_log(caplog) if "handshake refused" in m]
            assert len(server_side) >= 2
            r = await c.write(lead, "still", 1)
            assert r.log_id.index > 0
    run(body())


def test_bad_arguments_are_typed_errors(run):
    async def body():
        for args, kwargs, err in [
            ((1, "not a config"), {}, InvalidArgumentType),
            ((-1, FAST), {}, InvalidArgument),
            (("1", FAST), {}, InvalidArgumentType),
            ((1, FAST), {"ssl": "tls please"}, InvalidArgumentType),
            ((1, FAST), {"append_timeout": 0}, InvalidArgument),
            ((1, FAST), {"append_timeout": float("nan")}, InvalidArgument),
            ((1, FAST), {"max_send_buffer": 1.5}, InvalidArgumentType),
            ((1, FAST), {"max_frame": -5}, InvalidArgument),
        ]:
            with pytest.raises(err):
                TcpNetworkFactory(*args, **kwargs)
        raft = SilentRaft()
        for args, kwargs, err in [
            (("127.0.0.1", -1), {}, InvalidArgument),
            (("127.0.0.1", 70000), {}, InvalidArgument),
            (("127.0.0.1", "7001"), {}, InvalidArgumentType),
            ((None, 0), {}, InvalidArgumentType),
            (("127.0.0.1", 0), {"ssl": object()}, InvalidArgumentType),
            (("127.0.0.1", 0), {"max_buffered": 0}, InvalidArgument),
        ]:
            with pytest.raises(err):
                await serve_tcp(raft, *args, **kwargs)
        server = await serve_tcp(raft, "127.0.0.1", 0)
        try:
            with pytest.raises(NetworkError, match="cannot listen"):
                await serve_tcp(raft, "127.0.0.1", server.port)      # the port is taken
        finally:
            await server.close()
    run(body())


@pytest.mark.parametrize("addr, expect", [
    ("127.0.0.1:7001", ("127.0.0.1", 7001)),
    ("localhost:1", ("localhost", 1)),
    ("[::1]:65535", ("::1", 65535)),
    ("127.0.0.1", None), ("127.0.0.1:", None), (":7001", None), ("h:0", None), ("h:65536", None),
    ("h:-1", None), ("h:7a", None), ("", None), (None, None),
])
def test_parse_addr(addr, expect):
    if expect is None:
        with pytest.raises(ValueError):
            parse_addr(addr)
    else:
        assert parse_addr(addr) == expect


def test_newer_snapshot_transfer_supersedes_the_older(run):
    """Two transfers to one target: the older fails with NetworkError (not a cancellation),
    the newer completes from offset 0 on a fresh connection."""
    async def body():
        class ChunkSink(SilentRaft):
            """Acks every chunk (the server does); answers the whole snapshot with ok."""
            def install_snapshot(self, req):
                self.got = req
                fut = asyncio.get_running_loop().create_future()
                fut.set_result(SnapshotResponse(req.vote, True, req.msg_id, req.seq, req.sent_at))
                return fut

        raft = ChunkSink()
        server = await serve_tcp(raft, "127.0.0.1", 0)
        f = TcpNetworkFactory(1, FAST.replace(snapshot_chunk_size=1024))
        net = f.new_client(2, Node(f"127.0.0.1:{server.port}"))
        try:
            meta = SnapshotMeta(None, None, None, "s")
            old = net.install_snapshot(InstallSnapshotRequest(VOTE, meta, b"a" * 100_000, 1, 1, 0))
            await asyncio.sleep(0)
            new = net.install_snapshot(InstallSnapshotRequest(VOTE, meta, b"b" * 5000, 2, 2, 0))
            assert isinstance(await outcome(old), NetworkError)
            resp = await asyncio.wait_for(new, WAIT)
            assert resp.ok and resp.msg_id == 2
            assert raft.got.data == b"b" * 5000 and raft.got.msg_id == 2
        finally:
            f.close()
            await server.close()
    run(body())
