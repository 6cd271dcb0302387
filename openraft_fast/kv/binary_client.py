"""The client side of the binary protocol (kv/binary.py): one connection per endpoint, any
number of requests in flight on it, matched by correlation id. The requests of one loop
iteration leave in one write (FrameConnection coalesces)."""
from __future__ import annotations

import asyncio
import ssl as _ssl
from typing import Any, Dict, Optional, Tuple

import msgpack

from openraft_fast._core.codec import ClientRequest, ClientResponse
from openraft_fast.network.tcp.frames import FrameConnection

MAX_FRAME = 64 << 20


class ChannelClosed(ConnectionError):
    """The connection broke: `sent` says whether the request had been handed to it."""

    def __init__(self, message: str, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class _Connection(FrameConnection):
    def __init__(self, channel: "BinaryChannel") -> None:
        super().__init__(MAX_FRAME, MAX_FRAME)
        self.channel = channel

    def frame_received(self, corr_id: int, msg: Any) -> None:
        fut = self.channel.pending.pop(corr_id, None)
        if type(msg) is not ClientResponse:
            self.close(f"expected a ClientResponse, got {type(msg).__name__}")
            return
        if fut is not None and not fut.done():
            fut.set_result(msg.data)

    def lost(self, reason: str) -> None:
        self.channel.lost(self, reason)


class BinaryChannel:
    """Requests to one `orf://` (or TLS `orfs://`) endpoint."""

    def __init__(self, host: str, port: int, ssl: Optional[_ssl.SSLContext] = None) -> None:
        self.host = host
        self.port = port
        self.ssl = ssl
        self.pending: Dict[int, asyncio.Future] = {}
        self._conn: Optional[_Connection] = None
        self._connecting: Optional[asyncio.Future] = None
        self._next_id = 1

    async def _connection(self) -> _Connection:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        if self._connecting is None:
            loop = asyncio.get_running_loop()
            self._connecting = loop.create_task(loop.create_connection(
                lambda: _Connection(self), self.host, self.port, ssl=self.ssl,
                server_hostname=self.host if self.ssl is not None else None))
        try:
            _, conn = await asyncio.shield(self._connecting)
        finally:
            if self._connecting is not None and self._connecting.done():
                self._connecting = None
        self._conn = conn
        return conn

    async def call(self, request: Any, timeout: float) -> Tuple[int, Dict[str, Any]]:
        """Send `request` (a list: [op, args...]) and return (status, body). Raises OSError
        (connect), asyncio.TimeoutError or ChannelClosed after it was sent (outcome unknown)."""
        conn = await asyncio.wait_for(self._connection(), timeout)
        corr_id = self._next_id
        self._next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self.pending[corr_id] = fut
        conn.send(ClientRequest(msgpack.packb(request)), corr_id)
        try:
            data = await asyncio.wait_for(fut, timeout)
        finally:
            self.pending.pop(corr_id, None)
        status, body = msgpack.unpackb(data)
        return status, body

    def lost(self, conn: _Connection, reason: str) -> None:
        if conn is self._conn:
            self._conn = None
        pending, self.pending = self.pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(ChannelClosed(f"orf://{self.host}:{self.port}: {reason}", True))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close("client closed")
            self._conn = None
