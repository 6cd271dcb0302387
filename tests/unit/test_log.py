"""Unit tests for openraft_fast._core.log: LogBuffer and LogSlice, against a plain-list model."""
import pickle
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openraft_fast._core import types as T
from openraft_fast._core.log import LogBuffer, LogSlice
from openraft_fast._core.types import Entry, LeaderId, LogId, Membership, Node

NORMAL, BLANK, MEMBERSHIP = T.NORMAL, T.BLANK, T.MEMBERSHIP
MEMBERSHIPS = [Membership({1, 2, 3}), Membership([{1, 2, 3}, {3, 4}]), Membership({5}, nodes={5: Node("a"), 6: Node("b")})]


def psize(p):
    return len(p) if type(p) is bytes else 0


class Model:
    """The log as a dict index -> (committed leader id, payload, kind), plus the purged id."""

    def __init__(self, purged=None):
        self.reset(purged)

    def reset(self, purged):
        self.purged = purged
        self.first = 1 if purged is None else purged.index + 1
        self.e = {}

    @property
    def last(self):
        return self.first - 1 + len(self.e)

    def append(self, leader, payloads, kind):
        c = leader.to_committed()
        for p in payloads:
            self.e[self.last + 1] = (c, p, kind)

    def leader_at(self, i):
        if i in self.e:
            return self.e[i][0]
        if self.purged is not None and i == self.purged.index:
            return self.purged.leader_id
        return None

    def truncate_after(self, i):
        for k in [k for k in self.e if k > i]:
            del self.e[k]

    def purge_upto(self, i):
        if i < self.first:
            return
        self.purged = LogId(self.leader_at(i), i)
        for k in [k for k in self.e if k <= i]:
            del self.e[k]
        self.first = i + 1

    def first_conflict(self, s_start, s_leaders):
        """s_leaders[i - s_start] is the committed leader id of slice entry i."""
        purged_index = self.first - 1
        for off, lid in enumerate(s_leaders):
            i = s_start + off
            if i <= purged_index:
                continue  # committed: matches
            if i > self.last or self.e[i][0] != lid:
                return i
        return s_start + len(s_leaders)


def check_slice(s, model, start, stop):
    assert (s.start, s.stop, len(s)) == (start, stop, stop - start)
    assert s.payloads == [model.e[i][1] for i in range(start, stop)]
    assert s.kinds == bytes(model.e[i][2] for i in range(start, stop))
    assert s.nbytes == sum(psize(model.e[i][1]) for i in range(start, stop))
    for i in range(start, stop):
        assert s.leader_id_at(i) == model.e[i][0]
        assert s.log_id_at(i) == LogId(model.e[i][0], i)
    assert s.leader_id_at(start - 1) is None and s.leader_id_at(stop) is None
    runs = s.runs
    if stop > start:
        assert runs[0][0] == start
        assert all(a[0] < b[0] for a, b in zip(runs, runs[1:]))
        assert all(start <= f < stop for f, _ in runs)
        assert s.last_log_id == LogId(model.e[stop - 1][0], stop - 1)
    else:
        assert runs == () and s.last_log_id is None
    ents = s.entries()
    assert ents == [Entry(LogId(model.e[i][0], i), model.e[i][1], model.e[i][2]) for i in range(start, stop)]


