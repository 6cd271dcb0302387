"""testing.lincheck_txn: multi-key histories (transactions mixed with single-key operations),
checked against hand-made cases and against a brute-force checker (its own model, its own
search) on random small histories."""
import random

import pytest

from openraft_fast.errors import InvalidArgument
from openraft_fast.testing.lincheck import Op
from openraft_fast.testing.lincheck_txn import TxnOp, as_txn, check


def _run(state, op):
    """The oracle's own model of a transaction (written apart from lincheck_txn's): the
    state after it, or None when what it returned cannot happen in `state`."""
    def holds(key, target, cmp, want):
        eq = (state.get(key) == want) if target == "value" else ((key in state) == want)
        return eq if cmp == "==" else not eq

    ok = all(holds(*c) for c in op.compares)
    if op.response is not None and ok != op.succeeded:
        return None
    new = dict(state)
    reads = []
    for s in op.success if ok else op.failure:
        if s[0] == "put":
            new[s[1]] = s[2]
            reads.append(None)
        elif s[0] == "delete":
            new.pop(s[1], None)
            reads.append(None)
        else:
            reads.append(new.get(s[1]))
    if op.response is not None and reads != op.results:
        return None
    return new


def brute_force(history):
    """Linearizable? By trying every order that respects real time, each op that never
    returned either taking effect somewhere or not at all (exponential: small histories)."""
    ops = [as_txn(op) if isinstance(op, Op) else op for op in history]

    def extend(done, state):
        if all(i in done or ops[i].response is None for i in range(len(ops))):
            return True
        for i, op in enumerate(ops):
            if i in done or any(j not in done and ops[j].response is not None and ops[j].response < op.invoke
                                for j in range(len(ops)) if j != i):
                continue
            new = _run(state, op)
            if new is not None and extend(done | {i}, new):
                return True
        return False

    return extend(frozenset(), {})


def transfer(t0, t1, a, b, va, vb, amount, ok, client=0, id=0):
    """Move `amount` from a to b if they still hold va and vb; reads both after."""
    return TxnOp(t0, [(a, "value", "==", va), (b, "value", "==", vb)],
                 [("put", a, str(int(va) - amount)), ("put", b, str(int(vb) + amount)), ("get", a), ("get", b)],
                 [("get", a), ("get", b)], t1, ok,
                 [None, None, str(int(va) - amount), str(int(vb) + amount)] if ok else None, client, id)


def test_a_serial_transfer_history_is_linearizable():
    h = [Op("put", "a", 0, 1, value="10", id=1), Op("put", "b", 2, 3, value="0", id=2),
         transfer(4, 5, "a", "b", "10", "0", 3, True, id=3),
         Op("get", "a", 6, 7, output="7", id=4), Op("get", "b", 6, 7, output="3", id=5)]
    assert check(h).ok and brute_force(h)


def test_a_read_that_sees_half_a_transaction_is_a_violation():
    h = [Op("put", "a", 0, 1, value="10", id=1), Op("put", "b", 0, 1, value="0", id=2),
         transfer(2, 3, "a", "b", "10", "0", 3, True, id=3),
         # After the transfer returned: a shows the debit, b not the credit.
         TxnOp(4, [], [("get", "a"), ("get", "b")], [], 5, True, ["7", "0"], id=4)]
    result = check(h)
    assert result.violation and "a" in result.key and not brute_force(h)


def test_a_failed_compare_must_take_the_failure_branch():
    h = [Op("put", "k", 0, 1, value="x", id=1),
         TxnOp(2, [("k", "exists", "==", False)], [("put", "k", "mine")], [("get", "k")], 3, False, ["x"], id=2)]
    assert check(h).ok
    h[1] = TxnOp(2, [("k", "exists", "==", False)], [("put", "k", "mine")], [("get", "k")], 3, True, [None], id=2)
    assert check(h).violation


def test_a_transaction_that_never_returned_may_have_taken_effect_or_not():
    pending = TxnOp(2, [], [("put", "a", "1"), ("put", "b", "1")], [], None)
    assert check([pending, Op("get", "a", 5, 6, output="1", id=2), Op("get", "b", 7, 8, output="1", id=3)]).ok
    assert check([pending, Op("get", "a", 5, 6, output=None, id=2), Op("get", "b", 7, 8, output=None, id=3)]).ok
    # ...but all of it or nothing.
    torn = [pending, Op("get", "a", 5, 6, output="1", id=2), Op("get", "b", 7, 8, output=None, id=3)]
    assert check(torn).violation and not brute_force(torn)


def test_bad_transactions_are_refused():
    with pytest.raises(InvalidArgument):
        TxnOp(0, [("k", "revision", "==", 3)])
    with pytest.raises(InvalidArgument):
        TxnOp(0, [], [("upsert", "k", "v")])
    with pytest.raises(InvalidArgument):
        TxnOp(0, [], [("put", "k", "v")], [], 1.0)          # completed without its outcome


def _random_history(rng):
    """A few clients run random ops against a true sequential state, with overlapping
    intervals; some outputs are then corrupted, some ops left pending."""
    keys = ["a", "b", "c"][:rng.randint(1, 3)]
    state = {}
    ops = []
    t = 0.0
    for i in range(rng.randint(2, 6)):
        kind = rng.choice(["put", "get", "delete", "txn", "txn"])
        key = rng.choice(keys)
        invoke = t + rng.uniform(-1.0, 0.5)          # may start before the previous one ended
        t += 1.0
        if kind == "put":
            v = f"v{i}"
            state[key] = v
            op = Op("put", key, invoke, t, value=v, id=i)
        elif kind == "delete":
            state.pop(key, None)
            op = Op("delete", key, invoke, t, id=i)
        elif kind == "get":
            op = Op("get", key, invoke, t, output=state.get(key), id=i)
        else:
            k2 = rng.choice(keys)
            want = rng.choice([state.get(key), None, "v0"])
            cmp = [(key, "value", "==", want)]
            success = [("put", k2, f"t{i}"), ("get", key)]
            failure = [("get", k2)]
            ok = state.get(key) == want
            results = []
            for s in success if ok else failure:
                if s[0] == "put":
                    state[s[1]] = s[2]
                    results.append(None)
                else:
                    results.append(state.get(s[1]))
            op = TxnOp(invoke, cmp, success, failure, t, ok, results, id=i)
        ops.append(op)
    for op in ops:
        r = rng.random()
        if r < 0.15:                                 # a corrupted observation
            if isinstance(op, TxnOp) and op.results:
                op.results[-1] = rng.choice([None, "v0", "t1", op.results[-1]])
            elif isinstance(op, Op) and op.kind == "get":
                op.output = rng.choice([None, "v0", "v1", "t2"])
        elif r < 0.25:                               # never returned
            op.response = None
            if isinstance(op, TxnOp):
                op.succeeded = op.results = None
    return ops


def test_check_agrees_with_brute_force_on_random_small_histories():
    rng = random.Random(2026)
    verdicts = {True: 0, False: 0}
    for _ in range(600):
        h = _random_history(rng)
        expected = brute_force(h)
        result = check(h)
        assert result.ok == expected, [op.describe() if isinstance(op, TxnOp) else op.describe() for op in h]
        verdicts[expected] += 1
    assert verdicts[True] > 100 and verdicts[False] > 30, verdicts
