# cython: language_level=3
# csrc: crc32c.c
"""WAL record codec: a batch of entries to one buffer, and a verified scan back (see walrec.pyi).

Record (little-endian): u32 body_len, u32 crc32c(body_len), u32 crc32c(body), then the body:
i64 index, i64 term, i64 node (-1: none), u8 kind, u8 flags (bit 0: std leader id), payload.
A zero body_len ends the data of a (zero-preallocated) segment.
"""
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint8_t, uint32_t
from libc.string cimport memcpy

from openraft_fast._core.log cimport LogSlice
from openraft_fast._core.packing cimport get_i64, get_u32, put_i64, put_u32
from openraft_fast._core.types cimport ENTRY_BLANK, ENTRY_MEMBERSHIP, ENTRY_NORMAL, LeaderId, make_leader_id


cdef extern from "crc32c.h":
    void crc32c_init() nogil
    uint32_t crc32c_extend(uint32_t crc, const void *data, size_t n) nogil
    uint32_t crc32c_sw(uint32_t crc, const void *data, size_t n) nogil
    int crc32c_hw_available() nogil

crc32c_init()

DEF HEAD = 12
DEF FIXED = 26

HEADER_BYTES = HEAD
BODY_FIXED_BYTES = FIXED
RECORD_OVERHEAD = HEAD + FIXED

# decode() status
END = 0          # clean end: a zero header or the end of the buffer
TORN = 1         # a short record, or a header whose own checksum fails
BAD_CRC = 2      # the body checksum fails
BAD_INDEX = 3    # the record's index is not the one expected


def crc32c(data, uint32_t crc=0):
    """CRC-32C of a bytes-like object (hardware when available)."""
    cdef const unsigned char[::1] mv = memoryview(data).cast("B")
    if mv.shape[0] == 0:
        return crc32c_extend(crc, NULL, 0)
    return crc32c_extend(crc, &mv[0], mv.shape[0])


def crc32c_software(data, uint32_t crc=0):
    """The table version (for tests against the hardware one)."""
    cdef const unsigned char[::1] mv = memoryview(data).cast("B")
    if mv.shape[0] == 0:
        return crc32c_sw(crc, NULL, 0)
    return crc32c_sw(crc, &mv[0], mv.shape[0])


def hardware_crc():
    return bool(crc32c_hw_available())


def encode(LogSlice s not None, mencode, int64_t base=0):
    """(records, offsets): the records of every entry of `s` in one bytes object, and the
    offset of each record (base + position) as packed int64s. Membership payloads go through
    `mencode(membership) -> bytes`; normal payloads must be bytes-like."""
    cdef Py_ssize_t n = len(s.payloads), i, j, nruns = len(s.runs)
    cdef list bufs = [None] * n
    cdef Py_ssize_t total = 0, plen
    cdef const unsigned char* kinds = <const unsigned char*>PyBytes_AS_STRING(s.kinds)
    cdef object p
    cdef uint8_t kind
    for i in range(n):
        p = s.payloads[i]
        kind = kinds[i]
        if kind == ENTRY_NORMAL:
            if type(p) is not bytes and type(p) is not bytearray:
                if isinstance(p, (bytes, bytearray, memoryview)):
                    p = bytes(p)
                else:
                    raise TypeError(f"entry {s.start + i}: payload must be bytes-like, got {type(p).__name__}")
        elif kind == ENTRY_MEMBERSHIP:
            p = mencode(p)
            if type(p) is not bytes:
                raise TypeError("mencode must return bytes")
        else:
            p = b""
        bufs[i] = p
        total += HEAD + FIXED + (PyBytes_GET_SIZE(p) if type(p) is bytes else PyByteArray_GET_SIZE(p))
    out = PyBytes_FromStringAndSize(NULL, total)
    offs = PyBytes_FromStringAndSize(NULL, n * 8)
    cdef char* o = PyBytes_AS_STRING(out)
    cdef char* ob = PyBytes_AS_STRING(offs)
    cdef Py_ssize_t pos = 0
    cdef const char* src
    cdef uint32_t blen
    cdef LeaderId lid = None
    cdef int64_t next_run = s.start, index
    j = -1
    for i in range(n):
        index = s.start + i
        if index == next_run:
            j += 1
            lid = <LeaderId>(s.runs[j][1])
            next_run = s.runs[j + 1][0] if j + 1 < nruns else s.stop
        p = bufs[i]
        if type(p) is bytes:
            src = PyBytes_AS_STRING(p)
            plen = PyBytes_GET_SIZE(p)
        else:
            src = PyByteArray_AS_STRING(p)
            plen = PyByteArray_GET_SIZE(p)
        put_i64(ob + 8 * i, base + pos)
        blen = <uint32_t>(FIXED + plen)
        put_u32(o + pos, blen)
        put_u32(o + pos + 4, crc32c_extend(0, o + pos, 4))
        put_i64(o + pos + HEAD, index)
        put_i64(o + pos + HEAD + 8, lid.term)
        put_i64(o + pos + HEAD + 16, lid.node)
        o[pos + HEAD + 24] = <char>kinds[i]
        o[pos + HEAD + 25] = <char>(1 if lid.std else 0)
        if plen:
            memcpy(o + pos + HEAD + FIXED, src, plen)
        put_u32(o + pos + 8, crc32c_extend(0, o + pos + HEAD, blen))
        pos += HEAD + blen
    return out, offs


