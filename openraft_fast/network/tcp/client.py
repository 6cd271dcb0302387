"""The client side: one `TcpNetwork` per target, with one connection per lane.

Requests are pipelined: each gets a correlation id, many are in flight on one connection and
responses resolve their futures by id. A connection is opened lazily by the first request
that needs it (the request is queued in the connection's buffer and flushed once the socket
is up, right behind the handshake). Failed connections back off per target: the wait grows
from `Config.backoff`, doubling up to `Config.heartbeat_interval`, and requests during the wait
fail at once with Unreachable, so a dead node is not hammered. The cap keeps a restarted node
from waiting longer for its leader's first heartbeat than for any other, and a handshake from
the peer itself (`TcpNetworkFactory.peer_up`) ends the wait at once. A link going down or up is
logged once.
"""
from __future__ import annotations

import asyncio
import ssl as _ssl
from typing import Any, Dict, List, Optional, Tuple

from openraft_fast._core import codec
from openraft_fast._core.messages import InstallSnapshotRequest, SnapshotResponse
from openraft_fast.config import Config
from openraft_fast.errors import InvalidArgument, InvalidArgumentType, NetworkError, RaftError, Timeout, Unreachable
from openraft_fast.network.base import Network, NetworkFactory
from openraft_fast.network.tcp.frames import (HANDSHAKE_CORR, LANE_APPEND, LANE_CONTROL, LANE_NAMES, LANE_SNAPSHOT,
                                              FrameConnection, check_positive, check_ssl, log)

def parse_addr(addr: str) -> Tuple[str, int]:
    """"host:port" (IPv6 hosts in brackets) -> (host, port); ValueError if malformed."""
    if not isinstance(addr, str):
        raise ValueError(f"address must be a 'host:port' string, got {addr!r}")
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"address {addr!r} is not 'host:port'")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


