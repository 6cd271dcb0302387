"""Engine tests: initialize, membership changes (joint consensus), learners, a leader that
removes itself."""
import random

import pytest

from engine_helpers import (ack, flush, LID, V, Apply, AppendLog, AppendRequest, Membership, Node, S, SaveCommitted, SaveVote,
                            Send, TruncateLog, VoteRequest, config, make_follower, make_leader, new_engine, ok_response,
                            sends_to, settle)
from openraft_fast._core.engine import FOLLOWER, LEADER, LEARNER, NOT_MEMBER, Engine, PersistedState
from openraft_fast._core.messages import TimeoutNow
from openraft_fast.errors import ChangeMembershipError, InitializeError


def pristine(node_id, mode, **kw):
    e = Engine(node_id, config(mode, **kw), PersistedState(), random.Random(node_id))
    assert e.startup() == []
    return e


def leader_with_learner(mode, **kw):
    """Leader 1 of {1, 2, 3} with learner 4 ("n4"), all committed and acked."""
    e = make_leader(mode, **kw)
    settle(e, e.add_learner(4, Node("n4")))
    assert e.committed == LID(mode, 1, 1, 3)
    return e


def nodes(*ids, **named):
    ns = {i: Node() for i in ids}
    ns.update({int(k[1:]): Node(v) for k, v in named.items()})
    return ns


# ---------------------------------------------------------------------------- initialize
def test_initialize_single_node_becomes_leader_at_once(mode):
    e = pristine(1, mode)
    m = Membership({1})
    out = e.initialize(m)
    assert out == [
        AppendLog(S(mode, 1, (0, None, m))),
        SaveVote(V(mode, 1, 1)),
        SaveVote(V(mode, 1, 1, True)),
        AppendLog(S(mode, 2, (1, 1, None))),
    ]
    assert e.state == LEADER
    assert e.on_log_flushed(LID(mode, 1, 1, 2)) == [
        SaveCommitted(LID(mode, 1, 1, 2)), Apply(S(mode, 1, (0, None, m), (1, 1, None)))]


def test_initialize_multi_node_appends_the_membership_and_starts_an_election(mode):
    e = pristine(1, mode)
    m = Membership({1, 2, 3})
    req = VoteRequest(V(mode, 1, 1), LID(mode, 0, None, 1))
    assert e.initialize(m) == [AppendLog(S(mode, 1, (0, None, m))), SaveVote(V(mode, 1, 1)),
                               Send(2, req), Send(3, req)]
    assert e.membership == m


def test_initialize_without_elect_stands_when_its_election_timer_fires(mode):
    # Every node of a new cluster initialized at once: none campaigns at once; the first
    # whose randomized timer fires pre-votes (then stands), as after any leader loss.
    e = pristine(1, mode, enable_tick=True, enable_pre_vote=True)
    m = Membership({1, 2, 3})
    assert e.initialize(m, elect=False) == [AppendLog(S(mode, 1, (0, None, m)))]
    assert e.state == FOLLOWER and e.vote == V(mode, 0, None)
    assert e.tick(e.config.election_timeout_min - 0.001) == []
    pre = VoteRequest(V(mode, 1, 1), LID(mode, 0, None, 1), True)
    assert e.tick(e.config.election_timeout_max) == [Send(2, pre), Send(3, pre)]


def test_all_nodes_initialized_alike_write_the_same_first_log_id(mode):
    m = Membership({1, 2, 3})
    outs = [pristine(n, mode).initialize(m)[0] for n in (1, 2, 3)]
    assert outs[0] == outs[1] == outs[2] == AppendLog(S(mode, 1, (0, None, m)))
    assert outs[0].entries.last_log_id == LID(mode, 0, None, 1)