def decode(data, Py_ssize_t pos, int64_t expect_index, bint materialize, mdecode=None):
    """Scan records from `pos`, verifying every checksum and that indexes run on from
    `expect_index` (-1: take the first record's).

    Returns (status, end, first_index, count, offsets, payloads, kinds, runs, last_leader):
    `end` is where the scan stopped (the start of the record that ended it), `offsets` the
    packed int64 offset of each good record; payloads/kinds/runs (for LogSlice) only with
    `materialize` (membership payloads through `mdecode(bytes)`), else None."""
    cdef const unsigned char[::1] mv = memoryview(data).cast("B")
    cdef Py_ssize_t size = mv.shape[0]
    cdef const unsigned char* b = &mv[0] if size else NULL
    cdef int status = END
    cdef uint32_t blen
    cdef int64_t index, term, node, first = -1, count = 0
    cdef int64_t rterm = -2, rnode = -2
    cdef bint std, rstd = False
    cdef uint8_t kind
    cdef bytearray offs = bytearray()
    cdef bytearray kinds = bytearray() if materialize else None
    cdef list payloads = [] if materialize else None
    cdef list runs = [] if materialize else None
    cdef LeaderId last = None
    cdef int64_t off64
    cdef object payload
    while True:
        if pos == size:
            break
        if size - pos < HEAD:
            # Short header: a clean end only if it is all zero.
            status = TORN
            for i in range(pos, size):
                if b[i] != 0:
                    break
            else:
                status = END
            break
        blen = get_u32(b + pos)
        if blen == 0 and get_u32(b + pos + 4) == 0:
            break
        if get_u32(b + pos + 4) != crc32c_extend(0, b + pos, 4) or blen < FIXED:
            status = TORN
            break
        if <Py_ssize_t>blen > size - pos - HEAD:
            status = TORN
            break
        if get_u32(b + pos + 8) != crc32c_extend(0, b + pos + HEAD, blen):
            status = BAD_CRC
            break
        index = get_i64(b + pos + HEAD)
        if expect_index >= 0 and index != expect_index:
            status = BAD_INDEX
            break
        term = get_i64(b + pos + HEAD + 8)
        node = get_i64(b + pos + HEAD + 16)
        kind = b[pos + HEAD + 24]
        std = b[pos + HEAD + 25] & 1
        if kind > ENTRY_MEMBERSHIP:
            status = BAD_CRC
            break
        if term != rterm or node != rnode or std != rstd:
            rterm, rnode, rstd = term, node, std
            last = make_leader_id(term, node, std)
            if materialize:
                runs.append((index, last))
        if first < 0:
            first = index
        off64 = pos
        offs += (<char*>&off64)[:8]
        if materialize:
            if kind == ENTRY_NORMAL:
                payload = PyBytes_FromStringAndSize(<const char*>b + pos + HEAD + FIXED, blen - FIXED)
            elif kind == ENTRY_MEMBERSHIP:
                payload = mdecode(PyBytes_FromStringAndSize(<const char*>b + pos + HEAD + FIXED, blen - FIXED))
            else:
                payload = None
            payloads.append(payload)
            kinds.append(kind)
        count += 1
        expect_index = index + 1
        pos += HEAD + blen
    return (status, pos, first, count, bytes(offs), payloads,
            bytes(kinds) if materialize else None, runs, last)
