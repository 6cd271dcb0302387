"""Watchers of one node's KV state (GET /v1/watch): each watcher gets the changes this node
applies under its key or prefix, in revision order, with no gap and no duplicate, as lines of
JSON.

A watcher starts from `from_revision` (inclusive: the changes kept in the state machine's
history from there on come first) or, without it, after the current revision. It is
registered in the same step as its backlog is read, so nothing applied in between is missed
or repeated. Every line is one event:

- `{"type": "put"|"delete", "key", "value", "revision", "prev_revision"}`;
- `{"type": "progress", "revision"}`: every change up to `revision` was sent (one at the start,
  then every `progress_interval` seconds), so a quiet watcher knows how far it has seen;
- `{"type": "error", "code": "slow_watcher", "revision"}` then the end of the stream: the
  watcher fell more than `max_buffered` bytes behind; resume from the last revision seen.

A watch is served by any node: a follower's watchers see what it has applied.
"""
from __future__ import annotations

import json
import logging
from typing import Callable, List, Optional, Set

from openraft_fast.kv.state_machine import KvStateMachine

_log = logging.getLogger("openraft_fast.kv")

# How far (bytes not yet taken by the client) a watcher may fall behind before it is cut off.
MAX_BUFFERED = 4 << 20
PROGRESS_INTERVAL = 1.0


def change_line(change: tuple) -> bytes:
    """One change of the history (revision, type, key, value, prev_revision) as a JSON line."""
    revision, kind, key, value, prev = change
    return json.dumps({"type": kind, "key": key, "value": value, "revision": revision,
                       "prev_revision": prev}).encode() + b"\n"


def progress_line(revision: int) -> bytes:
    return b'{"type": "progress", "revision": %d}\n' % revision


class Watcher:
    """One watch: a key (`exact`) or a prefix, and where its lines go. Until `attach(write,
    buffered, close)` gives it a way out, it keeps its lines (bounded like the socket)."""

    def __init__(self, hub: "WatchHub", pattern: str, exact: bool, start: int) -> None:
        self.hub = hub
        self.pattern = pattern
        self.exact = exact
        self.start = start              # the first revision it wants (a lagging node applies older ones)
        self.revision = 0               # every change up to this one was handed on
        self._write: Optional[Callable[[bytes], None]] = None
        self._buffered: Optional[Callable[[], int]] = None
        self._close: Optional[Callable[[], None]] = None
        self._pending: List[bytes] = []
        self._pending_bytes = 0
        self.closed = False

    def matches(self, key: str) -> bool:
        return key == self.pattern if self.exact else key.startswith(self.pattern)

    def attach(self, write: Callable[[bytes], None], buffered: Callable[[], int], close: Callable[[], None]) -> None:
        self._write, self._buffered, self._close = write, buffered, close
        pending, self._pending = self._pending, []
        if pending and not self.closed:
            self._send(b"".join(pending))

    def send(self, data: bytes, revision: int) -> None:
        """Hand on lines covering every change up to `revision`."""
        if self.closed:
            return
        self.revision = max(self.revision, revision)
        if self._write is None:
            self._pending.append(data)
            self._pending_bytes += len(data)
            if self._pending_bytes > self.hub.max_buffered:
                self.cut_off()
            return
        self._send(data)

    def _send(self, data: bytes) -> None:
        self._write(data)                                       # type: ignore[misc]
        if self._buffered() > self.hub.max_buffered:            # type: ignore[misc]
            self.cut_off()

    def cut_off(self) -> None:
        """Too far behind: say so and end the stream (the client resumes from its revision)."""
        self.end_with_error("slow_watcher", f"the watcher fell more than {self.hub.max_buffered} bytes behind; "
                                            f"resume from the last revision received")

    def end_with_error(self, code: str, message: str) -> None:
        if self.closed:
            return
        line = json.dumps({"type": "error", "code": code, "revision": self.revision, "message": message}).encode() \
            + b"\n"
        if self._write is not None:
            self._write(line)
        else:
            self._pending.append(line)
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.hub.forget(self)
            if self._close is not None:
                self._close()


class WatchHub:
    """The watchers of one state machine: it hands them what each apply changed."""

    def __init__(self, sm: KvStateMachine, *, max_buffered: int = MAX_BUFFERED) -> None:
        self.sm = sm
        self.max_buffered = max_buffered
        self.watchers: Set[Watcher] = set()

    def watch(self, pattern: str, exact: bool, from_revision: Optional[int]) -> Watcher:
        """A watcher registered now, its backlog (the kept changes from `from_revision` on)
        already queued, and a first progress line; CompactedRevision when the backlog is gone."""
        current = self.sm.revision
        w = Watcher(self, pattern, exact, current + 1 if from_revision is None else from_revision)
        backlog = b""
        if from_revision is not None:
            backlog = b"".join(change_line(tuple(c)) for c in self.sm.changes(from_revision) if w.matches(c.key))
        if not self.watchers:
            self.sm.change_listeners.append(self._publish)     # told of applies only while watched
        self.watchers.add(w)
        w.send(backlog + progress_line(current), current)      # may cut it off at once (too big)
        return w

    def _publish(self, changes: Optional[List[tuple]], revision: int) -> None:
        """What one apply changed, up to `revision`: each line is built once, whatever the
        number of watchers it goes to. None: a snapshot replaced the state, so every watcher
        ends (with an error line) and resumes from its revision, here or elsewhere."""
        if changes is None:
            for w in list(self.watchers):
                w.end_with_error("snapshot_installed", "this node installed a snapshot; resume from the last "
                                                       "revision received")
            return
        lines = [(c[0], c[2], change_line(c)) for c in changes]
        for w in list(self.watchers):
            start = w.start
            if w.exact:
                data = b"".join(line for rev, key, line in lines if key == w.pattern and rev >= start)
            else:
                data = b"".join(line for rev, key, line in lines if key.startswith(w.pattern) and rev >= start)
            if data:
                w.send(data, revision)
            else:
                w.revision = revision

    def progress(self) -> None:
        """A progress line to every watcher (periodic: quiet watchers learn the revision)."""
        revision = self.sm.revision
        line = progress_line(revision)
        for w in list(self.watchers):
            w.send(line, revision)

    def forget(self, w: Watcher) -> None:
        self.watchers.discard(w)
        if not self.watchers and self._publish in self.sm.change_listeners:
            self.sm.change_listeners.remove(self._publish)

    def close(self) -> None:
        for w in list(self.watchers):
            w.close()
