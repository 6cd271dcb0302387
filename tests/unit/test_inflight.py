"""Unit tests for openraft_fast._core.inflight.Inflights, against a plain deque model."""
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openraft_fast._core.inflight import Inflights


class Model:
    """The window as a deque of (msg_id, end_index, nbytes), oldest first."""

    def __init__(self, max_count, max_bytes):
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.q = deque()

    @property
    def bytes(self):
        return sum(b for _, _, b in self.q)

    @property
    def full(self):
        return len(self.q) >= self.max_count or (len(self.q) > 0 and self.bytes >= self.max_bytes)

    def add_error(self, msg_id):
        """The exception(s) an add must raise, or None when it must succeed."""
        over = len(self.q) >= self.max_count
        bad = bool(self.q) and msg_id <= self.q[-1][0]
        if over and bad:
            return (OverflowError, ValueError)
        if over:
            return OverflowError
        if bad:
            return ValueError
        return None

    def add(self, msg_id, end, nbytes):
        self.q.append((msg_id, end, nbytes))

    def free_to(self, msg_id):
        if not self.q or msg_id < self.q[0][0] or msg_id > self.q[-1][0]:
            return -1
        n = 0
        while self.q and self.q[0][0] <= msg_id:
            self.q.popleft()
            n += 1
        return n

    def reset(self):
        self.q.clear()


def check(inf, model):
    assert inf.items() == list(model.q)
    assert inf.count == len(inf) == len(model.q)
    assert inf.bytes == model.bytes
    assert inf.full == model.full
    assert inf.max_count == model.max_count
    assert inf.max_bytes == model.max_bytes


ops = st.lists(
    st.one_of(
        # add with an id step: mostly +1, sometimes a gap, sometimes non-increasing
        st.tuples(st.just("add"), st.sampled_from([1, 1, 1, 1, 2, 5, 0, -1, -3]), st.integers(0, 50), st.integers(0, 40)),
        # free: pick the k-th in-flight id, or an offset outside the window
        st.tuples(st.just("free"), st.integers(-3, 12)),
        st.tuples(st.just("free_stale"), st.sampled_from(["below", "above", "far_below", "far_above", "gap"])),
        st.tuples(st.just("reset")),
    ),
    max_size=120,
)


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 6), st.integers(1, 120), ops)
def test_matches_deque_model(max_count, max_bytes, program):
    inf = Inflights(max_count, max_bytes)
    model = Model(max_count, max_bytes)
    last_id = 0
    check(inf, model)
    for op in program:
        if op[0] == "add":
            _, step, end, nbytes = op
            base = model.q[-1][0] if model.q else last_id
            msg_id = base + step
            err = model.add_error(msg_id)
            if err is None:
                inf.add(msg_id, end, nbytes)
                model.add(msg_id, end, nbytes)
                last_id = msg_id
            else:
                with pytest.raises(err):
                    inf.add(msg_id, end, nbytes)
        elif op[0] == "free":
            k = op[1]
            if model.q and 0 <= k < len(model.q):
                msg_id = model.q[k][0]
            elif model.q:
                msg_id = model.q[0][0] + k if k < 0 else model.q[-1][0] + (k - len(model.q) + 1)
            else:
                msg_id = last_id + k
            assert inf.free_to(msg_id) == model.free_to(msg_id)
        elif op[0] == "free_stale":
            where = op[1]
            if model.q:
                lo, hi = model.q[0][0], model.q[-1][0]
            else:
                lo, hi = last_id + 1, last_id
            msg_id = {
                "below": lo - 1,
                "above": hi + 1,
                "far_below": -(1 << 40),
                "far_above": 1 << 40,
                "gap": lo + 1,  # inside the window when ids have gaps, else maybe an id
            }[where]
            assert inf.free_to(msg_id) == model.free_to(msg_id)
        else:
            inf.reset()
            model.reset()
        check(inf, model)


