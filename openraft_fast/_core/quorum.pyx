"""Quorum sets: majority, weighted, joint, hierarchical and flexible read/write pairs.

A quorum set is monotone: a superset of a quorum is a quorum. `committed_index` is the largest
index that some write quorum has all reached; `vote_result` decides an election on the read
quorum. Every set reports `safe`: whether each read quorum intersects each write quorum (a
Weighted set with at most half the weight is not, and serves only as half of a Flexible pair;
the engine refuses an unsafe set). In a Flexible pair the read quorum is the election (phase-1) quorum and the write
quorum commits and confirms leadership; every read quorum must intersect every write quorum.
"""
import enum

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int64_t
from libc.string cimport memset


class VoteResult(enum.IntEnum):
    PENDING = VOTE_PENDING
    WON = VOTE_WON
    LOST = VOTE_LOST


# Brute-force intersection checks enumerate 2**n voter subsets.
MAX_FLEXIBLE_VOTERS = 20


cdef void* _alloc(Py_ssize_t count, Py_ssize_t size) except NULL:
    cdef void* p = PyMem_Malloc(max(count, 1) * size)
    if p == NULL:
        raise MemoryError()
    return p


cdef inline int64_t _kth_largest(int64_t* a, Py_ssize_t n, Py_ssize_t k) noexcept:
    """The k-th largest (1-based) of a[0:n]; reorders a. Insertion sort: n is a voter count."""
    cdef Py_ssize_t i, j
    cdef int64_t x
    for i in range(1, n):
        x = a[i]
        j = i - 1
        while j >= 0 and a[j] < x:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = x
    return a[k - 1]


cdef tuple _sorted_ids(ids, str what):
    out = []
    for i in ids:
        if not isinstance(i, int) or i < 0:
            raise ValueError(f"{what}: voter ids must be non-negative ints, got {i!r}")
        out.append(i)
    out = sorted(set(out))
    if not out:
        raise ValueError(f"{what}: needs at least one voter")
    return tuple(out)


