"""The disk's own sync rate (the floor under benchmark B4): a plain Python loop of one 4 KiB
write plus fdatasync, in the directory the durable benchmark writes to. With `streams` > 1,
that many loops run at once on their own files, as the nodes of an in-process cluster share
one disk; the rate is per stream."""
from __future__ import annotations

import os
import tempfile
import threading
import time
from array import array

from openraft_fast.bench.results import BenchResult, percentile


def _sync_loop(directory: str, stop: float, block: int, lats: array) -> None:
    data = b"\xa5" * block
    fd, path = tempfile.mkstemp(prefix="disk-sync-", dir=directory)
    perf = time.perf_counter
    try:
        t0 = perf()
        while t0 < stop:
            os.write(fd, data)
            os.fdatasync(fd)
            t1 = perf()
            lats.append(t1 - t0)
            t0 = t1
    finally:
        os.close(fd)
        os.unlink(path)


def disk_sync_rate(directory: str, seconds: float = 1.0, block: int = 4096, streams: int = 1) -> BenchResult:
    """Append `block` bytes and fdatasync, in a loop for `seconds` (in `streams` threads at
    once, each on its own file); one row of the bench table: system "disk" (or "disk-xN"), transport "disk",
    put/s = syncs per second per stream."""
    lats = [array("d") for _ in range(streams)]
    start = time.perf_counter()
    stop = start + seconds
    threads = [threading.Thread(target=_sync_loop, args=(directory, stop, block, lats[i])) for i in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    n = sum(len(x) for x in lats)
    rate = n / elapsed / streams if elapsed > 0 else 0.0
    s = sorted(v for x in lats for v in x)
    return BenchResult("disk", 1, streams, 1, block, rate, 1e6 / rate if rate else 0.0, percentile(s, 0.5) * 1e6,
                       percentile(s, 0.99) * 1e6, n, elapsed, "disk" if streams == 1 else f"disk-x{streams}")
