"""The linearizability checker: hand-made histories, and agreement with a brute-force checker."""
from itertools import combinations, permutations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openraft_fast.errors import InvalidArgument, InvalidArgumentType
from openraft_fast.testing.lincheck import (
    UNSEEN, History, Op, check, dump_history, load_history, main as lincheck_main)


def put(key, value, t0, t1, id=0):
    return Op("put", key, t0, t1, value=value, id=id)


def get(key, output, t0, t1, id=0):
    return Op("get", key, t0, t1, output=output, id=id)


def delete(key, t0, t1, id=0):
    return Op("delete", key, t0, t1, id=id)


def cas(key, expected, value, ok, t0, t1, id=0, saw=UNSEEN):
    return Op("cas", key, t0, t1, value=value, expected=expected, ok=ok, output=saw, id=id)


def numbered(*ops):
    for i, op in enumerate(ops):
        op.id = i
    return list(ops)


# ---------------------------------------------------------------- hand-made histories

def test_empty_and_sequential_histories_are_linearizable():
    assert check([]).ok
    h = numbered(put("k", "1", 0, 1), get("k", "1", 2, 3), cas("k", "1", "2", True, 4, 5),
                 get("k", "2", 6, 7), delete("k", 8, 9), get("k", None, 10, 11))
    r = check(h)
    assert r.ok and r.status == "ok" and r.ops_checked == 6 and r.keys_checked == 1


def test_stale_read_is_a_violation():
    h = numbered(put("k", "1", 0, 1), put("k", "2", 2, 3), get("k", "1", 4, 5))
    r = check(h)
    assert r.violation and not r.ok
    assert r.key == "k"
    assert sorted(op.id for op in r.ops) == [0, 1, 2]   # all three are needed to show it
    assert "not linearizable" in r.explain() and "op 2" in r.explain()


def test_lost_write_is_a_violation():
    # an acknowledged write, then a later read sees the older value
    h = numbered(put("k", "a", 0, 1), put("k", "b", 2, 3), get("k", "a", 10, 11),
                 get("k", "b", 4, 5))
    assert check(h).violation


def test_read_of_a_never_written_value_is_a_violation():
    h = numbered(put("k", "a", 0, 10), get("k", "zzz", 1, 2))
    r = check(h)
    assert r.violation and [op.id for op in r.ops] == [1]


def test_read_before_any_write_sees_absent():
    assert check(numbered(get("k", None, 0, 1), put("k", "a", 2, 3))).ok
    assert check(numbered(get("k", "a", 0, 1), put("k", "a", 2, 3))).violation


def test_concurrent_ops_may_take_effect_in_either_order():
    # put a and put b overlap: reads may see them in either order, but consistently
    base = [put("k", "a", 0, 10), put("k", "b", 1, 9)]
    assert check(numbered(*base, get("k", "a", 11, 12))).ok
    assert check(numbered(*base, get("k", "b", 11, 12))).ok
    # both orders seen by two sequential reads afterwards: impossible
    assert check(numbered(*base, get("k", "b", 11, 12), get("k", "a", 13, 14))).violation
    # a read concurrent with the put sees old or new
    assert check(numbered(put("k", "a", 0, 1), put("k", "b", 2, 6), get("k", "a", 3, 4))).ok
    assert check(numbered(put("k", "a", 0, 1), put("k", "b", 2, 6), get("k", "b", 3, 4))).ok


def test_equal_timestamps_are_concurrent():
    assert check(numbered(put("k", "a", 0, 5), get("k", None, 5, 6))).ok