cdef class QuorumSet:
    """Abstract base; use Majority, Weighted, Joint, Hierarchical or Flexible."""

    def __cinit__(self, *args, **kwargs):
        self._vbuf = NULL
        self._mbuf = NULL
        self._mbuf2 = NULL

    def __dealloc__(self):
        PyMem_Free(self._vbuf)
        PyMem_Free(self._mbuf)
        PyMem_Free(self._mbuf2)

    cdef _init_slots(self, tuple ids, dict slot_of):
        """`ids` are this node's voters; `slot_of` the numbering of the enclosing tree (or None)."""
        if slot_of is None:
            slot_of = {v: i for i, v in enumerate(ids)}
        self._slot_of = slot_of
        self.ids = tuple(sorted(slot_of, key=slot_of.__getitem__))
        self.n = len(self.ids)
        self._vbuf = <int64_t*>_alloc(self.n, sizeof(int64_t))
        self._mbuf = <unsigned char*>_alloc(self.n, 1)
        self._mbuf2 = <unsigned char*>_alloc(self.n, 1)

    cdef int64_t c_committed_index(self, const int64_t* values) noexcept:
        return 0

    cdef bint c_is_quorum(self, const unsigned char* members) noexcept:
        return False

    cdef bint c_is_read_quorum(self, const unsigned char* members) noexcept:
        return self.c_is_quorum(members)

    cdef int c_vote_result(self, const unsigned char* granted, const unsigned char* rejected) noexcept:
        cdef Py_ssize_t i
        if self.c_is_read_quorum(granted):
            return VOTE_WON
        for i in range(self.n):
            self._mbuf2[i] = not rejected[i]
        if not self.c_is_read_quorum(self._mbuf2):
            return VOTE_LOST
        return VOTE_PENDING

    cdef object _disjoint_pair(self):
        """(read quorum ids, write quorum ids) that do not intersect, or None. Enumerates the
        2**n voter subsets: a write quorum whose complement is a read quorum."""
        if self.n > MAX_FLEXIBLE_VOTERS:
            raise ValueError(f"cannot check quorum intersection for {self.n} voters (at most {MAX_FLEXIBLE_VOTERS})")
        cdef unsigned long mask, full = (1UL << self.n) - 1
        cdef Py_ssize_t i
        cdef unsigned char* w = self._mbuf
        cdef unsigned char* r = self._mbuf2
        for mask in range(full + 1):
            for i in range(self.n):
                w[i] = (mask >> i) & 1
                r[i] = not w[i]
            if self.c_is_quorum(w) and self.c_is_read_quorum(r):
                return (sorted(self.ids[i] for i in range(self.n) if r[i]),
                        sorted(self.ids[i] for i in range(self.n) if w[i]))
        return None

    cdef bint _exact_safe(self, bint sufficient):
        """`safe`, exactly: a cheap sufficient rule first, the subset enumeration when it
        cannot decide (sets too large to enumerate stay unsafe)."""
        if sufficient:
            return True
        if self.n > MAX_FLEXIBLE_VOTERS:
            return False
        return self._disjoint_pair() is None

    cpdef Py_ssize_t slot_of(self, node_id) except -2:
        """The slot of a voter, or -1 for an id that is not a voter here."""
        return self._slot_of.get(node_id, -1)

    def _rebind(self, dict slot_of):
        raise TypeError("QuorumSet is abstract")

    cdef unsigned char* _members(self, ids, unsigned char* buf):
        memset(buf, 0, self.n)
        cdef object s
        for v in ids:
            s = self._slot_of.get(v)
            if s is not None:
                buf[<Py_ssize_t>s] = 1
        return buf

    def is_quorum(self, ids):
        """Whether the voters `ids` form a write quorum (ids that are not voters are ignored)."""
        return self.c_is_quorum(self._members(ids, self._mbuf))

    def is_read_quorum(self, ids):
        """Whether the voters `ids` form a read (election) quorum."""
        return self.c_is_read_quorum(self._members(ids, self._mbuf))

    def vote_result(self, granted, rejected=()):
        """WON once the granted voters are a read quorum; LOST once the voters not rejecting
        cannot be one; PENDING otherwise."""
        self._members(granted, self._mbuf)
        # _mbuf2 is the scratch of c_vote_result, so stage `rejected` in _vbuf's bytes.
        cdef unsigned char* rej = <unsigned char*>self._vbuf
        self._members(rejected, rej)
        return VoteResult(self.c_vote_result(self._mbuf, rej))

    def committed_index(self, matched):
        """The largest index reached by all voters of some write quorum.

        `matched` is a dict {voter id: index} (missing voters count as 0) or a sequence of
        indexes in slot order (the order of `ids`).
        """
        cdef Py_ssize_t i
        cdef int64_t* buf = self._vbuf
        cdef list lst
        cdef tuple tup
        if type(matched) is list:
            lst = <list>matched
            if len(lst) != self.n:
                raise ValueError(f"expected {self.n} indexes in slot order, got {len(lst)}")
            for i in range(self.n):
                buf[i] = lst[i]
        elif type(matched) is tuple:
            tup = <tuple>matched
            if len(tup) != self.n:
                raise ValueError(f"expected {self.n} indexes in slot order, got {len(tup)}")
            for i in range(self.n):
                buf[i] = tup[i]
        elif isinstance(matched, dict):
            for i in range(self.n):
                buf[i] = matched.get(self.ids[i], 0)
        else:
            return self.committed_index(list(matched))
        return self.c_committed_index(buf)

    def __len__(self):
        return self.n

    def __contains__(self, node_id):
        return node_id in self._slot_of

    def _key(self):
        raise TypeError("QuorumSet is abstract")

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self):
        return hash((type(self).__name__, self._key()))


cdef class Majority(QuorumSet):
    """More than half of `members`."""

    def __cinit__(self, *args, **kwargs):
        self._slots = NULL
        self._scratch = NULL

    def __dealloc__(self):
        PyMem_Free(self._slots)
        PyMem_Free(self._scratch)

    def __init__(self, members, *, dict _slot_of=None):
        self.members = _sorted_ids(members, "Majority")
        self.safe = True
        self._init_slots(self.members, _slot_of)
        self.k = len(self.members)
        self.need = self.k // 2 + 1
        self._slots = <int*>_alloc(self.k, sizeof(int))
        self._scratch = <int64_t*>_alloc(self.k, sizeof(int64_t))
        for i, v in enumerate(self.members):
            self._slots[i] = self._slot_of[v]

    cdef int64_t c_committed_index(self, const int64_t* values) noexcept:
        cdef Py_ssize_t i
        for i in range(self.k):
            self._scratch[i] = values[self._slots[i]]
        return _kth_largest(self._scratch, self.k, self.need)

    cdef bint c_is_quorum(self, const unsigned char* members) noexcept:
        cdef Py_ssize_t i, c = 0
        for i in range(self.k):
            c += members[self._slots[i]] != 0
        return c >= self.need

    def _rebind(self, dict slot_of):
        return Majority(self.members, _slot_of=slot_of)

    def _key(self):
        return self.members

    def __repr__(self):
        return f"Majority({list(self.members)})"


