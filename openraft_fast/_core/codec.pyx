# cython: language_level=3
# csrc: crc32c.c
"""The wire codec: messages between nodes as length-prefixed, checksummed frames (see codec.pyi
and docs/wire.md).

Frame (little-endian): a 24-byte header, then the body.
  0  magic  2 bytes (MAGIC)         4  body length u32      16  CRC-32C of the body u32
  2  version u8                     8  corr_id u64          20  CRC-32C of header bytes 0..19
  3  message type u8
Body fields are fixed width: i64, u8 flags, u32 counts and lengths. A batch of entries is laid
out in columns (run table, kinds, lengths, then the payload bytes) so it is written and read in
plain C loops and every count is checked against the bytes left before anything is allocated.
"""
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from cpython.buffer cimport PyBUF_SIMPLE, PyObject_GetBuffer, PyBuffer_Release
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE, PyList_New, PyList_SET_ITEM
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.ref cimport PyObject, Py_INCREF
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy, memmove

import msgpack

from openraft_fast._core.log cimport LogSlice
from openraft_fast._core.packing cimport get_i64, get_u32, put_i64, put_u32
from openraft_fast._core.messages cimport (
    APPEND_HIGHER_VOTE, APPEND_OK, FWD_OK, FWD_UNKNOWN, READ_NO_QUORUM, READ_OK, AppendRequest, AppendResponse,
    ForwardRequest, ForwardResponse, ReadIndexRequest, ReadIndexResponse, SnapshotMeta, SnapshotResponse, TimeoutNow, VoteRequest,
    VoteResponse,
)
from openraft_fast._core.record cimport Record
from openraft_fast._core.types cimport (
    ENTRY_BLANK, ENTRY_MEMBERSHIP, ENTRY_NORMAL, NO_NODE, LeaderId, LogId, Membership, Node, Vote,
    make_leader_id, make_log_id,
)
from openraft_fast.errors import CodecError


cdef extern from "crc32c.h":
    void crc32c_init() nogil
    uint32_t crc32c_extend(uint32_t crc, const void *data, size_t n) nogil

crc32c_init()

DEF HEAD = 24
DEF MAGIC0 = 0xF7           # not ASCII, not valid UTF-8, not a TLS record type: foreign
DEF MAGIC1 = 0x52           # protocols fail at the first byte
DEF VERSION = 2
DEF MAX_U32 = 0xFFFFFFFF
DEF MIN_READ = 16384        # free space offered to a read at least
DEF MAX_READ = 262144       # ... and at most, unless a known frame needs more
DEF INITIAL_CAP = 65536
DEF SHRINK_CAP = 1048576    # an idle buffer bigger than this is given back

# Flag bits of leader ids, votes and log ids.
DEF F_STD = 1
DEF F_COMMITTED = 2         # votes
DEF F_PRESENT = 2           # optional log ids

PROTOCOL_VERSION = VERSION
MAGIC = bytes([MAGIC0, MAGIC1])
HEADER_SIZE = HEAD
DEFAULT_MAX_FRAME = 64 * 1024 * 1024
LANE_APPEND = LANE_APPEND_
LANE_CONTROL = LANE_CONTROL_
LANE_SNAPSHOT = LANE_SNAPSHOT_


# ---- wire-only messages --------------------------------------------------------------------------

cdef class Handshake(Record):
    """The first frame on a connection: who connects to whom, for what lane."""
    _fields = ("version", "cluster_name", "src", "dst", "lane")

    def __init__(self, int64_t version, str cluster_name not None, int64_t src, int64_t dst, int lane):
        if version < 0 or version > MAX_U32:
            raise ValueError(f"handshake version must be a u32, got {version}")
        if src < 0 or dst < 0:
            raise ValueError(f"node ids must be >= 0, got src={src}, dst={dst}")
        if lane < LANE_APPEND_ or lane > LANE_SNAPSHOT_:
            raise ValueError(f"lane must be 0 (append), 1 (control) or 2 (snapshot), got {lane}")
        self.version = version
        self.cluster_name = cluster_name
        self.src = src
        self.dst = dst
        self.lane = lane


cdef class HandshakeReply(Record):
    """The server's answer to a Handshake: ok, or why the connection is refused."""
    _fields = ("ok", "reason")

    def __init__(self, bint ok, str reason not None=""):
        self.ok = ok
        self.reason = reason


cdef class SnapshotChunk(Record):
    """One chunk of an InstallSnapshotRequest's data, at byte `offset`; `last` on the final one."""
    _fields = ("vote", "meta", "offset", "data", "last", "msg_id", "seq", "sent_at")

    def __init__(self, Vote vote not None, SnapshotMeta meta not None, int64_t offset, data, bint last,
                 int64_t msg_id=0, int64_t seq=0, int64_t sent_at=0):
        if offset < 0:
            raise ValueError(f"snapshot chunk offset must be >= 0, got {offset}")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"snapshot chunk data must be bytes-like, got {type(data).__name__}")
        self.vote = vote
        self.meta = meta
        self.offset = offset
        self.data = data
        self.last = last
        self.msg_id = msg_id
        self.seq = seq
        self.sent_at = sent_at


