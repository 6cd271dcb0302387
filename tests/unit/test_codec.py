"""The wire codec (openraft_fast._core.codec): round trips of every message, frames split and
coalesced, and malformed input (random bytes, truncations, bit flips, absurd sizes) -> CodecError."""
import asyncio
import socket
import struct
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openraft_fast import errors
from openraft_fast._core import codec
from openraft_fast._core.log import LogSlice
from openraft_fast._core.messages import (AppendRequest, AppendResponse, InstallSnapshotRequest, ReadIndexRequest,
                                          ReadIndexResponse, SnapshotMeta, SnapshotResponse, TimeoutNow,
                                          VoteRequest, VoteResponse)
from openraft_fast._core.types import BLANK, MEMBERSHIP, NORMAL, LeaderId, LogId, Membership, Node, Vote
from openraft_fast._core.walrec import crc32c

HEAD = codec.HEADER_SIZE
I64 = st.integers(-(2 ** 63), 2 ** 63 - 1)
NONNEG = st.integers(0, 2 ** 63 - 1)
NODE_ID = st.integers(0, 2 ** 63 - 1) | st.integers(0, 9)
CORR = st.integers(0, 2 ** 64 - 1)


# ---- strategies --------------------------------------------------------------------------------

def leader_ids(std):
    return st.builds(lambda t, n: LeaderId(t, n, std=std), NONNEG, st.none() | NODE_ID)


def votes(std):
    return st.builds(Vote, leader_ids(std), st.booleans())


def log_ids(std):
    return st.builds(LogId, leader_ids(std), NONNEG)


node_data = st.dictionaries(st.text(max_size=5), st.integers(-5, 5) | st.text(max_size=5) | st.binary(max_size=5),
                            max_size=3)


@st.composite
def memberships(draw):
    ids = st.integers(0, 12)
    configs = draw(st.lists(st.frozensets(ids, min_size=1, max_size=5), min_size=1, max_size=3))
    voters = frozenset().union(*configs)
    learners = draw(st.frozensets(st.integers(13, 20), max_size=3))
    nodes = {i: Node(draw(st.text(max_size=12)), draw(node_data)) for i in sorted(voters | learners)}
    return Membership(configs, nodes)


@st.composite
def log_slices(draw, std, start, max_entries=40, max_payload=64):
    n = draw(st.integers(1, max_entries))
    kinds = draw(st.lists(st.sampled_from([NORMAL, NORMAL, NORMAL, BLANK, MEMBERSHIP]), min_size=n, max_size=n))
    payloads = []
    for k in kinds:
        if k == NORMAL:
            payloads.append(draw(st.binary(max_size=max_payload)))
        elif k == BLANK:
            payloads.append(None)
        else:
            payloads.append(draw(memberships()))
    cuts = sorted(draw(st.sets(st.integers(start + 1, start + n - 1), max_size=4)) if n > 1 else [])
    term = draw(st.integers(0, 1000))
    runs = []
    for j, first in enumerate([start] + cuts):
        term += 1       # every run a new leader, so runs never merge
        runs.append((first, LeaderId(term, draw(st.none() | NODE_ID), std=std)))
    return LogSlice(start, payloads, bytes(kinds), runs)


@st.composite
def append_requests(draw, std):
    prev = draw(st.none() | log_ids(std))
    start = 1 if prev is None else prev.index + 1
    entries = None
    if start < 2 ** 62 and draw(st.booleans()):
        entries = draw(log_slices(std, start))
    return AppendRequest(draw(votes(std)), prev, entries, draw(st.none() | log_ids(std)), draw(I64), draw(I64),
                         draw(I64))


def snapshot_metas(std):
    return st.builds(SnapshotMeta, st.none() | log_ids(std), st.none() | log_ids(std), st.none() | memberships(),
                     st.text(max_size=20))