def test_initialize_is_refused_on_a_node_that_is_not_pristine(mode):
    with pytest.raises(InitializeError):
        new_engine(1, mode).initialize(Membership({1, 2, 3}))       # has a log
    voted = Engine(1, config(mode), PersistedState(vote=V(mode, 1, 2)), random.Random(0))
    with pytest.raises(InitializeError):
        voted.initialize(Membership({1, 2, 3}))                     # has voted
    e = pristine(1, mode)
    e.initialize(Membership({1}))
    with pytest.raises(InitializeError):
        e.initialize(Membership({1}))                               # twice


def test_initialize_is_refused_on_a_node_not_in_the_membership(mode):
    e = pristine(4, mode)
    with pytest.raises(InitializeError):
        e.initialize(Membership({1, 2, 3}))
    assert e.last_log_id is None and e.vote == V(mode, 0)


# ---------------------------------------------------------------------------- change_membership
def test_change_membership_goes_joint_then_uniform(mode):
    e = leader_with_learner(mode)
    lv = V(mode, 1, 1, True)
    joint = Membership([{1, 2, 3}, {1, 2, 4}], nodes=nodes(1, 2, 3, n4="n4"))
    out = e.change_membership({1, 2, 4})
    entry = S(mode, 4, (1, 1, joint))
    commit = LID(mode, 1, 1, 3)
    assert out == [AppendLog(entry)] + [
        Send(t, AppendRequest(lv, LID(mode, 1, 1, 3), entry, commit, msg, seq, 0))
        for t, msg, seq in ((2, 3, 6), (3, 3, 7), (4, 2, 8))]
    assert e.membership == joint
    settle(e, out)
    assert e.committed_membership == joint
    # Second step, once the joint config is committed: the goal alone. 3 leaves (not retained).
    uniform = Membership([{1, 2, 4}], nodes=nodes(1, 2, n4="n4"))
    out = e.change_membership({1, 2, 4})
    assert out[0] == AppendLog(S(mode, 5, (1, 1, uniform)))
    assert e.membership == uniform
    settle(e, out)
    assert e.committed_membership == uniform and e.state == LEADER
    # Nothing left to do.
    assert e.change_membership({1, 2, 4}) == []


def test_change_membership_is_refused_while_the_previous_change_is_uncommitted(mode):
    e = leader_with_learner(mode)
    e.change_membership({1, 2, 4})
    with pytest.raises(ChangeMembershipError) as ei:
        e.change_membership({1, 2, 4})
    assert ei.value.reason == "in_progress"
    with pytest.raises(ChangeMembershipError) as ei:
        e.add_learner(5, Node("n5"))
    assert ei.value.reason == "in_progress"
    assert e.last_log_id == LID(mode, 1, 1, 4)


def test_change_membership_to_an_empty_voter_set_is_refused(mode):
    e = make_leader(mode)
    with pytest.raises(ChangeMembershipError) as ei:
        e.change_membership(set())
    assert ei.value.reason == "empty"


def test_change_membership_to_an_unknown_node_is_refused(mode):
    e = make_leader(mode)
    with pytest.raises(ChangeMembershipError) as ei:
        e.change_membership({1, 2, 5})
    assert ei.value.reason == "learner_not_found"
    assert e.last_log_id == LID(mode, 1, 1, 2)


def test_change_membership_retain_keeps_removed_voters_as_learners(mode):
    e = make_leader(mode)
    settle(e, e.change_membership({1, 2}, retain=True))
    assert e.membership == Membership([{1, 2, 3}, {1, 2}])
    settle(e, e.change_membership({1, 2}, retain=True))
    assert e.membership == Membership([{1, 2}], nodes=nodes(1, 2, 3))
    assert e.membership.learner_ids == {3}
    # The retained learner is still replicated to.
    assert e.progress(3) is not None


def test_change_membership_without_retain_drops_removed_voters(mode):
    e = make_leader(mode)
    settle(e, e.change_membership({1, 2}))
    settle(e, e.change_membership({1, 2}))
    assert e.membership == Membership([{1, 2}])
    assert e.progress(3) is None


