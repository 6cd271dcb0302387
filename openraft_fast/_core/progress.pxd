# Replication progress of one target, as the leader sees it.
#
# PROBE: where the target's log matches ours is unknown. The candidate match points are
#   [matched, searching_end - 1]; one probe is in flight at a time. The first probe (and one
#   after a reject that carried the target's last index) tries the top of the range, which is
#   where an up-to-date or merely lagging target matches; later ones bisect the range.
# REPLICATE: the match is known; messages stream back to back up to the in-flight window.
# SNAPSHOT: the entries the target needs are purged; one snapshot is in flight.
from libc.stdint cimport int64_t

from openraft_fast._core.inflight cimport Inflights

cdef enum:
    PROBE = 0
    REPLICATE = 1
    SNAPSHOT = 2

cdef enum:
    SEND_NONE = 0
    SEND_LOGS = 1
    SEND_SNAPSHOT = 2


cdef class Progress:
    cdef readonly object node_id
    cdef readonly Py_ssize_t slot       # voter slot in the quorum set; -1 for a learner
    cdef readonly int state
    cdef readonly int64_t matched       # last index known to match; 0 = none
    cdef readonly int64_t next_index    # REPLICATE: next index to send
    cdef readonly int64_t searching_end # indexes >= this are not known to match
    cdef readonly Inflights inflight
    cdef readonly int64_t next_msg_id
    cdef bint _try_top
    # The range decided by the last c_next_send that returned SEND_LOGS: prev = send_start - 1.
    cdef readonly int64_t send_start
    cdef readonly int64_t send_end
    # Send time (engine clock, us) of the newest of our messages the target answered; -1: none.
    # A target is healthy while this is recent: leader hand-off and membership checks use it.
    cdef public int64_t acked_at

    cdef int c_next_send(self, int64_t first_index, int64_t last_index, int64_t max_entries) noexcept
    cdef int64_t c_sent(self, int64_t nbytes) except -1
    cdef bint c_on_ack(self, int64_t msg_id, int64_t matched) noexcept
    cdef bint c_on_reject(self, int64_t msg_id, int64_t prev_index, int64_t hint_last) noexcept
    cdef int64_t c_begin_snapshot(self, int64_t snapshot_index) except -1
    cdef bint c_on_snapshot(self, int64_t msg_id, int64_t snapshot_index, bint ok) noexcept
    cdef void c_restart_probe(self, int64_t last_index) noexcept
