# Base of the engine's small value classes (messages, commands): field-wise equality, a
# readable repr and pickling from a `_fields` tuple, so tests can compare exact commands.
cdef class Record:
    pass
