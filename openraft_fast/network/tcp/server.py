"""The server side: `serve_tcp(raft, host, port, ssl=None)` accepts peers' connections and
hands their requests to the Raft node.

Every connection starts with a handshake; a wrong cluster, target or protocol version is
refused with a reply that says why (logged here too). After it, each lane accepts only its
own message types. A malformed, oversized or out-of-place frame closes that one connection
with a logged reason; the node keeps serving everyone else. Snapshot chunks are assembled
per connection, so a broken transfer is dropped with its connection.
"""
from __future__ import annotations

import asyncio
import ssl as _ssl
from functools import partial
from typing import Any, Callable, Dict, Optional, Set

from openraft_fast._core import codec
from openraft_fast._core.messages import (AppendRequest, ForwardRequest, InstallSnapshotRequest, ReadIndexRequest,
                                          SnapshotResponse, TimeoutNow, VoteRequest)
from openraft_fast.errors import Fatal, InvalidArgument, InvalidArgumentType, NetworkError
from openraft_fast.network.tcp.frames import (HANDSHAKE_CORR, LANE_APPEND, LANE_CONTROL, LANE_NAMES, LANE_SNAPSHOT,
                                              FrameConnection, check_positive, check_ssl, log)

# ErrorReply codes.
ERR_STOPPED = 1      # the node has stopped
ERR_FAILED = 2       # the handler raised

# Seconds a new connection has to send its handshake.
DEFAULT_HANDSHAKE_TIMEOUT = 10.0

# How long close() waits for the listening socket to wind down.
_CLOSE_WAIT = 2.0


def _lane_handlers(raft) -> Dict[int, Dict[type, Callable]]:
    append: Dict[type, Callable] = {AppendRequest: raft.append_entries}
    forward = getattr(raft, "forward", None)        # a node that takes no forwarded writes lacks it
    if forward is not None:
        append[ForwardRequest] = forward
    return {
        LANE_APPEND: append,
        LANE_CONTROL: {AppendRequest: raft.append_entries, VoteRequest: raft.vote,
                       ReadIndexRequest: raft.read_index},
        LANE_SNAPSHOT: {},
    }