class ClientConnection(FrameConnection):
    """One lane's connection to a target: handshake, pipelined requests, per-request timeouts."""

    def __init__(self, net: "TcpNetwork", lane: int, timeout: float) -> None:
        super().__init__(net.factory.max_frame, net.factory.max_send_buffer)
        self.net = net
        self.lane = lane
        self.timeout = timeout
        self.accepted = False              # the server accepted the handshake
        self.pending: Dict[int, Tuple[asyncio.Future, float]] = {}   # corr id -> (future, deadline)
        self._next_corr = 1
        self._timer: Optional[asyncio.TimerHandle] = None
        self._last_recv = self.loop.time()
        self._lost = False
        self.failure = True                # closed by a failure, not on purpose
        f = net.factory
        self.send(codec.Handshake(codec.PROTOCOL_VERSION, f.config.cluster_name, f.node_id, net.target, lane),
                  HANDSHAKE_CORR)

    def request(self, msg: Any, expect_reply: bool = True) -> asyncio.Future:
        fut = self.loop.create_future()
        if self.closed:
            fut.set_exception(self.net.error_for(self.close_reason))
            return fut
        if self.paused and self.over_limit():
            fut.set_exception(NetworkError(
                f"node {self.net.target}: {LANE_NAMES[self.lane]} lane is not draining "
                f"(more than {self.max_buffered} bytes waiting): the peer is not reading"))
            return fut
        corr = self._next_corr
        self._next_corr = corr + 1
        before = len(self._out)
        self.send(msg, corr)
        if len(self._out) - before > self.max_frame:
            # The peer would refuse it and drop the connection: refuse it here instead.
            size = len(self._out) - before
            del self._out[before:]
            fut.set_exception(self.net.oversized(msg, size))
            return fut
        if expect_reply:
            self.pending[corr] = (fut, self.loop.time() + self.timeout)
            if self._timer is None:
                self._timer = self.loop.call_at(self.loop.time() + self.timeout, self._expire)
        else:
            fut.set_result(None)
        return fut

    def on_bytes(self) -> None:
        self._last_recv = self.loop.time()

    def frame_received(self, corr_id: int, msg: Any) -> None:
        if corr_id == HANDSHAKE_CORR:
            if self.accepted or type(msg) is not codec.HandshakeReply:
                self.close(f"unexpected frame {type(msg).__name__} with correlation id 0")
            elif not msg.ok:
                self.close(f"handshake refused by node {self.net.target}: {msg.reason}")
            else:
                self.accepted = True
                self.net.link_up()
            return
        if not self.accepted:
            self.close(f"response {type(msg).__name__} before the handshake reply")
            return
        entry = self.pending.pop(corr_id, None)
        if entry is None:
            return                      # its request timed out already
        fut = entry[0]
        if fut.done():
            return
        if type(msg) is codec.ErrorReply:
            fut.set_exception(NetworkError(f"node {self.net.target} failed the request: {msg.message}"))
        else:
            fut.set_result(msg)

    def _expire(self) -> None:
        """Fail requests past their deadline. Deadlines grow in request order, so the oldest
        pending request is first in the dict; one timer tracks it."""
        self._timer = None
        now = self.loop.time()
        pending = self.pending
        expired = []
        for corr, (fut, deadline) in pending.items():
            if deadline > now:
                self._timer = self.loop.call_at(deadline, self._expire)
                break
            expired.append(corr)
        for corr in expired:
            fut = pending.pop(corr)[0]
            if not fut.done():
                fut.set_exception(Timeout(f"node {self.net.target}: {LANE_NAMES[self.lane]} request timed out "
                                          f"after {self.timeout:.3g}s"))
        # Nothing heard for two timeouts while requests expire: the connection is dead
        # (a half-open socket after a crash or partition); reconnect.
        if expired and now - self._last_recv > 2 * self.timeout:
            self.close(f"no response for {now - self._last_recv:.3g}s")

    def close(self, reason: str, failure: bool = True) -> None:
        """Close; `failure` False for a deliberate close (the link is not reported down)."""
        if self.closed:
            return
        self.failure = failure
        super().close(reason)
        if self.transport is None:      # never connected: connection_lost will not come
            self.lost(reason)

    def abort(self, reason: str) -> None:
        """Close at once (a deliberate close) and fail pending requests now."""
        if self.closed:
            return
        self.failure = False
        super().abort(reason)
        self.lost(reason)

    def lost(self, reason: str) -> None:
        if self._lost:
            return
        self._lost = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self.pending = self.pending, {}
        if pending:
            err = self.net.error_for(reason)
            for fut, _ in pending.values():
                if not fut.done():
                    fut.set_exception(err)
        self.net.lane_closed(self, reason)


