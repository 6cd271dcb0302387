"""The wire codec: messages between nodes as length-prefixed, checksummed frames.

    from openraft_fast._core import codec
    frame = codec.encode(msg, corr_id)          # bytes: header + body
    codec.encode_into(out, msg, corr_id)        # append a frame to a bytearray (coalesced writes)
    dec = codec.FrameDecoder()                  # one per connection
    for corr_id, msg in dec.feed(data): ...     # or get_buffer()/buffer_updated() (BufferedProtocol)

Encodes VoteRequest, VoteResponse, AppendRequest (entries=None for a heartbeat), AppendResponse,
TimeoutNow, ReadIndexRequest, ReadIndexResponse, SnapshotResponse, and the wire-only messages
below. An InstallSnapshotRequest travels as SnapshotChunks (the transport splits and
reassembles it). Decoded messages compare equal to the encoded ones (both leader-id modes).

Every error is a CodecError (openraft_fast.errors.CodecError, a ValueError): a message that cannot
be encoded, or any malformed input (wrong magic or version, a checksum that fails, a frame over
`max_frame`, a truncated body, a bad type, counts or lengths that do not add up, trailing bytes).
After a CodecError the decoder is dead: every later call raises CodecError; close the connection.
Layout: docs/wire.md.
"""
from typing import Any, List, Optional, Tuple, Union
from typing_extensions import disjoint_base

from openraft_fast._core.messages import (AppendRequest, AppendResponse, ReadIndexRequest, ReadIndexResponse,
                                          SnapshotMeta, SnapshotResponse, TimeoutNow, VoteRequest, VoteResponse)
from openraft_fast._core.record import Record
from openraft_fast._core.types import Vote
from openraft_fast.errors import CodecError as CodecError

PROTOCOL_VERSION: int       # carried in every frame header and in Handshake.version
MAGIC: bytes                # the first bytes of every frame
HEADER_SIZE: int            # bytes of a frame header
DEFAULT_MAX_FRAME: int      # 64 MiB: the default limit on a whole frame (header + body)
LANE_APPEND: int            # 0: append-entries batches
LANE_CONTROL: int           # 1: votes, heartbeats, timeout-now, read-index
LANE_SNAPSHOT: int          # 2: snapshot chunks

_BytesLike = Union[bytes, bytearray, memoryview]


@disjoint_base
class Handshake(Record):
    """The first frame a client sends on a connection."""
    def __init__(self, version: int, cluster_name: str, src: int, dst: int, lane: int) -> None:
        """`version` a u32 (PROTOCOL_VERSION), `src`/`dst` node ids >= 0, `lane` LANE_*."""
    @property
    def version(self) -> int: ...
    @property
    def cluster_name(self) -> str: ...
    @property
    def src(self) -> int: ...
    @property
    def dst(self) -> int: ...
    @property
    def lane(self) -> int: ...


@disjoint_base
class HandshakeReply(Record):
    """The server's answer to a Handshake: `ok`, or the `reason` it refuses the connection."""
    def __init__(self, ok: bool, reason: str = "") -> None: ...
    @property
    def ok(self) -> bool: ...
    @property
    def reason(self) -> str: ...


@disjoint_base
class SnapshotChunk(Record):
    """One chunk of an InstallSnapshotRequest's data, starting at byte `offset`; `last` marks
    the final chunk. `data` is bytes-like (bytes when decoded)."""
    def __init__(self, vote: Vote, meta: SnapshotMeta, offset: int, data: _BytesLike, last: bool,
                 msg_id: int = 0, seq: int = 0, sent_at: int = 0) -> None: ...
    @property
    def vote(self) -> Vote: ...
    @property
    def meta(self) -> SnapshotMeta: ...
    @property
    def offset(self) -> int: ...
    @property
    def data(self) -> _BytesLike: ...
    @property
    def last(self) -> bool: ...
    @property
    def msg_id(self) -> int: ...
    @property
    def seq(self) -> int: ...
    @property
    def sent_at(self) -> int: ...


@disjoint_base
class ErrorReply(Record):
    """The remote handler raised (e.g. the node is stopped)."""
    def __init__(self, code: int, message: str = "") -> None: ...
    @property
    def code(self) -> int: ...
    @property
    def message(self) -> str: ...


_Message = Union[VoteRequest, VoteResponse, AppendRequest, AppendResponse, TimeoutNow, ReadIndexRequest,
                ReadIndexResponse, SnapshotResponse, SnapshotChunk, Handshake, HandshakeReply, ErrorReply]


def encode(msg: _Message, corr_id: int) -> bytes:
    """One whole frame (header + body) of `msg`, tagged with `corr_id` (0 <= corr_id < 2**64)."""
def encode_into(out: bytearray, msg: _Message, corr_id: int) -> None:
    """Append one frame of `msg` to `out` (coalesce many frames into one write)."""


@disjoint_base
class FrameDecoder:
    """Splits a byte stream into frames and decodes them; one per connection. Handles partial
    frames and many frames per read; the buffer is compacted and reused, and grows only to the
    size of a frame whose (checked) header says it is that big."""
    def __init__(self, max_frame: int = ...) -> None:
        """`max_frame`: the largest frame (header + body) accepted; DEFAULT_MAX_FRAME by default."""
    @property
    def pending(self) -> int:
        """Bytes buffered of an incomplete frame."""
    @property
    def max_frame(self) -> int: ...
    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """Free space to receive into (asyncio.BufferedProtocol.get_buffer)."""
    def buffer_updated(self, nbytes: int) -> List[Tuple[int, _Message]]:
        """`nbytes` were written into the last get_buffer() view: [(corr_id, msg), ...] of every
        frame now complete (asyncio.BufferedProtocol.buffer_updated). Raises CodecError."""
    def feed(self, data: _BytesLike) -> List[Tuple[int, _Message]]:
        """The same for bytes received another way (Protocol.data_received, tests)."""
