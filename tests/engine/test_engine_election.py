"""Engine tests: votes, elections, leader leases, check-quorum, pre-vote and restart."""
import itertools
import random

import pytest

from engine_helpers import (L, LID, OK, V, Apply, AppendLog, AppendRequest, AppendResponse, Membership, Respond, S, flush,
                            SaveVote, Send, VoteRequest, VoteResponse, ack, config, make_candidate, make_follower,
                            make_leader, make_log, new_engine, restarted_out_of_lease)
from openraft_fast._core.engine import CANDIDATE, FOLLOWER, LEADER, NOT_MEMBER, Engine, PersistedState
from openraft_fast.errors import ForwardToLeader


def voter(mode, **kw):
    """Node 2 restarted a lease ago: it saved leader 1's committed vote of term 1 and holds
    T1-N1.2, and has not heard from leader 1 since (so no leader lease holds any more)."""
    return restarted_out_of_lease(2, mode, (1, 2, 3), dict(vote=V(mode, 1, 1, committed=True),
                                  log=make_log(mode, Membership({1, 2, 3}), [(1, 1, None)]), **kw))


# ---------------------------------------------------------------------------- recv_vote
@pytest.mark.parametrize("cand_term, cand_last, granted", [
    (2, (1, 1, 2), True),       # greater vote, same log
    (2, (1, 1, 3), True),       # greater vote, longer log of the same leader
    (3, (2, 3, 2), True),       # greater vote, log of a newer leader
    (2, (0, None, 1), False),   # greater vote, shorter log
    (2, (0, None, 5), False),   # greater vote, longer log of an older leader
    (1, (1, 1, 2), False),      # same term: std refuses (one leader per term); adv grants N3 > N1
    (0, (1, 1, 9), False),      # smaller vote, longer log
])
def test_vote_is_granted_iff_candidate_vote_and_log_are_not_smaller(mode, cand_term, cand_last, granted):
    e = voter(mode)
    ours_last = e.last_log_id
    cand_vote = V(mode, cand_term, 3)
    if cand_term == 1 and mode == "adv":
        # adv: (T1, N3) > (T1, N1) even against a committed vote (leader ids are totally ordered),
        # as in openraft; the leader lease is what protects a live leader.
        granted = True
    out = e.recv_vote(3, VoteRequest(cand_vote, LID(mode, *cand_last)))
    if granted:
        assert out == [SaveVote(cand_vote), Respond(3, VoteResponse(cand_vote, True, ours_last, False))]
        assert e.vote == cand_vote
    else:
        assert out == [Respond(3, VoteResponse(V(mode, 1, 1, True), False, ours_last, False))]
        assert e.vote == V(mode, 1, 1, True)
    assert e.state == FOLLOWER


def test_vote_request_checks_log_before_vote(mode):
    # A candidate with a greater vote but a shorter log is refused and our vote stays as it
    # was: the vote is not even raised to the candidate's term (openraft checks the log first).
    e = voter(mode)
    out = e.recv_vote(3, VoteRequest(V(mode, 7, 3), LID(mode, 0, None, 1)))
    assert out == [Respond(3, VoteResponse(V(mode, 1, 1, True), False, LID(mode, 1, 1, 2), False))]
    assert e.vote == V(mode, 1, 1, True)


def test_std_mode_grants_one_vote_per_term():
    e = new_engine(2, "std", voters=(0, 1, 2, 3))
    last = e.last_log_id
    assert e.recv_vote(1, VoteRequest(V("std", 1, 1), last)) == [
        SaveVote(V("std", 1, 1)), Respond(1, VoteResponse(V("std", 1, 1), True, last, False))]
    # A second candidate of term 1 is refused whatever its node id.
    for other in (3, 0):
        out = e.recv_vote(other, VoteRequest(V("std", 1, other), last))
        assert out == [Respond(other, VoteResponse(V("std", 1, 1), False, last, False))]
    assert e.vote == V("std", 1, 1)


def test_adv_mode_grants_a_greater_node_id_in_the_same_term():
    e = new_engine(2, "adv", voters=(0, 1, 2, 3))
    last = e.last_log_id
    e.recv_vote(1, VoteRequest(V("adv", 1, 1), last))
    e.tick(e.config.lease)                  # the vote granted to N1 holds no more
    # (T1, N3) > (T1, N1): granted; (T1, N0) < (T1, N3): refused.
    assert e.recv_vote(3, VoteRequest(V("adv", 1, 3), last)) == [
        SaveVote(V("adv", 1, 3)), Respond(3, VoteResponse(V("adv", 1, 3), True, last, False))]
    assert e.recv_vote(0, VoteRequest(V("adv", 1, 0), last)) == [
        Respond(0, VoteResponse(V("adv", 1, 3), False, last, False))]
    assert e.vote == V("adv", 1, 3)