def test_membership_takes_effect_when_appended(mode):
    e = leader_with_learner(mode)
    out = e.change_membership({1, 2, 3, 4})
    assert e.membership == Membership([{1, 2, 3}, {1, 2, 3, 4}], nodes=nodes(1, 2, 3, n4="n4"))
    assert e.on_log_flushed(LID(mode, 1, 1, 4)) == []
    # {1, 2} is a majority of {1, 2, 3} but not of {1, 2, 3, 4}: the joint quorum is already in force.
    assert e.recv_append_response(2, ok_response(out[1].msg)) == []
    assert e.committed == LID(mode, 1, 1, 3)
    assert e.recv_append_response(4, ok_response(out[3].msg))[0] == SaveCommitted(LID(mode, 1, 1, 4))


def test_follower_membership_takes_effect_when_appended_and_reverts_when_truncated(mode):
    e = make_follower(mode)                                  # holds 1..2, committed 2
    joint = Membership([{1, 2, 3}, {1, 2}])
    lv = V(mode, 1, 1, True)
    e.recv_append(1, AppendRequest(lv, LID(mode, 1, 1, 2), S(mode, 3, (1, 1, joint)), LID(mode, 1, 1, 2), 2, 2, 0))
    assert e.membership == joint and e.committed_membership == Membership({1, 2, 3})
    # A new leader never had that entry: it is truncated and the membership reverts.
    nv = V(mode, 2, 3, True)
    out = e.recv_append(3, AppendRequest(nv, LID(mode, 1, 1, 2), S(mode, 3, (2, 3, None)), None, 1, 1, 0))
    assert out == [SaveVote(nv), TruncateLog(2), AppendLog(S(mode, 3, (2, 3, None)))]
    assert e.membership == Membership({1, 2, 3}) and e.membership_log_id == LID(mode, 0, None, 1)


def test_add_learner_adds_progress_for_the_learner_that_does_not_count_for_commit(mode):
    e = make_leader(mode)
    out = e.add_learner(4, Node("n4"))
    p = e.progress(4)
    assert p is not None and p.slot == -1
    assert e.membership.learner_ids == {4} and e.membership.get_node(4) == Node("n4")
    settle(e, out)
    out = e.client_write(["a"])
    e.on_log_flushed(LID(mode, 1, 1, 4))
    assert e.recv_append_response(4, ok_response(sends_to(out, 4)[0].msg)) == []
    assert e.progress(4).matched == 4 and e.committed == LID(mode, 1, 1, 3)
    # Adding a node already present does nothing.
    assert e.add_learner(4, Node("n4")) == []


def test_leader_that_removed_itself_hands_over_to_the_most_up_to_date_voter(mode):
    e = make_leader(mode, voters=(1, 2, 3, 4))
    settle(e, e.change_membership({2, 3, 4}))
    assert e.state == LEADER
    out = e.change_membership({2, 3, 4})
    lv = V(mode, 1, 1, True)
    last = LID(mode, 1, 1, 4)
    # The uniform config does not count the leader: its own flush commits nothing.
    assert e.on_log_flushed(last) == []
    assert e.recv_append_response(3, ok_response(out[2].msg)) == []
    assert e.state == LEADER
    # 4's ack commits it (3 and 4 of {2, 3, 4}); 2 lags, so 3 gets TimeoutNow.
    assert e.recv_append_response(4, ok_response(out[3].msg)) == [
        SaveCommitted(last),
        Send(3, TimeoutNow(lv, last)),
        Apply(S(mode, 4, (1, 1, Membership([{2, 3, 4}])))),
    ]
    assert e.state == NOT_MEMBER and not e.is_leader()     # in no membership it holds any more


