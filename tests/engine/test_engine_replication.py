"""Engine tests: log replication, leader side (probe, bisect, stream, pipeline) and follower
side (consistency check, skip, truncate, ack after flush, commit)."""
from engine_helpers import (CONFLICT, HIGHER_VOTE, LID, OK, V, Apply, AppendLog, AppendRequest, AppendResponse,
                            Membership, Node, Respond, S, SaveCommitted, SaveVote, Send, TruncateLog, VoteRequest,
                            conflict_response, elect_leader, make_follower, make_leader, make_log, ok_response)
from openraft_fast._core.engine import FOLLOWER
from openraft_fast._core.progress import STATE_PROBE, STATE_REPLICATE


def lagging_leader(mode, **kw):
    """Node 1 elected leader of T2; its log: the initialize entry (committed), T1-N2 entries
    2..5 (not known to be committed), then its own blank T2-N1.6.
    Returns (engine, commands of the election)."""
    log = make_log(mode, Membership({1, 2, 3}), [(1, 2, None), (1, 2, "a"), (1, 2, "b"), (1, 2, "c")])
    return elect_leader(mode, vote=V(mode, 1, 2, True), log=log, **kw)


# ---------------------------------------------------------------------------- leader: probing
def test_new_leader_first_probe_is_at_its_last_log_id_and_carries_its_blank_entry(mode):
    e, out = lagging_leader(mode)
    lv = V(mode, 2, 1, True)
    blank = S(mode, 6, (2, 1, None))
    assert out == [
        SaveVote(lv),
        AppendLog(blank),
        Send(2, AppendRequest(lv, LID(mode, 1, 2, 5), blank, LID(mode, 0, None, 1), 1, 1, 0)),
        Send(3, AppendRequest(lv, LID(mode, 1, 2, 5), blank, LID(mode, 0, None, 1), 1, 2, 0)),
    ]
    # One probe at a time: nothing more goes out until it is answered.
    assert e.progress(2).state == STATE_PROBE and len(e.progress(2).inflight) == 1


def test_first_probe_to_a_new_target_is_empty_at_the_leaders_last_log_id(mode):
    e = make_leader(mode)
    out = e.add_learner(4, Node("n4"))
    lv = V(mode, 1, 1, True)
    m = Membership({1, 2, 3}, nodes={1: Node(), 2: Node(), 3: Node(), 4: Node("n4")})
    entry = S(mode, 3, (1, 1, m))
    assert out == [
        AppendLog(entry),
        Send(2, AppendRequest(lv, LID(mode, 1, 1, 2), entry, LID(mode, 1, 1, 2), 2, 3, 0)),
        Send(3, AppendRequest(lv, LID(mode, 1, 1, 2), entry, LID(mode, 1, 1, 2), 2, 4, 0)),
        Send(4, AppendRequest(lv, LID(mode, 1, 1, 3), None, LID(mode, 1, 1, 2), 1, 5, 0)),
    ]


def test_leader_uses_the_conflict_hint_then_streams(mode):
    e, out = lagging_leader(mode)
    probe = out[2].msg
    # Follower 2 holds only up to index 3: it rejects prev 5 and tells its last index.
    out = e.recv_append_response(2, conflict_response(probe, hint_last=3))
    lv = V(mode, 2, 1, True)
    rest = S(mode, 4, (1, 2, "b"), (1, 2, "c"), (2, 1, None))
    assert out == [Send(2, AppendRequest(lv, LID(mode, 1, 2, 3), rest, LID(mode, 0, None, 1), 2, 3, 0))]
    assert e.progress(2).state == STATE_PROBE
    # The match is found: the target streams from there.
    assert e.recv_append_response(2, ok_response(out[0].msg)) == []
    p = e.progress(2)
    assert p.state == STATE_REPLICATE and p.matched == 6 and p.next_index == 7


