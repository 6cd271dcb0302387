"""`openraft-fast bench --profile FILE`: the bench run under cProfile, saved as a .pstats file.

cProfile sees the event loop's thread only (where every node of a local cluster runs, and the
leader over TCP); compiled Cython code shows as the Python-visible calls into it. Figures taken
under the profiler are slower than without it: profile to find where time goes, not to quote.
For a sampling profile with native frames, run the bench under py-spy instead (README).
"""
from __future__ import annotations

import contextlib
import cProfile
import pstats
import sys
from typing import Iterator, TextIO

TOP = 25


@contextlib.contextmanager
def profiled(path: str, stream: TextIO = sys.stderr, top: int = TOP) -> Iterator[cProfile.Profile]:
    """Profile the block; then write the stats to `path` and the `top` functions by own time
    (tottime) to `stream`."""
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield profile
    finally:
        profile.disable()
        profile.dump_stats(path)
        stream.write(f"\nprofile: {path} (python -m pstats {path}); top {top} by tottime:\n")
        pstats.Stats(profile, stream=stream).sort_stats("tottime").print_stats(top)
