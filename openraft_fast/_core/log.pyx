"""The in-memory tail of the log (see log.pxd)."""
from cpython.bytearray cimport PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_ITEM, PyList_New, PyList_SET_ITEM
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.ref cimport Py_INCREF, Py_XDECREF, PyObject
from libc.stdint cimport int64_t, uint8_t
from libc.string cimport memcpy, memmove, memset

from openraft_fast._core.types cimport (
    ENTRY_BLANK, ENTRY_MEMBERSHIP, ENTRY_NORMAL, ORD_EQUAL, Entry, LeaderId, LogId, Membership,
    leader_id_cmp, make_log_id,
)

# Compact the dead head of the buffers once it is this long and longer than the live part.
_COMPACT_MIN = 4096


cdef inline int64_t _payload_size(object p) noexcept:
    # Counted for in-flight byte limits; other payload types count as 0.
    if type(p) is bytes:
        return PyBytes_GET_SIZE(p)
    if type(p) is bytearray:
        return PyByteArray_GET_SIZE(p)
    return 0


cdef inline bint _same_leader(LeaderId a, LeaderId b) noexcept:
    return a is b or leader_id_cmp(a, b) == ORD_EQUAL


cdef inline void _check_kind(object payload, uint8_t kind) except *:
    if kind == ENTRY_MEMBERSHIP and not isinstance(payload, Membership):
        raise TypeError("a membership entry's payload must be a Membership")
    if kind == ENTRY_BLANK and payload is not None:
        raise ValueError("a blank entry has no payload")
    if kind > ENTRY_MEMBERSHIP:
        raise ValueError(f"unknown entry kind {kind}")


cdef class LogSlice:
    def __init__(self, int64_t start, list payloads not None, bytes kinds=None, runs=None):
        """Entries start .. start+len(payloads)-1. `kinds` defaults to all-normal; `runs` is
        [(first_index, LeaderId), ...] with the first run starting at `start`."""
        cdef Py_ssize_t n = len(payloads), i
        if start < 1:
            raise ValueError(f"log indexes start at 1, got start={start}")
        if kinds is None:
            kinds = bytes(n)
        if len(kinds) != n:
            raise ValueError(f"{n} payloads but {len(kinds)} kinds")
        for i in range(n):
            _check_kind(payloads[i], kinds[i])
        cdef list rs = []
        cdef int64_t prev = start - 1
        if runs:
            for first, leader in runs:
                if not isinstance(leader, LeaderId):
                    raise TypeError("runs must hold (first_index, LeaderId) pairs")
                if first <= prev or first >= start + n:
                    raise ValueError(f"run start {first} out of order or outside [{start}, {start + n})")
                leader = (<LeaderId>leader).committed_id()
                if not rs or not _same_leader(<LeaderId>rs[len(rs) - 1][1], <LeaderId>leader):
                    rs.append((first, leader))     # a run of the same leader continues
                prev = first
            if rs[0][0] != start:
                raise ValueError("the first run must start at `start`")
        elif n:
            raise ValueError("a non-empty slice needs leader-id runs")
        self.start = start
        self.stop = start + n
        self.payloads = payloads
        self.kinds = kinds
        self.runs = tuple(rs)
        self.nbytes = 0
        for i in range(n):
            self.nbytes += _payload_size(payloads[i])

    @staticmethod
    def from_entries(entries):
        """A slice from consecutive Entry objects."""
        cdef Entry e
        cdef list payloads = []
        cdef bytearray kinds = bytearray()
        cdef list runs = []
        entries = list(entries)
        if not entries:
            raise ValueError("from_entries needs at least one entry (no start index otherwise)")
        start = (<Entry>entries[0]).log_id.index
        for i, e in enumerate(entries):
            if e.log_id.index != start + i:
                raise ValueError(f"entries are not consecutive at {e.log_id}")
            if not runs or not _same_leader(runs[len(runs) - 1][1], e.log_id.leader_id):
                runs.append((e.log_id.index, e.log_id.leader_id))
            payloads.append(e.payload)
            kinds.append(e.kind)
        return LogSlice(start, payloads, bytes(kinds), runs)

    cdef LeaderId c_leader_at(self, int64_t index):
        cdef Py_ssize_t j
        if index < self.start or index >= self.stop:
            return None
        for j in range(len(self.runs) - 1, -1, -1):
            if <int64_t>self.runs[j][0] <= index:
                return <LeaderId>self.runs[j][1]
        return None

    def leader_id_at(self, int64_t index):
        return self.c_leader_at(index)

    def log_id_at(self, int64_t index):
        cdef LeaderId lid = self.c_leader_at(index)
        return None if lid is None else make_log_id(lid, index)

    @property
    def last_log_id(self):
        return self.log_id_at(self.stop - 1) if self.stop > self.start else None

    def entries(self):
        """The slice as Entry objects (allocates one per entry: not for the hot path)."""
        cdef list out = []
        cdef Py_ssize_t j, nruns = len(self.runs)
        cdef int64_t i, run_end
        for j in range(nruns):
            first, leader = self.runs[j]
            run_end = self.runs[j + 1][0] if j + 1 < nruns else self.stop
            for i in range(first, run_end):
                out.append(Entry(make_log_id(leader, i), self.payloads[i - self.start], self.kinds[i - self.start]))
        return out

    def __len__(self):
        return self.stop - self.start

    def __eq__(self, other):
        if not isinstance(other, LogSlice):
            return NotImplemented
        o = <LogSlice>other
        return (self.start == o.start and self.payloads == o.payloads and self.kinds == o.kinds
                and self.runs == o.runs)

    def __reduce__(self):
        return (LogSlice, (self.start, self.payloads, self.kinds, list(self.runs)))

    def __repr__(self):
        return f"LogSlice([{self.start}, {self.stop}), runs={[(f, str(l)) for f, l in self.runs]})"


