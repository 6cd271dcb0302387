"""An in-process cluster for the integration tests: Raft nodes on a LocalRouter with
memory stores, driven only through the public API."""
from __future__ import annotations

import asyncio
from typing import Dict, Iterable, Optional, Tuple

import msgpack

from openraft_fast import Config, Node, Raft, ServerState
from openraft_fast.errors import ForwardToLeader
from openraft_fast.network import LocalRouter
from openraft_fast.storage import MemLogStore, MemStateMachine

# Short timeouts keep the tests quick; the election timeout leaves room for a loaded machine.
FAST = Config(heartbeat_interval=0.02, election_timeout_min=0.15, election_timeout_max=0.3)

# How long the waits in the tests may take: generous, the machine is shared.
WAIT = 5.0


def kv(key, value) -> bytes:
    """A MemStateMachine set command."""
    return msgpack.packb([key, value])


def node(i: int) -> Node:
    return Node(f"local:{i}")


class Cluster:
    def __init__(self, config: Config = FAST, seed: int = 0) -> None:
        self.config = config
        self.router = LocalRouter(seed)
        self.rafts: Dict[int, Raft] = {}
        self.stores: Dict[int, Tuple[MemLogStore, MemStateMachine]] = {}
        self.stopped: set = set()

    async def __aenter__(self) -> "Cluster":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.shutdown()

    # nodes --------------------------------------------------------------------------
    async def start_node(self, i: int, log_store=None, sm=None, config: Optional[Config] = None) -> Raft:
        log_store = MemLogStore() if log_store is None else log_store
        sm = MemStateMachine() if sm is None else sm
        raft = await Raft.start(i, config or self.config, self.router.factory(i), log_store, sm)
        self.router.add(raft)
        self.rafts[i] = raft
        self.stores[i] = (log_store, sm)
        self.stopped.discard(i)
        return raft

    async def start(self, ids: Iterable[int], init: bool = True) -> int:
        """Start nodes `ids`; with `init`, initialize them as the voters and wait for a leader
        that every node follows. Returns the leader id."""
        ids = list(ids)
        for i in ids:
            await self.start_node(i)
        if not init:
            return -1
        await self.rafts[ids[0]].initialize({i: node(i) for i in ids})
        return await self.wait_leader(ids)

    async def stop(self, i: int) -> None:
        """Kill node i: cut it off, shut it down (a kill: no hand-off), take it out of the router."""
        self.router.isolate(i)
        await self.rafts[i].shutdown(transfer=False)
        self.router.remove(i)
        self.stopped.add(i)

    async def restart(self, i: int) -> Raft:
        """Start node i again from the stores it wrote."""
        log_store, sm = self.stores[i]
        self.router.heal(i)
        return await self.start_node(i, log_store, sm)

    async def shutdown(self) -> None:
        for i, r in list(self.rafts.items()):
            if i not in self.stopped:
                await r.shutdown()
                self.stopped.add(i)

    # state --------------------------------------------------------------------------
    def live(self, ids: Optional[Iterable[int]] = None):
        ids = self.rafts.keys() if ids is None else ids
        return [i for i in ids if i not in self.stopped]

    def sm(self, i: int) -> MemStateMachine:
        return self.stores[i][1]

    def log(self, i: int) -> MemLogStore:
        return self.stores[i][0]

    def leaders(self, ids=None):
        return [i for i in self.live(ids) if self.rafts[i].is_leader()]

    async def wait_leader(self, ids=None, timeout: float = WAIT, exclude: Iterable[int] = ()) -> int:
        """Wait until exactly one of `ids` (live ones) leads and every other one follows it;
        returns its id."""
        exclude = set(exclude)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            ids_now = [i for i in self.live(ids) if i not in exclude]
            leaders = [i for i in ids_now if self.rafts[i].metrics.state == ServerState.LEADER]
            if len(leaders) == 1:
                lead = leaders[0]
                if all(self.rafts[i].metrics.current_leader == lead for i in ids_now):
                    return lead
            if loop.time() > deadline:
                states = {i: (self.rafts[i].metrics.state.name, self.rafts[i].metrics.current_leader,
                              self.rafts[i].metrics.current_term) for i in ids_now}
                raise AssertionError(f"no single agreed leader among {ids_now} within {timeout}s: {states}")
            await asyncio.sleep(0.01)

    async def wait_applied(self, index: int, ids=None, timeout: float = WAIT) -> None:
        await asyncio.gather(*(self.rafts[i].wait(timeout).applied_index(index) for i in self.live(ids)))

    async def write(self, leader: int, key, value):
        """Write through `leader`, following ForwardToLeader as a client would: a leader change
        in the middle of a test (a slow machine can cause one) is Raft working, not a failure.
        A refused write was never appended, so retrying it cannot apply it twice."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        target = leader
        while True:
            try:
                return await self.rafts[target].client_write(kv(key, value))
            except ForwardToLeader as exc:
                if loop.time() > deadline:
                    raise
                if exc.leader_id is not None and exc.leader_id in self.live():
                    target = exc.leader_id
                else:
                    await asyncio.sleep(0.02)

    async def write_many(self, leader: int, items) -> int:
        """Write (key, value) pairs in one batch; returns the last index."""
        rs = await self.rafts[leader].client_write_many([kv(k, v) for k, v in items])
        return rs.last_log_id.index

    def assert_same_data(self, ids=None, expect: Optional[dict] = None) -> None:
        ids = self.live(ids)
        first = self.sm(ids[0]).data
        for i in ids:
            assert self.sm(i).data == first, f"node {i} data {self.sm(i).data} != node {ids[0]} data {first}"
        if expect is not None:
            assert first == expect, f"state machine data {first}, expected {expect}"


async def retry_write(cluster: "Cluster", key, value, timeout: float = WAIT, ids=None):
    """Write through whichever live node leads, retrying while there is none or it refuses
    (ForwardToLeader). Returns the response. The KV writes are idempotent sets."""
    from openraft_fast import ForwardToLeader
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last_err = None
    while loop.time() < deadline:
        leaders = cluster.leaders(ids)
        if leaders:
            try:
                return await asyncio.wait_for(cluster.rafts[leaders[0]].client_write(kv(key, value)),
                                              min(1.0, max(0.05, deadline - loop.time())))
            except (ForwardToLeader, asyncio.TimeoutError) as exc:
                last_err = exc
        await asyncio.sleep(0.02)
    raise AssertionError(f"could not write {key!r} within {timeout}s (last error {last_err!r})")


async def events_until(events, pred, timeout: float = WAIT) -> list:
    """Read a Raft.events() subscription until an event satisfies `pred`; returns the events
    read, that one last. AssertionError (with what was read) after `timeout` or if the stream
    ends first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen: list = []
    while True:
        try:
            event = await asyncio.wait_for(events.__anext__(), max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            raise AssertionError(f"no such event within {timeout}s; read {seen}") from None
        except StopAsyncIteration:
            raise AssertionError(f"the events ended first; read {seen}") from None
        seen.append(event)
        if pred(event):
            return seen