cdef class Weighted(QuorumSet):
    """Voters with integer weights; a quorum holds at least `threshold` weight
    (default: more than half of the total)."""

    def __cinit__(self, *args, **kwargs):
        self._slots = NULL
        self._w = NULL
        self._scratch_v = NULL
        self._scratch_w = NULL

    def __dealloc__(self):
        PyMem_Free(self._slots)
        PyMem_Free(self._w)
        PyMem_Free(self._scratch_v)
        PyMem_Free(self._scratch_w)

    def __init__(self, weights, threshold=None, *, dict _slot_of=None):
        weights = dict(weights)
        members = _sorted_ids(weights.keys(), "Weighted")
        total = 0
        for v in members:
            w = weights[v]
            if not isinstance(w, int) or w < 0:
                raise ValueError(f"Weighted: weight of voter {v} must be a non-negative int, got {w!r}")
            total += w
        if threshold is None:
            threshold = total // 2 + 1
        if not isinstance(threshold, int) or threshold < 1 or threshold > total:
            raise ValueError(f"Weighted: threshold must be an int in [1, {total}] (total weight), got {threshold!r}")
        # With at most half the weight, two disjoint quorums may both decide: such a set is
        # usable only as a half of a Flexible pair, which checks its own intersection.
        self.weights = {v: weights[v] for v in members}
        self.threshold = threshold
        self._init_slots(members, _slot_of)
        self.k = len(members)
        self._slots = <int*>_alloc(self.k, sizeof(int))
        self._w = <int64_t*>_alloc(self.k, sizeof(int64_t))
        self._scratch_v = <int64_t*>_alloc(self.k, sizeof(int64_t))
        self._scratch_w = <int64_t*>_alloc(self.k, sizeof(int64_t))
        for i, v in enumerate(members):
            self._slots[i] = self._slot_of[v]
            self._w[i] = weights[v]
        self.safe = self._exact_safe(2 * threshold > total)

    cdef int64_t c_committed_index(self, const int64_t* values) noexcept:
        cdef Py_ssize_t i, j
        cdef int64_t x, xw, acc = 0
        cdef int64_t* v = self._scratch_v
        cdef int64_t* w = self._scratch_w
        for i in range(self.k):
            x = values[self._slots[i]]
            xw = self._w[i]
            j = i - 1
            while j >= 0 and v[j] < x:
                v[j + 1] = v[j]
                w[j + 1] = w[j]
                j -= 1
            v[j + 1] = x
            w[j + 1] = xw
        for i in range(self.k):
            acc += w[i]
            if acc >= self.threshold:
                return v[i]
        return 0

    cdef bint c_is_quorum(self, const unsigned char* members) noexcept:
        cdef Py_ssize_t i
        cdef int64_t acc = 0
        for i in range(self.k):
            if members[self._slots[i]]:
                acc += self._w[i]
        return acc >= self.threshold

    def _rebind(self, dict slot_of):
        return Weighted(self.weights, self.threshold, _slot_of=slot_of)

    def _key(self):
        return (tuple(sorted(self.weights.items())), self.threshold)

    def __repr__(self):
        return f"Weighted({self.weights!r}, threshold={self.threshold})"


cdef dict _union_slots(children):
    ids = set()
    for c in children:
        if not isinstance(c, QuorumSet):
            raise TypeError(f"expected a QuorumSet, got {type(c).__name__}")
        ids.update((<QuorumSet>c).ids)
    return {v: i for i, v in enumerate(sorted(ids))}


cdef class Joint(QuorumSet):
    """A quorum of every child (joint consensus: C_old,new)."""

    def __init__(self, children, *, dict _slot_of=None):
        children = list(children)
        if not children:
            raise ValueError("Joint: needs at least one child quorum set")
        if _slot_of is None:
            _slot_of = _union_slots(children)
        self.children = tuple(c._rebind(_slot_of) for c in children)
        self._init_slots(None, _slot_of)
        # A quorum of every child includes a quorum of a safe child.
        self.safe = self._exact_safe(any((<QuorumSet>c).safe for c in children))

    cdef int64_t c_committed_index(self, const int64_t* values) noexcept:
        cdef int64_t m = -1, x
        cdef QuorumSet c
        for c in self.children:
            x = c.c_committed_index(values)
            if m < 0 or x < m:
                m = x
        return m

    cdef bint c_is_quorum(self, const unsigned char* members) noexcept:
        cdef QuorumSet c
        for c in self.children:
            if not c.c_is_quorum(members):
                return False
        return True

    cdef bint c_is_read_quorum(self, const unsigned char* members) noexcept:
        cdef QuorumSet c
        for c in self.children:
            if not c.c_is_read_quorum(members):
                return False
        return True

    def _rebind(self, dict slot_of):
        return Joint(self.children, _slot_of=slot_of)

    def _key(self):
        return tuple((type(c).__name__, c._key()) for c in self.children)

    def __repr__(self):
        return f"Joint({list(self.children)!r})"


