# Commit and apply (openraft: the commit part of replication_handler, server_state_handler).
# Decides: how far the committed id may advance (never past the durable log), which
# memberships that commits, that a leader which committed its own removal hands over to the most
# up-to-date voter, and which committed entries are handed to the state machine and when.


cdef int _set_committed(Engine self, int64_t index) except -1:
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
        _hand_over(self)
    elif changed:
        _update_role(self)
    _apply(self)
    return 0


cdef _hand_over(Engine self):
    """A leader that removed itself: the most up-to-date voter takes over."""
    cdef Progress p, best = None
    for v in sorted(self.committed_membership.voter_ids):
        p = self.tracker.c_get(v)
        if p is not None and (best is None or p.matched > best.matched):
            best = p
    if best is not None and best.matched >= self.log.last_index:
        self.lease_void = True
        self.out.append(Send(best.node_id, TimeoutNow(self.vote, self._last_log_id())))
    _become_follower(self)


cdef int _apply(Engine self) except -1:
    cdef int64_t upto = self._committed_index()
    if _idx(self.flushed) < upto:
        upto = _idx(self.flushed)
    if upto > self.apply_sent:
        assert self.apply_sent + 1 >= self.log.first_index, "entries to apply were purged"
        self.out.append(Apply(self.log.c_slice(self.apply_sent + 1, upto + 1)))
        self.apply_sent = upto
    return 0


cdef on_applied(Engine self, LogId log_id):
    if not _log_id_ge(self.applied, log_id):
        self.applied = log_id
    _maybe_build_snapshot(self)
    if self.purge_wanted >= self.log.first_index:
        _purge(self, self.purge_wanted)
    return self._take()