def check(buf, model, rnd=None):
    assert buf.first_index == model.first
    assert buf.last_index == model.last
    assert len(buf) == model.last - model.first + 1
    assert buf.purged == model.purged
    if model.purged is not None:
        assert buf.purged.index == model.purged.index
    last_lid = model.leader_at(model.last)
    assert buf.last_log_id == (None if last_lid is None else LogId(last_lid, model.last))
    for i in range(model.first - 3, model.last + 3):
        lid = model.leader_at(i)
        assert buf.leader_id_at(i) == lid, i
        assert buf.log_id_at(i) == (None if lid is None else LogId(lid, i)), i
        if model.first <= i <= model.last:
            assert buf.payload_at(i) == model.e[i][1]
            assert buf.kind_at(i) == model.e[i][2]
        else:
            with pytest.raises(IndexError):
                buf.payload_at(i)
            with pytest.raises(IndexError):
                buf.kind_at(i)
    if rnd is not None:
        a = rnd.randint(model.first, model.last + 1)
        b = rnd.randint(a, model.last + 1)
        check_slice(buf.slice(a, b), model, a, b)
        assert buf.nbytes(a, b) == sum(psize(model.e[i][1]) for i in range(a, b))
        assert buf.entries(a, b) == buf.slice(a, b).entries()
        # out of range
        with pytest.raises(IndexError):
            buf.slice(model.first - 1, b)
        with pytest.raises(IndexError):
            buf.slice(a, model.last + 2)
        if b > a:
            with pytest.raises(IndexError):
                buf.slice(b, a)
            with pytest.raises(IndexError):
                buf.nbytes(b, a)
        with pytest.raises(IndexError):
            buf.nbytes(model.first - 1, b)
        with pytest.raises(IndexError):
            buf.nbytes(a, model.last + 2)


# ----------------------------------------------------------------------------- strategies

normal_payloads = st.one_of(st.binary(max_size=12), st.sampled_from(["", "s", "text"]), st.integers(-5, 1 << 40), st.none())


@st.composite
def batches(draw):
    kind = draw(st.sampled_from([NORMAL, NORMAL, NORMAL, BLANK, MEMBERSHIP]))
    n = draw(st.integers(0, 8))
    if kind == NORMAL:
        return kind, draw(st.lists(normal_payloads, min_size=n, max_size=n))
    if kind == BLANK:
        return kind, [None] * n
    return kind, [draw(st.sampled_from(MEMBERSHIPS)) for _ in range(n)]


class Leaders:
    """Non-decreasing leader ids (advanced or std mode)."""

    def __init__(self, std):
        self.std = std
        self.term, self.node = 1, 0

    def next(self, data):
        step = data.draw(st.sampled_from(["same", "same", "node", "term"]))
        if step == "term":
            self.term += data.draw(st.integers(1, 2))
            self.node = data.draw(st.integers(0, 3))
        elif step == "node" and not self.std:
            self.node += 1
        return LeaderId(self.term, self.node, std=self.std)


def random_slice(rnd, model, leaders):
    """A slice that shares some of our log then (maybe) diverges to other leaders."""
    lo = max(1, model.first - 3)
    start = rnd.randint(lo, model.last + 3)
    n = rnd.randint(0, 12)
    diverge = rnd.randint(start, start + n)
    s_leaders, payloads, kinds = [], [], []
    bump = LeaderId(leaders.term + 5 + rnd.randint(0, 3), rnd.randint(0, 3), std=leaders.std)
    for i in range(start, start + n):
        lid = model.leader_at(i) if i < diverge else None
        if lid is None:
            lid = bump.to_committed()
            if rnd.random() < 0.5:
                bump = LeaderId(bump.term + 1, bump.node_id, std=leaders.std)
        s_leaders.append(lid)
        payloads.append(model.e[i][1] if i in model.e and i < diverge else b"o%d" % i)
        kinds.append(model.e[i][2] if i in model.e and i < diverge else NORMAL)
    runs = []
    split = rnd.random() < 0.5  # redundant runs (same leader, new run) are allowed too
    for off, lid in enumerate(s_leaders):
        if split or not runs or runs[-1][1] != lid:
            runs.append((start + off, lid))
    return LogSlice(start, payloads, bytes(kinds), runs), s_leaders


# ----------------------------------------------------------------------------- model test

