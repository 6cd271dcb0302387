"""Unit tests for openraft_fast._core.tracker.ProgressTracker.

The quorum-accepted index is compared with a brute-force committed index over a plain dict
of matched indexes (joint majorities written from the definition).
"""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openraft_fast._core.progress import STATE_PROBE, Progress
from openraft_fast._core.quorum import Joint, Majority, from_configs
from openraft_fast._core.tracker import ProgressTracker


def is_write_quorum(configs, s):
    return all(2 * len(set(c) & s) > len(set(c)) for c in configs)


def brute_committed(configs, matched):
    voters = set().union(*map(set, configs))
    top = max([matched.get(v, 0) for v in voters] + [0])
    for k in range(top, 0, -1):
        if is_write_quorum(configs, {v for v in voters if matched.get(v, 0) >= k}):
            return k
    return 0


voter_lists = st.lists(st.integers(0, 7), min_size=1, max_size=5, unique=True)


@st.composite
def setups(draw):
    configs = draw(st.lists(voter_lists, min_size=1, max_size=2))
    voters = sorted(set().union(*map(set, configs)))
    learners = draw(st.lists(st.integers(8, 11), max_size=3, unique=True))
    # self is usually a voter; sometimes a leader that is leaving (not a voter)
    self_id = draw(st.one_of(st.sampled_from(voters), st.just(20)))
    self_matched = draw(st.integers(0, 10))
    everyone = voters + learners + [self_id]
    updates = draw(st.lists(st.tuples(st.sampled_from(everyone), st.integers(0, 30)), max_size=60))
    return configs, voters, learners, self_id, self_matched, updates


@settings(max_examples=300, deadline=None)
@given(setups())
def test_update_returns_brute_force_committed_index(setup):
    configs, voters, learners, self_id, self_matched, updates = setup
    qs = from_configs([set(c) for c in configs])
    targets = voters + learners  # may contain self: skipped
    t = ProgressTracker(qs, self_id, targets, 10, self_matched=self_matched)
    matched = {v: 0 for v in voters}
    if self_id in matched:
        matched[self_id] = self_matched
    assert t.accepted == brute_committed(configs, matched)
    assert self_id not in t.progress
    assert set(t.progress) == set(targets) - {self_id}
    for node, index in updates:
        before = t.accepted
        got = t.update(node, index)
        if node in matched:
            matched[node] = max(matched[node], index)
        else:
            assert got == before  # learners (and a non-voter self) never move it
        expect = brute_committed(configs, matched)
        assert got == expect, (node, index, matched)
        assert t.accepted == expect
        for v in voters:
            assert t.matched(v) == matched[v]


def test_learner_updates_never_change_accepted():
    qs = Majority([1, 2, 3])
    t = ProgressTracker(qs, 1, [2, 3, 4, 5], 0, self_matched=0)
    assert t[4].slot == -1 and t[5].slot == -1
    for i in range(1, 50):
        assert t.update(4, i) == 0
        assert t.update(5, i * 2) == 0
    assert t.update(1, 7) == 0
    assert t.update(2, 5) == 5
    assert t.update(4, 100) == 5
    assert t.update(3, 6) == 6
    assert t.update(2, 3) == 6  # going backwards is ignored
    assert t.matched(2) == 5


def test_joint_accepted_index():
    qs = Joint([Majority([1, 2, 3]), Majority([3, 4, 5])])
    t = ProgressTracker(qs, 1, [2, 3, 4, 5], 10, self_matched=10)
    assert t.update(2, 9) == 0  # old config has a majority at 9, new has nothing
    assert t.update(4, 8) == 0
    assert t.update(5, 7) == 7
    # old {1,2,3}: 10,10,9 -> 10; new {3,4,5}: 10,8,7 -> 8
    assert t.update(3, 10) == 8
    assert t.accepted == 8


def test_progress_objects_and_slots():
    qs = from_configs([{1, 2, 3}])
    t = ProgressTracker(qs, 1, [1, 2, 3, 9], 42, max_inflight=7)
    assert set(t.progress) == {2, 3, 9}
    assert 2 in t and 1 not in t and 9 in t
    for v in (2, 3):
        assert isinstance(t[v], Progress)
        assert t[v].slot == qs.slot_of(v) >= 0
        assert t[v].node_id == v
        assert t[v].inflight.max_count == 7
        # fresh progress probes at the leader's last index
        assert t[v].next_send(1, 42, 10) == ("logs", 43, 43)
    assert t[9].slot == -1
    assert t.self_slot == qs.slot_of(1)
    assert t.matched(77) is None
    assert t.matched(9) == 0
    assert "accepted" in repr(t)


def test_leader_not_a_voter():
    qs = Majority([2, 3, 4])
    t = ProgressTracker(qs, 1, [2, 3, 4], 5, self_matched=5)
    assert t.self_slot == -1
    assert t.update(1, 100) == 0
    assert t.update(2, 3) == 0
    assert t.update(4, 4) == 3


def test_voter_missing_from_targets_raises():
    with pytest.raises(ValueError):
        ProgressTracker(Majority([1, 2, 3]), 1, [2], 0)
    with pytest.raises(ValueError):
        ProgressTracker(Joint([Majority([1, 2]), Majority([2, 3])]), 1, [2], 0)
    with pytest.raises(TypeError):
        ProgressTracker(None, 1, [2], 0)


def _ack(p, last):
    """Drive a Progress to `last` the way the runtime does: probe at the top, ack it."""
    msg = p.next_send(1, last, 100)
    assert msg is not None and msg[0] == "logs"
    assert p.on_ack(p.sent(), last)
    return p.matched


