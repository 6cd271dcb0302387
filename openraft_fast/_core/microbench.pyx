"""C-level loops over the compiled hot path, for benches/ only (the engine never imports this).

Each `loop_*` function runs a C-level call of the hot path many times between two reads of
CLOCK_MONOTONIC taken in C, and returns the elapsed nanoseconds with a checksum. So
elapsed_ns / ops is the per-call cost from Cython code, free of any Python call overhead.

Every result of the timed calls is added into the checksum, which is returned: the compiler
cannot drop or hoist the calls (most are also virtual calls through a cdef class vtable), and
benches compare the checksum with what the plain-Python reference computes for the same input.
Any untimed setup (fresh buffers, refilling an in-flight window) stays outside the clock reads.
"""
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int64_t
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from openraft_fast._core.log cimport LogBuffer, LogSlice
from openraft_fast._core.progress cimport SEND_LOGS, Progress
from openraft_fast._core.quorum cimport QuorumSet
from openraft_fast._core.tracker cimport ProgressTracker
from openraft_fast._core.types cimport ENTRY_NORMAL, LeaderId


cdef inline int64_t _now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


def loop_committed_index(QuorumSet q not None, vectors, int64_t n):
    """Call q.c_committed_index n times, cycling through `vectors` (sequences of matched
    indexes in slot order; one vector = the same input every call).

    Returns (elapsed_ns, checksum): checksum is the sum of the n results.
    """
    cdef Py_ssize_t k = q.n, m = len(vectors), i, j = 0
    cdef int64_t it, acc = 0, t0, t1
    if m < 1 or n < 1:
        raise ValueError("need at least one vector and n >= 1")
    cdef int64_t* buf = <int64_t*>PyMem_Malloc(m * k * sizeof(int64_t))
    if buf == NULL:
        raise MemoryError()
    try:
        for j in range(m):
            v = vectors[j]
            if len(v) != k:
                raise ValueError(f"vector {j} has {len(v)} indexes, the quorum set has {k} voters")
            for i in range(k):
                buf[j * k + i] = v[i]
        j = 0
        t0 = _now_ns()
        for it in range(n):
            acc += q.c_committed_index(buf + j * k)
            j += 1
            if j == m:
                j = 0
        t1 = _now_ns()
    finally:
        PyMem_Free(buf)
    return t1 - t0, acc


def loop_progress_acks(ProgressTracker t not None, list followers not None, int64_t last_index,
                       Py_ssize_t window, int64_t entries_per_msg, Py_ssize_t rounds):
    """Steady-state replication: the leader handles follower acks as c_on_ack + c_update.

    Each round, untimed: every follower gets `window` messages in flight (c_next_send +
    c_sent, `entries_per_msg` entries each, first index 1, leader's last index `last_index`).
    Timed: the acks come back message by message, round-robin over the followers, each one
    handled as `if p.c_on_ack(msg_id, end): t.c_update(p.slot, end)`.

    Returns (elapsed_ns, acks, checksum): checksum is the sum of the accepted indexes returned.
    """
    cdef Py_ssize_t nf = len(followers), f, w, r, k
    cdef int64_t acc = 0, total = 0, t0
    cdef Progress p
    cdef list progs = []
    for node_id in followers:
        p = t.c_get(node_id)
        if p is None:
            raise KeyError(node_id)
        progs.append(p)
    if nf < 1 or window < 1 or rounds < 0:
        raise ValueError("need followers, window >= 1, rounds >= 0")
    cdef int64_t* ids = <int64_t*>PyMem_Malloc(window * nf * sizeof(int64_t))
    cdef int64_t* ends = <int64_t*>PyMem_Malloc(window * nf * sizeof(int64_t))
    try:
        if ids == NULL or ends == NULL:
            raise MemoryError()
        for r in range(rounds):
            k = 0
            for w in range(window):
                for f in range(nf):
                    p = <Progress>progs[f]
                    if p.c_next_send(1, last_index, entries_per_msg) != SEND_LOGS:
                        raise RuntimeError(f"follower {p.node_id}: nothing to send ({p!r})")
                    ids[k] = p.c_sent(0)
                    ends[k] = p.send_end - 1
                    k += 1
            k = 0
            t0 = _now_ns()
            for w in range(window):
                for f in range(nf):
                    p = <Progress>progs[f]
                    if p.c_on_ack(ids[k], ends[k]):
                        acc += t.c_update(p.slot, ends[k])
                    k += 1
            total += _now_ns() - t0
    finally:
        PyMem_Free(ids)
        PyMem_Free(ends)
    return total, rounds * window * nf, acc


def loop_log_append(LeaderId leader not None, list payloads not None, Py_ssize_t batches,
                    Py_ssize_t rounds):
    """Each round: a fresh LogBuffer (untimed), then `batches` timed c_append calls of
    `payloads` (normal entries), so the buffers' amortized growth is in the figure.

    Returns (elapsed_ns, entries appended, checksum): checksum sums the returned last indexes.
    """
    cdef Py_ssize_t r, b
    cdef int64_t acc = 0, total = 0, t0
    cdef LogBuffer buf
    for r in range(rounds):
        buf = LogBuffer()
        t0 = _now_ns()
        for b in range(batches):
            acc += buf.c_append(leader, payloads, ENTRY_NORMAL)
        total += _now_ns() - t0
        buf = None          # freed outside the clock
    return total, rounds * batches * len(payloads), acc


def loop_log_slice(LogBuffer buf not None, int64_t start, int64_t stop, int64_t n):
    """Take buf.c_slice(start, stop) n times (each slice is freed in the loop, as a discarded
    message would be). Returns (elapsed_ns, checksum): checksum sums len + nbytes of each."""
    cdef int64_t it, acc = 0, t0, t1
    cdef LogSlice s = None
    t0 = _now_ns()
    for it in range(n):
        s = buf.c_slice(start, stop)
        acc += (s.stop - s.start) + s.nbytes
    t1 = _now_ns()
    return t1 - t0, acc


cdef class CallFloor:
    """The cost of merely calling a Cython `def` method from Python (argument parsing and
    boxing of the result included): the floor under every `called from Python` figure."""

    def one(self, a):
        return a

    def two_int64(self, int64_t a, int64_t b):
        return a