@settings(max_examples=200, deadline=None)
@given(st.data(), st.booleans(), st.booleans(), st.integers(0, 2**32))
def test_log_buffer_matches_model(data, std, start_purged, seed):
    rnd = random.Random(seed)  # fine-grained choices (slice bounds, divergent slices)
    leaders = Leaders(std)
    purged = LogId(LeaderId(1, 0, std=std), data.draw(st.integers(1, 50))) if start_purged else None
    buf, model = LogBuffer(purged), Model(purged)
    check(buf, model, rnd)
    for _ in range(data.draw(st.integers(1, 30))):
        op = data.draw(st.sampled_from(["append", "append", "append", "truncate", "purge", "reset", "conflict", "sync"]))
        if op == "append":
            kind, payloads = data.draw(batches())
            leader = leaders.next(data)
            assert buf.append(leader, payloads, kind) == model.last + len(payloads)
            model.append(leader, payloads, kind)
        elif op == "truncate":
            i = data.draw(st.integers(model.first - 1, model.last + 2))
            buf.truncate_after(i)
            model.truncate_after(i)
            if data.draw(st.booleans()):
                with pytest.raises(ValueError):
                    buf.truncate_after(model.first - 2)
        elif op == "purge":
            i = data.draw(st.integers(model.first - 2, model.last))
            buf.purge_upto(i)
            model.purge_upto(i)
            with pytest.raises(ValueError):
                buf.purge_upto(model.last + 1)
        elif op == "reset":
            if data.draw(st.booleans()):
                p = None
            else:
                p = LogId(leaders.next(data), data.draw(st.integers(0, model.last + 20)))
            buf.reset(p)
            model.reset(p)
        elif op in ("conflict", "sync"):
            s, s_leaders = random_slice(rnd, model, leaders)
            c = buf.first_conflict(s)
            assert c == model.first_conflict(s.start, s_leaders), (s, s_leaders)
            if op == "sync" and s.start <= model.last + 1:
                # follower path: drop the conflicting tail, append the rest of the slice
                if c < s.stop:
                    buf.truncate_after(c - 1)
                    model.truncate_after(c - 1)
                    assert buf.append_slice(s, c) == s.stop - 1
                    for i in range(c, s.stop):
                        model.e[i] = (s_leaders[i - s.start], s.payloads[i - s.start], s.kinds[i - s.start])
                assert buf.first_conflict(s) == s.stop
        check(buf, model, rnd)


def test_append_returns_last_index_and_merges_leaders():
    buf = LogBuffer()
    assert buf.last_index == 0 and buf.first_index == 1 and len(buf) == 0
    assert buf.last_log_id is None and buf.purged is None
    l1, l2 = LeaderId(1, 1), LeaderId(2, 1)
    assert buf.append(l1, [b"a", b"bb"]) == 2
    assert buf.append(l1, []) == 2
    assert buf.append(l1, [b"ccc"]) == 3
    assert buf.append(l2, [None], BLANK) == 4
    assert buf.append(l2, [MEMBERSHIPS[0]], MEMBERSHIP) == 5
    assert buf.log_id_at(3) == LogId(l1, 3) and buf.log_id_at(4) == LogId(l2, 4)
    assert buf.nbytes(1, 6) == 6
    assert buf.kind_at(4) == BLANK and buf.kind_at(5) == MEMBERSHIP and buf.kind_at(1) == NORMAL
    assert buf.entries(3, 6) == [
        Entry(LogId(l1, 3), b"ccc"),
        Entry.blank(LogId(l2, 4)),
        Entry.membership(LogId(l2, 5), MEMBERSHIPS[0]),
    ]


def test_nbytes_counts_only_bytes_payloads():
    buf = LogBuffer()
    buf.append(LeaderId(1, 1), [b"abcd", "text", 12345, None, b"", b"xy", [1, 2]])
    assert buf.nbytes(1, 8) == 6
    assert buf.slice(1, 8).nbytes == 6
    assert buf.nbytes(2, 6) == 0
    assert buf.nbytes(3, 3) == 0


def test_std_mode_keeps_only_term():
    buf = LogBuffer()
    buf.append(LeaderId(2, 5, std=True), [b"x", b"y"])
    buf.append(LeaderId(2, 7, std=True), [b"z"])  # same term: same committed id
    assert buf.leader_id_at(1) == LeaderId(2, None, std=True)
    assert buf.leader_id_at(3) == LeaderId(2, None, std=True)
    assert buf.leader_id_at(1).node_id is None
    assert buf.log_id_at(3) == LogId(LeaderId(2, 1, std=True), 3)
    s = buf.slice(1, 4)
    assert s.leader_id_at(2) == LeaderId(2, None, std=True)