def test_cas_anomalies():
    # two successful cas from the same expected value: only one can win
    h = numbered(put("k", "0", 0, 1), cas("k", "0", "x", True, 2, 5), cas("k", "0", "y", True, 3, 6))
    assert check(h).violation
    # cas succeeded although the value was different
    assert check(numbered(put("k", "1", 0, 1), cas("k", "0", "x", True, 2, 3))).violation
    # cas failed although the value matched and nothing raced it
    assert check(numbered(put("k", "0", 0, 1), cas("k", "0", "x", False, 2, 3))).violation
    # failed cas reports a value that was never there
    assert check(numbered(put("k", "1", 0, 1), cas("k", "0", "x", False, 2, 3, saw="7"))).violation
    # failed cas reporting the real value, and cas-if-absent
    assert check(numbered(put("k", "1", 0, 1), cas("k", "0", "x", False, 2, 3, saw="1"))).ok
    assert check(numbered(cas("k", None, "x", True, 0, 1), cas("k", None, "y", False, 2, 3, saw="x"),
                          get("k", "x", 4, 5))).ok
    # a chain of successful cas is consistent only in one order
    h = numbered(put("k", "0", 0, 1), cas("k", "1", "2", True, 2, 10), cas("k", "0", "1", True, 3, 9),
                 get("k", "2", 11, 12))
    assert check(h).ok


def test_pending_write_that_took_effect():
    # the put never returned, yet a later read sees it: fine (it took effect)
    assert check(numbered(Op("put", "k", 0, None, value="a"), get("k", "a", 5, 6))).ok


def test_pending_write_that_did_not_take_effect():
    assert check(numbered(Op("put", "k", 0, None, value="a"), get("k", None, 5, 6))).ok


def test_pending_write_takes_effect_at_most_once_and_only_after_invoke():
    # a pending put may take effect long after its invocation, e.g. after a later put
    h = numbered(put("k", "x", 0, 1), Op("put", "k", 2, None, value="a"), put("k", "b", 5, 6),
                 get("k", "a", 7, 8))
    assert check(h).ok
    # but only once: seen before b, then overwritten by b, it cannot be seen again
    h = numbered(put("k", "x", 0, 1), Op("put", "k", 2, None, value="a"), get("k", "a", 3, 4),
                 put("k", "b", 5, 6), get("k", "a", 7, 8))
    assert check(h).violation
    # but a read of "a" before the pending put was even invoked is a violation
    h = numbered(get("k", "a", 0, 1), Op("put", "k", 2, None, value="a"))
    assert check(h).violation
    # and two reads of a around b, with the pending put of a overwritten by b in between: violation
    h = numbered(Op("put", "k", 0, None, value="a"), get("k", "a", 1, 2), put("k", "b", 3, 4),
                 get("k", "a", 5, 6), get("k", "b", 7, 8))
    assert check(h).violation


def test_pending_cas_may_or_may_not_apply():
    base = [put("k", "0", 0, 1), Op("cas", "k", 2, None, value="1", expected="0")]
    assert check(numbered(*base, get("k", "1", 3, 4))).ok
    assert check(numbered(*base, get("k", "0", 3, 4))).ok
    assert check(numbered(*base, get("k", "2", 3, 4))).violation


def test_pending_reads_are_ignored():
    assert check(numbered(put("k", "a", 0, 1), Op("get", "k", 2, None))).ok


def test_keys_are_independent_and_the_explanation_names_the_bad_key():
    h = numbered(put("a", "1", 0, 1), get("a", "1", 2, 3), put("b", "1", 0, 1), put("b", "2", 2, 3),
                 get("b", "1", 4, 5), get("c", None, 0, 1))
    r = check(h)
    assert r.violation and r.key == "b" and {op.key for op in r.ops} == {"b"}
    assert r.keys_checked == 3


def test_explanation_is_minimal_in_a_long_history():
    ops = []
    t = 0
    for i in range(200):  # a long, fine sequential prefix
        ops.append(put("k", str(i), t, t + 1))
        ops.append(get("k", str(i), t + 2, t + 3))
        t += 4
    ops.append(get("k", "5", t, t + 1))  # stale read at the end
    r = check(numbered(*ops))
    assert r.violation
    # a stale read needs: the write it saw, a later write, and the read
    assert len(r.ops) == 3 and r.ops[-1].id == len(ops) - 1
    assert r.ops[0].kind == r.ops[1].kind == "put" and r.ops[0].value == "5" and r.ops[1].value != "5"


