"""What `Raft.events()` reports: a node's state changes, as plain frozen values.

Every event has `time`: the event loop's clock (`loop.time()`, monotonic seconds) when the
runtime saw the change; it is left out of equality, so a test can compare events by content.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from openraft_fast._core.messages import SnapshotMeta
from openraft_fast._core.types import LogId, Membership
from openraft_fast.metrics import ServerState


@dataclass(frozen=True)
class RaftEvent:
    """Base of the events `Raft.events()` yields."""


@dataclass(frozen=True)
class RoleChanged(RaftEvent):
    """This node's role is now `state` (as `metrics.state`; never SHUTDOWN: NodeStopped says
    that), in term `term`."""
    state: ServerState
    term: int
    time: float = field(default=0.0, compare=False)


@dataclass(frozen=True)
class LeaderChanged(RaftEvent):
    """The leader this node knows of (as `metrics.current_leader`) is now `leader_id`, in term
    `term`: another node, the same node elected again in a later term, or None when this node
    has lost track of its leader (an election is under way or none is known)."""
    leader_id: Optional[int]
    term: int
    time: float = field(default=0.0, compare=False)


@dataclass(frozen=True)
class MembershipChanged(RaftEvent):
    """This node's effective membership (as `metrics.membership`: the last one in its log,
    which takes effect once appended, committed or not) is now `membership`, from the entry
    `log_id`."""
    membership: Optional[Membership]
    log_id: Optional[LogId]
    time: float = field(default=0.0, compare=False)


@dataclass(frozen=True)
class _SnapshotEvent(RaftEvent):
    meta: SnapshotMeta
    time: float = field(default=0.0, compare=False)

    @property
    def last_log_id(self) -> Optional[LogId]:
        return self.meta.last_log_id


@dataclass(frozen=True)
class SnapshotBuilt(_SnapshotEvent):
    """The state machine built a snapshot of its state up to `meta.last_log_id`."""


@dataclass(frozen=True)
class SnapshotInstalled(_SnapshotEvent):
    """The state machine installed a snapshot the leader sent, up to `meta.last_log_id`."""


@dataclass(frozen=True)
class NodeStopped(RaftEvent):
    """The node stopped; always the last event. `cause` is None for a shutdown, else the error
    it stopped with (as `metrics.running_state`: a Fatal whose __cause__ is, for a failed
    storage or state-machine call, the StorageError)."""
    cause: Optional[BaseException]
    time: float = field(default=0.0, compare=False)


@dataclass(frozen=True)
class EventsLost(RaftEvent):
    """This subscriber fell more than its backlog behind: the `count` oldest events it had not
    read were dropped. The events after it are complete again; `raft.metrics` has the state
    now."""
    count: int
    time: float = field(default=0.0, compare=False)


__all__ = ["EventsLost", "LeaderChanged", "MembershipChanged", "NodeStopped", "RaftEvent", "RoleChanged",
           "SnapshotBuilt", "SnapshotInstalled"]
