"""StallWatch: report an event loop that stops turning.

A Raft node's heartbeats and election timers run on its event loop. A callback that holds the
loop for longer than an election timeout (a large state machine call, a full garbage
collection) or a process the OS does not schedule (a starved CPU) makes followers stand for
election although nothing failed. This watch tells the operator when that happens: a loop
timer notes how late it fires and logs one WARNING per stall with its length.

With `stacks=True` a thread also samples the loop thread's stack while it is blocked and the
warning says where it was. That costs: the thread takes the GIL every `interval`, and each
time the loop thread waits until the OS runs it, which on a busy machine adds delays of its
own. Use it to find a stall, not all the time.
"""
from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from typing import Optional

log = logging.getLogger("openraft_fast.stall")


class StallWatch:
    """Watch the running loop; log a WARNING for every stall longer than `threshold` seconds."""

    def __init__(self, threshold: float, interval: Optional[float] = None, stacks: bool = False,
                 logger: logging.Logger = log) -> None:
        if not threshold > 0:
            raise ValueError(f"threshold must be > 0 seconds, got {threshold!r}")
        self.threshold = threshold
        self.interval = interval if interval is not None else min(threshold / 2, 0.05)
        self.stacks = stacks
        self.log = logger
        self.stalls = 0                 # stalls seen so far
        self.longest = 0.0              # seconds, the longest stall seen
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._loop_thread = 0
        self._mark = 0.0                # time.monotonic() of the loop's last turn
        self._timer: Optional[asyncio.TimerHandle] = None
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._stack: Optional[traceback.StackSummary] = None     # sampled during a stall (stacks=True)

    def start(self) -> "StallWatch":
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._mark = time.monotonic()
        self._timer = self._loop.call_later(self.interval, self._tick)
        if self.stacks:
            self._thread = threading.Thread(target=self._sample, name="openraft-fast-stall-watch", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._thread is not None:
            self._thread.join(1.0)
            self._thread = None

    def _tick(self) -> None:
        now = time.monotonic()
        late = now - self._mark - self.interval
        self._mark = now
        if late > self.threshold:
            self._report(late)
        self._timer = self._loop.call_later(self.interval, self._tick)     # type: ignore[union-attr]

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            if time.monotonic() - self._mark - self.interval > self.threshold:
                frame = sys._current_frames().get(self._loop_thread)
                if frame is not None:
                    self._stack = traceback.extract_stack(frame)

    def _report(self, length: float) -> None:
        self.stalls += 1
        self.longest = max(self.longest, length)
        stack, self._stack = self._stack, None
        where = ""
        if self.stacks:
            where = "; the loop thread was in:\n" + ("".join(traceback.format_list(stack[-12:])).rstrip()
                                                      if stack else "  (no Python frame sampled)")
        self.log.warning("event loop blocked for %.0f ms (heartbeats and timers were late; followers may stand "
                         "for election)%s", length * 1000, where)
