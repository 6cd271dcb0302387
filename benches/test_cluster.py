"""Cluster benchmarks B1 and B2 (DESIGN section 6) under pytest-benchmark.

3 nodes in one process on the LocalRouter, memory log, no-op state machine. Each round runs the
client loops for BENCH_SECONDS (default 1.0) and records put/s, 1e6/(put/s) and latency percentiles in
extra_info; the time pytest-benchmark reports is the round's wall time. The same harness runs
`openraft-fast bench`.
"""
import os

import pytest

from openraft_fast._aio import new_event_loop
from openraft_fast.bench.load import run_load
from openraft_fast.bench.local import start_local_cluster
from openraft_fast.bench.results import percentile

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
    figures = _run_rounds(benchmark, loop, leader, clients, batch)
    assert figures["put_per_s"] > 0 and leader.is_leader()


def _run_rounds(benchmark, loop, writer, clients, batch) -> dict:
    """One round of `run_load` on `writer` (a Raft or a floor); its figures go to extra_info."""
    figures = {}

    def one_round():
        n, elapsed, lats = loop.run_until_complete(run_load(writer, clients, batch, b"", SECONDS))
        lats = sorted(lats)     # the loop is not running here: the cluster's timers wait
        figures.update(put_per_s=n / elapsed, inverse_rate_us=elapsed * 1e6 / n,
                       p50_us=percentile(lats, 0.5) * 1e6, p99_us=percentile(lats, 0.99) * 1e6)
        return n

    benchmark.pedantic(one_round, rounds=1, iterations=1)
    benchmark.extra_info.update(figures)
    return figures


@pytest.mark.benchmark(group="B1 client_write")
@pytest.mark.parametrize("clients", [1, 64, 256, 1024])
def test_b1_client_write(benchmark, cluster, clients):
    _measure(benchmark, cluster, clients, 1)


@pytest.mark.benchmark(group="B2 client_write_many")
@pytest.mark.parametrize("batch", [64, 1024])
def test_b2_client_write_many(benchmark, cluster, batch):
    _measure(benchmark, cluster, 8, batch)


@pytest.mark.benchmark(group="B1 floors")
@pytest.mark.parametrize("clients", [1, 256, 1024])
@pytest.mark.parametrize("system", ["floor", "ceiling"])
def test_b1_floors(benchmark, cluster, system, clients):
    """The in-process floor and the per-op future ceiling (openraft_fast.bench.floors), on the
    cluster's loop: B1's targets are ratios to these, measured in the same session."""
    from openraft_fast.bench.floors import FLOORS
    loop, _ = cluster

    async def make():
        return FLOORS[system]()
    floor = loop.run_until_complete(make())
    assert _run_rounds(benchmark, loop, floor, clients, 1)["put_per_s"] > 0
