"""The runtime: feeds events to the engine and executes its commands on asyncio.

One concern per module: `core` wires a node's runtime (RaftCore); the compiled hot path lives
in `openraft_fast._core` (`executor`: event pump and commands; `writes`: client writes;
`applier`: the apply queue; `peers`: outgoing RPCs; `inbox`: RPCs received); `read_batch`
confirms read points on the leader, `reads` makes reads linearizable on any node, and
`snapshot_send` streams snapshots to followers.
"""
from openraft_fast._core.writes import BatchWriteResponses, ClientWriteResponse
from openraft_fast.runtime.core import RaftCore

__all__ = ["BatchWriteResponses", "ClientWriteResponse", "RaftCore"]