def test_repeated_vote_request_is_granted_again_without_saving(mode):
    e = new_engine(2, mode)
    last = e.last_log_id
    e.recv_vote(1, VoteRequest(V(mode, 1, 1), last))
    assert e.recv_vote(1, VoteRequest(V(mode, 1, 1), last)) == [
        Respond(1, VoteResponse(V(mode, 1, 1), True, last, False))]


def test_granting_a_vote_saves_it_before_responding(mode):
    e = new_engine(3, mode)
    out = e.recv_vote(1, VoteRequest(V(mode, 4, 1), LID(mode, 0, None, 1)))
    assert [type(c) for c in out] == [SaveVote, Respond]
    assert out[0] == SaveVote(V(mode, 4, 1))


# ---------------------------------------------------------------------------- election timer
def test_election_timeout_is_drawn_from_the_rng_within_bounds(mode):
    cfg = config(mode, enable_tick=True, election_timeout_min=0.2, election_timeout_max=0.5)
    deadlines = []
    for seed in range(8):
        e = new_engine(1, mode, seed=seed, now=10.0, enable_tick=True, election_timeout_min=0.2,
                       election_timeout_max=0.5)
        # A restart first waits election_timeout_max for the leader (see the restart tests).
        assert 10.5 + 0.2 <= e.next_deadline <= 10.5 + 0.5
        deadlines.append(e.next_deadline)
        # The same seed gives the same deadline: the rng is the only source of randomness.
        again = Engine(1, cfg, PersistedState(log=make_log(mode, Membership({1, 2, 3})),
                                              committed=LID(mode, 0, None, 1), applied=LID(mode, 0, None, 1)),
                       random.Random(seed), now=10.0)
        assert again.next_deadline == e.next_deadline
    assert len(set(deadlines)) == len(deadlines)


def test_election_starts_when_the_election_deadline_passes(mode):
    e = new_engine(1, mode, seed=3, enable_tick=True)
    deadline = e.next_deadline
    assert e.tick(deadline - 1e-4) == []
    assert e.state == FOLLOWER
    out = e.tick(deadline + 1e-6)
    assert out[0] == SaveVote(V(mode, 1, 1)) and e.state == CANDIDATE
    # The candidate's own timeout is drawn anew from now.
    assert deadline + 0.15 <= e.next_deadline <= deadline + 0.3 + 1e-6


# ---------------------------------------------------------------------------- candidate
def test_candidate_persists_vote_before_requesting_votes(mode):
    e = new_engine(1, mode)
    out = e.elect()
    req = VoteRequest(V(mode, 1, 1), LID(mode, 0, None, 1), False, False)
    assert out == [SaveVote(V(mode, 1, 1)), Send(2, req), Send(3, req)]
    assert e.state == CANDIDATE and e.vote == V(mode, 1, 1)


def test_candidate_becomes_leader_with_a_quorum_of_grants(mode):
    e = make_candidate(mode)
    out = e.recv_vote_response(2, VoteResponse(V(mode, 1, 1), True, LID(mode, 0, None, 1)))
    lv = V(mode, 1, 1, committed=True)
    blank = S(mode, 2, (1, 1, None))
    assert out == [
        SaveVote(lv),
        AppendLog(blank),
        Send(2, AppendRequest(lv, LID(mode, 0, None, 1), blank, LID(mode, 0, None, 1), 1, 1, 0)),
        Send(3, AppendRequest(lv, LID(mode, 0, None, 1), blank, LID(mode, 0, None, 1), 1, 2, 0)),
    ]
    assert e.state == LEADER and e.vote == lv and e.leader_id == 1


def test_candidate_needs_a_quorum_not_one_grant(mode):
    e = make_candidate(mode, voters=(1, 2, 3, 4, 5))
    assert e.recv_vote_response(2, VoteResponse(V(mode, 1, 1), True, LID(mode, 0, None, 1))) == []
    assert e.state == CANDIDATE
    # A grant of an older election of ours does not count.
    assert e.recv_vote_response(3, VoteResponse(V(mode, 0, None), True, LID(mode, 0, None, 1))) == []
    assert e.state == CANDIDATE
    out = e.recv_vote_response(4, VoteResponse(V(mode, 1, 1), True, LID(mode, 0, None, 1)))
    assert out[0] == SaveVote(V(mode, 1, 1, committed=True)) and e.state == LEADER


