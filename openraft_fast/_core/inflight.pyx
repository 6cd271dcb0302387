"""In-flight window of a replication stream (see inflight.pxd)."""
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int64_t


cdef class Inflights:
    def __cinit__(self, *args, **kwargs):
        self._ids = NULL
        self._ends = NULL
        self._sizes = NULL

    def __dealloc__(self):
        PyMem_Free(self._ids)
        PyMem_Free(self._ends)
        PyMem_Free(self._sizes)

    def __init__(self, Py_ssize_t max_count, int64_t max_bytes=1 << 62):
        if max_count < 1:
            raise ValueError(f"max_count must be >= 1, got {max_count}")
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        self.max_count = max_count
        self.max_bytes = max_bytes
        self._ids = <int64_t*>PyMem_Malloc(max_count * sizeof(int64_t))
        self._ends = <int64_t*>PyMem_Malloc(max_count * sizeof(int64_t))
        self._sizes = <int64_t*>PyMem_Malloc(max_count * sizeof(int64_t))
        if self._ids == NULL or self._ends == NULL or self._sizes == NULL:
            raise MemoryError()
        self.c_reset()

    cdef int c_add(self, int64_t msg_id, int64_t end_index, int64_t nbytes) except -1:
        cdef Py_ssize_t pos
        if self.count >= self.max_count:
            raise OverflowError("in-flight window is full")
        if self.count > 0:
            pos = (self._start + self.count - 1) % self.max_count
            if msg_id <= self._ids[pos]:
                raise ValueError(f"message id {msg_id} is not above the last in flight ({self._ids[pos]})")
        pos = (self._start + self.count) % self.max_count
        self._ids[pos] = msg_id
        self._ends[pos] = end_index
        self._sizes[pos] = nbytes
        self.count += 1
        self.bytes += nbytes
        return 0

    cdef Py_ssize_t c_free_to(self, int64_t msg_id) noexcept:
        """Free every message up to and including `msg_id`; -1 when `msg_id` is not in flight."""
        cdef Py_ssize_t freed = 0
        if self.count == 0 or msg_id < self._ids[self._start]:
            return -1
        if msg_id > self._ids[(self._start + self.count - 1) % self.max_count]:
            return -1
        while self.count > 0 and self._ids[self._start] <= msg_id:
            self.bytes -= self._sizes[self._start]
            self._start = (self._start + 1) % self.max_count
            self.count -= 1
            freed += 1
        if self.count == 0:
            self._start = 0
        return freed

    cdef void c_reset(self) noexcept:
        self._start = 0
        self.count = 0
        self.bytes = 0

    cdef int64_t c_last_end(self) noexcept:
        if self.count == 0:
            return -1
        return self._ends[(self._start + self.count - 1) % self.max_count]

    # Python-facing wrappers (tests, debugging).
    def add(self, int64_t msg_id, int64_t end_index, int64_t nbytes=0):
        self.c_add(msg_id, end_index, nbytes)

    def free_to(self, int64_t msg_id):
        """Number of messages freed, or -1 for a stale id."""
        return self.c_free_to(msg_id)

    def reset(self):
        self.c_reset()

    @property
    def full(self):
        return self.c_full()

    def items(self):
        """[(msg_id, end_index, nbytes)] oldest first."""
        cdef Py_ssize_t i, p
        out = []
        for i in range(self.count):
            p = (self._start + i) % self.max_count
            out.append((self._ids[p], self._ends[p], self._sizes[p]))
        return out

    def __len__(self):
        return self.count

    def __repr__(self):
        return f"Inflights({self.items()!r}, max_count={self.max_count}, bytes={self.bytes}/{self.max_bytes})"
