"""A load generator for the binary client protocol (`bench --service binary`): `outstanding`
puts in flight at all times, spread over `connections` connections; each answer sends the
next put at once. Frames are built and read by the codec (C); no future per request. Prints
the summary line of bench.http_load.

`python -m openraft_fast.bench.binary_load --port P --connections N --outstanding M --seconds S`
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time
from array import array
from typing import Dict, List, Optional

import msgpack

from openraft_fast._core import codec
from openraft_fast.bench.http_load import new_state, summary
from openraft_fast.kv.binary import OP_PUT


class _Connection(asyncio.BufferedProtocol):
    def __init__(self, requests: List[bytes], state: dict, lats: array, inflight: int) -> None:
        self.requests = requests
        self.state = state
        self.lats = lats
        self.inflight = inflight
        self.decoder = codec.FrameDecoder(codec.DEFAULT_MAX_FRAME)
        self.sent_at: Dict[int, float] = {}
        self.next_id = 1
        self.out = bytearray()
        self.flush_scheduled = False
        self.transport: Optional[asyncio.Transport] = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport
        for _ in range(self.inflight):
            self._send()
        self._flush()

    def _send(self) -> None:
        i = self.next_id
        self.next_id += 1
        self.sent_at[i] = time.perf_counter()
        codec.encode_into(self.out, codec.ClientRequest(self.requests[i % len(self.requests)]), i)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self.flush_scheduled = False
        if self.out and self.transport is not None and not self.transport.is_closing():
            data, self.out = self.out, bytearray()
            self.transport.write(data)

    def get_buffer(self, sizehint: int):
        return self.decoder.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        now = time.perf_counter()
        state = self.state
        for corr_id, msg in self.decoder.buffer_updated(nbytes):
            t0 = self.sent_at.pop(corr_id, None)
            if state["measuring"] and t0 is not None:
                self.lats.append(now - t0)
                state["requests"] += 1
                if type(msg) is not codec.ClientResponse or msgpack.unpackb(msg.data)[0] != 200:
                    state["non2xx"] += 1
            if now < state["stop"]:
                self._send()
            elif not self.sent_at and self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc) -> None:
        if exc is not None and self.state["measuring"]:
            self.state["socket_errors"] += 1
        if not self.closed.done():
            self.closed.set_result(None)


async def load(host: str, port: int, connections: int, outstanding: int, seconds: float, payload: int) -> dict:
    requests = [msgpack.packb([OP_PUT, f"k{i}", "v" * payload]) for i in range(1000)]
    state = new_state()
    lats = array("d")
    loop = asyncio.get_running_loop()
    connections = max(1, min(connections, outstanding))
    share = [outstanding // connections + (1 if i < outstanding % connections else 0) for i in range(connections)]
    conns = []
    for n in share:
        _, proto = await loop.create_connection(lambda: _Connection(requests, state, lats, n), host, port)
        conns.append(proto)
    await asyncio.sleep(0.2)                # warm up, unmeasured
    state["measuring"] = True
    t0 = time.perf_counter()
    state["stop"] = t0 + seconds
    await asyncio.wait_for(asyncio.gather(*(c.closed for c in conns)), seconds + 20)
    return summary(state, lats, time.perf_counter() - t0)


def main(argv: Optional[List[str]] = None) -> None:
    from openraft_fast._aio import run
    ap = argparse.ArgumentParser(prog="python -m openraft_fast.bench.binary_load")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--outstanding", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--payload", type=int, default=16)
    args = ap.parse_args(argv)
    summary = run(load(args.host, args.port, args.connections, args.outstanding, args.seconds, args.payload))
    print("SUMMARY " + json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