def messages(std):
    return st.one_of(
        append_requests(std),
        st.builds(AppendResponse, votes(std), st.integers(0, 2), st.none() | log_ids(std), I64, I64, I64, I64, I64),
        st.builds(VoteRequest, votes(std), st.none() | log_ids(std), st.booleans(), st.booleans()),
        st.builds(VoteResponse, votes(std), st.booleans(), st.none() | log_ids(std), st.booleans()),
        st.builds(TimeoutNow, votes(std), st.none() | log_ids(std)),
        st.builds(ReadIndexRequest, st.integers(1, 3)),
        st.builds(ReadIndexResponse, st.integers(0, 2), st.none() | log_ids(std), I64),
        st.builds(SnapshotResponse, votes(std), st.booleans(), I64, I64, I64),
        st.builds(codec.SnapshotChunk, votes(std), snapshot_metas(std), NONNEG, st.binary(max_size=300),
                  st.booleans(), I64, I64, I64),
        st.builds(codec.Handshake, st.integers(0, 2 ** 32 - 1), st.text(max_size=30), NONNEG, NONNEG,
                  st.integers(0, 2)),
        st.builds(codec.HandshakeReply, st.booleans(), st.text(max_size=30)),
        st.builds(codec.ErrorReply, I64, st.text(max_size=30)),
    )


any_message = st.booleans().flatmap(messages)


def sample_messages():
    """One of each kind, fixed, for the exhaustive (every offset, every bit) tests."""
    v = Vote.new(3, 1, committed=True)
    m = Membership([{1, 2, 3}, {3, 4}], {1: Node("a:1", {"zone": "x"}), 2: Node("b:2"), 3: Node("c:3"),
                                          4: Node("d:4"), 5: Node("e:5")})
    s = LogSlice(5, [b"abc", None, m, b""], bytes([NORMAL, BLANK, MEMBERSHIP, NORMAL]),
                 [(5, LeaderId(2, 1)), (7, LeaderId(3, 1))])
    std_vote = Vote.new(4, 2, std=True)
    return [
        AppendRequest(v, LogId(LeaderId(2, 1), 4), s, LogId(LeaderId(2, 1), 3), 7, 8, 9),
        AppendRequest(std_vote, LogId(LeaderId(3, std=True), 9), None, None, 0, 1, 2),
        AppendResponse(v, 1, None, 5, 6, 7, 8, 9),
        VoteRequest(std_vote, LogId(LeaderId(1, 2, std=True), 3), True, True),
        VoteResponse(v, True, None, False),
        TimeoutNow(v, LogId(LeaderId(3, 1), 10)),
        ReadIndexRequest(3),
        ReadIndexResponse(0, LogId(LeaderId(3, 1), 10), -1),
        SnapshotResponse(v, True, 1, 2, 3),
        codec.SnapshotChunk(v, SnapshotMeta(LogId(LeaderId(3, 1), 10), LogId(LeaderId(2, 1), 6), m, "snap-1"),
                            4096, b"\x00\x01data", False, 11, 12, 13),
        codec.Handshake(codec.PROTOCOL_VERSION, "cluster-a", 1, 2, codec.LANE_CONTROL),
        codec.HandshakeReply(False, "cluster name mismatch"),
        codec.ErrorReply(3, "node stopped"),
    ]


def frame(mtype, body, corr_id=0, version=None, magic=None):
    """A frame with a correct header (checksums included) around an arbitrary body."""
    h = (magic or codec.MAGIC) + struct.pack("<BBIQI", codec.PROTOCOL_VERSION if version is None else version,
                                             mtype, len(body), corr_id, crc32c(body))
    return h + struct.pack("<I", crc32c(h)) + body


def body_of(f):
    return f[3], f[HEAD:]


def decode_all(data, **kw):
    return codec.FrameDecoder(**kw).feed(data)


# ---- round trips -------------------------------------------------------------------------------

