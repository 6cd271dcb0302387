"""EventStream: hands a node's events (openraft_fast.events) to its subscribers.

Each subscriber (a `Subscription`, what `Raft.events()` returns) has its own bounded queue:
one that reads slowly never holds the node back, it loses its oldest events instead and is
told how many (EventsLost). The stream holds subscribers weakly, so one that is dropped (its
`async for` left with break, return or an exception) stops costing anything without a call;
`aclose()` unsubscribes at once.
"""
from __future__ import annotations

import asyncio
import weakref
from collections import deque
from functools import partial
from typing import Callable, Dict, Iterable, Optional

from openraft_fast.events import EventsLost, NodeStopped, RaftEvent

# Events a subscriber may fall behind by before it loses the oldest.
DEFAULT_BACKLOG = 10_000


class Subscription:
    """An async iterator of one subscriber's events: the events given when it subscribed, then
    each change as it happens, ending (StopAsyncIteration) after NodeStopped or aclose()."""

    def __init__(self, loop: asyncio.AbstractEventLoop, backlog: int, first: Iterable[RaftEvent],
                 stream: Optional["EventStream"] = None) -> None:
        self._loop = loop
        self._stream = stream      # forgets this subscriber on aclose()
        self._backlog = backlog
        self._queue: deque = deque()
        self._lost = 0
        self._ended = False        # nothing follows what is queued: NodeStopped, or aclose()
        self._waiter: Optional[asyncio.Future] = None
        for event in first:
            self.push(event)

    def push(self, event: RaftEvent) -> None:
        q = self._queue
        q.append(event)
        if len(q) > self._backlog:
            q.popleft()
            self._lost += 1
        self._wake()

    def end(self) -> None:
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> RaftEvent:
        while True:
            if self._lost:
                # The oldest events were dropped: say so where they were, before the rest.
                n, self._lost = self._lost, 0
                return EventsLost(n, self._loop.time())
            if self._queue:
                return self._queue.popleft()
            if self._ended:
                raise StopAsyncIteration
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def aclose(self) -> None:
        """Stop: the stream forgets this subscriber, and iterating ends."""
        self._queue.clear()
        self._lost = 0
        self.end()
        if self._stream is not None:
            self._stream.forget(self)
            self._stream = None


class EventStream:
    """One node's subscribers. `on_watched(flag)` is told when the first subscriber comes and
    the last goes, so the runtime looks for changes only while someone listens."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_watched: Callable[[bool], None]) -> None:
        self._loop = loop
        self._on_watched = on_watched
        self._subscribers: Dict[int, "weakref.ref[Subscription]"] = {}
        self._stopped: Optional[NodeStopped] = None

    @property
    def watched(self) -> bool:
        return bool(self._subscribers)

    def __len__(self) -> int:
        return len(self._subscribers)

    def subscribe(self, first: Iterable[RaftEvent], backlog: int = DEFAULT_BACKLOG) -> Subscription:
        """A new subscriber, given `first` (the state now); if the node has stopped, only its
        NodeStopped, and it ends."""
        if self._stopped is not None:
            sub = Subscription(self._loop, backlog, (self._stopped,))
            sub.end()
            return sub
        sub = Subscription(self._loop, backlog, first, self)
        key = id(sub)
        self._subscribers[key] = weakref.ref(sub, partial(self._dropped, key))
        if len(self._subscribers) == 1:
            self._on_watched(True)
        return sub

    def publish(self, event: RaftEvent) -> None:
        for ref in list(self._subscribers.values()):
            sub = ref()
            if sub is not None:
                sub.push(event)

    def stop(self, event: NodeStopped) -> None:
        """The node stopped: `event` is every subscriber's last, and later ones get only it."""
        if self._stopped is not None:
            return
        self._stopped = event
        self.publish(event)
        for ref in self._subscribers.values():
            sub = ref()
            if sub is not None:
                sub.end()
        self._subscribers.clear()
        self._on_watched(False)

    def forget(self, sub: Subscription) -> None:
        self._drop(id(sub))

    def _dropped(self, key: int, _ref: "weakref.ref[Subscription]") -> None:
        self._drop(key)       # (the subscriber was garbage: its `async for` is gone)

    def _drop(self, key: int) -> None:
        if self._subscribers.pop(key, None) is not None and not self._subscribers:
            self._on_watched(False)