def test_leader_bisects_the_log_without_a_hint(mode):
    e, out = lagging_leader(mode)
    lv = V(mode, 2, 1, True)
    commit = LID(mode, 0, None, 1)
    # Follower 2's entry at 5 is from another leader (no hint): search [0, 4], try the middle, 2.
    out = e.recv_append_response(2, conflict_response(out[2].msg))
    assert out == [Send(2, AppendRequest(lv, LID(mode, 1, 2, 2),
                                         S(mode, 3, (1, 2, "a"), (1, 2, "b"), (1, 2, "c"), (2, 1, None)),
                                         commit, 2, 3, 0))]
    # Its entry at 2 differs too: search [0, 1], try 1.
    out = e.recv_append_response(2, conflict_response(out[0].msg))
    whole = S(mode, 2, (1, 2, None), (1, 2, "a"), (1, 2, "b"), (1, 2, "c"), (2, 1, None))
    assert out == [Send(2, AppendRequest(lv, LID(mode, 0, None, 1), whole, commit, 3, 4, 0))]
    assert e.recv_append_response(2, ok_response(out[0].msg)) == []
    assert e.progress(2).matched == 6 and e.progress(2).state == STATE_REPLICATE


def test_leader_pipelines_up_to_max_inflight_messages_of_max_payload_entries(mode):
    e = make_leader(mode, max_payload_entries=2, max_inflight=3)
    lv = V(mode, 1, 1, True)
    commit = LID(mode, 1, 1, 2)
    payloads = list("abcdefgh")                       # indexes 3..10
    out = e.client_write(payloads)

    def part(i):
        return S(mode, i, (1, 1, payloads[i - 3]), (1, 1, payloads[i - 2]))

    assert out == [AppendLog(S(mode, 3, *[(1, 1, p) for p in payloads]))] + [
        Send(t, AppendRequest(lv, LID(mode, 1, 1, i - 1), part(i), commit, msg, seq, 0))
        for t, base in ((2, 3), (3, 6)) for msg, (i, seq) in enumerate(zip((3, 5, 7), range(base, base + 3)), 2)]
    assert len(e.progress(2).inflight) == 3
    # An ack frees one slot: the next message goes out at once.
    out2 = e.recv_append_response(2, ok_response(out[1].msg))
    assert out2 == [Send(2, AppendRequest(lv, LID(mode, 1, 1, 8), part(9), commit, 5, 9, 0))]


def test_duplicated_append_response_is_ignored(mode):
    e = make_leader(mode, max_payload_entries=2, max_inflight=3)
    out = e.client_write(list("abcdefgh"))
    first = out[1].msg
    e.recv_append_response(2, ok_response(first))
    p = e.progress(2)
    before = (p.state, p.matched, p.next_index, p.inflight.items(), e.committed)
    assert e.recv_append_response(2, ok_response(first)) == []
    assert (p.state, p.matched, p.next_index, p.inflight.items(), e.committed) == before


def test_stale_append_response_of_a_reset_window_is_ignored(mode):
    e = make_leader(mode, max_payload_entries=2, max_inflight=3)
    out = e.client_write(list("abcdefgh"))
    sent = [c.msg for c in out if isinstance(c, Send) and c.target == 2]
    # The first message is rejected: the window is reset and a probe goes out.
    e.recv_append_response(2, conflict_response(sent[0], hint_last=2))
    p = e.progress(2)
    before = (p.state, p.matched, p.next_index, p.searching_end, p.inflight.items())
    # Late answers to the messages sent before the reset change nothing.
    assert e.recv_append_response(2, ok_response(sent[2])) == []
    assert e.recv_append_response(2, conflict_response(sent[1])) == []
    assert (p.state, p.matched, p.next_index, p.searching_end, p.inflight.items()) == before


def test_append_response_of_a_previous_leadership_is_ignored(mode):
    e = make_leader(mode, vote=V(mode, 1, 2, True))     # leads T2
    e.client_write(["x"])
    old = AppendResponse(V(mode, 1, 2, True), OK, LID(mode, 0, None, 1), 0, -1, 2, 3, 0)
    assert e.recv_append_response(2, old) == []
    assert e.progress(2).matched == 2


