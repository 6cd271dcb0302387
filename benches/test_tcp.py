"""Benchmark B3 (DESIGN section 6) under pytest-benchmark: 3 processes on 127.0.0.1 over TCP, the
bench process is node 1 and the leader, in-memory log, no-op state machine, 16 B payloads. One
short case per client count for our Raft and for the TCP floor (`openraft_fast.bench_floor`);
each round runs the client loops for BENCH_SECONDS (default 1.0) on a cluster started for the
module, and records put/s, 1e6/(put/s) and latency percentiles in extra_info. The full table with
PySyncObj is `openraft-fast bench --transport tcp --peer pysyncobj`."""
import contextlib
import os

import pytest

from openraft_fast._aio import new_event_loop
from openraft_fast.bench import percentile, run_load, tcp_cluster

SECONDS = float(os.environ.get("BENCH_SECONDS", "1.0"))
PAYLOAD = b"x" * 16


@contextlib.contextmanager
def _cluster(system):
    loop = new_event_loop()
    cm = tcp_cluster(system, 3)
    try:
        writer = loop.run_until_complete(cm.__aenter__()).writer
        try:
            yield loop, writer
        finally:
            loop.run_until_complete(cm.__aexit__(None, None, None))
    finally:
        loop.close()


@pytest.fixture(scope="module")
def ours():
    with _cluster("ours") as c:
        yield c


@pytest.fixture(scope="module")
def floor():
    with _cluster("floor") as c:
        yield c


def _measure(benchmark, cluster, clients):
    loop, writer = cluster
    figures = {}

    def one_round():
        n, elapsed, lats = loop.run_until_complete(run_load(writer, clients, 1, PAYLOAD, SECONDS))
        lats = sorted(lats)
        figures.update(put_per_s=n / elapsed, inverse_rate_us=elapsed * 1e6 / n,
                       p50_us=percentile(lats, 0.5) * 1e6, p99_us=percentile(lats, 0.99) * 1e6)
        return n

    n = benchmark.pedantic(one_round, rounds=1, iterations=1)
    benchmark.extra_info.update(figures)
    assert n > 0


@pytest.mark.benchmark(group="B3 tcp ours")
@pytest.mark.parametrize("clients", [1, 256])
def test_b3_ours(benchmark, ours, clients):
    _measure(benchmark, ours, clients)
    assert ours[1].is_leader()


@pytest.mark.benchmark(group="B3 tcp floor")
@pytest.mark.parametrize("clients", [1, 256])
def test_b3_floor(benchmark, floor, clients):
    _measure(benchmark, floor, clients)
