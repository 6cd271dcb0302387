# Vote and election (openraft: vote_handler, the election part of engine_impl).
# Decides: which vote a node accepts and saves (a greater one makes a leader, candidate or
# pre-voter a follower); when a node grants a vote or a pre-vote (log at least as up to date,
# no live leader's lease and no vote just granted to another candidate in the way, unless the
# request is a leader transfer); how a node stands (pre-vote first when enabled, terms above
# every term seen) and when it has won or lost; and
# what becoming leader or follower resets (progress tracker, blank entry, reads, transfer).
# Also: that a request from a node in none of the memberships held is answered "not a member"
# (changing nothing here, not even the terms seen), and when a node believes such an answer.


cdef bint _update_vote(Engine self, Vote v) except -1:
    """Accept `v` if it is >= our vote: a greater vote is saved and, unless it is our own
    committed vote, makes us a follower. False when `v` is rejected."""
    cdef int c = vote_cmp(v, self.vote)
    if c == ORD_EQUAL:
        return True
    if c != ORD_GREATER:
        return False
    self.vote = v
    self.out.append(SaveVote(v))
    if v.committed:
        self.leader_lost = False
    if self.state == ST_LEADER or self.state == ST_CANDIDATE or self.pre_voting:
        _become_follower(self)
    return True


cdef int _become_follower(Engine self) except -1:
    if self.state == ST_LEADER:
        _fail_reads(self)
        self.tracker = None
        self.transfer_to = None
        self.stalled_since = {}
        self.leaving = {}
    self.pre_voting = False
    self.granted = set()
    self.rejected = set()
    self.state = _role(self)
    self._reset_election_timer()
    return 0


cdef elect(Engine self):
    if self._may_campaign() and self.state != ST_LEADER and not _in_follower_lease(self):
        if self.pre_vote_enabled:
            _start_pre_vote(self)
        else:
            _start_election(self, False)
    return self._take()


cdef int _start_election(Engine self, bint transfer) except -1:
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
    _check_election(self)
    return 0


cdef int _start_pre_vote(Engine self) except -1:
    self.pre_voting = True
    self.leader_lost = True         # no word from it for an election timeout: stop naming it
    self.pre_vote = Vote(make_leader_id(self._next_term(), self.node_id, self.std), False)
    self.granted = {self.node_id}
    self.rejected = set()
    self._reset_election_timer()
    cdef VoteRequest req = VoteRequest(self.pre_vote, self._last_log_id(), True, False)
    for target in sorted(self.membership.voter_ids):
        if target != self.node_id:
            self.out.append(Send(target, req))
    _check_election(self)
    return 0


cdef int _check_election(Engine self) except -1:
    r = self.quorum.vote_result(self.granted, self.rejected)
    if r == VOTE_WON:
        if self.pre_voting:
            _start_election(self, False)
        else:
            _become_leader(self)
    elif r == VOTE_LOST:
        # Keep the vote; try again when the election timer fires.
        self.pre_voting = False
        if self.state == ST_CANDIDATE:
            self.state = ST_FOLLOWER
    return 0


cdef bint _lease_blocks(Engine self, object from_id):
    """A node that knows a live leader refuses to help elect another (leader lease)."""
    if self.state == ST_LEADER:
        return _quorum_alive(self)
    if from_id != self.vote_granted_to and self.now_us < self.vote_granted_us + self.follower_lease_us:
        # We just voted for another candidate (openraft's leased vote): let it win rather than
        # elect a second leader over it. Without this, nodes that campaign at once (every node
        # initialized together) elect one leader after another in the same term, and the later
        # one truncates what the first had accepted.
        return True
    if from_id == self.leader_contact_node:
        return False        # our own leader re-electing itself (after a restart)
    # Whatever our vote is now (we may be a candidate ourselves), we promised the leader
    # we last heard from not to help elect another within the lease.
    return _in_follower_lease(self)


