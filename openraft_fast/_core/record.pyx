"""Field-wise eq/repr/pickle for small value classes (see record.pxd)."""


cdef class Record:
    _fields = ()

    def _values(self):
        return tuple([getattr(self, f) for f in type(self)._fields])

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __ne__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._values() != other._values()

    __hash__ = None

    def __reduce__(self):
        return (type(self), self._values())

    def __repr__(self):
        parts = ", ".join(f"{f}={v!r}" for f, v in zip(type(self)._fields, self._values()))
        return f"{type(self).__name__}({parts})"
