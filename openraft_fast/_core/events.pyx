"""The runtime's event queue (see events.pxd)."""
from collections import deque


cdef class EventQueue:
    def __cinit__(self, *args, **kwargs):
        self.events = deque()

    cdef int push(self, object fn, tuple args) except -1:
        """Queue an engine event (fn(*args) returns commands) and drain the queue unless
        draining already."""
        self.events.append((fn, args))
        if not self.pumping:
            self.pump()
        return 0

    def post(self, fn, *args):
        self.push(fn, args)

    cdef int pump(self) except -1:
        return 0        # the executor drains the queue
