"""Microbenchmarks of the compiled hot-path primitives, each side by side (one pytest-benchmark
group per case) with the plain-Python reference of benches/pyref.py:

  cy_py           the compiled primitive called from Python
  cy_c            its C-level API called in a C loop (openraft_fast._core.microbench); the figure
                  that matters is the loop's own CLOCK_MONOTONIC reading (extra_info and the
                  summary table), pytest-benchmark's time of the whole loop call is shown too
  plain           the plain-Python reference
  plain_columnar  (log only) LogBuffer's own layout in plain Python

A round is a batch of operations (1000 calls, a window of 256 acks, a log filled with 4096
entries, a C loop...), so pytest-benchmark's tables show time per round; conftest.py prints
the median ns per op of every group side by side at the end (also in each extra_info).

Run:  python -m pytest benches --benchmark-only -q
Every benchmark checks that compiled and plain results agree on its input; none asserts on time.
"""
import statistics

import pytest

from openraft_fast._core import microbench as mb

from benches import cases

C_LOOP_CALLS = 200_000          # committed_index calls per C loop call
C_LOOP_ROUNDS = 15              # pytest-benchmark rounds of a C loop call
ACK_ROUNDS_C = 200              # windows of acks per C loop call (200 * 64 * 4 acks)
ACK_ROUNDS_PY = 400             # windows of acks timed from Python, one per benchmark round
APPEND_ROUNDS_PY = 300          # fresh logs filled from Python (4096 entries each)
APPEND_ROUNDS_C = 200           # fresh logs filled per C loop call


def bench_calls(benchmark, per_op, impl, fn, *args, calls=1000, ops_per_call=1, unit="call"):
    """Time `calls` back-to-back calls fn(*args) per round in a plain for loop (as timeit
    does) and record ns per op; returns the last result.

    Not benchmark(fn, *args): pytest-benchmark calls fn(*args, **kwargs), which adds 20-30 ns
    to a 60 ns call, and its calibration, disturbed by a noisy neighbour, sometimes settles on
    one call per round, where the timer's own overhead swamps the call."""
    r = range(calls)
    if len(args) == 1:
        a, = args

        def run():
            for _ in r:
                out = fn(a)
            return out
    else:
        a, b = args

        def run():
            for _ in r:
                out = fn(a, b)
            return out
    result = benchmark.pedantic(run, rounds=100, warmup_rounds=3)
    per_op.record(benchmark, impl, calls * ops_per_call, unit)
    return result


def bench_c_loop(benchmark, per_op, fn, ops, unit="call"):
    """Benchmark a microbench loop; `fn()` returns (elapsed_ns, ...). Records the median of
    the loop's own clock / ops, and the call-timed round / ops. Returns the last result."""
    results = []

    def run():
        r = fn()
        results.append(r)
        return r

    benchmark.pedantic(run, rounds=C_LOOP_ROUNDS, iterations=1, warmup_rounds=1)
    c_ns = statistics.median(r[0] for r in results[-C_LOOP_ROUNDS:]) / ops
    per_op.record(benchmark, "cy_c", ops, unit, c_clock_ns=c_ns)
    return results[-1]


# ---- committed index ------------------------------------------------------------------------
@pytest.mark.parametrize("impl", ["cy_py", "cy_c", "plain"])
@pytest.mark.parametrize("n", cases.QUORUM_SIZES)
def test_committed_index(benchmark, per_op, n, impl):
    """Majority committed index, the same input every call."""
    benchmark.group = f"committed_index {n} voters"
    v = cases.matched_vector(n)
    expected = cases.majority("plain", n).committed_index(v)
    assert cases.majority("cy", n).committed_index(v) == expected
    if impl == "cy_c":
        q = cases.majority("cy", n)
        _, checksum = bench_c_loop(benchmark, per_op,
                                   lambda: mb.loop_committed_index(q, [v], C_LOOP_CALLS), C_LOOP_CALLS)
        assert checksum == expected * C_LOOP_CALLS
    else:
        q = cases.majority(impl, n)
        assert bench_calls(benchmark, per_op, impl, q.committed_index, v) == expected


