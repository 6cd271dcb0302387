"""Network contracts: a factory of per-target clients.

Every method returns an awaitable of the response. Return an asyncio.Future (as the shipped
networks do) and the runtime attaches a callback to it: no task per message. A coroutine
(`async def`) works too and costs a task per call.
"""
from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import Awaitable

from openraft_fast._core.messages import (AppendRequest, AppendResponse, ForwardRequest, ForwardResponse,
                                          InstallSnapshotRequest, ReadIndexRequest, ReadIndexResponse, SnapshotResponse,
                                          TimeoutNow, VoteRequest, VoteResponse)
from openraft_fast._core.types import Node
from openraft_fast.errors import NetworkError


class NotCarried(NetworkError):
    """This network does not carry that kind of message (nothing was sent)."""


class Network(ABC):
    """A client to one target node. Failures surface as Unreachable / NetworkError."""

    @abstractmethod
    def append_entries(self, req: AppendRequest) -> Awaitable[AppendResponse]: ...

    def heartbeat(self, req: AppendRequest) -> Awaitable[AppendResponse]:
        """An AppendRequest without entries. Override to send it on a path that bulk data
        cannot block (the TCP transport does)."""
        return self.append_entries(req)

    @abstractmethod
    def vote(self, req: VoteRequest) -> Awaitable[VoteResponse]: ...

    @abstractmethod
    def install_snapshot(self, req: InstallSnapshotRequest) -> Awaitable[SnapshotResponse]:
        """`req.data` holds the whole snapshot; a transport may stream it in chunks."""

    @abstractmethod
    def timeout_now(self, msg: TimeoutNow) -> Awaitable[None]: ...

    def read_index(self, req: ReadIndexRequest) -> Awaitable[ReadIndexResponse]:
        """Ask the target (the leader) for a read point: follower reads. The receiving side is
        `Raft.read_index(req)`. A network that does not carry it leaves this default, and reads
        on followers fail with NetworkError (reads on the leader still work)."""
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        fut.set_exception(NetworkError(f"{type(self).__name__} does not carry follower reads (read_index)"))
        return fut

    def forward(self, req: ForwardRequest) -> Awaitable[ForwardResponse]:
        """Hand client writes to the target (the leader): `Raft.client_write(..., forward=True)`
        on a follower. The receiving side is `Raft.forward(req)`. Fail with Unreachable only
        when the request was certainly not delivered (the caller then retries it); any other
        failure after sending makes the write's outcome unknown. A network that does not
        carry it leaves this default, and forwarded writes fail with ForwardToLeader."""
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        fut.set_exception(NotCarried(f"{type(self).__name__} does not carry forwarded writes"))
        return fut

    def close(self) -> None:
        """Release the connection (the runtime calls it when the target leaves or on shutdown)."""


class NetworkFactory(ABC):
    @abstractmethod
    def new_client(self, target: int, node: Node) -> Network: ...

    def peer_up(self, node_id: int) -> None:
        """`node_id` just reached this node (a network server accepted its handshake): a
        client that is backing off from it may try again at once. A restarted peer then
        hears from its leader within a heartbeat. Optional: the default does nothing."""