def test_candidate_steps_down_on_a_higher_vote_response(mode):
    e = make_candidate(mode)
    out = e.recv_vote_response(2, VoteResponse(V(mode, 2, 3), False, LID(mode, 0, None, 1)))
    assert out == [SaveVote(V(mode, 2, 3))]
    assert e.state == FOLLOWER and e.vote == V(mode, 2, 3)
    # Late grants of the abandoned election change nothing.
    assert e.recv_vote_response(3, VoteResponse(V(mode, 1, 1), True, LID(mode, 0, None, 1))) == []
    assert e.state == FOLLOWER


def test_candidate_steps_down_on_append_from_leader_of_its_term(mode):
    e = make_candidate(mode)
    lv = V(mode, 1, 2, committed=True)
    out = e.recv_append(2, AppendRequest(lv, LID(mode, 0, None, 1), None, None, 0, 1, 0))
    assert out == [SaveVote(lv), Respond(2, AppendResponse(lv, OK, LID(mode, 0, None, 1), 0, -1, 0, 1, 0))]
    assert e.state == FOLLOWER and e.leader_id == 2


def test_candidate_refused_by_a_voter_of_another_candidate_in_the_same_term(mode):
    e = make_candidate(mode)                         # T1-N1
    out = e.recv_vote_response(3, VoteResponse(V(mode, 1, 3), False, LID(mode, 0, None, 1)))
    if mode == "std":
        # (T1, N3) and (T1, N1) are incomparable: a plain refusal.
        assert out == [] and e.state == CANDIDATE and e.vote == V(mode, 1, 1)
    else:
        # (T1, N3) > (T1, N1): the candidate adopts the greater vote and steps down.
        assert out == [SaveVote(V(mode, 1, 3))] and e.state == FOLLOWER


def test_elect_on_a_leader_does_nothing(mode):
    e = make_leader(mode)
    assert e.elect() == [] and e.is_leader() and e.vote == V(mode, 1, 1, True)


def test_candidate_loses_when_a_quorum_refuses(mode):
    e = make_candidate(mode)
    # Refusals by voters whose log is longer: their votes are below ours.
    assert e.recv_vote_response(2, VoteResponse(V(mode, 0, None), False, LID(mode, 0, None, 5))) == []
    assert e.state == CANDIDATE
    assert e.recv_vote_response(3, VoteResponse(V(mode, 0, None), False, LID(mode, 0, None, 5))) == []
    assert e.state == FOLLOWER and e.vote == V(mode, 1, 1)


# ---------------------------------------------------------------------------- leader lease
def test_follower_refuses_vote_within_leader_lease(mode):
    e = make_follower(mode, now=1.0)          # heard from leader 1 at t=1.0; lease 0.15 s
    e.tick(1.149)
    last = e.last_log_id
    out = e.recv_vote(3, VoteRequest(V(mode, 2, 3), last))
    assert out == [Respond(3, VoteResponse(V(mode, 1, 1, True), False, last, False))]
    assert e.vote == V(mode, 1, 1, True)


def test_follower_grants_vote_after_leader_lease(mode):
    e = make_follower(mode, now=1.0)
    e.tick(1.15)
    last = e.last_log_id
    out = e.recv_vote(3, VoteRequest(V(mode, 2, 3), last))
    assert out == [SaveVote(V(mode, 2, 3)), Respond(3, VoteResponse(V(mode, 2, 3), True, last, False))]


def test_follower_lease_uses_the_configured_leader_lease(mode):
    e = make_follower(mode, now=1.0, leader_lease=0.05)
    e.tick(1.06)
    last = e.last_log_id
    assert e.recv_vote(3, VoteRequest(V(mode, 2, 3), last))[0] == SaveVote(V(mode, 2, 3))


def test_transfer_vote_request_ignores_leader_lease(mode):
    e = make_follower(mode, now=1.0)
    e.tick(1.01)
    last = e.last_log_id
    out = e.recv_vote(3, VoteRequest(V(mode, 2, 3), last, False, True))
    assert out == [SaveVote(V(mode, 2, 3)), Respond(3, VoteResponse(V(mode, 2, 3), True, last, False))]


