# Snapshots and purging (openraft: snapshot_handler, log_handler's purge).
# Decides: when a snapshot is built (policy or on demand, one at a time); how far the log is
# purged (never past the snapshot, what is applied, or what a live replication stream still
# reads; in batches); how a follower installs a leader's snapshot (install before dropping its
# log, ack once installed); and how a snapshot response or failed send moves a target.


cdef int _maybe_build_snapshot(Engine self) except -1:
    cdef int64_t since
    if self.snapshot_every <= 0 or self.snapshot_building or self.applied is None:
        return 0
    since = self.applied.index - (0 if self.snapshot is None else self.snapshot.last_log_id.index)
    if since >= self.snapshot_every:
        self.snapshot_building = True
        self.out.append(BuildSnapshot())
    return 0


cdef _maybe_build_snapshot_now(Engine self):
    if not self.snapshot_building:
        self.snapshot_building = True
        self.out.append(BuildSnapshot())


cdef trigger_snapshot(Engine self):
    if not self.snapshot_building and self.applied is not None and \
            (self.snapshot is None or self.snapshot.last_log_id.index < self.applied.index):
        _maybe_build_snapshot_now(self)
    return self._take()


cdef on_snapshot_built(Engine self, SnapshotMeta meta):
    self.snapshot_building = False
    if meta.last_log_id is not None and (self.snapshot is None or
                                         meta.last_log_id.index > self.snapshot.last_log_id.index):
        self.snapshot = meta
        _purge(self, meta.last_log_id.index - self.keep_logs)
    if self.state == ST_LEADER:
        _replicate_all(self)
    return self._take()


cdef purge_log(Engine self, int64_t upto):
    _purge(self, upto)
    return self._take()


cdef int _purge(Engine self, int64_t upto) except -1:
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


cdef recv_snapshot(Engine self, from_id, InstallSnapshotRequest req):
    cdef SnapshotMeta meta = req.meta
    cdef LogId last = meta.last_log_id
    cdef LeaderId ours
    if not _accept_leader(self, from_id, req.vote):
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
            _truncate_after(self, last.index - 1)
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
    _effective_changed(self)
    self.pending_snapshot_acks.append((meta, from_id, resp))
    return self._take()


cdef on_snapshot_installed(Engine self, SnapshotMeta meta):
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


cdef recv_snapshot_response(Engine self, from_id, SnapshotResponse resp):
    cdef Progress p
    if vote_cmp(resp.vote, self.vote) == ORD_GREATER:
        _update_vote(self, resp.vote)
        return self._take()
    if self.state != ST_LEADER or vote_cmp(resp.vote, self.vote) != ORD_EQUAL:
        return self._take()
    p = self.tracker.c_get(from_id)
    if p is None:
        return self._take()
    self.tracker.c_ack(p.slot, resp.seq, resp.sent_at)
    if resp.sent_at > p.acked_at:
        p.acked_at = resp.sent_at
    if p.state == SNAPSHOT and p.c_on_snapshot(resp.msg_id, p.inflight.c_last_end(), resp.ok):
        self.stalled_since[from_id] = self.now_us
        _try_commit(self, self.tracker.c_update(p.slot, p.matched))
        _replicate(self, from_id, p)
    _check_reads(self)
    return self._take()


cdef on_snapshot_send_failed(Engine self, target, int64_t msg_id):
    cdef Progress p
    if self.state == ST_LEADER:
        p = self.tracker.c_get(target)
        if p is not None and p.state == SNAPSHOT:
            # Retried from the next heartbeat tick, not at once: the target may be down.
            p.c_on_snapshot(msg_id, 0, False)
    return self._take()