cdef class ErrorReply(Record):
    """The remote handler raised: `code` says what kind of failure, `message` is free text."""
    _fields = ("code", "message")

    def __init__(self, int64_t code, str message not None=""):
        self.code = code
        self.message = message


cdef class ClientRequest(Record):
    """A request of the KV service's binary client protocol (its msgpack in `data`)."""
    _fields = ("data",)

    def __init__(self, data not None):
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"client request data must be bytes-like, got {type(data).__name__}")
        self.data = data


cdef class ClientResponse(Record):
    """The answer to a ClientRequest (its msgpack in `data`)."""
    _fields = ("data",)

    def __init__(self, data not None):
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"client response data must be bytes-like, got {type(data).__name__}")
        self.data = data


# ---- writing -------------------------------------------------------------------------------------

DEF SMALL = 480             # frames up to this size are built on the stack (no malloc)


cdef struct Writer:
    char* buf                   # `small`, a heap block once the frame outgrows it, or ba's bytes
    Py_ssize_t pos
    Py_ssize_t cap
    PyObject* ba                # a bytearray written in place (encode_into of a big frame), or NULL
    char small[SMALL]


cdef int w_init(Writer* w, Py_ssize_t cap) except -1:
    w.pos = 0
    w.ba = NULL
    if cap <= SMALL:
        w.buf = w.small
        w.cap = SMALL
        return 0
    w.buf = <char*>PyMem_Malloc(cap)
    if w.buf == NULL:
        raise MemoryError()
    w.cap = cap
    return 0


cdef int w_init_into(Writer* w, bytearray out, Py_ssize_t extra) except -1:
    """Write at the end of `out`, growing it in place (no copy of the frame afterwards)."""
    w.pos = PyByteArray_GET_SIZE(out)
    PyByteArray_Resize(out, w.pos + extra)
    w.ba = <PyObject*>out
    w.buf = PyByteArray_AS_STRING(out)
    w.cap = w.pos + extra
    return 0


cdef inline void w_free(Writer* w) noexcept:
    if w.ba == NULL and w.buf != w.small:
        PyMem_Free(w.buf)


cdef int w_reserve(Writer* w, Py_ssize_t extra) except -1:
    cdef Py_ssize_t need = w.pos + extra
    cdef Py_ssize_t cap = w.cap
    cdef char* nb
    if need <= cap:
        return 0
    while cap < need:
        cap *= 2
    if w.ba != NULL:
        PyByteArray_Resize(<object>w.ba, cap)
        w.buf = PyByteArray_AS_STRING(<object>w.ba)
        w.cap = cap
        return 0
    if w.buf == w.small:
        nb = <char*>PyMem_Malloc(cap)
        if nb != NULL:
            memcpy(nb, w.small, w.pos)
    else:
        nb = <char*>PyMem_Realloc(w.buf, cap)
    if nb == NULL:
        raise MemoryError()
    w.buf = nb
    w.cap = cap
    return 0


cdef inline int w_u8(Writer* w, uint8_t v) except -1:
    w_reserve(w, 1)
    w.buf[w.pos] = <char>v
    w.pos += 1
    return 0


cdef inline int w_u32(Writer* w, uint32_t v) except -1:
    w_reserve(w, 4)
    put_u32(w.buf + w.pos, v)
    w.pos += 4
    return 0


cdef inline int w_i64(Writer* w, int64_t v) except -1:
    w_reserve(w, 8)
    put_i64(w.buf + w.pos, v)
    w.pos += 8
    return 0


cdef int w_raw(Writer* w, const char* data, Py_ssize_t n) except -1:
    if n > MAX_U32:
        raise CodecError(f"a field of {n} bytes is over the 4 GiB field limit")
    w_reserve(w, 4 + n)
    put_u32(w.buf + w.pos, <uint32_t>n)
    if n:
        memcpy(w.buf + w.pos + 4, data, n)
    w.pos += 4 + n
    return 0


cdef int w_bytes(Writer* w, object data) except -1:
    cdef Py_buffer view
    if type(data) is bytes:
        return w_raw(w, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
    if type(data) is bytearray:
        return w_raw(w, PyByteArray_AS_STRING(data), PyByteArray_GET_SIZE(data))
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError(f"expected bytes-like data, got {type(data).__name__}")
    if isinstance(data, memoryview) and not data.c_contiguous:
        data = data.tobytes()
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        w_raw(w, <const char*>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)
    return 0


cdef int w_str(Writer* w, str s) except -1:
    cdef bytes b
    try:
        b = s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise CodecError(f"string is not encodable as UTF-8: {e}") from None
    return w_raw(w, PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))


