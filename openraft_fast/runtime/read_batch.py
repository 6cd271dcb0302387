"""Read points on the leader (runtime concern): the reads of one loop iteration are confirmed
by one quorum round (or the lease) per policy; each caller's future gets the read log id or
the engine's error. Waiting for apply is `reads.ensure_linearizable`'s part."""
from __future__ import annotations

import asyncio
import itertools
from typing import Any, Callable, Dict, List, Tuple

from openraft_fast._aio import fail


class ReadBatch:
    def __init__(self, loop: asyncio.AbstractEventLoop, post: Callable[..., None], ensure_linearizable: Callable,
                 stopped: Callable[[], Any]) -> None:
        self.loop = loop
        self.post = post
        self.ensure_linearizable = ensure_linearizable
        self.stopped = stopped
        self.batch: Dict[int, Tuple[asyncio.Future, int]] = {}
        self.scheduled = False
        self.ids = itertools.count(1)
        self.waiters: Dict[int, asyncio.Future] = {}

    def read(self, policy: int) -> asyncio.Future:
        """Confirm a read point by `policy` (engine READ_INDEX or LEASE_READ)."""
        fut = self.loop.create_future()
        stopped = self.stopped()
        if stopped is not None:
            fut.set_exception(stopped)
            return fut
        self.batch[next(self.ids)] = (fut, policy)
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self._submit)
        return fut

    def _submit(self) -> None:
        self.scheduled = False
        batch, self.batch = self.batch, {}
        by_policy: Dict[int, List[int]] = {}
        for rid, (fut, policy) in batch.items():
            self.waiters[rid] = fut
            by_policy.setdefault(policy, []).append(rid)
        for policy, rids in by_policy.items():
            self.post(self.ensure_linearizable, rids, policy)

    def reply(self, req_id: int, value: Any, error: Any) -> None:
        """The engine's Reply command: the read point of `req_id` is confirmed (or refused)."""
        fut = self.waiters.pop(req_id, None)
        if fut is None or fut.done():
            return
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(value)

    def fail_all(self, err: BaseException) -> None:
        for fut, _ in self.batch.values():
            fail(fut, err)
        self.batch.clear()
        for fut in self.waiters.values():
            fail(fut, err)
        self.waiters.clear()
