# Running a coroutine inline up to its first real suspension (see openraft_fast._aio): a
# storage or state-machine call that completes without waiting costs a call, not a task.
from cpython.ref cimport PyObject

cdef extern from "Python.h":
    enum:
        PYGEN_RETURN
        PYGEN_NEXT
    # One step of a coroutine. A return comes back as PYGEN_RETURN with no StopIteration
    # made; an exception it raised is raised here (PYGEN_ERROR, -1).
    int PyIter_Send(object iter, object arg, PyObject** presult) except? -1
