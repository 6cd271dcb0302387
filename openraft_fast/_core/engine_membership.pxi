# Membership (openraft: the membership part of replication_handler, server_state_handler).
# Decides: how a node is initialized; which membership changes a leader accepts (one at a
# time, only when the previous one is committed, targets known as members first); that the
# effective membership is the last one appended and what changing it rebuilds (quorum set,
# progress tracker, transfer target); and whether a node is a follower or a learner.
# Also: that a change is refused when fewer than a quorum of the new voters are healthy
# (unless forced); that a leader keeps replicating to the nodes a change removed until they
# hold the removing entry (or a bound passes), so they learn it; and that a node in none of
# the memberships it holds is NOT_MEMBER and never stands.

# How long a leader keeps replicating to a removed node that has not caught up with its removal.
DEF LEAVING_TIMEOUTS = 10      # x election_timeout_max


cdef initialize(Engine self, Membership membership, bint elect):
    if self.vote.leader_id.term != 0 or self.vote.committed or self.log.last_index != 0 or self.log.purged is not None:
        raise InitializeError(f"node {self.node_id} is already initialized (vote {self.vote}, last log {self.last_log_id})")
    if self.node_id not in membership.voter_ids:
        raise InitializeError(f"node {self.node_id} is not a voter of {membership!r}")
    # Every node initialized with the same membership writes the same entry.
    self.log.c_append(make_leader_id(0, NO_NODE, self.std), [membership], ENTRY_MEMBERSHIP)
    self.out.append(AppendLog(self.log.c_slice(1, 2)))
    _memberships_appended(self, 1, 2)
    _appended(self, self._last_log_id())
    if not self.elect_enabled:
        pass
    elif elect:
        _start_election(self, False)
    else:
        # Every node of a new cluster initialized at once: stand when a randomized election
        # timeout runs out (pre-vote first), so the first to time out wins, unopposed.
        self._reset_election_timer()
    return self._take()


cdef change_membership(Engine self, goal, bint retain, dict nodes, bint force):
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
    if not force:
        healthy = [t for t in goal if self._healthy(t)]
        if not self.quorum_factory([goal]).is_quorum(healthy):
            raise ChangeMembershipError(
                "not_enough_healthy_voters",
                f"voters {sorted(goal)} would need a quorum, but {self.unhealthy(goal)} have not acked within "
                f"election_timeout_max (not running, unreachable or not caught up); force=True skips this check")
    _leader_append(self, [new], ENTRY_MEMBERSHIP)
    _replicate_all(self)
    return self._take()


cdef add_learner(Engine self, node_id, Node node):
    self._check_writable()
    if node_id in self.membership.node_ids():
        return self._take()
    if _idx(self.membership_log_id) > self._committed_index():
        raise ChangeMembershipError("in_progress", f"{self.membership!r} at {self.membership_log_id} is not committed yet")
    _leader_append(self, [self.membership.add_learner(node_id, node)], ENTRY_MEMBERSHIP)
    _replicate_all(self)
    return self._take()


cdef remove_learner(Engine self, node_id):
    self._check_writable()
    if node_id not in self.membership.node_ids():
        return self._take()
    if self.membership.is_voter(node_id):
        raise ChangeMembershipError("is_voter", f"node {node_id} is a voter: take it out of the voters first")
    if _idx(self.membership_log_id) > self._committed_index():
        raise ChangeMembershipError("in_progress", f"{self.membership!r} at {self.membership_log_id} is not committed yet")
    _leader_append(self, [self.membership.remove_learner(node_id)], ENTRY_MEMBERSHIP)
    _replicate_all(self)
    return self._take()


cdef int _memberships_appended(Engine self, int64_t start, int64_t stop) except -1:
    cdef list found = self.log.c_membership_entries(start, stop)
    if found:
        self.uncommitted_memberships.extend(found)
        _effective_changed(self)
    return 0


cdef int _effective_changed(Engine self) except -1:
    """The effective membership is the last one appended (it takes effect at once)."""
    cdef Membership old = self.membership
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
        _note_leaving(self, old)
        _track_targets(self)
        for t in list(self.stalled_since):
            if t not in self.tracker.progress:
                del self.stalled_since[t]
        if self.transfer_to is not None and self.transfer_to not in self.membership.voter_ids:
            self.transfer_to = None
    _update_role(self)
    return 0


cdef int _update_role(Engine self) except -1:
    """Follower, learner or not a member, as membership allows (leaders and candidates keep
    their state while they remain voters)."""
    cdef int role
    if self.state == ST_LEADER:
        return 0
    role = _role(self)
    if role == ST_FOLLOWER:
        if self.state == ST_LEARNER or self.state == ST_NOT_MEMBER:
            self.state = ST_FOLLOWER
            self._reset_election_timer()
    elif self.state != role:
        self.state = role
        self.pre_voting = False
    return 0


cdef int _role(Engine self) except -1:
    """What a node that does not lead is, by the memberships it holds."""
    if self.membership is not None and (self.told_not_member or not _knows_member(self, self.node_id)):
        return ST_NOT_MEMBER
    return ST_FOLLOWER if self._is_voter() else ST_LEARNER


cdef bint _knows_member(Engine self, object node_id) except -1:
    """`node_id` is a voter or learner of a membership this node holds, committed or pending."""
    cdef Membership m
    if self.committed_membership is not None and node_id in self.committed_membership.node_ids():
        return True
    for _, m in self.uncommitted_memberships:
        if node_id in m.node_ids():
            return True
    return False


cdef int _note_leaving(Engine self, Membership old) except -1:
    """Leader: the nodes `old` had and the effective membership drops keep being replicated
    to until they hold the entry that drops them (or LEAVING_TIMEOUTS election timeouts pass);
    a node the membership takes back stops leaving."""
    cdef int64_t deadline = self.now_us + LEAVING_TIMEOUTS * self.et_max_us
    members = self.membership.node_ids()
    for t in list(self.leaving):
        if t in members:
            del self.leaving[t]
    if old is not None:
        for t in old.node_ids():
            if t not in members and t != self.node_id and t not in self.leaving:
                self.leaving[t] = (old.get_node(t), self.membership_log_id.index, deadline)
    return 0


cdef int _track_targets(Engine self) except -1:
    """Leader: (re)build the progress tracker over the members and the leaving nodes."""
    targets = self.membership.node_ids()
    if self.leaving:
        targets = targets | frozenset(self.leaving)
    self.tracker = ProgressTracker(self.quorum, self.node_id, targets, self.log.last_index,
                                   self.max_inflight, self.max_inflight_bytes, self.tracker, _idx(self.flushed))
    return 0


cdef int _stop_leaving(Engine self, object target) except -1:
    del self.leaving[target]
    self.stalled_since.pop(target, None)
    _track_targets(self)
    return 0


cdef int _expire_leaving(Engine self) except -1:
    for t, (_, _, deadline) in list(self.leaving.items()):
        if self.now_us >= <int64_t>deadline:
            _stop_leaving(self, t)
    return 0
