"""Linearizable reads on any node.

On the leader, a read point (read log id) is confirmed by the leader lease or by a quorum
round (the engine's ensure_linearizable); the read is linearizable once this node has applied
up to it. On a follower or learner, the node asks the leader for a read point
(`ReadIndexRequest`, etcd's follower ReadIndex), waits until it has applied that far itself,
and then reads locally, so read throughput grows with the number of nodes.

Every wait here is bounded: a read never hangs on a lost leader or a stalled apply.
"""
from __future__ import annotations

import asyncio
from typing import Optional

from openraft_fast._core.engine import LEASE_READ, READ_INDEX
from openraft_fast._core.messages import (READ_INDEX_NO_QUORUM, READ_INDEX_NOT_LEADER, READ_INDEX_OK,
                                          ReadIndexRequest, ReadIndexResponse)
from openraft_fast._core.types import LogId
from openraft_fast.errors import ForwardToLeader, LeaseExpired, QuorumNotEnough, Timeout


def _expire(fut: asyncio.Future, what: str, seconds: float) -> None:
    if not fut.done():
        fut.set_exception(Timeout(f"{what} did not finish within {seconds:.3g} s"))


async def _bounded(fut: asyncio.Future, seconds: Optional[float], what: str):
    """Await `fut`, failing it with Timeout after `seconds` (None: no bound). A timer, not a
    task: reads are a hot path."""
    if seconds is None:
        return await fut
    handle = asyncio.get_running_loop().call_later(seconds, _expire, fut, what, seconds)
    try:
        return await fut
    finally:
        handle.cancel()


async def confirm_on_leader(core, policy: int) -> LogId:
    """The read point on this node as leader: the lease while it holds (LEASE_READ), a quorum
    round otherwise (READ_INDEX). Raises ForwardToLeader when this node does not lead."""
    if policy & LEASE_READ:
        try:
            return await core.read(LEASE_READ)
        except LeaseExpired:
            if not policy & READ_INDEX:
                raise
    return await core.read(READ_INDEX)


async def ask_leader(core, policy: int, timeout: float) -> LogId:
    """The read point, confirmed by the leader this node knows of."""
    engine = core.engine
    leader = engine.leader_id
    if leader is None or leader == core.node_id:
        raise ForwardToLeader(None, None, ForwardToLeader.NOT_LEADER, "no leader known to confirm a follower read")
    client = core._client(leader)
    if client is None:
        raise ForwardToLeader(None, None, ForwardToLeader.NOT_LEADER, f"leader {leader} has no address here")
    fut = asyncio.ensure_future(client.read_index(ReadIndexRequest(int(policy))))
    resp = await _bounded(fut, timeout, f"read index from leader {leader}")
    if resp.result == READ_INDEX_OK:
        return resp.read_log_id
    if resp.result == READ_INDEX_NOT_LEADER:
        named = resp.leader_id if resp.leader_id >= 0 and resp.leader_id != core.node_id else None
        node = engine.membership.get_node(named) if named is not None and engine.membership is not None else None
        raise ForwardToLeader(named if node is not None else None, node, ForwardToLeader.NOT_LEADER,
                              f"node {leader} no longer leads")
    if resp.result == READ_INDEX_NO_QUORUM and not policy & READ_INDEX:
        raise LeaseExpired(f"leader {leader}: its lease is not valid; use READ_INDEX")
    raise QuorumNotEnough(f"leader {leader} could not confirm its leadership with a quorum")


async def ensure_linearizable(core, policy: int, timeout: Optional[float]) -> LogId:
    """The read point, once this node has applied up to it. A follower's reads are bounded by
    `timeout` (default 10 x election_timeout_max); a leader's by `timeout` when given (its
    quorum round already expires after an election timeout)."""
    if core.engine.is_leader():
        if timeout is None:
            read_id = await confirm_on_leader(core, policy)
        else:
            read_id = await _bounded(asyncio.ensure_future(confirm_on_leader(core, policy)), timeout, "read index")
    else:
        if timeout is None:
            timeout = 10 * core.config.election_timeout_max
        read_id = await ask_leader(core, policy, timeout)
    if read_id is not None and read_id.index > core.applied_index:
        await _bounded(core.wait_applied(read_id.index), timeout, f"applying up to the read point {read_id}")
    return read_id


def serve_read_index(core, req: ReadIndexRequest, fut: asyncio.Future) -> None:
    """The leader's side of a follower read: confirm a read point by the request's policy and
    answer it (callbacks, no task per request); never raise into the transport."""
    policy = req.policy
    first = LEASE_READ if policy & LEASE_READ else READ_INDEX
    core.read(first).add_done_callback(lambda done: _answer(core, policy, first, done, fut))


def _answer(core, policy: int, asked: int, done: asyncio.Future, fut: asyncio.Future) -> None:
    if fut.done():
        return
    if done.cancelled():
        fut.cancel()
        return
    exc = done.exception()
    if exc is None:
        fut.set_result(ReadIndexResponse(READ_INDEX_OK, done.result()))
    elif isinstance(exc, LeaseExpired) and asked == LEASE_READ and policy & READ_INDEX:
        core.read(READ_INDEX).add_done_callback(lambda again: _answer(core, policy, READ_INDEX, again, fut))
    elif isinstance(exc, ForwardToLeader):
        leader = core.engine.leader_id
        fut.set_result(ReadIndexResponse(READ_INDEX_NOT_LEADER, None, -1 if leader is None else leader))
    elif isinstance(exc, QuorumNotEnough):
        fut.set_result(ReadIndexResponse(READ_INDEX_NO_QUORUM))
    else:
        fut.set_exception(exc)       # e.g. Stopped: the transport reports it as an error
