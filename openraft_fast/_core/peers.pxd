from openraft_fast._core.events cimport EventQueue


cdef class Peers:
    cdef EventQueue q
    cdef object factory
    cdef object engine
    cdef readonly dict clients          # target -> network client, made on first use
    cdef dict nodes                     # target -> the Node its client was made for
    cdef object membership              # the engine's membership the clients were checked against
    cdef object on_append_response, on_vote_response
    cdef public object on_timeout_now_failed    # on_timeout_now_failed(target, exc), or None

    cpdef object client(self, object target)
    cdef int _check_addresses(self) except -1
    cdef int send(self, object target, object msg) except -1
    cdef int heartbeat(self, object target, object msg) except -1
