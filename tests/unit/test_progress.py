"""Unit tests for openraft_fast._core.progress.Progress.

Besides examples of each transition, a property test drives a Progress against a simulated
follower that answers truthfully (Raft's AppendEntries consistency check) and checks that the
leader only ever believes in a prefix that really matches, converges, and probes O(log n) times.
"""
import math
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openraft_fast._core import progress as P
from openraft_fast._core.progress import Progress

PROBE, REPLICATE, SNAPSHOT = P.STATE_PROBE, P.STATE_REPLICATE, P.STATE_SNAPSHOT


def snapshot_state(p):
    return (
        p.state, p.matched, p.next_index, p.searching_end, p.next_msg_id,
        p.inflight.items(), p.inflight.bytes,
    )


def probe_prev(msg):
    assert msg is not None and msg[0] == "logs", msg
    return msg[1] - 1


# ----------------------------------------------------------------------------- examples

def test_state_constants():
    assert len({PROBE, REPLICATE, SNAPSHOT}) == 3
    p = Progress(2, 0, 10)
    assert p.state == PROBE and p.state_name == "probe"
    assert p.node_id == 2 and p.slot == 0 and p.matched == 0
    assert p.inflight.max_count == 64


def test_invalid_init():
    with pytest.raises(ValueError):
        Progress(1, 0, 5, matched=6)
    with pytest.raises(ValueError):
        Progress(1, 0, -1)
    with pytest.raises(ValueError):
        Progress(1, 0, 5, matched=-1)
    with pytest.raises(ValueError):
        Progress(1, 0, 5, max_inflight=0)


def test_first_probe_is_optimistic_at_the_top():
    p = Progress(2, 0, 10)
    assert p.next_send(1, 10, 5) == ("logs", 11, 11)  # prev = 10, no entries
    mid = p.sent()
    assert p.state == PROBE
    # one probe in flight at a time
    assert p.next_send(1, 10, 5) is None
    assert p.on_ack(mid, 10)
    assert p.state == REPLICATE and p.state_name == "replicate"
    assert p.matched == 10
    assert p.next_send(1, 10, 5) is None  # nothing new
    assert p.next_send(1, 13, 5) == ("logs", 11, 14)


def test_probe_optimistic_top_follows_current_last_index():
    p = Progress(2, 0, 10)
    # The leader's log grew before the first send: top of the *known* range is capped.
    assert p.next_send(1, 8, 5) == ("logs", 9, 9)


def test_empty_leader_log_needs_no_probe():
    p = Progress(2, 0, 0)
    assert p.next_send(1, 0, 5) is None
    # entries appear: stream from 1 (the empty prefix trivially matches)
    assert p.next_send(1, 3, 5) == ("logs", 1, 4)


def test_reject_with_hint_probes_right_after_the_hint():
    p = Progress(2, 0, 100)
    assert p.next_send(1, 100, 10) == ("logs", 101, 101)
    mid = p.sent()
    assert p.on_reject(mid, 100, 40)
    assert p.state == PROBE
    assert p.next_send(1, 100, 10) == ("logs", 41, 51)
    mid = p.sent()
    assert p.on_ack(mid, 50)
    assert p.state == REPLICATE and p.matched == 50
    assert p.next_send(1, 100, 10) == ("logs", 51, 61)


def test_hint_above_the_rejected_point_is_ignored():
    p = Progress(2, 0, 100)
    p.next_send(1, 100, 10)
    mid = p.sent()
    assert p.on_reject(mid, 100, -1)
    msg = p.next_send(1, 100, 10)
    mid = p.sent()
    prev = probe_prev(msg)
    # follower is long but conflicts at prev: hint (its last index) is above prev
    assert p.on_reject(mid, prev, 500)
    nxt = probe_prev(p.next_send(1, 100, 10))
    assert 0 <= nxt < prev


def test_reject_without_hint_bisects():
    p = Progress(2, 0, 100)
    p.next_send(1, 100, 10)
    mid = p.sent()
    assert p.on_reject(mid, 100)
    lo, hi = 0, 99  # candidates: the match is in [0, 99]
    for _ in range(4):
        prev = probe_prev(p.next_send(1, 100, 10))
        assert lo < prev <= hi
        assert abs(prev - (lo + hi) / 2) <= 1, (lo, hi, prev)
        mid = p.sent()
        assert p.on_reject(mid, prev)
        hi = prev - 1
    prev = probe_prev(p.next_send(1, 100, 10))
    assert lo < prev <= hi


