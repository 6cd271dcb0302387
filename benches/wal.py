"""WAL figures (issue 10): time to reopen a log of 1 M (and 10 M) entries, index memory per
entry, and the append rate without waiting for sync (16 B payloads, batches of 1024).

    python -m benches.wal [--entries 1000000,10000000] [--dir DIR]

prints a table; benches/test_wal.py runs the same measurements under pytest-benchmark.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import tempfile
import time
import tracemalloc

from openraft_fast._core.log import LogSlice
from openraft_fast._core.types import LeaderId
from openraft_fast.storage import WalLogStore

BATCH = 1024
PAYLOAD = b"0123456789abcdef"       # 16 B


def _batch(start: int) -> LogSlice:
    return LogSlice(start, [PAYLOAD] * BATCH, b"\0" * BATCH, [(start, LeaderId(1, 1))])


async def _fill(store: WalLogStore, entries: int) -> float:
    """Append `entries` (a multiple of BATCH) in batches; the seconds the append calls took (the
    writer thread syncs meanwhile, off the loop; the final flush is not counted)."""
    nop = _nop
    spent = 0.0
    perf = time.perf_counter
    i = store.last_index + 1
    end = i + entries
    while i < end:
        s = _batch(i)
        t0 = perf()
        store.append(s, nop)
        spent += perf() - t0
        i += BATCH
        if (i // BATCH) % 256 == 0:
            await asyncio.sleep(0)      # let the loop run the flush callbacks
    await store.flush()
    return spent


def _nop() -> None:
    pass


def build(path: str, entries: int) -> float:
    """A WAL of `entries` entries at `path`; returns the unsynced append rate (entries/s)."""
    async def main():
        st = WalLogStore(path)
        try:
            return entries / await _fill(st, entries)
        finally:
            await st.close()
    return asyncio.run(main())


def reopen_seconds(path: str) -> float:
    """Seconds to open (recover, index) the WAL at `path`."""
    t0 = time.perf_counter()
    st = WalLogStore(path)
    dt = time.perf_counter() - t0
    st.close_now()
    return dt


def index_bytes_per_entry(path: str, entries: int) -> float:
    """Memory the open store keeps (traced allocations after open), per entry."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        st = WalLogStore(path)
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    st.close_now()
    return used / entries


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m benches.wal", description=__doc__.splitlines()[0])
    p.add_argument("--entries", default="1000000", help="comma-separated log sizes (default 1000000)")
    p.add_argument("--dir", default=None, help="where the logs go (default: a temp dir)")
    args = p.parse_args(argv)
    sizes = [int(x) // BATCH * BATCH for x in args.entries.split(",")]
    print(f"{'entries':>10s} {'append/s (no sync)':>19s} {'reopen s':>9s} {'index B/entry':>14s}")
    for n in sizes:
        root = tempfile.mkdtemp(prefix="orf-wal-bench-", dir=args.dir)
        try:
            rate = build(os.path.join(root, "wal"), n)
            secs = min(reopen_seconds(os.path.join(root, "wal")) for _ in range(3))
            per = index_bytes_per_entry(os.path.join(root, "wal"), n)
            print(f"{n:>10d} {rate:>19,.0f} {secs:>9.3f} {per:>14.2f}", flush=True)
        finally:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