class TcpNetwork(Network):
    """The client to one target node (its `Node.addr`, "host:port")."""

    def __init__(self, factory: "TcpNetworkFactory", target: int, addr: str) -> None:
        self.factory = factory
        self.target = target
        self.addr = addr
        self.loop = asyncio.get_running_loop()
        self._addr_error: Optional[str] = None
        try:
            self.host, self.port = parse_addr(addr)
        except ValueError as exc:
            self.host, self.port = "", 0
            self._addr_error = str(exc)
        self._conns: List[Optional[ClientConnection]] = [None, None, None]
        self._failures = 0
        self._retry_at = 0.0
        self._last_error = ""
        self._up: Optional[bool] = None         # link state, for logging its changes only
        self._snapshot_task: Optional[asyncio.Task] = None
        self._closed = False
        self._oversize_logged = False
        cfg = factory.config
        self._timeouts = {LANE_APPEND: factory.append_timeout, LANE_CONTROL: cfg.election_timeout_max,
                          LANE_SNAPSHOT: cfg.install_snapshot_timeout}

    # ------------------------------------------------------------------ Network
    def append_entries(self, req):
        return self._rpc(LANE_APPEND, req)

    def heartbeat(self, req):
        return self._rpc(LANE_CONTROL, req)

    def vote(self, req):
        return self._rpc(LANE_CONTROL, req)

    def read_index(self, req):
        return self._rpc(LANE_CONTROL, req)

    def forward(self, req):
        # The append lane: idle while this node follows, and never ahead of votes or heartbeats.
        return self._rpc(LANE_APPEND, req)

    def timeout_now(self, msg):
        # One-way: resolves once the message is queued on a live connection.
        try:
            return self._conn(LANE_CONTROL).request(msg, expect_reply=False)
        except RaftError as exc:
            return self._failed_future(exc)

    def install_snapshot(self, req: InstallSnapshotRequest) -> asyncio.Future:
        """Stream `req.data` in chunks of Config.snapshot_chunk_size, each sent once the
        previous one is acknowledged; resolves with the target's SnapshotResponse. A newer
        transfer to the same target abandons the older one."""
        old = self._snapshot_task
        if old is not None and not old.done():
            old.cancel()
            conn = self._conns[LANE_SNAPSHOT]
            if conn is not None:
                conn.close("snapshot transfer superseded by a newer one", failure=False)
        task = self._snapshot_task = self.loop.create_task(self._stream_snapshot(req))
        return task

    def close(self) -> None:
        self._closed = True
        if self._snapshot_task is not None:
            self._snapshot_task.cancel()
        for conn in self._conns:
            if conn is not None:
                conn.abort("client closed")

    # ------------------------------------------------------------------ connections
    def _rpc(self, lane: int, msg) -> asyncio.Future:
        conn = self._conns[lane]
        if conn is None or conn.closed:
            try:
                conn = self._conn(lane)
            except RaftError as exc:
                return self._failed_future(exc)
        return conn.request(msg)

    def _failed_future(self, exc: BaseException) -> asyncio.Future:
        fut = self.loop.create_future()
        fut.set_exception(exc)
        return fut

    def _conn(self, lane: int) -> ClientConnection:
        conn = self._conns[lane]
        if conn is not None and not conn.closed:
            return conn
        if self._closed:
            raise NetworkError(f"client to node {self.target} is closed")
        if self._addr_error is not None:
            raise Unreachable(f"node {self.target}: {self._addr_error}")
        if self.loop.time() < self._retry_at:
            raise Unreachable(f"node {self.target} at {self.addr} is unreachable ({self._last_error}); "
                              f"next attempt in {self._retry_at - self.loop.time():.3g}s")
        conn = self._conns[lane] = ClientConnection(self, lane, self._timeouts[lane])
        self.loop.create_task(self._connect(conn))   # one task per connection attempt, not per message
        return conn

    async def _connect(self, conn: ClientConnection) -> None:
        ctx = self.factory.ssl
        try:
            await asyncio.wait_for(
                self.loop.create_connection(lambda: conn, self.host, self.port, ssl=ctx,
                                            server_hostname=self.host if ctx is not None else None),
                self.factory.append_timeout)
        except asyncio.TimeoutError:
            conn.close(f"cannot connect: no answer within {self.factory.append_timeout:.3g}s")
        except Exception as exc:       # refused, TLS failure, bad host: fail the lane's requests
            conn.close(f"cannot connect: {exc!r}")

    def error_for(self, reason: str) -> RaftError:
        prefix = f"node {self.target} at {self.addr}: "
        if reason.startswith("cannot connect"):
            return Unreachable(prefix + reason)
        return NetworkError(prefix + reason)

    def oversized(self, msg: Any, size: int) -> NetworkError:
        text = (f"node {self.target}: a {type(msg).__name__} frame of {size} bytes exceeds the frame limit of "
                f"{self.factory.max_frame} bytes (lower Config.max_payload_entries or raise max_frame)")
        if not self._oversize_logged:           # once: the engine resends the same batch
            self._oversize_logged = True
            log.error("node %s: %s", self.factory.node_id, text)
        return NetworkError(text)

    def link_up(self) -> None:
        self._failures = 0
        self._retry_at = 0.0
        if self._up is not True:
            if self._up is False:
                log.info("node %s: connected to node %s at %s", self.factory.node_id, self.target, self.addr)
            self._up = True

    def peer_up(self) -> None:
        """The target reached us: it is up again, so end any backoff now."""
        self._failures = 0
        self._retry_at = 0.0

    def lane_closed(self, conn: ClientConnection, reason: str) -> None:
        if self._conns[conn.lane] is conn:
            self._conns[conn.lane] = None
        if self._closed or not conn.failure:
            return
        # Back off unless the lane closed after a working session (then one quick retry).
        if not conn.accepted or self._up is not True:
            self._failures += 1
            cfg = self.factory.config
            self._retry_at = self.loop.time() + min(cfg.backoff * 2 ** min(self._failures - 1, 30),
                                                    cfg.heartbeat_interval)
        self._last_error = reason
        if self._up is not False:
            self._up = False
            log.warning("node %s: link to node %s at %s (%s lane) is down: %s", self.factory.node_id,
                        self.target, self.addr, LANE_NAMES[conn.lane], reason)
        else:
            log.debug("node %s: node %s at %s still down: %s", self.factory.node_id, self.target, self.addr, reason)

    # ------------------------------------------------------------------ snapshots
    async def _stream_snapshot(self, req: InstallSnapshotRequest) -> SnapshotResponse:
        data = req.data
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise NetworkError(f"snapshot data must be bytes-like to send over TCP, got {type(data).__name__}")
        view = memoryview(data).cast("B")
        size = len(view)
        step = self.factory.config.snapshot_chunk_size
        conn = self._conn(LANE_SNAPSHOT)
        offset = 0
        try:
            while True:
                end = min(offset + step, size)
                last = end == size
                chunk = codec.SnapshotChunk(req.vote, req.meta, offset, view[offset:end], last,
                                            req.msg_id, req.seq, req.sent_at)
                resp = await conn.request(chunk)
                if last or not resp.ok:
                    return resp
                offset = end
        except asyncio.CancelledError:
            # Superseded by a newer transfer, or the client closed: the caller sees a failed
            # transfer (the engine retries), not a cancellation.
            conn.close("snapshot transfer abandoned", failure=False)
            raise NetworkError(f"node {self.target}: snapshot transfer abandoned (superseded or closed)") from None
        except BaseException as exc:
            # The receiver drops a partial snapshot with its connection.
            conn.close(f"snapshot transfer abandoned: {exc!r}")
            raise


