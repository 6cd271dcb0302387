"""In-process floors for B1/B2 (issue 12): what a write costs with no Raft logic at all, measured
in the same run as the real cluster so the targets are ratios on a noisy, shared machine.

- `InProcessFloor`: three minimal nodes on one loop. A write goes to the leader, which sends it
  to both followers as `LocalRouter` would (one `call_soon` per message, the writes of one loop
  iteration in one message), each follower acks with another `call_soon`, and the first ack
  (a majority with the leader) resolves the writer's future. Same hops as our cluster, nothing
  else.
- `FutureCeiling`: each write is a future resolved from one `call_soon` batch: what asyncio
  itself costs per awaited write.

Both expose `client_write` / `client_write_many`, so `bench.load.run_load` drives them exactly as it
drives a `Raft`.
"""
from __future__ import annotations

import asyncio
from typing import List, Tuple

_Pending = List[Tuple[asyncio.Future, int]]


class _Follower:
    __slots__ = ("loop", "log")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.log: list = []

    def receive(self, leader: "InProcessFloor", payloads: list, last: int) -> None:
        self.log.extend(payloads)
        self.loop.call_soon(leader.ack, last)


class InProcessFloor:
    """A leader and two followers exchanging call_soon messages; no Raft logic."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.followers = (_Follower(self.loop), _Follower(self.loop))
        self.log: list = []
        self.batch: list = []
        self.waiting: _Pending = []           # (future, last index it needs), in index order
        self.acked = 0
        self.scheduled = False

    def _submit(self, payloads: list, fut: asyncio.Future) -> asyncio.Future:
        self.batch.extend(payloads)
        self.waiting.append((fut, len(self.log) + len(self.batch)))
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self._flush)
        return fut

    def client_write(self, payload: bytes) -> asyncio.Future:
        return self._submit([payload], self.loop.create_future())

    def client_write_many(self, payloads: list) -> asyncio.Future:
        return self._submit(payloads, self.loop.create_future())

    def _flush(self) -> None:
        self.scheduled = False
        batch, self.batch = self.batch, []
        self.log.extend(batch)
        last = len(self.log)
        for f in self.followers:
            self.loop.call_soon(f.receive, self, batch, last)

    def ack(self, last: int) -> None:
        if last <= self.acked:
            return                              # the other follower's ack: already committed
        self.acked = last
        waiting = self.waiting
        i = 0
        while i < len(waiting) and waiting[i][1] <= last:
            waiting[i][0].set_result(None)
            i += 1
        del waiting[:i]


class FutureCeiling:
    """Each write is a future resolved from one call_soon batch per loop iteration."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.pending: List[asyncio.Future] = []

    def client_write(self, payload: bytes) -> asyncio.Future:
        fut = self.loop.create_future()
        if not self.pending:
            self.loop.call_soon(self._resolve)
        self.pending.append(fut)
        return fut

    def client_write_many(self, payloads: list) -> asyncio.Future:
        return self.client_write(b"")

    def _resolve(self) -> None:
        pending, self.pending = self.pending, []
        for fut in pending:
            fut.set_result(None)


FLOORS = {"floor": InProcessFloor, "ceiling": FutureCeiling}
