# In-flight window of one replication stream: a ring of the messages sent and not yet acked,
# bounded by count and by bytes. Message ids grow by one per message of a stream, so an ack
# names a position in the ring; an id outside the ring is stale (sent before a reset, or
# already freed) and is ignored.
from libc.stdint cimport int64_t


cdef class Inflights:
    cdef int64_t* _ids
    cdef int64_t* _ends          # last log index each message carries
    cdef int64_t* _sizes         # payload bytes each message carries
    cdef Py_ssize_t _start
    cdef readonly Py_ssize_t count
    cdef readonly Py_ssize_t max_count
    cdef readonly int64_t max_bytes
    cdef readonly int64_t bytes

    cdef inline bint c_full(self) noexcept:
        return self.count >= self.max_count or (self.count > 0 and self.bytes >= self.max_bytes)
    cdef int c_add(self, int64_t msg_id, int64_t end_index, int64_t nbytes) except -1
    cdef Py_ssize_t c_free_to(self, int64_t msg_id) noexcept
    cdef void c_reset(self) noexcept
    cdef int64_t c_last_end(self) noexcept
