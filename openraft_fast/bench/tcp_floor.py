"""The TCP floor for benchmark B3: a minimal quorum commit across processes in plain Python, no
Raft logic. The leader (the bench process) sends every write to each follower process over an
asyncio Protocol (uvloop) in length-prefixed frames; a follower acks the highest sequence number
it has received; a write completes once a majority (counting the leader) holds it. Both sides
coalesce, as our transport must: one `transport.write` per peer per loop iteration and one ack
per read. Whatever our Raft costs above these rows is its own overhead.

Follower process: `python -m openraft_fast.bench.tcp_floor --port 0` (prints `READY <port>`)."""
from __future__ import annotations

import argparse
import asyncio
import functools
import struct
from collections import deque
from typing import List, Optional, Sequence

from openraft_fast.errors import NetworkError

# leader -> follower: body length, the last sequence number the frame carries, then the body.
FRAME = struct.Struct("<IQ")
# follower -> leader: the highest sequence number received so far.
ACK = struct.Struct("<Q")


class _FollowerProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self._transport = transport
        self._buf = bytearray()

    def data_received(self, data):
        buf = self._buf
        buf += data
        off, end, last = 0, len(buf), -1
        unpack = FRAME.unpack_from
        hdr = FRAME.size
        while end - off >= hdr:
            size, seq = unpack(buf, off)
            if off + hdr + size > end:
                break
            last = seq
            off += hdr + size
        if off:
            del buf[:off]
        if last >= 0:
            self._transport.write(ACK.pack(last))


async def serve_follower(host: str = "127.0.0.1", port: int = 0):
    loop = asyncio.get_running_loop()
    return await loop.create_server(_FollowerProtocol, host, port)


class _PeerProtocol(asyncio.Protocol):
    def __init__(self, leader: "FloorLeader", index: int):
        self._leader = leader
        self._index = index
        self._buf = b""

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        buf = self._buf + data
        whole = len(buf) - len(buf) % ACK.size
        if whole:
            # Acks are cumulative: only the newest in this read matters.
            self._leader._acked(self._index, ACK.unpack_from(buf, whole - ACK.size)[0])
        self._buf = buf[whole:]

    def connection_lost(self, exc):
        self._leader._peer_lost(self._index, exc)


class FloorLeader:
    """The writing side, with the write API of `Raft` that `run_load` drives:
    `await client_write(payload)` and `await client_write_many(payloads)`."""

    def __init__(self, nodes: int):
        if nodes < 2:
            raise ValueError("the floor needs at least one follower")
        self._loop = asyncio.get_running_loop()
        self._need = nodes // 2          # follower acks a write needs: a majority with the leader
        self._peers: List[_PeerProtocol] = []
        self._acks: List[int] = []
        self._seq = 0
        self._committed = 0
        self._out: list = []             # frames queued in this loop iteration
        self._waiting: deque = deque()   # (last sequence number, future), in order
        self._closed: Optional[BaseException] = None

    async def connect(self, addrs: Sequence[tuple]) -> None:
        for i, (host, port) in enumerate(addrs):
            _, proto = await self._loop.create_connection(functools.partial(_PeerProtocol, self, i), host, port)
            self._peers.append(proto)
            self._acks.append(0)

    def client_write(self, payload):
        return self._submit(payload, 1)

    def client_write_many(self, payloads):
        return self._submit(b"".join(payloads), len(payloads))

    def _submit(self, body, count: int):
        fut = self._loop.create_future()
        if self._closed is not None:
            fut.set_exception(self._closed)
            return fut
        self._seq += count
        if not self._out:
            self._loop.call_soon(self._flush)
        self._out.append(FRAME.pack(len(body), self._seq))
        self._out.append(body)
        self._waiting.append((self._seq, fut))
        return fut

    def _flush(self):
        data = b"".join(self._out)
        self._out.clear()
        for p in self._peers:
            p.transport.write(data)

    def _acked(self, index: int, seq: int) -> None:
        acks = self._acks
        acks[index] = seq
        committed = sorted(acks, reverse=True)[self._need - 1] if self._need > 1 else max(acks)
        if committed <= self._committed:
            return
        self._committed = committed
        waiting = self._waiting
        while waiting and waiting[0][0] <= committed:
            fut = waiting.popleft()[1]
            if not fut.done():
                fut.set_result(None)

    def _peer_lost(self, index: int, exc) -> None:
        if self._closed is None:
            self._fail(NetworkError(f"floor: follower {index} connection lost ({exc or 'closed'})"))

    def _fail(self, error: BaseException) -> None:
        self._closed = error
        while self._waiting:
            fut = self._waiting.popleft()[1]
            if not fut.done():
                fut.set_exception(error)

    async def close(self) -> None:
        if self._closed is None:
            self._fail(NetworkError("floor: closed"))
        for p in self._peers:
            p.transport.close()
        await asyncio.sleep(0)


def main(argv=None) -> None:
    from openraft_fast._aio import run
    from openraft_fast.bench.procs import announce_ready, exit_with_parent
    ap = argparse.ArgumentParser(prog="python -m openraft_fast.bench.tcp_floor")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args(argv)

    async def serve():
        server = await serve_follower(args.host, args.port)
        announce_ready(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()      # until killed, or stdin closes

    exit_with_parent()
    run(serve())


if __name__ == "__main__":
    main()