def test_append_rejects_bad_kinds_without_changing_the_log():
    buf = LogBuffer()
    buf.append(LeaderId(1, 1), [b"a"])
    with pytest.raises(ValueError):
        buf.append(LeaderId(1, 1), [None, b"x"], BLANK)
    with pytest.raises(TypeError):
        buf.append(LeaderId(1, 1), [MEMBERSHIPS[0], b"x"], MEMBERSHIP)
    with pytest.raises(ValueError):
        buf.append(LeaderId(1, 1), [None], 7)
    with pytest.raises(TypeError):
        buf.append(None, [b"x"])
    assert buf.last_index == 1 and buf.payload_at(1) == b"a"
    assert buf.append(LeaderId(1, 1), [b"b"]) == 2


def test_purge_remembers_log_id_and_drops_entries():
    buf = LogBuffer()
    l1, l2 = LeaderId(1, 1), LeaderId(3, 2)
    buf.append(l1, [b"a"] * 5)
    buf.append(l2, [b"bb"] * 5)
    buf.purge_upto(3)
    assert buf.purged == LogId(l1, 3)
    assert buf.first_index == 4 and buf.last_index == 10 and len(buf) == 7
    assert buf.log_id_at(3) == LogId(l1, 3)
    assert buf.leader_id_at(2) is None and buf.log_id_at(2) is None
    for bad in (1, 2, 3):
        with pytest.raises(IndexError):
            buf.payload_at(bad)
        with pytest.raises(IndexError):
            buf.slice(bad, 5)
        with pytest.raises(IndexError):
            buf.nbytes(bad, 5)
    assert buf.nbytes(4, 11) == 2 * 1 + 5 * 2
    buf.purge_upto(2)  # below the purge point: nothing happens
    assert buf.purged == LogId(l1, 3) and buf.first_index == 4
    buf.purge_upto(7)
    assert buf.purged == LogId(l2, 7) and buf.leader_id_at(6) is None
    with pytest.raises(ValueError):
        buf.purge_upto(11)
    buf.purge_upto(10)  # everything
    assert len(buf) == 0 and buf.last_log_id == LogId(l2, 10) and buf.first_index == 11
    assert buf.append(l2, [b"c"]) == 11
    assert buf.slice(11, 12).runs == ((11, l2),)


def test_truncate_after():
    buf = LogBuffer()
    l1, l2 = LeaderId(1, 1), LeaderId(2, 1)
    buf.append(l1, [b"a"] * 3)
    buf.append(l2, [b"b"] * 3)
    buf.truncate_after(10)  # beyond the end: nothing
    assert buf.last_index == 6
    buf.truncate_after(4)
    assert buf.last_index == 4 and buf.log_id_at(4) == LogId(l2, 4) and buf.log_id_at(5) is None
    buf.truncate_after(2)
    assert buf.last_log_id == LogId(l1, 2)
    assert buf.append(LeaderId(3, 1), [b"c"]) == 3
    assert buf.log_id_at(3) == LogId(LeaderId(3, 1), 3)
    buf.purge_upto(2)
    with pytest.raises(ValueError):
        buf.truncate_after(0)
    buf.truncate_after(2)  # down to the purge point
    assert len(buf) == 0 and buf.last_log_id == LogId(l1, 2)


def test_reset():
    buf = LogBuffer()
    buf.append(LeaderId(1, 1), [b"a"] * 10)
    p = LogId(LeaderId(4, 2), 100)
    buf.reset(p)
    assert buf.purged == p and buf.first_index == 101 and buf.last_index == 100 and len(buf) == 0
    assert buf.log_id_at(100) == p and buf.leader_id_at(100) == LeaderId(4, 2)
    assert buf.log_id_at(99) is None and buf.log_id_at(5) is None
    assert buf.last_log_id == p
    assert buf.append(LeaderId(4, 2), [b"x"]) == 101
    assert buf.append(LeaderId(5, 0), [b"y"]) == 102
    assert buf.slice(101, 103).runs == ((101, LeaderId(4, 2)), (102, LeaderId(5, 0)))
    buf.reset()
    assert buf.purged is None and buf.first_index == 1 and buf.last_index == 0
    assert buf.log_id_at(0) is None
    assert LogBuffer(p).log_id_at(100) == p