def test_transfer_vote_request_still_needs_an_up_to_date_log(mode):
    e = make_follower(mode, now=1.0)
    out = e.recv_vote(3, VoteRequest(V(mode, 2, 3), LID(mode, 0, None, 1), False, True))
    assert out == [Respond(3, VoteResponse(V(mode, 1, 1, True), False, e.last_log_id, False))]


def test_leader_refuses_vote_while_its_lease_holds(mode):
    e = make_leader(mode, now=1.0)            # granted (and acked) at t=1.0
    e.tick(1.1)
    last = e.last_log_id
    out = e.recv_vote(3, VoteRequest(V(mode, 2, 3), last))
    assert out == [Respond(3, VoteResponse(V(mode, 1, 1, True), False, last, False))]
    assert e.state == LEADER


def test_leader_without_lease_grants_a_vote_and_steps_down(mode):
    e = make_leader(mode, now=1.0)
    e.tick(1.2)                               # leader lease: 0.15 * (1 - 0.1) = 0.135 s
    last = e.last_log_id
    out = e.recv_vote(3, VoteRequest(V(mode, 2, 3), last))
    assert out == [SaveVote(V(mode, 2, 3)), Respond(3, VoteResponse(V(mode, 2, 3), True, last, False))]
    assert e.state == FOLLOWER and e.tracker is None


# ---------------------------------------------------------------------------- check-quorum
def test_check_quorum_leader_without_acks_within_lease_refuses_writes(mode):
    e = make_leader(mode, now=1.0)
    e.tick(1.134)
    assert [type(c) for c in e.client_write(["a"])] == [AppendLog, Send, Send]
    e.tick(1.2)
    with pytest.raises(ForwardToLeader) as ei:
        e.client_write(["b"])
    assert ei.value.leader_id is None and ei.value.leader_node is None
    assert e.last_log_id == LID(mode, 1, 1, 3)          # nothing appended


def test_check_quorum_leader_takes_writes_again_after_quorum_acks(mode):
    e = make_leader(mode, now=1.0)
    e.tick(1.2)
    hb = e.trigger_heartbeat()
    assert ack(e, 2, hb) == []
    out = e.client_write(["b"])
    assert [type(c) for c in out] == [AppendLog, Send, Send]
    assert out[0] == AppendLog(S(mode, 3, (1, 1, "b")))


# ---------------------------------------------------------------------------- pre-vote
def test_pre_vote_round_does_not_change_or_save_the_vote(mode):
    e = restarted_out_of_lease(1, mode, (1, 2, 3), dict(vote=V(mode, 3, 2, committed=True), enable_pre_vote=True))
    out = e.elect()
    req = VoteRequest(V(mode, 4, 1), LID(mode, 0, None, 1), True, False)
    assert out == [Send(2, req), Send(3, req)]
    assert e.vote == V(mode, 3, 2, committed=True) and e.state == FOLLOWER


def test_pre_vote_request_does_not_change_the_voters_vote(mode):
    e = voter(mode)
    last = e.last_log_id
    out = e.recv_vote(3, VoteRequest(V(mode, 2, 3), last, True, False))
    assert out == [Respond(3, VoteResponse(V(mode, 1, 1, True), True, last, True))]
    assert e.vote == V(mode, 1, 1, True)


def test_pre_vote_is_refused_within_leader_lease(mode):
    e = make_follower(mode, now=1.0)
    e.tick(1.05)
    last = e.last_log_id
    assert e.recv_vote(3, VoteRequest(V(mode, 2, 3), last, True, False)) == [
        Respond(3, VoteResponse(V(mode, 1, 1, True), False, last, True))]


def test_won_pre_vote_starts_the_real_election(mode):
    e = restarted_out_of_lease(1, mode, (1, 2, 3), dict(vote=V(mode, 3, 2, committed=True), enable_pre_vote=True))
    e.elect()
    out = e.recv_vote_response(2, VoteResponse(V(mode, 3, 2, True), True, LID(mode, 0, None, 1), True))
    req = VoteRequest(V(mode, 4, 1), LID(mode, 0, None, 1), False, False)
    assert out == [SaveVote(V(mode, 4, 1)), Send(2, req), Send(3, req)]
    assert e.state == CANDIDATE and e.vote == V(mode, 4, 1)


