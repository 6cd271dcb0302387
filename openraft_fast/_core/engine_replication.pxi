# Leader and replication (openraft: replication_handler, leader_handler).
# Decides: how a leader appends client entries under its own leader id; what each target is
# sent and when (probe, pipelined log stream within the in-flight window, a snapshot for a
# target too far behind, heartbeats); how an append response moves a target's progress and the
# lease; and that a quorum's acceptance commits only entries of this leadership (Raft 5.4.2).


cdef client_write(Engine self, list payloads):
    self._check_writable()
    if not payloads:
        return self._take()
    _leader_append(self, payloads, ENTRY_NORMAL)
    _replicate_all(self)
    return self._take()


cdef int _leader_append(Engine self, list payloads, int kind) except -1:
    cdef int64_t first = self.log.last_index + 1
    self.log.c_append(self.leader_committed_id, payloads, kind)
    self.out.append(AppendLog(self.log.c_slice(first, self.log.last_index + 1)))
    if kind == ENTRY_MEMBERSHIP:
        _memberships_appended(self, first, self.log.last_index + 1)
    _appended(self, self._last_log_id())
    return 0


cdef trigger_heartbeat(Engine self):
    if self.state == ST_LEADER:
        _send_heartbeats(self)
    return self._take()


cdef int _replicate_all(Engine self) except -1:
    cdef Progress p
    for target, p in self.tracker.progress.items():
        _replicate(self, target, p)
    return 0


cdef int _replicate(Engine self, object target, Progress p) except -1:
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
            return _send_snapshot(self, target, p)
        start = p.send_start
        end = p.send_end
        if self.snapshot is not None and self.snapshot.last_log_id.index - (start - 1) > self.lag_threshold:
            # Far behind: a snapshot is cheaper than probing and streaming the log.
            return _send_snapshot(self, target, p)
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


cdef int _send_snapshot(Engine self, object target, Progress p) except -1:
    cdef int64_t msg_id
    if self.snapshot is None or self.snapshot.last_log_id.index < self.log.first_index - 1:
        _maybe_build_snapshot_now(self)
        return 0
    msg_id = p.c_begin_snapshot(self.snapshot.last_log_id.index)
    self.stalled_since[target] = self.now_us
    self.seq += 1
    self.out.append(SendSnapshot(target, InstallSnapshotRequest(self.vote, self.snapshot, None, msg_id,
                                                                self.seq, self.now_us)))
    return 0


cdef int _send_heartbeats(Engine self) except -1:
    cdef Progress p
    cdef LogId prev
    for target, p in self.tracker.progress.items():
        prev = self._log_id_at(p.matched) if p.matched >= self.log.first_index - 1 else None
        self.seq += 1
        self.out.append(SendHeartbeat(target, AppendRequest(self.vote, prev, None, self.committed, 0,
                                                            self.seq, self.now_us)))
    self.heartbeat_deadline = self.now_us + self.hb_interval_us
    return 0


cdef recv_append_response(Engine self, from_id, AppendResponse resp):
    cdef Progress p
    cdef int64_t accepted
    cdef bint moved
    if vote_cmp(resp.vote, self.vote) == ORD_GREATER:
        _update_vote(self, resp.vote)
        return self._take()
    if self.state != ST_LEADER or resp.result == APPEND_HIGHER_VOTE or vote_cmp(resp.vote, self.vote) != ORD_EQUAL:
        return self._take()
    p = self.tracker.c_get(from_id)
    if p is None:
        return self._take()
    self.tracker.c_ack(p.slot, resp.seq, resp.sent_at)
    if resp.sent_at > p.acked_at:
        p.acked_at = resp.sent_at
    if resp.msg_id != 0:
        if resp.result == APPEND_OK:
            moved = p.c_on_ack(resp.msg_id, _idx(resp.matched))
            if moved:
                accepted = self.tracker.c_update(p.slot, p.matched)
                _try_commit(self, accepted)
        else:
            moved = p.c_on_reject(resp.msg_id, resp.conflict, resp.hint_last)
        if moved:
            self.stalled_since[from_id] = self.now_us
    if self.leaving and from_id in self.leaving and self.state == ST_LEADER \
            and p.matched >= <int64_t>(<tuple>self.leaving[from_id])[1]:
        _stop_leaving(self, from_id)        # it holds the entry that removes it: it knows
    else:
        _replicate(self, from_id, p)
    _check_reads(self)
    _maybe_timeout_now(self)
    return self._take()


cdef int _try_commit(Engine self, int64_t accepted) except -1:
    assert accepted <= self.log.last_index, f"a quorum accepted {accepted} past our last entry"
    # Only an entry of this leadership commits by counting replicas (Raft §5.4.2).
    if accepted > self._committed_index() and accepted >= self.leader_first_log_id.index:
        _set_committed(self, accepted)
    return 0