def test_first_conflict_examples():
    l1, l2, l3 = LeaderId(1, 1), LeaderId(2, 1), LeaderId(3, 1)
    buf = LogBuffer()
    buf.append(l1, [b"a"] * 5)
    buf.append(l2, [b"b"] * 5)  # 6..10 by l2

    def sl(start, leaders):
        runs = []
        for i, lid in enumerate(leaders):
            if not runs or runs[-1][1] != lid:
                runs.append((start + i, lid))
        return LogSlice(start, [b"?"] * len(leaders), None, runs)

    assert buf.first_conflict(sl(1, [l1] * 5 + [l2] * 5)) == 11  # identical: s.stop
    assert buf.first_conflict(sl(3, [l1] * 3 + [l2] * 2)) == 8
    assert buf.first_conflict(sl(3, [l1] * 3 + [l3] * 2)) == 6
    assert buf.first_conflict(sl(9, [l2] * 2 + [l3] * 3)) == 11  # we lack 11
    assert buf.first_conflict(sl(11, [l3] * 2)) == 11
    assert buf.first_conflict(sl(14, [l3] * 2)) == 14
    assert buf.first_conflict(sl(2, [l2] * 3)) == 2
    empty = LogSlice(4, [])
    assert buf.first_conflict(empty) == 4
    buf.purge_upto(7)
    # purged entries are committed: they count as matching whatever the slice says
    assert buf.first_conflict(sl(2, [l3] * 6)) == 8
    assert buf.first_conflict(sl(2, [l3] * 4)) == 6
    assert buf.first_conflict(sl(6, [l2] * 5 + [l3])) == 11


def test_append_slice_after_truncate_reproduces_other_log():
    la, lb, lc = LeaderId(1, 1), LeaderId(2, 2), LeaderId(3, 3)
    leader = LogBuffer()
    leader.append(la, [b"x%d" % i for i in range(10)])
    leader.append(lc, [b"y%d" % i for i in range(10)], NORMAL)
    leader.append(lc, [None] * 2, BLANK)
    leader.append(lc, [MEMBERSHIPS[1]], MEMBERSHIP)
    follower = LogBuffer()
    follower.append(la, [b"x%d" % i for i in range(7)])
    follower.append(lb, [b"stale"] * 9)  # 8..16 conflict
    follower.purge_upto(3)
    s = leader.slice(5, leader.last_index + 1)
    c = follower.first_conflict(s)
    assert c == 8
    follower.truncate_after(c - 1)
    assert follower.append_slice(s, c) == leader.last_index
    assert follower.last_log_id == leader.last_log_id
    assert follower.entries(4, follower.last_index + 1) == leader.entries(4, leader.last_index + 1)
    assert follower.nbytes(4, 24) == leader.nbytes(4, 24)
    assert follower.first_conflict(leader.slice(1, leader.last_index + 1)) == leader.last_index + 1
    assert follower.log_id_at(3) == LogId(la, 3)


