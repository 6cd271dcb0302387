# Following and the log (openraft: following_handler, log_handler).
# Decides: whether a leader's message is accepted (committed vote >= ours) and what accepting
# it resets (follow it, lease contact, election timer); the log consistency check at prev and
# the conflict hint; which entries are appended and where the log is truncated (never into
# committed entries); that a follower commits only what matches the leader's log and acks only
# what is durable; and what a flush of the log releases (acks, commits, applies).


cdef bint _accept_leader(Engine self, object from_id, Vote vote) except -1:
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
        _become_follower(self)
    self.leader_contact_us = self.now_us
    self.leader_contact_node = from_id
    self.leader_lost = False
    self._reset_election_timer()
    if self.told_not_member:
        # A leader replicates to us: what its log says of our membership decides now.
        self.told_not_member = False
        _update_role(self)
    return True


cdef recv_append(Engine self, from_id, AppendRequest req):
    cdef LogId prev = req.prev_log_id
    cdef LogSlice entries = req.entries
    cdef LogId matched
    cdef LeaderId ours
    cdef int64_t first_conflict, hint
    if not _accept_leader(self, from_id, req.vote):
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
                _truncate_after(self, first_conflict - 1)
            self.log.c_append_slice(entries, first_conflict)
            self.out.append(AppendLog(entries if first_conflict == entries.start
                                      else self.log.c_slice(first_conflict, entries.stop)))
            _memberships_appended(self, first_conflict, entries.stop)
            _appended(self, matched)
    # Commit only what is known to match the leader's log.
    if req.commit is not None and matched is not None:
        _set_committed(self, min(req.commit.index, matched.index))
    resp = AppendResponse(self.vote, APPEND_OK, matched, 0, -1, req.msg_id, req.seq, req.sent_at)
    if _idx(matched) <= _idx(self.flushed):
        self.out.append(Respond(from_id, resp))
    else:
        # Ack only what is durable.
        self.pending_acks.append((matched.index, from_id, resp))
    return self._take()


cdef int _flush_acks(Engine self) except -1:
    cdef int64_t f = _idx(self.flushed)
    cdef list still = []
    for item in self.pending_acks:
        if <int64_t>item[0] <= f:
            self.out.append(Respond(item[1], item[2]))
        else:
            still.append(item)
    self.pending_acks = still
    return 0


cdef int _truncate_after(Engine self, int64_t after) except -1:
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
        _effective_changed(self)
    return 0


cdef int _appended(Engine self, LogId last) except -1:
    """An AppendLog up to `last` was just emitted (and the log and memberships updated). With
    sync_log it is durable before the next command runs, so its flush is handled now, in this
    event: what on_log_flushed would release (acks, commits, applies) follows the AppendLog."""
    if self.sync_log:
        _log_flushed(self, last)
    return 0


cdef on_log_flushed(Engine self, LogId log_id):
    _log_flushed(self, log_id)
    return self._take()


cdef int _log_flushed(Engine self, LogId log_id) except -1:
    cdef int64_t accepted
    cdef LeaderId ours = self.log.c_leader_at(log_id.index)
    if ours is None or leader_id_cmp(ours, log_id.leader_id) != ORD_EQUAL:
        return 0        # truncated meanwhile
    if log_id.index <= _idx(self.flushed):
        return 0
    self.flushed = log_id
    assert log_id.index <= self.log.last_index
    if self.state == ST_LEADER:
        accepted = self.tracker.c_update(self.tracker.self_slot, log_id.index)
        _try_commit(self, accepted)
    _flush_acks(self)      # the leader waits on these: before applying
    if self.commit_target > self._committed_index():
        _set_committed(self, self.commit_target)
    _apply(self)
    return 0
