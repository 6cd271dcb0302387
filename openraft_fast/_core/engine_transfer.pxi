# Leader transfer (openraft: the transfer part of vote_handler).
# Decides: to whom leadership may be transferred (a voter); that the leader sends TimeoutNow
# only once the target holds its whole log (voiding lease reads for good); and that a node
# stands at once on TimeoutNow only from its current leader and holding the leader's log.


cdef transfer_leader(Engine self, to):
    if self.state != ST_LEADER:
        raise ForwardToLeader(self.leader_id, self.leader_node())
    if to == self.node_id:
        return self._take()
    if to not in self.membership.voter_ids:
        raise RaftError(f"cannot transfer leadership to {to}: not a voter")
    self.transfer_to = to
    self.transfer_sent = False
    self.transfer_deadline = self.now_us + self.et_max_us
    _replicate(self, to, self.tracker.c_get(to))
    _maybe_timeout_now(self)
    return self._take()


cdef int _maybe_timeout_now(Engine self) except -1:
    cdef Progress p
    if self.transfer_to is None or self.transfer_sent:
        return 0
    p = self.tracker.c_get(self.transfer_to)
    if p is not None and p.matched >= self.log.last_index:
        self.transfer_sent = True
        self.lease_void = True
        self.out.append(Send(self.transfer_to, TimeoutNow(self.vote, self._last_log_id())))
    return 0


cdef recv_timeout_now(Engine self, from_id, TimeoutNow msg):
    # Only our current leader may hand over, and only if we hold its whole log.
    if self._is_voter() and self.state != ST_LEADER and vote_cmp(msg.vote, self.vote) == ORD_EQUAL \
            and _log_id_ge(self._last_log_id(), msg.last_log_id):
        _start_election(self, True)
    return self._take()
