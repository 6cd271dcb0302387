# The runtime's event queue: what the compiled runtime concerns (peers, inbox, applier,
# writes) post into, and the executor drains. A base class so those concerns need not know
# the executor (it knows them: C calls both ways, no import cycle).
cdef class EventQueue:
    cdef readonly object events         # deque of (engine callable, args tuple)
    cdef bint pumping
    cdef public object stopped          # None while running; the error the node stopped with
    cdef public object on_fatal         # on_fatal(err, cause): stop the node

    cdef int push(self, object fn, tuple args) except -1
    cdef int pump(self) except -1
