"""KvClient.lease: a lease kept alive in the background while a block runs, revoked on exit."""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Awaitable, Callable, Optional, TypeVar

from openraft_fast.kv.errors import KvError, KvOutcomeUnknown, KvRequestError

if TYPE_CHECKING:
    from openraft_fast.kv.client import KvClient

_log = logging.getLogger("openraft_fast.kv")
T = TypeVar("T")

# How many times in all a step that is safe to repeat is tried after ambiguous failures.
AMBIGUOUS_ATTEMPTS = 5


async def retry_ambiguous(call: Callable[[], Awaitable[T]]) -> T:
    """`await call()`, again after a KvOutcomeUnknown (a leader lost mid-request), for a step
    whose repeat is harmless; the last failure is raised."""
    for attempt in range(AMBIGUOUS_ATTEMPTS - 1):
        try:
            return await call()
        except KvOutcomeUnknown:
            pass
    return await call()


class Lease:
    """`async with kv.lease(ttl) as lease:` grants a lease, renews it every ttl/3 and revokes it
    on exit. `id` names it in puts; `lost` (an asyncio.Event) is set once the service says it
    no longer exists (it expired: keepalives did not get through within its TTL), after which
    its keys are gone and holding on to what they stood for is unsafe."""

    def __init__(self, client: "KvClient", ttl: float) -> None:
        self.client = client
        self.ttl = ttl
        self.id = 0
        self.lost = asyncio.Event()
        self._keeper: Optional[asyncio.Task] = None

    async def __aenter__(self) -> "Lease":
        # A repeated grant after an ambiguous one: if the first did apply, nobody keeps that
        # lease alive and it expires unused.
        self.id = await retry_ambiguous(lambda: self.client.grant_lease(self.ttl))
        self._keeper = asyncio.get_running_loop().create_task(self._keep_alive())
        return self

    async def __aexit__(self, *exc) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
            self._keeper = None
        if not self.lost.is_set():
            try:
                await self.client.revoke_lease(self.id)
            except KvRequestError as err:
                if err.code != "lease_not_found":
                    raise
            except KvError as err:      # unreachable: it expires by itself
                _log.warning("revoking lease %s failed (%s); it expires within %ss", self.id, err, self.ttl)
            self.lost.set()

    async def _keep_alive(self) -> None:
        period = self.ttl / 3
        while True:
            await asyncio.sleep(period)
            try:
                await self.client.keepalive(self.id)
            except KvRequestError as err:
                if err.code == "lease_not_found":
                    _log.warning("lease %s was lost (expired or revoked)", self.id)
                    self.lost.set()
                    return
            except KvError as err:      # no leader for now: try again, within the TTL
                _log.info("keepalive of lease %s failed: %s", self.id, err)