# ---------------------------------------------------------------------------- learners
def test_remove_learner_appends_a_membership_without_it(mode):
    e = leader_with_learner(mode)
    out = e.remove_learner(4)
    m = Membership([{1, 2, 3}], nodes(1, 2, 3))
    assert out[0] == AppendLog(S(mode, 4, (1, 1, m)))
    assert e.membership == m and e.membership.learner_ids == frozenset()
    assert {c.target for c in out if isinstance(c, Send)} >= {2, 3}
    settle(e, out)
    assert e.committed == LID(mode, 1, 1, 4) and e.committed_membership == m
    # absent: nothing; a voter: refused, nothing appended
    assert e.remove_learner(4) == [] and e.remove_learner(9) == []
    with pytest.raises(ChangeMembershipError) as ei:
        e.remove_learner(2)
    assert ei.value.reason == "is_voter" and e.log.last_index == 4


def test_remove_learner_waits_for_the_last_membership_to_commit(mode):
    e = leader_with_learner(mode)
    e.change_membership({1, 2})                     # joint config appended, not committed; 4 stays a learner
    with pytest.raises(ChangeMembershipError) as ei:
        e.remove_learner(4)
    assert ei.value.reason == "in_progress"


def test_learner_never_starts_an_election(mode):
    e = new_engine(4, mode, enable_tick=True, membership=Membership([{1, 2, 3}], nodes=nodes(1, 2, 3, 4)))
    assert e.state == LEARNER
    assert e.tick(100.0) == [] and e.elect() == []
    assert e.state == LEARNER and e.vote == V(mode, 0)


def test_a_node_in_no_membership_is_not_member_and_never_starts_an_election(mode):
    e = new_engine(4, mode, enable_tick=True)           # not in {1, 2, 3}
    assert e.state == NOT_MEMBER
    assert e.tick(100.0) == [] and e.elect() == []
    assert e.state == NOT_MEMBER and e.vote == V(mode, 0)


def test_learner_becomes_a_voter_when_an_appended_membership_says_so(mode):
    e = new_engine(4, mode)
    lv = V(mode, 1, 1, True)
    joint = Membership([{1, 2, 3}, {1, 2, 4}], nodes=nodes(1, 2, 3, 4))
    out = e.recv_append(1, AppendRequest(lv, LID(mode, 0, None, 1), S(mode, 2, (1, 1, None), (1, 1, joint)),
                                         None, 1, 1, 0))
    assert out == [SaveVote(lv), AppendLog(S(mode, 2, (1, 1, None), (1, 1, joint)))]
    assert e.state == FOLLOWER


def test_voter_removed_by_an_appended_membership_is_not_member_once_it_commits(mode):
    e = make_follower(mode, node_id=3)
    lv = V(mode, 1, 1, True)
    flush(e, e.recv_append(1, AppendRequest(lv, LID(mode, 1, 1, 2), S(mode, 3, (1, 1, Membership({1, 2}))), None, 2, 2, 0)))
    # The new config takes effect at once, but while it is uncommitted node 3 is still a voter
    # of the committed one and may stand: the new voters may not hold the new config yet.
    assert e.membership.voter_ids == {1, 2} and e.state == FOLLOWER
    flush(e, e.recv_append(1, AppendRequest(lv, LID(mode, 1, 1, 3), None, LID(mode, 1, 1, 3), 3, 3, 0)))
    assert e.committed_membership.voter_ids == {1, 2}
    assert e.state == NOT_MEMBER
    assert e.elect() == []


# ---------------------------------------------------------------------------- stability: healthy voters, leaving nodes
def leader_with_silent_learner(mode, **kw):
    """Leader 1 of {1, 2, 3} (all acked) with learner 4 added and committed; 4 never answered."""
    e = make_leader(mode, **kw)
    settle(e, e.add_learner(4, Node("n4")), targets=[2, 3])
    assert e.committed_membership.learner_ids == {4}
    return e


