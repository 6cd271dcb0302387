"""Messages between nodes. `sent_at` is the sender's clock in integer microseconds; `seq`
numbers a leader's messages in send order and `msg_id` names a tracked replication message
(0 for a heartbeat); responses echo both."""
from typing import Any, Optional
from typing_extensions import disjoint_base

from openraft_fast._core.log import LogSlice
from openraft_fast._core.record import Record
from openraft_fast._core.types import LogId, Membership, Vote

OK: int            # AppendResponse.result
CONFLICT: int
HIGHER_VOTE: int
READ_INDEX_OK: int          # ReadIndexResponse.result
READ_INDEX_NOT_LEADER: int
READ_INDEX_NO_QUORUM: int
FORWARD_OK: int             # ForwardResponse.result
FORWARD_REFUSED: int
FORWARD_UNKNOWN: int


@disjoint_base
class VoteRequest(Record):
    def __init__(self, vote: Vote, last_log_id: Optional[LogId] = None, pre_vote: bool = False,
                 transfer: bool = False) -> None: ...
    @property
    def vote(self) -> Vote: ...
    @property
    def last_log_id(self) -> Optional[LogId]: ...
    @property
    def pre_vote(self) -> bool: ...
    @property
    def transfer(self) -> bool:
        """Sent on the leader's behalf (leadership transfer): ignores leader leases."""


@disjoint_base
class VoteResponse(Record):
    def __init__(self, vote: Vote, granted: bool, last_log_id: Optional[LogId] = None,
                 pre_vote: bool = False, not_member: bool = False) -> None: ...
    @property
    def vote(self) -> Vote:
        """The responder's vote after handling the request."""
    @property
    def granted(self) -> bool: ...
    @property
    def last_log_id(self) -> Optional[LogId]: ...
    @property
    def pre_vote(self) -> bool: ...
    @property
    def not_member(self) -> bool:
        """The requester is in none of the memberships the responder holds."""


@disjoint_base
class AppendRequest(Record):
    def __init__(self, vote: Vote, prev_log_id: Optional[LogId] = None,
                 entries: Optional[LogSlice] = None, commit: Optional[LogId] = None,
                 msg_id: int = 0, seq: int = 0, sent_at: int = 0) -> None: ...
    @property
    def vote(self) -> Vote: ...
    @property
    def prev_log_id(self) -> Optional[LogId]: ...
    @property
    def entries(self) -> Optional[LogSlice]:
        """None for a heartbeat or an empty probe."""
    @property
    def commit(self) -> Optional[LogId]: ...
    @property
    def msg_id(self) -> int: ...
    @property
    def seq(self) -> int: ...
    @property
    def sent_at(self) -> int: ...
    @property
    def last_log_id(self) -> Optional[LogId]:
        """The last entry's log id, else prev_log_id."""


@disjoint_base
class AppendResponse(Record):
    def __init__(self, vote: Vote, result: int, matched: Optional[LogId] = None, conflict: int = 0,
                 hint_last: int = -1, msg_id: int = 0, seq: int = 0, sent_at: int = 0) -> None: ...
    @property
    def vote(self) -> Vote: ...
    @property
    def result(self) -> int:
        """OK / CONFLICT / HIGHER_VOTE."""
    @property
    def matched(self) -> Optional[LogId]:
        """OK: the last log id of the request."""
    @property
    def conflict(self) -> int:
        """CONFLICT: the prev index that did not match."""
    @property
    def hint_last(self) -> int:
        """CONFLICT: the responder's last index, -1 if no hint."""
    @property
    def msg_id(self) -> int: ...
    @property
    def seq(self) -> int: ...
    @property
    def sent_at(self) -> int: ...


@disjoint_base
class SnapshotMeta(Record):
    def __init__(self, last_log_id: Optional[LogId], membership_log_id: Optional[LogId],
                 membership: Optional[Membership], snapshot_id: str = "") -> None: ...
    @property
    def last_log_id(self) -> Optional[LogId]: ...
    @property
    def membership_log_id(self) -> Optional[LogId]: ...
    @property
    def membership(self) -> Optional[Membership]: ...
    @property
    def snapshot_id(self) -> str: ...


@disjoint_base
class InstallSnapshotRequest(Record):
    def __init__(self, vote: Vote, meta: SnapshotMeta, data: Any = None, msg_id: int = 0,
                 seq: int = 0, sent_at: int = 0) -> None: ...
    @property
    def vote(self) -> Vote: ...
    @property
    def meta(self) -> SnapshotMeta: ...
    @property
    def data(self) -> Any:
        """Opaque to the engine; None in a SendSnapshot command."""
    @property
    def msg_id(self) -> int: ...
    @property
    def seq(self) -> int: ...
    @property
    def sent_at(self) -> int: ...
    def with_data(self, data: Any) -> InstallSnapshotRequest:
        """A copy carrying `data`."""


@disjoint_base
class SnapshotResponse(Record):
    def __init__(self, vote: Vote, ok: bool, msg_id: int = 0, seq: int = 0,
                 sent_at: int = 0) -> None: ...
    @property
    def vote(self) -> Vote: ...
    @property
    def ok(self) -> bool: ...
    @property
    def msg_id(self) -> int: ...
    @property
    def seq(self) -> int: ...
    @property
    def sent_at(self) -> int: ...


@disjoint_base
class TimeoutNow(Record):
    def __init__(self, vote: Vote, last_log_id: Optional[LogId] = None) -> None: ...
    @property
    def vote(self) -> Vote:
        """The leader's vote."""
    @property
    def last_log_id(self) -> Optional[LogId]:
        """The leader's last log id: the target holds it."""


@disjoint_base
class ReadIndexRequest(Record):
    """A follower asks the leader for a read index (etcd's follower ReadIndex)."""
    def __init__(self, policy: int) -> None: ...
    @property
    def policy(self) -> int:
        """READ_INDEX (1) and/or LEASE_READ (2) bits: how the leader confirms its leadership."""


@disjoint_base
class ReadIndexResponse(Record):
    def __init__(self, result: int, read_log_id: Optional[LogId] = None, leader_id: int = -1) -> None: ...
    @property
    def result(self) -> int:
        """READ_INDEX_OK / READ_INDEX_NOT_LEADER / READ_INDEX_NO_QUORUM."""
    @property
    def read_log_id(self) -> Optional[LogId]:
        """OK: the follower applies up to this log id, then reads locally."""
    @property
    def leader_id(self) -> int:
        """NOT_LEADER: a leader the responder knows of, else -1."""


@disjoint_base
class ForwardRequest(Record):
    """A follower hands client writes to the leader (Raft.client_write(..., forward=True))."""
    def __init__(self, batch: bool, data: bytes) -> None: ...
    @property
    def batch(self) -> bool:
        """client_write_many (else one client_write)."""
    @property
    def data(self) -> bytes:
        """msgpack: the list of payloads."""


@disjoint_base
class ForwardResponse(Record):
    def __init__(self, result: int, leader_id: int = -1, data: bytes = b"") -> None: ...
    @property
    def result(self) -> int:
        """FORWARD_OK / FORWARD_REFUSED / FORWARD_UNKNOWN."""
    @property
    def leader_id(self) -> int:
        """REFUSED: a leader the responder knows of, else -1."""
    @property
    def data(self) -> bytes:
        """msgpack: OK, the log ids and responses; otherwise [reason, detail]."""