class ServerConnection(FrameConnection):
    def __init__(self, server: "TcpServer") -> None:
        super().__init__(server.max_frame, server.max_buffered)
        self.server = server
        self.raft = server.raft
        self.lane: Optional[int] = None      # set by an accepted handshake
        self.peer: Optional[int] = None
        self.peername: Any = None
        self._handlers: Dict[type, Callable] = {}
        self._snap: Optional[bytearray] = None      # the snapshot being assembled
        self._snap_key: Any = None
        self._handshake_timer: Optional[asyncio.TimerHandle] = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.peername = transport.get_extra_info("peername")
        self.server._conns.add(self)
        # A connection that never says who it is does not hold a socket forever.
        self._handshake_timer = self.loop.call_later(self.server.handshake_timeout, self._no_handshake)

    def _no_handshake(self) -> None:
        self._handshake_timer = None
        if self.lane is None:
            self.close(f"no handshake within {self.server.handshake_timeout:.3g}s")

    def close(self, reason: str) -> None:
        if not self.closed:
            log.warning("node %s: closing connection from %s (node %s, %s lane): %s", self.raft.node_id,
                        self.peername, self.peer, LANE_NAMES.get(self.lane, "no"), reason)  # type: ignore[arg-type]
        super().close(reason)
        self._snap = None           # a partial snapshot goes with its connection

    def abort(self, reason: str) -> None:
        super().abort(reason)
        self._snap = None

    def lost(self, reason: str) -> None:
        self.server._conns.discard(self)
        self._snap = None
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None

    # Backpressure: a peer that does not read its responses stops being read.
    def pause_writing(self) -> None:
        super().pause_writing()
        if self.transport is not None:
            self.transport.pause_reading()  # type: ignore[attr-defined]

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ frames
    def frame_received(self, corr_id: int, msg: Any) -> None:
        if self.lane is None:
            self._handshake(corr_id, msg)
            return
        t = type(msg)
        if t is codec.SnapshotChunk and self.lane == LANE_SNAPSHOT:
            self._chunk(corr_id, msg)
            return
        if t is TimeoutNow and self.lane == LANE_CONTROL:
            self.raft.timeout_now(msg).add_done_callback(_consume)      # one-way: no reply
            return
        handler = self._handlers.get(t)
        if handler is None or (self.lane == LANE_CONTROL and t is AppendRequest and msg.entries is not None):
            what = "AppendRequest with entries" if handler is not None else t.__name__
            self.close(f"{what} is not allowed on the {LANE_NAMES[self.lane]} lane")
            return
        self._call(corr_id, handler, msg)

    def _call(self, corr_id: int, handler: Callable, msg: Any) -> None:
        try:
            fut = handler(msg)
        except Exception as exc:
            self._error(corr_id, exc)
            return
        fut.add_done_callback(partial(self._reply, corr_id))

    def _reply(self, corr_id: int, fut: asyncio.Future) -> None:
        if self.closed:
            _consume(fut)           # nobody to tell; do not leave an unretrieved exception
            return
        if fut.cancelled():
            self._error(corr_id, Fatal("request cancelled"))
        elif (exc := fut.exception()) is not None:
            self._error(corr_id, exc)
        else:
            self._send_checked(fut.result(), corr_id)

    def _error(self, corr_id: int, exc: BaseException) -> None:
        code = ERR_STOPPED if isinstance(exc, Fatal) else ERR_FAILED
        self._send_checked(codec.ErrorReply(code, f"node {self.raft.node_id}: {type(exc).__name__}: {exc}"), corr_id)

    def _send_checked(self, msg: Any, corr_id: int) -> None:
        if self.paused and self.over_limit():
            self.close(f"peer does not read its responses (more than {self.max_buffered} bytes waiting)")
            return
        self.send(msg, corr_id)

    def _handshake(self, corr_id: int, msg: Any) -> None:
        if type(msg) is not codec.Handshake or corr_id != HANDSHAKE_CORR:
            self.close(f"first frame is {type(msg).__name__} (correlation id {corr_id}), not a handshake")
            return
        raft = self.raft
        ours = raft.config.cluster_name
        if msg.version != codec.PROTOCOL_VERSION:
            reason = f"protocol version {msg.version} is not supported (this node speaks {codec.PROTOCOL_VERSION})"
        elif msg.cluster_name != ours:
            reason = f"cluster {msg.cluster_name!r} is not this node's cluster {ours!r}"
        elif msg.dst != raft.node_id:
            reason = f"connection meant for node {msg.dst} reached node {raft.node_id}"
        elif msg.lane not in LANE_NAMES:
            reason = f"unknown lane {msg.lane!r}"
        else:
            if self._handshake_timer is not None:
                self._handshake_timer.cancel()
                self._handshake_timer = None
            self.lane = msg.lane
            self.peer = msg.src
            self._handlers = self.server._handlers[msg.lane]
            self.send(codec.HandshakeReply(True, ""), HANDSHAKE_CORR)
            if self.server.peer_up is not None:
                self.server.peer_up(msg.src)
            return
        self.peer = msg.src
        self.send(codec.HandshakeReply(False, reason), HANDSHAKE_CORR)
        self.close(f"handshake refused: {reason}")

    # ------------------------------------------------------------------ snapshots
    def _chunk(self, corr_id: int, ch) -> None:
        key = (ch.vote, ch.msg_id, ch.seq)
        if ch.offset == 0:
            self._snap = bytearray()
            self._snap_key = key
        elif self._snap is None or key != self._snap_key or ch.offset != len(self._snap):
            have = -1 if self._snap is None else len(self._snap)
            self.close(f"snapshot chunk at offset {ch.offset} does not continue the transfer (have {have} bytes)")
            return
        self._snap += ch.data
        if not ch.last:
            # An acknowledgement that only paces the sender; the engine sees the last response.
            self._send_checked(SnapshotResponse(ch.vote, True, ch.msg_id, ch.seq, ch.sent_at), corr_id)
            return
        data = bytes(self._snap)
        self._snap = None
        self._call(corr_id, self.raft.install_snapshot,
                   InstallSnapshotRequest(ch.vote, ch.meta, data, ch.msg_id, ch.seq, ch.sent_at))