def test_basic_add_free():
    inf = Inflights(4)
    assert not inf.full and len(inf) == 0 and inf.items() == []
    inf.add(1, 10, 100)
    inf.add(2, 20, 50)
    inf.add(3, 25)
    assert inf.items() == [(1, 10, 100), (2, 20, 50), (3, 25, 0)]
    assert inf.bytes == 150
    assert inf.free_to(2) == 2
    assert inf.items() == [(3, 25, 0)] and inf.bytes == 0
    assert inf.free_to(2) == -1  # already freed: stale
    assert inf.free_to(4) == -1  # never sent: stale
    assert inf.free_to(3) == 1
    assert inf.free_to(3) == -1
    assert len(inf) == 0


def test_free_to_between_ids_frees_older_ones():
    inf = Inflights(8)
    for i in (10, 20, 30):
        inf.add(i, i)
    assert inf.free_to(25) == 2
    assert inf.items() == [(30, 30, 0)]


def test_full_by_count_and_overflow():
    inf = Inflights(2)
    inf.add(1, 1)
    assert not inf.full
    inf.add(2, 2)
    assert inf.full
    with pytest.raises(OverflowError):
        inf.add(3, 3)
    assert inf.items() == [(1, 1, 0), (2, 2, 0)]
    inf.free_to(1)
    assert not inf.full
    inf.add(3, 3)
    assert inf.full


def test_full_by_bytes():
    inf = Inflights(10, max_bytes=100)
    assert not inf.full
    inf.add(1, 1, 60)
    assert not inf.full
    inf.add(2, 2, 40)
    assert inf.full  # 100 >= 100
    # the byte limit makes the window report full but does not forbid an add
    inf.add(3, 3, 10)
    assert inf.bytes == 110
    inf.free_to(1)
    assert inf.bytes == 50 and not inf.full
    # a single oversized message is allowed into an empty window
    inf2 = Inflights(10, max_bytes=5)
    inf2.add(1, 1, 1000)
    assert inf2.full and len(inf2) == 1


def test_non_increasing_id_rejected():
    inf = Inflights(4)
    inf.add(5, 1)
    with pytest.raises(ValueError):
        inf.add(5, 2)
    with pytest.raises(ValueError):
        inf.add(4, 2)
    assert inf.items() == [(5, 1, 0)]
    inf.add(6, 2)
    assert [i for i, _, _ in inf.items()] == [5, 6]


def test_reset_empties_and_allows_any_id():
    inf = Inflights(3, max_bytes=10)
    inf.add(7, 1, 10)
    inf.add(8, 2, 3)
    assert inf.full
    inf.reset()
    assert len(inf) == 0 and inf.bytes == 0 and not inf.full and inf.items() == []
    assert inf.free_to(7) == -1 and inf.free_to(8) == -1
    inf.add(1, 1, 1)  # lower than before the reset: fine
    assert inf.items() == [(1, 1, 1)]


@pytest.mark.parametrize("args", [(0,), (-1,), (1, 0), (1, -5)])
def test_invalid_limits(args):
    with pytest.raises(ValueError):
        Inflights(*args)


@pytest.mark.parametrize("max_count", [1, 2, 3, 7])
def test_ring_wraps_around_many_times(max_count):
    inf = Inflights(max_count, max_bytes=1 << 40)
    model = Model(max_count, 1 << 40)
    msg_id = 0
    for cycle in range(2000):
        # fill some, free some; the start of the ring moves around the buffer
        n_add = 1 + (cycle * 7) % max_count
        for _ in range(n_add):
            if len(model.q) == max_count:
                break
            msg_id += 1 + (cycle % 3 == 0)
            inf.add(msg_id, msg_id * 10, cycle % 5)
            model.add(msg_id, msg_id * 10, cycle % 5)
        if model.q:
            k = (cycle * 5) % len(model.q)
            target = model.q[k][0]
            assert inf.free_to(target) == model.free_to(target)
        if cycle % 97 == 0:
            assert inf.free_to(msg_id + 1) == -1
        check(inf, model)
    # drain
    if model.q:
        assert inf.free_to(model.q[-1][0]) == model.free_to(model.q[-1][0])
    check(inf, model)
    assert len(inf) == 0


def test_repr():
    inf = Inflights(3, 100)
    inf.add(1, 9, 4)
    r = repr(inf)
    assert "Inflights" in r and "(1, 9, 4)" in r