@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_message, CORR)
def test_round_trip_every_message(msg, corr_id):
    f = codec.encode(msg, corr_id)
    assert f[:2] == codec.MAGIC and len(f) >= HEAD
    out = decode_all(f)
    assert out == [(corr_id, msg)]
    assert type(out[0][1]) is type(msg)
    buf = bytearray(b"x")
    codec.encode_into(buf, msg, corr_id)
    assert bytes(buf) == b"x" + f


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(any_message, CORR), min_size=1, max_size=8), st.data())
def test_many_frames_in_one_buffer_and_split_anywhere(items, data):
    buf = bytearray()
    for msg, c in items:
        codec.encode_into(buf, msg, c)
    expected = [(c, msg) for msg, c in items]
    assert decode_all(bytes(buf)) == expected
    # the same stream cut into random pieces
    cuts = sorted(data.draw(st.sets(st.integers(1, len(buf) - 1), max_size=10)))
    d = codec.FrameDecoder()
    out = []
    prev = 0
    for c in cuts + [len(buf)]:
        out += d.feed(bytes(buf[prev:c]))
        prev = c
    assert out == expected
    assert d.pending == 0


def test_frames_split_at_every_offset_decode_the_same():
    for msg in sample_messages():
        f = codec.encode(msg, 77)
        for cut in range(len(f) + 1):
            d = codec.FrameDecoder()
            first = d.feed(f[:cut])
            assert d.pending == (cut if cut < len(f) else 0)
            second = d.feed(f[cut:])
            assert first + second == [(77, msg)], (msg, cut)


def test_byte_at_a_time_through_get_buffer():
    msgs = sample_messages()
    stream = b"".join(codec.encode(m, i) for i, m in enumerate(msgs))
    d = codec.FrameDecoder()
    out = []
    for b in stream:
        view = d.get_buffer(1)
        assert len(view) >= 1
        view[0] = b
        del view
        out += d.buffer_updated(1)
    assert out == list(enumerate(msgs))


def test_leader_id_modes_round_trip_and_compare_equal():
    for std in (False, True):
        v = Vote.new(5, 3, committed=True, std=std)
        lid = LogId(LeaderId(5, 3, std=std), 100)
        req = VoteRequest(v, lid, False, False)
        got = decode_all(codec.encode(req, 1))[0][1]
        assert got == req
        assert got.vote.leader_id.std is std and got.last_log_id.leader_id.std is std
        assert got.vote >= v and got.last_log_id == lid
        s = LogSlice(101, [b"a", b"b"], None, [(101, LeaderId(5, 3, std=std))])
        app = AppendRequest(v, lid, s, lid, 1, 2, 3)
        got = decode_all(codec.encode(app, 2))[0][1]
        assert got == app and got.entries.last_log_id == LogId(LeaderId(5, 3, std=std), 102)
        assert got.entries.nbytes == 2


def test_empty_and_none_fields():
    v = Vote(LeaderId(0), False)
    for msg in [AppendRequest(v), VoteRequest(v), VoteResponse(v, False), TimeoutNow(v),
                AppendResponse(v, 0), ReadIndexResponse(2), codec.HandshakeReply(True),
                codec.ErrorReply(0), codec.Handshake(0, "", 0, 0, 0),
                codec.SnapshotChunk(v, SnapshotMeta(None, None, None), 0, b"", True)]:
        assert decode_all(codec.encode(msg, 0)) == [(0, msg)]


