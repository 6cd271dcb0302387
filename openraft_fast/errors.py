"""Typed errors. Every error the library raises is a RaftError."""


class RaftError(Exception):
    """Base of every error raised by openraft_fast."""


class ForwardToLeader(RaftError):
    """This node is not the leader (or the leader does not take writes now).

    `leader_id` and `leader_node` name the leader when known, else they are None.
    """

    def __init__(self, leader_id=None, leader_node=None, reason=""):
        self.leader_id = leader_id
        self.leader_node = leader_node
        self.reason = reason
        where = f"leader is {leader_id} at {leader_node.addr!r}" if leader_node is not None and leader_node.addr else (
            f"leader is {leader_id}" if leader_id is not None else "leader unknown")
        super().__init__(f"forward to leader: {where}" + (f" ({reason})" if reason else ""))


class ChangeMembershipError(RaftError):
    """A membership change was refused: `reason` is "in_progress", "empty" or "learner_not_found"."""

    def __init__(self, reason, detail=""):
        self.reason = reason
        self.detail = detail
        super().__init__(f"change membership refused: {reason}" + (f": {detail}" if detail else ""))


class InitializeError(RaftError):
    """initialize() is allowed once, on a pristine node that is itself a voter."""


class QuorumNotEnough(RaftError):
    """A quorum could not be reached or confirmed."""


class LeaseExpired(QuorumNotEnough):
    """A lease read was asked while the leader lease is not valid."""


class Timeout(RaftError):
    """An operation did not finish in time."""


class Unreachable(RaftError):
    """The target node cannot be reached."""


class NetworkError(RaftError):
    """A transport-level failure talking to another node."""


class StorageError(RaftError):
    """A storage adapter failed. Fatal for the node: it stops and says why."""


class Fatal(RaftError):
    """The node stopped for good; `reason` says why."""

    def __init__(self, reason):
        self.reason = reason
        super().__init__(f"raft node stopped: {reason}")


class Stopped(Fatal):
    """The node was shut down."""

    def __init__(self, reason="shut down"):
        super().__init__(reason)


class ConfigError(RaftError, ValueError):
    """An invalid Config field; `field` names it."""

    def __init__(self, field, reason):
        self.field = field
        self.reason = reason
        super().__init__(f"invalid config {field}: {reason}")
