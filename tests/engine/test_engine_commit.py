"""Engine tests: commit and apply."""
import random

from engine_helpers import (LID, OK, V, Apply, AppendLog, AppendRequest, AppendResponse, Membership, Respond, S,
                            SaveCommitted, config, elect_leader, make_follower, make_leader, make_log, ok_response)
from openraft_fast._core.engine import Engine, PersistedState


def test_commit_only_entries_of_current_leader(mode):
    # Node 1 leads T2; T1-N2 entries 2..5 are not known to be committed.
    log = make_log(mode, Membership({1, 2, 3}), [(1, 2, None), (1, 2, "a"), (1, 2, "b"), (1, 2, "c")])
    e, out = elect_leader(mode, vote=V(mode, 1, 2, True), log=log)
    assert e.committed == LID(mode, 0, None, 1)
    # Follower 2 holds everything; the leader has flushed up to 5 but not its blank entry 6:
    # entries 2..5 are on a quorum {1, 2}, yet they are a former leader's, so nothing commits.
    assert e.recv_append_response(2, ok_response(out[2].msg)) == []
    assert e.committed == LID(mode, 0, None, 1)
    # Once the leader's own entry is on a quorum, it and everything before it commit.
    assert e.on_log_flushed(LID(mode, 2, 1, 6)) == [
        SaveCommitted(LID(mode, 2, 1, 6)),
        Apply(S(mode, 2, (1, 2, None), (1, 2, "a"), (1, 2, "b"), (1, 2, "c"), (2, 1, None))),
    ]
    assert e.committed == LID(mode, 2, 1, 6)


def test_commit_needs_a_quorum(mode):
    e = make_leader(mode, voters=(1, 2, 3, 4, 5))
    out = e.client_write(["a"])
    assert e.on_log_flushed(LID(mode, 1, 1, 3)) == []
    assert e.recv_append_response(2, ok_response(out[1].msg)) == []
    assert e.committed == LID(mode, 1, 1, 2)
    assert e.recv_append_response(3, ok_response(out[2].msg)) == [
        SaveCommitted(LID(mode, 1, 1, 3)), Apply(S(mode, 3, (1, 1, "a")))]


def test_apply_is_emitted_in_order_after_save_committed(mode):
    e = make_leader(mode)
    out1 = e.client_write(["a", "b"])
    out2 = e.client_write(["c"])
    e.on_log_flushed(LID(mode, 1, 1, 5))
    # The ack of the first message commits 3..4 only; the second then commits 5.
    assert e.recv_append_response(2, ok_response(out1[1].msg)) == [
        SaveCommitted(LID(mode, 1, 1, 4)), Apply(S(mode, 3, (1, 1, "a"), (1, 1, "b")))]
    assert e.recv_append_response(2, ok_response(out2[1].msg)) == [
        SaveCommitted(LID(mode, 1, 1, 5)), Apply(S(mode, 5, (1, 1, "c")))]
    # Acks that commit nothing new apply nothing again.
    assert e.recv_append_response(3, ok_response(out2[2].msg)) == []


def test_leader_commits_and_applies_only_what_it_has_flushed(mode):
    e = make_leader(mode)
    out = e.client_write(["a", "b"])
    # Both followers hold 3..4: committed in the cluster, but the leader's own copy is not
    # durable yet, so its committed id (which it saves) stays within its durable log.
    assert e.recv_append_response(2, ok_response(out[1].msg)) == []
    assert e.recv_append_response(3, ok_response(out[2].msg)) == []
    assert e.committed == LID(mode, 1, 1, 2)
    assert e.on_log_flushed(LID(mode, 1, 1, 3)) == [SaveCommitted(LID(mode, 1, 1, 3)), Apply(S(mode, 3, (1, 1, "a")))]
    assert e.on_log_flushed(LID(mode, 1, 1, 4)) == [SaveCommitted(LID(mode, 1, 1, 4)), Apply(S(mode, 4, (1, 1, "b")))]


def test_follower_commits_and_applies_only_once_flushed(mode):
    e = make_follower(mode, commit=True)            # holds and applied T1-N1.2
    lv = V(mode, 1, 1, True)
    req = AppendRequest(lv, LID(mode, 1, 1, 2), S(mode, 3, (1, 1, "a"), (1, 1, "b")), LID(mode, 1, 1, 4), 2, 3, 0)
    assert e.recv_append(1, req) == [AppendLog(S(mode, 3, (1, 1, "a"), (1, 1, "b")))]
    assert e.committed == LID(mode, 1, 1, 2)
    # The ack goes first (the leader waits on it), then commit and apply.
    assert e.on_log_flushed(LID(mode, 1, 1, 4)) == [
        Respond(1, AppendResponse(lv, OK, LID(mode, 1, 1, 4), 0, -1, 2, 3, 0)),
        SaveCommitted(LID(mode, 1, 1, 4)),
        Apply(S(mode, 3, (1, 1, "a"), (1, 1, "b"))),
    ]


def test_startup_applies_what_is_committed_but_not_applied(mode):
    log = make_log(mode, Membership({1, 2, 3}), [(1, 2, None), (1, 2, "a"), (1, 2, "b")])
    state = PersistedState(vote=V(mode, 1, 2, True), log=log, committed=LID(mode, 1, 2, 3),
                           applied=LID(mode, 1, 2, 2))
    e = Engine(1, config(mode), state, random.Random(0))
    assert e.startup() == [Apply(S(mode, 3, (1, 2, "a")))]


def test_saved_committed_never_lies_past_the_durable_log(mode):
    # AppendLog may become durable after later commands run (commands.pxd), and SaveCommitted
    # is durable at once: saving a committed id before the flush could leave a crashed node
    # with a committed id past its log. The engine saves it only once the entries are flushed.
    e = make_follower(mode, commit=True)            # durable: [1, 2], committed 2
    lv = V(mode, 1, 1, True)
    req = AppendRequest(lv, LID(mode, 1, 1, 2), S(mode, 3, (1, 1, "a"), (1, 1, "b")), LID(mode, 1, 1, 4), 2, 3, 0)
    assert e.recv_append(1, req) == [AppendLog(S(mode, 3, (1, 1, "a"), (1, 1, "b")))]


def test_restart_with_a_committed_id_past_the_durable_log(mode):
    # A user's store that saved committed eagerly: the node still starts, and its committed
    # id stays within what it holds (the rest comes back from the leader).
    durable = make_log(mode, Membership({1, 2, 3}), [(1, 1, None)])
    state = PersistedState(vote=V(mode, 1, 1, True), log=durable, committed=LID(mode, 1, 1, 4),
                           applied=LID(mode, 1, 1, 2))
    r = Engine(2, config(mode), state, random.Random(0))
    assert r.startup() == []
    assert r.last_log_id == LID(mode, 1, 1, 2)
    assert r.committed == LID(mode, 1, 1, 2)


def test_client_write_of_no_payloads_emits_nothing(mode):
    # An AppendLog must have a last log id to report flushed (on_log_flushed takes one).
    e = make_leader(mode)
    assert e.client_write([]) == []
    assert e.last_log_id == LID(mode, 1, 1, 2)