cdef inline int w_leader_id(Writer* w, LeaderId lid) except -1:
    w_reserve(w, 17)
    w.buf[w.pos] = <char>(F_STD if lid.std else 0)
    put_i64(w.buf + w.pos + 1, lid.term)
    put_i64(w.buf + w.pos + 9, lid.node)
    w.pos += 17
    return 0


cdef inline int w_vote(Writer* w, Vote v) except -1:
    cdef LeaderId lid = v.leader_id
    w_reserve(w, 17)
    w.buf[w.pos] = <char>((F_STD if lid.std else 0) | (F_COMMITTED if v.committed else 0))
    put_i64(w.buf + w.pos + 1, lid.term)
    put_i64(w.buf + w.pos + 9, lid.node)
    w.pos += 17
    return 0


cdef inline int w_opt_log_id(Writer* w, LogId lid) except -1:
    if lid is None:
        return w_u8(w, 0)
    w_reserve(w, 25)
    w.buf[w.pos] = <char>(F_PRESENT | (F_STD if lid.leader_id.std else 0))
    put_i64(w.buf + w.pos + 1, lid.leader_id.term)
    put_i64(w.buf + w.pos + 9, lid.leader_id.node)
    put_i64(w.buf + w.pos + 17, lid.index)
    w.pos += 25
    return 0


