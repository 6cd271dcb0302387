"""Engine tests of engine_read.pxi: linearizable reads (read index, lease read), where a leader's
lease and read confirmation come from, and check-quorum step-down.

Lease: a vote grant is no lease ack (a voter promises nothing when it grants, and a grant can
arrive after the voter helped elect a higher term); only acks of messages this leadership
sent count, an ack of a message of an earlier leadership confirms nothing (seq numbers
restart per leadership); and the lease runs from the send time of the acked message.

Check-quorum: a leader that has not had a message acked by a quorum for election_timeout_max
(counted from the send time of the newest quorum-acked message, or from its win) steps down to
follower: a newer leader may exist, and its clients must learn the outcome of their writes (the
runtime fails them with OutcomeUnknown after its bound) instead of waiting for the partition to
heal. Stepping down saves nothing and sends nothing."""
import pytest

from engine_helpers import (LID, S, V, AppendRequest, Membership, Node, Reply, SaveVote, SendHeartbeat, VoteResponse,
                            ack, elect_leader, make_candidate, make_follower, make_leader, make_log, ok_response,
                            sends_to, settle)
from openraft_fast._core.engine import CANDIDATE, FOLLOWER, LEADER, LEASE_READ, READ_INDEX
from openraft_fast.errors import ForwardToLeader, LeaseExpired


def heartbeat_ack(e, target, cmds):
    """The OK of the heartbeat `cmds` sent to `target`."""
    (hb,) = [c for c in cmds if isinstance(c, SendHeartbeat) and c.target == target]
    return e.recv_append_response(target, ok_response(hb.msg))


def test_read_index_is_the_leaders_first_log_id_until_it_commits(mode):
    # Leader of T2 whose blank entry (6) is not committed yet: committed (1) < blank.
    log = make_log(mode, Membership({1, 2, 3}), [(1, 2, None), (1, 2, "a"), (1, 2, "b"), (1, 2, "c")])
    e, _ = elect_leader(mode, vote=V(mode, 1, 2, True), log=log)
    lv = V(mode, 2, 1, True)
    out = e.ensure_linearizable("r1", READ_INDEX)
    commit = LID(mode, 0, None, 1)
    assert out == [SendHeartbeat(2, AppendRequest(lv, None, None, commit, 0, 3, 0)),
                   SendHeartbeat(3, AppendRequest(lv, None, None, commit, 0, 4, 0))]
    assert heartbeat_ack(e, 2, out) == [Reply("r1", LID(mode, 2, 1, 6), None)]


def test_read_index_is_the_committed_log_id_once_past_the_leaders_first(mode):
    e = make_leader(mode)
    out = e.client_write(["a"])
    e.on_log_flushed(LID(mode, 1, 1, 3))
    e.recv_append_response(2, ok_response(out[1].msg))
    assert e.committed == LID(mode, 1, 1, 3)
    out = e.ensure_linearizable("r", READ_INDEX)
    assert heartbeat_ack(e, 3, out) == [Reply("r", LID(mode, 1, 1, 3), None)]


def test_read_index_replies_only_after_a_quorum_acks_a_message_sent_after_the_read(mode):
    e = make_leader(mode)
    before = e.client_write(["a"])                     # sent before the read (seq 3, 4)
    out = e.ensure_linearizable("r", READ_INDEX)       # heartbeats: seq 5, 6
    # The ack of a message sent before the read does not confirm it.
    assert not [c for c in e.recv_append_response(2, ok_response(before[1].msg)) if isinstance(c, Reply)]
    assert not [c for c in e.recv_append_response(3, ok_response(before[2].msg)) if isinstance(c, Reply)]
    assert heartbeat_ack(e, 3, out) == [Reply("r", LID(mode, 1, 1, 2), None)]


def test_several_reads_share_one_round(mode):
    e = make_leader(mode)
    out = e.ensure_linearizable(["a", "b", "c"], READ_INDEX)
    assert [type(c) for c in out] == [SendHeartbeat, SendHeartbeat]
    read = LID(mode, 1, 1, 2)
    assert heartbeat_ack(e, 2, out) == [Reply("a", read, None), Reply("b", read, None), Reply("c", read, None)]


def test_a_later_round_confirms_earlier_reads_too(mode):
    e = make_leader(mode)
    first = e.ensure_linearizable("a", READ_INDEX)
    second = e.ensure_linearizable("b", READ_INDEX)
    read = LID(mode, 1, 1, 2)
    assert heartbeat_ack(e, 2, second) == [Reply("a", read, None), Reply("b", read, None)]
    assert heartbeat_ack(e, 3, first) == []


def test_read_index_on_a_single_node_replies_at_once(mode):
    e = make_leader(mode, voters=(1,))
    assert e.ensure_linearizable("r", READ_INDEX) == [Reply("r", LID(mode, 1, 1, 2), None)]


def test_lease_read_replies_at_once_while_the_lease_holds(mode):
    e = make_leader(mode, now=1.0)
    e.tick(1.1)                                        # lease: 1.0 + 0.135
    assert e.ensure_linearizable("r", LEASE_READ) == [Reply("r", LID(mode, 1, 1, 2), None)]


