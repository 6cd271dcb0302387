"""Locks and leader elections on the KV service (etcd's concurrency package is the model):
`KvClient.lock(name, ttl)` and `KvClient.election(name)`.

Both queue contenders by revision under a prefix. A contender holds a lease (kept alive in
the background) and writes one key `<name>/<lease id>` with it, created once by a
transaction; its revision is its place in the queue. The contender whose key has the lowest
revision holds the lock (or leads). The others each watch the key just before theirs and
look again when it is deleted: no polling, and a release wakes only the next in line. A
holder that crashes stops its keepalives; its lease expires and its key goes, so the next
one takes over after at most the TTL.

Fencing: a holder can be paused (GC, swap, a stopped VM) past its TTL, and then still believe
it holds the lock while the next holder acts. `Lock.fencing_token` is the revision at which
the lock was acquired: it only grows from one holder to the next. Have the resource remember
the highest token it has seen and refuse a request with a lower one (or make its writes
transactions that compare against a key holding the token).
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, AsyncIterator, Optional, Tuple

from openraft_fast.errors import InvalidArgument
from openraft_fast.kv import commands
from openraft_fast.kv.errors import KvCompacted, KvError
from openraft_fast.kv.lease_client import Lease, retry_ambiguous

if TYPE_CHECKING:
    from openraft_fast.kv.client import KvClient
    from openraft_fast.kv.state_machine import KvItem


def _prefix(name: str) -> str:
    commands.check_key(name)
    if name.endswith("/"):
        raise InvalidArgument(f"a lock or election name must not end with '/', got {name!r}")
    return name + "/"


class _Queue:
    """One contender's place under `prefix`: its key, created once with its lease."""

    def __init__(self, client: "KvClient", prefix: str, lease: Lease) -> None:
        self.client = client
        self.prefix = prefix
        self.lease = lease
        self.key = f"{prefix}{lease.id:020d}"
        self.revision = 0

    async def join(self, value: str) -> None:
        """Create our key with `value`. The transaction is idempotent (a repeat finds the key
        and reads its revision), so an ambiguous failure (a leader lost mid-request) is retried."""
        r = await retry_ambiguous(lambda: self.client.txn(
            compare=[{"key": self.key, "target": "exists", "op": "==", "value": False}],
            success=[{"put": {"key": self.key, "value": value, "lease": self.lease.id}}],
            failure=[{"get": {"key": self.key}}]))
        got = r.results[0]
        assert got is not None, f"{self.key}: created or found, it has a revision"
        self.revision = got["revision"]

    async def wait_first(self) -> None:
        """Return once our key has the lowest revision under the prefix."""
        while True:
            items = await self.client.list(self.prefix)
            if not any(i.key == self.key for i in items):
                raise LockLost(f"{self.key} is gone: the lease expired before the lock was acquired")
            ahead = [i for i in items if i.revision < self.revision]
            if not ahead:
                return
            before = max(ahead, key=lambda i: i.revision)
            await self._deleted(before)

    async def _deleted(self, item: "KvItem") -> None:
        """Wait until `item`'s key is deleted (or was already)."""
        try:
            async for change in self.client.watch(key=item.key, from_revision=item.revision + 1):
                if change.type == "delete":
                    return
        except KvCompacted:
            return          # its history is gone: look at the queue again


class LockLost(KvError):
    """The lease of a lock (or a candidacy) expired while it waited: its key is gone."""

    def __init__(self, message: str) -> None:
        super().__init__("lock_lost", message)


class Lock:
    """`async with kv.lock("jobs/cleanup", ttl=10) as lock:` waits for the lock (fairly, in
    the order contenders asked), holds it while the block runs, and releases it on exit.
    `fencing_token`: the revision at which it was acquired (see the module docstring). `lost`:
    an asyncio.Event set if the lease expired meanwhile (the lock is no longer held)."""

    def __init__(self, client: "KvClient", name: str, ttl: float) -> None:
        self.client = client
        self.prefix = _prefix(name)
        self.ttl = commands.check_ttl(ttl)
        self.fencing_token = 0
        self._lease: Optional[Lease] = None

    @property
    def lost(self) -> asyncio.Event:
        if self._lease is None:
            raise InvalidArgument("the lock is not held")
        return self._lease.lost

    async def __aenter__(self) -> "Lock":
        lease = self._lease = Lease(self.client, self.ttl)
        await lease.__aenter__()
        try:
            queue = _Queue(self.client, self.prefix, lease)
            await queue.join("")
            await queue.wait_first()
        except BaseException:
            await lease.__aexit__(None, None, None)     # leave the queue (cancelled, or failed)
            self._lease = None
            raise
        self.fencing_token = queue.revision
        return self

    async def __aexit__(self, *exc) -> None:
        if self._lease is not None:
            await self._lease.__aexit__(*exc)           # revoking the lease deletes our key
            self._lease = None


class Election:
    """A leader election under `name`: `await e.campaign(value)` returns once this contender
    leads (its `value` is the leader's); `await e.resign()` steps down; `await e.leader()` is
    the current (key, value, revision) or None; `async for value in e.observe()` yields the
    leader's value each time it changes (None: no leader)."""

    def __init__(self, client: "KvClient", name: str, ttl: float = 10.0) -> None:
        self.client = client
        self.prefix = _prefix(name)
        self.ttl = commands.check_ttl(ttl)
        self._lease: Optional[Lease] = None
        self.revision = 0

    @property
    def lost(self) -> Optional[asyncio.Event]:
        return None if self._lease is None else self._lease.lost

    async def campaign(self, value: str) -> None:
        commands.check_value(value)
        if self._lease is not None:
            raise InvalidArgument("already campaigning: resign() first")
        lease = self._lease = Lease(self.client, self.ttl)
        await lease.__aenter__()
        try:
            queue = _Queue(self.client, self.prefix, lease)
            await queue.join(value)
            self.revision = queue.revision
            await queue.wait_first()
        except BaseException:
            await self.resign()
            raise

    async def resign(self) -> None:
        if self._lease is not None:
            lease, self._lease = self._lease, None
            await lease.__aexit__(None, None, None)

    async def leader(self) -> Optional[Tuple[str, str, int]]:
        items = await self.client.list(self.prefix)
        if not items:
            return None
        first = min(items, key=lambda i: i.revision)
        return first.key, first.value, first.revision

    async def observe(self) -> AsyncIterator[Optional[str]]:
        """The leader's value now, then each time it changes. A watch on the prefix wakes it;
        the candidates are then read again (a linearizable list), so what it yields is always
        a leader the service had, never one pieced together from replayed changes."""
        items = await self.client.list(self.prefix)
        shown = _first_value(items)
        yield shown
        start = max((i.revision for i in items), default=0) + 1
        async for _ in self.client.watch(self.prefix, from_revision=start):
            now = _first_value(await self.client.list(self.prefix))
            if now != shown:
                shown = now
                yield now


def _first_value(items) -> Optional[str]:
    return min(items, key=lambda i: i.revision).value if items else None
