"""Inputs and drivers shared by test_micro.py and report.py, so both measure the same thing.

Every case has three implementations measured side by side:
  cy_py  the compiled primitive called from Python (its `def` wrapper);
  cy_c   the same primitive's C-level API called from a C loop (openraft_fast._core.microbench),
         timed with CLOCK_MONOTONIC in C;
  plain  the plain-Python reference (benches/pyref.py).
"""
import random

from openraft_fast._core import microbench as mb
from openraft_fast._core.log import LogBuffer
from openraft_fast._core.quorum import Majority
from openraft_fast._core.tracker import ProgressTracker
from openraft_fast._core.types import LeaderId

from benches import pyref

# ---- committed index -------------------------------------------------------------------------
QUORUM_SIZES = (3, 5, 7)
N_VARIED = 64                       # distinct inputs for the "varied input" variant


def voter_ids(n):
    return list(range(1, n + 1))


def matched_vector(n, seed=0):
    """Matched indexes in slot order, in no particular order, around 10**6 (so results are
    not cached small ints)."""
    rng = random.Random(seed * 1000 + n)
    return [1_000_000 + rng.randrange(64) for _ in range(n)]


def matched_vectors(n, count=N_VARIED):
    return [matched_vector(n, seed) for seed in range(1, count + 1)]


def majority(impl, n):
    return pyref.PyMajority(voter_ids(n)) if impl == "plain" else Majority(voter_ids(n))


def committed_many(q, vectors):
    """q.committed_index over every vector; returns the sum (the C loop's checksum)."""
    acc = 0
    for v in vectors:
        acc += q.committed_index(v)
    return acc


# ---- progress update: the leader handles one follower ack -------------------------------------
PROGRESS_VOTERS = 5
WINDOW = 64                         # messages in flight per follower (the default max_inflight)
ENTRIES_PER_MSG = 16
LEADER_LAST = 1 << 40               # the leader's last log index: never reached


def make_tracker(impl, n_voters=PROGRESS_VOTERS):
    """Leader 1 of voters 1..n, all followers streaming (REPLICATE) from index 1, the leader's
    own matched index far ahead. Acks then come round-robin, so half of them move a voter
    across the accepted index and recompute it (the steady state of in-order acks)."""
    ids = voter_ids(n_voters)
    if impl == "plain":
        t = pyref.PyTracker(pyref.PyMajority(ids), ids[0], ids, 0, max_inflight=WINDOW)
    else:
        t = ProgressTracker(Majority(ids), ids[0], ids, 0, max_inflight=WINDOW)
    t.update(ids[0], LEADER_LAST)
    return t, ids[1:]


def fill_window(t, followers, window=WINDOW, per_msg=ENTRIES_PER_MSG):
    """Put `window` messages in flight to every follower; returns the acks to handle, in the
    order they arrive: [(progress, node_id, msg_id, matched)], round-robin over followers."""
    plan = []
    progress = t.progress
    for _ in range(window):
        for node_id in followers:
            p = progress[node_id]
            r = p.next_send(1, LEADER_LAST, per_msg)
            assert r is not None and r[0] == "logs", r
            plan.append((p, node_id, p.sent(0), r[2] - 1))
    return plan


def handle_acks(t, plan):
    """The timed part: each ack is Progress.on_ack + ProgressTracker.update. Returns the sum
    of the accepted indexes (the C loop's checksum)."""
    acc = 0
    for p, node_id, msg_id, matched in plan:
        if p.on_ack(msg_id, matched):
            acc += t.update(node_id, matched)
    return acc


def loop_floor(plan):
    """The same Python loop with nothing in its body: what handle_acks costs without the calls."""
    acc = 0
    for p, node_id, msg_id, matched in plan:
        if p:
            acc += matched
    return acc


def c_progress_acks(t, followers, rounds):
    return mb.loop_progress_acks(t, followers, LEADER_LAST, WINDOW, ENTRIES_PER_MSG, rounds)


