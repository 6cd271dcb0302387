"""The replicated part of leases: which leases exist, their TTL, and the keys attached to each
(a part of KvStateMachine's state, in its snapshots). When a lease expires is not replicated:
the leader decides it on its monotonic clock (kv.leases.LeaseKeeper) and writes a revoke entry.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Set


class LeaseTable:
    """lease id -> (ttl seconds, attached keys); key -> its lease. A lease's id is the log index
    of the entry that granted it."""

    def __init__(self) -> None:
        self.ttl: Dict[int, float] = {}
        self.keys: Dict[int, Set[str]] = {}
        self.of_key: Dict[str, int] = {}
        # Told ("grant", id, ttl), ("revoke", id, 0) or ("reset", 0, 0) (the table was replaced).
        self.listeners: List[Callable[[str, int, float], None]] = []

    def __contains__(self, lease: int) -> bool:
        return lease in self.ttl

    def __len__(self) -> int:
        return len(self.ttl)

    def grant(self, lease: int, ttl: float) -> None:
        self.ttl[lease] = ttl
        self.keys[lease] = set()
        for listener in self.listeners:
            listener("grant", lease, ttl)

    def revoke(self, lease: int) -> List[str]:
        """Forget the lease; returns its keys (sorted), which the caller deletes."""
        del self.ttl[lease]
        keys = sorted(self.keys.pop(lease))
        for key in keys:
            del self.of_key[key]
        for listener in self.listeners:
            listener("revoke", lease, 0)
        return keys

    def attach(self, key: str, lease: int) -> None:
        """`key` was written with `lease` (0: none): it leaves the lease it had, if another."""
        old = self.of_key.get(key, 0)
        if old == lease:
            return
        if old:
            self.keys[old].discard(key)
            del self.of_key[key]
        if lease:
            self.keys[lease].add(key)
            self.of_key[key] = lease

    def detach(self, key: str) -> None:
        """`key` was deleted."""
        old = self.of_key.pop(key, 0)
        if old:
            self.keys[old].discard(key)

    def lease_of(self, key: str) -> int:
        return self.of_key.get(key, 0)

    # ------------------------------------------------------------------ snapshots
    def dump(self) -> list:
        return [[lease, ttl, sorted(self.keys[lease])] for lease, ttl in self.ttl.items()]

    def load(self, dumped: Optional[list]) -> None:
        self.ttl = {}
        self.keys = {}
        self.of_key = {}
        for lease, ttl, keys in dumped or ():
            self.ttl[lease] = ttl
            self.keys[lease] = set(keys)
            for key in keys:
                self.of_key[key] = lease
        for listener in self.listeners:
            listener("reset", 0, 0)