def test_change_membership_is_refused_without_a_healthy_quorum_of_the_new_voters(mode):
    e = leader_with_silent_learner(mode)
    before = e.last_log_id
    with pytest.raises(ChangeMembershipError) as ei:
        e.change_membership({1, 4})
    assert ei.value.reason == "not_enough_healthy_voters"
    assert "[4]" in str(ei.value) and "force=True" in str(ei.value)
    assert e.last_log_id == before                       # nothing appended
    # {1, 2} of {1, 2, 4} is a quorum: the dead learner may join as long as a quorum is healthy.
    assert e.change_membership({1, 2, 4})[0].__class__ is AppendLog


def test_change_membership_force_skips_the_health_check(mode):
    e = leader_with_silent_learner(mode)
    out = e.change_membership({1, 4}, force=True)
    assert out[0] == AppendLog(S(mode, 4, (1, 1, Membership([{1, 2, 3}, {1, 4}], nodes=nodes(1, 2, 3, n4="n4")))))


def test_a_voter_silent_for_election_timeout_max_is_unhealthy(mode):
    e = make_leader(mode, now=1.0, enable_tick=True, enable_heartbeat=False)
    assert e.unhealthy({1, 2, 3}) == []
    e.tick(1.0 + e.config.election_timeout_max * 0.9)
    ack(e, 2, e.trigger_heartbeat())                     # 2 answers; 3 stays silent
    e.tick(1.0 + e.config.election_timeout_max + 0.01)
    assert e.unhealthy({1, 2, 3}) == [3]
    with pytest.raises(ChangeMembershipError) as ei:
        e.change_membership({1, 3})
    assert ei.value.reason == "not_enough_healthy_voters"


def test_learner_is_caught_up_only_once_it_has_accepted_an_append(mode):
    e = make_leader(mode)
    out = e.add_learner(4, Node("n4"))
    assert not e.is_caught_up(4) and not e.has_acked(4)     # lag 3 <= 5000, but it never answered
    settle(e, out)
    assert e.has_acked(4) and e.is_caught_up(4)


def test_leader_keeps_replicating_to_a_removed_node_until_it_holds_its_removal(mode):
    e = make_leader(mode)
    settle(e, e.change_membership({1, 2}))                  # joint, committed
    out = e.change_membership({1, 2})                       # uniform {1, 2}: 3 removed
    removal = e.last_log_id
    assert e.progress(3) is not None and sends_to(out, 3)   # 3 still gets the entry that removes it
    settle(e, out, targets=[2])
    assert e.committed_membership == Membership([{1, 2}])
    hb = e.trigger_heartbeat()
    assert [c.target for c in hb] == [2, 3]                 # still replicated to: it has not got it
    ack(e, 3, out)                                          # 3 holds the removal now
    assert e.progress(3) is None and e.progress(2).matched == removal.index
    assert [c.target for c in e.trigger_heartbeat()] == [2]


def test_a_removed_node_that_never_answers_is_dropped_after_the_bound(mode):
    e = make_leader(mode, now=1.0, enable_tick=True)
    settle(e, e.change_membership({1, 2}))
    settle(e, e.change_membership({1, 2}), targets=[2])
    assert e.progress(3) is not None
    t = 1.0
    while t < 1.0 + 10 * e.config.election_timeout_max + 0.2:
        t += e.config.heartbeat_interval
        ack(e, 2, e.tick(t))                                # 2 keeps the lease; 3 is gone
    assert e.progress(3) is None


def test_hand_off_target_is_the_most_up_to_date_healthy_voter(mode):
    e = make_leader(mode, voters=(1, 2, 3, 4), now=1.0, enable_tick=True, enable_heartbeat=False)
    out = e.client_write(["a"])
    flush(e, out)
    ack(e, 3, out)                                          # 3 holds the write; 2 and 4 do not
    assert e.hand_off_target() == 3
    e.tick(1.0 + e.config.election_timeout_max * 0.9)
    hb = e.trigger_heartbeat()
    ack(e, 2, hb)
    ack(e, 4, hb)
    e.tick(1.0 + e.config.election_timeout_max + 0.01)     # 3 has been silent too long now
    assert e.hand_off_target() in (2, 4)
    assert make_follower(mode).hand_off_target() is None