def test_probe_respects_known_match():
    p = Progress(2, 0, 10, matched=4)
    assert p.matched == 4
    assert p.next_send(1, 10, 3) == ("logs", 11, 11)
    mid = p.sent()
    assert p.on_reject(mid, 10)
    prev = probe_prev(p.next_send(1, 10, 3))
    assert 4 < prev <= 9
    mid = p.sent()
    # a reject below the known match cannot lose it (a durable target keeps acked entries)
    assert p.on_reject(mid, prev, 0)
    assert p.matched == 4
    msg = p.next_send(1, 10, 3)
    assert msg[0] == "logs" and msg[1] >= 5


def test_ack_switches_to_replicate_and_pipelines_until_window_full():
    p = Progress(2, 0, 10, max_inflight=3)
    p.next_send(1, 10, 4)
    assert p.on_ack(p.sent(), 10)
    assert p.state == REPLICATE
    sends = []
    while (m := p.next_send(1, 100, 4)) is not None:
        sends.append((m, p.sent()))
    assert [m for m, _ in sends] == [("logs", 11, 15), ("logs", 15, 19), ("logs", 19, 23)]
    assert p.inflight.full and len(p.inflight) == 3
    # acking the second frees the first two
    assert p.on_ack(sends[1][1], 18)
    assert p.matched == 18 and len(p.inflight) == 1
    assert p.next_send(1, 100, 4) == ("logs", 23, 27)
    p.sent()
    assert p.next_send(1, 100, 4) == ("logs", 27, 31)
    p.sent()
    assert p.next_send(1, 100, 4) is None


def test_replicate_window_limited_by_bytes():
    p = Progress(2, 0, 0, max_inflight=10, max_inflight_bytes=100)
    assert p.next_send(1, 50, 5) == ("logs", 1, 6)
    p.sent(60)
    assert p.next_send(1, 50, 5) == ("logs", 6, 11)
    m2 = p.sent(60)
    assert p.next_send(1, 50, 5) is None  # 120 bytes >= 100
    assert p.on_ack(m2, 10)
    assert p.next_send(1, 50, 5) == ("logs", 11, 16)


def test_message_ids_increase():
    p = Progress(2, 0, 0, max_inflight=5)
    ids = []
    for _ in range(5):
        assert p.next_send(1, 100, 1) is not None
        ids.append(p.sent())
    assert ids == sorted(set(ids))
    assert all(b > a for a, b in zip(ids, ids[1:]))


def test_stale_acks_and_rejects_change_nothing():
    p = Progress(2, 0, 20, max_inflight=4)
    p.next_send(1, 20, 5)
    mid = p.sent()
    before = snapshot_state(p)
    assert p.on_ack(mid + 1, 20) is False
    assert p.on_ack(mid - 1, 20) is False
    assert p.on_reject(mid + 7, 3, 1) is False
    assert snapshot_state(p) == before
    assert p.on_ack(mid, 20)
    # replay of the same ack: stale now
    before = snapshot_state(p)
    assert p.on_ack(mid, 20) is False
    assert p.on_reject(mid, 20, 0) is False
    assert snapshot_state(p) == before
    # replicate with some in flight
    m1 = (p.next_send(1, 40, 5), p.sent())[1]
    m2 = (p.next_send(1, 40, 5), p.sent())[1]
    assert p.on_ack(m1, 25)
    before = snapshot_state(p)
    assert p.on_ack(m1, 25) is False
    assert p.on_ack(m2 + 1, 40) is False
    assert p.on_reject(m1, 22) is False
    assert p.on_reject(m2 + 100, 22) is False
    assert snapshot_state(p) == before


def test_acks_from_before_restart_probe_are_stale():
    p = Progress(2, 0, 5)
    p.next_send(1, 5, 5)
    old = p.sent()
    p.restart_probe(9)
    assert p.state == PROBE and len(p.inflight) == 0
    before = snapshot_state(p)
    assert p.on_ack(old, 5) is False
    assert p.on_reject(old, 5) is False
    assert snapshot_state(p) == before
    assert p.next_send(1, 9, 5) == ("logs", 10, 10)


def test_reject_in_replicate_falls_back_to_probe():
    p = Progress(2, 0, 10, max_inflight=4)
    p.next_send(1, 10, 5)
    assert p.on_ack(p.sent(), 10)
    m1 = (p.next_send(1, 30, 5), p.sent())[1]
    m2 = (p.next_send(1, 30, 5), p.sent())[1]
    assert p.on_reject(m1, 10, 7)  # (e.g. the follower lost its tail after a restart)
    assert p.state == PROBE
    assert len(p.inflight) == 0
    assert p.on_ack(m2, 20) is False  # built on the same wrong assumption
    assert p.matched == 10


