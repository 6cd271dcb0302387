"""Client writes on the leader (runtime concern): the writes of one loop iteration go to the
engine as one batch; each is tracked until its entry is applied here (resolved with a
ClientWriteResponse, or failed with the ApplyError the state machine returned for it),
overwritten (OutcomeUnknown "truncated"), or, once this node stops leading, left unresolved
past a bound (OutcomeUnknown "leadership_lost")."""
from asyncio import InvalidStateError
from collections import deque

from cpython.list cimport PyList_GET_ITEM
from libc.stdint cimport int64_t

from openraft_fast._core.log cimport LogSlice
from openraft_fast.errors import ApplyError, InvalidArgumentType, OutcomeUnknown

cdef extern from "Python.h":
    # A flag test on the object's type: is it an exception instance?
    bint PyExceptionInstance_Check(object o)


cdef class ClientWriteResponse:
    """The outcome of one client write: its log id, the state machine's answer, and the new
    membership for a membership change."""

    def __init__(self, log_id, data, membership=None):
        self._log_id = log_id
        self.data = data
        self.membership = membership

    @property
    def log_id(self):
        if self._entries is not None:
            self._log_id = self._entries.log_id_at(self._index)
            self._entries = None
        return self._log_id

    def __repr__(self):
        return f"ClientWriteResponse({self.log_id}, {self.data!r})"


cdef ClientWriteResponse lazy_response(LogSlice entries, int64_t index, object data):
    # The log id is built only if the caller reads it: most callers never do.
    cdef ClientWriteResponse r = ClientWriteResponse.__new__(ClientWriteResponse)
    r._entries = entries
    r._index = index
    r.data = data
    return r


cdef class BatchWriteResponses:
    """The outcomes of client_write_many, one per entry, built on access. The batch resolves
    once all its entries are applied, whatever the state machine answered: an entry it
    refused has its ApplyError instance as its response data (`data[i]`, `self[i].data`),
    not raised."""

    def __init__(self, list entries, list data):
        self.entries = entries
        self.data = data

    def __len__(self):
        return len(self.data)

    def log_id(self, Py_ssize_t i):
        cdef LogSlice sl
        cdef Py_ssize_t off, n
        if i < 0:
            i += len(self.data)
        if i >= 0:
            for sl, off, n in self.entries:
                if i < n:
                    return sl.log_id_at(sl.start + off + i)
                i -= n
        raise IndexError(i)

    def __getitem__(self, Py_ssize_t i):
        return ClientWriteResponse(self.log_id(i), self.data[i])

    def __iter__(self):
        for i in range(len(self.data)):
            yield self[i]

    @property
    def last_log_id(self):
        return self.log_id(len(self.data) - 1)


cdef class PendingWrite:
    def __cinit__(self, int64_t first, int64_t n, list futs, object batch_fut):
        self.first = first
        self.n = n
        self.futs = futs
        self.batch_fut = batch_fut
        if batch_fut is not None:
            self.batch_parts = []
            self.batch_data = []

    cdef int fail(self, BaseException err) except -1:
        """Fail every caller of this write: its per-entry futures, or its batch future."""
        if self.futs is not None:
            for fut in self.futs:
                if not fut.done():
                    fut.set_exception(err)
        elif not self.batch_fut.done():
            self.batch_fut.set_exception(err)
        return 0


cpdef bytes as_payload(object value):
    """A payload as the immutable bytes the log keeps (a bytearray or memoryview is copied, so
    changing it after the call cannot change the entry); InvalidArgumentType otherwise."""
    if type(value) is bytes:
        return value
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise InvalidArgumentType(f"a payload must be bytes, bytearray or memoryview, got {type(value).__name__}")
    return bytes(value)


def as_payloads(list values):
    """as_payload of each value: `values` itself when all are bytes (checked in one C loop, ~1 ns
    an entry), else a new list."""
    cdef Py_ssize_t i
    for i in range(len(values)):
        if type(<object>PyList_GET_ITEM(values, i)) is not bytes:
            return [as_payload(v) for v in values]
    return values


def fail_sinks(list sinks, BaseException err):
    """Fail the writers of a batch not yet appended (ClientWrites.take_batch's sinks)."""
    for sink in sinks:
        fut = sink[1] if type(sink) is tuple else sink
        if not fut.done():
            fut.set_exception(err)


