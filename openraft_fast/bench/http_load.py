"""A small HTTP put load generator, for `bench --service http --load python` where wrk is not
installed: N keep-alive connections on uvloop, one request in flight each, prebuilt request
bytes and a minimal response reader. It costs the machine more per request than wrk (so
figures taken with it are lower); it prints the same summary line as the wrk script.

`python -m openraft_fast.bench.http_load --host H --port P --connections N --seconds S --payload B`
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time
from array import array
from typing import List, Optional


class _PutConnection(asyncio.Protocol):
    def __init__(self, requests: List[bytes], state: dict, lats: array) -> None:
        self.requests = requests
        self.state = state
        self.lats = lats
        self.n = 0
        self.buf = b""
        self.t0 = 0.0
        self.transport: Optional[asyncio.Transport] = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport
        self._send()

    def _send(self) -> None:
        if time.perf_counter() >= self.state["stop"]:
            self.transport.close()          # type: ignore[union-attr]
            return
        self.n += 1
        self.t0 = time.perf_counter()
        self.transport.write(self.requests[self.n % len(self.requests)])   # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end]
            at = head.find(b"Content-Length: ")
            length = int(head[at + 16:head.find(b"\r\n", at)]) if at >= 0 else 0
            if len(self.buf) < end + 4 + length:
                return
            status = int(head[9:12])
            self.buf = self.buf[end + 4 + length:]
            if self.state["measuring"]:
                self.lats.append(time.perf_counter() - self.t0)
                self.state["requests"] += 1
                if not 200 <= status < 400:
                    self.state["non2xx"] += 1
            self._send()

    def connection_lost(self, exc) -> None:
        if exc is not None and self.state["measuring"]:
            self.state["socket_errors"] += 1
        if not self.closed.done():
            self.closed.set_result(None)


async def load(host: str, port: int, connections: int, seconds: float, payload: int) -> dict:
    body = json.dumps({"value": "v" * payload}).encode()
    requests = [(f"PUT /v1/kv/k{i} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n").encode() + body for i in range(1000)]
    state = new_state()
    lats = array("d")
    loop = asyncio.get_running_loop()
    conns = []
    for _ in range(connections):
        _, proto = await loop.create_connection(lambda: _PutConnection(requests, state, lats), host, port)
        conns.append(proto)
    await asyncio.sleep(0.2)                # warm up, unmeasured
    state["measuring"] = True
    t0 = time.perf_counter()
    state["stop"] = t0 + seconds
    await asyncio.gather(*(c.closed for c in conns))
    state["measuring"] = False
    return summary(state, lats, time.perf_counter() - t0)


def new_state() -> dict:
    """What a load client counts (shared with bench.binary_load)."""
    return {"measuring": False, "stop": float("inf"), "requests": 0, "non2xx": 0, "socket_errors": 0}


def summary(state: dict, lats: array, elapsed: float) -> dict:
    """The summary line's fields, as the wrk script prints them (latencies in microseconds)."""
    ordered = sorted(lats)
    pick = (lambda q: ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1e6) if ordered else (lambda q: 0.0)
    return {"requests": state["requests"], "duration_us": int(elapsed * 1e6), "socket_errors": state["socket_errors"],
            "non2xx": state["non2xx"], "p50_us": int(pick(0.5)), "p99_us": int(pick(0.99))}


def main(argv: Optional[List[str]] = None) -> None:
    from openraft_fast._aio import run
    ap = argparse.ArgumentParser(prog="python -m openraft_fast.bench.http_load")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--payload", type=int, default=16)
    args = ap.parse_args(argv)
    summary = run(load(args.host, args.port, args.connections, args.seconds, args.payload))
    print("SUMMARY " + json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
