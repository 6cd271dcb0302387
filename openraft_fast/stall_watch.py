"""StallWatch: report an event loop that stops turning.

A Raft node's heartbeats and election timers run on its event loop. A callback that holds the
loop for longer than an election timeout (a large state machine call, a full garbage
collection, a starved CPU) makes followers stand for election although nothing failed. This
watch tells the operator when and where that happens: a loop timer marks each turn, a thread
notices a mark that is late, samples the loop thread's stack while it is blocked, and logs one
WARNING per stall with its length and the deepest frames it saw.

The thread wakes every `interval` seconds; it needs the GIL only for a moment then.
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

    def __init__(self, threshold: float, interval: Optional[float] = None, logger: logging.Logger = log) -> None:
        if not threshold > 0:
            raise ValueError(f"threshold must be > 0 seconds, got {threshold!r}")
        self.threshold = threshold
        self.interval = interval if interval is not None else min(threshold / 4, 0.025)
        self.log = logger
        self.stalls = 0                 # stalls seen so far
        self.longest = 0.0              # seconds, the longest stall seen
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._loop_thread = 0
        self._mark = 0.0                # time.monotonic() of the loop's last turn
        self._timer: Optional[asyncio.TimerHandle] = None
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()

    def start(self) -> "StallWatch":
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._mark = time.monotonic()
        self._tick()
        self._thread = threading.Thread(target=self._watch, name="openraft-fast-stall-watch", daemon=True)
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
        self._mark = time.monotonic()
        self._timer = self._loop.call_later(self.interval, self._tick)     # type: ignore[union-attr]

    def _watch(self) -> None:
        stack = None            # the loop thread's stack, sampled during the current stall
        started: Optional[float] = None     # the last mark before the current stall
        while not self._stop.wait(self.interval):
            mark = self._mark
            if time.monotonic() - mark - self.interval > self.threshold:
                started = mark
                frame = sys._current_frames().get(self._loop_thread)
                if frame is not None:
                    stack = traceback.extract_stack(frame)
            elif started is not None:
                self._report(started, stack)
                stack, started = None, None

    def _report(self, started: float, stack) -> None:
        # The loop turned again: the stall lasted from its last mark to the first mark after it.
        length = self._mark - started - self.interval
        if length <= self.threshold:
            return
        self.stalls += 1
        self.longest = max(self.longest, length)
        where = "".join(traceback.format_list(stack[-12:])).rstrip() if stack else "  (no Python frame sampled)"
        self.log.warning("event loop blocked for %.0f ms (heartbeats and timers were late; followers may "
                         "stand for election); the loop thread was in:\n%s", length * 1000, where)
