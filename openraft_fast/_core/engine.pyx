"""The Raft engine (see engine.pyi for the API and engine.pxd for the state)."""
from libc.stdint cimport int64_t

from openraft_fast._core.commands cimport (
    Apply, AppendLog, BuildSnapshot, InstallSnapshot, PurgeLog, Reply, Respond, SaveCommitted,
    SaveVote, Send, SendHeartbeat, SendSnapshot, TruncateLog,
)
from openraft_fast._core.log cimport LogBuffer, LogSlice
from openraft_fast._core.messages cimport (
    APPEND_CONFLICT, APPEND_HIGHER_VOTE, APPEND_OK, AppendRequest, AppendResponse,
    InstallSnapshotRequest, SnapshotMeta, SnapshotResponse, TimeoutNow, VoteRequest, VoteResponse,
)
from openraft_fast._core.progress cimport PROBE, REPLICATE, SEND_LOGS, SEND_NONE, SEND_SNAPSHOT, SNAPSHOT, Progress
from openraft_fast._core.quorum cimport VOTE_LOST, VOTE_WON, QuorumSet
from openraft_fast._core.tracker cimport ProgressTracker
from openraft_fast._core.types cimport (
    ENTRY_BLANK, ENTRY_MEMBERSHIP, ENTRY_NORMAL, NO_NODE, ORD_EQUAL, ORD_GREATER, LeaderId, LogId,
    Membership, Node, Vote, leader_id_cmp, log_id_cmp, make_leader_id, make_log_id, vote_cmp,
)

from openraft_fast._core.quorum import from_configs
from openraft_fast.errors import (ChangeMembershipError, ForwardToLeader, InitializeError, LeaseExpired,
                                  QuorumNotEnough, RaftError)

LEARNER = ST_LEARNER
FOLLOWER = ST_FOLLOWER
CANDIDATE = ST_CANDIDATE
LEADER = ST_LEADER
NOT_MEMBER = ST_NOT_MEMBER
READ_INDEX = POLICY_READ_INDEX
LEASE_READ = POLICY_LEASE_READ
STATE_NAMES = {ST_LEARNER: "learner", ST_FOLLOWER: "follower", ST_CANDIDATE: "candidate", ST_LEADER: "leader",
               ST_NOT_MEMBER: "not_member"}


cdef inline int64_t _us(double seconds) noexcept:
    # Rounded, so tick(next_deadline) lands exactly on the deadline it was given.
    if seconds >= 0:
        return <int64_t>(seconds * 1e6 + 0.5)
    return -<int64_t>(-seconds * 1e6 + 0.5)


cdef inline int64_t _idx(LogId lid) noexcept:
    return 0 if lid is None else lid.index


cdef inline bint _vote_ge(Vote a, Vote b) noexcept:
    cdef int c = vote_cmp(a, b)
    return c == ORD_GREATER or c == ORD_EQUAL


cdef inline bint _log_id_ge(LogId a, LogId b) noexcept:
    """a >= b with None as the smallest log id."""
    if b is None:
        return True
    if a is None:
        return False
    cdef int c = log_id_cmp(a, b)
    return c == ORD_GREATER or c == ORD_EQUAL


cdef inline bint _same_log_id(LogId a, LogId b) noexcept:
    if a is None or b is None:
        return a is None and b is None
    return log_id_cmp(a, b) == ORD_EQUAL


cdef class PersistedState:
    def __init__(self, Vote vote=None, LogBuffer log=None, LogId committed=None, SnapshotMeta snapshot=None,
                 LogId applied=None, applied_membership=None):
        self.vote = vote
        self.log = LogBuffer() if log is None else log
        self.committed = committed
        self.snapshot = snapshot
        self.applied = applied
        self.applied_membership = applied_membership


