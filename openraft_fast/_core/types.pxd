# Core Raft value types: leader ids, votes, log ids, entries, nodes, memberships.
#
# Indexes and terms are int64 (>= 0). Log index 0 means "no entry": the first entry is index 1.
# Node ids are non-negative ints; NO_NODE (-1) stands for "none" (no vote, or a std-mode
# committed leader id, which carries only the term).
from libc.stdint cimport int64_t

cdef enum:
    NO_NODE = -1

# Result of a partial-order comparison.
cdef enum:
    ORD_LESS = -1
    ORD_EQUAL = 0
    ORD_GREATER = 1
    ORD_NONE = 2        # incomparable

cdef enum:
    ENTRY_NORMAL = 0
    ENTRY_BLANK = 1
    ENTRY_MEMBERSHIP = 2


cdef class LeaderId:
    """Advanced mode (default): (term, node_id), totally ordered.

    Standard mode (std=True): (term, voted_for); ids of one term are equal only for the same
    node, otherwise incomparable, so a term has at most one leader.
    """
    cdef readonly int64_t term
    cdef int64_t node
    cdef readonly bint std

    cdef LeaderId committed_id(self)


cdef class Vote:
    cdef readonly LeaderId leader_id
    cdef readonly bint committed


cdef class LogId:
    cdef readonly LeaderId leader_id    # a committed leader id (see LeaderId.committed_id)
    cdef readonly int64_t index


cdef class Node:
    cdef readonly str addr
    cdef readonly dict data


cdef class Membership:
    cdef readonly tuple configs         # tuple of frozensets of voter ids; 2+ = joint
    cdef dict _nodes                    # id -> Node, voters and learners
    cdef readonly frozenset voter_ids
    cdef readonly frozenset learner_ids

    cpdef bint is_voter(self, node_id)


cdef class Entry:
    cdef readonly LogId log_id
    cdef readonly object payload        # app data; a Membership; None for blank
    cdef readonly int kind


cdef inline int leader_id_cmp(LeaderId a, LeaderId b) noexcept:
    if a.term != b.term:
        return ORD_LESS if a.term < b.term else ORD_GREATER
    if a.node == b.node:
        return ORD_EQUAL
    if a.std:
        # One leader per term: only "no vote yet" is below a vote of the same term.
        if a.node == NO_NODE:
            return ORD_LESS
        if b.node == NO_NODE:
            return ORD_GREATER
        return ORD_NONE
    return ORD_LESS if a.node < b.node else ORD_GREATER


cdef inline int vote_cmp(Vote a, Vote b) noexcept:
    cdef int c = leader_id_cmp(a.leader_id, b.leader_id)
    if c == ORD_EQUAL:
        if a.committed == b.committed:
            return ORD_EQUAL
        return ORD_GREATER if a.committed else ORD_LESS
    if c == ORD_NONE:
        # Two incomparable ids are never both granted: a committed vote wins.
        if a.committed and not b.committed:
            return ORD_GREATER
        if b.committed and not a.committed:
            return ORD_LESS
    return c


cdef inline int log_id_cmp(LogId a, LogId b) noexcept:
    # Committed leader ids are totally ordered in both modes.
    cdef int c = leader_id_cmp(a.leader_id, b.leader_id)
    if c != ORD_EQUAL:
        return c
    if a.index == b.index:
        return ORD_EQUAL
    return ORD_LESS if a.index < b.index else ORD_GREATER


cdef inline bint cmp_matches(int c, int op) noexcept:
    """Rich-comparison op (Py_LT..Py_GE) applied to a partial-order result."""
    if op == 0:
        return c == ORD_LESS
    if op == 1:
        return c == ORD_LESS or c == ORD_EQUAL
    if op == 2:
        return c == ORD_EQUAL
    if op == 3:
        return c != ORD_EQUAL
    if op == 4:
        return c == ORD_GREATER
    return c == ORD_GREATER or c == ORD_EQUAL


cdef LeaderId make_leader_id(int64_t term, int64_t node, bint std)
cdef LogId make_log_id(LeaderId committed_leader_id, int64_t index)
