"""Benchmark B3 (DESIGN section 6) under pytest-benchmark: 3 processes on 127.0.0.1 over TCP, the
bench process is node 1 and the leader, in-memory log, no-op state machine, 16 B payloads. One
short case per client count for our Raft and for the TCP floor (`openraft_fast.bench.tcp_floor`);
each round runs the client loops for BENCH_SECONDS (default 1.0) on a cluster started for the
module, and records put/s, 1e6/(put/s), latency percentiles and CPU us per entry (the leader, each
follower) in extra_info. The full table with
PySyncObj is `openraft-fast bench --transport tcp --peer pysyncobj`."""
import contextlib
import os

import pytest

from openraft_fast._aio import new_event_loop
from openraft_fast.bench.load import run_load
from openraft_fast.bench.results import cpu_seconds, percentile
from openraft_fast.bench.tcp import tcp_cluster

SECONDS = float(os.environ.get("BENCH_SECONDS", "1.0"))
PAYLOAD = b"x" * 16


@contextlib.contextmanager
def _cluster(system):
    loop = new_event_loop()
    cm = tcp_cluster(system, 3)
    try:
        cluster = loop.run_until_complete(cm.__aenter__())
        try:
            yield loop, cluster
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
    loop, cl = cluster
    figures = {}

    def one_round():
        marks = []
        n, elapsed, lats = loop.run_until_complete(run_load(
            cl.writer, clients, 1, PAYLOAD, SECONDS, on_measure=lambda _: marks.append(cpu_seconds(cl.follower_pids))))
        used = [b - a for a, b in zip(*marks)]
        lats = sorted(lats)
        figures.update(put_per_s=n / elapsed, inverse_rate_us=elapsed * 1e6 / n,
                       p50_us=percentile(lats, 0.5) * 1e6, p99_us=percentile(lats, 0.99) * 1e6,
                       leader_cpu_us_per_entry=used[0] * 1e6 / n,
                       follower_cpu_us_per_entry=sum(used[1:]) / len(used[1:]) * 1e6 / n)
        return n

    n = benchmark.pedantic(one_round, rounds=1, iterations=1)
    benchmark.extra_info.update(figures)
    assert n > 0


@pytest.mark.benchmark(group="B3 tcp ours")
@pytest.mark.parametrize("clients", [1, 256])
def test_b3_ours(benchmark, ours, clients):
    _measure(benchmark, ours, clients)
    assert ours[1].writer.is_leader()


@pytest.mark.benchmark(group="B3 tcp floor")
@pytest.mark.parametrize("clients", [1, 256])
def test_b3_floor(benchmark, floor, clients):
    _measure(benchmark, floor, clients)