def test_append_slice_errors_and_noop():
    buf = LogBuffer()
    buf.append(LeaderId(1, 1), [b"a"] * 3)
    s = LogSlice(3, [b"b", b"c"], None, [(3, LeaderId(2, 1))])
    with pytest.raises(ValueError):
        buf.append_slice(s)  # would overwrite: from 3 but last is 3
    with pytest.raises(ValueError):
        buf.append_slice(LogSlice(6, [b"z"], None, [(6, LeaderId(2, 1))]))  # hole
    assert buf.append_slice(s, 5) == 3  # nothing of s left at 5
    assert buf.last_index == 3
    assert buf.append_slice(s, 4) == 4
    assert buf.log_id_at(4) == LogId(LeaderId(2, 1), 4) and buf.payload_at(4) == b"c"


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_sync_two_logs(data):
    """A follower log with a shared prefix and a divergent tail becomes the leader's log."""
    leader, follower = LogBuffer(), LogBuffer()
    term = 1
    for _ in range(data.draw(st.integers(0, 4))):
        n = data.draw(st.integers(1, 8))
        ps = [b"c%d" % (leader.last_index + i) for i in range(n)]
        leader.append(LeaderId(term, 1), ps)
        follower.append(LeaderId(term, 1), ps)
        term += 1
    for _ in range(data.draw(st.integers(0, 3))):
        follower.append(LeaderId(term, 2), [b"f"] * data.draw(st.integers(1, 6)))
        term += 1
    for _ in range(data.draw(st.integers(0, 3))):
        leader.append(LeaderId(term, 3), [b"l%d" % i for i in range(data.draw(st.integers(1, 6)))])
        term += 1
    shared = min(leader.last_index, follower.last_index)
    common = 0
    while common < shared and leader.log_id_at(common + 1) == follower.log_id_at(common + 1):
        common += 1
    if data.draw(st.booleans()) and common:
        follower.purge_upto(data.draw(st.integers(1, common)))
    # the message's prev entry (start - 1) must be one the follower has: start <= common + 1
    start = data.draw(st.integers(1, common + 1))
    s = leader.slice(start, leader.last_index + 1)
    c = follower.first_conflict(s)
    expect = next(
        (i for i in range(max(start, follower.first_index), s.stop)
         if i > follower.last_index or follower.log_id_at(i) != leader.log_id_at(i)),
        s.stop,
    )
    assert c == expect
    follower.truncate_after(c - 1)
    follower.append_slice(s, c)
    assert follower.last_index == max(leader.last_index, c - 1)
    lo = follower.first_index
    assert follower.entries(lo, leader.last_index + 1) == leader.entries(lo, leader.last_index + 1)


# ----------------------------------------------------------------------------- compaction

def test_large_purge_compaction():
    buf = LogBuffer()
    model = Model()
    rnd_sizes = [(i * 7919) % 23 for i in range(40_000)]
    for k in range(40):  # 40 leaders x 1000 entries
        leader = LeaderId(k + 1, k % 3)
        ps = [bytes(rnd_sizes[k * 1000 + j]) if j % 5 else "s" for j in range(1000)]
        buf.append(leader, ps)
        model.append(leader, ps, NORMAL)
    for cut in (3_000, 15_000, 15_001, 26_789, 32_000):
        buf.purge_upto(cut)
        model.purge_upto(cut)
        assert buf.purged == model.purged
        assert buf.first_index == cut + 1
        for i in list(range(cut - 2, cut + 50)) + list(range(model.last - 50, model.last + 2)) + list(range(cut, model.last, 997)):
            assert buf.log_id_at(i) == (None if model.leader_at(i) is None else LogId(model.leader_at(i), i))
            if model.first <= i <= model.last:
                assert buf.payload_at(i) == model.e[i][1]
        a, b = cut + 1, min(model.last + 1, cut + 3000)
        check_slice(buf.slice(a, b), model, a, b)
        assert buf.nbytes(cut + 1, model.last + 1) == sum(psize(model.e[i][1]) for i in range(cut + 1, model.last + 1))
    # keep going after compaction: append, truncate, purge everything
    buf.append(LeaderId(100, 1), [b"zz"] * 10)
    model.append(LeaderId(100, 1), [b"zz"] * 10, NORMAL)
    buf.truncate_after(39_995)
    model.truncate_after(39_995)
    buf.append(LeaderId(101, 1), [b"q"] * 5000)
    model.append(LeaderId(101, 1), [b"q"] * 5000, NORMAL)
    check(buf, model)
    buf.purge_upto(model.last)
    model.purge_upto(model.last)
    check(buf, model)
    buf.append(LeaderId(102, 1), [b"end"])
    model.append(LeaderId(102, 1), [b"end"], NORMAL)
    check(buf, model)