def test_refused_pre_vote_does_not_start_an_election(mode):
    e = restarted_out_of_lease(1, mode, (1, 2, 3), dict(vote=V(mode, 3, 2, committed=True), enable_pre_vote=True))
    e.elect()
    for n in (2, 3):
        assert e.recv_vote_response(n, VoteResponse(V(mode, 3, 2, True), False, LID(mode, 0, None, 1), True)) == []
    assert e.vote == V(mode, 3, 2, True) and e.state == FOLLOWER
    # The round is over: a late grant does not start the election either.
    assert e.recv_vote_response(2, VoteResponse(V(mode, 3, 2, True), True, LID(mode, 0, None, 1), True)) == []
    assert e.vote == V(mode, 3, 2, True)


# ---------------------------------------------------------------------------- restart
def test_restart_with_own_committed_vote_stands_for_election_at_once(mode):
    log = make_log(mode, Membership({1, 2, 3}), [(1, 1, None), (1, 1, "x")])
    state = PersistedState(vote=V(mode, 1, 1, True), log=log, committed=LID(mode, 1, 1, 2),
                           applied=LID(mode, 0, None, 1))
    e = Engine(1, config(mode), state, random.Random(0), now=5.0)
    out = e.startup()
    nv = V(mode, 2, 1)
    req = VoteRequest(nv, LID(mode, 1, 1, 3))
    # Not the old leader id: a new one, so nothing it appends can reuse an old log id.
    assert out == [Apply(S(mode, 2, (1, 1, None))), SaveVote(nv), Send(2, req), Send(3, req)]
    assert e.state == CANDIDATE
    # A follower still inside the old leader's lease grants its own leader's re-election.
    f = make_follower(mode, node_id=2, now=5.0)
    f.tick(5.01)
    assert f.recv_vote(1, VoteRequest(nv, f.last_log_id)) == [SaveVote(nv), Respond(1, VoteResponse(nv, True, f.last_log_id))]


def test_restart_with_someone_elses_committed_vote_stays_follower(mode):
    log = make_log(mode, Membership({1, 2, 3}), [(1, 2, None)])
    state = PersistedState(vote=V(mode, 1, 2, True), log=log, committed=LID(mode, 1, 2, 2),
                           applied=LID(mode, 1, 2, 2))
    e = Engine(1, config(mode), state, random.Random(0))
    assert e.startup() == []
    assert e.state == FOLLOWER and e.leader_id == 2


def test_restart_with_own_uncommitted_vote_stays_follower(mode):
    e = new_engine(1, mode, vote=V(mode, 2, 1))
    assert e.state == FOLLOWER and e.vote == V(mode, 2, 1)


def test_restored_leader_never_gives_one_log_id_to_two_entries(mode):
    # Leader 1 sends "x" as T1-N1.3 while its own AppendLog is not durable yet; follower 2
    # stores it. Leader 1 crashes, losing its unflushed entry 3, and restarts with its own
    # committed vote. Log matching requires that T1-N1.3 still names "x" wherever it is held.
    leader = make_leader(mode)
    out = leader.client_write(["x"])
    follower = make_follower(mode, node_id=2)
    follower.recv_append(1, out[1].msg)
    follower.on_log_flushed(LID(mode, 1, 1, 3))
    assert follower.log.payload_at(3) == "x"

    durable = make_log(mode, Membership({1, 2, 3}), [(1, 1, None)])
    state = PersistedState(vote=V(mode, 1, 1, True), log=durable, committed=LID(mode, 1, 1, 2),
                           applied=LID(mode, 1, 1, 2))
    restarted = Engine(1, config(mode), state, random.Random(0), now=1.0)
    out = restarted.startup()
    (req,) = [c.msg for c in out if isinstance(c, Send) and c.target == 2]
    # Follower 2 holds more of T1-N1's log than the candidate: it refuses.
    (resp,) = [c.msg for c in follower.recv_vote(1, req) if isinstance(c, Respond)]
    assert not resp.granted
    # Node 3 never got "x": it grants, and the new leader writes under a new leader id.
    third = make_follower(mode, node_id=3)
    (resp3,) = [c.msg for c in third.recv_vote(1, req) if isinstance(c, Respond)]
    assert resp3.granted
    restarted.recv_vote_response(3, resp3)
    assert restarted.state == LEADER
    assert restarted.log.log_id_at(3) != LID(mode, 1, 1, 3)
    assert restarted.log.log_id_at(3).leader_id == L(mode, 2, 1).to_committed()



