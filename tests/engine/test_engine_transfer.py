"""Engine tests: leadership transfer (TimeoutNow)."""
import pytest

from engine_helpers import (ack, LID, V, AppendLog, Node, Respond, S, SaveVote, Send, SendHeartbeat,
                            VoteRequest, VoteResponse, make_follower, make_leader, ok_response, sends_to)
from openraft_fast._core.engine import CANDIDATE, FOLLOWER, LEADER, LEASE_READ
from openraft_fast._core.messages import TimeoutNow
from openraft_fast.errors import ForwardToLeader, LeaseExpired, RaftError


def test_transfer_to_an_up_to_date_target_sends_timeout_now_at_once(mode):
    e = make_leader(mode)
    assert e.transfer_leader(2) == [Send(2, TimeoutNow(V(mode, 1, 1, True), LID(mode, 1, 1, 2)))]
    assert e.is_leader()


def test_transfer_stops_writes_naming_the_target(mode):
    e = make_leader(mode)
    e.transfer_leader(2)
    with pytest.raises(ForwardToLeader) as ei:
        e.client_write(["x"])
    assert ei.value.leader_id == 2 and ei.value.leader_node == Node()
    assert e.last_log_id == LID(mode, 1, 1, 2)
    # A lease read is refused too: the target may take over any moment.
    (reply,) = e.ensure_linearizable("r", LEASE_READ)
    assert isinstance(reply.error, LeaseExpired)


def test_transfer_replicates_to_the_target_then_sends_timeout_now(mode):
    e = make_leader(mode, max_inflight=1, max_payload_entries=1)
    lv = V(mode, 1, 1, True)
    out = e.client_write(["a", "b"])                 # 2 has only "a" in flight
    assert e.transfer_leader(2) == []
    (to2,) = sends_to(out, 2)
    out = e.recv_append_response(2, ok_response(to2.msg))
    (nxt,) = out
    assert nxt.target == 2 and nxt.msg.entries.last_log_id == LID(mode, 1, 1, 4)
    # Target holds the leader's last entry: now it may take over.
    assert e.recv_append_response(2, ok_response(nxt.msg)) == [Send(2, TimeoutNow(lv, LID(mode, 1, 1, 4)))]
    # Sent once only: later acks from the target do not repeat it.
    hb = e.trigger_heartbeat()
    assert e.recv_append_response(2, ok_response(sends_to(hb, 2, SendHeartbeat)[0].msg)) == []


def test_transfer_to_a_non_voter_is_refused(mode):
    e = make_leader(mode)
    with pytest.raises(RaftError):
        e.transfer_leader(7)
    e.client_write(["still writable"])


def test_timeout_now_target_starts_a_transfer_election(mode):
    e = make_follower(mode)
    last = e.last_log_id
    out = e.recv_timeout_now(1, TimeoutNow(V(mode, 1, 1, True), last))
    req = VoteRequest(V(mode, 2, 2), last, False, True)
    assert out == [SaveVote(V(mode, 2, 2)), Send(1, req), Send(3, req)]
    assert e.state == CANDIDATE


def test_timeout_now_is_ignored_unless_from_the_current_leader_with_a_log_we_hold(mode):
    e = make_follower(mode)
    last = e.last_log_id
    assert e.recv_timeout_now(3, TimeoutNow(V(mode, 1, 3, True), last)) == []        # not our leader's vote
    assert e.recv_timeout_now(1, TimeoutNow(V(mode, 1, 1, True), LID(mode, 1, 1, 3))) == []   # we lack 3
    assert e.state == FOLLOWER and e.vote == V(mode, 1, 1, True)


def test_transfer_target_wins_inside_the_other_voters_lease(mode):
    target = make_follower(mode, node_id=2, now=1.0)
    other = make_follower(mode, node_id=3, now=1.0)
    target.tick(1.01)
    other.tick(1.01)
    out = target.recv_timeout_now(1, TimeoutNow(V(mode, 1, 1, True), target.last_log_id))
    (req,) = [c.msg for c in sends_to(out, 3)]
    resp = other.recv_vote(2, req)
    assert resp == [SaveVote(V(mode, 2, 2)), Respond(2, VoteResponse(V(mode, 2, 2), True, other.last_log_id, False))]
    out = target.recv_vote_response(3, resp[1].msg)
    assert target.state == LEADER and out[0] == SaveVote(V(mode, 2, 2, True))
    # The same request without the transfer flag is refused inside the lease.
    third = make_follower(mode, node_id=3, now=1.0)
    third.tick(1.01)
    plain = VoteRequest(req.vote, req.last_log_id, False, False)
    assert third.recv_vote(2, plain)[0].msg.granted is False


def test_old_leader_grants_the_transfer_vote_inside_its_own_lease(mode):
    e = make_leader(mode, now=1.0)
    e.transfer_leader(2)
    e.tick(1.01)
    last = e.last_log_id
    out = e.recv_vote(2, VoteRequest(V(mode, 2, 2), last, False, True))
    assert out == [SaveVote(V(mode, 2, 2)), Respond(2, VoteResponse(V(mode, 2, 2), True, last, False))]
    assert e.state == FOLLOWER


def test_transfer_times_out_and_writes_resume(mode):
    e = make_leader(mode, now=1.0, enable_tick=True, enable_heartbeat=False)
    e.transfer_leader(2)                             # deadline: 1.0 + election_timeout_max (0.3)
    e.tick(1.25)
    hb = e.trigger_heartbeat()                       # keeps the lease (sent at 1.25)
    e.recv_append_response(2, ok_response(hb[0].msg))
    assert e.tick(1.299) == []
    with pytest.raises(ForwardToLeader):
        e.client_write(["x"])
    assert e.tick(1.3) == []
    out = e.client_write(["x"])
    assert out[0] == AppendLog(S(mode, 3, (1, 1, "x")))


def test_lease_reads_stay_off_after_a_timeout_now_even_if_the_transfer_times_out(mode):
    # The target's election ignores leases, so once TimeoutNow is out no ack this leader holds
    # proves there is no newer leader: lease reads stay refused for this leadership, even
    # after the transfer timed out and fresh acks came back.
    e = make_leader(mode, enable_tick=True)
    assert any(type(c.msg) is TimeoutNow for c in e.transfer_leader(2) if type(c) is Send)
    t0 = e.now
    out = e.tick(t0 + e.config.election_timeout_max / 2)             # heartbeats keep the quorum
    for t in (2, 3):
        ack(e, t, out)
    out = e.tick(t0 + e.config.election_timeout_max + 0.001)        # transfer times out; heartbeats go
    for t in (2, 3):
        ack(e, t, out)
    assert e.state == LEADER
    assert e.lease_valid_until is not None and e.lease_valid_until > e.now   # acks are fresh
    e.client_write(["w"])                                                   # writes resume
    (reply,) = e.ensure_linearizable("r", LEASE_READ)
    assert reply.value is None and isinstance(reply.error, LeaseExpired)