def _consume(fut: asyncio.Future) -> None:
    if not fut.cancelled():
        fut.exception()


class TcpServer:
    """A listening socket serving one Raft node; `port` is the bound port."""

    def __init__(self, raft, max_frame: int, max_buffered: int, handshake_timeout: float) -> None:
        self.raft = raft
        self.max_frame = max_frame
        self.max_buffered = max_buffered
        self.handshake_timeout = handshake_timeout
        self.host = ""
        self.port = 0
        self._server: Optional[asyncio.AbstractServer] = None
        self._conns: Set[ServerConnection] = set()
        self._handlers = _lane_handlers(raft)
        # Optional on the receiving side (a test double may leave it out).
        self.peer_up: Optional[Callable[[int], None]] = getattr(raft, "peer_connected", None)

    async def close(self) -> None:
        """Stop listening and close every connection; peers' pending requests fail."""
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns):
            conn.abort("server closed")
        self._conns.clear()
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), _CLOSE_WAIT)
            except asyncio.TimeoutError:
                log.warning("node %s: server on port %s did not close within %ss", self.raft.node_id, self.port,
                            _CLOSE_WAIT)
            self._server = None

    async def __aenter__(self) -> "TcpServer":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


async def serve_tcp(raft, host: str, port: int, ssl: Optional[_ssl.SSLContext] = None, *,
                    max_frame: int = codec.DEFAULT_MAX_FRAME, max_buffered: Optional[int] = None,
                    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT) -> TcpServer:
    """Serve `raft` to its peers on host:port (port 0 picks a free port: see `.port`).

    `ssl` is a server-side `ssl.SSLContext`; set `verify_mode = CERT_REQUIRED` and load a CA
    for mutual TLS. `max_frame` caps an incoming frame; `max_buffered` caps the responses held
    for a peer that does not read them (default Config.max_inflight_bytes); a connection that
    sends no handshake within `handshake_timeout` seconds is closed. Bad arguments raise
    InvalidArgument / InvalidArgumentType; an address that cannot be bound, NetworkError.
    """
    check_ssl(ssl)
    if not isinstance(host, str):
        raise InvalidArgumentType(f"host must be a str, got {host!r}")
    if isinstance(port, bool) or not isinstance(port, int):
        raise InvalidArgumentType(f"port must be an int, got {port!r}")
    if not 0 <= port < 65536:
        raise InvalidArgument(f"port must be in [0, 65535], got {port!r}")
    check_positive("max_frame", max_frame, integer=True)
    if max_buffered is not None:
        check_positive("max_buffered", max_buffered, integer=True)
    check_positive("handshake_timeout", handshake_timeout)
    server = TcpServer(raft, max_frame, max_buffered if max_buffered is not None else raft.config.max_inflight_bytes,
                       handshake_timeout)
    loop = asyncio.get_running_loop()
    try:
        server._server = await loop.create_server(lambda: ServerConnection(server), host, port, ssl=ssl)
    except OSError as exc:
        raise NetworkError(f"node {raft.node_id}: cannot listen on {host}:{port}: {exc}") from exc
    sock = server._server.sockets[0]
    server.host, server.port = sock.getsockname()[:2]
    log.info("node %s: serving raft on %s:%s%s", raft.node_id, server.host, server.port, " (TLS)" if ssl else "")
    return server
