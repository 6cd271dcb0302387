# The leader's view of every target: one Progress per target and, for voters, the matched
# index in slot order, so the quorum-accepted index comes from the quorum set in C.
from libc.stdint cimport int64_t

from openraft_fast._core.progress cimport Progress
from openraft_fast._core.quorum cimport QuorumSet


cdef class ProgressTracker:
    cdef readonly QuorumSet quorum
    cdef readonly object self_id
    cdef readonly Py_ssize_t self_slot      # -1 when the leader is not a voter (leaving)
    cdef readonly dict progress             # target id -> Progress (all but self)
    cdef readonly int64_t accepted          # largest index a write quorum has reached
    cdef int64_t* _matched                  # by slot
    # Per slot, the seq and send time of the newest of our messages the voter acked: a
    # read-index round is confirmed by a quorum acking a message sent after the read began,
    # and the leader lease runs from the send time a quorum has acked.
    cdef int64_t* _ack_seq
    cdef int64_t* _ack_time

    cdef int64_t c_update(self, Py_ssize_t slot, int64_t index) noexcept
    cdef void c_ack(self, Py_ssize_t slot, int64_t seq, int64_t sent_at) noexcept
    cdef int64_t c_quorum_seq(self, int64_t self_seq) noexcept
    cdef int64_t c_quorum_time(self, int64_t self_time) noexcept
    cdef Progress c_get(self, object node_id)