cdef class LogBuffer:
    def __cinit__(self, *args, **kwargs):
        self._items = NULL
        self._len = 0
        self._kinds = NULL
        self._cum = NULL
        self._cap = 0

    def __dealloc__(self):
        self._release(self._head, self._len)
        PyMem_Free(self._items)
        PyMem_Free(self._kinds)
        PyMem_Free(self._cum)

    def __init__(self, LogId purged=None):
        """An empty log; `purged` is the log id of the last entry already purged (or None)."""
        self._head = 0
        self._run_starts = []
        self._run_leaders = []
        self._reserve(16)
        self._cum[0] = 0
        self.c_reset(purged)

    cdef c_reset(self, LogId purged):
        self._release(self._head, self._len)
        self._len = 0
        self._head = 0
        self._cum[0] = 0
        del self._run_starts[:]
        del self._run_leaders[:]
        self.purged = purged
        if purged is None:
            self.first_index = 1
        else:
            self.first_index = purged.index + 1
            self._add_run(purged.index, purged.leader_id)
        self.last_index = self.first_index - 1

    cdef int _reserve(self, Py_ssize_t extra) except -1:
        """Room for `extra` more entries (plus the end slot of _cum)."""
        cdef Py_ssize_t need = self._len + extra + 1
        cdef Py_ssize_t cap = self._cap
        if need <= cap:
            return 0
        while cap < need:
            cap = cap * 2 if cap else 16
        cdef PyObject** items = <PyObject**>PyMem_Realloc(self._items, cap * sizeof(PyObject*))
        if items == NULL:
            raise MemoryError()
        self._items = items
        cdef uint8_t* k = <uint8_t*>PyMem_Realloc(self._kinds, cap * sizeof(uint8_t))
        if k == NULL:
            raise MemoryError()
        self._kinds = k
        cdef int64_t* c = <int64_t*>PyMem_Realloc(self._cum, cap * sizeof(int64_t))
        if c == NULL:
            raise MemoryError()
        self._cum = c
        self._cap = cap
        return 0

    cdef int _take(self, list payloads, Py_ssize_t off, Py_ssize_t n) except -1:
        """Append payloads[off:off + n] (room reserved): a strong reference each, and the
        running byte count."""
        cdef Py_ssize_t i, base = self._len
        cdef PyObject* p
        for i in range(n):
            p = PyList_GET_ITEM(payloads, off + i)
            Py_INCREF(<object>p)
            self._items[base + i] = p
            self._cum[base + i + 1] = self._cum[base + i] + _payload_size(<object>p)
        self._len = base + n
        return 0

    cdef void _release(self, Py_ssize_t a, Py_ssize_t b) noexcept:
        """Drop the references of slots [a, b)."""
        cdef Py_ssize_t i
        for i in range(a, b):
            Py_XDECREF(self._items[i])
            self._items[i] = NULL

    cdef list _list(self, Py_ssize_t a, Py_ssize_t b):
        """The payloads of slots [a, b) as a new list."""
        cdef Py_ssize_t i
        cdef list out = PyList_New(b - a)
        cdef object p
        for i in range(b - a):
            p = <object>self._items[a + i]
            Py_INCREF(p)
            PyList_SET_ITEM(out, i, p)
        return out

    cdef int _add_run(self, int64_t first, LeaderId leader) except -1:
        cdef LeaderId committed = leader.committed_id()
        if self._run_leaders and _same_leader(<LeaderId>self._run_leaders[len(self._run_leaders) - 1], committed):
            return 0
        self._run_starts.append(first)
        self._run_leaders.append(committed)
        return 0

    cdef LeaderId c_leader_at(self, int64_t index):
        """The committed leader id of the entry at `index` (the purged entry's included)."""
        cdef Py_ssize_t j
        if index > self.last_index or index < self.first_index - 1:
            return None
        if index == self.first_index - 1 and self.purged is None:
            return None
        for j in range(len(self._run_starts) - 1, -1, -1):
            if <int64_t>self._run_starts[j] <= index:
                return <LeaderId>self._run_leaders[j]
        return None

    cdef int64_t c_append(self, LeaderId leader, list payloads, uint8_t kind) except -1:
        """Append entries of one leader and kind; returns the new last index."""
        cdef Py_ssize_t n = len(payloads), i, base
        if n == 0:
            return self.last_index
        if kind != ENTRY_NORMAL:
            for i in range(n):
                _check_kind(payloads[i], kind)
        self._reserve(n)
        base = self._len
        self._add_run(self.last_index + 1, leader)
        self._take(payloads, 0, n)
        memset(self._kinds + base, kind, n)
        self.last_index += n
        return self.last_index

    cdef int64_t c_append_slice(self, LogSlice s, int64_t from_index) except -1:
        """Append s[from_index:], which must start right after our last entry."""
        cdef Py_ssize_t off, n, i, base, j
        cdef int64_t first
        if from_index >= s.stop:
            return self.last_index
        if from_index != self.last_index + 1 or from_index < s.start:
            raise ValueError(f"append at {from_index} would leave a hole after {self.last_index}")
        off = from_index - s.start
        n = s.stop - from_index
        self._reserve(n)
        base = self._len
        for j in range(len(s.runs)):
            first = s.runs[j][0]
            if j + 1 < len(s.runs) and <int64_t>s.runs[j + 1][0] <= from_index:
                continue
            self._add_run(first if first > from_index else from_index, <LeaderId>s.runs[j][1])
        self._take(s.payloads, off, n)
        memcpy(self._kinds + base, <const char*>s.kinds + off, n)
        self.last_index = s.stop - 1
        return self.last_index

    cdef LogSlice c_slice(self, int64_t start, int64_t stop):
        cdef Py_ssize_t a, b, j
        cdef list runs = []
        if start < self.first_index or stop > self.last_index + 1 or start > stop:
            raise IndexError(f"slice [{start}, {stop}) outside the log [{self.first_index}, {self.last_index + 1})")
        a = self._head + (start - self.first_index)
        b = self._head + (stop - self.first_index)
        cdef LogSlice s = LogSlice.__new__(LogSlice)
        s.start = start
        s.stop = stop
        s.payloads = self._list(a, b)
        s.kinds = PyBytes_FromStringAndSize(<char*>self._kinds + a, b - a)
        s.nbytes = self._cum[b] - self._cum[a]
        if stop > start:
            # The run holding `start`, searched from the newest (replication reads the tail).
            j = len(self._run_starts) - 1
            while j > 0 and <int64_t>self._run_starts[j] > start:
                j -= 1
            runs.append((start, self._run_leaders[j]))
            j += 1
            while j < len(self._run_starts) and <int64_t>self._run_starts[j] < stop:
                runs.append((self._run_starts[j], self._run_leaders[j]))
                j += 1
        s.runs = tuple(runs)
        return s

    cdef int64_t c_nbytes(self, int64_t start, int64_t stop) noexcept:
        return self._cum[self._head + (stop - self.first_index)] - self._cum[self._head + (start - self.first_index)]

    cdef int64_t c_first_conflict(self, LogSlice s) except -2:
        """The first index of `s` that our log lacks or holds from another leader; s.stop when
        we hold all of `s`. Entries up to the purged index are committed, so they match.
        Log matching makes equal (leader, index) equal entries, so only run boundaries are
        compared: O(runs), not O(entries)."""
        cdef int64_t i = s.start, end, na, nb, f
        cdef Py_ssize_t j
        cdef LeaderId a, b
        if i < self.first_index:
            i = self.first_index
        end = s.stop if s.stop < self.last_index + 1 else self.last_index + 1
        while i < end:
            a = s.c_leader_at(i)
            b = self.c_leader_at(i)
            if not _same_leader(a, b):
                return i
            na = s.stop
            for j in range(len(s.runs)):
                f = s.runs[j][0]
                if f > i:
                    na = f
                    break
            nb = self.last_index + 1
            for j in range(len(self._run_starts)):
                f = self._run_starts[j]
                if f > i:
                    nb = f
                    break
            i = na if na < nb else nb
        return end if end > s.start else s.start

    cdef int c_truncate_after(self, int64_t index) except -1:
        """Drop every entry after `index`."""
        if index >= self.last_index:
            return 0
        if index < self.first_index - 1:
            raise ValueError(f"cannot truncate after {index}: entries up to {self.first_index - 1} are purged")
        cdef Py_ssize_t end = self._head + (index - self.first_index + 1)
        self._release(end, self._len)
        self._len = end
        while self._run_starts and <int64_t>self._run_starts[len(self._run_starts) - 1] > index:
            self._run_starts.pop()
            self._run_leaders.pop()
        self.last_index = index
        return 0

    cdef int c_purge_upto(self, int64_t index) except -1:
        """Drop every entry up to and including `index`, remembering its log id."""
        cdef Py_ssize_t k, live
        if index < self.first_index:
            return 0
        if index > self.last_index:
            raise ValueError(f"cannot purge up to {index}: the log ends at {self.last_index}")
        self.purged = make_log_id(self.c_leader_at(index), index)
        k = index - self.first_index + 1
        self._release(self._head, self._head + k)
        self._head += k
        self.first_index = index + 1
        # Keep the run that covers the purged entry, drop the ones before it.
        while len(self._run_starts) > 1 and <int64_t>self._run_starts[1] <= index:
            del self._run_starts[0]
            del self._run_leaders[0]
        live = self._len - self._head
        if self._head >= _COMPACT_MIN and self._head > live:
            memmove(self._items, self._items + self._head, live * sizeof(PyObject*))
            self._len = live
            memmove(self._kinds, self._kinds + self._head, live * sizeof(uint8_t))
            memmove(self._cum, self._cum + self._head, (live + 1) * sizeof(int64_t))
            self._head = 0
        return 0

    cdef list c_membership_entries(self, int64_t start, int64_t stop):
        """[(LogId, Membership)] of the membership entries in [start, stop), scanning kind bytes."""
        cdef list out = []
        cdef int64_t i
        cdef Py_ssize_t pos
        if start < self.first_index:
            start = self.first_index
        if stop > self.last_index + 1:
            stop = self.last_index + 1
        for i in range(start, stop):
            pos = self._head + (i - self.first_index)
            if self._kinds[pos] == ENTRY_MEMBERSHIP:
                out.append((make_log_id(self.c_leader_at(i), i), <object>self._items[pos]))
        return out

    # Python-facing API.
    def membership_entries(self, int64_t start, int64_t stop):
        return self.c_membership_entries(start, stop)

    def append(self, LeaderId leader not None, list payloads not None, int kind=ENTRY_NORMAL):
        """Append `payloads` as entries of `leader` and `kind`; returns the new last index."""
        return self.c_append(leader, payloads, kind)

    def append_slice(self, LogSlice s not None, from_index=None):
        return self.c_append_slice(s, s.start if from_index is None else from_index)

    def slice(self, int64_t start, int64_t stop):
        return self.c_slice(start, stop)

    def nbytes(self, int64_t start, int64_t stop):
        if start < self.first_index or stop > self.last_index + 1 or start > stop:
            raise IndexError(f"range [{start}, {stop}) outside the log")
        return self.c_nbytes(start, stop)

    def first_conflict(self, LogSlice s not None):
        return self.c_first_conflict(s)

    def truncate_after(self, int64_t index):
        self.c_truncate_after(index)

    def purge_upto(self, int64_t index):
        self.c_purge_upto(index)

    def reset(self, LogId purged=None):
        """Drop everything (a snapshot replaces the log); `purged` becomes the last log id."""
        self.c_reset(purged)

    def leader_id_at(self, int64_t index):
        return self.c_leader_at(index)

    def log_id_at(self, int64_t index):
        cdef LeaderId lid = self.c_leader_at(index)
        return None if lid is None else make_log_id(lid, index)

    @property
    def last_log_id(self):
        return self.log_id_at(self.last_index)

    def payload_at(self, int64_t index):
        if index < self.first_index or index > self.last_index:
            raise IndexError(index)
        return <object>self._items[self._head + (index - self.first_index)]

    def kind_at(self, int64_t index):
        if index < self.first_index or index > self.last_index:
            raise IndexError(index)
        return self._kinds[self._head + (index - self.first_index)]

    def entries(self, int64_t start, int64_t stop):
        return self.c_slice(start, stop).entries()

    def __len__(self):
        return self.last_index - self.first_index + 1

    def __repr__(self):
        return f"LogBuffer(purged={self.purged}, [{self.first_index}, {self.last_index}])"