cdef class ClientWrites:
    def __init__(self, loop, submit, is_leader, double orphan_bound):
        self.loop = loop
        self.submit = submit
        self.is_leader = is_leader
        self.payloads = []
        self.sinks = []
        self.pending = deque()
        self.orphan_bound = orphan_bound

    cdef int add(self, object payload, object fut) except -1:
        self.payloads.append(payload)
        self.sinks.append(fut)
        return self._schedule()

    cdef int add_many(self, list payloads, object fut) except -1:
        self.payloads.extend(payloads)
        self.sinks.append((len(payloads), fut))
        self.has_many = True
        return self._schedule()

    cdef int _schedule(self) except -1:
        """Submit this loop iteration's writes once, after the callers of this iteration."""
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.submit)
        return 0

    cdef tuple take_batch(self):
        """(payloads, sinks, many) of this loop iteration; the next write starts a new batch.
        A sink is a single write's future, or (count, future) of a client_write_many."""
        batch = (self.payloads, self.sinks, self.has_many)
        self.payloads = []
        self.sinks = []
        self.has_many = False
        self.scheduled = False
        return batch

    cdef int track(self, int64_t first, list sinks, bint many) except -1:
        """The batch's entries were appended from index `first`."""
        cdef int64_t n
        if not many:
            # Only single writes (the common case): one record for the whole batch.
            self.pending.append(PendingWrite(first, len(sinks), sinks, None))
            return 0
        for sink in sinks:
            if type(sink) is tuple:
                n, fut = sink
                self.pending.append(PendingWrite(first, n, None, fut))
                first += n
            else:
                self.pending.append(PendingWrite(first, 1, [sink], None))
                first += 1
        return 0

    cdef int resolve(self, LogSlice entries, object responses) except -1:
        """Entries [start, stop) were applied with these responses: resolve their writers."""
        cdef int64_t s = entries.start, e = entries.stop, lo, hi, end, i
        cdef PendingWrite w
        cdef list futs
        pending = self.pending
        while pending:
            w = pending[0]
            if w.first >= e:
                break
            lo = w.first if w.first > s else s
            end = w.first + w.n
            hi = end if end < e else e
            if lo < hi:
                if w.futs is not None:
                    futs = w.futs
                    for i in range(lo, hi):
                        r = responses[i - s]
                        try:
                            # The state machine refused this entry: its writer gets the error.
                            # (The flag test first: a response is rarely an exception.)
                            if PyExceptionInstance_Check(r) and isinstance(r, ApplyError):
                                futs[i - w.first].set_exception(r)
                            else:
                                futs[i - w.first].set_result(lazy_response(entries, i, r))
                        except InvalidStateError:
                            pass        # the caller cancelled it (cheaper than asking done() each time)
                else:
                    w.batch_parts.append((entries, lo - s, hi - lo))
                    w.batch_data.extend(responses[lo - s:hi - s])
            if hi < end:
                break
            pending.popleft()
            if w.batch_fut is not None and not w.batch_fut.done():
                w.batch_fut.set_result(BatchWriteResponses(w.batch_parts, w.batch_data))
        return 0

    cdef int fail_after(self, int64_t after) except -1:
        """Entries past `after` are being truncated here. Another node may still hold them and a
        later leader may commit them: their outcome is unknown to this node."""
        cdef PendingWrite w
        keep = deque()
        err = None
        for w in self.pending:
            if w.first + w.n - 1 <= after:
                keep.append(w)
                continue
            if err is None:
                err = OutcomeUnknown(OutcomeUnknown.TRUNCATED, "the entry was overwritten by another leader's log")
            w.fail(err)
        self.pending = keep
        return 0

    cdef int arm_orphans(self) except -1:
        """This node no longer leads: its pending writes (appended here) may still be applied
        (a new leader commits them) or truncated; give that `orphan_bound` seconds."""
        cdef PendingWrite w
        if not self.pending or self.orphan_timer is not None:
            return 0
        w = self.pending[len(self.pending) - 1]     # (no negative indexes: wraparound is off)
        self.orphan_timer = self.loop.call_later(self.orphan_bound, self._expire_orphans, w.first + w.n - 1)
        return 0

    def _expire_orphans(self, int64_t upto):
        """The bound passed: pending writes up to index `upto` that are neither applied nor
        truncated fail with OutcomeUnknown("leadership_lost"), unless this node leads again
        (then they are its writes again and it commits them)."""
        cdef PendingWrite w
        self.orphan_timer = None
        if self.is_leader():
            return
        pending = self.pending
        err = None
        while pending and (<PendingWrite>pending[0]).first <= upto:
            w = pending.popleft()
            if err is None:
                err = OutcomeUnknown(OutcomeUnknown.LEADERSHIP_LOST,
                                     f"this node stopped leading and did not learn the outcome within {self.orphan_bound}s")
            w.fail(err)
        if pending:
            self.arm_orphans()

    def fail_all(self, BaseException err, BaseException unknown):
        """The node stops: writes not yet submitted fail with `err`; submitted ones (appended,
        maybe held by another node that may commit them) with `unknown`."""
        cdef PendingWrite w
        if self.orphan_timer is not None:
            self.orphan_timer.cancel()
            self.orphan_timer = None
        for w in self.pending:
            w.fail(unknown)
        self.pending.clear()
        fail_sinks(self.sinks, err)
        self.sinks = []
        self.payloads = []
