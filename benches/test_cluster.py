"""Cluster benchmarks B1 and B2 (DESIGN section 6) under pytest-benchmark.

3 nodes in one process on the LocalRouter, memory log, no-op state machine. Each round runs the
client loops for BENCH_SECONDS (default 1.0) and records put/s, 1e6/(put/s) and latency percentiles in
extra_info; the time pytest-benchmark reports is the round's wall time. The same harness runs
`openraft-fast bench`.
"""
import os

import pytest

from openraft_fast._aio import new_event_loop
from openraft_fast.bench import percentile, run_load, start_local_cluster

SECONDS = float(os.environ.get("BENCH_SECONDS", "1.0"))


@pytest.fixture(scope="module")
def cluster():
    loop = new_event_loop()
    router, rafts, leader = loop.run_until_complete(start_local_cluster(3))
    yield loop, leader
    for r in rafts.values():
        loop.run_until_complete(r.shutdown())
    loop.close()


def _measure(benchmark, cluster, clients, batch):
    loop, leader = cluster
    figures = {}

    def one_round():
        n, elapsed, lats = loop.run_until_complete(run_load(leader, clients, batch, b"", SECONDS))
        lats = sorted(lats)     # the loop is not running here: the cluster's timers wait
        figures.update(put_per_s=n / elapsed, inverse_rate_us=elapsed * 1e6 / n,
                       p50_us=percentile(lats, 0.5) * 1e6, p99_us=percentile(lats, 0.99) * 1e6)
        return n

    n = benchmark.pedantic(one_round, rounds=1, iterations=1)
    benchmark.extra_info.update(figures)
    assert n > 0 and leader.is_leader()


@pytest.mark.benchmark(group="B1 client_write")
@pytest.mark.parametrize("clients", [1, 64, 256, 1024])
def test_b1_client_write(benchmark, cluster, clients):
    _measure(benchmark, cluster, clients, 1)


@pytest.mark.benchmark(group="B2 client_write_many")
@pytest.mark.parametrize("batch", [64, 1024])
def test_b2_client_write_many(benchmark, cluster, batch):
    _measure(benchmark, cluster, 8, batch)
