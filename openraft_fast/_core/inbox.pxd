from openraft_fast._core.events cimport EventQueue


cdef class RpcInbox:
    cdef EventQueue q
    cdef object recv_append, recv_vote, recv_snapshot, recv_timeout_now
    cdef public object serve_read_index   # serve_read_index(req, fut): a follower's read (Python)
    cdef public object serve_forward      # serve_forward(req, fut): a follower's writes (Python)
    cdef dict waiters                     # response key -> deque of the callers' futures

    cdef int _wait(self, object key, object fut) except -1
    cdef int respond(self, object target, object msg) except -1
