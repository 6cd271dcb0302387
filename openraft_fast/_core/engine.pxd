# The Raft engine: one event in, a list of commands out; no I/O, no clock, no global state.
# engine.pyi documents the Python-facing API. engine.pyx holds the class (construction,
# accessors, shared helpers, timers, and one entry point per event); the rules live in one
# engine_*.pxi per concern, after openraft's handlers: election, replication (leader), append
# (follower), commit/apply, membership, snapshot, read (reads, leases, check-quorum), transfer.
# Those are module-level functions of `Engine self`, so only the helpers are declared here.
from libc.stdint cimport int64_t

from openraft_fast._core.log cimport LogBuffer, LogSlice
from openraft_fast._core.messages cimport SnapshotMeta
from openraft_fast._core.progress cimport Progress
from openraft_fast._core.quorum cimport QuorumSet
from openraft_fast._core.tracker cimport ProgressTracker
from openraft_fast._core.types cimport LeaderId, LogId, Membership, Vote

cdef enum:
    ST_LEARNER = 0
    ST_FOLLOWER = 1
    ST_CANDIDATE = 2
    ST_LEADER = 3
    ST_NOT_MEMBER = 5       # in no membership it holds, or told so by an up-to-date voter

cdef enum:
    POLICY_READ_INDEX = 1
    POLICY_LEASE_READ = 2


cdef class PersistedState:
    cdef public Vote vote
    cdef public LogBuffer log
    cdef public LogId committed
    cdef public SnapshotMeta snapshot
    cdef public LogId applied
    cdef public object applied_membership


cdef class Engine:
    # Identity and config (times in integer microseconds).
    cdef readonly object node_id
    cdef readonly object config
    cdef bint std
    cdef int64_t hb_interval_us, et_min_us, et_max_us, follower_lease_us, leader_lease_us
    cdef int64_t retransmit_us, snapshot_timeout_us
    cdef int64_t max_payload_entries, max_inflight, max_inflight_bytes, lag_threshold
    cdef int64_t snapshot_every, keep_logs, purge_batch
    cdef bint pre_vote_enabled, heartbeat_enabled, elect_enabled, tick_enabled
    cdef object quorum_factory
    cdef object rng

    # Durable state as the engine sees it.
    cdef readonly Vote vote
    cdef readonly LogBuffer log
    cdef readonly LogId committed
    cdef readonly LogId applied
    cdef readonly LogId flushed
    cdef readonly bint sync_log             # each AppendLog is durable before the next command runs
    cdef int64_t commit_target              # known committed; `committed` follows as flushes allow
    cdef int64_t apply_sent                 # highest index handed to an Apply command
    cdef readonly SnapshotMeta snapshot
    cdef bint snapshot_building

    # Membership: effective = last appended membership entry; committed = last committed one.
    cdef readonly Membership membership
    cdef readonly LogId membership_log_id
    cdef readonly Membership committed_membership
    cdef readonly LogId committed_membership_log_id
    cdef list uncommitted_memberships       # [(LogId, Membership)] past the committed one
    cdef readonly QuorumSet quorum

    # Server state.
    cdef readonly int state
    cdef int64_t now_us
    cdef int64_t election_deadline, heartbeat_deadline
    cdef int64_t leader_contact_us           # when we last accepted our leader's message
    cdef object leader_contact_node          # ... and from which node
    cdef int64_t vote_granted_us             # when we last granted a candidate our vote
    cdef object vote_granted_to              # ... and which one
    cdef int64_t seen_term                   # highest term seen in any vote traffic
    cdef LogId startup_reset                 # the snapshot a restart found past its log
    cdef bint told_not_member                # an up-to-date voter answered "not a member"
    cdef bint leader_lost                    # pre-voting since: the committed vote names no live leader
    cdef bint startup_truncate

    # Candidate (and pre-vote) state.
    cdef set granted, rejected
    cdef bint pre_voting
    cdef Vote pre_vote

    # Leader state.
    cdef readonly ProgressTracker tracker
    cdef LeaderId leader_committed_id
    cdef LogId leader_first_log_id          # this leadership's blank entry
    cdef int64_t seq
    cdef dict stalled_since                 # target -> time its in-flight window last moved
    cdef list pending_reads                 # [(seq needed, read LogId, req_id, time asked)]
    cdef int64_t purge_wanted               # a purge held back by a live stream, retried
    cdef object transfer_to
    cdef int64_t transfer_deadline
    cdef bint transfer_sent
    cdef int64_t elected_us                 # when this node last won an election (check-quorum grace)
    cdef bint lease_void                    # a TimeoutNow went out: lease reads are off for good
    # Nodes the effective membership removed, still replicated to until they hold the entry
    # that removes them (so they learn it and go quiet) or the deadline passes:
    # target -> (Node, index of the removing entry, deadline us).
    cdef dict leaving

    # Follower state.
    cdef list pending_acks                  # [(index to be flushed, target, response)]
    cdef list pending_snapshot_acks         # [(SnapshotMeta, target, response)]

    cdef list out

    cpdef list tick(self, double now)   # cpdef: the runtime's pump calls it as C, once a pump
    cdef list _take(self)
    cdef LogId _log_id_at(self, int64_t index)
    cdef LogId _last_log_id(self)
    cdef int64_t _committed_index(self)
    cdef void _reset_election_timer(self)
    cdef bint _is_voter(self)
    cdef bint _may_campaign(self)
    cdef bint _healthy(self, object target)
    cdef int64_t _next_term(self) noexcept
    cdef void _see_term(self, int64_t term) noexcept
    cdef int _check_writable(self) except -1
