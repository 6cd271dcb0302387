"""An in-process network for tests and benchmarks, with fault injection.

Messages are delivered through the event loop (call_soon / call_later), never by a direct
call into the target, so a cluster in one process behaves like one over a network: no deep
recursion, responses arrive in later loop iterations.
"""
from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any, Dict, Optional, Set, Tuple

from openraft_fast.errors import NetworkError, Unreachable
from openraft_fast.network.base import Network, NetworkFactory

KINDS = ("append", "heartbeat", "vote", "snapshot", "timeout_now", "read_index", "forward")


class LocalRouter:
    """Routes RPCs between Raft nodes of one process.

    Faults: isolate(n) / heal(n) cut a node off both ways; cut(a, b) / restore(a, b) cut one
    directed link; set_delay(seconds) delays every message; set_drop(p) drops a fraction.
    `counts` counts RPCs by kind ("append", "heartbeat", "vote", "snapshot", "timeout_now",
    "read_index", "forward").
    """

    def __init__(self, seed: int = 0) -> None:
        self.nodes: Dict[int, Any] = {}        # node id -> Raft
        self.counts: Counter = Counter()
        self._isolated: Set[int] = set()
        self._cut: Set[Tuple[int, int]] = set()
        self._delay = 0.0
        self._drop = 0.0
        self._rng = random.Random(seed)
        self._faults = False
        self._outbox: list = []                 # (src, dst, kind, msg, future) not yet delivered
        self._flush_scheduled = False

    def factory(self, node_id: int) -> "LocalNetworkFactory":
        return LocalNetworkFactory(self, node_id)

    def add(self, raft) -> None:
        self.nodes[raft.node_id] = raft

    def remove(self, node_id: int) -> None:
        self.nodes.pop(node_id, None)

    # Fault injection.
    def isolate(self, node_id: int) -> None:
        self._isolated.add(node_id)
        self._update()

    def heal(self, node_id: Optional[int] = None) -> None:
        """Heal one node, or with no argument every fault (isolation, cuts, delay, drops)."""
        if node_id is None:
            self._isolated.clear()
            self._cut.clear()
            self._delay = 0.0
            self._drop = 0.0
        else:
            self._isolated.discard(node_id)
        self._update()

    def cut(self, src: int, dst: int) -> None:
        self._cut.add((src, dst))
        self._update()

    def restore(self, src: int, dst: int) -> None:
        self._cut.discard((src, dst))
        self._update()

    def set_delay(self, seconds: float) -> None:
        self._delay = seconds
        self._update()

    def set_drop(self, fraction: float) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("drop fraction must be in [0, 1]")
        self._drop = fraction
        self._update()

    def _update(self) -> None:
        self._faults = bool(self._isolated or self._cut or self._delay or self._drop)

    def _blocked(self, src: int, dst: int) -> bool:
        return src in self._isolated or dst in self._isolated or (src, dst) in self._cut

    # Delivery.
    def _send(self, src: int, dst: int, kind: str, msg, loop: asyncio.AbstractEventLoop) -> asyncio.Future:
        fut = loop.create_future()
        self.counts[kind] += 1
        if not self._faults:
            # The messages of one loop iteration are delivered by one callback, in order.
            self._outbox.append((src, dst, kind, msg, fut))
            if not self._flush_scheduled:
                self._flush_scheduled = True
                loop.call_soon(self._flush)
            return fut
        if self._blocked(src, dst):
            fut.set_exception(Unreachable(f"{src} -> {dst}: link is cut"))
            return fut
        if self._drop and self._rng.random() < self._drop:
            fut.set_exception(NetworkError(f"{src} -> {dst}: {kind} dropped"))
            return fut
        if self._delay:
            loop.call_later(self._delay, self._deliver_faulty, src, dst, kind, msg, fut)
        else:
            loop.call_soon(self._deliver_faulty, src, dst, kind, msg, fut)
        return fut

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._outbox = self._outbox, []
        nodes = self.nodes
        for src, dst, kind, msg, fut in batch:
            target = nodes.get(dst)
            if target is None:
                if not fut.done():
                    fut.set_exception(Unreachable(f"node {dst} is not in the router"))
            else:
                target._receive(kind, src, msg, fut)

    def _deliver_faulty(self, src: int, dst: int, kind: str, msg, fut: asyncio.Future) -> None:
        target = self.nodes.get(dst)
        if target is None or self._blocked(src, dst):
            if not fut.done():
                fut.set_exception(Unreachable(f"{src} -> {dst}: unreachable"))
            return
        # The response travels back over dst -> src, with the same faults.
        inner = asyncio.get_running_loop().create_future()
        inner.add_done_callback(lambda f: self._return(dst, src, f, fut))
        target._receive(kind, src, msg, inner)

    def _return(self, src: int, dst: int, inner: asyncio.Future, fut: asyncio.Future) -> None:
        if fut.done():
            return
        if inner.cancelled():
            fut.cancel()
        elif (exc := inner.exception()) is not None:
            fut.set_exception(exc)
        elif self._blocked(src, dst) or (self._drop and self._rng.random() < self._drop):
            fut.set_exception(NetworkError(f"{src} -> {dst}: response lost"))
        elif self._delay:
            asyncio.get_running_loop().call_later(self._delay, _resolve, fut, inner.result())
        else:
            fut.set_result(inner.result())


def _resolve(fut: asyncio.Future, value) -> None:
    if not fut.done():
        fut.set_result(value)


class LocalNetwork(Network):
    __slots__ = ("router", "src", "dst", "loop")

    def __init__(self, router: LocalRouter, src: int, dst: int) -> None:
        self.router = router
        self.src = src
        self.dst = dst
        # Made by the runtime on its loop; asking for the running loop per message costs a getpid().
        self.loop = asyncio.get_running_loop()

    def append_entries(self, req):
        return self.router._send(self.src, self.dst, "append", req, self.loop)

    def heartbeat(self, req):
        return self.router._send(self.src, self.dst, "heartbeat", req, self.loop)

    def vote(self, req):
        return self.router._send(self.src, self.dst, "vote", req, self.loop)

    def install_snapshot(self, req):
        return self.router._send(self.src, self.dst, "snapshot", req, self.loop)

    def timeout_now(self, msg):
        return self.router._send(self.src, self.dst, "timeout_now", msg, self.loop)

    def read_index(self, req):
        return self.router._send(self.src, self.dst, "read_index", req, self.loop)

    def forward(self, req):
        return self.router._send(self.src, self.dst, "forward", req, self.loop)


class LocalNetworkFactory(NetworkFactory):
    def __init__(self, router: LocalRouter, node_id: int) -> None:
        self.router = router
        self.node_id = node_id

    def new_client(self, target, node) -> LocalNetwork:
        return LocalNetwork(self.router, self.node_id, target)