cdef recv_vote(Engine self, from_id, VoteRequest req):
    cdef bint granted = False
    if self.membership is not None and not _knows_member(self, from_id) \
            and _log_id_ge(self._last_log_id(), req.last_log_id):
        # A removed node (or a stranger): its term must not count here, and it should learn
        # that it is out so it stops asking. Only when our log holds at least the requester's:
        # a requester with a longer log may hold a newer membership that has us both (we are a
        # lagging voter), and it would not believe the answer anyway; refusing it could leave
        # a joint config without a quorum of voters that know the candidate (no leader ever).
        self.out.append(Respond(from_id, VoteResponse(self.vote, False, self._last_log_id(), req.pre_vote, True)))
        return self._take()
    if not req.pre_vote:
        # A pre-vote's term is a proposal, never held by anyone: noting it would let failed
        # pre-vote rounds push every node's next term up, one round after another.
        self._see_term(req.vote.leader_id.term)
    cdef bint log_ok = _log_id_ge(req.last_log_id, self._last_log_id())
    if req.pre_vote:
        granted = log_ok and not _lease_blocks(self, from_id) and _vote_ge(req.vote, self.vote)
        self.out.append(Respond(from_id, VoteResponse(self.vote, granted, self._last_log_id(), True)))
        return self._take()
    if log_ok and (req.transfer or not _lease_blocks(self, from_id)):
        granted = _update_vote(self, req.vote)
        if granted:
            self.vote_granted_us = self.now_us
            self.vote_granted_to = from_id
            self._reset_election_timer()
    self.out.append(Respond(from_id, VoteResponse(self.vote, granted, self._last_log_id(), False)))
    return self._take()


cdef recv_vote_response(Engine self, from_id, VoteResponse resp):
    if resp.not_member:
        # Believed only from a voter whose log holds at least ours: it has seen every
        # membership we have, so the one without us is newer. A lagging voter that does not
        # know of us yet must not silence a new member.
        if self.state != ST_LEADER and _log_id_ge(resp.last_log_id, self._last_log_id()):
            self.told_not_member = True
            _become_follower(self)
        return self._take()
    self._see_term(resp.vote.leader_id.term)
    if resp.pre_vote:
        if self.pre_voting and self.state != ST_LEADER:
            if resp.granted:
                self.granted.add(from_id)
            else:
                self.rejected.add(from_id)
            _check_election(self)
        if resp.vote.committed and vote_cmp(resp.vote, self.vote) == ORD_GREATER:
            _update_vote(self, resp.vote)
        return self._take()
    if self.state == ST_CANDIDATE and resp.granted and vote_cmp(resp.vote, self.vote) == ORD_EQUAL:
        self.granted.add(from_id)
        _check_election(self)
    elif vote_cmp(resp.vote, self.vote) == ORD_GREATER:
        _update_vote(self, resp.vote)
    elif self.state == ST_CANDIDATE and not resp.granted:
        self.rejected.add(from_id)
        _check_election(self)
    return self._take()


cdef int _become_leader(Engine self) except -1:
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
    self.leaving = {}
    self.tracker = ProgressTracker(self.quorum, self.node_id, self.membership.node_ids(), self.log.last_index,
                                   self.max_inflight, self.max_inflight_bytes, None, _idx(self.flushed))
    # A vote grant promises nothing about leases (and may arrive late, after the voter
    # helped elect a higher term): no lease and no read confirmation until a quorum acks
    # a message this leadership sent. Only check-quorum gets a grace period from the win.
    self.elected_us = self.now_us
    self.granted = set()
    self.rejected = set()
    self.heartbeat_deadline = self.now_us + self.hb_interval_us
    # A blank entry of our own lets everything before it commit at once. Named before it is
    # appended: with sync_log, appending it may already commit it.
    self.leader_first_log_id = make_log_id(self.leader_committed_id, self.log.last_index + 1)
    _leader_append(self, [None], ENTRY_BLANK)
    _replicate_all(self)
    return 0
