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
from openraft_fast._core.messages import (OK, AppendRequest, AppendResponse, InstallSnapshotRequest, SnapshotMeta,
                                          SnapshotResponse, VoteRequest)
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
        config = FAST.replace(backoff=0.02, heartbeat_interval=0.25, election_timeout_min=0.5,
                              election_timeout_max=1.0)
        f = TcpNetworkFactory(1, config)
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
        # Growing backoff (0.02, 0.04, ... capped at heartbeat_interval): a handful of attempts, not 100.
        assert 2 <= len(accepts) <= 12, len(accepts)
        waits = [float(str(e).rsplit("next attempt in ", 1)[1].rstrip("s")) for e in errors
                 if "next attempt in" in str(e)]
        assert waits and max(waits) <= config.heartbeat_interval, waits
        downs = [r for r in caplog.records if r.name == TCP_LOG and r.levelno >= logging.WARNING]
        assert len(downs) == 1, [r.getMessage() for r in downs]
    run(body())


def test_a_handshake_from_the_peer_ends_the_backoff_to_it(run):
    """A restarted peer that reaches us (a pre-vote, a read) is up: the client to it stops
    backing off at once, so it hears from us within a heartbeat, not after the backoff."""
    async def body():
        async with TcpCluster() as c:
            lead = await c.start([1, 2, 3])
            follower = next(i for i in (1, 2, 3) if i != lead)
            (to_follower,) = [n for n in c.factories[lead]._clients if n.target == follower]
            loop = asyncio.get_running_loop()
            to_follower._failures, to_follower._retry_at = 5, loop.time() + 60.0     # as if backing off
            back = c.factories[follower].new_client(lead, c.node(lead))
            try:
                await outcome(back.vote(VoteRequest(VOTE)))        # the follower's handshake reaches the leader
            finally:
                back.close()
            assert to_follower._failures == 0 and to_follower._retry_at == 0.0
            other = next(i for i in (1, 2, 3) if i not in (lead, follower))
            (to_other,) = [n for n in c.factories[lead]._clients if n.target == other]
            assert to_other._retry_at == 0.0                       # untouched: only the peer that came back
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


def test_oversized_request_fails_at_the_sender_and_the_connection_stays(run, caplog):
    async def body():
        caplog.set_level(logging.ERROR, logger=TCP_LOG)
        async with silent_peer() as (raft, server, net):
            net.factory.max_frame = 64 * 1024
            ok = net.append_entries(append(1000))
            for _ in range(3):
                err = await outcome(net.append_entries(append(100 * 1024)))
                assert type(err) is NetworkError and "exceeds the frame limit" in str(err), err
            await taken(raft, 1)                  # the small one went through ...
            assert not ok.done() and not net._conns[LANE_APPEND].closed     # ... on the same connection
            assert len([m for m in tcp_log(caplog) if "exceeds the frame limit" in m]) == 1
    run(body())


@contextlib.asynccontextmanager
async def scripted_peer(script):
    """A fake node 2 that speaks raw frames: `script(frames, writer)` runs for every batch of
    frames it receives. Yields a client of node 1 to it."""
    async def serve(reader, writer):
        dec = codec.FrameDecoder()
        while True:
            data = await reader.read(65536)
            if not data:
                break
            await script(dec.feed(data), writer)

    srv = await asyncio.start_server(serve, "127.0.0.1", 0)
    f = TcpNetworkFactory(1, FAST, append_timeout=5.0)
    try:
        yield f.new_client(2, Node(f"127.0.0.1:{srv.sockets[0].getsockname()[1]}"))
    finally:
        f.close()
        srv.close()


def hello(frames) -> bytes:
    """The handshake reply, if the client's handshake is among `frames`."""
    return b"".join(codec.encode(codec.HandshakeReply(True, ""), 0) for corr, m in frames
                    if type(m) is codec.Handshake)


def test_client_ignores_a_response_to_no_request(run):
    async def body():
        async def script(frames, writer):
            out = hello(frames)
            for corr, m in frames:
                if type(m) is AppendRequest:      # a stray id first, then the real answer
                    resp = AppendResponse(m.vote, OK, None, 0, -1, m.msg_id, m.seq, 0)
                    out += codec.encode(resp, 999_999) + codec.encode(resp, corr)
            writer.write(out)

        async with scripted_peer(script) as net:
            for i in range(3):
                resp = await asyncio.wait_for(net.append_entries(append()), WAIT)
                assert type(resp) is AppendResponse and resp.result == OK
            assert not net._conns[LANE_APPEND].closed
    run(body())


def test_client_closes_on_bad_frames_from_the_server(run, caplog):
    async def body():
        caplog.set_level(logging.WARNING, logger=TCP_LOG)
        for name, reply in [
            ("garbage", lambda frames: hello(frames) + b"\x00" * 64),
            ("response before the handshake reply", lambda frames: b"".join(
                codec.encode(AppendResponse(VOTE, OK), c) for c, m in frames if c)),
            ("handshake refused", lambda frames: codec.encode(codec.HandshakeReply(False, "go away"), 0)),
        ]:
            async def script(frames, writer, reply=reply):
                writer.write(reply(frames))

            async with scripted_peer(script) as net:
                err = await outcome(net.append_entries(append()))
                assert type(err) is NetworkError, (name, err)
        logged = tcp_log(caplog)
        assert any("malformed frame" in m for m in logged), logged
        assert any("before the handshake reply" in m for m in logged), logged
        assert any("go away" in m for m in logged), logged
    run(body())


def test_silent_connection_is_dropped_after_timeouts(run, caplog):
    """Requests time out and nothing at all comes back for two timeouts: the connection is
    taken for dead (a half-open socket) and closed; the next request opens a new one."""
    async def body():
        caplog.set_level(logging.WARNING, logger=TCP_LOG)
        async with silent_peer() as (raft, server, net):
            assert isinstance(await outcome(net.vote(VoteRequest(VOTE))), Timeout)
            first = net._conns[1]
            assert not first.closed                  # the handshake reply was heard lately
            for _ in range(3):                       # past 2 x 0.3 s of silence within 3 more
                assert isinstance(await outcome(net.vote(VoteRequest(VOTE))), Timeout)
                if first.closed:
                    break
            assert first.closed and "no response" in first.close_reason
            assert any("no response" in m for m in tcp_log(caplog))
    run(body())
