"""Engine tests: check-quorum step-down.

Rule: a leader that has not had a message acked by a quorum for election_timeout_max (counted
from the send time of the newest quorum-acked message, or from its win) steps down to
follower: a newer leader may exist, and its clients must learn the outcome of their writes
(the runtime fails them with OutcomeUnknown after its bound) instead of waiting for the
partition to heal. Stepping down saves nothing and sends nothing."""
from engine_helpers import Reply, SendHeartbeat, make_leader, ok_response, sends_to
from openraft_fast._core.engine import CANDIDATE, FOLLOWER, LEADER, READ_INDEX
from openraft_fast.errors import ForwardToLeader


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
