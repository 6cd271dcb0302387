"""One TCP connection carrying codec frames both ways (the base of both the client and the
server side).

Reads go straight into the decoder's buffer (`BufferedProtocol`: no 256 KiB allocation per read
under stock asyncio). Writes are coalesced: `send` appends a frame to one buffer and the first
send of a loop iteration schedules a flush, so a connection makes at most one `transport.write`
per loop iteration however many frames it sends.
"""
from __future__ import annotations

import asyncio
import logging
import ssl as _ssl
from typing import Any, Optional

from openraft_fast._core import codec
from openraft_fast.errors import InvalidArgument, InvalidArgumentType

log = logging.getLogger("openraft_fast.network.tcp")

# Lanes: each is its own connection, so heartbeats never queue behind bulk data.
LANE_APPEND = codec.LANE_APPEND        # append batches (and empty probes)
LANE_CONTROL = codec.LANE_CONTROL      # votes, heartbeats, timeout-now, read-index
LANE_SNAPSHOT = codec.LANE_SNAPSHOT    # snapshot chunks
LANE_NAMES = {LANE_APPEND: "append", LANE_CONTROL: "control", LANE_SNAPSHOT: "snapshot"}

# A correlation id 0 marks the handshake and its reply; requests count from 1.
HANDSHAKE_CORR = 0


def check_positive(name: str, value: Any, integer: bool = False) -> None:
    """An option of the factory or the server: a positive number (an int if `integer`)."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise InvalidArgumentType(f"{name} must be {'an int' if integer else 'a number'}, got {value!r}")
    if not value > 0 or value == float("inf"):
        raise InvalidArgument(f"{name} must be positive and finite, got {value!r}")


def check_ssl(ssl: Any) -> None:
    if ssl is not None and not isinstance(ssl, _ssl.SSLContext):
        raise InvalidArgumentType(f"ssl must be an ssl.SSLContext or None, got {type(ssl).__name__}")


class FrameConnection(asyncio.BufferedProtocol):
    """Subclasses implement `frame_received(corr_id, msg)` and `lost(reason)`."""

    def __init__(self, max_frame: int, max_buffered: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: Optional[asyncio.BaseTransport] = None
        self.decoder = codec.FrameDecoder(max_frame)
        self.max_buffered = max_buffered
        self.closed = False
        self.paused = False             # the transport's write buffer is over its high-water mark
        self.close_reason = ""
        self._out = bytearray()
        self._flush_scheduled = False

    # ------------------------------------------------------------------ writing
    def send(self, msg: Any, corr_id: int) -> None:
        codec.encode_into(self._out, msg, corr_id)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def over_limit(self) -> bool:
        """True when the peer does not keep up: the transport paused us and more than
        `max_buffered` bytes wait to be sent."""
        if not self.paused:
            return False
        waiting = len(self._out)
        if self.transport is not None:
            waiting += self.transport.get_write_buffer_size()  # type: ignore[attr-defined]
        return waiting > self.max_buffered

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self.closed or self.transport is None or not self._out:
            return
        # Hand the buffer over instead of copying it; the next frames go to a new one.
        data, self._out = self._out, bytearray()
        self.transport.write(data)  # type: ignore[attr-defined]

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False

    # ------------------------------------------------------------------ reading
    def connection_made(self, transport) -> None:
        self.transport = transport
        if self.closed:            # closed before the connection was up
            transport.abort()
            return
        if self._out and not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def get_buffer(self, sizehint: int):
        return self.decoder.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        try:
            frames = self.decoder.buffer_updated(nbytes)
        except codec.CodecError as exc:
            self.close(f"malformed frame: {exc}")
            return
        self.on_bytes()
        try:
            for corr_id, msg in frames:
                if self.closed:
                    return
                self.frame_received(corr_id, msg)
        except Exception as exc:       # a bug, not bad input: say so and drop the connection
            log.exception("error handling a frame")
            self.close(f"error handling a frame: {exc!r}")

    def eof_received(self) -> Optional[bool]:
        if self.decoder.pending:
            self.close(f"peer closed inside a frame ({self.decoder.pending} bytes of it received)")
        return None      # close the transport

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        if not self.closed:
            self.closed = True
            self.close_reason = f"connection lost: {exc!r}" if exc is not None else "connection closed by peer"
        self._out = bytearray()
        self.lost(self.close_reason)

    # ------------------------------------------------------------------ closing
    def close(self, reason: str) -> None:
        """Close with a reason (logged by the caller or subclass). Frames already sent are
        flushed first (a refusal reaches the peer)."""
        if self.closed:
            return
        self._flush()
        self.closed = True
        self.close_reason = reason
        if self.transport is not None:
            self.transport.close()

    def abort(self, reason: str) -> None:
        """Close at once, dropping whatever is buffered."""
        if not self.closed:
            self.closed = True
            self.close_reason = reason
        self._out = bytearray()
        if self.transport is not None:
            self.transport.abort()  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ subclass hooks
    def on_bytes(self) -> None:
        """Bytes arrived (before the frames are handled)."""

    def frame_received(self, corr_id: int, msg: Any) -> None:
        raise NotImplementedError

    def lost(self, reason: str) -> None:
        """The connection is gone (closed by either side, or broken)."""
