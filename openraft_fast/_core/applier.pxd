from libc.stdint cimport int64_t

from openraft_fast._core.events cimport EventQueue
from openraft_fast._core.log cimport LogSlice
from openraft_fast._core.writes cimport ClientWrites


cdef class Applier:
    cdef EventQueue q
    cdef object loop, sm
    cdef ClientWrites writes
    cdef object on_applied, on_snapshot_built, on_snapshot_installed
    # snapshot_hook(installed, meta): the state machine built (False) or installed (True) a
    # snapshot; None, or the runtime's event stream (a rare event: a Python call is fine).
    cdef public object snapshot_hook
    cdef object queue                   # deque of (kind, ...) items, run in order
    cdef bint running
    cdef readonly int64_t applied_index
    cdef list waiters                   # heap of (index, seq, future, value)
    cdef int64_t waiter_seq

    cdef int apply(self, LogSlice entries) except -1
    cdef int build_snapshot(self) except -1
    cdef int install_snapshot(self, object meta, object data, object done) except -1
    cdef int push(self, tuple item) except -1
    cdef int run(self) except -1
    cdef int finish(self, tuple item, object result, object exc) except -1
    cdef int advance(self, int64_t index) except -1
