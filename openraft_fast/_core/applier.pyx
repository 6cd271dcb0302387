"""The apply queue (runtime concern): committed entries, snapshot builds and installs go to
the state machine in order, off the replication path: replication and acks go on while the
state machine works. A state-machine call that completes without waiting runs inline (no task,
no loop iteration); one that waits finishes in a task and the queue resumes after it."""
import heapq
from collections import deque

from cpython.ref cimport PyObject, Py_XDECREF
from libc.stdint cimport int64_t

from openraft_fast._core.eager cimport PyIter_Send, PYGEN_RETURN
from openraft_fast._core.events cimport EventQueue
from openraft_fast._core.log cimport LogSlice
from openraft_fast._core.types cimport make_log_id
from openraft_fast._core.writes cimport ClientWrites
from openraft_fast._aio import finish_in_task
from openraft_fast.errors import StorageError

cdef enum:
    ITEM_APPLY = 1
    ITEM_BUILD = 2
    ITEM_INSTALL = 3



def _failure(tuple item, exc):
    """What a state-machine call that raised says when it stops the node. A raise cannot be
    a verdict on one entry (which one? did the others change the state?), so it is fatal; the
    way to refuse an entry is to return an ApplyError for it."""
    kind = item[0]
    if kind == ITEM_APPLY:
        entries = item[1]
        what = f"apply of entries [{entries.start}, {entries.stop})"
    elif kind == ITEM_BUILD:
        what = "build_snapshot"
    else:
        what = f"install_snapshot of the snapshot up to {item[1].last_log_id}"
    text = f"state machine {what} raised {exc!r}: fatal, the node stops"
    if kind == ITEM_APPLY:
        text += "; return an ApplyError for an entry to refuse it instead"
    return text


cdef class Applier:
    def __init__(self, EventQueue q, loop, sm, engine, ClientWrites writes):
        self.q = q
        self.loop = loop
        self.sm = sm
        self.writes = writes
        self.on_applied = engine.on_applied
        self.on_snapshot_built = engine.on_snapshot_built
        self.on_snapshot_installed = engine.on_snapshot_installed
        self.queue = deque()
        self.applied_index = 0 if engine.applied is None else engine.applied.index
        self.waiters = []

    cdef int apply(self, LogSlice entries) except -1:
        return self.push((ITEM_APPLY, entries))

    cdef int build_snapshot(self) except -1:
        return self.push((ITEM_BUILD,))

    cdef int install_snapshot(self, object meta, object data, object done) except -1:
        """`done` (a future) gets the outcome once the state machine holds the snapshot."""
        return self.push((ITEM_INSTALL, meta, data, done))

    cdef int push(self, tuple item) except -1:
        self.queue.append(item)
        if not self.running:
            self.run()
        return 0

    cdef int run(self) except -1:
        """Run queued items in order, inline while they finish at once."""
        cdef PyObject* out = NULL
        cdef int r
        cdef int kind
        while self.queue and self.q.stopped is None:
            self.running = True
            item = self.queue.popleft()
            kind = item[0]
            if kind == ITEM_APPLY:
                coro = self.sm.apply(item[1])
            elif kind == ITEM_BUILD:
                coro = self.sm.build_snapshot()
            else:
                coro = self.sm.install_snapshot(item[1], item[2])
            try:
                r = PyIter_Send(coro, None, &out)
            except Exception as exc:        # the call failed in its first step
                self.finish(item, None, exc)
                continue
            value = <object>out
            Py_XDECREF(out)
            if r == PYGEN_RETURN:
                self.finish(item, value, None)
            else:
                finish_in_task(coro, value, self._finished_later, item)
                return 0        # _finished_later continues the queue
        self.running = False
        return 0

    def _finished_later(self, tuple item, result, exc):
        self.finish(item, result, exc)
        self.run()

    cdef int finish(self, tuple item, object result, object exc) except -1:
        cdef int kind = item[0]
        cdef LogSlice entries
        if exc is not None:
            if kind == ITEM_INSTALL and not item[3].done():
                item[3].set_exception(exc)
            err = StorageError(_failure(item, exc))
            err.__cause__ = exc
            self.q.on_fatal(err, exc)
            return 0
        if kind == ITEM_APPLY:
            entries = item[1]
            if self.writes.pending:
                self.writes.resolve(entries, result)
            self.advance(entries.stop - 1)
            last = (make_log_id(entries.c_leader_at(entries.stop - 1), entries.stop - 1)
                    if entries.stop > entries.start else None)      # entries.last_log_id, in C
            self.q.push(self.on_applied, (last,))
        elif kind == ITEM_BUILD:
            if self.snapshot_hook is not None:
                self.snapshot_hook(False, result.meta)
            self.q.push(self.on_snapshot_built, (result.meta,))
        else:
            meta = item[1]
            if not item[3].done():
                item[3].set_result(None)
            if meta.last_log_id is not None:
                self.advance(meta.last_log_id.index)
            if self.snapshot_hook is not None:
                self.snapshot_hook(True, meta)
            self.q.push(self.on_snapshot_installed, (meta,))
        return 0

    cdef int advance(self, int64_t index) except -1:
        if index > self.applied_index:
            self.applied_index = index
        w = self.waiters
        while w and w[0][0] <= self.applied_index:
            _, _, fut, value = heapq.heappop(w)
            if not fut.done():
                fut.set_result(value)
        return 0

    def wait_applied(self, int64_t index, value=None):
        """A future that gets `value` once entries up to `index` are applied here."""
        fut = self.loop.create_future()
        if self.q.stopped is not None:
            fut.set_exception(self.q.stopped)
        elif index <= self.applied_index:
            fut.set_result(value)
        else:
            self.waiter_seq += 1
            heapq.heappush(self.waiters, (index, self.waiter_seq, fut, value))
        return fut

    def fail_all(self, BaseException err):
        for _, _, fut, _ in self.waiters:
            if not fut.done():
                fut.set_exception(err)
        self.waiters.clear()