@pytest.mark.parametrize("impl", ["cy_py", "cy_c", "plain"])
def test_committed_index_varied(benchmark, per_op, impl):
    """5 voters, cycling through 64 different inputs (the sort's branches are not learnt).
    From Python this includes the for loop of cases.committed_many."""
    n = 5
    benchmark.group = f"committed_index {n} voters, {cases.N_VARIED} inputs"
    vs = cases.matched_vectors(n)
    expected = cases.committed_many(cases.majority("plain", n), vs)
    assert cases.committed_many(cases.majority("cy", n), vs) == expected
    if impl == "cy_c":
        q = cases.majority("cy", n)
        calls = C_LOOP_CALLS // len(vs) * len(vs)
        _, checksum = bench_c_loop(benchmark, per_op, lambda: mb.loop_committed_index(q, vs, calls), calls)
        assert checksum == expected * (calls // len(vs))
    else:
        q = cases.majority(impl, n)
        assert bench_calls(benchmark, per_op, impl, cases.committed_many, q, vs,
                           calls=20, ops_per_call=len(vs)) == expected


# ---- progress update --------------------------------------------------------------------------
def _check_progress_agree(rounds=3):
    """Same acks on a fresh compiled and a fresh plain tracker, and in the C loop: same
    accepted indexes."""
    tc, fc = cases.make_tracker("cy")
    tp, fp = cases.make_tracker("plain")
    sums = []
    for _ in range(rounds):
        s = cases.handle_acks(tc, cases.fill_window(tc, fc))
        assert s == cases.handle_acks(tp, cases.fill_window(tp, fp))
        assert tc.accepted == tp.accepted
        sums.append(s)
    t, f = cases.make_tracker("cy")
    _, acks, checksum = cases.c_progress_acks(t, f, rounds)
    assert acks == rounds * cases.WINDOW * len(f) and checksum == sum(sums)
    assert t.accepted == tp.accepted


@pytest.mark.parametrize("impl", ["cy_py", "cy_c", "plain"])
def test_progress_ack(benchmark, per_op, impl):
    """The leader handles one follower ack: Progress.on_ack + ProgressTracker.update. A round
    is one window of acks (64 per follower, round-robin); refilling the window is untimed."""
    benchmark.group = f"progress ack {cases.PROGRESS_VOTERS} voters"
    _check_progress_agree()
    t, followers = cases.make_tracker("plain" if impl == "plain" else "cy")
    per_round = cases.WINDOW * len(followers)
    if impl == "cy_c":
        bench_c_loop(benchmark, per_op, lambda: cases.c_progress_acks(t, followers, ACK_ROUNDS_C),
                     ACK_ROUNDS_C * per_round, unit="ack")
    else:
        benchmark.pedantic(cases.handle_acks, setup=lambda: ((t, cases.fill_window(t, followers)), {}),
                           rounds=ACK_ROUNDS_PY, warmup_rounds=10)
        per_op.record(benchmark, impl, per_round, unit="ack")


def test_progress_ack_loop_floor(benchmark, per_op):
    """The Python loop of handle_acks with an empty body: part of every from-Python ack figure."""
    benchmark.group = f"progress ack {cases.PROGRESS_VOTERS} voters"
    t, followers = cases.make_tracker("plain")
    plan = cases.fill_window(t, followers)
    bench_calls(benchmark, per_op, "py_loop_floor", cases.loop_floor, plan,
                calls=4, ops_per_call=len(plan), unit="ack")


# ---- log append / slice -----------------------------------------------------------------------
LOG_IMPLS = ["cy_py", "cy_c", "plain", "plain_columnar"]


@pytest.mark.parametrize("impl", LOG_IMPLS)
@pytest.mark.parametrize("batch", cases.LOG_BATCHES)
def test_log_append(benchmark, per_op, batch, impl):
    """Append batches of `batch` payloads to a fresh log until it holds 4096 entries; per entry."""
    benchmark.group = f"log append batch {batch}"
    payloads = cases.payloads(batch)
    batches = cases.APPEND_ENTRIES_PER_ROUND // batch
    ops = batches * batch
    expected = cases.append_batches(cases.make_log("plain"), cases.LEADER, payloads, batches)
    if impl == "cy_c":
        _, entries, checksum = bench_c_loop(
            benchmark, per_op,
            lambda: mb.loop_log_append(cases.LEADER, payloads, batches, APPEND_ROUNDS_C),
            APPEND_ROUNDS_C * ops, unit="entry")
        assert entries == APPEND_ROUNDS_C * ops and checksum == APPEND_ROUNDS_C * expected
    else:
        kind = "cy" if impl == "cy_py" else impl
        logs = [None]

        def setup():
            # Only the newest log stays alive, so the previous round's memory is reused (as in
            # the C loop): keeping them all would time first-touch page faults instead.
            logs[0] = None
            logs[0] = cases.make_log(kind)
            return (logs[0], cases.LEADER, payloads, batches), {}

        got = benchmark.pedantic(cases.append_batches, setup=setup, rounds=APPEND_ROUNDS_PY, warmup_rounds=1)
        assert got == expected
        if impl == "cy_py":
            log = logs[0]
            assert log.last_index == ops and log.payload_at(ops) == payloads[-1]
            assert log.leader_id_at(1) == cases.LEADER
        logs[0] = None
        per_op.record(benchmark, impl, ops, unit="entry")


@pytest.mark.parametrize("impl", LOG_IMPLS)
@pytest.mark.parametrize("size", cases.LOG_BATCHES)
def test_log_slice(benchmark, per_op, size, impl):
    """Slice `size` entries near the tail of a 65536-entry log (what a leader sends); per entry."""
    benchmark.group = f"log slice {size}"
    start, stop = cases.SLICE_START, cases.SLICE_START + size
    plain = cases.slice_payloads_and_leaders("plain", cases.filled_log("plain").slice(start, stop))
    buf = cases.filled_log("cy")
    s = buf.slice(start, stop)
    assert cases.slice_payloads_and_leaders("cy", s) == plain
    nbytes = sum(len(p) for p in plain[0])
    assert s.nbytes == nbytes and s.kinds == bytes(size)
    if impl == "cy_c":
        n = C_LOOP_CALLS // 16
        _, checksum = bench_c_loop(benchmark, per_op, lambda: mb.loop_log_slice(buf, start, stop, n),
                                   n * size, unit="entry")
        assert checksum == n * (size + nbytes)
    else:
        log = buf if impl == "cy_py" else cases.filled_log(impl)
        got = bench_calls(benchmark, per_op, impl, log.slice, start, stop,
                          calls=100, ops_per_call=size, unit="entry")
        assert cases.slice_payloads_and_leaders("plain" if impl == "plain" else "cy", got) == plain
        if impl == "plain_columnar":
            assert (got.runs, got.kinds, got.nbytes) == (s.runs, s.kinds, s.nbytes)


# ---- floors -------------------------------------------------------------------------------------
def _py_one(a):
    return a


@pytest.mark.parametrize("impl", ["cy_py", "plain"])
def test_call_floor(benchmark, per_op, impl):
    """Calling a do-nothing one-argument method/function: the floor under every from-Python figure."""
    benchmark.group = "call floor (1 arg)"
    f = mb.CallFloor().one if impl == "cy_py" else _py_one
    v = cases.matched_vector(5)
    assert bench_calls(benchmark, per_op, impl, f, v) is v


# ---- wire codec ---------------------------------------------------------------------------------
@pytest.mark.parametrize("impl", ["cy_py", "plain"])
@pytest.mark.parametrize("op", ["encode", "decode", "round trip"])
def test_codec_batch(benchmark, per_op, op, impl):
    """An AppendRequest of 1024 entries of 16 B: the codec (frame + FrameDecoder) against
    msgpack's reused Packer / streaming Unpacker on the same entries as lists; per entry."""
    from openraft_fast._core import codec
    from benches.pyref import MsgpackWire
    benchmark.group = f"codec {op}, {cases.CODEC_BATCH} x {cases.CODEC_PAYLOAD} B"
    req = cases.codec_request()
    dec, wire = codec.FrameDecoder(), MsgpackWire()
    cases.codec_check(req, dec, wire)
    if impl == "cy_py":
        frame = cases.codec_encode(req)
        fn, arg = {"encode": (cases.codec_encode, req), "decode": (dec.feed, frame),
                   "round trip": (lambda r: cases.codec_round_trip(dec, r), req)}[op]
    else:
        lists = cases.codec_request_as_lists(req)
        packed = wire.encode(lists)
        fn, arg = {"encode": (wire.encode, lists), "decode": (wire.decode, packed),
                   "round trip": (wire.round_trip, lists)}[op]
    out = bench_calls(benchmark, per_op, impl, fn, arg, calls=20, ops_per_call=cases.CODEC_BATCH, unit="entry")
    assert out is not None