cdef int w_membership(Writer* w, Membership m) except -1:
    cdef Node node
    cdef bytes data
    w_u32(w, <uint32_t>len(m.configs))
    for cfg in m.configs:
        w_u32(w, <uint32_t>len(cfg))
        for v in sorted(cfg):
            w_i64(w, v)
    w_u32(w, <uint32_t>len(m._nodes))
    for k in sorted(m._nodes):
        node = <Node>m._nodes[k]
        w_i64(w, k)
        w_str(w, node.addr)
        if node.data:
            try:
                data = msgpack.packb(node.data, use_bin_type=True)
            except Exception as e:
                raise CodecError(f"node {k}: data is not msgpack-encodable: {e}") from None
            w_raw(w, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
        else:
            w_u32(w, 0)
    return 0


cdef bytes membership_bytes(Membership m):
    cdef Writer w
    w_init(&w, 256)
    try:
        w_membership(&w, m)
        return PyBytes_FromStringAndSize(w.buf, w.pos)
    finally:
        w_free(&w)


cdef int w_slice(Writer* w, LogSlice s) except -1:
    """Run table, kinds, lengths, payloads. The payloads start right after the fixed-size
    lengths column, so one pass writes each entry's length and copies its bytes."""
    cdef list payloads = s.payloads
    cdef Py_ssize_t n = PyList_GET_SIZE(payloads), nruns = len(s.runs), i, lens_at, plen
    cdef const unsigned char* kinds = <const unsigned char*>PyBytes_AS_STRING(s.kinds)
    cdef object p
    cdef uint8_t kind
    cdef const char* src
    if n != s.stop - s.start or PyBytes_GET_SIZE(s.kinds) != n:
        raise CodecError("inconsistent log slice")
    if n > MAX_U32:
        raise CodecError(f"a batch of {n} entries is over the limit")
    w_reserve(w, 16 + 25 * nruns + 5 * n)
    put_i64(w.buf + w.pos, s.start)
    put_u32(w.buf + w.pos + 8, <uint32_t>n)
    put_u32(w.buf + w.pos + 12, <uint32_t>nruns)
    w.pos += 16
    for first, lid in s.runs:
        w_i64(w, first)
        w_leader_id(w, <LeaderId>lid)
    memcpy(w.buf + w.pos, kinds, n)
    w.pos += n
    lens_at = w.pos
    w.pos += 4 * n
    for i in range(n):
        kind = kinds[i]
        p = <object>PyList_GET_ITEM(payloads, i)
        if kind == ENTRY_NORMAL:
            if type(p) is bytes:
                plen = PyBytes_GET_SIZE(p)
                src = PyBytes_AS_STRING(p)
            elif type(p) is bytearray:
                plen = PyByteArray_GET_SIZE(p)
                src = PyByteArray_AS_STRING(p)
            elif isinstance(p, (bytes, bytearray, memoryview)):
                p = bytes(p)
                plen = PyBytes_GET_SIZE(p)
                src = PyBytes_AS_STRING(p)
            else:
                raise CodecError(f"entry {s.start + i}: payload must be bytes-like, got {type(p).__name__}")
        elif kind == ENTRY_MEMBERSHIP:
            if not isinstance(p, Membership):
                raise CodecError(f"entry {s.start + i}: a membership entry needs a Membership payload")
            p = membership_bytes(<Membership>p)
            plen = PyBytes_GET_SIZE(p)
            src = PyBytes_AS_STRING(p)
        elif kind == ENTRY_BLANK:
            plen = 0
            src = NULL
        else:
            raise CodecError(f"entry {s.start + i}: unknown kind {kind}")
        if plen > MAX_U32:
            raise CodecError(f"entry {s.start + i}: payload over the 4 GiB field limit")
        w_reserve(w, plen)
        put_u32(w.buf + lens_at + 4 * i, <uint32_t>plen)
        if plen:
            memcpy(w.buf + w.pos, src, plen)
            w.pos += plen
    return 0


cdef int w_meta(Writer* w, SnapshotMeta meta) except -1:
    w_opt_log_id(w, meta.last_log_id)
    w_opt_log_id(w, meta.membership_log_id)
    if meta.membership is None:
        w_u8(w, 0)
    else:
        w_u8(w, 1)
        w_membership(w, meta.membership)
    w_str(w, meta.snapshot_id)
    return 0


cdef int w_unencodable(type t) except -1:
    raise CodecError(f"cannot encode a {t.__name__} (send an InstallSnapshotRequest as SnapshotChunks)"
                     if t.__name__ == "InstallSnapshotRequest" else f"cannot encode a {t.__name__}")


cdef inline uint64_t _corr_id(object corr_id) except? 0xFFFFFFFFFFFFFFFF:
    if not isinstance(corr_id, int) or isinstance(corr_id, bool):
        raise CodecError(f"corr_id must be an int, got {type(corr_id).__name__}")
    if corr_id < 0 or corr_id > 0xFFFFFFFFFFFFFFFF:
        raise CodecError(f"corr_id must fit in a u64, got {corr_id}")
    return <uint64_t>corr_id


cdef int w_frame(Writer* w, object msg, uint64_t corr_id) except -1:
    """Header + body of one frame at w.pos."""
    cdef Py_ssize_t at = w.pos, blen
    cdef int mtype
    w_reserve(w, HEAD)
    w.pos += HEAD
    mtype = w_body(w, msg)
    blen = w.pos - at - HEAD
    if blen > MAX_U32 - HEAD:
        raise CodecError(f"a frame body of {blen} bytes is over the 4 GiB limit")
    cdef char* h = w.buf + at
    h[0] = <char>MAGIC0
    h[1] = <char>MAGIC1
    h[2] = <char>VERSION
    h[3] = <char>mtype
    put_u32(h + 4, <uint32_t>blen)
    memcpy(h + 8, &corr_id, 8)
    put_u32(h + 16, crc32c_extend(0, h + HEAD, blen))
    put_u32(h + 20, crc32c_extend(0, h, 20))
    return 0


cdef inline Py_ssize_t _size_hint(object msg):
    """Enough room for most frames of `msg` in one allocation (a batch: its payload bytes and
    per-entry columns), so the writer rarely grows."""
    cdef LogSlice s
    if type(msg) is AppendRequest and (<AppendRequest>msg).entries is not None:
        s = (<AppendRequest>msg).entries
        return 256 + 25 * len(s.runs) + 5 * (s.stop - s.start) + s.nbytes
    if type(msg) is SnapshotChunk:
        data = (<SnapshotChunk>msg).data
        if type(data) is bytes:
            return SMALL + PyBytes_GET_SIZE(data)
        if type(data) is bytearray:
            return SMALL + PyByteArray_GET_SIZE(data)
        if type(data) is memoryview:
            return SMALL + (<memoryview>data).nbytes
    return SMALL


def encode(msg, corr_id):
    """One whole frame (header + body) of `msg`, tagged with `corr_id` (a u64). Raises CodecError
    for a message it cannot encode."""
    cdef uint64_t cid = _corr_id(corr_id)
    cdef Writer w
    w_init(&w, _size_hint(msg))
    try:
        w_frame(&w, msg, cid)
        return PyBytes_FromStringAndSize(w.buf, w.pos)
    finally:
        w_free(&w)


def encode_into(bytearray out not None, msg, corr_id):
    """Append one frame of `msg` to `out` (to coalesce many frames into one write)."""
    cdef uint64_t cid = _corr_id(corr_id)
    cdef Writer w
    cdef Py_ssize_t old = PyByteArray_GET_SIZE(out), hint = _size_hint(msg)
    if hint > SMALL:
        # A batch or a snapshot chunk: build it in `out` itself; on failure `out` is cut back.
        w_init_into(&w, out, hint)
        try:
            w_frame(&w, msg, cid)
        except BaseException:
            PyByteArray_Resize(out, old)
            raise
        PyByteArray_Resize(out, w.pos)
        return
    w_init(&w, hint)
    try:
        w_frame(&w, msg, cid)
        PyByteArray_Resize(out, old + w.pos)
        memcpy(PyByteArray_AS_STRING(out) + old, w.buf, w.pos)
    finally:
        w_free(&w)


# ---- reading -------------------------------------------------------------------------------------

cdef struct Reader:
    const unsigned char* p
    Py_ssize_t pos
    Py_ssize_t end


cdef int _short(Reader* r, Py_ssize_t n) except -1:
    raise CodecError(f"truncated body: {n} bytes needed at offset {r.pos}, {r.end - r.pos} left")


cdef inline int r_need(Reader* r, Py_ssize_t n) except -1:
    if n > r.end - r.pos:
        return _short(r, n)
    return 0


cdef inline uint8_t r_u8(Reader* r) except? 255:
    r_need(r, 1)
    r.pos += 1
    return r.p[r.pos - 1]


cdef inline bint r_bool(Reader* r) except? -1:
    cdef uint8_t v = r_u8(r)
    if v > 1:
        raise CodecError(f"bad boolean byte {v}")
    return v


cdef inline uint32_t r_u32(Reader* r) except? 0xFFFFFFFF:
    r_need(r, 4)
    r.pos += 4
    return get_u32(r.p + r.pos - 4)


cdef inline int64_t r_i64(Reader* r) except? -0x7FFFFFFFFFFFFFFF:
    r_need(r, 8)
    r.pos += 8
    return get_i64(r.p + r.pos - 8)


cdef inline int64_t r_nonneg(Reader* r, str what) except -1:
    cdef int64_t v = r_i64(r)
    if v < 0:
        raise CodecError(f"{what} must be >= 0, got {v}")
    return v


cdef inline Py_ssize_t r_len(Reader* r) except -1:
    """A u32 length, checked against the bytes left."""
    cdef uint32_t n = r_u32(r)
    r_need(r, n)
    return n


cdef bytes r_bytes(Reader* r):
    cdef Py_ssize_t n = r_len(r)
    r.pos += n
    return PyBytes_FromStringAndSize(<const char*>r.p + r.pos - n, n)


cdef str r_str(Reader* r):
    cdef Py_ssize_t n = r_len(r)
    r.pos += n
    try:
        return PyUnicode_DecodeUTF8(<const char*>r.p + r.pos - n, n, NULL)
    except UnicodeDecodeError as e:
        raise CodecError(f"string is not valid UTF-8: {e}") from None


# The last leader ids and vote decoded. Consecutive messages from one leader carry the same
# ones and these values are immutable, so they are shared instead of allocated again (which
# also lets the engine's identity fast paths hit).
cdef LeaderId _last_vote_leader = None      # a vote's leader id
cdef LeaderId _last_log_leader = None       # a log id's (committed) leader id
cdef Vote _last_vote = None
cdef LogId _last_log_id = None              # a heartbeat's prev and commit are often one log id


cdef inline bint _same(LeaderId c, int64_t term, int64_t node, bint std) noexcept:
    return c is not None and c.term == term and c.node == node and c.std == std


cdef LeaderId _leader_id(uint8_t flags, int64_t term, int64_t node, bint committed_form):
    global _last_vote_leader, _last_log_leader
    cdef bint std = flags & F_STD
    if term < 0:
        raise CodecError(f"term must be >= 0, got {term}")
    if node < NO_NODE:
        raise CodecError(f"node id must be >= 0 or -1 (none), got {node}")
    if committed_form:
        if std and node != NO_NODE:
            raise CodecError("a std-mode log id carries only the term")
        if not _same(_last_log_leader, term, node, std):
            _last_log_leader = make_leader_id(term, node, std)
        return _last_log_leader
    if not _same(_last_vote_leader, term, node, std):
        _last_vote_leader = make_leader_id(term, node, std)
    return _last_vote_leader


cdef LeaderId r_leader_id(Reader* r, bint committed_form):
    r_need(r, 17)
    cdef uint8_t flags = r.p[r.pos]
    if flags & ~F_STD:
        raise CodecError(f"bad leader id flags {flags:#x}")
    r.pos += 17
    return _leader_id(flags, get_i64(r.p + r.pos - 16), get_i64(r.p + r.pos - 8), committed_form)


cdef Vote r_vote(Reader* r):
    global _last_vote
    r_need(r, 17)
    cdef uint8_t flags = r.p[r.pos]
    if flags & ~(F_STD | F_COMMITTED):
        raise CodecError(f"bad vote flags {flags:#x}")
    r.pos += 17
    cdef LeaderId lid = _leader_id(flags, get_i64(r.p + r.pos - 16), get_i64(r.p + r.pos - 8), False)
    cdef bint committed = (flags & F_COMMITTED) != 0
    if _last_vote is not None and _last_vote.leader_id is lid and _last_vote.committed == committed:
        return _last_vote
    cdef Vote v = Vote.__new__(Vote)
    v.leader_id = lid
    v.committed = committed
    _last_vote = v
    return v


cdef LogId r_opt_log_id(Reader* r):
    global _last_log_id
    cdef uint8_t flags = r_u8(r)
    if flags == 0:
        return None
    if flags & ~(F_STD | F_PRESENT) or not (flags & F_PRESENT):
        raise CodecError(f"bad log id flags {flags:#x}")
    r_need(r, 24)
    r.pos += 24
    cdef LeaderId lid = _leader_id(flags, get_i64(r.p + r.pos - 24), get_i64(r.p + r.pos - 16), True)
    cdef int64_t index = get_i64(r.p + r.pos - 8)
    if index < 0:
        raise CodecError(f"log index must be >= 0, got {index}")
    if _last_log_id is None or _last_log_id.leader_id is not lid or _last_log_id.index != index:
        _last_log_id = make_log_id(lid, index)
    return _last_log_id


cdef Membership r_membership(Reader* r):
    cdef Py_ssize_t nconfigs = r_u32(r), i, j, n
    if nconfigs * 4 > r.end - r.pos:
        raise CodecError(f"membership of {nconfigs} configs in {r.end - r.pos} bytes")
    configs = []
    for i in range(nconfigs):
        n = r_u32(r)
        if n * 8 > r.end - r.pos:
            raise CodecError(f"voter set of {n} ids in {r.end - r.pos} bytes")
        voters = set()
        for j in range(n):
            voters.add(r_nonneg(r, "voter id"))
        configs.append(voters)
    n = r_u32(r)
    if n * 16 > r.end - r.pos:
        raise CodecError(f"membership of {n} nodes in {r.end - r.pos} bytes")
    nodes = {}
    for i in range(n):
        node_id = r_nonneg(r, "node id")
        addr = r_str(r)
        raw = r_bytes(r)
        if raw:
            try:
                data = msgpack.unpackb(raw, raw=False, strict_map_key=False)
            except Exception as e:
                raise CodecError(f"node {node_id}: bad data: {e}") from None
            if type(data) is not dict:
                raise CodecError(f"node {node_id}: data is a {type(data).__name__}, not a dict")
        else:
            data = None
        if node_id in nodes:
            raise CodecError(f"node {node_id} listed twice")
        nodes[node_id] = Node(addr, data)
    try:
        return Membership(configs, nodes)
    except (ValueError, TypeError, KeyError) as e:
        raise CodecError(f"bad membership: {e}") from None


cdef LogSlice r_slice(Reader* r):
    """The columns w_slice wrote; counts are checked against the bytes left before allocating."""
    r_need(r, 16)
    cdef int64_t start = get_i64(r.p + r.pos)
    cdef Py_ssize_t n = get_u32(r.p + r.pos + 8)
    cdef Py_ssize_t nruns = get_u32(r.p + r.pos + 12)
    cdef Py_ssize_t i, j, plen
    cdef int64_t first, prev
    cdef uint64_t total = 0, nbytes = 0
    r.pos += 16
    if start < 1 or start > 0x7FFFFFFFFFFFFFFF - n:
        raise CodecError(f"bad batch start index {start}")
    if (n == 0) != (nruns == 0) or nruns > n:
        raise CodecError(f"{nruns} leader-id runs for {n} entries")
    if nruns * 25 + n * 5 > r.end - r.pos:
        raise CodecError(f"a batch of {n} entries and {nruns} runs in {r.end - r.pos} bytes")
    cdef list runs = [None] * nruns
    cdef LeaderId lid, last_lid = None
    prev = start - 1
    for j in range(nruns):
        first = get_i64(r.p + r.pos)
        r.pos += 8
        lid = r_leader_id(r, True)
        if first <= prev or first >= start + n or (j == 0 and first != start):
            raise CodecError(f"leader-id run at {first} out of order or outside [{start}, {start + n})")
        if last_lid is not None and last_lid.term == lid.term and last_lid.node == lid.node and last_lid.std == lid.std:
            raise CodecError(f"leader-id run at {first} repeats the previous leader")
        runs[j] = (first, lid)
        prev = first
        last_lid = lid
    cdef const unsigned char* kp = r.p + r.pos
    cdef const unsigned char* lens = kp + n
    r.pos += 5 * n
    for i in range(n):
        if kp[i] > ENTRY_MEMBERSHIP:
            raise CodecError(f"entry {start + i}: unknown kind {kp[i]}")
        plen = get_u32(lens + 4 * i)
        if kp[i] == ENTRY_BLANK and plen:
            raise CodecError(f"entry {start + i}: a blank entry with a {plen}-byte payload")
        total += plen
    if total > <uint64_t>(r.end - r.pos):
        raise CodecError(f"batch payloads of {total} bytes in {r.end - r.pos} bytes")
    # Filled in place (PyList_SET_ITEM steals a reference; a list frees NULL slots fine if a
    # membership payload fails half way).
    cdef list payloads = PyList_New(n)
    cdef object item
    cdef Reader sub
    for i in range(n):
        plen = get_u32(lens + 4 * i)
        if kp[i] == ENTRY_NORMAL:
            item = PyBytes_FromStringAndSize(<const char*>r.p + r.pos, plen)
            nbytes += plen
        elif kp[i] == ENTRY_MEMBERSHIP:
            sub.p = r.p
            sub.pos = r.pos
            sub.end = r.pos + plen
            item = r_membership(&sub)
            if sub.pos != sub.end:
                raise CodecError(f"entry {start + i}: {sub.end - sub.pos} bytes after its membership")
        else:
            item = None
        Py_INCREF(item)
        PyList_SET_ITEM(payloads, i, item)
        r.pos += plen
    cdef LogSlice s = LogSlice.__new__(LogSlice)
    s.start = start
    s.stop = start + n
    s.payloads = payloads
    s.kinds = PyBytes_FromStringAndSize(<const char*>kp, n)
    s.runs = tuple(runs)
    s.nbytes = nbytes
    return s


cdef SnapshotMeta r_meta(Reader* r):
    cdef SnapshotMeta meta = SnapshotMeta.__new__(SnapshotMeta)
    meta.last_log_id = r_opt_log_id(r)
    meta.membership_log_id = r_opt_log_id(r)
    meta.membership = r_membership(r) if r_bool(r) else None
    meta.snapshot_id = r_str(r)
    return meta


cdef inline int check_entries_start(AppendRequest m) except -1:
    """A batch starts right after prev_log_id (at 1 without one)."""
    if m.entries is not None and m.entries.start - 1 != (0 if m.prev_log_id is None else m.prev_log_id.index):
        # start >= 1: no overflow
        raise CodecError(f"entries start at {m.entries.start}, not right after prev {m.prev_log_id}")
    return 0


# ---- message bodies ------------------------------------------------------------------------------
# w_body (encode) and r_body (decode) of every message type, and the T_* type codes: generated
# from codec_schema.py by tools/gen_codec.py (setup.py runs it before cythonize).

include "codec_bodies.pxi"


# ---- the frame decoder ---------------------------------------------------------------------------

cdef class FrameDecoder:
    """Splits a byte stream into frames and decodes them (see codec.pyi)."""

    def __cinit__(self, *args, **kwargs):
        # Always a valid buffer, even if __init__ is skipped or raises.
        self._buf = bytearray(INITIAL_CAP)
        self._max_frame = DEFAULT_MAX_FRAME

    def __init__(self, Py_ssize_t max_frame=DEFAULT_MAX_FRAME):
        if max_frame < HEAD or max_frame > <Py_ssize_t>MAX_U32 + HEAD:
            raise ValueError(f"max_frame must be in [{HEAD}, {MAX_U32 + HEAD}], got {max_frame}")
        self._max_frame = max_frame
        self._start = 0
        self._end = 0
        self._need = 0
        self._dead = False

    @property
    def pending(self):
        """Bytes buffered of an incomplete frame."""
        return self._end - self._start

    @property
    def max_frame(self):
        return self._max_frame

    cdef int _reserve(self, Py_ssize_t want_free) except -1:
        """At least `want_free` bytes free after _end: compact, or move to a bigger buffer (a
        new one, so a memoryview still held on the old one stays valid)."""
        cdef Py_ssize_t cap = PyByteArray_GET_SIZE(self._buf), live = self._end - self._start
        cdef bytearray nb
        if cap - self._end >= want_free:
            return 0
        if cap - live >= want_free:
            if live:
                memmove(PyByteArray_AS_STRING(self._buf), PyByteArray_AS_STRING(self._buf) + self._start, live)
        else:
            cap = cap * 2 if cap * 2 > live + want_free else live + want_free
            if self._need >= live + want_free and cap > self._need:
                cap = self._need            # never more than the frame being received
            nb = bytearray(cap)
            if live:
                memcpy(PyByteArray_AS_STRING(nb), PyByteArray_AS_STRING(self._buf) + self._start, live)
            self._buf = nb
        self._start = 0
        self._end = live
        return 0

    cdef Py_ssize_t _want(self, Py_ssize_t sizehint):
        """Free space to offer a read. For a big frame, room for the rest of it, but at most as
        much again as already arrived: memory follows the bytes received, so a header that only
        announces a big frame costs nothing."""
        cdef Py_ssize_t want = MIN_READ, live = self._end - self._start, step
        if sizehint > want:
            want = sizehint if sizehint < MAX_READ else MAX_READ
        if self._need:
            step = live if live > MAX_READ else MAX_READ
            if self._need - live < step:
                step = self._need - live
            if step > want:
                want = step
        return want

    def get_buffer(self, Py_ssize_t sizehint=-1):
        """Free space to read into (asyncio.BufferedProtocol.get_buffer)."""
        if self._dead:
            raise CodecError("the decoder failed earlier: close the connection")
        self._reserve(self._want(sizehint))
        return memoryview(self._buf)[self._end:]

    def buffer_updated(self, Py_ssize_t nbytes):
        """`nbytes` were written into the last get_buffer(): returns [(corr_id, msg), ...] of
        every frame completed (asyncio.BufferedProtocol.buffer_updated)."""
        if self._dead:
            raise CodecError("the decoder failed earlier: close the connection")
        if nbytes < 0 or nbytes > PyByteArray_GET_SIZE(self._buf) - self._end:
            self._dead = True
            raise CodecError(f"buffer_updated({nbytes}) is more than get_buffer() gave")
        self._end += nbytes
        return self._parse()

    def feed(self, data):
        """Same as buffer_updated, for bytes received another way (Protocol.data_received)."""
        cdef Py_buffer view
        cdef Py_ssize_t done = 0, k, free
        cdef list out = []
        if self._dead:
            raise CodecError("the decoder failed earlier: close the connection")
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            while done < view.len:
                self._reserve(self._want(view.len - done))
                free = PyByteArray_GET_SIZE(self._buf) - self._end
                k = view.len - done if view.len - done < free else free
                memcpy(PyByteArray_AS_STRING(self._buf) + self._end, <const char*>view.buf + done, k)
                self._end += k
                done += k
                out.extend(self._parse())
        finally:
            PyBuffer_Release(&view)
        return out

    cdef list _parse(self):
        cdef list out = []
        try:
            self._parse_into(out)
        except CodecError:
            self._dead = True
            raise
        except Exception as e:
            self._dead = True
            raise CodecError(f"malformed frame: {type(e).__name__}: {e}") from e
        return out

    cdef int _parse_into(self, list out) except -1:
        cdef const unsigned char* b = <const unsigned char*>PyByteArray_AS_STRING(self._buf)
        cdef const unsigned char* h
        cdef Py_ssize_t avail
        cdef uint32_t blen
        cdef uint64_t corr_id
        while True:
            avail = self._end - self._start
            h = b + self._start
            if avail < HEAD:
                # Refuse a foreign protocol at its first bytes, not after a whole header.
                if (avail >= 1 and h[0] != MAGIC0) or (avail >= 2 and h[1] != MAGIC1):
                    raise CodecError(f"bad magic {bytes(h[:2 if avail >= 2 else 1])!r}: not an openraft_fast peer")
                break
            if h[0] != MAGIC0 or h[1] != MAGIC1:
                raise CodecError(f"bad magic {bytes(h[:2])!r}: not an openraft_fast peer")
            if h[2] != VERSION:
                raise CodecError(f"protocol version {h[2]} not supported (this node speaks {VERSION})")
            if get_u32(h + 20) != crc32c_extend(0, h, 20):
                raise CodecError("frame header checksum mismatch")
            blen = get_u32(h + 4)
            if <uint64_t>blen + HEAD > <uint64_t>self._max_frame:
                raise CodecError(f"frame of {blen + HEAD} bytes is over the {self._max_frame}-byte limit")
            if h[3] < 1 or h[3] > T_LAST:
                raise CodecError(f"unknown message type {h[3]}")
            if avail < HEAD + <Py_ssize_t>blen:
                self._need = HEAD + blen
                break
            if get_u32(h + 16) != crc32c_extend(0, h + HEAD, blen):
                raise CodecError(f"frame body checksum mismatch (type {h[3]}, {blen} bytes)")
            memcpy(&corr_id, h + 8, 8)
            out.append((corr_id, r_body(h[3], h + HEAD, blen)))
            self._start += HEAD + blen
            self._need = 0
        cdef Py_ssize_t live = self._end - self._start
        cdef bytearray nb
        if live == 0:
            self._start = self._end = 0
        if (PyByteArray_GET_SIZE(self._buf) > SHRINK_CAP and live <= INITIAL_CAP // 2
                and self._need <= INITIAL_CAP // 2):
            # A big frame is done: give the memory back, keeping a small partial frame.
            nb = bytearray(INITIAL_CAP)
            if live:
                memcpy(PyByteArray_AS_STRING(nb), PyByteArray_AS_STRING(self._buf) + self._start, live)
            self._buf = nb
            self._start = 0
            self._end = live
        return 0