def test_previous_carries_progress_over():
    q1 = from_configs([{1, 2, 3}])
    t1 = ProgressTracker(q1, 1, [2, 3, 7], 10, self_matched=10)
    for node, last in ((2, 10), (7, 10)):
        m = _ack(t1[node], last)
        t1.update(node, m)
    assert t1.accepted == 10
    # C_old -> C_old,new: 3 stays, 4 and 5 join, 7 (a learner) is promoted
    q2 = from_configs([{1, 2, 3}, {3, 4, 5, 7}])
    t2 = ProgressTracker(q2, 1, [2, 3, 4, 5, 7], 10, previous=t1, self_matched=0)
    assert t2[2] is t1[2] and t2[3] is t1[3] and t2[7] is t1[7]
    assert t2[4] is not None and t2[4].matched == 0
    for v in (2, 3, 4, 5, 7):
        assert t2[v].slot == q2.slot_of(v)
    assert t2.matched(2) == 10 and t2.matched(7) == 10 and t2.matched(4) == 0
    assert t2.matched(1) == 10  # self carried over (max with self_matched=0)
    matched = {1: 10, 2: 10, 3: 0, 4: 0, 5: 0, 7: 10}
    configs = [{1, 2, 3}, {3, 4, 5, 7}]
    assert t2.accepted == brute_committed(configs, matched) == 0
    # the new config {3,4,5,7} needs 3 of 4 at the index
    matched[4] = 10
    assert t2.update(4, 10) == brute_committed(configs, matched) == 0
    matched[3] = 10
    assert t2.update(3, 10) == brute_committed(configs, matched) == 10


def test_previous_keeps_matched_index_reported_by_tracker():
    """`previous=` keeps each target's matched index: what t.matched() reported must survive."""
    q1 = Majority([1, 2, 3])
    t1 = ProgressTracker(q1, 1, [2, 3], 10, self_matched=10)
    assert t1.update(2, 7) == 7
    assert t1.matched(2) == 7
    q2 = Majority([1, 2, 3, 4])
    t2 = ProgressTracker(q2, 1, [2, 3, 4], 10, previous=t1)
    assert t2.matched(2) == 7
    assert t2.accepted == brute_committed([{1, 2, 3, 4}], {1: 10, 2: 7})


def test_previous_demotes_voter_to_learner():
    q1 = Majority([1, 2, 3])
    t1 = ProgressTracker(q1, 1, [2, 3], 5, self_matched=5)
    t1.update(3, _ack(t1[3], 5))
    q2 = Majority([1, 2])
    t2 = ProgressTracker(q2, 1, [2, 3], 5, previous=t1, self_matched=5)
    assert t2[3] is t1[3] and t2[3].slot == -1
    assert t2.matched(3) == 5  # via its Progress
    assert t2.accepted == 0
    assert t2.update(3, 9) == 0
    assert t2.update(2, 4) == 4


def drive(p, index, last=30):
    """Bring Progress `p` to matched == index as the runtime would, against a follower whose
    log matches ours up to `index` and ends there."""
    for _ in range(200):
        if p.matched >= index:
            return
        if p.state == STATE_PROBE:
            msg = p.next_send(1, last, 0)
            mid = p.sent()
            prev = msg[1] - 1
            if p.state == STATE_PROBE and prev > index:
                assert p.on_reject(mid, prev, index)
            else:
                assert p.on_ack(mid, msg[2] - 1)
        else:
            msg = p.next_send(1, last, index - p.next_index + 1)
            mid = p.sent()
            assert p.on_ack(mid, msg[2] - 1)
    raise AssertionError(p)


@settings(max_examples=200, deadline=None)
@given(setups(), voter_lists, st.data())
def test_previous_then_updates_match_brute_force(setup, new_voters, data):
    configs, voters, learners, self_id, self_matched, updates = setup
    qs = from_configs([set(c) for c in configs])
    t1 = ProgressTracker(qs, self_id, voters + learners, 30, self_matched=self_matched)
    matched = {self_id: self_matched}
    for node, index in updates:
        if node == self_id:
            matched[node] = max(matched[node], index)
            t1.update(node, index)
            continue
        p = t1[node]
        drive(p, index)
        matched[node] = max(matched.get(node, 0), index)
        assert p.matched == matched[node]
        t1.update(node, p.matched)
    configs2 = [set(new_voters)] if data.draw(st.booleans()) else [set(configs[-1]), set(new_voters)]
    q2 = from_configs(configs2)
    voters2 = set().union(*configs2)
    targets2 = sorted(voters2 | set(learners))
    t2 = ProgressTracker(q2, self_id, targets2, 30, previous=t1)
    model = {v: matched.get(v, 0) for v in voters2}
    if self_id in voters2 and t1.self_slot < 0:
        model[self_id] = 0  # a leader that was not a voter had no tracked index
    assert t2.accepted == brute_committed(configs2, model), (model, configs2)
    for v in voters2:
        assert t2.matched(v) == model[v]
    for v in set(targets2) - {self_id}:
        assert t2[v].slot == q2.slot_of(v)
        if v in t1.progress:
            assert t2[v] is t1[v]
    more = data.draw(st.lists(st.tuples(st.sampled_from(sorted(voters2)), st.integers(0, 40)), max_size=20))
    for node, index in more:
        model[node] = max(model[node], index)
        assert t2.update(node, index) == brute_committed(configs2, model)