def test_restarted_node_keeps_the_lease_of_the_leader_it_may_have_acked(mode):
    # It may have acked leader 1 just before the crash, and leader 1 counts on that ack for its
    # lease: for one lease after restarting, it neither helps elect another node nor stands.
    e = new_engine(2, mode, vote=V(mode, 1, 1, committed=True), now=10.0)
    last = e.last_log_id
    assert e.recv_vote(3, VoteRequest(V(mode, 2, 3), last)) == [
        Respond(3, VoteResponse(V(mode, 1, 1, True), False, last, False))]
    assert e.elect() == []
    # Its own leader may stand again (a leader restarting re-elects itself).
    assert e.recv_vote(1, VoteRequest(V(mode, 2, 1), last)) == [
        SaveVote(V(mode, 2, 1)), Respond(1, VoteResponse(V(mode, 2, 1), True, last, False))]


def test_candidate_inside_a_lease_does_not_help_elect_another(mode):
    # A follower that heard from leader 1 a moment ago still refuses other candidates until its
    # promise runs out, and does not stand itself inside the lease either.
    e = make_follower(mode, now=1.0)
    e.tick(1.01)
    last = e.last_log_id
    assert e.recv_vote(3, VoteRequest(V(mode, 2, 3), last)) == [
        Respond(3, VoteResponse(V(mode, 1, 1, True), False, last, False))]
    assert e.elect() == []
    e.tick(1.0 + e.config.lease + 0.001)
    assert e.recv_vote(3, VoteRequest(V(mode, 2, 3), last))[-1] == Respond(3, VoteResponse(V(mode, 2, 3), True, last, False))


def test_a_vote_just_granted_refuses_other_candidates_for_a_lease(mode):
    # Node 2 has heard from no leader; it grants node 1 its vote, and for one lease refuses
    # any other candidate (even in a higher term), so a second leader is not elected over the
    # first one it helped elect. The candidate it voted for may ask again.
    e = new_engine(2, mode, now=1.0)
    last = e.last_log_id
    assert e.recv_vote(1, VoteRequest(V(mode, 1, 1), last)) == [
        SaveVote(V(mode, 1, 1)), Respond(1, VoteResponse(V(mode, 1, 1), True, last, False))]
    e.tick(1.0 + e.config.lease - 0.001)
    assert e.recv_vote(3, VoteRequest(V(mode, 2, 3), last)) == [
        Respond(3, VoteResponse(V(mode, 1, 1), False, last, False))]
    assert e.recv_vote(3, VoteRequest(V(mode, 2, 3), last, True)) == [
        Respond(3, VoteResponse(V(mode, 1, 1), False, last, True))]          # pre-vote too
    assert e.recv_vote(1, VoteRequest(V(mode, 2, 1), last)) == [
        SaveVote(V(mode, 2, 1)), Respond(1, VoteResponse(V(mode, 2, 1), True, last, False))]
    e.tick(1.0 + 2 * e.config.lease)
    assert e.recv_vote(3, VoteRequest(V(mode, 3, 3), last)) == [
        SaveVote(V(mode, 3, 3)), Respond(3, VoteResponse(V(mode, 3, 3), True, last, False))]


def test_a_transfer_vote_request_is_not_held_up_by_a_vote_just_granted(mode):
    e = new_engine(2, mode, now=1.0)
    last = e.last_log_id
    e.recv_vote(1, VoteRequest(V(mode, 1, 1), last))
    assert e.recv_vote(3, VoteRequest(V(mode, 2, 3), last, False, True)) == [
        SaveVote(V(mode, 2, 3)), Respond(3, VoteResponse(V(mode, 2, 3), True, last, False))]


def test_nodes_initialized_together_elect_one_leader(mode):
    # Every node of a new cluster initializes at once and campaigns in term 1. Whatever order
    # the requests arrive in, one leader is elected: a node that voted for one candidate does
    # not then help a greater one over it (adv ordering would otherwise allow (T1,N3) after
    # (T1,N2), and N3's log would truncate what N2 had accepted).
    m = Membership({1, 2, 3})
    for order in itertools.permutations([(a, b) for a in (1, 2, 3) for b in (1, 2, 3) if a != b]):
        es = {n: Engine(n, config(mode), PersistedState(), random.Random(n), now=1.0) for n in (1, 2, 3)}
        for e in es.values():
            e.startup()
        sent = {n: [c for c in es[n].initialize(m) if isinstance(c, Send)] for n in es}
        leaders = set()
        for frm, to in order:
            req = next(c.msg for c in sent[frm] if c.target == to)
            for c in es[to].recv_vote(frm, req):
                if isinstance(c, Respond):
                    es[frm].recv_vote_response(to, c.msg)
                    if es[frm].state == LEADER:
                        leaders.add(frm)
        assert len(leaders) <= 1, (order, leaders)


