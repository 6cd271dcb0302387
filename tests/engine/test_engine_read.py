"""Engine tests: linearizable reads (read index, lease read)."""
import random

from engine_helpers import (LID, V, Node, settle, AppendRequest, Membership, Reply, SaveVote, SendHeartbeat, VoteResponse, config,
                            elect_leader, make_follower, make_leader, make_log, ok_response)
from openraft_fast._core.engine import LEASE_READ, READ_INDEX, Engine, PersistedState
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
