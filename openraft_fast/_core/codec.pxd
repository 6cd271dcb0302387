# The wire codec: length-prefixed, checksummed frames of the messages between nodes (see
# codec.pyx for the layout, docs/wire.md for the protocol). The wire-only messages live here.
from libc.stdint cimport int64_t

from openraft_fast._core.messages cimport SnapshotMeta
from openraft_fast._core.record cimport Record
from openraft_fast._core.types cimport Vote


cdef enum:
    LANE_APPEND_ = 0        # append-entries batches (bulk)
    LANE_CONTROL_ = 1       # votes, heartbeats, timeout-now, read-index
    LANE_SNAPSHOT_ = 2      # snapshot chunks


cdef class Handshake(Record):
    cdef readonly int64_t version
    cdef readonly str cluster_name
    cdef readonly int64_t src
    cdef readonly int64_t dst
    cdef readonly int lane


cdef class HandshakeReply(Record):
    cdef readonly bint ok
    cdef readonly str reason


cdef class SnapshotChunk(Record):
    cdef readonly Vote vote
    cdef readonly SnapshotMeta meta
    cdef readonly int64_t offset        # byte offset of `data` in the snapshot
    cdef readonly object data           # bytes-like (bytes when decoded)
    cdef readonly bint last             # the final chunk: the snapshot is complete after it
    cdef readonly int64_t msg_id
    cdef readonly int64_t seq
    cdef readonly int64_t sent_at


cdef class ErrorReply(Record):
    cdef readonly int64_t code
    cdef readonly str message


cdef class ClientRequest(Record):
    cdef readonly object data


cdef class ClientResponse(Record):
    cdef readonly object data


cdef class FrameDecoder:
    cdef bytearray _buf                 # receive buffer; live bytes are [_start, _end)
    cdef Py_ssize_t _start
    cdef Py_ssize_t _end
    cdef Py_ssize_t _max_frame
    cdef Py_ssize_t _need               # size of the frame at _start once its header is read, else 0
    cdef bint _dead                     # a CodecError was raised: refuse everything after

    cdef int _reserve(self, Py_ssize_t want_free) except -1
    cdef list _parse(self)
    cdef Py_ssize_t _want(self, Py_ssize_t sizehint)
    cdef int _parse_into(self, list out) except -1