def test_candidate_terms_go_above_every_term_seen(mode):
    # Refusing a candidate for its short log still teaches the term it claimed: our own next
    # candidacy goes above it, so short-log candidates cannot keep taking every term.
    e = voter(mode)
    e.recv_vote(3, VoteRequest(V(mode, 7, 3), LID(mode, 0, None, 1)))     # refused: shorter log
    assert e.vote == V(mode, 1, 1, True)
    out = e.elect()
    assert out[0] == SaveVote(V(mode, 8, 2))


# ---------------------------------------------------------------------------- stability (routine operations)
def test_pre_vote_is_on_by_default():
    from openraft_fast.config import Config
    assert Config().enable_pre_vote is True


def test_restarted_node_waits_election_timeout_max_for_a_leader_before_it_stands(mode):
    """A follower restarted from saved state gives the leader a whole election_timeout_max
    (its link to us may still be backing off) before a first pre-vote: no election."""
    e = new_engine(2, mode, vote=V(mode, 1, 1, committed=True), log=make_log(mode, Membership({1, 2, 3}), [(1, 1, None)]),
                   now=10.0, enable_tick=True, enable_pre_vote=True)
    cfg = e.config
    assert e.next_deadline >= 10.0 + cfg.election_timeout_max + cfg.election_timeout_min
    assert e.tick(10.0 + cfg.election_timeout_max + cfg.election_timeout_min - 1e-3) == []
    assert e.state == FOLLOWER and e.vote == V(mode, 1, 1, committed=True)
    # The leader's heartbeat arrives in that window: it follows, nothing else happens.
    last = e.last_log_id
    out = e.recv_append(1, AppendRequest(V(mode, 1, 1, True), last, None, last, 0, 7, 10_100_000))
    assert Respond(1, AppendResponse(V(mode, 1, 1, True), OK, last, 0, -1, 0, 7, 10_100_000)) in out
    assert e.state == FOLLOWER and e.vote == V(mode, 1, 1, committed=True)


def test_restarted_leader_pre_votes_at_once_when_pre_vote_is_on(mode):
    log = make_log(mode, Membership({1, 2, 3}), [(1, 1, None)])
    state = PersistedState(vote=V(mode, 1, 1, True), log=log, committed=LID(mode, 1, 1, 2),
                           applied=LID(mode, 1, 1, 2))
    e = Engine(1, config(mode, enable_pre_vote=True), state, random.Random(0), now=5.0)
    req = VoteRequest(V(mode, 2, 1), LID(mode, 1, 1, 2), True, False)
    assert e.startup() == [Send(2, req), Send(3, req)]
    assert e.vote == V(mode, 1, 1, True) and e.state == FOLLOWER     # no term spent unless it wins


@pytest.mark.parametrize("pre_vote", [True, False])
def test_vote_request_from_a_non_member_is_answered_not_member_and_changes_nothing(mode, pre_vote):
    e = voter(mode)
    last = e.last_log_id
    out = e.recv_vote(4, VoteRequest(V(mode, 40, 4), last, pre_vote, False))
    assert out == [Respond(4, VoteResponse(V(mode, 1, 1, True), False, last, pre_vote, True))]
    assert e.vote == V(mode, 1, 1, True)
    # Not even its term counts: our next candidacy is term 2, not 41.
    assert e.elect()[0] == SaveVote(V(mode, 2, 2))


@pytest.mark.parametrize("pre_vote", [False, True])
def test_vote_request_from_an_unknown_node_with_a_longer_log_is_handled_as_usual(mode, pre_vote):
    """A lagging voter does not know the candidate yet, but the candidate's longer log may hold
    a membership that has them both: no not_member answer (the candidate would not believe it
    anyway), the usual vote rules. Else a joint config whose new half includes lagging voters
    never elects anyone (sim: --seed 533 --steps 5000 --mode adv --profile harsh)."""
    e = voter(mode)
    out = e.recv_vote(4, VoteRequest(V(mode, 40, 4), LID(mode, 9, 4, 9), pre_vote, False))
    assert len(out) >= 1 and isinstance(out[-1], Respond)
    assert out[-1].msg.not_member is False