def test_lease_read_fails_with_an_expired_lease(mode):
    e = make_leader(mode, now=1.0)
    e.tick(1.2)
    (reply,) = e.ensure_linearizable("r", LEASE_READ)
    assert (reply.req_id, reply.value) == ("r", None) and isinstance(reply.error, LeaseExpired)


def test_leader_without_quorum_acks_holds_no_lease_even_near_clock_zero(mode):
    # A lease time of -1 means "no quorum has acked", not a time: -1 + lease > now must not
    # pass for a valid lease when the clock reads less than a lease.
    e = make_leader(mode, voters=(1, 2, 3), now=0.01)
    for learner in (4, 5):
        settle(e, e.add_learner(learner, Node()))
    # Joint [{1, 2, 3}, {1, 4, 5}]: the new half has a quorum only with 4 or 5, neither acked.
    e.change_membership({1, 4, 5})
    assert e.membership.is_joint and e.lease_valid_until is None
    (reply,) = e.ensure_linearizable("r", LEASE_READ)
    assert reply.value is None and isinstance(reply.error, LeaseExpired)


def test_read_on_a_non_leader_replies_forward_to_leader(mode):
    e = make_follower(mode)
    (reply,) = e.ensure_linearizable("r", READ_INDEX)
    assert (reply.req_id, reply.value) == ("r", None)
    assert isinstance(reply.error, ForwardToLeader) and reply.error.leader_id == 1
    (reply,) = e.ensure_linearizable("r", LEASE_READ)
    assert isinstance(reply.error, ForwardToLeader)


def test_pending_reads_fail_when_leadership_is_lost(mode):
    e = make_leader(mode)
    e.ensure_linearizable("r", READ_INDEX)
    out = e.recv_vote_response(2, VoteResponse(V(mode, 2, 3), False, LID(mode, 1, 1, 2)))
    assert out[0] == SaveVote(V(mode, 2, 3)) and len(out) == 2
    assert out[1].req_id == "r" and out[1].value is None and isinstance(out[1].error, ForwardToLeader)
    assert not e.is_leader()


# ---------------------------------------------------------------------------- lease: where it comes from
def win_on_late_grant(mode):
    """Node 1 stood for term 1 at t=10.0; node 2's grant reaches it only at t=10.05."""
    e = make_candidate(mode, now=10.0)
    e.tick(10.05)
    out = e.recv_vote_response(2, VoteResponse(e.vote, True, e.last_log_id))
    assert e.state == LEADER
    return e, out


def test_leader_elected_by_a_late_grant_holds_no_lease(mode):
    # The scenario: node 2 granted term 1 and then helped elect term 2; node 1 wins
    # term 1 on the late grant. Nothing it sent as leader was acked: it must not serve a lease
    # read, however recent the grant.
    e, _ = win_on_late_grant(mode)
    assert e.lease_valid_until is None
    e.tick(10.051)
    (reply,) = e.ensure_linearizable("r", LEASE_READ)
    assert (reply.req_id, reply.value) == ("r", None) and isinstance(reply.error, LeaseExpired)


def test_leader_elected_by_a_late_grant_confirms_no_read_index_without_acks(mode):
    e, _ = win_on_late_grant(mode)
    out = e.ensure_linearizable("r", READ_INDEX)
    assert [c for c in out if isinstance(c, Reply)] == []
    assert {c.target for c in out if isinstance(c, SendHeartbeat)} == {2, 3}


def test_new_leader_lease_starts_at_the_send_time_of_its_first_acked_append(mode):
    e, out = win_on_late_grant(mode)           # the blank entry went out at 10.05
    e.tick(10.09)
    ack(e, 2, out)                             # arrives 40 ms later
    assert e.lease_valid_until == pytest.approx(10.05 + 0.135)
    (reply,) = e.ensure_linearizable("r", LEASE_READ)
    assert reply == Reply("r", LID(mode, 1, 1, 2), None)


def test_new_leader_still_accepts_writes_before_its_first_ack(mode):
    # Check-quorum grants a fresh leader its election-time grace: writes are not reads.
    e, _ = win_on_late_grant(mode)
    e.tick(10.06)
    out = e.client_write(["a"])
    assert e.last_log_id == LID(mode, 1, 1, 3) and [type(c).__name__ for c in out] == ["AppendLog"]


