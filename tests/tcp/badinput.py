"""Bad input for a live node, sent over a raw socket: each case's bytes and what the node must
do (close that one connection, saying why; for a refused handshake, reply with the reason)."""
from __future__ import annotations

import asyncio
from typing import List, NamedTuple, Optional

from openraft_fast._core import codec
from openraft_fast._core.log import LogSlice
from openraft_fast._core.messages import AppendRequest, VoteRequest
from openraft_fast._core.types import LeaderId, Vote
from openraft_fast.network.tcp import LANE_APPEND, LANE_CONTROL, LANE_SNAPSHOT

VOTE = Vote(LeaderId(1, 1), False)


class Case(NamedTuple):
    name: str
    data: bytes
    log_reason: str                  # in the node's log line about closing the connection
    reply_reason: Optional[str] = None   # a refused handshake's reply says this
    half_close: bool = False         # send EOF after the data


def handshake(cluster: str, dst: int, lane: int = LANE_CONTROL, version: Optional[int] = None,
              src: int = 1) -> bytes:
    v = codec.PROTOCOL_VERSION if version is None else version
    return codec.encode(codec.Handshake(v, cluster, src, dst, lane), 0)


def flip_last_bit(frame: bytes) -> bytes:
    b = bytearray(frame)
    b[-1] ^= 0x01
    return bytes(b)


def wrong_magic(frame: bytes) -> bytes:
    at = frame.find(codec.MAGIC)
    assert at >= 0, "the frame carries the magic"
    return frame[:at] + bytes(x ^ 0xFF for x in codec.MAGIC) + frame[at + len(codec.MAGIC):]


def cases(cluster: str, dst: int) -> List[Case]:
    ok = handshake(cluster, dst)
    vote = codec.encode(VoteRequest(VOTE), 1)
    bulk = codec.encode(AppendRequest(VOTE, None, LogSlice(1, [b"x"], None, [(1, LeaderId(1, 1))])), 1)
    return [
        Case("garbage", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(range(256)) * 4, "malformed frame"),
        Case("wrong magic", wrong_magic(ok), "malformed frame"),
        Case("bit flip", flip_last_bit(ok), "malformed frame"),
        Case("truncated then closed", ok[:len(ok) - 3], "inside a frame", half_close=True),
        Case("frame before handshake", vote, "not a handshake"),
        Case("wrong cluster", handshake("someone-else", dst), "handshake refused", "cluster 'someone-else'"),
        Case("wrong target", handshake(cluster, dst + 100), "handshake refused", f"meant for node {dst + 100}"),
        Case("old version", handshake(cluster, dst, version=codec.PROTOCOL_VERSION - 1), "handshake refused",
             "protocol version"),
        Case("vote on the snapshot lane", handshake(cluster, dst, LANE_SNAPSHOT) + vote,
             "not allowed on the snapshot lane"),
        Case("vote on the append lane", handshake(cluster, dst, LANE_APPEND) + vote,
             "not allowed on the append lane"),
        Case("bulk append on the control lane", ok + bulk, "not allowed on the control lane"),
        Case("second handshake", ok + ok, "not allowed on the control lane"),
    ]


class Outcome(NamedTuple):
    closed: bool               # the node closed the connection
    replies: list              # frames it sent before closing


async def send_raw(port: int, data: bytes, half_close: bool = False, timeout: float = 5.0) -> Outcome:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    replies: list = []
    closed = False
    try:
        writer.write(data)
        if half_close:
            writer.write_eof()
        await writer.drain()
        dec = codec.FrameDecoder()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), deadline - loop.time())
            except asyncio.TimeoutError:
                break
            except ConnectionError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            replies.extend(dec.feed(chunk))
    finally:
        writer.close()
    return Outcome(closed, replies)


async def assert_accepts_handshake(port: int, cluster: str, dst: int) -> None:
    """The node at `port` still accepts a good handshake (and keeps the connection)."""
    out = await send_raw(port, handshake(cluster, dst), timeout=0.3)
    assert not out.closed and len(out.replies) == 1 and out.replies[0][1].ok, out
