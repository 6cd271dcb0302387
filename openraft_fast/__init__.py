"""openraft_fast: a Raft consensus engine for Python with a compiled hot path."""
from openraft_fast._aio import new_event_loop, run
from openraft_fast._core.types import Entry, LeaderId, LogId, Membership, Node, Vote
from openraft_fast.config import Config
from openraft_fast.errors import (ApplyError, ChangeMembershipError, ConfigError, Fatal, ForwardToLeader, InitializeError,
                                  InvalidArgument, InvalidArgumentType,
                                  LeaseExpired, NetworkError, OutcomeUnknown, QuorumNotEnough, RaftError, Stopped, StorageError,
                                  Timeout, Unreachable)
from openraft_fast.events import (EventsLost, LeaderChanged, MembershipChanged, NodeStopped, RaftEvent, RoleChanged,
                                  SnapshotBuilt, SnapshotInstalled)
from openraft_fast.metrics import RaftMetrics, ServerState
from openraft_fast.raft import Raft, ReadPolicy
from openraft_fast.runtime import BatchWriteResponses, ClientWriteResponse

__version__ = "0.1.0"

__all__ = [
    "ApplyError", "BatchWriteResponses", "ChangeMembershipError", "ClientWriteResponse", "Config", "ConfigError", "Entry",
    "EventsLost", "Fatal", "ForwardToLeader", "InitializeError", "InvalidArgument", "InvalidArgumentType", "LeaderChanged",
    "LeaderId", "LeaseExpired", "LogId", "Membership", "MembershipChanged", "NetworkError", "Node", "NodeStopped",
    "OutcomeUnknown", "QuorumNotEnough", "Raft", "RaftError", "RaftEvent", "RaftMetrics", "ReadPolicy", "RoleChanged",
    "ServerState", "SnapshotBuilt", "SnapshotInstalled", "Stopped", "StorageError", "Timeout", "Unreachable", "Vote",
    "new_event_loop", "run",
]