def test_leader_steps_down_on_a_higher_vote_append_response(mode):
    e = make_leader(mode)
    out = e.client_write(["x"])
    higher = V(mode, 2, 3, True)
    resp = AppendResponse(higher, HIGHER_VOTE, None, 0, -1, out[1].msg.msg_id, out[1].msg.seq, 0)
    assert e.recv_append_response(2, resp) == [SaveVote(higher)]
    assert e.state == FOLLOWER and e.vote == higher and e.tracker is None
    # A higher vote in an OK / CONFLICT answer (a follower that moved on) works the same way.
    e2 = make_leader(mode)
    out = e2.client_write(["x"])
    resp = AppendResponse(V(mode, 3, 2), CONFLICT, None, 2, -1, out[1].msg.msg_id, out[1].msg.seq, 0)
    assert e2.recv_append_response(2, resp) == [SaveVote(V(mode, 3, 2))]
    assert e2.state == FOLLOWER


# ---------------------------------------------------------------------------- follower
def follower_with_log(mode, n=3, **kw):
    """Node 2, follower of T1-N1, holding [init, T1-N1 blank, "a".."] up to index 1 + n,
    everything flushed, committed only up to the initialize entry."""
    entries = [(1, 1, None)] + [(1, 1, chr(ord("a") + i)) for i in range(n - 1)]
    return make_follower(mode, entries=entries, commit=False, **kw)


def test_follower_rejects_append_past_its_last_entry_with_a_hint(mode):
    e = follower_with_log(mode)                     # last T1-N1.4
    lv = V(mode, 1, 1, True)
    req = AppendRequest(lv, LID(mode, 1, 1, 7), S(mode, 8, (1, 1, "z")), LID(mode, 1, 1, 8), 5, 9, 0)
    assert e.recv_append(1, req) == [Respond(1, AppendResponse(lv, CONFLICT, None, 7, 4, 5, 9, 0))]
    assert e.last_log_id == LID(mode, 1, 1, 4) and e.committed == LID(mode, 0, None, 1)


def test_follower_rejects_append_whose_prev_entry_differs(mode):
    e = follower_with_log(mode)
    lv = V(mode, 2, 3, True)
    req = AppendRequest(lv, LID(mode, 2, 3, 3), S(mode, 4, (2, 3, "z")), None, 1, 1, 0)
    assert e.recv_append(3, req) == [SaveVote(lv), Respond(3, AppendResponse(lv, CONFLICT, None, 3, -1, 1, 1, 0))]
    assert e.last_log_id == LID(mode, 1, 1, 4)


def test_follower_skips_entries_it_already_holds(mode):
    e = follower_with_log(mode)                     # 2: blank, 3: a, 4: b
    lv = V(mode, 1, 1, True)
    req = AppendRequest(lv, LID(mode, 0, None, 1), S(mode, 2, (1, 1, None), (1, 1, "a"), (1, 1, "b"), (1, 1, "c")),
                        None, 3, 7, 0)
    assert e.recv_append(1, req) == [AppendLog(S(mode, 5, (1, 1, "c")))]
    # A request wholly held is acked at once and truncates nothing after it.
    req2 = AppendRequest(lv, LID(mode, 0, None, 1), S(mode, 2, (1, 1, None), (1, 1, "a")), None, 4, 8, 0)
    assert e.recv_append(1, req2) == [Respond(1, AppendResponse(lv, OK, LID(mode, 1, 1, 3), 0, -1, 4, 8, 0))]
    assert e.last_log_id == LID(mode, 1, 1, 5)


def test_follower_truncates_only_from_the_first_conflicting_entry(mode):
    e = follower_with_log(mode, n=5)                # T1-N1 up to index 6
    lv = V(mode, 2, 3, True)
    # New leader T2-N3: same entries 2..3, its own from 4 on.
    req = AppendRequest(lv, LID(mode, 0, None, 1),
                        S(mode, 2, (1, 1, None), (1, 1, "a"), (2, 3, "x"), (2, 3, "y")), None, 1, 1, 0)
    out = e.recv_append(3, req)
    assert out == [SaveVote(lv), TruncateLog(3), AppendLog(S(mode, 4, (2, 3, "x"), (2, 3, "y")))]
    assert e.last_log_id == LID(mode, 2, 3, 5)
    assert e.log.log_id_at(3) == LID(mode, 1, 1, 3)