def test_rolling_window_compacts_repeatedly():
    buf, model = LogBuffer(), Model()
    for r in range(30):
        leader = LeaderId(r + 1, 0)
        ps = [bytes([r % 256]) * (1 + i % 3) for i in range(2500)]
        buf.append(leader, ps)
        model.append(leader, ps, NORMAL)
        cut = model.last - 700 - r * 10
        buf.purge_upto(cut)
        model.purge_upto(cut)
        a = model.first
        check_slice(buf.slice(a, model.last + 1), model, a, model.last + 1)
        assert buf.log_id_at(cut) == model.purged
        assert buf.nbytes(a, model.last + 1) == sum(psize(model.e[i][1]) for i in range(a, model.last + 1))
    check(buf, model)


# ----------------------------------------------------------------------------- LogSlice

def test_log_slice_from_entries_round_trip():
    l1, l2 = LeaderId(1, 1), LeaderId(2, 3)
    entries = [
        Entry(LogId(l1, 7), b"a"),
        Entry(LogId(l1, 8), "b"),
        Entry.blank(LogId(l2, 9)),
        Entry.membership(LogId(l2, 10), MEMBERSHIPS[1]),
        Entry(LogId(l2, 11), None),
        Entry(LogId(l1, 12), b"cc"),  # leaders need not be ordered inside a slice
    ]
    s = LogSlice.from_entries(entries)
    assert s.start == 7 and s.stop == 13 and len(s) == 6
    assert s.entries() == entries
    assert s.nbytes == 3
    assert s.kinds == bytes([NORMAL, NORMAL, BLANK, MEMBERSHIP, NORMAL, NORMAL])
    assert s.last_log_id == LogId(l1, 12)
    assert LogSlice.from_entries(s.entries()) == s
    assert LogSlice.from_entries(iter(entries)).entries() == entries


entry_specs = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 2), st.sampled_from([NORMAL, BLANK, MEMBERSHIP]), normal_payloads),
    min_size=1,
    max_size=20,
)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 1000), st.booleans(), entry_specs)
def test_log_slice_from_entries_round_trip_random(start, std, specs):
    entries = []
    for off, (term, node, kind, payload) in enumerate(specs):
        i = start + off
        lid = LogId(LeaderId(term, node, std=std), i)
        if kind == BLANK:
            payload = None
        elif kind == MEMBERSHIP:
            payload = MEMBERSHIPS[i % 3]
        entries.append(Entry(lid, payload, kind))
    s = LogSlice.from_entries(entries)
    assert s.entries() == entries
    assert (s.start, s.stop) == (start, start + len(entries))
    assert s.nbytes == sum(psize(e.payload) for e in entries)
    for e in entries:
        assert s.log_id_at(e.index) == e.log_id
    t = pickle.loads(pickle.dumps(s))
    assert t == s and t.entries() == entries and t.nbytes == s.nbytes


def test_log_slice_pickle():
    buf = LogBuffer(LogId(LeaderId(1, 1), 4))
    buf.append(LeaderId(2, 1), [b"a", b"bb"])
    buf.append(LeaderId(3, 2), [None], BLANK)
    buf.append(LeaderId(3, 2), [MEMBERSHIPS[2]], MEMBERSHIP)
    for a, b in ((5, 9), (6, 8), (7, 7)):
        s = buf.slice(a, b)
        t = pickle.loads(pickle.dumps(s, protocol=pickle.HIGHEST_PROTOCOL))
        assert type(t) is LogSlice
        assert t == s
        assert (t.start, t.stop, t.nbytes, t.kinds, t.runs) == (s.start, s.stop, s.nbytes, s.kinds, s.runs)
        assert t.entries() == s.entries()
    std = LogBuffer()
    std.append(LeaderId(2, 9, std=True), [b"x"])
    s = std.slice(1, 2)
    assert pickle.loads(pickle.dumps(s)).leader_id_at(1) == LeaderId(2, None, std=True)