def removed_candidate(mode):
    """Node 3 of {1, 2, 3} whose leader removed it while it was away: it pre-votes."""
    e = restarted_out_of_lease(3, mode, (1, 2, 3), dict(vote=V(mode, 1, 1, committed=True), enable_pre_vote=True,
                               enable_tick=True, log=make_log(mode, Membership({1, 2, 3}), [(1, 1, None)])))
    req = VoteRequest(V(mode, 2, 3), LID(mode, 1, 1, 2), True, False)
    assert e.elect() == [Send(1, req), Send(2, req)]
    return e


def test_not_member_answer_from_an_up_to_date_voter_makes_the_node_not_member_and_quiet(mode):
    e = removed_candidate(mode)
    assert e.recv_vote_response(1, VoteResponse(V(mode, 1, 1, True), False, LID(mode, 1, 1, 4), True, True)) == []
    assert e.state == NOT_MEMBER and e.state_name == "not_member"
    assert e.vote == V(mode, 1, 1, True)
    assert e.elect() == []                              # never stands
    assert e.next_deadline > 1e9                        # no election timer
    assert e.tick(1000.0) == [] and e.state == NOT_MEMBER


def test_not_member_answer_from_a_lagging_voter_is_ignored(mode):
    """A voter that does not know of us yet (its log is behind ours) must not silence us."""
    e = removed_candidate(mode)
    assert e.recv_vote_response(1, VoteResponse(V(mode, 1, 1, True), False, LID(mode, 0, None, 1), True, True)) == []
    assert e.state == FOLLOWER


def test_an_append_from_a_leader_takes_a_told_not_member_node_back(mode):
    e = removed_candidate(mode)
    e.recv_vote_response(1, VoteResponse(V(mode, 1, 1, True), False, LID(mode, 1, 1, 2), True, True))
    assert e.state == NOT_MEMBER
    last = e.last_log_id
    e.recv_append(1, AppendRequest(V(mode, 1, 1, True), last, None, last, 0, 1, 0))
    assert e.state == FOLLOWER


def test_a_node_whose_log_removes_it_is_not_member_and_never_stands(mode):
    e = make_follower(mode, node_id=3, enable_pre_vote=True)
    last = e.last_log_id
    s = S(mode, last.index + 1, (1, 1, Membership({1, 2})))
    out = e.recv_append(1, AppendRequest(V(mode, 1, 1, True), last, s, s.last_log_id, 2, 2, 0))
    # Held but not yet committed: still a voter of the committed config (see the membership tests).
    assert e.state == FOLLOWER
    flush(e, out)                                       # durable: the commit it was sent applies
    assert e.state == NOT_MEMBER
    assert e.elect() == []


def test_a_node_that_pre_votes_names_no_leader_until_it_hears_from_one(mode):
    """Its election timeout passed without word from the leader: clients must not be sent to a
    leader that may be dead (etcd's pre-candidate forgets its leader too)."""
    e = removed_candidate(mode)                         # pre-voting, vote still leader 1's
    assert e.vote == V(mode, 1, 1, True) and e.leader_id is None
    for n in (1, 2):                                    # the round is lost: still no leader named
        e.recv_vote_response(n, VoteResponse(V(mode, 1, 1, True), False, LID(mode, 1, 1, 2), True))
    assert e.leader_id is None
    last = e.last_log_id
    e.recv_append(1, AppendRequest(V(mode, 1, 1, True), last, None, last, 0, 1, 0))
    assert e.leader_id == 1


def test_failed_pre_vote_rounds_do_not_push_terms_up(mode):
    """A pre-vote request's term is only proposed: the voter's next candidacy is still its own
    term + 1, however many pre-vote rounds it refused (and the requester's next round too)."""
    e = restarted_out_of_lease(2, mode, (1, 2, 3), dict(vote=V(mode, 1, 1, committed=True), enable_pre_vote=True,
                               log=make_log(mode, Membership({1, 2, 3}), [(1, 1, None)])))
    last = e.last_log_id
    for term in (2, 3, 4, 5):                       # node 3 keeps pre-voting with higher proposals
        e.recv_vote(3, VoteRequest(V(mode, term, 3), LID(mode, 0, None, 1), True, False))
    assert e.elect() == [Send(1, VoteRequest(V(mode, 2, 2), last, True, False)),
                         Send(3, VoteRequest(V(mode, 2, 2), last, True, False))]
