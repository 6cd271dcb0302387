"""Print a compact table of ns/op for every microbenchmark pair, ready to paste into an issue.

    python -m benches.report [--repeat N] [--quick]

Columns: the compiled primitive called from Python (Cy<-Py), its C-level API in a C loop
timed in C (Cy<-C, openraft_fast._core.microbench), the plain-Python reference (plain), and
plain / Cy<-Py. Every figure is the median of N short samples; the samples of all cases are
taken in interleaved passes, so a burst of load from a neighbour hits every column alike
rather than one figure. The garbage collector stays enabled, as in a real process. Every
implementation is checked against the plain reference first.
"""
import argparse
import gc
import platform
import resource
import sys
import time
import timeit

from openraft_fast._core import microbench as mb
from openraft_fast.bench.results import percentile

from benches import cases

SAMPLE_S = 0.005            # target duration of one sample


def py_call(stmt, env, per_call=1):
    """Sampler: ns per op of `stmt` in a timeit loop (`per_call` ops per execution)."""
    t = timeit.Timer(stmt, setup="gc.enable()", globals=dict(env, gc=gc))
    number, took = t.autorange()
    number = max(1, int(number * SAMPLE_S / took))
    return lambda: t.timeit(number) * 1e9 / number / per_call


def py_rounds(setup, fn, ops, calls=1):
    """Sampler: ns per op of fn(*setup()), setup untimed, `ops` ops per call, `calls` calls."""
    def sample():
        total = 0
        for _ in range(calls):
            args = setup()
            t0 = time.perf_counter_ns()
            fn(*args)
            total += time.perf_counter_ns() - t0
            del args
        return total / (calls * ops)
    return sample


def c_loop(fn, ops):
    """Sampler: ns per op of a microbench loop, from its own C clock (fn() -> (ns, ...))."""
    return lambda: fn()[0] / ops


