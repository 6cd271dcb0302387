# Messages between nodes. Times (sent_at) are the sender's clock in integer microseconds;
# `seq` numbers a leader's messages in send order and is echoed by the response, as is `msg_id`
# (the id of a tracked replication message; 0 for a heartbeat).
from libc.stdint cimport int64_t

from openraft_fast._core.log cimport LogSlice
from openraft_fast._core.record cimport Record
from openraft_fast._core.types cimport LogId, Membership, Vote

cdef enum:
    APPEND_OK = 0
    APPEND_CONFLICT = 1
    APPEND_HIGHER_VOTE = 2

cdef enum:
    READ_OK = 0
    READ_NOT_LEADER = 1        # the asked node does not lead; leader_id names one it knows (-1: none)
    READ_NO_QUORUM = 2         # the leader could not confirm its leadership (no quorum, lease expired)

cdef enum:
    FWD_OK = 0                 # applied on the leader; `data` holds the responses
    FWD_REFUSED = 1            # not appended (ForwardToLeader); leader_id names one it knows (-1: none)
    FWD_UNKNOWN = 2            # appended, outcome unknown (OutcomeUnknown)


cdef class VoteRequest(Record):
    cdef readonly Vote vote
    cdef readonly LogId last_log_id
    cdef readonly bint pre_vote
    cdef readonly bint transfer         # sent on the leader's behalf: ignores leader leases


cdef class VoteResponse(Record):
    cdef readonly Vote vote             # the responder's vote after handling the request
    cdef readonly bint granted
    cdef readonly LogId last_log_id
    cdef readonly bint pre_vote
    # The requester is in none of the memberships the responder holds (committed or pending):
    # a removed node learns it from a responder whose log is at least as up to date as its own.
    cdef readonly bint not_member


cdef class AppendRequest(Record):
    cdef readonly Vote vote
    cdef readonly LogId prev_log_id
    cdef readonly LogSlice entries      # None for a heartbeat or an empty probe
    cdef readonly LogId commit
    cdef readonly int64_t msg_id
    cdef readonly int64_t seq
    cdef readonly int64_t sent_at


cdef class AppendResponse(Record):
    cdef readonly Vote vote
    cdef readonly int result            # APPEND_OK / APPEND_CONFLICT / APPEND_HIGHER_VOTE
    cdef readonly LogId matched         # OK: the last log id of the request
    cdef readonly int64_t conflict      # CONFLICT: the prev index that did not match
    cdef readonly int64_t hint_last     # CONFLICT: the responder's last index, -1 if no hint
    cdef readonly int64_t msg_id
    cdef readonly int64_t seq
    cdef readonly int64_t sent_at


cdef class SnapshotMeta(Record):
    cdef readonly LogId last_log_id
    cdef readonly LogId membership_log_id
    cdef readonly Membership membership
    cdef readonly str snapshot_id


cdef class InstallSnapshotRequest(Record):
    cdef readonly Vote vote
    cdef readonly SnapshotMeta meta
    cdef readonly object data           # opaque to the engine; None in a SendSnapshot command
    cdef readonly int64_t msg_id
    cdef readonly int64_t seq
    cdef readonly int64_t sent_at


cdef class SnapshotResponse(Record):
    cdef readonly Vote vote
    cdef readonly bint ok
    cdef readonly int64_t msg_id
    cdef readonly int64_t seq
    cdef readonly int64_t sent_at


cdef class TimeoutNow(Record):
    cdef readonly Vote vote             # the leader's vote
    cdef readonly LogId last_log_id     # the leader's last log id: the target holds it


cdef class ReadIndexRequest(Record):
    # A follower asks the leader for a read index (etcd's follower ReadIndex): the leader
    # confirms its leadership by `policy` (READ_INDEX and/or LEASE_READ bits) and answers the
    # log id the follower must apply before it reads locally.
    cdef readonly int policy


cdef class ReadIndexResponse(Record):
    cdef readonly int result            # READ_OK / READ_NOT_LEADER / READ_NO_QUORUM
    cdef readonly LogId read_log_id     # READ_OK: apply up to this, then read (None: empty log)
    cdef readonly int64_t leader_id     # READ_NOT_LEADER: a leader the responder knows, else -1


cdef class ForwardRequest(Record):
    # A follower hands client writes to the leader (Raft.client_write(..., forward=True)).
    cdef readonly bint batch            # client_write_many (else one client_write)
    cdef readonly object data           # msgpack: the list of payloads (bytes)


cdef class ForwardResponse(Record):
    cdef readonly int result            # FWD_OK / FWD_REFUSED / FWD_UNKNOWN
    cdef readonly int64_t leader_id     # FWD_REFUSED: a leader the responder knows, else -1
    cdef readonly object data           # msgpack: OK, the log ids and responses; else [reason, detail]
