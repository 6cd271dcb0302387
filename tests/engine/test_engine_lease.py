"""Engine tests: where a leader's lease and read confirmation come from.

Rules: a vote grant is no lease ack (a voter promises nothing when it grants, and a grant can
arrive after the voter helped elect a higher term); only acks of messages this leadership
sent count, an ack of a message of an earlier leadership confirms nothing (seq numbers
restart per leadership); and the lease runs from the send time of the acked message."""
import pytest

from engine_helpers import (LID, V, AppendRequest, Reply, SendHeartbeat, VoteResponse, ack, make_candidate, make_leader,
                            S, ok_response, sends_to)
from openraft_fast._core.engine import LEADER, LEASE_READ, READ_INDEX
from openraft_fast.errors import LeaseExpired


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
