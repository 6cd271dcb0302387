# Reads, leases and check-quorum (openraft: the read part of leader_handler).
# Decides: the follower lease a node promised its leader; the leader's lease (send time of the
# newest message a quorum acked, shortened by the clock drift) and its check-quorum deadline;
# which read id a linearizable read waits for; when a read-index read is confirmed by a quorum,
# when a lease read may be served, and when a pending read fails.


cdef bint _in_follower_lease(Engine self) noexcept:
    return self.now_us < self.leader_contact_us + self.follower_lease_us


cdef bint _quorum_alive(Engine self) noexcept:
    """Check-quorum (not a lease): a quorum acked within the lease, or we won an election
    less than a lease ago. Never a ground to serve a read."""
    return _lease_valid(self) or self.now_us < self.elected_us + self.leader_lease_us


cdef int64_t _step_down_deadline(Engine self) noexcept:
    """A leader steps down at this time unless a quorum acks a message sent after it won
    or after the newest acked one: one election_timeout_max past either."""
    cdef int64_t t = _lease_time(self)
    if t < self.elected_us:
        t = self.elected_us
    return t + self.et_max_us


cdef bint _lease_valid(Engine self) noexcept:
    cdef int64_t t = _lease_time(self)
    return t >= 0 and t + self.leader_lease_us > self.now_us


cdef int64_t _lease_time(Engine self) noexcept:
    """Send time of the newest message a write quorum acked (-1 if none)."""
    if self.tracker is None:
        return -1
    return self.tracker.c_quorum_time(self.now_us)


cdef ensure_linearizable(Engine self, req_ids, int policy):
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
        if self.transfer_to is None and not self.lease_void and _lease_valid(self):
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
    _send_heartbeats(self)
    _check_reads(self)
    return self._take()


cdef int _check_reads(Engine self) except -1:
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


cdef _expire_reads(Engine self):
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


cdef int _fail_reads(Engine self) except -1:
    err = ForwardToLeader(None, None, detail="leadership lost before the read was confirmed")
    for item in self.pending_reads:
        self.out.append(Reply(item[2], None, err))
    self.pending_reads = []
    return 0
