"""Elections seen from outside a `LocalCluster`: `ElectionWatch` polls every node's status
(`GET /v1/cluster/status`) every `interval` seconds and records each rise of the highest term
any node reports (an election: with pre-vote, a term only rises when a node really stands) and
each change of leader (the node reporting state "leader" at the highest term). Used by the
operations tests (tests/ops) and the failover bench (`benches/failover.py --ops`).

Terms are durable, so a rise is never missed whatever the poll interval; two leader changes
between two polls are seen as one (the term rise still counts both elections).
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple


class ElectionWatch:
    """`async with ElectionWatch(cluster) as w:` ... `w.elections_since(mark)`.

    `terms`: (monotonic time, highest term) at start and at each rise. `leaders`: (time, leader
    id, term) at each change of the leader seen (None never recorded: a moment without a
    leader is not a change). `last`: the latest status of every node (None: did not answer)."""

    def __init__(self, cluster: Any, interval: float = 0.02) -> None:
        self.cluster = cluster
        self.interval = interval
        self.terms: List[Tuple[float, int]] = []
        self.leaders: List[Tuple[float, int, int]] = []
        self.last: Dict[int, Optional[Dict[str, Any]]] = {}
        self.polls = 0
        self._task: Optional[asyncio.Task] = None

    async def __aenter__(self) -> "ElectionWatch":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def start(self) -> None:
        await self.poll()
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.poll()

    async def poll(self) -> None:
        try:
            sts = await self.cluster.statuses()
        except KeyError:            # a node was taken out of the cluster meanwhile
            return
        now = time.monotonic()
        self.polls += 1
        self.last = sts
        answered = [st for st in sts.values() if st is not None]
        if not answered:
            return
        top = max(st["term"] for st in answered)
        if not self.terms or top > self.terms[-1][1]:
            self.terms.append((now, top))
        leaders = [(st["term"], i) for i, st in sts.items() if st is not None and st["state"] == "leader"]
        if leaders:
            term, leader = max(leaders)
            # a leader of an older term than the last one seen (an isolated old leader, while
            # the new one did not answer this poll) is not a change
            if not self.leaders or term > self.leaders[-1][2] or (term == self.leaders[-1][2]
                                                                  and leader != self.leaders[-1][1]):
                self.leaders.append((now, leader, term))

    # ---- reading
    @property
    def term(self) -> int:
        return self.terms[-1][1] if self.terms else 0

    @property
    def leader(self) -> Optional[int]:
        return self.leaders[-1][1] if self.leaders else None

    def mark(self) -> Tuple[int, int]:
        """A point to count from: (term rises so far, leader changes so far)."""
        return len(self.terms), len(self.leaders)

    def elections_since(self, mark: Tuple[int, int]) -> int:
        """Term rises since `mark` (an election raising the term by 2 counts once: see `term_change_since`)."""
        return len(self.terms) - mark[0]

    def term_change_since(self, mark: Tuple[int, int]) -> int:
        base = self.terms[mark[0] - 1][1] if mark[0] else 0
        return self.term - base

    def leader_changes_since(self, mark: Tuple[int, int]) -> int:
        """Leader changes since `mark` (a new term with the same leader counts too)."""
        return len(self.leaders) - mark[1]

    def first_leader_after(self, t: float, exclude: Sequence[int] = ()) -> Optional[Tuple[float, int, int]]:
        for rec in self.leaders:
            if rec[0] > t and rec[1] not in exclude:
                return rec
        return None

    def describe(self) -> str:
        t0 = self.terms[0][0] if self.terms else 0.0
        return (f"terms {[(round(t - t0, 3), term) for t, term in self.terms]}, "
                f"leaders {[(round(t - t0, 3), n, term) for t, n, term in self.leaders]}")


def longest_gap(ack_times: Sequence[float], start: float, end: float) -> float:
    """The longest time without an acknowledged write within [start, end] (the edges count:
    from `start` to the first ack, from the last ack to `end`). `ack_times` ascending."""
    import bisect
    lo = bisect.bisect_right(ack_times, start)
    hi = bisect.bisect_right(ack_times, end)
    prev = start
    gap = 0.0
    for t in ack_times[lo:hi]:
        gap = max(gap, t - prev)
        prev = t
    return max(gap, end - prev)


__all__ = ["ElectionWatch", "longest_gap"]
