"""Typed errors. Every error the library raises is a RaftError."""


class RaftError(Exception):
    """Base of every error raised by openraft_fast."""


class ForwardToLeader(RaftError):
    """Refused before anything was appended: this node is not the leader, or the leader does
    not take writes now. The write was not applied here and never will be: retrying it (at
    `leader_id` when known) cannot apply it twice.

    `leader_id` and `leader_node` name a leader this node knows of and that is in its
    membership, else they are None. `reason` is one of the constants below (machine-readable);
    `detail` is free text.
    """

    NOT_LEADER = "not_leader"                   # this node is not the leader
    LEADER_TRANSFERRING = "leader_transferring"  # the leader is handing over to `leader_id`
    NO_QUORUM = "no_quorum"                     # the leader has not heard from a quorum within its lease
    REASONS = (NOT_LEADER, LEADER_TRANSFERRING, NO_QUORUM)

    def __init__(self, leader_id=None, leader_node=None, reason=NOT_LEADER, detail=""):
        self.leader_id = leader_id
        self.leader_node = leader_node
        self.reason = reason
        self.detail = detail
        where = f"leader is {leader_id} at {leader_node.addr!r}" if leader_node is not None and leader_node.addr else (
            f"leader is {leader_id}" if leader_id is not None else "leader unknown")
        super().__init__(f"forward to leader: {where} ({reason}" + (f": {detail})" if detail else ")"))


class OutcomeUnknown(RaftError):
    """The write was appended here, but this node cannot tell whether it will commit: its
    entry was truncated (another node may still hold it and a later leader may commit it), or
    the node lost leadership or stopped before the entry was applied. The write may have been
    applied, or may be applied later, exactly once. Retry only if the write is idempotent, or
    read first to find out. `reason` is one of the constants below; `detail` is free text.
    """

    TRUNCATED = "truncated"            # the entry was overwritten by another leader's log
    STOPPED = "stopped"                # the node stopped before the entry was applied
    # the node stopped leading and learned neither apply nor truncation within
    # 2 x Config.election_timeout_max (or, for add_learner(blocking=True), lost leadership
    # while the learner caught up)
    LEADERSHIP_LOST = "leadership_lost"
    # a write forwarded to the leader (client_write(..., forward=True)) may have reached it,
    # and no answer came back (the connection broke or the answer timed out)
    NO_RESPONSE = "no_response"

    def __init__(self, reason, detail=""):
        self.reason = reason
        self.detail = detail
        super().__init__(f"write outcome unknown ({reason}" + (f": {detail})" if detail else ")"))


class ApplyError(RaftError):
    """The state machine refused one entry, deterministically: the entry is committed and
    applied (its index is used, every replica reaches the same verdict), but it changed
    nothing and its writer gets this error instead of a response. The node goes on.

    A state machine reports it by returning an ApplyError instance in that entry's slot of
    `apply`'s result list (any other exception raised by `apply` is fatal for the node).
    `kind` names the failure (for a replicated object's method, the exception's class name),
    `message` says why, `data` is optional msgpack-able detail. It crosses the network
    unchanged when the write was forwarded to the leader."""

    def __init__(self, message: str = "", kind: str = "ApplyError", data=None):
        self.message = message
        self.kind = kind
        self.data = data
        super().__init__(f"{kind}: {message}" if message else kind)

    def __reduce__(self):
        return type(self), (self.message, self.kind, self.data)

    def __eq__(self, other):
        return (type(other) is type(self) and (self.message, self.kind, self.data)
                == (other.message, other.kind, other.data))

    __hash__ = RaftError.__hash__


class ChangeMembershipError(RaftError):
    """A membership change was refused: `reason` is "in_progress", "empty", "learner_not_found" or
    "not_enough_healthy_voters" (fewer than a quorum of the new voters acked the leader within
    election_timeout_max; the message names the others; `force=True` skips that check)."""

    def __init__(self, reason, detail=""):
        self.reason = reason
        self.detail = detail
        super().__init__(f"change membership refused: {reason}" + (f": {detail}" if detail else ""))


class InitializeError(RaftError):
    """initialize() refused; the node changed nothing. Only a pristine node can be
    initialized: one that has never voted, holds no log entry and no snapshot, and is one of
    the voters it is given. So it is raised on a node already initialized (including after a
    restart from its saved state), on one that has heard from an initialized cluster (it
    voted or received entries), and on one that is not among the voters. On a restart, start
    the node and do not initialize it again: a node that holds a membership
    (`raft.metrics.membership is not None`) is initialized (docs/embedding.md)."""


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


class InvalidArgument(RaftError, ValueError):
    """An API call got an argument of the right type but a bad value."""


class InvalidArgumentType(RaftError, TypeError):
    """An API call got an argument of the wrong type."""


class CodecError(NetworkError, ValueError):
    """A wire frame could not be encoded or decoded: wrong magic or version, a checksum that
    fails, a frame over the size limit, or a body that does not parse. A decoder that raised it
    is dead: the connection must be closed."""