def test_probe_needs_snapshot_when_entries_are_purged():
    # leader purged up to 50: first_index 51
    p = Progress(2, 0, 100)
    assert p.next_send(51, 100, 10) == ("logs", 101, 101)
    mid = p.sent()
    assert p.on_reject(mid, 100, 0)  # follower is empty
    assert p.next_send(51, 100, 10) == ("snapshot",)


def test_replicate_needs_snapshot_when_entries_are_purged():
    p = Progress(2, 0, 10)
    p.next_send(1, 10, 5)
    assert p.on_ack(p.sent(), 10)
    assert p.next_send(11, 30, 5) == ("logs", 11, 16)  # prev 10 is the purged id: fine
    p2 = Progress(3, 1, 10)
    p2.next_send(1, 10, 5)
    assert p2.on_ack(p2.sent(), 10)
    assert p2.next_send(12, 30, 5) == ("snapshot",)


def test_probe_never_reaches_below_the_purge_point():
    p = Progress(2, 0, 100)
    p.next_send(41, 100, 10)
    mid = p.sent()
    assert p.on_reject(mid, 100)
    m = p.next_send(41, 100, 10)
    assert m[0] == "logs" and m[1] >= 41


def test_snapshot_flow_success():
    p = Progress(2, 0, 100)
    p.next_send(51, 100, 10)
    p.on_reject(p.sent(), 100, 0)
    assert p.next_send(51, 100, 10) == ("snapshot",)
    sid = p.begin_snapshot(50)
    assert p.state == SNAPSHOT and p.state_name == "snapshot"
    assert p.next_send(51, 100, 10) is None
    before = snapshot_state(p)
    assert p.on_ack(sid, 50) is False
    assert p.on_reject(sid, 50) is False
    assert p.on_snapshot(sid + 1, 50) is False
    assert p.on_snapshot(sid - 1, 50) is False
    assert snapshot_state(p) == before
    assert p.on_snapshot(sid, 50, True)
    assert p.matched == 50 and p.state != SNAPSHOT
    assert p.on_snapshot(sid, 50, True) is False  # only once
    assert p.next_send(51, 100, 10) == ("logs", 51, 61)
    assert p.state == REPLICATE


def test_snapshot_flow_failure_retries_snapshot():
    p = Progress(2, 0, 100, matched=0)
    sid = p.begin_snapshot(50)
    assert p.on_snapshot(sid, 50, False)
    assert p.matched == 0 and p.state != SNAPSHOT
    assert p.next_send(51, 100, 10) == ("snapshot",)
    sid2 = p.begin_snapshot(60)
    assert sid2 > sid
    assert p.on_snapshot(sid2, 60)
    assert p.matched == 60
    assert p.next_send(61, 100, 10) == ("logs", 61, 71)


def test_repr_mentions_state():
    p = Progress(9, 3, 10)
    assert "probe" in repr(p) and "9" in repr(p)


# ----------------------------------------------------------------------------- simulation

class Follower:
    """A Raft follower's log (terms, index 1 = terms[0]) answering AppendEntries truthfully."""

    def __init__(self, terms, hints):
        self.terms = list(terms)
        self.hints = hints

    def has(self, index, leader):
        return index == 0 or (index <= len(self.terms) and self.terms[index - 1] == leader[index - 1])

    def append(self, leader, start, end):
        prev = start - 1
        if not self.has(prev, leader):
            return ("reject", prev, len(self.terms) if self.hints else -1)
        for i in range(start, end):
            if i <= len(self.terms):
                if self.terms[i - 1] != leader[i - 1]:
                    del self.terms[i - 1:]
                    self.terms.append(leader[i - 1])
            else:
                self.terms.append(leader[i - 1])
        return ("ack", end - 1)

    def install_snapshot(self, leader, index):
        if len(self.terms) >= index and self.terms[index - 1] == leader[index - 1]:
            return  # keeps its (matching) log
        self.terms = list(leader[:index])


def nondecreasing(draw, n, start, parity):
    out, t = [], start
    for _ in range(n):
        t += draw(st.integers(0, 2))
        if t % 2 != parity:
            t += 1
        out.append(t)
    return out


