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
READ_INDEX = POLICY_READ_INDEX
LEASE_READ = POLICY_LEASE_READ
STATE_NAMES = {ST_LEARNER: "learner", ST_FOLLOWER: "follower", ST_CANDIDATE: "candidate", ST_LEADER: "leader"}


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
    def __init__(self, node_id, config, PersistedState state not None, rng, double now=0.0):
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
        self.state = ST_LEARNER
        self._effective_changed()
        self.seen_term = self.vote.leader_id.term
        self.leader_contact_us = -(1 << 62)
        self.elected_us = -(1 << 62)
        self.leader_contact_node = None
        if self.vote.committed and self.vote.leader_id.node != self.node_id:
            # We may have acked this leader just before a restart: keep the lease we promised.
            self.leader_contact_us = self.now_us
            self.leader_contact_node = self.vote.leader_id.node_id
        self.heartbeat_deadline = self.now_us
        self._reset_election_timer()

    # ------------------------------------------------------------------ accessors
    @property
    def leader_id(self):
        """The node id of the leader this node knows of, or None: never this node unless it
        leads, never a node outside the membership."""
        if self.state == ST_LEADER:
            return self.node_id
        if self.vote.committed:
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
            if self._step_down_deadline() < d:
                d = self._step_down_deadline()
        elif self.elect_enabled and self._is_voter():
            d = self.election_deadline
        return d / 1e6

    @property
    def lease_valid_until(self):
        """Leader: seconds until which its lease holds (None when it has none)."""
        if self.state != ST_LEADER:
            return None
        cdef int64_t t = self._lease_time()
        return None if t < 0 else (t + self.leader_lease_us) / 1e6

    def progress(self, target):
        return None if self.tracker is None else self.tracker.progress.get(target)

    def replication_lag(self, target):
        """Leader: entries `target` lacks (None when not leading or not a target)."""
        cdef Progress p = None if self.tracker is None else self.tracker.c_get(target)
        return None if p is None else self.log.last_index - p.matched

    def is_caught_up(self, target):
        """Leader: whether `target` lags at most replication_lag_threshold entries."""
        lag = self.replication_lag(target)
        return lag is not None and lag <= self.lag_threshold

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

    cdef bint _in_follower_lease(self) noexcept:
        return self.now_us < self.leader_contact_us + self.follower_lease_us

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
        if not self._quorum_alive():
            raise ForwardToLeader(None, None, ForwardToLeader.NO_QUORUM, "check-quorum: no quorum acked within the lease")
        return 0

    cdef bint _quorum_alive(self) noexcept:
        """Check-quorum (not a lease): a quorum acked within the lease, or we won an election
        less than a lease ago. Never a ground to serve a read."""
        return self._lease_valid() or self.now_us < self.elected_us + self.leader_lease_us

    cdef int64_t _step_down_deadline(self) noexcept:
        """A leader steps down at this time unless a quorum acks a message sent after it won
        or after the newest acked one: one election_timeout_max past either."""
        cdef int64_t t = self._lease_time()
        if t < self.elected_us:
            t = self.elected_us
        return t + self.et_max_us

    cdef bint _lease_valid(self) noexcept:
        cdef int64_t t = self._lease_time()
        return t >= 0 and t + self.leader_lease_us > self.now_us

    cdef int64_t _lease_time(self) noexcept:
        """Send time of the newest message a write quorum acked (-1 if none)."""
        if self.tracker is None:
            return -1
        return self.tracker.c_quorum_time(self.now_us)

    # ------------------------------------------------------------------ vote / election
    cdef bint _update_vote(self, Vote v) except -1:
        """Accept `v` if it is >= our vote: a greater vote is saved and, unless it is our own
        committed vote, makes us a follower. False when `v` is rejected."""
        cdef int c = vote_cmp(v, self.vote)
        if c == ORD_EQUAL:
            return True
        if c != ORD_GREATER:
            return False
        self.vote = v
        self.out.append(SaveVote(v))
        if self.state == ST_LEADER or self.state == ST_CANDIDATE or self.pre_voting:
            self._become_follower()
        return True

    cdef int _become_follower(self) except -1:
        if self.state == ST_LEADER:
            self._fail_reads()
            self.tracker = None
            self.transfer_to = None
            self.stalled_since = {}
        self.pre_voting = False
        self.granted = set()
        self.rejected = set()
        self.state = ST_FOLLOWER if self._is_voter() else ST_LEARNER
        self._reset_election_timer()
        return 0

    def elect(self):
        """Start an election now (pre-vote first when enabled); not inside a leader's lease."""
        if self._is_voter() and self.state != ST_LEADER and not self._in_follower_lease():
            if self.pre_vote_enabled:
                self._start_pre_vote()
            else:
                self._start_election(False)
        return self._take()

    cdef int _start_election(self, bint transfer) except -1:
        cdef Vote v = Vote(make_leader_id(self._next_term(), self.node_id, self.std), False)
        self.pre_voting = False
        self.vote = v
        self.out.append(SaveVote(v))
        self.state = ST_CANDIDATE
        self.granted = {self.node_id}
        self.rejected = set()
        self._reset_election_timer()
        cdef VoteRequest req = VoteRequest(v, self._last_log_id(), False, transfer)
        for target in sorted(self.membership.voter_ids):
            if target != self.node_id:
                self.out.append(Send(target, req))
        self._check_election()
        return 0

    cdef int _start_pre_vote(self) except -1:
        self.pre_voting = True
        self.pre_vote = Vote(make_leader_id(self._next_term(), self.node_id, self.std), False)
        self.granted = {self.node_id}
        self.rejected = set()
        self._reset_election_timer()
        cdef VoteRequest req = VoteRequest(self.pre_vote, self._last_log_id(), True, False)
        for target in sorted(self.membership.voter_ids):
            if target != self.node_id:
                self.out.append(Send(target, req))
        self._check_election()
        return 0

    cdef int _check_election(self) except -1:
        r = self.quorum.vote_result(self.granted, self.rejected)
        if r == VOTE_WON:
            if self.pre_voting:
                self._start_election(False)
            else:
                self._become_leader()
        elif r == VOTE_LOST:
            # Keep the vote; try again when the election timer fires.
            self.pre_voting = False
            if self.state == ST_CANDIDATE:
                self.state = ST_FOLLOWER
        return 0

    cdef bint _lease_blocks(self, object from_id):
        """A node that knows a live leader refuses to help elect another (leader lease)."""
        if self.state == ST_LEADER:
            return self._quorum_alive()
        if from_id == self.leader_contact_node:
            return False        # our own leader re-electing itself (after a restart)
        # Whatever our vote is now (we may be a candidate ourselves), we promised the leader
        # we last heard from not to help elect another within the lease.
        return self._in_follower_lease()

    def recv_vote(self, from_id, VoteRequest req not None):
        cdef bint granted = False
        self._see_term(req.vote.leader_id.term)
        cdef bint log_ok = _log_id_ge(req.last_log_id, self._last_log_id())
        if req.pre_vote:
            granted = log_ok and not self._lease_blocks(from_id) and _vote_ge(req.vote, self.vote)
            self.out.append(Respond(from_id, VoteResponse(self.vote, granted, self._last_log_id(), True)))
            return self._take()
        if log_ok and (req.transfer or not self._lease_blocks(from_id)):
            granted = self._update_vote(req.vote)
            if granted:
                self._reset_election_timer()
        self.out.append(Respond(from_id, VoteResponse(self.vote, granted, self._last_log_id(), False)))
        return self._take()

    def recv_vote_response(self, from_id, VoteResponse resp not None):
        self._see_term(resp.vote.leader_id.term)
        if resp.pre_vote:
            if self.pre_voting and self.state != ST_LEADER:
                if resp.granted:
                    self.granted.add(from_id)
                else:
                    self.rejected.add(from_id)
                self._check_election()
            if resp.vote.committed and vote_cmp(resp.vote, self.vote) == ORD_GREATER:
                self._update_vote(resp.vote)
            return self._take()
        if self.state == ST_CANDIDATE and resp.granted and vote_cmp(resp.vote, self.vote) == ORD_EQUAL:
            self.granted.add(from_id)
            self._check_election()
        elif vote_cmp(resp.vote, self.vote) == ORD_GREATER:
            self._update_vote(resp.vote)
        elif self.state == ST_CANDIDATE and not resp.granted:
            self.rejected.add(from_id)
            self._check_election()
        return self._take()

    cdef int _become_leader(self) except -1:
        cdef Vote v = self.vote
        assert self._is_voter() and v.leader_id.node == self.node_id, "only a voter leads, with its own vote"
        if not v.committed:
            v = Vote(v.leader_id, True)
            self.vote = v
            self.out.append(SaveVote(v))
        self.state = ST_LEADER
        self.pre_voting = False
        self.leader_committed_id = v.leader_id.committed_id()
        self.seq = 0
        self.transfer_to = None
        self.lease_void = False
        self.pending_reads = []
        self.stalled_since = {}
        self.tracker = ProgressTracker(self.quorum, self.node_id, self.membership.node_ids(), self.log.last_index,
                                       self.max_inflight, self.max_inflight_bytes, None, _idx(self.flushed))
        # A vote grant promises nothing about leases (and may arrive late, after the voter
        # helped elect a higher term): no lease and no read confirmation until a quorum acks
        # a message this leadership sent. Only check-quorum gets a grace period from the win.
        self.elected_us = self.now_us
        self.granted = set()
        self.rejected = set()
        self.heartbeat_deadline = self.now_us + self.hb_interval_us
        # A blank entry of our own lets everything before it commit at once.
        self._leader_append([None], ENTRY_BLANK)
        self.leader_first_log_id = self._last_log_id()
        self._replicate_all()
        return 0

    # ------------------------------------------------------------------ client requests
    def initialize(self, Membership membership not None):
        if self.vote.leader_id.term != 0 or self.vote.committed or self.log.last_index != 0 or self.log.purged is not None:
            raise InitializeError(f"node {self.node_id} is already initialized (vote {self.vote}, last log {self.last_log_id})")
        if self.node_id not in membership.voter_ids:
            raise InitializeError(f"node {self.node_id} is not a voter of {membership!r}")
        # Every node initialized with the same membership writes the same entry.
        self.log.c_append(make_leader_id(0, NO_NODE, self.std), [membership], ENTRY_MEMBERSHIP)
        self.out.append(AppendLog(self.log.c_slice(1, 2)))
        self._memberships_appended(1, 2)
        if self.elect_enabled:
            self._start_election(False)
        return self._take()

    def client_write(self, list payloads not None):
        self._check_writable()
        if not payloads:
            return self._take()
        self._leader_append(payloads, ENTRY_NORMAL)
        self._replicate_all()
        return self._take()

    cdef int _leader_append(self, list payloads, int kind) except -1:
        cdef int64_t first = self.log.last_index + 1
        self.log.c_append(self.leader_committed_id, payloads, kind)
        self.out.append(AppendLog(self.log.c_slice(first, self.log.last_index + 1)))
        if kind == ENTRY_MEMBERSHIP:
            self._memberships_appended(first, self.log.last_index + 1)
        return 0

    def change_membership(self, goal, bint retain=False, dict nodes=None):
        self._check_writable()
        if _idx(self.membership_log_id) > self._committed_index():
            raise ChangeMembershipError("in_progress", f"{self.membership!r} at {self.membership_log_id} is not committed yet")
        goal = frozenset(goal)
        if not goal:
            raise ChangeMembershipError("empty", "the target voter set is empty")
        known = self.membership.node_ids() | frozenset(nodes or ())
        missing = goal - known
        if missing:
            raise ChangeMembershipError("learner_not_found", f"not members: {sorted(missing)}; add them as learners first")
        new = self.membership.next_coherent(goal, retain, nodes)
        if new == self.membership:
            return self._take()
        self._leader_append([new], ENTRY_MEMBERSHIP)
        self._replicate_all()
        return self._take()

    def add_learner(self, node_id, Node node not None):
        self._check_writable()
        if node_id in self.membership.node_ids():
            return self._take()
        if _idx(self.membership_log_id) > self._committed_index():
            raise ChangeMembershipError("in_progress", f"{self.membership!r} at {self.membership_log_id} is not committed yet")
        self._leader_append([self.membership.add_learner(node_id, node)], ENTRY_MEMBERSHIP)
        self._replicate_all()
        return self._take()

    def ensure_linearizable(self, req_ids, int policy=POLICY_READ_INDEX):
        """`req_ids`: one request id or a list of them, confirmed by one quorum round."""
        cdef list ids = list(req_ids) if isinstance(req_ids, (list, tuple)) else [req_ids]
        cdef LogId read_id
        if self.state != ST_LEADER:
            err = ForwardToLeader(self.leader_id, self.leader_node())
            for r in ids:
                self.out.append(Reply(r, None, err))
            return self._take()
        # Everything known committed, including what a quorum holds while our own copy is
        # not durable yet; the caller waits until it is applied.
        read_id = self._log_id_at(self.commit_target) if self.commit_target > self._committed_index() else self.committed
        if not _log_id_ge(read_id, self.leader_first_log_id):
            read_id = self.leader_first_log_id
        if policy == POLICY_LEASE_READ:
            # After a TimeoutNow the target may win at once (its election ignores leases), so
            # no ack this leader holds proves that no newer leader exists.
            if self.transfer_to is None and not self.lease_void and self._lease_valid():
                for r in ids:
                    self.out.append(Reply(r, read_id, None))
            else:
                err = LeaseExpired("the leader lease is not valid; use READ_INDEX")
                for r in ids:
                    self.out.append(Reply(r, None, err))
            return self._take()
        # A quorum must ack a message sent after the read began: the next seq and on.
        for r in ids:
            self.pending_reads.append((self.seq + 1, read_id, r, self.now_us))
        self._send_heartbeats()
        self._check_reads()
        return self._take()

    cdef int _check_reads(self) except -1:
        cdef int64_t confirmed
        if not self.pending_reads:
            return 0
        # The leader confirms its own leadership for any seq.
        confirmed = self.tracker.c_quorum_seq(1 << 62)
        cdef list still = []
        for item in self.pending_reads:
            if <int64_t>item[0] <= confirmed:
                self.out.append(Reply(item[2], item[1], None))
            else:
                still.append(item)
        self.pending_reads = still
        return 0

    cdef _expire_reads(self):
        """A read no quorum confirmed within an election timeout fails: a cut-off leader
        cannot serve it, and its caller should not wait forever."""
        cdef list still = []
        err = None
        for item in self.pending_reads:
            if self.now_us - <int64_t>item[3] >= self.et_max_us:
                if err is None:
                    err = QuorumNotEnough("no quorum confirmed this leader within the election timeout")
                self.out.append(Reply(item[2], None, err))
            else:
                still.append(item)
        self.pending_reads = still

    cdef int _fail_reads(self) except -1:
        err = ForwardToLeader(None, None, detail="leadership lost before the read was confirmed")
        for item in self.pending_reads:
            self.out.append(Reply(item[2], None, err))
        self.pending_reads = []
        return 0

    def transfer_leader(self, to):
        if self.state != ST_LEADER:
            raise ForwardToLeader(self.leader_id, self.leader_node())
        if to == self.node_id:
            return self._take()
        if to not in self.membership.voter_ids:
            raise RaftError(f"cannot transfer leadership to {to}: not a voter")
        self.transfer_to = to
        self.transfer_sent = False
        self.transfer_deadline = self.now_us + self.et_max_us
        self._replicate(to, self.tracker.c_get(to))
        self._maybe_timeout_now()
        return self._take()

    cdef int _maybe_timeout_now(self) except -1:
        cdef Progress p
        if self.transfer_to is None or self.transfer_sent:
            return 0
        p = self.tracker.c_get(self.transfer_to)
        if p is not None and p.matched >= self.log.last_index:
            self.transfer_sent = True
            self.lease_void = True
            self.out.append(Send(self.transfer_to, TimeoutNow(self.vote, self._last_log_id())))
        return 0

    def recv_timeout_now(self, from_id, TimeoutNow msg not None):
        # Only our current leader may hand over, and only if we hold its whole log.
        if self._is_voter() and self.state != ST_LEADER and vote_cmp(msg.vote, self.vote) == ORD_EQUAL \
                and _log_id_ge(self._last_log_id(), msg.last_log_id):
            self._start_election(True)
        return self._take()

    def trigger_heartbeat(self):
        if self.state == ST_LEADER:
            self._send_heartbeats()
        return self._take()

    # ------------------------------------------------------------------ replication (leader)
    cdef int _replicate_all(self) except -1:
        cdef Progress p
        for target, p in self.tracker.progress.items():
            self._replicate(target, p)
        return 0

    cdef int _replicate(self, object target, Progress p) except -1:
        cdef int r
        cdef int64_t start, end, msg_id, nbytes
        cdef LogSlice entries
        if p is None:
            return 0
        while True:
            r = p.c_next_send(self.log.first_index, self.log.last_index, self.max_payload_entries)
            if r == SEND_NONE:
                return 0
            if r == SEND_SNAPSHOT:
                return self._send_snapshot(target, p)
            start = p.send_start
            end = p.send_end
            if self.snapshot is not None and self.snapshot.last_log_id.index - (start - 1) > self.lag_threshold:
                # Far behind: a snapshot is cheaper than probing and streaming the log.
                return self._send_snapshot(target, p)
            entries = self.log.c_slice(start, end) if end > start else None
            nbytes = 0 if entries is None else entries.nbytes
            if p.inflight.count == 0:
                self.stalled_since[target] = self.now_us
            msg_id = p.c_sent(nbytes)
            self.seq += 1
            self.out.append(Send(target, AppendRequest(self.vote, self._log_id_at(start - 1), entries,
                                                       self.committed, msg_id, self.seq, self.now_us)))
            if p.state != REPLICATE:
                return 0

    cdef int _send_snapshot(self, object target, Progress p) except -1:
        cdef int64_t msg_id
        if self.snapshot is None or self.snapshot.last_log_id.index < self.log.first_index - 1:
            self._maybe_build_snapshot_now()
            return 0
        msg_id = p.c_begin_snapshot(self.snapshot.last_log_id.index)
        self.stalled_since[target] = self.now_us
        self.seq += 1
        self.out.append(SendSnapshot(target, InstallSnapshotRequest(self.vote, self.snapshot, None, msg_id,
                                                                    self.seq, self.now_us)))
        return 0

    cdef _maybe_build_snapshot_now(self):
        if not self.snapshot_building:
            self.snapshot_building = True
            self.out.append(BuildSnapshot())

    cdef int _send_heartbeats(self) except -1:
        cdef Progress p
        cdef LogId prev
        for target, p in self.tracker.progress.items():
            prev = self._log_id_at(p.matched) if p.matched >= self.log.first_index - 1 else None
            self.seq += 1
            self.out.append(SendHeartbeat(target, AppendRequest(self.vote, prev, None, self.committed, 0,
                                                                self.seq, self.now_us)))
        self.heartbeat_deadline = self.now_us + self.hb_interval_us
        return 0

    def recv_append_response(self, from_id, AppendResponse resp not None):
        cdef Progress p
        cdef int64_t accepted
        cdef bint moved
        if vote_cmp(resp.vote, self.vote) == ORD_GREATER:
            self._update_vote(resp.vote)
            return self._take()
        if self.state != ST_LEADER or resp.result == APPEND_HIGHER_VOTE or vote_cmp(resp.vote, self.vote) != ORD_EQUAL:
            return self._take()
        p = self.tracker.c_get(from_id)
        if p is None:
            return self._take()
        self.tracker.c_ack(p.slot, resp.seq, resp.sent_at)
        if resp.msg_id != 0:
            if resp.result == APPEND_OK:
                moved = p.c_on_ack(resp.msg_id, _idx(resp.matched))
                if moved:
                    accepted = self.tracker.c_update(p.slot, p.matched)
                    self._try_commit(accepted)
            else:
                moved = p.c_on_reject(resp.msg_id, resp.conflict, resp.hint_last)
            if moved:
                self.stalled_since[from_id] = self.now_us
        self._replicate(from_id, p)
        self._check_reads()
        self._maybe_timeout_now()
        return self._take()

    cdef int _try_commit(self, int64_t accepted) except -1:
        assert accepted <= self.log.last_index, f"a quorum accepted {accepted} past our last entry"
        # Only an entry of this leadership commits by counting replicas (Raft §5.4.2).
        if accepted > self._committed_index() and accepted >= self.leader_first_log_id.index:
            self._set_committed(accepted)
        return 0

    # ------------------------------------------------------------------ append (follower)
    cdef bint _accept_leader(self, object from_id, Vote vote) except -1:
        """A leader's message (append or snapshot): accept its vote if it is committed and
        >= ours (saving it when greater), follow it, and note the contact for the lease.
        False when the message must be refused."""
        cdef int c = vote_cmp(vote, self.vote)
        if not vote.committed or (c != ORD_GREATER and c != ORD_EQUAL):
            return False
        if c == ORD_GREATER:
            self.vote = vote
            self.out.append(SaveVote(vote))
        if self.state == ST_LEADER or self.state == ST_CANDIDATE or self.pre_voting:
            self._become_follower()
        self.leader_contact_us = self.now_us
        self.leader_contact_node = from_id
        self._reset_election_timer()
        return True

    def recv_append(self, from_id, AppendRequest req not None):
        cdef LogId prev = req.prev_log_id
        cdef LogSlice entries = req.entries
        cdef LogId matched
        cdef LeaderId ours
        cdef int64_t first_conflict, hint
        if not self._accept_leader(from_id, req.vote):
            self.out.append(Respond(from_id, AppendResponse(self.vote, APPEND_HIGHER_VOTE, None, 0, -1, req.msg_id,
                                                            req.seq, req.sent_at)))
            return self._take()

        # Log consistency: our entry at prev must be the leader's. Entries up to our purged
        # index are committed, so they match.
        if prev is not None and prev.index >= self.log.first_index:
            hint = -1
            if prev.index > self.log.last_index:
                hint = self.log.last_index
                ours = None
            else:
                ours = self.log.c_leader_at(prev.index)
            if ours is None or leader_id_cmp(ours, prev.leader_id) != ORD_EQUAL:
                self.out.append(Respond(from_id, AppendResponse(self.vote, APPEND_CONFLICT, None, prev.index, hint,
                                                                req.msg_id, req.seq, req.sent_at)))
                return self._take()
        matched = prev
        if entries is not None and entries.stop > entries.start:
            matched = entries.last_log_id
            first_conflict = self.log.c_first_conflict(entries)
            if first_conflict < entries.stop:
                if first_conflict <= self.log.last_index:
                    self._truncate_after(first_conflict - 1)
                self.log.c_append_slice(entries, first_conflict)
                self.out.append(AppendLog(entries if first_conflict == entries.start
                                          else self.log.c_slice(first_conflict, entries.stop)))
                self._memberships_appended(first_conflict, entries.stop)
        # Commit only what is known to match the leader's log.
        if req.commit is not None and matched is not None:
            self._set_committed(min(req.commit.index, matched.index))
        resp = AppendResponse(self.vote, APPEND_OK, matched, 0, -1, req.msg_id, req.seq, req.sent_at)
        if _idx(matched) <= _idx(self.flushed):
            self.out.append(Respond(from_id, resp))
        else:
            # Ack only what is durable.
            self.pending_acks.append((matched.index, from_id, resp))
        return self._take()

    cdef int _flush_acks(self) except -1:
        cdef int64_t f = _idx(self.flushed)
        cdef list still = []
        for item in self.pending_acks:
            if <int64_t>item[0] <= f:
                self.out.append(Respond(item[1], item[2]))
            else:
                still.append(item)
        self.pending_acks = still
        return 0

    cdef int _truncate_after(self, int64_t after) except -1:
        if after < self._committed_index():
            raise AssertionError(f"node {self.node_id}: refusing to truncate committed entries "
                                 f"(after {after}, committed {self.committed})")
        self.log.c_truncate_after(after)
        self.out.append(TruncateLog(after))
        if self.commit_target > after:
            self.commit_target = after
        if _idx(self.flushed) > after:
            self.flushed = self._log_id_at(after)
        self.pending_acks = [a for a in self.pending_acks if <int64_t>a[0] <= after]
        cdef list kept = [(lid, m) for lid, m in self.uncommitted_memberships if (<LogId>lid).index <= after]
        if len(kept) != len(self.uncommitted_memberships):
            self.uncommitted_memberships = kept
            self._effective_changed()
        return 0

    def on_log_flushed(self, LogId log_id not None):
        cdef int64_t accepted
        cdef LeaderId ours = self.log.c_leader_at(log_id.index)
        if ours is None or leader_id_cmp(ours, log_id.leader_id) != ORD_EQUAL:
            return self._take()      # truncated meanwhile
        if log_id.index <= _idx(self.flushed):
            return self._take()
        self.flushed = log_id
        assert log_id.index <= self.log.last_index
        if self.state == ST_LEADER:
            accepted = self.tracker.c_update(self.tracker.self_slot, log_id.index)
            self._try_commit(accepted)
        self._flush_acks()      # the leader waits on these: before applying
        if self.commit_target > self._committed_index():
            self._set_committed(self.commit_target)
        self._apply()
        return self._take()

    # ------------------------------------------------------------------ commit / apply
    cdef int _set_committed(self, int64_t index) except -1:
        """`index` is known committed. Our committed id follows it only as far as our log is
        durable, so a saved committed id never lies past the durable log."""
        cdef Membership m
        cdef LogId lid
        if index > self.commit_target:
            self.commit_target = index
        if index > _idx(self.flushed):
            index = _idx(self.flushed)
        if index <= self._committed_index():
            return 0
        assert index <= self.log.last_index, f"commit {index} past the last entry {self.log.last_index}"
        self.committed = self._log_id_at(index)
        self.out.append(SaveCommitted(self.committed))
        cdef bint changed = False
        while self.uncommitted_memberships and (<LogId>self.uncommitted_memberships[0][0]).index <= index:
            lid, m = self.uncommitted_memberships.pop(0)
            self.committed_membership = m
            self.committed_membership_log_id = lid
            changed = True
        if changed and self.state == ST_LEADER and not self.committed_membership.is_joint \
                and self.node_id not in self.committed_membership.voter_ids:
            self._hand_over()
        elif changed:
            self._update_role()
        self._apply()
        return 0

    cdef _hand_over(self):
        """A leader that removed itself: the most up-to-date voter takes over."""
        cdef Progress p, best = None
        for v in sorted(self.committed_membership.voter_ids):
            p = self.tracker.c_get(v)
            if p is not None and (best is None or p.matched > best.matched):
                best = p
        if best is not None and best.matched >= self.log.last_index:
            self.lease_void = True
            self.out.append(Send(best.node_id, TimeoutNow(self.vote, self._last_log_id())))
        self._become_follower()

    cdef int _apply(self) except -1:
        cdef int64_t upto = self._committed_index()
        if _idx(self.flushed) < upto:
            upto = _idx(self.flushed)
        if upto > self.apply_sent:
            assert self.apply_sent + 1 >= self.log.first_index, "entries to apply were purged"
            self.out.append(Apply(self.log.c_slice(self.apply_sent + 1, upto + 1)))
            self.apply_sent = upto
        return 0

    def on_applied(self, LogId log_id not None):
        if not _log_id_ge(self.applied, log_id):
            self.applied = log_id
        self._maybe_build_snapshot()
        if self.purge_wanted >= self.log.first_index:
            self._purge(self.purge_wanted)
        return self._take()

    # ------------------------------------------------------------------ membership
    cdef int _memberships_appended(self, int64_t start, int64_t stop) except -1:
        cdef list found = self.log.c_membership_entries(start, stop)
        if found:
            self.uncommitted_memberships.extend(found)
            self._effective_changed()
        return 0

    cdef int _effective_changed(self) except -1:
        """The effective membership is the last one appended (it takes effect at once)."""
        if self.uncommitted_memberships:
            self.membership_log_id, self.membership = self.uncommitted_memberships[len(self.uncommitted_memberships) - 1]
        else:
            self.membership_log_id, self.membership = self.committed_membership_log_id, self.committed_membership
        if self.membership is None:
            self.quorum = None
            return 0
        self.quorum = self.quorum_factory(self.membership.configs)
        if not self.quorum.safe:
            raise ValueError(f"the quorum set {self.quorum!r} lets a read quorum miss a write quorum")
        if self.state == ST_LEADER:
            self.tracker = ProgressTracker(self.quorum, self.node_id, self.membership.node_ids(), self.log.last_index,
                                           self.max_inflight, self.max_inflight_bytes, self.tracker, _idx(self.flushed))
            for t in list(self.stalled_since):
                if t not in self.tracker.progress:
                    del self.stalled_since[t]
            if self.transfer_to is not None and self.transfer_to not in self.membership.voter_ids:
                self.transfer_to = None
        self._update_role()
        return 0

    cdef int _update_role(self) except -1:
        """Follower or learner, as membership allows (leaders and candidates keep their state)."""
        if self.state == ST_LEADER:
            return 0
        if self._is_voter():
            if self.state == ST_LEARNER:
                self.state = ST_FOLLOWER
                self._reset_election_timer()
        elif self.state != ST_LEARNER:
            self.state = ST_LEARNER
            self.pre_voting = False
        return 0

    # ------------------------------------------------------------------ snapshots
    cdef int _maybe_build_snapshot(self) except -1:
        cdef int64_t since
        if self.snapshot_every <= 0 or self.snapshot_building or self.applied is None:
            return 0
        since = self.applied.index - (0 if self.snapshot is None else self.snapshot.last_log_id.index)
        if since >= self.snapshot_every:
            self.snapshot_building = True
            self.out.append(BuildSnapshot())
        return 0

    def trigger_snapshot(self):
        if not self.snapshot_building and self.applied is not None and \
                (self.snapshot is None or self.snapshot.last_log_id.index < self.applied.index):
            self._maybe_build_snapshot_now()
        return self._take()

    def on_snapshot_built(self, SnapshotMeta meta not None):
        self.snapshot_building = False
        if meta.last_log_id is not None and (self.snapshot is None or
                                             meta.last_log_id.index > self.snapshot.last_log_id.index):
            self.snapshot = meta
            self._purge(meta.last_log_id.index - self.keep_logs)
        if self.state == ST_LEADER:
            self._replicate_all()
        return self._take()

    def purge_log(self, int64_t upto):
        self._purge(upto)
        return self._take()

    cdef int _purge(self, int64_t upto) except -1:
        """Purge up to `upto`, but never past the snapshot, what is applied, or what an
        in-flight replication stream still reads."""
        cdef Progress p
        if self.snapshot is None:
            return 0
        if upto > self.snapshot.last_log_id.index:
            upto = self.snapshot.last_log_id.index
        if upto > _idx(self.applied):
            upto = _idx(self.applied)
        if upto > self.purge_wanted:
            self.purge_wanted = upto
        if self.state == ST_LEADER:
            # A live stream keeps what it is about to send; a stalled one (its target down)
            # does not hold the log back: it gets the snapshot when it returns.
            for target, p in self.tracker.progress.items():
                if p.state == REPLICATE and p.matched < upto and \
                        self.now_us - <int64_t>self.stalled_since.get(target, 0) <= self.retransmit_us:
                    upto = p.matched
        if upto - (self.log.first_index - 1) < self.purge_batch or upto < self.log.first_index:
            return 0
        self.log.c_purge_upto(upto)
        self.out.append(PurgeLog(self.log.purged))
        return 0

    def recv_snapshot(self, from_id, InstallSnapshotRequest req not None):
        cdef SnapshotMeta meta = req.meta
        cdef LogId last = meta.last_log_id
        cdef LeaderId ours
        if not self._accept_leader(from_id, req.vote):
            self.out.append(Respond(from_id, SnapshotResponse(self.vote, False, req.msg_id, req.seq, req.sent_at)))
            return self._take()
        resp = SnapshotResponse(self.vote, True, req.msg_id, req.seq, req.sent_at)
        if last is None or last.index <= self._committed_index():
            # We already hold everything it covers.
            self.out.append(Respond(from_id, resp))
            return self._take()
        ours = self.log.c_leader_at(last.index)
        if ours is None or leader_id_cmp(ours, last.leader_id) != ORD_EQUAL:
            # Our log disagrees with the snapshot (or ends before it). Install first, then drop
            # the log: truncating first would lose acked entries to a crash in between.
            self.out.append(InstallSnapshot(meta, req.data))
            if self.log.last_index >= last.index:
                # From the snapshot's index on, our entries are not the snapshot's.
                self._truncate_after(last.index - 1)
            self.log.reset(last)
            self.flushed = last
        else:
            self.out.append(InstallSnapshot(meta, req.data))
            self.log.c_purge_upto(last.index)
        self.out.append(PurgeLog(last))
        self.snapshot = meta
        self.committed = last
        if self.commit_target < last.index:
            self.commit_target = last.index
        if not _log_id_ge(self.flushed, last):
            self.flushed = last         # the purge below makes everything up to `last` durable
        self.out.append(SaveCommitted(last))
        self.apply_sent = last.index
        self.committed_membership = meta.membership
        self.committed_membership_log_id = meta.membership_log_id
        self.uncommitted_memberships = [(lid, m) for lid, m in self.uncommitted_memberships
                                        if (<LogId>lid).index > last.index]
        self._effective_changed()
        self.pending_snapshot_acks.append((meta, from_id, resp))
        return self._take()

    def on_snapshot_installed(self, SnapshotMeta meta not None):
        if not _log_id_ge(self.applied, meta.last_log_id):
            self.applied = meta.last_log_id
        cdef list still = []
        for item in self.pending_snapshot_acks:
            if item[0] == meta:
                self.out.append(Respond(item[1], item[2]))
            else:
                still.append(item)
        self.pending_snapshot_acks = still
        return self._take()

    def recv_snapshot_response(self, from_id, SnapshotResponse resp not None):
        cdef Progress p
        if vote_cmp(resp.vote, self.vote) == ORD_GREATER:
            self._update_vote(resp.vote)
            return self._take()
        if self.state != ST_LEADER or vote_cmp(resp.vote, self.vote) != ORD_EQUAL:
            return self._take()
        p = self.tracker.c_get(from_id)
        if p is None:
            return self._take()
        self.tracker.c_ack(p.slot, resp.seq, resp.sent_at)
        if p.state == SNAPSHOT and p.c_on_snapshot(resp.msg_id, p.inflight.c_last_end(), resp.ok):
            self.stalled_since[from_id] = self.now_us
            self._try_commit(self.tracker.c_update(p.slot, p.matched))
            self._replicate(from_id, p)
        self._check_reads()
        return self._take()

    def on_snapshot_send_failed(self, target, int64_t msg_id):
        cdef Progress p
        if self.state == ST_LEADER:
            p = self.tracker.c_get(target)
            if p is not None and p.state == SNAPSHOT:
                # Retried from the next heartbeat tick, not at once: the target may be down.
                p.c_on_snapshot(msg_id, 0, False)
        return self._take()

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
                self._expire_reads()
            if self.heartbeat_enabled and self.now_us >= self.heartbeat_deadline:
                self._send_heartbeats()
                # Messages lost on the way leave a window stuck: probe again.
                for target, p in self.tracker.progress.items():
                    if p.inflight.count > 0 and self.now_us - <int64_t>self.stalled_since.get(target, self.now_us) > (
                            self.snapshot_timeout_us if p.state == SNAPSHOT else self.retransmit_us):
                        p.c_restart_probe(self.log.last_index)
                    self._replicate(target, p)
                if self.purge_wanted >= self.log.first_index:
                    self._purge(self.purge_wanted)
            if self.now_us >= self._step_down_deadline():
                # Check-quorum: no quorum acked anything sent for an election timeout, so a
                # newer leader may exist. Stop leading; the runtime then settles this node's
                # pending writes (applied, truncated, or OutcomeUnknown after its bound).
                self._become_follower()
        elif self.elect_enabled and self._is_voter() and self.now_us >= self.election_deadline:
            if self.pre_vote_enabled:
                self._start_pre_vote()
            else:
                self._start_election(False)
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
        self._apply()
        if self.vote.committed and self.vote.leader_id.node == self.node_id and self._is_voter() \
                and self.elect_enabled:
            self._start_election(False)
        return self._take()