cdef class Hierarchical(QuorumSet):
    """A quorum of at least `need` children (default: a majority of them), e.g. a majority of
    data centres, each deciding by its own majority."""

    def __cinit__(self, *args, **kwargs):
        self._scratch = NULL

    def __dealloc__(self):
        PyMem_Free(self._scratch)

    def __init__(self, children, need=None, *, dict _slot_of=None):
        children = list(children)
        if not children:
            raise ValueError("Hierarchical: needs at least one child quorum set")
        if need is None:
            need = len(children) // 2 + 1
        if not isinstance(need, int) or need < 1 or need > len(children):
            raise ValueError(f"Hierarchical: need must be an int in [1, {len(children)}], got {need!r}")
        if _slot_of is None:
            _slot_of = _union_slots(children)
        self.children = tuple(c._rebind(_slot_of) for c in children)
        self.need = need
        self._init_slots(None, _slot_of)
        self._scratch = <int64_t*>_alloc(len(children), sizeof(int64_t))
        # Two quorums share a child, each holding a quorum of it.
        self.safe = self._exact_safe(2 * need > len(children) and all((<QuorumSet>c).safe for c in self.children))

    cdef int64_t c_committed_index(self, const int64_t* values) noexcept:
        cdef Py_ssize_t i = 0
        cdef QuorumSet c
        for c in self.children:
            self._scratch[i] = c.c_committed_index(values)
            i += 1
        return _kth_largest(self._scratch, i, self.need)

    cdef bint c_is_quorum(self, const unsigned char* members) noexcept:
        cdef Py_ssize_t got = 0
        cdef QuorumSet c
        for c in self.children:
            got += c.c_is_quorum(members)
        return got >= self.need

    cdef bint c_is_read_quorum(self, const unsigned char* members) noexcept:
        cdef Py_ssize_t got = 0
        cdef QuorumSet c
        for c in self.children:
            got += c.c_is_read_quorum(members)
        return got >= self.need

    def _rebind(self, dict slot_of):
        return Hierarchical(self.children, self.need, _slot_of=slot_of)

    def _key(self):
        return (tuple((type(c).__name__, c._key()) for c in self.children), self.need)

    def __repr__(self):
        return f"Hierarchical({list(self.children)!r}, need={self.need})"


cdef class Flexible(QuorumSet):
    """Distinct read (election) and write (commit) quorums, as in Flexible Paxos.

    Raises ValueError naming a disjoint pair when some read quorum misses some write quorum.
    """

    def __init__(self, QuorumSet read not None, QuorumSet write not None, *, dict _slot_of=None):
        cdef bint validate = _slot_of is None
        if validate:
            _slot_of = _union_slots((read, write))
        self.read = read._rebind(_slot_of)
        self.write = write._rebind(_slot_of)
        self._init_slots(None, _slot_of)
        if validate:
            pair = self._disjoint_pair()
            if pair is not None:
                raise ValueError(f"Flexible: read quorum {pair[0]} does not intersect write quorum {pair[1]}")
        self.safe = True

    cdef int64_t c_committed_index(self, const int64_t* values) noexcept:
        return self.write.c_committed_index(values)

    cdef bint c_is_quorum(self, const unsigned char* members) noexcept:
        return self.write.c_is_quorum(members)

    cdef bint c_is_read_quorum(self, const unsigned char* members) noexcept:
        return self.read.c_is_read_quorum(members)

    def _rebind(self, dict slot_of):
        return Flexible(self.read, self.write, _slot_of=slot_of)

    def _key(self):
        return ((type(self.read).__name__, self.read._key()), (type(self.write).__name__, self.write._key()))

    def __repr__(self):
        return f"Flexible(read={self.read!r}, write={self.write!r})"


cpdef QuorumSet from_configs(configs):
    """The quorum set of a membership's voter sets: Majority, or Joint of Majorities."""
    configs = list(configs)
    if len(configs) == 1:
        return Majority(configs[0])
    return Joint([Majority(c) for c in configs])