@st.composite
def scenarios(draw):
    n = draw(st.integers(0, 80))
    leader = nondecreasing(draw, n, 0, 0)  # even terms
    m = draw(st.integers(0, n))  # length of the true common prefix
    extra = draw(st.integers(0, 40))
    base = leader[m - 1] if m else 0
    follower = leader[:m] + nondecreasing(draw, extra, base, 1)  # odd terms: never match
    return dict(
        leader=leader,
        follower=follower,
        lcp=m,
        hints=draw(st.booleans()),
        max_entries=draw(st.integers(1, 12)),
        max_inflight=draw(st.integers(1, 6)),
        purged=draw(st.one_of(st.just(0), st.integers(0, n))),
        deliver_late=draw(st.lists(st.booleans(), min_size=1, max_size=20)),
        known=draw(st.integers(0, 100)),
    )


def run(sc):
    leader, n = sc["leader"], len(sc["leader"])
    first = sc["purged"] + 1
    f = Follower(sc["follower"], sc["hints"])
    known = min(sc["known"], sc["lcp"]) if sc["known"] < 50 else 0
    p = Progress(5, 0, n, max_inflight=sc["max_inflight"], matched=known)
    queue = deque()
    probes = 0
    steps = 0
    late = sc["deliver_late"]

    def check_matched():
        assert f.terms[: p.matched] == leader[: p.matched], (p, f.terms, leader)

    def deliver():
        kind, mid, payload = queue.popleft()
        if kind == "snap":
            f.install_snapshot(leader, payload)
            assert p.on_snapshot(mid, payload, True)
            return
        start, end = payload
        ans = f.append(leader, start, end)
        if ans[0] == "ack":
            assert p.on_ack(mid, ans[1]), (p, ans)
        else:
            assert p.on_reject(mid, ans[1], ans[2]), (p, ans)

    while True:
        steps += 1
        assert steps < 10_000, p
        msg = p.next_send(first, n, sc["max_entries"])
        check_matched()
        if msg is None:
            if queue:
                deliver()
                check_matched()
                continue
            break
        if msg[0] == "snapshot":
            assert first > 1
            assert not queue
            mid = p.begin_snapshot(first - 1)
            queue.append(("snap", mid, first - 1))
        else:
            _, start, end = msg
            assert first <= start <= end <= n + 1, msg
            assert end - start <= sc["max_entries"]
            if p.state == PROBE:
                probes += 1
                assert not queue  # one probe at a time
            else:
                assert p.state == REPLICATE
                # streaming continues where the previous message ended (no gap, no overlap)
                expect_start = queue[-1][2][1] if queue else p.matched + 1
                assert start == expect_start, (msg, list(queue), p)
            mid = p.sent()
            queue.append(("logs", mid, (start, end)))
        # pipeline: sometimes send more before delivering
        if p.state != REPLICATE or not late[steps % len(late)]:
            deliver()
            check_matched()
    return p, f, probes


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_probe_against_truthful_follower(sc):
    leader, n = sc["leader"], len(sc["leader"])
    p, f, probes = run(sc)
    assert p.state == REPLICATE
    assert p.matched == n
    assert f.terms[:n] == leader
    assert len(p.inflight) == 0
    if sc["purged"] == 0:
        # O(log n) probes: at most the optimistic top probe, then a bisection
        assert probes <= 2 + math.ceil(math.log2(n + 1)), (probes, n)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 2000), st.data())
def test_probe_rounds_logarithmic_without_hints(n, data):
    """A follower that conflicts at every index but agrees on the first `m`."""
    m = data.draw(st.integers(0, n))
    leader = [2] * n
    follower = [2] * m + [1] * data.draw(st.integers(0, n - m + 5))
    f = Follower(follower, hints=False)
    p = Progress(5, 0, n)
    rounds = 0
    while p.state == PROBE:
        msg = p.next_send(1, n, 1)
        if p.state != PROBE:
            break
        rounds += 1
        assert rounds <= 2 + math.ceil(math.log2(n + 1)), (rounds, n, m)
        mid = p.sent()
        ans = f.append(leader, msg[1], msg[2])
        if ans[0] == "ack":
            assert p.on_ack(mid, ans[1])
        else:
            assert p.on_reject(mid, ans[1], ans[2])
        assert f.terms[: p.matched] == leader[: p.matched]
    # reached replicate at a point that truly matches
    assert p.state == REPLICATE
    assert f.terms[: p.matched] == leader[: p.matched]