# ---- log append / slice -----------------------------------------------------------------------
LOG_BATCHES = (64, 1024)
# Each timed round appends this many entries to a fresh log. Kept small enough that the
# buffers stay below glibc's mmap threshold: bigger logs are dominated by first-touch page
# faults (report.py shows one such row), not by the append itself.
APPEND_ENTRIES_PER_ROUND = 1 << 12
PAYLOAD_SIZE = 32
SLICE_LOG_LEN = 1 << 16
SLICE_START = SLICE_LOG_LEN - 2047    # in the last leader run, near the tail, like a leader's sends
LEADER = LeaderId(3, 1)


def payloads(n):
    return [(b"%08d" % i) * (PAYLOAD_SIZE // 8) for i in range(n)]


def make_log(impl):
    if impl == "plain":
        return pyref.PyLog()
    if impl == "plain_columnar":
        return pyref.PyColumnarLog()
    return LogBuffer()


def append_batches(log, leader, batch, batches):
    """The timed part of an append round: returns the sum of the returned last indexes."""
    acc = 0
    for _ in range(batches):
        acc += log.append(leader, batch)
    return acc


def filled_log(impl):
    log = make_log(impl)
    batch = payloads(1024)
    for i in range(SLICE_LOG_LEN // 1024):
        # a few leader changes, so slices carry leader-id runs
        log.append(LEADER if i < 8 else LeaderId(4 + i // 16, 2), batch)
    return log


def slice_payloads_and_leaders(impl, s):
    """What an append-entries message carries, normalised across implementations:
    (payloads, [leader id of each entry])."""
    if impl == "plain":
        return [e[3] for e in s], [e[1] for e in s]
    leaders = []
    runs = list(s.runs) + [(s.stop, None)]
    for (first, lid), (nxt, _) in zip(runs, runs[1:]):
        leaders.extend([lid] * (nxt - first))
    return list(s.payloads), leaders


# ---- wire codec -------------------------------------------------------------------------------
CODEC_BATCH = 1024
CODEC_PAYLOAD = 16


def codec_request(n=CODEC_BATCH, size=CODEC_PAYLOAD):
    """An AppendRequest carrying `n` entries of `size`-byte payloads (one leader run)."""
    from openraft_fast._core.log import LogSlice
    from openraft_fast._core.messages import AppendRequest
    from openraft_fast._core.types import LogId, Vote
    prev = LogId(LEADER, 1000)
    s = LogSlice(1001, [(b"%016d" % i)[:size].ljust(size, b".") for i in range(n)], None, [(1001, LEADER)])
    return AppendRequest(Vote(LEADER, True), prev, s, prev, 7, 8, 9)


def codec_request_as_lists(req):
    """The same message for the msgpack reference: each entry as [term, node, index, kind, payload]."""
    v, prev, commit = req.vote, req.prev_log_id, req.commit
    s = req.entries
    lid = s.runs[0][1]
    entries = [[lid.term, lid.node_id, s.start + i, s.kinds[i], p] for i, p in enumerate(s.payloads)]
    return [[v.term, v.node_id, v.committed], [prev.term, prev.index], [commit.term, commit.index],
            req.msg_id, req.seq, req.sent_at, entries]


def codec_encode(req):
    from openraft_fast._core import codec
    return codec.encode(req, 1)


def codec_round_trip(dec, req):
    """encode + decode through a connection's FrameDecoder: [(corr_id, msg)]."""
    from openraft_fast._core import codec
    return dec.feed(codec.encode(req, 1))


def codec_check(req, dec, wire):
    """Both sides carry the same entries."""
    (corr, got), = codec_round_trip(dec, req)
    ref, = wire.round_trip(codec_request_as_lists(req))
    assert corr == 1 and got == req
    assert [e[4] for e in ref[6]] == got.entries.payloads
    assert [e[2] for e in ref[6]] == list(range(got.entries.start, got.entries.stop))
