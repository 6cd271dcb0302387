# The in-memory tail of the log.
#
# Per entry it keeps only the payload (in a list), a kind byte and a running byte count;
# leader ids are kept as runs (first index, LeaderId), since they change once per leadership.
# So an append is a list extend plus C loops, and a slice is a list slice plus the runs it spans.
from cpython.ref cimport PyObject
from libc.stdint cimport int64_t, uint8_t

from openraft_fast._core.types cimport LeaderId, LogId


cdef class LogSlice:
    """Entries [start, stop) of a log: what an append-entries message carries."""
    cdef readonly int64_t start
    cdef readonly int64_t stop
    cdef readonly list payloads
    cdef readonly bytes kinds
    cdef readonly tuple runs            # ((first_index, LeaderId), ...), first run starts at `start`
    cdef readonly int64_t nbytes        # payload bytes (bytes and bytearray payloads)

    cdef LeaderId c_leader_at(self, int64_t index)


cdef class LogBuffer:
    # _items[_head + i] is entry first_index + i's payload (a strong reference), for i in
    # [0, _len - _head). A C array, not a list: the garbage collector never walks it, so a
    # collection costs the same with 10 M entries held as with none (payloads are bytes or
    # Membership values, which cannot form reference cycles).
    cdef PyObject** _items
    cdef Py_ssize_t _len                # slots used, from 0 (entries before _head are released)
    cdef uint8_t* _kinds                # same offsets as _items
    cdef int64_t* _cum                  # _cum[_head + i]: payload bytes before entry first_index + i
    cdef Py_ssize_t _cap
    cdef Py_ssize_t _head
    cdef list _run_starts               # first index of each leader-id run, ascending
    cdef list _run_leaders              # the committed LeaderId of each run
    cdef readonly int64_t first_index   # first entry held (purged index + 1)
    cdef readonly int64_t last_index    # last entry held; first_index - 1 when empty
    cdef readonly LogId purged          # log id of the last purged entry, or None

    cdef c_reset(self, LogId purged)
    cdef int _reserve(self, Py_ssize_t extra) except -1
    cdef int _take(self, list payloads, Py_ssize_t off, Py_ssize_t n) except -1
    cdef void _release(self, Py_ssize_t a, Py_ssize_t b) noexcept
    cdef list _list(self, Py_ssize_t a, Py_ssize_t b)
    cdef int _add_run(self, int64_t first, LeaderId leader) except -1
    cdef LeaderId c_leader_at(self, int64_t index)
    cdef int64_t c_append(self, LeaderId leader, list payloads, uint8_t kind) except -1
    cdef int64_t c_append_slice(self, LogSlice s, int64_t from_index) except -1
    cdef LogSlice c_slice(self, int64_t start, int64_t stop)
    cdef int64_t c_nbytes(self, int64_t start, int64_t stop) noexcept
    cdef int64_t c_first_conflict(self, LogSlice s) except -2
    cdef int c_truncate_after(self, int64_t index) except -1
    cdef int c_purge_upto(self, int64_t index) except -1
    cdef list c_membership_entries(self, int64_t start, int64_t stop)
