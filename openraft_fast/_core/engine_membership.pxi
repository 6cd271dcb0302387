# Membership (openraft: the membership part of replication_handler, server_state_handler).
# Decides: how a node is initialized; which membership changes a leader accepts (one at a
# time, only when the previous one is committed, targets known as members first); that the
# effective membership is the last one appended and what changing it rebuilds (quorum set,
# progress tracker, transfer target); and whether a node is a follower or a learner.


cdef initialize(Engine self, Membership membership):
    if self.vote.leader_id.term != 0 or self.vote.committed or self.log.last_index != 0 or self.log.purged is not None:
        raise InitializeError(f"node {self.node_id} is already initialized (vote {self.vote}, last log {self.last_log_id})")
    if self.node_id not in membership.voter_ids:
        raise InitializeError(f"node {self.node_id} is not a voter of {membership!r}")
    # Every node initialized with the same membership writes the same entry.
    self.log.c_append(make_leader_id(0, NO_NODE, self.std), [membership], ENTRY_MEMBERSHIP)
    self.out.append(AppendLog(self.log.c_slice(1, 2)))
    _memberships_appended(self, 1, 2)
    if self.elect_enabled:
        _start_election(self, False)
    return self._take()


cdef change_membership(Engine self, goal, bint retain, dict nodes):
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


cdef int _memberships_appended(Engine self, int64_t start, int64_t stop) except -1:
    cdef list found = self.log.c_membership_entries(start, stop)
    if found:
        self.uncommitted_memberships.extend(found)
        _effective_changed(self)
    return 0


cdef int _effective_changed(Engine self) except -1:
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
    _update_role(self)
    return 0


cdef int _update_role(Engine self) except -1:
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
