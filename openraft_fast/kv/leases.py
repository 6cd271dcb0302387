"""The leader's side of leases: when each one expires, keepalives, and the revoke entry an
expiry writes.

What is replicated (kv.lease_table, through the log): that a lease exists, its TTL and its keys;
a grant and a revoke (explicit or by expiry) are log entries. What is not: deadlines and
keepalives. Only the leader keeps deadlines, on its monotonic clock; a keepalive moves one in
memory, after a lease-read barrier (the leader confirms it still leads, and has applied
everything committed, so it knows the lease still exists). A node that becomes leader gives
every lease its full TTL from then (as etcd does), so a lease never expires earlier than its
TTL after the last keepalive a leader acknowledged: that leader's lease read succeeded, so no
other leader was elected before it, and the next one starts every TTL after its election.
"""
from __future__ import annotations

import asyncio
import heapq
import logging
from typing import Dict, List, Optional, Set, Tuple

from openraft_fast.errors import ForwardToLeader
from openraft_fast.kv import commands
from openraft_fast.kv.txn import LeaseNotFound
from openraft_fast.raft import Raft, ReadPolicy

_log = logging.getLogger("openraft_fast.kv")

# How often the leader looks for expired leases (their keys go within about this after the TTL).
CHECK_INTERVAL = 0.1


class LeaseKeeper:
    """Deadlines of one node's leases (acted on only while it leads)."""

    def __init__(self, raft: Raft, sm, *, check_interval: float = CHECK_INTERVAL) -> None:
        self.raft = raft
        self.sm = sm
        self.check_interval = check_interval
        self.loop = asyncio.get_event_loop()
        self.deadlines: Dict[int, float] = {}
        # At most one entry per lease, at or before its deadline: a keepalive moves only the
        # deadline, and check() puts an entry back at the new one when it finds it early.
        self._heap: List[Tuple[float, int]] = []
        self._queued: Set[int] = set()
        self._revoking: Set[int] = set()        # expired, revoke entry proposed
        self._leading = False
        self._task: Optional[asyncio.Task] = None
        self.expired = 0                        # leases this node revoked by expiry (metrics, tests)
        sm.leases.listeners.append(self._on_lease)

    def start(self) -> "LeaseKeeper":
        self.loop = asyncio.get_running_loop()
        self._task = self.loop.create_task(self._run())
        return self

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._on_lease in self.sm.leases.listeners:
            self.sm.leases.listeners.remove(self._on_lease)

    # ------------------------------------------------------------------ deadlines
    def _set(self, lease: int, ttl: float) -> None:
        deadline = self.loop.time() + ttl
        self.deadlines[lease] = deadline
        if lease not in self._queued:
            self._queued.add(lease)
            heapq.heappush(self._heap, (deadline, lease))

    def _restart_all(self) -> None:
        """Every lease gets its full TTL from now."""
        self.deadlines.clear()
        self._heap.clear()
        self._queued.clear()
        self._revoking.clear()
        for lease, ttl in self.sm.leases.ttl.items():
            self._set(lease, ttl)

    def _on_lease(self, what: str, lease: int, ttl: float) -> None:
        if what == "grant":
            self._set(lease, ttl)
        elif what == "revoke":
            self.deadlines.pop(lease, None)
            self._revoking.discard(lease)
        else:
            self._restart_all()

    def remaining(self, lease: int) -> Optional[float]:
        """Seconds until `lease` expires, as this node's clock counts (None: unknown here)."""
        deadline = self.deadlines.get(lease)
        return None if deadline is None else max(0.0, deadline - self.loop.time())

    # ------------------------------------------------------------------ keepalive
    async def keepalive(self, lease: int, timeout: float) -> float:
        """Renew `lease` for its TTL; returns the TTL. ForwardToLeader off the leader,
        LeaseNotFound when it does not exist (or is expiring)."""
        await asyncio.wait_for(self.raft.ensure_linearizable(ReadPolicy.LEASE_READ | ReadPolicy.READ_INDEX), timeout)
        if not self.raft.is_leader():
            raise ForwardToLeader(self.raft.current_leader(), None)
        ttl = self.sm.leases.ttl.get(lease)
        if ttl is None or lease in self._revoking:
            raise LeaseNotFound(f"lease {lease} does not exist (never granted, revoked or expired)")
        if not self._leading:
            self._leading = True
            self._restart_all()
        self._set(lease, ttl)
        return ttl

    # ------------------------------------------------------------------ expiry
    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.check_interval)
            try:
                self.check()
            except Exception:
                _log.exception("node %s: lease check failed", self.raft.node_id)

    def check(self) -> None:
        leading = self.raft.is_leader()
        if leading and not self._leading:
            self._restart_all()         # a new leader: full TTLs from now
        self._leading = leading
        if not leading:
            return
        now = self.loop.time()
        heap = self._heap
        expired = []
        while heap and heap[0][0] <= now:
            _, lease = heapq.heappop(heap)
            deadline = self.deadlines.get(lease)
            if deadline is None:
                self._queued.discard(lease)             # revoked
            elif deadline > now:
                heapq.heappush(heap, (deadline, lease))  # kept alive meanwhile
            else:
                self._queued.discard(lease)
                if lease not in self._revoking:
                    expired.append(lease)
        if expired:
            self._revoking.update(expired)
            self.loop.create_task(self._revoke(expired))

    async def _revoke(self, leases: List[int]) -> None:
        try:
            await self.raft.client_write(commands.lease_revoke(*leases))
            self.expired += len(leases)
            _log.info("node %s: leases %s expired", self.raft.node_id, leases)
        except Exception as exc:        # not the leader any more, or no quorum: the next leader decides
            _log.info("node %s: revoking expired leases %s failed: %s", self.raft.node_id, leases, exc)
            self._revoking.difference_update(leases)
            for lease in leases:        # still leading: the next check tries again
                deadline = self.deadlines.get(lease)
                if deadline is not None and lease not in self._queued:
                    self._queued.add(lease)
                    heapq.heappush(self._heap, (deadline, lease))
