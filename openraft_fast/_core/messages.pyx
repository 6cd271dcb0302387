"""Messages between nodes (see messages.pxd)."""
from libc.stdint cimport int64_t

from openraft_fast._core.log cimport LogSlice
from openraft_fast._core.record cimport Record
from openraft_fast._core.types cimport LogId, Membership, Vote

OK = APPEND_OK
CONFLICT = APPEND_CONFLICT
HIGHER_VOTE = APPEND_HIGHER_VOTE
READ_INDEX_OK = READ_OK
READ_INDEX_NOT_LEADER = READ_NOT_LEADER
READ_INDEX_NO_QUORUM = READ_NO_QUORUM
FORWARD_OK = FWD_OK
FORWARD_REFUSED = FWD_REFUSED
FORWARD_UNKNOWN = FWD_UNKNOWN


cdef class VoteRequest(Record):
    _fields = ("vote", "last_log_id", "pre_vote", "transfer")

    def __init__(self, Vote vote not None, LogId last_log_id=None, bint pre_vote=False, bint transfer=False):
        self.vote = vote
        self.last_log_id = last_log_id
        self.pre_vote = pre_vote
        self.transfer = transfer


cdef class VoteResponse(Record):
    _fields = ("vote", "granted", "last_log_id", "pre_vote", "not_member")

    def __init__(self, Vote vote not None, bint granted, LogId last_log_id=None, bint pre_vote=False,
                 bint not_member=False):
        self.vote = vote
        self.granted = granted
        self.last_log_id = last_log_id
        self.pre_vote = pre_vote
        self.not_member = not_member


cdef class AppendRequest(Record):
    _fields = ("vote", "prev_log_id", "entries", "commit", "msg_id", "seq", "sent_at")

    def __init__(self, Vote vote not None, LogId prev_log_id=None, LogSlice entries=None, LogId commit=None,
                 int64_t msg_id=0, int64_t seq=0, int64_t sent_at=0):
        if entries is not None and prev_log_id is not None and entries.start != prev_log_id.index + 1:
            raise ValueError(f"entries start at {entries.start}, not right after prev {prev_log_id}")
        if entries is not None and prev_log_id is None and entries.start != 1:
            raise ValueError(f"entries start at {entries.start} with no prev log id")
        self.vote = vote
        self.prev_log_id = prev_log_id
        self.entries = entries
        self.commit = commit
        self.msg_id = msg_id
        self.seq = seq
        self.sent_at = sent_at

    @property
    def last_log_id(self):
        if self.entries is not None and len(self.entries):
            return self.entries.last_log_id
        return self.prev_log_id


cdef class AppendResponse(Record):
    _fields = ("vote", "result", "matched", "conflict", "hint_last", "msg_id", "seq", "sent_at")

    def __init__(self, Vote vote not None, int result, LogId matched=None, int64_t conflict=0,
                 int64_t hint_last=-1, int64_t msg_id=0, int64_t seq=0, int64_t sent_at=0):
        if result < APPEND_OK or result > APPEND_HIGHER_VOTE:
            raise ValueError(f"unknown append result {result}")
        self.vote = vote
        self.result = result
        self.matched = matched
        self.conflict = conflict
        self.hint_last = hint_last
        self.msg_id = msg_id
        self.seq = seq
        self.sent_at = sent_at


cdef class SnapshotMeta(Record):
    _fields = ("last_log_id", "membership_log_id", "membership", "snapshot_id")

    def __init__(self, LogId last_log_id, LogId membership_log_id, Membership membership, str snapshot_id=""):
        self.last_log_id = last_log_id
        self.membership_log_id = membership_log_id
        self.membership = membership
        self.snapshot_id = snapshot_id


cdef class InstallSnapshotRequest(Record):
    _fields = ("vote", "meta", "data", "msg_id", "seq", "sent_at")

    def __init__(self, Vote vote not None, SnapshotMeta meta not None, data=None, int64_t msg_id=0,
                 int64_t seq=0, int64_t sent_at=0):
        self.vote = vote
        self.meta = meta
        self.data = data
        self.msg_id = msg_id
        self.seq = seq
        self.sent_at = sent_at

    def with_data(self, data):
        return InstallSnapshotRequest(self.vote, self.meta, data, self.msg_id, self.seq, self.sent_at)


cdef class SnapshotResponse(Record):
    _fields = ("vote", "ok", "msg_id", "seq", "sent_at")

    def __init__(self, Vote vote not None, bint ok, int64_t msg_id=0, int64_t seq=0, int64_t sent_at=0):
        self.vote = vote
        self.ok = ok
        self.msg_id = msg_id
        self.seq = seq
        self.sent_at = sent_at


cdef class TimeoutNow(Record):
    _fields = ("vote", "last_log_id")

    def __init__(self, Vote vote not None, LogId last_log_id=None):
        self.vote = vote
        self.last_log_id = last_log_id


cdef class ReadIndexRequest(Record):
    _fields = ("policy",)

    def __init__(self, int policy):
        if policy < 1 or policy > 3:
            raise ValueError(f"read policy must be 1 (READ_INDEX), 2 (LEASE_READ) or 3, got {policy}")
        self.policy = policy


cdef class ReadIndexResponse(Record):
    _fields = ("result", "read_log_id", "leader_id")

    def __init__(self, int result, LogId read_log_id=None, int64_t leader_id=-1):
        if result < READ_OK or result > READ_NO_QUORUM:
            raise ValueError(f"unknown read index result {result}")
        self.result = result
        self.read_log_id = read_log_id
        self.leader_id = leader_id


cdef class ForwardRequest(Record):
    _fields = ("batch", "data")

    def __init__(self, bint batch, data not None):
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"forward request data must be bytes-like, got {type(data).__name__}")
        self.batch = batch
        self.data = data


cdef class ForwardResponse(Record):
    _fields = ("result", "leader_id", "data")

    def __init__(self, int result, int64_t leader_id=-1, data=b""):
        if result < FWD_OK or result > FWD_UNKNOWN:
            raise ValueError(f"unknown forward result {result}")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"forward response data must be bytes-like, got {type(data).__name__}")
        self.result = result
        self.leader_id = leader_id
        self.data = data