def test_follower_acks_only_after_the_log_is_flushed(mode):
    e = follower_with_log(mode)
    lv = V(mode, 1, 1, True)
    req = AppendRequest(lv, LID(mode, 1, 1, 4), S(mode, 5, (1, 1, "c"), (1, 1, "d")), None, 3, 5, 77)
    assert e.recv_append(1, req) == [AppendLog(S(mode, 5, (1, 1, "c"), (1, 1, "d")))]
    # Durable up to 5 is not enough for a request ending at 6.
    assert e.on_log_flushed(LID(mode, 1, 1, 5)) == []
    assert e.on_log_flushed(LID(mode, 1, 1, 6)) == [
        Respond(1, AppendResponse(lv, OK, LID(mode, 1, 1, 6), 0, -1, 3, 5, 77))]
    assert e.flushed == LID(mode, 1, 1, 6)


def test_follower_commit_is_min_of_leader_commit_and_last_index_of_the_request(mode):
    e = follower_with_log(mode)                     # holds up to T1-N1.4, committed 1
    lv = V(mode, 1, 1, True)
    # The leader committed 4, but this message only vouches for our log up to 2.
    req = AppendRequest(lv, LID(mode, 1, 1, 2), None, LID(mode, 1, 1, 4), 0, 9, 0)
    assert e.recv_append(1, req) == [
        SaveCommitted(LID(mode, 1, 1, 2)),
        Apply(S(mode, 2, (1, 1, None))),
        Respond(1, AppendResponse(lv, OK, LID(mode, 1, 1, 2), 0, -1, 0, 9, 0)),
    ]
    assert e.committed == LID(mode, 1, 1, 2)
    req = AppendRequest(lv, LID(mode, 1, 1, 2), S(mode, 3, (1, 1, "a")), LID(mode, 1, 1, 4), 4, 10, 0)
    assert e.recv_append(1, req) == [
        SaveCommitted(LID(mode, 1, 1, 3)),
        Apply(S(mode, 3, (1, 1, "a"))),
        Respond(1, AppendResponse(lv, OK, LID(mode, 1, 1, 3), 0, -1, 4, 10, 0)),
    ]


def test_follower_refuses_append_from_a_smaller_vote(mode):
    e = follower_with_log(mode)
    e.recv_vote(3, VoteRequest(V(mode, 2, 3), e.last_log_id, False, True))   # votes for 3 (T2)
    old = V(mode, 1, 1, True)
    req = AppendRequest(old, LID(mode, 1, 1, 4), S(mode, 5, (1, 1, "z")), LID(mode, 1, 1, 5), 8, 8, 0)
    assert e.recv_append(1, req) == [Respond(1, AppendResponse(V(mode, 2, 3), HIGHER_VOTE, None, 0, -1, 8, 8, 0))]
    assert e.last_log_id == LID(mode, 1, 1, 4) and e.state == FOLLOWER


def test_append_with_an_uncommitted_vote_is_refused(mode):
    e = follower_with_log(mode)
    v = V(mode, 5, 3)
    req = AppendRequest(v, LID(mode, 1, 1, 4), None, None, 0, 1, 0)
    assert e.recv_append(3, req) == [
        Respond(3, AppendResponse(V(mode, 1, 1, True), HIGHER_VOTE, None, 0, -1, 0, 1, 0))]
    assert e.vote == V(mode, 1, 1, True)


def test_follower_commit_never_goes_backwards(mode):
    e = follower_with_log(mode)
    lv = V(mode, 1, 1, True)
    e.recv_append(1, AppendRequest(lv, LID(mode, 1, 1, 4), None, LID(mode, 1, 1, 4), 0, 5, 0))
    assert e.committed == LID(mode, 1, 1, 4)
    # A late message carrying an older commit index changes nothing but is acked.
    assert e.recv_append(1, AppendRequest(lv, LID(mode, 1, 1, 2), None, LID(mode, 1, 1, 2), 0, 3, 0)) == [
        Respond(1, AppendResponse(lv, OK, LID(mode, 1, 1, 2), 0, -1, 0, 3, 0))]
    assert e.committed == LID(mode, 1, 1, 4)