cdef class Engine:
    def __init__(self, node_id, config, PersistedState state not None, rng, double now=0.0, *, bint sync_log=False):
        if not isinstance(node_id, int) or node_id < 0:
            raise ValueError(f"node id must be a non-negative int, got {node_id!r}")
        self.node_id = node_id
        self.config = config
        self.std = config.leader_id_mode == "std"
        self.hb_interval_us = _us(config.heartbeat_interval)
        self.et_min_us = _us(config.election_timeout_min)
        self.et_max_us = _us(config.election_timeout_max)
        self.follower_lease_us = _us(config.lease)
        # Clocks drift: the leader counts on less than a follower grants.
        self.leader_lease_us = _us(config.lease * (1.0 - config.max_clock_drift))
        self.retransmit_us = self.et_min_us
        self.snapshot_timeout_us = _us(config.install_snapshot_timeout)
        self.max_payload_entries = config.max_payload_entries
        self.max_inflight = config.max_inflight
        self.max_inflight_bytes = config.max_inflight_bytes
        self.lag_threshold = config.replication_lag_threshold
        self.snapshot_every = 0 if config.snapshot_policy == "never" else config.snapshot_policy
        self.keep_logs = config.max_in_snapshot_log_to_keep
        self.purge_batch = config.purge_batch_size
        self.pre_vote_enabled = config.enable_pre_vote
        self.heartbeat_enabled = config.enable_heartbeat
        self.elect_enabled = config.enable_elect
        self.tick_enabled = config.enable_tick
        self.quorum_factory = config.quorum_factory or from_configs
        self.rng = rng
        self.now_us = _us(now)
        # The runtime's log store is durable when append returns (a memory store): an
        # AppendLog counts as flushed when it is emitted, and on_log_flushed is never needed.
        # A write then costs three engine events fewer (the leader's and each follower's flush).
        self.sync_log = sync_log
        self.out = []

        self.vote = state.vote if state.vote is not None else Vote(make_leader_id(0, NO_NODE, self.std), False)
        if self.vote.leader_id.std != self.std:
            raise ValueError("the saved vote was made in the other leader-id mode")
        self.log = state.log
        self.snapshot = state.snapshot
        self.applied = state.applied
        if self.snapshot is not None and not _log_id_ge(self.applied, self.snapshot.last_log_id):
            self.applied = self.snapshot.last_log_id
        self.committed = state.committed
        if not _log_id_ge(self.committed, self.applied):
            self.committed = self.applied
        self.startup_reset = None
        self.startup_truncate = False
        cdef LogId snap_last = None if self.snapshot is None else self.snapshot.last_log_id
        if snap_last is not None and snap_last.index >= self.log.first_index - 1:
            ours_at_snap = self.log.c_leader_at(snap_last.index)
            if ours_at_snap is None or leader_id_cmp(<LeaderId>ours_at_snap, snap_last.leader_id) != ORD_EQUAL:
                # A crash between installing a snapshot and purging the log: the log does not
                # hold the snapshot's last entry. The snapshot wins; startup() tells the store.
                self.startup_reset = snap_last
                self.startup_truncate = self.log.last_index >= snap_last.index
                self.log.reset(snap_last)
        self.flushed = self.log.last_log_id
        if _idx(self.committed) > _idx(self.flushed) and _idx(self.committed) > _idx(self.applied):
            # A store that kept a committed id past its durable log: those entries are
            # committed on a quorum and come back from the leader.
            self.committed = self.applied if _idx(self.applied) > _idx(self.flushed) else self.flushed
        self.commit_target = _idx(self.committed)
        self.apply_sent = _idx(self.applied)
        self.snapshot_building = False

        # Membership: the newest of the applied/snapshot one, then the log's entries after it.
        cdef LogId base_id = None
        cdef Membership base = None
        if state.applied_membership is not None:
            base_id, base = state.applied_membership
        if self.snapshot is not None and self.snapshot.membership is not None and \
                not _log_id_ge(base_id, self.snapshot.membership_log_id):
            base_id, base = self.snapshot.membership_log_id, self.snapshot.membership
        self.committed_membership = base
        self.committed_membership_log_id = base_id
        self.uncommitted_memberships = []
        cdef int64_t ci = _idx(self.committed)
        for lid, m in self.log.c_membership_entries(_idx(base_id) + 1, self.log.last_index + 1):
            if (<LogId>lid).index <= ci:
                self.committed_membership = m
                self.committed_membership_log_id = lid
            else:
                self.uncommitted_memberships.append((lid, m))

        self.granted = set()
        self.rejected = set()
        self.pre_voting = False
        self.pending_reads = []
        self.pending_acks = []
        self.pending_snapshot_acks = []
        self.stalled_since = {}
        self.leaving = {}
        self.told_not_member = False
        self.leader_lost = False
        self.state = ST_LEARNER
        _effective_changed(self)
        self.seen_term = self.vote.leader_id.term
        self.leader_contact_us = -(1 << 62)
        self.elected_us = -(1 << 62)
        self.leader_contact_node = None
        self.vote_granted_us = -(1 << 62)
        self.vote_granted_to = None
        if self.vote.committed and self.vote.leader_id.node != self.node_id:
            # We may have acked this leader just before a restart: keep the lease we promised.
            self.leader_contact_us = self.now_us
            self.leader_contact_node = self.vote.leader_id.node_id
        self.heartbeat_deadline = self.now_us
        self._reset_election_timer()
        if self.vote.leader_id.term > 0 or self.log.last_index > 0:
            # A restart: give the cluster's leader a whole election_timeout_max to reach us
            # before we stand (its link to us may still be backing off), so a restarted
            # follower rejoins without an election.
            self.election_deadline += self.et_max_us

    # ------------------------------------------------------------------ accessors
    @property
    def leader_id(self):
        """The node id of the leader this node knows of, or None: never this node unless it
        leads, never a node outside the membership, and not once it has not heard from that
        leader within the lease (Config.lease): then callers are not sent to a leader that may
        be dead, and wait for the next one instead."""
        if self.state == ST_LEADER:
            return self.node_id
        if self.vote.committed and not self.leader_lost and _in_follower_lease(self):
            lid = self.vote.leader_id.node_id
            if lid != self.node_id and self.membership is not None and lid in self.membership.voter_ids:
                return lid
        return None

    def leader_node(self):
        lid = self.leader_id
        if lid is None or self.membership is None:
            return None
        return self.membership.get_node(lid)

    def is_leader(self):
        return self.state == ST_LEADER

    @property
    def last_log_id(self):
        return self._last_log_id()

    @property
    def now(self):
        return self.now_us / 1e6

    @property
    def state_name(self):
        return STATE_NAMES[self.state]

    @property
    def next_deadline(self):
        """Seconds: tick() is due no later than this."""
        cdef int64_t d = 1 << 62
        if not self.tick_enabled:
            return d / 1e6
        if self.state == ST_LEADER:
            if self.heartbeat_enabled:
                d = self.heartbeat_deadline
            if self.transfer_to is not None and self.transfer_deadline < d:
                d = self.transfer_deadline
            if _step_down_deadline(self) < d:
                d = _step_down_deadline(self)
        elif self.elect_enabled and self._may_campaign():
            d = self.election_deadline
        return d / 1e6

    @property
    def lease_valid_until(self):
        """Leader: seconds until which its lease holds (None when it has none)."""
        if self.state != ST_LEADER:
            return None
        cdef int64_t t = _lease_time(self)
        return None if t < 0 else (t + self.leader_lease_us) / 1e6

    def progress(self, target):
        return None if self.tracker is None else self.tracker.progress.get(target)

    def replication_lag(self, target):
        """Leader: entries `target` lacks (None when not leading or not a target)."""
        cdef Progress p = None if self.tracker is None else self.tracker.c_get(target)
        return None if p is None else self.log.last_index - p.matched

    def has_acked(self, target):
        """Leader: whether `target` has answered any of this leadership's appends."""
        cdef Progress p = None if self.tracker is None else self.tracker.c_get(target)
        return p is not None and p.acked_at >= 0

    def is_caught_up(self, target):
        """Leader: whether `target` has accepted an append and lags at most
        replication_lag_threshold entries (a target that never answered is not caught up,
        however short the log)."""
        cdef Progress p = None if self.tracker is None else self.tracker.c_get(target)
        if p is None or p.acked_at < 0 or (p.matched == 0 and self.log.last_index > 0):
            return False
        return self.log.last_index - p.matched <= self.lag_threshold

    def unhealthy(self, ids):
        """Leader: the ids in `ids` it has not heard an ack from within election_timeout_max
        (itself excluded), sorted."""
        return sorted(t for t in ids if not self._healthy(t))

    def hand_off_target(self):
        """Leader: the voter to hand leadership to on shutdown: of the voters it heard from
        within election_timeout_max, the one with the longest matching log (None if none)."""
        cdef Progress p, best = None
        if self.state != ST_LEADER or self.membership is None:
            return None
        for v in sorted(self.membership.voter_ids):
            if v == self.node_id or not self._healthy(v):
                continue
            p = self.tracker.c_get(v)
            if best is None or p.matched > best.matched:
                best = p
        return None if best is None else best.node_id

    def target_node(self, target):
        """The Node (address) to reach `target` at: a member's, or a leaving one's."""
        node = None if self.membership is None else self.membership.get_node(target)
        if node is None and target in self.leaving:
            node = self.leaving[target][0]
        return node

    # ------------------------------------------------------------------ helpers
    cdef list _take(self):
        cdef list out = self.out
        self.out = []
        return out

    cdef LogId _log_id_at(self, int64_t index):
        cdef LeaderId lid
        if index <= 0:
            return None
        lid = self.log.c_leader_at(index)
        if lid is None:
            return None
        return make_log_id(lid, index)

    cdef LogId _last_log_id(self):
        return self._log_id_at(self.log.last_index)

    cdef int64_t _committed_index(self):
        return _idx(self.committed)

    cdef void _reset_election_timer(self):
        self.election_deadline = self.now_us + self.et_min_us + <int64_t>(
            self.rng.random() * (self.et_max_us - self.et_min_us))

    cdef bint _is_voter(self):
        """May stand for election: a voter of the effective config, or of the committed one.
        An uncommitted config that leaves out the voters holding it must not leave the cluster
        with nobody electable (the new voters may not have it yet); elections always use the
        candidate's effective quorum, and a leader outside the new config hands over once it
        commits."""
        if self.membership is not None and self.node_id in self.membership.voter_ids:
            return True
        return self.committed_membership is not None and self.node_id in self.committed_membership.voter_ids

    cdef bint _may_campaign(self):
        """May stand (or pre-vote): a voter that has not learned it is not a member."""
        return self.state != ST_NOT_MEMBER and self._is_voter()

    cdef bint _healthy(self, object target):
        """Leader: `target` is this node, or answered a message sent within election_timeout_max."""
        cdef Progress p
        if target == self.node_id:
            return True
        p = None if self.tracker is None else self.tracker.c_get(target)
        return p is not None and p.acked_at >= 0 and self.now_us - p.acked_at <= self.et_max_us

    cdef void _see_term(self, int64_t term) noexcept:
        if term > self.seen_term:
            self.seen_term = term

    cdef int64_t _next_term(self) noexcept:
        """A candidate's term: above every term seen, so candidates refused for their log do
        not keep claiming terms the up-to-date nodes then cannot use."""
        cdef int64_t t = self.vote.leader_id.term
        if self.seen_term > t:
            t = self.seen_term
        return t + 1

    cdef int _check_writable(self) except -1:
        if self.state != ST_LEADER:
            raise ForwardToLeader(self.leader_id, self.leader_node())
        if self.transfer_to is not None:
            node = None if self.membership is None else self.membership.get_node(self.transfer_to)
            raise ForwardToLeader(self.transfer_to, node, ForwardToLeader.LEADER_TRANSFERRING)
        if not _quorum_alive(self):
            raise ForwardToLeader(None, None, ForwardToLeader.NO_QUORUM, "check-quorum: no quorum acked within the lease")
        return 0

    # ------------------------------------------------------------------ events
    # Each event hands over to the function of the same name in the .pxi of its concern
    # (included at the end of this file), where its rules live.

    # vote and election: engine_election.pxi
    def elect(self):
        """Start an election now (pre-vote first when enabled); not inside a leader's lease."""
        return elect(self)

    def recv_vote(self, from_id, VoteRequest req not None):
        return recv_vote(self, from_id, req)

    def recv_vote_response(self, from_id, VoteResponse resp not None):
        return recv_vote_response(self, from_id, resp)

    # leader and replication: engine_replication.pxi
    def client_write(self, list payloads not None):
        return client_write(self, payloads)

    def trigger_heartbeat(self):
        return trigger_heartbeat(self)

    def recv_append_response(self, from_id, AppendResponse resp not None):
        return recv_append_response(self, from_id, resp)

    # following and the log: engine_append.pxi
    def recv_append(self, from_id, AppendRequest req not None):
        return recv_append(self, from_id, req)

    def on_log_flushed(self, LogId log_id not None):
        return on_log_flushed(self, log_id)

    # commit and apply: engine_commit.pxi
    def on_applied(self, LogId log_id not None):
        return on_applied(self, log_id)

    # membership: engine_membership.pxi
    def initialize(self, Membership membership not None, bint elect=True):
        return initialize(self, membership, elect)

    def change_membership(self, goal, bint retain=False, dict nodes=None, bint force=False):
        """Refused ("not_enough_healthy_voters") when fewer than a quorum of `goal` are
        healthy (see unhealthy()), unless `force`."""
        return change_membership(self, goal, retain, nodes, force)

    def add_learner(self, node_id, Node node not None):
        return add_learner(self, node_id, node)

    def remove_learner(self, node_id):
        return remove_learner(self, node_id)

    # snapshots: engine_snapshot.pxi
    def trigger_snapshot(self):
        return trigger_snapshot(self)

    def on_snapshot_built(self, SnapshotMeta meta not None):
        return on_snapshot_built(self, meta)

    def purge_log(self, int64_t upto):
        return purge_log(self, upto)

    def recv_snapshot(self, from_id, InstallSnapshotRequest req not None):
        return recv_snapshot(self, from_id, req)

    def on_snapshot_installed(self, SnapshotMeta meta not None):
        return on_snapshot_installed(self, meta)

    def recv_snapshot_response(self, from_id, SnapshotResponse resp not None):
        return recv_snapshot_response(self, from_id, resp)

    def on_snapshot_send_failed(self, target, int64_t msg_id):
        return on_snapshot_send_failed(self, target, msg_id)

    # reads, leases and check-quorum: engine_read.pxi
    def ensure_linearizable(self, req_ids, int policy=POLICY_READ_INDEX):
        """`req_ids`: one request id or a list of them, confirmed by one quorum round."""
        return ensure_linearizable(self, req_ids, policy)

    # leader transfer: engine_transfer.pxi
    def transfer_leader(self, to):
        return transfer_leader(self, to)

    def recv_timeout_now(self, from_id, TimeoutNow msg not None):
        return recv_timeout_now(self, from_id, msg)

    # ------------------------------------------------------------------ time
    cpdef list tick(self, double now):
        cdef int64_t t = _us(now)
        cdef Progress p
        if t > self.now_us:
            self.now_us = t
        if not self.tick_enabled:
            return self._take()
        if self.state == ST_LEADER:
            if self.transfer_to is not None and self.now_us >= self.transfer_deadline:
                self.transfer_to = None         # the target did not take over: resume writes
            if self.pending_reads:
                _expire_reads(self)
            if self.heartbeat_enabled and self.now_us >= self.heartbeat_deadline:
                if self.leaving:
                    _expire_leaving(self)
                _send_heartbeats(self)
                # Messages lost on the way leave a window stuck: probe again.
                for target, p in self.tracker.progress.items():
                    if p.inflight.count > 0 and self.now_us - <int64_t>self.stalled_since.get(target, self.now_us) > (
                            self.snapshot_timeout_us if p.state == SNAPSHOT else self.retransmit_us):
                        p.c_restart_probe(self.log.last_index)
                    _replicate(self, target, p)
                if self.purge_wanted >= self.log.first_index:
                    _purge(self, self.purge_wanted)
            if self.now_us >= _step_down_deadline(self):
                # Check-quorum: no quorum acked anything sent for an election timeout, so a
                # newer leader may exist. Stop leading; the runtime then settles this node's
                # pending writes (applied, truncated, or OutcomeUnknown after its bound).
                _become_follower(self)
        elif self.elect_enabled and self._may_campaign() and self.now_us >= self.election_deadline:
            if self.pre_vote_enabled:
                _start_pre_vote(self)
            else:
                _start_election(self, False)
        return self._take()

    def startup(self):
        """Apply what is committed and, if we were the leader, stand for election at once.

        Leading again under the saved leader id would be unsafe: entries of that id that were
        sent but not flushed before the crash may be on followers, and a new entry at the
        same index would carry the same log id. A new election gives a new leader id."""
        if self.startup_reset is not None:
            if self.startup_truncate:
                self.out.append(TruncateLog(self.startup_reset.index - 1))
            self.out.append(PurgeLog(self.startup_reset))
            self.startup_reset = None
        _apply(self)
        if self.vote.committed and self.vote.leader_id.node == self.node_id and self._may_campaign() \
                and self.elect_enabled:
            # At once: the voters it led answer its pre-vote (it was their leader), so with
            # pre-vote this costs the cluster no term unless it wins.
            if self.pre_vote_enabled:
                _start_pre_vote(self)
            else:
                _start_election(self, False)
        return self._take()


# The rules, one file per concern (openraft's engine/handler/*): functions over the Engine's state.
# `include` is textual, so they share this module's imports and helpers; Cython allows it only
# at module level, so they are functions of `Engine self`, called directly (no vtable).
include "engine_election.pxi"
include "engine_replication.pxi"
include "engine_append.pxi"
include "engine_commit.pxi"
include "engine_membership.pxi"
include "engine_snapshot.pxi"
include "engine_read.pxi"
include "engine_transfer.pxi"