def test_large_batch_and_large_payloads():
    n = 20_000
    payloads = [bytes([i % 251]) * (i % 40) for i in range(n)]
    kinds = bytearray(n)
    for i in range(0, n, 997):
        kinds[i] = BLANK
        payloads[i] = None
    runs = [(1 + i, LeaderId(1 + i // 5000, 1)) for i in range(0, n, 5000)]
    s = LogSlice(1, payloads, bytes(kinds), runs)
    req = AppendRequest(Vote.new(4, 1, committed=True), None, s, None, 1, 1, 1)
    assert decode_all(codec.encode(req, 3)) == [(3, req)]
    big = [b"\xab" * (1 << 20), b"", b"\x01" * 65536]
    s = LogSlice(1, big, None, [(1, LeaderId(1, 1))])
    req = AppendRequest(Vote.new(1, 1), None, s)
    f = codec.encode(req, 4)
    got = decode_all(f)
    assert got == [(4, req)] and got[0][1].entries.nbytes == (1 << 20) + 65536
    # a 1 MiB frame fed in small reads
    d = codec.FrameDecoder()
    out = []
    for i in range(0, len(f), 4000):
        out += d.feed(f[i:i + 4000])
    assert out == [(4, req)]


def test_bytearray_and_memoryview_payloads_encode_as_bytes():
    s = LogSlice(1, [bytearray(b"ab"), memoryview(b"cd"), b"ef"], None, [(1, LeaderId(1, 1))])
    got = decode_all(codec.encode(AppendRequest(Vote.new(1, 1), None, s), 0))[0][1]
    assert got.entries.payloads == [b"ab", b"cd", b"ef"]
    assert all(type(p) is bytes for p in got.entries.payloads)
    chunk = codec.SnapshotChunk(Vote.new(1, 1), SnapshotMeta(None, None, None), 0, memoryview(b"xyz"), True)
    assert decode_all(codec.encode(chunk, 0))[0][1].data == b"xyz"


def test_codec_error_is_a_typed_raft_error():
    assert codec.CodecError is errors.CodecError
    assert issubclass(codec.CodecError, errors.RaftError) and issubclass(codec.CodecError, ValueError)


# ---- encode refuses what it cannot encode --------------------------------------------------------

def test_encode_refuses_bad_arguments():
    v = Vote.new(1, 1)
    ok = VoteResponse(v, True)
    for corr in (-1, 2 ** 64, 1.5, "1", None):
        with pytest.raises(codec.CodecError):
            codec.encode(ok, corr)
        with pytest.raises(codec.CodecError):
            codec.encode_into(bytearray(), ok, corr)
    for bad in (None, b"bytes", object(), InstallSnapshotRequest(v, SnapshotMeta(None, None, None), b"d")):
        with pytest.raises(codec.CodecError):
            codec.encode(bad, 0)
    s = LogSlice(1, ["not bytes"], None, [(1, LeaderId(1, 1))])
    with pytest.raises(codec.CodecError):
        codec.encode(AppendRequest(v, None, s), 0)
    out = bytearray(b"keep")
    with pytest.raises(codec.CodecError):
        codec.encode_into(out, AppendRequest(v, None, s), 0)
    assert out == b"keep"
    with pytest.raises(codec.CodecError):
        codec.encode(codec.HandshakeReply(False, "\ud800"), 0)
    m = Membership({1}, {1: Node("a", {"f": object()})})
    with pytest.raises(codec.CodecError):
        codec.encode(codec.SnapshotChunk(v, SnapshotMeta(None, None, m), 0, b"", True), 0)


def test_wire_only_messages_validate_their_fields():
    with pytest.raises(ValueError):
        codec.Handshake(1, "c", 1, 2, 3)
    with pytest.raises(ValueError):
        codec.Handshake(1, "c", -1, 2, 0)
    with pytest.raises(ValueError):
        codec.Handshake(2 ** 32, "c", 1, 2, 0)
    with pytest.raises(ValueError):
        codec.SnapshotChunk(Vote.new(1, 1), SnapshotMeta(None, None, None), -1, b"", True)
    with pytest.raises(TypeError):
        codec.SnapshotChunk(Vote.new(1, 1), SnapshotMeta(None, None, None), 0, "text", True)


# ---- malformed input: only CodecError ------------------------------------------------------------

def expect_codec_error(data, **kw):
    d = codec.FrameDecoder(**kw)
    with pytest.raises(codec.CodecError):
        d.feed(data)
    # dead from now on
    with pytest.raises(codec.CodecError):
        d.feed(codec.encode(ReadIndexRequest(1), 0))
    with pytest.raises(codec.CodecError):
        d.get_buffer(100)
    with pytest.raises(codec.CodecError):
        d.buffer_updated(0)


def test_every_single_bit_flip_is_a_codec_error():
    for msg in sample_messages():
        f = bytearray(codec.encode(msg, 5))
        for bit in range(len(f) * 8):
            f[bit // 8] ^= 1 << (bit % 8)
            expect_codec_error(bytes(f))
            f[bit // 8] ^= 1 << (bit % 8)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=400))
def test_random_bytes_raise_only_codec_error(data):
    d = codec.FrameDecoder()
    try:
        out = d.feed(data)
    except codec.CodecError:
        return
    # only a prefix of a plausible frame can be accepted, and it yields nothing yet
    assert out == [] and d.pending == len(data)
    assert data[:2] == codec.MAGIC[:len(data[:2])]


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 12), st.binary(max_size=300))
def test_random_bodies_in_valid_frames_raise_only_codec_error(mtype, body):
    try:
        out = decode_all(frame(mtype, body))
    except codec.CodecError:
        return
    # the random body happened to parse: it must re-encode to a valid frame of the same type
    assert len(out) == 1
    again = codec.encode(out[0][1], 0)
    assert again[3] == mtype and codec.encode(decode_all(again)[0][1], 0) == again


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_message, st.data())
def test_truncated_or_padded_bodies_are_codec_errors(msg, data):
    mtype, body = body_of(codec.encode(msg, 0))
    cut = data.draw(st.integers(0, len(body) - 1)) if body else None
    if cut is not None:
        expect_codec_error(frame(mtype, body[:cut]))
    expect_codec_error(frame(mtype, body + data.draw(st.binary(min_size=1, max_size=8))))


def test_every_truncation_of_every_sample_body_is_a_codec_error():
    for msg in sample_messages():
        mtype, body = body_of(codec.encode(msg, 0))
        for cut in range(len(body)):
            expect_codec_error(frame(mtype, body[:cut]))


def test_bad_type_version_and_magic():
    mtype, body = body_of(codec.encode(ReadIndexRequest(1), 0))
    for t in (0, 13, 255):
        expect_codec_error(frame(t, body))
    expect_codec_error(frame(mtype, body, version=codec.PROTOCOL_VERSION + 1))
    expect_codec_error(frame(mtype, body, magic=b"OR"))


def test_foreign_protocol_is_refused_at_the_first_byte():
    for foreign in (b"G", b"\x16", b"\x00", b"{"):
        expect_codec_error(foreign)
    expect_codec_error(codec.MAGIC[:1] + b"X")


def test_oversized_header_is_refused_before_allocating():
    h = codec.MAGIC + struct.pack("<BBIQI", codec.PROTOCOL_VERSION, 1, 0xFFFFFFFF, 0, 0)
    h += struct.pack("<I", crc32c(h))
    d = codec.FrameDecoder()
    tracemalloc.start()
    try:
        with pytest.raises(codec.CodecError):
            d.feed(h)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    # the limit counts header + body, and is the decoder's own
    f = codec.encode(codec.ErrorReply(1, "x" * 100), 0)
    assert decode_all(f, max_frame=len(f)) == [(0, codec.ErrorReply(1, "x" * 100))]
    expect_codec_error(f, max_frame=len(f) - 1)
    expect_codec_error(f[:HEAD], max_frame=len(f) - 1)
    with pytest.raises(ValueError):
        codec.FrameDecoder(max_frame=HEAD - 1)


def append_body_with_counts(n, nruns, tail=b""):
    """An AppendRequest body whose entry batch claims `n` entries and `nruns` runs."""
    mtype, body = body_of(codec.encode(AppendRequest(Vote.new(1, 1)), 0))
    assert body[-1] == 0       # entries=None
    return mtype, body[:-1] + b"\x01" + struct.pack("<qII", 1, n, nruns) + tail


def test_absurd_entry_counts_are_refused_before_allocating():
    run = struct.pack("<qBqq", 1, 0, 1, 1)
    for n, nruns in ((0xFFFFFFFF, 1), (1 << 28, 1), (0xFFFFFFFF, 0xFFFFFFFF), (2, 0), (0, 1), (1, 2)):
        mtype, body = append_body_with_counts(n, nruns, run + b"\x00" * 64)
        tracemalloc.start()
        try:
            expect_codec_error(frame(mtype, body))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 1 << 20, (n, nruns, peak)


def test_batch_lengths_that_do_not_add_up():
    run = struct.pack("<qBqq", 1, 0, 1, 1)
    # 2 entries, lengths 3 + 3, but only 5 payload bytes; then 7 (trailing garbage)
    for payload in (b"abcde", b"abcdefg"):
        mtype, body = append_body_with_counts(2, 1, run + b"\x00\x00" + struct.pack("<II", 3, 3) + payload)
        expect_codec_error(frame(mtype, body))
    mtype, body = append_body_with_counts(2, 1, run + b"\x00\x00" + struct.pack("<II", 3, 3) + b"abcdef")
    got = decode_all(frame(mtype, body))[0][1]
    assert got.entries.payloads == [b"abc", b"def"]
    # blank with a payload; unknown kind; std log id leader with a node; negative term
    for tail in (run + b"\x01\x00" + struct.pack("<II", 1, 0) + b"x",
                 run + b"\x03\x00" + struct.pack("<II", 0, 0),
                 struct.pack("<qBqq", 1, 1, 1, 1) + b"\x00\x00" + struct.pack("<II", 0, 0),
                 struct.pack("<qBqq", 1, 0, -1, 1) + b"\x00\x00" + struct.pack("<II", 0, 0),
                 struct.pack("<qBqq", 2, 0, 1, 1) + b"\x00\x00" + struct.pack("<II", 0, 0)):
        mtype, body = append_body_with_counts(2, 1, tail)
        expect_codec_error(frame(mtype, body))


def test_buffer_updated_beyond_the_buffer_is_a_codec_error():
    d = codec.FrameDecoder()
    n = len(d.get_buffer(10))
    with pytest.raises(codec.CodecError):
        d.buffer_updated(n + 1)
    with pytest.raises(codec.CodecError):
        codec.FrameDecoder().buffer_updated(-1)


# ---- the receive buffer stays bounded ------------------------------------------------------------

def test_receive_buffer_is_reused_and_shrinks_after_a_big_frame():
    d = codec.FrameDecoder()
    small = codec.encode(AppendRequest(Vote.new(1, 1)), 9)
    stream = small * 5000
    total = 0
    for i in range(0, len(stream), 1000):     # reads that end mid-frame
        view = d.get_buffer(1000)
        assert len(view) <= 1 << 20
        k = min(1000, len(stream) - i)
        view[:k] = stream[i:i + k]
        del view
        total += len(d.buffer_updated(k))
    assert total == 5000 and d.pending == 0
    big = codec.encode(codec.ErrorReply(1, "y" * (4 << 20)), 1)
    assert d.feed(big)[0][0] == 1
    assert len(d.get_buffer(-1)) <= 1 << 20     # given back once idle


def test_a_held_view_stays_valid_when_the_buffer_moves():
    d = codec.FrameDecoder()
    old = d.get_buffer(10)
    f = codec.encode(codec.ErrorReply(2, "z" * 200_000), 3)
    assert d.feed(f) == [(3, codec.ErrorReply(2, "z" * 200_000))]
    old[:4] = b"abcd"        # writing into a stale view must not corrupt anything
    assert d.feed(codec.encode(ReadIndexRequest(2), 4)) == [(4, ReadIndexRequest(2))]


# ---- through a real socket and asyncio.BufferedProtocol ------------------------------------------

class _Receiver(asyncio.BufferedProtocol):
    def __init__(self, want, done):
        self.decoder = codec.FrameDecoder()
        self.got = []
        self.want = want
        self.done = done

    def get_buffer(self, sizehint):
        return self.decoder.get_buffer(sizehint)

    def buffer_updated(self, nbytes):
        self.got += self.decoder.buffer_updated(nbytes)
        if len(self.got) >= self.want and not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(None)


def test_frames_over_a_loopback_socket_with_buffered_protocol():
    msgs = sample_messages() * 50
    out = bytearray()
    for i, m in enumerate(msgs):
        codec.encode_into(out, m, i)

    async def main():
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        try:
            done = loop.create_future()
            transport, proto = await loop.connect_accepted_socket(lambda: _Receiver(len(msgs), done), b)
            try:
                await loop.sock_sendall(a, bytes(out))
                await asyncio.wait_for(done, 10)
            finally:
                transport.close()
            return proto.got
        finally:
            a.close()

    got = asyncio.run(asyncio.wait_for(main(), 30))
    assert got == list(enumerate(msgs))


def test_empty_batch_and_non_contiguous_chunk_data():
    v = Vote.new(2, 1)
    empty = AppendRequest(v, LogId(LeaderId(2, 1), 7), LogSlice(8, []))
    got = decode_all(codec.encode(empty, 1))[0][1]
    assert got == empty and len(got.entries) == 0 and got.entries.start == 8
    strided = memoryview(b"abcdef")[::2]
    chunk = codec.SnapshotChunk(v, SnapshotMeta(None, None, None), 0, strided, True)
    assert decode_all(codec.encode(chunk, 0))[0][1].data == b"ace"


def test_buffer_shrinks_after_a_big_frame_even_with_a_partial_frame_behind_it():
    d = codec.FrameDecoder()
    big = codec.encode(codec.ErrorReply(1, "q" * (3 << 20)), 1)
    small = codec.encode(ReadIndexRequest(1), 2)
    assert d.feed(big + small[:5]) == [(1, codec.ErrorReply(1, "q" * (3 << 20)))]
    assert d.pending == 5
    assert len(d.get_buffer(-1)) <= 1 << 20
    assert d.feed(small[5:]) == [(2, ReadIndexRequest(1))]


def test_an_uninitialised_decoder_is_safe():
    d = codec.FrameDecoder.__new__(codec.FrameDecoder)
    assert d.pending == 0
    assert d.feed(codec.encode(ReadIndexRequest(2), 1)) == [(1, ReadIndexRequest(2))]


def test_shared_leader_ids_never_mix_modes_or_values():
    """Decoded leader ids and votes are reused across messages; a reuse must match exactly."""
    msgs = [VoteRequest(Vote.new(3, 1, std=std, committed=c), LogId(LeaderId(3, 1, std=std), i), False, False)
            for i, (std, c) in enumerate([(True, False), (False, False), (False, True), (True, True),
                                          (True, True), (False, False)])]
    d = codec.FrameDecoder()
    got = [m for _, m in d.feed(b"".join(codec.encode(m, 0) for m in msgs))]
    assert got == msgs
    for g, m in zip(got, msgs):
        assert g.vote.leader_id.std == m.vote.leader_id.std and g.vote.committed == m.vote.committed
        assert g.last_log_id.leader_id.std == m.last_log_id.leader_id.std
    assert got[3].vote is got[4].vote       # the same vote twice in a row: one object


@settings(max_examples=600, deadline=None)
@given(st.integers(0, len(sample_messages()) - 1),
       st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 255), st.sampled_from(["set", "insert", "delete"])),
                min_size=1, max_size=4))
def test_mutated_bodies_behind_valid_checksums_raise_only_codec_error(which, edits):
    """Structure-aware fuzz: real bodies with a few bytes changed, inserted or deleted, then
    framed with correct checksums, so the parser itself (not the CRC) must catch the damage."""
    mtype, body = body_of(codec.encode(sample_messages()[which], 0))
    body = bytearray(body)
    for pos, byte, op in edits:
        pos %= len(body) + 1
        if op == "insert" or not body:
            body.insert(pos, byte)
        elif op == "delete":
            del body[min(pos, len(body) - 1)]
        else:
            body[min(pos, len(body) - 1)] = byte
    try:
        out = decode_all(frame(mtype, bytes(body)))
    except codec.CodecError:
        return
    # it parsed: then it is a well-formed message that survives another round trip
    (_, msg), = out
    again = codec.encode(msg, 0)
    assert codec.encode(decode_all(again)[0][1], 0) == again     # bytes: NaN-proof