def build_cases(quick):
    """[(case, unit, note, {column: sampler})], note a str or a callable evaluated after the
    measurements; checks every implementation on the way."""
    out = []
    n_c = 100_000 if quick else 250_000            # C-loop calls per sample (~2-5 ms)

    # committed index ------------------------------------------------------------------------
    for n in cases.QUORUM_SIZES:
        v = cases.matched_vector(n)
        q, pq = cases.majority("cy", n), cases.majority("plain", n)
        expected = pq.committed_index(v)
        assert q.committed_index(v) == expected
        assert mb.loop_committed_index(q, [v], 10)[1] == 10 * expected
        out.append((f"committed_index, {n} voters", "call", "same input every call", {
            "cy_py": py_call("q.committed_index(v)", {"q": q, "v": v}),
            "cy_c": c_loop(lambda q=q, v=v: mb.loop_committed_index(q, [v], n_c), n_c),
            "plain": py_call("q.committed_index(v)", {"q": pq, "v": v}),
        }))
    n = 5
    vs = cases.matched_vectors(n)
    k = len(vs)
    q, pq = cases.majority("cy", n), cases.majority("plain", n)
    expected = cases.committed_many(pq, vs)
    assert cases.committed_many(q, vs) == expected
    calls = n_c // k * k
    assert mb.loop_committed_index(q, vs, calls)[1] == expected * (calls // k)
    env = {"vs": vs, "committed_many": cases.committed_many}
    out.append((f"committed_index, {n} voters", "call", f"{k} inputs in turn (+ a Python for loop)", {
        "cy_py": py_call("committed_many(q, vs)", dict(env, q=q), k),
        "cy_c": c_loop(lambda: mb.loop_committed_index(q, vs, calls), calls),
        "plain": py_call("committed_many(q, vs)", dict(env, q=pq), k),
    }))

    # progress ack ------------------------------------------------------------------------------
    tc, fc = cases.make_tracker("cy")
    tp, fp = cases.make_tracker("plain")
    s = cases.handle_acks(tc, cases.fill_window(tc, fc))
    assert s == cases.handle_acks(tp, cases.fill_window(tp, fp)) and tc.accepted == tp.accepted
    t3, f3 = cases.make_tracker("cy")
    assert cases.c_progress_acks(t3, f3, 1)[2] == s
    per_window = cases.WINDOW * len(fc)
    ack_rounds = 40 if quick else 100
    floor_plan = cases.fill_window(*cases.make_tracker("plain"))
    out.append((f"progress ack (on_ack + update), {cases.PROGRESS_VOTERS} voters", "ack",
                "in-order acks, half recompute the index", {
        "cy_py": py_rounds(lambda: (tc, cases.fill_window(tc, fc)), cases.handle_acks, per_window, 20),
        "cy_c": c_loop(lambda: cases.c_progress_acks(tc, fc, ack_rounds), ack_rounds * per_window),
        "plain": py_rounds(lambda: (tp, cases.fill_window(tp, fp)), cases.handle_acks, per_window, 5),
    }))

    # log append / slice -----------------------------------------------------------------------
    per_round = cases.APPEND_ENTRIES_PER_ROUND
    for batch, fill in [(b, per_round) for b in cases.LOG_BATCHES] + [(1024, 1 << 16)]:
        pl = cases.payloads(batch)
        batches = fill // batch
        ops = batches * batch
        expected = cases.append_batches(cases.make_log("plain"), cases.LEADER, pl, batches)
        for impl in ("cy", "plain_columnar"):
            assert cases.append_batches(cases.make_log(impl), cases.LEADER, pl, batches) == expected
        assert mb.loop_log_append(cases.LEADER, pl, batches, 1)[2] == expected
        c_rounds = max(1, (1 << 18 if quick else 1 << 19) // fill)

        def append(impl, calls, pl=pl, batches=batches, ops=ops):
            return py_rounds(lambda: (cases.make_log(impl), cases.LEADER, pl, batches),
                             cases.append_batches, ops, calls)

        def note(fill=fill, pl=pl, batches=batches):
            # Whether the buffers' growth page-faults depends on the allocator's state (glibc
            # mmaps big blocks until a free raises its threshold), so count it in this process.
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            mb.loop_log_append(cases.LEADER, pl, batches, 4)
            faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 4
            return f"{fill} entries per fresh log ({faults:.0f} page faults per log, C loop)"

        out.append((f"log append, batches of {batch}", "entry", note, {
            "cy_py": append("cy", c_rounds),
            "cy_c": c_loop(lambda pl=pl, batches=batches, c_rounds=c_rounds:
                           mb.loop_log_append(cases.LEADER, pl, batches, c_rounds), c_rounds * ops),
            "plain": append("plain", max(1, c_rounds // 20)),
            "plain_columnar": append("plain_columnar", max(1, c_rounds // 10)),
        }))

    logs = {impl: cases.filled_log(impl) for impl in ("cy", "plain", "plain_columnar")}
    for size in cases.LOG_BATCHES:
        start, stop = cases.SLICE_START, cases.SLICE_START + size
        ref = cases.slice_payloads_and_leaders("plain", logs["plain"].slice(start, stop))
        assert cases.slice_payloads_and_leaders("cy", logs["cy"].slice(start, stop)) == ref
        assert cases.slice_payloads_and_leaders("cy", logs["plain_columnar"].slice(start, stop)) == ref
        n_s = max(1, n_c // size)

        def sl(impl, start=start, stop=stop, size=size):
            return py_call("log.slice(a, b)", {"log": logs[impl], "a": start, "b": stop}, size)

        out.append((f"log slice of {size}", "entry", "plain = a bare list slice of entry tuples", {
            "cy_py": sl("cy"),
            "cy_c": c_loop(lambda start=start, stop=stop, n_s=n_s:
                           mb.loop_log_slice(logs["cy"], start, stop, n_s), n_s * size),
            "plain": sl("plain"),
            "plain_columnar": sl("plain_columnar"),
        }))

    # wire codec ---------------------------------------------------------------------------------
    from openraft_fast._core import codec
    from benches.pyref import MsgpackWire
    req = cases.codec_request()
    dec, wire = codec.FrameDecoder(), MsgpackWire()
    cases.codec_check(req, dec, wire)
    lists = cases.codec_request_as_lists(req)
    env = {"req": req, "lists": lists, "dec": dec, "wire": wire, "cases": cases,
           "frame": cases.codec_encode(req), "packed": wire.encode(lists)}
    nb = cases.CODEC_BATCH
    for op, cy_stmt, plain_stmt in (
            ("encode", "cases.codec_encode(req)", "wire.encode(lists)"),
            ("decode", "dec.feed(frame)", "wire.decode(packed)"),
            ("encode + decode", "cases.codec_round_trip(dec, req)", "wire.round_trip(lists)")):
        out.append((f"codec {op}, AppendRequest {nb} x {cases.CODEC_PAYLOAD} B", "entry",
                    "plain = msgpack Packer/Unpacker, entries as [term, node, index, kind, payload]", {
            "cy_py": py_call(cy_stmt, env, nb),
            "plain": py_call(plain_stmt, env, nb),
        }))
    hb = cases.codec_heartbeat()
    cases.codec_check(hb, dec, wire)
    env_hb = dict(env, req=hb, lists=cases.codec_request_as_lists(hb))
    out.append(("codec encode + decode, heartbeat", "msg", "one frame each way; plain = msgpack as above", {
        "cy_py": py_call("cases.codec_round_trip(dec, req)", env_hb),
        "plain": py_call("wire.round_trip(lists)", env_hb),
    }))

    # floors -------------------------------------------------------------------------------------
    v = cases.matched_vector(5)
    cf = mb.CallFloor()
    out.append(("floor: call a do-nothing 1-arg method", "call", "Cython def method / Python function", {
        "cy_py": py_call("f.one(v)", {"f": cf, "v": v}),
        "plain": py_call("f(v)", {"f": lambda a: a, "v": v}),
    }))
    out.append(("floor: call a do-nothing (int64, int64) method", "call", "Cython def method", {
        "cy_py": py_call("f.two_int64(a, b)", {"f": cf, "a": 1_000_001, "b": 1_000_002}),
    }))
    out.append(("floor: the ack loop with an empty body", "ack", "inside both from-Python ack figures", {
        "plain": py_rounds(lambda: (floor_plan,), cases.loop_floor, len(floor_plan), 20),
    }))
    return out


def measure(case_list, repeat):
    samples = [{col: [] for col in samplers} for _, _, _, samplers in case_list]
    for _ in range(repeat):
        for (_, _, _, samplers), got in zip(case_list, samples):
            for col, sampler in samplers.items():
                got[col].append(sampler())
    return [{col: percentile(sorted(xs), 0.5) for col, xs in got.items()} for got in samples]


def fmt(x):
    return "-" if x is None else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=31, help="samples per figure (median)")
    ap.add_argument("--quick", action="store_true", help="fewer, shorter samples")
    a = ap.parse_args(argv)
    repeat = 7 if a.quick else a.repeat
    case_list = build_cases(a.quick)
    for _, _, _, samplers in case_list:         # warm-up pass
        for sampler in samplers.values():
            sampler()
    medians = measure(case_list, repeat)
    print(f"ns/op, median of {repeat} interleaved samples; Python {platform.python_version()}, "
          f"{platform.machine()}, {platform.platform()}")
    print()
    print("| case | per | Cy<-Py | Cy<-C | plain | plain/Cy<-Py | plain columnar | note |")
    print("|---|---|--:|--:|--:|--:|--:|---|")
    for (case, unit, note, _), m in zip(case_list, medians):
        if callable(note):
            note = note()
        cy_py, plain = m.get("cy_py"), m.get("plain")
        ratio = f"{plain / cy_py:.1f}x" if cy_py and plain else "-"
        print(f"| {case} | {unit} | {fmt(cy_py)} | {fmt(m.get('cy_c'))} | {fmt(plain)} | {ratio} "
              f"| {fmt(m.get('plain_columnar'))} | {note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
