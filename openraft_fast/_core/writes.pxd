# Client writes on the leader: batched per loop iteration, tracked until applied or failed.
from libc.stdint cimport int64_t

from openraft_fast._core.log cimport LogSlice


cpdef bytes as_payload(object value)


cdef class ClientWriteResponse:
    cdef object _log_id                 # built on first access from (_entries, _index)
    cdef LogSlice _entries
    cdef int64_t _index
    cdef readonly object data
    cdef readonly object membership


cdef class BatchWriteResponses:
    cdef readonly list entries          # [(LogSlice, offset in it, count)]
    cdef readonly list data


cdef class PendingWrite:
    cdef int64_t first, n               # entries [first, first + n)
    cdef list futs                      # singles: one future each; or None
    cdef object batch_fut               # one batch: one future for all; or None
    cdef list batch_parts, batch_data

    cdef int fail(self, BaseException err) except -1


cdef class ClientWrites:
    cdef object loop
    cdef object submit                  # called (via call_soon) once per loop iteration with writes
    cdef list payloads                  # this iteration's payloads, submitted as one batch
    cdef list sinks                     # a single write's future, or (count, future) of a batch
    cdef bint scheduled, has_many
    cdef readonly object pending        # deque of PendingWrite, in index order
    cdef object orphan_timer
    cdef readonly double orphan_bound
    cdef object is_leader               # callable: does this node lead now?

    cdef int add(self, object payload, object fut) except -1
    cdef int add_many(self, list payloads, object fut) except -1
    cdef int _schedule(self) except -1
    cdef tuple take_batch(self)
    cdef int track(self, int64_t first, list sinks, bint many) except -1
    cdef int resolve(self, LogSlice entries, object responses) except -1
    cdef int fail_after(self, int64_t after) except -1
    cdef int arm_orphans(self) except -1