@pytest.mark.parametrize(
    "args,exc",
    [
        ((0, []), ValueError),
        ((1, [b"a"]), ValueError),  # non-empty without runs
        ((1, [b"a"], b"\x00\x00", [(1, LeaderId(1))]), ValueError),  # kinds length
        ((1, [b"a"], b"\x01", [(1, LeaderId(1))]), ValueError),  # blank with payload
        ((1, [b"a"], b"\x02", [(1, LeaderId(1))]), TypeError),  # membership without Membership
        ((1, [None], b"\x05", [(1, LeaderId(1))]), ValueError),  # unknown kind
        ((1, [b"a", b"b"], None, [(2, LeaderId(1))]), ValueError),  # first run not at start
        ((1, [b"a", b"b"], None, [(1, LeaderId(1)), (1, LeaderId(2))]), ValueError),  # not increasing
        ((1, [b"a", b"b"], None, [(1, LeaderId(1)), (3, LeaderId(2))]), ValueError),  # outside
        ((1, [b"a"], None, [(1, "T1")]), TypeError),
    ],
)
def test_log_slice_validation(args, exc):
    with pytest.raises(exc):
        LogSlice(*args)


def test_log_slice_from_entries_validation():
    with pytest.raises(ValueError):
        LogSlice.from_entries([])
    with pytest.raises(ValueError):
        LogSlice.from_entries([Entry(LogId(LeaderId(1), 1), b"a"), Entry(LogId(LeaderId(1), 3), b"b")])


def test_log_slice_runs_use_committed_ids():
    s = LogSlice(1, [b"a", b"b"], None, [(1, LeaderId(2, 4, std=True)), (2, LeaderId(3, 1, std=True))])
    assert s.runs == ((1, LeaderId(2, None, std=True)), (2, LeaderId(3, None, std=True)))
    assert s.log_id_at(1) == LogId(LeaderId(2, None, std=True), 1)


def _fresh(n):
    """n distinct payload objects nothing else refers to."""
    return [bytes([i % 256]) * (10 + i) for i in range(n)]


def test_payload_references_are_released_by_truncate_purge_reset_and_dealloc():
    import sys
    l1 = LeaderId(1, 1)
    ps = _fresh(8000)           # more than the compaction threshold, so purge compacts too

    def held(lo, hi):
        """References to ps[lo:hi] beyond what the test itself holds."""
        return {sys.getrefcount(ps[i]) - base[i] for i in range(lo, hi)}

    base = [sys.getrefcount(ps[i]) for i in range(len(ps))]
    buf = LogBuffer()
    buf.append(l1, ps)
    assert held(0, 8000) == {1}
    copy = LogBuffer()
    copy.append_slice(buf.slice(1, 8001))      # the slice's list is gone again; the copy holds one each
    assert held(0, 8000) == {2}
    assert buf.payload_at(8000) is ps[7999] and copy.slice(7990, 8001).payloads == ps[7989:]
    buf.truncate_after(6000)
    assert held(0, 6000) == {2} and held(6000, 8000) == {1}
    buf.purge_upto(5000)                        # compacts: 5000 dropped, 1000 live slots moved
    assert held(0, 5000) == {1} and held(5000, 6000) == {2}
    assert buf.payload_at(5001) is ps[5000] and buf.slice(5001, 6001).payloads == ps[5000:6000]
    buf.append(l1, [b"tail"])
    assert buf.payload_at(6001) == b"tail"
    buf.reset(LogId(l1, 9000))
    assert held(0, 8000) == {1}
    del copy
    assert held(0, 8000) == {0}
    buf.append(l1, ps[:10])
    del buf                                     # dealloc releases what it holds
    assert held(0, 8000) == {0}


def test_the_garbage_collector_does_not_walk_the_payloads():
    """A full collection's cost must not grow with the log (10 M entries held would pause a
    node for longer than an election timeout): the payloads are not among the buffer's
    referents, and a buffer's payloads cannot hold it in a cycle (bytes and Membership)."""
    import gc
    ps = _fresh(100)
    buf = LogBuffer()
    buf.append(LeaderId(1, 1), ps)
    seen, todo = set(), [buf]
    while todo:                 # everything a collection would visit from the buffer
        obj = todo.pop()
        for r in gc.get_referents(obj):
            if id(r) not in seen:
                seen.add(id(r))
                todo.append(r)
    assert not seen & {id(p) for p in ps}
    assert ps[42] is buf.payload_at(43)
