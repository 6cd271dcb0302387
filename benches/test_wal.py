"""WAL benchmarks (issue 10) under pytest-benchmark: reopen time of a 1 M-entry log (10 M when
WAL_BENCH_10M=1: slow, ~1 GB of disk), index memory per entry, unsynced append rate (16 B
payloads, batches of 1024). Figures go to extra_info; `python -m benches.wal` prints a table."""
import os

import pytest

from benches.wal import BATCH, build, index_bytes_per_entry, reopen_seconds

SIZES = [1_000_000] + ([10_000_000] if os.environ.get("WAL_BENCH_10M") == "1" else [])


@pytest.fixture(scope="module", params=SIZES, ids=lambda n: f"{n // 1_000_000}M")
def wal(request, tmp_path_factory):
    n = request.param // BATCH * BATCH
    path = str(tmp_path_factory.mktemp("wal") / "wal")
    rate = build(path, n)
    return path, n, rate


def test_wal_reopen(benchmark, wal):
    path, n, rate = wal
    benchmark.group = "wal reopen"
    benchmark.pedantic(reopen_seconds, args=(path,), rounds=3, iterations=1)
    per = index_bytes_per_entry(path, n)
    benchmark.extra_info.update(entries=n, index_bytes_per_entry=round(per, 2), append_per_s_unsynced=round(rate))
    print(f"\nWAL {n} entries: index {per:.2f} B/entry, unsynced append {rate:,.0f} entries/s")


def test_wal_append_unsynced(benchmark, tmp_path):
    benchmark.group = "wal append (16 B, batches of 1024, no sync wait)"
    n = 256 * BATCH
    paths = iter(str(tmp_path / f"w{i}") for i in range(100))
    rates = []
    benchmark.pedantic(lambda: rates.append(build(next(paths), n)), rounds=3, iterations=1)
    benchmark.extra_info.update(entries=n, append_per_s_median=round(sorted(rates)[1]))


def test_b4_cluster_on_wal(benchmark):
    """B4: 3 nodes in one process, each on its own WalLogStore (every acknowledged write fsynced
    on a quorum), 1 and 256 clients, next to the disk's own 4 KiB write + fdatasync rate (one
    loop, and three at once as the three nodes share the disk)."""
    from openraft_fast._aio import run
    from openraft_fast.bench.local import bench_local

    seconds = float(os.environ.get("BENCH_SECONDS", "1.0"))
    benchmark.group = "B4 wal cluster"
    rows = []
    benchmark.pedantic(lambda: rows.extend(run(bench_local(3, [1, 256], 1, 0, seconds, store="wal"))),
                       rounds=1, iterations=1)
    for r in rows:
        key = r.system.replace("-", "_") if r.system.startswith("disk") else f"clients_{r.clients}"
        benchmark.extra_info[f"{key}_per_s"] = round(r.put_per_s)
        benchmark.extra_info[f"{key}_p99_us"] = round(r.p99_us)
    print("\n" + "\n".join(f"{r.transport:10s} clients={r.clients:<4d} {r.put_per_s:>10,.0f}/s p99 {r.p99_us:,.0f} us"
                           for r in rows))