def test_budget_gives_unknown_not_a_hang():
    # many concurrent writes and a read of a value nobody wrote force a full search
    ops = [put("k", str(i), 0, 100) for i in range(14)] + [get("k", "nope", 101, 102)]
    r = check(numbered(*ops), budget=500)
    assert r.status == "unknown" and not r.ok and not r.violation
    assert "budget" in r.message
    assert check(numbered(*ops), budget=10_000_000).violation


def test_bad_input_is_refused_with_typed_errors(tmp_path):
    with pytest.raises(InvalidArgument):
        Op("append", "k", 0, 1)
    with pytest.raises(InvalidArgument):
        Op("put", "k", 5, 1, value="a")
    with pytest.raises(InvalidArgument):
        Op("get", "k", 0, 1)          # a completed read needs its output
    with pytest.raises(InvalidArgument):
        Op("cas", "k", 0, 1, value="a", expected=None)   # a completed cas needs ok
    with pytest.raises(InvalidArgumentType):
        check([("put", "k")])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InvalidArgument):
        load_history(str(bad))
    bad.write_text('{"format": "openraft_fast.lincheck/1", "ops": [{"kind": "put"}]}')
    with pytest.raises(InvalidArgument):
        load_history(str(bad))
    bad.write_text('[1, 2]')
    with pytest.raises(InvalidArgument):
        load_history(str(bad))


def test_history_recorder_round_trips_through_json(tmp_path, capsys):
    clock = iter(range(100)).__next__
    h = History(clock=clock)
    a = h.start("put", "k", client=1, value="a")
    h.finish(a)
    b = h.start("cas", "k", client=2, expected="a", value="b")
    h.finish(b, ok=False, output="zz")
    c = h.start("put", "k", client=3, value="c")
    h.fail(c)                                   # certainly not applied: dropped
    d = h.start("put", "k", client=3, value="d")  # never returned: outcome unknown
    assert h.counts() == {"invoked": 4, "failed": 1, "unknown": 1, "ok": 2}
    assert [op.id for op in h.operations()] == [0, 1, 3]
    path = tmp_path / "h.json"
    h.save(str(path))
    loaded = load_history(str(path))
    assert [op.to_json() for op in loaded] == [op.to_json() for op in h.operations()]
    assert loaded[2].pending and loaded[1].output == "zz" and loaded[0].output is UNSEEN
    assert check(loaded).violation                # the failed cas saw a value never written
    assert lincheck_main([str(path)]) == 1
    assert "not linearizable" in capsys.readouterr().out
    dump_history(loaded[:1] + loaded[2:], str(path))
    assert lincheck_main([str(path)]) == 0
    del d


# ---------------------------------------------------------------- brute force

def _apply(states, op):
    """An independent register model for the brute-force checker; None: illegal."""
    cur = states.get(op.key)
    new = dict(states)
    if op.kind == "put":
        new[op.key] = op.value
    elif op.kind == "delete":
        new.pop(op.key, None)
    elif op.kind == "get":
        if op.response is not None and op.output != cur:
            return None
    else:
        matches = cur == op.expected
        if op.response is not None:
            if op.ok != matches:
                return None
            if not op.ok and op.output is not UNSEEN and op.output != cur:
                return None
        if matches:
            new[op.key] = op.value
    return new


def brute_force(ops):
    """Linearizable iff some subset of the pending ops plus all completed ops has an order that
    respects real time (a before b when a responded before b was invoked) and the model."""
    completed = [o for o in ops if o.response is not None]
    pending = [o for o in ops if o.response is None]
    for r in range(len(pending) + 1):
        for chosen_pending in combinations(pending, r):
            chosen = completed + list(chosen_pending)
            for perm in permutations(chosen):
                pos = {id(o): k for k, o in enumerate(perm)}
                if any(a.response is not None and a.response < b.invoke and pos[id(a)] > pos[id(b)]
                       for a in chosen for b in chosen):
                    continue
                states = {}
                for op in perm:
                    states = _apply(states, op)
                    if states is None:
                        break
                else:
                    return True
    return False


KEYS = ["a", "b"]
VALUES = ["x", "y", "z"]


