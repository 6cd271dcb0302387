"""The disk's own sync rate (the floor under benchmark B4): a plain Python loop of one 4 KiB
write plus fdatasync, in the directory the durable benchmark writes to."""
from __future__ import annotations

import os
import tempfile
import time
from array import array

from openraft_fast.bench import BenchResult, percentile


def disk_sync_rate(directory: str, seconds: float = 1.0, block: int = 4096) -> BenchResult:
    """Append `block` bytes and fdatasync, in a loop for `seconds`; one row of the bench table
    (transport "disk", put/s = syncs per second)."""
    data = b"\xa5" * block
    fd, path = tempfile.mkstemp(prefix="disk-sync-", dir=directory)
    lats = array("d")
    perf = time.perf_counter
    try:
        start = perf()
        stop = start + seconds
        t0 = start
        while t0 < stop:
            os.write(fd, data)
            os.fdatasync(fd)
            t1 = perf()
            lats.append(t1 - t0)
            t0 = t1
        elapsed = t0 - start
    finally:
        os.close(fd)
        os.unlink(path)
    n = len(lats)
    rate = n / elapsed if elapsed > 0 else 0.0
    s = sorted(lats)
    return BenchResult("disk", 1, 1, 1, block, rate, 1e6 / rate if rate else 0.0,
                       percentile(s, 0.5) * 1e6, percentile(s, 0.99) * 1e6, n, elapsed)
