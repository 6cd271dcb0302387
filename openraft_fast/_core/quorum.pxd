# Quorum sets: which sets of voters decide (commit, election, read confirmation, lease).
#
# Every voter of a quorum-set tree has a slot 0..n-1 (the position of its id in `ids`);
# the C methods take per-slot arrays, so a tracker keeps its matched indexes in slot order
# and asks for the committed index without building Python objects.
from libc.stdint cimport int64_t

cdef enum:
    VOTE_PENDING = 0
    VOTE_WON = 1
    VOTE_LOST = 2


cdef class QuorumSet:
    cdef readonly tuple ids         # every voter of the tree, in slot order
    cdef readonly bint safe         # every read quorum intersects every write quorum
    cdef dict _slot_of              # id -> slot
    cdef Py_ssize_t n               # len(ids)
    cdef int64_t* _vbuf             # scratch for the Python-facing calls
    cdef unsigned char* _mbuf
    cdef unsigned char* _mbuf2

    # Write quorum (commit, read-index confirmation, lease).
    cdef int64_t c_committed_index(self, const int64_t* values) noexcept
    cdef bint c_is_quorum(self, const unsigned char* members) noexcept
    # Read quorum (election). Equal to the write quorum except for a Flexible pair.
    cdef bint c_is_read_quorum(self, const unsigned char* members) noexcept
    cdef int c_vote_result(self, const unsigned char* granted, const unsigned char* rejected) noexcept
    cpdef Py_ssize_t slot_of(self, node_id) except -2
    cdef _init_slots(self, tuple ids, dict slot_of)
    cdef object _disjoint_pair(self)
    cdef bint _exact_safe(self, bint sufficient)
    cdef unsigned char* _members(self, ids, unsigned char* buf)


cdef class Majority(QuorumSet):
    cdef readonly tuple members
    cdef int* _slots
    cdef int64_t* _scratch
    cdef Py_ssize_t k
    cdef Py_ssize_t need


cdef class Weighted(QuorumSet):
    cdef readonly dict weights
    cdef readonly int64_t threshold
    cdef int* _slots
    cdef int64_t* _w
    cdef int64_t* _scratch_v
    cdef int64_t* _scratch_w
    cdef Py_ssize_t k


cdef class Joint(QuorumSet):
    cdef readonly tuple children


cdef class Hierarchical(QuorumSet):
    cdef readonly tuple children
    cdef readonly Py_ssize_t need
    cdef int64_t* _scratch


cdef class Flexible(QuorumSet):
    cdef readonly QuorumSet read
    cdef readonly QuorumSet write


cpdef QuorumSet from_configs(configs)