class TcpNetworkFactory(NetworkFactory):
    """The network factory of one node: `TcpNetworkFactory(node_id, config, ssl=ctx)`.

    `ssl` is a client-side `ssl.SSLContext` (with a certificate loaded for mutual TLS).
    `append_timeout` bounds each append request (default: 5 x election_timeout_max, at least
    1 s); votes, heartbeats and read-index requests get election_timeout_max, each snapshot
    chunk install_snapshot_timeout. `max_send_buffer` bounds the bytes a connection holds for
    a peer that stopped reading (default Config.max_inflight_bytes); past it requests fail.
    """

    def __init__(self, node_id: int, config: Config, ssl: Optional[_ssl.SSLContext] = None, *,
                 max_frame: int = codec.DEFAULT_MAX_FRAME, append_timeout: Optional[float] = None,
                 max_send_buffer: Optional[int] = None) -> None:
        if not isinstance(config, Config):
            raise InvalidArgumentType(f"config must be a Config, got {type(config).__name__}")
        if isinstance(node_id, bool) or not isinstance(node_id, int):
            raise InvalidArgumentType(f"node_id must be an int, got {node_id!r}")
        if node_id < 0:
            raise InvalidArgument(f"node_id must be >= 0, got {node_id!r}")
        check_ssl(ssl)
        check_positive("max_frame", max_frame, integer=True)
        if append_timeout is not None:
            check_positive("append_timeout", append_timeout)
        if max_send_buffer is not None:
            check_positive("max_send_buffer", max_send_buffer, integer=True)
        self.node_id = node_id
        self.config = config
        self.ssl = ssl
        self.max_frame = max_frame
        self.append_timeout = append_timeout if append_timeout is not None else max(1.0, 5 * config.election_timeout_max)
        self.max_send_buffer = max_send_buffer if max_send_buffer is not None else config.max_inflight_bytes
        self._clients: List[TcpNetwork] = []

    def new_client(self, target, node) -> TcpNetwork:
        self._clients = [c for c in self._clients if not c._closed]
        client = TcpNetwork(self, target, node.addr)
        self._clients.append(client)
        return client

    def peer_up(self, node_id: int) -> None:
        for c in self._clients:
            if c.target == node_id and not c._closed:
                c.peer_up()

    def close(self) -> None:
        """Close every client this factory made."""
        for c in self._clients:
            c.close()
        self._clients.clear()