def test_an_ack_of_an_earlier_leadership_confirms_no_read_index(mode):
    e = make_leader(mode, now=1.0)             # term 1; its seq numbers run past 20
    for i in range(10):
        hb = e.ensure_linearizable(f"old{i}", READ_INDEX)
    (old_hb,) = sends_to(hb, 2, SendHeartbeat)
    assert old_hb.msg.seq == 21
    # Leader 3 of term 2 takes over; node 1 follows it, then wins term 3 once its lease ran out.
    s = S(mode, 3, (2, 3, None))
    e.recv_append(3, AppendRequest(V(mode, 2, 3, committed=True), LID(mode, 1, 1, 2), s, LID(mode, 1, 1, 2), 1, 1,
                                   1_000_000))
    e.tick(2.0)
    e.elect()
    out = e.recv_vote_response(2, VoteResponse(e.vote, True, e.last_log_id))
    assert e.state == LEADER and e.vote.leader_id.term == 3
    out = e.ensure_linearizable("r", READ_INDEX)
    (new_hb,) = sends_to(out, 2, SendHeartbeat)
    assert new_hb.msg.seq < old_hb.msg.seq      # seq numbers restarted with this leadership
    # The late ack of term 1's heartbeat (seq 21, above what the read needs) confirms nothing.
    assert e.recv_append_response(2, ok_response(old_hb.msg)) == []
    assert e.lease_valid_until is None
    # The ack of this leadership's heartbeat does.
    assert e.recv_append_response(2, ok_response(new_hb.msg)) == [Reply("r", LID(mode, 3, 1, 4), None)]


def test_lease_runs_from_the_send_time_of_the_acked_message_not_its_arrival(mode):
    e = make_leader(mode, now=1.0)             # lease until 1.135
    e.tick(1.1)
    out = e.ensure_linearizable("r", READ_INDEX)   # heartbeats sent at 1.1
    (hb,) = sends_to(out, 2, SendHeartbeat)
    e.tick(1.2)                                # the ack arrives 100 ms later
    assert e.recv_append_response(2, ok_response(hb.msg)) == [Reply("r", LID(mode, 1, 1, 2), None)]
    assert e.lease_valid_until == pytest.approx(1.1 + 0.135)
    e.tick(1.24)                               # past 1.235, though not 1.2 + 0.135
    (reply,) = e.ensure_linearizable("r2", LEASE_READ)
    assert reply.value is None and isinstance(reply.error, LeaseExpired)


# ---------------------------------------------------------------------------- check-quorum
def ticking_leader(mode, **kw):
    return make_leader(mode, now=1.0, enable_tick=True, **kw)     # every target acked at 1.0


def test_leader_without_quorum_acks_for_an_election_timeout_steps_down(mode):
    e = ticking_leader(mode)
    vote = e.vote
    assert e.tick(1.299) != []                     # heartbeats, never acked
    assert e.state == LEADER
    assert e.tick(1.3) == []                       # 1.0 + election_timeout_max (0.3)
    assert e.state == FOLLOWER
    assert e.vote == vote and e.leader_id is None
    try:
        e.client_write(["x"])
    except ForwardToLeader as err:
        assert err.leader_id is None
    else:
        raise AssertionError("a stepped-down leader accepted a write")


def test_quorum_ack_of_a_later_message_keeps_the_leader(mode):
    e = ticking_leader(mode)
    out = e.tick(1.2)
    (hb,) = sends_to(out, 2, SendHeartbeat)
    e.recv_append_response(2, ok_response(hb.msg))   # one follower + the leader: a quorum of 3
    e.tick(1.499)
    assert e.state == LEADER                         # 1.2 (send time of the acked heartbeat) + 0.3
    e.tick(1.5)
    assert e.state == FOLLOWER


def test_an_ack_from_a_minority_does_not_keep_the_leader(mode):
    e = ticking_leader(mode, voters=(1, 2, 3, 4, 5))
    out = e.tick(1.2)
    (hb,) = sends_to(out, 2, SendHeartbeat)
    e.recv_append_response(2, ok_response(hb.msg))   # 2 of 5: no quorum
    e.tick(1.3)
    assert e.state == FOLLOWER


def test_step_down_fails_the_pending_read_index_reads(mode):
    e = ticking_leader(mode)
    e.tick(1.2)
    out = e.ensure_linearizable("r", READ_INDEX)
    assert [c for c in out if isinstance(c, Reply)] == []
    out = e.tick(1.3)
    (reply,) = [c for c in out if isinstance(c, Reply)]
    assert reply.req_id == "r" and reply.value is None and isinstance(reply.error, ForwardToLeader)
    assert e.state == FOLLOWER


def test_single_voter_leader_never_steps_down(mode):
    e = make_leader(mode, voters=(1,), now=1.0, enable_tick=True)
    for t in (1.3, 2.0, 10.0):
        e.tick(t)
        assert e.state == LEADER


def test_step_down_deadline_is_in_next_deadline_without_heartbeats(mode):
    e = ticking_leader(mode, enable_heartbeat=False)
    assert e.next_deadline == 1.3
    assert e.tick(1.3) == []
    assert e.state == FOLLOWER


def test_stepped_down_leader_stands_again_under_a_new_leader_id(mode):
    e = ticking_leader(mode)
    term = e.vote.leader_id.term
    e.tick(1.3)
    assert e.state == FOLLOWER
    out = e.tick(e.next_deadline)
    assert e.state == CANDIDATE and e.vote.leader_id.term > term and not e.vote.committed
    assert any(type(c).__name__ == "SaveVote" for c in out)
