"""Metrics: a snapshot of a node's state, and waiting for a condition on it."""
from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import Callable, Dict, FrozenSet, Optional

from openraft_fast._core.types import LogId, Membership, Vote
from openraft_fast.errors import Timeout


class ServerState(enum.IntEnum):
    LEARNER = 0
    FOLLOWER = 1
    CANDIDATE = 2
    LEADER = 3
    SHUTDOWN = 4
    # In no membership it knows of: not initialized, not added yet, or removed. It takes part
    # in nothing until a leader adds it (or initialize() is called).
    NOT_MEMBER = 5


@dataclass(frozen=True)
class RaftMetrics:
    id: int
    state: ServerState
    current_term: int
    vote: Vote
    current_leader: Optional[int]
    last_log_index: int
    last_log_id: Optional[LogId]
    committed: Optional[LogId]
    last_applied: Optional[LogId]
    snapshot: Optional[LogId]
    purged: Optional[LogId]
    membership: Optional[Membership]
    membership_log_id: Optional[LogId]
    # Leader only: target -> matched log id (None until known).
    replication: Optional[Dict[int, Optional[LogId]]] = None
    running_state: Optional[BaseException] = None


class Wait:
    """`await raft.wait(timeout).state(ServerState.LEADER)` and friends: each returns the
    metrics once the condition holds, or raises Timeout after `timeout` seconds (None: waits
    with no bound); if the node stops meanwhile, its stop error."""

    def __init__(self, core, timeout: Optional[float]) -> None:
        self._core = core
        self._timeout = timeout

    async def metrics(self, pred: Callable[[RaftMetrics], bool], msg: str = "condition") -> RaftMetrics:
        core = self._core
        m = core.metrics()
        if pred(m):
            return m
        if core.stopped is not None:
            raise core.stopped
        fut = asyncio.get_running_loop().create_future()
        waiter = (pred, fut)
        core.metric_waiters.append(waiter)
        try:
            await asyncio.wait_for(fut, self._timeout)
            return core.metrics()
        except asyncio.TimeoutError:
            raise Timeout(f"node {core.node_id}: timed out after {self._timeout}s waiting for {msg}; "
                          f"last metrics {core.metrics()}") from None
        finally:
            if waiter in core.metric_waiters:
                core.metric_waiters.remove(waiter)

    async def state(self, state: ServerState) -> RaftMetrics:
        return await self.metrics(lambda m: m.state == state, f"state {state.name}")

    async def log(self, index: int) -> RaftMetrics:
        """Last log index and last applied index both reach `index`."""
        return await self.metrics(
            lambda m: m.last_log_index >= index and m.last_applied is not None and m.last_applied.index >= index,
            f"log {index}")

    async def applied_index(self, index: int) -> RaftMetrics:
        return await self.metrics(lambda m: m.last_applied is not None and m.last_applied.index >= index,
                                  f"applied index {index}")

    async def current_leader(self, leader_id: int) -> RaftMetrics:
        return await self.metrics(lambda m: m.current_leader == leader_id, f"leader {leader_id}")

    async def members(self, voter_ids) -> RaftMetrics:
        want: FrozenSet[int] = frozenset(voter_ids)
        return await self.metrics(
            lambda m: m.membership is not None and not m.membership.is_joint and m.membership.voter_ids == want,
            f"voters {sorted(want)}")

    async def snapshot(self, index: int) -> RaftMetrics:
        return await self.metrics(lambda m: m.snapshot is not None and m.snapshot.index >= index, f"snapshot {index}")

    async def purged(self, index: int) -> RaftMetrics:
        return await self.metrics(lambda m: m.purged is not None and m.purged.index >= index, f"purged {index}")
