"""Failures: refused and broken connections, backoff, timeouts, closing, a peer that stops
reading."""
import asyncio
import logging
import socket

import pytest

from openraft_fast import Node
from openraft_fast._core import codec
from openraft_fast._core.log import LogSlice
from openraft_fast._core.messages import AppendRequest, VoteRequest
from openraft_fast._core.types import LeaderId, Vote
from openraft_fast.errors import NetworkError, RaftError, Stopped, Timeout, Unreachable
from openraft_fast.network.tcp import LANE_APPEND, TcpNetworkFactory, serve_tcp
from tcp_support import FAST, WAIT, TcpCluster

VOTE = Vote(LeaderId(1, 1), False)
TCP_LOG = "openraft_fast.network.tcp"


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


def test_server_close_fails_pending_rpcs_and_timeouts_fire(run):
    async def body():
        raft = SilentRaft()
        server = await serve_tcp(raft, "127.0.0.1", 0)
        f = TcpNetworkFactory(1, FAST, append_timeout=30.0)
        net = f.new_client(2, Node(f"127.0.0.1:{server.port}"))
        try:
            # Control lane: election_timeout_max (0.3 s) per request.
            assert isinstance(await outcome(net.vote(VoteRequest(VOTE))), Timeout)
            futs = [net.append_entries(append(100)) for _ in range(10)]
            while raft.taken < 11:
                await asyncio.sleep(0.01)
            assert not any(f.done() for f in futs)
            await server.close()
            errs = [await outcome(fut) for fut in futs]
            assert all(type(e) is NetworkError for e in errs), errs
        finally:
            f.close()
            await server.close()
    run(body())


def test_factory_close_fails_pending_and_refuses_new(run):
    async def body():
        raft = SilentRaft()
        server = await serve_tcp(raft, "127.0.0.1", 0)
        f = TcpNetworkFactory(1, FAST, append_timeout=30.0)
        net = f.new_client(2, Node(f"127.0.0.1:{server.port}"))
        try:
            fut = net.append_entries(append(10))
            while raft.taken < 1:
                await asyncio.sleep(0.01)
            f.close()
            assert isinstance(await outcome(fut), NetworkError)
            assert isinstance(await outcome(net.append_entries(append(10))), NetworkError)
        finally:
            await server.close()
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
            msgs = [r.getMessage() for r in caplog.records if r.name == TCP_LOG]
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
        try:
            refused = None
            for n in range(400):                  # up to 100 MiB offered
                fut = net.append_entries(append(256 * 1024))
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
    run(body())
