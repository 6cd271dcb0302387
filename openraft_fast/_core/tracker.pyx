"""Per-target progress plus the quorum-accepted index (see tracker.pxd)."""
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int64_t

from openraft_fast._core.progress cimport Progress
from openraft_fast._core.quorum cimport QuorumSet


cdef class ProgressTracker:
    def __cinit__(self, *args, **kwargs):
        self._matched = NULL
        self._ack_seq = NULL
        self._ack_time = NULL

    def __dealloc__(self):
        PyMem_Free(self._matched)
        PyMem_Free(self._ack_seq)
        PyMem_Free(self._ack_time)

    def __init__(self, QuorumSet quorum not None, self_id, targets, int64_t last_index,
                 Py_ssize_t max_inflight=64, int64_t max_inflight_bytes=1 << 62,
                 ProgressTracker previous=None, int64_t self_matched=0):
        """Progress for every id in `targets` (voters and learners; self is skipped).

        With `previous` (a membership change under the same leader), targets it already
        tracked keep their Progress and matched index.
        """
        cdef Py_ssize_t i
        cdef Progress p
        self.quorum = quorum
        self.self_id = self_id
        self.self_slot = quorum.slot_of(self_id)
        self._matched = <int64_t*>PyMem_Malloc(max(quorum.n, 1) * sizeof(int64_t))
        self._ack_seq = <int64_t*>PyMem_Malloc(max(quorum.n, 1) * sizeof(int64_t))
        self._ack_time = <int64_t*>PyMem_Malloc(max(quorum.n, 1) * sizeof(int64_t))
        if self._matched == NULL or self._ack_seq == NULL or self._ack_time == NULL:
            raise MemoryError()
        for i in range(quorum.n):
            self._matched[i] = 0
            self._ack_seq[i] = 0
            self._ack_time[i] = -1
        self.progress = {}
        for t in targets:
            if t == self_id:
                continue
            if previous is not None and t in previous.progress:
                p = previous.progress[t]
                p.slot = quorum.slot_of(t)
            else:
                p = Progress(t, quorum.slot_of(t), last_index, max_inflight, max_inflight_bytes)
            self.progress[t] = p
            if p.slot >= 0:
                self._matched[p.slot] = p.matched
                if previous is not None:
                    old_slot = previous.quorum.slot_of(t)
                    if old_slot >= 0:
                        if previous._matched[old_slot] > p.matched:
                            self._matched[p.slot] = previous._matched[old_slot]
                        self._ack_seq[p.slot] = previous._ack_seq[old_slot]
                        self._ack_time[p.slot] = previous._ack_time[old_slot]
        for v in quorum.ids:
            if v != self_id and v not in self.progress:
                raise ValueError(f"voter {v} has no progress: it must be among the targets")
        if self.self_slot >= 0:
            if previous is not None and previous.self_slot >= 0:
                self_matched = max(self_matched, previous._matched[previous.self_slot])
            self._matched[self.self_slot] = self_matched
        self.accepted = quorum.c_committed_index(self._matched)

    cdef int64_t c_update(self, Py_ssize_t slot, int64_t index) noexcept:
        """Raise slot's matched index to `index`; returns the quorum-accepted index.

        The accepted index can only move when this voter crosses it (old <= accepted < new),
        so other updates skip the order statistic.
        """
        cdef int64_t old
        if slot < 0:
            return self.accepted
        old = self._matched[slot]
        if index <= old:
            return self.accepted
        self._matched[slot] = index
        if old <= self.accepted < index:
            self.accepted = self.quorum.c_committed_index(self._matched)
        return self.accepted

    cdef void c_ack(self, Py_ssize_t slot, int64_t seq, int64_t sent_at) noexcept:
        if slot < 0:
            return
        if seq > self._ack_seq[slot]:
            self._ack_seq[slot] = seq
        if sent_at > self._ack_time[slot]:
            self._ack_time[slot] = sent_at

    cdef int64_t c_quorum_seq(self, int64_t self_seq) noexcept:
        """The largest seq such that a write quorum acked a message sent at or after it."""
        if self.self_slot >= 0:
            self._ack_seq[self.self_slot] = self_seq
        return self.quorum.c_committed_index(self._ack_seq)

    cdef int64_t c_quorum_time(self, int64_t self_time) noexcept:
        """The latest send time such that a write quorum acked a message sent at or after it
        (-1 if none): the leader lease runs from there."""
        if self.self_slot >= 0:
            self._ack_time[self.self_slot] = self_time
        return self.quorum.c_committed_index(self._ack_time)

    def ack(self, node_id, int64_t seq, int64_t sent_at):
        self.c_ack(self.quorum.slot_of(node_id), seq, sent_at)

    def quorum_seq(self, int64_t self_seq):
        return self.c_quorum_seq(self_seq)

    def quorum_time(self, int64_t self_time):
        return self.c_quorum_time(self_time)

    cdef Progress c_get(self, object node_id):
        return <Progress>self.progress.get(node_id)

    # Python-facing API.
    def update(self, node_id, int64_t index):
        """Raise node_id's matched index (self included); returns the quorum-accepted index."""
        cdef Py_ssize_t slot = self.quorum.slot_of(node_id)
        return self.c_update(slot, index)

    def matched(self, node_id):
        cdef Py_ssize_t slot = self.quorum.slot_of(node_id)
        if slot >= 0:
            return self._matched[slot]
        p = self.progress.get(node_id)
        return None if p is None else p.matched

    def __getitem__(self, node_id):
        return self.progress[node_id]

    def __contains__(self, node_id):
        return node_id in self.progress

    def __repr__(self):
        return f"ProgressTracker(accepted={self.accepted}, {list(self.progress.values())!r})"
