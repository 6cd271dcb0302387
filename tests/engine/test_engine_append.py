"""Engine tests of engine_append.pxi: log replication, follower side (consistency check, skip,
truncate, ack after flush, commit)."""
from engine_helpers import (CONFLICT, HIGHER_VOTE, LID, OK, S, V, AppendLog, AppendRequest, AppendResponse, Apply,
                            Respond, SaveCommitted, SaveVote, TruncateLog, VoteRequest, make_follower)
from openraft_fast._core.engine import FOLLOWER


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