@st.composite
def random_op(draw):
    kind = draw(st.sampled_from(["put", "get", "delete", "cas"]))
    key = draw(st.sampled_from(KEYS))
    t0 = draw(st.integers(0, 12))
    pending = draw(st.integers(0, 5)) == 0
    t1 = None if pending else t0 + draw(st.integers(0, 6))
    value = expected = None
    ok = None
    output = UNSEEN
    if kind in ("put", "cas"):
        value = draw(st.sampled_from(VALUES))
    if kind == "cas":
        expected = draw(st.sampled_from([None] + VALUES))
        if not pending:
            ok = draw(st.booleans())
            if not ok and draw(st.booleans()):
                output = draw(st.sampled_from([None] + VALUES))
    if kind == "get" and not pending:
        output = draw(st.sampled_from([None] + VALUES))
    return Op(kind, key, t0, t1, value=value, expected=expected, ok=ok, output=output)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(random_op(), min_size=1, max_size=6))
def test_agrees_with_brute_force_on_random_histories(ops):
    ops = numbered(*ops)
    expected = brute_force(ops)
    r = check(ops)
    assert r.status == ("ok" if expected else "violation"), [o.describe() for o in ops]
    if not expected:
        # the explanation is itself a non-linearizable history
        assert not brute_force(r.ops)


@st.composite
def sequential_execution(draw, max_ops=30):
    """Run ops one at a time on a real register (linearization points 10 apart), then widen each
    op into a random interval around its point; some ops never return (took effect or not)."""
    n = draw(st.integers(1, max_ops))
    states = {}
    ops = []
    for k in range(n):
        kind = draw(st.sampled_from(["put", "get", "delete", "cas"]))
        key = draw(st.sampled_from(KEYS))
        point = 10 * k + 5
        t0 = point - draw(st.integers(0, 25))
        t1 = point + draw(st.integers(0, 25))
        fate = draw(st.integers(0, 7))   # 0: never returned but applied; 1: never returned, not applied
        cur = states.get(key)
        value = draw(st.sampled_from(VALUES)) if kind in ("put", "cas") else None
        expected = draw(st.sampled_from([None] + VALUES + [cur])) if kind == "cas" else None
        if fate == 1:
            t0 = draw(st.integers(-20, 10 * n + 20))
            ops.append(Op(kind, key, t0, None, value=value, expected=expected))
            continue
        ok, output = None, UNSEEN
        if kind == "put":
            states[key] = value
        elif kind == "delete":
            states.pop(key, None)
        elif kind == "get":
            output = cur
        else:
            ok = cur == expected
            if ok:
                states[key] = value
            elif draw(st.booleans()):
                output = cur
        if fate == 0:
            op = Op(kind, key, t0, None, value=value, expected=expected)
        else:
            op = Op(kind, key, t0, t1, value=value, expected=expected, ok=ok, output=output)
        ops.append(op)
    return numbered(*ops)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequential_execution())
def test_histories_from_a_real_sequential_execution_are_linearizable(ops):
    r = check(ops)
    assert r.ok, r.explain()


def _mutate(op, draw):
    if op.kind == "get" and op.response is not None:
        op.output = draw(st.sampled_from([v for v in [None] + VALUES if v != op.output]))
        return True
    if op.kind == "cas" and op.response is not None:
        op.ok = not op.ok
        if op.ok:
            op.output = UNSEEN
        return True
    if op.kind == "put":
        op.value = draw(st.sampled_from([v for v in VALUES if v != op.value]))
        return True
    if op.response is not None and draw(st.booleans()):
        # shift the op later in time so that real-time order changes
        shift = draw(st.integers(1, 30))
        op.invoke += shift
        op.response += shift
        return True
    return False


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequential_execution(max_ops=6), st.data())
def test_agrees_with_brute_force_on_mutated_sequential_histories(ops, data):
    which = data.draw(st.integers(0, len(ops) - 1))
    _mutate(ops[which], data.draw)
    expected = brute_force(ops)
    r = check(ops)
    assert r.status == ("ok" if expected else "violation"), [o.describe() for o in ops]
